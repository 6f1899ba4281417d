//! The queues' memory over bursts.

use std::collections::VecDeque;
use std::task::{Context, Poll};

use super::events::EventQueue;
use super::lock;
use crate::event::Event;
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
    assert_eq!(lock(queue.outbox()).events.capacity(), 0, "the queue too");
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
