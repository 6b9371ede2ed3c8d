//! The user's catalog, read once, with an oid for every object the system tables show.
//!
//! # Oids
//!
//! ```text
//!   0 .. 16383          built in: PostgreSQL's own oids for the catalogs, types, schemas
//!   16384 + id          tables and secondary indexes: their catalog id (stable for life)
//!   2^31 .. 2^32 - 1    objects without a catalog id: primary-key indexes, constraints,
//!                       sequences, column defaults: a hash of (kind, table id, name)
//! ```
//!
//! A hashed oid is stable as long as its object lives; two objects hashing alike are told
//! apart by probing to the next free oid, in table-name order, so oids are always unique
//! within one snapshot (a collision, about one in 2^31 per pair, could move an oid when
//! another object comes or goes).

use super::defs::{PG_CATALOG_OID, PUBLIC_OID};
use crate::ast::{BinaryOp, Expr, ReferentialAction, UnaryOp};
use crate::catalog::{self, Table};
use crate::error::Result;
use crate::types::{DataType, Value};
use std::collections::HashSet;
use std::fmt::Write;
use std::ops::Bound;
use txn::Txn;

/// A view as the system tables show it: a table of its columns, without keys.
fn view_table(v: &catalog::View) -> Table {
    Table {
        id: v.id,
        name: v.name.clone(),
        columns: v
            .columns
            .iter()
            .map(|(name, t)| catalog::Column {
                name: name.clone(),
                data_type: t.clone(),
                not_null: false,
                default: None,
                sequence: None,
            })
            .collect(),
        primary_key: vec![],
        pk_name: String::new(),
        rowid_sequence: 0,
        indexes: vec![],
        checks: vec![],
        foreign_keys: vec![],
    }
}

/// A CREATE SEQUENCE sequence as the system tables show it: a table of one column of its
/// type, without keys.
fn sequence_table(s: &catalog::Sequence) -> Table {
    let view = catalog::View {
        id: s.id,
        name: s.name.clone(),
        columns: vec![("last_value".to_string(), s.data_type.clone())],
        sql: String::new(),
    };
    view_table(&view)
}

/// PostgreSQL's first oid for user objects.
pub const FIRST_NORMAL_OID: u32 = 16384;
/// The first hashed oid.
const DERIVED_OID_MIN: u32 = 0x8000_0000;
/// The one role: the bootstrap superuser's oid.
pub const SUPERUSER_OID: u32 = 10;
/// Its name.
pub const SUPERUSER_NAME: &str = "bulwark";

/// Which index of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexRef {
    /// The primary key (the table's rows are keyed by it; it has no entries of its own).
    PrimaryKey,
    /// `table.indexes[i]`.
    Secondary(usize),
}

/// What a relation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelKind {
    /// A table.
    Table,
    /// An index of the table.
    Index(IndexRef),
    /// A view (its `Snapshot::tables` entry holds its columns; `Snapshot::view_sql` its query).
    View,
    /// The sequence feeding the table's column (SERIAL, IDENTITY).
    Sequence {
        /// The column's position.
        column: usize,
    },
}

/// A user relation: what pg_class shows.
#[derive(Debug, Clone)]
pub struct Rel {
    /// Its oid.
    pub oid: u32,
    /// Its name.
    pub name: String,
    /// The table it is or belongs to: `Snapshot::tables[table]`.
    pub table: usize,
    /// What it is.
    pub kind: RelKind,
}

/// What a constraint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConKind {
    /// PRIMARY KEY.
    PrimaryKey,
    /// UNIQUE, backed by `table.indexes[i]`.
    Unique(usize),
    /// CHECK: `table.checks[i]`.
    Check(usize),
    /// FOREIGN KEY: `table.foreign_keys[i]`.
    ForeignKey(usize),
}

/// A constraint: what pg_constraint shows.
#[derive(Debug, Clone)]
pub struct Con {
    /// Its oid.
    pub oid: u32,
    /// Its name.
    pub name: String,
    /// Its table: `Snapshot::tables[table]`.
    pub table: usize,
    /// What it is.
    pub kind: ConKind,
}

/// A column default: what pg_attrdef shows.
#[derive(Debug, Clone)]
pub struct Default {
    /// Its oid.
    pub oid: u32,
    /// Its table.
    pub table: usize,
    /// The column's position.
    pub column: usize,
}

/// The catalog as the system tables see it.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Every table, by name, then every view (as a table of its columns, without keys).
    pub tables: Vec<Table>,
    /// For each of `tables`, a view's query (None for a table).
    pub view_sql: Vec<Option<String>>,
    /// For each of `tables`, a CREATE SEQUENCE sequence's definition (its `tables` entry
    /// is a table of one column, of the sequence's type).
    pub sequence_defs: Vec<Option<catalog::Sequence>>,
    /// Tables, indexes and sequences.
    pub rels: Vec<Rel>,
    /// Constraints.
    pub cons: Vec<Con>,
    /// Column defaults.
    pub defaults: Vec<Default>,
    /// Rows each table had at its last ANALYZE (by position in `tables`; none if never).
    pub reltuples: Vec<Option<u64>>,
    /// What each table's last ANALYZE found (by position in `tables`; none if never).
    pub stats: Vec<Option<std::sync::Arc<catalog::TableStats>>>,
    /// Comments (COMMENT ON), with the oid and column number (0: the relation itself)
    /// of what each describes.
    pub comments: Vec<(u32, usize, String)>,
    /// Enum types (CREATE TYPE ... AS ENUM), by name.
    pub enums: Vec<crate::types::EnumType>,
}

/// The most tables one snapshot reads (a guard against runaway catalogs, far above use).
const SNAPSHOT_TABLES_MAX: usize = 1_000_000;

impl Snapshot {
    /// Reads every table definition through `txn` and assigns the oids.
    pub fn load(txn: &mut Txn) -> Result<Snapshot> {
        let end = storage::keycode::prefix_end(catalog::keys::TABLES).expect("prefix has an end");
        let entries = txn.scan(
            Bound::Included(catalog::keys::TABLES.to_vec()),
            Bound::Excluded(end),
            false,
            SNAPSHOT_TABLES_MAX,
        )?;
        let mut tables = entries.iter().map(|(_, v)| catalog::decode(v)).collect::<Result<Vec<_>>>()?;
        let mut view_sql = vec![None; tables.len()];
        for view in catalog::views(txn)? {
            tables.push(view_table(&view));
            view_sql.push(Some(view.sql));
        }
        let mut sequence_defs = vec![None; tables.len()];
        for seq in catalog::sequences(txn)? {
            tables.push(sequence_table(&seq));
            view_sql.push(None);
            sequence_defs.push(Some(seq));
        }
        let stats = tables.iter().map(|t| catalog::get_stats(txn, t)).collect::<Result<Vec<_>>>()?;
        let reltuples = stats.iter().map(|s| s.as_ref().map(|s| s.rows)).collect();
        let mut s = Snapshot { reltuples, stats, ..Snapshot::new(tables) };
        for r in &mut s.rels {
            if r.kind == RelKind::Table && view_sql[r.table].is_some() {
                r.kind = RelKind::View;
            }
            if r.kind == RelKind::Table && sequence_defs[r.table].is_some() {
                r.kind = RelKind::Sequence { column: 0 };
            }
        }
        // A column whose default takes a CREATE SEQUENCE sequence's values does not own it.
        let standalone: HashSet<&str> = sequence_defs.iter().flatten().map(|d| d.name.as_str()).collect();
        s.rels.retain(|r| {
            !(matches!(r.kind, RelKind::Sequence { .. })
                && sequence_defs[r.table].is_none()
                && standalone.contains(r.name.as_str()))
        });
        s.view_sql = view_sql;
        s.sequence_defs = sequence_defs;
        s.enums = catalog::enums(txn)?;
        for c in catalog::comments(txn)? {
            let Some(rel) = s.rels.iter().find(|r| r.name == c.relation) else { continue };
            let subid = match c.column.as_str() {
                "" => 0,
                name => match s.tables[rel.table].columns.iter().position(|col| col.name == name) {
                    Some(i) if matches!(rel.kind, RelKind::Table | RelKind::View) => i + 1,
                    _ => continue,
                },
            };
            s.comments.push((rel.oid, subid, c.text));
        }
        Ok(s)
    }

    /// The comment on the relation with oid `oid`, or on its column `subid` (from 1).
    pub fn description(&self, oid: u32, subid: usize) -> Option<&str> {
        self.comments.iter().find(|(o, s, _)| *o == oid && *s == subid).map(|(_, _, t)| t.as_str())
    }

    /// Whether `tables[i]` is a view.
    pub fn is_view(&self, i: usize) -> bool {
        self.view_sql.get(i).is_some_and(Option::is_some)
    }

    /// Whether `tables[i]` stands for a CREATE SEQUENCE sequence.
    pub fn is_sequence(&self, i: usize) -> bool {
        self.sequence_defs.get(i).is_some_and(Option::is_some)
    }

    /// A snapshot of `tables` (sorted by name, as the catalog keeps them).
    pub fn new(tables: Vec<Table>) -> Snapshot {
        let mut used: HashSet<u32> = HashSet::new();
        let mut s = Snapshot { tables, ..Snapshot::default() };
        for (ti, t) in s.tables.iter().enumerate() {
            let oid = normal_oid(t.id);
            used.insert(oid);
            s.rels.push(Rel { oid, name: t.name.clone(), table: ti, kind: RelKind::Table });
            for (i, ix) in t.indexes.iter().enumerate() {
                let oid = normal_oid(ix.id);
                used.insert(oid);
                s.rels.push(Rel {
                    oid,
                    name: ix.name.clone(),
                    table: ti,
                    kind: RelKind::Index(IndexRef::Secondary(i)),
                });
            }
        }
        for (ti, t) in s.tables.iter().enumerate() {
            let mut derive = |tag: &str, name: &str| derived_oid(&mut used, tag, t.id, name);
            if !t.primary_key.is_empty() {
                let oid = derive("index", &t.pk_name);
                s.rels.push(Rel {
                    oid,
                    name: t.pk_name.clone(),
                    table: ti,
                    kind: RelKind::Index(IndexRef::PrimaryKey),
                });
                let oid = derive("constraint", &t.pk_name);
                s.cons.push(Con { oid, name: t.pk_name.clone(), table: ti, kind: ConKind::PrimaryKey });
            }
            for (i, ix) in t.indexes.iter().enumerate() {
                if ix.constraint {
                    let oid = derive("constraint", &ix.name);
                    s.cons.push(Con { oid, name: ix.name.clone(), table: ti, kind: ConKind::Unique(i) });
                }
            }
            for (i, (name, _)) in t.checks.iter().enumerate() {
                let oid = derive("constraint", name);
                s.cons.push(Con { oid, name: name.clone(), table: ti, kind: ConKind::Check(i) });
            }
            for (i, fk) in t.foreign_keys.iter().enumerate() {
                let oid = derive("constraint", &fk.name);
                s.cons.push(Con { oid, name: fk.name.clone(), table: ti, kind: ConKind::ForeignKey(i) });
            }
            for (ci, c) in t.columns.iter().enumerate() {
                if c.default.is_none() {
                    continue;
                }
                let oid = derive("default", &c.name);
                s.defaults.push(Default { oid, table: ti, column: ci });
                if let Some(seq) = serial_sequence(c.default.as_ref()) {
                    let oid = derive("sequence", seq);
                    s.rels.push(Rel { oid, name: seq.to_string(), table: ti, kind: RelKind::Sequence { column: ci } });
                }
            }
        }
        s
    }

    /// The relation with oid `oid`.
    pub fn rel(&self, oid: u32) -> Option<&Rel> {
        self.rels.iter().find(|r| r.oid == oid)
    }

    /// The constraint with oid `oid`.
    pub fn con(&self, oid: u32) -> Option<&Con> {
        self.cons.iter().find(|c| c.oid == oid)
    }

    /// The oid of table `ti`.
    pub fn table_oid(&self, ti: usize) -> u32 {
        normal_oid(self.tables[ti].id)
    }

    /// The position of the table named `name`.
    pub fn table_named(&self, name: &str) -> Option<usize> {
        self.tables.iter().position(|t| t.name == name)
    }

    /// The oid of the index `ix` of table `ti`.
    pub fn index_oid(&self, ti: usize, ix: IndexRef) -> Option<u32> {
        self.rels.iter().find(|r| r.table == ti && r.kind == RelKind::Index(ix)).map(|r| r.oid)
    }

    /// The columns of index `ix` of table `ti` (positions in the table).
    pub fn index_columns(&self, ti: usize, ix: IndexRef) -> &[usize] {
        let t = &self.tables[ti];
        match ix {
            IndexRef::PrimaryKey => &t.primary_key,
            IndexRef::Secondary(i) => &t.indexes[i].columns,
        }
    }

    /// Whether index `ix` of table `ti` is unique.
    pub fn index_unique(&self, ti: usize, ix: IndexRef) -> bool {
        match ix {
            IndexRef::PrimaryKey => true,
            IndexRef::Secondary(i) => self.tables[ti].indexes[i].unique,
        }
    }

    /// The index of table `ti` on exactly `columns` that a foreign key refers through.
    pub fn unique_index_on(&self, ti: usize, columns: &[usize]) -> Option<IndexRef> {
        let t = &self.tables[ti];
        if t.primary_key == columns {
            return Some(IndexRef::PrimaryKey);
        }
        t.indexes.iter().position(|ix| ix.unique && ix.columns == columns).map(IndexRef::Secondary)
    }

    /// The constraint an index backs (PRIMARY KEY or UNIQUE), if any.
    pub fn index_constraint(&self, ti: usize, ix: IndexRef) -> Option<&Con> {
        self.cons.iter().find(|c| {
            c.table == ti
                && match (c.kind, ix) {
                    (ConKind::PrimaryKey, IndexRef::PrimaryKey) => true,
                    (ConKind::Unique(a), IndexRef::Secondary(b)) => a == b,
                    _ => false,
                }
        })
    }

    /// `pg_get_indexdef`: `CREATE [UNIQUE] INDEX name ON public.table USING btree (cols)`.
    pub fn index_def(&self, rel: &Rel) -> Option<String> {
        let RelKind::Index(ix) = rel.kind else { return None };
        let t = &self.tables[rel.table];
        Some(format!(
            "CREATE {}INDEX {} ON public.{} USING btree ({})",
            if self.index_unique(rel.table, ix) { "UNIQUE " } else { "" },
            quote_ident(&rel.name),
            quote_ident(&t.name),
            self.column_list(rel.table, self.index_columns(rel.table, ix))
        ))
    }

    /// `pg_get_constraintdef`.
    pub fn constraint_def(&self, con: &Con) -> String {
        let t = &self.tables[con.table];
        match con.kind {
            ConKind::PrimaryKey => format!("PRIMARY KEY ({})", self.column_list(con.table, &t.primary_key)),
            ConKind::Unique(i) => format!("UNIQUE ({})", self.column_list(con.table, &t.indexes[i].columns)),
            ConKind::Check(i) => format!("CHECK ({})", deparse(&t.checks[i].1)),
            ConKind::ForeignKey(i) => {
                let fk = &t.foreign_keys[i];
                let referred = match self.table_named(&fk.table) {
                    Some(r) => self.column_list(r, &fk.referred),
                    None => String::new(),
                };
                let mut def = format!(
                    "FOREIGN KEY ({}) REFERENCES {}({referred})",
                    self.column_list(con.table, &fk.columns),
                    quote_ident(&fk.table)
                );
                for (what, action) in [("UPDATE", fk.on_update), ("DELETE", fk.on_delete)] {
                    let action = match action {
                        ReferentialAction::NoAction => continue,
                        ReferentialAction::Restrict => "RESTRICT",
                        ReferentialAction::Cascade => "CASCADE",
                        ReferentialAction::SetNull => "SET NULL",
                    };
                    let _ = write!(def, " ON {what} {action}");
                }
                if fk.initially_deferred {
                    def.push_str(" DEFERRABLE INITIALLY DEFERRED");
                } else if fk.deferrable {
                    def.push_str(" DEFERRABLE");
                }
                def
            }
        }
    }

    /// `a, b` for column positions of table `ti`.
    pub fn column_list(&self, ti: usize, columns: &[usize]) -> String {
        let t = &self.tables[ti];
        columns.iter().map(|&c| quote_ident(&t.columns[c].name)).collect::<Vec<_>>().join(", ")
    }
}

/// The oid of a catalog object with id `id`.
pub fn normal_oid(id: u32) -> u32 {
    FIRST_NORMAL_OID.saturating_add(id)
}

/// FNV-1a over (tag, table id, name), into the hashed range, probed past `used`.
fn derived_oid(used: &mut HashSet<u32>, tag: &str, table_id: u32, name: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in tag.bytes().chain(table_id.to_le_bytes()).chain(name.bytes()) {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    let mut oid = DERIVED_OID_MIN | (h & !DERIVED_OID_MIN);
    while !used.insert(oid) {
        oid = DERIVED_OID_MIN | (oid.wrapping_add(1) & !DERIVED_OID_MIN);
    }
    oid
}

/// The sequence a SERIAL / IDENTITY column's default draws from: `nextval('name')`.
pub fn serial_sequence(default: Option<&Expr>) -> Option<&str> {
    match default? {
        Expr::Function { name, args, .. } if name == "nextval" => match args.as_slice() {
            [Expr::Literal(Value::Text(seq))] => Some(seq),
            _ => None,
        },
        _ => None,
    }
}

/// The schema a relation of this oid lives in.
pub fn namespace_of_user_object() -> u32 {
    PUBLIC_OID
}

/// Whether the schema is on the search path (pg_catalog always is, implicitly).
pub fn namespace_visible(oid: u32) -> bool {
    oid == PG_CATALOG_OID || oid == PUBLIC_OID
}

/// An identifier as PostgreSQL's quote_ident writes it: bare if it is a lower-case word
/// that is not a keyword, else double-quoted.
pub fn quote_ident(name: &str) -> String {
    let plain = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !crate::parser::is_reserved_keyword(name);
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// A string literal.
pub fn quote_literal(s: &str) -> String {
    if s.contains('\\') {
        format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

/// An expression as PostgreSQL's `pg_get_expr(..., pretty => true)` prints it: operators
/// without needless parentheses, casts as `::type`, and a SERIAL default as
/// `nextval('seq'::regclass)`.
pub fn deparse(e: &Expr) -> String {
    let mut out = String::new();
    write_expr(e, &mut out);
    out
}

/// Binding strength, as PostgreSQL's grammar orders the operators.
fn precedence(e: &Expr) -> u8 {
    match e {
        Expr::Binary { op, .. } => match op {
            BinaryOp::Or => 1,
            BinaryOp::And => 2,
            BinaryOp::Eq | BinaryOp::NotEq | BinaryOp::Lt | BinaryOp::LtEq | BinaryOp::Gt | BinaryOp::GtEq => 4,
            BinaryOp::Match
            | BinaryOp::NotMatch
            | BinaryOp::IMatch
            | BinaryOp::NotIMatch
            | BinaryOp::Concat
            | BinaryOp::JsonGet
            | BinaryOp::JsonGetText
            | BinaryOp::JsonPath
            | BinaryOp::JsonPathText
            | BinaryOp::Contains
            | BinaryOp::ContainedBy
            | BinaryOp::HasKey
            | BinaryOp::HasAnyKey
            | BinaryOp::HasAllKeys => 5,
            BinaryOp::Add | BinaryOp::Sub => 6,
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod => 7,
        },
        Expr::Unary { op: UnaryOp::Not, .. } => 3,
        Expr::IsNull { .. } | Expr::IsBool { .. } => 4,
        Expr::Like { .. } | Expr::InList { .. } | Expr::Between { .. } | Expr::AnyAll { .. } => 4,
        Expr::InSubquery { .. } => 4,
        Expr::Unary { .. } => 8,
        _ => 9,
    }
}

fn write_child(e: &Expr, min: u8, out: &mut String) {
    if precedence(e) < min {
        out.push('(');
        write_expr(e, out);
        out.push(')');
    } else {
        write_expr(e, out);
    }
}

fn write_expr(e: &Expr, out: &mut String) {
    let p = precedence(e);
    match e {
        Expr::Literal(Value::Text(s)) => out.push_str(&quote_literal(s)),
        Expr::Literal(v @ (Value::Int2(_) | Value::Int4(_) | Value::Int8(_) | Value::Numeric(_))) => {
            let text = crate::eval::to_text(v).unwrap_or_default();
            if text.starts_with('-') {
                let _ = write!(out, "'{text}'::{}", crate::eval::type_of(v).map(|t| t.to_string()).unwrap_or_default());
            } else {
                out.push_str(&text);
            }
        }
        Expr::Column { table: Some(t), name } => {
            let _ = write!(out, "{}.{}", quote_ident(t), quote_ident(name));
        }
        Expr::Column { table: None, name } => out.push_str(&quote_ident(name)),
        Expr::Binary { op, left, right } => {
            // Left-associative: a right operand of equal strength needs parentheses.
            write_child(left, p, out);
            let _ = write!(out, " {op} ");
            write_child(right, p + 1, out);
        }
        Expr::Unary { op: UnaryOp::Not, expr } => {
            out.push_str("NOT ");
            write_child(expr, p, out);
        }
        Expr::Unary { op, expr } => {
            out.push_str(if *op == UnaryOp::Neg { "-" } else { "+" });
            write_child(expr, p, out);
        }
        Expr::Function { name, args, distinct, star, order_by } if !*distinct && !*star && order_by.is_empty() => {
            out.push_str(name);
            out.push('(');
            for (i, a) in args.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                match (name.as_str(), a) {
                    // nextval takes a regclass: PostgreSQL stores and prints the cast.
                    ("nextval" | "currval" | "setval", Expr::Literal(Value::Text(s))) if i == 0 => {
                        let _ = write!(out, "{}::regclass", quote_literal(s));
                    }
                    _ => write_expr(a, out),
                }
            }
            out.push(')');
        }
        Expr::Cast { expr, to } => {
            write_child(expr, 9, out);
            let _ = write!(out, "::{}", type_text(to));
        }
        Expr::IsNull { expr, negated } => {
            write_child(expr, p + 1, out);
            out.push_str(if *negated { " IS NOT NULL" } else { " IS NULL" });
        }
        Expr::InList { expr, list, negated } => {
            write_child(expr, p + 1, out);
            out.push_str(if *negated { " NOT IN (" } else { " IN (" });
            for (i, a) in list.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_expr(a, out);
            }
            out.push(')');
        }
        Expr::Between { expr, low, high, negated } => {
            write_child(expr, p + 1, out);
            out.push_str(if *negated { " NOT BETWEEN " } else { " BETWEEN " });
            write_child(low, p + 1, out);
            out.push_str(" AND ");
            write_child(high, p + 1, out);
        }
        Expr::Like { expr, pattern, negated, case_insensitive } => {
            write_child(expr, p + 1, out);
            let _ = write!(
                out,
                " {}{} ",
                if *negated { "NOT " } else { "" },
                if *case_insensitive { "ILIKE" } else { "LIKE" }
            );
            write_child(pattern, p + 1, out);
        }
        Expr::Case { operand, whens, else_result } => {
            out.push_str("CASE");
            if let Some(o) = operand {
                out.push(' ');
                write_expr(o, out);
            }
            for (w, t) in whens {
                out.push_str(" WHEN ");
                write_expr(w, out);
                out.push_str(" THEN ");
                write_expr(t, out);
            }
            if let Some(e) = else_result {
                out.push_str(" ELSE ");
                write_expr(e, out);
            }
            out.push_str(" END");
        }
        other => {
            let _ = write!(out, "{other}");
        }
    }
}

/// A type as a cast in deparsed SQL names it.
fn type_text(t: &DataType) -> String {
    match t {
        DataType::Varchar(None) => "character varying".into(),
        DataType::Char(None) => "bpchar".into(),
        other => other.to_string(),
    }
}
