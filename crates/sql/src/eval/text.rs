//! PostgreSQL's text output for every value, and the float and bytea text codecs.
//!
//! Floats print the way PostgreSQL 12+ prints them with `extra_float_digits = 1` (the
//! default): the shortest decimal that reads back to the same float, in fixed notation when
//! the decimal exponent is in `-4..15` (`-4..6` for `real`), otherwise as `1e+20` or
//! `1.5e-05` (at least two exponent digits, as C's printf).

use super::{datetime, numeric};
use crate::error::{codes, Error, Result};
use crate::types::Value;

/// PostgreSQL's text output of a value; `None` for NULL.
pub fn to_text(v: &Value) -> Option<String> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => (if *b { "t" } else { "f" }).to_string(),
        Value::Int2(i) => i.to_string(),
        Value::Int4(i) => i.to_string(),
        Value::Int8(i) => i.to_string(),
        Value::Float4(f) => format_float(f64::from(*f), format!("{:e}", f.abs()), 6),
        Value::Float8(f) => format_float(*f, format!("{:e}", f.abs()), 15),
        Value::Numeric(n) => numeric::to_string(*n),
        Value::Text(s) | Value::Json(s) => s.clone(),
        Value::Bytea(b) => bytea_to_hex(b),
        Value::Date(d) => datetime::format_date(*d),
        Value::Time(t) => datetime::format_time(*t),
        Value::Timestamp(t) => datetime::format_timestamp(*t, false),
        Value::TimestampTz(t) => datetime::format_timestamp(*t, true),
        Value::Interval(iv) => datetime::format_interval(*iv),
        Value::Reg(_, _, name) => name.clone(),
        Value::Enum(e) => e.label.clone(),
    })
}

/// Formats a float from Rust's shortest `{:e}` form of its magnitude (`"1.5e-5"`), using
/// fixed notation for exponents in `-4..fixed_below`.
fn format_float(f: f64, shortest: String, fixed_below: i32) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let sign = if f.is_sign_negative() { "-" } else { "" };
    let (mantissa, exp) = shortest.split_once('e').unwrap_or((&shortest, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if f == 0.0 {
        return format!("{sign}0");
    }
    if exp < -4 || exp >= fixed_below {
        let (first, rest) = digits.split_at(1);
        let point = if rest.is_empty() { String::new() } else { format!(".{rest}") };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{point}e{esign}{:02}", exp.abs());
    }
    let n = digits.len() as i32;
    if exp < 0 {
        let zeros = "0".repeat((-exp - 1) as usize);
        format!("{sign}0.{zeros}{digits}")
    } else if exp + 1 >= n {
        let zeros = "0".repeat((exp + 1 - n) as usize);
        format!("{sign}{digits}{zeros}")
    } else {
        let (int, frac) = digits.split_at((exp + 1) as usize);
        format!("{sign}{int}.{frac}")
    }
}

/// `\x` followed by two lower-case hex digits a byte.
pub fn bytea_to_hex(b: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2 + 2 * b.len());
    out.push_str("\\x");
    for byte in b {
        out.push(HEX[usize::from(byte >> 4)] as char);
        out.push(HEX[usize::from(byte & 15)] as char);
    }
    out
}

/// Parses bytea input: hex (`\x0a0b`, blanks allowed between digit pairs) or the escape
/// format (`\\` for a backslash, `\nnn` octal, other bytes as they are).
pub fn parse_bytea(s: &str) -> Result<Vec<u8>> {
    if let Some(hex) = s.strip_prefix("\\x").or_else(|| s.strip_prefix("\\X")) {
        let mut out = Vec::with_capacity(hex.len() / 2);
        let mut chars = hex.chars().filter(|c| !c.is_ascii_whitespace());
        while let Some(hi) = chars.next() {
            let h = hex_digit(hi)?;
            let lo = chars.next().ok_or_else(|| {
                Error::new(codes::INVALID_PARAMETER_VALUE, "invalid hexadecimal data: odd number of digits")
            })?;
            out.push(h << 4 | hex_digit(lo)?);
        }
        return Ok(out);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
        } else if bytes.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else if bytes.len() >= i + 4
            && (b'0'..=b'3').contains(&bytes[i + 1])
            && bytes[i + 2..i + 4].iter().all(|b| (b'0'..=b'7').contains(b))
        {
            out.push((bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0'));
            i += 4;
        } else {
            return Err(Error::new(codes::INVALID_TEXT_REPRESENTATION, "invalid input syntax for type bytea"));
        }
    }
    Ok(out)
}

fn hex_digit(c: char) -> Result<u8> {
    c.to_digit(16)
        .map(|d| d as u8)
        .ok_or_else(|| Error::new(codes::INVALID_PARAMETER_VALUE, format!("invalid hexadecimal digit: \"{c}\"")))
}

/// Parses float input as PostgreSQL's `float8in`/`float4in`: blanks around, `NaN`,
/// `Infinity`/`inf` with a sign, case-insensitive. `bits` is 32 or 64.
pub fn parse_float(s: &str, bits: u32) -> Result<f64> {
    let type_name = if bits == 32 { "real" } else { "double precision" };
    let t = s.trim_matches(|c: char| c.is_ascii_whitespace());
    let lower = t.to_ascii_lowercase();
    let special = match lower.as_str() {
        "nan" | "+nan" | "-nan" => Some(f64::NAN),
        "infinity" | "+infinity" | "inf" | "+inf" => Some(f64::INFINITY),
        "-infinity" | "-inf" => Some(f64::NEG_INFINITY),
        _ => None,
    };
    if let Some(f) = special {
        return Ok(f);
    }
    let syntax_ok = !lower.is_empty()
        && lower.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'+' | b'-'))
        && lower.bytes().any(|b| b.is_ascii_digit());
    let bad = || {
        Error::new(codes::INVALID_TEXT_REPRESENTATION, format!("invalid input syntax for type {type_name}: \"{s}\""))
    };
    if !syntax_ok {
        return Err(bad());
    }
    let out_of_range =
        || Error::new(codes::NUMERIC_VALUE_OUT_OF_RANGE, format!("\"{t}\" is out of range for type {type_name}"));
    let mantissa_nonzero = lower.split('e').next().is_some_and(|m| m.bytes().any(|b| (b'1'..=b'9').contains(&b)));
    if bits == 32 {
        let f: f32 = lower.parse().map_err(|_| bad())?;
        if f.is_infinite() || (f == 0.0 && mantissa_nonzero) {
            return Err(out_of_range());
        }
        Ok(f64::from(f))
    } else {
        let f: f64 = lower.parse().map_err(|_| bad())?;
        if f.is_infinite() || (f == 0.0 && mantissa_nonzero) {
            return Err(out_of_range());
        }
        Ok(f)
    }
}
