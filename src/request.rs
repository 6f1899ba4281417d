//! Upgrade requests: the path, extra headers and subprotocols of a
//! Websocket upgrade, validated before anything is sent.

use std::fmt;

use http::header::HeaderValue;
use http::uri::PathAndQuery;

use crate::error::{Error, ErrorKind};
use crate::redact;

/// Headers that the WebSocket handshake itself writes: a user value would
/// contradict it, so they are refused rather than silently overridden.
const HANDSHAKE_HEADERS: &[&str] = &[
    "host",
    "connection",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-accept",
    "sec-websocket-extensions",
    "content-length",
    "transfer-encoding",
];

/// A Websocket upgrade request, like Gun's `ws_upgrade(Pid, Path, Headers)`.
///
/// ```
/// use wstether::Upgrade;
/// let upgrade = Upgrade::new("/chat")
///     .protocol("mychat")
///     .header("authorization", "Bearer abc");
/// ```
///
/// As in Gun, a `sec-websocket-protocol` header is read as the list of
/// subprotocols to offer. Headers the handshake owns (`host`, `upgrade`,
/// `sec-websocket-key`...) and malformed names or values (CR, LF, NUL) make
/// [`Connection::ws_upgrade_with`](crate::Connection::ws_upgrade_with) fail
/// with [`ErrorKind::InvalidHeader`].
///
/// Browser: a browser cannot send custom headers, only subprotocols, so an
/// upgrade with any header (other than `sec-websocket-protocol`, read as
/// subprotocols) is refused by `ws_upgrade_with` with
/// [`ErrorKind::Unsupported`]; a subprotocol offered twice is refused with
/// [`ErrorKind::InvalidHeader`]. Put a token in the path's query or in a
/// first message instead.
///
/// Its `Debug` output hides secrets: the query of the path becomes `?…`,
/// and header values are shown only for a few harmless headers
/// (`sec-websocket-protocol`, `user-agent`, `origin`, `accept-language`,
/// `content-type`...); every other value, `authorization` and `cookie`
/// included, is shown as `<redacted>`. Error messages never echo them
/// either.
#[derive(Clone, PartialEq, Eq)]
pub struct Upgrade {
    path: String,
    headers: Vec<(String, String)>,
    protocols: Vec<String>,
    flow: Option<u32>,
}

impl Upgrade {
    /// An upgrade of `path` (with its query, if any), e.g. `"/ws?room=1"`.
    pub fn new(path: impl Into<String>) -> Upgrade {
        Upgrade {
            path: path.into(),
            headers: Vec::new(),
            protocols: Vec::new(),
            flow: None,
        }
    }

    /// Adds a header to the upgrade request.
    ///
    /// Browser: refused when the upgrade is made
    /// ([`ErrorKind::Unsupported`]): a browser cannot send custom headers.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Upgrade {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Adds headers to the upgrade request.
    ///
    /// Browser: refused when the upgrade is made
    /// ([`ErrorKind::Unsupported`]): a browser cannot send custom headers.
    pub fn headers<I, K, V>(mut self, headers: I) -> Upgrade
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.headers
            .extend(headers.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Offers a subprotocol (`sec-websocket-protocol`), in order of
    /// preference. The same on both targets: the one way to pass a value in
    /// a browser's upgrade request (which refuses offering one twice).
    pub fn protocol(mut self, protocol: impl Into<String>) -> Upgrade {
        self.protocols.push(protocol.into());
        self
    }

    /// Gun's `flow`: the Websocket starts with a credit of `messages`
    /// received messages, and reading it pauses when the credit is spent,
    /// until [`Connection::update_flow`](crate::Connection::update_flow)
    /// grants more. Without it (the default) reading never waits for a
    /// credit. Each [`Event::Frame`](crate::Event::Frame) delivered costs
    /// one message, control frames included when they are delivered
    /// (pings and pongs are not, by default: `silence_pings`); the
    /// keepalive's own replies cost nothing. `flow(0)` opens the Websocket
    /// with reading paused.
    ///
    /// Natively a paused Websocket is not read at all: the server is
    /// stopped by TCP's window (HTTP/1.1) or the stream's HTTP/2 window,
    /// and the keepalive does not judge a peer it cannot hear (nor is a
    /// connection lost meanwhile noticed before reading resumes, unless a
    /// write fails). Once the
    /// application has sent its close frame, the Websocket is read to its
    /// end whatever the credit, so that the close completes. After a
    /// reconnect, the Websocket that `auto_upgrade` opens starts again
    /// with this credit.
    ///
    /// Browser: a browser's WebSocket cannot stop reading, so the credit
    /// pauses delivery instead: what arrives while it is spent waits, up
    /// to [`Options::event_queue_bytes`](crate::Options::event_queue_bytes),
    /// past which the connection fails with
    /// [`ErrorKind::QueueFull`](crate::ErrorKind::QueueFull) (as when the
    /// application stops reading its events).
    pub fn flow(mut self, messages: u32) -> Upgrade {
        self.flow = Some(messages);
        self
    }

    /// The path and query.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Validates everything and splits subprotocols out of the headers.
    pub(crate) fn validate(&self) -> Result<ValidUpgrade, Error> {
        let path = validate_path(&self.path)?;
        let mut protocols = Vec::new();
        for protocol in &self.protocols {
            protocols.push(validate_protocol(protocol)?);
        }
        let mut headers = Vec::new();
        for (name, value) in &self.headers {
            let header_name = header_name(name).map_err(|e| {
                let error = Error::new(
                    ErrorKind::InvalidHeader,
                    format!("header name {:?}", redact::bad_token(name)),
                );
                match e {
                    Some(e) => error.with_source(e),
                    None => error,
                }
            })?;
            let header_value = HeaderValue::from_str(value).map_err(|e| {
                Error::new(
                    ErrorKind::InvalidHeader,
                    format!("value of header {name:?} (CR, LF, NUL and other control characters are refused)"),
                )
                .with_source(e)
            })?;
            if header_name.as_str() == "sec-websocket-protocol" {
                for protocol in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    protocols.push(validate_protocol(protocol)?);
                }
                continue;
            }
            if HANDSHAKE_HEADERS.contains(&header_name.as_str()) {
                return Err(Error::new(
                    ErrorKind::InvalidHeader,
                    format!(
                        "header {name:?} is written by the WebSocket handshake and cannot be set"
                    ),
                ));
            }
            headers.push((header_name, header_value));
        }
        Ok(ValidUpgrade {
            path,
            headers,
            protocols,
            flow: self.flow,
        })
    }
}

impl fmt::Debug for Upgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers = self
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()));
        // Not yet validated: a malformed protocol is cut like a bad name.
        let protocols: Vec<String> = self
            .protocols
            .iter()
            .map(|p| redact::bad_token(p))
            .collect();
        f.debug_struct("Upgrade")
            .field("path", &redact::url(&self.path))
            .field("headers", &redact::Headers::new(headers))
            .field("protocols", &protocols)
            .field("flow", &self.flow)
            .finish()
    }
}

/// An upgrade that passed validation: ready for a transport.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ValidUpgrade {
    pub(crate) path: PathAndQuery,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) protocols: Vec<String>,
    /// The initial credit of received messages (Gun's `flow`); `None`:
    /// unlimited.
    pub(crate) flow: Option<u32>,
}

/// Redacted like [`Upgrade`]'s: it travels in the core's commands and
/// actions, which are logged and printed in tests.
impl fmt::Debug for ValidUpgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers = self
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.to_str().unwrap_or("<not UTF-8>")));
        f.debug_struct("ValidUpgrade")
            .field("path", &redact::url(self.path.as_str()))
            .field("headers", &redact::Headers::new(headers))
            .field("protocols", &self.protocols)
            .field("flow", &self.flow)
            .finish()
    }
}

/// A validated header name: [`http::HeaderName`] natively, where it is
/// sent; in a browser, which sends no custom header (the transport refuses
/// them), its lowercase text, so that `HeaderName::from_bytes` and its
/// table of standard names (~17 KB of the bundle) stay out of the `.wasm`.
#[cfg(native)]
pub(crate) type HeaderName = http::HeaderName;
/// A validated header name (see the native definition).
#[cfg(browser)]
pub(crate) type HeaderName = String;

/// Validates a header name (`None` as the error: no source to attach).
#[cfg(native)]
fn header_name(name: &str) -> Result<HeaderName, Option<http::header::InvalidHeaderName>> {
    HeaderName::from_bytes(name.as_bytes()).map_err(Some)
}

/// Validates a header name (`None` as the error: no source to attach).
#[cfg(browser)]
fn header_name(name: &str) -> Result<HeaderName, Option<std::convert::Infallible>> {
    header_name_by_hand(name).ok_or(None)
}

/// Validates a header name as `http::HeaderName::from_bytes` does: an HTTP
/// token (RFC 7230 §3.2.6) of at most 65535 bytes, kept in lowercase.
#[cfg(any(test, browser))]
fn header_name_by_hand(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > 0xffff || !name.bytes().all(is_tchar) {
        return None;
    }
    Some(name.to_ascii_lowercase())
}

/// Whether `b` may be in an HTTP token (RFC 7230 §3.2.6).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn validate_path(path: &str) -> Result<PathAndQuery, Error> {
    let invalid = |why: &str| {
        Error::new(
            ErrorKind::InvalidPath,
            format!("{:?}: {why}", redact::url(path)),
        )
    };
    if !path.starts_with('/') {
        return Err(invalid("a path starts with '/'"));
    }
    if path.contains('#') {
        return Err(invalid("a WebSocket URL has no fragment"));
    }
    path.parse::<PathAndQuery>()
        .map_err(|e| invalid("not a valid path and query").with_source(e))
}

/// A subprotocol is an HTTP token (RFC 6455 §4.1, RFC 7230 §3.2.6).
fn validate_protocol(protocol: &str) -> Result<String, Error> {
    if protocol.is_empty() || !protocol.bytes().all(is_tchar) {
        return Err(Error::new(
            ErrorKind::InvalidHeader,
            format!(
                "subprotocol {:?} is not an HTTP token",
                redact::bad_token(protocol)
            ),
        ));
    }
    Ok(protocol.to_owned())
}

#[cfg(test)]
mod tests;
