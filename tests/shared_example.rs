//! The shared example (`tests/shared/echo_session.rs`) natively, against
//! the testkit server; the browser runs the same file in
//! `wasm-pack-tests/tests/shared_example.rs`.
#![cfg(native)]

#[path = "shared/echo_session.rs"]
mod echo_session;

use std::time::Duration;

use wstether::Frame;
use wstether_testkit::TestServer;

#[tokio::test]
async fn shared_echo_session_runs_natively() {
    let server = TestServer::start().await.unwrap();
    let frames = vec![
        Frame::text("one"),
        Frame::binary(vec![1, 2, 3]),
        Frame::text("three"),
    ];
    let seen = tokio::time::timeout(
        Duration::from_secs(10),
        echo_session::echo_session(&server.url(""), frames.clone()),
    )
    .await
    .expect("the echo session timed out")
    .expect("the echo session failed");
    assert_eq!(seen.protocol.as_deref(), Some("chat"));
    assert_eq!(seen.echoes, frames);
    assert!(seen.clean_end, "{seen:?}");
}
