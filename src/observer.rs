//! The observer hook: Gun's `gun_event` for metrics. A connection tells its
//! [`Observer`] (set with [`Options::observer`](crate::Options::observer))
//! about each step: connect, upgrade, every frame sent and received,
//! disconnect, reconnect and terminate, with durations.
//!
//! The calls come from the connection's own task, in order, as each fact
//! happens; they carry no payload (only the opcode and the size) and cost
//! nothing when no observer is set.

use std::time::Duration;

use http::StatusCode;

use crate::error::Error;
use crate::event::{DownReason, StreamRef};
use crate::frame::Frame;
use crate::rt::MaybeSendSync;

/// The kind of a frame, as the observer is told about it (no payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Opcode {
    /// A text message.
    Text,
    /// A binary message.
    Binary,
    /// A ping.
    Ping,
    /// A pong.
    Pong,
    /// A close frame.
    Close,
}

impl Opcode {
    /// The opcode of `frame`.
    pub fn of(frame: &Frame) -> Opcode {
        match frame {
            Frame::Text(_) => Opcode::Text,
            Frame::Binary(_) => Opcode::Binary,
            Frame::Ping(_) => Opcode::Ping,
            Frame::Pong(_) => Opcode::Pong,
            Frame::Close(_) => Opcode::Close,
        }
    }

    /// Whether it is a message (text or binary), not a control frame.
    pub fn is_message(self) -> bool {
        matches!(self, Opcode::Text | Opcode::Binary)
    }
}

/// One frame as the observer sees it: what, how big, and whose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FrameInfo {
    /// The frame's kind.
    pub opcode: Opcode,
    /// Its payload length in bytes (as [`Frame::len`] counts it).
    pub len: usize,
    /// For a frame sent: `true` when it is the connection's own (a
    /// keepalive probe, the close frame of
    /// [`Connection::shutdown`](crate::Connection::shutdown)), not one the
    /// application sent; such frames are not counted in
    /// [`Stats`](crate::Stats). Always `false` for a frame received.
    pub internal: bool,
}

/// Told about each step of a connection's life, like Gun's `gun_event`
/// callbacks: for metrics and tracing of your own. Every method has an
/// empty default; implement those you need. Set it with
/// [`Options::observer`](crate::Options::observer).
///
/// Calls are made from the connection's task, in the order things happen,
/// after the connection's own bookkeeping for that step is done. They must
/// be quick (the task waits for them) and must not block.
///
/// **Panics.** Natively a panicking observer is caught: the panic is
/// logged once (`tracing` error), the observer is never called again on
/// that connection, and the connection goes on untouched; no frame is
/// lost or counted twice. In a browser a panic cannot be caught
/// (`wasm32-unknown-unknown` aborts), so an observer there must not panic.
///
/// What is counted matches [`Stats`](crate::Stats): the frames reported by
/// [`Observer::frame_sent`] with `internal == false` are those counted in
/// `Stats::frames_written` (and their sizes in `Stats::bytes_written` for
/// messages), and every frame reported by [`Observer::frame_received`] is
/// counted in `Stats::frames_received`.
///
/// **Browser:** there is no connection below the WebSocket, so
/// [`Observer::connect_start`] and [`Observer::connect_end`] come together
/// and take no time; the whole opening is timed by
/// [`Observer::upgrade_answered`]. Ping and pong frames are never seen
/// there (the browser handles them).
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
/// use wstether::{FrameInfo, Observer, Options, StreamRef};
///
/// #[derive(Default)]
/// struct Bytes(AtomicU64, AtomicU64);
///
/// impl Observer for Bytes {
///     fn frame_sent(&self, _stream: StreamRef, frame: FrameInfo) {
///         self.0.fetch_add(frame.len as u64, Ordering::Relaxed);
///     }
///     fn frame_received(&self, _stream: StreamRef, frame: FrameInfo) {
///         self.1.fetch_add(frame.len as u64, Ordering::Relaxed);
///     }
/// }
///
/// let options = Options::default().observer(Arc::new(Bytes::default()));
/// # let _ = options;
/// ```
#[allow(unused_variables)]
pub trait Observer: MaybeSendSync {
    /// A connect attempt starts (`attempt` counts every attempt since
    /// `open`, from 1). Natively: name resolution, TCP (through the proxy,
    /// if any, with its handshake) and, for `wss`, the TLS handshake, which
    /// is also timed apart ([`Observer::tls_handshake`]).
    fn connect_start(&self, connection: u64, attempt: u32) {}

    /// Natively, for `wss`: the TLS handshake with the server succeeded
    /// after `duration`, just before [`Observer::connect_end`] of the same
    /// attempt (whose duration includes it). A failed handshake is a
    /// `connect_end` with an [`ErrorKind::Tls`](crate::ErrorKind::Tls)
    /// error. The TLS handshake with an `https://` proxy is not counted
    /// here (it is part of the connect). **Browser:** never called (the
    /// browser does TLS itself and does not tell).
    fn tls_handshake(&self, connection: u64, attempt: u32, duration: Duration) {}

    /// The connect attempt ended after `duration`: connected when `error`
    /// is `None`.
    fn connect_end(
        &self,
        connection: u64,
        attempt: u32,
        duration: Duration,
        error: Option<&Error>,
    ) {
    }

    /// An upgrade request goes out on `stream` (the application's, or one
    /// made by [`Options::auto_upgrade`](crate::Options::auto_upgrade)).
    fn upgrade_sent(&self, stream: StreamRef) {}

    /// The upgrade of `stream` was answered, `duration` after it was sent:
    /// accepted (`error` is `None`, `status` is 101, `protocol` the
    /// subprotocol chosen), refused (`status` is the server's answer), or
    /// failed without an answer (timeout, connection lost; `status` is
    /// `None`). **Browser:** the status is never known (`Some(101)` on
    /// success, `None` otherwise).
    fn upgrade_answered(
        &self,
        stream: StreamRef,
        status: Option<StatusCode>,
        protocol: Option<&str>,
        duration: Duration,
        error: Option<&Error>,
    ) {
    }

    /// A frame was written to the socket (flushed; in a browser, it left
    /// the send buffer). Natively the pongs that answer the server's pings
    /// are written by the WebSocket layer itself and not reported.
    fn frame_sent(&self, stream: StreamRef, frame: FrameInfo) {}

    /// A frame was read from the socket (before any filtering: silenced
    /// pings and hidden heartbeat replies are reported too).
    fn frame_received(&self, stream: StreamRef, frame: FrameInfo) {}

    /// The connection went down (the same fact as
    /// [`Event::Down`](crate::Event::Down)), after `connected_for` with a
    /// transport up (zero if it never came up).
    fn disconnect(&self, connection: u64, reason: &DownReason, connected_for: Duration) {}

    /// A reconnect is scheduled (the same fact as
    /// [`Event::Reconnecting`](crate::Event::Reconnecting)).
    fn reconnect_scheduled(&self, connection: u64, attempt: u32, delay: Duration) {}

    /// The connection has ended for good, `lifetime` after `open`; no call
    /// follows.
    fn terminate(&self, connection: u64, lifetime: Duration) {}
}
