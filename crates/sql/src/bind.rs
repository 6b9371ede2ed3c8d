//! Binding: names in expressions become positions in rows.
//!
//! A [`Scope`] lists the columns of the rows an operator produces, with the table (or alias)
//! each came from. Binding an [`Expr`] against a scope resolves every column reference to
//! a position, or, for a correlated subquery, to a position in an enclosing query's row
//! ([`BExpr::Outer`]). Subqueries are planned at bind time and run at evaluation time.

use crate::ast::{BinaryOp, Expr, UnaryOp};
use crate::error::{codes, Error, Result};
use crate::eval;
use crate::plan::Plan;
use crate::types::{DataType, Value};

/// One column of a scope.
#[derive(Debug, Clone, PartialEq)]
pub struct ScopeColumn {
    /// The table or alias it belongs to.
    pub table: Option<String>,
    /// Its name.
    pub name: String,
    /// Its type, when known.
    pub data_type: Option<DataType>,
    /// Reachable only qualified, and left out of `*`: a column of a USING join's input
    /// that the join's merged column stands for.
    pub hidden: bool,
}

/// The columns of the rows an operator produces.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scope {
    /// The columns, in row order.
    pub columns: Vec<ScopeColumn>,
}

impl Scope {
    /// Finds `table.name` (or `name`); Ok(None) if absent; 42702 if ambiguous.
    pub fn find(&self, table: Option<&str>, name: &str) -> Result<Option<usize>> {
        let mut found = None;
        for (i, c) in self.columns.iter().enumerate() {
            let table_ok = match table {
                None => !c.hidden,
                Some(t) => c.table.as_deref() == Some(t),
            };
            if table_ok && c.name == name {
                if found.is_some() {
                    return Err(Error::new(
                        codes::AMBIGUOUS_COLUMN,
                        format!("column reference \"{name}\" is ambiguous"),
                    ));
                }
                found = Some(i);
            }
        }
        Ok(found)
    }

    /// True if some column belongs to `table`.
    pub fn has_table(&self, table: &str) -> bool {
        self.columns.iter().any(|c| c.table.as_deref() == Some(table))
    }

    /// This scope followed by `other`.
    pub fn join(&self, other: &Scope) -> Scope {
        Scope { columns: self.columns.iter().chain(&other.columns).cloned().collect() }
    }
}

/// What a subquery expression does with its rows.
#[derive(Debug, Clone)]
pub enum SubqueryKind {
    /// A scalar: one column, at most one row (21000 otherwise); NULL if none.
    Scalar,
    /// [NOT] EXISTS.
    Exists {
        /// NOT EXISTS.
        negated: bool,
    },
    /// expr [NOT] IN (subquery).
    In {
        /// The left operand.
        expr: Box<BExpr>,
        /// NOT IN.
        negated: bool,
    },
    /// ARRAY(subquery): the column's values as an array (text form).
    Array,
}

/// A bound expression.
#[derive(Debug, Clone)]
pub enum BExpr {
    /// A constant.
    Const(Value),
    /// A column of the current row.
    Col(usize),
    /// A column of an enclosing query's row: (levels up, 1 = the nearest; position).
    Outer(usize, usize),
    /// A parameter, 1-based.
    Param(usize),
    /// A unary operator.
    Unary(UnaryOp, Box<BExpr>),
    /// A binary operator (AND/OR evaluate lazily).
    Binary(BinaryOp, Box<BExpr>, Box<BExpr>),
    /// A scalar function.
    Func(String, Vec<BExpr>),
    /// COALESCE (lazy).
    Coalesce(Vec<BExpr>),
    /// CAST.
    Cast(Box<BExpr>, DataType),
    /// IS [NOT] NULL.
    IsNull(Box<BExpr>, bool),
    /// IS [NOT] TRUE/FALSE/UNKNOWN.
    IsBool(Box<BExpr>, Option<bool>, bool),
    /// [NOT] IN (list).
    InList(Box<BExpr>, Vec<BExpr>, bool),
    /// [NOT] LIKE / ILIKE.
    Like(Box<BExpr>, Box<BExpr>, bool, bool),
    /// CASE.
    Case(Option<Box<BExpr>>, Vec<(BExpr, BExpr)>, Option<Box<BExpr>>),
    /// A subquery.
    Subquery(Box<Plan>, SubqueryKind),
    /// `expr op ANY/ALL (array)`: (op, expr, array, ALL).
    AnyAll(BinaryOp, Box<BExpr>, Box<BExpr>, bool),
    /// `array[index]`.
    Subscript(Box<BExpr>, Box<BExpr>),
}

/// The names of the aggregate functions.
pub fn is_aggregate(name: &str) -> bool {
    matches!(
        name,
        "count"
            | "sum"
            | "avg"
            | "min"
            | "max"
            | "bool_and"
            | "bool_or"
            | "string_agg"
            | "every"
            | "array_agg"
            | "json_agg"
            | "jsonb_agg"
            | "json_object_agg"
            | "jsonb_object_agg"
            | "percentile_cont"
            | "percentile_disc"
            | "mode"
    ) || crate::eval::is_spread(name)
}

/// True if `e` contains an aggregate call (outside subqueries).
pub fn has_aggregate(e: &Expr) -> bool {
    let mut found = false;
    visit(e, &mut |x| {
        if let Expr::Function { name, .. } = x {
            if is_aggregate(name) {
                found = true;
            }
        }
    });
    found
}

/// Calls `f` on `e` and every expression inside it (not descending into subqueries).
pub fn visit(e: &Expr, f: &mut dyn FnMut(&Expr)) {
    f(e);
    match e {
        Expr::Unary { expr, .. } | Expr::Cast { expr, .. } | Expr::IsNull { expr, .. } | Expr::IsBool { expr, .. } => {
            visit(expr, f)
        }
        Expr::Binary { left, right, .. } => {
            visit(left, f);
            visit(right, f);
        }
        Expr::Function { args, order_by, .. } => {
            args.iter().for_each(|a| visit(a, f));
            order_by.iter().for_each(|o| visit(&o.expr, f));
        }
        // The call's arguments, not the call: `sum(x) OVER ()` is not an aggregate.
        Expr::Window { func, partition_by, order_by, .. } => {
            if let Expr::Function { args, .. } = func.as_ref() {
                args.iter().for_each(|a| visit(a, f));
            }
            partition_by.iter().for_each(|p| visit(p, f));
            order_by.iter().for_each(|o| visit(&o.expr, f));
        }
        Expr::InList { expr, list, .. } => {
            visit(expr, f);
            list.iter().for_each(|a| visit(a, f));
        }
        Expr::Between { expr, low, high, .. } => {
            visit(expr, f);
            visit(low, f);
            visit(high, f);
        }
        Expr::Like { expr, pattern, .. } => {
            visit(expr, f);
            visit(pattern, f);
        }
        Expr::Case { operand, whens, else_result } => {
            if let Some(o) = operand {
                visit(o, f);
            }
            for (w, t) in whens {
                visit(w, f);
                visit(t, f);
            }
            if let Some(e) = else_result {
                visit(e, f);
            }
        }
        Expr::InSubquery { expr, .. } => visit(expr, f),
        Expr::AnyAll { expr, array, .. } => {
            visit(expr, f);
            visit(array, f);
        }
        Expr::Subscript { expr, index } => {
            visit(expr, f);
            visit(index, f);
        }
        Expr::Literal(_)
        | Expr::Column { .. }
        | Expr::Param(_)
        | Expr::Default
        | Expr::Subquery(_)
        | Expr::ArraySubquery(_)
        | Expr::Exists { .. } => {}
    }
}

/// Like [`visit`], with mutable access (used to rename columns in stored expressions).
pub fn visit_mut(e: &mut Expr, f: &mut dyn FnMut(&mut Expr)) {
    f(e);
    match e {
        Expr::Unary { expr, .. } | Expr::Cast { expr, .. } | Expr::IsNull { expr, .. } | Expr::IsBool { expr, .. } => {
            visit_mut(expr, f)
        }
        Expr::Binary { left, right, .. } => {
            visit_mut(left, f);
            visit_mut(right, f);
        }
        Expr::Function { args, order_by, .. } => {
            args.iter_mut().for_each(|a| visit_mut(a, f));
            order_by.iter_mut().for_each(|o| visit_mut(&mut o.expr, f));
        }
        Expr::Window { func, partition_by, order_by, .. } => {
            if let Expr::Function { args, .. } = func.as_mut() {
                args.iter_mut().for_each(|a| visit_mut(a, f));
            }
            partition_by.iter_mut().for_each(|p| visit_mut(p, f));
            order_by.iter_mut().for_each(|o| visit_mut(&mut o.expr, f));
        }
        Expr::InList { expr, list, .. } => {
            visit_mut(expr, f);
            list.iter_mut().for_each(|a| visit_mut(a, f));
        }
        Expr::Between { expr, low, high, .. } => {
            visit_mut(expr, f);
            visit_mut(low, f);
            visit_mut(high, f);
        }
        Expr::Like { expr, pattern, .. } => {
            visit_mut(expr, f);
            visit_mut(pattern, f);
        }
        Expr::Case { operand, whens, else_result } => {
            if let Some(o) = operand {
                visit_mut(o, f);
            }
            for (w, t) in whens {
                visit_mut(w, f);
                visit_mut(t, f);
            }
            if let Some(e) = else_result {
                visit_mut(e, f);
            }
        }
        Expr::InSubquery { expr, .. } => visit_mut(expr, f),
        Expr::AnyAll { expr, array, .. } => {
            visit_mut(expr, f);
            visit_mut(array, f);
        }
        Expr::Subscript { expr, index } => {
            visit_mut(expr, f);
            visit_mut(index, f);
        }
        Expr::Literal(_)
        | Expr::Column { .. }
        | Expr::Param(_)
        | Expr::Default
        | Expr::Subquery(_)
        | Expr::ArraySubquery(_)
        | Expr::Exists { .. } => {}
    }
}

/// A `char(n)` value used in an expression, as PostgreSQL converts bpchar to text: without
/// its trailing blanks, so comparisons, length() and || ignore the padding (`c = 'ab'` is
/// true for the stored 'ab  '). Output and storage keep the padding: see [`as_output`].
fn char_as_text(e: BExpr, data_type: Option<&DataType>) -> BExpr {
    match data_type {
        Some(DataType::Char(_)) => BExpr::Func("rtrim".into(), vec![e]),
        _ => e,
    }
}

/// `bound`, the binding of output item `e`, with the padding of a `char(n)` column or cast
/// kept: a bare `char(n)` item is output as stored, padded.
pub fn as_output(e: &Expr, bound: BExpr) -> BExpr {
    let bare = match e {
        Expr::Column { .. } => true,
        Expr::Cast { to, .. } => matches!(to, DataType::Char(_)),
        _ => false,
    };
    match bound {
        BExpr::Func(name, mut args) if bare && name == "rtrim" && args.len() == 1 => args.pop().expect("one argument"),
        other => other,
    }
}

/// The type of `e` if it is a column of type uuid or of an enum type: an untyped string or
/// parameter compared with it is read as that type (so 'A0EEBC99-...' equals the stored
/// 'a0eebc99-...', and 'happy' is the enum's label, ordered as the type orders them), as
/// PostgreSQL resolves an unknown-typed literal to the other operand's type.
fn uuid_column(e: &Expr, scope: &Scope) -> Option<DataType> {
    let Expr::Column { table, name } = e else { return None };
    let i = scope.find(table.as_deref(), name).ok()??;
    match &scope.columns[i].data_type {
        Some(t @ (DataType::Uuid | DataType::Enum(_))) => Some(t.clone()),
        _ => None,
    }
}

fn coerce_untyped(bound: BExpr, e: &Expr, target: Option<DataType>) -> BExpr {
    match (target, e) {
        (Some(t), Expr::Literal(Value::Text(_)) | Expr::Param(_)) => BExpr::Cast(Box::new(bound), t),
        _ => bound,
    }
}

/// Plans subqueries for the binder.
pub trait SubPlanner {
    /// Plans `q` with the given enclosing scopes (outermost first).
    fn plan_subquery(&mut self, q: &crate::ast::Query, outer: Vec<Scope>) -> Result<(Plan, Scope)>;
    /// `t` with an enum type named in the statement looked up in the catalog.
    fn resolve_type(&mut self, t: &DataType) -> Result<DataType>;
}

/// The context binding needs: the scopes of enclosing queries (nearest last) and a way to
/// plan subqueries.
pub struct Binder<'a> {
    /// Enclosing scopes, outermost first.
    pub outer: Vec<Scope>,
    /// Plans subqueries.
    pub planner: &'a mut dyn SubPlanner,
}

impl Binder<'_> {
    /// The type an untyped string or parameter compared with `e` takes: a uuid column's,
    /// or the enum type of `e` (a column, a cast, an aggregate over one), with its labels.
    fn literal_type(&mut self, e: &Expr, scope: &Scope) -> Result<Option<DataType>> {
        if let Some(t) = uuid_column(e, scope) {
            return Ok(Some(t));
        }
        match crate::plan::infer_type(e, scope) {
            Some(t @ DataType::Enum(_)) => self.planner.resolve_type(&t).map(Some),
            _ => Ok(None),
        }
    }

    /// Binds `e` against `scope`.
    pub fn bind(&mut self, e: &Expr, scope: &Scope) -> Result<BExpr> {
        Ok(match e {
            Expr::Literal(v) => BExpr::Const(v.clone()),
            // The planner replaces the window calls of a SELECT list and ORDER BY with the
            // columns a WindowAgg computes; one found anywhere else is misplaced.
            Expr::Window { .. } => {
                return Err(Error::new(codes::WINDOWING_ERROR, "window functions are not allowed here"));
            }
            Expr::Column { table, name } => {
                if let Some(i) = scope.find(table.as_deref(), name)? {
                    return Ok(char_as_text(BExpr::Col(i), scope.columns[i].data_type.as_ref()));
                }
                for (depth, outer) in self.outer.iter().rev().enumerate() {
                    if let Some(i) = outer.find(table.as_deref(), name)? {
                        return Ok(char_as_text(BExpr::Outer(depth + 1, i), outer.columns[i].data_type.as_ref()));
                    }
                }
                return Err(match table {
                    Some(t) if !scope.has_table(t) && !self.outer.iter().any(|s| s.has_table(t)) => {
                        Error::new(codes::UNDEFINED_TABLE, format!("missing FROM-clause entry for table \"{t}\""))
                    }
                    Some(t) => Error::new(codes::UNDEFINED_COLUMN, format!("column {t}.{name} does not exist")),
                    None => Error::new(codes::UNDEFINED_COLUMN, format!("column \"{name}\" does not exist")),
                });
            }
            Expr::Param(n) => BExpr::Param(*n),
            Expr::Default => return Err(Error::syntax("DEFAULT is not allowed in this context")),
            Expr::Unary { op, expr } => BExpr::Unary(*op, Box::new(self.bind(expr, scope)?)),
            Expr::Binary { op, left, right } => {
                let (mut l, mut r) = (self.bind(left, scope)?, self.bind(right, scope)?);
                if op.is_comparison() {
                    r = coerce_untyped(r, right, self.literal_type(left, scope)?);
                    l = coerce_untyped(l, left, self.literal_type(right, scope)?);
                }
                BExpr::Binary(*op, Box::new(l), Box::new(r))
            }
            Expr::Function { name, args, .. } if is_aggregate(name) => {
                return Err(Error::new(
                    codes::GROUPING_ERROR,
                    format!("aggregate functions are not allowed here ({name})"),
                ))
            }
            // pg_typeof names the argument's type, which is known before any row is read.
            Expr::Function { name, args, .. } if name == "pg_typeof" && args.len() == 1 => {
                self.bind(&args[0], scope)?;
                let t = crate::plan::infer_type(&args[0], scope);
                BExpr::Const(Value::Text(t.map_or("unknown".to_string(), |t| t.to_string())))
            }
            // The enum support functions read the type of their argument, not its value:
            // its labels become constants here.
            Expr::Function { name, args, .. }
                if matches!(name.as_str(), "enum_first" | "enum_last" | "enum_range")
                    && matches!(args.len(), 1 | 2) =>
            {
                let Some(DataType::Enum(t)) =
                    args.iter().find_map(|a| self.literal_type(a, scope).transpose()).transpose()?
                else {
                    return Err(Error::new(
                        codes::UNDEFINED_FUNCTION,
                        format!("function {name} needs an argument of an enum type"),
                    ));
                };
                let labels: Vec<Value> = t.labels.iter().map(|(l, _)| t.value(l)).collect::<Result<_>>()?;
                match (name.as_str(), args.len()) {
                    ("enum_first", 1) => BExpr::Const(labels.first().cloned().unwrap_or(Value::Null)),
                    ("enum_last", 1) => BExpr::Const(labels.last().cloned().unwrap_or(Value::Null)),
                    ("enum_range", _) => {
                        // enum_range(low, high, label...): NULL bounds are open.
                        let mut call = Vec::with_capacity(labels.len() + 2);
                        if args.len() == 1 {
                            call.extend([BExpr::Const(Value::Null), BExpr::Const(Value::Null)]);
                        } else {
                            for a in args {
                                call.push(coerce_untyped(self.bind(a, scope)?, a, Some(DataType::Enum(t.clone()))));
                            }
                        }
                        call.extend(labels.into_iter().map(BExpr::Const));
                        BExpr::Func("enum_range".into(), call)
                    }
                    _ => {
                        return Err(Error::new(
                            codes::UNDEFINED_FUNCTION,
                            format!("function {name} takes one argument"),
                        ))
                    }
                }
            }
            Expr::Function { name, args, .. } => {
                let target = match name.as_str() {
                    "coalesce" | "greatest" | "least" => {
                        crate::plan::unify_target(&args.iter().collect::<Vec<_>>(), scope)
                    }
                    _ => None,
                };
                let args = args
                    .iter()
                    .map(|a| Ok(crate::plan::cast_to(self.bind(a, scope)?, a, scope, target.as_ref())))
                    .collect::<Result<Vec<_>>>()?;
                if name == "coalesce" {
                    BExpr::Coalesce(args)
                } else {
                    BExpr::Func(name.clone(), args)
                }
            }
            Expr::Cast { expr, to } => {
                let to = self.planner.resolve_type(to)?;
                char_as_text(BExpr::Cast(Box::new(self.bind(expr, scope)?), to.clone()), Some(&to))
            }
            Expr::IsNull { expr, negated } => BExpr::IsNull(Box::new(self.bind(expr, scope)?), *negated),
            Expr::IsBool { expr, value, negated } => BExpr::IsBool(Box::new(self.bind(expr, scope)?), *value, *negated),
            Expr::InList { expr, list, negated } => {
                let target = self.literal_type(expr, scope)?;
                let mut items = Vec::with_capacity(list.len());
                for a in list {
                    items.push(coerce_untyped(self.bind(a, scope)?, a, target.clone()));
                }
                BExpr::InList(Box::new(self.bind(expr, scope)?), items, *negated)
            }
            Expr::Between { expr, low, high, negated } => {
                let x = self.bind(expr, scope)?;
                let both = BExpr::Binary(
                    BinaryOp::And,
                    Box::new(BExpr::Binary(BinaryOp::GtEq, Box::new(x.clone()), Box::new(self.bind(low, scope)?))),
                    Box::new(BExpr::Binary(BinaryOp::LtEq, Box::new(x), Box::new(self.bind(high, scope)?))),
                );
                if *negated {
                    BExpr::Unary(UnaryOp::Not, Box::new(both))
                } else {
                    both
                }
            }
            Expr::Like { expr, pattern, negated, case_insensitive } => BExpr::Like(
                Box::new(self.bind(expr, scope)?),
                Box::new(self.bind(pattern, scope)?),
                *negated,
                *case_insensitive,
            ),
            Expr::Case { operand, whens, else_result } => {
                // The branches meet in their common type (THEN 0 ELSE a_numeric is numeric).
                let results: Vec<&Expr> = whens.iter().map(|(_, t)| t).chain(else_result.as_deref()).collect();
                let target = crate::plan::unify_target(&results, scope);
                let mut result = |e: &Expr| -> Result<BExpr> {
                    Ok(crate::plan::cast_to(self.bind(e, scope)?, e, scope, target.as_ref()))
                };
                let whens = whens.iter().map(|(w, t)| Ok((w, result(t)?))).collect::<Result<Vec<_>>>()?;
                let else_result = else_result.as_ref().map(|e| result(e).map(Box::new)).transpose()?;
                BExpr::Case(
                    operand.as_ref().map(|o| self.bind(o, scope).map(Box::new)).transpose()?,
                    whens.into_iter().map(|(w, t)| Ok((self.bind(w, scope)?, t))).collect::<Result<Vec<_>>>()?,
                    else_result,
                )
            }
            Expr::Subquery(q) => {
                let (plan, sub_scope) = self.plan_sub(q, scope)?;
                if sub_scope.columns.len() != 1 {
                    return Err(Error::syntax("subquery must return only one column"));
                }
                BExpr::Subquery(Box::new(plan), SubqueryKind::Scalar)
            }
            Expr::Exists { query, negated } => {
                let (plan, _) = self.plan_sub(query, scope)?;
                BExpr::Subquery(Box::new(plan), SubqueryKind::Exists { negated: *negated })
            }
            Expr::InSubquery { expr, query, negated } => {
                let left = self.bind(expr, scope)?;
                let (plan, sub_scope) = self.plan_sub(query, scope)?;
                if sub_scope.columns.len() != 1 {
                    return Err(Error::syntax("subquery has too many columns"));
                }
                BExpr::Subquery(Box::new(plan), SubqueryKind::In { expr: Box::new(left), negated: *negated })
            }
            Expr::ArraySubquery(query) => {
                let (plan, sub_scope) = self.plan_sub(query, scope)?;
                if sub_scope.columns.len() != 1 {
                    return Err(Error::syntax("subquery must return only one column"));
                }
                BExpr::Subquery(Box::new(plan), SubqueryKind::Array)
            }
            Expr::AnyAll { expr, op, array, all } => {
                BExpr::AnyAll(*op, Box::new(self.bind(expr, scope)?), Box::new(self.bind(array, scope)?), *all)
            }
            Expr::Subscript { expr, index } => {
                BExpr::Subscript(Box::new(self.bind(expr, scope)?), Box::new(self.bind(index, scope)?))
            }
        })
    }

    fn plan_sub(&mut self, q: &crate::ast::Query, scope: &Scope) -> Result<(Plan, Scope)> {
        let mut outer = self.outer.clone();
        outer.push(scope.clone());
        self.planner.plan_subquery(q, outer)
    }
}

/// Folds a bound expression that reads no row into a constant where it can (used to find
/// primary-key lookups); None if it depends on a row or a subquery.
pub fn constant(e: &BExpr, params: &[Value]) -> Option<Value> {
    match e {
        BExpr::Const(v) => Some(v.clone()),
        BExpr::Param(n) => params.get(n.checked_sub(1)?).cloned(),
        BExpr::Cast(x, t) => eval::cast(constant(x, params)?, t, true).ok(),
        BExpr::Unary(op, x) => eval::unary(*op, constant(x, params)?).ok(),
        _ => None,
    }
}
