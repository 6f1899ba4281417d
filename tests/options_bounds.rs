//! Extreme option values: every option at zero, one, huge, `Duration::MAX`,
//! `u32::MAX`, `usize::MAX`, NaN and infinity. `Connection::open` either
//! refuses the value with `ErrorKind::InvalidOption` or accepts it, and an
//! accepted value runs: nothing panics, in the caller or in the driver.
#![cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]

use std::time::Duration;

use wstether::{
    Connection, ErrorKind, Event, Events, FirstConnection, Keepalive, Options, Retry,
    MAX_MESSAGE_SIZE_CEILING,
};

/// The documented upper bound of every duration option.
const MAX_DURATION: Duration = Duration::from_secs(24 * 24 * 60 * 60);
const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);

/// The documented bound of `send_queue_bytes` and `event_queue_bytes`.
const QUEUE_BYTES_BOUND: usize = 1 << 30;

/// A guard against hangs, not a synchronisation point.
const PATIENCE: Duration = Duration::from_secs(2);

/// A `ws://` URL on a loopback port where nothing listens: a listener is
/// bound to port 0 and dropped, so connecting is refused at once.
async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("ws://127.0.0.1:{port}/")
}

async fn next(events: &mut Events) -> Event {
    match tokio::time::timeout(PATIENCE, events.recv()).await {
        Ok(Some(event)) => event,
        Ok(None) => panic!("the event stream ended while an event was expected"),
        Err(_) => panic!("no event within {PATIENCE:?}"),
    }
}

/// Retries that come back quickly, so a table of connections stays fast.
fn quick() -> Retry {
    Retry::default().initial_delay(MS).max_delay(10 * MS)
}

fn with_retry(retry: Retry) -> Options {
    Options::default().retry(retry).no_keepalive()
}

fn with_keepalive(interval: Duration, timeout: Duration) -> Options {
    with_retry(quick()).keepalive(Keepalive::every(interval).timeout(timeout))
}

fn base() -> Options {
    with_retry(quick())
}

/// `(what, options, accepted)`: each option at its extremes.
fn table() -> Vec<(&'static str, Options, bool)> {
    let past = MAX_DURATION + SEC;
    let ceiling = MAX_MESSAGE_SIZE_CEILING;
    vec![
        // upgrade_timeout and closing_timeout.
        (
            "upgrade_timeout 0",
            base().upgrade_timeout(Duration::ZERO),
            false,
        ),
        (
            "upgrade_timeout 1ns",
            base().upgrade_timeout(Duration::from_nanos(1)),
            true,
        ),
        (
            "upgrade_timeout 24 days",
            base().upgrade_timeout(MAX_DURATION),
            true,
        ),
        ("upgrade_timeout past", base().upgrade_timeout(past), false),
        (
            "upgrade_timeout MAX",
            base().upgrade_timeout(Duration::MAX),
            false,
        ),
        (
            "closing_timeout 0",
            base().closing_timeout(Duration::ZERO),
            false,
        ),
        (
            "closing_timeout 24 days",
            base().closing_timeout(MAX_DURATION),
            true,
        ),
        (
            "closing_timeout MAX",
            base().closing_timeout(Duration::MAX),
            false,
        ),
        // Keepalive.
        ("keepalive 0/1s", with_keepalive(Duration::ZERO, SEC), false),
        ("keepalive 1s/0", with_keepalive(SEC, Duration::ZERO), false),
        (
            "keepalive 1ns/1ns",
            with_keepalive(Duration::from_nanos(1), Duration::from_nanos(1)),
            true,
        ),
        (
            "keepalive 24 days",
            with_keepalive(MAX_DURATION, MAX_DURATION),
            true,
        ),
        (
            "keepalive MAX/1s",
            with_keepalive(Duration::MAX, SEC),
            false,
        ),
        (
            "keepalive 1s/MAX",
            with_keepalive(SEC, Duration::MAX),
            false,
        ),
        // Retry delays.
        (
            "initial_delay 0",
            with_retry(quick().initial_delay(Duration::ZERO)),
            false,
        ),
        (
            "initial_delay 1ns",
            with_retry(quick().initial_delay(Duration::from_nanos(1))),
            false,
        ),
        (
            "initial_delay 1ms",
            with_retry(quick().initial_delay(MS)),
            true,
        ),
        (
            "max_delay 0",
            with_retry(quick().max_delay(Duration::ZERO)),
            false,
        ),
        (
            "max_delay 24 days",
            with_retry(quick().max_delay(MAX_DURATION)),
            true,
        ),
        ("max_delay past", with_retry(quick().max_delay(past)), false),
        (
            "max_delay MAX",
            with_retry(quick().max_delay(Duration::MAX)),
            false,
        ),
        (
            "initial_delay MAX",
            with_retry(
                quick()
                    .initial_delay(Duration::MAX)
                    .max_delay(Duration::MAX),
            ),
            false,
        ),
        (
            "reset_after 0",
            with_retry(quick().reset_after(Duration::ZERO)),
            true,
        ),
        (
            "reset_after 24 days",
            with_retry(quick().reset_after(MAX_DURATION)),
            true,
        ),
        (
            "reset_after MAX",
            with_retry(quick().reset_after(Duration::MAX)),
            false,
        ),
        (
            "connect_timeout 0",
            with_retry(quick().connect_timeout(Duration::ZERO)),
            false,
        ),
        (
            "connect_timeout 1ns",
            with_retry(quick().connect_timeout(Duration::from_nanos(1))),
            true,
        ),
        (
            "connect_timeout 24 days",
            with_retry(quick().connect_timeout(MAX_DURATION)),
            true,
        ),
        (
            "connect_timeout MAX",
            with_retry(quick().connect_timeout(Duration::MAX)),
            false,
        ),
        // Retry numbers.
        ("max_retries 0", with_retry(quick().max_retries(0)), true),
        ("max_retries 1", with_retry(quick().max_retries(1)), true),
        (
            "max_retries u32::MAX",
            with_retry(quick().max_retries(u32::MAX)),
            true,
        ),
        ("multiplier 1", with_retry(quick().multiplier(1.0)), true),
        (
            "multiplier 1e300",
            with_retry(quick().multiplier(1e300)),
            true,
        ),
        (
            "multiplier f64::MAX",
            with_retry(quick().multiplier(f64::MAX)),
            true,
        ),
        ("multiplier 0", with_retry(quick().multiplier(0.0)), false),
        (
            "multiplier NaN",
            with_retry(quick().multiplier(f64::NAN)),
            false,
        ),
        (
            "multiplier inf",
            with_retry(quick().multiplier(f64::INFINITY)),
            false,
        ),
        (
            "multiplier -inf",
            with_retry(quick().multiplier(f64::NEG_INFINITY)),
            false,
        ),
        ("jitter 0", with_retry(quick().jitter(0.0)), true),
        ("jitter 1", with_retry(quick().jitter(1.0)), true),
        ("jitter NaN", with_retry(quick().jitter(f64::NAN)), false),
        (
            "jitter inf",
            with_retry(quick().jitter(f64::INFINITY)),
            false,
        ),
        ("jitter -0.5", with_retry(quick().jitter(-0.5)), false),
        // Sizes.
        (
            "max_frame_size None",
            base().max_frame_size(wstether::MAX_MESSAGE_SIZE_CEILING),
            true,
        ),
        ("max_frame_size 0", base().max_frame_size(0), false),
        ("max_frame_size 1", base().max_frame_size(1), true),
        (
            "max_frame_size ceiling",
            base().max_frame_size(ceiling),
            true,
        ),
        (
            "max_frame_size ceiling+1",
            base().max_frame_size(ceiling + 1),
            false,
        ),
        (
            "max_frame_size usize::MAX",
            base().max_frame_size(usize::MAX),
            false,
        ),
        (
            "max_message_size None",
            base().max_message_size(wstether::MAX_MESSAGE_SIZE_CEILING),
            true,
        ),
        ("max_message_size 0", base().max_message_size(0), false),
        ("max_message_size 1", base().max_message_size(1), true),
        (
            "max_message_size ceiling",
            base().max_message_size(ceiling),
            true,
        ),
        (
            "max_message_size usize::MAX",
            base().max_message_size(usize::MAX),
            false,
        ),
        ("read_buffer_size 0", base().read_buffer_size(0), false),
        ("read_buffer_size 1", base().read_buffer_size(1), false),
        ("read_buffer_size 64", base().read_buffer_size(64), true),
        (
            "read_buffer_size 64 MiB",
            base().read_buffer_size(64 << 20),
            true,
        ),
        (
            "read_buffer_size 1<<40",
            base().read_buffer_size(1 << 40),
            false,
        ),
        (
            "read_buffer_size usize::MAX",
            base().read_buffer_size(usize::MAX),
            false,
        ),
        ("send_queue_bytes 0", base().send_queue_bytes(0), false),
        ("send_queue_bytes 1", base().send_queue_bytes(1), true),
        (
            "send_queue_bytes usize::MAX",
            base().send_queue_bytes(usize::MAX),
            false,
        ),
        (
            "send_queue_bytes 2^64 - 65536",
            base().send_queue_bytes(usize::MAX - 65_535),
            false,
        ),
        (
            "send_queue_bytes 1 GiB",
            base().send_queue_bytes(QUEUE_BYTES_BOUND),
            true,
        ),
        (
            "send_queue_bytes 1 GiB + 1",
            base().send_queue_bytes(QUEUE_BYTES_BOUND + 1),
            false,
        ),
        (
            "event_queue_bytes usize::MAX",
            base().event_queue_bytes(usize::MAX),
            false,
        ),
        (
            "event_queue_bytes 1 GiB",
            base().event_queue_bytes(QUEUE_BYTES_BOUND),
            true,
        ),
        ("event_queue_len 0", base().event_queue_len(0), false),
        ("event_queue_len 1", base().event_queue_len(1), true),
        (
            "event_queue_len 1<<20",
            base().event_queue_len(1 << 20),
            true,
        ),
        (
            "event_queue_len 1<<20 + 1",
            base().event_queue_len((1 << 20) + 1),
            false,
        ),
        (
            "event_queue_len usize::MAX",
            base().event_queue_len(usize::MAX),
            false,
        ),
    ]
}

#[tokio::test]
async fn every_option_value_is_refused_with_invalid_option_or_runs() {
    let url = closed_port_url().await;
    for (what, options, accepted) in table() {
        match Connection::open(&url, options) {
            Err(error) => {
                assert!(!accepted, "{what}: refused, should be accepted: {error}");
                assert_eq!(error.kind(), ErrorKind::InvalidOption, "{what}: {error}");
                assert!(!error.to_string().is_empty(), "{what}");
            }
            Ok((conn, mut events)) => {
                assert!(accepted, "{what}: accepted, should be refused");
                // The refused dial is reported: the driver ran with the
                // value and did not panic.
                match next(&mut events).await {
                    Event::Error { error, .. } => assert!(
                        matches!(error.kind(), ErrorKind::Connect | ErrorKind::Timeout),
                        "{what}: {error}"
                    ),
                    other => panic!("{what}: expected a dial error, got {other:?}"),
                }
                conn.shutdown();
            }
        }
    }
}

#[tokio::test]
async fn errors_name_the_option_and_its_bound() {
    let url = closed_port_url().await;
    let cases = [
        (
            base().upgrade_timeout(Duration::MAX),
            "upgrade_timeout",
            "24 days",
        ),
        (
            with_retry(quick().initial_delay(Duration::ZERO)),
            "retry.initial_delay",
            "1ms",
        ),
        (
            base().max_frame_size(usize::MAX),
            "max_frame_size",
            "1073741824",
        ),
        (
            base().read_buffer_size(usize::MAX),
            "read_buffer_size",
            "67108864",
        ),
        (
            with_retry(quick().multiplier(f64::NAN)),
            "retry.multiplier",
            "1.0",
        ),
    ];
    for (options, name, bound) in cases {
        let message = Connection::open(&url, options).unwrap_err().to_string();
        assert!(message.contains(name), "{message}");
        assert!(message.contains(bound), "{message}");
    }
}

/// A huge multiplier, the largest retry count and the longest delay: the
/// second retry waits exactly the cap (no overflow, no panic), and the
/// attempts keep counting.
#[tokio::test]
async fn a_huge_multiplier_saturates_at_max_delay() {
    let url = closed_port_url().await;
    let retry = Retry::default()
        .first_connection(FirstConnection::ReconnectPolicy)
        .max_retries(u32::MAX)
        .multiplier(1e300)
        .initial_delay(MS)
        .max_delay(MAX_DURATION)
        .jitter(0.0);
    let (conn, mut events) = Connection::open(&url, with_retry(retry)).unwrap();
    let mut delays = Vec::new();
    while delays.len() < 2 {
        match next(&mut events).await {
            Event::Error { error, .. } => assert_eq!(error.kind(), ErrorKind::Connect),
            Event::Reconnecting { attempt, delay } => {
                delays.push(delay);
                assert_eq!(attempt as usize, delays.len() + 1);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(delays, [MS, MAX_DURATION]);
    conn.shutdown();
}

/// The shortest delay, forever: retries come at a bounded rate (at least
/// 1 ms apart) and every one is reported, each with a larger attempt.
#[tokio::test]
async fn the_shortest_retry_delay_keeps_running_at_a_bounded_rate() {
    let url = closed_port_url().await;
    let retry = Retry::default()
        .first_connection(FirstConnection::ReconnectPolicy)
        .max_retries(u32::MAX)
        .multiplier(1.0)
        .initial_delay(MS)
        .max_delay(MS)
        .jitter(0.0);
    let (conn, mut events) = Connection::open(&url, with_retry(retry)).unwrap();
    let started = std::time::Instant::now();
    let mut last_attempt = 1;
    while last_attempt < 21 {
        match next(&mut events).await {
            Event::Error { error, .. } => assert_eq!(error.kind(), ErrorKind::Connect),
            Event::Reconnecting { attempt, delay } => {
                assert_eq!(attempt, last_attempt + 1);
                assert_eq!(delay, MS);
                last_attempt = attempt;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    // The 20th retry is announced after the 19 before it waited 1 ms each.
    assert!(started.elapsed() >= 19 * MS, "{:?}", started.elapsed());
    conn.shutdown();
}

/// Issue 21, finding 4: the largest accepted `send_queue_bytes` runs over a
/// real connection: every value derived from it (the transport's write
/// buffer limit) is computed without overflow, and 1 MiB messages arrive.
#[cfg(feature = "testkit")]
#[tokio::test]
async fn options_bounds_the_largest_send_queue_bytes_sends_and_echoes_1_mib_messages() {
    let server = wstether::testkit::TestServer::start().await.unwrap();
    let options = Options::default()
        .retry(Retry::never())
        .no_keepalive()
        .send_queue_bytes(QUEUE_BYTES_BOUND)
        .event_queue_bytes(QUEUE_BYTES_BOUND);
    let (conn, mut events) = Connection::open(&server.url("/"), options).unwrap();
    let stream = conn.ws_upgrade("/").unwrap();
    let patience = Duration::from_secs(10);
    async fn next(events: &mut Events, patience: Duration) -> Event {
        let next = tokio::time::timeout(patience, events.recv()).await;
        next.expect("an event in time").expect("an event")
    }
    while !matches!(next(&mut events, patience).await, Event::Upgraded { .. }) {}
    for i in 0..4u8 {
        conn.ws_send(stream, wstether::Frame::binary(vec![i; 1 << 20]))
            .unwrap();
    }
    let mut echoed = 0;
    while echoed < 4 {
        match next(&mut events, patience).await {
            Event::Frame {
                frame: wstether::Frame::Binary(data),
                ..
            } => {
                assert_eq!(data.len(), 1 << 20);
                echoed += 1;
            }
            Event::Frame { .. } => {}
            other => panic!("expected the echo, got {other:?}"),
        }
    }
    conn.shutdown();
}
