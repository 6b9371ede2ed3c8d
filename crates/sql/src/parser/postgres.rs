//! PostgreSQL syntax the catalog queries of psql and drivers lean on, translated here so
//! the main translation in `parser.rs` only calls in:
//!
//! - the regular expression operators `~ !~ ~* !~*` and the `OPERATOR(pg_catalog.op)`
//!   spelling of any operator;
//! - `COLLATE`: the default collation and "C"/"POSIX" (Bulwark compares text bytewise, which
//!   is what they mean); any other collation is 0A000;
//! - `op ANY (...)` / `op ALL (...)` over an array in text form or a subquery;
//! - `ARRAY(subquery)` and `array[index]`;
//! - functions in FROM, with `WITH ORDINALITY` and column aliases;
//! - the type names of `pg_catalog` (`pg_catalog.text`, `oid`, `name`, `regclass`, ...).
//!   Bulwark has no array or `oid` types: an array type names the text form of its arrays
//!   (`{1,2}`), and `oid` is `bigint`.

use super::{boxed, expr, function_name, ident, query, unsupported_sql};
use crate::ast::{BinaryOp, Expr, TableRef};
use crate::error::{Error, Result};
use crate::types::{DataType, RegKind, Value};
use sqlparser::ast as sql;

/// An operator `sqlparser` reads as PostgreSQL-specific, or None.
pub(super) fn binary_op(op: &sql::BinaryOperator) -> Option<BinaryOp> {
    Some(match op {
        sql::BinaryOperator::PGRegexMatch => BinaryOp::Match,
        sql::BinaryOperator::PGRegexNotMatch => BinaryOp::NotMatch,
        sql::BinaryOperator::PGRegexIMatch => BinaryOp::IMatch,
        sql::BinaryOperator::PGRegexNotIMatch => BinaryOp::NotIMatch,
        sql::BinaryOperator::Arrow => BinaryOp::JsonGet,
        sql::BinaryOperator::LongArrow => BinaryOp::JsonGetText,
        sql::BinaryOperator::HashArrow => BinaryOp::JsonPath,
        sql::BinaryOperator::HashLongArrow => BinaryOp::JsonPathText,
        sql::BinaryOperator::AtArrow => BinaryOp::Contains,
        sql::BinaryOperator::ArrowAt => BinaryOp::ContainedBy,
        sql::BinaryOperator::Question => BinaryOp::HasKey,
        sql::BinaryOperator::QuestionPipe => BinaryOp::HasAnyKey,
        sql::BinaryOperator::QuestionAnd => BinaryOp::HasAllKeys,
        // OPERATOR(pg_catalog.~): the schema is the only one operators live in.
        sql::BinaryOperator::PGCustomBinaryOperator(parts) => match parts.as_slice() {
            [schema, symbol] if schema.eq_ignore_ascii_case("pg_catalog") => symbol_op(symbol)?,
            [symbol] => symbol_op(symbol)?,
            _ => return None,
        },
        _ => return None,
    })
}

/// The binary operator spelled `symbol`.
fn symbol_op(symbol: &str) -> Option<BinaryOp> {
    Some(match symbol {
        "+" => BinaryOp::Add,
        "-" => BinaryOp::Sub,
        "*" => BinaryOp::Mul,
        "/" => BinaryOp::Div,
        "%" => BinaryOp::Mod,
        "=" => BinaryOp::Eq,
        "<>" | "!=" => BinaryOp::NotEq,
        "<" => BinaryOp::Lt,
        "<=" => BinaryOp::LtEq,
        ">" => BinaryOp::Gt,
        ">=" => BinaryOp::GtEq,
        "||" => BinaryOp::Concat,
        "~" => BinaryOp::Match,
        "!~" => BinaryOp::NotMatch,
        "~*" => BinaryOp::IMatch,
        "!~*" => BinaryOp::NotIMatch,
        _ => return None,
    })
}

/// `expr COLLATE name`: the collations that mean bytewise comparison are accepted.
pub(super) fn collate(inner: sql::Expr, collation: sql::ObjectName) -> Result<Expr> {
    check_collation(collation)?;
    expr(inner)
}

/// Accepts the collations Bulwark has: those that compare text bytewise, as it always does.
pub(super) fn check_collation(collation: sql::ObjectName) -> Result<()> {
    let text = collation.to_string();
    let parts = super::name_parts(collation)?;
    let name = match parts.as_slice() {
        [one] => one.as_str(),
        [schema, one] if schema == "pg_catalog" => one.as_str(),
        _ => return Err(unsupported_sql("collation", &text)),
    };
    match name {
        "default" | "C" | "POSIX" | "ucs_basic" => Ok(()),
        _ => Err(Error::unsupported(format!("collation \"{name}\" (text compares bytewise, as \"C\")"))),
    }
}

/// `left op ANY/SOME/ALL (right)`: over a subquery `= ANY` is IN and `<> ALL` is NOT IN;
/// over anything else the right side is an array in text form.
pub(super) fn any_all(left: sql::Expr, compare_op: &sql::BinaryOperator, right: sql::Expr, all: bool) -> Result<Expr> {
    let op = super::binary_op(compare_op)?;
    if !matches!(op, BinaryOp::Eq | BinaryOp::NotEq | BinaryOp::Lt | BinaryOp::LtEq | BinaryOp::Gt | BinaryOp::GtEq)
        && binary_op(compare_op).is_none()
    {
        return Err(Error::unsupported(format!("{op} {}", if all { "ALL" } else { "ANY" })));
    }
    if let sql::Expr::Subquery(q) = right {
        return match (op, all) {
            (BinaryOp::Eq, false) => {
                Ok(Expr::InSubquery { expr: boxed(left)?, query: Box::new(query(*q)?), negated: false })
            }
            (BinaryOp::NotEq, true) => {
                Ok(Expr::InSubquery { expr: boxed(left)?, query: Box::new(query(*q)?), negated: true })
            }
            _ => Err(Error::unsupported(format!("{op} {} (subquery)", if all { "ALL" } else { "ANY" }))),
        };
    }
    if let sql::Expr::Array(sql::Array { elem, .. }) = right {
        return any_all_list(expr(left)?, op, elem.into_iter().map(expr).collect::<Result<_>>()?, all);
    }
    Ok(Expr::AnyAll { expr: boxed(left)?, op, array: boxed(right)?, all })
}

/// `x op ANY (ARRAY[a, b])` is `x op a OR x op b` (`= ANY` is IN), and `x op ALL (...)` is
/// `x op a AND x op b` (`<> ALL` is NOT IN), NULLs included; an empty list is false for ANY
/// and true for ALL.
fn any_all_list(left: Expr, op: BinaryOp, list: Vec<Expr>, all: bool) -> Result<Expr> {
    match (op, all) {
        _ if list.is_empty() => return Ok(Expr::Literal(Value::Bool(all))),
        (BinaryOp::Eq, false) => return Ok(Expr::InList { expr: Box::new(left), list, negated: false }),
        (BinaryOp::NotEq, true) => return Ok(Expr::InList { expr: Box::new(left), list, negated: true }),
        _ => {}
    }
    let join = if all { BinaryOp::And } else { BinaryOp::Or };
    let terms = list.into_iter().map(|e| Expr::Binary { op, left: Box::new(left.clone()), right: Box::new(e) });
    Ok(terms
        .reduce(|acc, t| Expr::Binary { op: join, left: Box::new(acc), right: Box::new(t) })
        .expect("the list is not empty"))
}

/// `root[index]...`: subscripts only (field selection `(row).field` is 0A000).
pub(super) fn field_access(root: sql::Expr, chain: Vec<sql::AccessExpr>) -> Result<Expr> {
    let mut out = expr(root)?;
    for access in chain {
        out = match access {
            sql::AccessExpr::Subscript(sql::Subscript::Index { index }) => {
                Expr::Subscript { expr: Box::new(out), index: boxed(index)? }
            }
            sql::AccessExpr::Subscript(other) => return Err(unsupported_sql("array slice", &other)),
            sql::AccessExpr::Dot(other) => return Err(unsupported_sql("field selection", &other)),
        };
    }
    Ok(out)
}

/// `ARRAY(subquery)`.
pub(super) fn array_subquery(q: sql::Query) -> Result<Expr> {
    Ok(Expr::ArraySubquery(Box::new(query(q)?)))
}

/// A function in FROM: `name(args) [WITH ORDINALITY] [AS alias[(columns)]]`.
pub(super) fn table_function(
    name: sql::ObjectName,
    args: sql::TableFunctionArgs,
    alias: Option<sql::TableAlias>,
    ordinality: bool,
) -> Result<TableRef> {
    if args.settings.is_some() {
        return Err(unsupported_sql("table function", &name));
    }
    let name = function_name(name)?;
    let args = args
        .args
        .into_iter()
        .map(|a| match a {
            sql::FunctionArg::Unnamed(sql::FunctionArgExpr::Expr(e)) => expr(e),
            other => Err(unsupported_sql("function argument", &other)),
        })
        .collect::<Result<Vec<_>>>()?;
    let (alias, columns) = match alias {
        None => (None, Vec::new()),
        Some(a) => {
            if a.columns.iter().any(|c| c.data_type.is_some()) {
                return Err(Error::unsupported("column definition lists"));
            }
            (Some(ident(a.name)), a.columns.into_iter().map(|c| ident(c.name)).collect())
        }
    };
    Ok(TableRef::Function { name, args, alias, columns, ordinality })
}

/// `UNNEST(array) [WITH ORDINALITY] [AS alias[(columns)]]` in FROM.
pub(super) fn unnest(arrays: Vec<sql::Expr>, alias: Option<sql::TableAlias>, ordinality: bool) -> Result<TableRef> {
    if arrays.is_empty() {
        return Err(Error::syntax("UNNEST needs an array"));
    }
    let args = sql::TableFunctionArgs {
        args: arrays.into_iter().map(|e| sql::FunctionArg::Unnamed(sql::FunctionArgExpr::Expr(e))).collect(),
        settings: None,
    };
    table_function(sql::ObjectName::from(vec![sql::Ident::new("unnest")]), args, alias, ordinality)
}

/// A type named by a `pg_catalog` name (`int4`, `pg_catalog.text`, `regclass`, ...), or None.
pub(super) fn catalog_type(name: &str) -> Option<DataType> {
    Some(match name {
        "bool" => DataType::Bool,
        "int2" => DataType::Int2,
        "int4" => DataType::Int4,
        "int8" | "oid" => DataType::Int8,
        "float4" => DataType::Float4,
        "float8" => DataType::Float8,
        "numeric" => DataType::Numeric { precision: None, scale: None },
        "text" | "name" | "char" => DataType::Text,
        "varchar" => DataType::Varchar(None),
        "bytea" => DataType::Bytea,
        "date" => DataType::Date,
        "time" => DataType::Time,
        "timestamp" => DataType::Timestamp,
        "timestamptz" => DataType::TimestampTz,
        "interval" => DataType::Interval,
        "uuid" => DataType::Uuid,
        "json" => DataType::Json,
        "jsonb" => DataType::Jsonb,
        "regclass" => DataType::Reg(RegKind::Class),
        "regtype" => DataType::Reg(RegKind::Type),
        "regnamespace" => DataType::Reg(RegKind::Namespace),
        "regproc" | "regprocedure" => DataType::Reg(RegKind::Proc),
        "regrole" => DataType::Reg(RegKind::Role),
        _ => return None,
    })
}

/// An array type (`int[]`): its values are the text form of arrays (see `eval::array`),
/// typed by their element. Elements without an array type of their own are text.
pub(super) fn array_type(element: Option<Box<sql::DataType>>) -> Result<DataType> {
    let Some(inner) = element else { return Ok(DataType::Array(25)) };
    if matches!(&*inner, sql::DataType::Custom(name, m) if m.is_empty() && name.to_string().eq_ignore_ascii_case("oid"))
    {
        return Ok(DataType::Array(crate::types::OID_OID));
    }
    let elem = super::data_type(*inner)?;
    if matches!(elem, DataType::Array(_)) {
        return Err(Error::unsupported("multi-dimensional array types"));
    }
    Ok(DataType::Array(match DataType::from_oid(elem.oid()) {
        Some(_) if crate::system::defs::sys_type(elem.oid()).is_some_and(|t| t.array != 0) => elem.oid(),
        _ => 25,
    }))
}

/// Rejects column types Bulwark can cast to but not store.
pub(super) fn storable(t: &DataType) -> Result<()> {
    match t {
        DataType::Reg(kind) => Err(Error::unsupported(format!("columns of type {}", kind.name()))),
        _ => Ok(()),
    }
}

/// Whether `word` is one of PostgreSQL's fully reserved keywords (quote_ident quotes them).
pub(crate) fn is_reserved_keyword(word: &str) -> bool {
    super::RESERVED_KEYWORDS.binary_search(&word).is_ok()
}
