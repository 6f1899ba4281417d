//! The Autobahn|Testsuite client conformance run, on wstether's public API.
//!
//! Start the fuzzing server (`wstest -m fuzzingserver -s spec.json`, see
//! `.ci/autobahn`), then:
//!
//! ```text
//! cargo run --release --example autobahn_client -- 9001
//! ```
//!
//! The port comes from the first argument, else `AUTOBAHN_PORT`, else
//! 9001. For every case the client echoes each text and binary message
//! back, as the same type, until the connection ends; Autobahn judges the
//! rest (the report lands in the spec's `outdir`).
//!
//! By default it runs on tokio's current-thread runtime with an event
//! queue of one, so that each message is echoed before the next frame is
//! read: the lockstep that Autobahn's expectations assume (in cases 3.2,
//! 4.1.3, 5.15... the server sends a message and then a bad frame, and
//! wants the echo before the connection fails). `--multi-thread` runs on
//! the multi-thread runtime and `--read-ahead` keeps the default event
//! queue, so wstether reads ahead of the application as it normally does:
//! then the bad frame can fail the connection before the echo is queued,
//! and those cases are judged NON-STRICT instead of OK.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use wstether::{Connection, DownReason, Event, Frame, Options, Retry, StreamRef};

const AGENT: &str = "wstether";
/// A case that runs longer than this is abandoned (Autobahn then judges it).
const CASE_TIMEOUT: Duration = Duration::from_secs(60);

fn options(read_ahead: bool) -> Options {
    let options = if read_ahead {
        Options::default()
    } else {
        Options::default().event_queue_len(1)
    };
    options
        .retry(Retry::never())
        .keepalive(None)
        .max_message_size(Some(64 << 20))
        .max_frame_size(Some(64 << 20))
        .send_queue_bytes(256 << 20)
        .upgrade_timeout(Duration::from_secs(10))
}

/// How one connection to the fuzzing server ended, in a few words.
struct Outcome {
    echoed: usize,
    status: String,
}

/// Opens `ws://base/path`, echoes every text and binary message (unless
/// `first_text` is given, which receives the first text message instead),
/// and returns once the connection has ended.
async fn session(
    read_ahead: bool,
    base: &str,
    path: &str,
    mut first_text: Option<&mut Option<String>>,
    echo: bool,
) -> Outcome {
    let mut outcome = Outcome {
        echoed: 0,
        status: String::from("ended without a Down event"),
    };
    let (conn, mut events) = match Connection::open(base, options(read_ahead)) {
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
    if tokio::time::timeout(CASE_TIMEOUT, run).await.is_err() {
        outcome.status = format!("timed out after {}s", CASE_TIMEOUT.as_secs());
        conn.shutdown();
    }
    outcome
}

async fn run(port: u16, read_ahead: bool) -> Result<(), String> {
    let base = format!("ws://127.0.0.1:{port}");

    let mut count_text = None;
    let outcome = session(
        read_ahead,
        &base,
        "/getCaseCount",
        Some(&mut count_text),
        false,
    )
    .await;
    let count: u32 = count_text
        .as_deref()
        .and_then(|text| text.trim().parse().ok())
        .ok_or_else(|| format!("getCaseCount gave no number ({})", outcome.status))?;
    println!("{count} cases");

    let started = Instant::now();
    for case in 1..=count {
        let case_started = Instant::now();
        let path = format!("/runCase?case={case}&agent={AGENT}");
        let outcome = session(read_ahead, &base, &path, None, true).await;
        println!(
            "case {case:>3}/{count}: {} echoed, {} ({} ms)",
            outcome.echoed,
            outcome.status,
            case_started.elapsed().as_millis()
        );
    }
    println!(
        "ran {count} cases in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let path = format!("/updateReports?agent={AGENT}");
    let outcome = session(read_ahead, &base, &path, None, false).await;
    println!("updateReports: {}", outcome.status);
    Ok(())
}

fn main() -> ExitCode {
    let mut port = None;
    let mut multi_thread = false;
    let mut read_ahead = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--multi-thread" => multi_thread = true,
            "--read-ahead" => read_ahead = true,
            other => match other.parse::<u16>() {
                Ok(p) => port = Some(p),
                Err(_) => {
                    eprintln!("usage: autobahn_client [--multi-thread] [--read-ahead] [PORT]");
                    return ExitCode::from(2);
                }
            },
        }
    }
    let port = port
        .or_else(|| std::env::var("AUTOBAHN_PORT").ok()?.parse().ok())
        .unwrap_or(9001);

    let runtime = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start tokio: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(port, read_ahead)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("autobahn_client: {error}");
            ExitCode::FAILURE
        }
    }
}
