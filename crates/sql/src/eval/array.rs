//! Arrays, in PostgreSQL's text form.
//!
//! Bulwark has no array type. The catalog's array columns (`pg_constraint.conkey`,
//! `pg_index.indkey`, ...), `ARRAY(subquery)` and `current_schemas()` give text in the form
//! PostgreSQL prints arrays in, and the operators and functions here read that form, so
//! `x = ANY ('{1,2,3}')`, `conkey[1]` and `array_to_string(...)` behave as in PostgreSQL:
//!
//! ```text
//!   {a,b,"c d",NULL}     a one-dimensional array (lower bound 1); NULL unquoted is NULL
//!   1 2 3                int2vector / oidvector (lower bound 0), as `pg_index.indkey`
//! ```
//!
//! Left out: multi-dimensional arrays, explicit bounds (`[0:2]={...}`), typed elements (the
//! elements are text until an operator reads them as its other operand's type).

use super::binary;
use crate::ast::BinaryOp;
use crate::error::{codes, Error, Result};
use crate::types::Value;

/// The most elements one array may have (PostgreSQL's MaxArraySize is far larger; Bulwark's
/// arrays only come from the catalog and small literals).
pub const ARRAY_ELEMENTS_MAX: usize = 1 << 20;

/// A parsed array: its lower bound and its elements (None for NULL).
#[derive(Debug, Clone, PartialEq)]
pub struct TextArray {
    /// The first subscript: 1, or 0 for the vector form.
    pub lower: i64,
    /// The elements.
    pub items: Vec<Option<String>>,
}

fn malformed(s: &str, why: &str) -> Error {
    Error::new(codes::INVALID_TEXT_REPRESENTATION, format!("malformed array literal: \"{s}\""))
        .with_detail(why.to_string())
}

/// Reads an array's text form (see the module doc).
pub fn parse(s: &str) -> Result<TextArray> {
    let t = s.trim();
    let Some(body) = t.strip_prefix('{') else {
        // int2vector / oidvector: integers separated by spaces.
        let items: Vec<Option<String>> = t.split_ascii_whitespace().map(|w| Some(w.to_string())).collect();
        if items.iter().flatten().any(|w| w.parse::<i64>().is_err()) {
            return Err(malformed(s, "Array value must start with \"{\" or dimension information."));
        }
        return Ok(TextArray { lower: 0, items });
    };
    let Some(body) = body.strip_suffix('}') else { return Err(malformed(s, "Junk after closing right brace.")) };
    let mut items = Vec::new();
    if body.trim().is_empty() {
        return Ok(TextArray { lower: 1, items });
    }
    let mut chars = body.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            chars.next();
        }
        let item = match chars.peek() {
            Some('{') => return Err(Error::unsupported("multi-dimensional arrays")),
            Some('"') => {
                chars.next();
                let mut out = String::new();
                loop {
                    match chars.next() {
                        None => return Err(malformed(s, "Unexpected end of input.")),
                        Some('\\') => out.extend(chars.next()),
                        Some('"') => break,
                        Some(c) => out.push(c),
                    }
                }
                Some(out)
            }
            _ => {
                let mut out = String::new();
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    chars.next();
                    if c == '\\' {
                        out.extend(chars.next());
                    } else {
                        out.push(c);
                    }
                }
                let out = out.trim_end().to_string();
                if out.is_empty() {
                    return Err(malformed(s, "Unexpected \",\" character."));
                }
                if out.eq_ignore_ascii_case("null") {
                    None
                } else {
                    Some(out)
                }
            }
        };
        items.push(item);
        if items.len() > ARRAY_ELEMENTS_MAX {
            return Err(Error::new(codes::PROGRAM_LIMIT_EXCEEDED, "array size exceeds the maximum allowed"));
        }
        while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            chars.next();
        }
        match chars.next() {
            None => break,
            Some(',') => continue,
            Some(_) => return Err(malformed(s, "Unexpected array element.")),
        }
    }
    Ok(TextArray { lower: 1, items })
}

/// PostgreSQL's text form of a one-dimensional array of `items` (None is NULL).
pub fn format(items: &[Option<String>]) -> String {
    let mut out = String::from("{");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match item {
            None => out.push_str("NULL"),
            Some(s) => {
                let quote = s.is_empty()
                    || s.eq_ignore_ascii_case("null")
                    || s.chars().any(|c| matches!(c, '{' | '}' | ',' | '"' | '\\') || c.is_ascii_whitespace());
                if quote {
                    out.push('"');
                    for c in s.chars() {
                        if c == '"' || c == '\\' {
                            out.push('\\');
                        }
                        out.push(c);
                    }
                    out.push('"');
                } else {
                    out.push_str(s);
                }
            }
        }
    }
    out.push('}');
    out
}

/// The text array in `v`, or None for NULL; 42809 if `v` is not text.
fn array_arg(v: &Value, what: &str) -> Result<Option<TextArray>> {
    match v {
        Value::Null => Ok(None),
        Value::Text(s) => parse(s).map(Some),
        other => Err(Error::new(
            codes::WRONG_OBJECT_TYPE,
            format!("{what} requires an array, not type {}", super::type_name(other)),
        )),
    }
}

/// `left op ANY (array)` / `left op ALL (array)` with SQL's NULL rules.
pub fn any_all(op: BinaryOp, left: Value, array: &Value, all: bool) -> Result<Value> {
    let what = if all { "op ALL (array)" } else { "op ANY (array)" };
    let Some(array) = array_arg(array, what)? else { return Ok(Value::Null) };
    let mut saw_null = false;
    for item in array.items {
        let result = match item {
            None => Value::Null,
            Some(s) => binary(op, left.clone(), Value::Text(s))?,
        };
        match super::truth(&result)? {
            None => saw_null = true,
            Some(b) if b != all => return Ok(Value::Bool(b)),
            Some(_) => {}
        }
    }
    Ok(if saw_null { Value::Null } else { Value::Bool(all) })
}

/// `array[index]`: the element as text, NULL outside the bounds.
pub fn subscript(array: &Value, index: &Value) -> Result<Value> {
    let Some(array) = array_arg(array, "subscript")? else { return Ok(Value::Null) };
    let index = match super::cast(index.clone(), &crate::types::DataType::Int8, false)? {
        Value::Int8(i) => i,
        _ => return Ok(Value::Null),
    };
    let at = index.checked_sub(array.lower).and_then(|i| usize::try_from(i).ok());
    Ok(at.and_then(|i| array.items.get(i).cloned()).flatten().map_or(Value::Null, Value::Text))
}

/// The array functions: `array` (ARRAY[...]), array_to_string, string_to_array,
/// array_position, array_upper, array_lower, array_length, cardinality. None if `name` is
/// not one of them.
pub fn call(name: &str, args: &[Value]) -> Option<Result<Value>> {
    let int = |v: Option<&Value>| match v {
        Some(Value::Int2(i)) => Some(i64::from(*i)),
        Some(Value::Int4(i)) => Some(i64::from(*i)),
        Some(Value::Int8(i)) => Some(*i),
        _ => None,
    };
    let result = match (name, args) {
        ("array", items) if items.len() > ARRAY_ELEMENTS_MAX => Err(Error::new(
            codes::PROGRAM_LIMIT_EXCEEDED,
            format!("array size exceeds the maximum allowed ({ARRAY_ELEMENTS_MAX})"),
        )),
        ("array", items) => Ok(Value::Text(format(&items.iter().map(super::to_text).collect::<Vec<_>>()))),
        ("array_to_string", [a, sep] | [a, sep, _]) => (|| {
            let (Some(array), Value::Text(sep)) = (array_arg(a, name)?, sep) else { return Ok(Value::Null) };
            let null = match args.get(2) {
                Some(Value::Text(n)) => Some(n.as_str()),
                _ => None,
            };
            let parts: Vec<&str> = array.items.iter().filter_map(|i| i.as_deref().or(null)).collect();
            Ok(Value::Text(parts.join(sep)))
        })(),
        ("array_upper" | "array_lower" | "array_length", [a, _]) => (|| {
            let Some(array) = array_arg(a, name)? else { return Ok(Value::Null) };
            if int(args.get(1)) != Some(1) || array.items.is_empty() {
                return Ok(Value::Null);
            }
            let n = array.items.len() as i64;
            Ok(Value::Int4(
                i32::try_from(match name {
                    "array_upper" => array.lower + n - 1,
                    "array_lower" => array.lower,
                    _ => n,
                })
                .unwrap_or(i32::MAX),
            ))
        })(),
        // string_to_array(text, delimiter [, null string]): a NULL delimiter splits into
        // characters, an empty one keeps the text whole.
        ("string_to_array", [s, delim] | [s, delim, _]) => (|| {
            let Some(s) = super::to_text(s) else { return Ok(Value::Null) };
            if s.is_empty() {
                return Ok(Value::Text("{}".into()));
            }
            let parts: Vec<String> = match super::to_text(delim) {
                None => s.chars().map(String::from).collect(),
                Some(d) if d.is_empty() => vec![s],
                Some(d) => s.split(d.as_str()).map(str::to_string).collect(),
            };
            if parts.len() > ARRAY_ELEMENTS_MAX {
                return Err(Error::new(codes::PROGRAM_LIMIT_EXCEEDED, "array size exceeds the maximum allowed"));
            }
            let null = args.get(2).and_then(super::to_text);
            Ok(Value::Text(format(
                &parts.into_iter().map(|p| if Some(&p) == null.as_ref() { None } else { Some(p) }).collect::<Vec<_>>(),
            )))
        })(),
        // array_position(array, value): the first subscript whose element equals the value.
        ("array_position", [a, v]) => (|| {
            let Some(array) = array_arg(a, name)? else { return Ok(Value::Null) };
            let found = array.items.iter().position(|item| match (item, v) {
                (None, Value::Null) => true,
                (Some(item), v) if !v.is_null() => {
                    super::binary(crate::ast::BinaryOp::Eq, Value::Text(item.clone()), v.clone())
                        .is_ok_and(|r| r == Value::Bool(true))
                }
                _ => false,
            });
            Ok(found.map_or(Value::Null, |i| Value::Int4(i32::try_from(array.lower + i as i64).unwrap_or(i32::MAX))))
        })(),
        ("cardinality", [a]) => array_arg(a, name).map(|a| match a {
            None => Value::Null,
            Some(a) => Value::Int4(i32::try_from(a.items.len()).unwrap_or(i32::MAX)),
        }),
        _ => return None,
    };
    Some(result)
}
