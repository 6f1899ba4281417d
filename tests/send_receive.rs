//! Sending one frame or a list of them (written in order), receiving
//! exactly one frame per `Event::Frame`, and closing with a close frame,
//! which ends the connection without a reconnect.
#![cfg(native)]

mod common;

use common::{next, options, rest, until};
use wstether::{Connection, DownReason, Event, Frame, StreamRef};
use wstether_testkit::TestServer;

async fn upgraded(server: &TestServer, path: &str) -> (Connection, wstether::Events, StreamRef) {
    let (conn, mut events) = Connection::open(&server.url(""), options()).unwrap();
    let stream = conn.ws_upgrade(path).unwrap();
    until(&mut events, common::is_upgraded).await;
    (conn, events, stream)
}

fn frame_of(event: Event) -> Frame {
    match event {
        Event::Frame { frame, .. } => frame,
        other => panic!("expected a frame, got {other:?}"),
    }
}

#[tokio::test]
async fn one_text_frame_is_echoed_as_one_event() {
    let server = TestServer::start().await.unwrap();
    let (conn, mut events, stream) = upgraded(&server, "/").await;
    conn.ws_send(stream, Frame::text("Hello!")).unwrap();
    match next(&mut events).await {
        Event::Frame { stream: s, frame } => {
            assert_eq!(s, stream);
            assert_eq!(frame, Frame::text("Hello!"));
        }
        other => panic!("expected the echo, got {other:?}"),
    }
}

#[tokio::test]
async fn a_list_ending_in_close_is_sent_in_order_and_ends_the_connection() {
    let server = TestServer::start().await.unwrap();
    let (conn, mut events, stream) = upgraded(&server, "/").await;
    let data = vec![0u8, 1, 2, 255];
    conn.ws_send(
        stream,
        [
            Frame::text("Hello!"),
            Frame::binary(data.clone()),
            Frame::close_normal(),
        ],
    )
    .unwrap();
    assert_eq!(frame_of(next(&mut events).await), Frame::text("Hello!"));
    assert_eq!(frame_of(next(&mut events).await), Frame::binary(data));
    let remaining = rest(&mut events).await;
    // The server's close reply, then one Down that does not reconnect, then the end.
    assert!(
        matches!(
            &remaining[..],
            [
                Event::Frame {
                    frame: Frame::Close(_),
                    ..
                },
                Event::Down {
                    reason: DownReason::Shutdown,
                    will_reconnect: false,
                    ..
                }
            ]
        ),
        "{remaining:?}"
    );
    assert_eq!(
        server.accepted_connections(),
        1,
        "no reconnect after a close frame"
    );
    let error = conn.ws_send(stream, Frame::text("late")).unwrap_err();
    assert_eq!(error.kind(), wstether::ErrorKind::Closed);
    assert_eq!(error.unsent(), [Frame::text("late")]);
}

#[tokio::test]
async fn a_close_with_code_and_reason_reaches_the_server_and_stops() {
    let server = TestServer::start().await.unwrap();
    let (conn, mut events, stream) = upgraded(&server, "/").await;
    conn.ws_send(stream, Frame::close(4001, "done").unwrap())
        .unwrap();
    let remaining = rest(&mut events).await;
    let echoed = remaining.iter().find_map(|e| match e {
        Event::Frame {
            frame: Frame::Close(Some(close)),
            ..
        } => Some(close.clone()),
        _ => None,
    });
    let echoed = echoed.expect("the server answers the close");
    assert_eq!(echoed.code.as_u16(), 4001);
    assert!(matches!(
        remaining.last(),
        Some(Event::Down {
            will_reconnect: false,
            ..
        })
    ));
}

#[tokio::test]
async fn shutdown_closes_gracefully_after_queued_frames() {
    let server = TestServer::start().await.unwrap();
    let (conn, mut events, stream) = upgraded(&server, "/").await;
    conn.ws_send(stream, Frame::text("before")).unwrap();
    conn.shutdown();
    let remaining = rest(&mut events).await;
    assert!(matches!(&remaining[0], Event::Frame { frame, .. } if *frame == Frame::text("before")));
    assert!(matches!(
        remaining.last(),
        Some(Event::Down {
            reason: DownReason::Shutdown,
            will_reconnect: false,
            ..
        })
    ));
    assert_eq!(server.accepted_connections(), 1);
}

#[tokio::test]
async fn a_burst_of_1000_server_frames_arrives_one_per_event_in_order() {
    let server = TestServer::start().await.unwrap();
    let (_conn, mut events, _stream) = upgraded(&server, "/?send=1000&size=64").await;
    for i in 0..1000 {
        let Frame::Text(text) = frame_of(next(&mut events).await) else {
            panic!("text expected")
        };
        assert_eq!(text.len(), 64);
        let index: usize = text.split(' ').next().unwrap().parse().unwrap();
        assert_eq!(index, i, "frames in order, one per event");
    }
}

#[tokio::test]
async fn a_burst_of_1000_client_frames_is_echoed_in_order() {
    let server = TestServer::start().await.unwrap();
    let (conn, mut events, stream) = upgraded(&server, "/").await;
    for i in 0..1000 {
        conn.ws_send(stream, Frame::text(format!("{i}"))).unwrap();
    }
    for i in 0..1000 {
        assert_eq!(
            frame_of(next(&mut events).await),
            Frame::text(format!("{i}"))
        );
    }
    assert_eq!(server.frames_received(), 1000);
    let stats = conn.stats();
    assert_eq!(stats.frames_written, 1000);
    assert_eq!(stats.frames_received, 1000);
}

#[tokio::test]
async fn binary_frames_keep_their_bytes_up_to_large_sizes() {
    let server = TestServer::start().await.unwrap();
    let (conn, mut events, stream) = upgraded(&server, "/").await;
    let big: Vec<u8> = (0..(4 << 20)).map(|i| (i % 251) as u8).collect();
    conn.send(stream, Frame::binary(big.clone())).await.unwrap();
    assert_eq!(frame_of(next(&mut events).await), Frame::binary(big));
}

#[tokio::test]
async fn server_close_code_and_reason_are_seen() {
    let server = TestServer::start().await.unwrap();
    let options = options().retry(wstether::Retry::never());
    let (conn, mut events) = Connection::open(&server.url(""), options).unwrap();
    conn.ws_upgrade("/?close=4001&reason=bye").unwrap();
    let (event, _) = until(&mut events, |e| matches!(e, Event::Frame { .. })).await;
    assert!(
        matches!(frame_of(event), Frame::Close(Some(c)) if c.code.as_u16() == 4001 && c.reason == "bye")
    );
    let (event, _) = until(&mut events, common::is_down).await;
    let Event::Down {
        reason: DownReason::ClosedByPeer(close),
        ..
    } = event
    else {
        panic!("{event:?}")
    };
    assert_eq!((close.code.as_u16(), close.reason.as_str()), (4001, "bye"));
}

#[tokio::test]
async fn pings_from_the_server_are_answered_and_hidden_by_default() {
    let server = TestServer::start().await.unwrap();
    let (conn, mut events, stream) = upgraded(&server, "/?ping_every=10").await;
    // Frames sent after some server pings still come back first: no ping events.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    conn.ws_send(stream, Frame::text("after pings")).unwrap();
    assert_eq!(
        frame_of(next(&mut events).await),
        Frame::text("after pings")
    );
}

#[tokio::test]
async fn pings_are_reported_when_not_silenced() {
    let server = TestServer::start().await.unwrap();
    let (conn, mut events) =
        Connection::open(&server.url(""), options().silence_pings(false)).unwrap();
    conn.ws_upgrade("/?ping_every=10").unwrap();
    let (event, _) = until(&mut events, |e| matches!(e, Event::Frame { .. })).await;
    assert!(
        matches!(frame_of(event), Frame::Ping(payload) if payload.starts_with(b"testkit-ping-"))
    );
}

/// `recv_many` hands out the events in order, at most `limit` per call
/// and at least one, appending to the caller's buffer; with an event queue
/// of 8, 200 echoes all come through, so the room each batch leaves is
/// given back (the driver reads on); once the connection has ended it
/// returns 0.
#[tokio::test]
async fn recv_many_hands_out_batches_in_order_and_gives_the_room_back() {
    let server = TestServer::start().await.unwrap();
    let (conn, mut events) =
        Connection::open(&server.url(""), options().event_queue_len(8)).unwrap();
    let stream = conn.ws_upgrade("/").unwrap();
    until(&mut events, common::is_upgraded).await;
    let sent: Vec<Frame> = (0..200).map(|i| Frame::text(format!("{i}"))).collect();
    conn.ws_send(stream, sent.clone()).unwrap();
    let mut batch = Vec::new();
    let mut received = Vec::new();
    while received.len() < sent.len() {
        let before = batch.len();
        let n = tokio::time::timeout(common::PATIENCE, events.recv_many(&mut batch, 16))
            .await
            .expect("echoes within PATIENCE");
        assert!((1..=16).contains(&n), "{n} events in one call");
        assert_eq!(batch.len(), before + n, "appended");
        received.extend(batch.drain(..).map(frame_of));
    }
    assert_eq!(received, sent);
    assert_eq!(events.recv_many(&mut batch, 0).await, 0, "a limit of 0");
    conn.shutdown();
    let mut rest = Vec::new();
    while tokio::time::timeout(common::PATIENCE, events.recv_many(&mut rest, 64))
        .await
        .expect("the end within PATIENCE")
        > 0
    {}
    assert!(
        matches!(rest.last(), Some(Event::Down { .. })),
        "the last event is Down: {rest:?}"
    );
    assert_eq!(events.recv_many(&mut rest, 64).await, 0, "ended");
}
