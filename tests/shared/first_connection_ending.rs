//! The documented ending of a first connection that gives up (see
//! `Retry`'s "The first connection"), checked the same way natively
//! (`tests/first_connection.rs`) and in a browser
//! (`wasm-pack-tests/tests/first_connection.rs`).

use wstether::{DownReason, Error, Event, Frame, StreamRef};

/// Checks that `all` (every event of a connection, to the end of the
/// stream) ends as a failed first connection does — `UpgradeFailed` for
/// `stream`, `Error { stream: None }`, the final `Down { will_reconnect:
/// false }` with the `queued` frames and no killed stream — and returns
/// the error it carries.
pub fn first_connection_ending(all: &[Event], stream: StreamRef, queued: &[Frame]) -> Error {
    let [.., Event::UpgradeFailed { stream: failed, .. }, Event::Error {
        stream: None,
        error,
    }, Event::Down {
        reason,
        killed_streams,
        unsent,
        will_reconnect: false,
    }] = all
    else {
        panic!("not the first connection's ending: {all:?}");
    };
    assert_eq!(*failed, stream, "{all:?}");
    assert!(killed_streams.is_empty(), "{all:?}");
    assert_eq!(unsent, queued, "nothing is lost");
    match reason {
        DownReason::Error(down) => assert_eq!(down.to_string(), error.to_string()),
        DownReason::UpgradeRejected => assert!(error.status().is_some(), "{error}"),
        other => panic!("down for {other:?}"),
    }
    error.clone()
}

/// The attempts that `Reconnecting` events announced, in order.
pub fn announced_attempts(all: &[Event]) -> Vec<u32> {
    all.iter()
        .filter_map(|event| match event {
            Event::Reconnecting { attempt, .. } => Some(*attempt),
            _ => None,
        })
        .collect()
}
