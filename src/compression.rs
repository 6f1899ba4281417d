//! [`Compression`]: permessage-deflate (RFC 7692), for
//! [`Options::compression`](crate::Options::compression).

use crate::error::{Error, ErrorKind};

/// Whether and how messages are compressed with permessage-deflate
/// (RFC 7692), for [`Options::compression`](crate::Options::compression).
/// Off by default, as in Gun (`compress => false`).
///
/// ```
/// use wstether::{Compression, Options};
/// let options = Options::default().compression(
///     Compression::deflate()
///         .level(6)
///         .threshold(64)
///         .context_takeover(true),
/// );
/// ```
///
/// **Natively**, the client offers `permessage-deflate` with
/// `client_max_window_bits` (and what is set here) and honours the
/// server's answer: `server_no_context_takeover`,
/// `client_no_context_takeover`, `server_max_window_bits` and
/// `client_max_window_bits`. A server that does not accept it leaves the
/// connection uncompressed; a server that answers with an extension or a
/// parameter that was not offered fails the upgrade
/// ([`ErrorKind::Upgrade`]). The agreed extension is in
/// [`Event::extensions`](crate::Event::extensions).
///
/// **Cost natively** (measured at 1,000 idle connections, see
/// BENCHMARKS.md): nothing until the first compressed message (14 KiB per
/// connection against 13 KiB without compression). With context takeover
/// (the default) the inflater (about 45 KiB) and, once a message was sent
/// compressed, the deflater (about 265 KiB at window bits 15, less with
/// smaller
/// [`client_max_window_bits`](Compression::client_max_window_bits)) are
/// kept for the connection's life: 304 KiB per idle connection in all.
/// Without context takeover both ways they are dropped after each message:
/// 19 KiB per idle connection, for a new deflater per message sent and
/// worse ratios.
///
/// **Browser:** the browser decides. Every browser offers
/// permessage-deflate on its own and no script can change that, so this
/// option is accepted and has no effect there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compression {
    pub(crate) enabled: bool,
    pub(crate) level: u32,
    pub(crate) threshold: usize,
    pub(crate) context_takeover: bool,
    pub(crate) server_context_takeover: bool,
    pub(crate) client_max_window_bits: u8,
    pub(crate) server_max_window_bits: Option<u8>,
}

impl Default for Compression {
    /// [`Compression::off`].
    fn default() -> Compression {
        Compression::off()
    }
}

impl Compression {
    /// No compression: nothing is offered (the default).
    pub fn off() -> Compression {
        Compression {
            enabled: false,
            ..Compression::deflate()
        }
    }

    /// permessage-deflate offered, with level 6, a 32-byte threshold,
    /// context takeover both ways and window bits 15.
    pub fn deflate() -> Compression {
        Compression {
            enabled: true,
            level: 6,
            threshold: 32,
            context_takeover: true,
            server_context_takeover: true,
            client_max_window_bits: 15,
            server_max_window_bits: None,
        }
    }

    /// Whether compression is offered.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The deflate level for what the client sends, 0 (stored) to 9
    /// (smallest, slowest); default 6, zlib's default, as Node `ws`, Python
    /// `websockets` and browsers use. Level 1 deflates several times
    /// faster for about 30 % more bytes on JSON-like text (BENCHMARKS.md).
    pub fn level(mut self, level: u32) -> Compression {
        self.level = level;
        self
    }

    /// Messages whose payload is shorter than this many bytes are sent
    /// uncompressed (default 32; 0 compresses every message).
    pub fn threshold(mut self, bytes: usize) -> Compression {
        self.threshold = bytes;
        self
    }

    /// Whether the client keeps its compression context from one message
    /// to the next (default `true`: better ratios, and the deflater's
    /// memory kept for the connection's life). `false` offers
    /// `client_no_context_takeover`. A server may ask for it anyway.
    pub fn context_takeover(mut self, enabled: bool) -> Compression {
        self.context_takeover = enabled;
        self
    }

    /// Whether the server may keep its compression context (default
    /// `true`). `false` offers `server_no_context_takeover`, which the
    /// server must then accept, or the upgrade fails.
    pub fn server_context_takeover(mut self, enabled: bool) -> Compression {
        self.server_context_takeover = enabled;
        self
    }

    /// The largest window the client's deflater may use, 9 to 15 (default
    /// 15, offered as `client_max_window_bits` without a value; another
    /// value is offered as `client_max_window_bits=N`). The server may ask
    /// for less; a server asking for 8 gets uncompressed messages (zlib has
    /// no 256-byte window; RFC 7692 lets any message go uncompressed).
    pub fn client_max_window_bits(mut self, bits: u8) -> Compression {
        self.client_max_window_bits = bits;
        self
    }

    /// Asks the server to compress with at most this window, 8 to 15
    /// (`server_max_window_bits=N`); `None` (the default) asks nothing.
    pub fn server_max_window_bits(mut self, bits: Option<u8>) -> Compression {
        self.server_max_window_bits = bits;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        let invalid = |why: String| Err(Error::new(ErrorKind::InvalidOption, why));
        if self.level > 9 {
            return invalid(format!(
                "compression level must be 0 to 9, got {}",
                self.level
            ));
        }
        if !(9..=15).contains(&self.client_max_window_bits) {
            return invalid(format!(
                "client_max_window_bits must be 9 to 15, got {}",
                self.client_max_window_bits
            ));
        }
        if let Some(bits) = self.server_max_window_bits {
            if !(8..=15).contains(&bits) {
                return invalid(format!(
                    "server_max_window_bits must be 8 to 15, got {bits}"
                ));
            }
        }
        Ok(())
    }
}
