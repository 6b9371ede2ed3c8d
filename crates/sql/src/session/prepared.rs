//! PREPARE, EXECUTE and DEALLOCATE: prepared statements made with SQL.
//!
//! A prepared statement is its SQL text and the types of its parameters: the declared
//! types first, the rest as the statement's context gives them (as for the wire protocol's
//! Parse), text where nothing says. EXECUTE computes its values, casts each to its
//! parameter's type and runs the text with them, through the same parse and plan caches as
//! the wire protocol's prepared statements; the result is the prepared statement's (its
//! rows and its command tag, as in PostgreSQL).
//!
//! The names share one namespace with the wire protocol's prepared statements (the
//! server's `statement_names`): PREPARE of a name in use fails with 42P05, EXECUTE and
//! DEALLOCATE of an unknown name with 26000. Like PostgreSQL, PREPARE checks the statement
//! against the catalog when it runs outside a transaction block, so a missing table fails
//! there; inside a block the check waits for EXECUTE.

use super::{QueryResult, Session};
use crate::ast::{Expr, Query, SetExpr, Statement};
use crate::error::{codes, Error, Result};
use crate::types::{DataType, Value};

/// Prepared statements a session may hold at once, SQL-made and protocol-made together.
pub const PREPARED_STATEMENTS_MAX: usize = 10_000;

/// One statement PREPARE made.
#[derive(Debug, Clone)]
pub(super) struct SqlPrepared {
    /// The statement's text.
    pub sql: String,
    /// The types of `$1..$n` (None: unknown, the value is passed as it is).
    pub types: Vec<Option<DataType>>,
}

impl Session {
    /// PREPARE name [(type, ...)] AS statement.
    pub(super) fn prepare_statement(&mut self, name: &str, declared: &[DataType], sql: &str) -> Result<QueryResult> {
        {
            let names = self.statement_names.lock().unwrap_or_else(|e| e.into_inner());
            if names.contains(name) || self.sql_prepared.contains_key(name) {
                return Err(Error::new(
                    codes::DUPLICATE_PREPARED_STATEMENT,
                    format!("prepared statement \"{name}\" already exists"),
                ));
            }
            if names.len() >= PREPARED_STATEMENTS_MAX {
                return Err(Error::new(
                    codes::PROGRAM_LIMIT_EXCEEDED,
                    format!("a session holds at most {PREPARED_STATEMENTS_MAX} prepared statements"),
                ));
            }
        }
        let count = declared.len().max(crate::parser::max_param_number(sql));
        let inferred = if self.block.is_none() {
            self.describe(sql)?;
            self.describe_params(sql, count)?
        } else {
            // Tables created in this block are not visible to describe's own transaction.
            self.describe_params(sql, count).unwrap_or_else(|_| vec![None; count])
        };
        let types =
            (0..count).map(|i| declared.get(i).cloned().or_else(|| inferred.get(i).cloned().flatten())).collect();
        self.statement_names.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_string());
        self.sql_prepared.insert(name.to_string(), SqlPrepared { sql: sql.to_string(), types });
        Ok(QueryResult::command("PREPARE"))
    }

    /// EXECUTE name [(value, ...)]: the prepared statement's own result.
    pub(super) fn execute_prepared(&mut self, name: &str, args: &[Expr], params: &[Value]) -> Result<QueryResult> {
        let Some(p) = self.sql_prepared.get(name).cloned() else {
            return Err(Error::new(
                codes::INVALID_SQL_STATEMENT_NAME,
                format!("prepared statement \"{name}\" does not exist"),
            ));
        };
        if args.len() != p.types.len() {
            return Err(Error::new(
                codes::SYNTAX_ERROR,
                format!("wrong number of parameters for prepared statement \"{name}\""),
            )
            .with_detail(format!("Expected {} parameters but got {}.", p.types.len(), args.len())));
        }
        let values = if args.is_empty() {
            Vec::new()
        } else {
            // The values, each cast to its parameter's type, computed as a one-row VALUES.
            let row = args
                .iter()
                .zip(&p.types)
                .map(|(arg, t)| match t {
                    Some(t) => Expr::Cast { expr: Box::new(arg.clone()), to: t.clone() },
                    None => arg.clone(),
                })
                .collect();
            let query = Query {
                with: Vec::new(),
                body: SetExpr::Values(vec![row]),
                order_by: Vec::new(),
                limit: None,
                offset: None,
                locking: None,
            };
            let computed = self.run(&Statement::Query(Box::new(query)), params)?;
            computed.rows.into_iter().next().unwrap_or_default()
        };
        let mut results = self.execute_with(&p.sql, &values);
        // A position would point into the prepared text, not into the EXECUTE the client sent.
        let result = results.pop().unwrap_or_else(|| Ok(QueryResult::command("EXECUTE")));
        result.map_err(|mut e| {
            e.position = None;
            e
        })
    }

    /// DEALLOCATE name, or all (None).
    pub(super) fn deallocate(&mut self, name: Option<&str>) -> Result<QueryResult> {
        match name {
            Some(name) => {
                let known = self.statement_names.lock().unwrap_or_else(|e| e.into_inner()).remove(name);
                if !known && self.sql_prepared.remove(name).is_none() {
                    return Err(Error::new(
                        codes::INVALID_SQL_STATEMENT_NAME,
                        format!("prepared statement \"{name}\" does not exist"),
                    ));
                }
                self.sql_prepared.remove(name);
            }
            None => self.forget_sql_prepared(),
        }
        self.deallocated.push(name.map(str::to_string));
        Ok(QueryResult::command(if name.is_some() { "DEALLOCATE" } else { "DEALLOCATE ALL" }))
    }

    /// Forgets every statement PREPARE made (DEALLOCATE ALL, DISCARD ALL).
    pub(super) fn forget_sql_prepared(&mut self) {
        let mut names = self.statement_names.lock().unwrap_or_else(|e| e.into_inner());
        for name in std::mem::take(&mut self.sql_prepared).into_keys() {
            names.remove(&name);
        }
    }

    /// The text of the statement PREPARE made under `name`, for Describe of an EXECUTE.
    pub(super) fn prepared_sql(&self, name: &str) -> Option<String> {
        self.sql_prepared.get(name).map(|p| p.sql.clone())
    }
}
