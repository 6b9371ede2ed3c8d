//! SQL errors: a PostgreSQL SQLSTATE, a message, and optionally a detail and a hint, exactly
//! what the wire protocol sends.

use std::fmt;

/// A SQL result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error with its PostgreSQL SQLSTATE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The five-character SQLSTATE, e.g. "23505".
    pub code: &'static str,
    /// The primary message, as PostgreSQL words it where it can.
    pub message: String,
    /// DETAIL.
    pub detail: Option<String>,
    /// HINT.
    pub hint: Option<String>,
    /// CONTEXT: where it happened (e.g. "COPY t, line 3, column b").
    pub context: Option<Box<str>>,
    /// The object a constraint error is about, sent as PostgreSQL's error fields (schema,
    /// table, column, constraint) so drivers can name it (psycopg's `diag.constraint_name`).
    pub object: Option<Box<ErrorObject>>,
    /// Where in the statement's text the error is: a 1-based character position, sent as
    /// PostgreSQL's position field (psql then shows the line with a caret under it).
    pub position: Option<u32>,
}

/// The 1-based character position of `line` (1-based) and `column` (1-based, in
/// characters) in `text`.
pub fn char_position(text: &str, line: u64, column: u64) -> u32 {
    let mut pos: u64 = 0;
    for (i, l) in text.split('\n').enumerate() {
        if i as u64 + 1 == line {
            return u32::try_from(pos + column.max(1)).unwrap_or(u32::MAX);
        }
        pos += l.chars().count() as u64 + 1;
    }
    u32::try_from(pos.max(1)).unwrap_or(u32::MAX)
}

/// Gives an error about a name that does not exist (a relation, column or function) the
/// position of that name in `sql`, as PostgreSQL reports it: the first place the name
/// appears as a word (outside string literals), else nothing.
pub fn locate_name(e: Error, sql: &str) -> Error {
    if e.position.is_some() {
        return e;
    }
    let quoted = |m: &str| m.split('"').nth(1).map(str::to_string);
    let name = match e.code {
        codes::UNDEFINED_TABLE => quoted(&e.message),
        codes::UNDEFINED_COLUMN => quoted(&e.message)
            .or_else(|| e.message.strip_prefix("column ").and_then(|r| r.split(' ').next()).map(str::to_string)),
        codes::UNDEFINED_FUNCTION => {
            e.message.strip_prefix("function ").and_then(|r| r.split('(').next()).map(str::to_string)
        }
        _ => None,
    };
    match name.and_then(|n| find_word(sql, &n)) {
        Some(p) => e.at(p),
        None => e,
    }
}

/// The 1-based character position of the first whole-word, case-insensitive occurrence of
/// `word` in `sql` outside single-quoted literals.
fn find_word(sql: &str, word: &str) -> Option<u32> {
    if word.is_empty() {
        return None;
    }
    let is_word = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
    let chars: Vec<char> = sql.chars().collect();
    let target: Vec<char> = word.chars().flat_map(char::to_lowercase).collect();
    let mut in_string = false;
    for i in 0..chars.len() {
        if chars[i] == '\'' {
            in_string = !in_string;
            continue;
        }
        if in_string || (i > 0 && is_word(chars[i - 1])) {
            continue;
        }
        let end = i + target.len();
        if end > chars.len() || chars.get(end).is_some_and(|c| is_word(*c)) {
            continue;
        }
        let candidate: Vec<char> = chars[i..end].iter().flat_map(|c| c.to_lowercase()).collect();
        if candidate == target {
            return u32::try_from(i + 1).ok();
        }
    }
    None
}

/// The table, column and constraint an error is about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorObject {
    /// The table's schema (always `public` for a user table).
    pub schema: String,
    /// The table.
    pub table: String,
    /// The column (NOT NULL violations).
    pub column: Option<String>,
    /// The constraint (unique, foreign key and CHECK violations).
    pub constraint: Option<String>,
}

impl Error {
    /// An error with `code` and `message`.
    pub fn new(code: &'static str, message: impl Into<String>) -> Error {
        Error { code, message: message.into(), detail: None, hint: None, context: None, object: None, position: None }
    }

    /// Sets the position (1-based, in characters of the statement's text).
    pub fn at(mut self, position: u32) -> Error {
        self.position = Some(position);
        self
    }

    /// Adds a DETAIL.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Error {
        self.detail = Some(detail.into());
        self
    }

    /// Adds a HINT.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Error {
        self.hint = Some(hint.into());
        self
    }

    /// Names the table (and column or constraint) the error is about.
    pub fn on(mut self, table: &str, column: Option<&str>, constraint: Option<&str>) -> Error {
        self.object = Some(Box::new(ErrorObject {
            schema: "public".into(),
            table: table.into(),
            column: column.map(Into::into),
            constraint: constraint.map(Into::into),
        }));
        self
    }

    /// Adds a CONTEXT, unless one is there already (the innermost place wins).
    pub fn with_context(mut self, context: impl Into<String>) -> Error {
        if self.context.is_none() {
            self.context = Some(context.into().into_boxed_str());
        }
        self
    }

    /// 42601 syntax_error.
    pub fn syntax(message: impl Into<String>) -> Error {
        Error::new(codes::SYNTAX_ERROR, message)
    }

    /// 0A000 feature_not_supported.
    pub fn unsupported(what: impl Into<String>) -> Error {
        Error::new(codes::FEATURE_NOT_SUPPORTED, format!("{} is not supported", what.into()))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for Error {}

impl From<txn::Error> for Error {
    fn from(e: txn::Error) -> Error {
        Error::new(e.sqlstate(), e.to_string())
    }
}

impl From<storage::Error> for Error {
    fn from(e: storage::Error) -> Error {
        Error::from(txn::Error::Storage(e))
    }
}

/// The SQLSTATEs Bulwark raises, named as in PostgreSQL's errcodes.
pub mod codes {
    /// 42601
    pub const SYNTAX_ERROR: &str = "42601";
    /// 0A000
    pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
    /// 42P01
    pub const UNDEFINED_TABLE: &str = "42P01";
    /// 42703
    pub const UNDEFINED_COLUMN: &str = "42703";
    /// 42883
    pub const UNDEFINED_FUNCTION: &str = "42883";
    /// 42P07
    pub const DUPLICATE_TABLE: &str = "42P07";
    /// 42701
    pub const DUPLICATE_COLUMN: &str = "42701";
    /// 42702
    pub const AMBIGUOUS_COLUMN: &str = "42702";
    /// 26000
    pub const INVALID_SQL_STATEMENT_NAME: &str = "26000";
    /// 42P05
    pub const DUPLICATE_PREPARED_STATEMENT: &str = "42P05";
    /// 2BP01
    pub const DEPENDENT_OBJECTS_STILL_EXIST: &str = "2BP01";
    /// 42P16
    pub const INVALID_TABLE_DEFINITION: &str = "42P16";
    /// 2200H
    pub const SEQUENCE_GENERATOR_LIMIT_EXCEEDED: &str = "2200H";
    /// 22004
    pub const NULL_VALUE_NOT_ALLOWED: &str = "22004";
    /// 42710
    pub const DUPLICATE_OBJECT: &str = "42710";
    /// 55P02
    pub const CANT_CHANGE_RUNTIME_PARAM: &str = "55P02";
    /// 42712
    pub const DUPLICATE_ALIAS: &str = "42712";
    /// 42804
    pub const DATATYPE_MISMATCH: &str = "42804";
    /// 42846
    pub const CANNOT_COERCE: &str = "42846";
    /// 42803
    pub const GROUPING_ERROR: &str = "42803";
    /// 42P10
    pub const INVALID_COLUMN_REFERENCE: &str = "42P10";
    /// 42704
    pub const UNDEFINED_OBJECT: &str = "42704";
    /// 57P03: this node cannot serve the request now (not the leader, no quorum).
    pub const CANNOT_CONNECT_NOW: &str = "57P03";
    /// 42809
    pub const WRONG_OBJECT_TYPE: &str = "42809";
    /// 42501
    pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
    /// 3F000
    pub const INVALID_SCHEMA_NAME: &str = "3F000";
    /// 42P06
    pub const DUPLICATE_SCHEMA: &str = "42P06";
    /// 42939
    pub const RESERVED_NAME: &str = "42939";
    /// 2201B
    pub const INVALID_REGULAR_EXPRESSION: &str = "2201B";
    /// 22003
    pub const NUMERIC_VALUE_OUT_OF_RANGE: &str = "22003";
    /// 22P02
    pub const INVALID_TEXT_REPRESENTATION: &str = "22P02";
    /// 22012
    pub const DIVISION_BY_ZERO: &str = "22012";
    /// 22001
    pub const STRING_DATA_RIGHT_TRUNCATION: &str = "22001";
    /// 22007
    pub const INVALID_DATETIME_FORMAT: &str = "22007";
    /// 22008
    pub const DATETIME_FIELD_OVERFLOW: &str = "22008";
    /// 22023
    pub const INVALID_PARAMETER_VALUE: &str = "22023";
    /// 21000
    pub const CARDINALITY_VIOLATION: &str = "21000";
    /// 23502
    pub const NOT_NULL_VIOLATION: &str = "23502";
    /// 23503
    pub const FOREIGN_KEY_VIOLATION: &str = "23503";
    /// 23505
    pub const UNIQUE_VIOLATION: &str = "23505";
    /// 23514
    pub const CHECK_VIOLATION: &str = "23514";
    /// 25001
    pub const ACTIVE_SQL_TRANSACTION: &str = "25001";
    /// 25P01
    pub const NO_ACTIVE_SQL_TRANSACTION: &str = "25P01";
    /// 25P02
    pub const IN_FAILED_SQL_TRANSACTION: &str = "25P02";
    /// 34000
    pub const INVALID_CURSOR_NAME: &str = "34000";
    /// 22014 invalid_argument_for_ntile_function
    pub const INVALID_ARGUMENT_FOR_NTILE: &str = "22014";
    /// 22016 invalid_argument_for_nth_value_function
    pub const INVALID_ARGUMENT_FOR_NTH_VALUE: &str = "22016";
    /// 42P20 windowing_error
    pub const WINDOWING_ERROR: &str = "42P20";
    /// 22013 invalid_preceding_or_following_size
    pub const INVALID_PRECEDING_OR_FOLLOWING_SIZE: &str = "22013";
    /// 3B001
    pub const INVALID_SAVEPOINT: &str = "3B001";
    /// 55000
    pub const OBJECT_NOT_IN_PREREQUISITE_STATE: &str = "55000";
    /// 54000
    pub const PROGRAM_LIMIT_EXCEEDED: &str = "54000";
    /// 54001
    pub const STATEMENT_TOO_COMPLEX: &str = "54001";
    /// 22P05
    pub const UNTRANSLATABLE_CHARACTER: &str = "22P05";
    /// 53200
    pub const OUT_OF_MEMORY: &str = "53200";
    /// 55P03 lock_not_available
    pub const LOCK_NOT_AVAILABLE: &str = "55P03";
    /// 57014 query_canceled
    pub const QUERY_CANCELED: &str = "57014";
    /// XX000
    pub const INTERNAL_ERROR: &str = "XX000";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_located_as_postgres_locates_them() {
        let at = |code, message: &str, sql| locate_name(Error::new(code, message), sql).position;
        assert_eq!(at(codes::UNDEFINED_TABLE, "relation \"nosuch\" does not exist", "SELECT * FROM nosuch"), Some(15));
        let sql = "SELECT 'nosuch', Nosuch FROM t";
        assert_eq!(at(codes::UNDEFINED_COLUMN, "column \"nosuch\" does not exist", sql), Some(18));
        assert_eq!(at(codes::UNDEFINED_COLUMN, "column t.x does not exist", "SELECT t.x FROM t"), Some(8));
        assert_eq!(at(codes::UNDEFINED_FUNCTION, "function foo(integer) does not exist", "SELECT foo(1)"), Some(8));
        assert_eq!(at(codes::UNDEFINED_COLUMN, "column \"x\" does not exist", "SELECT xx FROM t"), None);
        assert_eq!(at(codes::DIVISION_BY_ZERO, "division by zero", "SELECT 1/0"), None);
        assert_eq!(char_position("ab\ncd", 2, 2), 5);
    }
}
