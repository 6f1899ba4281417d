//! Options: retry, keepalive, auto-upgrade, limits and TLS, with defaults a
//! long-lived client wants.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

use crate::compression::Compression;
use crate::error::{Error, ErrorKind};
use crate::frame::Frame;
use crate::observer::Observer;
use crate::redact;
use crate::request::Upgrade;
use crate::transport::proxy::Proxy;

/// The bound on the closures a connection keeps ([`Options::auto_upgrade_with`]'s
/// provider, [`Heartbeat::message`]'s matcher): `Send + Sync` natively, so
/// that a [`Connection`](crate::Connection) is `Send + Sync` and its task
/// can run on any thread; nothing in a browser, where everything runs on
/// the page's one thread and closures may hold JavaScript values (which
/// are not `Send`).
///
/// Implemented for every type that meets the bound; there is nothing to
/// implement.
#[doc = ""]
#[cfg_attr(
    all(target_arch = "wasm32", target_os = "unknown"),
    doc = "On this target (a browser): no bound."
)]
#[cfg_attr(
    not(all(target_arch = "wasm32", target_os = "unknown")),
    doc = "On this target (native): `Send + Sync`."
)]
pub trait MaybeSendSync: sealed::SendSyncIfNative {}

impl<T: ?Sized + sealed::SendSyncIfNative> MaybeSendSync for T {}

mod sealed {
    /// The target's half of [`MaybeSendSync`](super::MaybeSendSync).
    #[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
    pub trait SendSyncIfNative: Send + Sync {}
    #[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
    impl<T: ?Sized + Send + Sync> SendSyncIfNative for T {}

    /// The target's half of [`MaybeSendSync`](super::MaybeSendSync).
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    pub trait SendSyncIfNative {}
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    impl<T: ?Sized> SendSyncIfNative for T {}

    /// The target's half of [`MaybeSend`](super::MaybeSend).
    #[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
    pub trait SendIfNative: Send {}
    #[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
    impl<T: ?Sized + Send> SendIfNative for T {}

    /// The target's half of [`MaybeSend`](super::MaybeSend).
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    pub trait SendIfNative {}
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    impl<T: ?Sized> SendIfNative for T {}
}

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

/// The bound on the futures a connection runs (an upgrade provider's):
/// `Send` natively, so that the connection's task can run on any thread;
/// nothing in a browser, where a future may hold JavaScript values.
///
/// Implemented for every type that meets the bound; there is nothing to
/// implement.
#[doc = ""]
#[cfg_attr(
    all(target_arch = "wasm32", target_os = "unknown"),
    doc = "On this target (a browser): no bound."
)]
#[cfg_attr(
    not(all(target_arch = "wasm32", target_os = "unknown")),
    doc = "On this target (native): `Send`."
)]
pub trait MaybeSend: sealed::SendIfNative {}

impl<T: ?Sized + sealed::SendIfNative> MaybeSend for T {}

/// What an upgrade provider's error may be: anything that converts into a
/// boxed error (`String`, `&str`, any `std::error::Error + Send + Sync`,
/// `anyhow::Error`...). It becomes the source of an
/// [`ErrorKind::Provider`] error.
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

/// The longest duration any option accepts: 24 days. A browser's
/// `setTimeout` treats a delay above 2^31 - 1 ms (24.8 days) as zero, and
/// `Instant + Duration` overflows for huge values, so both targets share
/// this bound.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(24 * 24 * 60 * 60);

/// The shortest retry delay: 1 ms. A zero delay would retry a refused
/// connection tens of thousands of times per second.
pub(crate) const MIN_RETRY_DELAY: Duration = Duration::from_millis(1);

/// The largest frame or message size wstether accepts, 1 GiB: the largest
/// allocation it makes for one message, and the largest value
/// [`Options::max_frame_size`] and [`Options::max_message_size`] accept; a
/// peer's claimed length is never trusted beyond it.
pub const MAX_MESSAGE_SIZE_CEILING: usize = 1 << 30;

/// The default message (and frame) size limit: 64 MiB.
const DEFAULT_MAX_MESSAGE_SIZE: usize = 64 << 20;

/// The smallest and largest [`Options::read_buffer_size`]: the buffer is
/// allocated up front for every connection.
pub(crate) const MIN_READ_BUFFER_SIZE: usize = 64;
pub(crate) const MAX_READ_BUFFER_SIZE: usize = 64 << 20;

/// The largest [`Options::send_queue_bytes`] and
/// [`Options::event_queue_bytes`]: 1 GiB, so that every value derived from
/// them (the native write buffer's limit) is computed without overflow.
pub(crate) const MAX_QUEUE_BYTES: usize = 1 << 30;

/// The largest [`Options::event_queue_len`]: about a million events.
pub(crate) const MAX_EVENT_QUEUE_LEN: usize = 1 << 20;

/// The default connect timeout (a browser accepts only this one: it has no
/// connection below the WebSocket).
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

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
    #[cfg_attr(all(target_arch = "wasm32", target_os = "unknown"), allow(dead_code))]
    pub(crate) root_certificates: Vec<Vec<u8>>,
    pub(crate) read_buffer_size: Option<usize>,
    /// `None`: [`Options::no_proxy`].
    pub(crate) proxy: Option<Proxy>,
    #[cfg_attr(all(target_arch = "wasm32", target_os = "unknown"), allow(dead_code))]
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
    /// [`ErrorKind::Unsupported`].
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
    ///   [`ErrorKind::Provider`] (the provider's error is its
    ///   [`source`](std::error::Error::source)) in
    ///   [`Event::UpgradeFailed`](crate::Event::UpgradeFailed), the
    ///   connection goes down and the retry policy decides what follows, as
    ///   for any failed upgrade.
    /// - A provider that does not answer within
    ///   [`Options::upgrade_timeout`] fails the same way with
    ///   [`ErrorKind::Timeout`] (its future is dropped); the upgrade it
    ///   returns then has its own `upgrade_timeout`.
    ///
    /// The closure is [`MaybeSendSync`] and its future [`MaybeSend`]:
    /// `Send` natively, anything in a browser. Its requests are checked as
    /// [`Connection::ws_upgrade_with`]'s are; in a browser one with custom
    /// headers fails the upgrade ([`ErrorKind::Unsupported`]), since a
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
    /// [`ErrorKind::Unsupported`].
    pub fn silence_pings(mut self, silence: bool) -> Options {
        self.silence_pings = silence;
        self
    }

    /// The largest frame accepted from the server (default 64 MiB, the same
    /// as [`Options::max_message_size`], so that no message the message
    /// limit allows is refused for the size of one of its frames).
    ///
    /// At most the ceiling, [`MAX_MESSAGE_SIZE_CEILING`] (1 GiB) — the
    /// largest allocation wstether accepts; a peer's claimed length is never
    /// trusted beyond it: pass the ceiling for the largest. A value above
    /// the message limit has no effect beyond it: the message limit
    /// applies. 0 and values above the ceiling make
    /// [`Connection::open`](crate::Connection::open) fail with
    /// [`ErrorKind::InvalidOption`].
    ///
    /// In a browser, which hands whole messages to scripts and never shows
    /// frames, this limit has no effect: only
    /// [`Options::max_message_size`] applies.
    pub fn max_frame_size(mut self, bytes: usize) -> Options {
        self.max_frame_size = Some(bytes);
        self
    }

    /// The largest message accepted from the server (default 64 MiB).
    /// A larger one is never delivered: natively it is refused while it is
    /// read, the connection closes with 1009 ("message too big") and goes
    /// `Down` with [`ErrorKind::MessageTooBig`], then reconnects by the
    /// retry policy.
    ///
    /// In a browser the message has already been received whole when a
    /// script first sees it, and scripts may not send 1009: the message is
    /// dropped and the connection closes with 1000 and the reason
    /// `"message too big"`, then goes `Down` with
    /// [`ErrorKind::MessageTooBig`] as natively.
    ///
    /// At most the ceiling, [`MAX_MESSAGE_SIZE_CEILING`] (1 GiB) — the
    /// largest allocation wstether accepts; a peer's claimed length is never
    /// trusted beyond it: pass the ceiling for the largest. 0 and values
    /// above the ceiling make [`Connection::open`](crate::Connection::open)
    /// fail with [`ErrorKind::InvalidOption`].
    pub fn max_message_size(mut self, bytes: usize) -> Options {
        self.max_message_size = Some(bytes);
        self
    }

    /// How much memory the send queue may hold (default 8 MiB): each
    /// queued frame is charged its payload plus a fixed overhead of 128
    /// bytes, so a 1-byte frame counts as 129 bytes. Past that,
    /// [`Connection::ws_send`](crate::Connection::ws_send) fails with [`ErrorKind::QueueFull`] and gives the frames back, and
    /// [`Connection::send`](crate::Connection::send) waits. At least 1
    /// ([`ErrorKind::InvalidOption`] otherwise, at `open`).
    ///
    /// It is also the largest message one call can send: the frames of one
    /// `ws_send` or `send` may hold at most this many payload bytes (8 MiB
    /// by default); a larger call is refused with
    /// [`ErrorKind::InvalidFrame`] and its frames given back, since it
    /// could never fit (natively, the write buffer is sized by this bound).
    /// Raise it to send larger messages, up to 1 GiB (2^30 bytes;
    /// [`ErrorKind::InvalidOption`] above, at `open`).
    pub fn send_queue_bytes(mut self, bytes: usize) -> Options {
        self.send_queue_bytes = bytes;
        self
    }

    /// How many events may wait unread (default 1024). When the queue is
    /// full wstether stops reading the socket, so a slow reader slows the
    /// server down instead of growing memory. From 1 to 2^20 (1,048,576);
    /// other values make [`Connection::open`](crate::Connection::open) fail
    /// with [`ErrorKind::InvalidOption`].
    ///
    /// In a browser, which cannot pause a WebSocket, messages go on
    /// arriving while the queue is full; they wait in the transport, bounded
    /// by [`Options::event_queue_bytes`].
    pub fn event_queue_len(mut self, len: usize) -> Options {
        self.event_queue_len = len;
        self
    }

    /// How much memory unread events may hold (default 16 MiB): each event
    /// is charged a fixed overhead of 128 bytes, plus its payload for a
    /// frame. Like [`Options::event_queue_len`], reaching it stops reading the
    /// socket natively, so a slow reader of large messages holds at most
    /// about this much plus one message (up to
    /// [`Options::max_message_size`]). From 1 to 1 GiB (2^30 bytes;
    /// [`ErrorKind::InvalidOption`] otherwise, at `open`).
    ///
    /// In a browser, which cannot pause reading, exceeding it ends the
    /// connection instead: the socket closes with 1000 and the reason
    /// `"client too slow"`, and the connection goes `Down` with
    /// [`ErrorKind::QueueFull`] (then reconnects by the retry policy).
    pub fn event_queue_bytes(mut self, bytes: usize) -> Options {
        self.event_queue_bytes = bytes;
        self
    }

    /// How long the server has to answer an upgrade (default 10 s). Longer
    /// than zero and at most 24 days ([`ErrorKind::InvalidOption`]
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
    /// most 24 days ([`ErrorKind::InvalidOption`] otherwise, at `open`).
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
    /// [`ErrorKind::InvalidOption`].
    ///
    /// Native only: browsers use their own trust store, and
    /// [`Connection::open`](crate::Connection::open) refuses this option
    /// there with [`ErrorKind::Unsupported`].
    pub fn add_root_certificate_der(mut self, der: impl Into<Vec<u8>>) -> Options {
        self.root_certificates.push(der.into());
        self
    }

    /// How much tungstenite's per-connection frame buffer takes from the
    /// socket per read, natively (default 2 KiB; the socket itself is read
    /// up to 64 KiB at a time whatever this is). The buffer keeps the 4 KiB
    /// tungstenite allocated for the handshake, and grows to this size only
    /// when it is larger: below 4 KiB the option sets how much is copied
    /// (and zero-filled first) per read, not the memory. Binary messages of
    /// 64 KiB or more in one frame (without compression) do not go through
    /// it: each is read straight into a buffer of its own size, so large
    /// messages need no larger frame buffer, and none stays allocated after
    /// them. Raising it helps only frames below that size, or fragmented or
    /// compressed ones, at its cost in memory for every connection. From 64
    /// bytes to 64 MiB ([`ErrorKind::InvalidOption`] otherwise, at `open`).
    ///
    /// Native only: a browser reads for itself, and
    /// [`Connection::open`](crate::Connection::open) refuses this option
    /// there with [`ErrorKind::Unsupported`].
    pub fn read_buffer_size(mut self, bytes: usize) -> Options {
        self.read_buffer_size = Some(bytes);
        self
    }

    /// The proxy to connect through (default: [`Proxy::from_env`], the
    /// `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`/`NO_PROXY` variables read at
    /// each dial). The proxy handshake (HTTP CONNECT or SOCKS5) is made
    /// again on every reconnect. A proxy that fails is an
    /// [`ErrorKind::Proxy`] (with the proxy's status in
    /// [`Error::proxy_status`] for an HTTP proxy), retried with the retry
    /// policy's backoff. **Browser:** only the default is accepted; any
    /// other proxy is refused at `open` with [`ErrorKind::Unsupported`]: a
    /// browser uses the system's proxy settings, and scripts cannot choose.
    pub fn proxy(mut self, proxy: Proxy) -> Options {
        self.proxy = Some(proxy);
        self
    }

    /// Connects directly, without a proxy, whatever the environment says.
    /// **Browser:** refused at `open` with [`ErrorKind::Unsupported`] (the
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
    /// that cannot be read fails `open` with [`ErrorKind::InvalidOption`], as
    /// does `true` beside [`tls_config`](Options::tls_config).
    /// **Browser:** a browser always uses its own store; `true` is refused
    /// at `open` with [`ErrorKind::Unsupported`].
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
        for (name, limit) in [
            ("max_frame_size", self.max_frame_size),
            ("max_message_size", self.max_message_size),
        ] {
            if let Some(bytes) = limit {
                check_size(name, bytes, 1, MAX_MESSAGE_SIZE_CEILING)?;
            }
        }
        check_size(
            "event_queue_bytes",
            self.event_queue_bytes,
            1,
            MAX_QUEUE_BYTES,
        )?;
        if let Some(bytes) = self.read_buffer_size {
            check_size(
                "read_buffer_size",
                bytes,
                MIN_READ_BUFFER_SIZE,
                MAX_READ_BUFFER_SIZE,
            )?;
        }
        check_size(
            "send_queue_bytes",
            self.send_queue_bytes,
            1,
            MAX_QUEUE_BYTES,
        )?;
        check_size(
            "event_queue_len",
            self.event_queue_len,
            1,
            MAX_EVENT_QUEUE_LEN,
        )?;
        check_positive_duration("upgrade_timeout", self.upgrade_timeout)?;
        check_positive_duration("closing_timeout", self.closing_timeout)?;
        self.compression.validate()?;
        Ok(())
    }

    /// The largest frame accepted, finite: the frame limit, the ceiling for
    /// `None`, and never more than the message limit (which applies anyway).
    #[cfg_attr(all(target_arch = "wasm32", target_os = "unknown"), allow(dead_code))]
    pub(crate) fn frame_limit(&self) -> usize {
        self.max_frame_size
            .unwrap_or(MAX_MESSAGE_SIZE_CEILING)
            .min(self.message_limit())
    }

    /// The largest message accepted, finite: the ceiling for `None`.
    pub(crate) fn message_limit(&self) -> usize {
        self.max_message_size
            .unwrap_or(MAX_MESSAGE_SIZE_CEILING)
            .min(MAX_MESSAGE_SIZE_CEILING)
    }
}

/// Refuses what a browser cannot honour, with [`ErrorKind::Unsupported`]
/// and the reason: never silently ignored. Compiled on every target so
/// that it is tested natively; the browser transport calls it at `open`.
#[cfg_attr(
    not(all(target_arch = "wasm32", target_os = "unknown")),
    allow(dead_code)
)]
pub(crate) fn browser_unsupported(options: &Options) -> Result<(), Error> {
    let unsupported = |why: &str| Err(Error::new(ErrorKind::Unsupported, why));
    if !options.root_certificates.is_empty() {
        return unsupported(
            "extra root certificates cannot be used in a browser, which trusts its own \
             certificate store only",
        );
    }
    if options.read_buffer_size.is_some() {
        return unsupported(
            "read_buffer_size cannot be set in a browser, which reads the socket itself",
        );
    }
    if options.retry.connect_timeout != DEFAULT_CONNECT_TIMEOUT {
        return unsupported(
            "connect_timeout cannot be set in a browser, which has no connection below the \
             WebSocket: use Options::upgrade_timeout, which bounds the whole opening",
        );
    }
    if !options.proxy.as_ref().is_some_and(Proxy::is_from_env) {
        return unsupported(
            "a proxy (or no_proxy) cannot be chosen in a browser, which uses the system's proxy \
             settings (or its own) for every WebSocket",
        );
    }
    if options.tls_native_roots {
        return unsupported(
            "tls_native_roots cannot be set in a browser, which always trusts its own \
             certificate store",
        );
    }
    if options.tls_config.is_some() {
        return unsupported(
            "tls_config cannot be used in a browser, which does TLS itself with its own \
             certificate store",
        );
    }
    if options.tls_client_certificate.is_some() {
        return unsupported(
            "a client certificate cannot be given in a browser, which asks the user to pick \
             one from its own store when a server requests it",
        );
    }
    if options.connector.is_some() {
        return unsupported(
            "a connector cannot be used in a browser, which opens the WebSocket's connection \
             itself",
        );
    }
    if !options.silence_pings {
        return unsupported(
            "silence_pings(false) cannot be honoured in a browser, which answers pings itself \
             and never shows ping or pong frames to scripts",
        );
    }
    if let Some(keepalive) = &options.keepalive {
        if matches!(keepalive.heartbeat, Heartbeat::Ping) {
            return unsupported(
                "a browser cannot send ping frames: give the keepalive a heartbeat message \
                 (Keepalive::heartbeat(Heartbeat::echo(..)) or Heartbeat::message(..))",
            );
        }
    }
    Ok(())
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
            .finish()
    }
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOption, message)
}

/// `MAX_DURATION` in words, for error messages.
const MAX_DURATION_TEXT: &str = "24 days (2073600s)";

/// A duration from `min` (which may be zero) to [`MAX_DURATION`].
fn check_duration(name: &str, value: Duration, min: Duration) -> Result<(), Error> {
    if value < min || value > MAX_DURATION {
        return Err(invalid(format!(
            "{name} must be from {} to {MAX_DURATION_TEXT}, got {}",
            redact::Dur(min),
            redact::Dur(value)
        )));
    }
    Ok(())
}

/// A duration longer than zero and at most [`MAX_DURATION`].
fn check_positive_duration(name: &str, value: Duration) -> Result<(), Error> {
    if value.is_zero() || value > MAX_DURATION {
        return Err(invalid(format!(
            "{name} must be longer than zero and at most {MAX_DURATION_TEXT}, got {}",
            redact::Dur(value)
        )));
    }
    Ok(())
}

/// A size (bytes or a count) from `min` to `max`.
fn check_size(name: &str, value: usize, min: usize, max: usize) -> Result<(), Error> {
    if value < min {
        return Err(invalid(format!(
            "{name} must be at least {min}, got {value}"
        )));
    }
    if value > max {
        return Err(invalid(format!(
            "{name} must be at most {max}, got {value}"
        )));
    }
    Ok(())
}

/// A number of milliseconds from outside Rust (the JS facade) as a
/// `Duration`, refusing what no option accepts (NaN, negative, infinite,
/// or beyond what a `Duration` holds) instead of panicking. The option's
/// own bound is checked by [`Options::validate`].
#[cfg_attr(
    not(all(feature = "js", target_arch = "wasm32", target_os = "unknown")),
    allow(dead_code)
)]
pub(crate) fn duration_from_millis(name: &str, millis: f64) -> Result<Duration, Error> {
    if millis.is_nan() || millis < 0.0 {
        return Err(invalid(format!(
            "{name} must be a number of milliseconds of at least 0, got {}",
            redact::Float(millis)
        )));
    }
    Duration::try_from_secs_f64(millis / 1000.0).map_err(|_| {
        invalid(format!(
            "{name} must be at most {} ms ({MAX_DURATION_TEXT}), got {}",
            // In u64: u128's formatting is ~1.5 KB of a browser bundle.
            MAX_DURATION.as_secs() * 1000,
            redact::Float(millis)
        ))
    })
}

/// The reconnect policy: exponential backoff with jitter, and how long the
/// first connection may take ([`Retry::first_connection`]).
///
/// The delay before retry *n* (1-based) is `initial_delay * multiplier^(n-1)`,
/// capped at `max_delay`, then reduced by a random part of up to `jitter`
/// of it, so that many clients do not come back at once. The count starts
/// again once a connection has stayed up for `reset_after`.
///
/// # The first connection
///
/// Until the first Websocket is open (the first
/// [`Event::Upgraded`](crate::Event::Upgraded)), the first-connection
/// budget ([`FirstConnection`], default: one attempt) decides whether a
/// failed attempt is tried again, instead of
/// [`Retry::max_retries`]; the delays between attempts, the status
/// decisions ([`Retry::decision`], [`Retry::proxy_decision`]) and the
/// timeouts are the same. Once it is open, this reconnect policy applies.
///
/// When the first connection gives up, whatever the reason (a refused or
/// unresolved dial, TLS, a proxy, an HTTP status, a timeout, a failing
/// upgrade provider, or the budget spent), the events end the same way,
/// on both targets:
///
/// 1. [`Event::UpgradeFailed`](crate::Event::UpgradeFailed) for the
///    upgrade in flight or waiting, if any (with the status and headers of
///    a refusal, natively);
/// 2. [`Event::Error`](crate::Event::Error) `{ stream: None, error }`,
///    where `error` is the last real error (its kind says which:
///    [`ErrorKind::Connect`], [`ErrorKind::Tls`], [`ErrorKind::Proxy`],
///    [`ErrorKind::Timeout`], [`ErrorKind::Upgrade`],
///    [`ErrorKind::UpgradeRefused`] with [`Error::status`](crate::Error::status),
///    [`ErrorKind::Provider`]);
/// 3. [`Event::Down`](crate::Event::Down) `{ will_reconnect: false, .. }`
///    with every frame that was queued in `unsent` and no `killed_streams`
///    (no Websocket was open; the upgrade had its `UpgradeFailed`); its
///    `reason` is [`DownReason::Error`](crate::DownReason::Error) with
///    the same error, or [`DownReason::UpgradeRejected`](crate::DownReason::UpgradeRejected)
///    after a status;
/// 4. the end of the [`Events`](crate::Events) stream.
///
/// [`connect`](crate::connect) fails with that same `error`. Attempts
/// before the last show as they do later in a connection's life (an
/// `Error` for a failed dial, `Up`, `UpgradeFailed` and `Down` for a
/// failed upgrade, then `Reconnecting`). A shutdown, or every handle
/// dropped, before the first success is not a failure: it ends as it
/// always does. In a browser every attempt shows `Up` first (there is no
/// connection below the WebSocket) and the error is
/// [`ErrorKind::Upgrade`] or [`ErrorKind::Timeout`], since a browser does
/// not tell scripts why a WebSocket did not open.
#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    pub(crate) max_retries: Option<u32>,
    pub(crate) initial_delay: Duration,
    pub(crate) max_delay: Duration,
    pub(crate) multiplier: f64,
    pub(crate) jitter: f64,
    pub(crate) reset_after: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) stop_on_close_codes: Vec<u16>,
    pub(crate) on_status: Vec<(u16, RetryDecision)>,
    pub(crate) on_proxy_status: Vec<(u16, RetryDecision)>,
    pub(crate) first_connection: FirstConnection,
}

/// How long the first connection may take before it gives up
/// ([`Retry::first_connection`]): see [`Retry`]'s "The first connection"
/// for what counts and what the events show.
///
/// ```
/// use std::time::Duration;
/// use wstether::{FirstConnection, Retry};
/// // Wait up to a minute for a server that is still starting.
/// let retry = Retry::default().first_connection(FirstConnection::Deadline(Duration::from_secs(60)));
/// # let _ = retry;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FirstConnection {
    /// At most this many attempts (dial and upgrade), the default being 1,
    /// as `await websockets.connect()` and tokio-tungstenite do. At least
    /// 1 ([`ErrorKind::InvalidOption`] otherwise, at `open`).
    Attempts(u32),
    /// Attempts until this long after `open`: an attempt still in progress
    /// then fails with [`ErrorKind::Timeout`], and no attempt starts whose
    /// backoff delay would end past it. Longer than zero and at most 24
    /// days ([`ErrorKind::InvalidOption`] otherwise, at `open`).
    Deadline(Duration),
    /// The reconnect policy ([`Retry::max_retries`], by default unlimited)
    /// applies from the first attempt: with [`Retry::default`], wait for
    /// the server forever (wstether 0.1's behaviour).
    ReconnectPolicy,
}

impl Default for FirstConnection {
    /// One attempt.
    fn default() -> FirstConnection {
        FirstConnection::Attempts(1)
    }
}

impl Default for Retry {
    /// Retry forever once connected, but give the first connection one
    /// attempt ([`FirstConnection::Attempts`]`(1)`); 100 ms doubling up to 30 s, half of it jittered;
    /// reset after 10 s up; 10 s connect timeout; stop on close codes
    /// 1003, 1007, 1008 and 1010, which a reconnect would only meet again;
    /// after a refused upgrade, decide by its status (see
    /// [`Retry::decision`]: 3xx and most 4xx stop); after a proxy refused
    /// the credentials (407 or 401), stop (see [`Retry::proxy_decision`]).
    fn default() -> Retry {
        Retry {
            max_retries: None,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: 0.5,
            reset_after: Duration::from_secs(10),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            stop_on_close_codes: vec![1003, 1007, 1008, 1010],
            on_status: Vec::new(),
            on_proxy_status: Vec::new(),
            first_connection: FirstConnection::default(),
        }
    }
}

impl Retry {
    /// Never reconnect: the first time the connection goes down, it ends
    /// (and the first connection has its default budget, one attempt).
    pub fn never() -> Retry {
        Retry::default().max_retries(0)
    }

    /// How many consecutive retries before giving up, once the first
    /// connection succeeded (default: no limit; see
    /// [`Retry::unlimited_retries`]). Any value is accepted; counts
    /// saturate rather than overflow.
    pub fn max_retries(mut self, retries: u32) -> Retry {
        self.max_retries = Some(retries);
        self
    }

    /// Retry forever once connected (the default).
    pub fn unlimited_retries(mut self) -> Retry {
        self.max_retries = None;
        self
    }

    /// How long the first connection may take before it gives up: a number
    /// of attempts or a deadline (default: one attempt). See
    /// [`FirstConnection`], and [`Retry`]'s "The first connection" for the
    /// events.
    pub fn first_connection(mut self, budget: FirstConnection) -> Retry {
        self.first_connection = budget;
        self
    }

    /// The first delay (default 100 ms). From 1 ms (a zero delay would
    /// hammer a refused port tens of thousands of times per second) to
    /// 24 days, and at most `max_delay`; [`ErrorKind::InvalidOption`]
    /// otherwise, at `open`.
    pub fn initial_delay(mut self, delay: Duration) -> Retry {
        self.initial_delay = delay;
        self
    }

    /// The largest delay (default 30 s). At most 24 days
    /// ([`ErrorKind::InvalidOption`] otherwise, at `open`), and every delay
    /// is capped by it, however many retries came before.
    pub fn max_delay(mut self, delay: Duration) -> Retry {
        self.max_delay = delay;
        self
    }

    /// The growth factor per retry (default 2.0): a finite number of at
    /// least 1.0 ([`ErrorKind::InvalidOption`] otherwise, at `open`). Huge
    /// factors are fine: the delay stops growing at `max_delay`.
    pub fn multiplier(mut self, multiplier: f64) -> Retry {
        self.multiplier = multiplier;
        self
    }

    /// The random share taken off each delay, from 0.0 (none) to 1.0 (the
    /// delay is uniform between zero and its value). Default 0.5. Other
    /// values (NaN included) make `open` fail with
    /// [`ErrorKind::InvalidOption`].
    pub fn jitter(mut self, jitter: f64) -> Retry {
        self.jitter = jitter;
        self
    }

    /// How long a connection must stay up before the retry count starts
    /// again (default 10 s). At most 24 days ([`ErrorKind::InvalidOption`]
    /// otherwise, at `open`).
    pub fn reset_after(mut self, uptime: Duration) -> Retry {
        self.reset_after = uptime;
        self
    }

    /// How long one connect attempt (TCP and TLS) may take (default 10 s).
    /// Longer than zero and at most 24 days ([`ErrorKind::InvalidOption`]
    /// otherwise, at `open`).
    ///
    /// Native only: a browser has no connection below the WebSocket, so
    /// [`Connection::open`](crate::Connection::open) refuses any value but
    /// the default there with [`ErrorKind::Unsupported`]; use
    /// [`Options::upgrade_timeout`], which bounds the whole opening.
    pub fn connect_timeout(mut self, timeout: Duration) -> Retry {
        self.connect_timeout = timeout;
        self
    }

    /// Close codes from the server after which wstether does not reconnect.
    pub fn stop_on_close_codes(mut self, codes: impl Into<Vec<u16>>) -> Retry {
        self.stop_on_close_codes = codes.into();
        self
    }

    /// What to do after the server refuses an upgrade with `status`,
    /// instead of the default (see [`Retry::decision`]). The last call for
    /// a status wins.
    ///
    /// ```
    /// use http::StatusCode;
    /// use wstether::{Retry, RetryDecision};
    /// // A server that answers 404 while it deploys: keep trying.
    /// let retry = Retry::default().on_status(StatusCode::NOT_FOUND, RetryDecision::Retry);
    /// assert_eq!(retry.decision(StatusCode::NOT_FOUND), RetryDecision::Retry);
    /// ```
    pub fn on_status(mut self, status: StatusCode, decision: RetryDecision) -> Retry {
        self.on_status.retain(|(code, _)| *code != status.as_u16());
        self.on_status.push((status.as_u16(), decision));
        self
    }

    /// What this policy does after the server refuses an upgrade with
    /// `status`: the decision set by [`Retry::on_status`], else the default:
    ///
    /// | status | default |
    /// |---|---|
    /// | 401 | [`RetryDecision::RetryWithProvider`]: retried only when an upgrade provider ([`Options::auto_upgrade_with`]) can send fresh credentials |
    /// | 408, 429, 500–599 | [`RetryDecision::Retry`], honouring `Retry-After` |
    /// | any other (3xx, other 4xx, an unexpected 1xx or 2xx) | [`RetryDecision::Stop`] |
    ///
    /// A retried refusal waits at least what the answer's `Retry-After`
    /// asks (delta-seconds or an HTTP-date), but never longer than
    /// [`Retry::max_delay`]: `max_delay` is the longest the client waits
    /// between attempts, whatever a server says (raise it to honour long
    /// `Retry-After`s). A retry counts against [`Retry::max_retries`] as
    /// any other.
    ///
    /// **Browser:** the browser hides the status of a refused upgrade from
    /// scripts, so this policy never applies there: a failed upgrade is
    /// retried by the backoff like any other failure.
    pub fn decision(&self, status: StatusCode) -> RetryDecision {
        let code = status.as_u16();
        if let Some((_, decision)) = self.on_status.iter().find(|(c, _)| *c == code) {
            return *decision;
        }
        match code {
            401 => RetryDecision::RetryWithProvider,
            408 | 429 | 500..=599 => RetryDecision::Retry,
            _ => RetryDecision::Stop,
        }
    }

    /// What to do after a proxy refuses the tunnel with `status`
    /// ([`Error::proxy_status`](crate::Error::proxy_status)), instead of the
    /// default (see [`Retry::proxy_decision`]). The last call for a status
    /// wins.
    ///
    /// ```
    /// use http::StatusCode;
    /// use wstether::{Retry, RetryDecision};
    /// // A proxy whose credentials are rotated under it: keep trying.
    /// let retry = Retry::default()
    ///     .on_proxy_status(StatusCode::PROXY_AUTHENTICATION_REQUIRED, RetryDecision::Retry);
    /// assert_eq!(
    ///     retry.proxy_decision(StatusCode::PROXY_AUTHENTICATION_REQUIRED),
    ///     RetryDecision::Retry
    /// );
    /// ```
    pub fn on_proxy_status(mut self, status: StatusCode, decision: RetryDecision) -> Retry {
        self.on_proxy_status
            .retain(|(code, _)| *code != status.as_u16());
        self.on_proxy_status.push((status.as_u16(), decision));
        self
    }

    /// What this policy does after a proxy ([`Proxy`](crate::Proxy))
    /// refuses the tunnel with `status`: the decision set by
    /// [`Retry::on_proxy_status`], else the default:
    ///
    /// | proxy status | default |
    /// |---|---|
    /// | 407, 401 (the credentials were missing or refused) | [`RetryDecision::Stop`]: a wrong password does not fix itself, and asking again only hammers the proxy |
    /// | any other (403 for a target the proxy does not allow, 502 when it could not reach the target...) | [`RetryDecision::Retry`], by the backoff |
    ///
    /// A SOCKS5 proxy that refuses the user name and password (or asks for
    /// credentials that were not given) has no HTTP status; it is reported
    /// as 407 so that one policy covers both kinds of proxy.
    /// [`RetryDecision::RetryWithProvider`] is [`RetryDecision::Stop`]
    /// here: an upgrade provider sets the upgrade's headers, not the
    /// proxy's credentials.
    ///
    /// A stop is the failed attempt's [`Event::Error`](crate::Event::Error)
    /// (kind [`ErrorKind::Proxy`], with the status), then a last
    /// `Event::Error` of the same kind and status saying that it is not
    /// retried, with the frames that were waiting; the events end there.
    pub fn proxy_decision(&self, status: StatusCode) -> RetryDecision {
        let code = status.as_u16();
        if let Some((_, decision)) = self.on_proxy_status.iter().find(|(c, _)| *c == code) {
            return match decision {
                RetryDecision::RetryWithProvider => RetryDecision::Stop,
                other => *other,
            };
        }
        match code {
            401 | 407 => RetryDecision::Stop,
            _ => RetryDecision::Retry,
        }
    }

    fn validate(&self) -> Result<(), Error> {
        if !(self.multiplier >= 1.0 && self.multiplier.is_finite()) {
            return Err(invalid(format!(
                "retry.multiplier must be a finite number of at least 1.0, got {}",
                redact::Float(self.multiplier)
            )));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(invalid(format!(
                "retry.jitter must be from 0.0 to 1.0, got {}",
                redact::Float(self.jitter)
            )));
        }
        check_duration("retry.initial_delay", self.initial_delay, MIN_RETRY_DELAY)?;
        check_duration("retry.max_delay", self.max_delay, MIN_RETRY_DELAY)?;
        if self.initial_delay > self.max_delay {
            return Err(invalid(format!(
                "retry.initial_delay ({}) must not exceed retry.max_delay ({})",
                redact::Dur(self.initial_delay),
                redact::Dur(self.max_delay)
            )));
        }
        check_duration("retry.reset_after", self.reset_after, Duration::ZERO)?;
        check_positive_duration("retry.connect_timeout", self.connect_timeout)?;
        match self.first_connection {
            FirstConnection::Attempts(0) => Err(invalid(
                "retry.first_connection: FirstConnection::Attempts must be at least 1, got 0",
            )),
            FirstConnection::Deadline(deadline) => {
                check_positive_duration("retry.first_connection deadline", deadline)
            }
            _ => Ok(()),
        }
    }
}

/// What a connection does after the server refused its upgrade with an
/// HTTP status: see [`Retry::decision`] for the defaults and
/// [`Retry::on_status`] to change them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RetryDecision {
    /// Reconnect by the backoff, waiting at least what `Retry-After` asks
    /// (up to [`Retry::max_delay`]).
    Retry,
    /// Reconnect (as [`RetryDecision::Retry`]) only when an upgrade
    /// provider is set ([`Options::auto_upgrade_with`]), which can send
    /// fresh credentials; otherwise stop, as the same request would be
    /// refused again.
    RetryWithProvider,
    /// End the connection: [`Event::UpgradeFailed`](crate::Event::UpgradeFailed),
    /// then [`Event::Error`](crate::Event::Error) with
    /// [`ErrorKind::UpgradeRefused`], then the final
    /// [`Event::Down`](crate::Event::Down) (`UpgradeRejected`,
    /// `will_reconnect: false`).
    Stop,
}

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
    /// ([`ErrorKind::InvalidOption`] otherwise, at `open`).
    ///
    /// A browser cannot send pings: give it a heartbeat message with
    /// [`Keepalive::heartbeat`], or [`Connection::open`](crate::Connection::open)
    /// refuses the keepalive there with [`ErrorKind::Unsupported`].
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

    fn default_for_target() -> Option<Keepalive> {
        if cfg!(all(target_arch = "wasm32", target_os = "unknown")) {
            None
        } else {
            Some(Keepalive::every(Duration::from_secs(20)).timeout(Duration::from_secs(10)))
        }
    }

    fn validate(&self) -> Result<(), Error> {
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
    /// [`ErrorKind::Unsupported`].
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

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const SEC: Duration = Duration::from_secs(1);

    fn keepalive(interval: Duration, timeout: Duration) -> Options {
        Options::default().keepalive(Keepalive::every(interval).timeout(timeout))
    }

    fn retry(retry: Retry) -> Options {
        Options::default().retry(retry)
    }

    /// The closures an `Options` keeps are `Send + Sync` natively, so the
    /// connection's task may run on any thread.
    #[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
    #[test]
    fn options_are_send_and_sync_natively() {
        fn send_sync<T: Send + Sync + ?Sized>() {}
        send_sync::<Options>();
        send_sync::<Heartbeat>();
        send_sync::<dyn ReplyMatcher>();
        send_sync::<dyn UpgradeProvider>();
    }

    #[test]
    fn defaults_are_valid() {
        Options::default().validate().unwrap();
    }

    #[test]
    fn default_frame_limit_equals_the_message_limit() {
        let options = Options::default();
        assert_eq!(options.max_frame_size, options.max_message_size);
        assert_eq!(options.frame_limit(), 64 << 20);
        assert_eq!(options.message_limit(), 64 << 20);
    }

    #[test]
    fn limits_are_finite() {
        let none = Options::default()
            .max_frame_size(MAX_MESSAGE_SIZE_CEILING)
            .max_message_size(MAX_MESSAGE_SIZE_CEILING);
        none.validate().unwrap();
        assert_eq!(none.frame_limit(), MAX_MESSAGE_SIZE_CEILING);
        assert_eq!(none.message_limit(), MAX_MESSAGE_SIZE_CEILING);
        // A frame limit above the message limit: the message limit applies.
        let big_frames = Options::default()
            .max_frame_size(8 << 20)
            .max_message_size(1 << 20);
        big_frames.validate().unwrap();
        assert_eq!(big_frames.frame_limit(), 1 << 20);
        assert_eq!(big_frames.message_limit(), 1 << 20);
    }

    /// Every option at its bounds and just past them: accepted or refused
    /// with `InvalidOption`, as the table says.
    #[test]
    fn every_option_is_bounded() {
        let ceiling = MAX_MESSAGE_SIZE_CEILING;
        let past = MAX_DURATION + Duration::from_nanos(1);
        let cases: Vec<(&str, Options, bool)> = vec![
            // Durations of the options themselves.
            (
                "upgrade_timeout 0",
                Options::default().upgrade_timeout(Duration::ZERO),
                false,
            ),
            (
                "upgrade_timeout 1ns",
                Options::default().upgrade_timeout(Duration::from_nanos(1)),
                true,
            ),
            (
                "upgrade_timeout max",
                Options::default().upgrade_timeout(MAX_DURATION),
                true,
            ),
            (
                "upgrade_timeout past",
                Options::default().upgrade_timeout(past),
                false,
            ),
            (
                "upgrade_timeout MAX",
                Options::default().upgrade_timeout(Duration::MAX),
                false,
            ),
            (
                "closing_timeout 0",
                Options::default().closing_timeout(Duration::ZERO),
                false,
            ),
            (
                "closing_timeout max",
                Options::default().closing_timeout(MAX_DURATION),
                true,
            ),
            (
                "closing_timeout MAX",
                Options::default().closing_timeout(Duration::MAX),
                false,
            ),
            // Keepalive.
            ("keepalive 0/1", keepalive(Duration::ZERO, SEC), false),
            ("keepalive 1/0", keepalive(SEC, Duration::ZERO), false),
            (
                "keepalive max/max",
                keepalive(MAX_DURATION, MAX_DURATION),
                true,
            ),
            ("keepalive MAX/1", keepalive(Duration::MAX, SEC), false),
            ("keepalive 1/MAX", keepalive(SEC, Duration::MAX), false),
            ("keepalive past/1", keepalive(past, SEC), false),
            // Retry durations.
            (
                "initial_delay 0",
                retry(Retry::default().initial_delay(Duration::ZERO)),
                false,
            ),
            (
                "initial_delay 999us",
                retry(Retry::default().initial_delay(Duration::from_micros(999))),
                false,
            ),
            (
                "initial_delay 1ms",
                retry(Retry::default().initial_delay(MS)),
                true,
            ),
            (
                "max_delay 0",
                retry(Retry::default().initial_delay(MS).max_delay(Duration::ZERO)),
                false,
            ),
            (
                "max_delay max",
                retry(Retry::default().max_delay(MAX_DURATION)),
                true,
            ),
            (
                "max_delay past",
                retry(Retry::default().max_delay(past)),
                false,
            ),
            (
                "max_delay MAX",
                retry(Retry::default().max_delay(Duration::MAX)),
                false,
            ),
            (
                "initial=max=max",
                retry(
                    Retry::default()
                        .initial_delay(MAX_DURATION)
                        .max_delay(MAX_DURATION),
                ),
                true,
            ),
            (
                "initial MAX",
                retry(
                    Retry::default()
                        .initial_delay(Duration::MAX)
                        .max_delay(Duration::MAX),
                ),
                false,
            ),
            (
                "initial > max",
                retry(Retry::default().initial_delay(5 * SEC).max_delay(SEC)),
                false,
            ),
            (
                "reset_after 0",
                retry(Retry::default().reset_after(Duration::ZERO)),
                true,
            ),
            (
                "reset_after max",
                retry(Retry::default().reset_after(MAX_DURATION)),
                true,
            ),
            (
                "reset_after MAX",
                retry(Retry::default().reset_after(Duration::MAX)),
                false,
            ),
            (
                "connect_timeout 0",
                retry(Retry::default().connect_timeout(Duration::ZERO)),
                false,
            ),
            (
                "connect_timeout max",
                retry(Retry::default().connect_timeout(MAX_DURATION)),
                true,
            ),
            (
                "connect_timeout MAX",
                retry(Retry::default().connect_timeout(Duration::MAX)),
                false,
            ),
            // Retry numbers.
            (
                "max_retries 0",
                retry(Retry::default().max_retries(0)),
                true,
            ),
            (
                "max_retries u32::MAX",
                retry(Retry::default().max_retries(u32::MAX)),
                true,
            ),
            (
                "multiplier 1",
                retry(Retry::default().multiplier(1.0)),
                true,
            ),
            (
                "multiplier 1e300",
                retry(Retry::default().multiplier(1e300)),
                true,
            ),
            (
                "multiplier f64::MAX",
                retry(Retry::default().multiplier(f64::MAX)),
                true,
            ),
            (
                "multiplier 0.5",
                retry(Retry::default().multiplier(0.5)),
                false,
            ),
            (
                "multiplier -1",
                retry(Retry::default().multiplier(-1.0)),
                false,
            ),
            (
                "multiplier NaN",
                retry(Retry::default().multiplier(f64::NAN)),
                false,
            ),
            (
                "multiplier inf",
                retry(Retry::default().multiplier(f64::INFINITY)),
                false,
            ),
            ("jitter 0", retry(Retry::default().jitter(0.0)), true),
            ("jitter 1", retry(Retry::default().jitter(1.0)), true),
            ("jitter 1.5", retry(Retry::default().jitter(1.5)), false),
            ("jitter -0.1", retry(Retry::default().jitter(-0.1)), false),
            (
                "jitter NaN",
                retry(Retry::default().jitter(f64::NAN)),
                false,
            ),
            (
                "jitter inf",
                retry(Retry::default().jitter(f64::INFINITY)),
                false,
            ),
            // Sizes.
            (
                "max_frame_size 0",
                Options::default().max_frame_size(0),
                false,
            ),
            (
                "max_frame_size 1",
                Options::default().max_frame_size(1),
                true,
            ),
            (
                "max_frame_size ceiling",
                Options::default().max_frame_size(ceiling),
                true,
            ),
            (
                "max_frame_size past",
                Options::default().max_frame_size(ceiling + 1),
                false,
            ),
            (
                "max_frame_size usize::MAX",
                Options::default().max_frame_size(usize::MAX),
                false,
            ),
            (
                "max_message_size 0",
                Options::default().max_message_size(0),
                false,
            ),
            (
                "max_message_size ceiling",
                Options::default().max_message_size(ceiling),
                true,
            ),
            (
                "max_message_size usize::MAX",
                Options::default().max_message_size(usize::MAX),
                false,
            ),
            (
                "read_buffer_size 0",
                Options::default().read_buffer_size(0),
                false,
            ),
            (
                "read_buffer_size 63",
                Options::default().read_buffer_size(63),
                false,
            ),
            (
                "read_buffer_size 64",
                Options::default().read_buffer_size(64),
                true,
            ),
            (
                "read_buffer_size max",
                Options::default().read_buffer_size(MAX_READ_BUFFER_SIZE),
                true,
            ),
            (
                "read_buffer_size past",
                Options::default().read_buffer_size(MAX_READ_BUFFER_SIZE + 1),
                false,
            ),
            (
                "read_buffer_size usize::MAX",
                Options::default().read_buffer_size(usize::MAX),
                false,
            ),
            (
                "send_queue_bytes 0",
                Options::default().send_queue_bytes(0),
                false,
            ),
            (
                "send_queue_bytes 1",
                Options::default().send_queue_bytes(1),
                true,
            ),
            (
                "send_queue_bytes usize::MAX",
                Options::default().send_queue_bytes(usize::MAX),
                false,
            ),
            (
                "event_queue_len 0",
                Options::default().event_queue_len(0),
                false,
            ),
            (
                "event_queue_len 1",
                Options::default().event_queue_len(1),
                true,
            ),
            (
                "event_queue_len max",
                Options::default().event_queue_len(MAX_EVENT_QUEUE_LEN),
                true,
            ),
            (
                "event_queue_len past",
                Options::default().event_queue_len(MAX_EVENT_QUEUE_LEN + 1),
                false,
            ),
            (
                "event_queue_len usize::MAX",
                Options::default().event_queue_len(usize::MAX),
                false,
            ),
            // Heartbeats.
            (
                "ping heartbeat message",
                Options::default().keepalive(
                    Keepalive::every(SEC)
                        .timeout(SEC)
                        .heartbeat(Heartbeat::echo(Frame::Ping(Default::default()))),
                ),
                false,
            ),
        ];
        for (name, options, valid) in cases {
            match options.validate() {
                Ok(()) => assert!(valid, "{name}: accepted, should be refused"),
                Err(err) => {
                    assert!(!valid, "{name}: refused, should be accepted: {err}");
                    assert_eq!(err.kind(), ErrorKind::InvalidOption, "{name}: {err}");
                }
            }
        }
    }

    #[test]
    fn errors_name_the_option_and_its_bound() {
        let err = retry(Retry::default().initial_delay(Duration::ZERO))
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("retry.initial_delay") && err.contains("1ms"),
            "{err}"
        );
        let err = Options::default()
            .upgrade_timeout(Duration::MAX)
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("upgrade_timeout") && err.contains("24 days"),
            "{err}"
        );
        let err = Options::default()
            .max_frame_size(usize::MAX)
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("max_frame_size") && err.contains(&MAX_MESSAGE_SIZE_CEILING.to_string()),
            "{err}"
        );
    }

    #[test]
    fn max_duration_fits_a_browser_timer() {
        assert!(MAX_DURATION.as_millis() <= i32::MAX as u128);
        assert_eq!(MAX_DURATION_TEXT, format!("24 days ({MAX_DURATION:?})"));
    }

    #[test]
    fn milliseconds_from_js_never_panic() {
        for bad in [
            f64::NAN,
            -1.0,
            f64::NEG_INFINITY,
            f64::INFINITY,
            1e300,
            f64::MAX,
        ] {
            let err = duration_from_millis("maxDelayMs", bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidOption, "{bad}");
            assert!(err.to_string().contains("maxDelayMs"), "{err}");
        }
        assert_eq!(duration_from_millis("x", 0.0).unwrap(), Duration::ZERO);
        assert_eq!(duration_from_millis("x", 1500.0).unwrap(), 1500 * MS);
        // Representable but past the bound: validate refuses it.
        let huge = duration_from_millis("x", 1e15).unwrap();
        let err = retry(Retry::default().max_delay(huge))
            .validate()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidOption);
    }

    #[test]
    fn the_browser_refuses_what_it_cannot_honour() {
        let ping = Keepalive::every(SEC).timeout(SEC);
        let message = ping.clone().heartbeat(Heartbeat::echo(Frame::text("hb")));
        let refused = [
            (
                "root certificate",
                Options::default().add_root_certificate_der(vec![1, 2, 3]),
                "root certificates",
            ),
            (
                "read_buffer_size",
                Options::default().read_buffer_size(1 << 16),
                "read_buffer_size",
            ),
            (
                "connect_timeout",
                retry(Retry::default().connect_timeout(SEC)),
                "connect_timeout",
            ),
            (
                "silence_pings",
                Options::default().silence_pings(false),
                "silence_pings",
            ),
            (
                "ping keepalive",
                Options::default().keepalive(ping),
                "ping frames",
            ),
        ];
        for (name, options, why) in refused {
            let err = browser_unsupported(&options).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Unsupported, "{name}");
            assert!(err.to_string().contains(why), "{name}: {err}");
        }
        let accepted = [
            Options::default().no_keepalive(),
            Options::default().keepalive(message),
            retry(Retry::never()).no_keepalive().silence_pings(true),
            retry(Retry::default().connect_timeout(DEFAULT_CONNECT_TIMEOUT)).no_keepalive(),
        ];
        for options in accepted {
            browser_unsupported(&options).unwrap();
        }
    }

    #[test]
    fn the_browser_refuses_proxy_choices() {
        let proxy = crate::Proxy::http("http://user:pw@proxy:3128").unwrap();
        for (options, why) in [
            (Options::default().proxy(proxy), "proxy"),
            (Options::default().no_proxy(), "proxy"),
            (
                Options::default().tls_native_roots(true),
                "tls_native_roots",
            ),
        ] {
            let err = browser_unsupported(&options.no_keepalive()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Unsupported);
            assert!(err.to_string().contains(why), "{err}");
        }
        let from_env = Options::default()
            .proxy(crate::Proxy::from_env())
            .tls_native_roots(false)
            .no_keepalive();
        browser_unsupported(&from_env).unwrap();
    }

    /// The browser decides about compression: the option is accepted there.
    #[test]
    fn compression_is_accepted_in_a_browser_and_checked_everywhere() {
        let on = Options::default()
            .no_keepalive()
            .compression(crate::Compression::deflate().level(9));
        browser_unsupported(&on).unwrap();
        on.validate().unwrap();
        for (bad, why) in [
            (crate::Compression::deflate().level(10), "level"),
            (
                crate::Compression::deflate().client_max_window_bits(8),
                "client_max_window_bits",
            ),
            (
                crate::Compression::deflate().server_max_window_bits(Some(16)),
                "server_max_window_bits",
            ),
        ] {
            let err = Options::default().compression(bad).validate().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidOption);
            assert!(err.to_string().contains(why), "{err}");
        }
    }
}
