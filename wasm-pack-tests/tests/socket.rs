//! `Socket` in a real browser, against the testkit server: the same API as
//! natively (tests/socket.rs), through the browser's `WebSocket`.

mod common;

use std::time::Duration;

use common::{control, within, ws_url, DEADLINE};
use futures::{SinkExt, StreamExt};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use wstether::{CloseCode, ErrorKind, Frame, Options, Retry, Socket, SocketState};

wasm_bindgen_test_configure!(run_in_browser);

fn options() -> Options {
    Options::default().retry(
        Retry::default()
            .initial_delay(Duration::from_millis(50))
            .max_delay(Duration::from_millis(400)),
    )
}

async fn connect(options: Options) -> Socket {
    within(DEADLINE, Socket::connect(&ws_url("/"), options))
        .await
        .expect("connect")
}

async fn recv_text(socket: &mut Socket) -> String {
    match within(DEADLINE, socket.recv()).await {
        Ok(Frame::Text(text)) => text.into(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

#[wasm_bindgen_test]
async fn socket_sends_and_receives_in_the_browser() {
    let mut socket = connect(options()).await;
    assert_eq!(socket.state(), SocketState::Open);
    socket.send(Frame::text("hello")).await.unwrap();
    assert_eq!(recv_text(&mut socket).await, "hello");
    within(DEADLINE, socket.close(CloseCode::NORMAL, "done"))
        .await
        .unwrap();
    assert_eq!(socket.state(), SocketState::Closed);
}

#[wasm_bindgen_test]
async fn socket_holds_sends_across_a_server_restart_in_the_browser() {
    let mut socket = connect(options()).await;
    control("/_control/restart?down_ms=300").await;
    within(DEADLINE, async {
        while socket.state() == SocketState::Open {
            socket.state_changed().await;
        }
    })
    .await;
    // Down: held, then written after the next upgrade, with the same handle.
    socket.send(Frame::text("held")).await.unwrap();
    assert!(socket.buffered_amount() >= 4);
    assert_eq!(recv_text(&mut socket).await, "held");
    assert_eq!(socket.state(), SocketState::Open);
}

#[wasm_bindgen_test]
async fn socket_without_hold_refuses_sends_while_down_in_the_browser() {
    let socket = connect(options().hold_while_down(false)).await;
    control("/_control/restart?down_ms=300").await;
    within(DEADLINE, async {
        while socket.state() == SocketState::Open {
            socket.state_changed().await;
        }
    })
    .await;
    let error = socket.try_send(Frame::text("now")).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Disconnected);
    assert_eq!(error.into_unsent(), [Frame::text("now")]);
    // The server is back before the next test (they share it).
    within(DEADLINE, async {
        while socket.state() != SocketState::Open {
            socket.state_changed().await;
        }
    })
    .await;
}

#[wasm_bindgen_test]
async fn socket_splits_into_a_stream_and_a_sink_in_the_browser() {
    let socket = connect(options()).await;
    let (mut sink, mut stream) = socket.split();
    sink.send(Frame::text("one")).await.unwrap();
    let echo = within(DEADLINE, stream.next()).await;
    assert_eq!(echo.expect("an item").unwrap(), Frame::text("one"));
    within(DEADLINE, sink.close()).await.unwrap();
    assert!(within(DEADLINE, stream.next()).await.is_none());
}

#[wasm_bindgen_test]
async fn socket_open_returns_at_once_and_holds_sends_until_the_first_upgrade_in_the_browser() {
    let mut socket = Socket::open(&ws_url("/"), options()).expect("open");
    // Nothing has run yet: the socket is connecting and accepts sends.
    assert_eq!(socket.state(), SocketState::Connecting);
    socket.try_send(Frame::text("early")).unwrap();
    assert_eq!(socket.buffered_amount(), "early".len());
    assert_eq!(recv_text(&mut socket).await, "early");
    assert_eq!(socket.state(), SocketState::Open);
    within(DEADLINE, socket.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();
}

#[wasm_bindgen_test]
async fn socket_sender_sends_while_the_socket_awaits_events_in_the_browser() {
    let mut socket = Socket::open(&ws_url("/"), options()).expect("open");
    let sender = socket.sender();
    let reader = async {
        loop {
            match socket.recv_event().await {
                Some(wstether::SocketEvent::Frame(frame)) => return Some(frame),
                Some(_) => {}
                None => return None,
            }
        }
    };
    let writer = sender.send(Frame::text("from the sender"));
    let (echoed, sent) = within(DEADLINE, async { futures::join!(reader, writer) }).await;
    sent.unwrap();
    assert_eq!(echoed, Some(Frame::text("from the sender")));
    within(DEADLINE, sender.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();
    assert_eq!(sender.state(), SocketState::Closed);
}
