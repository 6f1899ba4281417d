//! Reconnecting after the server goes away: Down then Up, and, as in Gun,
//! the Websocket is not upgraded again unless the application asks (a new
//! `ws_upgrade` on the new connection); auto-upgrade as an opt-in.
#![cfg(native)]

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{next, options, rest, until};
use wstether::{
    Connection, DownReason, ErrorKind, Event, FirstConnection, Frame, Options, Retry, Upgrade,
};
use wstether_testkit::TestServer;

#[tokio::test]
async fn after_a_server_restart_it_reconnects_without_upgrading() {
    let server = TestServer::start().await.unwrap();
    let (conn, mut events) = Connection::open(&server.url(""), options()).unwrap();
    let old = conn.ws_upgrade("/ws").unwrap();
    until(&mut events, common::is_upgraded).await;

    server.stop().await;
    server.restart().await.unwrap();

    let (down, _) = until(&mut events, common::is_down).await;
    let Event::Down {
        killed_streams,
        will_reconnect,
        ..
    } = down
    else {
        unreachable!()
    };
    assert_eq!(killed_streams, [old]);
    assert!(will_reconnect);
    let (up, skipped) = until(&mut events, common::is_up).await;
    assert!(matches!(up, Event::Up { attempt } if attempt >= 2));
    assert!(
        skipped
            .iter()
            .all(|e| matches!(e, Event::Reconnecting { .. } | Event::Error { .. })),
        "{skipped:?}"
    );

    // Up, but no Websocket: the old stream is stale, and nothing is
    // re-upgraded by itself: no event and no upgrade request for a while.
    let error = conn
        .ws_send(old, Frame::text("to the old socket"))
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::StaleStream);
    assert_eq!(error.into_unsent(), [Frame::text("to the old socket")]);
    let quiet = tokio::time::timeout(Duration::from_millis(300), events.recv()).await;
    assert!(quiet.is_err(), "no event after Up: {quiet:?}");
    assert_eq!(
        server.requests().len(),
        1,
        "no upgrade request after the reconnect"
    );

    // The owner re-upgrades on the same connection, as with Gun: the new
    // stream is that connection's next one, and the old one stays stale.
    let new = conn.ws_upgrade("/ws").unwrap();
    assert!(new > old, "{new} after {old}");
    let (connection, stream) = old
        .to_string()
        .rsplit_once('.')
        .map(|(c, s)| (c.to_owned(), s.parse::<u32>().unwrap()))
        .unwrap();
    assert_eq!(new.to_string(), format!("{connection}.{}", stream + 1));
    let (event, _) = until(&mut events, common::is_upgraded).await;
    assert!(
        matches!(event, Event::Upgraded { stream, .. } if stream == new),
        "{event:?}"
    );
    conn.ws_send(new, Frame::text("on the new stream")).unwrap();
    assert!(
        matches!(next(&mut events).await, Event::Frame { stream, frame } if stream == new && frame == Frame::text("on the new stream"))
    );
    let error = conn.ws_send(old, Frame::text("late")).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::StaleStream);

    conn.shutdown();
    let remaining = rest(&mut events).await;
    assert!(!remaining.iter().any(common::is_upgraded), "{remaining:?}");
    assert_eq!(
        server.requests().len(),
        2,
        "one upgrade before the restart and the owner's one after it"
    );
}

#[tokio::test]
async fn the_owner_re_upgrades_on_up_and_sends_on_the_new_stream() {
    let server = TestServer::start().await.unwrap();
    let (conn, mut events) = Connection::open(&server.url(""), options()).unwrap();
    let first = conn.ws_upgrade("/ws").unwrap();
    until(&mut events, common::is_upgraded).await;
    server.drop_connections();
    until(
        &mut events,
        |e| matches!(e, Event::Up { attempt } if *attempt >= 2),
    )
    .await;
    let second = conn.ws_upgrade("/ws").unwrap();
    assert_ne!(first, second);
    let (event, _) = until(&mut events, common::is_upgraded).await;
    assert!(matches!(event, Event::Upgraded { stream, .. } if stream == second));
    conn.ws_send(second, Frame::text("again")).unwrap();
    assert!(
        matches!(next(&mut events).await, Event::Frame { stream, frame } if stream == second && frame == Frame::text("again"))
    );
}

#[tokio::test]
async fn auto_upgrade_re_runs_the_last_upgrade_after_a_reconnect() {
    let server = TestServer::start().await.unwrap();
    let (conn, mut events) =
        Connection::open(&server.url(""), options().auto_upgrade(true)).unwrap();
    let first = conn
        .ws_upgrade_with(Upgrade::new("/ws").protocol("mychat"))
        .unwrap();
    until(&mut events, common::is_upgraded).await;
    server.drop_connections();
    until(&mut events, common::is_down).await;
    let (event, _) = until(&mut events, common::is_upgraded).await;
    let Event::Upgraded {
        stream: second,
        protocol,
        ..
    } = event
    else {
        unreachable!()
    };
    assert!(
        second > first,
        "a new StreamRef for every upgrade: {second} after {first}"
    );
    assert_eq!(protocol.as_deref(), Some("mychat"));
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].path, "/ws");
    conn.ws_send(second, Frame::text("on the new stream"))
        .unwrap();
    assert!(matches!(next(&mut events).await, Event::Frame { stream, .. } if stream == second));
}

#[tokio::test]
async fn auto_upgrade_with_a_provider_refreshes_headers_per_attempt() {
    let server = TestServer::start().await.unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let options = options().auto_upgrade_with_sync(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        Upgrade::new("/ws").header("authorization", format!("Bearer token-{n}"))
    });
    let (_conn, mut events) = Connection::open(&server.url(""), options).unwrap();
    // The provider upgrades on the first Up too.
    until(&mut events, common::is_upgraded).await;
    server.drop_connections();
    until(&mut events, common::is_down).await;
    until(&mut events, common::is_upgraded).await;
    let tokens: Vec<_> = server
        .requests()
        .iter()
        .map(|r| r.header("authorization").unwrap().to_owned())
        .collect();
    assert_eq!(tokens, ["Bearer token-1", "Bearer token-2"]);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn connect_failures_are_error_events_and_retried_with_backoff() {
    let server = TestServer::start().await.unwrap();
    let url = server.url("");
    server.stop().await;
    let (conn, mut events) = Connection::open(&url, options()).unwrap();
    let Event::Error {
        stream: None,
        error,
    } = next(&mut events).await
    else {
        panic!("connect error expected")
    };
    assert_eq!(error.kind(), ErrorKind::Connect);
    let Event::Reconnecting { attempt: 2, delay } = next(&mut events).await else {
        panic!("retry expected")
    };
    assert!(delay <= std::time::Duration::from_millis(20));
    server.restart().await.unwrap();
    until(&mut events, common::is_up).await;
    conn.shutdown();
}

#[tokio::test]
async fn retries_run_out_and_the_events_end() {
    let server = TestServer::start().await.unwrap();
    let url = server.url("");
    server.stop().await;
    let options = options().retry(
        Retry::default()
            .initial_delay(std::time::Duration::from_millis(5))
            .max_delay(std::time::Duration::from_millis(5))
            .max_retries(2)
            .first_connection(FirstConnection::ReconnectPolicy),
    );
    let (conn, mut events) = Connection::open(&url, options).unwrap();
    let stream = conn.ws_upgrade("/").unwrap();
    conn.ws_send(stream, Frame::text("never sent")).unwrap();
    let all = rest(&mut events).await;
    let connect_errors = all
        .iter()
        .filter(|e| matches!(e, Event::Error { stream: None, .. }))
        .count();
    assert_eq!(connect_errors, 3, "one try and two retries: {all:?}");
    // Never connected: the first connection's end (see `Retry`), with the
    // last real error.
    match &all[all.len() - 3..] {
        [Event::UpgradeFailed {
            stream: s, error, ..
        }, Event::Error { stream: None, .. }, Event::Down {
            unsent,
            will_reconnect: false,
            ..
        }] => {
            assert_eq!(*s, stream);
            assert_eq!(error.kind(), ErrorKind::Connect);
            assert_eq!(
                unsent,
                &[Frame::text("never sent")],
                "queued frames come back"
            );
        }
        other => panic!("expected the waiting upgrade to fail, then the end, got {other:?}"),
    }
}

#[tokio::test]
async fn a_stop_listed_close_code_ends_without_reconnecting() {
    let server = TestServer::start().await.unwrap();
    let (conn, mut events) = Connection::open(&server.url(""), options()).unwrap();
    conn.ws_upgrade("/?close=1008&reason=policy").unwrap();
    let all = rest(&mut events).await;
    let down = all.iter().find(|e| common::is_down(e)).unwrap();
    assert!(
        matches!(down, Event::Down { reason: DownReason::ClosedByPeer(c), will_reconnect: false, .. } if c.code.as_u16() == 1008)
    );
    assert_eq!(server.accepted_connections(), 1);
}

#[tokio::test]
async fn a_going_away_close_reconnects() {
    let server = TestServer::start().await.unwrap();
    let (conn, mut events) = Connection::open(&server.url(""), options()).unwrap();
    conn.ws_upgrade("/ws").unwrap();
    until(&mut events, common::is_upgraded).await;
    server.close_connections(1001, "restarting").await;
    let (down, _) = until(&mut events, common::is_down).await;
    assert!(
        matches!(down, Event::Down { reason: DownReason::ClosedByPeer(c), will_reconnect: true, .. } if c.code.as_u16() == 1001)
    );
    until(&mut events, common::is_up).await;
}

#[tokio::test]
async fn retry_never_ends_at_the_first_down() {
    let server = TestServer::start().await.unwrap();
    let options: Options = options().retry(Retry::never());
    let (conn, mut events) = Connection::open(&server.url(""), options).unwrap();
    conn.ws_upgrade("/").unwrap();
    until(&mut events, common::is_upgraded).await;
    server.drop_connections();
    let all = rest(&mut events).await;
    assert!(
        matches!(
            all.last(),
            Some(Event::Down {
                will_reconnect: false,
                reason: DownReason::Error(_),
                ..
            })
        ),
        "{all:?}"
    );
}
