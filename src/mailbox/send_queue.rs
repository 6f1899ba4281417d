//! The send queue: commands in from the handles, bounded by the memory its
//! frames are charged, for back-pressure.

use std::collections::VecDeque;
use std::task::Waker;

use super::ENTRY_OVERHEAD;
use crate::core::Command;
#[cfg(native)]
use crate::frame::{Frame, Frames};
#[cfg(native)]
use crate::payload_arena::PayloadArena;

pub(super) struct SendQueue {
    pub(super) commands: VecDeque<Command>,
    /// Payload bytes queued (what `buffered_amount` reports).
    pub(super) queued_bytes: usize,
    /// Frames queued: each is charged [`ENTRY_OVERHEAD`] besides its
    /// payload against `capacity` ([`charge`](super::charge)).
    pub(super) queued_frames: usize,
    pub(super) capacity: usize,
    /// The driver, woken by each command.
    pub(super) driver: Option<Waker>,
    /// Senders waiting for room in the queue.
    pub(super) waiting_senders: Vec<Waker>,
    /// Payload bytes of the frames under
    /// [`SENDER_YIELD_BYTES`](super::SENDER_YIELD_BYTES) queued since the
    /// driver last took the commands.
    pub(super) untaken: usize,
    /// Senders letting the driver take those first
    /// ([`SENDER_YIELD_BYTES`](super::SENDER_YIELD_BYTES)).
    pub(super) yielded_senders: Vec<Waker>,
    /// Where small payloads are copied as they are queued ([`SendQueue::adopt`]);
    /// `None`: they are not.
    #[cfg(native)]
    arena: Option<PayloadArena>,
}

impl SendQueue {
    #[cfg_attr(browser, allow(unused_variables))]
    pub(super) fn new(capacity: usize, compressed: bool) -> SendQueue {
        SendQueue {
            commands: VecDeque::new(),
            queued_bytes: 0,
            queued_frames: 0,
            capacity,
            driver: None,
            waiting_senders: Vec::new(),
            untaken: 0,
            yielded_senders: Vec::new(),
            #[cfg(native)]
            arena: compressed.then(PayloadArena::default),
        }
    }

    /// What the queued frames are charged against the capacity.
    pub(super) fn charged(&self) -> usize {
        self.queued_bytes
            .saturating_add(self.queued_frames.saturating_mul(ENTRY_OVERHEAD))
    }

    /// Copies the small payloads of `frames` into the arena, with
    /// compression only. Then a queued frame is owned twice on its way
    /// out (the ledger keeps it until its flush is confirmed, tungstenite
    /// takes a copy to compress and write): a payload from a `String` or
    /// a `Vec` would get a shared header allocated (`bytes`' promotion) at
    /// that second owner; one in an arena chunk is shared already. Without
    /// compression the socket encodes the frame from the ledger's copy
    /// itself (`transport/native/outbox.rs`): no second owner, and the
    /// copy would only cost (pipe-32B-text 6 % faster without it,
    /// measured). Natively only: a browser copies every payload into its
    /// own `send` anyway. The first payload of a burst is left as it is
    /// ([`PayloadArena::copy_in_burst`]).
    #[cfg(native)]
    pub(super) fn adopt(&mut self, frames: &mut Frames) {
        let Some(arena) = &mut self.arena else {
            return;
        };
        for frame in frames.iter_mut() {
            match frame {
                Frame::Binary(data) if data.len() <= PayloadArena::MAX_SEND_COPY => {
                    if let Some(copy) = arena.copy_in_burst(data) {
                        *data = copy;
                    }
                }
                Frame::Text(text) if text.len() <= PayloadArena::MAX_SEND_COPY => {
                    if let Some(copy) = arena.copy_in_burst(text.as_bytes()) {
                        // SAFETY: a whole copy of valid UTF-8.
                        *text = unsafe { crate::utf8_bytes::Utf8Bytes::from_bytes_unchecked(copy) };
                    }
                }
                _ => {}
            }
        }
    }

    /// The driver took the queued commands (`any`: there were some). A
    /// turn with none ends the burst: the chunk goes (what was copied lives
    /// as long as its frames), so an idle connection holds none. The chunk
    /// is not left half-used at every turn: frames trickling in one per
    /// turn share it rather than each keeping a chunk alive.
    #[cfg(native)]
    pub(super) fn taken(&mut self, any: bool) {
        if let (false, Some(arena)) = (any, &mut self.arena) {
            arena.end_burst();
        }
    }

    /// Queues a command and wakes the driver.
    pub(super) fn push(&mut self, command: Command) {
        self.commands.push_back(command);
        if let Some(waker) = self.driver.take() {
            waker.wake();
        }
    }
}
