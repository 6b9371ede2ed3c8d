//! Runs every `tests/slt/*.slt` file (sqllogictest format) against a fresh in-process
//! database on the simulated disk. Expected errors are written as
//! `statement error <SQLSTATE>` or `query error <SQLSTATE>`: an error's text ends with its
//! SQLSTATE in parentheses, so the pattern matches the code.
//!
//! `cargo test -p bulwark-sql --test slt [NAME]` runs the files whose name contains NAME.

use sql::{DataType, Database, Session, Value};
use sqllogictest::{DBOutput, DefaultColumnType, Runner};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use storage::vfs::SimVfs;
use txn::EngineOptions;

struct Conn {
    session: Session,
}

fn text(v: &Value) -> String {
    match sql::eval::to_text(v) {
        None => "NULL".into(),
        Some(s) if s.is_empty() => "(empty)".into(),
        Some(s) => s,
    }
}

impl sqllogictest::DB for Conn {
    type Error = sql::Error;
    type ColumnType = DefaultColumnType;

    fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, sql::Error> {
        let mut last = None;
        for r in self.session.execute(sql) {
            last = Some(r?);
        }
        let Some(r) = last else { return Ok(DBOutput::StatementComplete(0)) };
        Ok(match r.columns {
            Some(cols) => DBOutput::Rows {
                types: cols
                    .iter()
                    .map(|c| match c.data_type {
                        DataType::Int2 | DataType::Int4 | DataType::Int8 => DefaultColumnType::Integer,
                        DataType::Float4 | DataType::Float8 | DataType::Numeric { .. } => {
                            DefaultColumnType::FloatingPoint
                        }
                        DataType::Text | DataType::Varchar(_) | DataType::Char(_) => DefaultColumnType::Text,
                        _ => DefaultColumnType::Any,
                    })
                    .collect(),
                rows: r.rows.iter().map(|row| row.iter().map(text).collect()).collect(),
            },
            None => {
                let n = r.tag.rsplit(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0);
                DBOutput::StatementComplete(n)
            }
        })
    }

    fn engine_name(&self) -> &str {
        "bulwark"
    }

    fn error_sql_state(err: &sql::Error) -> Option<String> {
        Some(err.code.to_string())
    }
}

fn files(filter: Option<&str>) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/slt exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .filter(|p| filter.is_none_or(|f| p.to_string_lossy().contains(f)))
        .collect();
    files.sort();
    files
}

fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let (mut passed, mut failed) = (0, 0);
    for path in files(filter.as_deref()) {
        let vfs = SimVfs::new(0);
        let opts = EngineOptions { vacuum_interval: None, ..Default::default() };
        let db = Database::open(Arc::new(vfs), Path::new("/db"), opts).expect("open database");
        let mut runner = Runner::new(move || {
            let session = db.session();
            async move { Ok(Conn { session }) }
        });
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        match runner.run_file(&path) {
            Ok(()) => {
                println!("test {name} ... ok");
                passed += 1;
            }
            Err(e) => {
                println!("test {name} ... FAILED\n{}", e.display(true));
                failed += 1;
            }
        }
    }
    println!();
    println!("slt: {passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
