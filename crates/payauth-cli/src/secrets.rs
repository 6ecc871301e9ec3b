//! Every secret the command takes, and the one rule for where each comes
//! from: `--NAME-file PATH` (`-`: standard input), `--NAME VALUE`, or the
//! variables `PAYAUTH_…_FILE` and `PAYAUTH_…`; the command line beats the
//! environment, and two sources on the same level are a usage error.
//!
//! A secret is handed on as a [`SecretConfig`]: a variable is read by
//! `payauth_core` when the flow is built, a file (a regular file of at
//! most 64 KiB, or standard input) is read at once through `payauth_core`,
//! whose errors name it but never its content. An empty secret is a usage
//! error (status 2) wherever it comes from: a flag, a variable, a file or
//! standard input. Values are never echoed, not even in `--help`.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use payauth_core::{Error, ErrorKind, Secret, SecretConfig};

use crate::failure::Failure;

/// One secret's two flags, `--$flag` and `--$flag-file`, read from `$env`
/// and `${env}_FILE` when neither is given.
macro_rules! secret {
    ($(#[$meta:meta])* $name:ident, flag: $flag:literal, env: $env:literal, what: $what:literal) => {
        $(#[$meta])*
        #[derive(Debug, clap::Args)]
        pub(crate) struct $name {
            #[arg(
                id = $flag,
                long = $flag,
                value_name = "SECRET",
                help = concat!(
                    "The ", $what, " [env: ", $env, "]; a flag's value shows in the process list: prefer the variable or --",
                    $flag, "-file"
                )
            )]
            value: Option<String>,
            #[arg(
                id = concat!($flag, "-file"),
                long = concat!($flag, "-file"),
                value_name = "PATH",
                help = concat!(
                    "Read the ", $what, " from this file, without its trailing newline; `-` reads standard input [env: ",
                    $env, "_FILE]"
                )
            )]
            file: Option<PathBuf>,
        }

        // Not every secret is printed by `payauth sandbox` or needed as a
        // bare value.
        #[allow(dead_code)]
        impl $name {
            /// The variable that holds this secret.
            pub(crate) const ENV: &'static str = $env;

            /// Where the secret comes from.
            pub(crate) fn resolve(self) -> Result<SecretConfig, Failure> {
                resolve(self.value, self.file, $flag, $env)
            }

            /// The secret itself.
            pub(crate) fn load(self) -> Result<Secret, Failure> {
                Ok(self.resolve()?.load()?)
            }

            /// Whether any of its flags or variables is given.
            pub(crate) fn is_given(&self) -> bool {
                self.value.is_some()
                    || self.file.is_some()
                    || std::env::var_os($env).is_some()
                    || std::env::var_os(concat!($env, "_FILE")).is_some()
            }
        }
    };
}

secret!(
    /// myPOS `client_secret`.
    MyposClientSecret, flag: "client-secret", env: "PAYAUTH_MYPOS_CLIENT_SECRET", what: "client secret"
);
secret!(
    /// A myPOS token to revoke.
    MyposToken, flag: "token", env: "PAYAUTH_MYPOS_TOKEN", what: "token to revoke"
);
secret!(
    /// VakıfBank API secret.
    VakifBankClientSecret, flag: "client-secret", env: "PAYAUTH_VAKIFBANK_CLIENT_SECRET", what: "API secret"
);
secret!(
    /// iyzico Terminal API `client_secret`.
    IyzicoClientSecret, flag: "client-secret", env: "PAYAUTH_IYZICO_CLIENT_SECRET", what: "Terminal API client secret"
);
secret!(
    /// iyzico terminal user's password.
    IyzicoPassword, flag: "password", env: "PAYAUTH_IYZICO_PASSWORD", what: "terminal user's password"
);
secret!(
    /// iyzico merchant secret key (the IYZWSv2 HMAC key).
    IyzicoSecretKey, flag: "secret-key", env: "PAYAUTH_IYZICO_SECRET_KEY", what: "merchant secret key"
);
secret!(
    /// A Pay-with-iyzico member's session token.
    PwiSessionToken, flag: "session-token", env: "PAYAUTH_IYZICO_PWI_SESSION_TOKEN", what: "member's session token"
);

/// Whether a secret has been read from standard input already: it holds
/// only one.
static STDIN_TAKEN: AtomicBool = AtomicBool::new(false);

/// Claims standard input for one `-` argument: it can be read once.
pub(crate) fn claim_stdin() -> Result<(), Failure> {
    if STDIN_TAKEN.swap(true, Ordering::SeqCst) {
        return Err(Failure::Usage(
            "only one argument can come from standard input (`-`)".to_owned(),
        ));
    }
    Ok(())
}

fn resolve(
    value: Option<String>,
    file: Option<PathBuf>,
    flag: &str,
    env: &str,
) -> Result<SecretConfig, Failure> {
    match (value, file) {
        (Some(_), Some(_)) => Err(Failure::Usage(format!(
            "give --{flag} or --{flag}-file, not both"
        ))),
        (Some(value), None) if value.is_empty() => {
            Err(Failure::Usage(format!("--{flag} is empty")))
        }
        (Some(value), None) => Ok(Secret::new(value).into()),
        (None, Some(path)) => from_path(&path),
        (None, None) => from_environment(flag, env),
    }
}

fn from_environment(flag: &str, env: &str) -> Result<SecretConfig, Failure> {
    let file_env = format!("{env}_FILE");
    match (std::env::var_os(env).is_some(), std::env::var_os(&file_env)) {
        (true, Some(_)) => Err(Failure::Usage(format!(
            "both {env} and {file_env} are set: unset one"
        ))),
        (true, None) if std::env::var_os(env).is_some_and(|v| v.is_empty()) => {
            Err(Failure::Usage(format!("{env} is empty")))
        }
        (true, None) => Ok(SecretConfig::Env {
            env: env.to_owned(),
        }),
        (false, Some(path)) => from_path(Path::new(&path)),
        (false, None) => Err(Failure::Usage(format!(
            "no --{flag}: give --{flag}-file PATH, or set {file_env} or {env}"
        ))),
    }
}

/// The secret in the file at `path` (`-`: standard input), read now so
/// that an empty one is a usage error as an empty flag or variable is.
fn from_path(path: &Path) -> Result<SecretConfig, Failure> {
    if path.as_os_str() != "-" {
        return match Secret::from_file(path) {
            Ok(secret) => Ok(secret.into()),
            Err(error) => {
                let empty = payauth_core::internal::fs::read_regular_file(path, 2)
                    .is_ok_and(|bytes| matches!(&bytes[..], b"" | b"\n" | b"\r\n"));
                if empty {
                    Err(Failure::Usage(format!("{} is empty", path.display())))
                } else {
                    Err(error.into())
                }
            }
        };
    }
    claim_stdin()?;
    let mut text = String::new();
    std::io::stdin()
        .take(payauth_core::MAX_SECRET_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| {
            Error::new(ErrorKind::Config).with_description(format!(
                "cannot read a secret from standard input: {}",
                e.kind()
            ))
        })?;
    if text.len() as u64 > payauth_core::MAX_SECRET_FILE {
        return Err(Error::new(ErrorKind::Config)
            .with_description(format!(
                "the secret from standard input is larger than {} bytes",
                payauth_core::MAX_SECRET_FILE
            ))
            .into());
    }
    // One trailing newline, as `echo` and here-strings add; as the file store does.
    for ending in ["\r\n", "\n"] {
        if text.ends_with(ending) {
            text.truncate(text.len() - ending.len());
            break;
        }
    }
    if text.is_empty() {
        return Err(Failure::Usage(
            "the secret from standard input is empty".to_owned(),
        ));
    }
    Ok(Secret::new(text).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_value_beats_the_environment_and_two_flags_are_a_usage_error() {
        let given = resolve(Some("v".into()), None, "x", "PAYAUTH_TEST_SURELY_UNSET").unwrap();
        assert_eq!(given.load().unwrap().expose_secret(), "v");
        let both = resolve(Some("v".into()), Some("/f".into()), "x", "E").unwrap_err();
        assert_eq!(both.exit_status(), 2);
        assert!(
            both.message().contains("--x or --x-file"),
            "{}",
            both.message()
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, "from-file\n").unwrap();
        let file = resolve(None, Some(path), "x", "E").unwrap();
        assert_eq!(file.load().unwrap().expose_secret(), "from-file");
        assert_eq!(
            resolve(Some(String::new()), None, "x", "E")
                .unwrap_err()
                .exit_status(),
            2
        );
    }

    #[test]
    fn no_source_at_all_is_a_usage_error_naming_every_way_to_give_it() {
        let missing =
            resolve(None, None, "client-secret", "PAYAUTH_TEST_SURELY_UNSET").unwrap_err();
        assert_eq!(missing.exit_status(), 2);
        let message = missing.message();
        for way in [
            "--client-secret-file",
            "PAYAUTH_TEST_SURELY_UNSET_FILE",
            "PAYAUTH_TEST_SURELY_UNSET",
        ] {
            assert!(message.contains(way), "{message}");
        }
    }
}
