//! Many Websockets on one HTTP/2 connection (`Options::share_http2`)
//! against one connection each, for N Websockets to one loopback server.
//!
//! ```text
//! cargo bench --bench h2many                    # N = 1000, K = 100, 3 runs
//! cargo bench --bench h2many -- --smoke         # N = 50, K = 10, 1 run (CI)
//! cargo bench --bench h2many -- --n 1000 --k 100 --runs 5
//! ```
//!
//! Three rows, all with `auto_upgrade` and the same retry policy:
//!
//! - **shared**: `http2(Http2::Prefer)` + `share_http2(true)`: one HTTP/2
//!   connection carries the N Websockets as streams (RFC 8441);
//! - **h2**: `http2(Http2::Prefer)` alone: N HTTP/2 connections;
//! - **h1**: HTTP/1.1: N TCP connections.
//!
//! The server is the `wstether-testkit` binary (`--http2 on`: HTTP/2 with
//! prior knowledge beside HTTP/1.1) in its own process. Each row of each
//! run is a fresh worker process (this binary re-run with `--worker`), and
//! the rows are interleaved (shared, h2, h1, shared, ...), so that a
//! neighbour's load on the machine falls on every row alike. A worker:
//!
//! 1. **open**: opens the N connections at once and upgrades each; the
//!    time from the first `open` to the last `Event::Upgraded`, and the TCP
//!    connections the server accepted for them (its control stats);
//! 2. **memory**: 500 ms later, the client's ΔVmRSS / N since before the
//!    first open;
//! 3. **storm**: the server restarts (`/_control/restart?down_ms=1000`);
//!    every Websocket goes down and reconnects by its policy (100 ms
//!    initial delay, 2 s at most, the default jitter): the time from the
//!    restart request until all N are upgraded again, and the TCP
//!    connections the server accepted meanwhile;
//! 4. **echo, in lockstep**: every Websocket (one task each) sends K
//!    16-byte text messages, each once the last one's echo is back (N in
//!    flight at most); N·K echoes / the time from the first send to the
//!    last echo;
//! 5. **echo, in a burst**: every Websocket sends its K messages at once
//!    (N·K in flight). Last, because it may lose the connection: h2's
//!    budget of small DATA frames held unread is per connection
//!    (`tests/http2_small_frames.rs`); a lost connection is reported as
//!    such, not as a rate.
//!
//! Prints each run, then the median (min–max) of each figure per row and
//! its ratio to the best row; writes `target/bench-results/h2many.json`
//! (`h2many-smoke.json` with `--smoke`).

// Native only (a tokio runtime, the testkit server): the wasm32
// `--all-targets` check sees an empty crate (`no_main`: none to find).
#![cfg_attr(browser, no_main)]
#![cfg(native)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Notify};
use wstether::{Connection, Event, Events, Frame, Http2, Options, Retry, StreamRef};

/// Set once the bench has re-run itself with the open-files limit raised.
const NOFILE_GUARD: &str = "WSTETHER_H2MANY_NOFILE_RAISED";
/// The echoed message (16 bytes).
const MESSAGE: &str = "0123456789abcdef";
/// How long the server stays down in the storm.
const DOWN_MS: u64 = 1000;

/// A row: how the N Websockets reach the server.
#[derive(Clone, Copy, PartialEq)]
enum Row {
    Shared,
    H2,
    H1,
}

const ROWS: [Row; 3] = [Row::Shared, Row::H2, Row::H1];

impl Row {
    fn name(self) -> &'static str {
        match self {
            Row::Shared => "shared",
            Row::H2 => "h2",
            Row::H1 => "h1",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Row::Shared => "(a) HTTP/2, shared: 1 connection",
            Row::H2 => "(b) HTTP/2, not shared: N connections",
            Row::H1 => "(c) HTTP/1.1: N connections",
        }
    }

    fn parse(name: &str) -> Row {
        ROWS.into_iter()
            .find(|row| row.name() == name)
            .unwrap_or_else(|| panic!("unknown row {name:?}"))
    }

    fn options(self) -> Options {
        let retry = Retry::default()
            .initial_delay(Duration::from_millis(100))
            .max_delay(Duration::from_secs(2));
        let options = Options::default().retry(retry).auto_upgrade(true);
        match self {
            Row::Shared => options.http2(Http2::Prefer).share_http2(true),
            Row::H2 => options.http2(Http2::Prefer),
            Row::H1 => options.http2(Http2::Off),
        }
    }

    fn http_version(self) -> http::Version {
        match self {
            Row::H1 => http::Version::HTTP_11,
            _ => http::Version::HTTP_2,
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    raise_open_files_limit(&args);
    if let Some(i) = args.iter().position(|a| a == "--worker") {
        return worker(&args[i + 1..]);
    }
    let smoke = args.iter().any(|a| a == "--smoke");
    let value = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map_or(default, |v| v.parse().expect(name))
    };
    let (n, k, runs) = if smoke {
        (value("--n", 50), value("--k", 10), value("--runs", 1))
    } else {
        (value("--n", 1000), value("--k", 100), value("--runs", 3))
    };
    let (soft, hard) = open_files_limit();
    println!("open files limit: {soft} (hard {hard}); N = {n} Websockets, K = {k} messages each, {runs} run(s)");
    let server = Testkit::start();
    println!("testkit server (--http2 on): {}", server.url);

    let mut results: Vec<(Row, Measure)> = Vec::new();
    for run in 1..=runs {
        for row in ROWS {
            let m = run_worker(&server, row, n, k);
            let rate =
                |ms| msgs_per_s(ms, n, k).map_or("lost".to_owned(), |r| format!("{r:.0} msgs/s"));
            println!(
                "run {run} {:<6}: open {:.0} ms ({} TCP), {:.2} KiB/WS, storm {:.0} ms ({} TCP), \
                 echo lockstep {}, burst {} ({} echoes, {} downs)",
                row.name(),
                m.open_ms,
                m.open_tcp,
                m.kib_per_ws(n),
                m.storm_ms,
                m.storm_tcp,
                rate(m.lockstep_ms),
                rate(m.burst_ms),
                m.burst_echoes,
                m.downs
            );
            results.push((row, m));
        }
    }
    server.stop();
    summary(&results, n, k, runs, smoke);
}

// ---- one worker per row and run ----------------------------------------------

/// What a worker measured.
struct Measure {
    rss_before_kib: u64,
    rss_after_kib: u64,
    open_ms: f64,
    /// TCP connections the server accepted for the N upgrades.
    open_tcp: u64,
    storm_ms: f64,
    /// TCP connections the server accepted for the reconnects.
    storm_tcp: u64,
    /// `None`: a connection went down before every echo was back.
    lockstep_ms: Option<f64>,
    burst_ms: Option<f64>,
    /// Echoes received in the burst (all N·K unless it was lost).
    burst_echoes: u64,
    /// `Down` events during the echo phases.
    downs: u64,
}

impl Measure {
    fn kib_per_ws(&self, n: usize) -> f64 {
        (self.rss_after_kib as f64 - self.rss_before_kib as f64) / n as f64
    }
}

fn msgs_per_s(echo_ms: Option<f64>, n: usize, k: usize) -> Option<f64> {
    echo_ms.map(|ms| (n * k) as f64 / (ms / 1e3))
}

fn run_worker(server: &Testkit, row: Row, n: usize, k: usize) -> Measure {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--worker", row.name(), &server.url, &server.control.addr])
        .args([n, k].map(|v| v.to_string()))
        .stderr(Stdio::inherit())
        .output()
        .expect("start the worker");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{} worker failed: {text}", row.name());
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("worker: {text:?}"));
    let f: Vec<f64> = line.split(' ').map(|v| v.parse().unwrap()).collect();
    // The worker's connections are gone before the next row starts (the
    // worker has exited: the kernel closed its sockets).
    if let Err(live) = server.control.wait_live(0, Duration::from_secs(10)) {
        eprintln!(
            "{} worker: the server still holds {live} connection(s) 10 s after it exited",
            row.name()
        );
    }
    let lost = |ms: f64| (ms >= 0.0).then_some(ms);
    Measure {
        rss_before_kib: f[0] as u64,
        rss_after_kib: f[1] as u64,
        open_ms: f[2],
        open_tcp: f[3] as u64,
        storm_ms: f[4],
        storm_tcp: f[5] as u64,
        lockstep_ms: lost(f[6]),
        burst_ms: lost(f[7]),
        burst_echoes: f[8] as u64,
        downs: f[9] as u64,
    }
}

/// What a connection's watcher reports to the worker.
enum Seen {
    Upgraded(usize, StreamRef, Instant),
    Ended,
}

/// `--worker ROW URL CONTROL_ADDR N K`: prints `RESULT rss_before_kib
/// rss_after_kib open_ms open_tcp echo_ms storm_ms storm_tcp`.
fn worker(args: &[String]) {
    let row = Row::parse(&args[0]);
    let url = args[1].clone();
    let control = Control {
        addr: args[2].clone(),
    };
    let n: usize = args[3].parse().unwrap();
    let k: usize = args[4].parse().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let rss_before = rss_kib();
        let accepted_before = blocking(&control, Control::accepted).await;
        let echoes = Arc::new(Echoes::new(n));
        let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();

        // 1. Open: all N at once.
        let started = Instant::now();
        let mut connections = Vec::with_capacity(n);
        let mut watchers = Vec::with_capacity(n);
        for index in 0..n {
            let (conn, events) = Connection::open(&url, row.options()).unwrap();
            conn.ws_upgrade("/").unwrap();
            watchers.push(tokio::spawn(watch(
                index,
                row,
                events,
                echoes.clone(),
                seen_tx.clone(),
            )));
            connections.push(conn);
        }
        drop(seen_tx);
        let (_, last) = wait_upgraded(&mut seen_rx, n).await;
        let open_ms = ms(last.duration_since(started));
        // The stats request itself is one more accepted connection.
        let open_tcp = blocking(&control, Control::accepted).await - accepted_before - 1;

        // 2. Memory, once the upgrades have settled.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rss_after = rss_kib();

        // 3. Storm: the server restarts; all N reconnect.
        let accepted_before = blocking(&control, Control::accepted).await;
        let restart = Instant::now();
        blocking(&control, |c| {
            c.get(&format!("/_control/restart?down_ms={DOWN_MS}"));
        })
        .await;
        let (streams, last) = wait_upgraded(&mut seen_rx, n).await;
        let storm_ms = ms(last.duration_since(restart));
        // Minus the restart request and this stats request.
        let storm_tcp = blocking(&control, Control::accepted).await - accepted_before - 2;
        let downs_before_echo = echoes.downs.load(Ordering::SeqCst);
        echoes.report_down.store(true, Ordering::SeqCst);

        // 4. Echo in lockstep: each Websocket sends its next message once
        // the last one's echo is back (N messages in flight at most).
        echoes.expect(n * k);
        let started = Instant::now();
        for (index, (conn, stream)) in connections.iter().zip(&streams).enumerate() {
            let (conn, stream, echoes) = (conn.clone(), *stream, echoes.clone());
            tokio::spawn(async move {
                for _ in 0..k {
                    if conn.send(stream, Frame::text(MESSAGE)).await.is_err() {
                        return;
                    }
                    match echoes.back[index].acquire().await {
                        Ok(permit) => permit.forget(),
                        Err(_) => return,
                    }
                }
            });
        }
        let lockstep_ms = echo_phase(&echoes, started, downs_before_echo, n * k).await;

        // 5. Echo in a burst: every Websocket sends its K messages at once
        // (K·N in flight). Last, since it may lose the connection.
        echoes.expect(n * k);
        let started = Instant::now();
        for (conn, stream) in connections.iter().zip(&streams) {
            let (conn, stream) = (conn.clone(), *stream);
            tokio::spawn(async move {
                for _ in 0..k {
                    if conn.send(stream, Frame::text(MESSAGE)).await.is_err() {
                        return;
                    }
                }
            });
        }
        let burst_ms = echo_phase(&echoes, started, downs_before_echo, n * k).await;
        let burst_echoes = echoes.count();
        echoes.report_down.store(false, Ordering::SeqCst);
        let downs = echoes.downs.load(Ordering::SeqCst) - downs_before_echo;

        println!(
            "RESULT {rss_before} {rss_after} {open_ms:.1} {open_tcp} {storm_ms:.1} {storm_tcp} \
             {lockstep_ms:.1} {burst_ms:.1} {burst_echoes} {downs}"
        );
        std::io::stdout().flush().unwrap();
        for conn in &connections {
            conn.shutdown();
        }
        drop(connections);
        for watcher in watchers {
            watcher.await.unwrap();
        }
    });
}

/// Waits for `expected` echoes; their time in ms, or -1 if a connection
/// went down first (or after 60 s).
async fn echo_phase(
    echoes: &Echoes,
    started: Instant,
    downs_before: usize,
    expected: usize,
) -> f64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if echoes.count() >= expected {
            return ms(started.elapsed());
        }
        if echoes.downs.load(Ordering::SeqCst) > downs_before {
            return -1.0;
        }
        if tokio::time::timeout_at(deadline, echoes.done.notified())
            .await
            .is_err()
        {
            eprintln!("{} of {expected} echoes after 60 s", echoes.count());
            return -1.0;
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Waits until each of the N Websockets has reported an upgrade; returns
/// their streams (by index) and when the last came.
async fn wait_upgraded(
    seen: &mut mpsc::UnboundedReceiver<Seen>,
    n: usize,
) -> (Vec<StreamRef>, Instant) {
    let mut streams: Vec<Option<StreamRef>> = vec![None; n];
    let mut count = 0;
    let mut last = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while count < n {
        let got = tokio::time::timeout_at(deadline, seen.recv())
            .await
            .unwrap_or_else(|_| panic!("only {count} of {n} upgraded after 60 s"));
        match got {
            Some(Seen::Upgraded(index, stream, at)) => {
                if streams[index].replace(stream).is_none() {
                    count += 1;
                }
                last = last.max(at);
            }
            Some(Seen::Ended) | None => panic!("a connection ended"),
        }
    }
    (streams.into_iter().map(Option::unwrap).collect(), last)
}

/// Echoes received, and a wake-up when the expected count is reached or
/// a connection goes down.
struct Echoes {
    /// A permit per echo, per Websocket (the lockstep's).
    back: Vec<tokio::sync::Semaphore>,
    count: AtomicUsize,
    target: AtomicUsize,
    done: Notify,
    /// `Down` events of every connection.
    downs: AtomicUsize,
    /// Set when the echo phases start: the first `Down` after is printed.
    report_down: std::sync::atomic::AtomicBool,
}

impl Echoes {
    fn new(n: usize) -> Echoes {
        Echoes {
            back: (0..n).map(|_| tokio::sync::Semaphore::new(0)).collect(),
            count: AtomicUsize::new(0),
            target: AtomicUsize::new(0),
            done: Notify::new(),
            downs: AtomicUsize::new(0),
            report_down: Default::default(),
        }
    }

    fn expect(&self, target: usize) {
        self.count.store(0, Ordering::SeqCst);
        self.target.store(target, Ordering::SeqCst);
    }

    fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    fn one(&self) {
        if self.count.fetch_add(1, Ordering::SeqCst) + 1 == self.target.load(Ordering::SeqCst) {
            // `notify_one` keeps the permit if nobody waits yet.
            self.done.notify_one();
        }
    }
}

/// Reads a connection's events to the end: its upgrades to the worker,
/// its echoes to the counter.
async fn watch(
    index: usize,
    row: Row,
    mut events: Events,
    echoes: Arc<Echoes>,
    seen: mpsc::UnboundedSender<Seen>,
) {
    while let Some(event) = events.recv().await {
        match event {
            Event::Upgraded { stream, .. } => {
                let now = Instant::now();
                assert_eq!(event.http_version(), Some(row.http_version()));
                let _ = seen.send(Seen::Upgraded(index, stream, now));
            }
            Event::Frame { .. } => {
                echoes.back[index].add_permits(1);
                echoes.one();
            }
            Event::Down {
                ref reason,
                ref unsent,
                ..
            } => {
                echoes.downs.fetch_add(1, Ordering::SeqCst);
                if echoes.report_down.swap(false, Ordering::SeqCst) {
                    eprintln!(
                        "{} worker: Websocket {index} Down during the echoes: {reason:?}, {} unsent",
                        row.name(),
                        unsent.len()
                    );
                }
                echoes.done.notify_one();
            }
            Event::UpgradeFailed { .. } => panic!("upgrade failed: {event:?}"),
            _ => {}
        }
    }
    let _ = seen.send(Seen::Ended);
}

// ---- the summary ---------------------------------------------------------------

/// A figure of every row: its name, how to read it off a run (`None`:
/// lost), and whether more is better.
struct Figure {
    name: &'static str,
    unit: &'static str,
    get: fn(&Measure, usize, usize) -> Option<f64>,
    more_is_better: bool,
}

const FIGURES: [Figure; 7] = [
    Figure {
        name: "client memory per Websocket",
        unit: "KiB",
        get: |m, n, _| Some(m.kib_per_ws(n)),
        more_is_better: false,
    },
    Figure {
        name: "open all N",
        unit: "ms",
        get: |m, _, _| Some(m.open_ms),
        more_is_better: false,
    },
    Figure {
        name: "TCP connections for the upgrades",
        unit: "",
        get: |m, _, _| Some(m.open_tcp as f64),
        more_is_better: false,
    },
    Figure {
        name: "storm: all N upgraded again",
        unit: "ms",
        get: |m, _, _| Some(m.storm_ms),
        more_is_better: false,
    },
    Figure {
        name: "storm: TCP connections accepted",
        unit: "",
        get: |m, _, _| Some(m.storm_tcp as f64),
        more_is_better: false,
    },
    Figure {
        name: "echoes, 1 in flight per Websocket",
        unit: "msgs/s",
        get: |m, n, k| msgs_per_s(m.lockstep_ms, n, k),
        more_is_better: true,
    },
    Figure {
        name: "echoes, K in flight per Websocket",
        unit: "msgs/s",
        get: |m, n, k| msgs_per_s(m.burst_ms, n, k),
        more_is_better: true,
    },
];

/// Median, min and max.
fn spread(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    (
        values[values.len() / 2],
        values[0],
        values[values.len() - 1],
    )
}

fn number(v: f64) -> String {
    if v >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A row's figure over its runs: median, min and max of the runs that
/// were not lost, and how many were lost.
struct Cell {
    spread: Option<(f64, f64, f64)>,
    lost: usize,
}

fn summary(results: &[(Row, Measure)], n: usize, k: usize, runs: usize, smoke: bool) {
    println!();
    println!(
        "N = {n} Websockets, K = {k} messages each; median (min–max) of {runs} run(s); \
         ×: the median against the best row's"
    );
    print!("| figure |");
    for row in ROWS {
        print!(" {} |", row.label());
    }
    println!();
    println!("|---|---:|---:|---:|");
    let mut json = Vec::new();
    for figure in &FIGURES {
        let cells: Vec<Cell> = ROWS
            .iter()
            .map(|&row| {
                let values: Vec<Option<f64>> = results
                    .iter()
                    .filter(|(r, _)| *r == row)
                    .map(|(_, m)| (figure.get)(m, n, k))
                    .collect();
                let kept: Vec<f64> = values.iter().flatten().copied().collect();
                Cell {
                    lost: values.len() - kept.len(),
                    spread: (!kept.is_empty()).then(|| spread(kept)),
                }
            })
            .collect();
        let best = cells
            .iter()
            .filter_map(|c| c.spread.map(|s| s.0))
            .reduce(|a, b| {
                if figure.more_is_better == (a > b) {
                    a
                } else {
                    b
                }
            });
        let unit = if figure.unit.is_empty() {
            String::new()
        } else {
            format!(" ({})", figure.unit)
        };
        print!("| {}{unit} |", figure.name);
        let mut row_json = Vec::new();
        for (row, cell) in ROWS.iter().zip(&cells) {
            let lost = if cell.lost > 0 {
                format!(" lost in {} of {runs} run(s)", cell.lost)
            } else {
                String::new()
            };
            let Some((median, min, max)) = cell.spread else {
                print!(" connection{lost} |");
                row_json.push(format!("\"{}\":{{\"lost\":{}}}", row.name(), cell.lost));
                continue;
            };
            let ratio = match best {
                Some(best) if best != 0.0 => median / best,
                _ if median == 0.0 => 1.0,
                _ => f64::INFINITY,
            };
            let range = if runs - cell.lost > 1 {
                format!(" ({}–{})", number(min), number(max))
            } else {
                String::new()
            };
            print!(" {}{range} ×{ratio:.2}{lost} |", number(median));
            row_json.push(format!(
                "\"{}\":{{\"median\":{median:.2},\"min\":{min:.2},\"max\":{max:.2},\"lost\":{}}}",
                row.name(),
                cell.lost
            ));
        }
        println!();
        json.push(format!("\"{}\":{{{}}}", figure.name, row_json.join(",")));
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-results");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(if smoke {
        "h2many-smoke.json"
    } else {
        "h2many.json"
    });
    std::fs::write(
        &path,
        format!(
            "{{\"n\":{n},\"k\":{k},\"runs\":{runs},{}}}\n",
            json.join(",")
        ),
    )
    .unwrap();
    println!("results: {}", path.display());
}

// ---- /proc and the open-files limit ----------------------------------------------

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// The soft and hard limits on open files, from `/proc/self/limits`.
fn open_files_limit() -> (String, String) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap_or("");
    let mut fields = line["Max open files".len().min(line.len())..].split_whitespace();
    let soft = fields.next().unwrap_or("?").to_owned();
    let hard = fields.next().unwrap_or("?").to_owned();
    (soft, hard)
}

/// Re-runs this process under `sh -c 'ulimit -n <hard>'` once, if the soft
/// limit on open files is below the hard one (as benches/scale.rs does).
fn raise_open_files_limit(args: &[String]) {
    let (soft, hard) = open_files_limit();
    if soft == hard || std::env::var_os(NOFILE_GUARD).is_some() {
        return;
    }
    let error = Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@""#)
        .arg(std::env::current_exe().unwrap())
        .args(&args[1..])
        .env(NOFILE_GUARD, "1")
        .exec();
    eprintln!("h2many: cannot re-run under sh to raise the open-files limit: {error}");
}

// ---- the testkit server ----------------------------------------------------------

struct Testkit {
    child: Child,
    /// Held open: the server stops when its stdin closes.
    stdin: Option<ChildStdin>,
    url: String,
    control: Control,
}

/// The server's HTTP control API (HTTP/1.1 on the same port).
#[derive(Clone)]
struct Control {
    /// `host:port`.
    addr: String,
}

impl Testkit {
    fn start() -> Testkit {
        let token = format!("h2many-{}", std::process::id());
        // Through sh, to raise the server's own open-files limit as well.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" --port 0 --http2 on --token "$1""#)
            .arg(wstether_testkit::built_binary().expect("the testkit binary"))
            .arg(&token)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start wstether-testkit");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("LISTENING ")
            .unwrap_or_else(|| panic!("expected LISTENING, got {line:?}"))
            .to_owned();
        let control = Control {
            addr: url.trim_start_matches("ws://").to_owned(),
        };
        let stats = control.get("/_control/stats");
        assert!(
            stats.contains(&format!("\"token\":\"{token}\"")),
            "not our server: {stats}"
        );
        Testkit {
            stdin: child.stdin.take(),
            child,
            url,
            control,
        }
    }

    fn stop(mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

impl Control {
    /// A GET on the control API; returns the body.
    fn get(&self, path: &str) -> String {
        let mut tcp = TcpStream::connect(&self.addr).expect("connect to the control API");
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            tcp,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        )
        .unwrap();
        let mut response = String::new();
        tcp.read_to_string(&mut response).unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{path}: {response}");
        response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default()
    }

    /// A number field of `/_control/stats`.
    fn stat(&self, field: &str) -> u64 {
        let stats = self.get("/_control/stats");
        let key = format!("\"{field}\":");
        let at = stats
            .find(&key)
            .unwrap_or_else(|| panic!("{field} in {stats}"))
            + key.len();
        let digits: String = stats[at..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        digits.parse().unwrap()
    }

    /// TCP connections accepted so far, this stats request included.
    fn accepted(&self) -> u64 {
        self.stat("accepted")
    }

    /// Waits until the server holds exactly `n` connections (besides the
    /// stats request's own); how many it holds if not within `within`.
    fn wait_live(&self, n: u64, within: Duration) -> Result<(), u64> {
        let deadline = Instant::now() + within;
        loop {
            let live = self.stat("live") - 1;
            if live == n {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(live);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Runs a blocking call on the control API off the runtime's workers.
async fn blocking<R: Send + 'static>(
    control: &Control,
    call: impl FnOnce(&Control) -> R + Send + 'static,
) -> R {
    let control = control.clone();
    tokio::task::spawn_blocking(move || call(&control))
        .await
        .unwrap()
}
