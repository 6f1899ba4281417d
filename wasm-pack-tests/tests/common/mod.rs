//! Helpers of the browser tests: the testkit's URLs, its control API and
//! waiting for events with a deadline that fails the test.
#![allow(dead_code)]

use std::time::Duration;

use futures::future::{select, Either};
use futures::StreamExt;
use gloo_timers::future::TimeoutFuture;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wstether::{Event, Events};

/// `ws://127.0.0.1:PORT` of the testkit server, given at compile time.
pub const TESTKIT: &str = env!("WSTETHER_TESTKIT_URL");

/// How long any single wait may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(15);

/// The testkit's WebSocket URL for `path` (with its query).
pub fn ws_url(path: &str) -> String {
    format!("{}{path}", TESTKIT.trim_end_matches('/'))
}

/// Calls the testkit's HTTP control API (`/_control/...`) and returns the body.
pub async fn control(path: &str) -> String {
    let url = format!(
        "http://{}{path}",
        TESTKIT.trim_start_matches("ws://").trim_end_matches('/')
    );
    let window = web_sys::window().expect("a window");
    let response = within(DEADLINE, JsFuture::from(window.fetch_with_str(&url)))
        .await
        .unwrap_or_else(|e| panic!("fetch {url}: {e:?}"));
    let response: web_sys::Response = response.dyn_into().expect("a Response");
    assert!(response.ok(), "{url} answered {}", response.status());
    let text = response.text().expect("text()");
    let text = within(DEADLINE, JsFuture::from(text))
        .await
        .unwrap_or_else(|e| panic!("body of {url}: {e:?}"));
    text.as_string().expect("a string body")
}

/// A number in the testkit's stats JSON (`{"accepted":N,...}`).
pub fn stat(json: &str, name: &str) -> u64 {
    let key = format!("\"{name}\":");
    let start = json
        .find(&key)
        .unwrap_or_else(|| panic!("{name} in {json}"))
        + key.len();
    json[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("{name} in {json}"))
}

/// Awaits `future`, failing the test after `limit`.
pub async fn within<F: std::future::Future>(limit: Duration, future: F) -> F::Output {
    let timer = TimeoutFuture::new(limit.as_millis() as u32);
    match select(Box::pin(future), timer).await {
        Either::Left((output, _)) => output,
        Either::Right(((), _)) => panic!("timed out after {limit:?}"),
    }
}

/// The next event; fails the test on a timeout or the end of the stream.
pub async fn next(events: &mut Events) -> Event {
    let timer = TimeoutFuture::new(DEADLINE.as_millis() as u32);
    match select(events.next(), timer).await {
        Either::Left((Some(event), _)) => event,
        Either::Left((None, _)) => panic!("the event stream ended"),
        Either::Right(((), _)) => panic!("no event within {DEADLINE:?}"),
    }
}

/// Waits for the end of the event stream; fails on any further event but
/// those `allowed`, or a timeout.
pub async fn expect_end(events: &mut Events, allowed: impl Fn(&Event) -> bool) {
    loop {
        let timer = TimeoutFuture::new(DEADLINE.as_millis() as u32);
        match select(events.next(), timer).await {
            Either::Left((None, _)) => return,
            Either::Left((Some(event), _)) if allowed(&event) => {}
            Either::Left((Some(event), _)) => panic!("expected the end, got {event:?}"),
            Either::Right(((), _)) => panic!("the event stream did not end within {DEADLINE:?}"),
        }
    }
}
