//! Tests of the sans-IO core with a fake clock, in the style of
//! quinn-proto's `tests/util.rs`: a harness plays the driver (dial, upgrade,
//! write, lose) and every test asserts the exact events and actions.

use std::sync::atomic::AtomicUsize;

use super::*;
use futures::FutureExt;

use crate::options::{FirstConnection, Retry, RetryDecision};

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

// ---- dial and upgrade ------------------------------------------------------

#[test]
fn a_new_core_dials_at_once() {
    let mut h = Harness::new(options());
    assert_eq!(h.actions(), [Action::Dial]);
    assert!(h.events().is_empty());
    assert_eq!(h.timeout(), Some(10 * SEC), "the connect timeout");
    assert!(!h.core.is_terminated());
}

#[test]
fn dial_ok_is_up_and_does_not_upgrade_unless_asked() {
    let mut h = Harness::up(options());
    assert_eq!(h.events(), ["Up 1"]);
    assert!(h.actions().is_empty());
    assert_eq!(h.timeout(), None);
    assert!(!h.core.wants_transmit());
}

#[test]
fn an_upgrade_asked_before_up_waits_and_runs_on_up() {
    let mut h = Harness::new(options());
    assert_eq!(h.actions(), [Action::Dial]);
    let stream = h.upgrade(Upgrade::new("/ws").protocol("chat"));
    assert!(h.actions().is_empty());
    assert!(h.events().is_empty());
    h.advance(50 * MS);
    h.dial_ok();
    assert_eq!(h.events(), ["Up 1"]);
    let expected = Upgrade::new("/ws").protocol("chat").validate().unwrap();
    assert_eq!(h.actions(), [Action::Upgrade(expected)]);
    assert_eq!(h.timeout(), Some(50 * MS + 10 * SEC), "the upgrade timeout");
    h.upgrade_ok(Some("chat"));
    assert_eq!(h.events(), [format!("Upgraded {stream} Some(\"chat\")")]);
}

#[test]
fn an_upgrade_asked_after_up_runs_at_once() {
    let mut h = Harness::up(options());
    h.events();
    let stream = h.upgrade(Upgrade::new("/ws"));
    assert_eq!(
        h.actions(),
        [Action::Upgrade(Upgrade::new("/ws").validate().unwrap())]
    );
    h.upgrade_ok(None);
    assert_eq!(h.events(), [format!("Upgraded {stream} None")]);
    assert_eq!(h.timeout(), None, "no keepalive: nothing to wait for");
}

#[test]
fn a_second_upgrade_on_the_same_connection_fails() {
    let (mut h, first) = Harness::open(options());
    let second = h.upgrade(Upgrade::new("/other"));
    assert!(h.actions().is_empty());
    assert_eq!(
        h.events(),
        [format!("UpgradeFailed {second} None Upgrade unsent=[]")]
    );
    h.frame(text("still here"));
    assert_eq!(
        h.events(),
        [format!("Frame {first} Text(10 bytes \"still here\")")]
    );
}

#[test]
fn a_protocol_not_offered_fails_the_upgrade_and_drops_the_connection() {
    let mut h = Harness::up(options());
    h.events();
    let stream = h.upgrade(Upgrade::new("/ws").protocol("a"));
    h.actions();
    h.upgrade_ok(Some("b"));
    assert_eq!(
        h.events(),
        [format!("UpgradeFailed {stream} None Upgrade unsent=[]")]
    );
    assert_eq!(h.actions(), [Action::Disconnect]);
    assert_eq!(
        h.timeout(),
        None,
        "nothing to time while the driver drops it"
    );
    assert_eq!(h.core.killed_up_to(), Some(stream));
    h.lose(None, Vec::new());
    assert_eq!(
        h.events(),
        [
            "Down Error(Upgrade) killed=[] unsent=[] reconnect=true",
            "Reconnecting 2 100ms"
        ]
    );
    assert_eq!(h.timeout(), Some(100 * MS));
}

#[test]
fn a_rejected_upgrade_goes_down_and_reconnects() {
    let mut h = Harness::up(options());
    h.events();
    let stream = h.upgrade(Upgrade::new("/ws"));
    h.actions();
    h.send(stream, text("early"));
    h.upgrade_rejected(503);
    assert_eq!(
        h.events(),
        [
            format!("UpgradeFailed {stream} Some(503) Upgrade unsent=[]"),
            "Down UpgradeRejected killed=[] unsent=[Text(5 bytes \"early\")] reconnect=true"
                .to_owned(),
            "Reconnecting 2 100ms".to_owned(),
        ]
    );
    assert!(
        h.actions().is_empty(),
        "the rejection used the transport up"
    );
    assert_eq!(h.core.killed_up_to(), Some(stream));
    assert_eq!(h.core.take_released_bytes(), 5);
    h.advance_to_timeout();
    assert_eq!(h.actions(), [Action::Dial]);
}

#[test]
fn an_upgrade_that_times_out_drops_the_connection() {
    let mut h = Harness::up(options());
    h.events();
    let stream = h.upgrade(Upgrade::new("/ws"));
    h.actions();
    h.advance(9 * SEC);
    h.core.handle_timeout(h.now);
    assert!(h.actions().is_empty(), "not yet");
    h.advance_to_timeout();
    assert_eq!(h.elapsed(), 10 * SEC);
    assert_eq!(
        h.events(),
        [format!("UpgradeFailed {stream} None Timeout unsent=[]")]
    );
    assert_eq!(h.actions(), [Action::Disconnect]);
    h.lose(None, Vec::new());
    assert_eq!(
        h.events(),
        [
            "Down Error(Timeout) killed=[] unsent=[] reconnect=true",
            "Reconnecting 2 100ms"
        ]
    );
}

// ---- frames from the server ---------------------------------------------------

#[test]
fn each_frame_is_exactly_one_event() {
    let (mut h, s) = Harness::open(options());
    h.frame(text("a"));
    h.frame(Frame::binary(vec![1, 2]));
    h.frame(text("b"));
    assert_eq!(
        h.events(),
        [
            format!("Frame {s} Text(1 bytes \"a\")"),
            format!("Frame {s} Binary(2 bytes \"\\u{{1}}\\u{{2}}\")"),
            format!("Frame {s} Text(1 bytes \"b\")"),
        ]
    );
    assert!(h.actions().is_empty());
}

#[test]
fn pings_and_pongs_are_hidden_with_silence_pings() {
    let (mut h, _) = Harness::open(options());
    h.frame(Frame::Ping("p".into()));
    h.frame(Frame::Pong("q".into()));
    assert!(h.events().is_empty());
}

#[test]
fn pings_and_pongs_are_shown_without_silence_pings() {
    let (mut h, s) = Harness::open(options().silence_pings(false));
    h.frame(Frame::Ping("p".into()));
    h.frame(Frame::Pong("q".into()));
    assert_eq!(
        h.events(),
        [
            format!("Frame {s} Ping(\"p\")"),
            format!("Frame {s} Pong(\"q\")")
        ]
    );
}

#[test]
fn no_frame_is_delivered_before_the_upgrade() {
    let mut h = Harness::up(options());
    h.events();
    h.frame(text("early"));
    let _ = h.upgrade(Upgrade::new("/ws"));
    h.frame(text("early"));
    assert!(h.events().is_empty());
}

#[test]
fn a_close_from_the_peer_is_delivered_then_down_closed_by_peer() {
    let (mut h, s) = Harness::open(options());
    h.frame(close(1001, "bye"));
    assert_eq!(h.events(), [format!("Frame {s} Close(1001, \"bye\")")]);
    h.lose(None, Vec::new());
    assert_eq!(
        h.events(),
        [
            format!("Down ClosedByPeer(1001 \"bye\") killed=[\"{s}\"] unsent=[] reconnect=true"),
            "Reconnecting 2 100ms".to_owned(),
        ]
    );
    assert_eq!(h.core.killed_up_to(), Some(s));
}

#[test]
fn a_close_without_status_is_1005() {
    let (mut h, s) = Harness::open(options());
    h.frame(Frame::Close(None));
    h.lose(None, Vec::new());
    assert_eq!(
        h.events(),
        [
            format!("Frame {s} Close"),
            format!("Down ClosedByPeer(1005 \"\") killed=[\"{s}\"] unsent=[] reconnect=true"),
            "Reconnecting 2 100ms".to_owned(),
        ]
    );
}

#[test]
fn a_stop_close_code_ends_the_connection() {
    let (mut h, s) = Harness::open(options());
    h.frame(close(1008, "policy"));
    h.lose(None, Vec::new());
    assert_eq!(
        h.events(),
        [
            format!("Frame {s} Close(1008, \"policy\")"),
            format!(
                "Down ClosedByPeer(1008 \"policy\") killed=[\"{s}\"] unsent=[] reconnect=false"
            ),
        ]
    );
    assert!(h.core.is_terminated());
    assert_eq!(h.timeout(), None);
    assert!(h.actions().is_empty());
}

#[test]
fn a_loss_without_close_frame_is_an_error_down() {
    let (mut h, s) = Harness::open(options());
    h.lose(None, Vec::new());
    assert_eq!(
        h.events(),
        [
            format!("Down Error(Io) killed=[\"{s}\"] unsent=[] reconnect=true"),
            "Reconnecting 2 100ms".to_owned(),
        ]
    );
}

// ---- sending -------------------------------------------------------------------

#[test]
fn frames_queued_while_upgrading_go_out_in_order_after_upgraded() {
    let mut h = Harness::up(options());
    h.events();
    let s = h.upgrade(Upgrade::new("/ws"));
    h.actions();
    h.send(s, vec![text("a"), text("b")]);
    h.send(s, text("c"));
    assert!(
        !h.core.wants_transmit(),
        "nothing is written before the upgrade"
    );
    assert_eq!(h.core.poll_transmit(h.now), None);
    h.upgrade_ok(None);
    assert_eq!(h.events(), [format!("Upgraded {s} None")]);
    assert_eq!(
        h.pop_all(),
        [app(text("a")), app(text("b")), app(text("c"))]
    );
    assert_eq!(h.core.take_released_bytes(), 3);
    assert!(h.events().is_empty());
}

#[test]
fn frames_queued_before_up_go_out_after_the_pending_upgrade() {
    let mut h = Harness::new(options());
    h.actions();
    let s = h.upgrade(Upgrade::new("/ws"));
    h.send(s, text("a"));
    h.dial_failed();
    assert_eq!(
        h.events(),
        ["Error - Connect unsent=[]", "Reconnecting 2 100ms"]
    );
    h.send(s, text("b"));
    h.advance_to_timeout();
    assert_eq!(h.actions(), [Action::Dial]);
    h.dial_ok();
    h.actions();
    h.upgrade_ok(None);
    assert_eq!(
        h.events(),
        ["Up 2".to_owned(), format!("Upgraded {s} None")]
    );
    assert_eq!(h.pop_all(), [app(text("a")), app(text("b"))]);
}

#[test]
fn a_close_frame_moves_to_closing_and_ends_without_reconnect() {
    let (mut h, s) = Harness::open(options());
    h.send(s, vec![text("a"), close(1000, "done"), text("b")]);
    assert_eq!(h.pop_all(), [app(text("a")), app(close(1000, "done"))]);
    assert!(!h.core.wants_transmit(), "nothing is written after a close");
    assert_eq!(h.timeout(), Some(5 * SEC), "the closing timeout");
    h.send(s, text("c"));
    assert_eq!(
        h.events(),
        [format!("Error {s} Closed unsent=[Text(1 bytes \"c\")]")]
    );
    // The server answers, then the transport ends.
    h.frame(close(1000, "done"));
    h.lose(None, Vec::new());
    assert_eq!(
        h.events(),
        [
            format!("Frame {s} Close(1000, \"done\")"),
            format!("Down Shutdown killed=[\"{s}\"] unsent=[Text(1 bytes \"b\")] reconnect=false"),
        ]
    );
    assert!(h.core.is_terminated());
    assert_eq!(h.core.take_released_bytes(), 1 + 6 + 1 + 1);
}

#[test]
fn the_closing_timeout_drops_the_connection() {
    let (mut h, s) = Harness::open(options());
    h.advance(SEC);
    h.send(s, Frame::close_normal());
    h.pop_all();
    h.advance(4 * SEC);
    h.core.handle_timeout(h.now);
    assert!(h.actions().is_empty(), "not yet");
    h.advance_to_timeout();
    assert_eq!(h.elapsed(), 6 * SEC);
    assert_eq!(h.actions(), [Action::Disconnect]);
    h.lose(None, Vec::new());
    assert_eq!(
        h.events(),
        [format!(
            "Down Shutdown killed=[\"{s}\"] unsent=[] reconnect=false"
        )]
    );
    assert!(h.core.is_terminated());
}

// ---- no silent loss ----------------------------------------------------------

#[test]
fn unsent_frames_come_back_in_order_and_bytes_are_released_once() {
    let (mut h, s) = Harness::open(options());
    h.send(s, vec![text("a"), text("bb"), text("ccc"), text("dddd")]);
    assert_eq!(h.core.take_released_bytes(), 0, "queued, not released");
    let written: Vec<Outgoing> = (0..3)
        .map(|_| h.core.poll_transmit(h.now).cloned().unwrap())
        .collect();
    assert_eq!(h.core.take_released_bytes(), 6);
    // "a" reached the socket; "bb" and "ccc" were handed over but not written.
    h.lose(Some(io_error()), written[1..].to_vec());
    let events = h.raw_events();
    let Event::Down { unsent, .. } = &events[0] else {
        panic!("expected Down, got {events:?}");
    };
    assert_eq!(unsent, &[text("bb"), text("ccc"), text("dddd")]);
    assert_eq!(
        h.core.take_released_bytes(),
        4,
        "only the frames still queued"
    );
    assert_eq!(h.core.take_released_bytes(), 0);
}

#[test]
fn keepalive_probes_never_come_back_as_unsent() {
    let (mut h, s) = Harness::open(keepalive_options());
    h.send(s, text("x"));
    h.advance_to_timeout();
    assert_eq!(h.elapsed(), 10 * SEC);
    let out = h.pop_all();
    assert_eq!(out.len(), 2);
    assert!(out[0].internal && matches!(out[0].frame, WireFrame::Ping(_)));
    assert_eq!(out[1], app(text("x")));
    h.lose(Some(io_error()), out);
    assert_eq!(
        h.events(),
        [
            format!("Down Error(Io) killed=[\"{s}\"] unsent=[Text(1 bytes \"x\")] reconnect=true"),
            "Reconnecting 2 100ms".to_owned(),
        ]
    );
    assert_eq!(h.core.take_released_bytes(), 1, "probes are not counted");
}

#[test]
fn frames_sent_on_a_killed_stream_come_back_as_stale() {
    let (mut h, s) = Harness::open(options());
    h.lose(Some(io_error()), Vec::new());
    h.events();
    assert_eq!(h.core.killed_up_to(), Some(s));
    h.send(s, vec![text("late"), Frame::binary(vec![0])]);
    let events = h.raw_events();
    let [Event::Error { stream, error }] = &events[..] else {
        panic!("expected one error, got {events:?}");
    };
    assert_eq!(*stream, Some(s));
    assert_eq!(error.kind(), ErrorKind::StaleStream);
    assert_eq!(error.unsent(), [text("late"), Frame::binary(vec![0])]);
    assert_eq!(h.core.take_released_bytes(), 5);
    // Also after the reconnect, until a new upgrade.
    h.advance_to_timeout();
    h.dial_ok();
    h.events();
    h.send(s, text("x"));
    assert_eq!(
        h.events(),
        [format!(
            "Error {s} StaleStream unsent=[Text(1 bytes \"x\")]"
        )]
    );
}

#[test]
fn sends_and_upgrades_after_termination_are_closed() {
    let (mut h, s) = Harness::open(options().retry(Retry::never()));
    h.lose(Some(io_error()), Vec::new());
    assert_eq!(
        h.events(),
        [format!(
            "Down Error(Io) killed=[\"{s}\"] unsent=[] reconnect=false"
        )]
    );
    assert!(h.core.is_terminated());
    h.send(s, text("x"));
    let t = h.upgrade(Upgrade::new("/ws"));
    assert_eq!(
        h.events(),
        [
            format!("Error {s} Closed unsent=[Text(1 bytes \"x\")]"),
            format!("UpgradeFailed {t} None Closed unsent=[]"),
        ]
    );
    h.frame(text("ghost"));
    h.core.handle_timeout(h.now + 100 * SEC);
    assert!(h.events().is_empty());
    assert!(h.actions().is_empty());
}

// ---- reconnect -------------------------------------------------------------------

#[test]
fn a_lost_connection_reconnects_without_upgrading_again() {
    let (mut h, s) = Harness::open(options());
    h.advance(SEC);
    h.lose(Some(io_error()), Vec::new());
    assert_eq!(
        h.events(),
        [
            format!("Down Error(Io) killed=[\"{s}\"] unsent=[] reconnect=true"),
            "Reconnecting 2 100ms".to_owned(),
        ]
    );
    assert!(h.actions().is_empty());
    assert_eq!(h.timeout(), Some(SEC + 100 * MS));
    h.advance_to_timeout();
    assert_eq!(h.actions(), [Action::Dial]);
    h.dial_ok();
    assert_eq!(h.events(), ["Up 2"]);
    assert!(h.actions().is_empty(), "no re-upgrade by default (as Gun)");
}

#[test]
fn auto_upgrade_repeats_the_last_upgrade_with_a_new_stream() {
    let (mut h, s1) = Harness::open(options().auto_upgrade(true));
    h.lose(Some(io_error()), Vec::new());
    h.events();
    h.advance_to_timeout();
    assert_eq!(h.actions(), [Action::Dial]);
    h.dial_ok();
    assert_eq!(
        h.actions(),
        [Action::Upgrade(Upgrade::new("/ws").validate().unwrap())]
    );
    h.upgrade_ok(None);
    let events = h.events();
    assert_eq!(events[0], "Up 2");
    let s2 = StreamRef(s1.0 + 1);
    assert_eq!(events[1..], [format!("Upgraded {s2} None")]);
    h.frame(text("x"));
    assert_eq!(h.events(), [format!("Frame {s2} Text(1 bytes \"x\")")]);
}

#[test]
fn auto_upgrade_without_a_previous_upgrade_does_nothing() {
    let mut h = Harness::up(options().auto_upgrade(true));
    assert_eq!(h.events(), ["Up 1"]);
    assert!(h.actions().is_empty());
}

#[test]
fn an_upgrade_provider_runs_on_every_up_including_the_first() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let options = options().auto_upgrade_with_sync(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        Upgrade::new(format!("/ws?n={n}"))
    });
    let mut h = Harness::new(options);
    assert_eq!(h.actions(), [Action::Dial]);
    assert_eq!(calls.load(Ordering::SeqCst), 0, "not before Up");
    for round in 1..=3u32 {
        h.dial_ok();
        assert_eq!(h.actions(), [Action::Provide]);
        assert_eq!(
            calls.load(Ordering::SeqCst),
            round as usize - 1,
            "the driver runs it"
        );
        h.provide();
        assert_eq!(calls.load(Ordering::SeqCst), round as usize);
        let expected = Upgrade::new(format!("/ws?n={round}")).validate().unwrap();
        assert_eq!(h.actions(), [Action::Upgrade(expected)]);
        h.upgrade_ok(None);
        assert_eq!(
            h.events(),
            [format!("Up {round}"), format!("Upgraded #0.{round} None")]
        );
        h.lose(Some(io_error()), Vec::new());
        h.events();
        h.advance_to_timeout();
        assert_eq!(h.actions(), [Action::Dial]);
    }
}

#[test]
fn an_invalid_provided_upgrade_fails_without_dropping_the_connection() {
    let options = options().auto_upgrade_with_sync(|| Upgrade::new("no-slash"));
    let mut h = Harness::up(options);
    assert_eq!(h.actions(), [Action::Provide]);
    h.provide();
    assert_eq!(
        h.events(),
        ["Up 1", "UpgradeFailed #0.1 None InvalidPath unsent=[]"]
    );
    assert!(h.actions().is_empty());
    let s = h.upgrade(Upgrade::new("/ok"));
    assert!(matches!(h.actions()[..], [Action::Upgrade(_)]));
    h.upgrade_ok(None);
    assert_eq!(h.events(), [format!("Upgraded {s} None")]);
}

// ---- backoff -----------------------------------------------------------------

#[test]
fn consecutive_dial_failures_back_off_exponentially() {
    let mut h = Harness::new(options());
    let mut log = Vec::new();
    for _ in 0..4 {
        assert_eq!(h.actions(), [Action::Dial]);
        h.dial_failed();
        log.extend(h.events());
        h.advance_to_timeout();
        log.push(format!("dial at {:?}", h.elapsed()));
    }
    assert_eq!(
        log,
        [
            "Error - Connect unsent=[]",
            "Reconnecting 2 100ms",
            "dial at 100ms",
            "Error - Connect unsent=[]",
            "Reconnecting 3 200ms",
            "dial at 300ms",
            "Error - Connect unsent=[]",
            "Reconnecting 4 400ms",
            "dial at 700ms",
            "Error - Connect unsent=[]",
            "Reconnecting 5 800ms",
            "dial at 1.5s",
        ]
    );
    h.dial_ok();
    assert_eq!(h.events(), ["Up 5"]);
}

#[test]
fn exhausted_retries_terminate_with_an_error() {
    let mut h = Harness::new(options().retry(reconnecting().jitter(0.0).max_retries(2)));
    for _ in 0..2 {
        h.actions();
        h.dial_failed();
        h.events();
        h.advance_to_timeout();
    }
    assert_eq!(h.actions(), [Action::Dial]);
    h.dial_failed();
    // Never connected: the first connection's end, with the last error.
    assert_eq!(
        h.events(),
        [
            "Error - Connect unsent=[]",
            "Down Error(Connect) killed=[] unsent=[] reconnect=false"
        ]
    );
    assert!(h.core.is_terminated());
    assert_eq!(h.timeout(), None);
}

#[test]
fn exhausted_retries_after_the_first_connection_end_with_retries_exhausted() {
    let (mut h, _) = Harness::open(options().retry(reconnecting().jitter(0.0).max_retries(1)));
    h.lose(Some(io_error()), Vec::new());
    h.events();
    h.advance_to_timeout();
    assert_eq!(h.actions(), [Action::Dial]);
    h.dial_failed();
    assert_eq!(
        h.events(),
        [
            "Error - Connect unsent=[]",
            "Error - RetriesExhausted unsent=[]"
        ]
    );
    assert!(h.core.is_terminated());
}

#[test]
fn exhausted_retries_return_a_pending_upgrades_frames() {
    let mut h = Harness::new(options().retry(reconnecting().max_retries(0).jitter(0.0)));
    h.actions();
    let s = h.upgrade(Upgrade::new("/ws"));
    h.send(s, text("a"));
    h.dial_failed();
    assert_eq!(
        h.events(),
        [
            format!("UpgradeFailed {s} None Connect unsent=[]"),
            "Error - Connect unsent=[]".to_owned(),
            "Down Error(Connect) killed=[] unsent=[Text(1 bytes \"a\")] reconnect=false".to_owned(),
        ]
    );
    assert!(h.core.is_terminated());
    assert_eq!(h.core.take_released_bytes(), 1);
}

/// A proxy that refused the tunnel with `status`, as the transport reports
/// it.
fn proxy_refused(status: u16) -> Error {
    Error::new(ErrorKind::Proxy, format!("proxy answered {status}"))
        .with_proxy_status(StatusCode::from_u16(status).unwrap())
}

#[test]
fn refused_proxy_credentials_end_the_connection_after_one_attempt() {
    for status in [407, 401] {
        let mut h = Harness::new(options());
        assert_eq!(h.actions(), [Action::Dial]);
        let s = h.upgrade(Upgrade::new("/ws"));
        h.send(s, text("a"));
        h.core
            .handle_transport(TransportEvent::DialFailed(proxy_refused(status)), h.now);
        let events = h.raw_events();
        assert_eq!(
            events.iter().map(describe).collect::<Vec<_>>(),
            [
                format!("UpgradeFailed {s} None Proxy unsent=[]"),
                "Error - Proxy unsent=[]".to_owned(),
                "Down Error(Proxy) killed=[] unsent=[Text(1 bytes \"a\")] reconnect=false"
                    .to_owned(),
            ]
        );
        let Event::Error { error, .. } = &events[1] else {
            unreachable!()
        };
        assert_eq!(error.proxy_status().map(|s| s.as_u16()), Some(status));
        assert!(error.to_string().contains("not retried"), "{error}");
        assert!(h.core.is_terminated());
        assert_eq!(h.timeout(), None, "no retry scheduled");
        assert_eq!(h.actions(), []);
    }
}

#[test]
fn other_proxy_refusals_are_retried_by_the_backoff() {
    let mut h = Harness::new(options());
    let mut log = Vec::new();
    for status in [403, 502, 503] {
        assert_eq!(h.actions(), [Action::Dial]);
        h.core
            .handle_transport(TransportEvent::DialFailed(proxy_refused(status)), h.now);
        log.extend(h.events());
        h.advance_to_timeout();
        log.push(format!("dial at {:?}", h.elapsed()));
    }
    assert_eq!(
        log,
        [
            "Error - Proxy unsent=[]",
            "Reconnecting 2 100ms",
            "dial at 100ms",
            "Error - Proxy unsent=[]",
            "Reconnecting 3 200ms",
            "dial at 300ms",
            "Error - Proxy unsent=[]",
            "Reconnecting 4 400ms",
            "dial at 700ms",
        ]
    );
}

#[test]
fn the_proxy_policy_is_configurable_per_status() {
    // Retrying 407 is a choice, spaced by the backoff...
    let retry = reconnecting()
        .jitter(0.0)
        .on_proxy_status(
            StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            RetryDecision::Retry,
        )
        .on_proxy_status(StatusCode::FORBIDDEN, RetryDecision::Stop);
    let mut h = Harness::new(options().retry(retry.clone()));
    for delay in ["100ms", "200ms"] {
        assert_eq!(h.actions(), [Action::Dial]);
        h.core
            .handle_transport(TransportEvent::DialFailed(proxy_refused(407)), h.now);
        assert_eq!(
            h.events(),
            [
                "Error - Proxy unsent=[]".to_owned(),
                format!("Reconnecting {} {delay}", h.core.attempt() + 1)
            ]
        );
        h.advance_to_timeout();
    }
    // ...and so is stopping on another status.
    assert_eq!(h.actions(), [Action::Dial]);
    h.core
        .handle_transport(TransportEvent::DialFailed(proxy_refused(403)), h.now);
    assert_eq!(
        h.events(),
        [
            "Error - Proxy unsent=[]",
            "Down Error(Proxy) killed=[] unsent=[] reconnect=false"
        ]
    );
    assert!(h.core.is_terminated());
    // A provider cannot fix proxy credentials: RetryWithProvider stops.
    let retry = retry.on_proxy_status(
        StatusCode::PROXY_AUTHENTICATION_REQUIRED,
        RetryDecision::RetryWithProvider,
    );
    assert_eq!(
        retry.proxy_decision(StatusCode::PROXY_AUTHENTICATION_REQUIRED),
        RetryDecision::Stop
    );
    // The upgrade's policy is apart: a 407 upgrade answer is not a proxy's.
    assert_eq!(
        Retry::default().proxy_decision(StatusCode::BAD_GATEWAY),
        RetryDecision::Retry
    );
    assert_eq!(
        Retry::default().decision(StatusCode::BAD_GATEWAY),
        RetryDecision::Retry
    );
    assert_eq!(
        Retry::default().proxy_decision(StatusCode::UNAUTHORIZED),
        RetryDecision::Stop
    );
}

#[test]
fn a_connection_up_past_reset_after_restarts_the_count() {
    let mut h = Harness::new(options());
    // Two failures: the next delay would be 400 ms.
    for _ in 0..2 {
        h.actions();
        h.dial_failed();
        h.advance_to_timeout();
    }
    h.events();
    h.dial_ok();
    assert_eq!(h.events(), ["Up 3"]);
    h.advance(10 * SEC);
    h.lose(Some(io_error()), Vec::new());
    assert_eq!(
        h.events(),
        [
            "Down Error(Io) killed=[] unsent=[] reconnect=true",
            "Reconnecting 4 100ms"
        ]
    );
    h.advance_to_timeout();
    h.dial_ok();
    assert_eq!(
        h.events(),
        ["Up 4"],
        "attempts keep counting; delays start again"
    );
}

#[test]
fn a_short_lived_connection_keeps_the_count() {
    let mut h = Harness::new(options());
    h.actions();
    h.dial_failed();
    h.advance_to_timeout();
    h.dial_ok();
    assert_eq!(h.events()[2], "Up 2");
    h.advance(10 * SEC - MS);
    h.lose(Some(io_error()), Vec::new());
    assert_eq!(
        h.events(),
        [
            "Down Error(Io) killed=[] unsent=[] reconnect=true",
            "Reconnecting 3 200ms"
        ]
    );
}

#[test]
fn the_connect_timeout_disconnects_then_backs_off() {
    let mut h = Harness::new(options());
    h.actions();
    h.advance_to_timeout();
    assert_eq!(h.elapsed(), 10 * SEC);
    assert_eq!(h.actions(), [Action::Disconnect]);
    assert!(h.events().is_empty());
    h.lose(None, Vec::new());
    assert_eq!(
        h.events(),
        ["Error - Timeout unsent=[]", "Reconnecting 2 100ms"]
    );
    assert_eq!(h.timeout(), Some(10 * SEC + 100 * MS));
}

#[test]
fn late_transport_reports_are_ignored() {
    let mut h = Harness::up(options());
    h.events();
    h.dial_ok();
    h.dial_failed();
    h.upgrade_ok(None);
    h.upgrade_rejected(500);
    assert!(h.events().is_empty());
    assert!(h.actions().is_empty());
}

// ---- keepalive ---------------------------------------------------------------

#[test]
fn the_keepalive_probes_after_a_quiet_interval_and_measures_rtt() {
    let (mut h, s) = Harness::open(keepalive_options());
    assert_eq!(h.timeout(), Some(10 * SEC));
    h.advance(5 * SEC);
    h.frame(text("traffic"));
    h.events();
    assert_eq!(h.timeout(), Some(15 * SEC), "traffic postpones the probe");
    h.advance_to_timeout();
    let out = h.pop_all();
    let [Outgoing {
        frame: WireFrame::Ping(payload),
        internal: true,
        ..
    }] = &out[..]
    else {
        panic!("expected one ping probe, got {out:?}");
    };
    assert_eq!(h.timeout(), Some(18 * SEC), "the pong deadline");
    h.advance(20 * MS);
    h.frame(Frame::Pong(payload.clone()));
    assert!(h.events().is_empty(), "pongs are silenced");
    assert_eq!(h.core.rtt(), Some(20 * MS));
    assert_eq!(h.timeout(), Some(25 * SEC + 20 * MS));
    let _ = s;
}

/// A burst's queue capacity is kept between batches (no churn in a
/// pipelined flow) and freed at the first probe after it, a quiet interval;
/// the driver is then told to trim the event queue once.
#[test]
fn the_first_probe_after_a_burst_frees_the_queues_capacity() {
    let (mut h, _) = Harness::open(keepalive_options());
    for i in 0..1_000 {
        h.frame(text(&format!("{i}")));
    }
    assert_eq!(h.events().len(), 1_000);
    assert!(
        h.core.events_mut().capacity() >= 1_000,
        "kept between batches"
    );
    assert!(!h.core.take_trim());
    h.advance_to_timeout();
    assert!(h.pop_all()[0].internal, "the probe");
    assert_eq!(h.core.events_mut().capacity(), 0, "freed at the probe");
    assert!(h.core.take_trim(), "the driver trims the event queue");
    assert!(!h.core.take_trim(), "once");
}

#[test]
fn a_silent_peer_is_dead_and_the_connection_reconnects() {
    let (mut h, s) = Harness::open(keepalive_options());
    h.advance_to_timeout();
    assert!(h.pop_all()[0].internal);
    h.advance_to_timeout();
    assert_eq!(h.elapsed(), 13 * SEC);
    assert_eq!(h.actions(), [Action::Disconnect]);
    h.lose(None, Vec::new());
    assert_eq!(
        h.events(),
        [
            format!("Down PeerDead killed=[\"{s}\"] unsent=[] reconnect=true"),
            "Reconnecting 2 100ms".to_owned(),
        ]
    );
}

#[test]
fn the_probe_command_probes_at_once() {
    let (mut h, _) = Harness::open(keepalive_options());
    h.advance(SEC);
    h.command(Command::Probe);
    let out = h.pop_all();
    assert!(matches!(
        &out[..],
        [Outgoing {
            frame: WireFrame::Ping(_),
            internal: true,
            ..
        }]
    ));
    assert_eq!(h.timeout(), Some(4 * SEC));
    h.command(Command::Probe);
    assert!(h.pop_all().is_empty(), "one probe at a time");
}

#[test]
fn the_probe_command_without_keepalive_does_nothing() {
    let (mut h, _) = Harness::open(options());
    h.command(Command::Probe);
    assert!(!h.core.wants_transmit());
    let mut h = Harness::new(keepalive_options());
    h.command(Command::Probe);
    assert!(!h.core.wants_transmit());
}

#[test]
fn a_heartbeat_reply_is_hidden_and_measured() {
    let options = options().keepalive(
        Keepalive::every(10 * SEC)
            .timeout(3 * SEC)
            .heartbeat(crate::Heartbeat::echo(text("hb"))),
    );
    let (mut h, s) = Harness::open(options);
    h.advance_to_timeout();
    assert_eq!(
        h.pop_all(),
        [Outgoing {
            seq: 0,
            frame: text("hb").into(),
            internal: true
        }]
    );
    h.advance(SEC);
    h.frame(text("hb"));
    h.frame(text("other"));
    assert_eq!(h.events(), [format!("Frame {s} Text(5 bytes \"other\")")]);
    assert_eq!(h.core.rtt(), Some(SEC));
}

// ---- shutdown ----------------------------------------------------------------

#[test]
fn shutdown_while_open_queues_a_normal_close_after_pending_frames() {
    let (mut h, s) = Harness::open(options());
    h.send(s, vec![text("a"), text("b")]);
    h.command(Command::Shutdown);
    h.send(s, text("c"));
    assert_eq!(
        h.events(),
        [format!("Error {s} Closed unsent=[Text(1 bytes \"c\")]")]
    );
    assert_eq!(h.pop_all(), [app(text("a")), app(text("b")), own_close()]);
    assert_eq!(h.timeout(), Some(5 * SEC));
    h.lose(None, Vec::new());
    assert_eq!(
        h.events(),
        [format!(
            "Down Shutdown killed=[\"{s}\"] unsent=[] reconnect=false"
        )]
    );
    assert!(h.core.is_terminated());
}

#[test]
fn shutdown_while_dialing_terminates_and_returns_the_pending_upgrades_frames() {
    let mut h = Harness::new(options());
    h.actions();
    let s = h.upgrade(Upgrade::new("/ws"));
    h.send(s, text("a"));
    h.command(Command::Shutdown);
    assert_eq!(h.actions(), [Action::Disconnect]);
    assert_eq!(
        h.events(),
        [format!(
            "UpgradeFailed {s} None Closed unsent=[Text(1 bytes \"a\")]"
        )]
    );
    assert!(h.core.is_terminated());
    // The driver reports the aborted dial: nothing more happens.
    h.lose(None, Vec::new());
    assert!(h.events().is_empty());
    assert_eq!(h.core.take_released_bytes(), 1);
}

#[test]
fn shutdown_during_backoff_terminates() {
    let mut h = Harness::new(options());
    h.actions();
    h.dial_failed();
    h.events();
    h.command(Command::Shutdown);
    assert!(h.actions().is_empty());
    assert_eq!(h.events(), ["Error - Closed unsent=[]"]);
    assert!(h.core.is_terminated());
    assert_eq!(h.timeout(), None);
}

#[test]
fn shutdown_while_upgrading_drops_the_connection() {
    let mut h = Harness::up(options());
    h.events();
    let s = h.upgrade(Upgrade::new("/ws"));
    h.actions();
    h.send(s, text("a"));
    h.command(Command::Shutdown);
    assert_eq!(h.actions(), [Action::Disconnect]);
    h.lose(None, Vec::new());
    assert_eq!(
        h.events(),
        [format!(
            "Down Shutdown killed=[\"{s}\"] unsent=[Text(1 bytes \"a\")] reconnect=false"
        )]
    );
    assert!(h.core.is_terminated());
}

#[test]
fn a_second_shutdown_is_a_no_op() {
    let (mut h, _) = Harness::open(options());
    h.command(Command::Shutdown);
    h.command(Command::Shutdown);
    assert_eq!(h.pop_all(), [own_close()]);
    assert!(h.events().is_empty());
    assert!(h.actions().is_empty());
}

#[test]
fn the_shutdown_close_frame_never_comes_back_as_unsent() {
    // Lost before the close frame was handed to the transport.
    let (mut h, s) = Harness::open(options());
    h.send(s, text("a"));
    h.command(Command::Shutdown);
    let a = h.core.poll_transmit(h.now).cloned().unwrap();
    h.lose(Some(io_error()), vec![a]);
    assert_eq!(
        h.events(),
        [format!(
            "Down Shutdown killed=[\"{s}\"] unsent=[Text(1 bytes \"a\")] reconnect=false"
        )]
    );
    assert_eq!(
        h.core.take_released_bytes(),
        1,
        "only the application's bytes"
    );

    // Lost after it was handed over but before it was written.
    let (mut h, s) = Harness::open(options());
    h.send(s, text("a"));
    h.command(Command::Shutdown);
    let out = h.pop_all();
    h.lose(Some(io_error()), out);
    assert_eq!(
        h.events(),
        [format!(
            "Down Shutdown killed=[\"{s}\"] unsent=[Text(1 bytes \"a\")] reconnect=false"
        )]
    );
    assert_eq!(h.core.take_released_bytes(), 1);
}

#[test]
fn a_superseded_pending_upgrade_returns_its_frames() {
    let mut h = Harness::new(options());
    h.actions();
    let old = h.upgrade(Upgrade::new("/old"));
    h.send(old, text("for old"));
    let new = h.upgrade(Upgrade::new("/new"));
    assert_eq!(
        h.events(),
        [format!(
            "UpgradeFailed {old} None Upgrade unsent=[Text(7 bytes \"for old\")]"
        )]
    );
    assert_eq!(h.core.take_released_bytes(), 7);
    h.send(old, text("late"));
    h.send(new, text("for new"));
    assert_eq!(
        h.events(),
        [format!(
            "Error {old} StaleStream unsent=[Text(4 bytes \"late\")]"
        )]
    );
    h.dial_ok();
    assert_eq!(
        h.actions(),
        [Action::Upgrade(Upgrade::new("/new").validate().unwrap())]
    );
    h.upgrade_ok(None);
    assert_eq!(h.pop_all(), [app(text("for new"))]);
}

#[test]
fn a_failed_upgrade_is_not_a_stable_connection() {
    let mut h = Harness::up(options());
    h.events();
    h.advance(30 * SEC);
    let stream = h.upgrade(Upgrade::new("/ws"));
    h.actions();
    h.upgrade_rejected(503);
    assert_eq!(
        h.events(),
        [
            format!("UpgradeFailed {stream} Some(503) Upgrade unsent=[]"),
            "Down UpgradeRejected killed=[] unsent=[] reconnect=true".to_owned(),
            "Reconnecting 2 100ms".to_owned(),
        ]
    );
    h.advance_to_timeout();
    h.dial_ok();
    assert_eq!(h.events(), ["Up 2"]);
}

// ---- the retry policy after a refused upgrade -----------------------------------

/// A core with auto-upgrade whose first upgrade was just refused with
/// `status` (and `headers`): its events.
fn refused(
    options: Options,
    status: u16,
    headers: &[(&'static str, &str)],
) -> (Harness, Vec<String>) {
    let mut h = Harness::up(options.auto_upgrade(true));
    let stream = h.upgrade(Upgrade::new("/ws"));
    assert!(matches!(h.actions()[..], [Action::Upgrade(_)]));
    h.events();
    h.upgrade_rejected_with(status, headers);
    assert_eq!(stream, StreamRef(1));
    let events = h.events();
    (h, events)
}

/// The events of a refusal the policy does not retry (on the first
/// connection, whose end says nothing of a stream: see
/// `after_the_first_connection_a_stop_names_its_stream`).
fn stopped(status: u16) -> Vec<String> {
    vec![
        format!("UpgradeFailed #0.1 Some({status}) Upgrade unsent=[]"),
        "Error - UpgradeRefused unsent=[]".to_owned(),
        "Down UpgradeRejected killed=[] unsent=[] reconnect=false".to_owned(),
    ]
}

/// The events of a retried refusal.
fn retried(status: u16, delay: &str) -> Vec<String> {
    vec![
        format!("UpgradeFailed #0.1 Some({status}) Upgrade unsent=[]"),
        "Down UpgradeRejected killed=[] unsent=[] reconnect=true".to_owned(),
        format!("Reconnecting 2 {delay}"),
    ]
}

#[test]
fn a_refused_403_with_auto_upgrade_ends_the_connection() {
    let (mut h, events) = refused(options(), 403, &[]);
    assert_eq!(events, stopped(403));
    assert!(h.core.is_terminated());
    assert!(h.actions().is_empty(), "no new dial");
    assert_eq!(h.core.poll_timeout(), None);
}

#[test]
fn the_refusal_error_names_the_status_and_the_reason() {
    let mut h = Harness::up(options().auto_upgrade(true));
    h.upgrade(Upgrade::new("/ws"));
    h.actions();
    h.events();
    h.upgrade_rejected(401);
    let refusal = h
        .raw_events()
        .into_iter()
        .find_map(|event| match event {
            Event::Error { error, .. } => Some(error),
            _ => None,
        })
        .expect("an UpgradeRefused error");
    assert_eq!(refusal.kind(), ErrorKind::UpgradeRefused);
    let shown = refusal.to_string();
    assert!(
        shown.contains("401") && shown.contains("auto_upgrade_with"),
        "{shown}"
    );
}

#[test]
fn statuses_other_than_401_408_429_and_5xx_stop_by_default() {
    for status in [300, 301, 302, 307, 400, 403, 404, 405, 410, 426, 200, 204] {
        let (h, events) = refused(options(), status, &[]);
        assert_eq!(events, stopped(status), "{status}");
        assert!(h.core.is_terminated(), "{status}");
    }
}

#[test]
fn statuses_408_429_and_5xx_are_retried_by_the_backoff() {
    for status in [408, 429, 500, 502, 503, 504, 599] {
        let (mut h, events) = refused(options(), status, &[]);
        assert_eq!(events, retried(status, "100ms"), "{status}");
        h.advance_to_timeout();
        assert_eq!(h.actions(), [Action::Dial], "{status}");
    }
}

#[test]
fn a_401_is_retried_only_with_an_upgrade_provider() {
    let (h, events) = refused(options(), 401, &[]);
    assert_eq!(events, stopped(401));
    assert!(h.core.is_terminated());

    let mut h = Harness::up(options().auto_upgrade_with_sync(|| Upgrade::new("/ws")));
    assert_eq!(h.actions(), [Action::Provide]);
    h.provide();
    assert!(matches!(h.actions()[..], [Action::Upgrade(_)]));
    h.events();
    h.upgrade_rejected(401);
    assert_eq!(h.events(), retried(401, "100ms"));
    h.advance_to_timeout();
    assert_eq!(h.actions(), [Action::Dial]);
    h.dial_ok();
    assert_eq!(h.actions(), [Action::Provide]);
    h.provide();
    assert!(
        matches!(h.actions()[..], [Action::Upgrade(_)]),
        "the provider asks again, with fresh credentials"
    );
}

#[test]
fn retry_after_in_seconds_is_a_floor_on_the_delay() {
    let (mut h, events) = refused(options(), 429, &[("retry-after", "5")]);
    assert_eq!(events, retried(429, "5s"));
    assert_eq!(h.timeout(), Some(5 * SEC));
    h.advance(4_999 * MS);
    h.core.handle_timeout(h.now);
    assert!(h.actions().is_empty(), "not before Retry-After");
    h.advance_to_timeout();
    assert_eq!(h.actions(), [Action::Dial]);
    assert_eq!(h.elapsed(), 5 * SEC);
}

#[test]
fn retry_after_never_shortens_the_backoff() {
    // The backoff is already past 1 s after a few failures: 0 s changes nothing.
    let (mut h, _) = refused(options(), 503, &[]);
    for _ in 0..4 {
        h.advance_to_timeout();
        h.actions();
        h.dial_failed();
        h.events();
    }
    h.advance_to_timeout();
    assert_eq!(h.actions(), [Action::Dial]);
    h.dial_ok();
    assert!(matches!(h.actions()[..], [Action::Upgrade(_)]));
    h.events();
    h.upgrade_rejected_with(503, &[("retry-after", "0")]);
    assert_eq!(h.events().last().unwrap(), "Reconnecting 7 3.2s");
}

#[test]
fn retry_after_as_an_http_date() {
    // UNIX_NOW is 08:49:37; the server asks for 08:50:07.
    let date = "Sun, 06 Nov 1994 08:50:07 GMT";
    let (_, events) = refused(options(), 503, &[("retry-after", date)]);
    assert_eq!(events, retried(503, "30s"));
    // A date in the past, or one that cannot be read: the backoff alone.
    for value in [
        "Sun, 06 Nov 1994 08:00:00 GMT",
        "soon",
        "Sunday, 06-Nov-94 08:50:07 GMT",
    ] {
        let (_, events) = refused(options(), 503, &[("retry-after", value)]);
        assert_eq!(events, retried(503, "100ms"), "{value}");
    }
}

#[test]
fn retry_after_is_capped_at_max_delay() {
    let (_, events) = refused(options(), 503, &[("retry-after", "86400")]);
    assert_eq!(events, retried(503, "30s"), "max_delay, not a day");
    let patient = options().retry(
        reconnecting()
            .jitter(0.0)
            .max_delay(crate::options::MAX_DURATION),
    );
    let (_, events) = refused(patient, 503, &[("retry-after", "86400")]);
    assert_eq!(
        events,
        retried(503, "86400s"),
        "raise max_delay to honour it"
    );
}

#[test]
fn a_retried_refusal_counts_against_max_retries() {
    let options = options().retry(reconnecting().jitter(0.0).max_retries(0));
    let (h, events) = refused(options, 503, &[("retry-after", "1")]);
    assert_eq!(
        events,
        [
            "UpgradeFailed #0.1 Some(503) Upgrade unsent=[]",
            "Error - UpgradeRefused unsent=[]",
            "Down UpgradeRejected killed=[] unsent=[] reconnect=false",
        ],
        "out of retries: the first connection ends with its status"
    );
    assert!(h.core.is_terminated());
}

#[test]
fn the_decision_is_configurable_per_status() {
    let retry = reconnecting()
        .jitter(0.0)
        .on_status(StatusCode::NOT_FOUND, RetryDecision::Retry)
        .on_status(StatusCode::SERVICE_UNAVAILABLE, RetryDecision::Stop)
        .on_status(StatusCode::FORBIDDEN, RetryDecision::RetryWithProvider)
        .on_status(StatusCode::FORBIDDEN, RetryDecision::Retry);
    let (_, events) = refused(options().retry(retry.clone()), 404, &[]);
    assert_eq!(events, retried(404, "100ms"));
    let (_, events) = refused(options().retry(retry.clone()), 503, &[("retry-after", "1")]);
    assert_eq!(events, stopped(503));
    let (_, events) = refused(options().retry(retry.clone()), 403, &[]);
    assert_eq!(events, retried(403, "100ms"), "the last call wins");
    let (_, events) = refused(options().retry(retry), 429, &[]);
    assert_eq!(events, retried(429, "100ms"), "others keep their default");
}

#[test]
fn a_refusal_after_shutdown_adds_no_refusal_error() {
    let mut h = Harness::up(options());
    h.events();
    h.upgrade(Upgrade::new("/ws"));
    h.actions();
    // The application sent a close frame while the upgrade was in flight.
    h.send(StreamRef(1), Frame::close_normal());
    h.upgrade_rejected(403);
    let events = h.events();
    assert!(
        !events.iter().any(|e| e.contains("UpgradeRefused")),
        "{events:?}"
    );
    assert!(h.core.is_terminated());
}

#[test]
fn a_failure_without_a_status_is_retried_by_the_backoff() {
    // What a browser reports for any failed upgrade: no status.
    let mut h = Harness::up(options().auto_upgrade(true));
    h.upgrade(Upgrade::new("/ws"));
    h.actions();
    h.events();
    let error = Error::new(ErrorKind::Upgrade, "the WebSocket did not open");
    h.core
        .on_upgrade_failed(None, HeaderMap::new(), error, h.now, UNIX_NOW);
    assert_eq!(
        h.events(),
        [
            "UpgradeFailed #0.1 None Upgrade unsent=[]",
            "Down Error(Upgrade) killed=[] unsent=[] reconnect=true",
            "Reconnecting 2 100ms",
        ]
    );
}

// ---- the first connection --------------------------------------------------------

/// Options with the default first-connection budget (one attempt) and
/// exact delays.
fn first(budget: FirstConnection) -> Options {
    options().retry(Retry::default().jitter(0.0).first_connection(budget))
}

/// The end of a first connection that never opened, as `Retry` documents
/// it: the waiting upgrade's failure, the error, the final `Down`.
fn first_failed(stream: StreamRef, kind: &str, unsent: &str) -> Vec<String> {
    vec![
        format!("UpgradeFailed {stream} None {kind} unsent=[]"),
        format!("Error - {kind} unsent=[]"),
        format!("Down Error({kind}) killed=[] unsent=[{unsent}] reconnect=false"),
    ]
}

#[test]
fn first_connection_gives_up_after_one_refused_dial_by_default() {
    let mut h = Harness::new(options().retry(Retry::default().jitter(0.0)));
    assert_eq!(h.actions(), [Action::Dial]);
    let s = h.upgrade(Upgrade::new("/ws"));
    h.send(s, text("a"));
    h.dial_failed();
    assert_eq!(
        h.events(),
        first_failed(s, "Connect", "Text(1 bytes \"a\")")
    );
    assert!(h.core.is_terminated());
    assert_eq!(h.timeout(), None, "no retry");
    assert_eq!(h.core.take_released_bytes(), 1);
}

#[test]
fn first_connection_ends_the_same_way_whatever_the_retry_policy() {
    for retry in [
        Retry::default(),
        Retry::never(),
        Retry::default().max_retries(5),
        reconnecting().max_retries(0),
    ] {
        let mut h = Harness::new(options().retry(retry.jitter(0.0)));
        h.actions();
        let s = h.upgrade(Upgrade::new("/ws"));
        h.dial_failed();
        assert_eq!(h.events(), first_failed(s, "Connect", ""));
    }
}

#[test]
fn first_connection_gives_up_after_one_refused_upgrade_with_its_status() {
    // 503 would be retried by the reconnect policy; the budget is spent.
    let (h, events) = refused(first(FirstConnection::Attempts(1)), 503, &[]);
    assert_eq!(events, stopped(503));
    assert!(h.core.is_terminated());
    let mut h = Harness::up(first(FirstConnection::Attempts(1)));
    h.events();
    let s = h.upgrade(Upgrade::new("/ws"));
    h.actions();
    h.upgrade_rejected(503);
    let events = h.raw_events();
    let Event::Error {
        stream: None,
        error,
    } = &events[1]
    else {
        panic!("{events:?}")
    };
    assert_eq!(error.kind(), ErrorKind::UpgradeRefused);
    assert_eq!(error.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    assert!(error.to_string().contains("first connection"), "{error}");
    assert!(matches!(events[0], Event::UpgradeFailed { stream, .. } if stream == s));
}

#[test]
fn first_connection_gives_up_after_an_upgrade_timeout() {
    let mut h = Harness::up(first(FirstConnection::Attempts(1)));
    let s = h.upgrade(Upgrade::new("/ws"));
    h.actions();
    h.events();
    h.advance_to_timeout();
    assert_eq!(h.elapsed(), 10 * SEC);
    assert_eq!(h.actions(), [Action::Disconnect]);
    h.lose(None, Vec::new());
    assert_eq!(
        h.events(),
        [
            format!("UpgradeFailed {s} None Timeout unsent=[]"),
            "Error - Timeout unsent=[]".to_owned(),
            "Down Error(Timeout) killed=[] unsent=[] reconnect=false".to_owned(),
        ]
    );
    assert!(h.core.is_terminated());
}

#[test]
fn first_connection_attempts_bound_the_dials() {
    let mut h = Harness::new(first(FirstConnection::Attempts(3)));
    let s = h.upgrade(Upgrade::new("/ws"));
    for (attempt, delay) in [(2, "100ms"), (3, "200ms")] {
        assert_eq!(h.actions(), [Action::Dial]);
        h.dial_failed();
        assert_eq!(
            h.events(),
            [
                "Error - Connect unsent=[]".to_owned(),
                format!("Reconnecting {attempt} {delay}"),
            ]
        );
        h.advance_to_timeout();
    }
    assert_eq!(h.actions(), [Action::Dial]);
    h.dial_failed();
    assert_eq!(h.events(), first_failed(s, "Connect", ""));
    assert_eq!(h.core.attempt(), 3);
}

#[test]
fn first_connection_attempts_count_refused_upgrades_too() {
    let mut h = Harness::new(first(FirstConnection::Attempts(2)));
    h.actions();
    h.dial_ok();
    h.upgrade(Upgrade::new("/ws"));
    h.actions();
    h.events();
    h.upgrade_rejected(503);
    assert_eq!(h.events(), retried(503, "100ms"));
    h.advance_to_timeout();
    h.actions();
    h.dial_ok();
    h.upgrade(Upgrade::new("/ws"));
    h.actions();
    h.events();
    h.upgrade_rejected(503);
    let events = h.events();
    assert_eq!(events[1..], stopped(503)[1..]);
    assert!(h.core.is_terminated());
}

#[test]
fn first_connection_deadline_stops_scheduling_attempts_past_it() {
    // Delays 100, 200, 400 ms: attempts at 0, 100, 300 and 700 ms; the
    // next would start at 1500 ms, past the deadline.
    let mut h = Harness::new(first(FirstConnection::Deadline(SEC)));
    let mut starts = Vec::new();
    loop {
        assert_eq!(h.actions(), [Action::Dial]);
        starts.push(h.elapsed().as_millis());
        h.dial_failed();
        if h.core.is_terminated() {
            break;
        }
        h.events();
        h.advance_to_timeout();
    }
    assert_eq!(starts, [0, 100, 300, 700]);
    assert_eq!(
        h.events(),
        [
            "Error - Connect unsent=[]",
            "Down Error(Connect) killed=[] unsent=[] reconnect=false"
        ]
    );
}

#[test]
fn first_connection_deadline_cuts_the_attempt_in_progress() {
    let mut h = Harness::new(first(FirstConnection::Deadline(2 * SEC)));
    h.actions();
    let s = h.upgrade(Upgrade::new("/ws"));
    // The dial hangs: the deadline (2 s) comes before the connect timeout (10 s).
    assert_eq!(h.timeout(), Some(2 * SEC));
    h.advance_to_timeout();
    assert_eq!(h.actions(), [Action::Disconnect]);
    h.core
        .handle_transport(TransportEvent::Lost { written: None }, h.now);
    let events = h.raw_events();
    assert_eq!(
        events.iter().map(describe).collect::<Vec<_>>(),
        first_failed(s, "Timeout", "")
    );
    let Event::Error { error, .. } = &events[1] else {
        unreachable!()
    };
    assert!(error.to_string().contains("deadline"), "{error}");
    // An upgrade in progress at the deadline is cut too.
    let mut h = Harness::up(first(FirstConnection::Deadline(2 * SEC)));
    h.upgrade(Upgrade::new("/ws"));
    h.actions();
    assert_eq!(h.timeout(), Some(2 * SEC), "not the 10 s upgrade timeout");
}

#[test]
fn first_connection_waits_for_a_server_that_comes_up_within_the_budget() {
    let mut h = Harness::new(first(FirstConnection::Attempts(3)));
    let s = h.upgrade(Upgrade::new("/ws"));
    h.actions();
    h.dial_failed();
    h.advance_to_timeout();
    h.actions();
    h.dial_ok();
    assert!(
        matches!(h.actions()[..], [Action::Upgrade(_)]),
        "the waiting upgrade runs"
    );
    h.upgrade_ok(None);
    assert_eq!(
        h.events(),
        [
            "Error - Connect unsent=[]".to_owned(),
            "Reconnecting 2 100ms".to_owned(),
            "Up 2".to_owned(),
            format!("Upgraded {s} None"),
        ]
    );
}

#[test]
fn after_the_first_connection_the_reconnect_policy_applies() {
    // One attempt for the first connection, then retries forever, with a
    // fresh count.
    let mut h = Harness::new(first(FirstConnection::Attempts(1)));
    h.actions();
    h.dial_ok();
    h.upgrade(Upgrade::new("/ws"));
    h.actions();
    h.upgrade_ok(None);
    h.events();
    h.lose(Some(io_error()), Vec::new());
    h.events();
    for delay in ["200ms", "400ms", "800ms"] {
        h.advance_to_timeout();
        assert_eq!(h.actions(), [Action::Dial]);
        h.dial_failed();
        assert_eq!(
            h.events()[1],
            format!("Reconnecting {} {delay}", h.core.attempt() + 1)
        );
    }
    assert!(!h.core.is_terminated());
}

#[test]
fn after_the_first_connection_a_stop_names_its_stream() {
    let (mut h, _) = Harness::open(options().auto_upgrade(true));
    h.lose(Some(io_error()), Vec::new());
    h.events();
    h.advance_to_timeout();
    h.actions();
    h.dial_ok();
    h.actions();
    h.events();
    h.upgrade_rejected(403);
    let events = h.events();
    assert_eq!(events[1], "Error #0.2 UpgradeRefused unsent=[]");
}

#[test]
fn first_connection_follows_the_status_decisions_within_its_budget() {
    // A 404 is not retried, however many attempts are left.
    let (h, events) = refused(first(FirstConnection::Attempts(5)), 404, &[]);
    assert_eq!(events, stopped(404));
    assert!(h.core.is_terminated());
}

#[test]
fn a_failing_provider_fails_the_upgrade_and_follows_the_retry_policy() {
    let failing = || {
        std::future::ready(Err::<Upgrade, _>(std::io::Error::other(
            "token service down",
        )))
    };
    // The first connection: it ends with the provider's error.
    let mut h = Harness::up(first(FirstConnection::Attempts(1)).auto_upgrade_with(failing));
    assert_eq!(h.actions(), [Action::Provide]);
    h.events();
    h.provide();
    assert_eq!(h.actions(), [Action::Disconnect]);
    h.core
        .handle_transport(TransportEvent::Lost { written: None }, h.now);
    let events = h.raw_events();
    assert_eq!(
        events.iter().map(describe).collect::<Vec<_>>(),
        [
            "UpgradeFailed #0.1 None Provider unsent=[]",
            "Error - Provider unsent=[]",
            "Down Error(Provider) killed=[] unsent=[] reconnect=false",
        ]
    );
    let Event::Error { error, .. } = &events[1] else {
        unreachable!()
    };
    let source = std::error::Error::source(error).expect("the provider's error");
    assert_eq!(source.to_string(), "token service down");
    // With retries, a failing provider is retried by the backoff.
    let mut h = Harness::up(options().auto_upgrade_with(failing));
    h.actions();
    h.events();
    h.provide();
    h.actions();
    h.core
        .handle_transport(TransportEvent::Lost { written: None }, h.now);
    assert_eq!(
        h.events(),
        [
            "UpgradeFailed #0.1 None Provider unsent=[]",
            "Down Error(Provider) killed=[] unsent=[] reconnect=true",
            "Reconnecting 2 100ms",
        ]
    );
}

#[test]
fn a_provider_that_hangs_is_bounded_by_the_upgrade_timeout() {
    let mut h = Harness::up(
        options()
            .upgrade_timeout(3 * SEC)
            .auto_upgrade_with(std::future::pending::<Result<Upgrade, String>>),
    );
    assert_eq!(h.actions(), [Action::Provide]);
    h.events();
    assert_eq!(h.timeout(), Some(3 * SEC));
    h.advance_to_timeout();
    assert_eq!(h.actions(), [Action::Disconnect]);
    h.core
        .handle_transport(TransportEvent::Lost { written: None }, h.now);
    let events = h.raw_events();
    let Event::UpgradeFailed { error, .. } = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(error.kind(), ErrorKind::Timeout);
    assert!(error.to_string().contains("provider"), "{error}");
    // A late answer is ignored.
    h.core
        .handle_transport(TransportEvent::Provided(Ok(Upgrade::new("/late"))), h.now);
    assert!(h.actions().is_empty());
}

#[test]
fn a_provided_upgrade_gets_its_own_upgrade_timeout() {
    let mut h = Harness::up(
        options()
            .upgrade_timeout(3 * SEC)
            .auto_upgrade_with_sync(|| Upgrade::new("/ws")),
    );
    h.actions();
    h.advance(2 * SEC);
    h.provide();
    assert!(matches!(h.actions()[..], [Action::Upgrade(_)]));
    assert_eq!(h.timeout(), Some(5 * SEC));
}

// ---- randomized --------------------------------------------------------------

/// The backoff's SplitMix64, for repeatable random runs without a dependency.
struct Random(super::reconnect::SplitMix64);

impl Random {
    fn new(seed: u64) -> Random {
        Random(super::reconnect::SplitMix64(seed))
    }

    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// What the simulated driver holds (see `driver.rs`).
#[derive(Debug)]
enum SimTransport {
    None,
    Dialing,
    Dialed,
    Upgrading(Vec<String>),
    Open { in_flight: Vec<Outgoing> },
}

/// An observer that counts what it is told, to compare with the core's
/// counters and events. It panics at its `panic_at`-th call, if set (the
/// connection must not notice).
#[derive(Default)]
struct Counting {
    calls: AtomicUsize,
    panic_at: Option<usize>,
    connect_start: AtomicUsize,
    connect_end: AtomicUsize,
    upgrade_sent: AtomicUsize,
    upgrade_answered: AtomicUsize,
    sent_frames: AtomicUsize,
    sent_messages: AtomicUsize,
    sent_bytes: AtomicUsize,
    received_frames: AtomicUsize,
    received_messages: AtomicUsize,
    received_bytes: AtomicUsize,
    disconnects: AtomicUsize,
    reconnects: AtomicUsize,
    terminates: AtomicUsize,
}

impl Counting {
    fn tick(&self, counter: &AtomicUsize, by: usize) {
        let call = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        if self.panic_at == Some(call) {
            panic!("the test observer panics at call {call}");
        }
        counter.fetch_add(by, Ordering::Relaxed);
    }

    fn get(counter: &AtomicUsize) -> u64 {
        counter.load(Ordering::Relaxed) as u64
    }
}

impl crate::observer::Observer for Counting {
    fn connect_start(&self, _: u64, _: u32) {
        self.tick(&self.connect_start, 1);
    }
    fn connect_end(&self, _: u64, _: u32, _: Duration, _: Option<&Error>) {
        self.tick(&self.connect_end, 1);
    }
    fn upgrade_sent(&self, _: StreamRef) {
        self.tick(&self.upgrade_sent, 1);
    }
    fn upgrade_answered(
        &self,
        _: StreamRef,
        _: Option<StatusCode>,
        _: Option<&str>,
        _: Duration,
        _: Option<&Error>,
    ) {
        self.tick(&self.upgrade_answered, 1);
    }
    fn frame_sent(&self, _: StreamRef, frame: FrameInfo) {
        if !frame.internal {
            self.tick(&self.sent_frames, 1);
            if frame.opcode.is_message() {
                self.sent_messages.fetch_add(1, Ordering::Relaxed);
                self.sent_bytes.fetch_add(frame.len, Ordering::Relaxed);
            }
        }
    }
    fn frame_received(&self, _: StreamRef, frame: FrameInfo) {
        self.tick(&self.received_frames, 1);
        if frame.opcode.is_message() {
            self.received_messages.fetch_add(1, Ordering::Relaxed);
            self.received_bytes.fetch_add(frame.len, Ordering::Relaxed);
        }
    }
    fn disconnect(&self, _: u64, _: &DownReason, _: Duration) {
        self.tick(&self.disconnects, 1);
    }
    fn reconnect_scheduled(&self, _: u64, _: u32, _: Duration) {
        self.tick(&self.reconnects, 1);
    }
    fn terminate(&self, _: u64, _: Duration) {
        self.tick(&self.terminates, 1);
    }
}

/// One core driven by random inputs, with the bookkeeping for the invariants.
struct Sim {
    h: Harness,
    /// What the observer was told, and what the core counted and said.
    observer: Arc<Counting>,
    written: Written,
    received: Received,
    downs: u64,
    reconnecting: u64,
    link: SimTransport,
    streams: Vec<StreamRef>,
    /// Every application frame, by id: its payload length and how often it
    /// was written (flushed) or returned as unsent.
    frames: Vec<(usize, u32)>,
    sent_bytes: usize,
    released_bytes: usize,
    last_probe: Option<Frame>,
    terminated: bool,
    /// `Down`s after the core failed the connection for a protocol error.
    failed_downs: usize,
}

/// Application frames carry their id: `Text("m7")`, `Binary(7)`,
/// `Close(1000, "m7")`. Probes and the shutdown's own close carry none.
fn frame_id(frame: &Frame) -> Option<usize> {
    match frame {
        Frame::Text(text) => text.strip_prefix('m').map(|id| id.parse().unwrap()),
        Frame::Binary(data) => Some(u64::from_be_bytes(data[..].try_into().unwrap()) as usize),
        Frame::Close(Some(close)) => close.reason.strip_prefix('m').map(|id| id.parse().unwrap()),
        _ => None,
    }
}

impl Sim {
    fn new(options: &Options, now: Instant, seed: u64) -> Sim {
        Sim::observed(options, now, seed, None)
    }

    /// With an observer that panics at its `panic_at`-th call.
    fn observed(options: &Options, now: Instant, seed: u64, panic_at: Option<usize>) -> Sim {
        let observer = Arc::new(Counting {
            panic_at,
            ..Counting::default()
        });
        let options = options.clone().observer(observer.clone());
        let h = Harness::start(&options, now, seed);
        let mut sim = Sim {
            h,
            observer,
            written: Written::default(),
            received: Received::default(),
            downs: 0,
            reconnecting: 0,
            link: SimTransport::None,
            streams: Vec::new(),
            frames: Vec::new(),
            sent_bytes: 0,
            released_bytes: 0,
            last_probe: None,
            terminated: false,
            failed_downs: 0,
        };
        sim.settle();
        sim
    }

    fn new_frame(&mut self, rng: &mut Random) -> Frame {
        let id = self.frames.len();
        let frame = match rng.below(20) {
            0 => Frame::Close(Some(CloseFrame {
                code: CloseCode::NORMAL,
                reason: format!("m{id}"),
            })),
            1..=6 => Frame::binary((id as u64).to_be_bytes().to_vec()),
            _ => Frame::text(format!("m{id}")),
        };
        self.frames.push((frame.len(), 0));
        self.sent_bytes += frame.len();
        frame
    }

    fn count(&mut self, frame: &Frame, what: &str) {
        let id = frame_id(frame)
            .unwrap_or_else(|| panic!("{what}: {frame:?} is not an application frame"));
        self.frames[id].1 += 1;
    }

    /// Plays the driver: carries out actions, then checks the events.
    fn settle(&mut self) {
        let was_terminated = self.terminated;
        while let Some(action) = self.h.core.poll_action() {
            match action {
                Action::Dial => {
                    assert!(
                        matches!(self.link, SimTransport::None),
                        "dial over {:?}",
                        self.link
                    );
                    self.link = SimTransport::Dialing;
                }
                Action::Upgrade(request) => {
                    assert!(
                        matches!(self.link, SimTransport::Dialed),
                        "upgrade without a dialed link: {:?}",
                        self.link
                    );
                    self.link = SimTransport::Upgrading(request.protocols);
                }
                Action::Disconnect => {
                    let unsent = match std::mem::replace(&mut self.link, SimTransport::None) {
                        SimTransport::Open { in_flight } => in_flight,
                        _ => Vec::new(),
                    };
                    self.h.lose(None, unsent);
                }
                Action::Provide => {
                    assert!(
                        matches!(self.link, SimTransport::Dialed),
                        "provide without a dialed link: {:?}",
                        self.link
                    );
                    self.h.provide();
                }
                Action::FailClose { code } => {
                    // The close frame goes out with the next flush.
                    assert!(
                        matches!(self.link, SimTransport::Open { .. }),
                        "fail-close {code} without a socket: {:?}",
                        self.link
                    );
                }
            }
        }
        for event in self.h.raw_events() {
            self.downs += u64::from(matches!(event, Event::Down { .. }));
            self.reconnecting += u64::from(matches!(event, Event::Reconnecting { .. }));
            if was_terminated {
                let closed = match &event {
                    Event::Error { error, .. } | Event::UpgradeFailed { error, .. } => {
                        error.kind() == ErrorKind::Closed
                    }
                    _ => false,
                };
                assert!(closed, "after termination: {event:?}");
            }
            if let Event::Down {
                reason: DownReason::Error(error),
                ..
            } = &event
            {
                self.failed_downs += usize::from(matches!(
                    error.kind(),
                    ErrorKind::Protocol | ErrorKind::InvalidUtf8 | ErrorKind::MessageTooBig
                ));
            }
            let unsent: &[Frame] = match &event {
                Event::Down { unsent, .. } => unsent,
                Event::Error { error, .. } | Event::UpgradeFailed { error, .. } => error.unsent(),
                _ => &[],
            };
            for frame in unsent {
                self.count(frame, "returned");
            }
        }
        self.released_bytes += self.h.core.take_released_bytes();
        // What the driver reports to the handles' Stats.
        let written = self.h.core.take_written();
        self.written.frames += written.frames;
        self.written.messages += written.messages;
        self.written.bytes += written.bytes;
        let received = self.h.core.take_received();
        self.received.frames += received.frames;
        self.received.messages += received.messages;
        self.received.bytes += received.bytes;
        assert!(
            self.released_bytes <= self.sent_bytes,
            "released more than sent"
        );
        if self.h.core.is_terminated() {
            assert!(
                matches!(self.link, SimTransport::None),
                "terminated over {:?}",
                self.link
            );
            assert_eq!(self.h.core.poll_timeout(), None);
            self.terminated = true;
        }
        assert!(
            !self.h.core.wants_transmit() || matches!(self.link, SimTransport::Open { .. }),
            "outgoing frames without an open link: {:?}",
            self.link
        );
    }

    fn step(&mut self, rng: &mut Random) {
        let now = self.h.now;
        match rng.below(100) {
            0..=4 => {
                let mut upgrade = Upgrade::new("/ws");
                if rng.chance(50) {
                    upgrade = upgrade.protocol("a");
                }
                let stream = self.h.upgrade(upgrade);
                self.streams.push(stream);
            }
            5..=29 => {
                // Mostly the newest stream, sometimes an older one.
                let stream = match self.streams.len() {
                    0 => StreamRef(999_999),
                    n if rng.chance(80) => self.streams[n - 1],
                    n => self.streams[rng.below(n as u64) as usize],
                };
                let n = 1 + rng.below(3);
                let frames: Vec<Frame> = (0..n).map(|_| self.new_frame(rng)).collect();
                self.h.send(stream, frames);
            }
            30 if rng.chance(20) => self.h.command(Command::Shutdown),
            30 if rng.chance(10) => self.h.core.handle_command(Command::Abandon, now),
            31..=32 => self.h.command(Command::Probe),
            33..=42 => match self.link {
                SimTransport::Dialing if rng.chance(70) => {
                    self.link = SimTransport::Dialed;
                    self.h.dial_ok();
                }
                SimTransport::Dialing => {
                    self.link = SimTransport::None;
                    self.h.dial_failed();
                }
                _ => {}
            },
            43..=52 => {
                if let SimTransport::Upgrading(offered) = &self.link {
                    let offered = offered.clone();
                    match rng.below(20) {
                        0 => {
                            self.link = SimTransport::Open {
                                in_flight: Vec::new(),
                            };
                            self.h.upgrade_ok(Some("not-offered"));
                        }
                        1 | 2 => {
                            self.link = SimTransport::None;
                            match rng.below(5) {
                                0 => self.h.upgrade_rejected(403),
                                1 => self.h.upgrade_rejected(401),
                                2 => self.h.upgrade_rejected(503),
                                3 => self.h.upgrade_rejected_with(429, &[("retry-after", "2")]),
                                _ => self.h.upgrade_rejected_with(
                                    503,
                                    &[("retry-after", "Sun, 06 Nov 1994 08:49:40 GMT")],
                                ),
                            }
                        }
                        3 => {
                            self.link = SimTransport::None;
                            let failed = TransportEvent::UpgradeFailed {
                                status: None,
                                headers: HeaderMap::new(),
                                error: io_error(),
                                unix_now: UNIX_NOW,
                            };
                            self.h.core.handle_transport(failed, now);
                        }
                        _ => {
                            self.link = SimTransport::Open {
                                in_flight: Vec::new(),
                            };
                            self.h.upgrade_ok(offered.first().map(String::as_str));
                        }
                    }
                }
            }
            53..=67 => {
                if let SimTransport::Open { in_flight } = &mut self.link {
                    for _ in 0..rng.below(5) {
                        let Some(out) = self.h.core.poll_transmit(now).cloned() else {
                            break;
                        };
                        if out.internal {
                            self.last_probe = Some(out.frame.clone().into_frame());
                        }
                        in_flight.push(out);
                    }
                }
            }
            68..=75 => {
                // The transport writes a random prefix of what it holds.
                if let SimTransport::Open { in_flight } = &mut self.link {
                    let written = rng.below(in_flight.len() as u64 + 1) as usize;
                    let flushed: Vec<Outgoing> = in_flight.drain(..written).collect();
                    let last = flushed.last().map(|out| out.seq);
                    if in_flight.is_empty() {
                        // Everything is out: a failing connection may go now.
                        self.h
                            .core
                            .handle_transport(TransportEvent::Flushed(last), now);
                    } else {
                        self.h.core.on_written(last);
                    }
                    for out in flushed.into_iter().filter(|out| !out.internal) {
                        self.count(&out.frame.into_frame(), "written");
                    }
                }
            }
            76..=85 => {
                if matches!(self.link, SimTransport::Open { .. }) {
                    let frame = match rng.below(10) {
                        0..=3 => Frame::text("from server"),
                        4 => Frame::Ping("p".into()),
                        5 | 6 => match &self.last_probe {
                            Some(Frame::Ping(payload)) => Frame::Pong(payload.clone()),
                            _ => Frame::Pong("q".into()),
                        },
                        7 => close(1000, ""),
                        8 => close(1001, "away"),
                        _ => close(if rng.chance(20) { 1008 } else { 1011 }, ""),
                    };
                    self.h.frame(frame);
                }
            }
            86 | 87 if matches!(self.link, SimTransport::Open { .. }) && rng.chance(40) => {
                // The peer broke the protocol: the core fails the connection.
                let kind = [
                    ErrorKind::Protocol,
                    ErrorKind::InvalidUtf8,
                    ErrorKind::MessageTooBig,
                ][rng.below(3) as usize];
                self.h
                    .core
                    .on_socket_failed(Some(Error::new(kind, "peer")), now);
            }
            86..=89 => {
                if matches!(self.link, SimTransport::Open { .. } | SimTransport::Dialed) {
                    let unsent = match std::mem::replace(&mut self.link, SimTransport::None) {
                        SimTransport::Open { in_flight } => in_flight,
                        _ => Vec::new(),
                    };
                    let error = rng.chance(50).then(io_error);
                    self.h.lose(error, unsent);
                }
            }
            _ => {
                let by = match rng.below(10) {
                    0 => Duration::from_millis(rng.below(15_000)),
                    _ => Duration::from_millis(rng.below(1_000)),
                };
                self.h.advance(by);
                let now = self.h.now;
                if self.h.core.poll_timeout().is_some_and(|at| now >= at) {
                    self.h.core.handle_timeout(now);
                    self.settle();
                    if let Some(at) = self.h.core.poll_timeout() {
                        assert!(at > now, "a timeout in the past after on_timeout(now)");
                    }
                }
            }
        }
        self.settle();
    }

    /// Shuts down and drives the core to its end, then checks the books.
    fn finish(&mut self) {
        self.h.command(Command::Shutdown);
        self.settle();
        for _ in 0..10 {
            if self.terminated {
                break;
            }
            if let SimTransport::Open { in_flight } = &mut self.link {
                while let Some(out) = self.h.core.poll_transmit(self.h.now).cloned() {
                    in_flight.push(out);
                }
                // Half the time the server answers; else the socket dies with frames in flight.
                if self.frames.len() % 2 == 0 {
                    if let Some(last) = in_flight.last() {
                        self.h.core.on_written(Some(last.seq));
                    }
                    for out in std::mem::take(in_flight) {
                        if !out.internal {
                            self.count(&out.frame.into_frame(), "written");
                        }
                    }
                }
                let SimTransport::Open { in_flight } =
                    std::mem::replace(&mut self.link, SimTransport::None)
                else {
                    unreachable!()
                };
                self.h.lose(None, in_flight);
            } else if matches!(self.link, SimTransport::Dialed | SimTransport::Upgrading(_)) {
                self.link = SimTransport::None;
                self.h.lose(None, Vec::new());
            } else if self.h.core.poll_timeout().is_some() {
                self.h.advance_to_timeout();
            }
            self.settle();
        }
        assert!(self.terminated, "shutdown did not end the connection");
        for (id, (_, count)) in self.frames.iter().enumerate() {
            assert_eq!(*count, 1, "frame m{id} written or returned {count} times");
        }
        assert_eq!(self.released_bytes, self.sent_bytes);
        self.check_observer();
    }

    /// The observer was told what the core counted and said (unless it
    /// panicked: then it was told a prefix, and never called again).
    fn check_observer(&self) {
        let o = &*self.observer;
        let calls = o.calls.load(Ordering::Relaxed);
        if o.panic_at.is_some_and(|at| calls >= at) {
            assert_eq!(Some(calls), o.panic_at, "called after it panicked");
            return;
        }
        let get = Counting::get;
        assert_eq!(get(&o.sent_frames), self.written.frames);
        assert_eq!(get(&o.sent_messages), self.written.messages);
        assert_eq!(get(&o.sent_bytes), self.written.bytes);
        assert_eq!(get(&o.received_frames), self.received.frames);
        assert_eq!(get(&o.received_messages), self.received.messages);
        assert_eq!(get(&o.received_bytes), self.received.bytes);
        let written = self.frames.iter().filter(|(_, n)| *n == 1).count() as u64;
        assert!(
            self.written.frames <= written,
            "written frames are counted once"
        );
        assert_eq!(
            get(&o.connect_start),
            get(&o.connect_end),
            "every connect ends"
        );
        assert_eq!(
            get(&o.upgrade_sent),
            get(&o.upgrade_answered),
            "every upgrade is answered"
        );
        assert_eq!(get(&o.disconnects), self.downs);
        assert_eq!(get(&o.reconnects), self.reconnecting);
        assert_eq!(get(&o.terminates), 1);
    }
}

#[test]
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
fn a_panicking_observer_breaks_nothing() {
    let mut rng = Random::new(0xBAD);
    let mut now = Instant::now();
    for panic_at in [1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144] {
        let mut sim = Sim::observed(&keepalive_options(), now, rng.next(), Some(panic_at));
        for _ in 0..1_000 {
            sim.step(&mut rng);
            if sim.terminated {
                break;
            }
        }
        // Every frame written or returned exactly once, as without it.
        sim.finish();
        now = sim.h.now;
    }
}

#[test]
fn random_inputs_keep_the_invariants() {
    let configs = [
        keepalive_options(),
        keepalive_options().auto_upgrade(true).silence_pings(false),
        options().retry(reconnecting().max_retries(3)),
        keepalive_options().auto_upgrade_with_sync(|| Upgrade::new("/auto").protocol("a")),
    ];
    let mut rng = Random::new(0x5EED);
    let mut now = Instant::now();
    let mut lifetimes = 0;
    let mut failed_downs = 0;
    for options in &configs {
        let mut steps = 0;
        while steps < 10_000 {
            let mut sim = Sim::new(options, now, rng.next());
            let length = 50 + rng.below(2_000);
            for _ in 0..length {
                steps += 1;
                sim.step(&mut rng);
                if sim.terminated {
                    break;
                }
            }
            sim.finish();
            now = sim.h.now;
            lifetimes += 1;
            failed_downs += sim.failed_downs;
        }
    }
    assert!(lifetimes > 10);
    assert!(failed_downs > 10, "fail-close paths taken: {failed_downs}");
}

/// The randomized run above as a property: proptest picks the seed, the
/// configuration and the length of each lifetime. 256 cases by default;
/// run long with `PROPTEST_CASES=100000 cargo test --lib core::tests::proptest`.
/// Native only (proptest is not in the wasm dev-dependencies).
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
mod proptest_core {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig {
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn random_lifetimes_keep_the_invariants(
            seed in any::<u64>(),
            config in 0..4usize,
            length in 1..2_000u64,
        ) {
            let options = match config {
                0 => keepalive_options(),
                1 => keepalive_options().auto_upgrade(true).silence_pings(false),
                2 => options().retry(reconnecting().max_retries(3)),
                _ => keepalive_options().auto_upgrade_with_sync(|| Upgrade::new("/auto").protocol("a")),
            };
            let mut rng = Random::new(seed);
            let mut sim = Sim::new(&options, Instant::now(), rng.next());
            for _ in 0..length {
                sim.step(&mut rng);
                if sim.terminated {
                    break;
                }
            }
            // Checks that every frame was written or returned exactly once.
            sim.finish();
        }
    }
}

// ---- the current Websocket (Socket): held sends ------------------------------

impl Harness {
    fn send_current(&mut self, frames: impl Into<Frames>) {
        self.command(Command::SendCurrent {
            frames: frames.into(),
        });
    }

    /// Reconnects after a loss: backoff, dial, the automatic upgrade.
    fn reconnect(&mut self) {
        self.advance_to_timeout();
        assert_eq!(self.actions(), [Action::Dial]);
        self.dial_ok();
        assert!(matches!(self.actions()[..], [Action::Upgrade(_)]));
        self.upgrade_ok(None);
    }
}

fn socket_options() -> Options {
    options().auto_upgrade(true)
}

#[test]
fn socket_sends_while_down_are_held_and_written_in_order_after_the_next_upgrade() {
    let (mut h, s) = Harness::open(socket_options());
    h.send_current(text("a"));
    let handed = h.pop_all();
    assert_eq!(handed, [app(text("a"))]);
    h.send_current(text("b"));
    // "a" was handed to the transport that died (maybe written): it comes
    // back; "b" waited in the queue: it is held.
    h.lose(Some(io_error()), handed);
    assert_eq!(
        h.events(),
        [
            format!("Down Error(Io) killed=[\"{s}\"] unsent=[Text(1 bytes \"a\")] reconnect=true"),
            "Reconnecting 2 100ms".to_owned(),
        ]
    );
    assert_eq!(h.core.take_released_bytes(), 1, "only \"a\" left the queue");
    assert_eq!(
        h.core.socket_state(),
        crate::socket::SocketState::Reconnecting
    );
    h.send_current(vec![text("c"), text("d")]);
    assert!(h.events().is_empty(), "held, not refused");
    assert!(!h.core.wants_transmit(), "nothing is written while down");
    h.reconnect();
    assert_eq!(h.core.socket_state(), crate::socket::SocketState::Open);
    assert_eq!(
        h.pop_all(),
        [app(text("b")), app(text("c")), app(text("d"))],
        "held frames go out after the upgrade, in order"
    );
}

#[test]
fn socket_sends_while_upgrading_wait_for_the_upgrade() {
    let (mut h, _) = Harness::open(socket_options());
    h.lose(Some(io_error()), Vec::new());
    h.events();
    h.advance_to_timeout();
    h.actions();
    h.dial_ok();
    h.send_current(text("x"));
    assert!(!h.core.wants_transmit());
    h.upgrade_ok(None);
    assert_eq!(h.pop_all(), [app(text("x"))]);
}

#[test]
fn socket_held_frames_survive_a_failed_upgrade_and_a_second_loss() {
    let (mut h, _) = Harness::open(socket_options());
    h.lose(Some(io_error()), Vec::new());
    h.events();
    h.send_current(text("held"));
    h.advance_to_timeout();
    h.actions();
    h.dial_ok();
    h.actions();
    h.upgrade_rejected(503);
    let events = h.events();
    assert!(
        events
            .iter()
            .any(|e| e.contains("Down UpgradeRejected") && e.contains("unsent=[]")),
        "{events:?}"
    );
    h.reconnect();
    assert_eq!(h.pop_all(), [app(text("held"))]);
}

#[test]
fn socket_without_hold_refuses_sends_while_down_with_the_frames() {
    let (mut h, _) = Harness::open(socket_options().hold_while_down(false));
    h.send_current(text("queued"));
    h.lose(Some(io_error()), Vec::new());
    let events = h.events();
    assert!(
        events[0].contains("unsent=[Text(6 bytes \"queued\")]"),
        "without hold, queued frames come back in the Down: {events:?}"
    );
    h.send_current(text("late"));
    assert_eq!(
        h.events(),
        ["Error - Disconnected unsent=[Text(4 bytes \"late\")]"]
    );
    assert_eq!(h.core.take_released_bytes(), 10);
}

#[test]
fn socket_held_frames_come_back_when_retries_are_spent() {
    let (mut h, _) =
        Harness::open(socket_options().retry(Retry::default().jitter(0.0).max_retries(1)));
    h.lose(Some(io_error()), Vec::new());
    h.events();
    h.send_current(text("held"));
    h.advance_to_timeout();
    h.actions();
    h.dial_failed();
    assert_eq!(
        h.events(),
        [
            "Error - Connect unsent=[]",
            "Error - RetriesExhausted unsent=[Text(4 bytes \"held\")]",
        ]
    );
    assert!(h.core.is_terminated());
    assert_eq!(h.core.socket_state(), crate::socket::SocketState::Closed);
}

#[test]
fn socket_held_frames_come_back_when_every_handle_is_dropped() {
    let (mut h, _) = Harness::open(socket_options());
    h.lose(Some(io_error()), Vec::new());
    h.events();
    h.advance_to_timeout();
    h.actions();
    h.dial_ok();
    h.actions();
    h.send_current(text("held"));
    h.core.handle_command(Command::Abandon, h.now);
    assert_eq!(h.actions(), [Action::Disconnect]);
    h.core
        .handle_transport(TransportEvent::Lost { written: None }, h.now);
    let events = h.events();
    assert!(
        events.iter().any(
            |e| e.starts_with("Down Shutdown") && e.contains("unsent=[Text(4 bytes \"held\")]")
        ),
        "{events:?}"
    );
    assert!(h.core.is_terminated());
}

#[test]
fn socket_close_while_down_ends_at_once_and_returns_what_is_held() {
    let (mut h, _) = Harness::open(socket_options());
    h.lose(Some(io_error()), Vec::new());
    h.events();
    h.send_current(text("held"));
    h.send_current(close(1000, "bye"));
    let events = h.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(
        events[0].starts_with("Error - Closed unsent=[Text(4 bytes \"held\")"),
        "{events:?}"
    );
    assert!(h.core.is_terminated());
}

#[test]
fn socket_close_while_open_writes_what_is_queued_then_the_close() {
    let (mut h, _) = Harness::open(socket_options());
    h.send_current(text("last"));
    h.send_current(close(4000, "done"));
    assert_eq!(h.core.socket_state(), crate::socket::SocketState::Closing);
    assert_eq!(h.pop_all(), [app(text("last")), app(close(4000, "done"))]);
    h.send_current(text("after"));
    assert_eq!(
        h.events(),
        ["Error - Closed unsent=[Text(5 bytes \"after\")]"]
    );
}

#[test]
fn socket_state_is_connecting_until_the_first_open() {
    let mut h = Harness::new(socket_options());
    assert_eq!(
        h.core.socket_state(),
        crate::socket::SocketState::Connecting
    );
    h.actions();
    h.dial_failed();
    assert_eq!(
        h.core.socket_state(),
        crate::socket::SocketState::Connecting
    );
}
