//! iyzico's failure answers, read the same way whichever shape they come
//! in and whatever the HTTP status: its envelope (`status`, `errorCode`,
//! `errorMessage`), `/authorize`'s `{errorCode, description}`, or RFC
//! 6749's `{error, error_description}`. One reading for both APIs, for
//! error answers and for a 200 that says failure.

use payauth_core::http::{self, ProviderErrorBody};
use payauth_core::wire::NumberOrString;
use payauth_core::{Error, ErrorKind};

use crate::generated::{pwi, terminal_login};

/// What an answer says about failure, borrowed from its generated type.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Envelope<'a> {
    /// `status`: `success`, `failure`, or a gateway's HTTP status number.
    pub(crate) status: Option<&'a NumberOrString>,
    /// RFC 6749 `error`.
    pub(crate) error: Option<&'a str>,
    /// iyzico's `errorCode`.
    pub(crate) error_code: Option<&'a NumberOrString>,
    /// `errorMessage`, `error_description` or `description`, the first sent.
    pub(crate) message: Option<&'a str>,
}

/// A generated type that may carry iyzico's failure fields.
pub(crate) trait Enveloped {
    /// The failure fields it carries.
    fn envelope(&self) -> Envelope<'_>;
}

fn present(text: Option<&str>) -> Option<&str> {
    text.map(str::trim).filter(|t| !t.is_empty())
}

fn present_code(code: Option<&NumberOrString>) -> Option<&NumberOrString> {
    code.filter(|c| c.as_str().is_none_or(|s| !s.trim().is_empty()))
}

impl<'a> Envelope<'a> {
    /// Whether `status` says `success`.
    pub(crate) fn says_success(&self) -> bool {
        self.status
            .and_then(NumberOrString::as_str)
            .is_some_and(|s| s.trim().eq_ignore_ascii_case("success"))
    }

    /// Whether the answer says it failed: a `status` other than `success`,
    /// or, without a `status`, an error code of either kind.
    pub(crate) fn failed(&self) -> bool {
        match self.status {
            Some(_) => !self.says_success(),
            None => present(self.error).is_some() || present_code(self.error_code).is_some(),
        }
    }

    /// The RFC 6749 meaning: `error` as sent, else what iyzico's
    /// `errorCode` means ([`oauth_meaning`]).
    pub(crate) fn oauth_code(&self) -> Option<&'a str> {
        present(self.error).or_else(|| oauth_meaning(present_code(self.error_code)?))
    }

    /// iyzico's own code, verbatim.
    pub(crate) fn provider_code(&self) -> Option<String> {
        present_code(self.error_code).map(ToString::to_string)
    }

    /// The failure as a typed error, for an answer with HTTP `status`
    /// (a numeric envelope `status` that is an HTTP status wins): the same
    /// rule as every HTTP answer ([`http::classify`]), except that a
    /// failure envelope on a 2xx is a provider's verdict, never a
    /// malformed answer.
    pub(crate) fn error(&self, status: u16) -> Error {
        let status = self
            .status
            .and_then(NumberOrString::as_number)
            .and_then(|n| u16::try_from(n).ok())
            .filter(|n| (100..=599).contains(n))
            .unwrap_or(status);
        let kind = match http::classify(status, self.oauth_code()) {
            ErrorKind::Malformed => ErrorKind::Provider,
            kind => kind,
        };
        let mut error = Error::new(kind).with_status(status);
        if let Some(code) = self
            .provider_code()
            .or_else(|| present(self.error).map(Into::into))
        {
            error = error.with_provider_code(code);
        }
        if let Some(message) = present(self.message) {
            error = error.with_description(message);
        }
        error
    }
}

/// What one of iyzico's error codes means in RFC 6749 terms, for both
/// APIs: `1000` (invalid signature) and `1001` (API key not found) refuse
/// the client, `260016` (session token not found) refuses the grant, and
/// an OAuth code sent as iyzico's `errorCode` (the Terminal API's
/// `/authorize` does) is itself. Any other code is no verdict.
pub(crate) fn oauth_meaning(code: &NumberOrString) -> Option<&str> {
    let text = match code {
        NumberOrString::String(text) => text.trim(),
        NumberOrString::Number(1000 | 1001) => return Some("invalid_client"),
        NumberOrString::Number(260_016) => return Some("invalid_grant"),
        NumberOrString::Number(_) => return None,
    };
    match text {
        "1000" | "1001" => Some("invalid_client"),
        "260016" => Some("invalid_grant"),
        other => ErrorKind::from_oauth_code(other).map(|_| other),
    }
}

/// Every type that carries the envelope reads its error body through it.
macro_rules! envelope_error_body {
    ($($body:ty),+) => {$(
        impl ProviderErrorBody for $body {
            fn oauth_code(&self) -> Option<&str> {
                self.envelope().oauth_code()
            }

            fn description(&self) -> Option<&str> {
                present(self.envelope().message)
            }

            fn provider_code(&self) -> Option<String> {
                self.envelope().provider_code()
            }
        }
    )+};
}

envelope_error_body!(
    terminal_login::types::TerminalError,
    pwi::types::AccessTokenResponse
);

impl Enveloped for terminal_login::types::TerminalError {
    fn envelope(&self) -> Envelope<'_> {
        Envelope {
            status: self.status.as_ref(),
            error: self.error.as_deref(),
            error_code: self.error_code.as_ref(),
            message: present(self.error_message.as_deref())
                .or(present(self.error_description.as_deref()))
                .or(present(self.description.as_deref())),
        }
    }
}

impl Enveloped for terminal_login::types::AuthorizeResponse {
    fn envelope(&self) -> Envelope<'_> {
        Envelope {
            status: self.status.as_ref(),
            error: None,
            error_code: self.error_code.as_ref(),
            message: present(self.error_message.as_deref())
                .or(present(self.description.as_deref())),
        }
    }
}

impl Enveloped for terminal_login::types::TokenResponse {
    fn envelope(&self) -> Envelope<'_> {
        Envelope {
            status: self.status.as_ref(),
            error: self.error.as_deref(),
            error_code: self.error_code.as_ref(),
            message: present(self.error_message.as_deref())
                .or(present(self.error_description.as_deref())),
        }
    }
}

impl Enveloped for pwi::types::AccessTokenResponse {
    fn envelope(&self) -> Envelope<'_> {
        Envelope {
            status: self.status.as_ref(),
            error: None,
            error_code: self.error_code.as_ref(),
            message: self.error_message.as_deref(),
        }
    }
}

/// A 2xx answer that says failure, as its typed error.
pub(crate) fn refuse_failure<T: Enveloped>(answer: T) -> Result<T, Error> {
    let envelope = answer.envelope();
    if envelope.failed() {
        return Err(envelope.error(200));
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> NumberOrString {
        NumberOrString::String(text.to_owned())
    }

    #[test]
    fn a_failure_is_a_status_other_than_success_or_without_one_any_error_code() {
        let failure = code("failure");
        let success = code("success");
        let gateway = NumberOrString::Number(401);
        let some_code = code("10051");
        let blank = code(" ");
        let with = |status, error, error_code| Envelope {
            status,
            error,
            error_code,
            message: None,
        };
        assert!(with(Some(&failure), None, None).failed());
        assert!(with(Some(&gateway), None, None).failed());
        assert!(!with(Some(&success), None, Some(&some_code)).failed());
        assert!(with(None, None, Some(&some_code)).failed());
        assert!(with(None, Some("invalid_grant"), None).failed());
        assert!(!with(None, Some(" "), Some(&blank)).failed());
        assert!(!with(None, None, None).failed());
    }

    #[test]
    fn a_numeric_status_counts_only_when_it_is_an_http_status() {
        let envelope = |status: i64| Envelope {
            status: Some(Box::leak(Box::new(NumberOrString::Number(status)))),
            ..Envelope::default()
        };
        assert_eq!(envelope(503).error(200).status(), Some(503));
        assert_eq!(envelope(503).error(200).kind(), ErrorKind::Unavailable);
        for absurd in [0, 99, 600, -401, i64::MAX, i64::MIN] {
            assert_eq!(envelope(absurd).error(400).status(), Some(400), "{absurd}");
        }
        assert_eq!(envelope(100).error(400).status(), Some(100));
        assert_eq!(envelope(599).error(400).status(), Some(599));
    }

    #[test]
    fn a_failure_on_200_keeps_iyzicos_code_and_its_meaning() {
        let client = code("1001");
        let error = Envelope {
            error_code: Some(&client),
            message: Some("api key not found"),
            ..Envelope::default()
        }
        .error(200);
        assert_eq!(error.kind(), ErrorKind::InvalidClient);
        assert!(error.is_permanent());
        assert_eq!(error.provider_code(), Some("1001"));
        assert_eq!(error.status(), Some(200));
        let unknown = code("10051");
        let error = Envelope {
            error_code: Some(&unknown),
            ..Envelope::default()
        }
        .error(200);
        assert_eq!(error.kind(), ErrorKind::Provider);
        // An RFC 6749 `error` is its own code when iyzico's is absent.
        let error = Envelope {
            error: Some("invalid_grant"),
            ..Envelope::default()
        }
        .error(400);
        assert_eq!(error.kind(), ErrorKind::InvalidGrant);
        assert_eq!(error.provider_code(), Some("invalid_grant"));
    }

    #[test]
    fn iyzicos_numeric_codes_mean_what_they_say_as_numbers_or_strings() {
        for (sent, meaning) in [
            (NumberOrString::Number(1000), Some("invalid_client")),
            (NumberOrString::Number(1001), Some("invalid_client")),
            (NumberOrString::Number(260_016), Some("invalid_grant")),
            (NumberOrString::Number(1002), None),
            (code(" 1000 "), Some("invalid_client")),
            (code("260016"), Some("invalid_grant")),
            (code("invalid_scope"), Some("invalid_scope")),
            (code("made_up"), None),
        ] {
            assert_eq!(oauth_meaning(&sent), meaning, "{sent:?}");
        }
    }
}
