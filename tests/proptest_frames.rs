//! Property tests of the public API's validation: random close codes and
//! reasons, random frames, random upgrade paths, headers and subprotocols
//! (random bytes included). Never a panic; every refusal is a typed error
//! that gives the frames back; valid inputs are accepted.
//!
//! 256 cases per property by default; run long with
//! `PROPTEST_CASES=100000 cargo test --all-features --test proptest_frames`.
#![cfg(native)]

use std::time::Duration;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use wstether::{
    CloseCode, CloseFrame, Connection, ErrorKind, FirstConnection, Frame, Options, Retry,
    StreamRef, Upgrade, MAX_CLOSE_REASON_BYTES, MAX_CONTROL_PAYLOAD_BYTES,
};

/// A connection that stays in backoff (nothing listens on port 1 and the
/// next attempt is a minute away): upgrades and sends are validated and
/// queued, never written. Its events are dropped.
struct Live {
    _runtime: tokio::runtime::Runtime,
    conn: Connection,
    stream: StreamRef,
}

fn live() -> Live {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let _enter = runtime.enter();
    let options = Options::default()
        .retry(
            Retry::default()
                .initial_delay(Duration::from_secs(60))
                .max_delay(Duration::from_secs(60))
                .first_connection(FirstConnection::ReconnectPolicy),
        )
        .no_keepalive();
    let (conn, events) = Connection::open("ws://127.0.0.1:1", options).unwrap();
    drop(events);
    let stream = conn.ws_upgrade("/").unwrap();
    Live {
        _runtime: runtime,
        conn,
        stream,
    }
}

/// Text that may be anything: random bytes made into a string, with the
/// control characters, CR, LF and NUL that header injection needs.
fn messy_string() -> impl Strategy<Value = String> {
    prop_oneof![
        vec(any::<u8>(), 0..48).prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
        any::<String>(),
        vec(
            select(vec![
                'a', 'Z', '0', '-', ' ', ':', '\r', '\n', '\0', '\t', '/', '?', '#', 'é'
            ]),
            0..24
        )
        .prop_map(|chars| chars.into_iter().collect()),
    ]
}

fn from_alphabet(
    alphabet: &'static str,
    len: std::ops::Range<usize>,
) -> impl Strategy<Value = String> {
    let chars: Vec<char> = alphabet.chars().collect();
    vec(select(chars), len).prop_map(|chars| chars.into_iter().collect())
}

const TCHARS: &str =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~";

proptest! {
    // The case count comes from `PROPTEST_CASES` (default 256); a failure
    // prints its minimal input rather than writing a regressions file.
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn close_codes_and_reasons_are_validated(code in any::<u16>(), reason in messy_string()) {
        let sendable = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
        prop_assert_eq!(CloseCode::is_sendable(code), sendable);
        match CloseCode::new(code) {
            Ok(valid) => {
                prop_assert!(sendable);
                prop_assert_eq!(valid.as_u16(), code);
            }
            Err(error) => {
                prop_assert!(!sendable);
                prop_assert_eq!(error.kind(), ErrorKind::InvalidCloseCode);
            }
        }
        if CloseCode::is_sendable_by_browser(code) {
            prop_assert!(sendable);
        }
        match Frame::close(code, reason.clone()) {
            Ok(frame) => {
                prop_assert!(sendable && reason.len() <= MAX_CLOSE_REASON_BYTES);
                prop_assert_eq!(frame, Frame::Close(Some(CloseFrame::new(code, reason).unwrap())));
            }
            Err(error) if !sendable => prop_assert_eq!(error.kind(), ErrorKind::InvalidCloseCode),
            Err(error) => {
                prop_assert!(reason.len() > MAX_CLOSE_REASON_BYTES);
                prop_assert_eq!(error.kind(), ErrorKind::InvalidFrame);
            }
        }
    }

    #[test]
    fn random_frames_are_queued_or_refused_with_a_typed_error(
        kind in 0..5u8,
        bytes in vec(any::<u8>(), 0..300),
        text in any::<String>(),
        code in any::<u16>(),
        reason_len in 0..200usize,
    ) {
        let live = live();
        let frame = match kind {
            0 => Frame::text(text.clone()),
            1 => Frame::binary(bytes.clone()),
            2 => Frame::Ping(bytes.clone().into()),
            3 => Frame::Pong(bytes.clone().into()),
            // Hand-built, unchecked: the send must catch what is wrong.
            _ => Frame::Close(Some(CloseFrame {
                code: CloseCode::from_wire(code),
                reason: "r".repeat(reason_len),
            })),
        };
        let expected = match kind {
            0 | 1 => None,
            2 | 3 if bytes.len() > MAX_CONTROL_PAYLOAD_BYTES => Some(ErrorKind::InvalidFrame),
            2 | 3 => None,
            _ if !CloseCode::is_sendable(code) => Some(ErrorKind::InvalidCloseCode),
            _ if reason_len > MAX_CLOSE_REASON_BYTES => Some(ErrorKind::InvalidFrame),
            // A valid close frame would close the connection: not sent here.
            _ => return Ok(()),
        };
        // In a list after a valid frame: the whole list is refused or queued.
        let list = vec![Frame::text("first"), frame.clone()];
        match (live.conn.ws_send(live.stream, list.clone()), expected) {
            (Ok(()), None) => {}
            (Err(error), Some(kind)) => {
                prop_assert_eq!(error.kind(), kind);
                prop_assert_eq!(error.unsent(), &list[..]);
            }
            (result, expected) => prop_assert!(false, "{:?} for {:?}, expected {:?}", result, frame, expected),
        }
    }

    #[test]
    fn random_upgrade_paths_headers_and_protocols_never_panic(
        path in messy_string(),
        name in messy_string(),
        value in messy_string(),
        protocol in messy_string(),
    ) {
        let live = live();
        let upgrades = [
            (Upgrade::new(format!("/{path}")), [ErrorKind::InvalidPath].as_slice()),
            (Upgrade::new(path.clone()), &[ErrorKind::InvalidPath]),
            (Upgrade::new("/").header(name.clone(), value.clone()), &[ErrorKind::InvalidHeader]),
            (Upgrade::new("/").protocol(protocol.clone()), &[ErrorKind::InvalidHeader]),
            (Upgrade::new("/").header("sec-websocket-protocol", protocol.clone()), &[ErrorKind::InvalidHeader]),
        ];
        for (upgrade, kinds) in upgrades {
            if let Err(error) = live.conn.ws_upgrade_with(upgrade.clone()) {
                prop_assert!(kinds.contains(&error.kind()), "{:?}: {}", upgrade, error);
                prop_assert!(!error.to_string().is_empty());
            }
        }
        // What can never be valid is refused.
        if !path.starts_with('/') {
            let error = live.conn.ws_upgrade(&path).unwrap_err();
            prop_assert_eq!(error.kind(), ErrorKind::InvalidPath);
        }
        if value.contains(['\r', '\n', '\0']) {
            let error = live.conn.ws_upgrade_with(Upgrade::new("/").header("x-a", value.clone())).unwrap_err();
            prop_assert_eq!(error.kind(), ErrorKind::InvalidHeader);
        }
        if protocol.is_empty() || !protocol.chars().all(|c| TCHARS.contains(c)) {
            let error = live.conn.ws_upgrade_with(Upgrade::new("/").protocol(protocol.clone())).unwrap_err();
            prop_assert_eq!(error.kind(), ErrorKind::InvalidHeader);
        }
    }

    #[test]
    fn valid_upgrades_are_accepted(
        path in from_alphabet("abcXYZ019-._~/", 0..30),
        query in from_alphabet("abc019=&%-_", 0..20),
        name in from_alphabet("abcdefghijklmnopqrstuvwxyz0123456789-", 1..20),
        value in from_alphabet("abc XYZ 019 !\"#$%&'()*+,-./:;<=>?@[]^_`{|}~\t", 0..40),
        protocols in vec(from_alphabet(TCHARS, 1..12), 0..4),
    ) {
        let live = live();
        let mut upgrade = Upgrade::new(format!("/{path}?{query}")).header(format!("x-{name}"), value);
        for protocol in protocols {
            upgrade = upgrade.protocol(protocol);
        }
        let result = live.conn.ws_upgrade_with(upgrade.clone());
        prop_assert!(result.is_ok(), "{:?}: {:?}", upgrade, result);
    }
}
