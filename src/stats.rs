//! Counters a connection keeps over its whole life, across reconnects.

/// What a connection has done so far (see [`Connection::stats`](crate::Connection::stats)).
///
/// With [`Event::Down`](crate::Event::Down)'s `unsent` and the frames
/// returned in errors, `frames_written` accounts for every frame the
/// application sent: each was either written to the socket or given back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Application frames written to the socket and flushed (keepalive
    /// probes not included).
    pub frames_written: u64,
    /// Frames read from the server (pings and pongs included).
    pub frames_received: u64,
}
