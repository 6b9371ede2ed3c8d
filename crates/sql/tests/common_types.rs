//! Values of several expressions that meet in one result column take their common type,
//! as PostgreSQL resolves it: the column's type (what clients get in RowDescription, and
//! what the server converts every value to) and each value agree. Before, the first
//! branch's type won and later values were converted to it: `greatest(1, 2.5)` was 3.

use sql::{DataType, Database, Session, Value};
use std::path::Path;
use std::sync::Arc;
use storage::vfs::SimVfs;
use txn::EngineOptions;

fn exec(s: &mut Session, sql: &str) -> sql::QueryResult {
    let mut last = None;
    for r in s.execute(sql) {
        last = Some(r.unwrap_or_else(|e| panic!("{sql}: {e}")));
    }
    last.expect("a statement")
}

fn numeric() -> DataType {
    DataType::Numeric { precision: None, scale: None }
}

/// The result columns' types and the first row's values as text.
fn typed(s: &mut Session, sql: &str) -> (Vec<Option<DataType>>, Vec<String>) {
    let r = exec(s, sql);
    let types = r.columns.expect("rows").into_iter().map(|c| Some(c.data_type)).collect();
    let row = r.rows.first().expect("a row").iter().map(|v| sql::eval::to_text(v).unwrap_or_default()).collect();
    (types, row)
}

#[test]
fn case_coalesce_greatest_values_and_union_take_the_common_type() {
    let opts = EngineOptions { vacuum_interval: None, ..Default::default() };
    let db = Database::open(Arc::new(SimVfs::new(3)), Path::new("/db"), opts).expect("open");
    let mut s = db.session();
    exec(&mut s, "CREATE TABLE m (id INT PRIMARY KEY, amt NUMERIC(8,2), f FLOAT8, big BIGINT)");
    exec(&mut s, "INSERT INTO m VALUES (1, 10.75, 2.5, 3000000000)");

    let cases: &[(&str, Vec<DataType>, Vec<&str>)] = &[
        ("SELECT greatest(1, 2.5), least(3, 2.5, 10)", vec![numeric(), numeric()], vec!["2.5", "2.5"]),
        ("SELECT CASE WHEN id = 1 THEN 0 ELSE amt END FROM m", vec![numeric()], vec!["0"]),
        ("SELECT CASE WHEN id = 0 THEN 0 ELSE amt END FROM m", vec![numeric()], vec!["10.75"]),
        ("SELECT CASE WHEN id = 0 THEN 0 ELSE f END FROM m", vec![DataType::Float8], vec!["2.5"]),
        ("SELECT CASE WHEN id = 0 THEN 10 ELSE big END FROM m", vec![DataType::Int8], vec!["3000000000"]),
        (
            "SELECT coalesce(amt, 0), coalesce(big, 1) FROM m",
            vec![numeric(), DataType::Int8],
            vec!["10.75", "3000000000"],
        ),
        ("SELECT * FROM (VALUES (1), (2.5)) v ORDER BY 1 DESC", vec![numeric()], vec!["2.5"]),
        ("SELECT 1 UNION ALL SELECT 2.5 ORDER BY 1 DESC", vec![numeric()], vec!["2.5"]),
        ("SELECT 1 UNION SELECT 3000000000 ORDER BY 1 DESC", vec![DataType::Int8], vec!["3000000000"]),
        ("SELECT sum(x) FROM (SELECT 1::bigint AS x UNION ALL SELECT 1) q", vec![numeric()], vec!["2"]),
        ("SELECT id FROM m UNION ALL SELECT amt FROM m ORDER BY 1 DESC", vec![numeric()], vec!["10.75"]),
        ("SELECT sum(CASE WHEN amt IS NULL THEN 0 ELSE amt END) FROM m", vec![numeric()], vec!["10.75"]),
        // Unchanged where the types already agree, or a NULL or quoted literal adapts.
        (
            "SELECT coalesce(id, 0), CASE WHEN id = 1 THEN 'one' ELSE 'other' END FROM m",
            vec![DataType::Int4, DataType::Text],
            vec!["1", "one"],
        ),
        (
            "SELECT coalesce(NULL, amt) FROM m",
            vec![DataType::Numeric { precision: Some(8), scale: Some(2) }],
            vec!["10.75"],
        ),
        (
            "SELECT CASE WHEN id = 1 THEN '2024-01-02' ELSE now()::date END FROM m",
            vec![DataType::Date],
            vec!["2024-01-02"],
        ),
    ];
    for (sql, types, row) in cases {
        let (got_types, got_row) = typed(&mut s, sql);
        assert_eq!(got_types, types.iter().cloned().map(Some).collect::<Vec<_>>(), "{sql}");
        assert_eq!(got_row, *row, "{sql}");
    }
    // Each value already has the column's type: a client converting values by the declared
    // type loses nothing.
    let r = exec(&mut s, "SELECT * FROM (VALUES (1), (2.5)) v ORDER BY 1");
    assert!(r.rows.iter().all(|row| matches!(row[0], Value::Numeric(_))), "{:?}", r.rows);
}
