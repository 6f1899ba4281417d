//! A peer that breaks the protocol, stops reading or closes, and a close
//! or shutdown while connecting: the driver carries out what the core
//! decides, at the core's deadlines.

use super::*;

/// A protocol error of the peer's while frames wait for a flush.
async fn protocol_error_with_stalled_flush() -> (Arc<Mock>, Connection, Events, Instant) {
    let gate = Gate::default();
    let (mock, url) = Mock::install([Attempt::open(
        SocketScript::default()
            .flush_default(Flush::Stall { bytes: 0 })
            .recv(Recv::Gate(gate.clone()))
            .recv(Recv::Err(ErrorKind::Protocol)),
    )]);
    let (conn, mut events) = open(&url, quiet());
    let stream = conn.ws_upgrade("/").unwrap();
    until(&mut events, is_upgraded).await;
    conn.ws_send(stream, vec![text(0), text(1), text(2)])
        .unwrap();
    mock.wait_for("3 frames handed over", |s| {
        (s.sockets[0].sent.len() == 3).then_some(())
    })
    .await;
    let t0 = Instant::now();
    gate.open();
    mock.wait_for("the fail-close frame", |s| {
        (!s.sockets[0].fail_closes.is_empty()).then_some(())
    })
    .await;
    assert_eq!(mock.lock().sockets[0].fail_closes, [1002]);
    (mock, conn, events, t0)
}

fn assert_protocol_down(event: &Event) {
    let Event::Down {
        reason: DownReason::Error(error),
        will_reconnect: false,
        ..
    } = event
    else {
        panic!("not a Down for the peer's protocol error: {event:?}");
    };
    assert_eq!(error.kind(), ErrorKind::Protocol);
}

#[tokio::test(start_paused = true)]
async fn a_protocol_error_sends_1002_and_goes_down_at_the_fail_close_deadline_if_the_flush_never_completes(
) {
    let (mock, conn, mut events, t0) = protocol_error_with_stalled_flush().await;
    let seen = until(&mut events, is_down).await;
    let elapsed = Instant::now() - t0;
    assert!(
        elapsed >= FAIL_CLOSE_TIMEOUT && elapsed <= FAIL_CLOSE_TIMEOUT + 5 * MS,
        "down after {elapsed:?}"
    );
    let down = seen.last().unwrap();
    assert_protocol_down(down);
    let Event::Down { unsent, .. } = down else {
        unreachable!()
    };
    assert_eq!(unsent, &[text(0), text(1), text(2)]);
    let after = rest(&mut events).await;
    assert!(after.is_empty(), "{after:?}");
    assert!(mock.lock().sockets[0].dropped);
    assert_exact(
        "fail-close timeout",
        &[0, 1, 2],
        conn.stats().frames_written,
        &returned_by(&seen),
        &mock.wire_ids(),
    );
}

#[tokio::test(start_paused = true)]
async fn a_protocol_error_goes_down_as_soon_as_the_fail_close_flush_completes() {
    let (mock, conn, mut events, t0) = protocol_error_with_stalled_flush().await;
    mock.rescript(0, |script| script.flush_default = Flush::Ok);
    let seen = until(&mut events, is_down).await;
    assert!(Instant::now() - t0 < 5 * MS, "no wait for the deadline");
    let down = seen.last().unwrap();
    assert_protocol_down(down);
    let Event::Down { unsent, .. } = down else {
        unreachable!()
    };
    assert!(
        unsent.is_empty(),
        "the completed flush wrote them: {unsent:?}"
    );
    assert!(rest(&mut events).await.is_empty());
    assert_eq!(mock.wire_ids(), [0, 1, 2]);
    assert_eq!(conn.stats().frames_written, 3);
}

/// A peer that talks every 100 ms (so the keepalive hears it) while our
/// writes are blocked; `bytes` per flush attempt get out.
async fn write_blocked(bytes: u64) -> (Arc<Mock>, Connection, Events, Instant) {
    let stalled = SocketScript::default().flush_default(Flush::Stall { bytes });
    let socket = talking(stalled, 100 * MS, 100);
    let (mock, url) = Mock::install([Attempt::open(socket)]);
    let options = quiet().keepalive(Keepalive::every(200 * MS).timeout(300 * MS));
    let (conn, mut events) = open(&url, options);
    let stream = conn.ws_upgrade("/").unwrap();
    until(&mut events, is_upgraded).await;
    conn.ws_send(stream, vec![text(0), text(1)]).unwrap();
    mock.wait_for("2 frames handed over", |s| {
        (s.sockets[0].sent.len() == 2).then_some(())
    })
    .await;
    (mock, conn, events, Instant::now())
}

fn peer_frames(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::Frame { .. }))
        .count()
}

#[tokio::test(start_paused = true)]
async fn a_write_stalled_for_keepalive_interval_plus_timeout_is_a_dead_peer_at_500ms() {
    let (mock, conn, mut events, t0) = write_blocked(0).await;
    let seen = until(&mut events, is_down).await;
    let elapsed = Instant::now() - t0;
    assert!(
        elapsed >= 500 * MS && elapsed <= 505 * MS,
        "declared dead after {elapsed:?}"
    );
    assert!(
        peer_frames(&seen) >= 4,
        "the peer kept talking, so the keepalive alone was satisfied: {seen:?}"
    );
    let Some(Event::Down {
        reason: DownReason::PeerDead,
        unsent,
        will_reconnect: false,
        ..
    }) = seen.last()
    else {
        panic!("not PeerDead: {seen:?}");
    };
    assert_eq!(unsent, &[text(0), text(1)]);
    rest(&mut events).await;
    assert_exact(
        "write stall",
        &[0, 1],
        conn.stats().frames_written,
        &returned_by(&seen),
        &mock.wire_ids(),
    );
}

#[tokio::test(start_paused = true)]
async fn a_write_that_keeps_making_progress_is_not_a_dead_peer() {
    let (mock, conn, mut events, t0) = write_blocked(100).await;
    // Three seconds of the peer talking (30 frames) while the flush crawls.
    let mut seen = Vec::new();
    while peer_frames(&seen) < 30 {
        let event = next(&mut events).await;
        assert!(!is_down(&event), "declared dead while writing: {event:?}");
        seen.push(event);
    }
    assert!(Instant::now() - t0 >= Duration::from_secs(3));
    // The flush completes: the frames count as written.
    mock.rescript(0, |script| script.flush_default = Flush::Ok);
    mock.wait_for("the frames written", |s| {
        (s.sockets[0].written_through == Some(2)).then_some(())
    })
    .await;
    conn.shutdown();
    let all = rest(&mut events).await;
    let Some(Event::Down {
        reason: DownReason::Shutdown,
        unsent,
        ..
    }) = all.iter().find(|e| is_down(e))
    else {
        panic!("no Down after the shutdown: {all:?}");
    };
    assert!(unsent.is_empty());
    assert_eq!(conn.stats().frames_written, 2);
    assert_eq!(mock.wire_ids(), [0, 1]);
}

#[tokio::test(start_paused = true)]
async fn a_close_frame_queued_during_a_pending_upgrade_ends_the_connection_after_the_upgrade_timeout(
) {
    let (mock, url) = Mock::install([Attempt {
        dial: DialStep::Ok,
        upgrade: UpgradeStep::Pending,
        socket: SocketScript::default(),
    }]);
    // Retries allowed: only the close frame stops them.
    let options = Options::default()
        .no_keepalive()
        .upgrade_timeout(200 * MS)
        .retry(Retry::default().jitter(0.0));
    let (conn, mut events) = open(&url, options);
    let stream = conn.ws_upgrade("/").unwrap();
    conn.ws_send(stream, vec![text(0), Frame::close_normal()])
        .unwrap();
    let all = rest(&mut events).await;
    let failed = all
        .iter()
        .find_map(|e| match e {
            Event::UpgradeFailed { error, .. } => Some(error.kind()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no UpgradeFailed: {all:?}"));
    assert_eq!(failed, ErrorKind::Timeout);
    let Some(Event::Down {
        unsent,
        will_reconnect: false,
        ..
    }) = all.last()
    else {
        panic!("the events do not end with a final Down: {all:?}");
    };
    assert_eq!(unsent, &[text(0), Frame::close_normal()]);
    assert_eq!(mock.lock().dials, 1, "no reconnect after a close frame");
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_while_the_dial_hangs_returns_the_frames_in_the_upgrade_failure() {
    let (mock, url) = Mock::install([Attempt {
        dial: DialStep::Pending,
        upgrade: UpgradeStep::Ok,
        socket: SocketScript::default(),
    }]);
    let (conn, mut events) = open(&url, quiet());
    let stream = conn.ws_upgrade("/").unwrap();
    conn.ws_send(stream, vec![text(0), text(1)]).unwrap();
    mock.wait_for("the dial", |s| (s.dials == 1).then_some(()))
        .await;
    conn.shutdown();
    let all = rest(&mut events).await;
    assert_eq!(returned_by(&all), [0, 1], "{all:?}");
    assert!(
        matches!(&all[..], [Event::UpgradeFailed { error, .. }] if error.kind() == ErrorKind::Closed),
        "{all:?}"
    );
    assert_eq!(conn.stats().frames_written, 0);
}

#[tokio::test(start_paused = true)]
async fn nothing_is_sent_after_the_peers_close_frame_and_a_later_error_is_still_a_close_by_the_peer(
) {
    let gate = Gate::default();
    let end = Gate::default();
    let close = Frame::Close(Some(crate::frame::CloseFrame {
        code: crate::frame::CloseCode::new(1008).unwrap(),
        reason: String::new(),
    }));
    let (mock, url) = Mock::install([Attempt::open(
        SocketScript::default()
            .recv(Recv::Gate(gate.clone()))
            .recv(Recv::Frame(close))
            .recv(Recv::Gate(end.clone()))
            // What tungstenite says to a send after the close (SendAfterClosing).
            .recv(Recv::Err(ErrorKind::Protocol)),
    )]);
    // Retries allowed: only the stop code (1008) ends the connection.
    let options = Options::default()
        .no_keepalive()
        .retry(Retry::default().jitter(0.0));
    let (conn, mut events) = open(&url, options);
    let stream = conn.ws_upgrade("/").unwrap();
    until(&mut events, is_upgraded).await;
    gate.open();
    until(&mut events, |e| {
        matches!(
            e,
            Event::Frame {
                frame: Frame::Close(_),
                ..
            }
        )
    })
    .await;
    // Refused at once, the frames given back (issue 21, item 5).
    let refused = conn.ws_send(stream, vec![text(0), text(1)]).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Closed);
    assert_eq!(refused.into_unsent(), [text(0), text(1)]);
    end.open();
    let all = rest(&mut events).await;
    let Some(Event::Down {
        reason: DownReason::ClosedByPeer(close),
        unsent,
        will_reconnect: false,
        ..
    }) = all.last()
    else {
        panic!("not a final close by the peer: {all:?}");
    };
    assert_eq!(close.code.as_u16(), 1008);
    assert!(unsent.is_empty(), "{unsent:?}");
    let state = mock.lock();
    let record = &state.sockets[0];
    assert!(
        record.sent.is_empty(),
        "sent after the peer's close: {:?}",
        record.sent
    );
    assert!(
        record.fail_closes.is_empty(),
        "not the peer's protocol error"
    );
    assert_eq!(state.dials, 1);
}
