//! `bulwark sql`: a SQL shell that connects to a running server over the wire protocol.
//!
//! `-c SQL` runs the statements and exits (1 if one failed). Without it, an interactive
//! prompt: statements may span lines and run when a line ends with `;`; `\timing` toggles
//! timing, `\q` quits; history is kept in `~/.bulwark_history`.

use std::process::ExitCode;
use std::time::Instant;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

/// Options of `bulwark sql`.
#[derive(clap::Args)]
pub struct SqlArgs {
    /// The server to connect to.
    #[arg(long, default_value = "postgres://bulwark@127.0.0.1:5433/bulwark")]
    url: String,
    /// Run these statements and exit.
    #[arg(short = 'c', long = "command")]
    command: Option<String>,
}

/// The history file's name in the home directory.
const HISTORY_FILE: &str = ".bulwark_history";

/// Runs the shell.
pub fn run(args: &SqlArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let client = match tokio_postgres::connect(&args.url, NoTls).await {
            Ok((client, connection)) => {
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        eprintln!("connection lost: {e}");
                    }
                });
                client
            }
            Err(e) => {
                eprintln!("cannot connect to {}: {e}", args.url);
                return ExitCode::FAILURE;
            }
        };
        match &args.command {
            Some(sql) => {
                if execute(&client, sql, false).await {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
            None => interactive(&client).await,
        }
    })
}

async fn interactive(client: &Client) -> ExitCode {
    let mut editor = match rustyline::DefaultEditor::new() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("cannot start the line editor: {e}");
            return ExitCode::FAILURE;
        }
    };
    let history = std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(HISTORY_FILE));
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    println!("bulwark sql: statements end with ';', \\timing toggles timing, \\q quits");
    let (mut buffer, mut timing) = (String::new(), false);
    loop {
        let prompt = if buffer.is_empty() { "bulwark=> " } else { "bulwark-> " };
        let line = match editor.readline(prompt) {
            Ok(line) => line,
            Err(rustyline::error::ReadlineError::Interrupted) => {
                buffer.clear();
                continue;
            }
            Err(_) => break, // end of input
        };
        let trimmed = line.trim();
        if buffer.is_empty() && trimmed.starts_with('\\') {
            let _ = editor.add_history_entry(trimmed);
            match trimmed {
                "\\q" => break,
                "\\timing" => {
                    timing = !timing;
                    println!("Timing is {}.", if timing { "on" } else { "off" });
                }
                other => println!("unknown command {other}: try \\timing or \\q"),
            }
            continue;
        }
        if !buffer.is_empty() {
            buffer.push('\n');
        }
        buffer.push_str(&line);
        if trimmed.ends_with(';') {
            let _ = editor.add_history_entry(buffer.as_str());
            execute(client, &buffer, timing).await;
            buffer.clear();
        }
    }
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    ExitCode::SUCCESS
}

/// Runs `sql` and prints its results; false if it failed.
async fn execute(client: &Client, sql: &str, timing: bool) -> bool {
    let start = Instant::now();
    let result = client.simple_query(sql).await;
    let ok = match result {
        Ok(messages) => {
            print_results(&messages);
            true
        }
        Err(e) => {
            match e.as_db_error() {
                Some(db) => {
                    println!("ERROR:  {} (SQLSTATE {})", db.message(), db.code().code());
                    if let Some(detail) = db.detail() {
                        println!("DETAIL:  {detail}");
                    }
                    if let Some(hint) = db.hint() {
                        println!("HINT:  {hint}");
                    }
                }
                None => println!("ERROR:  {e}"),
            }
            false
        }
    };
    if timing {
        println!("Time: {:.3} ms", start.elapsed().as_secs_f64() * 1000.0);
    }
    ok
}

/// Prints each result set as an aligned table, as psql does.
fn print_results(messages: &[SimpleQueryMessage]) {
    let mut header: Option<Vec<String>> = None;
    let mut rows: Vec<Vec<String>> = Vec::new();
    for m in messages {
        match m {
            SimpleQueryMessage::RowDescription(cols) => {
                header = Some(cols.iter().map(|c| c.name().to_string()).collect());
                rows.clear();
            }
            SimpleQueryMessage::Row(row) => {
                if header.is_none() {
                    header = Some(row.columns().iter().map(|c| c.name().to_string()).collect());
                }
                rows.push((0..row.len()).map(|i| row.get(i).unwrap_or("").to_string()).collect());
            }
            SimpleQueryMessage::CommandComplete(n) => {
                match header.take() {
                    Some(h) => print_table(&h, &rows),
                    None => println!("OK ({n} rows affected)"),
                }
                rows.clear();
            }
            _ => {}
        }
    }
}

fn print_table(header: &[String], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, v) in widths.iter_mut().zip(row) {
            *w = (*w).max(v.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let parts: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!(" {c:<w$} ")).collect();
        println!("{}", parts.join("|").trim_end());
    };
    line(header);
    println!("{}", widths.iter().map(|w| "-".repeat(w + 2)).collect::<Vec<_>>().join("+"));
    for row in rows {
        line(row);
    }
    println!("({} row{})", rows.len(), if rows.len() == 1 { "" } else { "s" });
}
