//! `WsTetherConnection`: Gun's split model in JavaScript, the low level
//! under `WsTether` (a connection, a stream id per upgrade, every event).

use std::cell::RefCell;
use std::rc::Rc;

use futures::lock::Mutex as AsyncMutex;
use js_sys::{Array, Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::events::{event_to_js, frame_from_js, js_error, stats_to_js, stream_ref, type_error};
use super::options::{object_of, parse_options};
use super::{JsOptions, JsProtocols};
use crate::frame::Frame;
use crate::options::Options;
use crate::request::Upgrade;
use crate::{Connection, Events};

#[wasm_bindgen(inline_js = "export function wstether_async_iterable(next) {
  return {
    next() {
      return next().then((value) => (value === null ? { done: true, value: undefined } : { done: false, value }));
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}")]
extern "C" {
    fn wstether_async_iterable(next: &Function) -> JsValue;
}

/// Where the events go: pulled by `next()`, or pushed to a callback.
enum Source {
    Pulled(Events),
    Callback,
}

/// Gun's split model: a connection that reconnects by itself, a stream id
/// per upgrade, and every event (up, upgraded, frame, down...). The low
/// level under `WsTether`; open one with `WsTetherConnection.open(url, options)`.
///
/// Lifetime: it stays open while an `onEvent` callback is set, or while
/// the object or its `events()` iterator is referenced, until it closes
/// (`shutdown()`, a close frame, or the retry policy giving up). Calling
/// `free()` drops this handle at once; once nothing else holds the
/// connection, it closes at once, as does losing every reference to it.
#[wasm_bindgen]
pub struct WsTetherConnection {
    connection: Connection,
    events: Rc<AsyncMutex<Source>>,
    callback: Rc<RefCell<Option<Function>>>,
}

#[wasm_bindgen]
impl WsTetherConnection {
    /// Opens a connection to `url` (`ws://` or `wss://`) and starts
    /// connecting in the background; the first event is `up` (or `error`
    /// and `reconnecting`). Throws a `WsTetherError` on a malformed URL or
    /// options (kind `InvalidUrl`, `InvalidOption`...), and on an option a
    /// browser cannot honour (kind `Unsupported`: `silencePings: false`,
    /// `readBufferSize`, `rootCertificates`, a `retry.connectTimeoutMs`
    /// other than the default), as `Connection::open` does in Rust.
    pub fn open(url: &str, options: Option<JsOptions>) -> Result<WsTetherConnection, JsValue> {
        let options = match options {
            Some(options) => parse_options(&object_of(&options, "options")?)?,
            None => Options::default(),
        };
        let (connection, events) = Connection::open(url, options).map_err(|e| js_error(&e))?;
        Ok(WsTetherConnection {
            connection,
            events: Rc::new(AsyncMutex::new(Source::Pulled(events))),
            callback: Rc::new(RefCell::new(None)),
        })
    }

    /// Upgrades `path` (with its query) to a Websocket, offering the given
    /// subprotocols; returns the new stream's id. The answer is an
    /// `upgraded` or `upgradeFailed` event with that id.
    pub fn upgrade(&self, path: &str, protocols: Option<JsProtocols>) -> Result<f64, JsValue> {
        let protocols = JsValue::from(protocols);
        let mut upgrade = Upgrade::new(path);
        if let Some(protocol) = protocols.as_string() {
            upgrade = upgrade.protocol(protocol);
        } else if Array::is_array(&protocols) {
            for protocol in Array::from(&protocols).iter() {
                let protocol = protocol
                    .as_string()
                    .ok_or_else(|| type_error("upgrade: subprotocols must be strings"))?;
                upgrade = upgrade.protocol(protocol);
            }
        } else if !protocols.is_undefined() && !protocols.is_null() {
            return Err(type_error(
                "upgrade: protocols must be a string or an array of strings",
            ));
        }
        let stream = self
            .connection
            .ws_upgrade_with(upgrade)
            .map_err(|e| js_error(&e))?;
        Ok(stream.0 as f64)
    }

    /// How a stream is shown to people: `"#3.2"` for the second upgrade on
    /// the third connection, as `StreamRef` displays in Rust. The number
    /// itself is an opaque id: pass it back to `send` and `close`, and
    /// compare it, but show this name.
    #[wasm_bindgen(js_name = streamName)]
    pub fn stream_name(stream: f64) -> Result<String, JsValue> {
        Ok(stream_ref(stream)?.to_string())
    }

    /// Sends a message (a string: text; a `Uint8Array` or `ArrayBuffer`:
    /// binary) or an array of them, in order, on `stream`. Throws a
    /// `WsTetherError` (with the frames in `unsent`) if they cannot be
    /// queued, e.g. `StaleStream` for a stream from before a reconnect.
    pub fn send(
        &self,
        stream: f64,
        #[wasm_bindgen(
            unchecked_param_type = "WsTetherData | ArrayBuffer | (WsTetherData | ArrayBuffer)[]"
        )]
        data: JsValue,
    ) -> Result<(), JsValue> {
        let stream = stream_ref(stream)?;
        let frames = if Array::is_array(&data) {
            Array::from(&data)
                .iter()
                .map(|item| frame_from_js(&item))
                .collect::<Result<Vec<_>, _>>()?
        } else {
            vec![frame_from_js(&data)?]
        };
        self.connection
            .ws_send(stream, frames)
            .map_err(|e| js_error(&e))
    }

    /// Closes `stream` with a close frame (`code` default 1000; a browser
    /// may send 1000 or 3000–4999) and stops reconnecting.
    pub fn close(
        &self,
        stream: f64,
        code: Option<u16>,
        reason: Option<String>,
    ) -> Result<(), JsValue> {
        let stream = stream_ref(stream)?;
        let frame = Frame::close(code.unwrap_or(1000), reason.unwrap_or_default())
            .map_err(|e| js_error(&e))?;
        self.connection
            .ws_send(stream, frame)
            .map_err(|e| js_error(&e))
    }

    /// Closes gracefully: queued frames are written, then a close frame;
    /// no reconnect. The last event is `down` with `willReconnect: false`.
    pub fn shutdown(&self) {
        self.connection.shutdown();
    }

    /// Sends a keepalive heartbeat now (e.g. when the page comes back).
    pub fn probe(&self) {
        self.connection.probe();
    }

    /// The round-trip time of the last answered heartbeat, in ms
    /// (`undefined` before the first answer, or without a keepalive).
    pub fn rtt(&self) -> Option<f64> {
        self.connection.rtt().map(|rtt| rtt.as_secs_f64() * 1000.0)
    }

    /// Counters over the connection's life (`WsTetherStats`): frames,
    /// messages and bytes written and received, reconnects, the last and
    /// smoothed RTT and the time connected, in ms.
    #[wasm_bindgen(unchecked_return_type = "WsTetherStats")]
    pub fn stats(&self) -> JsValue {
        stats_to_js(&self.connection.stats())
    }

    /// Delivers every event to `callback`, in order, from now on (calling
    /// it again replaces the callback). Once a callback is set, `next()`
    /// and `events()` are refused.
    #[wasm_bindgen(js_name = onEvent)]
    pub fn on_event(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(event: WsTetherEvent) => void")] callback: Function,
    ) -> Result<(), JsValue> {
        let Some(mut source) = self.events.try_lock() else {
            return Err(type_error(
                "onEvent: a next() is pending; use either onEvent or next()/events()",
            ));
        };
        *self.callback.borrow_mut() = Some(callback);
        if let Source::Pulled(_) = &*source {
            let Source::Pulled(events) = std::mem::replace(&mut *source, Source::Callback) else {
                unreachable_source()
            };
            wasm_bindgen_futures::spawn_local(pump(
                events,
                self.callback.clone(),
                self.connection.clone(),
            ));
        }
        Ok(())
    }

    /// The next event; resolves to `null` once the connection has ended.
    #[wasm_bindgen(unchecked_return_type = "Promise<WsTetherEvent | null>")]
    pub fn next(&self) -> Promise {
        wasm_bindgen_futures::future_to_promise(next_event(self.events.clone()))
    }

    /// The events as an async iterator: `for await (const event of connection.events()) { ... }`.
    /// It ends once the connection has ended.
    #[wasm_bindgen(unchecked_return_type = "AsyncIterableIterator<WsTetherEvent>")]
    pub fn events(&self) -> JsValue {
        let events = self.events.clone();
        // The iterator holds the connection: iterating keeps it open.
        let keep = self.connection.clone();
        let next = Closure::<dyn FnMut() -> Promise>::new(move || {
            let _ = &keep;
            wasm_bindgen_futures::future_to_promise(next_event(events.clone()))
        });
        wstether_async_iterable(next.into_js_value().unchecked_ref())
    }
}

fn unreachable_source() -> ! {
    wasm_bindgen::throw_str("wstether: event source changed under its lock")
}

async fn next_event(events: Rc<AsyncMutex<Source>>) -> Result<JsValue, JsValue> {
    let mut source = events.lock().await;
    match &mut *source {
        Source::Pulled(events) => Ok(events.recv().await.map_or(JsValue::NULL, event_to_js)),
        Source::Callback => Err(type_error(
            "next: events are delivered to the onEvent callback",
        )),
    }
}

/// Delivers the events to the callback until the connection ends; holding
/// a handle (`_keep`) keeps the connection open meanwhile, however the page
/// drops its own references.
async fn pump(mut events: Events, callback: Rc<RefCell<Option<Function>>>, _keep: Connection) {
    while let Some(event) = events.recv().await {
        let value = event_to_js(event);
        let callback = callback.borrow().clone();
        if let Some(callback) = callback {
            if let Err(thrown) = callback.call1(&JsValue::UNDEFINED, &value) {
                web_sys::console::error_2(&"wstether: the onEvent callback threw".into(), &thrown);
            }
        }
    }
}
