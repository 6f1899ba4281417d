//! One error type for everything wstether reports: a [`ErrorKind`] to match
//! on, a message for people, an optional source, and the frames that were
//! not sent, so that nothing is lost silently.

use std::fmt;
use std::sync::Arc;

use crate::frame::Frame;

type Source = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong, for matching. New kinds may be added.
///
/// **Browser:** a browser tells scripts little about a failed `WebSocket`,
/// so some kinds never occur there: [`ErrorKind::Connect`],
/// [`ErrorKind::Tls`], [`ErrorKind::Protocol`] and
/// [`ErrorKind::InvalidUtf8`]. Each kind below says what it is in a
/// browser when that differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The URL could not be parsed, or has no host.
    InvalidUrl,
    /// The URL's scheme is not `ws` or `wss`.
    UnsupportedScheme,
    /// A header name or value is malformed (CR, LF, NUL...) or is one that
    /// the WebSocket handshake owns. **Browser:** also a subprotocol offered
    /// twice, which browsers refuse.
    InvalidHeader,
    /// The request path is malformed.
    InvalidPath,
    /// A close code that may not be sent. **Browser:** only 1000 and
    /// 3000–4999 may be sent there.
    InvalidCloseCode,
    /// A frame that may not be sent (control payload over 125 bytes, close
    /// reason over 123 bytes), or frames that one `ws_send`/`send` call
    /// cannot send because their payload exceeds
    /// [`Options::send_queue_bytes`](crate::Options::send_queue_bytes)
    /// (they could never fit); the frames come back with the error.
    InvalidFrame,
    /// An option is out of range or contradicts another.
    InvalidOption,
    /// This target cannot do what was asked. Never silently ignored.
    /// **Browser:** ping and pong frames, a ping keepalive, custom upgrade
    /// headers, extra root certificates, `read_buffer_size`, a
    /// `connect_timeout` other than the default, `silence_pings(false)`, a
    /// proxy choice (`Options::proxy`, `no_proxy`) and `tls_native_roots`;
    /// natively, nothing is refused this way today.
    Unsupported,
    /// The send queue is full; the frames come back with the error. The
    /// same on both targets. **Browser:** also the reason a connection went
    /// down when more than
    /// [`Options::event_queue_bytes`](crate::Options::event_queue_bytes)
    /// arrived unread (a browser cannot pause reading).
    QueueFull,
    /// The [`StreamRef`](crate::StreamRef) is not the connection's current
    /// Websocket (it is from before a reconnect, or was never upgraded).
    StaleStream,
    /// A [`Socket`](crate::Socket) is down (between a lost connection and
    /// the next upgrade): a send with
    /// [`Options::hold_while_down(false)`](crate::Options::hold_while_down)
    /// fails with it, and so do frames handed to a transport that then died
    /// (from [`Socket::recv`](crate::Socket::recv)); the frames come back
    /// with the error. The same on both targets.
    Disconnected,
    /// The connection has terminated (shut down, closed, or out of retries).
    Closed,
    /// Connecting (TCP) failed: the host did not resolve, or refused or
    /// reset the connection. **Browser:** never; connecting is part of the
    /// upgrade there, and a server that cannot be reached is an
    /// [`ErrorKind::Upgrade`].
    Connect,
    /// The TLS handshake or certificate verification failed.
    /// **Browser:** never; a TLS failure there is an [`ErrorKind::Upgrade`]
    /// (the browser does not say why).
    Tls,
    /// A connect or upgrade deadline passed: the TCP connection (and TLS
    /// handshake) took longer than
    /// [`Retry::connect_timeout`](crate::Retry::connect_timeout), or the
    /// server did not answer the upgrade within
    /// [`Options::upgrade_timeout`](crate::Options::upgrade_timeout) (then in
    /// [`Event::UpgradeFailed`](crate::Event::UpgradeFailed) and
    /// [`DownReason::Error`](crate::DownReason::Error)).
    ///
    /// Other deadlines are not errors: a server that does not answer the
    /// close handshake in time ends the connection as
    /// [`DownReason::Shutdown`](crate::DownReason::Shutdown), and the
    /// keepalive deadline as
    /// [`DownReason::PeerDead`](crate::DownReason::PeerDead).
    ///
    /// **Browser:** only the upgrade deadline, which covers the whole
    /// opening of the `WebSocket` (connecting, TLS and the upgrade).
    Timeout,
    /// The server refused the Websocket upgrade or answered it wrongly
    /// (natively the status and headers are in
    /// [`Event::UpgradeFailed`](crate::Event::UpgradeFailed)).
    /// **Browser:** any failure to open the `WebSocket` — refused upgrade,
    /// unreachable server, TLS failure — since the browser does not say
    /// which.
    Upgrade,
    /// The peer broke the WebSocket protocol (bad framing, fragmented
    /// control frame, reserved opcode...). **Browser:** never; the browser
    /// fails the socket itself, which shows as [`ErrorKind::Io`].
    Protocol,
    /// A text message was not valid UTF-8. **Browser:** never; the
    /// browser fails the socket itself, which shows as [`ErrorKind::Io`].
    InvalidUtf8,
    /// A compressed message (permessage-deflate, see
    /// [`Options::compression`](crate::Options::compression)) is not valid
    /// DEFLATE data: natively the connection closes with 1007 (its payload
    /// is not consistent with the message's type, as for invalid UTF-8).
    /// **Browser:** never; the browser fails the socket itself
    /// ([`ErrorKind::Io`]).
    InvalidCompressedData,
    /// A frame or message from the server exceeded the configured size
    /// limit: natively the connection closes with 1009. **Browser:** it
    /// closes with 1000 and the reason `"message too big"` (scripts may not
    /// send 1009).
    MessageTooBig,
    /// An I/O error on the socket (reset, broken pipe...). **Browser:** any
    /// failure of an open `WebSocket` (closed without a close frame, a
    /// frame the browser refused), as the browser does not say why.
    Io,
    /// The retry policy gave up. The same on both targets.
    RetriesExhausted,
    /// A proxy (see [`Proxy`](crate::Proxy)) could not be reached, refused
    /// the tunnel, or answered wrongly: a CONNECT answered with something
    /// other than 2xx (its status is in [`Error::proxy_status`]: 407 for
    /// missing or wrong credentials, 403 for a target the proxy does not
    /// allow, 502 when the proxy could not reach the target...), a SOCKS5
    /// proxy that refused the credentials or the connection, or a proxy
    /// environment variable that is not a proxy URL. Like
    /// [`ErrorKind::Connect`], it is followed by a retry with the retry
    /// policy's backoff, except refused credentials (407 or 401), after
    /// which the connection ends by default
    /// ([`Retry::proxy_decision`](crate::Retry::proxy_decision)). The
    /// message never shows credentials.
    /// **Browser:** never; a browser uses the system's proxy settings and
    /// does not tell scripts about them.
    Proxy,
    /// The server refused the upgrade with an HTTP status that the retry
    /// policy does not retry ([`Retry::decision`](crate::Retry::decision):
    /// by default 3xx, 4xx other than 408 and 429, and 401 without an
    /// upgrade provider), so the connection ends. Comes as an
    /// [`Event::Error`](crate::Event::Error) just before the final
    /// [`Event::Down`](crate::Event::Down); the message names the status.
    /// **Browser:** never (the browser hides the status).
    ///
    /// Also the error that ends the first connection when the server
    /// refused its last attempt with a status, retried or not (the first
    /// connection's budget is spent, see
    /// [`Retry::first_connection`](crate::Retry::first_connection)). The
    /// status is in [`Error::status`].
    UpgradeRefused,
    /// The upgrade provider ([`Options::auto_upgrade_with`](crate::Options::auto_upgrade_with))
    /// failed: its error is this error's
    /// [`source`](std::error::Error::source). Comes in
    /// [`Event::UpgradeFailed`](crate::Event::UpgradeFailed), then the
    /// connection goes down and the retry policy decides, as for any failed
    /// upgrade. The same on both targets.
    Provider,
    /// Natively: [`Connection::open`](crate::Connection::open) (or
    /// [`connect`](crate::connect)) was called outside a tokio runtime;
    /// wstether runs its connections on tokio. Call it from within one
    /// (`#[tokio::main]`, `Runtime::block_on`, or after `Runtime::enter`).
    /// **Browser:** never.
    NoRuntime,
    /// Natively, with [`Http2::Require`](crate::Http2::Require): the server
    /// did not choose HTTP/2, or did not enable the CONNECT protocol
    /// (RFC 8441's `SETTINGS_ENABLE_CONNECT_PROTOCOL`), so no Websocket
    /// can be opened over HTTP/2. A failed attempt, retried by the retry
    /// policy like a failed connect. **Browser:** never (`Require` is
    /// refused at `open`).
    Http2Unavailable,
    /// Natively, over HTTP/2: the server reset the stream that carries the
    /// Websocket (`RST_STREAM`; the message names its reason). Ends that
    /// Websocket like a reset TCP connection. **Browser:** never.
    StreamReset,
}

impl ErrorKind {
    fn describe(self) -> &'static str {
        match self {
            ErrorKind::InvalidUrl => "invalid URL",
            ErrorKind::UnsupportedScheme => "unsupported URL scheme",
            ErrorKind::InvalidHeader => "invalid header",
            ErrorKind::InvalidPath => "invalid path",
            ErrorKind::InvalidCloseCode => "invalid close code",
            ErrorKind::InvalidFrame => "invalid frame",
            ErrorKind::InvalidOption => "invalid option",
            ErrorKind::Unsupported => "unsupported on this target",
            ErrorKind::QueueFull => "send queue full",
            ErrorKind::StaleStream => "stale stream",
            ErrorKind::Disconnected => "disconnected",
            ErrorKind::Closed => "connection closed",
            ErrorKind::Connect => "connect failed",
            ErrorKind::Tls => "TLS error",
            ErrorKind::Timeout => "timed out",
            ErrorKind::Upgrade => "websocket upgrade failed",
            ErrorKind::Protocol => "websocket protocol error",
            ErrorKind::InvalidUtf8 => "invalid UTF-8 in a text message",
            ErrorKind::InvalidCompressedData => "invalid compressed data in a message",
            ErrorKind::MessageTooBig => "message too big",
            ErrorKind::Io => "I/O error",
            ErrorKind::RetriesExhausted => "retries exhausted",
            ErrorKind::Proxy => "proxy error",
            ErrorKind::UpgradeRefused => "upgrade refused, not retried",
            ErrorKind::Provider => "upgrade provider failed",
            ErrorKind::NoRuntime => "no tokio runtime",
            ErrorKind::Http2Unavailable => "HTTP/2 with the CONNECT protocol is unavailable",
            ErrorKind::StreamReset => "HTTP/2 stream reset by the server",
        }
    }
}

/// The error type of wstether.
#[derive(Clone)]
pub struct Error {
    inner: Box<Inner>,
}

#[derive(Clone)]
struct Inner {
    kind: ErrorKind,
    message: String,
    source: Option<Source>,
    unsent: Vec<Frame>,
    proxy_status: Option<http::StatusCode>,
    status: Option<http::StatusCode>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                source: None,
                unsent: Vec::new(),
                proxy_status: None,
                status: None,
            }),
        }
    }

    pub(crate) fn with_source(
        mut self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        self.inner.source = Some(Arc::new(source));
        self
    }

    /// The source of a boxed error (an upgrade provider's).
    pub(crate) fn with_boxed_source(
        mut self,
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    ) -> Error {
        self.inner.source = Some(Arc::from(source));
        self
    }

    pub(crate) fn with_status(mut self, status: http::StatusCode) -> Error {
        self.inner.status = Some(status);
        self
    }

    /// The HTTP status the server refused the upgrade with, for an
    /// [`ErrorKind::UpgradeRefused`] error (natively: a browser hides the
    /// status). `None` for every other error; a proxy's status is in
    /// [`Error::proxy_status`].
    pub fn status(&self) -> Option<http::StatusCode> {
        self.inner.status
    }

    pub(crate) fn with_unsent(mut self, frames: Vec<Frame>) -> Error {
        self.inner.unsent = frames;
        self
    }

    pub(crate) fn with_proxy_status(mut self, status: http::StatusCode) -> Error {
        self.inner.proxy_status = Some(status);
        self
    }

    /// The status a proxy answered a CONNECT with, for an
    /// [`ErrorKind::Proxy`] error from an HTTP proxy that refused the
    /// tunnel (`407 Proxy Authentication Required`, `403 Forbidden`,
    /// `502 Bad Gateway`...), and 407 for a SOCKS5 proxy that refused the
    /// user name and password or asked for credentials that were not given
    /// (so that [`Retry::proxy_decision`](crate::Retry::proxy_decision)
    /// treats refused credentials alike on both kinds of proxy). `None` for
    /// every other error, including other SOCKS5 refusals (the reply code
    /// is in the message) and a proxy that could not be reached.
    pub fn proxy_status(&self) -> Option<http::StatusCode> {
        self.inner.proxy_status
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The frames that were not sent because of this error (empty for most
    /// errors; the refused frames for [`ErrorKind::QueueFull`],
    /// [`ErrorKind::StaleStream`] and [`ErrorKind::Closed`]).
    pub fn unsent(&self) -> &[Frame] {
        &self.inner.unsent
    }

    /// Takes the unsent frames out of the error, to send them again.
    pub fn into_unsent(self) -> Vec<Frame> {
        self.inner.unsent
    }

    /// Whether the send queue was full (the frames are in [`Error::unsent`]).
    pub fn is_queue_full(&self) -> bool {
        self.kind() == ErrorKind::QueueFull
    }

    /// Whether a connect or upgrade deadline passed (see
    /// [`ErrorKind::Timeout`]).
    pub fn is_timeout(&self) -> bool {
        self.kind() == ErrorKind::Timeout
    }

    /// Whether the connection has terminated for good.
    pub fn is_closed(&self) -> bool {
        self.kind() == ErrorKind::Closed
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind);
        d.field("message", &self.inner.message);
        if let Some(source) = &self.inner.source {
            // Its `Display`, cut: a source's `Debug` may hold a whole
            // payload (tungstenite's "write buffer full" holds the frame).
            d.field("source", &format_args!("{:?}", Cut(&**source).to_string()));
        }
        if !self.inner.unsent.is_empty() {
            d.field("unsent", &self.inner.unsent.len());
        }
        if let Some(status) = self.inner.proxy_status {
            d.field("proxy_status", &status.as_u16());
        }
        if let Some(status) = self.inner.status {
            d.field("status", &status.as_u16());
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.inner.kind.describe())?;
        if !self.inner.message.is_empty() {
            write!(f, ": {}", self.inner.message)?;
        }
        if let Some(source) = &self.inner.source {
            write!(f, ": {}", Cut(&**source))?;
        }
        Ok(())
    }
}

/// A source's `Display`, cut at [`Cut::MAX_CHARS`] characters: a message
/// is for people, and one that quotes a payload must not print it whole.
struct Cut<'a>(&'a (dyn std::error::Error + Send + Sync));

impl Cut<'_> {
    const MAX_CHARS: usize = 200;
}

impl fmt::Display for Cut<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        /// Passes at most `left` characters on, then `…` once.
        struct Limit<'a, 'b> {
            out: &'a mut fmt::Formatter<'b>,
            left: usize,
            cut: bool,
        }
        impl fmt::Write for Limit<'_, '_> {
            fn write_str(&mut self, text: &str) -> fmt::Result {
                if self.cut {
                    return Ok(());
                }
                match text.char_indices().nth(self.left) {
                    Some((at, _)) => {
                        self.cut = true;
                        self.out.write_str(&text[..at])?;
                        self.out.write_str("…")
                    }
                    None => {
                        self.left -= text.chars().count();
                        self.out.write_str(text)
                    }
                }
            }
        }
        let mut limit = Limit {
            out: f,
            left: Self::MAX_CHARS,
            cut: false,
        };
        fmt::write(&mut limit, format_args!("{}", self.0))
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_ref()
            .map(|source| &**source as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_kind_message_and_source() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let err = Error::new(ErrorKind::Connect, "127.0.0.1:1").with_source(io);
        assert_eq!(err.to_string(), "connect failed: 127.0.0.1:1: refused");
        assert!(std::error::Error::source(&err).is_some());
    }

    /// Issue 21, finding 9: no `Debug` or `Display` of an error prints more
    /// than a 32-byte prefix of a payload held in its source, so its length
    /// is bounded (tungstenite's "write buffer full" carries the frame).
    #[cfg(native)]
    #[test]
    fn secrets_debug_of_an_error_wrapping_a_large_payload_is_bounded() {
        use tokio_tungstenite::tungstenite;
        let payload = vec![b'P'; 1 << 20];
        let long_message = std::io::Error::other("m".repeat(1 << 20));
        let long = Error::new(ErrorKind::Io, "").with_source(long_message);
        assert!(format!("{long:?} {long}").len() < 2048);
        let errors = [Error::new(ErrorKind::QueueFull, "").with_source(
            tungstenite::Error::WriteBufferFull(Box::new(tungstenite::Message::Binary(
                payload.clone().into(),
            ))),
        )];
        for error in errors {
            let event = crate::Event::Error {
                stream: None,
                error: error.clone(),
            };
            let down = crate::Event::Down {
                reason: crate::DownReason::Error(error.clone()),
                killed_streams: Vec::new(),
                unsent: Vec::new(),
                will_reconnect: false,
            };
            for shown in [
                format!("{error:?}"),
                format!("{error:#?}"),
                format!("{error}"),
                format!("{event:?}"),
                format!("{down:?}"),
            ] {
                assert!(
                    !shown.contains(&"P".repeat(33)) && !shown.contains(&"80, ".repeat(33)),
                    "more than 32 bytes of the payload shown ({} bytes)",
                    shown.len()
                );
                assert!(shown.len() < 2048, "{} bytes", shown.len());
            }
        }
    }

    #[test]
    fn unsent_frames_come_back() {
        let err = Error::new(ErrorKind::QueueFull, "").with_unsent(vec![Frame::text("a")]);
        assert!(err.is_queue_full());
        assert_eq!(err.into_unsent(), vec![Frame::text("a")]);
    }
}
