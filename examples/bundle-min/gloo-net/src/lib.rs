//! The anchor of `.ci/bundle-size`: the app of ../wstether on gloo-net
//! (open, send one text message, print the echo, close).
#![cfg(all(target_arch = "wasm32", target_os = "unknown"))]

use futures::{SinkExt, StreamExt};
use gloo_net::websocket::{futures::WebSocket, Message};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console)]
    fn log(text: &str);
}

/// Connects to `url`, sends "hello" and logs what comes back.
#[wasm_bindgen]
pub fn run(url: &str) {
    let Ok(ws) = WebSocket::open(url) else {
        return log("bad url");
    };
    let (mut write, mut read) = ws.split();
    wasm_bindgen_futures::spawn_local(async move {
        let _ = write.send(Message::Text("hello".into())).await;
        while let Some(message) = read.next().await {
            if let Ok(Message::Text(text)) = message {
                log(&text);
                let _ = write.close().await;
                break;
            }
        }
    });
}
