//! `UPDATE t SET ... FROM items WHERE ...` and `DELETE FROM t USING items WHERE ...`:
//! writes to one table, with other tables (or subqueries, functions, joins) joined in.
//!
//! ```text
//!   candidates of t (a lookup from the conjuncts of WHERE over t alone, else every row)
//!     ─► lock each, newest version ─► run the join query for it:
//!          SELECT <SET values>, <every column of the items> FROM items WHERE <WHERE> LIMIT 1
//!          with t's row as the outer row (its columns are outer references)
//!     ─► no row: t's row is left alone; a row: update it with the SET values (or delete it),
//!        and RETURNING sees the new row of t followed by the items' columns
//! ```
//!
//! As in PostgreSQL, a row of t that several rows of the items join is written once, with
//! one of them (here: the first the join query finds). An unqualified column both t and an
//! item have is ambiguous (42702). The join query is planned once per statement and run per
//! row of t, so an item joined on its key is a lookup per row.

use super::{assign_column, table_scope, QueryResult, ResultColumn, Session};
use crate::ast::{self, Expr, SelectItem, TableRef};
use crate::bind::{BExpr, Scope};
use crate::catalog::{self, Table};
use crate::dml;
use crate::error::{codes, Error, Result};
use crate::exec::Row;
use crate::plan::{Plan, Planner};
use crate::types::Value;
use txn::{LockMode, Txn, WaitPolicy};

/// The planned parts of an UPDATE ... FROM or DELETE ... USING.
struct JoinWrite {
    table: Table,
    /// The conjuncts of WHERE over t alone, bound to t's row.
    local: Option<BExpr>,
    lookup: Option<crate::plan::Lookup>,
    /// The join query: the SET values, then the items' columns.
    join: Plan,
    assigned: Vec<usize>,
    returning: Option<Vec<BExpr>>,
    returning_columns: Option<Vec<ResultColumn>>,
}

impl Session {
    /// UPDATE ... FROM (with `assignments`) or DELETE ... USING (without).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn write_from(
        &self,
        txn: &mut Txn,
        table_name: &str,
        alias: Option<&str>,
        assignments: &[(String, Expr)],
        items: &[TableRef],
        filter: Option<&Expr>,
        returning: &[SelectItem],
        params: &[Value],
    ) -> Result<QueryResult> {
        let table = catalog::lock_table(txn, table_name, false)?;
        let w = self.plan_join_write(txn, table, alias.unwrap_or(table_name), assignments, items, filter, returning)?;
        let width = w.assigned.len();
        let candidates = self.exec(txn, params).candidates(&w.table, w.lookup.as_ref())?;
        let mut count = 0usize;
        let mut out = Vec::new();
        for (key, row) in candidates {
            let mut exec = self.exec(txn, params);
            if let Some(p) = &w.local {
                if !exec.test(p, &row)? {
                    continue;
                }
            }
            // Lock; READ COMMITTED then sees the newest version, which the join checks.
            let Some(Some(latest)) = exec.txn.lock_row(&key, LockMode::Exclusive, WaitPolicy::Wait)? else { continue };
            let old = crate::eval::decode_row(&latest)?;
            if let Some(p) = &w.local {
                if !exec.test(p, &old)? {
                    continue;
                }
            }
            exec.outer.push(old.clone());
            let joined = exec.run(&w.join);
            exec.outer.pop();
            let Some(mut joined) = joined?.into_iter().next() else { continue };
            let item_values = joined.split_off(width);
            let new = if assignments.is_empty() {
                dml::delete_row(&mut exec, &w.table, &key, &old)?;
                old
            } else {
                let mut new = old.clone();
                for (c, v) in w.assigned.iter().zip(joined) {
                    new[*c] = assign_column(v, &w.table, *c)?;
                }
                dml::update_row(&mut exec, &w.table, &key, &old, &new)?;
                new
            };
            count += 1;
            if let Some(items) = &w.returning {
                let mut both = new;
                both.extend(item_values);
                out.push(items.iter().map(|e| exec.eval(e, &both)).collect::<Result<Row>>()?);
            }
        }
        let verb = if assignments.is_empty() { "DELETE" } else { "UPDATE" };
        Ok(self.dml_result(format!("{verb} {count}"), w.returning_columns, out))
    }

    #[allow(clippy::too_many_arguments)]
    fn plan_join_write(
        &self,
        txn: &mut Txn,
        table: Table,
        label: &str,
        assignments: &[(String, Expr)],
        items: &[TableRef],
        filter: Option<&Expr>,
        returning: &[SelectItem],
    ) -> Result<JoinWrite> {
        let t_scope = table_scope(&table, label);
        let item_scope = items_scope(txn, items)?;
        if let Some(c) = item_scope.columns.iter().find(|c| c.table.as_deref() == Some(label)) {
            return Err(Error::new(
                codes::DUPLICATE_ALIAS,
                format!("table name \"{}\" specified more than once", c.table.as_deref().unwrap_or(label)),
            ));
        }
        let mut exprs: Vec<&Expr> = assignments.iter().map(|(_, e)| e).collect();
        exprs.extend(filter);
        for e in exprs {
            ambiguous(e, &t_scope, &item_scope)?;
        }
        // The join query: SET values, then every column of the items, qualified.
        let mut select_items: Vec<SelectItem> = Vec::new();
        let mut assigned = Vec::new();
        for (col, e) in assignments {
            let c = table.column_index(col)?;
            let e = match e {
                Expr::Default => match &table.columns[c].default {
                    Some(d) => d.clone(),
                    None => Expr::Literal(Value::Null),
                },
                e => e.clone(),
            };
            assigned.push(c);
            select_items.push(SelectItem::Expr { expr: e, alias: None });
        }
        for c in &item_scope.columns {
            select_items.push(SelectItem::Expr {
                expr: Expr::Column { table: c.table.clone(), name: c.name.clone() },
                alias: None,
            });
        }
        let query = ast::Query {
            with: vec![],
            body: ast::SetExpr::Select(Box::new(ast::Select {
                distinct: false,
                distinct_on: vec![],
                items: select_items,
                from: items.to_vec(),
                filter: filter.cloned(),
                group_by: vec![],
                having: None,
            })),
            order_by: vec![],
            limit: Some(Expr::Literal(Value::Int8(1))),
            offset: None,
            locking: None,
        };
        let (join, _) = Planner::new(txn).plan_query(&query, vec![t_scope.clone()])?;
        // The conjuncts over t alone pick and pre-filter its candidates.
        let mut conjuncts = Vec::new();
        if let Some(f) = filter {
            crate::plan::split_and(f, &mut conjuncts);
        }
        let local: Vec<Expr> =
            conjuncts.into_iter().filter(|c| only_columns_of(c, &t_scope, &item_scope)).cloned().collect();
        let local = local.into_iter().reduce(|a, b| Expr::Binary {
            op: ast::BinaryOp::And,
            left: Box::new(a),
            right: Box::new(b),
        });
        let (local, lookup) = match &local {
            None => (None, None),
            Some(l) => {
                let bound = Planner::new(txn).bind(l, &t_scope, &[])?;
                let lookup = crate::plan::choose_lookup(&table, &t_scope, l, &mut Planner::new(txn), &[])?;
                (Some(bound), lookup.map(|(l, _)| l))
            }
        };
        let both = t_scope.join(&item_scope);
        let returning_columns = super::returning_columns(returning, &both);
        let returning = self.bind_items(txn, returning, &both)?;
        Ok(JoinWrite { table, local, lookup, join, assigned, returning, returning_columns })
    }
}

/// The columns the FROM (or USING) items give, qualified by their names.
pub(super) fn items_scope(txn: &mut Txn, items: &[TableRef]) -> Result<Scope> {
    let mut scope = Scope::default();
    for item in items {
        let (_, s) = Planner::new(txn).plan_from(item, &[], None)?;
        scope = scope.join(&s);
    }
    Ok(scope)
}

/// 42702 if `e` names, unqualified, a column both t and an item have.
fn ambiguous(e: &Expr, t: &Scope, items: &Scope) -> Result<()> {
    let mut found = None;
    crate::bind::visit(e, &mut |x| {
        if let Expr::Column { table: None, name } = x {
            if found.is_none()
                && matches!(t.find(None, name), Ok(Some(_)))
                && !matches!(items.find(None, name), Ok(None))
            {
                found = Some(name.clone());
            }
        }
    });
    match found {
        Some(name) => Err(Error::new(codes::AMBIGUOUS_COLUMN, format!("column reference \"{name}\" is ambiguous"))),
        None => Ok(()),
    }
}

/// Whether every column `e` names is t's (and it has no subquery, which might name the
/// items' columns).
fn only_columns_of(e: &Expr, t: &Scope, items: &Scope) -> bool {
    let mut ok = true;
    crate::bind::visit(e, &mut |x| match x {
        Expr::Column { table, name } => {
            let in_t = matches!(t.find(table.as_deref(), name), Ok(Some(_)));
            let in_items = !matches!(items.find(table.as_deref(), name), Ok(None));
            ok &= in_t && !in_items;
        }
        Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } | Expr::ArraySubquery(_) => ok = false,
        _ => {}
    });
    ok
}
