//! The system catalogs: `pg_catalog` and `information_schema`, as read-only tables made
//! from Bulwark's own catalog.
//!
//! # Why
//!
//! psql's `\d` commands, drivers and ORMs learn about a database by querying PostgreSQL's
//! catalogs (`pg_class`, `pg_attribute`, `information_schema.columns`, ...) and calling its
//! catalog functions (`format_type`, `pg_get_indexdef`, ...). Bulwark keeps its own catalog
//! (`catalog.rs`: tables with their columns, indexes and constraints); this module shows it
//! in PostgreSQL's shape, so those queries run unchanged, with no special case for any of
//! them: they are parsed, planned and executed like any other query.
//!
//! # How
//!
//! ```text
//!   FROM pg_catalog.pg_class c ──plan──► Scan { table: pg_class (id >= SYSTEM_ID_MIN) }
//!                                          │ exec: rows made here, once per statement
//!   catalog (tables, in the txn) ──► Snapshot (oids for every object) ──► rows
//!   session settings ──────────────────────────────────────────────────► pg_settings
//! ```
//!
//! Each system table is an ordinary [`Table`] whose id lies above
//! [`catalog::SYSTEM_ID_MIN`]; the planner scans it like any table (filters, joins,
//! subqueries, ORDER BY all apply), and the executor asks [`scan`] for its rows instead of
//! reading a key range. The rows come from a [`snapshot::Snapshot`] of the catalog read
//! through the statement's transaction, so they show exactly what the transaction sees,
//! its own uncommitted DDL included. A statement reads each system table once: the rows
//! are kept with its CTEs for the rest of the statement.
//!
//! Names: `pg_catalog.x` and a bare `x` find the pg_catalog table (pg_catalog comes first
//! on PostgreSQL's search path too); information_schema's views must be named with their
//! schema.
//!
//! Oids are PostgreSQL's for built-in objects and 16384 + the catalog id for tables and
//! indexes; see `snapshot` for objects without an id. The `reg*` types (`'t'::regclass`)
//! and the catalog functions are in `functions`; `settings` describes pg_settings.
//!
//! # Left out
//!
//! - Writes: the system tables are read-only; INSERT, UPDATE and DELETE on them fail.
//! - Catalogs of features Bulwark lacks are present but empty: pg_inherits, pg_policy, pg_trigger (foreign keys are checked without triggers),
//!   pg_rewrite, pg_statistic_ext, pg_publication*, pg_extension. There is no pg_proc,
//!   pg_operator or pg_authid.
//! - One schema for user objects (public) and one role (`bulwark`, a superuser, owner of
//!   everything); every privilege check is true.
//! - Types: oid and xid columns are bigint; name, "char", regproc and pg_node_tree are
//!   text; array columns hold the array's text form (`{1,2}`, `1 2` for int2vector).
//!   Expressions (`pg_attrdef.adbin`, `pg_constraint.conbin`) are SQL text, so
//!   `pg_get_expr` returns them as they are.
//! - SERIAL and IDENTITY columns are both shown as SERIAL (a `nextval` default).
//! - NOT NULL constraints are not rows of information_schema.table_constraints.

pub(crate) mod defs;
mod functions;
pub(crate) mod pg_settings;
mod rows;
mod settings;
pub mod snapshot;

use crate::catalog::{Column, Table, SYSTEM_ID_MIN};
use crate::error::Result;
use crate::exec::{Exec, Row};
use crate::types::{DataType, RegKind, Value};
use defs::{Schema, TABLES};

pub use functions::{format_type, size_pretty, version};
pub use rows::DATABASE_NAME;

/// What the system tables need from the session: its settings (for pg_settings and
/// `current_setting`).
pub trait SessionInfo {
    /// Every setting and its value, sorted by name.
    fn settings(&self) -> Vec<(String, String)>;
    /// The process id the server gave the connection (BackendKeyData), 0 without one.
    fn backend_pid(&self) -> i32;
}

impl SessionInfo for crate::session::Session {
    fn settings(&self) -> Vec<(String, String)> {
        crate::session::Session::settings(self).map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }
    fn backend_pid(&self) -> i32 {
        crate::session::Session::backend_pid(self)
    }
}

/// The system table a FROM item names (`pg_catalog.pg_class`, `pg_class`,
/// `information_schema.columns`), as a table definition the planner can scan.
pub fn table(name: &str) -> Option<Table> {
    lookup(name)
}

fn lookup(name: &str) -> Option<Table> {
    let (schema, bare) = match name.split_once('.') {
        Some(("pg_catalog", bare)) => (Schema::PgCatalog, bare),
        Some(("information_schema", bare)) => (Schema::InformationSchema, bare),
        Some(_) => return None,
        None => (Schema::PgCatalog, name),
    };
    let (i, def) = TABLES.iter().enumerate().find(|(_, t)| t.schema == schema && t.name == bare)?;
    let id = SYSTEM_ID_MIN + u32::try_from(i).expect("a handful of system tables");
    Some(Table {
        id,
        name: format!("{}.{}", schema.name(), def.name),
        columns: def
            .columns
            .iter()
            .map(|(name, ty)| Column {
                name: name.to_string(),
                data_type: ty.data_type(),
                not_null: false,
                default: None,
                sequence: None,
            })
            .collect(),
        primary_key: Vec::new(),
        pk_name: String::new(),
        rowid_sequence: 0,
        indexes: Vec::new(),
        checks: Vec::new(),
        foreign_keys: Vec::new(),
    })
}

/// The name a system table is referred to by in its query (`pg_class` for
/// `pg_catalog.pg_class`).
pub fn bare_name(name: &str) -> &str {
    name.rsplit_once('.').map_or(name, |(_, bare)| bare)
}

/// The rows of system table `table` for the running statement.
pub fn scan(exec: &mut Exec, table: &Table) -> Result<Vec<Row>> {
    let index = usize::try_from(table.id - SYSTEM_ID_MIN).expect("a system table id");
    let def = &TABLES[index];
    let key = format!("\0system:{}", table.name);
    if let Some(rows) = exec.ctes.get(&key) {
        return Ok(rows.clone());
    }
    let needs_catalog = !matches!(
        def.name,
        "pg_namespace"
            | "pg_am"
            | "pg_database"
            | "pg_collation"
            | "pg_tablespace"
            | "pg_roles"
            | "pg_user"
            | "pg_settings"
            | "schemata"
    );
    let snapshot = if needs_catalog { snapshot::Snapshot::load(exec.txn)? } else { snapshot::Snapshot::default() };
    let settings = if def.name == "pg_settings" { exec.sequences.settings() } else { Vec::new() };
    let rows = rows::rows(def, &snapshot, &settings);
    exec.ctes.insert(key, rows.clone());
    Ok(rows)
}

/// The columns of a function in FROM, given its arguments' types where known.
pub fn table_function_columns(name: &str, args: &[Option<DataType>]) -> Result<Vec<(String, DataType)>> {
    functions::table_function_columns(name, args)
}

/// Runs a function in FROM.
pub fn table_function(
    exec: &mut Exec,
    name: &str,
    args: Vec<Value>,
    ordinality: bool,
    types: &[DataType],
) -> Result<Vec<Row>> {
    functions::table_function(exec, name, args, ordinality, types)
}

/// The result type of a catalog function, for RowDescription.
pub fn function_type(name: &str) -> Option<DataType> {
    functions::function_type(name)
}

/// Calls a catalog function; None if `name` is not one.
pub fn call(exec: &mut Exec, name: &str, args: &[Value]) -> Option<Result<Value>> {
    functions::call(exec, name, args)
}

/// Casts `v` to a `reg*` type with the catalog at hand.
pub fn to_reg(exec: &mut Exec, kind: RegKind, v: Value) -> Result<Value> {
    functions::to_reg(exec, kind, v)
}
