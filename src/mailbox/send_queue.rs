//! The send queue: commands in from the handles, bounded by the memory its
//! frames are charged, for back-pressure.

use std::collections::VecDeque;
use std::task::Waker;

use super::ENTRY_OVERHEAD;
use crate::core::Command;

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
}

impl SendQueue {
    pub(super) fn new(capacity: usize) -> SendQueue {
        SendQueue {
            commands: VecDeque::new(),
            queued_bytes: 0,
            queued_frames: 0,
            capacity,
            driver: None,
            waiting_senders: Vec::new(),
        }
    }

    /// What the queued frames are charged against the capacity.
    pub(super) fn charged(&self) -> usize {
        self.queued_bytes
            .saturating_add(self.queued_frames.saturating_mul(ENTRY_OVERHEAD))
    }

    /// Queues a command and wakes the driver.
    pub(super) fn push(&mut self, command: Command) {
        self.commands.push_back(command);
        if let Some(waker) = self.driver.take() {
            waker.wake();
        }
    }
}
