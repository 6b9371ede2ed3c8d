//! Databases and sessions: where statements run, in explicit transaction blocks or in an
//! implicit transaction each, with PostgreSQL's rules for errors inside a block.
//!
//! ```text
//!   execute(sql) ─► parse ─► for each statement:
//!        BEGIN/COMMIT/ROLLBACK/SET/SHOW ─► session state
//!        anything else ─► the block's transaction (or a new one, committed at the end)
//!                          error inside a block ─► the block is aborted: 25P02 until ROLLBACK
//! ```

mod alter;
mod constraints;
mod copy;
mod enums;
mod explain;
mod objects;
mod prepared;
mod roles;
mod sequences;
mod views;
mod write_from;

pub use copy::CopyResponse;

use crate::ast::{self, Discard, Expr, InsertSource, SelectItem, Statement, TableConstraint};
use crate::bind::{Scope, ScopeColumn};
use crate::catalog::{self, keys, Column, ForeignKey, Index, Table};
use crate::dml::{self, Inserted};
use crate::error::{codes, Error, Result};
use crate::eval::{self, FnContext};
use crate::exec::{Exec, Row, Sequences};
use crate::plan::Planner;
use crate::types::{DataType, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex};
use storage::keycode;
use storage::vfs::Vfs;
use txn::{Engine, EngineOptions, IsolationLevel, LockMode, SavepointId, Txn, TxnOptions, WaitPolicy};

/// Sequence values handed out per trip to the store. Each trip is a durable commit of its
/// own taken under the sequence cache's lock, so a small block serialises concurrent inserts
/// on the refill's fsync (16 pgbench clients inserting into a BIGSERIAL table: 10.5k tps with
/// 32, 13.8k with 1024). Values of an unused block are skipped after a restart, as after a
/// crash in PostgreSQL: sequences promise order and uniqueness, not gaplessness.
pub const SEQUENCE_CACHE: i64 = 1024;
/// Statement texts whose parse a session keeps (all are dropped when it fills).
pub const PARSE_CACHE_ENTRIES_MAX: usize = 256;
/// Longer statement texts are not kept.
pub const PARSE_CACHE_TEXT_BYTES_MAX: usize = 16 << 10;
/// Hidden row numbers handed out per trip to the store: they need only be unique, and a bulk
/// load into a table without a primary key would otherwise commit once per 32 rows.
pub const ROWID_CACHE: i64 = 4096;

/// A column of a result.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultColumn {
    /// Its name.
    pub name: String,
    /// Its type.
    pub data_type: DataType,
}

/// What a statement returned.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    /// Columns, for statements that return rows (None for commands).
    pub columns: Option<Vec<ResultColumn>>,
    /// The rows.
    pub rows: Vec<Row>,
    /// The command tag ("SELECT 3", "INSERT 0 1", "CREATE TABLE").
    pub tag: String,
    /// Notices raised (e.g. IF NOT EXISTS skipped).
    pub notices: Vec<String>,
    /// For COPY: the data out, or the request for data in.
    pub copy: Option<CopyResponse>,
}

impl QueryResult {
    fn command(tag: impl Into<String>) -> QueryResult {
        QueryResult { columns: None, rows: vec![], tag: tag.into(), notices: vec![], copy: None }
    }
}

struct DbInner {
    engine: Engine,
    /// The Raft node commits go through (kept alive with the database).
    node: cluster::node::Node,
    /// Sequence name -> the block of its values this node holds.
    seq_cache: Mutex<HashMap<String, SeqBlock>>,
    /// Microseconds since 2000-01-01 at open, and the instant of open (for now()).
    clock: (i64, std::time::Instant),
    /// The node's advisory locks (pg_advisory_lock).
    advisory: crate::advisory::AdvisoryLocks,
    /// The id the next session gets (it holds advisory locks under it).
    next_session_id: std::sync::atomic::AtomicU64,
    /// Session settings every new session starts with (and RESET returns to), over the
    /// built-in defaults: the server's configuration.
    session_defaults: Mutex<BTreeMap<String, String>>,
}

/// A database: the engine plus what sessions share.
#[derive(Clone)]
pub struct Database {
    inner: Arc<DbInner>,
}

impl Database {
    /// Opens (creating if needed) the database in `dir`: a single node, a Raft group of one
    /// voter, whose commits go through Raft into the write-ahead log.
    pub fn open(vfs: Arc<dyn Vfs>, dir: &Path, opts: EngineOptions) -> Result<Database> {
        let node = cluster::node::Node::open_single(
            vfs,
            dir,
            cluster::node::NodeOptions { engine: opts, ..Default::default() },
        )?;
        Ok(Database::with_node(node))
    }

    /// Opens the database in `dir` as the node `opts` describes: a single node, or a member
    /// of a cluster.
    pub fn open_node(vfs: Arc<dyn Vfs>, dir: &Path, opts: cluster::node::NodeOptions) -> Result<Database> {
        Ok(Database::with_node(cluster::node::Node::open(vfs, dir, opts)?))
    }

    /// The Raft node under the database.
    pub fn node(&self) -> &cluster::node::Node {
        &self.inner.node
    }

    fn with_node(node: cluster::node::Node) -> Database {
        let engine = node.engine().clone();
        engine.watch_prefix(catalog::WATCHED_PREFIX);
        let unix_micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0);
        const PG_EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;
        Database {
            inner: Arc::new(DbInner {
                engine,
                node,
                seq_cache: Mutex::new(HashMap::new()),
                advisory: crate::advisory::AdvisoryLocks::default(),
                next_session_id: std::sync::atomic::AtomicU64::new(1),
                clock: (unix_micros - PG_EPOCH_UNIX_MICROS, std::time::Instant::now()),
                session_defaults: Mutex::new(BTreeMap::new()),
            }),
        }
    }

    /// Makes `value` the default of session setting `name` for sessions opened from now on,
    /// checking it as SET would.
    pub fn set_session_default(&self, name: &str, value: &str) -> Result<()> {
        let name = name.to_ascii_lowercase();
        let mut probe = self.session();
        probe.set(&name, Some(value.to_string()))?;
        let checked = probe.settings.get(&name).cloned().unwrap_or_else(|| value.to_string());
        self.inner.session_defaults.lock().unwrap_or_else(|e| e.into_inner()).insert(name, checked);
        Ok(())
    }

    /// The role `name`, as last committed (None: no such role).
    pub fn role(&self, name: &str) -> Result<Option<crate::roles::Role>> {
        let mut txn = self.inner.engine.begin(TxnOptions { read_only: true, ..TxnOptions::default() })?;
        let role = crate::roles::get(&mut txn, name);
        txn.rollback();
        role
    }

    /// A new session.
    pub fn session(&self) -> Session {
        let mut settings = default_settings();
        for (k, v) in self.inner.session_defaults.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            settings.insert(k.clone(), v.clone());
        }
        let settings_at_start = settings.clone();
        Session {
            derived: Derived::of(&settings),
            settings_changed: true,
            db: self.inner.clone(),
            block: None,
            settings,
            currvals: Mutex::new(HashMap::new()),
            deadline: std::cell::Cell::new(None),
            cancel: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            copy_in: None,
            terminated: false,
            id: self.inner.next_session_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            xact_advisory: Mutex::new(Vec::new()),
            user: crate::roles::BOOTSTRAP_SUPERUSER.to_string(),
            parsed: HashMap::new(),
            plan_slot: None,
            reset: settings_at_start,
            deallocated: Vec::new(),
            statement_names: Arc::default(),
            sql_prepared: BTreeMap::new(),
            deferred: std::cell::RefCell::default(),
            backend_pid: 0,
        }
    }

    /// The transaction engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }
}

fn default_settings() -> BTreeMap<String, String> {
    [
        ("application_name", ""),
        ("client_encoding", "UTF8"),
        ("datestyle", "ISO, MDY"),
        ("deadlock_timeout", "1s"),
        ("default_transaction_isolation", "read committed"),
        ("default_transaction_read_only", "off"),
        ("extra_float_digits", "1"),
        ("integer_datetimes", "on"),
        ("intervalstyle", "postgres"),
        ("lock_timeout", "0"),
        ("max_connections", "100"),
        ("search_path", "\"$user\", public"),
        ("server_encoding", "UTF8"),
        ("server_version", "15.0"),
        ("server_version_num", "150000"),
        ("standard_conforming_strings", "on"),
        ("statement_timeout", "0"),
        ("timezone", "UTC"),
        ("idle_in_transaction_session_timeout", "0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .chain([
        (
            crate::exec::STATEMENT_MEM_SETTING.to_string(),
            crate::exec::format_bytes(crate::exec::STATEMENT_MEM_DEFAULT_BYTES),
        ),
        (READ_CONSISTENCY_SETTING.to_string(), "linearizable".to_string()),
    ])
    .collect()
}

/// Whether `name` is one of PostgreSQL's settings only a server's configuration sets.
fn is_server_setting(name: &str) -> bool {
    crate::system::pg_settings::SERVER.iter().any(|(n, _)| *n == name)
}

/// Settings a session may set that PostgreSQL leaves out of pg_settings.
const HIDDEN_SESSION_SETTINGS: &[&str] = &["session_authorization"];

/// Whether SET may change setting `name` (lower case), as PostgreSQL answers: any setting
/// a session may set, and any name with a dot (a placeholder for an extension's, or
/// Bulwark's own `bulwark.*`); 55P02 for a server's setting; 42704 for a name PostgreSQL
/// does not know.
fn settable(name: &str) -> Result<()> {
    if name.contains('.')
        || HIDDEN_SESSION_SETTINGS.contains(&name)
        || crate::system::pg_settings::SESSION.iter().any(|(n, _)| *n == name)
    {
        return Ok(());
    }
    if name == "role" {
        // As SET ROLE: the current role does not change within a session here.
        return Err(Error::unsupported("SET ROLE"));
    }
    let message = match crate::system::pg_settings::SERVER.iter().find(|(n, _)| *n == name) {
        None => {
            return Err(Error::new(codes::UNDEFINED_OBJECT, format!("unrecognized configuration parameter \"{name}\"")))
        }
        Some((_, "postmaster")) => format!("parameter \"{name}\" cannot be changed without restarting the server"),
        Some((_, "internal")) => format!("parameter \"{name}\" cannot be changed"),
        Some((_, "backend" | "superuser-backend")) => {
            format!("parameter \"{name}\" cannot be set after connection start")
        }
        Some(_) => format!("parameter \"{name}\" cannot be changed now"),
    };
    Err(Error::new(codes::CANT_CHANGE_RUNTIME_PARAM, message))
}

/// Whether statements on a node of a cluster must see every commit acknowledged before
/// they began (`linearizable`, the default: only the leader serves them) or may read what
/// this node has applied so far (`stale`).
pub const READ_CONSISTENCY_SETTING: &str = "bulwark.read_consistency";
/// `SHOW bulwark.replication_lag`: how far this node's applied state is behind the commits
/// it knows of, in entries and milliseconds (read-only; see `Node::replication_lag`).
pub const REPLICATION_LAG_SETTING: &str = "bulwark.replication_lag";

/// What SET CONSTRAINTS chose, as `dml::Deferred` keeps it: ALL's mode and each named
/// constraint's.
type ConstraintModes = (Option<bool>, BTreeMap<String, bool>);

struct Block {
    /// Created at the block's first statement, so SET TRANSACTION can still change it.
    txn: Option<Txn>,
    opts: TxnOptions,
    failed: bool,
    /// Open savepoints, oldest first; a name may repeat (the newest one wins). Each keeps
    /// the session's settings, and the constraint modes SET CONSTRAINTS chose, as they were
    /// when it was made, for ROLLBACK TO.
    savepoints: Vec<(String, SavepointId, BTreeMap<String, String>, ConstraintModes)>,
    /// What SET and SET LOCAL did in the block (None: nothing yet).
    settings: Option<SettingsFrame>,
}

/// Settings changed inside a transaction block, undone as PostgreSQL undoes them: all of
/// them at ROLLBACK, those set with SET LOCAL at COMMIT too.
struct SettingsFrame {
    /// Every setting as it was when the block began: ROLLBACK restores these.
    prior: BTreeMap<String, String>,
    /// Settings SET (not LOCAL) in the block.
    set: BTreeSet<String>,
    /// Settings SET LOCAL in the block, with the value COMMIT leaves: the one a SET earlier
    /// in the block gave, or (None) the prior one.
    local: BTreeMap<String, Option<String>>,
}

/// A session: settings and at most one open transaction block.
pub struct Session {
    db: Arc<DbInner>,
    block: Option<Block>,
    settings: BTreeMap<String, String>,
    currvals: Mutex<HashMap<String, i64>>,
    /// When the running statement passes statement_timeout.
    deadline: std::cell::Cell<Option<std::time::Instant>>,
    /// Set from another thread to cancel the running statement.
    cancel: Arc<std::sync::atomic::AtomicBool>,
    /// The COPY FROM STDIN waiting for data.
    copy_in: Option<copy::CopyIn>,
    /// `terminate` was called: every later statement fails (its connection is closing).
    terminated: bool,
    /// The role the session runs as.
    user: String,
    /// What statements need from `settings`, kept in step by `set`.
    derived: Derived,
    /// A setting changed since [`Session::take_settings_changed`] last said so.
    settings_changed: bool,
    /// Parsed statements by text, with their plans (see `parse_cached`).
    parsed: HashMap<String, Arc<Parsed>>,
    /// The top-level statement running now: its parse and position, where `query` keeps
    /// and finds its plan.
    plan_slot: Option<(Arc<Parsed>, usize)>,
    /// The settings as the session began (startup parameters included): what RESET and
    /// DISCARD ALL return to.
    reset: BTreeMap<String, String>,
    /// DEALLOCATE statements run and not yet handed to the server (None: ALL), which keeps
    /// the protocol's prepared statements.
    deallocated: Vec<Option<String>>,
    /// The names of the protocol's prepared statements, kept by the server (see
    /// [`Session::share_statement_names`]); DEALLOCATE of another name fails with 26000.
    statement_names: Arc<Mutex<BTreeSet<String>>>,
    /// The statements PREPARE made, by name.
    sql_prepared: BTreeMap<String, prepared::SqlPrepared>,
    /// Deferred foreign key checks and SET CONSTRAINTS modes of the running transaction.
    deferred: std::cell::RefCell<dml::Deferred>,
    /// The session's number on this node (advisory locks are held under it).
    id: u64,
    /// The process id the server told the client (pg_backend_pid).
    backend_pid: i32,
    /// Advisory locks the running transaction took (pg_advisory_xact_lock), released when
    /// it ends.
    xact_advisory: Mutex<Vec<i64>>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.db.advisory.unlock_all(self.id);
    }
}

/// What every statement needs from the settings, parsed once when they change (`set`)
/// instead of at each statement.
#[derive(Clone, Copy)]
struct Derived {
    /// default_transaction_isolation and default_transaction_read_only.
    options: TxnOptions,
    /// lock_timeout and deadlock_timeout.
    locks: txn::LockSettings,
    /// statement_timeout (0: none).
    timeout_ms: u64,
    /// The statement memory budget (`STATEMENT_MEM_SETTING`).
    mem_max_bytes: u64,
}

impl Derived {
    fn of(settings: &BTreeMap<String, String>) -> Derived {
        let isolation = match settings.get("default_transaction_isolation").map(String::as_str) {
            Some("repeatable read") => IsolationLevel::RepeatableRead,
            Some("serializable") => IsolationLevel::Serializable,
            _ => IsolationLevel::ReadCommitted,
        };
        let read_only = settings.get("default_transaction_read_only").is_some_and(|v| v == "on");
        let ms = |name: &str| settings.get(name).and_then(|v| parse_duration_ms(v)).unwrap_or(0);
        let lock = ms("lock_timeout");
        let deadlock = ms("deadlock_timeout").max(1);
        Derived {
            options: TxnOptions { isolation, read_only },
            locks: txn::LockSettings {
                lock_timeout: (lock > 0).then(|| std::time::Duration::from_millis(lock)),
                deadlock_timeout: std::time::Duration::from_millis(deadlock),
            },
            timeout_ms: ms("statement_timeout"),
            mem_max_bytes: settings
                .get(crate::exec::STATEMENT_MEM_SETTING)
                .and_then(|v| crate::exec::parse_bytes(v))
                .unwrap_or(crate::exec::STATEMENT_MEM_DEFAULT_BYTES),
        }
    }
}

/// A statement text's parse, and the plans its queries last had.
struct Parsed {
    statements: Vec<Statement>,
    /// Per statement, its plan and the catalog version it was made at.
    plans: Mutex<Vec<Option<Arc<CachedPlan>>>>,
    /// Per UPDATE or DELETE statement, its plan (see [`WritePlan`]).
    write_plans: Mutex<Vec<Option<Arc<WritePlan>>>>,
}

impl Parsed {
    fn new(statements: Vec<Statement>) -> Parsed {
        let n = statements.len();
        Parsed { statements, plans: Mutex::new(vec![None; n]), write_plans: Mutex::new(vec![None; n]) }
    }

    fn plans(&self) -> std::sync::MutexGuard<'_, Vec<Option<Arc<CachedPlan>>>> {
        self.plans.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn write_plans(&self) -> std::sync::MutexGuard<'_, Vec<Option<Arc<WritePlan>>>> {
        self.write_plans.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What an UPDATE or DELETE binds and plans before it touches a row: the table, the bound
/// filter and the lookup chosen from it, the bound assignments and RETURNING
/// list. Kept per statement like a query's plan, it is valid for transactions that see
/// catalog `version` and whose lock on the table found the definition `table_bytes` (READ
/// COMMITTED locks the newest definition, which may be newer than its snapshot's).
struct WritePlan {
    version: u64,
    table_bytes: Vec<u8>,
    table: Table,
    pred: Option<crate::bind::BExpr>,
    lookup: Option<crate::plan::Lookup>,
    /// UPDATE's: (column position, value).
    assignments: Vec<(usize, crate::bind::BExpr)>,
    returning: Option<Vec<crate::bind::BExpr>>,
    returning_columns: Option<Vec<ResultColumn>>,
}

/// A query's plan, valid for transactions that see catalog `version` (`Txn::watched_version`):
/// planning reads nothing but table definitions and statistics, both in the catalog, and
/// leaves parameters to execution, so the same text at the same version plans the same.
struct CachedPlan {
    version: u64,
    plan: crate::plan::Plan,
    scope: Scope,
}

/// The transaction status, as the wire protocol reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnStatus {
    /// Not in a block.
    Idle,
    /// In a block.
    InBlock,
    /// In a failed block.
    Failed,
}

impl Session {
    /// Records the process id the server gave this session's connection.
    pub fn set_backend_pid(&mut self, pid: i32) {
        self.backend_pid = pid;
    }

    /// The process id the server gave this session's connection (0 if none).
    pub fn backend_pid(&self) -> i32 {
        self.backend_pid
    }

    /// Shares the set of prepared statement names the server keeps for this session's
    /// connection, which DEALLOCATE checks and updates.
    pub fn share_statement_names(&mut self, names: Arc<Mutex<BTreeSet<String>>>) {
        self.statement_names = names;
    }

    /// Runs every statement in `sql`, stopping at the first error (whose result is last).
    pub fn execute(&mut self, sql: &str) -> Vec<Result<QueryResult>> {
        self.execute_with(sql, &[])
    }

    /// Like [`Session::execute`], with values for `$1..$n`.
    pub fn execute_with(&mut self, sql: &str, params: &[Value]) -> Vec<Result<QueryResult>> {
        if self.terminated {
            return vec![Err(Error::new("57P01", "terminating connection: the session was ended"))];
        }
        let statements = match self.parse_cached(sql) {
            Ok(s) => s,
            Err(e) => {
                self.fail_block();
                return vec![Err(e)];
            }
        };
        if let Some(copy) = self.copy_in.take() {
            self.abort_copy(copy);
            return vec![Err(Error::new(
                "08P01",
                "a statement arrived while COPY FROM STDIN waited for data; the COPY was abandoned",
            ))];
        }
        let copy_in_at = statements.statements.iter().position(|s| matches!(s, Statement::Copy(c) if c.from));
        if copy_in_at.is_some_and(|at| at + 1 != statements.statements.len()) {
            self.fail_block();
            return vec![Err(Error::new(
                codes::FEATURE_NOT_SUPPORTED,
                "COPY FROM STDIN must be the last statement of a query string",
            ))];
        }
        let mut out = Vec::new();
        for (i, stmt) in statements.statements.iter().enumerate() {
            self.plan_slot = Some((statements.clone(), i));
            let r = self.run(stmt, params).map_err(|e| crate::error::locate_name(e, sql));
            self.plan_slot = None;
            let failed = r.is_err();
            out.push(r);
            if failed {
                break;
            }
        }
        out
    }

    /// The statements of `sql`, parsed once per session and text: drivers send the same
    /// statement text again and again (prepared statements are executed by their text).
    fn parse_cached(&mut self, sql: &str) -> Result<Arc<Parsed>> {
        if let Some(s) = self.parsed.get(sql) {
            return Ok(s.clone());
        }
        let parsed = crate::parser::parse(sql)?;
        let statements = Arc::new(Parsed::new(parsed));
        if sql.len() <= PARSE_CACHE_TEXT_BYTES_MAX {
            if self.parsed.len() >= PARSE_CACHE_ENTRIES_MAX {
                self.parsed.clear();
            }
            self.parsed.insert(sql.to_string(), statements.clone());
        }
        Ok(statements)
    }

    /// The result columns a statement would return, without running it (for the wire
    /// protocol's Describe): None for statements that return no rows. Expressions whose
    /// type is only known from their values are reported as text.
    pub fn describe(&mut self, sql: &str) -> Result<Option<Vec<ResultColumn>>> {
        let mut statements = crate::parser::parse(sql)?;
        let Some(stmt) = statements.pop() else { return Ok(None) };
        match stmt {
            Statement::Query(q) => {
                let mut txn =
                    self.db.engine.begin(TxnOptions { isolation: IsolationLevel::ReadCommitted, read_only: true })?;
                let (_, scope) = Planner::new(&mut txn).plan_query(&q, vec![])?;
                Ok(Some(result_columns(&scope, &[])))
            }
            Statement::Show(name) => Ok(Some(vec![ResultColumn { name, data_type: DataType::Text }])),
            Statement::Update { table, alias, from: items, returning, .. }
            | Statement::Delete { table, alias, using: items, returning, .. }
                if !returning.is_empty() =>
            {
                let mut txn =
                    self.db.engine.begin(TxnOptions { isolation: IsolationLevel::ReadCommitted, read_only: true })?;
                let def = catalog::table(&mut txn, &table)?;
                let scope = table_scope(&def, alias.as_deref().unwrap_or(&table))
                    .join(&write_from::items_scope(&mut txn, &items)?);
                Ok(returning_columns(&returning, &scope))
            }
            Statement::Insert { table, returning, .. } if !returning.is_empty() => {
                let mut txn =
                    self.db.engine.begin(TxnOptions { isolation: IsolationLevel::ReadCommitted, read_only: true })?;
                let def = catalog::table(&mut txn, &table)?;
                Ok(returning_columns(&returning, &table_scope(&def, &table)))
            }
            Statement::Explain { .. } => {
                Ok(Some(vec![ResultColumn { name: "QUERY PLAN".into(), data_type: DataType::Text }]))
            }
            Statement::Execute { name, .. } => match self.prepared_sql(&name) {
                Some(sql) => self.describe(&sql),
                None => Ok(None),
            },
            _ => Ok(None),
        }
    }

    /// The types of `$1..$count` as the statement's context gives them (for the wire
    /// protocol's ParameterDescription): a parameter compared with, assigned to, inserted
    /// into or computed with a column takes the column's type; LIMIT and OFFSET take bigint;
    /// a cast takes its target. None where nothing says.
    pub fn describe_params(&mut self, sql: &str, count: usize) -> Result<Vec<Option<DataType>>> {
        let mut out = vec![None; count];
        let mut statements = crate::parser::parse(sql)?;
        let Some(stmt) = statements.pop() else { return Ok(out) };
        let mut txn = self.db.engine.begin(TxnOptions { isolation: IsolationLevel::ReadCommitted, read_only: true })?;
        let mut tables: Vec<Table> = Vec::new();
        let add_table = |txn: &mut Txn, name: &str, tables: &mut Vec<Table>| {
            if let Ok(Some(t)) = catalog::get_table(txn, name) {
                tables.push(t);
            }
        };
        let mut exprs: Vec<&Expr> = Vec::new();
        let set = |out: &mut Vec<Option<DataType>>, n: usize, t: Option<DataType>| {
            if let (Some(slot), Some(t)) = (out.get_mut(n.wrapping_sub(1)), t) {
                slot.get_or_insert(t);
            }
        };
        match &stmt {
            Statement::Query(q) => {
                collect_query(q, &mut |name| add_table(&mut txn, name, &mut tables), &mut exprs);
                for e in [&q.limit, &q.offset].into_iter().flatten() {
                    if let Expr::Param(n) = e {
                        set(&mut out, *n, Some(DataType::Int8));
                    }
                }
            }
            Statement::Insert { table, columns, source, .. } => {
                add_table(&mut txn, table, &mut tables);
                if let (Some(t), InsertSource::Values(rows)) = (tables.first().cloned(), source) {
                    let targets: Vec<usize> = match columns {
                        Some(cols) => cols.iter().filter_map(|c| t.column_index(c).ok()).collect(),
                        None => (0..t.columns.len()).collect(),
                    };
                    for row in rows {
                        for (e, &c) in row.iter().zip(&targets) {
                            if let Expr::Param(n) = e {
                                set(&mut out, *n, Some(t.columns[c].data_type.clone()));
                            }
                        }
                    }
                }
                if let InsertSource::Query(q) = source {
                    collect_query(q, &mut |name| add_table(&mut txn, name, &mut tables), &mut exprs);
                }
            }
            Statement::Update { table, assignments, from, filter, .. } => {
                add_table(&mut txn, table, &mut tables);
                for item in from {
                    collect_from(item, &mut |name| add_table(&mut txn, name, &mut tables), &mut exprs);
                }
                if let Some(t) = tables.first().cloned() {
                    for (col, e) in assignments {
                        if let (Expr::Param(n), Ok(c)) = (e, t.column_index(col)) {
                            set(&mut out, *n, Some(t.columns[c].data_type.clone()));
                        }
                        exprs.push(e);
                    }
                }
                exprs.extend(filter.iter());
            }
            Statement::Delete { table, using, filter, .. } => {
                add_table(&mut txn, table, &mut tables);
                for item in using {
                    collect_from(item, &mut |name| add_table(&mut txn, name, &mut tables), &mut exprs);
                }
                exprs.extend(filter.iter());
            }
            _ => {}
        }
        let column_type =
            |name: &str| tables.iter().find_map(|t| t.column_index(name).ok().map(|c| t.columns[c].data_type.clone()));
        for e in exprs {
            crate::bind::visit(e, &mut |x| match x {
                Expr::Binary { op, left, right } => {
                    // An untyped parameter takes the type of the other operand, as
                    // PostgreSQL resolves `unknown op known` (both sides of AND and OR are
                    // boolean).
                    for (a, b) in [(left, right), (right, left)] {
                        let Expr::Param(n) = a.as_ref() else { continue };
                        let key_side = std::ptr::eq(a, right);
                        let other = match (op, b.as_ref()) {
                            (ast::BinaryOp::And | ast::BinaryOp::Or, _) => Some(DataType::Bool),
                            // A JSON key or path, or the keys tested for.
                            (ast::BinaryOp::JsonGet | ast::BinaryOp::JsonGetText | ast::BinaryOp::HasKey, _)
                                if key_side =>
                            {
                                Some(DataType::Text)
                            }
                            (
                                ast::BinaryOp::JsonPath
                                | ast::BinaryOp::JsonPathText
                                | ast::BinaryOp::HasAnyKey
                                | ast::BinaryOp::HasAllKeys,
                                _,
                            ) if key_side => Some(DataType::Array(25)),
                            (ast::BinaryOp::Contains | ast::BinaryOp::ContainedBy, _) => Some(DataType::Jsonb),
                            (_, Expr::Column { name, .. }) => column_type(name),
                            (_, Expr::Literal(v)) => eval::type_of(v),
                            (_, Expr::Cast { to, .. }) => Some(to.clone()),
                            _ => None,
                        };
                        set(&mut out, *n, other);
                    }
                }
                Expr::Cast { expr, to } => {
                    if let Expr::Param(n) = expr.as_ref() {
                        set(&mut out, *n, Some(to.clone()));
                    }
                }
                Expr::InList { expr, list, .. } => {
                    if let Expr::Column { name, .. } = expr.as_ref() {
                        for item in list {
                            if let Expr::Param(n) = item {
                                set(&mut out, *n, column_type(name));
                            }
                        }
                    }
                }
                Expr::Between { expr, low, high, .. } => {
                    if let Expr::Column { name, .. } = expr.as_ref() {
                        for b in [low, high] {
                            if let Expr::Param(n) = b.as_ref() {
                                set(&mut out, *n, column_type(name));
                            }
                        }
                    }
                }
                _ => {}
            });
        }
        Ok(out)
    }

    /// A handle that cancels the statement running in this session (from another thread):
    /// it fails with 57014 at its next check, within a few hundred rows of work. A statement
    /// waiting on a row lock notices when the wait ends.
    pub fn cancel_handle(&self) -> Arc<std::sync::atomic::AtomicBool> {
        self.cancel.clone()
    }

    /// The transaction status.
    pub fn status(&self) -> TxnStatus {
        match &self.block {
            None => TxnStatus::Idle,
            Some(b) if b.failed => TxnStatus::Failed,
            Some(_) => TxnStatus::InBlock,
        }
    }

    /// A setting's value.
    pub fn setting(&self, name: &str) -> Option<&str> {
        self.settings.get(name).map(String::as_str)
    }

    /// Runs the session as role `user` (the server calls this once the client has
    /// authenticated); also sets session_authorization.
    pub fn set_user(&mut self, user: &str) {
        self.user = user.to_string();
        self.settings.insert("session_authorization".into(), user.to_string());
        self.settings_changed = true;
    }

    /// Takes the settings as they are now as the session's starting point, which RESET and
    /// DISCARD ALL return to (a server calls this once the startup parameters are set).
    pub fn mark_session_start(&mut self) {
        self.reset = self.settings.clone();
    }

    /// The prepared statements DEALLOCATE (or DISCARD ALL) forgot since the last call, for
    /// the server that keeps them (None: all of them).
    pub fn take_deallocated(&mut self) -> Vec<Option<String>> {
        std::mem::take(&mut self.deallocated)
    }

    /// Whether any setting changed since the last call (true on the first), so a server
    /// re-reads the settings it reports to its client only when one may have changed.
    pub fn take_settings_changed(&mut self) -> bool {
        std::mem::take(&mut self.settings_changed)
    }

    /// The role the session runs as.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// idle_in_transaction_session_timeout, if set (not 0).
    pub fn idle_in_transaction_timeout(&self) -> Option<std::time::Duration> {
        let ms = self.settings.get("idle_in_transaction_session_timeout").and_then(|v| parse_duration_ms(v))?;
        (ms > 0).then(|| std::time::Duration::from_millis(ms))
    }

    /// Ends the session's transaction block and any COPY, rolling back (the connection is
    /// being closed, e.g. after idle_in_transaction_session_timeout).
    pub fn terminate(&mut self) {
        self.copy_in = None;
        self.block = None;
        self.terminated = true;
    }

    /// Every setting and its value, sorted by name.
    pub fn settings(&self) -> impl Iterator<Item = (&str, &str)> {
        self.settings.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// An error inside a block aborts it. Without a savepoint the transaction is rolled
    /// back at once (locks released); with one it is kept for ROLLBACK TO SAVEPOINT.
    fn fail_block(&mut self) {
        if let Some(b) = &mut self.block {
            b.failed = true;
            if b.savepoints.is_empty() {
                b.txn = None;
            }
        }
    }

    /// The definitions of `tables`; fails with 42P01 unless every one exists.
    fn check_tables(&self, tables: &[String]) -> Result<Vec<Table>> {
        let mut txn = self.db.engine.begin(TxnOptions { read_only: true, ..self.default_options() })?;
        let found = tables.iter().map(|t| catalog::lock_table(&mut txn, t, false)).collect::<Result<Vec<_>>>();
        txn.rollback();
        found
    }

    /// VACUUM: of the named tables' rows and index entries, or of the whole store.
    fn vacuum(&self, tables: &[String]) -> Result<()> {
        if tables.is_empty() {
            self.db.engine.vacuum()?;
            return Ok(());
        }
        let mut ranges = Vec::new();
        for table in self.check_tables(tables)? {
            for prefix in stored_prefixes(&table) {
                let end = keycode::prefix_end(&prefix).expect("prefix has an end");
                ranges.push((Bound::Included(prefix), Bound::Excluded(end)));
            }
        }
        self.db.engine.vacuum_ranges(&ranges)?;
        Ok(())
    }

    /// The block's transaction, started if this is its first statement.
    fn block_txn(&mut self) -> Result<&mut Txn> {
        let lock_settings = self.lock_settings();
        let block = self.block.as_mut().expect("in a block");
        if block.txn.is_none() {
            let mut t = self.db.engine.begin(block.opts)?;
            t.set_lock_settings(lock_settings);
            block.txn = Some(t);
        }
        Ok(block.txn.as_mut().expect("created above"))
    }

    /// SAVEPOINT, ROLLBACK TO SAVEPOINT and RELEASE SAVEPOINT. ROLLBACK TO is the one
    /// statement besides ROLLBACK a failed block accepts: it leaves the aborted state.
    fn savepoint_statement(&mut self, stmt: &Statement) -> Result<QueryResult> {
        let (what, name) = match stmt {
            Statement::Savepoint(n) => ("SAVEPOINT", n),
            Statement::RollbackTo(n) => ("ROLLBACK TO SAVEPOINT", n),
            Statement::Release(n) => ("RELEASE SAVEPOINT", n),
            _ => unreachable!("only savepoint statements come here"),
        };
        let Some(block) = &self.block else {
            return Err(Error::new(
                codes::NO_ACTIVE_SQL_TRANSACTION,
                format!("{what} can only be used in transaction blocks"),
            ));
        };
        if matches!(stmt, Statement::Savepoint(_)) {
            let id = self.block_txn()?.savepoint()?;
            let settings = self.settings.clone();
            let modes = self.deferred.borrow().modes();
            self.block.as_mut().expect("in a block").savepoints.push((name.clone(), id, settings, modes));
            return Ok(QueryResult::command("SAVEPOINT"));
        }
        let Some(pos) = block.savepoints.iter().rposition(|(n, ..)| n == name) else {
            return Err(Error::new(codes::INVALID_SAVEPOINT, format!("savepoint \"{name}\" does not exist")));
        };
        let id = block.savepoints[pos].1;
        let block = self.block.as_mut().expect("in a block");
        let txn = block.txn.as_mut().expect("a savepoint started the transaction");
        if matches!(stmt, Statement::RollbackTo(_)) {
            txn.rollback_to(id)?;
            block.savepoints.truncate(pos + 1);
            block.failed = false;
            self.deferred.borrow_mut().set_modes(block.savepoints[pos].3.clone());
            if block.settings.is_some() {
                self.settings = block.savepoints[pos].2.clone();
                self.derived = Derived::of(&self.settings);
                self.settings_changed = true;
            }
            Ok(QueryResult::command("ROLLBACK"))
        } else {
            txn.release(id)?;
            block.savepoints.truncate(pos);
            Ok(QueryResult::command("RELEASE"))
        }
    }

    fn default_options(&self) -> TxnOptions {
        self.derived.options
    }

    fn lock_settings(&self) -> txn::LockSettings {
        self.derived.locks
    }

    fn run(&mut self, stmt: &Statement, params: &[Value]) -> Result<QueryResult> {
        match stmt {
            Statement::Begin { isolation, read_only } => {
                if self.block.is_some() {
                    let mut r = QueryResult::command("BEGIN");
                    r.notices.push("there is already a transaction in progress".into());
                    return Ok(r);
                }
                let mut opts = self.default_options();
                if let Some(i) = isolation {
                    opts.isolation = *i;
                }
                if let Some(ro) = read_only {
                    opts.read_only = *ro;
                }
                self.block = Some(Block { txn: None, opts, failed: false, savepoints: Vec::new(), settings: None });
                Ok(QueryResult::command("BEGIN"))
            }
            Statement::Commit => match self.block.take() {
                None => {
                    let mut r = QueryResult::command("COMMIT");
                    r.notices.push("there is no transaction in progress".into());
                    Ok(r)
                }
                Some(b) if b.failed => {
                    self.deferred.borrow_mut().clear();
                    self.end_settings(b.settings, false);
                    self.release_xact_advisory();
                    Ok(QueryResult::command("ROLLBACK"))
                }
                Some(b) => {
                    let mut txn = b.txn;
                    let checked = match txn.as_mut() {
                        Some(t) => self.check_deferred_at_commit(t),
                        None => Ok(()),
                    };
                    // A deferred check that fails rolls the transaction back, as PostgreSQL's
                    // COMMIT does.
                    let committed = checked.and_then(|()| txn.map_or(Ok(None), Txn::commit).map_err(Error::from));
                    self.end_settings(b.settings, committed.is_ok());
                    self.release_xact_advisory();
                    committed?;
                    Ok(QueryResult::command("COMMIT"))
                }
            },
            Statement::Rollback => {
                let block = self.block.take();
                let had = block.is_some();
                self.deferred.borrow_mut().clear();
                if let Some(b) = block {
                    self.end_settings(b.settings, false);
                    self.release_xact_advisory();
                }
                let mut r = QueryResult::command("ROLLBACK");
                if !had {
                    r.notices.push("there is no transaction in progress".into());
                }
                Ok(r)
            }
            Statement::RollbackTo(_) => {
                let r = self.savepoint_statement(stmt);
                if r.is_err() {
                    self.fail_block();
                }
                r
            }
            _ if self.block.as_ref().is_some_and(|b| b.failed) => Err(Error::new(
                codes::IN_FAILED_SQL_TRANSACTION,
                "current transaction is aborted, commands ignored until end of transaction block",
            )),
            Statement::Savepoint(_) | Statement::Release(_) => {
                let r = self.savepoint_statement(stmt);
                if r.is_err() {
                    self.fail_block();
                }
                r
            }
            Statement::SetTransaction { isolation, read_only } => match &mut self.block {
                Some(b) if b.txn.is_none() => {
                    if let Some(i) = isolation {
                        b.opts.isolation = *i;
                    }
                    if let Some(ro) = read_only {
                        b.opts.read_only = *ro;
                    }
                    Ok(QueryResult::command("SET"))
                }
                Some(_) => Err(Error::new(
                    codes::ACTIVE_SQL_TRANSACTION,
                    "SET TRANSACTION ISOLATION LEVEL must be called before any query",
                )),
                None => {
                    let mut r = QueryResult::command("SET");
                    r.notices.push("SET TRANSACTION can only be used in transaction blocks".into());
                    Ok(r)
                }
            },
            Statement::Copy(c) if c.from => {
                let r = self.start_copy_in(c);
                if r.is_err() {
                    self.fail_block();
                }
                r
            }
            Statement::Vacuum { tables, analyze } => {
                if self.block.is_some() {
                    self.fail_block();
                    return Err(Error::new(
                        codes::ACTIVE_SQL_TRANSACTION,
                        "VACUUM cannot run inside a transaction block",
                    ));
                }
                self.vacuum(tables)?;
                if *analyze {
                    self.run_implicit(&Statement::Analyze(tables.clone()), &[])?;
                }
                Ok(QueryResult::command("VACUUM"))
            }
            Statement::Set { name, value, local } => self.set_statement(name, value.clone(), *local),
            Statement::Reset(name) => {
                self.set_statement(name, None, false)?;
                Ok(QueryResult::command("RESET"))
            }
            Statement::Discard(what) => self.discard(*what),
            Statement::Deallocate(name) => {
                let r = self.deallocate(name.as_deref());
                if r.is_err() {
                    self.fail_block();
                }
                r
            }
            Statement::Prepare { name, types, sql } => {
                let r = self.prepare_statement(name, types, sql);
                if r.is_err() {
                    self.fail_block();
                }
                r
            }
            Statement::Execute { name, args } => {
                let r = self.execute_prepared(name, args, params);
                if r.is_err() {
                    self.fail_block();
                }
                r
            }
            // Bulwark has no SQL cursors, so none is open.
            Statement::Close(None) => Ok(QueryResult::command("CLOSE CURSOR ALL")),
            Statement::Close(Some(name)) => {
                self.fail_block();
                Err(Error::new(codes::INVALID_CURSOR_NAME, format!("cursor \"{name}\" does not exist")))
            }
            // Nor LISTEN: no channel is listened on.
            Statement::Unlisten => Ok(QueryResult::command("UNLISTEN")),
            Statement::Show(name) => self.show(name),
            Statement::Lock { .. } if self.block.is_none() => {
                Err(Error::new(codes::NO_ACTIVE_SQL_TRANSACTION, "LOCK TABLE can only be used in transaction blocks"))
            }
            Statement::SetConstraints { .. } if self.block.is_none() => {
                let mut r = QueryResult::command("SET CONSTRAINTS");
                r.notices.push("SET CONSTRAINTS can only be used in transaction blocks".into());
                Ok(r)
            }
            other => {
                if self.settings.get(READ_CONSISTENCY_SETTING).map(String::as_str) != Some("stale") {
                    if let Err(why) = self.db.node.read_barrier() {
                        self.fail_block();
                        return Err(Error::new(codes::CANNOT_CONNECT_NOW, why));
                    }
                }
                let in_block = self.block.is_some();
                let timeout_ms = self.derived.timeout_ms;
                self.deadline.set(
                    (timeout_ms > 0).then(|| std::time::Instant::now() + std::time::Duration::from_millis(timeout_ms)),
                );
                // A cancel that came between statements is for no statement.
                self.cancel.store(false, std::sync::atomic::Ordering::Relaxed);
                let result = if in_block { self.run_in_block(other, params) } else { self.run_implicit(other, params) };
                if !in_block {
                    self.release_xact_advisory();
                }
                if result.is_err() {
                    self.fail_block();
                }
                result
            }
        }
    }

    fn run_in_block(&mut self, stmt: &Statement, params: &[Value]) -> Result<QueryResult> {
        self.block_txn()?;
        let mut txn = self.block.as_mut().and_then(|b| b.txn.take()).expect("created above");
        txn.new_statement();
        let r = self.statement(&mut txn, stmt, params);
        if let Some(b) = self.block.as_mut() {
            b.txn = Some(txn);
        }
        r
    }

    fn run_implicit(&mut self, stmt: &Statement, params: &[Value]) -> Result<QueryResult> {
        let mut txn = self.db.engine.begin(self.default_options())?;
        txn.set_lock_settings(self.lock_settings());
        let r = self.statement(&mut txn, stmt, params);
        let checked = match r {
            Ok(r) => self.check_deferred_at_commit(&mut txn).map(|()| r),
            Err(e) => {
                self.deferred.borrow_mut().clear();
                Err(e)
            }
        }?;
        txn.commit()?;
        Ok(checked)
    }

    /// SET [LOCAL] and RESET: inside a block, what is set is recorded so that ROLLBACK (and,
    /// for SET LOCAL, COMMIT) can undo it.
    fn set_statement(&mut self, name: &str, value: Option<String>, local: bool) -> Result<QueryResult> {
        let Some(block) = self.block.as_mut() else {
            if local {
                let mut r = QueryResult::command("SET");
                r.notices.push("SET LOCAL can only be used in transaction blocks".into());
                return Ok(r);
            }
            self.set(name, value)?;
            return Ok(QueryResult::command("SET"));
        };
        let frame = block.settings.get_or_insert_with(|| SettingsFrame {
            prior: self.settings.clone(),
            set: BTreeSet::new(),
            local: BTreeMap::new(),
        });
        let names: Vec<String> =
            if name == "all" { self.settings.keys().cloned().collect() } else { vec![name.to_ascii_lowercase()] };
        for name in names {
            if !local {
                frame.local.remove(&name);
                frame.set.insert(name);
            } else if !frame.local.contains_key(&name) {
                let masked = frame.set.contains(&name).then(|| self.settings.get(&name).cloned().unwrap_or_default());
                frame.local.insert(name, masked);
            }
        }
        if let Err(e) = self.set(name, value) {
            self.fail_block();
            return Err(e);
        }
        Ok(QueryResult::command("SET"))
    }

    /// Releases the advisory locks the transaction that ended took (pg_advisory_xact_lock).
    fn release_xact_advisory(&self) {
        let keys = std::mem::take(&mut *self.xact_advisory.lock().unwrap_or_else(|e| e.into_inner()));
        for key in keys {
            self.db.advisory.unlock(self.id, key);
        }
    }

    /// Ends a block's settings: ROLLBACK restores all of them, COMMIT those SET LOCAL.
    fn end_settings(&mut self, frame: Option<SettingsFrame>, committed: bool) {
        let Some(frame) = frame else { return };
        if committed {
            for (name, masked) in frame.local {
                match masked.or_else(|| frame.prior.get(&name).cloned()) {
                    Some(v) => self.settings.insert(name, v),
                    None => self.settings.remove(&name),
                };
            }
        } else {
            self.settings = frame.prior;
        }
        self.derived = Derived::of(&self.settings);
        self.settings_changed = true;
    }

    /// DISCARD: ALL resets the session to how it began (outside a block only).
    fn discard(&mut self, what: Discard) -> Result<QueryResult> {
        match what {
            Discard::All => {
                if self.block.is_some() {
                    self.fail_block();
                    return Err(Error::new(
                        codes::ACTIVE_SQL_TRANSACTION,
                        "DISCARD ALL cannot run inside a transaction block",
                    ));
                }
                self.settings = self.reset.clone();
                self.user = self.reset.get("session_authorization").cloned().unwrap_or_else(|| self.user.clone());
                self.derived = Derived::of(&self.settings);
                self.settings_changed = true;
                self.deallocated.push(None);
                self.forget_sql_prepared();
                self.db.advisory.unlock_all(self.id);
                self.currvals.lock().unwrap_or_else(|e| e.into_inner()).clear();
                self.parsed.clear();
                Ok(QueryResult::command("DISCARD ALL"))
            }
            Discard::Plans => {
                self.parsed.clear();
                Ok(QueryResult::command("DISCARD PLANS"))
            }
            Discard::Sequences => {
                self.currvals.lock().unwrap_or_else(|e| e.into_inner()).clear();
                Ok(QueryResult::command("DISCARD SEQUENCES"))
            }
            Discard::Temp => Ok(QueryResult::command("DISCARD TEMP")),
        }
    }

    /// Sets (None: resets) a setting, and what statements derive from the settings.
    fn set(&mut self, name: &str, value: Option<String>) -> Result<()> {
        let r = self.set_setting(name, value);
        self.derived = Derived::of(&self.settings);
        self.settings_changed = true;
        r
    }

    fn set_setting(&mut self, name: &str, value: Option<String>) -> Result<()> {
        let name = name.to_ascii_lowercase();
        if name == "all" && value.is_none() {
            // RESET ALL: every setting back to its value at the session's start, but the
            // session's role (PostgreSQL's RESET ALL leaves it too).
            let role = self.settings.get("session_authorization").cloned();
            let mut reset = self.reset.clone();
            for name in self.settings.keys() {
                reset.entry(name.clone()).or_default();
            }
            if let Some(role) = role {
                reset.insert("session_authorization".into(), role);
            }
            self.settings = reset;
            return Ok(());
        }
        if !self.settings.contains_key(&name) || is_server_setting(&name) {
            settable(&name)?;
        }
        let value = match value {
            None => self.reset.get(&name).cloned().unwrap_or_default(),
            Some(v) => v,
        };
        match name.as_str() {
            "transaction_isolation" | "default_transaction_isolation" => {
                let v = value.to_ascii_lowercase();
                if !["read committed", "repeatable read", "serializable", "read uncommitted"].contains(&v.as_str()) {
                    return Err(Error::new(
                        codes::INVALID_PARAMETER_VALUE,
                        format!("invalid value for parameter \"{name}\": \"{value}\""),
                    ));
                }
                let v = if v == "read uncommitted" { "read committed".to_string() } else { v };
                if name == "transaction_isolation" {
                    if let Some(b) = &mut self.block {
                        if b.txn.is_none() {
                            b.opts.isolation = parse_isolation(&v);
                        }
                    }
                } else {
                    self.settings.insert(name, v);
                }
            }
            "statement_timeout" | "lock_timeout" | "deadlock_timeout" | "idle_in_transaction_session_timeout" => {
                if parse_duration_ms(&value).is_none() {
                    return Err(Error::new(
                        codes::INVALID_PARAMETER_VALUE,
                        format!("invalid value for parameter \"{name}\": \"{value}\""),
                    ));
                }
                self.settings.insert(name, value);
            }
            crate::exec::STATEMENT_MEM_SETTING => {
                let min = crate::exec::STATEMENT_MEM_MIN_BYTES;
                match crate::exec::parse_bytes(&value) {
                    None => {
                        return Err(Error::new(
                            codes::INVALID_PARAMETER_VALUE,
                            format!("invalid value for parameter \"{name}\": \"{value}\""),
                        )
                        .with_hint("Valid units for this parameter are \"B\", \"kB\", \"MB\", \"GB\", and \"TB\"."))
                    }
                    Some(bytes) if bytes < min => {
                        return Err(Error::new(
                            codes::INVALID_PARAMETER_VALUE,
                            format!(
                                "{value} is outside the valid range for parameter \"{name}\" ({} .. )",
                                crate::exec::format_bytes(min)
                            ),
                        ))
                    }
                    Some(bytes) => {
                        self.settings.insert(name, crate::exec::format_bytes(bytes));
                    }
                }
            }
            READ_CONSISTENCY_SETTING => {
                let v = value.to_ascii_lowercase();
                if v != "linearizable" && v != "stale" {
                    return Err(Error::new(
                        codes::INVALID_PARAMETER_VALUE,
                        format!("invalid value for parameter \"{name}\": \"{value}\""),
                    )
                    .with_hint("Available values: linearizable, stale."));
                }
                self.settings.insert(name, v);
            }
            _ => {
                self.settings.insert(name, value);
            }
        }
        Ok(())
    }

    fn show(&self, name: &str) -> Result<QueryResult> {
        let name = name.to_ascii_lowercase();
        let rows: Vec<Row> = if name == "all" {
            self.settings.iter().map(|(k, v)| vec![Value::Text(k.clone()), Value::Text(v.clone())]).collect()
        } else if name == REPLICATION_LAG_SETTING {
            let (entries, ms) = self.db.node.replication_lag();
            vec![vec![Value::Text(format!("{entries} entries, {ms} ms"))]]
        } else if name == "transaction_isolation" {
            let iso = match &self.block {
                Some(b) => b.opts.isolation,
                None => self.default_options().isolation,
            };
            vec![vec![Value::Text(isolation_name(iso).into())]]
        } else {
            let pg_default = || crate::system::pg_settings::SESSION.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
            match self.settings.get(&name).map(String::as_str).or_else(pg_default) {
                Some(v) => vec![vec![Value::Text(v.to_string())]],
                None => {
                    return Err(Error::new(
                        codes::UNDEFINED_OBJECT,
                        format!("unrecognized configuration parameter \"{name}\""),
                    ))
                }
            }
        };
        let columns = if name == "all" {
            vec![
                ResultColumn { name: "name".into(), data_type: DataType::Text },
                ResultColumn { name: "setting".into(), data_type: DataType::Text },
            ]
        } else {
            vec![ResultColumn { name, data_type: DataType::Text }]
        };
        Ok(QueryResult { columns: Some(columns), rows, tag: "SHOW".into(), notices: vec![], copy: None })
    }

    fn now(&self) -> FnContext {
        let (base, at) = self.db.clock;
        FnContext { now_micros: base + at.elapsed().as_micros() as i64 }
    }

    /// Runs a statement in `txn`.
    fn statement(&self, txn: &mut Txn, stmt: &Statement, params: &[Value]) -> Result<QueryResult> {
        match stmt {
            Statement::Query(q) => self.query(txn, q, params),
            Statement::SetConstraints { names, deferred } => self.set_constraints(txn, names.as_deref(), *deferred),
            Statement::CreateTable { name, if_not_exists, columns, constraints } => {
                self.create_table(txn, name, *if_not_exists, columns, constraints)
            }
            Statement::DropTable { names, if_exists } => self.drop_tables(txn, names, *if_exists),
            Statement::CreateIndex { name, table, columns, unique, if_not_exists } => {
                self.create_index(txn, name.clone(), table, columns, *unique, *if_not_exists)
            }
            Statement::DropIndex { names, if_exists } => self.drop_indexes(txn, names, *if_exists),
            Statement::CreateView { name, columns, query, sql, or_replace } => {
                self.create_view(txn, name, columns, query, sql, *or_replace)
            }
            Statement::DropView { names, if_exists } => self.drop_views(txn, names, *if_exists),
            // PL/pgSQL is installed in every PostgreSQL database (pg_extension shows it), so
            // CREATE EXTENSION IF NOT EXISTS plpgsql (which Rails' schema loads run) skips;
            // functions in it are not supported. Bulwark has no other extension.
            Statement::CreateExtension { name, if_not_exists } => match (name.as_str(), if_not_exists) {
                ("plpgsql", true) => {
                    let mut r = QueryResult::command("CREATE EXTENSION");
                    r.notices.push(format!("extension \"{name}\" already exists, skipping"));
                    Ok(r)
                }
                ("plpgsql", false) => {
                    Err(Error::new(codes::DUPLICATE_OBJECT, format!("extension \"{name}\" already exists")))
                }
                _ => Err(Error::new(codes::FEATURE_NOT_SUPPORTED, format!("extension \"{name}\" is not available"))
                    .with_detail("Bulwark has no extensions; gen_random_uuid() and uuid_generate_v4() are built in.")),
            },
            Statement::CreateSequence { name, if_not_exists, options } => {
                self.create_sequence(txn, name, *if_not_exists, options)
            }
            Statement::DropSequence { names, if_exists } => self.drop_sequences(txn, names, *if_exists),
            Statement::Truncate { tables, cascade, restart_identity } => {
                self.truncate(txn, tables, *cascade, *restart_identity)
            }
            Statement::Insert { table, columns, source, on_conflict, returning } => {
                self.insert(txn, table, columns.as_deref(), source, on_conflict.as_ref(), returning, params)
            }
            Statement::Update { table, alias, assignments, from, filter, returning } if !from.is_empty() => {
                self.write_from(txn, table, alias.as_deref(), assignments, from, filter.as_ref(), returning, params)
            }
            Statement::Delete { table, alias, using, filter, returning } if !using.is_empty() => {
                self.write_from(txn, table, alias.as_deref(), &[], using, filter.as_ref(), returning, params)
            }
            Statement::Update { table, alias, assignments, filter, returning, .. } => {
                self.update(txn, table, alias.as_deref(), assignments, filter.as_ref(), returning, params)
            }
            Statement::Delete { table, alias, filter, returning, .. } => {
                self.delete(txn, table, alias.as_deref(), filter.as_ref(), returning, params)
            }
            Statement::Explain { analyze, costs, timing, summary, statement } => {
                self.explain(txn, statement, *analyze, *costs, *timing, *summary, params)
            }
            Statement::Copy(c) => self.copy_out(txn, c),
            Statement::CreateRole { name, options } => self.create_role(txn, name, options),
            Statement::AlterRole { name, options } => self.alter_role(txn, name, options),
            Statement::DropRole { names, if_exists } => self.drop_roles(txn, names, *if_exists),
            Statement::Analyze(tables) => {
                let names = if tables.is_empty() { catalog::table_names(txn)? } else { tables.clone() };
                for t in &names {
                    if crate::system::table(t).is_some() {
                        continue; // system tables are made on demand: nothing to count
                    }
                    let table = catalog::lock_table(txn, t, false)?;
                    let stats = crate::analyze::table_stats(txn, &table)?;
                    catalog::put_stats(txn, &table, &stats)?;
                }
                Ok(QueryResult::command("ANALYZE"))
            }
            Statement::AlterTable { name, if_exists, actions } => self.alter_table(txn, name, *if_exists, actions),
            Statement::Comment { relation, column, kind, comment } => {
                self.comment(txn, relation, column.as_deref(), *kind, comment.as_deref())
            }
            Statement::CreateSchema { name, if_not_exists } => self.create_schema(name, *if_not_exists),
            Statement::CreateEnum { name, labels } => self.create_enum(txn, name, labels),
            Statement::AlterEnumAddValue { name, label, if_not_exists, position } => {
                self.add_enum_value(txn, name, label, *if_not_exists, position.as_ref())
            }
            Statement::DropType { names, if_exists } => self.drop_types(txn, names, *if_exists),
            Statement::Lock { tables, exclusive, nowait } => self.lock_tables(txn, tables, *exclusive, *nowait),
            other => Err(Error::unsupported(format!("{other:?}").split([' ', '{', '(']).next().unwrap_or("statement"))),
        }
    }

    /// The plan of `q`: the one kept for the running statement if `q` is that statement and
    /// the catalog version `txn` sees is the one it was made at, else a new one (kept when
    /// `q` is the running statement and `txn` has a catalog version).
    fn cached_plan(&self, txn: &mut Txn, q: &ast::Query) -> Result<Arc<CachedPlan>> {
        let slot = self.plan_slot.as_ref().filter(
            |(parsed, i)| matches!(parsed.statements.get(*i), Some(Statement::Query(top)) if std::ptr::eq(&**top, q)),
        );
        let version = match slot {
            Some(_) => txn.watched_version()?,
            None => None,
        };
        if let (Some((parsed, i)), Some(v)) = (slot, version) {
            if let Some(hit) = parsed.plans()[*i].as_ref().filter(|c| c.version == v) {
                return Ok(hit.clone());
            }
        }
        let (plan, scope) = Planner::new(txn).plan_query(q, vec![])?;
        let made = Arc::new(CachedPlan { version: version.unwrap_or(0), plan, scope });
        if let (Some((parsed, i)), Some(_)) = (slot, version) {
            parsed.plans()[*i] = Some(made.clone());
        }
        Ok(made)
    }

    fn exec<'t>(&'t self, txn: &'t mut Txn, params: &'t [Value]) -> Exec<'t> {
        Exec {
            txn,
            params,
            fn_ctx: self.now(),
            sequences: self,
            ctes: HashMap::new(),
            outer: vec![],
            rows_examined: 0,
            deadline: self.deadline.get(),
            ticks: 0,
            cancel: &self.cancel,
            profile: None,
            mem_max_bytes: self.derived.mem_max_bytes,
            mem_used_bytes: 0,
            deferred: Some(&self.deferred),
        }
    }

    /// Runs the transaction's deferred checks before its commit; they are forgotten
    /// either way.
    fn check_deferred_at_commit(&self, txn: &mut Txn) -> Result<()> {
        let r = dml::check_deferred(&mut self.exec(txn, &[]), None);
        self.deferred.borrow_mut().clear();
        r
    }

    fn query(&self, txn: &mut Txn, q: &ast::Query, params: &[Value]) -> Result<QueryResult> {
        let cached = self.cached_plan(txn, q)?;
        let rows = self.exec(txn, params).run(&cached.plan)?;
        let columns = result_columns(&cached.scope, &rows);
        let tag = format!("SELECT {}", rows.len());
        Ok(QueryResult { columns: Some(columns), rows, tag, notices: vec![], copy: None })
    }

    /// EXPLAIN [ANALYZE]: the plan, and with ANALYZE what each node did (see `explain`).
    #[allow(clippy::too_many_arguments)]
    fn explain(
        &self,
        txn: &mut Txn,
        stmt: &Statement,
        analyze: bool,
        costs: bool,
        timing: bool,
        summary: bool,
        params: &[Value],
    ) -> Result<QueryResult> {
        let plan = match stmt {
            Statement::Query(q) => Planner::new(txn).plan_query(q, vec![])?.0,
            Statement::Insert { .. } | Statement::Update { .. } | Statement::Delete { .. } => {
                let o = explain::ExplainOptions { analyze, costs, timing, summary };
                return self.explain_write(txn, stmt, &o, params);
            }
            _ => return Err(Error::unsupported("EXPLAIN of this statement")),
        };
        let mut profile = None;
        let start = std::time::Instant::now();
        if analyze {
            let mut exec = self.exec(txn, params);
            exec.profile = Some(crate::explain::Profile::new());
            exec.run(&plan)?;
            profile = exec.profile.take();
        }
        let elapsed = start.elapsed();
        let opts = crate::explain::Options { costs, profile: profile.as_ref(), timing };
        let mut lines = crate::explain::lines(&plan, &opts);
        if analyze && summary {
            lines.push(format!("Execution Time: {:.3} ms", elapsed.as_secs_f64() * 1000.0));
        }
        let rows = lines.into_iter().map(|l| vec![Value::Text(l)]).collect();
        Ok(QueryResult {
            columns: Some(vec![ResultColumn { name: "QUERY PLAN".into(), data_type: DataType::Text }]),
            rows,
            tag: "EXPLAIN".into(),
            notices: vec![],
            copy: None,
        })
    }

    // ---- DDL ----------------------------------------------------------------------

    fn create_table(
        &self,
        txn: &mut Txn,
        name: &str,
        if_not_exists: bool,
        defs: &[ast::ColumnDef],
        constraints: &[TableConstraint],
    ) -> Result<QueryResult> {
        if catalog::get_table(txn, name)?.is_some()
            || catalog::get_view(txn, name)?.is_some()
            || txn.get(&sequence_key(name))?.is_some()
        {
            if if_not_exists {
                let mut r = QueryResult::command("CREATE TABLE");
                r.notices.push(format!("relation \"{name}\" already exists, skipping"));
                return Ok(r);
            }
            return Err(Error::new(codes::DUPLICATE_TABLE, format!("relation \"{name}\" already exists")));
        }
        if catalog::get_enum(txn, name)?.is_some() {
            return Err(Error::new(codes::DUPLICATE_OBJECT, format!("type \"{name}\" already exists")).with_hint(
                "A relation has an associated type of the same name, so you must use a name that doesn't conflict with any existing type.",
            ));
        }
        if defs.len() > catalog::COLUMNS_MAX {
            return Err(Error::new(codes::PROGRAM_LIMIT_EXCEEDED, "tables can have at most 1600 columns"));
        }
        let mut columns: Vec<Column> = Vec::new();
        for d in defs {
            if columns.iter().any(|c| c.name == d.name) {
                return Err(Error::new(
                    codes::DUPLICATE_COLUMN,
                    format!("column \"{}\" specified more than once", d.name),
                ));
            }
            let mut default = d.default.clone();
            if d.serial {
                let seq = format!("{name}_{}_seq", d.name);
                txn.put(&sequence_key(&seq), &1i64.to_le_bytes())?;
                default = Some(Expr::Function {
                    name: "nextval".into(),
                    args: vec![Expr::Literal(Value::Text(seq))],
                    distinct: false,
                    star: false,
                    order_by: vec![],
                });
            }
            columns.push(Column {
                name: d.name.clone(),
                data_type: catalog::resolve_type(txn, &d.data_type)?,
                not_null: d.not_null || d.serial,
                default,
                sequence: None,
            });
        }
        let id = catalog::next_id(txn)?;
        let mut table = Table {
            id,
            name: name.to_string(),
            columns,
            primary_key: vec![],
            pk_name: format!("{name}_pkey"),
            rowid_sequence: 0,
            indexes: vec![],
            checks: vec![],
            foreign_keys: vec![],
        };
        let positions = |table: &Table, cols: &[String]| -> Result<Vec<usize>> {
            cols.iter()
                .map(|c| {
                    table.column_index(c).map_err(|_| {
                        Error::new(codes::UNDEFINED_COLUMN, format!("column \"{c}\" named in key does not exist"))
                    })
                })
                .collect()
        };
        for c in constraints {
            match c {
                TableConstraint::PrimaryKey { name: cname, columns } => {
                    if !table.primary_key.is_empty() {
                        return Err(Error::new(
                            "42P16",
                            format!("multiple primary keys for table \"{name}\" are not allowed"),
                        ));
                    }
                    table.primary_key = positions(&table, columns)?;
                    for &p in &table.primary_key.clone() {
                        table.columns[p].not_null = true;
                    }
                    if let Some(n) = cname {
                        table.pk_name = n.clone();
                    }
                }
                TableConstraint::Unique { name: cname, columns } => {
                    let cols = positions(&table, columns)?;
                    let iname = cname.clone().unwrap_or_else(|| format!("{name}_{}_key", columns.join("_")));
                    let iid = catalog::next_id(txn)?;
                    txn.put(&keys::index(&iname), name.as_bytes())?;
                    table.indexes.push(Index { id: iid, name: iname, columns: cols, unique: true, constraint: true });
                }
                TableConstraint::Check { name: cname, expr } => {
                    let cname = cname.clone().unwrap_or_else(|| alter::check_name(name, expr));
                    table.checks.push((cname, expr.clone()));
                }
                TableConstraint::ForeignKey {
                    name: cname,
                    columns,
                    foreign_table,
                    referred_columns,
                    on_delete,
                    on_update,
                    deferrable,
                    initially_deferred,
                } => {
                    let cols = positions(&table, columns)?;
                    let parent =
                        if foreign_table == name { table.clone() } else { catalog::table(txn, foreign_table)? };
                    let referred = if referred_columns.is_empty() {
                        parent.primary_key.clone()
                    } else {
                        positions(&parent, referred_columns)?
                    };
                    let keyed = referred == parent.primary_key
                        || parent.indexes.iter().any(|i| i.unique && i.columns == referred);
                    if !keyed || referred.len() != cols.len() {
                        return Err(Error::new(
                            "42830",
                            format!(
                                "there is no unique constraint matching given keys for referenced table \"{}\"",
                                parent.name
                            ),
                        ));
                    }
                    table.foreign_keys.push(ForeignKey {
                        name: cname.clone().unwrap_or_else(|| format!("{name}_{}_fkey", columns.join("_"))),
                        columns: cols,
                        table: foreign_table.clone(),
                        referred,
                        on_delete: *on_delete,
                        on_update: *on_update,
                        deferrable: *deferrable,
                        initially_deferred: *initially_deferred,
                    });
                }
            }
        }
        if table.primary_key.is_empty() {
            txn.put(&sequence_key(&format!("{name}_rowid_seq")), &1i64.to_le_bytes())?;
        } else {
            txn.put(&keys::index(&table.pk_name), name.as_bytes())?;
        }
        catalog::put_table(txn, &table)?;
        Ok(QueryResult::command("CREATE TABLE"))
    }

    fn drop_tables(&self, txn: &mut Txn, names: &[String], if_exists: bool) -> Result<QueryResult> {
        let mut notices = Vec::new();
        for name in names {
            if catalog::get_table(txn, name)?.is_none() {
                if if_exists {
                    notices.push(format!("table \"{name}\" does not exist, skipping"));
                    continue;
                }
                return Err(Error::new(codes::UNDEFINED_TABLE, format!("table \"{name}\" does not exist")));
            }
            let table = catalog::lock_table(txn, name, true)?;
            views::check_no_view_reads(txn, name, "table", &[])?;
            for other in catalog::table_names(txn)? {
                if &other == name || names.contains(&other) {
                    continue;
                }
                let o = catalog::table(txn, &other)?;
                if let Some(fk) = o.foreign_keys.iter().find(|fk| &fk.table == name) {
                    return Err(Error::new(
                        "2BP01",
                        format!("cannot drop table {name} because other objects depend on it"),
                    )
                    .with_detail(format!("constraint {} on table {other} depends on table {name}", fk.name)));
                }
            }
            self.delete_all(txn, &table)?;
            for index in &table.indexes {
                txn.delete(&keys::index(&index.name))?;
            }
            txn.delete(&keys::index(&table.pk_name))?;
            self.forget_sequences(&table);
            for c in &table.columns {
                txn.delete(&sequence_key(&format!("{name}_{}_seq", c.name)))?;
            }
            txn.delete(&sequence_key(&format!("{name}_rowid_seq")))?;
            txn.delete(&keys::table(name))?;
            txn.delete(&keys::stats(table.id))?;
            catalog::drop_comments(txn, name)?;
            for index in table.indexes.iter().map(|i| &i.name).chain([&table.pk_name]) {
                catalog::drop_comments(txn, index)?;
            }
        }
        let mut r = QueryResult::command("DROP TABLE");
        r.notices = notices;
        Ok(r)
    }

    /// Drops the cached values of `table`'s sequences, so a table created later under the
    /// same name starts from its own sequence, not this one's leftovers.
    fn forget_sequences(&self, table: &Table) {
        let mut cache = self.db.seq_cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.remove(&format!("{}_rowid_seq", table.name));
        for c in &table.columns {
            cache.remove(&format!("{}_{}_seq", table.name, c.name));
        }
    }

    /// TRUNCATE: every table a foreign key of another table refers to must be in the list
    /// (0A000 otherwise, as in PostgreSQL), or with CASCADE those tables are added to it.
    fn truncate(&self, txn: &mut Txn, names: &[String], cascade: bool, restart: bool) -> Result<QueryResult> {
        let mut all: Vec<String> = Vec::new();
        for name in names {
            if !all.contains(name) {
                all.push(name.clone());
            }
        }
        let mut notices = Vec::new();
        let mut i = 0;
        while i < all.len() {
            if catalog::get_table(txn, &all[i])?.is_none() {
                return Err(Error::new(codes::UNDEFINED_TABLE, format!("relation \"{}\" does not exist", all[i])));
            }
            for child in catalog::referencing_tables(txn, &all[i])? {
                if all.contains(&child) {
                    continue;
                }
                if !cascade {
                    return Err(Error::new(
                        codes::FEATURE_NOT_SUPPORTED,
                        "cannot truncate a table referenced in a foreign key constraint",
                    )
                    .with_detail(format!("Table \"{child}\" references \"{}\".", all[i]))
                    .with_hint(format!("Truncate table \"{child}\" at the same time, or use TRUNCATE ... CASCADE.")));
                }
                notices.push(format!("truncate cascades to table \"{child}\""));
                all.push(child);
            }
            i += 1;
        }
        for t in &all {
            let table = catalog::lock_table(txn, t, true)?;
            self.delete_all(txn, &table)?;
            if restart {
                // Each SERIAL or identity column's sequence starts again from 1.
                for c in &table.columns {
                    if let Some(seq) = alter::owned_sequence(&table, c) {
                        txn.put(&sequence_key(&seq), &1i64.to_le_bytes())?;
                        forget_sequence(self, &seq);
                    }
                }
            }
        }
        let mut r = QueryResult::command("TRUNCATE TABLE");
        r.notices = notices;
        Ok(r)
    }

    fn delete_all(&self, txn: &mut Txn, table: &Table) -> Result<()> {
        self.delete_all_but(txn, table, &std::collections::HashSet::new())
    }

    /// Deletes every row of `table` except those under the keys in `keep`, and every index
    /// entry.
    pub(crate) fn delete_all_but(
        &self,
        txn: &mut Txn,
        table: &Table,
        keep: &std::collections::HashSet<Vec<u8>>,
    ) -> Result<()> {
        for prefix in stored_prefixes(table) {
            let end = keycode::prefix_end(&prefix).expect("prefix has an end");
            for (k, _) in txn.scan_latest(Bound::Included(prefix), Bound::Excluded(end))? {
                if !keep.contains(&k) {
                    txn.delete(&k)?;
                }
            }
        }
        Ok(())
    }

    fn create_index(
        &self,
        txn: &mut Txn,
        name: Option<String>,
        table_name: &str,
        columns: &[String],
        unique: bool,
        if_not_exists: bool,
    ) -> Result<QueryResult> {
        let mut table = catalog::lock_table(txn, table_name, true)?;
        let name = name.unwrap_or_else(|| format!("{table_name}_{}_idx", columns.join("_")));
        if txn.get(&keys::index(&name))?.is_some()
            || catalog::get_table(txn, &name)?.is_some()
            || catalog::get_view(txn, &name)?.is_some()
        {
            if if_not_exists {
                let mut r = QueryResult::command("CREATE INDEX");
                r.notices.push(format!("relation \"{name}\" already exists, skipping"));
                return Ok(r);
            }
            return Err(Error::new(codes::DUPLICATE_TABLE, format!("relation \"{name}\" already exists")));
        }
        let cols = columns.iter().map(|c| table.column_index(c)).collect::<Result<Vec<_>>>()?;
        let index = Index { id: catalog::next_id(txn)?, name: name.clone(), columns: cols, unique, constraint: false };
        // Build the index over the existing rows.
        let prefix = keys::rows(table.id);
        let end = keycode::prefix_end(&prefix).expect("prefix has an end");
        let rows = txn.scan_latest(Bound::Included(prefix), Bound::Excluded(end))?;
        table.indexes.push(index.clone());
        let single = Table { indexes: vec![index.clone()], ..table.clone() };
        for (key, bytes) in rows {
            let row = eval::decode_row(&bytes)?;
            let ikey = index_entry_key(&single.indexes[0], &row, &key)?;
            if unique && index.columns.iter().all(|&c| !row[c].is_null()) {
                if let Some(Some(_)) = txn.lock_row_latest(&ikey, LockMode::Exclusive, WaitPolicy::Wait)? {
                    return Err(Error::new(
                        codes::UNIQUE_VIOLATION,
                        format!("could not create unique index \"{name}\""),
                    ));
                }
            }
            txn.put(&ikey, &key)?;
        }
        txn.put(&keys::index(&name), table_name.as_bytes())?;
        catalog::put_table(txn, &table)?;
        Ok(QueryResult::command("CREATE INDEX"))
    }

    fn drop_indexes(&self, txn: &mut Txn, names: &[String], if_exists: bool) -> Result<QueryResult> {
        let mut notices = Vec::new();
        for name in names {
            let Some(owner) = txn.get(&keys::index(name))? else {
                if if_exists {
                    notices.push(format!("index \"{name}\" does not exist, skipping"));
                    continue;
                }
                return Err(Error::new(codes::UNDEFINED_OBJECT, format!("index \"{name}\" does not exist")));
            };
            let mut table = catalog::table(txn, &String::from_utf8_lossy(&owner))?;
            let Some(pos) = table.indexes.iter().position(|i| &i.name == name) else {
                return Err(Error::new(
                    "2BP01",
                    format!("cannot drop index {name} because constraint {name} on table {} requires it", table.name),
                ));
            };
            if table.indexes[pos].constraint {
                return Err(Error::new(
                    "2BP01",
                    format!("cannot drop index {name} because constraint {name} on table {} requires it", table.name),
                ));
            }
            let index = table.indexes.remove(pos);
            let prefix = keys::index_entries(index.id);
            let end = keycode::prefix_end(&prefix).expect("prefix has an end");
            for (k, _) in txn.scan_latest(Bound::Included(prefix), Bound::Excluded(end))? {
                txn.delete(&k)?;
            }
            txn.delete(&keys::index(name))?;
            catalog::drop_comments(txn, name)?;
            catalog::put_table(txn, &table)?;
        }
        let mut r = QueryResult::command("DROP INDEX");
        r.notices = notices;
        Ok(r)
    }

    // ---- DML ----------------------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    fn insert(
        &self,
        txn: &mut Txn,
        table_name: &str,
        columns: Option<&[String]>,
        source: &InsertSource,
        on_conflict: Option<&ast::OnConflict>,
        returning: &[SelectItem],
        params: &[Value],
    ) -> Result<QueryResult> {
        let table = catalog::lock_table_shared(txn, table_name, false)?;
        let targets: Vec<usize> = match columns {
            Some(cols) => cols.iter().map(|c| table.column_index(c)).collect::<Result<_>>()?,
            None => (0..table.columns.len()).collect(),
        };
        let empty = Scope::default();
        // The source rows, with None marking DEFAULT.
        let source_rows: Vec<Vec<Option<Value>>> = match source {
            InsertSource::DefaultValues => vec![vec![]],
            InsertSource::Values(rows) => {
                let mut out = Vec::new();
                for row in rows {
                    if row.len() > targets.len() {
                        return Err(Error::syntax("INSERT has more expressions than target columns"));
                    }
                    if columns.is_some() && row.len() < targets.len() {
                        return Err(Error::syntax("INSERT has more target columns than expressions"));
                    }
                    let mut vals = Vec::new();
                    for e in row {
                        vals.push(match e {
                            Expr::Default => None,
                            e => {
                                let b = Planner::new(txn).bind(e, &empty, &[])?;
                                Some(self.exec(txn, params).eval(&b, &[])?)
                            }
                        });
                    }
                    out.push(vals);
                }
                out
            }
            InsertSource::Query(q) => {
                let (plan, scope) = Planner::new(txn).plan_query(q, vec![])?;
                if scope.columns.len() > targets.len() {
                    return Err(Error::syntax("INSERT has more expressions than target columns"));
                }
                if columns.is_some() && scope.columns.len() < targets.len() {
                    return Err(Error::syntax("INSERT has more target columns than expressions"));
                }
                self.exec(txn, params).run(&plan)?.into_iter().map(|r| r.into_iter().map(Some).collect()).collect()
            }
        };
        // ON CONFLICT (columns): the unique constraint over exactly those columns (in any
        // order) is the arbiter; a conflict on another one is an error, as without ON
        // CONFLICT. Without columns (DO NOTHING only) every unique constraint is.
        let arbiter: Option<Vec<usize>> = match on_conflict {
            Some(ast::OnConflict { constraint: Some(name), .. }) => {
                let mut cols = if !table.primary_key.is_empty() && table.pk_name == *name {
                    table.primary_key.clone()
                } else {
                    match table.indexes.iter().find(|i| i.unique && i.constraint && i.name == *name) {
                        Some(i) => i.columns.clone(),
                        None => {
                            return Err(Error::new(
                                codes::UNDEFINED_OBJECT,
                                format!("constraint \"{name}\" for table \"{}\" does not exist", table.name),
                            ))
                        }
                    }
                };
                cols.sort_unstable();
                Some(cols)
            }
            Some(oc) if !oc.columns.is_empty() => {
                let mut cols = oc.columns.iter().map(|c| table.column_index(c)).collect::<Result<Vec<_>>>()?;
                cols.sort_unstable();
                cols.dedup();
                let sorted = |c: &[usize]| {
                    let mut c = c.to_vec();
                    c.sort_unstable();
                    c
                };
                let matches = (!table.primary_key.is_empty() && sorted(&table.primary_key) == cols)
                    || table.indexes.iter().any(|i| i.unique && sorted(&i.columns) == cols);
                if !matches {
                    return Err(Error::new(
                        codes::INVALID_COLUMN_REFERENCE,
                        "there is no unique or exclusion constraint matching the ON CONFLICT specification",
                    ));
                }
                Some(cols)
            }
            _ => None,
        };
        // Rows this statement inserted or updated: DO UPDATE may not touch one twice.
        let mut written: std::collections::HashSet<Vec<u8>> = std::collections::HashSet::new();
        let table_scope = table_scope(&table, &table.name);
        let returning_columns = returning_columns(returning, &table_scope);
        let returning = self.bind_items(txn, returning, &table_scope)?;
        let mut out_rows = Vec::new();
        let mut count = 0;
        for src in source_rows {
            let mut row = vec![None; table.columns.len()];
            for (i, v) in src.into_iter().enumerate() {
                row[targets[i]] = Some(v);
            }
            let mut full = Vec::with_capacity(table.columns.len());
            for (c, col) in table.columns.iter().enumerate() {
                let v = match row[c].take() {
                    Some(Some(v)) => v,
                    _ => match &col.default {
                        Some(d) => {
                            let b = Planner::new(txn).bind(d, &empty, &[])?;
                            self.exec(txn, params).eval(&b, &[])?
                        }
                        None => Value::Null,
                    },
                };
                full.push(assign_column(v, &table, c)?);
            }
            let mut exec = self.exec(txn, params);
            match dml::insert_row(&mut exec, &table, &full)? {
                Inserted::Done(key) => {
                    if on_conflict.is_some_and(|oc| oc.update.is_some()) {
                        written.insert(key);
                    }
                    count += 1;
                    if let Some(items) = &returning {
                        out_rows.push(items.iter().map(|e| exec.eval(e, &full)).collect::<Result<Row>>()?);
                    }
                }
                Inserted::Conflict(existing_key, err, conflict_columns) => match on_conflict {
                    None => return Err(err),
                    Some(_)
                        if arbiter.as_ref().is_some_and(|a| {
                            let mut c = conflict_columns.clone();
                            c.sort_unstable();
                            *a != c
                        }) =>
                    {
                        return Err(err)
                    }
                    Some(oc) if oc.update.is_none() => {}
                    Some(_) if written.contains(&existing_key) => {
                        return Err(Error::new(
                            codes::CARDINALITY_VIOLATION,
                            "ON CONFLICT DO UPDATE command cannot affect row a second time",
                        )
                        .with_hint(
                            "Ensure that no rows proposed for insertion within the same command have duplicate constrained values.",
                        ));
                    }
                    Some(oc) => {
                        let (assignments, filter) = oc.update.as_ref().expect("DO UPDATE");
                        let Some(Some(bytes)) =
                            exec.txn.lock_row_latest(&existing_key, LockMode::Exclusive, WaitPolicy::Wait)?
                        else {
                            return Err(err);
                        };
                        let old = eval::decode_row(&bytes)?;
                        // Expressions see the existing row and `excluded`, the proposed one.
                        let scope = table_scope.join(&self::table_scope(&table, "excluded"));
                        let mut both = old.clone();
                        both.extend(full.iter().cloned());
                        drop(exec);
                        if let Some(f) = filter {
                            let b = Planner::new(txn).bind(f, &scope, &[])?;
                            if !self.exec(txn, params).test(&b, &both)? {
                                continue;
                            }
                        }
                        let mut new = old.clone();
                        for (col, e) in assignments {
                            let c = table.column_index(col)?;
                            let b = Planner::new(txn).bind(e, &scope, &[])?;
                            new[c] = assign_column(self.exec(txn, params).eval(&b, &both)?, &table, c)?;
                        }
                        let mut exec = self.exec(txn, params);
                        let new_key = dml::update_row(&mut exec, &table, &existing_key, &old, &new)?;
                        written.insert(new_key);
                        count += 1;
                        if let Some(items) = &returning {
                            out_rows.push(items.iter().map(|e| exec.eval(e, &new)).collect::<Result<Row>>()?);
                        }
                    }
                },
            }
        }
        let tag = format!("INSERT 0 {count}");
        Ok(self.dml_result(tag, returning_columns, out_rows))
    }

    fn dml_result(&self, tag: String, returning: Option<Vec<ResultColumn>>, rows: Vec<Row>) -> QueryResult {
        match returning {
            None => QueryResult::command(tag),
            Some(columns) => QueryResult { columns: Some(columns), rows, tag, notices: vec![], copy: None },
        }
    }

    fn bind_items(
        &self,
        txn: &mut Txn,
        items: &[SelectItem],
        scope: &Scope,
    ) -> Result<Option<Vec<crate::bind::BExpr>>> {
        if items.is_empty() {
            return Ok(None);
        }
        let mut out = Vec::new();
        for item in items {
            match item {
                SelectItem::Wildcard => {
                    out.extend(
                        (0..scope.columns.len()).filter(|i| !scope.columns[*i].hidden).map(crate::bind::BExpr::Col),
                    );
                }
                SelectItem::QualifiedWildcard(t) => {
                    out.extend(qualified_wildcard(scope, t)?.into_iter().map(crate::bind::BExpr::Col));
                }
                SelectItem::Expr { expr, .. } => {
                    out.push(crate::bind::as_output(expr, Planner::new(txn).bind(expr, scope, &[])?))
                }
            }
        }
        Ok(Some(out))
    }

    /// The plan of an UPDATE (with `assignments`) or DELETE of `table_name`: the one kept
    /// for the running statement if it is still valid (see [`WritePlan`]), else a new one
    /// (kept when this is the running statement and `txn` has a catalog version). Locks the
    /// table either way.
    fn write_plan(
        &self,
        txn: &mut Txn,
        table_name: &str,
        alias: Option<&str>,
        assignments: &[(String, Expr)],
        filter: Option<&Expr>,
        returning: &[SelectItem],
    ) -> Result<Arc<WritePlan>> {
        let table_bytes = catalog::lock_table_bytes(txn, table_name, false)?;
        let slot = self.plan_slot.as_ref().filter(|(parsed, i)| match parsed.statements.get(*i) {
            Some(Statement::Update { table, .. } | Statement::Delete { table, .. }) => {
                std::ptr::eq(table.as_str(), table_name)
            }
            _ => false,
        });
        let version = match slot {
            Some(_) => txn.watched_version()?,
            None => None,
        };
        if let (Some((parsed, i)), Some(v)) = (slot, version) {
            if let Some(hit) =
                parsed.write_plans()[*i].as_ref().filter(|w| w.version == v && w.table_bytes == table_bytes)
            {
                return Ok(hit.clone());
            }
        }
        let table = Table::clone(&*catalog::decode_shared(&table_bytes)?);
        let scope = table_scope(&table, alias.unwrap_or(table_name));
        let mut bound = Vec::new();
        for (col, e) in assignments {
            let c = table.column_index(col)?;
            let b = match e {
                Expr::Default => match &table.columns[c].default {
                    Some(d) => Planner::new(txn).bind(d, &Scope::default(), &[])?,
                    None => crate::bind::BExpr::Const(Value::Null),
                },
                e => Planner::new(txn).bind(e, &scope, &[])?,
            };
            bound.push((c, b));
        }
        let returning_columns = returning_columns(returning, &scope);
        let returning = self.bind_items(txn, returning, &scope)?;
        let pred = filter.map(|f| Planner::new(txn).bind(f, &scope, &[])).transpose()?;
        let lookup = match filter {
            Some(f) => crate::plan::choose_lookup(&table, &scope, f, &mut Planner::new(txn), &[])?.map(|(l, _)| l),
            None => None,
        };
        let made = Arc::new(WritePlan {
            version: version.unwrap_or(0),
            table_bytes,
            table,
            pred,
            lookup,
            assignments: bound,
            returning,
            returning_columns,
        });
        if let (Some((parsed, i)), Some(_)) = (slot, version) {
            parsed.write_plans()[*i] = Some(made.clone());
        }
        Ok(made)
    }

    /// The rows the plan's filter matches, locked for writing: (key, newest row).
    fn rows_for_write(&self, txn: &mut Txn, plan: &WritePlan, params: &[Value]) -> Result<Vec<(Vec<u8>, Row)>> {
        let pred = &plan.pred;
        let candidates = self.exec(txn, params).candidates(&plan.table, plan.lookup.as_ref())?;
        let mut out = Vec::new();
        for (key, row) in candidates {
            let mut exec = self.exec(txn, params);
            if let Some(p) = pred {
                if !exec.test(p, &row)? {
                    continue;
                }
            }
            // Lock; READ COMMITTED then sees the newest version and checks it again.
            let Some(Some(latest)) = exec.txn.lock_row(&key, LockMode::Exclusive, WaitPolicy::Wait)? else { continue };
            let latest = eval::decode_row(&latest)?;
            if let Some(p) = pred {
                if !exec.test(p, &latest)? {
                    continue;
                }
            }
            out.push((key, latest));
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn update(
        &self,
        txn: &mut Txn,
        table_name: &str,
        alias: Option<&str>,
        assignments: &[(String, Expr)],
        filter: Option<&Expr>,
        returning: &[SelectItem],
        params: &[Value],
    ) -> Result<QueryResult> {
        let plan = self.write_plan(txn, table_name, alias, assignments, filter, returning)?;
        let table = &plan.table;
        let rows = self.rows_for_write(txn, &plan, params)?;
        let mut out = Vec::new();
        let count = rows.len();
        for (key, old) in rows {
            let mut exec = self.exec(txn, params);
            let mut new = old.clone();
            for (c, b) in &plan.assignments {
                new[*c] = assign_column(exec.eval(b, &old)?, table, *c)?;
            }
            dml::update_row(&mut exec, table, &key, &old, &new)?;
            if let Some(items) = &plan.returning {
                out.push(items.iter().map(|e| exec.eval(e, &new)).collect::<Result<Row>>()?);
            }
        }
        Ok(self.dml_result(format!("UPDATE {count}"), plan.returning_columns.clone(), out))
    }

    fn delete(
        &self,
        txn: &mut Txn,
        table_name: &str,
        alias: Option<&str>,
        filter: Option<&Expr>,
        returning: &[SelectItem],
        params: &[Value],
    ) -> Result<QueryResult> {
        let plan = self.write_plan(txn, table_name, alias, &[], filter, returning)?;
        let rows = self.rows_for_write(txn, &plan, params)?;
        let count = rows.len();
        let mut out = Vec::new();
        for (key, old) in rows {
            let mut exec = self.exec(txn, params);
            dml::delete_row(&mut exec, &plan.table, &key, &old)?;
            if let Some(items) = &plan.returning {
                out.push(items.iter().map(|e| exec.eval(e, &old)).collect::<Result<Row>>()?);
            }
        }
        Ok(self.dml_result(format!("DELETE {count}"), plan.returning_columns.clone(), out))
    }
}

/// The key prefixes of what `table` stores: its rows, then each index's entries.
fn stored_prefixes(table: &Table) -> Vec<Vec<u8>> {
    let mut prefixes = vec![keys::rows(table.id)];
    prefixes.extend(table.indexes.iter().map(|i| keys::index_entries(i.id)));
    prefixes
}

/// Drops the cached values of sequence `name` (it was created, moved or dropped).
fn forget_sequence(session: &Session, name: &str) {
    session.db.seq_cache.lock().unwrap_or_else(|e| e.into_inner()).remove(name);
}

/// The columns of a RETURNING list: names as PostgreSQL gives them, the column's type for a
/// plain column reference, text otherwise.
fn returning_columns(items: &[SelectItem], scope: &Scope) -> Option<Vec<ResultColumn>> {
    if items.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    for item in items {
        match item {
            SelectItem::Wildcard => out.extend(scope.columns.iter().filter(|c| !c.hidden).map(|c| ResultColumn {
                name: c.name.clone(),
                data_type: c.data_type.clone().unwrap_or(DataType::Text),
            })),
            SelectItem::QualifiedWildcard(t) => {
                out.extend(qualified_wildcard(scope, t).ok()?.into_iter().map(|i| ResultColumn {
                    name: scope.columns[i].name.clone(),
                    data_type: scope.columns[i].data_type.clone().unwrap_or(DataType::Text),
                }))
            }
            SelectItem::Expr { expr, alias } => {
                let data_type = match expr {
                    Expr::Column { table, name } => scope
                        .find(table.as_deref(), name)
                        .ok()
                        .flatten()
                        .and_then(|i| scope.columns[i].data_type.clone()),
                    _ => crate::plan::infer_type(expr, scope),
                };
                out.push(ResultColumn {
                    name: alias.clone().unwrap_or_else(|| crate::plan::expr_name(expr)),
                    data_type: data_type.unwrap_or(DataType::Text),
                });
            }
        }
    }
    Some(out)
}

/// The positions of the columns of `t` in `scope` (for `t.*`); 42P01 if no item is `t`.
fn qualified_wildcard(scope: &Scope, t: &str) -> Result<Vec<usize>> {
    let found: Vec<usize> =
        (0..scope.columns.len()).filter(|i| scope.columns[*i].table.as_deref() == Some(t)).collect();
    if found.is_empty() {
        return Err(Error::new(codes::UNDEFINED_TABLE, format!("missing FROM-clause entry for table \"{t}\"")));
    }
    Ok(found)
}

/// Visits a FROM item's table names (also in its subqueries) and expressions.
fn collect_from<'q>(t: &'q ast::TableRef, table: &mut dyn FnMut(&str), exprs: &mut Vec<&'q Expr>) {
    match t {
        ast::TableRef::Table { name, .. } => table(name),
        ast::TableRef::Subquery { query, .. } => collect_query(query, table, exprs),
        ast::TableRef::Function { args, .. } => exprs.extend(args),
        ast::TableRef::Join { left, right, on, .. } => {
            collect_from(left, table, exprs);
            collect_from(right, table, exprs);
            exprs.extend(on.iter());
        }
    }
}

/// Visits a query's table names (FROM items, also in subqueries of FROM) and its WHERE,
/// HAVING and output expressions.
fn collect_query<'q>(q: &'q ast::Query, table: &mut dyn FnMut(&str), exprs: &mut Vec<&'q Expr>) {
    fn body<'q>(b: &'q ast::SetExpr, table: &mut dyn FnMut(&str), exprs: &mut Vec<&'q Expr>) {
        match b {
            ast::SetExpr::Select(s) => {
                for t in &s.from {
                    collect_from(t, table, exprs);
                }
                exprs.extend(s.filter.iter());
                exprs.extend(s.having.iter());
                for item in &s.items {
                    if let SelectItem::Expr { expr, .. } = item {
                        exprs.push(expr);
                    }
                }
            }
            ast::SetExpr::SetOp { left, right, .. } => {
                body(left, table, exprs);
                body(right, table, exprs);
            }
            ast::SetExpr::Query(q) => collect_query(q, table, exprs),
            ast::SetExpr::Values(_) => {}
        }
    }
    for cte in &q.with {
        collect_query(&cte.query, table, exprs);
    }
    body(&q.body, table, exprs);
}

fn sequence_key(name: &str) -> Vec<u8> {
    [b"Q".as_slice(), name.as_bytes()].concat()
}

/// The key of `row`'s entry in `index` (see `dml::index_key`).
fn index_entry_key(index: &Index, row: &[Value], rowkey: &[u8]) -> Result<Vec<u8>> {
    dml::index_key(index, row, rowkey).map(|(key, _)| key)
}

fn assign_column(v: Value, table: &Table, c: usize) -> Result<Value> {
    dml::assign(v, &table.columns[c].data_type)
}

fn table_scope(table: &Table, label: &str) -> Scope {
    Scope {
        columns: table
            .columns
            .iter()
            .map(|c| ScopeColumn {
                table: Some(label.to_string()),
                name: c.name.clone(),
                data_type: Some(c.data_type.base()),
                hidden: false,
            })
            .collect(),
    }
}

fn result_columns(scope: &Scope, rows: &[Row]) -> Vec<ResultColumn> {
    scope
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| ResultColumn {
            name: c.name.clone(),
            data_type: c
                .data_type
                .clone()
                .or_else(|| rows.iter().find_map(|r| r.get(i).and_then(eval::type_of)))
                .unwrap_or(DataType::Text),
        })
        .collect()
}

fn parse_isolation(v: &str) -> IsolationLevel {
    match v {
        "repeatable read" => IsolationLevel::RepeatableRead,
        "serializable" => IsolationLevel::Serializable,
        _ => IsolationLevel::ReadCommitted,
    }
}

fn isolation_name(i: IsolationLevel) -> &'static str {
    match i {
        IsolationLevel::ReadCommitted => "read committed",
        IsolationLevel::RepeatableRead => "repeatable read",
        IsolationLevel::Serializable => "serializable",
    }
}

/// Parses a PostgreSQL duration setting ("0", "500", "500ms", "2s", "1min") into ms.
fn parse_duration_ms(v: &str) -> Option<u64> {
    let v = v.trim().trim_matches('\'');
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult = match unit.trim() {
        "" | "ms" => 1,
        "s" => 1000,
        "min" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    Some(n * mult)
}

impl Session {
    /// The next value of sequence `name`, taking up to `cache_size` values per trip to the
    /// store (fewer where the sequence ends).
    fn next_value(&self, txn: &mut Txn, name: &str, cache_size: i64) -> Result<i64> {
        let key = sequence_key(name);
        if !txn.has_written(&key) {
            let mut cache = self.db.seq_cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(b) = cache.get_mut(name).filter(|b| b.left > 0) {
                let v = b.next;
                b.left -= 1;
                b.next = b.next.wrapping_add(b.step);
                return Ok(v);
            }
            // Take a block of values in a transaction of its own, committed at once, so the
            // sequence never rolls back and never conflicts (as in PostgreSQL).
            let mut own = self.db.engine.begin(TxnOptions::default())?;
            if let Some(Some(bytes)) = own.lock_row_latest(&key, LockMode::Exclusive, WaitPolicy::Wait)? {
                let stored = stored_value(&bytes)?;
                let def = catalog::get_sequence(&mut own, name)?;
                let (first, count, after) = take_block(name, def.as_ref(), stored, cache_size)?;
                own.put(&key, &after.to_le_bytes())?;
                own.commit()?;
                let step = def.map_or(1, |d| d.increment);
                cache.insert(name.to_string(), SeqBlock { next: first.wrapping_add(step), left: count - 1, step });
                return Ok(first);
            }
            own.rollback();
        }
        // A sequence this transaction created (or changed) is locked by it: count inside it,
        // not in a second transaction that would wait for this one forever.
        let Some(bytes) = txn.get(&key)? else {
            return Err(Error::new(codes::UNDEFINED_TABLE, format!("relation \"{name}\" does not exist")));
        };
        let def = catalog::get_sequence(txn, name)?;
        let (first, _, after) = take_block(name, def.as_ref(), stored_value(&bytes)?, 1)?;
        txn.put(&key, &after.to_le_bytes())?;
        Ok(first)
    }
}

/// A block of a sequence's values taken from the store and not yet handed out.
#[derive(Debug, Clone, Copy)]
struct SeqBlock {
    /// The next value to hand out.
    next: i64,
    /// How many are left.
    left: i64,
    /// The sequence's increment.
    step: i64,
}

/// A sequence's stored next value.
fn stored_value(bytes: &[u8]) -> Result<i64> {
    Ok(i64::from_le_bytes(bytes.try_into().map_err(|_| Error::new("XX001", "bad sequence"))?))
}

/// From `stored`, the next value not yet handed out, a block of at most `want` values of
/// sequence `name` (defined by `def`; None: a SERIAL column's, 1 by 1 without end):
/// (first value, count, the stored value after the block). Past the sequence's last value
/// it starts again if it cycles, else fails with 2200H as PostgreSQL does.
fn take_block(name: &str, def: Option<&catalog::Sequence>, stored: i64, want: i64) -> Result<(i64, i64, i64)> {
    let Some(d) = def else { return Ok((stored, want, stored.saturating_add(want))) };
    let (step, min, max) = (i128::from(d.increment), i128::from(d.min), i128::from(d.max));
    let mut first = i128::from(stored);
    if first > max || first < min {
        if !d.cycle {
            let (which, bound) = if step > 0 { ("maximum", d.max) } else { ("minimum", d.min) };
            return Err(Error::new(
                codes::SEQUENCE_GENERATOR_LIMIT_EXCEEDED,
                format!("nextval: reached {which} value of sequence \"{name}\" ({bound})"),
            ));
        }
        first = if step > 0 { min } else { max };
    }
    let remaining = if step > 0 { (max - first) / step + 1 } else { (first - min) / -step + 1 };
    let count = remaining.min(i128::from(want.max(1)));
    let after = (first + step * count).clamp(i128::from(i64::MIN), i128::from(i64::MAX));
    Ok((first as i64, count as i64, after as i64))
}

impl Sequences for Session {
    fn nextval(&self, txn: &mut Txn, name: &str) -> Result<i64> {
        let v = self.next_value(txn, name, SEQUENCE_CACHE)?;
        self.currvals.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), v);
        Ok(v)
    }

    fn advisory(
        &self,
        func: &str,
        args: &[Value],
        deadline: Option<std::time::Instant>,
        cancel: &std::sync::atomic::AtomicBool,
    ) -> Result<Value> {
        use crate::advisory::pair_key;
        let locks = &self.db.advisory;
        if func == "pg_advisory_unlock_all" {
            locks.unlock_all(self.id);
            self.xact_advisory.lock().unwrap_or_else(|e| e.into_inner()).clear();
            return Ok(Value::Text(String::new()));
        }
        let int = |v: &Value| match eval::cast(v.clone(), &DataType::Int8, false) {
            Ok(Value::Int8(i)) => Some(i),
            _ => None,
        };
        let key = match args {
            [k] => int(k),
            [a, b] => match (int(a).map(i32::try_from), int(b).map(i32::try_from)) {
                (Some(Ok(a)), Some(Ok(b))) => Some(pair_key(a, b)),
                _ => None,
            },
            _ => None,
        }
        .ok_or_else(|| {
            let types: Vec<&str> = args.iter().map(eval::type_name).collect();
            Error::new(codes::UNDEFINED_FUNCTION, format!("function {func}({}) does not exist", types.join(", ")))
        })?;
        let lock_deadline = self.derived.locks.lock_timeout.map(|d| std::time::Instant::now() + d);
        let xact = func.contains("_xact_");
        let taken = match func {
            "pg_advisory_lock" | "pg_advisory_xact_lock" => {
                locks.lock(self.id, key, lock_deadline, deadline, cancel)?;
                None
            }
            "pg_try_advisory_lock" | "pg_try_advisory_xact_lock" => Some(locks.try_lock(self.id, key)?),
            "pg_advisory_unlock" => return Ok(Value::Bool(locks.unlock(self.id, key))),
            other => return Err(Error::new(codes::UNDEFINED_FUNCTION, format!("function {other} does not exist"))),
        };
        if xact && taken != Some(false) {
            self.xact_advisory.lock().unwrap_or_else(|e| e.into_inner()).push(key);
        }
        Ok(match taken {
            None => Value::Text(String::new()),
            Some(b) => Value::Bool(b),
        })
    }

    fn next_rowid(&self, txn: &mut Txn, table: &str) -> Result<i64> {
        self.next_value(txn, &format!("{table}_rowid_seq"), ROWID_CACHE)
    }

    fn currval(&self, name: &str) -> Result<i64> {
        self.currvals.lock().unwrap_or_else(|e| e.into_inner()).get(name).copied().ok_or_else(|| {
            Error::new(
                codes::OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!("currval of sequence \"{name}\" is not yet defined in this session"),
            )
        })
    }

    fn setval(&self, txn: &mut Txn, name: &str, value: i64) -> Result<i64> {
        let key = sequence_key(name);
        // The next value hands out the one after `value`, within the sequence's bounds.
        let after = |def: Option<catalog::Sequence>| -> Result<i64> {
            let Some(d) = def else { return Ok(value.saturating_add(1)) };
            if value < d.min || value > d.max {
                return Err(Error::new(
                    codes::NUMERIC_VALUE_OUT_OF_RANGE,
                    format!("setval: value {value} is out of bounds for sequence \"{name}\" ({}..{})", d.min, d.max),
                ));
            }
            Ok(value.saturating_add(d.increment))
        };
        if txn.has_written(&key) {
            // Created in this transaction (see nextval): set it inside it.
            if txn.get(&key)?.is_none() {
                return Err(Error::new(codes::UNDEFINED_TABLE, format!("relation \"{name}\" does not exist")));
            }
            let next = after(catalog::get_sequence(txn, name)?)?;
            txn.put(&key, &next.to_le_bytes())?;
            self.db.seq_cache.lock().unwrap_or_else(|e| e.into_inner()).remove(name);
            self.currvals.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), value);
            return Ok(value);
        }
        let mut own = self.db.engine.begin(TxnOptions::default())?;
        match own.lock_row_latest(&key, LockMode::Exclusive, WaitPolicy::Wait)? {
            Some(Some(_)) => {
                let next = after(catalog::get_sequence(&mut own, name)?)?;
                own.put(&key, &next.to_le_bytes())?;
                own.commit()?;
            }
            _ => return Err(Error::new(codes::UNDEFINED_TABLE, format!("relation \"{name}\" does not exist"))),
        }
        self.db.seq_cache.lock().unwrap_or_else(|e| e.into_inner()).remove(name);
        self.currvals.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), value);
        Ok(value)
    }
}
