//! The JavaScript facade's side of [`Socket`]: `WsTether` is a thin
//! adapter over the Rust socket, whose [`SocketSender`] sends (held while
//! down, counted in `bufferedAmount`) while the event pump owns the
//! socket. The page's URL (or provider) becomes the socket's async
//! upgrade provider: path, query and protocols may change per attempt,
//! the server may not.
//!
//! One thing is the adapter's own: a provider's *first* answer names the
//! server, so the socket is opened only once it comes; sends made before
//! that wait here, in order and bounded by `sendQueueBytes`, and go to
//! the socket as it opens (where it holds them until the first upgrade).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use std::task::{Poll, Waker};

use crate::error::{Error, ErrorKind};
use crate::event::DownReason;
use crate::frame::{CloseCode, Frame};
use crate::options::Options;
use crate::request::Upgrade;
use crate::socket::{Socket, SocketEvent, SocketSender, SocketState};
use crate::transport::Target;
use crate::{Connection, Stats};

/// What one attempt upgrades: a `ws://`/`wss://` URL (its path and query
/// are upgraded) and the subprotocols to offer.
pub(super) struct Attempt {
    pub(super) url: String,
    pub(super) protocols: Vec<String>,
}

/// The provider's answer for one attempt.
pub(super) type AttemptFuture = Pin<Box<dyn Future<Output = Result<Attempt, Error>>>>;

/// Called before the first connection and after every reconnect.
pub(super) type Provider = Rc<dyn Fn() -> AttemptFuture>;

/// The page's handle: sends, state and counters; clones share it.
#[derive(Clone)]
pub(super) struct Tether {
    inner: Rc<Inner>,
}

struct Inner {
    /// The socket's sending side, once it is open.
    sender: RefCell<Option<(SocketSender, Connection)>>,
    /// `send` calls waiting for the socket to start (or never to).
    starting: RefCell<Vec<Waker>>,
    started: Cell<bool>,
    /// Sends made before the provider's first answer, and their bytes.
    early: RefCell<Vec<Frame>>,
    early_bytes: Cell<usize>,
    capacity: usize,
    /// The close the page asked for: what `close` reports when no close
    /// frame came back (closed before any Websocket opened).
    asked: RefCell<Option<(CloseCode, String)>>,
    /// The socket ended before it existed.
    ended: Cell<bool>,
    url: RefCell<String>,
    protocol: RefCell<String>,
    /// The provider named another server: the socket is being closed.
    host_changed: Cell<bool>,
}

impl Tether {
    /// Starts the socket and its event pump (`on_event` gets every event);
    /// nothing is awaited. A fixed `url` opens the socket now, so a
    /// malformed URL or options fail here.
    pub(super) fn open(
        url: Option<&str>,
        provider: Provider,
        options: Options,
        on_event: impl Fn(SocketEvent) + 'static,
    ) -> Result<Tether, Error> {
        options.validate()?;
        let tether = Tether {
            inner: Rc::new(Inner {
                sender: RefCell::new(None),
                starting: RefCell::new(Vec::new()),
                started: Cell::new(false),
                early: RefCell::new(Vec::new()),
                early_bytes: Cell::new(0),
                capacity: options.send_queue_bytes,
                asked: RefCell::new(None),
                ended: Cell::new(false),
                url: RefCell::new(url.unwrap_or_default().to_owned()),
                protocol: RefCell::new(String::new()),
                host_changed: Cell::new(false),
            }),
        };
        let socket = match url {
            Some(url) => Some(tether.start(url, None, provider.clone(), options.clone())?),
            None => None,
        };
        let pump = tether.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let socket = match socket {
                Some(socket) => Some(socket),
                None => pump.first_answer(provider, options, &on_event).await,
            };
            pump.inner.started.set(true);
            for waker in pump.inner.starting.take() {
                waker.wake();
            }
            if let Some(socket) = socket {
                pump.run(socket, &on_event).await;
            }
        });
        Ok(tether)
    }

    /// Without a fixed URL: the provider's first answer names the server.
    async fn first_answer(
        &self,
        provider: Provider,
        options: Options,
        on_event: &impl Fn(SocketEvent),
    ) -> Option<Socket> {
        let opened = match provider().await {
            _ if self.inner.asked.borrow().is_some() => Err(None),
            Ok(attempt) => {
                let url = attempt.url.clone();
                self.start(&url, Some(attempt), provider, options)
                    .map_err(Some)
            }
            Err(error) => Err(Some(error)),
        };
        match opened {
            Ok(socket) => {
                let early = self.take_early();
                // Into a socket just opened: its queue has room for what
                // was bounded by the same capacity here.
                if !early.is_empty() {
                    if let Err(error) = socket.try_send(early) {
                        on_event(SocketEvent::Error(error));
                    }
                }
                if let Some((code, reason)) = self.inner.asked.borrow().clone() {
                    let _ = socket.sender().start_close(code, &reason);
                }
                Some(socket)
            }
            Err(error) => {
                self.inner.ended.set(true);
                let asked = self.inner.asked.borrow().clone();
                on_event_end(on_event, error, self.take_early(), asked);
                None
            }
        }
    }

    /// Opens the socket on `url`'s server; every upgrade (the first from
    /// `first` if given) comes from `provider`.
    fn start(
        &self,
        url: &str,
        first: Option<Attempt>,
        provider: Provider,
        options: Options,
    ) -> Result<Socket, Error> {
        let target = Target::parse(url)?;
        let host = if target.host.contains(':') {
            format!("[{}]", target.host)
        } else {
            target.host.clone()
        };
        let scheme = if target.secure { "wss" } else { "ws" };
        let port = target.port;
        let origin = (target.secure, target.host, port);
        let first = RefCell::new(first);
        let inner = Rc::downgrade(&self.inner);
        let options = options.auto_upgrade_with(move || {
            let first = first.borrow_mut().take();
            let provider = provider.clone();
            let origin = origin.clone();
            let inner = inner.clone();
            async move {
                let attempt = match first {
                    Some(attempt) => attempt,
                    None => provider().await?,
                };
                let target = Target::parse(&attempt.url)?;
                if (target.secure, &target.host, target.port) != (origin.0, &origin.1, origin.2) {
                    if let Some(inner) = inner.upgrade() {
                        inner.host_changed.set(true);
                    }
                    return Err(host_changed());
                }
                if let Some(inner) = inner.upgrade() {
                    *inner.url.borrow_mut() = attempt.url.clone();
                }
                let mut upgrade = Upgrade::new(target.path_and_query());
                for protocol in attempt.protocols {
                    upgrade = upgrade.protocol(protocol);
                }
                Ok::<_, Error>(upgrade)
            }
        });
        let socket = Socket::open(&format!("{scheme}://{host}:{port}/"), options)?;
        *self.inner.sender.borrow_mut() = Some((socket.sender(), socket.connection().clone()));
        Ok(socket)
    }

    /// Hands every event to `on_event` until `Closed`.
    async fn run(&self, mut socket: Socket, on_event: &impl Fn(SocketEvent)) {
        while let Some(event) = socket.recv_event().await {
            let event = match event {
                SocketEvent::Open { protocol } => {
                    *self.inner.protocol.borrow_mut() = protocol.clone().unwrap_or_default();
                    SocketEvent::Open { protocol }
                }
                // A provider that names another server ends the socket.
                SocketEvent::Error(error)
                    if error.kind() == ErrorKind::Provider && self.inner.host_changed.get() =>
                {
                    let _ = socket.sender().start_close(CloseCode::from_wire(1000), "");
                    SocketEvent::Error(host_changed())
                }
                // No close frame came back: what the page asked for (a
                // close before any Websocket opened), as partysocket says.
                SocketEvent::Closed {
                    code: None,
                    reason,
                    clean,
                } => match self.inner.asked.borrow().clone() {
                    Some((code, asked)) => SocketEvent::Closed {
                        code: Some(code),
                        reason: asked,
                        clean: true,
                    },
                    None => SocketEvent::Closed {
                        code: None,
                        reason,
                        clean,
                    },
                },
                other => other,
            };
            on_event(event);
        }
    }

    fn take_early(&self) -> Vec<Frame> {
        self.inner.early_bytes.set(0);
        std::mem::take(&mut *self.inner.early.borrow_mut())
    }

    fn sender(&self) -> Option<SocketSender> {
        self.inner.sender.borrow().as_ref().map(|(s, _)| s.clone())
    }

    pub(super) fn state(&self) -> SocketState {
        match self.sender() {
            Some(sender) => sender.state(),
            None if self.inner.ended.get() => SocketState::Closed,
            None if self.inner.asked.borrow().is_some() => SocketState::Closing,
            None => SocketState::Connecting,
        }
    }

    /// The subprotocol of the open Websocket (or of the last one).
    pub(super) fn protocol(&self) -> String {
        self.inner.protocol.borrow().clone()
    }

    /// The URL of the current (or last) attempt; empty before the
    /// provider's first answer.
    pub(super) fn url(&self) -> String {
        self.inner.url.borrow().clone()
    }

    /// Payload bytes accepted and not yet handed to the browser.
    pub(super) fn buffered_amount(&self) -> usize {
        self.sender()
            .map_or(self.inner.early_bytes.get(), |s| s.buffered_amount())
    }

    pub(super) fn stats(&self) -> Option<Stats> {
        self.inner.sender.borrow().as_ref().map(|(_, c)| c.stats())
    }

    pub(super) fn probe(&self) {
        if let Some((_, connection)) = &*self.inner.sender.borrow() {
            connection.probe();
        }
    }

    /// Queues (or holds) `frame` now; `QueueFull` when there is no room,
    /// `Closed` once closing.
    pub(super) fn try_send(&self, frame: Frame) -> Result<(), Error> {
        if let Some(sender) = self.sender() {
            return sender.try_send(frame);
        }
        if self.state() != SocketState::Connecting {
            return Err(
                Error::new(ErrorKind::Closed, "the socket is closed").with_unsent(vec![frame])
            );
        }
        let bytes = self.inner.early_bytes.get() + frame.len();
        if bytes > self.inner.capacity {
            let kind = match self.inner.early.borrow().is_empty() {
                true => ErrorKind::InvalidFrame,
                false => ErrorKind::QueueFull,
            };
            let message = "the send queue is full (see sendQueueBytes)";
            return Err(Error::new(kind, message).with_unsent(vec![frame]));
        }
        self.inner.early_bytes.set(bytes);
        self.inner.early.borrow_mut().push(frame);
        Ok(())
    }

    /// `try_send` that waits for room instead of failing with `QueueFull`.
    pub(super) async fn send(&self, frame: Frame) -> Result<(), Error> {
        let frame = match self.try_send(frame) {
            Err(error) if error.kind() == ErrorKind::QueueFull && self.sender().is_none() => {
                futures::future::poll_fn(|cx| {
                    if self.inner.started.get() {
                        return Poll::Ready(());
                    }
                    self.inner.starting.borrow_mut().push(cx.waker().clone());
                    Poll::Pending
                })
                .await;
                error.into_unsent().remove(0)
            }
            Err(error) if error.kind() == ErrorKind::QueueFull => error.into_unsent().remove(0),
            other => return other,
        };
        match self.sender() {
            Some(sender) => sender.send(frame).await,
            None => {
                Err(Error::new(ErrorKind::Closed, "the socket is closed").with_unsent(vec![frame]))
            }
        }
    }

    /// Closes with a close frame (or ends the attempt in progress) and
    /// stops reconnecting; the last event is `close`. Closing twice does
    /// nothing.
    pub(super) fn close(&self, code: u16, reason: &str) -> Result<(), Error> {
        // Checked here too: before the socket exists, nothing else would.
        Frame::close(code, reason)?;
        let code = CloseCode::from_wire(code);
        if matches!(self.state(), SocketState::Closing | SocketState::Closed) {
            return Ok(());
        }
        *self.inner.asked.borrow_mut() = Some((code, reason.to_owned()));
        match self.sender() {
            Some(sender) => sender.start_close(code, reason),
            None => Ok(()),
        }
    }
}

/// The events of a socket that never started: the error (if any), the
/// early sends handed back, then `Closed`.
fn on_event_end(
    on_event: &impl Fn(SocketEvent),
    error: Option<Error>,
    early: Vec<Frame>,
    asked: Option<(CloseCode, String)>,
) {
    let reason = error.as_ref().map(Error::to_string);
    if let Some(error) = error {
        on_event(SocketEvent::Error(error));
    }
    if !early.is_empty() {
        on_event(SocketEvent::Down {
            reason: DownReason::Shutdown,
            unsent: early,
            will_reconnect: false,
        });
    }
    let clean = asked.is_some();
    let (code, reason) = match asked {
        Some((code, reason)) => (Some(code), reason),
        None => (None, reason.unwrap_or_default()),
    };
    on_event(SocketEvent::Closed {
        code,
        reason,
        clean,
    });
}

fn host_changed() -> Error {
    Error::new(
        ErrorKind::InvalidUrl,
        "the provider may change the path, query and protocols per attempt, not the \
         scheme, host or port: open another WsTether for another server",
    )
}
