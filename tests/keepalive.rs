//! Keepalive: automatic pings the server sees, the round-trip time, a
//! silent peer declared dead by the deadline, and a healthy peer *not*
//! declared dead while the application pauses reading (issue 11, item 8).
#![cfg(native)]

mod common;

use std::time::Duration;

use common::{options, until};
use wstether::{Connection, DownReason, Event, Frame, Heartbeat, Keepalive, Retry};
use wstether_testkit::TestServer;

fn fast_keepalive() -> Keepalive {
    Keepalive::every(Duration::from_millis(30)).timeout(Duration::from_millis(200))
}

#[tokio::test]
async fn pings_go_out_automatically_and_measure_rtt() {
    let server = TestServer::start().await.unwrap();
    let (conn, mut events) =
        Connection::open(&server.url(""), options().keepalive(fast_keepalive())).unwrap();
    conn.ws_upgrade("/").unwrap();
    until(&mut events, common::is_upgraded).await;
    tokio::time::timeout(common::PATIENCE, server.wait_for_pings(3))
        .await
        .expect("the server sees pings");
    let pings = server.pings();
    assert!(
        pings.iter().all(|p| p.len() == 8),
        "sequence-numbered probes: {pings:?}"
    );
    assert_ne!(pings[0], pings[1]);
    // The pong of the first ping was read before the third ping went out.
    let rtt = conn
        .rtt()
        .expect("an answered ping gives a round-trip time");
    assert!(rtt < common::PATIENCE);
}

#[tokio::test]
async fn a_silent_peer_is_declared_dead_and_the_connection_comes_back() {
    let server = TestServer::start().await.unwrap();
    let (conn, mut events) =
        Connection::open(&server.url(""), options().keepalive(fast_keepalive())).unwrap();
    let stream = conn.ws_upgrade("/?silent=1").unwrap();
    until(&mut events, common::is_upgraded).await;
    let (down, _) = until(&mut events, common::is_down).await;
    let Event::Down {
        reason,
        killed_streams,
        will_reconnect,
        ..
    } = down
    else {
        unreachable!()
    };
    assert!(matches!(reason, DownReason::PeerDead), "{reason:?}");
    assert_eq!(killed_streams, [stream]);
    assert!(will_reconnect);
    until(&mut events, |e| matches!(e, Event::Up { attempt: 2 })).await;
}

#[tokio::test]
async fn a_heartbeat_message_works_like_a_ping_and_its_replies_are_hidden() {
    let server = TestServer::start().await.unwrap();
    let keepalive = fast_keepalive().heartbeat(Heartbeat::echo(Frame::text("hb")));
    let (conn, mut events) =
        Connection::open(&server.url(""), options().keepalive(keepalive)).unwrap();
    let stream = conn.ws_upgrade("/").unwrap();
    until(&mut events, common::is_upgraded).await;
    // The echo server answers heartbeats; wait until three went out.
    tokio::time::timeout(common::PATIENCE, server.wait_for_frames(3))
        .await
        .unwrap();
    assert!(conn.rtt().is_some());
    conn.ws_send(stream, Frame::text("data")).unwrap();
    let (event, skipped) = until(&mut events, |e| matches!(e, Event::Frame { .. })).await;
    assert!(
        matches!(event, Event::Frame { frame, .. } if frame == Frame::text("data")),
        "heartbeat replies are hidden"
    );
    assert!(skipped.is_empty(), "{skipped:?}");
}

#[tokio::test]
async fn a_heartbeat_to_a_silent_server_is_a_dead_peer() {
    let server = TestServer::start().await.unwrap();
    let keepalive = fast_keepalive().heartbeat(Heartbeat::echo(Frame::text("hb")));
    let (conn, mut events) =
        Connection::open(&server.url(""), options().keepalive(keepalive)).unwrap();
    conn.ws_upgrade("/?silent=1").unwrap();
    let (down, _) = until(&mut events, common::is_down).await;
    assert!(matches!(
        down,
        Event::Down {
            reason: DownReason::PeerDead,
            ..
        }
    ));
}

/// Frames of the steady stream sent while the application pauses reading
/// (20 000 frames of 1 KiB: far more than the TCP buffers hold).
const PAUSED_STREAM_FRAMES: u64 = 20_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_peer_is_not_declared_dead_while_the_application_pauses_reading() {
    let server = TestServer::start().await.unwrap();
    let options = options()
        .retry(Retry::never())
        .keepalive(Keepalive::every(Duration::from_millis(200)).timeout(Duration::from_millis(300)))
        .event_queue_len(4);
    let (conn, mut events) = Connection::open(&server.url(""), options).unwrap();
    conn.ws_upgrade(&format!("/?send={PAUSED_STREAM_FRAMES}&size=1024"))
        .unwrap();
    until(&mut events, common::is_upgraded).await;
    // The application stops reading for 1.5 s: the event queue fills,
    // reading stops (back-pressure) and the server's stream waits in the
    // TCP buffers, the pongs behind it. The server is healthy all along.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for i in 0..PAUSED_STREAM_FRAMES {
        match common::next(&mut events).await {
            Event::Frame {
                frame: Frame::Text(text),
                ..
            } => {
                let id: u64 = text
                    .split(' ')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("a numbered frame");
                assert_eq!(id, i, "frames in order");
            }
            Event::Down { reason, .. } => panic!(
                "a healthy server was declared down ({reason:?}) after the application \
                 paused reading for 1.5 s; {i} of {PAUSED_STREAM_FRAMES} frames read"
            ),
            other => panic!("unexpected event {other:?} before frame {i}"),
        }
    }
    // Still up: a ping round trip completes after the pause.
    let pings = server.pings().len();
    tokio::time::timeout(common::PATIENCE, server.wait_for_pings(pings + 2))
        .await
        .expect("the keepalive goes on after the pause");
    conn.shutdown();
    let (down, skipped) = until(&mut events, common::is_down).await;
    assert!(
        matches!(
            down,
            Event::Down {
                reason: DownReason::Shutdown,
                ..
            }
        ),
        "{down:?} after {skipped:?}"
    );
}
