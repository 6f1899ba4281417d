//! The Autobahn|Testsuite client conformance run in a browser, on
//! wstether's public API: the browser counterpart of
//! `examples/autobahn_client.rs` (run it with `.ci/autobahn-browser`).
//!
//! For every case the client echoes each text and binary message back, as
//! the same type, until the connection ends; Autobahn judges the rest. The
//! browser does the framing: it answers pings itself, fails the connection
//! on protocol errors itself and drops messages after our own close, so
//! some cases judge the browser rather than wstether.

use std::time::Duration;

use futures::future::{select, Either};
use gloo_timers::future::TimeoutFuture;
use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};
use wstether::{Connection, DownReason, Event, Frame, Options, Retry, StreamRef};

wasm_bindgen_test_configure!(run_in_browser);

/// `ws://127.0.0.1:PORT` of the fuzzing server, given at compile time.
const AUTOBAHN_URL: &str = env!("AUTOBAHN_URL");
const AGENT: &str = "wstether-browser";
/// A case that runs longer than this is abandoned (Autobahn then judges it).
const CASE_TIMEOUT: Duration = Duration::from_secs(60);

fn options() -> Options {
    Options::default()
        .event_queue_len(1)
        .retry(Retry::never())
        .keepalive(None)
        .max_message_size(Some(64 << 20))
        .max_frame_size(Some(64 << 20))
        .send_queue_bytes(256 << 20)
        .upgrade_timeout(Duration::from_secs(10))
}

/// Milliseconds since the page loaded.
fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// How one connection to the fuzzing server ended, in a few words.
struct Outcome {
    echoed: usize,
    status: String,
}

/// Opens `AUTOBAHN_URL/path`, echoes every text and binary message (unless
/// `first_text` is given, which receives the first text message instead),
/// and returns once the connection has ended or `CASE_TIMEOUT` passed.
async fn session(path: &str, mut first_text: Option<&mut Option<String>>, echo: bool) -> Outcome {
    let mut outcome = Outcome {
        echoed: 0,
        status: String::from("ended without a Down event"),
    };
    let base = AUTOBAHN_URL.trim_end_matches('/');
    let (conn, mut events) = match Connection::open(base, options()) {
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
                            **slot = Some(text.clone());
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
    let timer = TimeoutFuture::new(CASE_TIMEOUT.as_millis() as u32);
    let timed_out = matches!(select(Box::pin(run), timer).await, Either::Right(_));
    if timed_out {
        outcome.status = format!("timed out after {}s", CASE_TIMEOUT.as_secs());
        conn.shutdown();
    }
    outcome
}

#[wasm_bindgen_test]
async fn autobahn() {
    let mut count_text = None;
    let outcome = session("/getCaseCount", Some(&mut count_text), false).await;
    let count: u32 = count_text
        .as_deref()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or_else(|| panic!("getCaseCount gave no number ({})", outcome.status));
    console_log!("{count} cases");

    let started = now_ms();
    for case in 1..=count {
        let case_started = now_ms();
        let path = format!("/runCase?case={case}&agent={AGENT}");
        let outcome = session(&path, None, true).await;
        console_log!(
            "case {case:>3}/{count}: {} echoed, {} ({} ms)",
            outcome.echoed,
            outcome.status,
            (now_ms() - case_started) as u64
        );
    }
    console_log!(
        "ran {count} cases in {:.1} s",
        (now_ms() - started) / 1000.0
    );

    let path = format!("/updateReports?agent={AGENT}");
    let outcome = session(&path, None, false).await;
    console_log!("updateReports: {}", outcome.status);
}
