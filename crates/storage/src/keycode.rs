//! Order-preserving encoding of composite keys.
//!
//! The storage engine compares keys as plain byte strings (memcmp). Table rows are keyed by
//! their primary-key tuple, index entries by the indexed columns, MVCC versions by a key plus a
//! version number. This module turns such a tuple into bytes whose byte-wise order is the
//! tuple's logical order, and back:
//!
//! ```text
//!   tuple                  encoded key (hex)
//!   (-1, NULL)      ->     03 7F FF FF FF FF FF FF FF  01
//!   (1, 'a')        ->     03 80 00 00 00 00 00 00 01  06 61 00 01
//!                          \_tag_/\____ body ______/  \tag/\body__/
//! ```
//!
//! # Format
//!
//! A key is the concatenation of its parts. Each part is one tag byte, then a body:
//!
//! | part         | tag    | body                                                            |
//! |--------------|--------|-----------------------------------------------------------------|
//! | `Null`       | `0x01` | none                                                            |
//! | `Bool(b)`    | `0x02` | `0x00` for false, `0x01` for true                               |
//! | `Int(i)`     | `0x03` | 8 bytes big-endian, sign bit flipped                            |
//! | `Float(f)`   | `0x04` | 8 bytes big-endian IEEE 754 bits: negative, invert all bits;    |
//! |              |        | otherwise flip the sign bit. `-0.0` is stored as `0.0`, every   |
//! |              |        | NaN as the one quiet NaN `0x7FF8_0000_0000_0000`                |
//! | `Bytes(b)`   | `0x05` | the bytes with `0x00` escaped as `0x00 0xFF`, then `0x00 0x01`  |
//! | `Str(s)`     | `0x06` | the UTF-8 bytes, escaped and terminated like `Bytes`            |
//!
//! Tag `0x00` and tags above `0x06` are unused; `0x00` stays free for a value that must sort
//! before every other (say, a range bound below NULL).
//!
//! Version suffixes are raw, untagged 8-byte integers: [`encode_u64`] (big-endian, ascending)
//! and [`encode_u64_desc`] (bitwise NOT, big-endian, so the newest version sorts first).
//! Whoever appends them knows where they are; [`decode`] only reads tagged parts.
//!
//! # Why each choice
//!
//! - **The tag comes first**, so parts of different types order by tag: `Null < Bool < Int <
//!   Float < Bytes < Str`. There is no cross-type numeric comparison: `Int(5)` sorts before
//!   `Float(0.5)`. The SQL layer casts a column to one type before it builds a key.
//! - **NULL sorts first** (tag `0x01`). PostgreSQL's default for ascending order is NULLS LAST;
//!   that, NULLS FIRST/LAST options and descending columns are the job of the layer above,
//!   which maps values before encoding them. This layer has one direction: ascending.
//! - **Big-endian** makes the first byte the most significant, which is what memcmp looks at
//!   first.
//! - **Int flips the sign bit.** Two's complement puts negative numbers above positive ones
//!   when read as unsigned; flipping the top bit moves `i64::MIN` to `0x00..` and `i64::MAX`
//!   to `0xFF..`, an order-preserving map onto `u64`.
//! - **Float inverts negatives.** IEEE 754 bits are sign-magnitude: for positive floats the
//!   bits already grow with the value, so flipping the sign bit puts them above all negatives.
//!   Negative floats grow in magnitude as the bits grow, so inverting all bits reverses them.
//!   The result: `-inf < ... < -0 < +0 < ... < +inf < NaN`. NaN sorts last and all NaNs are
//!   equal, as in PostgreSQL. `-0.0 == 0.0` and NaN payloads do not matter logically, so they
//!   are normalised; otherwise two equal keys would have different bytes.
//! - **Strings are escaped and terminated, not length-prefixed.** A length prefix would sort
//!   `"b"` before `"aa"`. Without a terminator, `("a", "b")` and `("ab")` would collide, and a
//!   tuple would not compare element by element. The terminator `0x00 0x01` is smaller than
//!   any content byte (content `0x00` becomes `0x00 0xFF`, everything else is `>= 0x01` and
//!   never follows an escape byte), so a string sorts before its extensions:
//!   `"a" (61 00 01) < "a\0" (61 00 FF 00 01) < "ab" (61 62 00 01)`.
//! - **Encodings are canonical.** Every value has exactly one encoding, and [`decode`] rejects
//!   anything [`encode`] would not produce (a `-0.0`, a NaN payload, a bool body of `0x02`, an
//!   escape other than `0x00 0xFF`/`0x00 0x01`, invalid UTF-8). So equal keys are equal bytes,
//!   and `encode(decode(b)) == b` whenever decoding succeeds.
//!
//! A tuple that is a prefix of another encodes to a byte prefix of the other, so it sorts
//! first, matching lexicographic tuple order. [`prefix_end`] turns such a prefix into the
//! exclusive upper bound of a range scan over every key that extends it.
//!
//! # What it leaves out
//!
//! - Descending columns, NULLS LAST and collations (the layer above maps values first).
//! - Comparing numbers of different types (`Int` against `Float`).
//! - A limit on key length: the B-tree enforces its own maximum key size.

use crate::error::{Error, Result};

/// Tag of [`KeyPart::Null`].
const TAG_NULL: u8 = 0x01;
/// Tag of [`KeyPart::Bool`].
const TAG_BOOL: u8 = 0x02;
/// Tag of [`KeyPart::Int`].
const TAG_INT: u8 = 0x03;
/// Tag of [`KeyPart::Float`].
const TAG_FLOAT: u8 = 0x04;
/// Tag of [`KeyPart::Bytes`].
const TAG_BYTES: u8 = 0x05;
/// Tag of [`KeyPart::Str`].
const TAG_STR: u8 = 0x06;

/// Starts an escape sequence inside a byte string.
const ESCAPE: u8 = 0x00;
/// After [`ESCAPE`]: the content byte `0x00`.
const ESCAPED_ZERO: u8 = 0xFF;
/// After [`ESCAPE`]: the end of the byte string.
const TERMINATOR: u8 = 0x01;

/// The IEEE 754 sign bit, also the bit flipped in integers.
const SIGN_BIT: u64 = 1 << 63;
/// The one NaN that keys store (a positive quiet NaN), so all NaNs encode alike.
const CANONICAL_NAN_BITS: u64 = 0x7FF8_0000_0000_0000;
/// The bits of `-0.0`, which keys store as `0.0`.
const NEGATIVE_ZERO_BITS: u64 = SIGN_BIT;

/// The `file` named in corruption errors: the bytes are a key, wherever they were stored.
const ERROR_SOURCE: &str = "key";

/// One element of a composite key.
///
/// Parts of different variants order by variant, in declaration order (`Null` first); parts of
/// the same variant order by value. Floats use a total order: `-0.0 == 0.0`, and NaN is equal to
/// itself and greater than `+inf`.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyPart {
    /// SQL NULL. Sorts before every other part.
    Null,
    /// A boolean: `false < true`.
    Bool(bool),
    /// A signed 64-bit integer.
    Int(i64),
    /// A 64-bit float. Decoding yields `0.0` for `-0.0` and one canonical NaN for every NaN.
    Float(f64),
    /// An arbitrary byte string, compared byte by byte.
    Bytes(Vec<u8>),
    /// A UTF-8 string, compared by its bytes (which is code point order), without collation.
    Str(String),
}

/// Encodes a tuple of key parts so that byte order equals tuple order.
pub fn encode(parts: &[KeyPart]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in parts {
        encode_part(&mut out, part);
    }
    out
}

/// Appends the encoding of one part (tag, then body) to `out`.
pub fn encode_part(out: &mut Vec<u8>, part: &KeyPart) {
    match part {
        KeyPart::Null => out.push(TAG_NULL),
        KeyPart::Bool(b) => out.extend([TAG_BOOL, u8::from(*b)]),
        KeyPart::Int(i) => {
            out.push(TAG_INT);
            out.extend((*i as u64 ^ SIGN_BIT).to_be_bytes());
        }
        KeyPart::Float(f) => {
            out.push(TAG_FLOAT);
            out.extend(float_to_sortable(*f).to_be_bytes());
        }
        KeyPart::Bytes(bytes) => encode_bytes(out, bytes),
        KeyPart::Str(s) => {
            out.push(TAG_STR);
            encode_escaped(out, s.as_bytes());
        }
    }
}

/// Appends `bytes` as [`encode_part`] appends `KeyPart::Bytes(bytes)`, without the copy.
pub fn encode_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(TAG_BYTES);
    encode_escaped(out, bytes);
}

/// Appends `v` as 8 raw big-endian bytes, with no tag: larger values sort later. For version
/// suffixes after the tagged parts of a key; read it back with [`decode_u64`].
pub fn encode_u64(out: &mut Vec<u8>, v: u64) {
    out.extend(v.to_be_bytes());
}

/// Appends `!v` as 8 raw big-endian bytes, with no tag: larger values sort first, so a scan
/// meets the newest version of a key first. Read it back with [`decode_u64_desc`].
pub fn encode_u64_desc(out: &mut Vec<u8>, v: u64) {
    out.extend((!v).to_be_bytes());
}

/// Decodes a key made only of tagged parts (no raw `u64` suffix).
///
/// Fails with [`Error::Corrupted`] on an unknown tag, a truncated part, a bad escape, invalid
/// UTF-8 in a string, or any non-canonical encoding; the error names the part and its byte
/// offset. On success, `encode(&decode(bytes)?) == bytes`.
pub fn decode(bytes: &[u8]) -> Result<Vec<KeyPart>> {
    let mut parts = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let offset = bytes.len() - rest.len();
        let part = take_part(&mut rest).map_err(|detail| {
            let index = parts.len();
            Error::corrupted(ERROR_SOURCE, format!("part {index} at byte {offset}: {detail}"))
        })?;
        parts.push(part);
    }
    Ok(parts)
}

/// Decodes one tagged part from the front of `bytes` and advances `bytes` past it.
///
/// For keys that mix tagged parts with raw suffixes: decode the parts one at a time, then the
/// suffix with [`decode_u64`] or [`decode_u64_desc`]. On error `bytes` is left unchanged.
pub fn decode_part(bytes: &mut &[u8]) -> Result<KeyPart> {
    let mut rest = *bytes;
    let part = take_part(&mut rest).map_err(|detail| Error::corrupted(ERROR_SOURCE, detail))?;
    *bytes = rest;
    Ok(part)
}

/// Decodes a raw suffix written by [`encode_u64`] from the front of `bytes` and advances
/// `bytes` past it. On error `bytes` is left unchanged.
pub fn decode_u64(bytes: &mut &[u8]) -> Result<u64> {
    let raw = take_array(bytes).map_err(|detail| Error::corrupted(ERROR_SOURCE, detail))?;
    Ok(u64::from_be_bytes(raw))
}

/// Decodes a raw suffix written by [`encode_u64_desc`] from the front of `bytes` and advances
/// `bytes` past it. On error `bytes` is left unchanged.
pub fn decode_u64_desc(bytes: &mut &[u8]) -> Result<u64> {
    Ok(!decode_u64(bytes)?)
}

/// The smallest key greater than every key that starts with `prefix` (None if there is none,
/// i.e. prefix is all 0xFF). For range scans of a prefix.
///
/// Every key `k` that starts with `prefix` satisfies `prefix <= k < end`, and every key in that
/// range starts with `prefix`. The empty prefix counts as all `0xFF`: it has no upper bound.
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    // Trailing 0xFF bytes cannot be incremented; a key may extend them with anything, so the
    // bound must differ from the prefix before them.
    let last = prefix.iter().rposition(|&b| b != 0xFF)?;
    let mut end = prefix[..=last].to_vec();
    end[last] += 1;
    assert!(end.as_slice() > prefix, "prefix_end must lie above its prefix");
    Some(end)
}

/// Maps a float to a `u64` whose unsigned order is the floats' total key order.
fn float_to_sortable(f: f64) -> u64 {
    let bits = if f.is_nan() {
        CANONICAL_NAN_BITS
    } else if f == 0.0 {
        0 // Both zeros become +0.0.
    } else {
        f.to_bits()
    };
    if bits & SIGN_BIT != 0 {
        !bits
    } else {
        bits ^ SIGN_BIT
    }
}

/// Inverts [`float_to_sortable`], rejecting bit patterns it never produces.
fn sortable_to_float(sortable: u64) -> Result<f64, String> {
    // A set top bit means the float was positive (its sign bit was flipped on).
    let bits = if sortable & SIGN_BIT != 0 { sortable ^ SIGN_BIT } else { !sortable };
    let f = f64::from_bits(bits);
    if bits == NEGATIVE_ZERO_BITS {
        return Err("float -0.0 is not canonical (stored as 0.0)".into());
    }
    if f.is_nan() && bits != CANONICAL_NAN_BITS {
        return Err(format!("float NaN with bits {bits:#018x} is not canonical"));
    }
    Ok(f)
}

/// Appends `bytes` with `0x00` escaped, then the terminator.
fn encode_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() + 2);
    for &b in bytes {
        out.push(b);
        if b == ESCAPE {
            out.push(ESCAPED_ZERO);
        }
    }
    out.extend([ESCAPE, TERMINATOR]);
}

/// Decodes one part from the front of `input`, advancing it. Errors describe the problem
/// relative to the part; callers add where the part was.
fn take_part(input: &mut &[u8]) -> Result<KeyPart, String> {
    let (&tag, mut body) = input.split_first().ok_or("empty input, expected a tag byte")?;
    let part = match tag {
        TAG_NULL => KeyPart::Null,
        TAG_BOOL => {
            let (&b, rest) = body.split_first().ok_or("bool truncated: no value byte")?;
            body = rest;
            match b {
                0x00 => KeyPart::Bool(false),
                0x01 => KeyPart::Bool(true),
                other => return Err(format!("bool value byte {other:#04x}, expected 0x00 or 0x01")),
            }
        }
        TAG_INT => KeyPart::Int((u64::from_be_bytes(take_array(&mut body)?) ^ SIGN_BIT) as i64),
        TAG_FLOAT => KeyPart::Float(sortable_to_float(u64::from_be_bytes(take_array(&mut body)?))?),
        TAG_BYTES => KeyPart::Bytes(take_escaped(&mut body)?),
        TAG_STR => {
            let bytes = take_escaped(&mut body)?;
            let s = String::from_utf8(bytes).map_err(|e| format!("string is not valid UTF-8: {}", e.utf8_error()))?;
            KeyPart::Str(s)
        }
        other => return Err(format!("unknown tag {other:#04x}")),
    };
    *input = body;
    Ok(part)
}

/// Takes exactly 8 bytes from the front of `input`, advancing it only on success.
fn take_array(input: &mut &[u8]) -> Result<[u8; 8], String> {
    let (head, rest) =
        input.split_first_chunk::<8>().ok_or_else(|| format!("truncated: expected 8 bytes, found {}", input.len()))?;
    *input = rest;
    Ok(*head)
}

/// Takes an escaped, terminated byte string from the front of `input`, advancing it past the
/// terminator.
fn take_escaped(input: &mut &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut rest = *input;
    loop {
        // Copy the run up to the next escape byte in one go, then read the escape.
        let run = rest.iter().position(|&b| b == ESCAPE).ok_or("byte string truncated: no terminator")?;
        out.extend_from_slice(&rest[..run]);
        match rest.get(run + 1) {
            Some(&ESCAPED_ZERO) => {
                out.push(0x00);
                rest = &rest[run + 2..];
            }
            Some(&TERMINATOR) => {
                *input = &rest[run + 2..];
                return Ok(out);
            }
            Some(&other) => return Err(format!("bad escape 0x00 {other:#04x}, expected 0x00 0xFF or 0x00 0x01")),
            None => return Err("byte string truncated after escape byte 0x00".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cmp::Ordering;

    // Plain reference model of the order: variant first, then value.

    fn rank(part: &KeyPart) -> u8 {
        match part {
            KeyPart::Null => 0,
            KeyPart::Bool(_) => 1,
            KeyPart::Int(_) => 2,
            KeyPart::Float(_) => 3,
            KeyPart::Bytes(_) => 4,
            KeyPart::Str(_) => 5,
        }
    }

    fn float_cmp(a: f64, b: f64) -> Ordering {
        match (a.is_nan(), b.is_nan()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            // partial_cmp already treats -0.0 == 0.0.
            (false, false) => a.partial_cmp(&b).unwrap(),
        }
    }

    fn part_cmp(a: &KeyPart, b: &KeyPart) -> Ordering {
        use KeyPart::*;
        match (a, b) {
            (Null, Null) => Ordering::Equal,
            (Bool(x), Bool(y)) => x.cmp(y),
            (Int(x), Int(y)) => x.cmp(y),
            (Float(x), Float(y)) => float_cmp(*x, *y),
            (Bytes(x), Bytes(y)) => x.cmp(y),
            (Str(x), Str(y)) => x.as_bytes().cmp(y.as_bytes()),
            _ => rank(a).cmp(&rank(b)),
        }
    }

    fn logical_cmp(a: &[KeyPart], b: &[KeyPart]) -> Ordering {
        for (x, y) in a.iter().zip(b) {
            let ord = part_cmp(x, y);
            if ord != Ordering::Equal {
                return ord;
            }
        }
        a.len().cmp(&b.len())
    }

    /// What decoding should return for `part`: floats normalised, compared by bits.
    fn same_after_roundtrip(original: &KeyPart, decoded: &KeyPart) -> bool {
        match (original, decoded) {
            (KeyPart::Float(a), KeyPart::Float(b)) => {
                let want = if a.is_nan() {
                    CANONICAL_NAN_BITS
                } else if *a == 0.0 {
                    0
                } else {
                    a.to_bits()
                };
                want == b.to_bits()
            }
            _ => original == decoded,
        }
    }

    // Strategies. Small value domains on purpose, so equal values and shared prefixes occur.

    fn arb_float() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>(),
            prop::sample::select(vec![
                0.0,
                -0.0,
                1.0,
                -1.0,
                0.5,
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::NAN,
                f64::from_bits(0xFFF8_0000_0000_0000), // negative quiet NaN
                f64::from_bits(0x7FF0_0000_0000_0001), // signalling NaN
                f64::from_bits(1),                     // smallest subnormal
                -f64::from_bits(1),
                f64::MIN_POSITIVE,
                f64::MAX,
                f64::MIN,
            ]),
        ]
    }

    fn arb_int() -> impl Strategy<Value = i64> {
        prop_oneof![any::<i64>(), -3i64..3, prop::sample::select(vec![i64::MIN, i64::MAX])]
    }

    fn arb_bytes() -> impl Strategy<Value = Vec<u8>> {
        let byte = prop_oneof![Just(0x00u8), Just(0x01), Just(0xFF), Just(b'a'), any::<u8>()];
        prop::collection::vec(byte, 0..6)
    }

    fn arb_str() -> impl Strategy<Value = String> {
        r"[\x00\x01ab\xFF\x{7FF}\x{10FFFF}]{0,5}"
    }

    /// Values of one kind (0 = null, 1 = bool, ..., 5 = str), sometimes NULL like a nullable
    /// column.
    fn arb_part_of(kind: u8) -> BoxedStrategy<KeyPart> {
        let value = match kind {
            0 => Just(KeyPart::Null).boxed(),
            1 => any::<bool>().prop_map(KeyPart::Bool).boxed(),
            2 => arb_int().prop_map(KeyPart::Int).boxed(),
            3 => arb_float().prop_map(KeyPart::Float).boxed(),
            4 => arb_bytes().prop_map(KeyPart::Bytes).boxed(),
            _ => arb_str().prop_map(KeyPart::Str).boxed(),
        };
        prop_oneof![1 => Just(KeyPart::Null), 5 => value].boxed()
    }

    fn arb_part() -> BoxedStrategy<KeyPart> {
        (0u8..6).prop_flat_map(arb_part_of).boxed()
    }

    fn arb_tuple() -> impl Strategy<Value = Vec<KeyPart>> {
        prop::collection::vec(arb_part(), 0..=4)
    }

    /// Two tuples with the same type at each position, like two keys of one table.
    fn arb_same_schema_pair() -> impl Strategy<Value = (Vec<KeyPart>, Vec<KeyPart>)> {
        prop::collection::vec(0u8..6, 1..=4).prop_flat_map(|kinds| {
            let a: Vec<_> = kinds.iter().map(|&k| arb_part_of(k)).collect();
            let b: Vec<_> = kinds.iter().map(|&k| arb_part_of(k)).collect();
            (a, b)
        })
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(" ")
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn order_matches_same_schema((a, b) in arb_same_schema_pair()) {
            prop_assert_eq!(encode(&a).cmp(&encode(&b)), logical_cmp(&a, &b));
        }

        #[test]
        fn order_matches_mixed(a in arb_tuple(), b in arb_tuple()) {
            prop_assert_eq!(encode(&a).cmp(&encode(&b)), logical_cmp(&a, &b));
        }

        #[test]
        fn roundtrip(parts in arb_tuple()) {
            let bytes = encode(&parts);
            let decoded = decode(&bytes).unwrap();
            prop_assert_eq!(decoded.len(), parts.len());
            for (original, got) in parts.iter().zip(&decoded) {
                prop_assert!(same_after_roundtrip(original, got), "{:?} became {:?}", original, got);
            }
            prop_assert_eq!(encode(&decoded), bytes);
        }

        #[test]
        fn roundtrip_with_version_suffix(parts in arb_tuple(), version in any::<u64>(), desc in any::<bool>()) {
            let mut bytes = encode(&parts);
            if desc { encode_u64_desc(&mut bytes, version) } else { encode_u64(&mut bytes, version) }
            let mut rest = bytes.as_slice();
            for _ in 0..parts.len() {
                decode_part(&mut rest).unwrap();
            }
            let got = if desc { decode_u64_desc(&mut rest) } else { decode_u64(&mut rest) };
            prop_assert_eq!(got.unwrap(), version);
            prop_assert!(rest.is_empty());
        }

        #[test]
        fn u64_order(a in any::<u64>(), b in any::<u64>()) {
            let (mut ea, mut eb) = (Vec::new(), Vec::new());
            encode_u64(&mut ea, a);
            encode_u64(&mut eb, b);
            prop_assert_eq!(ea.cmp(&eb), a.cmp(&b));
            let (mut da, mut db) = (Vec::new(), Vec::new());
            encode_u64_desc(&mut da, a);
            encode_u64_desc(&mut db, b);
            prop_assert_eq!(da.cmp(&db), b.cmp(&a));
        }

        #[test]
        fn prefix_end_bounds_every_extension(
            prefix in prop::collection::vec(prop_oneof![Just(0xFFu8), any::<u8>()], 0..6),
            suffix in prop::collection::vec(prop_oneof![Just(0xFFu8), any::<u8>()], 0..6),
        ) {
            let key = [prefix.as_slice(), suffix.as_slice()].concat();
            prop_assert!(prefix <= key);
            match prefix_end(&prefix) {
                Some(end) => prop_assert!(key < end, "{} !< {}", hex(&key), hex(&end)),
                None => prop_assert!(prefix.iter().all(|&b| b == 0xFF)),
            }
        }

        #[test]
        fn prefix_end_is_tight(
            prefix in prop::collection::vec(prop_oneof![Just(0xFFu8), any::<u8>()], 0..4),
            other in prop::collection::vec(prop_oneof![Just(0xFFu8), Just(0x00), any::<u8>()], 0..6),
        ) {
            // A key lies in [prefix, prefix_end) exactly when it starts with prefix.
            let end = prefix_end(&prefix);
            let in_range = prefix <= other && end.as_ref().is_none_or(|e| &other < e);
            prop_assert_eq!(in_range, other.starts_with(&prefix));
        }

        #[test]
        fn prefix_end_of_tuple_prefix(a in arb_tuple(), b in arb_tuple()) {
            // Scanning the encoded prefix (a) finds exactly the tuples that extend a.
            let prefix = encode(&a);
            let key = encode(&[a.clone(), b].concat());
            prop_assert!(prefix <= key);
            if let Some(end) = prefix_end(&prefix) {
                prop_assert!(key < end);
            }
        }

        #[test]
        fn decode_garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..48)) {
            // Any accepted input is canonical.
            if let Ok(parts) = decode(&bytes) {
                prop_assert_eq!(encode(&parts), bytes);
            }
        }

        #[test]
        fn decode_mutated_never_panics(
            parts in arb_tuple(),
            index in any::<prop::sample::Index>(),
            byte in any::<u8>(),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = encode(&parts);
            if !bytes.is_empty() {
                let i = index.index(bytes.len());
                bytes[i] = byte;
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            if let Ok(decoded) = decode(&bytes) {
                prop_assert_eq!(encode(&decoded), bytes);
            }
        }
    }

    /// The examples in docs/keycode.md, byte for byte.
    #[test]
    fn documented_examples() {
        use KeyPart::*;
        let cases: Vec<(Vec<KeyPart>, &str)> = vec![
            (vec![Int(1), Str("a".into())], "03 80 00 00 00 00 00 00 01 06 61 00 01"),
            (vec![Int(-1), Null], "03 7F FF FF FF FF FF FF FF 01"),
            (vec![Null], "01"),
            (vec![Bool(false), Bool(true)], "02 00 02 01"),
            (vec![Int(0)], "03 80 00 00 00 00 00 00 00"),
            (vec![Int(i64::MIN)], "03 00 00 00 00 00 00 00 00"),
            (vec![Float(1.0)], "04 BF F0 00 00 00 00 00 00"),
            (vec![Float(-1.0)], "04 40 0F FF FF FF FF FF FF"),
            (vec![Float(0.0)], "04 80 00 00 00 00 00 00 00"),
            (vec![Float(-0.0)], "04 80 00 00 00 00 00 00 00"),
            (vec![Float(f64::NEG_INFINITY)], "04 00 0F FF FF FF FF FF FF"),
            (vec![Float(f64::INFINITY)], "04 FF F0 00 00 00 00 00 00"),
            (vec![Float(f64::NAN)], "04 FF F8 00 00 00 00 00 00"),
            (vec![Bytes(vec![0x61, 0x00, 0x62])], "05 61 00 FF 62 00 01"),
            (vec![Str(String::new())], "06 00 01"),
            (vec![Str("a".into()), Str("b".into())], "06 61 00 01 06 62 00 01"),
            (vec![Str("ab".into())], "06 61 62 00 01"),
        ];
        for (parts, want) in cases {
            assert_eq!(hex(&encode(&parts)), want, "{parts:?}");
        }

        let mut key = encode(&[Str("k".into())]);
        encode_u64_desc(&mut key, 5);
        assert_eq!(hex(&key), "06 6B 00 01 FF FF FF FF FF FF FF FA");
    }

    #[test]
    fn strings_sort_before_their_extensions() {
        let s = |v: &str| encode(&[KeyPart::Str(v.into())]);
        assert!(s("a") < s("a\0"));
        assert!(s("a\0") < s("a\u{1}"));
        assert!(s("a\u{1}") < s("ab"));
        // ("a", "b") vs ("ab"): element by element, "a" < "ab".
        assert!(encode(&[KeyPart::Str("a".into()), KeyPart::Str("b".into())]) < s("ab"));
    }

    #[test]
    fn decode_rejects_malformed() {
        let bad: &[(&[u8], &str)] = &[
            (&[0x00], "unknown tag 0x00"),
            (&[0x07], "unknown tag 0x07"),
            (&[0x02], "bool truncated"),
            (&[0x02, 0x02], "bool value byte 0x02"),
            (&[0x03, 0x80, 0x00], "truncated: expected 8 bytes, found 2"),
            (&[0x04, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], "-0.0 is not canonical"),
            (&[0x04, 0xFF, 0xF8, 0, 0, 0, 0, 0, 1], "NaN with bits"),
            (&[0x04, 0x00, 0x07, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], "NaN with bits"),
            (&[0x05, 0x61], "no terminator"),
            (&[0x05, 0x61, 0x00], "truncated after escape"),
            (&[0x05, 0x00, 0x02, 0x00, 0x01], "bad escape 0x00 0x02"),
            (&[0x06, 0xC3, 0x28, 0x00, 0x01], "not valid UTF-8"),
            (&[0x01, 0x06, 0xFF, 0x00, 0x01], "part 1 at byte 1: string is not valid UTF-8"),
        ];
        for (bytes, want) in bad {
            let err = decode(bytes).unwrap_err();
            assert!(err.is_corruption(), "{err}");
            assert!(err.to_string().contains(want), "{}: {err} lacks {want:?}", hex(bytes));
        }
    }

    #[test]
    fn failed_decode_leaves_input_unchanged() {
        let bytes: &[u8] = &[0x05, 0x61];
        let mut rest = bytes;
        assert!(decode_part(&mut rest).is_err());
        assert_eq!(rest, bytes);
        let mut short: &[u8] = &[1, 2, 3];
        assert!(decode_u64(&mut short).is_err());
        assert_eq!(short, &[1, 2, 3]);
        let mut empty: &[u8] = &[];
        assert!(decode_part(&mut empty).unwrap_err().to_string().contains("empty input"));
    }

    #[test]
    fn prefix_end_examples() {
        assert_eq!(prefix_end(&[0x06, 0x61, 0x00, 0x01]), Some(vec![0x06, 0x61, 0x00, 0x02]));
        assert_eq!(prefix_end(&[0x01, 0xFF, 0xFF]), Some(vec![0x02]));
        assert_eq!(prefix_end(&[0xFF, 0xFF]), None);
        assert_eq!(prefix_end(&[]), None);
    }
}
