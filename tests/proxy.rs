//! Proxies, against real proxy servers started by the tests on loopback
//! (installed by `.ci/setup`): Debian's `tinyproxy` (HTTP CONNECT, with and
//! without `BasicAuth`), Debian's `dante-server` (`danted`, SOCKS5 without
//! authentication) and `pproxy` from PyPI in a venv (SOCKS5 with a user
//! name and password: dante's `username` method checks system accounts,
//! which a test cannot create). Every test checks that the traffic really
//! went through the proxy, in the proxy's own log.
//!
//! The environment variables are tested in a child process (this binary
//! re-executed with the environment set), so tests never race on the
//! process environment.
#![cfg(native)]

mod common;
mod tls_support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{next, options, until, PATIENCE};
use http::StatusCode;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use wstether::{
    Connection, ErrorKind, Event, FirstConnection, Frame, Options, Proxy, Retry, RetryDecision,
};
use wstether_testkit::TestServer;

const USER: &str = "alice";
const PASSWORD: &str = "s3cret-pw";
/// [`PASSWORD`] percent-encoded for a URL's userinfo.
const PASSWORD_IN_URL: &str = "s3cret%2Dpw";

// ----- proxy daemons -----

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    /// tinyproxy, HTTP CONNECT.
    Tinyproxy,
    /// danted, SOCKS5 without authentication.
    Dante,
    /// pproxy, SOCKS5 with a user name and password.
    Pproxy,
    /// pproxy, HTTP CONNECT over TLS (an `https://` proxy) with basic auth.
    PproxyHttps,
}

/// A proxy daemon in the foreground, in its own process group, killed
/// (group and all) on drop.
struct Daemon {
    kind: Kind,
    dir: PathBuf,
    port: u16,
    auth: bool,
    child: Option<Child>,
}

/// A port free now on 127.0.0.1 (bound, then released for the daemon).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn temp_dir(name: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "wstether-proxy-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// DER as PEM (rcgen's `pem` feature is off).
fn pem(label: &str, der: &[u8]) -> String {
    let base64 = data_encoding::BASE64.encode(der);
    let mut text = format!("-----BEGIN {label}-----\n");
    for line in base64.as_bytes().chunks(64) {
        text.push_str(std::str::from_utf8(line).unwrap());
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----\n"));
    text
}

/// pproxy from the venv `.ci/setup` makes, or from `PATH`.
fn pproxy() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/proxy-venv/bin/pproxy");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("pproxy")
    }
}

impl Daemon {
    /// tinyproxy; `allowed_port`: the only CONNECT port it allows
    /// (`Daemon::start` with `None`: any).
    fn tinyproxy(auth: bool, allowed_port: u16) -> Daemon {
        Daemon::start(Kind::Tinyproxy, auth, Some(allowed_port))
    }

    fn dante() -> Daemon {
        Daemon::start(Kind::Dante, false, None)
    }

    fn pproxy() -> Daemon {
        Daemon::start(Kind::Pproxy, true, None)
    }

    /// pproxy as an `https://` proxy on 127.0.0.1, with a certificate for
    /// that address signed by `ca`.
    fn pproxy_https(ca: &Ca) -> Daemon {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&key, &ca.issuer)
            .unwrap();
        let mut daemon = Daemon {
            kind: Kind::PproxyHttps,
            dir: temp_dir("PproxyHttps"),
            port: free_port(),
            auth: true,
            child: None,
        };
        let cert = pem("CERTIFICATE", cert.der());
        std::fs::write(daemon.dir.join("cert.pem"), cert).unwrap();
        let key = pem("PRIVATE KEY", &key.serialize_der());
        std::fs::write(daemon.dir.join("key.pem"), key).unwrap();
        daemon.spawn();
        daemon
    }

    fn start(kind: Kind, auth: bool, allowed_port: Option<u16>) -> Daemon {
        let dir = temp_dir(&format!("{kind:?}"));
        let port = free_port();
        let log = dir.join("proxy.log");
        let config = match kind {
            Kind::Tinyproxy => {
                let mut config = format!(
                    "Port {port}\nListen 127.0.0.1\nTimeout 600\nLogFile \"{}\"\n\
                     LogLevel Connect\nMaxClients 100\nAllow 127.0.0.1\n",
                    log.display()
                );
                if let Some(allowed) = allowed_port {
                    config.push_str(&format!("ConnectPort {allowed}\n"));
                }
                if auth {
                    config.push_str(&format!("BasicAuth {USER} {PASSWORD}\n"));
                }
                config
            }
            Kind::Dante => {
                // Only root may switch users (as CI runs).
                let root = std::fs::metadata("/proc/self")
                    .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
                    .unwrap_or(false);
                let users = if root {
                    "user.privileged: root\nuser.unprivileged: nobody\n"
                } else {
                    ""
                };
                format!(
                    "logoutput: {}\ninternal: 127.0.0.1 port = {port}\nexternal: 127.0.0.1\n\
                     socksmethod: none\nclientmethod: none\n{users}\
                     client pass {{\n  from: 127.0.0.0/8 to: 0.0.0.0/0\n  log: connect error\n}}\n\
                     socks pass {{\n  from: 127.0.0.0/8 to: 0.0.0.0/0\n  command: connect\n  \
                     log: connect error\n}}\n",
                    log.display()
                )
            }
            Kind::Pproxy | Kind::PproxyHttps => String::new(),
        };
        std::fs::write(dir.join("proxy.conf"), config).unwrap();
        let mut daemon = Daemon {
            kind,
            dir,
            port,
            auth,
            child: None,
        };
        daemon.spawn();
        daemon
    }

    fn spawn(&mut self) {
        use std::os::unix::process::CommandExt;
        let conf = self.dir.join("proxy.conf");
        let mut command = match self.kind {
            Kind::Tinyproxy => {
                let mut c = Command::new("tinyproxy");
                c.arg("-d").arg("-c").arg(&conf);
                c
            }
            Kind::Dante => {
                let mut c = Command::new("danted");
                c.arg("-f").arg(&conf).args(["-N", "1"]);
                c
            }
            Kind::Pproxy => {
                let mut c = Command::new(pproxy());
                c.arg("-l")
                    .arg(format!(
                        "socks5://127.0.0.1:{}#{USER}:{PASSWORD}",
                        self.port
                    ))
                    // Otherwise pproxy lets an address that authenticated
                    // once in without credentials for 30 days.
                    .args(["--auth", "0", "-v"])
                    .env("PYTHONUNBUFFERED", "1");
                c
            }
            Kind::PproxyHttps => {
                // The certificate and key were written by `pproxy_https`.
                let mut c = Command::new(pproxy());
                c.arg("-l")
                    .arg(format!(
                        "http+ssl://127.0.0.1:{}#{USER}:{PASSWORD}",
                        self.port
                    ))
                    .arg("--ssl")
                    .arg(format!(
                        "{},{}",
                        self.dir.join("cert.pem").display(),
                        self.dir.join("key.pem").display()
                    ))
                    .args(["--auth", "0", "-v"])
                    .env("PYTHONUNBUFFERED", "1");
                c
            }
        };
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("stdout.log"))
            .unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start the {:?} proxy ({e}): run .ci/setup",
                    self.kind
                )
            });
        self.child = Some(child);
        // Ready once it accepts connections (the probe is not a CONNECT).
        let deadline = Instant::now() + PATIENCE;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "the {:?} proxy exited ({status}): {}",
                    self.kind,
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the {:?} proxy did not start",
                self.kind
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the daemon's whole process group (dante forks workers).
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .stderr(Stdio::null())
                .status();
            let _ = child.wait();
        }
    }

    /// Stops (SIGSTOP) or resumes (SIGCONT) the daemon's process group.
    fn signal(&self, signal: &str) {
        let id = self.child.as_ref().unwrap().id();
        Command::new("kill")
            .args([signal, "--", &format!("-{id}")])
            .status()
            .unwrap();
    }

    /// Everything the daemon logged.
    fn log(&self) -> String {
        let mut text = String::new();
        for file in ["proxy.log", "stdout.log"] {
            text.push_str(&std::fs::read_to_string(self.dir.join(file)).unwrap_or_default());
        }
        text
    }

    /// How many tunnels to `port` the daemon logged.
    fn tunnels_to(&self, port: u16) -> usize {
        let log = self.log();
        log.lines()
            .filter(|line| match self.kind {
                Kind::Tinyproxy => {
                    line.contains("CONNECT ") && line.contains(&format!(":{port} HTTP/"))
                }
                Kind::Dante => {
                    let target = format!(".{port}");
                    line.contains("tcp/connect [")
                        && line.split_whitespace().any(|word| word.ends_with(&target))
                }
                Kind::Pproxy | Kind::PproxyHttps => {
                    line.contains("->") && line.ends_with(&format!(":{port}"))
                }
            })
            .count()
    }

    /// Waits until the daemon logged `n` tunnels to `port` (logs are
    /// written a little after the fact).
    fn wait_for_tunnels(&self, port: u16, n: usize) {
        let deadline = Instant::now() + PATIENCE;
        while self.tunnels_to(port) < n {
            assert!(
                Instant::now() < deadline,
                "the {:?} proxy logged {} tunnels to port {port}, not {n}:\n{}",
                self.kind,
                self.tunnels_to(port),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The proxy URL, with credentials when the daemon wants them
    /// (`password` overrides the right one).
    fn url(&self, scheme: &str, password: Option<&str>) -> String {
        if self.auth {
            let password = password.unwrap_or(PASSWORD_IN_URL);
            format!("{scheme}://{USER}:{password}@127.0.0.1:{}", self.port)
        } else {
            format!("{scheme}://127.0.0.1:{}", self.port)
        }
    }

    fn proxy(&self) -> Proxy {
        match self.kind {
            Kind::Tinyproxy => Proxy::http(&self.url("http", None)).unwrap(),
            // dante resolves `localhost` itself; pproxy gets an address.
            Kind::Dante => Proxy::socks5(&self.url("socks5h", None)).unwrap(),
            Kind::Pproxy => Proxy::socks5(&self.url("socks5", None)).unwrap(),
            Kind::PproxyHttps => Proxy::https(&self.url("https", None)).unwrap(),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ----- test servers -----

/// A test CA: its certificate (DER) and what signs the servers' and the
/// `https://` proxy's certificates.
struct Ca {
    der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

fn ca() -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let der = params.self_signed(&key).unwrap().der().to_vec();
    Ca {
        der,
        issuer: Issuer::new(params, key),
    }
}

/// A TLS testkit server for `localhost` signed by `ca`.
async fn tls_server_of(ca: &Ca) -> TestServer {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca.issuer)
        .unwrap();
    TestServer::start_tls(vec![cert.der().to_vec()], key.serialize_der())
        .await
        .unwrap()
}

/// A test CA and a TLS testkit server for `localhost` signed by it.
async fn tls_server() -> (TestServer, Vec<u8>) {
    let ca = ca();
    (tls_server_of(&ca).await, ca.der)
}

/// A ws or wss testkit server and the options that trust it.
async fn server(secure: bool) -> (TestServer, Options) {
    if secure {
        let (server, ca) = tls_server().await;
        (server, options().add_root_certificate_der(ca))
    } else {
        (TestServer::start().await.unwrap(), options())
    }
}

/// Upgrades, sends a frame and gets its echo back.
async fn echo(conn: &Connection, events: &mut wstether::Events, text: &str) {
    let stream = conn.ws_upgrade("/echo").unwrap();
    until(events, common::is_upgraded).await;
    conn.ws_send(stream, Frame::text(text)).unwrap();
    let (frame, _) = until(events, |e| matches!(e, Event::Frame { .. })).await;
    assert!(matches!(frame, Event::Frame { frame, .. } if frame == Frame::text(text)));
}

// ----- ws and wss through each proxy -----

async fn through(kind: Kind, secure: bool) {
    let (server, options) = server(secure).await;
    let port = server.addr().port();
    let daemon = match kind {
        Kind::Tinyproxy => Daemon::tinyproxy(false, port),
        Kind::Dante => Daemon::dante(),
        Kind::Pproxy => Daemon::pproxy(),
        Kind::PproxyHttps => unreachable!("ws_and_wss_through_an_https_proxy"),
    };
    let (conn, mut events) =
        Connection::open(&server.url(""), options.proxy(daemon.proxy())).unwrap();
    echo(&conn, &mut events, "through the proxy").await;
    daemon.wait_for_tunnels(port, 1);
    conn.shutdown();
}

/// WebSocket over HTTP/2 (RFC 8441) through a proxy: ALPN and the HTTP/2
/// connection run over the tunnel unchanged, and the Websocket is an
/// extended CONNECT stream (docs/http2.md).
async fn http2_through(kind: Kind) {
    let ca = ca();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca.issuer)
        .unwrap();
    let server = TestServer::start_tls_http2(
        vec![cert.der().to_vec()],
        key.serialize_der(),
        wstether_testkit::Http2::On,
    )
    .await
    .unwrap();
    let port = server.addr().port();
    let daemon = match kind {
        Kind::Tinyproxy => Daemon::tinyproxy(false, port),
        Kind::Dante => Daemon::dante(),
        other => unreachable!("{other:?}"),
    };
    let options = options()
        .add_root_certificate_der(ca.der.clone())
        .proxy(daemon.proxy());
    let (conn, mut events) = Connection::open(&server.url(""), options).unwrap();
    let stream = conn.ws_upgrade("/echo").unwrap();
    let (event, _) = until(&mut events, common::is_upgraded).await;
    assert_eq!(
        event.http_version(),
        Some(http::Version::HTTP_2),
        "{event:?}"
    );
    conn.ws_send(stream, Frame::text("h2 through the proxy"))
        .unwrap();
    let (frame, _) = until(&mut events, |e| matches!(e, Event::Frame { .. })).await;
    assert!(
        matches!(frame, Event::Frame { frame, .. } if frame == Frame::text("h2 through the proxy"))
    );
    daemon.wait_for_tunnels(port, 1);
    conn.shutdown();
}

#[tokio::test]
async fn http2_through_an_http_proxy() {
    http2_through(Kind::Tinyproxy).await;
}

#[tokio::test]
async fn http2_through_a_socks5h_proxy() {
    http2_through(Kind::Dante).await;
}

#[tokio::test]
async fn ws_through_an_http_proxy() {
    through(Kind::Tinyproxy, false).await;
}

#[tokio::test]
async fn wss_through_an_http_proxy() {
    through(Kind::Tinyproxy, true).await;
}

#[tokio::test]
async fn ws_through_a_socks5h_proxy() {
    through(Kind::Dante, false).await;
}

#[tokio::test]
async fn wss_through_a_socks5h_proxy() {
    through(Kind::Dante, true).await;
}

#[tokio::test]
async fn ws_through_a_socks5_proxy_with_a_password() {
    through(Kind::Pproxy, false).await;
}

#[tokio::test]
async fn wss_through_a_socks5_proxy_with_a_password() {
    through(Kind::Pproxy, true).await;
}

/// An `https://` proxy (pproxy listening with TLS, its certificate signed
/// by a test CA trusted with `Options::add_root_certificate_der`): ws and
/// wss through it, with basic auth inside the TLS; the tunnels are in the
/// proxy's log. A proxy that is not trusted is a typed proxy error.
#[tokio::test]
async fn ws_and_wss_through_an_https_proxy() {
    let ca = ca();
    let daemon = Daemon::pproxy_https(&ca);
    for secure in [false, true] {
        let server = match secure {
            true => tls_server_of(&ca).await,
            false => TestServer::start().await.unwrap(),
        };
        let port = server.addr().port();
        let trusted = options().add_root_certificate_der(ca.der.clone());
        let (conn, mut events) =
            Connection::open(&server.url(""), trusted.proxy(daemon.proxy())).unwrap();
        echo(&conn, &mut events, "through TLS to the proxy").await;
        daemon.wait_for_tunnels(port, 1);
        conn.shutdown();
        assert_eq!(server.requests().len(), 1);

        // Without the CA the proxy's certificate is refused.
        let (_conn, mut events) =
            Connection::open(&server.url(""), options().proxy(daemon.proxy())).unwrap();
        let Event::Error { error, .. } = next(&mut events).await else {
            panic!("a proxy error first")
        };
        assert_eq!(error.kind(), ErrorKind::Proxy, "{error}");
        assert!(error.to_string().contains("TLS"), "{error}");
        assert_eq!(daemon.tunnels_to(port), 1, "{}", daemon.log());
    }
}

/// `Options::tls_config` is used for an `https://` proxy as for the
/// server: a configuration of the user's that trusts only the test CA
/// reaches the proxy and, through it, the wss server.
#[tokio::test]
async fn tls_config_is_used_for_an_https_proxy_too() {
    let ca = ca();
    let daemon = Daemon::pproxy_https(&ca);
    let server = tls_server_of(&ca).await;
    let port = server.addr().port();
    let options = options()
        .tls_config(tls_support::trusting(&ca.der))
        .proxy(daemon.proxy());
    let (conn, mut events) = Connection::open(&server.url(""), options).unwrap();
    echo(&conn, &mut events, "through the user's TLS twice").await;
    daemon.wait_for_tunnels(port, 1);
    assert_eq!(server.requests().len(), 1);
}

/// A proxy that accepts the TCP connection and then says nothing (to the
/// CONNECT, the SOCKS5 greeting, or the TLS ClientHello of an `https://`
/// proxy) is bounded by `Retry::connect_timeout`: an `ErrorKind::Timeout`
/// error, then a retry that dials the proxy again.
#[tokio::test]
async fn a_proxy_that_stalls_its_handshake_times_out_then_retries() {
    for scheme in ["http", "https", "socks5", "socks5h"] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy_url = format!(
            "{scheme}://127.0.0.1:{}",
            listener.local_addr().unwrap().port()
        );
        let proxy = match scheme {
            "http" => Proxy::http(&proxy_url),
            "https" => Proxy::https(&proxy_url),
            _ => Proxy::socks5(&proxy_url),
        }
        .unwrap();
        // Accepts, keeps every connection open, answers nothing.
        let accepting = tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                held.push(socket);
                if held.len() == 2 {
                    return held;
                }
            }
        });
        let retry = Retry::default()
            .connect_timeout(Duration::from_millis(300))
            .initial_delay(Duration::from_millis(50))
            .jitter(0.0)
            .first_connection(FirstConnection::Attempts(2));
        let options = options().retry(retry).proxy(proxy);
        let started = Instant::now();
        let (conn, mut events) = Connection::open("ws://localhost:9/", options).unwrap();
        let Event::Error { error, .. } = next(&mut events).await else {
            panic!("a timeout first ({scheme})")
        };
        let waited = started.elapsed();
        assert_eq!(error.kind(), ErrorKind::Timeout, "{scheme}: {error}");
        assert!(
            waited >= Duration::from_millis(290) && waited < Duration::from_secs(3),
            "{scheme}: {waited:?}"
        );
        assert!(matches!(
            next(&mut events).await,
            Event::Reconnecting { attempt: 2, .. }
        ));
        // The retry dials the proxy again.
        let held = tokio::time::timeout(PATIENCE, accepting)
            .await
            .expect("a second dial to the proxy")
            .unwrap();
        assert_eq!(held.len(), 2);
        conn.shutdown();
    }
}

/// Basic auth: the right password opens the tunnel (ws and wss); without
/// credentials the proxy answers 407.
#[tokio::test]
async fn an_http_proxy_with_basic_auth() {
    for secure in [false, true] {
        let (server, options) = server(secure).await;
        let port = server.addr().port();
        let daemon = Daemon::tinyproxy(true, port);
        let (conn, mut events) =
            Connection::open(&server.url(""), options.clone().proxy(daemon.proxy())).unwrap();
        echo(&conn, &mut events, "authenticated").await;
        daemon.wait_for_tunnels(port, 1);
        conn.shutdown();

        let anonymous = Proxy::http(&format!("http://127.0.0.1:{}", daemon.port)).unwrap();
        let (conn, mut events) =
            Connection::open(&server.url(""), options.proxy(anonymous)).unwrap();
        conn.ws_upgrade("/").unwrap();
        let (Event::Error { error, .. }, _) =
            until(&mut events, |e| matches!(e, Event::Error { .. })).await
        else {
            unreachable!()
        };
        assert_eq!(error.kind(), ErrorKind::Proxy, "{error}");
        assert_eq!(error.proxy_status().map(|s| s.as_u16()), Some(407));
        assert_eq!(server.requests().len(), 1, "only the authenticated upgrade");
    }
}

// ----- failures -----

/// The events until the connection ends (or `within` passes), with when
/// each came.
async fn events_until_the_end(
    events: &mut wstether::Events,
    within: Duration,
) -> Vec<(Duration, Event)> {
    let started = Instant::now();
    let mut seen = Vec::new();
    while let Some(left) = within.checked_sub(started.elapsed()) {
        match tokio::time::timeout(left, events.recv()).await {
            Ok(Some(event)) => seen.push((started.elapsed(), event)),
            Ok(None) | Err(_) => break,
        }
    }
    seen
}

/// A wrong password: a typed error with the status, no credentials in it,
/// and, by default (`Retry::proxy_decision`), no second attempt: refused
/// credentials are refused again. tinyproxy answers 401 to wrong
/// credentials and 407 to none.
#[tokio::test]
async fn a_wrong_password_ends_the_connection_after_one_attempt() {
    let server = TestServer::start().await.unwrap();
    let port = server.addr().port();
    let daemon = Daemon::tinyproxy(true, port);
    let proxy = Proxy::http(&daemon.url("http", Some("wrong-hunter2"))).unwrap();
    let defaults = Options::default().no_keepalive().proxy(proxy);
    let (conn, mut events) = Connection::open(&server.url(""), defaults).unwrap();
    let stream = conn.ws_upgrade("/").unwrap();
    let seen = events_until_the_end(&mut events, Duration::from_secs(2)).await;
    let seen: Vec<Event> = seen.into_iter().map(|(_, e)| e).collect();
    // The first connection's end (see `Retry`): the waiting upgrade fails,
    // then the error, then the final `Down`.
    let [Event::UpgradeFailed {
        stream: failed,
        error: last,
        ..
    }, Event::Error {
        stream: None,
        error: first,
    }, Event::Down {
        will_reconnect: false,
        ..
    }] = &seen[..]
    else {
        panic!("one failed attempt, then the end: {seen:?}")
    };
    assert_eq!(first.kind(), ErrorKind::Proxy, "{first}");
    let status = first.proxy_status().map(|s| s.as_u16());
    assert_eq!(status, Some(401), "{first}");
    assert_eq!(*failed, stream);
    assert_eq!(last.kind(), ErrorKind::Proxy, "{last}");
    assert_eq!(last.proxy_status().map(|s| s.as_u16()), Some(401));
    assert!(last.to_string().contains("not retried"), "{last}");
    for error in [first, last] {
        let shown = format!("{error} {error:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains(USER),
            "{shown}"
        );
    }
    assert!(first
        .to_string()
        .contains(&format!("127.0.0.1:{}", daemon.port)));
    assert!(conn.ws_upgrade("/").is_err(), "the connection has ended");
    daemon.wait_for_tunnels(port, 1);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(daemon.tunnels_to(port), 1, "{}", daemon.log());
    assert!(server.requests().is_empty());

    // No credentials at all (407): the same.
    let anonymous = Proxy::http(&format!("http://127.0.0.1:{}", daemon.port)).unwrap();
    let (_conn, mut events) =
        Connection::open(&server.url(""), options().proxy(anonymous)).unwrap();
    let seen = events_until_the_end(&mut events, Duration::from_secs(2)).await;
    let statuses: Vec<_> = seen
        .iter()
        .map(|(_, e)| match e {
            Event::Error { error, .. } => error.proxy_status().map(|s| s.as_u16()),
            Event::Down {
                will_reconnect: false,
                ..
            } => None,
            other => panic!("only the error and the end: {other:?}"),
        })
        .collect();
    assert_eq!(statuses, [Some(407), None], "{seen:?}");

    // pproxy (SOCKS5) does not answer a wrong password (RFC 1929 asks for a
    // failure status, which would be reported as 407 and stop): it closes
    // the connection, which cannot be told from any other failure, so it
    // is retried by the backoff. A typed error, no credentials shown.
    let daemon = Daemon::pproxy();
    let proxy = Proxy::socks5(&daemon.url("socks5", Some("wrong-hunter2"))).unwrap();
    let (_conn, mut events) = Connection::open(&server.url(""), options().proxy(proxy)).unwrap();
    let Event::Error { error, .. } = next(&mut events).await else {
        panic!("a proxy error first")
    };
    assert_eq!(error.kind(), ErrorKind::Proxy, "{error}");
    assert_eq!(error.proxy_status(), None);
    let shown = format!("{error} {error:?}");
    assert!(
        !shown.contains("hunter2") && !shown.contains(USER),
        "{shown}"
    );
    assert!(matches!(
        next(&mut events).await,
        Event::Reconnecting { .. }
    ));
}

/// Retrying refused credentials is a choice (`Retry::on_proxy_status`):
/// then the retries are spaced by the backoff (100 ms doubling), not
/// hammering the proxy.
#[tokio::test]
async fn retrying_refused_credentials_is_configurable_and_spaced() {
    let server = TestServer::start().await.unwrap();
    let port = server.addr().port();
    let daemon = Daemon::tinyproxy(true, port);
    let proxy = Proxy::http(&daemon.url("http", Some("wrong-hunter2"))).unwrap();
    let retry = Retry::default()
        .on_proxy_status(StatusCode::UNAUTHORIZED, RetryDecision::Retry)
        .first_connection(FirstConnection::ReconnectPolicy);
    let options = Options::default().no_keepalive().retry(retry).proxy(proxy);
    let (conn, mut events) = Connection::open(&server.url(""), options).unwrap();
    let seen = events_until_the_end(&mut events, Duration::from_millis(1500)).await;
    conn.shutdown();
    let errors: Vec<_> = seen
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Error { error, .. } => Some(error.proxy_status().map(|s| s.as_u16())),
            _ => None,
        })
        .collect();
    assert!(errors.iter().all(|s| *s == Some(401)), "{seen:?}");
    // Attempts at 0, ~0.1, ~0.3, ~0.7, ~1.5 s (jitter ±50%): at most 6.
    let attempts = daemon.tunnels_to(port);
    assert!(
        (2..=6).contains(&errors.len()) && (2..=6).contains(&attempts),
        "{} errors and {attempts} CONNECTs in 1.5 s",
        errors.len()
    );
    assert!(server.requests().is_empty());
}

/// tinyproxy allows CONNECT to its `ConnectPort`s only: another port is
/// answered 403.
#[tokio::test]
async fn the_proxy_refuses_the_target() {
    let server = TestServer::start().await.unwrap();
    let daemon = Daemon::tinyproxy(false, 1);
    let (conn, mut events) =
        Connection::open(&server.url(""), options().proxy(daemon.proxy())).unwrap();
    conn.ws_upgrade("/").unwrap();
    let Event::Error { error, .. } = next(&mut events).await else {
        panic!("a proxy error first")
    };
    assert_eq!(error.kind(), ErrorKind::Proxy, "{error}");
    assert_eq!(error.proxy_status().map(|s| s.as_u16()), Some(403));
    assert!(matches!(
        next(&mut events).await,
        Event::Reconnecting { .. }
    ));
    daemon.wait_for_tunnels(server.addr().port(), 1);
    assert!(server.requests().is_empty());
}

/// The proxy dies with frames in flight: Down with the frames not written,
/// then a reconnect through the restarted proxy (a new CONNECT), and the
/// automatic upgrade.
#[tokio::test]
async fn the_proxy_killed_mid_stream_then_a_reconnect_through_it() {
    let server = TestServer::start().await.unwrap();
    let port = server.addr().port();
    let mut daemon = Daemon::tinyproxy(false, port);
    let options = options()
        .proxy(daemon.proxy())
        .auto_upgrade(true)
        .send_queue_bytes(64 << 20);
    let (conn, mut events) = Connection::open(&server.url(""), options).unwrap();
    let stream = conn.ws_upgrade("/").unwrap();
    until(&mut events, common::is_upgraded).await;
    daemon.wait_for_tunnels(port, 1);

    // Frozen, the proxy reads nothing: the socket buffers fill up (a few
    // MiB on loopback) and the last frames cannot leave.
    daemon.signal("-STOP");
    let big = Frame::binary(vec![7u8; 1 << 20]);
    for _ in 0..24 {
        conn.ws_send(stream, big.clone()).unwrap();
    }
    let markers: Vec<Frame> = (0..3).map(|i| Frame::text(format!("marker {i}"))).collect();
    conn.ws_send(stream, markers.clone()).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    daemon.kill();

    let (down, _) = until(&mut events, common::is_down).await;
    let Event::Down {
        unsent,
        will_reconnect,
        killed_streams,
        ..
    } = down
    else {
        unreachable!()
    };
    assert!(will_reconnect);
    assert_eq!(killed_streams, [stream]);
    assert!(
        unsent.ends_with(&markers),
        "the frames not written come back: {} frames",
        unsent.len()
    );

    daemon.spawn();
    let (up, _) = until(&mut events, common::is_up).await;
    assert!(matches!(up, Event::Up { attempt } if attempt >= 2));
    let (upgraded, _) = until(&mut events, common::is_upgraded).await;
    let Event::Upgraded { stream, .. } = upgraded else {
        unreachable!()
    };
    conn.ws_send(stream, Frame::text("again")).unwrap();
    let (frame, _) = until(&mut events, |e| matches!(e, Event::Frame { .. })).await;
    assert!(matches!(frame, Event::Frame { frame, .. } if frame == Frame::text("again")));
    // Both tunnels are in the log (the restarted daemon appends to it).
    daemon.wait_for_tunnels(port, 2);
}

// ----- the environment, in a child process -----

/// Tells a re-executed test binary which environment case to run.
const CHILD_ENV: &str = "WSTETHER_PROXY_CHILD";
/// What the child prints: the port of its test server.
const CHILD_PORT: &str = "PROXY-CHILD-PORT:";

const PROXY_VARS: &[&str] = &[
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
    "REQUEST_METHOD",
];

/// Runs `env_child` in this binary, re-executed with `vars` as the only
/// proxy variables and the client target `ws`/`wss` at `host`; returns the
/// port of the child's test server.
fn run_child(secure: bool, host: &str, vars: &[(&str, String)]) -> u16 {
    let exe = std::env::current_exe().unwrap();
    let mut command = Command::new(exe);
    command
        .args(["--exact", "env_child", "--nocapture", "--test-threads=1"])
        .env(
            CHILD_ENV,
            format!("{}:{host}", if secure { "wss" } else { "ws" }),
        )
        .stdin(Stdio::null());
    for var in PROXY_VARS {
        command.env_remove(var);
    }
    for (name, value) in vars {
        command.env(name, value);
    }
    let out = command.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the child failed ({vars:?}):\n{text}");
    text.lines()
        .find_map(|line| line.split_once(CHILD_PORT).map(|(_, port)| port))
        .and_then(|port| port.trim().parse().ok())
        .unwrap_or_else(|| panic!("no port from the child:\n{text}"))
}

/// The child: `Options::default()` (the environment's proxy), a test
/// server, an echo; prints the server's port.
#[tokio::test]
async fn env_child() {
    let Ok(case) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (scheme, host) = case.split_once(':').unwrap();
    let (server, options) = server(scheme == "wss").await;
    let port = server.addr().port();
    println!("{CHILD_PORT}{port}");
    let url = format!("{scheme}://{host}:{port}/");
    // `options` leaves the proxy at its default: `Proxy::from_env()`.
    let (conn, mut events) = Connection::open(&url, options).unwrap();
    echo(&conn, &mut events, "from the environment").await;
}

#[test]
fn http_proxy_and_no_proxy_from_the_environment() {
    let daemon = Daemon::start(Kind::Tinyproxy, true, None);
    let proxy = daemon.url("http", None);
    // ws:// reads HTTP_PROXY; the credentials prove the way.
    let port = run_child(false, "127.0.0.1", &[("HTTP_PROXY", proxy.clone())]);
    daemon.wait_for_tunnels(port, 1);
    // NO_PROXY names the target (a CIDR block here): direct.
    let vars = [
        ("HTTP_PROXY", proxy.clone()),
        ("NO_PROXY", "example.com, 127.0.0.0/8".to_string()),
    ];
    let port = run_child(false, "127.0.0.1", &vars);
    // A domain suffix, lower-case variables.
    let vars = [
        ("http_proxy", proxy.clone()),
        ("no_proxy", ".localhost".to_string()),
    ];
    let port2 = run_child(false, "localhost", &vars);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(daemon.tunnels_to(port) + daemon.tunnels_to(port2), 0);
    // HTTPS_PROXY is not for ws://.
    let vars = [("HTTPS_PROXY", "http://127.0.0.1:1".to_string())];
    run_child(false, "127.0.0.1", &vars);
}

#[test]
fn https_proxy_and_all_proxy_from_the_environment() {
    let dante = Daemon::dante();
    // wss:// reads HTTPS_PROXY (HTTP_PROXY, which would fail, is not for it).
    let vars = [
        ("HTTPS_PROXY", dante.url("socks5h", None)),
        ("HTTP_PROXY", "http://127.0.0.1:1".to_string()),
    ];
    let port = run_child(true, "localhost", &vars);
    dante.wait_for_tunnels(port, 1);
    // ALL_PROXY when the scheme's own variable is unset.
    let pproxy = Daemon::pproxy();
    let vars = [("ALL_PROXY", pproxy.url("socks5", None))];
    let port = run_child(false, "127.0.0.1", &vars);
    pproxy.wait_for_tunnels(port, 1);
}

// ----- the networks where a browser works -----

/// `ws://user:password@host/`: `Authorization: Basic` on the upgrade, as
/// Python's `websockets` sends it; an explicit header wins.
#[tokio::test]
async fn url_userinfo_is_sent_as_basic_auth() {
    let server = TestServer::start().await.unwrap();
    let url = format!("ws://{USER}:{PASSWORD_IN_URL}@{}/", server.addr());
    let (conn, mut events) = Connection::open(&url, options().no_proxy()).unwrap();
    echo(&conn, &mut events, "basic").await;
    let expected = format!(
        "Basic {}",
        "YWxpY2U6czNjcmV0LXB3" // base64("alice:s3cret-pw")
    );
    assert_eq!(
        server.requests()[0].header("authorization"),
        Some(expected.as_str())
    );
    conn.shutdown();
    let (conn, mut events) = Connection::open(&url, options().no_proxy()).unwrap();
    conn.ws_upgrade_with(wstether::Upgrade::new("/").header("authorization", "Bearer t"))
        .unwrap();
    until(&mut events, common::is_upgraded).await;
    assert_eq!(
        server.requests()[1].header("authorization"),
        Some("Bearer t")
    );
}

/// The operating system's store, beside the bundled and added roots.
#[tokio::test]
async fn the_operating_system_store_can_be_trusted_too() {
    let (server, options) = server(true).await;
    let (conn, mut events) =
        Connection::open(&server.url(""), options.tls_native_roots(true)).unwrap();
    echo(&conn, &mut events, "native roots").await;
}
