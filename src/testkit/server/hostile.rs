//! The test server's hostile writers: floods, trickles and tiny frames
//! that a client must survive.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use tokio::time::Instant;

use super::http::hold;
use super::{tick, Stream, FLOOD_BATCH_BYTES};
use crate::testkit::script::{binary_header, burst_payload, server_frame};

/// `ping_flood=1`: writes small pings as fast as the socket takes them and
/// never reads again, until the write fails (the client went away).
pub(super) async fn ping_flood(stream: &mut Stream, payload: &[u8]) {
    let mut ping = vec![0x89, payload.len() as u8];
    ping.extend_from_slice(payload);
    let batch = ping.repeat(FLOOD_BATCH_BYTES / ping.len());
    while stream.write_all(&batch).await.is_ok() {
        if stream.flush().await.is_err() {
            break;
        }
    }
}

/// `trickle_ms=MS`: writes one binary message of `size` bytes (header
/// included in the trickle) one byte every `every`, reading nothing; then
/// holds the connection, discarding whatever comes. The payload is that of
/// frame 0 of a `send` burst (`"0 xxx…"`).
pub(super) async fn trickle(stream: &mut Stream, every: Duration, size: usize) {
    let payload = burst_payload(0, size);
    let mut bytes = binary_header(payload.len() as u64);
    bytes.extend_from_slice(payload.as_bytes());
    let mut ticker = tokio::time::interval_at(Instant::now() + every, every);
    for byte in bytes {
        ticker.tick().await;
        if stream.write_all(&[byte]).await.is_err() || stream.flush().await.is_err() {
            return;
        }
    }
    hold(stream).await
}

/// `tiny_frames=N`: N 1-byte binary frames, one write (and flush) each
/// (`tiny_pace_ms` apart, if given),
/// so that they tend to arrive one per read; then the connection stays
/// open, reading nothing, until the client leaves or the server drops it.
pub(super) async fn tiny_frames(stream: &mut Stream, n: u64, pace: Option<Duration>) {
    let frame = server_frame(0x2, b"t");
    let mut ticker = pace.map(|every| tokio::time::interval_at(Instant::now() + every, every));
    for _ in 0..n {
        if stream.write_all(&frame).await.is_err() || stream.flush().await.is_err() {
            return;
        }
        if ticker.is_some() {
            tick(&mut ticker).await;
        }
    }
    std::future::pending().await
}
