//! Everyday task 2: reconnect with fresh credentials, asked for on every
//! attempt (docs/everyday-tasks.md).
//!
//! Runs against an embedded testkit server that sends one message, then
//! closes with 1012 (service restart), on every connection; it stops after
//! the third upgrade:
//! `cargo run --example everyday_credentials`.

// Native only (a tokio runtime, the testkit server): the wasm32
// `--all-targets` check sees an empty crate (`no_main`: none to find).
#![cfg_attr(browser, no_main)]
#![cfg(native)]

use std::sync::atomic::{AtomicU32, Ordering};

use futures::StreamExt;
use wstether::{Error, Options, Socket, Upgrade};

/// A new token on every call (an OAuth refresh, say).
pub fn fresh_token() -> String {
    static ISSUED: AtomicU32 = AtomicU32::new(0);
    format!("Bearer token-{}", ISSUED.fetch_add(1, Ordering::Relaxed))
}

/// Prints every message, across reconnects, each connection upgrading
/// `path` with a fresh token; until the socket closes for good.
pub async fn task(url: &str, path: &'static str) -> Result<(), Error> {
    // task:start
    let upgrade = move || Upgrade::new(path).header("authorization", fresh_token());
    let socket = Socket::connect(url, Options::default().auto_upgrade_with_sync(upgrade)).await?;
    socket.for_each(|m| async move { println!("{m:?}") }).await;
    Ok(())
    // task:end
}

#[tokio::main]
#[allow(dead_code)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = wstether_testkit::TestServer::start().await?;
    let url = server.url("");
    tokio::select! {
        ended = task(&url, "/?send=1&close=1012") => ended?,
        () = server.wait_for_requests(3) => {}
    }
    for request in server.requests() {
        println!("upgrade with {:?}", request.header("authorization"));
    }
    Ok(())
}
