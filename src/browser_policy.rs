//! What a browser refuses and what it does differently: one table, the
//! only place where that policy is decided. The checks at `open` and at
//! each send read their reasons from it, and README.md's "Native and
//! browser" table is tested against it (row for row).
//!
//! A browser's WebSocket hides the connection below it (TCP, TLS, proxy,
//! pings) from scripts, so whatever needs that layer is refused there
//! with [`ErrorKind::Unsupported`] and the reason, never silently ignored.

// Compiled on both targets so that it is tested natively. The checks read
// the refusals; the tests read the whole table (against the README).
#![cfg_attr(not(test), allow(dead_code))]

use crate::error::{Error, ErrorKind};
use crate::options::{Heartbeat, Options, DEFAULT_CONNECT_TIMEOUT};
use crate::proxy::Proxy;

/// How a browser treats one feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Policy {
    /// Refused with this reason (the error's message).
    Refused(&'static str),
    /// Done another way, as described.
    Emulated(&'static str),
    /// Not available to scripts at all; nothing to refuse.
    Hidden(&'static str),
}

/// One difference between the targets, as a row of the README's table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Difference {
    /// The feature (the README's first column).
    pub(crate) feature: &'static str,
    /// What it is natively.
    pub(crate) native: &'static str,
    /// What it is in a browser, in a few words.
    pub(crate) browser: &'static str,
    /// What the browser build does about it.
    pub(crate) policy: Policy,
}

impl Difference {
    /// The refusal's reason; a difference that is not refused has none.
    // Inlined, so that a call on one of the constants below keeps only its
    // reason in a browser bundle, not the whole row.
    #[inline(always)]
    pub(crate) const fn reason(&self) -> &'static str {
        match self.policy {
            Policy::Refused(reason) => reason,
            Policy::Emulated(_) | Policy::Hidden(_) => "",
        }
    }

    /// The refusal as an error: [`ErrorKind::Unsupported`] and the reason.
    // Used by the browser transport only (natively, tests read the table).
    #[cfg_attr(all(test, not(browser)), allow(dead_code))]
    #[inline(always)]
    pub(crate) fn refuse(&self) -> Error {
        Error::new(ErrorKind::Unsupported, self.reason())
    }
}

pub(crate) const UPGRADE_HEADERS: Difference = Difference {
    feature: "custom upgrade headers",
    native: "yes",
    browser: "refused (subprotocols only)",
    policy: Policy::Refused(
        "a browser cannot send custom upgrade headers; only subprotocols \
         (Upgrade::protocol) can be offered",
    ),
};

pub(crate) const REFUSED_STATUS: Difference = Difference {
    feature: "status of a refused upgrade",
    native: "`Some(status)` and headers",
    browser: "`None`: the browser hides it",
    policy: Policy::Hidden("a browser shows scripts no HTTP answer, only that the upgrade failed"),
};

pub(crate) const PING_PONG: Difference = Difference {
    feature: "ping / pong frames",
    native: "sent and (optionally) seen",
    browser: "refused; the browser answers pings itself",
    policy: Policy::Refused(
        "a browser cannot send ping or pong frames (it answers the server's pings itself)",
    ),
};

pub(crate) const SHOW_PINGS: Difference = Difference {
    feature: "`silence_pings(false)`",
    native: "pings and pongs seen as events",
    browser: "refused; the browser never shows them",
    policy: Policy::Refused(
        "silence_pings(false) cannot be honoured in a browser, which answers pings itself \
         and never shows ping or pong frames to scripts",
    ),
};

pub(crate) const PING_KEEPALIVE: Difference = Difference {
    feature: "keepalive",
    native: "ping frames",
    browser: "a heartbeat message your server answers",
    policy: Policy::Refused(
        "a browser cannot send ping frames: give the keepalive a heartbeat message \
         (Keepalive::heartbeat(Heartbeat::echo(..)) or Heartbeat::message(..))",
    ),
};

pub(crate) const CLOSE_CODES: Difference = Difference {
    feature: "close codes you may send",
    native: "1000–1003, 1007–1014, 3000–4999",
    browser: "1000, 3000–4999",
    // Refused as `InvalidCloseCode`, like a code no target may send.
    policy: Policy::Refused("scripts may send only 1000 and 3000-4999"),
};

pub(crate) const ROOT_CERTIFICATES: Difference = Difference {
    feature: "extra root certificates",
    native: "beside the webpki roots",
    browser: "refused: the browser's store only",
    policy: Policy::Refused(
        "extra root certificates cannot be used in a browser, which trusts its own \
         certificate store only",
    ),
};

pub(crate) const TLS_NATIVE_ROOTS: Difference = Difference {
    feature: "`tls_native_roots`",
    native: "the system's store",
    browser: "refused: the browser's store",
    policy: Policy::Refused(
        "tls_native_roots cannot be set in a browser, which always trusts its own \
         certificate store",
    ),
};

pub(crate) const TLS_CONFIG: Difference = Difference {
    feature: "`tls_config`",
    native: "your rustls configuration",
    browser: "refused: the browser does TLS",
    policy: Policy::Refused(
        "tls_config cannot be used in a browser, which does TLS itself with its own \
         certificate store",
    ),
};

pub(crate) const CLIENT_CERTIFICATE: Difference = Difference {
    feature: "client certificate",
    native: "yes",
    browser: "refused: the browser asks the user",
    policy: Policy::Refused(
        "a client certificate cannot be given in a browser, which asks the user to pick \
         one from its own store when a server requests it",
    ),
};

pub(crate) const PROXY: Difference = Difference {
    feature: "proxy, `no_proxy`",
    native: "your choice (default: the environment)",
    browser: "refused: the browser's settings",
    policy: Policy::Refused(
        "a proxy (or no_proxy) cannot be chosen in a browser, which uses the system's proxy \
         settings (or its own) for every WebSocket",
    ),
};

pub(crate) const CONNECTOR: Difference = Difference {
    feature: "connector",
    native: "your own dial",
    browser: "refused: the browser opens the connection",
    policy: Policy::Refused(
        "a connector cannot be used in a browser, which opens the WebSocket's connection \
         itself",
    ),
};

pub(crate) const READ_BUFFER_SIZE: Difference = Difference {
    feature: "`read_buffer_size`",
    native: "your choice",
    browser: "refused: the browser reads",
    policy: Policy::Refused(
        "read_buffer_size cannot be set in a browser, which reads the socket itself",
    ),
};

pub(crate) const CONNECT_TIMEOUT: Difference = Difference {
    feature: "`connect_timeout`",
    native: "TCP, TLS and the proxy",
    browser: "refused: `upgrade_timeout` bounds the opening",
    policy: Policy::Refused(
        "connect_timeout cannot be set in a browser, which has no connection below the \
         WebSocket: use Options::upgrade_timeout, which bounds the whole opening",
    ),
};

pub(crate) const SLOW_READER: Difference = Difference {
    feature: "a slow reader",
    native: "the socket is not read",
    browser: "past `event_queue_bytes` the connection ends",
    policy: Policy::Emulated(
        "a browser cannot pause a WebSocket: past event_queue_bytes the socket closes \
         with 1000 \"client too slow\" and the connection goes Down with QueueFull",
    ),
};

pub(crate) const FLOW_SPENT: Difference = Difference {
    feature: "a spent `Upgrade::flow` credit",
    native: "the socket is not read",
    browser: "delivery waits; past `event_queue_bytes` the connection ends",
    policy: Policy::Emulated(
        "a browser cannot pause a WebSocket: with the flow credit spent, messages wait \
         undelivered, bounded by event_queue_bytes as for a slow reader",
    ),
};

pub(crate) const MESSAGE_TOO_BIG: Difference = Difference {
    feature: "a message over `max_message_size`",
    native: "refused while read, closed with 1009",
    browser: "dropped, closed with 1000",
    policy: Policy::Emulated(
        "scripts may not send 1009: the message is dropped and the socket closes with \
         1000 \"message too big\", then Down with MessageTooBig as natively",
    ),
};

pub(crate) const UP: Difference = Difference {
    feature: "`Event::Up`",
    native: "TCP (and TLS) connected",
    browser: "at once: there is nothing below the WebSocket",
    policy: Policy::Emulated("Up is emitted as the WebSocket is created"),
};

pub(crate) const HTTP2: Difference = Difference {
    feature: "HTTP/2 (`Options::http2`)",
    native: "RFC 8441 when offered (default over TLS); shared with `share_http2`",
    browser: "the browser's choice; `Require` refused",
    policy: Policy::Refused(
        "http2(Http2::Require) cannot be honoured in a browser, which chooses its own \
         transport (HTTP/1.1 or HTTP/2) for every WebSocket and does not say which",
    ),
};

/// Every difference, in the README's order.
pub(crate) const TABLE: &[Difference] = &[
    UPGRADE_HEADERS,
    REFUSED_STATUS,
    PING_PONG,
    SHOW_PINGS,
    PING_KEEPALIVE,
    CLOSE_CODES,
    ROOT_CERTIFICATES,
    TLS_NATIVE_ROOTS,
    TLS_CONFIG,
    CLIENT_CERTIFICATE,
    PROXY,
    CONNECTOR,
    READ_BUFFER_SIZE,
    CONNECT_TIMEOUT,
    SLOW_READER,
    FLOW_SPENT,
    MESSAGE_TOO_BIG,
    UP,
    HTTP2,
];

/// The reason of the first option a browser refuses, if any. Compiled on
/// every target so that it is tested natively; the browser transport calls
/// it at `open`. Only the reasons are taken from the table (as constants):
/// a browser bundle carries no other column of it (~0.8 KB).
fn refused_option(options: &Options) -> Option<&'static str> {
    let refused = [
        (
            !options.root_certificates.is_empty(),
            const { ROOT_CERTIFICATES.reason() },
        ),
        (
            options.read_buffer_size.is_some(),
            const { READ_BUFFER_SIZE.reason() },
        ),
        (
            options.retry.connect_timeout != DEFAULT_CONNECT_TIMEOUT,
            const { CONNECT_TIMEOUT.reason() },
        ),
        (
            !options.proxy.as_ref().is_some_and(Proxy::is_from_env),
            const { PROXY.reason() },
        ),
        (
            options.tls_native_roots,
            const { TLS_NATIVE_ROOTS.reason() },
        ),
        (options.tls_config.is_some(), const { TLS_CONFIG.reason() }),
        (
            options.tls_client_certificate.is_some(),
            const { CLIENT_CERTIFICATE.reason() },
        ),
        (options.connector.is_some(), const { CONNECTOR.reason() }),
        (
            options.http2 == crate::options::Http2::Require,
            const { HTTP2.reason() },
        ),
        (!options.silence_pings, const { SHOW_PINGS.reason() }),
        (
            options
                .keepalive
                .as_ref()
                .is_some_and(|k| matches!(k.heartbeat, Heartbeat::Ping)),
            const { PING_KEEPALIVE.reason() },
        ),
    ];
    refused.into_iter().find(|(set, _)| *set).map(|(_, r)| r)
}

/// Refuses what a browser cannot honour, with [`ErrorKind::Unsupported`]
/// and the reason: never silently ignored.
pub(crate) fn browser_unsupported(options: &Options) -> Result<(), Error> {
    match refused_option(options) {
        Some(reason) => Err(Error::new(ErrorKind::Unsupported, reason)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
