//! The delivery promise under partial flushes, failures, a panic and a
//! runtime shut down: every frame is written or comes back, exactly once.

use super::*;

#[tokio::test(start_paused = true)]
async fn the_mock_records_what_reached_the_wire_and_a_full_flush_counts_it_written() {
    let (mock, url) = Mock::install([Attempt::open(SocketScript::default())]);
    let (conn, mut events) = open(&url, quiet());
    let stream = conn.ws_upgrade("/").unwrap();
    until(&mut events, is_upgraded).await;
    conn.ws_send(stream, vec![text(0), text(1), text(2)])
        .unwrap();
    mock.wait_for("3 frames written", |s| {
        (s.sockets[0].written_through == Some(3)).then_some(())
    })
    .await;
    conn.shutdown();
    let all = rest(&mut events).await;
    assert_eq!(mock.wire_ids(), [0, 1, 2]);
    assert_eq!(conn.stats().frames_written, 3, "{all:?}");
    let sent = &mock.lock().sockets[0].sent;
    assert!(
        sent.last()
            .is_some_and(|out| out.internal && out.frame.is_close()),
        "the shutdown's close frame went last and is the core's own: {sent:?}"
    );
}

/// One randomized case: a scripted socket with partial flushes and one
/// failure at a random point; frames sent in batches over (virtual) time.
/// Returns (accepted, written, returned).
async fn partial_flush_case(seed: u64) -> (usize, u64, usize) {
    let mut rng = Rng(seed);
    let mut socket = SocketScript::default();
    for _ in 0..rng.below(16) {
        socket = socket.flush(match rng.below(4) {
            0 => Flush::Ok,
            _ => Flush::Partial(rng.below(3) as usize),
        });
    }
    for _ in 0..rng.below(6) {
        socket.ready.push_back(if rng.below(2) == 0 {
            Ready::Ok
        } else {
            Ready::Pending
        });
    }
    let mut upgrade = UpgradeStep::Ok;
    let failure = rng.below(8);
    let io = Fault::Err(ErrorKind::Io);
    socket = match failure {
        0 if rng.below(2) == 0 => socket.fault(Call::Flush, 1 + rng.below(12) as usize, io),
        0 => {
            let at = rng.below(16) as usize;
            socket
                .flush
                .insert(at.min(socket.flush.len()), Flush::Err(ErrorKind::Io));
            socket
        }
        1 => socket.fault(Call::Ready, 1 + rng.below(30) as usize, io),
        2 => socket.fault(Call::Send, 1 + rng.below(30) as usize, io),
        3 => socket.fault(Call::Recv, 1 + rng.below(12) as usize, io),
        4 => socket
            .recv(Recv::Wait(MS * rng.below(40) as u32))
            .recv(Recv::End),
        // A protocol error: the core fails the connection with a close frame.
        5 => socket
            .recv(Recv::Wait(MS * rng.below(40) as u32))
            .recv(Recv::Err(ErrorKind::Protocol)),
        6 => {
            upgrade = UpgradeStep::Rejected(403);
            socket
        }
        // No failure: the shutdown at the end closes it.
        _ => socket,
    };
    let retries = rng.below(2) as u32;
    let mut attempts = vec![Attempt {
        dial: DialStep::Ok,
        upgrade,
        socket,
    }];
    // A reconnect, if allowed, fails to dial: the retries run out.
    attempts.push(Attempt {
        dial: DialStep::Err(ErrorKind::Connect),
        upgrade: UpgradeStep::Ok,
        socket: SocketScript::default(),
    });
    let (mock, url) = Mock::install(attempts);
    let options = Options::default()
        .no_keepalive()
        .retry(Retry::default().max_retries(retries).jitter(0.0));
    let (conn, mut events) = open(&url, options);
    let stream = conn.ws_upgrade("/").unwrap();

    let mut accepted = Vec::new();
    let mut next_id = 0;
    for _ in 0..1 + rng.below(8) {
        let n = 1 + rng.below(6);
        let frames: Vec<Frame> = (next_id..next_id + n).map(text).collect();
        next_id += n;
        match conn.ws_send(stream, frames.clone()) {
            Ok(()) => accepted.extend(frames.iter().map(id_of)),
            // Refused at once (the connection is down or closed): the
            // frames come back in the error and were never accepted.
            Err(error) => assert_eq!(error.unsent(), frames, "seed {seed}"),
        }
        // The schedule (not a synchronisation): let the driver and the
        // script's timers run for a random while.
        match rng.below(3) {
            0 => tokio::task::yield_now().await,
            1 => tokio::time::sleep(MS * rng.below(20) as u32).await,
            _ => {}
        }
    }
    conn.shutdown();
    let all = rest(&mut events).await;
    let returned = returned_by(&all);
    let written = conn.stats().frames_written;
    assert_exact(
        &format!("seed {seed} (failure {failure}, events {all:?})"),
        &accepted,
        written,
        &returned,
        &mock.wire_ids(),
    );
    // Returned frames come back in the order they were sent.
    assert!(
        returned.windows(2).all(|w| w[0] < w[1]),
        "seed {seed}: {returned:?}"
    );
    (accepted.len(), written, returned.len())
}

#[tokio::test(start_paused = true)]
async fn partial_flushes_then_a_failure_at_a_random_point_write_or_return_every_frame_exactly_once()
{
    let (mut accepted, mut written, mut returned) = (0, 0, 0);
    for seed in 0..200 {
        let (a, w, r) = partial_flush_case(seed).await;
        accepted += a;
        written += w;
        returned += r;
    }
    eprintln!("200 scripts: {accepted} frames accepted, {written} written, {returned} returned");
    assert!(written > 0 && returned > 0, "both outcomes are exercised");
}

/// Sends frames numbered from `base` until the connection refuses them as
/// closed. Returns the ids accepted, the count refused as full, and the
/// last (closed) error's frames.
fn send_until_closed(
    conn: Connection,
    stream: crate::event::StreamRef,
    base: u64,
) -> (Vec<u64>, u64, Vec<Frame>) {
    let deadline = std::time::Instant::now() + PATIENCE;
    let mut accepted = Vec::new();
    let mut refused = 0;
    for n in 0.. {
        assert!(
            std::time::Instant::now() < deadline,
            "the connection still accepts frames after {PATIENCE:?} ({} accepted)",
            accepted.len()
        );
        let id = base + n;
        match conn.ws_send(stream, text(id)) {
            Ok(()) => accepted.push(id),
            Err(error) if error.kind() == ErrorKind::QueueFull => {
                assert_eq!(error.unsent(), [text(id)]);
                refused += 1;
                std::thread::yield_now();
            }
            Err(error) => {
                assert_eq!(error.kind(), ErrorKind::Closed, "{error}");
                return (accepted, refused, error.into_unsent());
            }
        }
    }
    unreachable!()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_the_driver_ends_the_events_with_a_down_that_returns_every_unwritten_frame() {
    let mut socket = SocketScript::default().fault(Call::Recv, 300, Fault::Panic);
    for i in 0..200 {
        socket = socket.flush(if i % 3 == 0 {
            Flush::Ok
        } else {
            Flush::Partial(1)
        });
    }
    let (mock, url) = Mock::install([Attempt::open(socket)]);
    let (conn, mut events) = open(&url, quiet().send_queue_bytes(4096));
    let stream = conn.ws_upgrade("/").unwrap();
    until(&mut events, is_upgraded).await;

    let senders: Vec<_> = (0..2u64)
        .map(|t| {
            let conn = conn.clone();
            std::thread::spawn(move || send_until_closed(conn, stream, t << 40))
        })
        .collect();
    let all = rest(&mut events).await;
    let mut accepted = Vec::new();
    let mut refused = 0;
    for sender in senders {
        let (ids, full, last) = tokio::task::spawn_blocking(move || sender.join())
            .await
            .unwrap()
            .expect("a sending thread failed");
        assert_eq!(last.len(), 1, "the refused frame comes back in the error");
        accepted.extend(ids);
        refused += full;
    }
    let Some(Event::Down {
        reason: DownReason::Error(error),
        will_reconnect: false,
        ..
    }) = all.last()
    else {
        panic!(
            "the last event is not the driver's final Down: {:?}",
            all.last()
        );
    };
    assert_eq!(error.kind(), ErrorKind::Closed);
    assert_eq!(all.iter().filter(|e| is_down(e)).count(), 1);
    assert!(
        mock.lock().sockets[0].calls[Call::Recv as usize] >= 300,
        "the scripted panic happened"
    );
    let returned = returned_by(&all);
    let written = conn.stats().frames_written;
    assert_exact(
        &format!("panic ({refused} refused as full)"),
        &accepted,
        written,
        &returned,
        &mock.wire_ids(),
    );
    assert!(!returned.is_empty() || written as usize == accepted.len());
    // Later sends are refused with their frames.
    let error = conn.ws_send(stream, text(u64::MAX)).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Closed);
    assert_eq!(error.into_unsent(), [text(u64::MAX)]);
    assert!(tokio::time::timeout(PATIENCE, events.recv())
        .await
        .expect("recv returns at once after the end")
        .is_none());
}

#[test]
fn a_runtime_shut_down_under_the_driver_returns_every_frame_in_a_last_down() {
    let (mock, url) = Mock::install([Attempt::open(
        SocketScript::default()
            .flush(Flush::Partial(1))
            .flush_default(Flush::Stall { bytes: 0 }),
    )]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (conn, mut events, stream, early) = runtime.block_on(async {
        let (conn, mut events) = open(&url, quiet());
        let stream = conn.ws_upgrade("/").unwrap();
        let early = until(&mut events, is_upgraded).await;
        // In flight: handed to the socket, one written, the rest stuck.
        conn.ws_send(stream, vec![text(0), text(1), text(2)])
            .unwrap();
        mock.wait_for("3 frames handed over", |s| {
            (s.sockets[0].sent.len() == 3).then_some(())
        })
        .await;
        (conn, events, stream, early)
    });
    // Queued for a driver that will never run again.
    conn.ws_send(stream, vec![text(3), text(4)]).unwrap();
    drop(runtime);

    let error = conn.ws_send(stream, text(5)).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Closed);
    assert_eq!(error.into_unsent(), [text(5)]);
    let reader = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let all = reader.block_on(rest(&mut events));
    let Some(Event::Down {
        reason: DownReason::Error(error),
        unsent,
        will_reconnect: false,
        ..
    }) = all.last()
    else {
        panic!("no final Down: {early:?} then {all:?}");
    };
    assert_eq!(error.kind(), ErrorKind::Closed);
    assert_eq!(unsent, &[text(1), text(2), text(3), text(4)]);
    assert!(mock.lock().sockets[0].dropped);
    assert_exact(
        "runtime shutdown",
        &[0, 1, 2, 3, 4],
        conn.stats().frames_written,
        &returned_by(&all),
        &mock.wire_ids(),
    );
}

/// A keepalive interval without a word from the peer is a quiet moment:
/// the driver trims the socket too (its kept write buffers go), and only
/// then, not at every flush.
#[tokio::test(start_paused = true)]
async fn a_quiet_keepalive_interval_trims_the_socket_and_a_busy_one_does_not() {
    let socket = talking(SocketScript::default(), 50 * MS, 20);
    let (mock, url) = Mock::install([Attempt::open(socket)]);
    let options = quiet().keepalive(Keepalive::every(200 * MS).timeout(300 * MS));
    let (conn, mut events) = open(&url, options);
    let stream = conn.ws_upgrade("/").unwrap();
    until(&mut events, is_upgraded).await;
    let upgraded = mock.lock().sockets[0].trims;
    // The peer talks every 50 ms; each of its frames gets an answer.
    for i in 0..20 {
        until(&mut events, |e| matches!(e, Event::Frame { .. })).await;
        conn.ws_send(stream, text(i)).unwrap();
    }
    mock.wait_for("the last answer written", |s| {
        let socket = &s.sockets[0];
        let answers = socket
            .sent
            .iter()
            .filter(|o| matches!(o.frame, WireFrame::Text(_)));
        (answers.count() == 20 && socket.handed.is_empty()).then_some(())
    })
    .await;
    let busy = mock.lock().sockets[0].trims;
    assert_eq!(busy, upgraded, "no trim while the peer talks, 20 flushes");
    let last_heard = Instant::now();
    mock.wait_for("a trim after a quiet interval", |s| {
        (s.sockets[0].trims > busy).then_some(())
    })
    .await;
    assert!(
        Instant::now() - last_heard >= 150 * MS,
        "not before the interval"
    );
    let state = mock.lock();
    assert!(
        matches!(
            state.sockets[0].sent.last().map(|o| &o.frame),
            Some(WireFrame::Ping(_))
        ),
        "the trim came with the quiet interval's probe"
    );
}
