//! SQL types and values.
//!
//! Values are held in their natural Rust form. Dates count days from 2000-01-01 and
//! timestamps microseconds from 2000-01-01 00:00:00 (PostgreSQL's epoch); TIMESTAMPTZ is
//! stored in UTC. NUMERIC is an `i128` mantissa with a decimal scale (38 significant
//! digits, fewer than PostgreSQL's 131072: values beyond fail with 22003).
//! Operators, casts and functions live in `eval.rs`.

use std::fmt;

/// The oid of type `oid`, which Bulwark reads as bigint; `oid[]` keeps its own oid.
pub const OID_OID: u32 = 26;

/// A column or expression type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataType {
    /// BOOLEAN
    Bool,
    /// SMALLINT
    Int2,
    /// INTEGER
    Int4,
    /// BIGINT
    Int8,
    /// REAL
    Float4,
    /// DOUBLE PRECISION
    Float8,
    /// NUMERIC(p, s)
    Numeric {
        /// Total digits.
        precision: Option<u32>,
        /// Digits after the point.
        scale: Option<u32>,
    },
    /// TEXT
    Text,
    /// VARCHAR(n)
    Varchar(Option<u32>),
    /// CHAR(n) (blank-padded)
    Char(Option<u32>),
    /// BYTEA
    Bytea,
    /// DATE
    Date,
    /// TIME (without time zone)
    Time,
    /// TIMESTAMP (without time zone)
    Timestamp,
    /// TIMESTAMP WITH TIME ZONE
    TimestampTz,
    /// INTERVAL
    Interval,
    /// TIMESTAMP(p) or TIMESTAMP(p) WITH TIME ZONE (p from 0 to 6): a column type
    /// whose values are rounded to `precision` fractional digits when stored (and by a
    /// cast to it); expressions read the column as a plain timestamp (`base`).
    TimestampP {
        /// WITH TIME ZONE.
        tz: bool,
        /// Fractional digits, 0 to 6.
        precision: u32,
    },
    /// An array of the type with this oid (`text[]` is `Array(25)`), as array_agg,
    /// ARRAY[...] and ARRAY(subquery) make them: its values are TEXT in PostgreSQL's array
    /// form (`{a,b,NULL}`; see `eval::array`), and clients are told the array type.
    Array(u32),
    /// JSON: values keep the text they were written in (`Value::Json`).
    Json,
    /// JSONB: values are in the normal form (keys sorted, duplicates dropped, numbers and
    /// spacing as PostgreSQL prints them; `Value::Json`).
    Jsonb,
    /// UUID: its values are TEXT in the canonical form (lower-case hex, hyphenated), which
    /// compares and sorts as the 16 bytes do.
    Uuid,
    /// An object identifier alias type: `regclass`, `regtype`, `regnamespace`, `regproc`,
    /// `regrole`. Its values name the object (see [`Value::Reg`]); the catalog is needed to
    /// make one, so casts to it run in the executor (`system::to_reg`).
    Reg(RegKind),
    /// An enumerated type (CREATE TYPE ... AS ENUM), with its labels. A type name the
    /// parser does not know is an unresolved enum (oid 0, no labels) until the session
    /// looks it up in the catalog (`EnumType::is_resolved`).
    Enum(std::sync::Arc<EnumType>),
}

/// An enumerated type: its name, oid and labels in sort order.
#[derive(Debug, Clone)]
pub struct EnumType {
    /// The type's oid (`pg_type.oid`); 0 while unresolved.
    pub oid: u32,
    /// The type's name.
    pub name: String,
    /// The labels with their sort positions (`pg_enum.enumsortorder`), ascending. A
    /// label's position never changes once given, so stored values stay ordered when
    /// ALTER TYPE ... ADD VALUE puts a label between two others.
    pub labels: Vec<(String, f64)>,
}

impl EnumType {
    /// A type named `name` that the catalog has not been asked about yet.
    pub fn unresolved(name: &str) -> EnumType {
        EnumType { oid: 0, name: name.to_string(), labels: Vec::new() }
    }

    /// True once the type came from the catalog.
    pub fn is_resolved(&self) -> bool {
        self.oid != 0
    }

    /// The value of this type with label `label`: 22P02 if it has no such label.
    pub fn value(&self, label: &str) -> crate::error::Result<Value> {
        match self.labels.iter().find(|(l, _)| l == label) {
            Some((l, order)) => {
                Ok(Value::Enum(Box::new(EnumValue { type_oid: self.oid, order: *order, label: l.clone() })))
            }
            None => Err(crate::error::Error::new(
                crate::error::codes::INVALID_TEXT_REPRESENTATION,
                format!("invalid input value for enum {}: \"{label}\"", self.name),
            )),
        }
    }
}

impl PartialEq for EnumType {
    fn eq(&self, other: &EnumType) -> bool {
        self.oid == other.oid
            && self.name == other.name
            && self.labels.len() == other.labels.len()
            && self.labels.iter().zip(&other.labels).all(|(a, b)| a.0 == b.0 && a.1.to_bits() == b.1.to_bits())
    }
}

impl Eq for EnumType {}

/// A value of an enumerated type: the type's oid, the label's sort position and the
/// label. It carries what comparing and printing it need, so a stored row decodes without
/// the catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct EnumValue {
    /// The type's oid.
    pub type_oid: u32,
    /// The label's sort position.
    pub order: f64,
    /// The label.
    pub label: String,
}

/// The object identifier alias types: an oid that prints as the name of the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegKind {
    /// `regclass`: a relation (table, index, sequence, view).
    Class,
    /// `regtype`: a type.
    Type,
    /// `regnamespace`: a schema.
    Namespace,
    /// `regproc`: a function.
    Proc,
    /// `regrole`: a role.
    Role,
}

impl RegKind {
    /// The type's name.
    pub fn name(self) -> &'static str {
        match self {
            RegKind::Class => "regclass",
            RegKind::Type => "regtype",
            RegKind::Namespace => "regnamespace",
            RegKind::Proc => "regproc",
            RegKind::Role => "regrole",
        }
    }

    /// The type's oid.
    pub fn oid(self) -> u32 {
        match self {
            RegKind::Class => 2205,
            RegKind::Type => 2206,
            RegKind::Namespace => 4089,
            RegKind::Proc => 24,
            RegKind::Role => 4096,
        }
    }
}

impl DataType {
    /// PostgreSQL's name of the type, as in error messages and `pg_type`.
    pub fn pg_name(&self) -> &'static str {
        match self {
            DataType::Bool => "boolean",
            DataType::Int2 => "smallint",
            DataType::Int4 => "integer",
            DataType::Int8 => "bigint",
            DataType::Float4 => "real",
            DataType::Float8 => "double precision",
            DataType::Numeric { .. } => "numeric",
            DataType::Text => "text",
            DataType::Varchar(_) => "character varying",
            DataType::Char(_) => "character",
            DataType::Bytea => "bytea",
            DataType::Date => "date",
            DataType::Time => "time without time zone",
            DataType::Timestamp => "timestamp without time zone",
            DataType::TimestampTz => "timestamp with time zone",
            DataType::TimestampP { tz: false, .. } => "timestamp without time zone",
            DataType::TimestampP { tz: true, .. } => "timestamp with time zone",
            DataType::Interval => "interval",
            DataType::Uuid => "uuid",
            DataType::Json => "json",
            DataType::Jsonb => "jsonb",
            DataType::Array(elem) => match elem {
                16 => "boolean[]",
                21 => "smallint[]",
                23 => "integer[]",
                20 => "bigint[]",
                700 => "real[]",
                701 => "double precision[]",
                1700 => "numeric[]",
                1043 => "character varying[]",
                1042 => "character[]",
                1082 => "date[]",
                1083 => "time without time zone[]",
                1114 => "timestamp without time zone[]",
                1184 => "timestamp with time zone[]",
                2950 => "uuid[]",
                114 => "json[]",
                3802 => "jsonb[]",
                _ => "text[]",
            },
            DataType::Reg(kind) => kind.name(),
            // As information_schema.columns.data_type; Display writes the type's name.
            DataType::Enum(_) => "USER-DEFINED",
        }
    }

    /// The type's name without modifiers, as PostgreSQL's messages give it: [`pg_name`],
    /// or an enum type's own name.
    ///
    /// [`pg_name`]: DataType::pg_name
    pub fn type_name(&self) -> &str {
        match self {
            DataType::Enum(t) => &t.name,
            other => other.pg_name(),
        }
    }

    /// The PostgreSQL type OID (for the wire protocol and `pg_type`).
    pub fn oid(&self) -> u32 {
        match self {
            DataType::Bool => 16,
            DataType::Int2 => 21,
            DataType::Int4 => 23,
            DataType::Int8 => 20,
            DataType::Float4 => 700,
            DataType::Float8 => 701,
            DataType::Numeric { .. } => 1700,
            DataType::Text => 25,
            DataType::Varchar(_) => 1043,
            DataType::Char(_) => 1042,
            DataType::Bytea => 17,
            DataType::Date => 1082,
            DataType::Time => 1083,
            DataType::Timestamp => 1114,
            DataType::TimestampTz => 1184,
            DataType::TimestampP { .. } => self.base().oid(),
            DataType::Interval => 1186,
            DataType::Uuid => 2950,
            DataType::Json => 114,
            DataType::Jsonb => 3802,
            DataType::Array(elem) => crate::system::defs::sys_type(*elem).map_or(1009, |t| t.array),
            DataType::Reg(kind) => kind.oid(),
            DataType::Enum(t) => t.oid,
        }
    }

    /// The type values of this type take in expressions: a TIMESTAMP(p)'s is TIMESTAMP.
    pub fn base(&self) -> DataType {
        match self {
            DataType::TimestampP { tz: false, .. } => DataType::Timestamp,
            DataType::TimestampP { tz: true, .. } => DataType::TimestampTz,
            other => other.clone(),
        }
    }

    /// The type with PostgreSQL oid `oid`, for the types Bulwark has (arrays of them
    /// included); None for any other oid.
    pub fn from_oid(oid: u32) -> Option<DataType> {
        Some(match oid {
            16 => DataType::Bool,
            21 => DataType::Int2,
            23 => DataType::Int4,
            20 => DataType::Int8,
            700 => DataType::Float4,
            701 => DataType::Float8,
            1700 => DataType::Numeric { precision: None, scale: None },
            25 => DataType::Text,
            1043 => DataType::Varchar(None),
            1042 => DataType::Char(None),
            17 => DataType::Bytea,
            1082 => DataType::Date,
            1083 => DataType::Time,
            1114 => DataType::Timestamp,
            1184 => DataType::TimestampTz,
            1186 => DataType::Interval,
            2950 => DataType::Uuid,
            114 => DataType::Json,
            3802 => DataType::Jsonb,
            _ => {
                let elem = crate::system::defs::array_of(oid)?;
                // oid[] (asyncpg's type lookups send one): its elements are kept as text.
                if elem.oid != OID_OID {
                    DataType::from_oid(elem.oid)?;
                }
                DataType::Array(elem.oid)
            }
        })
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataType::Numeric { precision: Some(p), scale } => write!(f, "numeric({p},{})", scale.unwrap_or(0)),
            DataType::Varchar(Some(n)) => write!(f, "character varying({n})"),
            DataType::Char(Some(n)) => write!(f, "character({n})"),
            DataType::TimestampP { tz, precision } => {
                write!(f, "timestamp({precision}) with{} time zone", if *tz { "" } else { "out" })
            }
            DataType::Enum(t) => f.write_str(&t.name),
            other => f.write_str(other.pg_name()),
        }
    }
}

/// A NUMERIC value: `mantissa / 10^scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Numeric {
    /// The digits.
    pub mantissa: i128,
    /// Digits after the decimal point.
    pub scale: u32,
}

/// An INTERVAL value, with PostgreSQL's three fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Interval {
    /// Months.
    pub months: i32,
    /// Days.
    pub days: i32,
    /// Microseconds.
    pub micros: i64,
}

/// A SQL value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// NULL.
    Null,
    /// BOOLEAN.
    Bool(bool),
    /// SMALLINT.
    Int2(i16),
    /// INTEGER.
    Int4(i32),
    /// BIGINT.
    Int8(i64),
    /// REAL.
    Float4(f32),
    /// DOUBLE PRECISION.
    Float8(f64),
    /// NUMERIC.
    Numeric(Numeric),
    /// TEXT, VARCHAR, CHAR; also the type of a string literal until context gives it one.
    Text(String),
    /// BYTEA.
    Bytea(Vec<u8>),
    /// DATE: days since 2000-01-01.
    Date(i32),
    /// TIME: microseconds since midnight, 0 to 86,400,000,000 (24:00:00 included).
    Time(i64),
    /// TIMESTAMP: microseconds since 2000-01-01 00:00:00.
    Timestamp(i64),
    /// TIMESTAMPTZ: microseconds since 2000-01-01 00:00:00 UTC.
    TimestampTz(i64),
    /// INTERVAL.
    Interval(Interval),
    /// A `reg*` value: the object's oid and its name as the type prints it (quoted and
    /// schema-qualified where PostgreSQL would). It compares, groups and converts to
    /// integers as the oid.
    Reg(RegKind, u32, String),
    /// JSON or JSONB: the document's text. A `json` value keeps its input text as it was
    /// written; a `jsonb` value is in its normal form (see `eval::json`).
    Json(String),
    /// A value of an enumerated type.
    Enum(Box<EnumValue>),
}

impl Value {
    /// True for NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}
