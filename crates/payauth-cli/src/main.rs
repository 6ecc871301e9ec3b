//! The `payauth` command.
//!
//! - `payauth demo`: every provider flow against the loopback sandbox.
//! - `payauth sandbox [--port N]`: the simulators, served on loopback.
//! - `payauth token <provider>` and `payauth revoke mypos`: one flow
//!   against a provider, its sandbox host or any `--environment <URL>`.
//! - `payauth login vakifbank`: the authorization-code flow from a
//!   terminal, tokens kept in the file store.
//! - `payauth iyzico sign`: the IYZWSv2 `Authorization` header for a
//!   request, for debugging signature mismatches.
//!
//! Secrets come from flags or `PAYAUTH_*` environment variables and are
//! never echoed.

mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Access tokens from payment providers' auth APIs.
#[derive(Debug, Parser)]
#[command(name = "payauth", version, about)]
struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every provider flow against the embedded loopback sandbox.
    Demo,
    /// Serve the loopback simulators of all four provider APIs.
    Sandbox {
        /// The loopback port to listen on.
        #[arg(long, default_value_t = 8787)]
        port: u16,
    },
    /// Get one token from a provider (or any base URL) and print what it is.
    #[command(subcommand_required = false)]
    Token {
        /// Also print the `Authorization` header value, the token itself.
        #[arg(long, global = true)]
        reveal: bool,
        /// Take provider, flow and credentials from this TOML file (see
        /// `payauth config schema`) instead of a provider subcommand.
        #[arg(long, env = "PAYAUTH_CONFIG")]
        config: Option<std::path::PathBuf>,
        #[command(subcommand)]
        command: Option<commands::token::TokenCommand>,
    },
    /// The configuration file format.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Revoke a token.
    Revoke {
        #[command(subcommand)]
        command: commands::token::RevokeCommand,
    },
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let output = commands::Output { json: cli.json };
    let result = match cli.command {
        Command::Demo => commands::demo::run(output),
        Command::Sandbox { port } => commands::sandbox::run(port),
        Command::Token {
            reveal,
            config,
            command,
        } => match (config, command) {
            (Some(_), Some(_)) => {
                Err("give a provider subcommand or --config, not both".to_owned())
            }
            (None, Some(command)) => commands::token::token(command, reveal, output),
            (Some(path), None) => commands::token::from_config(&path, reveal, output),
            (None, None) => {
                Err("give a provider (payauth token mypos …) or --config FILE".to_owned())
            }
        },
        Command::Config {
            command: ConfigCommand::Schema,
        } => {
            println!("{}", commands::token::config_schema());
            Ok(())
        }
        Command::Revoke { command } => commands::token::revoke(command, output),
        Command::Login {
            command: LoginCommand::Vakifbank(args),
        } => commands::login::run(args, output),
        Command::Iyzico { command } => commands::iyzico::run(command, output),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("payauth: {message}");
            ExitCode::FAILURE
        }
    }
}
