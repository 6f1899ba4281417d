//! Scale benchmark: many wstether connections in one process.
//!
//! ```text
//! cargo bench --bench scale              # full run (a few minutes)
//! cargo bench --bench scale -- --smoke   # N = 200 only, for CI
//! cargo bench --bench scale -- --idle 10000 5   # the idle row alone, 5 runs
//! ```
//!
//! The server is the `wstether-testkit` binary in its own process. Two
//! measurements:
//!
//! - **idle**: N connections upgraded and left idle (keepalive 10 s / 5 s):
//!   client RSS per connection (ΔVmRSS / N) and CPU over an idle window, as
//!   a share of one core. Each N runs in a fresh process (this binary
//!   re-run with `--idle-worker`), so the allocator's leftovers from one N
//!   do not hide memory of the next. Also measured without keepalive.
//! - **storm**: N connections up, the server restarted with 1 s of
//!   downtime; every connection goes down and reconnects by its retry policy
//!   (`initial_delay` 100 ms, `max_delay` 2 s, `auto_upgrade`). Reconnects
//!   per 100 ms and the time until all are upgraded again, with the default
//!   jitter and with none.
//!
//! - **after a burst** (`--after-burst`, also part of the full run and of
//!   `--smoke`): memory per connection while N connections each receive a
//!   burst from the server, and 5 s after it, against idle connections of
//!   the same process (see [`burst`]).
//!
//! Results: a table on stdout and `target/bench-results/scale.json`
//! (`scale-smoke.json` with `--smoke`); the after-burst scenario writes
//! `after-burst.json` (`after-burst-smoke.json`).

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

use wstether::{Connection, Event, Events, Keepalive, Options, Retry};

/// Set once the bench has re-run itself with the open-files limit raised.
const NOFILE_GUARD: &str = "WSTETHER_SCALE_NOFILE_RAISED";
/// Connections opened at once, before waiting for them to upgrade.
const OPEN_BATCH: usize = 500;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    raise_open_files_limit(&args);
    if let Some(i) = args.iter().position(|a| a == "--idle-worker") {
        return idle_worker(&args[i + 1..]);
    }
    if let Some(i) = args.iter().position(|a| a == "--after-burst-worker") {
        return burst::worker(&args[i + 1..]);
    }
    if args.iter().any(|a| a == "--after-burst") {
        let smoke = args.iter().any(|a| a == "--smoke");
        let server = Testkit::start();
        burst::run(&server, smoke);
        server.stop();
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--heap-worker") {
        return heap::worker(&args[i + 1..]);
    }
    if let Some(i) = args.iter().position(|a| a == "--heap-profile") {
        let n = args.get(i + 1).and_then(|n| n.parse().ok()).unwrap_or(1000);
        return heap::run(n);
    }
    // `--deflate-idle [N]`: idle RSS per connection with permessage-deflate.
    if let Some(i) = args.iter().position(|a| a == "--deflate-idle-worker") {
        return deflate_idle::worker(&args[i + 1..]);
    }
    if let Some(i) = args.iter().position(|a| a == "--deflate-idle") {
        let n = args.get(i + 1).and_then(|n| n.parse().ok()).unwrap_or(1000);
        return deflate_idle::run(n);
    }
    // `--idle N [RUNS]`: the idle row alone (keepalive on), RUNS fresh
    // processes (default 5): the median and the spread of KiB/conn.
    if let Some(i) = args.iter().position(|a| a == "--idle") {
        let n = args
            .get(i + 1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(10_000);
        let runs = args.get(i + 2).and_then(|n| n.parse().ok()).unwrap_or(5);
        return idle_only(n, runs);
    }
    let smoke = args.iter().any(|a| a == "--smoke");
    let (idle_ns, storm_n, settle, window) = if smoke {
        (
            vec![200],
            200,
            Duration::from_millis(500),
            Duration::from_secs(1),
        )
    } else {
        (
            vec![1000, 5000, 10_000],
            2000,
            Duration::from_secs(3),
            Duration::from_secs(10),
        )
    };
    let clk_tck = clock_ticks_per_second();
    let (soft, hard) = open_files_limit();
    println!("open files limit: {soft} (hard {hard}); clock ticks/s: {clk_tck}");
    let server = Testkit::start();
    println!("testkit server: {}", server.url);

    let mut idle = Vec::new();
    let mut idle_no_keepalive = Vec::new();
    for &n in &idle_ns {
        // Smoke: keepalive on only, to stay within a few seconds.
        let variants: &[bool] = if smoke { &[true] } else { &[true, false] };
        for &keepalive in variants {
            let row = run_idle_worker(&server, n, keepalive, settle, window, clk_tck);
            println!(
                "idle n={:<6} keepalive={:<5} RSS {:>8} -> {:>8} KiB: {:>7.1} KiB/conn, idle CPU {:>5.2} % of a core",
                row.n,
                keepalive,
                row.rss_before_kib,
                row.rss_after_kib,
                row.kib_per_conn(),
                row.cpu_percent
            );
            if keepalive {
                idle.push(row);
            } else {
                idle_no_keepalive.push(row);
            }
        }
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let with_jitter = runtime.block_on(storm(&server, storm_n, 0.5));
    print_storm("storm, default jitter (0.5)", &with_jitter);
    let without_jitter = runtime.block_on(storm(&server, storm_n, 0.0));
    print_storm("storm, no jitter", &without_jitter);
    drop(runtime);

    println!();
    println!("| N | KiB/conn (keepalive) | idle CPU % | KiB/conn (no keepalive) | idle CPU % |");
    println!("|---|---|---|---|---|");
    for on in &idle {
        let off = idle_no_keepalive
            .iter()
            .find(|off| off.n == on.n)
            .map_or("- | -".to_owned(), |off| {
                format!("{:.1} | {:.2}", off.kib_per_conn(), off.cpu_percent)
            });
        println!(
            "| {} | {:.1} | {:.2} | {off} |",
            on.n,
            on.kib_per_conn(),
            on.cpu_percent
        );
    }
    println!();
    println!("| storm N={storm_n} | all back (ms) | failed attempts | peak reconnects / 100 ms |");
    println!("|---|---|---|---|");
    for (name, s) in [("jitter 0.5", &with_jitter), ("jitter 0", &without_jitter)] {
        println!(
            "| {name} | {} | {} | {} |",
            s.all_back_ms,
            s.failed_attempts,
            s.reconnects.iter().max().unwrap_or(&0)
        );
    }
    write_json(
        smoke,
        &idle,
        &idle_no_keepalive,
        &with_jitter,
        &without_jitter,
    );
    burst::run(&server, smoke);
    server.stop();
    if smoke {
        // Idle memory with permessage-deflate builds and runs too.
        deflate_idle::run(50);
    }
}

// ---- the open-files limit -----------------------------------------------

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
/// limit on open files is below the hard one (without libc: `exec` only).
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
    eprintln!("scale: cannot re-run under sh to raise the open-files limit: {error}");
}

fn clock_ticks_per_second() -> u64 {
    Command::new("sh")
        .args(["-c", "getconf CLK_TCK"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100)
}

// ---- /proc -----------------------------------------------------------------

fn rss_kib() -> u64 {
    status_kib("VmRSS:")
}

/// A KiB field of `/proc/self/status`, e.g. `VmRSS:` or `VmHWM:`.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}

/// User + system CPU time of this process, in clock ticks.
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which may hold spaces), from field 3.
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields[14 - 3].parse().unwrap();
    let stime: u64 = fields[15 - 3].parse().unwrap();
    utime + stime
}

// ---- the testkit server ------------------------------------------------------

struct Testkit {
    child: Child,
    /// Held open: the server stops when its stdin closes.
    stdin: Option<ChildStdin>,
    url: String,
    control: Control,
}

/// The server's HTTP control API.
#[derive(Clone)]
struct Control {
    /// `host:port`.
    addr: String,
}

impl Testkit {
    fn start() -> Testkit {
        let token = format!("scale-{}", std::process::id());
        // Through sh, to raise the server's own open-files limit as well.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" --port 0 --token "$1""#)
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

    /// The server's live connections, not counting the stats request itself.
    fn live(&self) -> usize {
        let stats = self.get("/_control/stats");
        let at = stats.find("\"live\":").expect("live in stats") + "\"live\":".len();
        let digits: String = stats[at..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        digits.parse::<usize>().unwrap() - 1
    }

    /// Waits until the server holds exactly `n` connections.
    fn wait_live(&self, n: usize, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let live = self.live();
            if live == n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "server holds {live} connections, expected {n}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

// ---- idle connections -----------------------------------------------------

struct IdleRow {
    n: usize,
    rss_before_kib: u64,
    rss_after_kib: u64,
    cpu_percent: f64,
}

impl IdleRow {
    fn kib_per_conn(&self) -> f64 {
        (self.rss_after_kib as f64 - self.rss_before_kib as f64) / self.n as f64
    }
}

fn keepalive_options(keepalive: bool) -> Options {
    if keepalive {
        Options::default()
            .keepalive(Keepalive::every(Duration::from_secs(10)).timeout(Duration::from_secs(5)))
    } else {
        Options::default().no_keepalive()
    }
}

/// Runs one idle measurement in a fresh process and checks, while its
/// connections are up, that the server holds all of them.
fn run_idle_worker(
    server: &Testkit,
    n: usize,
    keepalive: bool,
    settle: Duration,
    window: Duration,
    clk_tck: u64,
) -> IdleRow {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg("--idle-worker")
        .arg(&server.url)
        .arg(n.to_string())
        .arg(keepalive.to_string())
        .arg(settle.as_millis().to_string())
        .arg(window.as_millis().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the idle worker");
    let mut to_worker = child.stdin.take().unwrap();
    let mut from_worker = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    from_worker.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "UP", "idle worker: {line:?}");
    // Every connection is upgraded: the server must hold them all.
    server.control.wait_live(n, Duration::from_secs(10));
    writeln!(to_worker, "GO").unwrap();
    line.clear();
    from_worker.read_line(&mut line).unwrap();
    let fields: Vec<u64> = line
        .trim()
        .strip_prefix("RESULT ")
        .unwrap_or_else(|| panic!("idle worker: {line:?}"))
        .split(' ')
        .map(|f| f.parse().unwrap())
        .collect();
    let [rss_before_kib, rss_after_kib, ticks, window_ms] = fields[..] else {
        panic!("idle worker: {line:?}")
    };
    drop(to_worker);
    assert!(child.wait().unwrap().success(), "idle worker failed");
    server.control.wait_live(0, Duration::from_secs(30));
    IdleRow {
        n,
        rss_before_kib,
        rss_after_kib,
        cpu_percent: ticks as f64 / clk_tck as f64 / (window_ms as f64 / 1e3) * 100.0,
    }
}

/// `--idle-worker URL N KEEPALIVE SETTLE_MS WINDOW_MS`: opens N connections,
/// prints `UP`, waits for a line on stdin, settles, measures, prints
/// `RESULT rss_before_kib rss_after_kib cpu_ticks window_ms`, closes all.
fn idle_worker(args: &[String]) {
    let url = args[0].clone();
    let n: usize = args[1].parse().unwrap();
    let keepalive: bool = args[2].parse().unwrap();
    let settle = Duration::from_millis(args[3].parse().unwrap());
    let window = Duration::from_millis(args[4].parse().unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let rss_before = rss_kib();
        let upgraded = Arc::new(AtomicUsize::new(0));
        let mut connections = Vec::with_capacity(n);
        let mut drains = Vec::with_capacity(n);
        let started = Instant::now();
        while connections.len() < n {
            let batch = OPEN_BATCH.min(n - connections.len());
            for _ in 0..batch {
                let (conn, events) = Connection::open(&url, keepalive_options(keepalive)).unwrap();
                conn.ws_upgrade("/").unwrap();
                drains.push(tokio::spawn(count_upgrades(events, upgraded.clone())));
                connections.push(conn);
            }
            wait_count(&upgraded, connections.len(), Duration::from_secs(60)).await;
        }
        eprintln!(
            "idle worker: {n} connections upgraded in {:.2} s",
            started.elapsed().as_secs_f64()
        );
        println!("UP");
        let go = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).unwrap();
        });
        go.await.unwrap();
        tokio::time::sleep(settle).await;
        let rss_after = rss_kib();
        let cpu_before = cpu_ticks();
        let window_start = Instant::now();
        tokio::time::sleep(window).await;
        let ticks = cpu_ticks() - cpu_before;
        let window_ms = window_start.elapsed().as_millis();
        println!("RESULT {rss_before} {rss_after} {ticks} {window_ms}");
        std::io::stdout().flush().unwrap();
        for conn in &connections {
            conn.shutdown();
        }
        drop(connections);
        for drain in drains {
            drain.await.unwrap();
        }
    });
}

/// `--idle N RUNS`: N idle connections with keepalive, in RUNS fresh
/// processes one after another; prints each run and the median (min–max)
/// of the client's RSS per connection.
fn idle_only(n: usize, runs: usize) {
    let clk_tck = clock_ticks_per_second();
    let server = Testkit::start();
    let mut per_conn = Vec::new();
    for run in 1..=runs {
        let row = run_idle_worker(
            &server,
            n,
            true,
            Duration::from_secs(3),
            Duration::from_secs(2),
            clk_tck,
        );
        println!(
            "idle n={n} run {run}: {:.2} KiB/conn, idle CPU {:.2} % of a core",
            row.kib_per_conn(),
            row.cpu_percent
        );
        per_conn.push(row.kib_per_conn());
    }
    per_conn.sort_by(f64::total_cmp);
    println!(
        "idle n={n}: median {:.2} KiB/conn (min {:.2}, max {:.2}) over {runs} runs",
        per_conn[per_conn.len() / 2],
        per_conn[0],
        per_conn[per_conn.len() - 1]
    );
    server.stop();
}

/// Reads a connection's events to the end, counting its upgrades.
async fn count_upgrades(mut events: Events, upgraded: Arc<AtomicUsize>) {
    while let Some(event) = events.recv().await {
        if let Event::Upgraded { .. } = event {
            upgraded.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn wait_count(count: &AtomicUsize, n: usize, within: Duration) {
    let deadline = Instant::now() + within;
    while count.load(Ordering::Relaxed) < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} upgraded",
            count.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---- reconnect storm --------------------------------------------------------

struct StormResult {
    n: usize,
    jitter: f64,
    /// From the restart request until every connection is upgraded again.
    all_back_ms: u64,
    /// Connect attempts that failed (the server was down).
    failed_attempts: usize,
    /// Successful reconnects (`Up` with attempt > 1) per 100 ms.
    reconnects: Vec<usize>,
    /// Connect attempts made (`Reconnecting` time + its delay) per 100 ms.
    attempts: Vec<usize>,
}

enum Seen {
    Upgraded,
    Reconnect,
    Attempt { at: Instant },
    Failed,
}

async fn storm(server: &Testkit, n: usize, jitter: f64) -> StormResult {
    let retry = Retry::default()
        .initial_delay(Duration::from_millis(100))
        .max_delay(Duration::from_secs(2))
        .jitter(jitter);
    let options = keepalive_options(true).retry(retry).auto_upgrade(true);
    let upgraded = Arc::new(AtomicUsize::new(0));
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut connections = Vec::with_capacity(n);
    let mut drains = Vec::with_capacity(n);
    while connections.len() < n {
        let batch = OPEN_BATCH.min(n - connections.len());
        for _ in 0..batch {
            let (conn, events) = Connection::open(&server.url, options.clone()).unwrap();
            conn.ws_upgrade("/").unwrap();
            let index = connections.len();
            drains.push(tokio::spawn(watch(
                index,
                events,
                upgraded.clone(),
                seen_tx.clone(),
            )));
            connections.push(conn);
        }
        wait_count(&upgraded, connections.len(), Duration::from_secs(60)).await;
    }
    drop(seen_tx);
    // Events of the first upgrades are not part of the storm.
    while seen_rx.try_recv().is_ok() {}
    blocking(server, move |s| s.wait_live(n, Duration::from_secs(10))).await;

    let restart = Instant::now();
    blocking(server, |s| {
        s.get("/_control/restart?down_ms=1000");
    })
    .await;
    let mut back = vec![false; n];
    let mut back_count = 0;
    let mut reconnects = Vec::new();
    let mut attempts = Vec::new();
    let mut failed_attempts = 0;
    let mut all_back = Duration::ZERO;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while back_count < n {
        let (index, at, seen) = tokio::time::timeout_at(deadline, seen_rx.recv())
            .await
            .unwrap_or_else(|_| panic!("only {back_count} of {n} back after 60 s"))
            .expect("a connection ended");
        let since = at.saturating_duration_since(restart);
        match seen {
            Seen::Upgraded => {
                if !back[index] {
                    back[index] = true;
                    back_count += 1;
                    all_back = all_back.max(since);
                }
            }
            Seen::Reconnect => add_to_bucket(&mut reconnects, since),
            Seen::Attempt { at } => {
                add_to_bucket(&mut attempts, at.saturating_duration_since(restart))
            }
            Seen::Failed => failed_attempts += 1,
        }
    }
    // Attempts scheduled but not yet due when the last one came back.
    while let Ok((_, _, seen)) = seen_rx.try_recv() {
        match seen {
            Seen::Attempt { at } => {
                add_to_bucket(&mut attempts, at.saturating_duration_since(restart))
            }
            Seen::Failed => failed_attempts += 1,
            _ => {}
        }
    }
    blocking(server, move |s| s.wait_live(n, Duration::from_secs(10))).await;
    for conn in &connections {
        conn.shutdown();
    }
    drop(connections);
    for drain in drains {
        drain.await.unwrap();
    }
    blocking(server, |s| s.wait_live(0, Duration::from_secs(30))).await;
    StormResult {
        n,
        jitter,
        all_back_ms: all_back.as_millis() as u64,
        failed_attempts,
        reconnects,
        attempts,
    }
}

/// Runs a blocking call on the control API off the runtime's workers.
async fn blocking<R: Send + 'static>(
    server: &Testkit,
    call: impl FnOnce(&Control) -> R + Send + 'static,
) -> R {
    let control = server.control.clone();
    tokio::task::spawn_blocking(move || call(&control))
        .await
        .unwrap()
}

fn add_to_bucket(buckets: &mut Vec<usize>, since: Duration) {
    let i = (since.as_millis() / 100) as usize;
    if buckets.len() <= i {
        buckets.resize(i + 1, 0);
    }
    buckets[i] += 1;
}

type Seen3 = (usize, Instant, Seen);

/// Reads a connection's events to the end, reporting what the storm needs.
async fn watch(
    index: usize,
    mut events: Events,
    upgraded: Arc<AtomicUsize>,
    seen: tokio::sync::mpsc::UnboundedSender<Seen3>,
) {
    while let Some(event) = events.recv().await {
        let now = Instant::now();
        let what = match event {
            Event::Upgraded { .. } => {
                upgraded.fetch_add(1, Ordering::Relaxed);
                Seen::Upgraded
            }
            Event::Up { attempt } if attempt > 1 => Seen::Reconnect,
            Event::Reconnecting { delay, .. } => Seen::Attempt { at: now + delay },
            Event::Error { stream: None, .. } => Seen::Failed,
            _ => continue,
        };
        let _ = seen.send((index, now, what));
    }
}

fn print_storm(title: &str, s: &StormResult) {
    println!();
    println!(
        "{title}: n={} jitter={} all back after {} ms, {} failed attempts",
        s.n, s.jitter, s.all_back_ms, s.failed_attempts
    );
    println!("  from restart   attempts  reconnects");
    let peak = s.reconnects.iter().chain(&s.attempts).max().copied();
    let scale = peak.unwrap_or(1).max(1) as f64 / 50.0;
    let len = s.reconnects.len().max(s.attempts.len());
    for i in 0..len {
        let attempts = s.attempts.get(i).copied().unwrap_or(0);
        let reconnects = s.reconnects.get(i).copied().unwrap_or(0);
        let bar = "#".repeat((reconnects as f64 / scale).ceil() as usize);
        println!(
            "  {:>5}-{:<5} ms {:>8} {:>10}  {bar}",
            i * 100,
            i * 100 + 100,
            attempts,
            reconnects
        );
    }
}

// ---- results ------------------------------------------------------------------

fn json_list(values: &[usize]) -> String {
    let items: Vec<String> = values.iter().map(|v| v.to_string()).collect();
    format!("[{}]", items.join(","))
}

fn idle_json(rows: &[IdleRow]) -> String {
    let items: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{{\"n\":{},\"rss_kib_per_conn\":{:.2},\"idle_cpu_percent\":{:.3},\"rss_before_kib\":{},\"rss_after_kib\":{}}}",
                r.n,
                r.kib_per_conn(),
                r.cpu_percent,
                r.rss_before_kib,
                r.rss_after_kib
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

fn storm_json(s: &StormResult) -> String {
    format!(
        "{{\"n\":{},\"jitter\":{},\"all_back_ms\":{},\"failed_attempts\":{},\"buckets_100ms\":{},\"attempts_100ms\":{}}}",
        s.n,
        s.jitter,
        s.all_back_ms,
        s.failed_attempts,
        json_list(&s.reconnects),
        json_list(&s.attempts)
    )
}

fn write_json(
    smoke: bool,
    idle: &[IdleRow],
    idle_no_keepalive: &[IdleRow],
    with_jitter: &StormResult,
    without_jitter: &StormResult,
) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-results");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(if smoke {
        "scale-smoke.json"
    } else {
        "scale.json"
    });
    let json = format!(
        "{{\"idle\":{},\"idle_no_keepalive\":{},\"storm\":{{\"jitter\":{},\"no_jitter\":{}}}}}\n",
        idle_json(idle),
        idle_json(idle_no_keepalive),
        storm_json(with_jitter),
        storm_json(without_jitter)
    );
    std::fs::write(&path, json).unwrap();
    println!("results: {}", path.display());
}

// ---- idle connections with permessage-deflate -------------------------------

/// Idle RSS per connection with compression, against Node `ws`'s deflate
/// echo server (tests/deflate_peers/server.mjs): compression off, on but
/// unused (negotiated, no message yet: nothing allocated), and on after one
/// 1 KiB JSON message each way (the inflater and the deflater allocated and
/// kept, context takeover). One fresh process per row.
mod deflate_idle {
    use super::*;
    use std::io::BufRead;
    use wstether::{Compression, Frame};

    pub fn run(n: usize) {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let Ok(mut server) = Command::new("node")
            .arg(root.join("tests/deflate_peers/server.mjs"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
        else {
            eprintln!("deflate-idle: skipped (needs node)");
            return;
        };
        let mut line = String::new();
        std::io::BufReader::new(server.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = format!("ws://127.0.0.1:{}/", line.trim());
        println!("| N = {n} | RSS per idle connection |");
        println!("|---|---:|");
        for mode in ["off", "on-unused", "on-used", "on-used-no-takeover"] {
            let out = Command::new(std::env::current_exe().unwrap())
                .args(["--deflate-idle-worker", &url, &n.to_string(), mode])
                .output()
                .expect("start the worker");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8_lossy(&out.stdout);
            let kib: f64 = text.trim().parse().unwrap();
            println!("| {mode} | {kib:.1} KiB |");
        }
        drop(server);
    }

    pub fn worker(args: &[String]) {
        let url = args[0].clone();
        let n: usize = args[1].parse().unwrap();
        let mode = args[2].clone();
        let compression = match mode.as_str() {
            "off" => Compression::off(),
            "on-used-no-takeover" => Compression::deflate()
                .context_takeover(false)
                .server_context_takeover(false),
            _ => Compression::deflate(),
        };
        let send = mode.starts_with("on-used");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let before = rss_kib();
            let mut kept = Vec::with_capacity(n);
            for batch in 0..n.div_ceil(100) {
                let mut opening = Vec::new();
                for _ in 0..100.min(n - batch * 100) {
                    let options = Options::default()
                        .no_keepalive()
                        .compression(compression.clone());
                    let url = url.clone();
                    opening.push(tokio::spawn(async move {
                        let (conn, mut events, stream) =
                            wstether::connect(&url, options).await.unwrap();
                        if send {
                            let text = format!("{{\"hello\":\"{}\"}}", "world ".repeat(170));
                            conn.send(stream, Frame::text(text)).await.unwrap();
                            loop {
                                if let Some(Event::Frame { .. }) = events.recv().await {
                                    break;
                                }
                            }
                        }
                        (conn, events)
                    }));
                }
                for task in opening {
                    kept.push(task.await.unwrap());
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            let after = rss_kib();
            println!("{:.1}", (after - before) as f64 / n as f64);
            for (conn, _) in &kept {
                conn.shutdown();
            }
        });
    }
}

// ---- the heap of idle connections, by allocation site --------------------------

/// `--heap-profile [N]`: the heap that idle connections hold, by allocation
/// site, with heaptrack (Debian's `heaptrack`; no Rust dependency). The
/// worker opens N upgraded connections with keepalive, lets them idle for
/// 1 s, then exits with them still open: heaptrack's "leaked" figures are
/// then what the connections hold, by site. Runs N = 0 (the runtime's own
/// heap), 1 and N; the recordings go to `target/bench-results/heap-*.zst`,
/// and `heaptrack_print -l 1 -n 0 -s 0 -a 0 -p 0 -t 0 -f FILE` lists the
/// sites (build with `CARGO_PROFILE_BENCH_DEBUG=line-tables-only` for
/// file and line).
mod heap {
    use super::*;

    pub fn run(n: usize) {
        let server = Testkit::start();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-results");
        std::fs::create_dir_all(&dir).unwrap();
        for count in [0, 1, n] {
            let out = dir.join(format!("heap-{count}"));
            let status = Command::new("heaptrack")
                .arg("-o")
                .arg(&out)
                .arg(std::env::current_exe().unwrap())
                .args(["--heap-worker", &server.url, &count.to_string()])
                .stdout(Stdio::inherit())
                .status();
            match status {
                Ok(s) if s.success() => println!("heap profile of {count}: {}.zst", out.display()),
                Ok(s) => panic!("heaptrack: {s}"),
                Err(e) => {
                    eprintln!("heap-profile: skipped (needs heaptrack: {e})");
                    break;
                }
            }
            server.control.wait_live(0, Duration::from_secs(30));
        }
        server.stop();
    }

    /// `--heap-worker URL N`: N idle upgraded connections, then exit
    /// without closing them (what they hold shows as "leaked").
    pub fn worker(args: &[String]) {
        let url = args[0].clone();
        let n: usize = args[1].parse().unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let upgraded = Arc::new(AtomicUsize::new(0));
            let mut connections = Vec::with_capacity(n);
            while connections.len() < n {
                let batch = OPEN_BATCH.min(n - connections.len());
                for _ in 0..batch {
                    let (conn, events) = Connection::open(&url, keepalive_options(true)).unwrap();
                    conn.ws_upgrade("/").unwrap();
                    tokio::spawn(count_upgrades(events, upgraded.clone()));
                    connections.push(conn);
                }
                wait_count(&upgraded, connections.len(), Duration::from_secs(120)).await;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            let rss = rss_kib();
            println!("heap worker: {n} connections idle, VmRSS {rss} KiB");
            std::io::stdout().flush().unwrap();
            std::process::exit(0);
        });
    }
}

// ---- memory after a burst -----------------------------------------------------

/// Memory after a burst. One fresh process per message size (this binary
/// re-run with `--after-burst-worker`), which:
///
/// 1. opens N idle connections (keepalive, as `idle`) and measures their
///    RSS per connection: the **idle** figure;
/// 2. keeps them, and opens N more whose server sends each a burst of
///    `BURST` bytes right after the upgrade (testkit `send`, binary
///    messages of `size` bytes); the client reads every message (and drops
///    it). RSS and heap are sampled every 20 ms, and RSS is also read
///    from the kernel's high-water mark (`VmHWM`): the **peak**;
/// 3. once every burst is read, waits 5 s (the scenario's definition of
///    "after", not a synchronisation) and measures again: the **after**
///    figure. wstether frees the queue capacity a burst left at the first
///    keepalive probe after it (a quiet interval); these connections ping
///    every [`BURST_KEEPALIVE`], so the 5 s include it
///    (per burst connection: ΔRSS over the idle phase / N), to be
///    compared with the idle figure;
/// 4. then calls glibc's `malloc_trim(0)` and measures again: what the
///    allocator kept but no longer used.
///
/// Alongside RSS, glibc's `mallinfo2` gives the bytes in use by the
/// program (`uordblks + hblkhd`): the difference between the two is the
/// allocator's (freed memory it keeps, fragmentation).
///
/// Full run: N = 100 connections, 64 MiB each, in 1 KiB messages (65,536
/// of them) and in 1 MiB messages (64). Smoke: N = 10, 4 MiB each.
mod burst {
    use super::*;
    use wstether::Frame;

    /// The keepalive interval of every connection here (idle ones too):
    /// shorter than the 5 s "after", so the trim at the first probe after
    /// the burst is in what is measured (the default interval is 20 s).
    pub(super) const BURST_KEEPALIVE: Duration = Duration::from_secs(2);

    fn options() -> Options {
        Options::default()
            .keepalive(Keepalive::every(BURST_KEEPALIVE).timeout(Duration::from_secs(5)))
    }

    /// glibc's `struct mallinfo2` (glibc ≥ 2.33).
    #[repr(C)]
    #[derive(Default, Clone, Copy)]
    struct MallInfo2 {
        arena: usize,
        ordblks: usize,
        smblks: usize,
        hblks: usize,
        hblkhd: usize,
        usmblks: usize,
        fsmblks: usize,
        uordblks: usize,
        fordblks: usize,
        keepcost: usize,
    }

    extern "C" {
        fn mallinfo2() -> MallInfo2;
        fn malloc_trim(pad: usize) -> i32;
    }

    /// Bytes the program has allocated and not freed (all arenas).
    fn heap_in_use() -> u64 {
        // SAFETY: glibc's mallinfo2 takes no argument and returns a struct.
        let info = unsafe { mallinfo2() };
        (info.uordblks + info.hblkhd) as u64
    }

    pub struct BurstRow {
        pub n: usize,
        pub message_bytes: usize,
        pub burst_bytes: usize,
        /// The process's own RSS and heap in use before any connection.
        base: (u64, u64),
        /// After N idle connections.
        idle: (u64, u64),
        /// The highest RSS (and heap in use) sampled during the bursts.
        peak: (u64, u64),
        /// 5 s after every burst was read.
        after: (u64, u64),
        /// Then after `malloc_trim(0)`.
        trimmed: (u64, u64),
        burst_ms: u64,
    }

    impl BurstRow {
        fn per_conn(&self, (rss, heap): (u64, u64), from: (u64, u64)) -> (f64, f64) {
            let n = self.n as f64;
            (
                (rss as f64 - from.0 as f64) / n,
                (heap as f64 - from.1 as f64) / 1024.0 / n,
            )
        }

        fn json(&self) -> String {
            let idle = self.per_conn(self.idle, self.base);
            let peak = self.per_conn(self.peak, self.idle);
            let after = self.per_conn(self.after, self.idle);
            let trimmed = self.per_conn(self.trimmed, self.idle);
            format!(
                "{{\"n\":{},\"message_bytes\":{},\"burst_bytes\":{},\"burst_ms\":{},\
                 \"idle_rss_kib_per_conn\":{:.2},\"idle_heap_kib_per_conn\":{:.2},\
                 \"peak_rss_kib_per_conn\":{:.2},\"peak_heap_kib_per_conn\":{:.2},\
                 \"after_rss_kib_per_conn\":{:.2},\"after_heap_kib_per_conn\":{:.2},\
                 \"trimmed_rss_kib_per_conn\":{:.2},\"trimmed_heap_kib_per_conn\":{:.2},\
                 \"raw_kib\":{{\"rss\":[{},{},{},{},{}],\"heap\":[{},{},{},{},{}]}}}}",
                self.n,
                self.message_bytes,
                self.burst_bytes,
                self.burst_ms,
                idle.0,
                idle.1,
                peak.0,
                peak.1,
                after.0,
                after.1,
                trimmed.0,
                trimmed.1,
                self.base.0,
                self.idle.0,
                self.peak.0,
                self.after.0,
                self.trimmed.0,
                self.base.1 / 1024,
                self.idle.1 / 1024,
                self.peak.1 / 1024,
                self.after.1 / 1024,
                self.trimmed.1 / 1024,
            )
        }
    }

    pub fn run(server: &Testkit, smoke: bool) {
        let (n, burst_bytes) = if smoke {
            (10, 4 << 20)
        } else {
            (100, 64 << 20)
        };
        let mut rows = Vec::new();
        println!();
        println!("after a burst: N = {n} connections, {} MiB each; KiB per connection (RSS / heap in use)", burst_bytes >> 20);
        println!("| message | idle | peak during the burst | 5 s after | after malloc_trim | burst time |");
        println!("|---|---:|---:|---:|---:|---:|");
        for message_bytes in [1 << 10, 1 << 20] {
            let out = Command::new(std::env::current_exe().unwrap())
                .arg("--after-burst-worker")
                .arg(&server.url)
                .args([n, message_bytes, burst_bytes].map(|v| v.to_string()))
                .stderr(Stdio::inherit())
                .output()
                .expect("start the after-burst worker");
            assert!(out.status.success(), "after-burst worker failed");
            let text = String::from_utf8_lossy(&out.stdout);
            let line = text
                .lines()
                .find_map(|l| l.strip_prefix("RESULT "))
                .unwrap_or_else(|| panic!("after-burst worker: {text:?}"));
            let f: Vec<u64> = line.split(' ').map(|v| v.parse().unwrap()).collect();
            let row = BurstRow {
                n,
                message_bytes,
                burst_bytes,
                base: (f[0], f[1]),
                idle: (f[2], f[3]),
                peak: (f[4], f[5]),
                after: (f[6], f[7]),
                trimmed: (f[8], f[9]),
                burst_ms: f[10],
            };
            let idle = row.per_conn(row.idle, row.base);
            let peak = row.per_conn(row.peak, row.idle);
            let after = row.per_conn(row.after, row.idle);
            let trimmed = row.per_conn(row.trimmed, row.idle);
            println!(
                "| {} KiB | {:.1} / {:.1} | {:.1} / {:.1} | {:.1} / {:.1} | {:.1} / {:.1} | {} ms |",
                message_bytes >> 10,
                idle.0,
                idle.1,
                peak.0,
                peak.1,
                after.0,
                after.1,
                trimmed.0,
                trimmed.1,
                row.burst_ms
            );
            server.control.wait_live(0, Duration::from_secs(30));
            rows.push(row);
        }
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-results");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(if smoke {
            "after-burst-smoke.json"
        } else {
            "after-burst.json"
        });
        let items: Vec<String> = rows.iter().map(BurstRow::json).collect();
        std::fs::write(
            &path,
            format!("{{\"after_burst\":[{}]}}\n", items.join(",")),
        )
        .unwrap();
        println!("results: {}", path.display());
    }

    fn sample() -> (u64, u64) {
        (rss_kib(), heap_in_use())
    }

    /// `--after-burst-worker URL N MESSAGE_BYTES BURST_BYTES`: prints
    /// `RESULT` and the (RSS KiB, heap bytes) pairs of base, idle, peak,
    /// after and trimmed, then the burst's duration in ms.
    pub fn worker(args: &[String]) {
        let url = args[0].clone();
        let n: usize = args[1].parse().unwrap();
        let message_bytes: usize = args[2].parse().unwrap();
        let burst_bytes: usize = args[3].parse().unwrap();
        let count = burst_bytes / message_bytes;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let base = sample();
            let upgraded = Arc::new(AtomicUsize::new(0));
            let mut idle = Vec::with_capacity(n);
            for _ in 0..n {
                let (conn, events) = Connection::open(&url, options()).unwrap();
                conn.ws_upgrade("/").unwrap();
                tokio::spawn(count_upgrades(events, upgraded.clone()));
                idle.push(conn);
            }
            wait_count(&upgraded, n, Duration::from_secs(60)).await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            let idle_sample = sample();

            // The sampler: RSS and heap every 20 ms until told to stop.
            let stop = Arc::new(AtomicUsize::new(0));
            let sampler = {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut peak = (0, 0);
                    while stop.load(Ordering::Relaxed) == 0 {
                        let (rss, heap) = sample();
                        peak = (peak.0.max(rss), peak.1.max(heap));
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    peak
                })
            };
            let started = Instant::now();
            let path = format!("/?send={count}&size={message_bytes}&kind=binary");
            let mut bursts = Vec::with_capacity(n);
            let mut readers = Vec::with_capacity(n);
            for _ in 0..n {
                let (conn, events) = Connection::open(&url, options()).unwrap();
                conn.ws_upgrade(&path).unwrap();
                readers.push(tokio::spawn(read_burst(events, count)));
                bursts.push(conn);
            }
            let mut keep = Vec::with_capacity(n);
            for reader in readers {
                keep.push(reader.await.unwrap());
            }
            let burst_ms = started.elapsed().as_millis() as u64;
            let peak = {
                stop.store(1, Ordering::Relaxed);
                let (rss, heap) = sampler.join().unwrap();
                // The kernel's high-water mark catches a peak between samples.
                (rss.max(status_kib("VmHWM:")), heap)
            };
            // The scenario's definition of "after": 5 s later.
            tokio::time::sleep(Duration::from_secs(5)).await;
            let after = sample();
            // SAFETY: glibc's malloc_trim is safe to call at any time.
            unsafe { malloc_trim(0) };
            let trimmed = sample();
            println!(
                "RESULT {} {} {} {} {} {} {} {} {} {} {burst_ms}",
                base.0,
                base.1,
                idle_sample.0,
                idle_sample.1,
                peak.0,
                peak.1,
                after.0,
                after.1,
                trimmed.0,
                trimmed.1
            );
            std::io::stdout().flush().unwrap();
            // Under heaptrack (`--heap-profile`'s method): what is still
            // held shows as "leaked".
            if std::env::var_os("WSTETHER_SCALE_EXIT_HELD").is_some() {
                std::process::exit(0);
            }
            for conn in idle.iter().chain(&bursts) {
                conn.shutdown();
            }
            drop(keep);
        });
    }

    /// Reads a burst of `count` binary messages (dropping each), then keeps
    /// reading the events to the end in the background; returns that task.
    async fn read_burst(mut events: Events, count: usize) -> tokio::task::JoinHandle<()> {
        let mut got = 0;
        while got < count {
            match events.recv().await {
                Some(Event::Frame {
                    frame: Frame::Binary(_),
                    ..
                }) => got += 1,
                Some(_) => {}
                None => panic!("the connection ended after {got} of {count} messages"),
            }
        }
        tokio::spawn(async move { while events.recv().await.is_some() {} })
    }
}
