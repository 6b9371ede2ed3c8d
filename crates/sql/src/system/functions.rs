//! The functions psql and drivers call on the catalog (`format_type`, `pg_get_indexdef`,
//! `pg_table_is_visible`, ...), casts to the `reg*` types, and the functions that may stand
//! in FROM (`generate_series`, `unnest`, `pg_partition_ancestors`).

use super::defs::{array_of, sys_type, Schema, INFORMATION_SCHEMA_OID, PG_CATALOG_OID, PUBLIC_OID, TABLES, TYPES};
use super::rows::DATABASE_NAME;
use super::snapshot::{namespace_visible, quote_ident, quote_literal, RelKind, Snapshot, FIRST_NORMAL_OID};
use super::snapshot::{SUPERUSER_NAME, SUPERUSER_OID};
use crate::catalog::keys;
use crate::error::{codes, Error, Result};
use crate::eval::array;
use crate::exec::{Exec, Row, ROWS_MAX};
use crate::types::{DataType, RegKind, Value};
use std::ops::Bound;

/// The version string `version()` returns: PostgreSQL's form, naming Bulwark.
pub fn version() -> String {
    format!(
        "PostgreSQL 15.0 (Bulwark {}) on {}-{}, 64-bit",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH,
        std::env::consts::OS
    )
}

/// The result type of a function this module implements (for RowDescription).
pub fn function_type(name: &str) -> Option<DataType> {
    Some(match name {
        "version"
        | "pg_tablespace_location"
        | "current_database"
        | "current_catalog"
        | "current_schema"
        | "current_user"
        | "session_user"
        | "current_role"
        | "pg_get_userbyid"
        | "format_type"
        | "pg_get_expr"
        | "pg_get_indexdef"
        | "pg_get_constraintdef"
        | "pg_get_serial_sequence"
        | "pg_get_viewdef"
        | "pg_get_triggerdef"
        | "pg_get_ruledef"
        | "pg_get_statisticsobjdef_columns"
        | "pg_get_partkeydef"
        | "obj_description"
        | "col_description"
        | "shobj_description"
        | "quote_ident"
        | "quote_literal"
        | "quote_nullable"
        | "pg_size_pretty"
        | "pg_encoding_to_char"
        | "current_setting"
        | "current_schemas"
        | "array_to_string"
        | "pg_advisory_unlock_all"
        | "pg_advisory_lock"
        | "pg_advisory_xact_lock" => DataType::Text,
        "pg_table_is_visible"
        | "pg_type_is_visible"
        | "pg_relation_is_publishable"
        | "has_table_privilege"
        | "has_schema_privilege"
        | "has_database_privilege"
        | "has_column_privilege"
        | "pg_has_role"
        | "pg_is_in_recovery"
        | "pg_try_advisory_lock"
        | "pg_try_advisory_xact_lock"
        | "pg_advisory_unlock" => DataType::Bool,
        "pg_table_size" | "pg_relation_size" | "pg_total_relation_size" | "pg_indexes_size" => DataType::Int8,
        "array_upper" | "array_lower" | "array_length" | "cardinality" | "pg_backend_pid" => DataType::Int4,
        "pg_sleep" => DataType::Text,
        "to_regclass" | "pg_partition_ancestors" => DataType::Reg(RegKind::Class),
        "to_regtype" => DataType::Reg(RegKind::Type),
        "array" | "enum_range" => DataType::Array(25),
        _ => return None,
    })
}

/// Functions whose result is NULL when an argument is (the others handle NULLs).
fn strict(name: &str) -> bool {
    !matches!(name, "format_type" | "quote_nullable" | "current_setting" | "obj_description" | "col_description")
}

/// The oid in a function argument: an integer, a reg* value, or digits.
fn oid_arg(v: Option<&Value>) -> Option<u32> {
    match v? {
        Value::Int2(i) => u32::try_from(*i).ok(),
        Value::Int4(i) => u32::try_from(*i).ok(),
        Value::Int8(i) => u32::try_from(*i).ok(),
        Value::Reg(_, oid, _) => Some(*oid),
        Value::Text(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The oid of a `regclass` argument: a name in a string literal is looked up, as
/// PostgreSQL reads an untyped literal passed as regclass.
fn relation_arg(exec: &mut Exec, v: &Value) -> Result<u32> {
    match v {
        Value::Text(s) if s.trim().parse::<u32>().is_err() => match to_reg(exec, RegKind::Class, v.clone())? {
            Value::Reg(_, oid, _) => Ok(oid),
            _ => Ok(0),
        },
        other => Ok(oid_arg(Some(other)).unwrap_or(0)),
    }
}

fn int_arg(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Int2(i) => Some(i64::from(*i)),
        Value::Int4(i) => Some(i64::from(*i)),
        Value::Int8(i) => Some(*i),
        Value::Text(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn text_arg(v: Option<&Value>) -> Option<String> {
    v.and_then(crate::eval::to_text)
}

fn wrong_args(name: &str, args: &[Value]) -> Error {
    let types: Vec<&str> = args.iter().map(crate::eval::type_name).collect();
    Error::new(codes::UNDEFINED_FUNCTION, format!("function {name}({}) does not exist", types.join(", ")))
        .with_hint("No function matches the given name and argument types. You might need to add explicit type casts.")
}

/// Calls `name` if this module implements it.
pub fn call(exec: &mut Exec, name: &str, args: &[Value]) -> Option<Result<Value>> {
    if function_type(name).is_none()
        || matches!(
            name,
            "array" | "array_to_string" | "array_upper" | "array_lower" | "array_length" | "cardinality" | "enum_range"
        )
    {
        return None;
    }
    if strict(name) && args.iter().any(Value::is_null) {
        return Some(Ok(Value::Null));
    }
    Some(call_known(exec, name, args))
}

fn call_known(exec: &mut Exec, name: &str, args: &[Value]) -> Result<Value> {
    let text = |s: &str| Ok(Value::Text(s.to_string()));
    let n = args.len();
    match (name, n) {
        ("version", 0) => Ok(Value::Text(version())),
        ("current_database" | "current_catalog", 0) => text(DATABASE_NAME),
        ("current_schema", 0) => text("public"),
        ("current_schemas", 1) => {
            let implicit = matches!(args[0], Value::Bool(true));
            let schemas: &[&str] = if implicit { &["pg_catalog", "public"] } else { &["public"] };
            Ok(Value::Text(array::format(&schemas.iter().map(|s| Some(s.to_string())).collect::<Vec<_>>())))
        }
        ("current_user" | "session_user" | "current_role", 0) => {
            let user = exec.sequences.settings().into_iter().find(|(k, _)| k == "session_authorization");
            text(user.map(|(_, v)| v).as_deref().unwrap_or(SUPERUSER_NAME))
        }
        ("pg_get_userbyid", 1) => match oid_arg(args.first()) {
            Some(SUPERUSER_OID) => text(SUPERUSER_NAME),
            Some(o) => Ok(Value::Text(format!("unknown (OID={o})"))),
            None => Err(wrong_args(name, args)),
        },
        ("pg_table_is_visible", 1) => Ok(oid_arg(args.first()).map_or(Value::Null, table_is_visible)),
        ("pg_type_is_visible", 1) => Ok(Value::Bool(match oid_arg(args.first()) {
            Some(o) => type_name(o).is_some() || enum_name(exec, o)?.is_some(),
            None => false,
        })),
        ("format_type", 2) => Ok(match oid_arg(args.first()) {
            None => Value::Null,
            Some(o) => match enum_name(exec, o)? {
                Some(name) => Value::Text(quote_ident(&name)),
                None => Value::Text(format_type(o, int_arg(args.get(1)).unwrap_or(-1))),
            },
        }),
        ("pg_get_expr", 2 | 3) => Ok(args[0].clone()),
        ("pg_get_indexdef", 1 | 3) => {
            let column = if n == 3 { int_arg(args.get(1)).unwrap_or(0) } else { 0 };
            index_def(exec, oid_arg(args.first()).unwrap_or(0), column)
        }
        ("pg_get_constraintdef", 1 | 2) => definition(exec, oid_arg(args.first()).unwrap_or(0), 'c').map(|d| match d {
            Some((def, _)) => Value::Text(def),
            None => Value::Null,
        }),
        ("pg_get_serial_sequence", 2) => serial_sequence(exec, args),
        ("pg_backend_pid", 0) => Ok(Value::Int4(exec.sequences.backend_pid())),
        ("pg_sleep", 1) => sleep(exec, &args[0]),
        ("pg_get_viewdef", 1 | 2) => Ok(match TABLES.iter().find(|t| Some(t.oid) == oid_arg(args.first())) {
            Some(t) if t.view => {
                Value::Text(format!(" -- {}.{} is computed by Bulwark from its catalog", t.schema.name(), t.name))
            }
            _ => {
                let oid = oid_arg(args.first()).unwrap_or(0);
                let s = (oid >= FIRST_NORMAL_OID).then(|| Snapshot::load(exec.txn)).transpose()?;
                let sql = s.as_ref().and_then(|s| s.rel(oid).filter(|r| r.kind == RelKind::View).map(|r| r.table));
                match (s.as_ref(), sql) {
                    (Some(s), Some(i)) => s.view_sql[i].as_ref().map_or(Value::Null, |q| Value::Text(format!(" {q};"))),
                    _ => Value::Null,
                }
            }
        }),
        // No triggers, rules, extended statistics or partitions exist, so no oid names one.
        ("pg_get_triggerdef" | "pg_get_ruledef", 1 | 2)
        | ("pg_get_statisticsobjdef_columns" | "pg_get_partkeydef", 1) => Ok(Value::Null),
        // Comments are kept on relations and their columns only (pg_class's objects).
        ("obj_description", 1 | 2) | ("col_description", 2) => {
            let (on_class, subid) = match (name, n) {
                ("col_description", _) => (true, int_arg(args.get(1))),
                (_, 1) => (true, Some(0)),
                _ => (text_arg(args.get(1)).as_deref() == Some("pg_class"), Some(0)),
            };
            let oid = oid_arg(args.first()).filter(|&o| o >= FIRST_NORMAL_OID && on_class);
            let (Some(oid), Some(subid)) = (oid, subid.and_then(|s| usize::try_from(s).ok())) else {
                return Ok(Value::Null);
            };
            let s = Snapshot::load(exec.txn)?;
            Ok(s.description(oid, subid).map_or(Value::Null, |t| Value::Text(t.to_string())))
        }
        ("shobj_description", 2) => Ok(Value::Null),
        ("pg_relation_is_publishable", 1) => {
            let oid = relation_arg(exec, &args[0])?;
            let rel = (oid >= FIRST_NORMAL_OID).then(|| Snapshot::load(exec.txn)).transpose()?;
            Ok(Value::Bool(rel.is_some_and(|s| s.rel(oid).is_some_and(|r| r.kind == RelKind::Table))))
        }
        ("pg_partition_ancestors", 1) => to_reg(exec, RegKind::Class, args[0].clone()),
        ("quote_ident", 1) => Ok(Value::Text(quote_ident(&text_arg(args.first()).unwrap_or_default()))),
        ("quote_literal", 1) => Ok(Value::Text(quote_literal(&text_arg(args.first()).unwrap_or_default()))),
        ("quote_nullable", 1) => Ok(match text_arg(args.first()) {
            Some(s) => Value::Text(quote_literal(&s)),
            None => Value::Text("NULL".into()),
        }),
        ("pg_size_pretty", 1) => match int_arg(args.first()) {
            Some(bytes) => Ok(Value::Text(size_pretty(bytes))),
            None => Err(wrong_args(name, args)),
        },
        ("pg_relation_size", 1 | 2) | ("pg_table_size" | "pg_total_relation_size" | "pg_indexes_size", 1) => {
            let oid = relation_arg(exec, &args[0])?;
            relation_size(exec, name, oid)
        }
        ("pg_encoding_to_char", 1) => text(match int_arg(args.first()) {
            Some(6) => "UTF8",
            Some(0) => "SQL_ASCII",
            _ => "",
        }),
        // One role, a superuser: every privilege is held.
        ("has_table_privilege" | "has_schema_privilege" | "has_database_privilege", 2 | 3)
        | ("has_column_privilege", 3 | 4)
        | ("pg_has_role", 2 | 3) => Ok(Value::Bool(true)),
        ("pg_is_in_recovery", 0) => Ok(Value::Bool(false)),
        // pg_advisory_lock and pg_advisory_unlock_all return void, which prints as ''.
        (
            "pg_advisory_lock"
            | "pg_advisory_xact_lock"
            | "pg_try_advisory_lock"
            | "pg_try_advisory_xact_lock"
            | "pg_advisory_unlock",
            1 | 2,
        )
        | ("pg_advisory_unlock_all", 0) => exec.sequences.advisory(name, args, exec.deadline, exec.cancel),
        // The built-in tablespaces live in the data directory: PostgreSQL says ''.
        ("pg_tablespace_location", 1) => text(""),
        ("current_setting", 1 | 2) => {
            let Some(wanted) = text_arg(args.first()) else { return Ok(Value::Null) };
            let missing_ok = matches!(args.get(1), Some(Value::Bool(true)));
            let found = exec.sequences.settings().into_iter().find(|(k, _)| k.eq_ignore_ascii_case(&wanted));
            match found {
                Some((_, v)) => Ok(Value::Text(v)),
                None if missing_ok => Ok(Value::Null),
                None => Err(Error::new(
                    codes::UNDEFINED_OBJECT,
                    format!("unrecognized configuration parameter \"{wanted}\""),
                )),
            }
        }
        ("to_regclass", 1) => Ok(to_reg(exec, RegKind::Class, args[0].clone()).unwrap_or(Value::Null)),
        ("to_regtype", 1) => Ok(to_reg(exec, RegKind::Type, args[0].clone()).unwrap_or(Value::Null)),
        _ => Err(wrong_args(name, args)),
    }
}

fn table_is_visible(oid: u32) -> Value {
    match TABLES.iter().find(|t| t.oid == oid) {
        Some(t) => Value::Bool(t.schema == Schema::PgCatalog),
        None if oid >= FIRST_NORMAL_OID => Value::Bool(true),
        None => Value::Null,
    }
}

/// A type's SQL name with its modifier, as `format_type` prints it.
pub fn format_type(oid: u32, typmod: i64) -> String {
    if let Some(elem) = array_of(oid) {
        return format!("{}[]", format_type(elem.oid, typmod));
    }
    let Some(t) = sys_type(oid) else { return "???".into() };
    let m = typmod - 4;
    match oid {
        1042 if typmod < 0 => "bpchar".into(),
        1042 | 1043 if typmod >= 4 => format!("{}({m})", t.sql_name),
        1700 if typmod >= 4 => format!("numeric({},{})", (m >> 16) & 0xffff, m & 0xffff),
        1114 if (0..=6).contains(&typmod) => format!("timestamp({typmod}) without time zone"),
        1184 if (0..=6).contains(&typmod) => format!("timestamp({typmod}) with time zone"),
        _ => t.sql_name.into(),
    }
}

/// The name of the enum type with oid `oid`, if there is one.
fn enum_name(exec: &mut Exec, oid: u32) -> Result<Option<String>> {
    if oid < FIRST_NORMAL_OID {
        return Ok(None);
    }
    Ok(crate::catalog::enums(exec.txn)?.into_iter().find(|t| t.oid == oid).map(|t| t.name))
}

/// The typname of a type oid.
fn type_name(oid: u32) -> Option<String> {
    if let Some(t) = sys_type(oid) {
        return Some(t.name.to_string());
    }
    array_of(oid).map(|t| format!("_{}", t.name))
}

/// `(definition, columns)` of the index ('i') or constraint ('c') with `oid`, from the
/// statement's cached definitions.
fn definition(exec: &mut Exec, oid: u32, kind: char) -> Result<Option<(String, Vec<String>)>> {
    const KEY: &str = "\0system:definitions";
    if !exec.ctes.contains_key(KEY) {
        let s = Snapshot::load(exec.txn)?;
        let mut rows: Vec<Row> = Vec::new();
        for r in &s.rels {
            if let (Some(def), RelKind::Index(ix)) = (s.index_def(r), r.kind) {
                let t = &s.tables[r.table];
                let columns: Vec<Option<String>> =
                    s.index_columns(r.table, ix).iter().map(|&c| Some(t.columns[c].name.clone())).collect();
                rows.push(vec![
                    Value::Int8(i64::from(r.oid)),
                    Value::Text("i".into()),
                    Value::Text(def),
                    Value::Text(array::format(&columns)),
                ]);
            }
        }
        for c in &s.cons {
            rows.push(vec![
                Value::Int8(i64::from(c.oid)),
                Value::Text("c".into()),
                Value::Text(s.constraint_def(c)),
                Value::Text("{}".into()),
            ]);
        }
        exec.ctes.insert(KEY.to_string(), rows);
    }
    let rows = &exec.ctes[KEY];
    let kind = Value::Text(kind.to_string());
    let found = rows.iter().find(|r| r[0] == Value::Int8(i64::from(oid)) && r[1] == kind);
    Ok(match found {
        Some(r) => {
            let def = crate::eval::to_text(&r[2]).unwrap_or_default();
            let columns = match &r[3] {
                Value::Text(a) => array::parse(a)?.items.into_iter().flatten().collect(),
                _ => Vec::new(),
            };
            Some((def, columns))
        }
        None => None,
    })
}

/// `pg_get_indexdef(oid[, column, pretty])`: the CREATE INDEX statement, or with a column
/// number the name of that column.
fn index_def(exec: &mut Exec, oid: u32, column: i64) -> Result<Value> {
    let Some((def, columns)) = definition(exec, oid, 'i')? else { return Ok(Value::Null) };
    if column <= 0 {
        return Ok(Value::Text(def));
    }
    let at = usize::try_from(column - 1).unwrap_or(usize::MAX);
    Ok(columns.get(at).map_or(Value::Null, |c| Value::Text(quote_ident(c))))
}

/// `pg_get_serial_sequence('table', 'column')`: `public.table_column_seq`, or NULL.
fn serial_sequence(exec: &mut Exec, args: &[Value]) -> Result<Value> {
    let table = text_arg(args.first()).unwrap_or_default();
    let column = text_arg(args.get(1)).unwrap_or_default();
    let parts = parse_qualified(&table)?;
    let (schema, name) = split_schema(&parts, &table)?;
    if schema.is_some_and(|s| s != "public") {
        return Err(undefined_relation(&table));
    }
    let s = Snapshot::load(exec.txn)?;
    let ti = s.table_named(name).ok_or_else(|| undefined_relation(&table))?;
    let ci = s.tables[ti].column_index(&column)?;
    Ok(s.rels
        .iter()
        .find(|r| r.table == ti && r.kind == RelKind::Sequence { column: ci })
        .map_or(Value::Null, |r| Value::Text(format!("public.{}", quote_ident(&r.name)))))
}

/// PostgreSQL's pg_size_pretty: bytes below 10 kB, then kB, MB, GB, TB, PB, rounding half
/// away from zero.
pub fn size_pretty(bytes: i64) -> String {
    const LIMIT: i64 = 10 * 1024;
    const LIMIT2: i64 = LIMIT * 2 - 1;
    if bytes.abs() < LIMIT {
        return format!("{bytes} bytes");
    }
    let half_rounded = |x: i64| (x + if x < 0 { -1 } else { 1 }) / 2;
    let mut size = bytes >> 9; // one extra bit for rounding
    for unit in ["kB", "MB", "GB", "TB"] {
        if size.abs() < LIMIT2 {
            return format!("{} {unit}", half_rounded(size));
        }
        size >>= 10;
    }
    format!("{} PB", half_rounded(size))
}

/// The bytes of keys and values under `prefix` (Bulwark's relations are key ranges, not
/// files of pages, so this is what a relation's size means here).
fn range_bytes(exec: &mut Exec, prefix: Vec<u8>) -> Result<i64> {
    let end = storage::keycode::prefix_end(&prefix).expect("prefix has an end");
    let mut total: i64 = 0;
    for (k, v) in exec.txn.scan(Bound::Included(prefix), Bound::Excluded(end), false, usize::MAX)? {
        exec.tick()?;
        total = total.saturating_add(i64::try_from(k.len() + v.len()).unwrap_or(i64::MAX));
    }
    Ok(total)
}

/// How often pg_sleep looks at statement_timeout and cancel requests.
const SLEEP_SLICE: std::time::Duration = std::time::Duration::from_millis(10);

/// pg_sleep(seconds): waits, ended early only by statement_timeout or a cancel (57014).
fn sleep(exec: &mut Exec, seconds: &Value) -> Result<Value> {
    let secs = match crate::eval::cast(seconds.clone(), &DataType::Float8, false)? {
        Value::Float8(s) if s.is_finite() => s.max(0.0),
        Value::Null => return Ok(Value::Text(String::new())),
        _ => return Err(Error::new(codes::INVALID_PARAMETER_VALUE, "pg_sleep takes a finite number of seconds")),
    };
    let end = std::time::Instant::now() + std::time::Duration::from_secs_f64(secs.min(1e9));
    loop {
        if exec.deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            return Err(Error::new("57014", "canceling statement due to statement timeout"));
        }
        if exec.cancel.swap(false, std::sync::atomic::Ordering::Relaxed) {
            return Err(Error::new("57014", "canceling statement due to user request"));
        }
        let now = std::time::Instant::now();
        if now >= end {
            return Ok(Value::Text(String::new()));
        }
        std::thread::sleep(SLEEP_SLICE.min(end - now));
    }
}

/// pg_relation_size and friends, for user tables and indexes; NULL for other oids.
fn relation_size(exec: &mut Exec, name: &str, oid: u32) -> Result<Value> {
    if oid < FIRST_NORMAL_OID {
        return Ok(if TABLES.iter().any(|t| t.oid == oid) { Value::Int8(0) } else { Value::Null });
    }
    let s = Snapshot::load(exec.txn)?;
    let Some(rel) = s.rel(oid).cloned() else { return Ok(Value::Null) };
    let t = s.tables[rel.table].clone();
    let secondary: Vec<u32> = t.indexes.iter().map(|ix| ix.id).collect();
    let size = match (rel.kind, name) {
        (RelKind::Table, "pg_relation_size" | "pg_table_size") => range_bytes(exec, keys::rows(t.id))?,
        (RelKind::Table, "pg_indexes_size") => {
            let mut total = 0i64;
            for id in secondary {
                total = total.saturating_add(range_bytes(exec, keys::index_entries(id))?);
            }
            total
        }
        (RelKind::Table, _) => {
            let mut total = range_bytes(exec, keys::rows(t.id))?;
            for id in secondary {
                total = total.saturating_add(range_bytes(exec, keys::index_entries(id))?);
            }
            total
        }
        (RelKind::Index(super::snapshot::IndexRef::Secondary(i)), _) => {
            range_bytes(exec, keys::index_entries(t.indexes[i].id))?
        }
        // The primary key orders the rows themselves; a sequence is one value; a view
        // stores nothing.
        (RelKind::Index(_) | RelKind::View, _) => 0,
        (RelKind::Sequence { .. }, _) => 8,
    };
    Ok(Value::Int8(size))
}

// ---- reg* values --------------------------------------------------------------------

fn oid_out_of_range() -> Error {
    Error::new(codes::NUMERIC_VALUE_OUT_OF_RANGE, "value is out of range for type oid")
}

fn undefined_relation(name: &str) -> Error {
    Error::new(codes::UNDEFINED_TABLE, format!("relation \"{name}\" does not exist"))
}

/// Splits a possibly qualified, possibly quoted name as PostgreSQL reads one in text
/// (`public."My Table"`): unquoted parts fold to lower case.
fn parse_qualified(s: &str) -> Result<Vec<String>> {
    let invalid = || Error::new(codes::INVALID_PARAMETER_VALUE, format!("invalid name syntax: \"{s}\""));
    let mut parts = Vec::new();
    let mut chars = s.trim().chars().peekable();
    loop {
        let mut part = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(invalid()),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        part.push('"');
                    }
                    Some('"') => break,
                    Some(c) => part.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == '.' {
                    break;
                }
                part.push(c.to_ascii_lowercase());
                chars.next();
            }
            part = part.trim().to_string();
        }
        if part.is_empty() {
            return Err(invalid());
        }
        parts.push(part);
        match chars.next() {
            None => return Ok(parts),
            Some('.') => continue,
            Some(_) => return Err(invalid()),
        }
    }
}

fn split_schema<'a>(parts: &'a [String], text: &str) -> Result<(Option<&'a str>, &'a str)> {
    match parts {
        [name] => Ok((None, name)),
        [schema, name] => Ok((Some(schema), name)),
        [db, schema, name] if db == DATABASE_NAME => Ok((Some(schema), name)),
        _ => Err(Error::new(
            codes::FEATURE_NOT_SUPPORTED,
            format!("cross-database references are not implemented: {text}"),
        )),
    }
}

/// The name a regclass value prints: the relation's name, quoted where needed and
/// qualified when its schema is not on the search path.
fn relation_display(name: &str, namespace: u32) -> String {
    if namespace_visible(namespace) {
        quote_ident(name)
    } else {
        let schema = if namespace == INFORMATION_SCHEMA_OID { "information_schema" } else { "pg_catalog" };
        format!("{schema}.{}", quote_ident(name))
    }
}

/// Casts `v` to a reg* type, looking the name or oid up in the catalog: `'t'::regclass`,
/// `16385::regclass`, `'integer'::regtype`. An unknown name fails as in PostgreSQL; an
/// unknown oid prints as its number.
pub fn to_reg(exec: &mut Exec, kind: RegKind, v: Value) -> Result<Value> {
    let (by_oid, by_name) = match &v {
        Value::Null => return Ok(Value::Null),
        Value::Reg(k, oid, name) if *k == kind => return Ok(Value::Reg(*k, *oid, name.clone())),
        Value::Reg(_, oid, _) => (Some(*oid), None),
        Value::Text(s) if !s.trim().is_empty() && s.trim().bytes().all(|b| b.is_ascii_digit()) => {
            (Some(s.trim().parse::<u32>().map_err(|_| oid_out_of_range())?), None)
        }
        Value::Text(s) => (None, Some(s.clone())),
        Value::Int2(_) | Value::Int4(_) | Value::Int8(_) => {
            (Some(oid_arg(Some(&v)).ok_or_else(oid_out_of_range)?), None)
        }
        other => {
            return Err(Error::new(
                codes::CANNOT_COERCE,
                format!("cannot cast type {} to {}", crate::eval::type_name(other), kind.name()),
            ))
        }
    };
    match kind {
        RegKind::Class => reg_class(exec, by_oid, by_name),
        RegKind::Type => reg_type(by_oid, by_name),
        RegKind::Namespace => {
            let schemas = [
                (PG_CATALOG_OID, "pg_catalog"),
                (PUBLIC_OID, "public"),
                (INFORMATION_SCHEMA_OID, "information_schema"),
            ];
            match (by_oid, by_name) {
                (Some(o), _) => Ok(Value::Reg(
                    kind,
                    o,
                    schemas.iter().find(|s| s.0 == o).map_or(o.to_string(), |s| quote_ident(s.1)),
                )),
                (None, Some(name)) => {
                    let parts = parse_qualified(&name)?;
                    match (parts.as_slice(), schemas.iter().find(|s| parts.len() == 1 && s.1 == parts[0])) {
                        (_, Some((o, n))) => Ok(Value::Reg(kind, *o, quote_ident(n))),
                        _ => Err(Error::new(codes::INVALID_SCHEMA_NAME, format!("schema \"{name}\" does not exist"))),
                    }
                }
                (None, None) => Ok(Value::Null),
            }
        }
        RegKind::Role => match (by_oid, by_name) {
            (Some(o), _) => {
                Ok(Value::Reg(kind, o, if o == SUPERUSER_OID { SUPERUSER_NAME.into() } else { o.to_string() }))
            }
            (None, Some(name)) if parse_qualified(&name)? == [SUPERUSER_NAME] => {
                Ok(Value::Reg(kind, SUPERUSER_OID, SUPERUSER_NAME.into()))
            }
            (None, Some(name)) => Err(Error::new(codes::UNDEFINED_OBJECT, format!("role \"{name}\" does not exist"))),
            (None, None) => Ok(Value::Null),
        },
        RegKind::Proc => match by_oid {
            Some(o) => Ok(Value::Reg(kind, o, o.to_string())),
            None => Err(Error::unsupported("regproc input by name (Bulwark has no pg_proc)")),
        },
    }
}

fn reg_class(exec: &mut Exec, by_oid: Option<u32>, by_name: Option<String>) -> Result<Value> {
    let kind = RegKind::Class;
    // pg_class, as this statement sees it (cached with the scan of pg_class).
    let class = super::lookup("pg_catalog.pg_class").expect("pg_class is a system table");
    let rows = super::scan(exec, &class)?;
    let field = |r: &Row, i: usize| match &r[i] {
        Value::Int8(n) => u32::try_from(*n).unwrap_or(0),
        _ => 0,
    };
    if let Some(o) = by_oid {
        let name = rows
            .iter()
            .find(|r| field(r, 0) == o)
            .map(|r| relation_display(&crate::eval::to_text(&r[1]).unwrap_or_default(), field(r, 2)));
        return Ok(Value::Reg(kind, o, name.unwrap_or_else(|| o.to_string())));
    }
    let Some(text) = by_name else { return Ok(Value::Null) };
    let parts = parse_qualified(&text)?;
    let (schema, name) = split_schema(&parts, &text)?;
    let namespaces: Vec<u32> = match schema {
        None => vec![PG_CATALOG_OID, PUBLIC_OID],
        Some("pg_catalog") => vec![PG_CATALOG_OID],
        Some("public") => vec![PUBLIC_OID],
        Some("information_schema") => vec![INFORMATION_SCHEMA_OID],
        Some(other) => {
            return Err(Error::new(codes::INVALID_SCHEMA_NAME, format!("schema \"{other}\" does not exist")))
        }
    };
    for ns in namespaces {
        let found = rows.iter().find(|r| field(r, 2) == ns && crate::eval::to_text(&r[1]).as_deref() == Some(name));
        if let Some(r) = found {
            return Ok(Value::Reg(kind, field(r, 0), relation_display(name, ns)));
        }
    }
    Err(undefined_relation(&text))
}

/// The SQL spellings of the types (`integer`, `int`, `character varying`, ...).
fn type_by_name(name: &str) -> Option<u32> {
    let alias = match name {
        "int" | "integer" => Some(23),
        "smallint" => Some(21),
        "bigint" => Some(20),
        "real" => Some(700),
        "double precision" | "float" => Some(701),
        "boolean" => Some(16),
        "decimal" => Some(1700),
        "character varying" => Some(1043),
        "character" | "char" => Some(1042),
        "timestamp without time zone" => Some(1114),
        "timestamp with time zone" => Some(1184),
        "\"char\"" => Some(18),
        _ => None,
    };
    alias.or_else(|| {
        TYPES.iter().find(|t| t.name == name).map(|t| t.oid).or_else(|| {
            let elem = name.strip_prefix('_').or_else(|| name.strip_suffix("[]"))?;
            type_by_name(elem).and_then(sys_type).map(|t| t.array).filter(|&a| a != 0)
        })
    })
}

fn reg_type(by_oid: Option<u32>, by_name: Option<String>) -> Result<Value> {
    let kind = RegKind::Type;
    if let Some(o) = by_oid {
        let name = if sys_type(o).is_some() || array_of(o).is_some() { format_type(o, -1) } else { o.to_string() };
        return Ok(Value::Reg(kind, o, name));
    }
    let Some(text) = by_name else { return Ok(Value::Null) };
    let lower = text.trim().to_ascii_lowercase();
    let bare = lower.strip_prefix("pg_catalog.").unwrap_or(&lower);
    match type_by_name(bare) {
        Some(o) => Ok(Value::Reg(kind, o, format_type(o, -1))),
        None => Err(Error::new(codes::UNDEFINED_OBJECT, format!("type \"{text}\" does not exist"))),
    }
}

// ---- functions in FROM ----------------------------------------------------------------

/// The columns a function in FROM yields, from its arguments' types (None: unknown).
pub fn table_function_columns(name: &str, args: &[Option<DataType>]) -> Result<Vec<(String, DataType)>> {
    let out = match (name, args.len()) {
        ("generate_series", 2 | 3) => {
            let t = if args.iter().any(|a| matches!(a, Some(DataType::Numeric { .. }))) {
                DataType::Numeric { precision: None, scale: None }
            } else if args.iter().any(|a| matches!(a, Some(DataType::Int8) | None)) {
                DataType::Int8
            } else {
                DataType::Int4
            };
            vec![("generate_series".to_string(), t)]
        }
        // An array's elements have its element type; an array of unknown type gives text.
        // UNNEST(a, b, ...) in FROM gives one column per array.
        ("unnest", n) if n >= 1 => args
            .iter()
            .map(|a| {
                let t = match a {
                    Some(DataType::Array(elem)) => DataType::from_oid(*elem).unwrap_or(DataType::Text),
                    _ => DataType::Text,
                };
                ("unnest".to_string(), t)
            })
            .collect(),
        ("generate_subscripts", 2 | 3) => vec![("generate_subscripts".to_string(), DataType::Int4)],
        ("pg_partition_ancestors", 1) => vec![("relid".to_string(), DataType::Reg(RegKind::Class))],
        (name, 1) if crate::eval::json::table_function_columns(name).is_some() => {
            crate::eval::json::table_function_columns(name).expect("checked")
        }
        _ => {
            let types: Vec<&str> = args.iter().map(|a| a.as_ref().map_or("unknown", DataType::pg_name)).collect();
            return Err(Error::new(
                codes::UNDEFINED_FUNCTION,
                format!("function {name}({}) does not exist as a table function", types.join(", ")),
            ));
        }
    };
    Ok(out)
}

/// Runs a function in FROM.
/// `types` are the columns' types as [`table_function_columns`] gave them.
pub fn table_function(
    exec: &mut Exec,
    name: &str,
    args: Vec<Value>,
    ordinality: bool,
    types: &[DataType],
) -> Result<Vec<Row>> {
    let mut rows: Vec<Row> = match name {
        "generate_series" => generate_series(exec, &args)?,
        // The arrays side by side, the shorter ones padded with NULLs.
        "unnest" => {
            let mut columns = Vec::with_capacity(args.len());
            for (i, arg) in args.iter().enumerate() {
                let items = match arg {
                    Value::Null => Vec::new(),
                    Value::Text(s) => array::parse(s)?.items,
                    other => return Err(wrong_args(name, std::slice::from_ref(other))),
                };
                let elem = types.get(i).unwrap_or(&DataType::Text);
                let mut values = Vec::with_capacity(items.len());
                for item in items {
                    values.push(match item {
                        None => Value::Null,
                        Some(text) if *elem == DataType::Text => Value::Text(text),
                        Some(text) => crate::eval::parse_text(&text, elem)?,
                    });
                }
                columns.push(values);
            }
            let n = columns.iter().map(Vec::len).max().unwrap_or(0);
            (0..n).map(|i| columns.iter().map(|c| c.get(i).cloned().unwrap_or(Value::Null)).collect()).collect()
        }
        // The subscripts of a one-dimensional array (Bulwark's arrays have one dimension),
        // descending if the third argument is true.
        "generate_subscripts" => match (args.first(), args.get(1).and_then(|d| int_arg(Some(d)))) {
            (Some(Value::Text(s)), Some(1)) => {
                let a = array::parse(s)?;
                let n = a.items.len() as i64;
                let mut subs: Vec<Row> =
                    (a.lower..a.lower + n).map(|i| vec![Value::Int4(i32::try_from(i).unwrap_or(i32::MAX))]).collect();
                if matches!(args.get(2), Some(Value::Bool(true))) {
                    subs.reverse();
                }
                subs
            }
            _ => Vec::new(),
        },
        // Bulwark has no partitions: a relation's only ancestor is itself.
        "pg_partition_ancestors" => match args.first() {
            Some(Value::Null) | None => Vec::new(),
            Some(v) => vec![vec![to_reg(exec, RegKind::Class, v.clone())?]],
        },
        other => match crate::eval::json::table_function(other, &args) {
            Some(rows) => rows?,
            None => return Err(Error::new(codes::UNDEFINED_FUNCTION, format!("function {other} does not exist"))),
        },
    };
    if name != "generate_series" {
        // Bounded by the arguments' size, so charged once built (generate_series charges
        // each row as it makes it).
        let bytes = rows.iter().map(|r| crate::exec::row_bytes(r)).sum();
        exec.charge_named(bytes, || format!("function scan of {name}"))?;
        exec.release(bytes);
    }
    if ordinality {
        for (i, r) in rows.iter_mut().enumerate() {
            r.push(Value::Int8(i as i64 + 1));
        }
    }
    Ok(rows)
}

fn generate_series(exec: &mut Exec, args: &[Value]) -> Result<Vec<Row>> {
    if args.iter().any(Value::is_null) {
        return Ok(Vec::new());
    }
    let numeric = args.iter().any(|a| matches!(a, Value::Numeric(_)));
    let wide = args.iter().any(|a| matches!(a, Value::Int8(_) | Value::Text(_)));
    let int = |v: &Value| match crate::eval::cast(v.clone(), &DataType::Int8, true)? {
        Value::Int8(n) => Ok(n),
        other => Err(wrong_args("generate_series", std::slice::from_ref(&other))),
    };
    if numeric || args.iter().any(|a| !matches!(a, Value::Int2(_) | Value::Int4(_) | Value::Int8(_) | Value::Text(_))) {
        return Err(Error::unsupported("generate_series over types other than integers"));
    }
    let (start, stop) = (int(&args[0])?, int(&args[1])?);
    let step = match args.get(2) {
        Some(v) => int(v)?,
        None => 1,
    };
    if step == 0 {
        return Err(Error::new(codes::INVALID_PARAMETER_VALUE, "step size cannot equal zero"));
    }
    let mut out = Vec::new();
    let mut held = 0;
    let mut i = start;
    while (step > 0 && i <= stop) || (step < 0 && i >= stop) {
        exec.tick()?;
        let row = vec![if wide { Value::Int8(i) } else { Value::Int4(i32::try_from(i).unwrap_or(i32::MAX)) }];
        exec.charge_output(&row, &mut held, || "function scan of generate_series".to_string())?;
        out.push(row);
        if out.len() > ROWS_MAX {
            return Err(Error::new(codes::OUT_OF_MEMORY, format!("generate_series exceeds {ROWS_MAX} rows")));
        }
        match i.checked_add(step) {
            Some(next) => i = next,
            None => break,
        }
    }
    exec.release(held);
    Ok(out)
}
