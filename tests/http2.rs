//! WebSocket over HTTP/2 (RFC 8441, extended CONNECT) against the testkit
//! in its HTTP/2 mode: over TLS (ALPN `h2`) and cleartext (prior
//! knowledge), the fallback to HTTP/1.1 when the server does not enable
//! the CONNECT protocol, `Http2::Require`, refusals, resets, reconnects,
//! large messages and the Socket API. docs/http2.md has the rules.
#![cfg(native)]

mod common;
mod tls_support;

use bytes::Bytes;
use common::{options, until};
use wstether::http::{StatusCode, Version};
use wstether::{
    Connection, DownReason, ErrorKind, Event, Frame, Http2, Options, Socket, SocketEvent, StreamRef,
};
use wstether_testkit::{Http2 as ServerHttp2, TestServer};

/// A TLS testkit server on `localhost` in HTTP/2 mode `mode`, and options
/// trusting it.
async fn tls_server(mode: ServerHttp2) -> (TestServer, Options) {
    let ca = tls_support::ca("wstether h2 test CA");
    let leaf = ca.server(&["localhost"]);
    let server = TestServer::start_tls_http2(vec![leaf.der], leaf.key_der, mode)
        .await
        .unwrap();
    (server, options().add_root_certificate_der(ca.der))
}

/// Opens `server` with `options`, upgrades `path` and waits for the
/// answer, which must be `Upgraded`: the connection, its events, the
/// Websocket and the `Upgraded` event.
async fn upgraded(
    server: &TestServer,
    path: &str,
    options: Options,
) -> (Connection, wstether::Events, StreamRef, Event) {
    let (conn, mut events) = Connection::open(&server.url("/"), options).unwrap();
    until(&mut events, common::is_up).await;
    let stream = conn.ws_upgrade(path).unwrap();
    let (event, skipped) = until(&mut events, |e| {
        matches!(e, Event::Upgraded { .. } | Event::UpgradeFailed { .. })
    })
    .await;
    assert!(
        matches!(event, Event::Upgraded { .. }),
        "{event:?} after {skipped:?}"
    );
    (conn, events, stream, event)
}

/// The next data frame.
async fn next_frame(events: &mut wstether::Events) -> Frame {
    let (event, _) = until(events, |e| matches!(e, Event::Frame { .. })).await;
    match event {
        Event::Frame { frame, .. } => frame,
        _ => unreachable!(),
    }
}

/// Echo of text, binary and a ping's pong over HTTP/2 on TLS (ALPN h2, the
/// default `Http2::PreferOverTls`); `Upgraded` says HTTP/2, and the server
/// saw an extended CONNECT (no `Sec-WebSocket-Key`).
#[tokio::test]
async fn http2_tls_upgrade_and_echo() {
    let (server, options) = tls_server(ServerHttp2::On).await;
    let (conn, mut events, stream, event) =
        upgraded(&server, "/echo", options.silence_pings(false)).await;
    assert_eq!(event.http_version(), Some(Version::HTTP_2), "{event:?}");
    let Event::Upgraded { http_version, .. } = event else {
        unreachable!()
    };
    assert_eq!(http_version, Version::HTTP_2);
    let request = &server.requests()[0];
    assert_eq!(request.path, "/echo");
    assert_eq!(request.header("sec-websocket-key"), None);
    assert_eq!(request.header("sec-websocket-version"), Some("13"));

    conn.ws_send(stream, Frame::text("hello over h2")).unwrap();
    assert_eq!(next_frame(&mut events).await, Frame::text("hello over h2"));
    conn.ws_send(stream, Frame::binary(vec![0u8, 1, 2, 255]))
        .unwrap();
    assert_eq!(
        next_frame(&mut events).await,
        Frame::binary(vec![0u8, 1, 2, 255])
    );
    conn.ws_send(stream, Frame::Ping(Bytes::from_static(b"p")))
        .unwrap();
    assert_eq!(
        next_frame(&mut events).await,
        Frame::Pong(Bytes::from_static(b"p"))
    );
    server.wait_for_pings(1).await;
    // One TCP connection carried it all.
    assert_eq!(server.accepted_connections(), 1);
}

/// Cleartext HTTP/2 with prior knowledge, when asked (`Http2::Prefer`).
#[tokio::test]
async fn http2_cleartext_prior_knowledge_when_asked() {
    let server = TestServer::start_http2(ServerHttp2::On).await.unwrap();
    let (conn, mut events, stream, event) =
        upgraded(&server, "/", options().http2(Http2::Prefer)).await;
    assert_eq!(event.http_version(), Some(Version::HTTP_2));
    conn.ws_send(stream, Frame::text("h2c")).unwrap();
    assert_eq!(next_frame(&mut events).await, Frame::text("h2c"));
}

/// Over cleartext the default is HTTP/1.1, even against a server that
/// speaks HTTP/2 with prior knowledge.
#[tokio::test]
async fn http2_off_over_cleartext_by_default() {
    let server = TestServer::start_http2(ServerHttp2::On).await.unwrap();
    let (_conn, _events, _, event) = upgraded(&server, "/", options()).await;
    assert_eq!(event.http_version(), Some(Version::HTTP_11));
    assert!(server.requests()[0].header("sec-websocket-key").is_some());
}

/// `Http2::Off` over TLS offers no `h2`: HTTP/1.1 against an h2 server.
#[tokio::test]
async fn http2_off_over_tls_speaks_http1() {
    let (server, options) = tls_server(ServerHttp2::On).await;
    let (_conn, _events, _, event) = upgraded(&server, "/", options.http2(Http2::Off)).await;
    assert_eq!(event.http_version(), Some(Version::HTTP_11));
}

/// A server that picked h2 without enabling the CONNECT protocol gets a
/// fresh HTTP/1.1 connection, as browsers do: two TCP connections, the
/// Websocket on the second, over HTTP/1.1.
#[tokio::test]
async fn http2_falls_back_to_http1_without_connect_protocol() {
    let (server, options) = tls_server(ServerHttp2::WithoutConnectProtocol).await;
    let (conn, mut events, stream, event) = upgraded(&server, "/", options).await;
    assert_eq!(event.http_version(), Some(Version::HTTP_11));
    assert_eq!(server.accepted_connections(), 2);
    conn.ws_send(stream, Frame::text("fallback")).unwrap();
    assert_eq!(next_frame(&mut events).await, Frame::text("fallback"));

    // Cleartext, prior knowledge: the same.
    let server = TestServer::start_http2(ServerHttp2::WithoutConnectProtocol)
        .await
        .unwrap();
    let (_conn, _events, _, event) = upgraded(&server, "/", options_h2(Http2::Prefer)).await;
    assert_eq!(event.http_version(), Some(Version::HTTP_11));
}

fn options_h2(http2: Http2) -> Options {
    options().http2(http2)
}

/// `Http2::Require` against a server without the CONNECT protocol (and
/// against one that speaks HTTP/1.1 only): a typed `Http2Unavailable`.
#[tokio::test]
async fn http2_require_without_connect_protocol_is_a_typed_error() {
    for mode in [ServerHttp2::WithoutConnectProtocol, ServerHttp2::Off] {
        let (server, options) = tls_server(mode).await;
        let (_conn, mut events) =
            Connection::open(&server.url("/"), options.http2(Http2::Require)).unwrap();
        let (event, _) = until(&mut events, |e| matches!(e, Event::Error { .. })).await;
        let Event::Error { error, .. } = event else {
            unreachable!()
        };
        assert_eq!(
            error.kind(),
            ErrorKind::Http2Unavailable,
            "{mode:?}: {error}"
        );
        assert!(server.requests().is_empty(), "no upgrade was sent");
    }
}

/// A 4xx answer to the extended CONNECT is `UpgradeFailed` with its
/// status and headers, judged by the retry policy as over HTTP/1.1 (a 403
/// is not retried: the connection ends).
#[tokio::test]
async fn http2_refused_connect_is_upgrade_failed_with_status() {
    let (server, options) = tls_server(ServerHttp2::On).await;
    let (conn, mut events) = Connection::open(&server.url("/"), options).unwrap();
    until(&mut events, common::is_up).await;
    conn.ws_upgrade("/?reject=403&header=x-why:no").unwrap();
    let (event, _) = until(&mut events, |e| matches!(e, Event::UpgradeFailed { .. })).await;
    let Event::UpgradeFailed {
        status,
        headers,
        error,
        ..
    } = event
    else {
        unreachable!()
    };
    assert_eq!(status, Some(StatusCode::FORBIDDEN));
    assert_eq!(headers.get("x-why").unwrap(), "no");
    assert_eq!(error.kind(), ErrorKind::Upgrade);
    let (event, _) = until(&mut events, common::is_down).await;
    assert!(
        matches!(
            event,
            Event::Down {
                will_reconnect: false,
                ..
            }
        ),
        "{event:?}"
    );
}

/// A `RST_STREAM` from the server is a typed `StreamReset`, and the
/// Websocket goes down with it.
#[tokio::test]
async fn http2_stream_reset_is_a_typed_error() {
    let (server, options) = tls_server(ServerHttp2::On).await;
    let (conn, mut events, stream, _) = upgraded(&server, "/?h2_reset=1", options).await;
    conn.ws_send(stream, Frame::text("then reset")).unwrap();
    let (event, _) = until(&mut events, common::is_down).await;
    let Event::Down {
        reason: DownReason::Error(error),
        ..
    } = event
    else {
        panic!("{event:?}")
    };
    assert_eq!(error.kind(), ErrorKind::StreamReset, "{error}");
    assert!(error.to_string().contains("INTERNAL_ERROR"), "{error}");
}

/// The server restarts: the connection comes back and `auto_upgrade`
/// upgrades again, over HTTP/2.
#[tokio::test]
async fn http2_reconnect_reupgrades_over_h2() {
    let (server, options) = tls_server(ServerHttp2::On).await;
    let (conn, mut events, _, _) = upgraded(&server, "/", options.auto_upgrade(true)).await;
    server.stop().await;
    until(&mut events, common::is_down).await;
    server.restart().await.unwrap();
    let (event, _) = until(&mut events, common::is_upgraded).await;
    assert_eq!(event.http_version(), Some(Version::HTTP_2));
    let Event::Upgraded { stream, .. } = event else {
        unreachable!()
    };
    conn.ws_send(stream, Frame::text("again")).unwrap();
    assert_eq!(next_frame(&mut events).await, Frame::text("again"));
    assert_eq!(server.requests().len(), 2);
}

/// Large messages cross many DATA frames and flow-control windows (the
/// stream's window is 256 KiB): 3 MiB each way, in order.
#[tokio::test]
async fn http2_large_messages() {
    let (server, options) = tls_server(ServerHttp2::On).await;
    let (conn, mut events, stream, _) = upgraded(&server, "/", options).await;
    let big: Vec<u8> = (0..3 << 20).map(|i| (i % 251) as u8).collect();
    let text = "x".repeat(300_000);
    conn.ws_send(stream, Frame::binary(big.clone())).unwrap();
    conn.ws_send(stream, Frame::text(text.clone())).unwrap();
    conn.ws_send(stream, Frame::binary(big.clone())).unwrap();
    assert_eq!(next_frame(&mut events).await, Frame::binary(big.clone()));
    assert_eq!(next_frame(&mut events).await, Frame::text(text));
    assert_eq!(next_frame(&mut events).await, Frame::binary(big));
}

/// A burst the server sends (1,000 frames of 4 KiB) arrives whole and in
/// order.
#[tokio::test]
async fn http2_server_burst_in_order() {
    let (server, options) = tls_server(ServerHttp2::On).await;
    let (_conn, mut events, _, _) =
        upgraded(&server, "/?send=1000&size=4096&kind=binary", options).await;
    for i in 0..1000 {
        let Frame::Binary(data) = next_frame(&mut events).await else {
            panic!("not binary")
        };
        assert_eq!(data.len(), 4096);
        assert!(data.starts_with(format!("{i} ").as_bytes()));
    }
}

/// A close frame from the server over HTTP/2 ends the Websocket as over
/// HTTP/1.1: `Down` with the server's close frame.
#[tokio::test]
async fn http2_server_close() {
    let (server, options) = tls_server(ServerHttp2::On).await;
    let (_conn, mut events, _, _) = upgraded(&server, "/?close=4001&reason=bye", options).await;
    let (event, _) = until(&mut events, common::is_down).await;
    assert!(
        matches!(
            &event,
            Event::Down {
                reason: DownReason::ClosedByPeer(close),
                ..
            } if close.code.as_u16() == 4001
        ),
        "{event:?}"
    );
}

/// The reconnecting Socket API over HTTP/2: open, echo, and open again
/// after the server restarts.
#[tokio::test]
async fn http2_socket_api() {
    let (server, options) = tls_server(ServerHttp2::On).await;
    let mut socket = Socket::open(&server.url("/"), options).unwrap();
    let open = loop {
        match tokio::time::timeout(common::PATIENCE, socket.recv_event())
            .await
            .unwrap()
        {
            Some(SocketEvent::Open { .. }) => break true,
            Some(_) => continue,
            None => break false,
        }
    };
    assert!(open);
    assert_eq!(socket.http_version(), Some(Version::HTTP_2));
    socket.send(Frame::text("socket over h2")).await.unwrap();
    let echoed = socket.recv().await.unwrap();
    assert_eq!(echoed, Frame::text("socket over h2"));
    server.stop().await;
    server.restart().await.unwrap();
    loop {
        match tokio::time::timeout(common::PATIENCE, socket.recv_event())
            .await
            .unwrap()
        {
            Some(SocketEvent::Open { .. }) => break,
            Some(_) => continue,
            None => panic!("the socket ended"),
        }
    }
    assert_eq!(socket.http_version(), Some(Version::HTTP_2));
    socket.send(Frame::text("again")).await.unwrap();
    assert_eq!(socket.recv().await.unwrap(), Frame::text("again"));
}

/// `Http2::Require` with a TLS configuration whose ALPN leaves out `h2`
/// is refused at `open`.
#[tokio::test]
async fn http2_require_with_alpn_without_h2_is_refused_at_open() {
    let ca = tls_support::ca("wstether h2 test CA");
    let mut config = (*tls_support::trusting(&ca.der)).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let options = options()
        .tls_config(std::sync::Arc::new(config))
        .http2(Http2::Require);
    let error = Connection::open("wss://localhost:1/", options).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidOption, "{error}");
}

/// Your own `tls_config` without ALPN: HTTP/2 is offered on a copy of it;
/// with `h2` in its ALPN list and `Http2::Off`, `h2` is taken out (on a
/// copy), so the Websocket is HTTP/1.1; your configuration is unchanged.
#[tokio::test]
async fn http2_with_your_tls_config() {
    let ca = tls_support::ca("wstether h2 test CA");
    let leaf = ca.server(&["localhost"]);
    let server = TestServer::start_tls_http2(vec![leaf.der], leaf.key_der, ServerHttp2::On)
        .await
        .unwrap();
    let config = tls_support::trusting(&ca.der);
    let (_conn, _events, _, event) =
        upgraded(&server, "/", options().tls_config(config.clone())).await;
    assert_eq!(event.http_version(), Some(Version::HTTP_2));
    assert!(
        config.alpn_protocols.is_empty(),
        "the user's config is unchanged"
    );

    let mut with_h2 = (*config).clone();
    with_h2.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let with_h2 = std::sync::Arc::new(with_h2);
    let options = options().tls_config(with_h2.clone()).http2(Http2::Off);
    let (_conn, _events, _, event) = upgraded(&server, "/", options).await;
    assert_eq!(event.http_version(), Some(Version::HTTP_11));
    assert_eq!(
        with_h2.alpn_protocols.len(),
        2,
        "the user's config is unchanged"
    );
}

/// A server that never sends its SETTINGS (it reads and never answers):
/// the attempt ends at the connect timeout with a typed `Timeout`, never
/// a hang.
#[tokio::test]
async fn http2_server_that_never_sends_settings_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket); // read nothing, write nothing
        }
    });
    let options = options().http2(Http2::Require).retry(
        wstether::Retry::default()
            .max_retries(0)
            .connect_timeout(std::time::Duration::from_millis(300)),
    );
    let (_conn, mut events) = Connection::open(&format!("ws://127.0.0.1:{port}"), options).unwrap();
    let (event, _) = until(&mut events, |e| matches!(e, Event::Error { .. })).await;
    let Event::Error { error, .. } = event else {
        unreachable!()
    };
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error}");
}

/// A stream whose window never opens (the server never reads it): the
/// client's writes stop at the stream's window, its keepalive pings are
/// stuck behind them, and the peer is declared dead: `Down`, with the
/// frames that were not written given back, never a hang.
#[tokio::test]
async fn http2_window_that_never_opens_is_a_dead_peer() {
    let (server, options) = tls_server(ServerHttp2::On).await;
    let short = std::time::Duration::from_millis(200);
    let options = options.keepalive(wstether::Keepalive::every(short).timeout(short));
    let (conn, mut events, stream, _) = upgraded(&server, "/?silent=1", options).await;
    for _ in 0..8 {
        conn.ws_send(stream, Frame::binary(vec![7u8; 256 << 10]))
            .unwrap();
    }
    let (event, _) = until(&mut events, common::is_down).await;
    let Event::Down { unsent, .. } = event else {
        unreachable!()
    };
    assert!(
        !unsent.is_empty(),
        "the frames stuck behind the window come back"
    );
}

/// Over HTTP/2 the keepalive probes the connection with PINGs (answered
/// by the server's HTTP/2 layer), not the stream with ping frames: here
/// the server never reads the stream, yet every probe is answered, the
/// round trip is measured, and the server saw no ping frame.
#[tokio::test]
async fn http2_keepalive_probes_with_connection_pings() {
    let server = TestServer::start_http2(ServerHttp2::On).await.unwrap();
    let every = std::time::Duration::from_millis(20);
    let options = options()
        .http2(Http2::Prefer)
        .silence_pings(false) // the probes' answers become events
        .keepalive(wstether::Keepalive::every(every).timeout(common::PATIENCE));
    let (conn, mut events, _, _) = upgraded(&server, "/?silent=1", options).await;
    let mut answers = Vec::new();
    while answers.len() < 3 {
        if let Frame::Pong(payload) = next_frame(&mut events).await {
            answers.push(payload);
        }
    }
    assert!(answers.iter().all(|p| p.len() == 8), "{answers:?}");
    assert_ne!(answers[0], answers[1], "each probe has its own answer");
    assert!(conn.rtt().is_some());
    assert!(server.pings().is_empty(), "no ping frame on the stream");
}

/// A hung HTTP/2 peer (its connection stops: no reads, no PING answers,
/// TCP left open) is declared dead by the keepalive: `Down(PeerDead)`.
#[tokio::test]
async fn http2_hung_connection_is_a_dead_peer() {
    let server = TestServer::start_http2(ServerHttp2::On).await.unwrap();
    let short = std::time::Duration::from_millis(100);
    let options = options()
        .http2(Http2::Prefer)
        .keepalive(wstether::Keepalive::every(short).timeout(short));
    let (conn, mut events, stream, _) = upgraded(&server, "/?h2_freeze=1", options).await;
    conn.ws_send(stream, Frame::text("the first bytes"))
        .unwrap();
    let (event, _) = until(&mut events, common::is_down).await;
    assert!(
        matches!(
            event,
            Event::Down {
                reason: DownReason::PeerDead,
                ..
            }
        ),
        "{event:?}"
    );
}

/// A `GOAWAY` with the Websocket's stream open: the Websocket is lost
/// (`Down`, an error, never a hang), and the reconnect upgrades again
/// over HTTP/2 on a new connection.
#[tokio::test]
async fn http2_goaway_with_the_stream_open_reconnects() {
    let (server, options) = tls_server(ServerHttp2::On).await;
    let (conn, mut events, stream, _) =
        upgraded(&server, "/?h2_goaway=1", options.auto_upgrade(true)).await;
    conn.ws_send(stream, Frame::text("before the goaway"))
        .unwrap();
    let (event, _) = until(&mut events, common::is_down).await;
    assert!(
        matches!(
            &event,
            Event::Down {
                reason: DownReason::Error(_),
                will_reconnect: true,
                ..
            }
        ),
        "{event:?}"
    );
    let (event, _) = until(&mut events, common::is_upgraded).await;
    assert_eq!(event.http_version(), Some(Version::HTTP_2));
    assert_eq!(server.accepted_connections(), 2);
}
