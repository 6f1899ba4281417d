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

// Native only (a tokio runtime, the testkit server): the wasm32
// `--all-targets` check sees an empty crate (`no_main`: none to find).
#![cfg_attr(browser, no_main)]
#![cfg(native)]

use std::process::ExitCode;
use std::time::{Duration, Instant};

#[path = "shared/autobahn_session.rs"]
mod autobahn_session;
use autobahn_session::{options, Outcome};

const AGENT: &str = "wstether";
/// A case that runs longer than this is abandoned (Autobahn then judges it).
const CASE_TIMEOUT: Duration = Duration::from_secs(60);

/// One session with this client's options and timeout (the session
/// itself is shared with the browser client).
async fn session(
    read_ahead: bool,
    base: &str,
    path: &str,
    first_text: Option<&mut Option<String>>,
    echo: bool,
) -> Outcome {
    let timeout = tokio::time::sleep(CASE_TIMEOUT);
    autobahn_session::session(base, path, options(read_ahead), first_text, echo, timeout).await
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
