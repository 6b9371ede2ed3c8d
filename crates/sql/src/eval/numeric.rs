//! NUMERIC arithmetic on an `i128` mantissa with a decimal scale.
//!
//! A [`Numeric`] is `mantissa / 10^scale` with at most [`DIGITS_MAX`] significant digits.
//! Addition, subtraction and the remainder are exact. A product keeps PostgreSQL's scale
//! (the sum of the operands' scales) when its digits fit; otherwise fraction digits are
//! rounded away (half away from zero) until they do, and only an integer part that does not
//! fit fails. Intermediate products use a 256-bit unsigned integer ([`U256`]), so nothing
//! overflows silently.
//!
//! Division follows PostgreSQL's `select_div_scale`: the quotient gets at least 16
//! significant digits, and never fewer fraction digits than either operand, computed on
//! PostgreSQL's base-10000 digit weights so that `1/3` prints `0.33333333333333333333` and
//! `10/3` prints `3.3333333333333333`, as PostgreSQL does.
//!
//! Left out: NaN and ±Infinity (PostgreSQL 14 added them to NUMERIC), and more than 38
//! digits.

use crate::error::{codes, Error, Result};
use crate::types::Numeric;
use std::cmp::Ordering;

/// Significant decimal digits a NUMERIC holds.
pub const DIGITS_MAX: u32 = 38;
/// 10^38: every mantissa's magnitude is below this.
pub const MANTISSA_LIMIT: u128 = 100_000_000_000_000_000_000_000_000_000_000_000_000;
/// PostgreSQL's NUMERIC_MIN_SIG_DIGITS: the least significant digits of a quotient.
const MIN_SIG_DIGITS: i64 = 16;
/// PostgreSQL's NUMERIC_MAX_DISPLAY_SCALE: the largest scale a computed result gets.
pub const SCALE_MAX: u32 = 1000;

/// 10^n for n <= 38.
pub fn pow10(n: u32) -> u128 {
    assert!(n <= DIGITS_MAX, "10^{n} does not fit");
    10u128.pow(n)
}

/// 22003 `value overflows numeric format`.
pub fn overflow() -> Error {
    Error::new(codes::NUMERIC_VALUE_OUT_OF_RANGE, "value overflows numeric format")
}

/// 22012 `division by zero`.
pub fn division_by_zero() -> Error {
    Error::new(codes::DIVISION_BY_ZERO, "division by zero")
}

/// A 256-bit unsigned integer, just enough for products of two mantissas and long division.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct U256 {
    hi: u128,
    lo: u128,
}

impl U256 {
    /// Widens a `u128`.
    pub fn from_u128(v: u128) -> U256 {
        U256 { hi: 0, lo: v }
    }

    /// The exact product of two `u128`s.
    pub fn mul(a: u128, b: u128) -> U256 {
        const MASK: u128 = u64::MAX as u128;
        let (a0, a1) = (a & MASK, a >> 64);
        let (b0, b1) = (b & MASK, b >> 64);
        let (p00, p01, p10, p11) = (a0 * b0, a0 * b1, a1 * b0, a1 * b1);
        let mid = (p00 >> 64) + (p01 & MASK) + (p10 & MASK);
        let lo = (p00 & MASK) | (mid << 64);
        let hi = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
        U256 { hi, lo }
    }

    /// The square root, rounded half up; `self` must be below 2^254 (so the root fits).
    pub fn sqrt_rounded(self) -> u128 {
        let mut root: u128 = 0;
        for bit in (0..127).rev() {
            let candidate = root | (1 << bit);
            if U256::mul(candidate, candidate) <= self {
                root = candidate;
            }
        }
        // The exact root is at least root + 1/2 when self > root² + root.
        root + u128::from(self > U256::mul(root, root + 1))
    }

    /// The value, if it fits a `u128`.
    pub fn to_u128(self) -> Option<u128> {
        (self.hi == 0).then_some(self.lo)
    }

    /// Quotient and remainder by `d`, which must be nonzero and below 2^127 (every mantissa
    /// and every power of ten up to 10^38 is).
    pub fn div_rem(self, d: u128) -> (U256, u128) {
        assert!(d != 0 && d < (1 << 127), "divisor out of range");
        let mut q = U256 { hi: 0, lo: 0 };
        let mut r: u128 = 0;
        let bits = if self.hi != 0 { 256 - self.hi.leading_zeros() } else { 128 - self.lo.leading_zeros() };
        for i in (0..bits).rev() {
            let bit = if i >= 128 { (self.hi >> (i - 128)) & 1 } else { (self.lo >> i) & 1 };
            r = (r << 1) | bit;
            if r >= d {
                r -= d;
                if i >= 128 {
                    q.hi |= 1 << (i - 128);
                } else {
                    q.lo |= 1 << i;
                }
            }
        }
        (q, r)
    }
}

/// The number of decimal digits of `v` (1 for 0).
pub fn digits(v: u128) -> u32 {
    if v == 0 {
        1
    } else {
        v.ilog10() + 1
    }
}

/// Builds `±mag / 10^scale` from a wide magnitude, rounding fraction digits away (half away
/// from zero) while the digits do not fit. Fails with 22003 if the integer part does not fit.
pub fn fit(negative: bool, mag: U256, scale: u32) -> Result<Numeric> {
    if let Some(m) = mag.to_u128().filter(|m| *m < MANTISSA_LIMIT) {
        return Ok(make(negative, m, scale));
    }
    // Digits to drop: at least enough to bring the magnitude under 10^38.
    let mut drop = 1u32;
    loop {
        if drop > scale {
            return Err(overflow());
        }
        // floor(mag / 10^(drop-1)) in stages of at most 38 digits, then round on the last.
        let mut y = mag;
        let mut left = drop - 1;
        while left > 0 {
            let step = left.min(DIGITS_MAX);
            y = y.div_rem(pow10(step)).0;
            left -= step;
        }
        let (q, last) = y.div_rem(10);
        let q = match q.to_u128() {
            Some(q) => q + u128::from(last >= 5),
            None => {
                drop += 1;
                continue;
            }
        };
        if q < MANTISSA_LIMIT {
            return Ok(make(negative, q, scale - drop));
        }
        drop += 1;
    }
}

/// Builds a numeric from a magnitude known to be below 10^38.
pub fn make(negative: bool, mag: u128, scale: u32) -> Numeric {
    assert!(mag < MANTISSA_LIMIT, "mantissa too large");
    let m = mag as i128;
    Numeric { mantissa: if negative { -m } else { m }, scale }
}

/// An integer as a numeric of scale 0.
pub fn from_int(v: i128) -> Result<Numeric> {
    fit(v < 0, U256::from_u128(v.unsigned_abs()), 0)
}

/// The magnitude scaled up by `10^by`, exactly.
fn scaled_up(n: Numeric, by: u32) -> Option<i128> {
    if by > DIGITS_MAX {
        return if n.mantissa == 0 { Some(0) } else { None };
    }
    n.mantissa.checked_mul(pow10(by) as i128)
}

/// Both mantissas at the larger scale, or 22003 if that does not fit.
fn align(a: Numeric, b: Numeric) -> Result<(i128, i128, u32)> {
    let scale = a.scale.max(b.scale);
    let x = scaled_up(a, scale - a.scale).ok_or_else(overflow)?;
    let y = scaled_up(b, scale - b.scale).ok_or_else(overflow)?;
    Ok((x, y, scale))
}

/// From an exact `i128` result at `scale`.
fn from_wide(v: i128, scale: u32) -> Result<Numeric> {
    fit(v < 0, U256::from_u128(v.unsigned_abs()), scale)
}

/// `a + b`, exact.
pub fn add(a: Numeric, b: Numeric) -> Result<Numeric> {
    let (x, y, scale) = align(a, b)?;
    from_wide(x.checked_add(y).ok_or_else(overflow)?, scale)
}

/// `a - b`, exact.
pub fn sub(a: Numeric, b: Numeric) -> Result<Numeric> {
    let (x, y, scale) = align(a, b)?;
    from_wide(x.checked_sub(y).ok_or_else(overflow)?, scale)
}

/// `a * b` at scale `a.scale + b.scale` (fewer if the digits would not fit).
pub fn mul(a: Numeric, b: Numeric) -> Result<Numeric> {
    let negative = (a.mantissa < 0) != (b.mantissa < 0);
    let scale = a.scale.checked_add(b.scale).ok_or_else(overflow)?;
    fit(
        negative && a.mantissa != 0 && b.mantissa != 0,
        U256::mul(a.mantissa.unsigned_abs(), b.mantissa.unsigned_abs()),
        scale,
    )
}

/// PostgreSQL's weight (position of the leading base-10000 digit) and that leading digit.
fn weight_and_first(n: Numeric) -> (i64, u128) {
    let mag = n.mantissa.unsigned_abs();
    if mag == 0 {
        return (0, 0);
    }
    let exponent = i64::from(digits(mag)) - 1 - i64::from(n.scale);
    let weight = exponent.div_euclid(4);
    let shift = i64::from(n.scale) + 4 * weight;
    let first = if shift >= 0 { mag / pow10(shift as u32) } else { mag * pow10((-shift) as u32) };
    (weight, first)
}

/// The scale PostgreSQL gives `a / b` (`select_div_scale`).
pub fn div_scale(a: Numeric, b: Numeric) -> u32 {
    let (w1, f1) = weight_and_first(a);
    let (w2, f2) = weight_and_first(b);
    let mut qweight = w1 - w2;
    if f1 <= f2 {
        qweight -= 1;
    }
    let rscale = (MIN_SIG_DIGITS - qweight * 4).max(i64::from(a.scale)).max(i64::from(b.scale)).max(0);
    rscale.min(i64::from(SCALE_MAX)) as u32
}

/// `a / b` rounded (half away from zero) to [`div_scale`].
pub fn div(a: Numeric, b: Numeric) -> Result<Numeric> {
    div_to_scale(a, b, div_scale(a, b))
}

/// `a / b` rounded half away from zero to `rscale` fraction digits.
pub fn div_to_scale(a: Numeric, b: Numeric, rscale: u32) -> Result<Numeric> {
    if b.mantissa == 0 {
        return Err(division_by_zero());
    }
    let negative = (a.mantissa < 0) != (b.mantissa < 0) && a.mantissa != 0;
    let d = b.mantissa.unsigned_abs();
    // q = |a.m| * 10^k / |b.m|, where k brings the quotient to rscale.
    let k = i64::from(rscale) + i64::from(b.scale) - i64::from(a.scale);
    if k < 0 {
        // Only when rscale is below a's scale, which div_scale never picks.
        return round(div_to_scale(a, b, a.scale)?, i64::from(rscale));
    }
    let mut k = k as u32;
    let step = k.min(DIGITS_MAX);
    let (mut q, mut r) = U256::mul(a.mantissa.unsigned_abs(), pow10(step)).div_rem(d);
    k -= step;
    while k > 0 {
        let step = k.min(DIGITS_MAX);
        let qs = q.to_u128().filter(|q| *q < MANTISSA_LIMIT).ok_or_else(overflow)?;
        let (qr, rr) = U256::mul(r, pow10(step)).div_rem(d);
        q = add256(U256::mul(qs, pow10(step)), qr).ok_or_else(overflow)?;
        r = rr;
        k -= step;
    }
    if r.checked_mul(2).is_none_or(|r2| r2 >= d) {
        q = add256(q, U256::from_u128(1)).ok_or_else(overflow)?;
    }
    fit(negative, q, rscale)
}

fn add256(a: U256, b: U256) -> Option<U256> {
    let (lo, carry) = a.lo.overflowing_add(b.lo);
    let hi = a.hi.checked_add(b.hi)?.checked_add(u128::from(carry))?;
    Some(U256 { hi, lo })
}

/// `a % b` with the sign of `a`, at the larger scale (PostgreSQL's `numeric_mod`).
pub fn rem(a: Numeric, b: Numeric) -> Result<Numeric> {
    if b.mantissa == 0 {
        return Err(division_by_zero());
    }
    let (x, y, scale) = align(a, b)?;
    from_wide(x % y, scale)
}

/// Integer part of `a / b` (PostgreSQL's `div`), scale 0.
pub fn div_trunc(a: Numeric, b: Numeric) -> Result<Numeric> {
    if b.mantissa == 0 {
        return Err(division_by_zero());
    }
    let (x, y, _) = align(a, b)?;
    from_wide(x / y, 0)
}

/// Exact comparison.
pub fn cmp(a: Numeric, b: Numeric) -> Ordering {
    let sa = a.mantissa.signum();
    let sb = b.mantissa.signum();
    if sa != sb || sa == 0 {
        return sa.cmp(&sb);
    }
    let magnitude = cmp_magnitude(a, b);
    if sa < 0 {
        magnitude.reverse()
    } else {
        magnitude
    }
}

/// Compares |a| and |b|, both nonzero.
fn cmp_magnitude(a: Numeric, b: Numeric) -> Ordering {
    let (ma, mb) = (a.mantissa.unsigned_abs(), b.mantissa.unsigned_abs());
    let ea = i64::from(digits(ma)) - i64::from(a.scale);
    let eb = i64::from(digits(mb)) - i64::from(b.scale);
    if ea != eb {
        return ea.cmp(&eb);
    }
    // Same leading exponent: the scales differ by the difference in digit counts (<= 38).
    if a.scale >= b.scale {
        U256::from_u128(ma).cmp_with(U256::mul(mb, pow10(a.scale - b.scale)))
    } else {
        U256::mul(ma, pow10(b.scale - a.scale)).cmp_with(U256::from_u128(mb))
    }
}

impl U256 {
    fn cmp_with(self, other: U256) -> Ordering {
        (self.hi, self.lo).cmp(&(other.hi, other.lo))
    }
}

/// Rounds half away from zero to `scale` fraction digits; a negative `scale` rounds to tens,
/// hundreds, ... and gives scale 0.
pub fn round(n: Numeric, scale: i64) -> Result<Numeric> {
    round_with(n, scale, true)
}

/// Truncates toward zero to `scale` fraction digits (negative as for [`round`]).
pub fn trunc(n: Numeric, scale: i64) -> Result<Numeric> {
    round_with(n, scale, false)
}

fn round_with(n: Numeric, scale: i64, round_half: bool) -> Result<Numeric> {
    let target = scale.clamp(-i64::from(DIGITS_MAX) - 1, i64::from(SCALE_MAX));
    let negative = n.mantissa < 0;
    let mag = n.mantissa.unsigned_abs();
    if target >= i64::from(n.scale) {
        let up = (target - i64::from(n.scale)) as u32;
        if mag == 0 {
            return Ok(make(false, 0, target as u32));
        }
        if up > DIGITS_MAX {
            return Err(overflow());
        }
        return fit(negative, U256::mul(mag, pow10(up)), target as u32);
    }
    let drop = (i64::from(n.scale) - target) as u32;
    let kept = if drop > DIGITS_MAX {
        0
    } else {
        let p = pow10(drop);
        let (q, r) = (mag / p, mag % p);
        q + u128::from(round_half && r >= p - p / 2)
    };
    let result_scale = target.max(0) as u32;
    if target < 0 {
        // Back to scale 0: kept * 10^(-target).
        let up = (-target) as u32;
        if kept == 0 {
            return Ok(make(false, 0, 0));
        }
        return fit(negative, U256::mul(kept, pow10(up)), 0);
    }
    fit(negative && kept != 0, U256::from_u128(kept), result_scale)
}

/// The smallest integer not below `n`, scale 0.
pub fn ceil(n: Numeric) -> Result<Numeric> {
    let t = trunc(n, 0)?;
    if n.mantissa > 0 && cmp(t, n) == Ordering::Less {
        add(t, make(false, 1, 0))
    } else {
        Ok(make(t.mantissa < 0, t.mantissa.unsigned_abs(), 0))
    }
}

/// The largest integer not above `n`, scale 0.
pub fn floor(n: Numeric) -> Result<Numeric> {
    let t = trunc(n, 0)?;
    if n.mantissa < 0 && cmp(t, n) == Ordering::Greater {
        sub(t, make(false, 1, 0))
    } else {
        Ok(t)
    }
}

/// Strips trailing fraction zeros (1.500 -> 1.5, 2.0 -> 2).
pub fn normalize(n: Numeric) -> Numeric {
    let mut n = n;
    while n.scale > 0 && n.mantissa % 10 == 0 {
        n.mantissa /= 10;
        n.scale -= 1;
    }
    if n.mantissa == 0 {
        n.scale = 0;
    }
    n
}

/// The integer value if `n` is integral and fits `i128` after scaling.
pub fn to_integer(n: Numeric) -> Option<i128> {
    let n = normalize(n);
    (n.scale == 0).then_some(n.mantissa)
}

/// Rounds half away from zero to an integer. Rounding `99…9.5` up can exceed 38 digits;
/// that saturates, which every integer range check then rejects.
pub fn round_to_integer(n: Numeric) -> i128 {
    match round(n, 0) {
        Ok(r) => r.mantissa,
        Err(_) if n.mantissa < 0 => i128::MIN,
        Err(_) => i128::MAX,
    }
}

/// Text form: digits with exactly `scale` fraction digits (`1.50`, `-0.05`, `0`).
pub fn to_string(n: Numeric) -> String {
    let digits_str = n.mantissa.unsigned_abs().to_string();
    let scale = n.scale as usize;
    let mut out = String::with_capacity(digits_str.len() + scale + 3);
    if n.mantissa < 0 {
        out.push('-');
    }
    if scale == 0 {
        out.push_str(&digits_str);
    } else if digits_str.len() > scale {
        let (int, frac) = digits_str.split_at(digits_str.len() - scale);
        out.push_str(int);
        out.push('.');
        out.push_str(frac);
    } else {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', scale - digits_str.len()));
        out.push_str(&digits_str);
    }
    out
}

/// The nearest `f64` (correctly rounded, through the decimal text).
pub fn to_f64(n: Numeric) -> f64 {
    to_sci_string(n).parse().unwrap_or(f64::NAN)
}

/// The nearest `f32`.
pub fn to_f32(n: Numeric) -> f32 {
    to_sci_string(n).parse().unwrap_or(f32::NAN)
}

fn to_sci_string(n: Numeric) -> String {
    format!("{}e-{}", n.mantissa, n.scale)
}

/// Parses PostgreSQL's numeric input: optional sign, digits with an optional point, an
/// optional exponent, surrounding blanks. `None` on bad syntax; `Some(Err)` on overflow.
pub fn parse(s: &str) -> Option<Result<Numeric>> {
    let t = s.trim_matches(|c: char| c.is_ascii_whitespace());
    let (negative, body) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let (mantissa_part, exp_part) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int_part, frac_part) = match mantissa_part.find('.') {
        Some(i) => (&mantissa_part[..i], &mantissa_part[i + 1..]),
        None => (mantissa_part, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !int_part.bytes().chain(frac_part.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let exponent: i64 = match exp_part {
        Some(e) => {
            let digits_only = e.strip_prefix(['+', '-']).unwrap_or(e);
            if digits_only.is_empty() || !digits_only.bytes().all(|b| b.is_ascii_digit()) || digits_only.len() > 9 {
                return None;
            }
            e.parse().ok()?
        }
        None => 0,
    };
    let all: String = int_part.chars().chain(frac_part.chars()).collect();
    let significant = all.trim_start_matches('0');
    let mut scale = frac_part.len() as i64 - exponent;
    let mut kept: &str = significant;
    let mut round_up = false;
    if kept.len() > DIGITS_MAX as usize {
        // Round away fraction digits beyond 38 significant ones.
        let excess = kept.len() - DIGITS_MAX as usize;
        if (excess as i64) > scale {
            return Some(Err(overflow()));
        }
        round_up = kept.as_bytes()[DIGITS_MAX as usize] >= b'5';
        kept = &kept[..DIGITS_MAX as usize];
        scale -= excess as i64;
    }
    let mag: u128 = if kept.is_empty() { 0 } else { kept.parse().ok()? };
    let mag = U256::from_u128(mag + u128::from(round_up));
    if scale < 0 {
        let up = (-scale) as u64;
        if mag == U256::from_u128(0) {
            return Some(Ok(make(false, 0, 0)));
        }
        if up > u64::from(DIGITS_MAX) {
            return Some(Err(overflow()));
        }
        let m = mag.to_u128().unwrap_or(u128::MAX);
        return Some(fit(negative, U256::mul(m, pow10(up as u32)), 0));
    }
    if scale > i64::from(SCALE_MAX) {
        return Some(round(fit(negative, mag, scale.min(i64::from(u32::MAX)) as u32).ok()?, i64::from(SCALE_MAX)));
    }
    Some(fit(negative && mag != U256::from_u128(0), mag, scale as u32))
}

/// From a float, through PostgreSQL's `%.*g` with `digits` significant digits (15 for
/// double precision, 6 for real), so `0.1::float8::numeric` is `0.1`. `None` for NaN and
/// infinities.
pub fn from_float(f: f64, digits_wanted: usize) -> Option<Result<Numeric>> {
    if !f.is_finite() {
        return None;
    }
    let text = format!("{:.*e}", digits_wanted.saturating_sub(1), f);
    parse(&text).map(|r| r.map(normalize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_square_roots_round_half_up() {
        assert_eq!(U256::from_u128(0).sqrt_rounded(), 0);
        assert_eq!(U256::from_u128(16).sqrt_rounded(), 4);
        assert_eq!(U256::from_u128(20).sqrt_rounded(), 4); // 4.47
        assert_eq!(U256::from_u128(21).sqrt_rounded(), 5); // 4.58
                                                           // 10^76 is past u128; its root is 10^38.
        assert_eq!(U256::mul(pow10(38), pow10(38)).sqrt_rounded(), pow10(38));
        let big = pow10(37) * 3 + 12_345;
        assert_eq!(U256::mul(big, big).sqrt_rounded(), big);
        // sqrt(big² + big) is just below big + 1/2.
        assert_eq!(U256::mul(big, big + 1).sqrt_rounded(), big);
        assert_eq!(U256::mul(big + 1, big + 1).sqrt_rounded(), big + 1);
    }
}
