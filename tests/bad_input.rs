//! Bad input from the application: refused at once with a typed error,
//! never a panic, never a silent drop.
#![cfg(native)]

mod common;

use common::{options, until};
use wstether::{Connection, ErrorKind, Frame, Keepalive, Options, Retry, Upgrade};
use wstether_testkit::TestServer;

#[tokio::test]
async fn malformed_urls_and_schemes_are_refused() {
    let cases = [
        ("", ErrorKind::InvalidUrl),
        ("not a url", ErrorKind::InvalidUrl),
        ("ws://", ErrorKind::InvalidUrl),
        ("ws://exa mple.com", ErrorKind::InvalidUrl),
        ("ws://host:99999", ErrorKind::InvalidUrl),
        ("ws://host/#fragment", ErrorKind::InvalidUrl),
        ("http://example.com", ErrorKind::UnsupportedScheme),
        ("https://example.com", ErrorKind::UnsupportedScheme),
        ("ftp://example.com", ErrorKind::UnsupportedScheme),
        ("mailto:someone@example.com", ErrorKind::UnsupportedScheme),
    ];
    for (url, kind) in cases {
        let error = Connection::open(url, options()).unwrap_err();
        assert_eq!(error.kind(), kind, "{url:?}: {error}");
        assert!(!error.to_string().is_empty());
    }
}

#[tokio::test]
async fn header_injection_and_handshake_headers_are_refused() {
    let server = TestServer::start().await.unwrap();
    let (conn, _events) = Connection::open(&server.url(""), options()).unwrap();
    let bad = [
        Upgrade::new("/").header("x-evil", "a\r\nx-injected: 1"),
        Upgrade::new("/").header("x-evil", "a\nb"),
        Upgrade::new("/").header("x-evil", "nul\0byte"),
        Upgrade::new("/").header("bad name", "v"),
        Upgrade::new("/").header("x\r\ny", "v"),
        Upgrade::new("/").header("Host", "elsewhere"),
        Upgrade::new("/").header("sec-websocket-key", "x"),
        Upgrade::new("/").protocol("two words"),
        Upgrade::new("/").protocol(""),
    ];
    for upgrade in bad {
        let error = conn.ws_upgrade_with(upgrade.clone()).unwrap_err();
        assert_eq!(
            error.kind(),
            ErrorKind::InvalidHeader,
            "{upgrade:?}: {error}"
        );
    }
    for path in ["no-slash", "/with space", "/a\r\nb"] {
        let error = conn.ws_upgrade(path).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidPath, "{path:?}");
    }
    assert_eq!(server.requests().len(), 0, "nothing bad reached the server");
}

#[tokio::test]
async fn invalid_close_codes_and_oversize_control_frames_are_refused_with_the_frames() {
    for code in [0, 999, 1004, 1005, 1006, 1015, 2000, 5000] {
        assert_eq!(
            Frame::close(code, "").unwrap_err().kind(),
            ErrorKind::InvalidCloseCode,
            "{code}"
        );
    }
    assert_eq!(
        Frame::close(1000, "é".repeat(62)).unwrap_err().kind(),
        ErrorKind::InvalidFrame
    );

    let server = TestServer::start().await.unwrap();
    let (conn, mut events) = Connection::open(&server.url(""), options()).unwrap();
    let stream = conn.ws_upgrade("/").unwrap();
    until(&mut events, common::is_upgraded).await;
    // A hand-built close frame with a reserved code is caught at send time.
    let reserved = Frame::Close(Some(wstether::CloseFrame {
        code: wstether::CloseCode::from_wire(1006),
        reason: String::new(),
    }));
    let error = conn
        .ws_send(stream, [Frame::text("a"), reserved.clone()])
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidCloseCode);
    assert_eq!(
        error.unsent(),
        [Frame::text("a"), reserved],
        "nothing of the list is sent"
    );
    let error = conn
        .ws_send(stream, Frame::Ping(vec![0; 126].into()))
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidFrame);
    // The connection is unharmed.
    conn.ws_send(stream, Frame::text("still fine")).unwrap();
    let (event, _) = until(&mut events, |e| matches!(e, wstether::Event::Frame { .. })).await;
    assert!(
        matches!(event, wstether::Event::Frame { frame, .. } if frame == Frame::text("still fine"))
    );
    assert_eq!(server.frames_received(), 1);
}

#[tokio::test]
async fn nonsense_options_are_refused() {
    let bad: [Options; 4] = [
        options().retry(Retry::default().jitter(2.0)),
        options().retry(Retry::default().multiplier(0.0)),
        options().keepalive(
            Keepalive::every(std::time::Duration::ZERO).timeout(std::time::Duration::from_secs(1)),
        ),
        options().add_root_certificate_der(vec![1, 2, 3]),
    ];
    for options in bad {
        let error = Connection::open("ws://127.0.0.1:1", options.clone()).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidOption, "{options:?}");
    }
}

#[test]
fn open_outside_a_tokio_runtime_is_an_error_not_a_panic() {
    let error = Connection::open("ws://127.0.0.1:1", Options::default()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NoRuntime);
    assert!(error.to_string().contains("tokio runtime"), "{error}");
}
