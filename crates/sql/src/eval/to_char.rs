//! `to_char`: PostgreSQL's formatting of timestamps, dates and numbers by a template.
//!
//! Timestamps (`to_char(ts, 'YYYY-MM-DD HH24:MI:SS')`): the template patterns of
//! PostgreSQL's table 9.26 that do not depend on a locale or a time zone database: hours
//! (`HH`, `HH12`, `HH24`), `MI`, `SS`, `MS`, `US`, `SSSS`, meridiem markers, years (`YYYY`,
//! `Y,YYY`, `YYY`, `YY`, `Y`, `IYYY`, ...), era markers, month and day names in English
//! (upper, capitalized or lower case as written, blank-padded to 9 characters unless FM),
//! `MM`, `DD`, `DDD`, `D`, `ID`, `W`, `WW`, `IW`, `IDDD`, `CC`, `J`, `Q`, `RM`, and `TZ`,
//! `tz` and `OF` (every zone is UTC here). The `FM` prefix drops padding, the `TH` and `th`
//! suffixes add an ordinal ending; double-quoted text and backslash escapes are copied.
//!
//! Numbers (`to_char(1234.5, 'FM9,999.00')`): `9`, `0`, `.` and `D`, `,` and `G`, `S`,
//! `MI`, `PL`, `SG`, `PR`, and `FM`, with PostgreSQL's C-locale output (a blank for the
//! sign of a positive number, `#` in every digit position when the integer part does not
//! fit). Left out: `L`, `RN`, `V`, `EEEE` and `TH` for numbers (22023 names them).

use super::datetime::{self, civil_from_days, days_from_civil, DAY_MICROS, HOUR_MICROS, MINUTE_MICROS, SECOND_MICROS};
use super::numeric;
use crate::error::{codes, Error, Result};
use crate::types::Numeric;

/// The months' names, as `to_char` writes them and `to_timestamp` reads them.
pub(super) const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
/// The days' names, Sunday first.
pub(super) const DAYS: [&str; 7] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const ROMAN: [&str; 12] = ["I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII"];

/// The fields of a timestamp that the patterns read.
struct Fields {
    year: i64,
    month: u32,
    day: u32,
    /// Days since 2000-01-01.
    days: i64,
    /// Microseconds since midnight.
    tod: i64,
}

/// Day of the week, 0 = Sunday (2000-01-01 was a Saturday).
fn dow(days: i64) -> i64 {
    (days + 6).rem_euclid(7)
}

/// The ISO 8601 week-numbering year and week of a day.
fn iso_week(days: i64) -> (i64, i64) {
    let (y, _, _) = civil_from_days(days);
    // The Monday of week 1 of year y: the week with January 4th.
    let week1 = |y: i64| {
        let jan4 = days_from_civil(y, 1, 4);
        jan4 - (dow(jan4) + 6).rem_euclid(7)
    };
    let mut year = y;
    if days < week1(y) {
        year = y - 1;
    } else if days >= week1(y + 1) {
        year = y + 1;
    }
    (year, (days - week1(year)) / 7 + 1)
}

fn ordinal_suffix(n: i64, upper: bool) -> &'static str {
    let s = if (n % 100) / 10 == 1 {
        "th"
    } else {
        match n % 10 {
            1 => "st",
            2 => "nd",
            3 => "rd",
            _ => "th",
        }
    };
    if upper {
        match s {
            "st" => "ST",
            "nd" => "ND",
            "rd" => "RD",
            _ => "TH",
        }
    } else {
        s
    }
}

/// A name written in the case of its pattern: `MONTH` upper, `Month` capitalized, `month`
/// lower.
fn cased(name: &str, pattern: &str) -> String {
    let mut chars = pattern.chars();
    let first_upper = chars.next().is_some_and(|c| c.is_ascii_uppercase());
    let second_upper = chars.next().is_some_and(|c| c.is_ascii_uppercase());
    if first_upper && second_upper {
        name.to_ascii_uppercase()
    } else if first_upper {
        name.to_string()
    } else {
        name.to_ascii_lowercase()
    }
}

/// Timestamp patterns, longest first so that `HH24` wins over `HH` (matched ignoring case,
/// except where the case chooses the output's).
const PATTERNS: [&str; 52] = [
    "Y,YYY", "YYYY", "IYYY", "SSSSS", "SSSS", "MONTH", "Month", "month", "A.M.", "a.m.", "P.M.", "p.m.", "B.C.",
    "b.c.", "A.D.", "a.d.", "HH24", "HH12", "IDDD", "YYY", "IYY", "MON", "Mon", "mon", "DAY", "Day", "day", "DDD",
    "HH", "MI", "SS", "MS", "US", "AM", "am", "PM", "pm", "BC", "bc", "AD", "ad", "YY", "IY", "MM", "DY", "Dy", "dy",
    "DD", "ID", "IW", "WW", "CC",
];
const SHORT_PATTERNS: [&str; 11] = ["RM", "rm", "TZ", "tz", "OF", "Y", "I", "D", "W", "J", "Q"];

/// `to_char` of a timestamp (microseconds since 2000-01-01; `with_zone` for timestamptz,
/// whose zone is always UTC here).
pub fn timestamp(t: i64, with_zone: bool, template: &str) -> Option<String> {
    if t == datetime::TS_INFINITY || t == datetime::TS_NEG_INFINITY {
        return None;
    }
    let days = t.div_euclid(DAY_MICROS);
    let (year, month, day) = civil_from_days(days);
    let f = Fields { year, month, day, days, tod: t.rem_euclid(DAY_MICROS) };
    let mut out = String::new();
    let chars: Vec<char> = template.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let rest: String = chars[i..].iter().take(6).collect();
        if chars[i] == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                }
                out.push(chars[i]);
                i += 1;
            }
            i += 1;
            continue;
        }
        if chars[i] == '\\' && i + 1 < chars.len() {
            out.push(chars[i + 1]);
            i += 2;
            continue;
        }
        let (fill, skip) = if rest.len() >= 2 && rest[..2].eq_ignore_ascii_case("FM") { (true, 2) } else { (false, 0) };
        let body: String = chars[i + skip..].iter().take(6).collect();
        let found = PATTERNS.iter().chain(SHORT_PATTERNS.iter()).find(|p| starts_with_pattern(&body, p)).copied();
        let Some(p) = found else {
            // Not a pattern (nor FM before one): copied as text, as PostgreSQL does.
            out.push(chars[i]);
            i += 1;
            continue;
        };
        i += skip + p.chars().count();
        let (text, number) = timestamp_field(p, &f, with_zone, fill);
        out.push_str(&text);
        let suffix: String = chars[i..].iter().take(2).collect();
        if let (Some(n), "TH" | "th") = (number, suffix.as_str()) {
            out.push_str(ordinal_suffix(n, suffix == "TH"));
            i += 2;
        }
    }
    Some(out)
}

/// True if `body` starts with pattern `p`: exactly for patterns whose case chooses the
/// output's case, ignoring case for the others.
fn starts_with_pattern(body: &str, p: &str) -> bool {
    let case_sensitive = p.chars().any(|c| c.is_ascii_lowercase())
        || matches!(
            p,
            "MONTH"
                | "MON"
                | "DAY"
                | "DY"
                | "AM"
                | "PM"
                | "A.M."
                | "P.M."
                | "BC"
                | "AD"
                | "B.C."
                | "A.D."
                | "RM"
                | "TZ"
        );
    if case_sensitive {
        body.starts_with(p)
    } else {
        body.len() >= p.len() && body.is_char_boundary(p.len()) && body[..p.len()].eq_ignore_ascii_case(p)
    }
}

/// One pattern's text, and its number for a TH suffix.
fn timestamp_field(p: &str, f: &Fields, with_zone: bool, fill: bool) -> (String, Option<i64>) {
    let num = |v: i64, width: usize| -> (String, Option<i64>) {
        let s = if fill {
            v.to_string()
        } else if v < 0 {
            format!("-{:0width$}", -v, width = width.saturating_sub(1))
        } else {
            format!("{v:0width$}")
        };
        (s, Some(v))
    };
    let pad = |s: String| if fill { s } else { format!("{s:<9}") };
    let hour = f.tod / HOUR_MICROS;
    let hour12 = if hour % 12 == 0 { 12 } else { hour % 12 };
    let pm = hour >= 12;
    // Years before 1 are written as positive BC years.
    let (year, bc) = if f.year <= 0 { (1 - f.year, true) } else { (f.year, false) };
    let (iso_year, iso_week) = iso_week(f.days);
    let upper = p.chars().next().is_some_and(|c| c.is_ascii_uppercase());
    let text = |s: &str| (s.to_string(), None);
    match p.to_ascii_uppercase().as_str() {
        "HH" | "HH12" => num(hour12, 2),
        "HH24" => num(hour, 2),
        "MI" => num(f.tod / MINUTE_MICROS % 60, 2),
        "SS" => num(f.tod / SECOND_MICROS % 60, 2),
        "MS" => num(f.tod % SECOND_MICROS / 1000, 3),
        "US" => num(f.tod % SECOND_MICROS, 6),
        "SSSS" | "SSSSS" => num(f.tod / SECOND_MICROS, 0),
        "AM" | "PM" => text(match (pm, upper) {
            (false, true) => "AM",
            (true, true) => "PM",
            (false, false) => "am",
            (true, false) => "pm",
        }),
        "A.M." | "P.M." => text(match (pm, upper) {
            (false, true) => "A.M.",
            (true, true) => "P.M.",
            (false, false) => "a.m.",
            (true, false) => "p.m.",
        }),
        "BC" | "AD" => text(match (bc, upper) {
            (true, true) => "BC",
            (false, true) => "AD",
            (true, false) => "bc",
            (false, false) => "ad",
        }),
        "B.C." | "A.D." => text(match (bc, upper) {
            (true, true) => "B.C.",
            (false, true) => "A.D.",
            (true, false) => "b.c.",
            (false, false) => "a.d.",
        }),
        "Y,YYY" => (format!("{},{:03}", year / 1000, year % 1000), Some(year)),
        "YYYY" => num(year, 4),
        "YYY" => num(year % 1000, 3),
        "YY" => num(year % 100, 2),
        "Y" => num(year % 10, 1),
        "IYYY" => num(iso_year, 4),
        "IYY" => num(iso_year % 1000, 3),
        "IY" => num(iso_year % 100, 2),
        "I" => num(iso_year % 10, 1),
        "MONTH" => (pad(cased(MONTHS[f.month as usize - 1], p)), None),
        "MON" => (cased(&MONTHS[f.month as usize - 1][..3], p), None),
        "MM" => num(i64::from(f.month), 2),
        "DAY" => (pad(cased(DAYS[dow(f.days) as usize], p)), None),
        "DY" => (cased(&DAYS[dow(f.days) as usize][..3], p), None),
        "DDD" => num(f.days - days_from_civil(f.year, 1, 1) + 1, 3),
        "IDDD" => {
            let jan4 = days_from_civil(iso_year, 1, 4);
            num(f.days - (jan4 - (dow(jan4) + 6).rem_euclid(7)) + 1, 3)
        }
        "DD" => num(i64::from(f.day), 2),
        "D" => num(dow(f.days) + 1, 1),
        "ID" => num((dow(f.days) + 6).rem_euclid(7) + 1, 1),
        "W" => num((i64::from(f.day) - 1) / 7 + 1, 1),
        "WW" => num((f.days - days_from_civil(f.year, 1, 1)) / 7 + 1, 2),
        "IW" => num(iso_week, 2),
        "CC" => {
            let cc = if f.year > 0 { (f.year + 99) / 100 } else { -((99 - (f.year - 1)) / 100) };
            num(cc, 2)
        }
        // Julian day: 2000-01-01 is day 2,451,545.
        "J" => num(f.days + 2_451_545, 0),
        "Q" => num((i64::from(f.month) - 1) / 3 + 1, 1),
        "RM" => {
            let r = ROMAN[f.month as usize - 1];
            let r = if p == "rm" { r.to_ascii_lowercase() } else { r.to_string() };
            (if fill { r } else { format!("{r:<4}") }, None)
        }
        "TZ" if with_zone => text(if p == "tz" { "utc" } else { "UTC" }),
        "OF" if with_zone => text("+00"),
        _ => text(""),
    }
}

/// `to_char` of a number given as a NUMERIC (integers and floats are converted first).
pub fn number(n: Numeric, template: &str) -> Result<String> {
    let fmt = NumberFormat::parse(template)?;
    let negative = n.mantissa < 0;
    let rounded = numeric::round(Numeric { mantissa: n.mantissa.abs(), scale: n.scale }, fmt.fraction as i64)?;
    let text = numeric::to_string(rounded);
    let (int_part, frac_part) = text.split_once('.').unwrap_or((&text, ""));
    // A zero integer part shows no digit before a point ("  .50"), and a 0 without one.
    let has_point = fmt.items.iter().any(|i| matches!(i, Item::Point));
    let int_digits = if int_part == "0" && has_point { "" } else { int_part };
    let overflow = int_digits.len() > fmt.integer;
    let first_digit_at = fmt.integer - int_digits.len().min(fmt.integer);
    let (mut int_pos, mut frac_pos, mut started) = (0usize, 0usize, false);
    let mut body = String::new();
    for item in &fmt.items {
        match item {
            Item::Digit { zero } => {
                if overflow {
                    body.push('#');
                } else if int_pos >= first_digit_at {
                    body.push(char::from(int_digits.as_bytes()[int_pos - first_digit_at]));
                    started = true;
                } else if *zero || fmt.zero_from.is_some_and(|z| int_pos >= z) {
                    body.push('0');
                    started = true;
                } else if !fmt.fill {
                    body.push(' ');
                }
                int_pos += 1;
            }
            Item::Group if overflow || started => body.push(','),
            Item::Group if !fmt.fill => body.push(' '),
            Item::Group => {}
            Item::Point => body.push('.'),
            Item::FracDigit => {
                let d = if overflow { '#' } else { frac_part.as_bytes().get(frac_pos).map_or('0', |b| char::from(*b)) };
                body.push(d);
                frac_pos += 1;
            }
            Item::Text(s) => body.push_str(s),
            Item::Sign(SignKind::S) if !fmt.leading_s => body.push(if negative { '-' } else { '+' }),
            Item::Sign(SignKind::S) => {}
            Item::Sign(SignKind::Mi) => body.push_str(match (negative, fmt.fill) {
                (true, _) => "-",
                (false, true) => "",
                (false, false) => " ",
            }),
            Item::Sign(SignKind::Pl) => body.push_str(if negative { "" } else { "+" }),
            Item::Sign(SignKind::Sg) => body.push(if negative { '-' } else { '+' }),
        }
    }
    if fmt.fill {
        // FM drops the zeros a 9 stands for at the end of the fraction.
        if let Some(point) = body.rfind('.') {
            let keep = point + 1 + fmt.frac_min;
            while body.len() > keep && body.ends_with('0') {
                body.pop();
            }
        }
    }
    // The sign that sits just before the number's first character, in place of a blank:
    // PR's bracket, a leading S, or the implicit sign when the template has none.
    let blank = if fmt.fill { "" } else { " " };
    let anchored = if fmt.pr {
        if negative {
            "<"
        } else {
            blank
        }
    } else if fmt.leading_s {
        if negative {
            "-"
        } else {
            "+"
        }
    } else if !fmt.items.iter().any(|i| matches!(i, Item::Sign(_))) {
        if negative {
            "-"
        } else {
            blank
        }
    } else {
        ""
    };
    let lead = body.len() - body.trim_start_matches(' ').len();
    let mut out = format!("{}{anchored}{}", &body[..lead], &body[lead..]);
    if fmt.pr {
        out.push_str(if negative { ">" } else { blank });
    }
    Ok(out)
}

#[derive(Debug)]
enum SignKind {
    S,
    Mi,
    Pl,
    Sg,
}

#[derive(Debug)]
enum Item {
    Digit { zero: bool },
    FracDigit,
    Group,
    Point,
    Sign(SignKind),
    Text(String),
}

/// A parsed number template.
struct NumberFormat {
    items: Vec<Item>,
    /// Digit positions before the point.
    integer: usize,
    /// Digit positions after the point.
    fraction: usize,
    /// Fraction digits FM keeps: up to the last 0 after the point.
    frac_min: usize,
    /// The integer position of the first 0: zeros are printed from there on.
    zero_from: Option<usize>,
    fill: bool,
    pr: bool,
    /// An S before the first digit: the sign sits just before the number.
    leading_s: bool,
}

impl NumberFormat {
    fn parse(template: &str) -> Result<NumberFormat> {
        let mut f = NumberFormat {
            items: Vec::new(),
            integer: 0,
            fraction: 0,
            frac_min: 0,
            zero_from: None,
            fill: false,
            pr: false,
            leading_s: false,
        };
        let chars: Vec<char> = template.chars().collect();
        let mut i = 0;
        let mut after_point = false;
        while i < chars.len() {
            let two: String = chars[i..].iter().take(2).collect::<String>().to_ascii_uppercase();
            let c = chars[i];
            match c {
                '9' | '0' => {
                    if after_point {
                        f.fraction += 1;
                        if c == '0' {
                            f.frac_min = f.fraction;
                        }
                        f.items.push(Item::FracDigit);
                    } else {
                        if c == '0' && f.zero_from.is_none() {
                            f.zero_from = Some(f.integer);
                        }
                        f.integer += 1;
                        f.items.push(Item::Digit { zero: c == '0' });
                    }
                    i += 1;
                }
                '.' | 'D' | 'd' if !after_point => {
                    after_point = true;
                    f.items.push(Item::Point);
                    i += 1;
                }
                ',' | 'G' | 'g' => {
                    f.items.push(Item::Group);
                    i += 1;
                }
                _ if two == "FM" => {
                    f.fill = true;
                    i += 2;
                }
                _ if two == "PR" => {
                    f.pr = true;
                    i += 2;
                }
                _ if two == "MI" => {
                    f.items.push(Item::Sign(SignKind::Mi));
                    i += 2;
                }
                _ if two == "PL" => {
                    f.items.push(Item::Sign(SignKind::Pl));
                    i += 2;
                }
                _ if two == "SG" => {
                    f.items.push(Item::Sign(SignKind::Sg));
                    i += 2;
                }
                'S' | 's' => {
                    f.leading_s = f.integer == 0 && !after_point;
                    f.items.push(Item::Sign(SignKind::S));
                    i += 1;
                }
                '"' => {
                    let mut s = String::new();
                    i += 1;
                    while i < chars.len() && chars[i] != '"' {
                        s.push(chars[i]);
                        i += 1;
                    }
                    i += 1;
                    f.items.push(Item::Text(s));
                }
                'L' | 'l' | 'V' | 'v' | 'E' | 'e' | 'R' | 'r' | 'T' | 't' if is_unsupported(&chars[i..]) => {
                    return Err(Error::new(
                        codes::FEATURE_NOT_SUPPORTED,
                        format!(
                            "to_char number pattern \"{}\" is not supported",
                            chars[i..].iter().take(4).collect::<String>()
                        ),
                    ));
                }
                other => {
                    f.items.push(Item::Text(other.to_string()));
                    i += 1;
                }
            }
        }
        Ok(f)
    }
}

fn is_unsupported(rest: &[char]) -> bool {
    let s: String = rest.iter().take(4).collect::<String>().to_ascii_uppercase();
    s.starts_with('L') || s.starts_with('V') || s.starts_with("EEEE") || s.starts_with("RN") || s.starts_with("TH")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> i64 {
        datetime::parse_datetime(s, datetime::DateKind::Timestamp).unwrap()
    }

    #[test]
    fn timestamps_format_as_postgres() {
        let t = ts("2024-05-06 07:08:09.123456");
        assert_eq!(timestamp(t, false, "YYYY-MM-DD HH24:MI:SS").unwrap(), "2024-05-06 07:08:09");
        assert_eq!(timestamp(t, false, "HH12:MI AM, Dy DD Mon YYYY").unwrap(), "07:08 AM, Mon 06 May 2024");
        assert_eq!(timestamp(t, false, "Month|FMMonth|month|MON").unwrap(), "May      |May|may      |MAY");
        assert_eq!(timestamp(t, false, "FMDDth \"of\" FMMonth").unwrap(), "6th of May");
        assert_eq!(timestamp(t, false, "MS US SSSS Q J").unwrap(), "123 123456 25689 2 2460437");
        assert_eq!(timestamp(t, false, "D ID DDD IW WW W CC RM").unwrap(), "2 1 127 19 19 1 21 V   ");
        assert_eq!(timestamp(ts("2021-01-01 00:00"), false, "IYYY-IW-ID").unwrap(), "2020-53-5");
        assert_eq!(timestamp(t, true, "HH24 TZ OF").unwrap(), "07 UTC +00");
    }

    fn num(s: &str, f: &str) -> String {
        number(numeric::parse(s).unwrap().unwrap(), f).unwrap()
    }

    #[test]
    fn numbers_format_as_postgres() {
        assert_eq!(num("1234.5", "9999.99"), " 1234.50");
        assert_eq!(num("1234.5", "FM9999.99"), "1234.5");
        assert_eq!(num("5", "000"), " 005");
        assert_eq!(num("-5", "999"), "  -5");
        assert_eq!(num("1234567", "9,999,999"), " 1,234,567");
        assert_eq!(num("12", "9,999"), "    12");
        assert_eq!(num("0.5", "9.99"), "  .50");
        assert_eq!(num("0.5", "0.99"), " 0.50");
        assert_eq!(num("0.5", "FM9.99"), ".5");
        assert_eq!(num("0.5", "FM0.00"), "0.50");
        assert_eq!(num("12345", "999"), " ###");
        assert_eq!(num("-12.5", "999.9PR"), " <12.5>");
        assert_eq!(num("12.5", "999.9PR"), "  12.5 ");
        assert_eq!(num("12", "S999"), " +12");
        assert_eq!(num("-3", "S9"), "-3");
        assert_eq!(num("-0.5", "9.99"), " -.50");
        assert_eq!(num("-1234.5", "FM9,999.99"), "-1,234.5");
        assert_eq!(num("0", "999"), "   0");
        assert_eq!(num("0", "FM999"), "0");
        assert_eq!(num("0", "9.99"), "  .00");
        assert_eq!(num("7", "FM00"), "07");
        assert_eq!(num("3.14159", "9.9999"), " 3.1416");
        assert_eq!(num("100", "FM999MI"), "100");
        assert_eq!(num("-12", "999MI"), " 12-");
        assert_eq!(num("1234.567", "FM9,999.00"), "1,234.57");
    }
}
