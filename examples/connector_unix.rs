//! A Unix socket under the WebSocket with `Options::connector`: an
//! embedded testkit server listens on a Unix socket, and the connector
//! opens it for every attempt (the URL's host goes in the `Host` header
//! only). Unix only.
//!
//! ```text
//! cargo run --example connector_unix
//! ```

// Native only (a tokio runtime, the testkit server): the wasm32
// `--all-targets` check sees an empty crate (`no_main`: none to find).
#![cfg_attr(browser, no_main)]
#![cfg(native)]

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    run().await
}

/// Echoes one message over the Unix socket; returns once it came back.
#[cfg(unix)]
pub async fn run() -> Result<(), Box<dyn std::error::Error>> {
    use wstether::{ConnectTarget, Event, Frame, Options};
    use wstether_testkit::TestServer;

    let path = std::env::temp_dir().join(format!("wstether-example-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let server = TestServer::start().await?;
    server.listen_unix(&path)?;

    let socket = path.clone();
    let options = Options::default()
        .connector(move |_target: ConnectTarget| tokio::net::UnixStream::connect(socket.clone()));
    let (conn, mut events, stream) = wstether::connect("ws://localhost/app", options).await?;
    conn.ws_send(stream, Frame::text("hello over a Unix socket"))?;
    while let Some(event) = events.recv().await {
        if let Event::Frame { frame, .. } = event {
            println!("echoed: {frame:?}");
            break;
        }
    }
    conn.shutdown();
    std::fs::remove_file(&path)?;
    Ok(())
}

#[cfg(not(unix))]
pub async fn run() -> Result<(), Box<dyn std::error::Error>> {
    println!("Unix sockets only exist on Unix");
    Ok(())
}
