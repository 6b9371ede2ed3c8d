//! Fuzzes the decoding path the server runs on client bytes, in process: Bulwark's framing
//! checks ([`server::protocol`]), pgwire's frontend and startup decoders behind them, and
//! Bulwark's parameter decoding ([`server::codec::decode_param`]) for every supported type.
//!
//! The properties: nothing panics; a message the checks accept is decoded by pgwire whole and
//! exactly (it reads neither past its end nor short of it), so framing never drifts; anything
//! else is refused with an error.

use bytes::{BufMut, BytesMut};
use futures::StreamExt;
use pgwire::api::{ClientInfo, DefaultClient, PgWireConnectionState};
use pgwire::messages::startup::PasswordMessageFamily;
use pgwire::messages::{DecodeContext, PgWireFrontendMessage, ProtocolVersion};
use pgwire::tokio::server::PgWireMessageServerCodec;
use proptest::prelude::*;
use server::codec::{decode_param, FORMAT_BINARY, FORMAT_TEXT};
use server::protocol::{check_frame, sasl_initial_response_ok, Checked, Frame, Phase};
use tokio_util::codec::Framed;

/// Message types a client may send, and a few it may not.
const TYPES: &[u8] = b"QPBdpCDEHSXcfF\0zs";

/// Every type oid `decode_param` knows, and some it does not.
const OIDS: &[u32] =
    &[0, 16, 17, 19, 20, 21, 23, 25, 700, 701, 705, 1042, 1043, 1082, 1114, 1184, 1186, 1700, 2950, 114];

/// The decoder's context in `phase`, as the server's codec sets it (before startup the
/// protocol version is pgwire's default, 3.2, which reads a cancel key of any length).
fn ctx(phase: Phase) -> DecodeContext {
    let mut ctx = DecodeContext::new(ProtocolVersion::default());
    ctx.awaiting_frontend_ssl = false;
    ctx.awaiting_frontend_startup = phase == Phase::Startup;
    ctx
}

/// A message with a correct length prefix around `body`.
fn typed(t: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![t];
    out.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Checks the frame at the start of `input`; if accepted, pgwire must decode exactly it.
fn check_then_decode(phase: Phase, input: &[u8]) -> Option<Frame> {
    let frame = check_frame(phase, input).ok()??;
    let mut buf = BytesMut::from(input);
    let before = buf.len();
    let decoded = PgWireFrontendMessage::decode(&mut buf, &ctx(phase));
    assert!(matches!(decoded, Ok(Some(_))), "accepted frame {:?} not decoded: {decoded:?}", &input[..frame.bytes]);
    assert_eq!(before - buf.len(), frame.bytes, "pgwire consumed other than the frame {:?}", &input[..frame.bytes]);
    Some(frame)
}

/// Feeds `input` through the check, frame by frame, decoding each accepted one.
fn run_stream(mut phase: Phase, mut input: &[u8]) {
    while let Some(frame) = check_then_decode(phase, input) {
        input = &input[frame.bytes..];
        phase = frame.next;
    }
}

/// Startup packets: a version, then name/value strings, maybe ended, maybe not.
fn startup_packet() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![Just(196608u32), Just(196610u32), Just(80877102u32), Just(80877103u32), any::<u32>()],
        proptest::collection::vec(proptest::collection::vec(1u8..=255, 0..8), 0..6),
        any::<bool>(),
        proptest::option::of(any::<i32>()),
    )
        .prop_map(|(version, strings, terminated, bad_len)| {
            let mut body = version.to_be_bytes().to_vec();
            for s in strings {
                body.extend(s);
                body.push(0);
            }
            if terminated {
                body.push(0);
            }
            let len = bad_len.unwrap_or((body.len() + 4) as i32);
            let mut out = len.to_be_bytes().to_vec();
            out.extend(body);
            out
        })
}

/// Bind messages built from parts, lengths sometimes lying.
fn bind_body() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::collection::vec(any::<i16>(), 0..4),
        proptest::collection::vec(proptest::option::of(proptest::collection::vec(any::<u8>(), 0..6)), 0..4),
        proptest::collection::vec(any::<i16>(), 0..4),
        proptest::option::of((0usize..4, any::<i32>())),
    )
        .prop_map(|(formats, params, results, lie)| {
            let mut b = BytesMut::new();
            b.put_slice(b"p\0s\0");
            b.put_u16(formats.len() as u16);
            formats.iter().for_each(|f| b.put_i16(*f));
            b.put_u16(params.len() as u16);
            for (i, p) in params.iter().enumerate() {
                let len = match (lie, p) {
                    (Some((at, len)), _) if at == i => len,
                    (_, Some(p)) => p.len() as i32,
                    (_, None) => -1,
                };
                b.put_i32(len);
                if let Some(p) = p {
                    b.put_slice(p);
                }
            }
            b.put_u16(results.len() as u16);
            results.iter().for_each(|f| b.put_i16(*f));
            b.to_vec()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(phase_startup in any::<bool>(), input in proptest::collection::vec(any::<u8>(), 0..64)) {
        let phase = if phase_startup { Phase::Startup } else { Phase::Messages };
        run_stream(phase, &input);
    }

    #[test]
    fn framed_messages_decode_exactly_or_are_refused(
        messages in proptest::collection::vec(
            (proptest::sample::select(TYPES), proptest::collection::vec(any::<u8>(), 0..24)),
            1..6,
        ),
        tail in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        let mut input: Vec<u8> = messages.iter().flat_map(|(t, body)| typed(*t, body)).collect();
        input.extend(tail);
        run_stream(Phase::Messages, &input);
    }

    #[test]
    fn structured_messages_decode_exactly(bind in bind_body(), name in "[a-z]{0,4}", rows in any::<i32>(), cut in 0usize..6) {
        let mut execute = name.clone().into_bytes();
        execute.push(0);
        execute.extend_from_slice(&rows.to_be_bytes());
        let mut parse = format!("{name}\0select $1\0").into_bytes();
        parse.extend_from_slice(&[0, 1, 0, 0, 0, 23]);
        for (t, body) in [(b'B', bind), (b'E', execute), (b'P', parse)] {
            // Whole, then with its last `cut` bytes cut off under a length that agrees.
            let whole = typed(t, &body);
            prop_assert!(check_then_decode(Phase::Messages, &whole).is_some() || t == b'B');
            let short = typed(t, &body[..body.len().saturating_sub(cut)]);
            run_stream(Phase::Messages, &short);
        }
    }

    #[test]
    fn startup_packets_decode_exactly_or_are_refused(packet in startup_packet(), tail in proptest::collection::vec(any::<u8>(), 0..8)) {
        let mut input = packet;
        input.extend(tail);
        run_stream(Phase::Startup, &input);
    }

    #[test]
    fn sasl_bodies_decode_only_when_well_formed(
        method in proptest::collection::vec(1u8..=255, 0..14),
        len in prop_oneof![Just(-1i32), 0i32..8, any::<i32>()],
        data in proptest::collection::vec(any::<u8>(), 0..8),
        terminated in any::<bool>(),
    ) {
        let mut body = method;
        if terminated {
            body.push(0);
        }
        body.extend_from_slice(&len.to_be_bytes());
        body.extend(data);
        if sasl_initial_response_ok(&body) {
            let raw = PasswordMessageFamily::Raw(BytesMut::from(&body[..]));
            prop_assert!(raw.into_sasl_initial_response().is_ok());
        }
        // SASLResponse takes any bytes.
        prop_assert!(PasswordMessageFamily::Raw(BytesMut::from(&body[..])).into_sasl_response().is_ok());
    }

    #[test]
    fn parameters_decode_or_fail_for_every_type(
        oid in proptest::sample::select(OIDS),
        binary in any::<bool>(),
        bytes in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..24),
            // NUMERIC-shaped: ndigits, weight, sign, dscale, digits.
            (0u16..6, any::<i16>(), prop_oneof![Just(0u16), Just(0x4000u16), Just(0xC000u16), any::<u16>()],
             0u16..40, proptest::collection::vec(0u16..10050, 0..6))
                .prop_map(|(n, w, s, d, digits)| {
                    let mut b = Vec::new();
                    for v in [n, w as u16, s, d] {
                        b.extend_from_slice(&v.to_be_bytes());
                    }
                    digits.iter().take(n as usize).for_each(|v| b.extend_from_slice(&v.to_be_bytes()));
                    b
                }),
            "[-+0-9.eE a-zA-Z:]{0,24}".prop_map(String::into_bytes),
        ],
    ) {
        let format = if binary { FORMAT_BINARY } else { FORMAT_TEXT };
        let _ = decode_param(0, oid, format, Some(&bytes));
        prop_assert!(decode_param(0, oid, format, None).is_ok());
    }

    /// The whole read path: arbitrary bytes through `Checked` into pgwire's own server codec,
    /// with the connection state moved on after a startup packet as the handlers would.
    #[test]
    fn checked_stream_into_pgwire_codec(
        startup in startup_packet(),
        messages in proptest::collection::vec(
            (proptest::sample::select(TYPES), proptest::collection::vec(any::<u8>(), 0..16)),
            0..5,
        ),
        noise in proptest::collection::vec(any::<u8>(), 0..16),
    ) {
        let mut input = startup;
        input.extend(messages.iter().flat_map(|(t, body)| typed(*t, body)));
        input.extend(noise);
        let addr = "127.0.0.1:1".parse().unwrap();
        let codec = PgWireMessageServerCodec::<()>::new(DefaultClient::new(addr, false));
        let mut framed = Framed::new(Checked::new(std::io::Cursor::new(input), Phase::Startup, BytesMut::new()), codec);
        framed.set_state(PgWireConnectionState::AwaitingStartup);
        futures::executor::block_on(async {
            while let Some(next) = framed.next().await {
                match next {
                    Ok(PgWireFrontendMessage::Startup(_)) => framed.set_state(PgWireConnectionState::ReadyForQuery),
                    Ok(PgWireFrontendMessage::CancelRequest(_)) => break,
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        });
    }
}

#[test]
fn pgwire_alone_panics_on_what_the_checks_refuse() {
    // Why the checks exist: pgwire's CopyData decoder subtracts 4 from a length of 0.
    let input = [b'd', 0, 0, 0, 0];
    assert!(check_frame(Phase::Messages, &input).is_err());
    let decoded = std::panic::catch_unwind(|| {
        let mut buf = BytesMut::from(&input[..]);
        let _ = PgWireFrontendMessage::decode(&mut buf, &ctx(Phase::Messages));
    });
    assert!(decoded.is_err(), "pgwire 0.42.1 decodes a zero-length CopyData; are the checks still needed?");
}
