//! The core's tests: dial and upgrade.

use super::*;

#[test]
fn a_new_core_dials_at_once() {
    let mut h = Harness::new(options());
    assert_eq!(h.actions(), [Action::Dial]);
    assert!(h.events().is_empty());
    assert_eq!(h.timeout(), Some(10 * SEC), "the connect timeout");
    assert!(!h.core.is_terminated());
}

#[test]
fn dial_ok_is_up_and_does_not_upgrade_unless_asked() {
    let mut h = Harness::up(options());
    assert_eq!(h.events(), ["Up 1"]);
    assert!(h.actions().is_empty());
    assert_eq!(h.timeout(), None);
    assert!(!h.core.wants_transmit());
}

#[test]
fn an_upgrade_asked_before_up_waits_and_runs_on_up() {
    let mut h = Harness::new(options());
    assert_eq!(h.actions(), [Action::Dial]);
    let stream = h.upgrade(Upgrade::new("/ws").protocol("chat"));
    assert!(h.actions().is_empty());
    assert!(h.events().is_empty());
    h.advance(50 * MS);
    h.dial_ok();
    assert_eq!(h.events(), ["Up 1"]);
    let expected = Upgrade::new("/ws").protocol("chat").validate().unwrap();
    assert_eq!(h.actions(), [Action::Upgrade(expected)]);
    assert_eq!(h.timeout(), Some(50 * MS + 10 * SEC), "the upgrade timeout");
    h.upgrade_ok(Some("chat"));
    assert_eq!(h.events(), [format!("Upgraded {stream} Some(\"chat\")")]);
}

#[test]
fn an_upgrade_asked_after_up_runs_at_once() {
    let mut h = Harness::up(options());
    h.events();
    let stream = h.upgrade(Upgrade::new("/ws"));
    assert_eq!(
        h.actions(),
        [Action::Upgrade(Upgrade::new("/ws").validate().unwrap())]
    );
    h.upgrade_ok(None);
    assert_eq!(h.events(), [format!("Upgraded {stream} None")]);
    assert_eq!(h.timeout(), None, "no keepalive: nothing to wait for");
}

#[test]
fn a_second_upgrade_on_the_same_connection_fails() {
    let (mut h, first) = Harness::open(options());
    let second = h.upgrade(Upgrade::new("/other"));
    assert!(h.actions().is_empty());
    assert_eq!(
        h.events(),
        [format!("UpgradeFailed {second} None Upgrade unsent=[]")]
    );
    h.frame(text("still here"));
    assert_eq!(
        h.events(),
        [format!("Frame {first} Text(10 bytes \"still here\")")]
    );
}

#[test]
fn a_protocol_not_offered_fails_the_upgrade_and_drops_the_connection() {
    let mut h = Harness::up(options());
    h.events();
    let stream = h.upgrade(Upgrade::new("/ws").protocol("a"));
    h.actions();
    h.upgrade_ok(Some("b"));
    assert_eq!(
        h.events(),
        [format!("UpgradeFailed {stream} None Upgrade unsent=[]")]
    );
    assert_eq!(h.actions(), [Action::Disconnect]);
    assert_eq!(
        h.timeout(),
        None,
        "nothing to time while the driver drops it"
    );
    assert_eq!(h.core.killed_up_to(), Some(stream));
    h.lose(None, Vec::new());
    assert_eq!(
        h.events(),
        [
            "Down Error(Upgrade) killed=[] unsent=[] reconnect=true",
            "Reconnecting 2 100ms"
        ]
    );
    assert_eq!(h.timeout(), Some(100 * MS));
}

#[test]
fn a_rejected_upgrade_goes_down_and_reconnects() {
    let mut h = Harness::up(options());
    h.events();
    let stream = h.upgrade(Upgrade::new("/ws"));
    h.actions();
    h.send(stream, text("early"));
    h.upgrade_rejected(503);
    assert_eq!(
        h.events(),
        [
            format!("UpgradeFailed {stream} Some(503) Upgrade unsent=[]"),
            "Down UpgradeRejected killed=[] unsent=[Text(5 bytes \"early\")] reconnect=true"
                .to_owned(),
            "Reconnecting 2 100ms".to_owned(),
        ]
    );
    assert!(
        h.actions().is_empty(),
        "the rejection used the transport up"
    );
    assert_eq!(h.core.killed_up_to(), Some(stream));
    assert_eq!(h.core.take_released_bytes(), 5);
    h.advance_to_timeout();
    assert_eq!(h.actions(), [Action::Dial]);
}

#[test]
fn an_upgrade_that_times_out_drops_the_connection() {
    let mut h = Harness::up(options());
    h.events();
    let stream = h.upgrade(Upgrade::new("/ws"));
    h.actions();
    h.advance(9 * SEC);
    h.core.handle_timeout(h.now);
    assert!(h.actions().is_empty(), "not yet");
    h.advance_to_timeout();
    assert_eq!(h.elapsed(), 10 * SEC);
    assert_eq!(
        h.events(),
        [format!("UpgradeFailed {stream} None Timeout unsent=[]")]
    );
    assert_eq!(h.actions(), [Action::Disconnect]);
    h.lose(None, Vec::new());
    assert_eq!(
        h.events(),
        [
            "Down Error(Timeout) killed=[] unsent=[] reconnect=true",
            "Reconnecting 2 100ms"
        ]
    );
}
