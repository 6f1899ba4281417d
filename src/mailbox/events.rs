//! The event queue: events out to the application, bounded by count and
//! by charged bytes; when either is reached the driver stops reading the
//! socket.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

use super::{charge, lock, Room, ENTRY_OVERHEAD};
use crate::event::Event;

/// The memory an event is charged, for the byte bound.
fn event_bytes(event: &Event) -> usize {
    match event {
        Event::Frame { frame, .. } => charge(frame.len()),
        _ => ENTRY_OVERHEAD,
    }
}

/// The events queue, read by [`Events`](crate::Events).
pub(crate) struct EventQueue {
    inner: Mutex<Outbox>,
    /// Payload bytes of events pushed and not yet handed to the application
    /// (in the queue, or in the batch `Events` took from it).
    unread_bytes: AtomicUsize,
    byte_capacity: usize,
}

pub(super) struct Outbox {
    pub(super) events: VecDeque<Event>,
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

    /// A quiet moment (the upgrade is done, or the connection has been
    /// quiet for a keepalive interval): the queue's capacity is freed if it
    /// is empty, and the reader is woken to free its batch's and the
    /// queue's once it has caught up (once; it finds nothing and waits
    /// again). Not at every drain: a pipelined flow drains its queues
    /// between batches, and freeing then would make every batch grow them
    /// again (measured: +214 instructions per 32-byte message).
    pub(crate) fn trim(&self) {
        let mut outbox = lock(&self.inner);
        if outbox.events.is_empty() {
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
            *into = VecDeque::new();
            outbox.events = VecDeque::new();
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

    /// The application took these events (one update for the batch).
    pub(crate) fn handed_out_all(&self, events: &[Event]) {
        let bytes: usize = events.iter().map(event_bytes).sum();
        if bytes > 0 {
            self.unread_bytes.fetch_sub(bytes, Ordering::AcqRel);
        }
    }

    /// Wakes the reader (a new source of events joined it: a sibling's
    /// queue, connection/siblings.rs).
    pub(crate) fn wake_consumer(&self) {
        if let Some(waker) = lock(&self.inner).consumer.take() {
            waker.wake();
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
impl EventQueue {
    /// The queue itself, for the tests of its capacity.
    pub(super) fn outbox(&self) -> &Mutex<Outbox> {
        &self.inner
    }
}
