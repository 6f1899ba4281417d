//! The echo server of the native benchmarks (`benches/native.rs` and
//! `benches/load.rs` run their own binary with `--serve`): tokio-tungstenite
//! without message limits, echoing every message readable before one flush,
//! with TCP_NODELAY. Prints `PORT n`, then ends when its stdin closes (the
//! bench process exited).

use std::io::Write;

use futures::{FutureExt, SinkExt, StreamExt};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

/// Serves on `threads` runtime threads (1: a current-thread runtime).
pub fn serve(threads: usize) {
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
            .unwrap()
    };
    runtime.block_on(async {
        // The backlog holds a burst of 1,000 connects (benches/load.rs).
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener: TcpListener = socket.listen(4096).unwrap();
        println!("PORT {}", listener.local_addr().unwrap().port());
        std::io::stdout().flush().unwrap();
        tokio::spawn(async {
            let mut stdin = tokio::io::stdin();
            let mut buf = [0u8; 64];
            while stdin.read(&mut buf).await.is_ok_and(|n| n > 0) {}
            std::process::exit(0);
        });
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            tcp.set_nodelay(true).unwrap();
            tokio::spawn(async move {
                let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
                    .max_message_size(None)
                    .max_frame_size(None);
                let Ok(mut ws) =
                    tokio_tungstenite::accept_async_with_config(tcp, Some(config)).await
                else {
                    return;
                };
                while let Some(Ok(first)) = ws.next().await {
                    let mut next = Some(first);
                    while let Some(message) = next.take() {
                        let data = message.is_text() || message.is_binary();
                        if data && ws.feed(message).await.is_err() {
                            return;
                        }
                        if let Some(Some(Ok(more))) = ws.next().now_or_never() {
                            next = Some(more);
                        }
                    }
                    if ws.flush().await.is_err() {
                        return;
                    }
                }
            });
        }
    });
}
