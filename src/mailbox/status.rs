//! What the handles read about the connection without asking the driver:
//! the socket's state (and who waits for it to change), the RTT and the
//! stats.

use std::task::Waker;
use std::time::Duration;

use crate::event::SocketState;
use crate::stats::Stats;
use crate::time::Instant;

#[derive(Default)]
pub(super) struct Status {
    pub(super) rtt: Option<Duration>,
    pub(super) stats: Stats,
    /// Since when the current Websocket is open (`stats.time_connected`
    /// holds the time of the past ones).
    pub(super) open_since: Option<Instant>,
    /// Where the current Websocket is (for a `Socket`), and who waits for
    /// it to change.
    pub(super) state: SocketState,
    pub(super) state_waiters: Vec<Waker>,
    /// Counts the state's changes (a waiter compares it with what it saw).
    pub(super) state_changes: u64,
}
