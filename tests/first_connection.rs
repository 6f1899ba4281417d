//! The first connection's one policy (issue 19, item 2), against real
//! servers on loopback: it gets a budget (`Retry::first_connection`, by
//! default one attempt), and however it fails it ends the same way —
//! `UpgradeFailed` for the waiting upgrade, `Error { stream: None }`, the
//! final `Down { will_reconnect: false }`, the end of the events — and
//! `connect` fails with that `Error`'s error.
#![cfg(feature = "testkit")]

mod common;
#[path = "shared/first_connection_ending.rs"]
mod ending;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::{rest, until, PATIENCE};
use ending::{announced_attempts, first_connection_ending};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wstether::testkit::TestServer;
use wstether::{
    connect, Connection, DownReason, Error, ErrorKind, Event, FirstConnection, Frame, Options,
    Proxy, Retry,
};

/// Options as a user writes them (the default budget), quick retries
/// where a test gives a larger one, no keepalive, no proxy from the
/// environment.
fn options(budget: FirstConnection) -> Options {
    Options::default().no_keepalive().no_proxy().retry(
        Retry::default()
            .initial_delay(Duration::from_millis(20))
            .max_delay(Duration::from_millis(50))
            .first_connection(budget),
    )
}

fn one_attempt() -> Options {
    options(FirstConnection::Attempts(1))
}

/// A loopback port where nothing listens: a listener bound, then dropped.
fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    listener.local_addr().unwrap()
}

/// A server that accepts TCP connections and never answers (holding them
/// until the test ends).
async fn mute_server() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (addr, task)
}

/// An HTTP proxy that refuses every CONNECT with `403 Forbidden`.
async fn refusing_proxy() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = socket
                .write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
    });
    (addr, task)
}

/// Opens `url`'s host, upgrades its path, queues a frame and reads every
/// event to the end; checks the documented ending and returns the events
/// and the error it carries.
async fn first_failure(url: &str, path: &str, options: Options) -> (Vec<Event>, Error) {
    let (conn, mut events) = Connection::open(url, options).unwrap();
    let stream = conn.ws_upgrade(path).unwrap();
    conn.ws_send(stream, Frame::text("queued")).unwrap();
    let all = rest(&mut events).await;
    let error = first_connection_ending(&all, stream, &[Frame::text("queued")]);
    (all, error)
}

/// `connect` fails with the same error as the events of the same failure.
async fn connect_fails_like_the_events(url: &str, options: Options, events_error: &Error) {
    let error = tokio::time::timeout(PATIENCE, connect(url, options))
        .await
        .expect("connect returns")
        .unwrap_err();
    assert_eq!(error.kind(), events_error.kind(), "{error}");
    assert_eq!(error.status(), events_error.status(), "{error}");
    assert_eq!(error.proxy_status(), events_error.proxy_status(), "{error}");
}

#[tokio::test]
async fn first_connection_to_a_closed_port_fails_at_once_by_default() {
    let url = format!("ws://{}", closed_port());
    let (all, error) = first_failure(&url, "/", one_attempt()).await;
    assert_eq!(error.kind(), ErrorKind::Connect, "{error}");
    assert_eq!(all.len(), 3, "one attempt: {all:?}");
    // The defaults as they are: the budget is one attempt.
    let defaults = Options::default().no_keepalive().no_proxy();
    connect_fails_like_the_events(&format!("{url}/"), defaults, &error).await;
}

#[tokio::test]
async fn first_connection_ends_the_same_way_whatever_the_retry_policy() {
    let url = format!("ws://{}", closed_port());
    for retry in [
        Retry::default(),
        Retry::never(),
        Retry::default().max_retries(3),
        Retry::default().unlimited_retries(),
    ] {
        let options = Options::default().no_keepalive().no_proxy().retry(retry);
        let (all, error) = first_failure(&url, "/", options).await;
        assert_eq!(error.kind(), ErrorKind::Connect, "{error}");
        assert_eq!(all.len(), 3, "{all:?}");
    }
}

#[tokio::test]
async fn first_connection_refused_with_503_fails_with_its_status() {
    let server = TestServer::start().await.unwrap();
    let (all, error) = first_failure(&server.url(""), "/?reject=503", one_attempt()).await;
    assert!(matches!(all[0], Event::Up { .. }), "{all:?}");
    assert!(
        matches!(&all[1], Event::UpgradeFailed { status: Some(s), .. } if s.as_u16() == 503),
        "{all:?}"
    );
    assert_eq!(error.kind(), ErrorKind::UpgradeRefused, "{error}");
    assert_eq!(
        error.status(),
        Some(wstether::http::StatusCode::SERVICE_UNAVAILABLE)
    );
    assert!(matches!(
        all.last(),
        Some(Event::Down {
            reason: DownReason::UpgradeRejected,
            ..
        })
    ));
    connect_fails_like_the_events(&server.url("/?reject=503"), one_attempt(), &error).await;
    assert_eq!(server.requests().len(), 2, "one attempt each");
}

#[tokio::test]
async fn first_connection_refused_with_401_fails_with_its_status() {
    let server = TestServer::start().await.unwrap();
    // A larger budget changes nothing: 401 without a provider is not retried.
    let budget = options(FirstConnection::Attempts(5));
    let (_, error) = first_failure(&server.url(""), "/?reject=401", budget.clone()).await;
    assert_eq!(error.kind(), ErrorKind::UpgradeRefused, "{error}");
    assert_eq!(error.status().map(|s| s.as_u16()), Some(401));
    connect_fails_like_the_events(&server.url("/?reject=401"), budget, &error).await;
    assert_eq!(server.requests().len(), 2, "one attempt each");
}

#[tokio::test]
async fn first_connection_to_a_server_that_never_answers_times_out() {
    let (addr, _server) = mute_server().await;
    let url = format!("ws://{addr}");
    let quick = || one_attempt().upgrade_timeout(Duration::from_millis(200));
    let (all, error) = first_failure(&url, "/", quick()).await;
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error}");
    assert!(matches!(all[0], Event::Up { .. }), "{all:?}");
    connect_fails_like_the_events(&format!("{url}/"), quick(), &error).await;
}

#[tokio::test]
async fn first_connection_with_tls_to_a_plain_server_fails_with_tls() {
    let server = TestServer::start().await.unwrap();
    let url = format!("wss://127.0.0.1:{}", server.addr().port());
    let (_, error) = first_failure(&url, "/", one_attempt()).await;
    assert_eq!(error.kind(), ErrorKind::Tls, "{error}");
    connect_fails_like_the_events(&format!("{url}/"), one_attempt(), &error).await;
}

#[tokio::test]
async fn first_connection_refused_by_a_proxy_fails_with_its_status() {
    let server = TestServer::start().await.unwrap();
    let (proxy, _proxy_task) = refusing_proxy().await;
    let via_proxy = || one_attempt().proxy(Proxy::http(&format!("http://{proxy}")).unwrap());
    // 403 from a proxy is retried by the reconnect policy; the budget is spent.
    let (_, error) = first_failure(&server.url(""), "/", via_proxy()).await;
    assert_eq!(error.kind(), ErrorKind::Proxy, "{error}");
    assert_eq!(error.proxy_status().map(|s| s.as_u16()), Some(403));
    connect_fails_like_the_events(&server.url("/"), via_proxy(), &error).await;
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn first_connection_with_a_budget_of_n_attempts_makes_n() {
    let url = format!("ws://{}", closed_port());
    let (all, error) = first_failure(&url, "/", options(FirstConnection::Attempts(3))).await;
    assert_eq!(error.kind(), ErrorKind::Connect);
    let retries = announced_attempts(&all);
    assert_eq!(retries, [2, 3], "{all:?}");
    let errors = all
        .iter()
        .filter(|e| matches!(e, Event::Error { stream: None, .. }))
        .count();
    assert_eq!(
        errors, 3,
        "one error per attempt, the last one ends: {all:?}"
    );
}

#[tokio::test]
async fn first_connection_with_a_deadline_retries_until_it_passes() {
    let url = format!("ws://{}", closed_port());
    let budget = options(FirstConnection::Deadline(Duration::from_millis(300)));
    let (all, error) = first_failure(&url, "/", budget.clone()).await;
    // Refused dials until the deadline; the deadline may also cut one in
    // progress (a loaded machine), which then ends it as a timeout.
    assert!(
        matches!(error.kind(), ErrorKind::Connect | ErrorKind::Timeout),
        "the last real error: {error}"
    );
    assert!(
        all.iter().any(|e| matches!(e, Event::Reconnecting { .. })),
        "retried within the deadline: {all:?}"
    );
    // A second run may end either way too (see above).
    let error = tokio::time::timeout(PATIENCE, connect(&format!("{url}/"), budget))
        .await
        .expect("connect returns")
        .unwrap_err();
    assert!(
        matches!(error.kind(), ErrorKind::Connect | ErrorKind::Timeout),
        "{error}"
    );
}

#[tokio::test]
async fn first_connection_deadline_cuts_an_upgrade_that_hangs() {
    let (addr, _server) = mute_server().await;
    // The upgrade timeout (10 s by default) is longer than the deadline.
    let budget = options(FirstConnection::Deadline(Duration::from_millis(200)));
    let (_, error) = first_failure(&format!("ws://{addr}"), "/", budget).await;
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error}");
    assert!(error.to_string().contains("deadline"), "{error}");
}

#[tokio::test]
async fn first_connection_waits_for_a_server_that_comes_up_later_when_the_budget_allows() {
    let addr = closed_port();
    let budget = options(FirstConnection::Deadline(PATIENCE));
    let (conn, mut events) = Connection::open(&format!("ws://{addr}"), budget).unwrap();
    let stream = conn.ws_upgrade("/").unwrap();
    until(&mut events, |e| matches!(e, Event::Reconnecting { .. })).await;
    // The first dial failed: now the server comes up.
    let server = TestServer::start_on(addr).await.unwrap();
    let (upgraded, _) = until(&mut events, common::is_upgraded).await;
    assert!(matches!(upgraded, Event::Upgraded { stream: s, .. } if s == stream));
    assert_eq!(server.accepted_connections(), 1);
    conn.shutdown();
}

/// `connect` within a budget: an attempt whose upgrade failed (the server
/// dropped it) is followed by a new attempt that upgrades again.
#[tokio::test]
async fn first_connection_connect_upgrades_again_after_a_failed_attempt() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    // The first attempt reaches a server that drops it unanswered, which
    // then gives the port to a real one.
    let flaky = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        drop(socket);
        drop(listener);
        TestServer::start_on(addr).await.unwrap()
    });
    let budget = options(FirstConnection::Deadline(PATIENCE));
    let (conn, mut events, stream) = connect(&format!("ws://{addr}/?send=1"), budget)
        .await
        .unwrap();
    let server = flaky.await.unwrap();
    let (frame, _) = until(&mut events, |e| matches!(e, Event::Frame { .. })).await;
    assert!(matches!(frame, Event::Frame { stream: s, .. } if s == stream));
    assert_eq!(server.requests()[0].path, "/?send=1", "the same path again");
    conn.shutdown();
}

#[tokio::test]
async fn first_connection_budget_ends_at_the_first_success_then_the_reconnect_policy_applies() {
    let server = TestServer::start().await.unwrap();
    // One attempt for the first connection, then retries forever.
    let (conn, mut events) = Connection::open(&server.url(""), one_attempt()).unwrap();
    conn.ws_upgrade("/").unwrap();
    until(&mut events, common::is_upgraded).await;
    server.stop().await;
    let (down, _) = until(&mut events, common::is_down).await;
    assert!(
        matches!(
            down,
            Event::Down {
                will_reconnect: true,
                ..
            }
        ),
        "{down:?}"
    );
    // Dials fail while the server is away, and are retried.
    for _ in 0..2 {
        until(&mut events, |e| {
            matches!(e, Event::Error { stream: None, .. })
        })
        .await;
        until(&mut events, |e| matches!(e, Event::Reconnecting { .. })).await;
    }
    server.restart().await.unwrap();
    until(&mut events, common::is_up).await;
    conn.shutdown();
}

#[tokio::test]
async fn first_connection_budget_of_zero_attempts_is_an_invalid_option() {
    let url = format!("ws://{}", closed_port());
    for budget in [
        FirstConnection::Attempts(0),
        FirstConnection::Deadline(Duration::ZERO),
    ] {
        let error = Connection::open(&url, options(budget)).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidOption, "{budget:?}");
        assert!(error.to_string().contains("first_connection"), "{error}");
    }
}

#[tokio::test]
async fn first_connection_open_refuses_a_path_or_a_query_and_connect_takes_them() {
    let server = TestServer::start().await.unwrap();
    for url in [
        server.url("/chat"),
        server.url("/?send=1"),
        server.url("/a/b?x=1"),
    ] {
        let error = Connection::open(&url, one_attempt()).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidUrl, "{url}");
        let message = error.to_string();
        assert!(
            message.contains("ws_upgrade") && message.contains("connect"),
            "{message}"
        );
    }
    for url in [server.url(""), server.url("/")] {
        Connection::open(&url, one_attempt()).unwrap();
    }
    let (conn, _events, _) = connect(&server.url("/chat?send=1"), one_attempt())
        .await
        .unwrap();
    assert_eq!(server.requests()[0].path, "/chat?send=1");
    conn.shutdown();
}
