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

use crate::failure::Failure;
use payauth_core::internal::text::is_format;

/// The exit status of a command whose reader went away (a closed pipe on
/// stdout or stderr: `payauth … | head -1`, `2>&1 | head -1`): 141, as a
/// shell reports a death by SIGPIPE.
pub(crate) const EXIT_CLOSED_PIPE: u8 = 141;

/// The exit status of a command whose output could not be written for
/// another reason (a full disk, `>/dev/full`): sysexits' `EX_IOERR`.
pub(crate) const EXIT_IO_ERROR: u8 = 74;

/// Writes one line of text to stdout, as `println!` does, except that
/// every control and bidi character of it (escape sequences, a newline
/// forging a second line, U+202E) is replaced by [`clean`], and a reader
/// that went away (`payauth config schema | head -1`) ends the process
/// at once with [`EXIT_CLOSED_PIPE`] instead of a panic: nothing printed
/// after that could reach anyone.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(&format!($($arg)*))
    };
}
pub(crate) use say;

/// Writes one line of text to stderr, cleaned as [`say!`]'s. A closed
/// stderr does not stop the command (it may be saving a token): writing
/// there stops, and the command ends with [`EXIT_CLOSED_PIPE`]
/// ([`exit_status`]).
macro_rules! note {
    ($($arg:tt)*) => {
        $crate::output::write_stderr_line(&format!($($arg)*))
    };
}
pub(crate) use note;

/// What [`say!`] does.
pub(crate) fn write_stdout(line: &str) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_all(clean(line).as_bytes())
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush());
    if let Err(error) = written {
        std::process::exit(i32::from(failed_write_status(&error)));
    }
}

/// Writes `text`, our own multi-line output (a completion script, the
/// config schema), and a newline to stdout as it is, a closed reader
/// handled as by [`say!`].
pub(crate) fn print_block(text: &str) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush());
    if let Err(error) = written {
        std::process::exit(i32::from(failed_write_status(&error)));
    }
}

/// What [`note!`] does.
pub(crate) fn write_stderr_line(line: &str) {
    let mut text = clean(line).into_owned();
    text.push('\n');
    write_stderr(text.as_bytes());
}

/// The status for a write that failed with `error`.
fn failed_write_status(error: &std::io::Error) -> u8 {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        EXIT_CLOSED_PIPE
    } else {
        EXIT_IO_ERROR
    }
}

/// The status of the first failed write to stderr (0: none failed).
static STDERR_FAILED: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Writes `bytes` to stderr, all or nothing more: after a failed write
/// nothing more is written there, and the failure is remembered for
/// [`exit_status`].
pub(crate) fn write_stderr(bytes: &[u8]) {
    use std::io::Write as _;
    use std::sync::atomic::Ordering;
    if STDERR_FAILED.load(Ordering::SeqCst) != 0 {
        return;
    }
    let mut stderr = std::io::stderr().lock();
    if let Err(error) = stderr.write_all(bytes).and_then(|()| stderr.flush()) {
        let _ = STDERR_FAILED.compare_exchange(
            0,
            failed_write_status(&error),
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
    }
}

/// The exit status of a command that would end with `status`: the failed
/// write's status instead when stderr could not be written.
pub(crate) fn exit_status(status: u8) -> u8 {
    match STDERR_FAILED.load(std::sync::atomic::Ordering::SeqCst) {
        0 => status,
        failed => failed,
    }
}

/// stderr for `tracing`'s events, through [`write_stderr`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stderr;

impl std::io::Write for Stderr {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        write_stderr(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl tracing_subscriber::fmt::MakeWriter<'_> for Stderr {
    type Writer = Self;

    fn make_writer(&self) -> Self {
        *self
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

/// `text` as one line of terminal text: every control character (C0,
/// DEL, C1: escapes, newlines, BEL), Unicode line and paragraph separator
/// and format character (bidi overrides and isolates such as U+202E,
/// zero-width characters) replaced by a space. The one sanitiser of
/// everything the CLI prints as text, whoever wrote it (a provider, the
/// user's own arguments).
pub(crate) fn clean(text: &str) -> Cow<'_, str> {
    let unsafe_char =
        |c: char| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') || is_format(c);
    if text.chars().any(unsafe_char) {
        Cow::Owned(
            text.chars()
                .map(|c| if unsafe_char(c) { ' ' } else { c })
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
pub(crate) fn token_json(token: &AccessToken, reveal: bool) -> Result<serde_json::Value, Failure> {
    let mut value = serde_json::json!({
        "token_type": token.token_type(),
        "expires_in_s": expires_in_secs(token),
        "expires_at": rfc3339_utc(token.expires_at_system()),
        "scope": token.scope(),
        "has_refresh_token": token.refresh_token().is_some(),
    });
    if reveal {
        value["access_token"] = token.secret().expose_secret().into();
        value["authorization"] = authorization(token)?.into();
    }
    Ok(value)
}

/// The token's `Authorization` header value as text. `payauth_core`
/// refuses a token that is not an RFC 6750 `b64token`, so this is always
/// text; were it not, the command fails rather than print an empty value.
pub(crate) fn authorization(token: &AccessToken) -> Result<&str, Failure> {
    token.authorization().to_str().map_err(|_| {
        Failure::from(
            payauth_core::Error::new(payauth_core::ErrorKind::Malformed)
                .with_description("the token's Authorization header is not text"),
        )
    })
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
        assert_eq!(clean("x\u{202e}y\u{2066}z\u{200b}\u{2028}."), "x y z  .");
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
