//! User code that compiles unchanged natively and in a browser: a plain
//! async function using only wstether's public API. Included by the native
//! test `tests/shared_example.rs` and by the browser test
//! `wasm-pack-tests/tests/shared_example.rs`.

use futures::StreamExt;
use wstether::{Connection, DownReason, Event, Frame, Options, Retry, Upgrade};

/// What one echo session saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    /// The subprotocol the server chose.
    pub protocol: Option<String>,
    /// The frames that came back, in order.
    pub echoes: Vec<Frame>,
    /// Whether the connection ended by our shutdown, not reconnecting.
    pub clean_end: bool,
}

/// Opens a connection to `url` (`ws://host:port`), upgrades `/` offering
/// subprotocol `chat`, sends `frames`, collects as many echoes, then shuts
/// down and waits for the end of the event stream.
pub async fn echo_session(url: &str, frames: Vec<Frame>) -> Result<Seen, wstether::Error> {
    let options = Options::default().retry(Retry::never()).no_keepalive();
    let (conn, mut events) = Connection::open(url, options)?;
    let stream = conn.ws_upgrade_with(Upgrade::new("/").protocol("chat"))?;
    let mut seen = Seen {
        protocol: None,
        echoes: Vec::new(),
        clean_end: false,
    };
    let expected = frames.len();
    let mut frames = Some(frames);
    while let Some(event) = events.next().await {
        match event {
            Event::Upgraded {
                stream: upgraded,
                protocol,
                ..
            } if upgraded == stream => {
                seen.protocol = protocol;
                if let Some(frames) = frames.take() {
                    conn.ws_send(stream, frames)?;
                }
                if expected == 0 {
                    conn.shutdown();
                }
            }
            Event::UpgradeFailed { error, .. } => return Err(error),
            Event::Frame { frame, .. } if !frame.is_control() => {
                seen.echoes.push(frame);
                if seen.echoes.len() == expected {
                    conn.shutdown();
                }
            }
            Event::Down {
                reason,
                will_reconnect,
                ..
            } => {
                seen.clean_end = matches!(reason, DownReason::Shutdown) && !will_reconnect;
            }
            _ => {}
        }
    }
    Ok(seen)
}
