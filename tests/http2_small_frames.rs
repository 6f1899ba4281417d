//! Many small messages over HTTP/2, read late: every one arrives.
//!
//! h2 (0.4.21) counts the small DATA frames (< 256 bytes) it holds for the
//! application against a per-connection budget ("overhead": 256 bytes
//! minus the payload per frame) and ends the connection with
//! `GOAWAY(ENHANCE_YOUR_CALM)`, "too_many_data_frames", past it. With h2's
//! default budget (half the connection window) about 2,200 16-byte
//! messages received and not yet read ended the connection, well inside
//! the flow-control windows that should hold the server back (found by
//! `cargo bench --bench h2many`); wstether now sets the budget to cover its
//! whole connection window in 16-byte messages (`DATA_FRAME_BUDGET`,
//! src/transport/native/h2.rs). Over HTTP/1.1 the same is only
//! back-pressure.
#![cfg(native)]

mod common;

use std::time::Duration;

use common::options;
use wstether::{Connection, Event, Frame, Http2, Options};
use wstether_testkit::{Http2 as ServerHttp2, TestServer};

/// Sends `count` 16-byte messages on one Websocket, reads nothing until
/// the server has received them all (and echoed them, each in a DATA
/// frame of its own), then reads the echoes: how many came back, and the
/// `Down` that ended the connection first, if one did.
async fn echoes_read_late(options: Options, count: usize) -> (usize, Option<String>) {
    let server = TestServer::start_http2(ServerHttp2::On).await.unwrap();
    let (conn, mut events) = Connection::open(&server.url("/"), options).unwrap();
    let stream = conn.ws_upgrade("/").unwrap();
    loop {
        if let Some(Event::Upgraded { .. }) = events.recv().await {
            break;
        }
    }
    for _ in 0..count {
        conn.send(stream, Frame::text("0123456789abcdef"))
            .await
            .unwrap();
    }
    server.wait_for_frames(count as u64).await;
    let mut got = 0;
    while got < count {
        match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
            Ok(Some(Event::Frame { .. })) => got += 1,
            Ok(Some(Event::Down { reason, .. })) => return (got, Some(format!("{reason:?}"))),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return (got, Some("no event for 10 s".into())),
        }
    }
    (got, None)
}

#[tokio::test]
async fn five_thousand_small_echoes_read_late_over_http2_all_arrive() {
    let options = options().http2(Http2::Prefer).no_keepalive();
    let (got, down) = echoes_read_late(options, 5000).await;
    assert_eq!((got, down), (5000, None));
}

#[tokio::test]
async fn five_thousand_small_echoes_read_late_over_http1_all_arrive() {
    // The same over HTTP/1.1: back-pressure only.
    let options = options().http2(Http2::Off).no_keepalive();
    let (got, down) = echoes_read_late(options, 5000).await;
    assert_eq!((got, down), (5000, None));
}
