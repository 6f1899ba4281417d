//! RFC 6455's client-side MUSTs as a table (issue 21, item 3): one row per
//! rule, every row run through every read path, each pair its own test
//! (`conformance_<rule>::<path>`), so a failure names the rule and the path.
//!
//! The paths:
//! - `plain`: no compression, small frames (the coalescer takes whole,
//!   valid data frames beside tungstenite; tungstenite reads the rest and
//!   reports what breaks a rule);
//! - `fast`: a 70,000-byte binary frame first, which the coalescer's fast
//!   path takes beside tungstenite, then the row's bytes;
//! - `deflate`: permessage-deflate offered and agreed (the deflate layer
//!   follows the frames);
//! - `proxy`: through an HTTP CONNECT tunnel, with the fast path's large
//!   frame first;
//! - `h2`: over HTTP/2 (RFC 8441, an extended CONNECT stream on the
//!   testkit's HTTP/2 mode, prior knowledge), with the fast path's large
//!   frame first. The rules on the `101`'s headers have no HTTP/2 row (no
//!   `Sec-WebSocket-Accept`, `Upgrade` or `Connection` there; a `200` is
//!   the answer): they are marked `not_over_h2`.
//!
//! The server is the testkit (`bad_frame=`, `bad_101=`, `protocol=`,
//! `header=`); the proxy is a small CONNECT tunnel on loopback in this file.
#![cfg(native)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wstether::{
    Compression, Connection, DownReason, ErrorKind, Event, Frame, Http2, Options, Proxy, Retry,
};
use wstether_testkit::{Http2 as ServerHttp2, TestServer};

/// The payload of the fast path's large frame (`large_first=1`).
const LARGE_FIRST: usize = 70_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    Plain,
    Fast,
    Deflate,
    Proxy,
    H2,
}

/// What a row expects.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// The connection fails with this kind, and the server receives a
    /// close frame with this code (§7.4.1).
    Fail(ErrorKind, u16),
    /// The upgrade is refused (§4.1): no `Upgraded`, an `UpgradeFailed`.
    Refused,
    /// Text `ab` and ping `p` arrive, then the server's close.
    Delivered,
    /// The server's close arrives and nothing after it.
    NothingAfterClose,
    /// The server's close (1001) is answered with a close frame.
    CloseAnswered,
}

/// A CONNECT proxy on 127.0.0.1:0 for the `proxy` path: it answers `200`
/// and then copies bytes both ways; the count is of tunnels opened.
async fn connect_proxy() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tunnels = Arc::new(AtomicUsize::new(0));
    let count = tunnels.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                    if client.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let text = String::from_utf8_lossy(&head);
                let Some(target) = text
                    .strip_prefix("CONNECT ")
                    .and_then(|rest| rest.split(' ').next())
                else {
                    return;
                };
                let Ok(mut server) = tokio::net::TcpStream::connect(target).await else {
                    return;
                };
                count.fetch_add(1, Ordering::SeqCst);
                if client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                    .is_ok()
                {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    (format!("http://{addr}"), tunnels)
}

/// Runs `query` against a fresh testkit through `path`; checks `expect`.
async fn row(path: Path, query: &str, expect: Expect) {
    let server = if path == Path::H2 {
        TestServer::start_http2(ServerHttp2::On).await.unwrap()
    } else {
        TestServer::start().await.unwrap()
    };
    let mut options = Options::default()
        .retry(Retry::never())
        .no_keepalive()
        .silence_pings(false);
    let mut query = query.to_owned();
    let mut tunnels = None;
    match path {
        Path::Plain => {}
        Path::Fast => query.push_str("&large_first=1"),
        Path::Deflate => {
            options = options.compression(Compression::deflate());
            query.push_str("&header=Sec-WebSocket-Extensions:permessage-deflate");
        }
        Path::Proxy => {
            let (proxy, count) = connect_proxy().await;
            options = options.proxy(Proxy::http(&proxy).unwrap());
            tunnels = Some(count);
            query.push_str("&large_first=1");
        }
        Path::H2 => {
            options = options.http2(Http2::Require);
            query.push_str("&large_first=1");
        }
    }
    let (conn, mut events) = Connection::open(&server.url(""), options).unwrap();
    conn.ws_upgrade(&format!("/?{query}")).unwrap();
    let seen = common::rest(&mut events).await;
    let what = format!("{path:?} ?{query}");
    if let Some(tunnels) = tunnels {
        assert_eq!(
            tunnels.load(Ordering::SeqCst),
            1,
            "{what}: through the tunnel"
        );
    }
    let upgraded = seen.iter().any(common::is_upgraded);
    let mut frames: Vec<&Frame> = seen
        .iter()
        .filter_map(|e| match e {
            Event::Frame { frame, .. } => Some(frame),
            _ => None,
        })
        .collect();
    // The fast path's large frame comes first, whole.
    if upgraded && matches!(path, Path::Fast | Path::Proxy | Path::H2) {
        if path == Path::H2 {
            assert!(
                seen.iter()
                    .any(|e| e.http_version() == Some(wstether::http::Version::HTTP_2)),
                "{what}: over HTTP/2: {seen:?}"
            );
        }
        assert!(
            matches!(frames.first(), Some(Frame::Binary(data)) if data.len() == LARGE_FIRST && data.iter().all(|&b| b == b'L')),
            "{what}: the large frame first: {seen:?}"
        );
        frames.remove(0);
    }
    let down = seen.iter().rev().find(|e| common::is_down(e));
    match expect {
        Expect::Fail(kind, code) => {
            assert!(upgraded, "{what}: {seen:?}");
            assert!(
                frames.is_empty(),
                "{what}: nothing of the bad frame: {seen:?}"
            );
            match down {
                Some(Event::Down {
                    reason: DownReason::Error(error),
                    ..
                }) => assert_eq!(error.kind(), kind, "{what}: {error}"),
                other => panic!("{what}: expected a typed error, got {other:?}"),
            }
            tokio::time::timeout(common::PATIENCE, server.wait_for_client_close_codes(1))
                .await
                .unwrap_or_else(|_| panic!("{what}: the server got no close frame"));
            assert_eq!(server.client_close_codes(), [code], "{what}");
        }
        Expect::Refused => {
            assert!(!upgraded, "{what}: upgraded: {seen:?}");
            assert!(
                seen.iter()
                    .any(|e| matches!(e, Event::UpgradeFailed { .. })),
                "{what}: {seen:?}"
            );
        }
        Expect::Delivered => {
            assert_eq!(
                frames,
                [
                    &Frame::Ping(b"p"[..].into()),
                    &Frame::Text("ab".into()),
                    &Frame::Close(Some(wstether::CloseFrame {
                        code: wstether::CloseCode::NORMAL,
                        reason: String::new()
                    }))
                ],
                "{what}"
            );
        }
        Expect::NothingAfterClose => {
            assert!(
                matches!(frames.as_slice(), [Frame::Close(_)]),
                "{what}: only the close frame: {seen:?}"
            );
        }
        Expect::CloseAnswered => {
            assert!(
                matches!(frames.as_slice(), [Frame::Close(_)]),
                "{what}: {seen:?}"
            );
            assert!(
                matches!(down, Some(Event::Down { reason: DownReason::ClosedByPeer(close), .. }) if close.code.as_u16() == 1001),
                "{what}: {down:?}"
            );
            tokio::time::timeout(common::PATIENCE, server.wait_for_client_close_codes(1))
                .await
                .unwrap_or_else(|_| panic!("{what}: the server's close was not answered"));
            assert_eq!(server.client_close_codes(), [1001], "{what}");
        }
    }
}

/// The tests of a rule on the paths every rule has.
macro_rules! paths {
    ($query:expr, $expect:expr) => {
        #[tokio::test]
        async fn plain() {
            row(Path::Plain, $query, $expect).await;
        }

        #[tokio::test]
        async fn fast() {
            row(Path::Fast, $query, $expect).await;
        }

        #[tokio::test]
        async fn deflate() {
            row(Path::Deflate, $query, $expect).await;
        }

        #[tokio::test]
        async fn proxy() {
            row(Path::Proxy, $query, $expect).await;
        }
    };
}

/// One module per rule, one test per path in it (`h2` too, unless the
/// rule is `not_over_h2`).
macro_rules! table {
    ($($rule:ident: $query:expr => $expect:expr $(, $not:ident)?;)*) => {
        $( table!(@row $rule, $query, $expect $(, $not)?); )*
    };
    (@row $rule:ident, $query:expr, $expect:expr) => {
        mod $rule {
            use super::*;

            paths!($query, $expect);

            #[tokio::test]
            async fn h2() {
                row(Path::H2, $query, $expect).await;
            }
        }
    };
    (@row $rule:ident, $query:expr, $expect:expr, not_over_h2) => {
        mod $rule {
            use super::*;

            paths!($query, $expect);
        }
    };
}

table! {
    // §5.1: a client MUST close on a masked frame from the server.
    conformance_masked_server_frame: "bad_frame=masked" => Expect::Fail(ErrorKind::Protocol, 1002);
    // §5.2: RSV bits without an extension that defines them fail the connection.
    conformance_reserved_bits: "bad_frame=rsv2" => Expect::Fail(ErrorKind::Protocol, 1002);
    // §5.2: a reserved opcode fails the connection.
    conformance_reserved_opcode: "bad_frame=reserved_opcode" => Expect::Fail(ErrorKind::Protocol, 1002);
    // §5.2: the most significant bit of a 64-bit length MUST be 0. Such a
    // length is over every frame limit, which refuses it first (1009).
    conformance_length_top_bit: "bad_frame=length_top_bit" => Expect::Fail(ErrorKind::MessageTooBig, 1009);
    // §5.4: a continuation frame that continues nothing.
    conformance_continuation_without_message: "bad_frame=continuation_first" => Expect::Fail(ErrorKind::Protocol, 1002);
    // §5.4: a new data message inside a fragmented one.
    conformance_data_frame_inside_fragments: "bad_frame=data_in_fragment" => Expect::Fail(ErrorKind::Protocol, 1002);
    // §5.4: control frames MAY be injected between fragments.
    conformance_control_frame_between_fragments: "bad_frame=ping_between_fragments" => Expect::Delivered;
    // §5.5: control frames are at most 125 bytes.
    conformance_control_frame_too_long: "bad_frame=control_too_long" => Expect::Fail(ErrorKind::Protocol, 1002);
    // §5.5: control frames MUST NOT be fragmented.
    conformance_fragmented_control_frame: "bad_frame=fragmented_ping" => Expect::Fail(ErrorKind::Protocol, 1002);
    // §5.5.1: the peer's Close is answered with a Close.
    conformance_close_is_answered: "bad_frame=close" => Expect::CloseAnswered;
    // §5.5.1: nothing after the peer's Close is data.
    conformance_no_data_after_close_small: "bad_frame=data_after_close_small" => Expect::NothingAfterClose;
    conformance_no_data_after_close_large: "bad_frame=data_after_close_large" => Expect::NothingAfterClose;
    // §5.6 / §8.1: text MUST be UTF-8 (1007).
    conformance_invalid_utf8_text: "bad_frame=utf8" => Expect::Fail(ErrorKind::InvalidUtf8, 1007);
    // §4.1: the 101 MUST carry the right Sec-WebSocket-Accept.
    conformance_handshake_wrong_accept: "bad_101=accept" => Expect::Refused, not_over_h2;
    // §4.1: the 101 MUST carry Upgrade: websocket.
    conformance_handshake_missing_upgrade: "bad_101=upgrade" => Expect::Refused, not_over_h2;
    // §4.1: the 101 MUST carry Connection: Upgrade.
    conformance_handshake_missing_connection: "bad_101=connection" => Expect::Refused, not_over_h2;
    // §4.1: a status other than 101 is not an upgrade (over HTTP/2 a 200
    // is the upgrade: RFC 8441 §5).
    conformance_handshake_not_101: "reject=200" => Expect::Refused, not_over_h2;
    // RFC 8441 §5: over HTTP/2, a status other than 2xx is not an upgrade.
    conformance_handshake_not_2xx: "reject=302" => Expect::Refused;
    // §4.1: an extension the client did not offer fails the connection.
    conformance_handshake_unoffered_extension: "header=Sec-WebSocket-Extensions:x-unknown" => Expect::Refused;
    // §4.1: a subprotocol the client did not offer fails the connection.
    conformance_handshake_unoffered_subprotocol: "protocol=zzz" => Expect::Refused;
}
