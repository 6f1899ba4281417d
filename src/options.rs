//! Options: retry, keepalive, auto-upgrade, limits and TLS, with defaults a
//! long-lived client wants.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, ErrorKind};
use crate::frame::Frame;
use crate::request::Upgrade;

cfg_if::cfg_if! {
    if #[cfg(all(target_arch = "wasm32", target_os = "unknown"))] {
        /// Produces the upgrade request for each automatic upgrade.
        pub(crate) type UpgradeProvider = Arc<dyn Fn() -> Upgrade>;
        /// Recognises heartbeat replies.
        pub(crate) type ReplyMatcher = Arc<dyn Fn(&Frame) -> bool>;
    } else {
        /// Produces the upgrade request for each automatic upgrade.
        pub(crate) type UpgradeProvider = Arc<dyn Fn() -> Upgrade + Send + Sync>;
        /// Recognises heartbeat replies.
        pub(crate) type ReplyMatcher = Arc<dyn Fn(&Frame) -> bool + Send + Sync>;
    }
}

/// How a connection behaves. Built from [`Options::default`] with builder
/// methods:
///
/// ```
/// use std::time::Duration;
/// use wstether::{Keepalive, Options, Retry};
/// let options = Options::default()
///     .retry(Retry::default().max_retries(Some(10)))
///     .keepalive(Some(Keepalive::new(Duration::from_secs(15), Duration::from_secs(5))))
///     .auto_upgrade(true);
/// ```
#[derive(Clone)]
pub struct Options {
    pub(crate) retry: Retry,
    pub(crate) keepalive: Option<Keepalive>,
    pub(crate) auto_upgrade: AutoUpgrade,
    pub(crate) silence_pings: bool,
    pub(crate) max_frame_size: Option<usize>,
    pub(crate) max_message_size: Option<usize>,
    pub(crate) send_queue_bytes: usize,
    pub(crate) event_queue_len: usize,
    pub(crate) event_queue_bytes: usize,
    pub(crate) upgrade_timeout: Duration,
    pub(crate) closing_timeout: Duration,
    #[cfg_attr(all(target_arch = "wasm32", target_os = "unknown"), allow(dead_code))]
    pub(crate) root_certificates: Vec<Vec<u8>>,
    pub(crate) read_buffer_size: Option<usize>,
}

#[derive(Clone)]
pub(crate) enum AutoUpgrade {
    Off,
    RepeatLast,
    Provider(UpgradeProvider),
}

impl Default for Options {
    fn default() -> Options {
        Options {
            retry: Retry::default(),
            keepalive: Keepalive::default_for_target(),
            auto_upgrade: AutoUpgrade::Off,
            silence_pings: true,
            max_frame_size: Some(16 << 20),
            max_message_size: Some(64 << 20),
            send_queue_bytes: 8 << 20,
            event_queue_len: 1024,
            event_queue_bytes: 16 << 20,
            upgrade_timeout: Duration::from_secs(10),
            closing_timeout: Duration::from_secs(5),
            root_certificates: Vec::new(),
            read_buffer_size: None,
        }
    }
}

impl Options {
    /// The reconnect policy (default: [`Retry::default`]).
    pub fn retry(mut self, retry: Retry) -> Options {
        self.retry = retry;
        self
    }

    /// The keepalive, or `None` for none. Natively the default pings every
    /// 20 s and declares the peer dead 10 s after an unanswered ping; in a
    /// browser there is no default, since a heartbeat needs the server's
    /// cooperation (see [`Heartbeat::Message`]).
    pub fn keepalive(mut self, keepalive: Option<Keepalive>) -> Options {
        self.keepalive = keepalive;
        self
    }

    /// Re-run the last upgrade, with the same request, after each reconnect
    /// (default `false`, as in Gun: the owner re-upgrades on `Up`).
    pub fn auto_upgrade(mut self, enabled: bool) -> Options {
        self.auto_upgrade = if enabled {
            AutoUpgrade::RepeatLast
        } else {
            AutoUpgrade::Off
        };
        self
    }

    /// Upgrade automatically on every `Up`, the first included, with the
    /// request `provider` returns, called afresh each time (so a token can
    /// be refreshed per attempt).
    #[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
    pub fn auto_upgrade_with(
        mut self,
        provider: impl Fn() -> Upgrade + Send + Sync + 'static,
    ) -> Options {
        self.auto_upgrade = AutoUpgrade::Provider(Arc::new(provider));
        self
    }

    /// Upgrade automatically on every `Up`, the first included, with the
    /// request `provider` returns, called afresh each time (so a token can
    /// be refreshed per attempt).
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    pub fn auto_upgrade_with(mut self, provider: impl Fn() -> Upgrade + 'static) -> Options {
        self.auto_upgrade = AutoUpgrade::Provider(Arc::new(provider));
        self
    }

    /// Whether ping and pong frames from the server are hidden from the
    /// event stream (default `true`, as Gun's `silence_pings`). Pings are
    /// always answered.
    pub fn silence_pings(mut self, silence: bool) -> Options {
        self.silence_pings = silence;
        self
    }

    /// The largest frame accepted from the server (default 16 MiB; `None`: no limit).
    pub fn max_frame_size(mut self, bytes: Option<usize>) -> Options {
        self.max_frame_size = bytes;
        self
    }

    /// The largest message accepted from the server (default 64 MiB; `None`: no limit).
    /// A larger one closes the connection with 1009.
    pub fn max_message_size(mut self, bytes: Option<usize>) -> Options {
        self.max_message_size = bytes;
        self
    }

    /// How many payload bytes may wait in the send queue (default 8 MiB).
    /// Past that, [`Connection::ws_send`](crate::Connection::ws_send) fails
    /// with [`ErrorKind::QueueFull`] and gives the frames back, and
    /// [`Connection::send`](crate::Connection::send) waits. A single frame
    /// larger than this is accepted when the queue is empty.
    pub fn send_queue_bytes(mut self, bytes: usize) -> Options {
        self.send_queue_bytes = bytes;
        self
    }

    /// How many events may wait unread (default 1024). When the queue is
    /// full wstether stops reading the socket, so a slow reader slows the
    /// server down instead of growing memory.
    pub fn event_queue_len(mut self, len: usize) -> Options {
        self.event_queue_len = len;
        self
    }

    /// How many payload bytes of unread events may wait (default 16 MiB).
    /// Like [`Options::event_queue_len`], reaching it stops reading the
    /// socket natively, so a slow reader of large messages holds at most
    /// about this much plus one message (up to
    /// [`Options::max_message_size`]). In a browser, which cannot stop
    /// reading, the same bound fails the connection instead: `Down` with
    /// [`ErrorKind::MessageTooBig`].
    pub fn event_queue_bytes(mut self, bytes: usize) -> Options {
        self.event_queue_bytes = bytes;
        self
    }

    /// How long the server has to answer an upgrade (default 10 s).
    pub fn upgrade_timeout(mut self, timeout: Duration) -> Options {
        self.upgrade_timeout = timeout;
        self
    }

    /// How long to wait for the server's close frame after sending ours
    /// (default 5 s); then the socket is dropped.
    pub fn closing_timeout(mut self, timeout: Duration) -> Options {
        self.closing_timeout = timeout;
        self
    }

    /// Trusts one more root certificate (DER), beside the webpki roots, for
    /// `wss://`. Native only: browsers use their own trust store, and
    /// [`Connection::open`](crate::Connection::open) refuses this option
    /// there with [`ErrorKind::Unsupported`].
    pub fn add_root_certificate_der(mut self, der: impl Into<Vec<u8>>) -> Options {
        self.root_certificates.push(der.into());
        self
    }

    /// The size of the per-connection frame buffer of the native transport
    /// (default 4 KiB, which keeps an idle connection small; the socket itself
    /// is read up to 64 KiB at a time whatever this is). Raise it (e.g. to
    /// 128 KiB) for bulk transfers of large messages: fewer, larger copies
    /// (about 10% more throughput on 16 MiB messages here). Native only: a browser reads for
    /// itself, and [`Connection::open`](crate::Connection::open) refuses this
    /// option there with [`ErrorKind::Unsupported`].
    pub fn read_buffer_size(mut self, bytes: usize) -> Options {
        self.read_buffer_size = Some(bytes);
        self
    }

    /// The largest frame accepted, finite (lead's stopgap; see H1).
    pub(crate) fn frame_limit(&self) -> usize {
        self.max_frame_size.unwrap_or(1 << 30)
    }

    /// The largest message accepted, finite.
    pub(crate) fn message_limit(&self) -> usize {
        self.max_message_size.unwrap_or(1 << 30)
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        self.retry.validate()?;
        if self.read_buffer_size.is_some_and(|bytes| bytes < 64) {
            return Err(invalid("read_buffer_size must be at least 64 bytes"));
        }
        if let Some(keepalive) = &self.keepalive {
            keepalive.validate()?;
        }
        if self.event_queue_len == 0 {
            return Err(invalid("event_queue_len must be at least 1"));
        }
        if self.event_queue_bytes == 0 {
            return Err(invalid("event_queue_bytes must be at least 1"));
        }
        if self.upgrade_timeout.is_zero() || self.closing_timeout.is_zero() {
            return Err(invalid("timeouts must be longer than zero"));
        }
        Ok(())
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auto_upgrade = match self.auto_upgrade {
            AutoUpgrade::Off => "off",
            AutoUpgrade::RepeatLast => "repeat last",
            AutoUpgrade::Provider(_) => "provider",
        };
        f.debug_struct("Options")
            .field("retry", &self.retry)
            .field("keepalive", &self.keepalive)
            .field("auto_upgrade", &auto_upgrade)
            .field("silence_pings", &self.silence_pings)
            .field("max_frame_size", &self.max_frame_size)
            .field("max_message_size", &self.max_message_size)
            .field("send_queue_bytes", &self.send_queue_bytes)
            .field("event_queue_len", &self.event_queue_len)
            .field("event_queue_bytes", &self.event_queue_bytes)
            .field("upgrade_timeout", &self.upgrade_timeout)
            .field("closing_timeout", &self.closing_timeout)
            .field("root_certificates", &self.root_certificates.len())
            .field("read_buffer_size", &self.read_buffer_size)
            .finish()
    }
}

fn invalid(message: &str) -> Error {
    Error::new(ErrorKind::InvalidOption, message)
}

/// The reconnect policy: exponential backoff with jitter.
///
/// The delay before retry *n* (1-based) is `initial_delay * multiplier^(n-1)`,
/// capped at `max_delay`, then reduced by a random part of up to `jitter`
/// of it, so that many clients do not come back at once. The count starts
/// again once a connection has stayed up for `reset_after`.
#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    pub(crate) max_retries: Option<u32>,
    pub(crate) initial_delay: Duration,
    pub(crate) max_delay: Duration,
    pub(crate) multiplier: f64,
    pub(crate) jitter: f64,
    pub(crate) reset_after: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) stop_on_close_codes: Vec<u16>,
}

impl Default for Retry {
    /// Retry forever; 100 ms doubling up to 30 s, half of it jittered;
    /// reset after 10 s up; 10 s connect timeout; stop on close codes
    /// 1003, 1007, 1008 and 1010, which a reconnect would only meet again.
    fn default() -> Retry {
        Retry {
            max_retries: None,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: 0.5,
            reset_after: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            stop_on_close_codes: vec![1003, 1007, 1008, 1010],
        }
    }
}

impl Retry {
    /// Never reconnect: the first time the connection goes down, it ends.
    pub fn never() -> Retry {
        Retry::default().max_retries(Some(0))
    }

    /// How many consecutive retries before giving up (`None`: forever).
    pub fn max_retries(mut self, retries: Option<u32>) -> Retry {
        self.max_retries = retries;
        self
    }

    /// The first delay (default 100 ms).
    pub fn initial_delay(mut self, delay: Duration) -> Retry {
        self.initial_delay = delay;
        self
    }

    /// The largest delay (default 30 s).
    pub fn max_delay(mut self, delay: Duration) -> Retry {
        self.max_delay = delay;
        self
    }

    /// The growth factor per retry (default 2.0; at least 1.0).
    pub fn multiplier(mut self, multiplier: f64) -> Retry {
        self.multiplier = multiplier;
        self
    }

    /// The random share taken off each delay, from 0.0 (none) to 1.0 (the
    /// delay is uniform between zero and its value). Default 0.5.
    pub fn jitter(mut self, jitter: f64) -> Retry {
        self.jitter = jitter;
        self
    }

    /// How long a connection must stay up before the retry count starts
    /// again (default 10 s).
    pub fn reset_after(mut self, uptime: Duration) -> Retry {
        self.reset_after = uptime;
        self
    }

    /// How long one connect attempt may take (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Retry {
        self.connect_timeout = timeout;
        self
    }

    /// Close codes from the server after which wstether does not reconnect.
    pub fn stop_on_close_codes(mut self, codes: impl Into<Vec<u16>>) -> Retry {
        self.stop_on_close_codes = codes.into();
        self
    }

    fn validate(&self) -> Result<(), Error> {
        if !(self.multiplier >= 1.0 && self.multiplier.is_finite()) {
            return Err(invalid("retry multiplier must be a finite number >= 1.0"));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(invalid("retry jitter must be between 0.0 and 1.0"));
        }
        if self.initial_delay > self.max_delay {
            return Err(invalid("retry initial_delay must not exceed max_delay"));
        }
        if self.connect_timeout.is_zero() {
            return Err(invalid("connect_timeout must be longer than zero"));
        }
        Ok(())
    }
}

/// Keeps the connection alive and notices a dead peer.
///
/// Every `interval` without traffic from the server, a probe goes out
/// (natively a ping frame; in a browser, which cannot send pings, the
/// [`Heartbeat::Message`] you configure). Anything heard from the server
/// counts as proof of life; if nothing is heard within `timeout` of a
/// probe, the peer is declared dead: `Down { reason: PeerDead }` and a
/// reconnect. The round-trip time of each answered probe is kept, see
/// [`Connection::rtt`](crate::Connection::rtt).
#[derive(Clone)]
pub struct Keepalive {
    pub(crate) interval: Duration,
    pub(crate) timeout: Duration,
    pub(crate) heartbeat: Heartbeat,
}

impl Keepalive {
    /// A keepalive that probes after `interval` of silence and gives the
    /// peer `timeout` to answer, with ping frames.
    pub fn new(interval: Duration, timeout: Duration) -> Keepalive {
        Keepalive {
            interval,
            timeout,
            heartbeat: Heartbeat::Ping,
        }
    }

    /// Uses this heartbeat instead of ping frames.
    pub fn heartbeat(mut self, heartbeat: Heartbeat) -> Keepalive {
        self.heartbeat = heartbeat;
        self
    }

    fn default_for_target() -> Option<Keepalive> {
        if cfg!(all(target_arch = "wasm32", target_os = "unknown")) {
            None
        } else {
            Some(Keepalive::new(
                Duration::from_secs(20),
                Duration::from_secs(10),
            ))
        }
    }

    fn validate(&self) -> Result<(), Error> {
        if self.interval.is_zero() || self.timeout.is_zero() {
            return Err(invalid(
                "keepalive interval and timeout must be longer than zero",
            ));
        }
        if let Heartbeat::Message { frame, .. } = &self.heartbeat {
            if !matches!(frame, Frame::Text(_) | Frame::Binary(_)) {
                return Err(invalid("a heartbeat message is a text or binary frame"));
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Keepalive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keepalive")
            .field("interval", &self.interval)
            .field("timeout", &self.timeout)
            .field("heartbeat", &self.heartbeat)
            .finish()
    }
}

/// What a keepalive probe is.
#[derive(Clone)]
#[non_exhaustive]
pub enum Heartbeat {
    /// A ping frame; the matching pong measures the round trip. Native only.
    Ping,
    /// An application message (e.g. text `"ping"`), for browsers and for
    /// servers that expect an app-level heartbeat.
    Message {
        /// The frame sent as a probe (text or binary).
        frame: Frame,
        /// Recognises the server's reply, to measure the round trip.
        is_reply: ReplyMatcher,
        /// Whether replies are kept out of the event stream.
        hide_replies: bool,
    },
}

impl Heartbeat {
    /// A heartbeat message and a matcher for its reply; replies are hidden
    /// from the event stream.
    #[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
    pub fn message(
        frame: Frame,
        is_reply: impl Fn(&Frame) -> bool + Send + Sync + 'static,
    ) -> Heartbeat {
        Heartbeat::Message {
            frame,
            is_reply: Arc::new(is_reply),
            hide_replies: true,
        }
    }

    /// A heartbeat message and a matcher for its reply; replies are hidden
    /// from the event stream.
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    pub fn message(frame: Frame, is_reply: impl Fn(&Frame) -> bool + 'static) -> Heartbeat {
        Heartbeat::Message {
            frame,
            is_reply: Arc::new(is_reply),
            hide_replies: true,
        }
    }

    /// A heartbeat that the server echoes: the reply is the same frame.
    pub fn echo(frame: Frame) -> Heartbeat {
        let expected = frame.clone();
        Heartbeat::Message {
            frame,
            is_reply: Arc::new(move |reply| *reply == expected),
            hide_replies: true,
        }
    }
}

impl fmt::Debug for Heartbeat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Heartbeat::Ping => f.write_str("Ping"),
            Heartbeat::Message {
                frame,
                hide_replies,
                ..
            } => f
                .debug_struct("Message")
                .field("frame", frame)
                .field("hide_replies", hide_replies)
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Options::default().validate().unwrap();
    }

    #[test]
    fn nonsense_options_are_refused() {
        let bad = [
            Options::default().retry(Retry::default().jitter(1.5)),
            Options::default().retry(Retry::default().multiplier(0.5)),
            Options::default().retry(Retry::default().multiplier(f64::NAN)),
            Options::default().retry(
                Retry::default()
                    .initial_delay(Duration::from_secs(5))
                    .max_delay(Duration::from_secs(1)),
            ),
            Options::default().keepalive(Some(Keepalive::new(Duration::ZERO, Duration::ZERO))),
            Options::default().event_queue_len(0),
            Options::default().keepalive(Some(
                Keepalive::new(Duration::from_secs(1), Duration::from_secs(1))
                    .heartbeat(Heartbeat::echo(Frame::Ping(Default::default()))),
            )),
        ];
        for options in bad {
            let err = options.validate().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidOption, "{options:?}");
        }
    }
}
