//! The core's tests: backoff.

use super::*;

#[test]
fn consecutive_dial_failures_back_off_exponentially() {
    let mut h = Harness::new(options());
    let mut log = Vec::new();
    for _ in 0..4 {
        assert_eq!(h.actions(), [Action::Dial]);
        h.dial_failed();
        log.extend(h.events());
        h.advance_to_timeout();
        log.push(format!("dial at {:?}", h.elapsed()));
    }
    assert_eq!(
        log,
        [
            "Error - Connect unsent=[]",
            "Reconnecting 2 100ms",
            "dial at 100ms",
            "Error - Connect unsent=[]",
            "Reconnecting 3 200ms",
            "dial at 300ms",
            "Error - Connect unsent=[]",
            "Reconnecting 4 400ms",
            "dial at 700ms",
            "Error - Connect unsent=[]",
            "Reconnecting 5 800ms",
            "dial at 1.5s",
        ]
    );
    h.dial_ok();
    assert_eq!(h.events(), ["Up 5"]);
}

#[test]
fn exhausted_retries_terminate_with_an_error() {
    let mut h = Harness::new(options().retry(reconnecting().jitter(0.0).max_retries(2)));
    for _ in 0..2 {
        h.actions();
        h.dial_failed();
        h.events();
        h.advance_to_timeout();
    }
    assert_eq!(h.actions(), [Action::Dial]);
    h.dial_failed();
    // Never connected: the first connection's end, with the last error.
    assert_eq!(
        h.events(),
        [
            "Error - Connect unsent=[]",
            "Down Error(Connect) killed=[] unsent=[] reconnect=false"
        ]
    );
    assert!(h.core.is_terminated());
    assert_eq!(h.timeout(), None);
}

#[test]
fn exhausted_retries_after_the_first_connection_end_with_retries_exhausted() {
    let (mut h, _) = Harness::open(options().retry(reconnecting().jitter(0.0).max_retries(1)));
    h.lose(Some(io_error()), Vec::new());
    h.events();
    h.advance_to_timeout();
    assert_eq!(h.actions(), [Action::Dial]);
    h.dial_failed();
    assert_eq!(
        h.events(),
        [
            "Error - Connect unsent=[]",
            "Error - RetriesExhausted unsent=[]"
        ]
    );
    assert!(h.core.is_terminated());
}

#[test]
fn exhausted_retries_return_a_pending_upgrades_frames() {
    let mut h = Harness::new(options().retry(reconnecting().max_retries(0).jitter(0.0)));
    h.actions();
    let s = h.upgrade(Upgrade::new("/ws"));
    h.send(s, text("a"));
    h.dial_failed();
    assert_eq!(
        h.events(),
        [
            format!("UpgradeFailed {s} None Connect unsent=[]"),
            "Error - Connect unsent=[]".to_owned(),
            "Down Error(Connect) killed=[] unsent=[Text(1 bytes \"a\")] reconnect=false".to_owned(),
        ]
    );
    assert!(h.core.is_terminated());
    assert_eq!(h.core.take_released_bytes(), 1);
}

/// A proxy that refused the tunnel with `status`, as the transport reports
/// it.
fn proxy_refused(status: u16) -> Error {
    Error::new(ErrorKind::Proxy, format!("proxy answered {status}"))
        .with_proxy_status(StatusCode::from_u16(status).unwrap())
}

#[test]
fn refused_proxy_credentials_end_the_connection_after_one_attempt() {
    for status in [407, 401] {
        let mut h = Harness::new(options());
        assert_eq!(h.actions(), [Action::Dial]);
        let s = h.upgrade(Upgrade::new("/ws"));
        h.send(s, text("a"));
        h.core
            .handle_transport(TransportEvent::DialFailed(proxy_refused(status)), h.now);
        let events = h.raw_events();
        assert_eq!(
            events.iter().map(describe).collect::<Vec<_>>(),
            [
                format!("UpgradeFailed {s} None Proxy unsent=[]"),
                "Error - Proxy unsent=[]".to_owned(),
                "Down Error(Proxy) killed=[] unsent=[Text(1 bytes \"a\")] reconnect=false"
                    .to_owned(),
            ]
        );
        let Event::Error { error, .. } = &events[1] else {
            unreachable!()
        };
        assert_eq!(error.proxy_status().map(|s| s.as_u16()), Some(status));
        assert!(error.to_string().contains("not retried"), "{error}");
        assert!(h.core.is_terminated());
        assert_eq!(h.timeout(), None, "no retry scheduled");
        assert_eq!(h.actions(), []);
    }
}

#[test]
fn other_proxy_refusals_are_retried_by_the_backoff() {
    let mut h = Harness::new(options());
    let mut log = Vec::new();
    for status in [403, 502, 503] {
        assert_eq!(h.actions(), [Action::Dial]);
        h.core
            .handle_transport(TransportEvent::DialFailed(proxy_refused(status)), h.now);
        log.extend(h.events());
        h.advance_to_timeout();
        log.push(format!("dial at {:?}", h.elapsed()));
    }
    assert_eq!(
        log,
        [
            "Error - Proxy unsent=[]",
            "Reconnecting 2 100ms",
            "dial at 100ms",
            "Error - Proxy unsent=[]",
            "Reconnecting 3 200ms",
            "dial at 300ms",
            "Error - Proxy unsent=[]",
            "Reconnecting 4 400ms",
            "dial at 700ms",
        ]
    );
}

#[test]
fn the_proxy_policy_is_configurable_per_status() {
    // Retrying 407 is a choice, spaced by the backoff...
    let retry = reconnecting()
        .jitter(0.0)
        .on_proxy_status(
            StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            RetryDecision::Retry,
        )
        .on_proxy_status(StatusCode::FORBIDDEN, RetryDecision::Stop);
    let mut h = Harness::new(options().retry(retry.clone()));
    for delay in ["100ms", "200ms"] {
        assert_eq!(h.actions(), [Action::Dial]);
        h.core
            .handle_transport(TransportEvent::DialFailed(proxy_refused(407)), h.now);
        assert_eq!(
            h.events(),
            [
                "Error - Proxy unsent=[]".to_owned(),
                format!("Reconnecting {} {delay}", h.core.attempt() + 1)
            ]
        );
        h.advance_to_timeout();
    }
    // ...and so is stopping on another status.
    assert_eq!(h.actions(), [Action::Dial]);
    h.core
        .handle_transport(TransportEvent::DialFailed(proxy_refused(403)), h.now);
    assert_eq!(
        h.events(),
        [
            "Error - Proxy unsent=[]",
            "Down Error(Proxy) killed=[] unsent=[] reconnect=false"
        ]
    );
    assert!(h.core.is_terminated());
    // A provider cannot fix proxy credentials: RetryWithProvider stops.
    let retry = retry.on_proxy_status(
        StatusCode::PROXY_AUTHENTICATION_REQUIRED,
        RetryDecision::RetryWithProvider,
    );
    assert_eq!(
        retry.proxy_decision(StatusCode::PROXY_AUTHENTICATION_REQUIRED),
        RetryDecision::Stop
    );
    // The upgrade's policy is apart: a 407 upgrade answer is not a proxy's.
    assert_eq!(
        Retry::default().proxy_decision(StatusCode::BAD_GATEWAY),
        RetryDecision::Retry
    );
    assert_eq!(
        Retry::default().decision(StatusCode::BAD_GATEWAY),
        RetryDecision::Retry
    );
    assert_eq!(
        Retry::default().proxy_decision(StatusCode::UNAUTHORIZED),
        RetryDecision::Stop
    );
}

#[test]
fn a_connection_up_past_reset_after_restarts_the_count() {
    let mut h = Harness::new(options());
    // Two failures: the next delay would be 400 ms.
    for _ in 0..2 {
        h.actions();
        h.dial_failed();
        h.advance_to_timeout();
    }
    h.events();
    h.dial_ok();
    assert_eq!(h.events(), ["Up 3"]);
    h.advance(10 * SEC);
    h.lose(Some(io_error()), Vec::new());
    assert_eq!(
        h.events(),
        [
            "Down Error(Io) killed=[] unsent=[] reconnect=true",
            "Reconnecting 4 100ms"
        ]
    );
    h.advance_to_timeout();
    h.dial_ok();
    assert_eq!(
        h.events(),
        ["Up 4"],
        "attempts keep counting; delays start again"
    );
}

#[test]
fn a_short_lived_connection_keeps_the_count() {
    let mut h = Harness::new(options());
    h.actions();
    h.dial_failed();
    h.advance_to_timeout();
    h.dial_ok();
    assert_eq!(h.events()[2], "Up 2");
    h.advance(10 * SEC - MS);
    h.lose(Some(io_error()), Vec::new());
    assert_eq!(
        h.events(),
        [
            "Down Error(Io) killed=[] unsent=[] reconnect=true",
            "Reconnecting 3 200ms"
        ]
    );
}

#[test]
fn the_connect_timeout_disconnects_then_backs_off() {
    let mut h = Harness::new(options());
    h.actions();
    h.advance_to_timeout();
    assert_eq!(h.elapsed(), 10 * SEC);
    assert_eq!(h.actions(), [Action::Disconnect]);
    assert!(h.events().is_empty());
    h.lose(None, Vec::new());
    assert_eq!(
        h.events(),
        ["Error - Timeout unsent=[]", "Reconnecting 2 100ms"]
    );
    assert_eq!(h.timeout(), Some(10 * SEC + 100 * MS));
}

#[test]
fn late_transport_reports_are_ignored() {
    let mut h = Harness::up(options());
    h.events();
    h.dial_ok();
    h.dial_failed();
    h.upgrade_ok(None);
    h.upgrade_rejected(500);
    assert!(h.events().is_empty());
    assert!(h.actions().is_empty());
}
