//! Fault injection against real servers on 127.0.0.1:0: servers killed and
//! restarted with traffic in flight (exact accounting of every frame),
//! resource counts after the cycles, peers that never answer, garbage,
//! slow readers, graceful versus abrupt closes.
//!
//! The half-open peer (`?silent=1`, declared dead by the keepalive deadline,
//! `Down { reason: PeerDead }`) is covered by
//! `tests/keepalive.rs::a_silent_peer_is_declared_dead_and_the_connection_comes_back`.
//!
//! Synchronisation is by events and testkit waits; timeouts only guard
//! against hangs. The tests of this file run one at a time (see [`serial`]),
//! so that the process-wide counts (file descriptors, memory) of the
//! kill/restart test are not disturbed by the others.
#![cfg(native)]

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{next, options, until, PATIENCE};
use wstether::{
    Connection, DownReason, ErrorKind, Event, Events, Frame, Options, Retry, StreamRef, Upgrade,
};
use wstether_testkit::TestServer;

/// Holds every test of this file to one at a time.
async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}

/// Open file descriptors of this process.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|dir| dir.count())
        .unwrap_or(0)
}

/// Resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The largest size (bytes) a TCP socket buffer can grow to: the last
/// field of `/proc/sys/net/ipv4/{name}` (`tcp_wmem` or `tcp_rmem`), 64 MiB
/// where it cannot be read.
fn tcp_buffer_max(name: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}"))
        .ok()
        .and_then(|text| text.split_whitespace().last()?.parse().ok())
        .unwrap_or(64 << 20)
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Frames carry their id as text: `"17"`.
fn id_of(frame: &Frame) -> u64 {
    match frame {
        Frame::Text(text) => text.parse().expect("a tagged frame"),
        other => panic!("untagged frame {other:?}"),
    }
}

/// The ledger of the kill/restart test: what happened to every frame id.
#[derive(Default)]
struct Ledger {
    /// Refused at once by `send`/`ws_send` (in the returned error).
    refused: HashSet<u64>,
    /// Given back later: `Down.unsent`, or an `Error`/`UpgradeFailed` event's `unsent()`.
    returned: HashSet<u64>,
    /// Echoed by the server.
    echoed: HashSet<u64>,
    downs: u32,
}

impl Ledger {
    fn refuse(&mut self, frames: &[Frame]) {
        for frame in frames {
            assert!(
                self.refused.insert(id_of(frame)),
                "refused twice: {frame:?}"
            );
        }
    }

    fn give_back(&mut self, frames: &[Frame]) {
        for frame in frames {
            assert!(
                self.returned.insert(id_of(frame)),
                "returned twice: {frame:?}"
            );
        }
    }

    /// Accounts for one event.
    fn record(&mut self, event: &Event) {
        match event {
            Event::Frame { frame, .. } => {
                assert!(self.echoed.insert(id_of(frame)), "echoed twice: {frame:?}");
            }
            Event::Down { unsent, .. } => {
                self.downs += 1;
                self.give_back(unsent)
            }
            Event::Error { error, .. } | Event::UpgradeFailed { error, .. } => {
                self.give_back(error.unsent())
            }
            _ => {}
        }
    }
}

/// The sender: pushes tagged frames as fast as the send queue lets it, on
/// whatever stream is current, until told to stop. Returns how many frames
/// it handed to the library and which were refused at once.
async fn sender(
    conn: Connection,
    mut current: tokio::sync::watch::Receiver<Option<StreamRef>>,
    stop: Arc<AtomicBool>,
) -> (u64, Ledger) {
    let mut ledger = Ledger::default();
    let mut next_id = 0u64;
    let mut round = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let stream = {
            let wanted = tokio::time::timeout(PATIENCE, current.wait_for(Option::is_some)).await;
            match wanted {
                Ok(Ok(stream)) => stream.expect("waited for it"),
                _ => break,
            }
        };
        round += 1;
        // Mostly one frame with `send` (waits for room), sometimes a list with
        // `ws_send` (refused with all its frames when the queue is full).
        let result = if round % 7 == 0 {
            let frames: Vec<Frame> = (0..3)
                .map(|k| Frame::text((next_id + k).to_string()))
                .collect();
            next_id += 3;
            conn.ws_send(stream, frames)
        } else {
            next_id += 1;
            tokio::time::timeout(
                PATIENCE,
                conn.send(stream, Frame::text((next_id - 1).to_string())),
            )
            .await
            .expect("send waits for room, not forever")
        };
        if let Err(error) = result {
            assert!(
                matches!(
                    error.kind(),
                    ErrorKind::StaleStream | ErrorKind::QueueFull | ErrorKind::Closed
                ),
                "{error}"
            );
            assert!(!error.unsent().is_empty(), "refused frames come back");
            ledger.refuse(error.unsent());
            if error.kind() == ErrorKind::Closed {
                break;
            }
            if error.kind() == ErrorKind::StaleStream {
                // Wait for the next stream rather than spin on the stale one.
                let _ = tokio::time::timeout(
                    PATIENCE,
                    current.wait_for(|s| s.is_some_and(|s| s != stream)),
                )
                .await;
            }
        }
        tokio::task::yield_now().await;
    }
    (next_id, ledger)
}

const CYCLES: u32 = 200;
/// Echoes to see on each Websocket before the server is killed: traffic is
/// flowing in both directions when it dies.
const ECHOES_PER_CYCLE: u64 = 3;

fn cycle_options() -> Options {
    Options::default()
        .retry(
            Retry::default()
                .initial_delay(Duration::from_millis(1))
                .max_delay(Duration::from_millis(10))
                // Every connection that got up counts as stable: the delay
                // starts again from 1 ms after each restart.
                .reset_after(Duration::from_millis(1)),
        )
        .no_keepalive()
        .auto_upgrade(true)
        // A small queue keeps many frames in flight without piling up.
        .send_queue_bytes(2048)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_restart_cycles_with_traffic_lose_and_duplicate_nothing() {
    let _serial = serial().await;
    let started = Instant::now();
    let server = TestServer::start().await.unwrap();
    // The baseline: the server is up, no client yet.
    let fds_before = open_fds();
    let tasks_before = alive_tasks();
    let rss_before = rss_kib();

    let (conn, mut events) = Connection::open(&server.url(""), cycle_options()).unwrap();
    conn.ws_upgrade("/").unwrap();
    let (current_tx, current_rx) = tokio::sync::watch::channel(None);
    let stop = Arc::new(AtomicBool::new(false));
    let sending = tokio::spawn(sender(conn.clone(), current_rx, stop.clone()));

    let mut ledger = Ledger::default();
    let mut cycles = 0;
    let mut echoes_this_cycle = 0;
    while cycles < CYCLES {
        let event = next(&mut events).await;
        ledger.record(&event);
        match event {
            Event::Upgraded { stream, .. } => {
                echoes_this_cycle = 0;
                current_tx.send_replace(Some(stream));
            }
            Event::Down { .. } => {
                current_tx.send_replace(None);
            }
            Event::Frame { .. } => {
                echoes_this_cycle += 1;
                if echoes_this_cycle == ECHOES_PER_CYCLE {
                    // Kill the server with frames in flight, and bring it back.
                    server.stop().await;
                    server.restart().await.unwrap();
                    cycles += 1;
                }
            }
            _ => {}
        }
    }

    // Stop sending, close, and account for everything that comes back.
    stop.store(true, Ordering::Relaxed);
    conn.shutdown();
    for event in common::rest(&mut events).await {
        ledger.record(&event);
    }
    // The sender may be waiting for a stream that will never come.
    current_tx.send_replace(None);
    drop(current_tx);
    let (sent, refused) = tokio::time::timeout(PATIENCE, sending)
        .await
        .expect("the sender ends")
        .unwrap();
    ledger.refused = refused.refused;

    let written = conn.stats().frames_written;
    let refused = ledger.refused.len() as u64;
    let returned = ledger.returned.len() as u64;
    assert!(ledger.refused.is_disjoint(&ledger.returned));
    assert_eq!(
        sent,
        refused + written + returned,
        "every frame is refused, written or returned (sent {sent}, refused {refused}, \
         written {written}, returned {returned})"
    );
    // Each id is in at most one of refused/returned, and the rest count
    // exactly `written`: so no frame was both written and returned. Every
    // echo is of a frame that was neither refused nor returned: written.
    assert!(ledger.echoed.is_disjoint(&ledger.returned));
    assert!(ledger.echoed.is_disjoint(&ledger.refused));
    assert!(ledger.echoed.len() as u64 <= written);
    assert!(ledger.echoed.iter().all(|id| *id < sent));
    let downs = ledger.downs;
    assert!(downs >= CYCLES, "{downs} downs for {CYCLES} kills");
    assert!(returned > 0, "some frames were in flight at a kill");

    // No growth: connections, tasks, file descriptors, memory.
    drop(conn);
    tokio::time::timeout(PATIENCE, server.wait_for_live_connections(0))
        .await
        .expect("the server's connections end");
    assert!(server.live_connections() <= 1);
    tokio::time::timeout(PATIENCE, async {
        while alive_tasks() > tasks_before {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{} tasks alive, {tasks_before} before", alive_tasks()));
    let fds_after = open_fds();
    let rss_after = rss_kib();
    assert!(
        fds_after <= fds_before + 2,
        "file descriptors: {fds_before} before, {fds_after} after"
    );
    let growth_kib = rss_after.saturating_sub(rss_before);
    assert!(growth_kib < 64 << 10, "RSS grew by {growth_kib} KiB");
    println!(
        "kill/restart: {CYCLES} cycles in {:?}: sent {sent}, written {written}, \
         returned {returned}, refused {refused}, echoed {}; downs {downs}; \
         fds {fds_before} -> {fds_after}; tasks {tasks_before} -> {}; \
         RSS {rss_before} KiB -> {rss_after} KiB",
        started.elapsed(),
        ledger.echoed.len(),
        alive_tasks(),
    );
}

#[tokio::test]
async fn an_upgrade_never_answered_times_out_then_the_retry_succeeds() {
    let _serial = serial().await;
    let server = TestServer::start().await.unwrap();
    // The first upgrade goes to a path the server never answers; every
    // later one (auto_upgrade's provider) to a well-behaved path.
    let calls = Arc::new(AtomicUsize::new(0));
    let provider_calls = calls.clone();
    let options = options()
        .upgrade_timeout(Duration::from_millis(200))
        .auto_upgrade_with_sync(
            move || match provider_calls.fetch_add(1, Ordering::Relaxed) {
                0 => Upgrade::new("/?no_upgrade=1"),
                _ => Upgrade::new("/"),
            },
        );
    let (conn, mut events) = Connection::open(&server.url(""), options).unwrap();
    let (failed, _) = until(&mut events, |e| matches!(e, Event::UpgradeFailed { .. })).await;
    let Event::UpgradeFailed { error, .. } = failed else {
        unreachable!()
    };
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error}");
    let (down, _) = until(&mut events, common::is_down).await;
    assert!(matches!(
        down,
        Event::Down {
            will_reconnect: true,
            ..
        }
    ));
    let (_, skipped) = until(&mut events, common::is_upgraded).await;
    assert!(skipped
        .iter()
        .any(|e| matches!(e, Event::Reconnecting { attempt: 2, .. })));
    assert!(skipped
        .iter()
        .any(|e| matches!(e, Event::Up { attempt: 2 })));
    assert_eq!(calls.load(Ordering::Relaxed), 2);
    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/?no_upgrade=1", "/"]);
    drop(conn);
}

#[tokio::test]
async fn a_listener_that_accepts_and_never_reads_times_out_then_the_retry_succeeds() {
    let _serial = serial().await;
    // A raw listener: the kernel completes the TCP handshake, the
    // accepted sockets are held and never read or written.
    let raw = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = raw.local_addr().unwrap();
    let options = options()
        .upgrade_timeout(Duration::from_millis(200))
        .auto_upgrade(true);
    let (conn, mut events) = Connection::open(&format!("ws://{addr}"), options).unwrap();
    let stream = conn.ws_upgrade("/").unwrap();
    let (held, _) = tokio::time::timeout(PATIENCE, raw.accept())
        .await
        .unwrap()
        .unwrap();
    let (failed, skipped) = until(&mut events, |e| matches!(e, Event::UpgradeFailed { .. })).await;
    assert!(
        matches!(skipped[..], [Event::Up { attempt: 1 }]),
        "{skipped:?}"
    );
    let Event::UpgradeFailed {
        stream: failed_stream,
        error,
        ..
    } = failed
    else {
        unreachable!()
    };
    assert_eq!(failed_stream, stream);
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error}");
    until(&mut events, common::is_down).await;
    // Now a real server on the same port: the retries reach it and the
    // upgrade is re-run.
    drop(held);
    drop(raw);
    let server = TestServer::start_on(addr).await.unwrap();
    until(&mut events, common::is_upgraded).await;
    assert_eq!(server.requests().len(), 1);
    drop(conn);
}

#[tokio::test]
async fn garbage_is_a_typed_error_then_a_second_attempt_is_made() {
    let _serial = serial().await;
    let server = TestServer::start().await.unwrap();
    let (conn, mut events) =
        Connection::open(&server.url(""), options().auto_upgrade(true)).unwrap();
    conn.ws_upgrade("/?garbage=1").unwrap();
    for attempt in 1..=2 {
        let (failed, _) = until(&mut events, |e| matches!(e, Event::UpgradeFailed { .. })).await;
        let Event::UpgradeFailed { status, error, .. } = failed else {
            unreachable!()
        };
        assert_eq!(status, None);
        assert!(
            matches!(error.kind(), ErrorKind::Upgrade | ErrorKind::Io),
            "attempt {attempt}: {error}"
        );
        let (down, _) = until(&mut events, common::is_down).await;
        assert!(
            matches!(
                down,
                Event::Down {
                    reason: DownReason::Error(_),
                    will_reconnect: true,
                    ..
                }
            ),
            "{down:?}"
        );
        let (reconnecting, _) =
            until(&mut events, |e| matches!(e, Event::Reconnecting { .. })).await;
        assert!(matches!(reconnecting, Event::Reconnecting { attempt: a, .. } if a == attempt + 1));
        until(
            &mut events,
            |e| matches!(e, Event::Up { attempt: a } if *a == attempt + 1),
        )
        .await;
    }
    assert!(server.requests().len() >= 2, "a second upgrade was sent");
    drop(conn);
}

/// The event queue of the slow-reader test.
const QUEUE: usize = 16;

#[tokio::test]
async fn a_slow_reader_gets_back_pressure_not_unbounded_buffering() {
    let _serial = serial().await;
    const FRAMES: u64 = 200_000;
    let server = TestServer::start().await.unwrap();
    let (conn, mut events) =
        Connection::open(&server.url(""), options().event_queue_len(QUEUE)).unwrap();
    conn.ws_upgrade(&format!("/?send={FRAMES}&size=1024"))
        .unwrap();
    until(&mut events, common::is_upgraded).await;
    // Stop reading for a while (this is the scenario, not a synchronisation).
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The driver reads from the socket only while the event queue has room
    // (driver.rs: `room = events.room().min(READ_BUDGET)`), so with nobody
    // reading, at most one queue (QUEUE events) plus one batch the reader
    // already took (at most QUEUE more) were read: the rest of the 200 MB
    // waits in the socket buffers and the server cannot finish sending.
    let unread = conn.stats().frames_received;
    assert!(
        unread <= 2 * QUEUE as u64,
        "{unread} frames read while nobody read events"
    );
    // Still nobody reading: still nothing more is read (a bound, not a
    // slowdown).
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        conn.stats().frames_received,
        unread,
        "frames read while nobody read events"
    );
    // The server is still sending, blocked mid-burst: its connection is
    // open, and the socket buffers of both ends (at most the tcp_wmem and
    // tcp_rmem maxima) hold far less than the burst, so most of it can only
    // be written after reading resumes.
    assert_eq!(
        server.live_connections(),
        1,
        "the server's connection is open"
    );
    let buffered_max = tcp_buffer_max("tcp_wmem") + tcp_buffer_max("tcp_rmem");
    let in_buffers = buffered_max / 1024 + 1;
    assert!(
        unread + 2 * in_buffers < FRAMES,
        "the burst must not fit in the socket buffers ({buffered_max} bytes)"
    );
    // Reading resumes: every frame arrives, in order, most of them written
    // by the server after the pause.
    for i in 0..FRAMES {
        let Event::Frame {
            frame: Frame::Text(text),
            ..
        } = next(&mut events).await
        else {
            panic!("frame {i} expected")
        };
        assert!(text.starts_with(&format!("{i} ")), "frame {i}");
    }
    assert_eq!(conn.stats().frames_received, FRAMES);
    println!("slow reader: {unread} frames read while the reader slept");
}

async fn down_reason(events: &mut Events) -> DownReason {
    match until(events, common::is_down).await.0 {
        Event::Down { reason, .. } => reason,
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn a_graceful_close_is_closed_by_peer_and_a_reset_is_an_io_error() {
    let _serial = serial().await;
    let server = TestServer::start().await.unwrap();
    let (conn, mut events) =
        Connection::open(&server.url(""), options().auto_upgrade(true)).unwrap();
    conn.ws_upgrade("/").unwrap();
    until(&mut events, common::is_upgraded).await;
    // Graceful: a close frame 1001, the handshake completed.
    server.close_connections(1001, "going away").await;
    match down_reason(&mut events).await {
        DownReason::ClosedByPeer(close) => {
            assert_eq!(close.code.as_u16(), 1001);
            assert_eq!(close.reason, "going away");
        }
        other => panic!("{other:?}"),
    }
    until(&mut events, common::is_upgraded).await;
    // Abrupt: the TCP is dropped without a close frame.
    server.drop_connections();
    match down_reason(&mut events).await {
        DownReason::Error(error) => assert_eq!(error.kind(), ErrorKind::Io, "{error}"),
        other => panic!("{other:?}"),
    }
    until(&mut events, common::is_upgraded).await;
    drop(conn);
}
