//! Dates, timestamps and intervals: the proleptic Gregorian calendar, PostgreSQL's ISO input
//! and output formats, and interval arithmetic.
//!
//! Dates are days since 2000-01-01 and timestamps microseconds since 2000-01-01 00:00:00,
//! PostgreSQL's own epoch. Years are astronomical inside (year 0 is 1 BC) and printed with
//! a ` BC` suffix as PostgreSQL does. `infinity` and `-infinity` are the extreme values of
//! the representation (`i32::MIN/MAX` for dates, `i64::MIN/MAX` for timestamps). The
//! session time zone is always UTC, so TIMESTAMPTZ prints with `+00`.
//!
//! Input accepted: `YYYY-MM-DD`, then optionally ` ` or `T` and `HH:MM[:SS[.ffffff]]`, then
//! optionally a zone (`Z`, `UTC`, `GMT`, `±HH[[:]MM]`), then optionally ` BC`/` AD`; plus
//! `epoch`, `infinity`, `-infinity`. Intervals: PostgreSQL's unit syntax (`1 year 2 mons
//! -3 days 04:05:06.5`, `@ 1 day ago`, abbreviations like `3h`, fractions like `1.5 hours`)
//! and ISO 8601 (`P1Y2M3DT4H5M6S`).
//!
//! Left out: named time zones other than UTC, `MM/DD/YYYY` and month-name input, `now`,
//! `today`, and the TIME types.

use crate::error::{codes, Error, Result};
use crate::types::Interval;

/// Microseconds in a day.
pub const DAY_MICROS: i64 = 86_400_000_000;
/// Microseconds in an hour.
pub const HOUR_MICROS: i64 = 3_600_000_000;
/// Microseconds in a minute.
pub const MINUTE_MICROS: i64 = 60_000_000;
/// Microseconds in a second.
pub const SECOND_MICROS: i64 = 1_000_000;
/// Days from 1970-01-01 (Unix epoch) to 2000-01-01.
pub const UNIX_EPOCH_DAYS: i64 = 10_957;

/// DATE 'infinity'.
pub const DATE_INFINITY: i32 = i32::MAX;
/// DATE '-infinity'.
pub const DATE_NEG_INFINITY: i32 = i32::MIN;
/// TIMESTAMP 'infinity'.
pub const TS_INFINITY: i64 = i64::MAX;
/// TIMESTAMP '-infinity'.
pub const TS_NEG_INFINITY: i64 = i64::MIN;

/// Days since 2000-01-01 of a proleptic Gregorian date (astronomical year).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468 - UNIX_EPOCH_DAYS
}

/// The (astronomical year, month, day) of a day number.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + UNIX_EPOCH_DAYS + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// True in a Gregorian leap year.
pub fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Days in a month.
pub fn month_days(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// First day PostgreSQL accepts: 4714-11-24 BC (Julian day 0).
pub fn date_min() -> i64 {
    days_from_civil(-4713, 11, 24)
}

/// One past the last date PostgreSQL accepts (5874897-12-31).
pub fn date_end() -> i64 {
    days_from_civil(5_874_898, 1, 1)
}

/// One past the last timestamp day PostgreSQL accepts (294276-12-31).
pub fn timestamp_end_days() -> i64 {
    days_from_civil(294_277, 1, 1)
}

/// True if a finite timestamp is in PostgreSQL's range.
pub fn timestamp_in_range(t: i64) -> bool {
    let days = t.div_euclid(DAY_MICROS);
    days >= date_min() && days < timestamp_end_days()
}

/// 22008 `timestamp out of range`.
pub fn timestamp_out_of_range() -> Error {
    Error::new(codes::DATETIME_FIELD_OVERFLOW, "timestamp out of range")
}

/// 22008 `date out of range`.
pub fn date_out_of_range() -> Error {
    Error::new(codes::DATETIME_FIELD_OVERFLOW, "date out of range")
}

/// 22008 `interval out of range`.
pub fn interval_out_of_range() -> Error {
    Error::new(codes::DATETIME_FIELD_OVERFLOW, "interval out of range")
}

/// A checked finite timestamp, or 22008.
pub fn check_timestamp(t: i64) -> Result<i64> {
    if timestamp_in_range(t) {
        Ok(t)
    } else {
        Err(timestamp_out_of_range())
    }
}

/// A checked finite date, or 22008.
pub fn check_date(d: i64) -> Result<i32> {
    if d >= date_min() && d < date_end() {
        Ok(d as i32)
    } else {
        Err(date_out_of_range())
    }
}

fn year_text(year: i64) -> (i64, bool) {
    if year <= 0 {
        (1 - year, true)
    } else {
        (year, false)
    }
}

/// `YYYY-MM-DD[ BC]`, `infinity`, `-infinity`.
pub fn format_date(d: i32) -> String {
    match d {
        DATE_INFINITY => "infinity".into(),
        DATE_NEG_INFINITY => "-infinity".into(),
        _ => {
            let (y, m, day) = civil_from_days(i64::from(d));
            let (y, bc) = year_text(y);
            format!("{y:04}-{m:02}-{day:02}{}", if bc { " BC" } else { "" })
        }
    }
}

/// `HH:MM:SS[.ffffff]` with trailing fraction zeros trimmed.
fn format_time_of_day(out: &mut String, micros: i64) {
    let (h, rest) = (micros / HOUR_MICROS, micros % HOUR_MICROS);
    let (m, rest) = (rest / MINUTE_MICROS, rest % MINUTE_MICROS);
    let (s, frac) = (rest / SECOND_MICROS, rest % SECOND_MICROS);
    out.push_str(&format!("{h:02}:{m:02}:{s:02}"));
    push_fraction(out, frac);
}

fn push_fraction(out: &mut String, frac: i64) {
    if frac != 0 {
        let f = format!("{frac:06}");
        out.push('.');
        out.push_str(f.trim_end_matches('0'));
    }
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff][+00][ BC]`.
pub fn format_timestamp(t: i64, with_zone: bool) -> String {
    match t {
        TS_INFINITY => return "infinity".into(),
        TS_NEG_INFINITY => return "-infinity".into(),
        _ => {}
    }
    let days = t.div_euclid(DAY_MICROS);
    let tod = t.rem_euclid(DAY_MICROS);
    let (y, m, d) = civil_from_days(days);
    let (y, bc) = year_text(y);
    let mut out = format!("{y:04}-{m:02}-{d:02} ");
    format_time_of_day(&mut out, tod);
    if with_zone {
        out.push_str("+00");
    }
    if bc {
        out.push_str(" BC");
    }
    out
}

/// PostgreSQL's `postgres` interval style: `1 year 2 mons -3 days +04:05:06.5`.
pub fn format_interval(iv: Interval) -> String {
    let mut out = String::new();
    let mut is_zero = true;
    let mut is_before = false;
    let year = iv.months / 12;
    let mon = iv.months % 12;
    for (value, unit) in [(i64::from(year), "year"), (i64::from(mon), "mon"), (i64::from(iv.days), "day")] {
        if value == 0 {
            continue;
        }
        if !is_zero {
            out.push(' ');
        }
        if is_before && value > 0 {
            out.push('+');
        }
        out.push_str(&format!("{value} {unit}{}", if value != 1 { "s" } else { "" }));
        is_before = value < 0;
        is_zero = false;
    }
    if is_zero || iv.micros != 0 {
        let t = iv.micros;
        let hours = (t / HOUR_MICROS).unsigned_abs();
        let mins = ((t % HOUR_MICROS) / MINUTE_MICROS).unsigned_abs();
        let secs = ((t % MINUTE_MICROS) / SECOND_MICROS).unsigned_abs();
        let frac = (t % SECOND_MICROS).unsigned_abs();
        if !is_zero {
            out.push(' ');
        }
        out.push_str(if t < 0 {
            "-"
        } else if is_before {
            "+"
        } else {
            ""
        });
        out.push_str(&format!("{hours:02}:{mins:02}:{secs:02}"));
        push_fraction(&mut out, frac as i64);
    }
    out
}

/// Which datetime type an input is for (names its errors and decides zone handling).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateKind {
    /// DATE.
    Date,
    /// TIMESTAMP.
    Timestamp,
    /// TIMESTAMPTZ.
    TimestampTz,
}

impl DateKind {
    fn type_name(self) -> &'static str {
        match self {
            DateKind::Date => "date",
            DateKind::Timestamp => "timestamp",
            DateKind::TimestampTz => "timestamp with time zone",
        }
    }
}

fn bad_syntax(kind: &str, s: &str) -> Error {
    Error::new(codes::INVALID_DATETIME_FORMAT, format!("invalid input syntax for type {kind}: \"{s}\""))
}

fn field_out_of_range(s: &str) -> Error {
    Error::new(codes::DATETIME_FIELD_OVERFLOW, format!("date/time field value out of range: \"{s}\""))
}

/// A small cursor over ASCII input.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn digits(&mut self, max: usize) -> Option<(i64, usize)> {
        let start = self.i;
        let mut v: i64 = 0;
        while let Some(c) = self.peek().filter(u8::is_ascii_digit) {
            if self.i - start >= max {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
            self.i += 1;
        }
        (self.i > start).then_some((v, self.i - start))
    }
    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }
    fn rest(&self) -> &[u8] {
        &self.b[self.i..]
    }
}

/// Parses a date, timestamp or timestamptz; returns days (for DATE) or microseconds.
pub fn parse_datetime(s: &str, kind: DateKind) -> Result<i64> {
    let name = kind.type_name();
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let (pos, neg) = match kind {
        DateKind::Date => (i64::from(DATE_INFINITY), i64::from(DATE_NEG_INFINITY)),
        _ => (TS_INFINITY, TS_NEG_INFINITY),
    };
    match lower.as_str() {
        "infinity" | "+infinity" => return Ok(pos),
        "-infinity" => return Ok(neg),
        "epoch" => {
            return Ok(if kind == DateKind::Date { -UNIX_EPOCH_DAYS } else { -UNIX_EPOCH_DAYS * DAY_MICROS });
        }
        _ => {}
    }
    let mut c = Cursor { b: lower.as_bytes(), i: 0 };
    let syntax = || bad_syntax(name, s);
    let (mut year, year_digits) = c.digits(9).ok_or_else(syntax)?;
    let (month, day);
    if year_digits == 8 && !matches!(c.peek(), Some(b'-' | b'/')) {
        // ISO 8601 basic: YYYYMMDD.
        (month, day) = (year / 100 % 100, year % 100);
        year /= 10_000;
    } else {
        let sep = c.peek().filter(|b| *b == b'-' || *b == b'/').ok_or_else(syntax)?;
        c.i += 1;
        month = c.digits(2).ok_or_else(syntax)?.0;
        if !c.eat(sep) {
            return Err(syntax());
        }
        day = c.digits(2).ok_or_else(syntax)?.0;
    }
    let mut tod: i64 = 0;
    let mut zone_secs: i64 = 0;
    let mut time_fields = (0, 0, 0, 0);
    let had_sep = c.eat(b't') || {
        let before = c.i;
        c.skip_spaces();
        c.i > before
    };
    if had_sep && c.peek().is_some_and(|d| d.is_ascii_digit()) {
        let (h, _) = c.digits(2).ok_or_else(syntax)?;
        let (mi, sec, frac) = minutes_and_seconds(&mut c).ok_or_else(syntax)?;
        time_fields = (h, mi, sec, frac);
    }
    c.skip_spaces();
    // Zone.
    if c.eat(b'z') {
    } else if c.rest().starts_with(b"utc") || c.rest().starts_with(b"gmt") {
        c.i += 3;
    } else if let Some(sign) = c.peek().filter(|b| *b == b'+' || *b == b'-') {
        c.i += 1;
        let (hh, n) = c.digits(4).ok_or_else(syntax)?;
        let (hh, mut mm) = if n > 2 { (hh / 100, hh % 100) } else { (hh, 0) };
        if n <= 2 && c.eat(b':') {
            mm = c.digits(2).ok_or_else(syntax)?.0;
        }
        if hh > 15 || mm > 59 {
            // 22009 invalid_time_zone_displacement_value.
            return Err(Error::new("22009", format!("time zone displacement out of range: \"{s}\"")));
        }
        zone_secs = (hh * 3600 + mm * 60) * if sign == b'-' { -1 } else { 1 };
    }
    c.skip_spaces();
    let mut astronomical_year = year;
    if c.rest().starts_with(b"bc") {
        c.i += 2;
        astronomical_year = 1 - year;
    } else if c.rest().starts_with(b"ad") {
        c.i += 2;
    }
    c.skip_spaces();
    if c.peek().is_some() {
        let zone = lower[c.i..].trim();
        if kind != DateKind::Date && zone.contains('/') && zone.starts_with(|b: char| b.is_ascii_alphabetic()) {
            return Err(Error::new(codes::INVALID_PARAMETER_VALUE, format!("time zone \"{zone}\" not recognized")));
        }
        return Err(syntax());
    }
    let (h, mi, sec, frac) = time_fields;
    if year == 0
        || !(1..=12).contains(&month)
        || day < 1
        || day > i64::from(month_days(astronomical_year, month as u32))
    {
        return Err(field_out_of_range(s));
    }
    if h > 24 || mi > 59 || sec > 60 || (h == 24 && (mi, sec, frac) != (0, 0, 0)) {
        return Err(field_out_of_range(s));
    }
    tod += h * HOUR_MICROS + mi * MINUTE_MICROS + sec * SECOND_MICROS + frac;
    let days = days_from_civil(astronomical_year, month as u32, day as u32);
    match kind {
        DateKind::Date => {
            if days < date_min() || days >= date_end() {
                return Err(Error::new(codes::DATETIME_FIELD_OVERFLOW, format!("date out of range: \"{s}\"")));
            }
            Ok(days)
        }
        DateKind::Timestamp | DateKind::TimestampTz => {
            let local = days.checked_mul(DAY_MICROS).and_then(|d| d.checked_add(tod));
            let zone = if kind == DateKind::TimestampTz { zone_secs * SECOND_MICROS } else { 0 };
            match local.and_then(|l| l.checked_sub(zone)).filter(|t| timestamp_in_range(*t)) {
                Some(t) => Ok(t),
                None => Err(Error::new(codes::DATETIME_FIELD_OVERFLOW, format!("timestamp out of range: \"{s}\""))),
            }
        }
    }
}

/// `HH:MM:SS[.ffffff]`, a TIME's output form.
pub fn format_time(t: i64) -> String {
    let mut out = String::with_capacity(15);
    format_time_of_day(&mut out, t);
    out
}

/// `t + shift` microseconds, wrapped into one day (TIME ± INTERVAL).
pub fn time_wrap(t: i64, shift: i64) -> i64 {
    (i128::from(t) + i128::from(shift)).rem_euclid(i128::from(DAY_MICROS)) as i64
}

/// Parses a TIME: `HH:MM[:SS[.fff]]` with an optional AM or PM, `allballs`, or a
/// timestamp's text (its time of day is taken). A zone after the time is ignored, as
/// PostgreSQL's `time` input ignores it.
pub fn parse_time(s: &str) -> Result<i64> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    if lower == "allballs" {
        return Ok(0);
    }
    let syntax = || bad_syntax("time", s);
    let mut c = Cursor { b: lower.as_bytes(), i: 0 };
    let (h, n) = c.digits(4).ok_or_else(syntax)?;
    if n > 2 || matches!(c.peek(), Some(b'-' | b'/')) {
        // A date first: the time of day of the timestamp.
        let ts = parse_datetime(t, DateKind::Timestamp).map_err(|_| syntax())?;
        return Ok(ts.rem_euclid(DAY_MICROS));
    }
    let (mi, sec, frac) = minutes_and_seconds(&mut c).ok_or_else(syntax)?;
    c.skip_spaces();
    let mut h = h;
    if c.rest().starts_with(b"am") || c.rest().starts_with(b"pm") {
        if !(1..=12).contains(&h) {
            return Err(field_out_of_range(s));
        }
        let pm = c.rest()[0] == b'p';
        h = h % 12 + if pm { 12 } else { 0 };
        c.i += 2;
        c.skip_spaces();
    }
    // A zone (Z, UTC, +hh[:mm]) is read and ignored.
    if c.eat(b'z') {
    } else if c.rest().starts_with(b"utc") || c.rest().starts_with(b"gmt") {
        c.i += 3;
    } else if c.peek().is_some_and(|b| b == b'+' || b == b'-') {
        c.i += 1;
        c.digits(4).ok_or_else(syntax)?;
        if c.eat(b':') {
            c.digits(2).ok_or_else(syntax)?;
        }
    }
    c.skip_spaces();
    if c.peek().is_some() {
        return Err(syntax());
    }
    if h > 24 || mi > 59 || sec > 60 || (h == 24 && (mi, sec, frac) != (0, 0, 0)) {
        return Err(field_out_of_range(s));
    }
    let t = h * HOUR_MICROS + mi * MINUTE_MICROS + sec * SECOND_MICROS + frac;
    if t > DAY_MICROS {
        return Err(field_out_of_range(s));
    }
    Ok(t)
}

/// `:MM[:SS[.fff]]` after an hour: minutes, seconds and microseconds; None if malformed.
fn minutes_and_seconds(c: &mut Cursor<'_>) -> Option<(i64, i64, i64)> {
    if !c.eat(b':') {
        return None;
    }
    let (mi, _) = c.digits(2)?;
    let (mut sec, mut frac) = (0, 0);
    if c.eat(b':') {
        sec = c.digits(2)?.0;
        if c.eat(b'.') {
            frac = parse_fraction_micros(c)?;
        }
    }
    Some((mi, sec, frac))
}

/// Fraction digits after a point, as microseconds rounded half up (PostgreSQL rounds).
fn parse_fraction_micros(c: &mut Cursor<'_>) -> Option<i64> {
    let start = c.i;
    while c.peek().is_some_and(|b| b.is_ascii_digit()) {
        c.i += 1;
    }
    let digits = &c.b[start..c.i];
    if digits.is_empty() {
        return Some(0);
    }
    let mut v: i64 = 0;
    for k in 0..6 {
        v = v * 10 + digits.get(k).map_or(0, |d| i64::from(d - b'0'));
    }
    if digits.get(6).is_some_and(|d| *d >= b'5') {
        v += 1;
    }
    Some(v)
}

/// Accumulates an interval in wide fields before the range check.
#[derive(Default)]
struct IntervalAcc {
    months: f64,
    days: f64,
    micros: f64,
}

impl IntervalAcc {
    /// Adds `value` of a unit, spilling fractions downward as PostgreSQL does.
    fn add(&mut self, value: f64, unit: Unit) {
        match unit {
            Unit::Months(per) => {
                let months = value * per;
                if per >= 12.0 {
                    // Years and up: fractional months round (PostgreSQL's rint).
                    self.months += months.round_ties_even();
                } else {
                    let whole = months.trunc();
                    self.months += whole;
                    self.add(months - whole, Unit::Days(30.0));
                }
            }
            Unit::Days(per) => {
                let days = value * per;
                let whole = days.trunc();
                self.days += whole;
                self.micros += (days - whole) * DAY_MICROS as f64;
            }
            Unit::Micros(per) => self.micros += value * per,
        }
    }

    fn finish(self, negate: bool) -> Option<Interval> {
        let sign = if negate { -1.0 } else { 1.0 };
        let months = (self.months * sign).round();
        let days = (self.days * sign).round();
        let micros = (self.micros * sign).round();
        let fits_i32 = |v: f64| v >= f64::from(i32::MIN) && v <= f64::from(i32::MAX);
        if !fits_i32(months) || !fits_i32(days) || micros.abs() >= 9.2e18 {
            return None;
        }
        Some(Interval { months: months as i32, days: days as i32, micros: micros as i64 })
    }
}

/// An interval unit: how one of it spreads over the three fields.
#[derive(Clone, Copy)]
enum Unit {
    Months(f64),
    Days(f64),
    Micros(f64),
}

fn unit_of(word: &str) -> Option<Unit> {
    Some(match word {
        "millennium" | "millennia" | "millenniums" | "mil" | "mils" => Unit::Months(12_000.0),
        "century" | "centuries" | "cent" | "c" => Unit::Months(1200.0),
        "decade" | "decades" | "dec" | "decs" => Unit::Months(120.0),
        "year" | "years" | "yr" | "yrs" | "y" => Unit::Months(12.0),
        "month" | "months" | "mon" | "mons" => Unit::Months(1.0),
        "week" | "weeks" | "w" => Unit::Days(7.0),
        "day" | "days" | "d" => Unit::Days(1.0),
        "hour" | "hours" | "hr" | "hrs" | "h" => Unit::Micros(HOUR_MICROS as f64),
        "minute" | "minutes" | "min" | "mins" | "m" => Unit::Micros(MINUTE_MICROS as f64),
        "second" | "seconds" | "sec" | "secs" | "s" => Unit::Micros(SECOND_MICROS as f64),
        "millisecond" | "milliseconds" | "msec" | "msecs" | "ms" => Unit::Micros(1000.0),
        "microsecond" | "microseconds" | "usec" | "usecs" | "us" => Unit::Micros(1.0),
        _ => return None,
    })
}

/// Parses an interval in PostgreSQL's unit syntax or ISO 8601.
pub fn parse_interval(s: &str) -> Result<Interval> {
    let syntax =
        || Error::new(codes::INVALID_DATETIME_FORMAT, format!("invalid input syntax for type interval: \"{s}\""));
    let lower = s.trim().to_ascii_lowercase();
    if let Some(iso) = lower.strip_prefix('p') {
        return parse_iso_interval(iso).ok_or_else(syntax)?.ok_or_else(|| interval_field_overflow(s));
    }
    let b = lower.as_bytes();
    let mut acc = IntervalAcc::default();
    let mut pending: Option<f64> = None;
    let mut negate = false;
    let mut seen = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() || c == b'@' || c == b',' {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || c == b'-' || c == b'+' || c == b'.' {
            let start = i;
            i += 1;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.' || b[i] == b':') {
                i += 1;
            }
            let token = &lower[start..i];
            if token.contains(':') {
                if let Some(days) = pending.take() {
                    acc.add(days, Unit::Days(1.0));
                }
                acc.micros += parse_clock(token).ok_or_else(syntax)?;
            } else {
                if let Some(seconds) = pending.take() {
                    // Two bare numbers in a row: PostgreSQL reads "1 2" as an error too.
                    let _ = seconds;
                    return Err(syntax());
                }
                let v: f64 = token.parse().map_err(|_| syntax())?;
                pending = Some(v);
            }
            seen = true;
            continue;
        }
        if c.is_ascii_alphabetic() {
            let start = i;
            while i < b.len() && b[i].is_ascii_alphabetic() {
                i += 1;
            }
            let word = &lower[start..i];
            if word == "ago" {
                negate = !negate;
                continue;
            }
            let unit = unit_of(word).ok_or_else(syntax)?;
            let v = pending.take().ok_or_else(syntax)?;
            acc.add(v, unit);
            continue;
        }
        return Err(syntax());
    }
    if let Some(seconds) = pending {
        acc.add(seconds, Unit::Micros(SECOND_MICROS as f64));
    }
    if !seen {
        return Err(syntax());
    }
    acc.finish(negate).ok_or_else(|| interval_field_overflow(s))
}

fn interval_field_overflow(s: &str) -> Error {
    // 22015 interval_field_overflow.
    Error::new("22015", format!("interval field value out of range: \"{s}\""))
}

/// `[-]H:MM[:SS[.f]]` as microseconds.
fn parse_clock(token: &str) -> Option<f64> {
    let (negative, body) = match token.as_bytes().first()? {
        b'-' => (true, &token[1..]),
        b'+' => (false, &token[1..]),
        _ => (false, token),
    };
    let parts: Vec<&str> = body.split(':').collect();
    if parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    let hours: f64 = parts[0].parse().ok()?;
    let minutes: f64 = parts[1].parse().ok()?;
    let seconds: f64 = parts.get(2).map_or(Some(0.0), |p| p.parse().ok())?;
    if parts[0].contains('.') || parts[1].contains('.') || minutes >= 60.0 || seconds >= 60.0 {
        return None;
    }
    let total = hours * HOUR_MICROS as f64 + minutes * MINUTE_MICROS as f64 + seconds * SECOND_MICROS as f64;
    Some(if negative { -total } else { total })
}

/// ISO 8601 `P[nY][nM][nW][nD][T[nH][nM][nS]]` after the `P`. Outer `None`: bad syntax;
/// inner `None`: out of range.
fn parse_iso_interval(body: &str) -> Option<Option<Interval>> {
    let mut acc = IntervalAcc::default();
    let mut in_time = false;
    let mut number = String::new();
    let mut any = false;
    for c in body.chars() {
        match c {
            't' if !in_time && number.is_empty() => in_time = true,
            '0'..='9' | '.' | '-' | '+' => number.push(c),
            _ => {
                let v: f64 = number.parse().ok()?;
                number.clear();
                let unit = match (c, in_time) {
                    ('y', false) => Unit::Months(12.0),
                    ('m', false) => Unit::Months(1.0),
                    ('w', false) => Unit::Days(7.0),
                    ('d', false) => Unit::Days(1.0),
                    ('h', true) => Unit::Micros(HOUR_MICROS as f64),
                    ('m', true) => Unit::Micros(MINUTE_MICROS as f64),
                    ('s', true) => Unit::Micros(SECOND_MICROS as f64),
                    _ => return None,
                };
                acc.add(v, unit);
                any = true;
            }
        }
    }
    if !number.is_empty() || !any {
        return None;
    }
    Some(acc.finish(false))
}

/// The value PostgreSQL orders and compares intervals by: a month is 30 days.
pub fn interval_cmp_value(iv: Interval) -> i128 {
    let days = i128::from(iv.months) * 30 + i128::from(iv.days);
    days * i128::from(DAY_MICROS) + i128::from(iv.micros)
}

/// Field-wise `a + b`, or 22008.
pub fn interval_add(a: Interval, b: Interval) -> Result<Interval> {
    Ok(Interval {
        months: a.months.checked_add(b.months).ok_or_else(interval_out_of_range)?,
        days: a.days.checked_add(b.days).ok_or_else(interval_out_of_range)?,
        micros: a.micros.checked_add(b.micros).ok_or_else(interval_out_of_range)?,
    })
}

/// Field-wise negation, or 22008.
pub fn interval_neg(a: Interval) -> Result<Interval> {
    Ok(Interval {
        months: a.months.checked_neg().ok_or_else(interval_out_of_range)?,
        days: a.days.checked_neg().ok_or_else(interval_out_of_range)?,
        micros: a.micros.checked_neg().ok_or_else(interval_out_of_range)?,
    })
}

/// `interval * factor` as PostgreSQL's `interval_mul`: fractional months spill into days
/// (30 a month) and fractional days into time.
pub fn interval_mul(a: Interval, factor: f64) -> Result<Interval> {
    if factor.is_nan() {
        return Err(interval_out_of_range());
    }
    let months = f64::from(a.months) * factor;
    let days = f64::from(a.days) * factor;
    let whole_months = months.trunc();
    let whole_days = days.trunc();
    let round_micro = |v: f64| (v * 1e6).round_ties_even() / 1e6;
    let month_remainder_days = round_micro((months - whole_months) * 30.0);
    let mut sec_remainder =
        round_micro((days - whole_days + month_remainder_days - month_remainder_days.trunc()) * 86_400.0);
    let mut extra_days = 0.0;
    if sec_remainder.abs() >= 86_400.0 {
        extra_days = (sec_remainder / 86_400.0).trunc();
        sec_remainder -= extra_days * 86_400.0;
    }
    let total_days = whole_days + extra_days + month_remainder_days.trunc();
    let micros = (a.micros as f64 * factor + sec_remainder * 1e6).round_ties_even();
    let fits_i32 = |v: f64| v >= f64::from(i32::MIN) && v <= f64::from(i32::MAX);
    if !fits_i32(whole_months) || !fits_i32(total_days) || !micros.is_finite() || micros.abs() >= 9.2e18 {
        return Err(interval_out_of_range());
    }
    Ok(Interval { months: whole_months as i32, days: total_days as i32, micros: micros as i64 })
}

/// `timestamp + interval`: months first (clamping the day to the month's end), then days,
/// then time, as PostgreSQL's `timestamp_pl_interval`.
pub fn timestamp_add_interval(t: i64, iv: Interval) -> Result<i64> {
    if t == TS_INFINITY || t == TS_NEG_INFINITY {
        return Ok(t);
    }
    let mut days = t.div_euclid(DAY_MICROS);
    let tod = t.rem_euclid(DAY_MICROS);
    if iv.months != 0 {
        let (y, m, d) = civil_from_days(days);
        let total = y * 12 + i64::from(m) - 1 + i64::from(iv.months);
        let (ny, nm) = (total.div_euclid(12), (total.rem_euclid(12) + 1) as u32);
        let nd = d.min(month_days(ny, nm));
        days = days_from_civil(ny, nm, nd);
    }
    days += i64::from(iv.days);
    let result = days
        .checked_mul(DAY_MICROS)
        .and_then(|v| v.checked_add(tod))
        .and_then(|v| v.checked_add(iv.micros))
        .ok_or_else(timestamp_out_of_range)?;
    check_timestamp(result)
}

/// `a - b` for timestamps, as PostgreSQL: whole days split off the time (`1 day 03:00:00`).
pub fn timestamp_diff(a: i64, b: i64) -> Result<Interval> {
    if [a, b].iter().any(|t| *t == TS_INFINITY || *t == TS_NEG_INFINITY) {
        return Err(Error::new(codes::DATETIME_FIELD_OVERFLOW, "cannot subtract infinite timestamps"));
    }
    let diff = a.checked_sub(b).ok_or_else(interval_out_of_range)?;
    let days = diff / DAY_MICROS;
    Ok(Interval { months: 0, days: days as i32, micros: diff - days * DAY_MICROS })
}

/// A date as a timestamp at midnight (infinities map to infinities).
pub fn date_to_timestamp(d: i32) -> i64 {
    match d {
        DATE_INFINITY => TS_INFINITY,
        DATE_NEG_INFINITY => TS_NEG_INFINITY,
        _ => i64::from(d) * DAY_MICROS,
    }
}

/// The date of a timestamp.
pub fn timestamp_to_date(t: i64) -> i32 {
    match t {
        TS_INFINITY => DATE_INFINITY,
        TS_NEG_INFINITY => DATE_NEG_INFINITY,
        _ => t.div_euclid(DAY_MICROS) as i32,
    }
}
