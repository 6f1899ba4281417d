//! Helpers of the hostile-server tests (`tests/hostile.rs`,
//! `tests/hostile_memory.rs`): the testkit server in a child process, so
//! that this process's resident memory is the client's alone, a watchdog
//! that samples it, and the lock that runs memory tests one at a time.
#![allow(dead_code)]

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

/// One MiB in KiB, the unit of [`rss_kib`].
pub const MIB_IN_KIB: u64 = 1024;

/// How long any single expected step may take before the test fails (a
/// guard against hangs, not a synchronisation point).
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Holds the tests of one binary to one at a time: tests run in parallel
/// threads of one process, and each measures that process's memory.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}

/// Resident memory of this process, in KiB (`VmRSS` of /proc/self/status).
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The `wstether-testkit` binary in a child process, on 127.0.0.1:0. It
/// exits when its stdin closes, i.e. when this is dropped (or the test
/// process dies); `kill_on_drop` makes sure.
pub struct ChildServer {
    child: tokio::process::Child,
    /// `127.0.0.1:PORT`
    addr: String,
}

impl ChildServer {
    /// Starts the server and proves that the port answers with *this*
    /// child: `/_control/stats` reports the random token it was given.
    pub async fn start() -> ChildServer {
        let token = format!(
            "hostile-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
        );
        let mut child = tokio::process::Command::new(wstether_testkit::built_binary().unwrap())
            .args(["--port", "0", "--token", &token])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start wstether-testkit");
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(PATIENCE, lines.next_line())
            .await
            .expect("wstether-testkit prints its address")
            .unwrap()
            .expect("a LISTENING line");
        let addr = line
            .strip_prefix("LISTENING ws://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        let server = ChildServer { child, addr };
        let stats = server.stats().await;
        assert!(
            stats.contains(&format!("\"token\":\"{token}\"")),
            "the server on {} is not the one started: {stats}",
            server.addr
        );
        server
    }

    /// `ws://127.0.0.1:PORT/` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        let sep = if path.starts_with('/') { "" } else { "/" };
        format!("ws://{}{sep}{path}", self.addr)
    }

    /// The body of `/_control/stats` (`{"accepted":N,...,"token":"T"}`).
    pub async fn stats(&self) -> String {
        let ask = async {
            let mut tcp = tokio::net::TcpStream::connect(&self.addr).await?;
            tcp.write_all(b"GET /_control/stats HTTP/1.1\r\nHost: x\r\n\r\n")
                .await?;
            let mut out = String::new();
            tcp.read_to_string(&mut out).await?;
            std::io::Result::Ok(out)
        };
        let out = tokio::time::timeout(PATIENCE, ask)
            .await
            .expect("the stats answer within PATIENCE")
            .expect("the stats request works");
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        out.split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default()
    }

    /// How many upgrade requests the server has seen (from the stats).
    pub async fn requests(&self) -> u64 {
        let stats = self.stats().await;
        stats
            .split_once("\"requests\":")
            .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no request count in {stats}"))
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Samples this process's RSS every 10 ms on a thread of its own (it runs
/// even when the runtime is starved) and keeps the peak. Past `abort_kib`
/// of growth, [`Watchdog::guard`] fails the test at once; should the test
/// not get there within 5 s, the watchdog exits the whole process, so that
/// an unbounded client cannot take the machine down.
pub struct Watchdog {
    baseline_kib: u64,
    abort_kib: u64,
    peak_kib: Arc<AtomicU64>,
    over: Arc<tokio::sync::Notify>,
    tripped: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Watchdog {
    pub fn start(abort_growth_kib: u64) -> Watchdog {
        let baseline_kib = rss_kib();
        let peak_kib = Arc::new(AtomicU64::new(baseline_kib));
        let over = Arc::new(tokio::sync::Notify::new());
        let tripped = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (peak, notify, trip, halt) = (
            peak_kib.clone(),
            over.clone(),
            tripped.clone(),
            stop.clone(),
        );
        std::thread::spawn(move || {
            let mut tripped_at = None;
            while !halt.load(Ordering::Relaxed) {
                let now = rss_kib();
                peak.fetch_max(now, Ordering::Relaxed);
                if now.saturating_sub(baseline_kib) > abort_growth_kib && tripped_at.is_none() {
                    trip.store(true, Ordering::SeqCst);
                    notify.notify_waiters();
                    tripped_at = Some(std::time::Instant::now());
                }
                if tripped_at.is_some_and(|t| t.elapsed() > Duration::from_secs(5)) {
                    eprintln!(
                        "watchdog: RSS grew by {} MiB (limit {} MiB) and the test did \
                         not stop: exiting the test process",
                        now.saturating_sub(baseline_kib) / MIB_IN_KIB,
                        abort_growth_kib / MIB_IN_KIB
                    );
                    std::process::exit(3);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Watchdog {
            baseline_kib,
            abort_kib: abort_growth_kib,
            peak_kib,
            over,
            tripped,
            stop,
        }
    }

    /// The largest growth of RSS over the baseline seen so far, in KiB.
    pub fn peak_growth_kib(&self) -> u64 {
        self.peak_kib
            .load(Ordering::Relaxed)
            .max(rss_kib())
            .saturating_sub(self.baseline_kib)
    }

    /// Runs `fut`, failing the test as soon as the growth passes the
    /// abort limit.
    pub async fn guard<F: std::future::Future>(&self, what: &str, fut: F) -> F::Output {
        let over = self.over.notified();
        tokio::pin!(over);
        over.as_mut().enable();
        if self.tripped.load(Ordering::SeqCst) {
            self.fail(what);
        }
        tokio::select! {
            out = fut => out,
            _ = over => self.fail(what),
        }
    }

    fn fail(&self, what: &str) -> ! {
        panic!(
            "{what}: RSS grew past the abort limit of {} MiB ({} MiB now): memory is unbounded",
            self.abort_kib / MIB_IN_KIB,
            self.peak_growth_kib() / MIB_IN_KIB
        )
    }

    /// Sleeps `duration` (the length of an attack), failing early if the
    /// growth passes the abort limit.
    pub async fn sleep(&self, what: &str, duration: Duration) {
        self.guard(what, tokio::time::sleep(duration)).await
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
