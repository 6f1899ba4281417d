//! Accept loop, shared state and per-connection handling of the test server.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{mpsc, watch};
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

mod h2;
mod hostile;
mod http;

pub use self::h2::Http2;
use super::script::{
    binary_header, burst_payload, Bad101, FrameKind, ProtocolChoice, Script, LARGE_FIRST,
};
use super::RecordedRequest;
use hostile::{ping_flood, tiny_frames, trickle};
use http::{hold, json_escape, read_head, respond, Head};

/// Largest request head (request line + headers) the server reads.
const MAX_HEAD: usize = 16 * 1024;
/// How long a server-initiated close waits for the client's close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest `down_ms` accepted by `/_control/restart`.
const MAX_DOWN_MS: u64 = 60_000;
/// A `send=N` burst is flushed to the socket whenever this many payload bytes
/// were queued, so the server never holds more than about this much (plus
/// one frame) of a burst in memory, whatever the client's reading speed.
const BURST_FLUSH_BYTES: usize = 1 << 20;
/// Bytes written per write call by `ping_flood` (many small pings at once).
const FLOOD_BATCH_BYTES: usize = 64 << 10;
/// Bytes written after the lying header of `claim_len`.
const CLAIM_TAIL_BYTES: usize = 16;

/// A server connection: plain TCP or TLS over it.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
type Stream = Box<dyn Io>;

/// How long a TLS handshake may take before the connection is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A command sent to a live WebSocket connection.
enum ControlCommand {
    Close(u16, String),
}

struct Conn {
    /// Set right after the task is spawned.
    abort: Option<AbortHandle>,
    /// An abort was requested before `abort` was set.
    doomed: bool,
    commands: mpsc::UnboundedSender<ControlCommand>,
    /// Upgraded and driven by the echo loop (so it obeys [`ControlCommand`]s).
    websocket: bool,
}

#[derive(Default)]
struct ServerState {
    requests: Vec<RecordedRequest>,
    pings: Vec<Vec<u8>>,
    client_close_codes: Vec<u16>,
    frames: u64,
    /// Frames of `send=N` bursts handed to a client's socket.
    burst_sent: u64,
    accepted: u64,
    conns: HashMap<u64, Conn>,
    next_id: u64,
    listener: Option<JoinHandle<()>>,
    /// Every [`TestServer`](super::TestServer) handle is gone: never listen again.
    shut_down: bool,
    /// Reported by `/_control/stats`, so a client can tell its server from another.
    token: Option<String>,
    /// Accept loops on Unix sockets ([`ServerCore::listen_unix`]).
    #[cfg(unix)]
    unix_listeners: Vec<JoinHandle<()>>,
}

/// The server's state, shared by the handle, the accept loop and every connection task.
pub(crate) struct ServerCore {
    addr: SocketAddr,
    /// Set for a TLS server (`wss://`).
    tls: Option<tokio_rustls::TlsAcceptor>,
    /// Whether (and how) HTTP/2 is spoken beside HTTP/1.1.
    http2: Http2,
    state: Mutex<ServerState>,
    /// Bumped on every change, so waiters re-check their condition.
    version: watch::Sender<u64>,
}

/// Binds a listener with `SO_REUSEADDR` (not on Windows, where it means something else).
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    #[cfg(not(windows))]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

impl ServerCore {
    /// Binds `addr` and starts accepting.
    pub(crate) async fn start(
        addr: SocketAddr,
        tls: Option<tokio_rustls::TlsAcceptor>,
        http2: Http2,
    ) -> std::io::Result<Arc<ServerCore>> {
        let listener = bind(addr)?;
        let core = Arc::new(ServerCore {
            addr: listener.local_addr()?,
            tls,
            http2,
            state: Mutex::new(ServerState::default()),
            version: watch::channel(0).0,
        });
        core.spawn_accept(listener);
        Ok(core)
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    fn lock(&self) -> MutexGuard<'_, ServerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies `f` to the state and wakes every waiter.
    fn update<R>(&self, f: impl FnOnce(&mut ServerState) -> R) -> R {
        let r = f(&mut self.lock());
        self.version.send_modify(|v| *v = v.wrapping_add(1));
        r
    }

    /// Resolves once `cond` holds (checked after every change, no polling).
    async fn wait_until(&self, mut cond: impl FnMut(&ServerState) -> bool) {
        let mut rx = self.version.subscribe();
        loop {
            if cond(&self.lock()) {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    fn spawn_accept(self: &Arc<Self>, listener: TcpListener) {
        let core = Arc::clone(self);
        let task = tokio::spawn(core.accept_loop(listener));
        self.lock().listener = Some(task);
    }

    async fn accept_loop(self: Arc<Self>, listener: TcpListener) {
        loop {
            match listener.accept().await {
                Ok((stream, _peer)) => {
                    // Echoes must leave at once, not wait for Nagle and a delayed ACK.
                    let _ = stream.set_nodelay(true);
                    self.spawn_conn(stream)
                }
                Err(e) => {
                    // E.g. EMFILE: back off a little instead of spinning.
                    tracing::warn!("testkit: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }

    /// Also accepts connections on a Unix socket at `path` (bound now),
    /// served as the TCP ones are, with TLS for a TLS server. It listens
    /// until [`stop`](Self::stop) or the last handle is dropped;
    /// [`restart`](Self::restart) brings back the TCP listener only.
    #[cfg(unix)]
    pub(crate) fn listen_unix(self: &Arc<Self>, path: &std::path::Path) -> std::io::Result<()> {
        let listener = tokio::net::UnixListener::bind(path)?;
        let core = Arc::clone(self);
        let task = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _peer)) => core.spawn_conn(stream),
                    Err(e) => {
                        tracing::warn!("testkit: accept on a Unix socket failed: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        });
        self.lock().unix_listeners.push(task);
        Ok(())
    }

    /// Stops every Unix socket's accept loop.
    fn stop_unix(&self) {
        #[cfg(unix)]
        for task in std::mem::take(&mut self.lock().unix_listeners) {
            task.abort();
        }
    }

    fn spawn_conn<S>(self: &Arc<Self>, stream: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (tx, rx) = mpsc::unbounded_channel();
        // Register first, so the guard of a short-lived task always finds its
        // entry. The lock is never held while spawning or aborting, since either
        // may drop the task (and its guard, which takes the lock) inline.
        let id = self.update(|st| {
            st.accepted += 1;
            let id = st.next_id;
            st.next_id += 1;
            st.conns.insert(
                id,
                Conn {
                    abort: None,
                    doomed: false,
                    commands: tx,
                    websocket: false,
                },
            );
            id
        });
        // The guard is moved into the future, so it is dropped (and the entry
        // removed) even if the task is aborted before its first poll.
        let guard = ConnGuard {
            core: Arc::clone(self),
            id,
        };
        let tls = self.tls.clone();
        let http2 = self.http2;
        let task = tokio::spawn(async move {
            let guard = guard;
            let (stream, is_h2): (Stream, bool) = match tls {
                None if http2 == Http2::Off => (Box::new(stream), false),
                // Cleartext HTTP/2: with prior knowledge (its preface).
                None => match h2::sniff(Box::new(stream)).await {
                    Ok(sniffed) => sniffed,
                    Err(_) => return,
                },
                Some(acceptor) => {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        Ok(Ok(tls)) => {
                            let is_h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                            (Box::new(tls), is_h2)
                        }
                        Ok(Err(e)) => {
                            tracing::debug!("testkit: TLS handshake failed: {e}");
                            return;
                        }
                        Err(_) => return,
                    }
                }
            };
            if is_h2 {
                return h2::serve(guard.core.clone(), guard.id, stream, rx, http2).await;
            }
            handle_conn(&guard, stream, rx).await;
        });
        let doomed = match self.lock().conns.get_mut(&id) {
            Some(conn) => {
                conn.abort = Some(task.abort_handle());
                conn.doomed
            }
            None => false, // already finished
        };
        if doomed {
            task.abort();
        }
    }

    // ----- queries -----

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }
    pub(crate) fn pings(&self) -> Vec<Vec<u8>> {
        self.lock().pings.clone()
    }
    pub(crate) fn client_close_codes(&self) -> Vec<u16> {
        self.lock().client_close_codes.clone()
    }
    pub(crate) async fn wait_for_client_close_codes(&self, n: usize) {
        self.wait_until(|s| s.client_close_codes.len() >= n).await
    }
    fn record_client_close(&self, close: &Option<CloseFrame>) {
        let code = close.as_ref().map_or(1005, |c| u16::from(c.code));
        self.update(|st| st.client_close_codes.push(code));
    }
    pub(crate) fn frames_received(&self) -> u64 {
        self.lock().frames
    }
    pub(crate) fn burst_frames_sent(&self) -> u64 {
        self.lock().burst_sent
    }
    pub(crate) async fn wait_for_burst_frames_sent(&self, n: u64) {
        self.wait_until(|st| st.burst_sent >= n).await
    }
    pub(crate) fn live_connections(&self) -> usize {
        self.lock().conns.len()
    }
    pub(crate) fn accepted_connections(&self) -> u64 {
        self.lock().accepted
    }
    pub(crate) fn is_listening(&self) -> bool {
        self.lock().listener.is_some()
    }

    pub(crate) async fn wait_for_connections(&self, n: u64) {
        self.wait_until(|s| s.accepted >= n).await
    }
    pub(crate) async fn wait_for_frames(&self, n: u64) {
        self.wait_until(|st| st.frames >= n).await
    }

    pub(crate) async fn wait_for_pings(&self, n: usize) {
        self.wait_until(|s| s.pings.len() >= n).await
    }
    pub(crate) async fn wait_for_requests(&self, n: usize) {
        self.wait_until(|s| s.requests.len() >= n).await
    }
    pub(crate) async fn wait_for_live_connections(&self, n: usize) {
        self.wait_until(|s| s.conns.len() == n).await
    }

    pub(crate) fn set_token(&self, token: String) {
        self.update(|st| st.token = Some(token));
    }

    fn stats_json(&self) -> String {
        let st = self.lock();
        let token = match &st.token {
            Some(token) => format!(",\"token\":\"{}\"", json_escape(token)),
            None => String::new(),
        };
        format!(
            "{{\"accepted\":{},\"live\":{},\"requests\":{},\"pings\":{},\"frames\":{}{token}}}",
            st.accepted,
            st.conns.len(),
            st.requests.len(),
            st.pings.len(),
            st.frames
        )
    }

    // ----- actions -----

    /// Aborts every connection task except `except`.
    pub(crate) fn drop_connections_except(&self, except: Option<u64>) {
        let handles: Vec<AbortHandle> = {
            let mut st = self.lock();
            st.conns
                .iter_mut()
                .filter(|(id, _)| Some(**id) != except)
                .filter_map(|(_, conn)| {
                    conn.doomed = true;
                    conn.abort.clone()
                })
                .collect()
        };
        for handle in handles {
            handle.abort();
        }
    }

    pub(crate) async fn close_connections(&self, code: u16, reason: &str) {
        let ids: Vec<u64> = {
            let st = self.lock();
            st.conns
                .iter()
                .filter(|(_, c)| c.websocket)
                .filter(|(_, c)| {
                    c.commands
                        .send(ControlCommand::Close(code, reason.into()))
                        .is_ok()
                })
                .map(|(id, _)| *id)
                .collect()
        };
        self.wait_until(|s| ids.iter().all(|id| !s.conns.contains_key(id)))
            .await
    }

    pub(crate) async fn stop(&self) {
        self.stop_unix();
        let listener = self.update(|st| st.listener.take());
        if let Some(task) = listener {
            task.abort();
            // Once the task is gone the listener socket is closed.
            let _ = task.await;
        }
        self.drop_connections_except(None);
        self.wait_until(|s| s.conns.is_empty()).await;
    }

    pub(crate) async fn restart(self: &Arc<Self>) -> std::io::Result<()> {
        {
            // Check and bind under the lock, so concurrent restarts bind once.
            let mut st = self.lock();
            if st.listener.is_some() || st.shut_down {
                return Ok(());
            }
            let listener = bind(self.addr)?;
            let core = Arc::clone(self);
            st.listener = Some(tokio::spawn(core.accept_loop(listener)));
        }
        self.update(|_| ());
        Ok(())
    }

    /// Called when the last [`TestServer`](super::TestServer) handle is dropped.
    pub(crate) fn shut_down(&self) {
        self.stop_unix();
        let listener = {
            let mut st = self.lock();
            st.shut_down = true;
            st.listener.take()
        };
        if let Some(task) = listener {
            task.abort();
        }
        self.drop_connections_except(None);
    }
}

/// Removes a connection from the live set when its task ends or is aborted.
struct ConnGuard {
    core: Arc<ServerCore>,
    id: u64,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let id = self.id;
        self.core.update(|st| st.conns.remove(&id));
    }
}

async fn handle_conn(
    guard: &ConnGuard,
    mut stream: Stream,
    commands: mpsc::UnboundedReceiver<ControlCommand>,
) {
    let Ok((head, rest)) = read_head(&mut stream).await else {
        return;
    };
    let is_upgrade =
        head.has_token("upgrade", "websocket") && head.has_token("connection", "upgrade");
    if is_upgrade {
        handle_upgrade(guard, stream, head, rest, commands).await;
    } else {
        handle_http(guard, stream, head).await;
    }
}

async fn handle_http(guard: &ConnGuard, mut stream: Stream, head: Head) {
    let core = &guard.core;
    let (path, query) = head.target.split_once('?').unwrap_or((&head.target, ""));
    let param = |name: &str| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.into_owned())
    };
    let json = "application/json";
    let ok = "{\"ok\":true}";
    if head.method == "OPTIONS" {
        let allow_headers = head
            .header("access-control-request-headers")
            .filter(|v| super::script::valid_header_value(v))
            .unwrap_or("*")
            .to_owned();
        let extra = [
            (
                "Access-Control-Allow-Methods".into(),
                "GET, POST, OPTIONS".into(),
            ),
            ("Access-Control-Allow-Headers".into(), allow_headers),
            ("Access-Control-Max-Age".into(), "600".into()),
        ];
        let _ = respond(&mut stream, 204, "text/plain", &extra, "").await;
        return;
    }
    if head.method != "GET" && head.method != "POST" {
        let extra = [("Allow".into(), "GET, POST, OPTIONS".into())];
        let _ = respond(
            &mut stream,
            405,
            "text/plain",
            &extra,
            "method not allowed\n",
        )
        .await;
        return;
    }
    match path {
        "/_control/stats" => {
            let _ = respond(&mut stream, 200, json, &[], &core.stats_json()).await;
        }
        "/_control/drop" => {
            let _ = respond(&mut stream, 200, json, &[], ok).await;
            core.drop_connections_except(Some(guard.id));
        }
        "/_control/close" => {
            let code = match param("code").map(|c| c.parse::<u16>()) {
                None => 1000,
                Some(Ok(c)) => c,
                Some(Err(_)) => {
                    let _ = respond(&mut stream, 400, "text/plain", &[], "bad code\n").await;
                    return;
                }
            };
            let reason = param("reason").unwrap_or_default();
            if reason.len() > 123 {
                let _ = respond(&mut stream, 400, "text/plain", &[], "reason too long\n").await;
                return;
            }
            let _ = respond(&mut stream, 200, json, &[], ok).await;
            let core = Arc::clone(core);
            tokio::spawn(async move { core.close_connections(code, &reason).await });
        }
        "/_control/restart" => {
            let down = match param("down_ms").map(|c| c.parse::<u64>()) {
                None => 0,
                Some(Ok(ms)) if ms <= MAX_DOWN_MS => ms,
                Some(_) => {
                    let _ = respond(&mut stream, 400, "text/plain", &[], "bad down_ms\n").await;
                    return;
                }
            };
            let _ = respond(&mut stream, 200, json, &[], ok).await;
            // Detached: this connection is aborted by the stop.
            let core = Arc::clone(core);
            tokio::spawn(async move {
                core.stop().await;
                tokio::time::sleep(Duration::from_millis(down)).await;
                if let Err(e) = core.restart().await {
                    tracing::error!("testkit: restart on {} failed: {e}", core.addr());
                }
            });
        }
        _ => {
            let _ = respond(&mut stream, 404, "text/plain", &[], "not found\n").await;
        }
    }
}

async fn handle_upgrade(
    guard: &ConnGuard,
    mut stream: Stream,
    head: Head,
    rest: Vec<u8>,
    commands: mpsc::UnboundedReceiver<ControlCommand>,
) {
    let core = &guard.core;
    let offered: Vec<String> = head
        .headers
        .iter()
        .filter(|(n, _)| n == "sec-websocket-protocol")
        .flat_map(|(_, v)| v.split(','))
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    core.update(|st| {
        st.requests.push(RecordedRequest {
            path: head.target.clone(),
            headers: head.headers.clone(),
            offered_protocols: offered.clone(),
        })
    });

    let script = match Script::from_target(&head.target) {
        Ok(s) => s,
        Err(msg) => {
            let _ = respond(&mut stream, 400, "text/plain", &[], &format!("{msg}\n")).await;
            return;
        }
    };
    if let Some(delay) = script.delay {
        tokio::time::sleep(delay).await;
    }
    if script.no_upgrade {
        return hold(&mut stream).await;
    }
    if script.garbage {
        let _ = stream
            .write_all(b"\x00\xffNOT-HTTP \x01\x02 garbage garbage\r\n\r\n")
            .await;
        let _ = stream.shutdown().await;
        return;
    }
    if let Some(status) = script.reject {
        let mut extra = vec![("x-testkit-reason".to_owned(), "rejected".to_owned())];
        extra.extend(script.headers.iter().cloned());
        let body = format!("rejected by testkit with {status}\n");
        let _ = respond(&mut stream, status, "text/plain", &extra, &body).await;
        return;
    }
    let key = match head.header("sec-websocket-key") {
        Some(k) if head.method == "GET" => k.trim().to_owned(),
        _ => {
            let body = "GET with Sec-WebSocket-Key required\n";
            let _ = respond(&mut stream, 400, "text/plain", &[], body).await;
            return;
        }
    };
    if head.header("sec-websocket-version").map(str::trim) != Some("13") {
        let extra = [("Sec-WebSocket-Version".into(), "13".into())];
        let _ = respond(&mut stream, 426, "text/plain", &extra, "version 13 only\n").await;
        return;
    }

    let protocol = match &script.protocol {
        ProtocolChoice::FirstOffered => offered.first().cloned(),
        ProtocolChoice::None => None,
        ProtocolChoice::Forced(p) => Some(p.clone()),
    };
    let mut out = format!(
        "HTTP/1.1 101 Switching Protocols\r\n\
         Upgrade: websocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n",
        derive_accept_key(key.as_bytes())
    );
    match script.bad_101 {
        Some(Bad101::Accept) => {
            out = out.replace(&derive_accept_key(key.as_bytes()), &derive_accept_key(b"x"))
        }
        Some(Bad101::Upgrade) => out = out.replace("Upgrade: websocket\r\n", ""),
        Some(Bad101::Connection) => out = out.replace("Connection: Upgrade\r\n", ""),
        None => {}
    }
    if let Some(p) = protocol {
        out.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
    }
    for (n, v) in &script.headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str("\r\n");
    if script.head_lf {
        out = out.replace("\r\n", "\n");
    }
    if stream.write_all(out.as_bytes()).await.is_err() {
        return;
    }

    // Hostile modes: none of them reads what the client sends (except
    // `claim_len`, which waits for the client's close frame).
    if script.ping_flood {
        return ping_flood(&mut stream, &script.flood_payload()).await;
    }
    if script.never_read {
        // Neither read nor write: the client's writes fill the TCP buffers.
        // The connection lasts until the server drops it.
        return std::future::pending().await;
    }
    if let Some(every) = script.trickle {
        return trickle(&mut stream, every, script.trickle_size()).await;
    }
    if script.close_hold {
        let code = script.close.as_ref().map_or(1000, |(code, _)| *code);
        let close = super::script::server_frame(0x8, &code.to_be_bytes());
        if stream.write_all(&close).await.is_ok() && stream.flush().await.is_ok() {
            hold(&mut stream).await;
        }
        return;
    }
    if let Some(n) = script.tiny_frames {
        return tiny_frames(&mut stream, n, script.tiny_pace).await;
    }
    if let Some(raw) = raw_frames(&script) {
        if stream.write_all(&raw).await.is_ok() {
            let _ = stream.flush().await;
            // The client should fail the connection with a close frame:
            // read until it comes (its code is recorded) or the TCP ends.
            let ws = WebSocketStream::from_partially_read(stream, rest, Role::Server, None).await;
            await_client_close(core, ws).await;
        }
        return;
    }
    if script.silent {
        return hold(&mut stream).await;
    }

    let ws = WebSocketStream::from_partially_read(stream, rest, Role::Server, None).await;
    core.update(|st| {
        if let Some(c) = st.conns.get_mut(&guard.id) {
            c.websocket = true;
        }
    });
    if let Err(e) = run_ws(core, ws, &script, commands).await {
        tracing::debug!("testkit: connection ended: {e}");
    }
}

/// The raw bytes of `claim_len` or `bad_frame` (after `large_first`'s
/// frame), written right after the upgrade; `None` without them.
fn raw_frames(script: &Script) -> Option<Vec<u8>> {
    match (script.claim_len, script.bad_frame) {
        (Some(len), _) => {
            let mut bytes = binary_header(len);
            bytes.extend(std::iter::repeat_n(0u8, CLAIM_TAIL_BYTES));
            Some(bytes)
        }
        (None, Some(bad)) if script.large_first => {
            let mut bytes = super::script::server_frame(0x2, &[b'L'; LARGE_FIRST]);
            bytes.extend(bad.bytes());
            Some(bytes)
        }
        (None, Some(bad)) => Some(bad.bytes()),
        (None, None) => None,
    }
}

/// After [`raw_frames`]: reads what the client sends until its close frame
/// (its code is recorded) or the end of the stream.
async fn await_client_close(core: &ServerCore, mut ws: WebSocketStream<Stream>) {
    while let Some(Ok(msg)) = ws.next().await {
        if let Message::Close(close) = msg {
            core.record_client_close(&close);
            let _ = ws.flush().await;
            break;
        }
    }
}

/// Waits for the next tick of `ticker`, or forever without one.
async fn tick(ticker: &mut Option<tokio::time::Interval>) {
    match ticker {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

fn close_frame(code: u16, reason: &str) -> CloseFrame {
    CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    }
}

/// The echo loop of an upgraded connection, following `script`.
async fn run_ws(
    core: &ServerCore,
    mut ws: WebSocketStream<Stream>,
    script: &Script,
    mut commands: mpsc::UnboundedReceiver<ControlCommand>,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    // The burst is streamed: each frame is built when there is room for
    // it, and flushed every `BURST_FLUSH_BYTES`, so a burst of 100 frames
    // of 8 MiB to a client that does not read costs the server about one
    // frame of memory, not 800 MiB.
    let mut unflushed = 0usize;
    for i in 0..script.send {
        let payload = burst_payload(i, script.size);
        unflushed += payload.len();
        let msg = match script.kind {
            FrameKind::Text => Message::text(payload),
            FrameKind::Binary => Message::binary(payload.into_bytes()),
        };
        ws.feed(msg).await?;
        core.update(|st| st.burst_sent += 1);
        if unflushed >= BURST_FLUSH_BYTES {
            ws.flush().await?;
            unflushed = 0;
        }
    }
    ws.flush().await?;

    let mut echoed: u64 = 0;
    if script.drop_after == Some(0) {
        return Ok(());
    }
    // Deadline of a server-initiated close handshake, once started.
    let mut closing: Option<Instant> = None;
    if let Some((code, reason)) = script.close.as_ref().filter(|_| script.close_after == 0) {
        ws.close(Some(close_frame(*code, reason))).await?;
        closing = Some(Instant::now() + CLOSE_TIMEOUT);
    }
    let mut ticker = script.ping_every.map(|every| {
        let mut t = tokio::time::interval_at(Instant::now() + every, every);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    let mut pings_sent: u64 = 0;
    let mut commands_open = true;

    loop {
        tokio::select! {
            cmd = commands.recv(), if commands_open && closing.is_none() => match cmd {
                Some(ControlCommand::Close(code, reason)) => {
                    ws.close(Some(close_frame(code, &reason))).await?;
                    closing = Some(Instant::now() + CLOSE_TIMEOUT);
                }
                None => commands_open = false,
            },
            _ = tick(&mut ticker), if closing.is_none() => {
                pings_sent += 1;
                ws.send(Message::Ping(format!("testkit-ping-{pings_sent}").into())).await?;
            }
            _ = tokio::time::sleep_until(closing.unwrap_or_else(Instant::now)), if closing.is_some() => {
                return Ok(());
            }
            msg = ws.next() => {
                let Some(msg) = msg else { return Ok(()) };
                match msg? {
                    m @ (Message::Text(_) | Message::Binary(_)) => {
                        core.update(|st| st.frames += 1);
                        if closing.is_some() {
                            continue;
                        }
                        ws.send(m).await?;
                        echoed += 1;
                        if script.drop_after == Some(echoed) {
                            return Ok(());
                        }
                        if let Some((code, reason)) = &script.close {
                            if echoed == script.close_after {
                                ws.close(Some(close_frame(*code, reason))).await?;
                                closing = Some(Instant::now() + CLOSE_TIMEOUT);
                            }
                        }
                    }
                    Message::Ping(p) => {
                        core.update(|st| st.pings.push(p.to_vec()));
                        // tungstenite queued the pong; make sure it goes out now.
                        ws.flush().await?;
                    }
                    Message::Close(close) => {
                        core.record_client_close(&close);
                        // The reply (if any) is queued; flush it, then the stream ends.
                        let _ = ws.flush().await;
                    }
                    Message::Pong(_) | Message::Frame(_) => {}
                }
            }
        }
    }
}
