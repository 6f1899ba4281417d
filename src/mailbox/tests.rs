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

/// Counts its wakes.
#[derive(Default)]
struct Wakes(std::sync::atomic::AtomicUsize);

impl std::task::Wake for Wakes {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A waiting sender lets the driver take each [`SENDER_YIELD_BYTES`] it
/// queued (woken when the driver does), once per call: woken, it queues
/// even if another sender filled the next batch first. One that does not
/// wait, or a frame that large, is not held back; the queue's bound is
/// unchanged.
#[test]
fn a_waiting_sender_yields_to_the_driver_once_per_batch_and_only_then() {
    use super::{Shared, Waiter, SENDER_YIELD_BYTES};
    use crate::frame::{Frame, Frames};
    let shared = Shared::new(1 << 20, false);
    let wakes = std::sync::Arc::new(Wakes::default());
    let waker = std::task::Waker::from(wakes.clone());
    let mut cx = Context::from_waker(&waker);
    let woken = || wakes.0.load(std::sync::atomic::Ordering::SeqCst);
    let kib = || Frames::from(Frame::binary(vec![0u8; 1024]));
    // One call each, as `send` makes (its own `yielded`).
    let mut send = |frames: Frames, yielded: &mut bool| {
        let wait = Waiter {
            cx: &mut cx,
            yielded,
        };
        shared.try_push_current(frames, true, Some(wait))
    };
    let per_batch = SENDER_YIELD_BYTES / 1024;
    for _ in 0..per_batch {
        assert!(matches!(send(kib(), &mut false), Ok(Ok(()))));
    }
    let mut first = false;
    let held = send(kib(), &mut first);
    assert!(
        matches!(held, Ok(Err(_))) && first,
        "a batch waits untaken: the sender yields"
    );
    // Not waiting (`try_send`, `ws_send`): queued up to the bound as before.
    assert!(matches!(
        shared.try_push_current(kib(), true, None),
        Ok(Ok(()))
    ));
    assert_eq!(woken(), 0);
    let mut taken = VecDeque::new();
    let driver = noop_waker();
    shared.take_commands(&mut taken, &mut Context::from_waker(&driver));
    assert_eq!(taken.len(), per_batch + 1);
    assert_eq!(woken(), 1, "the driver's take wakes the sender");
    // Another sender fills the next batch before the woken one runs...
    for _ in 0..per_batch {
        assert!(matches!(send(kib(), &mut false), Ok(Ok(()))));
    }
    assert!(matches!(send(kib(), &mut false), Ok(Err(_))));
    // ...and the woken one still queues: it yielded once already.
    assert!(matches!(send(kib(), &mut first), Ok(Ok(()))));
    assert!(!first, "queued: its next call may yield again");
    shared.take_commands(&mut taken, &mut Context::from_waker(&driver));
    // Large frames are writes by themselves: they never make it yield.
    let large = || Frames::from(Frame::binary(vec![0u8; SENDER_YIELD_BYTES]));
    for _ in 0..8 {
        assert!(matches!(send(large(), &mut false), Ok(Ok(()))));
    }
    // The queue's bound still holds a waiting sender back.
    let mut full = 0;
    while let Ok(Ok(())) = shared.try_push_current(large(), true, None) {
        full += 1;
    }
    assert!(full < (1 << 20) / SENDER_YIELD_BYTES);
    assert!(matches!(send(large(), &mut true), Ok(Err(_))));
    assert!(shared.queued_bytes() <= 1 << 20);
}
