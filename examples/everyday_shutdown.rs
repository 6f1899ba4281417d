//! Everyday task 3: graceful shutdown: read messages until told to stop,
//! then close with a close handshake (docs/everyday-tasks.md).
//!
//! Runs against an embedded testkit server; the shutdown signal is Ctrl-C
//! or half a second, whichever comes first:
//! `cargo run --example everyday_shutdown`.

// Native only (a tokio runtime, the testkit server): the wasm32
// `--all-targets` check sees an empty crate (`no_main`: none to find).
#![cfg_attr(browser, no_main)]
#![cfg(native)]

use std::future::Future;

use futures::StreamExt;
use wstether::{CloseCode, Error, Options, Socket};

/// Prints messages until `shutdown` resolves, then closes with 1001.
pub async fn task(url: &str, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    // task:start
    let mut socket = Socket::connect(url, Options::default()).await?;
    let items = socket.by_ref().take_until(shutdown);
    items.for_each(|m| async move { println!("{m:?}") }).await;
    socket.close(CloseCode::GOING_AWAY, "shutting down").await
    // task:end
}

#[tokio::main]
#[allow(dead_code)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Three messages from the server, then quiet.
    let server = wstether_testkit::TestServer::start().await?;
    let shutdown = async {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
        }
    };
    task(&server.url("/?send=3"), shutdown).await?;
    println!("closed with {:?}", server.client_close_codes());
    Ok(())
}
