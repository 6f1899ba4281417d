//! "The current Websocket" over Gun's split, for the JavaScript facade: an
//! adapter whose surface follows the planned Rust `Socket` (issue 19:
//! `recv_event`, `SocketEvent`, `state`, `try_send`/`send`, `close`,
//! `buffered_amount`, `protocol`), so that moving `WsTether` onto that
//! type is a change of this file alone.
//!
//! It upgrades after every `Up` with what the provider gives for that
//! attempt (an async function: a token can be fetched per attempt), holds
//! sends while no Websocket is open in a bounded, ordered, byte-counted
//! queue and writes them after the next upgrade, as partysocket does.
//! Frames a dying transport did not write come back in
//! [`SocketEvent::Down`], never resent by themselves.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use futures::lock::Mutex as AsyncMutex;

use crate::error::{Error, ErrorKind};
use crate::event::{DownReason, Event, StreamRef};
use crate::frame::{CloseCode, Frame};
use crate::options::Options;
use crate::request::Upgrade;
use crate::transport::Target;
use crate::{Connection, Events, Stats};

/// What one attempt upgrades: a `ws://`/`wss://` URL (its path and query
/// are upgraded) and the subprotocols to offer.
pub(super) struct Attempt {
    pub(super) url: String,
    pub(super) protocols: Vec<String>,
}

/// The provider's answer for one attempt.
pub(super) type AttemptFuture = Pin<Box<dyn Future<Output = Result<Attempt, Error>>>>;

/// Called before the first connection and after every reconnect.
pub(super) type Provider = Box<dyn Fn() -> AttemptFuture>;

/// Where the socket stands; `Reconnecting` covers the wait and the dial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SocketState {
    Connecting,
    Open,
    Reconnecting,
    Closing,
    Closed,
}

/// Everything that happens to the socket, in order.
pub(super) enum SocketEvent {
    /// A Websocket is open (again); held sends are on their way.
    Open {
        protocol: Option<String>,
    },
    /// One text or binary message.
    Frame(Frame),
    /// The next attempt starts after `delay`.
    Reconnecting {
        attempt: u32,
        delay: Duration,
    },
    /// The Websocket went away; `unsent` were accepted but not written.
    Down {
        reason: DownReason,
        unsent: Vec<Frame>,
        will_reconnect: bool,
    },
    Error(Error),
    /// The last event: closed for good.
    Closed {
        code: Option<CloseCode>,
        reason: String,
        clean: bool,
    },
}

/// One handle on "the current Websocket"; clones share it.
#[derive(Clone)]
pub(super) struct Socket {
    inner: Rc<Inner>,
}

struct Inner {
    provider: Provider,
    /// Taken by the first `recv_event` when the URL comes from the provider.
    options: RefCell<Option<Options>>,
    /// The provider's answer that picked the host, upgraded first.
    first: RefCell<Option<Attempt>>,
    capacity: usize,
    connection: RefCell<Option<Connection>>,
    /// The host the connection dials; every attempt must keep it.
    origin: RefCell<Option<(bool, String, u16)>>,
    events: AsyncMutex<Option<Events>>,
    /// Events decided here, handed out before the connection's next one.
    ready: RefCell<VecDeque<SocketEvent>>,
    state: Cell<SocketState>,
    ever_open: Cell<bool>,
    /// The upgrade on its way, then the open stream.
    pending: Cell<Option<StreamRef>>,
    stream: Cell<Option<StreamRef>>,
    protocol: RefCell<Option<String>>,
    /// The URL of the current (or last) attempt.
    url: RefCell<String>,
    held: RefCell<VecDeque<Frame>>,
    held_bytes: Cell<usize>,
    /// The close the application asked for, reported by `Closed`.
    close_asked: RefCell<Option<(u16, String)>>,
    /// What `Closed` says: code, reason, clean.
    end: RefCell<Option<(Option<CloseCode>, String, bool)>>,
    /// `send` calls waiting for a state change or for held room.
    waiters: RefCell<Vec<Waker>>,
}

impl Socket {
    /// Starts a socket (nothing is awaited). With `url`, the connection is
    /// opened now, so a malformed URL or options fail here; without, the
    /// provider's first answer is dialled by the first `recv_event`.
    pub(super) fn open(
        url: Option<&str>,
        provider: Provider,
        options: Options,
    ) -> Result<Socket, Error> {
        let capacity = options.send_queue_bytes;
        let socket = Socket {
            inner: Rc::new(Inner {
                provider,
                options: RefCell::new(None),
                first: RefCell::new(None),
                capacity,
                connection: RefCell::new(None),
                origin: RefCell::new(None),
                events: AsyncMutex::new(None),
                ready: RefCell::new(VecDeque::new()),
                state: Cell::new(SocketState::Connecting),
                ever_open: Cell::new(false),
                pending: Cell::new(None),
                stream: Cell::new(None),
                protocol: RefCell::new(None),
                url: RefCell::new(url.unwrap_or_default().to_owned()),
                held: RefCell::new(VecDeque::new()),
                held_bytes: Cell::new(0),
                close_asked: RefCell::new(None),
                end: RefCell::new(None),
                waiters: RefCell::new(Vec::new()),
            }),
        };
        match url {
            Some(url) => socket.dial(url, options)?,
            None => {
                options.validate()?;
                *socket.inner.options.borrow_mut() = Some(options);
            }
        }
        Ok(socket)
    }

    fn dial(&self, url: &str, options: Options) -> Result<(), Error> {
        let target = Target::parse(url)?;
        // The connection itself is opened on the host alone (Gun's open);
        // the path and query are what each attempt upgrades.
        let host = if target.host.contains(':') {
            format!("[{}]", target.host)
        } else {
            target.host.clone()
        };
        let scheme = if target.secure { "wss" } else { "ws" };
        let (connection, events) =
            Connection::open(&format!("{scheme}://{host}:{}/", target.port), options)?;
        *self.inner.origin.borrow_mut() = Some((target.secure, target.host, target.port));
        *self.inner.connection.borrow_mut() = Some(connection);
        // Never contended: nobody awaits the lock before the connection exists.
        if let Some(mut slot) = self.inner.events.try_lock() {
            *slot = Some(events);
        }
        Ok(())
    }

    pub(super) fn state(&self) -> SocketState {
        self.inner.state.get()
    }

    /// The subprotocol of the open Websocket (or of the last one).
    pub(super) fn protocol(&self) -> Option<String> {
        self.inner.protocol.borrow().clone()
    }

    /// The URL of the current (or last) attempt; empty before the
    /// provider's first answer.
    pub(super) fn url(&self) -> String {
        self.inner.url.borrow().clone()
    }

    /// Payload bytes accepted and not yet handed to the browser's
    /// WebSocket: held while down, plus queued in the connection.
    pub(super) fn buffered_amount(&self) -> usize {
        let queued = self
            .inner
            .connection
            .borrow()
            .as_ref()
            .map_or(0, |connection| connection.shared().queued_bytes());
        self.inner.held_bytes.get() + queued
    }

    pub(super) fn stats(&self) -> Option<Stats> {
        self.inner
            .connection
            .borrow()
            .as_ref()
            .map(Connection::stats)
    }

    pub(super) fn probe(&self) {
        if let Some(connection) = &*self.inner.connection.borrow() {
            connection.probe();
        }
    }

    /// Queues `frames` (text or binary) now, or holds them while no
    /// Websocket is open; `QueueFull` (the frames in the error) when there
    /// is no room, `Closed` once closing.
    pub(super) fn try_send(&self, frames: Vec<Frame>) -> Result<(), Error> {
        let bytes: usize = frames.iter().map(Frame::len).sum();
        if matches!(self.state(), SocketState::Closing | SocketState::Closed) {
            return Err(Error::new(ErrorKind::Closed, "the socket is closed").with_unsent(frames));
        }
        if bytes > self.inner.capacity {
            return Err(Error::new(
                ErrorKind::InvalidFrame,
                format!(
                    "{bytes} payload bytes in one send exceed sendQueueBytes ({})",
                    self.inner.capacity
                ),
            )
            .with_unsent(frames));
        }
        self.flush_held();
        if let (Some(stream), true) = (self.inner.stream.get(), self.inner.held.borrow().is_empty())
        {
            let connection = self.inner.connection.borrow();
            let Some(connection) = connection.as_ref() else {
                return Err(Error::new(ErrorKind::Closed, "no connection").with_unsent(frames));
            };
            return match connection.ws_send(stream, frames) {
                Ok(()) => Ok(()),
                // The Websocket just went away: hold them for the next one.
                Err(error) if error.kind() == ErrorKind::StaleStream => {
                    self.hold(error.into_unsent(), bytes)
                }
                Err(error) => Err(error),
            };
        }
        self.hold(frames, bytes)
    }

    /// `try_send` that waits for room instead of failing with `QueueFull`.
    pub(super) async fn send(&self, mut frames: Vec<Frame>) -> Result<(), Error> {
        loop {
            match self.try_send(frames) {
                Err(error) if error.kind() == ErrorKind::QueueFull => {
                    frames = error.into_unsent();
                    let stream = self.inner.stream.get();
                    let connection = self.inner.connection.borrow().clone();
                    match (stream, connection) {
                        // Open: the connection's own wait for room.
                        (Some(stream), Some(connection)) if self.inner.held.borrow().is_empty() => {
                            match connection.send(stream, frames).await {
                                Ok(()) => return Ok(()),
                                Err(error) if error.kind() == ErrorKind::StaleStream => {
                                    frames = error.into_unsent()
                                }
                                Err(error) => return Err(error),
                            }
                        }
                        // Down: room comes with the next open (or the end).
                        _ => self.changed().await,
                    }
                }
                other => return other,
            }
        }
    }

    fn hold(&self, frames: Vec<Frame>, bytes: usize) -> Result<(), Error> {
        let held = self.inner.held_bytes.get();
        if held > 0 && held + bytes > self.inner.capacity {
            return Err(Error::new(
                ErrorKind::QueueFull,
                "the send queue is full while reconnecting (see sendQueueBytes)",
            )
            .with_unsent(frames));
        }
        self.inner.held_bytes.set(held + bytes);
        self.inner.held.borrow_mut().extend(frames);
        Ok(())
    }

    /// Hands held frames to the open Websocket, in order, as far as there is room.
    fn flush_held(&self) {
        let Some(stream) = self.inner.stream.get() else {
            return;
        };
        let connection = self.inner.connection.borrow();
        let Some(connection) = connection.as_ref() else {
            return;
        };
        let mut held = self.inner.held.borrow_mut();
        while let Some(frame) = held.pop_front() {
            let bytes = frame.len();
            match connection.ws_send(stream, frame) {
                Ok(()) => self
                    .inner
                    .held_bytes
                    .set(self.inner.held_bytes.get() - bytes),
                Err(error) => {
                    if let Some(frame) = error.into_unsent().pop() {
                        held.push_front(frame);
                    }
                    break;
                }
            }
        }
        drop(held);
        self.wake();
    }

    /// Closes with a close frame (or ends the attempt in progress) and stops
    /// reconnecting; the last event is `Closed`. Closing twice does nothing.
    pub(super) fn close(&self, code: u16, reason: &str) -> Result<(), Error> {
        if matches!(self.state(), SocketState::Closing | SocketState::Closed) {
            return Ok(());
        }
        let frame = Frame::close(code, reason)?;
        let connection = self.inner.connection.borrow().clone();
        match (self.inner.stream.get(), connection) {
            (Some(stream), Some(connection)) => {
                self.flush_held();
                connection.ws_send(stream, frame)?;
            }
            (_, Some(connection)) => connection.shutdown(),
            (_, None) => {}
        }
        *self.inner.close_asked.borrow_mut() = Some((code, reason.to_owned()));
        self.set_state(SocketState::Closing);
        Ok(())
    }

    /// The next event; `None` after `Closed`.
    pub(super) async fn recv_event(&self) -> Option<SocketEvent> {
        loop {
            if let Some(event) = self.inner.ready.borrow_mut().pop_front() {
                return Some(event);
            }
            if self.state() == SocketState::Closed {
                return None;
            }
            if self.inner.connection.borrow().is_none() {
                self.first_dial().await;
                continue;
            }
            let event = {
                let mut events = self.inner.events.lock().await;
                match events.as_mut() {
                    Some(events) => events.recv().await,
                    None => None,
                }
            };
            match event {
                Some(Event::Up { .. }) => {
                    if let Some(event) = self.on_up().await {
                        return Some(event);
                    }
                }
                Some(event) => {
                    if let Some(event) = self.on_event(event) {
                        return Some(event);
                    }
                }
                None => self.finish(),
            }
        }
    }

    /// Without a fixed URL: the provider's first answer picks the host.
    async fn first_dial(&self) {
        let options = self.inner.options.borrow_mut().take();
        let Some(options) = options else {
            self.finish();
            return;
        };
        if self.state() == SocketState::Closing {
            self.finish();
            return;
        }
        let dialled = match (self.inner.provider)().await {
            Ok(_) if self.state() == SocketState::Closing => return self.finish(),
            Ok(attempt) => {
                let dialled = self.dial(&attempt.url, options);
                *self.inner.first.borrow_mut() = Some(attempt);
                dialled
            }
            Err(error) => Err(error),
        };
        if let Err(error) = dialled {
            self.inner
                .ready
                .borrow_mut()
                .push_back(SocketEvent::Error(error));
            self.finish();
        }
    }

    /// Connected (again): upgrade with the provider's answer for this attempt.
    async fn on_up(&self) -> Option<SocketEvent> {
        if self.state() == SocketState::Closing {
            return None;
        }
        let error = self.upgrade().await.err()?;
        // A provider that fails, or changes the host, ends the socket.
        if let Some(connection) = &*self.inner.connection.borrow() {
            connection.shutdown();
        }
        self.set_state(SocketState::Closing);
        Some(SocketEvent::Error(error))
    }

    fn on_event(&self, event: Event) -> Option<SocketEvent> {
        match event {
            Event::Upgraded {
                stream, protocol, ..
            } if Some(stream) == self.inner.pending.get() => {
                self.inner.pending.set(None);
                if self.state() == SocketState::Closing {
                    return None;
                }
                self.inner.stream.set(Some(stream));
                *self.inner.protocol.borrow_mut() = protocol.clone();
                self.inner.ever_open.set(true);
                self.set_state(SocketState::Open);
                self.flush_held();
                Some(SocketEvent::Open { protocol })
            }
            Event::UpgradeFailed { error, .. } => Some(SocketEvent::Error(error)),
            Event::Frame { stream, frame }
                if Some(stream) == self.inner.stream.get()
                    && matches!(frame, Frame::Text(_) | Frame::Binary(_)) =>
            {
                Some(SocketEvent::Frame(frame))
            }
            Event::Error { error, .. } => Some(SocketEvent::Error(error)),
            Event::Down {
                reason,
                mut unsent,
                will_reconnect,
                ..
            } => {
                self.inner.stream.set(None);
                self.inner.pending.set(None);
                if will_reconnect && self.state() != SocketState::Closing {
                    let next = if self.inner.ever_open.get() {
                        SocketState::Reconnecting
                    } else {
                        SocketState::Connecting
                    };
                    self.set_state(next);
                } else {
                    unsent.extend(self.take_held());
                    self.remember_end(&reason);
                }
                Some(SocketEvent::Down {
                    reason,
                    unsent,
                    will_reconnect,
                })
            }
            Event::Reconnecting { attempt, delay } => {
                Some(SocketEvent::Reconnecting { attempt, delay })
            }
            _ => None,
        }
    }

    /// Upgrades with the provider's answer for this attempt.
    async fn upgrade(&self) -> Result<(), Error> {
        let first = self.inner.first.borrow_mut().take();
        let attempt = match first {
            Some(attempt) => attempt,
            None => (self.inner.provider)().await?,
        };
        let target = Target::parse(&attempt.url)?;
        let same_host = self
            .inner
            .origin
            .borrow()
            .as_ref()
            .is_some_and(|(secure, host, port)| {
                (*secure, host.as_str(), *port)
                    == (target.secure, target.host.as_str(), target.port)
            });
        if !same_host {
            return Err(Error::new(
                ErrorKind::InvalidUrl,
                "the provider may change the path, query and protocols per attempt, not the \
                 scheme, host or port: open another WsTether for another server",
            ));
        }
        *self.inner.url.borrow_mut() = attempt.url.clone();
        let mut upgrade = Upgrade::new(target.path_and_query());
        for protocol in attempt.protocols {
            upgrade = upgrade.protocol(protocol);
        }
        let connection = self.inner.connection.borrow().clone();
        let Some(connection) = connection else {
            return Err(Error::new(ErrorKind::Closed, "no connection"));
        };
        self.inner
            .pending
            .set(Some(connection.ws_upgrade_with(upgrade)?));
        Ok(())
    }

    fn take_held(&self) -> Vec<Frame> {
        self.inner.held_bytes.set(0);
        std::mem::take(&mut *self.inner.held.borrow_mut()).into()
    }

    /// What `Closed` will say, from the last `Down`.
    fn remember_end(&self, reason: &DownReason) {
        let end = match reason {
            DownReason::ClosedByPeer(close) => (Some(close.code), close.reason.clone(), true),
            DownReason::Shutdown => {
                let asked = self.inner.close_asked.borrow().clone();
                match asked {
                    Some((code, reason)) => (Some(CloseCode::from_wire(code)), reason, true),
                    None => (Some(CloseCode::from_wire(1000)), String::new(), true),
                }
            }
            _ => (Some(CloseCode::from_wire(1006)), String::new(), false),
        };
        self.set_state(SocketState::Closing);
        *self.inner.end.borrow_mut() = Some(end);
    }

    /// The connection has ended (or never started): hand back what is
    /// still held, then `Closed`.
    fn finish(&self) {
        if self.state() == SocketState::Closed {
            return;
        }
        let held = self.take_held();
        let mut ready = self.inner.ready.borrow_mut();
        if !held.is_empty() {
            ready.push_back(SocketEvent::Down {
                reason: DownReason::Shutdown,
                unsent: held,
                will_reconnect: false,
            });
        }
        let asked = self.inner.close_asked.borrow().clone();
        let (code, reason, clean) = match (self.inner.end.borrow_mut().take(), asked) {
            (Some(end), _) => end,
            (None, Some((code, reason))) => (Some(CloseCode::from_wire(code)), reason, true),
            (None, None) => (Some(CloseCode::from_wire(1006)), String::new(), false),
        };
        ready.push_back(SocketEvent::Closed {
            code,
            reason,
            clean,
        });
        drop(ready);
        self.inner.stream.set(None);
        self.set_state(SocketState::Closed);
    }

    fn set_state(&self, state: SocketState) {
        self.inner.state.set(state);
        self.wake();
    }

    fn wake(&self) {
        for waker in self.inner.waiters.borrow_mut().drain(..) {
            waker.wake();
        }
    }

    /// Resolves at the next state change or flush of held frames.
    async fn changed(&self) {
        let mut registered = false;
        futures::future::poll_fn(|cx| {
            if registered {
                return Poll::Ready(());
            }
            registered = true;
            self.inner.waiters.borrow_mut().push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}
