//! Async upgrade providers in a real browser (issue 19, item 4): the
//! provider's future (here awaiting a browser timer) runs on the page's
//! event loop, and a failing one is `ErrorKind::Provider`, as natively.

mod common;

use common::{next, ws_url};
use gloo_timers::future::TimeoutFuture;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use wstether::{Connection, ErrorKind, Event, Frame, Options, Upgrade};

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn provider_with_a_real_await_upgrades_in_a_browser() {
    let options = Options::default().auto_upgrade_with(|| async {
        TimeoutFuture::new(10).await;
        Ok::<_, String>(Upgrade::new("/?send=1").protocol("chat"))
    });
    let (conn, mut events) = Connection::open(&ws_url("/"), options).expect("open");
    loop {
        match next(&mut events).await {
            Event::Up { .. } => {}
            Event::Upgraded { protocol, .. } => {
                assert_eq!(protocol.as_deref(), Some("chat"));
                break;
            }
            other => panic!("expected Upgraded, got {other:?}"),
        }
    }
    match next(&mut events).await {
        Event::Frame {
            frame: Frame::Text(text),
            ..
        } => assert!(text.starts_with("0 "), "{text}"),
        other => panic!("expected the server's frame, got {other:?}"),
    }
    conn.shutdown();
}

#[wasm_bindgen_test]
async fn provider_that_fails_is_a_typed_error_in_a_browser() {
    let options = Options::default().auto_upgrade_with(|| async {
        TimeoutFuture::new(10).await;
        Err::<Upgrade, _>("token service down")
    });
    let (_conn, mut events) = Connection::open(&ws_url("/"), options).expect("open");
    let mut kinds = Vec::new();
    loop {
        match next(&mut events).await {
            Event::Up { .. } => {}
            Event::UpgradeFailed { error, .. } | Event::Error { error, .. } => {
                let source = std::error::Error::source(&error).expect("the provider's error");
                assert_eq!(source.to_string(), "token service down");
                kinds.push(error.kind());
            }
            Event::Down {
                will_reconnect: false,
                ..
            } => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(kinds, [ErrorKind::Provider, ErrorKind::Provider]);
}
