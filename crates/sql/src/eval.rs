//! Value and expression semantics, PostgreSQL 15's.
//!
//! The executor evaluates expression trees; this module gives each node its meaning on
//! already-computed [`Value`]s. Everything here is a pure function of its arguments (the
//! clock comes in as [`FnContext`]), so it is tested without a database.
//!
//! ```text
//!   executor ──► binary / unary / call_function / cast ──► Value or Error(SQLSTATE)
//!            ──► truth (WHERE)    compare / group_key (ORDER BY, GROUP BY, joins)
//!            ──► key_part (index keys)    encode_row / decode_row (table rows)
//!            ──► to_text (the wire)       parse_text (COPY, parameters)
//! ```
//!
//! # Types and untyped literals
//!
//! A string literal arrives as [`Value::Text`]. When an operator meets text on one side and
//! another type on the other (`id = '42'`, `d < '2024-01-01'`, `ts + '1 day'`), the text is
//! read as a literal of the other side's type first, as PostgreSQL resolves `unknown`
//! literals; text that does not parse fails with 22P02 (or 22007 for datetimes).
//!
//! Numbers promote along `smallint < integer < bigint < numeric < double precision`;
//! `real` op `real` stays `real`. Integer arithmetic checks overflow (22003), division by
//! zero is 22012. NUMERIC is exact (see `numeric`); floats follow IEEE with PostgreSQL's
//! overflow/underflow checks.
//!
//! # Submodules
//!
//! - `numeric`: NUMERIC arithmetic, parsing and output.
//! - `datetime`: the calendar, datetime input/output, interval arithmetic.
//! - `text`: text output of every type; float and bytea codecs.
//! - `cast`: CAST and assignment conversions; text input of every type.
//! - `func`: scalar functions, LIKE, md5.
//! - `encoding`: order-preserving key parts and the row format.
//! - `aggregate`: sum/avg accumulation helpers.
//! - `array`: arrays in their text form: `op ANY/ALL`, subscripts, the array functions.
//! - `regex`: the POSIX regular expression operators `~ !~ ~* !~*`.
//!
//! # Left out
//!
//! Collations (text compares bytewise, as `COLLATE "C"`), time zones other than UTC, NUMERIC
//! beyond 38 digits, NaN and infinite NUMERICs, arrays, JSON, and the TIME types.

mod aggregate;
pub mod array;
mod cast;
mod datetime;
mod encoding;
mod func;
pub mod json;
mod numeric;
mod regex;
mod text;
mod to_char;
mod to_timestamp;

#[cfg(test)]
mod tests;

pub use aggregate::{add_for_sum, avg_finish, avg_type, is_spread, spread_type, sum_type, Spread};
pub use cast::{apply_typmod, cast, format_uuid, parse_bool, parse_text, parse_uuid};
pub use encoding::{decode_row, encode_row, key_part, ROW_FORMAT_VERSION};
pub use func::{call_function, like, md5_hex, FnContext};
pub use text::to_text;

use crate::ast::{BinaryOp, UnaryOp};
use crate::error::{codes, Error, Result};
use crate::types::{DataType, Interval, Numeric, Value};
use std::cmp::Ordering;

/// The type of a non-null value: TEXT for every string, `numeric` without a typmod. `None`
/// for NULL.
pub fn type_of(v: &Value) -> Option<DataType> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(_) => DataType::Bool,
        Value::Int2(_) => DataType::Int2,
        Value::Int4(_) => DataType::Int4,
        Value::Int8(_) => DataType::Int8,
        Value::Float4(_) => DataType::Float4,
        Value::Float8(_) => DataType::Float8,
        Value::Numeric(_) => DataType::Numeric { precision: None, scale: None },
        Value::Text(_) => DataType::Text,
        Value::Bytea(_) => DataType::Bytea,
        Value::Date(_) => DataType::Date,
        Value::Time(_) => DataType::Time,
        Value::Timestamp(_) => DataType::Timestamp,
        Value::TimestampTz(_) => DataType::TimestampTz,
        Value::Interval(_) => DataType::Interval,
        Value::Reg(kind, ..) => DataType::Reg(*kind),
        Value::Json(_) => DataType::Jsonb,
        // The value knows its type's oid, not its name or labels.
        Value::Enum(e) => DataType::Enum(std::sync::Arc::new(crate::types::EnumType {
            oid: e.type_oid,
            name: "anyenum".into(),
            labels: Vec::new(),
        })),
    })
}

/// PostgreSQL's name of a value's type, `unknown` for NULL (as in error messages).
pub fn type_name(v: &Value) -> &'static str {
    match v {
        // A value knows its type's oid only.
        Value::Enum(_) => "anyenum",
        _ => type_of(v).map_or("unknown", |t| t.pg_name()),
    }
}

/// Truthiness for WHERE: `Some(bool)`, `None` for NULL; a string literal is read as a
/// boolean. Anything else fails with 42804 `argument of WHERE must be type boolean, not
/// type integer`.
pub fn truth(v: &Value) -> Result<Option<bool>> {
    truth_for(v, "WHERE")
}

/// [`truth`] for another clause (`HAVING`, `CHECK constraint`, `JOIN/ON`, `AND`, `NOT`).
pub fn truth_for(v: &Value, clause: &str) -> Result<Option<bool>> {
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        Value::Text(s) => parse_bool(s).map(Some).ok_or_else(|| {
            Error::new(codes::INVALID_TEXT_REPRESENTATION, format!("invalid input syntax for type boolean: \"{s}\""))
        }),
        other => Err(Error::new(
            codes::DATATYPE_MISMATCH,
            format!("argument of {clause} must be type boolean, not type {}", type_name(other)),
        )),
    }
}

/// The symbol of an operator, as in PostgreSQL's messages (and SQL text).
pub fn op_symbol(op: BinaryOp) -> &'static str {
    match op {
        BinaryOp::Add => "+",
        BinaryOp::Sub => "-",
        BinaryOp::Mul => "*",
        BinaryOp::Div => "/",
        BinaryOp::Mod => "%",
        BinaryOp::Eq => "=",
        BinaryOp::NotEq => "<>",
        BinaryOp::Lt => "<",
        BinaryOp::LtEq => "<=",
        BinaryOp::Gt => ">",
        BinaryOp::GtEq => ">=",
        BinaryOp::And => "AND",
        BinaryOp::Or => "OR",
        BinaryOp::Concat => "||",
        BinaryOp::Match => "~",
        BinaryOp::NotMatch => "!~",
        BinaryOp::IMatch => "~*",
        BinaryOp::NotIMatch => "!~*",
        BinaryOp::JsonGet => "->",
        BinaryOp::JsonGetText => "->>",
        BinaryOp::JsonPath => "#>",
        BinaryOp::JsonPathText => "#>>",
        BinaryOp::Contains => "@>",
        BinaryOp::ContainedBy => "<@",
        BinaryOp::HasKey => "?",
        BinaryOp::HasAnyKey => "?|",
        BinaryOp::HasAllKeys => "?&",
    }
}

/// 42883 `operator does not exist: integer = boolean`.
pub fn no_operator(op: BinaryOp, l: &Value, r: &Value) -> Error {
    Error::new(
        codes::UNDEFINED_FUNCTION,
        format!("operator does not exist: {} {} {}", type_name(l), op_symbol(op), type_name(r)),
    )
    .with_hint("No operator matches the given name and argument types. You might need to add explicit type casts.")
}

/// Applies a binary operator with PostgreSQL's semantics (see the module doc).
pub fn binary(op: BinaryOp, l: Value, r: Value) -> Result<Value> {
    match op {
        BinaryOp::And | BinaryOp::Or => return logic(op, &l, &r),
        BinaryOp::Concat if matches!((&l, &r), (Value::Json(_), _) | (_, Value::Json(_))) => {
            return json::concat(&l, &r)
        }
        BinaryOp::Sub if matches!(l, Value::Json(_)) => return json::delete(&l, &r),
        BinaryOp::JsonGet | BinaryOp::JsonGetText => return json::get(&l, &r, op == BinaryOp::JsonGetText),
        BinaryOp::JsonPath | BinaryOp::JsonPathText => return json::get_path(&l, &r, op == BinaryOp::JsonPathText),
        BinaryOp::Contains | BinaryOp::ContainedBy => return json::contains_op(&l, &r, op == BinaryOp::ContainedBy),
        BinaryOp::HasKey => return json::exists(&l, &r, None),
        BinaryOp::HasAnyKey | BinaryOp::HasAllKeys => return json::exists(&l, &r, Some(op == BinaryOp::HasAllKeys)),
        BinaryOp::Concat => return concat(l, r),
        BinaryOp::Match | BinaryOp::NotMatch | BinaryOp::IMatch | BinaryOp::NotIMatch => {
            return match (cast(l, &DataType::Text, true)?, cast(r, &DataType::Text, true)?) {
                (Value::Text(t), Value::Text(p)) => regex::match_op(op, &t, &p),
                _ => Ok(Value::Null),
            }
        }
        _ => {}
    }
    if l.is_null() || r.is_null() {
        return Ok(Value::Null);
    }
    let (l, r) = resolve_literals(op, l, r)?;
    match op {
        BinaryOp::Eq | BinaryOp::NotEq | BinaryOp::Lt | BinaryOp::LtEq | BinaryOp::Gt | BinaryOp::GtEq => {
            let ord = compare(&l, &r).ok_or_else(|| no_operator(op, &l, &r))?;
            Ok(Value::Bool(match op {
                BinaryOp::Eq => ord == Ordering::Equal,
                BinaryOp::NotEq => ord != Ordering::Equal,
                BinaryOp::Lt => ord == Ordering::Less,
                BinaryOp::LtEq => ord != Ordering::Greater,
                BinaryOp::Gt => ord == Ordering::Greater,
                _ => ord != Ordering::Less,
            }))
        }
        _ => arithmetic(op, l, r),
    }
}

fn is_number(v: &Value) -> bool {
    matches!(
        v,
        Value::Int2(_) | Value::Int4(_) | Value::Int8(_) | Value::Float4(_) | Value::Float8(_) | Value::Numeric(_)
    )
}

/// Reads a string literal on one side as the other side's type (PostgreSQL's `unknown`).
fn resolve_literals(op: BinaryOp, l: Value, r: Value) -> Result<(Value, Value)> {
    let comparison =
        matches!(op, BinaryOp::Eq | BinaryOp::NotEq | BinaryOp::Lt | BinaryOp::LtEq | BinaryOp::Gt | BinaryOp::GtEq);
    match (&l, &r) {
        (Value::Text(_), Value::Text(_)) => Ok((l, r)),
        (Value::Text(s), other) => {
            let target = literal_target(op, comparison, other, true);
            match target {
                Some(t) => Ok((parse_text(s, &t)?, r)),
                None => Ok((l, r)),
            }
        }
        (other, Value::Text(s)) => {
            let target = literal_target(op, comparison, other, false);
            match target {
                Some(t) => {
                    let parsed = parse_text(s, &t)?;
                    Ok((l, parsed))
                }
                None => Ok((l, r)),
            }
        }
        _ => Ok((l, r)),
    }
}

/// The type a string literal takes opposite `other`.
fn literal_target(op: BinaryOp, comparison: bool, other: &Value, literal_on_left: bool) -> Option<DataType> {
    if matches!(other, Value::Enum(_)) {
        // Compared by its label (see `compare`); the binder reads a literal beside an enum
        // column as the column's type, with its labels.
        return None;
    }
    let same = type_of(other)?;
    if comparison || is_number(other) || matches!(other, Value::Interval(_) | Value::Bool(_) | Value::Bytea(_)) {
        return Some(same);
    }
    // Dates and timestamps: `ts - 'literal'` is ts - ts; `ts + 'literal'` adds an interval.
    match (other, op, literal_on_left) {
        (Value::Date(_) | Value::Time(_) | Value::Timestamp(_) | Value::TimestampTz(_), BinaryOp::Sub, false) => {
            Some(same)
        }
        (Value::Date(_) | Value::Time(_) | Value::Timestamp(_) | Value::TimestampTz(_), _, _) => {
            Some(DataType::Interval)
        }
        _ => None,
    }
}

/// AND / OR with three-valued logic.
fn logic(op: BinaryOp, l: &Value, r: &Value) -> Result<Value> {
    let clause = if op == BinaryOp::And { "AND" } else { "OR" };
    let a = truth_for(l, clause)?;
    let b = truth_for(r, clause)?;
    let result = if op == BinaryOp::And {
        match (a, b) {
            (Some(false), _) | (_, Some(false)) => Some(false),
            (Some(true), Some(true)) => Some(true),
            _ => None,
        }
    } else {
        match (a, b) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
            _ => None,
        }
    };
    Ok(result.map_or(Value::Null, Value::Bool))
}

/// `||`: text with anything (NULL if either is NULL), bytea with bytea.
fn concat(l: Value, r: Value) -> Result<Value> {
    match (&l, &r) {
        (Value::Bytea(a), Value::Bytea(b)) => Ok(Value::Bytea([a.as_slice(), b.as_slice()].concat())),
        (Value::Null, _) | (_, Value::Null) => Ok(Value::Null),
        (Value::Text(_), _) | (_, Value::Text(_)) => {
            let mut s = to_text(&l).unwrap_or_default();
            s.push_str(&to_text(&r).unwrap_or_default());
            Ok(Value::Text(s))
        }
        _ => Err(no_operator(BinaryOp::Concat, &l, &r)),
    }
}

/// A number in one of three exact-or-not classes, for promotion.
#[derive(Debug, Clone, Copy)]
enum Num {
    Int(i128),
    Dec(Numeric),
    Float(f64),
}

fn as_num(v: &Value) -> Option<Num> {
    Some(match v {
        Value::Int2(i) => Num::Int(i128::from(*i)),
        Value::Int4(i) => Num::Int(i128::from(*i)),
        Value::Int8(i) => Num::Int(i128::from(*i)),
        Value::Float4(f) => Num::Float(f64::from(*f)),
        Value::Float8(f) => Num::Float(*f),
        Value::Numeric(n) => Num::Dec(*n),
        _ => return None,
    })
}

fn num_to_f64(n: Num) -> f64 {
    match n {
        Num::Int(i) => i as f64,
        Num::Dec(d) => numeric::to_f64(d),
        Num::Float(f) => f,
    }
}

fn num_to_numeric(n: Num) -> Result<Numeric> {
    match n {
        Num::Int(i) => numeric::from_int(i),
        Num::Dec(d) => Ok(d),
        Num::Float(_) => unreachable!("float promoted to numeric"),
    }
}

/// The integer width of an integer value (for the result type of int op int).
fn int_rank(v: &Value) -> u8 {
    match v {
        Value::Int2(_) => 0,
        Value::Int4(_) => 1,
        _ => 2,
    }
}

fn arithmetic(op: BinaryOp, l: Value, r: Value) -> Result<Value> {
    if let (Some(a), Some(b)) = (as_num(&l), as_num(&r)) {
        return number_arithmetic(op, &l, &r, a, b);
    }
    let err = || no_operator(op, &l, &r);
    match (op, &l, &r) {
        (BinaryOp::Add, Value::Date(d), Value::Int2(_) | Value::Int4(_))
        | (BinaryOp::Add, Value::Int2(_) | Value::Int4(_), Value::Date(d)) => {
            let n = int_of(if matches!(l, Value::Date(_)) { &r } else { &l });
            date_plus_days(*d, n)
        }
        (BinaryOp::Sub, Value::Date(d), Value::Int2(_) | Value::Int4(_)) => date_plus_days(*d, -int_of(&r)),
        (BinaryOp::Sub, Value::Date(a), Value::Date(b)) => {
            if is_infinite_date(*a) || is_infinite_date(*b) {
                return Err(Error::new(codes::DATETIME_FIELD_OVERFLOW, "cannot subtract infinite dates"));
            }
            a.checked_sub(*b).map(Value::Int4).ok_or_else(|| cast::int_out_of_range(&DataType::Int4))
        }
        (
            BinaryOp::Add | BinaryOp::Sub,
            Value::Date(_) | Value::Timestamp(_) | Value::TimestampTz(_),
            Value::Interval(iv),
        ) => {
            let iv = if op == BinaryOp::Sub { datetime::interval_neg(*iv)? } else { *iv };
            timestamp_plus(&l, iv)
        }
        (BinaryOp::Add, Value::Interval(iv), Value::Date(_) | Value::Timestamp(_) | Value::TimestampTz(_)) => {
            timestamp_plus(&r, *iv)
        }
        (
            BinaryOp::Sub,
            Value::Timestamp(_) | Value::TimestampTz(_) | Value::Date(_),
            Value::Timestamp(_) | Value::TimestampTz(_),
        )
        | (BinaryOp::Sub, Value::Timestamp(_) | Value::TimestampTz(_), Value::Date(_)) => {
            let a = timestamp_micros(&l).ok_or_else(err)?;
            let b = timestamp_micros(&r).ok_or_else(err)?;
            Ok(Value::Interval(datetime::timestamp_diff(a, b)?))
        }
        // time ± interval wraps around midnight and ignores the interval's months and days.
        (BinaryOp::Add | BinaryOp::Sub, Value::Time(t), Value::Interval(iv)) => {
            let shift = if op == BinaryOp::Sub { -iv.micros } else { iv.micros };
            Ok(Value::Time(datetime::time_wrap(*t, shift)))
        }
        (BinaryOp::Add, Value::Interval(iv), Value::Time(t)) => Ok(Value::Time(datetime::time_wrap(*t, iv.micros))),
        (BinaryOp::Sub, Value::Time(a), Value::Time(b)) => {
            Ok(Value::Interval(Interval { months: 0, days: 0, micros: a - b }))
        }
        (BinaryOp::Add, Value::Date(d), Value::Time(t)) | (BinaryOp::Add, Value::Time(t), Value::Date(d)) => {
            if is_infinite_date(*d) {
                return Ok(Value::Timestamp(datetime::date_to_timestamp(*d)));
            }
            datetime::date_to_timestamp(*d)
                .checked_add(*t)
                .map(Value::Timestamp)
                .ok_or_else(|| Error::new(codes::DATETIME_FIELD_OVERFLOW, "timestamp out of range"))
        }
        (BinaryOp::Add, Value::Interval(a), Value::Interval(b)) => Ok(Value::Interval(datetime::interval_add(*a, *b)?)),
        (BinaryOp::Sub, Value::Interval(a), Value::Interval(b)) => {
            Ok(Value::Interval(datetime::interval_add(*a, datetime::interval_neg(*b)?)?))
        }
        (BinaryOp::Mul, Value::Interval(iv), n) | (BinaryOp::Mul, n, Value::Interval(iv)) if is_number(n) => {
            let f = num_to_f64(as_num(n).ok_or_else(err)?);
            Ok(Value::Interval(datetime::interval_mul(*iv, f)?))
        }
        (BinaryOp::Div, Value::Interval(iv), n) if is_number(n) => {
            let f = num_to_f64(as_num(n).ok_or_else(err)?);
            if f == 0.0 {
                return Err(numeric::division_by_zero());
            }
            Ok(Value::Interval(datetime::interval_mul(*iv, 1.0 / f)?))
        }
        _ => Err(err()),
    }
}

fn int_of(v: &Value) -> i64 {
    match v {
        Value::Int2(i) => i64::from(*i),
        Value::Int4(i) => i64::from(*i),
        Value::Int8(i) => *i,
        _ => 0,
    }
}

fn is_infinite_date(d: i32) -> bool {
    d == datetime::DATE_INFINITY || d == datetime::DATE_NEG_INFINITY
}

fn date_plus_days(d: i32, n: i64) -> Result<Value> {
    if is_infinite_date(d) {
        return Ok(Value::Date(d));
    }
    Ok(Value::Date(datetime::check_date(i64::from(d) + n)?))
}

/// Microseconds of a date (at midnight), timestamp or timestamptz.
fn timestamp_micros(v: &Value) -> Option<i64> {
    match v {
        Value::Date(d) => Some(datetime::date_to_timestamp(*d)),
        Value::Timestamp(t) | Value::TimestampTz(t) => Some(*t),
        _ => None,
    }
}

/// date/timestamp + interval: a date becomes a timestamp.
fn timestamp_plus(v: &Value, iv: Interval) -> Result<Value> {
    let t = timestamp_micros(v).unwrap_or_default();
    let result = datetime::timestamp_add_interval(t, iv)?;
    Ok(match v {
        Value::TimestampTz(_) => Value::TimestampTz(result),
        _ => Value::Timestamp(result),
    })
}

fn number_arithmetic(op: BinaryOp, l: &Value, r: &Value, a: Num, b: Num) -> Result<Value> {
    match (a, b) {
        (Num::Float(_), _) | (_, Num::Float(_)) => {
            if op == BinaryOp::Mod {
                return Err(no_operator(op, l, r));
            }
            if matches!((l, r), (Value::Float4(_), Value::Float4(_))) {
                let (x, y) = (num_to_f64(a) as f32, num_to_f64(b) as f32);
                float4_arith(op, x, y).map(Value::Float4)
            } else {
                float8_arith(op, num_to_f64(a), num_to_f64(b)).map(Value::Float8)
            }
        }
        (Num::Dec(_), _) | (_, Num::Dec(_)) => {
            let (x, y) = (num_to_numeric(a)?, num_to_numeric(b)?);
            let result = match op {
                BinaryOp::Add => numeric::add(x, y)?,
                BinaryOp::Sub => numeric::sub(x, y)?,
                BinaryOp::Mul => numeric::mul(x, y)?,
                BinaryOp::Div => numeric::div(x, y)?,
                _ => numeric::rem(x, y)?,
            };
            Ok(Value::Numeric(result))
        }
        (Num::Int(x), Num::Int(y)) => {
            let width = match int_rank(l).max(int_rank(r)) {
                0 => DataType::Int2,
                1 => DataType::Int4,
                _ => DataType::Int8,
            };
            let v = match op {
                BinaryOp::Add => x + y,
                BinaryOp::Sub => x - y,
                BinaryOp::Mul => x * y,
                BinaryOp::Div | BinaryOp::Mod if y == 0 => return Err(numeric::division_by_zero()),
                BinaryOp::Div => x / y,
                _ => x % y,
            };
            cast::int_value(v, &width)
        }
    }
}

/// Float8 arithmetic with PostgreSQL's overflow, underflow and division-by-zero checks.
fn float8_arith(op: BinaryOp, x: f64, y: f64) -> Result<f64> {
    let r = match op {
        BinaryOp::Add => x + y,
        BinaryOp::Sub => x - y,
        BinaryOp::Mul => x * y,
        _ => {
            if y == 0.0 {
                return Err(numeric::division_by_zero());
            }
            x / y
        }
    };
    if r.is_infinite() && x.is_finite() && y.is_finite() {
        return Err(cast::float_overflow());
    }
    let underflow = match op {
        BinaryOp::Mul => r == 0.0 && x != 0.0 && y != 0.0,
        BinaryOp::Div => r == 0.0 && x != 0.0 && !y.is_infinite(),
        _ => false,
    };
    if underflow {
        return Err(cast::float_underflow());
    }
    Ok(r)
}

fn float4_arith(op: BinaryOp, x: f32, y: f32) -> Result<f32> {
    let r = match op {
        BinaryOp::Add => x + y,
        BinaryOp::Sub => x - y,
        BinaryOp::Mul => x * y,
        _ => {
            if y == 0.0 {
                return Err(numeric::division_by_zero());
            }
            x / y
        }
    };
    if r.is_infinite() && x.is_finite() && y.is_finite() {
        return Err(cast::float_overflow());
    }
    let underflow = match op {
        BinaryOp::Mul => r == 0.0 && x != 0.0 && y != 0.0,
        BinaryOp::Div => r == 0.0 && x != 0.0 && !y.is_infinite(),
        _ => false,
    };
    if underflow {
        return Err(cast::float_underflow());
    }
    Ok(r)
}

/// Applies a unary operator: NOT (three-valued), `-` (overflow-checked), `+`.
pub fn unary(op: UnaryOp, v: Value) -> Result<Value> {
    match op {
        UnaryOp::Not => Ok(truth_for(&v, "NOT")?.map_or(Value::Null, |b| Value::Bool(!b))),
        UnaryOp::Neg => match v {
            Value::Null => Ok(Value::Null),
            Value::Int2(i) => i.checked_neg().map(Value::Int2).ok_or_else(|| cast::int_out_of_range(&DataType::Int2)),
            Value::Int4(i) => i.checked_neg().map(Value::Int4).ok_or_else(|| cast::int_out_of_range(&DataType::Int4)),
            Value::Int8(i) => i.checked_neg().map(Value::Int8).ok_or_else(|| cast::int_out_of_range(&DataType::Int8)),
            Value::Float4(f) => Ok(Value::Float4(-f)),
            Value::Float8(f) => Ok(Value::Float8(-f)),
            Value::Numeric(n) => Ok(Value::Numeric(Numeric { mantissa: -n.mantissa, scale: n.scale })),
            Value::Interval(iv) => Ok(Value::Interval(datetime::interval_neg(iv)?)),
            Value::Text(s) => unary(op, parse_text(&s, &DataType::Numeric { precision: None, scale: None })?),
            other => Err(no_prefix_operator("-", &other)),
        },
        UnaryOp::Plus => match v {
            Value::Text(s) => parse_text(&s, &DataType::Numeric { precision: None, scale: None }),
            v if v.is_null() || is_number(&v) || matches!(v, Value::Interval(_)) => Ok(v),
            other => Err(no_prefix_operator("+", &other)),
        },
    }
}

fn no_prefix_operator(symbol: &str, v: &Value) -> Error {
    Error::new(codes::UNDEFINED_FUNCTION, format!("operator does not exist: {symbol} {}", type_name(v)))
        .with_hint("No operator matches the given name and argument types. You might need to add explicit type casts.")
}

/// Float total order as PostgreSQL's: `-0 == 0`, NaN equals NaN and is above everything.
fn float_cmp(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

fn num_cmp(a: Num, b: Num) -> Ordering {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => x.cmp(&y),
        (Num::Float(_), _) | (_, Num::Float(_)) => float_cmp(num_to_f64(a), num_to_f64(b)),
        _ => match (num_to_numeric(a), num_to_numeric(b)) {
            (Ok(x), Ok(y)) => numeric::cmp(x, y),
            _ => float_cmp(num_to_f64(a), num_to_f64(b)),
        },
    }
}

/// SQL ordering within comparable types: numbers by value across types (NaN last), text
/// bytewise, `false < true`, dates and timestamps on one time line, intervals by their
/// 30-day-month length. `None` if either is NULL or the types do not compare.
pub fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Null, _) | (_, Value::Null) => None,
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Text(x), Value::Text(y)) | (Value::Json(x), Value::Json(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (Value::Bytea(x), Value::Bytea(y)) => Some(x.cmp(y)),
        (Value::Interval(x), Value::Interval(y)) => {
            Some(datetime::interval_cmp_value(*x).cmp(&datetime::interval_cmp_value(*y)))
        }
        (Value::Date(x), Value::Date(y)) => Some(x.cmp(y)),
        (Value::Time(x), Value::Time(y)) => Some(x.cmp(y)),
        (Value::Time(_), _) | (_, Value::Time(_)) => None,
        (Value::Enum(x), Value::Enum(y)) => (x.type_oid == y.type_oid).then(|| x.order.total_cmp(&y.order)),
        // A string the binder could not type: compared with the label.
        (Value::Enum(x), Value::Text(y)) => Some(x.label.as_bytes().cmp(y.as_bytes())),
        (Value::Text(x), Value::Enum(y)) => Some(x.as_bytes().cmp(y.label.as_bytes())),
        (Value::Enum(_), _) | (_, Value::Enum(_)) => None,
        // A reg* value compares as its oid, with other reg* values and with numbers.
        (Value::Reg(_, x, _), Value::Reg(_, y, _)) => Some(x.cmp(y)),
        (Value::Reg(_, x, _), other) => compare(&Value::Int8(i64::from(*x)), other),
        (other, Value::Reg(_, y, _)) => compare(other, &Value::Int8(i64::from(*y))),
        _ => {
            if let (Some(x), Some(y)) = (as_num(a), as_num(b)) {
                return Some(num_cmp(x, y));
            }
            Some(timestamp_micros(a)?.cmp(&timestamp_micros(b)?))
        }
    }
}

/// A hashable canonical form of a value: equal keys exactly when [`group_eq`]. Numbers of
/// every type share one space: integral values are `Int`, other numerics with at most 15
/// significant digits become the `Float` of their nearest double (so `1.5::numeric`
/// groups with `1.5::float8`), longer ones stay `Decimal` (normalised). Dates and
/// timestamps share the time line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GroupKey {
    /// NULL (all NULLs group together).
    Null,
    /// A boolean.
    Bool(bool),
    /// An integral number of any numeric type.
    Int(i128),
    /// A non-integral NUMERIC of more than 15 significant digits: (mantissa, scale),
    /// trailing zeros stripped.
    Decimal(i128, u32),
    /// A non-integral float (bits of the `f64`; one NaN).
    Float(u64),
    /// Text.
    Text(String),
    /// Bytea.
    Bytes(Vec<u8>),
    /// A date (as midnight), timestamp or timestamptz, in microseconds.
    Time(i64),
    /// An interval's comparison value.
    Interval(i128),
}

/// The grouping key of a value (see [`GroupKey`]).
pub fn group_key(v: &Value) -> GroupKey {
    match v {
        Value::Null => GroupKey::Null,
        Value::Bool(b) => GroupKey::Bool(*b),
        Value::Int2(_) | Value::Int4(_) | Value::Int8(_) => GroupKey::Int(i128::from(int_of(v))),
        Value::Float4(f) => float_key(f64::from(*f)),
        Value::Float8(f) => float_key(*f),
        Value::Numeric(n) => {
            let n = numeric::normalize(*n);
            if n.scale == 0 {
                GroupKey::Int(n.mantissa)
            } else if numeric::digits(n.mantissa.unsigned_abs()) <= 15 {
                float_key(numeric::to_f64(n))
            } else {
                GroupKey::Decimal(n.mantissa, n.scale)
            }
        }
        Value::Text(s) | Value::Json(s) => GroupKey::Text(s.clone()),
        Value::Bytea(b) => GroupKey::Bytes(b.clone()),
        Value::Date(d) => GroupKey::Time(datetime::date_to_timestamp(*d)),
        Value::Time(t) | Value::Timestamp(t) | Value::TimestampTz(t) => GroupKey::Time(*t),
        Value::Interval(iv) => GroupKey::Interval(datetime::interval_cmp_value(*iv)),
        Value::Reg(_, oid, _) => GroupKey::Int(i128::from(*oid)),
        Value::Enum(e) => GroupKey::Text(e.label.clone()),
    }
}

fn float_key(f: f64) -> GroupKey {
    if f.is_nan() {
        return GroupKey::Float(f64::NAN.to_bits());
    }
    if f == f.trunc() && f.abs() < 1.0e38 {
        return GroupKey::Int(f as i128);
    }
    GroupKey::Float(f.to_bits())
}

/// Equality for GROUP BY, DISTINCT and hash joins: NULLs are equal to each other; numbers
/// compare across types (`1::int4`, `1::int8` and `1.0` are one group).
pub fn group_eq(a: &Value, b: &Value) -> bool {
    group_key(a) == group_key(b)
}
