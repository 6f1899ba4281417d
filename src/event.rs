//! Events: what the connection tells its owner, one message at a time, as
//! Gun does (`gun_up`, `gun_upgrade`, `gun_response`, `gun_ws`, `gun_error`,
//! `gun_down`).

use std::fmt;
use std::time::Duration;

use http::{HeaderMap, StatusCode};

use crate::error::Error;
use crate::frame::{CloseFrame, Frame};

/// Names one Websocket upgrade, like Gun's `StreamRef`. Every call to
/// [`Connection::ws_upgrade`](crate::Connection::ws_upgrade) returns a new
/// one; frames are sent on it and events carry it. A `StreamRef` goes stale
/// when its connection goes down: sending on it then fails with
/// [`ErrorKind::StaleStream`](crate::ErrorKind::StaleStream).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamRef(pub(crate) u64);

impl fmt::Debug for StreamRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamRef({})", self.0)
    }
}

impl fmt::Display for StreamRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What happened on a connection. Each event carries exactly one fact; each
/// [`Event::Frame`] exactly one frame.
///
/// Its `Debug` output shows response header values only for a few harmless
/// headers (`sec-websocket-protocol`, `content-type`...): a `set-cookie`
/// from the server is shown as `<redacted>`. The headers themselves are
/// untouched.
#[derive(Clone)]
#[non_exhaustive]
pub enum Event {
    /// The connection is up (Gun's `gun_up`): natively, TCP (and TLS) are
    /// connected and an upgrade can go out; in a browser, which has no
    /// connection below the WebSocket, the connection is ready to upgrade.
    ///
    /// After a reconnect the Websocket is *not* upgraded again unless
    /// [`Options::auto_upgrade`](crate::Options::auto_upgrade) is set: call
    /// [`Connection::ws_upgrade`](crate::Connection::ws_upgrade).
    Up {
        /// The number of this connection attempt since `open` (1 for the
        /// first): above 1, this is a reconnect.
        attempt: u32,
    },
    /// The Websocket upgrade succeeded (Gun's `gun_upgrade`).
    Upgraded {
        /// The upgrade this answers.
        stream: StreamRef,
        /// The subprotocol the server chose, if any (always one the client offered).
        protocol: Option<String>,
        /// The response headers (natively; in a browser only the
        /// `sec-websocket-protocol` and `sec-websocket-extensions` values
        /// are known).
        headers: HeaderMap,
    },
    /// The Websocket upgrade failed (Gun's `gun_response` to an upgrade).
    UpgradeFailed {
        /// The upgrade this answers.
        stream: StreamRef,
        /// The HTTP status, when the server answered with one. Always
        /// `None` in a browser, which hides it from scripts.
        status: Option<StatusCode>,
        /// The response headers (empty in a browser).
        headers: HeaderMap,
        /// Why, for people and for matching.
        error: Error,
    },
    /// One frame from the server (Gun's `gun_ws`).
    Frame {
        /// The Websocket it arrived on.
        stream: StreamRef,
        /// The frame.
        frame: Frame,
    },
    /// Something went wrong that does not, by itself, take the connection
    /// down (Gun's `gun_error`): a connect attempt failed, frames were sent
    /// on a stale stream (they are in [`Error::unsent`]), and so on.
    Error {
        /// The Websocket concerned, if any.
        stream: Option<StreamRef>,
        /// What went wrong.
        error: Error,
    },
    /// The connection went down (Gun's `gun_down`).
    Down {
        /// Why.
        reason: DownReason,
        /// The Websockets (and upgrades in progress) that died with it.
        killed_streams: Vec<StreamRef>,
        /// Frames that were queued but not confirmed written to the socket,
        /// in the order they were sent: they did not reach the server.
        unsent: Vec<Frame>,
        /// Whether wstether will reconnect (by the retry policy). When
        /// `false` this is the last event and the event stream ends.
        will_reconnect: bool,
    },
    /// A reconnect attempt is scheduled.
    Reconnecting {
        /// The number of the attempt that will be made (counted since `open`).
        attempt: u32,
        /// How long until it is made.
        delay: Duration,
    },
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers = |headers: &HeaderMap| crate::redact::Headers::from_http(headers);
        match self {
            Event::Up { attempt } => f.debug_struct("Up").field("attempt", attempt).finish(),
            Event::Upgraded {
                stream,
                protocol,
                headers: received,
            } => f
                .debug_struct("Upgraded")
                .field("stream", stream)
                .field("protocol", protocol)
                .field("headers", &headers(received))
                .finish(),
            Event::UpgradeFailed {
                stream,
                status,
                headers: received,
                error,
            } => f
                .debug_struct("UpgradeFailed")
                .field("stream", stream)
                .field("status", status)
                .field("headers", &headers(received))
                .field("error", error)
                .finish(),
            Event::Frame { stream, frame } => f
                .debug_struct("Frame")
                .field("stream", stream)
                .field("frame", frame)
                .finish(),
            Event::Error { stream, error } => f
                .debug_struct("Error")
                .field("stream", stream)
                .field("error", error)
                .finish(),
            Event::Down {
                reason,
                killed_streams,
                unsent,
                will_reconnect,
            } => f
                .debug_struct("Down")
                .field("reason", reason)
                .field("killed_streams", killed_streams)
                .field("unsent", unsent)
                .field("will_reconnect", will_reconnect)
                .finish(),
            Event::Reconnecting { attempt, delay } => f
                .debug_struct("Reconnecting")
                .field("attempt", attempt)
                .field("delay", delay)
                .finish(),
        }
    }
}

/// Why the connection went down.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum DownReason {
    /// The server sent a close frame (code 1005 when it had none).
    ClosedByPeer(CloseFrame),
    /// The application closed: it sent a close frame or called
    /// [`Connection::shutdown`](crate::Connection::shutdown). No reconnect.
    Shutdown,
    /// The keepalive deadline passed with nothing heard from the peer.
    PeerDead,
    /// The server refused the upgrade; natively its answer used up the
    /// HTTP connection, so a new one is made by the retry policy.
    UpgradeRejected,
    /// The socket failed (reset, protocol error, TLS error...), closing as
    /// 1006 from the application's point of view.
    Error(Error),
}

impl fmt::Display for DownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DownReason::ClosedByPeer(close) => {
                write!(f, "closed by peer ({} {:?})", close.code, close.reason)
            }
            DownReason::Shutdown => f.write_str("shut down"),
            DownReason::PeerDead => f.write_str("peer silent past the keepalive deadline"),
            DownReason::UpgradeRejected => f.write_str("upgrade rejected"),
            DownReason::Error(error) => write!(f, "{error}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_response_header_values_off_the_safe_list() {
        let mut headers = HeaderMap::new();
        headers.insert("set-cookie", "session=SECRET".parse().unwrap());
        headers.insert("sec-websocket-protocol", "chat".parse().unwrap());
        let event = Event::Upgraded {
            stream: StreamRef(1),
            protocol: Some("chat".into()),
            headers,
        };
        let shown = format!("{event:?} {event:#?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(
            shown.contains("<redacted>") && shown.contains("\"chat\""),
            "{shown}"
        );
    }
}
