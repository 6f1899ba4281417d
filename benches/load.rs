//! Load benchmarks: what users hit besides raw throughput, wstether against
//! the clients a user would pick instead, in the same run, against the same
//! echo server.
//!
//! ```text
//! cargo bench --bench load              # full run (~3.5 minutes)
//! cargo bench --bench load -- --smoke   # tiny sizes, for CI
//! cargo bench --bench load -- --only latency   # or: many
//! # also: --runs N, --client NAME, --load PERCENT (latency), --connections N (many)
//! ```
//!
//! - **latency**: round-trip time of 1 KiB binary messages sent open-loop at
//!   50 % of each client's own peak pipelined rate: p50, p99 and p99.9.
//!   Each run of each client first measures that peak (100,000 messages
//!   pipelined, as `pipe-1KiB-binary` in `benches/native.rs`), then sends
//!   at half of it for 1 s of warm-up and 5 s measured. Every message
//!   carries its *intended* send time and the round trip is measured from
//!   it, so a client that falls behind is charged for the wait (no
//!   coordinated omission). Pacing: tokio's timers tick every 1 ms, so a
//!   `timerfd` (µs precision) ticks every 100 µs through tokio's reactor;
//!   each tick sends a batch of the messages due in it, all stamped with
//!   the tick's time. How late the runtime polled the sender after a tick
//!   is part of the round trip (and reported alone as `wake_p50_us`).
//!   Samples are kept and sorted (exact percentiles). Clients: wstether
//!   (`send().await` each message), tokio-tungstenite (plain: `send` each;
//!   batched: `feed` a tick's messages, one `flush`), fastwebsockets
//!   (`write_frame` each), each a tokio task on a current-thread runtime
//!   (sending and receiving in one task, with `join!`), as in
//!   `benches/native.rs`.
//! - **many**: 1,000 connections on a multi-thread runtime (one worker per
//!   core), each keeping a window of 4 messages of 1 KiB in flight (an echo
//!   received, one more sent) for a fixed time: total msg/s and the client
//!   process's CPU per message (getrusage: user + system), wstether against
//!   tokio-tungstenite written the same way. The echo server runs on its
//!   own multi-thread runtime; its CPU per message is reported too.
//!
//! The echo server is this binary re-run with `--serve` (the same echo loop
//! as `benches/native.rs`: tokio-tungstenite, release build, echoing every
//! message it can read before one flush, TCP_NODELAY). Runs are interleaved
//! (A B C D A B C D …) and every figure is a median over runs.
//!
//! Results: tables on stdout, `target/bench-results/latency.json` and
//! `many.json` (`*-smoke.json` with `--smoke`).

// Native only (a tokio runtime, the testkit server): the wasm32
// `--all-targets` check sees an empty crate (`no_main`: none to find).
#![cfg_attr(browser, no_main)]
#![cfg(native)]

#[path = "common/echo.rs"]
mod echo;
#[path = "common/fastws.rs"]
mod fastws;

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{Bytes, Message};

/// Every message: 1 KiB binary; its first 8 bytes hold the intended send
/// time (ns since the run's start, little-endian).
const SIZE: usize = 1024;
/// The pacing tick of the latency scenario.
const TICK_NS: u64 = 100_000;
/// Messages in flight per connection in the many-connections scenario.
const WINDOW: usize = 4;

struct Sizes {
    runs: usize,
    /// Only this client (`--client`), for profiling.
    client: Option<String>,
    /// Latency: messages of each peak-rate run.
    peak_count: usize,
    /// Latency: the share of the peak rate sent at (0.5).
    load: f64,
    warmup: Duration,
    measure: Duration,
    /// Many connections.
    connections: usize,
    many_warmup: Duration,
    many_measure: Duration,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--serve") {
        let threads = args.get(i + 1).and_then(|t| t.parse().ok()).unwrap_or(1);
        return echo::serve(threads);
    }
    let smoke = args.iter().any(|a| a == "--smoke");
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let runs_flag = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse::<usize>().expect("a number"));
    let mut sizes = if smoke {
        Sizes {
            runs: 1,
            client: None,
            peak_count: 2_000,
            load: 0.5,
            warmup: Duration::from_millis(100),
            measure: Duration::from_millis(300),
            connections: 50,
            many_warmup: Duration::from_millis(200),
            many_measure: Duration::from_millis(500),
        }
    } else {
        Sizes {
            runs: 5,
            client: None,
            peak_count: 100_000,
            load: 0.5,
            warmup: Duration::from_secs(1),
            measure: Duration::from_secs(5),
            connections: 1000,
            many_warmup: Duration::from_secs(1),
            many_measure: Duration::from_secs(4),
        }
    };
    if let Some(runs) = runs_flag {
        sizes.runs = runs;
    }
    // `--load PERCENT`: the latency scenario at another share of the peak.
    if let Some(p) = args
        .iter()
        .position(|a| a == "--load")
        .and_then(|i| args.get(i + 1))
    {
        sizes.load = p.parse::<f64>().expect("a number") / 100.0;
    }
    // `--client NAME`: that client alone (for profiling).
    sizes.client = args
        .iter()
        .position(|a| a == "--client")
        .and_then(|i| args.get(i + 1))
        .cloned();
    // `--connections N`: the many-connections scenario at another size.
    if let Some(n) = args
        .iter()
        .position(|a| a == "--connections")
        .and_then(|i| args.get(i + 1))
    {
        sizes.connections = n.parse().expect("a number");
    }
    if only.as_deref().is_none_or(|o| o == "latency") {
        latency::run(&sizes, smoke);
    }
    if only.as_deref().is_none_or(|o| o == "many") {
        many::run(&sizes, smoke);
    }
}

fn message(stamp: u64) -> Vec<u8> {
    let mut data = vec![b'x'; SIZE];
    data[..8].copy_from_slice(&stamp.to_le_bytes());
    data
}

fn stamp_of(data: &[u8]) -> u64 {
    u64::from_le_bytes(data[..8].try_into().expect("an 8-byte stamp"))
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn min_max(values: &[f64]) -> (f64, f64) {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max)
}

fn json_list(values: &[f64], decimals: usize) -> String {
    let items: Vec<String> = values.iter().map(|v| format!("{v:.decimals$}")).collect();
    format!("[{}]", items.join(","))
}

fn write_json(name: &str, smoke: bool, entries: &[String]) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-results");
    std::fs::create_dir_all(&dir).unwrap();
    let file = if smoke {
        format!("{name}-smoke.json")
    } else {
        format!("{name}.json")
    };
    let path = dir.join(file);
    std::fs::write(&path, format!("[\n{}\n]\n", entries.join(",\n"))).unwrap();
    println!("results: {}", path.display());
}

/// The clients to run: all, or the one named by `--client`.
fn chosen(all: &[&'static str], sizes: &Sizes) -> Vec<&'static str> {
    all.iter()
        .copied()
        .filter(|c| sizes.client.as_deref().is_none_or(|only| only == *c))
        .collect()
}

/// User + system CPU time of this process (all threads), from getrusage.
fn process_cpu() -> Duration {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut usage), 0);
        usage
    };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// User + system CPU time of another process, from `/proc/PID/stat`
/// (clock ticks, 10 ms each).
fn child_cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 =
        fields[14 - 3].parse::<u64>().unwrap() + fields[15 - 3].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_nanos(ticks * 1_000_000_000 / per_second)
}

/// Raises the soft limit on open files to the hard one (the echo server
/// inherits it); returns the soft limit in force.
fn raise_open_files_limit() -> u64 {
    // SAFETY: getrlimit and setrlimit read and write the struct given.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
        limit.rlim_cur as u64
    }
}

/// Runs a client as a spawned task (see `spawned` in benches/native.rs).
fn spawned<T: Send + 'static>(
    runtime: &tokio::runtime::Runtime,
    client: impl Future<Output = T> + Send + 'static,
) -> T {
    runtime.block_on(async { tokio::spawn(client).await.unwrap() })
}

// ---- the echo server ------------------------------------------------------

struct EchoServer {
    port: u16,
    child: Child,
}

impl EchoServer {
    /// `threads`: 1 for a current-thread runtime, more for a multi-thread one.
    fn start(threads: usize) -> EchoServer {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .arg("--serve")
            .arg(threads.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the echo server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .expect("PORT line")
            .parse()
            .unwrap();
        EchoServer { port, child }
    }

    fn cpu(&self) -> Duration {
        child_cpu(self.child.id())
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        // Closing stdin ends it; wait, so its CPU time is not left behind.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

// ---- clients: one interface over the four -----------------------------------

/// A connected client, split into a sending and a receiving half (which
/// one task drives at once, with `join!`).
trait Client: Send + 'static {
    type Tx: Send;
    type Rx: Send;
    fn open(port: u16) -> impl Future<Output = (Self::Tx, Self::Rx)> + Send;
    /// Sends a batch of messages, the way this client is written.
    fn send(tx: &mut Self::Tx, batch: Vec<Vec<u8>>) -> impl Future<Output = ()> + Send;
    /// The stamp of the next echo.
    fn recv(rx: &mut Self::Rx) -> impl Future<Output = u64> + Send;
    fn close(tx: Self::Tx, rx: Self::Rx) -> impl Future<Output = ()> + Send;
}

struct Wstether;

impl Client for Wstether {
    type Tx = (wstether::Connection, wstether::StreamRef);
    type Rx = wstether::Events;

    async fn open(port: u16) -> (Self::Tx, Self::Rx) {
        let options = wstether::Options::default().no_keepalive();
        let (conn, events, stream) = wstether::connect(&format!("ws://127.0.0.1:{port}/"), options)
            .await
            .unwrap();
        ((conn, stream), events)
    }

    async fn send((conn, stream): &mut Self::Tx, batch: Vec<Vec<u8>>) {
        for data in batch {
            conn.send(*stream, wstether::Frame::Binary(data.into()))
                .await
                .unwrap();
        }
    }

    async fn recv(events: &mut Self::Rx) -> u64 {
        loop {
            match events.recv().await {
                Some(wstether::Event::Frame {
                    frame: wstether::Frame::Binary(data),
                    ..
                }) => return stamp_of(&data),
                Some(_) => {}
                None => panic!("echo expected"),
            }
        }
    }

    async fn close((conn, _): Self::Tx, mut events: Self::Rx) {
        conn.shutdown();
        while events.recv().await.is_some() {}
    }
}

type TungsteniteSocket = tokio_tungstenite::WebSocketStream<TcpStream>;

async fn tungstenite_connect(port: u16) -> TungsteniteSocket {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let (ws, _) = tokio_tungstenite::client_async(format!("ws://127.0.0.1:{port}/"), tcp)
        .await
        .unwrap();
    ws
}

async fn tungstenite_recv(rx: &mut futures::stream::SplitStream<TungsteniteSocket>) -> u64 {
    loop {
        match rx.next().await {
            Some(Ok(Message::Binary(data))) => return stamp_of(&data),
            Some(Ok(_)) => {}
            other => panic!("echo expected, got {other:?}"),
        }
    }
}

/// tokio-tungstenite written the plain way: `send` (feed + flush) each.
struct Tungstenite;

impl Client for Tungstenite {
    type Tx = futures::stream::SplitSink<TungsteniteSocket, Message>;
    type Rx = futures::stream::SplitStream<TungsteniteSocket>;

    async fn open(port: u16) -> (Self::Tx, Self::Rx) {
        tungstenite_connect(port).await.split()
    }

    async fn send(tx: &mut Self::Tx, batch: Vec<Vec<u8>>) {
        for data in batch {
            tx.send(Message::Binary(Bytes::from(data))).await.unwrap();
        }
    }

    async fn recv(rx: &mut Self::Rx) -> u64 {
        tungstenite_recv(rx).await
    }

    async fn close(mut tx: Self::Tx, _: Self::Rx) {
        let _ = tx.close().await;
    }
}

/// tokio-tungstenite batched by hand: `feed` a batch, one `flush`.
struct TungsteniteBatched;

impl Client for TungsteniteBatched {
    type Tx = futures::stream::SplitSink<TungsteniteSocket, Message>;
    type Rx = futures::stream::SplitStream<TungsteniteSocket>;

    async fn open(port: u16) -> (Self::Tx, Self::Rx) {
        tungstenite_connect(port).await.split()
    }

    async fn send(tx: &mut Self::Tx, batch: Vec<Vec<u8>>) {
        for data in batch {
            tx.feed(Message::Binary(Bytes::from(data))).await.unwrap();
        }
        tx.flush().await.unwrap();
    }

    async fn recv(rx: &mut Self::Rx) -> u64 {
        tungstenite_recv(rx).await
    }

    async fn close(mut tx: Self::Tx, _: Self::Rx) {
        let _ = tx.close().await;
    }
}

/// fastwebsockets 0.10: `split`, `write_frame` each, `read_frame`.
struct FastWebsockets;

impl Client for FastWebsockets {
    type Tx = fastwebsockets::WebSocketWrite<tokio::io::WriteHalf<TcpStream>>;
    type Rx = fastwebsockets::WebSocketRead<tokio::io::ReadHalf<TcpStream>>;

    async fn open(port: u16) -> (Self::Tx, Self::Rx) {
        let tcp = fastws::connect(port).await;
        let mut ws = fastwebsockets::WebSocket::after_handshake(tcp, fastwebsockets::Role::Client);
        ws.set_auto_pong(false);
        let (rx, tx) = ws.split(tokio::io::split);
        (tx, rx)
    }

    async fn send(tx: &mut Self::Tx, batch: Vec<Vec<u8>>) {
        use fastwebsockets::{Frame, OpCode, Payload};
        for data in batch {
            tx.write_frame(Frame::new(true, OpCode::Binary, None, Payload::Owned(data)))
                .await
                .unwrap();
        }
    }

    async fn recv(rx: &mut Self::Rx) -> u64 {
        let mut ignore = |_: fastwebsockets::Frame<'_>| async { Ok::<(), std::io::Error>(()) };
        loop {
            let frame = rx.read_frame(&mut ignore).await.unwrap();
            if frame.opcode == fastwebsockets::OpCode::Binary {
                return stamp_of(&frame.payload);
            }
        }
    }

    async fn close(mut tx: Self::Tx, _: Self::Rx) {
        let _ = tx
            .write_frame(fastwebsockets::Frame::close(1000, b""))
            .await;
    }
}

// ---- (a) latency under load -------------------------------------------------

mod latency {
    use super::*;

    const ALL: &[&str] = &[
        "wstether",
        "tokio-tungstenite",
        "tokio-tungstenite-batched",
        "fastwebsockets",
    ];

    /// Pipelined: send `count` messages (in batches of 64 through
    /// `Client::send`), receive all echoes; msg/s.
    async fn peak<C: Client>(port: u16, count: usize) -> f64 {
        let (mut tx, mut rx) = C::open(port).await;
        let started = Instant::now();
        let send_all = async {
            let mut sent = 0;
            while sent < count {
                let n = 64.min(count - sent);
                C::send(&mut tx, (0..n).map(|_| message(0)).collect()).await;
                sent += n;
            }
        };
        let receive_all = async {
            for _ in 0..count {
                C::recv(&mut rx).await;
            }
        };
        futures::join!(send_all, receive_all);
        let elapsed = started.elapsed();
        C::close(tx, rx).await;
        count as f64 / elapsed.as_secs_f64()
    }

    /// A `timerfd` ticking every `TICK_NS` through tokio's reactor.
    struct Ticker {
        fd: tokio::io::unix::AsyncFd<OwnedFd>,
    }

    impl Ticker {
        fn start(period_ns: u64) -> Ticker {
            // SAFETY: plain system calls; the descriptor is an `OwnedFd` that
            // the `AsyncFd` owns (and closes) for the rest of its life.
            unsafe {
                let fd = libc::timerfd_create(
                    libc::CLOCK_MONOTONIC,
                    libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
                );
                assert!(fd >= 0, "timerfd_create");
                let fd = OwnedFd::from_raw_fd(fd);
                let period = libc::timespec {
                    tv_sec: (period_ns / 1_000_000_000) as _,
                    tv_nsec: (period_ns % 1_000_000_000) as _,
                };
                let spec = libc::itimerspec {
                    it_interval: period,
                    it_value: period,
                };
                let rc = libc::timerfd_settime(fd.as_raw_fd(), 0, &spec, std::ptr::null_mut());
                assert_eq!(rc, 0, "timerfd_settime");
                Ticker {
                    fd: tokio::io::unix::AsyncFd::register(fd).unwrap(),
                }
            }
        }

        /// Waits for the next expiry (several missed ones count as one).
        async fn tick(&self) {
            loop {
                let mut guard = self.fd.readable().await.unwrap();
                let read = guard.try_io(|fd| {
                    let mut expiries = 0u64;
                    // SAFETY: reads 8 bytes into a u64.
                    let n = unsafe {
                        libc::read(
                            fd.as_raw_fd(),
                            (&mut expiries as *mut u64).cast(),
                            std::mem::size_of::<u64>(),
                        )
                    };
                    if n < 0 {
                        Err(std::io::Error::last_os_error())
                    } else {
                        Ok(())
                    }
                });
                if let Ok(result) = read {
                    result.unwrap();
                    return;
                }
            }
        }
    }

    pub struct Run {
        pub p50_us: f64,
        pub p99_us: f64,
        pub p999_us: f64,
        pub max_us: f64,
        /// How late the sender woke for a tick, median (µs).
        pub wake_p50_us: f64,
    }

    fn percentile(sorted: &[u64], q: f64) -> f64 {
        if sorted.is_empty() {
            return f64::NAN;
        }
        let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
        sorted[i] as f64 / 1e3
    }

    /// Open loop at `rate` msg/s for `warmup + measure`: tick k (at
    /// (k + 1) × TICK_NS after the start) sends messages
    /// ⌊k·r⌋ .. ⌊(k+1)·r⌋ (r: messages per tick), each stamped with the
    /// tick's time; round trips are measured from that stamp.
    async fn open_loop<C: Client>(
        port: u16,
        rate: f64,
        warmup: Duration,
        measure: Duration,
    ) -> Run {
        let (mut tx, mut rx) = C::open(port).await;
        let ticks = (warmup + measure).as_nanos() as u64 / TICK_NS;
        let per_tick = rate * TICK_NS as f64 / 1e9;
        let first = |k: u64| (k as f64 * per_tick) as u64;
        let total = first(ticks);
        let warm_ns = warmup.as_nanos() as u64;
        let started = Instant::now();
        let ticker = Ticker::start(TICK_NS);
        let now_ns = || started.elapsed().as_nanos() as u64;
        let send_all = async {
            let mut wake_late = Vec::with_capacity(ticks as usize);
            let mut k = 0;
            while k < ticks {
                ticker.tick().await;
                let now = now_ns();
                let due = (now / TICK_NS).min(ticks);
                if k < due {
                    wake_late.push(now - (k + 1) * TICK_NS);
                }
                let mut batch = Vec::new();
                while k < due {
                    let stamp = (k + 1) * TICK_NS;
                    batch.extend((first(k)..first(k + 1)).map(|_| message(stamp)));
                    k += 1;
                }
                if !batch.is_empty() {
                    C::send(&mut tx, batch).await;
                }
            }
            wake_late
        };
        let receive_all = async {
            let mut samples = Vec::with_capacity(total as usize);
            for _ in 0..total {
                let stamp = C::recv(&mut rx).await;
                let now = now_ns();
                if stamp > warm_ns {
                    samples.push(now - stamp);
                }
            }
            samples
        };
        let (mut wake_late, mut samples) = futures::join!(send_all, receive_all);
        C::close(tx, rx).await;
        samples.sort_unstable();
        wake_late.sort_unstable();
        Run {
            p50_us: percentile(&samples, 0.50),
            p99_us: percentile(&samples, 0.99),
            p999_us: percentile(&samples, 0.999),
            max_us: percentile(&samples, 1.0),
            wake_p50_us: percentile(&wake_late, 0.5),
        }
    }

    fn dispatch_peak(
        runtime: &tokio::runtime::Runtime,
        client: &str,
        port: u16,
        count: usize,
    ) -> f64 {
        match client {
            "wstether" => spawned(runtime, peak::<Wstether>(port, count)),
            "tokio-tungstenite" => spawned(runtime, peak::<Tungstenite>(port, count)),
            "tokio-tungstenite-batched" => {
                spawned(runtime, peak::<TungsteniteBatched>(port, count))
            }
            "fastwebsockets" => spawned(runtime, peak::<FastWebsockets>(port, count)),
            _ => unreachable!(),
        }
    }

    fn dispatch_open_loop(
        runtime: &tokio::runtime::Runtime,
        client: &str,
        port: u16,
        rate: f64,
        sizes: &Sizes,
    ) -> Run {
        let (w, m) = (sizes.warmup, sizes.measure);
        match client {
            "wstether" => spawned(runtime, open_loop::<Wstether>(port, rate, w, m)),
            "tokio-tungstenite" => spawned(runtime, open_loop::<Tungstenite>(port, rate, w, m)),
            "tokio-tungstenite-batched" => {
                spawned(runtime, open_loop::<TungsteniteBatched>(port, rate, w, m))
            }
            "fastwebsockets" => spawned(runtime, open_loop::<FastWebsockets>(port, rate, w, m)),
            _ => unreachable!(),
        }
    }

    pub fn run(sizes: &Sizes, smoke: bool) {
        let clients = chosen(ALL, sizes);
        let server = EchoServer::start(1);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // Each run of each client: its peak pipelined rate, then the open
        // loop at half of it (`--load`) at once, so the rate follows the machine's
        // speed; clients take turns (A B C D A B C D ...).
        let mut peaks: Vec<Vec<f64>> = clients.iter().map(|_| Vec::new()).collect();
        let mut runs: Vec<Vec<Run>> = clients.iter().map(|_| Vec::new()).collect();
        for _ in 0..sizes.runs {
            for (i, client) in clients.iter().enumerate() {
                let peak = dispatch_peak(&runtime, client, server.port, sizes.peak_count);
                peaks[i].push(peak);
                let rate = peak * sizes.load;
                runs[i].push(dispatch_open_loop(
                    &runtime,
                    client,
                    server.port,
                    rate,
                    sizes,
                ));
            }
        }
        println!(
            "latency: 1 KiB binary, open loop at {:.0} % of each client's peak, {} s after {} s warm-up, \
             median of {} runs (min–max)",
            sizes.load * 100.0,
            sizes.measure.as_secs_f64(),
            sizes.warmup.as_secs_f64(),
            sizes.runs
        );
        println!(
            "{:<26} {:>10} {:>10} {:>22} {:>22} {:>22} {:>9}",
            "client", "peak/s", "rate/s", "p50 µs", "p99 µs", "p99.9 µs", "wake µs"
        );
        let mut entries = Vec::new();
        for ((client, peaks), runs) in clients.iter().zip(&peaks).zip(&runs) {
            let field = |f: fn(&Run) -> f64| runs.iter().map(f).collect::<Vec<f64>>();
            let (p50, p99, p999, max, wake) = (
                field(|r| r.p50_us),
                field(|r| r.p99_us),
                field(|r| r.p999_us),
                field(|r| r.max_us),
                field(|r| r.wake_p50_us),
            );
            let peak = median(peaks);
            let cell = |v: &[f64]| {
                let (lo, hi) = min_max(v);
                format!("{:.0} ({:.0}–{:.0})", median(v), lo, hi)
            };
            println!(
                "{:<26} {:>10.0} {:>10.0} {:>22} {:>22} {:>22} {:>9.0}",
                client,
                peak,
                peak * sizes.load,
                cell(&p50),
                cell(&p99),
                cell(&p999),
                median(&wake)
            );
            entries.push(format!(
                "  {{\"client\":\"{client}\",\"size\":{SIZE},\"peak_msgs_per_s\":{peak:.0},\"load\":{},\"rate_msgs_per_s\":{:.0},\
                 \"p50_us\":{:.1},\"p99_us\":{:.1},\"p999_us\":{:.1},\"max_us\":{:.1},\
                 \"wake_p50_us\":{:.1},\"runs\":{},\"warmup_s\":{},\"measure_s\":{},\
                 \"peak_samples\":{},\"p50_samples\":{},\"p99_samples\":{},\"p999_samples\":{},\"max_samples\":{}}}",
                sizes.load,
                peak * sizes.load,
                median(&p50),
                median(&p99),
                median(&p999),
                median(&max),
                median(&wake),
                runs.len(),
                sizes.warmup.as_secs_f64(),
                sizes.measure.as_secs_f64(),
                json_list(peaks, 0),
                json_list(&p50, 1),
                json_list(&p99, 1),
                json_list(&p999, 1),
                json_list(&max, 1),
            ));
        }
        write_json("latency", smoke, &entries);
    }
}

// ---- (b) many connections ---------------------------------------------------

mod many {
    use super::*;

    const ALL: &[&str] = &["wstether", "tokio-tungstenite"];

    /// Shared by every connection of a run.
    struct Shared {
        /// Echoes received, all connections.
        echoes: AtomicU64,
        stop: AtomicBool,
        /// Everyone connected (and the coordinator): start.
        ready: tokio::sync::Barrier,
        /// At most this many handshakes at once.
        connecting: tokio::sync::Semaphore,
    }

    async fn wstether_connection(port: u16, shared: Arc<Shared>) {
        let permit = shared.connecting.acquire().await.unwrap();
        let options = wstether::Options::default().no_keepalive();
        let (conn, mut events, stream) =
            wstether::connect(&format!("ws://127.0.0.1:{port}/"), options)
                .await
                .unwrap();
        drop(permit);
        shared.ready.wait().await;
        let frame = || wstether::Frame::Binary(message(0).into());
        for _ in 0..WINDOW {
            conn.send(stream, frame()).await.unwrap();
        }
        let mut in_flight = WINDOW;
        while in_flight > 0 {
            match events.recv().await {
                Some(wstether::Event::Frame { .. }) => {
                    shared.echoes.fetch_add(1, Ordering::Relaxed);
                    if shared.stop.load(Ordering::Relaxed) {
                        in_flight -= 1;
                    } else {
                        conn.send(stream, frame()).await.unwrap();
                    }
                }
                Some(_) => {}
                None => panic!("echo expected"),
            }
        }
        conn.shutdown();
        while events.recv().await.is_some() {}
    }

    async fn tungstenite_connection(port: u16, shared: Arc<Shared>) {
        let permit = shared.connecting.acquire().await.unwrap();
        let mut ws = tungstenite_connect(port).await;
        drop(permit);
        shared.ready.wait().await;
        let frame = || Message::Binary(Bytes::from(message(0)));
        for _ in 0..WINDOW {
            ws.send(frame()).await.unwrap();
        }
        let mut in_flight = WINDOW;
        while in_flight > 0 {
            match ws.next().await {
                Some(Ok(Message::Binary(_))) => {
                    shared.echoes.fetch_add(1, Ordering::Relaxed);
                    if shared.stop.load(Ordering::Relaxed) {
                        in_flight -= 1;
                    } else {
                        ws.send(frame()).await.unwrap();
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("echo expected, got {other:?}"),
            }
        }
        let _ = ws.close(None).await;
        while let Some(Ok(_)) = ws.next().await {}
    }

    struct Run {
        msgs_per_s: f64,
        cpu_us_per_msg: f64,
        server_cpu_us_per_msg: f64,
        /// Client CPU over the window, in cores (1.0 = one core busy).
        cpu_cores: f64,
        server_cpu_cores: f64,
    }

    fn one_run(
        runtime: &tokio::runtime::Runtime,
        client: &str,
        server: &EchoServer,
        sizes: &Sizes,
    ) -> Run {
        let n = sizes.connections;
        let shared = Arc::new(Shared {
            echoes: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            ready: tokio::sync::Barrier::new(n + 1),
            connecting: tokio::sync::Semaphore::new(100),
        });
        let port = server.port;
        runtime.block_on(async {
            let tasks: Vec<_> = (0..n)
                .map(|_| {
                    let shared = shared.clone();
                    match client {
                        "wstether" => tokio::spawn(wstether_connection(port, shared)),
                        "tokio-tungstenite" => tokio::spawn(tungstenite_connection(port, shared)),
                        _ => unreachable!(),
                    }
                })
                .collect();
            shared.ready.wait().await;
            tokio::time::sleep(sizes.many_warmup).await;
            let (echoes0, cpu0, server0, t0) = (
                shared.echoes.load(Ordering::Relaxed),
                process_cpu(),
                server.cpu(),
                Instant::now(),
            );
            tokio::time::sleep(sizes.many_measure).await;
            let (echoes1, cpu1, server1, t1) = (
                shared.echoes.load(Ordering::Relaxed),
                process_cpu(),
                server.cpu(),
                Instant::now(),
            );
            shared.stop.store(true, Ordering::Relaxed);
            for task in tasks {
                task.await.unwrap();
            }
            let messages = (echoes1 - echoes0).max(1) as f64;
            let elapsed = (t1 - t0).as_secs_f64();
            let cpu = (cpu1 - cpu0).as_secs_f64();
            let server_cpu = (server1 - server0).as_secs_f64();
            Run {
                msgs_per_s: messages / elapsed,
                cpu_us_per_msg: cpu * 1e6 / messages,
                server_cpu_us_per_msg: server_cpu * 1e6 / messages,
                cpu_cores: cpu / elapsed,
                server_cpu_cores: server_cpu / elapsed,
            }
        })
    }

    pub fn run(sizes: &Sizes, smoke: bool) {
        let clients = chosen(ALL, sizes);
        let limit = raise_open_files_limit();
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let connections = sizes.connections;
        // Each connection: one descriptor here, one in the server (another
        // process, the same limit); room for the rest.
        assert!(
            limit >= connections as u64 + 100,
            "open-files limit {limit} is below {connections} connections + 100"
        );
        let server = EchoServer::start(cores);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cores)
            .enable_all()
            .build()
            .unwrap();
        let mut runs: Vec<Vec<Run>> = clients.iter().map(|_| Vec::new()).collect();
        for _ in 0..sizes.runs {
            for (i, client) in clients.iter().enumerate() {
                runs[i].push(one_run(&runtime, client, &server, sizes));
            }
        }
        println!(
            "many: {connections} connections, {WINDOW} × 1 KiB in flight each, {} s after {} s warm-up, \
             {cores} client workers, median of {} runs (min–max); open-files limit {limit}",
            sizes.many_measure.as_secs_f64(),
            sizes.many_warmup.as_secs_f64(),
            sizes.runs
        );
        println!(
            "{:<20} {:>26} {:>22} {:>12} {:>22} {:>12}",
            "client", "msg/s", "client CPU µs/msg", "cores", "server CPU µs/msg", "cores"
        );
        let mut entries = Vec::new();
        for (client, runs) in clients.iter().zip(&runs) {
            let field = |f: fn(&Run) -> f64| runs.iter().map(f).collect::<Vec<f64>>();
            let (rate, cpu, server_cpu, cores_used, server_cores) = (
                field(|r| r.msgs_per_s),
                field(|r| r.cpu_us_per_msg),
                field(|r| r.server_cpu_us_per_msg),
                field(|r| r.cpu_cores),
                field(|r| r.server_cpu_cores),
            );
            let cell = |v: &[f64], d: usize| {
                let (lo, hi) = min_max(v);
                format!("{:.d$} ({:.d$}–{:.d$})", median(v), lo, hi)
            };
            println!(
                "{:<20} {:>26} {:>22} {:>12.2} {:>22} {:>12.2}",
                client,
                cell(&rate, 0),
                cell(&cpu, 2),
                median(&cores_used),
                cell(&server_cpu, 2),
                median(&server_cores)
            );
            entries.push(format!(
                "  {{\"client\":\"{client}\",\"connections\":{connections},\"window\":{WINDOW},\"size\":{SIZE},\
                 \"client_workers\":{cores},\"msgs_per_s\":{:.0},\"cpu_us_per_msg\":{:.3},\"server_cpu_us_per_msg\":{:.3},\
                 \"cpu_cores\":{:.3},\"server_cpu_cores\":{:.3},\"runs\":{},\"measure_s\":{},\
                 \"msgs_per_s_samples\":{},\"cpu_us_per_msg_samples\":{},\"server_cpu_us_per_msg_samples\":{}}}",
                median(&rate),
                median(&cpu),
                median(&server_cpu),
                median(&cores_used),
                median(&server_cores),
                runs.len(),
                sizes.many_measure.as_secs_f64(),
                json_list(&rate, 0),
                json_list(&cpu, 3),
                json_list(&server_cpu, 3),
            ));
        }
        write_json("many", smoke, &entries);
    }
}
