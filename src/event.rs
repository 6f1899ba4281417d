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
///
/// It displays as `#connection.stream`: `#3.2` is the second upgrade on
/// the third [`Connection`](crate::Connection) opened in this process (in
/// a browser: by this wasm module), and its `Debug` form is
/// `StreamRef(#3.2)`. The connection number stays the same across
/// reconnects; the stream number counts every upgrade of that connection,
/// including those [`Options::auto_upgrade`](crate::Options::auto_upgrade)
/// makes.
/// `StreamRef`s compare by connection, then by stream, so later upgrades
/// of a connection are greater. The same on both targets; the JavaScript
/// facade hands out streams as numbers and names them with
/// `WsTether.streamName(stream)`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamRef(pub(crate) u64);

impl StreamRef {
    /// The process-wide number of the connection (from 1).
    fn connection(self) -> u64 {
        self.0 >> 32
    }

    /// The upgrade's number on its connection (from 1).
    fn stream(self) -> u64 {
        self.0 & 0xffff_ffff
    }
}

impl fmt::Debug for StreamRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamRef({self})")
    }
}

impl fmt::Display for StreamRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.connection(), self.stream())
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
    /// connected and an upgrade can go out.
    ///
    /// **Browser:** `Up` is logical. A browser has no connection below the
    /// WebSocket, so `Up` comes at once, before anything reached the
    /// server; the network is first used by the upgrade, and a server that
    /// cannot be reached shows as [`Event::UpgradeFailed`], not as a failed
    /// connect.
    ///
    /// After a reconnect the Websocket is *not* upgraded again unless
    /// [`Options::auto_upgrade`](crate::Options::auto_upgrade) is set: call
    /// [`Connection::ws_upgrade`](crate::Connection::ws_upgrade).
    Up {
        /// The number of this connection attempt since `open`, counting the
        /// attempts that failed: 1 only when the first attempt succeeded,
        /// and above 1 after a failed attempt or a reconnect.
        attempt: u32,
    },
    /// The Websocket upgrade succeeded (Gun's `gun_upgrade`): frames can be
    /// sent on `stream`. In a browser this is the `WebSocket`'s `open`
    /// event. Fields may be added: match it with `..`.
    #[non_exhaustive]
    Upgraded {
        /// The upgrade this answers.
        stream: StreamRef,
        /// The subprotocol the server chose, if any (always one the client offered).
        protocol: Option<String>,
        /// The response headers. **Browser:** only the
        /// `sec-websocket-protocol` and `sec-websocket-extensions` values
        /// are known (the browser hides the rest from scripts). The
        /// negotiated extensions (permessage-deflate, see
        /// [`Options::compression`](crate::Options::compression)) are its
        /// `sec-websocket-extensions`, also given by
        /// [`Event::extensions`].
        headers: HeaderMap,
        /// Natively: the HTTP version the Websocket was opened with,
        /// [`Version::HTTP_11`](http::Version::HTTP_11) (a `101`) or
        /// [`Version::HTTP_2`](http::Version::HTTP_2) (an extended CONNECT,
        /// RFC 8441; see [`Options::http2`](crate::Options::http2)). Not in
        /// the browser build, where the browser chooses and does not say;
        /// [`Event::http_version`] reads it on both targets.
        #[cfg(native)]
        #[cfg_attr(docsrs, doc(cfg(not(target_arch = "wasm32"))))]
        http_version: http::Version,
    },
    /// The Websocket upgrade failed (Gun's `gun_response` to an upgrade),
    /// or did not finish before the upgrade deadline
    /// ([`ErrorKind::Timeout`](crate::ErrorKind::Timeout)). The connection
    /// goes down with it ([`Event::Down`]).
    ///
    /// **Browser:** the browser tells scripts only that the `WebSocket` did
    /// not open, so a refused upgrade, an unreachable server and a TLS
    /// failure all look the same here: `status` is `None`, `headers` is
    /// empty and the error's kind is
    /// [`ErrorKind::Upgrade`](crate::ErrorKind::Upgrade) (or
    /// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout)).
    UpgradeFailed {
        /// The upgrade this answers.
        stream: StreamRef,
        /// The HTTP status, when the server answered with one. **Browser:**
        /// always `None` (the browser hides it from scripts).
        status: Option<StatusCode>,
        /// The response headers. **Browser:** always empty.
        headers: HeaderMap,
        /// Why, for people and for matching.
        error: Error,
    },
    /// One frame from the server (Gun's `gun_ws`). A close frame is
    /// followed by [`Event::Down`] with
    /// [`DownReason::ClosedByPeer`].
    ///
    /// **Browser:** never a ping or pong frame (the browser answers pings
    /// itself and shows neither to scripts), and, once the application has
    /// sent a close frame, the browser drops the messages still arriving
    /// before the server's close.
    Frame {
        /// The Websocket it arrived on.
        stream: StreamRef,
        /// The frame.
        frame: Frame,
    },
    /// Something went wrong that does not, by itself, take the connection
    /// down (Gun's `gun_error`): a connect attempt failed, frames were sent
    /// on a stale stream (they are in [`Error::unsent`]), and so on.
    ///
    /// **Browser:** connect attempts do not fail (see [`Event::Up`]); an
    /// unreachable server is reported by [`Event::UpgradeFailed`].
    ///
    /// A first connection that gives up ends with one, `stream: None`,
    /// just before its final `Down`, on both targets (see
    /// [`Retry`](crate::Retry)'s "The first connection").
    Error {
        /// The Websocket concerned, if any.
        stream: Option<StreamRef>,
        /// What went wrong.
        error: Error,
    },
    /// The connection went down (Gun's `gun_down`). The same on both
    /// targets, except for the reasons a browser can tell apart (see
    /// [`DownReason`]). A first connection that gives up always ends with
    /// one, even when no `Up` came before it (see
    /// [`Retry`](crate::Retry)'s "The first connection").
    Down {
        /// Why.
        reason: DownReason,
        /// The Websockets (and upgrades in progress) that died with it.
        killed_streams: Vec<StreamRef>,
        /// Frames that were queued but not confirmed written to the socket,
        /// in the order they were sent: they did not reach the server.
        /// **Browser:** "written" means the frame has left the browser's
        /// send buffer (`bufferedAmount`).
        unsent: Vec<Frame>,
        /// Whether wstether will reconnect (by the retry policy). When
        /// `false` this is the last event and the event stream ends.
        will_reconnect: bool,
    },
    /// A reconnect attempt is scheduled (by
    /// [`Options::retry`](crate::Options::retry)). The same on both targets.
    Reconnecting {
        /// The number of the attempt that will be made (counted since `open`).
        attempt: u32,
        /// How long until it is made.
        delay: Duration,
    },
}

impl Event {
    /// For [`Event::Upgraded`]: the HTTP version the Websocket was opened
    /// with (HTTP/1.1 or HTTP/2, see [`Options::http2`](crate::Options::http2));
    /// `None` for another event, and always in a browser, which chooses
    /// its own transport and does not say which.
    pub fn http_version(&self) -> Option<http::Version> {
        match self {
            #[cfg(native)]
            Event::Upgraded { http_version, .. } => Some(*http_version),
            _ => None,
        }
    }

    /// For [`Event::Upgraded`]: the extensions in use, as the server's
    /// `Sec-WebSocket-Extensions` says them (for example
    /// `"permessage-deflate; client_max_window_bits=15"`); `None` when
    /// none was negotiated, or for another event. Natively, only an
    /// extension the client offered gets this far
    /// ([`Options::compression`](crate::Options::compression)); in a
    /// browser, whatever the browser agreed.
    pub fn extensions(&self) -> Option<&str> {
        match self {
            Event::Upgraded { headers, .. } => headers
                .get(http::header::SEC_WEBSOCKET_EXTENSIONS)
                .and_then(|value| value.to_str().ok()),
            _ => None,
        }
    }
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
                ..
            } => {
                let mut shown = f.debug_struct("Upgraded");
                shown
                    .field("stream", stream)
                    .field("protocol", protocol)
                    .field("headers", &headers(received));
                if let Some(version) = self.http_version() {
                    shown.field("http_version", &version);
                }
                shown.finish()
            }
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
///
/// **Browser:** a browser does not show why a `WebSocket` failed, so
/// [`DownReason::UpgradeRejected`] never occurs there (a failed upgrade is
/// [`DownReason::Error`]) and a socket failure is a [`DownReason::Error`]
/// that carries no cause (kind [`ErrorKind::Io`](crate::ErrorKind::Io)).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum DownReason {
    /// The server sent a close frame (code 1005 when it had none). The same
    /// on both targets.
    ClosedByPeer(CloseFrame),
    /// The application closed: it sent a close frame or called
    /// [`Connection::shutdown`](crate::Connection::shutdown). No reconnect.
    /// Also when the server did not answer the close frame before the close
    /// deadline. Also when every [`Connection`](crate::Connection) handle
    /// was dropped (Gun's `close/1`): the connection closes at once and the
    /// frames not yet written are in `unsent`. The same on both targets.
    Shutdown,
    /// The keepalive deadline passed with nothing heard from the peer (see
    /// [`Options::keepalive`](crate::Options::keepalive)): natively, any
    /// frame from the server counts, pongs included; in a browser, any
    /// message counts, since pongs are not visible there.
    PeerDead,
    /// The server refused the upgrade with an HTTP answer, which used up
    /// the HTTP connection: a new one is made by the retry policy.
    /// **Browser:** never; a failed upgrade there is [`DownReason::Error`].
    UpgradeRejected,
    /// The socket failed (reset, protocol error, TLS error...), closing as
    /// 1006 from the application's point of view; also a failed upgrade
    /// without an HTTP answer (timeout, unreachable). **Browser:** the
    /// browser gives no cause for a failed socket (kind
    /// [`ErrorKind::Io`](crate::ErrorKind::Io)) or a failed upgrade (kind
    /// [`ErrorKind::Upgrade`](crate::ErrorKind::Upgrade)).
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

/// Where a [`Socket`](crate::Socket) is, as a browser's `readyState` says
/// it, with reconnecting added. The same on both targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SocketState {
    /// Opening its first Websocket.
    #[default]
    Connecting,
    /// A Websocket is open: sends are written now.
    Open,
    /// The Websocket was lost and a new one is on its way (sends are held,
    /// see [`Options::hold_while_down`](crate::Options::hold_while_down)).
    Reconnecting,
    /// A close was asked for: what is queued goes out, then the close
    /// handshake; nothing more is accepted.
    Closing,
    /// Closed for good: it will not reconnect.
    Closed,
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
            #[cfg(native)]
            http_version: http::Version::HTTP_11,
        };
        let shown = format!("{event:?} {event:#?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(
            shown.contains("<redacted>") && shown.contains("\"chat\""),
            "{shown}"
        );
    }

    #[test]
    fn stream_ref_reads_as_connection_dot_stream() {
        let first = StreamRef(1 << 32 | 1);
        assert_eq!(first.to_string(), "#1.1");
        assert_eq!(format!("{first:?}"), "StreamRef(#1.1)");
        let later = StreamRef(3 << 32 | 2);
        assert_eq!(later.to_string(), "#3.2");
        assert_eq!(format!("{later:?}"), "StreamRef(#3.2)");
        assert_eq!(
            format!("{:?}", [first, later]),
            "[StreamRef(#1.1), StreamRef(#3.2)]"
        );
        let extremes = StreamRef(u64::from(u32::MAX) << 32 | u64::from(u32::MAX));
        assert_eq!(extremes.to_string(), "#4294967295.4294967295");
    }

    #[test]
    fn stream_refs_order_by_connection_then_stream() {
        let refs = [
            StreamRef(1 << 32 | 1),
            StreamRef(1 << 32 | 2),
            StreamRef(1 << 32 | 10),
            StreamRef(2 << 32 | 1),
            StreamRef(10 << 32 | 1),
        ];
        for pair in refs.windows(2) {
            assert!(pair[0] < pair[1], "{} < {}", pair[0], pair[1]);
        }
    }
}
