//! Native benchmarks: wstether against the clients a user would pick
//! instead, in the same run, against the same echo server.
//!
//! ```text
//! cargo bench --bench native              # full run (a few minutes)
//! cargo bench --bench native -- --smoke   # tiny sizes, for CI
//! ```
//!
//! Clients: wstether; tokio-tungstenite written the plain way (split, `send`
//! each message, read each echo); fastwebsockets (split, `write_frame` each
//! message); Node's `ws` (benches/node, when Node.js and its node_modules are
//! there). The echo server is this same binary re-run with `--serve` in its
//! own process (tokio-tungstenite, release build, echoing every message it
//! can read before one flush), so the client is what is measured.
//!
//! Results: a table on stdout and `target/bench-results/native.json`.

// Native only (a tokio runtime, the testkit server): the wasm32
// `--all-targets` check sees an empty crate (`no_main`: none to find).
#![cfg_attr(browser, no_main)]
#![cfg(native)]

#[path = "common/alloc.rs"]
mod alloc;
#[path = "common/deflate_memlevel.rs"]
mod deflate_memlevel;
#[path = "common/echo.rs"]
mod echo;
#[path = "common/fastws.rs"]
mod fastws;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{Bytes, Message};

/// Every allocation of this process is counted: the allocations per
/// message of each client, in the same run as its timing.
#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

/// One client run: its time, and what it allocated in that time.
#[derive(Clone, Copy, Debug)]
struct Measured {
    elapsed: Duration,
    /// `None` for a client in another process (Node).
    alloc: Option<alloc::Snapshot>,
}

/// The measured part of a client run: from [`Window::start`] (after the
/// connection is up and the messages are built) to [`Window::stop`].
struct Window {
    started: Instant,
    alloc: alloc::Snapshot,
}

impl Window {
    fn start() -> Window {
        Window {
            alloc: alloc::snapshot(),
            started: Instant::now(),
        }
    }

    fn stop(self) -> Measured {
        let elapsed = self.started.elapsed();
        Measured {
            elapsed,
            alloc: Some(alloc::snapshot().since(self.alloc)),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Pattern {
    /// Send one, wait for its echo, repeat.
    Sequential,
    /// Send all, receive all echoes.
    Pipelined,
}

#[derive(Clone, Copy, Debug)]
struct Scenario {
    name: &'static str,
    pattern: Pattern,
    size: usize,
    text: bool,
    count: usize,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "rtt-32B-text",
        pattern: Pattern::Sequential,
        size: 32,
        text: true,
        count: 10_000,
    },
    Scenario {
        name: "pipe-32B-text",
        pattern: Pattern::Pipelined,
        size: 32,
        text: true,
        count: 200_000,
    },
    Scenario {
        name: "pipe-1KiB-binary",
        pattern: Pattern::Pipelined,
        size: 1024,
        text: false,
        count: 100_000,
    },
    Scenario {
        name: "pipe-64KiB-binary",
        pattern: Pattern::Pipelined,
        size: 64 << 10,
        text: false,
        count: 3_000,
    },
    Scenario {
        name: "pipe-16MiB-binary",
        pattern: Pattern::Pipelined,
        size: 16 << 20,
        text: false,
        count: 12,
    },
];

const CLIENTS: &[&str] = &[
    "wstether",
    // The same client reading its echoes with `Events::recv_many` (64 per
    // call): only with `--client wstether-recv-many` (for callgrind).
    "wstether-recv-many",
    "tokio-tungstenite",
    "tokio-tungstenite-batched",
    "fastwebsockets",
    "node-ws",
];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--serve") {
        return echo::serve(1);
    }
    // `--deflate-memlevel [CORPUS MEM COUNT]`: the deflater's memory level.
    if let Some(i) = args.iter().position(|a| a == "--deflate-memlevel") {
        return deflate_memlevel::main(&args[i + 1..]);
    }
    // `--deflate-tiny SIZE COUNT off|on|LEVEL`: tiny compressed frames, for callgrind.
    if let Some(i) = args.iter().position(|a| a == "--deflate-tiny") {
        let size = args[i + 1].parse().expect("SIZE");
        let count = args[i + 2].parse().expect("COUNT");
        let compression = match args[i + 3].as_str() {
            "off" => wstether::Compression::off(),
            "on" => wstether::Compression::deflate(),
            level => wstether::Compression::deflate().level(level.parse().expect("a level")),
        };
        return deflate::tiny(size, count, compression);
    }
    // `--deflate`: the permessage-deflate scenario alone.
    if args.iter().any(|a| a == "--deflate") {
        return deflate::run(args.iter().any(|a| a == "--smoke"));
    }
    let smoke = args.iter().any(|a| a == "--smoke");
    // `--only NAME` runs the scenarios whose name contains NAME.
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    // `--client NAME` runs that client alone (for profiling).
    let client_filter = args
        .iter()
        .position(|a| a == "--client")
        .and_then(|i| args.get(i + 1))
        .cloned();
    // `--runs N` and `--count N` (messages per scenario), for profiling.
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(|v| v.parse::<usize>().expect("a number"))
    };
    let runs = flag("--runs").unwrap_or(if smoke { 1 } else { 5 });
    let count = flag("--count");
    let server = EchoServer::start();
    let url = format!("ws://127.0.0.1:{}/", server.port);
    let node = node_client();
    if node.is_none() {
        eprintln!("node-ws: skipped (run `npm ci --prefix benches/node` to include it)");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let mut results = Vec::new();
    for scenario in SCENARIOS
        .iter()
        .filter(|s| only.as_ref().is_none_or(|o| s.name.contains(o.as_str())))
    {
        let mut scenario = *scenario;
        if smoke {
            scenario.count = (scenario.count / 200).max(2);
        }
        if let Some(count) = count {
            scenario.count = count;
        }
        let mut times: Vec<(&str, Vec<Measured>)> =
            CLIENTS.iter().map(|c| (*c, Vec::new())).collect();
        // Clients take turns within each run (A B C D A B C D ...), so a
        // drift in the machine's speed touches them alike.
        for _ in 0..runs {
            for (client, samples) in times.iter_mut() {
                if client_filter.as_ref().is_some_and(|c| c != client) {
                    continue;
                }
                if *client == "wstether-recv-many" && client_filter.is_none() {
                    continue;
                }
                let measured = match *client {
                    "wstether" => Some(spawned(
                        &runtime,
                        wstether_client(url.clone(), scenario, false),
                    )),
                    "wstether-recv-many" => Some(spawned(
                        &runtime,
                        wstether_client(url.clone(), scenario, true),
                    )),
                    "tokio-tungstenite" => {
                        Some(spawned(&runtime, tungstenite_client(url.clone(), scenario)))
                    }
                    "tokio-tungstenite-batched" => Some(spawned(
                        &runtime,
                        tungstenite_batched_client(url.clone(), scenario),
                    )),
                    "fastwebsockets" => Some(spawned(
                        &runtime,
                        fastwebsockets_client(server.port, scenario),
                    )),
                    "node-ws" => node.as_ref().map(|script| run_node(script, &url, scenario)),
                    _ => unreachable!(),
                };
                if let Some(measured) = measured {
                    samples.push(measured);
                }
            }
        }
        // tokio-tungstenite, or the client that ran alone (`--client`).
        let Some(baseline) = std::iter::once(&times[2])
            .chain(&times)
            .find(|(_, samples)| !samples.is_empty())
            .map(|(_, samples)| median(&elapsed(samples)))
        else {
            continue;
        };
        for (client, samples) in &times {
            if samples.is_empty() {
                continue;
            }
            let time = median(&elapsed(samples));
            let per_message = |of: fn(&alloc::Snapshot) -> u64| {
                let mut per: Vec<f64> = samples
                    .iter()
                    .filter_map(|m| m.alloc.as_ref())
                    .map(|a| of(a) as f64 / scenario.count as f64)
                    .collect();
                per.sort_by(f64::total_cmp);
                Some(Spread {
                    median: *per.get(per.len() / 2)?,
                    min: per[0],
                    max: per[per.len() - 1],
                })
            };
            let msgs = scenario.count as f64 / time.as_secs_f64();
            let result = Row {
                scenario: scenario.name,
                client,
                msgs_per_s: msgs,
                mb_per_s: msgs * scenario.size as f64 / 1e6,
                vs_tungstenite: baseline.as_secs_f64() / time.as_secs_f64(),
                median_ms: time.as_secs_f64() * 1e3,
                runs: samples.len(),
                samples_ms: samples
                    .iter()
                    .map(|m| m.elapsed.as_secs_f64() * 1e3)
                    .collect(),
                allocs_per_msg: per_message(|a| a.allocations),
                alloc_bytes_per_msg: per_message(|a| a.bytes),
            };
            let allocs = result
                .allocs_per_msg
                .zip(result.alloc_bytes_per_msg)
                .map_or(
                    "allocations: not counted (another process)".to_owned(),
                    |(n, b)| {
                        format!(
                            "{:.2} allocations, {:.0} B allocated per message",
                            n.median, b.median
                        )
                    },
                );
            println!(
                "{:<20} {:<18} {:>12.0} msg/s {:>9.1} MB/s {:>6.2}x tokio-tungstenite  (median of {} runs, {:.1} ms); {allocs}",
                result.scenario, result.client, result.msgs_per_s, result.mb_per_s, result.vs_tungstenite, result.runs, result.median_ms
            );
            results.push(result);
        }
    }
    write_json(&results, smoke);
    if smoke && only.is_none() {
        // The permessage-deflate scenario builds and runs too.
        deflate::run(true);
    }
}

struct Row {
    scenario: &'static str,
    client: &'static str,
    msgs_per_s: f64,
    mb_per_s: f64,
    vs_tungstenite: f64,
    median_ms: f64,
    runs: usize,
    /// Every run's time, in run order (run i of each client is a pair).
    samples_ms: Vec<f64>,
    /// Allocations (and reallocations) per message in the measured window,
    /// over the runs (`None`: a client in another process).
    allocs_per_msg: Option<Spread>,
    /// Bytes those allocations asked for, per message, over the runs.
    alloc_bytes_per_msg: Option<Spread>,
}

/// A figure over the runs.
#[derive(Clone, Copy)]
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

fn elapsed(samples: &[Measured]) -> Vec<Duration> {
    samples.iter().map(|m| m.elapsed).collect()
}

/// Runs a client as a spawned task, as servers and most apps run their
/// connections. (Inside `block_on` itself, tokio's current-thread scheduler
/// makes one more `epoll_wait` whenever another task wakes the `block_on`
/// future, which taxes every client with a task of its own.)
fn spawned(
    runtime: &tokio::runtime::Runtime,
    client: impl std::future::Future<Output = Measured> + Send + 'static,
) -> Measured {
    runtime.block_on(async { tokio::spawn(client).await.unwrap() })
}

fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn write_json(rows: &[Row], smoke: bool) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-results");
    std::fs::create_dir_all(&dir).unwrap();
    let name = if smoke {
        "native-smoke.json"
    } else {
        "native.json"
    };
    let entries: Vec<String> = rows
        .iter()
        .map(|r| {
            let or_null = |v: Option<Spread>, decimals: usize| {
                v.map_or("null".to_owned(), |v| {
                    format!(
                        "{{\"median\":{:.decimals$},\"min\":{:.decimals$},\"max\":{:.decimals$}}}",
                        v.median, v.min, v.max
                    )
                })
            };
            format!(
                "  {{\"scenario\":\"{}\",\"client\":\"{}\",\"msgs_per_s\":{:.1},\"mb_per_s\":{:.2},\"vs_tungstenite\":{:.3},\"median_ms\":{:.2},\"runs\":{},\"samples_ms\":[{}],\"allocs_per_msg\":{},\"alloc_bytes_per_msg\":{}}}",
                r.scenario, r.client, r.msgs_per_s, r.mb_per_s, r.vs_tungstenite, r.median_ms, r.runs,
                r.samples_ms.iter().map(|m| format!("{m:.3}")).collect::<Vec<_>>().join(","),
                or_null(r.allocs_per_msg, 3), or_null(r.alloc_bytes_per_msg, 1)
            )
        })
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, format!("[\n{}\n]\n", entries.join(",\n"))).unwrap();
    println!("results: {}", path.display());
}

fn payload(scenario: Scenario, i: usize) -> Vec<u8> {
    let mut data = format!("{i} ").into_bytes();
    data.resize(scenario.size.max(data.len()), b'x');
    data
}

// ---- the echo server ------------------------------------------------------

struct EchoServer {
    port: u16,
    _child: Child,
}

impl EchoServer {
    fn start() -> EchoServer {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .arg("--serve")
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
        EchoServer {
            port,
            _child: child,
        }
    }
}

// ---- clients ----------------------------------------------------------------

/// `many`: the echoes are read with `Events::recv_many`, 64 per call.
async fn wstether_client(url: String, scenario: Scenario, many: bool) -> Measured {
    use wstether::{Event, Frame, Options};
    let options = Options::default()
        .no_keepalive()
        .max_message_size(wstether::MAX_MESSAGE_SIZE_CEILING)
        .max_frame_size(wstether::MAX_MESSAGE_SIZE_CEILING)
        // One call may send at most the queue's size: room for the largest message.
        .send_queue_bytes((4 << 20).max(scenario.size));
    let (conn, mut events, stream) = wstether::connect(&url, options).await.unwrap();
    let frames: Vec<Frame> = (0..scenario.count)
        .map(|i| {
            let data = payload(scenario, i);
            if scenario.text {
                Frame::Text(String::from_utf8(data).unwrap().into())
            } else {
                Frame::Binary(data.into())
            }
        })
        .collect();
    let window = Window::start();
    match scenario.pattern {
        Pattern::Sequential => {
            for frame in frames {
                conn.ws_send(stream, frame).unwrap();
                let Some(Event::Frame { .. }) = events.recv().await else {
                    panic!("echo expected")
                };
            }
        }
        Pattern::Pipelined => {
            let sender = conn.clone();
            let send_all = async move {
                for frame in frames {
                    sender.send(stream, frame).await.unwrap();
                }
            };
            let receive_all = async {
                if many {
                    let mut batch = Vec::with_capacity(64);
                    let mut left = scenario.count;
                    while left > 0 {
                        let n = events.recv_many(&mut batch, left.min(64)).await;
                        assert!(n > 0, "echoes expected");
                        for event in batch.drain(..) {
                            let Event::Frame { .. } = event else {
                                panic!("echo expected")
                            };
                        }
                        left -= n;
                    }
                    return;
                }
                for _ in 0..scenario.count {
                    let Some(Event::Frame { .. }) = events.recv().await else {
                        panic!("echo expected")
                    };
                }
            };
            futures::join!(send_all, receive_all);
        }
    }
    let measured = window.stop();
    conn.shutdown();
    while events.recv().await.is_some() {}
    measured
}

type TungsteniteSocket = tokio_tungstenite::WebSocketStream<TcpStream>;

/// Connects tokio-tungstenite the plain way and prepares the messages.
async fn tungstenite_setup(
    url: &str,
    scenario: Scenario,
) -> (
    futures::stream::SplitSink<TungsteniteSocket, Message>,
    futures::stream::SplitStream<TungsteniteSocket>,
    Vec<Message>,
) {
    let tcp = TcpStream::connect(url.trim_start_matches("ws://").trim_end_matches('/'))
        .await
        .unwrap();
    tcp.set_nodelay(true).unwrap();
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(None)
        .max_frame_size(None);
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, tcp, Some(config))
        .await
        .unwrap();
    let (sink, stream) = ws.split();
    let messages: Vec<Message> = (0..scenario.count)
        .map(|i| {
            let data = payload(scenario, i);
            if scenario.text {
                Message::Text(String::from_utf8(data).unwrap().into())
            } else {
                Message::Binary(Bytes::from(data))
            }
        })
        .collect();
    (sink, stream, messages)
}

async fn tungstenite_client(url: String, scenario: Scenario) -> Measured {
    let (mut sink, mut stream, messages) = tungstenite_setup(&url, scenario).await;
    let window = Window::start();
    match scenario.pattern {
        Pattern::Sequential => {
            for message in messages {
                sink.send(message).await.unwrap();
                stream.next().await.unwrap().unwrap();
            }
        }
        Pattern::Pipelined => {
            let send_all = async {
                for message in messages {
                    sink.send(message).await.unwrap();
                }
            };
            let receive_all = async {
                for _ in 0..scenario.count {
                    stream.next().await.unwrap().unwrap();
                }
            };
            futures::join!(send_all, receive_all);
        }
    }
    let measured = window.stop();
    let _ = sink.close().await;
    measured
}

/// tokio-tungstenite tuned by hand: `feed` 64 messages, then one flush (the
/// ceiling of what the library can do with batching written into the app).
async fn tungstenite_batched_client(url: String, scenario: Scenario) -> Measured {
    if scenario.pattern == Pattern::Sequential {
        // Nothing to batch in a round trip: the plain client is the same.
        return tungstenite_client(url, scenario).await;
    }
    let (mut sink, mut stream, messages) = tungstenite_setup(&url, scenario).await;
    let window = Window::start();
    let send_all = async {
        for chunk in messages.chunks(64) {
            for message in chunk {
                sink.feed(message.clone()).await.unwrap();
            }
            sink.flush().await.unwrap();
        }
    };
    let receive_all = async {
        for _ in 0..scenario.count {
            stream.next().await.unwrap().unwrap();
        }
    };
    futures::join!(send_all, receive_all);
    let measured = window.stop();
    let _ = sink.close().await;
    measured
}

async fn fastwebsockets_client(port: u16, scenario: Scenario) -> Measured {
    use fastwebsockets::{Frame, OpCode, Payload, Role, WebSocket};
    let tcp = fastws::connect(port).await;
    let mut ws = WebSocket::after_handshake(tcp, Role::Client);
    ws.set_max_message_size(usize::MAX);
    ws.set_auto_pong(false);
    let (mut reader, mut writer) = ws.split(tokio::io::split);
    let payloads: Vec<Vec<u8>> = (0..scenario.count).map(|i| payload(scenario, i)).collect();
    let opcode = if scenario.text {
        OpCode::Text
    } else {
        OpCode::Binary
    };
    let mut ignore = |_: Frame<'_>| async { Ok::<(), std::io::Error>(()) };
    let window = Window::start();
    match scenario.pattern {
        Pattern::Sequential => {
            for data in payloads {
                writer
                    .write_frame(Frame::new(true, opcode, None, Payload::Owned(data)))
                    .await
                    .unwrap();
                reader.read_frame(&mut ignore).await.unwrap();
            }
        }
        Pattern::Pipelined => {
            let send_all = async {
                for data in payloads {
                    writer
                        .write_frame(Frame::new(true, opcode, None, Payload::Owned(data)))
                        .await
                        .unwrap();
                }
            };
            let receive_all = async {
                for _ in 0..scenario.count {
                    reader.read_frame(&mut ignore).await.unwrap();
                }
            };
            futures::join!(send_all, receive_all);
        }
    }
    let measured = window.stop();
    let _ = writer.write_frame(Frame::close(1000, b"")).await;
    measured
}

/// The Node.js client script, if Node and the `ws` package are installed.
fn node_client() -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/node");
    let has_node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    (has_node && dir.join("node_modules/ws").exists()).then(|| dir.join("client.mjs"))
}

fn run_node(script: &std::path::Path, url: &str, scenario: Scenario) -> Measured {
    let output = Command::new("node")
        .arg(script)
        .arg(url)
        .arg(if scenario.pattern == Pattern::Sequential {
            "sequential"
        } else {
            "pipelined"
        })
        .arg(scenario.count.to_string())
        .arg(scenario.size.to_string())
        .arg(if scenario.text { "text" } else { "binary" })
        .output()
        .expect("run node");
    assert!(
        output.status.success(),
        "node client failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let ms: f64 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("node prints milliseconds");
    Measured {
        elapsed: Duration::from_secs_f64(ms / 1e3),
        alloc: None,
    }
}

// ---- permessage-deflate -------------------------------------------------------

/// JSON-like 1 KiB text messages, pipelined, against Node `ws`'s echo server
/// with perMessageDeflate (tests/deflate_peers/server.mjs): wstether with
/// compression off and on (levels 1 and 6), and Node `ws`'s own client with
/// perMessageDeflate. Reports msg/s and the wire bytes per message each
/// way, as the server counted them on its socket.
mod deflate {
    use super::*;
    use wstether::{Compression, Event, Frame, Options};

    const COUNT: usize = 20_000;
    const SIZE: usize = 1024;

    /// The same text as benches/node/client.mjs's `json`.
    pub fn json(i: usize) -> String {
        let mut s = String::from("[");
        let mut k = i * 10;
        while s.len() < SIZE {
            s.push_str(&format!(
                r#"{{"id":{k},"user":"user-{k}","active":{},"score":{},"tags":["alpha","beta"]}},"#,
                k % 3 == 0,
                k * 37 % 1000
            ));
            k += 1;
        }
        s.push_str("{}]");
        s
    }

    struct NodeServer {
        port: u16,
        _child: Child,
    }

    fn node_server() -> Option<NodeServer> {
        node_client()?;
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut child = Command::new("node")
            .arg(root.join("tests/deflate_peers/server.mjs"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .ok()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take()?)
            .read_line(&mut line)
            .ok()?;
        Some(NodeServer {
            port: line.trim().parse().ok()?,
            _child: child,
        })
    }

    /// (elapsed, bytes the server read, bytes it wrote)
    async fn wstether(url: &str, count: usize, compression: Compression) -> (Duration, u64, u64) {
        let options = Options::default()
            .no_keepalive()
            .max_message_size(wstether::MAX_MESSAGE_SIZE_CEILING)
            .max_frame_size(wstether::MAX_MESSAGE_SIZE_CEILING)
            .send_queue_bytes(4 << 20)
            .compression(compression);
        let (conn, mut events, stream) = wstether::connect(url, options).await.unwrap();
        let frames: Vec<Frame> = (0..count).map(|i| Frame::text(json(i))).collect();
        let started = Instant::now();
        let sender = conn.clone();
        let send_all = async move {
            for frame in frames {
                sender.send(stream, frame).await.unwrap();
            }
        };
        let receive_all = async {
            for _ in 0..count {
                let Some(Event::Frame { .. }) = events.recv().await else {
                    panic!("echo expected")
                };
            }
        };
        futures::join!(send_all, receive_all);
        let elapsed = started.elapsed();
        conn.send(stream, Frame::Text("stats?".into()))
            .await
            .unwrap();
        let Some(Event::Frame {
            frame: Frame::Text(stats),
            ..
        }) = events.recv().await
        else {
            panic!("stats expected")
        };
        conn.shutdown();
        while events.recv().await.is_some() {}
        let (read, written) = parse_stats(&stats);
        (elapsed, read, written)
    }

    /// `--deflate-tiny SIZE COUNT off|on|LEVEL`: COUNT text messages of
    /// SIZE bytes, pipelined, against Node `ws`'s deflate echo server, with
    /// compression off, on (the defaults) or on at LEVEL; prints the time. Meant for
    /// `valgrind --tool=callgrind` (the server is another process, not
    /// traced): instructions per message are the difference between two
    /// counts divided by the messages between them.
    pub fn tiny(size: usize, count: usize, compression: Compression) {
        let server = node_server().expect("node and `npm ci --prefix benches/node`");
        let url = format!("ws://127.0.0.1:{}/", server.port);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let label = format!("{compression:?}");
        let elapsed = runtime.block_on(async {
            tokio::spawn(async move {
                let options = Options::default()
                    .no_keepalive()
                    .send_queue_bytes(4 << 20)
                    .compression(compression);
                let (conn, mut events, stream) = wstether::connect(&url, options).await.unwrap();
                let text = "x".repeat(size);
                let frames: Vec<Frame> = (0..count).map(|_| Frame::text(text.clone())).collect();
                let started = Instant::now();
                let sender = conn.clone();
                let send_all = async move {
                    for frame in frames {
                        sender.send(stream, frame).await.unwrap();
                    }
                };
                let receive_all = async {
                    for _ in 0..count {
                        let Some(Event::Frame { .. }) = events.recv().await else {
                            panic!("echo expected")
                        };
                    }
                };
                futures::join!(send_all, receive_all);
                let elapsed = started.elapsed();
                conn.shutdown();
                while events.recv().await.is_some() {}
                elapsed
            })
            .await
            .unwrap()
        });
        let (user, system) = process_cpu();
        println!(
            "deflate-tiny: {count} text messages of {size} B, {label}: {:.1} ms; \
             process CPU: user {:.1} ms, system {:.1} ms",
            elapsed.as_secs_f64() * 1e3,
            user.as_secs_f64() * 1e3,
            system.as_secs_f64() * 1e3
        );
    }

    /// This process's user and system CPU time (all threads), from
    /// getrusage: for CPU per message as two runs' difference, next to
    /// callgrind's instructions (which count a `rep stosb` memset byte by
    /// byte, and no time in the kernel).
    fn process_cpu() -> (Duration, Duration) {
        // SAFETY: getrusage fills the zeroed struct it is given.
        let usage = unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut usage), 0);
            usage
        };
        let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
        (time(usage.ru_utime), time(usage.ru_stime))
    }

    fn parse_stats(stats: &str) -> (u64, u64) {
        let (read, written) = stats.trim().split_once(' ').expect("two numbers");
        (read.parse().unwrap(), written.parse().unwrap())
    }

    fn node(url: &str, count: usize) -> (Duration, u64, u64) {
        let script = node_client().expect("node");
        let output = Command::new("node")
            .arg(script)
            .arg(url)
            .arg("pipelined")
            .arg(count.to_string())
            .arg(SIZE.to_string())
            .arg("json")
            .arg("deflate")
            .output()
            .expect("run node");
        assert!(output.status.success(), "node client failed");
        let out = String::from_utf8_lossy(&output.stdout);
        let mut lines = out.lines();
        let ms: f64 = lines.next().unwrap().trim().parse().unwrap();
        let (read, written) = parse_stats(lines.next().expect("stats line"));
        (Duration::from_secs_f64(ms / 1e3), read, written)
    }

    pub fn run(smoke: bool) {
        let Some(server) = node_server() else {
            eprintln!("deflate: skipped (needs node and `npm ci --prefix benches/node`)");
            return;
        };
        let url = format!("ws://127.0.0.1:{}/", server.port);
        let count = if smoke { 200 } else { COUNT };
        let runs = if smoke { 1 } else { 5 };
        let payload: usize = (0..count).map(|i| json(i).len()).sum();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let clients: [(&str, Option<Compression>); 4] = [
            ("wstether, compression off", Some(Compression::off())),
            (
                "wstether, deflate level 1",
                Some(Compression::deflate().level(1)),
            ),
            // The default level is 6.
            (
                "wstether, deflate level 6 (default)",
                Some(Compression::deflate()),
            ),
            ("node-ws, perMessageDeflate level 1", None),
        ];
        let mut samples: Vec<Vec<(Duration, u64, u64)>> = vec![Vec::new(); clients.len()];
        for _ in 0..runs {
            for (i, (_, compression)) in clients.iter().enumerate() {
                let sample = match compression {
                    Some(c) => runtime.block_on(wstether(&url, count, c.clone())),
                    None => node(&url, count),
                };
                samples[i].push(sample);
            }
        }
        println!(
            "deflate: {count} JSON-like messages of ~{} B, pipelined, echoed by Node ws \
             (perMessageDeflate, threshold 0); median of {runs} runs",
            payload / count
        );
        println!(
            "{:<36} {:>10} {:>14} {:>14}",
            "client", "msg/s", "B/msg sent", "B/msg received"
        );
        for ((name, _), runs) in clients.iter().zip(&mut samples) {
            runs.sort_by_key(|s| s.0);
            let (time, read, written) = runs[runs.len() / 2];
            println!(
                "{:<36} {:>10.0} {:>14.1} {:>14.1}",
                name,
                count as f64 / time.as_secs_f64(),
                read as f64 / count as f64,
                written as f64 / count as f64
            );
        }
    }
}
