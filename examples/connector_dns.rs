//! A DNS override with `Options::connector`: the URL names a host that no
//! resolver knows, and the connector sends it to 127.0.0.1, where an
//! embedded testkit server listens. The `Host` header (and, for `wss://`,
//! the certificate check) still use the URL's host.
//!
//! ```text
//! cargo run --example connector_dns
//! ```

// Native only (a tokio runtime, the testkit server): the wasm32
// `--all-targets` check sees an empty crate (`no_main`: none to find).
#![cfg_attr(browser, no_main)]
#![cfg(native)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use wstether::{ConnectTarget, Event, Frame, Options};
use wstether_testkit::TestServer;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    run().await
}

/// Echoes one message through the override; returns once it came back.
pub async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let server = TestServer::start().await?;
    let port = server.addr().port();

    // Your own table of names: everything else resolves as usual.
    let overrides: Arc<HashMap<&str, IpAddr>> = Arc::new(HashMap::from([(
        "chat.internal",
        IpAddr::V4(Ipv4Addr::LOCALHOST),
    )]));
    let options = Options::default().connector(move |target: ConnectTarget| {
        let overrides = overrides.clone();
        async move {
            match overrides.get(target.host()) {
                Some(ip) => {
                    tokio::net::TcpStream::connect(SocketAddr::new(*ip, target.port())).await
                }
                None => tokio::net::TcpStream::connect((target.host(), target.port())).await,
            }
        }
    });

    let url = format!("ws://chat.internal:{port}/room");
    let (conn, mut events, stream) = wstether::connect(&url, options).await?;
    conn.ws_send(stream, Frame::text("hello through a DNS override"))?;
    while let Some(event) = events.recv().await {
        if let Event::Frame { frame, .. } = event {
            println!("echoed: {frame:?}");
            break;
        }
    }
    println!(
        "the server saw Host: {:?}",
        server.requests()[0].header("host")
    );
    conn.shutdown();
    Ok(())
}
