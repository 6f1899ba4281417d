//! Counters a connection keeps over its whole life, across reconnects.

use std::time::Duration;

/// What a connection has done so far (see [`Connection::stats`](crate::Connection::stats)).
///
/// With [`Event::Down`](crate::Event::Down)'s `unsent` and the frames
/// returned in errors, `frames_written` accounts for every frame the
/// application sent: each was either written to the socket or given back.
///
/// The counts are those an [`Observer`](crate::Observer) is told about:
/// `frames_written` is the number of [`Observer::frame_sent`](crate::Observer::frame_sent)
/// calls for frames that are not `internal`, `frames_received` the number
/// of [`Observer::frame_received`](crate::Observer::frame_received) calls.
/// They are updated by the connection's task after each of its turns, so
/// a snapshot may lag the events by one turn.
///
/// **Browser:** the same, except that ping and pong frames are never seen
/// there, and the RTT comes from heartbeat messages (see
/// [`Connection::rtt`](crate::Connection::rtt)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Application frames written to the socket and flushed (keepalive
    /// probes not included).
    pub frames_written: u64,
    /// Frames read from the server (pings and pongs included).
    pub frames_received: u64,
    /// Messages (text and binary frames) among `frames_written`.
    pub messages_written: u64,
    /// Messages (text and binary frames) among `frames_received`.
    pub messages_received: u64,
    /// Payload bytes of `messages_written`.
    pub bytes_written: u64,
    /// Payload bytes of `messages_received`.
    pub bytes_received: u64,
    /// How many times the connection came up again after the first time
    /// (each [`Event::Up`](crate::Event::Up) but the first).
    pub reconnects: u64,
    /// The round-trip time of the last answered keepalive probe (the same
    /// as [`Connection::rtt`](crate::Connection::rtt)); `None` until one is
    /// answered.
    pub last_rtt: Option<Duration>,
    /// The smoothed round-trip time over the answered probes, as TCP's
    /// SRTT (RFC 6298): the first sample, then 7/8 of the previous value
    /// plus 1/8 of each new sample.
    pub smoothed_rtt: Option<Duration>,
    /// How long Websockets of this connection have been open in total,
    /// from each [`Event::Upgraded`](crate::Event::Upgraded) to its
    /// [`Event::Down`](crate::Event::Down), the current one included.
    pub time_connected: Duration,
}
