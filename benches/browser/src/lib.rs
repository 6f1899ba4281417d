//! wstether's side of the browser benchmark: a scenario on wstether's wasm
//! build, in three steps (prepare, go, finish) so that the driver can read
//! the renderer's CPU time around the measured part only.
//! The page (`page/bench.js`) runs the same scenario on the raw JS
//! `WebSocket`; `benches/node/browser-bench.mjs` drives both in headless
//! Chromium over CDP and reads the renderer's CPU time around each run.
#![cfg(all(target_arch = "wasm32", target_os = "unknown"))]

use std::cell::RefCell;

use futures::StreamExt;
use wasm_bindgen::prelude::*;
use wstether::{Event, Frame, Options};

fn payload(size: usize, i: usize) -> Vec<u8> {
    let mut data = format!("{i} ").into_bytes();
    data.resize(size.max(data.len()), b'x');
    data
}

fn now() -> f64 {
    js_sys::Reflect::get(&js_sys::global(), &"performance".into())
        .ok()
        .and_then(|p| js_sys::Reflect::get(&p, &"now".into()).ok().map(|f| (p, f)))
        .and_then(|(p, f)| f.unchecked_into::<js_sys::Function>().call0(&p).ok())
        .and_then(|v| v.as_f64())
        .expect("performance.now")
}

struct Prepared {
    conn: wstether::Connection,
    events: wstether::Events,
    stream: wstether::StreamRef,
    frames: Vec<Frame>,
    pipelined: bool,
}

struct Finished {
    conn: wstether::Connection,
    events: wstether::Events,
}

thread_local! {
    static PREPARED: RefCell<Option<Prepared>> = const { RefCell::new(None) };
    static FINISHED: RefCell<Option<Finished>> = const { RefCell::new(None) };
}

fn js_error(e: impl std::fmt::Display) -> JsValue {
    JsValue::from_str(&e.to_string())
}

/// Connects to the echo server at `url` and builds `count` messages of
/// `size` bytes (text or binary), out of the measured part: the driver
/// reads the renderer's CPU time between this and [`wstether_go`].
#[wasm_bindgen]
pub async fn wstether_prepare(
    url: String,
    pipelined: bool,
    size: usize,
    text: bool,
    count: usize,
) -> Result<(), JsValue> {
    let options = Options::default()
        .send_queue_bytes(8 << 20)
        .max_message_size(wstether::MAX_MESSAGE_SIZE_CEILING)
        .max_frame_size(wstether::MAX_MESSAGE_SIZE_CEILING);
    let (conn, events, stream) = wstether::connect(&url, options).await.map_err(js_error)?;
    let frames: Vec<Frame> = (0..count)
        .map(|i| {
            let data = payload(size, i);
            if text {
                Frame::Text(String::from_utf8(data).unwrap().into())
            } else {
                Frame::Binary(data.into())
            }
        })
        .collect();
    PREPARED.with(|p| {
        *p.borrow_mut() = Some(Prepared {
            conn,
            events,
            stream,
            frames,
            pipelined,
        })
    });
    Ok(())
}

/// Runs the prepared scenario: the messages sent one at a time after each
/// echo, or all pipelined. Resolves to `[milliseconds, echoes received]`.
#[wasm_bindgen]
pub async fn wstether_go() -> Result<js_sys::Array, JsValue> {
    let Prepared {
        conn,
        mut events,
        stream,
        frames,
        pipelined,
    } = PREPARED
        .with(|p| p.borrow_mut().take())
        .ok_or_else(|| js_error("nothing prepared"))?;
    let count = frames.len();
    let mut received = 0usize;
    let started = now();
    if pipelined {
        let sender = conn.clone();
        let send_all = async move {
            for frame in frames {
                sender
                    .send(stream, frame)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        };
        let receive_all = async {
            while received < count {
                match events.next().await {
                    Some(Event::Frame { .. }) => received += 1,
                    other => return Err(format!("echo expected, got {other:?}")),
                }
            }
            Ok(())
        };
        let (sent, echoed) = futures::join!(send_all, receive_all);
        sent.and(echoed).map_err(js_error)?;
    } else {
        for frame in frames {
            conn.ws_send(stream, frame).map_err(js_error)?;
            match events.next().await {
                Some(Event::Frame { .. }) => received += 1,
                other => return Err(js_error(format!("echo expected, got {other:?}"))),
            }
        }
    }
    let elapsed = now() - started;
    FINISHED.with(|f| *f.borrow_mut() = Some(Finished { conn, events }));
    Ok(js_sys::Array::of2(
        &elapsed.into(),
        &(received as f64).into(),
    ))
}

/// Closes the connection of the last run and waits for its end.
#[wasm_bindgen]
pub async fn wstether_finish() -> Result<(), JsValue> {
    let Finished { conn, mut events } = FINISHED
        .with(|f| f.borrow_mut().take())
        .ok_or_else(|| js_error("nothing ran"))?;
    conn.shutdown();
    while events.next().await.is_some() {}
    Ok(())
}
