//! One Autobahn session on wstether's public API, the same code on both
//! targets: used by the native client (`examples/autobahn_client.rs`) and
//! by the browser one (`wasm-pack-tests/autobahn/`).

use std::future::Future;
use std::time::Duration;

use futures::future::{select, Either};
use wstether::{Compression, Connection, DownReason, Event, Frame, Options, Retry, StreamRef};

/// The options of every session: no retry, no keepalive, limits large
/// enough for Autobahn's biggest cases, permessage-deflate offered (cases
/// 12.* and 13.*; natively wstether's layer does it, in a browser the
/// browser offers it whatever the option says). Without `read_ahead` the event
/// queue holds one event, so each message is echoed before the next frame
/// is read (the lock-step Autobahn's expectations assume).
pub fn options(read_ahead: bool) -> Options {
    let options = if read_ahead {
        Options::default()
    } else {
        Options::default().event_queue_len(1)
    };
    options
        .retry(Retry::never())
        .no_keepalive()
        .max_message_size(64 << 20)
        .max_frame_size(64 << 20)
        .send_queue_bytes(256 << 20)
        .upgrade_timeout(Duration::from_secs(10))
        .compression(Compression::deflate())
}

/// How one connection to the fuzzing server ended, in a few words.
pub struct Outcome {
    /// Messages echoed back.
    pub echoed: usize,
    /// How it ended.
    pub status: String,
}

/// Opens `base` + `path`, echoes every text and binary message (unless
/// `first_text` is given, which receives the first text message instead),
/// and returns once the connection has ended or `timeout` is ready.
pub async fn session(
    base: &str,
    path: &str,
    options: Options,
    mut first_text: Option<&mut Option<String>>,
    echo: bool,
    timeout: impl Future<Output = ()>,
) -> Outcome {
    let mut outcome = Outcome {
        echoed: 0,
        status: String::from("ended without a Down event"),
    };
    let (conn, mut events) = match Connection::open(base, options) {
        Ok(opened) => opened,
        Err(error) => {
            outcome.status = format!("open failed: {error}");
            return outcome;
        }
    };
    let stream: StreamRef = match conn.ws_upgrade(path) {
        Ok(stream) => stream,
        Err(error) => {
            outcome.status = format!("upgrade refused locally: {error}");
            return outcome;
        }
    };
    let run = async {
        while let Some(event) = events.recv().await {
            match event {
                Event::Frame { frame, .. } => {
                    if let (Frame::Text(text), Some(slot)) = (&frame, first_text.as_mut()) {
                        if slot.is_none() {
                            **slot = Some(text.to_string());
                        }
                    }
                    let reply = match frame {
                        Frame::Text(_) | Frame::Binary(_) if echo => frame,
                        _ => continue,
                    };
                    match conn.send(stream, reply).await {
                        Ok(()) => outcome.echoed += 1,
                        // The connection is going down: its Down event follows.
                        Err(error) => outcome.status = format!("send failed: {error}"),
                    }
                }
                Event::UpgradeFailed { error, .. } => {
                    outcome.status = format!("upgrade failed: {error}");
                }
                Event::Down {
                    reason,
                    will_reconnect,
                    ..
                } => {
                    outcome.status = match reason {
                        DownReason::ClosedByPeer(close) => format!("closed {}", close.code),
                        DownReason::Error(error) => format!("error: {error}"),
                        other => other.to_string(),
                    };
                    if !will_reconnect {
                        break;
                    }
                }
                _ => {}
            }
        }
    };
    let timed_out = matches!(
        select(Box::pin(run), Box::pin(timeout)).await,
        Either::Right(_)
    );
    if timed_out {
        outcome.status = String::from("timed out");
        conn.shutdown();
    }
    outcome
}
