//! POSIX regular expression matching: the `~`, `!~`, `~*` and `!~*` operators, and
//! `regexp_replace`.
//!
//! PostgreSQL's regular expressions are Henry Spencer's "advanced" flavour; Bulwark runs them
//! on the `regex` crate, which reads the common syntax the same way (anchors, classes,
//! bracket expressions, `{m,n}`, alternation, groups, `\d \s \w`). Left out: back-references,
//! lookahead, and the ARE escapes `\m \M \y \Y`; a pattern using them fails with 2201B.
//!
//! Compiled patterns are kept per thread, so a filter over many rows compiles its pattern
//! once; the cache holds at most [`REGEX_CACHE_ENTRIES_MAX`] patterns.

use crate::ast::BinaryOp;
use crate::error::{codes::INVALID_REGULAR_EXPRESSION, Error, Result};
use crate::types::Value;
use std::cell::RefCell;
use std::collections::HashMap;

/// The most compiled patterns one thread keeps.
const REGEX_CACHE_ENTRIES_MAX: usize = 64;

/// The most memory one compiled pattern may take (PostgreSQL's patterns are small; this
/// stops a hostile one from taking the server's memory).
const REGEX_COMPILED_BYTES_MAX: usize = 1 << 20;

thread_local! {
    static CACHE: RefCell<HashMap<(String, bool), regex::Regex>> = RefCell::new(HashMap::new());
}

/// `text ~ pattern` and its negated and case-insensitive forms; NULL if either is NULL.
pub fn match_op(op: BinaryOp, text: &str, pattern: &str) -> Result<Value> {
    let (negated, case_insensitive) = match op {
        BinaryOp::Match => (false, false),
        BinaryOp::NotMatch => (true, false),
        BinaryOp::IMatch => (false, true),
        BinaryOp::NotIMatch => (true, true),
        other => unreachable!("{other:?} is not a regular expression operator"),
    };
    Ok(Value::Bool(is_match(text, pattern, case_insensitive)? != negated))
}

/// Whether `pattern` matches anywhere in `text`.
pub fn is_match(text: &str, pattern: &str, case_insensitive: bool) -> Result<bool> {
    with_regex(pattern, case_insensitive, |re| re.is_match(text))
}

/// `regexp_replace(text, pattern, replacement [, flags])`: the first match replaced, or
/// every one with flag `g`; flag `i` ignores case. In the replacement `\1`..`\9` stand for
/// the groups and `\&` for the whole match, as in PostgreSQL.
pub fn replace(text: &str, pattern: &str, replacement: &str, flags: &str) -> Result<Value> {
    let (mut global, mut case_insensitive) = (false, false);
    for f in flags.chars() {
        match f {
            'g' => global = true,
            'i' => case_insensitive = true,
            'c' => case_insensitive = false,
            other => {
                return Err(Error::new(
                    crate::error::codes::INVALID_PARAMETER_VALUE,
                    format!("invalid regular expression option: \"{other}\""),
                ))
            }
        }
    }
    let mut template = String::with_capacity(replacement.len());
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek().copied()) {
            ('\\', Some(d @ '1'..='9')) => {
                chars.next();
                template.push_str(&format!("${{{d}}}"));
            }
            ('\\', Some('&')) => {
                chars.next();
                template.push_str("${0}");
            }
            ('\\', Some('\\')) => {
                chars.next();
                template.push('\\');
            }
            ('$', _) => template.push_str("$$"),
            (c, _) => template.push(c),
        }
    }
    with_regex(pattern, case_insensitive, |re| {
        let out = if global { re.replace_all(text, template.as_str()) } else { re.replace(text, template.as_str()) };
        Value::Text(out.into_owned())
    })
}

/// Runs `f` on the compiled `pattern`, compiled once per thread.
fn with_regex<T>(pattern: &str, case_insensitive: bool, f: impl FnOnce(&regex::Regex) -> T) -> Result<T> {
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        let key = (pattern.to_string(), case_insensitive);
        if let Some(re) = cache.get(&key) {
            return Ok(f(re));
        }
        let re = compile(pattern, case_insensitive)?;
        let out = f(&re);
        if cache.len() >= REGEX_CACHE_ENTRIES_MAX {
            cache.clear();
        }
        cache.insert(key, re);
        Ok(out)
    })
}

fn compile(pattern: &str, case_insensitive: bool) -> Result<regex::Regex> {
    regex::RegexBuilder::new(pattern)
        .case_insensitive(case_insensitive)
        .size_limit(REGEX_COMPILED_BYTES_MAX)
        .build()
        .map_err(|e| {
            let reason = match e {
                regex::Error::Syntax(s) => {
                    let last = s.lines().last().unwrap_or("syntax error").trim();
                    last.strip_prefix("error: ").unwrap_or(last).to_string()
                }
                regex::Error::CompiledTooBig(_) => "regular expression is too complex".to_string(),
                other => other.to_string(),
            };
            Error::new(INVALID_REGULAR_EXPRESSION, format!("invalid regular expression: {reason}"))
        })
}
