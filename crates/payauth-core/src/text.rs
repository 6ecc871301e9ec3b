//! Text a provider sent, made safe to print: what reaches an [`Error`](crate::Error),
//! a log line or a terminal from a provider passes through [`printable`].

/// The most characters of a provider's description kept.
pub(crate) const MAX_DESCRIPTION: usize = 300;
/// The most characters of a provider's error code kept.
pub(crate) const MAX_CODE: usize = 64;
/// The most characters of a granted scope kept.
pub(crate) const MAX_SCOPE: usize = 1024;

/// `text` without anything that could forge a log line or fool a reader,
/// cut to `max_chars` characters:
///
/// - control characters (C0, DEL, C1: newlines, escapes) and the Unicode
///   line and paragraph separators become a space, so words stay apart;
/// - Unicode format characters (bidi overrides and isolates such as
///   U+202E, zero-width spaces and joiners, the BOM, soft hyphens, tags)
///   are removed;
/// - the result is trimmed (runs of spaces inside are kept);
/// - past `max_chars` the text is cut on a character boundary and ends in
///   `…` (counted in `max_chars`).
pub(crate) fn printable(text: &str, max_chars: usize) -> String {
    if max_chars == 0 {
        return String::new();
    }
    let mut out = String::with_capacity(text.len().min(max_chars.saturating_mul(4)));
    let mut kept = 0;
    let mut cut = false;
    for c in text.chars() {
        let c = if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
            ' '
        } else if is_format(c) {
            continue;
        } else {
            c
        };
        if kept == max_chars {
            cut = true;
            break;
        }
        out.push(c);
        kept += 1;
    }
    if cut {
        out.pop();
        out.push('…');
    }
    match out.trim() {
        trimmed if trimmed.len() == out.len() => out,
        trimmed => trimmed.to_owned(),
    }
}

/// Unicode general category Cf (format), Unicode 15.1.
#[must_use]
pub fn is_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newlines_escapes_and_c1_controls_become_spaces() {
        assert_eq!(
            printable("a\nb\r\nc\u{1b}[31md\u{85}e\u{2028}f\tg\u{7f}h", 100),
            "a b  c [31md e f g h"
        );
    }

    #[test]
    fn bidi_overrides_and_zero_width_characters_are_removed() {
        assert_eq!(
            printable("evil\u{202e}txt.exe\u{200b}\u{2066}x\u{feff}\u{e0041}", 100),
            "eviltxt.exex"
        );
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary_with_a_mark() {
        let cut = printable(&"ü".repeat(500), 10);
        assert_eq!(cut.chars().count(), 10);
        assert!(cut.ends_with('…'));
        assert_eq!(cut, format!("{}…", "ü".repeat(9)));
        // Exactly at the limit: nothing cut.
        assert_eq!(printable(&"x".repeat(10), 10), "x".repeat(10));
        assert_eq!(
            printable(&"x".repeat(11), 10),
            format!("{}…", "x".repeat(9))
        );
    }

    #[test]
    fn removed_characters_do_not_count_against_the_limit() {
        assert_eq!(
            printable(&format!("{}abc", "\u{200b}".repeat(50)), 3),
            "abc"
        );
    }

    #[test]
    fn a_granted_scope_is_cleaned_like_any_provider_text() {
        use crate::{AccessToken, Issued, ManualClock, Secret};
        let token = || {
            AccessToken::new(
                Secret::new("t"),
                "Bearer",
                Issued::now(&ManualClock::new()),
                std::time::Duration::from_secs(60),
            )
            .unwrap()
        };
        let scoped = token().with_scope(Some("webhooks\u{1b}[2J\nx\u{202e}".to_owned()));
        assert_eq!(scoped.scope(), Some("webhooks [2J x"));
        assert_eq!(
            token().with_scope(Some("\u{200b}\n".to_owned())).scope(),
            None
        );
        let long = token().with_scope(Some("s".repeat(5000)));
        assert_eq!(long.scope().map(|s| s.chars().count()), Some(MAX_SCOPE));
    }

    #[test]
    fn text_is_trimmed_and_ordinary_unicode_kept() {
        assert_eq!(
            printable("  Session token bulunamadı.\n", 100),
            "Session token bulunamadı."
        );
        assert_eq!(printable("\n\n", 100), "");
        assert_eq!(printable("\u{1b}abc\u{7}", 100), "abc");
        assert_eq!(printable("abc", 0), "");
    }
}
