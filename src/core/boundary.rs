//! The core's boundary: what goes in (a [`Command`] from the application, a
//! [`TransportEvent`] from the driver, the time) and what comes out (an
//! [`Action`] for the driver, a [`Progress`] for the handles).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::{HeaderMap, StatusCode};

use super::{Seq, Written};
use crate::error::Error;
use crate::event::StreamRef;
use crate::frame::{Frame, Frames};
use crate::request::{Upgrade, ValidUpgrade};
use crate::time::Instant;

/// What the driver must do for the core.
#[derive(Debug, PartialEq)]
pub(crate) enum Action {
    /// Open a transport (natively TCP, then TLS for `wss`).
    Dial,
    /// Upgrade the open transport to a Websocket.
    Upgrade(ValidUpgrade),
    /// Run the upgrade provider ([`Options::auto_upgrade_with`](crate::Options::auto_upgrade_with)) and report
    /// what it returns as [`TransportEvent::Provided`]; drop its future on
    /// [`Action::Disconnect`].
    Provide,
    /// Drop the transport (or the attempt in progress) now, then report
    /// [`TransportEvent::Lost`].
    Disconnect,
    /// The peer broke the protocol: send a close frame with this code
    /// (RFC 6455 §7.1.7), keep flushing, and report the flush as
    /// [`TransportEvent::Flushed`]; the core disconnects then, or at its deadline.
    FailClose { code: u16 },
}

/// Why a send to the current Websocket is refused while down.
pub(crate) const NOT_OPEN_NOT_HELD: &str =
    "no Websocket is open, and Options::hold_while_down is off";

/// How long the close frame that reports a peer's protocol error may take
/// to leave before the socket is dropped anyway.
pub(crate) const FAIL_CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Checks an upgrade against what the target can send (custom headers in
/// a browser, say); used for upgrades the core makes itself.
pub(crate) type UpgradeCheck = fn(&ValidUpgrade) -> Result<(), Error>;

/// A request from the application, in the order it was made.
#[derive(Debug)]
pub(crate) enum Command {
    /// Boxed: every `Send` moves a `Command` twice (into the queue, out of
    /// it), so the rare upgrade must not make the common send 3× larger.
    Upgrade {
        stream: StreamRef,
        request: Box<ValidUpgrade>,
        original: Box<Upgrade>,
    },
    Send {
        stream: StreamRef,
        frames: Frames,
    },
    /// Frames for whatever Websocket is current (a [`Socket`](crate::Socket)'s):
    /// held while down, or refused then (`Options::hold_while_down`).
    SendCurrent {
        frames: Frames,
    },
    /// Gun's `update_flow`: more credit of received messages for `stream`
    /// (`None`: whatever Websocket is current, a [`Socket`](crate::Socket)'s).
    UpdateFlow {
        stream: Option<StreamRef>,
        messages: u64,
    },
    Shutdown,
    /// Probe the peer now (a page became visible, the browser came online).
    Probe,
    /// Every handle is gone (Gun's `close/1`): end now, without a close
    /// handshake.
    Abandon,
}

/// What the transport did, as the driver reports it to
/// [`Core::handle_transport`](super::Core::handle_transport). Each
/// carries what the core needs to judge it (what was written through, the
/// wall clock for a `Retry-After`), so the driver reports one event per
/// thing that happened, in no order the core must teach it.
#[derive(Debug)]
pub(crate) enum TransportEvent {
    /// The dial of [`Action::Dial`] succeeded, after a TLS handshake that
    /// took this long (natively, for `wss`).
    Dialed {
        tls_handshake: Option<Duration>,
    },
    DialFailed(Error),
    /// The upgrade of [`Action::Upgrade`] succeeded.
    Upgraded {
        protocol: Option<String>,
        headers: HeaderMap,
        /// HTTP/1.1 or HTTP/2; `None` where the browser does not say.
        version: Option<http::Version>,
    },
    /// The upgrade failed (natively the transport is gone with it);
    /// `unix_now` (the wall clock, since the Unix epoch) reads a
    /// `Retry-After` date.
    UpgradeFailed {
        status: Option<StatusCode>,
        headers: HeaderMap,
        error: Error,
        unix_now: Duration,
    },
    /// The upgrade provider of [`Action::Provide`] answered.
    Provided(Result<Upgrade, crate::options::ProviderError>),
    /// A frame read from the open socket.
    Frame(Frame),
    /// Everything handed over has left the transport's buffer, written
    /// through this frame.
    Flushed(Option<Seq>),
    /// The flush is blocked, written through this frame; `progressed`: the
    /// transport wrote some bytes since the last report.
    WriteBlocked {
        written: Option<Seq>,
        progressed: bool,
    },
    /// Reading is paused (the application is not reading its events) or
    /// resumed.
    ReadingPaused(bool),
    /// The open socket failed (`Some`) or ended (`None`), written through
    /// `written`.
    SocketFailed {
        written: Option<Seq>,
        error: Option<Error>,
    },
    /// The transport is gone, dropped after [`Action::Disconnect`],
    /// written through `written`.
    Lost {
        written: Option<Seq>,
    },
}

/// What the driver tells the handles after each step, as
/// [`Core::take_progress`](super::Core::take_progress) gives it: room in
/// the send queue, killed streams, the peer's close, counters and the
/// socket's state.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Progress {
    /// Payload bytes of application frames that left the core's queue.
    pub(crate) released_bytes: usize,
    /// How many frames those were (each was charged
    /// [`ENTRY_OVERHEAD`](crate::mailbox::ENTRY_OVERHEAD) besides its
    /// payload: [`charge`](crate::mailbox::charge)).
    pub(crate) released_frames: usize,
    /// The highest stream killed by a `Down` so far.
    pub(crate) killed_up_to: Option<StreamRef>,
    /// The Websocket whose close frame from the peer arrived, while it
    /// closes: sends to it are refused at once.
    pub(crate) peer_closed: Option<StreamRef>,
    /// The round-trip time of the last answered keepalive probe.
    pub(crate) rtt: Option<Duration>,
    /// Written and read since the last report (counts to add).
    pub(crate) written: Written,
    pub(crate) received: Received,
    /// The rest is the current value: the smoothed round-trip time
    /// (RFC 6298) of the answered probes.
    pub(crate) srtt: Option<Duration>,
    /// How many times the connection came back up after the first time.
    pub(crate) reconnects: u64,
    /// Websockets open before the current one, in total.
    pub(crate) time_connected: Duration,
    /// Since when the current Websocket is open.
    pub(crate) open_since: Option<Instant>,
    /// Where the current Websocket is, as a [`Socket`](crate::Socket) tells it.
    pub(crate) state: crate::event::SocketState,
}

/// Hands out stream references. Each connection numbers its streams in
/// the high bits of a process-wide connection number, so a `StreamRef` of
/// one connection never names a Websocket of another (Gun's references are
/// unique too), while numbers still grow within a connection.
#[derive(Debug, Default)]
pub(crate) struct StreamIds(AtomicU64);

impl StreamIds {
    pub(crate) fn for_new_connection() -> StreamIds {
        static CONNECTIONS: AtomicU64 = AtomicU64::new(1);
        StreamIds(AtomicU64::new(
            CONNECTIONS.fetch_add(1, Ordering::Relaxed) << 32,
        ))
    }

    pub(crate) fn next(&self) -> StreamRef {
        StreamRef(self.0.fetch_add(1, Ordering::Relaxed) + 1)
    }

    /// The connection's process-wide number (the `3` of `#3.2`).
    pub(crate) fn connection(&self) -> u64 {
        self.0.load(Ordering::Relaxed) >> 32
    }
}

/// Counters of the traffic read since the last
/// [`Core::take_progress`](super::Core::take_progress).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Received {
    pub(crate) frames: u64,
    pub(crate) messages: u64,
    pub(crate) bytes: u64,
}
