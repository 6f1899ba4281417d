//! The promise "a slow application slows the server down instead of
//! growing memory", in bytes (issue 11, item 6): a server bursts 100
//! binary messages of 8 MiB at an application that does not read its
//! events for 2 s. The event queue is bounded by count (1024) *and* by
//! payload bytes (`Options::event_queue_bytes`, 16 MiB), so the client may
//! hold about 16 MiB of unread events plus a message or two in flight.
//!
//! The server is the `wstether-testkit` binary in a child process, so this
//! process's resident memory is the client's.
#![cfg(native)]

mod hostile_support;

use std::time::{Duration, Instant};

use hostile_support::{serial, ChildServer, Watchdog, MIB_IN_KIB, PATIENCE};
use wstether::{Connection, Event, Frame, Options, Retry};

const MESSAGES: u64 = 100;
/// Each message: 8 MiB (8_388_608 bytes), one frame.
const MESSAGE_BYTES: usize = 8 << 20;
/// The event queue's byte bound: 16 MiB (16_777_216 bytes).
const EVENT_QUEUE_BYTES: usize = 16 << 20;
/// Allowed growth while the application does not read: the queue's bound
/// (16 MiB) + 2 messages in flight (2 × 8 MiB) + 24 MiB of slack = 56 MiB
/// (58_720_256 bytes).
const MAX_GROWTH_KIB: u64 = (16 + 2 * 8 + 24) * MIB_IN_KIB;
/// Past this growth the test stops at once: 400 MiB (419_430_400 bytes).
const ABORT_GROWTH_KIB: u64 = 400 * MIB_IN_KIB;
/// How long the application does not read.
const NOT_READING: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unread_burst_of_100_messages_of_8_mib_is_bounded_by_bytes_then_all_arrive_in_order() {
    let _serial = serial().await;
    let server = ChildServer::start().await;
    let watchdog = Watchdog::start(ABORT_GROWTH_KIB);
    let what = "unread burst";
    let options = Options::default()
        .retry(Retry::never())
        .no_keepalive()
        .max_message_size(16 << 20)
        .event_queue_len(1024)
        .event_queue_bytes(EVENT_QUEUE_BYTES);
    let (conn, mut events) = Connection::open(&server.url("/"), options).unwrap();
    conn.ws_upgrade(&format!(
        "/?send={MESSAGES}&size={MESSAGE_BYTES}&kind=binary"
    ))
    .unwrap();
    loop {
        let event = watchdog
            .guard(what, tokio::time::timeout(PATIENCE, events.recv()))
            .await
            .expect("the upgrade within PATIENCE")
            .expect("an event");
        match event {
            Event::Up { .. } => {}
            Event::Upgraded { .. } => break,
            other => panic!("{what}: expected the upgrade, got {other:?}"),
        }
    }

    // The application does not read: the burst arrives meanwhile.
    watchdog.sleep(what, NOT_READING).await;
    let growth_kib = watchdog.peak_growth_kib();
    println!(
        "{what}: frames received while unread: {}",
        conn.stats().frames_received
    );
    println!(
        "{what}: RSS growth {} MiB ({growth_kib} KiB) after {NOT_READING:?} unread",
        growth_kib / MIB_IN_KIB
    );
    assert!(
        growth_kib < MAX_GROWTH_KIB,
        "{what}: RSS grew by {growth_kib} KiB while the application did not read; \
         the bound is event_queue_bytes (16 MiB) + 2 × 8 MiB + 24 MiB = 56 MiB \
         (58720256 bytes)"
    );

    // Then every message arrives, in order, whole.
    let started = Instant::now();
    for i in 0..MESSAGES {
        let event = watchdog
            .guard(what, tokio::time::timeout(PATIENCE, events.recv()))
            .await
            .unwrap_or_else(|_| panic!("{what}: message {i} within PATIENCE"))
            .unwrap_or_else(|| panic!("{what}: the stream ended before message {i}"));
        match event {
            Event::Frame {
                frame: Frame::Binary(bytes),
                ..
            } => {
                assert_eq!(bytes.len(), MESSAGE_BYTES, "{what}: message {i}");
                let prefix = format!("{i} ");
                assert!(
                    bytes.starts_with(prefix.as_bytes()),
                    "{what}: message {i} out of order: starts with {:?}",
                    String::from_utf8_lossy(&bytes[..16])
                );
            }
            other => panic!("{what}: expected message {i}, got {other:?}"),
        }
    }
    println!(
        "{what}: read {MESSAGES} messages in {:?}; peak growth {} MiB",
        started.elapsed(),
        watchdog.peak_growth_kib() / MIB_IN_KIB
    );
    conn.shutdown();
}

/// A burst of 20 messages of 8 MiB (160 MiB) at an application that
/// reads, but with Gun's `flow`: a credit of 1 message
/// (`Upgrade::flow(1)`). Once it is spent the socket is not read at all,
/// so the server's bytes wait on its side: the
/// client holds at most the message read (8 MiB) and one in flight
/// (8 MiB) + 24 MiB of slack = 40 MiB (41_943_040 bytes), whatever the
/// event queue's own bound (here 512 MiB: without the credit, the whole
/// burst would be read). Then every message arrives, in order, as credit
/// comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_flow_credit_stops_reading_a_flood_bounded_by_bytes() {
    const MAX_FLOW_GROWTH_KIB: u64 = (2 * 8 + 24) * MIB_IN_KIB;
    const FLOW_MESSAGES: u64 = 20;
    let _serial = serial().await;
    let server = ChildServer::start().await;
    let watchdog = Watchdog::start(ABORT_GROWTH_KIB);
    let what = "flow(1) flood";
    let options = Options::default()
        .retry(Retry::never())
        .no_keepalive()
        .max_message_size(16 << 20)
        .event_queue_bytes(512 << 20);
    let (conn, mut events) = Connection::open(&server.url("/"), options).unwrap();
    let upgrade = wstether::Upgrade::new(format!(
        "/?send={FLOW_MESSAGES}&size={MESSAGE_BYTES}&kind=binary"
    ))
    .flow(1);
    let stream = conn.ws_upgrade_with(upgrade).unwrap();
    let mut received = 0u64;
    let next_message = |event: Event, received: &mut u64| match event {
        Event::Frame {
            frame: Frame::Binary(bytes),
            ..
        } => {
            assert_eq!(bytes.len(), MESSAGE_BYTES, "{what}: message {received}");
            let prefix = format!("{received} ");
            assert!(
                bytes.starts_with(prefix.as_bytes()),
                "{what}: message {received} out of order"
            );
            *received += 1;
        }
        Event::Up { .. } | Event::Upgraded { .. } => {}
        other => panic!("{what}: expected message {received}, got {other:?}"),
    };
    while received < 1 {
        let event = watchdog
            .guard(what, tokio::time::timeout(PATIENCE, events.recv()))
            .await
            .expect("the first message within PATIENCE")
            .expect("an event");
        next_message(event, &mut received);
    }
    // The credit is spent: the server floods, the client reads nothing.
    watchdog.sleep(what, NOT_READING).await;
    let growth_kib = watchdog.peak_growth_kib();
    println!(
        "{what}: RSS growth {} MiB ({growth_kib} KiB) with the credit spent; frames received {}",
        growth_kib / MIB_IN_KIB,
        conn.stats().frames_received
    );
    assert!(
        growth_kib < MAX_FLOW_GROWTH_KIB,
        "{what}: RSS grew by {growth_kib} KiB with the flow credit spent; the bound is \
         2 × 8 MiB + 24 MiB = 40 MiB (41943040 bytes)"
    );
    conn.update_flow(stream, u32::MAX).unwrap();
    while received < FLOW_MESSAGES {
        let event = watchdog
            .guard(what, tokio::time::timeout(PATIENCE, events.recv()))
            .await
            .unwrap_or_else(|_| panic!("{what}: message {received} within PATIENCE"))
            .expect("an event");
        next_message(event, &mut received);
    }
    conn.shutdown();
}
