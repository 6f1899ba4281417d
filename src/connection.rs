//! The handle ([`Connection`]) and the event stream ([`Events`]): one
//! implementation for both targets.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;

use crate::core::{Command, Core};
use crate::driver::Driver;
use crate::error::{Error, ErrorKind};
use crate::event::{Event, StreamRef};
use crate::frame::Frames;
use crate::mailbox::{EventQueue, Shared};
use crate::options::Options;
use crate::request::Upgrade;
use crate::stats::Stats;
use crate::time::Instant;
use crate::transport::{Platform, Target, Transport};

/// A connection to a WebSocket server, like a Gun connection process: it
/// owns the socket, keeps it alive and reconnects by its retry policy,
/// and tells you everything through its [`Events`].
///
/// Cheap to clone; every clone drives the same connection. Natively it is
/// `Send + Sync`. When the last clone is dropped the connection closes at
/// once (Gun's `close/1`); [`Connection::shutdown`] closes it gracefully.
#[derive(Clone)]
pub struct Connection {
    handle: Arc<Handle>,
}

/// Owned by the clones; its drop tells the driver nobody is left.
struct Handle {
    shared: Arc<Shared>,
    target: Target,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.abandon();
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("host", &self.handle.target.host)
            .field("port", &self.handle.target.port)
            .finish()
    }
}

impl Connection {
    /// Opens a connection to `url` (`ws://` or `wss://`; the path is used
    /// only by [`connect`]) and starts connecting in the background, like
    /// `gun:open`. The first event is [`Event::Up`] once connected (or
    /// [`Event::Error`] and [`Event::Reconnecting`] if that fails).
    ///
    /// Natively this must be called within a tokio runtime (it spawns the
    /// connection's task with `tokio::spawn`); in a browser the task runs
    /// on the page's event loop.
    ///
    /// Fails at once, with nothing spawned, on a malformed URL
    /// ([`ErrorKind::InvalidUrl`]), a scheme other than `ws`/`wss`
    /// ([`ErrorKind::UnsupportedScheme`]), nonsense options
    /// ([`ErrorKind::InvalidOption`]) or an option this target cannot
    /// honour ([`ErrorKind::Unsupported`]).
    pub fn open(url: &str, options: Options) -> Result<(Connection, Events), Error> {
        Connection::open_on::<Platform>(url, options)
    }

    /// [`Connection::open`] over any transport (tests drive a scripted one).
    pub(crate) fn open_on<T: Transport + 'static>(
        url: &str,
        options: Options,
    ) -> Result<(Connection, Events), Error>
    where
        Driver<T>: crate::rt::MaybeSend,
    {
        let target = Target::parse(url)?;
        options.validate()?;
        T::check_options(&options)?;
        let shared = Arc::new(Shared::new(options.send_queue_bytes));
        let events = Arc::new(EventQueue::new(
            options.event_queue_len,
            options.event_queue_bytes,
        ));
        let core = Core::new(
            &options,
            shared.stream_ids.clone(),
            crate::rt::seed(),
            Instant::now(),
        )
        .with_upgrade_check(T::check_upgrade);
        let driver: Driver<T> = Driver::new(
            core,
            shared.clone(),
            events.clone(),
            target.clone(),
            options,
        );
        // In a browser, probe the peer when the page becomes visible again or
        // the browser comes back online; the listeners go when the driver ends.
        #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
        let driver = {
            let hooks = crate::page::probe_hooks(Arc::downgrade(&shared));
            async move {
                let _hooks = hooks;
                driver.await
            }
        };
        crate::rt::spawn(driver);
        let connection = Connection {
            handle: Arc::new(Handle { shared, target }),
        };
        Ok((
            connection,
            Events {
                queue: events,
                batch: VecDeque::new(),
            },
        ))
    }

    /// Upgrades `path` to a Websocket, like `gun:ws_upgrade/2`. The answer
    /// comes as [`Event::Upgraded`] or [`Event::UpgradeFailed`] with the
    /// returned [`StreamRef`]. If the connection is not up yet, the upgrade
    /// waits for [`Event::Up`].
    pub fn ws_upgrade(&self, path: &str) -> Result<StreamRef, Error> {
        self.ws_upgrade_with(Upgrade::new(path))
    }

    /// Upgrades with extra headers and subprotocols, like
    /// `gun:ws_upgrade/3`. Fails at once on malformed or forbidden headers
    /// ([`ErrorKind::InvalidHeader`]), a malformed path
    /// ([`ErrorKind::InvalidPath`]), what this target cannot send
    /// ([`ErrorKind::Unsupported`]), or a closed connection
    /// ([`ErrorKind::Closed`]).
    pub fn ws_upgrade_with(&self, upgrade: Upgrade) -> Result<StreamRef, Error> {
        let request = upgrade.validate()?;
        Platform::check_upgrade(&request)?;
        self.handle.shared.push_upgrade(|stream| Command::Upgrade {
            stream,
            request,
            original: upgrade,
        })
    }

    /// Sends one frame or several, in order, like `gun:ws_send/2`. Returns
    /// as soon as they are queued; they are written in order, batched
    /// with whatever else is queued.
    ///
    /// A [`Frame::Close`](crate::Frame::Close), alone or last in a list,
    /// closes the connection cleanly and stops reconnecting, as
    /// [`Connection::shutdown`] does.
    ///
    /// Frames may be sent as soon as `ws_upgrade` returned: they wait for
    /// the upgrade. Nothing is lost silently: the frames come back in the
    /// error if they cannot be queued ([`ErrorKind::QueueFull`] — or use
    /// [`Connection::send`] to wait for room — [`ErrorKind::StaleStream`],
    /// [`ErrorKind::Closed`], or an invalid frame), and frames queued but
    /// never written come back in [`Event::Down`]'s `unsent`.
    pub fn ws_send(&self, stream: StreamRef, frames: impl Into<Frames>) -> Result<(), Error> {
        let frames = check_frames(frames.into())?;
        match self.handle.shared.try_push_frames(stream, frames, None)? {
            Ok(()) => Ok(()),
            Err(frames) => Err(Error::new(
                ErrorKind::QueueFull,
                "the send queue is full (see Options::send_queue_bytes)",
            )
            .with_unsent(frames.into_vec())),
        }
    }

    /// Like [`Connection::ws_send`], but waits for room in the send queue
    /// instead of failing with [`ErrorKind::QueueFull`].
    pub async fn send(&self, stream: StreamRef, frames: impl Into<Frames>) -> Result<(), Error> {
        let mut frames = Some(check_frames(frames.into())?);
        futures::future::poll_fn(|cx| {
            let Some(pending) = frames.take() else {
                return Poll::Ready(Ok(()));
            };
            match self
                .handle
                .shared
                .try_push_frames(stream, pending, Some(cx))
            {
                Ok(Ok(())) => Poll::Ready(Ok(())),
                Ok(Err(back)) => {
                    frames = Some(back);
                    Poll::Pending
                }
                Err(error) => Poll::Ready(Err(error)),
            }
        })
        .await
    }

    /// Closes gracefully, like `gun:shutdown/1`: frames already queued are
    /// written, then a close frame (1000); the connection does not
    /// reconnect. The event stream ends after the final [`Event::Down`].
    pub fn shutdown(&self) {
        self.handle.shared.push_control(Command::Shutdown);
    }

    /// Sends a keepalive probe now instead of waiting for the interval (for
    /// example when the app returns to the foreground).
    pub fn probe(&self) {
        self.handle.shared.push_control(Command::Probe);
    }

    /// The round-trip time of the last answered keepalive probe.
    pub fn rtt(&self) -> Option<Duration> {
        self.handle.shared.rtt()
    }

    /// Counters over the connection's whole life.
    pub fn stats(&self) -> Stats {
        self.handle.shared.stats()
    }
}

fn check_frames(frames: Frames) -> Result<Frames, Error> {
    let checked = frames.iter().try_for_each(|frame| {
        frame
            .validate_outgoing()
            .and_then(|()| Platform::check_frame(frame))
    });
    match checked {
        Ok(()) => Ok(frames),
        Err(error) => Err(error.with_unsent(frames.into_vec())),
    }
}

/// The connection's events, one at a time: a [`futures::Stream`] of
/// [`Event`]. It ends after the connection terminates (shutdown, a close
/// frame, or the retry policy giving up).
///
/// If you drop it, events are discarded but the connection goes on. While
/// it is not read, at most about twice [`Options::event_queue_len`] events
/// wait (one queue, one batch taken by the reader) and the socket is not
/// read further (back-pressure to the server).
pub struct Events {
    queue: Arc<EventQueue>,
    /// Events taken from the queue in one batch, handed out one by one.
    batch: VecDeque<Event>,
}

impl Events {
    /// The next event, or `None` once the connection has terminated.
    pub async fn recv(&mut self) -> Option<Event> {
        futures::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        if self.batch.is_empty() {
            match self.queue.poll_take(&mut self.batch, cx) {
                Poll::Ready(true) => {}
                Poll::Ready(false) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
        let event = self.batch.pop_front();
        if let Some(event) = &event {
            self.queue.handed_out(event);
        }
        Poll::Ready(event)
    }
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

impl Stream for Events {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.poll_event(cx)
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        self.queue.consumer_gone();
    }
}

/// Opens a connection and upgrades the URL's path in one step, for when
/// you do not need Gun's split: resolves with the open Websocket's
/// [`StreamRef`] once [`Event::Upgraded`] arrives (events before it, such
/// as `Up`, are consumed). Fails with the upgrade's error if it is
/// refused, or if the connection terminates first.
///
/// Pass [`Options::auto_upgrade`] to have the same upgrade re-run after
/// every reconnect.
pub async fn connect(
    url: &str,
    options: Options,
) -> Result<(Connection, Events, StreamRef), Error> {
    let path = Target::parse(url)?.path_and_query();
    let (connection, mut events) = Connection::open(url, options)?;
    let stream = connection.ws_upgrade(&path)?;
    let mut last_error = None;
    while let Some(event) = events.recv().await {
        match event {
            Event::Upgraded {
                stream: upgraded, ..
            } if upgraded == stream => {
                return Ok((connection, events, stream));
            }
            Event::UpgradeFailed {
                stream: failed,
                error,
                ..
            } if failed == stream => {
                connection.shutdown();
                return Err(error);
            }
            Event::Error { error, .. } => last_error = Some(error),
            _ => {}
        }
    }
    Err(last_error.unwrap_or_else(|| {
        Error::new(ErrorKind::Closed, "the connection ended before the upgrade")
    }))
}
