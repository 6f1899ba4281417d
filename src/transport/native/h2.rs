//! The HTTP/2 layer (RFC 8441): a Websocket as an extended CONNECT stream
//! (`:method CONNECT`, `:protocol websocket`) on an HTTP/2 connection
//! spoken by the `h2` crate. Above it the native stack is unchanged: the
//! stream's DATA frames are a byte stream ([`H2Stream`]) that coalesce,
//! deflate and tokio-tungstenite read and write as they read and write
//! TCP, so the frame reader, the limits and permessage-deflate are the
//! same over HTTP/2 as over HTTP/1.1.
//!
//! - **The connection** ([`handshake`]): the client preface, then a PING
//!   whose answer proves the server's SETTINGS have been read (a server
//!   sends its SETTINGS first), so that `SETTINGS_ENABLE_CONNECT_PROTOCOL`
//!   is known before the first request. Its task ends when the last
//!   handle is gone, after a grace period for the last frames
//!   (`END_STREAM`, `GOAWAY`) bounded by the closing timeout.
//! - **The upgrade** ([`connect`]): the extended CONNECT with the
//!   Websocket's headers; a `2xx` answer opens the stream (RFC 8441 §5:
//!   no `Sec-WebSocket-Key` or `-Accept`), anything else is a refusal with
//!   its status and headers.
//! - **Back-pressure**: received bytes release the stream's flow-control
//!   window only as they are read out of [`H2Stream`], so a reader that
//!   stops (a full event queue) stops the server on this stream by the
//!   stream's window ([`STREAM_WINDOW`]); writes wait for send capacity
//!   (the server's window).
//! - **Ends** (RFC 8441 §5 maps TCP's onto the stream's): shutting the
//!   write side sends `END_STREAM`, the server's `END_STREAM` reads as the
//!   end of the stream, and a `RST_STREAM` from the server is an error
//!   that [`reset_in`] finds (a typed `ErrorKind::StreamReset`).

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use h2::client::SendRequest;
use h2::{Reason, RecvStream, SendStream};
use http::{HeaderMap, Method, Request, StatusCode};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

pub(crate) use super::h2_ping::ConnectionPing;
use crate::connector::Io;
use crate::error::{Error, ErrorKind};

/// The ALPN name of HTTP/2 over TLS.
pub(crate) const ALPN_H2: &[u8] = b"h2";
/// The ALPN name of HTTP/1.1.
pub(crate) const ALPN_HTTP1: &[u8] = b"http/1.1";

/// Each stream's receive window: what the server may send on one
/// Websocket that the application has not read yet (beside the event
/// queue's bytes). 256 KiB: a 64 KiB window (the protocol's default)
/// halves the throughput of large messages on a 10 ms path.
pub(crate) const STREAM_WINDOW: u32 = 256 << 10;
/// The connection's receive window (every stream's bytes together).
pub(crate) const CONNECTION_WINDOW: u32 = 1 << 20;
/// How much framing overhead of small DATA frames h2 may hold unread
/// before it ends the connection (`ENHANCE_YOUR_CALM`); it charges each
/// frame under 256 bytes 256 bytes less its payload. h2's default (half
/// the connection window, ~2,200 frames) ends a connection whose reader
/// paused (a full event queue, a spent flow credit) behind a server that
/// sends small messages, each in a DATA frame of its own, long before the
/// windows hold the server back. 16 MiB covers the whole connection
/// window (1 MiB) in 16-byte messages (13.9 MB): ~65,000 small frames at
/// most, some 8 MB of h2's memory, about the event queue's own bound; a
/// flood of smaller frames still meets the limit.
const DATA_FRAME_BUDGET: usize = 16 << 20;

/// An HTTP/2 connection whose server enabled the CONNECT protocol (or
/// not: see [`Session::connect_protocol`]).
pub(crate) struct Session {
    send: SendRequest<Bytes>,
    /// The connection's PING, for the keepalive ([`ConnectionPing`]).
    ping: Option<ConnectionPing>,
    /// Whether the server sent `SETTINGS_ENABLE_CONNECT_PROTOCOL = 1`.
    pub(crate) connect_protocol: bool,
    /// Dropped with the last handle: starts the connection task's grace.
    alive: Arc<oneshot::Sender<()>>,
    /// How long the last frames may take once the Websocket is dropped.
    grace: Duration,
    /// This handle's place among the connection's streams.
    slot: StreamSlot,
}

/// A session as the pool of shared connections keeps it
/// (`native/share.rs`): it does not keep the connection alive, and counts
/// the streams handed out, so that none is handed out past the server's
/// `SETTINGS_MAX_CONCURRENT_STREAMS`.
pub(crate) struct SharedSession {
    send: SendRequest<Bytes>,
    ping: Option<ConnectionPing>,
    alive: Weak<oneshot::Sender<()>>,
    grace: Duration,
    taken: Arc<AtomicUsize>,
}

/// A stream handed out by a [`SharedSession`], until its Websocket is gone.
struct StreamSlot(Arc<AtomicUsize>);

impl StreamSlot {
    fn new(taken: &Arc<AtomicUsize>) -> StreamSlot {
        taken.fetch_add(1, Ordering::AcqRel);
        StreamSlot(taken.clone())
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Session {
    /// What the pool keeps to hand out more streams of this connection.
    pub(crate) fn share(&self) -> SharedSession {
        SharedSession {
            send: self.send.clone(),
            ping: self.ping.as_ref().map(ConnectionPing::another),
            alive: Arc::downgrade(&self.alive),
            grace: self.grace,
            taken: self.slot.0.clone(),
        }
    }
}

impl SharedSession {
    /// Whether the connection is still there (some Websocket holds it).
    pub(crate) fn is_alive(&self) -> bool {
        self.alive.strong_count() > 0
    }

    /// One more stream of this connection, if it is up and the server
    /// allows one more concurrent stream.
    pub(crate) fn take(&self) -> Option<Session> {
        let alive = self.alive.upgrade()?;
        let mut send = self.send.clone();
        if self.taken.load(Ordering::Acquire) >= send.current_max_send_streams() {
            return None;
        }
        // Ready now, or not usable: gone, or at the server's limit.
        let waker = futures::task::noop_waker();
        match send.poll_ready(&mut Context::from_waker(&waker)) {
            Poll::Ready(Ok(())) => {}
            _ => return None,
        }
        Some(Session {
            send,
            ping: self.ping.as_ref().map(ConnectionPing::another),
            connect_protocol: true,
            alive,
            grace: self.grace,
            slot: StreamSlot::new(&self.taken),
        })
    }
}

/// The HTTP/2 handshake over `io`: the preface, SETTINGS both ways (the
/// server's are read before this returns). The connection runs as a task
/// of its own until every handle is dropped, then at most `grace` longer.
pub(crate) async fn handshake(io: Box<dyn Io>, grace: Duration) -> Result<Session, Error> {
    let failed = |e: h2::Error| Error::new(ErrorKind::Io, "the HTTP/2 handshake").with_source(e);
    let (send, mut connection) = h2::client::Builder::new()
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .data_frame_budget(DATA_FRAME_BUDGET)
        .enable_push(false)
        .handshake::<_, Bytes>(io)
        .await
        .map_err(failed)?;
    let mut ping = connection.ping_pong();
    let (alive, dropped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let grace = async {
            let _ = dropped.await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            ended = connection => {
                if let Err(e) = ended {
                    tracing::debug!("wstether: the HTTP/2 connection ended: {e}");
                }
            }
            () = grace => tracing::debug!("wstether: the HTTP/2 connection is dropped after its grace"),
        }
    });
    // The server's SETTINGS come before its answer to a PING.
    if let Some(ping) = ping.as_mut() {
        ping.ping(h2::Ping::opaque()).await.map_err(failed)?;
    }
    let send = send.ready().await.map_err(failed)?;
    let taken = Arc::new(AtomicUsize::new(0));
    Ok(Session {
        connect_protocol: send.is_extended_connect_protocol_enabled(),
        send,
        ping: ping.map(ConnectionPing::new),
        alive: Arc::new(alive),
        grace,
        slot: StreamSlot::new(&taken),
    })
}

/// What the server answered to the extended CONNECT.
pub(crate) enum Answer {
    /// `2xx`: the Websocket is open on `stream`.
    Open {
        stream: H2Stream,
        headers: HeaderMap,
        /// The keepalive's probe, as an HTTP/2 PING.
        ping: Option<ConnectionPing>,
    },
    /// Any other status: refused.
    Refused {
        status: StatusCode,
        headers: HeaderMap,
    },
}

/// Opens a Websocket on `session`: an extended CONNECT to `uri` (the
/// Websocket's URL with an `https`/`http` scheme) with `headers` (the
/// subprotocols, extensions, authorization and the application's
/// headers).
pub(crate) async fn connect(
    session: Session,
    uri: http::Uri,
    headers: HeaderMap,
) -> Result<Answer, Error> {
    let Session {
        mut send,
        ping,
        alive,
        grace,
        slot,
        ..
    } = session;
    let mut request = Request::builder()
        .method(Method::CONNECT)
        .uri(uri)
        .extension(h2::ext::Protocol::from_static("websocket"))
        .body(())
        .map_err(|e| Error::new(ErrorKind::InvalidUrl, "the extended CONNECT").with_source(e))?;
    *request.headers_mut() = headers;
    request.headers_mut().insert(
        http::header::SEC_WEBSOCKET_VERSION,
        http::HeaderValue::from_static("13"),
    );
    let (response, stream) = send
        .send_request(request, false)
        .map_err(|e| h2_error(e, "the extended CONNECT"))?;
    let response = response
        .await
        .map_err(|e| h2_error(e, "the answer to the extended CONNECT"))?;
    let (parts, recv) = response.into_parts();
    if !parts.status.is_success() {
        return Ok(Answer::Refused {
            status: parts.status,
            headers: parts.headers,
        });
    }
    Ok(Answer::Open {
        stream: H2Stream {
            parts: Some(Parts {
                send: stream,
                recv,
                _send_request: send,
                _alive: alive,
                _slot: slot,
            }),
            grace,
            chunk: Bytes::new(),
            ended: false,
            failed: None,
        },
        headers: parts.headers,
        ping,
    })
}

/// One extended CONNECT stream as a byte stream: DATA frames in, DATA
/// frames out.
pub(crate) struct H2Stream {
    /// `None` only once dropped.
    parts: Option<Parts>,
    /// How long the end of the stream may take once dropped.
    grace: Duration,
    /// Received and not yet read out (its window not yet released).
    chunk: Bytes,
    /// `END_STREAM` was sent.
    ended: bool,
    /// The stream failed after bytes that were handed out first.
    failed: Option<io::Error>,
}

/// The stream's two sides, and what keeps its connection open.
struct Parts {
    send: SendStream<Bytes>,
    recv: RecvStream,
    _send_request: SendRequest<Bytes>,
    _alive: Arc<oneshot::Sender<()>>,
    _slot: StreamSlot,
}

impl H2Stream {
    fn parts(&mut self) -> io::Result<&mut Parts> {
        self.parts
            .as_mut()
            .ok_or_else(|| io::ErrorKind::NotConnected.into())
    }
}

/// An `h2` error as an I/O error (an I/O error of the connection as
/// itself), so that tungstenite hands it back.
fn io_error(error: h2::Error) -> io::Error {
    if error.is_io() {
        return error
            .into_io()
            .unwrap_or_else(|| io::Error::other("HTTP/2 I/O"));
    }
    io::Error::other(error)
}

/// An `h2` error during the upgrade, typed.
fn h2_error(error: h2::Error, during: &str) -> Error {
    match reset_of(&error) {
        Some(reason) => Error::new(
            ErrorKind::StreamReset,
            format!("{during}: {}", Reset(reason)),
        )
        .with_source(error),
        None => Error::new(ErrorKind::Io, during.to_owned()).with_source(error),
    }
}

/// The reason of a `RST_STREAM` the server sent, if `error` is one.
fn reset_of(error: &h2::Error) -> Option<Reason> {
    (error.is_reset() && error.is_remote())
        .then(|| error.reason())
        .flatten()
}

/// The server reset the stream (`RST_STREAM`) with this reason: carried
/// in the `io::Error` the byte stream fails with.
#[derive(Debug)]
pub(crate) struct Reset(pub(crate) Reason);

impl std::fmt::Display for Reset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the server reset the HTTP/2 stream (RST_STREAM {:?}: {})",
            self.0, self.0
        )
    }
}

impl std::error::Error for Reset {}

/// The server's `RST_STREAM` inside an I/O error, if it is one.
pub(crate) fn reset_in(error: &io::Error) -> Option<&Reset> {
    error.get_ref()?.downcast_ref::<Reset>()
}

/// A failed read or write of the stream as an I/O error: a reset by the
/// server as [`Reset`].
fn stream_error(error: h2::Error) -> io::Error {
    match reset_of(&error) {
        Some(reason) => io::Error::new(io::ErrorKind::ConnectionReset, Reset(reason)),
        None => io_error(error),
    }
}

impl AsyncRead for H2Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(error) = this.failed.take() {
            return Poll::Ready(Err(error));
        }
        let mut gave = false;
        loop {
            if !this.chunk.is_empty() {
                let n = out.remaining().min(this.chunk.len());
                out.put_slice(&this.chunk[..n]);
                this.chunk.advance(n);
                // Read out: the server may send this many more.
                if let Some(parts) = this.parts.as_mut() {
                    let _ = parts.recv.flow_control().release_capacity(n);
                }
                gave = true;
                if out.remaining() == 0 {
                    return Poll::Ready(Ok(()));
                }
            }
            // As many DATA frames as are waiting and fit (small frames
            // are read out at once: h2 bounds how many may wait).
            let Some(parts) = this.parts.as_mut() else {
                return Poll::Ready(Ok(()));
            };
            let polled = parts.recv.poll_data(cx);
            if gave && !matches!(polled, Poll::Ready(Some(Ok(_)))) {
                // What was read first; an end or an error comes next time
                // (h2 reports it again).
                if let Poll::Ready(Some(Err(e))) = polled {
                    this.failed = Some(stream_error(e));
                }
                return Poll::Ready(Ok(()));
            }
            match ready!(polled) {
                // END_STREAM: the end of the byte stream.
                None => return Poll::Ready(Ok(())),
                Some(Ok(data)) => this.chunk = data,
                Some(Err(e)) => return Poll::Ready(Err(stream_error(e))),
            }
        }
    }
}

impl AsyncWrite for H2Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if this.ended {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let parts = this.parts()?;
        parts.send.reserve_capacity(buf.len());
        let granted = match ready!(parts.send.poll_capacity(cx)) {
            Some(Ok(0)) => {
                // Nothing granted yet: ask again on the next poll.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Some(Ok(n)) => Some(n),
            Some(Err(_)) | None => None,
        };
        if let Some(n) = granted {
            let n = n.min(buf.len());
            if parts
                .send
                .send_data(Bytes::copy_from_slice(&buf[..n]), false)
                .is_ok()
            {
                return Poll::Ready(Ok(n));
            }
        }
        // The stream cannot be written: why is its reset's reason.
        Poll::Ready(Err(match ready!(parts.send.poll_reset(cx)) {
            Ok(reason) => io::Error::new(io::ErrorKind::ConnectionReset, Reset(reason)),
            Err(e) => stream_error(e),
        }))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The connection's task writes what the stream was given.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.ended {
            this.ended = true;
            this.parts()?
                .send
                .send_data(Bytes::new(), true)
                .map_err(io_error)?;
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for H2Stream {
    /// As a dropped TCP stream ends with a FIN, a dropped stream ends with
    /// `END_STREAM` (RFC 8441 §5), after what was queued (a last close
    /// frame). The receiving side is kept, read and discarded, until the
    /// server ends its side too, for at most the grace (the closing
    /// timeout): dropping it at once would reset the stream
    /// (`RST_STREAM(CANCEL)`), and h2 discards what a reset stream had
    /// queued to send.
    fn drop(&mut self) {
        let Some(mut parts) = self.parts.take() else {
            return;
        };
        if !self.ended {
            let _ = parts.send.send_data(Bytes::new(), true);
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let grace = self.grace;
        runtime.spawn(async move {
            let drained = async {
                while let Some(Ok(data)) = parts.recv.data().await {
                    let _ = parts.recv.flow_control().release_capacity(data.len());
                }
            };
            let _ = tokio::time::timeout(grace, drained).await;
            drop(parts);
        });
    }
}
