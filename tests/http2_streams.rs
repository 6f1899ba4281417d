//! Many Websockets on one `Connection` over HTTP/2 (Gun's many streams on
//! one connection process, RFC 8441): each `ws_upgrade` gives its own
//! `StreamRef` on the same HTTP/2 connection, frames stay in order per
//! stream, a close frame closes its stream only, a lost connection downs
//! each stream with its own unsent frames, and `auto_upgrade` re-upgrades
//! every stream. Over HTTP/1.1 a connection still carries one Websocket.
//! Against the testkit in its HTTP/2 mode (cleartext, prior knowledge).
#![cfg(native)]

mod common;
mod tls_support;

use std::collections::HashMap;

use common::{options, until};
use wstether::http::Version;
use wstether::{Connection, Event, Events, Frame, Http2, Options, StreamRef};
use wstether_testkit::{Http2 as ServerHttp2, TestServer};

fn h2() -> Options {
    options().http2(Http2::Prefer)
}

/// Upgrades `n` Websockets on `conn` (paths `/?n=i`) and waits for each
/// one's `Upgraded` (over HTTP/2).
async fn upgrade_n(conn: &Connection, events: &mut Events, n: usize) -> Vec<StreamRef> {
    let mut streams = Vec::new();
    for i in 0..n {
        streams.push(conn.ws_upgrade(&format!("/?n={i}")).unwrap());
    }
    let mut upgraded = Vec::new();
    while upgraded.len() < n {
        match common::next(events).await {
            Event::Upgraded { stream, .. } => upgraded.push(stream),
            Event::Up { .. } => {}
            other => panic!("expected the upgrades, got {other:?} after {upgraded:?}"),
        }
    }
    upgraded.sort();
    let mut expected = streams.clone();
    expected.sort();
    assert_eq!(upgraded, expected, "each StreamRef is upgraded once");
    streams
}

#[tokio::test]
async fn each_upgrade_is_a_stream_of_one_http2_connection() {
    let server = TestServer::start_http2(ServerHttp2::On).await.unwrap();
    let (conn, mut events) = Connection::open(&server.url("/"), h2()).unwrap();
    let streams = upgrade_n(&conn, &mut events, 5).await;
    // Frames in order per stream, the streams interleaved.
    for round in 0..20 {
        for stream in &streams {
            conn.ws_send(*stream, Frame::text(format!("{stream} {round}")))
                .unwrap();
        }
    }
    let mut seen: HashMap<StreamRef, usize> = HashMap::new();
    while seen.values().sum::<usize>() < 100 {
        let (event, _) = until(&mut events, |e| matches!(e, Event::Frame { .. })).await;
        let Event::Frame { stream, frame } = event else {
            unreachable!()
        };
        let round = seen.entry(stream).or_default();
        assert_eq!(
            frame,
            Frame::text(format!("{stream} {round}")),
            "in order on {stream}"
        );
        *round += 1;
    }
    assert_eq!(
        server.accepted_connections(),
        1,
        "five Websockets, one TCP connection"
    );
    assert_eq!(server.requests().len(), 5);
}

/// A close frame on one stream closes that Websocket only: the others go on
/// over the same HTTP/2 connection. `shutdown()` then closes every one.
#[tokio::test]
async fn a_close_frame_closes_its_stream_and_shutdown_closes_all() {
    let server = TestServer::start_http2(ServerHttp2::On).await.unwrap();
    let (conn, mut events) = Connection::open(&server.url("/"), h2()).unwrap();
    let streams = upgrade_n(&conn, &mut events, 3).await;
    conn.ws_send(streams[1], Frame::close_normal()).unwrap();
    let (event, _) = until(&mut events, common::is_down).await;
    assert!(
        matches!(&event, Event::Down { killed_streams, will_reconnect: false, .. } if killed_streams == &[streams[1]]),
        "{event:?}"
    );
    for stream in [streams[0], streams[2]] {
        conn.ws_send(stream, Frame::text("still open")).unwrap();
        let (event, _) = until(&mut events, |e| matches!(e, Event::Frame { .. })).await;
        assert!(
            matches!(&event, Event::Frame { stream: s, frame } if *s == stream && *frame == Frame::text("still open")),
            "{event:?}"
        );
    }
    assert_eq!(server.live_connections(), 1);
    conn.shutdown();
    let rest = common::rest(&mut events).await;
    let downs = rest.iter().filter(|e| common::is_down(e)).count();
    assert_eq!(downs, 2, "one Down per stream left: {rest:?}");
}

/// The HTTP/2 connection lost: each stream goes `Down` with its own
/// unsent frames, and `auto_upgrade` re-upgrades every stream over one new
/// connection.
#[tokio::test]
async fn a_lost_connection_downs_each_stream_and_auto_upgrade_brings_every_one_back() {
    let server = TestServer::start_http2(ServerHttp2::On).await.unwrap();
    let (conn, mut events) = Connection::open(&server.url("/"), h2().auto_upgrade(true)).unwrap();
    let streams = upgrade_n(&conn, &mut events, 3).await;
    server.drop_connections();
    let mut downs = Vec::new();
    let mut again = Vec::new();
    while again.len() < 3 {
        match common::next(&mut events).await {
            Event::Down {
                killed_streams,
                will_reconnect: true,
                ..
            } => downs.extend(killed_streams),
            Event::Upgraded {
                stream,
                http_version,
                ..
            } => {
                assert_eq!(http_version, Version::HTTP_2);
                again.push(stream);
            }
            _ => {}
        }
    }
    downs.sort();
    assert_eq!(downs, streams, "each stream's own Down");
    for stream in &again {
        conn.ws_send(*stream, Frame::text("back")).unwrap();
        let (event, _) = until(&mut events, |e| matches!(e, Event::Frame { .. })).await;
        assert!(
            matches!(&event, Event::Frame { stream: s, .. } if s == stream),
            "{event:?}"
        );
    }
    assert_eq!(
        server.accepted_connections(),
        2,
        "one connection, then one more"
    );
}

/// Over HTTP/1.1 a connection carries one Websocket, as in Gun: a second
/// upgrade while the first is open fails with `UpgradeFailed`.
#[tokio::test]
async fn over_http1_a_second_upgrade_fails() {
    let server = TestServer::start().await.unwrap();
    let (conn, mut events) = Connection::open(&server.url("/"), options()).unwrap();
    conn.ws_upgrade("/").unwrap();
    until(&mut events, common::is_upgraded).await;
    let second = conn.ws_upgrade("/").unwrap();
    let (event, _) = until(&mut events, |e| matches!(e, Event::UpgradeFailed { .. })).await;
    assert!(
        matches!(&event, Event::UpgradeFailed { stream, .. } if *stream == second),
        "{event:?}"
    );
    assert_eq!(server.accepted_connections(), 1);
}

/// Flow credit and stale streams per stream: a grant goes to the stream's
/// own Websocket.
#[tokio::test]
async fn update_flow_reaches_the_streams_own_websocket() {
    let server = TestServer::start_http2(ServerHttp2::On).await.unwrap();
    let (conn, mut events) = Connection::open(&server.url("/"), h2()).unwrap();
    let first = conn.ws_upgrade("/").unwrap();
    until(&mut events, common::is_upgraded).await;
    let second = conn
        .ws_upgrade_with(wstether::Upgrade::new("/?send=4&size=8").flow(1))
        .unwrap();
    let (event, _) = until(&mut events, |e| matches!(e, Event::Frame { .. })).await;
    assert!(matches!(&event, Event::Frame { stream, .. } if *stream == second));
    conn.update_flow(second, 3).unwrap();
    for _ in 0..3 {
        let (event, _) = until(&mut events, |e| matches!(e, Event::Frame { .. })).await;
        assert!(matches!(&event, Event::Frame { stream, .. } if *stream == second));
    }
    conn.ws_send(first, Frame::text("first")).unwrap();
    let (event, _) = until(&mut events, |e| matches!(e, Event::Frame { .. })).await;
    assert!(
        matches!(&event, Event::Frame { stream, .. } if *stream == first),
        "{event:?}"
    );
}

/// Either side: the server closing one stream (its close frame) or
/// resetting another (`RST_STREAM`: that stream's typed error) leaves the
/// connection's other streams open.
#[tokio::test]
async fn the_server_closing_or_resetting_one_stream_leaves_the_others() {
    let server = TestServer::start_http2(ServerHttp2::On).await.unwrap();
    let (conn, mut events) = Connection::open(&server.url("/"), h2()).unwrap();
    let kept = conn.ws_upgrade("/").unwrap();
    until(&mut events, common::is_upgraded).await;
    let closed = conn.ws_upgrade("/?close=4001").unwrap();
    let reset = conn.ws_upgrade("/?h2_reset=1").unwrap();
    let (mut closed_down, mut reset_error) = (false, false);
    while !(closed_down && reset_error) {
        match common::next(&mut events).await {
            Event::Upgraded { stream, .. } if stream == reset => {
                // The reset comes once the client has sent something.
                conn.ws_send(reset, Frame::text("poke")).unwrap();
            }
            Event::Down {
                reason: wstether::DownReason::ClosedByPeer(close),
                killed_streams,
                will_reconnect: false,
                ..
            } if killed_streams == [closed] => {
                assert_eq!(close.code.as_u16(), 4001);
                closed_down = true;
            }
            Event::Down {
                reason: wstether::DownReason::Error(error),
                killed_streams,
                will_reconnect: false,
                ..
            } if killed_streams == [reset] => {
                assert_eq!(error.kind(), wstether::ErrorKind::StreamReset, "{error}");
                reset_error = true;
            }
            _ => {}
        }
    }
    conn.ws_send(kept, Frame::text("still here")).unwrap();
    let (event, _) = until(
        &mut events,
        |e| matches!(e, Event::Frame { stream, .. } if *stream == kept),
    )
    .await;
    assert!(matches!(&event, Event::Frame { frame, .. } if *frame == Frame::text("still here")));
    assert_eq!(server.accepted_connections(), 1);
}

/// Dropping every `Connection` clone closes every stream at once (Gun's
/// `close/1`): a last `Down` per stream, then the event stream ends.
#[tokio::test]
async fn dropping_the_connection_closes_every_stream_and_ends_the_events() {
    let server = TestServer::start_http2(ServerHttp2::On).await.unwrap();
    // The HTTP/2 connection closes a closing timeout after its last stream.
    let options = h2().closing_timeout(std::time::Duration::from_millis(200));
    let (conn, mut events) = Connection::open(&server.url("/"), options).unwrap();
    let streams = upgrade_n(&conn, &mut events, 3).await;
    drop(conn);
    let rest = common::rest(&mut events).await;
    let mut downs: Vec<StreamRef> = rest
        .iter()
        .filter_map(|e| match e {
            Event::Down {
                killed_streams,
                will_reconnect: false,
                ..
            } => Some(killed_streams.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    downs.sort();
    assert_eq!(downs, streams, "{rest:?}");
    server.wait_for_live_connections(0).await;
}

/// A further stream never falls back to HTTP/1.1: against a `wss://`
/// server that chose HTTP/1.1 for the connection's own Websocket, a second
/// upgrade fails with `Http2Unavailable` for that stream (after one TLS
/// handshake that finds out), never a second HTTP/1.1 connection, and is
/// not retried; the first Websocket goes on.
#[tokio::test]
async fn over_tls_without_http2_a_further_stream_fails_and_never_falls_back() {
    let ca = tls_support::ca("wstether streams test CA");
    let leaf = ca.server(&["localhost"]);
    let server = TestServer::start_tls(vec![leaf.der], leaf.key_der)
        .await
        .unwrap();
    let options = options().add_root_certificate_der(ca.der);
    let (conn, mut events) = Connection::open(&server.url("/"), options).unwrap();
    let first = conn.ws_upgrade("/").unwrap();
    let (event, _) = until(&mut events, common::is_upgraded).await;
    assert_eq!(event.http_version(), Some(Version::HTTP_11));
    let second = conn.ws_upgrade("/").unwrap();
    // Its UpgradeFailed, and nothing of its connection's (no Down, no
    // Error of no stream: the connection's own Websocket is up).
    let (event, skipped) = until(&mut events, |e| matches!(e, Event::UpgradeFailed { .. })).await;
    assert!(skipped.is_empty(), "{skipped:?}");
    let Event::UpgradeFailed { stream, error, .. } = event else {
        unreachable!()
    };
    assert_eq!(stream, second);
    assert_eq!(
        error.kind(),
        wstether::ErrorKind::Http2Unavailable,
        "{error}"
    );
    conn.ws_send(first, Frame::text("first")).unwrap();
    let (event, skipped) = until(&mut events, |e| matches!(e, Event::Frame { .. })).await;
    assert!(
        matches!(&event, Event::Frame { stream, .. } if *stream == first),
        "{event:?}"
    );
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(server.requests().len(), 1, "no second HTTP/1.1 upgrade");
}
