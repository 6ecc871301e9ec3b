//! How a command fails: [`Failure`], its exit status (the contract with
//! scripts, documented in `--help` and the README) and its report, as a
//! line on stderr and, with `--json`, one JSON object on stdout.

use payauth_core::{Error, ErrorKind};

/// The command did what was asked.
pub(crate) const EXIT_OK: u8 = 0;
/// A permanent failure: credentials or grant refused, a bad config file,
/// a provider's own "no"; the same command will fail again.
pub(crate) const EXIT_FAILED: u8 = 1;
/// The command line is wrong (clap's own status for usage errors).
pub(crate) const EXIT_USAGE: u8 = 2;
/// sysexits' `EX_TEMPFAIL`: transient (429, 5xx, timeout, no connection);
/// trying again later can succeed.
pub(crate) const EXIT_TEMPFAIL: u8 = 75;

/// What `--help` says about exit statuses; the README repeats it.
pub(crate) const EXIT_STATUS_HELP: &str = "\
Exit status:
  0    success
  1    permanent failure: refused credentials or grant, bad config file,
       the provider's own error; the same command will fail again
  2    usage error: a wrong or missing argument
  75   transient failure (EX_TEMPFAIL): rate limited (429), provider
       unavailable (5xx), timed out, no connection; try again later
       (with --json, error.retry_after_s says when, if the provider did)
  74   output lost (EX_IOERR): stdout or stderr could not be written,
       other than a closed pipe (a full disk)
  130  interrupted by SIGINT (Ctrl-C)
  141  the reader went away: a closed pipe on stdout or stderr (as SIGPIPE)
  143  interrupted by SIGTERM

With --json, a failure prints one JSON object on stdout:
  {\"error\": {\"kind\", \"message\", \"transient\", \"permanent\", \"status\",
   \"provider_code\", \"retry_after_s\", \"hint\"}, \"flow\"}
and the same message on stderr.";

/// Why a command failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A wrong or missing argument.
    Usage(String),
    /// A payauth error, with what was being done and, maybe, what to try.
    Error(Box<Report>),
    /// A SIGINT or SIGTERM arrived before the command finished.
    Interrupted(Signal),
    /// Already reported on stdout (a demo row that failed): only the
    /// message on stderr and the status.
    #[cfg_attr(not(feature = "sandbox"), allow(dead_code))]
    Reported(String),
}

/// A payauth error as a command reports it.
#[derive(Debug)]
pub(crate) struct Report {
    /// What failed (`mypos client credentials`, `vakifbank login`).
    context: Option<String>,
    /// The error.
    error: Error,
    /// What the user can do about it, naming this command's flags.
    hint: Option<String>,
}

/// The signals that stop a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// Ctrl-C.
    Interrupt,
    /// `kill`, a service manager, a container runtime.
    Terminate,
}

impl Signal {
    fn name(self) -> &'static str {
        match self {
            Self::Interrupt => "SIGINT",
            Self::Terminate => "SIGTERM",
        }
    }

    /// 128 plus the signal number, as shells report a death by signal.
    fn exit_status(self) -> u8 {
        match self {
            Self::Interrupt => 130,
            Self::Terminate => 143,
        }
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Self::Error(Box::new(Report {
            context: None,
            error,
            hint: None,
        }))
    }
}

impl Failure {
    /// Says what was being done when the error happened.
    #[must_use]
    pub(crate) fn context(mut self, what: &str) -> Self {
        if let Self::Error(report) = &mut self {
            report.context.get_or_insert_with(|| what.to_owned());
        }
        self
    }

    /// Adds what the user can do about it.
    #[must_use]
    pub(crate) fn hint(mut self, text: impl Into<String>) -> Self {
        if let Self::Error(report) = &mut self {
            report.hint = Some(text.into());
        }
        self
    }

    /// The process exit status.
    pub(crate) fn exit_status(&self) -> u8 {
        match self {
            Self::Usage(_) => EXIT_USAGE,
            Self::Error(report) if report.error.is_transient() => EXIT_TEMPFAIL,
            Self::Error(_) | Self::Reported(_) => EXIT_FAILED,
            Self::Interrupted(signal) => signal.exit_status(),
        }
    }

    /// The one-line message for stderr (after `payauth: `).
    pub(crate) fn message(&self) -> String {
        match self {
            Self::Usage(message) | Self::Reported(message) => message.clone(),
            Self::Error(report) => match &report.context {
                Some(context) => format!("{context} failed: {}", report.error),
                None => report.error.to_string(),
            },
            Self::Interrupted(signal) => format!("interrupted by {}", signal.name()),
        }
    }

    /// The `--json` report: `{"error": {...}, "flow": ...}`; `None` when
    /// stdout already carries the report.
    pub(crate) fn json(&self) -> Option<serde_json::Value> {
        let (kind, error, hint) = match self {
            Self::Reported(_) => return None,
            Self::Usage(_) => ("usage".to_owned(), None, None),
            Self::Interrupted(_) => ("interrupted".to_owned(), None, None),
            Self::Error(report) => (
                kind_name(report.error.kind()),
                Some(&report.error),
                report.hint.clone(),
            ),
        };
        let context = match self {
            Self::Error(report) => report.context.clone(),
            _ => None,
        };
        let mut value = serde_json::json!({
            "error": {
                "kind": kind,
                "message": match error {
                    Some(error) => error.to_string(),
                    None => self.message(),
                },
                "transient": error.is_some_and(Error::is_transient),
                "permanent": error.is_none_or(Error::is_permanent) && !matches!(self, Self::Interrupted(_)),
                "status": error.and_then(Error::status),
                "provider_code": error.and_then(Error::provider_code),
                "retry_after_s": error.and_then(Error::retry_after).map(|d| d.as_secs()),
                "hint": hint,
            },
            "flow": context,
        });
        if let Self::Interrupted(signal) = self {
            value["error"]["signal"] = signal.name().into();
        }
        Some(value)
    }

    /// Prints the report (stderr, and stdout with `--json`) and gives the
    /// exit status.
    pub(crate) fn report(&self, json: bool) -> u8 {
        crate::output::note!("payauth: {}", self.message());
        if let Self::Error(report) = self
            && let Some(hint) = &report.hint
        {
            crate::output::note!("hint: {hint}");
        }
        if json && let Some(value) = self.json() {
            crate::output::print_json(&value);
        }
        self.exit_status()
    }
}

/// The `snake_case` name of an error kind, as `--json` reports it
/// (`InvalidClient` -> `invalid_client`). Derived from the variant's name
/// so a kind added to the non-exhaustive enum gets one too.
pub(crate) fn kind_name(kind: ErrorKind) -> String {
    let mut name = String::new();
    for c in format!("{kind:?}").chars() {
        if c.is_ascii_uppercase() {
            if !name.is_empty() {
                name.push('_');
            }
            name.push(c.to_ascii_lowercase());
        } else {
            name.push(c);
        }
    }
    name
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn error_kinds_are_named_in_snake_case() {
        assert_eq!(kind_name(ErrorKind::InvalidClient), "invalid_client");
        assert_eq!(kind_name(ErrorKind::RateLimited), "rate_limited");
        assert_eq!(kind_name(ErrorKind::Timeout), "timeout");
        assert_eq!(
            kind_name(ErrorKind::UnsupportedGrantType),
            "unsupported_grant_type"
        );
    }

    #[test]
    fn exit_status_says_usage_transient_permanent_or_signal() {
        assert_eq!(Failure::Usage("x".into()).exit_status(), 2);
        let transient = Failure::from(Error::new(ErrorKind::Unavailable).with_status(503));
        assert_eq!(transient.exit_status(), 75);
        // A 5xx is transient whatever the kind says.
        let oauth_on_503 = Failure::from(Error::new(ErrorKind::InvalidGrant).with_status(503));
        assert_eq!(oauth_on_503.exit_status(), 75);
        let permanent = Failure::from(Error::new(ErrorKind::InvalidClient).with_status(401));
        assert_eq!(permanent.exit_status(), 1);
        // No verdict (a WAF's bare 401) is not worth an automatic retry.
        assert_eq!(
            Failure::from(Error::new(ErrorKind::Refused)).exit_status(),
            1
        );
        // A refused certificate is configuration: retrying cannot help.
        assert_eq!(
            Failure::from(Error::new(ErrorKind::Certificate)).exit_status(),
            1
        );
        assert_eq!(Failure::Reported("x".into()).exit_status(), 1);
        assert_eq!(Failure::Interrupted(Signal::Interrupt).exit_status(), 130);
        assert_eq!(Failure::Interrupted(Signal::Terminate).exit_status(), 143);
    }

    #[test]
    fn the_json_report_carries_every_field_of_the_error() {
        let failure = Failure::from(
            Error::new(ErrorKind::RateLimited)
                .with_status(429)
                .with_provider_code("x-ca-err 1")
                .with_retry_after(Duration::from_secs(7)),
        )
        .context("mypos client credentials")
        .hint("wait");
        let json = failure.json().unwrap();
        assert_eq!(json["error"]["kind"], "rate_limited");
        assert_eq!(json["error"]["status"], 429);
        assert_eq!(json["error"]["provider_code"], "x-ca-err 1");
        assert_eq!(json["error"]["retry_after_s"], 7);
        assert_eq!(json["error"]["transient"], true);
        assert_eq!(json["error"]["permanent"], false);
        assert_eq!(json["error"]["hint"], "wait");
        assert_eq!(json["flow"], "mypos client credentials");
        assert!(
            json["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("rate limited")
        );
        assert!(Failure::Reported("x".into()).json().is_none());
        let usage = Failure::Usage("give a provider".into()).json().unwrap();
        assert_eq!(usage["error"]["kind"], "usage");
        assert_eq!(usage["error"]["message"], "give a provider");
        assert_eq!(usage["error"]["permanent"], true);
        let signal = Failure::Interrupted(Signal::Terminate).json().unwrap();
        assert_eq!(signal["error"]["signal"], "SIGTERM");
        assert_eq!(signal["error"]["permanent"], false);
    }

    #[test]
    fn context_is_kept_from_the_innermost_caller_and_shown_first() {
        let failure = Failure::from(Error::new(ErrorKind::InvalidClient))
            .context("inner")
            .context("outer");
        assert_eq!(
            failure.message(),
            "inner failed: client credentials refused"
        );
    }
}
