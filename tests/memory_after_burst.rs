//! Memory a connection keeps after large messages, in bytes: issue 12.
//!
//! A server sends 4 binary messages of 4 MiB (one frame each); the
//! application reads and drops them, then makes one round trip on the same
//! connection. What the process still holds, counted by a global allocator
//! that adds up live heap bytes, must be far below one message: the read
//! path keeps no buffer sized after the largest message (tungstenite alone
//! kept one 4 MiB buffer for the rest of the connection).
//!
//! The server is the `wstether-testkit` binary in a child process, so the
//! count is the client's.
#![cfg(native)]

mod hostile_support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use hostile_support::{serial, ChildServer, PATIENCE};
use wstether::{Event, Frame, Options, Retry};

/// Live heap bytes of this process.
static LIVE: AtomicIsize = AtomicIsize::new(0);

struct Counting;

// SAFETY: every call is forwarded to `System` unchanged; only sizes are
// added up.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        System.dealloc(p, layout);
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let q = System.realloc(p, layout, new_size);
        if !q.is_null() {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        q
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const MESSAGES: usize = 4;
/// Each message: 4 MiB (4_194_304 bytes), one frame.
const MESSAGE_BYTES: usize = 4 << 20;
/// What the connection may hold afterwards, over what it held once
/// upgraded: 512 KiB (524_288 bytes), an eighth of one message (socket
/// read buffer of 64 KiB, frame buffer of 4 KiB, queues, slack).
const MAX_HELD: isize = 512 << 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_messages_leave_no_message_sized_buffer_behind() {
    let _serial = serial().await;
    let server = ChildServer::start().await;
    let options = Options::default().retry(Retry::never()).no_keepalive();
    let path = format!("/?send={MESSAGES}&size={MESSAGE_BYTES}&kind=binary");
    let (conn, mut events, stream) =
        tokio::time::timeout(PATIENCE, wstether::connect(&server.url(&path), options))
            .await
            .expect("connected within PATIENCE")
            .expect("connected");
    let upgraded = LIVE.load(Ordering::Relaxed);
    let mut received = 0;
    while received < MESSAGES {
        let event = tokio::time::timeout(PATIENCE, events.recv())
            .await
            .expect("a message within PATIENCE")
            .expect("an event");
        match event {
            Event::Frame {
                frame: Frame::Binary(data),
                ..
            } => {
                assert_eq!(data.len(), MESSAGE_BYTES);
                assert!(data.starts_with(format!("{received} ").as_bytes()));
                received += 1;
            }
            Event::Frame { .. } => {}
            other => panic!("expected message {received}, got {other:?}"),
        }
    }
    // A round trip: the burst is over on both sides.
    conn.send(stream, Frame::text("after")).await.unwrap();
    loop {
        let event = tokio::time::timeout(PATIENCE, events.recv())
            .await
            .expect("the echo within PATIENCE")
            .expect("an event");
        if let Event::Frame {
            frame: Frame::Text(text),
            ..
        } = event
        {
            assert_eq!(text, "after");
            break;
        }
    }
    let held = LIVE.load(Ordering::Relaxed) - upgraded;
    assert!(
        held < MAX_HELD,
        "{held} bytes held after {MESSAGES} messages of {MESSAGE_BYTES} bytes (at most {MAX_HELD})"
    );
    conn.shutdown();
}
