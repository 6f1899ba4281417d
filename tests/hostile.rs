//! Hostile servers against the promises "a slow or malicious peer cannot
//! grow the client's memory without bound", "a peer that stops answering is
//! declared dead" and "bad input gets a typed error, never a panic or an
//! abort" (issue 11, items 5, 7 and the hostile modes of item 4).
//!
//! The server is the `wstether-testkit` binary in a child process (see
//! `hostile_support`), so the resident memory of this process is the
//! client's; the tests run one at a time ([`serial`]). Every bound is
//! stated in bytes beside its assertion. Sleeps are only attack durations;
//! synchronisation is by events.
//!
//! The huge-claimed-length tests run the client in a child process (this
//! test binary re-executed on one test), because today the claim aborts
//! the whole process.
#![cfg(native)]

mod hostile_support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hostile_support::{serial, ChildServer, Watchdog, MIB_IN_KIB, PATIENCE};
use wstether::{
    Connection, DownReason, ErrorKind, Event, Events, Frame, Keepalive, Options, Retry,
};
use wstether_testkit::TestServer;

/// The keepalive of these tests: a ping every 200 ms, a pong due within 300 ms.
fn fast_keepalive() -> Keepalive {
    Keepalive::every(Duration::from_millis(200)).timeout(Duration::from_millis(300))
}

fn hostile_options() -> Options {
    Options::default()
        .retry(Retry::never())
        .keepalive(fast_keepalive())
}

/// The next event within [`PATIENCE`], under the memory watchdog.
async fn next_event(watchdog: &Watchdog, events: &mut Events, what: &str) -> Event {
    match watchdog
        .guard(what, tokio::time::timeout(PATIENCE, events.recv()))
        .await
    {
        Ok(Some(event)) => event,
        Ok(None) => panic!("{what}: the event stream ended while an event was expected"),
        Err(_) => panic!("{what}: no event within {PATIENCE:?}"),
    }
}

/// Reads events until `Upgraded`; fails on anything else but `Up`.
async fn until_upgraded(watchdog: &Watchdog, events: &mut Events, what: &str) {
    loop {
        match next_event(watchdog, events, what).await {
            Event::Up { .. } => {}
            Event::Upgraded { .. } => return,
            other => panic!("{what}: expected the upgrade, got {other:?}"),
        }
    }
}

/// Reads events until `Down` (at most `max_events` events), returning the
/// `Down` and the events before it.
async fn until_down(
    watchdog: &Watchdog,
    events: &mut Events,
    max_events: usize,
    what: &str,
) -> (Event, Vec<Event>) {
    let mut before = Vec::new();
    loop {
        let event = next_event(watchdog, events, what).await;
        if matches!(event, Event::Down { .. }) {
            return (event, before);
        }
        before.push(event);
        assert!(
            before.len() <= max_events,
            "{what}: no Down within {max_events} events: {before:?}"
        );
    }
}

fn is_peer_dead(event: &Event) -> bool {
    matches!(
        event,
        Event::Down {
            reason: DownReason::PeerDead,
            ..
        }
    )
}

// ----- (a) ping flood from a peer that never reads -----

/// Growth allowed under the ping flood: 64 MiB (67_108_864 bytes).
const PING_FLOOD_MAX_GROWTH_KIB: u64 = 64 * MIB_IN_KIB;
/// Past this growth the flood test stops at once: 256 MiB (268_435_456 bytes).
const ABORT_GROWTH_KIB: u64 = 256 * MIB_IN_KIB;
/// How long the flood may run before the peer must have been declared dead.
const FLOOD_DURATION: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_flood_from_a_peer_that_never_reads_keeps_memory_bounded_and_is_declared_dead() {
    let _serial = serial().await;
    let server = ChildServer::start().await;
    let watchdog = Watchdog::start(ABORT_GROWTH_KIB);
    let what = "ping flood";
    let (conn, mut events) = Connection::open(&server.url("/"), hostile_options()).unwrap();
    // Pings of 125 bytes (the most a control frame carries): each costs
    // the client a 131-byte pong to write.
    conn.ws_upgrade("/?ping_flood=1&size=125").unwrap();
    until_upgraded(&watchdog, &mut events, what).await;

    // The attack: the flood runs until the client gives up on the peer,
    // for FLOOD_DURATION at most.
    let started = Instant::now();
    let down = watchdog
        .guard(what, async {
            tokio::time::timeout(FLOOD_DURATION, async {
                loop {
                    match events.recv().await {
                        Some(event @ Event::Down { .. }) => return Some(event),
                        Some(_) => {}
                        None => return None,
                    }
                }
            })
            .await
        })
        .await;
    let growth_kib = watchdog.peak_growth_kib();
    println!(
        "{what}: RSS growth {} MiB ({growth_kib} KiB) in {:?}; down: {down:?}",
        growth_kib / MIB_IN_KIB,
        started.elapsed()
    );
    assert!(
        growth_kib < PING_FLOOD_MAX_GROWTH_KIB,
        "{what}: RSS grew by {growth_kib} KiB, the bound is 64 MiB (67108864 bytes)"
    );
    match down {
        Ok(Some(down)) => assert!(is_peer_dead(&down), "{what}: {down:?}"),
        Ok(None) => panic!("{what}: the event stream ended without a Down"),
        Err(_) => panic!(
            "{what}: a peer that floods pings and never reads was not declared dead \
             (Down {{ reason: PeerDead }}) within {FLOOD_DURATION:?}"
        ),
    }
}

// ----- (c) a frame header claiming a huge length -----

/// The environment variable that tells a re-executed test binary to run the
/// risky part of one test.
const CHILD_ENV: &str = "WSTETHER_HOSTILE_CHILD";
/// The line a child prints with its findings, for the parent to check.
const CHILD_REPORT: &str = "HOSTILE-CHILD-REPORT:";

/// Runs test `name` of this binary in a child process with [`CHILD_ENV`]
/// set, and returns its exit status and output.
fn run_in_child(name: &str) -> (std::process::ExitStatus, String) {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut child = std::process::Command::new(exe)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, name)
        .env("RUST_BACKTRACE", "0")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("re-execute the test binary");
    // A child that hangs is killed after 2 × PATIENCE.
    let deadline = Instant::now() + 2 * PATIENCE;
    loop {
        if child.try_wait().expect("wait for the child").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("the child's output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status, text)
}

/// The client side of a claimed-length test, run in the child: opens with
/// `options` against an in-process server that claims `claim` bytes,
/// expects a `Down` with a `MessageTooBig` error and the server to get the
/// close code 1009. Prints the findings on a [`CHILD_REPORT`] line.
async fn claimed_length_child(options: Options, claim: u64) {
    let server = TestServer::start().await.unwrap();
    let (conn, mut events) = Connection::open(&server.url("/"), options).unwrap();
    conn.ws_upgrade(&format!("/?claim_len={claim}")).unwrap();
    let watchdog = Watchdog::start(ABORT_GROWTH_KIB);
    let what = "claimed length";
    until_upgraded(&watchdog, &mut events, what).await;
    let (down, before) = until_down(&watchdog, &mut events, 8, what).await;
    let kind = match &down {
        Event::Down {
            reason: DownReason::Error(error),
            ..
        } => Some(error.kind()),
        _ => None,
    };
    let codes = tokio::time::timeout(PATIENCE, server.wait_for_client_close_codes(1))
        .await
        .map(|()| server.client_close_codes())
        .unwrap_or_default();
    println!(
        "{CHILD_REPORT} kind={kind:?} close_codes={codes:?} growth_kib={} down={down:?} \
         before={before:?}",
        watchdog.peak_growth_kib()
    );
    assert_eq!(
        kind,
        Some(ErrorKind::MessageTooBig),
        "a claim of {claim} bytes ends the connection with MessageTooBig: {down:?}"
    );
    assert_eq!(
        codes,
        [1009],
        "the client closes with 1009 (message too big)"
    );
}

/// The parent side: runs `name` in a child and checks its report.
fn expect_child_refuses_the_claim(name: &str) {
    let (status, output) = run_in_child(name);
    // With --nocapture the report may follow "test NAME ... " on its line.
    let report = output
        .lines()
        .find_map(|line| line.find(CHILD_REPORT).map(|at| &line[at..]))
        .unwrap_or("");
    assert!(
        status.success(),
        "the child process failed ({status}; a signal means it aborted, e.g. on \
         an allocation of the claimed length); report: {report:?}; output:\n{output}"
    );
    assert!(
        report.contains("kind=Some(MessageTooBig)") && report.contains("close_codes=[1009]"),
        "expected a Down with MessageTooBig and close code 1009: {report:?}\n{output}"
    );
    // The child ran the test for real, not zero tests.
    assert!(output.contains("1 passed"), "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_of_2_pow_36_bytes_without_limits_is_refused_not_allocated() {
    const NAME: &str = "a_claim_of_2_pow_36_bytes_without_limits_is_refused_not_allocated";
    if std::env::var(CHILD_ENV).as_deref() == Ok(NAME) {
        let options = Options::default()
            .retry(Retry::never())
            .no_keepalive()
            .max_frame_size(wstether::MAX_MESSAGE_SIZE_CEILING)
            .max_message_size(wstether::MAX_MESSAGE_SIZE_CEILING);
        return claimed_length_child(options, 1 << 36).await;
    }
    let _serial = serial().await;
    tokio::task::spawn_blocking(|| expect_child_refuses_the_claim(NAME))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_of_2_pow_36_bytes_with_default_limits_is_refused() {
    const NAME: &str = "a_claim_of_2_pow_36_bytes_with_default_limits_is_refused";
    if std::env::var(CHILD_ENV).as_deref() == Ok(NAME) {
        let options = Options::default().retry(Retry::never()).no_keepalive();
        return claimed_length_child(options, 1 << 36).await;
    }
    let _serial = serial().await;
    tokio::task::spawn_blocking(|| expect_child_refuses_the_claim(NAME))
        .await
        .unwrap();
}

// ----- (d) a peer that trickles one byte at a time -----

/// Growth allowed under the trickle: 8 MiB (8_388_608 bytes).
const TRICKLE_MAX_GROWTH_KIB: u64 = 8 * MIB_IN_KIB;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_trickling_one_byte_every_50_ms_is_declared_dead() {
    let _serial = serial().await;
    let server = ChildServer::start().await;
    let watchdog = Watchdog::start(ABORT_GROWTH_KIB);
    let what = "trickle";
    let (conn, mut events) = Connection::open(&server.url("/"), hostile_options()).unwrap();
    conn.ws_upgrade("/?trickle_ms=50&size=65536").unwrap();
    until_upgraded(&watchdog, &mut events, what).await;
    let started = Instant::now();
    // Pings go unanswered: the keepalive's deadline (300 ms after a ping
    // sent every 200 ms) passes, whatever bytes trickle in.
    let (down, before) = until_down(&watchdog, &mut events, 4, what).await;
    let growth_kib = watchdog.peak_growth_kib();
    println!(
        "{what}: down after {:?}: {down:?}; RSS growth {growth_kib} KiB",
        started.elapsed()
    );
    assert!(
        is_peer_dead(&down),
        "{what}: a peer that never answers a ping is declared dead, bytes trickling \
         in or not: {down:?} after {before:?}"
    );
    assert!(
        growth_kib < TRICKLE_MAX_GROWTH_KIB,
        "{what}: RSS grew by {growth_kib} KiB, the bound is 8 MiB (8388608 bytes)"
    );
}

// ----- (e) a peer that never reads: the client's writes fill the buffers -----

/// The frames sent to the peer that never reads: 64 KiB (65_536 bytes).
const NEVER_READ_FRAME_BYTES: usize = 64 << 10;
/// Growth allowed: the send queue (the default `send_queue_bytes`, 8 MiB)
/// plus 16 MiB of slack: 24 MiB (25_165_824 bytes).
const NEVER_READ_MAX_GROWTH_KIB: u64 = (8 + 16) * MIB_IN_KIB;

/// A binary frame of [`NEVER_READ_FRAME_BYTES`] whose first 8 bytes are `id`.
fn tagged_frame(id: u64) -> Frame {
    // Not zeros: untouched zeroed pages would not count in the RSS.
    let mut payload = vec![0xA5u8; NEVER_READ_FRAME_BYTES];
    payload[..8].copy_from_slice(&id.to_be_bytes());
    Frame::binary(payload)
}

fn tag_of(frame: &Frame) -> u64 {
    match frame {
        Frame::Binary(bytes) if bytes.len() >= 8 => {
            u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"))
        }
        other => panic!("untagged frame {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_is_declared_dead_and_every_accepted_frame_is_accounted_for() {
    let _serial = serial().await;
    let server = ChildServer::start().await;
    let watchdog = Watchdog::start(ABORT_GROWTH_KIB);
    let what = "never read";
    let (conn, mut events) = Connection::open(&server.url("/"), hostile_options()).unwrap();
    let stream = conn.ws_upgrade("/?never_read=1").unwrap();
    until_upgraded(&watchdog, &mut events, what).await;

    // The sender pushes tagged frames until the library refuses one.
    let sent_ok = Arc::new(AtomicU64::new(0));
    let sending = {
        let (conn, sent_ok) = (conn.clone(), sent_ok.clone());
        tokio::spawn(async move {
            let mut id = 0u64;
            loop {
                match conn.send(stream, tagged_frame(id)).await {
                    Ok(()) => {
                        id += 1;
                        sent_ok.store(id, Ordering::SeqCst);
                    }
                    Err(error) => return error,
                }
            }
        })
    };
    let (down, before) = until_down(&watchdog, &mut events, 8, what).await;
    let refusal = watchdog
        .guard(what, tokio::time::timeout(PATIENCE, sending))
        .await
        .expect("the sender is refused once the connection is down")
        .unwrap();
    let growth_kib = watchdog.peak_growth_kib();
    let sent_ok = sent_ok.load(Ordering::SeqCst);
    let written = conn.stats().frames_written;
    let Event::Down { reason, unsent, .. } = &down else {
        unreachable!()
    };
    let unsent_ids: Vec<u64> = unsent.iter().map(tag_of).collect();
    println!(
        "{what}: RSS growth {growth_kib} KiB; sent ok {sent_ok}, written {written}, \
         unsent {}; refusal {:?}; down {reason:?}",
        unsent.len(),
        refusal.kind()
    );
    assert!(
        matches!(refusal.kind(), ErrorKind::Closed | ErrorKind::StaleStream),
        "{what}: {refusal}"
    );
    assert_eq!(refusal.unsent().len(), 1, "the refused frame comes back");
    assert!(
        growth_kib < NEVER_READ_MAX_GROWTH_KIB,
        "{what}: RSS grew by {growth_kib} KiB, the bound is send_queue_bytes (8 MiB) \
         + 16 MiB = 24 MiB (25165824 bytes)"
    );
    assert!(
        is_peer_dead(&down),
        "{what}: a peer that never reads is declared dead: {down:?} after {before:?}"
    );
    assert_eq!(
        sent_ok,
        written + unsent.len() as u64,
        "{what}: every frame accepted with Ok is written or given back in Down.unsent \
         (accepted {sent_ok}, written {written}, unsent {})",
        unsent.len()
    );
    assert_eq!(
        unsent_ids,
        (written..sent_ok).collect::<Vec<_>>(),
        "{what}: the unsent frames are those after the written ones, in order"
    );
}

// ----- bursts of large single frames (the testkit streams them) -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_20_mib_single_frame_message_arrives_with_defaults_and_is_refused_below_a_lower_limit() {
    let _serial = serial().await;
    let server = ChildServer::start().await;
    let watchdog = Watchdog::start(ABORT_GROWTH_KIB);
    let what = "20 MiB frame";
    let path = "/?send=1&size=20971520&kind=binary";

    // The frame limit follows the message limit (64 MiB) by default.
    let options = Options::default().retry(Retry::never()).no_keepalive();
    let lower = options.clone().max_frame_size(16 << 20);
    let (conn, mut events) = Connection::open(&server.url("/"), lower).unwrap();
    conn.ws_upgrade(path).unwrap();
    until_upgraded(&watchdog, &mut events, what).await;
    let (down, before) = until_down(&watchdog, &mut events, 4, what).await;
    assert!(
        matches!(&down, Event::Down { reason: DownReason::Error(e), .. }
            if e.kind() == ErrorKind::MessageTooBig),
        "{what}: over a 16 MiB frame limit: {down:?} after {before:?}"
    );

    let (conn, mut events) = Connection::open(&server.url("/"), options).unwrap();
    conn.ws_upgrade(path).unwrap();
    until_upgraded(&watchdog, &mut events, what).await;
    match next_event(&watchdog, &mut events, what).await {
        Event::Frame {
            frame: Frame::Binary(bytes),
            ..
        } => {
            assert_eq!(bytes.len(), 20 << 20);
            assert!(bytes.starts_with(b"0 xxx"));
        }
        other => panic!("{what}: expected the frame, got {other:?}"),
    }
    assert_eq!(
        server.requests().await,
        2,
        "both upgrades reached the server"
    );
    conn.shutdown();
}
