//! The core's tests: shutdown.

use super::*;

#[test]
fn shutdown_while_open_queues_a_normal_close_after_pending_frames() {
    let (mut h, s) = Harness::open(options());
    h.send(s, vec![text("a"), text("b")]);
    h.command(Command::Shutdown);
    h.send(s, text("c"));
    assert_eq!(
        h.events(),
        [format!("Error {s} Closed unsent=[Text(1 bytes \"c\")]")]
    );
    assert_eq!(h.pop_all(), [app(text("a")), app(text("b")), own_close()]);
    assert_eq!(h.timeout(), Some(5 * SEC));
    h.lose(None, Vec::new());
    assert_eq!(
        h.events(),
        [format!(
            "Down Shutdown killed=[\"{s}\"] unsent=[] reconnect=false"
        )]
    );
    assert!(h.core.is_terminated());
}

#[test]
fn shutdown_while_dialing_terminates_and_returns_the_pending_upgrades_frames() {
    let mut h = Harness::new(options());
    h.actions();
    let s = h.upgrade(Upgrade::new("/ws"));
    h.send(s, text("a"));
    h.command(Command::Shutdown);
    assert_eq!(h.actions(), [Action::Disconnect]);
    assert_eq!(
        h.events(),
        [format!(
            "UpgradeFailed {s} None Closed unsent=[Text(1 bytes \"a\")]"
        )]
    );
    assert!(h.core.is_terminated());
    // The driver reports the aborted dial: nothing more happens.
    h.lose(None, Vec::new());
    assert!(h.events().is_empty());
    assert_eq!(h.core.take_released_bytes(), 1);
}

#[test]
fn shutdown_during_backoff_terminates() {
    let mut h = Harness::new(options());
    h.actions();
    h.dial_failed();
    h.events();
    h.command(Command::Shutdown);
    assert!(h.actions().is_empty());
    assert_eq!(h.events(), ["Error - Closed unsent=[]"]);
    assert!(h.core.is_terminated());
    assert_eq!(h.timeout(), None);
}

#[test]
fn shutdown_while_upgrading_drops_the_connection() {
    let mut h = Harness::up(options());
    h.events();
    let s = h.upgrade(Upgrade::new("/ws"));
    h.actions();
    h.send(s, text("a"));
    h.command(Command::Shutdown);
    assert_eq!(h.actions(), [Action::Disconnect]);
    h.lose(None, Vec::new());
    assert_eq!(
        h.events(),
        [format!(
            "Down Shutdown killed=[\"{s}\"] unsent=[Text(1 bytes \"a\")] reconnect=false"
        )]
    );
    assert!(h.core.is_terminated());
}

#[test]
fn a_second_shutdown_is_a_no_op() {
    let (mut h, _) = Harness::open(options());
    h.command(Command::Shutdown);
    h.command(Command::Shutdown);
    assert_eq!(h.pop_all(), [own_close()]);
    assert!(h.events().is_empty());
    assert!(h.actions().is_empty());
}

#[test]
fn the_shutdown_close_frame_never_comes_back_as_unsent() {
    // Lost before the close frame was handed to the transport.
    let (mut h, s) = Harness::open(options());
    h.send(s, text("a"));
    h.command(Command::Shutdown);
    let a = h.core.poll_transmit(h.now).cloned().unwrap();
    h.lose(Some(io_error()), vec![a]);
    assert_eq!(
        h.events(),
        [format!(
            "Down Shutdown killed=[\"{s}\"] unsent=[Text(1 bytes \"a\")] reconnect=false"
        )]
    );
    assert_eq!(
        h.core.take_released_bytes(),
        1,
        "only the application's bytes"
    );

    // Lost after it was handed over but before it was written.
    let (mut h, s) = Harness::open(options());
    h.send(s, text("a"));
    h.command(Command::Shutdown);
    let out = h.pop_all();
    h.lose(Some(io_error()), out);
    assert_eq!(
        h.events(),
        [format!(
            "Down Shutdown killed=[\"{s}\"] unsent=[Text(1 bytes \"a\")] reconnect=false"
        )]
    );
    assert_eq!(h.core.take_released_bytes(), 1);
}

#[test]
fn a_superseded_pending_upgrade_returns_its_frames() {
    let mut h = Harness::new(options());
    h.actions();
    let old = h.upgrade(Upgrade::new("/old"));
    h.send(old, text("for old"));
    let new = h.upgrade(Upgrade::new("/new"));
    assert_eq!(
        h.events(),
        [format!(
            "UpgradeFailed {old} None Upgrade unsent=[Text(7 bytes \"for old\")]"
        )]
    );
    assert_eq!(h.core.take_released_bytes(), 7);
    h.send(old, text("late"));
    h.send(new, text("for new"));
    assert_eq!(
        h.events(),
        [format!(
            "Error {old} StaleStream unsent=[Text(4 bytes \"late\")]"
        )]
    );
    h.dial_ok();
    assert_eq!(
        h.actions(),
        [Action::Upgrade(Upgrade::new("/new").validate().unwrap())]
    );
    h.upgrade_ok(None);
    assert_eq!(h.pop_all(), [app(text("for new"))]);
}

#[test]
fn a_failed_upgrade_is_not_a_stable_connection() {
    let mut h = Harness::up(options());
    h.events();
    h.advance(30 * SEC);
    let stream = h.upgrade(Upgrade::new("/ws"));
    h.actions();
    h.upgrade_rejected(503);
    assert_eq!(
        h.events(),
        [
            format!("UpgradeFailed {stream} Some(503) Upgrade unsent=[]"),
            "Down UpgradeRejected killed=[] unsent=[] reconnect=true".to_owned(),
            "Reconnecting 2 100ms".to_owned(),
        ]
    );
    h.advance_to_timeout();
    h.dial_ok();
    assert_eq!(h.events(), ["Up 2"]);
}

/// `shutdown` after the peer's Close ends at once: nothing is left to
/// wait for but the peer's TCP end.
#[test]
fn shutdown_after_the_peer_close_ends_at_once() {
    let (mut h, s) = Harness::open(options().no_keepalive());
    h.frame(close(1000, ""));
    h.events();
    h.command(Command::Shutdown);
    assert_eq!(h.actions(), [Action::Disconnect]);
    h.lose(None, Vec::new());
    assert_eq!(
        h.events(),
        [format!(
            "Down Shutdown killed=[\"{s}\"] unsent=[] reconnect=false"
        )]
    );
    assert!(h.core.is_terminated());
}
