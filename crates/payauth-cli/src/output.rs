//! What reaches the terminal: JSON as pure ASCII, text without control
//! characters, times in RFC 3339, and the one description of a token
//! every command prints.
//!
//! Provider text is already cleaned in `payauth_core` (every `Error`
//! string, a token's scope); this is the last guard, for whatever a
//! command prints.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use payauth_core::AccessToken;

/// Writes one line to stdout, as `println!` does, except that a reader
/// that went away (`payauth config schema | head -1`) ends the process
/// quietly with status 141, as a shell reports SIGPIPE, instead of a
/// panic.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use say;

/// What [`say!`] does.
pub(crate) fn write_stdout(text: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_fmt(text)
        .and_then(|()| stdout.flush())
        .is_err()
    {
        std::process::exit(141);
    }
}

/// Prints `value` as one line of JSON on stdout.
pub(crate) fn print_json(value: &serde_json::Value) {
    say!("{}", ascii_json(value));
}

/// `value` as JSON with every non-ASCII character written as a `\u`
/// escape (as Python's `json.dumps` does by default): still the same JSON
/// to any parser, but no byte of it can be a terminal control sequence
/// (C1 controls such as U+009B, bidi overrides), whatever a string held.
/// `serde_json` already escapes the ASCII controls.
pub(crate) fn ascii_json(value: &serde_json::Value) -> String {
    let text = value.to_string();
    if text.is_ascii() {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
    }
    out
}

/// `text` with every control character (C0, DEL, C1: escapes, newlines)
/// replaced by a space, for one line of terminal text.
pub(crate) fn clean(text: &str) -> Cow<'_, str> {
    if text.chars().any(char::is_control) {
        Cow::Owned(
            text.chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect(),
        )
    } else {
        Cow::Borrowed(text)
    }
}

/// `time` in RFC 3339, UTC, whole seconds: `2025-06-01T12:04:05Z`.
pub(crate) fn rfc3339_utc(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let (days, of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = payauth_core::internal::time::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// Seconds from now until `token` expires (0 once expired).
pub(crate) fn expires_in_secs(token: &AccessToken) -> u64 {
    token
        .expires_at_system()
        .duration_since(SystemTime::now())
        .map_or(0, |d| d.as_secs())
}

/// What every command says about a token in `--json`: `token_type`,
/// `expires_in_s`, `expires_at` (RFC 3339, UTC), `scope`,
/// `has_refresh_token`, and with `reveal` the token itself
/// (`access_token`) and its `authorization` header value.
pub(crate) fn token_json(token: &AccessToken, reveal: bool) -> serde_json::Value {
    let mut value = serde_json::json!({
        "token_type": token.token_type(),
        "expires_in_s": expires_in_secs(token),
        "expires_at": rfc3339_utc(token.expires_at_system()),
        "scope": token.scope(),
        "has_refresh_token": token.refresh_token().is_some(),
    });
    if reveal {
        value["access_token"] = token.secret().expose_secret().into();
        value["authorization"] = token.authorization().to_str().unwrap_or_default().into();
    }
    value
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn json_output_is_ascii_and_parses_back_to_the_same_value() {
        let value = serde_json::json!({
            "scope": "a\u{1b}[2J\u{9b}31m\u{202e}ü😀",
            "ü-key": 1,
        });
        let text = ascii_json(&value);
        assert!(text.is_ascii(), "{text}");
        assert!(!text.contains('\u{1b}'));
        assert!(
            text.contains(r"\u009b") && text.contains(r"\u202e"),
            "{text}"
        );
        assert!(
            text.contains(r"\ud83d\ude00"),
            "astral as a surrogate pair: {text}"
        );
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn clean_text_has_no_control_characters_left() {
        assert_eq!(clean("a\u{1b}[31mb\u{9b}c\nd\u{7f}"), "a [31mb c d ");
        assert!(matches!(clean("plain ü"), Cow::Borrowed("plain ü")));
    }

    #[test]
    fn times_are_rfc3339_utc_whole_seconds() {
        let at = |secs: u64| rfc3339_utc(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        // 2000-02-29 (a leap day of a century leap year) 12:34:56.
        assert_eq!(at(951_827_696), "2000-02-29T12:34:56Z");
        assert_eq!(at(1_709_251_199), "2024-02-29T23:59:59Z");
        assert_eq!(at(1_709_251_200), "2024-03-01T00:00:00Z");
        assert_eq!(at(4_102_444_800), "2100-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH + Duration::from_millis(1_999)),
            "1970-01-01T00:00:01Z"
        );
        // Before the epoch (a clock set wrong): the epoch, no panic.
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH - Duration::from_secs(5)),
            "1970-01-01T00:00:00Z"
        );
        if let Some(far) = UNIX_EPOCH.checked_add(Duration::from_secs(u64::MAX / 4)) {
            assert!(rfc3339_utc(far).ends_with('Z'));
        }
    }
}
