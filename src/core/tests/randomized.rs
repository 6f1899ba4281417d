//! The core's tests: randomized.

use std::sync::atomic::Ordering;

use super::*;

/// The backoff's SplitMix64, for repeatable random runs without a dependency.
struct Random(crate::core::reconnect::SplitMix64);

impl Random {
    fn new(seed: u64) -> Random {
        Random(crate::core::reconnect::SplitMix64(seed))
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
#[cfg(native)]
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
#[cfg(native)]
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
