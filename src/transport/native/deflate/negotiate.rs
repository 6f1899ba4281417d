//! The extension's negotiation: the offer the client sends, and what the
//! server's answer agreed to (RFC 7692 §7).

use std::sync::{Arc, Mutex};

use crate::compression::Compression;

/// What the server agreed to (RFC 7692 §7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Agreed {
    /// The client resets its compressor after each message.
    pub(crate) client_no_context_takeover: bool,
    /// The server resets its compressor after each message: so does our
    /// inflater.
    pub(crate) server_no_context_takeover: bool,
    /// The client's compressor window (8..=15).
    pub(crate) client_max_window_bits: u8,
    /// The server's compressor window (8..=15); an inflater with 15 reads
    /// any smaller one.
    pub(crate) server_max_window_bits: u8,
}

/// What the layer learnt from the 101: set once, read by the upgrade.
pub(crate) type Negotiated = Arc<Mutex<Option<Result<Option<Agreed>, String>>>>;

/// The extension offer for `Sec-WebSocket-Extensions`.
pub(crate) fn offer(config: &Compression) -> String {
    let mut offer = String::from("permessage-deflate");
    if !config.context_takeover {
        offer.push_str("; client_no_context_takeover");
    }
    if !config.server_context_takeover {
        offer.push_str("; server_no_context_takeover");
    }
    if let Some(bits) = config.server_max_window_bits {
        offer.push_str(&format!("; server_max_window_bits={bits}"));
    }
    if config.client_max_window_bits == 15 {
        offer.push_str("; client_max_window_bits");
    } else {
        offer.push_str(&format!(
            "; client_max_window_bits={}",
            config.client_max_window_bits
        ));
    }
    offer
}

/// Reads the server's `Sec-WebSocket-Extensions` values against the offer
/// made from `config`: `Ok(None)` when nothing was accepted, an error (the
/// reason) when the answer is not one the offer allows (an extension not
/// offered, a parameter not offered or out of range, one given twice).
pub(crate) fn negotiate<'a>(
    config: &Compression,
    values: impl IntoIterator<Item = &'a str>,
) -> Result<Option<Agreed>, String> {
    let mut agreed = None;
    for value in values {
        for extension in value.split(',') {
            let extension = extension.trim();
            if extension.is_empty() {
                continue;
            }
            let mut params = extension.split(';').map(str::trim);
            let name = params.next().unwrap_or("");
            if !name.eq_ignore_ascii_case("permessage-deflate") {
                return Err(format!("{name:?} was not offered"));
            }
            if agreed.is_some() {
                return Err("permessage-deflate accepted twice".into());
            }
            agreed = Some(params_of(config, params)?);
        }
    }
    Ok(agreed)
}

fn params_of<'a>(
    config: &Compression,
    params: impl Iterator<Item = &'a str>,
) -> Result<Agreed, String> {
    let mut agreed = Agreed {
        client_no_context_takeover: !config.context_takeover,
        server_no_context_takeover: false,
        client_max_window_bits: config.client_max_window_bits,
        server_max_window_bits: 15,
    };
    let mut seen: Vec<String> = Vec::new();
    for param in params {
        let (name, value) = match param.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim().trim_matches('"'))),
            None => (param, None),
        };
        let name = name.to_ascii_lowercase();
        if seen.contains(&name) {
            return Err(format!("parameter {name} given twice"));
        }
        let bits = |value: Option<&str>| -> Result<u8, String> {
            let value = value.ok_or_else(|| format!("{name} needs a value"))?;
            match value.parse::<u8>() {
                Ok(bits @ 8..=15) if value.bytes().all(|b| b.is_ascii_digit()) => Ok(bits),
                _ => Err(format!("{name}={value} is not in 8..=15")),
            }
        };
        match name.as_str() {
            "server_no_context_takeover" if value.is_none() => {
                agreed.server_no_context_takeover = true
            }
            "client_no_context_takeover" if value.is_none() => {
                agreed.client_no_context_takeover = true
            }
            "server_max_window_bits" => {
                let bits = bits(value)?;
                if config
                    .server_max_window_bits
                    .is_some_and(|asked| bits > asked)
                {
                    return Err(format!("server_max_window_bits={bits} is above the offer"));
                }
                agreed.server_max_window_bits = bits;
            }
            "client_max_window_bits" => {
                let bits = bits(value)?;
                if bits > config.client_max_window_bits {
                    return Err(format!("client_max_window_bits={bits} is above the offer"));
                }
                agreed.client_max_window_bits = bits;
            }
            _ => return Err(format!("parameter {param:?} was not offered")),
        }
        seen.push(name);
    }
    if !config.server_context_takeover && !agreed.server_no_context_takeover {
        return Err("server_no_context_takeover was asked for and not accepted".into());
    }
    Ok(agreed)
}
