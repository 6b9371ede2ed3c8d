//! Values on the wire: PostgreSQL's text and binary formats for every type Bulwark has, for
//! result columns (server to client) and for bound parameters (client to server).
//!
//! Text output is `sql::eval::to_text`, text input `sql::eval::parse_text`, so the wire and
//! SQL agree by construction. Binary formats follow PostgreSQL's `*send`/`*recv` functions,
//! all big-endian:
//!
//! ```text
//!   bool        1 byte, 0 or 1
//!   int2/4/8    two's complement, 2/4/8 bytes
//!   float4/8    IEEE 754, 4/8 bytes
//!   text, varchar, char, name, unknown   the UTF-8 bytes
//!   bytea       the bytes
//!   date        i32 days since 2000-01-01
//!   timestamp(tz)  i64 microseconds since 2000-01-01 00:00:00 (UTC)
//!   interval    i64 microseconds, i32 days, i32 months
//!   numeric     i16 ndigits, i16 weight, u16 sign, u16 dscale, ndigits x i16 base-10000 digits
//! ```

use bytes::{BufMut, BytesMut};
use sql::types::{Interval, Numeric};
use sql::{DataType, Error, Value};

/// Wire format code 0.
pub const FORMAT_TEXT: i16 = 0;
/// Wire format code 1.
pub const FORMAT_BINARY: i16 = 1;

/// OID of `unknown`, the type of an untyped literal.
pub const OID_UNKNOWN: u32 = 705;
/// OID of `text`.
pub const OID_TEXT: u32 = 25;
/// OID of `name`.
pub const OID_NAME: u32 = 19;

/// NUMERIC's sign word for positive values.
const NUMERIC_POS: u16 = 0x0000;
/// NUMERIC's sign word for negative values.
const NUMERIC_NEG: u16 = 0x4000;
/// Decimal digits per NUMERIC base-10000 digit.
const NUMERIC_DEC_DIGITS: usize = 4;

/// 22P03 invalid_binary_representation.
const INVALID_BINARY_REPRESENTATION: &str = "22P03";
/// 22021 character_not_in_repertoire.
const CHARACTER_NOT_IN_REPERTOIRE: &str = "22021";
/// The version byte that starts jsonb's binary form.
const JSONB_VERSION: u8 = 1;
/// 0A000 feature_not_supported.
const FEATURE_NOT_SUPPORTED: &str = "0A000";
/// 08P01 protocol_violation.
pub const PROTOCOL_VIOLATION: &str = "08P01";

/// The Bulwark type for a PostgreSQL type OID, for types Bulwark has (None otherwise, and for
/// text-like types without a length limit that take any string: text, name, unknown).
pub fn data_type_for_oid(oid: u32) -> Option<DataType> {
    match oid {
        OID_TEXT | OID_NAME | OID_UNKNOWN => None,
        _ => DataType::from_oid(oid),
    }
}

/// `pg_type.typlen` of a type: its fixed width in bytes, or -1 for variable-width types.
pub fn type_size(t: &DataType) -> i16 {
    match t {
        DataType::Bool => 1,
        DataType::Int2 => 2,
        DataType::Int4 | DataType::Float4 | DataType::Date | DataType::Reg(_) | DataType::Enum(_) => 4,
        DataType::Int8
        | DataType::Float8
        | DataType::Time
        | DataType::Timestamp
        | DataType::TimestampTz
        | DataType::TimestampP { .. } => 8,
        DataType::Interval | DataType::Uuid => 16,
        DataType::Numeric { .. }
        | DataType::Text
        | DataType::Varchar(_)
        | DataType::Char(_)
        | DataType::Bytea
        | DataType::Json
        | DataType::Jsonb
        | DataType::Array(_) => -1,
    }
}

/// `pg_attribute.atttypmod` of a type: -1 for none, else PostgreSQL's encoding (length + 4
/// for varchar/char; `(precision << 16 | scale) + 4` for numeric).
pub fn type_modifier(t: &DataType) -> i32 {
    const VARHDRSZ: i32 = 4;
    match t {
        DataType::Varchar(Some(n)) | DataType::Char(Some(n)) => i32::try_from(*n).map_or(-1, |n| n + VARHDRSZ),
        DataType::Numeric { precision: Some(p), scale } => {
            let (p, s) = (*p as i32, scale.unwrap_or(0) as i32);
            ((p << 16) | s) + VARHDRSZ
        }
        DataType::TimestampP { precision, .. } => i32::try_from(*precision).unwrap_or(-1),
        _ => -1,
    }
}

/// Whether `v` already has the representation of type `t` (so no cast is needed).
fn has_type(v: &Value, t: &DataType) -> bool {
    matches!(
        (v, t),
        (Value::Null, _)
            | (Value::Bool(_), DataType::Bool)
            | (Value::Int2(_), DataType::Int2)
            | (Value::Int4(_), DataType::Int4)
            | (Value::Int8(_), DataType::Int8)
            | (Value::Float4(_), DataType::Float4)
            | (Value::Float8(_), DataType::Float8)
            | (Value::Numeric(_), DataType::Numeric { precision: None, scale: None })
            | (Value::Text(_), DataType::Text | DataType::Varchar(None) | DataType::Array(_))
            | (Value::Bytea(_), DataType::Bytea)
            | (Value::Date(_), DataType::Date)
            | (Value::Time(_), DataType::Time)
            | (Value::Timestamp(_), DataType::Timestamp)
            | (Value::TimestampTz(_), DataType::TimestampTz)
            | (Value::Interval(_), DataType::Interval)
            | (Value::Json(_), DataType::Json | DataType::Jsonb)
            | (Value::Enum(_), DataType::Enum(_))
    ) || matches!((v, t), (Value::Reg(k, ..), DataType::Reg(want)) if k == want)
}

/// Converts `v` to the column's declared type, so that a DataRow always matches the
/// RowDescription the client was given.
pub fn conform(v: Value, t: &DataType) -> Result<Value, Error> {
    if has_type(&v, t) {
        return Ok(v);
    }
    // Values of a typed column already carry its typmod; only the representation may differ.
    match (&v, t) {
        (Value::Numeric(_), DataType::Numeric { .. }) | (Value::Text(_), DataType::Varchar(_) | DataType::Char(_)) => {
            Ok(v)
        }
        _ => sql::eval::cast(v, t, true),
    }
}

/// Appends one DataRow field of a column of type `t`: as [`put_field`], but a uuid's binary
/// form is its 16 bytes, not its text.
pub fn put_typed_field(buf: &mut BytesMut, v: &Value, t: &DataType, format: i16) {
    match (v, t) {
        (Value::Text(s), DataType::Array(elem)) if format == FORMAT_BINARY => match array_binary(s, *elem) {
            Some(bytes) => {
                buf.put_i32(i32::try_from(bytes.len()).expect("a field fits in a wire message"));
                buf.put_slice(&bytes);
            }
            None => put_field(buf, v, format),
        },
        (Value::Text(s), DataType::Uuid) if format == FORMAT_BINARY => match uuid_bytes(s) {
            Some(bytes) => {
                buf.put_i32(16);
                buf.put_slice(&bytes);
            }
            None => put_field(buf, v, format),
        },
        // json's binary form is its text; jsonb's (put_binary) a version byte, then the text.
        (Value::Json(s), DataType::Json) if format == FORMAT_BINARY => {
            buf.put_i32(i32::try_from(s.len()).expect("a field fits in a wire message"));
            buf.put_slice(s.as_bytes());
        }
        _ => put_field(buf, v, format),
    }
}

/// PostgreSQL's binary form of a one-dimensional array of element type `elem` given in its
/// text form: ndim, has-nulls flag, element type, then the dimension's length and lower
/// bound, then each element's length (-1 for NULL) and its binary form. None if an element
/// does not read as its type (the field then goes as text).
fn array_binary(s: &str, elem: u32) -> Option<Vec<u8>> {
    let a = sql::eval::array::parse(s).ok()?;
    let elem_type = match elem {
        sql::types::OID_OID => Some(DataType::Int8),
        _ => data_type_for_oid(elem),
    };
    let elem = if elem_type.is_some() { elem } else { OID_TEXT };
    let mut out = BytesMut::new();
    if a.items.is_empty() {
        out.put_i32(0);
        out.put_i32(0);
        out.put_u32(elem);
        return Some(out.to_vec());
    }
    out.put_i32(1);
    out.put_i32(i32::from(a.items.iter().any(Option::is_none)));
    out.put_u32(elem);
    out.put_i32(i32::try_from(a.items.len()).ok()?);
    out.put_i32(i32::try_from(a.lower).ok()?);
    for item in &a.items {
        let Some(text) = item else {
            out.put_i32(-1);
            continue;
        };
        let value = match &elem_type {
            Some(t) => sql::eval::parse_text(text, t).ok()?,
            None => Value::Text(text.clone()),
        };
        let mut field = BytesMut::new();
        match (elem, &value) {
            (sql::types::OID_OID, Value::Int8(oid)) => {
                field.put_i32(4);
                field.put_u32(u32::try_from(*oid).ok()?);
            }
            _ => put_typed_field(&mut field, &value, elem_type.as_ref().unwrap_or(&DataType::Text), FORMAT_BINARY),
        }
        out.put_slice(&field);
    }
    Some(out.to_vec())
}

/// An array parameter in binary form (one dimension, or none for an empty array), as its
/// text form; None if it is malformed or its elements are not of type `elem`. Elements are
/// decoded as parameters of the element type are.
fn decode_binary_array(index: usize, elem: u32, b: &[u8]) -> Option<Result<Value, Error>> {
    let mut r = b;
    let int = |r: &mut &[u8]| -> Option<i32> {
        let (head, rest) = r.split_first_chunk::<4>()?;
        *r = rest;
        Some(i32::from_be_bytes(*head))
    };
    let dims = int(&mut r)?;
    let _has_nulls = int(&mut r)?;
    let sent_elem = int(&mut r)? as u32;
    if dims == 0 {
        return r.is_empty().then(|| Ok(Value::Text("{}".into())));
    }
    if dims != 1 {
        return Some(Err(Error::new(
            FEATURE_NOT_SUPPORTED,
            format!("parameter {}: multi-dimensional arrays are not supported", index + 1),
        )));
    }
    let len = usize::try_from(int(&mut r)?).ok()?;
    let _lower = int(&mut r)?;
    if len > sql::eval::array::ARRAY_ELEMENTS_MAX || (sent_elem != elem && sent_elem != 0) {
        return None;
    }
    let elem_type = DataType::from_oid(elem);
    let mut items = Vec::with_capacity(len.min(r.len() / 4));
    for _ in 0..len {
        let n = int(&mut r)?;
        if n < 0 {
            items.push(None);
            continue;
        }
        let n = usize::try_from(n).ok()?;
        if r.len() < n {
            return None;
        }
        let (field, rest) = r.split_at(n);
        r = rest;
        let value = match (elem, field.try_into()) {
            (sql::types::OID_OID, Ok(oid)) => Value::Int8(i64::from(u32::from_be_bytes(oid))),
            _ => match decode_binary(index, elem, elem_type.as_ref(), field) {
                Ok(v) => v,
                Err(e) => return Some(Err(e)),
            },
        };
        items.push(sql::eval::to_text(&value));
    }
    r.is_empty().then(|| Ok(Value::Text(sql::eval::array::format(&items))))
}

/// The 16 bytes of a uuid in canonical text form.
fn uuid_bytes(s: &str) -> Option<[u8; 16]> {
    let hex: Vec<u8> = s.bytes().filter(|b| *b != b'-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

/// Appends one DataRow field: its length (-1 for NULL) then its bytes in `format`.
pub fn put_field(buf: &mut BytesMut, v: &Value, format: i16) {
    if v.is_null() {
        buf.put_i32(-1);
        return;
    }
    let len_at = buf.len();
    buf.put_i32(0);
    if format == FORMAT_BINARY {
        put_binary(buf, v);
    } else {
        buf.put_slice(sql::eval::to_text(v).unwrap_or_default().as_bytes());
    }
    let len = i32::try_from(buf.len() - len_at - 4).expect("a field fits in a wire message");
    buf[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
}

/// PostgreSQL's binary send format of a non-NULL value.
fn put_binary(buf: &mut BytesMut, v: &Value) {
    match v {
        Value::Null => unreachable!("NULL has no bytes"),
        Value::Bool(b) => buf.put_u8(u8::from(*b)),
        Value::Int2(i) => buf.put_i16(*i),
        Value::Int4(i) => buf.put_i32(*i),
        Value::Int8(i) => buf.put_i64(*i),
        Value::Float4(f) => buf.put_f32(*f),
        Value::Float8(f) => buf.put_f64(*f),
        Value::Numeric(n) => put_numeric(buf, *n),
        Value::Text(s) => buf.put_slice(s.as_bytes()),
        Value::Bytea(b) => buf.put_slice(b),
        Value::Date(d) => buf.put_i32(*d),
        Value::Time(t) | Value::Timestamp(t) | Value::TimestampTz(t) => buf.put_i64(*t),
        Value::Interval(iv) => {
            buf.put_i64(iv.micros);
            buf.put_i32(iv.days);
            buf.put_i32(iv.months);
        }
        // reg* types travel as their oid (PostgreSQL's regclasssend is oidsend).
        Value::Reg(_, oid, _) => buf.put_u32(*oid),
        // jsonb's binary form: version 1, then the text.
        Value::Json(s) => {
            buf.put_u8(JSONB_VERSION);
            buf.put_slice(s.as_bytes());
        }
        // An enum's binary form is its label (enum_send).
        Value::Enum(e) => buf.put_slice(e.label.as_bytes()),
    }
}

/// NUMERIC's binary form: base-10000 digits around the decimal point, leading and trailing
/// zero digits dropped, `dscale` = the value's scale.
fn put_numeric(buf: &mut BytesMut, n: Numeric) {
    let decimal = n.mantissa.unsigned_abs().to_string();
    let scale = n.scale as usize;
    // Split into integer and fraction digits, padding the integer part to whole groups on the
    // left and the fraction to whole groups on the right.
    let (int_part, frac_part) =
        if decimal.len() > scale { decimal.split_at(decimal.len() - scale) } else { ("", decimal.as_str()) };
    let frac_owned = format!("{}{frac_part}", "0".repeat(scale - frac_part.len()));
    let int_pad = (NUMERIC_DEC_DIGITS - int_part.len() % NUMERIC_DEC_DIGITS) % NUMERIC_DEC_DIGITS;
    let int_owned = format!("{}{int_part}", "0".repeat(int_pad));
    let frac_pad = (NUMERIC_DEC_DIGITS - frac_owned.len() % NUMERIC_DEC_DIGITS) % NUMERIC_DEC_DIGITS;
    let frac_owned = format!("{frac_owned}{}", "0".repeat(frac_pad));
    let group = |s: &str| -> Vec<i16> {
        s.as_bytes().chunks(NUMERIC_DEC_DIGITS).map(|c| std::str::from_utf8(c).unwrap().parse().unwrap()).collect()
    };
    let int_groups = group(&int_owned);
    let mut digits: Vec<i16> = int_groups.iter().copied().chain(group(&frac_owned)).collect();
    let mut weight = int_groups.len() as i32 - 1;
    let leading = digits.iter().take_while(|d| **d == 0).count();
    digits.drain(..leading);
    weight -= leading as i32;
    while digits.last() == Some(&0) {
        digits.pop();
    }
    if digits.is_empty() {
        weight = 0;
    }
    buf.put_i16(digits.len() as i16);
    buf.put_i16(weight as i16);
    buf.put_u16(if n.mantissa < 0 { NUMERIC_NEG } else { NUMERIC_POS });
    buf.put_u16(n.scale as u16);
    for d in digits {
        buf.put_i16(d);
    }
}

/// The first oid of an object made by a user (PostgreSQL's FirstNormalObjectId).
const FIRST_USER_OID: u32 = 16384;

/// Decodes bound parameter `index` (0-based) of declared type `oid` (0 = unspecified) from
/// the client's bytes in `format`.
pub fn decode_param(index: usize, oid: u32, format: i16, bytes: Option<&[u8]>) -> Result<Value, Error> {
    let Some(bytes) = bytes else { return Ok(Value::Null) };
    let t = data_type_for_oid(oid);
    if format == FORMAT_BINARY {
        return decode_binary(index, oid, t.as_ref(), bytes);
    }
    let s = std::str::from_utf8(bytes)
        .map_err(|_| Error::new(CHARACTER_NOT_IN_REPERTOIRE, "invalid byte sequence for encoding \"UTF8\""))?;
    match t {
        // Untyped and text parameters stay text, which the SQL layer types from context as it
        // does a string literal.
        None | Some(DataType::Varchar(_) | DataType::Char(_)) => Ok(Value::Text(s.to_string())),
        Some(t) => sql::eval::parse_text(s, &t),
    }
}

fn decode_binary(index: usize, oid: u32, t: Option<&DataType>, b: &[u8]) -> Result<Value, Error> {
    let bad = || {
        Error::new(
            INVALID_BINARY_REPRESENTATION,
            format!("incorrect binary data format in bind parameter {}", index + 1),
        )
    };
    let fixed = |n: usize| -> Result<&[u8], Error> {
        if b.len() == n {
            Ok(b)
        } else {
            Err(bad())
        }
    };
    let Some(t) = t else {
        return match oid {
            // An oid from the catalog is an enum type's, whose binary form is the label.
            0 | OID_TEXT | OID_NAME | OID_UNKNOWN | FIRST_USER_OID.. => std::str::from_utf8(b)
                .map(|s| Value::Text(s.into()))
                .map_err(|_| Error::new(CHARACTER_NOT_IN_REPERTOIRE, "invalid byte sequence for encoding \"UTF8\"")),
            _ => Err(Error::new(
                FEATURE_NOT_SUPPORTED,
                format!("binary format for parameter {} of type oid {oid} is not supported", index + 1),
            )),
        };
    };
    Ok(match t {
        DataType::Bool => match fixed(1)?[0] {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            _ => return Err(bad()),
        },
        DataType::Int2 => Value::Int2(i16::from_be_bytes(fixed(2)?.try_into().unwrap())),
        DataType::Int4 => Value::Int4(i32::from_be_bytes(fixed(4)?.try_into().unwrap())),
        DataType::Int8 => Value::Int8(i64::from_be_bytes(fixed(8)?.try_into().unwrap())),
        DataType::Float4 => Value::Float4(f32::from_be_bytes(fixed(4)?.try_into().unwrap())),
        DataType::Float8 => Value::Float8(f64::from_be_bytes(fixed(8)?.try_into().unwrap())),
        DataType::Text | DataType::Varchar(_) | DataType::Char(_) => Value::Text(
            std::str::from_utf8(b)
                .map_err(|_| Error::new(CHARACTER_NOT_IN_REPERTOIRE, "invalid byte sequence for encoding \"UTF8\""))?
                .to_string(),
        ),
        DataType::Bytea => Value::Bytea(b.to_vec()),
        DataType::Uuid => Value::Text(sql::eval::format_uuid(fixed(16)?)),
        DataType::Json | DataType::Jsonb => {
            let text = match (t, b.split_first()) {
                (DataType::Jsonb, Some((&JSONB_VERSION, rest))) => rest,
                (DataType::Jsonb, _) => return Err(bad()),
                _ => b,
            };
            let s = std::str::from_utf8(text)
                .map_err(|_| Error::new(CHARACTER_NOT_IN_REPERTOIRE, "invalid byte sequence for encoding \"UTF8\""))?;
            sql::eval::parse_text(s, t)?
        }
        DataType::Array(elem) => return decode_binary_array(index, *elem, b).ok_or_else(bad)?,
        DataType::Date => Value::Date(i32::from_be_bytes(fixed(4)?.try_into().unwrap())),
        DataType::Timestamp => Value::Timestamp(i64::from_be_bytes(fixed(8)?.try_into().unwrap())),
        DataType::Time => {
            // Microseconds since midnight, up to 24:00:00.
            let t = i64::from_be_bytes(fixed(8)?.try_into().unwrap());
            if !(0..=86_400_000_000).contains(&t) {
                return Err(bad());
            }
            Value::Time(t)
        }
        DataType::TimestampP { .. } => {
            let v = decode_binary(index, oid, Some(&t.base()), b)?;
            sql::eval::cast(v, t, false)?
        }
        DataType::TimestampTz => Value::TimestampTz(i64::from_be_bytes(fixed(8)?.try_into().unwrap())),
        DataType::Interval => {
            let b = fixed(16)?;
            Value::Interval(Interval {
                micros: i64::from_be_bytes(b[0..8].try_into().unwrap()),
                days: i32::from_be_bytes(b[8..12].try_into().unwrap()),
                months: i32::from_be_bytes(b[12..16].try_into().unwrap()),
            })
        }
        DataType::Numeric { .. } => decode_numeric(b).ok_or_else(bad)??,
        // Never chosen by `data_type_for_oid` (enum and reg* parameters arrive as text),
        // kept total.
        DataType::Enum(_) => return Err(bad()),
        DataType::Reg(kind) => {
            let oid = u32::from_be_bytes(fixed(4)?.try_into().unwrap());
            Value::Reg(*kind, oid, oid.to_string())
        }
    })
}

/// NUMERIC's binary form back to a value, through its decimal text (None if malformed).
fn decode_numeric(b: &[u8]) -> Option<Result<Value, Error>> {
    const NUMERIC_NAN: u16 = 0xC000;
    let word = |i: usize| b.get(i * 2..i * 2 + 2).map(|w| u16::from_be_bytes([w[0], w[1]]));
    let ndigits = word(0)? as usize;
    let weight = word(1)? as i16 as i64;
    let sign = word(2)?;
    let dscale = word(3)? as usize;
    if b.len() != 8 + ndigits * 2 {
        return None;
    }
    if sign == NUMERIC_NAN {
        return Some(Err(Error::unsupported("numeric NaN")));
    }
    if sign != NUMERIC_POS && sign != NUMERIC_NEG {
        return None;
    }
    let digits: Vec<u16> = (0..ndigits).map(|i| word(4 + i)).collect::<Option<_>>()?;
    if digits.iter().any(|d| *d >= 10000) {
        return None;
    }
    // Integer groups are those with exponent >= 0: digit i has exponent weight - i.
    let mut int_part = String::new();
    let mut frac_part = String::new();
    for e in (0..=weight.max(-1)).rev() {
        let i = weight - e;
        let d = usize::try_from(i).ok().and_then(|i| digits.get(i)).copied().unwrap_or(0);
        int_part.push_str(&format!("{d:04}"));
    }
    let mut e = -1;
    while frac_part.len() < dscale {
        let i = weight - e;
        let d = usize::try_from(i).ok().and_then(|i| digits.get(i)).copied().unwrap_or(0);
        frac_part.push_str(&format!("{d:04}"));
        e -= 1;
    }
    frac_part.truncate(dscale);
    let int_part = int_part.trim_start_matches('0');
    let int_part = if int_part.is_empty() { "0" } else { int_part };
    let minus = if sign == NUMERIC_NEG { "-" } else { "" };
    let text = if dscale > 0 { format!("{minus}{int_part}.{frac_part}") } else { format!("{minus}{int_part}") };
    Some(sql::eval::parse_text(&text, &DataType::Numeric { precision: None, scale: None }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(mantissa: i128, scale: u32) -> Numeric {
        Numeric { mantissa, scale }
    }

    fn numeric_roundtrip(n: Numeric) -> Value {
        let mut buf = BytesMut::new();
        put_numeric(&mut buf, n);
        decode_numeric(&buf).unwrap().unwrap()
    }

    #[test]
    fn numeric_binary_matches_postgres() {
        // 12345.678 = digits [1, 2345, 6780], weight 1, dscale 3 (PostgreSQL's numeric_send).
        let mut buf = BytesMut::new();
        put_numeric(&mut buf, numeric(12_345_678, 3));
        assert_eq!(&buf[..], &[0, 3, 0, 1, 0, 0, 0, 3, 0, 1, 0x09, 0x29, 0x1a, 0x7c]);
        // 0.0001 = digits [1], weight -1.
        let mut buf = BytesMut::new();
        put_numeric(&mut buf, numeric(1, 4));
        assert_eq!(&buf[..], &[0, 1, 0xff, 0xff, 0, 0, 0, 4, 0, 1]);
        // 0 with scale 2: no digits.
        let mut buf = BytesMut::new();
        put_numeric(&mut buf, numeric(0, 2));
        assert_eq!(&buf[..], &[0, 0, 0, 0, 0, 0, 0, 2]);
    }

    #[test]
    fn numeric_binary_roundtrips() {
        for (m, s) in
            [(12_345_678, 3), (-5, 0), (1, 4), (0, 2), (10_000, 0), (-123_456_789_012, 7), (1, 9), (50_000, 1)]
        {
            let n = numeric(m, s);
            let back = numeric_roundtrip(n);
            assert_eq!(sql::eval::to_text(&back), sql::eval::to_text(&Value::Numeric(n)), "{m} scale {s}");
        }
    }

    #[test]
    fn params_decode_from_text_and_binary() {
        assert_eq!(decode_param(0, 23, FORMAT_TEXT, Some(b"42")).unwrap(), Value::Int4(42));
        assert_eq!(decode_param(0, 23, FORMAT_BINARY, Some(&42i32.to_be_bytes())).unwrap(), Value::Int4(42));
        assert_eq!(decode_param(0, 0, FORMAT_TEXT, Some(b"x")).unwrap(), Value::Text("x".into()));
        assert_eq!(decode_param(0, 25, FORMAT_BINARY, Some(b"x")).unwrap(), Value::Text("x".into()));
        assert_eq!(decode_param(0, 16, FORMAT_BINARY, Some(&[1])).unwrap(), Value::Bool(true));
        assert_eq!(decode_param(0, 701, FORMAT_BINARY, Some(&1.5f64.to_be_bytes())).unwrap(), Value::Float8(1.5));
        assert_eq!(decode_param(0, 23, FORMAT_TEXT, None).unwrap(), Value::Null);
        assert_eq!(decode_param(1, 23, FORMAT_BINARY, Some(&[0, 1])).unwrap_err().code, "22P03");
        assert_eq!(decode_param(0, 23, FORMAT_TEXT, Some(b"abc")).unwrap_err().code, "22P02");
    }

    #[test]
    fn fields_carry_their_length() {
        let mut buf = BytesMut::new();
        put_field(&mut buf, &Value::Int4(7), FORMAT_BINARY);
        put_field(&mut buf, &Value::Null, FORMAT_TEXT);
        put_field(&mut buf, &Value::Bool(true), FORMAT_TEXT);
        assert_eq!(&buf[..], &[0, 0, 0, 4, 0, 0, 0, 7, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, b't']);
    }
}
