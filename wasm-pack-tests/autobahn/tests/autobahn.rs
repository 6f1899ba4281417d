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

use gloo_timers::future::TimeoutFuture;
use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};

#[path = "../../../examples/shared/autobahn_session.rs"]
mod autobahn_session;
use autobahn_session::{options, Outcome};

wasm_bindgen_test_configure!(run_in_browser);

/// `ws://127.0.0.1:PORT` of the fuzzing server, given at compile time.
const AUTOBAHN_URL: &str = env!("AUTOBAHN_URL");
const AGENT: &str = "wstether-browser";
/// A case that runs longer than this is abandoned (Autobahn then judges it).
const CASE_TIMEOUT: Duration = Duration::from_secs(60);

/// Milliseconds since the page loaded.
fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// One session with this client's options and timeout (the session
/// itself is shared with the native client).
async fn session(path: &str, first_text: Option<&mut Option<String>>, echo: bool) -> Outcome {
    let base = AUTOBAHN_URL.trim_end_matches('/');
    let timeout = TimeoutFuture::new(CASE_TIMEOUT.as_millis() as u32);
    autobahn_session::session(base, path, options(false), first_text, echo, timeout).await
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
