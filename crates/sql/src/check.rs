//! The offline integrity check of the SQL layer (`bulwark check`): everything the catalog
//! promises about the rows, checked against what is stored, in one snapshot.
//!
//! ```text
//!   for each table:  every row decodes, has the table's column count and types,
//!                    sits under the key its primary key gives, and obeys NOT NULL
//!                    every index: each row has its entry, each entry points at a row
//!                             that has it (no orphans), unique entries are unique
//!                    every foreign key: each non-NULL child key has its parent row
//! ```
//!
//! Problems are returned, each naming the table, the constraint or index, and the key, so a
//! report says what is wrong and where; the check itself only fails on an unreadable store.

use crate::catalog::{self, keys, Table};
use crate::dml;
use crate::error::Result;
use crate::eval;
use crate::exec::row_key;
use crate::session::Database;
use crate::types::Value;
use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use storage::keycode;
use txn::{IsolationLevel, Txn, TxnOptions};

/// Stored rows: key and values.
type Rows = Vec<(Vec<u8>, Vec<Value>)>;

/// The most problems one check reports (the count of the rest is still given).
pub const PROBLEMS_REPORTED_MAX: usize = 1000;

/// What a check found.
#[derive(Debug, Default)]
pub struct Report {
    /// Tables checked.
    pub tables: usize,
    /// Rows checked.
    pub rows: u64,
    /// Index entries checked.
    pub index_entries: u64,
    /// Foreign key references checked.
    pub references: u64,
    /// The problems (at most PROBLEMS_REPORTED_MAX).
    pub problems: Vec<String>,
    /// Problems found in all.
    pub problem_count: u64,
}

impl Report {
    fn problem(&mut self, p: String) {
        self.problem_count += 1;
        if self.problems.len() < PROBLEMS_REPORTED_MAX {
            self.problems.push(p);
        }
    }
}

fn scan_prefix(txn: &mut Txn, prefix: Vec<u8>) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let end = keycode::prefix_end(&prefix).expect("prefix has an end");
    Ok(txn.scan(Bound::Included(prefix), Bound::Excluded(end), false, usize::MAX)?)
}

/// Checks every table of `db` in one snapshot.
pub fn check_database(db: &Database) -> Result<Report> {
    let opts = TxnOptions { isolation: IsolationLevel::RepeatableRead, read_only: true };
    let mut txn = db.engine().begin(opts)?;
    let mut report = Report::default();
    let names = catalog::table_names(&mut txn)?;
    let mut tables = Vec::new();
    for name in names {
        match catalog::get_table(&mut txn, &name) {
            Ok(Some(t)) => tables.push(t),
            Ok(None) => report.problem(format!("catalog: table \"{name}\" is listed but has no definition")),
            Err(e) => report.problem(format!("catalog: table \"{name}\" cannot be read: {}", e.message)),
        }
    }
    // Each table's rows, kept by key for the foreign key checks.
    let mut rows_of: HashMap<String, Rows> = HashMap::new();
    for table in &tables {
        report.tables += 1;
        let rows = check_rows(&mut txn, table, &mut report)?;
        check_indexes(&mut txn, table, &rows, &mut report)?;
        rows_of.insert(table.name.clone(), rows);
    }
    for table in &tables {
        check_foreign_keys(&mut txn, table, &rows_of, &mut report)?;
    }
    txn.rollback();
    Ok(report)
}

fn check_rows(txn: &mut Txn, table: &Table, report: &mut Report) -> Result<Rows> {
    let mut rows = Vec::new();
    for (key, bytes) in scan_prefix(txn, keys::rows(table.id))? {
        report.rows += 1;
        let at = || format!("table \"{}\", row key {}", table.name, hex(&key));
        let row = match eval::decode_row(&bytes) {
            Ok(r) => r,
            Err(e) => {
                report.problem(format!("{}: row does not decode: {}", at(), e.message));
                continue;
            }
        };
        if row.len() != table.columns.len() {
            report.problem(format!("{}: {} values for {} columns", at(), row.len(), table.columns.len()));
            continue;
        }
        for (v, col) in row.iter().zip(&table.columns) {
            if v.is_null() {
                if col.not_null {
                    report.problem(format!("{}: NULL in NOT NULL column \"{}\"", at(), col.name));
                }
                continue;
            }
            if dml::assign(v.clone(), &col.data_type).as_ref() != Ok(v) {
                report.problem(format!(
                    "{}: column \"{}\" holds a value not of type {}",
                    at(),
                    col.name,
                    col.data_type.pg_name()
                ));
            }
        }
        if !table.primary_key.is_empty() {
            let pk: Vec<Value> = table.primary_key.iter().map(|&c| row[c].clone()).collect();
            match row_key(table, &pk) {
                Ok(expected) if expected == key => {}
                Ok(_) => report.problem(format!("{}: stored under a key its primary key does not give", at())),
                Err(e) => report.problem(format!("{}: primary key cannot be encoded: {}", at(), e.message)),
            }
        }
        rows.push((key, row));
    }
    Ok(rows)
}

fn check_indexes(txn: &mut Txn, table: &Table, rows: &[(Vec<u8>, Vec<Value>)], report: &mut Report) -> Result<()> {
    for index in &table.indexes {
        let entries: Vec<(Vec<u8>, Vec<u8>)> = scan_prefix(txn, keys::index_entries(index.id))?;
        report.index_entries += entries.len() as u64;
        let stored: HashMap<&[u8], &[u8]> = entries.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
        let mut expected = BTreeSet::new();
        for (rowkey, row) in rows {
            match dml::index_key(index, row, rowkey) {
                Ok((ikey, _)) => {
                    match stored.get(ikey.as_slice()) {
                        None => report.problem(format!(
                            "index \"{}\" of table \"{}\": no entry for row key {}",
                            index.name,
                            table.name,
                            hex(rowkey)
                        )),
                        Some(points_at) if *points_at != rowkey.as_slice() => report.problem(format!(
                            "index \"{}\" of table \"{}\": the entry for row key {} points at {}{}",
                            index.name,
                            table.name,
                            hex(rowkey),
                            hex(points_at),
                            if index.unique { " (two rows share a unique key)" } else { "" }
                        )),
                        Some(_) => {}
                    }
                    expected.insert(ikey);
                }
                Err(e) => report.problem(format!(
                    "index \"{}\" of table \"{}\": row key {} cannot be indexed: {}",
                    index.name,
                    table.name,
                    hex(rowkey),
                    e.message
                )),
            }
        }
        for (ikey, rowkey) in &entries {
            if !expected.contains(ikey) {
                report.problem(format!(
                    "index \"{}\" of table \"{}\": entry {} points at row key {}, which has no such entry (orphan)",
                    index.name,
                    table.name,
                    hex(ikey),
                    hex(rowkey)
                ));
            }
        }
    }
    Ok(())
}

fn check_foreign_keys(
    txn: &mut Txn,
    table: &Table,
    rows_of: &HashMap<String, Rows>,
    report: &mut Report,
) -> Result<()> {
    for fk in &table.foreign_keys {
        let Some(parent) = catalog::get_table(txn, &fk.table)? else {
            report.problem(format!(
                "foreign key \"{}\" of table \"{}\": referenced table \"{}\" does not exist",
                fk.name, table.name, fk.table
            ));
            continue;
        };
        let parent_keys: std::collections::HashSet<Vec<eval::GroupKey>> = rows_of
            .get(&parent.name)
            .map(|rows| {
                rows.iter().map(|(_, r)| fk.referred.iter().map(|&c| eval::group_key(&r[c])).collect()).collect()
            })
            .unwrap_or_default();
        for (rowkey, row) in rows_of.get(&table.name).map(Vec::as_slice).unwrap_or(&[]) {
            if fk.columns.iter().any(|&c| row[c].is_null()) {
                continue;
            }
            report.references += 1;
            let key: Vec<eval::GroupKey> = fk
                .columns
                .iter()
                .zip(&fk.referred)
                .map(|(&c, &p)| {
                    let v = eval::cast(row[c].clone(), &parent.columns[p].data_type, false).unwrap_or(Value::Null);
                    eval::group_key(&v)
                })
                .collect();
            if !parent_keys.contains(&key) {
                report.problem(format!(
                    "foreign key \"{}\" of table \"{}\": row key {} refers to a row missing from \"{}\"",
                    fk.name,
                    table.name,
                    hex(rowkey),
                    parent.name
                ));
            }
        }
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::sync::Arc;
    use storage::vfs::SimVfs;

    fn db() -> Database {
        let opts = txn::EngineOptions { vacuum_interval: None, ..Default::default() };
        Database::open(Arc::new(SimVfs::new(3)), Path::new("/db"), opts).unwrap()
    }

    fn run(db: &Database, sql: &str) {
        for r in db.session().execute(sql) {
            r.unwrap();
        }
    }

    #[test]
    fn a_consistent_database_has_no_problems() {
        let db = db();
        run(
            &db,
            "CREATE TABLE p (id INT PRIMARY KEY, code TEXT UNIQUE);
             CREATE TABLE c (id SERIAL PRIMARY KEY, p INT REFERENCES p(id), note TEXT NOT NULL);
             CREATE INDEX c_note ON c (note);
             CREATE TABLE loose (v INT);
             INSERT INTO p VALUES (1, 'a'), (2, NULL), (3, NULL);
             INSERT INTO c (p, note) VALUES (1, 'x'), (NULL, 'y'), (3, 'x');
             INSERT INTO loose VALUES (1), (1), (NULL);
             DELETE FROM c WHERE note = 'y';",
        );
        let r = check_database(&db).unwrap();
        assert_eq!(r.problems, Vec::<String>::new());
        assert_eq!((r.tables, r.rows), (3, 8));
        assert_eq!(r.references, 2);
        assert!(r.index_entries >= 5);
    }

    #[test]
    fn missing_and_orphan_index_entries_and_lost_parents_are_named() {
        let db = db();
        run(
            &db,
            "CREATE TABLE p (id INT PRIMARY KEY);
             CREATE TABLE c (id INT PRIMARY KEY, p INT REFERENCES p(id), v TEXT);
             CREATE INDEX c_v ON c (v);
             INSERT INTO p VALUES (1), (2);
             INSERT INTO c VALUES (10, 1, 'a'), (11, 2, 'b');",
        );
        // Damage the stored data below the SQL layer: drop an index entry, add an orphan
        // one, and delete a referenced parent row.
        let mut t = db.engine().begin(TxnOptions::default()).unwrap();
        let c = catalog::table(&mut t, "c").unwrap();
        let p = catalog::table(&mut t, "p").unwrap();
        let index = &c.indexes[0];
        let row_a = vec![Value::Int4(10), Value::Int4(1), Value::Text("a".into())];
        let key_a = row_key(&c, &[Value::Int4(10)]).unwrap();
        let (ikey_a, _) = dml::index_key(index, &row_a, &key_a).unwrap();
        t.delete(&ikey_a).unwrap();
        let ghost = vec![Value::Int4(99), Value::Null, Value::Text("ghost".into())];
        let ghost_key = row_key(&c, &[Value::Int4(99)]).unwrap();
        let (ikey_ghost, _) = dml::index_key(index, &ghost, &ghost_key).unwrap();
        t.put(&ikey_ghost, &ghost_key).unwrap();
        t.delete(&row_key(&p, &[Value::Int4(2)]).unwrap()).unwrap();
        t.commit().unwrap();

        let r = check_database(&db).unwrap();
        assert_eq!(r.problem_count, 3, "{:#?}", r.problems);
        assert!(r.problems.iter().any(|p| p.contains("index \"c_v\"") && p.contains("no entry")), "{:#?}", r.problems);
        assert!(r.problems.iter().any(|p| p.contains("orphan")), "{:#?}", r.problems);
        assert!(
            r.problems.iter().any(|p| p.contains("foreign key") && p.contains("missing from \"p\"")),
            "{:#?}",
            r.problems
        );
    }
}
