//! The HTTP/2 mode (RFC 8441): Websockets as extended CONNECT streams,
//! over TLS (ALPN `h2`) or cleartext with prior knowledge, beside
//! HTTP/1.1 on the same port. Each stream is echoed by the same loop as an
//! HTTP/1.1 Websocket ([`run_ws`]), over [`H2Io`], the stream's DATA
//! frames as a byte stream.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use h2::server::SendResponse;
use h2::{Reason, RecvStream, SendStream};
use http::{Method, Request, Response, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

use super::{await_client_close, raw_frames, run_ws, ControlCommand, ServerCore, Stream};
use crate::script::{ProtocolChoice, Script};
use crate::RecordedRequest;

/// How a [`TestServer`](crate::TestServer) speaks HTTP/2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Http2 {
    /// HTTP/1.1 only (the default).
    #[default]
    Off,
    /// HTTP/2 with the CONNECT protocol enabled
    /// (`SETTINGS_ENABLE_CONNECT_PROTOCOL = 1`): Websockets over extended
    /// CONNECT (RFC 8441), beside HTTP/1.1 on the same port.
    On,
    /// As [`Http2::On`], with `SETTINGS_MAX_CONCURRENT_STREAMS` set to this
    /// many: a client must open another connection for more Websockets.
    MaxStreams(u32),
    /// HTTP/2 without the CONNECT protocol: an extended CONNECT is refused
    /// by `h2` itself, as by a server that predates RFC 8441 (a client
    /// should fall back to HTTP/1.1, which the port also speaks).
    WithoutConnectProtocol,
}

/// The client preface of HTTP/2 (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Reads far enough into a cleartext stream to tell HTTP/2 with prior
/// knowledge from HTTP/1.1: the stream back with what was read in front
/// of it, and whether it is HTTP/2.
pub(super) async fn sniff(mut stream: Stream) -> io::Result<(Stream, bool)> {
    let mut seen = Vec::with_capacity(PREFACE.len());
    while seen.len() < PREFACE.len() && PREFACE.starts_with(&seen) {
        let mut byte = [0u8; PREFACE.len()];
        let want = PREFACE.len() - seen.len();
        let n = stream.read(&mut byte[..want]).await?;
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&byte[..n]);
    }
    let is_h2 = seen == PREFACE;
    Ok((
        Box::new(Prefixed {
            prefix: Bytes::from(seen),
            inner: stream,
        }),
        is_h2,
    ))
}

/// A stream with bytes already read put back in front of it.
struct Prefixed {
    prefix: Bytes,
    inner: Stream,
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = out.remaining().min(self.prefix.len());
            out.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, out)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Serves one HTTP/2 connection: every extended CONNECT stream is a
/// Websocket of its own (the first one obeys the connection's commands).
pub(super) async fn serve(
    core: Arc<ServerCore>,
    id: u64,
    stream: Stream,
    commands: mpsc::UnboundedReceiver<ControlCommand>,
    mode: Http2,
) {
    let mut builder = h2::server::Builder::new();
    // The client's windows (wstether's): a stream's 64 KiB default would
    // bound what a client sends per round trip. And the client's budget of
    // small DATA frames held unread (its DATA_FRAME_BUDGET): many streams
    // sending small messages at once must not end the connection.
    builder
        .initial_window_size(256 << 10)
        .initial_connection_window_size(1 << 20)
        .data_frame_budget(16 << 20);
    if matches!(mode, Http2::On | Http2::MaxStreams(_)) {
        builder.enable_connect_protocol();
    }
    if let Http2::MaxStreams(max) = mode {
        builder.max_concurrent_streams(max);
    }
    let Ok(mut connection) = builder.handshake::<_, Bytes>(stream).await else {
        return;
    };
    let mut commands = Some(commands);
    let mut streams = tokio::task::JoinSet::new();
    // A stream asks for a GOAWAY (`h2_goaway=1`) or a freeze
    // (`h2_freeze=1`) here.
    let (goaway, mut goaway_asked) = mpsc::unbounded_channel::<Ask>();
    loop {
        tokio::select! {
            accepted = connection.accept() => {
                let Some(Ok((request, respond))) = accepted else {
                    break;
                };
                streams.spawn(websocket(
                    core.clone(),
                    id,
                    request,
                    respond,
                    commands.take(),
                    goaway.clone(),
                ));
            }
            Some(ask) = goaway_asked.recv() => match ask {
                // With the stream open: GOAWAY(NO_ERROR), then the
                // connection ends.
                Ask::Goaway => connection.abrupt_shutdown(Reason::NO_ERROR),
                // Nothing more is read or answered, PINGs included.
                Ask::Freeze => {
                    tokio::time::sleep(FREEZE).await;
                    break;
                }
            },
        }
    }
    // The connection is gone: its streams read what it left them (a
    // client's last close frame) and end. Dropped first: a stream parked
    // in `poll_data` is woken (its buffered data, then an error) only by
    // the connection's end; after an I/O error nothing polls it any more,
    // and the stream (and this connection in the live count) would wait
    // forever.
    drop(connection);
    while streams.join_next().await.is_some() {}
}

/// What a stream asks of its connection.
enum Ask {
    Goaway,
    Freeze,
}

/// How long `h2_freeze=1` holds a hung connection before dropping it.
const FREEZE: std::time::Duration = std::time::Duration::from_secs(60);

/// Holds a stream open without reading it (its window never opens again)
/// until the client or the connection ends it.
async fn hold(mut recv: RecvStream) {
    while let Some(Ok(_)) = recv.data().await {}
}

/// One extended CONNECT: answered as the query of its `:path` says, as
/// an HTTP/1.1 upgrade is.
async fn websocket(
    core: Arc<ServerCore>,
    id: u64,
    request: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    commands: Option<mpsc::UnboundedReceiver<ControlCommand>>,
    goaway: mpsc::UnboundedSender<Ask>,
) {
    let (parts, recv) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/".to_owned(), |p| p.as_str().to_owned());
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let offered: Vec<String> = headers
        .iter()
        .filter(|(n, _)| n == "sec-websocket-protocol")
        .flat_map(|(_, v)| v.split(','))
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    core.update(|st| {
        st.requests.push(RecordedRequest {
            path: path.clone(),
            headers: headers.clone(),
            offered_protocols: offered.clone(),
        })
    });
    let answer = |status: u16, extra: &[(String, String)]| {
        let mut response = Response::builder().status(status);
        for (n, v) in extra {
            response = response.header(n.as_str(), v.as_str());
        }
        response.body(()).unwrap_or_else(|_| Response::new(()))
    };
    let mut refuse = |status: u16, extra: &[(String, String)], body: String| {
        if let Ok(mut send) = respond.send_response(answer(status, extra), false) {
            let _ = send.send_data(Bytes::from(body), true);
        }
    };
    let is_websocket = parts.method == Method::CONNECT
        && parts
            .extensions
            .get::<h2::ext::Protocol>()
            .is_some_and(|p| p.as_str() == "websocket");
    if !is_websocket {
        return refuse(400, &[], "extended CONNECT (websocket) only\n".into());
    }
    let script = match Script::from_target(&path) {
        Ok(s) => s,
        Err(msg) => return refuse(400, &[], format!("{msg}\n")),
    };
    if parts
        .headers
        .get("sec-websocket-version")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        != Some("13")
    {
        let extra = [("sec-websocket-version".to_owned(), "13".to_owned())];
        return refuse(400, &extra, "version 13 only\n".into());
    }
    if let Some(delay) = script.delay {
        tokio::time::sleep(delay).await;
    }
    if let Some(status) = script.reject {
        let mut extra = vec![("x-testkit-reason".to_owned(), "rejected".to_owned())];
        extra.extend(script.headers.iter().cloned());
        return refuse(
            status,
            &extra,
            format!("rejected by testkit with {status}\n"),
        );
    }
    let protocol = match &script.protocol {
        ProtocolChoice::FirstOffered => offered.first().cloned(),
        ProtocolChoice::None => None,
        ProtocolChoice::Forced(p) => Some(p.clone()),
    };
    let mut extra: Vec<(String, String)> = script.headers.clone();
    if let Some(p) = protocol {
        extra.push(("sec-websocket-protocol".to_owned(), p));
    }
    let Ok(mut send) = respond.send_response(answer(StatusCode::OK.as_u16(), &extra), false) else {
        return;
    };
    let mut recv = recv;
    if script.h2_reset {
        // Once the client sent something (so the 200 has reached it): the
        // first bytes of a binary frame, then RST_STREAM.
        if let Some(Ok(data)) = recv.data().await {
            let _ = recv.flow_control().release_capacity(data.len());
        }
        let _ = send.send_data(Bytes::from_static(&[0x82, 0x7e, 0x01]), false);
        send.send_reset(Reason::INTERNAL_ERROR);
        return;
    }
    if script.h2_goaway || script.h2_freeze {
        // Once the client sent something: GOAWAY with this stream open,
        // or a connection that stops.
        if let Some(Ok(data)) = recv.data().await {
            let _ = recv.flow_control().release_capacity(data.len());
        }
        let _ = goaway.send(if script.h2_freeze {
            Ask::Freeze
        } else {
            Ask::Goaway
        });
        let _send = send;
        return hold(recv).await;
    }
    if script.silent {
        // Holds the stream open, never reading (its window fills).
        let _send = send;
        return hold(recv).await;
    }
    let mut io: Stream = Box::new(H2Io {
        send,
        recv,
        chunk: Bytes::new(),
        ended: false,
    });
    // `bad_frame`, `claim_len` (after `large_first`): as over HTTP/1.1.
    if let Some(raw) = raw_frames(&script) {
        if io.write_all(&raw).await.is_ok() {
            let ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
            await_client_close(&core, ws).await;
        }
        return;
    }
    let ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
    core.update(|st| {
        if let Some(c) = st.conns.get_mut(&id) {
            c.websocket = true;
        }
    });
    let commands = commands.unwrap_or_else(|| mpsc::unbounded_channel().1);
    if let Err(e) = run_ws(&core, ws, &script, commands).await {
        tracing::debug!("testkit: HTTP/2 stream ended: {e}");
    }
}

/// An extended CONNECT stream as a byte stream: the flow-control window
/// is released as the bytes are read.
struct H2Io {
    send: SendStream<Bytes>,
    recv: RecvStream,
    chunk: Bytes,
    ended: bool,
}

fn io_error(error: h2::Error) -> io::Error {
    if error.is_io() {
        return error
            .into_io()
            .unwrap_or_else(|| io::Error::other("HTTP/2 I/O"));
    }
    io::Error::other(error)
}

impl AsyncRead for H2Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.chunk.is_empty() {
                let n = out.remaining().min(this.chunk.len());
                out.put_slice(&this.chunk[..n]);
                this.chunk.advance(n);
                let _ = this.recv.flow_control().release_capacity(n);
                return Poll::Ready(Ok(()));
            }
            match ready!(this.recv.poll_data(cx)) {
                None => return Poll::Ready(Ok(())),
                Some(Ok(data)) => this.chunk = data,
                Some(Err(e)) => return Poll::Ready(Err(io_error(e))),
            }
        }
    }
}

impl AsyncWrite for H2Io {
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
        this.send.reserve_capacity(buf.len());
        match ready!(this.send.poll_capacity(cx)) {
            Some(Ok(n)) if n > 0 => {
                let n = n.min(buf.len());
                match this
                    .send
                    .send_data(Bytes::copy_from_slice(&buf[..n]), false)
                {
                    Ok(()) => Poll::Ready(Ok(n)),
                    Err(e) => Poll::Ready(Err(io_error(e))),
                }
            }
            Some(Err(e)) => Poll::Ready(Err(io_error(e))),
            _ => Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.ended {
            this.ended = true;
            this.send.send_data(Bytes::new(), true).map_err(io_error)?;
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for H2Io {
    fn drop(&mut self) {
        if !self.ended {
            let _ = self.send.send_data(Bytes::new(), true);
        }
    }
}
