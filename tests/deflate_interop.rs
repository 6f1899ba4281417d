//! permessage-deflate against real deflate servers on loopback: Python
//! `websockets` and Node `ws` (both installed by `.ci/setup`), with
//! compression on both ways, with and without context takeover, small and
//! large messages. Each server reports the bytes on its socket, so the
//! tests check that the wire carried fewer bytes than the messages hold.
#![cfg(native)]

mod common;

use bytes::Bytes;
use common::{next, options, PeerProcess as Peer};
use wstether::{Compression, Connection, Event, Frame};

async fn start(program: &str, args: &[&str]) -> Peer {
    Peer::start(program, args).await
}

async fn python() -> Peer {
    let python = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/deflate-venv/bin/python"
    );
    assert!(
        std::path::Path::new(python).exists(),
        "{python} is missing: run .ci/setup (it installs Python websockets there)"
    );
    start(python, &["tests/deflate_peers/server.py"]).await
}

async fn node() -> Peer {
    let ws = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/node/node_modules/ws");
    assert!(
        std::path::Path::new(ws).exists(),
        "{ws} is missing: run .ci/setup (npm ci in benches/node)"
    );
    start("node", &["tests/deflate_peers/server.mjs"]).await
}

fn json(i: usize) -> String {
    let mut s = String::from("[");
    while s.len() < 1000 {
        s.push_str(&format!(
            r#"{{"id":{i},"user":"user-{i}","active":true,"score":{},"tags":["alpha","beta"]}},"#,
            i * 37 % 1000
        ));
    }
    s.push_str("{}]");
    s
}

/// Messages both ways: each echoed and compared; then the server's wire
/// counts against the payload bytes.
async fn echo_all(port: u16, compression: Compression) {
    let (conn, mut events) = Connection::open(
        &format!("ws://127.0.0.1:{port}"),
        options()
            .compression(compression)
            .max_message_size(8 << 20)
            .max_frame_size(8 << 20),
    )
    .unwrap();
    let stream = conn.ws_upgrade("/").unwrap();
    let extensions = loop {
        match next(&mut events).await {
            Event::Up { .. } => continue,
            event @ Event::Upgraded { .. } => break event.extensions().map(str::to_owned),
            other => panic!("expected Upgraded, got {other:?}"),
        }
    };
    let extensions = extensions.expect("the server accepted no extension");
    assert!(extensions.starts_with("permessage-deflate"), "{extensions}");

    let mut frames = vec![Frame::Text("hi".into()), Frame::Binary(Bytes::new())];
    frames.extend((0..50).map(|i| Frame::text(json(i))));
    frames.push(Frame::text("wstether ".repeat(120_000)));
    frames.push(Frame::Binary(Bytes::from(
        (0..300_000u32).map(|i| (i % 7) as u8).collect::<Vec<u8>>(),
    )));
    // Less regular bytes (a multiplicative hash).
    frames.push(Frame::Binary(Bytes::from(
        (0..50_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect::<Vec<u8>>(),
    )));
    let total: usize = frames
        .iter()
        .map(|f| match f {
            Frame::Text(t) => t.len(),
            Frame::Binary(b) => b.len(),
            _ => 0,
        })
        .sum();
    for frame in &frames {
        conn.send(stream, frame.clone()).await.unwrap();
        match next(&mut events).await {
            Event::Frame { frame: echoed, .. } => assert!(echoed == *frame, "echo differs"),
            other => panic!("expected the echo, got {other:?}"),
        }
    }
    conn.send(stream, Frame::Text("stats?".into()))
        .await
        .unwrap();
    let stats = match next(&mut events).await {
        Event::Frame {
            frame: Frame::Text(stats),
            ..
        } => stats,
        other => panic!("expected the stats, got {other:?}"),
    };
    let (read, written) = stats.split_once(' ').unwrap();
    let (read, written): (usize, usize) = (read.parse().unwrap(), written.parse().unwrap());
    // JSON, repeated text and patterns shrink many times over.
    assert!(
        read < total / 4,
        "the server read {read} bytes for {total} bytes of messages"
    );
    assert!(
        written < total / 4,
        "the server wrote {written} bytes for {total} bytes of messages"
    );
    println!(
        "{extensions}: {total} bytes of messages, {read} read and {written} written by the server"
    );
    conn.shutdown();
}

fn no_takeover() -> Compression {
    Compression::deflate()
        .context_takeover(false)
        .server_context_takeover(false)
}

#[tokio::test]
async fn python_websockets_with_context_takeover() {
    let peer = python().await;
    echo_all(peer.port, Compression::deflate()).await;
}

#[tokio::test]
async fn python_websockets_without_context_takeover() {
    let peer = python().await;
    echo_all(peer.port, no_takeover()).await;
}

#[tokio::test]
async fn python_websockets_with_small_windows() {
    let peer = python().await;
    echo_all(
        peer.port,
        Compression::deflate()
            .client_max_window_bits(9)
            .server_max_window_bits(Some(9))
            .level(9),
    )
    .await;
}

#[tokio::test]
async fn node_ws_with_context_takeover() {
    let peer = node().await;
    echo_all(peer.port, Compression::deflate()).await;
}

#[tokio::test]
async fn node_ws_without_context_takeover() {
    let peer = node().await;
    echo_all(peer.port, no_takeover()).await;
}

#[tokio::test]
async fn node_ws_with_small_windows() {
    let peer = node().await;
    echo_all(
        peer.port,
        Compression::deflate()
            .client_max_window_bits(10)
            .server_max_window_bits(Some(10)),
    )
    .await;
}
