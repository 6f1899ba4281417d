//! Async upgrade providers (issue 19, item 4), against the testkit server,
//! which records every upgrade request: a provider's future runs per
//! attempt (its I/O awaited by the connection's task, never by the core),
//! a failing one is a typed error that follows the retry policy, and one
//! that hangs is bounded by the upgrade timeout.
#![cfg(native)]

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{options, rest, until};
use tokio::sync::{mpsc, oneshot};
use wstether::{connect, Connection, ErrorKind, Event, FirstConnection, Options, Retry, Upgrade};
use wstether_testkit::TestServer;

/// A token service on its own task: every request gets the next token,
/// through a channel round trip (a real await, as a token refresh over
/// the network would be).
fn token_service() -> mpsc::Sender<oneshot::Sender<String>> {
    let (requests, mut incoming) = mpsc::channel::<oneshot::Sender<String>>(8);
    tokio::spawn(async move {
        let mut issued = 0;
        while let Some(reply) = incoming.recv().await {
            issued += 1;
            let _ = reply.send(format!("token-{issued}"));
        }
    });
    requests
}

/// Options whose provider asks the token service for a fresh token per
/// attempt and sends it as a bearer token, with the attempt in the path.
fn with_token_provider(options: Options) -> Options {
    let tokens = token_service();
    let attempts = Arc::new(AtomicU32::new(0));
    options.auto_upgrade_with(move || {
        let tokens = tokens.clone();
        let attempt = attempts.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            let (reply, token) = oneshot::channel();
            tokens.send(reply).await.map_err(|_| "token service gone")?;
            let token = token.await.map_err(|_| "no token")?;
            Ok::<_, &str>(
                Upgrade::new(format!("/?attempt={attempt}"))
                    .header("authorization", format!("Bearer {token}"))
                    .protocol("chat"),
            )
        }
    })
}

#[tokio::test]
async fn provider_gives_fresh_credentials_per_attempt_that_reach_the_server() {
    let server = TestServer::start().await.unwrap();
    let (conn, mut events) =
        Connection::open(&server.url(""), with_token_provider(options())).unwrap();
    for round in 1..=3 {
        let (upgraded, _) = until(&mut events, common::is_upgraded).await;
        assert!(
            matches!(&upgraded, Event::Upgraded { protocol: Some(p), .. } if p == "chat"),
            "{upgraded:?}"
        );
        if round < 3 {
            server.drop_connections();
        }
    }
    let requests = server.requests();
    let seen: Vec<(&str, Option<&str>)> = requests
        .iter()
        .map(|r| (r.path.as_str(), r.header("authorization")))
        .collect();
    assert_eq!(
        seen,
        [
            ("/?attempt=1", Some("Bearer token-1")),
            ("/?attempt=2", Some("Bearer token-2")),
            ("/?attempt=3", Some("Bearer token-3")),
        ]
    );
    conn.shutdown();
}

#[tokio::test]
async fn provider_with_a_real_await_serves_connect() {
    let server = TestServer::start().await.unwrap();
    // The provider's path is the one upgraded, from the first attempt on.
    let (conn, _events, _stream) = connect(&server.url("/ignored"), with_token_provider(options()))
        .await
        .unwrap();
    let request = &server.requests()[0];
    assert_eq!(request.path, "/?attempt=1");
    assert_eq!(request.header("authorization"), Some("Bearer token-1"));
    conn.shutdown();
}

#[tokio::test]
async fn provider_that_fails_is_a_typed_error_that_ends_the_first_connection() {
    let server = TestServer::start().await.unwrap();
    let options = Options::default()
        .no_keepalive()
        .auto_upgrade_with(|| async { Err::<Upgrade, _>("token service down") });
    let (_conn, mut events) = Connection::open(&server.url(""), options.clone()).unwrap();
    let all = rest(&mut events).await;
    let [Event::Up { .. }, Event::UpgradeFailed { error: failed, .. }, Event::Error {
        stream: None,
        error,
    }, Event::Down {
        will_reconnect: false,
        ..
    }] = &all[..]
    else {
        panic!("the first connection's ending: {all:?}");
    };
    for error in [failed, error] {
        assert_eq!(error.kind(), ErrorKind::Provider, "{error}");
        let source = std::error::Error::source(error).expect("the provider's error");
        assert_eq!(source.to_string(), "token service down");
    }
    let error = connect(&server.url(""), options).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Provider, "{error}");
    assert!(server.requests().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn provider_that_fails_follows_the_retry_policy() {
    let server = TestServer::start().await.unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    // Fails twice, then answers: retried by the backoff within the budget.
    let options = common::options()
        .retry(
            Retry::default()
                .initial_delay(Duration::from_millis(10))
                .max_delay(Duration::from_millis(20))
                .first_connection(FirstConnection::Attempts(3)),
        )
        .auto_upgrade_with(move || {
            let call = counter.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                match call {
                    1 | 2 => Err(format!("refresh {call} failed")),
                    _ => Ok(Upgrade::new("/")),
                }
            }
        });
    let (conn, mut events) = Connection::open(&server.url(""), options).unwrap();
    let (_, before) = until(&mut events, common::is_upgraded).await;
    let provider_failures = before
        .iter()
        .filter(|e| {
            matches!(e, Event::UpgradeFailed { error, .. } if error.kind() == ErrorKind::Provider)
        })
        .count();
    assert_eq!(provider_failures, 2, "{before:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(server.requests().len(), 1);
    conn.shutdown();
}

#[tokio::test]
async fn provider_that_hangs_is_bounded_by_the_upgrade_timeout() {
    let server = TestServer::start().await.unwrap();
    let options = Options::default()
        .no_keepalive()
        .upgrade_timeout(Duration::from_millis(200))
        .auto_upgrade_with(std::future::pending::<Result<Upgrade, String>>);
    let (_conn, mut events) = Connection::open(&server.url(""), options).unwrap();
    let all = rest(&mut events).await;
    let Some(Event::UpgradeFailed { error, .. }) = all.get(1) else {
        panic!("{all:?}")
    };
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error}");
    assert!(error.to_string().contains("provider"), "{error}");
    assert!(
        matches!(
            all.last(),
            Some(Event::Down {
                will_reconnect: false,
                ..
            })
        ),
        "{all:?}"
    );
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn provider_sync_convenience_still_works() {
    let server = TestServer::start().await.unwrap();
    let options = options().auto_upgrade_with_sync(|| Upgrade::new("/?sync=1"));
    let (conn, mut events) = Connection::open(&server.url(""), options).unwrap();
    until(&mut events, common::is_upgraded).await;
    assert_eq!(server.requests()[0].path, "/?sync=1");
    conn.shutdown();
}
