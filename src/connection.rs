//! The handle ([`Connection`]) and the event stream ([`Events`]): one
//! implementation for both targets.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;

use crate::core::{Command, Core};
use crate::driver::Driver;
use crate::error::{Error, ErrorKind};
use crate::event::{Event, StreamRef};
use crate::frame::Frames;
use crate::mailbox::{EventQueue, Shared};
use crate::options::{AutoUpgrade, Options};
use crate::request::Upgrade;
use crate::stats::Stats;
use crate::time::Instant;
use crate::transport::{Platform, Target, Transport};

mod siblings;
use siblings::Siblings;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// A connection to a WebSocket server, like a Gun connection process: it
/// owns the socket, keeps it alive and reconnects by its retry policy,
/// and tells you everything through its [`Events`].
///
/// Cheap to clone; every clone drives the same connection. Natively it is
/// `Send + Sync`; in a browser it is neither (the connection lives on the
/// page's one thread).
///
/// Dropping every clone closes the connection at once, like Gun's
/// `close/1`: no close handshake waits for the frames still queued. Those
/// frames are not lost silently: they come back in the final
/// [`Event::Down`] (`reason:` [`DownReason::Shutdown`](crate::DownReason::Shutdown),
/// `unsent`), for whoever still reads the [`Events`]; the stream then
/// ends. [`Connection::shutdown`] closes gracefully instead, writing what
/// is queued first.
#[derive(Clone)]
pub struct Connection {
    handle: Arc<Handle>,
}

/// Owned by the clones; its drop tells the driver nobody is left (the
/// driver then closes at once and hands the unwritten frames back in the
/// final `Down`).
struct Handle {
    shared: Arc<Shared>,
    target: Target,
    /// The other Websockets over HTTP/2 (siblings.rs).
    siblings: Arc<Siblings>,
    /// The connection's own event queue (its reader is woken when a
    /// sibling joins).
    events: Arc<EventQueue>,
    /// How to open a sibling: the URL and the options it is opened with
    /// (`None` where there can be none: HTTP/2 is not tried, or this is a
    /// sibling).
    /// Boxed: an `Options` is large, and most connections have none.
    sibling_recipe: Option<Box<(String, Options)>>,
    /// The connection's own Websocket, as last asked for.
    own_stream: Mutex<Option<StreamRef>>,
    /// `auto_upgrade` is on: the connection re-upgrades its own Websocket.
    re_upgrades: bool,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.abandon();
        for sibling in self.siblings.mailboxes() {
            sibling.abandon();
        }
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
    /// Opens a connection to `url` (`ws://host:port` or `wss://host:port`,
    /// with no path but `/` and no query: as `gun:open` takes a host and a
    /// port, the path is the upgrade's) and starts connecting in the
    /// background. The first event is [`Event::Up`] once connected; how a
    /// first connection that fails ends is in [`Retry`](crate::Retry)'s
    /// "The first connection".
    ///
    /// Natively this must be called within a tokio runtime (it spawns the
    /// connection's task with `tokio::spawn`); in a browser the task runs
    /// on the page's event loop.
    ///
    /// In a browser: there is no connection below the WebSocket, so
    /// [`Event::Up`] comes at once and the whole connection (TCP, TLS, the
    /// HTTP upgrade) is made by the upgrade; a server that cannot be
    /// reached shows as an [`Event::UpgradeFailed`]. When the page becomes
    /// visible again or the browser comes back online, the connection
    /// probes the server at once, as [`Connection::probe`] does. Options a
    /// browser cannot honour are refused here ([`ErrorKind::Unsupported`]):
    /// a `connect_timeout` other than the default, `silence_pings(false)`,
    /// `read_buffer_size`, extra root certificates and a
    /// [`Heartbeat::Ping`](crate::Heartbeat::Ping) keepalive; see
    /// [`Options`] for each.
    ///
    /// Fails at once, with nothing spawned, on a malformed URL
    /// ([`ErrorKind::InvalidUrl`]), a URL with a path other than `/` or a
    /// query ([`ErrorKind::InvalidUrl`]: give the path to
    /// [`Connection::ws_upgrade`], or use [`connect`], which takes one),
    /// a scheme other than `ws`/`wss` ([`ErrorKind::UnsupportedScheme`]),
    /// nonsense options ([`ErrorKind::InvalidOption`]), an option this
    /// target cannot honour ([`ErrorKind::Unsupported`]), or natively
    /// outside a tokio runtime ([`ErrorKind::NoRuntime`]).
    pub fn open(url: &str, options: Options) -> Result<(Connection, Events), Error> {
        Target::parse(url)?.refuse_path()?;
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
        Connection::open_as::<T>(url, options, false)
    }

    /// Opens the connection itself (`sibling: false`) or one of its
    /// siblings (siblings.rs).
    // In a browser a connection lives on the page's one thread: its
    // handle is neither `Send` nor `Sync`, and has no siblings.
    #[cfg_attr(browser, allow(clippy::arc_with_non_send_sync))]
    fn open_as<T: Transport + 'static>(
        url: &str,
        mut options: Options,
        sibling: bool,
    ) -> Result<(Connection, Events), Error>
    where
        Driver<T>: crate::rt::MaybeSend,
    {
        let target = Target::parse(url)?;
        options.validate()?;
        T::check_options(&options)?;
        let shared = Arc::new(Shared::new(
            options.send_queue_bytes,
            options.compression.enabled,
        ));
        // Siblings take streams of this connection's HTTP/2 connection: a
        // pool group of its own, unless it shares with every connection.
        let sibling_recipe =
            (cfg!(native) && !sibling && options.http2.tries(target.secure)).then(|| {
                if !options.share_http2 {
                    options.http2_group = Some(shared.stream_ids.connection());
                }
                // Its first dial takes a stream of the connection's HTTP/2
                // connection: one that fails (HTTP/2 cannot be had) is final.
                let first = crate::FirstConnection::Attempts(1);
                let mut recipe = options
                    .clone()
                    .http2(crate::Http2::Require)
                    .retry(options.retry.clone().first_connection(first));
                if matches!(options.auto_upgrade, AutoUpgrade::Off) {
                    // Nothing would upgrade it again: a further stream
                    // ends with its Websocket (ws_upgrade opens another).
                    recipe = recipe.retry(crate::Retry::never());
                }
                Box::new((url.to_owned(), recipe))
            });
        let re_upgrades = !matches!(options.auto_upgrade, AutoUpgrade::Off);
        let events = Arc::new(EventQueue::new(
            options.event_queue_len,
            options.event_queue_bytes,
        ));
        let span = Driver::<T>::span(shared.stream_ids.connection(), &target, 1);
        // The core's first dial is traced in the connection's span too.
        let core = span
            .in_scope(|| {
                Core::new(
                    &options,
                    shared.stream_ids.clone(),
                    crate::rt::seed(),
                    Instant::now(),
                )
            })
            .with_upgrade_check(T::check_upgrade);
        let driver: Driver<T> = Driver::new(
            core,
            shared.clone(),
            events.clone(),
            target.clone(),
            options,
            span,
        );
        // In a browser, probe the peer when the page becomes visible again or
        // the browser comes back online; the listeners go when the driver ends.
        #[cfg(browser)]
        let driver = {
            let hooks = crate::page::probe_hooks(Arc::downgrade(&shared));
            async move {
                let _hooks = hooks;
                driver.await
            }
        };
        crate::rt::spawn(driver);
        let siblings = Arc::new(Siblings::default());
        let connection = Connection {
            handle: Arc::new(Handle {
                shared,
                target,
                siblings: siblings.clone(),
                events: events.clone(),
                sibling_recipe,
                own_stream: Mutex::new(None),
                re_upgrades,
            }),
        };
        Ok((
            connection,
            Events {
                queue: events,
                batch: VecDeque::new(),
                from: None,
                own_done: false,
                siblings,
                detached: false,
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
    ///
    /// In a browser: custom headers cannot be sent (only subprotocols), so
    /// an upgrade with any is refused with [`ErrorKind::Unsupported`], as is
    /// a subprotocol offered twice ([`ErrorKind::InvalidHeader`]); and a
    /// refused upgrade's HTTP status and headers are hidden from scripts
    /// ([`Event::UpgradeFailed`] has `status: None`).
    pub fn ws_upgrade_with(&self, upgrade: Upgrade) -> Result<StreamRef, Error> {
        let request = upgrade.validate()?;
        Platform::check_upgrade(&request)?;
        if let Some(recipe) = &self.handle.sibling_recipe {
            if self.carries_its_own() {
                return self.open_sibling(recipe, upgrade);
            }
        }
        let stream = self.handle.shared.push_upgrade(|stream| Command::Upgrade {
            stream,
            request: Box::new(request),
            original: Box::new(upgrade),
        })?;
        *lock(&self.handle.own_stream) = Some(stream);
        Ok(stream)
    }

    /// Whether the connection's own Websocket is (or will be again) in use.
    fn carries_its_own(&self) -> bool {
        let own = *lock(&self.handle.own_stream);
        own.is_some_and(|stream| self.handle.shared.carries(stream, self.handle.re_upgrades))
    }

    /// A further Websocket over HTTP/2: a sibling connection whose stream
    /// shares this connection's HTTP/2 connection (siblings.rs).
    fn open_sibling(
        &self,
        recipe: &(String, Options),
        upgrade: Upgrade,
    ) -> Result<StreamRef, Error> {
        let (url, options) = recipe;
        let (sibling, events) = Connection::open_as::<Platform>(url, options.clone(), true)?;
        let stream = sibling.ws_upgrade_with(upgrade)?;
        self.handle
            .siblings
            .add(sibling, events.into_queue(), &self.handle.events);
        Ok(stream)
    }

    /// The mailbox of the Websocket `stream` belongs to: the connection's
    /// own, or a sibling's.
    /// The connection's own is borrowed, not cloned: a send costs no
    /// reference count.
    fn mailbox(&self, stream: StreamRef) -> std::borrow::Cow<'_, Arc<Shared>> {
        use std::borrow::Cow;
        if stream.0 >> 32 == self.handle.shared.stream_ids.connection() {
            return Cow::Borrowed(&self.handle.shared);
        }
        match self.handle.siblings.owner_of(stream) {
            Some(sibling) => Cow::Owned(sibling),
            None => Cow::Borrowed(&self.handle.shared),
        }
    }

    /// Sends one frame or several, in order, like `gun:ws_send/2`, without
    /// waiting: the frames are queued at once or refused at once. It is
    /// tokio's `try_send` under Gun's name: when the send queue
    /// ([`Options::send_queue_bytes`](crate::Options::send_queue_bytes)) has
    /// no room, it fails with [`ErrorKind::QueueFull`] and gives every frame
    /// back in the error (none of them is queued; a list is never split).
    /// [`Connection::send`] is the waiting form (tokio's `send`). Queued
    /// frames are written in order, batched with whatever else is queued.
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
    /// never written come back in [`Event::Down`]'s `unsent`. Once the
    /// server's close frame has been seen, a send fails with
    /// [`ErrorKind::Closed`] and gives the frames back.
    ///
    /// One call's frames may hold at most
    /// [`Options::send_queue_bytes`](crate::Options::send_queue_bytes)
    /// payload bytes (8 MiB by default): a larger call is refused with
    /// [`ErrorKind::InvalidFrame`], its frames in the error, since it could
    /// never fit (and the native write buffer is sized by that bound).
    /// Raise the option to send larger messages.
    ///
    /// In a browser: ping and pong frames cannot be sent (the browser
    /// answers pings itself) and are refused with [`ErrorKind::Unsupported`];
    /// a close frame may carry only 1000 or 3000–4999
    /// ([`ErrorKind::InvalidCloseCode`] otherwise). A frame counts as
    /// written once it has left the browser's send buffer.
    pub fn ws_send(&self, stream: StreamRef, frames: impl Into<Frames>) -> Result<(), Error> {
        let frames = check_frames(frames.into())?;
        match self.mailbox(stream).try_push_frames(stream, frames, None)? {
            Ok(()) => Ok(()),
            Err(frames) => Err(Error::new(
                ErrorKind::QueueFull,
                "the send queue is full (see Options::send_queue_bytes)",
            )
            .with_unsent(frames.into_vec())),
        }
    }

    /// Sends one frame or several, in order, waiting for room in the send
    /// queue: tokio's `send`, where [`Connection::ws_send`] is its
    /// `try_send`. Otherwise the same as `ws_send`: a list is queued whole,
    /// a close frame ends the connection and stops reconnecting, and a stale
    /// stream ([`ErrorKind::StaleStream`]), a closed connection
    /// ([`ErrorKind::Closed`]) or an invalid frame fail at once, with the
    /// frames in the error. It never fails with [`ErrorKind::QueueFull`].
    ///
    /// Natively it also waits once, with room to spare, while 32 KiB of frames
    /// queued by waiting senders have not been taken by the connection's
    /// task yet: on an executor with one thread (tokio's `current_thread`)
    /// a loop of sends would otherwise queue the whole `send_queue_bytes`
    /// before the first write. Frames of 32 KiB or more do not count;
    /// `ws_send` does not wait.
    ///
    /// One call's frames may hold at most
    /// [`Options::send_queue_bytes`](crate::Options::send_queue_bytes)
    /// payload bytes: a larger call could never fit, so it fails at once
    /// with [`ErrorKind::InvalidFrame`] instead of waiting forever. In a
    /// browser the same frames are refused as by `ws_send` (ping, pong,
    /// close codes other than 1000 and 3000–4999).
    ///
    /// Cancel safety: dropping the future before it completes queues none of
    /// the frames.
    pub async fn send(&self, stream: StreamRef, frames: impl Into<Frames>) -> Result<(), Error> {
        let mut frames = Some(check_frames(frames.into())?);
        let mailbox = self.mailbox(stream);
        let mut yielded = false;
        futures::future::poll_fn(|cx| {
            let Some(pending) = frames.take() else {
                return Poll::Ready(Ok(()));
            };
            let wait = crate::mailbox::Waiter {
                cx,
                yielded: &mut yielded,
            };
            match mailbox.try_push_frames(stream, pending, Some(wait)) {
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

    /// Grants `stream` the credit to receive `messages` more messages, like
    /// Gun's `update_flow/3`; for a Websocket upgraded with
    /// [`Upgrade::flow`](crate::Upgrade::flow), whose reading pauses when
    /// its credit is spent. The credit adds up; on a Websocket without a
    /// `flow` it does nothing (its credit is unlimited).
    ///
    /// Fails with [`ErrorKind::StaleStream`] for a Websocket that is gone
    /// (or another connection's), and [`ErrorKind::Closed`] once the
    /// connection has terminated.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), wstether::Error> {
    /// use wstether::{Connection, Event, Options, Upgrade};
    /// let (conn, mut events) = Connection::open("ws://127.0.0.1:8080", Options::default())?;
    /// // Read 10 messages, then pause until the application asks for more.
    /// let stream = conn.ws_upgrade_with(Upgrade::new("/feed").flow(10))?;
    /// let mut handled = 0;
    /// while let Some(event) = events.recv().await {
    ///     if let Event::Frame { .. } = event {
    ///         handled += 1;
    ///         if handled % 10 == 0 {
    ///             conn.update_flow(stream, 10)?; // ready for 10 more
    ///         }
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn update_flow(&self, stream: StreamRef, messages: u32) -> Result<(), Error> {
        self.mailbox(stream).push_flow(Some(stream), messages)
    }

    /// Closes gracefully, like `gun:shutdown/1`: frames already queued are
    /// written, then a close frame (1000); the connection does not
    /// reconnect. The event stream ends after the final [`Event::Down`].
    pub fn shutdown(&self) {
        self.handle.shared.push_control(Command::Shutdown);
        for sibling in self.handle.siblings.mailboxes() {
            sibling.push_control(Command::Shutdown);
        }
    }

    /// Sends a keepalive probe now instead of waiting for the interval (for
    /// example when the app returns to the foreground). Does nothing
    /// without a [`Keepalive`](crate::Keepalive), while no Websocket is
    /// open (before [`Event::Upgraded`]), or while a probe is already
    /// waiting for its answer.
    ///
    /// Natively the probe is a ping frame; in a browser it is the
    /// keepalive's heartbeat message ([`Heartbeat::Message`](crate::Heartbeat::Message)),
    /// and the connection already probes by itself when the page becomes
    /// visible again or the browser comes back online.
    pub fn probe(&self) {
        self.handle.shared.push_control(Command::Probe);
        for sibling in self.handle.siblings.mailboxes() {
            sibling.push_control(Command::Probe);
        }
    }

    /// The round-trip time of the last answered keepalive probe; `None`
    /// until one is answered (and always without a keepalive).
    ///
    /// Natively it is measured from a ping to its pong. In a browser, which
    /// cannot send pings, it is measured from a heartbeat message to the
    /// first frame its matcher recognises as the reply, so it includes the
    /// server's time to answer; a browser has no keepalive by default, so
    /// this stays `None` unless one is configured.
    pub fn rtt(&self) -> Option<Duration> {
        self.handle.shared.rtt()
    }

    /// The connection's process-wide number (in a browser: this wasm
    /// module's), the `3` of its [`StreamRef`]s `#3.1`, `#3.2`...: the
    /// number an [`Observer`](crate::Observer) is given and the `conn`
    /// field of its `tracing` span. It stays the same across reconnects.
    pub fn id(&self) -> u64 {
        self.handle.shared.stream_ids.connection()
    }

    /// Counters over the connection's whole life.
    pub fn stats(&self) -> Stats {
        self.handle.shared.stats()
    }

    /// The queues shared with the driver (for [`Socket`](crate::Socket)).
    pub(crate) fn shared(&self) -> &Shared {
        &self.handle.shared
    }
}

/// Checks frames before they are queued (valid? sendable on this target?);
/// a refusal gives them back in the error.
pub(crate) fn check_frames(frames: Frames) -> Result<Frames, Error> {
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
    /// Where `batch` came from: the connection's own queue (`None`) or a
    /// sibling's (siblings.rs).
    from: Option<Arc<EventQueue>>,
    /// The connection's own queue has ended.
    own_done: bool,
    siblings: Arc<Siblings>,
    /// A sibling's, read through its connection's `Events` ([`Events::into_queue`]).
    detached: bool,
}

impl Events {
    /// The next event, or `None` once the connection has terminated.
    pub async fn recv(&mut self) -> Option<Event> {
        futures::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    /// Waits for events, then moves up to `limit` of them, in order, to the
    /// end of `buffer`; returns how many. `0` once the connection has
    /// terminated and every event was handed out (or when `limit` is 0).
    ///
    /// What [`recv`](Events::recv) does per event, done per batch: the
    /// events come from the queue under one lock (as with `recv`, every
    /// event waiting is taken at once) and the room they leave in it is
    /// given back at once, so a reader that keeps up with a busy
    /// connection handles many events per wake-up. `buffer` is only
    /// appended to: reuse it (after `clear` or `drain`) to keep its
    /// allocation, as with tokio's `mpsc::Receiver::recv_many`.
    ///
    /// ```no_run
    /// # async fn run(mut events: wstether::Events) {
    /// let mut batch = Vec::with_capacity(64);
    /// while events.recv_many(&mut batch, 64).await > 0 {
    ///     for event in batch.drain(..) {
    ///         println!("{event:?}");
    ///     }
    /// }
    /// # }
    /// ```
    pub async fn recv_many(&mut self, buffer: &mut Vec<Event>, limit: usize) -> usize {
        if limit == 0 {
            return 0;
        }
        futures::future::poll_fn(|cx| self.poll_many(buffer, limit, cx)).await
    }

    fn poll_many(
        &mut self,
        buffer: &mut Vec<Event>,
        limit: usize,
        cx: &mut Context<'_>,
    ) -> Poll<usize> {
        match self.poll_batch(cx) {
            Poll::Ready(true) => {}
            Poll::Ready(false) => return Poll::Ready(0),
            Poll::Pending => return Poll::Pending,
        }
        let n = limit.min(self.batch.len());
        let start = buffer.len();
        buffer.extend(self.batch.drain(..n));
        self.from
            .as_ref()
            .unwrap_or(&self.queue)
            .handed_out_all(&buffer[start..]);
        Poll::Ready(n)
    }

    pub(crate) fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        match self.poll_batch(cx) {
            Poll::Ready(true) => {}
            Poll::Ready(false) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        }
        let event = self.batch.pop_front();
        if let Some(event) = &event {
            self.from.as_ref().unwrap_or(&self.queue).handed_out(event);
        }
        Poll::Ready(event)
    }

    /// Fills the batch if it is empty: from the connection's own queue or
    /// a sibling's (siblings.rs), in turn, so that a busy stream starves
    /// none; `false` once every queue has ended and been read.
    fn poll_batch(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        if !self.batch.is_empty() {
            return Poll::Ready(true);
        }
        // After a batch of its own, the siblings go first.
        let siblings_first = self.from.is_none();
        if siblings_first && self.poll_siblings(cx) {
            return Poll::Ready(true);
        }
        if !self.own_done {
            match self.queue.poll_take(&mut self.batch, cx) {
                Poll::Ready(true) => {
                    self.from = None;
                    return Poll::Ready(true);
                }
                Poll::Ready(false) => self.own_done = true,
                Poll::Pending => {}
            }
        }
        if !siblings_first && self.poll_siblings(cx) {
            return Poll::Ready(true);
        }
        if self.own_done && self.siblings.is_empty() {
            return Poll::Ready(false);
        }
        Poll::Pending
    }

    /// A batch from a sibling's queue, if one has events to show.
    fn poll_siblings(&mut self, cx: &mut Context<'_>) -> bool {
        for queue in self.siblings.queues() {
            // Until it has something to show, or has registered the
            // reader to be woken (a batch of hidden events did not).
            loop {
                match queue.poll_take(&mut self.batch, cx) {
                    Poll::Ready(true) => {
                        // Their Up and Reconnecting are the connection's own.
                        let hidden: Vec<Event> = self
                            .batch
                            .iter()
                            .filter(|e| !siblings::shown(e))
                            .cloned()
                            .collect();
                        queue.handed_out_all(&hidden);
                        self.batch.retain(siblings::shown);
                        if !self.batch.is_empty() {
                            self.from = Some(queue);
                            return true;
                        }
                    }
                    Poll::Ready(false) => {
                        self.siblings.ended(&queue);
                        break;
                    }
                    Poll::Pending => break,
                }
            }
        }
        false
    }

    /// The queue alone, for a sibling's events (read through its
    /// connection's `Events`, which tells it when its reader is gone).
    fn into_queue(mut self) -> Arc<EventQueue> {
        self.detached = true;
        self.queue.clone()
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
        if !self.detached {
            self.queue.consumer_gone();
            self.siblings.reader_gone();
        }
    }
}

/// Opens a connection and upgrades the URL's path and query in one step,
/// for when you do not need Gun's split: resolves with the open
/// Websocket's [`StreamRef`] once the first [`Event::Upgraded`] arrives
/// (the events before it, such as `Up`, are consumed).
///
/// How long it tries is the first-connection budget,
/// [`Retry::first_connection`](crate::Retry::first_connection): by default
/// one attempt, so a server that cannot be reached, refuses the upgrade or
/// does not answer in time makes it fail at once, with the last real
/// error — the `error` of the final [`Event::Error`] (see
/// [`Retry`](crate::Retry)'s "The first connection").
/// Within a larger budget, each attempt upgrades the same path again.
///
/// With an upgrade provider
/// ([`Options::auto_upgrade_with`](crate::Options::auto_upgrade_with)),
/// every upgrade, the first included, is the provider's request (its
/// path, not the URL's).
///
/// Pass [`Options::auto_upgrade`](crate::Options::auto_upgrade) to have
/// the same upgrade re-run after every reconnect.
pub async fn connect(
    url: &str,
    options: Options,
) -> Result<(Connection, Events, StreamRef), Error> {
    let path = Target::parse(url)?.path_and_query();
    // The core upgrades again by itself on every `Up` with these options
    // (a provider: from the first); without, each new attempt's `Up` is
    // answered here.
    let core_upgrades = !matches!(options.auto_upgrade, AutoUpgrade::Off);
    let provided = matches!(options.auto_upgrade, AutoUpgrade::Provider(_));
    let (connection, mut events) = Connection::open_on::<Platform>(url, options)?;
    let ours = match provided {
        true => None,
        false => Some(connection.ws_upgrade(&path)?),
    };
    let again = (!core_upgrades).then_some(path.as_str());
    let (stream, _, _) = wait_first_upgrade(&connection, &mut events, ours, again).await?;
    Ok((connection, events, stream))
}

/// Waits for the first Websocket to open (for [`connect`] and a
/// `Socket`): `Ok` with its stream, subprotocol and HTTP version on the
/// first `Upgraded`; `Err` with the last error once the events end, which is
/// the final `Error`'s when the first connection gives up (see
/// [`Retry`](crate::Retry)'s "The first connection"). `ours` is the
/// upgrade waiting or in flight, if any: a failed dial keeps it waiting
/// for the next `Up`, a failed upgrade ends it; then, when the core does
/// not upgrade by itself, the next attempt's `Up` asks `again`.
pub(crate) async fn wait_first_upgrade(
    connection: &Connection,
    events: &mut Events,
    mut ours: Option<StreamRef>,
    again: Option<&str>,
) -> Result<(StreamRef, Option<String>, Option<http::Version>), Error> {
    let mut last_error = None;
    while let Some(event) = events.recv().await {
        let version = event.http_version();
        match event {
            Event::Upgraded {
                stream, protocol, ..
            } => return Ok((stream, protocol, version)),
            Event::Up { .. } if ours.is_none() => {
                if let Some(path) = again {
                    ours = Some(connection.ws_upgrade(path)?);
                }
            }
            Event::UpgradeFailed { stream, error, .. } if Some(stream) == ours => {
                ours = None;
                // Kept in case the connection ends without a final `Error`
                // (a shutdown from another clone).
                last_error = Some(error);
            }
            Event::Error { error, .. } => last_error = Some(error),
            _ => {}
        }
    }
    Err(last_error.unwrap_or_else(|| {
        Error::new(ErrorKind::Closed, "the connection ended before the upgrade")
    }))
}
