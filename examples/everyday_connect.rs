//! Everyday task 1: connect, send, receive (docs/everyday-tasks.md).
//!
//! Runs against an embedded testkit server:
//! `cargo run --example everyday_connect`.

// Native only (a tokio runtime, the testkit server): the wasm32
// `--all-targets` check sees an empty crate (`no_main`: none to find).
#![cfg_attr(browser, no_main)]
#![cfg(native)]

use wstether::{Error, Frame, Options, Socket};

/// Connects, sends "hello" and returns the first frame that comes back.
pub async fn task(url: &str) -> Result<Frame, Error> {
    // task:start
    let mut socket = Socket::connect(url, Options::default()).await?;
    socket.send(Frame::text("hello")).await?;
    socket.recv().await
    // task:end
}

#[tokio::main]
#[allow(dead_code)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // An echo server on loopback.
    let server = wstether_testkit::TestServer::start().await?;
    println!("{:?}", task(&server.url("/")).await?);
    Ok(())
}
