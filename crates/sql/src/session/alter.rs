//! ALTER TABLE: columns, names, constraints and defaults of an existing table.
//!
//! Every action runs in the statement's transaction, so it commits or rolls back (also to a
//! savepoint) with it, like all DDL here. Actions that change how rows are stored (a column
//! added or dropped, a primary key added or dropped) rewrite the whole table:
//!
//! ```text
//!   read every row ─► map it to the new layout ─► delete old rows and index entries
//!                  ─► write rows keyed by the new primary key (or fresh hidden row numbers)
//!                     and every index entry, checking NOT NULL and uniqueness on the way
//! ```
//!
//! Adding a CHECK or FOREIGN KEY constraint, or SET NOT NULL, checks the existing rows first
//! and fails as PostgreSQL does (23514, 23503, 23502); a UNIQUE constraint or primary key
//! over duplicates fails with 23505.
//!
//! # Left out
//!
//! ALTER COLUMN TYPE, NOT VALID, CASCADE (dropping something another table depends on
//! fails with 2BP01), several columns in one DROP, ADD COLUMN positions. Concurrent writers
//! are not locked out the way PostgreSQL's ACCESS EXCLUSIVE lock does: run ALTER TABLE when
//! no other transaction writes the table.

use super::{forget_sequence, index_entry_key, sequence_key, table_scope, QueryResult, Session};
use crate::ast::{self, AlterAction, Expr, TableConstraint};
use crate::bind::Scope;
use crate::catalog::{self, keys, Column, ForeignKey, Index, Table};
use crate::dml;
use crate::error::{codes, Error, Result};
use crate::eval;
use crate::exec::{row_key, Row, Sequences};
use crate::plan::Planner;
use crate::types::{DataType, Value};
use std::collections::HashSet;
use std::ops::Bound;
use storage::keycode;
use txn::{LockMode, Txn, WaitPolicy};

/// A table's rows: (row key, values).
type Rows = Vec<(Vec<u8>, Row)>;

impl Session {
    /// Runs ALTER TABLE's actions in order.
    pub(super) fn alter_table(
        &self,
        txn: &mut Txn,
        name: &str,
        if_exists: bool,
        actions: &[AlterAction],
    ) -> Result<QueryResult> {
        let mut result = QueryResult::command("ALTER TABLE");
        if catalog::get_table(txn, name)?.is_none() {
            if if_exists {
                result.notices.push(format!("relation \"{name}\" does not exist, skipping"));
                return Ok(result);
            }
            return Err(Error::new(codes::UNDEFINED_TABLE, format!("relation \"{name}\" does not exist")));
        }
        // Hold writers off for the whole statement (and wait for those running).
        catalog::lock_table(txn, name, true)?;
        // Column positions may change: the statistics no longer describe the table.
        let id = catalog::table(txn, name)?.id;
        txn.delete(&catalog::keys::stats(id))?;
        let mut current = name.to_string();
        for action in actions {
            let table = catalog::table(txn, &current)?;
            match action {
                AlterAction::AddColumn { column, constraints, if_not_exists } => {
                    if table.columns.iter().any(|c| c.name == column.name) {
                        let message = format!("column \"{}\" of relation \"{current}\" already exists", column.name);
                        if *if_not_exists {
                            result.notices.push(format!("{message}, skipping"));
                            continue;
                        }
                        return Err(Error::new(codes::DUPLICATE_COLUMN, message));
                    }
                    self.add_column(txn, table, column)?;
                    for c in constraints {
                        let table = catalog::table(txn, &current)?;
                        self.add_constraint(txn, table, c)?;
                    }
                }
                AlterAction::DropColumn { name: column, if_exists, cascade } => {
                    if table.columns.iter().all(|c| &c.name != column) {
                        let message = format!("column \"{column}\" of relation \"{current}\" does not exist");
                        if *if_exists {
                            result.notices.push(format!("{message}, skipping"));
                            continue;
                        }
                        return Err(Error::new(codes::UNDEFINED_COLUMN, message));
                    }
                    self.drop_column(txn, table, column, *cascade, &mut result.notices)?;
                    super::views::check_views_after_alter(txn, &current, Some(column))?;
                }
                AlterAction::RenameColumn { old, new } => {
                    self.rename_column(txn, table, old, new)?;
                    super::views::check_views_after_alter(txn, &current, None)?;
                }
                AlterAction::RenameTable(new) => {
                    self.rename_table(txn, table, new)?;
                    super::views::check_views_after_alter(txn, &current, None)?;
                    current = new.clone();
                }
                AlterAction::AddConstraint(c) => self.add_constraint(txn, table, c)?,
                AlterAction::DropConstraint { name: constraint, if_exists } => {
                    if !self.drop_constraint(txn, table, constraint)? {
                        let message = format!("constraint \"{constraint}\" of relation \"{current}\" does not exist");
                        if *if_exists {
                            result.notices.push(format!("{message}, skipping"));
                            continue;
                        }
                        return Err(Error::new(codes::UNDEFINED_OBJECT, message));
                    }
                }
                AlterAction::SetDefault { column, default } => {
                    let mut table = table;
                    let c = table.column_index(column)?;
                    table.columns[c].default = default.clone();
                    catalog::put_table(txn, &table)?;
                }
                AlterAction::SetNotNull { column, not_null } => self.set_not_null(txn, table, column, *not_null)?,
                AlterAction::SetType { column, data_type, using } => {
                    self.set_type(txn, table, column, data_type, using.as_ref())?
                }
            }
        }
        Ok(result)
    }

    fn add_column(&self, txn: &mut Txn, table: Table, def: &ast::ColumnDef) -> Result<()> {
        if table.columns.len() >= catalog::COLUMNS_MAX {
            return Err(Error::new(codes::PROGRAM_LIMIT_EXCEEDED, "tables can have at most 1600 columns"));
        }
        let mut default = def.default.clone();
        if def.serial {
            let seq = format!("{}_{}_seq", table.name, def.name);
            txn.put(&sequence_key(&seq), &1i64.to_le_bytes())?;
            forget_sequence(self, &seq);
            default = Some(nextval_call(&seq));
        }
        let column = Column {
            name: def.name.clone(),
            data_type: catalog::resolve_type(txn, &def.data_type)?,
            not_null: def.not_null || def.serial,
            default: default.clone(),
            sequence: None,
        };
        let mut new = table.clone();
        new.columns.push(column);
        let c = new.columns.len() - 1;
        // The default is evaluated once per existing row (nextval gives each its own value).
        let bound = default.as_ref().map(|d| Planner::new(txn).bind(d, &Scope::default(), &[])).transpose()?;
        let mut rows = table_rows(txn, &table)?;
        for (_, row) in &mut rows {
            let v = match &bound {
                Some(b) => self.exec(txn, &[]).eval(b, &[])?,
                None => Value::Null,
            };
            let v = dml::assign(v, &new.columns[c].data_type)?;
            if v.is_null() && new.columns[c].not_null {
                return Err(contains_nulls(&new, c));
            }
            row.push(v);
        }
        self.rewrite(txn, &table, &new, rows)?;
        catalog::put_table(txn, &new)
    }

    fn drop_column(
        &self,
        txn: &mut Txn,
        table: Table,
        column: &str,
        cascade: bool,
        notices: &mut Vec<String>,
    ) -> Result<()> {
        let pos = table.column_index(column)?;
        let mut others = Vec::new();
        for other in catalog::table_names(txn)? {
            if other == table.name {
                continue;
            }
            let mut o = catalog::table(txn, &other)?;
            let on_column = |fk: &ForeignKey| fk.table == table.name && fk.referred.contains(&pos);
            if cascade && o.foreign_keys.iter().any(on_column) {
                for fk in o.foreign_keys.iter().filter(|fk| on_column(fk)) {
                    notices.push(format!("drop cascades to constraint {} on table {other}", fk.name));
                }
                o.foreign_keys.retain(|fk| !on_column(fk));
                catalog::put_table(txn, &o)?;
            }
            if let Some(fk) = o.foreign_keys.iter().find(|fk| on_column(fk)) {
                return Err(Error::new(
                    "2BP01",
                    format!("cannot drop column {column} of table {} because other objects depend on it", table.name),
                )
                .with_detail(format!(
                    "constraint {} on table {other} depends on column {column} of table {}",
                    fk.name, table.name
                )));
            }
            if o.foreign_keys.iter().any(|fk| fk.table == table.name) {
                others.push(o);
            }
        }
        // Constraints and indexes involving the column go with it, as in PostgreSQL.
        let shift = |cols: &[usize]| cols.iter().map(|&c| if c > pos { c - 1 } else { c }).collect::<Vec<_>>();
        let mut new = table.clone();
        new.columns.remove(pos);
        for index in table.indexes.iter().filter(|i| i.columns.contains(&pos)) {
            txn.delete(&keys::index(&index.name))?;
            catalog::drop_comments(txn, &index.name)?;
        }
        catalog::move_column_comment(txn, &table.name, column, None)?;
        new.indexes.retain(|i| !i.columns.contains(&pos));
        for index in &mut new.indexes {
            index.columns = shift(&index.columns);
        }
        if table.primary_key.contains(&pos) {
            new.primary_key.clear();
            txn.delete(&keys::index(&table.pk_name))?;
            self.create_rowid_sequence(txn, &new)?;
        } else {
            new.primary_key = shift(&new.primary_key);
        }
        new.checks.retain(|(_, e)| !mentions_column(e, column));
        new.foreign_keys.retain(|fk| !fk.columns.contains(&pos));
        for fk in &mut new.foreign_keys {
            fk.columns = shift(&fk.columns);
            if fk.table == table.name {
                fk.referred = shift(&fk.referred);
            }
        }
        for mut o in others {
            for fk in o.foreign_keys.iter_mut().filter(|fk| fk.table == table.name) {
                fk.referred = shift(&fk.referred);
            }
            catalog::put_table(txn, &o)?;
        }
        if let Some(seq) = owned_sequence(&table, &table.columns[pos]) {
            txn.delete(&sequence_key(&seq))?;
            forget_sequence(self, &seq);
        }
        let mut rows = table_rows(txn, &table)?;
        for (_, row) in &mut rows {
            row.remove(pos);
        }
        self.rewrite(txn, &table, &new, rows)?;
        catalog::put_table(txn, &new)
    }

    fn rename_column(&self, txn: &mut Txn, mut table: Table, old: &str, new: &str) -> Result<()> {
        let pos = table.column_index(old)?;
        if table.columns.iter().any(|c| c.name == new) {
            return Err(Error::new(
                codes::DUPLICATE_COLUMN,
                format!("column \"{new}\" of relation \"{}\" already exists", table.name),
            ));
        }
        // A serial column's sequence keeps the `<table>_<column>_seq` name that DROP TABLE
        // looks for.
        if let Some(seq) = owned_sequence(&table, &table.columns[pos]) {
            let renamed = format!("{}_{new}_seq", table.name);
            self.move_sequence(txn, &seq, &renamed)?;
            table.columns[pos].default = Some(nextval_call(&renamed));
        }
        table.columns[pos].name = new.to_string();
        for (_, e) in &mut table.checks {
            rename_column_in(e, old, new);
        }
        catalog::move_column_comment(txn, &table.name, old, Some(new))?;
        catalog::put_table(txn, &table)
    }

    fn rename_table(&self, txn: &mut Txn, mut table: Table, new: &str) -> Result<()> {
        if catalog::get_table(txn, new)?.is_some() || txn.get(&keys::index(new))?.is_some() {
            return Err(Error::new(codes::DUPLICATE_TABLE, format!("relation \"{new}\" already exists")));
        }
        let old = table.name.clone();
        txn.delete(&keys::table(&old))?;
        catalog::rename_comments(txn, &old, new)?;
        table.name = new.to_string();
        for index in &table.indexes {
            txn.put(&keys::index(&index.name), new.as_bytes())?;
        }
        if !table.primary_key.is_empty() {
            txn.put(&keys::index(&table.pk_name), new.as_bytes())?;
        } else {
            self.move_sequence(txn, &format!("{old}_rowid_seq"), &format!("{new}_rowid_seq"))?;
        }
        for c in 0..table.columns.len() {
            let Some(seq) = owned_sequence(&Table { name: old.clone(), ..table.clone() }, &table.columns[c]) else {
                continue;
            };
            let renamed = format!("{new}_{}_seq", table.columns[c].name);
            self.move_sequence(txn, &seq, &renamed)?;
            table.columns[c].default = Some(nextval_call(&renamed));
        }
        for fk in table.foreign_keys.iter_mut().filter(|fk| fk.table == old) {
            fk.table = new.to_string();
        }
        for other in catalog::table_names(txn)? {
            let mut o = catalog::table(txn, &other)?;
            if o.foreign_keys.iter().any(|fk| fk.table == old) {
                for fk in o.foreign_keys.iter_mut().filter(|fk| fk.table == old) {
                    fk.table = new.to_string();
                }
                catalog::put_table(txn, &o)?;
            }
        }
        catalog::put_table(txn, &table)
    }

    /// ALTER COLUMN ... TYPE: every row rewritten with the column's value cast (or the
    /// USING expression's), through the same checks and index maintenance as an UPDATE.
    fn set_type(&self, txn: &mut Txn, table: Table, column: &str, to: &DataType, using: Option<&Expr>) -> Result<()> {
        let c = table.column_index(column)?;
        let to = &catalog::resolve_type(txn, to)?;
        if let Some(view) = super::views::view_reading(txn, &table.name)? {
            return Err(Error::new(
                codes::FEATURE_NOT_SUPPORTED,
                "cannot alter type of a column used by a view or rule",
            )
            .with_detail(format!("view {view} depends on column \"{column}\"")));
        }
        let in_fk = table.foreign_keys.iter().any(|fk| fk.columns.contains(&c))
            || catalog::referencing_tables(txn, &table.name)?.iter().any(|child| {
                catalog::table(txn, child)
                    .is_ok_and(|t| t.foreign_keys.iter().any(|fk| fk.table == table.name && fk.referred.contains(&c)))
            });
        if in_fk {
            return Err(Error::unsupported(
                "ALTER COLUMN ... TYPE of a column in a foreign key (drop the constraint first)",
            ));
        }
        // As PostgreSQL's assignment casts: strings do not become other types, nor booleans
        // integers or the reverse, without USING.
        let from = table.columns[c].data_type.base();
        let string = |t: &DataType| matches!(t, DataType::Text | DataType::Varchar(_) | DataType::Char(_));
        let int = |t: &DataType| matches!(t, DataType::Int2 | DataType::Int4 | DataType::Int8);
        let automatic = (string(&from) == string(&to.base()) || string(&to.base()))
            && !(from == DataType::Bool && int(&to.base()))
            && !(int(&from) && to.base() == DataType::Bool);
        if using.is_none() && !automatic {
            return Err(Error::new(
                codes::DATATYPE_MISMATCH,
                format!("column \"{column}\" cannot be cast automatically to type {}", to.type_name()),
            )
            .with_hint(format!("You might need to specify \"USING {column}::{to}\".")));
        }
        let mut new = table.clone();
        new.columns[c].data_type = to.clone();
        let scope = table_scope(&table, &table.name);
        let bound = using.map(|e| Planner::new(txn).bind(e, &scope, &[])).transpose()?;
        for (key, row) in table_rows(txn, &table)? {
            let mut exec = self.exec(txn, &[]);
            let value = match &bound {
                Some(b) => exec.eval(b, &row)?,
                None => row[c].clone(),
            };
            let mut changed = row.clone();
            changed[c] = dml::assign(value, to)?;
            dml::update_row(&mut exec, &new, &key, &row, &changed)?;
        }
        catalog::put_table(txn, &new)
    }

    fn set_not_null(&self, txn: &mut Txn, mut table: Table, column: &str, not_null: bool) -> Result<()> {
        let c = table.column_index(column)?;
        if !not_null && table.primary_key.contains(&c) {
            return Err(Error::new("42P16", format!("column \"{column}\" is in a primary key")));
        }
        if not_null && table_rows(txn, &table)?.iter().any(|(_, row)| row[c].is_null()) {
            return Err(contains_nulls(&table, c));
        }
        table.columns[c].not_null = not_null;
        catalog::put_table(txn, &table)
    }

    fn add_constraint(&self, txn: &mut Txn, table: Table, constraint: &TableConstraint) -> Result<()> {
        let positions = |cols: &[String]| -> Result<Vec<usize>> {
            cols.iter()
                .map(|c| {
                    table.column_index(c).map_err(|_| {
                        Error::new(codes::UNDEFINED_COLUMN, format!("column \"{c}\" named in key does not exist"))
                    })
                })
                .collect()
        };
        let t = table.name.clone();
        match constraint {
            TableConstraint::PrimaryKey { name, columns } => {
                if !table.primary_key.is_empty() {
                    return Err(Error::new(
                        "42P16",
                        format!("multiple primary keys for table \"{t}\" are not allowed"),
                    ));
                }
                let mut new = table.clone();
                new.primary_key = positions(columns)?;
                new.pk_name = name.clone().unwrap_or_else(|| format!("{t}_pkey"));
                self.check_relation_name_free(txn, &new.pk_name)?;
                let rows = table_rows(txn, &table)?;
                for &c in &new.primary_key {
                    if rows.iter().any(|(_, row)| row[c].is_null()) {
                        return Err(contains_nulls(&table, c));
                    }
                    new.columns[c].not_null = true;
                }
                self.rewrite(txn, &table, &new, rows)?;
                let rowid = format!("{t}_rowid_seq");
                txn.delete(&sequence_key(&rowid))?;
                forget_sequence(self, &rowid);
                txn.put(&keys::index(&new.pk_name), t.as_bytes())?;
                catalog::put_table(txn, &new)
            }
            TableConstraint::Unique { name, columns } => {
                let cols = positions(columns)?;
                let iname = name.clone().unwrap_or_else(|| format!("{t}_{}_key", columns.join("_")));
                self.check_relation_name_free(txn, &iname)?;
                let index = Index {
                    id: catalog::next_id(txn)?,
                    name: iname.clone(),
                    columns: cols,
                    unique: true,
                    constraint: true,
                };
                let mut seen = HashSet::new();
                for (key, row) in table_rows(txn, &table)? {
                    let ikey = index_entry_key(&index, &row, &key)?;
                    if !seen.insert(ikey.clone()) {
                        return Err(duplicated(&iname, &table, &index.columns, &row));
                    }
                    txn.put(&ikey, &key)?;
                }
                txn.put(&keys::index(&iname), t.as_bytes())?;
                let mut new = table;
                new.indexes.push(index);
                catalog::put_table(txn, &new)
            }
            TableConstraint::Check { name, expr } => {
                let cname = name.clone().unwrap_or_else(|| check_name(&t, expr));
                self.check_constraint_name_free(&table, &cname)?;
                let scope = table_scope(&table, &t);
                let bound = Planner::new(txn).bind(expr, &scope, &[])?;
                for (_, row) in table_rows(txn, &table)? {
                    if eval::truth(&self.exec(txn, &[]).eval(&bound, &row)?)? == Some(false) {
                        return Err(Error::new(
                            codes::CHECK_VIOLATION,
                            format!("check constraint \"{cname}\" of relation \"{t}\" is violated by some row"),
                        ));
                    }
                }
                let mut new = table;
                new.checks.push((cname, expr.clone()));
                catalog::put_table(txn, &new)
            }
            TableConstraint::ForeignKey {
                name,
                columns,
                foreign_table,
                referred_columns,
                on_delete,
                on_update,
                deferrable,
                initially_deferred,
            } => {
                let cols = positions(columns)?;
                let parent = catalog::table(txn, foreign_table)?;
                let referred = if referred_columns.is_empty() {
                    parent.primary_key.clone()
                } else {
                    referred_columns.iter().map(|c| parent.column_index(c)).collect::<Result<Vec<_>>>()?
                };
                let keyed = (!referred.is_empty() && referred == parent.primary_key)
                    || parent.indexes.iter().any(|i| i.unique && i.columns == referred);
                if !keyed || referred.len() != cols.len() {
                    return Err(Error::new(
                        "42830",
                        format!(
                            "there is no unique constraint matching given keys for referenced table \"{}\"",
                            parent.name
                        ),
                    ));
                }
                let fk = ForeignKey {
                    name: name.clone().unwrap_or_else(|| format!("{t}_{}_fkey", columns.join("_"))),
                    columns: cols,
                    table: foreign_table.clone(),
                    referred,
                    on_delete: *on_delete,
                    on_update: *on_update,
                    deferrable: *deferrable,
                    initially_deferred: *initially_deferred,
                };
                self.check_constraint_name_free(&table, &fk.name)?;
                // The rows already there are checked now, deferrable or not.
                let now = ForeignKey { deferrable: false, initially_deferred: false, ..fk.clone() };
                let only_this = Table { foreign_keys: vec![now], ..table.clone() };
                for (key, row) in table_rows(txn, &table)? {
                    dml::check_parents(&mut self.exec(txn, &[]), &only_this, &row, &key)?;
                }
                let mut new = table;
                new.foreign_keys.push(fk);
                catalog::put_table(txn, &new)
            }
        }
    }

    /// Drops the named constraint; false if the table has none of that name.
    fn drop_constraint(&self, txn: &mut Txn, table: Table, name: &str) -> Result<bool> {
        let mut new = table.clone();
        if let Some(i) = new.checks.iter().position(|(n, _)| n == name) {
            new.checks.remove(i);
        } else if let Some(i) = new.foreign_keys.iter().position(|fk| fk.name == name) {
            new.foreign_keys.remove(i);
        } else if let Some(i) = new.indexes.iter().position(|ix| ix.constraint && ix.name == name) {
            self.refuse_if_referenced(txn, &table, &table.indexes[i].columns, name)?;
            let index = new.indexes.remove(i);
            let prefix = keys::index_entries(index.id);
            let end = keycode::prefix_end(&prefix).expect("prefix has an end");
            for (k, _) in txn.scan_latest(Bound::Included(prefix), Bound::Excluded(end))? {
                txn.delete(&k)?;
            }
            txn.delete(&keys::index(name))?;
        } else if !table.primary_key.is_empty() && table.pk_name == name {
            self.refuse_if_referenced(txn, &table, &table.primary_key, name)?;
            new.primary_key.clear();
            txn.delete(&keys::index(name))?;
            self.create_rowid_sequence(txn, &new)?;
            let rows = table_rows(txn, &table)?;
            self.rewrite(txn, &table, &new, rows)?;
        } else {
            return Ok(false);
        }
        catalog::put_table(txn, &new)?;
        Ok(true)
    }

    /// 2BP01 if a foreign key (of any table) references `cols` of `table`.
    fn refuse_if_referenced(&self, txn: &mut Txn, table: &Table, cols: &[usize], name: &str) -> Result<()> {
        for other in catalog::table_names(txn)? {
            let o = if other == table.name { table.clone() } else { catalog::table(txn, &other)? };
            if let Some(fk) = o.foreign_keys.iter().find(|fk| fk.table == table.name && fk.referred == cols) {
                return Err(Error::new(
                    "2BP01",
                    format!("cannot drop constraint {name} on table {} because other objects depend on it", table.name),
                )
                .with_detail(format!("constraint {} on table {other} depends on index {name}", fk.name)));
            }
        }
        Ok(())
    }

    fn check_relation_name_free(&self, txn: &mut Txn, name: &str) -> Result<()> {
        if catalog::get_table(txn, name)?.is_some() || txn.get(&keys::index(name))?.is_some() {
            return Err(Error::new(codes::DUPLICATE_TABLE, format!("relation \"{name}\" already exists")));
        }
        Ok(())
    }

    fn check_constraint_name_free(&self, table: &Table, name: &str) -> Result<()> {
        let taken = (!table.primary_key.is_empty() && table.pk_name == name)
            || table.indexes.iter().any(|i| i.constraint && i.name == name)
            || table.checks.iter().any(|(n, _)| n == name)
            || table.foreign_keys.iter().any(|fk| fk.name == name);
        if taken {
            return Err(Error::new(
                "42710",
                format!("constraint \"{name}\" for relation \"{}\" already exists", table.name),
            ));
        }
        Ok(())
    }

    /// A table that loses its primary key is keyed by hidden row numbers from now on.
    fn create_rowid_sequence(&self, txn: &mut Txn, table: &Table) -> Result<()> {
        let seq = format!("{}_rowid_seq", table.name);
        txn.put(&sequence_key(&seq), &1i64.to_le_bytes())?;
        forget_sequence(self, &seq);
        Ok(())
    }

    /// Moves a sequence's next value to a new name (locking it, so no session hands out
    /// values from the old name meanwhile).
    fn move_sequence(&self, txn: &mut Txn, from: &str, to: &str) -> Result<()> {
        let value = match txn.lock_row_latest(&sequence_key(from), LockMode::Exclusive, WaitPolicy::Wait)? {
            Some(Some(v)) => v,
            _ => return Ok(()),
        };
        txn.delete(&sequence_key(from))?;
        txn.put(&sequence_key(to), &value)?;
        forget_sequence(self, from);
        forget_sequence(self, to);
        Ok(())
    }

    /// Replaces every row of `old` by `rows` (already in `new`'s layout): old rows and index
    /// entries go, new ones are written under `new`'s keys, checking the primary key and
    /// unique indexes for duplicates. A row whose key and stored bytes come out unchanged
    /// (a primary key added over hidden row numbers that equal it, as a bulk load followed
    /// by ADD PRIMARY KEY gives) is left as it is rather than written again: a new version
    /// of every row would double the table until vacuum, and leave its pages half empty.
    fn rewrite(&self, txn: &mut Txn, old: &Table, new: &Table, rows: Rows) -> Result<()> {
        assert_eq!(old.id, new.id, "a rewrite keeps the table's id");
        let mut writes = Vec::with_capacity(rows.len());
        let mut seen = HashSet::new();
        for (old_key, row) in rows {
            assert_eq!(row.len(), new.columns.len(), "a rewritten row has the new table's width");
            let key = if new.primary_key.is_empty() {
                if old.primary_key.is_empty() {
                    old_key.clone()
                } else {
                    let rowid = self.next_rowid(txn, &new.name)?;
                    row_key(new, &[Value::Int8(rowid)])?
                }
            } else {
                let pk: Vec<Value> = new.primary_key.iter().map(|&c| row[c].clone()).collect();
                let key = row_key(new, &pk)?;
                if !seen.insert(key.clone()) {
                    return Err(duplicated(&new.pk_name, new, &new.primary_key, &row));
                }
                key
            };
            writes.push((old_key, key, row));
        }
        // Unchanged rows stay; every other old row and every old index entry goes.
        let mut unchanged = HashSet::new();
        for (old_key, key, row) in &writes {
            if old_key == key && txn.get(key)?.is_some_and(|bytes| bytes == eval::encode_row(row)) {
                unchanged.insert(key.clone());
            }
        }
        self.delete_all_but(txn, old, &unchanged)?;
        for (_, key, row) in writes {
            if !unchanged.contains(&key) {
                txn.put(&key, &eval::encode_row(&row))?;
            }
            for index in &new.indexes {
                let ikey = index_entry_key(index, &row, &key)?;
                if index.unique && !seen.insert(ikey.clone()) {
                    return Err(duplicated(&index.name, new, &index.columns, &row));
                }
                txn.put(&ikey, &key)?;
            }
        }
        Ok(())
    }
}

/// Every row of `table`, in key order: the newest committed rows, since DDL holds the
/// table's exclusive lock and must rewrite rows committed after its snapshot too.
fn table_rows(txn: &mut Txn, table: &Table) -> Result<Rows> {
    let prefix = keys::rows(table.id);
    let end = keycode::prefix_end(&prefix).expect("prefix has an end");
    txn.scan_latest(Bound::Included(prefix), Bound::Excluded(end))?
        .into_iter()
        .map(|(k, v)| Ok((k, eval::decode_row(&v)?)))
        .collect()
}

fn contains_nulls(table: &Table, c: usize) -> Error {
    Error::new(
        codes::NOT_NULL_VIOLATION,
        format!("column \"{}\" of relation \"{}\" contains null values", table.columns[c].name, table.name),
    )
}

fn duplicated(index: &str, table: &Table, cols: &[usize], row: &[Value]) -> Error {
    let names: Vec<&str> = cols.iter().map(|&c| table.columns[c].name.as_str()).collect();
    let values: Vec<String> = cols.iter().map(|&c| eval::to_text(&row[c]).unwrap_or_else(|| "null".into())).collect();
    Error::new(codes::UNIQUE_VIOLATION, format!("could not create unique index \"{index}\"")).with_detail(format!(
        "Key ({})=({}) is duplicated.",
        names.join(", "),
        values.join(", ")
    ))
}

/// PostgreSQL's name for an unnamed CHECK: `<table>_<column>_check` if it mentions one
/// column, else `<table>_check`.
pub(super) fn check_name(table: &str, expr: &Expr) -> String {
    let mut cols: Vec<String> = Vec::new();
    crate::bind::visit(expr, &mut |e| {
        if let Expr::Column { name, .. } = e {
            if !cols.contains(name) {
                cols.push(name.clone());
            }
        }
    });
    match cols.first() {
        Some(c) if cols.len() == 1 => format!("{table}_{c}_check"),
        _ => format!("{table}_check"),
    }
}

fn mentions_column(e: &Expr, column: &str) -> bool {
    let mut found = false;
    crate::bind::visit(e, &mut |x| {
        if matches!(x, Expr::Column { name, .. } if name == column) {
            found = true;
        }
    });
    found
}

fn rename_column_in(e: &mut Expr, old: &str, new: &str) {
    crate::bind::visit_mut(e, &mut |x| {
        if let Expr::Column { name, .. } = x {
            if name == old {
                *name = new.to_string();
            }
        }
    });
}

fn nextval_call(seq: &str) -> Expr {
    Expr::Function {
        name: "nextval".into(),
        args: vec![Expr::Literal(Value::Text(seq.to_string()))],
        distinct: false,
        star: false,
        order_by: vec![],
    }
}

/// The sequence a SERIAL column owns: its default is `nextval('<table>_<column>_seq')`.
pub(super) fn owned_sequence(table: &Table, column: &Column) -> Option<String> {
    let own = format!("{}_{}_seq", table.name, column.name);
    match &column.default {
        Some(Expr::Function { name, args, .. }) if name == "nextval" => match args.as_slice() {
            [Expr::Literal(Value::Text(s))] if *s == own => Some(own),
            _ => None,
        },
        _ => None,
    }
}
