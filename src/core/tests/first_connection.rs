//! The core's tests: the first connection.

use super::refused_upgrade::{refused, retried, stopped};
use super::*;

/// Options with the default first-connection budget (one attempt) and
/// exact delays.
fn first(budget: FirstConnection) -> Options {
    options().retry(Retry::default().jitter(0.0).first_connection(budget))
}

/// The end of a first connection that never opened, as `Retry` documents
/// it: the waiting upgrade's failure, the error, the final `Down`.
fn first_failed(stream: StreamRef, kind: &str, unsent: &str) -> Vec<String> {
    vec![
        format!("UpgradeFailed {stream} None {kind} unsent=[]"),
        format!("Error - {kind} unsent=[]"),
        format!("Down Error({kind}) killed=[] unsent=[{unsent}] reconnect=false"),
    ]
}

#[test]
fn first_connection_gives_up_after_one_refused_dial_by_default() {
    let mut h = Harness::new(options().retry(Retry::default().jitter(0.0)));
    assert_eq!(h.actions(), [Action::Dial]);
    let s = h.upgrade(Upgrade::new("/ws"));
    h.send(s, text("a"));
    h.dial_failed();
    assert_eq!(
        h.events(),
        first_failed(s, "Connect", "Text(1 bytes \"a\")")
    );
    assert!(h.core.is_terminated());
    assert_eq!(h.timeout(), None, "no retry");
    assert_eq!(h.core.take_released_bytes(), 1);
}

#[test]
fn first_connection_ends_the_same_way_whatever_the_retry_policy() {
    for retry in [
        Retry::default(),
        Retry::never(),
        Retry::default().max_retries(5),
        reconnecting().max_retries(0),
    ] {
        let mut h = Harness::new(options().retry(retry.jitter(0.0)));
        h.actions();
        let s = h.upgrade(Upgrade::new("/ws"));
        h.dial_failed();
        assert_eq!(h.events(), first_failed(s, "Connect", ""));
    }
}

#[test]
fn first_connection_gives_up_after_one_refused_upgrade_with_its_status() {
    // 503 would be retried by the reconnect policy; the budget is spent.
    let (h, events) = refused(first(FirstConnection::Attempts(1)), 503, &[]);
    assert_eq!(events, stopped(503));
    assert!(h.core.is_terminated());
    let mut h = Harness::up(first(FirstConnection::Attempts(1)));
    h.events();
    let s = h.upgrade(Upgrade::new("/ws"));
    h.actions();
    h.upgrade_rejected(503);
    let events = h.raw_events();
    let Event::Error {
        stream: None,
        error,
    } = &events[1]
    else {
        panic!("{events:?}")
    };
    assert_eq!(error.kind(), ErrorKind::UpgradeRefused);
    assert_eq!(error.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    assert!(error.to_string().contains("first connection"), "{error}");
    assert!(matches!(events[0], Event::UpgradeFailed { stream, .. } if stream == s));
}

#[test]
fn first_connection_gives_up_after_an_upgrade_timeout() {
    let mut h = Harness::up(first(FirstConnection::Attempts(1)));
    let s = h.upgrade(Upgrade::new("/ws"));
    h.actions();
    h.events();
    h.advance_to_timeout();
    assert_eq!(h.elapsed(), 10 * SEC);
    assert_eq!(h.actions(), [Action::Disconnect]);
    h.lose(None, Vec::new());
    assert_eq!(
        h.events(),
        [
            format!("UpgradeFailed {s} None Timeout unsent=[]"),
            "Error - Timeout unsent=[]".to_owned(),
            "Down Error(Timeout) killed=[] unsent=[] reconnect=false".to_owned(),
        ]
    );
    assert!(h.core.is_terminated());
}

#[test]
fn first_connection_attempts_bound_the_dials() {
    let mut h = Harness::new(first(FirstConnection::Attempts(3)));
    let s = h.upgrade(Upgrade::new("/ws"));
    for (attempt, delay) in [(2, "100ms"), (3, "200ms")] {
        assert_eq!(h.actions(), [Action::Dial]);
        h.dial_failed();
        assert_eq!(
            h.events(),
            [
                "Error - Connect unsent=[]".to_owned(),
                format!("Reconnecting {attempt} {delay}"),
            ]
        );
        h.advance_to_timeout();
    }
    assert_eq!(h.actions(), [Action::Dial]);
    h.dial_failed();
    assert_eq!(h.events(), first_failed(s, "Connect", ""));
    assert_eq!(h.core.attempt(), 3);
}

#[test]
fn first_connection_attempts_count_refused_upgrades_too() {
    let mut h = Harness::new(first(FirstConnection::Attempts(2)));
    h.actions();
    h.dial_ok();
    h.upgrade(Upgrade::new("/ws"));
    h.actions();
    h.events();
    h.upgrade_rejected(503);
    assert_eq!(h.events(), retried(503, "100ms"));
    h.advance_to_timeout();
    h.actions();
    h.dial_ok();
    h.upgrade(Upgrade::new("/ws"));
    h.actions();
    h.events();
    h.upgrade_rejected(503);
    let events = h.events();
    assert_eq!(events[1..], stopped(503)[1..]);
    assert!(h.core.is_terminated());
}

#[test]
fn first_connection_deadline_stops_scheduling_attempts_past_it() {
    // Delays 100, 200, 400 ms: attempts at 0, 100, 300 and 700 ms; the
    // next would start at 1500 ms, past the deadline.
    let mut h = Harness::new(first(FirstConnection::Deadline(SEC)));
    let mut starts = Vec::new();
    loop {
        assert_eq!(h.actions(), [Action::Dial]);
        starts.push(h.elapsed().as_millis());
        h.dial_failed();
        if h.core.is_terminated() {
            break;
        }
        h.events();
        h.advance_to_timeout();
    }
    assert_eq!(starts, [0, 100, 300, 700]);
    assert_eq!(
        h.events(),
        [
            "Error - Connect unsent=[]",
            "Down Error(Connect) killed=[] unsent=[] reconnect=false"
        ]
    );
}

#[test]
fn first_connection_deadline_cuts_the_attempt_in_progress() {
    let mut h = Harness::new(first(FirstConnection::Deadline(2 * SEC)));
    h.actions();
    let s = h.upgrade(Upgrade::new("/ws"));
    // The dial hangs: the deadline (2 s) comes before the connect timeout (10 s).
    assert_eq!(h.timeout(), Some(2 * SEC));
    h.advance_to_timeout();
    assert_eq!(h.actions(), [Action::Disconnect]);
    h.core
        .handle_transport(TransportEvent::Lost { written: None }, h.now);
    let events = h.raw_events();
    assert_eq!(
        events.iter().map(describe).collect::<Vec<_>>(),
        first_failed(s, "Timeout", "")
    );
    let Event::Error { error, .. } = &events[1] else {
        unreachable!()
    };
    assert!(error.to_string().contains("deadline"), "{error}");
    // An upgrade in progress at the deadline is cut too.
    let mut h = Harness::up(first(FirstConnection::Deadline(2 * SEC)));
    h.upgrade(Upgrade::new("/ws"));
    h.actions();
    assert_eq!(h.timeout(), Some(2 * SEC), "not the 10 s upgrade timeout");
}

#[test]
fn first_connection_waits_for_a_server_that_comes_up_within_the_budget() {
    let mut h = Harness::new(first(FirstConnection::Attempts(3)));
    let s = h.upgrade(Upgrade::new("/ws"));
    h.actions();
    h.dial_failed();
    h.advance_to_timeout();
    h.actions();
    h.dial_ok();
    assert!(
        matches!(h.actions()[..], [Action::Upgrade(_)]),
        "the waiting upgrade runs"
    );
    h.upgrade_ok(None);
    assert_eq!(
        h.events(),
        [
            "Error - Connect unsent=[]".to_owned(),
            "Reconnecting 2 100ms".to_owned(),
            "Up 2".to_owned(),
            format!("Upgraded {s} None"),
        ]
    );
}

#[test]
fn after_the_first_connection_the_reconnect_policy_applies() {
    // One attempt for the first connection, then retries forever, with a
    // fresh count.
    let mut h = Harness::new(first(FirstConnection::Attempts(1)));
    h.actions();
    h.dial_ok();
    h.upgrade(Upgrade::new("/ws"));
    h.actions();
    h.upgrade_ok(None);
    h.events();
    h.lose(Some(io_error()), Vec::new());
    h.events();
    for delay in ["200ms", "400ms", "800ms"] {
        h.advance_to_timeout();
        assert_eq!(h.actions(), [Action::Dial]);
        h.dial_failed();
        assert_eq!(
            h.events()[1],
            format!("Reconnecting {} {delay}", h.core.attempt() + 1)
        );
    }
    assert!(!h.core.is_terminated());
}

#[test]
fn after_the_first_connection_a_stop_names_its_stream() {
    let (mut h, _) = Harness::open(options().auto_upgrade(true));
    h.lose(Some(io_error()), Vec::new());
    h.events();
    h.advance_to_timeout();
    h.actions();
    h.dial_ok();
    h.actions();
    h.events();
    h.upgrade_rejected(403);
    let events = h.events();
    assert_eq!(events[1], "Error #0.2 UpgradeRefused unsent=[]");
}

#[test]
fn first_connection_follows_the_status_decisions_within_its_budget() {
    // A 404 is not retried, however many attempts are left.
    let (h, events) = refused(first(FirstConnection::Attempts(5)), 404, &[]);
    assert_eq!(events, stopped(404));
    assert!(h.core.is_terminated());
}

#[test]
fn a_failing_provider_fails_the_upgrade_and_follows_the_retry_policy() {
    let failing = || {
        std::future::ready(Err::<Upgrade, _>(std::io::Error::other(
            "token service down",
        )))
    };
    // The first connection: it ends with the provider's error.
    let mut h = Harness::up(first(FirstConnection::Attempts(1)).auto_upgrade_with(failing));
    assert_eq!(h.actions(), [Action::Provide]);
    h.events();
    h.provide();
    assert_eq!(h.actions(), [Action::Disconnect]);
    h.core
        .handle_transport(TransportEvent::Lost { written: None }, h.now);
    let events = h.raw_events();
    assert_eq!(
        events.iter().map(describe).collect::<Vec<_>>(),
        [
            "UpgradeFailed #0.1 None Provider unsent=[]",
            "Error - Provider unsent=[]",
            "Down Error(Provider) killed=[] unsent=[] reconnect=false",
        ]
    );
    let Event::Error { error, .. } = &events[1] else {
        unreachable!()
    };
    let source = std::error::Error::source(error).expect("the provider's error");
    assert_eq!(source.to_string(), "token service down");
    // With retries, a failing provider is retried by the backoff.
    let mut h = Harness::up(options().auto_upgrade_with(failing));
    h.actions();
    h.events();
    h.provide();
    h.actions();
    h.core
        .handle_transport(TransportEvent::Lost { written: None }, h.now);
    assert_eq!(
        h.events(),
        [
            "UpgradeFailed #0.1 None Provider unsent=[]",
            "Down Error(Provider) killed=[] unsent=[] reconnect=true",
            "Reconnecting 2 100ms",
        ]
    );
}

#[test]
fn a_provider_that_hangs_is_bounded_by_the_upgrade_timeout() {
    let mut h = Harness::up(
        options()
            .upgrade_timeout(3 * SEC)
            .auto_upgrade_with(std::future::pending::<Result<Upgrade, String>>),
    );
    assert_eq!(h.actions(), [Action::Provide]);
    h.events();
    assert_eq!(h.timeout(), Some(3 * SEC));
    h.advance_to_timeout();
    assert_eq!(h.actions(), [Action::Disconnect]);
    h.core
        .handle_transport(TransportEvent::Lost { written: None }, h.now);
    let events = h.raw_events();
    let Event::UpgradeFailed { error, .. } = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(error.kind(), ErrorKind::Timeout);
    assert!(error.to_string().contains("provider"), "{error}");
    // A late answer is ignored.
    h.core
        .handle_transport(TransportEvent::Provided(Ok(Upgrade::new("/late"))), h.now);
    assert!(h.actions().is_empty());
}

#[test]
fn a_provided_upgrade_gets_its_own_upgrade_timeout() {
    let mut h = Harness::up(
        options()
            .upgrade_timeout(3 * SEC)
            .auto_upgrade_with_sync(|| Upgrade::new("/ws")),
    );
    h.actions();
    h.advance(2 * SEC);
    h.provide();
    assert!(matches!(h.actions()[..], [Action::Upgrade(_)]));
    assert_eq!(h.timeout(), Some(5 * SEC));
}
