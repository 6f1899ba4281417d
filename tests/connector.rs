//! `Options::connector`: the stream under TLS and the WebSocket handshake,
//! opened by the application for every attempt, against the testkit on a
//! Unix socket and on TCP behind a made-up host name (a DNS override).
#![cfg(all(native, any(feature = "ring", feature = "aws-lc-rs")))]

mod common;
mod tls_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::{next, options, until};
use wstether::{ConnectTarget, Connection, ErrorKind, Event, Frame, Options, Proxy};
use wstether_testkit::TestServer;

/// Upgrades `path` and echoes one frame through `url` with `options`.
async fn echoes(url: &str, path: &str, options: Options) -> (Connection, wstether::Events) {
    let (conn, mut events) = Connection::open(url, options).unwrap();
    let stream = conn.ws_upgrade(path).unwrap();
    until(&mut events, common::is_upgraded).await;
    conn.ws_send(stream, Frame::text("through the connector"))
        .unwrap();
    assert!(matches!(
        next(&mut events).await,
        Event::Frame { frame, .. } if frame == Frame::text("through the connector")
    ));
    (conn, events)
}

/// A fresh path for a Unix socket (removed first if left over).
#[cfg(unix)]
fn socket_path(name: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("wstether-{}-{name}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

#[cfg(unix)]
#[tokio::test]
async fn connector_unix_socket_talks_to_the_testkit_on_a_unix_socket() {
    let server = TestServer::start().await.unwrap();
    let path = socket_path("unix");
    server.listen_unix(&path).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let options = options().connector({
        let (path, seen) = (path.clone(), seen.clone());
        move |target: ConnectTarget| {
            seen.lock().unwrap().push(target);
            tokio::net::UnixStream::connect(path.clone())
        }
    });
    // A host no resolver knows: only the Unix socket can reach the server.
    let _open = echoes("ws://app.invalid/", "/unix", options).await;
    assert_eq!(server.requests()[0].path, "/unix");
    assert_eq!(server.requests()[0].header("host"), Some("app.invalid"));
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].host(), seen[0].port(), seen[0].scheme()),
        ("app.invalid", 80, "ws")
    );
    assert!(!seen[0].is_secure());
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn connector_dns_override_reaches_127_0_0_1_for_a_made_up_host_name() {
    let server = TestServer::start().await.unwrap();
    let port = server.addr().port();
    let options = options().connector(|target: ConnectTarget| async move {
        let ip = match target.host() {
            "made-up.invalid" => std::net::Ipv4Addr::LOCALHOST,
            other => panic!("asked for {other}"),
        };
        tokio::net::TcpStream::connect((ip, target.port())).await
    });
    let url = format!("ws://made-up.invalid:{port}/");
    let _open = echoes(&url, "/dns", options).await;
    assert_eq!(server.requests()[0].path, "/dns");
}

/// TLS runs over the connector's stream and checks the certificate
/// against the URL's host, not the address the connector chose.
#[tokio::test]
async fn connector_wss_checks_the_certificate_against_the_urls_host() {
    let ca = tls_support::ca("connector CA");
    let server = tls_support::server_for(&ca, &["api.made-up.invalid"]).await;
    let addr = server.addr();
    let via_connector = move || {
        options()
            .add_root_certificate_der(ca.der.clone())
            .connector(move |_target: ConnectTarget| tokio::net::TcpStream::connect(addr))
    };
    let url = format!("wss://api.made-up.invalid:{}/", addr.port());
    let _open = echoes(&url, "/tls", via_connector()).await;

    // The same stream for a name the certificate does not carry: refused.
    let url = format!("wss://other.made-up.invalid:{}/", addr.port());
    let (_conn, mut events) = Connection::open(&url, via_connector()).unwrap();
    _conn.ws_upgrade("/").unwrap();
    let Event::Error { error, .. } = next(&mut events).await else {
        panic!("a TLS error first")
    };
    assert_eq!(error.kind(), ErrorKind::Tls, "{error}");
    assert!(error.to_string().contains("not valid for name"), "{error}");
}

/// A connector that fails is a typed `Connect` error, retried: the
/// connector is asked again for the next attempt, and again after a
/// reconnect.
#[tokio::test]
async fn connector_is_called_for_every_attempt_and_its_error_is_a_connect_error() {
    let server = TestServer::start().await.unwrap();
    let addr = server.addr();
    let calls = Arc::new(AtomicUsize::new(0));
    let options = options().connector({
        let calls = calls.clone();
        move |_target: ConnectTarget| {
            let call = calls.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                if call == 1 {
                    return Err(std::io::Error::other("the first one fails"));
                }
                tokio::net::TcpStream::connect(addr).await
            }
        }
    });
    let (conn, mut events) = Connection::open("ws://anywhere.invalid/", options).unwrap();
    conn.ws_upgrade("/").unwrap();
    let Event::Error { error, .. } = next(&mut events).await else {
        panic!("the connector's error first")
    };
    assert_eq!(error.kind(), ErrorKind::Connect, "{error}");
    assert!(error.to_string().contains("the first one fails"), "{error}");
    until(&mut events, common::is_upgraded).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    server.drop_connections();
    until(&mut events, common::is_up).await;
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

/// A connector that never answers cannot hang the connection: the connect
/// timeout bounds it, then the next attempt asks again.
#[tokio::test]
async fn connector_that_never_answers_is_bounded_by_the_connect_timeout() {
    let calls = Arc::new(AtomicUsize::new(0));
    let options = options()
        .retry(
            wstether::Retry::default()
                .initial_delay(std::time::Duration::from_millis(10))
                .connect_timeout(std::time::Duration::from_millis(100))
                .first_connection(wstether::FirstConnection::Attempts(2)),
        )
        .connector({
            let calls = calls.clone();
            move |_target: ConnectTarget| {
                calls.fetch_add(1, Ordering::SeqCst);
                std::future::pending::<std::io::Result<tokio::net::TcpStream>>()
            }
        });
    let (_conn, mut events) = Connection::open("ws://hangs.invalid/", options).unwrap();
    let Event::Error { error, .. } = next(&mut events).await else {
        panic!("a connect timeout first")
    };
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error}");
    until(&mut events, |e| {
        matches!(e, Event::Reconnecting { attempt: 2, .. })
    })
    .await;
    until(&mut events, |e| matches!(e, Event::Error { .. })).await;
    assert!(calls.load(Ordering::SeqCst) >= 2);
}

#[tokio::test]
async fn connector_with_an_explicit_proxy_is_refused() {
    let connector = |_target: ConnectTarget| async {
        Err::<tokio::net::TcpStream, _>(std::io::Error::other("unused"))
    };
    let options = options()
        .proxy(Proxy::http("http://127.0.0.1:3128").unwrap())
        .connector(connector);
    let error = Connection::open("ws://localhost/", options).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidOption, "{error}");
    assert!(error.to_string().contains("connector"), "{error}");
    // The environment's proxy (the default) is not used: no refusal.
    let options = Options::default().connector(connector);
    assert!(Connection::open("ws://localhost/", options).is_ok());
}

/// Tells a re-executed test binary to run [`env_child`].
const CHILD_ENV: &str = "WSTETHER_CONNECTOR_CHILD";

/// The child: a connector under the default options (the environment's
/// proxy), an echo.
#[tokio::test]
async fn env_child() {
    if std::env::var(CHILD_ENV).is_err() {
        return;
    }
    let server = TestServer::start().await.unwrap();
    let addr = server.addr();
    let options = Options::default()
        .connector(move |_target: ConnectTarget| tokio::net::TcpStream::connect(addr));
    let url = format!("ws://app.invalid:{}/", addr.port());
    let _open = echoes(&url, "/env", options).await;
}

/// The environment's proxy variables are not read with a connector: they
/// name a proxy that refuses every connection, and the child (this binary
/// re-executed with them set, so no test races on the environment) still
/// reaches its server.
#[test]
fn connector_ignores_the_environments_proxy() {
    let refusing = "http://127.0.0.1:1";
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "env_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .env("HTTP_PROXY", refusing)
        .env("http_proxy", refusing)
        .env("ALL_PROXY", refusing)
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("test env_child ... ok"), "{text}");
}

// The two examples, run as tests so that CI runs them.
#[allow(dead_code)]
#[path = "../examples/connector_dns.rs"]
mod connector_dns;
#[allow(dead_code)]
#[path = "../examples/connector_unix.rs"]
mod connector_unix;

#[tokio::test]
async fn connector_examples_run_against_the_testkit() {
    connector_dns::run().await.unwrap();
    connector_unix::run().await.unwrap();
}
