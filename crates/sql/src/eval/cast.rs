//! Casts: `CAST`, `::`, assignment to a column, and text input (COPY, parameters).
//!
//! Every conversion PostgreSQL has between the supported types, with its rounding and its
//! errors: floats round to integers with `rint` (ties to even), numerics round half away
//! from zero; `numeric(p,s)` rounds to `s` digits then fails with `numeric field overflow`;
//! `varchar(n)` fails with 22001 on assignment but truncates in an explicit cast; `char(n)`
//! pads with blanks. Text converts to anything through that type's input function.

use super::{datetime, numeric, text, type_name};
use crate::error::{codes, Error, Result};
use crate::types::{DataType, Interval, Numeric, Value};

/// A UUID in any of PostgreSQL's input forms (hex digits, upper or lower case, hyphens after
/// any group of four, optionally in braces), in the canonical form; 22P02 otherwise.
pub fn parse_uuid(s: &str) -> Result<String> {
    let bad = || Error::new(codes::INVALID_TEXT_REPRESENTATION, format!("invalid input syntax for type uuid: \"{s}\""));
    let t = s.trim();
    let t = match t.strip_prefix('{') {
        Some(inner) => inner.strip_suffix('}').ok_or_else(bad)?,
        None => t,
    };
    let mut digits = Vec::with_capacity(32);
    let mut since_hyphen = 0;
    for (i, c) in t.chars().enumerate() {
        if c == '-' {
            // PostgreSQL accepts a hyphen after any group of four digits, not first or last.
            if i == 0 || since_hyphen % 4 != 0 || since_hyphen == 0 {
                return Err(bad());
            }
            since_hyphen = 0;
            continue;
        }
        let d = c.to_digit(16).ok_or_else(bad)?;
        digits.push(d as u8);
        since_hyphen += 1;
    }
    if digits.len() != 32 || t.ends_with('-') {
        return Err(bad());
    }
    Ok(format_uuid(&digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect::<Vec<u8>>()))
}

/// 16 bytes as a UUID's canonical text: 8-4-4-4-12 lower-case hex digits.
pub fn format_uuid(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Converts `v` to type `to`. `explicit` is true for `CAST` and `::`, false for assignment
/// (the two differ only for `varchar(n)`/`char(n)` overflow).
pub fn cast(v: Value, to: &DataType, explicit: bool) -> Result<Value> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    match to {
        DataType::Text => return Ok(Value::Text(text::to_text(&v).unwrap_or_default())),
        DataType::Varchar(limit) => {
            let s = text::to_text(&v).unwrap_or_default();
            return Ok(Value::Text(limit_length(s, *limit, explicit, to)?));
        }
        DataType::Array(elem) => {
            return match v {
                Value::Text(s) => array_of(&s, *elem),
                other => Err(cannot_cast(&other, to)),
            }
        }
        DataType::TimestampP { precision, .. } => {
            return Ok(match cast(v, &to.base(), explicit)? {
                Value::Timestamp(t) => Value::Timestamp(round_micros(t, *precision)),
                Value::TimestampTz(t) => Value::TimestampTz(round_micros(t, *precision)),
                other => other,
            });
        }
        DataType::Json => {
            return match v {
                Value::Text(s) | Value::Json(s) => super::json::check(&s).map(Value::Json),
                other => Err(cannot_cast(&other, to)),
            }
        }
        DataType::Jsonb => {
            return match v {
                Value::Text(s) | Value::Json(s) => super::json::normalize(&s).map(Value::Json),
                other => Err(cannot_cast(&other, to)),
            }
        }
        DataType::Uuid => {
            return match v {
                Value::Text(s) => parse_uuid(&s).map(Value::Text),
                other => Err(cannot_cast(&other, to)),
            }
        }
        DataType::Enum(t) => {
            return match v {
                Value::Text(s) => enum_input(t, &s),
                Value::Enum(e) if e.type_oid == t.oid => Ok(Value::Enum(e)),
                other => Err(cannot_cast(&other, to)),
            }
        }
        DataType::Char(limit) => {
            let s = text::to_text(&v).unwrap_or_default();
            let n = limit.unwrap_or(1);
            let s = limit_length(s, Some(n), explicit, to)?;
            let len = s.chars().count();
            let padded = if len < n as usize { format!("{s}{}", " ".repeat(n as usize - len)) } else { s };
            return Ok(Value::Text(padded));
        }
        _ => {}
    }
    match v {
        Value::Text(s) => parse_text(&s, to),
        Value::Bool(b) => match to {
            DataType::Bool => Ok(Value::Bool(b)),
            DataType::Int4 => Ok(Value::Int4(i32::from(b))),
            _ => Err(cannot_cast(&Value::Bool(b), to)),
        },
        Value::Int2(_) | Value::Int4(_) | Value::Int8(_) | Value::Float4(_) | Value::Float8(_) | Value::Numeric(_) => {
            cast_number(v, to)
        }
        Value::Bytea(b) => match to {
            DataType::Bytea => Ok(Value::Bytea(b)),
            _ => Err(cannot_cast(&Value::Bytea(b), to)),
        },
        Value::Date(d) => match to {
            DataType::Date => Ok(Value::Date(d)),
            DataType::Timestamp => Ok(Value::Timestamp(checked_date_ts(d)?)),
            DataType::TimestampTz => Ok(Value::TimestampTz(checked_date_ts(d)?)),
            _ => Err(cannot_cast(&Value::Date(d), to)),
        },
        Value::Timestamp(t) | Value::TimestampTz(t) => match to {
            DataType::Date => Ok(Value::Date(datetime::timestamp_to_date(t))),
            DataType::Timestamp => Ok(Value::Timestamp(t)),
            DataType::TimestampTz => Ok(Value::TimestampTz(t)),
            // An infinite timestamp has no time of day: NULL, as in PostgreSQL.
            DataType::Time if t == datetime::TS_INFINITY || t == datetime::TS_NEG_INFINITY => Ok(Value::Null),
            DataType::Time => Ok(Value::Time(t.rem_euclid(datetime::DAY_MICROS))),
            _ => Err(cannot_cast(&v, to)),
        },
        Value::Time(t) => match to {
            DataType::Time => Ok(Value::Time(t)),
            DataType::Interval => Ok(Value::Interval(crate::types::Interval { months: 0, days: 0, micros: t })),
            _ => Err(cannot_cast(&v, to)),
        },
        Value::Interval(iv) => match to {
            DataType::Interval => Ok(Value::Interval(iv)),
            // The interval's time part, wrapped into one day; months and days are dropped.
            DataType::Time => Ok(Value::Time(datetime::time_wrap(0, iv.micros))),
            _ => Err(cannot_cast(&Value::Interval(iv), to)),
        },
        Value::Reg(kind, oid, name) => match to {
            DataType::Reg(k) if *k == kind => Ok(Value::Reg(kind, oid, name)),
            DataType::Int8 | DataType::Numeric { .. } => cast_number(Value::Int8(i64::from(oid)), to),
            DataType::Int4 | DataType::Int2 => cast_number(Value::Int8(i64::from(oid)), to),
            _ => Err(cannot_cast(&Value::Reg(kind, oid, name), to)),
        },
        // A JSON scalar to a number or boolean, as PostgreSQL's jsonb casts.
        Value::Json(s) => match super::json::parse(&s)?.kind {
            super::json::Kind::Number(n) if is_numeric_type(to) => parse_text(n, to),
            super::json::Kind::Bool(b) if *to == DataType::Bool => Ok(Value::Bool(b)),
            kind => Err(Error::new(
                codes::INVALID_PARAMETER_VALUE,
                format!("cannot cast jsonb {} to type {}", json_kind_name(&kind), to.pg_name()),
            )),
        },
        // To text and to its own type above; nothing else.
        Value::Enum(_) => Err(cannot_cast(&v, to)),
        Value::Null => Ok(Value::Null),
    }
}

/// Microseconds rounded to `precision` fractional digits of a second, halves away from
/// zero (PostgreSQL's AdjustTimestampForTypmod).
fn round_micros(t: i64, precision: u32) -> i64 {
    let scale = 10i64.pow(6 - precision.min(6));
    let half = scale / 2;
    if t >= 0 {
        t.saturating_add(half) / scale * scale
    } else {
        -((t.saturating_neg().saturating_add(half)) / scale * scale)
    }
}

fn is_numeric_type(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Int2
            | DataType::Int4
            | DataType::Int8
            | DataType::Float4
            | DataType::Float8
            | DataType::Numeric { .. }
    )
}

fn json_kind_name(k: &super::json::Kind) -> &'static str {
    match k {
        super::json::Kind::Null => "null",
        super::json::Kind::Bool(_) => "boolean",
        super::json::Kind::Number(_) => "numeric",
        super::json::Kind::String(_) => "string",
        super::json::Kind::Array(_) => "array",
        super::json::Kind::Object(_) => "object",
    }
}

fn checked_date_ts(d: i32) -> Result<i64> {
    let t = datetime::date_to_timestamp(d);
    if t == datetime::TS_INFINITY || t == datetime::TS_NEG_INFINITY {
        return Ok(t);
    }
    datetime::check_timestamp(t)
}

/// 42846 `cannot cast type boolean to date`.
pub fn cannot_cast(v: &Value, to: &DataType) -> Error {
    Error::new(codes::CANNOT_COERCE, format!("cannot cast type {} to {}", type_name(v), to.type_name()))
}

/// The value of enum type `t` labelled `s`.
fn enum_input(t: &crate::types::EnumType, s: &str) -> Result<Value> {
    if !t.is_resolved() {
        return Err(Error::new(codes::UNDEFINED_OBJECT, format!("type \"{}\" does not exist", t.name)));
    }
    t.value(s)
}

/// Enforces `varchar(n)`/`char(n)`: trailing blanks beyond `n` are dropped silently, an
/// explicit cast truncates, assignment fails with 22001.
fn limit_length(s: String, limit: Option<u32>, explicit: bool, to: &DataType) -> Result<String> {
    let Some(n) = limit else { return Ok(s) };
    let n = n as usize;
    let Some((cut, _)) = s.char_indices().nth(n) else { return Ok(s) };
    if explicit || s[cut..].chars().all(|c| c == ' ') {
        return Ok(s[..cut].to_string());
    }
    Err(Error::new(codes::STRING_DATA_RIGHT_TRUNCATION, format!("value too long for type {to}")))
}

/// 22003 `integer out of range` and its siblings.
pub fn int_out_of_range(to: &DataType) -> Error {
    Error::new(codes::NUMERIC_VALUE_OUT_OF_RANGE, format!("{} out of range", to.pg_name()))
}

/// An integer of width `to`, or 22003.
pub fn int_value(v: i128, to: &DataType) -> Result<Value> {
    let out = || int_out_of_range(to);
    Ok(match to {
        DataType::Int2 => Value::Int2(i16::try_from(v).map_err(|_| out())?),
        DataType::Int4 => Value::Int4(i32::try_from(v).map_err(|_| out())?),
        DataType::Int8 => Value::Int8(i64::try_from(v).map_err(|_| out())?),
        _ => unreachable!("int_value to {to}"),
    })
}

/// Float -> integer: round to nearest, ties to even (`rint`), then range-check.
fn float_to_int(f: f64, to: &DataType) -> Result<Value> {
    let r = f.round_ties_even();
    if !r.is_finite() || r.abs() >= 1.8e19 {
        return Err(int_out_of_range(to));
    }
    int_value(r as i128, to)
}

fn cast_number(v: Value, to: &DataType) -> Result<Value> {
    match to {
        DataType::Int2 | DataType::Int4 | DataType::Int8 => match v {
            Value::Int2(i) => int_value(i128::from(i), to),
            Value::Int4(i) => int_value(i128::from(i), to),
            Value::Int8(i) => int_value(i128::from(i), to),
            Value::Float4(f) => float_to_int(f64::from(f), to),
            Value::Float8(f) => float_to_int(f, to),
            Value::Numeric(n) => int_value(numeric::round_to_integer(n), to),
            other => Err(cannot_cast(&other, to)),
        },
        DataType::Float8 => Ok(Value::Float8(match v {
            Value::Int2(i) => f64::from(i),
            Value::Int4(i) => f64::from(i),
            Value::Int8(i) => i as f64,
            Value::Float4(f) => f64::from(f),
            Value::Float8(f) => f,
            Value::Numeric(n) => numeric::to_f64(n),
            other => return Err(cannot_cast(&other, to)),
        })),
        DataType::Float4 => Ok(Value::Float4(match v {
            Value::Int2(i) => f32::from(i),
            Value::Int4(i) => i as f32,
            Value::Int8(i) => i as f32,
            Value::Float4(f) => f,
            Value::Float8(f) => f64_to_f32(f)?,
            Value::Numeric(n) => {
                let f = numeric::to_f32(n);
                if f.is_infinite() {
                    return Err(float_overflow());
                }
                f
            }
            other => return Err(cannot_cast(&other, to)),
        })),
        DataType::Numeric { precision, scale } => {
            let n = match v {
                Value::Int2(i) => numeric::from_int(i128::from(i))?,
                Value::Int4(i) => numeric::from_int(i128::from(i))?,
                Value::Int8(i) => numeric::from_int(i128::from(i))?,
                Value::Float4(f) => float_to_numeric(f64::from(f), 6)?,
                Value::Float8(f) => float_to_numeric(f, 15)?,
                Value::Numeric(n) => n,
                other => return Err(cannot_cast(&other, to)),
            };
            Ok(Value::Numeric(apply_typmod(n, *precision, *scale)?))
        }
        DataType::Bool => match v {
            Value::Int4(i) => Ok(Value::Bool(i != 0)),
            other => Err(cannot_cast(&other, to)),
        },
        // Without the catalog an oid names itself, as PostgreSQL prints an unknown oid; the
        // executor casts with the catalog at hand (`system::to_reg`).
        DataType::Reg(kind) => match v {
            Value::Int2(_) | Value::Int4(_) | Value::Int8(_) => {
                let oid = u32::try_from(super::int_of(&v)).map_err(|_| int_out_of_range(to))?;
                Ok(Value::Reg(*kind, oid, oid.to_string()))
            }
            other => Err(cannot_cast(&other, to)),
        },
        _ => Err(cannot_cast(&v, to)),
    }
}

fn float_to_numeric(f: f64, digits: usize) -> Result<Numeric> {
    match numeric::from_float(f, digits) {
        Some(r) => r,
        None if f.is_nan() => Err(Error::unsupported("numeric NaN")),
        None => Err(Error::new(codes::NUMERIC_VALUE_OUT_OF_RANGE, "cannot convert infinity to numeric")),
    }
}

/// 22003 `value out of range: overflow`.
pub fn float_overflow() -> Error {
    Error::new(codes::NUMERIC_VALUE_OUT_OF_RANGE, "value out of range: overflow")
}

/// 22003 `value out of range: underflow`.
pub fn float_underflow() -> Error {
    Error::new(codes::NUMERIC_VALUE_OUT_OF_RANGE, "value out of range: underflow")
}

/// `double precision` -> `real`, failing on overflow and underflow as PostgreSQL does.
pub fn f64_to_f32(f: f64) -> Result<f32> {
    let r = f as f32;
    if r.is_infinite() && f.is_finite() {
        return Err(float_overflow());
    }
    if r == 0.0 && f != 0.0 {
        return Err(float_underflow());
    }
    Ok(r)
}

/// Rounds to `numeric(p,s)` and checks the integer digits fit (22003 `numeric field
/// overflow`). Unconstrained when `precision` is `None`.
pub fn apply_typmod(n: Numeric, precision: Option<u32>, scale: Option<u32>) -> Result<Numeric> {
    let Some(p) = precision else { return Ok(n) };
    let s = scale.unwrap_or(0);
    let r = numeric::round(n, i64::from(s))?;
    let int_digits = if r.mantissa == 0 {
        0
    } else {
        (numeric::digits(r.mantissa.unsigned_abs()) as i64 - i64::from(r.scale)).max(0)
    };
    let max_digits = i64::from(p) - i64::from(s);
    if int_digits > max_digits {
        let bound = if max_digits > 0 { format!("10^{max_digits}") } else { "1".to_string() };
        return Err(Error::new(codes::NUMERIC_VALUE_OUT_OF_RANGE, "numeric field overflow").with_detail(format!(
            "A field with precision {p}, scale {s} must round to an absolute value less than {bound}."
        )));
    }
    Ok(r)
}

/// 22P02 `invalid input syntax for type integer: "abc"`.
fn invalid_input(type_name: &str, s: &str) -> Error {
    Error::new(codes::INVALID_TEXT_REPRESENTATION, format!("invalid input syntax for type {type_name}: \"{s}\""))
}

/// The array text `s` as an array of the type with oid `elem`: every element read as that
/// type (22P02 and its siblings as for a scalar) and written in its output form, so
/// `'{ 1, 02}'::int[]` is `{1,2}`. Text elements are kept as they are.
fn array_of(s: &str, elem: u32) -> Result<Value> {
    let parsed = super::array::parse(s)?;
    let elem_type = match DataType::from_oid(elem) {
        Some(DataType::Text) | None => return Ok(Value::Text(s.to_string())),
        Some(t) => t,
    };
    let items = parsed
        .items
        .iter()
        .map(|item| match item {
            None => Ok(None),
            Some(text) => Ok(text::to_text(&parse_text(text, &elem_type)?)),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Value::Text(super::array::format(&items)))
}

/// Parses the text form of a value of type `t`, as PostgreSQL's input functions.
pub fn parse_text(s: &str, t: &DataType) -> Result<Value> {
    match t {
        DataType::Text | DataType::Varchar(_) | DataType::Char(_) => cast(Value::Text(s.to_string()), t, false),
        DataType::Uuid => parse_uuid(s).map(Value::Text),
        DataType::Json => super::json::check(s).map(Value::Json),
        DataType::Jsonb => super::json::normalize(s).map(Value::Json),
        DataType::Array(_) | DataType::TimestampP { .. } => cast(Value::Text(s.to_string()), t, false),
        DataType::Bool => parse_bool(s).map(Value::Bool).ok_or_else(|| invalid_input("boolean", s)),
        DataType::Int2 | DataType::Int4 | DataType::Int8 => {
            let trimmed = s.trim_matches(|c: char| c.is_ascii_whitespace());
            let digits = trimmed.strip_prefix(['+', '-']).unwrap_or(trimmed);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid_input(t.pg_name(), s));
            }
            let out_of_range = || {
                Error::new(
                    codes::NUMERIC_VALUE_OUT_OF_RANGE,
                    format!("value \"{s}\" is out of range for type {}", t.pg_name()),
                )
            };
            let v: i128 = trimmed.parse().map_err(|_| out_of_range())?;
            int_value(v, t).map_err(|_| out_of_range())
        }
        DataType::Float4 => Ok(Value::Float4(text::parse_float(s, 32)? as f32)),
        DataType::Float8 => Ok(Value::Float8(text::parse_float(s, 64)?)),
        DataType::Numeric { precision, scale } => {
            let trimmed = s.trim().to_ascii_lowercase();
            if trimmed == "nan" {
                return Err(Error::unsupported("numeric NaN"));
            }
            if matches!(trimmed.as_str(), "infinity" | "+infinity" | "-infinity" | "inf" | "+inf" | "-inf") {
                return Err(Error::unsupported("numeric infinity"));
            }
            let n = numeric::parse(s).ok_or_else(|| invalid_input("numeric", s))??;
            Ok(Value::Numeric(apply_typmod(n, *precision, *scale)?))
        }
        DataType::Bytea => Ok(Value::Bytea(text::parse_bytea(s)?)),
        DataType::Date => {
            let d = datetime::parse_datetime(s, datetime::DateKind::Date)?;
            Ok(Value::Date(d as i32))
        }
        DataType::Time => Ok(Value::Time(datetime::parse_time(s)?)),
        DataType::Timestamp => Ok(Value::Timestamp(datetime::parse_datetime(s, datetime::DateKind::Timestamp)?)),
        DataType::TimestampTz => Ok(Value::TimestampTz(datetime::parse_datetime(s, datetime::DateKind::TimestampTz)?)),
        DataType::Interval => Ok(Value::Interval(parse_interval_value(s)?)),
        DataType::Enum(e) => enum_input(e, s),
        DataType::Reg(kind) => {
            let trimmed = s.trim();
            if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
                return cast_number(parse_text(trimmed, &DataType::Int8)?, t);
            }
            // A name needs the catalog: the executor resolves it before it gets here.
            Err(Error::unsupported(format!("{} input without the catalog: \"{s}\"", kind.name())))
        }
    }
}

fn parse_interval_value(s: &str) -> Result<Interval> {
    datetime::parse_interval(s)
}

/// PostgreSQL's `parse_bool`: `t`/`true`/`y`/`yes`/`on`/`1` and their negatives, any
/// unambiguous prefix, any case, blanks around.
pub fn parse_bool(s: &str) -> Option<bool> {
    let t = s.trim_matches(|c: char| c.is_ascii_whitespace()).to_ascii_lowercase();
    let prefix_of = |word: &str, min: usize| t.len() >= min && word.starts_with(t.as_str());
    if prefix_of("true", 1) || prefix_of("yes", 1) || prefix_of("on", 2) || t == "1" {
        Some(true)
    } else if prefix_of("false", 1) || prefix_of("no", 1) || prefix_of("off", 2) || t == "0" {
        Some(false)
    } else {
        None
    }
}
