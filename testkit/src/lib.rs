//! A real, scriptable WebSocket server on loopback, for testing WebSocket
//! clients (wstether's own tests, benches and demo use it).
//!
//! [`TestServer`] listens on a TCP port (by default `127.0.0.1:0`) and speaks
//! HTTP/1.1 and WebSocket (RFC 6455) itself. What each connection does is chosen
//! by the **query string of its upgrade request**, so a browser client, which
//! can only choose a URL, can drive it as well as a Rust test can.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use wstether_testkit::TestServer;
//!
//! let server = TestServer::start().await?;
//! // Echo server: every text/binary frame comes back unchanged.
//! let echo = server.url("/");
//! // Sends 3 text frames "0 xxx…", "1 xxx…", "2 xxx…", then closes with 1001.
//! let scripted = server.url("/?send=3&close=1001&reason=bye");
//! # let _ = (echo, scripted);
//! // … connect a client to those URLs …
//! server.wait_for_connections(2).await;
//! server.drop_connections(); // abrupt TCP drop, no close frame
//! server.stop().await; // connects are now refused
//! server.restart().await?; // same port again
//! # Ok(()) }
//! ```
//!
//! # Behaviour (query parameters, combinable)
//!
//! With no query the server echoes every text and binary frame back as the same
//! type and answers pings with pongs. Unknown parameters are ignored; a bad value
//! is refused with `400 Bad Request` (the request is still recorded).
//!
//! | parameter | effect |
//! |---|---|
//! | `protocol=NAME` | answer `Sec-WebSocket-Protocol: NAME`, offered or not. `protocol=` (empty): none. Absent: the first protocol the client offered, if any. |
//! | `reject=STATUS` | refuse the upgrade with this status (200..=599), header `x-testkit-reason: rejected` and a short body. |
//! | `header=NAME:VALUE` | (repeatable) add this header to the 101 answer or to the rejection. |
//! | `close=CODE`, `reason=TEXT`, `after=N` | after echoing `N` data frames (default 0, i.e. right after the upgrade and any `send` burst), send a close frame and complete the close handshake (the TCP is dropped if the client does not answer within 5 s). |
//! | `send=N`, `size=BYTES`, `kind=text\|binary` | right after the upgrade, send `N` frames (default 16 bytes, text; `N` at most 1 000 000, `size` at most 64 MiB, each frame a single WebSocket frame); frame `i` is `"{i} "` padded with `x` to `size` bytes (longer if `size` is too small for the prefix). The burst is streamed (flushed every MiB), so the server holds about one frame of it in memory, however slowly the client reads. |
//! | `ping_every=MS` | send a Ping (`testkit-ping-{n}`) every `MS` milliseconds. |
//! | `silent=1` | upgrade, then never answer anything (not even pings): a half-open peer. Received bytes are discarded unread by the WebSocket layer; the TCP stays open until the client leaves or the server drops it. |
//! | `drop_after=N` | after echoing `N` data frames (0: right after the upgrade), drop the TCP abruptly. |
//! | `no_upgrade=1` | read the request, never answer. |
//! | `garbage=1` | answer the upgrade request with non-HTTP bytes, then close. |
//! | `bad_frame=KIND` | after the upgrade write a raw invalid frame: `utf8`, `fragmented_ping`, `reserved_opcode`, `oversize` (a binary header announcing 100 MiB) or `oversize_message` (a 512 KiB binary message in 8 fragments of 64 KiB); then read what the client sends until its close frame, whose code is recorded ([`TestServer::client_close_codes`]). |
//! | `delay_ms=MS` | wait `MS` before answering the upgrade (success or rejection). |
//!
//! ## Hostile modes
//!
//! Servers that try to break the client's promises (bounded memory, dead
//! peer detection, typed errors). Each starts right after the 101 answer and
//! replaces the echo loop; of the other parameters only `size` (for
//! `trickle_ms`) and `delay_ms` apply. If several are given, the first of
//! this table wins.
//!
//! | parameter | effect |
//! |---|---|
//! | `ping_flood=1` | write Ping frames (payload `flood`, or `size` bytes of `floodflo…` with `size=0..=125`) as fast as the socket takes them and **never read** again: the client's pongs pile up on its side. Ends when a write fails (the client left). |
//! | `never_read=1` | never read and never write: the client's writes fill the TCP buffers. The TCP stays open until the server drops it ([`TestServer::drop_connections`], `stop`, or dropping the server). |
//! | `trickle_ms=MS` | (1..=600000) write one binary message of `size` bytes (default 64 KiB here; the payload of frame 0 of a `send` burst), header included, **one byte every `MS` ms**, reading nothing meanwhile; then discard whatever comes until the client leaves. |
//! | `claim_len=N` | (any `u64`) write one binary frame header claiming `N` payload bytes (shortest length encoding; `N` ≥ 2^63 sets the forbidden top bit), then 16 zero bytes, then hold the connection open, reading the client's frames until its close frame, whose code is recorded ([`TestServer::client_close_codes`]). Takes precedence over `bad_frame`. |
//!
//! ### Wire hostile modes
//!
//! | parameter | effect |
//! |---|---|
//! | `head_lf=1` | the 101 answer's lines end in a bare LF (combinable with any mode). |
//! | `close_hold=1` | send a close frame (`close=CODE`, default 1000), then read and discard everything, never answering it, keeping the TCP open until the client leaves. |
//! | `tiny_frames=N` | (at most 1 000 000) send N 1-byte binary frames (`t`), one write each, then keep the connection open reading nothing; `tiny_pace_ms=MS` (1..=600000) waits that long between two. |
//! | `bad_frame=phantom_head` | a 65,550-byte binary frame whose payload starts with `\r\n\r\n` and a 64 KiB frame header, then a close frame (1000). |
//! | `bad_frame=data_after_close_large` / `data_after_close_small` | a close frame (1000), then a binary frame of 70,000 / 1,000 bytes. |
//! | `bad_frame=masked` / `rsv2` / `control_too_long` / `continuation_first` / `data_in_fragment` / `length_top_bit` | a frame that breaks RFC 6455: masked, RSV2 set, a 126-byte ping, a continuation of nothing, a new message inside a fragmented one, a 64-bit length with its top bit set. |
//! | `bad_frame=ping_between_fragments` | a text message `ab` in two fragments with a ping between them (allowed), then a close frame (1000). |
//! | `bad_frame=close` | a close frame (1001), which the client answers. |
//! | `large_first=1` | before the `bad_frame` bytes, a 70,000-byte binary frame of `L`. |
//! | `bad_101=accept\|upgrade\|connection` | the 101 answer with a wrong `Sec-WebSocket-Accept`, or without its `Upgrade` or `Connection` header. |
//!
//! ## HTTP/2
//!
//! [`TestServer::start_http2`] and [`TestServer::start_tls_http2`] also
//! speak HTTP/2 (cleartext with prior knowledge; over TLS by ALPN), with
//! Websockets as extended CONNECT streams (RFC 8441) answered `200`, each
//! echoed as above and driven by the same query parameters (`reject`,
//! `header`, `protocol`, `close`, `send`, `delay_ms`, `silent`,
//! `bad_frame`, `claim_len`, `large_first`...; the HTTP/1.1 head modes,
//! `bad_101` and `head_lf`, do not apply).
//! [`Http2::WithoutConnectProtocol`] speaks HTTP/2 without enabling the
//! CONNECT protocol. HTTP/1.1 works on the same port. One more parameter:
//!
//! | parameter | effect |
//! |---|---|
//! | `h2_reset=1` | once the client has sent its first bytes on the stream, the first bytes of a binary frame, then `RST_STREAM(INTERNAL_ERROR)` on the stream. |
//! | `h2_goaway=1` | once the client has sent its first bytes on the stream, `GOAWAY(NO_ERROR)` with the stream open; the connection ends. |
//! | `h2_freeze=1` | once the client has sent its first bytes on the stream, the server stops serving the HTTP/2 connection (no reads, no PING answers) and holds its TCP open for a minute: a hung peer. |
//! | `silent=1` | (as over HTTP/1.1) the stream is answered, then never read: its flow-control window never opens again. |
//!
//! # HTTP control API (for browser tests)
//!
//! A plain (non-upgrade) `GET` on the same port:
//!
//! * `/_control/stats` → `200`, `{"accepted":N,"live":N,"requests":N,"pings":N,"frames":N}`
//!   (`live` includes the stats request's own connection), plus `"token":"T"` once
//!   [`TestServer::set_token`] was called (the binary's `--token T`), so a test can
//!   check it talks to the server it started;
//! * `/_control/drop` → `200`, then every other live connection is dropped abruptly;
//! * `/_control/close?code=1001&reason=bye` → `200`, then every live WebSocket
//!   is closed with that code (default 1000);
//! * `/_control/restart?down_ms=500` → `200`, then the server stops (listener
//!   closed, connections aborted), waits `down_ms` (default 0, at most 60000)
//!   and listens again on the same port.
//!
//! Every HTTP answer carries `Access-Control-Allow-Origin: *` and
//! `Cache-Control: no-store`; `OPTIONS` (CORS preflight) is answered with `204`.
//! Any other path is `404`.

// Native only (tokio's sockets): empty in a browser wasm32 build.
#![cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]

mod script;
mod server;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

pub use server::Http2;
use server::ServerCore;

/// The `wstether-testkit` binary built beside the running executable, for
/// a test or bench that needs the server in another process (so that the
/// memory it measures is the client's alone).
///
/// Cargo puts a test or bench in `target/PROFILE/deps/` and this package's
/// binary in `target/PROFILE/`: `cargo test --workspace` (and `cargo test`
/// at wstether's root, whose default members include this package) builds
/// it; otherwise `cargo build -p wstether-testkit` (with `--release` for a
/// release bench). Fails with [`std::io::ErrorKind::NotFound`], saying so,
/// when it is not there. Start it with `--token T` and check the token in
/// `/_control/stats` to know the server answering is the one started.
pub fn built_binary() -> std::io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let name = format!("wstether-testkit{}", std::env::consts::EXE_SUFFIX);
    let candidate = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile_dir| profile_dir.join(&name));
    match candidate {
        Some(path) if path.is_file() => Ok(path),
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!(
                "no {name} beside {}: build it with `cargo build -p wstether-testkit` \
                 (add --release for a release build)",
                exe.display()
            ),
        )),
    }
}

/// An upgrade request seen by the [`TestServer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// Path and query, exactly as requested (e.g. `/chat?send=3`).
    pub path: String,
    /// Every header in order, names in lowercase.
    pub headers: Vec<(String, String)>,
    /// The protocols of `Sec-WebSocket-Protocol`, in the order offered.
    pub offered_protocols: Vec<String>,
}

impl RecordedRequest {
    /// The value of the first header called `name` (case-insensitive), if any.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Stops the server when the last handle is dropped.
struct Owner {
    core: Arc<ServerCore>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.core.shut_down();
    }
}

/// A scriptable WebSocket server on loopback; see the [module docs](self).
///
/// Cloning gives another handle to the same server. The server (listener and
/// every connection) is shut down when the last handle is dropped.
#[derive(Clone)]
pub struct TestServer {
    owner: Arc<Owner>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("addr", &self.addr())
            .field("live_connections", &self.live_connections())
            .finish()
    }
}

impl TestServer {
    fn core(&self) -> &Arc<ServerCore> {
        &self.owner.core
    }

    /// Starts a server on `127.0.0.1` with a port chosen by the OS.
    pub async fn start() -> std::io::Result<TestServer> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    /// Starts a server on `addr` (port 0: chosen by the OS).
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<TestServer> {
        let core = ServerCore::start(addr, None, Http2::Off).await?;
        Ok(TestServer {
            owner: Arc::new(Owner { core }),
        })
    }

    /// Starts a cleartext server on `127.0.0.1` (port chosen by the OS)
    /// that also speaks HTTP/2 with prior knowledge (RFC 9113 §3.3) as
    /// `http2` says: Websockets over extended CONNECT (RFC 8441) with
    /// [`Http2::On`], HTTP/2 that refuses them with
    /// [`Http2::WithoutConnectProtocol`]. HTTP/1.1 upgrades work on the
    /// same port. See the module docs, "HTTP/2".
    pub async fn start_http2(http2: Http2) -> std::io::Result<TestServer> {
        Self::start_http2_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), http2).await
    }

    /// [`start_http2`](Self::start_http2) on `addr` (port 0: chosen by
    /// the OS); the binary's `--http2`.
    pub async fn start_http2_on(addr: SocketAddr, http2: Http2) -> std::io::Result<TestServer> {
        let core = ServerCore::start(addr, None, http2).await?;
        Ok(TestServer {
            owner: Arc::new(Owner { core }),
        })
    }

    /// [`start_tls`](Self::start_tls) that also offers HTTP/2 by ALPN
    /// (`h2`, then `http/1.1`) as `http2` says (see
    /// [`start_http2`](Self::start_http2)).
    ///
    /// Fails with [`std::io::ErrorKind::InvalidInput`] on a certificate or
    /// key rustls does not accept.
    pub async fn start_tls_http2(
        cert_chain_der: Vec<Vec<u8>>,
        key_der: Vec<u8>,
        http2: Http2,
    ) -> std::io::Result<TestServer> {
        Self::start_tls_with(cert_chain_der, key_der, None, http2).await
    }

    /// Starts a TLS server (`wss://`) on `127.0.0.1` with a port chosen by
    /// the OS, presenting `cert_chain_der` (the server's certificate first,
    /// DER) and its private key `key_der` (PKCS#8, PKCS#1 or SEC1 DER).
    /// It behaves exactly like [`start`](Self::start) once the TLS
    /// handshake is done; [`url`](Self::url) then gives
    /// `wss://localhost:PORT…`, so the certificate should name `localhost`.
    ///
    /// Fails with [`std::io::ErrorKind::InvalidInput`] on a certificate or
    /// key rustls does not accept.
    pub async fn start_tls(
        cert_chain_der: Vec<Vec<u8>>,
        key_der: Vec<u8>,
    ) -> std::io::Result<TestServer> {
        Self::start_tls_with(cert_chain_der, key_der, None, Http2::Off).await
    }

    /// [`start_tls`](Self::start_tls) that also requires a client
    /// certificate (mutual TLS), issued by one of `client_roots_der` (DER).
    /// A client without one, or with one from another issuer, is refused in
    /// the TLS handshake (with TLS 1.3 the client learns it from the alert
    /// that follows the handshake) and never reaches the WebSocket.
    ///
    /// Fails with [`std::io::ErrorKind::InvalidInput`] on a certificate or
    /// key rustls does not accept.
    pub async fn start_mtls(
        cert_chain_der: Vec<Vec<u8>>,
        key_der: Vec<u8>,
        client_roots_der: Vec<Vec<u8>>,
    ) -> std::io::Result<TestServer> {
        Self::start_tls_with(cert_chain_der, key_der, Some(client_roots_der), Http2::Off).await
    }

    async fn start_tls_with(
        cert_chain_der: Vec<Vec<u8>>,
        key_der: Vec<u8>,
        client_roots_der: Option<Vec<Vec<u8>>>,
        http2: Http2,
    ) -> std::io::Result<TestServer> {
        use tokio_rustls::rustls;
        let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
        let chain: Vec<rustls::pki_types::CertificateDer<'static>> = cert_chain_der
            .into_iter()
            .map(rustls::pki_types::CertificateDer::from)
            .collect();
        let key = rustls::pki_types::PrivateKeyDer::try_from(key_der)
            .map_err(|e| invalid(format!("private key: {e}")))?;
        // Always *ring*, named explicitly: rustls' implicit choice panics
        // when a test binary also links aws-lc-rs (wstether's feature).
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(e.to_string()))?;
        let builder = match client_roots_der {
            None => builder.with_no_client_auth(),
            Some(roots_der) => {
                let mut roots = rustls::RootCertStore::empty();
                for der in roots_der {
                    roots
                        .add(rustls::pki_types::CertificateDer::from(der))
                        .map_err(|e| invalid(format!("client root: {e}")))?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .map_err(|e| invalid(format!("client roots: {e}")))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .map_err(|e| invalid(format!("certificate: {e}")))?;
        if http2 != Http2::Off {
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        }
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let core = ServerCore::start(addr, Some(acceptor), http2).await?;
        Ok(TestServer {
            owner: Arc::new(Owner { core }),
        })
    }

    /// Also serves on a Unix socket bound at `path` (which must not exist),
    /// exactly as on TCP (with TLS for a TLS server): for a client's
    /// connector. It listens until [`stop`](Self::stop) or the last handle
    /// is dropped; [`restart`](Self::restart) brings back the TCP listener
    /// only. The socket file is left for the caller to remove.
    #[cfg(unix)]
    pub fn listen_unix(&self, path: impl AsRef<std::path::Path>) -> std::io::Result<()> {
        self.core().listen_unix(path.as_ref())
    }

    /// Sets the token reported by `/_control/stats` as `"token":"T"`, by
    /// which a client proves it reached this server and not another one
    /// left running on the same port.
    pub fn set_token(&self, token: impl Into<String>) {
        self.core().set_token(token.into())
    }

    /// The address the server listens on (the same after a [`restart`](Self::restart)).
    pub fn addr(&self) -> SocketAddr {
        self.core().addr()
    }

    /// `ws://HOST:PORT` followed by `path` (a `/` is inserted if `path` lacks
    /// one); for a TLS server ([`start_tls`](Self::start_tls)),
    /// `wss://localhost:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        let sep = if path.starts_with('/') { "" } else { "/" };
        if self.core().is_tls() {
            format!("wss://localhost:{}{sep}{path}", self.addr().port())
        } else {
            format!("ws://{}{sep}{path}", self.addr())
        }
    }

    /// Stops listening and aborts every live connection abruptly (the TCP is
    /// dropped, no close frame). Resolves once the port is closed and every
    /// connection is gone; new connects are then refused.
    pub async fn stop(&self) {
        self.core().stop().await
    }

    /// Listens again on the same address after [`stop`](Self::stop) (with
    /// `SO_REUSEADDR`, so it works right after a stop). Does nothing if the
    /// server is listening already.
    pub async fn restart(&self) -> std::io::Result<()> {
        self.core().restart().await
    }

    /// Whether the server is listening (false between [`stop`](Self::stop) and
    /// [`restart`](Self::restart), including a `/_control/restart`).
    pub fn is_listening(&self) -> bool {
        self.core().is_listening()
    }

    /// Aborts every live connection abruptly (no close frame), keeps listening.
    ///
    /// The connections are aborted asynchronously; await
    /// [`wait_for_live_connections(0)`](Self::wait_for_live_connections) to see them gone.
    pub fn drop_connections(&self) {
        self.core().drop_connections_except(None)
    }

    /// Sends a close frame with `code` and `reason` (at most 123 bytes) to every
    /// live, echoing WebSocket connection, and resolves once each has completed
    /// the close handshake (or timed out after 5 s). Connections in `silent`,
    /// `bad_frame`, `no_upgrade` or a hostile mode (`ping_flood`,
    /// `never_read`, `trickle_ms`, `claim_len`) are not affected.
    pub async fn close_connections(&self, code: u16, reason: &str) {
        self.core().close_connections(code, reason).await
    }

    /// Every upgrade request seen (including rejected ones), in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.core().requests()
    }

    /// Payloads of every Ping frame received from clients, in order.
    pub fn pings(&self) -> Vec<Vec<u8>> {
        self.core().pings()
    }

    /// The status code of every close frame received from a client, in
    /// order (1005 for a close frame without one), on echoing and
    /// `bad_frame` connections alike: what a client told the server when
    /// it closed or failed the connection.
    pub fn client_close_codes(&self) -> Vec<u16> {
        self.core().client_close_codes()
    }

    /// Resolves when at least `n` client close frames have been received.
    pub async fn wait_for_client_close_codes(&self, n: usize) {
        self.core().wait_for_client_close_codes(n).await
    }

    /// Number of data frames (text and binary) received from clients.
    pub fn frames_received(&self) -> u64 {
        self.core().frames_received()
    }

    /// Frames of `send=N` bursts the server has handed to its clients'
    /// sockets so far (to tokio-tungstenite's write buffer, flushed every
    /// MiB and at the burst's end): how far a client that stopped reading
    /// let a burst go.
    pub fn burst_frames_sent(&self) -> u64 {
        self.core().burst_frames_sent()
    }

    /// Resolves when [`burst_frames_sent`](Self::burst_frames_sent) `>= n`.
    pub async fn wait_for_burst_frames_sent(&self, n: u64) {
        self.core().wait_for_burst_frames_sent(n).await
    }

    /// TCP connections currently open (upgraded or not).
    pub fn live_connections(&self) -> usize {
        self.core().live_connections()
    }

    /// Total TCP connections accepted since start (across restarts).
    pub fn accepted_connections(&self) -> u64 {
        self.core().accepted_connections()
    }

    /// Resolves when [`accepted_connections`](Self::accepted_connections) `>= n`.
    pub async fn wait_for_connections(&self, n: u64) {
        self.core().wait_for_connections(n).await
    }

    /// Resolves when at least `n` pings have been received.
    pub async fn wait_for_pings(&self, n: usize) {
        self.core().wait_for_pings(n).await
    }

    /// Resolves when at least `n` data frames (text or binary) have been
    /// received from clients.
    pub async fn wait_for_frames(&self, n: u64) {
        self.core().wait_for_frames(n).await
    }

    /// Resolves when at least `n` upgrade requests have been recorded.
    pub async fn wait_for_requests(&self, n: usize) {
        self.core().wait_for_requests(n).await
    }

    /// Resolves when exactly `n` connections are live.
    pub async fn wait_for_live_connections(&self, n: usize) {
        self.core().wait_for_live_connections(n).await
    }
}
