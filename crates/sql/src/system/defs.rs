//! The system tables and views: their names, oids and columns, as in PostgreSQL 15.
//!
//! Columns keep PostgreSQL's names and order. Their types are Bulwark's nearest: `oid` and
//! `xid` are bigint, `name`, `"char"`, `regproc`, `pg_node_tree` and every array type are
//! text (arrays in their text form, see `eval::array`).

use crate::types::DataType;

/// The schemas the system tables live in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// pg_catalog.
    PgCatalog,
    /// information_schema.
    InformationSchema,
}

/// pg_namespace oids.
pub const PG_CATALOG_OID: u32 = 11;
/// public.
pub const PUBLIC_OID: u32 = 2200;
/// information_schema (initdb gives it an oid in this range).
pub const INFORMATION_SCHEMA_OID: u32 = 13000;

impl Schema {
    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Schema::PgCatalog => "pg_catalog",
            Schema::InformationSchema => "information_schema",
        }
    }

    /// Its oid.
    pub fn oid(self) -> u32 {
        match self {
            Schema::PgCatalog => PG_CATALOG_OID,
            Schema::InformationSchema => INFORMATION_SCHEMA_OID,
        }
    }
}

/// A column type, as the catalogs declare it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// oid (bigint here).
    Oid,
    /// name.
    Name,
    /// text.
    Text,
    /// "char".
    Char,
    /// boolean.
    Bool,
    /// int2.
    I2,
    /// int4.
    I4,
    /// int8.
    I8,
    /// float4.
    F4,
    /// An array (text form).
    Arr,
    /// pg_node_tree: an expression's SQL text here.
    Node,
    /// regproc: a function's name.
    Proc,
    /// xid (bigint here).
    Xid,
    /// timestamptz.
    Ts,
}

impl Ty {
    /// The Bulwark type of the column.
    pub fn data_type(self) -> DataType {
        match self {
            Ty::Oid | Ty::Xid | Ty::I8 => DataType::Int8,
            Ty::Name | Ty::Text | Ty::Char | Ty::Arr | Ty::Node | Ty::Proc => DataType::Text,
            Ty::Bool => DataType::Bool,
            Ty::I2 => DataType::Int2,
            Ty::I4 => DataType::Int4,
            Ty::F4 => DataType::Float4,
            Ty::Ts => DataType::TimestampTz,
        }
    }
}

/// A system table or view.
#[derive(Debug)]
pub struct SysTable {
    /// Its schema.
    pub schema: Schema,
    /// Its name.
    pub name: &'static str,
    /// Its oid (PostgreSQL's for the catalogs; views get oids in initdb's range).
    pub oid: u32,
    /// A view ('v' in pg_class) rather than a table ('r').
    pub view: bool,
    /// Columns in order.
    pub columns: &'static [(&'static str, Ty)],
}

use Ty::*;

const fn t(name: &'static str, oid: u32, columns: &'static [(&'static str, Ty)]) -> SysTable {
    SysTable { schema: Schema::PgCatalog, name, oid, view: false, columns }
}

const fn v(name: &'static str, oid: u32, columns: &'static [(&'static str, Ty)]) -> SysTable {
    SysTable { schema: Schema::PgCatalog, name, oid, view: true, columns }
}

const fn is(name: &'static str, oid: u32, columns: &'static [(&'static str, Ty)]) -> SysTable {
    SysTable { schema: Schema::InformationSchema, name, oid, view: true, columns }
}

/// pg_class's oid (`'pg_class'::regclass`, pg_depend.classid).
pub const PG_CLASS_OID: u32 = 1259;
/// pg_constraint's oid.
pub const PG_CONSTRAINT_OID: u32 = 2606;

/// Every system table and view.
pub static TABLES: &[SysTable] = &[
    t(
        "pg_class",
        PG_CLASS_OID,
        &[
            ("oid", Oid),
            ("relname", Name),
            ("relnamespace", Oid),
            ("reltype", Oid),
            ("reloftype", Oid),
            ("relowner", Oid),
            ("relam", Oid),
            ("relfilenode", Oid),
            ("reltablespace", Oid),
            ("relpages", I4),
            ("reltuples", F4),
            ("relallvisible", I4),
            ("reltoastrelid", Oid),
            ("relhasindex", Bool),
            ("relisshared", Bool),
            ("relpersistence", Char),
            ("relkind", Char),
            ("relnatts", I2),
            ("relchecks", I2),
            ("relhasrules", Bool),
            ("relhastriggers", Bool),
            ("relhassubclass", Bool),
            ("relrowsecurity", Bool),
            ("relforcerowsecurity", Bool),
            ("relispopulated", Bool),
            ("relreplident", Char),
            ("relispartition", Bool),
            ("relrewrite", Oid),
            ("relfrozenxid", Xid),
            ("relminmxid", Xid),
            ("relacl", Arr),
            ("reloptions", Arr),
            ("relpartbound", Node),
        ],
    ),
    t("pg_namespace", 2615, &[("oid", Oid), ("nspname", Name), ("nspowner", Oid), ("nspacl", Arr)]),
    t(
        "pg_attribute",
        1249,
        &[
            ("attrelid", Oid),
            ("attname", Name),
            ("atttypid", Oid),
            ("attstattarget", I4),
            ("attlen", I2),
            ("attnum", I2),
            ("attndims", I4),
            ("attcacheoff", I4),
            ("atttypmod", I4),
            ("attbyval", Bool),
            ("attalign", Char),
            ("attstorage", Char),
            ("attcompression", Char),
            ("attnotnull", Bool),
            ("atthasdef", Bool),
            ("atthasmissing", Bool),
            ("attidentity", Char),
            ("attgenerated", Char),
            ("attisdropped", Bool),
            ("attislocal", Bool),
            ("attinhcount", I4),
            ("attcollation", Oid),
            ("attacl", Arr),
            ("attoptions", Arr),
            ("attfdwoptions", Arr),
            ("attmissingval", Arr),
        ],
    ),
    t(
        "pg_type",
        1247,
        &[
            ("oid", Oid),
            ("typname", Name),
            ("typnamespace", Oid),
            ("typowner", Oid),
            ("typlen", I2),
            ("typbyval", Bool),
            ("typtype", Char),
            ("typcategory", Char),
            ("typispreferred", Bool),
            ("typisdefined", Bool),
            ("typdelim", Char),
            ("typrelid", Oid),
            ("typsubscript", Proc),
            ("typelem", Oid),
            ("typarray", Oid),
            ("typinput", Proc),
            ("typoutput", Proc),
            ("typreceive", Proc),
            ("typsend", Proc),
            ("typmodin", Proc),
            ("typmodout", Proc),
            ("typanalyze", Proc),
            ("typalign", Char),
            ("typstorage", Char),
            ("typnotnull", Bool),
            ("typbasetype", Oid),
            ("typtypmod", I4),
            ("typndims", I4),
            ("typcollation", Oid),
            ("typdefaultbin", Node),
            ("typdefault", Text),
            ("typacl", Arr),
        ],
    ),
    t("pg_enum", 3501, &[("oid", Oid), ("enumtypid", Oid), ("enumsortorder", F4), ("enumlabel", Name)]),
    t(
        "pg_index",
        2610,
        &[
            ("indexrelid", Oid),
            ("indrelid", Oid),
            ("indnatts", I2),
            ("indnkeyatts", I2),
            ("indisunique", Bool),
            ("indnullsnotdistinct", Bool),
            ("indisprimary", Bool),
            ("indisexclusion", Bool),
            ("indimmediate", Bool),
            ("indisclustered", Bool),
            ("indisvalid", Bool),
            ("indcheckxmin", Bool),
            ("indisready", Bool),
            ("indislive", Bool),
            ("indisreplident", Bool),
            ("indkey", Arr),
            ("indcollation", Arr),
            ("indclass", Arr),
            ("indoption", Arr),
            ("indexprs", Node),
            ("indpred", Node),
        ],
    ),
    t(
        "pg_constraint",
        PG_CONSTRAINT_OID,
        &[
            ("oid", Oid),
            ("conname", Name),
            ("connamespace", Oid),
            ("contype", Char),
            ("condeferrable", Bool),
            ("condeferred", Bool),
            ("convalidated", Bool),
            ("conrelid", Oid),
            ("contypid", Oid),
            ("conindid", Oid),
            ("conparentid", Oid),
            ("confrelid", Oid),
            ("confupdtype", Char),
            ("confdeltype", Char),
            ("confmatchtype", Char),
            ("conislocal", Bool),
            ("coninhcount", I4),
            ("connoinherit", Bool),
            ("conkey", Arr),
            ("confkey", Arr),
            ("conpfeqop", Arr),
            ("conppeqop", Arr),
            ("conffeqop", Arr),
            ("confdelsetcols", Arr),
            ("conexclop", Arr),
            ("conbin", Node),
        ],
    ),
    t("pg_attrdef", 2604, &[("oid", Oid), ("adrelid", Oid), ("adnum", I2), ("adbin", Node)]),
    t("pg_am", 2601, &[("oid", Oid), ("amname", Name), ("amhandler", Proc), ("amtype", Char)]),
    // Empty: Bulwark has no range types.
    t(
        "pg_range",
        3541,
        &[
            ("rngtypid", Oid),
            ("rngsubtype", Oid),
            ("rngmultitypid", Oid),
            ("rngcollation", Oid),
            ("rngsubopc", Oid),
            ("rngcanonical", Proc),
            ("rngsubdiff", Proc),
        ],
    ),
    // Empty: every index uses its column type's default operator class.
    t(
        "pg_opclass",
        2616,
        &[
            ("oid", Oid),
            ("opcmethod", Oid),
            ("opcname", Name),
            ("opcnamespace", Oid),
            ("opcowner", Oid),
            ("opcfamily", Oid),
            ("opcintype", Oid),
            ("opcdefault", Bool),
            ("opckeytype", Oid),
        ],
    ),
    t(
        "pg_database",
        1262,
        &[
            ("oid", Oid),
            ("datname", Name),
            ("datdba", Oid),
            ("encoding", I4),
            ("datlocprovider", Char),
            ("datistemplate", Bool),
            ("datallowconn", Bool),
            ("datconnlimit", I4),
            ("datfrozenxid", Xid),
            ("datminmxid", Xid),
            ("dattablespace", Oid),
            ("datcollate", Text),
            ("datctype", Text),
            ("daticulocale", Text),
            ("datcollversion", Text),
            ("datacl", Arr),
        ],
    ),
    t(
        "pg_collation",
        3456,
        &[
            ("oid", Oid),
            ("collname", Name),
            ("collnamespace", Oid),
            ("collowner", Oid),
            ("collprovider", Char),
            ("collisdeterministic", Bool),
            ("collencoding", I4),
            ("collcollate", Text),
            ("collctype", Text),
            ("colliculocale", Text),
            ("collversion", Text),
        ],
    ),
    t(
        "pg_sequence",
        2224,
        &[
            ("seqrelid", Oid),
            ("seqtypid", Oid),
            ("seqstart", I8),
            ("seqincrement", I8),
            ("seqmax", I8),
            ("seqmin", I8),
            ("seqcache", I8),
            ("seqcycle", Bool),
        ],
    ),
    t(
        "pg_depend",
        2608,
        &[
            ("classid", Oid),
            ("objid", Oid),
            ("objsubid", I4),
            ("refclassid", Oid),
            ("refobjid", Oid),
            ("refobjsubid", I4),
            ("deptype", Char),
        ],
    ),
    t(
        "pg_tablespace",
        1213,
        &[("oid", Oid), ("spcname", Name), ("spcowner", Oid), ("spcacl", Arr), ("spcoptions", Arr)],
    ),
    t(
        "pg_auth_members",
        1261,
        &[("oid", Oid), ("roleid", Oid), ("member", Oid), ("grantor", Oid), ("admin_option", Bool)],
    ),
    t("pg_description", 2609, &[("objoid", Oid), ("classoid", Oid), ("objsubid", I4), ("description", Text)]),
    t("pg_inherits", 2611, &[("inhrelid", Oid), ("inhparent", Oid), ("inhseqno", I4), ("inhdetachpending", Bool)]),
    t(
        "pg_policy",
        3256,
        &[
            ("oid", Oid),
            ("polname", Name),
            ("polrelid", Oid),
            ("polcmd", Char),
            ("polpermissive", Bool),
            ("polroles", Arr),
            ("polqual", Node),
            ("polwithcheck", Node),
        ],
    ),
    t(
        "pg_trigger",
        2620,
        &[
            ("oid", Oid),
            ("tgrelid", Oid),
            ("tgparentid", Oid),
            ("tgname", Name),
            ("tgfoid", Oid),
            ("tgtype", I2),
            ("tgenabled", Char),
            ("tgisinternal", Bool),
            ("tgconstrrelid", Oid),
            ("tgconstrindid", Oid),
            ("tgconstraint", Oid),
            ("tgdeferrable", Bool),
            ("tginitdeferred", Bool),
            ("tgnargs", I2),
            ("tgattr", Arr),
            ("tgargs", Text),
            ("tgqual", Node),
            ("tgoldtable", Name),
            ("tgnewtable", Name),
        ],
    ),
    t(
        "pg_rewrite",
        2618,
        &[
            ("oid", Oid),
            ("rulename", Name),
            ("ev_class", Oid),
            ("ev_type", Char),
            ("ev_enabled", Char),
            ("is_instead", Bool),
            ("ev_qual", Node),
            ("ev_action", Node),
        ],
    ),
    t(
        "pg_statistic_ext",
        3381,
        &[
            ("oid", Oid),
            ("stxrelid", Oid),
            ("stxname", Name),
            ("stxnamespace", Oid),
            ("stxowner", Oid),
            ("stxstattarget", I4),
            ("stxkeys", Arr),
            ("stxkind", Arr),
            ("stxexprs", Node),
        ],
    ),
    t(
        "pg_publication",
        6104,
        &[
            ("oid", Oid),
            ("pubname", Name),
            ("pubowner", Oid),
            ("puballtables", Bool),
            ("pubinsert", Bool),
            ("pubupdate", Bool),
            ("pubdelete", Bool),
            ("pubtruncate", Bool),
            ("pubviaroot", Bool),
        ],
    ),
    t(
        "pg_publication_rel",
        6106,
        &[("oid", Oid), ("prpubid", Oid), ("prrelid", Oid), ("prqual", Node), ("prattrs", Arr)],
    ),
    t("pg_publication_namespace", 6237, &[("oid", Oid), ("pnpubid", Oid), ("pnnspid", Oid)]),
    t(
        "pg_extension",
        3079,
        &[
            ("oid", Oid),
            ("extname", Name),
            ("extowner", Oid),
            ("extnamespace", Oid),
            ("extrelocatable", Bool),
            ("extversion", Text),
            ("extconfig", Arr),
            ("extcondition", Arr),
        ],
    ),
    v(
        "pg_roles",
        12001,
        &[
            ("rolname", Name),
            ("rolsuper", Bool),
            ("rolinherit", Bool),
            ("rolcreaterole", Bool),
            ("rolcreatedb", Bool),
            ("rolcanlogin", Bool),
            ("rolreplication", Bool),
            ("rolconnlimit", I4),
            ("rolpassword", Text),
            ("rolvaliduntil", Ts),
            ("rolbypassrls", Bool),
            ("rolconfig", Arr),
            ("oid", Oid),
        ],
    ),
    v(
        "pg_user",
        12002,
        &[
            ("usename", Name),
            ("usesysid", Oid),
            ("usecreatedb", Bool),
            ("usesuper", Bool),
            ("userepl", Bool),
            ("usebypassrls", Bool),
            ("passwd", Text),
            ("valuntil", Ts),
            ("useconfig", Arr),
        ],
    ),
    v(
        "pg_settings",
        12003,
        &[
            ("name", Text),
            ("setting", Text),
            ("unit", Text),
            ("category", Text),
            ("short_desc", Text),
            ("extra_desc", Text),
            ("context", Text),
            ("vartype", Text),
            ("source", Text),
            ("min_val", Text),
            ("max_val", Text),
            ("enumvals", Arr),
            ("boot_val", Text),
            ("reset_val", Text),
            ("sourcefile", Text),
            ("sourceline", I4),
            ("pending_restart", Bool),
        ],
    ),
    v(
        "pg_tables",
        12004,
        &[
            ("schemaname", Name),
            ("tablename", Name),
            ("tableowner", Name),
            ("tablespace", Name),
            ("hasindexes", Bool),
            ("hasrules", Bool),
            ("hastriggers", Bool),
            ("rowsecurity", Bool),
        ],
    ),
    v("pg_views", 12008, &[("schemaname", Name), ("viewname", Name), ("viewowner", Name), ("definition", Text)]),
    v(
        "pg_indexes",
        12005,
        &[("schemaname", Name), ("tablename", Name), ("indexname", Name), ("tablespace", Name), ("indexdef", Text)],
    ),
    v(
        "pg_sequences",
        12006,
        &[
            ("schemaname", Name),
            ("sequencename", Name),
            ("sequenceowner", Name),
            ("data_type", Text),
            ("start_value", I8),
            ("min_value", I8),
            ("max_value", I8),
            ("increment_by", I8),
            ("cycle", Bool),
            ("cache_size", I8),
            ("last_value", I8),
        ],
    ),
    v(
        "pg_stats",
        12007,
        &[
            ("schemaname", Name),
            ("tablename", Name),
            ("attname", Name),
            ("inherited", Bool),
            ("null_frac", F4),
            ("avg_width", I4),
            ("n_distinct", F4),
            ("most_common_vals", Arr),
            ("most_common_freqs", Arr),
            ("histogram_bounds", Arr),
            ("correlation", F4),
            ("most_common_elems", Arr),
            ("most_common_elem_freqs", Arr),
            ("elem_count_histogram", Arr),
        ],
    ),
    is(
        "schemata",
        13001,
        &[
            ("catalog_name", Name),
            ("schema_name", Name),
            ("schema_owner", Name),
            ("default_character_set_catalog", Name),
            ("default_character_set_schema", Name),
            ("default_character_set_name", Name),
            ("sql_path", Text),
        ],
    ),
    is(
        "tables",
        13002,
        &[
            ("table_catalog", Name),
            ("table_schema", Name),
            ("table_name", Name),
            ("table_type", Text),
            ("self_referencing_column_name", Name),
            ("reference_generation", Text),
            ("user_defined_type_catalog", Name),
            ("user_defined_type_schema", Name),
            ("user_defined_type_name", Name),
            ("is_insertable_into", Text),
            ("is_typed", Text),
            ("commit_action", Text),
        ],
    ),
    is(
        "views",
        13007,
        &[
            ("table_catalog", Name),
            ("table_schema", Name),
            ("table_name", Name),
            ("view_definition", Text),
            ("check_option", Text),
            ("is_updatable", Text),
            ("is_insertable_into", Text),
            ("is_trigger_updatable", Text),
            ("is_trigger_deletable", Text),
            ("is_trigger_insertable_into", Text),
        ],
    ),
    is(
        "columns",
        13003,
        &[
            ("table_catalog", Name),
            ("table_schema", Name),
            ("table_name", Name),
            ("column_name", Name),
            ("ordinal_position", I4),
            ("column_default", Text),
            ("is_nullable", Text),
            ("data_type", Text),
            ("character_maximum_length", I4),
            ("character_octet_length", I4),
            ("numeric_precision", I4),
            ("numeric_precision_radix", I4),
            ("numeric_scale", I4),
            ("datetime_precision", I4),
            ("interval_type", Text),
            ("interval_precision", I4),
            ("character_set_catalog", Name),
            ("character_set_schema", Name),
            ("character_set_name", Name),
            ("collation_catalog", Name),
            ("collation_schema", Name),
            ("collation_name", Name),
            ("domain_catalog", Name),
            ("domain_schema", Name),
            ("domain_name", Name),
            ("udt_catalog", Name),
            ("udt_schema", Name),
            ("udt_name", Name),
            ("scope_catalog", Name),
            ("scope_schema", Name),
            ("scope_name", Name),
            ("maximum_cardinality", I4),
            ("dtd_identifier", Name),
            ("is_self_referencing", Text),
            ("is_identity", Text),
            ("identity_generation", Text),
            ("identity_start", Text),
            ("identity_increment", Text),
            ("identity_maximum", Text),
            ("identity_minimum", Text),
            ("identity_cycle", Text),
            ("is_generated", Text),
            ("generation_expression", Text),
            ("is_updatable", Text),
        ],
    ),
    is(
        "table_constraints",
        13004,
        &[
            ("constraint_catalog", Name),
            ("constraint_schema", Name),
            ("constraint_name", Name),
            ("table_catalog", Name),
            ("table_schema", Name),
            ("table_name", Name),
            ("constraint_type", Text),
            ("is_deferrable", Text),
            ("initially_deferred", Text),
            ("enforced", Text),
            ("nulls_distinct", Text),
        ],
    ),
    is(
        "key_column_usage",
        13005,
        &[
            ("constraint_catalog", Name),
            ("constraint_schema", Name),
            ("constraint_name", Name),
            ("table_catalog", Name),
            ("table_schema", Name),
            ("table_name", Name),
            ("column_name", Name),
            ("ordinal_position", I4),
            ("position_in_unique_constraint", I4),
        ],
    ),
    is(
        "referential_constraints",
        13006,
        &[
            ("constraint_catalog", Name),
            ("constraint_schema", Name),
            ("constraint_name", Name),
            ("unique_constraint_catalog", Name),
            ("unique_constraint_schema", Name),
            ("unique_constraint_name", Name),
            ("match_option", Text),
            ("update_rule", Text),
            ("delete_rule", Text),
        ],
    ),
];

/// A built-in type: the rows of pg_type and the names format_type prints.
#[derive(Debug)]
pub struct SysType {
    /// Oid.
    pub oid: u32,
    /// typname.
    pub name: &'static str,
    /// format_type's name (SQL's spelling).
    pub sql_name: &'static str,
    /// typlen.
    pub len: i16,
    /// typcategory.
    pub category: char,
    /// typispreferred.
    pub preferred: bool,
    /// typalign.
    pub align: char,
    /// The array type's oid.
    pub array: u32,
    /// typcollation (100 for the collatable string types).
    pub collation: u32,
}

const fn ty(
    oid: u32,
    name: &'static str,
    sql_name: &'static str,
    len: i16,
    category: char,
    align: char,
    array: u32,
) -> SysType {
    SysType { oid, name, sql_name, len, category, preferred: false, align, array, collation: 0 }
}

/// The base types (their array types are made from them).
pub static TYPES: &[SysType] = &[
    SysType { preferred: true, ..ty(16, "bool", "boolean", 1, 'B', 'c', 1000) },
    ty(17, "bytea", "bytea", -1, 'U', 'i', 1001),
    ty(18, "char", "\"char\"", 1, 'Z', 'c', 1002),
    SysType { collation: 950, ..ty(19, "name", "name", 64, 'S', 'c', 1003) },
    ty(20, "int8", "bigint", 8, 'N', 'd', 1016),
    ty(21, "int2", "smallint", 2, 'N', 's', 1005),
    ty(22, "int2vector", "int2vector", -1, 'A', 'i', 1006),
    ty(23, "int4", "integer", 4, 'N', 'i', 1007),
    ty(24, "regproc", "regproc", 4, 'N', 'i', 1008),
    SysType { preferred: true, collation: 100, ..ty(25, "text", "text", -1, 'S', 'i', 1009) },
    SysType { preferred: true, ..ty(26, "oid", "oid", 4, 'N', 'i', 1028) },
    ty(30, "oidvector", "oidvector", -1, 'A', 'i', 1013),
    ty(194, "pg_node_tree", "pg_node_tree", -1, 'Z', 'i', 0),
    ty(700, "float4", "real", 4, 'N', 'i', 1021),
    SysType { preferred: true, ..ty(701, "float8", "double precision", 8, 'N', 'd', 1022) },
    ty(705, "unknown", "unknown", -2, 'X', 'c', 0),
    SysType { collation: 100, ..ty(1042, "bpchar", "character", -1, 'S', 'i', 1014) },
    SysType { collation: 100, ..ty(1043, "varchar", "character varying", -1, 'S', 'i', 1015) },
    ty(1082, "date", "date", 4, 'D', 'i', 1182),
    ty(1083, "time", "time without time zone", 8, 'D', 'd', 1183),
    ty(1114, "timestamp", "timestamp without time zone", 8, 'D', 'd', 1115),
    SysType { preferred: true, ..ty(1184, "timestamptz", "timestamp with time zone", 8, 'D', 'd', 1185) },
    SysType { preferred: true, ..ty(1186, "interval", "interval", 16, 'T', 'd', 1187) },
    ty(1700, "numeric", "numeric", -1, 'N', 'i', 1231),
    ty(2950, "uuid", "uuid", 16, 'U', 'c', 2951),
    ty(114, "json", "json", -1, 'U', 'i', 199),
    ty(3802, "jsonb", "jsonb", -1, 'U', 'i', 3807),
    ty(2205, "regclass", "regclass", 4, 'N', 'i', 2210),
    ty(2206, "regtype", "regtype", 4, 'N', 'i', 2211),
    ty(4089, "regnamespace", "regnamespace", 4, 'N', 'i', 4090),
    ty(4096, "regrole", "regrole", 4, 'N', 'i', 4097),
];

/// The base type with oid `oid`.
pub fn sys_type(oid: u32) -> Option<&'static SysType> {
    TYPES.iter().find(|t| t.oid == oid)
}

/// The base type whose array type has oid `oid`.
pub fn array_of(oid: u32) -> Option<&'static SysType> {
    TYPES.iter().find(|t| t.array == oid && oid != 0)
}
