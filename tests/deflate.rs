//! permessage-deflate natively against a raw server: a compressed frame in
//! the same segment as the 101, and the bad-input table (typed error and
//! the close code the server receives).
#![cfg(native)]

mod common;

use common::{next, options, until};
use flate2::{Compress, Decompress, FlushCompress, FlushDecompress};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use wstether::{Compression, Connection, DownReason, ErrorKind, Event, Frame, Retry};

/// A server frame (unmasked).
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n < 65536 => {
            out.push(126);
            out.extend((n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend((n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

const FIN: u8 = 0x80;
const RSV1: u8 = 0x40;

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut deflater = Compress::new(flate2::Compression::best(), false);
    let mut out = Vec::with_capacity(data.len() + 1024);
    deflater
        .compress_vec(data, &mut out, FlushCompress::Sync)
        .unwrap();
    assert_eq!(deflater.total_in() as usize, data.len(), "room enough");
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

/// What the server saw of the client: its request and its frames
/// (first byte, unmasked payload).
struct Seen {
    request: String,
    frames: Vec<(u8, Vec<u8>)>,
}

impl Seen {
    fn close_code(&self) -> Option<u16> {
        self.frames
            .iter()
            .find(|(first, _)| first & 0x0f == 0x8)
            .map(|(_, payload)| u16::from_be_bytes([payload[0], payload[1]]))
    }
}

/// A one-shot server: answers the upgrade with a 101 carrying `extensions`
/// and, in the same write, `after`; then reads the client's frames until
/// it closes (answering a close with a close).
async fn serve(
    extensions: &'static str,
    after: Vec<u8>,
) -> (String, tokio::task::JoinHandle<Seen>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        let end = loop {
            if let Some(at) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(n > 0, "the client closed before its request ended");
            head.extend_from_slice(&buf[..n]);
        };
        let request = String::from_utf8_lossy(&head[..end]).into_owned();
        let mut rest = head[end..].to_vec();
        let key = request
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("sec-websocket-key")
                    .then(|| value.trim().to_owned())
            })
            .unwrap();
        let extensions = if extensions.is_empty() {
            String::new()
        } else {
            format!("Sec-WebSocket-Extensions: {extensions}\r\n")
        };
        let mut answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n{extensions}\r\n",
            derive_accept_key(key.as_bytes())
        )
        .into_bytes();
        answer.extend_from_slice(&after);
        tcp.write_all(&answer).await.unwrap();
        let mut frames = Vec::new();
        loop {
            // Parse the client's (masked) frames.
            while rest.len() >= 2 {
                let first = rest[0];
                let (len, at) = match rest[1] & 0x7f {
                    126 if rest.len() >= 4 => (u16::from_be_bytes([rest[2], rest[3]]) as usize, 4),
                    127 if rest.len() >= 10 => (
                        u64::from_be_bytes(rest[2..10].try_into().unwrap()) as usize,
                        10,
                    ),
                    126 | 127 => break,
                    n => (n as usize, 2),
                };
                if rest.len() < at + 4 + len {
                    break;
                }
                let mask = [rest[at], rest[at + 1], rest[at + 2], rest[at + 3]];
                let payload: Vec<u8> = rest[at + 4..at + 4 + len]
                    .iter()
                    .enumerate()
                    .map(|(i, b)| b ^ mask[i % 4])
                    .collect();
                rest.drain(..at + 4 + len);
                let close = first & 0x0f == 0x8;
                if close {
                    let _ = tcp
                        .write_all(&frame(FIN | 0x8, &payload[..2.min(payload.len())]))
                        .await;
                }
                frames.push((first, payload));
                if close {
                    return Seen { request, frames };
                }
            }
            match tcp.read(&mut buf).await {
                Ok(n) if n > 0 => rest.extend_from_slice(&buf[..n]),
                _ => return Seen { request, frames },
            }
        }
    });
    (url, task)
}

fn deflate_options() -> wstether::Options {
    options()
        .retry(Retry::never())
        .compression(Compression::deflate())
}

#[tokio::test]
async fn a_compressed_frame_in_the_same_segment_as_the_101_is_read() {
    let text = "hello, compressed world! ".repeat(40);
    let after = frame(FIN | RSV1 | 0x1, &deflate(text.as_bytes()));
    let (url, server) = serve("permessage-deflate", after).await;
    let (conn, mut events) = Connection::open(&url, deflate_options()).unwrap();
    let stream = conn.ws_upgrade("/").unwrap();
    let (upgraded, _) = until(&mut events, |e| matches!(e, Event::Upgraded { .. })).await;
    assert_eq!(upgraded.extensions(), Some("permessage-deflate"));
    match next(&mut events).await {
        Event::Frame {
            frame: Frame::Text(got),
            ..
        } => assert_eq!(got, text),
        other => panic!("expected the text, got {other:?}"),
    }
    conn.send(stream, Frame::text(text.clone())).await.unwrap();
    conn.send(stream, Frame::Text("tiny".into())).await.unwrap();
    conn.shutdown();
    let seen = server.await.unwrap();
    assert!(
        seen.request
            .to_ascii_lowercase()
            .contains("sec-websocket-extensions: permessage-deflate; client_max_window_bits"),
        "{}",
        seen.request
    );
    let (first, payload) = &seen.frames[0];
    assert_eq!(
        first & (FIN | RSV1 | 0x0f),
        FIN | RSV1 | 0x1,
        "compressed text"
    );
    assert!(payload.len() < text.len() / 4);
    let mut input = payload.clone();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::with_capacity(text.len() + 64);
    Decompress::new(false)
        .decompress_vec(&input, &mut out, FlushDecompress::Sync)
        .unwrap();
    assert_eq!(out, text.as_bytes());
    // Under the threshold: sent as it is.
    assert_eq!(seen.frames[1], (FIN | 0x1, b"tiny".to_vec()));
}

/// The server's answer refused at the upgrade: an extension or parameter
/// the client did not offer.
async fn refused_upgrade(extensions: &'static str, compression: Compression) -> String {
    let (url, server) = serve(extensions, Vec::new()).await;
    let (conn, mut events) = Connection::open(
        &url,
        options().retry(Retry::never()).compression(compression),
    )
    .unwrap();
    conn.ws_upgrade("/").unwrap();
    let (event, before) = until(&mut events, |e| {
        matches!(e, Event::UpgradeFailed { .. } | Event::Upgraded { .. })
    })
    .await;
    let Event::UpgradeFailed { error, .. } = event else {
        panic!("{extensions:?} was accepted: {event:?} after {before:?}");
    };
    assert_eq!(error.kind(), ErrorKind::Upgrade);
    drop(conn);
    drop(events);
    let _ = server.await;
    error.to_string()
}

#[tokio::test]
async fn answers_that_were_not_offered_fail_the_upgrade() {
    let deflate = Compression::deflate;
    for (answer, compression) in [
        ("x-webkit-deflate-frame", deflate()),
        ("permessage-deflate, permessage-deflate", deflate()),
        ("permessage-deflate; mystery=1", deflate()),
        ("permessage-deflate; client_max_window_bits=16", deflate()),
        (
            "permessage-deflate; client_max_window_bits=12",
            deflate().client_max_window_bits(10),
        ),
        (
            "permessage-deflate",
            deflate().server_context_takeover(false),
        ),
        // Compression off: nothing offered, so anything is refused.
        ("permessage-deflate", Compression::off()),
    ] {
        let why = refused_upgrade(answer, compression).await;
        assert!(
            why.contains("extension") || why.contains("Extensions"),
            "{why}"
        );
    }
}

/// One bad-input case: what the server sends after the 101; the typed
/// error and the close code the server receives.
async fn bad_input(
    extensions: &'static str,
    after: Vec<u8>,
    limit: Option<usize>,
) -> (ErrorKind, Option<u16>) {
    let (url, server) = serve(extensions, after).await;
    let mut options = deflate_options();
    if let Some(limit) = limit {
        options = options.max_message_size(limit);
    }
    let (conn, mut events) = Connection::open(&url, options).unwrap();
    conn.ws_upgrade("/").unwrap();
    let (down, before) = until(&mut events, common::is_down).await;
    let Event::Down {
        reason: DownReason::Error(error),
        ..
    } = down
    else {
        panic!("expected an error, got {down:?} after {before:?}");
    };
    drop(conn);
    drop(events);
    let seen = server.await.unwrap();
    (error.kind(), seen.close_code())
}

#[tokio::test]
async fn bad_input_gets_a_typed_error_and_its_close_code() {
    let compressed = deflate(b"some text, compressed");
    let zeros = deflate(&vec![0u8; 4 << 20]);
    // (case, the 101's extensions, what follows it, max_message_size,
    // the error, the close code the server gets)
    type Case = (
        &'static str,
        &'static str,
        Vec<u8>,
        Option<usize>,
        ErrorKind,
        u16,
    );
    let cases: Vec<Case> = vec![
        (
            "a compressed frame, nothing negotiated",
            "",
            frame(FIN | RSV1 | 0x1, &compressed),
            None,
            ErrorKind::Protocol,
            1002,
        ),
        (
            "RSV1 on a ping",
            "permessage-deflate",
            frame(FIN | RSV1 | 0x9, b"x"),
            None,
            ErrorKind::Protocol,
            1002,
        ),
        (
            "RSV1 on a continuation frame",
            "permessage-deflate",
            [
                frame(RSV1 | 0x2, &compressed),
                frame(FIN | RSV1, &compressed),
            ]
            .concat(),
            None,
            ErrorKind::Protocol,
            1002,
        ),
        (
            "a new message inside a compressed one",
            "permessage-deflate",
            [frame(RSV1 | 0x1, &[]), frame(FIN | 0x1, b"plain")].concat(),
            None,
            ErrorKind::Protocol,
            1002,
        ),
        (
            "corrupt deflate data",
            "permessage-deflate",
            frame(FIN | RSV1 | 0x2, &[0xff, 0xff, 0xff, 0xff, 0x00, 0x13]),
            None,
            ErrorKind::InvalidCompressedData,
            1007,
        ),
        (
            "a decompression bomb past max_message_size",
            "permessage-deflate",
            frame(FIN | RSV1 | 0x2, &zeros),
            Some(1 << 20),
            ErrorKind::MessageTooBig,
            1009,
        ),
    ];
    for (name, extensions, after, limit, kind, code) in cases {
        let (got_kind, got_code) = bad_input(extensions, after, limit).await;
        assert_eq!((got_kind, got_code), (kind, Some(code)), "{name}");
    }
}
