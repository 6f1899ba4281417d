//! Upgrades: without and with headers, subprotocols, success and failure
//! events: each upgrade gets a new `StreamRef`, answered by one
//! `Event::Upgraded` (with the protocol the server chose) or one
//! `Event::UpgradeFailed` (with the status and headers).
#![cfg(native)]

mod common;

use common::{next, options, until};
use wstether::{connect, Connection, ErrorKind, Event, Upgrade};
use wstether_testkit::TestServer;

#[tokio::test]
async fn upgrade_without_headers_reaches_the_server() {
    let server = TestServer::start().await.unwrap();
    let (conn, mut events) = Connection::open(&server.url(""), options()).unwrap();
    let stream = conn.ws_upgrade("/websocket").unwrap();
    assert!(matches!(next(&mut events).await, Event::Up { attempt: 1 }));
    match next(&mut events).await {
        Event::Upgraded {
            stream: s,
            protocol,
            ..
        } => {
            assert_eq!(s, stream);
            assert_eq!(protocol, None);
        }
        other => panic!("expected Upgraded, got {other:?}"),
    }
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/websocket");
    assert!(requests[0].offered_protocols.is_empty());
}

#[tokio::test]
async fn upgrade_with_headers_sends_them_and_negotiates_the_protocol() {
    let server = TestServer::start().await.unwrap();
    let (conn, mut events) = Connection::open(&server.url(""), options()).unwrap();
    // The subprotocol offered as a raw `sec-websocket-protocol` header, as
    // Gun's users do, beside another custom header.
    let upgrade = Upgrade::new("/websocket?header=x-answer:42")
        .header("sec-websocket-protocol", "mychat")
        .header("authorization", "Bearer t0k3n");
    let stream = conn.ws_upgrade_with(upgrade).unwrap();
    let (event, _) = until(&mut events, common::is_upgraded).await;
    let Event::Upgraded {
        stream: s,
        protocol,
        headers,
        ..
    } = event
    else {
        unreachable!()
    };
    assert_eq!(s, stream);
    assert_eq!(protocol.as_deref(), Some("mychat"));
    assert_eq!(
        headers.get("x-answer").unwrap(),
        "42",
        "response headers are reported"
    );
    let request = &server.requests()[0];
    assert_eq!(request.header("authorization"), Some("Bearer t0k3n"));
    assert_eq!(request.offered_protocols, ["mychat"]);
}

#[tokio::test]
async fn the_server_picks_among_several_offered_protocols() {
    let server = TestServer::start().await.unwrap();
    let (conn, mut events) = Connection::open(&server.url(""), options()).unwrap();
    conn.ws_upgrade_with(Upgrade::new("/?protocol=v2").protocol("v1").protocol("v2"))
        .unwrap();
    let (event, _) = until(&mut events, common::is_upgraded).await;
    assert!(matches!(event, Event::Upgraded { protocol: Some(p), .. } if p == "v2"));
}

#[tokio::test]
async fn a_refused_upgrade_reports_status_and_headers() {
    let server = TestServer::start().await.unwrap();
    let (conn, mut events) = Connection::open(&server.url(""), options()).unwrap();
    let stream = conn
        // 503: a status the retry policy retries (a 401 without an upgrade
        // provider would end the connection, see tests/upgrade_refused.rs).
        .ws_upgrade("/websocket?reject=503&header=www-authenticate:Bearer")
        .unwrap();
    let (event, _) = until(&mut events, |e| matches!(e, Event::UpgradeFailed { .. })).await;
    let Event::UpgradeFailed {
        stream: s,
        status,
        headers,
        error,
    } = event
    else {
        unreachable!()
    };
    assert_eq!(s, stream);
    assert_eq!(status.map(|s| s.as_u16()), Some(503));
    assert_eq!(headers.get("www-authenticate").unwrap(), "Bearer");
    assert_eq!(headers.get("x-testkit-reason").unwrap(), "rejected");
    assert_eq!(error.kind(), ErrorKind::Upgrade);
    // The refusal used up the HTTP connection: it goes down and comes back.
    let (event, _) = until(&mut events, common::is_down).await;
    assert!(matches!(
        event,
        Event::Down {
            reason: wstether::DownReason::UpgradeRejected,
            will_reconnect: true,
            ..
        }
    ));
    assert!(matches!(
        until(&mut events, common::is_up).await.0,
        Event::Up { attempt: 2 }
    ));
}

#[tokio::test]
async fn a_protocol_the_client_did_not_offer_fails_the_upgrade() {
    let server = TestServer::start().await.unwrap();
    let (conn, mut events) = Connection::open(&server.url(""), options()).unwrap();
    let stream = conn
        .ws_upgrade_with(Upgrade::new("/?protocol=evil").protocol("good"))
        .unwrap();
    let (event, _) = until(&mut events, |e| matches!(e, Event::UpgradeFailed { .. })).await;
    let Event::UpgradeFailed {
        stream: s, error, ..
    } = event
    else {
        unreachable!()
    };
    assert_eq!(s, stream);
    assert_eq!(error.kind(), ErrorKind::Upgrade);
}

#[tokio::test]
async fn a_server_answering_garbage_fails_the_upgrade_with_a_typed_error() {
    let server = TestServer::start().await.unwrap();
    let (conn, mut events) = Connection::open(&server.url(""), options()).unwrap();
    conn.ws_upgrade("/?garbage=1").unwrap();
    let (event, _) = until(&mut events, |e| matches!(e, Event::UpgradeFailed { .. })).await;
    let Event::UpgradeFailed { status, error, .. } = event else {
        unreachable!()
    };
    assert_eq!(status, None);
    assert!(
        matches!(error.kind(), ErrorKind::Upgrade | ErrorKind::Io),
        "{error}"
    );
}

#[tokio::test]
async fn an_upgrade_the_server_never_answers_times_out() {
    let server = TestServer::start().await.unwrap();
    let options = options().upgrade_timeout(std::time::Duration::from_millis(200));
    let (conn, mut events) = Connection::open(&server.url(""), options).unwrap();
    conn.ws_upgrade("/?no_upgrade=1").unwrap();
    let (event, _) = until(&mut events, |e| matches!(e, Event::UpgradeFailed { .. })).await;
    let Event::UpgradeFailed { error, .. } = event else {
        unreachable!()
    };
    assert_eq!(error.kind(), ErrorKind::Timeout);
    let (event, _) = until(&mut events, common::is_down).await;
    assert!(matches!(
        event,
        Event::Down {
            will_reconnect: true,
            ..
        }
    ));
}

#[tokio::test]
async fn connect_opens_and_upgrades_in_one_step() {
    let server = TestServer::start().await.unwrap();
    let (conn, mut events, stream) = connect(&server.url("/echo?x=1"), options()).await.unwrap();
    assert_eq!(server.requests()[0].path, "/echo?x=1");
    conn.ws_send(stream, wstether::Frame::text("hi")).unwrap();
    assert!(
        matches!(next(&mut events).await, Event::Frame { frame, .. } if frame == wstether::Frame::text("hi"))
    );
}

#[tokio::test]
async fn connect_reports_a_refused_upgrade() {
    let server = TestServer::start().await.unwrap();
    let error = connect(&server.url("/?reject=403"), options())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::UpgradeRefused);
    assert_eq!(error.status().map(|s| s.as_u16()), Some(403));
}

/// A one-shot server that answers the upgrade with a valid 101 plus the
/// given extra header lines, then holds the connection until the client
/// goes (a raw socket: the testkit never names extensions).
async fn answer_101_with(extra: &'static str) -> (String, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 2048];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(n > 0, "the client closed before its request ended");
            head.extend_from_slice(&buf[..n]);
        }
        let request = String::from_utf8_lossy(&head).to_ascii_lowercase();
        assert!(
            !request.contains("sec-websocket-extensions"),
            "wstether offers no extension: {request}"
        );
        let key = String::from_utf8_lossy(&head)
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("sec-websocket-key")
                    .then(|| value.trim().to_owned())
            })
            .expect("a Sec-WebSocket-Key");
        let answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n{extra}\r\n",
            derive_accept_key(key.as_bytes())
        );
        tcp.write_all(answer.as_bytes()).await.unwrap();
        // Hold until the client drops the connection.
        while matches!(tcp.read(&mut buf).await, Ok(n) if n > 0) {}
    });
    (url, task)
}

#[tokio::test]
async fn an_extension_the_client_did_not_offer_fails_the_upgrade() {
    let (url, server) = answer_101_with("Sec-WebSocket-Extensions: permessage-deflate\r\n").await;
    let options = options().retry(wstether::Retry::never());
    let (conn, mut events) = Connection::open(&url, options).unwrap();
    let stream = conn.ws_upgrade("/").unwrap();
    let (event, before) = until(&mut events, |e| {
        matches!(e, Event::UpgradeFailed { .. } | Event::Upgraded { .. })
    })
    .await;
    let Event::UpgradeFailed {
        stream: failed,
        error,
        ..
    } = event
    else {
        panic!("an unoffered extension was accepted: {event:?} after {before:?}");
    };
    assert_eq!(failed, stream);
    assert_eq!(error.kind(), ErrorKind::Upgrade);
    assert!(error.to_string().contains("permessage-deflate"), "{error}");
    let (down, _) = until(&mut events, common::is_down).await;
    assert!(
        matches!(
            down,
            Event::Down {
                will_reconnect: false,
                ..
            }
        ),
        "{down:?}"
    );
    assert!(events.recv().await.is_none(), "the connection ended");
    server.await.unwrap();
}

#[tokio::test]
async fn the_same_101_without_extensions_upgrades() {
    let (url, server) = answer_101_with("").await;
    let (conn, mut events) = Connection::open(&url, options()).unwrap();
    let stream = conn.ws_upgrade("/").unwrap();
    let (event, _) = until(&mut events, |e| {
        matches!(e, Event::UpgradeFailed { .. } | Event::Upgraded { .. })
    })
    .await;
    assert!(
        matches!(event, Event::Upgraded { stream: s, .. } if s == stream),
        "{event:?}"
    );
    drop(conn);
    drop(events);
    server.await.unwrap();
}
