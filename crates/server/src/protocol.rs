//! The message loop of one connection, and the checks every byte a client sends passes
//! before pgwire decodes it.
//!
//! # Why a check in front of pgwire
//!
//! pgwire's decoders trust the client: a length prefix below 4, a Bind whose parameter
//! lengths run past the end of the message, or a startup packet without its terminator make
//! them subtract past zero, read past the end of the buffer (a panic), or read into the next
//! message. pgwire also accepts a Query, Parse, Bind or CopyData of up to 1 GB, buffered in
//! full before it is looked at. So the socket pgwire reads from is wrapped in [`Checked`],
//! which hands pgwire a byte only once the whole message around it has been checked by
//! [`check_frame`]: its type is one a client may send, its length is within that type's bound,
//! and its body has exactly the layout the protocol defines (every string terminated, every
//! count and length matching the bytes that follow, nothing left over).
//!
//! ```text
//!   socket ──► Checked: pending bytes ──check_frame──► checked bytes ──► pgwire Framed
//!                         (at most one message              (decoded one message at
//!                          plus one read chunk)              a time, never past its end)
//!                │
//!                └─ violation: io::Error(Violation) ──► FATAL 08P01 (or 0A000), close
//! ```
//!
//! # Bounds
//!
//! | message                                   | largest accepted          |
//! |-------------------------------------------|---------------------------|
//! | startup packet, CancelRequest             | [`STARTUP_PACKET_BYTES_MAX`] |
//! | password / SASL ('p')                     | [`AUTH_MESSAGE_BYTES_MAX`]   |
//! | Query, Parse, Bind, CopyData              | [`LARGE_MESSAGE_BYTES_MAX`]  |
//! | all others (Describe, Execute, Sync, ...) | [`SMALL_MESSAGE_BYTES_MAX`]  |
//!
//! The first two and the last are PostgreSQL's. PostgreSQL allows 1 GB for the large ones;
//! Bulwark allows 64 MiB, so that a connection holds at most about twice that in buffers and
//! `max_connections` bounds the whole server's input memory.
//!
//! # What the client sees
//!
//! A violation ends the connection with FATAL 08P01 protocol_violation (0A000 for a
//! protocol version other than 3), naming what was wrong, as PostgreSQL does for an unknown
//! message type. PostgreSQL reports a malformed body as a plain ERROR and reads on;
//! Bulwark closes, because after a body that does not parse it cannot be sure where the next
//! message starts. A message cut short by the end of the stream closes the connection without
//! a reply (there is nobody left to read it).
//!
//! # Left out
//!
//! - FunctionCall ('F') is not supported: it is an unknown message type here.
//! - A password message after authentication is ignored (pgwire drops it), where PostgreSQL
//!   reports an unknown message type.

use crate::codec::PROTOCOL_VIOLATION;
use bytes::{Buf, BytesMut};
use futures::{SinkExt, StreamExt};
use pgwire::api::{ClientInfo, ErrorHandler, PgWireConnectionState, PgWireServerHandlers};
use pgwire::error::{ErrorInfo, PgWireError};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use pgwire::tokio::server::MaybeTls;
use pgwire::tokio::server::{negotiate_tls, process_error, process_message};
use pgwire::tokio::TlsAcceptor;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, FramedParts};

/// The largest startup packet or CancelRequest, length prefix included (PostgreSQL's
/// MAX_STARTUP_PACKET_LENGTH).
pub const STARTUP_PACKET_BYTES_MAX: usize = 10_000;
/// The largest password or SASL message, type byte excluded (PostgreSQL's
/// PG_MAX_AUTH_TOKEN_LENGTH).
pub const AUTH_MESSAGE_BYTES_MAX: usize = 65_535;
/// The largest Query, Parse, Bind or CopyData message, type byte excluded.
pub const LARGE_MESSAGE_BYTES_MAX: usize = 64 << 20;
/// The largest message of any other type, type byte excluded (PostgreSQL's
/// PQ_SMALL_MESSAGE_LIMIT).
pub const SMALL_MESSAGE_BYTES_MAX: usize = 10_000;
/// Bytes read from the socket at a time.
const READ_CHUNK_BYTES: usize = 8 << 10;
/// How long a client has from connecting to finishing authentication (PostgreSQL's
/// authentication_timeout).
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// SQLSTATE 0A000 feature_not_supported (an unsupported protocol version).
const FEATURE_NOT_SUPPORTED: &str = "0A000";
/// The CancelRequest code, in place of a protocol version.
pub(crate) const CANCEL_REQUEST_CODE: u32 = 80877102;
/// A cancel key is 4 to 256 bytes (4 in protocol 3.0).
const CANCEL_KEY_BYTES_MIN: usize = 4;
const CANCEL_KEY_BYTES_MAX: usize = 256;

/// Input that breaks the protocol: the SQLSTATE and message the client is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The SQLSTATE.
    pub code: &'static str,
    /// What was wrong.
    pub message: String,
}

impl Violation {
    fn new(message: impl Into<String>) -> Violation {
        Violation { code: PROTOCOL_VIOLATION, message: message.into() }
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for Violation {}

/// Where a connection's input stands: startup packets have no type byte, later messages do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The startup packet (or a CancelRequest) comes next.
    Startup,
    /// Typed messages come next.
    Messages,
}

/// A message found whole and well formed at the start of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Its length in bytes, type byte and length prefix included.
    pub bytes: usize,
    /// The phase after it.
    pub next: Phase,
}

/// Checks the message at the start of `buf`: Ok(Some) once it is whole and well formed,
/// Ok(None) while more bytes are needed, Err as soon as it can never be valid (so an
/// oversized length is refused before anything is buffered).
pub fn check_frame(phase: Phase, buf: &[u8]) -> Result<Option<Frame>, Violation> {
    match phase {
        Phase::Startup => check_startup(buf),
        Phase::Messages => check_message(buf),
    }
}

fn check_startup(buf: &[u8]) -> Result<Option<Frame>, Violation> {
    let Some(len) = read_i32(buf, 0) else { return Ok(None) };
    let bad_length = || Violation::new("invalid length of startup packet");
    let len = usize::try_from(len).map_err(|_| bad_length())?;
    if !(8..=STARTUP_PACKET_BYTES_MAX).contains(&len) {
        return Err(bad_length());
    }
    if buf.len() < len {
        return Ok(None);
    }
    let code = read_i32(buf, 4).expect("length checked") as u32;
    let body = &buf[8..len];
    if code == CANCEL_REQUEST_CODE {
        // pid, then the key.
        let key = body.len().checked_sub(4).ok_or_else(|| Violation::new("invalid length of cancel request"))?;
        if !(CANCEL_KEY_BYTES_MIN..=CANCEL_KEY_BYTES_MAX).contains(&key) {
            return Err(Violation::new("invalid length of cancel request"));
        }
        // pgwire closes the connection after a CancelRequest; nothing may follow.
        return Ok(Some(Frame { bytes: len, next: Phase::Startup }));
    }
    let (major, minor) = (code >> 16, code & 0xffff);
    if major != 3 {
        return Err(Violation {
            code: FEATURE_NOT_SUPPORTED,
            message: format!("unsupported frontend protocol {major}.{minor}: server supports 3.0 to 3.2"),
        });
    }
    // Name, value pairs, ended by an empty name as the last byte.
    let mut rest = body;
    loop {
        let name = take_cstring(&mut rest)
            .ok_or_else(|| Violation::new("invalid startup packet layout: expected terminator as last byte"))?;
        if name.is_empty() {
            break;
        }
        take_cstring(&mut rest).ok_or_else(|| {
            Violation::new(format!("invalid startup packet layout: no value for \"{}\"", lossy(name)))
        })?;
    }
    if !rest.is_empty() {
        return Err(Violation::new("invalid startup packet layout: expected terminator as last byte"));
    }
    Ok(Some(Frame { bytes: len, next: Phase::Messages }))
}

/// The largest message of a type a client may send (type byte excluded), None for a type it
/// may not.
pub fn message_bytes_max(message_type: u8) -> Option<usize> {
    match message_type {
        b'Q' | b'P' | b'B' | b'd' => Some(LARGE_MESSAGE_BYTES_MAX),
        b'p' => Some(AUTH_MESSAGE_BYTES_MAX),
        b'C' | b'D' | b'E' | b'H' | b'S' | b'X' | b'c' | b'f' => Some(SMALL_MESSAGE_BYTES_MAX),
        _ => None,
    }
}

fn check_message(buf: &[u8]) -> Result<Option<Frame>, Violation> {
    let Some(&message_type) = buf.first() else { return Ok(None) };
    let max = message_bytes_max(message_type)
        .ok_or_else(|| Violation::new(format!("invalid frontend message type {message_type}")))?;
    let Some(len) = read_i32(buf, 1) else { return Ok(None) };
    let len = usize::try_from(len).ok().filter(|len| (4..=max).contains(len)).ok_or_else(|| {
        Violation::new(format!(
            "invalid message length {len} for message type '{}' (at most {max})",
            char::from(message_type)
        ))
    })?;
    if buf.len() < 1 + len {
        return Ok(None);
    }
    check_body(message_type, &buf[5..1 + len])?;
    Ok(Some(Frame { bytes: 1 + len, next: Phase::Messages }))
}

/// Checks that a message body has exactly its type's layout.
fn check_body(message_type: u8, body: &[u8]) -> Result<(), Violation> {
    let mut r = body;
    let ok = match message_type {
        // Query, CopyFail: a string.
        b'Q' | b'f' => take_cstring(&mut r).is_some(),
        // Parse: name, query, parameter type oids.
        b'P' => take_cstring(&mut r).is_some() && take_cstring(&mut r).is_some() && take_array(&mut r, 4),
        b'B' => take_bind(&mut r),
        // Close, Describe: 'S' or 'P', then a name (the handlers check the letter).
        b'C' | b'D' => take(&mut r, 1).is_some() && take_cstring(&mut r).is_some(),
        // Execute: portal name, row limit.
        b'E' => take_cstring(&mut r).is_some() && take(&mut r, 4).is_some(),
        // Flush, Sync, Terminate, CopyDone: nothing.
        b'H' | b'S' | b'X' | b'c' => true,
        // CopyData, password family: any bytes (SASL bodies are checked when used).
        b'd' | b'p' => {
            r = &[];
            true
        }
        other => unreachable!("message type {other} has a bound but no layout"),
    };
    if ok && r.is_empty() {
        Ok(())
    } else {
        Err(Violation::new(format!("invalid message format for message type '{}'", char::from(message_type))))
    }
}

/// Bind: portal, statement, parameter formats, parameters (length -1 is NULL), result
/// formats.
fn take_bind(r: &mut &[u8]) -> bool {
    if take_cstring(r).is_none() || take_cstring(r).is_none() || !take_array(r, 2) {
        return false;
    }
    let Some(count) = take_u16(r) else { return false };
    for _ in 0..count {
        let Some(len) = take(r, 4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]])) else { return false };
        if len == -1 {
            continue;
        }
        let Ok(len) = usize::try_from(len) else { return false };
        if take(r, len).is_none() {
            return false;
        }
    }
    take_array(r, 2)
}

/// Checks a SASLInitialResponse body: mechanism name, then data of the given length (-1:
/// none), nothing after. pgwire decodes it only once it passes.
pub fn sasl_initial_response_ok(body: &[u8]) -> bool {
    let mut r = body;
    if take_cstring(&mut r).is_none() {
        return false;
    }
    let Some(len) = take(&mut r, 4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]])) else { return false };
    match len {
        -1 => r.is_empty(),
        len => usize::try_from(len).is_ok_and(|len| len == r.len()),
    }
}

fn read_i32(buf: &[u8], at: usize) -> Option<i32> {
    buf.get(at..at + 4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn take<'a>(r: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if r.len() < n {
        return None;
    }
    let (head, tail) = r.split_at(n);
    *r = tail;
    Some(head)
}

fn take_u16(r: &mut &[u8]) -> Option<u16> {
    take(r, 2).map(|b| u16::from_be_bytes([b[0], b[1]]))
}

/// A u16 count, then that many elements of `size` bytes.
fn take_array(r: &mut &[u8], size: usize) -> bool {
    take_u16(r).is_some_and(|n| take(r, n as usize * size).is_some())
}

/// A NUL-terminated string (without its NUL).
fn take_cstring<'a>(r: &mut &'a [u8]) -> Option<&'a [u8]> {
    let end = r.iter().position(|b| *b == 0)?;
    let s = &r[..end];
    *r = &r[end + 1..];
    Some(s)
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

// ---- The checked stream -------------------------------------------------------------------

/// A stream whose reads yield only bytes of messages [`check_frame`] accepted; a violation
/// is a read error carrying the [`Violation`]. Writes pass through.
pub struct Checked<S> {
    inner: S,
    phase: Phase,
    /// Bytes read and not yet handed out; the first `checked` of them form checked messages.
    pending: BytesMut,
    checked: usize,
    eof: bool,
    failed: Option<Violation>,
}

impl<S> Checked<S> {
    /// Wraps `inner`, whose input starts with `already_read` (bytes read before, during TLS
    /// negotiation) in `phase`.
    pub fn new(inner: S, phase: Phase, already_read: BytesMut) -> Checked<S> {
        Checked { inner, phase, pending: already_read, checked: 0, eof: false, failed: None }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Checked<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if let Some(v) = &this.failed {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, v.clone())));
            }
            if this.checked > 0 {
                let n = this.checked.min(out.remaining());
                out.put_slice(&this.pending[..n]);
                this.pending.advance(n);
                this.checked -= n;
                return Poll::Ready(Ok(()));
            }
            match check_frame(this.phase, &this.pending) {
                Ok(Some(frame)) => {
                    this.checked = frame.bytes;
                    this.phase = frame.next;
                    continue;
                }
                Ok(None) => {}
                Err(v) => {
                    this.failed = Some(v);
                    continue;
                }
            }
            if this.eof {
                // A message cut short by the end of the stream: end without a reply.
                this.pending.clear();
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; READ_CHUNK_BYTES];
            let mut chunk_buf = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.inner).poll_read(cx, &mut chunk_buf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) if chunk_buf.filled().is_empty() => this.eof = true,
                Poll::Ready(Ok(())) => this.pending.extend_from_slice(chunk_buf.filled()),
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Checked<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The violation behind a read error, if it is one.
fn violation_of(e: &PgWireError) -> Option<&Violation> {
    match e {
        PgWireError::IoError(e) => e.get_ref().and_then(|e| e.downcast_ref::<Violation>()),
        _ => None,
    }
}

// ---- The message loop ---------------------------------------------------------------------

/// Serves one connection: TLS negotiation (pgwire's), then messages through [`Checked`] to
/// the handlers until the client leaves, a FATAL error, or a protocol violation (answered
/// with FATAL and the close, and counted in `violations`). pgwire's own loop, with the
/// checks in front of its decoder.
pub async fn process_socket<H: PgWireServerHandlers>(
    tcp: TcpStream,
    tls: Option<TlsAcceptor>,
    handlers: H,
    violations: &std::sync::atomic::AtomicU64,
) -> io::Result<()> {
    let peer = tcp.peer_addr()?;
    let startup_deadline = tokio::time::sleep(STARTUP_TIMEOUT);
    tokio::pin!(startup_deadline);
    let negotiated = tokio::select! {
        _ = &mut startup_deadline => return Ok(()),
        socket = negotiate_tls(tcp, tls) => socket?,
    };
    // None: a direct TLS handshake without TLS configured.
    let Some(negotiated) = negotiated else { return Ok(()) };
    let old = negotiated.into_parts();
    let plaintext_after_tls = matches!(old.io, MaybeTls::Tls(_)) && !old.read_buf.is_empty();
    let mut parts = FramedParts::new(Checked::new(old.io, Phase::Startup, old.read_buf), old.codec);
    parts.write_buf = old.write_buf;
    let mut socket = Framed::from_parts(parts);
    if plaintext_after_tls {
        // Bytes sent in the clear after SSLRequest would be taken as if they came encrypted.
        let v = Violation::new("received unencrypted data after SSL request");
        violations.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return refuse_violation(&mut socket, peer, &v).await;
    }

    let startup_handler = handlers.startup_handler();
    let simple_query_handler = handlers.simple_query_handler();
    let extended_query_handler = handlers.extended_query_handler();
    let copy_handler = handlers.copy_handler();
    let cancel_handler = handlers.cancel_handler();
    let error_handler = handlers.error_handler();
    loop {
        let starting = matches!(
            socket.state(),
            PgWireConnectionState::AwaitingStartup | PgWireConnectionState::AuthenticationInProgress
        );
        let next = if starting {
            tokio::select! {
                _ = &mut startup_deadline => None,
                next = socket.next() => next,
            }
        } else {
            socket.next().await
        };
        let message = match next {
            None => break,
            Some(Ok(message)) => message,
            Some(Err(e)) => {
                let v = match violation_of(&e) {
                    Some(v) => v.clone(),
                    // The checks let through only what pgwire decodes; say so if not.
                    None if !matches!(e, PgWireError::IoError(_)) => Violation::new(e.to_string()),
                    None => return Err(io::Error::other(e.to_string())),
                };
                violations.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return refuse_violation(&mut socket, peer, &v).await;
            }
        };
        // Terminate: the client is leaving; a CancelRequest has a connection of its own.
        if matches!(message, PgWireFrontendMessage::Terminate(_)) {
            break;
        }
        let is_cancel_request = matches!(message, PgWireFrontendMessage::CancelRequest(_));
        let is_extended_query = match socket.state() {
            PgWireConnectionState::CopyInProgress(extended) => extended,
            _ => message.is_extended_query(),
        };
        if let Err(mut e) = process_message(
            message,
            &mut socket,
            startup_handler.clone(),
            simple_query_handler.clone(),
            extended_query_handler.clone(),
            copy_handler.clone(),
            cancel_handler.clone(),
        )
        .await
        {
            error_handler.on_error(&socket, &mut e);
            let is_fatal = e.is_fatal();
            process_error(&mut socket, e, is_extended_query).await?;
            if is_fatal {
                break;
            }
        }
        if is_cancel_request {
            break;
        }
    }
    Ok(())
}

/// Tells the client what broke the protocol (FATAL) and ends the connection.
async fn refuse_violation<S, T>(
    socket: &mut Framed<Checked<S>, pgwire::tokio::server::PgWireMessageServerCodec<T>>,
    peer: std::net::SocketAddr,
    v: &Violation,
) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    tracing::warn!(%peer, sqlstate = v.code, message = %v.message, "protocol violation; closing the connection");
    let mut info = ErrorInfo::new("FATAL".into(), v.code.into(), v.message.clone());
    info.severity_nonlocalized = Some("FATAL".into());
    // The client may be gone already; the connection ends either way.
    let _ = socket.send(PgWireBackendMessage::ErrorResponse(info.into())).await;
    let _ = socket.close().await;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A protocol 3.0 startup message with `params`.
    pub(crate) fn startup(params: &[(&str, &str)]) -> Vec<u8> {
        let mut body = 196608i32.to_be_bytes().to_vec();
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

    fn message(t: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![t];
        out.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn startup_packets() {
        let ok = startup(&[("user", "bulwark")]);
        assert_eq!(check_frame(Phase::Startup, &ok), Ok(Some(Frame { bytes: ok.len(), next: Phase::Messages })));
        assert_eq!(check_frame(Phase::Startup, &ok[..ok.len() - 1]), Ok(None));
        // No terminator, a name without a value, a bad version, lengths out of range.
        let mut unterminated = ok.clone();
        unterminated.pop();
        unterminated[3] -= 1;
        assert!(check_frame(Phase::Startup, &unterminated).is_err());
        assert!(check_frame(Phase::Startup, &[0, 0, 0, 13, 0, 3, 0, 0, b'u', 0, b'x', 0, 0]).is_ok());
        assert!(check_frame(Phase::Startup, &[0, 0, 0, 11, 0, 3, 0, 0, b'u', 0, 0]).is_err());
        let v = check_frame(Phase::Startup, &[0, 0, 0, 9, 0, 2, 0, 0, 0]).unwrap_err();
        assert_eq!(v.code, FEATURE_NOT_SUPPORTED);
        for len in [-1i32, 0, 3, 7, STARTUP_PACKET_BYTES_MAX as i32 + 1, i32::MAX] {
            assert!(check_frame(Phase::Startup, &len.to_be_bytes()).is_err(), "length {len}");
        }
    }

    #[test]
    fn typed_messages() {
        let q = message(b'Q', b"select 1\0");
        assert_eq!(check_frame(Phase::Messages, &q), Ok(Some(Frame { bytes: q.len(), next: Phase::Messages })));
        assert!(check_frame(Phase::Messages, &message(b'Q', b"select 1")).is_err());
        assert!(check_frame(Phase::Messages, &message(b'Q', b"a\0b\0")).is_err());
        assert!(check_frame(Phase::Messages, &message(b'S', b"x")).is_err());
        assert!(check_frame(Phase::Messages, &message(b'E', b"\0")).is_err());
        assert!(check_frame(Phase::Messages, &message(b'E', b"\0\0\0\0\0")).is_ok());
        assert!(check_frame(Phase::Messages, &message(b'F', b"")).is_err());
        // Bind: no formats, one 2-byte parameter, one NULL, no result formats.
        let bind = b"\0\0\0\0\0\x02\0\0\0\x02hi\xff\xff\xff\xff\0\0";
        assert!(check_frame(Phase::Messages, &message(b'B', bind)).is_ok());
        assert!(check_frame(Phase::Messages, &message(b'B', &bind[..bind.len() - 1])).is_err());
        let too_long = b"\0\0\0\0\0\x01\x7f\xff\xff\xff\0\0";
        assert!(check_frame(Phase::Messages, &message(b'B', too_long)).is_err());
        for len in [i32::MIN, -1, 0, 3] {
            let mut m = vec![b'd'];
            m.extend_from_slice(&len.to_be_bytes());
            assert!(check_frame(Phase::Messages, &m).is_err(), "length {len}");
        }
        let mut huge = vec![b'Q'];
        huge.extend_from_slice(&(LARGE_MESSAGE_BYTES_MAX as i32 + 1).to_be_bytes());
        assert!(check_frame(Phase::Messages, &huge).is_err());
    }

    #[test]
    fn sasl_initial_responses() {
        assert!(sasl_initial_response_ok(b"SCRAM-SHA-256\0\0\0\0\x02hi"));
        assert!(sasl_initial_response_ok(b"SCRAM-SHA-256\0\xff\xff\xff\xff"));
        assert!(!sasl_initial_response_ok(b"SCRAM-SHA-256\0\0\0\0\x03hi"));
        assert!(!sasl_initial_response_ok(b"SCRAM-SHA-256\0\0\0"));
        assert!(!sasl_initial_response_ok(b"SCRAM-SHA-256"));
    }
}
