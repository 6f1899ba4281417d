//! Everyday task 4: back-pressure: send many messages, each waiting for
//! room in the bounded send queue, then close once all are written
//! (docs/everyday-tasks.md).
//!
//! Runs against an embedded testkit server:
//! `cargo run --example everyday_backpressure`.

// Native only (a tokio runtime, the testkit server): the wasm32
// `--all-targets` check sees an empty crate (`no_main`: none to find).
#![cfg_attr(browser, no_main)]
#![cfg(native)]

use futures::{stream, StreamExt};
use wstether::{Error, Frame, Options, Socket};

/// Sends `count` messages; each waits while the send queue is full; then
/// closes with 1000, after every message is written.
pub async fn task(url: &str, count: usize) -> Result<(), Error> {
    // task:start
    let socket = Socket::connect(url, Options::default()).await?;
    let messages = stream::iter(0..count).map(|i| Ok(Frame::text(format!("message {i}"))));
    messages.forward(socket).await
    // task:end
}

#[tokio::main]
#[allow(dead_code)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = wstether_testkit::TestServer::start().await?;
    task(&server.url("/"), 1_000).await?;
    println!("the server received {} messages", server.frames_received());
    Ok(())
}
