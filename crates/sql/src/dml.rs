//! Writing rows: INSERT, UPDATE and DELETE, with every constraint checked on every write.
//!
//! Each row write locks what it touches: the row's key (exclusive), each unique index
//! entry (exclusive), and each referenced parent row (shared). Uniqueness and foreign keys
//! are checked against the newest committed state after taking the lock
//! (`Txn::lock_row_latest`), as PostgreSQL does, so two sessions inserting the same key
//! serialise on the lock and the second gets 23505, and a parent cannot be deleted while a
//! child that references it is being inserted.
//!
//! A DEFERRABLE foreign key whose check is deferred (INITIALLY DEFERRED, or SET
//! CONSTRAINTS ... DEFERRED) records what to check in the session's [`Deferred`] instead:
//! a child row that must find its parent, or a parent key that went while children still
//! referred to it. The commit (or SET CONSTRAINTS ... IMMEDIATE) checks them against the
//! state the transaction has made by then: a child row deleted since, or a parent key
//! inserted again, is no violation, as in PostgreSQL.

use crate::ast::ReferentialAction;
use crate::catalog::{self, keys, ForeignKey, Index, Table};
use crate::error::{codes, Error, Result};
use crate::eval;
use crate::exec::{row_key, Exec, Row};
use crate::types::{DataType, Value};
use std::ops::Bound;
use storage::keycode;
use txn::{LockMode, WaitPolicy};

fn show_row(row: &[Value]) -> String {
    let parts: Vec<String> = row.iter().map(|v| eval::to_text(v).unwrap_or_else(|| "null".into())).collect();
    format!("Failing row contains ({}).", parts.join(", "))
}

fn key_detail(table: &Table, cols: &[usize], row: &[Value]) -> String {
    let names: Vec<&str> = cols.iter().map(|&c| table.columns[c].name.as_str()).collect();
    let vals: Vec<String> = cols.iter().map(|&c| eval::to_text(&row[c]).unwrap_or_else(|| "null".into())).collect();
    format!("({})=({})", names.join(", "), vals.join(", "))
}

/// The primary key values of `row` (or its hidden row number).
pub fn primary_key(table: &Table, row: &[Value], rowid: Option<i64>) -> Vec<Value> {
    if table.primary_key.is_empty() {
        vec![Value::Int8(rowid.expect("a table without a primary key has a row number"))]
    } else {
        table.primary_key.iter().map(|&c| row[c].clone()).collect()
    }
}

/// The key of `row`'s entry in `index`, and whether it is a unique entry (the columns alone).
pub(crate) fn index_key(index: &Index, row: &[Value], rowkey: &[u8]) -> Result<(Vec<u8>, bool)> {
    let mut key = keys::index_entries(index.id);
    let mut any_null = false;
    for &c in &index.columns {
        any_null |= row[c].is_null();
        keycode::encode_part(&mut key, &eval::key_part(&row[c])?);
    }
    // A unique entry is the columns alone; NULLs never conflict, so such entries (and
    // non-unique ones) carry the row key too.
    let unique = index.unique && !any_null;
    if !unique {
        keycode::encode_part(&mut key, &keycode::KeyPart::Bytes(rowkey.to_vec()));
    }
    Ok((key, unique))
}

/// Checks NOT NULL and CHECK constraints of a row about to be written.
pub fn check_row(exec: &mut Exec<'_>, table: &Table, row: &[Value]) -> Result<()> {
    for (c, col) in table.columns.iter().enumerate() {
        if (col.not_null || table.primary_key.contains(&c)) && row[c].is_null() {
            return Err(Error::new(
                codes::NOT_NULL_VIOLATION,
                format!(
                    "null value in column \"{}\" of relation \"{}\" violates not-null constraint",
                    col.name, table.name
                ),
            )
            .with_detail(show_row(row))
            .on(&table.name, Some(&col.name), None));
        }
    }
    if !table.checks.is_empty() {
        let scope = crate::bind::Scope {
            columns: table
                .columns
                .iter()
                .map(|c| crate::bind::ScopeColumn {
                    table: Some(table.name.clone()),
                    name: c.name.clone(),
                    data_type: None,
                    hidden: false,
                })
                .collect(),
        };
        for (name, expr) in &table.checks {
            let bound = crate::plan::Planner::new(exec.txn).bind(expr, &scope, &[])?;
            if eval::truth(&exec.eval(&bound, row)?)? == Some(false) {
                return Err(Error::new(
                    codes::CHECK_VIOLATION,
                    format!("new row for relation \"{}\" violates check constraint \"{name}\"", table.name),
                )
                .with_detail(show_row(row))
                .on(&table.name, None, Some(name)));
            }
        }
    }
    Ok(())
}

/// Deferred foreign key checks a transaction holds at once; past this the checks that
/// pass are done at once and only failing ones are kept (54000 if they alone fill it).
pub const DEFERRED_CHECKS_MAX: usize = 100_000;

/// The session's deferred constraint checks and SET CONSTRAINTS modes for the running
/// transaction (cleared when it ends).
#[derive(Debug, Default)]
pub struct Deferred {
    /// SET CONSTRAINTS ALL: Some(true) deferred, Some(false) immediate.
    pub all: Option<bool>,
    /// SET CONSTRAINTS name, ...: the mode of each constraint named (after `all`).
    pub named: std::collections::BTreeMap<String, bool>,
    /// Checks waiting for the commit.
    pending: Vec<Pending>,
}

/// One deferred check.
#[derive(Debug, Clone)]
enum Pending {
    /// The row of `table` at `key` must find its parent through foreign key `fk`.
    Child { table: String, fk: String, key: Vec<u8> },
    /// No row of `child` may refer to the key `values` of `table` through `fk`, unless
    /// the key exists again; `detail` names the key.
    Parent { table: String, fk: String, child: String, values: Vec<Value>, detail: String },
}

impl Deferred {
    /// The modes SET CONSTRAINTS chose: ALL's, and each named constraint's.
    pub fn modes(&self) -> (Option<bool>, std::collections::BTreeMap<String, bool>) {
        (self.all, self.named.clone())
    }

    /// Puts back modes [`Deferred::modes`] returned (ROLLBACK TO undoes SET CONSTRAINTS);
    /// the checks waiting for the commit stay.
    pub fn set_modes(&mut self, (all, named): (Option<bool>, std::collections::BTreeMap<String, bool>)) {
        self.all = all;
        self.named = named;
    }
}

impl Pending {
    fn constraint(&self) -> &str {
        match self {
            Pending::Child { fk, .. } | Pending::Parent { fk, .. } => fk,
        }
    }
}

impl Deferred {
    /// True if `fk`'s check waits for the commit in this transaction.
    pub fn defers(&self, fk: &ForeignKey) -> bool {
        fk.deferrable && self.named.get(&fk.name).copied().or(self.all).unwrap_or(fk.initially_deferred)
    }

    /// Forgets the transaction's modes and checks.
    pub fn clear(&mut self) {
        *self = Deferred::default();
    }
}

/// True if `exec`'s session defers `fk`'s check.
fn deferred_now(exec: &Exec<'_>, fk: &ForeignKey) -> bool {
    fk.deferrable && exec.deferred.is_some_and(|d| d.borrow().defers(fk))
}

/// Records a deferred check, making room by running the ones that pass when full.
fn defer(exec: &mut Exec<'_>, check: Pending) -> Result<()> {
    let Some(cell) = exec.deferred else { return Ok(()) };
    if cell.borrow().pending.len() >= DEFERRED_CHECKS_MAX {
        let pending = std::mem::take(&mut cell.borrow_mut().pending);
        let mut failing = Vec::new();
        for p in pending {
            if run_check(exec, &p).is_err() {
                failing.push(p);
            }
        }
        if failing.len() >= DEFERRED_CHECKS_MAX {
            return Err(Error::new(
                codes::PROGRAM_LIMIT_EXCEEDED,
                format!("more than {DEFERRED_CHECKS_MAX} deferred foreign key checks fail in one transaction"),
            ));
        }
        cell.borrow_mut().pending = failing;
    }
    cell.borrow_mut().pending.push(check);
    Ok(())
}

/// Runs the deferred checks of the constraints `which` selects (all of them for None),
/// keeping the others: the first violation is the error.
pub fn check_deferred(exec: &mut Exec<'_>, which: Option<&[String]>) -> Result<()> {
    let Some(cell) = exec.deferred else { return Ok(()) };
    let pending = std::mem::take(&mut cell.borrow_mut().pending);
    let mut kept = Vec::new();
    let mut result = Ok(());
    for p in pending {
        let selected = which.is_none_or(|names| names.iter().any(|n| n == p.constraint()));
        if !selected || result.is_err() {
            kept.push(p);
            continue;
        }
        result = run_check(exec, &p);
    }
    cell.borrow_mut().pending.extend(kept);
    result
}

/// One deferred check, against the transaction's state now.
fn run_check(exec: &mut Exec<'_>, p: &Pending) -> Result<()> {
    match p {
        Pending::Child { table, fk, key } => {
            let Some(table) = catalog::get_table(exec.txn, table)? else { return Ok(()) };
            let Some(fk) = table.foreign_keys.iter().find(|f| f.name == *fk) else { return Ok(()) };
            let Some(bytes) = exec.txn.get(key)? else { return Ok(()) }; // the row went
            let row = eval::decode_row(&bytes)?;
            check_parent(exec, &table, fk, &row)
        }
        Pending::Parent { table, fk, child, values, detail } => {
            let (Some(parent), Some(child)) =
                (catalog::get_table(exec.txn, table)?, catalog::get_table(exec.txn, child)?)
            else {
                return Ok(());
            };
            let Some(fk) = child.foreign_keys.iter().find(|f| f.name == *fk && f.table == parent.name) else {
                return Ok(());
            };
            if parent_exists(exec, &parent, &fk.referred, values)? {
                return Ok(());
            }
            if matching_children(exec, &child, fk, values)?.is_empty() {
                return Ok(());
            }
            Err(still_referenced(&parent, fk, &child, detail))
        }
    }
}

/// True if `parent` has a row whose `referred` columns hold `values`, locking it shared.
fn parent_exists(exec: &mut Exec<'_>, parent: &Table, referred: &[usize], values: &[Value]) -> Result<bool> {
    let key = if referred == parent.primary_key.as_slice() {
        row_key(parent, values)?
    } else {
        let index = parent
            .indexes
            .iter()
            .find(|i| i.unique && i.columns == referred)
            .ok_or_else(|| Error::new(codes::INTERNAL_ERROR, "referenced columns lost their unique index"))?;
        let mut full = vec![Value::Null; parent.columns.len()];
        for (v, &p) in values.iter().zip(referred) {
            full[p] = v.clone();
        }
        index_key(index, &full, &[])?.0
    };
    Ok(matches!(exec.txn.lock_row_latest(&key, LockMode::Shared, WaitPolicy::Wait)?, Some(Some(_))))
}

/// Checks one foreign key of `row` now.
fn check_parent(exec: &mut Exec<'_>, table: &Table, fk: &ForeignKey, row: &[Value]) -> Result<()> {
    if fk.columns.iter().any(|&c| row[c].is_null()) {
        return Ok(()); // MATCH SIMPLE: a NULL in the key means no check
    }
    let parent = catalog::table(exec.txn, &fk.table)?;
    let values: Vec<Value> = fk
        .columns
        .iter()
        .zip(&fk.referred)
        .map(|(&c, &p)| eval::cast(row[c].clone(), &parent.columns[p].data_type, false))
        .collect::<Result<_>>()?;
    if parent_exists(exec, &parent, &fk.referred, &values)? {
        return Ok(());
    }
    Err(Error::new(
        codes::FOREIGN_KEY_VIOLATION,
        format!("insert or update on table \"{}\" violates foreign key constraint \"{}\"", table.name, fk.name),
    )
    .with_detail(format!("Key {} is not present in table \"{}\".", key_detail(table, &fk.columns, row), parent.name))
    .on(&table.name, None, Some(&fk.name)))
}

fn still_referenced(table: &Table, fk: &ForeignKey, child: &Table, detail: &str) -> Error {
    Error::new(
        codes::FOREIGN_KEY_VIOLATION,
        format!(
            "update or delete on table \"{}\" violates foreign key constraint \"{}\" on table \"{}\"",
            table.name, fk.name, child.name
        ),
    )
    .with_detail(format!("Key {detail} is still referenced from table \"{}\".", child.name))
    .on(&child.name, None, Some(&fk.name))
}

/// Checks that every foreign key of `row` (stored at `key`) finds its parent, locking the
/// parent row shared; a deferred key's check is recorded for the commit instead.
pub(crate) fn check_parents(exec: &mut Exec<'_>, table: &Table, row: &[Value], key: &[u8]) -> Result<()> {
    for fk in &table.foreign_keys {
        if fk.columns.iter().any(|&c| row[c].is_null()) {
            continue;
        }
        if deferred_now(exec, fk) {
            defer(exec, Pending::Child { table: table.name.clone(), fk: fk.name.clone(), key: key.to_vec() })?;
            continue;
        }
        check_parent(exec, table, fk, row)?;
    }
    Ok(())
}

/// The outcome of inserting one row.
pub enum Inserted {
    /// Written; its row key.
    Done(Vec<u8>),
    /// A unique constraint already holds the key: the existing row's key, the error, and
    /// the columns of the constraint (the primary key's or a unique index's).
    Conflict(Vec<u8>, Error, Vec<usize>),
}

/// Writes a new row after checking every constraint. The row must already have the
/// table's column types.
pub fn insert_row(exec: &mut Exec<'_>, table: &Table, row: &Row) -> Result<Inserted> {
    check_row(exec, table, row)?;
    let rowid =
        if table.primary_key.is_empty() { Some(exec.sequences.next_rowid(exec.txn, &table.name)?) } else { None };
    let key = row_key(table, &primary_key(table, row, rowid))?;
    if let Some(Some(_)) = exec.txn.lock_row_latest(&key, LockMode::Exclusive, WaitPolicy::Wait)? {
        let err = Error::new(
            codes::UNIQUE_VIOLATION,
            format!("duplicate key value violates unique constraint \"{}\"", table.pk_name),
        )
        .with_detail(format!("Key {} already exists.", key_detail(table, &table.primary_key, row)))
        .on(&table.name, None, Some(&table.pk_name));
        return Ok(Inserted::Conflict(key, err, table.primary_key.clone()));
    }
    for index in &table.indexes {
        if let Some(existing) = unique_conflict(exec, index, row, &key, None)? {
            let err = Error::new(
                codes::UNIQUE_VIOLATION,
                format!("duplicate key value violates unique constraint \"{}\"", index.name),
            )
            .with_detail(format!("Key {} already exists.", key_detail(table, &index.columns, row)))
            .on(&table.name, None, Some(&index.name));
            return Ok(Inserted::Conflict(existing, err, index.columns.clone()));
        }
    }
    exec.txn.put(&key, &eval::encode_row(row))?;
    for index in &table.indexes {
        let (ikey, _) = index_key(index, row, &key)?;
        exec.txn.put(&ikey, &key)?;
    }
    // After the unique checks, as PostgreSQL's foreign key triggers run after the insert.
    check_parents(exec, table, row, &key)?;
    Ok(Inserted::Done(key))
}

/// The key of another row holding `row`'s values in unique `index`, if any. `replacing` is
/// the key the row had before an update that moves it: its own old entry is no conflict.
fn unique_conflict(
    exec: &mut Exec<'_>,
    index: &Index,
    row: &[Value],
    own: &[u8],
    replacing: Option<&[u8]>,
) -> Result<Option<Vec<u8>>> {
    let (ikey, unique) = index_key(index, row, own)?;
    if !unique {
        return Ok(None);
    }
    match exec.txn.lock_row_latest(&ikey, LockMode::Exclusive, WaitPolicy::Wait)? {
        Some(Some(existing)) if existing != own && Some(existing.as_slice()) != replacing => Ok(Some(existing)),
        _ => Ok(None),
    }
}

/// Removes a row and its index entries, applying the foreign keys that reference it.
pub fn delete_row(exec: &mut Exec<'_>, table: &Table, key: &[u8], row: &Row) -> Result<()> {
    enforce_children(exec, table, row, None)?;
    exec.txn.delete(key)?;
    for index in &table.indexes {
        let (ikey, _) = index_key(index, row, key)?;
        exec.txn.delete(&ikey)?;
    }
    Ok(())
}

/// Replaces `old` (at `key`) by `new`, checking constraints; returns the new row key.
pub fn update_row(exec: &mut Exec<'_>, table: &Table, key: &[u8], old: &Row, new: &Row) -> Result<Vec<u8>> {
    check_row(exec, table, new)?;
    let fk_cols_changed = table.foreign_keys.iter().any(|fk| fk.columns.iter().any(|&c| !same(&old[c], &new[c])));
    enforce_children(exec, table, old, Some(new))?;
    let pk_changed = table.primary_key.iter().any(|&c| !same(&old[c], &new[c]));
    let new_key = if pk_changed {
        let k = row_key(table, &primary_key(table, new, None))?;
        if let Some(Some(_)) = exec.txn.lock_row_latest(&k, LockMode::Exclusive, WaitPolicy::Wait)? {
            return Err(Error::new(
                codes::UNIQUE_VIOLATION,
                format!("duplicate key value violates unique constraint \"{}\"", table.pk_name),
            )
            .with_detail(format!("Key {} already exists.", key_detail(table, &table.primary_key, new)))
            .on(&table.name, None, Some(&table.pk_name)));
        }
        exec.txn.delete(key)?;
        k
    } else {
        key.to_vec()
    };
    for index in &table.indexes {
        let (old_ikey, _) = index_key(index, old, key)?;
        let (new_ikey, _) = index_key(index, new, &new_key)?;
        if old_ikey == new_ikey && new_key == key {
            continue;
        }
        if let Some(_existing) = unique_conflict(exec, index, new, &new_key, Some(key))? {
            return Err(Error::new(
                codes::UNIQUE_VIOLATION,
                format!("duplicate key value violates unique constraint \"{}\"", index.name),
            )
            .with_detail(format!("Key {} already exists.", key_detail(table, &index.columns, new)))
            .on(&table.name, None, Some(&index.name)));
        }
        exec.txn.delete(&old_ikey)?;
        exec.txn.put(&new_ikey, &new_key)?;
    }
    exec.txn.put(&new_key, &eval::encode_row(new))?;
    if fk_cols_changed {
        check_parents(exec, table, new, &new_key)?;
    }
    Ok(new_key)
}

fn same(a: &Value, b: &Value) -> bool {
    eval::group_eq(a, b)
}

/// Applies the foreign keys of other tables that reference `row` of `table`, which is being
/// deleted (`new` None) or updated to `new`.
fn enforce_children(exec: &mut Exec<'_>, table: &Table, row: &Row, new: Option<&Row>) -> Result<()> {
    for child in catalog::referencing_tables(exec.txn, &table.name)? {
        let child = catalog::table(exec.txn, &child)?;
        for fk in child.foreign_keys.iter().filter(|fk| fk.table == table.name) {
            if let Some(new) = new {
                if fk.referred.iter().all(|&p| same(&row[p], &new[p])) {
                    continue; // the referenced key did not change
                }
            }
            let referenced: Vec<Value> = fk.referred.iter().map(|&p| row[p].clone()).collect();
            let children = matching_children(exec, &child, fk, &referenced)?;
            if children.is_empty() {
                continue;
            }
            let action = if new.is_some() { fk.on_update } else { fk.on_delete };
            match action {
                // NO ACTION's check may wait for the commit; RESTRICT's never does.
                ReferentialAction::NoAction if deferred_now(exec, fk) => {
                    let detail = key_detail(table, &fk.referred, row);
                    defer(
                        exec,
                        Pending::Parent {
                            table: table.name.clone(),
                            fk: fk.name.clone(),
                            child: child.name.clone(),
                            values: referenced,
                            detail,
                        },
                    )?;
                }
                ReferentialAction::NoAction | ReferentialAction::Restrict => {
                    return Err(still_referenced(table, fk, &child, &key_detail(table, &fk.referred, row)));
                }
                ReferentialAction::Cascade => {
                    for (ckey, crow) in children {
                        match new {
                            None => delete_row(exec, &child, &ckey, &crow)?,
                            Some(new) => {
                                let mut updated = crow.clone();
                                for (&c, &p) in fk.columns.iter().zip(&fk.referred) {
                                    updated[c] = new[p].clone();
                                }
                                update_row(exec, &child, &ckey, &crow, &updated)?;
                            }
                        }
                    }
                }
                ReferentialAction::SetNull => {
                    for (ckey, crow) in children {
                        let mut updated = crow.clone();
                        for &c in &fk.columns {
                            updated[c] = Value::Null;
                        }
                        update_row(exec, &child, &ckey, &crow, &updated)?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Rows of `child` whose `fk` columns equal `values`, locked exclusively.
fn matching_children(
    exec: &mut Exec<'_>,
    child: &Table,
    fk: &ForeignKey,
    values: &[Value],
) -> Result<Vec<(Vec<u8>, Row)>> {
    let prefix = keys::rows(child.id);
    let end = keycode::prefix_end(&prefix).expect("row prefix has an end");
    let mut out = Vec::new();
    // The newest committed children, not just the snapshot's: a child inserted and committed
    // concurrently must stop the delete. Locking it with the snapshot check turns a child
    // this snapshot cannot see into 40001 under REPEATABLE READ and SERIALIZABLE.
    for (k, v) in exec.txn.scan_latest(Bound::Included(prefix), Bound::Excluded(end))? {
        let row = eval::decode_row(&v)?;
        if fk.columns.iter().zip(values).all(|(&c, v)| same(&row[c], v)) {
            if let Some(Some(latest)) = exec.txn.lock_row(&k, LockMode::Exclusive, WaitPolicy::Wait)? {
                let latest = eval::decode_row(&latest)?;
                if fk.columns.iter().zip(values).all(|(&c, v)| same(&latest[c], v)) {
                    out.push((k, latest));
                }
            }
        }
    }
    Ok(out)
}

/// Converts a value for column `ty` as an assignment does (22001 for too-long strings).
pub fn assign(v: Value, ty: &DataType) -> Result<Value> {
    eval::cast(v, ty, false)
}
