//! Execution: runs a plan over the transaction and evaluates bound expressions.
//!
//! Operators materialise their rows (a vector per operator). Two bounds keep a statement
//! from taking the server's memory; passing either fails it with 53200:
//!
//! - every operator's output is bounded by [`ROWS_MAX`] rows;
//! - what the materialising operators hold (a sort's rows, a hash join's build side, hash
//!   aggregation's groups, DISTINCT's and set operations' seen rows, CTE results, the rows
//!   table scans read (also for UPDATE and DELETE), the rows function scans and joins
//!   produce, an aggregate's DISTINCT values and string_agg's text) is charged against the statement's memory budget, the session
//!   setting `bulwark.statement_mem_max` (default [`STATEMENT_MEM_DEFAULT_BYTES`]). A row
//!   is charged its estimated size in memory ([`row_bytes`]) as it is added, so a growing
//!   operator fails as soon as it passes the budget; an operator's charge is given back
//!   when it finishes (its output then belongs to the operator above, which is charged for
//!   what it keeps), a CTE's at the end of the statement.

use crate::ast::{BinaryOp, JoinKind, SetOperator};
use crate::bind::{BExpr, SubqueryKind};
use crate::catalog::{keys, Table};
use crate::error::{codes, Error, Result};
use crate::eval::{self, FnContext, GroupKey};
use crate::plan::{Agg, Lookup, Plan, SortKey, WindowCall};
use crate::types::Value;
use std::collections::{HashMap, HashSet};
use std::ops::Bound;
use storage::keycode;
use txn::{LockMode, Txn, WaitPolicy};

/// A row of values.
pub type Row = Vec<Value>;

/// The most rows one operator may hold.
pub const ROWS_MAX: usize = 10_000_000;

/// Store entries a table or index scan reads per page (see `Exec::scan_paged`).
pub const SCAN_PAGE_ROWS: usize = 1024;

/// The default of `bulwark.statement_mem_max`: the bytes the materialising operators of
/// one statement may hold at once. Operators materialise (nothing spills to disk yet), so
/// the default lets ordinary large statements through (counting ten million one-column
/// rows, an INSERT ... SELECT of a few million) and stops only the runaway ones.
pub const STATEMENT_MEM_DEFAULT_BYTES: u64 = 1024 * 1024 * 1024;

/// The smallest `bulwark.statement_mem_max` (as PostgreSQL's smallest work_mem).
pub const STATEMENT_MEM_MIN_BYTES: u64 = 64 * 1024;

/// The name of the memory budget setting.
pub const STATEMENT_MEM_SETTING: &str = "bulwark.statement_mem_max";

/// The estimated bytes a row takes in memory: the vector, each value, and what text and
/// byte strings hold on the heap.
pub fn row_bytes(row: &[Value]) -> u64 {
    let heap: usize = row
        .iter()
        .map(|v| match v {
            Value::Text(s) => s.len(),
            Value::Bytea(b) => b.len(),
            _ => 0,
        })
        .sum();
    (std::mem::size_of::<Row>() + std::mem::size_of_val(row) + heap) as u64
}

/// The bytes of a grouping key (for hash tables of keys).
fn key_bytes(key: &[GroupKey]) -> u64 {
    let heap: usize = key.iter().map(key_heap_bytes).sum();
    (std::mem::size_of::<Vec<GroupKey>>() + std::mem::size_of_val(key) + heap) as u64
}

/// What one key value holds on the heap.
fn key_heap_bytes(k: &GroupKey) -> usize {
    match k {
        GroupKey::Text(s) => s.len(),
        GroupKey::Bytes(b) => b.len(),
        _ => 0,
    }
}

/// Hands out sequence values (SERIAL, nextval): outside the transaction, as in PostgreSQL.
/// Also tells the system views about the session ([`crate::system::SessionInfo`]).
pub trait Sequences: crate::system::SessionInfo {
    /// The next value of sequence `name`.
    fn nextval(&self, txn: &mut Txn, name: &str) -> Result<i64>;
    /// The next hidden row number of `table` (a table without a primary key).
    fn next_rowid(&self, txn: &mut Txn, table: &str) -> Result<i64>;
    /// The last value nextval gave this session for `name`.
    fn currval(&self, name: &str) -> Result<i64>;
    /// Sets the sequence's next value to `value + 1`.
    fn setval(&self, txn: &mut Txn, name: &str, value: i64) -> Result<i64>;
    /// The advisory lock functions (`pg_advisory_lock(key)` and siblings; see
    /// [`crate::advisory`]): a wait ends at `deadline` or `cancel`.
    fn advisory(
        &self,
        func: &str,
        args: &[Value],
        deadline: Option<std::time::Instant>,
        cancel: &std::sync::atomic::AtomicBool,
    ) -> Result<Value>;
}

/// The state of a running statement.
pub struct Exec<'t> {
    /// The transaction.
    pub txn: &'t mut Txn,
    /// $1..$n.
    pub params: &'t [Value],
    /// now() and friends.
    pub fn_ctx: FnContext,
    /// Sequences.
    pub sequences: &'t dyn Sequences,
    /// Materialised CTEs.
    pub ctes: HashMap<String, Vec<Row>>,
    /// Rows of enclosing queries (for correlated subqueries), outermost first.
    pub outer: Vec<Row>,
    /// Lock waits follow this policy when a plan does not say (FOR UPDATE has its own).
    pub rows_examined: u64,
    /// statement_timeout: past this instant the statement fails with 57014.
    pub deadline: Option<std::time::Instant>,
    /// Rows handled since the deadline was last checked.
    pub ticks: u32,
    /// Set by a cancel request (psql's Ctrl-C): the statement fails with 57014.
    pub cancel: &'t std::sync::atomic::AtomicBool,
    /// What each plan node did (EXPLAIN ANALYZE), when asked for.
    pub profile: Option<crate::explain::Profile>,
    /// The statement's memory budget (`bulwark.statement_mem_max`).
    pub mem_max_bytes: u64,
    /// What the materialising operators hold now, charged against `mem_max_bytes`.
    pub mem_used_bytes: u64,
    /// The session's deferred constraint checks (None: every check is immediate).
    pub deferred: Option<&'t std::cell::RefCell<crate::dml::Deferred>>,
}

fn too_many_rows() -> Error {
    Error::new(codes::OUT_OF_MEMORY, format!("query result exceeds {ROWS_MAX} rows in one operator"))
        .with_hint("add a LIMIT or a more selective WHERE clause")
}

/// The key of a row: the table's prefix and its primary key (or hidden row number).
pub fn row_key(table: &Table, pk: &[Value]) -> Result<Vec<u8>> {
    let mut key = keys::rows(table.id);
    for v in pk {
        keycode::encode_part(&mut key, &eval::key_part(v)?);
    }
    Ok(key)
}

/// How many rows an operator handles between two looks at the clock.
const DEADLINE_CHECK_ROWS: u32 = 256;

impl Exec<'_> {
    /// Charges `bytes` that `operator` holds against the statement's memory budget; fails
    /// with 53200 when that passes `mem_max_bytes`.
    pub fn charge(&mut self, operator: &str, bytes: u64) -> Result<()> {
        self.charge_named(bytes, || operator.to_string())
    }

    /// [`Exec::charge`] for the hot path: the operator's name is only made when it fails.
    #[inline]
    pub fn charge_named(&mut self, bytes: u64, operator: impl FnOnce() -> String) -> Result<()> {
        self.mem_used_bytes = self.mem_used_bytes.saturating_add(bytes);
        if self.mem_used_bytes > self.mem_max_bytes {
            return Err(self.out_of_memory(&operator()));
        }
        Ok(())
    }

    /// Charges `row`, which `operator` adds to the output it builds, adding its bytes to
    /// `held` (what the operator gives back with [`Exec::release`] when it is done).
    #[inline]
    pub fn charge_output(&mut self, row: &[Value], held: &mut u64, operator: impl FnOnce() -> String) -> Result<()> {
        let bytes = row_bytes(row);
        *held += bytes;
        self.charge_named(bytes, operator)
    }

    fn out_of_memory(&self, operator: &str) -> Error {
        Error::new(
            codes::OUT_OF_MEMORY,
            format!(
                "out of memory: the {operator} needs more than {STATEMENT_MEM_SETTING} ({}) \
                 (SET {STATEMENT_MEM_SETTING} to raise it)",
                format_bytes(self.mem_max_bytes)
            ),
        )
    }

    /// Gives back what [`Exec::charge`] took.
    pub fn release(&mut self, bytes: u64) {
        self.mem_used_bytes = self.mem_used_bytes.saturating_sub(bytes);
    }

    /// Charges `rows` to `operator` (see [`Exec::charge`]); returns the bytes charged.
    fn charge_rows(&mut self, operator: &str, rows: &[Row]) -> Result<u64> {
        let bytes = rows.iter().map(|r| row_bytes(r)).sum();
        self.charge(operator, bytes)?;
        Ok(bytes)
    }

    /// Counts a row of work; every [`DEADLINE_CHECK_ROWS`] rows, fails with 57014 if the
    /// statement ran past statement_timeout.
    pub fn tick(&mut self) -> Result<()> {
        self.ticks += 1;
        if self.ticks >= DEADLINE_CHECK_ROWS {
            self.ticks = 0;
            if self.deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                return Err(Error::new("57014", "canceling statement due to statement timeout"));
            }
            if self.cancel.swap(false, std::sync::atomic::Ordering::Relaxed) {
                return Err(Error::new("57014", "canceling statement due to user request"));
            }
        }
        Ok(())
    }

    /// Runs `plan` and returns its rows (recording what it did when profiling).
    pub fn run(&mut self, plan: &Plan) -> Result<Vec<Row>> {
        if self.profile.is_none() {
            return self.run_node(plan);
        }
        let start = std::time::Instant::now();
        let rows = self.run_node(plan)?;
        let stats = self.profile.as_mut().expect("profiling").entry(crate::explain::node_id(plan)).or_default();
        stats.rows += rows.len() as u64;
        stats.loops += 1;
        stats.time += start.elapsed();
        Ok(rows)
    }

    fn run_node(&mut self, plan: &Plan) -> Result<Vec<Row>> {
        match plan {
            Plan::One => Ok(vec![vec![]]),
            Plan::Values(rows) => {
                let mut out = Vec::with_capacity(rows.len());
                for r in rows {
                    out.push(r.iter().map(|e| self.eval(e, &[])).collect::<Result<Row>>()?);
                }
                Ok(out)
            }
            Plan::Scan { table, lookup, filter, lock, .. } => {
                let (rows, removed) = self.scan(table, lookup.as_ref(), filter.as_ref(), *lock)?;
                if let Some(profile) = self.profile.as_mut() {
                    profile.entry(crate::explain::node_id(plan)).or_default().removed += removed;
                }
                Ok(rows)
            }
            Plan::Function { name, args, ordinality, types } => {
                let args = args.iter().map(|a| self.eval(a, &[])).collect::<Result<Vec<_>>>()?;
                crate::system::table_function(self, name, args, *ordinality, types)
            }
            Plan::CteRef(name) => self
                .ctes
                .get(name)
                .cloned()
                .ok_or_else(|| Error::new(codes::INTERNAL_ERROR, format!("CTE {name} not run"))),
            Plan::Recursive { name, base, step, all } => {
                let mut seen: HashSet<Vec<GroupKey>> = HashSet::new();
                let fresh = |rows: Vec<Row>, seen: &mut HashSet<Vec<GroupKey>>| -> Vec<Row> {
                    if *all {
                        return rows;
                    }
                    rows.into_iter().filter(|r| seen.insert(r.iter().map(eval::group_key).collect())).collect()
                };
                let first = self.run(base)?;
                let mut result = fresh(first, &mut seen);
                let mut bytes = self.charge_rows("recursive CTE", &result)?;
                let mut last = result.clone();
                let saved = self.ctes.remove(name);
                let outcome = (|| {
                    while !last.is_empty() {
                        self.tick()?;
                        self.ctes.insert(name.clone(), std::mem::take(&mut last));
                        let added = fresh(self.run(step)?, &mut seen);
                        if result.len() + added.len() > ROWS_MAX {
                            return Err(too_many_rows());
                        }
                        bytes += self.charge_rows("recursive CTE", &added)?;
                        result.extend(added.iter().cloned());
                        last = added;
                    }
                    Ok(())
                })();
                self.ctes.remove(name);
                if let Some(rows) = saved {
                    self.ctes.insert(name.clone(), rows);
                }
                self.release(bytes);
                outcome?;
                Ok(result)
            }
            Plan::With(ctes, body) => {
                for (name, p) in ctes {
                    let rows = self.run(p)?;
                    // Held until the statement ends: never released.
                    self.charge_rows("CTE", &rows)?;
                    self.ctes.insert(name.clone(), rows);
                }
                self.run(body)
            }
            Plan::Filter(input, pred, _) => {
                let rows = self.run(input)?;
                let mut out = Vec::new();
                for r in rows {
                    self.tick()?;
                    if self.test(pred, &r)? {
                        out.push(r);
                    }
                }
                Ok(out)
            }
            Plan::Project(input, exprs) => {
                let rows = self.run(input)?;
                let mut out = Vec::with_capacity(rows.len());
                for r in rows {
                    self.tick()?;
                    out.push(exprs.iter().map(|e| self.eval(e, &r)).collect::<Result<Row>>()?);
                }
                Ok(out)
            }
            Plan::Join { left, right, kind, on, left_width, right_width, .. } => {
                let l = self.run(left)?;
                let r = self.run(right)?;
                self.join(l, r, *kind, on.as_ref(), *left_width, *right_width)
            }
            Plan::HashJoin {
                left,
                right,
                kind,
                left_keys,
                right_keys,
                on,
                build_left,
                left_width,
                right_width,
                ..
            } => {
                let l = self.run(left)?;
                let r = self.run(right)?;
                let join = HashJoin { kind: *kind, left_keys, right_keys, on, build_left: *build_left };
                self.hash_join(l, r, &join, *left_width, *right_width)
            }
            Plan::Aggregate { input, group_by, aggs, .. } => {
                let rows = self.run(input)?;
                self.aggregate(rows, group_by, aggs)
            }
            Plan::Sort(input, keys, _) => {
                let mut rows = self.run(input)?;
                let bytes = self.charge_rows("sort", &rows)?;
                sort_rows(&mut rows, keys);
                self.release(bytes);
                Ok(rows)
            }
            Plan::Limit { input, limit, offset } => {
                let rows = self.run(input)?;
                let offset = match offset {
                    Some(e) => self.count_arg(e, "OFFSET")?.unwrap_or(0),
                    None => 0,
                };
                let limit = match limit {
                    Some(e) => self.count_arg(e, "LIMIT")?,
                    None => None,
                };
                let it = rows.into_iter().skip(offset);
                Ok(match limit {
                    Some(n) => it.take(n).collect(),
                    None => it.collect(),
                })
            }
            Plan::Distinct(input, width) => {
                let rows = self.run(input)?;
                let cols: Vec<usize> = (0..*width).collect();
                self.first_of_each(rows, &cols, "DISTINCT")
            }
            Plan::ProjectSet { input, calls } => {
                let rows = self.run(input)?;
                let mut out = Vec::new();
                for row in rows {
                    let mut sets = Vec::with_capacity(calls.len());
                    for (name, args, yields) in calls {
                        let args = args.iter().map(|a| self.eval(a, &row)).collect::<Result<Vec<_>>>()?;
                        let produced =
                            crate::system::table_function(self, name, args, false, std::slice::from_ref(yields))?;
                        sets.push(produced.into_iter().map(|mut r| r.swap_remove(0)).collect::<Vec<_>>());
                    }
                    let n = sets.iter().map(Vec::len).max().unwrap_or(0);
                    if out.len() + n > ROWS_MAX {
                        return Err(too_many_rows());
                    }
                    for i in 0..n {
                        self.tick()?;
                        let mut r = row.clone();
                        r.extend(sets.iter().map(|set| set.get(i).cloned().unwrap_or(Value::Null)));
                        out.push(r);
                    }
                }
                Ok(out)
            }
            Plan::Window { input, calls } => {
                let mut rows = self.run(input)?;
                for call in calls {
                    let values = self.window(&rows, call)?;
                    for (row, v) in rows.iter_mut().zip(values) {
                        row.push(v);
                    }
                }
                Ok(rows)
            }
            Plan::DistinctOn(input, cols) => {
                let rows = self.run(input)?;
                self.first_of_each(rows, cols, "DISTINCT ON")
            }
            Plan::Trim(input, width) => {
                let mut rows = self.run(input)?;
                rows.iter_mut().for_each(|r| r.truncate(*width));
                Ok(rows)
            }
            Plan::SetOp { op, all, left, right } => {
                let l = self.run(left)?;
                let r = self.run(right)?;
                // The set operation keeps a key per distinct row of its inputs at most.
                let bytes = if matches!((op, all), (SetOperator::Union, true)) {
                    0
                } else {
                    l.iter().chain(&r).map(|row| row_bytes(row)).sum()
                };
                self.charge("set operation", bytes)?;
                let out = set_op(*op, *all, l, r);
                self.release(bytes);
                Ok(out)
            }
        }
    }

    fn count_arg(&mut self, e: &BExpr, what: &str) -> Result<Option<usize>> {
        match eval::cast(self.eval(e, &[])?, &crate::types::DataType::Int8, true)? {
            Value::Null => Ok(None),
            Value::Int8(n) if n < 0 => Err(Error::new("2201W", format!("{what} must not be negative"))),
            Value::Int8(n) => Ok(Some(n as usize)),
            _ => Ok(None),
        }
    }

    /// The rows `lookup` finds in `table` (all of them without one), with their keys. They
    /// are checked against the memory budget as they are collected, and given back after.
    pub fn candidates(&mut self, table: &Table, lookup: Option<&Lookup>) -> Result<Vec<(Vec<u8>, Row)>> {
        let mut held = 0;
        let candidates = self.collect_candidates(table, lookup, &mut held)?;
        self.release(held);
        Ok(candidates)
    }

    /// Adds a row to a scan's candidates, charging it (see [`Exec::charge_output`]).
    fn push_candidate(
        &mut self,
        candidates: &mut Vec<(Vec<u8>, Row)>,
        held: &mut u64,
        table: &Table,
        key: Vec<u8>,
        row: Row,
    ) -> Result<()> {
        *held += key.len() as u64;
        self.charge_output(&row, held, || format!("scan of {}", table.name))?;
        candidates.push((key, row));
        if candidates.len() > ROWS_MAX {
            return Err(too_many_rows());
        }
        Ok(())
    }

    /// [`Exec::candidates`], charged to the memory budget until the caller gives `held`
    /// back.
    fn collect_candidates(
        &mut self,
        table: &Table,
        lookup: Option<&Lookup>,
        held: &mut u64,
    ) -> Result<Vec<(Vec<u8>, Row)>> {
        let mut candidates: Vec<(Vec<u8>, Row)> = Vec::new();
        if table.id >= crate::catalog::SYSTEM_ID_MIN {
            // A system table: its rows are made from the catalog (see `system`).
            candidates = crate::system::scan(self, table)?.into_iter().map(|r| (Vec::new(), r)).collect();
        }
        match lookup {
            _ if table.id >= crate::catalog::SYSTEM_ID_MIN => {}
            Some(Lookup::Index { index, values }) => {
                // The index entries under the pinned leading columns point at the rows;
                // the filter below checks every condition again on the row itself.
                let index = &table.indexes[*index];
                let mut prefix = keys::index_entries(index.id);
                for (e, &col) in values.iter().zip(&index.columns) {
                    let v = self.eval(e, &[])?;
                    match eval::cast(v, &table.columns[col].data_type, false) {
                        Ok(Value::Null) | Err(_) => return Ok(vec![]),
                        Ok(v) => keycode::encode_part(&mut prefix, &eval::key_part(&v)?),
                    }
                }
                let end = keycode::prefix_end(&prefix).expect("index prefix has an end");
                self.scan_paged(prefix, end, |x, _, rowkey| {
                    x.tick()?;
                    if let Some(bytes) = x.txn.get(&rowkey)? {
                        x.push_candidate(&mut candidates, held, table, rowkey, eval::decode_row(&bytes)?)?;
                    }
                    Ok(())
                })?;
            }
            Some(Lookup::Range { index, column, lower, upper }) => {
                let data_type = &table.columns[*column].data_type;
                let (Some(lo), Some(hi)) = (
                    self.range_bound(lower, data_type, std::cmp::Ordering::Greater)?,
                    self.range_bound(upper, data_type, std::cmp::Ordering::Less)?,
                ) else {
                    return Ok(vec![]); // a NULL bound: no row qualifies
                };
                let via_index = index.map(|i| &table.indexes[i]);
                let prefix = match via_index {
                    Some(ix) => keys::index_entries(ix.id),
                    None => keys::rows(table.id),
                };
                let mut start = prefix.clone();
                if let Some(v) = &lo {
                    keycode::encode_part(&mut start, &eval::key_part(v)?);
                }
                let mut end = prefix;
                if let Some(v) = &hi {
                    keycode::encode_part(&mut end, &eval::key_part(v)?);
                }
                let end = keycode::prefix_end(&end).expect("key prefix has an end");
                if start < end {
                    self.scan_paged(start, end, |x, k, v| {
                        x.tick()?;
                        if via_index.is_none() {
                            x.push_candidate(&mut candidates, held, table, k, eval::decode_row(&v)?)?;
                        } else if let Some(bytes) = x.txn.get(&v)? {
                            x.push_candidate(&mut candidates, held, table, v, eval::decode_row(&bytes)?)?;
                        }
                        Ok(())
                    })?;
                }
            }
            Some(Lookup::Keys { index, column, values }) => {
                // Each distinct value once, in key order; a NULL or a value the column's
                // type cannot hold matches nothing.
                let data_type = &table.columns[*column].data_type;
                let mut parts = Vec::with_capacity(values.len());
                for e in values {
                    let v = self.eval(e, &[])?;
                    if let Ok(v) = eval::cast(v, data_type, false) {
                        if v != Value::Null {
                            let mut part = Vec::new();
                            keycode::encode_part(&mut part, &eval::key_part(&v)?);
                            parts.push(part);
                        }
                    }
                }
                parts.sort_unstable();
                parts.dedup();
                let via_index = index.map(|i| &table.indexes[i]);
                for part in parts {
                    let mut start = match via_index {
                        Some(ix) => keys::index_entries(ix.id),
                        None => keys::rows(table.id),
                    };
                    start.extend_from_slice(&part);
                    let end = keycode::prefix_end(&start).expect("key prefix has an end");
                    self.scan_paged(start, end, |x, k, v| {
                        x.tick()?;
                        if via_index.is_none() {
                            x.push_candidate(&mut candidates, held, table, k, eval::decode_row(&v)?)?;
                        } else if let Some(bytes) = x.txn.get(&v)? {
                            x.push_candidate(&mut candidates, held, table, v, eval::decode_row(&bytes)?)?;
                        }
                        Ok(())
                    })?;
                }
            }
            Some(Lookup::PrimaryKey(exprs)) => {
                let mut pk = Vec::new();
                for (e, &col) in exprs.iter().zip(&table.primary_key) {
                    let v = self.eval(e, &[])?;
                    let v = eval::cast(v, &table.columns[col].data_type, false);
                    match v {
                        Ok(Value::Null) | Err(_) => return Ok(vec![]),
                        Ok(v) => pk.push(v),
                    }
                }
                let key = row_key(table, &pk)?;
                if let Some(bytes) = self.txn.get(&key)? {
                    candidates.push((key, eval::decode_row(&bytes)?));
                }
            }
            None => {
                let prefix = keys::rows(table.id);
                let end = keycode::prefix_end(&prefix).expect("row prefix has an end");
                self.scan_paged(prefix, end, |x, k, v| {
                    x.push_candidate(&mut candidates, held, table, k, eval::decode_row(&v)?)
                })?;
            }
        }
        self.rows_examined += candidates.len() as u64;
        Ok(candidates)
    }

    /// Visits the entries of `[lo, hi)` in key order, [`SCAN_PAGE_ROWS`] read from the store
    /// at a time, so a scan holds at most one page beyond what `f` has already charged to
    /// the statement's budget: a scan of a huge table fails with 53200 instead of first
    /// reading the whole table into memory. Every page reads the statement's one snapshot.
    fn scan_paged(
        &mut self,
        lo: Vec<u8>,
        hi: Vec<u8>,
        mut f: impl FnMut(&mut Self, Vec<u8>, Vec<u8>) -> Result<()>,
    ) -> Result<()> {
        let mut start = Bound::Included(lo);
        loop {
            let page = self.txn.scan(start, Bound::Excluded(hi.clone()), false, SCAN_PAGE_ROWS)?;
            let full = page.len() == SCAN_PAGE_ROWS;
            let Some((last, _)) = page.last() else { return Ok(()) };
            start = Bound::Excluded(last.clone());
            for (k, v) in page {
                f(self, k, v)?;
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// The tightest of a range's bounds on a column of type `data_type`: the greatest
    /// lower bound (`keep` Greater) or the least upper bound (Less), converted to the
    /// column's type. None: a bound is NULL, so no row qualifies. Some(None): unbounded on
    /// that side, also for a bound that does not convert (the filter still applies it).
    /// A conversion that rounds (2.5 for an integer column) only widens the inclusive range.
    fn range_bound(
        &mut self,
        exprs: &[BExpr],
        data_type: &crate::types::DataType,
        keep: std::cmp::Ordering,
    ) -> Result<Option<Option<Value>>> {
        use crate::types::DataType as T;
        let text_column = matches!(data_type, T::Text | T::Varchar(_));
        let mut best: Option<Value> = None;
        for e in exprs {
            let v = match self.eval(e, &[])? {
                Value::Null => return Ok(None),
                // Text compares with text only; other values with a text column would be
                // compared some other way than the keys are ordered.
                v if text_column != matches!(v, Value::Text(_)) && !matches!(v, Value::Text(_)) => continue,
                v => v,
            };
            let Ok(v) = eval::cast(v, data_type, false) else { continue };
            if v.is_null() {
                return Ok(None);
            }
            best = match best {
                Some(b) if eval::compare(&v, &b) != Some(keep) => Some(b),
                _ => Some(v),
            };
        }
        Ok(Some(best))
    }

    /// The rows of `table` (all, or by primary key), filtered and optionally locked, and how
    /// many the filter removed.
    fn scan(
        &mut self,
        table: &Table,
        lookup: Option<&Lookup>,
        filter: Option<&BExpr>,
        lock: Option<crate::ast::Locking>,
    ) -> Result<(Vec<Row>, u64)> {
        if table.id >= crate::catalog::SYSTEM_ID_MIN && lock.is_some() {
            return Err(Error::unsupported(format!("FOR UPDATE/SHARE on system table {}", table.name)));
        }
        // The candidates are charged while the scan runs; the rows it keeps move from them
        // to its output, so they are not charged again.
        let mut held = 0;
        let candidates = self.collect_candidates(table, lookup, &mut held)?;
        let mut out = Vec::new();
        let mut removed = 0;
        for (key, row) in candidates {
            self.tick()?;
            if let Some(f) = filter {
                if !self.test(f, &row)? {
                    removed += 1;
                    continue;
                }
            }
            let row = match lock {
                None => row,
                Some(l) => {
                    let mode = if l.exclusive { LockMode::Exclusive } else { LockMode::Shared };
                    let policy = if l.nowait {
                        WaitPolicy::NoWait
                    } else if l.skip_locked {
                        WaitPolicy::SkipLocked
                    } else {
                        WaitPolicy::Wait
                    };
                    match self.txn.lock_row(&key, mode, policy)? {
                        None | Some(None) => continue, // skipped, or deleted meanwhile
                        Some(Some(bytes)) => {
                            // READ COMMITTED re-reads the newest version: check it again.
                            let latest = eval::decode_row(&bytes)?;
                            if let Some(f) = filter {
                                if !self.test(f, &latest)? {
                                    removed += 1;
                                    continue;
                                }
                            }
                            latest
                        }
                    }
                }
            };
            out.push(row);
        }
        self.release(held);
        Ok((out, removed))
    }

    fn join(
        &mut self,
        l: Vec<Row>,
        r: Vec<Row>,
        kind: JoinKind,
        on: Option<&BExpr>,
        lw: usize,
        rw: usize,
    ) -> Result<Vec<Row>> {
        let mut out = Vec::new();
        let mut held = 0;
        let name = || "nested loop join".to_string();
        let mut right_matched = vec![false; r.len()];
        for lrow in &l {
            let mut matched = false;
            for (j, rrow) in r.iter().enumerate() {
                self.tick()?;
                let mut row = lrow.clone();
                row.extend(rrow.iter().cloned());
                let ok = match on {
                    Some(e) => self.test(e, &row)?,
                    None => true,
                };
                if ok {
                    matched = true;
                    right_matched[j] = true;
                    self.charge_output(&row, &mut held, name)?;
                    out.push(row);
                    if out.len() > ROWS_MAX {
                        return Err(too_many_rows());
                    }
                }
            }
            if !matched && matches!(kind, JoinKind::Left | JoinKind::Full) {
                let mut row = lrow.clone();
                row.extend(std::iter::repeat_n(Value::Null, rw));
                self.charge_output(&row, &mut held, name)?;
                out.push(row);
            }
        }
        if matches!(kind, JoinKind::Right | JoinKind::Full) {
            self.unmatched_right(&r, &right_matched, lw, &mut out, &mut held, name)?;
        }
        self.release(held);
        Ok(out)
    }

    /// RIGHT and FULL joins: each right row no left row matched, padded with NULLs on the
    /// left, charged to the budget as it is made.
    fn unmatched_right(
        &mut self,
        r: &[Row],
        right_matched: &[bool],
        lw: usize,
        out: &mut Vec<Row>,
        held: &mut u64,
        name: impl Fn() -> String,
    ) -> Result<()> {
        for (rrow, _) in r.iter().zip(right_matched).filter(|(_, &m)| !m) {
            let mut row: Row = std::iter::repeat_n(Value::Null, lw).collect();
            row.extend(rrow.iter().cloned());
            self.charge_output(&row, held, &name)?;
            out.push(row);
        }
        Ok(())
    }

    /// The keys of `rows` (None for a row with a NULL key: it matches nothing).
    fn join_keys(&mut self, rows: &[Row], exprs: &[BExpr]) -> Result<Vec<Option<Vec<GroupKey>>>> {
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            self.tick()?;
            let mut key = Vec::with_capacity(exprs.len());
            for e in exprs {
                match self.eval(e, row)? {
                    Value::Null => break,
                    v => key.push(eval::group_key(&v)),
                }
            }
            out.push((key.len() == exprs.len()).then_some(key));
        }
        Ok(out)
    }

    /// A hash join: the build side's rows by key, probed with the other side's. Each pair of
    /// equal keys is checked against the whole condition, so the hash only has to put SQL-equal
    /// values together. The output is in nested-loop order (left rows in order, each with
    /// its matches in right order), whichever side is built.
    fn hash_join(&mut self, l: Vec<Row>, r: Vec<Row>, join: &HashJoin<'_>, lw: usize, rw: usize) -> Result<Vec<Row>> {
        let lkeys = self.join_keys(&l, join.left_keys)?;
        let rkeys = self.join_keys(&r, join.right_keys)?;
        if !hashable_together(&lkeys, &rkeys) {
            // Keys of different kinds (text against dates, ...) may still compare equal
            // through conversions the hash does not make: compare every pair instead.
            return self.join(l, r, join.kind, Some(join.on), lw, rw);
        }
        let (build, probe) = if join.build_left { (&lkeys, &rkeys) } else { (&rkeys, &lkeys) };
        let build_rows = if join.build_left { &l } else { &r };
        let mut table: HashMap<&[GroupKey], Vec<usize>> = HashMap::new();
        let mut bytes = 0;
        for (i, k) in build.iter().enumerate() {
            if let Some(k) = k {
                let size = key_bytes(k) + row_bytes(&build_rows[i]) + std::mem::size_of::<usize>() as u64;
                self.charge("hash join", size)?;
                bytes += size;
                table.entry(k.as_slice()).or_default().push(i);
            }
        }
        // matches[i]: the right rows joined to left row i, in order.
        let mut matches: Vec<Vec<usize>> = vec![Vec::new(); l.len()];
        let mut pairs = 0usize;
        for (p, k) in probe.iter().enumerate() {
            let Some(bucket) = k.as_ref().and_then(|k| table.get(k.as_slice())) else { continue };
            for &b in bucket {
                self.tick()?;
                let (i, j) = if join.build_left { (b, p) } else { (p, b) };
                let mut row = l[i].clone();
                row.extend(r[j].iter().cloned());
                if self.test(join.on, &row)? {
                    matches[i].push(j);
                    pairs += 1;
                    if pairs > ROWS_MAX {
                        return Err(too_many_rows());
                    }
                }
            }
        }
        drop(table);
        self.release(bytes);
        let mut out = Vec::with_capacity(pairs);
        let mut held = 0;
        let name = || "hash join".to_string();
        let mut right_matched = vec![false; r.len()];
        for (i, js) in matches.iter().enumerate() {
            for &j in js {
                right_matched[j] = true;
                let mut row = l[i].clone();
                row.extend(r[j].iter().cloned());
                self.charge_output(&row, &mut held, name)?;
                out.push(row);
            }
            if js.is_empty() && matches!(join.kind, JoinKind::Left | JoinKind::Full) {
                let mut row = l[i].clone();
                row.extend(std::iter::repeat_n(Value::Null, rw));
                self.charge_output(&row, &mut held, name)?;
                out.push(row);
            }
        }
        if matches!(join.kind, JoinKind::Right | JoinKind::Full) {
            self.unmatched_right(&r, &right_matched, lw, &mut out, &mut held, name)?;
        }
        self.release(held);
        Ok(out)
    }

    fn aggregate(&mut self, rows: Vec<Row>, group_by: &[BExpr], aggs: &[Agg]) -> Result<Vec<Row>> {
        let mut index: HashMap<Vec<GroupKey>, usize> = HashMap::new();
        let mut groups: Vec<(Row, Vec<AggState>)> = Vec::new();
        let mut bytes = 0;
        for row in &rows {
            self.tick()?;
            let values = group_by.iter().map(|e| self.eval(e, row)).collect::<Result<Row>>()?;
            let key: Vec<GroupKey> = values.iter().map(eval::group_key).collect();
            let g = match index.get(&key) {
                Some(&g) => g,
                None => {
                    let size = key_bytes(&key) + row_bytes(&values) + (aggs.len() * AGG_STATE_BYTES) as u64;
                    self.charge("hash aggregate", size)?;
                    bytes += size;
                    index.insert(key, groups.len());
                    groups.push((values, aggs.iter().map(|_| AggState::default()).collect()));
                    groups.len() - 1
                }
            };
            for (a, agg) in aggs.iter().enumerate() {
                let v = match &agg.arg {
                    Some(e) => Some(self.eval(e, row)?),
                    None => None,
                };
                let extra = match &agg.extra {
                    Some(e) => Some(self.eval(e, row)?),
                    None => None,
                };
                let grew = if agg.order_by.is_empty() {
                    groups[g].1[a].add(agg, v, extra)?
                } else {
                    let keys = agg.order_by.iter().map(|(k, ..)| self.eval(k, row)).collect::<Result<Row>>()?;
                    groups[g].1[a].keep(keys, v, extra)
                };
                if grew > 0 {
                    self.charge_named(grew, || agg_name(agg))?;
                    bytes += grew;
                }
            }
        }
        self.release(bytes);
        if groups.is_empty() && group_by.is_empty() {
            groups.push((vec![], aggs.iter().map(|_| AggState::default()).collect()));
        }
        groups
            .into_iter()
            .map(|(mut values, states)| {
                for (state, agg) in states.into_iter().zip(aggs) {
                    values.push(state.finish(agg)?);
                }
                Ok(values)
            })
            .collect()
    }

    /// The first of `rows` with each combination of values in columns `cols` (DISTINCT,
    /// DISTINCT ON), the keys seen charged to `operator` while it runs.
    fn first_of_each(&mut self, rows: Vec<Row>, cols: &[usize], operator: &str) -> Result<Vec<Row>> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let mut bytes = 0;
        for r in rows {
            let key = cols.iter().map(|&c| eval::group_key(&r[c])).collect::<Vec<_>>();
            let size = key_bytes(&key);
            if seen.insert(key) {
                self.charge(operator, size)?;
                bytes += size;
                out.push(r);
            }
        }
        self.release(bytes);
        Ok(out)
    }

    /// One window call's value for each of `rows`: the rows are put in partition and ORDER BY
    /// order, and each partition is walked once (an aggregate over a frame that starts at the
    /// partition's start grows as the frame's end moves; other frames are added up afresh).
    fn window(&mut self, rows: &[Row], call: &WindowCall) -> Result<Vec<Value>> {
        use crate::ast::FrameBound as B;
        let mut keyed = Vec::with_capacity(rows.len());
        let mut bytes = 0;
        for (i, row) in rows.iter().enumerate() {
            self.tick()?;
            let part = call.partition_by.iter().map(|e| self.eval(e, row)).collect::<Result<Row>>()?;
            let ord = call.order_by.iter().map(|(e, ..)| self.eval(e, row)).collect::<Result<Row>>()?;
            let size = row_bytes(&part) + row_bytes(&ord) + 64;
            self.charge("WindowAgg", size)?;
            bytes += size;
            keyed.push((part, ord, i));
        }
        let part_dirs = vec![(false, false); call.partition_by.len()];
        let ord_dirs: Vec<(bool, bool)> = call.order_by.iter().map(|&(_, d, n)| (d, n)).collect();
        keyed.sort_by(|a, b| order_cmp(&a.0, &b.0, &part_dirs).then_with(|| order_cmp(&a.1, &b.1, &ord_dirs)));
        let mut out = vec![Value::Null; rows.len()];
        let agg = crate::bind::is_aggregate(&call.func).then(|| Agg {
            func: call.func.clone(),
            arg: call.args.first().cloned(),
            extra: call.args.get(1).cloned(),
            distinct: false,
            order_by: Vec::new(),
        });
        let mut start = 0;
        while start < keyed.len() {
            let mut end = start + 1;
            while end < keyed.len() && order_cmp(&keyed[start].0, &keyed[end].0, &part_dirs).is_eq() {
                end += 1;
            }
            let part = &keyed[start..end];
            let m = part.len();
            // Peer groups: rows equal in ORDER BY.
            let (mut peer_start, mut peer_end) = (vec![0; m], vec![0; m]);
            let mut g = 0;
            while g < m {
                let mut h = g + 1;
                while h < m && order_cmp(&part[g].1, &part[h].1, &ord_dirs).is_eq() {
                    h += 1;
                }
                for j in g..h {
                    peer_start[j] = g;
                    peer_end[j] = h;
                }
                g = h;
            }
            let frame = |j: usize| -> (usize, usize) {
                let f = call.frame;
                let s = match f.start {
                    B::UnboundedPreceding => 0,
                    B::Preceding(k) => j.saturating_sub(usize::try_from(k).unwrap_or(usize::MAX)),
                    B::CurrentRow if f.rows => j,
                    B::CurrentRow => peer_start[j],
                    B::Following(k) => j.saturating_add(usize::try_from(k).unwrap_or(usize::MAX)).min(m),
                    B::UnboundedFollowing => m,
                };
                let e = match f.end {
                    B::UnboundedPreceding => 0,
                    B::Preceding(k) => (j + 1).saturating_sub(usize::try_from(k).unwrap_or(usize::MAX)),
                    B::CurrentRow if f.rows => j + 1,
                    B::CurrentRow => peer_end[j],
                    B::Following(k) => {
                        j.saturating_add(1).saturating_add(usize::try_from(k).unwrap_or(usize::MAX)).min(m)
                    }
                    B::UnboundedFollowing => m,
                };
                (s, e.max(s))
            };
            let row_at = |j: usize| &rows[part[j].2];
            // A running aggregate: the state of the frame [0, added), and the last result.
            let mut running: Option<(AggState, usize, Option<Value>)> = None;
            let mut dense = 0;
            for j in 0..m {
                self.tick()?;
                let row = row_at(j);
                if j == 0 || peer_start[j] == j {
                    dense += 1;
                }
                let v = match call.func.as_str() {
                    "row_number" => Value::Int8(j as i64 + 1),
                    "rank" => Value::Int8(peer_start[j] as i64 + 1),
                    "dense_rank" => Value::Int8(dense),
                    "percent_rank" if m == 1 => Value::Float8(0.0),
                    "percent_rank" => Value::Float8(peer_start[j] as f64 / (m - 1) as f64),
                    "cume_dist" => Value::Float8(peer_end[j] as f64 / m as f64),
                    "ntile" => {
                        let buckets = match self.eval(&call.args[0], row)? {
                            Value::Null => None,
                            v => match eval::cast(v, &crate::types::DataType::Int8, false)? {
                                Value::Int8(n) => Some(n),
                                _ => None,
                            },
                        };
                        match buckets {
                            None => Value::Null,
                            Some(n) if n <= 0 => {
                                return Err(Error::new(
                                    codes::INVALID_ARGUMENT_FOR_NTILE,
                                    "argument of ntile must be greater than zero",
                                ))
                            }
                            Some(n) => Value::Int4(ntile(j, m, usize::try_from(n).unwrap_or(usize::MAX))),
                        }
                    }
                    "lag" | "lead" => {
                        let offset = match call.args.get(1) {
                            None => Some(1),
                            Some(e) => match self.eval(e, row)? {
                                Value::Null => None,
                                v => match eval::cast(v, &crate::types::DataType::Int8, false)? {
                                    Value::Int8(n) => Some(n),
                                    _ => None,
                                },
                            },
                        };
                        match offset {
                            None => Value::Null,
                            Some(off) => {
                                let target = if call.func == "lag" {
                                    (j as i64).checked_sub(off)
                                } else {
                                    (j as i64).checked_add(off)
                                };
                                match target.filter(|t| *t >= 0 && (*t as usize) < m) {
                                    Some(t) => self.eval(&call.args[0], row_at(t as usize))?,
                                    None => match call.args.get(2) {
                                        Some(d) => self.eval(d, row)?,
                                        None => Value::Null,
                                    },
                                }
                            }
                        }
                    }
                    "first_value" | "last_value" | "nth_value" => {
                        let (s, e) = frame(j);
                        let at = match call.func.as_str() {
                            "first_value" => (s < e).then_some(s),
                            "last_value" => (s < e).then(|| e - 1),
                            _ => match self.eval(&call.args[1], row)? {
                                Value::Null => None,
                                v => match eval::cast(v, &crate::types::DataType::Int8, false)? {
                                    Value::Int8(n) if n <= 0 => {
                                        return Err(Error::new(
                                            codes::INVALID_ARGUMENT_FOR_NTH_VALUE,
                                            "argument of nth_value must be greater than zero",
                                        ))
                                    }
                                    Value::Int8(n) => {
                                        s.checked_add(usize::try_from(n - 1).unwrap_or(usize::MAX)).filter(|&t| t < e)
                                    }
                                    _ => None,
                                },
                            },
                        };
                        match at {
                            Some(t) => self.eval(&call.args[0], row_at(t))?,
                            None => Value::Null,
                        }
                    }
                    _ => {
                        let agg = agg.as_ref().expect("the planner admits aggregates and window functions only");
                        let (s, e) = frame(j);
                        if s == 0 {
                            let (state, added, last) = running.get_or_insert_with(|| (AggState::default(), 0, None));
                            if *added < e || last.is_none() {
                                while *added < e {
                                    let r = row_at(*added);
                                    let v = agg.arg.as_ref().map(|a| self.eval(a, r)).transpose()?;
                                    let x = agg.extra.as_ref().map(|a| self.eval(a, r)).transpose()?;
                                    state.add(agg, v, x)?;
                                    *added += 1;
                                }
                                *last = Some(state.clone().finish(agg)?);
                            }
                            last.clone().expect("computed above")
                        } else {
                            let mut state = AggState::default();
                            for t in s..e {
                                let r = row_at(t);
                                let v = agg.arg.as_ref().map(|a| self.eval(a, r)).transpose()?;
                                let x = agg.extra.as_ref().map(|a| self.eval(a, r)).transpose()?;
                                state.add(agg, v, x)?;
                            }
                            state.finish(agg)?
                        }
                    }
                };
                out[part[j].2] = v;
            }
            start = end;
        }
        self.release(bytes);
        Ok(out)
    }

    /// WHERE semantics: NULL is false.
    pub fn test(&mut self, e: &BExpr, row: &[Value]) -> Result<bool> {
        let v = self.eval(e, row)?;
        Ok(eval::truth(&v)?.unwrap_or(false))
    }

    /// Evaluates `e` over `row`.
    pub fn eval(&mut self, e: &BExpr, row: &[Value]) -> Result<Value> {
        Ok(match e {
            BExpr::Const(v) => v.clone(),
            BExpr::Col(i) => {
                row.get(*i).cloned().ok_or_else(|| Error::new(codes::INTERNAL_ERROR, "column out of range"))?
            }
            BExpr::Outer(depth, i) => {
                let r = self
                    .outer
                    .len()
                    .checked_sub(*depth)
                    .and_then(|d| self.outer.get(d))
                    .ok_or_else(|| Error::new(codes::INTERNAL_ERROR, "outer reference out of range"))?;
                r.get(*i).cloned().unwrap_or(Value::Null)
            }
            BExpr::Param(n) => self.params.get(n.wrapping_sub(1)).cloned().ok_or_else(|| {
                Error::new(codes::UNDEFINED_OBJECT, format!("there is no parameter ${n}"))
                    .with_hint("bind a value for it")
            })?,
            BExpr::Unary(op, x) => {
                let v = self.eval(x, row)?;
                eval::unary(*op, v)?
            }
            BExpr::Binary(BinaryOp::And, l, r) => {
                let lv = self.eval(l, row)?;
                if eval::truth(&lv)? == Some(false) {
                    return Ok(Value::Bool(false));
                }
                let rv = self.eval(r, row)?;
                eval::binary(BinaryOp::And, lv, rv)?
            }
            BExpr::Binary(BinaryOp::Or, l, r) => {
                let lv = self.eval(l, row)?;
                if eval::truth(&lv)? == Some(true) {
                    return Ok(Value::Bool(true));
                }
                let rv = self.eval(r, row)?;
                eval::binary(BinaryOp::Or, lv, rv)?
            }
            BExpr::Binary(op, l, r) => {
                let lv = self.eval(l, row)?;
                let rv = self.eval(r, row)?;
                eval::binary(*op, lv, rv)?
            }
            BExpr::Func(name, args) => {
                let vals = args.iter().map(|a| self.eval(a, row)).collect::<Result<Vec<_>>>()?;
                self.call(name, vals)?
            }
            BExpr::Coalesce(args) => {
                for a in args {
                    let v = self.eval(a, row)?;
                    if !v.is_null() {
                        return Ok(v);
                    }
                }
                Value::Null
            }
            BExpr::Cast(x, crate::types::DataType::Reg(kind)) => {
                let v = self.eval(x, row)?;
                crate::system::to_reg(self, *kind, v)?
            }
            BExpr::Cast(x, t) => {
                let v = self.eval(x, row)?;
                eval::cast(v, t, true)?
            }
            BExpr::AnyAll(op, x, array, all) => {
                let v = self.eval(x, row)?;
                let array = self.eval(array, row)?;
                eval::array::any_all(*op, v, &array, *all)?
            }
            BExpr::Subscript(array, index) => {
                let array = self.eval(array, row)?;
                let index = self.eval(index, row)?;
                eval::array::subscript(&array, &index)?
            }
            BExpr::IsNull(x, negated) => Value::Bool(self.eval(x, row)?.is_null() != *negated),
            BExpr::IsBool(x, want, negated) => {
                let t = eval::truth(&self.eval(x, row)?)?;
                Value::Bool((t == *want) != *negated)
            }
            BExpr::InList(x, list, negated) => {
                let v = self.eval(x, row)?;
                let mut items = Vec::with_capacity(list.len());
                for item in list {
                    items.push(self.eval(item, row)?);
                }
                in_values(v, items, *negated)?
            }
            BExpr::Like(x, p, negated, ci) => {
                let v = self.eval(x, row)?;
                let p = self.eval(p, row)?;
                match (
                    eval::cast(v, &crate::types::DataType::Text, true)?,
                    eval::cast(p, &crate::types::DataType::Text, true)?,
                ) {
                    (Value::Text(s), Value::Text(p)) => Value::Bool(eval::like(&s, &p, *ci) != *negated),
                    _ => Value::Null,
                }
            }
            BExpr::Case(operand, whens, else_result) => {
                let subject = match operand {
                    Some(o) => Some(self.eval(o, row)?),
                    None => None,
                };
                for (w, t) in whens {
                    let hit = match &subject {
                        Some(s) => {
                            let wv = self.eval(w, row)?;
                            eval::truth(&eval::binary(BinaryOp::Eq, s.clone(), wv)?)? == Some(true)
                        }
                        None => self.test(w, row)?,
                    };
                    if hit {
                        return self.eval(t, row);
                    }
                }
                match else_result {
                    Some(e) => self.eval(e, row)?,
                    None => Value::Null,
                }
            }
            BExpr::Subquery(plan, kind) => {
                self.outer.push(row.to_vec());
                let rows = self.run(plan);
                self.outer.pop();
                let rows = rows?;
                match kind {
                    SubqueryKind::Scalar => match rows.len() {
                        0 => Value::Null,
                        1 => rows[0].first().cloned().unwrap_or(Value::Null),
                        _ => {
                            return Err(Error::new(
                                codes::CARDINALITY_VIOLATION,
                                "more than one row returned by a subquery used as an expression",
                            ))
                        }
                    },
                    SubqueryKind::Exists { negated } => Value::Bool(rows.is_empty() == *negated),
                    SubqueryKind::In { expr, negated } => {
                        let v = self.eval(expr, row)?;
                        in_values(v, rows.into_iter().filter_map(|r| r.into_iter().next()).collect(), *negated)?
                    }
                    SubqueryKind::Array => {
                        let items: Vec<Option<String>> =
                            rows.iter().map(|r| r.first().and_then(eval::to_text)).collect();
                        Value::Text(eval::array::format(&items))
                    }
                }
            }
        })
    }

    fn call(&mut self, name: &str, args: Vec<Value>) -> Result<Value> {
        let seq_name = |args: &[Value]| match args.first() {
            Some(Value::Text(s)) => Ok(s.trim_matches('"').to_string()),
            _ => Err(Error::new(codes::UNDEFINED_FUNCTION, format!("function {name} needs a sequence name"))),
        };
        match name {
            "nextval" => Ok(Value::Int8(self.sequences.nextval(self.txn, &seq_name(&args)?)?)),
            "currval" => Ok(Value::Int8(self.sequences.currval(&seq_name(&args)?)?)),
            "setval" => {
                let v = match args.get(1) {
                    Some(v) => match eval::cast(v.clone(), &crate::types::DataType::Int8, true)? {
                        Value::Int8(n) => n,
                        _ => return Ok(Value::Null),
                    },
                    None => {
                        return Err(Error::new(codes::UNDEFINED_FUNCTION, "function setval(regclass) does not exist"))
                    }
                };
                Ok(Value::Int8(self.sequences.setval(self.txn, &seq_name(&args)?, v)?))
            }
            _ => match crate::system::call(self, name, &args) {
                Some(result) => result,
                None => eval::call_function(name, args, &self.fn_ctx),
            },
        }
    }
}

/// What [`Exec::hash_join`] needs of a [`Plan::HashJoin`].
struct HashJoin<'p> {
    kind: JoinKind,
    left_keys: &'p [BExpr],
    right_keys: &'p [BExpr],
    on: &'p BExpr,
    build_left: bool,
}

/// The kind of a grouping key, as far as hashing goes: equal values (SQL `=`) of one kind
/// always have equal keys (integers and floats share one kind).
fn key_kind(k: &GroupKey) -> u8 {
    match k {
        GroupKey::Null => 0,
        GroupKey::Bool(_) => 1,
        GroupKey::Int(_) | GroupKey::Float(_) => 2,
        GroupKey::Decimal(..) => 3,
        GroupKey::Text(_) => 4,
        GroupKey::Bytes(_) => 5,
        GroupKey::Time(_) => 6,
        GroupKey::Interval(_) => 7,
    }
}

/// True if every key position holds one kind of key on both sides (see [`key_kind`]).
fn hashable_together(a: &[Option<Vec<GroupKey>>], b: &[Option<Vec<GroupKey>>]) -> bool {
    let mut kinds: Vec<Option<u8>> = Vec::new();
    for key in a.iter().chain(b).flatten() {
        kinds.resize(key.len(), None);
        for (slot, k) in kinds.iter_mut().zip(key) {
            let kind = key_kind(k);
            match slot {
                None => *slot = Some(kind),
                Some(s) if *s != kind => return false,
                Some(_) => {}
            }
        }
    }
    true
}

/// `v [NOT] IN (items)` with SQL's NULL rules.
fn in_values(v: Value, items: Vec<Value>, negated: bool) -> Result<Value> {
    if items.is_empty() {
        return Ok(Value::Bool(negated)); // even for a NULL operand
    }
    if v.is_null() {
        return Ok(Value::Null);
    }
    let mut saw_null = false;
    for item in items {
        match eval::truth(&eval::binary(BinaryOp::Eq, v.clone(), item)?)? {
            Some(true) => return Ok(Value::Bool(!negated)),
            None => saw_null = true,
            Some(false) => {}
        }
    }
    Ok(if saw_null { Value::Null } else { Value::Bool(negated) })
}

/// Sorts rows by `keys` (stable; NULLs placed as asked).
pub fn sort_rows(rows: &mut [Row], keys: &[SortKey]) {
    rows.sort_by(|a, b| {
        for k in keys {
            let (x, y) = (&a[k.col], &b[k.col]);
            let ord = match (x.is_null(), y.is_null()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => {
                    if k.nulls_first {
                        std::cmp::Ordering::Less
                    } else {
                        std::cmp::Ordering::Greater
                    }
                }
                (false, true) => {
                    if k.nulls_first {
                        std::cmp::Ordering::Greater
                    } else {
                        std::cmp::Ordering::Less
                    }
                }
                (false, false) => {
                    let o = eval::compare(x, y).unwrap_or(std::cmp::Ordering::Equal);
                    if k.desc {
                        o.reverse()
                    } else {
                        o
                    }
                }
            };
            if ord != std::cmp::Ordering::Equal {
                return ord;
            }
        }
        std::cmp::Ordering::Equal
    });
}

fn set_op(op: SetOperator, all: bool, l: Vec<Row>, r: Vec<Row>) -> Vec<Row> {
    let key = |row: &Row| row.iter().map(eval::group_key).collect::<Vec<_>>();
    match (op, all) {
        (SetOperator::Union, true) => l.into_iter().chain(r).collect(),
        (SetOperator::Union, false) => {
            let mut seen = HashSet::new();
            l.into_iter().chain(r).filter(|row| seen.insert(key(row))).collect()
        }
        (SetOperator::Intersect | SetOperator::Except, _) => {
            let mut counts: HashMap<Vec<GroupKey>, usize> = HashMap::new();
            for row in &r {
                *counts.entry(key(row)).or_default() += 1;
            }
            let mut seen = HashSet::new();
            let mut out = Vec::new();
            for row in l {
                let k = key(&row);
                let in_right = counts.get(&k).copied().unwrap_or(0);
                let keep = match (op, all) {
                    (SetOperator::Intersect, true) => {
                        if in_right > 0 {
                            counts.insert(k.clone(), in_right - 1);
                            true
                        } else {
                            false
                        }
                    }
                    (SetOperator::Intersect, false) => in_right > 0 && seen.insert(k.clone()),
                    (SetOperator::Except, true) => {
                        if in_right > 0 {
                            counts.insert(k.clone(), in_right - 1);
                            false
                        } else {
                            true
                        }
                    }
                    _ => in_right == 0 && seen.insert(k.clone()),
                };
                if keep {
                    out.push(row);
                }
            }
            out
        }
    }
}

/// The bytes charged for one aggregate's state in one group when the group is made (its
/// DISTINCT set and string_agg's text are charged as they grow).
const AGG_STATE_BYTES: usize = std::mem::size_of::<AggState>();

/// An aggregate as the memory budget's error names it: `count(DISTINCT) aggregate`.
fn agg_name(agg: &Agg) -> String {
    format!("{}{} aggregate", agg.func, if agg.distinct { "(DISTINCT)" } else { "" })
}

/// `bytes` as PostgreSQL shows memory settings: the largest unit that divides it.
pub fn format_bytes(bytes: u64) -> String {
    for (unit, size) in [("TB", 1u64 << 40), ("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    format!("{bytes}B")
}

/// Reads a memory setting as PostgreSQL does: a number with an optional unit (B, kB, MB,
/// GB, TB; none means kB). None if it is not one.
pub fn parse_bytes(text: &str) -> Option<u64> {
    let t = text.trim().trim_matches('\'').trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim() {
        "B" => 1,
        "" | "kB" => 1 << 10,
        "MB" => 1 << 20,
        "GB" => 1 << 30,
        "TB" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// Compares two rows of sort keys, each key with its (DESC, NULLS FIRST).
fn order_cmp(a: &[Value], b: &[Value], dirs: &[(bool, bool)]) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    for ((x, y), &(desc, nulls_first)) in a.iter().zip(b).zip(dirs) {
        let o = match (x.is_null(), y.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) if nulls_first => Ordering::Less,
            (true, false) => Ordering::Greater,
            (false, true) if nulls_first => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => {
                let o = eval::compare(x, y).unwrap_or(Ordering::Equal);
                if desc {
                    o.reverse()
                } else {
                    o
                }
            }
        };
        if o.is_ne() {
            return o;
        }
    }
    Ordering::Equal
}

/// ntile's bucket (1-based) for position `j` of `m` rows in `n` buckets: the first `m % n`
/// buckets hold one row more than the others, as in PostgreSQL.
fn ntile(j: usize, m: usize, n: usize) -> i32 {
    let n = n.min(m.max(1));
    let (size, extra) = (m / n, m % n);
    let big = extra * (size + 1);
    let bucket = if j < big { j / (size + 1) } else { extra + (j - big) / size.max(1) };
    i32::try_from(bucket + 1).unwrap_or(i32::MAX)
}

/// The running state of one aggregate in one group.
#[derive(Default, Clone)]
struct AggState {
    count: i64,
    acc: Option<Value>,
    text: Option<String>,
    seen: HashSet<GroupKey>,
    /// array_agg's elements (None: NULL).
    items: Vec<Option<String>>,
    /// `agg(x ORDER BY k)`: (k, x, extra) of each row, added in order at the end.
    ordered: Vec<(Row, Option<Value>, Option<Value>)>,
    /// stddev and variance.
    spread: eval::Spread,
    /// The ordered-set aggregates' values, in their WITHIN GROUP order.
    values: Vec<Value>,
    /// percentile_cont's and percentile_disc's fraction (from the group's first row).
    fraction: Option<Value>,
}

impl AggState {
    /// Adds a value; returns the bytes the state grew by (its DISTINCT set, string_agg's
    /// text), for the memory budget.
    fn add(&mut self, agg: &Agg, v: Option<Value>, extra: Option<Value>) -> Result<u64> {
        let v = match v {
            None => {
                self.count += 1; // count(*)
                return Ok(0);
            }
            // array_agg and the JSON aggregates keep NULLs; every other aggregate skips them.
            Some(Value::Null)
                if !matches!(
                    agg.func.as_str(),
                    "array_agg" | "json_agg" | "jsonb_agg" | "json_object_agg" | "jsonb_object_agg"
                ) =>
            {
                return Ok(0)
            }
            Some(v) => v,
        };
        let mut grew = 0;
        if agg.distinct {
            let key = eval::group_key(&v);
            let size = (std::mem::size_of::<GroupKey>() + key_heap_bytes(&key)) as u64;
            if !self.seen.insert(key) {
                return Ok(0);
            }
            grew += size;
        }
        self.count += 1;
        match agg.func.as_str() {
            "count" => {}
            "sum" | "avg" => {
                self.acc = Some(match self.acc.take() {
                    None => eval::add_for_sum(Value::Null, v)?,
                    Some(acc) => eval::add_for_sum(acc, v)?,
                });
            }
            "min" | "max" => {
                let replace = match &self.acc {
                    None => true,
                    Some(cur) => {
                        let o = eval::compare(&v, cur).ok_or_else(|| {
                            Error::new(codes::DATATYPE_MISMATCH, format!("cannot compare values in {}", agg.func))
                        })?;
                        if agg.func == "min" {
                            o.is_lt()
                        } else {
                            o.is_gt()
                        }
                    }
                };
                if replace {
                    self.acc = Some(v);
                }
            }
            "bool_and" | "bool_or" => {
                let b = eval::truth(&v)?.unwrap_or(false);
                let cur = match &self.acc {
                    Some(Value::Bool(c)) => *c,
                    _ => agg.func == "bool_and",
                };
                self.acc = Some(Value::Bool(if agg.func == "bool_and" { cur && b } else { cur || b }));
            }
            "array_agg" => {
                let item = eval::to_text(&v);
                grew += (std::mem::size_of::<Option<String>>() + item.as_ref().map_or(0, String::len)) as u64;
                self.items.push(item);
            }
            "json_agg" | "jsonb_agg" => {
                let mut item = String::new();
                eval::json::to_json(&v, &mut item);
                grew += (std::mem::size_of::<Option<String>>() + item.len()) as u64;
                self.items.push(Some(item));
            }
            "json_object_agg" | "jsonb_object_agg" => {
                let Some(key) = eval::to_text(&v) else {
                    return Err(Error::new(codes::INVALID_PARAMETER_VALUE, "field name must not be null"));
                };
                let mut item = String::new();
                eval::json::quote(&key, &mut item);
                item.push_str(" : ");
                eval::json::to_json(extra.as_ref().unwrap_or(&Value::Null), &mut item);
                grew += (std::mem::size_of::<Option<String>>() + item.len()) as u64;
                self.items.push(Some(item));
            }
            "string_agg" => {
                let s = eval::to_text(&v).unwrap_or_default();
                let sep = extra.as_ref().and_then(eval::to_text).unwrap_or_default();
                match &mut self.text {
                    None => {
                        grew += s.len() as u64;
                        self.text = Some(s);
                    }
                    Some(t) => {
                        grew += (sep.len() + s.len()) as u64;
                        t.push_str(&sep);
                        t.push_str(&s);
                    }
                }
            }
            name if eval::is_spread(name) => self.spread.add(name, &v)?,
            "percentile_cont" | "percentile_disc" | "mode" => {
                if self.fraction.is_none() {
                    self.fraction = extra;
                }
                grew += row_bytes(std::slice::from_ref(&v));
                self.values.push(v);
            }
            other => return Err(Error::new(codes::UNDEFINED_FUNCTION, format!("aggregate {other} does not exist"))),
        }
        Ok(grew)
    }

    /// Keeps a row's values for an aggregate with ORDER BY; returns the bytes kept.
    fn keep(&mut self, keys: Row, v: Option<Value>, extra: Option<Value>) -> u64 {
        let bytes = row_bytes(&keys) + v.as_ref().map_or(0, |v| row_bytes(std::slice::from_ref(v))) + 64;
        self.ordered.push((keys, v, extra));
        bytes
    }

    fn finish(mut self, agg: &Agg) -> Result<Value> {
        if !self.ordered.is_empty() {
            let mut ordered = std::mem::take(&mut self.ordered);
            let dirs: Vec<(bool, bool)> = agg.order_by.iter().map(|&(_, d, n)| (d, n)).collect();
            ordered.sort_by(|(a, ..), (b, ..)| order_cmp(a, b, &dirs));
            for (_, v, extra) in ordered {
                self.add(agg, v, extra)?;
            }
        }
        Ok(match agg.func.as_str() {
            "array_agg" if self.count == 0 => Value::Null,
            "array_agg" => Value::Text(eval::array::format(&self.items)),
            "json_agg" | "jsonb_agg" | "json_object_agg" | "jsonb_object_agg" if self.count == 0 => Value::Null,
            "json_agg" | "jsonb_agg" => {
                let items: Vec<String> = self.items.into_iter().flatten().collect();
                let out = format!("[{}]", items.join(", "));
                Value::Json(if agg.func == "jsonb_agg" { eval::json::normalize(&out)? } else { out })
            }
            "json_object_agg" | "jsonb_object_agg" => {
                let items: Vec<String> = self.items.into_iter().flatten().collect();
                let out = format!("{{ {} }}", items.join(", "));
                Value::Json(if agg.func == "jsonb_object_agg" { eval::json::normalize(&out)? } else { out })
            }
            "count" => Value::Int8(self.count),
            "avg" => match self.acc {
                None => Value::Null,
                Some(sum) => eval::avg_finish(sum, self.count)?,
            },
            "string_agg" => self.text.map_or(Value::Null, Value::Text),
            name if eval::is_spread(name) => self.spread.finish(name)?,
            "percentile_cont" | "percentile_disc" => percentile(&agg.func, &self.values, self.fraction)?,
            "mode" => mode(self.values),
            _ => self.acc.unwrap_or(Value::Null),
        })
    }
}

/// percentile_cont or percentile_disc of `values` (sorted as WITHIN GROUP says) at
/// `fraction`, as PostgreSQL computes them: `_disc` takes the first value whose position
/// in the order reaches the fraction; `_cont` interpolates linearly between the values
/// around position `fraction * (n - 1)`, in double precision.
fn percentile(func: &str, values: &[Value], fraction: Option<Value>) -> Result<Value> {
    let Some(fraction) = fraction.filter(|f| !f.is_null()) else { return Ok(Value::Null) };
    let Value::Float8(f) = eval::cast(fraction, &crate::types::DataType::Float8, false)? else {
        return Err(Error::new(codes::DATATYPE_MISMATCH, format!("{func}'s fraction must be a number")));
    };
    if !(0.0..=1.0).contains(&f) {
        return Err(Error::new(
            codes::NUMERIC_VALUE_OUT_OF_RANGE,
            format!("percentile value {f} is not between 0 and 1"),
        ));
    }
    let n = values.len();
    if n == 0 {
        return Ok(Value::Null);
    }
    if func == "percentile_disc" {
        let row = ((f * n as f64).ceil() as usize).clamp(1, n);
        return Ok(values[row - 1].clone());
    }
    let number = |v: &Value| match eval::cast(v.clone(), &crate::types::DataType::Float8, false) {
        Ok(Value::Float8(x)) => Ok(x),
        _ => Err(Error::new(
            codes::UNDEFINED_FUNCTION,
            format!("function percentile_cont(double precision) does not accept {}", eval::type_name(v)),
        )),
    };
    let at = f * (n - 1) as f64;
    let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
    let first = number(&values[lo])?;
    if lo == hi {
        return Ok(Value::Float8(first));
    }
    let second = number(&values[hi])?;
    Ok(Value::Float8(first + (at - lo as f64) * (second - first)))
}

/// mode: the most frequent of `values` (sorted), the first in the order on a tie.
fn mode(values: Vec<Value>) -> Value {
    let (mut best, mut best_count) = (Value::Null, 0usize);
    let mut i = 0;
    while i < values.len() {
        let mut j = i + 1;
        while j < values.len() && eval::compare(&values[i], &values[j]) == Some(std::cmp::Ordering::Equal) {
            j += 1;
        }
        if j - i > best_count {
            best_count = j - i;
            best = values[i].clone();
        }
        i = j;
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_settings_read_and_print_as_postgres() {
        assert_eq!(parse_bytes("1GB"), Some(STATEMENT_MEM_DEFAULT_BYTES));
        assert_eq!(parse_bytes("256MB"), Some(256 << 20));
        assert_eq!(parse_bytes("'64kB'"), Some(STATEMENT_MEM_MIN_BYTES));
        assert_eq!(parse_bytes("64"), Some(STATEMENT_MEM_MIN_BYTES));
        assert_eq!(parse_bytes("100B"), Some(100));
        assert_eq!(parse_bytes("1 GB"), Some(1 << 30));
        assert_eq!(parse_bytes("lots"), None);
        assert_eq!(parse_bytes("1mb"), None);
        assert_eq!(parse_bytes("99999999999999999999TB"), None);
        assert_eq!(format_bytes(STATEMENT_MEM_DEFAULT_BYTES), "1GB");
        assert_eq!(format_bytes(256 << 20), "256MB");
        assert_eq!(format_bytes(1536), "1536B");
        assert_eq!(format_bytes(3 << 10), "3kB");
    }
}
