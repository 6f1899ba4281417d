//! `Retry-After` (RFC 9110 §10.2.3): delta-seconds or an HTTP-date, read
//! without a date library. Only the IMF-fixdate form of the date is read
//! (`Sun, 06 Nov 1994 08:49:37 GMT`, the one senders must use); anything
//! else counts as no header, and the backoff alone decides.

use std::time::Duration;

/// How long `value` asks to wait, given the wall clock `unix_now` (since
/// the Unix epoch). A date in the past asks for no wait.
pub(crate) fn parse(value: &str, unix_now: Duration) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Huge values saturate; the retry policy caps the wait anyway.
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs));
    }
    let at = imf_fixdate(value)?;
    Some(Duration::from_secs(at).saturating_sub(unix_now))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` as seconds since the Unix epoch.
fn imf_fixdate(value: &str) -> Option<u64> {
    let rest = value.split_once(", ")?.1;
    let mut parts = rest.split(' ');
    let day: u64 = number(parts.next()?, 2)?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: u64 = number(parts.next()?, 4)?;
    let mut time = parts.next()?.split(':');
    let hour: u64 = number(time.next()?, 2)?;
    let minute: u64 = number(time.next()?, 2)?;
    let second: u64 = number(time.next()?, 2)?;
    if parts.next()? != "GMT" || parts.next().is_some() || time.next().is_some() {
        return None;
    }
    if !(1..=31).contains(&day) || year < 1970 || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3_600 + minute * 60 + second)
}

fn number(text: &str, digits: usize) -> Option<u64> {
    if text.len() != digits || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Days from 1970-01-01 to the date (proleptic Gregorian; Howard
/// Hinnant's `days_from_civil`, for years from 1970).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12; // March is 0
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn delta_seconds() {
        assert_eq!(parse("120", Duration::ZERO), Some(120 * SEC));
        assert_eq!(parse(" 0 ", Duration::ZERO), Some(Duration::ZERO));
        assert_eq!(
            parse("99999999999999999999999", Duration::ZERO),
            Some(Duration::from_secs(u64::MAX))
        );
        for bad in ["", "-1", "1.5", "12s", "0x10"] {
            assert_eq!(parse(bad, Duration::ZERO), None, "{bad:?}");
        }
    }

    #[test]
    fn http_dates() {
        // RFC 9110's example: 784111777 s after the epoch.
        let example = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert_eq!(imf_fixdate(example), Some(784_111_777));
        let now = Duration::from_secs(784_111_777 - 30);
        assert_eq!(parse(example, now), Some(30 * SEC));
        let later = Duration::from_secs(784_111_777 + 30);
        assert_eq!(parse(example, later), Some(Duration::ZERO), "past: no wait");
        assert_eq!(imf_fixdate("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            imf_fixdate("Tue, 29 Feb 2000 12:00:00 GMT"),
            Some(951_825_600)
        );
        assert_eq!(
            imf_fixdate("Fri, 31 Dec 2038 23:59:59 GMT"),
            Some(2_177_452_799)
        );
    }

    #[test]
    fn other_date_forms_are_ignored() {
        for bad in [
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT extra",
        ] {
            assert_eq!(parse(bad, Duration::ZERO), None, "{bad:?}");
        }
    }
}
