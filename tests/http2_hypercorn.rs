//! WebSocket over HTTP/2 (RFC 8441) against an independent server:
//! Hypercorn (Python, from PyPI, pinned in `.ci/setup`, venv
//! `target/hypercorn-venv`) serving a small ASGI echo app
//! (`tests/http2_peers/hypercorn_echo.py`) over TLS with ALPN `h2` and
//! `http/1.1`. Echo, order, permessage-deflate, the server's close code and
//! a reconnect after the server restarts. A missing Hypercorn fails the
//! tests (run `.ci/setup`), never skips them.
//!
//! Hypercorn 0.18 has two close bugs over HTTP/2 (issue 22): after a close
//! the client starts it never ends the stream, and any DATA on a stream
//! whose WebSocket has closed (even an empty `END_STREAM`) makes it drop
//! the whole TCP connection. wstether follows the RFC and is not shaped
//! around them: with one Websocket per connection neither changes what the
//! application sees (the closing timeout bounds the first; the second
//! drops a connection that is ending anyway), so these tests need no
//! patched Hypercorn.
#![cfg(native)]

mod common;
mod tls_support;

use std::path::PathBuf;

use common::{options, until};
use wstether::http::Version;
use wstether::{
    Compression, Connection, DownReason, Event, Events, Frame, Http2, Options, StreamRef,
};

/// Hypercorn running the echo app; killed when dropped.
struct Hypercorn {
    _peer: common::PeerProcess,
    port: u16,
}

/// The certificate and key (PEM files) Hypercorn presents, and options
/// trusting their CA.
struct Certs {
    dir: PathBuf,
    ca_der: Vec<u8>,
}

fn pem(label: &str, der: &[u8]) -> String {
    let base64 = data_encoding::BASE64.encode(der);
    let mut text = format!("-----BEGIN {label}-----\n");
    for line in base64.as_bytes().chunks(64) {
        text.push_str(std::str::from_utf8(line).unwrap());
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----\n"));
    text
}

fn certs(name: &str) -> Certs {
    let ca = tls_support::ca("wstether hypercorn CA");
    let leaf = ca.server(&["localhost"]);
    let dir =
        std::env::temp_dir().join(format!("wstether-hypercorn-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("cert.pem"), pem("CERTIFICATE", &leaf.der)).unwrap();
    std::fs::write(dir.join("key.pem"), pem("PRIVATE KEY", &leaf.key_der)).unwrap();
    Certs {
        dir,
        ca_der: ca.der,
    }
}

impl Certs {
    fn options(&self) -> Options {
        options().add_root_certificate_der(self.ca_der.clone())
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn python() -> PathBuf {
    let python = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/hypercorn-venv/bin/python"
    ));
    assert!(
        python.exists(),
        "Hypercorn is not installed in {}: run .ci/setup",
        python.display()
    );
    python
}

/// Starts Hypercorn on `port` (0: any) and waits until it listens.
async fn hypercorn(certs: &Certs, port: u16) -> Hypercorn {
    let python = python();
    let cert = certs.dir.join("cert.pem");
    let key = certs.dir.join("key.pem");
    let port = port.to_string();
    let args = [
        "tests/http2_peers/hypercorn_echo.py",
        cert.to_str().unwrap(),
        key.to_str().unwrap(),
        &port,
    ];
    let peer = common::PeerProcess::start(python.to_str().unwrap(), &args).await;
    Hypercorn {
        port: peer.port,
        _peer: peer,
    }
}

impl Hypercorn {
    fn url(&self) -> String {
        format!("wss://localhost:{}/", self.port)
    }
}

/// Opens and upgrades `/`; the connection, its events, the Websocket and
/// the `Upgraded` event.
async fn upgraded(url: &str, options: Options) -> (Connection, Events, StreamRef, Event) {
    let (conn, mut events) = Connection::open(url, options).unwrap();
    until(&mut events, common::is_up).await;
    let stream = conn.ws_upgrade("/").unwrap();
    let (event, skipped) = until(&mut events, |e| {
        matches!(e, Event::Upgraded { .. } | Event::UpgradeFailed { .. })
    })
    .await;
    assert!(
        matches!(event, Event::Upgraded { .. }),
        "{event:?} after {skipped:?}"
    );
    (conn, events, stream, event)
}

async fn next_frame(events: &mut Events) -> Frame {
    let (event, _) = until(events, |e| matches!(e, Event::Frame { .. })).await;
    match event {
        Event::Frame { frame, .. } => frame,
        _ => unreachable!(),
    }
}

/// Over HTTP/2 by default (ALPN), as the app itself sees (its scope's
/// `http_version`); text and binary messages echo in order, a 1 MiB one
/// across many DATA frames and windows.
#[tokio::test]
async fn http2_hypercorn_echo_in_order() {
    let certs = certs("echo");
    let server = hypercorn(&certs, 0).await;
    let (conn, mut events, stream, event) = upgraded(&server.url(), certs.options()).await;
    assert_eq!(event.http_version(), Some(Version::HTTP_2), "{event:?}");
    conn.ws_send(stream, Frame::text("version?")).unwrap();
    assert_eq!(next_frame(&mut events).await, Frame::text("2"));
    for i in 0..200u32 {
        if i % 2 == 0 {
            conn.ws_send(stream, Frame::text(format!("text {i}")))
                .unwrap();
        } else {
            conn.ws_send(stream, Frame::binary(i.to_be_bytes().to_vec()))
                .unwrap();
        }
    }
    for i in 0..200u32 {
        let expected = if i % 2 == 0 {
            Frame::text(format!("text {i}"))
        } else {
            Frame::binary(i.to_be_bytes().to_vec())
        };
        assert_eq!(next_frame(&mut events).await, expected, "message {i}");
    }
    let big: Vec<u8> = (0..1 << 20).map(|i| (i % 253) as u8).collect();
    conn.ws_send(stream, Frame::binary(big.clone())).unwrap();
    assert_eq!(next_frame(&mut events).await, Frame::binary(big));
}

/// The same app over HTTP/1.1 when HTTP/2 is off.
#[tokio::test]
async fn http2_hypercorn_off_is_http1() {
    let certs = certs("off");
    let server = hypercorn(&certs, 0).await;
    let (conn, mut events, stream, event) =
        upgraded(&server.url(), certs.options().http2(Http2::Off)).await;
    assert_eq!(event.http_version(), Some(Version::HTTP_11));
    conn.ws_send(stream, Frame::text("version?")).unwrap();
    assert_eq!(next_frame(&mut events).await, Frame::text("1.1"));
}

/// permessage-deflate over HTTP/2: agreed in the 200's headers, and
/// messages inflate and deflate as over HTTP/1.1.
#[tokio::test]
async fn http2_hypercorn_deflate() {
    let certs = certs("deflate");
    let server = hypercorn(&certs, 0).await;
    let options = certs.options().compression(Compression::deflate());
    let (conn, mut events, stream, event) = upgraded(&server.url(), options).await;
    assert_eq!(event.http_version(), Some(Version::HTTP_2));
    assert!(
        event
            .extensions()
            .is_some_and(|e| e.starts_with("permessage-deflate")),
        "{event:?}"
    );
    let text = "compressible ".repeat(20_000);
    conn.ws_send(stream, Frame::text(text.clone())).unwrap();
    assert_eq!(next_frame(&mut events).await, Frame::text(text));
    conn.ws_send(stream, Frame::text("small")).unwrap();
    assert_eq!(next_frame(&mut events).await, Frame::text("small"));
}

/// The server's close code arrives in `Down`.
#[tokio::test]
async fn http2_hypercorn_close_code() {
    let certs = certs("close");
    let server = hypercorn(&certs, 0).await;
    let (conn, mut events, stream, _) = upgraded(&server.url(), certs.options()).await;
    conn.ws_send(stream, Frame::text("close:4002")).unwrap();
    let (event, _) = until(&mut events, common::is_down).await;
    assert!(
        matches!(
            &event,
            Event::Down {
                reason: DownReason::ClosedByPeer(close),
                ..
            } if close.code.as_u16() == 4002
        ),
        "{event:?}"
    );
}

/// Hypercorn is killed and started again on the same port: the
/// connection comes back and `auto_upgrade` upgrades again over HTTP/2.
#[tokio::test]
async fn http2_hypercorn_reconnect() {
    let certs = certs("reconnect");
    let server = hypercorn(&certs, 0).await;
    let port = server.port;
    let url = server.url();
    let (conn, mut events, _, _) = upgraded(&url, certs.options().auto_upgrade(true)).await;
    drop(server);
    until(&mut events, common::is_down).await;
    let _server = hypercorn(&certs, port).await;
    let (event, _) = until(&mut events, common::is_upgraded).await;
    assert_eq!(event.http_version(), Some(Version::HTTP_2));
    let Event::Upgraded { stream, .. } = event else {
        unreachable!()
    };
    conn.ws_send(stream, Frame::text("again")).unwrap();
    assert_eq!(next_frame(&mut events).await, Frame::text("again"));
}

/// Hypercorn's first close bug, shown: the client closes, Hypercorn
/// answers the close frame but never ends its side of the stream (no
/// `END_STREAM`), so the client waits for it as RFC 6455 §7.1.1 asks (the
/// server ends the connection first) until `closing_timeout`, short here,
/// then ends the Websocket itself: `Down(Shutdown)` with nothing unsent.
/// Against a server that ends the stream (the testkit, `http2_server_close`
/// and the HTTP/1.1 tests), the same `Down` comes without the wait.
#[tokio::test]
async fn http2_hypercorn_bug_client_close_never_ends_the_stream() {
    let certs = certs("client-close");
    let server = hypercorn(&certs, 0).await;
    let options = certs
        .options()
        .closing_timeout(std::time::Duration::from_millis(300));
    let (conn, mut events, stream, _) = upgraded(&server.url(), options).await;
    conn.ws_send(stream, Frame::close_normal()).unwrap();
    let (event, skipped) = until(&mut events, common::is_down).await;
    assert!(
        skipped.iter().any(|e| matches!(
            e,
            Event::Frame {
                frame: Frame::Close(_),
                ..
            }
        )),
        "Hypercorn answers the close frame: {skipped:?}"
    );
    assert!(
        matches!(
            &event,
            Event::Down {
                reason: DownReason::Shutdown,
                unsent,
                will_reconnect: false,
                ..
            } if unsent.is_empty()
        ),
        "{event:?}"
    );
}

/// Hypercorn's second close bug, shown where it matters: two Websockets
/// sharing one HTTP/2 connection (`share_http2`); the first closes, and
/// the `END_STREAM` that ends its stream (RFC 8441 §5, after the close
/// handshake) makes Hypercorn drop the whole TCP connection without a
/// `GOAWAY`, so the second, which did nothing, goes `Down` and reconnects
/// (on a server that follows the RFC it stays up:
/// `a_close_frame_closes_one_websocket_and_the_others_stay` in
/// tests/http2_sharing.rs). Nothing is lost: its Websocket comes back.
#[tokio::test]
async fn http2_hypercorn_bug_a_closed_stream_drops_the_shared_connection() {
    let certs = certs("shared-close");
    let server = hypercorn(&certs, 0).await;
    let options = certs
        .options()
        .share_http2(true)
        .auto_upgrade(true)
        .closing_timeout(std::time::Duration::from_millis(300));
    let (first, mut first_events, stream, _) = upgraded(&server.url(), options.clone()).await;
    let (second, mut second_events, _, _) = upgraded(&server.url(), options).await;
    first.ws_send(stream, Frame::close_normal()).unwrap();
    until(&mut first_events, common::is_down).await;
    let (event, _) = until(&mut second_events, common::is_down).await;
    assert!(
        matches!(
            &event,
            Event::Down {
                will_reconnect: true,
                ..
            }
        ),
        "{event:?}"
    );
    let (event, _) = until(&mut second_events, common::is_upgraded).await;
    let Event::Upgraded { stream, .. } = event else {
        unreachable!()
    };
    second.ws_send(stream, Frame::text("back")).unwrap();
    assert_eq!(next_frame(&mut second_events).await, Frame::text("back"));
}
