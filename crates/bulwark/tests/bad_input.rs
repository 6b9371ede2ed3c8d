//! Bad input under load: while pgbench runs its TPC-B-like script (prepared mode) against
//! `bulwark start`, hundreds of connections send random bytes, random bytes after a valid
//! startup, and malformed messages of every kind the protocol checks refuse (oversized,
//! negative and too-short lengths, unknown types, malformed bodies, truncated messages, bad
//! protocol versions, a startup packet without a user, SSLRequest or GSSENCRequest followed
//! by garbage).
//!
//! Each bad connection must be closed by the server (read until EOF, bounded), with the
//! FATAL SQLSTATE PostgreSQL sends where the input is refused before it ends; the server
//! must stay up, serve a fresh connection, print no panic, and pgbench must finish without a
//! failed transaction and with balances that add up.
//!
//! The randomness is seeded: the seed is printed, and `BULWARK_BAD_INPUT_SEED=<seed>`
//! replays a run.

mod common;

use common::{figure, stderr, stdout, ServerProcess, TempDir};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

/// Bad connections in all.
const BAD_CONNECTIONS: usize = 240;
/// Threads sending them, so several are open at a time.
const BAD_SENDERS: usize = 6;
/// Over about how long the bad connections are spread (pgbench runs 10 s).
const BAD_SPREAD_MS: u64 = 8_000;
/// How long the server may take to close a bad connection.
const CLOSE_WAIT_MS_MAX: u64 = 10_000;
/// The most random bytes one bad connection sends.
const RANDOM_BYTES_MAX: usize = 4096;
/// pgbench's run.
const PGBENCH_SECONDS: &str = "10";
const PGBENCH_CLIENTS: &str = "4";

/// SplitMix64: a small seeded generator, so a failing run replays from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

fn startup_packet(params: &[(&str, &str)], version: u32) -> Vec<u8> {
    let mut body = version.to_be_bytes().to_vec();
    for (k, v) in params {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut out = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    out.extend(body);
    out
}

fn valid_startup() -> Vec<u8> {
    startup_packet(&[("user", "bulwark"), ("database", "bulwark")], 196608)
}

fn message(t: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![t];
    out.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn header(t: u8, len: i32) -> Vec<u8> {
    let mut out = vec![t];
    out.extend_from_slice(&len.to_be_bytes());
    out
}

const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
const GSSENC_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30];
/// Message types a client may send.
const TYPES: &[u8] = b"QPBdpCDEHSXcf";

/// One bad connection: what it sends, whether an SSL/GSS answer byte comes first, and the
/// SQLSTATE the server must send before closing (None: closing is enough).
struct Bad {
    kind: &'static str,
    bytes: Vec<u8>,
    negotiation_reply: bool,
    expect: Option<&'static str>,
}

fn bad_connection(rng: &mut Rng) -> Bad {
    let startup_then = |kind, tail: Vec<u8>, expect| {
        let mut bytes = valid_startup();
        bytes.extend(tail);
        Bad { kind, bytes, negotiation_reply: false, expect }
    };
    match rng.below(14) {
        0 => Bad { kind: "random bytes", bytes: rng.bytes(RANDOM_BYTES_MAX), negotiation_reply: false, expect: None },
        1 => startup_then("random bytes after startup", rng.bytes(RANDOM_BYTES_MAX), None),
        2 => {
            let t = rng.pick(TYPES);
            let len = rng.pick(&[i32::MAX, 0x4000_0000, 64 << 20 | 1, 65_536, 10_001]);
            // 10001 and 65536 are within the bounds of some types: use a small type then.
            let t = if len < (64 << 20) { rng.pick(b"CDEHSXcf") } else { t };
            let t = if len == 65_536 { b'p' } else { t };
            startup_then("oversized length", header(t, len), Some("08P01"))
        }
        3 => {
            let any_negative = -(rng.below(1 << 20) as i32) - 1;
            let len = rng.pick(&[-1, i32::MIN, -4, any_negative]);
            startup_then("negative length", header(rng.pick(TYPES), len), Some("08P01"))
        }
        4 => startup_then("length below 4", header(rng.pick(TYPES), rng.below(4) as i32), Some("08P01")),
        5 => {
            let t = rng.pick(b"FAZabz\x00\xff1");
            startup_then("unknown message type", message(t, b""), Some("08P01"))
        }
        6 => {
            let whole = message(b'Q', b"SELECT 1\0");
            let cut = 1 + rng.below(whole.len() - 1);
            startup_then("truncated message", whole[..cut].to_vec(), None)
        }
        7 => {
            let malformed: &[(u8, &[u8])] = &[
                (b'Q', b"SELECT 1"),
                (b'Q', b"SELECT 1\0junk"),
                (b'E', b"\0"),
                (b'S', b"x"),
                (b'D', b""),
                (b'C', b"S"),
                (b'P', b"\0SELECT 1\0\0\x05"),
                (b'B', b"\0\0\0\0\0\x01\x7f\xff\xff\xff\0\0"),
                (b'B', b"\0\0\0\0\0\x01\xff\xff\xff\xfe\0\0"),
            ];
            let (t, body) = rng.pick(malformed);
            startup_then("malformed body", message(t, body), Some("08P01"))
        }
        8 => {
            let any_major = rng.next() as u32 | 0x0400_0000;
            let version = rng.pick(&[0x0002_0000u32, 0x0004_0000, 0x0001_0000, any_major]);
            Bad {
                kind: "bad protocol version",
                bytes: startup_packet(&[("user", "bulwark")], version),
                negotiation_reply: false,
                expect: Some("0A000"),
            }
        }
        9 => Bad {
            kind: "missing user",
            bytes: startup_packet(&[("database", "bulwark")], 196608),
            negotiation_reply: false,
            expect: Some("28000"),
        },
        10 => {
            let len = rng.pick(&[i32::MAX, 10_001, -1, 3, 0, 1 << 30]);
            let mut bytes = len.to_be_bytes().to_vec();
            bytes.extend_from_slice(&196608u32.to_be_bytes());
            Bad { kind: "startup length out of range", bytes, negotiation_reply: false, expect: Some("08P01") }
        }
        11 => {
            let mut bytes = SSL_REQUEST.to_vec();
            bytes.extend(rng.bytes(RANDOM_BYTES_MAX));
            Bad { kind: "SSLRequest then garbage", bytes, negotiation_reply: true, expect: None }
        }
        12 => {
            let mut bytes = GSSENC_REQUEST.to_vec();
            bytes.extend(rng.bytes(RANDOM_BYTES_MAX));
            Bad { kind: "GSSENCRequest then garbage", bytes, negotiation_reply: true, expect: None }
        }
        _ => {
            // An HTTP request where the startup packet belongs: "GET " is a huge length.
            let mut bytes = rng.pick(&[&SSL_REQUEST[..], &GSSENC_REQUEST[..]]).to_vec();
            bytes.extend_from_slice(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
            Bad { kind: "negotiation then HTTP", bytes, negotiation_reply: true, expect: Some("08P01") }
        }
    }
}

/// The SQLSTATEs of the ErrorResponses in a reply stream.
fn sqlstates(mut reply: &[u8]) -> Vec<String> {
    let mut codes = Vec::new();
    while reply.len() >= 5 {
        let t = reply[0];
        let len = i32::from_be_bytes([reply[1], reply[2], reply[3], reply[4]]) as usize;
        if len < 4 || reply.len() < 1 + len {
            break;
        }
        let body = &reply[5..1 + len];
        if t == b'E' {
            let mut fields = body;
            while let Some((&field, rest)) = fields.split_first() {
                let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
                if field == b'C' {
                    codes.push(String::from_utf8_lossy(&rest[..end]).into_owned());
                }
                fields = rest.get(end + 1..).unwrap_or(&[]);
            }
        }
        reply = &reply[1 + len..];
    }
    codes
}

/// Sends one bad connection's bytes, then reads until the server closes it. Returns an error
/// message if the server did not close it in time, or did not send the expected SQLSTATE.
/// Sends one bad connection's bytes and checks the reply; Ok(true) when the reply was the
/// 08P01 the server counts as a protocol violation.
fn run_bad(port: u16, bad: &Bad) -> Result<bool, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_millis(CLOSE_WAIT_MS_MAX))).unwrap();
    // The server may close before it has read everything: a failed write is fine.
    let _ = s.write_all(&bad.bytes);
    let _ = s.shutdown(Shutdown::Write);
    let deadline = Instant::now() + Duration::from_millis(CLOSE_WAIT_MS_MAX);
    let mut reply = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => reply.extend_from_slice(&chunk[..n]),
            // Closed with input unread: the kernel resets the connection.
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => return Err(format!("{}: not closed within {CLOSE_WAIT_MS_MAX} ms ({e})", bad.kind)),
        }
        if Instant::now() > deadline {
            return Err(format!("{}: not closed within {CLOSE_WAIT_MS_MAX} ms", bad.kind));
        }
    }
    let messages = match (bad.negotiation_reply, reply.first()) {
        (true, Some(b'N')) => &reply[1..],
        (true, other) => return Err(format!("{}: SSL/GSS request answered {other:?}, not 'N'", bad.kind)),
        (false, _) => &reply[..],
    };
    if let Some(code) = bad.expect {
        let codes = sqlstates(messages);
        if !codes.iter().any(|c| c == code) {
            return Err(format!("{}: expected SQLSTATE {code}, got {codes:?} (sent {:?})", bad.kind, bad.bytes));
        }
    }
    Ok(bad.expect == Some("08P01"))
}

/// The value of an unlabelled metric on the server's /metrics page.
fn metric(http_port: u16, name: &str) -> f64 {
    let mut s = TcpStream::connect(("127.0.0.1", http_port)).expect("connect to the HTTP endpoint");
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut page = String::new();
    s.read_to_string(&mut page).unwrap();
    let line =
        page.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("no {name} in:\n{page}"));
    line[name.len()..].trim().parse().unwrap()
}

fn pgbench(port: u16, args: &[&str]) -> Command {
    let mut cmd = Command::new("pgbench");
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "bulwark"])
        .args(args)
        .arg("bulwark")
        .env("PGCONNECT_TIMEOUT", "10");
    cmd
}

#[test]
fn bad_input_under_pgbench_load_closes_only_the_bad_connections() {
    let seed = match std::env::var("BULWARK_BAD_INPUT_SEED") {
        Ok(s) => s.parse().expect("BULWARK_BAD_INPUT_SEED is a u64"),
        Err(_) => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64,
    };
    eprintln!("bad input seed: {seed} (replay with BULWARK_BAD_INPUT_SEED={seed})");

    let dir = TempDir::new("bad-input");
    let log = std::env::temp_dir().join(format!("bulwark-bad-input-{}.stderr", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let mut server = ServerProcess::start_logging_to(dir.path(), &[], &log);
    let port = server.port;
    let init = pgbench(port, &["-i", "-s", "1"]).output().expect("pgbench must be installed");
    assert!(init.status.success(), "pgbench -i: {}{}", stdout(&init), stderr(&init));

    let load = pgbench(port, &["-c", PGBENCH_CLIENTS, "-T", PGBENCH_SECONDS, "-M", "prepared"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start pgbench");

    let per_sender = BAD_CONNECTIONS / BAD_SENDERS;
    let pause = Duration::from_millis(BAD_SPREAD_MS / per_sender as u64);
    let senders: Vec<_> = (0..BAD_SENDERS as u64)
        .map(|i| {
            std::thread::spawn(move || {
                let mut rng = Rng(seed ^ i.wrapping_mul(0x2545_f491_4f6c_dd1d));
                let mut failures = Vec::new();
                let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
                let mut violations = 0;
                for _ in 0..per_sender {
                    let bad = bad_connection(&mut rng);
                    *kinds.entry(bad.kind).or_default() += 1;
                    match run_bad(port, &bad) {
                        Ok(counted) => violations += counted as usize,
                        Err(e) => failures.push(e),
                    }
                    std::thread::sleep(pause);
                }
                (failures, kinds, violations)
            })
        })
        .collect();
    let mut failures = Vec::new();
    let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
    let mut violations = 0;
    for s in senders {
        let (f, k, v) = s.join().expect("sender thread");
        failures.extend(f);
        violations += v;
        for (kind, n) in k {
            *kinds.entry(kind).or_default() += n;
        }
    }
    eprintln!("bad connections by kind: {kinds:?}");

    let load = load.wait_with_output().expect("pgbench");
    let report = format!("{}{}", stdout(&load), stderr(&load));
    assert!(server.child.try_wait().unwrap().is_none(), "the server exited; its stderr is in {}", log.display());
    assert!(
        failures.is_empty(),
        "seed {seed}: {} bad connections misbehaved:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Each 08P01 a client got is counted where operators look.
    let counted = metric(server.http_port, "bulwark_protocol_violations_total");
    assert!(counted >= violations as f64, "/metrics counts {counted} protocol violations; clients got {violations}");
    assert!(load.status.success(), "pgbench failed:\n{report}");
    let done = figure(&report, "number of transactions actually processed:");
    let failed = figure(&report, "number of failed transactions:");
    eprintln!("pgbench under bad input: {done} transactions, {failed} failed");
    assert!(done > 0.0, "{report}");
    assert_eq!(failed, 0.0, "{report}");

    // A fresh connection works, and the run's balances add up (pgbench emptied the history
    // before its run; the balances start at zero after -i).
    let parts = server.pgbench_sums();
    let sums = format!("{parts:?}");
    assert_eq!(parts[4] as f64, done, "one history row per transaction: {sums}");
    assert!(parts[..3].iter().all(|&p| p == parts[3]), "balances and deltas differ: {sums}");

    let status = server.child.try_wait().unwrap();
    assert!(status.is_none(), "the server exited: {status:?}");
    let stderr_text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    assert!(!stderr_text.contains("panicked"), "the server panicked:\n{stderr_text}");
    assert!(
        stderr_text.contains("protocol violation"),
        "violations are logged at warn; the log has none:\n{stderr_text}"
    );
}
