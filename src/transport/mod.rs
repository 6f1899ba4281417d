//! Transports: the thin layer between the driver and a real socket. They
//! move bytes and report what happened; they never decide policy (when to
//! retry, when a peer is dead): that is the core's job.

use std::fmt;
use std::task::{Context, Poll};

use http::{HeaderMap, StatusCode};

use crate::core::{Outgoing, Seq};
use crate::error::{Error, ErrorKind};
use crate::frame::Frame;
use crate::options::Options;
use crate::redact;
use crate::request::ValidUpgrade;
use crate::rt::BoxFuture;
use crate::url::{Host, Url};

#[cfg(any(test, browser))]
mod buffered;
// The native transport names the proxy module as its own (`super::proxy`).
#[cfg(native)]
use crate::proxy;

cfg_if::cfg_if! {
    if #[cfg(browser)] {
        mod browser;
        pub(crate) use browser::BrowserTransport as Platform;
    } else {
        mod native;
        pub(crate) use native::NativeTransport as Platform;
    }
}

/// Where a connection goes: a `ws://` or `wss://` URL's scheme and authority.
/// Its `Debug` hides the URL's userinfo and query.
#[derive(Clone)]
pub(crate) struct Target {
    url: Url,
    pub(crate) secure: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("url", &redact::url(self.url.as_str()))
            .field("secure", &self.secure)
            .field("host", &self.host)
            .field("port", &self.port)
            .finish()
    }
}

impl Target {
    /// Parses the URL given to `open`. Error messages show it redacted
    /// (no userinfo, no query): they end up in logs.
    pub(crate) fn parse(url: &str) -> Result<Target, Error> {
        let shown = redact::url(url);
        let parsed = Url::parse(url)
            .map_err(|e| Error::new(ErrorKind::InvalidUrl, format!("{shown:?}")).with_source(e))?;
        let secure = match parsed.scheme() {
            "ws" => false,
            "wss" => true,
            other => {
                return Err(Error::new(
                    ErrorKind::UnsupportedScheme,
                    format!("{other:?} in {shown:?}: use ws:// or wss://"),
                ))
            }
        };
        let host = match parsed.host() {
            Some(Host::Domain(domain)) if !domain.is_empty() => domain.to_owned(),
            Some(Host::Ipv4(ip)) => ip.to_string(),
            Some(Host::Ipv6(ip)) => ip.to_string(),
            _ => {
                return Err(Error::new(
                    ErrorKind::InvalidUrl,
                    format!("{shown:?} has no host"),
                ))
            }
        };
        if parsed.fragment().is_some() {
            return Err(Error::new(
                ErrorKind::InvalidUrl,
                format!("{shown:?}: a WebSocket URL has no fragment"),
            ));
        }
        let port = parsed
            .port_or_known_default()
            .unwrap_or(if secure { 443 } else { 80 });
        Ok(Target {
            url: parsed,
            secure,
            host,
            port,
        })
    }

    /// `open` takes a host and a port, as `gun:open`: a path (other than
    /// `/`) or a query would be silently unused, so it is refused.
    pub(crate) fn refuse_path(&self) -> Result<(), Error> {
        if self.url.path() == "/" && self.url.query().is_none() {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::InvalidUrl,
            format!(
                "{:?}: Connection::open takes a host and a port, not a path or a query; \
                 give the path to Connection::ws_upgrade, or use wstether::connect, \
                 which opens and upgrades a URL's path in one step",
                redact::url(self.url.as_str())
            ),
        ))
    }

    /// The path and query of the URL given to `open` (for `connect`).
    pub(crate) fn path_and_query(&self) -> String {
        match self.url.query() {
            Some(query) => format!("{}?{query}", self.url.path()),
            None => self.url.path().to_owned(),
        }
    }

    /// `Authorization: Basic …` from the URL's userinfo
    /// (`wss://user:password@host/`, percent-decoded), as Python's
    /// `websockets` sends it; `None` without userinfo.
    #[cfg(native)]
    pub(crate) fn basic_auth(&self) -> Option<http::HeaderValue> {
        if self.url.username().is_empty() && self.url.password().is_none() {
            return None;
        }
        let credentials = proxy::credentials(self.url.username(), self.url.password());
        let mut value = http::HeaderValue::from_str(&credentials.basic()).ok()?;
        value.set_sensitive(true);
        Some(value)
    }

    /// `scheme://authority` + the upgrade's path and query.
    pub(crate) fn url_for(&self, upgrade: &ValidUpgrade) -> String {
        let scheme = if self.secure { "wss" } else { "ws" };
        let authority = crate::url::authority(&self.url);
        format!("{scheme}://{authority}{}", upgrade.path)
    }
}

/// A successful upgrade.
pub(crate) struct Upgraded<S> {
    pub(crate) socket: S,
    pub(crate) protocol: Option<String>,
    pub(crate) headers: HeaderMap,
    /// HTTP/1.1 (a `101`) or HTTP/2 (an extended CONNECT's `200`);
    /// `None` where the browser does not say.
    pub(crate) version: Option<http::Version>,
}

/// A failed upgrade: what the server said, if it said anything.
pub(crate) struct UpgradeFailure {
    pub(crate) status: Option<StatusCode>,
    pub(crate) headers: HeaderMap,
    pub(crate) error: Error,
}

impl From<Error> for UpgradeFailure {
    fn from(error: Error) -> UpgradeFailure {
        UpgradeFailure {
            status: None,
            headers: HeaderMap::new(),
            error,
        }
    }
}

/// How a target opens connections and upgrades them.
pub(crate) trait Transport {
    /// A connection that is up but not yet upgraded.
    type Dialed: Unpin + 'static;
    /// An open Websocket.
    type Socket: Socket;

    /// Checks target-specific options at `open`.
    fn check_options(options: &Options) -> Result<(), Error>;

    /// Checks an upgrade request at `ws_upgrade` (what this target can send).
    fn check_upgrade(upgrade: &ValidUpgrade) -> Result<(), Error>;

    /// Checks a frame at `ws_send` (what this target can send).
    fn check_frame(frame: &Frame) -> Result<(), Error>;

    /// Opens a connection.
    fn dial(target: &Target, options: &Options) -> BoxFuture<Result<Self::Dialed, Error>>;

    /// How long the TLS handshake of a dialed connection took, when this
    /// target does one apart (natively, for `wss`).
    fn tls_handshake(_dialed: &Self::Dialed) -> Option<std::time::Duration> {
        None
    }

    /// Upgrades an open connection to a Websocket.
    fn upgrade(
        dialed: Self::Dialed,
        target: &Target,
        upgrade: ValidUpgrade,
        options: &Options,
    ) -> BoxFuture<Result<Upgraded<Self::Socket>, UpgradeFailure>>;
}

/// An open Websocket, polled by the driver. It moves frames and reports
/// progress; which frames were written or come back is the core's call.
pub(crate) trait Socket: Unpin {
    /// The next frame from the peer; `None` once the socket has closed.
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame, Error>>>;
    /// Whether a frame can be handed over now.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>>;
    /// Hands a frame over (after `poll_ready` said yes). The socket keeps
    /// no copy: the core holds the frame until it is known written.
    fn start_send(&mut self, frame: &Outgoing) -> Result<(), Error>;
    /// Writes out what was handed over.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>>;
    /// The last frame known to have left (its sequence number).
    fn written_through(&mut self) -> Option<Seq>;
    /// Bytes written to the network so far: tells a slow peer, whose
    /// writes progress, from one that reads nothing.
    fn bytes_written(&self) -> u64;
    /// Queues a close frame with `code` to fail the connection (the peer
    /// broke the protocol), best effort; the driver flushes it.
    fn start_fail_close(&mut self, code: u16);
    /// A quiet moment (the driver's trim): buffers kept for a busy
    /// connection may go.
    fn trim(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert_eq!(
            Target::parse("not a url").unwrap_err().kind(),
            ErrorKind::InvalidUrl
        );
        assert_eq!(
            Target::parse("http://example.com").unwrap_err().kind(),
            ErrorKind::UnsupportedScheme
        );
        assert_eq!(
            Target::parse("ftp://example.com").unwrap_err().kind(),
            ErrorKind::UnsupportedScheme
        );
        assert_eq!(
            Target::parse("ws://").unwrap_err().kind(),
            ErrorKind::InvalidUrl
        );
        assert_eq!(
            Target::parse("ws://a/#x").unwrap_err().kind(),
            ErrorKind::InvalidUrl
        );
        let target = Target::parse("wss://example.com/chat?x=1").unwrap();
        assert!(target.secure);
        assert_eq!(target.port, 443);
        assert_eq!(target.path_and_query(), "/chat?x=1");
        let ipv6 = Target::parse("ws://[::1]:9000").unwrap();
        assert_eq!((ipv6.host.as_str(), ipv6.port), ("::1", 9000));
        let upgrade = crate::Upgrade::new("/ws?a=b").validate().unwrap();
        assert_eq!(ipv6.url_for(&upgrade), "ws://[::1]:9000/ws?a=b");
    }

    #[test]
    fn secrets_in_urls_stay_out_of_errors_and_debug() {
        let bad = [
            "ws://user:hunter2@/x?token=SECRET",
            "http://user:hunter2@h/x?token=SECRET",
            "ws://user:hunter2@h/x?token=SECRET#f",
            "ws://user:hunter2@h:99999/x?token=SECRET",
            "not a url user:hunter2@h?token=SECRET",
        ];
        for url in bad {
            let err = Target::parse(url).unwrap_err();
            let shown = format!("{err} {err:?} {err:#?}");
            assert!(!shown.contains("SECRET"), "{shown}");
            assert!(!shown.contains("hunter2"), "{shown}");
        }
        let target = Target::parse("ws://user:hunter2@h/x?token=SECRET").unwrap();
        let shown = format!("{target:?} {target:#?}");
        assert!(
            !shown.contains("SECRET") && !shown.contains("hunter2"),
            "{shown}"
        );
        assert!(shown.contains("ws://…@h/x?…"), "{shown}");
    }
}
