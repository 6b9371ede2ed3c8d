//! SQL text for expressions: used to store defaults and CHECK constraints in the catalog
//! (parsed back when the catalog is read), in EXPLAIN, and in error messages.

use crate::ast::{BinaryOp, Expr, UnaryOp};
use crate::eval::to_text;
use crate::types::Value;
use std::fmt;

fn quote_ident(name: &str) -> String {
    let plain = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl fmt::Display for BinaryOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(crate::eval::op_symbol(*self))
    }
}

fn literal(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Bool(b) => if *b { "true" } else { "false" }.into(),
        Value::Int2(_) | Value::Int4(_) | Value::Int8(_) | Value::Numeric(_) => {
            let t = to_text(v).unwrap_or_default();
            if t.starts_with('-') {
                format!("({t})")
            } else {
                t
            }
        }
        Value::Text(s) => quote_literal(s),
        other => {
            let t = crate::eval::type_of(other).map(|t| t.to_string()).unwrap_or_default();
            format!("{}::{t}", quote_literal(&to_text(other).unwrap_or_default()))
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Literal(v) => f.write_str(&literal(v)),
            Expr::Column { table: Some(t), name } => write!(f, "{}.{}", quote_ident(t), quote_ident(name)),
            Expr::Column { table: None, name } => f.write_str(&quote_ident(name)),
            Expr::Param(n) => write!(f, "${n}"),
            Expr::Default => f.write_str("DEFAULT"),
            Expr::Unary { op: UnaryOp::Not, expr } => write!(f, "(NOT {expr})"),
            Expr::Unary { op: UnaryOp::Neg, expr } => write!(f, "(- {expr})"),
            Expr::Unary { op: UnaryOp::Plus, expr } => write!(f, "(+ {expr})"),
            Expr::Binary { op, left, right } => write!(f, "({left} {op} {right})"),
            Expr::Function { name, args, distinct, star, order_by } => {
                write!(f, "{name}(")?;
                if *star {
                    f.write_str("*")?;
                }
                if *distinct {
                    f.write_str("DISTINCT ")?;
                }
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                for (i, o) in order_by.iter().enumerate() {
                    f.write_str(if i == 0 { " ORDER BY " } else { ", " })?;
                    write!(f, "{}{}", o.expr, if o.desc { " DESC" } else { "" })?;
                    match o.nulls_first {
                        Some(true) => f.write_str(" NULLS FIRST")?,
                        Some(false) => f.write_str(" NULLS LAST")?,
                        None => {}
                    }
                }
                f.write_str(")")
            }
            Expr::Cast { expr, to } => write!(f, "CAST({expr} AS {to})"),
            Expr::IsNull { expr, negated } => write!(f, "({expr} IS {}NULL)", if *negated { "NOT " } else { "" }),
            Expr::IsBool { expr, value, negated } => {
                let v = match value {
                    Some(true) => "TRUE",
                    Some(false) => "FALSE",
                    None => "UNKNOWN",
                };
                write!(f, "({expr} IS {}{v})", if *negated { "NOT " } else { "" })
            }
            Expr::InList { expr, list, negated } => {
                write!(f, "({expr} {}IN (", if *negated { "NOT " } else { "" })?;
                for (i, e) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{e}")?;
                }
                f.write_str("))")
            }
            Expr::Between { expr, low, high, negated } => {
                write!(f, "({expr} {}BETWEEN {low} AND {high})", if *negated { "NOT " } else { "" })
            }
            Expr::Like { expr, pattern, negated, case_insensitive } => write!(
                f,
                "({expr} {}{} {pattern})",
                if *negated { "NOT " } else { "" },
                if *case_insensitive { "ILIKE" } else { "LIKE" }
            ),
            Expr::Case { operand, whens, else_result } => {
                f.write_str("CASE")?;
                if let Some(o) = operand {
                    write!(f, " {o}")?;
                }
                for (w, t) in whens {
                    write!(f, " WHEN {w} THEN {t}")?;
                }
                if let Some(e) = else_result {
                    write!(f, " ELSE {e}")?;
                }
                f.write_str(" END")
            }
            Expr::Subquery(_) => f.write_str("(SubPlan)"),
            Expr::Exists { negated, .. } => write!(f, "({}EXISTS (SubPlan))", if *negated { "NOT " } else { "" }),
            Expr::InSubquery { expr, negated, .. } => {
                write!(f, "({expr} {}IN (SubPlan))", if *negated { "NOT " } else { "" })
            }
            Expr::AnyAll { expr, op, array, all } => {
                write!(f, "({expr} {op} {} ({array}))", if *all { "ALL" } else { "ANY" })
            }
            Expr::ArraySubquery(_) => f.write_str("ARRAY(SubPlan)"),
            Expr::Subscript { expr, index } => write!(f, "({expr})[{index}]"),
            Expr::Window { func, partition_by, order_by, frame } => {
                write!(f, "{func} OVER (")?;
                for (i, p) in partition_by.iter().enumerate() {
                    f.write_str(if i == 0 { "PARTITION BY " } else { ", " })?;
                    write!(f, "{p}")?;
                }
                for (i, o) in order_by.iter().enumerate() {
                    let lead = if i > 0 {
                        ", "
                    } else if partition_by.is_empty() {
                        "ORDER BY "
                    } else {
                        " ORDER BY "
                    };
                    write!(f, "{lead}{}{}", o.expr, if o.desc { " DESC" } else { "" })?;
                }
                if let Some(fr) = frame {
                    let b = |b: &crate::ast::FrameBound| match b {
                        crate::ast::FrameBound::UnboundedPreceding => "UNBOUNDED PRECEDING".to_string(),
                        crate::ast::FrameBound::Preceding(n) => format!("{n} PRECEDING"),
                        crate::ast::FrameBound::CurrentRow => "CURRENT ROW".to_string(),
                        crate::ast::FrameBound::Following(n) => format!("{n} FOLLOWING"),
                        crate::ast::FrameBound::UnboundedFollowing => "UNBOUNDED FOLLOWING".to_string(),
                    };
                    let units = if fr.rows { "ROWS" } else { "RANGE" };
                    write!(f, " {units} BETWEEN {} AND {}", b(&fr.start), b(&fr.end))?;
                }
                f.write_str(")")
            }
        }
    }
}
