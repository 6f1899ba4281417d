//! Hostile servers at the seams of the wire path (issue 21, findings 1, 3
//! and 7): where the HTTP head ends, frame lengths near 2^64, data after
//! the server's close frame. Each runs on every read path: plain (no
//! compression: the fast path takes large binary frames) and deflate.
#![cfg(feature = "testkit")]

mod common;

use common::{next, options};
use wstether::testkit::TestServer;
use wstether::{Compression, DownReason, ErrorKind, Event, Frame, Options};

/// The payload of `bad_frame=phantom_head`'s one frame.
const PHANTOM_PAYLOAD: usize = 65_550;

/// A read path: the options that choose it, and the query that makes the
/// testkit's 101 agree.
type Path = (Options, &'static str);

/// No compression: large binary frames take the fast path.
fn plain() -> Path {
    (options().retry(wstether::Retry::never()), "")
}

/// permessage-deflate offered and accepted (the server's frames are then
/// uncompressed messages, which the extension allows).
fn deflate() -> Path {
    (
        plain().0.compression(Compression::deflate()),
        "&header=Sec-WebSocket-Extensions:permessage-deflate",
    )
}

/// Every event of one connection up to and including its `Down`.
async fn until_down(url: &str, options: Options) -> Vec<Event> {
    let (base, path) = url.split_at(url.find("/?").unwrap_or(url.len()));
    let (conn, mut events) = wstether::Connection::open(base, options).unwrap();
    conn.ws_upgrade(if path.is_empty() { "/" } else { path })
        .unwrap();
    let mut seen = Vec::new();
    loop {
        let event = next(&mut events).await;
        let down = matches!(event, Event::Down { .. });
        seen.push(event);
        if down {
            return seen;
        }
    }
}

fn binary_lengths(events: &[Event]) -> Vec<usize> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Frame {
                frame: Frame::Binary(data),
                ..
            } => Some(data.len()),
            _ => None,
        })
        .collect()
}

/// Finding 1: a 101 whose lines end in a bare LF, then a frame whose
/// payload holds `\r\n\r\n` and a 64 KiB frame header. Only the real
/// 65,550-byte message may arrive, never a phantom 65,536-byte one.
async fn bare_lf_head((options, accept): Path) {
    let server = TestServer::start().await.unwrap();
    let url = server.url(&format!("/?head_lf=1&bad_frame=phantom_head{}", accept));
    let events = until_down(&url, options).await;
    let upgraded = events.iter().any(|e| matches!(e, Event::Upgraded { .. }));
    let lengths = binary_lengths(&events);
    if upgraded {
        assert_eq!(
            lengths,
            vec![PHANTOM_PAYLOAD],
            "the server sent one 65,550-byte message: {events:?}"
        );
    } else {
        // Refusing a head that breaks HTTP/1.1 is fine too; a phantom is not.
        assert!(lengths.is_empty(), "{events:?}");
    }
}

#[tokio::test]
async fn hostile_bare_lf_head_then_a_head_shaped_payload_gives_the_real_message_plain() {
    bare_lf_head(plain()).await;
}

#[tokio::test]
async fn hostile_bare_lf_head_then_a_head_shaped_payload_gives_the_real_message_deflate() {
    bare_lf_head(deflate()).await;
}

/// The same frame after a CRLF head arrives whole (the control case).
#[tokio::test]
async fn hostile_crlf_head_then_a_head_shaped_payload_gives_the_real_message() {
    let server = TestServer::start().await.unwrap();
    let events = until_down(&server.url("/?bad_frame=phantom_head"), plain().0).await;
    assert_eq!(binary_lengths(&events), vec![PHANTOM_PAYLOAD], "{events:?}");
}

/// Finding 3: frame lengths near 2^64 give a typed error (too big, or a
/// protocol error for the forbidden top bit), never a panic of the task.
async fn length_near_2_pow_64((options, accept): Path) {
    for claim in [u64::MAX, u64::MAX - 9, (1 << 63) - 1, 1 << 63] {
        let server = TestServer::start().await.unwrap();
        let url = server.url(&format!("/?claim_len={claim}{}", accept));
        let events = until_down(&url, options.clone()).await;
        let Some(Event::Down { reason, .. }) = events.last() else {
            unreachable!()
        };
        match reason {
            DownReason::Error(error) => {
                assert!(
                    matches!(error.kind(), ErrorKind::MessageTooBig | ErrorKind::Protocol),
                    "claim {claim}: {error:?}"
                );
                assert!(
                    !error.to_string().contains("panicked"),
                    "claim {claim}: {error}"
                );
            }
            other => panic!("claim {claim}: expected a typed error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn hostile_frame_length_near_2_pow_64_is_a_typed_error_not_a_panic_plain() {
    length_near_2_pow_64(plain()).await;
}

#[tokio::test]
async fn hostile_frame_length_near_2_pow_64_is_a_typed_error_not_a_panic_deflate() {
    length_near_2_pow_64(deflate()).await;
}

/// Finding 7: nothing the server sends after its close frame is delivered,
/// large (the fast path) or small.
async fn data_after_close((options, accept): Path, kind: &str) {
    let server = TestServer::start().await.unwrap();
    let url = server.url(&format!("/?bad_frame=data_after_close_{kind}{}", accept));
    let events = until_down(&url, options).await;
    let close_at = events
        .iter()
        .position(|e| {
            matches!(
                e,
                Event::Frame {
                    frame: Frame::Close(_),
                    ..
                }
            )
        })
        .unwrap_or_else(|| panic!("the close frame arrives: {events:?}"));
    assert!(
        binary_lengths(&events[close_at..]).is_empty(),
        "a frame after Close was delivered: {events:?}"
    );
    assert!(binary_lengths(&events).is_empty(), "{events:?}");
}

#[tokio::test]
async fn hostile_large_data_after_close_is_not_delivered_plain() {
    data_after_close(plain(), "large").await;
}

#[tokio::test]
async fn hostile_small_data_after_close_is_not_delivered_plain() {
    data_after_close(plain(), "small").await;
}

#[tokio::test]
async fn hostile_large_data_after_close_is_not_delivered_deflate() {
    data_after_close(deflate(), "large").await;
}

#[tokio::test]
async fn hostile_small_data_after_close_is_not_delivered_deflate() {
    data_after_close(deflate(), "small").await;
}
