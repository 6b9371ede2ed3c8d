//! COMMENT ON, CREATE SCHEMA and LOCK TABLE.
//!
//! Comments are kept in the catalog by relation name (`catalog::keys::comment`) and shown
//! through `pg_description`, `obj_description` and `col_description`, where psql's `\d+`
//! and drivers read them. They follow their object: dropping a table, view, index or
//! sequence drops its comments, and renaming a table or a column moves them.

use super::{sequence_key, QueryResult, Session};
use crate::ast::CommentKind;
use crate::catalog::{self, keys};
use crate::error::{codes, Error, Result};
use txn::Txn;

impl Session {
    /// COMMENT ON `kind` `relation`[.`column`] IS `text` (None: removes it).
    pub(super) fn comment(
        &self,
        txn: &mut Txn,
        relation: &str,
        column: Option<&str>,
        kind: CommentKind,
        text: Option<&str>,
    ) -> Result<QueryResult> {
        let (found, columns) = if let Some(t) = catalog::get_table(txn, relation)? {
            (CommentKind::Table, t.columns.into_iter().map(|c| c.name).collect())
        } else if let Some(v) = catalog::get_view(txn, relation)? {
            (CommentKind::View, v.columns.into_iter().map(|(name, _)| name).collect())
        } else if txn.get(&keys::index(relation))?.is_some() {
            (CommentKind::Index, vec![])
        } else if catalog::get_sequence(txn, relation)?.is_some() || txn.get(&sequence_key(relation))?.is_some() {
            (CommentKind::Sequence, vec![])
        } else {
            return Err(Error::new(codes::UNDEFINED_TABLE, format!("relation \"{relation}\" does not exist")));
        };
        let what = |k: CommentKind| match k {
            CommentKind::Table | CommentKind::Column => "a table",
            CommentKind::View => "a view",
            CommentKind::Sequence => "a sequence",
            CommentKind::Index => "an index",
        };
        match (kind, column) {
            (CommentKind::Column, Some(c)) => {
                if !matches!(found, CommentKind::Table | CommentKind::View) {
                    let plural = if found == CommentKind::Index { "indexes" } else { "sequences" };
                    return Err(Error::new(
                        codes::WRONG_OBJECT_TYPE,
                        format!("cannot set comment on relation \"{relation}\""),
                    )
                    .with_detail(format!("This operation is not supported for {plural}.")));
                }
                if !columns.iter().any(|name| name == c) {
                    return Err(Error::new(
                        codes::UNDEFINED_COLUMN,
                        format!("column \"{c}\" of relation \"{relation}\" does not exist"),
                    ));
                }
            }
            (k, _) if k != found => {
                return Err(Error::new(codes::WRONG_OBJECT_TYPE, format!("\"{relation}\" is not {}", what(k))))
            }
            _ => {}
        }
        catalog::put_comment(txn, relation, column.unwrap_or(""), text)?;
        Ok(QueryResult::command("COMMENT"))
    }

    /// CREATE SCHEMA: every user object is in `public`, so the schemas that exist are the
    /// only ones that may be named, and only with IF NOT EXISTS.
    pub(super) fn create_schema(&self, name: &str, if_not_exists: bool) -> Result<QueryResult> {
        match name {
            "public" | "pg_catalog" | "information_schema" if if_not_exists => {
                let mut r = QueryResult::command("CREATE SCHEMA");
                r.notices.push(format!("schema \"{name}\" already exists, skipping"));
                Ok(r)
            }
            "public" | "pg_catalog" | "information_schema" => {
                Err(Error::new(codes::DUPLICATE_SCHEMA, format!("schema \"{name}\" already exists")))
            }
            _ if name.starts_with("pg_") => {
                Err(Error::new(codes::RESERVED_NAME, format!("unacceptable schema name \"{name}\""))
                    .with_detail("The prefix \"pg_\" is reserved for system schemas."))
            }
            _ => Err(Error::new(codes::FEATURE_NOT_SUPPORTED, format!("cannot create schema \"{name}\""))
                .with_detail("Bulwark keeps every table, view, index and sequence in schema public.")),
        }
    }

    /// LOCK TABLE: the lock a writer takes on each table's definition (`exclusive` false)
    /// or the one DDL takes, which holds writers off until the transaction ends.
    pub(super) fn lock_tables(
        &self,
        txn: &mut Txn,
        tables: &[String],
        exclusive: bool,
        nowait: bool,
    ) -> Result<QueryResult> {
        let policy = if nowait { txn::WaitPolicy::NoWait } else { txn::WaitPolicy::Wait };
        for t in tables {
            if catalog::get_table(txn, t)?.is_none()
                && (catalog::get_sequence(txn, t)?.is_some() || txn.get(&sequence_key(t))?.is_some())
            {
                return Err(Error::new(codes::WRONG_OBJECT_TYPE, format!("cannot lock relation \"{t}\""))
                    .with_detail("This operation is not supported for sequences."));
            }
            catalog::lock_table_waiting(txn, t, exclusive, policy)?;
        }
        Ok(QueryResult::command("LOCK TABLE"))
    }
}
