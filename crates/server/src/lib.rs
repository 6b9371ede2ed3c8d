//! Bulwark's PostgreSQL wire-protocol server: psql, drivers and ORMs talk to Bulwark as they
//! would to PostgreSQL 15.
//!
//! # How it works
//!
//! ```text
//!   TcpListener ──accept──► admission (max_connections, else FATAL 53300)
//!                               │
//!                               ▼  one thread per connection, with its own single-threaded
//!                                  tokio runtime (as PostgreSQL has a process per connection)
//!                  protocol::process_socket  (TLS negotiation, every message checked
//!                               │             against its bound and layout, message loop)
//!                               │
//!              ┌────────────────┼──────────────────────┐
//!        StartupHandler   SimpleQueryHandler    ExtendedQueryHandler
//!        (trust auth,     (Query: many          (Parse/Bind/Describe/
//!         database check)  statements)           Execute/Sync/Close)
//!                               │
//!                               ▼  inline: sessions are synchronous and may wait on row
//!                   Arc<Mutex<sql::Session>>      locks, blocking only their own thread
//! ```
//!
//! Why a thread per connection: a statement runs on the thread that read its message, so a
//! short statement costs no hand-off between threads (handing every statement to a blocking
//! pool and back cost two thread wake-ups each, a third of the CPU time of `pgbench -S`).
//! The threads are bounded by `max_connections`; the accept loop, refusals (53300), cancel
//! requests and the HTTP endpoint run on the shared multi-threaded runtime.
//!
//! [`protocol`] checks every message a client sends (its type, its length against a named
//! bound, its layout) before [pgwire] decodes it, and answers a violation with FATAL 08P01;
//! pgwire decodes messages and keeps the prepared statements and portals of each connection; everything that decides what the client sees (results, errors, the transaction
//! status in ReadyForQuery) is in [`connection`], driven by the connection's [`sql::Session`].
//! Values are encoded in [`codec`], in text or binary as the client asks per column.
//!
//! # Shutdown
//!
//! [`Server::run`] returns when its shutdown future completes: it stops accepting, refuses new
//! statements (FATAL 57P01), waits up to [`Config::drain_timeout`] for running statements to
//! finish, then closes every connection. The caller checkpoints.
//!
//! # Left out (for now)
//!
//! - Results are materialized before they are sent (no streaming); `Execute` with a row limit
//!   is served from the materialized rows (PortalSuspended).
//! - No notifications (LISTEN/NOTIFY), no FunctionCall messages.
//! - A malformed message closes the connection (FATAL 08P01) where PostgreSQL reports a
//!   malformed body as an ERROR and reads on; see [`protocol`].

pub mod codec;
pub mod connection;
pub mod forward;
pub mod http;
pub mod protocol;

use connection::{Connection, Handlers, Refusal, Shared};
use std::future::Future;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// The only database name a client may connect to.
pub const DATABASE_NAME: &str = "bulwark";

/// The setting whose presence in a startup message's `options` keeps a session that
/// reached a follower on that follower (see [`forward`]).
pub const READ_CONSISTENCY_OPTION: &str = "bulwark.read_consistency";
/// The default listen address.
pub const DEFAULT_ADDR: &str = "127.0.0.1:5433";
/// The default connection limit.
pub const DEFAULT_MAX_CONNECTIONS: usize = 100;
/// How long shutdown waits for running statements by default.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// The default slow-query threshold.
pub const DEFAULT_LOG_MIN_DURATION_STATEMENT: Duration = Duration::from_secs(1);
/// Pause after a failed `accept` (e.g. out of file descriptors), so the loop does not spin.
const ACCEPT_ERROR_BACKOFF_MS: u64 = 100;
/// How often shutdown checks whether running statements have finished.
const DRAIN_POLL_MS: u64 = 20;
/// How long shutdown waits, after the drain, for connection threads to close their sockets.
const CONNECTION_CLOSE_WAIT_MS: u64 = 1_000;
/// The stack of a connection's thread. Binding, planning and evaluation recurse over
/// expressions, up to `sql::parser::EXPR_DEPTH_MAX` deep; a release build needs about 5 KiB a
/// level and a debug build several times that. Only the pages a statement touches are
/// ever backed by memory.
const CONNECTION_THREAD_STACK_BYTES: usize = 64 << 20;

/// How clients prove who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// Any existing role that may log in is let in without a password: loopback only.
    Trust,
    /// SCRAM-SHA-256 against the role's stored verifier (CREATE/ALTER ROLE ... PASSWORD).
    ScramSha256,
}

impl std::str::FromStr for AuthMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<AuthMethod, String> {
        match s.to_ascii_lowercase().as_str() {
            "trust" => Ok(AuthMethod::Trust),
            "scram-sha-256" | "scram" => Ok(AuthMethod::ScramSha256),
            other => Err(format!("auth \"{other}\" is not one of trust, scram-sha-256")),
        }
    }
}

/// TLS: the certificate chain and private key, PEM files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain (the server's certificate first).
    pub cert: std::path::PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key: std::path::PathBuf,
}

/// Builds the TLS acceptor clients' SSLRequest is answered with.
pub fn tls_acceptor(files: &TlsFiles) -> io::Result<pgwire::tokio::TlsAcceptor> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &std::path::Path, e: &dyn std::fmt::Display| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("{}: {e}", what.display()))
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| bad(&files.cert, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(&files.cert, &e))?;
    if certs.is_empty() {
        return Err(bad(&files.cert, &"no certificate in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| bad(&files.key, &e))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| io::Error::other(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| bad(&files.cert, &e))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Server settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// How clients authenticate.
    pub auth: AuthMethod,
    /// TLS certificate and key; None: SSLRequest is declined (plain connections only).
    pub tls: Option<TlsFiles>,
    /// Address to listen on, `host:port`. Must be a loopback address while authentication
    /// is `trust`.
    pub addr: String,
    /// Connections served at once; the next one gets FATAL 53300.
    pub max_connections: usize,
    /// How long shutdown waits for running statements before closing connections.
    pub drain_timeout: Duration,
    /// Address of the HTTP endpoint (/metrics, /health/live, /health/ready, /status);
    /// None: no HTTP endpoint. Loopback only, like `addr`.
    pub http_addr: Option<String>,
    /// Settings reported by /status.
    pub status_settings: Vec<(&'static str, String)>,
    /// Statements that run at least this long are logged (the slow-query log); None: off.
    pub log_min_duration_statement: Option<Duration>,
    /// Log each connection, its authorization and its end.
    pub log_connections: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            auth: AuthMethod::Trust,
            tls: None,
            addr: DEFAULT_ADDR.into(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            http_addr: None,
            status_settings: vec![],
            log_min_duration_statement: Some(DEFAULT_LOG_MIN_DURATION_STATEMENT),
            log_connections: true,
        }
    }
}

/// A bound server, ready to [`run`](Server::run).
pub struct Server {
    listener: TcpListener,
    tls: Option<pgwire::tokio::TlsAcceptor>,
    http: Option<TcpListener>,
    status_settings: Vec<(&'static str, String)>,
    shared: Arc<Shared>,
    max_connections: usize,
    drain_timeout: Duration,
}

impl Server {
    /// Binds the listening socket. Fails if the address is not loopback (trust authentication
    /// would let anyone on the network in) or cannot be bound.
    pub async fn bind(db: sql::Database, config: Config) -> io::Result<Server> {
        assert!(config.max_connections > 0, "max_connections must be at least 1");
        let addrs = listen_addrs(&config.addr, config.auth)?;
        let tls = config.tls.as_ref().map(tls_acceptor).transpose()?;
        let listener = TcpListener::bind(&addrs[..]).await?;
        let http = match &config.http_addr {
            Some(a) => Some(TcpListener::bind(&listen_addrs(a, AuthMethod::Trust)?[..]).await?),
            None => None,
        };
        Ok(Server {
            listener,
            tls,
            http,
            status_settings: config.status_settings.clone(),
            shared: Arc::new(Shared::new(
                db,
                connection::LogSettings {
                    min_duration_statement: config.log_min_duration_statement,
                    connections: config.log_connections,
                },
                config.auth,
            )),
            max_connections: config.max_connections,
            drain_timeout: config.drain_timeout,
        })
    }

    /// The address the server listens on (useful with port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The address of the HTTP endpoint, if there is one.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Serves connections until `shutdown` completes, then drains (see the module docs).
    /// Errors of one connection are logged and close only that connection.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        let Server { listener, tls, http, status_settings, shared, max_connections, drain_timeout } = self;
        let (stop_http, http_stopped) = tokio::sync::watch::channel(false);
        if let Some(http) = http {
            let mut stopped = http_stopped.clone();
            tokio::spawn(http::serve_http(http, shared.clone(), status_settings, async move {
                let _ = stopped.changed().await;
            }));
        }
        let slots = Arc::new(Semaphore::new(max_connections));
        let mut tasks = JoinSet::new();
        let mut threads = Vec::new();
        let (close_connections, connections_closed) = tokio::sync::watch::channel(false);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Err(e) = done {
                        if e.is_panic() {
                            tracing::error!("a connection task panicked; that connection is closed");
                        }
                    }
                }
                accepted = listener.accept() => match accepted {
                    Ok((socket, peer)) => {
                        let shared = shared.clone();
                        let tls = tls.clone();
                        shared.metrics.connections_total.fetch_add(1, Ordering::Relaxed);
                        match slots.clone().try_acquire_owned() {
                            Ok(permit) => {
                                reap(&mut threads);
                                let closed = connections_closed.clone();
                                if let Some(t) = spawn_connection(socket, peer, tls, shared, permit, closed) {
                                    threads.push(t);
                                }
                            }
                            Err(_) => {
                                tasks.spawn(async move {
                                    shared.metrics.connections_refused.fetch_add(1, Ordering::Relaxed);
                                    tracing::warn!(%peer, max_connections, "connection refused: too many connections (53300)");
                                    if let Err(e) = protocol::process_socket(socket, tls, Refusal(shared.clone()), &shared.metrics.protocol_violations).await {
                                        tracing::info!(%peer, error = %e, "connection ended with an error");
                                    }
                                });
                            }
                        };
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(ACCEPT_ERROR_BACKOFF_MS)).await;
                    }
                },
            }
        }
        drop(listener);
        shared.shutting_down.store(true, Ordering::SeqCst);
        let _ = stop_http.send(true);
        let deadline = tokio::time::Instant::now() + drain_timeout;
        while shared.in_flight.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(DRAIN_POLL_MS)).await;
        }
        let still_running = shared.in_flight.load(Ordering::SeqCst);
        if still_running > 0 {
            tracing::warn!(
                still_running,
                ?drain_timeout,
                "statements still running at the end of the drain; closing anyway"
            );
        }
        tasks.shutdown().await;
        let _ = close_connections.send(true);
        let deadline = tokio::time::Instant::now() + Duration::from_millis(CONNECTION_CLOSE_WAIT_MS);
        while threads.iter().any(|t| !t.is_finished()) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(DRAIN_POLL_MS)).await;
        }
        reap(&mut threads);
        if !threads.is_empty() {
            tracing::warn!(connections = threads.len(), "connections still busy at shutdown; leaving them");
        }
        Ok(())
    }
}

/// Joins the connection threads that have finished, logging any that panicked.
fn reap(threads: &mut Vec<std::thread::JoinHandle<()>>) {
    let (done, live): (Vec<_>, Vec<_>) = std::mem::take(threads).into_iter().partition(|t| t.is_finished());
    *threads = live;
    for t in done {
        if t.join().is_err() {
            tracing::error!("a connection thread panicked; that connection is closed");
        }
    }
}

/// Starts the thread that serves one admitted connection; it ends when the connection does or
/// when `closed` turns true at shutdown. None (and the connection dropped) if no thread can
/// be started.
fn spawn_connection(
    socket: tokio::net::TcpStream,
    peer: SocketAddr,
    tls: Option<pgwire::tokio::TlsAcceptor>,
    shared: Arc<Shared>,
    permit: tokio::sync::OwnedSemaphorePermit,
    mut closed: tokio::sync::watch::Receiver<bool>,
) -> Option<std::thread::JoinHandle<()>> {
    // Leave this runtime's reactor; the thread's own runtime takes the socket over.
    let socket = match socket.into_std() {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(%peer, error = %e, "cannot serve connection");
            return None;
        }
    };
    let spawned = std::thread::Builder::new()
        .name("bulwark-conn".into())
        .stack_size(CONNECTION_THREAD_STACK_BYTES)
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(%peer, error = %e, "cannot start a connection's runtime; closing it");
                    return;
                }
            };
            runtime.block_on(async move {
                shared.metrics.connections_open.fetch_add(1, Ordering::Relaxed);
                if shared.log.connections {
                    tracing::info!(%peer, "connection received");
                }
                tokio::select! {
                    _ = serve_connection(socket, peer, tls, shared.clone(), permit) => {}
                    _ = closed.wait_for(|c| *c) => {}
                }
                shared.metrics.connections_open.fetch_sub(1, Ordering::Relaxed);
            });
        });
    match spawned {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::error!(%peer, error = %e, "cannot start a connection thread; closing the connection");
            None
        }
    }
}

/// Serves one admitted connection until it ends, or until idle_in_transaction_session_timeout
/// closes it (FATAL 25P03 is written to the client first, as PostgreSQL does).
async fn serve_connection(
    socket: std::net::TcpStream,
    peer: SocketAddr,
    tls: Option<pgwire::tokio::TlsAcceptor>,
    shared: Arc<Shared>,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    // On a follower, the session runs on the leader unless it asked for local reads.
    if let Some(leader) = shared.db.node().leader_sql_addr() {
        let local_cancel = |pid: i32, key: &[u8]| shared.holds_cancel_key(pid, key);
        match socket.try_clone().and_then(|probe| forward::route_socket(&probe, tls.is_some(), &local_cancel)) {
            Ok(forward::Route::Leader) => match socket.try_clone() {
                Ok(relayed) => match forward::relay(relayed, &leader).await {
                    Ok(ended) => {
                        shared.metrics.connections_forwarded.fetch_add(1, Ordering::Relaxed);
                        if shared.log.connections {
                            tracing::info!(%peer, %leader, ?ended, "forwarded session ended");
                        }
                        return;
                    }
                    Err(e) => tracing::warn!(%peer, %leader, error = %e, "cannot reach the leader; serving here"),
                },
                Err(e) => tracing::warn!(%peer, error = %e, "cannot forward connection; serving here"),
            },
            Ok(forward::Route::Local | forward::Route::Decline) => {}
            Err(e) => {
                tracing::info!(%peer, error = %e, "connection ended before its first message");
                return;
            }
        }
    }
    // A second handle on the socket, to write the FATAL when the watchdog ends the connection
    // (pgwire owns the first one).
    let (socket, fatal_writer) = match socket.try_clone().map(|clone| (clone, socket)) {
        Ok((clone, std)) => match tokio::net::TcpStream::from_std(std) {
            Ok(s) => (s, Some(clone)),
            Err(e) => {
                tracing::warn!(%peer, error = %e, "cannot serve connection");
                return;
            }
        },
        Err(e) => {
            tracing::warn!(%peer, error = %e, "cannot serve connection");
            return;
        }
    };
    let conn = Arc::new(Connection::new(shared.clone(), permit, peer));
    let handlers = Handlers(conn.clone());
    tokio::select! {
        r = protocol::process_socket(socket, tls, handlers, &shared.metrics.protocol_violations) => {
            if let Err(e) = r {
                tracing::info!(%peer, error = %e, "connection ended with an error");
            }
        }
        timeout = connection::idle_watch(conn.clone()) => {
            tracing::info!(%peer, ?timeout, "terminating connection due to idle-in-transaction timeout");
            if let Some(mut w) = fatal_writer {
                use std::io::Write;
                let _ = w.write_all(&connection::fatal_message(
                    codes_idle::IDLE_IN_TRANSACTION_SESSION_TIMEOUT,
                    "terminating connection due to idle-in-transaction timeout",
                ));
            }
        }
    }
    conn.log_end();
}

mod codes_idle {
    /// SQLSTATE 25P03 idle_in_transaction_session_timeout.
    pub const IDLE_IN_TRANSACTION_SESSION_TIMEOUT: &str = "25P03";
}

/// Resolves a listen address, refusing any that is not loopback under `trust`
/// authentication: anyone who can reach the port would get in.
pub fn listen_addrs(addr: &str, auth: AuthMethod) -> io::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
    if addrs.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{addr}: no address")));
    }
    if auth == AuthMethod::Trust {
        if let Some(a) = addrs.iter().find(|a| !a.ip().is_loopback()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "refusing to listen on {a}: trust authentication is only allowed on loopback addresses; \
                     bind to 127.0.0.1 (--pg-addr 127.0.0.1:5433), or give the roles passwords \
                     (ALTER ROLE bulwark PASSWORD '...') and start with --auth scram-sha-256 (with --tls-cert \
                     and --tls-key so passwords never cross the network in the clear)"
                ),
            ));
        }
    }
    Ok(addrs)
}

/// Binds `config.addr` and serves `db` until `shutdown` completes.
pub async fn serve(db: sql::Database, config: Config, shutdown: impl Future<Output = ()>) -> io::Result<()> {
    Server::bind(db, config).await?.run(shutdown).await
}
