//! The two queues between the handles and the driver task: commands in
//! (bounded by queued payload bytes, for back-pressure) and events out
//! (bounded by count and by payload bytes: when either is reached, the
//! driver stops reading the socket).
//!
//! A plain mutex around a `VecDeque` lets the driver take a whole batch of
//! commands at once, which is what makes write batching possible.
//!
//! One file per part: the send queue (`send_queue.rs`), the event queue
//! (`events.rs`), the connection's end (`termination.rs`) and what the
//! handles read (`status.rs`); [`Shared`] holds all but the event queue
//! under one lock.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use crate::core::{Command, StreamIds};
use crate::error::{Error, ErrorKind};
use crate::event::{SocketState, StreamRef};
use crate::frame::Frames;
use crate::stats::Stats;
use crate::time::Instant;
use std::sync::Arc;

mod events;
mod send_queue;
mod status;
mod termination;
#[cfg(test)]
mod tests;

pub(crate) use events::EventQueue;
use send_queue::SendQueue;
use status::Status;
use termination::Termination;

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

/// The send queue, the connection's end and what the handles read, under
/// one lock: a send is refused or queued atomically with the closing and
/// terminated flags it checks.
struct Inbox {
    send: SendQueue,
    end: Termination,
    status: Status,
}

impl Shared {
    /// `compressed`: frames will go through tungstenite and the
    /// compression layer (see [`SendQueue::adopt`]).
    pub(crate) fn new(capacity: usize, compressed: bool) -> Shared {
        Shared {
            inner: Mutex::new(Inbox {
                send: SendQueue::new(capacity, compressed),
                end: Termination::default(),
                status: Status::default(),
            }),
            stream_ids: Arc::new(StreamIds::for_new_connection()),
        }
    }

    /// Queues an upgrade; its stream becomes the only one frames may go to.
    pub(crate) fn push_upgrade(
        &self,
        make: impl FnOnce(StreamRef) -> Command,
    ) -> Result<StreamRef, Error> {
        let mut inbox = lock(&self.inner);
        if inbox.end.terminated || inbox.end.closing {
            return Err(Error::new(
                ErrorKind::Closed,
                "the connection is closing or closed",
            ));
        }
        let stream = self.stream_ids.next();
        inbox.send.push(make(stream));
        Ok(stream)
    }

    /// Queues frames if there is room; otherwise gives them back.
    /// `Ok(Err(frames))` means "full, wait and try again".
    pub(crate) fn try_push_frames(
        &self,
        stream: StreamRef,
        frames: Frames,
        wait: Option<Waiter<'_, '_>>,
    ) -> Result<Result<(), Frames>, Error> {
        self.try_push(To::Stream(stream), frames, wait)
    }

    /// Queues frames for whatever Websocket is current (a `Socket`'s), as
    /// [`Shared::try_push_frames`] does. Without `hold` they are refused
    /// at once ([`ErrorKind::Disconnected`]) while no Websocket is open.
    pub(crate) fn try_push_current(
        &self,
        frames: Frames,
        hold: bool,
        wait: Option<Waiter<'_, '_>>,
    ) -> Result<Result<(), Frames>, Error> {
        self.try_push(To::Current { hold }, frames, wait)
    }

    fn try_push(
        &self,
        to: To,
        frames: Frames,
        wait: Option<Waiter<'_, '_>>,
    ) -> Result<Result<(), Frames>, Error> {
        let mut inbox = lock(&self.inner);
        let refuse = |kind, message: String, frames: Frames| {
            Err(Error::new(kind, message).with_unsent(frames.into_vec()))
        };
        if inbox.end.terminated || inbox.end.closing {
            return refuse(
                ErrorKind::Closed,
                "the connection is closing or closed".into(),
                frames,
            );
        }
        // The fast checks; the core makes the final ones (late frames come
        // back in an `Event::Error`).
        match to {
            To::Stream(stream) if inbox.end.peer_closed == Some(stream) => {
                return refuse(
                    ErrorKind::Closed,
                    format!("the server closed {stream} (its close frame arrived): nothing more is sent on it"),
                    frames,
                );
            }
            To::Stream(stream)
                if inbox
                    .end
                    .killed_up_to
                    .is_some_and(|killed| stream <= killed) =>
            {
                return refuse(
                    ErrorKind::StaleStream,
                    format!("{stream} is not the connection's current Websocket (re-upgrade after a reconnect)"),
                    frames,
                );
            }
            To::Current { hold: false }
                if inbox.status.state != SocketState::Open
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
        let (bytes, paced) = frames.iter().fold((0, 0), |(all, paced), frame| {
            let len = frame.len();
            (
                all + len,
                paced + if len < SENDER_YIELD_BYTES { len } else { 0 },
            )
        });
        if bytes > inbox.send.capacity {
            // It could never fit, and the transport's write buffer is sized
            // by this bound: refuse it rather than wait forever.
            return refuse(
                ErrorKind::InvalidFrame,
                format!(
                    "{bytes} payload bytes in one call exceed Options::send_queue_bytes ({}): \
                     raise it to send messages this large",
                    inbox.send.capacity
                ),
                frames,
            );
        }
        // Queued, a frame costs its payload plus a fixed overhead.
        let queued = inbox.send.charged();
        let charged = bytes + frames.len() * ENTRY_OVERHEAD;
        if queued > 0 && queued + charged > inbox.send.capacity {
            if let Some(wait) = wait {
                inbox.send.waiting_senders.push(wait.cx.waker().clone());
            }
            return Ok(Err(frames));
        }
        if let (true, Some(wait)) = (cfg!(native), wait) {
            if !*wait.yielded && inbox.send.untaken >= SENDER_YIELD_BYTES {
                // Room, but the driver has not taken the last batch yet:
                // let it run first (see the constant). Once per call, so
                // that no sender is kept out by others filling the batch.
                *wait.yielded = true;
                inbox.send.yielded_senders.push(wait.cx.waker().clone());
                return Ok(Err(frames));
            }
            *wait.yielded = false;
        }
        inbox.send.untaken += paced;
        if frames.iter().any(|f| matches!(f, crate::Frame::Close(_))) {
            inbox.end.closing = true;
        }
        inbox.send.queued_bytes += bytes;
        inbox.send.queued_frames += frames.len();
        #[cfg(native)]
        let frames = {
            let mut frames = frames;
            inbox.send.adopt(&mut frames);
            frames
        };
        let command = match to {
            To::Stream(stream) => Command::Send { stream, frames },
            To::Current { .. } => Command::SendCurrent { frames },
        };
        inbox.send.push(command);
        Ok(Ok(()))
    }

    /// Payload bytes accepted and not yet handed to the transport (held
    /// frames included).
    pub(crate) fn queued_bytes(&self) -> usize {
        lock(&self.inner).send.queued_bytes
    }

    /// Where the current Websocket is, and how many times that changed.
    pub(crate) fn state_and_changes(&self) -> (SocketState, u64) {
        let inbox = lock(&self.inner);
        let state = if inbox.end.terminated {
            SocketState::Closed
        } else if inbox.end.closing {
            // Closing from the call that asked, not from the driver's
            // next turn (a browser's readyState is CLOSING at once).
            SocketState::Closing
        } else {
            inbox.status.state
        };
        (state, inbox.status.state_changes)
    }

    /// Whether the connection may still carry `stream`, or its
    /// re-upgrade (`again`: `auto_upgrade` is on): not closing, not
    /// terminated, and the stream not closed by the peer (nor, unless
    /// `again`, killed by a `Down`).
    pub(crate) fn carries(&self, stream: StreamRef, again: bool) -> bool {
        let inbox = lock(&self.inner);
        let end = &inbox.end;
        !end.terminated
            && !end.closing
            && end.peer_closed != Some(stream)
            && (again || end.killed_up_to.is_none_or(|killed| stream > killed))
    }

    /// Queues a close frame for the current Websocket whatever the room
    /// (it is small, and the last frame accepted); nothing when already
    /// closing or closed.
    pub(crate) fn push_close_current(&self, frames: Frames) {
        let mut inbox = lock(&self.inner);
        if inbox.end.terminated || inbox.end.closing {
            return;
        }
        inbox.end.closing = true;
        inbox.send.queued_bytes += frames.iter().map(|f| f.len()).sum::<usize>();
        inbox.send.queued_frames += frames.len();
        inbox.send.push(Command::SendCurrent { frames });
    }

    /// Ready once the state has changed `seen` times in all
    /// ([`Shared::state_changes`]); registers `cx` otherwise.
    pub(crate) fn poll_state_change(&self, seen: u64, cx: &mut Context<'_>) -> Poll<()> {
        let mut inbox = lock(&self.inner);
        if inbox.status.state_changes != seen || inbox.end.terminated {
            return Poll::Ready(());
        }
        inbox.status.state_waiters.push(cx.waker().clone());
        Poll::Pending
    }

    /// How many times the state has changed so far.
    pub(crate) fn state_changes(&self) -> u64 {
        lock(&self.inner).status.state_changes
    }

    /// Queues a command that takes no room (shutdown, probe).
    pub(crate) fn push_control(&self, command: Command) {
        let mut inbox = lock(&self.inner);
        if inbox.end.terminated {
            return;
        }
        if matches!(command, Command::Shutdown) {
            inbox.end.closing = true;
        }
        inbox.send.push(command);
    }

    /// Queues a grant of flow credit (Gun's `update_flow`). It takes no
    /// room: a grant right behind another for the same stream is added to
    /// it, so a caller granting in a loop grows no queue.
    pub(crate) fn push_flow(&self, stream: Option<StreamRef>, messages: u32) -> Result<(), Error> {
        let mut inbox = lock(&self.inner);
        if inbox.end.terminated {
            return Err(Error::new(
                ErrorKind::Closed,
                "the connection has terminated",
            ));
        }
        if let Some(stream) = stream {
            let foreign = stream.0 >> 32 != self.stream_ids.connection();
            let killed = inbox
                .end
                .killed_up_to
                .is_some_and(|killed| stream <= killed);
            if foreign || killed {
                return Err(Error::new(
                    ErrorKind::StaleStream,
                    format!("{stream} is not the connection's current Websocket"),
                ));
            }
        }
        let messages = u64::from(messages);
        if let Some(Command::UpdateFlow {
            stream: last,
            messages: credit,
        }) = inbox.send.commands.back_mut()
        {
            if *last == stream {
                *credit = credit.saturating_add(messages);
                return Ok(());
            }
        }
        inbox.send.push(Command::UpdateFlow { stream, messages });
        Ok(())
    }

    /// The last handle went away: the driver ends at once (Gun's `close`).
    pub(crate) fn abandon(&self) {
        let mut inbox = lock(&self.inner);
        inbox.end.abandoned = true;
        if let Some(waker) = inbox.send.driver.take() {
            waker.wake();
        }
    }

    pub(crate) fn rtt(&self) -> Option<Duration> {
        lock(&self.inner).status.rtt
    }

    pub(crate) fn stats(&self) -> Stats {
        let inbox = lock(&self.inner);
        let mut stats = inbox.status.stats;
        if let Some(since) = inbox.status.open_since {
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
        #[cfg(native)]
        {
            let any = !inbox.send.commands.is_empty();
            inbox.send.taken(any);
        }
        std::mem::swap(into, &mut inbox.send.commands);
        inbox.send.untaken = 0;
        for waker in inbox.send.yielded_senders.drain(..) {
            waker.wake();
        }
        match &inbox.send.driver {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => inbox.send.driver = Some(cx.waker().clone()),
        }
        inbox.end.abandoned
    }

    /// A quiet moment (see [`EventQueue::trim`]): the command queue's
    /// capacity and the waiting senders' list are freed if empty.
    pub(crate) fn trim(&self) {
        let mut inbox = lock(&self.inner);
        if inbox.send.commands.is_empty() {
            inbox.send.commands = VecDeque::new();
        }
        if inbox.send.waiting_senders.is_empty() {
            inbox.send.waiting_senders = Vec::new();
        }
        if inbox.send.yielded_senders.is_empty() {
            inbox.send.yielded_senders = Vec::new();
        }
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
        if inbox.status.state != state {
            inbox.status.state = state;
            inbox.status.state_changes += 1;
            for waker in inbox.status.state_waiters.drain(..) {
                waker.wake();
            }
        }
        let stats = &mut inbox.status.stats;
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
        inbox.status.open_since = open_since;
        inbox.end.killed_up_to = killed_up_to;
        inbox.end.peer_closed = peer_closed;
        inbox.status.rtt = rtt;
        if released_bytes > 0 || released_frames > 0 {
            inbox.send.queued_bytes = inbox.send.queued_bytes.saturating_sub(released_bytes);
            inbox.send.queued_frames = inbox.send.queued_frames.saturating_sub(released_frames);
            for waker in inbox.send.waiting_senders.drain(..) {
                waker.wake();
            }
        }
    }

    /// The driver is ending: every later call fails with `Closed`. Returns
    /// the commands it has not taken, so that their frames come back.
    pub(crate) fn terminate(&self) -> VecDeque<Command> {
        let mut inbox = lock(&self.inner);
        inbox.end.terminated = true;
        let inbox = &mut *inbox;
        for waker in inbox
            .send
            .waiting_senders
            .drain(..)
            .chain(inbox.send.yielded_senders.drain(..))
            .chain(inbox.status.state_waiters.drain(..))
        {
            waker.wake();
        }
        inbox.send.queued_bytes = 0;
        inbox.send.queued_frames = 0;
        inbox.send.untaken = 0;
        std::mem::take(&mut inbox.send.commands)
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

/// How a send that finds no room waits (`None`: it does not, it is
/// refused).
pub(crate) struct Waiter<'a, 'b> {
    pub(crate) cx: &'a mut Context<'b>,
    /// The call has let the driver take a batch once already
    /// ([`SENDER_YIELD_BYTES`]): it does not again.
    pub(crate) yielded: &'a mut bool,
}

/// A sender that waits ([`Connection::send`](crate::Connection::send),
/// [`SocketSender::send`](crate::SocketSender::send)) lets the driver take
/// what it queued once this many payload bytes wait untaken. On an
/// executor with one thread (tokio's `current_thread`) a
/// sender that never waited queued up to the whole
/// [`Options::send_queue_bytes`](crate::Options::send_queue_bytes) before
/// the driver wrote any of it, and the writes and reads then came in
/// bursts that large: 1 KiB messages pipelined went 0.91 → 1.34 million
/// a second with this (BENCHMARKS.md, "This round"). Only the scheduling
/// changes: the queue's bound is the same, and the driver takes commands
/// even while the socket cannot be written. A frame this large or larger
/// is a write by itself and does not count (64 KiB messages were 20 %
/// slower when each made its sender wait). A call yields once at most: a
/// sender woken by the driver's take queues then, even if others filled
/// the next batch first. Natively only: in a browser,
/// whose `WebSocket.send` buffers by itself, it gained nothing and cost
/// 0.19 more JS ↔ wasm crossings per 1 KiB message (`.ci/bench-browser
/// --count`).
pub(crate) const SENDER_YIELD_BYTES: usize = 32 << 10;

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
