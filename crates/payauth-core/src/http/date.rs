//! HTTP dates (RFC 9110 §5.6.7 IMF-fixdate, `Sun, 06 Nov 1994 08:49:37
//! GMT`) as seconds since the Unix epoch, for a `Retry-After` given as a
//! date.

/// The seconds since the Unix epoch of an IMF-fixdate; `None` for anything
/// else (the obsolete RFC 850 and asctime forms, dates before 1970).
pub(super) fn parse(text: &str) -> Option<u64> {
    let mut parts = text.split_ascii_whitespace();
    let (_weekday, day, month, year, time, zone) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    let digits =
        |text: &str, len: usize| text.len() == len && text.bytes().all(|b| b.is_ascii_digit());
    if zone != "GMT" || parts.next().is_some() || !digits(day, 2) || !digits(year, 4) {
        return None;
    }
    let month = 1 + MONTHS.iter().position(|m| *m == month)?;
    let (day, year): (u64, u64) = (day.parse().ok()?, year.parse().ok()?);
    let mut clock = time
        .split(':')
        .map(|n| digits(n, 2).then(|| n.parse::<u64>().ok()).flatten());
    let (hour, minute, second) = (clock.next()??, clock.next()??, clock.next()??);
    if clock.next().is_some() || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60
    {
        return None;
    }
    let days = days_since_epoch(year, u64::try_from(month).ok()?, day)?;
    Some(days * 86_400 + hour * 3_600 + minute * 60 + second)
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days from 1970-01-01 to `year-month-day` (proleptic Gregorian), `None`
/// before 1970. After Howard Hinnant's `days_from_civil`.
fn days_since_epoch(year: u64, month: u64, day: u64) -> Option<u64> {
    let year = if month <= 2 {
        year.checked_sub(1)?
    } else {
        year
    };
    let era = year / 400;
    let year_of_era = year % 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    (era * 146_097 + day_of_era).checked_sub(719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imf_fixdates_read_as_unix_seconds() {
        // Independently: `date -u -d '1994-11-06 08:49:37' +%s`.
        assert_eq!(parse("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(parse("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse("Tue, 29 Feb 2000 23:59:59 GMT"), Some(951_868_799));
        assert_eq!(parse("Wed, 01 Mar 2000 00:00:00 GMT"), Some(951_868_800));
        assert_eq!(
            parse("Fri, 31 Dec 9999 23:59:59 GMT"),
            Some(253_402_300_799)
        );
        // A leap second is a valid time of day.
        assert_eq!(parse("Sun, 06 Nov 1994 08:49:60 GMT"), Some(784_111_800));
        assert_eq!(parse("Sun, 06 Nov 1994 08:59:00 GMT"), Some(784_112_340));
    }

    #[test]
    fn anything_else_is_no_date() {
        for text in [
            "",
            "7",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:60:00 GMT",
            "Sun, 06 Nov 1994 08:49:61 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 06 Nov 1994 08:49:37:00 GMT",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 00 Nov 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Wed, 31 Dec 1969 23:59:59 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT extra",
            "Sun, 06 Nov +994 08:49:37 GMT",
            "Sun, 06 Nov 1994 +8:49:37 GMT",
        ] {
            assert_eq!(parse(text), None, "{text:?}");
        }
    }
}
