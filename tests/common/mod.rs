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

/// An outside peer server in a child process (Node, Python): started by
/// [`PeerProcess::start`], ended when dropped (its stdin closes, and
/// `kill_on_drop`).
pub struct PeerProcess {
    _child: tokio::process::Child,
    /// The port it printed.
    pub port: u16,
}

impl PeerProcess {
    /// Starts `program` with `args` in the crate's root and waits (30 s at
    /// most) for the port it prints on its first line.
    pub async fn start(program: &str, args: &[&str]) -> PeerProcess {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program} (run .ci/setup): {e}"));
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        tokio::time::timeout(
            Duration::from_secs(30),
            tokio::io::BufReader::new(stdout).read_line(&mut line),
        )
        .await
        .unwrap_or_else(|_| panic!("{program} printed no port within 30 s"))
        .unwrap();
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{program} printed {line:?}, not a port"));
        PeerProcess {
            _child: child,
            port,
        }
    }
}
