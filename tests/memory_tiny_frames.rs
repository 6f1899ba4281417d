//! Memory counted in real bytes (issue 21, findings 6 and 8): 1-byte
//! frames, received unread or sent in a loop, at full speed. A 1-byte frame
//! is not 1 byte: the queues charge each entry a fixed overhead besides its
//! payload, and a small received frame never pins a large read buffer. So
//! with default options each test grows the resident memory by at most
//! 32 MiB (33_554_432 bytes).
//!
//! The server is the `wstether-testkit` binary in a child process, so this
//! process's resident memory is the client's; the tests run one at a time.
#![cfg(native)]

mod hostile_support;

use std::time::{Duration, Instant};

use hostile_support::{rss_kib, serial, ChildServer, Watchdog, MIB_IN_KIB, PATIENCE};
use wstether::{Connection, ErrorKind, Event, Frame, Options, Retry};

/// The bound of both tests: 32 MiB (33_554_432 bytes) of growth.
const MAX_GROWTH_KIB: u64 = 32 * MIB_IN_KIB;
/// Past this growth a test stops at once: 512 MiB (536_870_912 bytes).
const ABORT_GROWTH_KIB: u64 = 512 * MIB_IN_KIB;
/// 1-byte frames the server sends, one write each (finding 6: 50,000).
const FLOOD: u64 = 50_000;

fn options() -> Options {
    Options::default().retry(Retry::never()).no_keepalive()
}

/// Waits until the client has read `n` frames into its event queue
/// (nothing to await: the application reads no event meanwhile, so the
/// driver's counters are polled), or until they stop growing for 1 s
/// (a queue bound stopped the reading).
async fn until_read(conn: &Connection, n: u64) -> u64 {
    let started = Instant::now();
    let (mut last, mut since) = (0, Instant::now());
    loop {
        let read = conn.stats().frames_received;
        if read >= n || since.elapsed() > Duration::from_secs(1) {
            return read;
        }
        if read != last {
            (last, since) = (read, Instant::now());
        }
        assert!(
            started.elapsed() < 3 * PATIENCE,
            "only {read} of {n} frames read"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads `Up` then `Upgraded`.
async fn until_upgraded(events: &mut wstether::Events) {
    loop {
        let event = tokio::time::timeout(PATIENCE, events.recv()).await;
        if let Ok(Some(Event::Upgraded { .. })) = event {
            return;
        }
        assert!(matches!(event, Ok(Some(Event::Up { .. }))), "{event:?}");
    }
}

async fn unread_flood(options: Options, what: &str) {
    let _serial = serial().await;
    let server = ChildServer::start().await;
    let watchdog = Watchdog::start(ABORT_GROWTH_KIB);
    let (conn, mut events) = Connection::open(&server.url("/"), options).unwrap();
    conn.ws_upgrade(&format!("/?tiny_frames={FLOOD}")).unwrap();
    until_upgraded(&mut events).await;
    let read = watchdog.guard(what, until_read(&conn, FLOOD)).await;
    let growth = watchdog.peak_growth_kib();
    eprintln!(
        "{what}: {read} 1-byte frames read unread, RSS grew {growth} KiB ({} B a frame)",
        growth * 1024 / read.max(1)
    );
    assert!(
        growth <= MAX_GROWTH_KIB,
        "{what}: RSS grew {growth} KiB (> {MAX_GROWTH_KIB} KiB) for {read} frames"
    );
    conn.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_an_unread_flood_of_1_byte_frames_is_bounded_with_default_options() {
    unread_flood(options(), "default options").await;
}

/// Finding 6's setup: a queue long enough for every frame, so only the
/// byte bound (16 MiB by default) counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_an_unread_flood_of_1_byte_frames_is_bounded_by_bytes_with_the_longest_queue() {
    unread_flood(options().event_queue_len(1 << 20), "event_queue_len 2^20").await;
}

/// Finding 8: 1-byte `ws_send` in a loop at a server that never reads,
/// until the queue refuses; the default 8 MiB bound holds the memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_a_1_byte_send_loop_is_bounded_with_default_options() {
    let _serial = serial().await;
    let server = ChildServer::start().await;
    let watchdog = Watchdog::start(ABORT_GROWTH_KIB);
    let (conn, mut events) = Connection::open(&server.url("/"), options()).unwrap();
    let stream = conn.ws_upgrade("/?never_read=1").unwrap();
    until_upgraded(&mut events).await;
    let sender = {
        let conn = conn.clone();
        tokio::task::spawn_blocking(move || {
            let (mut accepted, mut full_in_a_row) = (0u64, 0u32);
            let started = Instant::now();
            // Full 100,000 times in a row: the queue holds what it may.
            while full_in_a_row < 100_000 && started.elapsed() < 3 * PATIENCE {
                match conn.ws_send(stream, Frame::binary(&b"x"[..])) {
                    Ok(()) => (accepted, full_in_a_row) = (accepted + 1, 0),
                    Err(error) => {
                        assert_eq!(error.kind(), ErrorKind::QueueFull, "{error}");
                        full_in_a_row += 1;
                        std::thread::yield_now();
                    }
                }
            }
            accepted
        })
    };
    let accepted = watchdog.guard("send loop", sender).await.unwrap();
    let growth = watchdog.peak_growth_kib();
    eprintln!(
        "send loop: {accepted} 1-byte frames accepted, RSS grew {growth} KiB ({} B a frame)",
        growth * 1024 / accepted.max(1)
    );
    assert!(
        growth <= MAX_GROWTH_KIB,
        "RSS grew {growth} KiB (> {MAX_GROWTH_KIB} KiB) for {accepted} frames"
    );
    conn.shutdown();
}

/// Finding 6's mechanism: 1-byte frames arriving one per read, 1 ms apart.
/// Each used to be copied into a fresh 16 KiB payload arena (dropped
/// whenever the socket had nothing to read), which the frame kept alive:
/// about 4 KiB of RSS a frame. A small frame may cost at most 1 KiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_small_frames_arriving_one_by_one_never_pin_a_16_kib_payload_arena() {
    const PACED: u64 = 5_000;
    let _serial = serial().await;
    let server = ChildServer::start().await;
    let watchdog = Watchdog::start(ABORT_GROWTH_KIB);
    let options = options().event_queue_len(1 << 20);
    let (conn, mut events) = Connection::open(&server.url("/"), options).unwrap();
    conn.ws_upgrade(&format!("/?tiny_frames={PACED}&tiny_pace_ms=1"))
        .unwrap();
    until_upgraded(&mut events).await;
    let read = watchdog.guard("paced", until_read(&conn, PACED)).await;
    assert_eq!(read, PACED);
    let growth = watchdog.peak_growth_kib();
    eprintln!(
        "paced: {read} 1-byte frames read one by one, RSS grew {growth} KiB ({} B a frame)",
        growth * 1024 / read
    );
    assert!(
        growth <= PACED,
        "RSS grew {growth} KiB for {read} frames: more than 1 KiB a frame"
    );
    conn.shutdown();
}

/// The documented charge: a queued 1-byte frame counts as 129 bytes, so a
/// send queue of 258 bytes holds two of them (queued while the connection
/// waits to dial again, so nothing drains them).
#[tokio::test]
async fn memory_a_queued_1_byte_frame_is_charged_129_bytes() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let options = Options::default()
        .no_keepalive()
        .retry(
            Retry::default()
                .initial_delay(Duration::from_secs(3600))
                .max_delay(Duration::from_secs(3600)),
        )
        .send_queue_bytes(2 * 129);
    let (conn, _events) = Connection::open(&format!("ws://127.0.0.1:{port}/"), options).unwrap();
    let stream = conn.ws_upgrade("/").unwrap();
    conn.ws_send(stream, Frame::binary(&b"1"[..])).unwrap();
    conn.ws_send(stream, Frame::binary(&b"2"[..])).unwrap();
    let error = conn.ws_send(stream, Frame::binary(&b"3"[..])).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::QueueFull, "{error}");
    conn.shutdown();
}

/// Small payloads sent in a burst are copied into shared chunks of up to
/// 16 KiB (`PayloadArena`, issue 23). A hostile pattern for that: the
/// server never reads, a large message fills the TCP buffers, then small
/// frames trickle in one per driver turn and stay queued. They must share
/// chunks, never keep one each: at most 1 KiB a frame, counted once the
/// large message is in the transport's hands (its encoded copy is in this
/// process's RSS: waited for, not guessed, since making it takes from
/// 2 ms in a release build to 75 ms in a debug one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_small_frames_trickling_to_a_stuck_peer_never_pin_a_chunk_each() {
    const LARGE: usize = 4 << 20;
    const FIRST: u64 = 20;
    const TRICKLE: u64 = 2_000;
    let _serial = serial().await;
    let server = ChildServer::start().await;
    let options = options().send_queue_bytes(16 << 20);
    let (conn, mut events) = Connection::open(&server.url("/"), options).unwrap();
    let stream = conn.ws_upgrade("/?never_read=1").unwrap();
    until_upgraded(&mut events).await;
    let large = Frame::binary(vec![7u8; LARGE]);
    let before_kib = rss_kib();
    conn.ws_send(stream, large).unwrap();
    let send = |i: u64| {
        conn.ws_send(stream, Frame::text(format!("{i:032}")))
            .unwrap()
    };
    // One frame per driver turn, as a slow producer sends them.
    let turn = || tokio::time::sleep(Duration::from_millis(1));
    let mut sent = 0;
    let started = Instant::now();
    while sent < FIRST || rss_kib() < before_kib + (LARGE as u64 / 1024) * 7 / 8 {
        assert!(
            started.elapsed() < PATIENCE,
            "the large message was never copied for the transport"
        );
        send(sent);
        sent += 1;
        turn().await;
    }
    let watchdog = Watchdog::start(ABORT_GROWTH_KIB);
    for _ in 0..TRICKLE {
        send(sent);
        sent += 1;
        turn().await;
    }
    let growth = watchdog.peak_growth_kib();
    let written = conn.stats().messages_written;
    eprintln!("trickle: {TRICKLE} 32-byte frames queued behind {LARGE} bytes ({written} messages written), RSS grew {growth} KiB");
    assert!(
        written < 1 + sent,
        "{written} messages written: the trickle must still be queued (the server reads nothing)"
    );
    assert!(
        growth <= TRICKLE,
        "RSS grew {growth} KiB (> {TRICKLE} KiB) for {TRICKLE} queued frames"
    );
    conn.shutdown();
}
