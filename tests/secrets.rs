//! Secrets stay out of everything wstether formats: URL userinfo
//! (`user:hunter2@`), query strings (`?token=SECRET`) and header values
//! (`authorization: Bearer SECRET`) never appear in an error's `Display` or
//! `Debug`, in the `Debug` of an `Upgrade`, `Options`, `Connection` or
//! event, nor in what wstether emits through `tracing`.
#![cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use wstether::{Connection, Error, ErrorKind, Event, Events, Options, Retry, Upgrade};

const SECRETS: [&str; 2] = ["SECRET", "hunter2"];

/// A guard against hangs, not a synchronisation point.
const PATIENCE: Duration = Duration::from_secs(5);

/// Fails the test if `shown` contains a secret.
fn assert_clean(what: &str, shown: &str) {
    for secret in SECRETS {
        assert!(!shown.contains(secret), "{what} shows {secret:?}: {shown}");
    }
}

/// Every way an error is shown.
fn assert_error_clean(what: &str, error: &Error) {
    assert_clean(what, &error.to_string());
    assert_clean(what, &format!("{error:?}"));
    assert_clean(what, &format!("{error:#?}"));
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        assert_clean(what, &cause.to_string());
        source = cause.source();
    }
}

fn assert_debug_clean(what: &str, value: &impl std::fmt::Debug) {
    assert_clean(what, &format!("{value:?}"));
    assert_clean(what, &format!("{value:#?}"));
}

fn assert_event_clean(what: &str, event: &Event) {
    assert_debug_clean(what, event);
    match event {
        Event::Error { error, .. } | Event::UpgradeFailed { error, .. } => {
            assert_error_clean(what, error)
        }
        Event::Down { reason, .. } => assert_clean(what, &reason.to_string()),
        _ => {}
    }
}

/// An upgrade that carries secrets in its query and a header.
fn secret_upgrade(path: &str) -> Upgrade {
    Upgrade::new(path)
        .header("authorization", "Bearer SECRET")
        .header("cookie", "session=SECRET")
        .protocol("chat")
}

fn options() -> Options {
    Options::default().retry(Retry::never()).no_keepalive()
}

/// Every event until the stream ends, each checked.
async fn drain_clean(what: &str, events: &mut Events) -> Vec<Event> {
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout(PATIENCE, events.recv()).await {
            Ok(Some(event)) => {
                assert_event_clean(what, &event);
                seen.push(event);
            }
            Ok(None) => return seen,
            Err(_) => panic!("{what}: the event stream did not end; got {seen:?}"),
        }
    }
}

async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

// --- tracing capture ---

/// Everything wstether emits through `tracing`, formatted: one global
/// subscriber for the whole test binary, since the driver logs from its own
/// task.
fn captured() -> &'static Arc<Mutex<String>> {
    static LOG: OnceLock<Arc<Mutex<String>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Arc::new(Mutex::new(String::new()));
        tracing::subscriber::set_global_default(Capture(log.clone()))
            .expect("no other tracing subscriber in this test binary");
        log
    })
}

/// A tiny subscriber: writes every span's and event's metadata and fields
/// into a string. Enough to see what would reach a log.
struct Capture(Arc<Mutex<String>>);

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        let _ = write!(self.0, " {}={value}", field.name());
    }
}

impl Capture {
    fn write(&self, metadata: &tracing::Metadata<'_>, record: impl FnOnce(&mut Fields<'_>)) {
        let mut log = self.0.lock().unwrap();
        let _ = write!(
            log,
            "{} {} {}:",
            metadata.level(),
            metadata.target(),
            metadata.name()
        );
        record(&mut Fields(&mut log));
        log.push('\n');
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        self.write(span.metadata(), |fields| span.record(fields));
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut log = self.0.lock().unwrap();
        values.record(&mut Fields(&mut log));
        log.push('\n');
    }

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        self.write(event.metadata(), |fields| event.record(fields));
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

/// Checks the capture works (a probe of ours is in it), then that it holds
/// no secret.
fn assert_log_clean(what: &str) {
    let log = captured();
    tracing::warn!(probe = "capture-works", "{what}");
    let text = log.lock().unwrap().clone();
    assert!(
        text.contains("capture-works"),
        "the capture is broken: {text}"
    );
    assert_clean(&format!("{what}: tracing output"), &text);
}

// --- tests ---

#[tokio::test]
async fn bad_urls_are_refused_without_echoing_secrets() {
    captured();
    let cases = [
        ("ws://user:hunter2@/x?token=SECRET", ErrorKind::InvalidUrl),
        (
            "ws://user:hunter2@127.0.0.1:99999/x?token=SECRET",
            ErrorKind::InvalidUrl,
        ),
        (
            "ws://user:hunter2@127.0.0.1/x?token=SECRET#frag",
            ErrorKind::InvalidUrl,
        ),
        (
            "wss://user:hunter2@[::1/x?token=SECRET",
            ErrorKind::InvalidUrl,
        ),
        (
            "ws://us er:hunter2@ho st/?token=SECRET",
            ErrorKind::InvalidUrl,
        ),
        ("garbage user:hunter2@ ?token=SECRET", ErrorKind::InvalidUrl),
        // `open` takes no path or query: refused, without echoing them.
        (
            "ws://user:hunter2@127.0.0.1:9/x?token=SECRET",
            ErrorKind::InvalidUrl,
        ),
        ("?token=SECRET", ErrorKind::InvalidUrl),
        (
            "http://user:hunter2@127.0.0.1/x?token=SECRET",
            ErrorKind::UnsupportedScheme,
        ),
        (
            "mailto:hunter2@example.com?token=SECRET",
            ErrorKind::UnsupportedScheme,
        ),
        (
            "foo:user:hunter2@x?token=SECRET",
            ErrorKind::UnsupportedScheme,
        ),
    ];
    for (url, kind) in cases {
        let error = Connection::open(url, options()).unwrap_err();
        assert_eq!(error.kind(), kind, "{url}: {error}");
        assert_error_clean(url, &error);
    }
    assert_log_clean("bad urls");
}

#[tokio::test]
async fn bad_upgrades_are_refused_without_echoing_secrets() {
    captured();
    let port = closed_port().await;
    let url = format!("ws://user:hunter2@127.0.0.1:{port}/");
    let (conn, _events) = Connection::open(&url, options()).unwrap();
    let cases = [
        (secret_upgrade("p?token=SECRET"), ErrorKind::InvalidPath),
        (
            secret_upgrade("/p?token=SECRET#frag"),
            ErrorKind::InvalidPath,
        ),
        (
            secret_upgrade("ws://u:hunter2@h/p?token=SECRET"),
            ErrorKind::InvalidPath,
        ),
        (
            Upgrade::new("/p?token=SECRET").header("authorization", "Bearer SECRET\r\nx: 1"),
            ErrorKind::InvalidHeader,
        ),
        (
            Upgrade::new("/p?token=SECRET").header("x-token", "SECRET\0"),
            ErrorKind::InvalidHeader,
        ),
        (
            Upgrade::new("/p").header("authorization: Bearer SECRET", "v"),
            ErrorKind::InvalidHeader,
        ),
        (
            Upgrade::new("/p").protocol("token SECRET"),
            ErrorKind::InvalidHeader,
        ),
        (
            Upgrade::new("/p").header("sec-websocket-protocol", "a, token SECRET"),
            ErrorKind::InvalidHeader,
        ),
    ];
    for (upgrade, kind) in cases {
        assert_debug_clean("upgrade", &upgrade);
        let error = conn.ws_upgrade_with(upgrade).unwrap_err();
        assert_eq!(error.kind(), kind, "{error}");
        assert_error_clean("bad upgrade", &error);
    }
    assert_log_clean("bad upgrades");
}

#[tokio::test]
async fn a_refused_connection_reports_without_secrets() {
    captured();
    let port = closed_port().await;
    let url = format!("ws://user:hunter2@127.0.0.1:{port}/");
    let secret_provider = || secret_upgrade("/p?token=SECRET");
    let options = options()
        .auto_upgrade_with_sync(secret_provider)
        .add_root_certificate_der(b"SECRET".to_vec());
    assert_debug_clean("options", &options);
    // The certificate is garbage: open refuses it, without showing it.
    let error = Connection::open(&url, options).unwrap_err();
    assert_error_clean("bad certificate", &error);

    let (conn, mut events) = Connection::open(&url, self::options()).unwrap();
    assert_debug_clean("connection", &conn);
    assert_debug_clean("events", &events);
    let upgrade = secret_upgrade("/p?token=SECRET");
    assert_debug_clean("upgrade", &upgrade);
    conn.ws_upgrade_with(upgrade).unwrap();
    let seen = drain_clean("refused connection", &mut events).await;
    assert!(
        seen.iter().any(|event| matches!(
            event,
            Event::Error { error, .. } if error.kind() == ErrorKind::Connect
        )),
        "the refused dial is reported: {seen:?}"
    );
    assert_log_clean("refused connection");
}

/// Against a real server: the secrets do reach it (so the test would see
/// them if they leaked), and no event shows them.
#[cfg(feature = "testkit")]
#[tokio::test]
async fn upgrades_against_a_server_report_without_secrets() {
    use wstether::testkit::TestServer;
    captured();
    let server = TestServer::start().await.unwrap();
    let url = format!("ws://user:hunter2@{}/", server.addr());
    for path in [
        "/p?token=SECRET&reject=401",
        // The server's answer carries a cookie: events must not show it.
        "/p?token=SECRET&close=1008&reason=bye&header=set-cookie:SECRET",
    ] {
        let (conn, mut events) = Connection::open(&url, options()).unwrap();
        conn.ws_upgrade_with(secret_upgrade(path)).unwrap();
        let seen = drain_clean(path, &mut events).await;
        assert!(
            seen.iter()
                .any(|event| matches!(event, Event::Upgraded { .. } | Event::UpgradeFailed { .. })),
            "{path}: the upgrade was answered: {seen:?}"
        );
        if path.contains("set-cookie") {
            // The cookie did arrive: its absence from Debug is redaction.
            assert!(seen.iter().any(|event| matches!(
                event,
                Event::Upgraded { headers, .. } if headers.get("set-cookie").is_some_and(|v| v == "SECRET")
            )));
        }
    }
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    for request in requests {
        assert!(request.path.contains("token=SECRET"), "{request:?}");
        assert_eq!(request.header("authorization"), Some("Bearer SECRET"));
    }
    assert_log_clean("upgrades");
}

// --- robust authority parsing (issue 21, finding 2) ---

/// Every 4-character piece of `secret`: none may appear in what is shown.
fn pieces(secret: &str) -> Vec<String> {
    let chars: Vec<char> = secret.chars().collect();
    chars
        .windows(4)
        .map(|window| window.iter().collect())
        .collect()
}

fn assert_no_piece(what: &str, secrets: &[String], shown: &str) {
    for secret in secrets {
        for piece in pieces(secret) {
            assert!(
                !shown.contains(&piece),
                "{what}: {piece:?} of the secret {secret:?} is shown: {shown}"
            );
        }
    }
}

/// Every way an error is shown, against pieces of the secrets.
fn error_shown(error: &Error) -> String {
    let mut shown = format!("{error} {error:?} {error:#?}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        shown.push_str(&cause.to_string());
        source = cause.source();
    }
    shown
}

fn event_shown(event: &Event) -> String {
    let mut shown = format!("{event:?} {event:#?}");
    match event {
        Event::Error { error, .. } | Event::UpgradeFailed { error, .. } => {
            shown.push_str(&error_shown(error))
        }
        Event::Down { reason, .. } => shown.push_str(&reason.to_string()),
        _ => {}
    }
    shown
}

/// An observer that writes down everything it is shown, formatted.
#[derive(Default)]
struct Recorder(Mutex<String>);

impl Recorder {
    fn note(&self, line: String) {
        self.0.lock().unwrap().push_str(&line);
    }
}

impl wstether::Observer for Recorder {
    fn connect_end(&self, _: u64, attempt: u32, _: Duration, error: Option<&Error>) {
        self.note(format!(
            "connect_end {attempt} {:?}",
            error.map(error_shown)
        ));
    }

    fn upgrade_answered(
        &self,
        stream: wstether::StreamRef,
        status: Option<http::StatusCode>,
        protocol: Option<&str>,
        _: Duration,
        error: Option<&Error>,
    ) {
        self.note(format!(
            "upgrade_answered {stream:?} {status:?} {protocol:?} {:?}",
            error.map(error_shown)
        ));
    }

    fn disconnect(&self, _: u64, reason: &wstether::DownReason, _: Duration) {
        self.note(format!("disconnect {reason} {reason:?}"));
    }
}

/// Opens `url` (through `proxy`, if any) and shows everything that comes
/// of it: the refusal, or every event until the stream ends, and what an
/// observer was shown.
async fn everything_shown(url: &str, proxy: Option<&str>, path: &str) -> String {
    let recorder = Arc::new(Recorder::default());
    let mut options = options().observer(recorder.clone());
    let mut shown = String::new();
    if let Some(proxy) = proxy {
        match wstether::Proxy::http(proxy) {
            Ok(proxy) => {
                shown.push_str(&format!("{proxy:?}"));
                options = options.proxy(proxy);
            }
            Err(error) => shown.push_str(&error_shown(&error)),
        }
    }
    shown.push_str(&format!("{options:?} {options:#?}"));
    let upgrade = Upgrade::new(path);
    shown.push_str(&format!("{upgrade:?}"));
    match Connection::open(url, options) {
        Err(error) => shown.push_str(&error_shown(&error)),
        Ok((conn, mut events)) => {
            shown.push_str(&format!("{conn:?}"));
            if let Err(error) = conn.ws_upgrade_with(upgrade) {
                shown.push_str(&error_shown(&error));
            }
            loop {
                match tokio::time::timeout(PATIENCE, events.recv()).await {
                    Ok(Some(event)) => shown.push_str(&event_shown(&event)),
                    Ok(None) => break,
                    Err(_) => panic!("{url}: the event stream did not end"),
                }
            }
        }
    }
    shown.push_str(&recorder.0.lock().unwrap());
    shown
}

/// Secrets of 6 to 10 characters from capitals and the characters that
/// break naive URL parsing (`?`, `#`, `@`, `%`); no digits or lower case,
/// so that no piece can be a port, a host or a word of a message by chance.
fn secret() -> impl proptest::strategy::Strategy<Value = String> {
    proptest::string::string_regex("[A-Z][A-Z?#@%]{4,8}[A-Z]").unwrap()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 48, ..Default::default() })]

    #[test]
    fn secrets_in_userinfo_and_query_never_show_in_any_output(
        user in secret(),
        password in secret(),
        token in secret(),
        with_path in proptest::bool::ANY,
        through_proxy in proptest::bool::ANY,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let port = closed_port().await;
            // With a path and query, `open` refuses the URL (they belong
            // to the upgrade); without, it dials (and the query secret is
            // in the upgrade's path).
            let url = if with_path {
                format!("ws://{user}:{password}@127.0.0.1:{port}/p?token={token}")
            } else {
                format!("ws://{user}:{password}@127.0.0.1:{port}")
            };
            let proxy_port = closed_port().await;
            let proxy = format!("http://{user}:{password}@127.0.0.1:{proxy_port}");
            let proxy = through_proxy.then_some(proxy.as_str());
            let upgrade_path = format!("/p?token={token}");
            let shown = everything_shown(&url, proxy, &upgrade_path).await;
            assert_no_piece(&url, &[user.clone(), password.clone(), token.clone()], &shown);
        });
    }
}

/// The cases of the finding, one by one: an unencoded `?` or `#` in the
/// password, of the target and of a proxy URL.
#[tokio::test]
async fn secrets_with_unencoded_question_mark_or_hash_in_the_password_never_show() {
    let port = closed_port().await;
    for password in ["hun?ter2", "hunter2?", "hun#ter2", "hun@ter2", "hu%nter2"] {
        let url = format!("ws://alice:{password}@127.0.0.1:{port}/");
        let secret = [password.replace(['?', '#', '@', '%'], "")];
        let shown = everything_shown(&url, None, "/").await;
        assert_no_piece(&url, &secret, &shown.replace(['?', '#', '@', '%'], ""));
        let target = format!("ws://127.0.0.1:{port}/");
        let proxy = format!("http://alice:{password}@127.0.0.1:{port}");
        let shown = everything_shown(&target, Some(&proxy), "/").await;
        assert!(
            shown.contains("connect_end"),
            "the observer saw the dial: {shown}"
        );
        assert_no_piece(&proxy, &secret, &shown.replace(['?', '#', '@', '%'], ""));
    }
}

/// Over-redaction is a defect too: harmless response headers stay visible.
#[cfg(feature = "testkit")]
#[tokio::test]
async fn secrets_redaction_keeps_the_safe_response_headers_visible() {
    use wstether::testkit::TestServer;
    let server = TestServer::start().await.unwrap();
    let url = format!("ws://{}/", server.addr());
    let (conn, mut events) = Connection::open(&url, options()).unwrap();
    conn.ws_upgrade("/?header=date:Thu&header=server:testkit&header=retry-after:5")
        .unwrap();
    loop {
        let event = tokio::time::timeout(PATIENCE, events.recv())
            .await
            .unwrap()
            .unwrap();
        if let Event::Upgraded { .. } = event {
            let shown = format!("{event:?}");
            for visible in [
                "\"date\", \"Thu\"",
                "\"server\", \"testkit\"",
                "\"retry-after\", \"5\"",
                "\"upgrade\", \"websocket\"",
                "\"connection\", \"Upgrade\"",
                "\"sec-websocket-accept\", \"",
            ] {
                assert!(shown.contains(visible), "{visible} hidden: {shown}");
            }
            return;
        }
    }
}

/// The child of [`secrets_a_proxy_url_from_the_environment_never_shows_its_password`]:
/// `Options::default()` (the environment's proxy) against a closed port;
/// prints everything shown, between markers.
#[tokio::test]
async fn secrets_env_child() {
    let Ok(target) = std::env::var("WSTETHER_SECRETS_CHILD") else {
        return;
    };
    let shown = everything_shown(&target, None, "/").await;
    println!("SHOWN<<{shown}>>SHOWN");
}

/// Finding 2 through the environment: `HTTP_PROXY` with an unencoded `?`,
/// `#` or `@` in its password (and one without a scheme) never shows a
/// piece of the password in any event. The client runs in a child process
/// (this binary, re-executed), so the variable touches no other test.
#[test]
fn secrets_a_proxy_url_from_the_environment_never_shows_its_password() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    for proxy in [
        format!("http://alice:HUN?TER@127.0.0.1:{port}"),
        format!("http://alice:HUNTER?@127.0.0.1:{port}"),
        format!("http://alice:HU#NTER@127.0.0.1:{port}"),
        format!("http://alice:HU@NTER@127.0.0.1:{port}"),
        format!("alice:HUN?TER@127.0.0.1:{port}"),
    ] {
        let mut command = std::process::Command::new(std::env::current_exe().unwrap());
        command
            .args([
                "--exact",
                "secrets_env_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("WSTETHER_SECRETS_CHILD", format!("ws://127.0.0.1:{port}/"))
            .stdin(std::process::Stdio::null());
        for var in [
            "http_proxy",
            "HTTP_PROXY",
            "https_proxy",
            "HTTPS_PROXY",
            "all_proxy",
            "ALL_PROXY",
            "no_proxy",
            "NO_PROXY",
        ] {
            command.env_remove(var);
        }
        let out = command.env("HTTP_PROXY", &proxy).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{proxy}: the child failed:\n{text}");
        let shown = text
            .split_once("SHOWN<<")
            .and_then(|(_, rest)| rest.split_once(">>SHOWN"))
            .map(|(shown, _)| shown)
            .unwrap_or_else(|| panic!("{proxy}: nothing shown:\n{text}"));
        assert!(
            shown.contains("proxy") || shown.contains("Proxy"),
            "{proxy}: the proxy was used: {shown}"
        );
        let password = proxy
            .trim_start_matches("http://")
            .split_once(':')
            .map(|(_, rest)| &rest[..rest.rfind('@').unwrap()])
            .unwrap()
            .replace(['?', '#', '@'], "");
        assert_no_piece(&proxy, &[password], &shown.replace(['?', '#', '@'], ""));
    }
}
