//! The driver under a scripted transport: every dial, upgrade, write,
//! flush and read is decided by the test, including partial flushes,
//! errors and panics at chosen calls, and what reached the "wire" is
//! recorded. Every test checks the delivery promise exactly: a frame
//! accepted by `ws_send` is counted in `Stats::frames_written` (and is on
//! the wire) or comes back once (in `Down.unsent`, an `Event::Error` or an
//! `Event::UpgradeFailed`), never both.
//!
//! Scripts live in a global registry keyed by the URL's host (each test
//! uses its own `ws://mock-N/`), so the tests run in parallel.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use http::{HeaderMap, StatusCode};

use crate::connection::{Connection, Events};
use crate::core::{Outgoing, Seq, WireFrame, FAIL_CLOSE_TIMEOUT};
use crate::error::{Error, ErrorKind};
use crate::event::{DownReason, Event};
use crate::frame::Frame;
use crate::options::{Keepalive, Options, Retry};
use crate::request::ValidUpgrade;
use crate::rt::BoxFuture;
use crate::time::Instant;
use crate::transport::{Socket, Target, Transport, UpgradeFailure, Upgraded};

/// How long any awaited event may take before the test fails (virtual
/// time under `start_paused`).
const PATIENCE: Duration = Duration::from_secs(10);
const MS: Duration = Duration::from_millis(1);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A scripted panic must not turn every later lock into a panic.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ---- the script ---------------------------------------------------------

#[derive(Debug, Clone)]
enum DialStep {
    Ok,
    Err(ErrorKind),
    Pending,
}

#[derive(Debug, Clone)]
enum UpgradeStep {
    Ok,
    Rejected(u16),
    Pending,
}

/// A method of the socket, for faults at its n-th call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Recv = 0,
    Ready = 1,
    Send = 2,
    Flush = 3,
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    Panic,
    Err(ErrorKind),
}

/// What the peer does next, as `poll_recv` sees it. An empty script is
/// `Pending` (the test may add steps later and wake the socket).
#[derive(Debug, Clone)]
enum Recv {
    Frame(Frame),
    Err(ErrorKind),
    End,
    /// Nothing until this much (virtual) time has passed.
    Wait(Duration),
    /// Nothing until the test opens the gate.
    Gate(Gate),
}

/// What `poll_ready` answers next (`Ok` once the script runs out).
#[derive(Debug, Clone, Copy)]
enum Ready {
    Ok,
    /// Not now; the socket wakes the driver at once.
    Pending,
}

/// What `poll_flush` does next (the default once the script runs out).
#[derive(Debug, Clone, Copy)]
enum Flush {
    /// Writes everything handed over.
    Ok,
    /// Writes this many more of the handed-over frames, then is pending
    /// (and wakes the driver at once: the rest is on its way).
    Partial(usize),
    /// Pending, no frame written, `bytes_written` grows by `bytes`; the
    /// driver is not woken (it wakes for something else, or its deadlines).
    Stall {
        bytes: u64,
    },
    Err(ErrorKind),
}

/// An async signal a `Recv::Gate` waits on.
#[derive(Debug, Clone, Default)]
struct Gate(Arc<GateInner>);

#[derive(Debug, Default)]
struct GateInner {
    open: AtomicBool,
    wakers: Mutex<Vec<Waker>>,
}

impl Gate {
    fn open(&self) {
        self.0.open.store(true, Ordering::SeqCst);
        for waker in lock(&self.0.wakers).drain(..) {
            waker.wake();
        }
    }

    fn poll(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.open.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        lock(&self.0.wakers).push(cx.waker().clone());
        if self.0.open.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

/// How one socket behaves, step by step.
#[derive(Debug, Clone)]
struct SocketScript {
    recv: VecDeque<Recv>,
    ready: VecDeque<Ready>,
    flush: VecDeque<Flush>,
    flush_default: Flush,
    /// `(call, n, fault)`: the n-th call (1-based) of `call` fails or panics.
    faults: Vec<(Call, usize, Fault)>,
}

impl Default for SocketScript {
    fn default() -> SocketScript {
        SocketScript {
            recv: VecDeque::new(),
            ready: VecDeque::new(),
            flush: VecDeque::new(),
            flush_default: Flush::Ok,
            faults: Vec::new(),
        }
    }
}

impl SocketScript {
    fn recv(mut self, step: Recv) -> Self {
        self.recv.push_back(step);
        self
    }

    fn flush(mut self, step: Flush) -> Self {
        self.flush.push_back(step);
        self
    }

    fn flush_default(mut self, step: Flush) -> Self {
        self.flush_default = step;
        self
    }

    fn fault(mut self, call: Call, n: usize, fault: Fault) -> Self {
        self.faults.push((call, n, fault));
        self
    }
}

/// One connection attempt.
#[derive(Debug, Clone)]
struct Attempt {
    dial: DialStep,
    upgrade: UpgradeStep,
    socket: SocketScript,
}

impl Attempt {
    fn open(socket: SocketScript) -> Attempt {
        Attempt {
            dial: DialStep::Ok,
            upgrade: UpgradeStep::Ok,
            socket,
        }
    }
}

/// What one socket was given and did.
#[derive(Debug)]
struct SocketRecord {
    script: SocketScript,
    /// Every frame handed over by `start_send`, in order.
    sent: Vec<Outgoing>,
    /// The codes of `start_fail_close`.
    fail_closes: Vec<u16>,
    /// Handed over, not yet written.
    handed: VecDeque<Seq>,
    written_through: Option<Seq>,
    bytes_written: u64,
    calls: [usize; 4],
    waker: Option<Waker>,
    dropped: bool,
}

#[derive(Debug, Default)]
struct MockState {
    attempts: VecDeque<Attempt>,
    dials: usize,
    upgrades: usize,
    sockets: Vec<SocketRecord>,
}

/// One test's scripted peer: the attempts to play and what happened.
struct Mock {
    state: Mutex<MockState>,
    changed: tokio::sync::Notify,
}

fn registry() -> MutexGuard<'static, HashMap<String, Arc<Mock>>> {
    static MOCKS: OnceLock<Mutex<HashMap<String, Arc<Mock>>>> = OnceLock::new();
    lock(MOCKS.get_or_init(Default::default))
}

impl Mock {
    /// Registers a script under a fresh host; returns it and its URL.
    /// Dials past the last attempt stay pending forever.
    fn install(attempts: impl IntoIterator<Item = Attempt>) -> (Arc<Mock>, String) {
        static HOSTS: AtomicUsize = AtomicUsize::new(0);
        let host = format!("mock-{}", HOSTS.fetch_add(1, Ordering::Relaxed));
        let mock = Arc::new(Mock {
            state: Mutex::new(MockState {
                attempts: attempts.into_iter().collect(),
                ..MockState::default()
            }),
            changed: tokio::sync::Notify::new(),
        });
        registry().insert(host.clone(), mock.clone());
        (mock, format!("ws://{host}/"))
    }

    fn lock(&self) -> MutexGuard<'_, MockState> {
        lock(&self.state)
    }

    fn changed(&self) {
        self.changed.notify_waiters();
    }

    /// Waits until `f` says yes; fails the test after [`PATIENCE`].
    async fn wait_for<R>(&self, what: &str, mut f: impl FnMut(&MockState) -> Option<R>) -> R {
        let wait = async {
            loop {
                let notified = self.changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if let Some(found) = f(&self.lock()) {
                    return found;
                }
                notified.await;
            }
        };
        match tokio::time::timeout(PATIENCE, wait).await {
            Ok(found) => found,
            Err(_) => panic!("the mock did not see {what} within {PATIENCE:?}"),
        }
    }

    /// Changes socket `index`'s script and wakes the driver polling it.
    fn rescript(&self, index: usize, change: impl FnOnce(&mut SocketScript)) {
        let waker = {
            let mut state = self.lock();
            let record = &mut state.sockets[index];
            change(&mut record.script);
            record.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// The ids of the application's frames that reached the wire (written
    /// through, on every socket), in order.
    fn wire_ids(&self) -> Vec<u64> {
        let state = self.lock();
        state
            .sockets
            .iter()
            .flat_map(|record| {
                record
                    .sent
                    .iter()
                    .filter(|out| !out.internal && Some(out.seq) <= record.written_through)
                    .map(|out| wire_id(&out.frame))
            })
            .collect()
    }
}

// ---- the transport --------------------------------------------------------

struct MockTransport;

struct MockDialed {
    mock: Arc<Mock>,
    upgrade: UpgradeStep,
    script: SocketScript,
}

struct MockSocket {
    mock: Arc<Mock>,
    index: usize,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Transport for MockTransport {
    type Dialed = MockDialed;
    type Socket = MockSocket;

    fn check_options(_options: &Options) -> Result<(), Error> {
        Ok(())
    }

    fn check_upgrade(_upgrade: &ValidUpgrade) -> Result<(), Error> {
        Ok(())
    }

    fn check_frame(_frame: &Frame) -> Result<(), Error> {
        Ok(())
    }

    fn dial(target: &Target, _options: &Options) -> BoxFuture<Result<MockDialed, Error>> {
        let Some(mock) = registry().get(&target.host).cloned() else {
            let error = Error::new(ErrorKind::Connect, "no script for this host");
            return Box::pin(async move { Err(error) });
        };
        let attempt = {
            let mut state = mock.lock();
            state.dials += 1;
            state.attempts.pop_front()
        };
        mock.changed();
        let Some(attempt) = attempt else {
            return Box::pin(futures::future::pending());
        };
        match attempt.dial {
            DialStep::Ok => Box::pin(async move {
                Ok(MockDialed {
                    mock,
                    upgrade: attempt.upgrade,
                    script: attempt.socket,
                })
            }),
            DialStep::Err(kind) => {
                Box::pin(async move { Err(Error::new(kind, "scripted dial failure")) })
            }
            DialStep::Pending => Box::pin(futures::future::pending()),
        }
    }

    fn upgrade(
        dialed: MockDialed,
        _target: &Target,
        _upgrade: ValidUpgrade,
        _options: &Options,
    ) -> BoxFuture<Result<Upgraded<MockSocket>, UpgradeFailure>> {
        let MockDialed {
            mock,
            upgrade,
            script,
        } = dialed;
        mock.lock().upgrades += 1;
        mock.changed();
        match upgrade {
            UpgradeStep::Ok => {
                let index = {
                    let mut state = mock.lock();
                    state.sockets.push(SocketRecord {
                        script,
                        sent: Vec::new(),
                        fail_closes: Vec::new(),
                        handed: VecDeque::new(),
                        written_through: None,
                        bytes_written: 0,
                        calls: [0; 4],
                        waker: None,
                        dropped: false,
                    });
                    state.sockets.len() - 1
                };
                let socket = MockSocket {
                    mock,
                    index,
                    sleep: None,
                };
                Box::pin(async move {
                    Ok(Upgraded {
                        socket,
                        protocol: None,
                        headers: HeaderMap::new(),
                    })
                })
            }
            UpgradeStep::Rejected(status) => Box::pin(async move {
                Err(UpgradeFailure {
                    status: Some(StatusCode::from_u16(status).expect("a status")),
                    headers: HeaderMap::new(),
                    error: Error::new(ErrorKind::Upgrade, "scripted rejection"),
                })
            }),
            UpgradeStep::Pending => Box::pin(futures::future::pending()),
        }
    }
}

impl MockSocket {
    fn with<R>(&self, f: impl FnOnce(&mut SocketRecord) -> R) -> R {
        let found = f(&mut self.mock.lock().sockets[self.index]);
        self.mock.changed();
        found
    }

    /// Counts a call, keeps the driver's waker and plays a scripted fault
    /// (the lock is released before a panic).
    fn enter(&self, call: Call, cx: Option<&Context<'_>>) -> Option<Error> {
        let fault = self.with(|record| {
            record.calls[call as usize] += 1;
            let n = record.calls[call as usize];
            if let Some(cx) = cx {
                record.waker = Some(cx.waker().clone());
            }
            record
                .script
                .faults
                .iter()
                .find(|(c, at, _)| *c == call && *at == n)
                .map(|(_, _, fault)| *fault)
        });
        match fault {
            Some(Fault::Panic) => panic!("mock socket: the scripted panic in {call:?}"),
            Some(Fault::Err(kind)) => Some(Error::new(kind, format!("scripted {call:?} error"))),
            None => None,
        }
    }
}

impl Socket for MockSocket {
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame, Error>>> {
        if let Some(error) = self.enter(Call::Recv, Some(cx)) {
            return Poll::Ready(Some(Err(error)));
        }
        loop {
            let Some(step) = self.with(|record| record.script.recv.pop_front()) else {
                return Poll::Pending;
            };
            let waiting = match &step {
                Recv::Frame(frame) => return Poll::Ready(Some(Ok(frame.clone()))),
                Recv::Err(kind) => {
                    return Poll::Ready(Some(Err(Error::new(*kind, "scripted recv error"))))
                }
                Recv::End => return Poll::Ready(None),
                Recv::Wait(delay) => {
                    let sleep = self
                        .sleep
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep(*delay)));
                    let waiting = sleep.as_mut().poll(cx).is_pending();
                    if !waiting {
                        self.sleep = None;
                    }
                    waiting
                }
                Recv::Gate(gate) => gate.poll(cx).is_pending(),
            };
            if waiting {
                self.with(|record| record.script.recv.push_front(step));
                return Poll::Pending;
            }
        }
    }

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if let Some(error) = self.enter(Call::Ready, Some(cx)) {
            return Poll::Ready(Err(error));
        }
        match self.with(|record| record.script.ready.pop_front()) {
            None | Some(Ready::Ok) => Poll::Ready(Ok(())),
            Some(Ready::Pending) => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }

    fn start_send(&mut self, frame: &Outgoing) -> Result<(), Error> {
        if let Some(error) = self.enter(Call::Send, None) {
            return Err(error);
        }
        self.with(|record| {
            record.sent.push(frame.clone());
            record.handed.push_back(frame.seq);
        });
        Ok(())
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if let Some(error) = self.enter(Call::Flush, Some(cx)) {
            return Poll::Ready(Err(error));
        }
        self.with(|record| {
            let step = record
                .script
                .flush
                .pop_front()
                .unwrap_or(record.script.flush_default);
            match step {
                Flush::Ok => {
                    if let Some(&last) = record.handed.back() {
                        record.written_through = Some(last);
                    }
                    record.handed.clear();
                    record.bytes_written += 1;
                    Poll::Ready(Ok(()))
                }
                Flush::Partial(frames) => {
                    for _ in 0..frames {
                        if let Some(seq) = record.handed.pop_front() {
                            record.written_through = Some(seq);
                            record.bytes_written += 1;
                        }
                    }
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                Flush::Stall { bytes } => {
                    record.bytes_written += bytes;
                    Poll::Pending
                }
                Flush::Err(kind) => Poll::Ready(Err(Error::new(kind, "scripted flush error"))),
            }
        })
    }

    fn written_through(&mut self) -> Option<Seq> {
        self.with(|record| record.written_through)
    }

    fn bytes_written(&self) -> u64 {
        self.mock.lock().sockets[self.index].bytes_written
    }

    fn start_fail_close(&mut self, code: u16) {
        self.with(|record| record.fail_closes.push(code));
    }
}

impl Drop for MockSocket {
    fn drop(&mut self) {
        self.with(|record| record.dropped = true);
    }
}

// ---- accounting -------------------------------------------------------------

fn text(id: u64) -> Frame {
    Frame::text(id.to_string())
}

fn id_of(frame: &Frame) -> u64 {
    match frame {
        Frame::Text(text) => text.parse().expect("a frame id"),
        other => panic!("not an application frame of these tests: {other:?}"),
    }
}

fn wire_id(frame: &WireFrame) -> u64 {
    id_of(&frame.clone().into_frame())
}

/// Every frame handed back by these events, in order.
fn returned_by(events: &[Event]) -> Vec<u64> {
    events
        .iter()
        .flat_map(|event| match event {
            Event::Down { unsent, .. } => unsent.iter().map(id_of).collect(),
            Event::Error { error, .. } | Event::UpgradeFailed { error, .. } => {
                error.unsent().iter().map(id_of).collect()
            }
            _ => Vec::new(),
        })
        .collect()
}

/// The promise, exactly: every accepted frame is written (counted, and on
/// the wire) or returned, once, never both.
fn assert_exact(context: &str, accepted: &[u64], written: u64, returned: &[u64], wire: &[u64]) {
    let figures = format!(
        "{context}: accepted {}, written {written} (on the wire {}), returned {}",
        accepted.len(),
        wire.len(),
        returned.len()
    );
    let accepted_set: HashSet<u64> = accepted.iter().copied().collect();
    assert_eq!(accepted_set.len(), accepted.len(), "{figures}: ids reused");
    let mut seen = HashSet::new();
    for id in returned {
        assert!(seen.insert(*id), "{figures}: frame {id} returned twice");
        assert!(
            accepted_set.contains(id),
            "{figures}: frame {id} returned but never accepted"
        );
    }
    let mut on_wire = HashSet::new();
    for id in wire {
        assert!(on_wire.insert(*id), "{figures}: frame {id} written twice");
        assert!(
            !seen.contains(id),
            "{figures}: frame {id} both written and returned"
        );
    }
    assert_eq!(
        wire.len() as u64,
        written,
        "{figures}: the count of written frames is not what reached the wire"
    );
    let lost: Vec<u64> = accepted
        .iter()
        .filter(|id| !seen.contains(id) && !on_wire.contains(id))
        .copied()
        .collect();
    assert!(
        lost.is_empty(),
        "{figures}: {} frames lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    assert_eq!(
        accepted.len() as u64,
        written + returned.len() as u64,
        "{figures}"
    );
}

// ---- helpers --------------------------------------------------------------

fn open(url: &str, options: Options) -> (Connection, Events) {
    Connection::open_on::<MockTransport>(url, options).expect("open")
}

fn quiet() -> Options {
    Options::default().no_keepalive().retry(Retry::never())
}

async fn next(events: &mut Events) -> Event {
    match tokio::time::timeout(PATIENCE, events.recv()).await {
        Ok(Some(event)) => event,
        Ok(None) => panic!("the event stream ended while an event was expected"),
        Err(_) => panic!("no event within {PATIENCE:?}"),
    }
}

/// Events until one matches (included).
async fn until(events: &mut Events, wanted: impl Fn(&Event) -> bool) -> Vec<Event> {
    let mut seen = Vec::new();
    loop {
        let event = next(events).await;
        let found = wanted(&event);
        seen.push(event);
        if found {
            return seen;
        }
    }
}

/// Every remaining event; fails unless the stream ends within [`PATIENCE`].
async fn rest(events: &mut Events) -> Vec<Event> {
    let mut all = Vec::new();
    loop {
        match tokio::time::timeout(PATIENCE, events.recv()).await {
            Ok(Some(event)) => all.push(event),
            Ok(None) => return all,
            Err(_) => panic!("the event stream did not end within {PATIENCE:?}; got {all:?}"),
        }
    }
}

fn is_upgraded(event: &Event) -> bool {
    matches!(event, Event::Upgraded { .. })
}

fn is_down(event: &Event) -> bool {
    matches!(event, Event::Down { .. })
}

/// A small deterministic generator (splitmix64) for the randomized test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

// ---- tests ------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn the_mock_records_what_reached_the_wire_and_a_full_flush_counts_it_written() {
    let (mock, url) = Mock::install([Attempt::open(SocketScript::default())]);
    let (conn, mut events) = open(&url, quiet());
    let stream = conn.ws_upgrade("/").unwrap();
    until(&mut events, is_upgraded).await;
    conn.ws_send(stream, vec![text(0), text(1), text(2)])
        .unwrap();
    mock.wait_for("3 frames written", |s| {
        (s.sockets[0].written_through == Some(3)).then_some(())
    })
    .await;
    conn.shutdown();
    let all = rest(&mut events).await;
    assert_eq!(mock.wire_ids(), [0, 1, 2]);
    assert_eq!(conn.stats().frames_written, 3, "{all:?}");
    let sent = &mock.lock().sockets[0].sent;
    assert!(
        sent.last()
            .is_some_and(|out| out.internal && out.frame.is_close()),
        "the shutdown's close frame went last and is the core's own: {sent:?}"
    );
}

/// One randomized case: a scripted socket with partial flushes and one
/// failure at a random point; frames sent in batches over (virtual) time.
/// Returns (accepted, written, returned).
async fn partial_flush_case(seed: u64) -> (usize, u64, usize) {
    let mut rng = Rng(seed);
    let mut socket = SocketScript::default();
    for _ in 0..rng.below(16) {
        socket = socket.flush(match rng.below(4) {
            0 => Flush::Ok,
            _ => Flush::Partial(rng.below(3) as usize),
        });
    }
    for _ in 0..rng.below(6) {
        socket.ready.push_back(if rng.below(2) == 0 {
            Ready::Ok
        } else {
            Ready::Pending
        });
    }
    let mut upgrade = UpgradeStep::Ok;
    let failure = rng.below(8);
    let io = Fault::Err(ErrorKind::Io);
    socket = match failure {
        0 if rng.below(2) == 0 => socket.fault(Call::Flush, 1 + rng.below(12) as usize, io),
        0 => {
            let at = rng.below(16) as usize;
            socket
                .flush
                .insert(at.min(socket.flush.len()), Flush::Err(ErrorKind::Io));
            socket
        }
        1 => socket.fault(Call::Ready, 1 + rng.below(30) as usize, io),
        2 => socket.fault(Call::Send, 1 + rng.below(30) as usize, io),
        3 => socket.fault(Call::Recv, 1 + rng.below(12) as usize, io),
        4 => socket
            .recv(Recv::Wait(MS * rng.below(40) as u32))
            .recv(Recv::End),
        // A protocol error: the core fails the connection with a close frame.
        5 => socket
            .recv(Recv::Wait(MS * rng.below(40) as u32))
            .recv(Recv::Err(ErrorKind::Protocol)),
        6 => {
            upgrade = UpgradeStep::Rejected(403);
            socket
        }
        // No failure: the shutdown at the end closes it.
        _ => socket,
    };
    let retries = rng.below(2) as u32;
    let mut attempts = vec![Attempt {
        dial: DialStep::Ok,
        upgrade,
        socket,
    }];
    // A reconnect, if allowed, fails to dial: the retries run out.
    attempts.push(Attempt {
        dial: DialStep::Err(ErrorKind::Connect),
        upgrade: UpgradeStep::Ok,
        socket: SocketScript::default(),
    });
    let (mock, url) = Mock::install(attempts);
    let options = Options::default()
        .no_keepalive()
        .retry(Retry::default().max_retries(retries).jitter(0.0));
    let (conn, mut events) = open(&url, options);
    let stream = conn.ws_upgrade("/").unwrap();

    let mut accepted = Vec::new();
    let mut next_id = 0;
    for _ in 0..1 + rng.below(8) {
        let n = 1 + rng.below(6);
        let frames: Vec<Frame> = (next_id..next_id + n).map(text).collect();
        next_id += n;
        match conn.ws_send(stream, frames.clone()) {
            Ok(()) => accepted.extend(frames.iter().map(id_of)),
            // Refused at once (the connection is down or closed): the
            // frames come back in the error and were never accepted.
            Err(error) => assert_eq!(error.unsent(), frames, "seed {seed}"),
        }
        // The schedule (not a synchronisation): let the driver and the
        // script's timers run for a random while.
        match rng.below(3) {
            0 => tokio::task::yield_now().await,
            1 => tokio::time::sleep(MS * rng.below(20) as u32).await,
            _ => {}
        }
    }
    conn.shutdown();
    let all = rest(&mut events).await;
    let returned = returned_by(&all);
    let written = conn.stats().frames_written;
    assert_exact(
        &format!("seed {seed} (failure {failure}, events {all:?})"),
        &accepted,
        written,
        &returned,
        &mock.wire_ids(),
    );
    // Returned frames come back in the order they were sent.
    assert!(
        returned.windows(2).all(|w| w[0] < w[1]),
        "seed {seed}: {returned:?}"
    );
    (accepted.len(), written, returned.len())
}

#[tokio::test(start_paused = true)]
async fn partial_flushes_then_a_failure_at_a_random_point_write_or_return_every_frame_exactly_once()
{
    let (mut accepted, mut written, mut returned) = (0, 0, 0);
    for seed in 0..200 {
        let (a, w, r) = partial_flush_case(seed).await;
        accepted += a;
        written += w;
        returned += r;
    }
    eprintln!("200 scripts: {accepted} frames accepted, {written} written, {returned} returned");
    assert!(written > 0 && returned > 0, "both outcomes are exercised");
}

/// Sends frames numbered from `base` until the connection refuses them as
/// closed. Returns the ids accepted, the count refused as full, and the
/// last (closed) error's frames.
fn send_until_closed(
    conn: Connection,
    stream: crate::event::StreamRef,
    base: u64,
) -> (Vec<u64>, u64, Vec<Frame>) {
    let deadline = std::time::Instant::now() + PATIENCE;
    let mut accepted = Vec::new();
    let mut refused = 0;
    for n in 0.. {
        assert!(
            std::time::Instant::now() < deadline,
            "the connection still accepts frames after {PATIENCE:?} ({} accepted)",
            accepted.len()
        );
        let id = base + n;
        match conn.ws_send(stream, text(id)) {
            Ok(()) => accepted.push(id),
            Err(error) if error.kind() == ErrorKind::QueueFull => {
                assert_eq!(error.unsent(), [text(id)]);
                refused += 1;
                std::thread::yield_now();
            }
            Err(error) => {
                assert_eq!(error.kind(), ErrorKind::Closed, "{error}");
                return (accepted, refused, error.into_unsent());
            }
        }
    }
    unreachable!()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_the_driver_ends_the_events_with_a_down_that_returns_every_unwritten_frame() {
    let mut socket = SocketScript::default().fault(Call::Recv, 300, Fault::Panic);
    for i in 0..200 {
        socket = socket.flush(if i % 3 == 0 {
            Flush::Ok
        } else {
            Flush::Partial(1)
        });
    }
    let (mock, url) = Mock::install([Attempt::open(socket)]);
    let (conn, mut events) = open(&url, quiet().send_queue_bytes(4096));
    let stream = conn.ws_upgrade("/").unwrap();
    until(&mut events, is_upgraded).await;

    let senders: Vec<_> = (0..2u64)
        .map(|t| {
            let conn = conn.clone();
            std::thread::spawn(move || send_until_closed(conn, stream, t << 40))
        })
        .collect();
    let all = rest(&mut events).await;
    let mut accepted = Vec::new();
    let mut refused = 0;
    for sender in senders {
        let (ids, full, last) = tokio::task::spawn_blocking(move || sender.join())
            .await
            .unwrap()
            .expect("a sending thread failed");
        assert_eq!(last.len(), 1, "the refused frame comes back in the error");
        accepted.extend(ids);
        refused += full;
    }
    let Some(Event::Down {
        reason: DownReason::Error(error),
        will_reconnect: false,
        ..
    }) = all.last()
    else {
        panic!(
            "the last event is not the driver's final Down: {:?}",
            all.last()
        );
    };
    assert_eq!(error.kind(), ErrorKind::Closed);
    assert_eq!(all.iter().filter(|e| is_down(e)).count(), 1);
    assert!(
        mock.lock().sockets[0].calls[Call::Recv as usize] >= 300,
        "the scripted panic happened"
    );
    let returned = returned_by(&all);
    let written = conn.stats().frames_written;
    assert_exact(
        &format!("panic ({refused} refused as full)"),
        &accepted,
        written,
        &returned,
        &mock.wire_ids(),
    );
    assert!(!returned.is_empty() || written as usize == accepted.len());
    // Later sends are refused with their frames.
    let error = conn.ws_send(stream, text(u64::MAX)).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Closed);
    assert_eq!(error.into_unsent(), [text(u64::MAX)]);
    assert!(tokio::time::timeout(PATIENCE, events.recv())
        .await
        .expect("recv returns at once after the end")
        .is_none());
}

#[test]
fn a_runtime_shut_down_under_the_driver_returns_every_frame_in_a_last_down() {
    let (mock, url) = Mock::install([Attempt::open(
        SocketScript::default()
            .flush(Flush::Partial(1))
            .flush_default(Flush::Stall { bytes: 0 }),
    )]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (conn, mut events, stream, early) = runtime.block_on(async {
        let (conn, mut events) = open(&url, quiet());
        let stream = conn.ws_upgrade("/").unwrap();
        let early = until(&mut events, is_upgraded).await;
        // In flight: handed to the socket, one written, the rest stuck.
        conn.ws_send(stream, vec![text(0), text(1), text(2)])
            .unwrap();
        mock.wait_for("3 frames handed over", |s| {
            (s.sockets[0].sent.len() == 3).then_some(())
        })
        .await;
        (conn, events, stream, early)
    });
    // Queued for a driver that will never run again.
    conn.ws_send(stream, vec![text(3), text(4)]).unwrap();
    drop(runtime);

    let error = conn.ws_send(stream, text(5)).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Closed);
    assert_eq!(error.into_unsent(), [text(5)]);
    let reader = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let all = reader.block_on(rest(&mut events));
    let Some(Event::Down {
        reason: DownReason::Error(error),
        unsent,
        will_reconnect: false,
        ..
    }) = all.last()
    else {
        panic!("no final Down: {early:?} then {all:?}");
    };
    assert_eq!(error.kind(), ErrorKind::Closed);
    assert_eq!(unsent, &[text(1), text(2), text(3), text(4)]);
    assert!(mock.lock().sockets[0].dropped);
    assert_exact(
        "runtime shutdown",
        &[0, 1, 2, 3, 4],
        conn.stats().frames_written,
        &returned_by(&all),
        &mock.wire_ids(),
    );
}

/// A protocol error of the peer's while frames wait for a flush.
async fn protocol_error_with_stalled_flush() -> (Arc<Mock>, Connection, Events, Instant) {
    let gate = Gate::default();
    let (mock, url) = Mock::install([Attempt::open(
        SocketScript::default()
            .flush_default(Flush::Stall { bytes: 0 })
            .recv(Recv::Gate(gate.clone()))
            .recv(Recv::Err(ErrorKind::Protocol)),
    )]);
    let (conn, mut events) = open(&url, quiet());
    let stream = conn.ws_upgrade("/").unwrap();
    until(&mut events, is_upgraded).await;
    conn.ws_send(stream, vec![text(0), text(1), text(2)])
        .unwrap();
    mock.wait_for("3 frames handed over", |s| {
        (s.sockets[0].sent.len() == 3).then_some(())
    })
    .await;
    let t0 = Instant::now();
    gate.open();
    mock.wait_for("the fail-close frame", |s| {
        (!s.sockets[0].fail_closes.is_empty()).then_some(())
    })
    .await;
    assert_eq!(mock.lock().sockets[0].fail_closes, [1002]);
    (mock, conn, events, t0)
}

fn assert_protocol_down(event: &Event) {
    let Event::Down {
        reason: DownReason::Error(error),
        will_reconnect: false,
        ..
    } = event
    else {
        panic!("not a Down for the peer's protocol error: {event:?}");
    };
    assert_eq!(error.kind(), ErrorKind::Protocol);
}

#[tokio::test(start_paused = true)]
async fn a_protocol_error_sends_1002_and_goes_down_at_the_fail_close_deadline_if_the_flush_never_completes(
) {
    let (mock, conn, mut events, t0) = protocol_error_with_stalled_flush().await;
    let seen = until(&mut events, is_down).await;
    let elapsed = Instant::now() - t0;
    assert!(
        elapsed >= FAIL_CLOSE_TIMEOUT && elapsed <= FAIL_CLOSE_TIMEOUT + 5 * MS,
        "down after {elapsed:?}"
    );
    let down = seen.last().unwrap();
    assert_protocol_down(down);
    let Event::Down { unsent, .. } = down else {
        unreachable!()
    };
    assert_eq!(unsent, &[text(0), text(1), text(2)]);
    let after = rest(&mut events).await;
    assert!(after.is_empty(), "{after:?}");
    assert!(mock.lock().sockets[0].dropped);
    assert_exact(
        "fail-close timeout",
        &[0, 1, 2],
        conn.stats().frames_written,
        &returned_by(&seen),
        &mock.wire_ids(),
    );
}

#[tokio::test(start_paused = true)]
async fn a_protocol_error_goes_down_as_soon_as_the_fail_close_flush_completes() {
    let (mock, conn, mut events, t0) = protocol_error_with_stalled_flush().await;
    mock.rescript(0, |script| script.flush_default = Flush::Ok);
    let seen = until(&mut events, is_down).await;
    assert!(Instant::now() - t0 < 5 * MS, "no wait for the deadline");
    let down = seen.last().unwrap();
    assert_protocol_down(down);
    let Event::Down { unsent, .. } = down else {
        unreachable!()
    };
    assert!(
        unsent.is_empty(),
        "the completed flush wrote them: {unsent:?}"
    );
    assert!(rest(&mut events).await.is_empty());
    assert_eq!(mock.wire_ids(), [0, 1, 2]);
    assert_eq!(conn.stats().frames_written, 3);
}

/// A peer that talks every 100 ms (so the keepalive hears it) while our
/// writes are blocked; `bytes` per flush attempt get out.
async fn write_blocked(bytes: u64) -> (Arc<Mock>, Connection, Events, Instant) {
    let mut socket = SocketScript::default().flush_default(Flush::Stall { bytes });
    for i in 0..100 {
        socket = socket
            .recv(Recv::Wait(100 * MS))
            .recv(Recv::Frame(Frame::text(format!("peer {i}"))));
    }
    let (mock, url) = Mock::install([Attempt::open(socket)]);
    let options = quiet().keepalive(Keepalive::every(200 * MS).timeout(300 * MS));
    let (conn, mut events) = open(&url, options);
    let stream = conn.ws_upgrade("/").unwrap();
    until(&mut events, is_upgraded).await;
    conn.ws_send(stream, vec![text(0), text(1)]).unwrap();
    mock.wait_for("2 frames handed over", |s| {
        (s.sockets[0].sent.len() == 2).then_some(())
    })
    .await;
    (mock, conn, events, Instant::now())
}

fn peer_frames(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::Frame { .. }))
        .count()
}

#[tokio::test(start_paused = true)]
async fn a_write_stalled_for_keepalive_interval_plus_timeout_is_a_dead_peer_at_500ms() {
    let (mock, conn, mut events, t0) = write_blocked(0).await;
    let seen = until(&mut events, is_down).await;
    let elapsed = Instant::now() - t0;
    assert!(
        elapsed >= 500 * MS && elapsed <= 505 * MS,
        "declared dead after {elapsed:?}"
    );
    assert!(
        peer_frames(&seen) >= 4,
        "the peer kept talking, so the keepalive alone was satisfied: {seen:?}"
    );
    let Some(Event::Down {
        reason: DownReason::PeerDead,
        unsent,
        will_reconnect: false,
        ..
    }) = seen.last()
    else {
        panic!("not PeerDead: {seen:?}");
    };
    assert_eq!(unsent, &[text(0), text(1)]);
    rest(&mut events).await;
    assert_exact(
        "write stall",
        &[0, 1],
        conn.stats().frames_written,
        &returned_by(&seen),
        &mock.wire_ids(),
    );
}

#[tokio::test(start_paused = true)]
async fn a_write_that_keeps_making_progress_is_not_a_dead_peer() {
    let (mock, conn, mut events, t0) = write_blocked(100).await;
    // Three seconds of the peer talking (30 frames) while the flush crawls.
    let mut seen = Vec::new();
    while peer_frames(&seen) < 30 {
        let event = next(&mut events).await;
        assert!(!is_down(&event), "declared dead while writing: {event:?}");
        seen.push(event);
    }
    assert!(Instant::now() - t0 >= Duration::from_secs(3));
    // The flush completes: the frames count as written.
    mock.rescript(0, |script| script.flush_default = Flush::Ok);
    mock.wait_for("the frames written", |s| {
        (s.sockets[0].written_through == Some(2)).then_some(())
    })
    .await;
    conn.shutdown();
    let all = rest(&mut events).await;
    let Some(Event::Down {
        reason: DownReason::Shutdown,
        unsent,
        ..
    }) = all.iter().find(|e| is_down(e))
    else {
        panic!("no Down after the shutdown: {all:?}");
    };
    assert!(unsent.is_empty());
    assert_eq!(conn.stats().frames_written, 2);
    assert_eq!(mock.wire_ids(), [0, 1]);
}

#[tokio::test(start_paused = true)]
async fn a_close_frame_queued_during_a_pending_upgrade_ends_the_connection_after_the_upgrade_timeout(
) {
    let (mock, url) = Mock::install([Attempt {
        dial: DialStep::Ok,
        upgrade: UpgradeStep::Pending,
        socket: SocketScript::default(),
    }]);
    // Retries allowed: only the close frame stops them.
    let options = Options::default()
        .no_keepalive()
        .upgrade_timeout(200 * MS)
        .retry(Retry::default().jitter(0.0));
    let (conn, mut events) = open(&url, options);
    let stream = conn.ws_upgrade("/").unwrap();
    conn.ws_send(stream, vec![text(0), Frame::close_normal()])
        .unwrap();
    let all = rest(&mut events).await;
    let failed = all
        .iter()
        .find_map(|e| match e {
            Event::UpgradeFailed { error, .. } => Some(error.kind()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no UpgradeFailed: {all:?}"));
    assert_eq!(failed, ErrorKind::Timeout);
    let Some(Event::Down {
        unsent,
        will_reconnect: false,
        ..
    }) = all.last()
    else {
        panic!("the events do not end with a final Down: {all:?}");
    };
    assert_eq!(unsent, &[text(0), Frame::close_normal()]);
    assert_eq!(mock.lock().dials, 1, "no reconnect after a close frame");
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_while_the_dial_hangs_returns_the_frames_in_the_upgrade_failure() {
    let (mock, url) = Mock::install([Attempt {
        dial: DialStep::Pending,
        upgrade: UpgradeStep::Ok,
        socket: SocketScript::default(),
    }]);
    let (conn, mut events) = open(&url, quiet());
    let stream = conn.ws_upgrade("/").unwrap();
    conn.ws_send(stream, vec![text(0), text(1)]).unwrap();
    mock.wait_for("the dial", |s| (s.dials == 1).then_some(()))
        .await;
    conn.shutdown();
    let all = rest(&mut events).await;
    assert_eq!(returned_by(&all), [0, 1], "{all:?}");
    assert!(
        matches!(&all[..], [Event::UpgradeFailed { error, .. }] if error.kind() == ErrorKind::Closed),
        "{all:?}"
    );
    assert_eq!(conn.stats().frames_written, 0);
}

#[tokio::test(start_paused = true)]
async fn nothing_is_sent_after_the_peers_close_frame_and_a_later_error_is_still_a_close_by_the_peer(
) {
    let gate = Gate::default();
    let end = Gate::default();
    let close = Frame::Close(Some(crate::frame::CloseFrame {
        code: crate::frame::CloseCode::new(1008).unwrap(),
        reason: String::new(),
    }));
    let (mock, url) = Mock::install([Attempt::open(
        SocketScript::default()
            .recv(Recv::Gate(gate.clone()))
            .recv(Recv::Frame(close))
            .recv(Recv::Gate(end.clone()))
            // What tungstenite says to a send after the close (SendAfterClosing).
            .recv(Recv::Err(ErrorKind::Protocol)),
    )]);
    // Retries allowed: only the stop code (1008) ends the connection.
    let options = Options::default()
        .no_keepalive()
        .retry(Retry::default().jitter(0.0));
    let (conn, mut events) = open(&url, options);
    let stream = conn.ws_upgrade("/").unwrap();
    until(&mut events, is_upgraded).await;
    gate.open();
    until(&mut events, |e| {
        matches!(
            e,
            Event::Frame {
                frame: Frame::Close(_),
                ..
            }
        )
    })
    .await;
    // Refused at once, the frames given back (issue 21, item 5).
    let refused = conn.ws_send(stream, vec![text(0), text(1)]).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Closed);
    assert_eq!(refused.into_unsent(), [text(0), text(1)]);
    end.open();
    let all = rest(&mut events).await;
    let Some(Event::Down {
        reason: DownReason::ClosedByPeer(close),
        unsent,
        will_reconnect: false,
        ..
    }) = all.last()
    else {
        panic!("not a final close by the peer: {all:?}");
    };
    assert_eq!(close.code.as_u16(), 1008);
    assert!(unsent.is_empty(), "{unsent:?}");
    let state = mock.lock();
    let record = &state.sockets[0];
    assert!(
        record.sent.is_empty(),
        "sent after the peer's close: {:?}",
        record.sent
    );
    assert!(
        record.fail_closes.is_empty(),
        "not the peer's protocol error"
    );
    assert_eq!(state.dials, 1);
}
