//! The first connection's one policy in a real browser (issue 19, item 2):
//! the same ending as natively — `UpgradeFailed` for the waiting upgrade,
//! `Error { stream: None }`, the final `Down { will_reconnect: false }`,
//! the end of the events — and `connect` fails with that `Error`'s error.
//! A browser hides why a WebSocket did not open, so the kind is `Upgrade`
//! (or `Timeout`) where natively it would say `Connect`, `Tls` or a status.

mod common;
#[path = "../../tests/shared/first_connection_ending.rs"]
mod ending;

use std::time::Duration;

use common::{next, within, ws_url, DEADLINE};
use ending::{announced_attempts, first_connection_ending};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use wstether::{
    connect, Connection, Error, ErrorKind, Event, FirstConnection, Frame, Options, Retry,
};

wasm_bindgen_test_configure!(run_in_browser);

/// A loopback port where nothing listens (and that browsers do not block).
const CLOSED: &str = "ws://127.0.0.1:2";

fn options(budget: FirstConnection) -> Options {
    Options::default().retry(
        Retry::default()
            .initial_delay(Duration::from_millis(20))
            .max_delay(Duration::from_millis(50))
            .first_connection(budget),
    )
}

/// Opens `url`, upgrades `path`, queues a frame and reads every event to
/// the end; checks the documented ending and returns the events and the
/// error it carries.
async fn first_failure(url: &str, path: &str, options: Options) -> (Vec<Event>, Error) {
    let (conn, mut events) = Connection::open(url, options).expect("open");
    let stream = conn.ws_upgrade(path).expect("ws_upgrade");
    conn.ws_send(stream, Frame::text("queued")).expect("queued");
    let mut all = Vec::new();
    while let Some(event) = within(DEADLINE, futures::StreamExt::next(&mut events)).await {
        all.push(event);
    }
    let error = first_connection_ending(&all, stream, &[Frame::text("queued")]);
    (all, error)
}

async fn connect_fails_like_the_events(url: &str, options: Options, events_error: &Error) {
    let error = within(DEADLINE, connect(url, options))
        .await
        .expect_err("connect fails");
    assert_eq!(error.kind(), events_error.kind(), "{error}");
}

#[wasm_bindgen_test]
async fn first_connection_to_a_closed_port_fails_at_once_by_default() {
    let (all, error) = first_failure(CLOSED, "/", Options::default()).await;
    assert_eq!(error.kind(), ErrorKind::Upgrade, "{error}");
    assert!(matches!(all[0], Event::Up { attempt: 1 }), "{all:?}");
    assert_eq!(all.len(), 4, "one attempt: {all:?}");
    connect_fails_like_the_events(&format!("{CLOSED}/"), Options::default(), &error).await;
}

#[wasm_bindgen_test]
async fn first_connection_ends_the_same_way_whatever_the_retry_policy() {
    for retry in [
        Retry::default(),
        Retry::never(),
        Retry::default().max_retries(3),
    ] {
        let (all, error) = first_failure(CLOSED, "/", Options::default().retry(retry)).await;
        assert_eq!(error.kind(), ErrorKind::Upgrade, "{error}");
        assert_eq!(all.len(), 4, "{all:?}");
    }
}

#[wasm_bindgen_test]
async fn first_connection_refused_with_503_ends_the_same_way() {
    let budget = || options(FirstConnection::Attempts(1));
    let (_, error) = first_failure(&ws_url("/"), "/?reject=503", budget()).await;
    assert_eq!(error.kind(), ErrorKind::Upgrade, "{error}");
    connect_fails_like_the_events(&ws_url("/?reject=503"), budget(), &error).await;
}

#[wasm_bindgen_test]
async fn first_connection_to_a_server_that_never_answers_times_out() {
    let budget =
        || options(FirstConnection::Attempts(1)).upgrade_timeout(Duration::from_millis(300));
    let (_, error) = first_failure(&ws_url("/"), "/?no_upgrade=1", budget()).await;
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error}");
    connect_fails_like_the_events(&ws_url("/?no_upgrade=1"), budget(), &error).await;
}

/// Each attempt's upgrade fails (a browser's dial cannot): as with Gun,
/// the owner upgrades again after each `Down`, and the budget ends it.
#[wasm_bindgen_test]
async fn first_connection_with_a_budget_of_n_attempts_makes_n() {
    let (conn, mut events) =
        Connection::open(CLOSED, options(FirstConnection::Attempts(3))).expect("open");
    conn.ws_upgrade("/").expect("ws_upgrade");
    let mut all = Vec::new();
    while let Some(event) = within(DEADLINE, futures::StreamExt::next(&mut events)).await {
        if let Event::Down {
            will_reconnect: true,
            ..
        } = event
        {
            conn.ws_upgrade("/").expect("ws_upgrade again");
        }
        all.push(event);
    }
    let retries = announced_attempts(&all);
    assert_eq!(retries, [2, 3], "{all:?}");
    assert!(
        matches!(
            &all[all.len() - 3..],
            [
                Event::UpgradeFailed { .. },
                Event::Error { stream: None, .. },
                Event::Down {
                    will_reconnect: false,
                    ..
                }
            ]
        ),
        "{all:?}"
    );
}

#[wasm_bindgen_test]
async fn first_connection_budget_ends_at_the_first_success() {
    let (conn, mut events, _stream) = connect(&ws_url("/"), Options::default())
        .await
        .expect("connect");
    conn.shutdown();
    loop {
        if let Event::Down { .. } = next(&mut events).await {
            break;
        }
    }
}
