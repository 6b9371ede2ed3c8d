//! One client connection: startup, the simple and the extended query protocol, over one
//! [`sql::Session`].
//!
//! pgwire runs the message loop and stores prepared statements and portals; this module
//! decides every reply. Statements run inline on the connection's own thread (the crate docs
//! say why) with the session behind a mutex, and come back as ready-to-send messages.
//!
//! ```text
//!   simple:    Query ──► execute_with(sql) ──► per statement: [Notice*] [RowDescription DataRow*]
//!                                              CommandComplete | ErrorResponse (stops)
//!                        ──► [ParameterStatus*] ReadyForQuery(session status)
//!   extended:  Parse (parsed once, one statement only) ─ Bind (parameter count checked) ─
//!              Describe (Session::describe, cached on the statement) ─ Execute (parameters
//!              decoded, rows encoded per column format, row limit served from the portal) ─
//!              Sync ──► ReadyForQuery(session status)
//! ```
//!
//! An error in the extended protocol is returned to pgwire, which sends it and skips messages
//! until Sync. A panic while running a statement closes this connection only (FATAL XX000).

use crate::codec::{self, FORMAT_BINARY, FORMAT_TEXT, OID_TEXT, PROTOCOL_VIOLATION};
use crate::{AuthMethod, DATABASE_NAME};
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::{Sink, SinkExt};
use pgwire::api::auth::sasl::scram::{ScramSecret, ScramServerAuth, ScramServerAuthWaitingForClientFinal};
use pgwire::api::auth::{protocol_negotiation, save_startup_parameters_to_metadata, StartupHandler};
use pgwire::api::copy::CopyHandler;
use pgwire::api::portal::{Format, Portal, PortalExecutionState};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::{Entry, PortalStore};
use pgwire::api::{
    ClientInfo, ClientPortalStore, PgWireConnectionState, PgWireServerHandlers, Type, DEFAULT_NAME, METADATA_DATABASE,
    METADATA_USER,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail, CopyInResponse, CopyOutResponse};
use pgwire::messages::data::{DataRow, FieldDescription, NoData, ParameterDescription, RowDescription};
use pgwire::messages::extendedquery::{
    Bind, BindComplete, Close, CloseComplete, Describe, Execute, Parse, ParseComplete, PortalSuspended, Sync as PgSync,
    TARGET_TYPE_BYTE_PORTAL, TARGET_TYPE_BYTE_STATEMENT,
};
use pgwire::messages::response::{
    CommandComplete, EmptyQueryResponse, NoticeResponse, ReadyForQuery, TransactionStatus,
};
use pgwire::messages::simplequery::Query;
use pgwire::messages::startup::{Authentication, BackendKeyData, ParameterStatus, PasswordMessageFamily, SecretKey};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use sql::session::CopyResponse;
use sql::{Database, ResultColumn, Session, TxnStatus, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::OwnedSemaphorePermit;

/// SQLSTATEs raised here rather than by the SQL layer.
mod codes {
    /// 3D000 invalid_catalog_name.
    pub const INVALID_CATALOG_NAME: &str = "3D000";
    /// 53300 too_many_connections.
    pub const TOO_MANY_CONNECTIONS: &str = "53300";
    /// 57P01 admin_shutdown.
    pub const ADMIN_SHUTDOWN: &str = "57P01";
    /// 28000 invalid_authorization_specification.
    pub const INVALID_AUTHORIZATION: &str = "28000";
    /// 42601 syntax_error.
    pub const SYNTAX_ERROR: &str = "42601";
    /// 26000 invalid_sql_statement_name.
    pub const INVALID_STATEMENT_NAME: &str = "26000";
    /// 34000 invalid_cursor_name.
    pub const INVALID_CURSOR_NAME: &str = "34000";
    /// XX000 internal_error.
    pub const INTERNAL_ERROR: &str = "XX000";
    /// 00000 successful_completion (the code of a plain NOTICE).
    pub const SUCCESSFUL_COMPLETION: &str = "00000";
}

/// Settings PostgreSQL reports to the client (ParameterStatus) at startup and whenever they
/// change: (name on the wire, name in the session).
const REPORTED_SETTINGS: [(&str, &str); 10] = [
    ("application_name", "application_name"),
    ("client_encoding", "client_encoding"),
    ("DateStyle", "datestyle"),
    ("default_transaction_read_only", "default_transaction_read_only"),
    ("integer_datetimes", "integer_datetimes"),
    ("IntervalStyle", "intervalstyle"),
    ("server_encoding", "server_encoding"),
    ("server_version", "server_version"),
    ("standard_conforming_strings", "standard_conforming_strings"),
    ("TimeZone", "timezone"),
];

/// What the server logs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogSettings {
    /// The slow-query threshold (None: off).
    pub(crate) min_duration_statement: Option<std::time::Duration>,
    /// Log connections and disconnections.
    pub(crate) connections: bool,
}

/// How long the idle-in-transaction watchdog sleeps when the timeout is off (the setting may
/// be turned on by SET at any time).
const IDLE_WATCH_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// The longest statement text a log line quotes.
const LOGGED_STATEMENT_CHARS_MAX: usize = 1000;

/// The SASL mechanism offered.
const SCRAM_SHA_256: &str = "SCRAM-SHA-256";
/// SQLSTATE 28P01 invalid_password.
const INVALID_PASSWORD: &str = "28P01";

/// What all connections share.
pub(crate) struct Shared {
    pub(crate) db: Database,
    /// How clients authenticate.
    pub(crate) auth: AuthMethod,
    /// What to log.
    pub(crate) log: LogSettings,
    /// Statements running now (shutdown waits for them).
    pub(crate) in_flight: AtomicUsize,
    /// Set once shutdown begins: new statements are refused.
    pub(crate) shutting_down: AtomicBool,
    /// The next BackendKeyData process id.
    next_pid: AtomicI32,
    /// Counters for /metrics.
    pub(crate) metrics: crate::http::Metrics,
    /// Cancel handles of open connections: pid -> (secret key, the session's cancel flag).
    cancels: std::sync::Mutex<BTreeMap<i32, (i32, Arc<std::sync::atomic::AtomicBool>)>>,
}

impl Shared {
    /// Whether a cancel request's process id and secret key name a session of this server.
    pub(crate) fn holds_cancel_key(&self, pid: i32, key: &[u8]) -> bool {
        let cancels = self.cancels.lock().unwrap_or_else(|e| e.into_inner());
        cancels.get(&pid).is_some_and(|(secret, _)| key == secret.to_be_bytes())
    }

    pub(crate) fn new(db: Database, log: LogSettings, auth: AuthMethod) -> Shared {
        Shared {
            db,
            auth,
            log,
            in_flight: AtomicUsize::new(0),
            shutting_down: AtomicBool::new(false),
            next_pid: AtomicI32::new(1),
            metrics: crate::http::Metrics::default(),
            cancels: std::sync::Mutex::new(BTreeMap::new()),
        }
    }
}

/// Counts a running statement from before it starts until its blocking thread is done, even
/// if the connection is dropped meanwhile.
struct InFlight(Arc<Shared>);

impl InFlight {
    fn enter(shared: &Arc<Shared>) -> InFlight {
        shared.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(shared.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let before = self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        assert!(before > 0, "in-flight statement count underflow");
    }
}

/// A statement prepared by Parse: its text, one type OID per parameter (0 = not given by the
/// client), and its result columns once described.
#[derive(Debug)]
pub struct Prepared {
    sql: String,
    param_oids: Vec<u32>,
    described: Mutex<Option<Option<Vec<ResultColumn>>>>,
    /// Types inferred from the statement for parameters the client left untyped (set at
    /// Describe; 0 where nothing said).
    inferred: Mutex<Option<Vec<u32>>>,
}

impl Prepared {
    /// The type of parameter `i`: the client's, else the inferred one, else 0 (unknown).
    fn param_oid(&self, i: usize) -> u32 {
        match self.param_oids[i] {
            0 => self.inferred.lock().expect("inferred lock").as_ref().map_or(0, |v| v[i]),
            oid => oid,
        }
    }

    /// The parameter types reported in ParameterDescription: the client's, else the
    /// inferred ones, else text.
    fn reported_param_oids(&self) -> Vec<u32> {
        (0..self.param_oids.len())
            .map(|i| match self.param_oid(i) {
                0 => OID_TEXT,
                oid => oid,
            })
            .collect()
    }

    fn cached_description(&self) -> Option<Option<Vec<ResultColumn>>> {
        self.described.lock().expect("describe cache lock").clone()
    }
}

/// Parses statements at Parse time, so syntax errors are reported there as PostgreSQL does.
#[derive(Debug, Default)]
pub struct StatementParser;

#[async_trait]
impl QueryParser for StatementParser {
    type Statement = Arc<Prepared>;

    async fn parse_sql<C>(&self, _client: &C, sql: &str, types: &[Option<Type>]) -> PgWireResult<Option<Arc<Prepared>>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let statements = sql::parser::parse(sql).map_err(sql_error)?;
        match statements.len() {
            0 => return Ok(None),
            1 => {}
            _ => {
                return Err(user_error(
                    "ERROR",
                    codes::SYNTAX_ERROR,
                    "cannot insert multiple commands into a prepared statement",
                ))
            }
        }
        let given: Vec<u32> = types.iter().map(|t| t.as_ref().map_or(0, Type::oid)).collect();
        let count = given.len().max(sql::parser::max_param_number(sql));
        let param_oids = (0..count).map(|i| given.get(i).copied().unwrap_or(0)).collect();
        Ok(Some(Arc::new(Prepared {
            sql: sql.to_string(),
            param_oids,
            described: Mutex::new(None),
            inferred: Mutex::new(None),
        })))
    }

    fn get_parameter_types(&self, stmt: &Arc<Prepared>) -> PgWireResult<Vec<Type>> {
        Ok(stmt.reported_param_oids().into_iter().map(|oid| Type::from_oid(oid).unwrap_or(Type::UNKNOWN)).collect())
    }

    fn get_result_schema(&self, _stmt: &Arc<Prepared>, _format: Option<&Format>) -> PgWireResult<Vec<FieldInfo>> {
        // Describe is answered by `Connection::on_describe`, which can reach the session.
        Ok(vec![])
    }
}

/// A connection's state: its session, and the settings last reported to the client.
pub(crate) struct Connection {
    shared: Arc<Shared>,
    session: Arc<Mutex<Session>>,
    reported: Mutex<BTreeMap<&'static str, String>>,
    parser: Arc<StatementParser>,
    /// Holds one of the `max_connections` slots until the connection ends.
    _slot: OwnedSemaphorePermit,
    /// The BackendKeyData pid, once started (its cancel handle is registered under it).
    pid: Mutex<Option<i32>>,
    /// COPY FROM data received and not yet handed to the session (below COPY_CHUNK_BYTES).
    copy_buf: Mutex<Vec<u8>>,
    /// The client's address.
    peer: std::net::SocketAddr,
    /// When the connection was accepted.
    opened: std::time::Instant,
    /// When the session last finished work (for idle_in_transaction_session_timeout).
    last_active: Mutex<std::time::Instant>,
    /// Work running on the session now.
    running: AtomicUsize,
    /// Where SCRAM authentication stands.
    auth_stage: Mutex<AuthStage>,
    /// The names of the prepared statements Parse stored, shared with the session (DEALLOCATE
    /// checks and forgets them).
    statement_names: Arc<Mutex<BTreeSet<String>>>,
}

/// SCRAM-SHA-256 authentication, between the startup message and AuthenticationOk.
enum AuthStage {
    /// Not authenticating.
    None,
    /// SASL offered; the client-first message is next.
    ClientFirst { user: String, secret: ScramSecret, known: bool },
    /// Server-first sent; the client-final message (with the proof) is next.
    ClientFinal { user: String, waiting: Box<ScramServerAuthWaitingForClientFinal>, known: bool },
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(pid) = *self.pid.lock().unwrap_or_else(|e| e.into_inner()) {
            self.shared.cancels.lock().unwrap_or_else(|e| e.into_inner()).remove(&pid);
        }
    }
}

/// The handlers pgwire calls for one connection.
pub(crate) struct Handlers(pub(crate) Arc<Connection>);

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.0.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.0.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.0.clone()
    }

    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        Arc::new(Canceller(self.0.shared.clone()))
    }

    fn copy_handler(&self) -> Arc<impl CopyHandler> {
        self.0.clone()
    }
}

/// What a batch of work on the session produced, ready to send.
struct Outcome {
    messages: Vec<PgWireBackendMessage>,
    status: TxnStatus,
    settings: Vec<(&'static str, String)>,
    /// Prepared statements DEALLOCATE forgot (None: all).
    deallocated: Vec<Option<String>>,
    /// The last statement was COPY FROM STDIN: its data comes next, not ReadyForQuery.
    copy_in: bool,
}

impl Connection {
    pub(crate) fn new(shared: Arc<Shared>, slot: OwnedSemaphorePermit, peer: std::net::SocketAddr) -> Connection {
        let mut session = shared.db.session();
        let statement_names = Arc::new(Mutex::new(BTreeSet::new()));
        session.share_statement_names(statement_names.clone());
        Connection {
            shared,
            session: Arc::new(Mutex::new(session)),
            reported: Mutex::new(BTreeMap::new()),
            parser: Arc::new(StatementParser),
            _slot: slot,
            pid: Mutex::new(None),
            copy_buf: Mutex::new(Vec::new()),
            peer,
            opened: std::time::Instant::now(),
            last_active: Mutex::new(std::time::Instant::now()),
            running: AtomicUsize::new(0),
            auth_stage: Mutex::new(AuthStage::None),
            statement_names,
        }
    }

    /// Runs `f` on the session, on this connection's own thread (see the crate docs: each
    /// connection has a thread, so a statement that waits on a row lock blocks nobody else).
    /// Refuses once shutdown has begun; a panic in `f` becomes a FATAL error that closes this
    /// connection.
    async fn run<T, F>(&self, f: F) -> PgWireResult<T>
    where
        F: FnOnce(&mut Session) -> T + Send + 'static,
        T: Send + 'static,
    {
        let guard = InFlight::enter(&self.shared);
        if self.shared.shutting_down.load(Ordering::SeqCst) {
            return Err(user_error(
                "FATAL",
                codes::ADMIN_SHUTDOWN,
                "terminating connection due to administrator command",
            ));
        }
        self.running.fetch_add(1, Ordering::SeqCst);
        // A poisoned lock means an earlier statement panicked with the session half changed.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut session = self.session.lock().ok()?;
            Some(f(&mut session))
        }));
        drop(guard);
        *self.last_active.lock().unwrap_or_else(|e| e.into_inner()) = std::time::Instant::now();
        self.running.fetch_sub(1, Ordering::SeqCst);
        match outcome {
            Ok(Some(v)) => Ok(v),
            Ok(None) => {
                Err(user_error("FATAL", codes::INTERNAL_ERROR, "session unusable after an earlier internal error"))
            }
            Err(_) => {
                tracing::error!(peer = %self.peer, "statement failed with an internal error (panic); closing its connection");
                Err(user_error("FATAL", codes::INTERNAL_ERROR, "internal error while running the statement"))
            }
        }
    }

    /// The session's status without waiting: statements of this connection have all returned
    /// by the time it is asked for.
    fn status(&self) -> TxnStatus {
        match self.session.try_lock() {
            Ok(s) => s.status(),
            Err(_) => TxnStatus::Failed,
        }
    }

    /// Sends ParameterStatus for each reported setting whose value changed.
    async fn report_settings<C>(&self, client: &mut C, settings: Vec<(&'static str, String)>) -> PgWireResult<()>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let changed: Vec<_> = {
            let mut reported = self.reported.lock().expect("reported settings lock");
            settings
                .into_iter()
                .filter(|(name, value)| reported.insert(name, value.clone()).as_ref() != Some(value))
                .collect()
        };
        for (name, value) in changed {
            client.feed(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(name.into(), value))).await?;
        }
        Ok(())
    }

    /// The result columns of a prepared statement, described once and cached.
    async fn describe(&self, prepared: &Arc<Prepared>) -> PgWireResult<Option<Vec<ResultColumn>>> {
        if let Some(cached) = prepared.cached_description() {
            return Ok(cached);
        }
        let p = prepared.clone();
        let columns = self.run(move |s| s.describe(&p.sql)).await?.map_err(sql_error)?;
        *prepared.described.lock().expect("describe cache lock") = Some(columns.clone());
        Ok(columns)
    }

    /// Infers the types of parameters the client left untyped, once per statement.
    async fn infer_params(&self, prepared: &Arc<Prepared>) -> PgWireResult<()> {
        if !prepared.param_oids.contains(&0) || prepared.inferred.lock().expect("inferred lock").is_some() {
            return Ok(());
        }
        let p = prepared.clone();
        let count = prepared.param_oids.len();
        // A statement the SQL layer cannot analyse keeps unknown (text) parameters.
        let types = self.run(move |s| s.describe_params(&p.sql, count)).await?.unwrap_or_else(|_| vec![None; count]);
        let oids = types.iter().map(|t| t.as_ref().map_or(0, |t| t.oid())).collect();
        *prepared.inferred.lock().expect("inferred lock") = Some(oids);
        Ok(())
    }
}

// ---- Startup ------------------------------------------------------------------------------

#[async_trait]
impl StartupHandler for Connection {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(startup) => {
                protocol_negotiation(client, &startup).await?;
                save_startup_parameters_to_metadata(client, &startup);
                let Some(user) = client.metadata().get(METADATA_USER).cloned() else {
                    return refuse(
                        client,
                        codes::INVALID_AUTHORIZATION,
                        "no PostgreSQL user name specified in startup packet",
                    )
                    .await;
                };
                let database = client.metadata().get(METADATA_DATABASE).cloned().unwrap_or_else(|| user.clone());
                if database != DATABASE_NAME {
                    return refuse(
                        client,
                        codes::INVALID_CATALOG_NAME,
                        &format!("database \"{database}\" does not exist"),
                    )
                    .await;
                }
                let db = self.shared.db.clone();
                let lookup = user.clone();
                let role = match self.run(move |_| db.role(&lookup)).await? {
                    Ok(r) => r,
                    Err(e) => return refuse(client, codes::INTERNAL_ERROR, &e.message).await,
                };
                match self.shared.auth {
                    AuthMethod::Trust => {
                        let Some(role) = role else {
                            return refuse(
                                client,
                                codes::INVALID_AUTHORIZATION,
                                &format!("role \"{user}\" does not exist"),
                            )
                            .await;
                        };
                        if !role.login {
                            return self.refuse_login(client, &user).await;
                        }
                        self.finish_startup(client, user, "trust").await
                    }
                    AuthMethod::ScramSha256 => {
                        // An unknown role, or one without a password or login, still goes
                        // through the exchange (against a secret nobody knows) and fails at
                        // its end, so the reply does not tell which roles exist.
                        let known = role.as_ref().is_some_and(|r| r.login && r.verifier.is_some());
                        let verifier = role.and_then(|r| r.verifier).and_then(|v| sql::roles::parse_verifier(&v));
                        let secret = match verifier {
                            Some(v) if known => ScramSecret::Verifier {
                                salt: v.salt,
                                iterations: v.iterations as usize,
                                stored_key: v.stored_key,
                                server_key: v.server_key,
                            },
                            _ => unknown_secret(&user),
                        };
                        *self.auth_stage.lock().unwrap_or_else(|e| e.into_inner()) =
                            AuthStage::ClientFirst { user, secret, known };
                        client.set_state(PgWireConnectionState::AuthenticationInProgress);
                        client
                            .send(PgWireBackendMessage::Authentication(Authentication::SASL(vec![
                                SCRAM_SHA_256.to_string()
                            ])))
                            .await?;
                        Ok(())
                    }
                }
            }
            PgWireFrontendMessage::PasswordMessageFamily(message) => {
                let stage =
                    std::mem::replace(&mut *self.auth_stage.lock().unwrap_or_else(|e| e.into_inner()), AuthStage::None);
                match stage {
                    AuthStage::ClientFirst { user, secret, known } => {
                        // pgwire's decoder reads the body's lengths unchecked.
                        let well_formed = match &message {
                            PasswordMessageFamily::Raw(body) => crate::protocol::sasl_initial_response_ok(body),
                            _ => true,
                        };
                        if !well_formed {
                            return Err(user_error(
                                "FATAL",
                                PROTOCOL_VIOLATION,
                                "malformed SASLInitialResponse message",
                            ));
                        }
                        let initial = message.into_sasl_initial_response()?;
                        if initial.auth_method != SCRAM_SHA_256 {
                            return self.refuse_password(client, &user, "unsupported SASL mechanism").await;
                        }
                        let data = initial.data.unwrap_or_default();
                        match ScramServerAuth::new().on_client_first_message_with_secret(&data, secret) {
                            Ok((server_first, waiting)) => {
                                *self.auth_stage.lock().unwrap_or_else(|e| e.into_inner()) =
                                    AuthStage::ClientFinal { user, waiting: Box::new(waiting), known };
                                client
                                    .send(PgWireBackendMessage::Authentication(Authentication::SASLContinue(
                                        Bytes::from(server_first),
                                    )))
                                    .await?;
                                Ok(())
                            }
                            Err(e) => self.refuse_password(client, &user, &e.to_string()).await,
                        }
                    }
                    AuthStage::ClientFinal { user, waiting, known } => {
                        let response = message.into_sasl_response()?;
                        match waiting.on_client_final_message(&response.data) {
                            Ok(server_final) if known => {
                                client
                                    .feed(PgWireBackendMessage::Authentication(Authentication::SASLFinal(Bytes::from(
                                        server_final,
                                    ))))
                                    .await?;
                                self.finish_startup(client, user, "scram-sha-256").await
                            }
                            Ok(_) => {
                                self.refuse_password(client, &user, "no such role with a password and LOGIN").await
                            }
                            Err(e) => self.refuse_password(client, &user, &e.to_string()).await,
                        }
                    }
                    AuthStage::None => Err(user_error("FATAL", PROTOCOL_VIOLATION, "unexpected password message")),
                }
            }
            // Authentication in progress: only the password family may come.
            other => Err(user_error(
                "FATAL",
                PROTOCOL_VIOLATION,
                &format!("expected SASL response, got message type {}", message_name(&other)),
            )),
        }
    }
}

impl Connection {
    async fn refuse_login<C>(&self, client: &mut C, user: &str) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        tracing::warn!(peer = %self.peer, user, "authentication refused: role may not log in");
        refuse(client, codes::INVALID_AUTHORIZATION, &format!("role \"{user}\" is not permitted to log in")).await
    }

    async fn refuse_password<C>(&self, client: &mut C, user: &str, why: &str) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        tracing::warn!(peer = %self.peer, user, reason = why, "password authentication failed");
        refuse(client, INVALID_PASSWORD, &format!("password authentication failed for user \"{user}\"")).await
    }

    /// Authentication succeeded: settings, the cancel key, ReadyForQuery.
    async fn finish_startup<C>(&self, client: &mut C, user: String, auth: &'static str) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let application_name = client.metadata().get("application_name").cloned().unwrap_or_default();
        let options = startup_options(client.metadata().get("options").map(String::as_str).unwrap_or_default());
        let session_user = user.clone();
        let settings = self
            .run(move |s| {
                s.set_user(&session_user);
                // `options` (libpq's PGOPTIONS) first, then the other startup parameters, as
                // PostgreSQL applies them; a bad option ends the startup, as there.
                for (name, value) in options {
                    let set = format!("SET {name} = '{}'", value.replace('\'', "''"));
                    if let Some(Err(e)) = s.execute(&set).pop() {
                        return Err(e);
                    }
                }
                if !application_name.is_empty() {
                    let set = format!("SET application_name = '{}'", application_name.replace('\'', "''"));
                    if let Some(Err(e)) = s.execute(&set).pop() {
                        tracing::info!(application_name, error = %e, "ignoring application_name");
                    }
                }
                s.mark_session_start();
                Ok(reported_settings(s))
            })
            .await?
            .map_err(|e| user_error("FATAL", e.code, &e.message))?;
        client.feed(PgWireBackendMessage::Authentication(Authentication::Ok)).await?;
        self.report_settings(client, settings).await?;
        let superuser = self.shared.db.role(&user).ok().flatten().is_some_and(|r| r.superuser);
        let is_superuser = if superuser { "on" } else { "off" };
        for (name, value) in [("is_superuser", is_superuser.to_string()), ("session_authorization", user.clone())] {
            client.feed(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(name.into(), value))).await?;
        }
        let pid = self.shared.next_pid.fetch_add(1, Ordering::Relaxed);
        // The secret a CancelRequest must quote: unguessable enough for loopback clients.
        let secret = {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_i32(pid);
            h.finish() as i32
        };
        let flag = match self.session.lock() {
            Ok(session) => session.cancel_handle(),
            Err(_) => return Err(user_error("FATAL", codes::INTERNAL_ERROR, "session unusable")),
        };
        self.shared.cancels.lock().unwrap_or_else(|e| e.into_inner()).insert(pid, (secret, flag));
        *self.pid.lock().unwrap_or_else(|e| e.into_inner()) = Some(pid);
        self.session.lock().unwrap_or_else(|e| e.into_inner()).set_backend_pid(pid);
        if self.shared.log.connections {
            tracing::info!(peer = %self.peer, user = %user, database = DATABASE_NAME, pid, auth, "connection authorized");
        }
        client.set_pid_and_secret_key(pid, SecretKey::I32(secret));
        client.feed(PgWireBackendMessage::BackendKeyData(BackendKeyData::new(pid, SecretKey::I32(secret)))).await?;
        client.send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(TransactionStatus::Idle))).await?;
        client.set_state(PgWireConnectionState::ReadyForQuery);
        Ok(())
    }
}

/// The settings a startup message's `options` give: `-c name=value` and `--name=value`,
/// separated by spaces (a backslash keeps the next character, a space included). Names are
/// kept only if they are plain identifiers (letters, digits, `_` and `.`), so a name cannot
/// carry SQL into the SET that applies it.
pub fn startup_options(options: &str) -> Vec<(String, String)> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = options.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => word.extend(chars.next()),
            ' ' | '\t' => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    let mut out = Vec::new();
    let mut words = words.into_iter();
    while let Some(w) = words.next() {
        let setting = match w.as_str() {
            "-c" => words.next(),
            _ => w.strip_prefix("--").or_else(|| w.strip_prefix("-c")).map(str::to_string),
        };
        let Some((name, value)) = setting.as_deref().and_then(|s| s.split_once('=')) else { continue };
        let name = name.replace('-', "_");
        if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
            out.push((name, value.to_string()));
        }
    }
    out
}

/// A frontend message's name, for errors.
fn message_name(m: &PgWireFrontendMessage) -> &'static str {
    match m {
        PgWireFrontendMessage::SslNegotiation(_) => "SSLRequest",
        PgWireFrontendMessage::Startup(_) => "StartupMessage",
        PgWireFrontendMessage::CancelRequest(_) => "CancelRequest",
        PgWireFrontendMessage::PasswordMessageFamily(_) => "PasswordMessage",
        PgWireFrontendMessage::Query(_) => "Query",
        PgWireFrontendMessage::Parse(_) => "Parse",
        PgWireFrontendMessage::Close(_) => "Close",
        PgWireFrontendMessage::Bind(_) => "Bind",
        PgWireFrontendMessage::Describe(_) => "Describe",
        PgWireFrontendMessage::Execute(_) => "Execute",
        PgWireFrontendMessage::PortalSuspended(_) => "PortalSuspended",
        PgWireFrontendMessage::Flush(_) => "Flush",
        PgWireFrontendMessage::Sync(_) => "Sync",
        PgWireFrontendMessage::Terminate(_) => "Terminate",
        PgWireFrontendMessage::CopyData(_) => "CopyData",
        PgWireFrontendMessage::CopyFail(_) => "CopyFail",
        PgWireFrontendMessage::CopyDone(_) => "CopyDone",
    }
}

/// A SCRAM secret no password matches (random salt and keys), for roles that cannot log in
/// with a password.
fn unknown_secret(user: &str) -> ScramSecret {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 80];
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        // No randomness: keys derived from the name still match no password's proof.
        for (i, b) in user.bytes().cycle().take(bytes.len()).enumerate() {
            bytes[i] = b ^ (i as u8);
        }
    }
    ScramSecret::Verifier {
        salt: bytes[..16].to_vec(),
        iterations: sql::roles::SCRAM_ITERATIONS as usize,
        stored_key: bytes[16..48].to_vec(),
        server_key: bytes[48..80].to_vec(),
    }
}

/// Sends a FATAL error during startup and closes the connection, as PostgreSQL does (no
/// ReadyForQuery follows).
async fn refuse<C>(client: &mut C, code: &str, message: &str) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let info = error_info("FATAL", code, message);
    client.send(PgWireBackendMessage::ErrorResponse(info.into())).await?;
    client.close().await?;
    Ok(())
}

/// Serves CancelRequests (they arrive on a connection of their own): sets the cancel flag of
/// the session whose pid and secret key match.
pub(crate) struct Canceller(pub(crate) Arc<Shared>);

#[async_trait]
impl pgwire::api::cancel::CancelHandler for Canceller {
    async fn on_cancel_request(&self, request: pgwire::messages::cancel::CancelRequest) {
        // The key comes back as the 4 bytes BackendKeyData sent (big-endian).
        let secret = match &request.secret_key {
            SecretKey::I32(s) => *s,
            SecretKey::Bytes(b) if b.len() == 4 => i32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            SecretKey::Bytes(_) => return,
        };
        let cancels = self.0.cancels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((expected, flag)) = cancels.get(&request.pid) {
            if *expected == secret {
                flag.store(true, Ordering::Relaxed);
            }
        }
    }
}

/// The handlers for a connection over `max_connections`: FATAL 53300 at startup. A cancel
/// request is still served: it needs no slot.
pub(crate) struct Refusal(pub(crate) Arc<Shared>);

#[async_trait]
impl StartupHandler for Refusal {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let PgWireFrontendMessage::Startup(startup) = message {
            protocol_negotiation(client, &startup).await?;
            refuse(client, codes::TOO_MANY_CONNECTIONS, "sorry, too many clients already").await?;
        }
        Ok(())
    }
}

impl PgWireServerHandlers for Refusal {
    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        Arc::new(Refusal(self.0.clone()))
    }

    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        Arc::new(Canceller(self.0.clone()))
    }
}

// ---- Simple query protocol ----------------------------------------------------------------

#[async_trait]
impl SimpleQueryHandler for Connection {
    async fn on_query<C>(&self, client: &mut C, query: Query) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let sql = query.query;
        let outcome = if sql.chars().all(|c| c == ';' || c.is_whitespace()) {
            Outcome {
                messages: vec![PgWireBackendMessage::EmptyQueryResponse(EmptyQueryResponse::new())],
                status: self.status(),
                settings: vec![],
                deallocated: vec![],
                copy_in: false,
            }
        } else {
            let shared = self.shared.clone();
            self.run(move |s| simple_query(s, &sql, &shared)).await?
        };
        self.forget_statements(client, outcome.deallocated);
        for m in outcome.messages {
            client.feed(m).await?;
        }
        self.report_settings(client, outcome.settings).await?;
        let status = wire_status(outcome.status);
        client.set_transaction_status(status);
        if outcome.copy_in {
            self.copy_buffer().clear();
            client.set_state(PgWireConnectionState::CopyInProgress(false));
            client.flush().await?;
            return Ok(());
        }
        client.set_state(PgWireConnectionState::ReadyForQuery);
        client.send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(status))).await?;
        Ok(())
    }

    async fn do_query<C>(&self, _client: &mut C, _query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        unreachable!("on_query answers simple queries itself")
    }
}

/// Runs every statement of a simple Query; replies in order, stopping at the first error.
fn simple_query(s: &mut Session, sql: &str, shared: &Shared) -> Outcome {
    let start = std::time::Instant::now();
    let results = s.execute_with(sql, &[]);
    let elapsed = start.elapsed();
    let each = elapsed / results.len().max(1) as u32;
    for r in &results {
        shared.metrics.statement(r.as_ref().map(|q| q.tag.as_str()).map_err(|e| e.code), each);
    }
    log_statement(shared, sql, elapsed, results.last().and_then(|r| r.as_ref().err()));
    let mut messages = Vec::new();
    let mut copy_in = false;
    if results.is_empty() {
        messages.push(PgWireBackendMessage::EmptyQueryResponse(EmptyQueryResponse::new()));
    }
    for result in results {
        match result.and_then(|r| encode_result(r, None, |_| FORMAT_TEXT)) {
            Ok(Encoded { notices, copy: Some(copy), tag, .. }) => {
                messages.extend(notices);
                copy_in = copy_messages(copy, tag, &mut messages);
            }
            Ok(encoded) => {
                messages.extend(encoded.notices);
                if let Some(columns) = encoded.columns {
                    messages.push(PgWireBackendMessage::RowDescription(columns));
                }
                messages.extend(encoded.rows.into_iter().map(PgWireBackendMessage::DataRow));
                messages.push(PgWireBackendMessage::CommandComplete(CommandComplete::new(encoded.tag)));
            }
            Err(e) => messages.push(PgWireBackendMessage::ErrorResponse(sql_error_info(e).into())),
        }
    }
    Outcome { messages, status: s.status(), settings: reported_settings(s), deallocated: s.take_deallocated(), copy_in }
}

/// The slow-query log, and statement errors.
fn log_statement(shared: &Shared, sql: &str, elapsed: std::time::Duration, error: Option<&sql::Error>) {
    let statement = || -> String {
        let mut text: String = sql.chars().take(LOGGED_STATEMENT_CHARS_MAX).collect();
        if text.len() < sql.len() {
            text.push_str("...");
        }
        text
    };
    if let Some(e) = error {
        tracing::info!(sqlstate = e.code, message = %e.message, statement = %statement(), "statement failed");
    }
    if shared.log.min_duration_statement.is_some_and(|min| elapsed >= min) {
        tracing::warn!(duration_ms = elapsed.as_secs_f64() * 1000.0, statement = %statement(), "slow statement");
    }
}

/// A statement's result, encoded.
struct Encoded {
    notices: Vec<PgWireBackendMessage>,
    columns: Option<RowDescription>,
    rows: Vec<DataRow>,
    tag: String,
    /// COPY's data out or request for data in.
    copy: Option<CopyResponse>,
}

/// Encodes a result in the column formats `format_of(column)` asks for. Values are converted
/// to the types of `declared` (the columns a Describe reported) when it matches the result's
/// shape, else to the result's own column types, so DataRows agree with the RowDescription.
fn encode_result(
    r: sql::QueryResult,
    declared: Option<&[ResultColumn]>,
    format_of: impl Fn(usize) -> i16,
) -> sql::Result<Encoded> {
    let notices = r.notices.iter().map(|n| notice(n)).collect();
    let Some(mut columns) = r.columns else {
        return Ok(Encoded { notices, columns: None, rows: vec![], tag: r.tag, copy: r.copy });
    };
    if let Some(declared) = declared.filter(|d| d.len() == columns.len()) {
        for (c, d) in columns.iter_mut().zip(declared) {
            c.data_type = d.data_type.clone();
        }
    }
    let mut rows = Vec::with_capacity(r.rows.len());
    for row in r.rows {
        assert_eq!(row.len(), columns.len(), "a row has one value per result column");
        let mut buf = BytesMut::new();
        for (i, (v, c)) in row.into_iter().zip(&columns).enumerate() {
            codec::put_typed_field(&mut buf, &codec::conform(v, &c.data_type)?, &c.data_type, format_of(i));
        }
        rows.push(DataRow::new(buf, columns.len() as i16));
    }
    let description = row_description(&columns, format_of);
    Ok(Encoded { notices, columns: Some(description), rows, tag: r.tag, copy: None })
}

fn row_description(columns: &[ResultColumn], format_of: impl Fn(usize) -> i16) -> RowDescription {
    RowDescription::new(
        columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                FieldDescription::new(
                    c.name.clone(),
                    0,
                    0,
                    c.data_type.oid(),
                    codec::type_size(&c.data_type),
                    codec::type_modifier(&c.data_type),
                    format_of(i),
                )
            })
            .collect(),
    )
}

// ---- Idle sessions --------------------------------------------------------------------------

/// Completes when the connection has sat in a transaction block longer than its
/// idle_in_transaction_session_timeout, after rolling the transaction back (its locks are
/// released at once); gives the timeout. Never completes otherwise.
pub(crate) async fn idle_watch(conn: Arc<Connection>) -> std::time::Duration {
    loop {
        let wait = {
            let idle_for = conn.last_active.lock().unwrap_or_else(|e| e.into_inner()).elapsed();
            match conn.session.try_lock() {
                Ok(mut s) if conn.running.load(Ordering::SeqCst) == 0 && s.status() != TxnStatus::Idle => {
                    match s.idle_in_transaction_timeout() {
                        Some(timeout) if idle_for >= timeout => {
                            s.terminate();
                            return timeout;
                        }
                        Some(timeout) => timeout - idle_for,
                        None => IDLE_WATCH_POLL,
                    }
                }
                Ok(s) => s.idle_in_transaction_timeout().unwrap_or(IDLE_WATCH_POLL).min(IDLE_WATCH_POLL),
                Err(_) => IDLE_WATCH_POLL, // a statement runs: not idle
            }
        };
        tokio::time::sleep(wait.max(std::time::Duration::from_millis(1))).await;
    }
}

/// An ErrorResponse with severity FATAL, encoded for the wire.
pub(crate) fn fatal_message(code: &str, message: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for (field, value) in [(b'S', "FATAL"), (b'V', "FATAL"), (b'C', code), (b'M', message)] {
        body.push(field);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut out = vec![b'E'];
    out.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

impl Connection {
    /// Logs the end of the connection.
    pub(crate) fn log_end(&self) {
        if self.shared.log.connections {
            tracing::info!(peer = %self.peer, session_ms = self.opened.elapsed().as_millis() as u64, "disconnection");
        }
    }
}

// ---- COPY ----------------------------------------------------------------------------------

/// COPY FROM data is handed to the session in chunks of about this many bytes: one trip to
/// the session's thread per chunk instead of per CopyData message (clients send one per row).
pub const COPY_CHUNK_BYTES: usize = 256 << 10;

/// Appends the messages that start COPY FROM STDIN (true) or carry COPY TO STDOUT (false).
fn copy_messages(copy: CopyResponse, tag: String, messages: &mut Vec<PgWireBackendMessage>) -> bool {
    match copy {
        CopyResponse::In { columns } => {
            let formats = vec![FORMAT_TEXT; columns];
            messages.push(PgWireBackendMessage::CopyInResponse(CopyInResponse::new(0, columns as i16, formats)));
            true
        }
        CopyResponse::Out { columns, lines } => {
            let formats = vec![FORMAT_TEXT; columns];
            messages.push(PgWireBackendMessage::CopyOutResponse(CopyOutResponse::new(0, columns as i16, formats)));
            for line in lines {
                messages.push(PgWireBackendMessage::CopyData(CopyData::new(Bytes::from(line))));
            }
            messages.push(PgWireBackendMessage::CopyDone(CopyDone::new()));
            messages.push(PgWireBackendMessage::CommandComplete(CommandComplete::new(tag)));
            false
        }
    }
}

impl Connection {
    fn copy_buffer(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.copy_buf.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl CopyHandler for Connection {
    async fn on_copy_data<C>(&self, _client: &mut C, copy_data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let chunk = {
            let mut buf = self.copy_buffer();
            buf.extend_from_slice(&copy_data.data);
            if buf.len() < COPY_CHUNK_BYTES {
                return Ok(());
            }
            std::mem::take(&mut *buf)
        };
        match self.run(move |s| s.copy_data(&chunk)).await? {
            Ok(()) => Ok(()),
            Err(e) => {
                self.copy_buffer().clear();
                Err(sql_error(e))
            }
        }
    }

    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let chunk = std::mem::take(&mut *self.copy_buffer());
        let shared = self.shared.clone();
        let (result, status) = self
            .run(move |s| {
                let start = std::time::Instant::now();
                let r = s.copy_data(&chunk).and_then(|_| s.copy_done());
                shared.metrics.statement(r.as_ref().map(|q| q.tag.as_str()).map_err(|e| e.code), start.elapsed());
                (r, s.status())
            })
            .await?;
        client.set_transaction_status(wire_status(status));
        let result = result.map_err(sql_error)?;
        client.send(PgWireBackendMessage::CommandComplete(CommandComplete::new(result.tag))).await?;
        Ok(())
    }

    async fn on_copy_fail<C>(&self, client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.copy_buffer().clear();
        match self.run(move |s| (s.copy_fail(&fail.message), s.status())).await {
            Ok((e, status)) => {
                client.set_transaction_status(wire_status(status));
                sql_error(e)
            }
            Err(e) => e,
        }
    }
}

// ---- Extended query protocol --------------------------------------------------------------

#[async_trait]
impl ExtendedQueryHandler for Connection {
    type Statement = Arc<Prepared>;
    type QueryParser = StatementParser;

    fn query_parser(&self) -> Arc<StatementParser> {
        self.parser.clone()
    }

    async fn on_parse<C>(&self, client: &mut C, message: Parse) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.clone().unwrap_or_else(|| DEFAULT_NAME.to_owned());
        match StoredStatement::parse(client, &message, self.query_parser()).await? {
            Some(stmt) => client.portal_store().put_statement(Arc::new(stmt)),
            None => client.portal_store().put_empty_statement(&name),
        }
        self.statement_names.lock().unwrap_or_else(|e| e.into_inner()).insert(name);
        client.send(PgWireBackendMessage::ParseComplete(ParseComplete::new())).await?;
        Ok(())
    }

    async fn on_bind<C>(&self, client: &mut C, message: Bind) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.statement_name.as_deref().unwrap_or(DEFAULT_NAME);
        let (required, statement) = match client.portal_store().get_statement(name) {
            Some(Entry::Value(s)) => (s.statement.param_oids.len(), Some(s)),
            Some(Entry::Empty) => (0, None),
            None => return Err(statement_not_found(name)),
        };
        let supplied = message.parameters.len();
        if supplied != required {
            return Err(user_error(
                "ERROR",
                PROTOCOL_VIOLATION,
                &format!(
                    "bind message supplies {supplied} parameters, but prepared statement \"{}\" requires {required}",
                    display_name(name)
                ),
            ));
        }
        let formats = message.parameter_format_codes.len();
        if formats > 1 && formats != supplied {
            return Err(user_error(
                "ERROR",
                PROTOCOL_VIOLATION,
                &format!("bind message has {formats} parameter formats but {supplied} parameters"),
            ));
        }
        // A parameter sent in binary without a type is read as the type the statement gives it.
        if let Some(s) = &statement {
            if message.parameter_format_codes.contains(&1) {
                self.infer_params(&s.statement).await?;
            }
        }
        match statement {
            Some(s) => client.portal_store().put_portal(Arc::new(Portal::try_new(&message, s)?)),
            None => client.portal_store().put_empty_portal(message.portal_name.as_deref().unwrap_or(DEFAULT_NAME)),
        }
        client.feed(PgWireBackendMessage::BindComplete(BindComplete::new())).await?;
        Ok(())
    }

    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        let (columns, formats) = match message.target_type {
            TARGET_TYPE_BYTE_STATEMENT => {
                let statement = match client.portal_store().get_statement(name) {
                    Some(Entry::Value(s)) => Some(s),
                    Some(Entry::Empty) => None,
                    None => return Err(statement_not_found(name)),
                };
                if let Some(s) = &statement {
                    self.infer_params(&s.statement).await?;
                }
                let params = statement.as_ref().map(|s| s.statement.reported_param_oids()).unwrap_or_default();
                client.feed(PgWireBackendMessage::ParameterDescription(ParameterDescription::new(params))).await?;
                match statement {
                    Some(s) => (self.describe(&s.statement).await?, Format::UnifiedText),
                    None => (None, Format::UnifiedText),
                }
            }
            TARGET_TYPE_BYTE_PORTAL => match client.portal_store().get_portal(name) {
                Some(Entry::Value(p)) => (self.describe(&p.statement.statement).await?, p.result_column_format.clone()),
                Some(Entry::Empty) => (None, Format::UnifiedText),
                None => return Err(portal_not_found(name)),
            },
            other => {
                return Err(user_error(
                    "ERROR",
                    PROTOCOL_VIOLATION,
                    &format!("invalid DESCRIBE message subtype {}", other as char),
                ))
            }
        };
        match columns {
            Some(columns) => {
                let formats = format_codes(&formats, columns.len())?;
                let description = row_description(&columns, |i| formats[i]);
                client.feed(PgWireBackendMessage::RowDescription(description)).await?;
            }
            None => client.feed(PgWireBackendMessage::NoData(NoData::new())).await?,
        }
        Ok(())
    }

    async fn on_execute<C>(&self, client: &mut C, message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        let portal = match client.portal_store().get_portal(name) {
            Some(Entry::Value(p)) => p,
            Some(Entry::Empty) => {
                client.feed(PgWireBackendMessage::EmptyQueryResponse(EmptyQueryResponse::new())).await?;
                return Ok(());
            }
            None => return Err(portal_not_found(name)),
        };
        // max_rows <= 0 means all rows.
        let max_rows = usize::try_from(message.max_rows).unwrap_or(0);
        let started = !matches!(*portal.state().lock().await, PortalExecutionState::Initial);
        if started {
            return fetch_more(client, &portal, max_rows).await;
        }
        let prepared = portal.statement.statement.clone();
        let declared = self.describe_if_cached(&prepared);
        let params = portal.parameters.clone();
        let param_format = portal.parameter_format.clone();
        let result_format = portal.result_column_format.clone();
        let shared = self.shared.clone();
        let (result, status, settings, deallocated) = self
            .run(move |s| {
                let start = std::time::Instant::now();
                let r = execute_portal(s, &prepared, declared.as_deref(), &params, &param_format, &result_format);
                let outcome = match &r {
                    Ok(encoded) => Ok(encoded.tag.as_str()),
                    Err(_) => Err("XX"),
                };
                shared.metrics.statement(outcome, start.elapsed());
                log_statement(&shared, &prepared.sql, start.elapsed(), None);
                (r, s.status(), reported_settings(s), s.take_deallocated())
            })
            .await?;
        self.forget_statements(client, deallocated);
        client.set_transaction_status(wire_status(status));
        let encoded = match result {
            Ok(encoded) => encoded,
            Err(e) => {
                // The settings were read (and the change taken): send them before the error.
                self.report_settings(client, settings).await?;
                return Err(e);
            }
        };
        for n in encoded.notices {
            client.feed(n).await?;
        }
        self.report_settings(client, settings).await?;
        if let Some(copy) = encoded.copy {
            let mut messages = Vec::new();
            let copy_in = copy_messages(copy, encoded.tag, &mut messages);
            for m in messages {
                client.feed(m).await?;
            }
            *portal.state().lock().await = PortalExecutionState::Finished;
            if copy_in {
                self.copy_buffer().clear();
                client.set_state(PgWireConnectionState::CopyInProgress(true));
            }
            client.flush().await?;
            return Ok(());
        }
        if encoded.columns.is_none() || max_rows == 0 || encoded.rows.len() <= max_rows {
            for row in encoded.rows {
                client.feed(PgWireBackendMessage::DataRow(row)).await?;
            }
            *portal.state().lock().await = PortalExecutionState::Finished;
            client.feed(PgWireBackendMessage::CommandComplete(CommandComplete::new(encoded.tag))).await?;
            return Ok(());
        }
        // More rows than asked for: keep them in the portal for the next Execute.
        let prefix = tag_without_count(&encoded.tag);
        let mut response =
            QueryResponse::new(Arc::new(vec![]), futures::stream::iter(encoded.rows.into_iter().map(Ok)));
        response.set_command_tag(&prefix);
        portal.start(response).await;
        fetch_more(client, &portal, max_rows).await
    }

    async fn on_sync<C>(&self, client: &mut C, _message: PgSync) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        client.portal_store().rm_portal(DEFAULT_NAME);
        let status = wire_status(self.status());
        client.set_transaction_status(status);
        client.send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(status))).await?;
        Ok(())
    }

    async fn on_close<C>(&self, client: &mut C, message: Close) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        match message.target_type {
            TARGET_TYPE_BYTE_STATEMENT => {
                client.portal_store().rm_statement(name);
                self.statement_names.lock().unwrap_or_else(|e| e.into_inner()).remove(name);
            }
            TARGET_TYPE_BYTE_PORTAL => client.portal_store().rm_portal(name),
            other => {
                return Err(user_error(
                    "ERROR",
                    PROTOCOL_VIOLATION,
                    &format!("invalid CLOSE message subtype {}", other as char),
                ))
            }
        }
        client.feed(PgWireBackendMessage::CloseComplete(CloseComplete::new())).await?;
        Ok(())
    }

    async fn do_query<C>(
        &self,
        _client: &mut C,
        _portal: &Portal<Arc<Prepared>>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        unreachable!("on_execute answers Execute itself")
    }
}

impl Connection {
    /// Removes the prepared statements DEALLOCATE named (None: all) from the protocol's store.
    fn forget_statements<C: ClientPortalStore>(&self, client: &mut C, deallocated: Vec<Option<String>>)
    where
        C::PortalStore: PortalStore,
    {
        if deallocated.is_empty() {
            return;
        }
        let mut names = self.statement_names.lock().unwrap_or_else(|e| e.into_inner());
        for name in deallocated {
            match name {
                Some(name) => {
                    client.portal_store().rm_statement(&name);
                    names.remove(&name);
                }
                None => {
                    for name in std::mem::take(&mut *names) {
                        client.portal_store().rm_statement(&name);
                    }
                }
            }
        }
    }

    /// The described columns, if this statement was described (the client then decodes by them).
    fn describe_if_cached(&self, prepared: &Prepared) -> Option<Vec<ResultColumn>> {
        prepared.cached_description().flatten()
    }
}

/// Sends up to `max_rows` more rows of a started portal, then PortalSuspended or
/// CommandComplete.
async fn fetch_more<C>(client: &mut C, portal: &Portal<Arc<Prepared>>, max_rows: usize) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    if matches!(*portal.state().lock().await, PortalExecutionState::Finished) {
        // PostgreSQL answers a finished portal with an empty completion.
        client.feed(PgWireBackendMessage::CommandComplete(CommandComplete::new("SELECT 0".into()))).await?;
        return Ok(());
    }
    let fetched = portal.fetch(max_rows).await?;
    let mut response = fetched.response;
    let prefix = response.command_tag().to_string();
    let mut sent = 0;
    while let Some(row) = futures::StreamExt::next(response.data_rows()).await {
        client.feed(PgWireBackendMessage::DataRow(row?)).await?;
        sent += 1;
    }
    if fetched.suspended {
        client.feed(PgWireBackendMessage::PortalSuspended(PortalSuspended::new())).await?;
    } else {
        client.feed(PgWireBackendMessage::CommandComplete(Tag::new(&prefix).with_rows(sent).into())).await?;
    }
    Ok(())
}

/// Decodes a portal's parameters, runs its statement and encodes the result.
fn execute_portal(
    s: &mut Session,
    prepared: &Prepared,
    declared: Option<&[ResultColumn]>,
    raw: &[Option<Bytes>],
    param_format: &Format,
    result_format: &Format,
) -> PgWireResult<Encoded> {
    let param_formats = format_codes(param_format, raw.len())?;
    let params = raw
        .iter()
        .enumerate()
        .map(|(i, b)| codec::decode_param(i, prepared.param_oid(i), param_formats[i], b.as_deref()))
        .collect::<sql::Result<Vec<Value>>>()
        .map_err(sql_error)?;
    let mut results = s.execute_with(&prepared.sql, &params);
    assert!(results.len() <= 1, "Parse admits one statement");
    let Some(result) = results.pop() else {
        return Ok(Encoded { notices: vec![], columns: None, rows: vec![], tag: "EMPTY".into(), copy: None });
    };
    let result = result.map_err(sql_error)?;
    let ncols = result.columns.as_ref().map_or(0, Vec::len);
    let formats = format_codes(result_format, ncols)?;
    encode_result(result, declared, |i| formats[i]).map_err(sql_error)
}

/// One format code per column from a Bind's codes (none: all text; one: for all).
fn format_codes(format: &Format, columns: usize) -> PgWireResult<Vec<i16>> {
    match format {
        Format::UnifiedText => Ok(vec![FORMAT_TEXT; columns]),
        Format::UnifiedBinary => Ok(vec![FORMAT_BINARY; columns]),
        Format::Individual(codes) if codes.len() == columns => {
            if let Some(bad) = codes.iter().find(|c| **c != FORMAT_TEXT && **c != FORMAT_BINARY) {
                return Err(user_error("ERROR", PROTOCOL_VIOLATION, &format!("unsupported format code: {bad}")));
            }
            Ok(codes.clone())
        }
        Format::Individual(codes) => Err(user_error(
            "ERROR",
            PROTOCOL_VIOLATION,
            &format!("bind message has {} result formats but query has {columns} columns", codes.len()),
        )),
    }
}

/// "SELECT 5" -> "SELECT", "INSERT 0 5" -> "INSERT 0": the tag before its row count.
fn tag_without_count(tag: &str) -> String {
    match tag.rsplit_once(' ') {
        Some((head, count)) if count.bytes().all(|b| b.is_ascii_digit()) => head.to_string(),
        _ => tag.to_string(),
    }
}

// ---- Helpers ------------------------------------------------------------------------------

/// The reported settings and their values, or none if no setting changed since the last
/// call (`report_settings` sends only the values that differ from those last sent).
fn reported_settings(s: &mut Session) -> Vec<(&'static str, String)> {
    if !s.take_settings_changed() {
        return Vec::new();
    }
    REPORTED_SETTINGS.iter().map(|(wire, key)| (*wire, s.setting(key).unwrap_or_default().to_string())).collect()
}

fn wire_status(status: TxnStatus) -> TransactionStatus {
    match status {
        TxnStatus::Idle => TransactionStatus::Idle,
        TxnStatus::InBlock => TransactionStatus::Transaction,
        TxnStatus::Failed => TransactionStatus::Error,
    }
}

fn display_name(name: &str) -> &str {
    if name == DEFAULT_NAME {
        ""
    } else {
        name
    }
}

fn statement_not_found(name: &str) -> PgWireError {
    user_error(
        "ERROR",
        codes::INVALID_STATEMENT_NAME,
        &format!("prepared statement \"{}\" does not exist", display_name(name)),
    )
}

fn portal_not_found(name: &str) -> PgWireError {
    user_error("ERROR", codes::INVALID_CURSOR_NAME, &format!("portal \"{}\" does not exist", display_name(name)))
}

fn error_info(severity: &str, code: &str, message: &str) -> ErrorInfo {
    let mut info = ErrorInfo::new(severity.into(), code.into(), message.into());
    info.severity_nonlocalized = Some(severity.into());
    info
}

fn user_error(severity: &str, code: &str, message: &str) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(severity, code, message)))
}

fn sql_error_info(e: sql::Error) -> ErrorInfo {
    let mut info = error_info("ERROR", e.code, &e.message);
    info.detail = e.detail;
    info.hint = e.hint;
    info.where_context = e.context.map(String::from);
    info.position = e.position.map(|p| p.to_string());
    if let Some(o) = e.object {
        info.schema = Some(o.schema);
        info.table = Some(o.table);
        info.column = o.column;
        info.constraint = o.constraint;
    }
    info
}

fn sql_error(e: sql::Error) -> PgWireError {
    PgWireError::UserError(Box::new(sql_error_info(e)))
}

fn notice(message: &str) -> PgWireBackendMessage {
    PgWireBackendMessage::NoticeResponse(NoticeResponse::from(error_info(
        "NOTICE",
        codes::SUCCESSFUL_COMPLETION,
        message,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_options_are_read_as_postgresql_reads_them() {
        let got = startup_options(r"-c statement_timeout=5s --work-mem=4MB -cbulwark.read_consistency=stale");
        let want = [("statement_timeout", "5s"), ("work_mem", "4MB"), ("bulwark.read_consistency", "stale")];
        assert_eq!(got, want.map(|(n, v)| (n.to_string(), v.to_string())));
        assert_eq!(startup_options(r"-c application_name=a\ b"), [("application_name".into(), "a b".into())]);
        // Not name=value, or a name that is not a plain identifier: skipped.
        assert!(startup_options("-c nothing -x y=1").is_empty());
        assert!(startup_options("-c a;DROP=1 --b'=2").is_empty());
        assert!(startup_options("").is_empty());
    }

    #[test]
    fn tags_lose_their_count() {
        assert_eq!(tag_without_count("SELECT 5"), "SELECT");
        assert_eq!(tag_without_count("INSERT 0 5"), "INSERT 0");
        assert_eq!(tag_without_count("CREATE TABLE"), "CREATE TABLE");
    }

    #[test]
    fn format_codes_expand_per_column() {
        assert_eq!(format_codes(&Format::UnifiedText, 2).unwrap(), vec![0, 0]);
        assert_eq!(format_codes(&Format::UnifiedBinary, 2).unwrap(), vec![1, 1]);
        assert_eq!(format_codes(&Format::Individual(vec![0, 1]), 2).unwrap(), vec![0, 1]);
        assert!(format_codes(&Format::Individual(vec![0, 1]), 3).is_err());
        assert!(format_codes(&Format::Individual(vec![0, 2]), 2).is_err());
    }
}
