//! No silent loss: frames that were not written come back, stale streams
//! are refused, and a full queue gives the frames back or waits.
#![cfg(native)]

mod common;

use common::{next, options, until};
use wstether::{Connection, DownReason, ErrorKind, Event, Frame};
use wstether_testkit::TestServer;

fn texts(n: usize) -> Vec<Frame> {
    (0..n).map(|i| Frame::text(format!("frame {i}"))).collect()
}

#[tokio::test]
async fn frames_queued_when_the_connection_dies_come_back_in_down() {
    let server = TestServer::start().await.unwrap();
    let (conn, mut events) = Connection::open(&server.url(""), options()).unwrap();
    // The server holds the upgrade answer, so the frames wait in the queue.
    let stream = conn.ws_upgrade("/?delay_ms=60000").unwrap();
    conn.ws_send(stream, texts(10)).unwrap();
    tokio::time::timeout(common::PATIENCE, server.wait_for_requests(1))
        .await
        .unwrap();
    server.stop().await;
    let (down, skipped) = until(&mut events, common::is_down).await;
    assert!(skipped
        .iter()
        .any(|e| matches!(e, Event::UpgradeFailed { stream: s, .. } if *s == stream)));
    let Event::Down {
        unsent,
        killed_streams,
        ..
    } = down
    else {
        unreachable!()
    };
    assert_eq!(unsent, texts(10), "every queued frame comes back, in order");
    assert!(
        killed_streams.is_empty(),
        "the upgrade failed: there was no Websocket to kill"
    );
}

#[tokio::test]
async fn frames_queued_before_a_shutdown_of_an_unconnected_connection_come_back() {
    let server = TestServer::start().await.unwrap();
    let url = server.url("");
    server.stop().await;
    let (conn, mut events) = Connection::open(&url, options()).unwrap();
    let stream = conn.ws_upgrade("/").unwrap();
    conn.ws_send(stream, texts(3)).unwrap();
    conn.shutdown();
    let all = common::rest(&mut events).await;
    let returned: Vec<Frame> = all
        .iter()
        .flat_map(|e| match e {
            Event::UpgradeFailed { error, .. } | Event::Error { error, .. } => {
                error.unsent().to_vec()
            }
            Event::Down { unsent, .. } => unsent.clone(),
            _ => Vec::new(),
        })
        .collect();
    assert_eq!(returned, texts(3), "{all:?}");
}

#[tokio::test]
async fn a_stale_stream_is_refused_with_its_frames() {
    let server = TestServer::start().await.unwrap();
    let (conn, mut events) = Connection::open(&server.url(""), options()).unwrap();
    let old = conn.ws_upgrade("/").unwrap();
    until(&mut events, common::is_upgraded).await;
    server.drop_connections();
    until(&mut events, common::is_down).await;
    let error = conn.ws_send(old, texts(2)).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::StaleStream);
    assert_eq!(error.into_unsent(), texts(2));
    // After the re-upgrade the old stream stays stale; the new one works.
    until(&mut events, common::is_up).await;
    let new = conn.ws_upgrade("/").unwrap();
    until(&mut events, common::is_upgraded).await;
    assert_eq!(
        conn.ws_send(old, Frame::text("x")).unwrap_err().kind(),
        ErrorKind::StaleStream
    );
    conn.ws_send(new, Frame::text("fresh")).unwrap();
    assert!(matches!(next(&mut events).await, Event::Frame { stream, .. } if stream == new));
}

#[tokio::test]
async fn a_stream_of_another_connection_is_refused() {
    let server = TestServer::start().await.unwrap();
    let (a, mut a_events) = Connection::open(&server.url(""), options()).unwrap();
    let (b, mut b_events) = Connection::open(&server.url(""), options()).unwrap();
    let a_stream = a.ws_upgrade("/").unwrap();
    let b_stream = b.ws_upgrade("/").unwrap();
    until(&mut a_events, common::is_upgraded).await;
    until(&mut b_events, common::is_upgraded).await;
    let _ = b_stream;
    // Either refused at once, or given back in an error event: never written.
    match b.ws_send(a_stream, Frame::text("wrong socket")) {
        Err(error) => assert_eq!(error.kind(), ErrorKind::StaleStream),
        Ok(()) => {
            let Event::Error { error, .. } = next(&mut b_events).await else {
                panic!("error event expected")
            };
            assert_eq!(error.kind(), ErrorKind::StaleStream);
            assert_eq!(error.unsent(), [Frame::text("wrong socket")]);
        }
    }
    assert_eq!(server.frames_received(), 0);
}

#[tokio::test]
async fn a_full_queue_gives_frames_back_and_send_waits_for_room() {
    let server = TestServer::start().await.unwrap();
    let options = options().send_queue_bytes(100);
    let (conn, mut events) = Connection::open(&server.url(""), options).unwrap();
    let stream = conn.ws_upgrade("/?delay_ms=100").unwrap();
    let first = Frame::text("a".repeat(60));
    let second = Frame::text("b".repeat(60));
    conn.ws_send(stream, first.clone()).unwrap();
    let error = conn.ws_send(stream, second.clone()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::QueueFull);
    assert_eq!(error.unsent(), std::slice::from_ref(&second));
    // The async send waits until the first frame is written.
    tokio::time::timeout(common::PATIENCE, conn.send(stream, second.clone()))
        .await
        .unwrap()
        .unwrap();
    let (event, _) = until(&mut events, |e| matches!(e, Event::Frame { .. })).await;
    assert!(matches!(event, Event::Frame { frame, .. } if frame == first));
    assert!(matches!(next(&mut events).await, Event::Frame { frame, .. } if frame == second));
}

#[tokio::test]
async fn a_slow_reader_is_not_flooded_and_loses_nothing() {
    const QUEUE: u64 = 8;
    const FRAMES: u64 = 20_000;
    let server = TestServer::start().await.unwrap();
    let options = options().event_queue_len(QUEUE as usize);
    let (conn, mut events) = Connection::open(&server.url(""), options).unwrap();
    conn.ws_upgrade(&format!("/?send={FRAMES}&size=1024"))
        .unwrap();
    until(&mut events, common::is_upgraded).await;
    // The bound: wstether reads from the socket only while the event queue
    // has room, so it is ahead of the reader by at most one queue of
    // events plus one batch the reader has taken (at most a queue too).
    let bound = |delivered: u64| delivered + 2 * QUEUE;
    // Nobody reads for a while (the scenario, not a synchronisation): the
    // socket is not drained meanwhile.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let read = conn.stats().frames_received;
    assert!(read <= bound(0), "{read} frames read with none delivered");
    // Then slowly, then at full speed: the bound holds at every step, and
    // every frame arrives, in order.
    for i in 0..FRAMES {
        let Event::Frame {
            frame: Frame::Text(text),
            ..
        } = next(&mut events).await
        else {
            panic!("frame expected")
        };
        assert!(text.starts_with(&format!("{i} ")), "frame {i}");
        if i < 5 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let read = conn.stats().frames_received;
        assert!(
            read <= bound(i + 1),
            "{read} frames read with {} delivered",
            i + 1
        );
    }
    drop(conn);
}

#[tokio::test]
async fn the_server_breaking_the_protocol_is_a_typed_down_reason() {
    for (kind, expected) in [
        ("utf8", ErrorKind::InvalidUtf8),
        ("fragmented_ping", ErrorKind::Protocol),
        ("reserved_opcode", ErrorKind::Protocol),
    ] {
        let server = TestServer::start().await.unwrap();
        let (conn, mut events) = Connection::open(&server.url(""), options()).unwrap();
        conn.ws_upgrade(&format!("/?bad_frame={kind}")).unwrap();
        let (down, _) = until(&mut events, common::is_down).await;
        let Event::Down {
            reason: DownReason::Error(error),
            ..
        } = down
        else {
            panic!("{kind}: {down:?}")
        };
        assert_eq!(error.kind(), expected, "{kind}: {error}");
    }
}

#[tokio::test]
async fn an_oversize_frame_from_the_server_is_refused() {
    let server = TestServer::start().await.unwrap();
    let options = options().max_frame_size(1 << 20).max_message_size(1 << 20);
    let (conn, mut events) = Connection::open(&server.url(""), options).unwrap();
    conn.ws_upgrade("/?bad_frame=oversize").unwrap();
    let (down, _) = until(&mut events, common::is_down).await;
    let Event::Down {
        reason: DownReason::Error(error),
        ..
    } = down
    else {
        panic!("{down:?}")
    };
    assert_eq!(error.kind(), ErrorKind::MessageTooBig, "{error}");
}

/// Waiting senders let the driver take each 32 KiB they queue (natively):
/// eight of them sending 1 KiB frames on a one-thread runtime race a
/// shutdown. Every one ends (none waits forever for a driver that is
/// gone), the first refusal is `Closed` with its frame in the error, and
/// every frame a sender was told was queued is echoed or comes back in
/// `Down`'s `unsent`: none is lost, none arrives twice.
#[tokio::test(flavor = "current_thread")]
async fn waiting_senders_racing_a_shutdown_all_end_and_lose_nothing() {
    use std::collections::HashSet;
    let server = TestServer::start().await.unwrap();
    let (conn, mut events) = Connection::open(&server.url(""), options()).unwrap();
    let stream = conn.ws_upgrade("/").unwrap();
    until(&mut events, common::is_upgraded).await;
    let tagged = |sender: u32, i: u32| {
        let mut data = vec![0u8; 1024];
        data[..4].copy_from_slice(&sender.to_be_bytes());
        data[4..8].copy_from_slice(&i.to_be_bytes());
        Frame::binary(data)
    };
    let senders: Vec<_> = (0..8u32)
        .map(|sender| {
            let conn = conn.clone();
            tokio::spawn(async move {
                let mut accepted = Vec::new();
                for i in 0.. {
                    match conn.send(stream, tagged(sender, i)).await {
                        Ok(()) => accepted.push(tagged(sender, i)),
                        Err(error) => {
                            assert_eq!(error.kind(), ErrorKind::Closed, "{error}");
                            assert_eq!(error.unsent(), &[tagged(sender, i)][..]);
                            return accepted;
                        }
                    }
                }
                unreachable!()
            })
        })
        .collect();
    // Let every sender queue past a few yields (the echoes say the driver
    // wrote), then shut down under them.
    let mut echoed = Vec::new();
    while echoed.len() < 2_000 {
        if let Event::Frame { frame, .. } = next(&mut events).await {
            echoed.push(frame);
        }
    }
    conn.shutdown();
    let mut unsent = Vec::new();
    for event in common::rest(&mut events).await {
        match event {
            // The server's answer to the shutdown's close.
            Event::Frame {
                frame: Frame::Close(_),
                ..
            } => {}
            Event::Frame { frame, .. } => echoed.push(frame),
            Event::Down { unsent: back, .. } => unsent.extend(back),
            _ => {}
        }
    }
    let mut accepted = Vec::new();
    for sender in senders {
        let sent = tokio::time::timeout(common::PATIENCE, sender)
            .await
            .expect("a waiting sender never ended")
            .unwrap();
        assert!(sent.len() > 32, "each sender queued past a yield");
        accepted.extend(sent);
    }
    let tag = |frame: &Frame| -> (u32, u32) {
        let Frame::Binary(data) = frame else {
            panic!("{frame:?} came back")
        };
        assert_eq!(data.len(), 1024, "a frame came back whole");
        let word = |at: usize| u32::from_be_bytes(data[at..at + 4].try_into().unwrap());
        (word(0), word(4))
    };
    let seen: Vec<(u32, u32)> = echoed.iter().chain(&unsent).map(tag).collect();
    let unique: HashSet<(u32, u32)> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "a frame arrived twice");
    for frame in &accepted {
        assert!(unique.contains(&tag(frame)), "a queued frame was lost");
    }
    assert_eq!(seen.len(), accepted.len(), "only queued frames come back");
}
