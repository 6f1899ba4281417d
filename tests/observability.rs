//! Observability against the real testkit server: an [`Observer`] is told
//! exactly what [`Stats`] counts, and the `tracing` output carries the
//! connection's span (id, host, attempt) and every step, without secrets.
#![cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{next, options, rest, until, PATIENCE};
use http::StatusCode;
use wstether::{
    Connection, DownReason, Error, Event, Frame, FrameInfo, Keepalive, Observer, Stats, StreamRef,
};
use wstether_testkit::TestServer;

/// Counts what it is told, as a metrics exporter would.
#[derive(Default)]
struct Counting {
    connect_start: AtomicU64,
    connect_ok: AtomicU64,
    upgrades_sent: AtomicU64,
    upgrades_ok: AtomicU64,
    frames_sent: AtomicU64,
    internal_sent: AtomicU64,
    messages_sent: AtomicU64,
    bytes_sent: AtomicU64,
    frames_received: AtomicU64,
    messages_received: AtomicU64,
    bytes_received: AtomicU64,
    disconnects: AtomicU64,
    connected_ns: AtomicU64,
    reconnects_scheduled: AtomicU64,
    terminates: AtomicU64,
    connections: Mutex<Vec<u64>>,
}

fn add(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

impl Observer for Counting {
    fn connect_start(&self, connection: u64, _attempt: u32) {
        add(&self.connect_start, 1);
        self.connections.lock().unwrap().push(connection);
    }

    fn connect_end(&self, _: u64, _: u32, _: Duration, error: Option<&Error>) {
        add(&self.connect_ok, u64::from(error.is_none()));
    }

    fn upgrade_sent(&self, _: StreamRef) {
        add(&self.upgrades_sent, 1);
    }

    fn upgrade_answered(
        &self,
        _: StreamRef,
        status: Option<StatusCode>,
        _: Option<&str>,
        _: Duration,
        error: Option<&Error>,
    ) {
        if error.is_none() {
            assert_eq!(status, Some(StatusCode::SWITCHING_PROTOCOLS));
            add(&self.upgrades_ok, 1);
        }
    }

    fn frame_sent(&self, _: StreamRef, frame: FrameInfo) {
        if frame.internal {
            add(&self.internal_sent, 1);
            return;
        }
        add(&self.frames_sent, 1);
        if frame.opcode.is_message() {
            add(&self.messages_sent, 1);
            add(&self.bytes_sent, frame.len as u64);
        }
    }

    fn frame_received(&self, _: StreamRef, frame: FrameInfo) {
        add(&self.frames_received, 1);
        if frame.opcode.is_message() {
            add(&self.messages_received, 1);
            add(&self.bytes_received, frame.len as u64);
        }
    }

    fn disconnect(&self, _: u64, _: &DownReason, connected_for: Duration) {
        add(&self.disconnects, 1);
        add(&self.connected_ns, connected_for.as_nanos() as u64);
    }

    fn reconnect_scheduled(&self, _: u64, _: u32, _: Duration) {
        add(&self.reconnects_scheduled, 1);
    }

    fn terminate(&self, _: u64, _: Duration) {
        add(&self.terminates, 1);
    }
}

/// A session with sends, receives (echoes, a burst and the server's
/// pings), keepalive probes, a dropped connection and a reconnect, then a
/// shutdown: the observer's counts are `Stats`.
#[tokio::test]
async fn the_observers_counts_match_stats() {
    let server = TestServer::start().await.unwrap();
    let observer = Arc::new(Counting::default());
    let keepalive = Keepalive::every(Duration::from_millis(30)).timeout(Duration::from_secs(5));
    let options = options()
        .auto_upgrade(true)
        .keepalive(keepalive)
        .silence_pings(false)
        .observer(observer.clone());
    let (conn, mut events) = Connection::open(&server.url(""), options).unwrap();
    conn.ws_upgrade("/?send=3&size=100&ping_every=20").unwrap();
    let mut seen = Vec::new();
    for round in 0..2 {
        let (upgraded, skipped) = until(&mut events, common::is_upgraded).await;
        seen.extend(skipped);
        let Event::Upgraded { stream, .. } = upgraded else {
            unreachable!()
        };
        let frames: Vec<Frame> = (0..5)
            .map(|i| Frame::text(format!("round {round} message {i}")))
            .chain([Frame::binary(vec![7; 1000])])
            .collect();
        conn.send(stream, frames).await.unwrap();
        let mut echoes = 0;
        while echoes < 6 {
            match next(&mut events).await {
                Event::Frame {
                    frame: Frame::Text(t),
                    ..
                } if t.starts_with("round") => echoes += 1,
                Event::Frame {
                    frame: Frame::Binary(b),
                    ..
                } if b.len() == 1000 => echoes += 1,
                other => seen.push(other),
            }
        }
        // A keepalive probe, answered and timed (the server's pings keep
        // the connection from being quiet enough to probe by itself).
        conn.probe();
        tokio::time::timeout(PATIENCE, async {
            while conn.stats().last_rtt.is_none() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("an RTT");
        if round == 0 {
            server.drop_connections();
            let (_, skipped) = until(&mut events, common::is_down).await;
            seen.extend(skipped);
        }
    }
    conn.shutdown();
    seen.extend(rest(&mut events).await);

    let stats: Stats = conn.stats();
    let o = &*observer;
    assert_eq!(get(&o.frames_sent), stats.frames_written, "{stats:?}");
    assert_eq!(get(&o.messages_sent), stats.messages_written);
    assert_eq!(get(&o.bytes_sent), stats.bytes_written);
    assert_eq!(get(&o.frames_received), stats.frames_received);
    assert_eq!(get(&o.messages_received), stats.messages_received);
    assert_eq!(get(&o.bytes_received), stats.bytes_received);
    assert_eq!(get(&o.connect_ok), stats.reconnects + 1);
    assert_eq!(
        get(&o.connect_start),
        get(&o.connect_ok),
        "every dial worked"
    );
    assert_eq!(get(&o.upgrades_ok), 2);
    assert_eq!(get(&o.upgrades_sent), 2);
    assert_eq!(get(&o.disconnects), 2, "the drop and the shutdown");
    assert_eq!(get(&o.reconnects_scheduled), 1);
    assert_eq!(get(&o.terminates), 1);
    assert_eq!(
        Duration::from_nanos(get(&o.connected_ns)),
        stats.time_connected,
        "the observer's connected time is Stats'"
    );
    // And the figures themselves: 12 messages out (5 texts + 1 binary, twice),
    // 6 echoes and a 3-frame burst of 100 bytes in, twice; pings from the
    // server and our probes' pongs on top.
    assert_eq!(stats.messages_written, 12);
    assert_eq!(stats.frames_written, 12, "probes are not counted");
    assert!(get(&o.internal_sent) > 0, "keepalive probes were observed");
    let sent_bytes: u64 = (0..2)
        .flat_map(|r| (0..5).map(move |i| format!("round {r} message {i}").len() as u64))
        .sum::<u64>()
        + 2000;
    assert_eq!(stats.bytes_written, sent_bytes);
    assert_eq!(stats.messages_received, 18);
    assert_eq!(stats.bytes_received, sent_bytes + 600);
    assert!(
        stats.frames_received > stats.messages_received,
        "pings and pongs"
    );
    assert_eq!(stats.reconnects, 1);
    assert!(stats.last_rtt.is_some() && stats.smoothed_rtt.is_some());
    assert!(stats.time_connected > Duration::ZERO);
    assert_eq!(
        *observer.connections.lock().unwrap(),
        [conn.id(), conn.id()],
        "the observer is given the connection's id"
    );
    assert_eq!(
        seen.iter()
            .filter(|e| matches!(e, Event::Down { .. }))
            .count(),
        1,
        "the final Down is in `rest`"
    );
}

// --- tracing ---

/// A tiny subscriber that writes each event as `LEVEL message fields
/// [span fields]`, with the fields of the span it happened in (as recorded
/// so far), so a test can check both the events and their context.
#[derive(Default)]
struct Capture {
    log: Mutex<String>,
    /// Each span's fields, by id - 1.
    spans: Mutex<Vec<String>>,
}

thread_local! {
    static ENTERED: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        if field.name() == "message" {
            let _ = write!(self.0, " {value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut fields = String::new();
        span.record(&mut Fields(&mut fields));
        let mut spans = self.spans.lock().unwrap();
        spans.push(format!("{}:{fields}", span.metadata().name()));
        tracing::span::Id::from_u64(spans.len() as u64)
    }

    fn record(&self, id: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut spans = self.spans.lock().unwrap();
        let fields = &mut spans[id.into_u64() as usize - 1];
        values.record(&mut Fields(fields));
    }

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut line = format!("{}", event.metadata().level());
        event.record(&mut Fields(&mut line));
        if let Some(id) = ENTERED.with(|entered| entered.borrow().last().copied()) {
            let spans = self.spans.lock().unwrap();
            line.push_str(&format!(" [{}]", spans[id as usize - 1]));
        }
        let mut log = self.log.lock().unwrap();
        log.push_str(&line);
        log.push('\n');
    }

    fn enter(&self, id: &tracing::span::Id) {
        ENTERED.with(|entered| entered.borrow_mut().push(id.into_u64()));
    }

    fn exit(&self, _: &tracing::span::Id) {
        ENTERED.with(|entered| entered.borrow_mut().pop());
    }
}

fn capture() -> &'static Capture {
    static CAPTURE: std::sync::OnceLock<&'static Capture> = std::sync::OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture: &'static Capture = Box::leak(Box::default());
        tracing::subscriber::set_global_default(Forward(capture))
            .expect("no other tracing subscriber in this test binary");
        capture
    })
}

/// The global subscriber, forwarding to the leaked [`Capture`].
struct Forward(&'static Capture);

impl tracing::Subscriber for Forward {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        self.0.enabled(metadata)
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        self.0.new_span(span)
    }
    fn record(&self, id: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        self.0.record(id, values)
    }
    fn record_follows_from(&self, a: &tracing::span::Id, b: &tracing::span::Id) {
        self.0.record_follows_from(a, b)
    }
    fn event(&self, event: &tracing::Event<'_>) {
        self.0.event(event)
    }
    fn enter(&self, id: &tracing::span::Id) {
        self.0.enter(id)
    }
    fn exit(&self, id: &tracing::span::Id) {
        self.0.exit(id)
    }
}

/// A session whose URL and upgrade carry secrets: every step is traced in
/// the connection's span (its id, host, port and attempt), and no secret
/// reaches the output.
#[tokio::test]
async fn the_trace_shows_every_step_in_the_connections_span_without_secrets() {
    let capture = capture();
    let server = TestServer::start().await.unwrap();
    let port = server.addr().port();
    let url = format!("ws://user:hunter2@127.0.0.1:{port}/");
    let (conn, mut events) = Connection::open(&url, options()).unwrap();
    let upgrade = wstether::Upgrade::new("/chat?token=SECRET")
        .header("authorization", "Bearer SECRET")
        .protocol("chat");
    let stream = conn.ws_upgrade_with(upgrade.clone()).unwrap();
    until(&mut events, common::is_upgraded).await;
    conn.send(stream, Frame::text("hello")).await.unwrap();
    until(&mut events, |e| matches!(e, Event::Frame { .. })).await;
    server.drop_connections();
    until(&mut events, common::is_up).await;
    // A refused upgrade on the new connection: the policy stops (403).
    conn.ws_upgrade("/?reject=403&token=SECRET").unwrap();
    rest(&mut events).await;

    let id = conn.id();
    let span = format!("[wstether: conn={id} host=127.0.0.1 port={port} attempt=1]");
    let span2 = format!("[wstether: conn={id} host=127.0.0.1 port={port} attempt=2]");
    let log = capture.log.lock().unwrap().clone();
    let ours: Vec<&str> = log
        .lines()
        .filter(|line| line.contains(&format!("[wstether: conn={id} ")))
        .collect();
    let text = ours.join("\n");
    for secret in ["SECRET", "hunter2"] {
        assert!(!log.contains(secret), "{secret} in the trace:\n{log}");
    }
    let expect = [
        ("DEBUG wstether: connecting [", span.as_str()),
        ("DEBUG wstether: connected attempt=1 duration=", &span),
        (
            "DEBUG wstether: upgrade sent stream=#",
            "path=/chat?… protocols=[\"chat\"]",
        ),
        (
            "INFO wstether: upgraded stream=#",
            "status=101 protocol=\"chat\"",
        ),
        ("WARN wstether: down reason=", "will_reconnect=true"),
        (
            "INFO wstether: reconnect scheduled next_attempt=2 delay=",
            "",
        ),
        ("DEBUG wstether: connecting [", &span2),
        ("WARN wstether: upgrade failed stream=#", "status=403"),
        ("INFO wstether: upgraded stream=#", &span),
        ("WARN wstether: upgrade failed stream=#", &span2),
        (
            "WARN wstether: upgrade refused, not retried",
            "403 Forbidden",
        ),
        (
            "WARN wstether: down reason=upgrade rejected",
            "will_reconnect=false",
        ),
        ("INFO wstether: terminated lifetime=", ""),
    ];
    for (start, contains) in expect {
        assert!(
            ours.iter()
                .any(|line| line.starts_with(start) && line.contains(contains)),
            "no line starting {start:?} with {contains:?} in:\n{text}"
        );
    }
    assert!(
        ours.iter()
            .any(|line| line.starts_with("TRACE wstether: frame sent")
                && line.contains("opcode=Text len=5")),
        "{text}"
    );
}

// --- TLS ---

/// Records the connect steps, in order, with their durations.
#[derive(Default)]
struct Steps(Mutex<Vec<(String, u32, Duration)>>);

impl Steps {
    /// The names of the steps seen so far, in order.
    fn names(&self) -> Vec<String> {
        self.0.lock().unwrap().iter().map(|s| s.0.clone()).collect()
    }
}

impl Observer for Steps {
    fn connect_start(&self, _: u64, attempt: u32) {
        self.0
            .lock()
            .unwrap()
            .push(("start".into(), attempt, Duration::ZERO));
    }
    fn tls_handshake(&self, _: u64, attempt: u32, duration: Duration) {
        self.0
            .lock()
            .unwrap()
            .push(("tls".into(), attempt, duration));
    }
    fn connect_end(&self, _: u64, attempt: u32, duration: Duration, error: Option<&Error>) {
        let step = match error {
            None => "end".to_string(),
            Some(error) => format!("end {:?}", error.kind()),
        };
        self.0.lock().unwrap().push((step, attempt, duration));
    }
}

/// A TLS testkit server for `localhost`, signed by a test CA, and options
/// that trust the CA.
async fn tls_server() -> (TestServer, wstether::Options) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = params.self_signed(&ca_key).unwrap().der().to_vec();
    let issuer = Issuer::new(params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let server = TestServer::start_tls(vec![cert.der().to_vec()], key.serialize_der())
        .await
        .unwrap();
    (server, options().add_root_certificate_der(ca))
}

/// Natively the TLS handshake of a `wss` dial is timed apart: the observer
/// is told (between `connect_start` and `connect_end`, at most the
/// connect's duration) on every attempt, and the trace has a `TLS
/// handshake` event in the attempt's span. A `ws` dial has none, and a
/// failed handshake is a `connect_end` with a TLS error, no `tls_handshake`.
#[tokio::test]
async fn the_tls_handshake_is_timed_for_the_observer_and_the_trace() {
    let capture = capture();
    let (server, trusted) = tls_server().await;
    let steps = Arc::new(Steps::default());
    let with_tls = trusted.auto_upgrade(true).observer(steps.clone());
    let (conn, mut events) = Connection::open(&server.url(""), with_tls).unwrap();
    conn.ws_upgrade("/").unwrap();
    until(&mut events, common::is_upgraded).await;
    server.drop_connections();
    until(&mut events, common::is_upgraded).await;
    conn.shutdown();
    rest(&mut events).await;
    let seen = steps.0.lock().unwrap().clone();
    let names: Vec<(&str, u32)> = seen.iter().map(|(s, a, _)| (s.as_str(), *a)).collect();
    assert_eq!(
        names,
        [
            ("start", 1),
            ("tls", 1),
            ("end", 1),
            ("start", 2),
            ("tls", 2),
            ("end", 2)
        ]
    );
    for attempt in [0, 3] {
        let (tls, connect) = (seen[attempt + 1].2, seen[attempt + 2].2);
        assert!(
            tls > Duration::ZERO && tls <= connect,
            "TLS {tls:?}, connect {connect:?}"
        );
    }
    let id = conn.id();
    let port = server.addr().port();
    let log = capture.log.lock().unwrap().clone();
    for attempt in [1, 2] {
        let span = format!("[wstether: conn={id} host=localhost port={port} attempt={attempt}]");
        assert!(
            log.lines().any(|line| line.starts_with(&format!(
                "DEBUG wstether: TLS handshake attempt={attempt} duration="
            )) && line.ends_with(&span)),
            "no TLS handshake in {span}:\n{log}"
        );
    }

    // ws: no TLS step.
    let plain = TestServer::start().await.unwrap();
    let steps = Arc::new(Steps::default());
    let (conn, mut events) =
        Connection::open(&plain.url(""), options().observer(steps.clone())).unwrap();
    until(&mut events, common::is_up).await;
    conn.shutdown();
    rest(&mut events).await;
    let names = steps.names();
    assert_eq!(names, ["start", "end"]);

    // A refused certificate: no tls_handshake, the connect ends with a TLS error.
    let steps = Arc::new(Steps::default());
    let untrusted = options()
        .retry(wstether::Retry::never())
        .observer(steps.clone());
    let (_conn, mut events) = Connection::open(&server.url(""), untrusted).unwrap();
    rest(&mut events).await;
    let names = steps.names();
    assert_eq!(names, ["start", "end Tls"]);
}
