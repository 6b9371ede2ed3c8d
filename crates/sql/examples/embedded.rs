//! Bulwark embedded in a program, the way one would use SQLite: open a data directory in
//! process, run SQL with parameters, read typed values.
//!
//! Run with `cargo run -p bulwark-sql --example embedded -- /tmp/bulwark-embedded`.

use sql::{Database, Value};
use std::path::PathBuf;
use std::sync::Arc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "./bulwark-embedded".into()));
    let db = Database::open(Arc::new(storage::vfs::RealVfs), &dir, txn::EngineOptions::default())?;
    let mut session = db.session();

    // Statements run in order; the first error stops the batch and is returned.
    for result in session.execute(
        "CREATE TABLE IF NOT EXISTS notes (id BIGSERIAL PRIMARY KEY, body TEXT NOT NULL, stars INT CHECK (stars BETWEEN 0 AND 5))",
    ) {
        result?;
    }

    // Parameters are $1..$n; every commit is durable when execute returns.
    for (body, stars) in [("write the runbook", 5), ("water the plants", 3)] {
        for result in session.execute_with(
            "INSERT INTO notes (body, stars) VALUES ($1, $2)",
            &[Value::Text(body.into()), Value::Int4(stars)],
        ) {
            result?;
        }
    }

    // A constraint violation is an error with PostgreSQL's SQLSTATE.
    let err = session.execute("INSERT INTO notes (body, stars) VALUES ('too many', 9)").pop().unwrap().unwrap_err();
    println!("rejected: {} (SQLSTATE {})", err.message, err.code);

    // Rows come back as typed values.
    let result =
        session.execute_with("SELECT id, body, stars FROM notes WHERE stars >= $1 ORDER BY id", &[Value::Int4(3)]);
    for row in result.into_iter().last().unwrap()?.rows {
        if let [Value::Int8(id), Value::Text(body), Value::Int4(stars)] = row.as_slice() {
            println!("{id}: {body} ({stars} stars)");
        }
    }
    Ok(())
}
