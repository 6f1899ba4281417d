//! The bad-input table, peer side: when the server breaks the protocol the
//! client reports a typed error *and* fails the connection with the close
//! code RFC 6455 §7.4.1 asks for, which the testkit records. Never a panic,
//! never a hang. (What the application may not send is in `bad_input.rs`;
//! the error kinds of single bad frames are in `delivery.rs`.)
#![cfg(native)]

mod common;

use common::{options, until};
use wstether::{Connection, DownReason, ErrorKind, Event, Options};
use wstether_testkit::TestServer;

/// Opens a connection to `?bad_frame=KIND`, checks the typed `Down` and
/// the close code the server received, and that a retry follows.
async fn case(kind: &str, options: Options, expected: ErrorKind, close_code: u16) {
    let server = TestServer::start().await.unwrap();
    let (conn, mut events) = Connection::open(&server.url(""), options).unwrap();
    let stream = conn.ws_upgrade(&format!("/?bad_frame={kind}")).unwrap();
    until(&mut events, common::is_upgraded).await;
    let (down, _) = until(&mut events, common::is_down).await;
    let Event::Down {
        reason: DownReason::Error(error),
        killed_streams,
        will_reconnect,
        ..
    } = down
    else {
        panic!("{kind}: {down:?}")
    };
    assert_eq!(error.kind(), expected, "{kind}: {error}");
    assert_eq!(killed_streams, [stream]);
    assert!(will_reconnect, "{kind}: retried by the default policy");
    tokio::time::timeout(common::PATIENCE, server.wait_for_client_close_codes(1))
        .await
        .unwrap_or_else(|_| panic!("{kind}: the server got no close frame"));
    assert_eq!(
        server.client_close_codes(),
        [close_code],
        "{kind}: close code seen by the peer"
    );
    // The connection comes back (a new TCP connection, not upgraded).
    until(&mut events, |e| matches!(e, Event::Up { attempt: 2 })).await;
}

#[tokio::test]
async fn an_oversize_fragmented_message_is_message_too_big_and_the_peer_gets_1009() {
    // Every fragment (64 KiB) is under the frame limit; the message (512 KiB) is not.
    let options = options()
        .max_frame_size(128 << 10)
        .max_message_size(256 << 10);
    case("oversize_message", options, ErrorKind::MessageTooBig, 1009).await;
}

#[tokio::test]
async fn an_oversize_frame_is_message_too_big_and_the_peer_gets_1009() {
    let options = options().max_frame_size(1 << 20).max_message_size(1 << 20);
    case("oversize", options, ErrorKind::MessageTooBig, 1009).await;
}

#[tokio::test]
async fn invalid_utf8_text_is_invalid_utf8_and_the_peer_gets_1007() {
    case("utf8", options(), ErrorKind::InvalidUtf8, 1007).await;
}

#[tokio::test]
async fn a_fragmented_control_frame_is_a_protocol_error_and_the_peer_gets_1002() {
    case("fragmented_ping", options(), ErrorKind::Protocol, 1002).await;
}

#[tokio::test]
async fn a_reserved_opcode_is_a_protocol_error_and_the_peer_gets_1002() {
    case("reserved_opcode", options(), ErrorKind::Protocol, 1002).await;
}

#[tokio::test]
async fn a_clean_close_by_the_client_is_recorded_as_1000() {
    // The recording itself: an ordinary shutdown reaches the peer as 1000.
    let server = TestServer::start().await.unwrap();
    let (conn, mut events) = Connection::open(&server.url(""), options()).unwrap();
    conn.ws_upgrade("/").unwrap();
    until(&mut events, common::is_upgraded).await;
    conn.shutdown();
    common::rest(&mut events).await;
    tokio::time::timeout(common::PATIENCE, server.wait_for_client_close_codes(1))
        .await
        .unwrap();
    assert_eq!(server.client_close_codes(), [1000]);
}
