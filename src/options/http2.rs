//! The HTTP/2 choice of the builder ([`Options::http2`]): whether a
//! Websocket may be opened as an extended CONNECT stream (RFC 8441).
//! docs/http2.md has the whole story.

use super::Options;
use crate::error::Error;
#[cfg(native)]
use crate::error::ErrorKind;

/// Whether the Websocket goes over HTTP/2 (RFC 8441, extended CONNECT) or
/// HTTP/1.1 (RFC 6455's `101 Switching Protocols`); see
/// [`Options::http2`] and `docs/http2.md`. New choices may be added.
///
/// **Browser:** the browser chooses its own transport; every choice is
/// accepted there and has no effect, except [`Http2::Require`], which a
/// browser cannot promise and refuses at `open`
/// ([`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Http2 {
    /// HTTP/1.1 only: TLS offers no ALPN protocol, as before HTTP/2 came.
    Off,
    /// The default, as browsers do: over TLS (`wss://`) as
    /// [`Http2::Prefer`], over cleartext (`ws://`) as [`Http2::Off`].
    #[default]
    PreferOverTls,
    /// HTTP/2 when the server offers it, else HTTP/1.1. Over TLS, ALPN
    /// offers `h2` and `http/1.1`; over cleartext, HTTP/2 is spoken with
    /// prior knowledge (RFC 9113 §3.3), and a server that does not answer
    /// it with HTTP/2 gets a fresh HTTP/1.1 connection. A server that
    /// speaks HTTP/2 without enabling the CONNECT protocol
    /// (`SETTINGS_ENABLE_CONNECT_PROTOCOL = 1`) also gets a fresh
    /// HTTP/1.1 connection, as browsers do.
    Prefer,
    /// HTTP/2 only: a server that does not speak HTTP/2, or does not
    /// enable the CONNECT protocol, fails the attempt with
    /// [`ErrorKind::Http2Unavailable`](crate::ErrorKind::Http2Unavailable) (retried by the retry policy like a
    /// failed connect). Over cleartext, with prior knowledge.
    Require,
}

impl Http2 {
    /// Whether HTTP/2 is tried for a `wss://` (`secure`) or `ws://` target.
    #[cfg_attr(browser, allow(dead_code))]
    pub(crate) fn tries(self, secure: bool) -> bool {
        match self {
            Http2::Off => false,
            Http2::PreferOverTls => secure,
            Http2::Prefer | Http2::Require => true,
        }
    }
}

impl Options {
    /// Whether the Websocket may be opened over HTTP/2 (RFC 8441): see
    /// [`Http2`]. Default: [`Http2::PreferOverTls`] (HTTP/2 when a `wss://`
    /// server offers it with the CONNECT protocol, HTTP/1.1 otherwise,
    /// and HTTP/1.1 over `ws://`). [`Event::Upgraded`](crate::Event::Upgraded)
    /// says which was used ([`Event::http_version`](crate::Event::http_version)).
    ///
    /// Over HTTP/2 the Websocket is the same as over HTTP/1.1 (the same
    /// frame reader, limits and permessage-deflate, the same events); the
    /// answer to the upgrade is `200`, not `101`, and a refusal is any
    /// other status, reported in
    /// [`Event::UpgradeFailed`](crate::Event::UpgradeFailed) as over
    /// HTTP/1.1. Proxies and the TLS options apply unchanged. With a
    /// [`tls_config`](Options::tls_config) of your own, ALPN is added to a
    /// copy of it unless it sets its own ALPN protocols, which are then
    /// used as given.
    ///
    /// [`Http2::Require`] with a `tls_config` whose ALPN protocols leave out
    /// `h2` could never succeed: `open` refuses it with
    /// [`ErrorKind::InvalidOption`](crate::ErrorKind::InvalidOption).
    pub fn http2(mut self, http2: Http2) -> Options {
        self.http2 = http2;
        self
    }

    /// Many Websockets on one HTTP/2 connection: with `share` on,
    /// connections to the same server that both opt in open their
    /// Websockets as streams of one HTTP/2 connection (RFC 8441) instead of
    /// one TCP (+TLS) connection each, when the server speaks HTTP/2 with
    /// the CONNECT protocol ([`Options::http2`] decides when HTTP/2 is
    /// tried). Off by default.
    ///
    /// Only connections whose scheme, host, port, TLS options (root
    /// certificates, client certificate, the same
    /// [`tls_config`](Options::tls_config) instance), proxy (with its
    /// credentials) or [`connector`](Options::connector) (the same
    /// instance) and HTTP/2 choice are equal share. A connection that
    /// cannot open one more stream (the server's
    /// `SETTINGS_MAX_CONCURRENT_STREAMS`) opens another HTTP/2 connection,
    /// which the next ones share.
    ///
    /// Each [`Connection`](crate::Connection) stays what it is: its own
    /// events, queues, limits, delivery ledger and reconnects. A close
    /// frame closes its Websocket (its stream) only; the HTTP/2
    /// connection stays up while other Websockets use it, and closes
    /// (after the closing timeout) when the last one is gone. When the
    /// HTTP/2 connection is lost, every Websocket on it goes `Down` with
    /// its own unsent frames, and their reconnects share the next HTTP/2
    /// connection: one TCP (+TLS) handshake, not one per Websocket. The
    /// keepalive's `PING`s are the connection's, shared: Websockets probing
    /// at the same time share one `PING` round trip.
    ///
    /// **Browser:** accepted, no effect: the browser shares HTTP/2
    /// connections by its own rules.
    pub fn share_http2(mut self, share: bool) -> Options {
        self.share_http2 = share;
        self
    }

    /// Checks the HTTP/2 choice against the TLS options.
    pub(super) fn validate_http2(&self) -> Result<(), Error> {
        #[cfg(native)]
        if self.http2 == Http2::Require {
            if let Some(config) = &self.tls_config {
                let alpn = &config.config.alpn_protocols;
                if !alpn.is_empty() && !alpn.iter().any(|p| p.as_slice() == b"h2") {
                    return Err(Error::new(
                        ErrorKind::InvalidOption,
                        "http2(Http2::Require) with a tls_config whose ALPN protocols do not \
                         include \"h2\": add it to alpn_protocols, or leave them empty",
                    ));
                }
            }
        }
        Ok(())
    }
}
