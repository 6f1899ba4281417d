//! What an idle connection holds, in bytes (issue 23: ≤ 8 KiB of client
//! RSS per idle connection at 10,000, measured by `benches/scale.rs`).
//! Here the measure is deterministic: the heap bytes live in this process
//! (a counting global allocator: allocated minus freed) per upgraded, idle
//! connection with keepalive, everything included (the connection's task,
//! its queues and shared state, tungstenite's buffers, tokio's I/O
//! registration, the handles the test keeps). No timing: the connections
//! run on a current-thread runtime, so by the time the application has
//! read `Upgraded` and found nothing more, the connection's task has
//! waited too (and freed what connecting left in its queues).
//!
//! The server is the `wstether-testkit` binary in a child process, so
//! this process's heap is the client's.
#![cfg(native)]

mod hostile_support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use futures::FutureExt;
use hostile_support::{ChildServer, PATIENCE};
use wstether::{Connection, Event, Keepalive, Options};

/// Heap bytes live now (allocated minus freed), every thread.
static LIVE: AtomicIsize = AtomicIsize::new(0);

struct Counting;

// SAFETY: every call is forwarded to `System` unchanged; the counter has no
// effect on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Connections measured together (the per-connection figure is their mean).
const N: usize = 200;

/// The bound: 7 KiB (7,168 bytes) of heap per idle connection, which
/// leaves room under the 8 KiB RSS target for the allocator's own
/// bookkeeping (the scale bench measures RSS: 7.3 KiB per connection at
/// 10,000, BENCHMARKS.md).
const MAX_HEAP_PER_IDLE_CONNECTION: isize = 7 * 1024;

#[test]
fn an_idle_connection_holds_at_most_7_kib_of_heap() {
    // Current-thread: a connection's task runs until it waits before the
    // test's task runs again.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let server = ChildServer::start().await;
        let url = server.url("/");
        let options = Options::default()
            .keepalive(Keepalive::every(Duration::from_secs(10)).timeout(Duration::from_secs(5)));
        // One connection first, so that what tokio and the process set up
        // once (the I/O driver, the timer wheel) is not counted.
        let warm = open_idle(&url, options.clone()).await;
        let mut held = Vec::with_capacity(N);
        let before = LIVE.load(Ordering::Relaxed);
        for _ in 0..N {
            held.push(open_idle(&url, options.clone()).await);
        }
        let per_connection = (LIVE.load(Ordering::Relaxed) - before) / N as isize;
        println!("heap per idle connection: {per_connection} bytes (bound {MAX_HEAP_PER_IDLE_CONNECTION})");
        assert!(
            per_connection <= MAX_HEAP_PER_IDLE_CONNECTION,
            "an idle connection holds {per_connection} bytes of heap, more than {MAX_HEAP_PER_IDLE_CONNECTION}"
        );
        drop((warm, held));
    });
}

/// Opens a connection, reads `Up` and `Upgraded`, then finds no event
/// waiting (the reader's wait, where it frees what it no longer needs).
async fn open_idle(url: &str, options: Options) -> (Connection, wstether::Events) {
    let (conn, mut events) = Connection::open(url, options).unwrap();
    conn.ws_upgrade("/").unwrap();
    loop {
        let event = tokio::time::timeout(PATIENCE, events.recv())
            .await
            .expect("the upgrade within PATIENCE");
        match event {
            Some(Event::Upgraded { .. }) => break,
            Some(Event::Up { .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(events.recv().now_or_never().is_none(), "nothing more");
    (conn, events)
}
