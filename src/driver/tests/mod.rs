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

mod delivery;
mod failing;
mod size;

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
    /// Calls of `trim` (the driver's quiet moments).
    trims: usize,
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
                        trims: 0,
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
                        version: Some(http::Version::HTTP_11),
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

    fn trim(&mut self) {
        self.with(|record| record.trims += 1);
    }
}

impl Drop for MockSocket {
    fn drop(&mut self) {
        self.with(|record| record.dropped = true);
    }
}

// ---- accounting -------------------------------------------------------------

/// `socket` with a peer that says "peer 0", "peer 1", … every `every`,
/// `times` times (so the keepalive hears it).
fn talking(mut socket: SocketScript, every: Duration, times: usize) -> SocketScript {
    for i in 0..times {
        socket = socket
            .recv(Recv::Wait(every))
            .recv(Recv::Frame(Frame::text(format!("peer {i}"))));
    }
    socket
}

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
