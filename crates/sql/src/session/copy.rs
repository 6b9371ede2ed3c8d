//! COPY FROM STDIN and COPY TO STDOUT on a session.
//!
//! ```text
//!   execute("COPY t FROM STDIN") ─► QueryResult { copy: In } ─► copy_data(chunk)* ─► copy_done()
//!                                                                                 └► copy_fail()
//!   execute("COPY t TO STDOUT")  ─► QueryResult { copy: Out { data } }
//! ```
//!
//! COPY FROM inserts rows as their data arrives, in the block's transaction or in one of its
//! own committed at `copy_done`; memory holds one partial record, not the whole input. Every
//! row goes through the same constraint checks as INSERT. The first bad row ends the COPY with
//! its error; the rest of the data is ignored and nothing of it is kept (the transaction
//! rolls back, or the block is aborted).

use super::{assign_column, QueryResult, Session};
use crate::ast::{CopySource, CopyStatement, Expr};
use crate::bind::Scope;
use crate::catalog::{self, Table};
use crate::copy::{Decoder, Format, Record};
use crate::dml::{self, Inserted};
use crate::error::{codes, Error, Result};
use crate::eval;
use crate::plan::Planner;
use crate::types::Value;
use txn::Txn;

/// SQLSTATE 08P01 protocol_violation.
const PROTOCOL_VIOLATION: &str = "08P01";
/// SQLSTATE 57014 query_canceled (COPY FROM ended by the client).
const QUERY_CANCELED: &str = "57014";

/// What a COPY statement asks the client to do.
#[derive(Debug, Clone, PartialEq)]
pub enum CopyResponse {
    /// COPY FROM STDIN has started: send the data with [`Session::copy_data`], then
    /// [`Session::copy_done`] (or [`Session::copy_fail`]).
    In {
        /// Columns per row.
        columns: usize,
    },
    /// COPY TO STDOUT: the data.
    Out {
        /// Columns per row.
        columns: usize,
        /// The lines (the header, if asked for, then one per row), each with its newline.
        lines: Vec<Vec<u8>>,
    },
}

/// A COPY FROM STDIN in progress.
pub(super) struct CopyIn {
    table: Table,
    /// Table column of each copied field.
    targets: Vec<usize>,
    /// The column defaults of the columns not copied (None: NULL).
    defaults: Vec<Option<Expr>>,
    decoder: Decoder,
    /// Its own transaction, outside a block (inside one, the block's is used).
    implicit: Option<Txn>,
    rows: u64,
}

impl Session {
    /// Whether a COPY FROM STDIN waits for its data.
    pub fn copy_in_progress(&self) -> bool {
        self.copy_in.is_some()
    }

    /// Starts COPY FROM STDIN (called from `run`, after the aborted-block check).
    pub(super) fn start_copy_in(&mut self, c: &CopyStatement) -> Result<QueryResult> {
        let CopySource::Table { name, columns } = &c.source else {
            return Err(Error::new(codes::FEATURE_NOT_SUPPORTED, "COPY query FROM is not supported"));
        };
        self.deadline.set(None);
        let mut implicit = None;
        let txn = if self.block.is_some() {
            let t = self.block_txn()?;
            t.new_statement();
            t
        } else {
            let mut t = self.db.engine.begin(self.default_options())?;
            t.set_lock_settings(self.lock_settings());
            implicit.insert(t)
        };
        let table = catalog::lock_table(txn, name, false)?;
        let targets: Vec<usize> = match columns {
            Some(cols) => cols.iter().map(|c| table.column_index(c)).collect::<Result<_>>()?,
            None => (0..table.columns.len()).collect(),
        };
        for (i, t) in targets.iter().enumerate() {
            if targets[..i].contains(t) {
                return Err(Error::new(
                    codes::DUPLICATE_COLUMN,
                    format!("column \"{}\" specified more than once", table.columns[*t].name),
                ));
            }
        }
        let names: Vec<String> = targets.iter().map(|&i| table.columns[i].name.clone()).collect();
        let format = Format::resolve(&c.options, &names, true)?;
        let defaults = table
            .columns
            .iter()
            .enumerate()
            .map(|(i, col)| if targets.contains(&i) { None } else { col.default.clone() })
            .collect();
        let columns = targets.len();
        self.copy_in =
            Some(CopyIn { table, targets, defaults, decoder: Decoder::new(format, columns), implicit, rows: 0 });
        let mut r = QueryResult::command("COPY");
        r.copy = Some(CopyResponse::In { columns });
        Ok(r)
    }

    /// Data for the COPY FROM STDIN in progress, cut anywhere. An error ends the COPY: the
    /// transaction rolls back (or the block is aborted) and later data is refused.
    pub fn copy_data(&mut self, data: &[u8]) -> Result<()> {
        let Some(mut copy) = self.copy_in.take() else {
            return Err(Error::new(PROTOCOL_VIOLATION, "no COPY FROM STDIN is in progress"));
        };
        let mut records = Vec::new();
        let r = copy.decoder.feed(data, &mut records).and_then(|_| self.copy_rows(&mut copy, records));
        match r {
            Ok(()) => {
                self.copy_in = Some(copy);
                Ok(())
            }
            Err(e) => {
                self.abort_copy(copy);
                Err(e)
            }
        }
    }

    /// The end of the data: inserts the last record, commits an implicit transaction and
    /// gives the `COPY n` result.
    pub fn copy_done(&mut self) -> Result<QueryResult> {
        let Some(mut copy) = self.copy_in.take() else {
            return Err(Error::new(PROTOCOL_VIOLATION, "no COPY FROM STDIN is in progress"));
        };
        let mut records = Vec::new();
        let r = copy.decoder.finish(&mut records).and_then(|_| self.copy_rows(&mut copy, records));
        if let Err(e) = r {
            self.abort_copy(copy);
            return Err(e);
        }
        if let Some(t) = copy.implicit.take() {
            t.commit()?;
        }
        Ok(QueryResult::command(format!("COPY {}", copy.rows)))
    }

    /// The client gave up on the COPY (CopyFail): nothing of it is kept.
    pub fn copy_fail(&mut self, message: &str) -> Error {
        if let Some(copy) = self.copy_in.take() {
            self.abort_copy(copy);
        }
        Error::new(QUERY_CANCELED, format!("COPY from stdin failed: {message}"))
    }

    /// Ends a COPY on an error: its own transaction rolls back, a block is aborted.
    pub(super) fn abort_copy(&mut self, copy: CopyIn) {
        drop(copy.implicit);
        self.fail_block();
    }

    fn copy_rows(&mut self, copy: &mut CopyIn, records: Vec<Record>) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let from_block = copy.implicit.is_none();
        let mut txn = match copy.implicit.take() {
            Some(t) => t,
            None => self
                .block
                .as_mut()
                .and_then(|b| b.txn.take())
                .ok_or_else(|| Error::new(codes::IN_FAILED_SQL_TRANSACTION, "the COPY's transaction has ended"))?,
        };
        let r = self.insert_records(&mut txn, copy, records);
        match self.block.as_mut() {
            Some(b) if from_block => b.txn = Some(txn),
            _ => copy.implicit = Some(txn),
        }
        r
    }

    fn insert_records(&self, txn: &mut Txn, copy: &mut CopyIn, records: Vec<Record>) -> Result<()> {
        let table = &copy.table;
        let empty = Scope::default();
        for record in records {
            let mut row = vec![Value::Null; table.columns.len()];
            for (c, default) in copy.defaults.iter().enumerate() {
                if let Some(d) = default {
                    let b = Planner::new(txn).bind(d, &empty, &[])?;
                    row[c] = assign_column(self.exec(txn, &[]).eval(&b, &[])?, table, c)?;
                }
            }
            for (field, &c) in record.fields.into_iter().zip(&copy.targets) {
                let column = &table.columns[c];
                row[c] = match field {
                    None => Value::Null,
                    Some(text) => eval::parse_text(&text, &column.data_type)
                        .and_then(|v| assign_column(v, table, c))
                        .map_err(|e| {
                        e.with_context(format!("COPY {}, line {}, column {}", table.name, record.line, column.name))
                    })?,
                };
            }
            let mut exec = self.exec(txn, &[]);
            match dml::insert_row(&mut exec, table, &row)
                .map_err(|e| e.with_context(format!("COPY {}, line {}", table.name, record.line)))?
            {
                Inserted::Done(_) => copy.rows += 1,
                Inserted::Conflict(_, e, _) => {
                    return Err(e.with_context(format!("COPY {}, line {}", table.name, record.line)))
                }
            }
        }
        Ok(())
    }

    /// COPY ... TO STDOUT, in `txn`.
    pub(super) fn copy_out(&self, txn: &mut Txn, c: &CopyStatement) -> Result<QueryResult> {
        let query = match &c.source {
            CopySource::Query(q) => (**q).clone(),
            CopySource::Table { name, columns } => {
                let table = catalog::lock_table(txn, name, false)?;
                let names: Vec<String> = match columns {
                    Some(cols) => {
                        for col in cols {
                            table.column_index(col)?;
                        }
                        cols.clone()
                    }
                    None => table.columns.iter().map(|c| c.name.clone()).collect(),
                };
                if names.is_empty() {
                    return Err(Error::new(codes::FEATURE_NOT_SUPPORTED, "COPY of a table without columns"));
                }
                let list: Vec<String> = names.iter().map(|n| quote_ident(n)).collect();
                let sql = format!("SELECT {} FROM {}", list.join(", "), quote_ident(&table.name));
                match crate::parser::parse(&sql)?.pop() {
                    Some(crate::ast::Statement::Query(q)) => *q,
                    _ => return Err(Error::new(codes::INTERNAL_ERROR, "COPY could not read its table")),
                }
            }
        };
        let result = self.query(txn, &query, &[])?;
        let columns = result.columns.unwrap_or_default();
        let names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
        let format = Format::resolve(&c.options, &names, false)?;
        let mut lines = Vec::with_capacity(result.rows.len() + 1);
        if format.header {
            let mut line = Vec::new();
            format.encode_header(&names, &mut line);
            lines.push(line);
        }
        for row in &result.rows {
            let mut line = Vec::new();
            format.encode_row(row, &mut line);
            lines.push(line);
        }
        let mut r = QueryResult::command(format!("COPY {}", result.rows.len()));
        r.copy = Some(CopyResponse::Out { columns: names.len(), lines });
        Ok(r)
    }
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
