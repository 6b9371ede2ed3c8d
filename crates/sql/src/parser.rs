//! The SQL parser: PostgreSQL text in, Bulwark's [`ast`](crate::ast) out.
//!
//! # How it works
//!
//! `sqlparser` (pinned, PostgreSQL dialect) does the grammar; this module only translates its
//! tree into ours, so a `sqlparser` upgrade touches this file and nothing else.
//!
//! ```text
//!   text ──tokenize──▶ tokens ──split at ';'──▶ one token run per statement
//!                                                 │
//!                     SHOW / RESET / SET name ◀───┤ (read here, by hand)
//!                     everything else ◀───────────┘ (sqlparser, then translated)
//! ```
//!
//! The input is tokenized once and cut into statements at top-level semicolons. `SHOW`,
//! `RESET` and `SET name = value` are read straight from the tokens: PostgreSQL's grammar for
//! them is tiny, and drivers send forms `sqlparser` reads differently or not at all
//! (`SHOW TRANSACTION ISOLATION LEVEL`, `SET x TO DEFAULT`, `SET x = on`). Every other
//! statement goes through `sqlparser`, and the translation below walks its tree.
//!
//! The translation folds names the PostgreSQL way (unquoted identifiers to lower case, quoted
//! ones kept, both cut to 63 bytes), strips the `public.` schema, keeps other schemas as a
//! dotted name (`pg_catalog.pg_class`), and types numeric literals as PostgreSQL does
//! (`int4`, else `int8`, else `numeric`; a minus sign is folded into the literal).
//!
//! # Errors
//!
//! A grammar error is 42601 with PostgreSQL's wording (`syntax error at or near "FROM"`,
//! `syntax error at end of input`) and `sqlparser`'s own message as the DETAIL. Syntax
//! `sqlparser` accepts but Bulwark does not implement is 0A000, naming the construct.
//!
//! A few clauses are accepted although the AST cannot carry them; each is listed here so
//! nobody mistakes it for support: `CASCADE` on DROP (the executor still refuses to break a
//! dependency) and `ALWAYS` in `GENERATED ALWAYS AS IDENTITY` (it acts like BY DEFAULT).
//! Options that only tune storage or plans (`WITH (fillfactor=...)`, `CONCURRENTLY`, index
//! `ASC`/`DESC`, `[NOT] MATERIALIZED`, EXPLAIN's `VERBOSE`/`COSTS`) are ignored because they
//! never change a result.
//!
//! # Left out
//!
//! Named windows (`WINDOW w AS`), `GROUPS` frames and RANGE frames with offsets,
//! `op ANY/ALL (subquery)` other than `= ANY` and `<> ALL`, row constructors, array slices,
//! multi-dimensional arrays, `LATERAL`, partial and expression indexes, `ON CONFLICT (...)
//! WHERE`, `SET DEFAULT` foreign key actions, collations other than the default and "C",
//! the TIME type, materialized and temporary views, temporary tables, ALTER SEQUENCE, and
//! SQL PREPARE/EXECUTE: all 0A000. The PostgreSQL-specific syntax that is
//! supported (regular expression operators, JSON operators, `OPERATOR(pg_catalog.op)`,
//! `COLLATE`, `op ANY (array)`, `ARRAY[...]` and `ARRAY(subquery)` (arrays in their text form),
//! subscripts, functions in FROM, `pg_catalog` type names) is translated in
//! `parser/postgres.rs`.

mod utility_stmts;

use sqlparser::ast as sql;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, TokenizerError};
use txn::IsolationLevel;

use crate::ast::{
    AlterAction, BinaryOp, ColumnDef, Cte, Expr, FrameBound, InsertSource, JoinKind, Locking, OnConflict, OrderBy,
    Query, ReferentialAction, Select, SelectItem, SetExpr, SetOperator, Statement, TableConstraint, TableRef, UnaryOp,
    WindowFrame,
};
use crate::error::{codes, Error, Result};
use crate::types::{DataType, Numeric, Value};

mod postgres;
pub(crate) use postgres::is_reserved_keyword;

/// PostgreSQL's identifier length limit (NAMEDATALEN - 1): longer names are cut, as there.
const IDENTIFIER_BYTES_MAX: usize = 63;

/// NUMERIC's limit in Bulwark: 38 significant digits (an `i128` mantissa), scale at most 38.
const NUMERIC_DIGITS_MAX: u32 = 38;

/// The deepest expression a statement may hold (54001 beyond): every layer after the parser
/// (binding, planning, evaluation) walks expressions recursively, and a connection's
/// thread has a stack of bounded size. A chain of ANDs or ORs, however long, counts as the
/// depth of a balanced tree, so `id = 1 OR id = 2 OR ...` with many thousands of terms fits.
pub const EXPR_DEPTH_MAX: usize = 1_000;
/// The most binary operators one statement may hold (54001 beyond). The parser builds an
/// operator chain without recursion, but the tree it builds is as deep as the chain, and
/// freeing it recurses: this bounds that depth before the tree exists.
pub const STATEMENT_OPERATORS_MAX: usize = 50_000;
/// An AND or OR chain longer than this is built as a balanced tree (shorter ones keep the
/// written, left-to-right shape, which EXPLAIN shows).
const LOGICAL_CHAIN_BALANCE_MIN: usize = 64;

/// How much of an unsupported construct's SQL text an error message quotes.
const QUOTED_SQL_CHARS_MAX: usize = 60;

/// PostgreSQL's bounds on declared type lengths and precisions (22023 beyond them).
const VARCHAR_LENGTH_MAX: u64 = 10_485_760;
const NUMERIC_PRECISION_MAX: u64 = 1000;

/// Parses one or more ';'-separated statements. Empty statements are skipped, so an empty
/// string gives an empty list.
pub fn parse(sql: &str) -> Result<Vec<Statement>> {
    let dialect = PostgreSqlDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .with_unescape(true)
        .tokenize_with_location()
        .map_err(|e| tokenizer_error(e, sql))?;
    let mut statements = Vec::new();
    for run in split_statements(tokens) {
        let significant: Vec<&Token> =
            run.iter().map(|t| &t.token).filter(|t| !matches!(t, Token::Whitespace(_))).collect();
        if significant.is_empty() {
            continue;
        }
        let operators = significant.iter().filter(|t| is_binary_operator(t)).count();
        if operators > STATEMENT_OPERATORS_MAX {
            return Err(too_complex(format!(
                "The statement has {operators} operators; at most {STATEMENT_OPERATORS_MAX} are allowed."
            )));
        }
        if let Some(statement) = utility::parse(&significant)? {
            statements.push(statement);
            continue;
        }
        if let Some(statement) = utility_stmts::parse(&run)? {
            statements.push(statement);
            continue;
        }
        // One statement per run, then nothing: `parse_statements` would stop quietly at a
        // stray END (`SELECT 1 END junk`), which PostgreSQL rejects.
        // The end of this statement's text, where "at end of input" points.
        let end = run.iter().rev().find(|t| !matches!(t.token, Token::Whitespace(_))).map(|t| t.span.end);
        let mut parser = Parser::new(&dialect).with_tokens_with_locations(run);
        let parsed = parser.parse_statement().map_err(|e| {
            let e = parser_error_in(e, Some(sql));
            match end {
                Some(end) if e.position.is_none() => {
                    let at = crate::error::char_position(sql, end.line, end.column);
                    e.at(at)
                }
                _ => e,
            }
        })?;
        let next = parser.peek_token();
        if next.token != Token::EOF {
            let at = crate::error::char_position(sql, next.span.start.line, next.span.start.column);
            return Err(Error::syntax(format!("syntax error at or near \"{}\"", next.token)).at(at));
        }
        statements.extend(statement(parsed)?);
    }
    Ok(statements)
}

/// Whether a token can join two operands (an upper bound: a `-` may be a sign).
fn is_binary_operator(t: &Token) -> bool {
    match t {
        Token::Word(w) => matches!(w.keyword, sqlparser::keywords::Keyword::AND | sqlparser::keywords::Keyword::OR),
        Token::Plus
        | Token::Minus
        | Token::Mul
        | Token::Div
        | Token::Mod
        | Token::StringConcat
        | Token::Eq
        | Token::DoubleEq
        | Token::Neq
        | Token::Lt
        | Token::Gt
        | Token::LtEq
        | Token::GtEq
        | Token::Caret
        | Token::Ampersand
        | Token::Pipe
        | Token::Tilde
        | Token::ExclamationMark => true,
        _ => false,
    }
}

/// 54001 statement_too_complex, PostgreSQL's code when a statement nests too deeply.
fn too_complex(hint: String) -> Error {
    Error::new("54001", "stack depth limit exceeded").with_hint(hint)
}

thread_local! {
    /// How deep the expression being translated on this thread is.
    static EXPR_DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// One level of [`EXPR_DEPTH`], given back when dropped.
struct ExprDepth;

impl ExprDepth {
    fn enter() -> Result<ExprDepth> {
        let depth = EXPR_DEPTH.with(|d| {
            d.set(d.get() + 1);
            d.get()
        });
        let guard = ExprDepth;
        if depth > EXPR_DEPTH_MAX {
            return Err(too_complex(format!("Expressions may nest at most {EXPR_DEPTH_MAX} deep.")));
        }
        Ok(guard)
    }
}

impl Drop for ExprDepth {
    fn drop(&mut self) {
        EXPR_DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// Cuts a token stream at top-level semicolons (semicolons inside strings, quoted
/// identifiers and comments are inside their tokens already). The semicolons are dropped.
fn split_statements(tokens: Vec<TokenWithSpan>) -> Vec<Vec<TokenWithSpan>> {
    let mut runs = vec![Vec::new()];
    for token in tokens {
        if token.token == Token::SemiColon {
            runs.push(Vec::new());
        } else if let Some(run) = runs.last_mut() {
            run.push(token);
        }
    }
    runs
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

fn tokenizer_error(e: TokenizerError, sql: &str) -> Error {
    // PostgreSQL words lexer errors like grammar errors, e.g. an unterminated quote is
    // `unterminated quoted string at or near "'abc"`; the tokenizer's text is close enough.
    let at = crate::error::char_position(sql, e.location.line, e.location.column);
    if e.message.starts_with("Unterminated string literal") {
        let rest: String = sql.chars().skip(at.saturating_sub(1) as usize).take(QUOTED_SQL_CHARS_MAX).collect();
        return Error::syntax(format!("unterminated quoted string at or near \"{rest}\"")).at(at);
    }
    Error::syntax(e.message.clone()).with_detail(e.to_string()).at(at)
}

/// Turns `Expected: X, found: Y at Line: 1, Column: 8` into PostgreSQL's wording.
fn parser_error(e: ParserError) -> Error {
    parser_error_in(e, None)
}

/// [`parser_error`], with the position in `sql` the parser reported.
fn parser_error_in(e: ParserError, sql: Option<&str>) -> Error {
    let message = match e {
        ParserError::RecursionLimitExceeded => {
            return too_complex("The statement nests expressions or queries too deeply.".to_string());
        }
        ParserError::TokenizerError(m) | ParserError::ParserError(m) => m,
    };
    let without_location = match message.rfind(" at Line: ") {
        Some(at) => &message[..at],
        None => message.as_str(),
    };
    let primary = match without_location.rfind("found: ") {
        Some(at) => {
            let found = &without_location[at + "found: ".len()..];
            if found == "EOF" {
                "syntax error at end of input".to_string()
            } else {
                format!("syntax error at or near \"{found}\"")
            }
        }
        None => format!("syntax error: {without_location}"),
    };
    let position = sql.zip(message.rfind(" at Line: ")).and_then(|(sql, at)| {
        let (line, column) = message[at + " at Line: ".len()..].split_once(", Column: ")?;
        Some(crate::error::char_position(sql, line.trim().parse().ok()?, column.trim().parse().ok()?))
    });
    let e = Error::syntax(primary).with_detail(message.clone());
    match position {
        Some(at) => e.at(at),
        None => e,
    }
}

/// CREATE SEQUENCE's options, each a (signed) integer literal.
fn sequence_options_of(list: Vec<sql::SequenceOptions>) -> Result<crate::ast::SequenceOptions> {
    fn int(e: sql::Expr) -> Result<i64> {
        let bad = || Error::syntax("a sequence option takes an integer");
        let (negative, e) = match expr(e)? {
            Expr::Unary { op: UnaryOp::Neg, expr } => (true, *expr),
            e => (false, e),
        };
        let Expr::Literal(v) = e else { return Err(bad()) };
        match crate::eval::cast(v, &DataType::Int8, true)? {
            Value::Int8(n) if negative => n.checked_neg().ok_or_else(bad),
            Value::Int8(n) => Ok(n),
            _ => Err(bad()),
        }
    }
    let mut o = crate::ast::SequenceOptions::default();
    for option in list {
        let twice = |set: bool| if set { Err(Error::syntax("conflicting or redundant options")) } else { Ok(()) };
        match option {
            sql::SequenceOptions::DataType(t) => {
                twice(o.data_type.is_some())?;
                o.data_type = Some(data_type(t)?);
            }
            sql::SequenceOptions::IncrementBy(e, _) => {
                twice(o.increment.is_some())?;
                o.increment = Some(int(e)?);
            }
            sql::SequenceOptions::MinValue(e) => {
                twice(o.min.is_some())?;
                o.min = Some(e.map(int).transpose()?);
            }
            sql::SequenceOptions::MaxValue(e) => {
                twice(o.max.is_some())?;
                o.max = Some(e.map(int).transpose()?);
            }
            sql::SequenceOptions::StartWith(e, _) => {
                twice(o.start.is_some())?;
                o.start = Some(int(e)?);
            }
            sql::SequenceOptions::Cache(e) => {
                twice(o.cache.is_some())?;
                o.cache = Some(int(e)?);
            }
            // sqlparser's flag is "NO".
            sql::SequenceOptions::Cycle(no) => {
                twice(o.cycle.is_some())?;
                o.cycle = Some(!no);
            }
            sql::SequenceOptions::OwnedBy(_) => return Err(Error::unsupported("OWNED BY")),
        }
    }
    Ok(o)
}

/// The first word of a piece of SQL's text, for a syntax error "at or near" it.
fn first_word(sql: &impl std::fmt::Display) -> String {
    sql.to_string().split_whitespace().next().unwrap_or_default().to_string()
}

/// 0A000 naming a piece of SQL by its text.
fn unsupported_sql(what: &str, sql: &impl std::fmt::Display) -> Error {
    let mut text = sql.to_string();
    if text.chars().count() > QUOTED_SQL_CHARS_MAX {
        text = text.chars().take(QUOTED_SQL_CHARS_MAX).collect::<String>() + "...";
    }
    Error::unsupported(format!("{what} \"{text}\""))
}

fn out_of_range(message: impl Into<String>) -> Error {
    Error::new(codes::NUMERIC_VALUE_OUT_OF_RANGE, message)
}

fn invalid_parameter(message: impl Into<String>) -> Error {
    Error::new(codes::INVALID_PARAMETER_VALUE, message)
}

// ---------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------

/// Folds an identifier: unquoted to lower case (ASCII only, as PostgreSQL does for UTF-8),
/// quoted kept; both cut to 63 bytes.
fn ident(id: sql::Ident) -> String {
    fold(id.value, id.quote_style.is_some())
}

/// [`ident`] over a name's text and whether it was quoted.
fn fold(value: String, quoted: bool) -> String {
    let mut name = if quoted { value } else { value.to_ascii_lowercase() };
    if name.len() > IDENTIFIER_BYTES_MAX {
        let mut end = IDENTIFIER_BYTES_MAX;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
    }
    name
}

fn idents(ids: Vec<sql::Ident>) -> Vec<String> {
    ids.into_iter().map(ident).collect()
}

/// The folded parts of a dotted name.
fn name_parts(name: sql::ObjectName) -> Result<Vec<String>> {
    let text = name.to_string();
    name.0
        .into_iter()
        .map(|part| match part {
            sql::ObjectNamePart::Identifier(id) => Ok(ident(id)),
            sql::ObjectNamePart::Function(_) => Err(unsupported_sql("name", &text)),
        })
        .collect()
}

/// `[schema.]name` → "name" for `public`, "schema.name" for any other schema.
fn qualify(mut parts: Vec<String>, text: &str) -> Result<String> {
    match parts.len() {
        1 => Ok(parts.remove(0)),
        2 if parts[0] == "public" => Ok(parts.remove(1)),
        2 => Ok(parts.join(".")),
        _ => Err(Error::new(
            codes::FEATURE_NOT_SUPPORTED,
            format!("cross-database references are not implemented: {text}"),
        )),
    }
}

/// PostgreSQL's fully reserved keywords: never an unquoted table or column name, though
/// `sqlparser` lets some through (`SELECT * FROM from`). Sorted, for binary search.
const RESERVED_KEYWORDS: [&str; 77] = [
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "both",
    "case",
    "cast",
    "check",
    "collate",
    "column",
    "constraint",
    "create",
    "current_catalog",
    "current_date",
    "current_role",
    "current_time",
    "current_timestamp",
    "current_user",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "false",
    "fetch",
    "for",
    "foreign",
    "from",
    "grant",
    "group",
    "having",
    "in",
    "initially",
    "intersect",
    "into",
    "lateral",
    "leading",
    "limit",
    "localtime",
    "localtimestamp",
    "not",
    "null",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "placing",
    "primary",
    "references",
    "returning",
    "select",
    "session_user",
    "some",
    "symmetric",
    "system_user",
    "table",
    "then",
    "to",
    "trailing",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "variadic",
    "when",
    "where",
    "window",
];

/// Rejects an unquoted reserved keyword used as a name, as PostgreSQL's grammar does.
fn not_reserved(name: &sql::ObjectName) -> Result<()> {
    for part in &name.0 {
        if let sql::ObjectNamePart::Identifier(id) = part {
            reject_reserved(id)?;
        }
    }
    Ok(())
}

fn reject_reserved(id: &sql::Ident) -> Result<()> {
    if id.quote_style.is_none() && RESERVED_KEYWORDS.binary_search(&id.value.to_ascii_lowercase().as_str()).is_ok() {
        return Err(Error::syntax(format!("syntax error at or near \"{}\"", id.value)));
    }
    Ok(())
}

/// A table, index or sequence name.
fn relation_name(name: sql::ObjectName) -> Result<String> {
    not_reserved(&name)?;
    let text = name.to_string();
    qualify(name_parts(name)?, &text)
}

/// The name of a relation being created: Bulwark has one schema for user tables, `public`.
/// 3F000 for a schema that does not exist, 42501 for the system schemas, as in PostgreSQL.
fn new_relation_name(name: sql::ObjectName) -> Result<String> {
    not_reserved(&name)?;
    let text = name.to_string();
    let parts = name_parts(name)?;
    if parts.len() == 2 && parts[0] != "public" {
        if parts[0] == "pg_catalog" || parts[0] == "information_schema" {
            return Err(Error::new(
                codes::INSUFFICIENT_PRIVILEGE,
                format!("permission denied to create \"{}.{}\"", parts[0], parts[1]),
            )
            .with_detail("System catalog modifications are currently disallowed."));
        }
        return Err(Error::new(codes::INVALID_SCHEMA_NAME, format!("schema \"{}\" does not exist", parts[0])));
    }
    qualify(parts, &text)
}

/// A column name where only a bare name is allowed (column lists, SET targets).
fn column_name(name: sql::ObjectName) -> Result<String> {
    not_reserved(&name)?;
    let text = name.to_string();
    let mut parts = name_parts(name)?;
    if parts.len() != 1 {
        return Err(unsupported_sql("qualified column name", &text));
    }
    Ok(parts.remove(0))
}

/// A function name: lower case, `pg_catalog.` and `public.` dropped (builtins live there).
fn function_name(name: sql::ObjectName) -> Result<String> {
    let text = name.to_string();
    let mut parts = name_parts(name)?;
    match parts.len() {
        1 => Ok(parts.remove(0)),
        2 if parts[0] == "pg_catalog" || parts[0] == "public" => Ok(parts.remove(1)),
        _ => Err(unsupported_sql("function", &text)),
    }
}

// ---------------------------------------------------------------------------------------
// Statements
// ---------------------------------------------------------------------------------------

/// Translates one statement. A list, because `SET SESSION CHARACTERISTICS AS TRANSACTION`
/// sets up to two settings.
fn statement(s: sql::Statement) -> Result<Vec<Statement>> {
    let one = match s {
        sql::Statement::Query(q) => Statement::Query(Box::new(query(*q)?)),
        sql::Statement::Insert(insert) => dml::insert(insert)?,
        sql::Statement::Update(update) => dml::update(update)?,
        sql::Statement::Delete(delete) => dml::delete(delete)?,
        sql::Statement::CreateTable(create) => ddl::create_table(create)?,
        sql::Statement::CreateIndex(create) => ddl::create_index(create)?,
        sql::Statement::CreateSequence { temporary, if_not_exists, name, sequence_options } => {
            if temporary {
                return Err(Error::unsupported("temporary sequences"));
            }
            Statement::CreateSequence {
                name: relation_name(name)?,
                if_not_exists,
                options: sequence_options_of(sequence_options)?,
            }
        }
        // WITH SCHEMA, VERSION and CASCADE do not change which extensions exist.
        sql::Statement::Prepare { name, data_types, statement } => {
            // PostgreSQL prepares SELECT, VALUES, INSERT, UPDATE and DELETE only.
            if !matches!(
                *statement,
                sql::Statement::Query(_)
                    | sql::Statement::Insert(_)
                    | sql::Statement::Update(_)
                    | sql::Statement::Delete(_)
            ) {
                return Err(Error::new(
                    codes::SYNTAX_ERROR,
                    format!("syntax error at or near \"{}\"", first_word(&statement)),
                ));
            }
            let sql = statement.to_string();
            // The statement is read now, so one Bulwark cannot run fails at PREPARE.
            self::statement(*statement)?;
            Statement::Prepare {
                name: ident(name),
                types: data_types.into_iter().map(data_type).collect::<Result<_>>()?,
                sql,
            }
        }
        sql::Statement::Execute {
            name: Some(name),
            parameters,
            immediate: false,
            into,
            using,
            output: false,
            default: false,
            ..
        } if into.is_empty() && using.is_empty() => {
            let mut parts = name_parts(name)?;
            if parts.len() != 1 {
                return Err(Error::new(codes::SYNTAX_ERROR, "a prepared statement's name is one identifier"));
            }
            Statement::Execute { name: parts.remove(0), args: parameters.into_iter().map(expr).collect::<Result<_>>()? }
        }
        sql::Statement::CreateExtension(e) => {
            Statement::CreateExtension { name: ident(e.name), if_not_exists: e.if_not_exists }
        }
        sql::Statement::CreateView(v) => {
            if v.materialized || v.temporary || v.if_not_exists || v.or_alter || v.to.is_some() || v.params.is_some() {
                return Err(Error::unsupported("this form of CREATE VIEW"));
            }
            if !matches!(v.options, sql::CreateTableOptions::None) {
                return Err(Error::unsupported("CREATE VIEW ... WITH options"));
            }
            let sql = v.query.to_string();
            Statement::CreateView {
                name: relation_name(v.name)?,
                columns: v.columns.into_iter().map(|c| ident(c.name)).collect(),
                query: Box::new(query(*v.query)?),
                sql,
                or_replace: v.or_replace,
            }
        }
        sql::Statement::Drop { object_type, if_exists, names, cascade: _, restrict: _, purge, temporary, table } => {
            // CASCADE is accepted and left to the executor: dropping an object others
            // depend on still fails there, so nothing is dropped silently.
            if purge || temporary || table.is_some() {
                return Err(Error::unsupported("this form of DROP"));
            }
            let names = names.into_iter().map(relation_name).collect::<Result<_>>()?;
            match object_type {
                sql::ObjectType::Table => Statement::DropTable { names, if_exists },
                sql::ObjectType::Index => Statement::DropIndex { names, if_exists },
                sql::ObjectType::View => Statement::DropView { names, if_exists },
                sql::ObjectType::Sequence => Statement::DropSequence { names, if_exists },
                sql::ObjectType::Type => Statement::DropType { names, if_exists },
                other => return Err(Error::unsupported(format!("DROP {other}"))),
            }
        }
        sql::Statement::Truncate(truncate) => ddl::truncate(truncate)?,
        sql::Statement::AlterTable(alter) => ddl::alter_table(alter)?,
        sql::Statement::StartTransaction { modes, statements, exception, .. } => {
            if !statements.is_empty() || exception.is_some() {
                return Err(Error::unsupported("BEGIN ... END blocks"));
            }
            let (isolation, read_only) = transaction_modes(modes)?;
            Statement::Begin { isolation, read_only }
        }
        sql::Statement::Commit { chain, .. } => {
            if chain {
                return Err(Error::unsupported("COMMIT AND CHAIN"));
            }
            Statement::Commit
        }
        sql::Statement::Rollback { chain, savepoint } => {
            if chain {
                return Err(Error::unsupported("ROLLBACK AND CHAIN"));
            }
            match savepoint {
                Some(name) => Statement::RollbackTo(ident(name)),
                None => Statement::Rollback,
            }
        }
        sql::Statement::Savepoint { name } => Statement::Savepoint(ident(name)),
        sql::Statement::ReleaseSavepoint { name } => Statement::Release(ident(name)),
        sql::Statement::Set(set) => return set_statement(set),
        sql::Statement::ShowVariable { variable } => Statement::Show(idents(variable).join(".")),
        sql::Statement::Explain { describe_alias, analyze, statement: inner, format, options, .. } => {
            if describe_alias != sql::DescribeAlias::Explain {
                return Err(Error::unsupported(format!("{describe_alias}")));
            }
            if format.is_some() {
                return Err(Error::unsupported("EXPLAIN FORMAT"));
            }
            let (mut analyze, mut costs, mut timing, mut summary) = (analyze, true, true, None);
            for option in options.unwrap_or_default() {
                match ident(option.name.clone()).as_str() {
                    "analyze" => analyze = utility_bool(option.arg)?,
                    "costs" => costs = utility_bool(option.arg)?,
                    "timing" => timing = utility_bool(option.arg)?,
                    "summary" => summary = Some(utility_bool(option.arg)?),
                    "format" => match option.arg {
                        Some(sql::Expr::Identifier(id)) if ident(id.clone()) == "text" => {}
                        _ => return Err(Error::unsupported("EXPLAIN formats other than TEXT")),
                    },
                    // VERBOSE, BUFFERS, ...: nothing to show.
                    _ => {}
                }
            }
            let mut inner = statement(*inner)?;
            if inner.len() != 1 {
                return Err(Error::unsupported("EXPLAIN of this statement"));
            }
            let summary = summary.unwrap_or(analyze);
            Statement::Explain { analyze, costs, timing, summary, statement: Box::new(inner.remove(0)) }
        }
        sql::Statement::CreateSchema { schema_name, if_not_exists, or_replace: false, .. } => match schema_name {
            sql::SchemaName::Simple(name) => match name_parts(name)?.as_slice() {
                [one] => Statement::CreateSchema { name: one.clone(), if_not_exists },
                _ => return Err(Error::syntax("syntax error at or near \".\"")),
            },
            _ => return Err(Error::unsupported("CREATE SCHEMA ... AUTHORIZATION")),
        },
        sql::Statement::CreateType {
            name,
            representation: Some(sql::UserDefinedTypeRepresentation::Enum { labels }),
        } => Statement::CreateEnum {
            name: relation_name(name)?,
            labels: labels.into_iter().map(enum_label).collect::<Result<_>>()?,
        },
        sql::Statement::CreateType { .. } => return Err(Error::unsupported("CREATE TYPE other than AS ENUM")),
        sql::Statement::AlterType(alter) => match alter.operation {
            sql::AlterTypeOperation::AddValue(add) => Statement::AlterEnumAddValue {
                name: relation_name(alter.name)?,
                label: enum_label(add.value)?,
                if_not_exists: add.if_not_exists,
                position: match add.position {
                    Some(sql::AlterTypeAddValuePosition::Before(n)) => Some((true, enum_label(n)?)),
                    Some(sql::AlterTypeAddValuePosition::After(n)) => Some((false, enum_label(n)?)),
                    None => None,
                },
            },
            sql::AlterTypeOperation::Rename(_) => return Err(Error::unsupported("ALTER TYPE ... RENAME TO")),
            sql::AlterTypeOperation::RenameValue(_) => return Err(Error::unsupported("ALTER TYPE ... RENAME VALUE")),
        },
        sql::Statement::Lock(lock) => {
            use sql::LockTableMode as M;
            // The modes that do not conflict with ROW EXCLUSIVE (the lock INSERT, UPDATE
            // and DELETE take) run beside writers; the others hold writers off.
            let exclusive = !matches!(
                lock.lock_mode,
                Some(M::AccessShare | M::RowShare | M::RowExclusive | M::ShareUpdateExclusive)
            );
            let tables = lock.tables.into_iter().map(|t| relation_name(t.name)).collect::<Result<_>>()?;
            Statement::Lock { tables, exclusive, nowait: lock.nowait }
        }
        sql::Statement::Comment { object_type, object_name, comment, if_exists: false } => {
            use crate::ast::CommentKind as K;
            let kind = match object_type {
                sql::CommentObject::Table => K::Table,
                sql::CommentObject::View => K::View,
                sql::CommentObject::Sequence => K::Sequence,
                sql::CommentObject::Index => K::Index,
                sql::CommentObject::Column => K::Column,
                other => return Err(Error::unsupported(format!("COMMENT ON {other}"))),
            };
            let (relation, column) = if kind == K::Column {
                let text = object_name.to_string();
                let mut parts = name_parts(object_name)?;
                let Some(column) = parts.pop().filter(|_| !parts.is_empty()) else {
                    return Err(Error::syntax(format!("column name must be qualified: {text}")));
                };
                (qualify(parts, &text)?, Some(column))
            } else {
                (relation_name(object_name)?, None)
            };
            Statement::Comment { relation, column, kind, comment }
        }
        other => return Err(unsupported_sql("statement", &other)),
    };
    Ok(vec![one])
}

/// An EXPLAIN option's boolean argument (none means true).
fn utility_bool(arg: Option<sql::Expr>) -> Result<bool> {
    let Some(arg) = arg else { return Ok(true) };
    let word = match &arg {
        sql::Expr::Value(v) => match &v.value {
            sql::Value::Boolean(b) => return Ok(*b),
            sql::Value::Number(n, _) => n.clone(),
            sql::Value::SingleQuotedString(s) => s.to_ascii_lowercase(),
            _ => String::new(),
        },
        sql::Expr::Identifier(id) => id.value.to_ascii_lowercase(),
        _ => String::new(),
    };
    match word.as_str() {
        "true" | "on" | "1" => Ok(true),
        "false" | "off" | "0" => Ok(false),
        _ => Err(invalid_parameter(format!("EXPLAIN option requires a Boolean value, got {arg}"))),
    }
}

fn transaction_modes(modes: Vec<sql::TransactionMode>) -> Result<(Option<IsolationLevel>, Option<bool>)> {
    let mut isolation = None;
    let mut read_only = None;
    for mode in modes {
        match mode {
            sql::TransactionMode::IsolationLevel(level) => {
                isolation = Some(match level {
                    // PostgreSQL runs READ UNCOMMITTED as READ COMMITTED.
                    sql::TransactionIsolationLevel::ReadUncommitted | sql::TransactionIsolationLevel::ReadCommitted => {
                        IsolationLevel::ReadCommitted
                    }
                    sql::TransactionIsolationLevel::RepeatableRead => IsolationLevel::RepeatableRead,
                    sql::TransactionIsolationLevel::Serializable => IsolationLevel::Serializable,
                    sql::TransactionIsolationLevel::Snapshot => {
                        return Err(Error::unsupported("ISOLATION LEVEL SNAPSHOT"))
                    }
                })
            }
            sql::TransactionMode::AccessMode(sql::TransactionAccessMode::ReadOnly) => read_only = Some(true),
            sql::TransactionMode::AccessMode(sql::TransactionAccessMode::ReadWrite) => read_only = Some(false),
        }
    }
    Ok((isolation, read_only))
}

fn isolation_name(level: IsolationLevel) -> &'static str {
    match level {
        IsolationLevel::ReadCommitted => "read committed",
        IsolationLevel::RepeatableRead => "repeatable read",
        IsolationLevel::Serializable => "serializable",
    }
}

/// The SET forms `utility` hands to `sqlparser`: SET TRANSACTION, SET SESSION
/// CHARACTERISTICS; the rest only if the hand reader declined them.
fn set_statement(set: sql::Set) -> Result<Vec<Statement>> {
    match set {
        sql::Set::SetTransaction { modes, snapshot, session } => {
            if snapshot.is_some() {
                return Err(Error::unsupported("SET TRANSACTION SNAPSHOT"));
            }
            let (isolation, read_only) = transaction_modes(modes)?;
            if !session {
                return Ok(vec![Statement::SetTransaction { isolation, read_only }]);
            }
            // PostgreSQL implements SESSION CHARACTERISTICS as these two settings.
            let mut out = Vec::new();
            if let Some(level) = isolation {
                out.push(Statement::Set {
                    name: "default_transaction_isolation".into(),
                    value: Some(isolation_name(level).into()),
                    local: false,
                });
            }
            if let Some(read_only) = read_only {
                out.push(Statement::Set {
                    name: "default_transaction_read_only".into(),
                    value: Some(if read_only { "on" } else { "off" }.into()),
                    local: false,
                });
            }
            Ok(out)
        }
        sql::Set::SingleAssignment { variable, values, scope, .. } => {
            let name = name_parts(variable)?.join(".");
            let values = values.iter().map(set_value_text).collect::<Result<Vec<_>>>()?;
            let local = scope == Some(sql::ContextModifier::Local);
            Ok(vec![Statement::Set { name, value: Some(values.join(", ")), local }])
        }
        sql::Set::SetNames { charset_name, collation_name: None } => {
            // PostgreSQL's SET NAMES is client_encoding.
            Ok(vec![Statement::Set { name: "client_encoding".into(), value: Some(charset_name.value), local: false }])
        }
        sql::Set::SetTimeZone { value, local } => {
            Ok(vec![Statement::Set { name: "timezone".into(), value: Some(set_value_text(&value)?), local }])
        }
        other => Err(unsupported_sql("statement", &other)),
    }
}

/// A SET value from `sqlparser`'s tree, rendered as PostgreSQL would store it.
fn set_value_text(e: &sql::Expr) -> Result<String> {
    match e {
        sql::Expr::Identifier(id) => Ok(ident(id.clone())),
        sql::Expr::Value(v) => match &v.value {
            sql::Value::Number(n, _) => Ok(n.clone()),
            sql::Value::Boolean(b) => Ok(if *b { "on" } else { "off" }.into()),
            other => other.clone().into_string().ok_or_else(|| unsupported_sql("SET value", e)),
        },
        sql::Expr::UnaryOp { op: sql::UnaryOperator::Minus, expr } => Ok(format!("-{}", set_value_text(expr)?)),
        other => Err(unsupported_sql("SET value", other)),
    }
}

// ---------------------------------------------------------------------------------------
// SHOW, RESET and SET name = value, read from tokens
// ---------------------------------------------------------------------------------------

mod utility {
    //! PostgreSQL's `VariableShowStmt`, `VariableResetStmt` and the `SET var_name` arm of
    //! `VariableSetStmt`, over the statement's non-whitespace tokens.

    use super::{fold, Error, Result, Statement};
    use crate::ast::Discard;
    use sqlparser::tokenizer::Token;

    /// Reads SHOW, RESET and SET of a variable; None hands the statement to `sqlparser`.
    pub(super) fn parse(tokens: &[&Token]) -> Result<Option<Statement>> {
        let (first, rest) = match tokens.split_first() {
            Some((first, rest)) => (*first, rest),
            None => return Ok(None),
        };
        if is_word(first, "SHOW") {
            show(rest).map(Some)
        } else if is_word(first, "RESET") {
            let name = special_name(rest, true)?;
            Ok(Some(Statement::Reset(name)))
        } else if is_word(first, "SET") {
            set(rest)
        } else if is_word(first, "DISCARD") {
            discard(rest).map(Some)
        } else if is_word(first, "DEALLOCATE") {
            let rest = match rest.split_first() {
                Some((p, after)) if is_word(p, "PREPARE") => after,
                _ => rest,
            };
            Ok(Some(Statement::Deallocate(name_or(rest, "ALL")?)))
        } else if is_word(first, "CLOSE") {
            Ok(Some(Statement::Close(name_or(rest, "ALL")?)))
        } else if is_word(first, "UNLISTEN") {
            match rest {
                [Token::Mul] => Ok(Some(Statement::Unlisten)),
                _ => name_or(rest, "*").map(|_| Some(Statement::Unlisten)),
            }
        } else {
            Ok(None)
        }
    }

    /// DISCARD { ALL | PLANS | SEQUENCES | TEMP | TEMPORARY }.
    fn discard(tokens: &[&Token]) -> Result<Statement> {
        let Some((what, rest)) = tokens.split_first() else { return Err(at_end()) };
        let kind = [
            ("ALL", Discard::All),
            ("PLANS", Discard::Plans),
            ("SEQUENCES", Discard::Sequences),
            ("TEMP", Discard::Temp),
            ("TEMPORARY", Discard::Temp),
        ]
        .into_iter()
        .find(|(w, _)| is_word(what, w))
        .map(|(_, k)| k)
        .ok_or_else(|| near(what))?;
        expect_end(rest)?;
        Ok(Statement::Discard(kind))
    }

    /// One name, or the keyword `all` (None).
    fn name_or(tokens: &[&Token], all: &str) -> Result<Option<String>> {
        match tokens {
            [] => Err(at_end()),
            [Token::Word(w)] if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(all) => Ok(None),
            [Token::Word(w)] => Ok(Some(fold(w.value.clone(), w.quote_style.is_some()))),
            [Token::Word(_), other, ..] | [other, ..] => Err(near(other)),
        }
    }

    fn show(tokens: &[&Token]) -> Result<Statement> {
        Ok(Statement::Show(special_name(tokens, true)?))
    }

    /// The name after SHOW or RESET, with PostgreSQL's multi-word names mapped to the
    /// settings they stand for; `ALL` is "all".
    fn special_name(tokens: &[&Token], whole: bool) -> Result<String> {
        const SPECIAL: [(&[&str], &str); 4] = [
            (&["TRANSACTION", "ISOLATION", "LEVEL"], "transaction_isolation"),
            (&["TIME", "ZONE"], "timezone"),
            (&["SESSION", "AUTHORIZATION"], "session_authorization"),
            (&["ALL"], "all"),
        ];
        for (words, name) in SPECIAL {
            if tokens.len() >= words.len() && tokens.iter().zip(words).all(|(t, w)| is_word(t, w)) {
                expect_end(&tokens[words.len()..])?;
                return Ok(name.to_string());
            }
        }
        let (name, rest) = setting_name(tokens)?;
        if whole {
            expect_end(rest)?;
        }
        Ok(name)
    }

    fn set(tokens: &[&Token]) -> Result<Option<Statement>> {
        let mut tokens = tokens;
        let mut local = false;
        // SET SESSION x = ... and SET LOCAL x = ... (LOCAL: until the transaction ends).
        if let Some((first, rest)) = tokens.split_first() {
            if (is_word(first, "SESSION") || is_word(first, "LOCAL")) && !rest.is_empty() {
                if is_word(rest[0], "CHARACTERISTICS") || is_word(rest[0], "AUTHORIZATION") {
                    return Ok(None);
                }
                local = is_word(first, "LOCAL");
                tokens = rest;
            }
        }
        let Some(first) = tokens.first() else { return Ok(None) };
        if is_word(first, "CONSTRAINTS") && !local {
            return set_constraints(&tokens[1..]).map(Some);
        }
        if ["TRANSACTION", "ROLE", "NAMES", "CONSTRAINTS", "SESSION"].iter().any(|w| is_word(first, w)) {
            return Ok(None);
        }
        if tokens.len() >= 2 && is_word(tokens[0], "TIME") && is_word(tokens[1], "ZONE") {
            let rest = &tokens[2..];
            let value = if rest.len() == 1 && (is_word(rest[0], "LOCAL") || is_word(rest[0], "DEFAULT")) {
                None
            } else {
                values(rest)?
            };
            return Ok(Some(Statement::Set { name: "timezone".into(), value, local }));
        }
        let (name, rest) = setting_name(tokens)?;
        let Some((op, rest)) = rest.split_first() else { return Err(at_end()) };
        if **op != Token::Eq && !is_word(op, "TO") {
            return Err(near(op));
        }
        Ok(Some(Statement::Set { name, value: values(rest)?, local }))
    }

    /// SET CONSTRAINTS { ALL | name [, ...] } { DEFERRED | IMMEDIATE }.
    fn set_constraints(tokens: &[&Token]) -> Result<Statement> {
        let Some((mode, names)) = tokens.split_last() else { return Err(at_end()) };
        let deferred = if is_word(mode, "DEFERRED") {
            true
        } else if is_word(mode, "IMMEDIATE") {
            false
        } else {
            return Err(near(mode));
        };
        if let [all] = names {
            if is_word(all, "ALL") {
                return Ok(Statement::SetConstraints { names: None, deferred });
            }
        }
        let mut out = Vec::new();
        let mut rest = names;
        loop {
            let (name, after) = setting_name(rest)?;
            out.push(name);
            match after.split_first() {
                None => break,
                Some((Token::Comma, after)) => rest = after,
                Some((other, _)) => return Err(near(other)),
            }
        }
        Ok(Statement::SetConstraints { names: Some(out), deferred })
    }

    /// `name[.name...]`, folded.
    fn setting_name<'t>(tokens: &'t [&'t Token]) -> Result<(String, &'t [&'t Token])> {
        let mut parts = Vec::new();
        let mut rest = tokens;
        loop {
            match rest.split_first() {
                Some((Token::Word(w), after)) => {
                    parts.push(fold(w.value.clone(), w.quote_style.is_some()));
                    rest = after;
                }
                Some((other, _)) => return Err(near(other)),
                None => return Err(at_end()),
            }
            match rest.split_first() {
                Some((Token::Period, after)) => rest = after,
                _ => return Ok((parts.join("."), rest)),
            }
        }
    }

    /// `value[, value...]`: words (folded), strings, signed numbers; a lone DEFAULT is None.
    fn values(tokens: &[&Token]) -> Result<Option<String>> {
        if tokens.len() == 1 && is_word(tokens[0], "DEFAULT") {
            return Ok(None);
        }
        let mut out = Vec::new();
        let mut rest = tokens;
        loop {
            let (value, after) = value(rest)?;
            out.push(value);
            match after.split_first() {
                Some((Token::Comma, after)) => rest = after,
                Some((other, _)) => return Err(near(other)),
                None => return Ok(Some(out.join(", "))),
            }
        }
    }

    fn value<'t>(tokens: &'t [&'t Token]) -> Result<(String, &'t [&'t Token])> {
        let Some((first, rest)) = tokens.split_first() else { return Err(at_end()) };
        let text = match first {
            Token::Word(w) => fold(w.value.clone(), w.quote_style.is_some()),
            Token::Number(n, _) => n.clone(),
            Token::SingleQuotedString(s)
            | Token::EscapedStringLiteral(s)
            | Token::NationalStringLiteral(s)
            | Token::UnicodeStringLiteral(s) => s.clone(),
            Token::DollarQuotedString(s) => s.value.clone(),
            Token::Minus | Token::Plus => match rest.split_first() {
                Some((Token::Number(n, _), after)) => {
                    let sign = if **first == Token::Minus { "-" } else { "" };
                    return Ok((format!("{sign}{n}"), after));
                }
                Some((other, _)) => return Err(near(other)),
                None => return Err(at_end()),
            },
            other => return Err(near(other)),
        };
        Ok((text, rest))
    }

    fn expect_end(tokens: &[&Token]) -> Result<()> {
        match tokens.first() {
            Some(t) => Err(near(t)),
            None => Ok(()),
        }
    }

    fn is_word(t: &Token, word: &str) -> bool {
        matches!(t, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word))
    }

    fn near(t: &Token) -> Error {
        Error::syntax(format!("syntax error at or near \"{t}\""))
    }

    fn at_end() -> Error {
        Error::syntax("syntax error at end of input")
    }
}

// ---------------------------------------------------------------------------------------
// DDL
// ---------------------------------------------------------------------------------------

mod ddl {
    //! CREATE TABLE, CREATE INDEX, TRUNCATE.

    use super::*;

    pub(super) fn create_table(c: sql::CreateTable) -> Result<Statement> {
        if c.or_replace || c.external || c.transient || c.volatile || c.iceberg || c.dynamic {
            return Err(Error::unsupported("this form of CREATE TABLE"));
        }
        if c.temporary || c.global.is_some() {
            return Err(Error::unsupported("temporary tables"));
        }
        if c.unlogged {
            return Err(Error::unsupported("unlogged tables"));
        }
        if c.query.is_some() {
            return Err(Error::unsupported("CREATE TABLE AS"));
        }
        if c.like.is_some() || c.clone.is_some() {
            return Err(Error::unsupported("CREATE TABLE LIKE"));
        }
        if c.inherits.is_some() || c.partition_of.is_some() || c.partition_by.is_some() {
            return Err(Error::unsupported("table inheritance and partitioning"));
        }
        if c.on_commit.is_some() {
            return Err(Error::unsupported("ON COMMIT"));
        }
        match &c.table_options {
            // Storage parameters such as fillfactor only tune PostgreSQL's heap.
            sql::CreateTableOptions::None | sql::CreateTableOptions::With(_) => {}
            other => return Err(unsupported_sql("table option", other)),
        }
        let name = new_relation_name(c.name)?;
        let mut columns = Vec::new();
        let mut constraints = Vec::new();
        for column in c.columns {
            columns.push(column_def(column, &mut constraints)?);
        }
        for constraint in c.constraints {
            constraints.push(table_constraint(constraint)?);
        }
        Ok(Statement::CreateTable { name, if_not_exists: c.if_not_exists, columns, constraints })
    }

    /// A column, its column constraints appended to `constraints`.
    fn column_def(c: sql::ColumnDef, constraints: &mut Vec<TableConstraint>) -> Result<ColumnDef> {
        let name = ident(c.name);
        let (data_type, serial) = column_type(c.data_type)?;
        // SERIAL is `integer NOT NULL DEFAULT nextval(...)`.
        let mut column = ColumnDef { name, data_type, not_null: serial, default: None, serial };
        for option in c.options {
            let constraint_name = option.name.map(ident);
            match option.option {
                sql::ColumnOption::Null => {}
                sql::ColumnOption::NotNull => column.not_null = true,
                sql::ColumnOption::Default(e) => {
                    if column.serial || column.default.is_some() {
                        return Err(multiple_defaults(&column.name));
                    }
                    column.default = Some(super::expr(e)?);
                }
                sql::ColumnOption::PrimaryKey(pk) => {
                    characteristics(pk.characteristics)?;
                    column.not_null = true;
                    constraints.push(TableConstraint::PrimaryKey {
                        name: constraint_name,
                        columns: vec![column.name.clone()],
                    });
                }
                sql::ColumnOption::Unique(u) => {
                    characteristics(u.characteristics)?;
                    nulls_distinct(&u.nulls_distinct)?;
                    constraints
                        .push(TableConstraint::Unique { name: constraint_name, columns: vec![column.name.clone()] });
                }
                sql::ColumnOption::ForeignKey(fk) => {
                    let mut fk = foreign_key(fk)?;
                    if let TableConstraint::ForeignKey { name, columns, .. } = &mut fk {
                        *name = constraint_name;
                        *columns = vec![column.name.clone()];
                    }
                    constraints.push(fk);
                }
                sql::ColumnOption::Check(check) => {
                    if check.no_inherit || check.enforced == Some(false) {
                        return Err(Error::unsupported("CHECK ... NO INHERIT / NOT ENFORCED"));
                    }
                    constraints.push(TableConstraint::Check { name: constraint_name, expr: super::expr(*check.expr)? });
                }
                sql::ColumnOption::Generated { generated_as, sequence_options, generation_expr, .. } => {
                    if generation_expr.is_some() || generated_as == sql::GeneratedAs::ExpStored {
                        return Err(Error::unsupported("generated columns"));
                    }
                    if sequence_options.is_some_and(|o| !o.is_empty()) {
                        return Err(Error::unsupported("identity sequence options"));
                    }
                    if column.serial || column.default.is_some() {
                        return Err(multiple_defaults(&column.name));
                    }
                    if !matches!(column.data_type, DataType::Int2 | DataType::Int4 | DataType::Int8) {
                        return Err(Error::new(
                            codes::INVALID_PARAMETER_VALUE,
                            "identity column type must be smallint, integer, or bigint",
                        ));
                    }
                    column.serial = true;
                    column.not_null = true;
                }
                // Text compares bytewise here, as the "C" collation does: the collations
                // that mean that are accepted on the string types.
                sql::ColumnOption::Collation(collation) => {
                    if !matches!(column.data_type, DataType::Text | DataType::Varchar(_) | DataType::Char(_)) {
                        return Err(Error::new(
                            codes::DATATYPE_MISMATCH,
                            format!("collations are not supported by type {}", column.data_type.type_name()),
                        ));
                    }
                    postgres::check_collation(collation)?;
                }
                other => return Err(unsupported_sql("column option", &other)),
            }
        }
        Ok(column)
    }

    fn multiple_defaults(column: &str) -> Error {
        Error::syntax(format!("multiple default values specified for column \"{column}\""))
    }

    fn characteristics(c: Option<sql::ConstraintCharacteristics>) -> Result<()> {
        match c {
            Some(c) if c.deferrable == Some(true) || c.initially.is_some() || c.enforced == Some(false) => {
                Err(Error::unsupported("deferrable or unenforced constraints"))
            }
            _ => Ok(()),
        }
    }

    fn nulls_distinct(n: &sql::NullsDistinctOption) -> Result<()> {
        match n {
            sql::NullsDistinctOption::NotDistinct => Err(Error::unsupported("UNIQUE NULLS NOT DISTINCT")),
            _ => Ok(()),
        }
    }

    /// A foreign key's DEFERRABLE and INITIALLY DEFERRED (which implies DEFERRABLE).
    fn fk_characteristics(c: Option<sql::ConstraintCharacteristics>) -> Result<(bool, bool)> {
        let Some(c) = c else { return Ok((false, false)) };
        if c.enforced == Some(false) {
            return Err(Error::unsupported("unenforced constraints"));
        }
        let initially_deferred = matches!(c.initially, Some(sql::DeferrableInitial::Deferred));
        if initially_deferred && c.deferrable == Some(false) {
            return Err(Error::syntax("constraint declared INITIALLY DEFERRED must be DEFERRABLE"));
        }
        Ok((c.deferrable == Some(true) || initially_deferred, initially_deferred))
    }

    fn foreign_key(fk: sql::ForeignKeyConstraint) -> Result<TableConstraint> {
        let (deferrable, initially_deferred) = fk_characteristics(fk.characteristics)?;
        if matches!(
            fk.match_kind,
            Some(sql::ConstraintReferenceMatchKind::Full | sql::ConstraintReferenceMatchKind::Partial)
        ) {
            return Err(Error::unsupported("MATCH FULL / MATCH PARTIAL"));
        }
        Ok(TableConstraint::ForeignKey {
            name: fk.name.map(ident),
            columns: idents(fk.columns),
            foreign_table: relation_name(fk.foreign_table)?,
            referred_columns: idents(fk.referred_columns),
            on_delete: referential_action(fk.on_delete)?,
            on_update: referential_action(fk.on_update)?,
            deferrable,
            initially_deferred,
        })
    }

    fn referential_action(a: Option<sql::ReferentialAction>) -> Result<ReferentialAction> {
        Ok(match a {
            None | Some(sql::ReferentialAction::NoAction) => ReferentialAction::NoAction,
            Some(sql::ReferentialAction::Restrict) => ReferentialAction::Restrict,
            Some(sql::ReferentialAction::Cascade) => ReferentialAction::Cascade,
            Some(sql::ReferentialAction::SetNull) => ReferentialAction::SetNull,
            Some(sql::ReferentialAction::SetDefault) => return Err(Error::unsupported("ON DELETE/UPDATE SET DEFAULT")),
        })
    }

    fn table_constraint(c: sql::TableConstraint) -> Result<TableConstraint> {
        match c {
            sql::TableConstraint::PrimaryKey(pk) => {
                characteristics(pk.characteristics)?;
                if !pk.include.is_empty() || pk.index_type.is_some() {
                    return Err(Error::unsupported("PRIMARY KEY index options"));
                }
                Ok(TableConstraint::PrimaryKey { name: pk.name.map(ident), columns: key_columns(pk.columns)? })
            }
            sql::TableConstraint::Unique(u) => {
                characteristics(u.characteristics)?;
                nulls_distinct(&u.nulls_distinct)?;
                if !u.include.is_empty() || u.index_type.is_some() {
                    return Err(Error::unsupported("UNIQUE index options"));
                }
                Ok(TableConstraint::Unique { name: u.name.map(ident), columns: key_columns(u.columns)? })
            }
            sql::TableConstraint::ForeignKey(fk) => foreign_key(fk),
            sql::TableConstraint::Check(check) => {
                if check.no_inherit || check.enforced == Some(false) {
                    return Err(Error::unsupported("CHECK ... NO INHERIT / NOT ENFORCED"));
                }
                Ok(TableConstraint::Check { name: check.name.map(ident), expr: super::expr(*check.expr)? })
            }
            other => Err(unsupported_sql("table constraint", &other)),
        }
    }

    /// B-tree operator classes an index column may name. Text compares by its bytes here
    /// (the C collation), which is the order the `*_pattern_ops` classes give, so each is
    /// the column type's one ordering.
    const BTREE_OPERATOR_CLASSES: [&str; 16] = [
        "text_pattern_ops",
        "varchar_pattern_ops",
        "bpchar_pattern_ops",
        "text_ops",
        "varchar_ops",
        "bpchar_ops",
        "int2_ops",
        "int4_ops",
        "int8_ops",
        "numeric_ops",
        "float4_ops",
        "float8_ops",
        "bool_ops",
        "date_ops",
        "timestamp_ops",
        "uuid_ops",
    ];

    /// Plain column names of a key or index; expressions are 0A000, an operator class other
    /// than a B-tree one is 42704.
    fn key_columns(columns: Vec<sql::IndexColumn>) -> Result<Vec<String>> {
        columns
            .into_iter()
            .map(|c| {
                if let Some(class) = c.operator_class {
                    let parts = name_parts(class)?;
                    let name = parts.last().map(String::as_str).unwrap_or_default();
                    if !BTREE_OPERATOR_CLASSES.contains(&name) {
                        return Err(Error::new(
                            codes::UNDEFINED_OBJECT,
                            format!("operator class \"{name}\" does not exist for access method \"btree\""),
                        ));
                    }
                }
                match c.column.expr {
                    sql::Expr::Identifier(id) => Ok(ident(id)),
                    other => Err(unsupported_sql("index expression", &other)),
                }
            })
            .collect()
    }

    pub(super) fn create_index(c: sql::CreateIndex) -> Result<Statement> {
        match &c.using {
            None | Some(sql::IndexType::BTree) => {}
            Some(other) => return Err(Error::unsupported(format!("index method {other}"))),
        }
        if c.predicate.is_some() {
            return Err(Error::unsupported("partial indexes"));
        }
        if !c.include.is_empty() {
            return Err(Error::unsupported("INCLUDE columns"));
        }
        if c.nulls_distinct == Some(false) {
            return Err(Error::unsupported("NULLS NOT DISTINCT"));
        }
        if !c.index_options.is_empty() || !c.alter_options.is_empty() || c.r#async {
            return Err(Error::unsupported("this form of CREATE INDEX"));
        }
        // CONCURRENTLY, ASC/DESC, NULLS FIRST/LAST and WITH (...) change how PostgreSQL
        // builds or lays out the index, never what it answers: accepted and ignored.
        Ok(Statement::CreateIndex {
            name: c.name.map(relation_name).transpose()?,
            table: relation_name(c.table_name)?,
            columns: key_columns(c.columns)?,
            unique: c.unique,
            if_not_exists: c.if_not_exists,
        })
    }

    pub(super) fn alter_table(a: sql::AlterTable) -> Result<Statement> {
        if a.location.is_some() || a.on_cluster.is_some() || a.table_type.is_some() {
            return Err(Error::unsupported("this form of ALTER TABLE"));
        }
        // ONLY t is t: Bulwark has no table inheritance.
        let name = relation_name(a.name)?;
        let actions = a.operations.into_iter().map(alter_action).collect::<Result<_>>()?;
        Ok(Statement::AlterTable { name, if_exists: a.if_exists, actions })
    }

    fn alter_action(op: sql::AlterTableOperation) -> Result<AlterAction> {
        use self::sql::AlterTableOperation as Op;
        Ok(match op {
            Op::AddColumn { if_not_exists, column_def: def, column_position: None, .. } => {
                let mut constraints = Vec::new();
                let column = column_def(def, &mut constraints)?;
                AlterAction::AddColumn { column, constraints, if_not_exists }
            }
            Op::DropColumn { column_names, if_exists, drop_behavior, .. } => {
                let cascade = drop_behavior == Some(sql::DropBehavior::Cascade);
                let mut names = idents(column_names);
                if names.len() != 1 {
                    return Err(Error::unsupported("dropping several columns in one action"));
                }
                AlterAction::DropColumn { name: names.remove(0), if_exists, cascade }
            }
            Op::RenameColumn { old_column_name, new_column_name } => {
                AlterAction::RenameColumn { old: ident(old_column_name), new: ident(new_column_name) }
            }
            Op::RenameTable { table_name: sql::RenameTableNameKind::To(name) } => {
                AlterAction::RenameTable(relation_name(name)?)
            }
            Op::AddConstraint { constraint, not_valid: false } => {
                AlterAction::AddConstraint(table_constraint(constraint)?)
            }
            Op::DropConstraint { if_exists, name, drop_behavior } => {
                if drop_behavior == Some(sql::DropBehavior::Cascade) {
                    return Err(Error::unsupported("DROP CONSTRAINT ... CASCADE"));
                }
                AlterAction::DropConstraint { name: ident(name), if_exists }
            }
            Op::AlterColumn { column_name, op } => {
                let column = ident(column_name);
                match op {
                    sql::AlterColumnOperation::SetDefault { value } => {
                        AlterAction::SetDefault { column, default: Some(super::expr(value)?) }
                    }
                    sql::AlterColumnOperation::DropDefault => AlterAction::SetDefault { column, default: None },
                    sql::AlterColumnOperation::SetNotNull => AlterAction::SetNotNull { column, not_null: true },
                    sql::AlterColumnOperation::DropNotNull => AlterAction::SetNotNull { column, not_null: false },
                    sql::AlterColumnOperation::SetDataType { data_type: t, using, .. } => AlterAction::SetType {
                        column,
                        data_type: data_type(t)?,
                        using: using.map(super::expr).transpose()?,
                    },
                    other => return Err(unsupported_sql("ALTER COLUMN", &other)),
                }
            }
            other => return Err(unsupported_sql("ALTER TABLE action", &other)),
        })
    }

    pub(super) fn truncate(t: sql::Truncate) -> Result<Statement> {
        let restart_identity = matches!(t.identity, Some(sql::TruncateIdentityOption::Restart));
        if t.partitions.is_some() || t.on_cluster.is_some() || t.if_exists {
            return Err(Error::unsupported("this form of TRUNCATE"));
        }
        let cascade = matches!(t.cascade, Some(sql::CascadeOption::Cascade));
        let tables = t.table_names.into_iter().map(|target| relation_name(target.name)).collect::<Result<_>>()?;
        Ok(Statement::Truncate { tables, cascade, restart_identity })
    }
}

// ---------------------------------------------------------------------------------------
// DML
// ---------------------------------------------------------------------------------------

mod dml {
    //! INSERT, UPDATE, DELETE.

    use super::*;

    pub(super) fn insert(i: sql::Insert) -> Result<Statement> {
        let table = match i.table {
            sql::TableObject::TableName(name) => relation_name(name)?,
            other => return Err(unsupported_sql("INSERT target", &other)),
        };
        if i.table_alias.is_some() {
            return Err(Error::unsupported("INSERT INTO ... AS alias"));
        }
        if i.overriding.is_some() {
            return Err(Error::unsupported("OVERRIDING ... VALUE"));
        }
        if i.or.is_some()
            || i.ignore
            || i.overwrite
            || i.replace_into
            || i.partitioned.is_some()
            || !i.assignments.is_empty()
            || i.output.is_some()
        {
            return Err(Error::unsupported("this form of INSERT"));
        }
        let columns = if i.columns.is_empty() {
            None
        } else {
            Some(i.columns.into_iter().map(column_name).collect::<Result<_>>()?)
        };
        let source = match i.source {
            None => InsertSource::DefaultValues,
            Some(q) => insert_source(*q)?,
        };
        let on_conflict = match i.on {
            None => None,
            Some(sql::OnInsert::OnConflict(c)) => Some(on_conflict(c)?),
            Some(other) => return Err(unsupported_sql("clause", &other)),
        };
        Ok(Statement::Insert { table, columns, source, on_conflict, returning: returning(i.returning)? })
    }

    /// A bare VALUES list becomes rows (where DEFAULT is allowed); anything else a query.
    fn insert_source(q: sql::Query) -> Result<InsertSource> {
        let plain = q.with.is_none()
            && q.order_by.is_none()
            && q.limit_clause.is_none()
            && q.fetch.is_none()
            && q.locks.is_empty();
        match *q.body {
            sql::SetExpr::Values(values) if plain => Ok(InsertSource::Values(
                values
                    .rows
                    .into_iter()
                    .map(|row| row.content.into_iter().map(value_expr).collect())
                    .collect::<Result<_>>()?,
            )),
            body => {
                let q = sql::Query { body: Box::new(body), ..q };
                Ok(InsertSource::Query(Box::new(query(q)?)))
            }
        }
    }

    fn on_conflict(c: sql::OnConflict) -> Result<OnConflict> {
        let (columns, constraint) = match c.conflict_target {
            None => (Vec::new(), None),
            Some(sql::ConflictTarget::Columns { columns, predicate: None }) => (idents(columns), None),
            Some(sql::ConflictTarget::Columns { predicate: Some(_), .. }) => {
                return Err(Error::unsupported("ON CONFLICT (...) WHERE"))
            }
            Some(sql::ConflictTarget::OnConstraint(name)) => (Vec::new(), Some(relation_name(name)?)),
        };
        let update = match c.action {
            sql::OnConflictAction::DoNothing => None,
            sql::OnConflictAction::DoUpdate(u) => {
                if columns.is_empty() && constraint.is_none() {
                    return Err(Error::syntax(
                        "ON CONFLICT DO UPDATE requires inference specification or constraint name",
                    )
                    .with_hint("For example, ON CONFLICT (column_name)."));
                }
                let filter = u.selection.map(expr).transpose()?;
                Some((assignments(u.assignments)?, filter))
            }
        };
        Ok(OnConflict { columns, constraint, update })
    }

    pub(super) fn update(u: sql::Update) -> Result<Statement> {
        if !u.order_by.is_empty() || u.limit.is_some() || u.or.is_some() || u.output.is_some() || u.on_cluster.is_some()
        {
            return Err(Error::unsupported("this form of UPDATE"));
        }
        let (table, alias) = single_table(u.table)?;
        let from = match u.from {
            None => Vec::new(),
            Some(sql::UpdateTableFromKind::AfterSet(items)) => {
                items.into_iter().map(table_with_joins).collect::<Result<_>>()?
            }
            Some(sql::UpdateTableFromKind::BeforeSet(_)) => return Err(Error::unsupported("UPDATE FROM ... SET")),
        };
        Ok(Statement::Update {
            table,
            alias,
            assignments: assignments(u.assignments)?,
            from,
            filter: u.selection.map(expr).transpose()?,
            returning: returning(u.returning)?,
        })
    }

    pub(super) fn delete(d: sql::Delete) -> Result<Statement> {
        if !d.tables.is_empty()
            || !d.order_by.is_empty()
            || d.limit.is_some()
            || d.output.is_some()
            || d.on_cluster.is_some()
        {
            return Err(Error::unsupported("this form of DELETE"));
        }
        let mut from = match d.from {
            sql::FromTable::WithFromKeyword(from) | sql::FromTable::WithoutKeyword(from) => from,
        };
        if from.len() != 1 {
            return Err(Error::unsupported("DELETE from several tables"));
        }
        let (table, alias) = single_table(from.remove(0))?;
        let using = d.using.unwrap_or_default().into_iter().map(table_with_joins).collect::<Result<_>>()?;
        Ok(Statement::Delete {
            table,
            alias,
            using,
            filter: d.selection.map(expr).transpose()?,
            returning: returning(d.returning)?,
        })
    }

    /// The one table of an UPDATE or DELETE, with its alias.
    fn single_table(t: sql::TableWithJoins) -> Result<(String, Option<String>)> {
        if !t.joins.is_empty() {
            return Err(Error::unsupported("joins in UPDATE or DELETE"));
        }
        match t.relation {
            sql::TableFactor::Table { name, alias, args: None, .. } => {
                let alias = match alias.map(table_alias).transpose()? {
                    Some((_, columns)) if !columns.is_empty() => {
                        return Err(Error::syntax("syntax error at or near \"(\""));
                    }
                    alias => alias.map(|(name, _)| name),
                };
                Ok((relation_name(name)?, alias))
            }
            other => Err(unsupported_sql("UPDATE or DELETE target", &other)),
        }
    }

    fn assignments(list: Vec<sql::Assignment>) -> Result<Vec<(String, Expr)>> {
        list.into_iter()
            .map(|a| match a.target {
                sql::AssignmentTarget::ColumnName(name) => Ok((column_name(name)?, value_expr(a.value)?)),
                sql::AssignmentTarget::Tuple(_) => Err(Error::unsupported("SET (a, b) = (...)")),
            })
            .collect()
    }

    fn returning(items: Option<Vec<sql::SelectItem>>) -> Result<Vec<SelectItem>> {
        items.unwrap_or_default().into_iter().map(select_item).collect()
    }
}

// ---------------------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------------------

fn query(q: sql::Query) -> Result<Query> {
    if q.for_clause.is_some() || q.settings.is_some() || q.format_clause.is_some() || !q.pipe_operators.is_empty() {
        return Err(unsupported_sql("query", &q));
    }
    let mut with = Vec::new();
    if let Some(w) = q.with {
        for cte in w.cte_tables {
            if cte.from.is_some() {
                return Err(Error::unsupported("this form of WITH"));
            }
            let (name, columns) = table_alias(cte.alias)?;
            // [NOT] MATERIALIZED is a planner hint: ignored.
            with.push(Cte { name, columns, query: query(*cte.query)?, recursive: w.recursive });
        }
    }
    let order_by = match q.order_by {
        None => Vec::new(),
        Some(sql::OrderBy { kind: sql::OrderByKind::Expressions(items), interpolate: None }) => {
            items.into_iter().map(order_by_item).collect::<Result<_>>()?
        }
        Some(other) => return Err(unsupported_sql("ORDER BY", &other)),
    };
    let (mut limit, offset) = match q.limit_clause {
        None => (None, None),
        Some(sql::LimitClause::LimitOffset { limit, offset, limit_by }) => {
            if !limit_by.is_empty() {
                return Err(Error::unsupported("LIMIT BY"));
            }
            (limit.map(expr).transpose()?, offset.map(|o| expr(o.value)).transpose()?)
        }
        Some(other) => return Err(unsupported_sql("LIMIT", &other)),
    };
    if let Some(fetch) = q.fetch {
        if fetch.with_ties || fetch.percent {
            return Err(Error::unsupported("FETCH ... WITH TIES / PERCENT"));
        }
        if limit.is_some() {
            return Err(Error::syntax("multiple LIMIT clauses not allowed"));
        }
        limit = Some(match fetch.quantity {
            Some(e) => expr(e)?,
            None => Expr::Literal(Value::Int4(1)),
        });
    }
    let locking = match q.locks.len() {
        0 => None,
        1 => Some(locking(q.locks.into_iter().next().expect("one lock clause"))?),
        _ => return Err(Error::unsupported("several locking clauses")),
    };
    Ok(Query { with, body: set_expr(*q.body)?, order_by, limit, offset, locking })
}

fn locking(lock: sql::LockClause) -> Result<Locking> {
    if lock.of.is_some() {
        return Err(Error::unsupported("FOR UPDATE OF"));
    }
    Ok(Locking {
        exclusive: lock.lock_type == sql::LockType::Update,
        nowait: lock.nonblock == Some(sql::NonBlock::Nowait),
        skip_locked: lock.nonblock == Some(sql::NonBlock::SkipLocked),
    })
}

fn order_by_item(o: sql::OrderByExpr) -> Result<OrderBy> {
    if o.with_fill.is_some() {
        return Err(Error::unsupported("WITH FILL"));
    }
    let desc = match o.options.sort {
        None | Some(sql::OrderBySort::Asc) => false,
        Some(sql::OrderBySort::Desc) => true,
        Some(sql::OrderBySort::Using(_)) => return Err(Error::unsupported("ORDER BY ... USING")),
    };
    Ok(OrderBy { expr: expr(o.expr)?, desc, nulls_first: o.options.nulls_first })
}

fn set_expr(body: sql::SetExpr) -> Result<SetExpr> {
    match body {
        sql::SetExpr::Select(s) => Ok(SetExpr::Select(Box::new(select(*s)?))),
        sql::SetExpr::Query(q) => Ok(SetExpr::Query(Box::new(query(*q)?))),
        sql::SetExpr::Values(values) => Ok(SetExpr::Values(
            values.rows.into_iter().map(|row| row.content.into_iter().map(expr).collect()).collect::<Result<_>>()?,
        )),
        sql::SetExpr::SetOperation { left, op, set_quantifier, right } => {
            let op = match op {
                sql::SetOperator::Union => SetOperator::Union,
                sql::SetOperator::Intersect => SetOperator::Intersect,
                sql::SetOperator::Except => SetOperator::Except,
                sql::SetOperator::Minus => return Err(Error::unsupported("MINUS")),
            };
            let all = match set_quantifier {
                sql::SetQuantifier::All => true,
                sql::SetQuantifier::Distinct | sql::SetQuantifier::None => false,
                other => return Err(Error::unsupported(format!("{op:?} {other}"))),
            };
            Ok(SetExpr::SetOp { op, all, left: Box::new(set_expr(*left)?), right: Box::new(set_expr(*right)?) })
        }
        other => Err(unsupported_sql("query", &other)),
    }
}

fn select(s: sql::Select) -> Result<Select> {
    if s.into.is_some() {
        return Err(Error::unsupported("SELECT INTO"));
    }
    if s.top.is_some() || s.exclude.is_some() || s.select_modifiers.is_some() {
        return Err(unsupported_sql("SELECT", &s));
    }
    if !s.lateral_views.is_empty()
        || s.prewhere.is_some()
        || !s.connect_by.is_empty()
        || !s.cluster_by.is_empty()
        || !s.distribute_by.is_empty()
        || !s.sort_by.is_empty()
        || s.qualify.is_some()
        || s.value_table_mode.is_some()
        || s.flavor != sql::SelectFlavor::Standard
        || !s.optimizer_hints.is_empty()
    {
        return Err(unsupported_sql("SELECT", &s));
    }
    if !s.named_window.is_empty() {
        return Err(Error::unsupported("window functions"));
    }
    let mut distinct_on = Vec::new();
    let distinct = match s.distinct {
        None | Some(sql::Distinct::All) => false,
        Some(sql::Distinct::Distinct) => true,
        Some(sql::Distinct::On(exprs)) => {
            distinct_on = exprs.into_iter().map(expr).collect::<Result<_>>()?;
            false
        }
    };
    let group_by = match s.group_by {
        sql::GroupByExpr::Expressions(exprs, modifiers) if modifiers.is_empty() => {
            exprs.into_iter().map(expr).collect::<Result<_>>()?
        }
        other => return Err(unsupported_sql("GROUP BY", &other)),
    };
    Ok(Select {
        distinct,
        distinct_on,
        items: s.projection.into_iter().map(select_item).collect::<Result<_>>()?,
        from: s.from.into_iter().map(table_with_joins).collect::<Result<_>>()?,
        filter: s.selection.map(expr).transpose()?,
        group_by,
        having: s.having.map(expr).transpose()?,
    })
}

fn select_item(item: sql::SelectItem) -> Result<SelectItem> {
    match item {
        sql::SelectItem::UnnamedExpr(e) => Ok(SelectItem::Expr { expr: expr(e)?, alias: None }),
        sql::SelectItem::ExprWithAlias { expr: e, alias } => {
            Ok(SelectItem::Expr { expr: expr(e)?, alias: Some(ident(alias)) })
        }
        sql::SelectItem::Wildcard(options) => {
            wildcard_options(&options)?;
            Ok(SelectItem::Wildcard)
        }
        sql::SelectItem::QualifiedWildcard(sql::SelectItemQualifiedWildcardKind::ObjectName(name), options) => {
            wildcard_options(&options)?;
            Ok(SelectItem::QualifiedWildcard(relation_name(name)?))
        }
        other => Err(unsupported_sql("select item", &other)),
    }
}

fn wildcard_options(o: &sql::WildcardAdditionalOptions) -> Result<()> {
    if o.opt_ilike.is_some()
        || o.opt_exclude.is_some()
        || o.opt_except.is_some()
        || o.opt_replace.is_some()
        || o.opt_rename.is_some()
        || o.opt_alias.is_some()
    {
        return Err(Error::unsupported("wildcard options"));
    }
    Ok(())
}

/// A FROM item and its joins, folded left-deep.
fn table_with_joins(t: sql::TableWithJoins) -> Result<TableRef> {
    let mut left = table_factor(t.relation)?;
    for join in t.joins {
        let right = table_factor(join.relation)?;
        let (kind, constraint) = match join.join_operator {
            sql::JoinOperator::Join(c) | sql::JoinOperator::Inner(c) => (JoinKind::Inner, c),
            sql::JoinOperator::Left(c) | sql::JoinOperator::LeftOuter(c) => (JoinKind::Left, c),
            sql::JoinOperator::Right(c) | sql::JoinOperator::RightOuter(c) => (JoinKind::Right, c),
            sql::JoinOperator::FullOuter(c) => (JoinKind::Full, c),
            sql::JoinOperator::CrossJoin(c) => (JoinKind::Cross, c),
            other => return Err(Error::unsupported(format!("join {other:?}"))),
        };
        let (mut on, mut using, mut natural) = (None, Vec::new(), false);
        match (kind, constraint) {
            (JoinKind::Cross, sql::JoinConstraint::None) => {}
            (JoinKind::Cross, _) => return Err(Error::syntax("syntax error at or near \"ON\"")),
            (_, sql::JoinConstraint::On(e)) => on = Some(expr(e)?),
            (_, sql::JoinConstraint::Using(columns)) => {
                for c in columns {
                    let c = column_name(c)?;
                    if using.contains(&c) {
                        return Err(Error::new(
                            codes::DUPLICATE_COLUMN,
                            format!("column name \"{c}\" appears more than once in USING clause"),
                        ));
                    }
                    using.push(c);
                }
            }
            (_, sql::JoinConstraint::Natural) => natural = true,
            (_, sql::JoinConstraint::UsingAlias(..)) => return Err(Error::unsupported("JOIN ... USING ... AS")),
            (_, sql::JoinConstraint::None) => return Err(Error::syntax("JOIN requires an ON or USING clause")),
        }
        left = TableRef::Join { left: Box::new(left), right: Box::new(right), kind, on, using, natural };
    }
    Ok(left)
}

/// An alias and its column aliases (`AS a(x, y)`).
fn table_alias(a: sql::TableAlias) -> Result<(String, Vec<String>)> {
    let mut columns = Vec::with_capacity(a.columns.len());
    for c in a.columns {
        if c.data_type.is_some() {
            return Err(Error::unsupported("column definitions in an alias"));
        }
        columns.push(ident(c.name));
    }
    Ok((ident(a.name), columns))
}

fn table_factor(t: sql::TableFactor) -> Result<TableRef> {
    match t {
        sql::TableFactor::Table {
            name, alias, args, with_hints, version, with_ordinality, partitions, sample, ..
        } => {
            if let Some(args) = args {
                if !with_hints.is_empty() || version.is_some() || !partitions.is_empty() || sample.is_some() {
                    return Err(unsupported_sql("table reference", &name));
                }
                return postgres::table_function(name, args, alias, with_ordinality);
            }
            if with_ordinality {
                return Err(Error::unsupported(format!("WITH ORDINALITY on table {name}")));
            }
            if !with_hints.is_empty() || version.is_some() || !partitions.is_empty() || sample.is_some() {
                return Err(unsupported_sql("table reference", &name));
            }
            // ONLY t is t: Bulwark has no table inheritance.
            let (alias, columns) = match alias.map(table_alias).transpose()? {
                Some((alias, columns)) => (Some(alias), columns),
                None => (None, Vec::new()),
            };
            Ok(TableRef::Table { name: relation_name(name)?, alias, columns })
        }
        sql::TableFactor::Derived { lateral, subquery, alias, sample } => {
            if lateral {
                return Err(Error::unsupported("LATERAL"));
            }
            if sample.is_some() {
                return Err(Error::unsupported("TABLESAMPLE"));
            }
            // PostgreSQL 16 names an unaliased subquery this way.
            let (alias, columns) =
                alias.map(table_alias).transpose()?.unwrap_or_else(|| ("unnamed_subquery".into(), Vec::new()));
            Ok(TableRef::Subquery { query: Box::new(query(*subquery)?), alias, columns })
        }
        sql::TableFactor::NestedJoin { table_with_joins: inner, alias: None } => table_with_joins(*inner),
        sql::TableFactor::Function { name, .. } => Err(Error::unsupported(format!("table function {name}"))),
        sql::TableFactor::UNNEST { alias, array_exprs, with_offset: false, with_ordinality, .. } => {
            postgres::unnest(array_exprs, alias, with_ordinality)
        }
        other => Err(unsupported_sql("FROM item", &other)),
    }
}

// ---------------------------------------------------------------------------------------
// Expressions
// ---------------------------------------------------------------------------------------

/// An expression where `DEFAULT` is allowed: INSERT VALUES items and UPDATE SET values.
fn value_expr(e: sql::Expr) -> Result<Expr> {
    match e {
        sql::Expr::Identifier(id) if is_default(&id) => Ok(Expr::Default),
        other => expr(other),
    }
}

/// `sqlparser` reads a bare DEFAULT as an identifier; PostgreSQL reserves the word, so a
/// column of that name must be quoted and cannot be confused with it.
fn is_default(id: &sql::Ident) -> bool {
    id.quote_style.is_none() && id.value.eq_ignore_ascii_case("default")
}

fn boxed(e: sql::Expr) -> Result<Box<Expr>> {
    expr(e).map(Box::new)
}

fn function_call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function { name: name.to_string(), args, distinct: false, star: false, order_by: vec![] }
}

fn expr(e: sql::Expr) -> Result<Expr> {
    let _depth = ExprDepth::enter()?;
    if let sql::Expr::BinaryOp { op: op @ (sql::BinaryOperator::And | sql::BinaryOperator::Or), .. } = &e {
        let op = op.clone();
        return logical_chain(e, op);
    }
    expr_node(e)
}

/// `a AND b AND c ...` (or OR), however long, without recursing along the chain: its
/// operands in written order, joined left to right, or as a balanced tree when the chain
/// is long (AND and OR are associative, also with NULLs).
fn logical_chain(e: sql::Expr, op: sql::BinaryOperator) -> Result<Expr> {
    let mut operands = Vec::new();
    let mut pending = vec![e];
    while let Some(e) = pending.pop() {
        match e {
            sql::Expr::BinaryOp { left, op: o, right } if o == op => {
                pending.push(*right);
                pending.push(*left);
            }
            other => operands.push(expr(other)?),
        }
    }
    let op = binary_op(&op)?;
    let join = |left: Expr, right: Expr| Expr::Binary { op, left: Box::new(left), right: Box::new(right) };
    if operands.len() < LOGICAL_CHAIN_BALANCE_MIN {
        let mut operands = operands.into_iter();
        let first = operands.next().ok_or_else(|| Error::syntax("empty expression"))?;
        return Ok(operands.fold(first, join));
    }
    // Pairwise rounds: a tree of depth log2(n).
    while operands.len() > 1 {
        let mut next = Vec::with_capacity(operands.len().div_ceil(2));
        let mut it = operands.into_iter();
        while let Some(left) = it.next() {
            next.push(match it.next() {
                Some(right) => join(left, right),
                None => left,
            });
        }
        operands = next;
    }
    operands.pop().ok_or_else(|| Error::syntax("empty expression"))
}

fn expr_node(e: sql::Expr) -> Result<Expr> {
    Ok(match e {
        sql::Expr::Identifier(id) => {
            if is_default(&id) {
                return Err(Error::syntax("DEFAULT is not allowed in this context"));
            }
            reject_reserved(&id)?;
            Expr::Column { table: None, name: ident(id) }
        }
        sql::Expr::CompoundIdentifier(ids) => {
            ids.iter().try_for_each(reject_reserved)?;
            let text = ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(".");
            let mut parts = idents(ids);
            let Some(name) = parts.pop() else { return Err(Error::syntax("empty column reference")) };
            // `pg_catalog.pg_class.relname`: a system table's FROM item is labelled by its
            // bare name, as a user table's (`public.t.x`) is.
            if parts.len() == 2 && (parts[0] == "pg_catalog" || parts[0] == "information_schema") {
                parts.remove(0);
            }
            Expr::Column { table: Some(qualify(parts, &text)?), name }
        }
        sql::Expr::Value(v) => literal(v.value)?,
        sql::Expr::Nested(inner) => expr(*inner)?,
        sql::Expr::UnaryOp { op, expr: inner } => unary(op, *inner)?,
        sql::Expr::BinaryOp { left, op, right } => match (row_items(&left), row_items(&right)) {
            (Some(l), Some(r)) => row_comparison(binary_op(&op)?, l, r)?,
            _ => {
                let op = binary_op(&op)?;
                Expr::Binary { op, left: boxed(*left)?, right: boxed(*right)? }
            }
        },
        sql::Expr::IsNull(inner) => Expr::IsNull { expr: boxed(*inner)?, negated: false },
        sql::Expr::IsNotNull(inner) => Expr::IsNull { expr: boxed(*inner)?, negated: true },
        sql::Expr::IsTrue(inner) => Expr::IsBool { expr: boxed(*inner)?, value: Some(true), negated: false },
        sql::Expr::IsNotTrue(inner) => Expr::IsBool { expr: boxed(*inner)?, value: Some(true), negated: true },
        sql::Expr::IsFalse(inner) => Expr::IsBool { expr: boxed(*inner)?, value: Some(false), negated: false },
        sql::Expr::IsNotFalse(inner) => Expr::IsBool { expr: boxed(*inner)?, value: Some(false), negated: true },
        sql::Expr::IsUnknown(inner) => Expr::IsBool { expr: boxed(*inner)?, value: None, negated: false },
        sql::Expr::IsNotUnknown(inner) => Expr::IsBool { expr: boxed(*inner)?, value: None, negated: true },
        sql::Expr::IsDistinctFrom(a, b) => is_distinct_from(expr(*a)?, expr(*b)?, false),
        sql::Expr::IsNotDistinctFrom(a, b) => is_distinct_from(expr(*a)?, expr(*b)?, true),
        sql::Expr::In { expr: inner, target, negated, global: _ } => match target {
            // (a, b) IN ((1, 2), (3, 4)): one row comparison per item, ORed.
            sql::InTarget::List(list) if row_items(&inner).is_some() => {
                let row = row_items(&inner).expect("a row");
                let mut any: Option<Expr> = None;
                for item in list {
                    let items = row_items(&item).ok_or_else(|| {
                        Error::unsupported("IN with a row on the left and a single value in the list")
                    })?;
                    let equal = row_comparison(BinaryOp::Eq, row.clone(), items)?;
                    any = Some(match any {
                        None => equal,
                        Some(a) => Expr::Binary { op: BinaryOp::Or, left: Box::new(a), right: Box::new(equal) },
                    });
                }
                let any = any.ok_or_else(|| Error::syntax("syntax error at or near \")\""))?;
                if negated {
                    Expr::Unary { op: crate::ast::UnaryOp::Not, expr: Box::new(any) }
                } else {
                    any
                }
            }
            sql::InTarget::List(list) => {
                Expr::InList { expr: boxed(*inner)?, list: list.into_iter().map(expr).collect::<Result<_>>()?, negated }
            }
            sql::InTarget::Subquery(q) => {
                Expr::InSubquery { expr: boxed(*inner)?, query: Box::new(query(*q)?), negated }
            }
            other => return Err(unsupported_sql("IN", &other)),
        },
        sql::Expr::Between { expr: inner, negated, low, high } => {
            Expr::Between { expr: boxed(*inner)?, low: boxed(*low)?, high: boxed(*high)?, negated }
        }
        sql::Expr::Like { negated, any, expr: inner, pattern, escape_char } => {
            like(negated, any, *inner, *pattern, escape_char, false)?
        }
        sql::Expr::ILike { negated, any, expr: inner, pattern, escape_char } => {
            like(negated, any, *inner, *pattern, escape_char, true)?
        }
        sql::Expr::Cast { kind, expr: inner, data_type: to, format } => {
            if !matches!(kind, sql::CastKind::Cast | sql::CastKind::DoubleColon) || format.is_some() {
                return Err(Error::unsupported(format!("{kind:?}")));
            }
            Expr::Cast { expr: boxed(*inner)?, to: data_type(to)? }
        }
        sql::Expr::TypedString(t) => {
            let to = data_type(t.data_type)?;
            let text = t.value.value.clone().into_string().ok_or_else(|| unsupported_sql("typed literal", &t.value))?;
            Expr::Cast { expr: Box::new(Expr::Literal(Value::Text(text))), to }
        }
        sql::Expr::Interval(i) => interval(i)?,
        sql::Expr::AtTimeZone { timestamp, time_zone } => {
            // PostgreSQL rewrites `ts AT TIME ZONE z` into timezone(z, ts).
            function_call("timezone", vec![expr(*time_zone)?, expr(*timestamp)?])
        }
        sql::Expr::Extract { field, expr: inner, .. } => {
            let field = match field {
                sql::DateTimeField::Custom(id) => id.value.to_ascii_lowercase(),
                other => other.to_string().to_ascii_lowercase(),
            };
            // PostgreSQL's EXTRACT is its own function (numeric result, column "extract").
            function_call("extract", vec![Expr::Literal(Value::Text(field)), expr(*inner)?])
        }
        sql::Expr::Ceil { expr: inner, field: sql::CeilFloorKind::DateTimeField(sql::DateTimeField::NoDateTime) } => {
            function_call("ceil", vec![expr(*inner)?])
        }
        sql::Expr::Floor { expr: inner, field: sql::CeilFloorKind::DateTimeField(sql::DateTimeField::NoDateTime) } => {
            function_call("floor", vec![expr(*inner)?])
        }
        sql::Expr::Position { expr: needle, r#in: haystack } => {
            // strpos with the arguments swapped; the column is named "position".
            function_call("position", vec![expr(*haystack)?, expr(*needle)?])
        }
        sql::Expr::Substring { expr: inner, substring_from, substring_for, .. } => {
            let mut args = vec![expr(*inner)?];
            match (substring_from, substring_for) {
                (Some(from), Some(len)) => args.extend([expr(*from)?, expr(*len)?]),
                (Some(from), None) => args.push(expr(*from)?),
                // substring(x FOR n) starts at 1.
                (None, Some(len)) => args.extend([Expr::Literal(Value::Int4(1)), expr(*len)?]),
                (None, None) => {}
            }
            function_call("substring", args)
        }
        sql::Expr::Trim { trim_where, trim_what, expr: inner, trim_characters } => {
            let name = match trim_where {
                None | Some(sql::TrimWhereField::Both) => "btrim",
                Some(sql::TrimWhereField::Leading) => "ltrim",
                Some(sql::TrimWhereField::Trailing) => "rtrim",
            };
            let mut args = vec![expr(*inner)?];
            if let Some(what) = trim_what {
                args.push(expr(*what)?);
            }
            for c in trim_characters.unwrap_or_default() {
                args.push(expr(c)?);
            }
            function_call(name, args)
        }
        sql::Expr::Function(f) => function(f)?,
        sql::Expr::Case { operand, conditions, else_result, .. } => Expr::Case {
            operand: operand.map(|o| boxed(*o)).transpose()?,
            whens: conditions.into_iter().map(|w| Ok((expr(w.condition)?, expr(w.result)?))).collect::<Result<_>>()?,
            else_result: else_result.map(|e| boxed(*e)).transpose()?,
        },
        sql::Expr::Exists { subquery, negated } => Expr::Exists { query: Box::new(query(*subquery)?), negated },
        sql::Expr::Subquery(q) => Expr::Subquery(Box::new(query(*q)?)),
        // ARRAY[a, b]: an array in PostgreSQL's text form (see eval::array).
        sql::Expr::Array(sql::Array { elem, named: true }) => Expr::Function {
            name: "array".into(),
            args: elem.into_iter().map(expr).collect::<Result<_>>()?,
            distinct: false,
            star: false,
            order_by: vec![],
        },
        sql::Expr::AnyOp { left, compare_op, right, .. } => postgres::any_all(*left, &compare_op, *right, false)?,
        sql::Expr::AllOp { left, compare_op, right } => postgres::any_all(*left, &compare_op, *right, true)?,
        sql::Expr::Collate { expr: inner, collation } => postgres::collate(*inner, collation)?,
        sql::Expr::CompoundFieldAccess { root, access_chain } => postgres::field_access(*root, access_chain)?,
        other => return Err(unsupported_sql("expression", &other)),
    })
}

fn unary(op: sql::UnaryOperator, inner: sql::Expr) -> Result<Expr> {
    let op = match op {
        sql::UnaryOperator::Not => UnaryOp::Not,
        sql::UnaryOperator::Plus => UnaryOp::Plus,
        sql::UnaryOperator::Minus => {
            // PostgreSQL folds the sign into a numeric constant, so -2147483648 is an int4.
            if let sql::Expr::Value(v) = &inner {
                if let sql::Value::Number(n, _) = &v.value {
                    return Ok(Expr::Literal(number(&format!("-{n}"))?));
                }
            }
            UnaryOp::Neg
        }
        other => return Err(Error::unsupported(format!("operator {other}"))),
    };
    Ok(Expr::Unary { op, expr: boxed(inner)? })
}

fn binary_op(op: &sql::BinaryOperator) -> Result<BinaryOp> {
    Ok(match op {
        sql::BinaryOperator::Plus => BinaryOp::Add,
        sql::BinaryOperator::Minus => BinaryOp::Sub,
        sql::BinaryOperator::Multiply => BinaryOp::Mul,
        sql::BinaryOperator::Divide => BinaryOp::Div,
        sql::BinaryOperator::Modulo => BinaryOp::Mod,
        sql::BinaryOperator::StringConcat => BinaryOp::Concat,
        sql::BinaryOperator::Eq => BinaryOp::Eq,
        sql::BinaryOperator::NotEq => BinaryOp::NotEq,
        sql::BinaryOperator::Lt => BinaryOp::Lt,
        sql::BinaryOperator::LtEq => BinaryOp::LtEq,
        sql::BinaryOperator::Gt => BinaryOp::Gt,
        sql::BinaryOperator::GtEq => BinaryOp::GtEq,
        sql::BinaryOperator::And => BinaryOp::And,
        sql::BinaryOperator::Or => BinaryOp::Or,
        other => return postgres::binary_op(other).ok_or_else(|| Error::unsupported(format!("operator {other}"))),
    })
}

/// `a IS [NOT] DISTINCT FROM b`, written with the operators the AST has:
/// `CASE WHEN a IS NULL THEN b IS NOT NULL WHEN b IS NULL THEN TRUE ELSE a <> b END`
/// (negated for NOT DISTINCT). Exact, though `a` and `b` may be evaluated twice.
/// The items of a row constructor: `(a, b)` or `ROW(a, b)`.
fn row_items(e: &sql::Expr) -> Option<Vec<sql::Expr>> {
    match e {
        sql::Expr::Tuple(items) => Some(items.clone()),
        sql::Expr::Nested(inner) => row_items(inner),
        sql::Expr::Function(f) if f.name.to_string().eq_ignore_ascii_case("row") => match &f.args {
            sql::FunctionArguments::List(list) if list.duplicate_treatment.is_none() && list.clauses.is_empty() => list
                .args
                .iter()
                .map(|a| match a {
                    sql::FunctionArg::Unnamed(sql::FunctionArgExpr::Expr(e)) => Some(e.clone()),
                    _ => None,
                })
                .collect(),
            _ => None,
        },
        _ => None,
    }
}

/// A comparison of two rows, item by item, as PostgreSQL defines it: `=` is every pair
/// equal (AND), `<>` any pair unequal (OR), and `<`, `<=`, `>`, `>=` compare in order
/// from the left, the first unequal pair deciding (`a < c OR (a = c AND b < d)`); a NULL
/// in a pair that decides makes the answer NULL.
fn row_comparison(op: BinaryOp, left: Vec<sql::Expr>, right: Vec<sql::Expr>) -> Result<Expr> {
    if left.len() != right.len() {
        return Err(Error::syntax("unequal number of entries in row expressions"));
    }
    if left.is_empty() {
        return Err(Error::unsupported("comparison of empty rows"));
    }
    let binary = |op, l: Expr, r: Expr| Expr::Binary { op, left: Box::new(l), right: Box::new(r) };
    let pairs: Vec<(Expr, Expr)> =
        left.into_iter().zip(right).map(|(l, r)| Ok((expr(l)?, expr(r)?))).collect::<Result<_>>()?;
    let join = |join_op, pair_op| {
        pairs.iter().cloned().map(|(l, r)| binary(pair_op, l, r)).reduce(|a, b| binary(join_op, a, b)).expect("a pair")
    };
    Ok(match op {
        BinaryOp::Eq => join(BinaryOp::And, BinaryOp::Eq),
        BinaryOp::NotEq => join(BinaryOp::Or, BinaryOp::NotEq),
        BinaryOp::Lt | BinaryOp::LtEq | BinaryOp::Gt | BinaryOp::GtEq => {
            // From the last pair back: last = l op r; each earlier pair wraps it as
            // l strict r OR (l = r AND rest).
            let strict = if matches!(op, BinaryOp::Lt | BinaryOp::LtEq) { BinaryOp::Lt } else { BinaryOp::Gt };
            let mut pairs = pairs.into_iter().rev();
            let (l, r) = pairs.next().expect("a pair");
            let mut out = binary(op, l, r);
            for (l, r) in pairs {
                let tie = binary(BinaryOp::And, binary(BinaryOp::Eq, l.clone(), r.clone()), out);
                out = binary(BinaryOp::Or, binary(strict, l, r), tie);
            }
            out
        }
        other => {
            return Err(Error::new(
                codes::UNDEFINED_FUNCTION,
                format!("operator does not exist: record {} record", crate::eval::op_symbol(other)),
            ))
        }
    })
}

fn is_distinct_from(a: Expr, b: Expr, not: bool) -> Expr {
    let is_null = |e: &Expr, negated| Expr::IsNull { expr: Box::new(e.clone()), negated };
    let distinct = Expr::Case {
        operand: None,
        whens: vec![(is_null(&a, false), is_null(&b, true)), (is_null(&b, false), Expr::Literal(Value::Bool(true)))],
        else_result: Some(Box::new(Expr::Binary { op: BinaryOp::NotEq, left: Box::new(a), right: Box::new(b) })),
    };
    if not {
        Expr::Unary { op: UnaryOp::Not, expr: Box::new(distinct) }
    } else {
        distinct
    }
}

fn like(
    negated: bool,
    any: bool,
    inner: sql::Expr,
    pattern: sql::Expr,
    escape: Option<Box<sql::Expr>>,
    case_insensitive: bool,
) -> Result<Expr> {
    if any {
        return Err(Error::unsupported("LIKE ANY"));
    }
    if escape.is_some() {
        return Err(Error::unsupported("LIKE ... ESCAPE"));
    }
    Ok(Expr::Like { expr: boxed(inner)?, pattern: boxed(pattern)?, negated, case_insensitive })
}

/// `INTERVAL '1 day'` is a cast of the string; `INTERVAL '3' DAY` appends the unit.
fn interval(i: sql::Interval) -> Result<Expr> {
    let text = match &*i.value {
        sql::Expr::Value(v) => v.value.clone().into_string(),
        _ => None,
    };
    let Some(mut text) = text else { return Err(unsupported_sql("interval", &i)) };
    if i.leading_precision.is_some() || i.last_field.is_some() || i.fractional_seconds_precision.is_some() {
        return Err(unsupported_sql("interval", &i));
    }
    if let Some(field) = &i.leading_field {
        if text.trim().parse::<f64>().is_err() {
            return Err(unsupported_sql("interval", &i));
        }
        text = format!("{} {}", text.trim(), field.to_string().to_ascii_lowercase());
    }
    Ok(Expr::Cast { expr: Box::new(Expr::Literal(Value::Text(text))), to: DataType::Interval })
}

fn function(mut f: sql::Function) -> Result<Expr> {
    if let Some(over) = f.over.take() {
        return window(f, over);
    }
    if !f.within_group.is_empty() {
        return ordered_set_aggregate(f);
    }
    if f.null_treatment.is_some() || f.uses_odbc_syntax || !matches!(f.parameters, sql::FunctionArguments::None) {
        return Err(unsupported_sql("function call", &f));
    }
    let name = function_name(f.name)?;
    let mut order_by = Vec::new();
    let (args, distinct, star) = match f.args {
        sql::FunctionArguments::None => {
            // The SQL-standard niladic forms: CURRENT_DATE, CURRENT_TIMESTAMP, CURRENT_USER...
            let name = match name.as_str() {
                "current_timestamp" => "now".to_string(),
                "user" | "current_role" => "current_user".to_string(),
                _ => name,
            };
            return Ok(function_call(&name, Vec::new()));
        }
        sql::FunctionArguments::Subquery(q) if name == "array" => return postgres::array_subquery(*q),
        sql::FunctionArguments::Subquery(_) => return Err(Error::unsupported(format!("{name}(subquery)"))),
        sql::FunctionArguments::List(list) => {
            for clause in list.clauses {
                match clause {
                    sql::FunctionArgumentClause::OrderBy(items) if order_by.is_empty() => {
                        order_by = items.into_iter().map(order_by_item).collect::<Result<_>>()?;
                    }
                    other => return Err(unsupported_sql(&format!("clause inside {name}()"), &other)),
                }
            }
            let distinct = list.duplicate_treatment == Some(sql::DuplicateTreatment::Distinct);
            let mut args = Vec::new();
            let mut star = false;
            for arg in list.args {
                match arg {
                    sql::FunctionArg::Unnamed(sql::FunctionArgExpr::Expr(e)) => args.push(expr(e)?),
                    sql::FunctionArg::Unnamed(sql::FunctionArgExpr::Wildcard) => star = true,
                    other => return Err(unsupported_sql("function argument", &other)),
                }
            }
            if star && (!args.is_empty() || distinct) {
                return Err(Error::syntax(format!("syntax error at or near \"*\" in {name}()")));
            }
            (args, distinct, star)
        }
    };
    if !order_by.is_empty() && !crate::bind::is_aggregate(&name) {
        return Err(Error::new(
            codes::WRONG_OBJECT_TYPE,
            format!("ORDER BY specified, but {name} is not an aggregate function"),
        ));
    }
    let Some(filter) = f.filter else { return Ok(Expr::Function { name, args, distinct, star, order_by }) };
    // agg(x) FILTER (WHERE c) is agg(CASE WHEN c THEN x END): the aggregates skip NULLs
    // (count(*) counts CASE WHEN c THEN 1 END); array_agg keeps them, so it cannot.
    if !crate::bind::is_aggregate(&name) {
        return Err(Error::new(
            codes::WRONG_OBJECT_TYPE,
            format!("FILTER specified, but {name} is not an aggregate function"),
        ));
    }
    if matches!(name.as_str(), "array_agg" | "json_agg" | "jsonb_agg" | "json_object_agg" | "jsonb_object_agg") {
        return Err(Error::unsupported(format!("FILTER on {name}")));
    }
    let when = expr(*filter)?;
    let guard = |e: Expr| Expr::Case { operand: None, whens: vec![(when.clone(), e)], else_result: None };
    let args = if star {
        vec![guard(Expr::Literal(Value::Int4(1)))]
    } else {
        let mut args = args;
        if let Some(first) = args.first_mut() {
            *first = guard(std::mem::replace(first, Expr::Literal(Value::Null)));
        }
        args
    };
    Ok(Expr::Function { name, args, distinct, star: false, order_by })
}

/// `percentile_cont(f) | percentile_disc(f) | mode() WITHIN GROUP (ORDER BY x)`: the
/// aggregate of `x` over the group's rows in that order, written as `name(x, f)` with the
/// ORDER BY (`mode(x)`): the executor feeds the values in order and the fraction beside.
fn ordered_set_aggregate(mut f: sql::Function) -> Result<Expr> {
    let name = function_name(f.name.clone())?;
    let within = std::mem::take(&mut f.within_group);
    if f.filter.is_some() || f.null_treatment.is_some() {
        return Err(unsupported_sql("function call", &f));
    }
    let direct = match f.args {
        sql::FunctionArguments::None => vec![],
        sql::FunctionArguments::List(list)
            if list.clauses.is_empty() && list.duplicate_treatment != Some(sql::DuplicateTreatment::Distinct) =>
        {
            list.args
                .into_iter()
                .map(|a| match a {
                    sql::FunctionArg::Unnamed(sql::FunctionArgExpr::Expr(e)) => expr(e),
                    other => Err(unsupported_sql("function argument", &other)),
                })
                .collect::<Result<Vec<_>>>()?
        }
        other => return Err(unsupported_sql("WITHIN GROUP arguments", &other)),
    };
    let order_by = within.into_iter().map(order_by_item).collect::<Result<Vec<_>>>()?;
    let wrong = || {
        Error::new(
            codes::UNDEFINED_FUNCTION,
            format!(
                "function {name} with {} direct and {} ordered arguments does not exist",
                direct.len(),
                order_by.len()
            ),
        )
        .with_hint("No function matches the given name and argument types. You might need to add explicit type casts.")
    };
    let [key] = order_by.as_slice() else { return Err(wrong()) };
    let args = match (name.as_str(), direct.as_slice()) {
        ("percentile_cont" | "percentile_disc", [fraction]) => {
            if matches!(fraction, Expr::Function { name, .. } if name == "array") {
                return Err(Error::unsupported(format!("{name} with an array of fractions")));
            }
            vec![key.expr.clone(), fraction.clone()]
        }
        ("mode", []) => vec![key.expr.clone()],
        ("percentile_cont" | "percentile_disc" | "mode", _) => return Err(wrong()),
        _ => {
            return Err(Error::new(
                codes::UNDEFINED_FUNCTION,
                format!("function {name} does not exist as an ordered-set aggregate (WITHIN GROUP)"),
            )
            .with_hint("The ordered-set aggregates are percentile_cont, percentile_disc and mode."))
        }
    };
    Ok(Expr::Function { name, args, distinct: false, star: false, order_by })
}

/// `func(args) OVER (PARTITION BY ... ORDER BY ... [frame])`.
fn window(f: sql::Function, over: sql::WindowType) -> Result<Expr> {
    let spec = match over {
        sql::WindowType::WindowSpec(spec) if spec.window_name.is_none() => spec,
        other => return Err(unsupported_sql("named window", &other)),
    };
    let func = function(f)?;
    if let Expr::Function { distinct: true, .. } = func {
        return Err(Error::unsupported("DISTINCT in a window function"));
    }
    if let Expr::Function { order_by, .. } = &func {
        if !order_by.is_empty() {
            return Err(Error::unsupported("ORDER BY inside a window function's arguments"));
        }
    }
    let frame = spec.window_frame.map(window_frame).transpose()?;
    Ok(Expr::Window {
        func: Box::new(func),
        partition_by: spec.partition_by.into_iter().map(expr).collect::<Result<_>>()?,
        order_by: spec.order_by.into_iter().map(order_by_item).collect::<Result<_>>()?,
        frame,
    })
}

fn window_frame(f: sql::WindowFrame) -> Result<WindowFrame> {
    let rows = match f.units {
        sql::WindowFrameUnits::Rows => true,
        sql::WindowFrameUnits::Range => false,
        sql::WindowFrameUnits::Groups => return Err(Error::unsupported("GROUPS frames")),
    };
    let bound = |b: sql::WindowFrameBound| -> Result<FrameBound> {
        let offset = |e: Box<sql::Expr>| -> Result<u64> {
            if !rows {
                return Err(Error::unsupported("RANGE with an offset"));
            }
            match expr(*e)? {
                Expr::Literal(Value::Int4(n)) if n >= 0 => Ok(n as u64),
                Expr::Literal(Value::Int8(n)) if n >= 0 => Ok(n as u64),
                Expr::Literal(Value::Int4(_) | Value::Int8(_)) => Err(Error::new(
                    codes::INVALID_PRECEDING_OR_FOLLOWING_SIZE,
                    "frame starting offset must not be negative",
                )),
                _ => Err(Error::unsupported("a frame offset that is not an integer constant")),
            }
        };
        Ok(match b {
            sql::WindowFrameBound::CurrentRow => FrameBound::CurrentRow,
            sql::WindowFrameBound::Preceding(None) => FrameBound::UnboundedPreceding,
            sql::WindowFrameBound::Following(None) => FrameBound::UnboundedFollowing,
            sql::WindowFrameBound::Preceding(Some(e)) => FrameBound::Preceding(offset(e)?),
            sql::WindowFrameBound::Following(Some(e)) => FrameBound::Following(offset(e)?),
        })
    };
    let start = bound(f.start_bound)?;
    let end = f.end_bound.map(bound).transpose()?.unwrap_or(FrameBound::CurrentRow);
    if start == FrameBound::UnboundedFollowing {
        return Err(Error::new(codes::WINDOWING_ERROR, "frame start cannot be UNBOUNDED FOLLOWING"));
    }
    if end == FrameBound::UnboundedPreceding {
        return Err(Error::new(codes::WINDOWING_ERROR, "frame end cannot be UNBOUNDED PRECEDING"));
    }
    Ok(WindowFrame { rows, start, end })
}

// ---------------------------------------------------------------------------------------
// Literals
// ---------------------------------------------------------------------------------------

fn literal(v: sql::Value) -> Result<Expr> {
    Ok(Expr::Literal(match v {
        sql::Value::Number(n, _) => number(&n)?,
        sql::Value::SingleQuotedString(s)
        | sql::Value::EscapedStringLiteral(s)
        | sql::Value::UnicodeStringLiteral(s)
        | sql::Value::NationalStringLiteral(s) => Value::Text(s),
        sql::Value::DollarQuotedString(s) => Value::Text(s.value),
        sql::Value::Boolean(b) => Value::Bool(b),
        sql::Value::Null => Value::Null,
        sql::Value::Placeholder(p) => return param(&p),
        // X'1F' and B'101' are bit strings in PostgreSQL, not bytea.
        sql::Value::HexStringLiteral(_) => return Err(Error::unsupported("bit string literals")),
        other => return Err(unsupported_sql("literal", &other)),
    }))
}

/// `$n`, 1-based.
fn param(p: &str) -> Result<Expr> {
    match p.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()) {
        Some(n) if n >= 1 => Ok(Expr::Param(n)),
        _ => Err(Error::syntax(format!("syntax error at or near \"{p}\""))),
    }
}

/// Types a numeric constant as PostgreSQL does: an integer that fits int4 is int4, else
/// int8, else numeric; with a point or an exponent, numeric.
fn number(text: &str) -> Result<Value> {
    let text: String = text.chars().filter(|c| *c != '_').collect();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.as_str()),
    };
    let radix = match digits.get(..2).map(|p| p.to_ascii_lowercase()) {
        Some(p) if p == "0x" => Some(16),
        Some(p) if p == "0o" => Some(8),
        Some(p) if p == "0b" => Some(2),
        _ => None,
    };
    if let Some(radix) = radix {
        let magnitude = i128::from_str_radix(&digits[2..], radix)
            .map_err(|_| Error::syntax(format!("trailing junk after numeric literal at or near \"{text}\"")))?;
        let value = if negative { -magnitude } else { magnitude };
        return integer(value).ok_or_else(|| out_of_range("value overflows numeric format"));
    }
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(v) = text.parse::<i64>() {
            return Ok(integer(i128::from(v)).expect("an i64 fits int8"));
        }
    }
    match numeric(&text) {
        Ok(n) => Ok(Value::Numeric(n)),
        // Written with an exponent and beyond NUMERIC's 38 digits (1e100, 2.5e-300, as
        // drivers write floats), the constant is taken as double precision, which holds it
        // approximately: an error would refuse what PostgreSQL's arbitrary-precision
        // NUMERIC accepts. Plain digits that long stay an error, rather than lose digits.
        Err(e) if e.code == codes::NUMERIC_VALUE_OUT_OF_RANGE && text.contains(['e', 'E']) => match text.parse::<f64>()
        {
            Ok(f) if f.is_finite() => Ok(Value::Float8(f)),
            _ => Err(e),
        },
        Err(e) => Err(e),
    }
}

fn integer(v: i128) -> Option<Value> {
    if let Ok(v) = i32::try_from(v) {
        Some(Value::Int4(v))
    } else {
        i64::try_from(v).ok().map(Value::Int8)
    }
}

/// `[-]digits[.digits][e[+-]digits]` as an exact NUMERIC, or 22003 beyond 38 digits.
fn numeric(text: &str) -> Result<Numeric> {
    let junk = || Error::syntax(format!("trailing junk after numeric literal at or near \"{text}\""));
    let overflow = || out_of_range("value overflows numeric format");
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa_text, exponent) = match body.find(['e', 'E']) {
        Some(at) => {
            let exponent: i64 = body[at + 1..].parse().map_err(|_| junk())?;
            (&body[..at], exponent)
        }
        None => (body, 0),
    };
    let (int_part, frac_part) = match mantissa_text.split_once('.') {
        Some((i, f)) => (i, f),
        None => (mantissa_text, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(junk());
    }
    let limit = 10i128.pow(NUMERIC_DIGITS_MAX);
    let mut mantissa: i128 = 0;
    for b in int_part.bytes().chain(frac_part.bytes()) {
        if !b.is_ascii_digit() {
            return Err(junk());
        }
        mantissa = mantissa * 10 + i128::from(b - b'0');
        if mantissa >= limit {
            return Err(overflow());
        }
    }
    let frac_len = i64::try_from(frac_part.len()).map_err(|_| overflow())?;
    let mut scale = frac_len.checked_sub(exponent).ok_or_else(overflow)?;
    while scale < 0 {
        mantissa *= 10;
        if mantissa >= limit {
            return Err(overflow());
        }
        scale += 1;
    }
    let scale = u32::try_from(scale).map_err(|_| overflow())?;
    if scale > NUMERIC_DIGITS_MAX {
        return Err(overflow());
    }
    Ok(Numeric { mantissa: if negative { -mantissa } else { mantissa }, scale })
}

// ---------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------

/// A column's type, with SERIAL's integer type and `serial: true`.
fn column_type(t: sql::DataType) -> Result<(DataType, bool)> {
    if let sql::DataType::Custom(name, modifiers) = &t {
        if modifiers.is_empty() && name.0.len() == 1 {
            let serial = match name.to_string().to_ascii_lowercase().as_str() {
                "smallserial" | "serial2" => Some(DataType::Int2),
                "serial" | "serial4" => Some(DataType::Int4),
                "bigserial" | "serial8" => Some(DataType::Int8),
                _ => None,
            };
            if let Some(integer) = serial {
                return Ok((integer, true));
            }
        }
    }
    let t = data_type(t)?;
    postgres::storable(&t)?;
    Ok((t, false))
}

fn data_type(t: sql::DataType) -> Result<DataType> {
    use sql::DataType as T;
    Ok(match t {
        T::Bool | T::Boolean => DataType::Bool,
        T::SmallInt(None) | T::Int2(None) => DataType::Int2,
        T::Int(None) | T::Integer(None) | T::Int4(None) => DataType::Int4,
        T::BigInt(None) | T::Int8(None) => DataType::Int8,
        T::Real | T::Float4 => DataType::Float4,
        T::DoublePrecision | T::Float8 => DataType::Float8,
        T::Float(info) => match info {
            sql::ExactNumberInfo::None => DataType::Float8,
            sql::ExactNumberInfo::Precision(0) => {
                return Err(invalid_parameter("precision for type float must be at least 1 bit"))
            }
            sql::ExactNumberInfo::Precision(p) if p <= 24 => DataType::Float4,
            sql::ExactNumberInfo::Precision(p) if p <= 53 => DataType::Float8,
            sql::ExactNumberInfo::Precision(_) => {
                return Err(invalid_parameter("precision for type float must be less than 54 bits"))
            }
            sql::ExactNumberInfo::PrecisionAndScale(..) => return Err(Error::syntax("syntax error at or near \",\"")),
        },
        T::Numeric(info) | T::Decimal(info) | T::Dec(info) => numeric_type(info)?,
        T::Text => DataType::Text,
        T::Varchar(len) | T::CharacterVarying(len) | T::CharVarying(len) => {
            DataType::Varchar(len.map(|l| char_length(l, "varchar")).transpose()?)
        }
        // Bare CHAR is CHAR(1), as in PostgreSQL.
        T::Char(len) | T::Character(len) => {
            DataType::Char(Some(len.map(|l| char_length(l, "char")).transpose()?.unwrap_or(1)))
        }
        T::Bytea => DataType::Bytea,
        T::Date => DataType::Date,
        // TIME keeps microseconds; TIME(6) is the same type. Fewer digits and WITH TIME
        // ZONE are not supported.
        T::Time(precision, sql::TimezoneInfo::None | sql::TimezoneInfo::WithoutTimeZone)
            if precision.is_none_or(|p| p >= 6) =>
        {
            DataType::Time
        }
        T::Timestamp(precision, tz) => {
            let tz = match tz {
                sql::TimezoneInfo::None | sql::TimezoneInfo::WithoutTimeZone => false,
                sql::TimezoneInfo::WithTimeZone | sql::TimezoneInfo::Tz => true,
            };
            // As PostgreSQL: 6 is the most (more is reduced to 6); fewer rounds the values.
            match precision.map(|p| u32::try_from(p).unwrap_or(u32::MAX)) {
                Some(p) => DataType::TimestampP { tz, precision: p.min(6) },
                None if tz => DataType::TimestampTz,
                None => DataType::Timestamp,
            }
        }
        T::Interval { fields: None, precision: None } => DataType::Interval,
        T::Uuid => DataType::Uuid,
        T::JSON => DataType::Json,
        T::JSONB => DataType::Jsonb,
        T::Custom(name, modifiers) if modifiers.is_empty() => {
            let parts = name_parts(name.clone())?;
            let bare = match parts.as_slice() {
                [one] => one.as_str(),
                [schema, one] if schema == "pg_catalog" || schema == "public" => one.as_str(),
                _ => return Err(Error::unsupported(format!("type \"{name}\""))),
            };
            if let Some(t) = postgres::catalog_type(bare) {
                return Ok(t);
            }
            match bare {
                "bpchar" => DataType::Char(None),
                "serial" | "serial2" | "serial4" | "serial8" | "smallserial" | "bigserial" => {
                    return Err(Error::new(codes::UNDEFINED_OBJECT, format!("type \"{bare}\" does not exist")))
                }
                // PostgreSQL's own types that Bulwark does not have.
                "xml" | "money" | "inet" | "cidr" | "macaddr" | "macaddr8" | "point" | "line" | "lseg" | "box"
                | "path" | "polygon" | "circle" | "tsvector" | "tsquery" | "txid_snapshot" | "pg_lsn" | "int4range"
                | "int8range" | "numrange" | "tsrange" | "tstzrange" | "daterange" | "timetz" | "varbit" | "hstore"
                | "citext" => return Err(Error::unsupported(format!("type {bare}"))),
                // Any other name may be an enum type: the session looks it up.
                _ if parts[0] != "pg_catalog" => {
                    DataType::Enum(std::sync::Arc::new(crate::types::EnumType::unresolved(bare)))
                }
                _ => return Err(Error::unsupported(format!("type \"{name}\""))),
            }
        }
        T::Array(sql::ArrayElemTypeDef::SquareBracket(inner, None)) => postgres::array_type(Some(inner))?,
        T::Regclass => DataType::Reg(crate::types::RegKind::Class),
        other => return Err(Error::unsupported(format!("type {other}"))),
    })
}

/// An enum label: a string constant, at most `ENUM_LABEL_BYTES_MAX` bytes and not empty
/// (PostgreSQL's NAMEDATALEN - 1).
fn enum_label(label: sql::Ident) -> Result<String> {
    if label.quote_style != Some('\'') {
        return Err(Error::syntax(format!("syntax error at or near \"{}\"", label.value)));
    }
    if label.value.is_empty() || label.value.len() > ENUM_LABEL_BYTES_MAX {
        return Err(invalid_parameter(format!("invalid enum label \"{}\"", label.value))
            .with_detail(format!("Labels must be {ENUM_LABEL_BYTES_MAX} bytes or less.")));
    }
    Ok(label.value)
}

/// The longest enum label, in bytes (as PostgreSQL).
pub const ENUM_LABEL_BYTES_MAX: usize = 63;

fn numeric_type(info: sql::ExactNumberInfo) -> Result<DataType> {
    let (precision, scale) = match info {
        sql::ExactNumberInfo::None => return Ok(DataType::Numeric { precision: None, scale: None }),
        sql::ExactNumberInfo::Precision(p) => (p, 0),
        sql::ExactNumberInfo::PrecisionAndScale(p, s) => {
            (p, u64::try_from(s).map_err(|_| Error::unsupported("negative NUMERIC scale"))?)
        }
    };
    if precision == 0 || precision > NUMERIC_PRECISION_MAX {
        return Err(invalid_parameter(format!(
            "NUMERIC precision {precision} must be between 1 and {NUMERIC_PRECISION_MAX}"
        )));
    }
    if scale > precision {
        return Err(invalid_parameter(format!("NUMERIC scale {scale} must be between 0 and precision {precision}")));
    }
    let narrow = |v: u64| u32::try_from(v).expect("bounded by NUMERIC_PRECISION_MAX");
    Ok(DataType::Numeric { precision: Some(narrow(precision)), scale: Some(narrow(scale)) })
}

fn char_length(l: sql::CharacterLength, type_name: &str) -> Result<u32> {
    match l {
        sql::CharacterLength::IntegerLength { length, unit: None } => {
            if length == 0 {
                return Err(invalid_parameter(format!("length for type {type_name} must be at least 1")));
            }
            if length > VARCHAR_LENGTH_MAX {
                return Err(invalid_parameter(format!(
                    "length for type {type_name} cannot exceed {VARCHAR_LENGTH_MAX}"
                )));
            }
            Ok(u32::try_from(length).expect("bounded by VARCHAR_LENGTH_MAX"))
        }
        other => Err(Error::unsupported(format!("length {other}"))),
    }
}

/// Parses one expression (as stored in the catalog for defaults and CHECK constraints).
pub fn parse_expr(text: &str) -> Result<Expr> {
    let mut statements = parse(&format!("SELECT {text}"))?;
    match statements.pop() {
        Some(Statement::Query(q)) if statements.is_empty() => match q.body {
            SetExpr::Select(s) if s.items.len() == 1 => match s.items.into_iter().next() {
                Some(SelectItem::Expr { expr, .. }) => Ok(expr),
                _ => Err(Error::syntax(format!("not an expression: {text}"))),
            },
            _ => Err(Error::syntax(format!("not an expression: {text}"))),
        },
        _ => Err(Error::syntax(format!("not an expression: {text}"))),
    }
}

/// The highest `$n` parameter number in `sql` (0 if none), skipping string literals, quoted
/// identifiers, dollar-quoted strings and comments.
pub fn max_param_number(sql: &str) -> usize {
    let b = sql.as_bytes();
    let mut max = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\'' => {
                // E'...' strings escape with backslashes; others only by doubling the quote.
                let backslash = i > 0 && matches!(b[i - 1], b'e' | b'E');
                i += 1;
                while i < b.len() {
                    if backslash && b[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if b[i] == b'\'' {
                        if b.get(i + 1) == Some(&b'\'') {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += 1;
                }
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 0usize;
                while i < b.len() {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            b'$' => {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
                let prev_is_ident = i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
                if j > start && !prev_is_ident {
                    max = max.max(sql[start..j].parse().unwrap_or(usize::MAX));
                    i = j;
                } else if !prev_is_ident {
                    // A dollar quote: $tag$ ... $tag$.
                    let mut k = start;
                    while k < b.len() && (b[k].is_ascii_alphanumeric() || b[k] == b'_') {
                        k += 1;
                    }
                    if b.get(k) == Some(&b'$') {
                        let tag = &sql[i..=k];
                        i = match sql[k + 1..].find(tag) {
                            Some(end) => k + 1 + end + tag.len(),
                            None => b.len(),
                        };
                    } else {
                        i += 1;
                    }
                } else {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn param_numbers_skip_literals_and_comments() {
        assert_eq!(max_param_number("SELECT 1"), 0);
        assert_eq!(max_param_number("SELECT $1, $2 + $10"), 10);
        assert_eq!(max_param_number("SELECT '$3', \"$4\", $1 -- $5\n /* $6 /* $7 */ */"), 1);
        assert_eq!(max_param_number("SELECT $tag$ $9 $tag$, $$ $8 $$, $2"), 2);
        assert_eq!(max_param_number("SELECT E'\\' $3', 'it''s $4', $1"), 1);
        assert_eq!(max_param_number("SELECT a$1 FROM t"), 0);
    }

    fn one(sql: &str) -> Statement {
        let mut statements = parse(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_eq!(statements.len(), 1, "{sql}");
        statements.remove(0)
    }

    fn q(sql: &str) -> Query {
        match one(sql) {
            Statement::Query(q) => *q,
            other => panic!("{sql}: not a query: {other:?}"),
        }
    }

    fn sel(sql: &str) -> Select {
        match q(sql).body {
            SetExpr::Select(s) => *s,
            other => panic!("{sql}: not a SELECT: {other:?}"),
        }
    }

    /// The expression of `SELECT <text>`.
    fn e(text: &str) -> Expr {
        match sel(&format!("SELECT {text}")).items.remove(0) {
            SelectItem::Expr { expr, .. } => expr,
            other => panic!("{text}: {other:?}"),
        }
    }

    fn code(sql: &str) -> &'static str {
        match parse(sql) {
            Ok(s) => panic!("{sql}: parsed as {s:?}"),
            Err(err) => err.code,
        }
    }

    fn col(name: &str) -> Expr {
        Expr::Column { table: None, name: name.into() }
    }

    fn qcol(table: &str, name: &str) -> Expr {
        Expr::Column { table: Some(table.into()), name: name.into() }
    }

    fn int(v: i32) -> Expr {
        Expr::Literal(Value::Int4(v))
    }

    fn text(v: &str) -> Expr {
        Expr::Literal(Value::Text(v.into()))
    }

    fn bin(op: BinaryOp, left: Expr, right: Expr) -> Expr {
        Expr::Binary { op, left: Box::new(left), right: Box::new(right) }
    }

    fn func(name: &str, args: Vec<Expr>) -> Expr {
        Expr::Function { name: name.into(), args, distinct: false, star: false, order_by: vec![] }
    }

    fn table(name: &str, alias: Option<&str>) -> TableRef {
        TableRef::Table { name: name.into(), alias: alias.map(Into::into), columns: vec![] }
    }

    fn item(expr: Expr) -> SelectItem {
        SelectItem::Expr { expr, alias: None }
    }

    fn num(mantissa: i128, scale: u32) -> Value {
        Value::Numeric(Numeric { mantissa, scale })
    }

    // --- statements -------------------------------------------------------------------

    #[test]
    fn create_table_with_column_and_table_constraints() {
        let s = one("CREATE TABLE IF NOT EXISTS public.Orders (
                id int PRIMARY KEY,
                code varchar(10) NOT NULL UNIQUE,
                qty integer DEFAULT 1 CHECK (qty > 0),
                customer bigint CONSTRAINT fk_c REFERENCES customers (id) ON DELETE CASCADE,
                note text NULL,
                CONSTRAINT u UNIQUE (code, qty),
                FOREIGN KEY (qty) REFERENCES other ON UPDATE SET NULL,
                CHECK (qty < 100)
            ) WITH (fillfactor = 100)");
        let Statement::CreateTable { name, if_not_exists, columns, constraints } = s else { panic!("{s:?}") };
        assert_eq!(name, "orders");
        assert!(if_not_exists);
        let plain = |name: &str, data_type, not_null, default| ColumnDef {
            name: name.into(),
            data_type,
            not_null,
            default,
            serial: false,
        };
        assert_eq!(
            columns,
            vec![
                plain("id", DataType::Int4, true, None),
                plain("code", DataType::Varchar(Some(10)), true, None),
                plain("qty", DataType::Int4, false, Some(int(1))),
                plain("customer", DataType::Int8, false, None),
                plain("note", DataType::Text, false, None),
            ]
        );
        assert_eq!(
            constraints,
            vec![
                TableConstraint::PrimaryKey { name: None, columns: vec!["id".into()] },
                TableConstraint::Unique { name: None, columns: vec!["code".into()] },
                TableConstraint::Check { name: None, expr: bin(BinaryOp::Gt, col("qty"), int(0)) },
                TableConstraint::ForeignKey {
                    name: Some("fk_c".into()),
                    columns: vec!["customer".into()],
                    foreign_table: "customers".into(),
                    referred_columns: vec!["id".into()],
                    on_delete: ReferentialAction::Cascade,
                    on_update: ReferentialAction::NoAction,
                    deferrable: false,
                    initially_deferred: false,
                },
                TableConstraint::Unique { name: Some("u".into()), columns: vec!["code".into(), "qty".into()] },
                TableConstraint::ForeignKey {
                    name: None,
                    columns: vec!["qty".into()],
                    foreign_table: "other".into(),
                    referred_columns: vec![],
                    on_delete: ReferentialAction::NoAction,
                    on_update: ReferentialAction::SetNull,
                    deferrable: false,
                    initially_deferred: false,
                },
                TableConstraint::Check { name: None, expr: bin(BinaryOp::Lt, col("qty"), int(100)) },
            ]
        );
    }

    #[test]
    fn create_table_table_level_primary_key() {
        let Statement::CreateTable { constraints, .. } =
            one("CREATE TABLE t (a int, b int, CONSTRAINT pk PRIMARY KEY (a, b))")
        else {
            panic!()
        };
        assert_eq!(
            constraints,
            vec![TableConstraint::PrimaryKey { name: Some("pk".into()), columns: vec!["a".into(), "b".into()] }]
        );
    }

    #[test]
    fn serial_and_identity_columns() {
        let Statement::CreateTable { columns, .. } = one("CREATE TABLE t (a serial, b bigserial, c smallserial, \
             d int GENERATED ALWAYS AS IDENTITY, e bigint GENERATED BY DEFAULT AS IDENTITY)")
        else {
            panic!()
        };
        let types: Vec<_> = columns.iter().map(|c| (c.data_type.clone(), c.serial, c.not_null)).collect();
        assert_eq!(
            types,
            vec![
                (DataType::Int4, true, true),
                (DataType::Int8, true, true),
                (DataType::Int2, true, true),
                (DataType::Int4, true, true),
                (DataType::Int8, true, true),
            ]
        );
        assert_eq!(code("CREATE TABLE t (a serial DEFAULT 1)"), codes::SYNTAX_ERROR);
        assert_eq!(code("SELECT 1::serial"), codes::UNDEFINED_OBJECT);
    }

    #[test]
    fn column_types() {
        let Statement::CreateTable { columns, .. } =
            one("CREATE TABLE t (a boolean, b bool, c smallint, d int2, e int4, f int8, g real, h float4, \
             i double precision, j float8, k float, l float(10), m float(30), n numeric, o decimal(10,2), \
             p numeric(5), q character varying(3), r varchar, s char(4), t character, u bytea, v date, \
             w timestamp, x timestamp without time zone, y timestamptz, z timestamp with time zone, \
             aa interval, bb text)")
        else {
            panic!()
        };
        let types: Vec<_> = columns.into_iter().map(|c| c.data_type).collect();
        use DataType::*;
        assert_eq!(
            types,
            vec![
                Bool,
                Bool,
                Int2,
                Int2,
                Int4,
                Int8,
                Float4,
                Float4,
                Float8,
                Float8,
                Float8,
                Float4,
                Float8,
                Numeric { precision: None, scale: None },
                Numeric { precision: Some(10), scale: Some(2) },
                Numeric { precision: Some(5), scale: Some(0) },
                Varchar(Some(3)),
                Varchar(None),
                Char(Some(4)),
                Char(Some(1)),
                Bytea,
                Date,
                Timestamp,
                Timestamp,
                TimestampTz,
                TimestampTz,
                Interval,
                Text,
            ]
        );
        assert_eq!(code("CREATE TABLE t (a xml)"), codes::FEATURE_NOT_SUPPORTED);
        assert_eq!(code("CREATE TABLE t (a numeric(3, 5))"), codes::INVALID_PARAMETER_VALUE);
    }

    #[test]
    fn drop_table_and_index() {
        assert_eq!(
            one("DROP TABLE IF EXISTS a, B CASCADE"),
            Statement::DropTable { names: vec!["a".into(), "b".into()], if_exists: true }
        );
        assert_eq!(one("DROP INDEX i"), Statement::DropIndex { names: vec!["i".into()], if_exists: false });
        assert_eq!(one("DROP VIEW IF EXISTS v"), Statement::DropView { names: vec!["v".into()], if_exists: true });
        assert_eq!(one("DROP TYPE s"), Statement::DropType { names: vec!["s".into()], if_exists: false });
        assert_eq!(code("DROP DOMAIN s"), codes::FEATURE_NOT_SUPPORTED);
    }

    #[test]
    fn enum_types() {
        assert_eq!(
            one("CREATE TYPE Mood AS ENUM ('sad', 'Happy')"),
            Statement::CreateEnum { name: "mood".into(), labels: vec!["sad".into(), "Happy".into()] }
        );
        assert_eq!(
            one("ALTER TYPE mood ADD VALUE IF NOT EXISTS 'ok' BEFORE 'Happy'"),
            Statement::AlterEnumAddValue {
                name: "mood".into(),
                label: "ok".into(),
                if_not_exists: true,
                position: Some((true, "Happy".into())),
            }
        );
        // Labels are string constants of at most 63 bytes.
        assert_eq!(code("CREATE TYPE m AS ENUM (sad)"), codes::SYNTAX_ERROR);
        assert_eq!(code(&format!("CREATE TYPE m AS ENUM ('{}')", "x".repeat(64))), codes::INVALID_PARAMETER_VALUE);
        assert_eq!(code("ALTER TYPE m RENAME VALUE 'a' TO 'b'"), codes::FEATURE_NOT_SUPPORTED);
        assert_eq!(code("CREATE TYPE p AS (x int)"), codes::FEATURE_NOT_SUPPORTED);
        // A type name the parser does not know is an enum type for the session to look up.
        let Statement::CreateTable { columns, .. } = one("CREATE TABLE t (m public.mood)") else { panic!() };
        assert_eq!(
            columns[0].data_type,
            DataType::Enum(std::sync::Arc::new(crate::types::EnumType::unresolved("mood")))
        );
    }

    #[test]
    fn create_index() {
        assert_eq!(
            one("CREATE UNIQUE INDEX IF NOT EXISTS idx ON t (a, b DESC)"),
            Statement::CreateIndex {
                name: Some("idx".into()),
                table: "t".into(),
                columns: vec!["a".into(), "b".into()],
                unique: true,
                if_not_exists: true,
            }
        );
        assert_eq!(
            one("CREATE INDEX ON t (a)"),
            Statement::CreateIndex {
                name: None,
                table: "t".into(),
                columns: vec!["a".into()],
                unique: false,
                if_not_exists: false,
            }
        );
        assert_eq!(code("CREATE INDEX i ON t (lower(a))"), codes::FEATURE_NOT_SUPPORTED);
        assert_eq!(code("CREATE INDEX i ON t (a) WHERE a > 0"), codes::FEATURE_NOT_SUPPORTED);
    }

    #[test]
    fn truncate() {
        assert_eq!(
            one("TRUNCATE TABLE a, b"),
            Statement::Truncate { tables: vec!["a".into(), "b".into()], cascade: false, restart_identity: false }
        );
        assert_eq!(
            one("TRUNCATE a CASCADE"),
            Statement::Truncate { tables: vec!["a".into()], cascade: true, restart_identity: false }
        );
        assert_eq!(
            one("TRUNCATE a RESTART IDENTITY"),
            Statement::Truncate { tables: vec!["a".into()], cascade: false, restart_identity: true }
        );
    }

    #[test]
    fn insert_values_with_default() {
        assert_eq!(
            one("INSERT INTO t (a, b) VALUES (1, DEFAULT), ($1, 'x')"),
            Statement::Insert {
                table: "t".into(),
                columns: Some(vec!["a".into(), "b".into()]),
                source: InsertSource::Values(vec![vec![int(1), Expr::Default], vec![Expr::Param(1), text("x")]]),
                on_conflict: None,
                returning: vec![],
            }
        );
        assert_eq!(code("SELECT DEFAULT"), codes::SYNTAX_ERROR);
    }

    #[test]
    fn insert_select_and_default_values() {
        let Statement::Insert { columns, source: InsertSource::Query(query), .. } =
            one("INSERT INTO t SELECT a FROM u")
        else {
            panic!()
        };
        assert_eq!(columns, None);
        assert_eq!(query.body, SetExpr::Select(Box::new(sel("SELECT a FROM u"))));
        let Statement::Insert { source, .. } = one("INSERT INTO t DEFAULT VALUES") else { panic!() };
        assert_eq!(source, InsertSource::DefaultValues);
    }

    #[test]
    fn insert_on_conflict_and_returning() {
        let Statement::Insert { on_conflict, returning, .. } =
            one("INSERT INTO t (a, b) VALUES (1, 2) ON CONFLICT DO NOTHING RETURNING *")
        else {
            panic!()
        };
        assert_eq!(on_conflict, Some(OnConflict { columns: vec![], constraint: None, update: None }));
        assert_eq!(returning, vec![SelectItem::Wildcard]);

        let Statement::Insert { on_conflict, returning, .. } =
            one("INSERT INTO t (a, b) VALUES (1, 2) ON CONFLICT (a) DO UPDATE SET b = excluded.b WHERE t.b < 5 \
             RETURNING a, b AS bee")
        else {
            panic!()
        };
        assert_eq!(
            on_conflict,
            Some(OnConflict {
                columns: vec!["a".into()],
                constraint: None,
                update: Some((
                    vec![("b".into(), qcol("excluded", "b"))],
                    Some(bin(BinaryOp::Lt, qcol("t", "b"), int(5)))
                )),
            })
        );
        assert_eq!(returning, vec![item(col("a")), SelectItem::Expr { expr: col("b"), alias: Some("bee".into()) }]);
        assert_eq!(code("INSERT INTO t VALUES (1) ON CONFLICT DO UPDATE SET a = 1"), codes::SYNTAX_ERROR);
    }

    #[test]
    fn update() {
        assert_eq!(
            one("UPDATE t AS x SET a = a + 1, b = DEFAULT WHERE x.id = $2 RETURNING a"),
            Statement::Update {
                table: "t".into(),
                alias: Some("x".into()),
                assignments: vec![("a".into(), bin(BinaryOp::Add, col("a"), int(1))), ("b".into(), Expr::Default)],
                from: vec![],
                filter: Some(bin(BinaryOp::Eq, qcol("x", "id"), Expr::Param(2))),
                returning: vec![item(col("a"))],
            }
        );
        assert!(matches!(
            one("UPDATE t SET a = u.a FROM u WHERE t.id = u.id"),
            Statement::Update { from, .. } if from.len() == 1
        ));
    }

    #[test]
    fn delete() {
        assert_eq!(
            one("DELETE FROM t a WHERE a.x IS NULL RETURNING *"),
            Statement::Delete {
                table: "t".into(),
                alias: Some("a".into()),
                using: vec![],
                filter: Some(Expr::IsNull { expr: Box::new(qcol("a", "x")), negated: false }),
                returning: vec![SelectItem::Wildcard],
            }
        );
        assert_eq!(
            one("DELETE FROM t"),
            Statement::Delete { table: "t".into(), alias: None, using: vec![], filter: None, returning: vec![] }
        );
    }

    // --- queries ----------------------------------------------------------------------

    #[test]
    fn select_clauses() {
        let query = q("SELECT DISTINCT a, count(*) AS n FROM t WHERE b > 1 GROUP BY a HAVING count(*) > 2 \
                       ORDER BY a DESC NULLS LAST, 2 LIMIT 10 OFFSET 5");
        let star = Expr::Function { name: "count".into(), args: vec![], distinct: false, star: true, order_by: vec![] };
        assert_eq!(
            query,
            Query {
                with: vec![],
                body: SetExpr::Select(Box::new(Select {
                    distinct: true,
                    distinct_on: vec![],
                    items: vec![item(col("a")), SelectItem::Expr { expr: star.clone(), alias: Some("n".into()) }],
                    from: vec![table("t", None)],
                    filter: Some(bin(BinaryOp::Gt, col("b"), int(1))),
                    group_by: vec![col("a")],
                    having: Some(bin(BinaryOp::Gt, star, int(2))),
                })),
                order_by: vec![
                    OrderBy { expr: col("a"), desc: true, nulls_first: Some(false) },
                    OrderBy { expr: int(2), desc: false, nulls_first: None },
                ],
                limit: Some(int(10)),
                offset: Some(int(5)),
                locking: None,
            }
        );
    }

    #[test]
    fn select_without_from_and_wildcards() {
        let s = sel("SELECT 1, t.*, *");
        assert_eq!(s.items, vec![item(int(1)), SelectItem::QualifiedWildcard("t".into()), SelectItem::Wildcard]);
        assert!(s.from.is_empty());
    }

    #[test]
    fn from_items_and_joins() {
        let s = sel("SELECT * FROM a AS x, (SELECT 1) s, b INNER JOIN c ON b.id = c.id \
                     LEFT OUTER JOIN d ON true RIGHT JOIN e ON true FULL JOIN f ON true CROSS JOIN g");
        assert_eq!(s.from.len(), 3);
        assert_eq!(s.from[0], table("a", Some("x")));
        assert!(matches!(&s.from[1], TableRef::Subquery { alias, .. } if alias == "s"));
        let mut kinds = Vec::new();
        let mut node = &s.from[2];
        while let TableRef::Join { left, kind, on, .. } = node {
            kinds.push((*kind, on.is_some()));
            node = left;
        }
        assert_eq!(node, &table("b", None));
        assert_eq!(
            kinds,
            vec![
                (JoinKind::Cross, false),
                (JoinKind::Full, true),
                (JoinKind::Right, true),
                (JoinKind::Left, true),
                (JoinKind::Inner, true),
            ]
        );
    }

    #[test]
    fn join_using_and_natural() {
        let s = sel("SELECT * FROM a JOIN b AS bb USING (id, k)");
        assert_eq!(
            s.from,
            vec![TableRef::Join {
                left: Box::new(table("a", None)),
                right: Box::new(table("b", Some("bb"))),
                kind: JoinKind::Inner,
                on: None,
                using: vec!["id".into(), "k".into()],
                natural: false,
            }]
        );
        let s = sel("SELECT * FROM a NATURAL LEFT JOIN b");
        assert!(matches!(&s.from[0], TableRef::Join { natural: true, kind: JoinKind::Left, on: None, .. }));
        assert_eq!(code("SELECT * FROM a JOIN b USING (id, id)"), codes::DUPLICATE_COLUMN);
    }

    #[test]
    fn locking_clauses() {
        let lock = |sql| q(sql).locking;
        assert_eq!(
            lock("SELECT * FROM t FOR UPDATE"),
            Some(Locking { exclusive: true, nowait: false, skip_locked: false })
        );
        assert_eq!(
            lock("SELECT * FROM t FOR UPDATE NOWAIT"),
            Some(Locking { exclusive: true, nowait: true, skip_locked: false })
        );
        assert_eq!(
            lock("SELECT * FROM t FOR SHARE SKIP LOCKED"),
            Some(Locking { exclusive: false, nowait: false, skip_locked: true })
        );
    }

    #[test]
    fn set_operations_values_and_parentheses() {
        let body = q("SELECT 1 UNION ALL SELECT 2 EXCEPT SELECT 3").body;
        let SetExpr::SetOp { op: SetOperator::Except, all: false, left, .. } = body else { panic!("{body:?}") };
        assert!(matches!(*left, SetExpr::SetOp { op: SetOperator::Union, all: true, .. }));
        assert!(matches!(q("SELECT 1 INTERSECT SELECT 1").body, SetExpr::SetOp { op: SetOperator::Intersect, .. }));
        assert_eq!(
            q("VALUES (1, 'a'), (2, 'b')").body,
            SetExpr::Values(vec![vec![int(1), text("a")], vec![int(2), text("b")]])
        );
        let body = q("(SELECT 1) UNION (SELECT 2)").body;
        let SetExpr::SetOp { left, .. } = body else { panic!("{body:?}") };
        assert!(matches!(*left, SetExpr::Query(_)));
    }

    #[test]
    fn with_queries() {
        let query = q("WITH x AS (SELECT 1), y AS (SELECT 2) SELECT * FROM x, y");
        let names: Vec<_> = query.with.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, vec!["x", "y"]);
        assert!(q("WITH RECURSIVE r AS (SELECT 1) SELECT * FROM r").with[0].recursive);
    }

    // --- expressions ------------------------------------------------------------------

    #[test]
    fn column_references_and_params() {
        assert_eq!(e("a"), col("a"));
        assert_eq!(e("T.A"), qcol("t", "a"));
        assert_eq!(e("public.t.a"), qcol("t", "a"));
        assert_eq!(e("pg_catalog.pg_class.relname"), qcol("pg_class", "relname"));
        assert_eq!(e("$3"), Expr::Param(3));
    }

    #[test]
    fn quoted_identifiers_keep_case() {
        let s = sel(r#"SELECT "MixedCase", Plain FROM "Tab" AS "Al""#);
        assert_eq!(s.items, vec![item(col("MixedCase")), item(col("plain"))]);
        assert_eq!(s.from, vec![table("Tab", Some("Al"))]);
        assert_eq!(sel("SELECT * FROM pg_catalog.pg_class").from, vec![table("pg_catalog.pg_class", None)]);
        assert_eq!(sel("SELECT * FROM public.t").from, vec![table("t", None)]);
    }

    #[test]
    fn unary_and_binary_operators() {
        let unary = |op, expr| Expr::Unary { op, expr: Box::new(expr) };
        assert_eq!(e("NOT a"), unary(UnaryOp::Not, col("a")));
        assert_eq!(e("-a"), unary(UnaryOp::Neg, col("a")));
        assert_eq!(e("+a"), unary(UnaryOp::Plus, col("a")));
        for (text, op) in [
            ("+", BinaryOp::Add),
            ("-", BinaryOp::Sub),
            ("*", BinaryOp::Mul),
            ("/", BinaryOp::Div),
            ("%", BinaryOp::Mod),
            ("=", BinaryOp::Eq),
            ("<>", BinaryOp::NotEq),
            ("!=", BinaryOp::NotEq),
            ("<", BinaryOp::Lt),
            ("<=", BinaryOp::LtEq),
            (">", BinaryOp::Gt),
            (">=", BinaryOp::GtEq),
            ("AND", BinaryOp::And),
            ("OR", BinaryOp::Or),
            ("||", BinaryOp::Concat),
        ] {
            assert_eq!(e(&format!("a {text} b")), bin(op, col("a"), col("b")), "{text}");
        }
        assert_eq!(e("(a + b) * c"), bin(BinaryOp::Mul, bin(BinaryOp::Add, col("a"), col("b")), col("c")));
        assert_eq!(e("((a))"), col("a"));
    }

    #[test]
    fn is_predicates() {
        let is_bool = |value, negated| Expr::IsBool { expr: Box::new(col("a")), value, negated };
        assert_eq!(e("a IS NULL"), Expr::IsNull { expr: Box::new(col("a")), negated: false });
        assert_eq!(e("a IS NOT NULL"), Expr::IsNull { expr: Box::new(col("a")), negated: true });
        assert_eq!(e("a IS TRUE"), is_bool(Some(true), false));
        assert_eq!(e("a IS NOT TRUE"), is_bool(Some(true), true));
        assert_eq!(e("a IS FALSE"), is_bool(Some(false), false));
        assert_eq!(e("a IS NOT FALSE"), is_bool(Some(false), true));
        assert_eq!(e("a IS UNKNOWN"), is_bool(None, false));
        assert_eq!(e("a IS NOT UNKNOWN"), is_bool(None, true));
        assert!(matches!(e("a IS DISTINCT FROM b"), Expr::Case { .. }));
    }

    #[test]
    fn in_exists_and_subqueries() {
        assert_eq!(
            e("a NOT IN (1, 2)"),
            Expr::InList { expr: Box::new(col("a")), list: vec![int(1), int(2)], negated: true }
        );
        let Expr::InSubquery { negated: false, .. } = e("a IN (SELECT b FROM t)") else { panic!() };
        let Expr::InSubquery { negated: true, .. } = e("a NOT IN (SELECT b FROM t)") else { panic!() };
        let Expr::Exists { negated: false, .. } = e("EXISTS (SELECT 1)") else { panic!() };
        let Expr::Exists { negated: true, .. } = e("NOT EXISTS (SELECT 1)") else { panic!() };
        let Expr::Subquery(_) = e("(SELECT max(a) FROM t)") else { panic!() };
    }

    #[test]
    fn between_and_like() {
        assert_eq!(
            e("a NOT BETWEEN 1 AND 2"),
            Expr::Between { expr: Box::new(col("a")), low: Box::new(int(1)), high: Box::new(int(2)), negated: true }
        );
        let like = |negated, case_insensitive| Expr::Like {
            expr: Box::new(col("a")),
            pattern: Box::new(text("x%")),
            negated,
            case_insensitive,
        };
        assert_eq!(e("a LIKE 'x%'"), like(false, false));
        assert_eq!(e("a NOT LIKE 'x%'"), like(true, false));
        assert_eq!(e("a ILIKE 'x%'"), like(false, true));
        assert_eq!(e("a NOT ILIKE 'x%'"), like(true, true));
    }

    #[test]
    fn case_expressions() {
        assert_eq!(
            e("CASE a WHEN 1 THEN 'one' ELSE 'other' END"),
            Expr::Case {
                operand: Some(Box::new(col("a"))),
                whens: vec![(int(1), text("one"))],
                else_result: Some(Box::new(text("other"))),
            }
        );
        assert_eq!(
            e("CASE WHEN a > 0 THEN 1 END"),
            Expr::Case { operand: None, whens: vec![(bin(BinaryOp::Gt, col("a"), int(0)), int(1))], else_result: None }
        );
    }

    #[test]
    fn casts_and_typed_literals() {
        let cast = |expr, to| Expr::Cast { expr: Box::new(expr), to };
        assert_eq!(e("CAST(a AS bigint)"), cast(col("a"), DataType::Int8));
        assert_eq!(e("a::text"), cast(col("a"), DataType::Text));
        assert_eq!(
            e("'1.5'::numeric(4,2)"),
            cast(text("1.5"), DataType::Numeric { precision: Some(4), scale: Some(2) })
        );
        assert_eq!(e("DATE '2020-01-01'"), cast(text("2020-01-01"), DataType::Date));
        assert_eq!(e("TIMESTAMP '2020-01-01 10:00'"), cast(text("2020-01-01 10:00"), DataType::Timestamp));
        assert_eq!(e("INTERVAL '1 day'"), cast(text("1 day"), DataType::Interval));
    }

    #[test]
    fn function_calls() {
        assert_eq!(e("Lower(a)"), func("lower", vec![col("a")]));
        assert_eq!(
            e("count(DISTINCT a)"),
            Expr::Function {
                name: "count".into(),
                args: vec![col("a")],
                distinct: true,
                star: false,
                order_by: vec![]
            }
        );
        assert_eq!(
            e("count(*)"),
            Expr::Function { name: "count".into(), args: vec![], distinct: false, star: true, order_by: vec![] }
        );
        assert_eq!(e("COALESCE(a, 1)"), func("coalesce", vec![col("a"), int(1)]));
        assert_eq!(e("NULLIF(a, 1)"), func("nullif", vec![col("a"), int(1)]));
        assert_eq!(e("GREATEST(a, 1)"), func("greatest", vec![col("a"), int(1)]));
        assert_eq!(e("LEAST(a, 1)"), func("least", vec![col("a"), int(1)]));
        assert_eq!(e("pg_catalog.version()"), func("version", vec![]));
        assert!(matches!(e("sum(a) OVER ()"), Expr::Window { .. }));
        assert_eq!(code("SELECT sum(a) OVER w FROM t WINDOW w AS ()"), codes::FEATURE_NOT_SUPPORTED);
    }

    #[test]
    fn special_functions() {
        assert_eq!(e("CURRENT_DATE"), func("current_date", vec![]));
        assert_eq!(e("CURRENT_TIMESTAMP"), func("now", vec![]));
        assert_eq!(e("now()"), func("now", vec![]));
        assert_eq!(e("EXTRACT(YEAR FROM a)"), func("extract", vec![text("year"), col("a")]));
        assert_eq!(e("SUBSTRING(a FROM 2 FOR 3)"), func("substring", vec![col("a"), int(2), int(3)]));
        assert_eq!(e("substring(a, 2)"), func("substring", vec![col("a"), int(2)]));
        assert_eq!(e("TRIM(a)"), func("btrim", vec![col("a")]));
        assert_eq!(e("TRIM(LEADING 'x' FROM a)"), func("ltrim", vec![col("a"), text("x")]));
        assert_eq!(e("TRIM(TRAILING FROM a)"), func("rtrim", vec![col("a")]));
        assert_eq!(e("POSITION('b' IN a)"), func("position", vec![col("a"), text("b")]));
        assert_eq!(e("a AT TIME ZONE 'UTC'"), func("timezone", vec![text("UTC"), col("a")]));
    }

    #[test]
    fn literals() {
        assert_eq!(e("TRUE"), Expr::Literal(Value::Bool(true)));
        assert_eq!(e("false"), Expr::Literal(Value::Bool(false)));
        assert_eq!(e("NULL"), Expr::Literal(Value::Null));
        assert_eq!(e("'it''s'"), text("it's"));
        assert_eq!(e(r"E'a\tb'"), text("a\tb"));
        assert_eq!(e("$$dollar$$"), text("dollar"));
    }

    #[test]
    fn numeric_literal_typing() {
        let lit = |t| match e(t) {
            Expr::Literal(v) => v,
            other => panic!("{t}: {other:?}"),
        };
        assert_eq!(lit("2147483647"), Value::Int4(i32::MAX));
        assert_eq!(lit("1e100"), Value::Float8(1e100));
        assert_eq!(lit("-2.5e-300"), Value::Float8(-2.5e-300));
        assert!(matches!(lit("1e37"), Value::Numeric(_)));
        assert_eq!(lit("-2147483648"), Value::Int4(i32::MIN));
        assert_eq!(lit("2147483648"), Value::Int8(2_147_483_648));
        assert_eq!(lit("-9223372036854775808"), Value::Int8(i64::MIN));
        assert_eq!(lit("9223372036854775808"), num(9_223_372_036_854_775_808, 0));
        assert_eq!(lit("1.50"), num(150, 2));
        assert_eq!(lit(".5"), num(5, 1));
        assert_eq!(lit("-0.25"), num(-25, 2));
        assert_eq!(lit("1e3"), num(1000, 0));
        assert_eq!(lit("1.5E-2"), num(15, 3));
        assert_eq!(lit("1_000"), Value::Int4(1000));
        assert_eq!(lit("1e40"), Value::Float8(1e40));
        assert_eq!(code("SELECT 123456789012345678901234567890123456789"), codes::NUMERIC_VALUE_OUT_OF_RANGE);
    }

    // --- transactions and sessions ----------------------------------------------------

    #[test]
    fn transaction_statements() {
        let begin = |isolation, read_only| Statement::Begin { isolation, read_only };
        assert_eq!(one("BEGIN"), begin(None, None));
        assert_eq!(one("BEGIN TRANSACTION READ ONLY"), begin(None, Some(true)));
        assert_eq!(
            one("START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ WRITE"),
            begin(Some(IsolationLevel::Serializable), Some(false))
        );
        assert_eq!(one("BEGIN ISOLATION LEVEL REPEATABLE READ"), begin(Some(IsolationLevel::RepeatableRead), None));
        assert_eq!(one("COMMIT"), Statement::Commit);
        assert_eq!(one("END"), Statement::Commit);
        assert_eq!(one("ROLLBACK"), Statement::Rollback);
        assert_eq!(one("ABORT"), Statement::Rollback);
        assert_eq!(one("SAVEPOINT Sp1"), Statement::Savepoint("sp1".into()));
        assert_eq!(one("ROLLBACK TO SAVEPOINT sp1"), Statement::RollbackTo("sp1".into()));
        assert_eq!(one("ROLLBACK TO sp1"), Statement::RollbackTo("sp1".into()));
        assert_eq!(one("RELEASE SAVEPOINT sp1"), Statement::Release("sp1".into()));
        assert_eq!(one("RELEASE sp1"), Statement::Release("sp1".into()));
        assert_eq!(
            one("SET TRANSACTION ISOLATION LEVEL READ COMMITTED"),
            Statement::SetTransaction { isolation: Some(IsolationLevel::ReadCommitted), read_only: None }
        );
        assert_eq!(
            one("SET TRANSACTION READ ONLY"),
            Statement::SetTransaction { isolation: None, read_only: Some(true) }
        );
        assert_eq!(
            parse("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE").unwrap(),
            vec![Statement::Set {
                name: "default_transaction_isolation".into(),
                value: Some("serializable".into()),
                local: false
            }]
        );
    }

    #[test]
    fn set_show_reset() {
        let set = |name: &str, value: Option<&str>| Statement::Set {
            name: name.into(),
            value: value.map(Into::into),
            local: false,
        };
        assert_eq!(one("SET extra_float_digits = 3"), set("extra_float_digits", Some("3")));
        assert_eq!(one("SET application_name = 'psql'"), set("application_name", Some("psql")));
        assert_eq!(one("SET SESSION search_path TO Public, \"$user\""), set("search_path", Some("public, $user")));
        assert_eq!(
            one("SET LOCAL statement_timeout = -5"),
            Statement::Set { name: "statement_timeout".into(), value: Some("-5".into()), local: true }
        );
        use crate::ast::Discard;
        assert_eq!(one("DISCARD ALL"), Statement::Discard(Discard::All));
        assert_eq!(one("discard sequences"), Statement::Discard(Discard::Sequences));
        assert_eq!(one("DEALLOCATE ALL"), Statement::Deallocate(None));
        assert_eq!(one("DEALLOCATE PREPARE \"S_1\""), Statement::Deallocate(Some("S_1".into())));
        assert_eq!(one("DEALLOCATE s1"), Statement::Deallocate(Some("s1".into())));
        assert_eq!(one("CLOSE ALL"), Statement::Close(None));
        assert_eq!(one("CLOSE c"), Statement::Close(Some("c".into())));
        assert_eq!(one("UNLISTEN *"), Statement::Unlisten);
        assert_eq!(one("UNLISTEN chan"), Statement::Unlisten);
        assert_eq!(code("DISCARD"), codes::SYNTAX_ERROR);
        assert_eq!(code("DISCARD ALL x"), codes::SYNTAX_ERROR);
        assert_eq!(code("DEALLOCATE"), codes::SYNTAX_ERROR);
        assert_eq!(one("SET standard_conforming_strings = on"), set("standard_conforming_strings", Some("on")));
        assert_eq!(one("SET x TO DEFAULT"), set("x", None));
        assert_eq!(one("SET TIME ZONE 'UTC'"), set("timezone", Some("UTC")));
        assert_eq!(one("SET TIME ZONE LOCAL"), set("timezone", None));
        assert_eq!(one("SHOW server_version"), Statement::Show("server_version".into()));
        assert_eq!(one("SHOW ALL"), Statement::Show("all".into()));
        assert_eq!(one("SHOW TRANSACTION ISOLATION LEVEL"), Statement::Show("transaction_isolation".into()));
        assert_eq!(one("RESET search_path"), Statement::Reset("search_path".into()));
        assert_eq!(one("RESET ALL"), Statement::Reset("all".into()));
        assert_eq!(one("SET NAMES 'UTF8'"), set("client_encoding", Some("UTF8")));
        assert_eq!(code("SET x ="), codes::SYNTAX_ERROR);
        assert_eq!(code("SHOW a b"), codes::SYNTAX_ERROR);
    }

    #[test]
    fn explain() {
        assert_eq!(
            one("EXPLAIN SELECT 1"),
            Statement::Explain {
                analyze: false,
                costs: true,
                timing: true,
                summary: false,
                statement: Box::new(one("SELECT 1"))
            }
        );
        assert_eq!(
            one("EXPLAIN ANALYZE DELETE FROM t"),
            Statement::Explain {
                analyze: true,
                costs: true,
                timing: true,
                summary: true,
                statement: Box::new(one("DELETE FROM t"))
            }
        );
        assert_eq!(
            one("EXPLAIN (ANALYZE, COSTS OFF) SELECT 1"),
            Statement::Explain {
                analyze: true,
                costs: false,
                timing: true,
                summary: true,
                statement: Box::new(one("SELECT 1"))
            }
        );
    }

    // --- errors and input shape -------------------------------------------------------

    #[test]
    fn syntax_errors_are_42601_in_postgres_words() {
        let err = parse("SELECT * FROM FROM").unwrap_err();
        assert_eq!(err.code, codes::SYNTAX_ERROR);
        assert_eq!(err.message, "syntax error at or near \"FROM\"");
        let err = parse("SELECT * FROM").unwrap_err();
        assert_eq!((err.code, err.message.as_str()), (codes::SYNTAX_ERROR, "syntax error at end of input"));
        assert_eq!(code("SELEC 1"), codes::SYNTAX_ERROR);
        assert_eq!(code("SELECT 'unterminated"), codes::SYNTAX_ERROR);
        // Positions, as PostgreSQL 15 reports them for the same text (1-based characters).
        let at = |sql: &str| parse(sql).unwrap_err().position;
        assert_eq!(at("SELECT * FROM"), Some(14));
        assert_eq!(at("selec 1"), Some(1));
        assert_eq!(at("SELECT 1,\n  2 3"), Some(15));
        assert_eq!(at("SELECT 1 FROM t WHERE (id = 1"), Some(30));
        let e = parse("SELECT 'abc").unwrap_err();
        assert_eq!((e.message.as_str(), e.position), ("unterminated quoted string at or near \"'abc\"", Some(8)));
        assert_eq!(at("SELECT 'é', 'x"), Some(13));
    }

    #[test]
    fn multiple_statements() {
        let statements = parse("BEGIN; SET x = 1;; SELECT 1; -- done\n COMMIT;").unwrap();
        assert_eq!(statements.len(), 4);
        assert_eq!(statements[0], Statement::Begin { isolation: None, read_only: None });
        assert_eq!(statements[1], Statement::Set { name: "x".into(), value: Some("1".into()), local: false });
        assert!(matches!(statements[2], Statement::Query(_)));
        assert_eq!(statements[3], Statement::Commit);
        assert_eq!(parse("").unwrap(), vec![]);
        assert_eq!(parse(" ; -- nothing").unwrap(), vec![]);
        assert_eq!(parse("SELECT ';'; SELECT 2").unwrap().len(), 2);
        assert_eq!(code("SELECT 1 END"), codes::SYNTAX_ERROR);
        assert_eq!(code("SELECT 1 SELECT 2"), codes::SYNTAX_ERROR);
    }

    #[test]
    fn unsupported_constructs_are_0a000() {
        for sql in [
            "SELECT a < ANY(SELECT 1) FROM t",
            "SELECT (1, 2)",
            "SELECT a[1:2] FROM t",
            "SELECT a COLLATE \"de_DE\" FROM t",
            "CREATE TABLE t (r regclass)",
            "SELECT * FROM t, LATERAL (SELECT 1) s",
            "CREATE TEMP TABLE t (a int)",
            "CREATE TABLE t AS SELECT 1",
            "CREATE MATERIALIZED VIEW v AS SELECT 1",
            "SELECT a FROM t FOR UPDATE OF t",
            "SELECT x'1f'",
        ] {
            assert_eq!(code(sql), codes::FEATURE_NOT_SUPPORTED, "{sql}");
        }
    }

    #[test]
    fn reserved_keywords_are_not_names() {
        let mut sorted = RESERVED_KEYWORDS;
        sorted.sort_unstable();
        assert_eq!(sorted, RESERVED_KEYWORDS);
        assert_eq!(code("SELECT * FROM select"), codes::SYNTAX_ERROR);
        assert_eq!(sel(r#"SELECT "from".x FROM "from""#).from, vec![table("from", None)]);
    }

    #[test]
    fn long_identifiers_are_truncated_to_63_bytes() {
        let long = "a".repeat(70);
        assert_eq!(e(&long), col(&"a".repeat(IDENTIFIER_BYTES_MAX)));
    }
}
