//! Values as bytes: order-preserving key parts for primary keys and indexes, and the row
//! format for table values.
//!
//! # Key parts
//!
//! [`key_part`] maps a value to a `storage::keycode::KeyPart`, whose encoding sorts like the
//! value within one column type: integers, dates and timestamps as `Int`, floats as `Float`,
//! text as `Str`, bytea as `Bytes`. NUMERIC and INTERVAL have no native part; they become
//! `Bytes` of an order-preserving encoding of their own:
//!
//! ```text
//!   NUMERIC (trailing fraction zeros stripped first, so 1.5 and 1.50 are one key):
//!     zero       80
//!     positive   C0  E (8 bytes: i64 big-endian, sign bit flipped)  digit pairs
//!     negative   40  !E (the same 8 bytes inverted)  inverted digit pairs  FF
//!   E is the decimal exponent of the leading digit (123.4 -> 2, 0.05 -> -2).
//!   Digits go in pairs, one byte each: pair value + 1 (1..=100); an odd count pads the
//!   last pair with 0. Negatives invert every pair byte (255 - b) and end with FF,
//!   which sorts above any inverted pair, so -1.5 (shorter) sorts after -1.51.
//!
//!   INTERVAL: 16 bytes, the i128 comparison value (months as 30 days) big-endian with
//!   the sign bit flipped; '1 mon' and '30 days' are one key, as PostgreSQL's equality.
//! ```
//!
//! Within a `Bytes` part a shorter string sorts before its extensions (the part terminator
//! is smallest), which the positive digit encoding relies on.
//!
//! # Rows
//!
//! ```text
//!   row    := version (u8 = 1) count (varint) value*
//!   value  := tag (u8) body
//!   tag    body
//!   0      NULL            (none)
//!   1 / 2  false / true    (none)
//!   3      SMALLINT        2 bytes little-endian
//!   4      INTEGER         4 bytes little-endian
//!   5      BIGINT          8 bytes little-endian
//!   6      REAL            4 bytes little-endian IEEE 754 bits
//!   7      DOUBLE          8 bytes little-endian IEEE 754 bits
//!   8      NUMERIC         scale (varint) mantissa (zigzag varint of the i128)
//!   9      TEXT            length (varint) UTF-8 bytes
//!   10     BYTEA           length (varint) bytes
//!   11     DATE            4 bytes little-endian
//!   12     TIMESTAMP       8 bytes little-endian
//!   13     TIMESTAMPTZ     8 bytes little-endian
//!   14     INTERVAL        months (4) days (4) micros (8), little-endian
//!   15     JSON / JSONB    length (varint) UTF-8 bytes (jsonb in its normal form)
//!   16     TIME            8 bytes little-endian
//!   17     ENUM            type oid (varint) sort position (8 bytes little-endian IEEE 754
//!                          bits) label length (varint) label UTF-8 bytes
//!   varint := LEB128, 7 bits a byte, least significant group first, at most 19 bytes
//! ```
//!
//! The decoder rejects an unknown version or tag, a truncated value, an over-long varint,
//! invalid UTF-8, a NUMERIC mantissa of 39+ digits and trailing bytes, with XX001.

use super::{datetime, numeric};
use crate::error::{Error, Result};
use crate::types::{Interval, Numeric, Value};
use storage::keycode::KeyPart;

/// The row format version written in the first byte.
pub const ROW_FORMAT_VERSION: u8 = 1;
/// SQLSTATE data_corrupted.
const DATA_CORRUPTED: &str = "XX001";
/// The longest LEB128 varint of an u128 (19 groups of 7 bits).
const VARINT_BYTES_MAX: usize = 19;

/// Maps a value to an order-preserving key part (see the module doc).
pub fn key_part(v: &Value) -> Result<KeyPart> {
    Ok(match v {
        Value::Null => KeyPart::Null,
        Value::Bool(b) => KeyPart::Bool(*b),
        Value::Int2(i) => KeyPart::Int(i64::from(*i)),
        Value::Int4(i) => KeyPart::Int(i64::from(*i)),
        Value::Int8(i) => KeyPart::Int(*i),
        Value::Float4(f) => KeyPart::Float(f64::from(*f)),
        Value::Float8(f) => KeyPart::Float(*f),
        Value::Numeric(n) => KeyPart::Bytes(numeric_key(*n)),
        Value::Text(s) | Value::Json(s) => KeyPart::Str(s.clone()),
        Value::Bytea(b) => KeyPart::Bytes(b.clone()),
        Value::Date(d) => KeyPart::Int(i64::from(*d)),
        Value::Time(t) | Value::Timestamp(t) | Value::TimestampTz(t) => KeyPart::Int(*t),
        Value::Interval(iv) => {
            let v = datetime::interval_cmp_value(*iv);
            KeyPart::Bytes(((v as u128) ^ (1u128 << 127)).to_be_bytes().to_vec())
        }
        Value::Reg(_, oid, _) => KeyPart::Int(i64::from(*oid)),
        Value::Enum(e) => KeyPart::Bytes(enum_key(e.order, &e.label)),
    })
}

/// The order-preserving byte form of an enum value: its sort position (the bits of the
/// double, sign flipped so they sort as the number) then the label, which keeps values of
/// two labels apart should their positions ever be equal.
pub fn enum_key(order: f64, label: &str) -> Vec<u8> {
    let bits = order.to_bits();
    let sortable = if bits >> 63 == 1 { !bits } else { bits | (1 << 63) };
    let mut out = sortable.to_be_bytes().to_vec();
    out.extend_from_slice(label.as_bytes());
    out
}

/// The order-preserving byte form of a NUMERIC (see the module doc).
pub fn numeric_key(n: Numeric) -> Vec<u8> {
    let n = numeric::normalize(n);
    if n.mantissa == 0 {
        return vec![0x80];
    }
    let negative = n.mantissa < 0;
    let digits = n.mantissa.unsigned_abs().to_string();
    let exponent = digits.len() as i64 - 1 - i64::from(n.scale);
    let digits = digits.trim_end_matches('0');
    let mut out = Vec::with_capacity(10 + digits.len() / 2 + 1);
    out.push(if negative { 0x40 } else { 0xC0 });
    let e = (exponent as u64 ^ (1 << 63)).to_be_bytes();
    let b = digits.as_bytes();
    let pairs = b.chunks(2).map(|p| {
        let hi = p[0] - b'0';
        let lo = p.get(1).map_or(0, |d| d - b'0');
        hi * 10 + lo + 1
    });
    if negative {
        out.extend(e.iter().map(|x| !x));
        out.extend(pairs.map(|p| 255 - p));
        out.push(0xFF);
    } else {
        out.extend(e);
        out.extend(pairs);
    }
    out
}

fn put_varint(out: &mut Vec<u8>, mut v: u128) {
    loop {
        let byte = (v & 0x7F) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Encodes a row of values (see the module doc for the format).
pub fn encode_row(values: &[Value]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + values.len() * 9);
    out.push(ROW_FORMAT_VERSION);
    put_varint(&mut out, values.len() as u128);
    for v in values {
        match v {
            Value::Null => out.push(0),
            Value::Bool(b) => out.push(if *b { 2 } else { 1 }),
            Value::Int2(i) => {
                out.push(3);
                out.extend(i.to_le_bytes());
            }
            Value::Int4(i) => {
                out.push(4);
                out.extend(i.to_le_bytes());
            }
            Value::Int8(i) => {
                out.push(5);
                out.extend(i.to_le_bytes());
            }
            Value::Float4(f) => {
                out.push(6);
                out.extend(f.to_bits().to_le_bytes());
            }
            Value::Float8(f) => {
                out.push(7);
                out.extend(f.to_bits().to_le_bytes());
            }
            Value::Numeric(n) => {
                out.push(8);
                put_varint(&mut out, u128::from(n.scale));
                let zigzag = ((n.mantissa as u128) << 1) ^ ((n.mantissa >> 127) as u128);
                put_varint(&mut out, zigzag);
            }
            Value::Text(s) => {
                out.push(9);
                put_varint(&mut out, s.len() as u128);
                out.extend(s.as_bytes());
            }
            Value::Bytea(b) => {
                out.push(10);
                put_varint(&mut out, b.len() as u128);
                out.extend(b);
            }
            Value::Date(d) => {
                out.push(11);
                out.extend(d.to_le_bytes());
            }
            Value::Timestamp(t) => {
                out.push(12);
                out.extend(t.to_le_bytes());
            }
            Value::TimestampTz(t) => {
                out.push(13);
                out.extend(t.to_le_bytes());
            }
            Value::Interval(iv) => {
                out.push(14);
                out.extend(iv.months.to_le_bytes());
                out.extend(iv.days.to_le_bytes());
                out.extend(iv.micros.to_le_bytes());
            }
            Value::Json(s) => {
                out.push(15);
                put_varint(&mut out, s.len() as u128);
                out.extend(s.as_bytes());
            }
            Value::Time(t) => {
                out.push(16);
                out.extend(t.to_le_bytes());
            }
            Value::Enum(e) => {
                out.push(17);
                put_varint(&mut out, u128::from(e.type_oid));
                out.extend(e.order.to_bits().to_le_bytes());
                put_varint(&mut out, e.label.len() as u128);
                out.extend(e.label.as_bytes());
            }
            // No column has a reg* type; a reg* value stored anyway keeps its oid.
            Value::Reg(_, oid, _) => {
                out.push(5);
                out.extend(i64::from(*oid).to_le_bytes());
            }
        }
    }
    out
}

fn corrupted(what: impl Into<String>) -> Error {
    Error::new(DATA_CORRUPTED, format!("row data is corrupted: {}", what.into()))
}

/// A reader over the row bytes that reports offsets in its errors.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.bytes.len());
        let end = end.ok_or_else(|| corrupted(format!("truncated at byte {}", self.pos)))?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn varint(&mut self) -> Result<u128> {
        let start = self.pos;
        let mut v: u128 = 0;
        for i in 0..VARINT_BYTES_MAX {
            let byte = self.take(1)?[0];
            let group = u128::from(byte & 0x7F);
            if i == VARINT_BYTES_MAX - 1 && group > 0x03 {
                return Err(corrupted(format!("varint overflows at byte {start}")));
            }
            v |= group << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(corrupted(format!("varint too long at byte {start}")))
    }

    fn length(&mut self) -> Result<usize> {
        let at = self.pos;
        let n = self.varint()?;
        usize::try_from(n)
            .ok()
            .filter(|n| *n <= self.bytes.len() - self.pos)
            .ok_or_else(|| corrupted(format!("length {n} at byte {at} exceeds the row")))
    }
}

/// Decodes a row written by [`encode_row`]; malformed input fails with XX001.
pub fn decode_row(bytes: &[u8]) -> Result<Vec<Value>> {
    let mut r = Reader { bytes, pos: 0 };
    let version = r.take(1)?[0];
    if version != ROW_FORMAT_VERSION {
        return Err(corrupted(format!("unknown row format version {version}")));
    }
    let count = r.length()?;
    let mut values = Vec::with_capacity(count);
    for _ in 0..count {
        let at = r.pos;
        let tag = r.take(1)?[0];
        values.push(match tag {
            0 => Value::Null,
            1 => Value::Bool(false),
            2 => Value::Bool(true),
            3 => Value::Int2(i16::from_le_bytes(r.array()?)),
            4 => Value::Int4(i32::from_le_bytes(r.array()?)),
            5 => Value::Int8(i64::from_le_bytes(r.array()?)),
            6 => Value::Float4(f32::from_bits(u32::from_le_bytes(r.array()?))),
            7 => Value::Float8(f64::from_bits(u64::from_le_bytes(r.array()?))),
            8 => {
                let scale = u32::try_from(r.varint()?).map_err(|_| corrupted(format!("numeric scale at byte {at}")))?;
                let zigzag = r.varint()?;
                let mantissa = ((zigzag >> 1) as i128) ^ -((zigzag & 1) as i128);
                if mantissa.unsigned_abs() >= numeric::MANTISSA_LIMIT {
                    return Err(corrupted(format!("numeric mantissa too large at byte {at}")));
                }
                Value::Numeric(Numeric { mantissa, scale })
            }
            9 => {
                let n = r.length()?;
                let s =
                    std::str::from_utf8(r.take(n)?).map_err(|_| corrupted(format!("invalid UTF-8 at byte {at}")))?;
                Value::Text(s.to_string())
            }
            15 => {
                let n = r.length()?;
                let s =
                    std::str::from_utf8(r.take(n)?).map_err(|_| corrupted(format!("invalid UTF-8 at byte {at}")))?;
                Value::Json(s.to_string())
            }
            10 => {
                let n = r.length()?;
                Value::Bytea(r.take(n)?.to_vec())
            }
            11 => Value::Date(i32::from_le_bytes(r.array()?)),
            12 => Value::Timestamp(i64::from_le_bytes(r.array()?)),
            13 => Value::TimestampTz(i64::from_le_bytes(r.array()?)),
            14 => Value::Interval(Interval {
                months: i32::from_le_bytes(r.array()?),
                days: i32::from_le_bytes(r.array()?),
                micros: i64::from_le_bytes(r.array()?),
            }),
            16 => Value::Time(i64::from_le_bytes(r.array()?)),
            17 => {
                let type_oid =
                    u32::try_from(r.varint()?).map_err(|_| corrupted(format!("enum type oid at byte {at}")))?;
                let order = f64::from_bits(u64::from_le_bytes(r.array()?));
                let n = r.length()?;
                let label =
                    std::str::from_utf8(r.take(n)?).map_err(|_| corrupted(format!("invalid UTF-8 at byte {at}")))?;
                Value::Enum(Box::new(crate::types::EnumValue { type_oid, order, label: label.to_string() }))
            }
            other => return Err(corrupted(format!("unknown value tag {other} at byte {at}"))),
        });
    }
    if r.pos != bytes.len() {
        return Err(corrupted(format!("{} trailing bytes", bytes.len() - r.pos)));
    }
    Ok(values)
}
