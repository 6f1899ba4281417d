//! The options object of the JavaScript facade (`WsTetherOptions`) turned
//! into [`Options`], checked key by key: an unknown key or a wrong type is
//! a `WsTetherError` of kind `InvalidOption`, never ignored.

use std::time::Duration;

use js_sys::{Array, Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::events::{frame_from_js, js_error};
use crate::error::ErrorKind;
use crate::frame::Frame;
use crate::options::{duration_from_millis, FirstConnection, Heartbeat, Keepalive, Options, Retry};
use crate::Error;

/// The options, as `WsTetherOptions` describes them. Durations go through
/// [`duration_from_millis`] and every value is checked by
/// [`Options::validate`] at `open`; options a browser cannot honour are
/// taken as given, so that `open` refuses them (`Unsupported`) exactly as
/// it does in Rust, never ignored.
pub(super) fn parse_options(object: &Object) -> Result<Options, JsValue> {
    let name = "options";
    check_keys(
        object,
        name,
        &[
            "retry",
            "firstConnection",
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
    if let Some(budget) = field(object, "firstConnection")? {
        let budget = parse_first_connection(&budget)?;
        options.retry = options.retry.first_connection(budget);
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

/// `{ attempts }`, `{ deadlineMs }` or `"reconnectPolicy"`.
fn parse_first_connection(value: &JsValue) -> Result<FirstConnection, JsValue> {
    let name = "options.firstConnection";
    if value.as_string().as_deref() == Some("reconnectPolicy") {
        return Ok(FirstConnection::ReconnectPolicy);
    }
    let object = object_of(value, name)?;
    check_keys(&object, name, &["attempts", "deadlineMs"])?;
    match (
        field(&object, "attempts")?,
        millis(&object, name, "deadlineMs")?,
    ) {
        (Some(attempts), None) => {
            let n = number(&attempts, name, "attempts")?;
            if n.fract() != 0.0 || !(0.0..=f64::from(u32::MAX)).contains(&n) {
                // Shown by hand: `f64`'s `Display` costs ~11 KB of float formatting.
                return Err(invalid_option(&format!(
                    "{name}.attempts must be a whole number of attempts, got {}",
                    crate::redact::Float(n)
                )));
            }
            Ok(FirstConnection::Attempts(n as u32))
        }
        (None, Some(deadline)) => Ok(FirstConnection::Deadline(deadline)),
        _ => Err(invalid_option(&format!(
            "{name} is {{ attempts }}, {{ deadlineMs }} or \"reconnectPolicy\""
        ))),
    }
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
pub(super) fn field(object: &Object, key: &str) -> Result<Option<JsValue>, JsValue> {
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

pub(super) fn object_of(value: &JsValue, name: &str) -> Result<Object, JsValue> {
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

pub(super) fn invalid_option(message: &str) -> JsValue {
    js_error(&Error::new(ErrorKind::InvalidOption, message))
}
