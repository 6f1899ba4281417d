//! `Socket`, the handle for "the current Websocket", against the testkit
//! server on 127.0.0.1:0: it lives across server kills and restarts, holds
//! sends while down, gives back what it cannot deliver, closes with a
//! handshake, and splits into a Stream and a Sink.
//!
//! Synchronisation is by states and events; timeouts only guard against
//! hangs.
#![cfg(native)]

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{options, PATIENCE};
use futures::{FutureExt, SinkExt, StreamExt};
use wstether::{
    CloseCode, ErrorKind, Frame, Options, Retry, Socket, SocketEvent, SocketState, Upgrade,
};
use wstether_testkit::TestServer;

async fn guard<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, future)
        .await
        .expect("no hang")
}

/// Waits (by `state_changed`) until the socket is in `wanted`.
async fn until_state(socket: &Socket, wanted: SocketState) {
    guard(async {
        while socket.state() != wanted {
            socket.state_changed().await;
        }
    })
    .await
}

/// Waits until the socket is anything but open.
async fn until_down(socket: &Socket) {
    guard(async {
        while socket.state() == SocketState::Open {
            socket.state_changed().await;
        }
    })
    .await
}

/// A testkit server (echoing) and a socket connected to it.
async fn connected(options: Options) -> (TestServer, Socket) {
    let server = TestServer::start().await.unwrap();
    let socket = guard(Socket::connect(&server.url("/"), options))
        .await
        .unwrap();
    (server, socket)
}

async fn recv_text(socket: &mut Socket) -> String {
    match guard(socket.recv()).await {
        Ok(Frame::Text(text)) => text.into(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

#[test]
fn socket_is_send_and_sync_natively() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Socket>();
    send_sync::<SocketEvent>();
}

#[tokio::test]
async fn socket_dropped_closes_its_connection() {
    let (server, socket) = connected(options()).await;
    guard(server.wait_for_live_connections(1)).await;
    drop(socket);
    guard(server.wait_for_live_connections(0)).await;
}

#[tokio::test]
async fn socket_sends_and_receives_a_round_trip() {
    let (_server, mut socket) = connected(options()).await;
    assert_eq!(socket.state(), SocketState::Open);
    socket.send(Frame::text("hello")).await.unwrap();
    socket
        .send([Frame::binary(vec![1, 2]), Frame::text("two")])
        .await
        .unwrap();
    assert_eq!(recv_text(&mut socket).await, "hello");
    assert_eq!(
        guard(socket.recv()).await.unwrap(),
        Frame::binary(vec![1, 2])
    );
    assert_eq!(recv_text(&mut socket).await, "two");
    assert_eq!(socket.protocol(), None);
}

#[tokio::test]
async fn socket_connect_with_offers_a_protocol_and_reports_the_chosen_one() {
    let server = TestServer::start().await.unwrap();
    let upgrade = Upgrade::new("/").protocol("chat");
    let socket = guard(Socket::connect_with(&server.url(""), upgrade, options()))
        .await
        .unwrap();
    assert_eq!(socket.protocol(), Some("chat"));
}

#[tokio::test]
async fn socket_survives_a_server_restart_and_sends_with_the_same_handle() {
    let (server, mut socket) = connected(options()).await;
    socket.send(Frame::text("before")).await.unwrap();
    assert_eq!(recv_text(&mut socket).await, "before");

    server.stop().await;
    until_down(&socket).await;
    server.restart().await.unwrap();
    until_state(&socket, SocketState::Open).await;

    // The same handle: no StaleStream, no re-upgrade by the caller.
    socket.send(Frame::text("after")).await.unwrap();
    assert_eq!(recv_text(&mut socket).await, "after");
    assert_eq!(server.requests().len(), 2, "upgraded again by itself");
}

#[tokio::test]
async fn socket_holds_sends_while_down_and_writes_them_in_order_after_the_reconnect() {
    let (server, mut socket) = connected(options()).await;
    server.stop().await;
    until_down(&socket).await;

    for text in ["a", "b", "c"] {
        socket.send(Frame::text(text)).await.unwrap();
    }
    socket.try_send(Frame::text("d")).unwrap();
    assert_eq!(socket.buffered_amount(), 4, "held frames are buffered");
    assert_ne!(
        socket.state(),
        SocketState::Open,
        "still down: they are held"
    );

    server.restart().await.unwrap();
    for expected in ["a", "b", "c", "d"] {
        assert_eq!(recv_text(&mut socket).await, expected);
    }
    assert_eq!(socket.buffered_amount(), 0);
}

#[tokio::test]
async fn socket_without_hold_returns_sends_at_once_while_down() {
    let (server, socket) = connected(options().hold_while_down(false)).await;
    server.stop().await;
    until_down(&socket).await;

    let error = socket.try_send(Frame::text("now")).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Disconnected);
    assert_eq!(error.into_unsent(), [Frame::text("now")]);
    let error = guard(socket.send(Frame::text("waiting")))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Disconnected);
    assert_eq!(error.into_unsent(), [Frame::text("waiting")]);
    assert_eq!(socket.buffered_amount(), 0);
}

#[tokio::test]
async fn socket_returns_held_frames_when_its_retries_are_spent() {
    let retry = Retry::default()
        .initial_delay(Duration::from_millis(100))
        .max_retries(2);
    let (server, mut socket) = connected(options().retry(retry)).await;
    server.stop().await;
    until_down(&socket).await;
    // Held (or, if the retries are already spent, refused): either way
    // they come back, once, in order.
    let mut returned = Vec::new();
    for text in ["held 1", "held 2"] {
        if let Err(error) = socket.send(Frame::text(text)).await {
            assert_eq!(error.kind(), ErrorKind::Closed, "{error}");
            returned.extend(error.into_unsent());
        }
    }
    until_state(&socket, SocketState::Closed).await;
    let closed = loop {
        match guard(socket.recv()).await {
            Err(error) if error.kind() == ErrorKind::Closed => break error,
            Err(error) => returned.extend(error.into_unsent()),
            Ok(frame) => panic!("nothing was sent to receive: {frame:?}"),
        }
    };
    assert_eq!(returned, [Frame::text("held 1"), Frame::text("held 2")]);
    assert!(closed.to_string().contains("retries exhausted"), "{closed}");
}

#[tokio::test]
async fn socket_close_completes_the_handshake_and_stops_reconnecting() {
    let (server, mut socket) = connected(options()).await;
    socket.send(Frame::text("last")).await.unwrap();
    guard(socket.close(CloseCode::new(4000).unwrap(), "bye"))
        .await
        .unwrap();
    assert_eq!(socket.state(), SocketState::Closed);
    assert_eq!(server.client_close_codes(), [4000]);

    // Everything queued before the close went out first; then the end.
    assert_eq!(recv_text(&mut socket).await, "last");
    let mut closed = None;
    while let Some(event) = guard(socket.recv_event()).await {
        if let SocketEvent::Closed {
            code,
            reason,
            clean,
        } = event
        {
            closed = Some((code, reason, clean));
        }
    }
    let (code, reason, clean) = closed.expect("a Closed event");
    assert!(clean, "the server answered the close");
    assert_eq!(
        (code.map(|c| c.as_u16()), reason.as_str()),
        (Some(4000), "bye")
    );
    // Closed for good: it neither reconnects nor accepts more.
    assert_eq!(server.accepted_connections(), 1);
    let error = socket.try_send(Frame::text("too late")).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Closed);
    assert_eq!(error.into_unsent(), [Frame::text("too late")]);
    assert_eq!(
        guard(socket.recv()).await.unwrap_err().kind(),
        ErrorKind::Closed
    );
    // A second close has nothing to do.
    guard(socket.close(CloseCode::NORMAL, "")).await.unwrap();
}

#[tokio::test]
async fn socket_close_frame_sent_with_send_closes_the_socket() {
    let (server, socket) = connected(options()).await;
    let close = Frame::close(4001, "from send").unwrap();
    socket.send(close).await.unwrap();
    until_state(&socket, SocketState::Closed).await;
    assert_eq!(server.client_close_codes(), [4001]);
    assert_eq!(server.accepted_connections(), 1, "no reconnect after it");
}

#[tokio::test]
async fn socket_close_refuses_a_close_code_that_may_not_be_sent() {
    let (_server, socket) = connected(options()).await;
    let error = socket
        .close(CloseCode::from_wire(1005), "")
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidCloseCode);
    assert_eq!(socket.state(), SocketState::Open, "nothing was closed");
}

#[tokio::test]
async fn socket_state_changes_are_observed_through_a_reconnect_and_a_close() {
    let (server, socket) = connected(options()).await;
    assert_eq!(socket.state(), SocketState::Open);
    server.stop().await;
    let mut seen = vec![guard(socket.state_changed()).await];
    server.restart().await.unwrap();
    while seen.last() != Some(&SocketState::Open) {
        seen.push(guard(socket.state_changed()).await);
    }
    assert_eq!(seen.first(), Some(&SocketState::Reconnecting), "{seen:?}");
    assert!(
        seen.iter()
            .all(|s| matches!(s, SocketState::Reconnecting | SocketState::Open)),
        "{seen:?}"
    );

    let closing = async {
        let mut states = Vec::new();
        while states.last() != Some(&SocketState::Closed) {
            states.push(socket.state_changed().await);
        }
        states
    };
    let (states, closed) =
        guard(async { tokio::join!(closing, socket.close(CloseCode::NORMAL, "done")) }).await;
    closed.unwrap();
    assert_eq!(states.last(), Some(&SocketState::Closed), "{states:?}");
    assert!(
        states
            .iter()
            .all(|s| matches!(s, SocketState::Closing | SocketState::Closed)),
        "{states:?}"
    );
}

#[tokio::test]
async fn socket_splits_into_a_stream_and_a_sink() {
    let (server, socket) = connected(options()).await;
    let (mut sink, mut stream) = socket.split();
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        while let Some(item) = stream.next().await {
            got.push(item.expect("a frame"));
        }
        got
    });
    for i in 0..3 {
        sink.send(Frame::text(i.to_string())).await.unwrap();
    }
    let mut frames = futures::stream::iter(vec![Ok(Frame::text("3")), Ok(Frame::text("4"))]);
    sink.send_all(&mut frames).await.unwrap();
    guard(server.wait_for_frames(5)).await;
    guard(sink.close()).await.unwrap();
    let got = guard(reader).await.unwrap();
    let texts: Vec<Frame> = (0..5).map(|i| Frame::text(i.to_string())).collect();
    assert_eq!(got, texts, "the stream ends after the close");
    assert_eq!(server.client_close_codes(), [1000]);
}

#[tokio::test]
async fn socket_send_waits_for_room_and_try_send_gives_the_frames_back_when_full() {
    let (server, mut socket) = connected(options().send_queue_bytes(10)).await;
    // Down: nothing drains the queue, so it fills.
    server.stop().await;
    until_down(&socket).await;
    socket.try_send(Frame::text("0123456789")).unwrap();
    let error = socket.try_send(Frame::text("x")).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::QueueFull);
    assert_eq!(error.into_unsent(), [Frame::text("x")]);
    assert_eq!(socket.buffered_amount(), 10);

    let mut waiting = Box::pin(socket.send(Frame::text("y")));
    assert!(
        (&mut waiting).now_or_never().is_none(),
        "send waits while the queue is full"
    );
    server.restart().await.unwrap();
    guard(waiting).await.unwrap();
    assert_eq!(recv_text(&mut socket).await, "0123456789");
    assert_eq!(recv_text(&mut socket).await, "y");
}

// ---- kill storm --------------------------------------------------------------

/// Frames carry their number as text.
fn id_of(frame: &Frame) -> u64 {
    match frame {
        Frame::Text(text) => text.parse().expect("a numbered frame"),
        other => panic!("unnumbered frame {other:?}"),
    }
}

/// Records numbered frames (the close frame of `close()` may come back
/// too, when the socket was down then: it is not numbered).
fn insert_all(set: &mut BTreeSet<u64>, frames: &[Frame], what: &str) {
    for frame in frames.iter().filter(|f| !matches!(f, Frame::Close(_))) {
        assert!(set.insert(id_of(frame)), "{what} twice: {frame:?}");
    }
}

fn storm_options() -> Options {
    Options::default()
        .retry(
            Retry::default()
                .initial_delay(Duration::from_millis(1))
                .max_delay(Duration::from_millis(10))
                .reset_after(Duration::from_millis(1)),
        )
        .no_keepalive()
        // Small: many frames in flight or held at each kill.
        .send_queue_bytes(2048)
}

/// Accounts for one item of the stream: an echo, or frames given back.
fn record(
    item: Result<Frame, wstether::Error>,
    echoed: &mut Vec<u64>,
    returned: &mut BTreeSet<u64>,
) {
    match item {
        Ok(frame) => echoed.push(id_of(&frame)),
        Err(error) => insert_all(returned, error.unsent(), "returned"),
    }
}

const KILLS: u32 = 40;
const ECHOES_PER_KILL: u32 = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_kill_storm_delivers_or_returns_every_frame_once() {
    kill_storm(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_kill_storm_without_hold_delivers_or_returns_every_frame_once() {
    kill_storm(false).await;
}

async fn kill_storm(hold: bool) {
    let (server, socket) = connected(storm_options().hold_while_down(hold)).await;
    let connection = socket.connection().clone();
    let (mut sink, mut stream) = socket.split();

    // The sender: numbered frames, one at a time, waiting for room.
    let stop = Arc::new(AtomicBool::new(false));
    let stop_sending = stop.clone();
    let sender = tokio::spawn(async move {
        let mut refused = BTreeSet::new();
        let mut next = 0u64;
        while !stop_sending.load(Ordering::Relaxed) {
            let frame = Frame::text(next.to_string());
            next += 1;
            match tokio::time::timeout(PATIENCE, sink.send(frame)).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    assert_ne!(error.kind(), ErrorKind::StaleStream, "{error}");
                    insert_all(&mut refused, error.unsent(), "refused");
                    if error.kind() == ErrorKind::Closed {
                        break;
                    }
                    // Down without hold: let the reconnect run.
                    tokio::task::yield_now().await;
                }
                Err(_) => panic!("send waited for room for {PATIENCE:?}"),
            }
        }
        (sink, next, refused)
    });

    let mut echoed = Vec::new();
    let mut returned = BTreeSet::new();
    for kill in 0..KILLS {
        // The socket is back (a new connection per kill), and traffic flows.
        guard(server.wait_for_connections(u64::from(kill) + 1)).await;
        let mut echoes = 0;
        while echoes < ECHOES_PER_KILL {
            let item = guard(stream.next()).await.expect("the stream goes on");
            echoes += u32::from(item.is_ok());
            record(item, &mut echoed, &mut returned);
        }
        // Kill with frames in flight and the sender still sending.
        server.stop().await;
        server.restart().await.unwrap();
    }
    // Back once more after the last kill, then stop.
    guard(server.wait_for_connections(u64::from(KILLS) + 1)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut sink, sent, refused) = guard(sender).await.unwrap();
    // Read while closing, so that the server's close answer is read too.
    let rest = async {
        let mut rest = Vec::new();
        while let Some(item) = stream.next().await {
            rest.push(item);
        }
        rest
    };
    let (closed, rest) = guard(async { tokio::join!(sink.close(), rest) }).await;
    closed.unwrap();
    for item in rest {
        record(item, &mut echoed, &mut returned);
    }

    let written = connection.stats().messages_written;
    let returned_n = returned.len() as u64;
    let refused_n = refused.len() as u64;
    assert!(returned.is_disjoint(&refused));
    assert_eq!(
        sent,
        written + returned_n + refused_n,
        "every frame is written, returned or refused, once (sent {sent}, written {written}, \
         returned {returned_n}, refused {refused_n})"
    );
    // Echoes come back in the order sent (held frames keep their place,
    // nothing is resent), once each, and only of frames written.
    assert!(
        echoed.windows(2).all(|w| w[0] < w[1]),
        "echoes out of order or duplicated"
    );
    let echoed: BTreeSet<u64> = echoed.into_iter().collect();
    assert!(
        echoed.is_disjoint(&returned),
        "a returned frame was delivered"
    );
    assert!(
        echoed.is_disjoint(&refused),
        "a refused frame was delivered"
    );
    assert!(echoed.len() as u64 <= written);
    assert!(connection.stats().reconnects >= u64::from(KILLS));
    println!(
        "socket kill storm (hold {}): {KILLS} kills; sent {sent}, written {written}, echoed {}, \
         returned {returned_n}, refused {refused_n}",
        hold,
        echoed.len()
    );
}

#[tokio::test]
async fn socket_open_returns_at_once_and_holds_sends_until_the_first_upgrade() {
    let server = TestServer::start().await.unwrap();
    server.stop().await;
    // Nothing listens yet: `open` returns anyway, and accepts sends.
    let mut socket = Socket::open(&server.url("/"), options()).unwrap();
    assert_eq!(socket.state(), SocketState::Connecting);
    socket.try_send(Frame::text("early")).unwrap();
    socket.send(Frame::text("bird")).await.unwrap();
    assert_eq!(socket.buffered_amount(), "earlybird".len());
    server.restart().await.unwrap();
    assert_eq!(recv_text(&mut socket).await, "early");
    assert_eq!(recv_text(&mut socket).await, "bird");
    assert_eq!(socket.state(), SocketState::Open);
    assert_eq!(socket.buffered_amount(), 0);
}

#[tokio::test]
async fn socket_open_reports_a_failed_first_connection_as_events_with_the_held_frames() {
    let server = TestServer::start().await.unwrap();
    server.stop().await;
    // The default budget: one attempt.
    let mut socket = Socket::open(&server.url("/"), Options::default()).unwrap();
    socket.try_send(Frame::text("never written")).unwrap();
    let mut events = Vec::new();
    while let Some(event) = guard(socket.recv_event()).await {
        events.push(event);
    }
    let [.., SocketEvent::Error(error), SocketEvent::Down {
        unsent,
        will_reconnect: false,
        ..
    }, SocketEvent::Closed { clean: false, .. }] = events.as_slice()
    else {
        panic!("not a failed first connection: {events:?}");
    };
    assert_eq!(error.kind(), ErrorKind::Connect, "{error}");
    assert_eq!(unsent, &[Frame::text("never written")], "nothing is lost");
    assert_eq!(socket.state(), SocketState::Closed);
}

#[tokio::test]
async fn socket_open_refuses_a_malformed_url_at_once() {
    let error = Socket::open("http://127.0.0.1:1/", options()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::UnsupportedScheme);
    let error = Socket::open("not a url", options()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidUrl);
}

#[tokio::test]
async fn socket_sender_sends_while_another_task_awaits_events() {
    let server = TestServer::start().await.unwrap();
    let mut socket = Socket::open(&server.url("/"), options()).unwrap();
    let sender = socket.sender();
    // The socket itself moves into the reading task.
    let reader = tokio::spawn(async move {
        loop {
            match socket.recv_event().await {
                Some(SocketEvent::Frame(frame)) => return Some(frame),
                Some(_) => {}
                None => return None,
            }
        }
    });
    sender
        .clone()
        .send(Frame::text("from the sender"))
        .await
        .unwrap();
    let echoed = guard(reader).await.unwrap();
    assert_eq!(echoed, Some(Frame::text("from the sender")));
    // The socket is gone, its sender not: the connection lives on until
    // the last of them goes.
    assert_eq!(sender.state(), SocketState::Open);
    drop(sender);
    guard(server.wait_for_live_connections(0)).await;
}

#[tokio::test]
async fn socket_sender_close_reads_closing_at_once_and_closes_the_socket() {
    let (server, mut socket) = connected(options()).await;
    let sender = socket.sender();
    let closing = sender.close(CloseCode::NORMAL, "bye");
    futures::pin_mut!(closing);
    // The close frame is queued by the first poll: the state says so at once.
    assert!(futures::poll!(closing.as_mut()).is_pending());
    assert_eq!(sender.state(), SocketState::Closing);
    let drain = async { while socket.recv_event().await.is_some() {} };
    let (closed, ()) = guard(async { tokio::join!(closing, drain) }).await;
    closed.unwrap();
    assert_eq!(server.client_close_codes(), [1000]);
}
