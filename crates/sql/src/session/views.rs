//! CREATE VIEW and DROP VIEW.
//!
//! A view is its query's SQL text in the catalog (`catalog::View`), with the names and
//! types of the columns it had when it was created. A query that names the view plans the
//! stored query in its place (`Planner::plan_from`), so a view always reads the tables as
//! they are. Creating one plans its query once, which checks it.
//!
//! As PostgreSQL: a view's name is a relation name (no table, view or index may share it);
//! OR REPLACE keeps the columns it had, in order, and may only add columns after them
//! (42P16); DROP TABLE or DROP VIEW of something a view reads fails with 2BP01.
//!
//! Left out: writing through a view (views are read-only here: INSERT, UPDATE and DELETE
//! give 42809), CASCADE, ALTER VIEW, and materialized and temporary views. An ALTER TABLE
//! that would leave a view unable to run is refused (`check_views_after_alter`): dropping a
//! column a view reads (2BP01, as PostgreSQL), and renaming a column or table a view names
//! (0A000; PostgreSQL's views follow such renames).

use super::{collect_query, QueryResult, Session};
use crate::ast::Query;
use crate::catalog::{self, keys, View};
use crate::error::{codes, Error, Result};
use crate::plan::Planner;
use txn::Txn;

impl Session {
    pub(super) fn create_view(
        &self,
        txn: &mut Txn,
        name: &str,
        columns: &[String],
        query: &Query,
        sql: &str,
        or_replace: bool,
    ) -> Result<QueryResult> {
        let exists = || Error::new(codes::DUPLICATE_TABLE, format!("relation \"{name}\" already exists"));
        if catalog::get_table(txn, name)?.is_some()
            || txn.get(&keys::index(name))?.is_some()
            || txn.get(&super::sequence_key(name))?.is_some()
        {
            return Err(exists());
        }
        let old = catalog::get_view(txn, name)?;
        if old.is_some() && !or_replace {
            return Err(exists());
        }
        let (_, scope) = Planner::new(txn).plan_query(query, vec![])?;
        if columns.len() > scope.columns.len() {
            return Err(Error::syntax("CREATE VIEW specifies more column names than columns"));
        }
        let mut defined: Vec<(String, crate::types::DataType)> = Vec::with_capacity(scope.columns.len());
        for (i, c) in scope.columns.iter().enumerate() {
            let name = columns.get(i).cloned().unwrap_or_else(|| c.name.clone());
            if defined.iter().any(|(n, _)| *n == name) {
                return Err(Error::new(codes::DUPLICATE_COLUMN, format!("column \"{name}\" specified more than once")));
            }
            defined.push((name, c.data_type.clone().unwrap_or(crate::types::DataType::Text)));
        }
        let id = match &old {
            Some(old) => {
                if defined.len() < old.columns.len() {
                    return Err(Error::new(codes::INVALID_TABLE_DEFINITION, "cannot drop columns from view"));
                }
                for ((new_name, new_type), (old_name, old_type)) in defined.iter().zip(&old.columns) {
                    if new_name != old_name {
                        return Err(Error::new(
                            codes::INVALID_TABLE_DEFINITION,
                            format!("cannot change name of view column \"{old_name}\" to \"{new_name}\""),
                        )
                        .with_hint("Use ALTER VIEW ... RENAME COLUMN ... to change name of view column instead."));
                    }
                    if new_type.oid() != old_type.oid() {
                        return Err(Error::new(
                            codes::INVALID_TABLE_DEFINITION,
                            format!(
                                "cannot change data type of view column \"{old_name}\" from {} to {}",
                                old_type.pg_name(),
                                new_type.pg_name()
                            ),
                        ));
                    }
                }
                old.id
            }
            None => catalog::next_id(txn)?,
        };
        let view = View { id, name: name.to_string(), columns: defined, sql: sql.to_string() };
        catalog::put_view(txn, &view)?;
        Ok(QueryResult::command("CREATE VIEW"))
    }

    pub(super) fn drop_views(&self, txn: &mut Txn, names: &[String], if_exists: bool) -> Result<QueryResult> {
        let mut notices = Vec::new();
        for name in names {
            if catalog::get_view(txn, name)?.is_none() {
                if if_exists {
                    notices.push(format!("view \"{name}\" does not exist, skipping"));
                    continue;
                }
                if catalog::get_table(txn, name)?.is_some() {
                    return Err(Error::new(codes::WRONG_OBJECT_TYPE, format!("\"{name}\" is not a view"))
                        .with_hint("Use DROP TABLE to remove a table."));
                }
                return Err(Error::new(codes::UNDEFINED_TABLE, format!("view \"{name}\" does not exist")));
            }
            check_no_view_reads(txn, name, "view", names)?;
            txn.delete(&keys::view(name))?;
            catalog::drop_comments(txn, name)?;
        }
        let mut r = QueryResult::command("DROP VIEW");
        r.notices = notices;
        Ok(r)
    }
}

/// 2BP01 if a view other than those in `dropping` reads relation `name` (a `kind`).
pub(super) fn check_no_view_reads(txn: &mut Txn, name: &str, kind: &str, dropping: &[String]) -> Result<()> {
    for view in catalog::views(txn)? {
        if dropping.contains(&view.name) {
            continue;
        }
        if reads(&view, name)? {
            return Err(Error::new(
                codes::DEPENDENT_OBJECTS_STILL_EXIST,
                format!("cannot drop {kind} {name} because other objects depend on it"),
            )
            .with_detail(format!("view {} depends on {kind} {name}", view.name))
            .with_hint("Drop the view first."));
        }
    }
    Ok(())
}

/// After an ALTER TABLE action that dropped or renamed a column of table `table`, or
/// renamed the table from `table`: fails if a view that reads it no longer plans to the
/// columns it was created with. A view is kept as its SQL text, so a view that names a
/// renamed column or table would break; PostgreSQL follows such renames, Bulwark refuses
/// them (0A000) while a view reads what they rename. A dropped column a view reads is
/// 2BP01, as in PostgreSQL (which also counts `SELECT *` as reading every column).
pub(super) fn check_views_after_alter(txn: &mut Txn, table: &str, dropped_column: Option<&str>) -> Result<()> {
    for view in catalog::views(txn)? {
        if !reads(&view, table)? {
            continue;
        }
        let Some(crate::ast::Statement::Query(q)) = crate::parser::parse(&view.sql)?.pop() else {
            return Err(Error::new("XX001", format!("view \"{}\" has a malformed definition", view.name)));
        };
        let same = match Planner::new(txn).plan_query(&q, vec![]) {
            Ok((_, scope)) => {
                scope.columns.len() == view.columns.len()
                    && scope
                        .columns
                        .iter()
                        .zip(&view.columns)
                        .all(|(c, (_, t))| c.data_type.as_ref().is_none_or(|ct| ct.oid() == t.oid()))
            }
            Err(_) => false,
        };
        if same {
            continue;
        }
        return Err(match dropped_column {
            Some(column) => Error::new(
                codes::DEPENDENT_OBJECTS_STILL_EXIST,
                format!("cannot drop column {column} of table {table} because other objects depend on it"),
            )
            .with_detail(format!("view {} depends on column {column} of table {table}", view.name))
            .with_hint("Drop the view first."),
            None => Error::new(
                codes::FEATURE_NOT_SUPPORTED,
                format!("cannot rename what view {} reads in table {table}", view.name),
            )
            .with_detail("Bulwark keeps a view as its SQL text: drop the view, rename, and create the view again."),
        });
    }
    Ok(())
}

/// The name of a view that reads relation `name`, if any.
pub(super) fn view_reading(txn: &mut Txn, name: &str) -> Result<Option<String>> {
    for view in catalog::views(txn)? {
        if reads(&view, name)? {
            return Ok(Some(view.name));
        }
    }
    Ok(None)
}

/// Whether `view`'s query names relation `name`.
fn reads(view: &View, name: &str) -> Result<bool> {
    let Some(crate::ast::Statement::Query(q)) = crate::parser::parse(&view.sql)?.pop() else {
        return Err(Error::new("XX001", format!("view \"{}\" has a malformed definition", view.name)));
    };
    let mut found = false;
    collect_query(&q, &mut |t| found |= t == name, &mut Vec::new());
    Ok(found)
}
