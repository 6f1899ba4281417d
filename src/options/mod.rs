//! Options: retry, keepalive, auto-upgrade, limits and TLS, with defaults a
//! long-lived client wants. The builder is here; each concern has its own
//! file: [`retry`] (the reconnect policy), [`keepalive`] (probes and
//! heartbeats), [`limits`] (sizes, queues and durations, with their bounds
//! and validation). TLS options are in `src/tls.rs`, the proxy in
//! `src/proxy.rs`, what a browser refuses in `src/browser_policy.rs`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::compression::Compression;
use crate::error::Error;
use crate::observer::Observer;
use crate::proxy::Proxy;
use crate::request::Upgrade;
use crate::rt::{MaybeSend, MaybeSendSync};

mod connector;
mod http2;
mod keepalive;
mod limits;
mod retry;
#[cfg(test)]
mod tests;
mod tls;

pub use http2::Http2;
pub use keepalive::{Heartbeat, Keepalive, ReplyMatcher};
#[cfg_attr(not(all(feature = "js", browser)), allow(unused_imports))]
pub(crate) use limits::duration_from_millis;
// The core's tests reach the longest duration here.
#[cfg(test)]
pub(crate) use limits::MAX_DURATION;
pub use limits::MAX_MESSAGE_SIZE_CEILING;
pub(crate) use retry::DEFAULT_CONNECT_TIMEOUT;
pub use retry::{FirstConnection, Retry, RetryDecision};

use limits::{check_positive_duration, DEFAULT_MAX_MESSAGE_SIZE};

/// What an upgrade provider's error may be: anything that converts into a
/// boxed error (`String`, `&str`, any `std::error::Error + Send + Sync`,
/// `anyhow::Error`...). It becomes the source of an
/// [`ErrorKind::Provider`](crate::ErrorKind::Provider) error.
pub type ProviderError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Produces the upgrade request for each automatic upgrade, as a future
/// the driver runs (the core never waits on it).
pub(crate) trait UpgradeProvider:
    Fn() -> crate::rt::BoxFuture<Result<Upgrade, ProviderError>> + MaybeSendSync
{
}

impl<F> UpgradeProvider for F where
    F: ?Sized + Fn() -> crate::rt::BoxFuture<Result<Upgrade, ProviderError>> + MaybeSendSync
{
}

/// How a connection behaves. Built from [`Options::default`] with builder
/// methods:
///
/// ```
/// use std::time::Duration;
/// use wstether::{FirstConnection, Keepalive, Options, Retry};
/// let options = Options::default()
///     .retry(
///         Retry::default()
///             .max_retries(10)
///             .first_connection(FirstConnection::Attempts(3)),
///     )
///     .keepalive(Keepalive::every(Duration::from_secs(15)).timeout(Duration::from_secs(5)))
///     .auto_upgrade(true);
/// ```
#[derive(Clone)]
pub struct Options {
    pub(crate) retry: Retry,
    pub(crate) keepalive: Option<Keepalive>,
    pub(crate) auto_upgrade: AutoUpgrade,
    pub(crate) silence_pings: bool,
    pub(crate) max_frame_size: Option<usize>,
    pub(crate) max_message_size: Option<usize>,
    pub(crate) send_queue_bytes: usize,
    pub(crate) event_queue_len: usize,
    pub(crate) event_queue_bytes: usize,
    pub(crate) upgrade_timeout: Duration,
    pub(crate) closing_timeout: Duration,
    #[cfg_attr(browser, allow(dead_code))]
    pub(crate) root_certificates: Vec<Vec<u8>>,
    pub(crate) read_buffer_size: Option<usize>,
    /// `None`: [`Options::no_proxy`].
    pub(crate) proxy: Option<Proxy>,
    #[cfg_attr(browser, allow(dead_code))]
    pub(crate) tls_native_roots: bool,
    pub(crate) observer: Option<Arc<dyn Observer>>,
    pub(crate) compression: Compression,
    /// [`Options::tls_config`] (src/tls.rs).
    pub(crate) tls_config: Option<crate::tls::TlsConfig>,
    /// [`Options::connector`] (src/connector.rs).
    pub(crate) connector: Option<crate::connector::Connector>,
    /// [`Options::tls_client_certificate_der`] (src/tls.rs).
    pub(crate) tls_client_certificate: Option<crate::tls::ClientCertificate>,
    pub(crate) hold_while_down: bool,
    /// [`Options::http2`] (options/http2.rs).
    pub(crate) http2: Http2,
    /// [`Options::share_http2`] (options/http2.rs).
    pub(crate) share_http2: bool,
    /// A connection's own pool group of HTTP/2 connections, which its
    /// siblings share (connection/siblings.rs); not an option.
    pub(crate) http2_group: Option<u64>,
}

#[derive(Clone)]
pub(crate) enum AutoUpgrade {
    Off,
    RepeatLast,
    Provider(Arc<dyn UpgradeProvider>),
}

impl Default for Options {
    fn default() -> Options {
        Options {
            retry: Retry::default(),
            keepalive: Keepalive::default_for_target(),
            auto_upgrade: AutoUpgrade::Off,
            silence_pings: true,
            // Equal limits: the frame limit never refuses a message that
            // the message limit allows.
            max_frame_size: Some(DEFAULT_MAX_MESSAGE_SIZE),
            max_message_size: Some(DEFAULT_MAX_MESSAGE_SIZE),
            send_queue_bytes: 8 << 20,
            event_queue_len: 1024,
            event_queue_bytes: 16 << 20,
            upgrade_timeout: Duration::from_secs(10),
            closing_timeout: Duration::from_secs(5),
            root_certificates: Vec::new(),
            read_buffer_size: None,
            proxy: Some(Proxy::from_env()),
            tls_native_roots: false,
            observer: None,
            compression: Compression::off(),
            tls_config: None,
            connector: None,
            tls_client_certificate: None,
            hold_while_down: true,
            http2: Http2::default(),
            share_http2: false,
            http2_group: None,
        }
    }
}

impl Options {
    /// The reconnect policy (default: [`Retry::default`]).
    pub fn retry(mut self, retry: Retry) -> Options {
        self.retry = retry;
        self
    }

    /// The keepalive (see [`Options::no_keepalive`] for none). Natively the
    /// default pings every 20 s and declares the peer dead 10 s after an
    /// unanswered ping.
    ///
    /// Its first probe after a burst of messages (a quiet interval) also
    /// frees the event-queue capacity the burst left; without a keepalive
    /// that capacity stays (bounded by [`Options::event_queue_len`]).
    ///
    /// In a browser there is no default, since a heartbeat needs the
    /// server's cooperation (see [`Heartbeat::Message`]); a browser cannot
    /// send pings, so a keepalive with [`Heartbeat::Ping`] (what
    /// [`Keepalive::every`] makes) is refused at
    /// [`Connection::open`](crate::Connection::open) with
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported).
    pub fn keepalive(mut self, keepalive: Keepalive) -> Options {
        self.keepalive = Some(keepalive);
        self
    }

    /// No keepalive: no probe is sent, and a peer that goes silent is
    /// noticed only when the socket fails (the browser's default).
    pub fn no_keepalive(mut self) -> Options {
        self.keepalive = None;
        self
    }

    /// Whether a [`Socket`](crate::Socket) holds what is sent while it is
    /// down (default `true`, as partysocket does): the frames wait, in
    /// order, in the same bounded send queue
    /// ([`Options::send_queue_bytes`]) and are written after the next
    /// upgrade. With `false`, such a send fails at once with
    /// [`ErrorKind::Disconnected`](crate::ErrorKind::Disconnected), the
    /// frames in the error. Either way, frames already handed to a
    /// transport that died come back in
    /// [`SocketEvent::Down`](crate::SocketEvent::Down) (never resent), and
    /// when the socket ends for good the held frames come back too. Sends
    /// on a [`StreamRef`](crate::StreamRef) are never held.
    pub fn hold_while_down(mut self, hold: bool) -> Options {
        self.hold_while_down = hold;
        self
    }

    /// Re-run the last upgrade, with the same request, after each reconnect
    /// (default `false`, as in Gun: the owner upgrades again, for example on
    /// each `Down` that will reconnect; an upgrade asked while the
    /// connection is down waits for the next `Up`).
    pub fn auto_upgrade(mut self, enabled: bool) -> Options {
        self.auto_upgrade = if enabled {
            AutoUpgrade::RepeatLast
        } else {
            AutoUpgrade::Off
        };
        self
    }

    /// Upgrade automatically on every `Up`, the first included (unless an
    /// upgrade is already waiting for it, such as [`connect`]'s), with the
    /// request that `provider`'s future resolves to, called afresh each
    /// time: headers, path and query, and subprotocols per attempt (so a
    /// token can be fetched or refreshed with I/O first).
    ///
    /// ```
    /// use wstether::{Options, Upgrade};
    /// # async fn fetch_token() -> Result<String, std::io::Error> { Ok("t".into()) }
    /// let options = Options::default().auto_upgrade_with(|| async {
    ///     let token = fetch_token().await?;
    ///     Ok::<_, std::io::Error>(Upgrade::new("/ws").header("authorization", format!("Bearer {token}")))
    /// });
    /// # let _ = options;
    /// ```
    ///
    /// - A provider that fails: the upgrade fails with
    ///   [`ErrorKind::Provider`](crate::ErrorKind::Provider) (the provider's error is its
    ///   [`source`](std::error::Error::source)) in
    ///   [`Event::UpgradeFailed`](crate::Event::UpgradeFailed), the
    ///   connection goes down and the retry policy decides what follows, as
    ///   for any failed upgrade.
    /// - A provider that does not answer within
    ///   [`Options::upgrade_timeout`] fails the same way with
    ///   [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) (its future is dropped); the upgrade it
    ///   returns then has its own `upgrade_timeout`.
    ///
    /// The closure is [`MaybeSendSync`] and its future [`MaybeSend`]:
    /// `Send` natively, anything in a browser. Its requests are checked as
    /// [`Connection::ws_upgrade_with`]'s are; in a browser one with custom
    /// headers fails the upgrade ([`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported)), since a
    /// browser cannot send them. See [`Options::auto_upgrade_with_sync`]
    /// for a provider that needs no I/O.
    ///
    /// [`Connection::ws_upgrade_with`]: crate::Connection::ws_upgrade_with
    /// [`connect`]: crate::connect
    pub fn auto_upgrade_with<F, Fut, E>(mut self, provider: F) -> Options
    where
        F: Fn() -> Fut + MaybeSendSync + 'static,
        Fut: std::future::Future<Output = Result<Upgrade, E>> + MaybeSend + 'static,
        E: Into<ProviderError>,
    {
        let provider = move || -> crate::rt::BoxFuture<Result<Upgrade, ProviderError>> {
            let future = provider();
            Box::pin(async move { future.await.map_err(Into::into) })
        };
        self.auto_upgrade = AutoUpgrade::Provider(Arc::new(provider));
        self
    }

    /// [`Options::auto_upgrade_with`] for a provider that needs no I/O and
    /// cannot fail: `provider` is called on every `Up` and its request sent.
    ///
    /// ```
    /// use wstether::{Options, Upgrade};
    /// let options = Options::default().auto_upgrade_with_sync(|| Upgrade::new("/ws"));
    /// # let _ = options;
    /// ```
    pub fn auto_upgrade_with_sync(
        self,
        provider: impl Fn() -> Upgrade + MaybeSendSync + 'static,
    ) -> Options {
        self.auto_upgrade_with(move || {
            std::future::ready(Ok::<_, std::convert::Infallible>(provider()))
        })
    }

    /// Whether ping and pong frames from the server are hidden from the
    /// event stream (default `true`, as Gun's `silence_pings`). Pings are
    /// always answered.
    ///
    /// In a browser, which answers pings itself and never shows ping or
    /// pong frames to scripts, `silence_pings(false)` cannot be honoured: it
    /// is refused at [`Connection::open`](crate::Connection::open) with
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported).
    pub fn silence_pings(mut self, silence: bool) -> Options {
        self.silence_pings = silence;
        self
    }

    /// How long the server has to answer an upgrade (default 10 s). Longer
    /// than zero and at most 24 days ([`ErrorKind::InvalidOption`](crate::ErrorKind::InvalidOption)
    /// otherwise, at `open`).
    ///
    /// In a browser, where the upgrade makes the whole connection (there is
    /// no connection below the WebSocket), it bounds the whole opening:
    /// DNS, TCP, TLS and the upgrade.
    pub fn upgrade_timeout(mut self, timeout: Duration) -> Options {
        self.upgrade_timeout = timeout;
        self
    }

    /// How long to wait for the server's close frame after sending ours
    /// (default 5 s); then the socket is dropped. Longer than zero and at
    /// most 24 days ([`ErrorKind::InvalidOption`](crate::ErrorKind::InvalidOption) otherwise, at `open`).
    ///
    /// In a browser the messages the server sends in that time are dropped
    /// by the browser, which delivers nothing once the page has closed.
    pub fn closing_timeout(mut self, timeout: Duration) -> Options {
        self.closing_timeout = timeout;
        self
    }

    /// Trusts one more root certificate (DER), beside the webpki roots, for
    /// `wss://`. A convenience for wstether's own TLS configuration: with
    /// [`tls_config`](Options::tls_config) it is refused at `open` with
    /// [`ErrorKind::InvalidOption`](crate::ErrorKind::InvalidOption).
    ///
    /// Native only: browsers use their own trust store, and
    /// [`Connection::open`](crate::Connection::open) refuses this option
    /// there with [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported).
    pub fn add_root_certificate_der(mut self, der: impl Into<Vec<u8>>) -> Options {
        self.root_certificates.push(der.into());
        self
    }

    /// The proxy to connect through (default: [`Proxy::from_env`], the
    /// `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`/`NO_PROXY` variables read at
    /// each dial). The proxy handshake (HTTP CONNECT or SOCKS5) is made
    /// again on every reconnect. A proxy that fails is an
    /// [`ErrorKind::Proxy`](crate::ErrorKind::Proxy) (with the proxy's status in
    /// [`Error::proxy_status`](crate::Error::proxy_status) for an HTTP proxy), retried with the retry
    /// policy's backoff. **Browser:** only the default is accepted; any
    /// other proxy is refused at `open` with [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported): a
    /// browser uses the system's proxy settings, and scripts cannot choose.
    pub fn proxy(mut self, proxy: Proxy) -> Options {
        self.proxy = Some(proxy);
        self
    }

    /// Connects directly, without a proxy, whatever the environment says.
    /// **Browser:** refused at `open` with [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) (the
    /// browser's proxy settings cannot be bypassed by a script).
    pub fn no_proxy(mut self) -> Options {
        self.proxy = None;
        self
    }

    /// Also trusts the operating system's certificate store for `wss://`
    /// (and `https://` proxies), beside the bundled webpki roots and the
    /// [added](Options::add_root_certificate_der) ones (default `false`:
    /// the bundled roots give the same answer on every machine). Turn it on
    /// behind a TLS-inspecting corporate proxy whose root the
    /// administrators installed in the system store, as a browser trusts
    /// it. The store is read once per process (on Linux from the
    /// `SSL_CERT_FILE`/`SSL_CERT_DIR` or the distribution's bundle); a store
    /// that cannot be read fails `open` with [`ErrorKind::InvalidOption`](crate::ErrorKind::InvalidOption), as
    /// does `true` beside [`tls_config`](Options::tls_config).
    /// **Browser:** a browser always uses its own store; `true` is refused
    /// at `open` with [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported).
    pub fn tls_native_roots(mut self, enabled: bool) -> Options {
        self.tls_native_roots = enabled;
        self
    }

    /// Tells `observer` about every step of the connection's life (Gun's
    /// `gun_event`): connect, TLS handshake (native), upgrade, frames sent
    /// and received (opcode and size, never the payload), disconnect,
    /// reconnect and terminate, with
    /// durations. See [`Observer`] for what is reported, when, and what a
    /// panicking observer does. The same on both targets; the observer is
    /// [`MaybeSendSync`] (`Send + Sync` natively).
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Options {
        self.observer = Some(observer);
        self
    }

    /// permessage-deflate (RFC 7692): [`Compression::deflate`] offers it,
    /// [`Compression::off`] (the default, as in Gun) does not. See
    /// [`Compression`] for the parameters, what is honoured of the
    /// server's answer and the memory it costs per connection.
    /// **Browser:** accepted; the browser decides (it always offers
    /// permessage-deflate itself).
    pub fn compression(mut self, compression: Compression) -> Options {
        self.compression = compression;
        self
    }

    /// Checks every option against its bounds: the one place where options
    /// are validated, at `open`. The error names the option and its bound.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        self.retry.validate()?;
        if let Some(keepalive) = &self.keepalive {
            keepalive.validate()?;
        }
        self.validate_limits()?;
        check_positive_duration("upgrade_timeout", self.upgrade_timeout)?;
        check_positive_duration("closing_timeout", self.closing_timeout)?;
        self.compression.validate()?;
        self.validate_http2()?;
        Ok(())
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auto_upgrade = match self.auto_upgrade {
            AutoUpgrade::Off => "off",
            AutoUpgrade::RepeatLast => "repeat last",
            AutoUpgrade::Provider(_) => "provider",
        };
        f.debug_struct("Options")
            .field("retry", &self.retry)
            .field("keepalive", &self.keepalive)
            .field("auto_upgrade", &auto_upgrade)
            .field("silence_pings", &self.silence_pings)
            .field("max_frame_size", &self.max_frame_size)
            .field("max_message_size", &self.max_message_size)
            .field("send_queue_bytes", &self.send_queue_bytes)
            .field("event_queue_len", &self.event_queue_len)
            .field("event_queue_bytes", &self.event_queue_bytes)
            .field("upgrade_timeout", &self.upgrade_timeout)
            .field("closing_timeout", &self.closing_timeout)
            .field("hold_while_down", &self.hold_while_down)
            .field("root_certificates", &self.root_certificates.len())
            .field("read_buffer_size", &self.read_buffer_size)
            .field("proxy", &self.proxy)
            .field("tls_native_roots", &self.tls_native_roots)
            .field("observer", &self.observer.as_ref().map(|_| "set"))
            .field("compression", &self.compression)
            .field("tls_config", &self.tls_config)
            .field("connector", &self.connector)
            .field("tls_client_certificate", &self.tls_client_certificate)
            .field("http2", &self.http2)
            .field("share_http2", &self.share_http2)
            .finish()
    }
}
