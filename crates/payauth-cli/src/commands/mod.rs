//! One module per subcommand, and what they share: how results are
//! printed, the runtime, the `--timeout` deadline and the signals that
//! stop a command.

pub(crate) mod completions;
#[cfg(feature = "sandbox")]
pub(crate) mod demo;
pub(crate) mod iyzico;
pub(crate) mod login;
#[cfg(feature = "sandbox")]
pub(crate) mod sandbox;
pub(crate) mod token;

use std::time::Duration;

use payauth_core::{Error, ErrorKind};

use crate::failure::{Failure, Signal};

/// How results are printed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    /// JSON instead of text.
    pub(crate) json: bool,
}

/// What every command that talks to a provider shares.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Global {
    /// How results are printed.
    pub(crate) output: Output,
    /// `--timeout`: the most the provider work of the command may take.
    pub(crate) timeout: Option<Duration>,
}

/// The async runtime every network command runs on: two workers, as the
/// machines payauth targets have.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| {
            Error::new(ErrorKind::Config)
                .with_description(format!("cannot start the async runtime: {e}"))
                .into()
        })
}

/// Runs `work` on a fresh runtime until it ends, `timeout` passes (a
/// transient [`ErrorKind::Timeout`]), or SIGINT or SIGTERM arrives
/// ([`Failure::Interrupted`]). Whatever is still running then is dropped:
/// token stores replace files atomically, so nothing is left half-written.
pub(crate) fn run<T>(
    timeout: Option<Duration>,
    work: impl Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    let runtime = runtime()?;
    let outcome = runtime.block_on(async {
        let mut signals = Signals::install()?;
        tokio::select! {
            signal = signals.recv() => Err(Failure::Interrupted(signal)),
            outcome = within(timeout, work) => outcome,
        }
    });
    // A blocking store call still running must not hold the exit up.
    runtime.shutdown_timeout(Duration::from_millis(500));
    outcome
}

/// `work`, failing with a transient timeout once `timeout` has passed.
pub(crate) async fn within<T>(
    timeout: Option<Duration>,
    work: impl Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    let Some(limit) = timeout else {
        return work.await;
    };
    tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
        Err(Error::new(ErrorKind::Timeout)
            .with_description(format!(
                "no answer within {}s (--timeout)",
                limit.as_secs_f64()
            ))
            .into())
    })
}

/// `--environment` (`PAYAUTH_ENVIRONMENT`), read by the one rule
/// (`Environment`'s `FromStr`). A refused value is shown only as
/// `payauth_core::redact::url` shows it: clap's own message would quote
/// it whole, `user:password@` and query included.
#[derive(Clone, Copy)]
pub(crate) struct EnvironmentParser;

impl clap::builder::TypedValueParser for EnvironmentParser {
    type Value = payauth_core::Environment;

    fn parse_ref(
        &self,
        command: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Self::Value, clap::Error> {
        let name = arg.and_then(clap::Arg::get_long).unwrap_or("environment");
        let refuse = |why: &str| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid value for '--{name}': {why}"),
            )
            .format(&mut command.clone())
        };
        let text = value.to_str().ok_or_else(|| refuse("not UTF-8"))?;
        text.parse::<payauth_core::Environment>()
            .map_err(|e| refuse(e.description().unwrap_or("not an environment")))
    }
}

/// `--timeout`: seconds (`1`, `0.5`, `2s`), milliseconds (`500ms`) or
/// minutes (`2m`); more than zero, at most a day.
pub(crate) fn parse_timeout(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = if let Some(n) = text.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 10, 2.5s, 500ms, 1m)"))?;
    let seconds = value * unit;
    if !(seconds > 0.0 && seconds <= 86_400.0) {
        return Err(format!("{text:?} is not more than zero and at most a day"));
    }
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

/// SIGINT and SIGTERM, listened to from before a command starts its work
/// (so neither kills the process in the middle of printing).
pub(crate) struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    /// Starts listening; call inside the runtime.
    pub(crate) fn install() -> Result<Self, Failure> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let listen = |kind| {
                signal(kind).map_err(|e| {
                    Failure::from(
                        Error::new(ErrorKind::Config)
                            .with_description(format!("cannot listen for signals: {e}")),
                    )
                })
            };
            Ok(Self {
                interrupt: listen(SignalKind::interrupt())?,
                terminate: listen(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// The next signal.
    pub(crate) async fn recv(&mut self) -> Signal {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => Signal::Interrupt,
                _ = self.terminate.recv() => Signal::Terminate,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Signal::Interrupt
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_read_seconds_milliseconds_and_minutes() {
        assert_eq!(parse_timeout("1"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_timeout("2.5s"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_timeout("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_timeout("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_timeout("86400"), Ok(Duration::from_secs(86_400)));
    }

    #[test]
    fn absurd_timeouts_are_refused_not_panicked_on() {
        for bad in [
            "0", "-1", "86401", "1e300", "NaN", "inf", "", "s", "ten", "1h",
        ] {
            assert!(parse_timeout(bad).is_err(), "{bad}");
        }
    }
}
