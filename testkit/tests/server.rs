//! Tests of the testkit server itself, with a plain tokio-tungstenite client.
#![cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Response;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error, Message};
use tokio_tungstenite::{client_async, WebSocketStream};
use wstether_testkit::TestServer;

type Ws = WebSocketStream<TcpStream>;

/// A generous bound so a broken test fails instead of hanging.
const LIMIT: Duration = Duration::from_secs(10);

async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    timeout(LIMIT, f).await.expect("timed out")
}

async fn connect_with(
    server: &TestServer,
    path: &str,
    headers: &[(&'static str, &str)],
) -> Result<(Ws, Response), Error> {
    let mut req = server.url(path).into_client_request()?;
    for (n, v) in headers {
        req.headers_mut().insert(*n, v.parse().unwrap());
    }
    let tcp = TcpStream::connect(server.addr()).await?;
    bounded(client_async(req, tcp)).await
}

async fn connect(server: &TestServer, path: &str) -> Ws {
    connect_with(server, path, &[]).await.expect("connect").0
}

async fn next(ws: &mut Ws) -> Message {
    bounded(ws.next())
        .await
        .expect("stream ended")
        .expect("read error")
}

/// The connection must end without a close frame.
async fn assert_abrupt_end(ws: &mut Ws) {
    loop {
        match bounded(ws.next()).await {
            None | Some(Err(_)) => return,
            Some(Ok(Message::Close(f))) => panic!("expected an abrupt end, got close {f:?}"),
            Some(Ok(_)) => {}
        }
    }
}

/// Expects a close frame with `code` and `reason`, then the end of the stream.
async fn assert_closed_with(ws: &mut Ws, code: u16, reason: &str) {
    match next(ws).await {
        Message::Close(Some(f)) => {
            assert_eq!(f.code, CloseCode::from(code));
            assert_eq!(f.reason.as_str(), reason);
        }
        other => panic!("expected close, got {other:?}"),
    }
    // tungstenite answers the close; the server then drops the TCP.
    assert!(bounded(ws.next()).await.is_none());
}

/// A plain HTTP request; returns the whole response as text.
async fn http(server: &TestServer, method: &str, path: &str) -> String {
    let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
    let req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    bounded(tcp.read_to_end(&mut out)).await.unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn echoes_text_and_binary() {
    let server = TestServer::start().await.unwrap();
    let mut ws = connect(&server, "/").await;
    ws.send(Message::text("hello")).await.unwrap();
    assert_eq!(next(&mut ws).await, Message::text("hello"));
    ws.send(Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .unwrap();
    assert_eq!(next(&mut ws).await, Message::binary(vec![0u8, 1, 2, 255]));
    assert_eq!(server.frames_received(), 2);
    ws.close(None).await.unwrap();
    assert_eq!(next(&mut ws).await, Message::Close(None));
    assert!(bounded(ws.next()).await.is_none());
    bounded(server.wait_for_live_connections(0)).await;
}

#[tokio::test]
async fn chooses_first_offered_protocol() {
    let server = TestServer::start().await.unwrap();
    let proto = [("sec-websocket-protocol", "chat, superchat")];
    let (_ws, resp) = connect_with(&server, "/", &proto).await.unwrap();
    assert_eq!(resp.headers()["sec-websocket-protocol"], "chat");
    assert_eq!(
        server.requests()[0].offered_protocols,
        vec!["chat".to_owned(), "superchat".to_owned()]
    );
    // None offered: none chosen.
    let (_ws, resp) = connect_with(&server, "/", &[]).await.unwrap();
    assert!(resp.headers().get("sec-websocket-protocol").is_none());
}

#[tokio::test]
async fn forced_protocol() {
    let server = TestServer::start().await.unwrap();
    let proto = [("sec-websocket-protocol", "chat, superchat")];
    let (_ws, resp) = connect_with(&server, "/?protocol=superchat", &proto)
        .await
        .unwrap();
    assert_eq!(resp.headers()["sec-websocket-protocol"], "superchat");
    // A protocol the client did not offer: tungstenite's client refuses it.
    let err = connect_with(&server, "/?protocol=other", &proto)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "{err:?}");
    // `protocol=` chooses none although one was offered: refused too.
    let err = connect_with(&server, "/?protocol=", &proto)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "{err:?}");
}

#[tokio::test]
async fn rejects_with_status_and_headers() {
    let server = TestServer::start().await.unwrap();
    let err = connect_with(&server, "/?reject=403&header=x-extra:yes", &[])
        .await
        .unwrap_err();
    let Error::Http(resp) = err else {
        panic!("expected Error::Http, got {err:?}")
    };
    assert_eq!(resp.status(), 403);
    assert_eq!(resp.headers()["x-testkit-reason"], "rejected");
    assert_eq!(resp.headers()["x-extra"], "yes");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn bad_query_is_400() {
    let server = TestServer::start().await.unwrap();
    let err = connect_with(&server, "/?send=lots", &[]).await.unwrap_err();
    let Error::Http(resp) = err else {
        panic!("expected Error::Http, got {err:?}")
    };
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn extra_header_on_101() {
    let server = TestServer::start().await.unwrap();
    let (_ws, resp) = connect_with(&server, "/?header=X-Hello:%20world", &[])
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-hello"], "world");
}

#[tokio::test]
async fn closes_with_code_and_reason() {
    let server = TestServer::start().await.unwrap();
    let mut ws = connect(&server, "/?close=4001&reason=bye%20now").await;
    assert_closed_with(&mut ws, 4001, "bye now").await;

    // after=N: echo N frames first.
    let mut ws = connect(&server, "/?close=1001&after=2").await;
    for i in 0..2 {
        ws.send(Message::text(format!("m{i}"))).await.unwrap();
        assert_eq!(next(&mut ws).await, Message::text(format!("m{i}")));
    }
    assert_closed_with(&mut ws, 1001, "").await;
}

#[tokio::test]
async fn sends_a_burst_in_order() {
    let server = TestServer::start().await.unwrap();
    let mut ws = connect(&server, "/?send=50&size=10").await;
    for i in 0..50 {
        let Message::Text(t) = next(&mut ws).await else {
            panic!("expected text")
        };
        assert_eq!(t.len(), 10);
        assert!(t.starts_with(&format!("{i} ")), "{t:?}");
        assert!(t.ends_with('x'));
    }
    let mut ws = connect(&server, "/?send=3&kind=binary&size=4").await;
    for i in 0..3u8 {
        assert_eq!(
            next(&mut ws).await,
            Message::binary(vec![b'0' + i, b' ', b'x', b'x'])
        );
    }
}

#[tokio::test]
async fn records_pings_and_answers_them() {
    let server = TestServer::start().await.unwrap();
    let mut ws = connect(&server, "/").await;
    ws.send(Message::Ping("abc".into())).await.unwrap();
    assert_eq!(next(&mut ws).await, Message::Pong("abc".into()));
    bounded(server.wait_for_pings(1)).await;
    assert_eq!(server.pings(), vec![b"abc".to_vec()]);
}

#[tokio::test]
async fn pings_periodically() {
    let server = TestServer::start().await.unwrap();
    let mut ws = connect(&server, "/?ping_every=10").await;
    for _ in 0..2 {
        assert!(matches!(next(&mut ws).await, Message::Ping(_)));
    }
}

#[tokio::test]
async fn silent_peer_does_not_answer_pings() {
    let server = TestServer::start().await.unwrap();
    let mut ws = connect(&server, "/?silent=1").await;
    ws.send(Message::Ping("hello?".into())).await.unwrap();
    // Expected outcome: nothing at all within the window.
    assert!(timeout(Duration::from_millis(300), ws.next())
        .await
        .is_err());
    assert!(server.pings().is_empty());
    assert_eq!(server.live_connections(), 1);
    // Leaving frees the server side.
    drop(ws);
    bounded(server.wait_for_live_connections(0)).await;
}

#[tokio::test]
async fn drops_after_n_frames() {
    let server = TestServer::start().await.unwrap();
    let mut ws = connect(&server, "/?drop_after=2").await;
    for i in 0..2 {
        ws.send(Message::text(format!("m{i}"))).await.unwrap();
        assert_eq!(next(&mut ws).await, Message::text(format!("m{i}")));
    }
    assert_abrupt_end(&mut ws).await;
}

#[tokio::test]
async fn drop_connections_is_abrupt_and_keeps_listening() {
    let server = TestServer::start().await.unwrap();
    let mut a = connect(&server, "/").await;
    let mut b = connect(&server, "/?silent=1").await;
    server.drop_connections();
    assert_abrupt_end(&mut a).await;
    assert_abrupt_end(&mut b).await;
    bounded(server.wait_for_live_connections(0)).await;
    let mut c = connect(&server, "/").await;
    c.send(Message::text("still here")).await.unwrap();
    assert_eq!(next(&mut c).await, Message::text("still here"));
}

#[tokio::test]
async fn close_connections_completes_handshake() {
    let server = TestServer::start().await.unwrap();
    let mut ws = connect(&server, "/").await;
    let reader = tokio::spawn(async move {
        assert_closed_with(&mut ws, 1001, "going away").await;
    });
    bounded(server.close_connections(1001, "going away")).await;
    bounded(reader).await.unwrap();
    bounded(server.wait_for_live_connections(0)).await;
}

#[tokio::test]
async fn stop_refuses_then_restart_accepts_on_same_port() {
    let server = TestServer::start().await.unwrap();
    let addr = server.addr();
    let mut ws = connect(&server, "/").await;
    bounded(server.stop()).await;
    assert_abrupt_end(&mut ws).await;
    assert_eq!(server.live_connections(), 0);
    let err = TcpStream::connect(addr).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);

    server.restart().await.unwrap();
    assert_eq!(server.addr(), addr);
    let mut ws = connect(&server, "/").await;
    ws.send(Message::text("again")).await.unwrap();
    assert_eq!(next(&mut ws).await, Message::text("again"));
    assert_eq!(server.accepted_connections(), 2);
}

#[tokio::test]
async fn control_stats_and_drop() {
    let server = TestServer::start().await.unwrap();
    let mut ws = connect(&server, "/").await;
    ws.send(Message::text("one")).await.unwrap();
    assert_eq!(next(&mut ws).await, Message::text("one"));

    let resp = http(&server, "GET", "/_control/stats").await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("Access-Control-Allow-Origin: *"), "{resp}");
    assert!(resp.contains("Cache-Control: no-store"), "{resp}");
    assert!(resp.contains("application/json"), "{resp}");
    let body = resp.split("\r\n\r\n").nth(1).unwrap();
    assert_eq!(
        body,
        r#"{"accepted":2,"live":2,"requests":1,"pings":0,"frames":1}"#
    );

    server.set_token("t-0_k\"");
    let resp = http(&server, "GET", "/_control/stats").await;
    let body = resp.split("\r\n\r\n").nth(1).unwrap();
    assert!(body.ends_with(r#","token":"t-0_k\""}"#), "{body}");

    let resp = http(&server, "GET", "/_control/drop").await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert_abrupt_end(&mut ws).await;
}

#[tokio::test]
async fn control_close_and_restart() {
    let server = TestServer::start().await.unwrap();
    let mut ws = connect(&server, "/").await;
    let resp = http(&server, "GET", "/_control/close?code=4000&reason=bye").await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert_closed_with(&mut ws, 4000, "bye").await;

    let mut ws = connect(&server, "/").await;
    let resp = http(&server, "GET", "/_control/restart?down_ms=0").await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert_abrupt_end(&mut ws).await;
    // Accepts again on the same port once restarted (3 accepts so far).
    let mut ws = loop {
        match connect_with(&server, "/", &[]).await {
            Ok((ws, _)) => break ws,
            Err(_) => tokio::task::yield_now().await,
        }
    };
    ws.send(Message::text("back")).await.unwrap();
    assert_eq!(next(&mut ws).await, Message::text("back"));
}

#[tokio::test]
async fn control_cors_and_404() {
    let server = TestServer::start().await.unwrap();
    let resp = http(&server, "OPTIONS", "/_control/stats").await;
    assert!(resp.starts_with("HTTP/1.1 204"), "{resp}");
    assert!(resp.contains("Access-Control-Allow-Origin: *"), "{resp}");
    assert!(resp.contains("Access-Control-Allow-Methods:"), "{resp}");
    let resp = http(&server, "GET", "/elsewhere").await;
    assert!(resp.starts_with("HTTP/1.1 404"), "{resp}");
    assert!(resp.contains("Access-Control-Allow-Origin: *"), "{resp}");
}

#[tokio::test]
async fn garbage_is_a_handshake_error() {
    let server = TestServer::start().await.unwrap();
    let err = connect_with(&server, "/?garbage=1", &[]).await.unwrap_err();
    assert!(!matches!(err, Error::Http(_)), "{err:?}");
}

#[tokio::test]
async fn no_upgrade_never_answers() {
    let server = TestServer::start().await.unwrap();
    let req = server.url("/?no_upgrade=1");
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    let attempt = timeout(Duration::from_millis(300), client_async(req, tcp)).await;
    assert!(attempt.is_err(), "the upgrade must never be answered");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn delays_the_answer() {
    let server = TestServer::start().await.unwrap();
    let start = std::time::Instant::now();
    let _ws = connect(&server, "/?delay_ms=150").await;
    assert!(start.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn bad_frames_are_read_errors() {
    let server = TestServer::start().await.unwrap();
    for kind in ["utf8", "fragmented_ping", "reserved_opcode", "oversize"] {
        let mut ws = connect(&server, &format!("/?bad_frame={kind}")).await;
        match bounded(ws.next()).await {
            Some(Err(_)) => {}
            other => panic!("{kind}: expected a read error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn records_requests_with_headers() {
    let server = TestServer::start().await.unwrap();
    let _ws = connect_with(&server, "/chat?room=1", &[("x-custom", "Value 1")])
        .await
        .unwrap();
    bounded(server.wait_for_requests(1)).await;
    bounded(server.wait_for_connections(1)).await;
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].path, "/chat?room=1");
    assert_eq!(reqs[0].header("x-custom"), Some("Value 1"));
    assert!(reqs[0]
        .headers
        .iter()
        .any(|(n, v)| n == "upgrade" && v == "websocket"));
    assert!(reqs[0].headers.iter().all(|(n, _)| *n == n.to_lowercase()));
}

#[tokio::test]
async fn binary_prints_address_and_exits_when_stdin_closes() {
    use std::process::Stdio;
    use tokio::io::AsyncBufReadExt;

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_wstether-testkit"))
        .args(["--port", "0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = bounded(lines.next_line()).await.unwrap().unwrap();
    let addr = line
        .strip_prefix("LISTENING ws://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    assert!(addr.starts_with("127.0.0.1:"), "{line}");

    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /_control/stats HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    bounded(tcp.read_to_string(&mut out)).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.ends_with(r#"{"accepted":1,"live":1,"requests":0,"pings":0,"frames":0}"#));

    drop(child.stdin.take());
    let status = bounded(child.wait()).await.unwrap();
    assert!(status.success(), "{status:?}");
}

/// `built_binary` (for tests in other packages, which have no
/// `CARGO_BIN_EXE_*`) finds the binary Cargo built for this test.
#[test]
fn built_binary_is_the_binary_cargo_built() {
    let found = wstether_testkit::built_binary().unwrap();
    let cargo_built = std::path::Path::new(env!("CARGO_BIN_EXE_wstether-testkit"));
    assert_eq!(
        found.canonicalize().unwrap(),
        cargo_built.canonicalize().unwrap()
    );
}

#[test]
fn binary_refuses_non_loopback_hosts() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wstether-testkit"))
        .args(["--host", "0.0.0.0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("non-loopback"));
    assert!(out.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_400_and_server_survives() {
    let server = TestServer::start().await.unwrap();
    let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
    tcp.write_all(b"\x00\x01 not http\r\n\r\n").await.unwrap();
    let mut out = String::new();
    bounded(tcp.read_to_string(&mut out)).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    // An upgrade without a key.
    let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
    tcp.write_all(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    )
    .await
    .unwrap();
    let mut out = String::new();
    bounded(tcp.read_to_string(&mut out)).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    let mut ws = connect(&server, "/").await;
    ws.send(Message::text("ok")).await.unwrap();
    assert_eq!(next(&mut ws).await, Message::text("ok"));
}
