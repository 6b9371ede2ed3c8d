//! Scalar functions, LIKE, and MD5.
//!
//! [`call_function`] takes the lower-case name and the evaluated arguments. Functions are
//! strict (NULL in, NULL out) unless PostgreSQL says otherwise (`concat`, `concat_ws`,
//! `coalesce`, `greatest`, `least`, `nullif`). A name or an argument list PostgreSQL would
//! not resolve fails with 42883 `function foo(integer) does not exist`. Integer arguments
//! to `round`, `ceil`, `sqrt`, ... go to the double precision version, as PostgreSQL's
//! resolution picks its preferred numeric type.
//!
//! NUMERIC `sqrt` is exact when it fits in 128 bits; NUMERIC `exp`, `ln`, `log` and
//! non-integral `power` go through `f64` and keep 16 significant digits.

use super::{cast, compare, datetime, numeric, to_text, type_name};
use crate::error::{codes, Error, Result};
use crate::types::{DataType, Interval, Numeric, Value};
use std::cmp::Ordering;

/// The largest string a function builds (PostgreSQL's 1 GB field limit).
const RESULT_BYTES_MAX: usize = (1 << 30) - 1;

/// What functions may read besides their arguments: the statement's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FnContext {
    /// `now()`: microseconds since 2000-01-01 00:00:00 UTC (the transaction's start).
    pub now_micros: i64,
}

/// 42883 `function foo(integer, text) does not exist`.
fn no_function(name: &str, args: &[Value]) -> Error {
    let types: Vec<&str> = args.iter().map(type_name).collect();
    Error::new(codes::UNDEFINED_FUNCTION, format!("function {name}({}) does not exist", types.join(", ")))
        .with_hint("No function matches the given name and argument types. You might need to add explicit type casts.")
}

const NUMERIC: DataType = DataType::Numeric { precision: None, scale: None };

/// A version 4 (random) UUID, from the operating system's random source, as PostgreSQL's
/// gen_random_uuid().
fn random_uuid() -> Result<Value> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::new(codes::INTERNAL_ERROR, "could not generate random values"))?;
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Ok(Value::Text(super::cast::format_uuid(&bytes)))
}

/// random(): a double in [0, 1) from the operating system's random source.
fn random_float() -> Result<Value> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 8];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::new(codes::INTERNAL_ERROR, "could not generate random values"))?;
    Ok(Value::Float8((u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64))
}

/// format(fmt, args...): `%s` (text; NULL is empty), `%I` (an identifier, quoted where
/// needed), `%L` (a literal; NULL is NULL), `%%`; `%n$s` takes the n-th argument.
fn format_text(args: &[Value]) -> Result<Value> {
    let Some(fmt) = to_text(&args[0]) else { return Ok(Value::Null) };
    let mut out = String::new();
    let mut chars = fmt.chars().peekable();
    let mut next = 1;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut digits = String::new();
        while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            digits.push(*d);
            chars.next();
        }
        let index = if !digits.is_empty() && chars.peek() == Some(&'$') {
            chars.next();
            digits.parse::<usize>().ok().filter(|n| *n >= 1)
        } else if digits.is_empty() {
            None
        } else {
            return Err(Error::new(codes::INVALID_PARAMETER_VALUE, "unrecognized format() type specifier"));
        };
        let kind = chars
            .next()
            .ok_or_else(|| Error::new(codes::INVALID_PARAMETER_VALUE, "unterminated format() type specifier"))?;
        if kind == '%' {
            out.push('%');
            continue;
        }
        let at = index.unwrap_or(next);
        next = at + 1;
        let arg =
            args.get(at).ok_or_else(|| Error::new(codes::INVALID_PARAMETER_VALUE, "too few arguments for format()"))?;
        match kind {
            's' => out.push_str(&to_text(arg).unwrap_or_default()),
            'I' => match to_text(arg) {
                Some(s) => out.push_str(&crate::system::snapshot::quote_ident(&s)),
                None => {
                    return Err(Error::new(
                        codes::NULL_VALUE_NOT_ALLOWED,
                        "null values cannot be formatted as an SQL identifier",
                    ))
                }
            },
            'L' => match to_text(arg) {
                Some(s) => out.push_str(&crate::system::snapshot::quote_literal(&s)),
                None => out.push_str("NULL"),
            },
            other => {
                return Err(Error::new(
                    codes::INVALID_PARAMETER_VALUE,
                    format!("unrecognized format() type specifier \"{other}\""),
                ))
            }
        }
    }
    Ok(Value::Text(out))
}

/// encode(bytes, 'base64' | 'hex' | 'escape').
fn encode(b: &[u8], fmt: &str) -> Result<Value> {
    use base64::Engine;
    Ok(Value::Text(match fmt.to_ascii_lowercase().as_str() {
        // PostgreSQL breaks base64 into lines of 76 characters.
        "base64" => {
            let all = base64::engine::general_purpose::STANDARD.encode(b);
            all.as_bytes().chunks(76).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join("\n")
        }
        "hex" => b.iter().map(|x| format!("{x:02x}")).collect(),
        "escape" => b
            .iter()
            .map(|&x| match x {
                b'\\' => "\\\\".to_string(),
                0 | 0x80..=0xff => format!("\\{x:03o}"),
                x => (x as char).to_string(),
            })
            .collect(),
        other => return Err(Error::new(codes::INVALID_PARAMETER_VALUE, format!("unrecognized encoding: \"{other}\""))),
    }))
}

/// decode(text, 'base64' | 'hex' | 'escape').
fn decode(s: &str, fmt: &str) -> Result<Value> {
    use base64::Engine;
    let bad = |what: &str| Error::new(codes::INVALID_PARAMETER_VALUE, format!("invalid {what} data"));
    Ok(Value::Bytea(match fmt.to_ascii_lowercase().as_str() {
        "base64" => {
            let compact: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            base64::engine::general_purpose::STANDARD.decode(compact).map_err(|_| bad("base64"))?
        }
        "hex" => {
            let compact: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
            if !compact.len().is_multiple_of(2) {
                return Err(bad("hexadecimal"));
            }
            compact
                .chunks(2)
                .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap_or("zz"), 16).map_err(|_| bad("hexadecimal")))
                .collect::<Result<Vec<u8>>>()?
        }
        "escape" => super::cast::parse_text(s, &DataType::Bytea).and_then(|v| match v {
            Value::Bytea(b) => Ok(b),
            _ => Err(bad("escape")),
        })?,
        other => return Err(Error::new(codes::INVALID_PARAMETER_VALUE, format!("unrecognized encoding: \"{other}\""))),
    }))
}

/// `ts AT TIME ZONE zone` (`timezone(zone, ts)`): a timestamptz as the local time in
/// `zone`, or a local time in `zone` as a timestamptz. Zones are UTC and its aliases,
/// POSIX-style offsets (`'+02'`, `'UTC+2'`, `'Etc/GMT+2'`: hours west of Greenwich, as
/// PostgreSQL reads them) and intervals (east); Bulwark has no time zone database, so a
/// named zone such as 'Europe/Oslo' gives 22023, as an unknown one does in PostgreSQL.
fn at_time_zone(zone: &Value, ts: &Value) -> Result<Value> {
    const MICROS_PER_DAY: i64 = 86_400_000_000;
    let east_micros = match zone {
        Value::Interval(iv) if iv.months == 0 => iv.micros + i64::from(iv.days) * MICROS_PER_DAY,
        Value::Interval(_) => {
            return Err(Error::new(
                codes::INVALID_PARAMETER_VALUE,
                "interval time zone must not include months or years",
            ))
        }
        other => {
            let name = to_text(other).unwrap_or_default();
            zone_offset_east(&name).ok_or_else(|| {
                Error::new(codes::INVALID_PARAMETER_VALUE, format!("time zone \"{name}\" not recognized"))
            })? * 1_000_000
        }
    };
    match ts {
        Value::TimestampTz(t) => Ok(Value::Timestamp(t.saturating_add(east_micros))),
        Value::Timestamp(t) => Ok(Value::TimestampTz(t.saturating_sub(east_micros))),
        Value::Text(s) => at_time_zone(zone, &cast::parse_text(s, &DataType::TimestampTz)?),
        other => Err(no_function("timezone", &[zone.clone(), other.clone()])),
    }
}

/// The offset east of Greenwich, in seconds, of a zone named without a time zone database.
fn zone_offset_east(name: &str) -> Option<i64> {
    let lower = name.trim().to_ascii_lowercase();
    let bare = lower.strip_prefix("etc/").unwrap_or(&lower);
    if matches!(bare, "utc" | "gmt" | "z" | "zulu" | "uct" | "universal" | "greenwich" | "gmt0" | "gmt+0" | "gmt-0") {
        return Some(0);
    }
    // POSIX style: an optional abbreviation, then hours (and minutes) WEST of Greenwich.
    let rest = bare.strip_prefix("utc").or_else(|| bare.strip_prefix("gmt")).unwrap_or(bare);
    let (sign, digits) = match rest.as_bytes().first()? {
        b'+' => (1, &rest[1..]),
        b'-' => (-1, &rest[1..]),
        b'0'..=b'9' => (1, rest),
        _ => return None,
    };
    let (h, m) = match digits.split_once(':') {
        Some((h, m)) => (h.parse::<i64>().ok()?, m.parse::<i64>().ok()?),
        None if digits.len() == 4 => (digits[..2].parse::<i64>().ok()?, digits[2..].parse::<i64>().ok()?),
        None => (digits.parse::<i64>().ok()?, 0),
    };
    if h > 15 * 24 || !(0..60).contains(&m) || digits.is_empty() {
        return None;
    }
    Some(-sign * (h * 3600 + m * 60))
}

/// sha256 / sha384 / sha512 of bytes.
fn sha2(name: &str, b: &[u8]) -> Vec<u8> {
    let algorithm = match name {
        "sha256" => &ring::digest::SHA256,
        "sha384" => &ring::digest::SHA384,
        _ => &ring::digest::SHA512,
    };
    ring::digest::digest(algorithm, b).as_ref().to_vec()
}

/// Calls a scalar function by its lower-case name.
pub fn call_function(name: &str, args: Vec<Value>, ctx: &FnContext) -> Result<Value> {
    // Non-strict functions first.
    match name {
        "concat" => {
            let mut out = String::new();
            for a in &args {
                if let Some(s) = to_text(a) {
                    out.push_str(&s);
                }
            }
            return Ok(Value::Text(out));
        }
        "concat_ws" => {
            let Some((sep, rest)) = args.split_first() else { return Err(no_function(name, &args)) };
            let Some(sep) = to_text(sep) else { return Ok(Value::Null) };
            let parts: Vec<String> = rest.iter().filter_map(to_text).collect();
            return Ok(Value::Text(parts.join(&sep)));
        }
        "coalesce" => return Ok(args.into_iter().find(|a| !a.is_null()).unwrap_or(Value::Null)),
        "nullif" => {
            let [a, b] = <[Value; 2]>::try_from(args.clone()).map_err(|_| no_function(name, &args))?;
            if a.is_null() || b.is_null() {
                return Ok(a);
            }
            let equal = super::binary(crate::ast::BinaryOp::Eq, a.clone(), b)?;
            return Ok(if equal == Value::Bool(true) { Value::Null } else { a });
        }
        "greatest" | "least" => return extreme(name, args),
        // Bound by the binder as enum_range(low, high, label...), NULL bounds open.
        "enum_range" if args.len() >= 2 => {
            let position = |v: &Value| match v {
                Value::Enum(e) => Some(e.order),
                _ => None,
            };
            let (low, high) = (position(&args[0]), position(&args[1]));
            let labels: Vec<Option<String>> = args[2..]
                .iter()
                .filter_map(|v| match v {
                    Value::Enum(e) if low.is_none_or(|l| e.order >= l) && high.is_none_or(|h| e.order <= h) => {
                        Some(Some(e.label.clone()))
                    }
                    _ => None,
                })
                .collect();
            return Ok(Value::Text(super::array::format(&labels)));
        }
        "now" | "current_timestamp" | "transaction_timestamp" | "statement_timestamp" | "clock_timestamp"
            if args.is_empty() =>
        {
            return Ok(Value::TimestampTz(ctx.now_micros));
        }
        "localtimestamp" if args.is_empty() => return Ok(Value::Timestamp(ctx.now_micros)),
        "localtime" if args.is_empty() => return Ok(Value::Time(ctx.now_micros.rem_euclid(datetime::DAY_MICROS))),
        "current_date" if args.is_empty() => {
            return Ok(Value::Date(datetime::timestamp_to_date(ctx.now_micros)));
        }
        "pi" if args.is_empty() => return Ok(Value::Float8(std::f64::consts::PI)),
        "gen_random_uuid" | "uuid_generate_v4" if args.is_empty() => return random_uuid(),
        "random" if args.is_empty() => return random_float(),
        "format" if !args.is_empty() => return format_text(&args),
        // The JSON builders take NULL as JSON null.
        name if super::json::is_builder(name) => {
            return super::json::call(name, &args).expect("a builder is a JSON function")
        }
        _ => {
            if let Some(result) = super::array::call(name, &args) {
                return result;
            }
        }
    }
    if args.iter().any(Value::is_null) && (is_known(name) || super::json::is_function(name)) {
        return Ok(Value::Null);
    }
    if let Some(result) = super::json::call(name, &args) {
        return result;
    }
    let result = match name {
        "lower" | "upper" | "initcap" | "reverse" | "md5" | "ascii" | "length" | "char_length" | "character_length"
        | "octet_length" | "bit_length" => text_unary(name, &args),
        "substr" | "substring" => substr(&args),
        "strpos" | "position" => match (text_arg(&args, 0), text_arg(&args, 1), args.len()) {
            (Some(s), Some(sub), 2) => Some(Ok(Value::Int4(strpos(s, sub)))),
            _ => None,
        },
        "btrim" | "trim" | "ltrim" | "rtrim" => trim(name, &args),
        "regexp_replace" => match (text_arg(&args, 0), text_arg(&args, 1), text_arg(&args, 2), args.len()) {
            (Some(s), Some(pattern), Some(to), 3) => Some(super::regex::replace(s, pattern, to, "")),
            (Some(s), Some(pattern), Some(to), 4) => {
                text_arg(&args, 3).map(|flags| super::regex::replace(s, pattern, to, flags))
            }
            _ => None,
        },
        "replace" => match (text_arg(&args, 0), text_arg(&args, 1), text_arg(&args, 2), args.len()) {
            (Some(s), Some(from), Some(to), 3) => {
                Some(Ok(Value::Text(if from.is_empty() { s.to_string() } else { s.replace(from, to) })))
            }
            _ => None,
        },
        "left" | "right" => match (text_arg(&args, 0), int_arg(&args, 1), args.len()) {
            (Some(s), Some(n), 2) => Some(Ok(Value::Text(left_right(name == "left", s, n)))),
            _ => None,
        },
        "repeat" => match (text_arg(&args, 0), int_arg(&args, 1), args.len()) {
            (Some(s), Some(n), 2) => Some(repeat(s, n)),
            _ => None,
        },
        "lpad" | "rpad" => pad(name == "lpad", &args),
        "split_part" => match (text_arg(&args, 0), text_arg(&args, 1), int_arg(&args, 2), args.len()) {
            (Some(s), Some(d), Some(n), 3) => Some(split_part(s, d, n)),
            _ => None,
        },
        "starts_with" => match (text_arg(&args, 0), text_arg(&args, 1), args.len()) {
            (Some(s), Some(p), 2) => Some(Ok(Value::Bool(s.starts_with(p)))),
            _ => None,
        },
        "chr" => match (int_arg(&args, 0), args.len()) {
            (Some(n), 1) => Some(chr(n)),
            _ => None,
        },
        "to_hex" => match (&args[..], args.len()) {
            ([Value::Int2(_) | Value::Int4(_)], 1) => {
                Some(Ok(Value::Text(format!("{:x}", int_arg(&args, 0).unwrap_or(0) as u32))))
            }
            ([Value::Int8(i)], 1) => Some(Ok(Value::Text(format!("{:x}", *i as u64)))),
            _ => None,
        },
        "abs" | "round" | "ceil" | "ceiling" | "floor" | "trunc" | "sqrt" | "cbrt" | "exp" | "ln" | "log" | "log10"
        | "sign" | "degrees" | "radians" | "power" | "pow" | "mod" | "div" => math(name, &args),
        "date_part" | "extract" => match (text_arg(&args, 0), args.get(1), args.len()) {
            (Some(field), Some(v), 2) => Some(extract(field, v, name == "extract")),
            _ => None,
        },
        "date_trunc" => match (text_arg(&args, 0), args.get(1), args.len()) {
            (Some(field), Some(v), 2) => date_trunc(field, v),
            _ => None,
        },
        "encode" => match (&args[..], text_arg(&args, 1)) {
            ([Value::Bytea(b), _], Some(fmt)) => Some(encode(b, fmt)),
            _ => None,
        },
        "decode" => match (text_arg(&args, 0), text_arg(&args, 1), args.len()) {
            (Some(s), Some(fmt), 2) => Some(decode(s, fmt)),
            _ => None,
        },
        "timezone" => match &args[..] {
            [zone, ts] => Some(at_time_zone(zone, ts)),
            _ => None,
        },
        "sha256" | "sha384" | "sha512" => match &args[..] {
            [Value::Bytea(b)] => Some(Ok(Value::Bytea(sha2(name, b)))),
            _ => None,
        },
        "make_date" => match (int_arg(&args, 0), int_arg(&args, 1), int_arg(&args, 2), args.len()) {
            (Some(y), Some(m), Some(d), 3) => Some(make_date(y, m, d)),
            _ => None,
        },
        "make_time" => match (int_arg(&args, 0), int_arg(&args, 1), args.get(2), args.len()) {
            (Some(h), Some(m), Some(s), 3) => Some(make_time(h, m, s)),
            _ => None,
        },
        "to_char" => match (&args[..], text_arg(&args, 1)) {
            ([v, _], Some(template)) => to_char(v, template),
            _ => None,
        },
        "to_timestamp" => match (&args[..], text_arg(&args, 0), text_arg(&args, 1)) {
            ([v], ..) if as_numeric(v).is_some() => Some(to_timestamp(v)),
            ([_, _], Some(input), Some(template)) => {
                Some(super::to_timestamp::parse(input, template).map(Value::TimestampTz))
            }
            _ => None,
        },
        "to_date" => match (text_arg(&args, 0), text_arg(&args, 1), args.len()) {
            (Some(input), Some(template), 2) => Some(super::to_timestamp::parse(input, template).and_then(|t| {
                i32::try_from(t.div_euclid(datetime::DAY_MICROS))
                    .map(Value::Date)
                    .map_err(|_| Error::new(codes::DATETIME_FIELD_OVERFLOW, "date out of range"))
            })),
            _ => None,
        },
        "age" => match &args[..] {
            [a, b] => timestamp_micros_of(a).zip(timestamp_micros_of(b)).map(|(a, b)| age(a, b)),
            [b] => timestamp_micros_of(b).map(|b| {
                let midnight = ctx.now_micros - ctx.now_micros.rem_euclid(datetime::DAY_MICROS);
                age(midnight, b)
            }),
            _ => None,
        },
        "justify_days" | "justify_hours" | "justify_interval" => match &args[..] {
            [Value::Interval(iv)] => Some(Ok(Value::Interval(justify(name, *iv)))),
            _ => None,
        },
        _ => None,
    };
    result.unwrap_or_else(|| Err(no_function(name, &args)))
}

/// Names this module implements (so NULL arguments short-circuit only for real functions).
fn is_known(name: &str) -> bool {
    matches!(
        name,
        "lower"
            | "upper"
            | "initcap"
            | "reverse"
            | "md5"
            | "ascii"
            | "length"
            | "char_length"
            | "character_length"
            | "octet_length"
            | "bit_length"
            | "encode"
            | "decode"
            | "sha256"
            | "timezone"
            | "sha384"
            | "sha512"
            | "substr"
            | "substring"
            | "strpos"
            | "position"
            | "btrim"
            | "trim"
            | "ltrim"
            | "rtrim"
            | "replace"
            | "regexp_replace"
            | "left"
            | "right"
            | "repeat"
            | "lpad"
            | "rpad"
            | "split_part"
            | "starts_with"
            | "chr"
            | "to_hex"
            | "abs"
            | "round"
            | "ceil"
            | "ceiling"
            | "floor"
            | "trunc"
            | "sqrt"
            | "cbrt"
            | "exp"
            | "ln"
            | "log"
            | "log10"
            | "sign"
            | "degrees"
            | "radians"
            | "power"
            | "pow"
            | "mod"
            | "div"
            | "date_part"
            | "extract"
            | "date_trunc"
            | "make_date"
            | "make_time"
            | "to_char"
            | "to_timestamp"
            | "to_date"
            | "age"
            | "justify_days"
            | "justify_hours"
            | "justify_interval"
    )
}

/// to_char(timestamp | timestamptz | date | number, template); NULL for an infinite
/// timestamp, as in PostgreSQL.
fn to_char(v: &Value, template: &str) -> Option<Result<Value>> {
    let text = |s: Option<String>| Ok(s.map_or(Value::Null, Value::Text));
    Some(match v {
        Value::Timestamp(t) => text(super::to_char::timestamp(*t, false, template)),
        Value::TimestampTz(t) => text(super::to_char::timestamp(*t, true, template)),
        Value::Date(d) => text(super::to_char::timestamp(datetime::date_to_timestamp(*d), false, template)),
        Value::Float4(f) => {
            float_numeric(f64::from(*f), 6).and_then(|n| super::to_char::number(n, template)).map(Value::Text)
        }
        Value::Float8(f) => float_numeric(*f, 15).and_then(|n| super::to_char::number(n, template)).map(Value::Text),
        other => match as_numeric(other)? {
            Ok(n) => super::to_char::number(n, template).map(Value::Text),
            Err(e) => Err(e),
        },
    })
}

/// A float as a NUMERIC of its significant digits (22023 for NaN and infinities).
fn float_numeric(f: f64, digits: usize) -> Result<Numeric> {
    numeric::from_float(f, digits).unwrap_or_else(|| {
        Err(Error::new(codes::INVALID_PARAMETER_VALUE, "cannot format NaN or infinity with to_char"))
    })
}

/// to_timestamp(seconds since 1970-01-01 00:00 UTC).
fn to_timestamp(v: &Value) -> Result<Value> {
    let secs = match cast::cast(v.clone(), &DataType::Float8, false)? {
        Value::Float8(f) => f,
        _ => return Err(no_function("to_timestamp", std::slice::from_ref(v))),
    };
    if secs.is_nan() {
        return Err(Error::new(codes::INVALID_PARAMETER_VALUE, "timestamp cannot be NaN"));
    }
    if secs.is_infinite() {
        return Ok(Value::TimestampTz(if secs > 0.0 { datetime::TS_INFINITY } else { datetime::TS_NEG_INFINITY }));
    }
    let micros = (secs * 1e6).round() - (datetime::UNIX_EPOCH_DAYS * datetime::DAY_MICROS) as f64;
    if micros.abs() >= 9.2e18 || !datetime::timestamp_in_range(micros as i64) {
        return Err(Error::new(codes::DATETIME_FIELD_OVERFLOW, format!("timestamp out of range: \"{secs}\"")));
    }
    Ok(Value::TimestampTz(micros as i64))
}

/// Microseconds of a date (midnight), timestamp or timestamptz.
fn timestamp_micros_of(v: &Value) -> Option<i64> {
    match v {
        Value::Date(d) => Some(datetime::date_to_timestamp(*d)),
        Value::Timestamp(t) | Value::TimestampTz(t) => Some(*t),
        _ => None,
    }
}

/// age(a, b): a - b in years, months and days as the calendar counts them, borrowing a
/// month's days from the earlier timestamp's month (PostgreSQL's timestamp_age).
fn age(a: i64, b: i64) -> Result<Value> {
    let infinite = |t: i64| t == datetime::TS_INFINITY || t == datetime::TS_NEG_INFINITY;
    if infinite(a) || infinite(b) {
        return Err(Error::new(codes::DATETIME_FIELD_OVERFLOW, "interval out of range"));
    }
    let fields = |t: i64| {
        let (y, m, d) = datetime::civil_from_days(t.div_euclid(datetime::DAY_MICROS));
        (y, i64::from(m), i64::from(d), t.rem_euclid(datetime::DAY_MICROS))
    };
    let (y1, m1, d1, t1) = fields(a);
    let (y2, m2, d2, t2) = fields(b);
    let sign = if a < b { -1 } else { 1 };
    let (mut year, mut mon, mut mday, mut tod) =
        ((y1 - y2) * sign, (m1 - m2) * sign, (d1 - d2) * sign, (t1 - t2) * sign);
    while tod < 0 {
        tod += datetime::DAY_MICROS;
        mday -= 1;
    }
    // The month whose length is borrowed: the earlier timestamp's.
    let (by, bm) = if a < b { (y1, m1) } else { (y2, m2) };
    while mday < 0 {
        mday += i64::from(datetime::month_days(by, bm as u32));
        mon -= 1;
    }
    while mon < 0 {
        mon += 12;
        year -= 1;
    }
    let months = i32::try_from(sign * (year * 12 + mon)).map_err(|_| datetime::interval_out_of_range())?;
    let days = i32::try_from(sign * mday).map_err(|_| datetime::interval_out_of_range())?;
    Ok(Value::Interval(crate::types::Interval { months, days, micros: sign * tod }))
}

/// justify_days (30 days to a month), justify_hours (24 hours to a day) and
/// justify_interval (both, with the fields' signs made to agree), as PostgreSQL's.
fn justify(name: &str, iv: crate::types::Interval) -> crate::types::Interval {
    let (mut months, mut days, mut micros) = (i64::from(iv.months), i64::from(iv.days), iv.micros);
    let day = datetime::DAY_MICROS;
    if name != "justify_days" {
        days += micros / day;
        micros %= day;
    }
    if name != "justify_hours" {
        months += days / 30;
        days %= 30;
    }
    if name == "justify_interval" {
        if months > 0 && (days < 0 || (days == 0 && micros < 0)) {
            days += 30;
            months -= 1;
        } else if months < 0 && (days > 0 || (days == 0 && micros > 0)) {
            days -= 30;
            months += 1;
        }
    }
    if name == "justify_days" {
        if months > 0 && days < 0 {
            days += 30;
            months -= 1;
        } else if months < 0 && days > 0 {
            days -= 30;
            months += 1;
        }
    } else if days > 0 && micros < 0 {
        micros += day;
        days -= 1;
    } else if days < 0 && micros > 0 {
        micros -= day;
        days += 1;
    }
    crate::types::Interval {
        months: i32::try_from(months).unwrap_or(if months < 0 { i32::MIN } else { i32::MAX }),
        days: i32::try_from(days).unwrap_or(if days < 0 { i32::MIN } else { i32::MAX }),
        micros,
    }
}

/// make_time(hour, min, sec): 22008 outside 00:00:00 to 24:00:00.
fn make_time(h: i64, m: i64, s: &Value) -> Result<Value> {
    let Value::Float8(sec) = cast::cast(s.clone(), &DataType::Float8, false)? else {
        return Err(no_function("make_time", &[Value::Int8(h), Value::Int8(m), s.clone()]));
    };
    let micros = (sec * 1e6).round();
    let out_of_range = || {
        // PostgreSQL's "%d:%02d:%02g".
        let s = crate::eval::to_text(&Value::Float8(sec)).unwrap_or_default();
        let s = if s.len() < 2 { format!("0{s}") } else { s };
        Error::new(codes::DATETIME_FIELD_OVERFLOW, format!("time field value out of range: {h}:{m:02}:{s}"))
    };
    if !(0..=24).contains(&h) || !(0..=59).contains(&m) || !(0.0..=60.0e6).contains(&micros) {
        return Err(out_of_range());
    }
    let t = h * datetime::HOUR_MICROS + m * datetime::MINUTE_MICROS + micros as i64;
    if t > datetime::DAY_MICROS {
        return Err(out_of_range());
    }
    Ok(Value::Time(t))
}

fn text_arg(args: &[Value], i: usize) -> Option<&str> {
    match args.get(i)? {
        Value::Text(s) => Some(s),
        _ => None,
    }
}

fn int_arg(args: &[Value], i: usize) -> Option<i64> {
    match args.get(i)? {
        Value::Int2(v) => Some(i64::from(*v)),
        Value::Int4(v) => Some(i64::from(*v)),
        Value::Int8(v) => Some(*v),
        Value::Text(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn text_unary(name: &str, args: &[Value]) -> Option<Result<Value>> {
    if args.len() != 1 {
        return None;
    }
    if let Value::Bytea(b) = &args[0] {
        return match name {
            "length" | "octet_length" => Some(Ok(Value::Int4(b.len() as i32))),
            "md5" => Some(Ok(Value::Text(md5_hex(b)))),
            _ => None,
        };
    }
    let s = text_arg(args, 0)?;
    Some(Ok(match name {
        "lower" => Value::Text(s.to_lowercase()),
        "upper" => Value::Text(s.to_uppercase()),
        "initcap" => Value::Text(initcap(s)),
        "reverse" => Value::Text(s.chars().rev().collect()),
        "md5" => Value::Text(md5_hex(s.as_bytes())),
        "ascii" => Value::Int4(s.chars().next().map_or(0, |c| c as i32)),
        "octet_length" => Value::Int4(s.len() as i32),
        "bit_length" => Value::Int4(s.len() as i32 * 8),
        _ => Value::Int4(s.chars().count() as i32),
    }))
}

fn initcap(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_alnum = false;
    for c in s.chars() {
        if prev_alnum {
            out.extend(c.to_lowercase());
        } else {
            out.extend(c.to_uppercase());
        }
        prev_alnum = c.is_alphanumeric();
    }
    out
}

/// `substr(s, from [, count])`, 1-based, clipped as PostgreSQL does.
fn substr(args: &[Value]) -> Option<Result<Value>> {
    let s = text_arg(args, 0)?;
    let from = int_arg(args, 1)?;
    let count = match args.len() {
        2 => None,
        3 => Some(int_arg(args, 2)?),
        _ => return None,
    };
    if let Some(c) = count {
        if c < 0 {
            return Some(Err(Error::new("22011", "negative substring length not allowed")));
        }
    }
    let start = from.max(1);
    let end = count.map_or(i64::MAX, |c| from.saturating_add(c));
    if end <= start {
        return Some(Ok(Value::Text(String::new())));
    }
    let taken: String =
        s.chars().skip((start - 1) as usize).take(usize::try_from(end - start).unwrap_or(usize::MAX)).collect();
    Some(Ok(Value::Text(taken)))
}

/// 1-based character position of `sub` in `s`, 0 if absent.
fn strpos(s: &str, sub: &str) -> i32 {
    match s.find(sub) {
        Some(byte) => s[..byte].chars().count() as i32 + 1,
        None => 0,
    }
}

fn trim(name: &str, args: &[Value]) -> Option<Result<Value>> {
    let s = text_arg(args, 0)?;
    let chars: Vec<char> = match args.len() {
        1 => vec![' '],
        2 => text_arg(args, 1)?.chars().collect(),
        _ => return None,
    };
    let set = |c: char| chars.contains(&c);
    let out = match name {
        "ltrim" => s.trim_start_matches(set),
        "rtrim" => s.trim_end_matches(set),
        _ => s.trim_matches(set),
    };
    Some(Ok(Value::Text(out.to_string())))
}

fn left_right(left: bool, s: &str, n: i64) -> String {
    let len = s.chars().count() as i64;
    let keep = if n >= 0 { n.min(len) } else { (len + n).max(0) };
    if left {
        s.chars().take(keep as usize).collect()
    } else {
        s.chars().skip((len - keep) as usize).collect()
    }
}

fn too_long() -> Error {
    Error::new(codes::PROGRAM_LIMIT_EXCEEDED, "requested length too large")
}

fn repeat(s: &str, n: i64) -> Result<Value> {
    if n <= 0 || s.is_empty() {
        return Ok(Value::Text(String::new()));
    }
    let bytes = (s.len() as u128) * (n as u128);
    if bytes > RESULT_BYTES_MAX as u128 {
        return Err(too_long());
    }
    Ok(Value::Text(s.repeat(n as usize)))
}

fn pad(left: bool, args: &[Value]) -> Option<Result<Value>> {
    let s = text_arg(args, 0)?;
    let len = int_arg(args, 1)?;
    let fill: Vec<char> = match args.len() {
        2 => vec![' '],
        3 => text_arg(args, 2)?.chars().collect(),
        _ => return None,
    };
    if len <= 0 {
        return Some(Ok(Value::Text(String::new())));
    }
    if len as u128 * 4 > RESULT_BYTES_MAX as u128 {
        return Some(Err(too_long()));
    }
    let len = len as usize;
    let chars: Vec<char> = s.chars().collect();
    if chars.len() >= len || fill.is_empty() {
        return Some(Ok(Value::Text(chars.iter().take(len).collect())));
    }
    let padding: String = fill.iter().cycle().take(len - chars.len()).collect();
    let body: String = chars.iter().collect();
    Some(Ok(Value::Text(if left { padding + &body } else { body + &padding })))
}

fn split_part(s: &str, delim: &str, n: i64) -> Result<Value> {
    if n == 0 {
        return Err(Error::new(codes::INVALID_PARAMETER_VALUE, "field position must not be zero"));
    }
    if delim.is_empty() {
        return Ok(Value::Text(if n == 1 || n == -1 { s.to_string() } else { String::new() }));
    }
    let parts: Vec<&str> = s.split(delim).collect();
    let index = if n > 0 { n - 1 } else { parts.len() as i64 + n };
    let part = usize::try_from(index).ok().and_then(|i| parts.get(i)).copied().unwrap_or("");
    Ok(Value::Text(part.to_string()))
}

fn chr(n: i64) -> Result<Value> {
    if n == 0 {
        return Err(Error::new("54000", "null character not permitted"));
    }
    let c = u32::try_from(n).ok().and_then(char::from_u32).ok_or_else(|| {
        Error::new(codes::PROGRAM_LIMIT_EXCEEDED, format!("requested character too large for encoding: {n}"))
    })?;
    Ok(Value::Text(c.to_string()))
}

/// A math argument: the double precision or the numeric version.
enum MathArg {
    F(f64),
    N(Numeric),
}

fn math_arg(v: &Value) -> Option<MathArg> {
    Some(match v {
        Value::Int2(i) => MathArg::F(f64::from(*i)),
        Value::Int4(i) => MathArg::F(f64::from(*i)),
        Value::Int8(i) => MathArg::F(*i as f64),
        Value::Float4(f) => MathArg::F(f64::from(*f)),
        Value::Float8(f) => MathArg::F(*f),
        Value::Numeric(n) => MathArg::N(*n),
        Value::Text(s) => MathArg::F(crate::eval::text::parse_float(s, 64).ok()?),
        _ => return None,
    })
}

fn as_numeric(v: &Value) -> Option<Result<Numeric>> {
    match v {
        Value::Int2(_) | Value::Int4(_) | Value::Int8(_) | Value::Numeric(_) | Value::Text(_) => {
            Some(cast::cast(v.clone(), &NUMERIC, false).map(|n| match n {
                Value::Numeric(n) => n,
                _ => unreachable!(),
            }))
        }
        _ => None,
    }
}

fn log_error(x: f64) -> Error {
    let what = if x == 0.0 { "zero" } else { "a negative number" };
    Error::new("2201E", format!("cannot take logarithm of {what}"))
}

fn checked_float(r: f64, input_finite: bool) -> Result<Value> {
    if r.is_infinite() && input_finite {
        return Err(cast::float_overflow());
    }
    Ok(Value::Float8(r))
}

/// PostgreSQL's estimate of a value's decimal weight: `log10(|v|)` truncated toward zero.
fn dweight(v: f64) -> i64 {
    if v == 0.0 || !v.is_finite() {
        0
    } else {
        v.abs().log10().trunc() as i64
    }
}

/// A numeric from an inexact `f64` result at PostgreSQL's scale for it: 16 minus the
/// result's decimal weight `weight`, and at least `min_scale`.
fn numeric_from_f64_result(r: f64, weight: i64, min_scale: u32) -> Result<Value> {
    if !r.is_finite() {
        return Err(numeric::overflow());
    }
    let scale = (16 - weight).max(i64::from(min_scale)).clamp(0, i64::from(numeric::SCALE_MAX));
    let n = numeric::from_float(r, 17).unwrap_or_else(|| Err(numeric::overflow()))?;
    Ok(Value::Numeric(numeric::round(n, scale)?))
}

fn math(name: &str, args: &[Value]) -> Option<Result<Value>> {
    match (name, args) {
        ("abs", [v]) => Some(abs(v)),
        ("round" | "trunc", [v, _]) => {
            let places = int_arg(args, 1)?;
            let n = match v {
                Value::Float4(_) | Value::Float8(_) => return None,
                _ => as_numeric(v)?,
            };
            Some(n.and_then(|n| {
                let r = if name == "round" { numeric::round(n, places)? } else { numeric::trunc(n, places)? };
                Ok(Value::Numeric(r))
            }))
        }
        ("mod", [a, b]) => Some(super::binary(crate::ast::BinaryOp::Mod, a.clone(), b.clone())),
        ("div", [a, b]) => {
            let (a, b) = (as_numeric(a)?, as_numeric(b)?);
            Some(a.and_then(|a| b.and_then(|b| numeric::div_trunc(a, b))).map(Value::Numeric))
        }
        ("power" | "pow", [a, b]) => Some(power(math_arg(a)?, math_arg(b)?)),
        ("log", [b, x]) => {
            let (b, x) = (as_numeric(b)?, as_numeric(x)?);
            Some(b.and_then(|b| {
                x.and_then(|x| {
                    let (fb, fx) = (numeric::to_f64(b), numeric::to_f64(x));
                    if fb <= 0.0 {
                        return Err(log_error(fb));
                    }
                    if fx <= 0.0 {
                        return Err(log_error(fx));
                    }
                    if fb == 1.0 {
                        return Err(numeric::division_by_zero());
                    }
                    let weight = dweight(fx.ln()) - dweight(fb.ln());
                    numeric_from_f64_result(fx.ln() / fb.ln(), weight, b.scale.max(x.scale))
                })
            }))
        }
        (_, [v]) => Some(math_unary(name, math_arg(v)?)),
        _ => None,
    }
}

fn abs(v: &Value) -> Result<Value> {
    Ok(match v {
        Value::Int2(i) => Value::Int2(i.checked_abs().ok_or_else(|| cast::int_out_of_range(&DataType::Int2))?),
        Value::Int4(i) => Value::Int4(i.checked_abs().ok_or_else(|| cast::int_out_of_range(&DataType::Int4))?),
        Value::Int8(i) => Value::Int8(i.checked_abs().ok_or_else(|| cast::int_out_of_range(&DataType::Int8))?),
        Value::Float4(f) => Value::Float4(f.abs()),
        Value::Float8(f) => Value::Float8(f.abs()),
        Value::Numeric(n) => Value::Numeric(Numeric { mantissa: n.mantissa.abs(), scale: n.scale }),
        other => return Err(no_function("abs", std::slice::from_ref(other))),
    })
}

fn math_unary(name: &str, arg: MathArg) -> Result<Value> {
    match arg {
        MathArg::F(x) => {
            let finite = x.is_finite();
            match name {
                "round" => Ok(Value::Float8(x.round_ties_even())),
                "ceil" | "ceiling" => Ok(Value::Float8(x.ceil())),
                "floor" => Ok(Value::Float8(x.floor())),
                "trunc" => Ok(Value::Float8(x.trunc())),
                "sign" => Ok(Value::Float8(if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    0.0
                })),
                "sqrt" if x < 0.0 => Err(Error::new("2201F", "cannot take square root of a negative number")),
                "sqrt" => Ok(Value::Float8(x.sqrt())),
                "cbrt" => Ok(Value::Float8(x.cbrt())),
                "exp" => {
                    let r = x.exp();
                    if r == 0.0 && finite {
                        return Err(cast::float_underflow());
                    }
                    checked_float(r, finite)
                }
                "ln" | "log" | "log10" if x <= 0.0 => Err(log_error(x)),
                "ln" => Ok(Value::Float8(x.ln())),
                "log" | "log10" => Ok(Value::Float8(x.log10())),
                "degrees" => checked_float(x.to_degrees(), finite),
                "radians" => Ok(Value::Float8(x.to_radians())),
                _ => Err(no_function(name, &[Value::Float8(x)])),
            }
        }
        MathArg::N(n) => {
            let f = numeric::to_f64(n);
            match name {
                "round" => Ok(Value::Numeric(numeric::round(n, 0)?)),
                "trunc" => Ok(Value::Numeric(numeric::trunc(n, 0)?)),
                "ceil" | "ceiling" => Ok(Value::Numeric(numeric::ceil(n)?)),
                "floor" => Ok(Value::Numeric(numeric::floor(n)?)),
                "sign" => Ok(Value::Numeric(numeric::make(n.mantissa < 0, u128::from(n.mantissa != 0), 0))),
                "sqrt" if n.mantissa < 0 => Err(Error::new("2201F", "cannot take square root of a negative number")),
                "sqrt" => numeric_sqrt(n),
                "exp" => numeric_from_f64_result(f.exp(), dweight(f / std::f64::consts::LN_10), n.scale),
                "ln" | "log" | "log10" if n.mantissa <= 0 => Err(log_error(f)),
                "ln" => numeric_from_f64_result(f.ln(), dweight(f.ln()), n.scale),
                "log" | "log10" => {
                    let weight = dweight(f.ln()) - dweight(std::f64::consts::LN_10);
                    numeric_from_f64_result(f.log10(), weight, n.scale)
                }
                _ => math_unary(name, MathArg::F(f)),
            }
        }
    }
}

/// NUMERIC square root with PostgreSQL's result scale; exact (rounded) when the scaled
/// radicand fits 128 bits.
fn numeric_sqrt(n: Numeric) -> Result<Value> {
    if n.mantissa == 0 {
        return Ok(Value::Numeric(numeric::make(false, 0, n.scale)));
    }
    let mag = n.mantissa.unsigned_abs();
    let exponent = i64::from(numeric::digits(mag)) - 1 - i64::from(n.scale);
    let weight = exponent.div_euclid(4);
    let sweight = (weight + 1) * 4 / 2 - 1;
    let rscale = (16 - sweight).max(i64::from(n.scale)).max(0).min(i64::from(numeric::SCALE_MAX)) as u32;
    numeric_sqrt_to_scale(n, rscale)
}

/// The square root of a non-negative NUMERIC rounded to `rscale` fraction digits.
pub(crate) fn numeric_sqrt_to_scale(n: Numeric, rscale: u32) -> Result<Value> {
    let mag = n.mantissa.unsigned_abs();
    // sqrt(m / 10^s) * 10^rscale = sqrt(m * 10^(2 rscale - s)).
    let up = 2 * i64::from(rscale) - i64::from(n.scale);
    // Both factors are below 10^38 < 2^127, so the product is below 2^254.
    let radicand = u32::try_from(up)
        .ok()
        .filter(|u| *u <= numeric::DIGITS_MAX)
        .map(|u| numeric::U256::mul(mag, numeric::pow10(u)));
    match radicand {
        Some(r) => Ok(Value::Numeric(numeric::fit(false, numeric::U256::from_u128(r.sqrt_rounded()), rscale)?)),
        None => {
            let r = numeric::to_f64(n).sqrt();
            numeric_from_f64_result(r, dweight(r), rscale)
        }
    }
}

fn power(a: MathArg, b: MathArg) -> Result<Value> {
    match (a, b) {
        (MathArg::F(x), MathArg::F(y)) => {
            if x == 0.0 && y < 0.0 {
                return Err(Error::new("2201F", "zero raised to a negative power is undefined"));
            }
            if x < 0.0 && y.fract() != 0.0 {
                return Err(Error::new(
                    "2201F",
                    "a negative number raised to a non-integer power yields a complex result",
                ));
            }
            let r = x.powf(y);
            if r == 0.0 && x != 0.0 && x.is_finite() && y.is_finite() {
                return Err(cast::float_underflow());
            }
            checked_float(r, x.is_finite() && y.is_finite())
        }
        (a, b) => {
            let to_n = |m: MathArg| match m {
                MathArg::N(n) => Ok(n),
                MathArg::F(f) => numeric::from_float(f, 15).unwrap_or_else(|| Err(numeric::overflow())),
            };
            let (x, y) = (to_n(a)?, to_n(b)?);
            if x.mantissa == 0 && y.mantissa < 0 {
                return Err(Error::new("2201F", "zero raised to a negative power is undefined"));
            }
            if let Some(e) = numeric::to_integer(y).filter(|e| e.abs() <= 1000) {
                if let Ok(v) = numeric_int_power(x, e) {
                    return Ok(v);
                }
            }
            let (fx, fy) = (numeric::to_f64(x), numeric::to_f64(y));
            if fx < 0.0 && fy.fract() != 0.0 {
                return Err(Error::new(
                    "2201F",
                    "a negative number raised to a non-integer power yields a complex result",
                ));
            }
            let r = fx.powf(fy);
            numeric_from_f64_result(r, dweight(r), x.scale.max(y.scale))
        }
    }
}

/// `x ^ e` for an integral exponent, exact where the digits fit, at PostgreSQL's scale
/// (16 fraction digits, or the base's scale if larger).
fn numeric_int_power(x: Numeric, e: i128) -> Result<Value> {
    let mut result = numeric::make(false, 1, 0);
    let mut base = x;
    let mut k = e.unsigned_abs();
    while k > 0 {
        if k & 1 == 1 {
            result = numeric::mul(result, base)?;
        }
        k >>= 1;
        if k > 0 {
            base = numeric::mul(base, base)?;
        }
    }
    if e < 0 {
        result = numeric::div(numeric::make(false, 1, 0), result)?;
    }
    Ok(Value::Numeric(numeric::round(result, i64::from(x.scale.max(16)))?))
}

/// `greatest` / `least`: NULLs ignored, numbers promoted to their common type.
fn extreme(name: &str, args: Vec<Value>) -> Result<Value> {
    let present: Vec<Value> = args.iter().filter(|a| !a.is_null()).cloned().collect();
    if present.is_empty() {
        return Ok(Value::Null);
    }
    // The common type: the first non-text type, widened across numbers.
    let mut common: Option<DataType> = None;
    for v in &present {
        let t = super::type_of(v).unwrap_or(DataType::Text);
        common = Some(match (common, t) {
            (None, t) => t,
            (Some(DataType::Text), t) => t,
            (Some(c), DataType::Text) => c,
            (Some(c), t) => wider(&c, &t).ok_or_else(|| no_function(name, &args))?,
        });
    }
    let common = common.unwrap_or(DataType::Text);
    let mut best: Option<Value> = None;
    for v in present {
        let v = cast::cast(v, &common, false)?;
        best = Some(match best {
            None => v,
            Some(b) => {
                let ord = compare(&v, &b).ok_or_else(|| no_function(name, &args))?;
                let take = if name == "greatest" { ord == Ordering::Greater } else { ord == Ordering::Less };
                if take {
                    v
                } else {
                    b
                }
            }
        });
    }
    Ok(best.unwrap_or(Value::Null))
}

/// The common type of two types, for numbers and datetimes; `None` if they do not mix.
fn wider(a: &DataType, b: &DataType) -> Option<DataType> {
    fn rank(t: &DataType) -> Option<u8> {
        Some(match t {
            DataType::Int2 => 0,
            DataType::Int4 => 1,
            DataType::Int8 => 2,
            DataType::Numeric { .. } => 3,
            DataType::Float4 => 4,
            DataType::Float8 => 5,
            _ => return None,
        })
    }
    if a == b {
        return Some(a.clone());
    }
    match (rank(a), rank(b)) {
        (Some(x), Some(y)) => Some(if x >= y { a.clone() } else { b.clone() }),
        _ => match (a, b) {
            (DataType::Date, DataType::Timestamp) | (DataType::Timestamp, DataType::Date) => Some(DataType::Timestamp),
            (DataType::Date | DataType::Timestamp | DataType::TimestampTz, DataType::TimestampTz)
            | (DataType::TimestampTz, DataType::Date | DataType::Timestamp) => Some(DataType::TimestampTz),
            _ => None,
        },
    }
}

/// 22023 `unit "foo" not recognized for type timestamp without time zone`.
fn unit_not_recognized(field: &str, type_name: &str) -> Error {
    Error::new(codes::INVALID_PARAMETER_VALUE, format!("unit \"{field}\" not recognized for type {type_name}"))
}

fn unit_not_supported(field: &str, type_name: &str) -> Error {
    Error::new(codes::FEATURE_NOT_SUPPORTED, format!("unit \"{field}\" not supported for type {type_name}"))
}

/// Canonical unit name of an EXTRACT / date_trunc field (PostgreSQL's abbreviations).
fn canonical_unit(field: &str) -> Option<&'static str> {
    Some(match field {
        "microsecond" | "microseconds" | "us" | "usec" | "usecs" | "useconds" => "microseconds",
        "millisecond" | "milliseconds" | "ms" | "msec" | "msecs" | "mseconds" => "milliseconds",
        "second" | "seconds" | "s" | "sec" | "secs" => "second",
        "minute" | "minutes" | "m" | "min" | "mins" => "minute",
        "hour" | "hours" | "h" | "hr" | "hrs" => "hour",
        "day" | "days" | "d" => "day",
        "week" | "weeks" | "w" => "week",
        "month" | "months" | "mon" | "mons" => "month",
        "quarter" | "qtr" => "quarter",
        "year" | "years" | "y" | "yr" | "yrs" => "year",
        "decade" | "decades" | "dec" => "decade",
        "century" | "centuries" | "c" | "cent" => "century",
        "millennium" | "millennia" | "mil" | "mils" | "millenniums" => "millennium",
        "dow" => "dow",
        "isodow" => "isodow",
        "doy" => "doy",
        "epoch" => "epoch",
        "isoyear" => "isoyear",
        "julian" => "julian",
        "timezone" => "timezone",
        "timezone_hour" => "timezone_hour",
        "timezone_minute" => "timezone_minute",
        _ => return None,
    })
}

/// ISO 8601 week number and week-based year of a day.
fn iso_week(days: i64) -> (i64, i64) {
    let (y, _, _) = datetime::civil_from_days(days);
    // ISO weekday, Monday = 1. 2000-01-01 was a Saturday (6).
    let isodow = |d: i64| (d + 5).rem_euclid(7) + 1;
    let week1_start = |year: i64| {
        let jan4 = datetime::days_from_civil(year, 1, 4);
        jan4 - (isodow(jan4) - 1)
    };
    let mut iso_year = y;
    if days < week1_start(y) {
        iso_year = y - 1;
    } else if days >= week1_start(y + 1) {
        iso_year = y + 1;
    }
    ((days - week1_start(iso_year)) / 7 + 1, iso_year)
}

/// EXTRACT (numeric result) and date_part (double precision result).
fn extract(field: &str, v: &Value, numeric_result: bool) -> Result<Value> {
    if let (Value::Date(d), false) = (v, numeric_result) {
        // date_part has no date version: PostgreSQL casts the date to a timestamp.
        return extract(field, &Value::Timestamp(datetime::date_to_timestamp(*d)), false);
    }
    let lower = field.to_ascii_lowercase();
    let (type_name, is_date) = match v {
        Value::Date(_) => ("date", true),
        Value::Time(_) => ("time without time zone", false),
        Value::Timestamp(_) => ("timestamp without time zone", false),
        Value::TimestampTz(_) => ("timestamp with time zone", false),
        Value::Interval(_) => ("interval", false),
        other => {
            let name = if numeric_result { "extract" } else { "date_part" };
            return Err(no_function(name, &[Value::Text(field.to_string()), other.clone()]));
        }
    };
    let unit = canonical_unit(&lower).ok_or_else(|| unit_not_recognized(&lower, type_name))?;
    let n: Numeric = match v {
        Value::Interval(iv) => extract_interval(unit, *iv).ok_or_else(|| unit_not_supported(&lower, type_name))?,
        Value::Date(d) if is_date => {
            if matches!(unit, "microseconds" | "milliseconds" | "second" | "minute" | "hour") {
                return Err(unit_not_supported(&lower, type_name));
            }
            let n = extract_timestamp(unit, datetime::date_to_timestamp(*d), true)
                .ok_or_else(|| unit_not_supported(&lower, type_name))?;
            numeric::normalize(n)
        }
        Value::Time(t) => {
            let sec_micros = (t % datetime::MINUTE_MICROS) as u128;
            match unit {
                "microseconds" => numeric::make(false, sec_micros, 0),
                "milliseconds" => numeric::make(false, sec_micros, 3),
                "second" => numeric::make(false, sec_micros, 6),
                "minute" => numeric::make(false, (t / datetime::MINUTE_MICROS % 60) as u128, 0),
                "hour" => numeric::make(false, (t / datetime::HOUR_MICROS) as u128, 0),
                "epoch" => numeric::make(false, *t as u128, 6),
                _ => return Err(unit_not_supported(&lower, type_name)),
            }
        }
        Value::Timestamp(t) | Value::TimestampTz(t) => {
            if matches!(unit, "timezone" | "timezone_hour" | "timezone_minute") {
                if matches!(v, Value::TimestampTz(_)) {
                    numeric::make(false, 0, 0)
                } else {
                    return Err(unit_not_supported(&lower, type_name));
                }
            } else {
                extract_timestamp(unit, *t, false).ok_or_else(|| unit_not_supported(&lower, type_name))?
            }
        }
        _ => unreachable!(),
    };
    if numeric_result {
        Ok(Value::Numeric(n))
    } else {
        Ok(Value::Float8(numeric::to_f64(n)))
    }
}

fn extract_timestamp(unit: &str, t: i64, is_date: bool) -> Option<Numeric> {
    if t == datetime::TS_INFINITY || t == datetime::TS_NEG_INFINITY {
        return None;
    }
    let days = t.div_euclid(datetime::DAY_MICROS);
    let tod = t.rem_euclid(datetime::DAY_MICROS);
    let (y, m, d) = datetime::civil_from_days(days);
    let int = |v: i64| numeric::make(v < 0, u128::from(v.unsigned_abs()), 0);
    let sec_micros = tod % datetime::MINUTE_MICROS;
    Some(match unit {
        "microseconds" => int(sec_micros),
        "milliseconds" => numeric::make(false, sec_micros as u128, 3),
        "second" => numeric::make(false, sec_micros as u128, 6),
        "minute" => int(tod / datetime::MINUTE_MICROS % 60),
        "hour" => int(tod / datetime::HOUR_MICROS),
        "day" => int(i64::from(d)),
        "month" => int(i64::from(m)),
        "quarter" => int((i64::from(m) - 1) / 3 + 1),
        "year" => int(if y <= 0 { y - 1 } else { y }),
        "decade" => int(y.div_euclid(10)),
        "century" => int(if y > 0 { (y + 99) / 100 } else { -((99 - (y - 1)) / 100) }),
        "millennium" => int(if y > 0 { (y + 999) / 1000 } else { -((999 - (y - 1)) / 1000) }),
        "dow" => int((days + 6).rem_euclid(7)),
        "isodow" => int((days + 5).rem_euclid(7) + 1),
        "doy" => int(days - datetime::days_from_civil(y, 1, 1) + 1),
        "week" => int(iso_week(days).0),
        "isoyear" => int(iso_week(days).1),
        "julian" => int(days + 2_451_545),
        "epoch" => {
            let unix = i128::from(t) + i128::from(datetime::UNIX_EPOCH_DAYS) * i128::from(datetime::DAY_MICROS);
            let n = numeric::make(unix < 0, unix.unsigned_abs(), 6);
            if is_date {
                numeric::normalize(n)
            } else {
                n
            }
        }
        _ => return None,
    })
}

fn extract_interval(unit: &str, iv: Interval) -> Option<Numeric> {
    let int = |v: i64| numeric::make(v < 0, u128::from(v.unsigned_abs()), 0);
    let t = iv.micros;
    let sec_micros = t % datetime::MINUTE_MICROS;
    let signed = |v: i64, scale: u32| numeric::make(v < 0, u128::from(v.unsigned_abs()), scale);
    Some(match unit {
        "microseconds" => int(sec_micros),
        "milliseconds" => signed(sec_micros, 3),
        "second" => signed(sec_micros, 6),
        "minute" => int(t / datetime::MINUTE_MICROS % 60),
        "hour" => int(t / datetime::HOUR_MICROS),
        "day" => int(i64::from(iv.days)),
        "month" => int(i64::from(iv.months % 12)),
        "quarter" => int(i64::from(iv.months % 12) / 3 + 1),
        "year" => int(i64::from(iv.months / 12)),
        "decade" => int(i64::from(iv.months / 120)),
        "century" => int(i64::from(iv.months / 1200)),
        "millennium" => int(i64::from(iv.months / 12_000)),
        "epoch" => {
            let secs = (1461 * i128::from(iv.months / 12) + 120 * i128::from(iv.months % 12) + 4 * i128::from(iv.days))
                * 21_600;
            let v = secs * 1_000_000 + i128::from(t);
            numeric::make(v < 0, v.unsigned_abs(), 6)
        }
        _ => return None,
    })
}

/// `date_trunc(field, timestamp | timestamptz | date | interval)`.
fn date_trunc(field: &str, v: &Value) -> Option<Result<Value>> {
    let lower = field.to_ascii_lowercase();
    let (t, make): (i64, fn(i64) -> Value) = match v {
        Value::Timestamp(t) => (*t, Value::Timestamp),
        Value::TimestampTz(t) => (*t, Value::TimestampTz),
        Value::Date(d) => (datetime::date_to_timestamp(*d), Value::TimestampTz),
        Value::Interval(iv) => return Some(trunc_interval(&lower, *iv)),
        _ => return None,
    };
    let type_name =
        if matches!(v, Value::Timestamp(_)) { "timestamp without time zone" } else { "timestamp with time zone" };
    if t == datetime::TS_INFINITY || t == datetime::TS_NEG_INFINITY {
        return Some(Ok(make(t)));
    }
    let Some(unit) = canonical_unit(&lower) else {
        return Some(Err(unit_not_recognized(&lower, type_name)));
    };
    let days = t.div_euclid(datetime::DAY_MICROS);
    let tod = t.rem_euclid(datetime::DAY_MICROS);
    let (y, m, _) = datetime::civil_from_days(days);
    let at = |d: i64| d * datetime::DAY_MICROS;
    let year_start = |year: i64| at(datetime::days_from_civil(year, 1, 1));
    let result = match unit {
        "microseconds" => t,
        "milliseconds" => t - t.rem_euclid(1000),
        "second" => t - t.rem_euclid(datetime::SECOND_MICROS),
        "minute" => t - t.rem_euclid(datetime::MINUTE_MICROS),
        "hour" => t - t.rem_euclid(datetime::HOUR_MICROS),
        "day" => t - tod,
        "week" => at(days - (days + 5).rem_euclid(7)),
        "month" => at(datetime::days_from_civil(y, m, 1)),
        "quarter" => at(datetime::days_from_civil(y, (m - 1) / 3 * 3 + 1, 1)),
        "year" => year_start(y),
        "decade" => year_start(y.div_euclid(10) * 10),
        "century" => year_start(if y > 0 { (y - 1) / 100 * 100 + 1 } else { -((99 - y) / 100) * 100 + 1 }),
        "millennium" => year_start(if y > 0 { (y - 1) / 1000 * 1000 + 1 } else { -((999 - y) / 1000) * 1000 + 1 }),
        _ => return Some(Err(unit_not_supported(&lower, type_name))),
    };
    Some(Ok(make(result)))
}

fn trunc_interval(field: &str, iv: Interval) -> Result<Value> {
    let Some(unit) = canonical_unit(field) else { return Err(unit_not_recognized(field, "interval")) };
    let t = iv.micros;
    let months = |per: i32| Interval { months: iv.months / per * per, days: 0, micros: 0 };
    Ok(Value::Interval(match unit {
        "microseconds" => iv,
        "milliseconds" => Interval { micros: t - t % 1000, ..iv },
        "second" => Interval { micros: t - t % datetime::SECOND_MICROS, ..iv },
        "minute" => Interval { micros: t - t % datetime::MINUTE_MICROS, ..iv },
        "hour" => Interval { micros: t - t % datetime::HOUR_MICROS, ..iv },
        "day" => Interval { micros: 0, ..iv },
        "month" => months(1),
        "quarter" => months(3),
        "year" => months(12),
        "decade" => months(120),
        "century" => months(1200),
        "millennium" => months(12_000),
        _ => return Err(unit_not_supported(field, "interval")),
    }))
}

fn make_date(y: i64, m: i64, d: i64) -> Result<Value> {
    let bad =
        || Error::new(codes::DATETIME_FIELD_OVERFLOW, format!("date field value out of range: {y}-{m:02}-{d:02}"));
    if y == 0 || !(1..=12).contains(&m) {
        return Err(bad());
    }
    let year = if y < 0 { y + 1 } else { y };
    if d < 1 || d > i64::from(datetime::month_days(year, m as u32)) {
        return Err(bad());
    }
    Ok(Value::Date(datetime::check_date(datetime::days_from_civil(year, m as u32, d as u32))?))
}

/// LIKE (`case_insensitive` false) or ILIKE: `%` any run, `_` one character, `\` escapes the
/// next character (a trailing `\` matches itself).
pub fn like(s: &str, pattern: &str, case_insensitive: bool) -> bool {
    let fold = |t: &str| -> Vec<char> {
        if case_insensitive {
            t.chars().flat_map(char::to_lowercase).collect()
        } else {
            t.chars().collect()
        }
    };
    let text = fold(s);
    // Tokens: Some(c) literal, None for `_`; `%` as a separate marker.
    #[derive(Clone, Copy, PartialEq)]
    enum Tok {
        Lit(char),
        One,
        Any,
    }
    let pchars = fold(pattern);
    let mut toks = Vec::with_capacity(pchars.len());
    let mut i = 0;
    while i < pchars.len() {
        match pchars[i] {
            '\\' if i + 1 < pchars.len() => {
                toks.push(Tok::Lit(pchars[i + 1]));
                i += 2;
                continue;
            }
            '%' => {
                if toks.last() != Some(&Tok::Any) {
                    toks.push(Tok::Any);
                }
            }
            '_' => toks.push(Tok::One),
            c => toks.push(Tok::Lit(c)),
        }
        i += 1;
    }
    // Greedy matching with one backtrack point (the last `%`): linear in practice.
    let (mut ti, mut pi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < text.len() {
        match toks.get(pi) {
            Some(Tok::Any) => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(Tok::One) => {
                ti += 1;
                pi += 1;
            }
            Some(Tok::Lit(c)) if *c == text[ti] => {
                ti += 1;
                pi += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    toks[pi..].iter().all(|t| *t == Tok::Any)
}

/// MD5 of `data` as 32 lower-case hex digits (RFC 1321).
pub fn md5_hex(data: &[u8]) -> String {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14,
        20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6,
        10, 15, 21,
    ];
    let k: Vec<u32> = (0..64).map(|i: i32| (f64::from(i + 1).sin().abs() * 4_294_967_296.0) as u32).collect();
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend(bit_len.to_le_bytes());
    let (mut a0, mut b0, mut c0, mut d0) = (0x6745_2301u32, 0xefcd_ab89u32, 0x98ba_dcfeu32, 0x1032_5476u32);
    for chunk in msg.chunks_exact(64) {
        let m: Vec<u32> = chunk.chunks_exact(4).map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]])).collect();
        let (mut a, mut b, mut c, mut d) = (a0, b0, c0, d0);
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f.rotate_left(S[i]));
        }
        a0 = a0.wrapping_add(a);
        b0 = b0.wrapping_add(b);
        c0 = c0.wrapping_add(c);
        d0 = d0.wrapping_add(d);
    }
    [a0, b0, c0, d0].iter().flat_map(|w| w.to_le_bytes()).map(|b| format!("{b:02x}")).collect()
}
