//! Gun's `flow` (`Upgrade::flow`, `Connection::update_flow`,
//! `Socket::update_flow`) against the testkit: reading pauses when the
//! credit is spent and resumes, in order and without loss, when more is
//! granted; over HTTP/1.1 and HTTP/2, where the stream's window holds the
//! server back. The absence checks wait [`QUIET`]: a frame that should not
//! come would come within milliseconds on loopback.
#![cfg(native)]

mod common;

use std::time::Duration;

use common::{is_down, next, options, until};
use wstether::{
    Connection, ErrorKind, Event, Events, Frame, Http2, Keepalive, Options, Socket, StreamRef,
    Upgrade,
};
use wstether_testkit::{Http2 as ServerHttp2, TestServer};

/// How long nothing must arrive for "nothing arrives".
const QUIET: Duration = Duration::from_millis(300);

/// The index the testkit writes at the start of each `send=N` frame.
fn burst_index(frame: &Frame) -> u64 {
    let bytes: &[u8] = match frame {
        Frame::Text(text) => text.as_bytes(),
        Frame::Binary(bytes) => bytes,
        other => panic!("not a burst frame: {other:?}"),
    };
    let end = bytes.iter().position(|&b| b == b' ').unwrap();
    std::str::from_utf8(&bytes[..end]).unwrap().parse().unwrap()
}

/// Opens `server`, upgrades `upgrade` and waits for `Upgraded`.
async fn open(
    server: &TestServer,
    upgrade: Upgrade,
    options: Options,
) -> (Connection, Events, StreamRef) {
    let (conn, mut events) = Connection::open(&server.url("/"), options).unwrap();
    let stream = conn.ws_upgrade_with(upgrade).unwrap();
    let (event, skipped) = until(&mut events, |e| {
        matches!(e, Event::Upgraded { .. } | Event::UpgradeFailed { .. })
    })
    .await;
    assert!(
        matches!(event, Event::Upgraded { .. }),
        "{event:?} after {skipped:?}"
    );
    (conn, events, stream)
}

/// The next `n` frames' burst indexes (no other event may come between).
async fn burst_frames(events: &mut Events, n: usize) -> Vec<u64> {
    let mut indexes = Vec::new();
    for _ in 0..n {
        match next(events).await {
            Event::Frame { frame, .. } => indexes.push(burst_index(&frame)),
            other => panic!("a frame was expected, got {other:?} after {indexes:?}"),
        }
    }
    indexes
}

/// Nothing arrives for [`QUIET`].
async fn assert_quiet(events: &mut Events, why: &str) {
    if let Ok(event) = tokio::time::timeout(QUIET, events.recv()).await {
        panic!("{why}: got {event:?}");
    }
}

/// The pause and the grants, on a Websocket carrying a burst of `total`.
async fn pause_and_resume(server: &TestServer, query: &str, total: u64, options: Options) {
    let upgrade = Upgrade::new(format!("/?{query}")).flow(3);
    let (conn, mut events, stream) = open(server, upgrade, options).await;
    assert_eq!(burst_frames(&mut events, 3).await, [0, 1, 2]);
    assert_quiet(&mut events, "the credit of 3 is spent").await;
    conn.update_flow(stream, 2).unwrap();
    conn.update_flow(stream, 3).unwrap(); // grants add up
    assert_eq!(burst_frames(&mut events, 5).await, [3, 4, 5, 6, 7]);
    assert_quiet(&mut events, "the credit of 5 more is spent").await;
    conn.update_flow(stream, u32::MAX).unwrap();
    let rest = burst_frames(&mut events, (total - 8) as usize).await;
    assert_eq!(rest, (8..total).collect::<Vec<_>>(), "in order, none lost");
    conn.shutdown();
}

#[tokio::test]
async fn flow_pauses_reading_and_update_flow_resumes_it_in_order() {
    let server = TestServer::start().await.unwrap();
    pause_and_resume(&server, "send=40&size=16", 40, options()).await;
}

#[tokio::test]
async fn flow_over_http2_pauses_the_stream() {
    let server = TestServer::start_http2(ServerHttp2::On).await.unwrap();
    let options = options().http2(Http2::Prefer);
    pause_and_resume(&server, "send=40&size=16", 40, options).await;
}

/// Over HTTP/2 the pause is the stream's window: a server with 40 frames
/// of 64 KiB (2.5 MiB) to send gets no further than the window lets it.
/// What it can hand to its socket while the client reads nothing: the
/// stream's window (256 KiB), the message read and the reader's read-ahead
/// (at most 64 KiB each, their window given back), tokio-tungstenite's
/// write buffer (128 KiB) and the frame being written: 576 KiB, 9 frames.
#[tokio::test]
async fn flow_over_http2_holds_the_server_back_by_the_streams_window() {
    const TOTAL: u64 = 40;
    let server = TestServer::start_http2(ServerHttp2::On).await.unwrap();
    let options = options().http2(Http2::Prefer);
    let upgrade = Upgrade::new(format!("/?send={TOTAL}&size=65536&kind=binary")).flow(1);
    let (conn, mut events, stream) = open(&server, upgrade, options).await;
    assert_eq!(burst_frames(&mut events, 1).await, [0]);
    server.wait_for_burst_frames_sent(4).await; // 256 KiB: within the window
    assert_quiet(&mut events, "the credit of 1 is spent").await;
    let sent = server.burst_frames_sent();
    assert!(
        sent <= 9,
        "the server handed {sent} frames of 64 KiB to its socket past a paused stream's window"
    );
    conn.update_flow(stream, u32::MAX).unwrap();
    let rest = burst_frames(&mut events, (TOTAL - 1) as usize).await;
    assert_eq!(rest, (1..TOTAL).collect::<Vec<_>>());
    assert_eq!(server.burst_frames_sent(), TOTAL);
}

/// While reading is paused the keepalive cannot hear the peer: it must not
/// declare it dead, however long the pause.
#[tokio::test]
async fn a_paused_websocket_is_not_declared_dead_by_the_keepalive() {
    let server = TestServer::start().await.unwrap();
    let interval = Duration::from_millis(30);
    let options = options().keepalive(Keepalive::every(interval).timeout(interval));
    let (conn, mut events, stream) = open(&server, Upgrade::new("/?send=3").flow(0), options).await;
    for _ in 0..3 {
        assert_quiet(&mut events, "flow(0): paused, and the keepalive waits").await;
    }
    conn.update_flow(stream, 3).unwrap();
    assert_eq!(burst_frames(&mut events, 3).await, [0, 1, 2]);
}

#[tokio::test]
async fn a_socket_grants_credit_and_its_reupgrade_starts_again_with_the_upgrades() {
    let server = TestServer::start().await.unwrap();
    let upgrade = Upgrade::new("/?send=6&size=8").flow(2);
    let mut socket = Socket::connect_with(&server.url("/"), upgrade, options())
        .await
        .unwrap();
    let mut received = Vec::new();
    for _ in 0..2 {
        received.push(burst_index(&socket.recv().await.unwrap()));
    }
    let quiet = tokio::time::timeout(QUIET, socket.recv()).await;
    assert!(quiet.is_err(), "the credit of 2 is spent: {quiet:?}");
    socket.update_flow(4).unwrap();
    for _ in 0..4 {
        received.push(burst_index(&socket.recv().await.unwrap()));
    }
    assert_eq!(received, [0, 1, 2, 3, 4, 5]);

    // A reconnect: the new Websocket has the upgrade's credit again. (A
    // paused Websocket is not read, so its loss is noticed once reading
    // resumes: grant one message first.)
    socket.update_flow(1).unwrap();
    server.drop_connections();
    let mut again = Vec::new();
    for _ in 0..2 {
        again.push(burst_index(&socket.recv().await.unwrap()));
    }
    assert_eq!(again, [0, 1]);
    let quiet = tokio::time::timeout(QUIET, socket.recv()).await;
    assert!(
        quiet.is_err(),
        "the new Websocket's credit of 2 is spent: {quiet:?}"
    );
}

#[tokio::test]
async fn update_flow_refuses_gone_and_foreign_streams_and_a_terminated_connection() {
    let server = TestServer::start().await.unwrap();
    let reconnecting = options().auto_upgrade(true);
    let (conn, mut events, first) = open(&server, Upgrade::new("/").flow(1), options()).await;
    let (other, _other_events, foreign) = open(&server, Upgrade::new("/").flow(1), options()).await;
    assert_eq!(
        conn.update_flow(foreign, 1).unwrap_err().kind(),
        ErrorKind::StaleStream
    );
    conn.update_flow(first, 0).unwrap();

    // After a reconnect, the first Websocket is gone.
    let (conn2, mut events2, old) = open(&server, Upgrade::new("/").flow(1), reconnecting).await;
    server.drop_connections();
    until(&mut events2, is_down).await;
    until(&mut events2, |e| matches!(e, Event::Upgraded { .. })).await;
    assert_eq!(
        conn2.update_flow(old, 1).unwrap_err().kind(),
        ErrorKind::StaleStream
    );

    conn.shutdown();
    let _ = common::rest(&mut events).await;
    assert_eq!(
        conn.update_flow(first, 1).unwrap_err().kind(),
        ErrorKind::Closed
    );
    drop((other, conn2));
}
