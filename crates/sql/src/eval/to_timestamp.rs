//! `to_timestamp(text, template)` and `to_date(text, template)`: reading a date and time
//! by a `to_char` template, as PostgreSQL does.
//!
//! Fields: years (`YYYY`, `YYY`, `YY`, `Y`; fewer than four digits take the year nearest
//! 2020, as in PostgreSQL), `MM`, `DD`, `DDD` (day of the year), `HH`, `HH12`, `HH24`,
//! `MI`, `SS`, `MS` and `US` (a fraction: `5` is half a second), `SSSS` (seconds since
//! midnight), meridiem and era markers, and month and day names in English (`Month`,
//! `Mon`, `Day`, `Dy`, any case; a day's name is read and not checked). `FM` and `FX` are
//! accepted. A separator in the template (a space or punctuation) skips any separators in
//! the input; double-quoted text skips as many input characters; another letter skips one.
//! Numbers may be shorter than their field when a separator follows (`2024-1-5`). Fields the
//! input does not reach keep their defaults: year 1 BC, January, the 1st, midnight.
//! Every zone is UTC here. Left out (0A000 names them): ISO week dates, `CC`, `J`, `Q`,
//! `RM`, `W`, `WW` and the zone patterns.

use super::datetime::{days_from_civil, month_days, DAY_MICROS, HOUR_MICROS, MINUTE_MICROS, SECOND_MICROS};
use super::to_char::{DAYS, MONTHS};
use crate::error::{codes, Error, Result};

/// The patterns read, longest first (matched ignoring case).
const PATTERNS: [&str; 27] = [
    "SSSSS", "SSSS", "MONTH", "A.M.", "P.M.", "B.C.", "A.D.", "HH24", "HH12", "YYYY", "YYY", "MON", "DAY", "DDD", "HH",
    "MI", "SS", "MS", "US", "AM", "PM", "BC", "AD", "YY", "MM", "DY", "DD",
];
/// Patterns `to_char` writes that this reader does not take.
const UNSUPPORTED: [&str; 13] = ["IW", "ID", "IY", "WW", "CC", "TZH", "TZM", "TZ", "OF", "RM", "J", "Q", "W"];

/// The fields read so far.
#[derive(Default)]
struct Parts {
    year: Option<i64>,
    bc: bool,
    month: Option<u32>,
    day: Option<u32>,
    day_of_year: Option<u32>,
    hour: Option<i64>,
    twelve_hour: bool,
    pm: Option<bool>,
    minute: i64,
    second: i64,
    micros: i64,
    seconds_of_day: Option<i64>,
}

/// Microseconds since 2000-01-01 00:00 of `input` read by `template`.
pub fn parse(input: &str, template: &str) -> Result<i64> {
    let out_of_range =
        || Error::new(codes::DATETIME_FIELD_OVERFLOW, format!("date/time field value out of range: \"{input}\""));
    let s: Vec<char> = input.chars().collect();
    let t: Vec<char> = template.chars().collect();
    let (mut i, mut j) = (0usize, 0usize);
    let mut p = Parts::default();
    while j < t.len() {
        if t[j] == '"' {
            j += 1;
            while j < t.len() && t[j] != '"' {
                if t[j] == '\\' && j + 1 < t.len() {
                    j += 1;
                }
                j += 1;
                i = (i + 1).min(s.len());
            }
            j += 1;
            continue;
        }
        let rest: String = t[j..].iter().take(5).collect();
        if rest.len() >= 2 && (rest[..2].eq_ignore_ascii_case("FM") || rest[..2].eq_ignore_ascii_case("FX")) {
            j += 2;
            continue;
        }
        let starts = |p: &&&str| {
            rest.len() >= p.len() && rest.is_char_boundary(p.len()) && rest[..p.len()].eq_ignore_ascii_case(p)
        };
        if let Some(pattern) = PATTERNS.iter().find(starts) {
            j += pattern.len();
            if i >= s.len() {
                continue; // the input ended: the remaining fields keep their defaults
            }
            read_field(pattern, &s, &mut i, &mut p)?;
            continue;
        }
        if let Some(pattern) = UNSUPPORTED.iter().find(starts) {
            return Err(Error::new(
                codes::FEATURE_NOT_SUPPORTED,
                format!("template pattern \"{pattern}\" is not supported by to_timestamp and to_date"),
            ));
        }
        if t[j].is_alphanumeric() {
            i = (i + 1).min(s.len());
        } else {
            while i < s.len() && !s[i].is_alphanumeric() {
                i += 1;
            }
        }
        j += 1;
    }
    let mut year = p.year.unwrap_or(0);
    if p.bc {
        year = 1 - year;
    }
    let days = match p.day_of_year {
        Some(doy) if p.month.is_none() && p.day.is_none() => {
            let in_year = if super::datetime::is_leap(year) { 366 } else { 365 };
            if doy == 0 || doy > in_year {
                return Err(out_of_range());
            }
            days_from_civil(year, 1, 1) + i64::from(doy) - 1
        }
        _ => {
            let (month, day) = (p.month.unwrap_or(1), p.day.unwrap_or(1));
            if !(1..=12).contains(&month) || day == 0 || day > month_days(year, month) {
                return Err(out_of_range());
            }
            days_from_civil(year, month, day)
        }
    };
    let mut hour = p.hour.unwrap_or(0);
    if p.twelve_hour || p.pm.is_some() {
        if !(1..=12).contains(&hour) && p.hour.is_some() {
            return Err(Error::new(
                codes::INVALID_DATETIME_FORMAT,
                format!("hour \"{hour}\" is invalid for the 12-hour clock"),
            )
            .with_hint("Use the 24-hour clock, or give the hour between 1 and 12."));
        }
        hour = hour % 12 + if p.pm == Some(true) { 12 } else { 0 };
    }
    if hour > 24 || p.minute >= 60 || p.second >= 60 || (hour == 24 && (p.minute, p.second, p.micros) != (0, 0, 0)) {
        return Err(out_of_range());
    }
    let tod = match p.seconds_of_day {
        Some(secs) if secs < 86_400 => secs * SECOND_MICROS + p.micros,
        Some(_) => return Err(out_of_range()),
        None => hour * HOUR_MICROS + p.minute * MINUTE_MICROS + p.second * SECOND_MICROS + p.micros,
    };
    Ok(days * DAY_MICROS + tod)
}

/// Reads one pattern's field at `s[*i..]`.
fn read_field(pattern: &str, s: &[char], i: &mut usize, p: &mut Parts) -> Result<()> {
    let upper = pattern.to_ascii_uppercase();
    match upper.as_str() {
        "YYYY" => p.year = Some(number(s, i, 4, pattern)?),
        "YYY" => {
            let y = number(s, i, 3, pattern)?;
            p.year = Some(if y < 520 { y + 2000 } else { y + 1000 });
        }
        "YY" => {
            let y = number(s, i, 2, pattern)?;
            p.year = Some(if y < 70 { y + 2000 } else { y + 1900 });
        }
        "MM" => p.month = Some(number(s, i, 2, pattern)? as u32),
        "DD" => p.day = Some(number(s, i, 2, pattern)? as u32),
        "DDD" => p.day_of_year = Some(number(s, i, 3, pattern)? as u32),
        "HH" | "HH12" => {
            p.hour = Some(number(s, i, 2, pattern)?);
            p.twelve_hour = true;
        }
        "HH24" => p.hour = Some(number(s, i, 2, pattern)?),
        "MI" => p.minute = number(s, i, 2, pattern)?,
        "SS" => p.second = number(s, i, 2, pattern)?,
        "SSSS" | "SSSSS" => p.seconds_of_day = Some(number(s, i, 5, pattern)?),
        "MS" | "US" => {
            let width = if upper == "MS" { 3 } else { 6 };
            let start = skip_blanks(s, *i);
            let digits = s[start..].iter().take(width).take_while(|c| c.is_ascii_digit()).count();
            let value = number(s, i, width, pattern)?;
            // A fraction: "5" is 500 milliseconds.
            p.micros = value * 10i64.pow((width - digits) as u32) * if width == 3 { 1000 } else { 1 };
        }
        "AM" | "PM" | "A.M." | "P.M." => {
            let word = take_word(s, i, pattern.len());
            let w = word.to_ascii_lowercase().replace('.', "");
            p.pm = Some(match w.as_str() {
                "am" => false,
                "pm" => true,
                _ => {
                    return Err(invalid_value(
                        &word,
                        pattern,
                        "The given value did not match any of the allowed values for this field.",
                    ))
                }
            });
        }
        "BC" | "AD" | "B.C." | "A.D." => {
            let word = take_word(s, i, pattern.len());
            let w = word.to_ascii_lowercase().replace('.', "");
            p.bc = match w.as_str() {
                "bc" => true,
                "ad" => false,
                _ => {
                    return Err(invalid_value(
                        &word,
                        pattern,
                        "The given value did not match any of the allowed values for this field.",
                    ))
                }
            };
        }
        "MONTH" | "MON" => {
            let full = upper == "MONTH";
            let (m, len) = name_at(s, *i, &MONTHS, full).ok_or_else(|| {
                invalid_value(
                    &peek(s, *i, 9),
                    pattern,
                    "The given value did not match any of the allowed values for this field.",
                )
            })?;
            p.month = Some(m as u32 + 1);
            *i += len;
        }
        "DAY" | "DY" => {
            let (_, len) = name_at(s, *i, &DAYS, upper == "DAY").ok_or_else(|| {
                invalid_value(
                    &peek(s, *i, 9),
                    pattern,
                    "The given value did not match any of the allowed values for this field.",
                )
            })?;
            *i += len;
        }
        _ => unreachable!("every pattern of PATTERNS is read"),
    }
    Ok(())
}

fn skip_blanks(s: &[char], mut i: usize) -> usize {
    while i < s.len() && s[i].is_whitespace() {
        i += 1;
    }
    i
}

/// Up to `width` digits (after blanks), or 22007 naming the field.
fn number(s: &[char], i: &mut usize, width: usize, pattern: &str) -> Result<i64> {
    *i = skip_blanks(s, *i);
    let digits: String = s[*i..].iter().take(width).take_while(|c| c.is_ascii_digit()).collect();
    if digits.is_empty() {
        return Err(invalid_value(&peek(s, *i, width), pattern, "Value must be an integer."));
    }
    *i += digits.len();
    Ok(digits.parse().expect("at most six digits"))
}

fn peek(s: &[char], i: usize, n: usize) -> String {
    s[i.min(s.len())..].iter().take(n).collect()
}

/// The next `n` characters (after blanks), taken.
fn take_word(s: &[char], i: &mut usize, n: usize) -> String {
    *i = skip_blanks(s, *i);
    let word = peek(s, *i, n);
    *i += word.chars().count();
    word
}

/// The index of the name in `names` at `s[i..]` (the whole name when `full`, else its first
/// three letters), ignoring case, and the characters it spans.
fn name_at(s: &[char], i: usize, names: &[&str], full: bool) -> Option<(usize, usize)> {
    let rest: String = s[i..].iter().collect::<String>().to_ascii_lowercase();
    names.iter().enumerate().find_map(|(k, name)| {
        let name = name.to_ascii_lowercase();
        let want = if full { name.as_str() } else { &name[..3] };
        rest.starts_with(want).then_some((k, want.len()))
    })
}

fn invalid_value(value: &str, pattern: &str, detail: &str) -> Error {
    Error::new(codes::INVALID_DATETIME_FORMAT, format!("invalid value \"{value}\" for \"{pattern}\""))
        .with_detail(detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::datetime::format_timestamp;

    fn read(input: &str, template: &str) -> String {
        format_timestamp(parse(input, template).unwrap(), false)
    }

    #[test]
    fn reads_what_postgresql_reads() {
        // Each expected value is PostgreSQL 15's for the same call.
        assert_eq!(read("2024-1-5", "YYYY-MM-DD"), "2024-01-05 00:00:00");
        assert_eq!(read("2024-01-05 1:04:05 PM", "YYYY-MM-DD HH12:MI:SS AM"), "2024-01-05 13:04:05");
        assert_eq!(read("05 Jan 2024 13:04:05.123", "DD Mon YYYY HH24:MI:SS.MS"), "2024-01-05 13:04:05.123");
        assert_eq!(read("20240105", "YYYYMMDD"), "2024-01-05 00:00:00");
        assert_eq!(read("2024-01-05T10:11:12", "YYYY-MM-DD\"T\"HH24:MI:SS"), "2024-01-05 10:11:12");
        assert_eq!(read("January 5, 2024", "Month DD, YYYY"), "2024-01-05 00:00:00");
        assert_eq!(read("2024/01/05", "YYYY-MM-DD"), "2024-01-05 00:00:00");
        assert_eq!(read("2024-01-05 10:11:12.5", "YYYY-MM-DD HH24:MI:SS.US"), "2024-01-05 10:11:12.5");
        assert_eq!(read("  2024 01   05", "YYYY MM DD"), "2024-01-05 00:00:00");
        assert_eq!(read("24-01-05", "YY-MM-DD"), "2024-01-05 00:00:00");
        assert_eq!(read("Fri 2024-01-05", "Dy YYYY-MM-DD"), "2024-01-05 00:00:00");
        assert_eq!(read("2024-01-05 extra", "YYYY-MM-DD"), "2024-01-05 00:00:00");
        assert_eq!(read("2024", "YYYY-MM-DD"), "2024-01-01 00:00:00");
        assert_eq!(read("2024 100", "YYYY DDD"), "2024-04-09 00:00:00");
        assert_eq!(read("05", "MM"), "0001-05-01 00:00:00 BC");
        assert_eq!(read("1:04 am", "HH:MI am"), "0001-01-01 01:04:00 BC");
        assert_eq!(parse("2000-01-01 00:00:01", "YYYY-MM-DD HH24:MI:SS").unwrap(), SECOND_MICROS);
    }

    #[test]
    fn refuses_what_postgresql_refuses() {
        for (input, template, code) in [
            ("2024-13-05", "YYYY-MM-DD", "22008"),
            ("2024-02-30", "YYYY-MM-DD", "22008"),
            ("2024-01-05 25:00", "YYYY-MM-DD HH24:MI", "22008"),
            ("2024-xx-05", "YYYY-MM-DD", "22007"),
            ("13:00 PM", "HH12:MI PM", "22007"),
            ("2024-01", "IYYY-IW", "0A000"),
        ] {
            assert_eq!(parse(input, template).unwrap_err().code, code, "{input} by {template}");
        }
    }
}
