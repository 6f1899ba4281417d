//! The wstether demo: an embedded testkit server on loopback, a client that
//! upgrades, sends, receives, survives a server restart by reconnecting and
//! upgrading again (as Gun's guide says), then closes cleanly.
//!
//! Run it with `cargo run --example demo`.
//!
//! With `RUST_LOG` set, wstether's `tracing` output is printed too, every
//! step in the connection's span (`conn`, `host`, `port`, `attempt`):
//! `RUST_LOG=wstether=debug cargo run --example demo`
//! (`trace` adds every frame sent and received).
//!
//! With `--web` it serves the browser demo instead (`www/`, the wasm build
//! through the JavaScript facade), beside a testkit server: see `web.rs`
//! and `cargo run --example demo -- --web --help`.

// Native only (a tokio runtime, the testkit server): the wasm32
// `--all-targets` check sees an empty crate (`no_main`: none to find).
#![cfg_attr(browser, no_main)]
#![cfg(native)]

mod web;

use std::time::Duration;

use wstether::{Connection, Event, Frame, Keepalive, Options, Retry, Upgrade};
use wstether_testkit::TestServer;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("RUST_LOG").is_some() {
        // tracing-subscriber is a dev-dependency: examples may use it,
        // the library never does.
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_target(false)
            .init();
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|arg| arg == "--web") {
        return web::run(&args).await;
    }
    native().await
}

/// The native demo (no arguments).
async fn native() -> Result<(), Box<dyn std::error::Error>> {
    let server = TestServer::start().await?;
    println!("testkit server on {}", server.url(""));

    let options = Options::default()
        .retry(Retry::default().initial_delay(Duration::from_millis(200)))
        .keepalive(Keepalive::every(Duration::from_millis(500)).timeout(Duration::from_secs(2)));
    let (conn, mut events) = Connection::open(&server.url(""), options)?;
    let upgrade = Upgrade::new("/chat").header("sec-websocket-protocol", "mychat");
    let mut stream = conn.ws_upgrade_with(upgrade.clone())?;
    let mut restarted = false;

    let started = std::time::Instant::now();
    let stamp = || format!("[{:>6.3}s]", started.elapsed().as_secs_f64());
    while let Some(event) = events.recv().await {
        match &event {
            Event::Up { attempt } => println!("{} Up (attempt {attempt})", stamp()),
            Event::Upgraded {
                stream: upgraded,
                protocol,
                ..
            } => {
                println!("{} Upgraded {upgraded} (protocol {protocol:?})", stamp());
                if !restarted {
                    conn.ws_send(
                        stream,
                        [Frame::text("Hello!"), Frame::binary(vec![1, 2, 3])],
                    )?;
                } else {
                    conn.ws_send(stream, [Frame::text("back again"), Frame::close_normal()])?;
                }
            }
            Event::Frame { frame, .. } => {
                println!("{} Frame {frame:?}", stamp());
                if !restarted && matches!(frame, Frame::Binary(_)) {
                    println!("{} -- restarting the server --", stamp());
                    restarted = true;
                    server.stop().await;
                    server.restart().await?;
                }
            }
            Event::Down {
                reason,
                killed_streams,
                unsent,
                will_reconnect,
            } => {
                let killed: Vec<String> = killed_streams.iter().map(|s| s.to_string()).collect();
                println!(
                    "{} Down: {reason} (killed [{}], {} unsent, reconnect: {will_reconnect})",
                    stamp(),
                    killed.join(", "),
                    unsent.len()
                );
                if *will_reconnect {
                    // Gun does not upgrade again after a reconnect: we ask
                    // now, and the upgrade waits for the next Up.
                    stream = conn.ws_upgrade_with(upgrade.clone())?;
                    println!("{} re-upgrade asked as {stream}", stamp());
                }
            }
            Event::Reconnecting { attempt, delay } => {
                println!("{} Reconnecting: attempt {attempt} in {delay:?}", stamp())
            }
            other => println!("{} {other:?}", stamp()),
        }
    }
    println!(
        "{} events ended: the close frame stopped the connection",
        stamp()
    );
    Ok(())
}
