//! The shared example (`../tests/shared/echo_session.rs`), unchanged, in a
//! browser; natively it runs in the root crate's `tests/shared_example.rs`.

mod common;

#[path = "../../tests/shared/echo_session.rs"]
mod echo_session;

use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use wstether::Frame;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn shared_echo_session_runs_in_the_browser() {
    let frames = vec![
        Frame::text("one"),
        Frame::binary(vec![1, 2, 3]),
        Frame::text("three"),
    ];
    let seen = common::within(
        common::DEADLINE,
        echo_session::echo_session(&common::ws_url("/"), frames.clone()),
    )
    .await
    .expect("the echo session failed");
    assert_eq!(seen.protocol.as_deref(), Some("chat"));
    assert_eq!(seen.echoes, frames);
    assert!(seen.clean_end, "{seen:?}");
}
