//! Helpers shared by the integration tests: every test talks to a real
//! testkit server on 127.0.0.1:0.
#![allow(dead_code)]

use std::time::Duration;

use wstether::{Event, Events, FirstConnection, Options, Retry};

/// How long any single expected event may take before the test fails.
/// A guard against hangs, not a synchronisation point.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Options for tests: quick retries, no keepalive unless a test asks, and
/// the reconnect policy from the first attempt on (the tests of the
/// first-connection budget, tests/first_connection.rs, set their own).
pub fn options() -> Options {
    Options::default()
        .retry(
            Retry::default()
                .initial_delay(Duration::from_millis(20))
                .max_delay(Duration::from_millis(200))
                .first_connection(FirstConnection::ReconnectPolicy),
        )
        .no_keepalive()
}

/// The next event; fails the test if none comes within [`PATIENCE`].
pub async fn next(events: &mut Events) -> Event {
    match tokio::time::timeout(PATIENCE, events.recv()).await {
        Ok(Some(event)) => event,
        Ok(None) => panic!("the event stream ended while an event was expected"),
        Err(_) => panic!("no event within {PATIENCE:?}"),
    }
}

/// Skips events until one matches; returns it and the events skipped.
pub async fn until(
    events: &mut Events,
    mut wanted: impl FnMut(&Event) -> bool,
) -> (Event, Vec<Event>) {
    let mut skipped = Vec::new();
    loop {
        let event = next(events).await;
        if wanted(&event) {
            return (event, skipped);
        }
        skipped.push(event);
    }
}

/// Collects every remaining event until the stream ends.
pub async fn rest(events: &mut Events) -> Vec<Event> {
    let mut all = Vec::new();
    loop {
        match tokio::time::timeout(PATIENCE, events.recv()).await {
            Ok(Some(event)) => all.push(event),
            Ok(None) => return all,
            Err(_) => panic!("the event stream did not end within {PATIENCE:?}; got {all:?}"),
        }
    }
}

pub fn is_up(event: &Event) -> bool {
    matches!(event, Event::Up { .. })
}

pub fn is_upgraded(event: &Event) -> bool {
    matches!(event, Event::Upgraded { .. })
}

pub fn is_down(event: &Event) -> bool {
    matches!(event, Event::Down { .. })
}
