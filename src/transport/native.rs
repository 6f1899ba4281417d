//! The native transport: TCP (and rustls for `wss`) dialed by tokio, the
//! Websocket spoken by tokio-tungstenite.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::{Sink, Stream};
use http::{HeaderMap, HeaderValue};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::{
    frame::coding::CloseCode as WsCloseCode, CloseFrame as WsCloseFrame, WebSocketConfig,
};
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use super::coalesce::Coalesce;
use super::{Socket, Target, Transport, UpgradeFailure, Upgraded};
use crate::core::Outgoing;
use crate::error::{Error, ErrorKind};
use crate::frame::{CloseCode, CloseFrame, Frame};
use crate::options::Options;
use crate::request::ValidUpgrade;
use crate::rt::BoxFuture;

/// A TCP stream, plain or under TLS.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub(crate) struct NativeTransport;

/// tungstenite allocates (and zero-fills) its read buffer per connection,
/// 128 KiB by default. The socket is read 64 KiB at a time by [`Coalesce`]
/// anyway, so tungstenite's buffer only sets how much is copied per call:
/// 4 KiB keeps an idle connection small at little cost.
const DEFAULT_READ_BUFFER: usize = 4 << 10;

impl Transport for NativeTransport {
    type Dialed = Box<dyn Io>;
    type Socket = NativeSocket;

    fn check_options(options: &Options) -> Result<(), Error> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::new(
                ErrorKind::InvalidOption,
                "Connection::open needs a tokio runtime (call it from within one)",
            ));
        }
        for der in &options.root_certificates {
            tls_config(std::slice::from_ref(der)).map_err(|e| {
                Error::new(ErrorKind::InvalidOption, "root certificate").with_source(e)
            })?;
        }
        Ok(())
    }

    fn check_upgrade(_upgrade: &ValidUpgrade) -> Result<(), Error> {
        Ok(())
    }

    fn check_frame(_frame: &Frame) -> Result<(), Error> {
        Ok(())
    }

    fn dial(target: &Target, options: &Options) -> BoxFuture<Result<Self::Dialed, Error>> {
        let target = target.clone();
        let roots = options.root_certificates.clone();
        Box::pin(async move {
            let address = format!("{}:{}", bracket_ipv6(&target.host), target.port);
            let tcp = TcpStream::connect((target.host.as_str(), target.port))
                .await
                .map_err(|e| Error::new(ErrorKind::Connect, address.clone()).with_source(e))?;
            // Small frames should leave at once; wstether batches writes itself.
            tcp.set_nodelay(true)
                .map_err(|e| Error::new(ErrorKind::Connect, address.clone()).with_source(e))?;
            if !target.secure {
                return Ok(Box::new(Coalesce::new(tcp)) as Box<dyn Io>);
            }
            let config = tls_config(&roots)
                .map_err(|e| Error::new(ErrorKind::Tls, "TLS configuration").with_source(e))?;
            let name =
                rustls::pki_types::ServerName::try_from(target.host.clone()).map_err(|e| {
                    Error::new(ErrorKind::Tls, format!("server name {:?}", target.host))
                        .with_source(e)
                })?;
            let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
                .connect(name, tcp)
                .await
                .map_err(|e| {
                    Error::new(ErrorKind::Tls, format!("handshake with {address}")).with_source(e)
                })?;
            Ok(Box::new(Coalesce::new(tls)) as Box<dyn Io>)
        })
    }

    fn upgrade(
        dialed: Self::Dialed,
        target: &Target,
        upgrade: ValidUpgrade,
        options: &Options,
    ) -> BoxFuture<Result<Upgraded<Self::Socket>, UpgradeFailure>> {
        let url = target.url_for(&upgrade);
        let config = WebSocketConfig::default()
            .read_buffer_size(options.read_buffer_size.unwrap_or(DEFAULT_READ_BUFFER))
            .max_frame_size(options.max_frame_size)
            .max_message_size(options.max_message_size);
        Box::pin(async move {
            let mut request = url
                .as_str()
                .into_client_request()
                .map_err(|e| Error::new(ErrorKind::InvalidUrl, url.clone()).with_source(e))?;
            let headers = request.headers_mut();
            for (name, value) in upgrade.headers {
                headers.append(name, value);
            }
            if !upgrade.protocols.is_empty() {
                let offered =
                    HeaderValue::from_str(&upgrade.protocols.join(", ")).map_err(|e| {
                        Error::new(ErrorKind::InvalidHeader, "subprotocols").with_source(e)
                    })?;
                headers.insert(http::header::SEC_WEBSOCKET_PROTOCOL, offered);
            }
            match tokio_tungstenite::client_async_with_config(request, dialed, Some(config)).await {
                Ok((ws, response)) => {
                    let protocol = response
                        .headers()
                        .get(http::header::SEC_WEBSOCKET_PROTOCOL)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    Ok(Upgraded {
                        socket: NativeSocket {
                            ws,
                            in_flight: Vec::new(),
                            failing: None,
                        },
                        protocol,
                        headers: response.headers().clone(),
                    })
                }
                Err(tungstenite::Error::Http(response)) => {
                    let status = response.status();
                    Err(UpgradeFailure {
                        status: Some(status),
                        headers: response.headers().clone(),
                        error: Error::new(
                            ErrorKind::Upgrade,
                            format!("the server answered {status}"),
                        ),
                    })
                }
                Err(e) => Err(UpgradeFailure {
                    status: None,
                    headers: HeaderMap::new(),
                    error: upgrade_error(e),
                }),
            }
        })
    }
}

fn bracket_ipv6(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

fn tls_config(extra_roots_der: &[Vec<u8>]) -> Result<rustls::ClientConfig, rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for der in extra_roots_der {
        roots.add(rustls::pki_types::CertificateDer::from(der.clone()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// How long the close frame that reports a peer's protocol error may take
/// to leave before the socket is dropped anyway.
const FAIL_CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// An open native Websocket. Frames handed to tungstenite are kept (cheap
/// clones of their buffers) until a flush confirms them written, so that a
/// failure can give them back.
pub(crate) struct NativeSocket {
    ws: WebSocketStream<Box<dyn Io>>,
    in_flight: Vec<(Message, bool)>,
    /// The peer broke the protocol: a close frame with the matching code
    /// (RFC 6455 §7.4.1: 1002, 1007, 1009) is on its way out, best effort
    /// and bounded in time, before the error is reported.
    failing: Option<Failing>,
}

struct Failing {
    error: Error,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl NativeSocket {
    /// Starts "failing the WebSocket connection" (RFC 6455 §7.1.7): queues
    /// a close frame with `code`; the error is reported once it is flushed
    /// or after [`FAIL_CLOSE_TIMEOUT`].
    fn begin_failing(&mut self, error: Error, code: u16) {
        let close = Message::Close(Some(WsCloseFrame {
            code: WsCloseCode::from(code),
            reason: Utf8Bytes::from_static(""),
        }));
        let queued = Pin::new(&mut self.ws).start_send(close).is_ok();
        let deadline = if queued {
            FAIL_CLOSE_TIMEOUT
        } else {
            Duration::ZERO
        };
        self.failing = Some(Failing {
            error,
            deadline: Box::pin(tokio::time::sleep(deadline)),
        });
    }

    /// Drives the close frame of a failing socket; ready with the error.
    fn poll_failing(&mut self, cx: &mut Context<'_>) -> Poll<Error> {
        let Some(failing) = &mut self.failing else {
            return Poll::Pending;
        };
        let flushed = Pin::new(&mut self.ws).poll_flush(cx);
        if let Poll::Ready(Ok(())) = flushed {
            // Whatever was handed over before the close frame left with it.
            self.in_flight.clear();
        }
        if flushed.is_pending() && failing.deadline.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        match self.failing.take() {
            Some(failing) => Poll::Ready(failing.error),
            None => Poll::Pending,
        }
    }
}

impl Socket for NativeSocket {
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame, Error>>> {
        if self.failing.is_some() {
            return self.poll_failing(cx).map(|error| Some(Err(error)));
        }
        loop {
            return match Pin::new(&mut self.ws).poll_next(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Ready(Some(Err(tungstenite::Error::ConnectionClosed))) => Poll::Ready(None),
                Poll::Ready(Some(Err(e))) => match fail_close_code(&e) {
                    Some(code) => {
                        self.begin_failing(socket_error(e), code);
                        self.poll_failing(cx).map(|error| Some(Err(error)))
                    }
                    None => Poll::Ready(Some(Err(socket_error(e)))),
                },
                Poll::Ready(Some(Ok(message))) => match from_message(message) {
                    Some(frame) => Poll::Ready(Some(Ok(frame))),
                    None => continue,
                },
            };
        }
    }

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.failing.is_some() {
            return self.poll_failing(cx).map(Err);
        }
        Pin::new(&mut self.ws).poll_ready(cx).map_err(socket_error)
    }

    fn start_send(&mut self, out: Outgoing) -> Result<(), Error> {
        let message = to_message(out.frame);
        self.in_flight.push((message.clone(), out.probe));
        Pin::new(&mut self.ws)
            .start_send(message)
            .map_err(socket_error)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.failing.is_some() {
            return self.poll_failing(cx).map(Err);
        }
        let flushed = Pin::new(&mut self.ws).poll_flush(cx).map_err(socket_error);
        if let Poll::Ready(Ok(())) = flushed {
            self.in_flight.clear();
        }
        flushed
    }

    fn take_unsent(&mut self) -> Vec<Outgoing> {
        self.in_flight
            .drain(..)
            .filter_map(|(message, probe)| {
                from_message(message).map(|frame| Outgoing { frame, probe })
            })
            .collect()
    }
}

fn to_message(frame: Frame) -> Message {
    match frame {
        Frame::Text(text) => {
            let bytes = Bytes::from(text);
            // SAFETY: the bytes come from a `String`, so they are valid UTF-8.
            Message::Text(unsafe { Utf8Bytes::from_bytes_unchecked(bytes) })
        }
        Frame::Binary(data) => Message::Binary(data),
        Frame::Ping(data) => Message::Ping(data),
        Frame::Pong(data) => Message::Pong(data),
        Frame::Close(close) => Message::Close(close.map(|close| WsCloseFrame {
            code: WsCloseCode::from(close.code.as_u16()),
            reason: Utf8Bytes::from(close.reason),
        })),
    }
}

fn from_message(message: Message) -> Option<Frame> {
    Some(match message {
        Message::Text(text) => {
            let bytes: Bytes = text.into();
            // SAFETY: tungstenite checked the text is UTF-8.
            Frame::Text(unsafe { String::from_utf8_unchecked(Vec::from(bytes)) })
        }
        Message::Binary(data) => Frame::Binary(data),
        Message::Ping(data) => Frame::Ping(data),
        Message::Pong(data) => Frame::Pong(data),
        Message::Close(close) => Frame::Close(close.map(|close| CloseFrame {
            code: CloseCode::from_wire(u16::from(close.code)),
            reason: close.reason.as_str().to_owned(),
        })),
        // Raw frames are only produced when writing them ourselves.
        Message::Frame(_) => return None,
    })
}

fn upgrade_error(error: tungstenite::Error) -> Error {
    match error {
        tungstenite::Error::Io(e) => Error::new(ErrorKind::Io, "during the upgrade").with_source(e),
        tungstenite::Error::Tls(e) => {
            Error::new(ErrorKind::Tls, "during the upgrade").with_source(e)
        }
        other => Error::new(
            ErrorKind::Upgrade,
            "the server's answer is not a valid WebSocket upgrade",
        )
        .with_source(other),
    }
}

/// The close code that tells the peer why we fail the connection, for the
/// errors that are the peer's fault (RFC 6455 §7.4.1); `None` when the
/// socket itself failed and nothing can be sent.
fn fail_close_code(error: &tungstenite::Error) -> Option<u16> {
    use tungstenite::error::ProtocolError;
    use tungstenite::Error as E;
    match error {
        E::Capacity(_) => Some(1009),
        E::Utf8(_) => Some(1007),
        E::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
        E::Protocol(_) | E::AttackAttempt => Some(1002),
        _ => None,
    }
}

fn socket_error(error: tungstenite::Error) -> Error {
    use tungstenite::error::ProtocolError;
    use tungstenite::Error as E;
    if let E::Protocol(ProtocolError::ResetWithoutClosingHandshake) = error {
        return Error::new(
            ErrorKind::Io,
            "the connection was reset without a close frame (1006)",
        );
    }
    let kind = match &error {
        E::Io(_) | E::ConnectionClosed | E::AlreadyClosed => ErrorKind::Io,
        E::Tls(_) => ErrorKind::Tls,
        E::Capacity(_) => ErrorKind::MessageTooBig,
        E::Utf8(_) => ErrorKind::InvalidUtf8,
        E::Protocol(_) | E::AttackAttempt => ErrorKind::Protocol,
        E::WriteBufferFull(_) => ErrorKind::QueueFull,
        _ => ErrorKind::Protocol,
    };
    Error::new(kind, "").with_source(error)
}
