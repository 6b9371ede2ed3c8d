//! CREATE TYPE ... AS ENUM, ALTER TYPE ... ADD VALUE and DROP TYPE.
//!
//! An enum type lives in the catalog under its name (`catalog::keys::enum_type`) with its
//! labels and their sort positions. A column of the type carries a copy of the type in its
//! table's definition, so rows decode and compare without the catalog: ADD VALUE rewrites
//! the definitions of the tables and views that use the type, in the same transaction. A
//! label's position never changes once given (a label added between two others takes the
//! midpoint), because stored values carry their positions (docs/format.md).

use super::{QueryResult, Session};
use crate::catalog;
use crate::error::{codes, Error, Result};
use crate::types::{DataType, EnumType};
use std::sync::Arc;
use txn::Txn;

impl Session {
    /// CREATE TYPE `name` AS ENUM (`labels`).
    pub(super) fn create_enum(&self, txn: &mut Txn, name: &str, labels: &[String]) -> Result<QueryResult> {
        let taken = catalog::get_enum(txn, name)?.is_some()
            || catalog::get_table(txn, name)?.is_some()
            || catalog::get_view(txn, name)?.is_some()
            || is_builtin_type(name);
        if taken {
            return Err(Error::new(codes::DUPLICATE_OBJECT, format!("type \"{name}\" already exists")));
        }
        for (i, label) in labels.iter().enumerate() {
            if labels[..i].contains(label) {
                return Err(Error::new(codes::DUPLICATE_OBJECT, format!("enum label \"{label}\" already exists")));
            }
        }
        let oid = crate::system::snapshot::normal_oid(catalog::next_id(txn)?);
        let labels = labels.iter().enumerate().map(|(i, l)| (l.clone(), (i + 1) as f64)).collect();
        catalog::put_enum(txn, &EnumType { oid, name: name.to_string(), labels })?;
        Ok(QueryResult::command("CREATE TYPE"))
    }

    /// ALTER TYPE `name` ADD VALUE [IF NOT EXISTS] `label` [BEFORE | AFTER `neighbour`].
    pub(super) fn add_enum_value(
        &self,
        txn: &mut Txn,
        name: &str,
        label: &str,
        if_not_exists: bool,
        position: Option<&(bool, String)>,
    ) -> Result<QueryResult> {
        let mut t = catalog::get_enum(txn, name)?
            .ok_or_else(|| Error::new(codes::UNDEFINED_OBJECT, format!("type \"{name}\" does not exist")))?;
        if t.labels.iter().any(|(l, _)| l == label) {
            let message = format!("enum label \"{label}\" already exists");
            if if_not_exists {
                let mut r = QueryResult::command("ALTER TYPE");
                r.notices.push(format!("{message}, skipping"));
                return Ok(r);
            }
            return Err(Error::new(codes::DUPLICATE_OBJECT, message));
        }
        let (at, order) = match position {
            None => (t.labels.len(), t.labels.last().map_or(1.0, |(_, o)| o + 1.0)),
            Some((before, neighbour)) => {
                let i = t.labels.iter().position(|(l, _)| l == neighbour).ok_or_else(|| {
                    Error::new(codes::INVALID_PARAMETER_VALUE, format!("\"{neighbour}\" is not an existing enum label"))
                })?;
                let (low, high, at) = if *before {
                    (i.checked_sub(1).map(|p| t.labels[p].1), Some(t.labels[i].1), i)
                } else {
                    (Some(t.labels[i].1), t.labels.get(i + 1).map(|(_, o)| *o), i + 1)
                };
                let order = match (low, high) {
                    (Some(l), Some(h)) => l + (h - l) / 2.0,
                    (None, Some(h)) => h - 1.0,
                    (Some(l), None) => l + 1.0,
                    (None, None) => unreachable!("the neighbour is a label"),
                };
                // Positions are never renumbered (stored values carry them), so a gap
                // halved about fifty times over is full.
                if low == Some(order) || high == Some(order) {
                    return Err(Error::new(
                        codes::FEATURE_NOT_SUPPORTED,
                        format!(
                            "no room for a new label {} \"{neighbour}\" in enum {name}",
                            if *before { "before" } else { "after" }
                        ),
                    )
                    .with_hint("Recreate the type with its labels in the order wanted."));
                }
                (at, order)
            }
        };
        t.labels.insert(at, (label.to_string(), order));
        catalog::put_enum(txn, &t)?;
        let t = Arc::new(t);
        // The tables and views that use the type carry a copy of it: give them the new one.
        for table_name in catalog::table_names(txn)? {
            let Some(table) = catalog::get_table(txn, &table_name)? else { continue };
            if table.columns.iter().any(|c| uses(&c.data_type, t.oid)) {
                let mut table = catalog::lock_table(txn, &table_name, true)?;
                for c in &mut table.columns {
                    if uses(&c.data_type, t.oid) {
                        c.data_type = DataType::Enum(t.clone());
                    }
                }
                catalog::put_table(txn, &table)?;
            }
        }
        for mut view in catalog::views(txn)? {
            if view.columns.iter().any(|(_, dt)| uses(dt, t.oid)) {
                for (_, dt) in &mut view.columns {
                    if uses(dt, t.oid) {
                        *dt = DataType::Enum(t.clone());
                    }
                }
                catalog::put_view(txn, &view)?;
            }
        }
        Ok(QueryResult::command("ALTER TYPE"))
    }

    /// DROP TYPE [IF EXISTS] `names`: 2BP01 while a column or view uses one.
    pub(super) fn drop_types(&self, txn: &mut Txn, names: &[String], if_exists: bool) -> Result<QueryResult> {
        let mut notices = Vec::new();
        for name in names {
            let Some(t) = catalog::get_enum(txn, name)? else {
                if if_exists {
                    notices.push(format!("type \"{name}\" does not exist, skipping"));
                    continue;
                }
                return Err(Error::new(codes::UNDEFINED_OBJECT, format!("type \"{name}\" does not exist")));
            };
            let depends = |detail: String| {
                Error::new(
                    codes::DEPENDENT_OBJECTS_STILL_EXIST,
                    format!("cannot drop type {name} because other objects depend on it"),
                )
                .with_detail(detail)
                .with_hint("Drop or alter the dependent objects first.")
            };
            for table_name in catalog::table_names(txn)? {
                let Some(table) = catalog::get_table(txn, &table_name)? else { continue };
                if let Some(c) = table.columns.iter().find(|c| uses(&c.data_type, t.oid)) {
                    return Err(depends(format!("column {} of table {table_name} depends on type {name}", c.name)));
                }
            }
            for view in catalog::views(txn)? {
                if view.columns.iter().any(|(_, dt)| uses(dt, t.oid)) {
                    return Err(depends(format!("view {} depends on type {name}", view.name)));
                }
            }
            txn.delete(&catalog::keys::enum_type(name))?;
        }
        let mut r = QueryResult::command("DROP TYPE");
        r.notices = notices;
        Ok(r)
    }
}

/// True if `t` is enum type `oid`.
fn uses(t: &DataType, oid: u32) -> bool {
    matches!(t, DataType::Enum(e) if e.oid == oid)
}

/// True if `name` names a built-in type (which the parser resolves before any enum).
fn is_builtin_type(name: &str) -> bool {
    let quoted = format!("NULL::\"{}\"", name.replace('"', "\"\""));
    match crate::parser::parse_expr(&quoted) {
        Ok(crate::ast::Expr::Cast { to, .. }) => !matches!(to, DataType::Enum(_)),
        _ => true,
    }
}
