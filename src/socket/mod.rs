//! [`Socket`]: one handle for "the current Websocket", which lives across
//! reconnects. Built on Gun's split ([`Connection`] + [`StreamRef`] stays
//! the low level): the socket upgrades again after every reconnect, and
//! its sends go to whatever Websocket is current, held while there is none.
//!
//! [`StreamRef`]: crate::StreamRef

mod event;
mod sender;
mod stream;

use std::fmt;
use std::task::{Context, Poll};

pub use event::{SocketEvent, SocketState};
pub use sender::SocketSender;

use crate::connection::{wait_first_upgrade, Connection, Events};
use crate::error::{Error, ErrorKind};
use crate::frame::{CloseCode, Frame, Frames};
use crate::options::{AutoUpgrade, Options};
use crate::request::Upgrade;
use crate::transport::{Platform, Target};
use event::Translator;

/// A WebSocket that survives reconnects: one handle owns "the current
/// Websocket", upgrades again after every reconnect, and sends to
/// whichever Websocket is current. The same on both targets.
///
/// - [`Socket::send`] waits for room in the send queue,
///   [`Socket::try_send`] does not; both give frames back in the error when
///   they are not accepted.
/// - While the socket is down, sends are **held** in the same bounded,
///   ordered send queue and written after the next upgrade
///   ([`Options::hold_while_down`]; off, they fail at once with
///   [`ErrorKind::Disconnected`]).
/// - [`Socket::recv`] gives the next frame from the server, across
///   reconnects; [`Socket::recv_event`] gives everything.
/// - No frame is lost silently: a frame handed to a Websocket that died
///   comes back (in [`SocketEvent::Down`], or from `recv` as an
///   [`ErrorKind::Disconnected`] error carrying it), never resent; when
///   the socket ends for good, held frames come back too.
/// - It implements [`futures::Stream`] and [`futures::Sink`], so
///   `StreamExt::split` gives a reading half and a writing half;
///   [`Socket::sender`] gives a cheap, cloneable [`SocketSender`] that
///   sends while another task reads events.
/// - [`Socket::connect`] resolves once the first Websocket is open;
///   [`Socket::open`] returns at once (a browser `new WebSocket`), with
///   sends held until then.
///
/// Dropping it (and every [`SocketSender`] of it) closes the connection
/// at once, without a close handshake; [`Socket::close`] closes
/// gracefully.
///
/// ```no_run
/// use wstether::{CloseCode, Frame, Options, Socket};
///
/// # async fn run() -> Result<(), wstether::Error> {
/// let mut socket = Socket::connect("ws://127.0.0.1:8080/chat", Options::default()).await?;
/// socket.send(Frame::text("hello")).await?; // held while reconnecting
/// let reply = socket.recv().await?; // the next frame, across reconnects
/// println!("{reply:?}");
/// socket.close(CloseCode::NORMAL, "bye").await?; // after the close handshake
/// # Ok(())
/// # }
/// ```
pub struct Socket {
    sender: SocketSender,
    events: Events,
    translator: Translator,
    /// The state changes this handle has seen (for `state_changed`).
    seen_changes: std::sync::atomic::AtomicU64,
    /// A frame accepted by `Sink::start_send`, not yet queued.
    sink_slot: Option<Frames>,
    /// The frame in `sink_slot` has let the driver take a batch once.
    sink_yielded: bool,
    /// `Sink::poll_close` sent its close frame.
    sink_close_sent: bool,
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket")
            .field("connection", self.sender.connection())
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl Socket {
    /// Connects to `url` (`ws://` or `wss://`) and upgrades its path and
    /// query, like Python's `await websockets.connect(url)`; resolves once
    /// the first Websocket is open. After a reconnect it upgrades the same
    /// path again (or, with [`Options::auto_upgrade_with`], with the
    /// provider's request, which is then used for the first upgrade too,
    /// instead of the URL's path).
    ///
    /// The first connection fails as [`connect`](crate::connect) does,
    /// with the same error (the first-connection policy is
    /// [`Retry`](crate::Retry)'s); the socket shuts down then.
    pub async fn connect(url: &str, options: Options) -> Result<Socket, Error> {
        if matches!(options.auto_upgrade, AutoUpgrade::Provider(_)) {
            return Socket::open_with_provider(url, options).await;
        }
        let hold = options.hold_while_down;
        let options = options.auto_upgrade(true);
        let (connection, events, _stream) = crate::connection::connect(url, options).await?;
        // The URL offers no subprotocol, so the server chose none.
        Ok(Socket::new(connection, events, hold, None, None))
    }

    /// Starts a socket on `url` and returns at once, in
    /// [`SocketState::Connecting`], as a browser's `new WebSocket(url)`
    /// does: sends are held until the first Websocket opens (see
    /// [`Options::hold_while_down`]), and how the first connection ends
    /// comes as events ([`SocketEvent::Error`], [`SocketEvent::Down`],
    /// [`SocketEvent::Closed`]) by the first-connection policy of
    /// [`Retry`](crate::Retry). It upgrades the URL's path and query,
    /// again after every reconnect; with [`Options::auto_upgrade_with`],
    /// every upgrade comes from the provider instead, and the URL names
    /// the server only (a path is refused as by [`Connection::open`]).
    ///
    /// Fails at once, as [`Connection::open`] does, on a malformed URL or
    /// options.
    ///
    /// ```no_run
    /// use wstether::{Frame, Options, Socket};
    ///
    /// # async fn run() -> Result<(), wstether::Error> {
    /// let mut socket = Socket::open("ws://127.0.0.1:8080/chat", Options::default())?;
    /// socket.try_send(Frame::text("hello"))?; // held until the first open
    /// let reply = socket.recv().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn open(url: &str, options: Options) -> Result<Socket, Error> {
        let hold = options.hold_while_down;
        if matches!(options.auto_upgrade, AutoUpgrade::Provider(_)) {
            let (connection, events) = Connection::open(url, options)?;
            return Ok(Socket::new(connection, events, hold, None, None));
        }
        let path = Target::parse(url)?.path_and_query();
        let (connection, events) =
            Connection::open_on::<Platform>(url, options.auto_upgrade(true))?;
        connection.ws_upgrade(&path)?;
        Ok(Socket::new(connection, events, hold, None, None))
    }

    /// [`Socket::connect`] with an upgrade of its own: extra headers and
    /// subprotocols ([`Upgrade`]), repeated after every reconnect (an
    /// [`Options::auto_upgrade_with`] provider is not used then). The URL
    /// names the server; `upgrade` the path.
    pub async fn connect_with(
        url: &str,
        upgrade: Upgrade,
        options: Options,
    ) -> Result<Socket, Error> {
        let hold = options.hold_while_down;
        let (connection, mut events) = Connection::open(url, options.auto_upgrade(true))?;
        let stream = connection.ws_upgrade_with(upgrade)?;
        let (_, protocol, version) =
            wait_first_upgrade(&connection, &mut events, Some(stream), None).await?;
        Ok(Socket::new(connection, events, hold, protocol, version))
    }

    /// Every upgrade comes from `Options::auto_upgrade_with`'s provider,
    /// which the core runs on every `Up`, the first included.
    async fn open_with_provider(url: &str, options: Options) -> Result<Socket, Error> {
        let hold = options.hold_while_down;
        let (connection, mut events) = Connection::open(url, options)?;
        let (_, protocol, version) =
            wait_first_upgrade(&connection, &mut events, None, None).await?;
        Ok(Socket::new(connection, events, hold, protocol, version))
    }

    fn new(
        connection: Connection,
        events: Events,
        hold: bool,
        protocol: Option<String>,
        version: Option<http::Version>,
    ) -> Socket {
        let seen = connection.shared().state_changes();
        Socket {
            sender: SocketSender::new(connection, hold),
            events,
            translator: Translator::new(protocol, version),
            seen_changes: seen.into(),
            sink_slot: None,
            sink_yielded: false,
            sink_close_sent: false,
        }
    }

    /// Sends one frame or several, in order, waiting for room in the send
    /// queue: see [`SocketSender::send`].
    ///
    /// Cancel safety: dropping the future before it completes queues none
    /// of the frames.
    pub async fn send(&self, frames: impl Into<Frames>) -> Result<(), Error> {
        self.sender.send(frames).await
    }

    /// Sends without waiting: see [`SocketSender::try_send`].
    pub fn try_send(&self, frames: impl Into<Frames>) -> Result<(), Error> {
        self.sender.try_send(frames)
    }

    /// A cheap, cloneable handle that sends on this socket (and reads its
    /// state) while this `Socket` awaits events elsewhere, e.g. in another
    /// task. It stays valid across reconnects; once the socket is closed
    /// its sends fail with [`ErrorKind::Closed`].
    pub fn sender(&self) -> SocketSender {
        self.sender.clone()
    }

    /// The next frame from the server, across reconnects. Cancel-safe:
    /// dropping the future loses nothing.
    ///
    /// Besides frames it gives back, as an error that carries them, frames
    /// that will never be written: [`ErrorKind::Disconnected`] for those
    /// handed to a Websocket that died, or the error that refused them.
    /// Such an error is not the end: call `recv` again. Once the socket is
    /// closed for good it fails with [`ErrorKind::Closed`] (with the close
    /// code and reason in the message), every time.
    pub async fn recv(&mut self) -> Result<Frame, Error> {
        futures::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Frame, Error>> {
        loop {
            let event = match self.poll_event(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    let error = self.translator.closed_error();
                    return Poll::Ready(Err(error.unwrap_or_else(|| {
                        Error::new(ErrorKind::Closed, "the socket is closed")
                    })));
                }
                Poll::Ready(Some(event)) => event,
            };
            match event {
                SocketEvent::Frame(frame) => return Poll::Ready(Ok(frame)),
                SocketEvent::Down { reason, unsent, .. } if !unsent.is_empty() => {
                    let error = Error::new(
                        ErrorKind::Disconnected,
                        format!("{} frames were not written: {reason}", unsent.len()),
                    );
                    return Poll::Ready(Err(error.with_unsent(unsent)));
                }
                SocketEvent::Error(error) if !error.unsent().is_empty() => {
                    return Poll::Ready(Err(error));
                }
                SocketEvent::Closed { .. } => {
                    let error = self.translator.closed_error();
                    return Poll::Ready(Err(error.expect("Closed was just handed out")));
                }
                _ => {}
            }
        }
    }

    /// The next event: every frame, each Websocket opened or lost, each
    /// reconnect and error, then [`SocketEvent::Closed`]; `None` after it.
    /// Cancel-safe.
    pub async fn recv_event(&mut self) -> Option<SocketEvent> {
        futures::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<SocketEvent>> {
        loop {
            if let Some(event) = self.translator.pop() {
                return Poll::Ready(Some(event));
            }
            if self.translator.closed.is_some() {
                return Poll::Ready(None);
            }
            match self.events.poll_event(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(event)) => self.translator.push(event),
                Poll::Ready(None) => self.translator.push_end(),
            }
        }
    }

    /// Where the socket is now (whether or not its events are read).
    pub fn state(&self) -> SocketState {
        let (state, changes) = self.sender.connection().shared().state_and_changes();
        self.seen_changes
            .store(changes, std::sync::atomic::Ordering::Relaxed);
        state
    }

    /// Resolves with the new state once it differs from what this handle
    /// last saw (through [`Socket::state`] or this method), so a loop of
    /// `state()` and `state_changed()` misses no change. Resolves at once
    /// when closed. Cancel-safe.
    pub async fn state_changed(&self) -> SocketState {
        let shared = self.sender.connection().shared();
        let seen = self.seen_changes.load(std::sync::atomic::Ordering::Relaxed);
        futures::future::poll_fn(|cx| shared.poll_state_change(seen, cx)).await;
        self.state()
    }

    /// Closes gracefully with `code` and `reason`, resolving once the
    /// close handshake is done or timed out: see [`SocketSender::close`].
    ///
    /// Frames from the server keep arriving until its close frame, and
    /// are read only while the event queue has room
    /// ([`Options::event_queue_len`]): if nobody reads them (with `recv`,
    /// `recv_event` or the other half of a `split`), the server's close
    /// frame may stay unread and the close ends at the closing timeout.
    pub async fn close(&self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.sender.close(code, reason).await
    }

    /// Grants the current Websocket the credit to receive `messages` more
    /// messages, for a socket opened with [`Upgrade::flow`]
    /// ([`Socket::connect_with`]): Gun's `update_flow`, as
    /// [`Connection::update_flow`] without a `StreamRef`. After a reconnect
    /// the new Websocket starts again with the upgrade's credit, and a grant
    /// made while down goes to nothing. Fails with [`ErrorKind::Closed`]
    /// once the socket has ended.
    pub fn update_flow(&self, messages: u32) -> Result<(), Error> {
        self.sender.connection().shared().push_flow(None, messages)
    }

    /// Payload bytes accepted by `send` and not yet handed to the
    /// transport, frames held while down included (a browser's
    /// `bufferedAmount`).
    pub fn buffered_amount(&self) -> usize {
        self.sender.buffered_amount()
    }

    /// The subprotocol of the current Websocket (as of the last
    /// [`SocketEvent::Open`] read, or the first one).
    pub fn protocol(&self) -> Option<&str> {
        self.translator.protocol.as_deref()
    }

    /// The HTTP version the current Websocket was opened with (as of the
    /// last [`SocketEvent::Open`] read, or the first one): HTTP/1.1 or
    /// HTTP/2 (see [`Options::http2`](crate::Options::http2)); `None`
    /// before the first open, and always in a browser, which does not say.
    pub fn http_version(&self) -> Option<http::Version> {
        self.translator.http_version
    }

    /// The low level: the [`Connection`] underneath, for
    /// [`Connection::stats`], [`Connection::rtt`], [`Connection::probe`]
    /// and [`Connection::id`].
    pub fn connection(&self) -> &Connection {
        self.sender.connection()
    }
}
