//! JSON and JSONB, in their text form.
//!
//! A `json` value keeps the text it was written in (checked to be JSON); a `jsonb` value is
//! kept in its normal form, which is how PostgreSQL prints jsonb:
//!
//! ```text
//!   '{"b": [1, 2.50], "a": 1e2, "a": "x\u00e9"}'::jsonb   ─►   {"a": "xé", "b": [1, 2.50]}
//!     object keys sorted (shorter first, then by bytes), a repeated key's last value kept,
//!     numbers as NUMERIC prints them, \u escapes decoded, ", " and ": " between items
//! ```
//!
//! Both are `Value::Json`. The operators read either form: `->` and `#>` give the text of
//! the part they select, which is in normal form when the whole is. Containment (`@>`),
//! key tests (`?`, `?|`, `?&`), `||` and `-` compare and build normal forms.
//!
//! Left out: json's duplicate keys are all kept but `->` finds the last, as jsonb would;
//! numbers beyond NUMERIC's 38 digits keep the text they were written in; jsonpath.

use super::{cast, text, to_text};
use crate::error::{codes, Error, Result};
use crate::types::{DataType, Value};

/// How deeply arrays and objects may nest (PostgreSQL's limit is its stack depth).
pub const JSON_DEPTH_MAX: usize = 1_000;

/// A parsed JSON value and the text it was parsed from.
#[derive(Debug, Clone)]
pub struct Json<'a> {
    /// The value's own text in the document.
    pub src: &'a str,
    /// What it is.
    pub kind: Kind<'a>,
}

/// The kinds of JSON value.
#[derive(Debug, Clone)]
pub enum Kind<'a> {
    /// null
    Null,
    /// true / false
    Bool(bool),
    /// A number, as written.
    Number(&'a str),
    /// A string, escapes decoded.
    String(String),
    /// An array.
    Array(Vec<Json<'a>>),
    /// An object's members, in the order written.
    Object(Vec<(String, Json<'a>)>),
}

fn invalid(detail: impl Into<String>) -> Error {
    Error::new(codes::INVALID_TEXT_REPRESENTATION, "invalid input syntax for type json").with_detail(detail)
}

/// Parses a JSON document (22P02 if it is not one).
pub fn parse(s: &str) -> Result<Json<'_>> {
    let mut p = Parser { s, pos: 0 };
    p.ws();
    let v = p.value(0)?;
    p.ws();
    if p.pos != s.len() {
        return Err(p.unexpected());
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.as_bytes().get(self.pos) {
            self.pos += 1;
        }
    }

    fn unexpected(&self) -> Error {
        match self.s[self.pos..].chars().next() {
            None => invalid("The input string ended unexpectedly."),
            Some(_) => {
                let token: String = self.s[self.pos..]
                    .chars()
                    .take_while(|c| !c.is_whitespace() && !",:]}".contains(*c))
                    .take(32)
                    .collect();
                let token = if token.is_empty() { self.s[self.pos..].chars().take(1).collect() } else { token };
                invalid(format!("Token \"{token}\" is invalid."))
            }
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.s.as_bytes().get(self.pos) == Some(&b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json<'a>> {
        if depth > JSON_DEPTH_MAX {
            return Err(Error::new(codes::STATEMENT_TOO_COMPLEX, "stack depth limit exceeded")
                .with_detail(format!("JSON nests deeper than {JSON_DEPTH_MAX} levels.")));
        }
        let start = self.pos;
        let kind = match self.s.as_bytes().get(self.pos) {
            None => return Err(self.unexpected()),
            Some(b'{') => {
                self.pos += 1;
                let mut members = Vec::new();
                self.ws();
                if !self.eat(b'}') {
                    loop {
                        self.ws();
                        if self.s.as_bytes().get(self.pos) != Some(&b'"') {
                            return Err(self.unexpected());
                        }
                        let key = self.string()?;
                        self.ws();
                        if !self.eat(b':') {
                            return Err(self.unexpected());
                        }
                        self.ws();
                        let v = self.value(depth + 1)?;
                        members.push((key, v));
                        self.ws();
                        if self.eat(b'}') {
                            break;
                        }
                        if !self.eat(b',') {
                            return Err(self.unexpected());
                        }
                    }
                }
                Kind::Object(members)
            }
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                self.ws();
                if !self.eat(b']') {
                    loop {
                        self.ws();
                        items.push(self.value(depth + 1)?);
                        self.ws();
                        if self.eat(b']') {
                            break;
                        }
                        if !self.eat(b',') {
                            return Err(self.unexpected());
                        }
                    }
                }
                Kind::Array(items)
            }
            Some(b'"') => Kind::String(self.string()?),
            Some(b'-' | b'0'..=b'9') => Kind::Number(self.number()?),
            Some(_) => {
                let rest = &self.s[self.pos..];
                let word_end = rest.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(rest.len());
                let kind = match &rest[..word_end] {
                    "true" => Kind::Bool(true),
                    "false" => Kind::Bool(false),
                    "null" => Kind::Null,
                    _ => return Err(self.unexpected()),
                };
                self.pos += word_end;
                kind
            }
        };
        Ok(Json { src: &self.s[start..self.pos], kind })
    }

    fn number(&mut self) -> Result<&'a str> {
        let b = self.s.as_bytes();
        let start = self.pos;
        let digits = |p: &mut usize| {
            let from = *p;
            while b.get(*p).is_some_and(u8::is_ascii_digit) {
                *p += 1;
            }
            *p - from
        };
        let mut p = self.pos;
        if b.get(p) == Some(&b'-') {
            p += 1;
        }
        let int_start = p;
        let n = digits(&mut p);
        let bad = n == 0 || (n > 1 && b[int_start] == b'0');
        let mut bad = bad;
        if b.get(p) == Some(&b'.') {
            p += 1;
            bad |= digits(&mut p) == 0;
        }
        if let Some(b'e' | b'E') = b.get(p) {
            p += 1;
            if let Some(b'+' | b'-') = b.get(p) {
                p += 1;
            }
            bad |= digits(&mut p) == 0;
        }
        bad |= b.get(p).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'.');
        if bad {
            return Err(self.unexpected());
        }
        self.pos = p;
        Ok(&self.s[start..p])
    }

    fn hex4(&mut self) -> Result<u32> {
        let h = self.s.get(self.pos..self.pos + 4).filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()));
        let Some(h) = h else {
            return Err(invalid("\"\\u\" must be followed by four hexadecimal digits."));
        };
        self.pos += 4;
        Ok(u32::from_str_radix(h, 16).expect("four hex digits"))
    }

    /// A string starting at the opening quote, escapes decoded.
    fn string(&mut self) -> Result<String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let rest = &self.s[self.pos..];
            let stop = rest.find(|c: char| c == '"' || c == '\\' || (c as u32) < 0x20);
            let Some(stop) = stop else { return Err(invalid("The input string ended unexpectedly.")) };
            out.push_str(&rest[..stop]);
            self.pos += stop;
            match self.s.as_bytes()[self.pos] {
                b'"' => {
                    self.pos += 1;
                    return Ok(out);
                }
                b'\\' => {
                    self.pos += 1;
                    let Some(&e) = self.s.as_bytes().get(self.pos) else {
                        return Err(invalid("The input string ended unexpectedly."));
                    };
                    self.pos += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let mut c = self.hex4()?;
                            if (0xD800..0xDC00).contains(&c) {
                                if !self.s[self.pos..].starts_with("\\u") {
                                    return Err(invalid("Unicode high surrogate must not follow a high surrogate."));
                                }
                                self.pos += 2;
                                let low = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&low) {
                                    return Err(invalid("Unicode low surrogate must follow a high surrogate."));
                                }
                                c = 0x10000 + ((c - 0xD800) << 10) + (low - 0xDC00);
                            } else if (0xDC00..0xE000).contains(&c) {
                                return Err(invalid("Unicode low surrogate must follow a high surrogate."));
                            }
                            if c == 0 {
                                return Err(Error::new(
                                    codes::UNTRANSLATABLE_CHARACTER,
                                    "unsupported Unicode escape sequence",
                                )
                                .with_detail("\\u0000 cannot be converted to text."));
                            }
                            out.push(char::from_u32(c).expect("a scalar value"));
                        }
                        _ => {
                            let c = self.s[self.pos - 1..].chars().next().unwrap_or(' ');
                            return Err(invalid(format!("Escape sequence \"\\{c}\" is invalid.")));
                        }
                    }
                }
                c => {
                    return Err(invalid(format!("Character with value 0x{c:02x} must be escaped.")));
                }
            }
        }
    }
}

/// Checks that `s` is JSON: the `json` type's input.
pub fn check(s: &str) -> Result<String> {
    parse(s)?;
    Ok(s.to_string())
}

/// The normal form of a JSON document: the `jsonb` type's input.
pub fn normalize(s: &str) -> Result<String> {
    let mut out = String::with_capacity(s.len());
    write_normal(&parse(s)?, &mut out);
    Ok(out)
}

/// Writes `s` as a JSON string (PostgreSQL's escape_json).
pub fn quote(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A number as NUMERIC prints it (its text as written if NUMERIC cannot hold it).
fn normal_number(n: &str) -> String {
    match cast::parse_text(n, &DataType::Numeric { precision: None, scale: None }) {
        Ok(v) => to_text(&v).unwrap_or_else(|| n.to_string()),
        Err(_) => n.to_string(),
    }
}

/// The members of an object in jsonb's order, a repeated key's last value kept.
fn normal_members<'j, 'a>(members: &'j [(String, Json<'a>)]) -> Vec<&'j (String, Json<'a>)> {
    let mut sorted: Vec<(usize, &(String, Json))> = members.iter().enumerate().collect();
    sorted.sort_by(|(i, (a, _)), (j, (b, _))| a.len().cmp(&b.len()).then(a.cmp(b)).then(j.cmp(i)));
    sorted.dedup_by(|(_, (a, _)), (_, (b, _))| a == b);
    sorted.into_iter().map(|(_, m)| m).collect()
}

fn write_normal(v: &Json, out: &mut String) {
    match &v.kind {
        Kind::Null => out.push_str("null"),
        Kind::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Kind::Number(n) => out.push_str(&normal_number(n)),
        Kind::String(s) => quote(s, out),
        Kind::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_normal(item, out);
            }
            out.push(']');
        }
        Kind::Object(members) => {
            out.push('{');
            for (i, (k, v)) in normal_members(members).into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                quote(k, out);
                out.push_str(": ");
                write_normal(v, out);
            }
            out.push('}');
        }
    }
}

/// The JSON text of a document value (json or jsonb, or text read as JSON); None for NULL.
fn doc_text(v: &Value) -> Option<&str> {
    match v {
        Value::Json(s) | Value::Text(s) => Some(s),
        _ => None,
    }
}

fn wrong_type(what: &str, v: &Value) -> Error {
    Error::new(codes::UNDEFINED_FUNCTION, format!("{what} does not accept type {}", super::type_name(v)))
}

/// The part of `doc` that `key` selects: an object's member by name, an array's element by
/// position (from 0; negative counts from the end). None if there is none.
fn select<'j, 'a>(doc: &'j Json<'a>, key: &Value) -> Option<&'j Json<'a>> {
    match (&doc.kind, key) {
        (Kind::Object(members), Value::Text(k)) => members.iter().rev().find(|(name, _)| name == k).map(|(_, v)| v),
        (Kind::Array(items), Value::Int2(_) | Value::Int4(_) | Value::Int8(_)) => {
            let i = super::int_of(key);
            let i = if i < 0 { items.len() as i64 + i } else { i };
            usize::try_from(i).ok().and_then(|i| items.get(i))
        }
        (Kind::Array(items), Value::Text(k)) => k.trim().parse::<i64>().ok().and_then(|i| {
            let i = if i < 0 { items.len() as i64 + i } else { i };
            usize::try_from(i).ok().and_then(|i| items.get(i))
        }),
        _ => None,
    }
}

/// A selected part as the operator gives it: JSON for `->`, text for `->>` (a string's
/// characters, NULL for null, the text of anything else).
fn part(v: Option<&Json>, as_text: bool) -> Value {
    match v {
        None => Value::Null,
        Some(j) if !as_text => Value::Json(j.src.to_string()),
        Some(Json { kind: Kind::Null, .. }) => Value::Null,
        Some(Json { kind: Kind::String(s), .. }) => Value::Text(s.clone()),
        Some(j) => Value::Text(j.src.to_string()),
    }
}

/// `doc -> key` and `doc ->> key`.
pub fn get(doc: &Value, key: &Value, as_text: bool) -> Result<Value> {
    let (Some(d), false) = (doc_text(doc), key.is_null()) else { return Ok(Value::Null) };
    let parsed = parse(d)?;
    Ok(part(select(&parsed, key), as_text))
}

/// `doc #> path` and `doc #>> path` (path: a text array).
pub fn get_path(doc: &Value, path: &Value, as_text: bool) -> Result<Value> {
    let (Some(d), Some(p)) = (doc_text(doc), doc_text(path)) else { return Ok(Value::Null) };
    let path = super::array::parse(p)?;
    let parsed = parse(d)?;
    let mut at = &parsed;
    for step in &path.items {
        let Some(step) = step else { return Ok(Value::Null) };
        match select(at, &Value::Text(step.clone())) {
            Some(next) => at = next,
            None => return Ok(Value::Null),
        }
    }
    Ok(part(Some(at), as_text))
}

/// Whether two numbers are equal as NUMERIC (1.0 and 1 are).
fn numbers_equal(a: &str, b: &str) -> bool {
    a == b || normal_number(a) == normal_number(b) || {
        let t = DataType::Numeric { precision: None, scale: None };
        match (cast::parse_text(a, &t), cast::parse_text(b, &t)) {
            (Ok(x), Ok(y)) => super::compare(&x, &y) == Some(std::cmp::Ordering::Equal),
            _ => false,
        }
    }
}

fn equal(a: &Json, b: &Json) -> bool {
    match (&a.kind, &b.kind) {
        (Kind::Null, Kind::Null) => true,
        (Kind::Bool(x), Kind::Bool(y)) => x == y,
        (Kind::Number(x), Kind::Number(y)) => numbers_equal(x, y),
        (Kind::String(x), Kind::String(y)) => x == y,
        (Kind::Array(x), Kind::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| equal(a, b)),
        (Kind::Object(_), Kind::Object(_)) => contains(a, b, false) && contains(b, a, false),
        _ => false,
    }
}

/// jsonb containment: every member of `b` is in `a`, every element of `b` matches one of
/// `a`'s; at the top level an array contains a scalar it has as an element.
fn contains(a: &Json, b: &Json, top: bool) -> bool {
    match (&a.kind, &b.kind) {
        (Kind::Object(am), Kind::Object(bm)) => normal_members(bm)
            .into_iter()
            .all(|(k, bv)| am.iter().rev().find(|(ak, _)| ak == k).is_some_and(|(_, av)| contains(av, bv, false))),
        (Kind::Array(ai), Kind::Array(bi)) => bi.iter().all(|b| {
            ai.iter().any(|a| match (&a.kind, &b.kind) {
                (Kind::Array(_), Kind::Array(_)) | (Kind::Object(_), Kind::Object(_)) => contains(a, b, false),
                _ => equal(a, b),
            })
        }),
        (Kind::Array(ai), Kind::Null | Kind::Bool(_) | Kind::Number(_) | Kind::String(_)) if top => {
            ai.iter().any(|a| equal(a, b))
        }
        (Kind::Array(_) | Kind::Object(_), _) | (_, Kind::Array(_) | Kind::Object(_)) => false,
        _ => equal(a, b),
    }
}

/// `a @> b` (`contained` false) and `a <@ b` (true).
pub fn contains_op(a: &Value, b: &Value, contained: bool) -> Result<Value> {
    let (Some(x), Some(y)) = (doc_text(a), doc_text(b)) else { return Ok(Value::Null) };
    let (x, y) = (parse(x)?, parse(y)?);
    Ok(Value::Bool(if contained { contains(&y, &x, true) } else { contains(&x, &y, true) }))
}

/// Whether `key` is a top-level key of an object, or a string element of an array.
fn has_key(doc: &Json, key: &str) -> bool {
    match &doc.kind {
        Kind::Object(members) => members.iter().any(|(k, _)| k == key),
        Kind::Array(items) => items.iter().any(|i| matches!(&i.kind, Kind::String(s) if s == key)),
        Kind::String(s) => s == key,
        _ => false,
    }
}

/// `doc ? key`, `doc ?| keys` (`all` false) and `doc ?& keys` (`all` true).
pub fn exists(doc: &Value, keys: &Value, many: Option<bool>) -> Result<Value> {
    let (Some(d), Some(k)) = (doc_text(doc), doc_text(keys)) else { return Ok(Value::Null) };
    let parsed = parse(d)?;
    Ok(Value::Bool(match many {
        None => has_key(&parsed, k),
        Some(all) => {
            let keys = super::array::parse(k)?;
            let mut present = keys.items.iter().flatten().map(|k| has_key(&parsed, k));
            if all {
                present.all(|p| p)
            } else {
                present.any(|p| p)
            }
        }
    }))
}

fn normal_text(v: &Json) -> String {
    let mut out = String::new();
    write_normal(v, &mut out);
    out
}

/// `a || b` on jsonb: objects merge (b's members win), arrays concatenate, a scalar or an
/// object joins an array as an element.
pub fn concat(a: &Value, b: &Value) -> Result<Value> {
    let (Some(x), Some(y)) = (doc_text(a), doc_text(b)) else { return Ok(Value::Null) };
    let (x, y) = (parse(x)?, parse(y)?);
    let elements = |j: &Json| -> Vec<String> {
        match &j.kind {
            Kind::Array(items) => items.iter().map(normal_text).collect(),
            _ => vec![normal_text(j)],
        }
    };
    let out = match (&x.kind, &y.kind) {
        (Kind::Object(am), Kind::Object(bm)) => {
            let mut all: Vec<(String, Json)> = am.clone();
            all.extend(bm.iter().cloned());
            let mut out = String::new();
            write_normal(&Json { src: "", kind: Kind::Object(all) }, &mut out);
            out
        }
        _ => {
            let mut items = elements(&x);
            items.extend(elements(&y));
            format!("[{}]", items.join(", "))
        }
    };
    Ok(Value::Json(out))
}

/// `doc - key` (a member of an object, or every equal string element of an array) and
/// `doc - n` (an array's element).
pub fn delete(doc: &Value, key: &Value) -> Result<Value> {
    let Some(d) = doc_text(doc) else { return Ok(Value::Null) };
    if key.is_null() {
        return Ok(Value::Null);
    }
    let parsed = parse(d)?;
    let out = match (&parsed.kind, key) {
        (Kind::Object(members), Value::Text(k)) => {
            let kept: Vec<(String, Json)> = members.iter().filter(|(name, _)| name != k).cloned().collect();
            normal_text(&Json { src: "", kind: Kind::Object(kept) })
        }
        (Kind::Array(items), Value::Text(k)) => {
            let kept: Vec<String> =
                items.iter().filter(|i| !matches!(&i.kind, Kind::String(s) if s == k)).map(normal_text).collect();
            format!("[{}]", kept.join(", "))
        }
        (Kind::Array(items), Value::Int2(_) | Value::Int4(_) | Value::Int8(_)) => {
            let n = items.len() as i64;
            let i = super::int_of(key);
            let i = if i < 0 { n + i } else { i };
            let kept: Vec<String> =
                items.iter().enumerate().filter(|(j, _)| *j as i64 != i).map(|(_, v)| normal_text(v)).collect();
            format!("[{}]", kept.join(", "))
        }
        (Kind::Object(_), _) => {
            return Err(Error::new(codes::INVALID_PARAMETER_VALUE, "cannot delete from object using integer index"))
        }
        _ => return Err(Error::new(codes::INVALID_PARAMETER_VALUE, "cannot delete from scalar")),
    };
    Ok(Value::Json(out))
}

/// A value as JSON (to_json): numbers and booleans as themselves, JSON as itself, arrays
/// (text in array form, typed by `array_elem`) as JSON arrays, everything else as a string
/// of its text (timestamps in ISO 8601 with a `T`, as PostgreSQL writes them).
pub fn to_json(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int2(_) | Value::Int4(_) | Value::Int8(_) | Value::Numeric(_) => {
            out.push_str(&to_text(v).unwrap_or_default())
        }
        Value::Float4(_) | Value::Float8(_) => {
            let t = to_text(v).unwrap_or_default();
            if t.parse::<f64>().is_ok_and(f64::is_finite) {
                out.push_str(&t);
            } else {
                quote(&t, out);
            }
        }
        Value::Json(s) => out.push_str(s),
        Value::Timestamp(_) | Value::TimestampTz(_) => {
            let t = to_text(v).unwrap_or_default();
            let t = t.replacen(' ', "T", 1);
            // PostgreSQL writes the offset with minutes: +00:00.
            let t = match t.rfind(['+', '-']) {
                Some(i) if matches!(v, Value::TimestampTz(_)) && i > 10 && t.len() - i == 3 => format!("{t}:00"),
                _ => t,
            };
            quote(&t, out)
        }
        other => quote(&to_text(other).unwrap_or_default(), out),
    }
}

/// An array value (its text form, elements of type `elem`) as a JSON array.
pub fn array_to_json(s: &str, elem: &DataType) -> Result<String> {
    let a = super::array::parse(s)?;
    let mut out = String::from("[");
    for (i, item) in a.items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match item {
            None => out.push_str("null"),
            Some(t) => match cast::parse_text(t, elem) {
                Ok(v) if !matches!(elem, DataType::Text | DataType::Varchar(_) | DataType::Char(_)) => {
                    to_json(&v, &mut out)
                }
                _ => quote(t, &mut out),
            },
        }
    }
    out.push(']');
    Ok(out)
}

/// `to_json` / `to_jsonb` of one value (jsonb: in normal form).
pub fn value_to_json(v: &Value, jsonb: bool) -> Result<Value> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    let mut out = String::new();
    to_json(v, &mut out);
    Ok(Value::Json(if jsonb { normalize(&out)? } else { out }))
}

/// json_build_object / jsonb_build_object: key, value, key, value, ...
pub fn build_object(args: &[Value], jsonb: bool) -> Result<Value> {
    if !args.len().is_multiple_of(2) {
        return Err(Error::new(codes::INVALID_PARAMETER_VALUE, "argument list must have even number of elements")
            .with_hint("The arguments of json_build_object() must consist of alternating keys and values."));
    }
    let mut out = String::from("{");
    for (i, pair) in args.chunks(2).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let Some(key) = (!pair[0].is_null()).then(|| to_text(&pair[0])).flatten() else {
            return Err(Error::new(
                codes::INVALID_PARAMETER_VALUE,
                format!("argument {}: key must not be null", 2 * i + 1),
            ));
        };
        quote(&key, &mut out);
        out.push_str(" : ");
        to_json(&pair[1], &mut out);
    }
    out.push('}');
    Ok(Value::Json(if jsonb { normalize(&out)? } else { out }))
}

/// json_build_array / jsonb_build_array.
pub fn build_array(args: &[Value], jsonb: bool) -> Result<Value> {
    let mut out = String::from("[");
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        to_json(a, &mut out);
    }
    out.push(']');
    Ok(Value::Json(if jsonb { normalize(&out)? } else { out }))
}

/// json_typeof / jsonb_typeof.
pub fn type_of(doc: &Value) -> Result<Value> {
    let Some(d) = doc_text(doc) else { return Ok(Value::Null) };
    Ok(Value::Text(
        match parse(d)?.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "boolean",
            Kind::Number(_) => "number",
            Kind::String(_) => "string",
            Kind::Array(_) => "array",
            Kind::Object(_) => "object",
        }
        .into(),
    ))
}

/// json_array_length / jsonb_array_length.
pub fn array_length(doc: &Value) -> Result<Value> {
    let Some(d) = doc_text(doc) else { return Ok(Value::Null) };
    match parse(d)?.kind {
        Kind::Array(items) => Ok(Value::Int4(i32::try_from(items.len()).unwrap_or(i32::MAX))),
        Kind::Object(_) => Err(Error::new(codes::INVALID_PARAMETER_VALUE, "cannot get array length of a non-array")),
        _ => Err(Error::new(codes::INVALID_PARAMETER_VALUE, "cannot get array length of a scalar")),
    }
}

/// jsonb_strip_nulls: objects lose their members whose value is null, at every depth.
pub fn strip_nulls(doc: &Value) -> Result<Value> {
    fn strip(j: &Json, out: &mut String) {
        match &j.kind {
            Kind::Object(members) => {
                out.push('{');
                let kept: Vec<_> =
                    normal_members(members).into_iter().filter(|(_, v)| !matches!(v.kind, Kind::Null)).collect();
                for (i, (k, v)) in kept.into_iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    quote(k, out);
                    out.push_str(": ");
                    strip(v, out);
                }
                out.push('}');
            }
            Kind::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    strip(item, out);
                }
                out.push(']');
            }
            _ => write_normal(j, out),
        }
    }
    let Some(d) = doc_text(doc) else { return Ok(Value::Null) };
    let mut out = String::new();
    strip(&parse(d)?, &mut out);
    Ok(Value::Json(out))
}

/// jsonb_pretty: four spaces an indent, as PostgreSQL.
pub fn pretty(doc: &Value) -> Result<Value> {
    fn write(j: &Json, depth: usize, out: &mut String) {
        let pad = |n: usize, out: &mut String| out.push_str(&"    ".repeat(n));
        match &j.kind {
            Kind::Object(members) if members.is_empty() => {
                out.push_str("{\n");
                pad(depth, out);
                out.push('}');
            }
            Kind::Array(items) if items.is_empty() => {
                out.push_str("[\n");
                pad(depth, out);
                out.push(']');
            }
            Kind::Object(members) => {
                out.push_str("{\n");
                let members = normal_members(members);
                let last = members.len() - 1;
                for (i, (k, v)) in members.into_iter().enumerate() {
                    pad(depth + 1, out);
                    quote(k, out);
                    out.push_str(": ");
                    write(v, depth + 1, out);
                    out.push_str(if i == last { "\n" } else { ",\n" });
                }
                pad(depth, out);
                out.push('}');
            }
            Kind::Array(items) => {
                out.push_str("[\n");
                for (i, item) in items.iter().enumerate() {
                    pad(depth + 1, out);
                    write(item, depth + 1, out);
                    out.push_str(if i + 1 == items.len() { "\n" } else { ",\n" });
                }
                pad(depth, out);
                out.push(']');
            }
            _ => write_normal(j, out),
        }
    }
    let Some(d) = doc_text(doc) else { return Ok(Value::Null) };
    let mut out = String::new();
    write(&parse(d)?, 0, &mut out);
    Ok(Value::Text(out))
}

/// jsonb_set(target, path, new [, create_missing]): `new` in place of what `path` selects;
/// a missing last key of an object (or position past an array's end) is added when
/// `create_missing` (the default).
pub fn set(args: &[Value]) -> Result<Value> {
    let (Some(d), Some(p), Some(new)) =
        (args.first().and_then(doc_text), args.get(1).and_then(doc_text), args.get(2).and_then(doc_text))
    else {
        return Ok(Value::Null);
    };
    let create = !matches!(args.get(3), Some(Value::Bool(false)));
    let path: Vec<String> = super::array::parse(p)?.items.into_iter().map(Option::unwrap_or_default).collect();
    let doc = parse(d)?;
    let new = normalize(new)?;
    fn rebuild(j: &Json, path: &[String], new: &str, create: bool, out: &mut String) {
        let Some((step, rest)) = path.split_first() else {
            out.push_str(new);
            return;
        };
        match &j.kind {
            Kind::Object(members) => {
                let members = normal_members(members);
                let found = members.iter().any(|(k, _)| k == step);
                let mut parts: Vec<(String, String)> = members
                    .iter()
                    .map(|(k, v)| {
                        let mut s = String::new();
                        if k == step {
                            rebuild(v, rest, new, create, &mut s);
                        } else {
                            write_normal(v, &mut s);
                        }
                        (k.clone(), s)
                    })
                    .collect();
                if !found && create && rest.is_empty() {
                    parts.push((step.clone(), new.to_string()));
                    parts.sort_by(|(a, _), (b, _)| a.len().cmp(&b.len()).then(a.cmp(b)));
                }
                out.push('{');
                for (i, (k, v)) in parts.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    quote(k, out);
                    out.push_str(": ");
                    out.push_str(v);
                }
                out.push('}');
            }
            Kind::Array(items) => {
                let n = items.len() as i64;
                let at = step.trim().parse::<i64>().ok().map(|i| if i < 0 { n + i } else { i });
                let mut parts: Vec<String> = items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let mut s = String::new();
                        if Some(i as i64) == at {
                            rebuild(v, rest, new, create, &mut s);
                        } else {
                            write_normal(v, &mut s);
                        }
                        s
                    })
                    .collect();
                if create && rest.is_empty() {
                    match at {
                        Some(i) if i >= n => parts.push(new.to_string()),
                        Some(i) if i < 0 => parts.insert(0, new.to_string()),
                        _ => {}
                    }
                }
                out.push('[');
                out.push_str(&parts.join(", "));
                out.push(']');
            }
            _ => write_normal(j, out),
        }
    }
    let mut out = String::new();
    rebuild(&doc, &path, &new, create, &mut out);
    Ok(Value::Json(out))
}

/// The rows of the set-returning functions over a document: jsonb_array_elements[_text],
/// jsonb_object_keys, jsonb_each[_text] (and their json_ forms). None if `name` is not one.
pub fn table_function(name: &str, args: &[Value]) -> Option<Result<Vec<Vec<Value>>>> {
    let bare = name.strip_prefix("jsonb_").or_else(|| name.strip_prefix("json_"))?;
    if !matches!(bare, "array_elements" | "array_elements_text" | "object_keys" | "each" | "each_text") {
        return None;
    }
    let Some(d) = args.first().and_then(doc_text) else { return Some(Ok(Vec::new())) };
    let as_text = bare.ends_with("_text");
    let jsonb = name.starts_with("jsonb_");
    let value = |j: &Json| -> Value {
        if as_text {
            part(Some(j), true)
        } else if jsonb {
            Value::Json(normal_text(j))
        } else {
            Value::Json(j.src.to_string())
        }
    };
    Some((|| {
        let doc = parse(d)?;
        let rows = match (bare, &doc.kind) {
            ("array_elements" | "array_elements_text", Kind::Array(items)) => {
                items.iter().map(|i| vec![value(i)]).collect()
            }
            ("array_elements" | "array_elements_text", Kind::Object(_)) => {
                return Err(Error::new(codes::INVALID_PARAMETER_VALUE, "cannot extract elements from an object"))
            }
            ("array_elements" | "array_elements_text", _) => {
                return Err(Error::new(codes::INVALID_PARAMETER_VALUE, "cannot extract elements from a scalar"))
            }
            ("object_keys", Kind::Object(members)) => {
                let keys: Vec<&String> = if jsonb {
                    normal_members(members).into_iter().map(|(k, _)| k).collect()
                } else {
                    members.iter().map(|(k, _)| k).collect()
                };
                keys.into_iter().map(|k| vec![Value::Text(k.clone())]).collect()
            }
            ("each" | "each_text", Kind::Object(members)) => {
                let pairs: Vec<&(String, Json)> =
                    if jsonb { normal_members(members) } else { members.iter().collect() };
                pairs.into_iter().map(|(k, v)| vec![Value::Text(k.clone()), value(v)]).collect()
            }
            (_, Kind::Array(_)) => {
                return Err(Error::new(codes::INVALID_PARAMETER_VALUE, format!("cannot call {name} on an array")))
            }
            _ => return Err(Error::new(codes::INVALID_PARAMETER_VALUE, format!("cannot call {name} on a scalar"))),
        };
        Ok(rows)
    })())
}

/// The columns of those set-returning functions, or None.
pub fn table_function_columns(name: &str) -> Option<Vec<(String, DataType)>> {
    let jsonb = name.starts_with("jsonb_");
    let doc = if jsonb { DataType::Jsonb } else { DataType::Json };
    let bare = name.strip_prefix("jsonb_").or_else(|| name.strip_prefix("json_"))?;
    Some(match bare {
        "array_elements" => vec![("value".into(), doc)],
        "array_elements_text" => vec![("value".into(), DataType::Text)],
        "object_keys" => vec![(name.into(), DataType::Text)],
        "each" => vec![("key".into(), DataType::Text), ("value".into(), doc)],
        "each_text" => vec![("key".into(), DataType::Text), ("value".into(), DataType::Text)],
        _ => return None,
    })
}

/// The scalar functions over JSON; None if `name` is not one. `jsonb` functions give
/// normal forms.
pub fn call(name: &str, args: &[Value]) -> Option<Result<Value>> {
    let one = || args.first().cloned().unwrap_or(Value::Null);
    Some(match name {
        "to_json" => value_to_json(&one(), false),
        "to_jsonb" => value_to_json(&one(), true),
        "json_build_object" => build_object(args, false),
        "jsonb_build_object" => build_object(args, true),
        "json_build_array" => build_array(args, false),
        "jsonb_build_array" => build_array(args, true),
        "json_typeof" | "jsonb_typeof" => type_of(&one()),
        "json_array_length" | "jsonb_array_length" => array_length(&one()),
        "jsonb_strip_nulls" | "json_strip_nulls" => strip_nulls(&one()),
        "jsonb_pretty" => pretty(&one()),
        "jsonb_set" => set(args),
        "json_extract_path" | "jsonb_extract_path" | "json_extract_path_text" | "jsonb_extract_path_text" => {
            let (doc, steps) = args.split_first()?;
            let items: Vec<Option<String>> = steps.iter().map(text::to_text).collect();
            if items.iter().any(Option::is_none) {
                return Some(Ok(Value::Null));
            }
            get_path(doc, &Value::Text(super::array::format(&items)), name.ends_with("_text"))
        }
        "json_object_field" | "jsonb_object_field" => get(&one(), args.get(1)?, false),
        "json_object_field_text" | "jsonb_object_field_text" => get(&one(), args.get(1)?, true),
        "json_array_element" | "jsonb_array_element" => get(&one(), args.get(1)?, false),
        "json_array_element_text" | "jsonb_array_element_text" => get(&one(), args.get(1)?, true),
        _ => return None,
    })
}

/// Whether `name` is one of the scalar JSON functions of [`call`].
pub fn is_function(name: &str) -> bool {
    matches!(
        name,
        "to_json"
            | "to_jsonb"
            | "json_typeof"
            | "jsonb_typeof"
            | "json_array_length"
            | "jsonb_array_length"
            | "jsonb_strip_nulls"
            | "json_strip_nulls"
            | "jsonb_pretty"
            | "jsonb_set"
            | "json_extract_path"
            | "jsonb_extract_path"
            | "json_extract_path_text"
            | "jsonb_extract_path_text"
            | "json_object_field"
            | "jsonb_object_field"
            | "json_object_field_text"
            | "jsonb_object_field_text"
            | "json_array_element"
            | "jsonb_array_element"
            | "json_array_element_text"
            | "jsonb_array_element_text"
    ) || is_builder(name)
}

/// Whether `name` builds JSON from its arguments, taking NULL ones as JSON null.
pub fn is_builder(name: &str) -> bool {
    matches!(name, "json_build_object" | "jsonb_build_object" | "json_build_array" | "jsonb_build_array")
}

/// Wrong-type error for an operator on a non-JSON value.
pub fn not_json(op: &str, v: &Value) -> Error {
    wrong_type(&format!("operator {op}"), v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_form_matches_postgres() {
        let n = |s: &str| normalize(s).unwrap();
        assert_eq!(
            n(r#"{"b": [1, 2.50], "a": 1e2, "a": "x\u00e9", "aa": null}"#),
            r#"{"a": "xé", "b": [1, 2.50], "aa": null}"#
        );
        assert_eq!(n(" [ ] "), "[]");
        assert_eq!(n("{}"), "{}");
        assert_eq!(n(r#""a\"b\\c\n""#), r#""a\"b\\c\n""#);
        assert_eq!(n("-0"), "0");
        assert_eq!(n("1.5E-2"), "0.015");
        assert!(normalize("{\"a\":1,}").is_err());
        assert!(normalize("[1 2]").is_err());
        assert!(normalize("01").is_err());
        assert!(normalize("\"\\u0000\"").is_err());
        assert_eq!(normalize("nul").unwrap_err().code, codes::INVALID_TEXT_REPRESENTATION);
    }

    #[test]
    fn operators_select_contain_and_merge() {
        let j = |s: &str| Value::Json(normalize(s).unwrap());
        let t = |s: &str| Value::Text(s.into());
        let doc = j(r#"{"a": {"b": [10, 20]}, "c": "x"}"#);
        assert_eq!(get(&doc, &t("a"), false).unwrap(), Value::Json(r#"{"b": [10, 20]}"#.into()));
        assert_eq!(get(&doc, &t("c"), true).unwrap(), t("x"));
        assert_eq!(get_path(&doc, &t("{a,b,-1}"), true).unwrap(), t("20"));
        assert_eq!(get(&doc, &t("zz"), false).unwrap(), Value::Null);
        assert_eq!(contains_op(&doc, &j(r#"{"a": {"b": [20]}}"#), false).unwrap(), Value::Bool(true));
        assert_eq!(contains_op(&doc, &j(r#"{"c": "y"}"#), false).unwrap(), Value::Bool(false));
        assert_eq!(contains_op(&j("[1, 2]"), &j("1"), false).unwrap(), Value::Bool(true));
        assert_eq!(contains_op(&j("[1.0]"), &j("[1]"), false).unwrap(), Value::Bool(true));
        assert_eq!(exists(&doc, &t("c"), None).unwrap(), Value::Bool(true));
        assert_eq!(exists(&doc, &t("{q,a}"), Some(false)).unwrap(), Value::Bool(true));
        assert_eq!(exists(&doc, &t("{q,a}"), Some(true)).unwrap(), Value::Bool(false));
        assert_eq!(concat(&j(r#"{"a": 1}"#), &j(r#"{"a": 2, "b": 3}"#)).unwrap(), j(r#"{"a": 2, "b": 3}"#));
        assert_eq!(concat(&j("[1]"), &j("2")).unwrap(), j("[1, 2]"));
        assert_eq!(delete(&j(r#"{"a": 1, "b": 2}"#), &t("a")).unwrap(), j(r#"{"b": 2}"#));
        assert_eq!(delete(&j("[1, 2, 3]"), &Value::Int4(-1)).unwrap(), j("[1, 2]"));
        assert_eq!(set(&[doc.clone(), t("{a,b,0}"), j("5")]).unwrap(), j(r#"{"a": {"b": [5, 20]}, "c": "x"}"#));
        assert_eq!(set(&[j(r#"{"a": 1}"#), t("{b}"), j("[]")]).unwrap(), j(r#"{"a": 1, "b": []}"#));
        // jsonb_pretty, as PostgreSQL 15 prints it.
        assert_eq!(
            pretty(&j(r#"{"a": [1, {"b": null}], "c": {}, "d": []}"#)).unwrap(),
            t("{\n    \"a\": [\n        1,\n        {\n            \"b\": null\n        }\n    ],\n    \"c\": {\n    },\n    \"d\": [\n    ]\n}")
        );
    }
}
