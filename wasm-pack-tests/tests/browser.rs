//! wstether in a real browser, against the testkit server. The tests run
//! one after another in one page (wasm-bindgen-test), so the ones that
//! restart or drop the server cannot disturb the others.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{control, expect_end, next, stat, ws_url};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use wstether::{
    CloseCode, Connection, DownReason, ErrorKind, Event, Events, Frame, FrameInfo, Heartbeat,
    Keepalive, Observer, Options, Retry, StreamRef, Upgrade,
};

wasm_bindgen_test_configure!(run_in_browser);

fn quick_retry() -> Retry {
    Retry::default()
        .initial_delay(Duration::from_millis(50))
        .max_delay(Duration::from_millis(400))
}

/// Opens a connection to the testkit and expects `Up` first.
async fn open(options: Options) -> (Connection, Events) {
    let (conn, mut events) = Connection::open(&ws_url("/"), options).expect("open");
    match next(&mut events).await {
        Event::Up { attempt: 1 } => {}
        other => panic!("expected Up, got {other:?}"),
    }
    (conn, events)
}

/// Upgrades `upgrade` and expects `Upgraded` for it; returns the stream and
/// the negotiated protocol.
async fn upgrade(
    conn: &Connection,
    events: &mut Events,
    upgrade: Upgrade,
) -> (StreamRef, Option<String>) {
    let stream = conn.ws_upgrade_with(upgrade).expect("ws_upgrade");
    match next(events).await {
        Event::Upgraded {
            stream: s,
            protocol,
            ..
        } if s == stream => (stream, protocol),
        other => panic!("expected Upgraded({stream:?}), got {other:?}"),
    }
}

/// The next data frame on `stream` (fails on anything else).
async fn next_frame(events: &mut Events, stream: StreamRef) -> Frame {
    match next(events).await {
        Event::Frame { stream: s, frame } if s == stream => frame,
        other => panic!("expected a frame on {stream:?}, got {other:?}"),
    }
}

/// Shuts down and expects the final `Down` (an echoed close frame may come first).
async fn shutdown(conn: &Connection, events: &mut Events) {
    conn.shutdown();
    loop {
        match next(events).await {
            Event::Frame {
                frame: Frame::Close(_),
                ..
            } => {}
            Event::Down {
                reason: DownReason::Shutdown,
                will_reconnect: false,
                ..
            } => break,
            other => panic!("expected the shutdown's Down, got {other:?}"),
        }
    }
    expect_end(events, |_| false).await;
}

#[wasm_bindgen_test]
async fn upgrade_with_subprotocol() {
    let (conn, mut events) = open(Options::default()).await;
    let stream = conn
        .ws_upgrade_with(Upgrade::new("/").protocol("chat").protocol("v2"))
        .unwrap();
    match next(&mut events).await {
        Event::Upgraded {
            stream: s,
            protocol,
            headers,
            ..
        } => {
            assert_eq!(s, stream);
            assert_eq!(protocol.as_deref(), Some("chat"));
            assert_eq!(
                headers.get("sec-websocket-protocol").map(|v| v.as_bytes()),
                Some(&b"chat"[..])
            );
        }
        other => panic!("expected Upgraded, got {other:?}"),
    }
    shutdown(&conn, &mut events).await;

    // The server picks the second one offered.
    let (conn, mut events) = open(Options::default()).await;
    let (_, protocol) = upgrade(
        &conn,
        &mut events,
        Upgrade::new("/?protocol=v2")
            .protocol("chat")
            .protocol("v2"),
    )
    .await;
    assert_eq!(protocol.as_deref(), Some("v2"));
    shutdown(&conn, &mut events).await;
}

#[wasm_bindgen_test]
async fn upgrade_rejected_has_no_status() {
    let (conn, mut events) = open(Options::default().retry(Retry::never())).await;
    let stream = conn.ws_upgrade("/?reject=403").unwrap();
    match next(&mut events).await {
        Event::UpgradeFailed {
            stream: s,
            status,
            headers,
            error,
        } => {
            assert_eq!(s, stream);
            assert_eq!(status, None, "a browser hides the status");
            assert!(headers.is_empty());
            assert_eq!(error.kind(), ErrorKind::Upgrade);
            assert!(error.to_string().contains("HTTP status"), "{error}");
        }
        other => panic!("expected UpgradeFailed, got {other:?}"),
    }
    // The first connection's ending: its error, then the final Down.
    match next(&mut events).await {
        Event::Error { stream: None, .. } => {}
        other => panic!("expected Error, got {other:?}"),
    }
    match next(&mut events).await {
        Event::Down {
            killed_streams,
            will_reconnect: false,
            ..
        } => {
            // The stream was reported dead by UpgradeFailed already.
            assert!(killed_streams.is_empty(), "{killed_streams:?}");
        }
        other => panic!("expected Down, got {other:?}"),
    }
    expect_end(&mut events, |e| matches!(e, Event::Error { .. })).await;
}

#[wasm_bindgen_test]
async fn send_one_and_many() {
    let (conn, mut events) = open(Options::default()).await;
    let (stream, _) = upgrade(&conn, &mut events, Upgrade::new("/")).await;

    conn.ws_send(stream, Frame::text("Hello!")).unwrap();
    assert_eq!(next_frame(&mut events, stream).await, Frame::text("Hello!"));

    let many = vec![
        Frame::text("one"),
        Frame::binary(vec![0, 1, 2, 255]),
        Frame::text("three ✓"),
        Frame::binary(Vec::new()),
        Frame::text(""),
    ];
    conn.ws_send(stream, many.clone()).unwrap();
    for expected in many {
        assert_eq!(next_frame(&mut events, stream).await, expected);
    }

    // And a large binary frame.
    let big: Vec<u8> = (0..(1 << 20)).map(|i| (i % 251) as u8).collect();
    conn.send(stream, Frame::binary(big.clone())).await.unwrap();
    assert_eq!(next_frame(&mut events, stream).await, Frame::binary(big));
    shutdown(&conn, &mut events).await;
}

#[wasm_bindgen_test]
async fn close_frame_ends_the_connection_without_reconnect() {
    // The default retry policy reconnects forever: the close frame stops it.
    let (conn, mut events) = open(Options::default()).await;
    let (stream, _) = upgrade(&conn, &mut events, Upgrade::new("/")).await;
    conn.ws_send(stream, Frame::text("last")).unwrap();
    assert_eq!(next_frame(&mut events, stream).await, Frame::text("last"));
    // (Not in one call with the text: once a script has called close(), the
    // browser drops every message still arriving, the echo included.)
    conn.ws_send(stream, Frame::close(4000, "done").unwrap())
        .unwrap();
    match next_frame(&mut events, stream).await {
        Frame::Close(Some(close)) => assert_eq!(close.code, CloseCode::from_wire(4000)),
        other => panic!("expected the server's close, got {other:?}"),
    }
    match next(&mut events).await {
        Event::Down {
            reason: DownReason::Shutdown,
            will_reconnect: false,
            unsent,
            ..
        } => assert!(unsent.is_empty(), "{unsent:?}"),
        other => panic!("expected Down, got {other:?}"),
    }
    expect_end(&mut events, |_| false).await;
    let error = conn.ws_send(stream, Frame::text("late")).unwrap_err();
    assert_eq!(error.unsent(), [Frame::text("late")]);
}

#[wasm_bindgen_test]
async fn burst_of_1000_frames_in_order() {
    let (conn, mut events) = open(Options::default()).await;
    let (stream, _) = upgrade(&conn, &mut events, Upgrade::new("/?send=1000")).await;
    for i in 0..1000 {
        match next_frame(&mut events, stream).await {
            Frame::Text(text) => {
                assert!(text.starts_with(&format!("{i} ")), "frame {i}: {text:?}")
            }
            other => panic!("frame {i}: {other:?}"),
        }
    }
    shutdown(&conn, &mut events).await;
}

#[wasm_bindgen_test]
async fn server_close_code_and_reason_are_seen() {
    let (conn, mut events) = open(Options::default().retry(Retry::never())).await;
    let (stream, _) = upgrade(&conn, &mut events, Upgrade::new("/?close=4001&reason=bye")).await;
    match next_frame(&mut events, stream).await {
        Frame::Close(Some(close)) => {
            assert_eq!(close.code.as_u16(), 4001);
            assert_eq!(close.reason, "bye");
        }
        other => panic!("expected Close(4001, bye), got {other:?}"),
    }
    match next(&mut events).await {
        Event::Down {
            reason: DownReason::ClosedByPeer(close),
            will_reconnect: false,
            ..
        } => {
            assert_eq!(close.code.as_u16(), 4001);
            assert_eq!(close.reason, "bye");
        }
        other => panic!("expected Down(ClosedByPeer), got {other:?}"),
    }
    expect_end(&mut events, |e| matches!(e, Event::Error { .. })).await;
}

#[wasm_bindgen_test]
async fn an_oversize_message_is_refused_not_delivered() {
    let options = Options::default()
        .retry(Retry::never())
        .max_message_size(100);
    let (conn, mut events) = open(options).await;
    let _ = upgrade(&conn, &mut events, Upgrade::new("/?send=1&size=1000")).await;
    match next(&mut events).await {
        Event::Down {
            reason: DownReason::Error(error),
            will_reconnect: false,
            ..
        } => assert_eq!(error.kind(), ErrorKind::MessageTooBig, "{error}"),
        other => panic!("expected Down(MessageTooBig), got {other:?}"),
    }
}

/// Restarts the server (it is down for `down_ms`), then expects `Down`
/// for `stream`.
async fn restart_server(events: &mut Events, stream: StreamRef, down_ms: u32) {
    control(&format!("/_control/restart?down_ms={down_ms}")).await;
    match next(events).await {
        Event::Down {
            killed_streams,
            will_reconnect: true,
            ..
        } => assert_eq!(killed_streams, [stream]),
        other => panic!("expected Down, got {other:?}"),
    }
}

#[wasm_bindgen_test]
async fn reconnect_after_restart_without_reupgrade() {
    let (conn, mut events) = open(Options::default().retry(quick_retry())).await;
    let (stream, _) = upgrade(&conn, &mut events, Upgrade::new("/")).await;
    conn.ws_send(stream, Frame::text("before")).unwrap();
    assert_eq!(next_frame(&mut events, stream).await, Frame::text("before"));

    restart_server(&mut events, stream, 300).await;
    match next(&mut events).await {
        Event::Reconnecting { attempt: 2, .. } => {}
        other => panic!("expected Reconnecting, got {other:?}"),
    }
    match next(&mut events).await {
        Event::Up { attempt: 2 } => {}
        other => panic!("expected Up, got {other:?}"),
    }
    // Like Gun: no upgrade until we ask. The server is down for a while, so
    // our upgrades may fail; each failure brings another Up to upgrade on.
    let mut upgrades = 0;
    let stream = loop {
        upgrades += 1;
        assert!(upgrades < 50, "never upgraded again");
        let stream = conn.ws_upgrade("/").unwrap();
        let mut upgraded = None;
        loop {
            match next(&mut events).await {
                Event::Upgraded { stream: s, .. } => {
                    assert_eq!(s, stream, "an upgrade nobody asked for");
                    upgraded = Some(s);
                    break;
                }
                Event::UpgradeFailed { stream: s, .. } => assert_eq!(s, stream),
                Event::Down {
                    will_reconnect: true,
                    ..
                }
                | Event::Reconnecting { .. } => {}
                Event::Up { .. } => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        if let Some(stream) = upgraded {
            break stream;
        }
    };
    conn.ws_send(stream, Frame::text("after")).unwrap();
    assert_eq!(next_frame(&mut events, stream).await, Frame::text("after"));
    shutdown(&conn, &mut events).await;
}

#[wasm_bindgen_test]
async fn auto_upgrade_after_restart() {
    let options = Options::default().retry(quick_retry()).auto_upgrade(true);
    let (conn, mut events) = open(options).await;
    let (first, _) = upgrade(&conn, &mut events, Upgrade::new("/").protocol("chat")).await;

    restart_server(&mut events, first, 300).await;
    let stream = loop {
        match next(&mut events).await {
            Event::Upgraded {
                stream, protocol, ..
            } => {
                assert_ne!(stream, first);
                assert_eq!(protocol.as_deref(), Some("chat"));
                break stream;
            }
            Event::Reconnecting { .. }
            | Event::Up { .. }
            | Event::UpgradeFailed { .. }
            | Event::Down {
                will_reconnect: true,
                ..
            } => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    conn.ws_send(stream, Frame::text("again")).unwrap();
    assert_eq!(next_frame(&mut events, stream).await, Frame::text("again"));
    shutdown(&conn, &mut events).await;
}

#[wasm_bindgen_test]
async fn heartbeat_detects_a_silent_server() {
    let keepalive = Keepalive::every(Duration::from_millis(200))
        .timeout(Duration::from_millis(300))
        .heartbeat(Heartbeat::echo(Frame::text("hb")));
    let options = Options::default()
        .retry(Retry::never())
        .keepalive(keepalive);
    let (conn, mut events) = open(options).await;
    let (stream, _) = upgrade(&conn, &mut events, Upgrade::new("/?silent=1")).await;
    match next(&mut events).await {
        Event::Down {
            reason: DownReason::PeerDead,
            killed_streams,
            unsent,
            will_reconnect: false,
        } => {
            assert_eq!(killed_streams, [stream]);
            // The heartbeat is the keepalive's own: never reported unsent.
            assert!(unsent.is_empty(), "{unsent:?}");
        }
        other => panic!("expected Down(PeerDead), got {other:?}"),
    }
    expect_end(&mut events, |e| matches!(e, Event::Error { .. })).await;
}

#[wasm_bindgen_test]
async fn probe_is_answered_hidden_and_measured() {
    let keepalive = Keepalive::every(Duration::from_secs(600))
        .timeout(Duration::from_secs(600))
        .heartbeat(Heartbeat::echo(Frame::text("hb")));
    let (conn, mut events) = open(Options::default().keepalive(keepalive)).await;
    let (stream, _) = upgrade(&conn, &mut events, Upgrade::new("/")).await;
    assert!(conn.rtt().is_none());
    conn.probe();
    // The server echoes in order: once "m" is back, so is the heartbeat,
    // which is hidden from the events.
    conn.ws_send(stream, Frame::text("m")).unwrap();
    assert_eq!(next_frame(&mut events, stream).await, Frame::text("m"));
    assert!(conn.rtt().is_some(), "the heartbeat was not answered");
    shutdown(&conn, &mut events).await;
}

#[wasm_bindgen_test]
async fn online_and_visible_probe_the_server() {
    // Replies are not hidden, so each probe shows as an echoed frame.
    let heartbeat = Heartbeat::Message {
        frame: Frame::text("probe"),
        is_reply: Arc::new(|frame: &Frame| *frame == Frame::text("probe")),
        hide_replies: false,
    };
    let keepalive = Keepalive::every(Duration::from_secs(600))
        .timeout(Duration::from_secs(600))
        .heartbeat(heartbeat);
    let (conn, mut events) = open(Options::default().keepalive(keepalive)).await;
    let (stream, _) = upgrade(&conn, &mut events, Upgrade::new("/")).await;
    assert!(conn.rtt().is_none());

    let window = web_sys::window().unwrap();
    let online = web_sys::Event::new("online").unwrap();
    window.dispatch_event(&online).unwrap();
    assert_eq!(next_frame(&mut events, stream).await, Frame::text("probe"));
    assert!(conn.rtt().is_some());

    let document = window.document().unwrap();
    if document.visibility_state() == web_sys::VisibilityState::Visible {
        let visible = web_sys::Event::new("visibilitychange").unwrap();
        document.dispatch_event(&visible).unwrap();
        assert_eq!(next_frame(&mut events, stream).await, Frame::text("probe"));
    }
    shutdown(&conn, &mut events).await;
}

#[wasm_bindgen_test]
async fn unsent_frames_come_back() {
    let (conn, mut events) = open(Options::default().retry(Retry::never())).await;
    let before = stat(&control("/_control/stats").await, "requests");
    // The server reads the upgrade request and never answers: the frames
    // wait for the upgrade, then the server drops the connection.
    let stream = conn.ws_upgrade("/?no_upgrade=1").unwrap();
    let frames: Vec<Frame> = (0..25).map(|i| Frame::text(format!("f{i}"))).collect();
    conn.ws_send(stream, frames[..10].to_vec()).unwrap();
    conn.ws_send(stream, frames[10..].to_vec()).unwrap();
    // Wait (by the server's own count, not by time) until it holds the request.
    let mut tries = 0;
    while stat(&control("/_control/stats").await, "requests") <= before {
        tries += 1;
        assert!(tries < 500, "the upgrade request never reached the server");
    }
    control("/_control/drop").await;
    match next(&mut events).await {
        Event::UpgradeFailed { stream: s, .. } => assert_eq!(s, stream),
        other => panic!("expected UpgradeFailed, got {other:?}"),
    }
    // The first connection's ending: its error, then the final Down.
    match next(&mut events).await {
        Event::Error { stream: None, .. } => {}
        other => panic!("expected Error, got {other:?}"),
    }
    match next(&mut events).await {
        Event::Down {
            unsent,
            killed_streams,
            will_reconnect: false,
            ..
        } => {
            // The stream was reported dead by UpgradeFailed already.
            assert!(killed_streams.is_empty(), "{killed_streams:?}");
            // Every frame, exactly once, in order.
            assert_eq!(unsent, frames);
        }
        other => panic!("expected Down, got {other:?}"),
    }
    expect_end(&mut events, |e| matches!(e, Event::Error { .. })).await;
}

#[wasm_bindgen_test]
async fn stale_stream_is_refused_with_its_frames() {
    let (conn, mut events) = open(Options::default().retry(quick_retry())).await;
    let (old, _) = upgrade(&conn, &mut events, Upgrade::new("/")).await;
    control("/_control/drop").await;
    match next(&mut events).await {
        Event::Down {
            killed_streams,
            will_reconnect: true,
            ..
        } => assert_eq!(killed_streams, [old]),
        other => panic!("expected Down, got {other:?}"),
    }
    loop {
        match next(&mut events).await {
            Event::Reconnecting { .. } => {}
            Event::Up { .. } => break,
            other => panic!("expected Reconnecting/Up, got {other:?}"),
        }
    }
    let frames = vec![Frame::text("x"), Frame::binary(vec![1])];
    let error = conn.ws_send(old, frames.clone()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::StaleStream);
    assert_eq!(error.unsent(), frames.as_slice());

    let (new, _) = upgrade(&conn, &mut events, Upgrade::new("/")).await;
    assert_ne!(new, old);
    let error = conn.ws_send(old, Frame::text("y")).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::StaleStream);
    conn.ws_send(new, Frame::text("z")).unwrap();
    assert_eq!(next_frame(&mut events, new).await, Frame::text("z"));
    shutdown(&conn, &mut events).await;
}

#[wasm_bindgen_test]
async fn what_a_browser_cannot_do_is_refused() {
    // Options.
    let ping_keepalive = Options::default()
        .keepalive(Keepalive::every(Duration::from_secs(1)).timeout(Duration::from_secs(1)));
    let error = Connection::open(&ws_url("/"), ping_keepalive).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unsupported);
    let roots = Options::default().add_root_certificate_der(vec![1, 2, 3]);
    let error = Connection::open(&ws_url("/"), roots).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unsupported);
    let read_buffer = Options::default().read_buffer_size(1 << 20);
    let error = Connection::open(&ws_url("/"), read_buffer).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unsupported);

    let (conn, mut events) = open(Options::default()).await;
    // Custom headers (subprotocols are fine).
    let error = conn
        .ws_upgrade_with(Upgrade::new("/").header("authorization", "Bearer x"))
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unsupported);
    assert!(error.to_string().contains("authorization"), "{error}");

    let (stream, _) = upgrade(&conn, &mut events, Upgrade::new("/").protocol("chat")).await;
    // Ping and pong frames.
    let error = conn
        .ws_send(stream, Frame::Ping(vec![1].into()))
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unsupported);
    assert_eq!(error.unsent(), [Frame::Ping(vec![1].into())]);
    let error = conn
        .ws_send(stream, Frame::Pong(Default::default()))
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unsupported);
    // Close codes a script may not send.
    for code in [1001, 1011] {
        let close = Frame::close(code, "").unwrap();
        let error = conn
            .ws_send(stream, [Frame::text("a"), close.clone()])
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidCloseCode, "{code}");
        assert_eq!(error.unsent(), [Frame::text("a"), close]);
    }
    // Nothing refused was sent; the connection still works.
    conn.ws_send(stream, Frame::text("still here")).unwrap();
    assert_eq!(
        next_frame(&mut events, stream).await,
        Frame::text("still here")
    );
    shutdown(&conn, &mut events).await;
}

#[wasm_bindgen_test]
async fn a_large_volume_is_echoed_in_order_under_back_pressure() {
    // 24 MiB, over the transport's 4 MiB bufferedAmount limit: frames wait
    // in the send queue (`send` waits for room) and nothing is lost.
    let (conn, mut events) = open(Options::default()).await;
    let (stream, _) = upgrade(&conn, &mut events, Upgrade::new("/")).await;
    let frame = |i: usize| {
        let mut data = vec![(i % 256) as u8; 1 << 20];
        data[0] = i as u8;
        Frame::binary(data)
    };
    let count = 24;
    let sender = conn.clone();
    let sending = async move {
        for i in 0..count {
            sender.send(stream, frame(i)).await.unwrap();
        }
    };
    let receiving = async {
        for i in 0..count {
            assert_eq!(next_frame(&mut events, stream).await, frame(i), "frame {i}");
        }
    };
    futures::join!(sending, receiving);
    shutdown(&conn, &mut events).await;
}

#[wasm_bindgen_test]
async fn dropping_every_handle_closes_the_socket() {
    let (conn, mut events) = open(Options::default()).await;
    upgrade(&conn, &mut events, Upgrade::new("/")).await;
    // Ours and the stats request's own connection (and maybe one an
    // earlier test is still closing) are live.
    let live = stat(&control("/_control/stats").await, "live");
    assert!(live >= 2, "{live}");
    drop(conn);
    // Gun's `close/1`: at once, and whoever still reads the events is told,
    // with the frames not written (none here), in a final `Down`.
    match next(&mut events).await {
        Event::Down {
            reason: DownReason::Shutdown,
            unsent,
            will_reconnect: false,
            ..
        } => assert!(unsent.is_empty(), "{unsent:?}"),
        other => panic!("expected Down(Shutdown), got {other:?}"),
    }
    expect_end(&mut events, |_| false).await;
    let mut tries = 0;
    while stat(&control("/_control/stats").await, "live") >= live {
        tries += 1;
        assert!(tries < 500, "the socket stayed open");
    }
}

#[wasm_bindgen_test]
async fn a_20_mib_single_frame_message_arrives_with_defaults() {
    // The frame limit never refuses what the message limit (64 MiB) allows.
    let (conn, mut events) = open(Options::default().retry(Retry::never())).await;
    let (stream, _) = upgrade(
        &conn,
        &mut events,
        Upgrade::new("/?send=1&size=20971520&kind=binary"),
    )
    .await;
    match next_frame(&mut events, stream).await {
        Frame::Binary(data) => assert_eq!(data.len(), 20 << 20),
        other => panic!("expected the 20 MiB message, got {other:?}"),
    }
    conn.shutdown();
}

#[wasm_bindgen_test]
async fn an_unread_burst_past_event_queue_bytes_ends_the_connection() {
    // A browser cannot pause reading: past the byte bound (here 64 KiB
    // queued and 64 KiB more arrived) the connection ends instead of
    // growing memory, and what was queued is still delivered first.
    let options = Options::default()
        .retry(Retry::never())
        .event_queue_len(4)
        .event_queue_bytes(64 << 10);
    let (conn, mut events) = open(options).await;
    let (stream, _) = upgrade(
        &conn,
        &mut events,
        Upgrade::new("/?send=200&size=16384&kind=binary"),
    )
    .await;
    // The attack: 3.2 MB arrive while the application does not read.
    gloo_timers::future::TimeoutFuture::new(500).await;
    let mut frames = 0;
    loop {
        match next(&mut events).await {
            Event::Frame { stream: s, .. } if s == stream => frames += 1,
            Event::Down {
                reason: DownReason::Error(error),
                will_reconnect: false,
                ..
            } => {
                assert_eq!(error.kind(), ErrorKind::QueueFull, "{error}");
                break;
            }
            other => panic!("expected frames then Down(QueueFull), got {other:?}"),
        }
    }
    // At most the queue (4 events) plus 64 KiB waiting (4 × 16 KiB) plus
    // what the driver held: far fewer than the 200 sent.
    assert!((1..200).contains(&frames), "{frames} frames delivered");
    expect_end(&mut events, |_| false).await;
}

/// The burst index the testkit writes at the start of a `send=N` frame.
fn burst_index(frame: &Frame) -> u64 {
    let Frame::Text(text) = frame else {
        panic!("not a text burst frame: {frame:?}");
    };
    text.split(' ').next().unwrap().parse().unwrap()
}

#[wasm_bindgen_test]
async fn flow_pauses_delivery_until_update_flow() {
    // A browser cannot stop reading: with the credit spent, what arrives
    // waits (bounded by event_queue_bytes) and is delivered, in order, as
    // credit is granted.
    let (conn, mut events) = open(Options::default()).await;
    let (stream, _) = upgrade(
        &conn,
        &mut events,
        Upgrade::new("/?send=10&size=16").flow(2),
    )
    .await;
    let mut seen = Vec::new();
    for _ in 0..2 {
        seen.push(burst_index(&next_frame(&mut events, stream).await));
    }
    // Absence check: the other 8 frames are sent at once by the server.
    let came = {
        let recv = Box::pin(events.recv());
        let timeout = gloo_timers::future::TimeoutFuture::new(300);
        match futures::future::select(recv, timeout).await {
            futures::future::Either::Left((event, _)) => Some(event),
            futures::future::Either::Right(_) => None,
        }
    };
    assert!(
        came.is_none(),
        "the credit of 2 is spent, yet {came:?} came"
    );
    conn.update_flow(stream, 8).unwrap();
    for _ in 0..8 {
        seen.push(burst_index(&next_frame(&mut events, stream).await));
    }
    assert_eq!(seen, (0..10).collect::<Vec<u64>>());
    shutdown(&conn, &mut events).await;
}

#[wasm_bindgen_test]
async fn a_provider_header_is_refused_at_upgrade_time() {
    // A browser cannot send custom headers: an upgrade made by the
    // provider is checked like one made by ws_upgrade, never sent without them.
    let options = Options::default()
        .retry(Retry::never())
        .auto_upgrade_with_sync(|| Upgrade::new("/").header("authorization", "Bearer t"));
    let (_conn, mut events) = Connection::open(&ws_url("/"), options).expect("open");
    assert!(matches!(next(&mut events).await, Event::Up { .. }));
    match next(&mut events).await {
        Event::UpgradeFailed { error, status, .. } => {
            assert_eq!(error.kind(), ErrorKind::Unsupported, "{error}");
            assert_eq!(status, None);
        }
        other => panic!("expected UpgradeFailed(Unsupported), got {other:?}"),
    }
}

/// Counts what the observer is told, as a metrics exporter would.
#[derive(Default)]
struct Counting {
    connect_ok: AtomicU64,
    tls: AtomicU64,
    frames_sent: AtomicU64,
    messages_sent: AtomicU64,
    bytes_sent: AtomicU64,
    frames_received: AtomicU64,
    messages_received: AtomicU64,
    bytes_received: AtomicU64,
    disconnects: AtomicU64,
    connected_ns: AtomicU64,
    reconnects_scheduled: AtomicU64,
    terminates: AtomicU64,
}

fn add(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

impl Observer for Counting {
    fn connect_end(&self, _: u64, _: u32, _: Duration, error: Option<&wstether::Error>) {
        add(&self.connect_ok, u64::from(error.is_none()));
    }
    fn tls_handshake(&self, _: u64, _: u32, _: Duration) {
        add(&self.tls, 1);
    }
    fn frame_sent(&self, _: StreamRef, frame: FrameInfo) {
        if frame.internal {
            return;
        }
        add(&self.frames_sent, 1);
        if frame.opcode.is_message() {
            add(&self.messages_sent, 1);
            add(&self.bytes_sent, frame.len as u64);
        }
    }
    fn frame_received(&self, _: StreamRef, frame: FrameInfo) {
        add(&self.frames_received, 1);
        if frame.opcode.is_message() {
            add(&self.messages_received, 1);
            add(&self.bytes_received, frame.len as u64);
        }
    }
    fn disconnect(&self, _: u64, _: &DownReason, connected_for: Duration) {
        add(&self.disconnects, 1);
        add(&self.connected_ns, connected_for.as_nanos() as u64);
    }
    fn reconnect_scheduled(&self, _: u64, _: u32, _: Duration) {
        add(&self.reconnects_scheduled, 1);
    }
    fn terminate(&self, _: u64, _: Duration) {
        add(&self.terminates, 1);
    }
}

/// Sends `texts` on `stream` and waits for their echoes.
async fn echo_all(conn: &Connection, events: &mut Events, stream: StreamRef, texts: &[&str]) {
    let frames: Vec<Frame> = texts.iter().map(|t| Frame::text(*t)).collect();
    conn.ws_send(stream, frames.clone()).unwrap();
    for frame in frames {
        assert_eq!(next_frame(events, stream).await, frame);
    }
}

/// In a browser the observer is told what `conn.stats()` counts, over a
/// session with a server restart and the automatic upgrade after it; TLS
/// is never reported (the browser does it and does not tell).
#[wasm_bindgen_test]
async fn the_observers_counts_match_stats_in_a_browser() {
    let observer = Arc::new(Counting::default());
    let options = Options::default()
        .retry(quick_retry())
        .auto_upgrade(true)
        .observer(observer.clone());
    let (conn, mut events) = open(options).await;
    let (stream, _) = upgrade(&conn, &mut events, Upgrade::new("/")).await;
    echo_all(&conn, &mut events, stream, &["one", "two", "three"]).await;

    restart_server(&mut events, stream, 300).await;
    // While the server is down, attempts fail; the automatic upgrade runs
    // on each new one until it works.
    let stream = loop {
        match next(&mut events).await {
            Event::Upgraded { stream, .. } => break stream,
            Event::Reconnecting { .. } | Event::Up { .. } | Event::UpgradeFailed { .. } => {}
            Event::Down {
                will_reconnect: true,
                ..
            } => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    echo_all(&conn, &mut events, stream, &["four", "fifty"]).await;
    shutdown(&conn, &mut events).await;

    let stats = conn.stats();
    let o = &*observer;
    assert_eq!(get(&o.frames_sent), stats.frames_written, "{stats:?}");
    assert_eq!(get(&o.messages_sent), stats.messages_written);
    assert_eq!(get(&o.bytes_sent), stats.bytes_written);
    assert_eq!(get(&o.frames_received), stats.frames_received);
    assert_eq!(get(&o.messages_received), stats.messages_received);
    assert_eq!(get(&o.bytes_received), stats.bytes_received);
    assert_eq!(get(&o.connect_ok), stats.reconnects + 1);
    assert_eq!(
        Duration::from_nanos(get(&o.connected_ns)),
        stats.time_connected
    );
    // The figures: 5 messages of 3+3+5+4+5 bytes each way.
    assert_eq!(stats.messages_written, 5);
    assert_eq!(stats.bytes_written, 20);
    assert_eq!(stats.messages_received, 5);
    assert_eq!(stats.bytes_received, 20);
    assert!(stats.reconnects >= 1, "{stats:?}");
    assert!(get(&o.reconnects_scheduled) >= 1);
    assert!(get(&o.disconnects) >= 2, "the restart and the shutdown");
    assert_eq!(get(&o.terminates), 1);
    assert!(stats.time_connected > Duration::ZERO);
    assert_eq!(get(&o.tls), 0, "no TLS event in a browser");
}
