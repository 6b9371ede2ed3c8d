//! Bulwark's own SQL syntax tree.
//!
//! The parser (`parser.rs`) turns `sqlparser`'s tree into this one at once, so an upgrade
//! of `sqlparser` touches one module. Names are already folded the PostgreSQL way
//! (unquoted identifiers to lower case, quoted ones kept).

use crate::types::{DataType, Value};
use txn::IsolationLevel;

/// What DISCARD throws away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discard {
    /// Everything below, every setting reset and every prepared statement deallocated.
    All,
    /// Cached plans.
    Plans,
    /// Cached sequence values (currval, and values fetched ahead).
    Sequences,
    /// Temporary tables (Bulwark has none).
    Temp,
}

/// One SQL statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// CREATE TABLE.
    CreateTable {
        /// Table name.
        name: String,
        /// IF NOT EXISTS.
        if_not_exists: bool,
        /// Columns in order.
        columns: Vec<ColumnDef>,
        /// Table constraints (column constraints are folded in here too).
        constraints: Vec<TableConstraint>,
    },
    /// DROP TABLE.
    DropTable {
        /// Tables.
        names: Vec<String>,
        /// IF EXISTS.
        if_exists: bool,
    },
    /// CREATE [OR REPLACE] VIEW.
    CreateView {
        /// Name.
        name: String,
        /// The column names given, if any (else the query's).
        columns: Vec<String>,
        /// The query.
        query: Box<Query>,
        /// The query as SQL text (what is stored).
        sql: String,
        /// OR REPLACE.
        or_replace: bool,
    },
    /// CREATE EXTENSION.
    CreateExtension {
        /// Name.
        name: String,
        /// IF NOT EXISTS.
        if_not_exists: bool,
    },
    /// CREATE SEQUENCE.
    CreateSequence {
        /// Name.
        name: String,
        /// IF NOT EXISTS.
        if_not_exists: bool,
        /// Its options, as written.
        options: SequenceOptions,
    },
    /// DROP SEQUENCE.
    DropSequence {
        /// Names.
        names: Vec<String>,
        /// IF EXISTS.
        if_exists: bool,
    },
    /// DROP VIEW.
    DropView {
        /// Names.
        names: Vec<String>,
        /// IF EXISTS.
        if_exists: bool,
    },
    /// CREATE [UNIQUE] INDEX.
    CreateIndex {
        /// Index name (generated if absent).
        name: Option<String>,
        /// Table.
        table: String,
        /// Indexed columns.
        columns: Vec<String>,
        /// UNIQUE.
        unique: bool,
        /// IF NOT EXISTS.
        if_not_exists: bool,
    },
    /// DROP INDEX.
    DropIndex {
        /// Indexes.
        names: Vec<String>,
        /// IF EXISTS.
        if_exists: bool,
    },
    /// INSERT.
    Insert {
        /// Table.
        table: String,
        /// Target columns (None: all, in order).
        columns: Option<Vec<String>>,
        /// The rows.
        source: InsertSource,
        /// ON CONFLICT.
        on_conflict: Option<OnConflict>,
        /// RETURNING.
        returning: Vec<SelectItem>,
    },
    /// UPDATE.
    Update {
        /// Table.
        table: String,
        /// Alias.
        alias: Option<String>,
        /// SET column = expr.
        assignments: Vec<(String, Expr)>,
        /// FROM: the items joined to the table (empty without FROM).
        from: Vec<TableRef>,
        /// WHERE.
        filter: Option<Expr>,
        /// RETURNING.
        returning: Vec<SelectItem>,
    },
    /// DELETE.
    Delete {
        /// Table.
        table: String,
        /// Alias.
        alias: Option<String>,
        /// USING: the items joined to the table (empty without USING).
        using: Vec<TableRef>,
        /// WHERE.
        filter: Option<Expr>,
        /// RETURNING.
        returning: Vec<SelectItem>,
    },
    /// A query.
    Query(Box<Query>),
    /// BEGIN / START TRANSACTION.
    Begin {
        /// ISOLATION LEVEL.
        isolation: Option<IsolationLevel>,
        /// READ ONLY (Some(true)) / READ WRITE (Some(false)).
        read_only: Option<bool>,
    },
    /// COMMIT / END.
    Commit,
    /// ROLLBACK / ABORT.
    Rollback,
    /// SAVEPOINT name.
    Savepoint(String),
    /// ROLLBACK TO SAVEPOINT name.
    RollbackTo(String),
    /// RELEASE SAVEPOINT name.
    Release(String),
    /// SET TRANSACTION.
    SetTransaction {
        /// ISOLATION LEVEL.
        isolation: Option<IsolationLevel>,
        /// READ ONLY / READ WRITE.
        read_only: Option<bool>,
    },
    /// SET [SESSION | LOCAL] name = value (value as text; DEFAULT is None).
    Set {
        /// Setting name, lower case.
        name: String,
        /// The value, or None for DEFAULT.
        value: Option<String>,
        /// SET LOCAL: the value lasts until the end of the transaction.
        local: bool,
    },
    /// RESET name (the name "all" for RESET ALL).
    Reset(String),
    /// DISCARD { ALL | PLANS | SEQUENCES | TEMP }.
    Discard(Discard),
    /// DEALLOCATE [PREPARE] { name | ALL } (None: ALL): forgets prepared statements.
    Deallocate(Option<String>),
    /// CREATE TYPE name AS ENUM ('label', ...).
    CreateEnum {
        /// The type's name.
        name: String,
        /// Its labels, in order.
        labels: Vec<String>,
    },
    /// DROP TYPE [IF EXISTS] name, ...
    DropType {
        /// The types.
        names: Vec<String>,
        /// IF EXISTS.
        if_exists: bool,
    },
    /// ALTER TYPE name ADD VALUE [IF NOT EXISTS] 'label' [{BEFORE | AFTER} 'neighbour'].
    AlterEnumAddValue {
        /// The type.
        name: String,
        /// The new label.
        label: String,
        /// IF NOT EXISTS.
        if_not_exists: bool,
        /// Where it goes: (true for BEFORE, the neighbour); None: after the last.
        position: Option<(bool, String)>,
    },
    /// CREATE SCHEMA [IF NOT EXISTS] name: Bulwark has one schema for user objects,
    /// `public`, so only the schemas that exist may be named (with IF NOT EXISTS).
    CreateSchema {
        /// The schema's name.
        name: String,
        /// IF NOT EXISTS.
        if_not_exists: bool,
    },
    /// LOCK [TABLE] name, ... [IN mode MODE] [NOWAIT].
    Lock {
        /// The tables.
        tables: Vec<String>,
        /// Whether the mode holds off writers (SHARE and stronger; ACCESS EXCLUSIVE when
        /// no mode is given).
        exclusive: bool,
        /// NOWAIT: fail at once (55P03) rather than wait for a conflicting lock.
        nowait: bool,
    },
    /// COMMENT ON { TABLE | VIEW | SEQUENCE | INDEX | COLUMN } name IS { 'text' | NULL }.
    Comment {
        /// The relation.
        relation: String,
        /// The column, for COMMENT ON COLUMN.
        column: Option<String>,
        /// What the statement named the object as (TABLE, VIEW, ...), checked against it.
        kind: CommentKind,
        /// The comment; None (or empty) removes it.
        comment: Option<String>,
    },
    /// SET CONSTRAINTS { ALL | name, ... } { DEFERRED | IMMEDIATE } (names None: ALL).
    SetConstraints {
        /// The constraints named; None for ALL.
        names: Option<Vec<String>>,
        /// DEFERRED (true) or IMMEDIATE.
        deferred: bool,
    },
    /// PREPARE name [(type, ...)] AS statement: a prepared statement of the session.
    Prepare {
        /// The statement's name.
        name: String,
        /// The declared types of `$1..$n`; parameters beyond them take their types from
        /// the statement.
        types: Vec<DataType>,
        /// The prepared statement, as SQL text.
        sql: String,
    },
    /// EXECUTE name [(value, ...)]: runs a statement PREPARE made.
    Execute {
        /// The prepared statement's name.
        name: String,
        /// The values of `$1..$n`.
        args: Vec<Expr>,
    },
    /// CLOSE { name | ALL } (None: ALL): closes cursors.
    Close(Option<String>),
    /// UNLISTEN { channel | * }: no session listens, so there is nothing to stop.
    Unlisten,
    /// SHOW name.
    Show(String),
    /// EXPLAIN [ANALYZE].
    Explain {
        /// ANALYZE: run the statement and show what each node did.
        analyze: bool,
        /// COSTS (default on): show the planner's row estimates.
        costs: bool,
        /// TIMING (default on): show times with ANALYZE.
        timing: bool,
        /// SUMMARY (default: as ANALYZE): show the execution time.
        summary: bool,
        /// The explained statement.
        statement: Box<Statement>,
    },
    /// TRUNCATE.
    /// `TRUNCATE tables [CASCADE]`: with CASCADE, the tables whose foreign keys refer to
    /// them are emptied too.
    Truncate {
        /// The tables.
        tables: Vec<String>,
        /// CASCADE.
        cascade: bool,
        /// RESTART IDENTITY: the tables' SERIAL and identity sequences start again.
        restart_identity: bool,
    },
    /// COPY ... FROM STDIN / TO STDOUT.
    Copy(Box<CopyStatement>),
    /// VACUUM [FULL] [ANALYZE] [table, ...] (no tables: all of them).
    Vacuum {
        /// The tables.
        tables: Vec<String>,
        /// ANALYZE as well.
        analyze: bool,
    },
    /// ANALYZE [table, ...] (no tables: all of them).
    Analyze(Vec<String>),
    /// CREATE ROLE / CREATE USER (USER: LOGIN unless NOLOGIN).
    CreateRole {
        /// Role name.
        name: String,
        /// Options.
        options: RoleOptions,
    },
    /// ALTER ROLE / ALTER USER name [WITH] options.
    AlterRole {
        /// Role name.
        name: String,
        /// Options.
        options: RoleOptions,
    },
    /// DROP ROLE / DROP USER [IF EXISTS] names.
    DropRole {
        /// Role names.
        names: Vec<String>,
        /// IF EXISTS.
        if_exists: bool,
    },
    /// ALTER TABLE name action, ...
    AlterTable {
        /// Table name.
        name: String,
        /// IF EXISTS.
        if_exists: bool,
        /// The actions, applied in order.
        actions: Vec<AlterAction>,
    },
}

/// Options of CREATE ROLE / ALTER ROLE (None: not given).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoleOptions {
    /// SUPERUSER / NOSUPERUSER.
    pub superuser: Option<bool>,
    /// LOGIN / NOLOGIN.
    pub login: Option<bool>,
    /// PASSWORD 'p' (Some(Some)) / PASSWORD NULL (Some(None)).
    pub password: Option<Option<String>>,
}

/// COPY.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyStatement {
    /// What is copied.
    pub source: CopySource,
    /// FROM STDIN (true) or TO STDOUT (false).
    pub from: bool,
    /// The options, as written.
    pub options: CopyOptions,
}

/// What COPY reads or writes.
#[derive(Debug, Clone, PartialEq)]
pub enum CopySource {
    /// A table, with an optional column list.
    Table {
        /// Table name.
        name: String,
        /// Columns (None: all, in order).
        columns: Option<Vec<String>>,
    },
    /// COPY (query) TO STDOUT.
    Query(Box<Query>),
}

/// COPY's data format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyFormat {
    /// PostgreSQL's text format (tab-separated, backslash escapes, \N for NULL).
    Text,
    /// Comma-separated values.
    Csv,
    /// PostgreSQL's binary format.
    Binary,
}

/// COPY's options as written (None: the format's default).
#[derive(Debug, Clone, PartialEq)]
pub struct CopyOptions {
    /// FORMAT.
    pub format: CopyFormat,
    /// DELIMITER.
    pub delimiter: Option<String>,
    /// NULL.
    pub null: Option<String>,
    /// HEADER.
    pub header: bool,
    /// QUOTE.
    pub quote: Option<String>,
    /// ESCAPE.
    pub escape: Option<String>,
    /// FORCE_QUOTE: columns, or every column (`*`).
    pub force_quote: ForceQuote,
    /// FORCE_NOT_NULL columns.
    pub force_not_null: Vec<String>,
    /// FORCE_NULL columns.
    pub force_null: Vec<String>,
}

/// FORCE_QUOTE.
#[derive(Debug, Clone, PartialEq)]
pub enum ForceQuote {
    /// None forced.
    None,
    /// Every column (`*`).
    All,
    /// These columns.
    Columns(Vec<String>),
}

impl Default for CopyOptions {
    fn default() -> CopyOptions {
        CopyOptions {
            format: CopyFormat::Text,
            delimiter: None,
            null: None,
            header: false,
            quote: None,
            escape: None,
            force_quote: ForceQuote::None,
            force_not_null: vec![],
            force_null: vec![],
        }
    }
}

/// One action of ALTER TABLE.
#[derive(Debug, Clone, PartialEq)]
pub enum AlterAction {
    /// ADD [COLUMN] [IF NOT EXISTS] column, with its column constraints.
    AddColumn {
        /// The column.
        column: ColumnDef,
        /// Constraints written on the column (PRIMARY KEY, UNIQUE, CHECK, REFERENCES).
        constraints: Vec<TableConstraint>,
        /// IF NOT EXISTS.
        if_not_exists: bool,
    },
    /// DROP [COLUMN] [IF EXISTS] name [CASCADE].
    DropColumn {
        /// Column name.
        name: String,
        /// IF EXISTS.
        if_exists: bool,
        /// CASCADE: other tables' foreign keys on the column are dropped with it.
        cascade: bool,
    },
    /// RENAME [COLUMN] old TO new.
    RenameColumn {
        /// Current name.
        old: String,
        /// New name.
        new: String,
    },
    /// RENAME TO new.
    RenameTable(String),
    /// ADD table_constraint.
    AddConstraint(TableConstraint),
    /// DROP CONSTRAINT [IF EXISTS] name.
    DropConstraint {
        /// Constraint name.
        name: String,
        /// IF EXISTS.
        if_exists: bool,
    },
    /// ALTER [COLUMN] c SET DEFAULT expr (Some) / DROP DEFAULT (None).
    SetDefault {
        /// Column name.
        column: String,
        /// The new default.
        default: Option<Expr>,
    },
    /// ALTER [COLUMN] c SET NOT NULL (true) / DROP NOT NULL (false).
    SetNotNull {
        /// Column name.
        column: String,
        /// SET (true) or DROP (false).
        not_null: bool,
    },
    /// ALTER [COLUMN] c [SET DATA] TYPE type [USING expr].
    SetType {
        /// Column name.
        column: String,
        /// The new type.
        data_type: DataType,
        /// How each row's new value is computed (None: the old value, cast).
        using: Option<Expr>,
    },
}

/// A column definition.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDef {
    /// Name.
    pub name: String,
    /// Type.
    pub data_type: DataType,
    /// NOT NULL (PRIMARY KEY implies it).
    pub not_null: bool,
    /// DEFAULT expression.
    pub default: Option<Expr>,
    /// SERIAL / BIGSERIAL / GENERATED ... AS IDENTITY: filled from a sequence.
    pub serial: bool,
}

/// A table constraint.
#[derive(Debug, Clone, PartialEq)]
pub enum TableConstraint {
    /// PRIMARY KEY (columns).
    PrimaryKey {
        /// Constraint name.
        name: Option<String>,
        /// Columns.
        columns: Vec<String>,
    },
    /// UNIQUE (columns).
    Unique {
        /// Constraint name.
        name: Option<String>,
        /// Columns.
        columns: Vec<String>,
    },
    /// CHECK (expr).
    Check {
        /// Constraint name.
        name: Option<String>,
        /// The condition.
        expr: Expr,
    },
    /// FOREIGN KEY (columns) REFERENCES table (columns).
    ForeignKey {
        /// Constraint name.
        name: Option<String>,
        /// Referencing columns.
        columns: Vec<String>,
        /// Referenced table.
        foreign_table: String,
        /// Referenced columns (empty: its primary key).
        referred_columns: Vec<String>,
        /// ON DELETE.
        on_delete: ReferentialAction,
        /// ON UPDATE.
        on_update: ReferentialAction,
        /// DEFERRABLE.
        deferrable: bool,
        /// INITIALLY DEFERRED.
        initially_deferred: bool,
    },
}

/// What a foreign key does when the referenced row goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferentialAction {
    /// NO ACTION (the default).
    NoAction,
    /// RESTRICT.
    Restrict,
    /// CASCADE.
    Cascade,
    /// SET NULL.
    SetNull,
}

/// The rows of an INSERT.
#[derive(Debug, Clone, PartialEq)]
pub enum InsertSource {
    /// VALUES (...), (...); an `Expr::Default` marks DEFAULT.
    Values(Vec<Vec<Expr>>),
    /// INSERT ... SELECT.
    Query(Box<Query>),
    /// DEFAULT VALUES.
    DefaultValues,
}

/// ON CONFLICT ... DO UPDATE: the SET list and the optional WHERE.
pub type ConflictUpdate = (Vec<(String, Expr)>, Option<Expr>);

/// ON CONFLICT.
#[derive(Debug, Clone, PartialEq)]
pub struct OnConflict {
    /// The conflict target columns (may be empty).
    pub columns: Vec<String>,
    /// ON CONFLICT ON CONSTRAINT name: the target is that constraint's columns.
    pub constraint: Option<String>,
    /// DO NOTHING (None) or DO UPDATE SET ... [WHERE ...].
    pub update: Option<ConflictUpdate>,
}

/// One `name [(column, ...)] AS (query)` of a WITH.
#[derive(Debug, Clone, PartialEq)]
pub struct Cte {
    /// The name.
    pub name: String,
    /// Column aliases, naming the query's first columns in order.
    pub columns: Vec<String>,
    /// The query.
    pub query: Query,
    /// In a WITH RECURSIVE: the query may name itself (`base UNION [ALL] step`).
    pub recursive: bool,
}

/// The options of CREATE SEQUENCE (None: not written).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SequenceOptions {
    /// AS type.
    pub data_type: Option<DataType>,
    /// INCREMENT BY.
    pub increment: Option<i64>,
    /// MINVALUE n (Some(None): NO MINVALUE).
    pub min: Option<Option<i64>>,
    /// MAXVALUE n (Some(None): NO MAXVALUE).
    pub max: Option<Option<i64>>,
    /// START WITH.
    pub start: Option<i64>,
    /// CACHE.
    pub cache: Option<i64>,
    /// [NO] CYCLE.
    pub cycle: Option<bool>,
}

/// A query: WITH, a body, ORDER BY, LIMIT, OFFSET, FOR UPDATE.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// WITH name [(column, ...)] AS (query), in order.
    pub with: Vec<Cte>,
    /// The body.
    pub body: SetExpr,
    /// ORDER BY.
    pub order_by: Vec<OrderBy>,
    /// LIMIT.
    pub limit: Option<Expr>,
    /// OFFSET.
    pub offset: Option<Expr>,
    /// FOR UPDATE / FOR SHARE.
    pub locking: Option<Locking>,
}

/// A query body.
#[derive(Debug, Clone, PartialEq)]
pub enum SetExpr {
    /// SELECT.
    Select(Box<Select>),
    /// VALUES (...), (...).
    Values(Vec<Vec<Expr>>),
    /// UNION / INTERSECT / EXCEPT [ALL].
    SetOp {
        /// The operator.
        op: SetOperator,
        /// ALL.
        all: bool,
        /// Left side.
        left: Box<SetExpr>,
        /// Right side.
        right: Box<SetExpr>,
    },
    /// A parenthesised query.
    Query(Box<Query>),
}

/// Set operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOperator {
    /// UNION.
    Union,
    /// INTERSECT.
    Intersect,
    /// EXCEPT.
    Except,
}

/// SELECT ... FROM ... WHERE ... GROUP BY ... HAVING ...
#[derive(Debug, Clone, PartialEq)]
pub struct Select {
    /// DISTINCT.
    pub distinct: bool,
    /// DISTINCT ON (expressions): the first row of each set of rows equal in them.
    pub distinct_on: Vec<Expr>,
    /// The output list.
    pub items: Vec<SelectItem>,
    /// FROM (several items are a cross join).
    pub from: Vec<TableRef>,
    /// WHERE.
    pub filter: Option<Expr>,
    /// GROUP BY.
    pub group_by: Vec<Expr>,
    /// HAVING.
    pub having: Option<Expr>,
}

/// An output item.
#[derive(Debug, Clone, PartialEq)]
pub enum SelectItem {
    /// `*`.
    Wildcard,
    /// `t.*`.
    QualifiedWildcard(String),
    /// An expression with an optional alias.
    Expr {
        /// The expression.
        expr: Expr,
        /// AS alias.
        alias: Option<String>,
    },
}

/// A FROM item.
#[derive(Debug, Clone, PartialEq)]
pub enum TableRef {
    /// A table (or CTE) by name.
    Table {
        /// Name.
        name: String,
        /// Alias.
        alias: Option<String>,
        /// Column aliases (`AS a(x, y)`), naming the first columns in order.
        columns: Vec<String>,
    },
    /// A subquery with an alias.
    Subquery {
        /// The query.
        query: Box<Query>,
        /// Alias.
        alias: String,
        /// Column aliases (`AS a(x, y)`), naming the first columns in order.
        columns: Vec<String>,
    },
    /// A function in FROM: `generate_series(1, 3) [WITH ORDINALITY] [AS a(x, n)]`.
    Function {
        /// Lower-case name (`pg_catalog.` dropped).
        name: String,
        /// Arguments (may refer to enclosing queries' columns).
        args: Vec<Expr>,
        /// Alias (default: the function's name).
        alias: Option<String>,
        /// Column aliases, in order (the ordinality column last).
        columns: Vec<String>,
        /// WITH ORDINALITY: a bigint column numbering the rows from 1.
        ordinality: bool,
    },
    /// A join.
    Join {
        /// Left side.
        left: Box<TableRef>,
        /// Right side.
        right: Box<TableRef>,
        /// Kind.
        kind: JoinKind,
        /// ON condition (None for CROSS, USING and NATURAL).
        on: Option<Expr>,
        /// USING (columns): the join's rows have one merged copy of each.
        using: Vec<String>,
        /// NATURAL: USING every column name both sides have.
        natural: bool,
    },
}

/// Join kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    /// INNER JOIN.
    Inner,
    /// LEFT [OUTER] JOIN.
    Left,
    /// RIGHT [OUTER] JOIN.
    Right,
    /// FULL [OUTER] JOIN.
    Full,
    /// CROSS JOIN.
    Cross,
}

/// ORDER BY item.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderBy {
    /// The expression (an integer literal refers to an output column).
    pub expr: Expr,
    /// DESC.
    pub desc: bool,
    /// NULLS FIRST (Some(true)) / NULLS LAST (Some(false)); None: PostgreSQL's default
    /// (nulls last ascending, first descending).
    pub nulls_first: Option<bool>,
}

/// A window frame: `{ROWS | RANGE} BETWEEN start AND end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowFrame {
    /// ROWS (else RANGE: peers of the current row count as the current row).
    pub rows: bool,
    /// The frame's start.
    pub start: FrameBound,
    /// The frame's end.
    pub end: FrameBound,
}

/// One end of a window frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameBound {
    /// UNBOUNDED PRECEDING.
    UnboundedPreceding,
    /// n PRECEDING (ROWS only).
    Preceding(u64),
    /// CURRENT ROW.
    CurrentRow,
    /// n FOLLOWING (ROWS only).
    Following(u64),
    /// UNBOUNDED FOLLOWING.
    UnboundedFollowing,
}

/// FOR UPDATE / FOR SHARE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locking {
    /// FOR UPDATE (true) or FOR SHARE (false).
    pub exclusive: bool,
    /// NOWAIT.
    pub nowait: bool,
    /// SKIP LOCKED.
    pub skip_locked: bool,
}

/// An expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A constant.
    Literal(Value),
    /// A column reference, optionally qualified.
    Column {
        /// Table or alias.
        table: Option<String>,
        /// Column name.
        name: String,
    },
    /// `$n` (1-based).
    Param(usize),
    /// DEFAULT (in INSERT VALUES and UPDATE SET).
    Default,
    /// A unary operator.
    Unary {
        /// The operator.
        op: UnaryOp,
        /// The operand.
        expr: Box<Expr>,
    },
    /// A binary operator.
    Binary {
        /// The operator.
        op: BinaryOp,
        /// Left operand.
        left: Box<Expr>,
        /// Right operand.
        right: Box<Expr>,
    },
    /// A function call (aggregates too).
    Function {
        /// Lower-case name.
        name: String,
        /// Arguments.
        args: Vec<Expr>,
        /// DISTINCT (aggregates).
        distinct: bool,
        /// `count(*)`.
        star: bool,
        /// `agg(x ORDER BY y)`: the order an aggregate takes its values in.
        order_by: Vec<OrderBy>,
    },
    /// A window function call: `func(args) OVER (PARTITION BY ... ORDER BY ... frame)`.
    Window {
        /// The call (`Expr::Function`): a window function or an aggregate.
        func: Box<Expr>,
        /// PARTITION BY.
        partition_by: Vec<Expr>,
        /// ORDER BY within the partition.
        order_by: Vec<OrderBy>,
        /// ROWS / RANGE frame (None: PostgreSQL's default).
        frame: Option<WindowFrame>,
    },
    /// CAST(expr AS type) and expr::type.
    Cast {
        /// The operand.
        expr: Box<Expr>,
        /// The target type.
        to: DataType,
    },
    /// IS [NOT] NULL.
    IsNull {
        /// The operand.
        expr: Box<Expr>,
        /// IS NOT NULL.
        negated: bool,
    },
    /// IS [NOT] TRUE / FALSE (Some(true)/Some(false)) or UNKNOWN (None).
    IsBool {
        /// The operand.
        expr: Box<Expr>,
        /// TRUE, FALSE or UNKNOWN.
        value: Option<bool>,
        /// IS NOT.
        negated: bool,
    },
    /// [NOT] IN (list).
    InList {
        /// The operand.
        expr: Box<Expr>,
        /// The list.
        list: Vec<Expr>,
        /// NOT IN.
        negated: bool,
    },
    /// [NOT] BETWEEN low AND high.
    Between {
        /// The operand.
        expr: Box<Expr>,
        /// Low bound.
        low: Box<Expr>,
        /// High bound.
        high: Box<Expr>,
        /// NOT BETWEEN.
        negated: bool,
    },
    /// [NOT] LIKE / ILIKE pattern.
    Like {
        /// The operand.
        expr: Box<Expr>,
        /// The pattern.
        pattern: Box<Expr>,
        /// NOT LIKE.
        negated: bool,
        /// ILIKE.
        case_insensitive: bool,
    },
    /// CASE [operand] WHEN ... THEN ... [ELSE ...] END.
    Case {
        /// CASE operand (simple form).
        operand: Option<Box<Expr>>,
        /// WHEN condition/value THEN result.
        whens: Vec<(Expr, Expr)>,
        /// ELSE.
        else_result: Option<Box<Expr>>,
    },
    /// A scalar subquery.
    Subquery(Box<Query>),
    /// [NOT] EXISTS (subquery).
    Exists {
        /// The subquery.
        query: Box<Query>,
        /// NOT EXISTS.
        negated: bool,
    },
    /// expr [NOT] IN (subquery).
    InSubquery {
        /// The operand.
        expr: Box<Expr>,
        /// The subquery.
        query: Box<Query>,
        /// NOT IN.
        negated: bool,
    },
    /// `expr op ANY (array)` / `expr op ALL (array)`; the array is in PostgreSQL's text
    /// form (`{a,b}`), as Bulwark represents arrays.
    AnyAll {
        /// The left operand.
        expr: Box<Expr>,
        /// The comparison.
        op: BinaryOp,
        /// The array.
        array: Box<Expr>,
        /// ALL (true) or ANY / SOME (false).
        all: bool,
    },
    /// `ARRAY(subquery)`: the subquery's one column as an array (in text form).
    ArraySubquery(Box<Query>),
    /// `array[index]` (1-based; 0-based for the `int2vector` form `1 2 3`).
    Subscript {
        /// The array.
        expr: Box<Expr>,
        /// The subscript.
        index: Box<Expr>,
    },
}

/// Unary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    /// NOT.
    Not,
    /// `-`.
    Neg,
    /// `+`.
    Plus,
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `=`
    Eq,
    /// `<>` / `!=`
    NotEq,
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `>`
    Gt,
    /// `>=`
    GtEq,
    /// AND
    And,
    /// OR
    Or,
    /// `||`
    Concat,
    /// `~`: matches the POSIX regular expression.
    Match,
    /// `!~`
    NotMatch,
    /// `~*`: matches, ignoring case.
    IMatch,
    /// `!~*`
    NotIMatch,
    /// `->`: a JSON object's member or array's element.
    JsonGet,
    /// `->>`: the same, as text.
    JsonGetText,
    /// `#>`: the part of a JSON document at a path (a text array).
    JsonPath,
    /// `#>>`: the same, as text.
    JsonPathText,
    /// `@>`: contains (jsonb).
    Contains,
    /// `<@`: is contained by (jsonb).
    ContainedBy,
    /// `?`: has the key (jsonb).
    HasKey,
    /// `?|`: has any of the keys (a text array).
    HasAnyKey,
    /// `?&`: has all of the keys.
    HasAllKeys,
}

impl BinaryOp {
    /// `=`, `<>`, `<`, `<=`, `>`, `>=`.
    pub fn is_comparison(self) -> bool {
        matches!(self, BinaryOp::Eq | BinaryOp::NotEq | BinaryOp::Lt | BinaryOp::LtEq | BinaryOp::Gt | BinaryOp::GtEq)
    }
}

/// The kind of object COMMENT ON names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommentKind {
    /// TABLE (or COLUMN of a table or view).
    Table,
    /// VIEW.
    View,
    /// SEQUENCE.
    Sequence,
    /// INDEX.
    Index,
    /// COLUMN.
    Column,
}
