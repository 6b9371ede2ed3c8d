//! Accumulation helpers for `sum` and `avg` (the executor owns the aggregates themselves).
//!
//! PostgreSQL's result types: `sum(smallint|integer)` is `bigint`, `sum(bigint)` and
//! `sum(numeric)` are `numeric`, `sum(real)` is `real`, `sum(double precision)` is `double
//! precision`, `sum(interval)` is `interval`. `avg` of any integer or numeric is `numeric`
//! (`avg(1, 2, 3)` = `2.0000000000000000`), of floats `double precision`.

use super::{cast, datetime, numeric, type_name};
use crate::error::{codes, Error, Result};
use crate::types::{DataType, Value};

/// The type `sum` returns for an argument of type `t` (`t` itself if `sum` does not apply;
/// [`add_for_sum`] then reports the error).
pub fn sum_type(t: &DataType) -> DataType {
    match t {
        DataType::Int2 | DataType::Int4 => DataType::Int8,
        DataType::Int8 | DataType::Numeric { .. } => DataType::Numeric { precision: None, scale: None },
        other => other.clone(),
    }
}

/// The type `avg` returns for an argument of type `t`.
pub fn avg_type(t: &DataType) -> DataType {
    match t {
        DataType::Float4 | DataType::Float8 => DataType::Float8,
        DataType::Interval => DataType::Interval,
        _ => DataType::Numeric { precision: None, scale: None },
    }
}

fn no_sum(v: &Value) -> Error {
    Error::new(codes::UNDEFINED_FUNCTION, format!("function sum({}) does not exist", type_name(v)))
        .with_hint("No function matches the given name and argument types. You might need to add explicit type casts.")
}

/// Adds `v` to the running sum `acc` (NULL before the first non-NULL input); NULL inputs
/// are skipped. The sum has [`sum_type`] of the input's type.
pub fn add_for_sum(acc: Value, v: Value) -> Result<Value> {
    if v.is_null() {
        return Ok(acc);
    }
    let t = super::type_of(&v).unwrap_or(DataType::Text);
    if !matches!(
        t,
        DataType::Int2
            | DataType::Int4
            | DataType::Int8
            | DataType::Numeric { .. }
            | DataType::Float4
            | DataType::Float8
            | DataType::Interval
    ) {
        return Err(no_sum(&v));
    }
    let v = cast::cast(v, &sum_type(&t), false)?;
    if acc.is_null() {
        return Ok(v);
    }
    match (acc, v) {
        (Value::Int8(a), Value::Int8(b)) => {
            a.checked_add(b).map(Value::Int8).ok_or_else(|| cast::int_out_of_range(&DataType::Int8))
        }
        (Value::Numeric(a), Value::Numeric(b)) => Ok(Value::Numeric(numeric::add(a, b)?)),
        (Value::Float4(a), Value::Float4(b)) => {
            let r = a + b;
            if r.is_infinite() && a.is_finite() && b.is_finite() {
                return Err(cast::float_overflow());
            }
            Ok(Value::Float4(r))
        }
        (Value::Float8(a), Value::Float8(b)) => {
            let r = a + b;
            if r.is_infinite() && a.is_finite() && b.is_finite() {
                return Err(cast::float_overflow());
            }
            Ok(Value::Float8(r))
        }
        (Value::Interval(a), Value::Interval(b)) => Ok(Value::Interval(datetime::interval_add(a, b)?)),
        (acc, v) => Err(Error::new(
            codes::DATATYPE_MISMATCH,
            format!("cannot add {} to a sum of {}", type_name(&v), type_name(&acc)),
        )),
    }
}

/// `avg` from the sum (as [`add_for_sum`] built it) and the count of non-NULL inputs;
/// NULL when the count is zero.
pub fn avg_finish(sum: Value, count: i64) -> Result<Value> {
    if count == 0 || sum.is_null() {
        return Ok(Value::Null);
    }
    let n = numeric::from_int(i128::from(count))?;
    match sum {
        Value::Int2(_) | Value::Int4(_) | Value::Int8(_) | Value::Numeric(_) => {
            let Value::Numeric(s) = cast::cast(sum, &DataType::Numeric { precision: None, scale: None }, false)? else {
                unreachable!("cast to numeric gives a numeric")
            };
            Ok(Value::Numeric(numeric::div(s, n)?))
        }
        Value::Float4(f) => Ok(Value::Float8(f64::from(f) / count as f64)),
        Value::Float8(f) => Ok(Value::Float8(f / count as f64)),
        Value::Interval(iv) => Ok(Value::Interval(datetime::interval_mul(iv, 1.0 / count as f64)?)),
        other => {
            Err(Error::new(codes::UNDEFINED_FUNCTION, format!("function avg({}) does not exist", type_name(&other))))
        }
    }
}

/// True for the aggregates of spread: `stddev`, `variance` and their `_samp` and `_pop`
/// forms.
pub fn is_spread(name: &str) -> bool {
    matches!(name, "stddev" | "stddev_samp" | "stddev_pop" | "variance" | "var_samp" | "var_pop")
}

/// The type the spread aggregates return: `double precision` for floats, `numeric` for
/// integers and numerics.
pub fn spread_type(t: &DataType) -> DataType {
    match t {
        DataType::Float4 | DataType::Float8 => DataType::Float8,
        _ => DataType::Numeric { precision: None, scale: None },
    }
}

/// The running state of a spread aggregate, as PostgreSQL keeps it: floats by the
/// Youngs-Cramer update (N, Sx, Sxx) in double precision; integers and numerics as exact
/// sums of X and X², so the result is the same digits PostgreSQL prints.
#[derive(Debug, Clone, Default)]
pub struct Spread {
    n: i64,
    float: bool,
    sx: f64,
    sxx: f64,
    sum: Option<crate::types::Numeric>,
    sum_sq: Option<crate::types::Numeric>,
}

impl Spread {
    /// Adds one non-NULL value.
    pub fn add(&mut self, func: &str, v: &Value) -> Result<()> {
        let x =
            match v {
                Value::Float4(f) => Err(f64::from(*f)),
                Value::Float8(f) => Err(*f),
                Value::Int2(_) | Value::Int4(_) | Value::Int8(_) | Value::Numeric(_) => {
                    match cast::cast(v.clone(), &DataType::Numeric { precision: None, scale: None }, false)? {
                        Value::Numeric(n) => Ok(n),
                        _ => unreachable!("cast to numeric gives a numeric"),
                    }
                }
                other => return Err(Error::new(
                    codes::UNDEFINED_FUNCTION,
                    format!("function {func}({}) does not exist", type_name(other)),
                )
                .with_hint(
                    "No function matches the given name and argument types. You might need to add explicit type casts.",
                )),
            };
        let before = self.n as f64;
        self.n += 1;
        match x {
            Err(f) => {
                self.float = true;
                let n = self.n as f64;
                self.sx += f;
                if before > 0.0 {
                    let tmp = f * n - self.sx;
                    self.sxx += tmp * tmp / (n * before);
                } else {
                    self.sxx = if f.is_finite() { 0.0 } else { f64::NAN };
                }
            }
            Ok(x) => {
                let sq = numeric::mul(x, x)?;
                self.sum = Some(match self.sum {
                    None => x,
                    Some(s) => numeric::add(s, x)?,
                });
                self.sum_sq = Some(match self.sum_sq {
                    None => sq,
                    Some(s) => numeric::add(s, sq)?,
                });
            }
        }
        Ok(())
    }

    /// The aggregate's value: NULL for no rows, and for one row in the sample forms.
    pub fn finish(&self, func: &str) -> Result<Value> {
        let sample = !func.ends_with("_pop");
        let root = func.starts_with("stddev");
        if self.n == 0 || (sample && self.n == 1) {
            return Ok(Value::Null);
        }
        if self.float {
            let n = self.n as f64;
            let var = self.sxx / if sample { n - 1.0 } else { n };
            return Ok(Value::Float8(if root { var.sqrt() } else { var }));
        }
        let (Some(sum), Some(sum_sq)) = (self.sum, self.sum_sq) else { return Ok(Value::Null) };
        let n = numeric::from_int(i128::from(self.n))?;
        // (N·ΣX² − (ΣX)²) / (N·(N−1)), or / N² for the population forms.
        let numerator = numeric::sub(numeric::mul(n, sum_sq)?, numeric::mul(sum, sum)?)?;
        if numerator.mantissa <= 0 {
            return Ok(Value::Numeric(numeric::make(false, 0, 0)));
        }
        let other = numeric::from_int(i128::from(if sample { self.n - 1 } else { self.n }))?;
        let denominator = numeric::mul(n, other)?;
        let rscale = numeric::div_scale(numerator, denominator);
        let var = numeric::div_to_scale(numerator, denominator, rscale)?;
        if root {
            super::func::numeric_sqrt_to_scale(var, rscale)
        } else {
            Ok(Value::Numeric(var))
        }
    }
}
