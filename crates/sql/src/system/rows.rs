//! The rows of each system table, made from a [`Snapshot`] of the catalog and the session.

use super::defs::{
    array_of, Schema, SysTable, INFORMATION_SCHEMA_OID, PG_CATALOG_OID, PG_CLASS_OID, PG_CONSTRAINT_OID, PUBLIC_OID,
    TABLES, TYPES,
};
use super::settings;
use super::snapshot::{deparse, Con, ConKind, IndexRef, Rel, RelKind, Snapshot, SUPERUSER_NAME, SUPERUSER_OID};
use crate::ast::ReferentialAction;
use crate::catalog;
use crate::eval::array;
use crate::exec::Row;
use crate::types::{DataType, Value};

/// The database's oid and name.
pub const DATABASE_OID: u32 = 5;
/// The database's name (the server accepts connections to this one only).
pub const DATABASE_NAME: &str = "bulwark";
/// pg_am oids.
const HEAP_AM_OID: u32 = 2;
const BTREE_AM_OID: u32 = 403;
/// The default collation's oid (`attcollation` of text columns).
pub const DEFAULT_COLLATION_OID: u32 = 100;
/// pg_default, the one tablespace.
const DEFAULT_TABLESPACE_OID: u32 = 1663;

fn oid(v: u32) -> Value {
    Value::Int8(i64::from(v))
}

fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

fn ch(c: char) -> Value {
    Value::Text(c.to_string())
}

fn b(v: bool) -> Value {
    Value::Bool(v)
}

fn i2(v: usize) -> Value {
    Value::Int2(i16::try_from(v).unwrap_or(i16::MAX))
}

fn i4(v: i64) -> Value {
    Value::Int4(i32::try_from(v).unwrap_or(i32::MAX))
}

fn opt_text(s: Option<String>) -> Value {
    s.map_or(Value::Null, Value::Text)
}

fn yes_no(v: bool) -> Value {
    text(if v { "YES" } else { "NO" })
}

const NULL: Value = Value::Null;

/// The rows of system table `def`; `snapshot` gives the user's objects.
pub fn rows(def: &SysTable, snapshot: &Snapshot, settings: &[(String, String)]) -> Vec<Row> {
    let rows = match (def.schema, def.name) {
        (Schema::PgCatalog, "pg_class") => pg_class(snapshot),
        (Schema::PgCatalog, "pg_namespace") => vec![
            vec![oid(PG_CATALOG_OID), text("pg_catalog"), oid(SUPERUSER_OID), NULL],
            vec![oid(PUBLIC_OID), text("public"), oid(SUPERUSER_OID), NULL],
            vec![oid(INFORMATION_SCHEMA_OID), text("information_schema"), oid(SUPERUSER_OID), NULL],
        ],
        (Schema::PgCatalog, "pg_attribute") => pg_attribute(snapshot),
        (Schema::PgCatalog, "pg_description") => snapshot
            .comments
            .iter()
            .map(|(o, subid, t)| vec![oid(*o), oid(PG_CLASS_OID), i4(*subid as i64), text(t)])
            .collect(),
        (Schema::PgCatalog, "pg_type") => pg_type(snapshot),
        (Schema::PgCatalog, "pg_enum") => snapshot
            .enums
            .iter()
            .flat_map(|t| {
                t.labels.iter().enumerate().map(move |(i, (label, order))| {
                    vec![oid(enum_label_oid(t.oid, i)), oid(t.oid), Value::Float4(*order as f32), text(label)]
                })
            })
            .collect(),
        (Schema::PgCatalog, "pg_index") => pg_index(snapshot),
        (Schema::PgCatalog, "pg_constraint") => pg_constraint(snapshot),
        (Schema::PgCatalog, "pg_attrdef") => snapshot
            .defaults
            .iter()
            .map(|d| {
                let t = &snapshot.tables[d.table];
                let default = t.columns[d.column].default.as_ref().map(deparse);
                vec![oid(d.oid), oid(snapshot.table_oid(d.table)), i2(d.column + 1), opt_text(default)]
            })
            .collect(),
        (Schema::PgCatalog, "pg_am") => vec![
            vec![oid(HEAP_AM_OID), text("heap"), text("heap_tableam_handler"), ch('t')],
            vec![oid(BTREE_AM_OID), text("btree"), text("bthandler"), ch('i')],
        ],
        (Schema::PgCatalog, "pg_database") => vec![vec![
            oid(DATABASE_OID),
            text(DATABASE_NAME),
            oid(SUPERUSER_OID),
            Value::Int4(6), // UTF8
            ch('c'),
            b(false),
            b(true),
            Value::Int4(-1),
            Value::Int8(0),
            Value::Int8(1),
            oid(DEFAULT_TABLESPACE_OID),
            text("C"),
            text("C"),
            NULL,
            NULL,
            NULL,
        ]],
        (Schema::PgCatalog, "pg_collation") => [
            (DEFAULT_COLLATION_OID, "default", 'd', None),
            (950, "C", 'c', Some("C")),
            (951, "POSIX", 'c', Some("POSIX")),
        ]
        .into_iter()
        .map(|(o, name, provider, locale)| {
            let locale = locale.map_or(NULL, text);
            vec![
                oid(o),
                text(name),
                oid(PG_CATALOG_OID),
                oid(SUPERUSER_OID),
                ch(provider),
                b(true),
                Value::Int4(-1),
                locale.clone(),
                locale,
                NULL,
                NULL,
            ]
        })
        .collect(),
        (Schema::PgCatalog, "pg_sequence") => sequences(snapshot)
            .map(|(rel, t)| {
                let p = sequence_params(snapshot, rel, &t);
                vec![
                    oid(rel.oid),
                    oid(t.oid()),
                    Value::Int8(p.start),
                    Value::Int8(p.increment),
                    Value::Int8(p.max),
                    Value::Int8(p.min),
                    Value::Int8(p.cache),
                    b(p.cycle),
                ]
            })
            .collect(),
        (Schema::PgCatalog, "pg_depend") => pg_depend(snapshot),
        (Schema::PgCatalog, "pg_tablespace") => vec![
            vec![oid(DEFAULT_TABLESPACE_OID), text("pg_default"), oid(SUPERUSER_OID), NULL, NULL],
            vec![oid(1664), text("pg_global"), oid(SUPERUSER_OID), NULL, NULL],
        ],
        (Schema::PgCatalog, "pg_roles") => vec![vec![
            text(SUPERUSER_NAME),
            b(true),
            b(true),
            b(true),
            b(true),
            b(true),
            b(true),
            Value::Int4(-1),
            text("********"),
            NULL,
            b(true),
            NULL,
            oid(SUPERUSER_OID),
        ]],
        (Schema::PgCatalog, "pg_user") => vec![vec![
            text(SUPERUSER_NAME),
            oid(SUPERUSER_OID),
            b(true),
            b(true),
            b(true),
            b(true),
            text("********"),
            NULL,
            NULL,
        ]],
        (Schema::PgCatalog, "pg_settings") => settings::rows(settings),
        (Schema::PgCatalog, "pg_tables") => pg_tables(snapshot),
        // PL/pgSQL, which every PostgreSQL database has (Bulwark runs no function in it).
        (Schema::PgCatalog, "pg_extension") => vec![vec![
            oid(PLPGSQL_EXTENSION_OID),
            text("plpgsql"),
            oid(SUPERUSER_OID),
            oid(PG_CATALOG_OID),
            b(false),
            text("1.0"),
            NULL,
            NULL,
        ]],
        (Schema::PgCatalog, "pg_views") => (0..snapshot.tables.len())
            .filter_map(|i| {
                let sql = snapshot.view_sql[i].as_ref()?;
                Some(vec![text("public"), text(&snapshot.tables[i].name), text(SUPERUSER_NAME), text(sql)])
            })
            .collect(),
        (Schema::InformationSchema, "views") => (0..snapshot.tables.len())
            .filter_map(|i| {
                let sql = snapshot.view_sql[i].as_ref()?;
                let no = || text("NO");
                Some(vec![
                    text(DATABASE_NAME),
                    text("public"),
                    text(&snapshot.tables[i].name),
                    text(sql),
                    text("NONE"),
                    no(),
                    no(),
                    no(),
                    no(),
                    no(),
                ])
            })
            .collect(),
        (Schema::PgCatalog, "pg_stats") => pg_stats(snapshot),
        (Schema::PgCatalog, "pg_indexes") => snapshot
            .rels
            .iter()
            .filter(|r| matches!(r.kind, RelKind::Index(_)))
            .map(|r| {
                vec![
                    text("public"),
                    text(&snapshot.tables[r.table].name),
                    text(&r.name),
                    NULL,
                    opt_text(snapshot.index_def(r)),
                ]
            })
            .collect(),
        (Schema::PgCatalog, "pg_sequences") => sequences(snapshot)
            .map(|(rel, t)| {
                let p = sequence_params(snapshot, rel, &t);
                vec![
                    text("public"),
                    text(&rel.name),
                    text(SUPERUSER_NAME),
                    text(t.pg_name()),
                    Value::Int8(p.start),
                    Value::Int8(p.min),
                    Value::Int8(p.max),
                    Value::Int8(p.increment),
                    b(p.cycle),
                    Value::Int8(p.cache),
                    NULL,
                ]
            })
            .collect(),
        (Schema::InformationSchema, "schemata") => ["pg_catalog", "public", "information_schema"]
            .into_iter()
            .map(|s| vec![text(DATABASE_NAME), text(s), text(SUPERUSER_NAME), NULL, NULL, NULL, NULL])
            .collect(),
        (Schema::InformationSchema, "tables") => info_tables(snapshot),
        (Schema::InformationSchema, "columns") => info_columns(snapshot),
        (Schema::InformationSchema, "table_constraints") => table_constraints(snapshot),
        (Schema::InformationSchema, "key_column_usage") => key_column_usage(snapshot),
        (Schema::InformationSchema, "referential_constraints") => referential_constraints(snapshot),
        // Catalogs of features Bulwark does not have: role membership, descriptions,
        // inheritance, policies,
        // triggers (foreign keys are enforced without them), rules, extended statistics,
        // publications, extensions.
        _ => Vec::new(),
    };
    for r in &rows {
        assert_eq!(r.len(), def.columns.len(), "row of {} has the wrong width", def.name);
    }
    rows
}

/// Sequences and their column's type.
fn sequences(s: &Snapshot) -> impl Iterator<Item = (&Rel, DataType)> {
    s.rels.iter().filter_map(|r| match r.kind {
        RelKind::Sequence { column } => Some((r, s.tables[r.table].columns[column].data_type.clone())),
        _ => None,
    })
}

/// pg_extension's oid for plpgsql (PostgreSQL 15's on a fresh cluster).
const PLPGSQL_EXTENSION_OID: u32 = 13559;

/// A sequence's parameters: its definition's for a CREATE SEQUENCE sequence, a SERIAL
/// column's (from 1 by 1 to its type's largest value) otherwise.
fn sequence_params(s: &Snapshot, rel: &Rel, t: &DataType) -> catalog::Sequence {
    match s.sequence_defs.get(rel.table).and_then(Option::as_ref) {
        Some(d) => d.clone(),
        None => catalog::Sequence {
            id: 0,
            name: rel.name.clone(),
            data_type: t.clone(),
            increment: 1,
            min: 1,
            max: type_max(t),
            start: 1,
            cache: 1,
            cycle: false,
        },
    }
}

fn type_max(t: &DataType) -> i64 {
    match t {
        DataType::Int2 => i64::from(i16::MAX),
        DataType::Int4 => i64::from(i32::MAX),
        _ => i64::MAX,
    }
}

/// `pg_attribute.atttypmod` of a type (see `server::codec::type_modifier`).
pub fn typmod(t: &DataType) -> i32 {
    const VARHDRSZ: i32 = 4;
    match t {
        DataType::Varchar(Some(n)) | DataType::Char(Some(n)) => i32::try_from(*n).map_or(-1, |n| n + VARHDRSZ),
        DataType::Numeric { precision: Some(p), scale } => {
            ((i32::try_from(*p).unwrap_or(0) << 16) | i32::try_from(scale.unwrap_or(0)).unwrap_or(0)) + VARHDRSZ
        }
        DataType::TimestampP { precision, .. } => i32::try_from(*precision).unwrap_or(-1),
        _ => -1,
    }
}

/// typlen, typbyval, typalign, typstorage of a type oid.
fn type_layout(type_oid: u32) -> (i16, bool, char, char) {
    match super::defs::sys_type(type_oid) {
        Some(t) => {
            let byval = t.len > 0 && t.len <= 8 && t.oid != 19;
            let storage = match t.oid {
                1700 => 'm',
                _ if t.len < 0 => 'x',
                _ => 'p',
            };
            (t.len, byval, t.align, storage)
        }
        None => (-1, false, 'i', 'x'),
    }
}

fn collation_of(t: &DataType) -> u32 {
    match t {
        DataType::Text | DataType::Varchar(_) | DataType::Char(_) => DEFAULT_COLLATION_OID,
        _ => 0,
    }
}

/// The position of reltuples in a pg_class row (see `class_row`).
const PG_CLASS_RELTUPLES: usize = 10;

#[allow(clippy::too_many_arguments)]
fn class_row(
    oid_: u32,
    name: &str,
    namespace: u32,
    kind: char,
    am: u32,
    natts: usize,
    checks: usize,
    has_index: bool,
    replident: char,
    shared: bool,
    has_triggers: bool,
) -> Row {
    let storage = matches!(kind, 'r' | 'i' | 'S');
    vec![
        oid(oid_),
        text(name),
        oid(namespace),
        oid(0),
        oid(0),
        oid(SUPERUSER_OID),
        oid(am),
        oid(if storage { oid_ } else { 0 }),
        oid(0),
        Value::Int4(0),
        Value::Float4(if storage { -1.0 } else { 0.0 }),
        Value::Int4(0),
        oid(0),
        b(has_index),
        b(shared),
        ch('p'),
        ch(kind),
        i2(natts),
        i2(checks),
        b(false),
        b(has_triggers),
        b(false),
        b(false),
        b(false),
        b(true),
        ch(replident),
        b(false),
        oid(0),
        Value::Int8(0),
        Value::Int8(0),
        NULL,
        NULL,
        NULL,
    ]
}

/// pg_stats: a row per column of each analysed table that had rows, from what ANALYZE
/// stored (the NULL fraction and the number of distinct values; Bulwark keeps no widths,
/// common values, histograms or correlation).
fn pg_stats(s: &Snapshot) -> Vec<Row> {
    let mut out = Vec::new();
    for (t, stats) in s.tables.iter().zip(&s.stats) {
        let Some(stats) = stats.as_ref().filter(|st| st.rows > 0) else { continue };
        let rows = stats.rows as f64;
        for (col, c) in t.columns.iter().zip(&stats.columns) {
            let null_frac = c.nulls as f64 / rows;
            // As PostgreSQL's ANALYZE: a count that looks like it grows with the table
            // (over a tenth of the rows) is stored as a negative fraction of the rows.
            let n_distinct =
                if c.distinct as f64 > 0.1 * rows { -(c.distinct as f64 / rows) } else { c.distinct as f64 };
            out.push(vec![
                text("public"),
                text(&t.name),
                text(&col.name),
                b(false),
                Value::Float4(null_frac as f32),
                NULL,
                Value::Float4(n_distinct as f32),
                NULL,
                NULL,
                NULL,
                NULL,
                NULL,
                NULL,
                NULL,
            ]);
        }
    }
    out
}

fn pg_class(s: &Snapshot) -> Vec<Row> {
    let mut out = Vec::new();
    for t in TABLES {
        let (kind, am) = if t.view { ('v', 0) } else { ('r', HEAP_AM_OID) };
        let shared = matches!(t.name, "pg_database" | "pg_tablespace");
        out.push(class_row(t.oid, t.name, t.schema.oid(), kind, am, t.columns.len(), 0, false, 'n', shared, false));
    }
    for r in &s.rels {
        let t = &s.tables[r.table];
        out.push(match r.kind {
            RelKind::Table => {
                let has_index = !t.primary_key.is_empty() || !t.indexes.is_empty();
                // PostgreSQL checks foreign keys with triggers and psql looks for foreign
                // keys only where relhastriggers is set: set it where one is involved.
                let foreign = !t.foreign_keys.is_empty()
                    || s.tables.iter().any(|o| o.foreign_keys.iter().any(|fk| fk.table == t.name));
                let (natts, checks) = (t.columns.len(), t.checks.len());
                let mut row = class_row(
                    r.oid,
                    &r.name,
                    PUBLIC_OID,
                    'r',
                    HEAP_AM_OID,
                    natts,
                    checks,
                    has_index,
                    'd',
                    false,
                    foreign,
                );
                if let Some(Some(rows)) = s.reltuples.get(r.table) {
                    row[PG_CLASS_RELTUPLES] = Value::Float4(*rows as f32); // ANALYZE's count
                }
                row
            }
            RelKind::Index(ix) => {
                let n = s.index_columns(r.table, ix).len();
                class_row(r.oid, &r.name, PUBLIC_OID, 'i', BTREE_AM_OID, n, 0, false, 'n', false, false)
            }
            RelKind::Sequence { .. } => class_row(r.oid, &r.name, PUBLIC_OID, 'S', 0, 3, 0, false, 'n', false, false),
            RelKind::View => {
                class_row(r.oid, &r.name, PUBLIC_OID, 'v', 0, t.columns.len(), 0, false, 'n', false, false)
            }
        });
    }
    out
}

/// One pg_attribute row.
fn attribute(rel: u32, name: &str, t: &DataType, num: usize, not_null: bool, has_default: bool) -> Row {
    let type_oid = t.oid();
    let (len, byval, align, storage) = type_layout(type_oid);
    vec![
        oid(rel),
        text(name),
        oid(type_oid),
        Value::Int4(-1),
        Value::Int2(len),
        i2(num),
        Value::Int4(0),
        Value::Int4(-1),
        Value::Int4(typmod(t)),
        b(byval),
        ch(align),
        ch(storage),
        text(""),
        b(not_null),
        b(has_default),
        b(false),
        text(""),
        text(""),
        b(false),
        b(true),
        Value::Int4(0),
        oid(collation_of(t)),
        NULL,
        NULL,
        NULL,
        NULL,
    ]
}

fn pg_attribute(s: &Snapshot) -> Vec<Row> {
    let mut out = Vec::new();
    for t in TABLES {
        for (i, (name, ty)) in t.columns.iter().enumerate() {
            out.push(attribute(t.oid, name, &ty.data_type(), i + 1, false, false));
        }
    }
    for r in &s.rels {
        let t = &s.tables[r.table];
        match r.kind {
            RelKind::Table | RelKind::View => {
                for (i, c) in t.columns.iter().enumerate() {
                    let not_null = c.not_null || t.primary_key.contains(&i);
                    out.push(attribute(r.oid, &c.name, &c.data_type, i + 1, not_null, c.default.is_some()));
                }
            }
            RelKind::Index(ix) => {
                for (i, &c) in s.index_columns(r.table, ix).iter().enumerate() {
                    let c = &t.columns[c];
                    out.push(attribute(r.oid, &c.name, &c.data_type, i + 1, false, false));
                }
            }
            RelKind::Sequence { .. } => {
                out.push(attribute(r.oid, "last_value", &DataType::Int8, 1, true, false));
                out.push(attribute(r.oid, "log_cnt", &DataType::Int8, 2, true, false));
                out.push(attribute(r.oid, "is_called", &DataType::Bool, 3, true, false));
            }
        }
    }
    out
}

/// The name of a type's input/output/receive/send function, as PostgreSQL names them.
fn io_function(typname: &str, suffix: &str) -> Value {
    let underscore = matches!(typname, "date" | "timestamp" | "timestamptz" | "interval" | "numeric");
    Value::Text(if underscore { format!("{typname}_{suffix}") } else { format!("{typname}{suffix}") })
}

/// The oid of label `i` of enum type `type_oid` (in the hashed range, as other derived
/// oids; nothing refers to it).
fn enum_label_oid(type_oid: u32, i: usize) -> u32 {
    let h = (u64::from(type_oid) << 20 | i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    0x4000_0000 | (h >> 34) as u32
}

fn pg_type(s: &Snapshot) -> Vec<Row> {
    let mut out = Vec::new();
    for t in &s.enums {
        out.push(vec![
            oid(t.oid),
            text(&t.name),
            oid(PUBLIC_OID),
            oid(SUPERUSER_OID),
            Value::Int2(4),
            b(true),
            ch('e'),
            ch('E'),
            b(false),
            b(true),
            ch(','),
            oid(0),
            text("-"),
            oid(0),
            oid(0),
            text("enum_in"),
            text("enum_out"),
            text("enum_recv"),
            text("enum_send"),
            text("-"),
            text("-"),
            text("-"),
            ch('i'),
            ch('p'),
            b(false),
            oid(0),
            Value::Int4(-1),
            Value::Int4(0),
            oid(0),
            NULL,
            NULL,
            NULL,
        ]);
    }
    for t in TYPES {
        let (len, byval, align, storage) = type_layout(t.oid);
        let vector_elem = match t.oid {
            22 => 21,
            30 => 26,
            _ => 0,
        };
        out.push(vec![
            oid(t.oid),
            text(t.name),
            oid(PG_CATALOG_OID),
            oid(SUPERUSER_OID),
            Value::Int2(len),
            b(byval),
            ch(if t.oid == 705 { 'p' } else { 'b' }),
            ch(t.category),
            b(t.preferred),
            b(true),
            ch(','),
            oid(0),
            text(if vector_elem != 0 { "array_subscript_handler" } else { "-" }),
            oid(vector_elem),
            oid(t.array),
            io_function(t.name, "in"),
            io_function(t.name, "out"),
            io_function(t.name, "recv"),
            io_function(t.name, "send"),
            text("-"),
            text("-"),
            text("-"),
            ch(align),
            ch(storage),
            b(false),
            oid(0),
            Value::Int4(-1),
            Value::Int4(0),
            oid(t.collation),
            NULL,
            NULL,
            NULL,
        ]);
        if t.array != 0 {
            out.push(vec![
                oid(t.array),
                text(&format!("_{}", t.name)),
                oid(PG_CATALOG_OID),
                oid(SUPERUSER_OID),
                Value::Int2(-1),
                b(false),
                ch('b'),
                ch('A'),
                b(false),
                b(true),
                ch(','),
                oid(0),
                text("array_subscript_handler"),
                oid(t.oid),
                oid(0),
                text("array_in"),
                text("array_out"),
                text("array_recv"),
                text("array_send"),
                text("-"),
                text("-"),
                text("array_typanalyze"),
                ch(if align == 'd' { 'd' } else { 'i' }),
                ch('x'),
                b(false),
                oid(0),
                Value::Int4(-1),
                Value::Int4(0),
                oid(t.collation),
                NULL,
                NULL,
                NULL,
            ]);
        }
    }
    debug_assert!(TYPES.iter().all(|t| t.array == 0 || array_of(t.array).is_some()));
    out
}

/// Attribute numbers (1-based) of column positions, as an int2vector (`1 2`).
fn vector(columns: &[usize]) -> Value {
    Value::Text(columns.iter().map(|c| (c + 1).to_string()).collect::<Vec<_>>().join(" "))
}

/// Attribute numbers as an int2[] (`{1,2}`).
fn attnums(columns: &[usize]) -> Value {
    Value::Text(array::format(&columns.iter().map(|c| Some((c + 1).to_string())).collect::<Vec<_>>()))
}

fn pg_index(s: &Snapshot) -> Vec<Row> {
    let mut out = Vec::new();
    for r in &s.rels {
        let RelKind::Index(ix) = r.kind else { continue };
        let t = &s.tables[r.table];
        let columns = s.index_columns(r.table, ix);
        let collations: Vec<String> =
            columns.iter().map(|&c| collation_of(&t.columns[c].data_type).to_string()).collect();
        let zeros = vec!["0"; columns.len()].join(" ");
        out.push(vec![
            oid(r.oid),
            oid(s.table_oid(r.table)),
            i2(columns.len()),
            i2(columns.len()),
            b(s.index_unique(r.table, ix)),
            b(false),
            b(ix == IndexRef::PrimaryKey),
            b(false),
            b(true),
            b(false),
            b(true),
            b(false),
            b(true),
            b(true),
            b(false),
            vector(columns),
            Value::Text(collations.join(" ")),
            Value::Text(zeros.clone()),
            Value::Text(zeros),
            NULL,
            NULL,
        ]);
    }
    out
}

fn action_code(a: ReferentialAction) -> char {
    match a {
        ReferentialAction::NoAction => 'a',
        ReferentialAction::Restrict => 'r',
        ReferentialAction::Cascade => 'c',
        ReferentialAction::SetNull => 'n',
    }
}

fn pg_constraint(s: &Snapshot) -> Vec<Row> {
    let mut out = Vec::new();
    for c in &s.cons {
        let t = &s.tables[c.table];
        let (contype, index, foreign, keys, fkeys, bin) = match c.kind {
            ConKind::PrimaryKey => {
                ('p', s.index_oid(c.table, IndexRef::PrimaryKey), None, t.primary_key.clone(), None, None)
            }
            ConKind::Unique(i) => {
                ('u', s.index_oid(c.table, IndexRef::Secondary(i)), None, t.indexes[i].columns.clone(), None, None)
            }
            ConKind::Check(i) => {
                let mut used = Vec::new();
                crate::bind::visit(&t.checks[i].1, &mut |e| {
                    if let crate::ast::Expr::Column { name, .. } = e {
                        if let Ok(p) = t.column_index(name) {
                            if !used.contains(&p) {
                                used.push(p);
                            }
                        }
                    }
                });
                used.sort_unstable();
                ('c', None, None, used, None, Some(deparse(&t.checks[i].1)))
            }
            ConKind::ForeignKey(i) => {
                let fk = &t.foreign_keys[i];
                let referenced = s.table_named(&fk.table);
                let index =
                    referenced.and_then(|r| s.unique_index_on(r, &fk.referred).and_then(|ix| s.index_oid(r, ix)));
                ('f', index, referenced.map(|r| (r, fk)), fk.columns.clone(), Some(fk.referred.clone()), None)
            }
        };
        let (confrelid, upd, del, matchtype) = match foreign {
            Some((r, fk)) => (s.table_oid(r), action_code(fk.on_update), action_code(fk.on_delete), 's'),
            None => (0, ' ', ' ', ' '),
        };
        let (deferrable, deferred) = deferral(s, c);
        out.push(vec![
            oid(c.oid),
            text(&c.name),
            oid(PUBLIC_OID),
            ch(contype),
            b(deferrable),
            b(deferred),
            b(true),
            oid(s.table_oid(c.table)),
            oid(0),
            oid(index.unwrap_or(0)),
            oid(0),
            oid(confrelid),
            ch(upd),
            ch(del),
            ch(matchtype),
            b(true),
            Value::Int4(0),
            b(false),
            if keys.is_empty() { NULL } else { attnums(&keys) },
            fkeys.map_or(NULL, |k| attnums(&k)),
            NULL,
            NULL,
            NULL,
            NULL,
            NULL,
            opt_text(bin),
        ]);
    }
    out
}

fn pg_depend(s: &Snapshot) -> Vec<Row> {
    let dep = |objclass: u32, obj: u32, refclass: u32, refobj: u32, refsub: usize, kind: char| {
        vec![oid(objclass), oid(obj), Value::Int4(0), oid(refclass), oid(refobj), i4(refsub as i64), ch(kind)]
    };
    let mut out = Vec::new();
    for r in &s.rels {
        let table = s.table_oid(r.table);
        match r.kind {
            RelKind::Table | RelKind::View => {}
            // A SERIAL column owns its sequence ('a': dropped with it).
            RelKind::Sequence { .. } if s.is_sequence(r.table) => {}
            RelKind::Sequence { column } => out.push(dep(PG_CLASS_OID, r.oid, PG_CLASS_OID, table, column + 1, 'a')),
            RelKind::Index(ix) => match s.index_constraint(r.table, ix) {
                // The index of a PRIMARY KEY or UNIQUE constraint belongs to it ('i').
                Some(con) => out.push(dep(PG_CLASS_OID, r.oid, PG_CONSTRAINT_OID, con.oid, 0, 'i')),
                None => {
                    for &c in s.index_columns(r.table, ix) {
                        out.push(dep(PG_CLASS_OID, r.oid, PG_CLASS_OID, table, c + 1, 'a'));
                    }
                }
            },
        }
    }
    for c in &s.cons {
        out.push(dep(PG_CONSTRAINT_OID, c.oid, PG_CLASS_OID, s.table_oid(c.table), 0, 'a'));
    }
    out
}

fn pg_tables(s: &Snapshot) -> Vec<Row> {
    let mut out: Vec<Row> = TABLES
        .iter()
        .filter(|t| !t.view)
        .map(|t| {
            vec![
                text(t.schema.name()),
                text(t.name),
                text(SUPERUSER_NAME),
                NULL,
                b(false),
                b(false),
                b(false),
                b(false),
            ]
        })
        .collect();
    for (i, t) in s.tables.iter().enumerate() {
        if s.is_view(i) || s.is_sequence(i) {
            continue;
        }
        let has_index = !t.primary_key.is_empty() || !t.indexes.is_empty();
        out.push(vec![
            text("public"),
            text(&t.name),
            text(SUPERUSER_NAME),
            NULL,
            b(has_index),
            b(false),
            b(false),
            b(false),
        ]);
    }
    out
}

fn info_tables(s: &Snapshot) -> Vec<Row> {
    let row = |schema: &str, name: &str, view: bool| {
        vec![
            text(DATABASE_NAME),
            text(schema),
            text(name),
            text(if view { "VIEW" } else { "BASE TABLE" }),
            NULL,
            NULL,
            NULL,
            NULL,
            NULL,
            yes_no(!view),
            yes_no(false),
            NULL,
        ]
    };
    let mut out: Vec<Row> = TABLES.iter().map(|t| row(t.schema.name(), t.name, t.view)).collect();
    out.extend(
        s.tables
            .iter()
            .enumerate()
            .filter(|(i, _)| !s.is_sequence(*i))
            .map(|(i, t)| row("public", &t.name, s.is_view(i))),
    );
    out
}

/// information_schema.columns' description of a type: data_type, character_maximum_length,
/// character_octet_length, numeric_precision, numeric_precision_radix, numeric_scale,
/// datetime_precision, udt_name.
fn info_type(t: &DataType) -> [Value; 8] {
    let int = |v: u32| Value::Int4(i32::try_from(v).unwrap_or(i32::MAX));
    let (chars, octets) = match t {
        DataType::Varchar(Some(n)) | DataType::Char(Some(n)) => (int(*n), int(n.saturating_mul(4))),
        DataType::Text | DataType::Varchar(None) | DataType::Char(None) => (NULL, int(1 << 30)),
        _ => (NULL, NULL),
    };
    let (precision, radix, scale) = match t {
        DataType::Int2 => (int(16), int(2), int(0)),
        DataType::Int4 => (int(32), int(2), int(0)),
        DataType::Int8 => (int(64), int(2), int(0)),
        DataType::Float4 => (int(24), int(2), NULL),
        DataType::Float8 => (int(53), int(2), NULL),
        DataType::Numeric { precision, scale } => {
            (precision.map_or(NULL, int), int(10), precision.map_or(NULL, |_| int(scale.unwrap_or(0))))
        }
        _ => (NULL, NULL, NULL),
    };
    let datetime = match t {
        DataType::Date => int(0),
        DataType::Time | DataType::Timestamp | DataType::TimestampTz | DataType::Interval => int(6),
        DataType::TimestampP { precision, .. } => int(*precision),
        _ => NULL,
    };
    let udt = match t {
        DataType::Enum(e) => e.name.as_str(),
        _ => super::defs::sys_type(t.oid()).map_or("", |s| s.name),
    };
    [text(t.pg_name()), chars, octets, precision, radix, scale, datetime, text(udt)]
}

#[allow(clippy::too_many_arguments)]
fn column_row(
    schema: &str,
    table: &str,
    name: &str,
    pos: usize,
    default: Option<String>,
    nullable: bool,
    t: &DataType,
    view: bool,
) -> Row {
    let [data_type, chars, octets, precision, radix, scale, datetime, udt] = info_type(t);
    vec![
        text(DATABASE_NAME),
        text(schema),
        text(table),
        text(name),
        i4(pos as i64),
        opt_text(default),
        yes_no(nullable),
        data_type,
        chars,
        octets,
        precision,
        radix,
        scale,
        datetime,
        NULL,
        NULL,
        NULL,
        NULL,
        NULL,
        NULL,
        NULL,
        NULL,
        NULL,
        NULL,
        NULL,
        text(DATABASE_NAME),
        text("pg_catalog"),
        udt,
        NULL,
        NULL,
        NULL,
        NULL,
        text(&pos.to_string()),
        yes_no(false),
        yes_no(false),
        NULL,
        NULL,
        NULL,
        NULL,
        NULL,
        NULL,
        text("NEVER"),
        NULL,
        yes_no(!view),
    ]
}

fn info_columns(s: &Snapshot) -> Vec<Row> {
    let mut out = Vec::new();
    for t in TABLES {
        for (i, (name, ty)) in t.columns.iter().enumerate() {
            out.push(column_row(t.schema.name(), t.name, name, i + 1, None, true, &ty.data_type(), t.view));
        }
    }
    for (ti, t) in s.tables.iter().enumerate().filter(|(ti, _)| !s.is_sequence(*ti)) {
        for (i, c) in t.columns.iter().enumerate() {
            let nullable = !(c.not_null || t.primary_key.contains(&i));
            let default = c.default.as_ref().map(deparse);
            out.push(column_row("public", &t.name, &c.name, i + 1, default, nullable, &c.data_type, s.is_view(ti)));
        }
    }
    out
}

fn constraint_type(kind: ConKind) -> &'static str {
    match kind {
        ConKind::PrimaryKey => "PRIMARY KEY",
        ConKind::Unique(_) => "UNIQUE",
        ConKind::Check(_) => "CHECK",
        ConKind::ForeignKey(_) => "FOREIGN KEY",
    }
}

/// A constraint's DEFERRABLE and INITIALLY DEFERRED (only foreign keys can be).
fn deferral(s: &Snapshot, c: &Con) -> (bool, bool) {
    match c.kind {
        ConKind::ForeignKey(i) => {
            let fk = &s.tables[c.table].foreign_keys[i];
            (fk.deferrable, fk.initially_deferred)
        }
        _ => (false, false),
    }
}

fn table_constraints(s: &Snapshot) -> Vec<Row> {
    s.cons
        .iter()
        .map(|c| {
            let keyed = matches!(c.kind, ConKind::PrimaryKey | ConKind::Unique(_));
            let (deferrable, deferred) = deferral(s, c);
            vec![
                text(DATABASE_NAME),
                text("public"),
                text(&c.name),
                text(DATABASE_NAME),
                text("public"),
                text(&s.tables[c.table].name),
                text(constraint_type(c.kind)),
                yes_no(deferrable),
                yes_no(deferred),
                yes_no(true),
                if keyed { yes_no(true) } else { NULL },
            ]
        })
        .collect()
}

fn key_column_usage(s: &Snapshot) -> Vec<Row> {
    let mut out = Vec::new();
    for c in &s.cons {
        let t = &s.tables[c.table];
        let (columns, foreign) = match c.kind {
            ConKind::PrimaryKey => (&t.primary_key, false),
            ConKind::Unique(i) => (&t.indexes[i].columns, false),
            ConKind::ForeignKey(i) => (&t.foreign_keys[i].columns, true),
            ConKind::Check(_) => continue,
        };
        for (k, &col) in columns.iter().enumerate() {
            out.push(vec![
                text(DATABASE_NAME),
                text("public"),
                text(&c.name),
                text(DATABASE_NAME),
                text("public"),
                text(&t.name),
                text(&t.columns[col].name),
                i4(k as i64 + 1),
                if foreign { i4(k as i64 + 1) } else { NULL },
            ]);
        }
    }
    out
}

fn rule(a: ReferentialAction) -> Value {
    text(match a {
        ReferentialAction::NoAction => "NO ACTION",
        ReferentialAction::Restrict => "RESTRICT",
        ReferentialAction::Cascade => "CASCADE",
        ReferentialAction::SetNull => "SET NULL",
    })
}

fn referential_constraints(s: &Snapshot) -> Vec<Row> {
    let mut out = Vec::new();
    for c in &s.cons {
        let ConKind::ForeignKey(i) = c.kind else { continue };
        let fk = &s.tables[c.table].foreign_keys[i];
        let unique = s.table_named(&fk.table).and_then(|r| {
            let ix = s.unique_index_on(r, &fk.referred)?;
            s.index_constraint(r, ix).map(|con| con.name.clone())
        });
        out.push(vec![
            text(DATABASE_NAME),
            text("public"),
            text(&c.name),
            text(DATABASE_NAME),
            text("public"),
            opt_text(unique),
            text("NONE"),
            rule(fk.on_update),
            rule(fk.on_delete),
        ]);
    }
    out
}
