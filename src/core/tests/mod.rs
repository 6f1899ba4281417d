//! Tests of the sans-IO core with a fake clock, in the style of
//! quinn-proto's `tests/util.rs`: a harness plays the driver (dial, upgrade,
//! write, lose) and every test asserts the exact events and actions.

use std::sync::atomic::AtomicUsize;

use super::*;
use futures::FutureExt;

use crate::options::{FirstConnection, Retry, RetryDecision};

mod backoff;
mod dial_upgrade;
mod first_connection;
mod flow;
mod frames;
mod held_sends;
mod keepalive;
mod no_silent_loss;
mod randomized;
mod reconnect;
mod refused_upgrade;
mod sending;
mod shutdown;

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);
/// The wall clock the tests' `Retry-After` dates are read against:
/// Sun, 06 Nov 1994 08:49:37 GMT.
const UNIX_NOW: Duration = Duration::from_secs(784_111_777);

// ---- harness ----------------------------------------------------------------

/// Options with exact delays: no jitter, no keepalive unless asked.
/// Retry: 100 ms doubling to 30 s, reset after 10 s, connect timeout 10 s;
/// upgrade timeout 10 s, closing timeout 5 s (the defaults).
fn options() -> Options {
    Options::default()
        .retry(reconnecting().jitter(0.0))
        .no_keepalive()
}

/// The reconnect policy from the first attempt on (wstether 0.1's
/// behaviour), for the tests of the reconnect policy itself; the
/// first-connection budget has tests of its own.
fn reconnecting() -> Retry {
    Retry::default().first_connection(FirstConnection::ReconnectPolicy)
}

fn keepalive_options() -> Options {
    options().keepalive(Keepalive::every(10 * SEC).timeout(3 * SEC))
}

struct Harness {
    core: Core,
    t0: Instant,
    now: Instant,
    ids: Arc<StreamIds>,
}

impl Harness {
    fn new(options: Options) -> Harness {
        Harness::start(&options, Instant::now(), 42)
    }

    fn start(options: &Options, t0: Instant, seed: u64) -> Harness {
        let ids = Arc::new(StreamIds::default());
        let core = Core::new(options, ids.clone(), seed, t0);
        Harness {
            core,
            t0,
            now: t0,
            ids,
        }
    }

    /// A core that dialed, came up and whose first action (Dial) was taken.
    fn up(options: Options) -> Harness {
        let mut h = Harness::new(options);
        assert_eq!(h.actions(), [Action::Dial]);
        h.dial_ok();
        h
    }

    /// A core with an open Websocket on the returned stream.
    fn open(options: Options) -> (Harness, StreamRef) {
        let mut h = Harness::up(options);
        let stream = h.upgrade(Upgrade::new("/ws"));
        assert!(matches!(h.actions()[..], [Action::Upgrade(_)]));
        h.upgrade_ok(None);
        assert_eq!(h.events(), ["Up 1", &format!("Upgraded {stream} None")]);
        (h, stream)
    }

    fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    /// Moves the clock to the core's next deadline and fires it.
    fn advance_to_timeout(&mut self) {
        let at = self.core.poll_timeout().expect("a timeout is set");
        assert!(at >= self.now, "a deadline in the past");
        self.now = at;
        self.core.handle_timeout(at);
    }

    /// The next deadline, relative to t0.
    fn timeout(&self) -> Option<Duration> {
        self.core.poll_timeout().map(|at| at - self.t0)
    }

    fn actions(&mut self) -> Vec<Action> {
        std::iter::from_fn(|| self.core.poll_action()).collect()
    }

    fn raw_events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.core.poll_event()).collect()
    }

    fn events(&mut self) -> Vec<String> {
        self.raw_events().iter().map(describe).collect()
    }

    fn upgrade(&mut self, upgrade: Upgrade) -> StreamRef {
        let stream = self.ids.next();
        let request = upgrade.validate().expect("a valid upgrade");
        self.core.handle_command(
            Command::Upgrade {
                stream,
                request: Box::new(request),
                original: Box::new(upgrade),
            },
            self.now,
        );
        stream
    }

    fn send(&mut self, stream: StreamRef, frames: impl Into<Frames>) {
        self.core.handle_command(
            Command::Send {
                stream,
                frames: frames.into(),
            },
            self.now,
        );
    }

    fn command(&mut self, command: Command) {
        self.core.handle_command(command, self.now);
    }

    /// Plays the driver for [`Action::Provide`]: runs the provider (the
    /// tests' providers are ready at once) and reports what it returned.
    fn provide(&mut self) {
        let AutoUpgrade::Provider(provider) = self.core.auto_upgrade.clone() else {
            panic!("no upgrade provider");
        };
        let provided = provider()
            .now_or_never()
            .expect("the test's provider is ready at once");
        self.core
            .handle_transport(TransportEvent::Provided(provided), self.now);
    }

    fn dial_ok(&mut self) {
        self.core.handle_transport(
            TransportEvent::Dialed {
                tls_handshake: None,
            },
            self.now,
        );
    }

    fn dial_failed(&mut self) {
        let error = Error::new(ErrorKind::Connect, "refused");
        self.core
            .handle_transport(TransportEvent::DialFailed(error), self.now);
    }

    fn upgrade_ok(&mut self, protocol: Option<&str>) {
        let upgraded = TransportEvent::Upgraded {
            protocol: protocol.map(str::to_owned),
            headers: HeaderMap::new(),
            version: Some(http::Version::HTTP_11),
        };
        self.core.handle_transport(upgraded, self.now);
    }

    fn upgrade_rejected(&mut self, status: u16) {
        self.upgrade_rejected_with(status, &[]);
    }

    /// A refusal with these response headers.
    fn upgrade_rejected_with(&mut self, status: u16, headers: &[(&'static str, &str)]) {
        let error = Error::new(ErrorKind::Upgrade, "rejected");
        let status = StatusCode::from_u16(status).unwrap();
        let headers = headers
            .iter()
            .map(|(name, value)| {
                (
                    http::HeaderName::from_static(name),
                    http::HeaderValue::from_str(value).unwrap(),
                )
            })
            .collect();
        let failed = TransportEvent::UpgradeFailed {
            status: Some(status),
            headers,
            error,
            unix_now: UNIX_NOW,
        };
        self.core.handle_transport(failed, self.now);
    }

    fn frame(&mut self, frame: Frame) {
        self.core
            .handle_transport(TransportEvent::Frame(frame), self.now);
    }

    /// Plays the driver when the transport goes: every frame handed over
    /// was written but the last `unsent.len()`; a transport that failed on
    /// its own is reported as failed (the core then asks to drop it).
    fn lose(&mut self, error: Option<Error>, unsent: Vec<Outgoing>) {
        let written = self.core.delivery.all_but_last(unsent.len());
        if self.core.pending_loss.is_none()
            && !matches!(
                self.core.phase,
                Phase::Dialing { .. } | Phase::Backoff { .. } | Phase::Terminated
            )
        {
            let failed = TransportEvent::SocketFailed { written, error };
            self.core.handle_transport(failed, self.now);
            assert_eq!(self.core.actions.pop_back(), Some(Action::Disconnect));
        }
        self.core
            .handle_transport(TransportEvent::Lost { written }, self.now);
    }

    /// Everything the transport may write now (sequence numbers cleared,
    /// to compare with [`app`] and [`own_close`]).
    fn pop_all(&mut self) -> Vec<Outgoing> {
        let mut out = Vec::new();
        while self.core.wants_transmit() {
            out.push(unnumbered(
                self.core
                    .poll_transmit(self.now)
                    .cloned()
                    .expect("wants_transmit"),
            ));
        }
        assert_eq!(self.core.poll_transmit(self.now), None);
        out
    }
}

fn text(s: &str) -> Frame {
    Frame::text(s)
}

fn app(frame: Frame) -> Outgoing {
    Outgoing {
        seq: 0,
        frame: frame.into(),
        internal: false,
    }
}

/// The shutdown's own close frame: the core's, like a probe.
fn own_close() -> Outgoing {
    Outgoing {
        seq: 0,
        frame: Frame::close_normal().into(),
        internal: true,
    }
}

fn unnumbered(out: Outgoing) -> Outgoing {
    Outgoing { seq: 0, ..out }
}

fn close(code: u16, reason: &str) -> Frame {
    Frame::Close(Some(CloseFrame {
        code: CloseCode::from_wire(code),
        reason: reason.into(),
    }))
}

fn io_error() -> Error {
    Error::new(ErrorKind::Io, "connection reset")
}

/// One line per event, exact enough to compare whole sequences.
fn describe(event: &Event) -> String {
    fn stream_name(stream: &Option<StreamRef>) -> String {
        stream.map_or_else(|| "-".to_owned(), |s| s.to_string())
    }
    match event {
        Event::Up { attempt } => format!("Up {attempt}"),
        Event::Upgraded {
            stream, protocol, ..
        } => format!("Upgraded {stream} {protocol:?}"),
        Event::UpgradeFailed {
            stream,
            status,
            error,
            ..
        } => format!(
            "UpgradeFailed {stream} {:?} {:?} unsent={:?}",
            status.map(|s| s.as_u16()),
            error.kind(),
            error.unsent()
        ),
        Event::Frame { stream, frame } => format!("Frame {stream} {frame:?}"),
        Event::Error { stream, error } => format!(
            "Error {} {:?} unsent={:?}",
            stream_name(stream),
            error.kind(),
            error.unsent()
        ),
        Event::Down {
            reason,
            killed_streams,
            unsent,
            will_reconnect,
        } => {
            let reason = match reason {
                DownReason::ClosedByPeer(close) => {
                    format!("ClosedByPeer({} {:?})", close.code, close.reason)
                }
                DownReason::Shutdown => "Shutdown".to_owned(),
                DownReason::PeerDead => "PeerDead".to_owned(),
                DownReason::UpgradeRejected => "UpgradeRejected".to_owned(),
                DownReason::Error(error) => format!("Error({:?})", error.kind()),
            };
            let killed: Vec<String> = killed_streams.iter().map(|s| s.to_string()).collect();
            format!("Down {reason} killed={killed:?} unsent={unsent:?} reconnect={will_reconnect}")
        }
        Event::Reconnecting { attempt, delay } => format!("Reconnecting {attempt} {delay:?}"),
    }
}
