//! `bulwark start`'s settings. Each comes from its flag, else from the TOML file named by
//! `--config`, else from its default; every flag is also a key of the file:
//!
//! ```toml
//! data_dir = "/var/lib/bulwark"
//! pg_addr = "127.0.0.1:5433"
//! http_addr = "127.0.0.1:9433"
//! max_connections = 100
//! auth = "trust"                           # or "scram-sha-256" (needed off loopback)
//! tls_cert = "/etc/bulwark/server.crt"     # TLS for clients that ask (sslmode=require)
//! tls_key = "/etc/bulwark/server.key"
//! log_level = "info"                       # error, warn, info, debug, trace
//! log_connections = true
//! log_min_duration_statement = 1000        # ms; -1 turns the slow-query log off
//! # Defaults of the session settings of the same names:
//! statement_timeout = "30s"
//! lock_timeout = 0
//! deadlock_timeout = "1s"
//! idle_in_transaction_session_timeout = "10min"
//! default_transaction_isolation = "read committed"
//! # A node of a cluster (see docs/runbooks/cluster-node-lost.md):
//! node_id = 1
//! peer_addr = "127.0.0.1:7433"
//! init_cluster = "1=127.0.0.1:7433,2=127.0.0.1:7434,3=127.0.0.1:7435"
//! raft_heartbeat_ms = 50
//! raft_election_timeout_ms = 150
//! raft_log_keep = 1000
//! max_clock_offset_ms = 500
//! ```
//!
//! An unknown key or a value of the wrong type stops the start with a message naming it.

use std::path::PathBuf;
use std::time::Duration;

/// Session settings that the server's configuration may give defaults for.
pub const SESSION_SETTINGS: [&str; 5] = [
    "statement_timeout",
    "lock_timeout",
    "deadlock_timeout",
    "idle_in_transaction_session_timeout",
    "default_transaction_isolation",
];

/// The flags of `bulwark start`.
#[derive(clap::Args, Debug, Default)]
pub struct StartArgs {
    /// A TOML file of settings (flags override it).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The data directory (created if missing) [default: ./bulwark-data].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Address for PostgreSQL clients, host:port; loopback only while authentication is
    /// trust [default: 127.0.0.1:5433].
    #[arg(long)]
    pub pg_addr: Option<String>,
    /// Connections served at once; the next one is refused with 53300 [default: 100].
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Address of the HTTP endpoint (/metrics, /health/live, /health/ready, /status)
    /// [default: 127.0.0.1:9433].
    #[arg(long)]
    pub http_addr: Option<String>,
    /// How clients authenticate: trust (loopback only) or scram-sha-256 [default: trust].
    #[arg(long)]
    pub auth: Option<String>,
    /// TLS certificate chain (PEM); with --tls-key, clients may connect with TLS.
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
    /// Log level: error, warn, info, debug or trace [default: info].
    #[arg(long)]
    pub log_level: Option<String>,
    /// Log connections, authorizations and disconnections [default: true].
    #[arg(long)]
    pub log_connections: Option<bool>,
    /// Log statements that run at least this many milliseconds; -1: never [default: 1000].
    #[arg(long, allow_hyphen_values = true)]
    pub log_min_duration_statement: Option<i64>,
    /// Default statement_timeout of new sessions (e.g. 30s; 0: none).
    #[arg(long)]
    pub statement_timeout: Option<String>,
    /// Default lock_timeout of new sessions.
    #[arg(long)]
    pub lock_timeout: Option<String>,
    /// Default deadlock_timeout of new sessions.
    #[arg(long)]
    pub deadlock_timeout: Option<String>,
    /// Default idle_in_transaction_session_timeout of new sessions (0: none).
    #[arg(long)]
    pub idle_in_transaction_session_timeout: Option<String>,
    /// Default default_transaction_isolation of new sessions.
    #[arg(long)]
    pub default_transaction_isolation: Option<String>,
    /// This node's id in its cluster (1 or more) [default: 1].
    #[arg(long)]
    pub node_id: Option<u64>,
    /// Where this node listens for its cluster peers, host:port. Without it the node is a
    /// single node (a Raft group of one) and listens for no peers.
    #[arg(long)]
    pub peer_addr: Option<String>,
    /// The members of a new cluster, id=host:port of each one's --peer-addr, comma
    /// separated, this node included (the same list on every member). Used when the data
    /// directory is new; afterwards the membership is in the log.
    #[arg(long)]
    pub init_cluster: Option<String>,
    /// Raft heartbeat interval, milliseconds [default: 50].
    #[arg(long)]
    pub raft_heartbeat_ms: Option<u64>,
    /// Raft election timeout, milliseconds: a follower that hears no leader for a random
    /// time between this and twice this starts an election [default: 150].
    #[arg(long)]
    pub raft_election_timeout_ms: Option<u64>,
    /// The clock-offset guard, milliseconds: a node whose wall clock differs from more than
    /// half of the other voters' by more than this refuses to lead, and says so
    /// [default: 500].
    #[arg(long)]
    pub max_clock_offset_ms: Option<u64>,
    /// Join a running cluster: the HTTP addresses (--http-addr) of one or more of its
    /// members, comma separated. On start, a node that is not yet a member asks each in
    /// turn to add it as a voter until the leader does (it catches up first, from the log
    /// or from a copy of a checkpoint). Needs --peer-addr.
    #[arg(long)]
    pub join: Option<String>,
    /// Raft log entries kept behind the newest snapshot (checkpoint), so that a node a
    /// little behind catches up from the log rather than from a copy of the checkpoint
    /// [default: 1000].
    #[arg(long)]
    pub raft_log_keep: Option<u64>,
}

/// The settings in force.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub pg_addr: String,
    pub http_addr: String,
    pub max_connections: usize,
    pub auth: server::AuthMethod,
    pub tls: Option<server::TlsFiles>,
    pub log_level: tracing::Level,
    pub log_connections: bool,
    pub log_min_duration_statement: Option<Duration>,
    /// Session setting defaults given (name, value).
    pub session: Vec<(String, String)>,
    /// This node's id.
    pub node_id: u64,
    /// The peer address and the initial members, for a node of a cluster.
    pub peers: Option<(std::net::SocketAddr, std::collections::BTreeMap<u64, String>)>,
    /// Raft heartbeat interval, milliseconds.
    pub raft_heartbeat_ms: u64,
    /// Raft election timeout (the lower end), milliseconds.
    pub raft_election_timeout_ms: u64,
    /// Raft log entries kept behind the newest snapshot.
    pub raft_log_keep: u64,
    /// Members' HTTP addresses to ask to add this node (--join).
    pub join: Vec<String>,
    /// The clock-offset guard's bound, milliseconds.
    pub max_clock_offset_ms: u64,
}

/// Default Raft heartbeat interval, milliseconds: measured on loopback, a heartbeat round
/// trip takes well under a millisecond, so 50 ms costs little and lets an election timeout
/// of 150 ms tolerate two lost heartbeats.
pub const DEFAULT_RAFT_HEARTBEAT_MS: u64 = 50;
/// Default Raft election timeout (lower end; the upper end is twice it), milliseconds.
pub const DEFAULT_RAFT_ELECTION_TIMEOUT_MS: u64 = 150;

/// Parses `--init-cluster`: `id=host:port,...`.
pub fn parse_members(text: &str) -> Result<std::collections::BTreeMap<u64, String>, String> {
    let mut members = std::collections::BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) = part.split_once('=').ok_or_else(|| format!("init_cluster: \"{part}\" is not id=host:port"))?;
        let id: u64 = id.trim().parse().map_err(|_| format!("init_cluster: \"{id}\" is not a node id"))?;
        if id == 0 {
            return Err("init_cluster: node ids start at 1".into());
        }
        let addr = addr.trim();
        if addr.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!("init_cluster: \"{addr}\" is not host:port (an IP address and a port)"));
        }
        if members.insert(id, addr.to_string()).is_some() {
            return Err(format!("init_cluster: node {id} is listed twice"));
        }
    }
    if members.is_empty() {
        return Err("init_cluster: no members".into());
    }
    Ok(members)
}

/// Keys the file may hold: the flags' names with underscores.
const FILE_KEYS: [&str; 23] = [
    "data_dir",
    "pg_addr",
    "http_addr",
    "max_connections",
    "auth",
    "tls_cert",
    "tls_key",
    "log_level",
    "log_connections",
    "log_min_duration_statement",
    "statement_timeout",
    "lock_timeout",
    "deadlock_timeout",
    "idle_in_transaction_session_timeout",
    "default_transaction_isolation",
    "node_id",
    "peer_addr",
    "init_cluster",
    "raft_heartbeat_ms",
    "raft_election_timeout_ms",
    "raft_log_keep",
    "join",
    "max_clock_offset_ms",
];

/// Flags over the file over the defaults.
pub fn resolve(args: &StartArgs) -> Result<Settings, String> {
    let file = match &args.config {
        None => toml::Table::new(),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let table: toml::Table = text.parse().map_err(|e| format!("{}: {e}", path.display()))?;
            if let Some(unknown) = table.keys().find(|k| !FILE_KEYS.contains(&k.as_str())) {
                return Err(format!(
                    "{}: unknown setting \"{unknown}\" (known: {})",
                    path.display(),
                    FILE_KEYS.join(", ")
                ));
            }
            table
        }
    };
    let string = |key: &str| -> Result<Option<String>, String> {
        match file.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(toml::Value::Integer(i)) => Ok(Some(i.to_string())),
            Some(other) => Err(format!("setting {key}: expected a string, found {}", other.type_str())),
        }
    };
    let integer = |key: &str| -> Result<Option<i64>, String> {
        match file.get(key) {
            None => Ok(None),
            Some(toml::Value::Integer(i)) => Ok(Some(*i)),
            Some(other) => Err(format!("setting {key}: expected an integer, found {}", other.type_str())),
        }
    };
    let boolean = |key: &str| -> Result<Option<bool>, String> {
        match file.get(key) {
            None => Ok(None),
            Some(toml::Value::Boolean(b)) => Ok(Some(*b)),
            Some(other) => Err(format!("setting {key}: expected true or false, found {}", other.type_str())),
        }
    };
    let data_dir = match &args.data_dir {
        Some(d) => d.clone(),
        None => PathBuf::from(string("data_dir")?.unwrap_or_else(|| "./bulwark-data".into())),
    };
    let pg_addr = args.pg_addr.clone().map_or_else(|| string("pg_addr"), |v| Ok(Some(v)))?;
    let http_addr = args.http_addr.clone().map_or_else(|| string("http_addr"), |v| Ok(Some(v)))?;
    let max_connections = match args.max_connections {
        Some(n) => n,
        None => match integer("max_connections")? {
            Some(n) => usize::try_from(n).map_err(|_| format!("setting max_connections: {n} is out of range"))?,
            None => server::DEFAULT_MAX_CONNECTIONS,
        },
    };
    if max_connections == 0 {
        return Err("max_connections must be at least 1".into());
    }
    let auth_text = args.auth.clone().map_or_else(|| string("auth"), |v| Ok(Some(v)))?;
    let auth: server::AuthMethod = auth_text.as_deref().unwrap_or("trust").parse()?;
    let path = |flag: &Option<PathBuf>, key: &str| -> Result<Option<PathBuf>, String> {
        match flag {
            Some(p) => Ok(Some(p.clone())),
            None => Ok(string(key)?.map(PathBuf::from)),
        }
    };
    let tls = match (path(&args.tls_cert, "tls_cert")?, path(&args.tls_key, "tls_key")?) {
        (Some(cert), Some(key)) => Some(server::TlsFiles { cert, key }),
        (None, None) => None,
        _ => return Err("tls_cert and tls_key go together: give both or neither".into()),
    };
    let level_text = args.log_level.clone().map_or_else(|| string("log_level"), |v| Ok(Some(v)))?;
    let log_level = match level_text.as_deref().unwrap_or("info").to_ascii_lowercase().as_str() {
        "error" => tracing::Level::ERROR,
        "warn" | "warning" => tracing::Level::WARN,
        "info" => tracing::Level::INFO,
        "debug" => tracing::Level::DEBUG,
        "trace" => tracing::Level::TRACE,
        other => return Err(format!("log_level: \"{other}\" is not one of error, warn, info, debug, trace")),
    };
    let log_connections = args.log_connections.map_or_else(|| boolean("log_connections"), |v| Ok(Some(v)))?;
    let slow_ms =
        args.log_min_duration_statement.map_or_else(|| integer("log_min_duration_statement"), |v| Ok(Some(v)))?;
    let log_min_duration_statement = match slow_ms {
        None => Some(server::DEFAULT_LOG_MIN_DURATION_STATEMENT),
        Some(-1) => None,
        Some(ms) if ms >= 0 => Some(Duration::from_millis(ms as u64)),
        Some(ms) => return Err(format!("log_min_duration_statement: {ms} must be -1 (off) or at least 0")),
    };
    let flags = [
        &args.statement_timeout,
        &args.lock_timeout,
        &args.deadlock_timeout,
        &args.idle_in_transaction_session_timeout,
        &args.default_transaction_isolation,
    ];
    let mut session = Vec::new();
    for (name, flag) in SESSION_SETTINGS.iter().zip(flags) {
        if let Some(v) = flag.clone().map_or_else(|| string(name), |v| Ok(Some(v)))? {
            session.push((name.to_string(), v));
        }
    }
    let node_id = match args.node_id {
        Some(n) => n,
        None => integer("node_id")?
            .map_or(Ok(1), |n| u64::try_from(n).map_err(|_| format!("node_id: {n} is out of range")))?,
    };
    if node_id == 0 {
        return Err("node_id: node ids start at 1".into());
    }
    let peer_addr = args.peer_addr.clone().map_or_else(|| string("peer_addr"), |v| Ok(Some(v)))?;
    let init_cluster = args.init_cluster.clone().map_or_else(|| string("init_cluster"), |v| Ok(Some(v)))?;
    let peers = match (peer_addr, init_cluster) {
        (None, None) => None,
        (None, Some(_)) => return Err("init_cluster needs peer_addr: where this node listens for its peers".into()),
        (Some(addr), init) => {
            let listen: std::net::SocketAddr = addr
                .parse()
                .map_err(|_| format!("peer_addr: \"{addr}\" is not host:port (an IP address and a port)"))?;
            let init = match init {
                Some(text) => parse_members(&text)?,
                None => Default::default(),
            };
            if !init.is_empty() && !init.contains_key(&node_id) {
                return Err(format!("init_cluster does not list this node (node_id {node_id})"));
            }
            Some((listen, init))
        }
    };
    let millis = |flag: Option<u64>, key: &str, default: u64| -> Result<u64, String> {
        let v = match flag {
            Some(v) => v,
            None => integer(key)?
                .map_or(Ok(default), |n| u64::try_from(n).map_err(|_| format!("{key}: {n} is out of range")))?,
        };
        if v == 0 {
            return Err(format!("{key}: must be at least 1 ms"));
        }
        Ok(v)
    };
    let raft_heartbeat_ms = millis(args.raft_heartbeat_ms, "raft_heartbeat_ms", DEFAULT_RAFT_HEARTBEAT_MS)?;
    let raft_election_timeout_ms =
        millis(args.raft_election_timeout_ms, "raft_election_timeout_ms", DEFAULT_RAFT_ELECTION_TIMEOUT_MS)?;
    if raft_election_timeout_ms <= raft_heartbeat_ms {
        return Err(format!(
            "raft_election_timeout_ms ({raft_election_timeout_ms}) must be longer than raft_heartbeat_ms ({raft_heartbeat_ms})"
        ));
    }
    let raft_log_keep = match args.raft_log_keep {
        Some(v) => v,
        None => integer("raft_log_keep")?.map_or(Ok(cluster::node::LOG_KEEP_BEHIND_SNAPSHOT), |n| {
            u64::try_from(n).map_err(|_| format!("raft_log_keep: {n} is out of range"))
        })?,
    };
    let join: Vec<String> = args
        .join
        .clone()
        .map_or_else(|| string("join"), |v| Ok(Some(v)))?
        .map(|text| text.split(',').map(str::trim).filter(|a| !a.is_empty()).map(String::from).collect())
        .unwrap_or_default();
    match &peers {
        None if !join.is_empty() => return Err("join needs peer_addr: where this node listens for its peers".into()),
        Some((_, init)) if !join.is_empty() && !init.is_empty() => {
            return Err("give init_cluster (a new cluster) or join (a running one), not both".into())
        }
        _ => {}
    }
    let max_clock_offset_ms = millis(
        args.max_clock_offset_ms,
        "max_clock_offset_ms",
        cluster::node::CLOCK_OFFSET_MAX_DEFAULT.as_millis() as u64,
    )?;
    Ok(Settings {
        max_clock_offset_ms,
        join,
        node_id,
        peers,
        raft_heartbeat_ms,
        raft_election_timeout_ms,
        raft_log_keep,
        data_dir,
        pg_addr: pg_addr.unwrap_or_else(|| server::DEFAULT_ADDR.into()),
        http_addr: http_addr.unwrap_or_else(|| server::http::DEFAULT_HTTP_ADDR.into()),
        max_connections,
        auth,
        tls,
        log_level,
        log_connections: log_connections.unwrap_or(true),
        log_min_duration_statement,
        session,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("bulwark-config-test-{}-{}.toml", std::process::id(), text.len()));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let path = file("pg_addr = \"127.0.0.1:6000\"\nmax_connections = 7\nstatement_timeout = \"5s\"\nlog_min_duration_statement = -1\n");
        let args = StartArgs { config: Some(path.clone()), max_connections: Some(9), ..Default::default() };
        let s = resolve(&args).unwrap();
        assert_eq!(s.pg_addr, "127.0.0.1:6000");
        assert_eq!(s.max_connections, 9);
        assert_eq!(s.http_addr, server::http::DEFAULT_HTTP_ADDR);
        assert_eq!(s.log_min_duration_statement, None);
        assert_eq!(s.session, vec![("statement_timeout".to_string(), "5s".to_string())]);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_refused() {
        let path = file("max_conections = 5\n");
        let err = resolve(&StartArgs { config: Some(path.clone()), ..Default::default() }).unwrap_err();
        assert!(err.contains("unknown setting \"max_conections\""), "{err}");
        std::fs::remove_file(path).unwrap();
        let path = file("max_connections = \"many\"\n");
        let err = resolve(&StartArgs { config: Some(path.clone()), ..Default::default() }).unwrap_err();
        assert!(err.contains("expected an integer"), "{err}");
        std::fs::remove_file(path).unwrap();
    }
}
