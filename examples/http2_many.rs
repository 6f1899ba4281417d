//! Many Websockets on one HTTP/2 connection (`Options::share_http2`,
//! docs/http2.md): 50 sockets to one server, one TCP connection.
//!
//! Runs against an embedded testkit server speaking HTTP/2:
//! `cargo run --example http2_many`.

// Native only (a tokio runtime, the testkit server): the wasm32
// `--all-targets` check sees an empty crate (`no_main`: none to find).
#![cfg_attr(browser, no_main)]
#![cfg(native)]

use wstether::{Error, Frame, Http2, Options, Socket};

/// Opens `n` sockets to `url` sharing one HTTP/2 connection; each sends
/// its number and gets it back. Returns the sockets (open) and the echoes.
pub async fn task(url: &str, n: usize) -> Result<(Vec<Socket>, Vec<Frame>), Error> {
    // task:start
    let options = Options::default().http2(Http2::Prefer).share_http2(true);
    let mut sockets = Vec::new();
    for _ in 0..n {
        sockets.push(Socket::connect(url, options.clone()).await?);
    }
    let mut echoes = Vec::new();
    for (i, socket) in sockets.iter_mut().enumerate() {
        socket.send(Frame::text(format!("feed {i}"))).await?;
        echoes.push(socket.recv().await?);
    }
    // task:end
    Ok((sockets, echoes))
}

#[tokio::main]
#[allow(dead_code)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    use wstether_testkit::{Http2 as ServerHttp2, TestServer};
    // An echo server on loopback that speaks HTTP/2 with prior knowledge.
    let server = TestServer::start_http2(ServerHttp2::On).await?;
    let (sockets, echoes) = task(&server.url("/"), 50).await?;
    println!(
        "{} Websockets, {} echoes, {} TCP connection(s) accepted by the server",
        sockets.len(),
        echoes.len(),
        server.accepted_connections()
    );
    Ok(())
}
