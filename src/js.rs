//! The JavaScript/TypeScript facade (feature `js`, browser wasm only):
//! [`WsTether`], turned into an ES module by `wasm-bindgen --target web`
//! (see `www/`).
//!
//! It is the Rust API with JavaScript values: options are a plain object,
//! streams are numbers (shown as `#3.2` by [`WsTether::stream_name`],
//! like [`StreamRef`]'s `Display`), frames are strings (text) or `Uint8Array`s
//! (binary), events are plain objects `{ type: "up" | "upgraded" | ... }`
//! delivered to a callback ([`WsTether::on_event`]) or pulled one at a
//! time ([`WsTether::next`], [`WsTether::events`] for `for await`), and
//! errors are thrown as `Error`s named `WsTetherError` whose `kind` is the
//! [`ErrorKind`](crate::ErrorKind) (also at the start of the message).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use futures::lock::Mutex as AsyncMutex;
use http::HeaderMap;
use js_sys::{Array, ArrayBuffer, Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::error::ErrorKind;
use crate::event::{DownReason, Event, StreamRef};
use crate::frame::Frame;
use crate::options::{duration_from_millis, Heartbeat, Keepalive, Options, Retry};
use crate::request::Upgrade;
use crate::{Connection, Error, Events};

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** A message's payload: a string for a text frame, bytes for a binary one. */
export type WsTetherData = string | Uint8Array;

/** The options of `WsTether.open`; every field is optional. */
export interface WsTetherOptions {
  /** The reconnect policy (exponential backoff with jitter); `false`: never reconnect. */
  retry?: false | {
    /** The first delay, in ms (default 100; from 1 to 2073600000, i.e. 24 days). */
    initialDelayMs?: number;
    /** The largest delay, in ms (default 30000; at most 2073600000, i.e. 24 days). */
    maxDelayMs?: number;
    /** Consecutive retries before giving up; `null` (default): forever. */
    maxRetries?: number | null;
    /** The random share taken off each delay, 0 to 1 (default 0.5). */
    jitter?: number;
    /** The growth factor per retry, at least 1 (default 2). */
    multiplier?: number;
    /** How long a connection must stay up before the retry count starts again, in ms (default 10000). */
    resetAfterMs?: number;
    /** Close codes from the server after which there is no reconnect (default [1003, 1007, 1008, 1010]). */
    stopOnCloseCodes?: number[];
    /**
     * Native only: a browser has no connection below the WebSocket. Any value but the default
     * (10000) throws a WsTetherError of kind "Unsupported"; `upgradeTimeoutMs` bounds the whole
     * opening instead.
     */
    connectTimeoutMs?: number;
  };
  /**
   * Keeps the connection alive and notices a dead peer: after `intervalMs` of silence a
   * heartbeat message goes out; with nothing heard within `timeoutMs`, the peer is dead
   * (`down` with reasonKind "peerDead", then a reconnect). Default: none. Both durations
   * are longer than 0 and at most 2073600000 ms (24 days).
   */
  keepalive?: null | {
    intervalMs: number;
    timeoutMs: number;
    /** The heartbeat message (default the text "♥"). */
    heartbeat?: WsTetherData;
    /** The server's reply, which measures `rtt()` and is hidden from the events (default: the heartbeat itself, echoed). */
    heartbeatReply?: WsTetherData;
  };
  /** Re-run the last upgrade after each reconnect (default false, as in Gun). */
  autoUpgrade?: boolean;
  /** How long the whole opening (connect, TLS, upgrade) may take, in ms (default 10000). */
  upgradeTimeoutMs?: number;
  /** How long to wait for the server's close frame after ours, in ms (default 5000). */
  closingTimeoutMs?: number;
  /**
   * The largest message accepted from the server, in bytes (default 64 MiB; `null`: 1 GiB). A
   * larger one ends the connection (closed with 1000 "message too big": scripts may not send 1009).
   */
  maxMessageSize?: number | null;
  /** Payload bytes that may wait to be sent (default 8 MiB); also the most one `send` may carry. */
  sendQueueBytes?: number;
  /** Events that may wait unread (default 1024). */
  eventQueueLen?: number;
  /**
   * Payload bytes of unread messages that may wait (default 16 MiB). A browser cannot pause
   * reading, so exceeding it ends the connection (`down` with an error of kind "QueueFull").
   */
  eventQueueBytes?: number;
  /**
   * Native only: `false` throws a WsTetherError of kind "Unsupported" (a browser answers pings
   * itself and never shows them); `true` is the default.
   */
  silencePings?: boolean;
  /** Native only: any value throws a WsTetherError of kind "Unsupported" (a browser reads for itself). */
  readBufferSize?: number;
  /**
   * Native only: any certificate throws a WsTetherError of kind "Unsupported" (a browser trusts its
   * own store).
   */
  rootCertificates?: (Uint8Array | ArrayBuffer)[];
}

/** Counters over a connection's life (`stats()`), across reconnects. */
export interface WsTetherStats {
  /** Application frames sent (heartbeats not included). */
  framesWritten: number;
  /** Frames received (heartbeat replies included). */
  framesReceived: number;
  /** Messages (text and binary) among `framesWritten`. */
  messagesWritten: number;
  /** Messages (text and binary) among `framesReceived`. */
  messagesReceived: number;
  /** Payload bytes of `messagesWritten` (UTF-8 bytes for text). */
  bytesWritten: number;
  /** Payload bytes of `messagesReceived` (UTF-8 bytes for text). */
  bytesReceived: number;
  /** How many times the connection came up again after the first time. */
  reconnects: number;
  /** The round-trip time of the last answered heartbeat, in ms (`undefined` before one). */
  lastRttMs: number | undefined;
  /** The smoothed round-trip time (RFC 6298 SRTT) of the heartbeats, in ms (`undefined` before one). */
  smoothedRttMs: number | undefined;
  /** How long the WebSockets of this connection were open in total, in ms (the current one included). */
  timeConnectedMs: number;
}

/** An error thrown (or carried by an event) by wstether. */
export interface WsTetherError extends Error {
  name: "WsTetherError";
  /** The Rust `ErrorKind`, e.g. "StaleStream", "QueueFull", "InvalidCloseCode". */
  kind: string;
  /** The frames that were not sent because of this error. */
  unsent: WsTetherData[];
}

/** Why the connection went down. */
export type WsTetherDownKind = "closedByPeer" | "shutdown" | "peerDead" | "upgradeRejected" | "error";

/** What happened on a connection: one fact per event, one frame per `frame` event. */
export type WsTetherEvent =
  | { type: "up"; attempt: number }
  | { type: "upgraded"; stream: number; protocol: string | null; headers: Record<string, string> }
  | { type: "upgradeFailed"; stream: number; status: number | null; headers: Record<string, string>; error: WsTetherError }
  | { type: "frame"; stream: number; kind: "text" | "binary" | "ping" | "pong" | "close"; data: WsTetherData; code?: number; reason?: string }
  | { type: "error"; stream: number | null; error: WsTetherError }
  | {
      type: "down";
      /** Why, for people. */
      reason: string;
      reasonKind: WsTetherDownKind;
      /** The close code and reason, when the server closed (reasonKind "closedByPeer"). */
      code?: number;
      closeReason?: string;
      /** The socket's error (reasonKind "error"). */
      error?: WsTetherError;
      killedStreams: number[];
      /** Frames queued but not written: they did not reach the server. */
      unsent: WsTetherData[];
      unsentCount: number;
      /** false: this is the last event. */
      willReconnect: boolean;
    }
  | { type: "reconnecting"; attempt: number; delayMs: number };
"#;

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

#[wasm_bindgen]
extern "C" {
    /// A `WsTetherOptions` object.
    #[wasm_bindgen(typescript_type = "WsTetherOptions")]
    pub type JsOptions;
    /// One subprotocol or a list of them.
    #[wasm_bindgen(typescript_type = "string | string[]")]
    pub type JsProtocols;
}

/// Where the events go: pulled by `next()`, or pushed to a callback.
enum Source {
    Pulled(Events),
    Callback,
}

/// A WebSocket connection that reconnects by itself: the JavaScript face
/// of [`Connection`]. Open one with `WsTether.open(url, options)`.
///
/// Calling `free()` (or losing the object to the garbage collector) closes
/// the connection at once; `shutdown()` closes it gracefully.
#[wasm_bindgen]
pub struct WsTether {
    connection: Connection,
    events: Rc<AsyncMutex<Source>>,
    callback: Rc<RefCell<Option<Function>>>,
}

#[wasm_bindgen]
impl WsTether {
    /// Opens a connection to `url` (`ws://` or `wss://`) and starts
    /// connecting in the background; the first event is `up` (or `error`
    /// and `reconnecting`). Throws a `WsTetherError` on a malformed URL or
    /// options (kind `InvalidUrl`, `InvalidOption`...), and on an option a
    /// browser cannot honour (kind `Unsupported`: `silencePings: false`,
    /// `readBufferSize`, `rootCertificates`, a `retry.connectTimeoutMs`
    /// other than the default), as `Connection::open` does in Rust.
    pub fn open(url: &str, options: Option<JsOptions>) -> Result<WsTether, JsValue> {
        let options = match options {
            Some(options) => parse_options(&object_of(&options, "options")?)?,
            None => Options::default(),
        };
        let (connection, events) = Connection::open(url, options).map_err(|e| js_error(&e))?;
        Ok(WsTether {
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
        let stats = self.connection.stats();
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        let object = Object::new();
        set(&object, "framesWritten", stats.frames_written as f64);
        set(&object, "framesReceived", stats.frames_received as f64);
        set(&object, "messagesWritten", stats.messages_written as f64);
        set(&object, "messagesReceived", stats.messages_received as f64);
        set(&object, "bytesWritten", stats.bytes_written as f64);
        set(&object, "bytesReceived", stats.bytes_received as f64);
        set(&object, "reconnects", stats.reconnects as f64);
        set(&object, "lastRttMs", stats.last_rtt.map(ms));
        set(&object, "smoothedRttMs", stats.smoothed_rtt.map(ms));
        set(&object, "timeConnectedMs", ms(stats.time_connected));
        object.into()
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
            wasm_bindgen_futures::spawn_local(pump(events, self.callback.clone()));
        }
        Ok(())
    }

    /// The next event; resolves to `null` once the connection has ended.
    #[wasm_bindgen(unchecked_return_type = "Promise<WsTetherEvent | null>")]
    pub fn next(&self) -> Promise {
        wasm_bindgen_futures::future_to_promise(next_event(self.events.clone()))
    }

    /// The events as an async iterator: `for await (const event of tether.events()) { ... }`.
    /// It ends once the connection has ended.
    #[wasm_bindgen(unchecked_return_type = "AsyncIterableIterator<WsTetherEvent>")]
    pub fn events(&self) -> JsValue {
        let events = self.events.clone();
        let next = Closure::<dyn FnMut() -> Promise>::new(move || {
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

async fn pump(mut events: Events, callback: Rc<RefCell<Option<Function>>>) {
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

// --- options ---

/// The options, as `WsTetherOptions` describes them. Durations go through
/// [`duration_from_millis`] and every value is checked by
/// [`Options::validate`] at `open`; options a browser cannot honour are
/// taken as given, so that `open` refuses them (`Unsupported`) exactly as
/// it does in Rust, never ignored.
fn parse_options(object: &Object) -> Result<Options, JsValue> {
    let name = "options";
    check_keys(
        object,
        name,
        &[
            "retry",
            "keepalive",
            "autoUpgrade",
            "upgradeTimeoutMs",
            "closingTimeoutMs",
            "maxMessageSize",
            "sendQueueBytes",
            "eventQueueLen",
            "eventQueueBytes",
            "silencePings",
            "readBufferSize",
            "rootCertificates",
        ],
    )?;
    let mut options = Options::default();
    if let Some(retry) = field(object, "retry")? {
        if retry == JsValue::FALSE {
            options = options.retry(Retry::never());
        } else {
            options = options.retry(parse_retry(&object_of(&retry, "options.retry")?)?);
        }
    }
    if let Some(keepalive) = field(object, "keepalive")? {
        options = if keepalive.is_null() {
            options.no_keepalive()
        } else {
            options.keepalive(parse_keepalive(&object_of(
                &keepalive,
                "options.keepalive",
            )?)?)
        };
    }
    if let Some(auto) = field(object, "autoUpgrade")? {
        let auto = auto
            .as_bool()
            .ok_or_else(|| invalid_option("options.autoUpgrade must be a boolean"))?;
        options = options.auto_upgrade(auto);
    }
    if let Some(ms) = millis(object, name, "upgradeTimeoutMs")? {
        options = options.upgrade_timeout(ms);
    }
    if let Some(ms) = millis(object, name, "closingTimeoutMs")? {
        options = options.closing_timeout(ms);
    }
    if let Some(value) = field(object, "maxMessageSize")? {
        options = options.max_message_size(if value.is_null() {
            crate::MAX_MESSAGE_SIZE_CEILING
        } else {
            size(&value, name, "maxMessageSize")?
        });
    }
    if let Some(value) = field(object, "sendQueueBytes")? {
        options = options.send_queue_bytes(size(&value, name, "sendQueueBytes")?);
    }
    if let Some(value) = field(object, "eventQueueLen")? {
        options = options.event_queue_len(size(&value, name, "eventQueueLen")?);
    }
    if let Some(value) = field(object, "eventQueueBytes")? {
        options = options.event_queue_bytes(size(&value, name, "eventQueueBytes")?);
    }
    if let Some(value) = field(object, "silencePings")? {
        let silence = value
            .as_bool()
            .ok_or_else(|| invalid_option("options.silencePings must be a boolean"))?;
        options = options.silence_pings(silence);
    }
    if let Some(value) = field(object, "readBufferSize")? {
        options = options.read_buffer_size(size(&value, name, "readBufferSize")?);
    }
    if let Some(value) = field(object, "rootCertificates")? {
        if !Array::is_array(&value) {
            return Err(invalid_option(
                "options.rootCertificates must be an array of Uint8Array or ArrayBuffer",
            ));
        }
        for certificate in Array::from(&value).iter() {
            let der =
                match frame_from_js(&certificate) {
                    Ok(Frame::Binary(der)) => der,
                    _ => return Err(invalid_option(
                        "options.rootCertificates must be an array of Uint8Array or ArrayBuffer",
                    )),
                };
            options = options.add_root_certificate_der(der.to_vec());
        }
    }
    Ok(options)
}

fn parse_retry(object: &Object) -> Result<Retry, JsValue> {
    let name = "options.retry";
    check_keys(
        object,
        name,
        &[
            "initialDelayMs",
            "maxDelayMs",
            "maxRetries",
            "jitter",
            "multiplier",
            "resetAfterMs",
            "stopOnCloseCodes",
            "connectTimeoutMs",
        ],
    )?;
    let mut retry = Retry::default();
    if let Some(ms) = millis(object, name, "initialDelayMs")? {
        retry = retry.initial_delay(ms);
    }
    if let Some(ms) = millis(object, name, "maxDelayMs")? {
        retry = retry.max_delay(ms);
    }
    if let Some(max) = field(object, "maxRetries")? {
        retry = if max.is_null() {
            retry.unlimited_retries()
        } else {
            let n = number(&max, name, "maxRetries")?;
            if n.fract() != 0.0 || n > u32::MAX as f64 {
                return Err(invalid_option(&format!(
                    "{name}.maxRetries must be a whole number or null"
                )));
            }
            retry.max_retries(n as u32)
        };
    }
    if let Some(jitter) = field(object, "jitter")? {
        retry = retry.jitter(number(&jitter, name, "jitter")?);
    }
    if let Some(multiplier) = field(object, "multiplier")? {
        retry = retry.multiplier(number(&multiplier, name, "multiplier")?);
    }
    if let Some(ms) = millis(object, name, "resetAfterMs")? {
        retry = retry.reset_after(ms);
    }
    if let Some(ms) = millis(object, name, "connectTimeoutMs")? {
        retry = retry.connect_timeout(ms);
    }
    if let Some(codes) = field(object, "stopOnCloseCodes")? {
        let bad = || {
            invalid_option(&format!(
                "{name}.stopOnCloseCodes must be an array of close codes (0 to 65535)"
            ))
        };
        if !Array::is_array(&codes) {
            return Err(bad());
        }
        let codes = Array::from(&codes)
            .iter()
            .map(|code| match code.as_f64() {
                Some(n) if n.fract() == 0.0 && (0.0..=65535.0).contains(&n) => Ok(n as u16),
                _ => Err(bad()),
            })
            .collect::<Result<Vec<u16>, _>>()?;
        retry = retry.stop_on_close_codes(codes);
    }
    Ok(retry)
}

fn parse_keepalive(object: &Object) -> Result<Keepalive, JsValue> {
    let name = "options.keepalive";
    check_keys(
        object,
        name,
        &["intervalMs", "timeoutMs", "heartbeat", "heartbeatReply"],
    )?;
    let required = |key: &str| {
        millis(object, name, key)?
            .ok_or_else(|| invalid_option(&format!("{name}.{key} is required")))
    };
    let (interval, timeout) = (required("intervalMs")?, required("timeoutMs")?);
    let heartbeat = match field(object, "heartbeat")? {
        Some(value) => frame_from_js(&value)?,
        None => Frame::text("♥"),
    };
    let heartbeat = match field(object, "heartbeatReply")? {
        Some(value) => {
            let reply = frame_from_js(&value)?;
            Heartbeat::message(heartbeat, move |frame| *frame == reply)
        }
        None => Heartbeat::echo(heartbeat),
    };
    Ok(Keepalive::every(interval)
        .timeout(timeout)
        .heartbeat(heartbeat))
}

/// `object[key]`, `None` when undefined.
fn field(object: &Object, key: &str) -> Result<Option<JsValue>, JsValue> {
    let value = Reflect::get(object, &JsValue::from_str(key))?;
    Ok((!value.is_undefined()).then_some(value))
}

fn check_keys(object: &Object, name: &str, known: &[&str]) -> Result<(), JsValue> {
    for key in Object::keys(object).iter() {
        let key = key.as_string().unwrap_or_default();
        if !known.contains(&key.as_str()) {
            return Err(invalid_option(&format!(
                "unknown option {name}.{key} (known: {})",
                known.join(", ")
            )));
        }
    }
    Ok(())
}

fn object_of(value: &JsValue, name: &str) -> Result<Object, JsValue> {
    if value.is_object() {
        Ok(value.clone().unchecked_into())
    } else {
        Err(invalid_option(&format!("{name} must be an object")))
    }
}

fn number(value: &JsValue, name: &str, key: &str) -> Result<f64, JsValue> {
    match value.as_f64() {
        Some(n) if n.is_finite() && n >= 0.0 => Ok(n),
        _ => Err(invalid_option(&format!(
            "{name}.{key} must be a number of at least 0"
        ))),
    }
}

/// A size or a count: a whole number that fits a `usize` (4 GiB - 1 on
/// wasm32); the option's own bound is checked at `open`.
fn size(value: &JsValue, name: &str, key: &str) -> Result<usize, JsValue> {
    let n = number(value, name, key)?;
    if n.fract() != 0.0 || n > usize::MAX as f64 {
        return Err(invalid_option(&format!(
            "{name}.{key} must be a whole number of at most {}",
            usize::MAX
        )));
    }
    Ok(n as usize)
}

/// A duration in milliseconds. Conversion is checked (`1e300` is an
/// error, not a panic); the option's own bound is checked at `open`.
fn millis(object: &Object, name: &str, key: &str) -> Result<Option<Duration>, JsValue> {
    match field(object, key)? {
        Some(value) => {
            let millis = number(&value, name, key)?;
            duration_from_millis(&format!("{name}.{key}"), millis)
                .map(Some)
                .map_err(|e| js_error(&e))
        }
        None => Ok(None),
    }
}

// --- values ---

fn stream_ref(id: f64) -> Result<StreamRef, JsValue> {
    if id.fract() == 0.0 && (0.0..=9_007_199_254_740_991.0).contains(&id) {
        Ok(StreamRef(id as u64))
    } else {
        Err(type_error("a stream id is the number upgrade() returned"))
    }
}

fn frame_from_js(value: &JsValue) -> Result<Frame, JsValue> {
    if let Some(text) = value.as_string() {
        Ok(Frame::text(text))
    } else if let Some(bytes) = value.dyn_ref::<Uint8Array>() {
        Ok(Frame::binary(bytes.to_vec()))
    } else if value.is_instance_of::<ArrayBuffer>() {
        Ok(Frame::binary(Uint8Array::new(value).to_vec()))
    } else {
        Err(type_error(
            "a message is a string (text) or a Uint8Array/ArrayBuffer (binary)",
        ))
    }
}

fn data_to_js(frame: &Frame) -> JsValue {
    match frame {
        Frame::Text(text) => JsValue::from_str(text),
        Frame::Binary(data) | Frame::Ping(data) | Frame::Pong(data) => {
            Uint8Array::from(&data[..]).into()
        }
        Frame::Close(_) => JsValue::from_str(""),
    }
}

fn frames_to_js(frames: &[Frame]) -> Array {
    frames.iter().map(data_to_js).collect()
}

fn headers_to_js(headers: &HeaderMap) -> Object {
    let object = Object::new();
    for (name, value) in headers {
        set(
            &object,
            name.as_str(),
            String::from_utf8_lossy(value.as_bytes()).as_ref(),
        );
    }
    object
}

fn set(object: &Object, key: &str, value: impl Into<JsValue>) {
    // Setting a property on a fresh plain object cannot fail.
    let _ = Reflect::set(object, &JsValue::from_str(key), &value.into());
}

fn event_to_js(event: Event) -> JsValue {
    let object = Object::new();
    let kind = |name: &str| set(&object, "type", name);
    match event {
        Event::Up { attempt } => {
            kind("up");
            set(&object, "attempt", attempt);
        }
        Event::Upgraded {
            stream,
            protocol,
            headers,
        } => {
            kind("upgraded");
            set(&object, "stream", stream.0 as f64);
            set(
                &object,
                "protocol",
                protocol.map_or(JsValue::NULL, JsValue::from),
            );
            set(&object, "headers", headers_to_js(&headers));
        }
        Event::UpgradeFailed {
            stream,
            status,
            headers,
            error,
        } => {
            kind("upgradeFailed");
            set(&object, "stream", stream.0 as f64);
            set(
                &object,
                "status",
                status.map_or(JsValue::NULL, |s| JsValue::from(s.as_u16())),
            );
            set(&object, "headers", headers_to_js(&headers));
            set(&object, "error", js_error(&error));
        }
        Event::Frame { stream, frame } => {
            kind("frame");
            set(&object, "stream", stream.0 as f64);
            let frame_kind = match &frame {
                Frame::Text(_) => "text",
                Frame::Binary(_) => "binary",
                Frame::Ping(_) => "ping",
                Frame::Pong(_) => "pong",
                Frame::Close(_) => "close",
            };
            set(&object, "kind", frame_kind);
            set(&object, "data", data_to_js(&frame));
            if let Frame::Close(close) = &frame {
                let (code, reason) = close
                    .as_ref()
                    .map_or((1005, ""), |c| (c.code.as_u16(), c.reason.as_str()));
                set(&object, "code", code);
                set(&object, "reason", reason);
            }
        }
        Event::Error { stream, error } => {
            kind("error");
            set(
                &object,
                "stream",
                stream.map_or(JsValue::NULL, |s| JsValue::from(s.0 as f64)),
            );
            set(&object, "error", js_error(&error));
        }
        Event::Down {
            reason,
            killed_streams,
            unsent,
            will_reconnect,
        } => {
            kind("down");
            set(&object, "reason", reason.to_string());
            let reason_kind = match &reason {
                DownReason::ClosedByPeer(close) => {
                    set(&object, "code", close.code.as_u16());
                    set(&object, "closeReason", close.reason.as_str());
                    "closedByPeer"
                }
                DownReason::Shutdown => "shutdown",
                DownReason::PeerDead => "peerDead",
                DownReason::UpgradeRejected => "upgradeRejected",
                DownReason::Error(error) => {
                    set(&object, "error", js_error(error));
                    "error"
                }
            };
            set(&object, "reasonKind", reason_kind);
            let killed: Array = killed_streams
                .iter()
                .map(|s| JsValue::from(s.0 as f64))
                .collect();
            set(&object, "killedStreams", killed);
            set(&object, "unsentCount", unsent.len() as u32);
            set(&object, "unsent", frames_to_js(&unsent));
            set(&object, "willReconnect", will_reconnect);
        }
        Event::Reconnecting { attempt, delay } => {
            kind("reconnecting");
            set(&object, "attempt", attempt);
            set(&object, "delayMs", delay.as_secs_f64() * 1000.0);
        }
    }
    object.into()
}

// --- errors ---

/// A JS `Error` named `WsTetherError`, with `kind` and `unsent`.
fn js_error(error: &Error) -> JsValue {
    let kind = format!("{:?}", error.kind());
    let js = js_sys::Error::new(&format!("{kind}: {error}"));
    js.set_name("WsTetherError");
    set(&js, "kind", kind);
    set(&js, "unsent", frames_to_js(error.unsent()));
    js.into()
}

fn invalid_option(message: &str) -> JsValue {
    js_error(&Error::new(ErrorKind::InvalidOption, message))
}

fn type_error(message: &str) -> JsValue {
    js_sys::TypeError::new(&format!("wstether: {message}")).into()
}
