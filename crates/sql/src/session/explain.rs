//! EXPLAIN [ANALYZE] of INSERT, UPDATE and DELETE.
//!
//! As in PostgreSQL, the write is a node (`Insert on t`, `Update on t`, `Delete on t`) over
//! the plan that makes or finds its rows: `Result` or `Values Scan` for VALUES, the query's
//! plan for INSERT ... SELECT, and for UPDATE and DELETE the scan the write uses (the same
//! lookup, `Filter` and `Index Cond`). EXPLAIN ANALYZE performs the write, as PostgreSQL
//! does (inside a transaction block it can be rolled back). The scan of an UPDATE or DELETE
//! is reported with the rows it found (the rows written) and the statement's time, since
//! it runs interleaved with the writes.
//!
//! # Left out
//!
//! ANALYZE's counts of inserted and conflicting rows, and triggers (Bulwark has none).

use super::{table_scope, QueryResult, ResultColumn, Session};
use crate::ast::{Expr, InsertSource, OnConflict, Statement};
use crate::catalog;
use crate::error::{Error, Result};
use crate::explain::{self, NodeStats, Options, Profile};
use crate::plan::{Plan, Planner};
use crate::types::{DataType, Value};
use txn::Txn;

/// What EXPLAIN asked for.
pub(super) struct ExplainOptions {
    /// Perform the write and report what each node did.
    pub analyze: bool,
    /// The planner's row estimates.
    pub costs: bool,
    /// Times, with `analyze`.
    pub timing: bool,
    /// The total time, with `analyze`.
    pub summary: bool,
}

impl Session {
    /// EXPLAIN [ANALYZE] of an INSERT, UPDATE or DELETE.
    pub(super) fn explain_write(
        &self,
        txn: &mut Txn,
        stmt: &Statement,
        o: &ExplainOptions,
        params: &[Value],
    ) -> Result<QueryResult> {
        let mut details = Vec::new();
        let (verb, target, input, returning) = match stmt {
            Statement::Insert { table, source, returning, on_conflict, .. } => {
                if let Some(c) = on_conflict {
                    details = conflict_lines(&catalog::table(txn, table)?, c);
                }
                let input = match source {
                    InsertSource::DefaultValues => Plan::One,
                    InsertSource::Values(rows) if rows.len() == 1 => Plan::One,
                    InsertSource::Values(rows) => Plan::Values(vec![Vec::new(); rows.len()]),
                    InsertSource::Query(q) => Planner::new(txn).plan_query(q, vec![])?.0,
                };
                ("Insert", table.clone(), input, !returning.is_empty())
            }
            Statement::Update { table, alias, filter, returning, .. }
            | Statement::Delete { table, alias, filter, returning, .. } => {
                let def = catalog::table(txn, table)?;
                let scope = table_scope(&def, alias.as_deref().unwrap_or(table));
                let scan = Planner::new(txn).write_scan(&def, alias.as_deref(), &scope, filter.as_ref())?;
                let verb = if matches!(stmt, Statement::Update { .. }) { "Update" } else { "Delete" };
                let target = match alias {
                    Some(a) if a != table => format!("{table} {a}"),
                    _ => table.clone(),
                };
                (verb, target, scan, !returning.is_empty())
            }
            _ => return Err(Error::unsupported("EXPLAIN of this statement")),
        };
        let mut profile = Profile::new();
        let mut written = None;
        let start = std::time::Instant::now();
        if o.analyze {
            let result = match (stmt, &input) {
                // The query runs profiled here, its rows then inserted as VALUES.
                (Statement::Insert { table, columns, source: InsertSource::Query(_), on_conflict, returning }, _) => {
                    let mut exec = self.exec(txn, params);
                    exec.profile = Some(Profile::new());
                    let rows = exec.run(&input)?;
                    profile = exec.profile.take().unwrap_or_default();
                    let values = rows.into_iter().map(|r| r.into_iter().map(Expr::Literal).collect()).collect();
                    let source = InsertSource::Values(values);
                    let cols = columns.as_deref();
                    self.insert(txn, table, cols, &source, on_conflict.as_ref(), returning, params)?
                }
                _ => self.statement(txn, stmt, params)?,
            };
            let count = result.tag.rsplit(' ').next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
            let time = start.elapsed();
            let input_rows = match &input {
                Plan::Values(rows) => rows.len() as u64,
                Plan::One => 1,
                _ => count,
            };
            profile.entry(explain::node_id(&input)).or_insert(NodeStats {
                rows: input_rows,
                loops: 1,
                time,
                removed: 0,
            });
            written = Some(NodeStats { rows: count, loops: 1, time, removed: 0 });
        }
        let opts = Options { costs: o.costs, profile: o.analyze.then_some(&profile), timing: o.timing };
        let mut lines = explain::write_lines(verb, &target, &details, &input, returning, written, &opts);
        if o.analyze && o.summary {
            lines.push(format!("Execution Time: {:.3} ms", start.elapsed().as_secs_f64() * 1000.0));
        }
        Ok(QueryResult {
            columns: Some(vec![ResultColumn { name: "QUERY PLAN".into(), data_type: DataType::Text }]),
            rows: lines.into_iter().map(|l| vec![Value::Text(l)]).collect(),
            tag: "EXPLAIN".into(),
            notices: vec![],
            copy: None,
        })
    }
}

/// PostgreSQL's lines for ON CONFLICT: what it does, the unique index (or primary key) whose
/// columns are the conflict target, and DO UPDATE's WHERE.
fn conflict_lines(table: &catalog::Table, c: &OnConflict) -> Vec<String> {
    let mut out = vec![format!("Conflict Resolution: {}", if c.update.is_some() { "UPDATE" } else { "NOTHING" })];
    let mut target: Vec<usize> = c.columns.iter().filter_map(|n| table.column_index(n).ok()).collect();
    target.sort_unstable();
    let same = |cols: &[usize]| {
        let mut cols = cols.to_vec();
        cols.sort_unstable();
        !cols.is_empty() && cols == target
    };
    let arbiter = if same(&table.primary_key) {
        Some(table.pk_name.clone())
    } else {
        table.indexes.iter().find(|ix| ix.unique && same(&ix.columns)).map(|ix| ix.name.clone())
    };
    if let Some(name) = arbiter {
        out.push(format!("Conflict Arbiter Indexes: {name}"));
    }
    if let Some((_, Some(filter))) = &c.update {
        out.push(format!("Conflict Filter: {filter}"));
    }
    out
}
