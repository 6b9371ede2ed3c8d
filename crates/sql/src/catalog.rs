//! The catalog: table and index definitions, stored transactionally in the same key space
//! as the rows, so DDL commits or rolls back with the transaction that ran it.
//!
//! # Key layout (all keys go through the transaction layer)
//!
//! ```text
//!   C t <name>                          table definition (see `encode`)
//!   C i <name>                          index name -> owning table name
//!   C n                                 next object id (u32)
//!   C s <table id u32 BE>               statistics of the last ANALYZE (see `encode_stats`)
//!   Q <seq id u32 BE>                   sequence: the next value not yet handed out (i64)
//!   R <table id u32 BE> <primary key>   row: encode_row(all columns)
//!   X <index id u32 BE> <columns>       unique index entry -> primary key
//!   X <index id u32 BE> <columns> <pk>  non-unique index entry -> primary key
//! ```
//!
//! Primary keys and index columns use the order-preserving key encoding
//! (`storage::keycode`), so key order is value order and a prefix scan is a range scan.
//! A table without a primary key gets a hidden `ctid`-like row number from a sequence.
//!
//! Definitions are read through the transaction on each statement: a transaction sees its
//! own DDL and the committed DDL of its snapshot, like any other data. The engine watches
//! the `C` prefix ([`WATCHED_PREFIX`]): definitions and statistics are decoded once per
//! catalog version (the newest commit that changed a `C` key that the snapshot sees) and
//! shared by every transaction at that version, unless it changed the catalog itself
//! (`txn::Txn::get_decoded`).

use crate::ast::{Expr, ReferentialAction};
use crate::error::{codes, Error, Result};
use crate::types::{DataType, EnumType, RegKind};
use std::collections::{BTreeMap, HashMap};
use txn::Txn;

/// The most columns a table may have (as PostgreSQL).
pub const COLUMNS_MAX: usize = 1600;

/// Object ids from here up belong to the virtual system tables (`pg_catalog.pg_class`, ...,
/// see `system`); [`next_id`] never hands them out.
pub const SYSTEM_ID_MIN: u32 = 0xFFFF_0000;

/// A column of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Name.
    pub name: String,
    /// Type.
    pub data_type: DataType,
    /// NOT NULL.
    pub not_null: bool,
    /// DEFAULT expression.
    pub default: Option<Expr>,
    /// The sequence feeding a SERIAL / IDENTITY column.
    pub sequence: Option<u32>,
}

/// An index (unique constraints and primary keys included).
#[derive(Debug, Clone, PartialEq)]
pub struct Index {
    /// Object id (key prefix of its entries).
    pub id: u32,
    /// Name.
    pub name: String,
    /// Indexed column positions.
    pub columns: Vec<usize>,
    /// UNIQUE.
    pub unique: bool,
    /// Created by a UNIQUE constraint (dropped with the table, named in 23505 errors).
    pub constraint: bool,
}

/// A FOREIGN KEY constraint of the referencing table.
#[derive(Debug, Clone, PartialEq)]
pub struct ForeignKey {
    /// Constraint name.
    pub name: String,
    /// Referencing column positions.
    pub columns: Vec<usize>,
    /// Referenced table.
    pub table: String,
    /// Referenced column positions (its primary key or a unique index).
    pub referred: Vec<usize>,
    /// ON DELETE.
    pub on_delete: ReferentialAction,
    /// ON UPDATE.
    pub on_update: ReferentialAction,
    /// DEFERRABLE: SET CONSTRAINTS may move its check to the commit.
    pub deferrable: bool,
    /// INITIALLY DEFERRED: checked at the commit unless SET CONSTRAINTS says otherwise.
    pub initially_deferred: bool,
}

/// A table definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Object id (key prefix of its rows).
    pub id: u32,
    /// Name.
    pub name: String,
    /// Columns in order.
    pub columns: Vec<Column>,
    /// Primary key column positions; empty: a hidden row number keys the rows.
    pub primary_key: Vec<usize>,
    /// The primary key constraint's name.
    pub pk_name: String,
    /// The sequence of hidden row numbers (tables without a primary key).
    pub rowid_sequence: u32,
    /// Secondary and unique indexes.
    pub indexes: Vec<Index>,
    /// CHECK constraints: (name, condition).
    pub checks: Vec<(String, Expr)>,
    /// FOREIGN KEY constraints of this table.
    pub foreign_keys: Vec<ForeignKey>,
}

impl Table {
    /// The position of column `name`.
    pub fn column_index(&self, name: &str) -> Result<usize> {
        self.columns.iter().position(|c| c.name == name).ok_or_else(|| {
            Error::new(
                codes::UNDEFINED_COLUMN,
                format!("column \"{name}\" of relation \"{}\" does not exist", self.name),
            )
        })
    }
}

/// The prefix of every catalog key: commits that write under it change the catalog version.
pub const WATCHED_PREFIX: &[u8] = b"C";

/// Key prefixes.
pub mod keys {
    /// Table definitions.
    pub fn table(name: &str) -> Vec<u8> {
        [b"Ct".as_slice(), name.as_bytes()].concat()
    }
    /// All table definitions.
    pub const TABLES: &[u8] = b"Ct";
    /// Names no stored key: the cached map from each table to the tables whose foreign
    /// keys refer to it ([`super::referencing_tables`]).
    pub const REFERENCING: &[u8] = b"C\xffreferencing";
    /// View definitions.
    pub fn view(name: &str) -> Vec<u8> {
        [VIEWS, name.as_bytes()].concat()
    }
    /// All view definitions.
    pub const VIEWS: &[u8] = b"Cv";
    /// Sequence definitions (CREATE SEQUENCE).
    pub fn sequence_def(name: &str) -> Vec<u8> {
        [SEQUENCE_DEFS, name.as_bytes()].concat()
    }
    /// All sequence definitions.
    pub const SEQUENCE_DEFS: &[u8] = b"Cq";
    /// Index names.
    pub fn index(name: &str) -> Vec<u8> {
        [b"Ci".as_slice(), name.as_bytes()].concat()
    }
    /// The object id counter.
    pub const NEXT_ID: &[u8] = b"Cn";
    /// A comment (COMMENT ON) on relation `relation` (table, view, index or sequence), or
    /// on its column `column` (empty for the relation itself). The value is the text.
    pub fn comment(relation: &str, column: &str) -> Vec<u8> {
        [comments_of(relation).as_slice(), column.as_bytes()].concat()
    }
    /// The prefix of every comment on `relation` and its columns.
    pub fn comments_of(relation: &str) -> Vec<u8> {
        [COMMENTS, relation.as_bytes(), &[0]].concat()
    }
    /// All comments.
    pub const COMMENTS: &[u8] = b"Cd";
    /// An enum type (CREATE TYPE ... AS ENUM), by name.
    pub fn enum_type(name: &str) -> Vec<u8> {
        [ENUM_TYPES, name.as_bytes()].concat()
    }
    /// All enum types.
    pub const ENUM_TYPES: &[u8] = b"Cy";
    /// Roles.
    pub fn role(name: &str) -> Vec<u8> {
        [ROLES, name.as_bytes()].concat()
    }
    /// All roles.
    pub const ROLES: &[u8] = b"Cr";
    /// A table's statistics (ANALYZE).
    pub fn stats(table: u32) -> Vec<u8> {
        [b"Cs".as_slice(), &table.to_be_bytes()].concat()
    }
    /// A sequence.
    pub fn sequence(id: u32) -> Vec<u8> {
        [b"Q".as_slice(), &id.to_be_bytes()].concat()
    }
    /// The rows of a table.
    pub fn rows(table: u32) -> Vec<u8> {
        // Room for a primary key after it (`exec::row_key`), so that encoding one does not
        // reallocate.
        let mut key = Vec::with_capacity(ROW_KEY_CAPACITY);
        key.push(b'R');
        key.extend_from_slice(&table.to_be_bytes());
        key
    }
    /// The bytes [`rows`] reserves: the prefix and a key of a few columns.
    pub const ROW_KEY_CAPACITY: usize = 48;
    /// The entries of an index.
    pub fn index_entries(index: u32) -> Vec<u8> {
        [b"X".as_slice(), &index.to_be_bytes()].concat()
    }
}

/// Reads a table definition, or None.
pub fn get_table(txn: &mut Txn, name: &str) -> Result<Option<Table>> {
    Ok(txn.get_decoded(&keys::table(name), decode)?.map(|t| Table::clone(&t)))
}

/// Reads a table definition, or 42P01.
pub fn table(txn: &mut Txn, name: &str) -> Result<Table> {
    get_table(txn, name)?
        .ok_or_else(|| Error::new(codes::UNDEFINED_TABLE, format!("relation \"{name}\" does not exist")))
}

/// Locks a table's definition for a statement that writes its rows (`exclusive` false:
/// writers run together) or changes the definition (`exclusive` true: DDL waits for the
/// writers and holds new ones off until it commits, as PostgreSQL's ACCESS EXCLUSIVE lock),
/// and returns the newest committed definition, or this transaction's own. Under REPEATABLE
/// READ and SERIALIZABLE, a definition changed since the snapshot is a serialization failure:
/// the rows the snapshot shows may not have the layout the definition now describes.
pub fn lock_table(txn: &mut Txn, name: &str, exclusive: bool) -> Result<Table> {
    decode(&lock_table_bytes(txn, name, exclusive)?)
}

/// [`lock_table`], with the definition decoded once per stored form and shared (see
/// [`decode_shared`]): for statements that only read it.
pub fn lock_table_shared(txn: &mut Txn, name: &str, exclusive: bool) -> Result<std::sync::Arc<Table>> {
    decode_shared(&lock_table_bytes(txn, name, exclusive)?)
}

/// The most definitions [`decode_shared`] keeps; past it, it starts afresh.
pub const DECODED_TABLES_MAX: usize = 1024;

/// Definitions decoded by [`decode_shared`], by their stored bytes.
static DECODED_TABLES: std::sync::Mutex<Option<HashMap<Vec<u8>, std::sync::Arc<Table>>>> = std::sync::Mutex::new(None);

/// [`decode`], shared: the same bytes decode to the same definition whichever database or
/// transaction read them, so each stored form is decoded once. Decoding parses the column
/// defaults and CHECK expressions from their SQL text; an INSERT that decoded its table
/// every time spent a tenth of its connection's time there.
pub fn decode_shared(bytes: &[u8]) -> Result<std::sync::Arc<Table>> {
    let cache = || DECODED_TABLES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(hit) = cache().as_ref().and_then(|m| m.get(bytes)) {
        return Ok(hit.clone());
    }
    let table = std::sync::Arc::new(decode(bytes)?);
    let mut guard = cache();
    let map = guard.get_or_insert_with(HashMap::new);
    if map.len() >= DECODED_TABLES_MAX {
        map.clear();
    }
    map.insert(bytes.to_vec(), table.clone());
    Ok(table)
}

/// [`lock_table`], returning the definition as stored.
pub fn lock_table_bytes(txn: &mut Txn, name: &str, exclusive: bool) -> Result<Vec<u8>> {
    lock_table_waiting(txn, name, exclusive, txn::WaitPolicy::Wait)
}

/// [`lock_table_bytes`], waiting for a conflicting lock as `policy` says (LOCK TABLE ...
/// NOWAIT fails at once with 55P03).
pub fn lock_table_waiting(txn: &mut Txn, name: &str, exclusive: bool, policy: txn::WaitPolicy) -> Result<Vec<u8>> {
    let key = keys::table(name);
    let mode = if exclusive { txn::LockMode::Exclusive } else { txn::LockMode::Shared };
    let latest = match txn.lock_row_latest(&key, mode, policy)? {
        Some(Some(bytes)) => bytes,
        _ if txn.get(&keys::view(name))?.is_some() => {
            return Err(Error::new(codes::WRONG_OBJECT_TYPE, format!("\"{name}\" is a view"))
                .with_detail("Views are read-only in Bulwark: write to the tables the view reads."))
        }
        _ => return Err(Error::new(codes::UNDEFINED_TABLE, format!("relation \"{name}\" does not exist"))),
    };
    if txn.options().isolation != txn::IsolationLevel::ReadCommitted && txn.get(&key)?.as_ref() != Some(&latest) {
        return Err(Error::new(
            "40001",
            format!("could not serialize access: table \"{name}\" was changed by a concurrent transaction"),
        ));
    }
    Ok(latest)
}

/// Writes a table definition.
pub fn put_table(txn: &mut Txn, table: &Table) -> Result<()> {
    txn.put(&keys::table(&table.name), &encode(table))?;
    Ok(())
}

/// All table names, sorted.
pub fn table_names(txn: &mut Txn) -> Result<Vec<String>> {
    use std::ops::Bound;
    let end = storage::keycode::prefix_end(keys::TABLES).expect("prefix has an end");
    let rows = txn.scan(Bound::Included(keys::TABLES.to_vec()), Bound::Excluded(end), false, usize::MAX)?;
    Ok(rows.into_iter().map(|(k, _)| String::from_utf8_lossy(&k[2..]).into_owned()).collect())
}

/// The tables with a foreign key that refers to `table`, as this transaction sees the
/// catalog. Built once per catalog version from every table's definition and shared, so
/// that an UPDATE or DELETE of a table no foreign key refers to (the usual case) does not
/// read the whole catalog for every row.
pub fn referencing_tables(txn: &mut Txn, table: &str) -> Result<Vec<String>> {
    let by_parent = txn.derived(keys::REFERENCING, |txn| -> Result<BTreeMap<String, Vec<String>>> {
        let mut by_parent: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for child in table_names(txn)? {
            let def = self::table(txn, &child)?;
            for parent in def.foreign_keys.iter().map(|fk| &fk.table) {
                let children = by_parent.entry(parent.clone()).or_default();
                if !children.contains(&child) {
                    children.push(child.clone());
                }
            }
        }
        Ok(by_parent)
    })?;
    Ok(by_parent.get(table).cloned().unwrap_or_default())
}

/// What ANALYZE found in a table, for the planner's estimates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableStats {
    /// Rows.
    pub rows: u64,
    /// Per column, in table order (columns added since have none).
    pub columns: Vec<ColumnStats>,
}

/// What ANALYZE found in a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnStats {
    /// Distinct non-NULL values (estimated when the table is larger than the sample).
    pub distinct: u64,
    /// NULL values.
    pub nulls: u64,
}

/// The statistics format this code writes.
const STATS_FORMAT: u8 = 1;

/// `format (u8 = 1) | rows (u64 BE) | count (u32 BE) | count × (distinct u64 BE, nulls u64 BE)`.
pub fn encode_stats(stats: &TableStats) -> Vec<u8> {
    let mut out = vec![STATS_FORMAT];
    out.extend(stats.rows.to_be_bytes());
    out.extend((stats.columns.len() as u32).to_be_bytes());
    for c in &stats.columns {
        out.extend(c.distinct.to_be_bytes());
        out.extend(c.nulls.to_be_bytes());
    }
    out
}

/// Reads what [`encode_stats`] wrote.
pub fn decode_stats(bytes: &[u8]) -> Result<TableStats> {
    let bad = || corrupt("table statistics");
    let u64_at = |at: usize| -> Result<u64> {
        let b = bytes.get(at..at + 8).ok_or_else(bad)?;
        Ok(u64::from_be_bytes(b.try_into().expect("8 bytes")))
    };
    if bytes.first() != Some(&STATS_FORMAT) {
        return Err(bad());
    }
    let rows = u64_at(1)?;
    let count = u32::from_be_bytes(bytes.get(9..13).ok_or_else(bad)?.try_into().expect("4 bytes")) as usize;
    if bytes.len() != 13 + count * 16 || count > COLUMNS_MAX {
        return Err(bad());
    }
    let columns = (0..count)
        .map(|i| Ok(ColumnStats { distinct: u64_at(13 + i * 16)?, nulls: u64_at(21 + i * 16)? }))
        .collect::<Result<Vec<_>>>()?;
    Ok(TableStats { rows, columns })
}

/// The statistics of `table`'s last ANALYZE, if any (none for system tables).
pub fn get_stats(txn: &mut Txn, table: &Table) -> Result<Option<std::sync::Arc<TableStats>>> {
    if table.id >= SYSTEM_ID_MIN {
        return Ok(None);
    }
    txn.get_decoded(&keys::stats(table.id), decode_stats)
}

/// Stores `table`'s statistics.
pub fn put_stats(txn: &mut Txn, table: &Table, stats: &TableStats) -> Result<()> {
    txn.put(&keys::stats(table.id), &encode_stats(stats))?;
    Ok(())
}

/// Allocates a new object id (tables, indexes, sequences).
pub fn next_id(txn: &mut Txn) -> Result<u32> {
    let current = match txn.get(keys::NEXT_ID)? {
        Some(b) if b.len() == 4 => u32::from_be_bytes(b.try_into().expect("4 bytes")),
        Some(_) => return Err(corrupt("object id counter")),
        None => 1,
    };
    if current >= SYSTEM_ID_MIN {
        return Err(Error::new(codes::PROGRAM_LIMIT_EXCEEDED, "out of object ids"));
    }
    txn.put(keys::NEXT_ID, &(current + 1).to_be_bytes())?;
    Ok(current)
}

fn corrupt(what: &str) -> Error {
    Error::new("XX001", format!("catalog entry is malformed: {what}"))
}

// ---- encoding ----------------------------------------------------------------------

const FORMAT: u8 = 1;

struct W(Vec<u8>);

impl W {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s.as_bytes());
    }
    fn opt_u32(&mut self, v: Option<u32>) {
        match v {
            Some(v) => {
                self.u8(1);
                self.u32(v);
            }
            None => self.u8(0),
        }
    }
    fn cols(&mut self, cols: &[usize]) {
        self.u32(cols.len() as u32);
        for &c in cols {
            self.u32(c as u32);
        }
    }
    fn expr(&mut self, e: &Option<Expr>) {
        match e {
            Some(e) => {
                self.u8(1);
                self.str(&e.to_string());
            }
            None => self.u8(0),
        }
    }
    fn data_type(&mut self, t: &DataType) {
        let (tag, a, b) = match t {
            DataType::Bool => (1, None, None),
            DataType::Int2 => (2, None, None),
            DataType::Int4 => (3, None, None),
            DataType::Int8 => (4, None, None),
            DataType::Float4 => (5, None, None),
            DataType::Float8 => (6, None, None),
            DataType::Numeric { precision, scale } => (7, *precision, *scale),
            DataType::Text => (8, None, None),
            DataType::Varchar(n) => (9, *n, None),
            DataType::Char(n) => (10, *n, None),
            DataType::Bytea => (11, None, None),
            DataType::Date => (12, None, None),
            DataType::Timestamp => (13, None, None),
            DataType::TimestampTz => (14, None, None),
            DataType::TimestampP { tz: false, precision } => (13, Some(*precision), None),
            DataType::TimestampP { tz: true, precision } => (14, Some(*precision), None),
            DataType::Interval => (15, None, None),
            DataType::Reg(kind) => (16, Some(reg_kind_code(*kind)), None),
            DataType::Uuid => (17, None, None),
            DataType::Array(elem) => (18, Some(*elem), None),
            DataType::Json => (19, None, None),
            DataType::Jsonb => (20, None, None),
            DataType::Time => (21, None, None),
            DataType::Enum(t) => (22, Some(t.oid), None),
        };
        self.u8(tag);
        self.opt_u32(a);
        self.opt_u32(b);
        if let DataType::Enum(t) = t {
            self.enum_body(t);
        }
    }
    /// An enum type's name and labels (its oid goes before).
    fn enum_body(&mut self, t: &EnumType) {
        self.str(&t.name);
        self.u32(t.labels.len() as u32);
        for (label, order) in &t.labels {
            self.str(label);
            self.0.extend_from_slice(&order.to_bits().to_le_bytes());
        }
    }
}

/// The stored code of a `reg*` type (no column has one today; the encoding stays total).
fn reg_kind_code(kind: RegKind) -> u32 {
    match kind {
        RegKind::Class => 1,
        RegKind::Type => 2,
        RegKind::Namespace => 3,
        RegKind::Proc => 4,
        RegKind::Role => 5,
    }
}

fn reg_kind(code: u32) -> Result<RegKind> {
    Ok(match code {
        1 => RegKind::Class,
        2 => RegKind::Type,
        3 => RegKind::Namespace,
        4 => RegKind::Proc,
        5 => RegKind::Role,
        _ => return Err(corrupt("data type")),
    })
}

fn action_to_u8(a: ReferentialAction) -> u8 {
    match a {
        ReferentialAction::NoAction => 0,
        ReferentialAction::Restrict => 1,
        ReferentialAction::Cascade => 2,
        ReferentialAction::SetNull => 3,
    }
}

/// Encodes a table definition (expressions as SQL text).
pub fn encode(t: &Table) -> Vec<u8> {
    let mut w = W(vec![FORMAT]);
    w.u32(t.id);
    w.str(&t.name);
    w.u32(t.columns.len() as u32);
    for c in &t.columns {
        w.str(&c.name);
        w.data_type(&c.data_type);
        w.u8(c.not_null as u8);
        w.expr(&c.default);
        w.opt_u32(c.sequence);
    }
    w.cols(&t.primary_key);
    w.str(&t.pk_name);
    w.u32(t.rowid_sequence);
    w.u32(t.indexes.len() as u32);
    for i in &t.indexes {
        w.u32(i.id);
        w.str(&i.name);
        w.cols(&i.columns);
        w.u8(i.unique as u8);
        w.u8(i.constraint as u8);
    }
    w.u32(t.checks.len() as u32);
    for (name, e) in &t.checks {
        w.str(name);
        w.expr(&Some(e.clone()));
    }
    w.u32(t.foreign_keys.len() as u32);
    for fk in &t.foreign_keys {
        w.str(&fk.name);
        w.cols(&fk.columns);
        w.str(&fk.table);
        w.cols(&fk.referred);
        w.u8(action_to_u8(fk.on_delete));
        w.u8(action_to_u8(fk.on_update));
    }
    // Added after format 1's first release, so a definition without it still decodes:
    // each foreign key's deferral (bit 0 DEFERRABLE, bit 1 INITIALLY DEFERRED).
    w.u32(t.foreign_keys.len() as u32);
    for fk in &t.foreign_keys {
        w.u8(u8::from(fk.deferrable) | u8::from(fk.initially_deferred) << 1);
    }
    w.0
}

struct R<'a>(&'a [u8]);

impl R<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        if self.0.len() < n {
            return Err(corrupt("truncated table definition"));
        }
        let (h, t) = self.0.split_at(n);
        self.0 = t;
        Ok(h)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn str(&mut self) -> Result<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| corrupt("name is not UTF-8"))
    }
    fn opt_u32(&mut self) -> Result<Option<u32>> {
        Ok(if self.u8()? == 1 { Some(self.u32()?) } else { None })
    }
    fn cols(&mut self) -> Result<Vec<usize>> {
        let n = self.u32()? as usize;
        if n > COLUMNS_MAX {
            return Err(corrupt("column list"));
        }
        (0..n).map(|_| self.u32().map(|c| c as usize)).collect()
    }
    fn expr(&mut self) -> Result<Option<Expr>> {
        if self.u8()? == 0 {
            return Ok(None);
        }
        let text = self.str()?;
        crate::parser::parse_expr(&text).map(Some).map_err(|e| corrupt(&format!("expression {text}: {e}")))
    }
    fn data_type(&mut self) -> Result<DataType> {
        let tag = self.u8()?;
        let a = self.opt_u32()?;
        let b = self.opt_u32()?;
        Ok(match tag {
            1 => DataType::Bool,
            2 => DataType::Int2,
            3 => DataType::Int4,
            4 => DataType::Int8,
            5 => DataType::Float4,
            6 => DataType::Float8,
            7 => DataType::Numeric { precision: a, scale: b },
            8 => DataType::Text,
            9 => DataType::Varchar(a),
            10 => DataType::Char(a),
            11 => DataType::Bytea,
            12 => DataType::Date,
            13 | 14 => match a {
                None => [DataType::Timestamp, DataType::TimestampTz][usize::from(tag == 14)].clone(),
                Some(precision) if precision <= 6 => DataType::TimestampP { tz: tag == 14, precision },
                Some(_) => return Err(corrupt("timestamp precision")),
            },
            15 => DataType::Interval,
            16 => DataType::Reg(reg_kind(a.ok_or_else(|| corrupt("data type"))?)?),
            17 => DataType::Uuid,
            18 => DataType::Array(a.unwrap_or(25)),
            19 => DataType::Json,
            20 => DataType::Jsonb,
            21 => DataType::Time,
            22 => DataType::Enum(std::sync::Arc::new(self.enum_body(a.ok_or_else(|| corrupt("enum oid"))?)?)),
            _ => return Err(corrupt("data type")),
        })
    }
    fn enum_body(&mut self, oid: u32) -> Result<EnumType> {
        let name = self.str()?;
        let n = self.u32()? as usize;
        if n > ENUM_LABELS_MAX {
            return Err(corrupt("enum label count"));
        }
        let mut labels = Vec::with_capacity(n);
        for _ in 0..n {
            let label = self.str()?;
            let order = f64::from_bits(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")));
            labels.push((label, order));
        }
        Ok(EnumType { oid, name, labels })
    }
    fn action(&mut self) -> Result<ReferentialAction> {
        Ok(match self.u8()? {
            0 => ReferentialAction::NoAction,
            1 => ReferentialAction::Restrict,
            2 => ReferentialAction::Cascade,
            3 => ReferentialAction::SetNull,
            _ => return Err(corrupt("referential action")),
        })
    }
}

/// Decodes a table definition.
pub fn decode(bytes: &[u8]) -> Result<Table> {
    let mut r = R(bytes);
    if r.u8()? != FORMAT {
        return Err(corrupt("unknown format"));
    }
    let id = r.u32()?;
    let name = r.str()?;
    let ncols = r.u32()? as usize;
    if ncols > COLUMNS_MAX {
        return Err(corrupt("column count"));
    }
    let mut columns = Vec::with_capacity(ncols);
    for _ in 0..ncols {
        columns.push(Column {
            name: r.str()?,
            data_type: r.data_type()?,
            not_null: r.u8()? == 1,
            default: r.expr()?,
            sequence: r.opt_u32()?,
        });
    }
    let primary_key = r.cols()?;
    let pk_name = r.str()?;
    let rowid_sequence = r.u32()?;
    let n = r.u32()?;
    let mut indexes = Vec::new();
    for _ in 0..n {
        indexes.push(Index {
            id: r.u32()?,
            name: r.str()?,
            columns: r.cols()?,
            unique: r.u8()? == 1,
            constraint: r.u8()? == 1,
        });
    }
    let n = r.u32()?;
    let mut checks = Vec::new();
    for _ in 0..n {
        let name = r.str()?;
        checks.push((name, r.expr()?.ok_or_else(|| corrupt("check"))?));
    }
    let n = r.u32()?;
    let mut foreign_keys = Vec::new();
    for _ in 0..n {
        foreign_keys.push(ForeignKey {
            name: r.str()?,
            columns: r.cols()?,
            table: r.str()?,
            referred: r.cols()?,
            on_delete: r.action()?,
            on_update: r.action()?,
            deferrable: false,
            initially_deferred: false,
        });
    }
    if !r.0.is_empty() {
        if r.u32()? as usize != foreign_keys.len() {
            return Err(corrupt("foreign key deferral count"));
        }
        for fk in &mut foreign_keys {
            let bits = r.u8()?;
            if bits > 3 || bits == 2 {
                return Err(corrupt("foreign key deferral"));
            }
            fk.deferrable = bits & 1 != 0;
            fk.initially_deferred = bits & 2 != 0;
        }
    }
    Ok(Table { id, name, columns, primary_key, pk_name, rowid_sequence, indexes, checks, foreign_keys })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(id: u32, default: &str) -> Table {
        Table {
            id,
            name: format!("t{id}"),
            columns: vec![Column {
                name: "a".into(),
                data_type: DataType::Int8,
                not_null: true,
                default: Some(crate::parser::parse_expr(default).unwrap()),
                sequence: None,
            }],
            primary_key: vec![0],
            pk_name: "pk".into(),
            rowid_sequence: 0,
            indexes: vec![],
            checks: vec![],
            foreign_keys: vec![],
        }
    }

    #[test]
    fn shared_decodes_are_one_per_stored_form() {
        // Ids above any other test's, so no other test's entries meet these.
        let bytes = encode(&table(900_001, "nextval('s')"));
        let first = decode_shared(&bytes).unwrap();
        assert_eq!(*first, decode(&bytes).unwrap());
        assert!(std::sync::Arc::ptr_eq(&first, &decode_shared(&bytes).unwrap()), "decoded once");
        let other = decode_shared(&encode(&table(900_001, "7"))).unwrap();
        assert_eq!(other.columns[0].default, Some(crate::parser::parse_expr("7").unwrap()));
        // Past the bound the cache starts afresh, and still answers.
        for id in 0..DECODED_TABLES_MAX as u32 + 1 {
            decode_shared(&encode(&table(900_002 + id, "1"))).unwrap();
        }
        assert!(DECODED_TABLES.lock().unwrap().as_ref().unwrap().len() <= DECODED_TABLES_MAX);
        assert_eq!(*decode_shared(&bytes).unwrap(), *first);
        assert!(decode_shared(&bytes[..bytes.len() - 1]).is_err(), "damage is an error, not a cached value");
    }

    #[test]
    fn stats_round_trip_and_reject_damage() {
        let stats = TableStats {
            rows: 1 << 40,
            columns: vec![ColumnStats { distinct: 7, nulls: 0 }, ColumnStats { distinct: 0, nulls: 3 }],
        };
        let bytes = encode_stats(&stats);
        assert_eq!(decode_stats(&bytes).unwrap(), stats);
        for cut in 0..bytes.len() {
            assert!(decode_stats(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = bytes.clone();
        bad[0] = 2;
        assert!(decode_stats(&bad).is_err());
    }
}

// ---- enum types -------------------------------------------------------------------

/// The most labels an enum type may have. PostgreSQL has no fixed bound; this one keeps a
/// malformed catalog entry from asking for a huge allocation.
pub const ENUM_LABELS_MAX: usize = 65_536;

/// Reads an enum type, or None.
pub fn get_enum(txn: &mut Txn, name: &str) -> Result<Option<EnumType>> {
    txn.get(&keys::enum_type(name))?.map(|b| decode_enum(&b)).transpose()
}

/// Writes an enum type.
pub fn put_enum(txn: &mut Txn, t: &EnumType) -> Result<()> {
    txn.put(&keys::enum_type(&t.name), &encode_enum(t))?;
    Ok(())
}

/// Every enum type, by name.
pub fn enums(txn: &mut Txn) -> Result<Vec<EnumType>> {
    decode_all(txn, keys::ENUM_TYPES, decode_enum)
}

/// Every definition stored under `prefix`, in key order, each decoded by `decode`.
fn decode_all<T>(txn: &mut Txn, prefix: &[u8], decode: fn(&[u8]) -> Result<T>) -> Result<Vec<T>> {
    use std::ops::Bound;
    let end = storage::keycode::prefix_end(prefix).expect("prefix has an end");
    let rows = txn.scan(Bound::Included(prefix.to_vec()), Bound::Excluded(end), false, usize::MAX)?;
    rows.iter().map(|(_, v)| decode(v)).collect()
}

/// `t` with an enum type the parser left unresolved looked up in the catalog: 42704 if
/// there is no such type.
pub fn resolve_type(txn: &mut Txn, t: &DataType) -> Result<DataType> {
    match t {
        DataType::Enum(e) if !e.is_resolved() => match get_enum(txn, &e.name)? {
            Some(found) => Ok(DataType::Enum(std::sync::Arc::new(found))),
            None => Err(Error::new(codes::UNDEFINED_OBJECT, format!("type \"{}\" does not exist", e.name))),
        },
        other => Ok(other.clone()),
    }
}

/// Encodes an enum type: format (u8 = 1), oid (u32), name, label count (u32), then each
/// label and its sort position (f64 bits, u64 little-endian).
pub fn encode_enum(t: &EnumType) -> Vec<u8> {
    let mut w = W(vec![FORMAT]);
    w.u32(t.oid);
    w.enum_body(t);
    w.0
}

/// Decodes an enum type written by [`encode_enum`].
pub fn decode_enum(bytes: &[u8]) -> Result<EnumType> {
    let mut r = R(bytes);
    if r.u8()? != FORMAT {
        return Err(corrupt("unknown enum format"));
    }
    let oid = r.u32()?;
    let t = r.enum_body(oid)?;
    if !r.0.is_empty() {
        return Err(corrupt("trailing bytes after enum type"));
    }
    Ok(t)
}

// ---- views ------------------------------------------------------------------------

/// The deepest views may nest in one another (54001 beyond): a view over a view over ...
/// is planned by expanding each, and OR REPLACE could make a cycle.
pub const VIEW_DEPTH_MAX: usize = 64;

/// A view: a named query, stored as its SQL text and planned where it is used.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    /// Object id (from the same counter as tables).
    pub id: u32,
    /// Name.
    pub name: String,
    /// Its columns' names and types, as its query gave them when it was created.
    pub columns: Vec<(String, DataType)>,
    /// The query, as SQL.
    pub sql: String,
}

/// Reads a view, or None.
pub fn get_view(txn: &mut Txn, name: &str) -> Result<Option<View>> {
    txn.get(&keys::view(name))?.map(|b| decode_view(&b)).transpose()
}

/// Writes a view.
pub fn put_view(txn: &mut Txn, view: &View) -> Result<()> {
    txn.put(&keys::view(&view.name), &encode_view(view))?;
    Ok(())
}

/// A comment on a relation or one of its columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    /// The relation (table, view, index or sequence).
    pub relation: String,
    /// The column; empty for the relation itself.
    pub column: String,
    /// The text.
    pub text: String,
}

/// Sets (or, with None or an empty text, removes) the comment on `relation`'s `column`
/// (empty: the relation's own).
pub fn put_comment(txn: &mut Txn, relation: &str, column: &str, text: Option<&str>) -> Result<()> {
    let key = keys::comment(relation, column);
    match text.filter(|t| !t.is_empty()) {
        Some(t) => txn.put(&key, t.as_bytes())?,
        None => txn.delete(&key)?,
    }
    Ok(())
}

/// Every comment, sorted by relation and column.
pub fn comments(txn: &mut Txn) -> Result<Vec<Comment>> {
    scan_comments(txn, keys::COMMENTS.to_vec())
}

fn scan_comments(txn: &mut Txn, prefix: Vec<u8>) -> Result<Vec<Comment>> {
    use std::ops::Bound;
    let end = storage::keycode::prefix_end(&prefix).expect("prefix has an end");
    let rows = txn.scan(Bound::Included(prefix), Bound::Excluded(end), false, usize::MAX)?;
    rows.into_iter()
        .map(|(k, v)| {
            let rest = &k[keys::COMMENTS.len()..];
            let split = rest.iter().position(|&b| b == 0).ok_or_else(|| corrupt("comment key"))?;
            let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| corrupt("comment"));
            Ok(Comment { relation: text(&rest[..split])?, column: text(&rest[split + 1..])?, text: text(&v)? })
        })
        .collect()
}

/// Removes the comments on `relation` and its columns (the relation is dropped).
pub fn drop_comments(txn: &mut Txn, relation: &str) -> Result<()> {
    for c in scan_comments(txn, keys::comments_of(relation))? {
        txn.delete(&keys::comment(&c.relation, &c.column))?;
    }
    Ok(())
}

/// Moves the comments on `relation` and its columns to the name `new` (a rename).
pub fn rename_comments(txn: &mut Txn, relation: &str, new: &str) -> Result<()> {
    for c in scan_comments(txn, keys::comments_of(relation))? {
        txn.delete(&keys::comment(&c.relation, &c.column))?;
        txn.put(&keys::comment(new, &c.column), c.text.as_bytes())?;
    }
    Ok(())
}

/// Moves the comment on `relation`'s column `old` to the column's new name `new`; None
/// drops it (the column is dropped).
pub fn move_column_comment(txn: &mut Txn, relation: &str, old: &str, new: Option<&str>) -> Result<()> {
    let key = keys::comment(relation, old);
    if let Some(text) = txn.get(&key)? {
        txn.delete(&key)?;
        if let Some(new) = new {
            txn.put(&keys::comment(relation, new), &text)?;
        }
    }
    Ok(())
}

/// Every view, sorted by name.
pub fn views(txn: &mut Txn) -> Result<Vec<View>> {
    decode_all(txn, keys::VIEWS, decode_view)
}

/// A view's stored form: format (u8 = 1), id (u32), name, SQL text, column count (u32),
/// then each column's name and type (as in a table definition).
pub fn encode_view(v: &View) -> Vec<u8> {
    let mut w = W(vec![FORMAT]);
    w.u32(v.id);
    w.str(&v.name);
    w.str(&v.sql);
    w.u32(v.columns.len() as u32);
    for (name, t) in &v.columns {
        w.str(name);
        w.data_type(t);
    }
    w.0
}

/// Reads [`encode_view`]'s form (XX001 if it is malformed).
pub fn decode_view(bytes: &[u8]) -> Result<View> {
    let mut r = R(bytes);
    if r.u8()? != FORMAT {
        return Err(corrupt("unknown view format"));
    }
    let id = r.u32()?;
    let name = r.str()?;
    let sql = r.str()?;
    let n = r.u32()? as usize;
    if n > COLUMNS_MAX {
        return Err(corrupt("view column count"));
    }
    let mut columns = Vec::with_capacity(n);
    for _ in 0..n {
        columns.push((r.str()?, r.data_type()?));
    }
    if !r.0.is_empty() {
        return Err(corrupt("trailing bytes in view"));
    }
    Ok(View { id, name, columns, sql })
}

// ---- sequences ----------------------------------------------------------------------

/// A sequence made by CREATE SEQUENCE (SERIAL columns' sequences have no definition: they
/// count from 1 by 1 up to their column type's largest value). Its next value is kept
/// apart, under `Q<name>` (see the session's `next_value`).
#[derive(Debug, Clone, PartialEq)]
pub struct Sequence {
    /// Object id (from the same counter as tables).
    pub id: u32,
    /// Name.
    pub name: String,
    /// smallint, integer or bigint.
    pub data_type: DataType,
    /// INCREMENT BY (never 0).
    pub increment: i64,
    /// MINVALUE.
    pub min: i64,
    /// MAXVALUE.
    pub max: i64,
    /// START WITH.
    pub start: i64,
    /// CACHE (kept for the catalog; values are taken in blocks of the session's own size).
    pub cache: i64,
    /// CYCLE: past the last value, start again from the first.
    pub cycle: bool,
}

/// Reads a sequence's definition, or None.
pub fn get_sequence(txn: &mut Txn, name: &str) -> Result<Option<Sequence>> {
    txn.get(&keys::sequence_def(name))?.map(|b| decode_sequence(&b)).transpose()
}

/// Writes a sequence's definition.
pub fn put_sequence(txn: &mut Txn, s: &Sequence) -> Result<()> {
    txn.put(&keys::sequence_def(&s.name), &encode_sequence(s))?;
    Ok(())
}

/// Every sequence definition, sorted by name.
pub fn sequences(txn: &mut Txn) -> Result<Vec<Sequence>> {
    decode_all(txn, keys::SEQUENCE_DEFS, decode_sequence)
}

/// A sequence definition's stored form: format (u8 = 1), id (u32), name, type (as in a
/// table definition), increment, min, max, start, cache (i64 LE each), cycle (u8).
pub fn encode_sequence(s: &Sequence) -> Vec<u8> {
    let mut w = W(vec![FORMAT]);
    w.u32(s.id);
    w.str(&s.name);
    w.data_type(&s.data_type);
    for v in [s.increment, s.min, s.max, s.start, s.cache] {
        w.0.extend_from_slice(&v.to_le_bytes());
    }
    w.u8(u8::from(s.cycle));
    w.0
}

/// Reads [`encode_sequence`]'s form (XX001 if it is malformed).
pub fn decode_sequence(bytes: &[u8]) -> Result<Sequence> {
    let mut r = R(bytes);
    if r.u8()? != FORMAT {
        return Err(corrupt("unknown sequence format"));
    }
    let id = r.u32()?;
    let name = r.str()?;
    let data_type = r.data_type()?;
    let mut int = || -> Result<i64> { Ok(i64::from_le_bytes(r.take(8)?.try_into().expect("8 bytes"))) };
    let (increment, min, max, start, cache) = (int()?, int()?, int()?, int()?, int()?);
    let cycle = match r.u8()? {
        0 => false,
        1 => true,
        _ => return Err(corrupt("sequence cycle flag")),
    };
    if !r.0.is_empty() || increment == 0 {
        return Err(corrupt("sequence definition"));
    }
    Ok(Sequence { id, name, data_type, increment, min, max, start, cache, cycle })
}
