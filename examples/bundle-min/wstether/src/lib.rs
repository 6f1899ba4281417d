//! The smallest useful browser app on wstether: open, upgrade, send one
//! text frame, print the echo, close — one event loop. `.ci/bundle-size`
//! measures its bundle against the same app on gloo-net (../gloo-net).
#![cfg(all(target_arch = "wasm32", target_os = "unknown"))]

use wasm_bindgen::prelude::*;
use wstether::{Connection, Event, Frame, Options};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console)]
    fn log(text: &str);
}

/// Connects to `url`, sends "hello" and logs what comes back.
#[wasm_bindgen]
pub fn run(url: &str) {
    let Ok((conn, mut events)) = Connection::open(url, Options::default()) else {
        return log("bad url");
    };
    let Ok(stream) = conn.ws_upgrade("/") else {
        return;
    };
    wasm_bindgen_futures::spawn_local(async move {
        while let Some(event) = events.recv().await {
            match event {
                Event::Upgraded { .. } => {
                    let _ = conn.ws_send(stream, Frame::text("hello"));
                }
                Event::Frame {
                    frame: Frame::Text(text),
                    ..
                } => {
                    log(&text);
                    let _ = conn.ws_send(stream, Frame::close_normal());
                }
                _ => {}
            }
        }
    });
}
