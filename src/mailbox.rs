//! The two queues between the handles and the driver task: commands in
//! (bounded by queued payload bytes, for back-pressure) and events out
//! (bounded by count and by payload bytes: when either is reached, the
//! driver stops reading the socket).
//!
//! A plain mutex around a `VecDeque` lets the driver take a whole batch of
//! commands at once, which is what makes write batching possible.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::core::{Command, StreamIds};
use crate::error::{Error, ErrorKind};
use crate::event::{Event, StreamRef};
use crate::frame::Frames;
use crate::socket::SocketState;
use crate::stats::Stats;
use crate::time::Instant;
use std::sync::Arc;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not make every later call panic too.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// State shared by the handles and the driver.
pub(crate) struct Shared {
    inner: Mutex<Inbox>,
    pub(crate) stream_ids: Arc<StreamIds>,
}

struct Inbox {
    commands: VecDeque<Command>,
    /// Payload bytes queued (what `buffered_amount` reports).
    queued_bytes: usize,
    /// Frames queued: each is charged [`ENTRY_OVERHEAD`] besides its
    /// payload against `capacity` ([`charge`]).
    queued_frames: usize,
    capacity: usize,
    driver: Option<Waker>,
    /// Senders waiting for room in the queue.
    waiting_senders: Vec<Waker>,
    /// Streams up to this one were killed by a `Down`.
    killed_up_to: Option<StreamRef>,
    /// The peer closed this Websocket: sends to it are refused.
    peer_closed: Option<StreamRef>,
    /// A close frame or shutdown was queued: nothing more is accepted.
    closing: bool,
    /// The driver has ended.
    terminated: bool,
    /// Every `Connection` handle is gone.
    abandoned: bool,
    rtt: Option<Duration>,
    stats: Stats,
    /// Since when the current Websocket is open (`stats.time_connected`
    /// holds the time of the past ones).
    open_since: Option<Instant>,
    /// Where the current Websocket is (for a `Socket`), and who waits for
    /// it to change.
    state: SocketState,
    state_waiters: Vec<Waker>,
    /// Counts the state's changes (a waiter compares it with what it saw).
    state_changes: u64,
}

impl Inbox {
    /// What the queued frames are charged against the capacity.
    fn charged(&self) -> usize {
        self.queued_bytes
            .saturating_add(self.queued_frames.saturating_mul(ENTRY_OVERHEAD))
    }
}

impl Shared {
    pub(crate) fn new(capacity: usize) -> Shared {
        Shared {
            inner: Mutex::new(Inbox {
                commands: VecDeque::new(),
                queued_bytes: 0,
                queued_frames: 0,
                capacity,
                driver: None,
                waiting_senders: Vec::new(),
                killed_up_to: None,
                peer_closed: None,
                closing: false,
                terminated: false,
                abandoned: false,
                rtt: None,
                stats: Stats::default(),
                open_since: None,
                state: SocketState::Connecting,
                state_waiters: Vec::new(),
                state_changes: 0,
            }),
            stream_ids: Arc::new(StreamIds::for_new_connection()),
        }
    }

    fn push(&self, inbox: &mut Inbox, command: Command) {
        inbox.commands.push_back(command);
        if let Some(waker) = inbox.driver.take() {
            waker.wake();
        }
    }

    /// Queues an upgrade; its stream becomes the only one frames may go to.
    pub(crate) fn push_upgrade(
        &self,
        make: impl FnOnce(StreamRef) -> Command,
    ) -> Result<StreamRef, Error> {
        let mut inbox = lock(&self.inner);
        if inbox.terminated || inbox.closing {
            return Err(Error::new(
                ErrorKind::Closed,
                "the connection is closing or closed",
            ));
        }
        let stream = self.stream_ids.next();
        self.push(&mut inbox, make(stream));
        Ok(stream)
    }

    /// Queues frames if there is room; otherwise gives them back.
    /// `Ok(Err(frames))` means "full, wait and try again".
    pub(crate) fn try_push_frames(
        &self,
        stream: StreamRef,
        frames: Frames,
        cx: Option<&mut Context<'_>>,
    ) -> Result<Result<(), Frames>, Error> {
        self.try_push(To::Stream(stream), frames, cx)
    }

    /// Queues frames for whatever Websocket is current (a `Socket`'s), as
    /// [`Shared::try_push_frames`] does. Without `hold` they are refused
    /// at once ([`ErrorKind::Disconnected`]) while no Websocket is open.
    pub(crate) fn try_push_current(
        &self,
        frames: Frames,
        hold: bool,
        cx: Option<&mut Context<'_>>,
    ) -> Result<Result<(), Frames>, Error> {
        self.try_push(To::Current { hold }, frames, cx)
    }

    fn try_push(
        &self,
        to: To,
        frames: Frames,
        cx: Option<&mut Context<'_>>,
    ) -> Result<Result<(), Frames>, Error> {
        let mut inbox = lock(&self.inner);
        let refuse = |kind, message: String, frames: Frames| {
            Err(Error::new(kind, message).with_unsent(frames.into_vec()))
        };
        if inbox.terminated || inbox.closing {
            return refuse(
                ErrorKind::Closed,
                "the connection is closing or closed".into(),
                frames,
            );
        }
        // The fast checks; the core makes the final ones (late frames come
        // back in an `Event::Error`).
        match to {
            To::Stream(stream) if inbox.peer_closed == Some(stream) => {
                return refuse(
                    ErrorKind::Closed,
                    format!("the server closed {stream} (its close frame arrived): nothing more is sent on it"),
                    frames,
                );
            }
            To::Stream(stream) if inbox.killed_up_to.is_some_and(|killed| stream <= killed) => {
                return refuse(
                    ErrorKind::StaleStream,
                    format!("{stream} is not the connection's current Websocket (re-upgrade after a reconnect)"),
                    frames,
                );
            }
            To::Current { hold: false }
                if inbox.state != SocketState::Open
                    && !frames.iter().any(|f| matches!(f, crate::Frame::Close(_))) =>
            {
                return refuse(
                    ErrorKind::Disconnected,
                    crate::core::NOT_OPEN_NOT_HELD.into(),
                    frames,
                );
            }
            _ => {}
        }
        let bytes: usize = frames.iter().map(|f| f.len()).sum();
        if bytes > inbox.capacity {
            // It could never fit, and the transport's write buffer is sized
            // by this bound: refuse it rather than wait forever.
            return refuse(
                ErrorKind::InvalidFrame,
                format!(
                    "{bytes} payload bytes in one call exceed Options::send_queue_bytes ({}): \
                     raise it to send messages this large",
                    inbox.capacity
                ),
                frames,
            );
        }
        // Queued, a frame costs its payload plus a fixed overhead.
        let queued = inbox.charged();
        if queued > 0 && queued + bytes + frames.len() * ENTRY_OVERHEAD > inbox.capacity {
            if let Some(cx) = cx {
                inbox.waiting_senders.push(cx.waker().clone());
            }
            return Ok(Err(frames));
        }
        if frames.iter().any(|f| matches!(f, crate::Frame::Close(_))) {
            inbox.closing = true;
        }
        inbox.queued_bytes += bytes;
        inbox.queued_frames += frames.len();
        let command = match to {
            To::Stream(stream) => Command::Send { stream, frames },
            To::Current { .. } => Command::SendCurrent { frames },
        };
        self.push(&mut inbox, command);
        Ok(Ok(()))
    }

    /// Payload bytes accepted and not yet handed to the transport (held
    /// frames included).
    pub(crate) fn queued_bytes(&self) -> usize {
        lock(&self.inner).queued_bytes
    }

    /// Where the current Websocket is, and how many times that changed.
    pub(crate) fn state_and_changes(&self) -> (SocketState, u64) {
        let inbox = lock(&self.inner);
        let state = if inbox.terminated {
            SocketState::Closed
        } else if inbox.closing {
            // Closing from the call that asked, not from the driver's
            // next turn (a browser's readyState is CLOSING at once).
            SocketState::Closing
        } else {
            inbox.state
        };
        (state, inbox.state_changes)
    }

    /// Queues a close frame for the current Websocket whatever the room
    /// (it is small, and the last frame accepted); nothing when already
    /// closing or closed.
    pub(crate) fn push_close_current(&self, frames: Frames) {
        let mut inbox = lock(&self.inner);
        if inbox.terminated || inbox.closing {
            return;
        }
        inbox.closing = true;
        inbox.queued_bytes += frames.iter().map(|f| f.len()).sum::<usize>();
        inbox.queued_frames += frames.len();
        self.push(&mut inbox, Command::SendCurrent { frames });
    }

    /// Ready once the state has changed `seen` times in all
    /// ([`Shared::state_changes`]); registers `cx` otherwise.
    pub(crate) fn poll_state_change(&self, seen: u64, cx: &mut Context<'_>) -> Poll<()> {
        let mut inbox = lock(&self.inner);
        if inbox.state_changes != seen || inbox.terminated {
            return Poll::Ready(());
        }
        inbox.state_waiters.push(cx.waker().clone());
        Poll::Pending
    }

    /// How many times the state has changed so far.
    pub(crate) fn state_changes(&self) -> u64 {
        lock(&self.inner).state_changes
    }

    /// Queues a command that takes no room (shutdown, probe).
    pub(crate) fn push_control(&self, command: Command) {
        let mut inbox = lock(&self.inner);
        if inbox.terminated {
            return;
        }
        if matches!(command, Command::Shutdown) {
            inbox.closing = true;
        }
        self.push(&mut inbox, command);
    }

    /// The last handle went away: the driver ends at once (Gun's `close`).
    pub(crate) fn abandon(&self) {
        let mut inbox = lock(&self.inner);
        inbox.abandoned = true;
        if let Some(waker) = inbox.driver.take() {
            waker.wake();
        }
    }

    pub(crate) fn rtt(&self) -> Option<Duration> {
        lock(&self.inner).rtt
    }

    pub(crate) fn stats(&self) -> Stats {
        let inbox = lock(&self.inner);
        let mut stats = inbox.stats;
        if let Some(since) = inbox.open_since {
            stats.time_connected = stats
                .time_connected
                .saturating_add(Instant::now().saturating_duration_since(since));
        }
        stats
    }

    // ---- driver side ----------------------------------------------------

    /// Takes every queued command and registers the driver's waker.
    /// Returns whether every handle is gone.
    pub(crate) fn take_commands(&self, into: &mut VecDeque<Command>, cx: &mut Context<'_>) -> bool {
        let mut inbox = lock(&self.inner);
        std::mem::swap(into, &mut inbox.commands);
        match &inbox.driver {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => inbox.driver = Some(cx.waker().clone()),
        }
        inbox.abandoned
    }

    /// Reports progress: room freed in the queue, killed streams, the RTT.
    pub(crate) fn update(&self, progress: Progress) {
        let Progress {
            released_bytes,
            released_frames,
            killed_up_to,
            peer_closed,
            rtt,
            written,
            received,
            srtt,
            reconnects,
            time_connected,
            open_since,
            state,
        } = progress;
        let mut inbox = lock(&self.inner);
        if inbox.state != state {
            inbox.state = state;
            inbox.state_changes += 1;
            for waker in inbox.state_waiters.drain(..) {
                waker.wake();
            }
        }
        let stats = &mut inbox.stats;
        stats.frames_written += written.frames;
        stats.messages_written += written.messages;
        stats.bytes_written += written.bytes;
        stats.frames_received += received.frames;
        stats.messages_received += received.messages;
        stats.bytes_received += received.bytes;
        stats.last_rtt = rtt;
        stats.smoothed_rtt = srtt;
        stats.reconnects = reconnects;
        stats.time_connected = time_connected;
        inbox.open_since = open_since;
        inbox.killed_up_to = killed_up_to;
        inbox.peer_closed = peer_closed;
        inbox.rtt = rtt;
        if released_bytes > 0 || released_frames > 0 {
            inbox.queued_bytes = inbox.queued_bytes.saturating_sub(released_bytes);
            inbox.queued_frames = inbox.queued_frames.saturating_sub(released_frames);
            for waker in inbox.waiting_senders.drain(..) {
                waker.wake();
            }
        }
    }

    /// The driver is ending: every later call fails with `Closed`. Returns
    /// the commands it has not taken, so that their frames come back.
    pub(crate) fn terminate(&self) -> VecDeque<Command> {
        let mut inbox = lock(&self.inner);
        inbox.terminated = true;
        let inbox = &mut *inbox;
        for waker in inbox
            .waiting_senders
            .drain(..)
            .chain(inbox.state_waiters.drain(..))
        {
            waker.wake();
        }
        inbox.queued_bytes = 0;
        inbox.queued_frames = 0;
        std::mem::take(&mut inbox.commands)
    }
}

/// What the driver tells the handles after each step (the core's).
pub(crate) use crate::core::Progress;

/// Where a send goes.
#[derive(Clone, Copy)]
enum To {
    Stream(StreamRef),
    /// Whatever Websocket is current; `hold`: held while none is open.
    Current {
        hold: bool,
    },
}

/// How much the driver may still read for the application.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Room {
    /// Events.
    pub(crate) events: usize,
    /// Payload bytes (a message may go past it: one is always taken whole).
    pub(crate) bytes: usize,
}

impl Room {
    pub(crate) fn is_empty(&self) -> bool {
        self.events == 0 || self.bytes == 0
    }
}

/// What one queue entry costs besides its payload: the entry itself and
/// its allocation's bookkeeping (measured: 136 to 190 bytes of resident
/// memory per queued 1-byte frame before the payload). A 1-byte frame is
/// not 1 byte (issue 21, item 4).
pub(crate) const ENTRY_OVERHEAD: usize = 128;

/// The memory a queued frame of `payload` bytes is charged: its payload
/// plus [`ENTRY_OVERHEAD`], in the send queue
/// ([`Options::send_queue_bytes`](crate::Options::send_queue_bytes)) and the
/// event queue alike.
pub(crate) fn charge(payload: usize) -> usize {
    payload.saturating_add(ENTRY_OVERHEAD)
}

/// The memory an event is charged, for the byte bound.
pub(crate) fn event_bytes(event: &Event) -> usize {
    match event {
        Event::Frame { frame, .. } => charge(frame.len()),
        _ => ENTRY_OVERHEAD,
    }
}

/// Capacity (in events) the event queues keep when they are trimmed; more,
/// left by a burst, is freed at [`EventQueue::trim`]. Not at every drain:
/// a pipelined flow drains its queues between batches, and freeing then
/// would make every batch grow them again (measured: +214 instructions per
/// 32-byte message).
pub(crate) const KEPT_EVENTS: usize = 64;

/// The events queue, read by [`Events`](crate::Events).
pub(crate) struct EventQueue {
    inner: Mutex<Outbox>,
    /// Payload bytes of events pushed and not yet handed to the application
    /// (in the queue, or in the batch `Events` took from it).
    unread_bytes: AtomicUsize,
    byte_capacity: usize,
}

struct Outbox {
    events: VecDeque<Event>,
    capacity: usize,
    consumer: Option<Waker>,
    /// The driver, waiting for room.
    driver: Option<Waker>,
    closed: bool,
    consumer_gone: bool,
    /// [`EventQueue::trim`] asks the reader to free its batch's capacity.
    trim: bool,
}

impl EventQueue {
    pub(crate) fn new(capacity: usize, byte_capacity: usize) -> EventQueue {
        EventQueue {
            inner: Mutex::new(Outbox {
                events: VecDeque::new(),
                capacity,
                consumer: None,
                driver: None,
                closed: false,
                consumer_gone: false,
                trim: false,
            }),
            unread_bytes: AtomicUsize::new(0),
            byte_capacity,
        }
    }

    /// How much more the driver may produce by reading the socket. When
    /// there is no room, the driver is woken once the consumer makes some.
    pub(crate) fn room(&self, cx: &mut Context<'_>) -> Room {
        let mut outbox = lock(&self.inner);
        if outbox.consumer_gone {
            return Room {
                events: usize::MAX,
                bytes: usize::MAX,
            };
        }
        let room = Room {
            events: outbox.capacity.saturating_sub(outbox.events.len()),
            bytes: self
                .byte_capacity
                .saturating_sub(self.unread_bytes.load(Ordering::Acquire)),
        };
        if room.is_empty() {
            outbox.driver = Some(cx.waker().clone());
        }
        room
    }

    /// Adds events (a core may produce a few past the capacity: they are
    /// kept, never dropped, while anyone is listening).
    pub(crate) fn push_all(&self, events: impl Iterator<Item = Event>) {
        let mut outbox = lock(&self.inner);
        let before = outbox.events.len();
        if outbox.consumer_gone {
            events.for_each(drop);
            return;
        }
        let mut bytes = 0;
        outbox
            .events
            .extend(events.inspect(|event| bytes += event_bytes(event)));
        self.unread_bytes.fetch_add(bytes, Ordering::AcqRel);
        if outbox.events.len() > before {
            if let Some(waker) = outbox.consumer.take() {
                waker.wake();
            }
        }
    }

    /// Moves every event of `events` to the queue, leaving it empty: one
    /// lock and no per-event move when the queue is empty (the two deques
    /// are swapped, so their buffers are reused, not reallocated).
    pub(crate) fn append(&self, events: &mut VecDeque<Event>) {
        if events.is_empty() {
            return;
        }
        let bytes: usize = events.iter().map(event_bytes).sum();
        let mut outbox = lock(&self.inner);
        if outbox.consumer_gone {
            events.clear();
            return;
        }
        if outbox.events.is_empty() {
            std::mem::swap(&mut outbox.events, events);
        } else {
            outbox.events.append(events);
        }
        if bytes > 0 {
            self.unread_bytes.fetch_add(bytes, Ordering::AcqRel);
        }
        if let Some(waker) = outbox.consumer.take() {
            waker.wake();
        }
    }

    /// The connection has been quiet for a keepalive interval: capacity a
    /// burst left in the queue is freed, and the reader is woken to free
    /// its batch's (once; it finds nothing and waits again).
    pub(crate) fn trim(&self) {
        let mut outbox = lock(&self.inner);
        if outbox.events.is_empty() && outbox.events.capacity() > KEPT_EVENTS {
            outbox.events = VecDeque::new();
        }
        outbox.trim = true;
        if let Some(waker) = outbox.consumer.take() {
            waker.wake();
        }
    }

    /// No more events will come.
    pub(crate) fn close(&self) {
        let mut outbox = lock(&self.inner);
        outbox.closed = true;
        if let Some(waker) = outbox.consumer.take() {
            waker.wake();
        }
    }

    /// Moves every waiting event into `into` (one lock for a whole batch).
    /// Their bytes count as unread until [`EventQueue::handed_out`].
    pub(crate) fn poll_take(&self, into: &mut VecDeque<Event>, cx: &mut Context<'_>) -> Poll<bool> {
        let mut outbox = lock(&self.inner);
        // The reader has emptied its batch: there is room, whatever the queue holds.
        if let Some(waker) = outbox.driver.take() {
            waker.wake();
        }
        if !outbox.events.is_empty() {
            std::mem::swap(into, &mut outbox.events);
            return Poll::Ready(true);
        }
        if outbox.closed {
            return Poll::Ready(false);
        }
        // The reader has caught up, and the connection has been quiet (see
        // `trim`): capacity left by a burst is freed, so that an idle
        // connection stays small.
        if std::mem::take(&mut outbox.trim) {
            if into.capacity() > KEPT_EVENTS {
                *into = VecDeque::new();
            }
            if outbox.events.capacity() > KEPT_EVENTS {
                outbox.events = VecDeque::new();
            }
        }
        outbox.consumer = Some(cx.waker().clone());
        Poll::Pending
    }

    /// The application took this event.
    pub(crate) fn handed_out(&self, event: &Event) {
        let bytes = event_bytes(event);
        if bytes > 0 {
            self.unread_bytes.fetch_sub(bytes, Ordering::AcqRel);
        }
    }

    /// The consumer went away: events are dropped from now on, and the
    /// socket is read regardless.
    pub(crate) fn consumer_gone(&self) {
        let mut outbox = lock(&self.inner);
        outbox.consumer_gone = true;
        outbox.events.clear();
        self.unread_bytes.store(0, Ordering::Release);
        if let Some(waker) = outbox.driver.take() {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::task::noop_waker;

    fn burst(n: usize) -> VecDeque<Event> {
        (0..n).map(|i| Event::Up { attempt: i as u32 }).collect()
    }

    /// A pipelined flow drains the queues between batches: they keep their
    /// capacity then (freeing it would make every batch grow them again),
    /// and give it back only when trimmed (a quiet keepalive interval),
    /// the reader's batch included.
    #[test]
    fn a_bursts_capacity_is_kept_between_batches_and_freed_when_trimmed() {
        let queue = EventQueue::new(1 << 20, 1 << 30);
        let waker = noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut batch = VecDeque::new();
        for _ in 0..2 {
            let mut core = burst(1_000);
            queue.append(&mut core);
            assert!(matches!(
                queue.poll_take(&mut batch, &mut cx),
                Poll::Ready(true)
            ));
            assert_eq!(batch.len(), 1_000);
            batch.clear();
            assert!(queue.poll_take(&mut batch, &mut cx).is_pending());
            assert!(
                batch.capacity() >= 1_000,
                "drained between batches: the capacity stays"
            );
        }
        queue.trim();
        assert!(queue.poll_take(&mut batch, &mut cx).is_pending());
        assert_eq!(batch.capacity(), 0, "the reader's batch is freed");
        assert_eq!(lock(&queue.inner).events.capacity(), 0, "the queue too");
        // Once: the next wait keeps what a new burst grows.
        let mut core = burst(1_000);
        queue.append(&mut core);
        assert!(matches!(
            queue.poll_take(&mut batch, &mut cx),
            Poll::Ready(true)
        ));
        batch.clear();
        assert!(queue.poll_take(&mut batch, &mut cx).is_pending());
        assert!(batch.capacity() >= 1_000);
    }
}
