//! wstether's wasm build against the raw JS `WebSocket`, in the same page,
//! against the same echo server. Prints one `BENCH {json}` line per
//! scenario and client; `.ci/bench-browser` runs it over several page
//! loads and takes the medians.
#![cfg(all(target_arch = "wasm32", target_os = "unknown"))]

use futures::StreamExt;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;
use web_time::Instant;
use wstether::{Event, Frame, Options};

wasm_bindgen_test_configure!(run_in_browser);

const URL: &str = env!("WSTETHER_BENCH_URL");

struct Scenario {
    name: &'static str,
    pipelined: bool,
    size: usize,
    text: bool,
    count: usize,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "rtt-32B-text",
        pipelined: false,
        size: 32,
        text: true,
        count: 5_000,
    },
    Scenario {
        name: "pipe-1KiB-binary",
        pipelined: true,
        size: 1024,
        text: false,
        count: 50_000,
    },
    Scenario {
        name: "pipe-64KiB-binary",
        pipelined: true,
        size: 64 << 10,
        text: false,
        count: 2_000,
    },
];

/// Whether a `WSTETHER_BENCH_SMOKE` value asks for smoke sizes. The script
/// always sets the variable, to `1` or to nothing: set-but-empty (and `0`)
/// means the full counts.
fn is_smoke(value: Option<&str>) -> bool {
    value.is_some_and(|v| !v.is_empty() && v != "0")
}

fn count(scenario: &Scenario) -> usize {
    if is_smoke(option_env!("WSTETHER_BENCH_SMOKE")) {
        (scenario.count / 100).max(2)
    } else {
        scenario.count
    }
}

#[wasm_bindgen_test]
fn an_empty_smoke_variable_means_full_counts() {
    assert!(!is_smoke(None));
    assert!(!is_smoke(Some("")));
    assert!(!is_smoke(Some("0")));
    assert!(is_smoke(Some("1")));
}

fn payload(size: usize, i: usize) -> Vec<u8> {
    let mut data = format!("{i} ").into_bytes();
    data.resize(size.max(data.len()), b'x');
    data
}

async fn wstether_run(scenario: &Scenario) -> f64 {
    let n = count(scenario);
    let options = Options::default()
        .send_queue_bytes(8 << 20)
        .max_message_size(None)
        .max_frame_size(None);
    let (conn, mut events, stream) = wstether::connect(URL, options).await.expect("connect");
    let frames: Vec<Frame> = (0..n)
        .map(|i| {
            let data = payload(scenario.size, i);
            if scenario.text {
                Frame::Text(String::from_utf8(data).unwrap())
            } else {
                Frame::Binary(data.into())
            }
        })
        .collect();
    let started = Instant::now();
    if scenario.pipelined {
        let sender = conn.clone();
        let send_all = async move {
            for frame in frames {
                sender.send(stream, frame).await.expect("send");
            }
        };
        let receive_all = async {
            for _ in 0..n {
                let Some(Event::Frame { .. }) = events.next().await else {
                    panic!("echo expected")
                };
            }
        };
        futures::join!(send_all, receive_all);
    } else {
        for frame in frames {
            conn.ws_send(stream, frame).expect("send");
            let Some(Event::Frame { .. }) = events.next().await else {
                panic!("echo expected")
            };
        }
    }
    let elapsed = started.elapsed().as_secs_f64() * 1e3;
    conn.shutdown();
    while events.next().await.is_some() {}
    elapsed
}

/// The same scenario written in plain JavaScript on the browser's WebSocket.
async fn raw_js_run(scenario: &Scenario) -> f64 {
    let body = r#"
        return new Promise((resolve, reject) => {
          const head = (i) => new TextEncoder().encode(`${i} `);
          const messages = [];
          for (let i = 0; i < count; i++) {
            const data = new Uint8Array(Math.max(size, head(i).length)).fill(120);
            data.set(head(i));
            messages.push(text ? new TextDecoder().decode(data) : data.buffer);
          }
          const ws = new WebSocket(url);
          ws.binaryType = 'arraybuffer';
          ws.onerror = () => reject(new Error('raw websocket error'));
          ws.onopen = () => {
            let received = 0;
            const started = performance.now();
            const done = () => { const ms = performance.now() - started; ws.close(1000); resolve(ms); };
            if (pipelined) {
              ws.onmessage = () => { received += 1; if (received === count) done(); };
              for (const m of messages) ws.send(m);
            } else {
              ws.onmessage = () => {
                received += 1;
                if (received === count) return done();
                ws.send(messages[received]);
              };
              ws.send(messages[0]);
            }
          };
        });
    "#;
    let function = js_sys::Function::new_with_args("url, pipelined, count, size, text", body);
    let args = js_sys::Array::of5(
        &URL.into(),
        &scenario.pipelined.into(),
        &(count(scenario) as f64).into(),
        &(scenario.size as f64).into(),
        &scenario.text.into(),
    );
    let promise = function
        .apply(&wasm_bindgen::JsValue::NULL, &args)
        .expect("call the raw client");
    let ms = JsFuture::from(promise.unchecked_into::<js_sys::Promise>())
        .await
        .expect("raw client");
    ms.as_f64().expect("milliseconds")
}

#[wasm_bindgen_test]
async fn bench() {
    for scenario in SCENARIOS {
        // Which goes first is drawn per page load, so warm-up favours neither.
        let (wstether_ms, raw_ms) = if js_sys::Math::random() < 0.5 {
            let w = wstether_run(scenario).await;
            (w, raw_js_run(scenario).await)
        } else {
            let r = raw_js_run(scenario).await;
            (wstether_run(scenario).await, r)
        };
        let line = format!(
            "BENCH {{\"scenario\":\"{}\",\"count\":{},\"size\":{},\"wstether_ms\":{wstether_ms:.3},\"raw_js_ms\":{raw_ms:.3}}}",
            scenario.name,
            count(scenario),
            scenario.size
        );
        console_log!("{line}");
    }
}
