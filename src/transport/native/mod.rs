//! The native transport, one layer per module, bottom to top: the stream
//! dialed (native/dial.rs, through a proxy tunnel in native/proxy.rs), TLS
//! over it for `wss` (native/tls.rs), the upgrade's response head
//! (native/handshake.rs), read coalescing over the one frame-header reader
//! (native/coalesce.rs, native/frames.rs), permessage-deflate
//! (native/deflate/), and the Websocket spoken by tokio-tungstenite
//! (native/socket.rs). Over HTTP/2 (RFC 8441) an extended CONNECT stream
//! (native/h2.rs) takes the place of the upgraded TCP stream under the
//! same layers. docs/ARCHITECTURE.md, "The native stack", has the
//! picture.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use http::{HeaderMap, HeaderValue};
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use self::coalesce::{Beside, Coalesce};
use self::deflate::{Deflate, Limits, Negotiated};
use super::{Target, Transport, UpgradeFailure, Upgraded};
use crate::connector::Io;
use crate::error::{Error, ErrorKind};
use crate::frame::Frame;
use crate::options::{Http2, Options};
use crate::proxy::Proxy;
use crate::request::ValidUpgrade;
use crate::rt::BoxFuture;
use dial::Route;

mod coalesce;
mod deflate;
pub(super) mod dial;
pub(crate) mod frames;
mod h2;
mod h2_ping;
pub(crate) mod handshake;
mod outbox;
mod proxy;
mod share;
mod socket;
mod tls;

pub(crate) use socket::NativeSocket;

pub(crate) struct NativeTransport;

/// A connected TCP (or TLS) stream, or an HTTP/2 connection on it, and
/// the count of bytes written to it.
pub(crate) struct Dialed {
    wire: Wire,
    written: Arc<AtomicU64>,
    /// How long the TLS handshake with the target took (`wss` only).
    tls_handshake: Option<std::time::Duration>,
}

/// What the Websocket will be upgraded on.
enum Wire {
    /// HTTP/1.1: the stream itself.
    Http1 {
        io: Box<dyn Io>,
        /// What passes beside tungstenite: data frames read and written
        /// (`None` with compression: see [`Coalesce`]).
        beside: Option<Arc<Beside>>,
    },
    /// HTTP/2 whose server enabled the CONNECT protocol.
    H2(h2::Session),
}

/// tungstenite's write buffer: frames are gathered up to this before a write.
pub(super) const WRITE_BUFFER: usize = 128 << 10;

/// tungstenite allocates (and zero-fills) its read buffer per connection,
/// 128 KiB by default. The socket is read 64 KiB at a time by [`Coalesce`]
/// anyway, so tungstenite's buffer only sets how much is copied (and
/// zero-filled first) per call. With compression every frame goes
/// through it: 2 KiB per read costs fewer instructions per 1 KiB message
/// than 4 KiB did (less zero-filling).
const DEFAULT_READ_BUFFER: usize = 2 << 10;

/// Without compression whole data frames do not go through tungstenite's
/// buffer at all (see [`Coalesce`]): it reads control frames (139 bytes
/// at most), fragments and frames that break a rule, and its buffer is
/// what an idle connection keeps (tungstenite keeps it for the
/// connection's life; see [`fresh_buffers`]).
const FOLLOWED_READ_BUFFER: usize = 512;

impl Transport for NativeTransport {
    type Dialed = Dialed;
    type Socket = NativeSocket;

    fn check_options(options: &Options) -> Result<(), Error> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::new(
                ErrorKind::NoRuntime,
                "Connection::open needs a tokio runtime: call it from within one \
                 (wstether runs each connection as a tokio task)",
            ));
        }
        if options.connector.is_some() && !options.proxy.as_ref().is_none_or(Proxy::is_from_env) {
            return Err(Error::new(
                ErrorKind::InvalidOption,
                "a proxy cannot be combined with a connector, which replaces the whole route \
                 to the server (connect through the proxy in the connector instead)",
            ));
        }
        tls::check_options(options)
    }

    fn check_upgrade(_upgrade: &ValidUpgrade) -> Result<(), Error> {
        Ok(())
    }

    fn check_frame(_frame: &Frame) -> Result<(), Error> {
        Ok(())
    }

    fn dial(target: &Target, options: &Options) -> BoxFuture<Result<Self::Dialed, Error>> {
        let target = target.clone();
        let tls = tls::Settings::from_options(options);
        // Read now, at every dial: the environment may have changed.
        let route = match &options.connector {
            Some(connector) => Ok(Route::Connector(connector.clone())),
            None => crate::proxy::route(options.proxy.as_ref(), target.secure, &target.host)
                .map(|server| server.map_or(Route::Direct, Route::Proxy)),
        };
        // Compression's layer follows the frames itself, above this one.
        let beside = (!options.compression.enabled).then(Arc::<Beside>::default);
        let limit = options.frame_limit().min(options.message_limit());
        let http2 = options.http2;
        let grace = options.closing_timeout;
        let share =
            (options.share_http2 || options.http2_group.is_some()) && http2.tries(target.secure);
        let group = options.http2_group;
        Box::pin(async move {
            let route = route?;
            let fresh = Fresh {
                target,
                route,
                tls,
                beside,
                limit,
                http2,
                grace,
            };
            if !share {
                return fresh.dial().await;
            }
            // One stream more of a pooled connection, or a fresh one pooled.
            let key = share::Key::new(&fresh.target, http2, fresh.tls.key(), &fresh.route, group);
            let slot = share::slot(key);
            let mut sessions = slot.lock().await;
            sessions.retain(h2::SharedSession::is_alive);
            if let Some(session) = sessions.iter().find_map(h2::SharedSession::take) {
                return Ok(Dialed {
                    wire: Wire::H2(session),
                    written: Arc::new(AtomicU64::new(0)),
                    tls_handshake: None,
                });
            }
            let dialed = fresh.dial().await?;
            if let Wire::H2(session) = &dialed.wire {
                sessions.push(session.share());
            }
            Ok(dialed)
        })
    }

    fn tls_handshake(dialed: &Self::Dialed) -> Option<std::time::Duration> {
        dialed.tls_handshake
    }

    fn upgrade(
        dialed: Self::Dialed,
        target: &Target,
        upgrade: ValidUpgrade,
        options: &Options,
    ) -> BoxFuture<Result<Upgraded<Self::Socket>, UpgradeFailure>> {
        let url = target.url_for(&upgrade);
        let basic_auth = target.basic_auth();
        let read_buffer = match options.compression.enabled {
            true => DEFAULT_READ_BUFFER,
            false => FOLLOWED_READ_BUFFER,
        };
        let config = WebSocketConfig::default()
            .read_buffer_size(options.read_buffer_size.unwrap_or(read_buffer))
            .max_frame_size(Some(options.frame_limit()))
            .max_message_size(Some(options.message_limit()))
            // Bounded: a frame of ours (at most `send_queue_bytes`, checked
            // at `ws_send`) always fits after a flush, and the pongs of a
            // peer that floods pings and never reads stop at the bound
            // (tungstenite then keeps only the latest pong, as RFC 6455
            // allows); the core declares that peer dead.
            .write_buffer_size(WRITE_BUFFER)
            .max_write_buffer_size(
                WRITE_BUFFER
                    .saturating_add(options.send_queue_bytes)
                    .saturating_add(64 << 10),
            );
        let compression = options.compression.clone();
        let options_limit = options.frame_limit().min(options.message_limit());
        let target = target.clone();
        let limits = Limits {
            max_frame: options.frame_limit(),
            max_message: options.message_limit(),
        };
        Box::pin(async move {
            let mut request = url.as_str().into_client_request().map_err(|e| {
                Error::new(ErrorKind::InvalidUrl, crate::redact::url(&url)).with_source(e)
            })?;
            let headers = request.headers_mut();
            for (name, value) in upgrade.headers {
                headers.append(name, value);
            }
            // The URL's userinfo, unless the upgrade brings its own.
            if let Some(basic) = basic_auth {
                if !headers.contains_key(http::header::AUTHORIZATION) {
                    headers.insert(http::header::AUTHORIZATION, basic);
                }
            }
            if !upgrade.protocols.is_empty() {
                let offered =
                    HeaderValue::from_str(&upgrade.protocols.join(", ")).map_err(|e| {
                        Error::new(ErrorKind::InvalidHeader, "subprotocols").with_source(e)
                    })?;
                headers.insert(http::header::SEC_WEBSOCKET_PROTOCOL, offered);
            }
            // permessage-deflate: offered, and the layer beneath
            // tungstenite reads the answer as the 101 passes through it.
            let mut negotiated = None;
            if compression.enabled {
                headers.insert(
                    http::header::SEC_WEBSOCKET_EXTENSIONS,
                    HeaderValue::from_str(&deflate::offer(&compression))
                        .expect("the offer is ASCII"),
                );
            }
            let (mut io, beside) = match dialed.wire {
                Wire::Http1 { io, beside } => (io, beside),
                Wire::H2(session) => {
                    let opened = H2Upgrade {
                        session,
                        target,
                        path: upgrade.path.to_string(),
                        headers: headers.clone(),
                        compression,
                        limits,
                        limit: options_limit,
                        config,
                        written: dialed.written,
                    };
                    return opened.open().await;
                }
            };
            let written = dialed.written;
            if compression.enabled {
                let slot = Negotiated::default();
                io = Box::new(Deflate::new(io, compression, limits, slot.clone()));
                negotiated = Some(slot);
            }
            let handshake =
                tokio_tungstenite::client_async_with_config(request, io, Some(config)).await;
            if let (Ok((_, response)), Some(slot)) = (&handshake, &negotiated) {
                let answer = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
                let why = match answer {
                    Some(Ok(_)) => None,
                    Some(Err(why)) => Some(format!(
                        "the server's Sec-WebSocket-Extensions is refused: {why}"
                    )),
                    None => Some("the upgrade response was not seen whole".to_owned()),
                };
                if let Some(why) = why {
                    return Err(UpgradeFailure {
                        status: None,
                        headers: response.headers().clone(),
                        error: Error::new(ErrorKind::Upgrade, why),
                    });
                }
            }
            match handshake {
                Ok((_, response))
                    if negotiated.is_none()
                        && response
                            .headers()
                            .contains_key(http::header::SEC_WEBSOCKET_EXTENSIONS) =>
                {
                    // RFC 6455 §4.1: an extension the client did not offer
                    // (nothing is offered without compression) fails the
                    // connection.
                    let named = response
                        .headers()
                        .get(http::header::SEC_WEBSOCKET_EXTENSIONS)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    Err(UpgradeFailure {
                        status: None,
                        headers: response.headers().clone(),
                        error: Error::new(
                            ErrorKind::Upgrade,
                            format!(
                                "the server accepted extensions that were not offered: {named:?}"
                            ),
                        ),
                    })
                }
                Ok((ws, response)) => {
                    let ws = fresh_buffers(ws, beside.is_some(), config).await;
                    let protocol = response
                        .headers()
                        .get(http::header::SEC_WEBSOCKET_PROTOCOL)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    Ok(Upgraded {
                        socket: NativeSocket::new(ws, written, beside),
                        protocol,
                        headers: response.headers().clone(),
                        version: Some(http::Version::HTTP_11),
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

/// tungstenite keeps the 4 KiB buffer its handshake read into as its read
/// buffer for good (its capacity never shrinks). When [`Coalesce`] follows
/// the frames (`follows_frames`: compression off), it hands tungstenite the
/// response head and not one byte past it, so tungstenite holds nothing
/// unread after the handshake (tests/fuzz_wire.rs sends frames in the same
/// write as the 101): the Websocket is made again over the same stream,
/// with a read buffer of `read_buffer_size` (512 bytes by default)
/// instead.
/// With compression, the deflate layer may hand over frames with the head,
/// so the Websocket is kept as it is.
async fn fresh_buffers(
    ws: tokio_tungstenite::WebSocketStream<Box<dyn Io>>,
    follows_frames: bool,
    config: WebSocketConfig,
) -> tokio_tungstenite::WebSocketStream<Box<dyn Io>> {
    if !follows_frames {
        return ws;
    }
    tokio_tungstenite::WebSocketStream::from_partially_read(
        ws.into_inner(),
        Vec::new(),
        tungstenite::protocol::Role::Client,
        Some(config),
    )
    .await
}

/// The stream under tungstenite: large reads, and data frames read and
/// written beside it unless compression follows the frames; `head`: the
/// stream starts with the upgrade's response head (HTTP/1.1).
fn coalesce<S>(
    io: S,
    written: Arc<AtomicU64>,
    limit: usize,
    beside: &Option<Arc<Beside>>,
    head: bool,
) -> Coalesce<S> {
    let io = Coalesce::new(io, written);
    let io = match beside {
        Some(beside) => io.taking_large(limit, beside.clone()),
        None => io,
    };
    if head {
        io
    } else {
        io.past_handshake()
    }
}

/// Headers of an HTTP/1.1 upgrade that HTTP/2 forbids or replaces
/// (RFC 9113 §8.2.2; `Host` is `:authority`; RFC 8441 §5: no
/// `Sec-WebSocket-Key`).
const NOT_OVER_H2: [&str; 8] = [
    "host",
    "connection",
    "upgrade",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "sec-websocket-key",
];

/// A dial that opens a connection of its own (not a pooled one).
struct Fresh {
    target: Target,
    route: Route,
    tls: tls::Settings,
    beside: Option<Arc<Beside>>,
    limit: usize,
    http2: Http2,
    grace: std::time::Duration,
}

impl Fresh {
    async fn dial(self) -> Result<Dialed, Error> {
        let Fresh {
            target,
            route,
            tls,
            beside,
            limit,
            http2,
            grace,
        } = self;
        let written = Arc::new(AtomicU64::new(0));
        let http1 = |io: Box<dyn Io>, tls_handshake| Dialed {
            wire: Wire::Http1 {
                io: Box::new(coalesce(io, written.clone(), limit, &beside, true)),
                beside: beside.clone(),
            },
            written: written.clone(),
            tls_handshake,
        };
        let require = http2 == Http2::Require;
        let stream = dial::open(&target, route.clone(), || tls.config()).await?;
        if !target.secure {
            if !http2.tries(false) {
                return Ok(http1(stream, None));
            }
            // HTTP/2 with prior knowledge (RFC 9113 §3.3).
            let why = match h2::handshake(stream, grace).await {
                Ok(session) if session.connect_protocol => {
                    return Ok(Dialed {
                        wire: Wire::H2(session),
                        written,
                        tls_handshake: None,
                    })
                }
                Ok(_) => Error::new(
                    ErrorKind::Http2Unavailable,
                    "the server speaks HTTP/2 without the CONNECT protocol (RFC 8441)",
                ),
                Err(e) => Error::new(
                    ErrorKind::Http2Unavailable,
                    "the server does not speak HTTP/2 (prior knowledge)",
                )
                .with_source(e),
            };
            if require {
                return Err(why);
            }
            tracing::debug!("wstether: {why}; a fresh HTTP/1.1 connection");
            let stream = dial::open(&target, route, || tls.config()).await?;
            return Ok(http1(stream, None));
        }
        let address = format!("{}:{}", dial::bracket_ipv6(&target.host), target.port);
        let config = if http2.tries(true) {
            tls.config_offering_h2()?
        } else {
            tls.config_http1()?
        };
        let (stream, took) = tls::handshake(config, &target.host, &address, stream).await?;
        let chose_h2 = stream.get_ref().1.alpn_protocol() == Some(h2::ALPN_H2);
        let why = if chose_h2 {
            let session = h2::handshake(Box::new(stream), grace).await?;
            if session.connect_protocol {
                return Ok(Dialed {
                    wire: Wire::H2(session),
                    written,
                    tls_handshake: Some(took),
                });
            }
            Error::new(
                ErrorKind::Http2Unavailable,
                "the server chose HTTP/2 without the CONNECT protocol (RFC 8441)",
            )
        } else if require {
            Error::new(
                ErrorKind::Http2Unavailable,
                "the server did not choose HTTP/2 (ALPN)",
            )
        } else {
            return Ok(http1(Box::new(stream), Some(took)));
        };
        if require {
            return Err(why);
        }
        // As browsers do: a fresh connection that offers HTTP/1.1 only.
        tracing::debug!("wstether: {why}; a fresh HTTP/1.1 connection");
        let stream = dial::open(&target, route, || tls.config()).await?;
        let (stream, took) =
            tls::handshake(tls.config_http1()?, &target.host, &address, stream).await?;
        Ok(http1(Box::new(stream), Some(took)))
    }
}

/// An upgrade over HTTP/2: the extended CONNECT, then the same stack as
/// over HTTP/1.1 on the stream (coalesce, deflate if agreed, tungstenite).
struct H2Upgrade {
    session: h2::Session,
    target: Target,
    path: String,
    headers: HeaderMap,
    compression: crate::compression::Compression,
    limits: Limits,
    /// The largest frame taken beside tungstenite.
    limit: usize,
    config: WebSocketConfig,
    written: Arc<AtomicU64>,
}

impl H2Upgrade {
    async fn open(self) -> Result<Upgraded<NativeSocket>, UpgradeFailure> {
        let H2Upgrade {
            session,
            target,
            path,
            mut headers,
            compression,
            limits,
            limit,
            config,
            written,
        } = self;
        for name in NOT_OVER_H2 {
            headers.remove(name);
        }
        let scheme = if target.secure { "https" } else { "http" };
        let authority = format!("{}:{}", dial::bracket_ipv6(&target.host), target.port);
        let uri: http::Uri = format!("{scheme}://{authority}{path}")
            .parse()
            .map_err(|e| Error::new(ErrorKind::InvalidPath, path.clone()).with_source(e))?;
        let (stream, headers, ping) = match h2::connect(session, uri, headers).await? {
            h2::Answer::Open {
                stream,
                headers,
                ping,
            } => (stream, headers, ping),
            h2::Answer::Refused { status, headers } => {
                return Err(UpgradeFailure {
                    status: Some(status),
                    headers,
                    error: Error::new(
                        ErrorKind::Upgrade,
                        format!("the server answered {status} (HTTP/2)"),
                    ),
                })
            }
        };
        let refuse = |why: String| UpgradeFailure {
            status: None,
            headers: headers.clone(),
            error: Error::new(ErrorKind::Upgrade, why),
        };
        // Checked against the offer by the core, as over HTTP/1.1.
        let protocol = headers
            .get(http::header::SEC_WEBSOCKET_PROTOCOL)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let extensions = headers
            .get_all(http::header::SEC_WEBSOCKET_EXTENSIONS)
            .iter()
            .map(|v| v.to_str().unwrap_or("\u{fffd}"));
        let agreed = if compression.enabled {
            deflate::negotiate(&compression, extensions).map_err(|why| {
                refuse(format!(
                    "the server's Sec-WebSocket-Extensions is refused: {why}"
                ))
            })?
        } else if let Some(named) = extensions.into_iter().next() {
            // RFC 6455 §4.1, as over HTTP/1.1.
            return Err(refuse(format!(
                "the server accepted extensions that were not offered: {named:?}"
            )));
        } else {
            None
        };
        let beside = agreed.is_none().then(Arc::<Beside>::default);
        let io: Box<dyn Io> = Box::new(coalesce(stream, written.clone(), limit, &beside, false));
        let io: Box<dyn Io> = match agreed {
            Some(agreed) => Box::new(Deflate::agreed(io, compression, limits, agreed)),
            None => io,
        };
        let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            io,
            tungstenite::protocol::Role::Client,
            Some(config),
        )
        .await;
        Ok(Upgraded {
            socket: NativeSocket::new(ws, written, beside).with_connection_ping(ping),
            protocol,
            headers,
            version: Some(http::Version::HTTP_2),
        })
    }
}

fn upgrade_error(error: tungstenite::Error) -> Error {
    match error {
        tungstenite::Error::Io(e) if tls::tls_error_in(&e).is_some() => {
            Error::new(ErrorKind::Tls, "during the upgrade").with_source(e)
        }
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
