//! Many Websockets on one HTTP/2 connection (`Options::share_http2`):
//! connections that opt in to sharing, to the same server with the same
//! settings, open their Websockets as streams of one HTTP/2 connection,
//! against the testkit in its HTTP/2 mode (cleartext, prior knowledge).
#![cfg(native)]

mod common;

use std::time::Duration;

use common::{is_down, next, options, until};
use wstether::http::Version;
use wstether::{Connection, Event, Events, Frame, Http2, Keepalive, Options, StreamRef};
use wstether_testkit::{Http2 as ServerHttp2, TestServer};

fn sharing() -> Options {
    options().http2(Http2::Prefer).share_http2(true)
}

/// Opens `n` connections to `server` with `options`, each upgraded to
/// `path` over HTTP/2.
async fn open_many(
    server: &TestServer,
    path: &str,
    n: usize,
    options: Options,
) -> Vec<(Connection, Events, StreamRef)> {
    let mut all = Vec::new();
    for _ in 0..n {
        let (conn, mut events) = Connection::open(&server.url("/"), options.clone()).unwrap();
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
        all.push((conn, events, stream));
    }
    all
}

/// Echoes one text on each, in turn.
async fn echo_each(all: &mut [(Connection, Events, StreamRef)], tag: &str) {
    for (i, (conn, events, stream)) in all.iter_mut().enumerate() {
        let text = format!("{tag} {i}");
        conn.ws_send(*stream, Frame::text(text.clone())).unwrap();
        let (event, _) = until(events, |e| matches!(e, Event::Frame { .. })).await;
        let Event::Frame { frame, .. } = event else {
            unreachable!()
        };
        assert_eq!(frame, Frame::text(text));
    }
}

#[tokio::test]
async fn connections_that_share_open_their_websockets_on_one_http2_connection() {
    let server = TestServer::start_http2(ServerHttp2::On).await.unwrap();
    let mut all = open_many(&server, "/", 20, sharing()).await;
    echo_each(&mut all, "shared").await;
    assert_eq!(
        server.accepted_connections(),
        1,
        "one TCP connection for 20 Websockets"
    );
    assert_eq!(server.requests().len(), 20);
}

#[tokio::test]
async fn without_sharing_each_connection_has_its_own() {
    let server = TestServer::start_http2(ServerHttp2::On).await.unwrap();
    let mut all = open_many(&server, "/", 3, options().http2(Http2::Prefer)).await;
    echo_each(&mut all, "own").await;
    assert_eq!(server.accepted_connections(), 3);
}

#[tokio::test]
async fn only_connections_with_the_same_settings_share() {
    let server = TestServer::start_http2(ServerHttp2::On).await.unwrap();
    let mut prefer = open_many(&server, "/", 2, sharing()).await;
    let require = sharing().http2(Http2::Require);
    let mut required = open_many(&server, "/", 2, require).await;
    echo_each(&mut prefer, "prefer").await;
    echo_each(&mut required, "require").await;
    assert_eq!(
        server.accepted_connections(),
        2,
        "one connection per HTTP/2 choice"
    );
}

/// A close frame closes its Websocket (its stream) only: the others keep
/// the HTTP/2 connection and go on.
#[tokio::test]
async fn a_close_frame_closes_one_websocket_and_the_others_stay() {
    let server = TestServer::start_http2(ServerHttp2::On).await.unwrap();
    let mut all = open_many(&server, "/", 3, sharing()).await;
    let (conn, mut events, stream) = all.remove(0);
    conn.ws_send(stream, Frame::close_normal()).unwrap();
    let (event, _) = until(&mut events, is_down).await;
    assert!(
        matches!(
            event,
            Event::Down {
                will_reconnect: false,
                ..
            }
        ),
        "{event:?}"
    );
    echo_each(&mut all, "still here").await;
    assert_eq!(server.accepted_connections(), 1);
    assert_eq!(server.live_connections(), 1);
}

/// The shared connection lost: every Websocket on it goes `Down`, and
/// their reconnects share the next connection (one TCP connection, not
/// one per Websocket).
#[tokio::test]
async fn a_lost_shared_connection_downs_every_websocket_and_they_reconnect_over_one() {
    let server = TestServer::start_http2(ServerHttp2::On).await.unwrap();
    let mut all = open_many(&server, "/", 5, sharing().auto_upgrade(true)).await;
    server.drop_connections();
    for (_, events, _) in all.iter_mut() {
        let (event, _) = until(events, is_down).await;
        assert!(
            matches!(
                event,
                Event::Down {
                    will_reconnect: true,
                    ..
                }
            ),
            "{event:?}"
        );
    }
    for (_, events, stream) in all.iter_mut() {
        let (event, _) = until(events, |e| matches!(e, Event::Upgraded { .. })).await;
        let Event::Upgraded { stream: again, .. } = event else {
            unreachable!()
        };
        *stream = again;
    }
    echo_each(&mut all, "again").await;
    assert_eq!(
        server.accepted_connections(),
        2,
        "one connection, then one more"
    );
}

/// A server that allows 2 concurrent streams: the third Websocket opens a
/// second connection, which the fourth shares.
#[tokio::test]
async fn past_the_servers_stream_limit_another_connection_is_opened_and_shared() {
    let server = TestServer::start_http2(ServerHttp2::MaxStreams(2))
        .await
        .unwrap();
    let mut all = open_many(&server, "/", 4, sharing()).await;
    echo_each(&mut all, "limited").await;
    assert_eq!(server.accepted_connections(), 2);
}

/// The keepalive's PINGs are the connection's, shared: every Websocket's
/// probes are answered while the server never reads any stream, and the
/// server sees no ping frame.
#[tokio::test]
async fn the_websockets_of_a_shared_connection_share_its_pings() {
    let server = TestServer::start_http2(ServerHttp2::On).await.unwrap();
    let every = Duration::from_millis(20);
    let options = sharing()
        .silence_pings(false)
        .keepalive(Keepalive::every(every).timeout(common::PATIENCE));
    let mut all = open_many(&server, "/?silent=1", 4, options).await;
    for (conn, events, _) in all.iter_mut() {
        let mut answers = 0;
        while answers < 3 {
            if let Event::Frame {
                frame: Frame::Pong(_),
                ..
            } = next(events).await
            {
                answers += 1;
            }
        }
        assert!(conn.rtt().is_some());
    }
    assert!(server.pings().is_empty(), "no ping frame on any stream");
    assert_eq!(server.accepted_connections(), 1);
}

#[path = "../examples/http2_many.rs"]
#[allow(dead_code)]
mod http2_many;

/// The README's example: 50 sockets, one TCP connection.
#[tokio::test]
async fn the_readme_example_opens_50_websockets_on_one_connection() {
    let server = TestServer::start_http2(ServerHttp2::On).await.unwrap();
    let (sockets, echoes) = http2_many::task(&server.url("/"), 50).await.unwrap();
    assert_eq!(sockets.len(), 50);
    let expected: Vec<Frame> = (0..50).map(|i| Frame::text(format!("feed {i}"))).collect();
    assert_eq!(echoes, expected);
    assert_eq!(server.accepted_connections(), 1);
}

/// 100 connections opened at once (the storm at a service's start, or
/// after an outage): their dials wait for each other, so one HTTP/2
/// connection carries them all, never 100 handshakes racing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_opens_share_one_connection() {
    let server = TestServer::start_http2(ServerHttp2::On).await.unwrap();
    let url = server.url("/");
    let opens = (0..100).map(|i| {
        let url = url.clone();
        tokio::spawn(async move {
            let mut socket = wstether::Socket::connect(&url, sharing()).await.unwrap();
            socket
                .send(Frame::text(format!("at once {i}")))
                .await
                .unwrap();
            assert_eq!(
                socket.recv().await.unwrap(),
                Frame::text(format!("at once {i}"))
            );
            socket
        })
    });
    let sockets = futures::future::join_all(opens).await;
    assert!(sockets.iter().all(Result::is_ok));
    assert_eq!(server.accepted_connections(), 1);
}
