//! wstether's side of the browser benchmark: a scenario on wstether's wasm
//! build, in three steps (prepare, go, finish) so that the driver can read
//! the renderer's CPU time around the measured part only.
//! Here too the floor (`mod floor`): the same scenario on bare web-sys.
//! The page (`page/bench.js`) runs it on the raw JS `WebSocket`;
//! `benches/node/browser-bench.mjs` drives the three in headless Chromium
//! over CDP and reads the renderer's CPU time around each run.
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

/// The floor: the same scenario written in Rust directly on web-sys, the
/// least a wasm client can do (no driver, no tasks, no queues: the
/// `message` callback reads the data and sends the next message itself).
/// wstether ÷ floor is what wstether's own machinery costs; floor ÷ raw JS
/// is the price of the wasm ↔ JS boundary.
mod floor {
    use std::cell::RefCell;
    use std::rc::Rc;

    use futures::channel::oneshot;
    use wasm_bindgen::prelude::*;
    use web_sys::{BinaryType, MessageEvent, WebSocket};

    use super::{js_error, now, payload};

    enum Messages {
        Text(Vec<String>),
        Binary(Vec<Vec<u8>>),
    }

    impl Messages {
        fn len(&self) -> usize {
            match self {
                Messages::Text(m) => m.len(),
                Messages::Binary(m) => m.len(),
            }
        }

        fn send(&self, ws: &WebSocket, i: usize) -> Result<(), JsValue> {
            match self {
                Messages::Text(m) => ws.send_with_str(&m[i]),
                Messages::Binary(m) => ws.send_with_u8_array(&m[i]),
            }
        }
    }

    #[wasm_bindgen]
    extern "C" {
        /// `Uint8Array.prototype.set.call(dst, src)`: one copy into wasm memory.
        #[wasm_bindgen(js_namespace = Uint8Array, js_name = "prototype.set.call")]
        fn copy_into(dst: &mut [u8], src: &js_sys::Uint8Array);
    }

    /// An `ArrayBuffer` copied into wasm memory: three crossings (a view,
    /// its length, the copy) where `Uint8Array::to_vec` makes five.
    fn read_binary(data: &JsValue) -> Vec<u8> {
        let view = js_sys::Uint8Array::new(data);
        let mut bytes = vec![0; view.length() as usize];
        copy_into(&mut bytes, &view);
        bytes
    }

    struct Prepared {
        ws: WebSocket,
        messages: Messages,
        pipelined: bool,
    }

    thread_local! {
        static PREPARED: RefCell<Option<Prepared>> = const { RefCell::new(None) };
        static FINISHED: RefCell<Option<WebSocket>> = const { RefCell::new(None) };
    }

    /// Opens the socket and builds the messages (not measured).
    #[wasm_bindgen]
    pub async fn floor_prepare(
        url: String,
        pipelined: bool,
        size: usize,
        text: bool,
        count: usize,
    ) -> Result<(), JsValue> {
        let messages = if text {
            Messages::Text(
                (0..count)
                    .map(|i| String::from_utf8(payload(size, i)).unwrap())
                    .collect(),
            )
        } else {
            Messages::Binary((0..count).map(|i| payload(size, i)).collect())
        };
        let ws = WebSocket::new(&url)?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        let (tx, rx) = oneshot::channel::<Result<(), JsValue>>();
        let tx = Rc::new(RefCell::new(Some(tx)));
        let done = move |r| {
            if let Some(tx) = tx.borrow_mut().take() {
                let _ = tx.send(r);
            }
        };
        let on_open = {
            let done = done.clone();
            Closure::<dyn FnMut()>::new(move || done(Ok(())))
        };
        let on_error =
            Closure::<dyn FnMut()>::new(move || done(Err(js_error("floor websocket error"))));
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        rx.await.map_err(|_| js_error("floor: no open"))??;
        ws.set_onopen(None);
        ws.set_onerror(None);
        PREPARED.with(|p| {
            *p.borrow_mut() = Some(Prepared {
                ws,
                messages,
                pipelined,
            })
        });
        Ok(())
    }

    /// Runs it: resolves to `[milliseconds, echoes received]`.
    #[wasm_bindgen]
    pub async fn floor_go() -> Result<js_sys::Array, JsValue> {
        let Prepared {
            ws,
            messages,
            pipelined,
        } = PREPARED
            .with(|p| p.borrow_mut().take())
            .ok_or_else(|| js_error("nothing prepared"))?;
        let count = messages.len();
        let messages = Rc::new(messages);
        let (tx, rx) = oneshot::channel::<Result<usize, JsValue>>();
        let mut tx = Some(tx);
        let mut received = 0usize;
        let mut bytes = 0usize;
        let on_message = {
            let ws = ws.clone();
            let messages = messages.clone();
            Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
                // The data taken into wasm memory, as any wasm client must,
                // in the fewest crossings (as wstether's transport does).
                let data = event.data();
                bytes += match data.as_string() {
                    Some(text) => text.len(),
                    None => read_binary(&data).len(),
                };
                received += 1;
                if received == count {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(Ok(bytes));
                    }
                } else if !pipelined {
                    if let Err(e) = messages.send(&ws, received) {
                        if let Some(tx) = tx.take() {
                            let _ = tx.send(Err(e));
                        }
                    }
                }
            })
        };
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        let started = now();
        if pipelined {
            for i in 0..count {
                messages.send(&ws, i)?;
            }
        } else {
            messages.send(&ws, 0)?;
        }
        let result = rx.await.map_err(|_| js_error("floor: no end"))?;
        let elapsed = now() - started;
        ws.set_onmessage(None);
        drop(on_message);
        let bytes = result?;
        let expected: usize = match &*messages {
            Messages::Text(m) => m.iter().map(String::len).sum(),
            Messages::Binary(m) => m.iter().map(Vec::len).sum(),
        };
        if bytes != expected {
            return Err(js_error(format!(
                "floor received {bytes} bytes, expected {expected}"
            )));
        }
        FINISHED.with(|f| *f.borrow_mut() = Some(ws));
        Ok(js_sys::Array::of2(&elapsed.into(), &(count as f64).into()))
    }

    /// Closes the socket of the last run and waits for its `close`.
    #[wasm_bindgen]
    pub async fn floor_finish() -> Result<(), JsValue> {
        let ws = FINISHED
            .with(|f| f.borrow_mut().take())
            .ok_or_else(|| js_error("nothing ran"))?;
        let (tx, rx) = oneshot::channel::<()>();
        let mut tx = Some(tx);
        let on_close = Closure::<dyn FnMut()>::new(move || {
            if let Some(tx) = tx.take() {
                let _ = tx.send(());
            }
        });
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        ws.close_with_code(1000)?;
        let _ = rx.await;
        ws.set_onclose(None);
        Ok(())
    }
}
