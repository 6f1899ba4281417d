//! WebSocket over HTTP/2 (RFC 8441) against a second independent server:
//! Node's own `http2` module with `enableConnectProtocol`, cleartext with
//! prior knowledge, each extended CONNECT stream handed to Node `ws` as a
//! raw byte stream (`tests/http2_peers/node_echo.mjs`; `ws` from
//! benches/node, installed by `.ci/setup`). Echo, order, the server's
//! close code, many Websockets on one shared connection, and a reconnect
//! after the server restarts. A missing `ws` fails the tests, never skips
//! them.
#![cfg(native)]

mod common;

use common::{options, until};
use wstether::http::Version;
use wstether::{Connection, DownReason, Event, Events, Frame, Http2, Options, StreamRef};

/// The Node server; killed when dropped.
struct NodePeer(common::PeerProcess);

/// Starts the Node server on `port` (0: any) and waits until it listens.
async fn node(port: u16) -> NodePeer {
    let ws = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/node/node_modules/ws");
    assert!(
        std::path::Path::new(ws).exists(),
        "{ws} is missing: run .ci/setup (npm ci in benches/node)"
    );
    let port = port.to_string();
    NodePeer(common::PeerProcess::start("node", &["tests/http2_peers/node_echo.mjs", &port]).await)
}

impl NodePeer {
    fn port(&self) -> u16 {
        self.0.port
    }

    fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/", self.port())
    }
}

fn h2() -> Options {
    options().http2(Http2::Require)
}

/// Opens and upgrades `path` over HTTP/2.
async fn upgraded(url: &str, path: &str, options: Options) -> (Connection, Events, StreamRef) {
    let (conn, mut events) = Connection::open(url, options).unwrap();
    let stream = conn.ws_upgrade(path).unwrap();
    let (event, skipped) = until(&mut events, |e| {
        matches!(e, Event::Upgraded { .. } | Event::UpgradeFailed { .. })
    })
    .await;
    assert_eq!(
        event.http_version(),
        Some(Version::HTTP_2),
        "{event:?} {skipped:?}"
    );
    (conn, events, stream)
}

async fn next_frame(events: &mut Events) -> Frame {
    let (event, _) = until(events, |e| matches!(e, Event::Frame { .. })).await;
    match event {
        Event::Frame { frame, .. } => frame,
        _ => unreachable!(),
    }
}

/// Text and binary in order, a 1 MiB message across many DATA frames
/// and windows.
#[tokio::test]
async fn http2_node_echo_in_order() {
    let server = node(0).await;
    let (conn, mut events, stream) = upgraded(&server.url(), "/", h2()).await;
    let mut sent = Vec::new();
    for i in 0..100 {
        let frame = if i % 2 == 0 {
            Frame::text(format!("message {i}"))
        } else {
            Frame::binary(vec![i as u8; i * 10])
        };
        sent.push(frame.clone());
        conn.ws_send(stream, frame).unwrap();
    }
    let big = Frame::binary(vec![7u8; 1 << 20]);
    conn.ws_send(stream, big.clone()).unwrap();
    sent.push(big);
    for expected in sent {
        assert_eq!(next_frame(&mut events).await, expected);
    }
}

#[tokio::test]
async fn http2_node_close_code() {
    let server = node(0).await;
    let (conn, mut events, stream) = upgraded(&server.url(), "/?close=4003", h2()).await;
    conn.ws_send(stream, Frame::text("close me")).unwrap();
    assert_eq!(next_frame(&mut events).await, Frame::text("close me"));
    let (event, _) = until(&mut events, common::is_down).await;
    assert!(
        matches!(
            &event,
            Event::Down {
                reason: DownReason::ClosedByPeer(close),
                ..
            } if close.code.as_u16() == 4003
        ),
        "{event:?}"
    );
}

/// Ten Websockets on one shared HTTP/2 connection to Node, each echoing.
#[tokio::test]
async fn http2_node_many_websockets_share_one_connection() {
    let server = node(0).await;
    let mut all = Vec::new();
    for _ in 0..10 {
        all.push(upgraded(&server.url(), "/", h2().share_http2(true)).await);
    }
    for (i, (conn, events, stream)) in all.iter_mut().enumerate() {
        conn.ws_send(*stream, Frame::text(format!("feed {i}")))
            .unwrap();
        assert_eq!(next_frame(events).await, Frame::text(format!("feed {i}")));
    }
}

/// The server is killed and started again on the same port: the
/// connection comes back and `auto_upgrade` upgrades again over HTTP/2.
#[tokio::test]
async fn http2_node_reconnect() {
    let server = node(0).await;
    let port = server.port();
    let (conn, mut events, _) = upgraded(&server.url(), "/", h2().auto_upgrade(true)).await;
    drop(server);
    until(&mut events, common::is_down).await;
    let _server = node(port).await;
    let (event, _) = until(&mut events, common::is_upgraded).await;
    assert_eq!(event.http_version(), Some(Version::HTTP_2));
    let Event::Upgraded { stream, .. } = event else {
        unreachable!()
    };
    conn.ws_send(stream, Frame::text("again")).unwrap();
    assert_eq!(next_frame(&mut events).await, Frame::text("again"));
}
