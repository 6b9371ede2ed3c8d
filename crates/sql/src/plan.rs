//! Planning: a query's syntax tree becomes a tree of operators.
//!
//! ```text
//!   FROM (scans, joins, subqueries, CTEs) ─► WHERE ─► GROUP BY / aggregates ─► HAVING
//!     ─► projection (+ hidden ORDER BY columns) ─► DISTINCT ─► ORDER BY ─► LIMIT/OFFSET
//! ```
//!
//! # Scans
//!
//! A scan whose WHERE clause fixes every primary-key column to a constant or parameter
//! becomes a primary-key lookup; one that fixes the leading columns of a secondary index
//! becomes an index lookup; one that bounds the leading primary-key column (or an index's
//! leading column) with `<`, `<=`, `>`, `>=` or BETWEEN scans that key range; everything
//! else is a sequential scan of the table's key range. The scan's filter checks the whole
//! WHERE clause again on every row it finds, so a lookup only has to find a superset.
//!
//! # Joins
//!
//! A join whose ON condition has conjuncts `left expression = right expression` is a hash
//! join on them (the rest of the condition is checked on each matching pair); any other
//! join (CROSS without such WHERE equalities, inequalities only) is a nested loop. The hash table
//! is built from the input with the smaller estimated row count.
//!
//! # Estimates
//!
//! [`estimate_rows`] guesses each node's output from the statistics ANALYZE stored for the
//! tables (`catalog::TableStats`: rows, distinct values and NULLs per column), or without
//! them from PostgreSQL's defaults: equality on a column keeps rows / distinct values, a
//! unique lookup one row, a one-sided range a third, a two-sided range 0.5 %.
//!
//! WHERE equalities between the items of a comma-separated FROM list make hash joins of
//! the cross joins they connect (the WHERE clause still applies in full above them).
//!
//! Left out: join reordering, merge joins, index-only scans, histograms and most common
//! values, pushing other WHERE conditions below joins.

use crate::ast::{self, Cte, Expr, JoinKind, Locking, Query, Select, SelectItem, SetExpr, SetOperator, TableRef};
use crate::bind::{has_aggregate, is_aggregate, BExpr, Binder, Scope, ScopeColumn, SubPlanner};
use crate::catalog::{self, Table};
use crate::error::{codes, Error, Result};
use crate::types::DataType;
use txn::Txn;

/// An aggregate computed by [`Plan::Aggregate`].
#[derive(Debug, Clone)]
pub struct Agg {
    /// count, sum, avg, min, max, bool_and, bool_or, string_agg, array_agg.
    pub func: String,
    /// The argument (None for count(*)).
    pub arg: Option<BExpr>,
    /// The second argument (string_agg's separator).
    pub extra: Option<BExpr>,
    /// DISTINCT.
    pub distinct: bool,
    /// `agg(x ORDER BY ...)`: (key, DESC, NULLS FIRST), over the input row.
    pub order_by: Vec<(BExpr, bool, bool)>,
}

/// A window function call computed by [`Plan::Window`].
#[derive(Debug, Clone)]
pub struct WindowCall {
    /// row_number, rank, dense_rank, percent_rank, cume_dist, ntile, lag, lead,
    /// first_value, last_value, nth_value, or an aggregate.
    pub func: String,
    /// The arguments, over the input row (none for count(*)).
    pub args: Vec<BExpr>,
    /// PARTITION BY, over the input row.
    pub partition_by: Vec<BExpr>,
    /// ORDER BY: (key, DESC, NULLS FIRST), over the input row.
    pub order_by: Vec<(BExpr, bool, bool)>,
    /// The frame (PostgreSQL's default filled in).
    pub frame: ast::WindowFrame,
}

/// The label of the columns a WindowAgg adds for the window calls it computes (reachable
/// only through the planner's rewrite of those calls).
const WINDOW_LABEL: &str = "\u{0}window";

/// The element type oid of an array of `t`: its own where it has an array type, else text.
fn array_element(t: Option<&DataType>) -> u32 {
    match t {
        Some(t) if crate::system::defs::sys_type(t.oid()).is_some_and(|s| s.array != 0) => t.oid(),
        _ => 25,
    }
}

/// The name of the subquery [`group_under_windows`] makes, and the prefix of its columns.
const GROUPED_LABEL: &str = "\u{0}grouped";

/// `SELECT g, count(*), rank() OVER (ORDER BY count(*)) FROM t GROUP BY g HAVING ...` as
/// `SELECT g, a0, rank() OVER (ORDER BY a0) FROM (SELECT g AS g0, count(*) AS a0 FROM t
/// WHERE ... GROUP BY g HAVING ...)`: the grouping (and its HAVING) runs first, and the
/// windows, the output list, DISTINCT and ORDER BY run over its rows, as PostgreSQL
/// evaluates windows after grouping. Each output keeps the name it would have had.
fn group_under_windows(s: &Select, q: &Query) -> Result<(Select, Query)> {
    // GROUP BY 2 and GROUP BY an output name mean that output's expression.
    let outputs: Vec<(&Expr, Option<&String>)> = s
        .items
        .iter()
        .filter_map(|i| match i {
            SelectItem::Expr { expr, alias } => Some((expr, alias.as_ref())),
            _ => None,
        })
        .collect();
    let mut groups = Vec::with_capacity(s.group_by.len());
    for g in &s.group_by {
        let resolved = match g {
            Expr::Literal(crate::types::Value::Int4(n)) => {
                outputs.get((*n as usize).wrapping_sub(1)).map(|(e, _)| (*e).clone()).ok_or_else(|| {
                    Error::new(codes::INVALID_COLUMN_REFERENCE, format!("GROUP BY position {n} is not in select list"))
                })?
            }
            Expr::Column { table: None, name } => {
                outputs.iter().find(|(_, a)| a.is_some_and(|a| a == name)).map_or(g.clone(), |(e, _)| (*e).clone())
            }
            other => other.clone(),
        };
        groups.push(resolved);
    }
    // The aggregate calls of the output list, ORDER BY and the windows.
    let mut aggs: Vec<Expr> = Vec::new();
    let mut collect = |e: &Expr| {
        crate::bind::visit(e, &mut |x| {
            if matches!(x, Expr::Function { name, .. } if is_aggregate(name)) && !aggs.contains(x) {
                aggs.push(x.clone());
            }
        })
    };
    for (e, _) in &outputs {
        collect(e);
    }
    for o in &q.order_by {
        collect(&o.expr);
    }
    let same = |a: &Expr, b: &Expr| match (a, b) {
        (Expr::Column { table: ta, name: na }, Expr::Column { table: tb, name: nb }) => {
            na == nb && (ta.is_none() || tb.is_none() || ta == tb)
        }
        _ => a == b,
    };
    let column = |name: String| Expr::Column { table: Some(GROUPED_LABEL.into()), name };
    let map = |e: &Expr| -> Expr {
        let mut e = e.clone();
        crate::bind::visit_mut(&mut e, &mut |x| {
            if let Some(i) = aggs.iter().position(|a| a == x) {
                *x = column(format!("a{i}"));
            } else if let Some(i) = groups.iter().position(|g| same(g, x)) {
                *x = column(format!("g{i}"));
            }
        });
        e
    };
    let mut inner_items: Vec<SelectItem> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| SelectItem::Expr { expr: g.clone(), alias: Some(format!("g{i}")) })
        .collect();
    inner_items.extend(
        aggs.iter().enumerate().map(|(i, a)| SelectItem::Expr { expr: a.clone(), alias: Some(format!("a{i}")) }),
    );
    let inner = Query {
        with: vec![],
        body: SetExpr::Select(Box::new(Select {
            distinct: false,
            distinct_on: vec![],
            items: inner_items,
            from: s.from.clone(),
            filter: s.filter.clone(),
            group_by: s.group_by.clone(),
            having: s.having.clone(),
        })),
        order_by: vec![],
        limit: None,
        offset: None,
        locking: None,
    };
    // What is left of FROM's columns after the mapping is neither grouped nor aggregated.
    let ungrouped = |e: &Expr| -> Result<()> {
        let mut bad = None;
        crate::bind::visit(e, &mut |x| match x {
            Expr::Column { table, name } if table.as_deref() != Some(GROUPED_LABEL) && bad.is_none() => {
                bad = Some(match table {
                    Some(t) => format!("{t}.{name}"),
                    None => name.clone(),
                });
            }
            _ => {}
        });
        match bad {
            Some(c) => Err(Error::new(
                codes::GROUPING_ERROR,
                format!("column \"{c}\" must appear in the GROUP BY clause or be used in an aggregate function"),
            )),
            None => Ok(()),
        }
    };
    let mut items = Vec::with_capacity(s.items.len());
    for item in &s.items {
        match item {
            SelectItem::Expr { expr, alias } => items.push(SelectItem::Expr {
                expr: {
                    let mapped = map(expr);
                    ungrouped(&mapped)?;
                    mapped
                },
                alias: Some(alias.clone().unwrap_or_else(|| expr_name(expr))),
            }),
            _ => return Err(Error::new(codes::GROUPING_ERROR, "SELECT * is not allowed with GROUP BY")),
        }
    }
    let outer = Select {
        distinct: s.distinct,
        distinct_on: s.distinct_on.iter().map(map).collect(),
        items,
        from: vec![TableRef::Subquery { query: Box::new(inner), alias: GROUPED_LABEL.into(), columns: vec![] }],
        filter: None,
        group_by: vec![],
        having: None,
    };
    let order_by = q.order_by.iter().map(|o| crate::ast::OrderBy { expr: map(&o.expr), ..o.clone() }).collect();
    Ok((outer, Query { order_by, limit: None, offset: None, ..q.clone() }))
}

/// The label of the columns a ProjectSet adds for the set-returning calls it runs.
const SRF_LABEL: &str = "\u{0}srf";

/// Functions that return a set of rows, which in an output list multiply the row.
fn is_set_returning(name: &str) -> bool {
    matches!(
        name,
        "unnest"
            | "generate_series"
            | "generate_subscripts"
            | "json_array_elements"
            | "jsonb_array_elements"
            | "json_array_elements_text"
            | "jsonb_array_elements_text"
            | "json_object_keys"
            | "jsonb_object_keys"
    )
}

/// A sort key: a column of the input and its direction.
#[derive(Debug, Clone, Copy)]
pub struct SortKey {
    /// Column position.
    pub col: usize,
    /// DESC.
    pub desc: bool,
    /// NULLS FIRST.
    pub nulls_first: bool,
}

/// An operator tree.
#[derive(Debug, Clone)]
pub enum Plan {
    /// One empty row (SELECT without FROM).
    One,
    /// A table's rows, optionally by primary key, filtered, locked.
    Scan {
        /// The table.
        table: Box<Table>,
        /// A primary-key or index lookup from the WHERE clause's equalities.
        lookup: Option<Lookup>,
        /// Rows failing this are skipped (re-checked after locking).
        filter: Option<BExpr>,
        /// FOR UPDATE / FOR SHARE.
        lock: Option<Locking>,
        /// The conditions the lookup uses, as written (EXPLAIN's `Index Cond`).
        index_cond: Option<String>,
        /// The conditions the lookup does not use, as written (EXPLAIN's `Filter`).
        filter_text: Option<String>,
        /// The name FROM gives the table, if not its own (EXPLAIN's `Seq Scan on t a`).
        alias: Option<String>,
        /// The table's statistics from its last ANALYZE.
        stats: Option<std::sync::Arc<catalog::TableStats>>,
    },
    /// VALUES rows.
    Values(Vec<Vec<BExpr>>),
    /// A function in FROM (`generate_series`, `unnest`, ...): its rows, numbered in an
    /// extra last column WITH ORDINALITY.
    Function {
        /// Lower-case name.
        name: String,
        /// Arguments (evaluated once per run, so they may refer to enclosing rows).
        args: Vec<BExpr>,
        /// WITH ORDINALITY.
        ordinality: bool,
        /// The type of each column the function yields (without the ordinality).
        types: Vec<DataType>,
    },
    /// A common table expression's rows, by name.
    CteRef(String),
    /// WITH: materialise each CTE, then run the body.
    With(Vec<(String, Plan)>, Box<Plan>),
    /// A recursive CTE's rows: `base`, then `step` run over the rows the last round added
    /// (as CTE `name`) until it adds none; without ALL, rows already seen are not added.
    Recursive {
        /// The CTE's name, under which `step` reads the last round's rows.
        name: String,
        /// The non-recursive term.
        base: Box<Plan>,
        /// The recursive term.
        step: Box<Plan>,
        /// UNION ALL.
        all: bool,
    },
    /// WHERE / HAVING: the predicate, and for EXPLAIN the conditions it checks that the
    /// joins below do not already (as written; None if there are none).
    Filter(Box<Plan>, BExpr, Option<String>),
    /// Computes the output columns.
    Project(Box<Plan>, Vec<BExpr>),
    /// A nested-loop join; the output is left columns then right columns.
    Join {
        /// Left input.
        left: Box<Plan>,
        /// Right input.
        right: Box<Plan>,
        /// Join kind.
        kind: JoinKind,
        /// The condition, bound against left ++ right.
        on: Option<BExpr>,
        /// The condition as written (EXPLAIN's `Join Filter`).
        cond: Option<String>,
        /// Columns of the left input.
        left_width: usize,
        /// Columns of the right input.
        right_width: usize,
    },
    /// A hash join on the equalities of its condition; the output is left columns then right
    /// columns, in the order a nested loop would give them. NULL keys never match.
    HashJoin {
        /// Left input.
        left: Box<Plan>,
        /// Right input.
        right: Box<Plan>,
        /// Join kind (not CROSS).
        kind: JoinKind,
        /// Key expressions over the left input's columns.
        left_keys: Vec<BExpr>,
        /// Key expressions over the right input's columns, one per left key.
        right_keys: Vec<BExpr>,
        /// The whole condition (equalities included), bound against left ++ right, checked
        /// on every pair whose keys are equal.
        on: BExpr,
        /// The equalities as written, for EXPLAIN's `Hash Cond`.
        cond: String,
        /// The rest of the condition as written, for EXPLAIN's `Join Filter`.
        join_filter: Option<String>,
        /// Build the hash table from the left input (the smaller estimate), else the right.
        build_left: bool,
        /// Columns of the left input.
        left_width: usize,
        /// Columns of the right input.
        right_width: usize,
    },
    /// GROUP BY: output is the group values then the aggregates.
    Aggregate {
        /// Input.
        input: Box<Plan>,
        /// Grouping expressions.
        group_by: Vec<BExpr>,
        /// The grouping expressions as written, for EXPLAIN's `Group Key`.
        group_text: Vec<String>,
        /// Aggregates.
        aggs: Vec<Agg>,
    },
    /// ORDER BY: the keys, and for EXPLAIN's `Sort Key` each as written.
    Sort(Box<Plan>, Vec<SortKey>, Vec<String>),
    /// LIMIT / OFFSET.
    Limit {
        /// Input.
        input: Box<Plan>,
        /// LIMIT.
        limit: Option<BExpr>,
        /// OFFSET.
        offset: Option<BExpr>,
    },
    /// Set-returning functions in an output list: each input row repeated as many times as
    /// the longest call returns rows, followed by each call's value (NULL once it has run
    /// out), as PostgreSQL's ProjectSet.
    ProjectSet {
        /// Input.
        input: Box<Plan>,
        /// The calls: function name, arguments over the input row, and the type of the
        /// values each yields.
        calls: Vec<(String, Vec<BExpr>, DataType)>,
    },
    /// Window functions: each input row followed by one value per call.
    Window {
        /// Input.
        input: Box<Plan>,
        /// The calls.
        calls: Vec<WindowCall>,
    },
    /// DISTINCT on the first `width` columns.
    Distinct(Box<Plan>, usize),
    /// DISTINCT ON: the first row of each set of rows equal in these columns.
    DistinctOn(Box<Plan>, Vec<usize>),
    /// Keeps the first `width` columns (drops hidden sort columns).
    Trim(Box<Plan>, usize),
    /// UNION / INTERSECT / EXCEPT.
    SetOp {
        /// The operator.
        op: SetOperator,
        /// ALL.
        all: bool,
        /// Left.
        left: Box<Plan>,
        /// Right.
        right: Box<Plan>,
    },
}

/// How a scan finds its rows without reading the whole table.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// Every primary-key column pinned: one expression per key column, all constant.
    PrimaryKey(Vec<BExpr>),
    /// The leading columns of `table.indexes[index]` pinned, one expression each.
    Index {
        /// Position in the table's index list.
        index: usize,
        /// Values of the index's first `values.len()` columns.
        values: Vec<BExpr>,
    },
    /// The leading column of the primary key (`index` None) or of `table.indexes[index]`
    /// equal to one of `values` (`column IN (...)` of constants): one lookup per distinct
    /// value.
    Keys {
        /// Position in the table's index list; None: the primary key.
        index: Option<usize>,
        /// The column's position in the table.
        column: usize,
        /// The values in the list.
        values: Vec<BExpr>,
    },
    /// A range of the leading column of the primary key (`index` None) or of
    /// `table.indexes[index]`: every key between the highest lower bound and the lowest
    /// upper bound, both included (the filter drops what an exclusive bound excludes).
    Range {
        /// Position in the table's index list; None: the primary key.
        index: Option<usize>,
        /// The column's position in the table.
        column: usize,
        /// Lower bounds (none: from the first key).
        lower: Vec<BExpr>,
        /// Upper bounds (none: to the last key).
        upper: Vec<BExpr>,
    },
}

/// Plans queries, reading the catalog through the transaction.
pub struct Planner<'t> {
    /// The transaction (for catalog reads).
    pub txn: &'t mut Txn,
    /// CTEs in scope: name and columns.
    pub ctes: Vec<(String, Scope)>,
    /// How many views deep the planning is (see `catalog::VIEW_DEPTH_MAX`).
    view_depth: usize,
}

impl SubPlanner for Planner<'_> {
    fn plan_subquery(&mut self, q: &Query, outer: Vec<Scope>) -> Result<(Plan, Scope)> {
        self.plan_query(q, outer)
    }
    fn resolve_type(&mut self, t: &DataType) -> Result<DataType> {
        crate::catalog::resolve_type(self.txn, t)
    }
}

impl<'t> Planner<'t> {
    /// A planner over `txn`.
    pub fn new(txn: &'t mut Txn) -> Planner<'t> {
        Planner { txn, ctes: Vec::new(), view_depth: 0 }
    }

    /// Binds `e` against `scope` with enclosing scopes `outer`.
    pub fn bind(&mut self, e: &Expr, scope: &Scope, outer: &[Scope]) -> Result<BExpr> {
        Binder { outer: outer.to_vec(), planner: self }.bind(e, scope)
    }

    /// Plans a query; returns the plan and its output columns.
    pub fn plan_query(&mut self, q: &Query, outer: Vec<Scope>) -> Result<(Plan, Scope)> {
        let ctes_before = self.ctes.len();
        let mut planned_ctes = Vec::new();
        for Cte { name, columns, query: cq, recursive } in &q.with {
            let what = || format!("WITH query \"{name}\"");
            let (plan, scope) = match recursive_terms(cq, name) {
                Some((base, step, all)) if *recursive => {
                    let (base, scope) = self.plan_set_expr(base, &outer, None)?;
                    let scope = rename_columns(relabel(&scope, name), columns, what)?;
                    self.ctes.push((name.clone(), scope.clone()));
                    let step = self.plan_set_expr(step, &outer, None);
                    self.ctes.pop();
                    let (step, step_scope) = step?;
                    if step_scope.columns.len() != scope.columns.len() {
                        return Err(Error::syntax("each UNION query must have the same number of columns"));
                    }
                    let plan = Plan::Recursive { name: name.clone(), base: Box::new(base), step: Box::new(step), all };
                    (plan, scope)
                }
                _ => {
                    let (plan, scope) = self.plan_query(cq, outer.clone())?;
                    (plan, rename_columns(relabel(&scope, name), columns, what)?)
                }
            };
            self.ctes.push((name.clone(), scope));
            planned_ctes.push((name.clone(), plan));
        }
        let result = self.plan_query_body(q, outer);
        self.ctes.truncate(ctes_before);
        let (plan, scope) = result?;
        if planned_ctes.is_empty() {
            Ok((plan, scope))
        } else {
            Ok((Plan::With(planned_ctes, Box::new(plan)), scope))
        }
    }

    fn plan_query_body(&mut self, q: &Query, outer: Vec<Scope>) -> Result<(Plan, Scope)> {
        match &q.body {
            SetExpr::Select(select) => self.plan_select(select, q, outer),
            body => {
                let (mut plan, scope) = self.plan_set_expr(body, &outer, q.locking)?;
                // ORDER BY over a set operation or VALUES: output names or positions.
                if !q.order_by.is_empty() {
                    let mut keys = Vec::new();
                    let mut texts = Vec::new();
                    for o in &q.order_by {
                        let col = output_position(&o.expr, &scope, &[])?
                            .ok_or_else(|| Error::unsupported("ORDER BY on an expression over a set operation"))?;
                        keys.push(sort_key(col, o));
                        texts.push(sort_text(&keys[keys.len() - 1], &scope.columns[col].name));
                    }
                    plan = Plan::Sort(Box::new(plan), keys, texts);
                }
                let plan = self.limit(plan, q, &scope, &outer)?;
                Ok((plan, scope))
            }
        }
    }

    fn limit(&mut self, plan: Plan, q: &Query, scope: &Scope, outer: &[Scope]) -> Result<Plan> {
        if q.limit.is_none() && q.offset.is_none() {
            return Ok(plan);
        }
        let empty = Scope::default();
        let limit = q.limit.as_ref().map(|e| self.bind(e, &empty, outer)).transpose()?;
        let offset = q.offset.as_ref().map(|e| self.bind(e, &empty, outer)).transpose()?;
        let _ = scope;
        Ok(Plan::Limit { input: Box::new(plan), limit, offset })
    }

    fn plan_set_expr(&mut self, body: &SetExpr, outer: &[Scope], locking: Option<Locking>) -> Result<(Plan, Scope)> {
        match body {
            SetExpr::Select(s) => {
                let q = Query {
                    with: vec![],
                    body: SetExpr::Select(s.clone()),
                    order_by: vec![],
                    limit: None,
                    offset: None,
                    locking,
                };
                self.plan_select(s, &q, outer.to_vec())
            }
            SetExpr::Query(q) => self.plan_query(q, outer.to_vec()),
            SetExpr::Values(rows) => {
                let empty = Scope::default();
                let width = rows.first().map_or(0, Vec::len);
                if rows.iter().any(|row| row.len() != width) {
                    return Err(Error::syntax("VALUES lists must all be the same length"));
                }
                // A column's rows meet in one type, as in PostgreSQL: (1), (2.5) is numeric.
                let targets: Vec<Option<DataType>> = (0..width)
                    .map(|c| unify_target(&rows.iter().map(|row| &row[c]).collect::<Vec<_>>(), &empty))
                    .collect();
                let mut bound = Vec::new();
                for row in rows {
                    let mut out = Vec::with_capacity(width);
                    for (c, e) in row.iter().enumerate() {
                        out.push(cast_to(self.bind(e, &empty, outer)?, e, &empty, targets[c].as_ref()));
                    }
                    bound.push(out);
                }
                let scope = Scope {
                    columns: (0..width)
                        .map(|c| ScopeColumn {
                            table: None,
                            name: format!("column{}", c + 1),
                            data_type: common_of(&rows.iter().map(|row| row[c].clone()).collect::<Vec<_>>(), &empty),
                            hidden: false,
                        })
                        .collect(),
                };
                Ok((Plan::Values(bound), scope))
            }
            SetExpr::SetOp { op, all, left, right } => {
                let (l, lscope) = self.plan_set_expr(left, outer, None)?;
                let (r, rscope) = self.plan_set_expr(right, outer, None)?;
                if lscope.columns.len() != rscope.columns.len() {
                    let what = match op {
                        SetOperator::Union => "UNION",
                        SetOperator::Intersect => "INTERSECT",
                        SetOperator::Except => "EXCEPT",
                    };
                    return Err(Error::syntax(format!("each {what} query must have the same number of columns")));
                }
                // Each column of the result has the sides' common type; a side of another
                // type is cast to it (SELECT 1 UNION SELECT 2.5 is numeric).
                let mut scope = lscope.clone();
                let (mut lcast, mut rcast) = (false, false);
                let mut lcols = Vec::new();
                let mut rcols = Vec::new();
                for (i, (lc, rc)) in lscope.columns.iter().zip(&rscope.columns).enumerate() {
                    let common = match (&lc.data_type, &rc.data_type) {
                        (Some(a), Some(b)) if a != b => common_type(&[a.clone(), b.clone()]),
                        _ => None,
                    };
                    let side = |t: &Option<DataType>, cast: &mut bool| match &common {
                        Some(c) if t.as_ref() != Some(c) => {
                            *cast = true;
                            BExpr::Cast(Box::new(BExpr::Col(i)), c.clone())
                        }
                        _ => BExpr::Col(i),
                    };
                    lcols.push(side(&lc.data_type, &mut lcast));
                    rcols.push(side(&rc.data_type, &mut rcast));
                    if common.is_some() {
                        scope.columns[i].data_type = common;
                    }
                }
                let l = if lcast { Plan::Project(Box::new(l), lcols) } else { l };
                let r = if rcast { Plan::Project(Box::new(r), rcols) } else { r };
                Ok((Plan::SetOp { op: *op, all: *all, left: Box::new(l), right: Box::new(r) }, scope))
            }
        }
    }

    /// Plans a FROM item.
    pub(crate) fn plan_from(
        &mut self,
        item: &TableRef,
        outer: &[Scope],
        lock: Option<Locking>,
    ) -> Result<(Plan, Scope)> {
        match item {
            TableRef::Table { name, alias, columns } => {
                let label = alias.clone().unwrap_or_else(|| name.clone());
                if let Some((_, scope)) = self.ctes.iter().rev().find(|(n, _)| n == name) {
                    let scope = rename_columns(relabel(scope, &label), columns, || format!("table \"{label}\""))?;
                    return Ok((Plan::CteRef(name.clone()), scope));
                }
                // pg_catalog is searched before the user's tables, as PostgreSQL's implicit
                // search path does; information_schema only when named.
                let (table, label) = match crate::system::table(name) {
                    Some(table) => {
                        let label = alias.clone().unwrap_or_else(|| crate::system::bare_name(name).to_string());
                        (table, label)
                    }
                    None => match catalog::get_table(self.txn, name)? {
                        Some(table) => (table, label),
                        None => match catalog::get_view(self.txn, name)? {
                            Some(view) => return self.plan_view(&view, &label, columns),
                            None => {
                                return Err(Error::new(
                                    codes::UNDEFINED_TABLE,
                                    format!("relation \"{name}\" does not exist"),
                                ))
                            }
                        },
                    },
                };
                let scope = Scope {
                    columns: table
                        .columns
                        .iter()
                        .map(|c| ScopeColumn {
                            table: Some(label.clone()),
                            name: c.name.clone(),
                            data_type: Some(c.data_type.base()),
                            hidden: false,
                        })
                        .collect(),
                };
                let scope = rename_columns(scope, columns, || format!("table \"{label}\""))?;
                let stats = catalog::get_stats(self.txn, &table)?;
                let alias = (label != table.name).then(|| label.clone());
                let plan = Plan::Scan {
                    table: Box::new(table),
                    lookup: None,
                    filter: None,
                    lock,
                    index_cond: None,
                    filter_text: None,
                    alias,
                    stats,
                };
                Ok((plan, scope))
            }
            TableRef::Subquery { query, alias, columns } => {
                let (plan, scope) = self.plan_query(query, outer.to_vec())?;
                Ok((plan, rename_columns(relabel(&scope, alias), columns, || format!("table \"{alias}\""))?))
            }
            TableRef::Function { name, args, alias, columns, ordinality } => {
                let label = alias.clone().unwrap_or_else(|| name.clone());
                let types: Vec<Option<DataType>> = args.iter().map(|a| infer_type(a, &Scope::default())).collect();
                let mut out = crate::system::table_function_columns(name, &types)?;
                let yields: Vec<DataType> = out.iter().map(|c| c.1.clone()).collect();
                // A function of one unnamed column is named by the alias, as in PostgreSQL.
                if out.len() == 1 && out[0].0 == *name && alias.is_some() {
                    out[0].0 = label.clone();
                }
                if *ordinality {
                    out.push(("ordinality".to_string(), DataType::Int8));
                }
                if columns.len() > out.len() {
                    return Err(Error::syntax(format!(
                        "table \"{label}\" has {} columns available but {} columns specified",
                        out.len(),
                        columns.len()
                    )));
                }
                for (c, alias) in out.iter_mut().zip(columns) {
                    c.0 = alias.clone();
                }
                let bound = args.iter().map(|a| self.bind(a, &Scope::default(), outer)).collect::<Result<Vec<_>>>()?;
                let scope = Scope {
                    columns: out
                        .into_iter()
                        .map(|(name, t)| ScopeColumn {
                            table: Some(label.clone()),
                            name,
                            data_type: Some(t),
                            hidden: false,
                        })
                        .collect(),
                };
                Ok((Plan::Function { name: name.clone(), args: bound, ordinality: *ordinality, types: yields }, scope))
            }
            TableRef::Join { left, right, kind, on, using, natural } => {
                let (l, ls) = self.plan_from(left, outer, lock)?;
                let (r, rs) = self.plan_from(right, outer, lock)?;
                if *natural || !using.is_empty() {
                    return using_join(l, &ls, r, &rs, *kind, using, *natural);
                }
                let scope = ls.join(&rs);
                let bound = on.as_ref().map(|e| self.bind(e, &scope, outer)).transpose()?;
                let (lw, rw) = (ls.columns.len(), rs.columns.len());
                let keys = match (on, &bound) {
                    (Some(on), Some(_)) if *kind != JoinKind::Cross => self.equi_keys(on, &scope, outer, lw)?,
                    _ => Vec::new(),
                };
                let plan = match bound {
                    Some(on_bound) if !keys.is_empty() => {
                        let cond = keys.iter().map(|k| k.text.clone()).reduce(|a, b| format!("({a} AND {b})"));
                        let join_filter = on.as_ref().and_then(|on| {
                            conjuncts_text(on, |_, c| {
                                let t = c.to_string();
                                !keys.iter().any(|k| k.text == t)
                            })
                        });
                        let build_left = estimate_rows(&l) < estimate_rows(&r);
                        Plan::HashJoin {
                            left: Box::new(l),
                            right: Box::new(r),
                            kind: *kind,
                            left_keys: keys.iter().map(|k| k.left.clone()).collect(),
                            right_keys: keys.into_iter().map(|k| k.right).collect(),
                            on: on_bound,
                            cond: cond.unwrap_or_default(),
                            join_filter,
                            build_left,
                            left_width: lw,
                            right_width: rw,
                        }
                    }
                    on_bound => Plan::Join {
                        left: Box::new(l),
                        right: Box::new(r),
                        kind: *kind,
                        on: on_bound,
                        cond: on.as_ref().map(|e| e.to_string()),
                        left_width: lw,
                        right_width: rw,
                    },
                };
                Ok((plan, scope))
            }
        }
    }

    /// The `left = right` conjuncts of a join condition that compare an expression of the
    /// left input with one of the right input: the keys of a hash join.
    fn equi_keys(&mut self, on: &Expr, scope: &Scope, outer: &[Scope], lw: usize) -> Result<Vec<EquiKey>> {
        let mut conjuncts = Vec::new();
        split_and(on, &mut conjuncts);
        let mut keys = Vec::new();
        for c in conjuncts {
            let Expr::Binary { op: ast::BinaryOp::Eq, left, right } = c else { continue };
            // Every column must be one of these inputs' (not an enclosing query's).
            let mut local = true;
            crate::bind::visit(c, &mut |x| {
                if let Expr::Column { table, name } = x {
                    local &= matches!(scope.find(table.as_deref(), name), Ok(Some(_)));
                }
            });
            if !local {
                continue;
            }
            let a = self.bind(left, scope, outer)?;
            let b = self.bind(right, scope, outer)?;
            let (sa, sb) = (side(&a, lw), side(&b, lw));
            let (l, r) = match (sa, sb) {
                (Some(Side::Left), Some(Side::Right)) => (a, b),
                (Some(Side::Right), Some(Side::Left)) => (b, a),
                _ => continue,
            };
            let r = renumber(&r, &mut |i| i - lw).expect("side() checked for subqueries");
            keys.push(EquiKey { left: l, right: r, text: c.to_string() });
        }
        Ok(keys)
    }

    /// `scan`, a scan of a whole table, made to keep the rows `filter` (bound: `pred`)
    /// keeps, by a lookup where the filter allows one.
    fn filtered_scan(
        &mut self,
        scan: Plan,
        scope: &Scope,
        filter: &Expr,
        pred: BExpr,
        outer: &[Scope],
    ) -> Result<Plan> {
        let Plan::Scan { table, lookup: None, filter: None, lock, alias, stats, .. } = scan else {
            panic!("filtered_scan of a filtered scan or another node: {scan:?}");
        };
        // As PostgreSQL, a scan's conditions name its columns unqualified.
        let shown = unqualified(filter, scope);
        let (lookup, index_cond, used) = match find_lookup(&table, scope, &shown, self, outer)? {
            Some((lookup, cond, used)) => (Some(lookup), Some(cond), used),
            None => (None, None, Vec::new()),
        };
        let filter_text = conjuncts_text(&shown, |i, _| !used.contains(&i));
        Ok(Plan::Scan { table, lookup, filter: Some(pred), lock, index_cond, filter_text, alias, stats })
    }

    /// The scan that finds the rows an UPDATE or DELETE of `table` (columns named by
    /// `scope`) writes, as EXPLAIN shows it: the same lookup the write uses.
    pub fn write_scan(
        &mut self,
        table: &Table,
        alias: Option<&str>,
        scope: &Scope,
        filter: Option<&Expr>,
    ) -> Result<Plan> {
        let stats = catalog::get_stats(self.txn, table)?;
        let scan = Plan::Scan {
            table: Box::new(table.clone()),
            lookup: None,
            filter: None,
            lock: None,
            index_cond: None,
            filter_text: None,
            alias: alias.filter(|a| *a != table.name).map(str::to_string),
            stats,
        };
        match filter {
            None => Ok(scan),
            Some(f) => {
                let pred = self.bind(f, scope, &[])?;
                self.filtered_scan(scan, scope, f, pred, &[])
            }
        }
    }

    /// A view in FROM: its stored query, planned here, its columns named as the view's.
    fn plan_view(&mut self, view: &catalog::View, label: &str, columns: &[String]) -> Result<(Plan, Scope)> {
        if self.view_depth >= catalog::VIEW_DEPTH_MAX {
            return Err(Error::new(
                codes::STATEMENT_TOO_COMPLEX,
                format!("views nest more than {} deep at \"{}\"", catalog::VIEW_DEPTH_MAX, view.name),
            ));
        }
        let Some(ast::Statement::Query(q)) = crate::parser::parse(&view.sql)?.pop() else {
            return Err(Error::new("XX001", format!("view \"{}\" has a malformed definition", view.name)));
        };
        // The view reads the catalog, not the query's CTEs, and is not correlated.
        let ctes = std::mem::take(&mut self.ctes);
        self.view_depth += 1;
        let planned = self.plan_query(&q, vec![]);
        self.view_depth -= 1;
        self.ctes = ctes;
        let (mut plan, scope) = planned?;
        let width = view.columns.len();
        if scope.columns.len() < width {
            return Err(Error::new(
                codes::OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!("view \"{}\" reads columns its tables no longer have", view.name),
            )
            .with_hint("Drop the view and create it again."));
        }
        // `SELECT *` over a table that gained columns since: the view keeps its own.
        if scope.columns.len() > width {
            plan = Plan::Project(Box::new(plan), (0..width).map(BExpr::Col).collect());
        }
        let mut scope = relabel(&scope, label);
        scope.columns.truncate(width);
        for (c, (name, _)) in scope.columns.iter_mut().zip(&view.columns) {
            c.name = name.clone();
            c.hidden = false;
        }
        let scope = rename_columns(scope, columns, || format!("table \"{label}\""))?;
        Ok((plan, scope))
    }

    /// `FROM a, b, c WHERE a.x = b.y AND ...`: each cross join of the FROM list (a left-deep
    /// chain whose left inputs cover the first columns of `scope`) that WHERE equalities
    /// connect becomes an inner hash join on them. WHERE is still applied in full above.
    /// The text of each equality used is added to `used`.
    fn hash_cross_joins(
        &mut self,
        plan: Plan,
        filter: &Expr,
        scope: &Scope,
        outer: &[Scope],
        used: &mut Vec<String>,
    ) -> Result<Plan> {
        let Plan::Join { left, right, kind: JoinKind::Cross, on: None, left_width, right_width, .. } = plan else {
            return Ok(plan);
        };
        let left = self.hash_cross_joins(*left, filter, scope, outer, used)?;
        // Only the columns of this join's inputs: a conjunct reading later FROM items is
        // left to the joins above (equi_keys skips it).
        let local = Scope { columns: scope.columns[..left_width + right_width].to_vec() };
        let keys = self.equi_keys(filter, &local, outer, left_width)?;
        if keys.is_empty() {
            let kind = JoinKind::Cross;
            return Ok(Plan::Join { left: Box::new(left), right, kind, on: None, cond: None, left_width, right_width });
        }
        used.extend(keys.iter().map(|k| k.text.clone()));
        let on = keys
            .iter()
            .map(|k| {
                let r = renumber(&k.right, &mut |i| i + left_width).expect("keys hold no subquery");
                BExpr::Binary(ast::BinaryOp::Eq, Box::new(k.left.clone()), Box::new(r))
            })
            .reduce(|a, b| BExpr::Binary(ast::BinaryOp::And, Box::new(a), Box::new(b)))
            .expect("keys is not empty");
        let cond = keys.iter().map(|k| k.text.clone()).reduce(|a, b| format!("({a} AND {b})")).unwrap_or_default();
        let build_left = estimate_rows(&left) < estimate_rows(&right);
        Ok(Plan::HashJoin {
            left: Box::new(left),
            right,
            kind: JoinKind::Inner,
            left_keys: keys.iter().map(|k| k.left.clone()).collect(),
            right_keys: keys.into_iter().map(|k| k.right).collect(),
            on,
            cond,
            join_filter: None,
            build_left,
            left_width,
            right_width,
        })
    }

    fn plan_select(&mut self, s: &Select, q: &Query, outer: Vec<Scope>) -> Result<(Plan, Scope)> {
        // FROM
        let (mut plan, from_scope) = if s.from.is_empty() {
            (Plan::One, Scope::default())
        } else {
            let mut acc: Option<(Plan, Scope)> = None;
            for item in &s.from {
                let (p, sc) = self.plan_from(item, &outer, q.locking)?;
                acc = Some(match acc {
                    None => (p, sc),
                    Some((lp, ls)) => {
                        let scope = ls.join(&sc);
                        let plan = Plan::Join {
                            left: Box::new(lp),
                            right: Box::new(p),
                            kind: JoinKind::Cross,
                            on: None,
                            cond: None,
                            left_width: ls.columns.len(),
                            right_width: sc.columns.len(),
                        };
                        (plan, scope)
                    }
                });
            }
            acc.expect("FROM has an item")
        };
        // WHERE: a single-table scan takes the filter (and a primary-key lookup if it can).
        if let Some(filter) = &s.filter {
            if has_aggregate(filter) {
                return Err(Error::new(codes::GROUPING_ERROR, "aggregate functions are not allowed in WHERE"));
            }
            let mut window = false;
            crate::bind::visit(filter, &mut |x| window |= matches!(x, Expr::Window { .. }));
            if window {
                return Err(Error::new(codes::WINDOWING_ERROR, "window functions are not allowed in WHERE"));
            }
            let pred = self.bind(filter, &from_scope, &outer)?;
            plan = match plan {
                scan @ Plan::Scan { lookup: None, filter: None, .. } => {
                    self.filtered_scan(scan, &from_scope, filter, pred, &outer)?
                }
                other => {
                    let mut used = Vec::new();
                    let joined = self.hash_cross_joins(other, filter, &from_scope, &outer, &mut used)?;
                    let text = conjuncts_text(filter, |_, c| !used.contains(&c.to_string()));
                    Plan::Filter(Box::new(joined), pred, text)
                }
            };
        }
        // Window functions: a WindowAgg over the rows WHERE keeps adds a column per call,
        // which the output list and ORDER BY then name in place of the calls.
        let mut windows: Vec<Expr> = Vec::new();
        for e in s
            .items
            .iter()
            .filter_map(|i| match i {
                SelectItem::Expr { expr, .. } => Some(expr),
                _ => None,
            })
            .chain(q.order_by.iter().map(|o| &o.expr))
        {
            crate::bind::visit(e, &mut |x| {
                if matches!(x, Expr::Window { .. }) && !windows.contains(x) {
                    windows.push(x.clone());
                }
            });
        }
        let (s_windowed, q_windowed, scope);
        let (s, q) = if windows.is_empty() {
            scope = from_scope;
            (s, q)
        } else {
            if !s.group_by.is_empty()
                || s.having.is_some()
                || s.items.iter().any(|i| matches!(i, SelectItem::Expr { expr, .. } if has_aggregate(expr)))
            {
                // Windows over grouped rows: the grouping as a subquery, the windows over it.
                let (s2, q2) = group_under_windows(s, q)?;
                return self.plan_select(&s2, &q2, outer);
            }
            let mut calls = Vec::with_capacity(windows.len());
            let mut extended = from_scope.clone();
            for (i, w) in windows.iter().enumerate() {
                calls.push(self.window_call(w, &from_scope, &outer)?);
                let data_type = infer_type(w, &from_scope);
                extended.columns.push(ScopeColumn {
                    table: Some(WINDOW_LABEL.into()),
                    name: i.to_string(),
                    data_type,
                    hidden: true,
                });
            }
            plan = Plan::Window { input: Box::new(plan), calls };
            let replace = |e: &mut Expr| {
                crate::bind::visit_mut(e, &mut |x| {
                    if let Some(i) = windows.iter().position(|w| w == x) {
                        *x = Expr::Column { table: Some(WINDOW_LABEL.into()), name: i.to_string() };
                    }
                })
            };
            let mut s2 = s.clone();
            for item in &mut s2.items {
                if let SelectItem::Expr { expr, alias } = item {
                    // The output column keeps the call's name (`row_number`, `sum`).
                    alias.get_or_insert_with(|| expr_name(expr));
                    replace(expr);
                }
            }
            let mut q2 = q.clone();
            for o in &mut q2.order_by {
                replace(&mut o.expr);
            }
            s_windowed = s2;
            q_windowed = q2;
            scope = extended;
            (&s_windowed, &q_windowed)
        };
        // Set-returning functions in the output list (`SELECT unnest(a)`): a ProjectSet
        // makes as many rows of each input row as the longest of them returns, as
        // PostgreSQL does, and the output list names its columns in place of the calls.
        let mut srfs: Vec<Expr> = Vec::new();
        for item in &s.items {
            if let SelectItem::Expr { expr, .. } = item {
                crate::bind::visit(expr, &mut |x| {
                    if matches!(x, Expr::Function { name, .. } if is_set_returning(name)) && !srfs.contains(x) {
                        srfs.push(x.clone());
                    }
                });
            }
        }
        let s_srf;
        let (s, scope) = if srfs.is_empty() {
            (s, scope)
        } else {
            let grouped = !s.group_by.is_empty()
                || s.having.is_some()
                || s.items.iter().any(|i| matches!(i, SelectItem::Expr { expr, .. } if has_aggregate(expr)));
            if grouped || !windows.is_empty() {
                return Err(Error::unsupported("set-returning functions with aggregates or window functions"));
            }
            let mut calls = Vec::with_capacity(srfs.len());
            let mut extended = scope.clone();
            for (i, f) in srfs.iter().enumerate() {
                let Expr::Function { name, args, .. } = f else { unreachable!("collected above") };
                let types: Vec<Option<DataType>> = args.iter().map(|a| infer_type(a, &scope)).collect();
                let columns = crate::system::table_function_columns(name, &types)?;
                let bound = args.iter().map(|a| self.bind(a, &scope, &outer)).collect::<Result<Vec<_>>>()?;
                calls.push((name.clone(), bound, columns.first().map_or(DataType::Text, |c| c.1.clone())));
                extended.columns.push(ScopeColumn {
                    table: Some(SRF_LABEL.into()),
                    name: i.to_string(),
                    data_type: columns.first().map(|c| c.1.clone()),
                    hidden: true,
                });
            }
            plan = Plan::ProjectSet { input: Box::new(plan), calls };
            let mut s2 = s.clone();
            for item in &mut s2.items {
                if let SelectItem::Expr { expr, alias } = item {
                    alias.get_or_insert_with(|| expr_name(expr));
                    crate::bind::visit_mut(expr, &mut |x| {
                        if let Some(i) = srfs.iter().position(|f| f == x) {
                            *x = Expr::Column { table: Some(SRF_LABEL.into()), name: i.to_string() };
                        }
                    });
                }
            }
            s_srf = s2;
            (&s_srf, extended)
        };
        // GROUP BY and aggregates.
        let aggregated = !s.group_by.is_empty()
            || s.items.iter().any(|i| matches!(i, SelectItem::Expr { expr, .. } if has_aggregate(expr)))
            || s.having.as_ref().is_some_and(has_aggregate)
            || q.order_by.iter().any(|o| has_aggregate(&o.expr));
        let mut post = PostAgg::default();
        let (plan_after_group, group_scope) = if aggregated {
            let mut group_by = Vec::new();
            // GROUP BY 1 / GROUP BY alias refer to the output list.
            let mut groups =
                s.group_by.iter().map(|g| resolve_output_ref(g, &s.items, &scope)).collect::<Result<Vec<_>>>()?;
            self.add_dependent_groups(&s.from, &scope, &mut groups)?;
            for g in groups {
                group_by.push(self.bind(&g, &scope, &outer)?);
                post.groups.push(g);
            }
            post.input_scope = scope.clone();
            let group_scope = Scope {
                columns: post
                    .groups
                    .iter()
                    .map(|g| ScopeColumn { table: None, name: expr_name(g), data_type: None, hidden: false })
                    .collect(),
            };
            // Aggregates are collected as the output list, HAVING and ORDER BY are bound.
            (Some(group_by), group_scope)
        } else {
            (None, scope.clone())
        };
        // The output list.
        let mut items: Vec<(Expr, String)> = Vec::new();
        // For the columns `*` gave: their position in the FROM scope, which binds them even
        // where two share a name (`SELECT * FROM UNNEST(a, b)`).
        let mut direct: Vec<Option<usize>> = Vec::new();
        for item in &s.items {
            match item {
                SelectItem::Wildcard => {
                    if aggregated {
                        return Err(Error::new(codes::GROUPING_ERROR, "SELECT * is not allowed with GROUP BY"));
                    }
                    for (i, c) in scope.columns.iter().enumerate().filter(|(_, c)| !c.hidden) {
                        items.push((Expr::Column { table: c.table.clone(), name: c.name.clone() }, c.name.clone()));
                        direct.push(Some(i));
                    }
                }
                SelectItem::QualifiedWildcard(t) => {
                    if !scope.has_table(t) {
                        return Err(Error::new(
                            codes::UNDEFINED_TABLE,
                            format!("missing FROM-clause entry for table \"{t}\""),
                        ));
                    }
                    for (i, c) in scope.columns.iter().enumerate().filter(|(_, c)| c.table.as_deref() == Some(t)) {
                        items.push((Expr::Column { table: c.table.clone(), name: c.name.clone() }, c.name.clone()));
                        direct.push(Some(i));
                    }
                }
                SelectItem::Expr { expr, alias } => {
                    items.push((expr.clone(), alias.clone().unwrap_or_else(|| expr_name(expr))));
                    direct.push(None);
                }
            }
        }
        let mut exprs = Vec::new();
        let mut out_scope = Scope::default();
        for ((e, name), direct) in items.iter().zip(&direct) {
            let b = match (&plan_after_group, direct) {
                (Some(_), _) => self.bind_post_agg(e, &mut post, &group_scope, &outer)?,
                (None, Some(i)) => crate::bind::as_output(e, BExpr::Col(*i)),
                (None, None) => crate::bind::as_output(e, self.bind(e, &scope, &outer)?),
            };
            let data_type = match b {
                BExpr::Col(i) if plan_after_group.is_none() => scope.columns[i].data_type.clone(),
                _ => infer_type(e, &scope).map(|t| self.resolve_type(&t)).transpose()?,
            };
            exprs.push(b);
            out_scope.columns.push(ScopeColumn { table: None, name: name.clone(), data_type, hidden: false });
        }
        let having = match (&s.having, &plan_after_group) {
            (Some(h), Some(_)) => Some(self.bind_post_agg(h, &mut post, &group_scope, &outer)?),
            (Some(h), None) => Some(self.bind(h, &scope, &outer)?),
            _ => None,
        };
        // ORDER BY: output positions, output names, output expressions, or hidden columns.
        let mut keys = Vec::new();
        let mut sort_texts = Vec::new();
        let single = scope.columns.windows(2).all(|w| w[0].table == w[1].table);
        let visible = exprs.len();
        // DISTINCT ON: output columns, or hidden ones, as ORDER BY below.
        let mut distinct_on = Vec::new();
        for e in &s.distinct_on {
            let col = match output_position(e, &out_scope, &items)? {
                Some(col) => col,
                None => {
                    let b = match &plan_after_group {
                        Some(_) => self.bind_post_agg(e, &mut post, &group_scope, &outer)?,
                        None => self.bind(e, &scope, &outer)?,
                    };
                    exprs.push(b);
                    exprs.len() - 1
                }
            };
            distinct_on.push(col);
        }
        for o in &q.order_by {
            let on = s.distinct_on.iter().position(|d| d == &o.expr).map(|i| distinct_on[i]);
            let col = match on.map_or_else(|| output_position(&o.expr, &out_scope, &items), |c| Ok(Some(c)))? {
                Some(col) => col,
                None => {
                    if s.distinct {
                        return Err(Error::new(
                            codes::INVALID_COLUMN_REFERENCE,
                            "for SELECT DISTINCT, ORDER BY expressions must appear in select list",
                        ));
                    }
                    let b = match &plan_after_group {
                        Some(_) => self.bind_post_agg(&o.expr, &mut post, &group_scope, &outer)?,
                        None => self.bind(&o.expr, &scope, &outer)?,
                    };
                    exprs.push(b);
                    exprs.len() - 1
                }
            };
            keys.push(sort_key(col, o));
            // As PostgreSQL, the expression sorted on, its columns unqualified over one table.
            let e = items.get(col).map_or(&o.expr, |(e, _)| e);
            let e = if single { unqualified(e, &scope) } else { e.clone() };
            sort_texts.push(sort_text(&keys[keys.len() - 1], &e.to_string()));
        }
        if let Some(group_by) = plan_after_group {
            // As PostgreSQL, columns of a single table are unqualified.
            let group_text = post
                .groups
                .iter()
                .map(|g| if single { unqualified(g, &scope).to_string() } else { g.to_string() })
                .collect();
            plan = Plan::Aggregate { input: Box::new(plan), group_by, group_text, aggs: post.aggs };
        }
        if let Some(h) = having {
            let text = s.having.as_ref().map(|e| e.to_string());
            plan = Plan::Filter(Box::new(plan), h, text);
        }
        let width = exprs.len();
        plan = Plan::Project(Box::new(plan), exprs);
        if s.distinct {
            plan = Plan::Distinct(Box::new(plan), visible);
        }
        // DISTINCT ON keeps the first row of each set in ORDER BY's order, so ORDER BY must
        // begin with the DISTINCT ON expressions (in any order), as PostgreSQL requires.
        let leading = keys.iter().take(distinct_on.len()).map(|k: &SortKey| k.col);
        if !distinct_on.is_empty() && leading.clone().any(|c| !distinct_on.contains(&c)) {
            return Err(Error::new(
                codes::INVALID_COLUMN_REFERENCE,
                "SELECT DISTINCT ON expressions must match initial ORDER BY expressions",
            ));
        }
        if !keys.is_empty() {
            plan = Plan::Sort(Box::new(plan), keys, sort_texts);
        }
        if !distinct_on.is_empty() {
            plan = Plan::DistinctOn(Box::new(plan), distinct_on);
        }
        plan = self.limit(plan, q, &out_scope, &outer)?;
        if width > visible {
            plan = Plan::Trim(Box::new(plan), visible);
        }
        Ok((plan, out_scope))
    }

    /// Binds a window call (`Expr::Window`) against the rows it runs over.
    fn window_call(&mut self, w: &Expr, scope: &Scope, outer: &[Scope]) -> Result<WindowCall> {
        let Expr::Window { func, partition_by, order_by, frame } = w else { unreachable!("a window call") };
        let Expr::Function { name, args, star, .. } = func.as_ref() else {
            return Err(Error::syntax("OVER follows a function call"));
        };
        let name = if name == "every" { "bool_and".to_string() } else { name.clone() };
        let arity: &[usize] = match name.as_str() {
            "row_number" | "rank" | "dense_rank" | "percent_rank" | "cume_dist" => &[0],
            "ntile" | "first_value" | "last_value" => &[1],
            "nth_value" | "string_agg" | "json_object_agg" | "jsonb_object_agg" => &[2],
            "lag" | "lead" => &[1, 2, 3],
            "count" if *star => &[0],
            n if is_aggregate(n) => &[1],
            _ => {
                return Err(Error::new(
                    codes::WRONG_OBJECT_TYPE,
                    format!("OVER specified, but {name} is not a window function nor an aggregate function"),
                ))
            }
        };
        if !arity.contains(&args.len()) {
            return Err(Error::new(
                codes::UNDEFINED_FUNCTION,
                format!("function {name} with {} arguments does not exist", args.len()),
            ));
        }
        for e in args.iter().chain(partition_by).chain(order_by.iter().map(|o| &o.expr)) {
            if has_aggregate(e) {
                return Err(Error::unsupported("aggregates inside window functions"));
            }
        }
        let bind = |p: &mut Self, e: &Expr| p.bind(e, scope, outer);
        let args = args.iter().map(|a| bind(self, a)).collect::<Result<Vec<_>>>()?;
        let partition_by = partition_by.iter().map(|e| bind(self, e)).collect::<Result<Vec<_>>>()?;
        let mut keys = Vec::with_capacity(order_by.len());
        for o in order_by {
            keys.push((bind(self, &o.expr)?, o.desc, o.nulls_first.unwrap_or(o.desc)));
        }
        // PostgreSQL's default frame: RANGE UNBOUNDED PRECEDING to CURRENT ROW, which
        // without ORDER BY (every row a peer) is the whole partition.
        let frame = frame.unwrap_or(ast::WindowFrame {
            rows: false,
            start: ast::FrameBound::UnboundedPreceding,
            end: ast::FrameBound::CurrentRow,
        });
        Ok(WindowCall { func: name, args, partition_by, order_by: keys, frame })
    }

    /// Binds an expression above GROUP BY: group expressions and aggregates become columns
    /// of the aggregate's output; any other column reference is a grouping error.
    fn bind_post_agg(&mut self, e: &Expr, post: &mut PostAgg, group_scope: &Scope, outer: &[Scope]) -> Result<BExpr> {
        if let Some(i) = post.groups.iter().position(|g| g == e) {
            return Ok(BExpr::Col(i));
        }
        match e {
            Expr::Function { name, args, distinct, star, order_by } if is_aggregate(name) => {
                let input_scope = post.input_scope.clone();
                let mut bound = Vec::new();
                for a in args {
                    if has_aggregate(a) {
                        return Err(Error::new(codes::GROUPING_ERROR, "aggregate function calls cannot be nested"));
                    }
                    bound.push(self.bind(a, &input_scope, outer)?);
                }
                let name = if name == "every" { "bool_and".to_string() } else { name.clone() };
                let expected = match name.as_str() {
                    "count" if *star => 0,
                    "string_agg" | "json_object_agg" | "jsonb_object_agg" | "percentile_cont" | "percentile_disc" => 2,
                    _ => 1,
                };
                if bound.len() != expected {
                    return Err(Error::new(
                        codes::UNDEFINED_FUNCTION,
                        format!("function {name} with {} arguments does not exist", bound.len()),
                    ));
                }
                let mut order = Vec::with_capacity(order_by.len());
                for o in order_by {
                    if has_aggregate(&o.expr) {
                        return Err(Error::new(codes::GROUPING_ERROR, "aggregate function calls cannot be nested"));
                    }
                    let key = self.bind(&o.expr, &input_scope, outer)?;
                    order.push((key, o.desc, o.nulls_first.unwrap_or(o.desc)));
                }
                let mut it = bound.into_iter();
                let agg = Agg { func: name, arg: it.next(), extra: it.next(), distinct: *distinct, order_by: order };
                post.aggs.push(agg);
                Ok(BExpr::Col(post.groups.len() + post.aggs.len() - 1))
            }
            Expr::Column { table, name } => {
                if let Some(found) = post.input_scope.find(table.as_deref(), name)? {
                    // The same column grouped under another spelling (`name` and `t.name`).
                    let same = post.groups.iter().position(|g| match g {
                        Expr::Column { table: gt, name: gn } => {
                            post.input_scope.find(gt.as_deref(), gn).ok().flatten() == Some(found)
                        }
                        _ => false,
                    });
                    if let Some(i) = same {
                        return Ok(BExpr::Col(i));
                    }
                    let shown = match table {
                        Some(t) => format!("{t}.{name}"),
                        None => name.clone(),
                    };
                    return Err(Error::new(
                        codes::GROUPING_ERROR,
                        format!(
                            "column \"{shown}\" must appear in the GROUP BY clause or be used in an aggregate function"
                        ),
                    ));
                }
                self.bind(e, group_scope, outer)
            }
            Expr::Unary { op, expr } => {
                Ok(BExpr::Unary(*op, Box::new(self.bind_post_agg(expr, post, group_scope, outer)?)))
            }
            Expr::Binary { op, left, right } => Ok(BExpr::Binary(
                *op,
                Box::new(self.bind_post_agg(left, post, group_scope, outer)?),
                Box::new(self.bind_post_agg(right, post, group_scope, outer)?),
            )),
            Expr::Function { name, args, .. } => {
                let target = match name.as_str() {
                    "coalesce" | "greatest" | "least" => {
                        unify_target(&args.iter().collect::<Vec<_>>(), &post.input_scope)
                    }
                    _ => None,
                };
                let args = args
                    .iter()
                    .map(|a| {
                        let b = self.bind_post_agg(a, post, group_scope, outer)?;
                        Ok(cast_to(b, a, &post.input_scope, target.as_ref()))
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(if name == "coalesce" { BExpr::Coalesce(args) } else { BExpr::Func(name.clone(), args) })
            }
            Expr::Cast { expr, to } => {
                Ok(BExpr::Cast(Box::new(self.bind_post_agg(expr, post, group_scope, outer)?), to.clone()))
            }
            Expr::IsNull { expr, negated } => {
                Ok(BExpr::IsNull(Box::new(self.bind_post_agg(expr, post, group_scope, outer)?), *negated))
            }
            Expr::Case { operand, whens, else_result } => {
                let results: Vec<&Expr> = whens.iter().map(|(_, t)| t).chain(else_result.as_deref()).collect();
                let target = unify_target(&results, &post.input_scope);
                let mut result = |e: &Expr| -> Result<BExpr> {
                    let b = self.bind_post_agg(e, post, group_scope, outer)?;
                    Ok(cast_to(b, e, &post.input_scope, target.as_ref()))
                };
                let whens = whens.iter().map(|(w, t)| Ok((w, result(t)?))).collect::<Result<Vec<_>>>()?;
                let else_result = else_result.as_ref().map(|e| result(e).map(Box::new)).transpose()?;
                Ok(BExpr::Case(
                    operand
                        .as_ref()
                        .map(|o| self.bind_post_agg(o, post, group_scope, outer).map(Box::new))
                        .transpose()?,
                    whens
                        .into_iter()
                        .map(|(w, t)| Ok((self.bind_post_agg(w, post, group_scope, outer)?, t)))
                        .collect::<Result<Vec<_>>>()?,
                    else_result,
                ))
            }
            // Other forms: allowed when they reference no input column directly.
            other => self.bind(other, group_scope, outer),
        }
    }
}

/// One equality of a hash join's condition.
struct EquiKey {
    /// Over the left input's columns.
    left: BExpr,
    /// Over the right input's columns.
    right: BExpr,
    /// As written (for EXPLAIN).
    text: String,
}

/// Which input of a join an expression reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Left,
    Right,
}

/// The input whose columns `e` reads, when it reads columns of exactly one input and holds
/// no subquery.
fn side(e: &BExpr, lw: usize) -> Option<Side> {
    let (mut left, mut right) = (false, false);
    renumber(e, &mut |i| {
        if i < lw {
            left = true
        } else {
            right = true
        }
        i
    })?;
    match (left, right) {
        (true, false) => Some(Side::Left),
        (false, true) => Some(Side::Right),
        _ => None,
    }
}

/// `e` with every column of the current row renumbered by `f`; None if `e` holds a
/// subquery (whose plan reads the row in ways this does not follow).
pub fn renumber(e: &BExpr, f: &mut dyn FnMut(usize) -> usize) -> Option<BExpr> {
    let b = |x: &BExpr, f: &mut dyn FnMut(usize) -> usize| renumber(x, f).map(Box::new);
    Some(match e {
        BExpr::Col(i) => BExpr::Col(f(*i)),
        BExpr::Const(_) | BExpr::Outer(..) | BExpr::Param(_) => e.clone(),
        BExpr::Subquery(..) => return None,
        BExpr::Unary(op, x) => BExpr::Unary(*op, b(x, f)?),
        BExpr::Binary(op, x, y) => BExpr::Binary(*op, b(x, f)?, b(y, f)?),
        BExpr::Func(name, args) => {
            BExpr::Func(name.clone(), args.iter().map(|a| renumber(a, f)).collect::<Option<Vec<_>>>()?)
        }
        BExpr::Coalesce(args) => BExpr::Coalesce(args.iter().map(|a| renumber(a, f)).collect::<Option<Vec<_>>>()?),
        BExpr::Cast(x, t) => BExpr::Cast(b(x, f)?, t.clone()),
        BExpr::IsNull(x, n) => BExpr::IsNull(b(x, f)?, *n),
        BExpr::IsBool(x, w, n) => BExpr::IsBool(b(x, f)?, *w, *n),
        BExpr::InList(x, list, n) => {
            BExpr::InList(b(x, f)?, list.iter().map(|a| renumber(a, f)).collect::<Option<Vec<_>>>()?, *n)
        }
        BExpr::Like(x, p, n, ci) => BExpr::Like(b(x, f)?, b(p, f)?, *n, *ci),
        BExpr::Case(operand, whens, else_result) => BExpr::Case(
            match operand {
                Some(o) => Some(b(o, f)?),
                None => None,
            },
            whens.iter().map(|(w, t)| Some((renumber(w, f)?, renumber(t, f)?))).collect::<Option<Vec<_>>>()?,
            match else_result {
                Some(x) => Some(b(x, f)?),
                None => None,
            },
        ),
        BExpr::AnyAll(op, x, a, all) => BExpr::AnyAll(*op, b(x, f)?, b(a, f)?, *all),
        BExpr::Subscript(a, i) => BExpr::Subscript(b(a, f)?, b(i, f)?),
    })
}

/// Rows assumed for a table without statistics, a function in FROM or a CTE (PostgreSQL
/// assumes 1000 rows for a set-returning function).
pub const DEFAULT_ROWS: f64 = 1000.0;
/// Distinct values assumed for a column without statistics (PostgreSQL's
/// DEFAULT_NUM_DISTINCT).
pub const DEFAULT_DISTINCT: f64 = 200.0;
/// The fraction of rows a one-sided inequality keeps (PostgreSQL's DEFAULT_INEQ_SEL).
pub const RANGE_SELECTIVITY: f64 = 1.0 / 3.0;
/// The fraction of rows a two-sided range keeps (PostgreSQL's DEFAULT_RANGE_INEQ_SEL).
pub const BETWEEN_SELECTIVITY: f64 = 0.005;
/// The fraction of rows a condition the estimator does not understand keeps.
pub const OTHER_SELECTIVITY: f64 = 1.0 / 3.0;
/// The fraction of rows `IS NULL` keeps without statistics (PostgreSQL's DEFAULT_UNK_SEL).
pub const NULL_SELECTIVITY: f64 = 0.005;

/// The estimated number of rows `plan` yields, from ANALYZE's statistics where the plan
/// reads a table that has them, else from PostgreSQL-style defaults.
pub fn estimate_rows(plan: &Plan) -> f64 {
    let rows = match plan {
        Plan::One => 1.0,
        Plan::Values(rows) => rows.len() as f64,
        Plan::Function { .. } | Plan::CteRef(_) => DEFAULT_ROWS,
        Plan::With(_, body) => estimate_rows(body),
        Plan::Scan { table, lookup, filter, stats, .. } => {
            let base = stats.as_ref().map_or(DEFAULT_ROWS, |s| s.rows as f64);
            match (lookup, filter) {
                (Some(Lookup::PrimaryKey(_)), _) => 1.0_f64.min(base),
                (Some(Lookup::Index { index, values }), _) => {
                    let ix = &table.indexes[*index];
                    if ix.unique && values.len() == ix.columns.len() {
                        1.0_f64.min(base)
                    } else {
                        ix.columns[..values.len()].iter().fold(base, |r, &c| r / distinct(plan, c).unwrap_or(1.0))
                    }
                }
                (Some(Lookup::Keys { index, column, values }), _) => {
                    let unique = match index {
                        None => table.primary_key.len() == 1,
                        Some(i) => table.indexes[*i].unique && table.indexes[*i].columns.len() == 1,
                    };
                    let per_value = if unique { 1.0 } else { base / distinct(plan, *column).unwrap_or(1.0) };
                    (values.len() as f64 * per_value).min(base)
                }
                (Some(Lookup::Range { lower, upper, .. }), _) => {
                    base * if lower.is_empty() || upper.is_empty() { RANGE_SELECTIVITY } else { BETWEEN_SELECTIVITY }
                }
                (None, Some(f)) => base * selectivity(f, plan),
                (None, None) => base,
            }
        }
        Plan::Filter(input, pred, _) => estimate_rows(input) * selectivity(pred, input),
        Plan::Project(input, _) | Plan::Trim(input, _) | Plan::Sort(input, ..) => estimate_rows(input),
        Plan::Join { left, right, kind, on, .. } => {
            let product = estimate_rows(left) * estimate_rows(right);
            let inner = on.as_ref().map_or(product, |on| product * selectivity(on, plan));
            outer_rows(inner, *kind, left, right)
        }
        Plan::HashJoin { left, right, kind, left_keys, right_keys, left_width, .. } => {
            // PostgreSQL's eqjoinsel without histograms: 1 / max(distinct of each side).
            let mut rows = estimate_rows(left) * estimate_rows(right);
            for (l, r) in left_keys.iter().zip(right_keys) {
                let dl = expr_distinct(l, left).unwrap_or(DEFAULT_DISTINCT);
                let dr = expr_distinct(r, right).unwrap_or(DEFAULT_DISTINCT);
                rows /= dl.max(dr).max(1.0);
            }
            let _ = left_width;
            outer_rows(rows, *kind, left, right)
        }
        Plan::Aggregate { input, group_by, .. } => {
            let input_rows = estimate_rows(input);
            if group_by.is_empty() {
                1.0
            } else {
                let groups = group_by.iter().fold(1.0, |g, e| g * expr_distinct(e, input).unwrap_or(DEFAULT_DISTINCT));
                groups.min(input_rows)
            }
        }
        Plan::Limit { input, limit, .. } => {
            let rows = estimate_rows(input);
            match limit {
                Some(BExpr::Const(crate::types::Value::Int4(n))) => rows.min(f64::from((*n).max(0))),
                Some(BExpr::Const(crate::types::Value::Int8(n))) => rows.min((*n).max(0) as f64),
                _ => rows,
            }
        }
        Plan::Window { input, .. } => estimate_rows(input),
        Plan::ProjectSet { input, .. } => estimate_rows(input) * 10.0,
        Plan::Recursive { base, .. } => estimate_rows(base) * 10.0,
        Plan::Distinct(input, width) => {
            let rows = estimate_rows(input);
            (0..*width).fold(1.0, |g, c| g * distinct(input, c).unwrap_or(DEFAULT_DISTINCT)).min(rows)
        }
        Plan::DistinctOn(input, cols) => {
            let rows = estimate_rows(input);
            cols.iter().fold(1.0, |g, &c| g * distinct(input, c).unwrap_or(DEFAULT_DISTINCT)).min(rows)
        }
        Plan::SetOp { op, left, right, .. } => {
            let (l, r) = (estimate_rows(left), estimate_rows(right));
            match op {
                SetOperator::Union => l + r,
                SetOperator::Intersect => l.min(r),
                SetOperator::Except => l,
            }
        }
    };
    rows.max(0.0)
}

/// An outer join yields at least every row of its preserved side(s).
fn outer_rows(inner: f64, kind: JoinKind, left: &Plan, right: &Plan) -> f64 {
    match kind {
        JoinKind::Left => inner.max(estimate_rows(left)),
        JoinKind::Right => inner.max(estimate_rows(right)),
        JoinKind::Full => inner.max(estimate_rows(left)).max(estimate_rows(right)),
        JoinKind::Inner | JoinKind::Cross => inner,
    }
}

/// The estimated number of distinct values of column `col` of `plan`'s output, when it can
/// be traced to a table column (at most the table's rows).
pub fn distinct(plan: &Plan, col: usize) -> Option<f64> {
    let d = match plan {
        Plan::Scan { table, stats, .. } => match stats.as_ref().and_then(|s| s.columns.get(col)) {
            Some(c) => (c.distinct as f64).max(1.0).min((stats.as_ref()?.rows as f64).max(1.0)),
            None => {
                let unique =
                    table.primary_key == [col] || table.indexes.iter().any(|ix| ix.unique && ix.columns == [col]);
                if unique {
                    stats.as_ref().map_or(DEFAULT_ROWS, |s| s.rows as f64)
                } else {
                    return None;
                }
            }
        },
        Plan::With(_, input)
        | Plan::Filter(input, ..)
        | Plan::Trim(input, _)
        | Plan::Sort(input, ..)
        | Plan::Limit { input, .. }
        | Plan::Distinct(input, _)
        | Plan::DistinctOn(input, _) => distinct(input, col)?,
        Plan::Project(input, exprs) => expr_distinct(exprs.get(col)?, input)?,
        Plan::Join { left, right, left_width, .. } | Plan::HashJoin { left, right, left_width, .. } => {
            if col < *left_width {
                distinct(left, col)?
            } else {
                distinct(right, col - left_width)?
            }
        }
        _ => return None,
    };
    // Not capped by the node's estimated rows: estimating those may ask for this.
    Some(d)
}

/// The distinct values of an expression over `input`'s rows: a column's, else unknown.
fn expr_distinct(e: &BExpr, input: &Plan) -> Option<f64> {
    match e {
        BExpr::Col(i) => distinct(input, *i),
        BExpr::Cast(x, _) => expr_distinct(x, input),
        _ => None,
    }
}

/// The fraction of `input`'s rows that `pred` (bound against them) keeps.
fn selectivity(pred: &BExpr, input: &Plan) -> f64 {
    use ast::BinaryOp as B;
    let is_value = |e: &BExpr| {
        !matches!(e, BExpr::Col(_)) && renumber(e, &mut |i| i).is_some() && {
            let mut cols = false;
            renumber(e, &mut |i| {
                cols = true;
                i
            });
            !cols
        }
    };
    let s = match pred {
        BExpr::Binary(B::And, a, b) => selectivity(a, input) * selectivity(b, input),
        BExpr::Binary(B::Or, a, b) => {
            let (x, y) = (selectivity(a, input), selectivity(b, input));
            x + y - x * y
        }
        BExpr::Unary(ast::UnaryOp::Not, x) => 1.0 - selectivity(x, input),
        BExpr::Binary(B::Eq, a, b) => match (a.as_ref(), b.as_ref()) {
            (BExpr::Col(i), v) | (v, BExpr::Col(i)) if is_value(v) => {
                1.0 / distinct(input, *i).unwrap_or(DEFAULT_DISTINCT)
            }
            (x, y) => {
                let d = expr_distinct(x, input).unwrap_or(DEFAULT_DISTINCT);
                1.0 / d.max(expr_distinct(y, input).unwrap_or(DEFAULT_DISTINCT))
            }
        },
        BExpr::Binary(B::NotEq, a, b) => 1.0 - selectivity(&BExpr::Binary(B::Eq, a.clone(), b.clone()), input),
        BExpr::Binary(B::Lt | B::LtEq | B::Gt | B::GtEq, ..) => RANGE_SELECTIVITY,
        BExpr::IsNull(x, negated) => {
            let s = match (x.as_ref(), input) {
                (BExpr::Col(i), Plan::Scan { stats: Some(st), .. }) if st.rows > 0 => {
                    st.columns.get(*i).map_or(NULL_SELECTIVITY, |c| c.nulls as f64 / st.rows as f64)
                }
                _ => NULL_SELECTIVITY,
            };
            if *negated {
                1.0 - s
            } else {
                s
            }
        }
        BExpr::Const(crate::types::Value::Bool(true)) => 1.0,
        BExpr::Const(crate::types::Value::Bool(false) | crate::types::Value::Null) => 0.0,
        _ => OTHER_SELECTIVITY,
    };
    s.clamp(0.0, 1.0)
}

#[derive(Default)]
struct PostAgg {
    groups: Vec<Expr>,
    aggs: Vec<Agg>,
    input_scope: Scope,
}

fn sort_key(col: usize, o: &ast::OrderBy) -> SortKey {
    SortKey { col, desc: o.desc, nulls_first: o.nulls_first.unwrap_or(o.desc) }
}

/// A sort key as EXPLAIN shows it: `expr`, then DESC and NULLS FIRST/LAST where they are
/// not the default.
fn sort_text(key: &SortKey, expr: &str) -> String {
    let nulls = match (key.desc, key.nulls_first) {
        (false, true) => " NULLS FIRST",
        (true, false) => " NULLS LAST",
        _ => "",
    };
    format!("{expr}{}{nulls}", if key.desc { " DESC" } else { "" })
}

/// A recursive CTE's terms: its query is `base UNION [ALL] step` whose step names the CTE
/// (None otherwise: then it is planned as a plain CTE).
fn recursive_terms<'q>(q: &'q Query, name: &str) -> Option<(&'q SetExpr, &'q SetExpr, bool)> {
    let SetExpr::SetOp { op: SetOperator::Union, all, left, right } = &q.body else { return None };
    if !q.order_by.is_empty() || q.limit.is_some() || q.offset.is_some() || !q.with.is_empty() {
        return None;
    }
    set_expr_names(right, name).then_some((left.as_ref(), right.as_ref(), *all))
}

/// Whether a FROM item in `body` (not nested queries' own WITH) names `name`.
fn set_expr_names(body: &SetExpr, name: &str) -> bool {
    fn from_names(t: &TableRef, name: &str) -> bool {
        match t {
            TableRef::Table { name: n, .. } => n == name,
            TableRef::Subquery { query, .. } => set_expr_names(&query.body, name),
            TableRef::Function { .. } => false,
            TableRef::Join { left, right, .. } => from_names(left, name) || from_names(right, name),
        }
    }
    match body {
        SetExpr::Select(s) => s.from.iter().any(|t| from_names(t, name)),
        SetExpr::Query(q) => set_expr_names(&q.body, name),
        SetExpr::SetOp { left, right, .. } => set_expr_names(left, name) || set_expr_names(right, name),
        SetExpr::Values(_) => false,
    }
}

/// A join USING (columns), or NATURAL (USING the column names both sides have): a hash join
/// on the equal columns, under a projection whose row is PostgreSQL's: one merged copy of
/// each USING column first (the left's value; the right's for RIGHT JOIN; the one not NULL
/// for FULL JOIN), then the other columns of the left and of the right. The inputs' own
/// copies stay in the row, hidden: reachable qualified (`a.id`), left out of `*`.
fn using_join(
    l: Plan,
    ls: &Scope,
    r: Plan,
    rs: &Scope,
    kind: JoinKind,
    using: &[String],
    natural: bool,
) -> Result<(Plan, Scope)> {
    let names: Vec<String> = if natural {
        let right: Vec<&str> = rs.columns.iter().filter(|c| !c.hidden).map(|c| c.name.as_str()).collect();
        let mut common: Vec<String> = Vec::new();
        for c in ls.columns.iter().filter(|c| !c.hidden) {
            if right.contains(&c.name.as_str()) && !common.contains(&c.name) {
                common.push(c.name.clone());
            }
        }
        common
    } else {
        using.to_vec()
    };
    let (lw, rw) = (ls.columns.len(), rs.columns.len());
    let mut pairs = Vec::with_capacity(names.len());
    for name in &names {
        let missing = |side: &str| {
            Error::new(
                codes::UNDEFINED_COLUMN,
                format!("column \"{name}\" specified in USING clause does not exist in {side} table"),
            )
        };
        let li = ls.find(None, name)?.ok_or_else(|| missing("left"))?;
        let ri = rs.find(None, name)?.ok_or_else(|| missing("right"))?;
        pairs.push((li, ri));
    }
    let qualified = |c: &ScopeColumn| match &c.table {
        Some(t) => format!("{t}.{}", c.name),
        None => c.name.clone(),
    };
    let plan = if pairs.is_empty() {
        // NATURAL with no common column: every pair of rows.
        let kind = if kind == JoinKind::Inner { JoinKind::Cross } else { kind };
        let on = (kind != JoinKind::Cross).then_some(BExpr::Const(crate::types::Value::Bool(true)));
        Plan::Join { left: Box::new(l), right: Box::new(r), kind, on, cond: None, left_width: lw, right_width: rw }
    } else {
        let conds: Vec<String> = pairs
            .iter()
            .map(|&(li, ri)| format!("{} = {}", qualified(&ls.columns[li]), qualified(&rs.columns[ri])))
            .collect();
        let on = pairs
            .iter()
            .map(|&(li, ri)| BExpr::Binary(ast::BinaryOp::Eq, Box::new(BExpr::Col(li)), Box::new(BExpr::Col(lw + ri))))
            .reduce(|a, b| BExpr::Binary(ast::BinaryOp::And, Box::new(a), Box::new(b)))
            .expect("at least one pair");
        let build_left = estimate_rows(&l) < estimate_rows(&r);
        Plan::HashJoin {
            left: Box::new(l),
            right: Box::new(r),
            kind,
            left_keys: pairs.iter().map(|&(li, _)| BExpr::Col(li)).collect(),
            right_keys: pairs.iter().map(|&(_, ri)| BExpr::Col(ri)).collect(),
            on,
            cond: conds.into_iter().reduce(|a, b| format!("({a} AND {b})")).unwrap_or_default(),
            join_filter: None,
            build_left,
            left_width: lw,
            right_width: rw,
        }
    };
    let mut exprs = Vec::with_capacity(pairs.len() + lw + rw);
    let mut scope = Scope::default();
    for (name, &(li, ri)) in names.iter().zip(&pairs) {
        let (lc, rc) = (BExpr::Col(li), BExpr::Col(lw + ri));
        exprs.push(match kind {
            JoinKind::Right => rc,
            JoinKind::Full => BExpr::Coalesce(vec![lc, rc]),
            _ => lc,
        });
        let data_type = ls.columns[li].data_type.clone().or_else(|| rs.columns[ri].data_type.clone());
        scope.columns.push(ScopeColumn { table: None, name: name.clone(), data_type, hidden: false });
    }
    for (i, c) in ls.columns.iter().enumerate() {
        exprs.push(BExpr::Col(i));
        scope.columns.push(ScopeColumn { hidden: c.hidden || pairs.iter().any(|&(li, _)| li == i), ..c.clone() });
    }
    for (i, c) in rs.columns.iter().enumerate() {
        exprs.push(BExpr::Col(lw + i));
        scope.columns.push(ScopeColumn { hidden: c.hidden || pairs.iter().any(|&(_, ri)| ri == i), ..c.clone() });
    }
    Ok((Plan::Project(Box::new(plan), exprs), scope))
}

/// Names a FROM item's first columns by its column aliases (`AS t(a, b)`); 42P10 if there
/// are more aliases than columns.
fn rename_columns(mut scope: Scope, names: &[String], what: impl Fn() -> String) -> Result<Scope> {
    if names.len() > scope.columns.len() {
        return Err(Error::new(
            codes::INVALID_COLUMN_REFERENCE,
            format!("{} has {} columns available but {} columns specified", what(), scope.columns.len(), names.len()),
        ));
    }
    for (c, name) in scope.columns.iter_mut().zip(names) {
        c.name = name.clone();
    }
    Ok(scope)
}

fn relabel(scope: &Scope, label: &str) -> Scope {
    Scope {
        columns: scope.columns.iter().map(|c| ScopeColumn { table: Some(label.to_string()), ..c.clone() }).collect(),
    }
}

/// The output column an ORDER BY item names: a position (`ORDER BY 2`), an output name
/// (`ORDER BY total`), or an expression equal to an output item.
fn output_position(e: &Expr, out: &Scope, items: &[(Expr, String)]) -> Result<Option<usize>> {
    if let Expr::Literal(crate::types::Value::Int4(n)) = e {
        let n = *n as usize;
        if n == 0 || n > out.columns.len() {
            return Err(Error::new(
                codes::INVALID_COLUMN_REFERENCE,
                format!("ORDER BY position {n} is not in select list"),
            ));
        }
        return Ok(Some(n - 1));
    }
    if let Expr::Column { table: None, name } = e {
        let matches: Vec<usize> =
            out.columns.iter().enumerate().filter(|(_, c)| &c.name == name).map(|(i, _)| i).collect();
        if matches.len() == 1 {
            return Ok(Some(matches[0]));
        }
    }
    Ok(items.iter().position(|(x, _)| x == e))
}

/// GROUP BY 1 / GROUP BY alias refer to the output list.
impl Planner<'_> {
    /// PostgreSQL's functional dependency: grouping by a table's whole primary key groups
    /// by all its columns, so they may appear ungrouped in the output. Those columns are
    /// added to the grouping (they cannot split a group the key makes).
    fn add_dependent_groups(&mut self, from: &[TableRef], scope: &Scope, groups: &mut Vec<Expr>) -> Result<()> {
        let mut tables = Vec::new();
        fn base_tables(t: &TableRef, out: &mut Vec<(String, String)>) {
            match t {
                TableRef::Table { name, alias, columns } if columns.is_empty() => {
                    out.push((alias.clone().unwrap_or_else(|| name.clone()), name.clone()));
                }
                TableRef::Join { left, right, .. } => {
                    base_tables(left, out);
                    base_tables(right, out);
                }
                _ => {}
            }
        }
        for t in from {
            base_tables(t, &mut tables);
        }
        for (label, name) in tables {
            if self.ctes.iter().any(|(c, _)| *c == name) {
                continue;
            }
            let Some(def) = catalog::get_table(self.txn, &name)? else { continue };
            if def.primary_key.is_empty() {
                continue;
            }
            let grouped = |groups: &[Expr], column: &str| {
                groups.iter().any(|g| match g {
                    Expr::Column { table: Some(t), name } => *t == label && name == column,
                    Expr::Column { table: None, name } => {
                        let mut named = scope.columns.iter().filter(|c| !c.hidden && c.name == *name);
                        name == column
                            && named.next().is_some_and(|c| c.table.as_deref() == Some(label.as_str()))
                            && named.next().is_none()
                    }
                    _ => false,
                })
            };
            if !def.primary_key.iter().all(|&p| grouped(groups, &def.columns[p].name)) {
                continue;
            }
            for c in &def.columns {
                if !grouped(groups, &c.name) {
                    groups.push(Expr::Column { table: Some(label.clone()), name: c.name.clone() });
                }
            }
        }
        Ok(())
    }
}

fn resolve_output_ref(g: &Expr, items: &[SelectItem], input: &Scope) -> Result<Expr> {
    // A bare name is an input column if there is one, else an output column's alias.
    if let Expr::Column { table: None, name } = g {
        if matches!(input.find(None, name), Ok(None)) {
            let mut found = items.iter().filter_map(|i| match i {
                SelectItem::Expr { expr, alias: Some(a) } if a == name => Some(expr),
                _ => None,
            });
            if let Some(expr) = found.next() {
                if found.any(|other| other != expr) {
                    return Err(Error::new(codes::AMBIGUOUS_COLUMN, format!("GROUP BY \"{name}\" is ambiguous")));
                }
                return Ok(expr.clone());
            }
        }
    }
    if let Expr::Literal(crate::types::Value::Int4(n)) = g {
        return match items.get((*n as usize).wrapping_sub(1)) {
            Some(SelectItem::Expr { expr, .. }) => Ok(expr.clone()),
            _ => {
                Err(Error::new(codes::INVALID_COLUMN_REFERENCE, format!("GROUP BY position {n} is not in select list")))
            }
        };
    }
    Ok(g.clone())
}

/// PostgreSQL's name for an unaliased output column.
pub fn expr_name(e: &Expr) -> String {
    match e {
        Expr::Column { name, .. } => name.clone(),
        Expr::Function { name, .. } => name.clone(),
        Expr::Window { func, .. } => expr_name(func),
        // As PostgreSQL's FigureColname: a cast keeps a name its operand has from a column,
        // a function or the like; otherwise (a literal, an operator, another cast) it is
        // named by its type.
        Expr::Cast { expr, to } => match expr.as_ref() {
            inner if !matches!(inner, Expr::Literal(_) | Expr::Cast { .. }) && expr_name(inner) != "?column?" => {
                expr_name(inner)
            }
            _ => match to {
                DataType::Int4 => "int4".into(),
                DataType::Int8 => "int8".into(),
                DataType::Int2 => "int2".into(),
                DataType::Bool => "bool".into(),
                DataType::Float8 => "float8".into(),
                DataType::Float4 => "float4".into(),
                DataType::Text => "text".into(),
                DataType::Numeric { .. } => "numeric".into(),
                DataType::Varchar(_) => "varchar".into(),
                DataType::Char(_) => "bpchar".into(),
                DataType::Uuid => "uuid".into(),
                DataType::Date => "date".into(),
                DataType::Time => "time".into(),
                DataType::Timestamp => "timestamp".into(),
                DataType::TimestampTz => "timestamptz".into(),
                DataType::Interval => "interval".into(),
                DataType::Bytea => "bytea".into(),
                DataType::Json => "json".into(),
                DataType::Jsonb => "jsonb".into(),
                _ => "?column?".into(),
            },
        },
        Expr::Case { .. } => "case".into(),
        Expr::Exists { .. } => "exists".into(),
        Expr::ArraySubquery(_) => "array".into(),
        Expr::Subquery(q) => match &q.body {
            SetExpr::Select(s) => match s.items.first() {
                Some(SelectItem::Expr { alias: Some(a), .. }) => a.clone(),
                Some(SelectItem::Expr { expr, .. }) => expr_name(expr),
                _ => "?column?".into(),
            },
            _ => "?column?".into(),
        },
        _ => "?column?".into(),
    }
}

/// A lookup from `filter`'s conjuncts that compare a column with a constant (or parameter),
/// and the text of the conjuncts it uses (EXPLAIN's `Index Cond`). In order of preference:
/// the primary key if equalities pin all of it; the index whose leading columns equalities
/// pin the most of; a range of the primary key's leading column; a range of an index's
/// leading column. The scan's filter checks every conjunct again on the rows found.
pub fn choose_lookup(
    table: &Table,
    scope: &Scope,
    filter: &Expr,
    planner: &mut Planner<'_>,
    outer: &[Scope],
) -> Result<Option<(Lookup, String)>> {
    Ok(find_lookup(table, scope, filter, planner, outer)?.map(|(lookup, text, _)| (lookup, text)))
}

/// [`choose_lookup`], with the positions of the conjuncts the lookup uses.
fn find_lookup(
    table: &Table,
    scope: &Scope,
    filter: &Expr,
    planner: &mut Planner<'_>,
    outer: &[Scope],
) -> Result<Option<(Lookup, String, Vec<usize>)>> {
    let mut conjuncts = Vec::new();
    split_and(filter, &mut conjuncts);
    let mut pinned: std::collections::BTreeMap<usize, (BExpr, String, usize)> = std::collections::BTreeMap::new();
    let mut ranges: std::collections::BTreeMap<usize, RangeBounds> = std::collections::BTreeMap::new();
    let mut lists: std::collections::BTreeMap<usize, (Vec<BExpr>, String, usize)> = std::collections::BTreeMap::new();
    // A char(n) key is stored padded: the value looked up is padded too (and truncated, a
    // longer one then fails the WHERE that every row found is checked against).
    let key = |b: BExpr, pos: usize| match &scope.columns[pos].data_type {
        Some(t @ (DataType::Char(_) | DataType::Uuid)) => BExpr::Cast(Box::new(b), t.clone()),
        _ => b,
    };
    for (n, c) in conjuncts.into_iter().enumerate() {
        let (op, col, other, text) = match c {
            Expr::InList { expr, list, negated: false }
                if !list.is_empty() && list.len() <= IN_LIST_LOOKUPS_MAX && list.iter().all(constant) =>
            {
                let Some(pos) = column_of(expr, scope)? else { continue };
                let values = list
                    .iter()
                    .map(|e| Ok(key(planner.bind(e, &Scope::default(), outer)?, pos)))
                    .collect::<Result<_>>()?;
                lists.insert(pos, (values, c.to_string(), n));
                continue;
            }
            Expr::Binary { op, left, right } => match (constant(left), constant(right)) {
                (false, true) => (*op, left, right, c.to_string()),
                (true, false) => (flip(*op), right, left, c.to_string()),
                _ => continue,
            },
            Expr::Between { expr, low, high, negated: false } if constant(low) && constant(high) => {
                let Some(pos) = column_of(expr, scope)? else { continue };
                let r = ranges.entry(pos).or_default();
                r.lower.push(planner.bind(low, &Scope::default(), outer)?);
                r.upper.push(planner.bind(high, &Scope::default(), outer)?);
                r.text.push(format!("({expr} >= {low})"));
                r.text.push(format!("({expr} <= {high})"));
                r.used.push(n);
                continue;
            }
            _ => continue,
        };
        let Some(pos) = column_of(col, scope)? else { continue };
        let bound = planner.bind(other, &Scope::default(), outer)?;
        match op {
            ast::BinaryOp::Eq => {
                pinned.insert(pos, (key(bound, pos), text, n));
            }
            ast::BinaryOp::Lt | ast::BinaryOp::LtEq | ast::BinaryOp::Gt | ast::BinaryOp::GtEq => {
                let r = ranges.entry(pos).or_default();
                if matches!(op, ast::BinaryOp::Gt | ast::BinaryOp::GtEq) {
                    r.lower.push(bound);
                } else {
                    r.upper.push(bound);
                }
                r.text.push(text);
                r.used.push(n);
            }
            _ => {}
        }
    }
    let and = |texts: Vec<&String>| match texts.len() {
        1 => texts[0].clone(),
        _ => format!("({})", texts.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(" AND ")),
    };
    if !table.primary_key.is_empty() && table.primary_key.iter().all(|c| pinned.contains_key(c)) {
        let text = and(table.primary_key.iter().map(|c| &pinned[c].1).collect());
        let values = table.primary_key.iter().map(|c| pinned[c].0.clone()).collect();
        let used = table.primary_key.iter().map(|c| pinned[c].2).collect();
        return Ok(Some((Lookup::PrimaryKey(values), text, used)));
    }
    let best = table
        .indexes
        .iter()
        .enumerate()
        .map(|(i, ix)| (i, ix.columns.iter().take_while(|c| pinned.contains_key(c)).count()))
        .filter(|&(_, n)| n > 0)
        .max_by_key(|&(i, n)| (n, std::cmp::Reverse(i)));
    if let Some((index, n)) = best {
        let columns = &table.indexes[index].columns[..n];
        let text = and(columns.iter().map(|c| &pinned[c].1).collect());
        let values = columns.iter().map(|c| pinned[c].0.clone()).collect();
        let used = columns.iter().map(|c| pinned[c].2).collect();
        return Ok(Some((Lookup::Index { index, values }, text, used)));
    }
    let leading = table.primary_key.first().map(|&c| (None, c));
    let indexes = table.indexes.iter().enumerate().filter_map(|(i, ix)| Some((Some(i), *ix.columns.first()?)));
    let leading_columns: Vec<(Option<usize>, usize)> = leading.into_iter().chain(indexes).collect();
    for &(index, col) in &leading_columns {
        // Floats are left out: -0 equals 0 but encodes apart.
        if matches!(table.columns[col].data_type, DataType::Float4 | DataType::Float8) {
            continue;
        }
        if let Some((values, text, n)) = lists.remove(&col) {
            return Ok(Some((Lookup::Keys { index, column: col, values }, text, vec![n])));
        }
    }
    for (index, col) in leading_columns {
        if !range_scannable(&table.columns[col].data_type) {
            continue;
        }
        if let Some(r) = ranges.remove(&col) {
            let text = and(r.text.iter().collect());
            let lookup = Lookup::Range { index, column: col, lower: r.lower, upper: r.upper };
            return Ok(Some((lookup, text, r.used)));
        }
    }
    Ok(None)
}

/// The longest `column IN (...)` list a scan looks up value by value; a longer one reads
/// the table (or a range of it) and filters.
pub const IN_LIST_LOOKUPS_MAX: usize = 10_000;

/// The bounds the conjuncts of a WHERE clause put on one column.
#[derive(Default)]
struct RangeBounds {
    lower: Vec<BExpr>,
    upper: Vec<BExpr>,
    text: Vec<String>,
    /// Positions of the conjuncts the bounds come from.
    used: Vec<usize>,
}

/// Types whose key encoding orders values as comparison does, for any value a bound
/// converts to (floats are left out: NaN).
fn range_scannable(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Int2
            | DataType::Int4
            | DataType::Int8
            | DataType::Numeric { .. }
            | DataType::Text
            | DataType::Varchar(_)
            | DataType::Date
            | DataType::Timestamp
            | DataType::TimestampTz
    )
}

/// True if `e` is a constant or parameter that a lookup can evaluate before the scan.
fn constant(e: &Expr) -> bool {
    matches!(e, Expr::Literal(_) | Expr::Param(_) | Expr::Cast { .. } | Expr::Unary { .. }) && !references_columns(e)
}

/// The position of the column `e` names, if it is a plain column of `scope`.
fn column_of(e: &Expr, scope: &Scope) -> Result<Option<usize>> {
    match e {
        Expr::Column { table, name } => scope.find(table.as_deref(), name),
        _ => Ok(None),
    }
}

/// `b op a` as `a op' b`.
fn flip(op: ast::BinaryOp) -> ast::BinaryOp {
    use ast::BinaryOp as B;
    match op {
        B::Lt => B::Gt,
        B::LtEq => B::GtEq,
        B::Gt => B::Lt,
        B::GtEq => B::LtEq,
        other => other,
    }
}

fn references_columns(e: &Expr) -> bool {
    let mut found = false;
    crate::bind::visit(e, &mut |x| {
        if matches!(x, Expr::Column { .. } | Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. }) {
            found = true;
        }
    });
    found
}

/// `e` with the qualifiers of the columns of `scope` dropped (`a.x` becomes `x`).
fn unqualified(e: &Expr, scope: &Scope) -> Expr {
    let mut e = e.clone();
    crate::bind::visit_mut(&mut e, &mut |x| {
        if let Expr::Column { table: table @ Some(_), name } = x {
            if matches!(scope.find(table.as_deref(), name), Ok(Some(_))) {
                *table = None;
            }
        }
    });
    e
}

/// The conjuncts of `e` that `keep` (given each one's position) keeps, as text joined by
/// AND as PostgreSQL shows them; None if none is kept.
fn conjuncts_text(e: &Expr, mut keep: impl FnMut(usize, &Expr) -> bool) -> Option<String> {
    let mut conjuncts = Vec::new();
    split_and(e, &mut conjuncts);
    let texts: Vec<String> =
        conjuncts.into_iter().enumerate().filter(|(i, c)| keep(*i, c)).map(|(_, c)| c.to_string()).collect();
    match texts.len() {
        0 => None,
        1 => texts.into_iter().next(),
        _ => Some(format!("({})", texts.join(" AND "))),
    }
}

/// The conjuncts of `e` (`a AND b AND c` gives a, b, c).
pub(crate) fn split_and<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
    match e {
        Expr::Binary { op: ast::BinaryOp::And, left, right } => {
            split_and(left, out);
            split_and(right, out);
        }
        other => out.push(other),
    }
}

/// The type an expression yields, as far as it can be told before running it (for
/// RowDescription): column types, literals, casts, operators with PostgreSQL's promotion,
/// and the result types of aggregates and functions. None when it depends on values.
pub fn infer_type(e: &Expr, scope: &Scope) -> Option<DataType> {
    use crate::ast::{BinaryOp as B, UnaryOp as U};
    let numeric = DataType::Numeric { precision: None, scale: None };
    Some(match e {
        Expr::Literal(v) => crate::eval::type_of(v)?,
        Expr::Column { table, name } => {
            let i = scope.find(table.as_deref(), name).ok()??;
            scope.columns[i].data_type.clone()?
        }
        Expr::Param(_) | Expr::Default | Expr::Subquery(_) | Expr::Subscript { .. } => return None,
        Expr::ArraySubquery(_) => DataType::Array(25),
        Expr::Function { name, args, .. } if name == "array" => {
            DataType::Array(array_element(common_of(args, scope).as_ref()))
        }
        Expr::AnyAll { .. } => DataType::Bool,
        Expr::Window { func, .. } => match func.as_ref() {
            Expr::Function { name, args, .. } => match name.as_str() {
                "row_number" | "rank" | "dense_rank" | "ntile" | "count" => DataType::Int8,
                "percent_rank" | "cume_dist" => DataType::Float8,
                "lag" | "lead" | "first_value" | "last_value" | "nth_value" => infer_type(args.first()?, scope)?,
                _ => infer_type(func, scope)?,
            },
            _ => return None,
        },
        Expr::Cast { to, .. } => to.base(),
        Expr::Unary { op: U::Not, .. } => DataType::Bool,
        Expr::Unary { expr, .. } => infer_type(expr, scope)?,
        Expr::Binary { op, left, right } => match op {
            B::Eq | B::NotEq | B::Lt | B::LtEq | B::Gt | B::GtEq | B::And | B::Or => DataType::Bool,
            B::Match | B::NotMatch | B::IMatch | B::NotIMatch => DataType::Bool,
            B::Contains | B::ContainedBy | B::HasKey | B::HasAnyKey | B::HasAllKeys => DataType::Bool,
            B::JsonGetText | B::JsonPathText => DataType::Text,
            // The part of a json value is json, of a jsonb value jsonb.
            B::JsonGet | B::JsonPath => match infer_type(left, scope) {
                Some(DataType::Json) => DataType::Json,
                _ => DataType::Jsonb,
            },
            B::Concat | B::Sub if matches!(infer_type(left, scope), Some(DataType::Jsonb)) => DataType::Jsonb,
            B::Concat => DataType::Text,
            _ => {
                let (l, r) = (infer_type(left, scope), infer_type(right, scope));
                match (l, r) {
                    (Some(l), None) | (None, Some(l)) => l,
                    (Some(DataType::Text), Some(r)) => r,
                    (Some(l), Some(DataType::Text)) => l,
                    (Some(l), Some(r)) => promote(*op, l, r)?,
                    (None, None) => return None,
                }
            }
        },
        Expr::Function { name, args, .. } => {
            let arg = || args.first().and_then(|a| infer_type(a, scope));
            match name.as_str() {
                "count" => DataType::Int8,
                "sum" => crate::eval::sum_type(&arg()?),
                "avg" => crate::eval::avg_type(&arg()?),
                name if crate::eval::is_spread(name) => crate::eval::spread_type(&arg()?),
                "min" | "max" | "abs" | "ceil" | "ceiling" | "floor" | "trunc" | "round" | "sign" => arg()?,
                "percentile_disc" | "mode" => arg()?,
                "percentile_cont" => match arg()? {
                    DataType::Interval => DataType::Interval,
                    _ => DataType::Float8,
                },
                "bool_and" | "bool_or" | "every" => DataType::Bool,
                "length" | "char_length" | "character_length" | "octet_length" | "strpos" | "position" => {
                    DataType::Int4
                }
                "array_agg" => DataType::Array(array_element(arg().as_ref())),
                "to_json" | "json_build_object" | "json_build_array" | "json_agg" | "json_object_agg"
                | "json_extract_path" | "json_object_field" | "json_array_element" => DataType::Json,
                "to_jsonb"
                | "jsonb_build_object"
                | "jsonb_build_array"
                | "jsonb_agg"
                | "jsonb_object_agg"
                | "jsonb_set"
                | "jsonb_strip_nulls"
                | "jsonb_extract_path"
                | "jsonb_object_field"
                | "jsonb_array_element" => DataType::Jsonb,
                "json_strip_nulls" => DataType::Json,
                "json_typeof"
                | "jsonb_typeof"
                | "jsonb_pretty"
                | "json_extract_path_text"
                | "jsonb_extract_path_text"
                | "json_object_field_text"
                | "jsonb_object_field_text"
                | "json_array_element_text"
                | "jsonb_array_element_text" => DataType::Text,
                "json_array_length" | "jsonb_array_length" => DataType::Int4,
                "random" => DataType::Float8,
                "timezone" if args.len() == 2 => match infer_type(&args[1], scope) {
                    Some(DataType::Timestamp) => DataType::TimestampTz,
                    _ => DataType::Timestamp,
                },
                "string_to_array" => DataType::Array(25),
                "array_position" => DataType::Int4,
                "sha256" | "sha384" | "sha512" | "decode" => DataType::Bytea,
                "format" | "encode" => DataType::Text,
                "string_agg" | "lower" | "upper" | "substr" | "substring" | "btrim" | "ltrim" | "rtrim" | "replace"
                | "regexp_replace" | "concat" | "concat_ws" | "left" | "right" | "repeat" | "reverse" | "lpad"
                | "rpad" | "split_part" | "md5" | "version" | "current_database" | "current_schema"
                | "current_user" | "session_user" => DataType::Text,
                "sqrt" | "exp" | "ln" | "log" | "power" | "pow" => match arg()? {
                    DataType::Numeric { .. } => numeric,
                    _ => DataType::Float8,
                },
                "mod" => arg()?,
                "pi" | "date_part" => DataType::Float8,
                "extract" => numeric,
                "gen_random_uuid" | "uuid_generate_v4" => DataType::Uuid,
                "pg_typeof" => DataType::Text,
                "now" | "current_timestamp" | "transaction_timestamp" | "statement_timestamp" => DataType::TimestampTz,
                "localtimestamp" => DataType::Timestamp,
                "localtime" | "make_time" => DataType::Time,
                "to_char" => DataType::Text,
                "to_timestamp" => DataType::TimestampTz,
                "to_date" => DataType::Date,
                "age" | "justify_days" | "justify_hours" | "justify_interval" => DataType::Interval,
                "current_date" => DataType::Date,
                "nextval" | "currval" | "setval" => DataType::Int8,
                "coalesce" | "greatest" | "least" => match unify_target(&args.iter().collect::<Vec<_>>(), scope) {
                    Some(t) => t,
                    None => args.iter().find_map(|a| infer_type(a, scope))?,
                },
                "nullif" | "enum_first" | "enum_last" => args.iter().find_map(|a| infer_type(a, scope))?,
                other => return crate::system::function_type(other),
            }
        }
        Expr::IsNull { .. }
        | Expr::IsBool { .. }
        | Expr::InList { .. }
        | Expr::Between { .. }
        | Expr::Like { .. }
        | Expr::Exists { .. }
        | Expr::InSubquery { .. } => DataType::Bool,
        Expr::Case { whens, else_result, .. } => {
            let results: Vec<&Expr> = whens.iter().map(|(_, t)| t).chain(else_result.as_deref()).collect();
            if let Some(t) = unify_target(&results, scope) {
                return Some(t);
            }
            whens
                .iter()
                .map(|(_, t)| t)
                .chain(else_result.as_deref())
                .find_map(|t| match infer_type(t, scope) {
                    Some(DataType::Text) if matches!(t, Expr::Literal(_)) => None,
                    other => other,
                })
                .or_else(|| whens.first().and_then(|(_, t)| infer_type(t, scope)))?
        }
    })
}

/// The type PostgreSQL resolves where values of several expressions meet in one result
/// (CASE branches, COALESCE, GREATEST and LEAST arguments, VALUES rows, the sides of a
/// UNION): within the numeric types the widest (int2 < int4 < int8 < numeric < real <
/// double precision, numeric without a typmod unless all agree), within the date and time
/// types the one that holds the others, within the string types text. None when the types
/// are of different kinds (the first one stays).
pub fn common_type(types: &[DataType]) -> Option<DataType> {
    use DataType as T;
    let first = types.first()?;
    if types.iter().all(|t| t == first) {
        return Some(first.clone());
    }
    let numeric_rank = |t: &T| match t {
        T::Int2 => Some(1),
        T::Int4 => Some(2),
        T::Int8 => Some(3),
        T::Numeric { .. } => Some(4),
        T::Float4 => Some(5),
        T::Float8 => Some(6),
        _ => None,
    };
    let datetime_rank = |t: &T| match t {
        T::Date => Some(1),
        T::Timestamp => Some(2),
        T::TimestampTz => Some(3),
        _ => None,
    };
    if let Some(ranks) = types.iter().map(numeric_rank).collect::<Option<Vec<_>>>() {
        return Some(match ranks.iter().max()? {
            1 => T::Int2,
            2 => T::Int4,
            3 => T::Int8,
            4 => T::Numeric { precision: None, scale: None },
            5 => T::Float4,
            _ => T::Float8,
        });
    }
    if let Some(ranks) = types.iter().map(datetime_rank).collect::<Option<Vec<_>>>() {
        return Some(match ranks.iter().max()? {
            1 => T::Date,
            2 => T::Timestamp,
            _ => T::TimestampTz,
        });
    }
    if types.iter().all(|t| matches!(t, T::Text | T::Varchar(_) | T::Char(_))) {
        return Some(T::Text);
    }
    None
}

/// The type the results of `exprs` must be cast to so that they agree, when they do not
/// already: their [`common_type`], if every one's type is known (a NULL or a quoted
/// literal adapts to the others and does not count).
pub fn unify_target(exprs: &[&Expr], scope: &Scope) -> Option<DataType> {
    let mut types = Vec::new();
    for e in exprs {
        match e {
            Expr::Literal(crate::types::Value::Null | crate::types::Value::Text(_)) => {}
            e => types.push(infer_type(e, scope)?),
        }
    }
    if types.windows(2).all(|w| w[0] == w[1]) {
        return None;
    }
    common_type(&types)
}

/// The type the values of `exprs` share (their common type when they differ), ignoring
/// NULLs and string literals (text when there is nothing else), as ARRAY[...] takes its
/// element type; None if one is unknown or there is none.
fn common_of(exprs: &[Expr], scope: &Scope) -> Option<DataType> {
    let mut types = Vec::new();
    let mut text = false;
    for e in exprs {
        match e {
            Expr::Literal(crate::types::Value::Null) => {}
            Expr::Literal(crate::types::Value::Text(_)) => text = true,
            e => types.push(infer_type(e, scope)?),
        }
    }
    if types.is_empty() && text {
        return Some(DataType::Text);
    }
    if types.windows(2).all(|w| w[0] == w[1]) {
        return types.pop();
    }
    common_type(&types)
}

/// `b` (bound from `e`) cast to `target` when `e`'s type is known and differs from it.
pub fn cast_to(b: BExpr, e: &Expr, scope: &Scope, target: Option<&DataType>) -> BExpr {
    match target {
        Some(t)
            if !matches!(e, Expr::Literal(crate::types::Value::Null)) && infer_type(e, scope).as_ref() != Some(t) =>
        {
            BExpr::Cast(Box::new(b), t.clone())
        }
        _ => b,
    }
}

/// The result type of an arithmetic operator, as PostgreSQL promotes its operands.
fn promote(op: crate::ast::BinaryOp, l: DataType, r: DataType) -> Option<DataType> {
    use crate::ast::BinaryOp as B;
    use DataType as T;
    let rank = |t: &T| match t {
        T::Int2 => Some(1),
        T::Int4 => Some(2),
        T::Int8 => Some(3),
        T::Numeric { .. } => Some(4),
        T::Float4 => Some(5),
        T::Float8 => Some(6),
        _ => None,
    };
    Some(match (&l, &r) {
        (T::Date, T::Int2 | T::Int4 | T::Int8) if matches!(op, B::Add | B::Sub) => T::Date,
        (T::Int2 | T::Int4 | T::Int8, T::Date) if op == B::Add => T::Date,
        (T::Date, T::Date) if op == B::Sub => T::Int4,
        (T::Date, T::Interval) | (T::Interval, T::Date) => T::Timestamp,
        (T::Timestamp, T::Interval) | (T::Interval, T::Timestamp) => T::Timestamp,
        (T::TimestampTz, T::Interval) | (T::Interval, T::TimestampTz) => T::TimestampTz,
        (T::Timestamp, T::Timestamp) | (T::TimestampTz, T::TimestampTz) if op == B::Sub => T::Interval,
        (T::Interval, T::Interval) => T::Interval,
        (T::Time, T::Interval) | (T::Interval, T::Time) => T::Time,
        (T::Time, T::Time) if op == B::Sub => T::Interval,
        (T::Date, T::Time) | (T::Time, T::Date) => T::Timestamp,
        _ => {
            let (a, b) = (rank(&l)?, rank(&r)?);
            match a.max(b) {
                // real mixed with anything but real becomes double precision
                5 if a != b => T::Float8,
                4 => T::Numeric { precision: None, scale: None },
                _ if a >= b => l,
                _ => r,
            }
        }
    })
}
