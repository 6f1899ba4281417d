//! The core's tests: the retry policy after a refused upgrade.

use super::*;

/// A core with auto-upgrade whose first upgrade was just refused with
/// `status` (and `headers`): its events.
pub(super) fn refused(
    options: Options,
    status: u16,
    headers: &[(&'static str, &str)],
) -> (Harness, Vec<String>) {
    let mut h = Harness::up(options.auto_upgrade(true));
    let stream = h.upgrade(Upgrade::new("/ws"));
    assert!(matches!(h.actions()[..], [Action::Upgrade(_)]));
    h.events();
    h.upgrade_rejected_with(status, headers);
    assert_eq!(stream, StreamRef(1));
    let events = h.events();
    (h, events)
}

/// The events of a refusal the policy does not retry (on the first
/// connection, whose end says nothing of a stream: see
/// `after_the_first_connection_a_stop_names_its_stream`).
pub(super) fn stopped(status: u16) -> Vec<String> {
    vec![
        format!("UpgradeFailed #0.1 Some({status}) Upgrade unsent=[]"),
        "Error - UpgradeRefused unsent=[]".to_owned(),
        "Down UpgradeRejected killed=[] unsent=[] reconnect=false".to_owned(),
    ]
}

/// The events of a retried refusal.
pub(super) fn retried(status: u16, delay: &str) -> Vec<String> {
    vec![
        format!("UpgradeFailed #0.1 Some({status}) Upgrade unsent=[]"),
        "Down UpgradeRejected killed=[] unsent=[] reconnect=true".to_owned(),
        format!("Reconnecting 2 {delay}"),
    ]
}

#[test]
fn a_refused_403_with_auto_upgrade_ends_the_connection() {
    let (mut h, events) = refused(options(), 403, &[]);
    assert_eq!(events, stopped(403));
    assert!(h.core.is_terminated());
    assert!(h.actions().is_empty(), "no new dial");
    assert_eq!(h.core.poll_timeout(), None);
}

#[test]
fn the_refusal_error_names_the_status_and_the_reason() {
    let mut h = Harness::up(options().auto_upgrade(true));
    h.upgrade(Upgrade::new("/ws"));
    h.actions();
    h.events();
    h.upgrade_rejected(401);
    let refusal = h
        .raw_events()
        .into_iter()
        .find_map(|event| match event {
            Event::Error { error, .. } => Some(error),
            _ => None,
        })
        .expect("an UpgradeRefused error");
    assert_eq!(refusal.kind(), ErrorKind::UpgradeRefused);
    let shown = refusal.to_string();
    assert!(
        shown.contains("401") && shown.contains("auto_upgrade_with"),
        "{shown}"
    );
}

#[test]
fn statuses_other_than_401_408_429_and_5xx_stop_by_default() {
    for status in [300, 301, 302, 307, 400, 403, 404, 405, 410, 426, 200, 204] {
        let (h, events) = refused(options(), status, &[]);
        assert_eq!(events, stopped(status), "{status}");
        assert!(h.core.is_terminated(), "{status}");
    }
}

#[test]
fn statuses_408_429_and_5xx_are_retried_by_the_backoff() {
    for status in [408, 429, 500, 502, 503, 504, 599] {
        let (mut h, events) = refused(options(), status, &[]);
        assert_eq!(events, retried(status, "100ms"), "{status}");
        h.advance_to_timeout();
        assert_eq!(h.actions(), [Action::Dial], "{status}");
    }
}

#[test]
fn a_401_is_retried_only_with_an_upgrade_provider() {
    let (h, events) = refused(options(), 401, &[]);
    assert_eq!(events, stopped(401));
    assert!(h.core.is_terminated());

    let mut h = Harness::up(options().auto_upgrade_with_sync(|| Upgrade::new("/ws")));
    assert_eq!(h.actions(), [Action::Provide]);
    h.provide();
    assert!(matches!(h.actions()[..], [Action::Upgrade(_)]));
    h.events();
    h.upgrade_rejected(401);
    assert_eq!(h.events(), retried(401, "100ms"));
    h.advance_to_timeout();
    assert_eq!(h.actions(), [Action::Dial]);
    h.dial_ok();
    assert_eq!(h.actions(), [Action::Provide]);
    h.provide();
    assert!(
        matches!(h.actions()[..], [Action::Upgrade(_)]),
        "the provider asks again, with fresh credentials"
    );
}

#[test]
fn retry_after_in_seconds_is_a_floor_on_the_delay() {
    let (mut h, events) = refused(options(), 429, &[("retry-after", "5")]);
    assert_eq!(events, retried(429, "5s"));
    assert_eq!(h.timeout(), Some(5 * SEC));
    h.advance(4_999 * MS);
    h.core.handle_timeout(h.now);
    assert!(h.actions().is_empty(), "not before Retry-After");
    h.advance_to_timeout();
    assert_eq!(h.actions(), [Action::Dial]);
    assert_eq!(h.elapsed(), 5 * SEC);
}

#[test]
fn retry_after_never_shortens_the_backoff() {
    // The backoff is already past 1 s after a few failures: 0 s changes nothing.
    let (mut h, _) = refused(options(), 503, &[]);
    for _ in 0..4 {
        h.advance_to_timeout();
        h.actions();
        h.dial_failed();
        h.events();
    }
    h.advance_to_timeout();
    assert_eq!(h.actions(), [Action::Dial]);
    h.dial_ok();
    assert!(matches!(h.actions()[..], [Action::Upgrade(_)]));
    h.events();
    h.upgrade_rejected_with(503, &[("retry-after", "0")]);
    assert_eq!(h.events().last().unwrap(), "Reconnecting 7 3.2s");
}

#[test]
fn retry_after_as_an_http_date() {
    // UNIX_NOW is 08:49:37; the server asks for 08:50:07.
    let date = "Sun, 06 Nov 1994 08:50:07 GMT";
    let (_, events) = refused(options(), 503, &[("retry-after", date)]);
    assert_eq!(events, retried(503, "30s"));
    // A date in the past, or one that cannot be read: the backoff alone.
    for value in [
        "Sun, 06 Nov 1994 08:00:00 GMT",
        "soon",
        "Sunday, 06-Nov-94 08:50:07 GMT",
    ] {
        let (_, events) = refused(options(), 503, &[("retry-after", value)]);
        assert_eq!(events, retried(503, "100ms"), "{value}");
    }
}

#[test]
fn retry_after_is_capped_at_max_delay() {
    let (_, events) = refused(options(), 503, &[("retry-after", "86400")]);
    assert_eq!(events, retried(503, "30s"), "max_delay, not a day");
    let patient = options().retry(
        reconnecting()
            .jitter(0.0)
            .max_delay(crate::options::MAX_DURATION),
    );
    let (_, events) = refused(patient, 503, &[("retry-after", "86400")]);
    assert_eq!(
        events,
        retried(503, "86400s"),
        "raise max_delay to honour it"
    );
}

#[test]
fn a_retried_refusal_counts_against_max_retries() {
    let options = options().retry(reconnecting().jitter(0.0).max_retries(0));
    let (h, events) = refused(options, 503, &[("retry-after", "1")]);
    assert_eq!(
        events,
        [
            "UpgradeFailed #0.1 Some(503) Upgrade unsent=[]",
            "Error - UpgradeRefused unsent=[]",
            "Down UpgradeRejected killed=[] unsent=[] reconnect=false",
        ],
        "out of retries: the first connection ends with its status"
    );
    assert!(h.core.is_terminated());
}

#[test]
fn the_decision_is_configurable_per_status() {
    let retry = reconnecting()
        .jitter(0.0)
        .on_status(StatusCode::NOT_FOUND, RetryDecision::Retry)
        .on_status(StatusCode::SERVICE_UNAVAILABLE, RetryDecision::Stop)
        .on_status(StatusCode::FORBIDDEN, RetryDecision::RetryWithProvider)
        .on_status(StatusCode::FORBIDDEN, RetryDecision::Retry);
    let (_, events) = refused(options().retry(retry.clone()), 404, &[]);
    assert_eq!(events, retried(404, "100ms"));
    let (_, events) = refused(options().retry(retry.clone()), 503, &[("retry-after", "1")]);
    assert_eq!(events, stopped(503));
    let (_, events) = refused(options().retry(retry.clone()), 403, &[]);
    assert_eq!(events, retried(403, "100ms"), "the last call wins");
    let (_, events) = refused(options().retry(retry), 429, &[]);
    assert_eq!(events, retried(429, "100ms"), "others keep their default");
}

#[test]
fn a_refusal_after_shutdown_adds_no_refusal_error() {
    let mut h = Harness::up(options());
    h.events();
    h.upgrade(Upgrade::new("/ws"));
    h.actions();
    // The application sent a close frame while the upgrade was in flight.
    h.send(StreamRef(1), Frame::close_normal());
    h.upgrade_rejected(403);
    let events = h.events();
    assert!(
        !events.iter().any(|e| e.contains("UpgradeRefused")),
        "{events:?}"
    );
    assert!(h.core.is_terminated());
}

#[test]
fn a_failure_without_a_status_is_retried_by_the_backoff() {
    // What a browser reports for any failed upgrade: no status.
    let mut h = Harness::up(options().auto_upgrade(true));
    h.upgrade(Upgrade::new("/ws"));
    h.actions();
    h.events();
    let error = Error::new(ErrorKind::Upgrade, "the WebSocket did not open");
    h.core
        .on_upgrade_failed(None, HeaderMap::new(), error, h.now, UNIX_NOW);
    assert_eq!(
        h.events(),
        [
            "UpgradeFailed #0.1 None Upgrade unsent=[]",
            "Down Error(Upgrade) killed=[] unsent=[] reconnect=true",
            "Reconnecting 2 100ms",
        ]
    );
}
