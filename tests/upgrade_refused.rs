//! The retry policy reads a refused upgrade's status, against the real
//! testkit server: a 403 (or 404, or a 401 without an upgrade provider)
//! ends the connection after exactly one attempt; 401 with a provider,
//! 429 and 503 are retried, honouring `Retry-After`.
#![cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]

mod common;

use std::time::{Duration, Instant};

use common::{next, options, rest, until, PATIENCE};
use wstether::{
    Connection, DownReason, ErrorKind, Event, FirstConnection, Options, Retry, Upgrade,
};
use wstether_testkit::TestServer;

/// Opens with auto-upgrade on `path` and returns every event until the
/// stream ends (it must end: the policy stops).
async fn one_refusal(server: &TestServer, options: Options, path: &str) -> Vec<Event> {
    let (conn, mut events) = Connection::open(&server.url(""), options).unwrap();
    conn.ws_upgrade(path).unwrap();
    rest(&mut events).await
}

fn assert_stopped(events: &[Event], status: u16) {
    let kinds: Vec<String> = events
        .iter()
        .map(|event| match event {
            Event::Up { .. } => "Up".to_owned(),
            Event::UpgradeFailed { status, .. } => format!("UpgradeFailed {status:?}"),
            Event::Error { error, .. } => format!("Error {:?}", error.kind()),
            Event::Down {
                reason: DownReason::UpgradeRejected,
                will_reconnect,
                ..
            } => format!("Down UpgradeRejected reconnect={will_reconnect}"),
            other => format!("{other:?}"),
        })
        .collect();
    let status = http::StatusCode::from_u16(status).unwrap();
    assert_eq!(
        kinds,
        [
            "Up".to_owned(),
            format!("UpgradeFailed {:?}", Some(status)),
            "Error UpgradeRefused".to_owned(),
            "Down UpgradeRejected reconnect=false".to_owned(),
        ]
    );
    let Event::Error { error, .. } = &events[2] else {
        unreachable!()
    };
    assert_eq!(error.kind(), ErrorKind::UpgradeRefused);
    assert!(
        error.to_string().contains(&status.as_u16().to_string()),
        "{error}"
    );
}

#[tokio::test]
async fn a_refused_403_with_auto_upgrade_makes_exactly_one_attempt() {
    let server = TestServer::start().await.unwrap();
    let events = one_refusal(&server, options().auto_upgrade(true), "/?reject=403").await;
    assert_stopped(&events, 403);
    // The stream has ended: nothing more can be asked. Give a stray retry
    // (20 ms backoff in these options) ample time to show anyway.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.requests().len(), 1, "one upgrade request, no retry");
    assert_eq!(server.accepted_connections(), 1, "one connection");
}

#[tokio::test]
async fn a_404_and_a_301_end_the_connection_too() {
    let server = TestServer::start().await.unwrap();
    for status in [404, 301] {
        let path = format!("/?reject={status}");
        let events = one_refusal(&server, options().auto_upgrade(true), &path).await;
        assert_stopped(&events, status);
    }
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn a_401_without_an_upgrade_provider_is_not_retried() {
    let server = TestServer::start().await.unwrap();
    let events = one_refusal(&server, options().auto_upgrade(true), "/?reject=401").await;
    assert_stopped(&events, 401);
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_401_with_an_upgrade_provider_is_retried_with_fresh_credentials() {
    let server = TestServer::start().await.unwrap();
    let tokens = std::sync::atomic::AtomicU32::new(0);
    let options = options().auto_upgrade_with_sync(move || {
        let n = tokens.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Upgrade::new("/?reject=401").header("authorization", format!("Bearer token-{n}"))
    });
    let (conn, mut events) = Connection::open(&server.url(""), options).unwrap();
    tokio::time::timeout(PATIENCE, server.wait_for_requests(3))
        .await
        .expect("retried");
    let requests = server.requests();
    let sent: Vec<_> = requests.iter().map(|r| r.header("authorization")).collect();
    assert_eq!(
        &sent[..3],
        [
            Some("Bearer token-0"),
            Some("Bearer token-1"),
            Some("Bearer token-2")
        ]
    );
    conn.shutdown();
    let all = rest(&mut events).await;
    assert!(
        !all.iter().any(
            |e| matches!(e, Event::Error { error, .. } if error.kind() == ErrorKind::UpgradeRefused)
        ),
        "{all:?}"
    );
}

#[tokio::test]
async fn a_503_is_retried_by_the_backoff() {
    let server = TestServer::start().await.unwrap();
    let (conn, mut events) =
        Connection::open(&server.url(""), options().auto_upgrade(true)).unwrap();
    conn.ws_upgrade("/?reject=503").unwrap();
    tokio::time::timeout(PATIENCE, server.wait_for_requests(3))
        .await
        .expect("retried");
    conn.shutdown();
    rest(&mut events).await;
}

#[tokio::test]
async fn a_429_waits_for_its_retry_after() {
    let server = TestServer::start().await.unwrap();
    // The backoff alone would wait 20 ms; max_delay leaves room for 1 s.
    let options = options().auto_upgrade(true).retry(
        Retry::default()
            .initial_delay(Duration::from_millis(20))
            .max_delay(Duration::from_secs(5))
            .first_connection(FirstConnection::ReconnectPolicy),
    );
    let (conn, mut events) = Connection::open(&server.url(""), options).unwrap();
    conn.ws_upgrade("/?reject=429&header=Retry-After:1")
        .unwrap();
    let (event, _) = until(&mut events, |e| matches!(e, Event::Reconnecting { .. })).await;
    let refused_at = Instant::now();
    let Event::Reconnecting { delay, .. } = event else {
        unreachable!()
    };
    assert_eq!(delay, Duration::from_secs(1), "Retry-After: 1");
    let (event, _) = until(&mut events, |e| matches!(e, Event::UpgradeFailed { .. })).await;
    assert!(
        refused_at.elapsed() >= Duration::from_millis(990),
        "asked again after {:?}",
        refused_at.elapsed()
    );
    assert!(matches!(event, Event::UpgradeFailed { status: Some(s), .. } if s == 429));
    assert_eq!(server.requests().len(), 2);
    conn.shutdown();
    let _ = next(&mut events).await;
}
