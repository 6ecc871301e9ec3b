//! The `payauth` command.
//!
//! - `payauth demo`: every provider flow against the loopback sandbox.
//! - `payauth sandbox [--port N] [--tls-cert F --tls-key F [--client-ca F]]`:
//!   the simulators, served on loopback (HTTPS, mutual TLS).
//! - `payauth token <provider>` and `payauth revoke mypos`: one flow
//!   against a provider, its sandbox host or any `--environment <URL>`.
//! - `payauth login vakifbank`: the authorization-code flow from a
//!   terminal, tokens kept in the file store.
//! - `payauth iyzico sign`: the IYZWSv2 `Authorization` header for a
//!   request, for debugging signature mismatches.
//! - `payauth completions <shell>`: shell completions.
//!
//! Secrets come from flags, files or `PAYAUTH_*` environment variables
//! and are never echoed. Exit statuses say what happened
//! ([`failure::EXIT_STATUS_HELP`]); `--json` reports failures too.
//!
//! Nothing is printed but through [`output`] (`say!`, `note!`, JSON), so
//! every line is cleaned and a closed pipe on either stream ends the
//! command with one status; the print macros are denied to keep it so.

#![deny(clippy::print_stdout, clippy::print_stderr)]

mod commands;
mod failure;
mod output;
mod secrets;
mod vars;

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use commands::{Global, Output};
use failure::{EXIT_STATUS_HELP, Failure};

/// Where `--help` lists the flags every subcommand takes.
const GLOBAL: &str = "Global options";

/// Access tokens from payment providers' auth APIs.
#[derive(Debug, Parser)]
#[command(name = "payauth", version, about, after_long_help = EXIT_STATUS_HELP)]
pub(crate) struct Cli {
    /// Print machine-readable JSON (one object per line on stdout),
    /// failures included.
    #[arg(long, global = true, help_heading = GLOBAL)]
    json: bool,

    /// Give up on a provider after this long (`10`, `2.5s`, `500ms`, `1m`):
    /// exit 75, as for any transient failure.
    #[arg(long, global = true, help_heading = GLOBAL, env = vars::TIMEOUT, value_parser = commands::parse_timeout, value_name = "DURATION")]
    timeout: Option<Duration>,

    /// Log what happens to stderr (`-v` debug, `-vv` trace, HTTP stack
    /// included); secrets and tokens are never logged.
    #[arg(short, long, global = true, help_heading = GLOBAL, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every provider flow against the embedded loopback sandbox.
    #[cfg(feature = "sandbox")]
    Demo,
    /// Serve the loopback simulators of all four provider APIs, printing
    /// the URL and the credentials they accept.
    #[cfg(feature = "sandbox")]
    Sandbox {
        /// The loopback port to listen on (0: any free port, announced).
        #[arg(long, default_value_t = 8787)]
        port: u16,
        /// Seconds the iyzico and VakıfBank authorization codes live
        /// (default 600; 0 issues codes already expired).
        #[arg(long, value_name = "SECS")]
        code_lifetime_secs: Option<u64>,
        #[command(flatten)]
        tls: commands::sandbox::TlsArgs,
    },
    /// Get one token from a provider (or any base URL) and print what it is.
    Token(commands::token::TokenArgs),
    /// The configuration file format.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Revoke a token.
    Revoke(commands::token::RevokeArgs),
    /// Log in with a browser (authorization code) and keep the tokens.
    Login {
        #[command(subcommand)]
        command: LoginCommand,
    },
    /// iyzico tools.
    Iyzico {
        #[command(subcommand)]
        command: commands::iyzico::IyzicoCommand,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish,
    /// powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the JSON Schema of the configuration file.
    Schema,
}

#[derive(Debug, Subcommand)]
enum LoginCommand {
    /// VakıfBank: authorize URL, loopback redirect, code exchange, file store.
    Vakifbank(commands::login::LoginArgs),
}

/// The command line as parsed, helped and completed: [`Cli`] with every
/// variable-backed argument's value hidden from `--help` (`[env: NAME]`,
/// never `NAME=<value>`), in every subcommand, so no flag added later can
/// show a secret a variable holds.
pub(crate) fn command() -> clap::Command {
    fn hide_env_values(command: clap::Command) -> clap::Command {
        command
            .mut_args(|arg| arg.hide_env_values(true))
            .mut_subcommands(hide_env_values)
    }
    hide_env_values(<Cli as clap::CommandFactory>::command())
}

fn main() -> ExitCode {
    let parsed = command()
        .try_get_matches()
        .and_then(|matches| <Cli as clap::FromArgMatches>::from_arg_matches(&matches));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(error) => return exit(usage_error(&error)),
    };
    init_tracing(cli.verbose);
    let global = Global {
        output: Output { json: cli.json },
        timeout: cli.timeout,
    };
    exit(match dispatch(cli.command, global) {
        Ok(()) => failure::EXIT_OK,
        Err(failure) => failure.report(global.output.json),
    })
}

/// The process's exit status: `status`, unless a write to stderr failed
/// (a closed pipe: 141).
fn exit(status: u8) -> ExitCode {
    ExitCode::from(output::exit_status(status))
}

fn dispatch(command: Command, global: Global) -> Result<(), Failure> {
    match command {
        #[cfg(feature = "sandbox")]
        Command::Demo => commands::demo::run(global.output),
        #[cfg(feature = "sandbox")]
        Command::Sandbox {
            port,
            code_lifetime_secs,
            tls,
        } => commands::sandbox::run(port, code_lifetime_secs, &tls, global.output),
        Command::Token(args) => commands::token::run(args, global),
        Command::Config {
            command: ConfigCommand::Schema,
        } => {
            output::print_block(&commands::token::config_schema());
            Ok(())
        }
        Command::Revoke(args) => commands::token::revoke(args, global),
        Command::Login {
            command: LoginCommand::Vakifbank(args),
        } => commands::login::run(args, global),
        Command::Iyzico { command } => commands::iyzico::run(command, global.output),
        Command::Completions { shell } => {
            commands::completions::run(shell);
            Ok(())
        }
    }
}

/// A command line clap refused: its own message and usage on stderr,
/// status 2, and with `--json` the report on stdout too, whatever the
/// subcommand (a command missing its subcommand or arguments included).
/// `--help` and `--version` print on stdout, status 0.
fn usage_error(error: &clap::Error) -> u8 {
    use clap::error::ErrorKind as Clap;
    let styled = |terminal: bool| {
        let rendered = error.render();
        if terminal {
            rendered.ansi().to_string()
        } else {
            rendered.to_string()
        }
    };
    if matches!(error.kind(), Clap::DisplayHelp | Clap::DisplayVersion) {
        output::print_block(styled(std::io::stdout().is_terminal()).trim_end());
        return failure::EXIT_OK;
    }
    output::write_stderr(styled(std::io::stderr().is_terminal()).as_bytes());
    let json = std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json");
    if json {
        let message = if matches!(
            error.kind(),
            Clap::DisplayHelpOnMissingArgumentOrSubcommand | Clap::MissingSubcommand
        ) {
            what_is_missing()
        } else {
            // clap's message: its lines up to the usage, as one line.
            let rendered = error.render().to_string();
            rendered
                .lines()
                .map(str::trim)
                .take_while(|line| !line.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
                .trim_start_matches("error: ")
                .to_owned()
        };
        if let Some(value) = Failure::Usage(message).json() {
            output::print_json(&value);
        }
    }
    failure::EXIT_USAGE
}

/// What a command line that stopped at a command without its subcommand
/// or arguments lacks: "`payauth login` needs a subcommand: vakifbank".
fn what_is_missing() -> String {
    use clap::CommandFactory as _;
    let mut command = Cli::command();
    let mut path = vec![command.get_name().to_owned()];
    for arg in std::env::args_os().skip(1).take_while(|a| a != "--") {
        let Some(inner) = command.find_subcommand(&arg).cloned() else {
            continue;
        };
        path.push(inner.get_name().to_owned());
        command = inner;
    }
    let subcommands: Vec<&str> = command
        .get_subcommands()
        .map(clap::Command::get_name)
        .filter(|name| *name != "help")
        .collect();
    if subcommands.is_empty() {
        format!("`{}` needs arguments (see --help)", path.join(" "))
    } else {
        format!(
            "`{}` needs a subcommand: {}",
            path.join(" "),
            subcommands.join(", ")
        )
    }
}

/// `-v`: payauth's and its dependencies' events to stderr, at debug
/// (`-vv`: trace). payauth never puts a secret in an event, and the HTTP
/// stack marks credential headers sensitive (tests/leaks.rs and this
/// crate's tests prove both).
fn init_tracing(verbose: u8) {
    let level = match verbose {
        0 => return,
        1 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(output::Stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .log_internal_errors(false)
        .try_init();
}

#[cfg(test)]
mod tests {
    /// Every argument of `command`, its subcommands' included.
    fn args(command: &clap::Command) -> Vec<(String, clap::Arg)> {
        let mut all: Vec<(String, clap::Arg)> = command
            .get_arguments()
            .map(|arg| (command.get_name().to_owned(), arg.clone()))
            .collect();
        for sub in command.get_subcommands() {
            all.extend(args(sub));
        }
        all
    }

    #[test]
    fn no_variable_backed_argument_shows_its_value_in_help_in_any_subcommand() {
        let mut command = super::command();
        command.build();
        let all = args(&command);
        let with_env: Vec<_> = all
            .iter()
            .filter(|(_, arg)| arg.get_env().is_some())
            .collect();
        assert!(
            with_env.len() > 10,
            "{} variable-backed arguments",
            with_env.len()
        );
        for (owner, arg) in with_env {
            assert!(
                arg.is_hide_env_values_set(),
                "{owner} --{} shows its variable's value in --help",
                arg.get_id()
            );
        }
    }
}
