//! The driver's task in a browser: it can be polled in place, inside the
//! socket's callback that woke it (see [`wake_from_event`]), instead of
//! through a microtask. A message then costs one JS → wasm call to read it
//! and run the driver, not a callback plus a `queueMicrotask` plus the
//! microtask's call.
//!
//! Every other wake (a handle's command, a timer) goes through
//! wasm-bindgen-futures' queue, as before: the task is spawned there
//! wrapped in [`Outer`], whose waker the task's own waker forwards to.
//!
//! After a poll in place the task is also put in that queue at once, behind
//! the application's task the poll just woke with an event: when the
//! application answers (a `ws_send` wakes the driver), the driver runs in
//! the same microtask instead of a new one. If nothing woke the task by
//! then, that turn in the queue polls nothing (see `Task::woken`).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

type LocalFuture = Pin<Box<dyn Future<Output = ()>>>;

/// One spawned future; its wakers are `Rc`s of it.
struct Task {
    /// `None` once the future has finished.
    future: RefCell<Option<LocalFuture>>,
    /// The waker of [`Outer`] in wasm-bindgen-futures' queue.
    outer: RefCell<Option<Waker>>,
    /// Woken since the last poll: [`Outer`] polls the future only then (a
    /// turn queued ahead, after a poll in place, may find nothing to do).
    woken: Cell<bool>,
}

thread_local! {
    /// A socket callback is waking a task: the wake polls it in place.
    static IN_EVENT: Cell<bool> = const { Cell::new(false) };
    /// A task is being polled: no other is polled inside it (a wake then
    /// queues), so a future is never polled re-entrantly.
    static POLLING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `future` to completion on the page's event loop.
pub(crate) fn spawn(future: impl Future<Output = ()> + 'static) {
    let task = Rc::new(Task {
        future: RefCell::new(Some(Box::pin(future))),
        outer: RefCell::new(None),
        woken: Cell::new(true),
    });
    wasm_bindgen_futures::spawn_local(Outer(task));
}

/// Wakes `waker` from a socket's callback (no borrow of the socket's state
/// held): a task of this module is polled right here, within the callback,
/// unless a task is already being polled; any other waker wakes as usual.
pub(crate) fn wake_from_event(waker: Waker) {
    let outer = IN_EVENT.with(|e| e.replace(true));
    waker.wake();
    IN_EVENT.with(|e| e.set(outer));
}

/// The task as wasm-bindgen-futures runs it.
struct Outer(Rc<Task>);

impl Future for Outer {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let task = &self.0;
        {
            let mut outer = task.outer.borrow_mut();
            if !outer.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *outer = Some(cx.waker().clone());
            }
        }
        if task.woken.get() {
            task.poll();
        }
        if task.future.borrow().is_none() {
            // Finished (here or in place): the cycle through `outer` goes.
            task.outer.borrow_mut().take();
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Task {
    fn wake(self: Rc<Self>) {
        let in_place = IN_EVENT.with(Cell::get) && !POLLING.with(Cell::get);
        if in_place {
            self.poll();
            // Queued now, behind the task the poll woke (if any): should
            // that task wake this one, no new microtask is needed. Also how
            // a future finished in place gets its `Outer` dropped.
            self.wake_outer();
        } else {
            self.woken.set(true);
            self.wake_outer();
        }
    }

    fn wake_outer(&self) {
        // wasm-bindgen-futures' wake only queues: no borrow is re-entered.
        if let Some(waker) = self.outer.borrow().as_ref() {
            waker.wake_by_ref();
        }
    }

    /// Polls the future once (not re-entrantly: see `POLLING`).
    fn poll(self: &Rc<Self>) {
        /// Clears `POLLING` however the poll ends.
        struct Polling;
        impl Drop for Polling {
            fn drop(&mut self) {
                POLLING.with(|p| p.set(false));
            }
        }
        let Ok(mut slot) = self.future.try_borrow_mut() else {
            return;
        };
        let Some(future) = slot.as_mut() else {
            return;
        };
        POLLING.with(|p| p.set(true));
        let _polling = Polling;
        self.woken.set(false);
        let waker = waker(self.clone());
        if future
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_ready()
        {
            *slot = None;
        }
    }
}

fn waker(task: Rc<Task>) -> Waker {
    // SAFETY: the vtable's functions treat the data pointer as what
    // `Rc::into_raw` made of an `Rc<Task>`, which it is, and keep its count
    // right (clone adds one, wake and drop consume one, wake_by_ref none).
    // `Waker` is `Send + Sync` while `Rc` is not: sound here because a
    // wasm32-unknown-unknown build without atomics has one thread, so a
    // waker never reaches another thread.
    unsafe { Waker::from_raw(raw_waker(task)) }
}

fn raw_waker(task: Rc<Task>) -> RawWaker {
    RawWaker::new(Rc::into_raw(task).cast(), &VTABLE)
}

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);

/// # Safety
/// `data` comes from `Rc::<Task>::into_raw` and its count is still held.
unsafe fn clone(data: *const ()) -> RawWaker {
    // SAFETY: per this function's contract; `ManuallyDrop` leaves the
    // waker's own count alone.
    let task = ManuallyDrop::new(unsafe { Rc::from_raw(data.cast::<Task>()) });
    raw_waker(Rc::clone(&task))
}

/// # Safety
/// As [`clone`]; the waker's count is consumed.
unsafe fn wake(data: *const ()) {
    // SAFETY: per this function's contract.
    Task::wake(unsafe { Rc::from_raw(data.cast::<Task>()) });
}

/// # Safety
/// As [`clone`].
unsafe fn wake_by_ref(data: *const ()) {
    // SAFETY: per this function's contract; the waker keeps its count.
    let task = ManuallyDrop::new(unsafe { Rc::from_raw(data.cast::<Task>()) });
    Task::wake(Rc::clone(&task));
}

/// # Safety
/// As [`clone`]; the waker's count is released.
unsafe fn drop_waker(data: *const ()) {
    // SAFETY: per this function's contract.
    drop(unsafe { Rc::from_raw(data.cast::<Task>()) });
}
