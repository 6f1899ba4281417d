//! `wss://` against the testkit's TLS mode, with a CA and server
//! certificates made at test time (rcgen, ring): trusted through
//! `Options::add_root_certificate_der`, refused without it, refused for
//! another name. Every failure is a typed `ErrorKind::Tls`, then a retry.
#![cfg(all(native, any(feature = "ring", feature = "aws-lc-rs")))]

mod common;
mod tls_support;

use common::{next, options, until};
use tls_support::{ca, server_for};
use wstether::{Connection, ErrorKind, Event, Frame};
use wstether_testkit::TestServer;

/// The first connect error, then checks a retry is scheduled.
async fn tls_failure(events: &mut wstether::Events) -> wstether::Error {
    let Event::Error { error, .. } = next(events).await else {
        panic!("a connect error first")
    };
    assert!(matches!(
        next(events).await,
        Event::Reconnecting { attempt: 2, .. }
    ));
    error
}

#[tokio::test]
async fn a_server_signed_by_an_added_root_is_trusted() {
    let ca = ca("wstether test CA");
    let server = server_for(&ca, &["localhost", "127.0.0.1"]).await;
    assert!(server.url("/").starts_with("wss://localhost:"));
    let options = options().add_root_certificate_der(ca.der.clone());
    let (conn, mut events) = Connection::open(&server.url(""), options).unwrap();
    let stream = conn.ws_upgrade("/tls").unwrap();
    until(&mut events, common::is_upgraded).await;
    conn.ws_send(stream, Frame::text("over TLS")).unwrap();
    assert!(
        matches!(next(&mut events).await, Event::Frame { frame, .. } if frame == Frame::text("over TLS"))
    );
    assert_eq!(server.requests()[0].path, "/tls");
}

#[tokio::test]
async fn an_unknown_issuer_is_a_tls_error_then_a_retry() {
    let ca = ca("wstether test CA");
    let server = server_for(&ca, &["localhost"]).await;
    let (conn, mut events) = Connection::open(&server.url(""), options()).unwrap();
    conn.ws_upgrade("/").unwrap();
    let error = tls_failure(&mut events).await;
    assert_eq!(error.kind(), ErrorKind::Tls, "{error}");
    // "TLS error: handshake with localhost:PORT: invalid peer certificate: UnknownIssuer"
    let text = error.to_string();
    assert!(
        text.contains("invalid peer certificate"),
        "a clear message: {text}"
    );
    assert!(text.contains("UnknownIssuer"), "{text}");
    assert!(server.requests().is_empty(), "nothing got past TLS");
    drop(conn);
}

#[tokio::test]
async fn a_certificate_for_another_name_is_a_tls_error() {
    let ca = ca("wstether test CA");
    let server = server_for(&ca, &["elsewhere.example"]).await;
    let options = options().add_root_certificate_der(ca.der.clone());
    let (conn, mut events) = Connection::open(&server.url(""), options).unwrap();
    conn.ws_upgrade("/").unwrap();
    let error = tls_failure(&mut events).await;
    assert_eq!(error.kind(), ErrorKind::Tls, "{error}");
    // "… invalid peer certificate: certificate not valid for name "localhost"; …"
    assert!(error.to_string().contains("not valid for name"), "{error}");
    assert!(server.requests().is_empty());
    drop(conn);
}

#[tokio::test]
async fn start_tls_refuses_a_key_that_is_not_one() {
    let error = TestServer::start_tls(vec![vec![1, 2, 3]], vec![4, 5, 6])
        .await
        .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
}

/// Another crate installed a process-level crypto provider: wstether's
/// own configuration still uses its feature's provider, explicitly, and
/// connects (no "no process-level CryptoProvider" panic, no conflict).
#[tokio::test]
async fn tls_config_default_ignores_a_process_level_crypto_provider() {
    // Err if another test of this binary installed it first: fine.
    let _ = (*tls_support::provider()).clone().install_default();
    assert!(wstether::rustls::crypto::CryptoProvider::get_default().is_some());
    let ca = ca("wstether test CA");
    let server = server_for(&ca, &["localhost"]).await;
    let options = options().add_root_certificate_der(ca.der.clone());
    let (conn, mut events) = Connection::open(&server.url(""), options).unwrap();
    conn.ws_upgrade("/").unwrap();
    until(&mut events, common::is_upgraded).await;
}
