//! Keepalive: when a probe goes out, what it is, and how its reply is
//! recognised.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::limits::{check_positive_duration, invalid};
use crate::error::Error;
use crate::frame::Frame;
use crate::rt::MaybeSendSync;

/// Recognises the server's reply to a heartbeat message
/// ([`Heartbeat::Message`]'s `is_reply`): any `Fn(&Frame) -> bool` that
/// is [`MaybeSendSync`]. Implemented for every such closure; build one
/// with `Arc::new(|frame: &Frame| ..)` or use [`Heartbeat::message`]:
///
/// ```
/// use std::sync::Arc;
/// use wstether::{Frame, Heartbeat};
/// let heartbeat = Heartbeat::Message {
///     frame: Frame::text("ping"),
///     is_reply: Arc::new(|frame: &Frame| *frame == Frame::text("pong")),
///     hide_replies: false,
/// };
/// # let _ = heartbeat;
/// ```
pub trait ReplyMatcher: Fn(&Frame) -> bool + MaybeSendSync {}

impl<F: ?Sized + Fn(&Frame) -> bool + MaybeSendSync> ReplyMatcher for F {}

/// Keeps the connection alive and notices a dead peer.
///
/// Every `interval` without traffic from the server, a probe goes out
/// (natively a ping frame; in a browser, which cannot send pings, the
/// [`Heartbeat::Message`] you configure). Anything heard from the server
/// counts as proof of life; if nothing is heard within `timeout` of a
/// probe, the peer is declared dead: `Down { reason: PeerDead }` and a
/// reconnect. The round-trip time of each answered probe is kept, see
/// [`Connection::rtt`](crate::Connection::rtt).
#[derive(Clone)]
pub struct Keepalive {
    pub(crate) interval: Duration,
    pub(crate) timeout: Duration,
    pub(crate) heartbeat: Heartbeat,
}

impl Keepalive {
    /// The peer's answer time of [`Keepalive::every`], until
    /// [`Keepalive::timeout`] says otherwise: 10 s.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// A keepalive that probes after `interval` of silence, with ping
    /// frames, and gives the peer [`Keepalive::DEFAULT_TIMEOUT`] (10 s) to
    /// answer unless [`Keepalive::timeout`] says otherwise:
    ///
    /// ```
    /// use std::time::Duration;
    /// use wstether::Keepalive;
    /// let keepalive = Keepalive::every(Duration::from_secs(15)).timeout(Duration::from_secs(5));
    /// # let _ = keepalive;
    /// ```
    ///
    /// Both durations must be longer than zero and at most 24 days
    /// ([`ErrorKind::InvalidOption`](crate::ErrorKind::InvalidOption) otherwise, at `open`).
    ///
    /// A browser cannot send pings: give it a heartbeat message with
    /// [`Keepalive::heartbeat`], or [`Connection::open`](crate::Connection::open)
    /// refuses the keepalive there with [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported).
    pub fn every(interval: Duration) -> Keepalive {
        Keepalive {
            interval,
            timeout: Keepalive::DEFAULT_TIMEOUT,
            heartbeat: Heartbeat::Ping,
        }
    }

    /// How long the peer has to answer a probe before it is declared dead.
    pub fn timeout(mut self, timeout: Duration) -> Keepalive {
        self.timeout = timeout;
        self
    }

    /// Uses this heartbeat instead of ping frames.
    pub fn heartbeat(mut self, heartbeat: Heartbeat) -> Keepalive {
        self.heartbeat = heartbeat;
        self
    }

    pub(super) fn default_for_target() -> Option<Keepalive> {
        if cfg!(browser) {
            None
        } else {
            Some(Keepalive::every(Duration::from_secs(20)).timeout(Duration::from_secs(10)))
        }
    }

    pub(super) fn validate(&self) -> Result<(), Error> {
        check_positive_duration("keepalive interval", self.interval)?;
        check_positive_duration("keepalive timeout", self.timeout)?;
        if let Heartbeat::Message { frame, .. } = &self.heartbeat {
            if !matches!(frame, Frame::Text(_) | Frame::Binary(_)) {
                return Err(invalid("a heartbeat message is a text or binary frame"));
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Keepalive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keepalive")
            .field("interval", &self.interval)
            .field("timeout", &self.timeout)
            .field("heartbeat", &self.heartbeat)
            .finish()
    }
}

/// What a keepalive probe is.
#[derive(Clone)]
#[non_exhaustive]
pub enum Heartbeat {
    /// A ping frame; the matching pong measures the round trip (the
    /// default of [`Keepalive::every`]).
    ///
    /// Native only: a browser cannot send pings, and
    /// [`Connection::open`](crate::Connection::open) refuses it there with
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported).
    Ping,
    /// An application message (e.g. text `"ping"`), for browsers and for
    /// servers that expect an app-level heartbeat: the server must answer
    /// it. The same on both targets; the only keepalive a browser can send.
    Message {
        /// The frame sent as a probe (text or binary).
        frame: Frame,
        /// Recognises the server's reply, to measure the round trip (see
        /// [`ReplyMatcher`]).
        is_reply: Arc<dyn ReplyMatcher>,
        /// Whether replies are kept out of the event stream.
        hide_replies: bool,
    },
}

impl Heartbeat {
    /// A heartbeat message and a matcher for its reply; replies are hidden
    /// from the event stream. The matcher is [`MaybeSendSync`]: `Send +
    /// Sync` natively, any closure in a browser.
    pub fn message(
        frame: Frame,
        is_reply: impl Fn(&Frame) -> bool + MaybeSendSync + 'static,
    ) -> Heartbeat {
        Heartbeat::Message {
            frame,
            is_reply: Arc::new(is_reply),
            hide_replies: true,
        }
    }

    /// A heartbeat that the server echoes: the reply is the same frame.
    pub fn echo(frame: Frame) -> Heartbeat {
        let expected = frame.clone();
        Heartbeat::Message {
            frame,
            is_reply: Arc::new(move |reply: &Frame| *reply == expected),
            hide_replies: true,
        }
    }
}

impl fmt::Debug for Heartbeat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Heartbeat::Ping => f.write_str("Ping"),
            Heartbeat::Message {
                frame,
                hide_replies,
                ..
            } => f
                .debug_struct("Message")
                .field("frame", frame)
                .field("hide_replies", hide_replies)
                .finish(),
        }
    }
}
