//! The core's tests: reconnect.

use std::sync::atomic::Ordering;

use super::*;

#[test]
fn a_lost_connection_reconnects_without_upgrading_again() {
    let (mut h, s) = Harness::open(options());
    h.advance(SEC);
    h.lose(Some(io_error()), Vec::new());
    assert_eq!(
        h.events(),
        [
            format!("Down Error(Io) killed=[\"{s}\"] unsent=[] reconnect=true"),
            "Reconnecting 2 100ms".to_owned(),
        ]
    );
    assert!(h.actions().is_empty());
    assert_eq!(h.timeout(), Some(SEC + 100 * MS));
    h.advance_to_timeout();
    assert_eq!(h.actions(), [Action::Dial]);
    h.dial_ok();
    assert_eq!(h.events(), ["Up 2"]);
    assert!(h.actions().is_empty(), "no re-upgrade by default (as Gun)");
}

#[test]
fn auto_upgrade_repeats_the_last_upgrade_with_a_new_stream() {
    let (mut h, s1) = Harness::open(options().auto_upgrade(true));
    h.lose(Some(io_error()), Vec::new());
    h.events();
    h.advance_to_timeout();
    assert_eq!(h.actions(), [Action::Dial]);
    h.dial_ok();
    assert_eq!(
        h.actions(),
        [Action::Upgrade(Upgrade::new("/ws").validate().unwrap())]
    );
    h.upgrade_ok(None);
    let events = h.events();
    assert_eq!(events[0], "Up 2");
    let s2 = StreamRef(s1.0 + 1);
    assert_eq!(events[1..], [format!("Upgraded {s2} None")]);
    h.frame(text("x"));
    assert_eq!(h.events(), [format!("Frame {s2} Text(1 bytes \"x\")")]);
}

#[test]
fn auto_upgrade_without_a_previous_upgrade_does_nothing() {
    let mut h = Harness::up(options().auto_upgrade(true));
    assert_eq!(h.events(), ["Up 1"]);
    assert!(h.actions().is_empty());
}

#[test]
fn an_upgrade_provider_runs_on_every_up_including_the_first() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let options = options().auto_upgrade_with_sync(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        Upgrade::new(format!("/ws?n={n}"))
    });
    let mut h = Harness::new(options);
    assert_eq!(h.actions(), [Action::Dial]);
    assert_eq!(calls.load(Ordering::SeqCst), 0, "not before Up");
    for round in 1..=3u32 {
        h.dial_ok();
        assert_eq!(h.actions(), [Action::Provide]);
        assert_eq!(
            calls.load(Ordering::SeqCst),
            round as usize - 1,
            "the driver runs it"
        );
        h.provide();
        assert_eq!(calls.load(Ordering::SeqCst), round as usize);
        let expected = Upgrade::new(format!("/ws?n={round}")).validate().unwrap();
        assert_eq!(h.actions(), [Action::Upgrade(expected)]);
        h.upgrade_ok(None);
        assert_eq!(
            h.events(),
            [format!("Up {round}"), format!("Upgraded #0.{round} None")]
        );
        h.lose(Some(io_error()), Vec::new());
        h.events();
        h.advance_to_timeout();
        assert_eq!(h.actions(), [Action::Dial]);
    }
}

#[test]
fn an_invalid_provided_upgrade_fails_without_dropping_the_connection() {
    let options = options().auto_upgrade_with_sync(|| Upgrade::new("no-slash"));
    let mut h = Harness::up(options);
    assert_eq!(h.actions(), [Action::Provide]);
    h.provide();
    assert_eq!(
        h.events(),
        ["Up 1", "UpgradeFailed #0.1 None InvalidPath unsent=[]"]
    );
    assert!(h.actions().is_empty());
    let s = h.upgrade(Upgrade::new("/ok"));
    assert!(matches!(h.actions()[..], [Action::Upgrade(_)]));
    h.upgrade_ok(None);
    assert_eq!(h.events(), [format!("Upgraded {s} None")]);
}
