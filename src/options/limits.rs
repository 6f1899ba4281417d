//! Sizes, queues and durations: their bounds, the size options of the
//! builder, and the checks every option goes through at `open`.

use std::time::Duration;

use super::Options;
use crate::error::{Error, ErrorKind};
use crate::redact;

/// The longest duration any option accepts: 24 days. A browser's
/// `setTimeout` treats a delay above 2^31 - 1 ms (24.8 days) as zero, and
/// `Instant + Duration` overflows for huge values, so both targets share
/// this bound.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(24 * 24 * 60 * 60);

/// The shortest retry delay: 1 ms. A zero delay would retry a refused
/// connection tens of thousands of times per second.
pub(crate) const MIN_RETRY_DELAY: Duration = Duration::from_millis(1);

/// The largest frame or message size wstether accepts, 1 GiB: the largest
/// allocation it makes for one message, and the largest value
/// [`Options::max_frame_size`] and [`Options::max_message_size`] accept; a
/// peer's claimed length is never trusted beyond it.
pub const MAX_MESSAGE_SIZE_CEILING: usize = 1 << 30;

/// The default message (and frame) size limit: 64 MiB.
pub(super) const DEFAULT_MAX_MESSAGE_SIZE: usize = 64 << 20;

/// The smallest and largest [`Options::read_buffer_size`]: the buffer is
/// allocated up front for every connection.
pub(crate) const MIN_READ_BUFFER_SIZE: usize = 64;
pub(crate) const MAX_READ_BUFFER_SIZE: usize = 64 << 20;

/// The largest [`Options::send_queue_bytes`] and
/// [`Options::event_queue_bytes`]: 1 GiB, so that every value derived from
/// them (the native write buffer's limit) is computed without overflow.
pub(crate) const MAX_QUEUE_BYTES: usize = 1 << 30;

/// The largest [`Options::event_queue_len`]: about a million events.
pub(crate) const MAX_EVENT_QUEUE_LEN: usize = 1 << 20;

impl Options {
    /// The largest frame accepted from the server (default 64 MiB, the same
    /// as [`Options::max_message_size`], so that no message the message
    /// limit allows is refused for the size of one of its frames).
    ///
    /// At most the ceiling, [`MAX_MESSAGE_SIZE_CEILING`] (1 GiB) — the
    /// largest allocation wstether accepts; a peer's claimed length is never
    /// trusted beyond it: pass the ceiling for the largest. A value above
    /// the message limit has no effect beyond it: the message limit
    /// applies. 0 and values above the ceiling make
    /// [`Connection::open`](crate::Connection::open) fail with
    /// [`ErrorKind::InvalidOption`](crate::ErrorKind::InvalidOption).
    ///
    /// In a browser, which hands whole messages to scripts and never shows
    /// frames, this limit has no effect: only
    /// [`Options::max_message_size`] applies.
    pub fn max_frame_size(mut self, bytes: usize) -> Options {
        self.max_frame_size = Some(bytes);
        self
    }

    /// The largest message accepted from the server (default 64 MiB).
    /// A larger one is never delivered: natively it is refused while it is
    /// read, the connection closes with 1009 ("message too big") and goes
    /// `Down` with [`ErrorKind::MessageTooBig`](crate::ErrorKind::MessageTooBig), then reconnects by the
    /// retry policy.
    ///
    /// In a browser the message has already been received whole when a
    /// script first sees it, and scripts may not send 1009: the message is
    /// dropped and the connection closes with 1000 and the reason
    /// `"message too big"`, then goes `Down` with
    /// [`ErrorKind::MessageTooBig`](crate::ErrorKind::MessageTooBig) as natively.
    ///
    /// At most the ceiling, [`MAX_MESSAGE_SIZE_CEILING`] (1 GiB) — the
    /// largest allocation wstether accepts; a peer's claimed length is never
    /// trusted beyond it: pass the ceiling for the largest. 0 and values
    /// above the ceiling make [`Connection::open`](crate::Connection::open)
    /// fail with [`ErrorKind::InvalidOption`](crate::ErrorKind::InvalidOption).
    pub fn max_message_size(mut self, bytes: usize) -> Options {
        self.max_message_size = Some(bytes);
        self
    }

    /// How much memory the send queue may hold (default 8 MiB): each
    /// queued frame is charged its payload plus a fixed overhead of 128
    /// bytes, so a 1-byte frame counts as 129 bytes. Past that,
    /// [`Connection::ws_send`](crate::Connection::ws_send) fails with [`ErrorKind::QueueFull`](crate::ErrorKind::QueueFull) and gives the frames back, and
    /// [`Connection::send`](crate::Connection::send) waits. At least 1
    /// ([`ErrorKind::InvalidOption`](crate::ErrorKind::InvalidOption) otherwise, at `open`).
    ///
    /// It is also the largest message one call can send: the frames of one
    /// `ws_send` or `send` may hold at most this many payload bytes (8 MiB
    /// by default); a larger call is refused with
    /// [`ErrorKind::InvalidFrame`](crate::ErrorKind::InvalidFrame) and its frames given back, since it
    /// could never fit (natively, the write buffer is sized by this bound).
    /// Raise it to send larger messages, up to 1 GiB (2^30 bytes;
    /// [`ErrorKind::InvalidOption`](crate::ErrorKind::InvalidOption) above, at `open`).
    pub fn send_queue_bytes(mut self, bytes: usize) -> Options {
        self.send_queue_bytes = bytes;
        self
    }

    /// How many events may wait unread (default 1024). When the queue is
    /// full wstether stops reading the socket, so a slow reader slows the
    /// server down instead of growing memory. From 1 to 2^20 (1,048,576);
    /// other values make [`Connection::open`](crate::Connection::open) fail
    /// with [`ErrorKind::InvalidOption`](crate::ErrorKind::InvalidOption).
    ///
    /// In a browser, which cannot pause a WebSocket, messages go on
    /// arriving while the queue is full; they wait in the transport, bounded
    /// by [`Options::event_queue_bytes`].
    pub fn event_queue_len(mut self, len: usize) -> Options {
        self.event_queue_len = len;
        self
    }

    /// How much memory unread events may hold (default 16 MiB): each event
    /// is charged a fixed overhead of 128 bytes, plus its payload for a
    /// frame. Like [`Options::event_queue_len`], reaching it stops reading the
    /// socket natively, so a slow reader of large messages holds at most
    /// about this much plus one message (up to
    /// [`Options::max_message_size`]). From 1 to 1 GiB (2^30 bytes;
    /// [`ErrorKind::InvalidOption`](crate::ErrorKind::InvalidOption) otherwise, at `open`).
    ///
    /// In a browser, which cannot pause reading, exceeding it ends the
    /// connection instead: the socket closes with 1000 and the reason
    /// `"client too slow"`, and the connection goes `Down` with
    /// [`ErrorKind::QueueFull`](crate::ErrorKind::QueueFull) (then reconnects by the retry policy).
    pub fn event_queue_bytes(mut self, bytes: usize) -> Options {
        self.event_queue_bytes = bytes;
        self
    }

    /// How much tungstenite's per-connection frame buffer takes from the
    /// socket per read, natively, and without compression its size (the
    /// socket itself is read up to 64 KiB at a time whatever this is).
    /// Default: 512 bytes without compression, 2 KiB with it.
    ///
    /// Without compression no whole text or binary frame goes through this
    /// buffer: frames below 64 KiB are taken from the socket's read, larger
    /// ones are read straight into a buffer of their own size (none stays
    /// allocated after them). tungstenite reads only control frames,
    /// fragmented messages and frames that break a rule, so its buffer can
    /// stay small, which is what an idle connection keeps. With
    /// compression every frame goes through it, inflated, and the buffer is
    /// the 4 KiB one of the handshake unless this is larger. Raising it
    /// helps fragmented or compressed messages, at its cost in memory for
    /// every connection. From 64 bytes to 64 MiB
    /// ([`ErrorKind::InvalidOption`](crate::ErrorKind::InvalidOption)
    /// otherwise, at `open`).
    ///
    /// Native only: a browser reads for itself, and
    /// [`Connection::open`](crate::Connection::open) refuses this option
    /// there with [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported).
    pub fn read_buffer_size(mut self, bytes: usize) -> Options {
        self.read_buffer_size = Some(bytes);
        self
    }

    /// The largest frame accepted, finite: the frame limit, the ceiling for
    /// `None`, and never more than the message limit (which applies anyway).
    #[cfg_attr(browser, allow(dead_code))]
    pub(crate) fn frame_limit(&self) -> usize {
        self.max_frame_size
            .unwrap_or(MAX_MESSAGE_SIZE_CEILING)
            .min(self.message_limit())
    }

    /// The largest message accepted, finite: the ceiling for `None`.
    pub(crate) fn message_limit(&self) -> usize {
        self.max_message_size
            .unwrap_or(MAX_MESSAGE_SIZE_CEILING)
            .min(MAX_MESSAGE_SIZE_CEILING)
    }

    /// Checks the size and queue options against their bounds.
    pub(super) fn validate_limits(&self) -> Result<(), Error> {
        for (name, limit) in [
            ("max_frame_size", self.max_frame_size),
            ("max_message_size", self.max_message_size),
        ] {
            if let Some(bytes) = limit {
                check_size(name, bytes, 1, MAX_MESSAGE_SIZE_CEILING)?;
            }
        }
        check_size(
            "event_queue_bytes",
            self.event_queue_bytes,
            1,
            MAX_QUEUE_BYTES,
        )?;
        if let Some(bytes) = self.read_buffer_size {
            check_size(
                "read_buffer_size",
                bytes,
                MIN_READ_BUFFER_SIZE,
                MAX_READ_BUFFER_SIZE,
            )?;
        }
        check_size(
            "send_queue_bytes",
            self.send_queue_bytes,
            1,
            MAX_QUEUE_BYTES,
        )?;
        check_size(
            "event_queue_len",
            self.event_queue_len,
            1,
            MAX_EVENT_QUEUE_LEN,
        )
    }
}

pub(super) fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOption, message)
}

/// `MAX_DURATION` in words, for error messages.
pub(super) const MAX_DURATION_TEXT: &str = "24 days (2073600s)";

/// A duration from `min` (which may be zero) to [`MAX_DURATION`].
pub(super) fn check_duration(name: &str, value: Duration, min: Duration) -> Result<(), Error> {
    if value < min || value > MAX_DURATION {
        return Err(invalid(format!(
            "{name} must be from {} to {MAX_DURATION_TEXT}, got {}",
            redact::Dur(min),
            redact::Dur(value)
        )));
    }
    Ok(())
}

/// A duration longer than zero and at most [`MAX_DURATION`].
pub(super) fn check_positive_duration(name: &str, value: Duration) -> Result<(), Error> {
    if value.is_zero() || value > MAX_DURATION {
        return Err(invalid(format!(
            "{name} must be longer than zero and at most {MAX_DURATION_TEXT}, got {}",
            redact::Dur(value)
        )));
    }
    Ok(())
}

/// A size (bytes or a count) from `min` to `max`.
pub(super) fn check_size(name: &str, value: usize, min: usize, max: usize) -> Result<(), Error> {
    if value < min {
        return Err(invalid(format!(
            "{name} must be at least {min}, got {value}"
        )));
    }
    if value > max {
        return Err(invalid(format!(
            "{name} must be at most {max}, got {value}"
        )));
    }
    Ok(())
}

/// A number of milliseconds from outside Rust (the JS facade) as a
/// `Duration`, refusing what no option accepts (NaN, negative, infinite,
/// or beyond what a `Duration` holds) instead of panicking. The option's
/// own bound is checked by [`Options::validate`].
#[cfg_attr(not(all(feature = "js", browser)), allow(dead_code))]
pub(crate) fn duration_from_millis(name: &str, millis: f64) -> Result<Duration, Error> {
    if millis.is_nan() || millis < 0.0 {
        return Err(invalid(format!(
            "{name} must be a number of milliseconds of at least 0, got {}",
            redact::Float(millis)
        )));
    }
    Duration::try_from_secs_f64(millis / 1000.0).map_err(|_| {
        invalid(format!(
            "{name} must be at most {} ms ({MAX_DURATION_TEXT}), got {}",
            // In u64: u128's formatting is ~1.5 KB of a browser bundle.
            MAX_DURATION.as_secs() * 1000,
            redact::Float(millis)
        ))
    })
}
