//! `WsTetherCore`: the wasm side of the npm package's `WsTether` class
//! (npm/js/tether.js), which is an `EventTarget` and cannot be a
//! wasm-bindgen export itself. It owns a [`Tether`] (a [`Socket`](crate::Socket)
//! and its sender) and hands every [`SocketEvent`](crate::SocketEvent) to
//! the class's callback as a plain object.
//!
//! Lifetime: the event pump holds the callback, and the callback holds the
//! `WsTether` object, until the socket is closed for good; so an open
//! socket lives on however the page drops its references (as a browser
//! WebSocket does), and a closed one is collected like any object.

use std::rc::Rc;

use js_sys::{Array, Function, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::events::{frame_from_js, js_error, socket_event_to_js, stats_to_js, type_error};
use super::options::{field, invalid_option, object_of, parse_options};
use super::socket::{Attempt, AttemptFuture, Provider, Tether};
use crate::error::{Error, ErrorKind};
use crate::options::{FirstConnection, Options};
use crate::socket::SocketState;

/// Internal: use `WsTether` from the package's entry, which wraps this.
#[wasm_bindgen]
pub struct WsTetherCore {
    socket: Tether,
}

#[wasm_bindgen]
impl WsTetherCore {
    /// Starts the socket. `url` is a `ws://`/`wss://` URL or a function
    /// returning (a Promise of) a URL or `{ url, protocols }` per attempt;
    /// `on_event` gets every event, the last one `{ type: "close" }`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "string | (() => unknown)")] url: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string | string[] | null | undefined")]
        protocols: JsValue,
        #[wasm_bindgen(unchecked_param_type = "WsTetherOptions | null | undefined")]
        options: JsValue,
        #[wasm_bindgen(unchecked_param_type = "(event: object) => void")] on_event: Function,
    ) -> Result<WsTetherCore, JsValue> {
        let options = if options.is_undefined() || options.is_null() {
            with_first_connection(Options::default())
        } else {
            let object = object_of(&options, "options")?;
            if field(&object, "autoUpgrade")?.is_some() {
                return Err(invalid_option(
                    "options.autoUpgrade is for WsTetherConnection: WsTether always upgrades \
                     again after a reconnect",
                ));
            }
            let options = parse_options(&object)?;
            if field(&object, "firstConnection")?.is_some() {
                options
            } else {
                with_first_connection(options)
            }
        };
        let protocols = parse_protocols(&protocols)?;
        let (fixed, provider): (Option<String>, Provider) = if let Some(url) = url.as_string() {
            let attempt = url.clone();
            let provider: Provider = Rc::new(move || {
                let attempt = Attempt {
                    url: attempt.clone(),
                    protocols: protocols.clone(),
                };
                Box::pin(async move { Ok(attempt) })
            });
            (Some(url), provider)
        } else if let Some(function) = url.dyn_ref::<Function>() {
            let function = function.clone();
            let provider: Provider =
                Rc::new(move || call_provider(function.clone(), protocols.clone()));
            (None, provider)
        } else {
            return Err(type_error(
                "new WsTether: the url is a string, or a function returning (a Promise of) a \
                 url or { url, protocols }",
            ));
        };
        // Holding `on_event` (and so the `WsTether` object) until the
        // socket is closed is what keeps an open socket alive.
        let deliver = move |event| {
            if let Err(thrown) = on_event.call1(&JsValue::UNDEFINED, &socket_event_to_js(event)) {
                web_sys::console::error_2(&"wstether: an event listener threw".into(), &thrown);
            }
        };
        let socket =
            Tether::open(fixed.as_deref(), provider, options, deliver).map_err(|e| js_error(&e))?;
        Ok(WsTetherCore { socket })
    }

    /// Sends a text (string) or binary (`Uint8Array`) message, held while
    /// reconnecting. Throws `QueueFull` or `Closed` (the message in `unsent`).
    pub fn send(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | Uint8Array")] data: JsValue,
    ) -> Result<(), JsValue> {
        let frame = frame_from_js(&data)?;
        self.socket.try_send(frame).map_err(|e| js_error(&e))
    }

    /// `send` that waits for room: resolves once the message is queued.
    #[wasm_bindgen(js_name = sendAsync, unchecked_return_type = "Promise<void>")]
    pub fn send_async(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | Uint8Array")] data: JsValue,
    ) -> Promise {
        let socket = self.socket.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let frame = frame_from_js(&data)?;
            socket.send(frame).await.map_err(|e| js_error(&e))?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Closes (code 1000 unless given) and stops reconnecting.
    pub fn close(&self, code: Option<u16>, reason: Option<String>) -> Result<(), JsValue> {
        self.socket
            .close(code.unwrap_or(1000), reason.as_deref().unwrap_or(""))
            .map_err(|e| js_error(&e))
    }

    /// The WebSocket ready state: 0 connecting (or reconnecting), 1 open,
    /// 2 closing, 3 closed.
    #[wasm_bindgen(getter, js_name = readyState)]
    pub fn ready_state(&self) -> u8 {
        match self.socket.state() {
            SocketState::Connecting | SocketState::Reconnecting => 0,
            SocketState::Open => 1,
            SocketState::Closing => 2,
            SocketState::Closed => 3,
        }
    }

    /// Payload bytes accepted and not yet written, held ones included.
    #[wasm_bindgen(getter, js_name = bufferedAmount)]
    pub fn buffered_amount(&self) -> f64 {
        self.socket.buffered_amount() as f64
    }

    /// The subprotocol the server chose ("" for none).
    #[wasm_bindgen(getter)]
    pub fn protocol(&self) -> String {
        self.socket.protocol()
    }

    /// The URL of the current attempt.
    #[wasm_bindgen(getter)]
    pub fn url(&self) -> String {
        self.socket.url()
    }

    /// The connection's counters (`WsTetherStats`), or `undefined` before
    /// the provider's first answer.
    #[wasm_bindgen(unchecked_return_type = "WsTetherStats | undefined")]
    pub fn stats(&self) -> JsValue {
        self.socket
            .stats()
            .map_or(JsValue::UNDEFINED, |stats| stats_to_js(&stats))
    }

    /// Sends a keepalive heartbeat now.
    pub fn probe(&self) {
        self.socket.probe();
    }
}

/// `new WsTether` keeps trying from the start, as partysocket does,
/// unless `options.firstConnection` says otherwise (`WsTether.connect`
/// passes one attempt).
fn with_first_connection(mut options: Options) -> Options {
    options.retry = options
        .retry
        .first_connection(FirstConnection::ReconnectPolicy);
    options
}

/// `undefined`/`null`, a string, or an array of strings.
fn parse_protocols(value: &JsValue) -> Result<Vec<String>, JsValue> {
    if value.is_undefined() || value.is_null() {
        Ok(Vec::new())
    } else if let Some(protocol) = value.as_string() {
        Ok(vec![protocol])
    } else if Array::is_array(value) {
        Array::from(value)
            .iter()
            .map(|p| {
                p.as_string()
                    .ok_or_else(|| type_error("protocols must be strings"))
            })
            .collect()
    } else {
        Err(type_error(
            "protocols must be a string or an array of strings",
        ))
    }
}

/// One call of the page's provider: (a Promise of) a URL string or
/// `{ url, protocols }`; without `protocols`, the constructor's.
fn call_provider(function: Function, protocols: Vec<String>) -> AttemptFuture {
    Box::pin(async move {
        let failed = |what: &str, value: JsValue| {
            let detail = value
                .dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
                .or_else(|| value.as_string())
                .unwrap_or_else(|| "a value that is not an Error".to_owned());
            Error::new(
                ErrorKind::Provider,
                format!("the url provider {what}: {detail}"),
            )
        };
        let value = function
            .call0(&JsValue::UNDEFINED)
            .map_err(|thrown| failed("threw", thrown))?;
        let value = JsFuture::from(Promise::resolve(&value))
            .await
            .map_err(|rejected| failed("rejected", rejected))?;
        let bad = || {
            Error::new(
                ErrorKind::InvalidUrl,
                "the url provider must give a url string or { url, protocols }",
            )
        };
        if let Some(url) = value.as_string() {
            return Ok(Attempt { url, protocols });
        }
        if !value.is_object() {
            return Err(bad());
        }
        let url = Reflect::get(&value, &"url".into())
            .ok()
            .and_then(|url| url.as_string())
            .ok_or_else(bad)?;
        let given = Reflect::get(&value, &"protocols".into()).unwrap_or(JsValue::UNDEFINED);
        let protocols = if given.is_undefined() {
            protocols
        } else {
            parse_protocols(&given).map_err(|_| bad())?
        };
        Ok(Attempt { url, protocols })
    })
}
