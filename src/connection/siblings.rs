//! Many Websockets on one `Connection` over HTTP/2 (Gun's many streams on
//! one connection process, RFC 8441). The first Websocket is the
//! connection's own; each further `ws_upgrade` while it is in use opens a
//! *sibling*: a connection of its own (its own core, queues, ledger,
//! keepalive deadline and reconnects, so everything that holds per
//! Websocket holds per stream) whose dials take a stream of the same
//! HTTP/2 connection, through a pool group private to this `Connection`
//! (or the shared one with `Options::share_http2`). A sibling never falls
//! back to HTTP/1.1 (`Http2::Require`): over HTTP/1.1 a connection carries
//! one Websocket, as in Gun.
//!
//! The application sees one `Connection` and one `Events`: sends and flow
//! grants go to the sibling that issued the `StreamRef` (its connection
//! number is in the reference's high bits), `shutdown` and `probe` reach
//! every sibling, and the siblings' events are merged into `Events`,
//! with only the events that name their stream (the connection's own
//! tell the rest); each stream's `Down` comes with its own unsent frames.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::Connection;
use crate::event::{Event, StreamRef};
use crate::mailbox::{EventQueue, Shared};

/// The siblings of one `Connection`, shared by its handles and `Events`.
#[derive(Default)]
pub(crate) struct Siblings {
    /// Whether any was ever added: `Events` looks no further before.
    any: AtomicBool,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Live siblings: their handle (dropped with the last `Connection`
    /// clone, which abandons them too) and their event queue.
    all: Vec<Sibling>,
}

struct Sibling {
    connection: Connection,
    events: Arc<EventQueue>,
}

impl Siblings {
    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a sibling and wakes the reader (waiting on `own`, the
    /// connection's queue), which polls the sibling's queue next.
    pub(super) fn add(&self, connection: Connection, events: Arc<EventQueue>, own: &EventQueue) {
        self.inner().all.push(Sibling { connection, events });
        self.any.store(true, Ordering::Release);
        own.wake_consumer();
    }

    /// The mailbox of the sibling that issued `stream`, if any.
    pub(super) fn owner_of(&self, stream: StreamRef) -> Option<Arc<Shared>> {
        self.inner()
            .all
            .iter()
            .find(|s| s.connection.handle.shared.stream_ids.connection() == stream.0 >> 32)
            .map(|s| s.connection.handle.shared.clone())
    }

    /// Every sibling's mailbox (for `shutdown` and `probe`).
    pub(super) fn mailboxes(&self) -> Vec<Arc<Shared>> {
        self.inner()
            .all
            .iter()
            .map(|s| s.connection.handle.shared.clone())
            .collect()
    }

    /// The siblings' event queues, for the reader (nothing to lock until
    /// the first sibling: a lone Websocket's reads pay one load).
    pub(super) fn queues(&self) -> Vec<Arc<EventQueue>> {
        if !self.any.load(Ordering::Acquire) {
            return Vec::new();
        }
        self.inner().all.iter().map(|s| s.events.clone()).collect()
    }

    /// Forgets a sibling whose events have all been read (it terminated).
    pub(super) fn ended(&self, queue: &Arc<EventQueue>) {
        self.inner().all.retain(|s| !Arc::ptr_eq(&s.events, queue));
    }

    /// Whether any sibling is left.
    pub(super) fn is_empty(&self) -> bool {
        !self.any.load(Ordering::Acquire) || self.inner().all.is_empty()
    }

    /// The reader is gone: the siblings' events are discarded too.
    pub(super) fn reader_gone(&self) {
        for sibling in &self.inner().all {
            sibling.events.consumer_gone();
        }
    }
}

/// Whether a sibling's event reaches the application: those of its
/// stream, not those of its connection (its `Up`, `Reconnecting`, an
/// `Error` of no stream, a `Down` that ends no stream), which the
/// connection's own events tell; its stream's failure to open is its
/// `UpgradeFailed`.
pub(super) fn shown(event: &Event) -> bool {
    match event {
        Event::Up { .. } | Event::Reconnecting { .. } | Event::Error { stream: None, .. } => false,
        Event::Down { killed_streams, .. } => !killed_streams.is_empty(),
        _ => true,
    }
}
