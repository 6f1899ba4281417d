//! Values between Rust and JavaScript: frames as strings and `Uint8Array`s,
//! Gun's events as plain objects, errors as `WsTetherError`s.

#[cfg(feature = "js-connection")]
use http::HeaderMap;
use js_sys::{Array, ArrayBuffer, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::event::DownReason;
#[cfg(feature = "js-connection")]
use crate::event::{Event, StreamRef};
use crate::frame::{CloseCode, Frame};
use crate::socket::SocketEvent;
use crate::{Error, Stats};

#[cfg(feature = "js-connection")]
pub(super) fn stream_ref(id: f64) -> Result<StreamRef, JsValue> {
    if id.fract() == 0.0 && (0.0..=9_007_199_254_740_991.0).contains(&id) {
        Ok(StreamRef(id as u64))
    } else {
        Err(type_error("a stream id is the number upgrade() returned"))
    }
}

pub(super) fn frame_from_js(value: &JsValue) -> Result<Frame, JsValue> {
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

pub(super) fn data_to_js(frame: &Frame) -> JsValue {
    match frame {
        Frame::Text(text) => JsValue::from_str(text),
        Frame::Binary(data) | Frame::Ping(data) | Frame::Pong(data) => {
            Uint8Array::from(&data[..]).into()
        }
        Frame::Close(_) => JsValue::from_str(""),
    }
}

pub(super) fn frames_to_js(frames: &[Frame]) -> Array {
    frames.iter().map(data_to_js).collect()
}

#[cfg(feature = "js-connection")]
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

pub(super) fn set(object: &Object, key: &str, value: impl Into<JsValue>) {
    // Setting a property on a fresh plain object cannot fail.
    let _ = Reflect::set(object, &JsValue::from_str(key), &value.into());
}

#[cfg(feature = "js-connection")]
pub(super) fn event_to_js(event: Event) -> JsValue {
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
            set_down(&object, &reason, &unsent, will_reconnect);
            let killed: Array = killed_streams
                .iter()
                .map(|s| JsValue::from(s.0 as f64))
                .collect();
            set(&object, "killedStreams", killed);
        }
        Event::Reconnecting { attempt, delay } => {
            kind("reconnecting");
            set(&object, "attempt", attempt);
            set(&object, "delayMs", delay.as_secs_f64() * 1000.0);
        }
    }
    object.into()
}

/// A `down` event's fields, the same for both facades.
fn set_down(object: &Object, reason: &DownReason, unsent: &[Frame], will_reconnect: bool) {
    set(object, "reason", reason.to_string());
    let reason_kind = match reason {
        DownReason::ClosedByPeer(close) => {
            set(object, "code", close.code.as_u16());
            set(object, "closeReason", close.reason.as_str());
            "closedByPeer"
        }
        DownReason::Shutdown => "shutdown",
        DownReason::PeerDead => "peerDead",
        DownReason::UpgradeRejected => "upgradeRejected",
        DownReason::Error(error) => {
            set(object, "error", js_error(error));
            "error"
        }
    };
    set(object, "reasonKind", reason_kind);
    set(object, "unsentCount", unsent.len() as u32);
    set(object, "unsent", frames_to_js(unsent));
    set(object, "willReconnect", will_reconnect);
}

/// A socket event as the plain object `WsTether` (npm/js/tether.js) turns
/// into a DOM event: `{ type: "open" | "message" | "reconnecting" | "down"
/// | "error" | "close", ... }`.
pub(super) fn socket_event_to_js(event: SocketEvent) -> JsValue {
    let object = Object::new();
    let kind = |name: &str| set(&object, "type", name);
    match event {
        SocketEvent::Open { protocol } => {
            kind("open");
            set(&object, "protocol", protocol.unwrap_or_default());
        }
        SocketEvent::Frame(frame) => {
            kind("message");
            set(&object, "data", data_to_js(&frame));
        }
        SocketEvent::Reconnecting { attempt, delay } => {
            kind("reconnecting");
            set(&object, "attempt", attempt);
            set(&object, "delayMs", delay.as_secs_f64() * 1000.0);
        }
        SocketEvent::Down {
            reason,
            unsent,
            will_reconnect,
            ..
        } => {
            kind("down");
            set_down(&object, &reason, &unsent, will_reconnect);
        }
        SocketEvent::Error(error) => {
            kind("error");
            set(&object, "error", js_error(&error));
        }
        SocketEvent::Closed {
            code,
            reason,
            clean,
        } => {
            kind("close");
            // No close frame: 1006 as a browser says after an abnormal end.
            let none = if clean { 1005 } else { 1006 };
            set(&object, "code", code.map_or(none, CloseCode::as_u16));
            set(&object, "reason", reason);
            set(&object, "wasClean", clean);
        }
    }
    object.into()
}

/// `WsTetherStats`: the connection's counters, durations in ms.
pub(super) fn stats_to_js(stats: &Stats) -> JsValue {
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

/// A JS `Error` named `WsTetherError`, with `kind` and `unsent`.
pub(super) fn js_error(error: &Error) -> JsValue {
    let kind = format!("{:?}", error.kind());
    let js = js_sys::Error::new(&format!("{kind}: {error}"));
    js.set_name("WsTetherError");
    set(&js, "kind", kind);
    set(&js, "unsent", frames_to_js(error.unsent()));
    js.into()
}

pub(super) fn type_error(message: &str) -> JsValue {
    js_sys::TypeError::new(&format!("wstether: {message}")).into()
}
