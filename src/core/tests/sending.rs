//! The core's tests: sending.

use super::*;

#[test]
fn frames_queued_while_upgrading_go_out_in_order_after_upgraded() {
    let mut h = Harness::up(options());
    h.events();
    let s = h.upgrade(Upgrade::new("/ws"));
    h.actions();
    h.send(s, vec![text("a"), text("b")]);
    h.send(s, text("c"));
    assert!(
        !h.core.wants_transmit(),
        "nothing is written before the upgrade"
    );
    assert_eq!(h.core.poll_transmit(h.now), None);
    h.upgrade_ok(None);
    assert_eq!(h.events(), [format!("Upgraded {s} None")]);
    assert_eq!(
        h.pop_all(),
        [app(text("a")), app(text("b")), app(text("c"))]
    );
    assert_eq!(h.core.take_released_bytes(), 3);
    assert!(h.events().is_empty());
}

#[test]
fn frames_queued_before_up_go_out_after_the_pending_upgrade() {
    let mut h = Harness::new(options());
    h.actions();
    let s = h.upgrade(Upgrade::new("/ws"));
    h.send(s, text("a"));
    h.dial_failed();
    assert_eq!(
        h.events(),
        ["Error - Connect unsent=[]", "Reconnecting 2 100ms"]
    );
    h.send(s, text("b"));
    h.advance_to_timeout();
    assert_eq!(h.actions(), [Action::Dial]);
    h.dial_ok();
    h.actions();
    h.upgrade_ok(None);
    assert_eq!(
        h.events(),
        ["Up 2".to_owned(), format!("Upgraded {s} None")]
    );
    assert_eq!(h.pop_all(), [app(text("a")), app(text("b"))]);
}

#[test]
fn a_close_frame_moves_to_closing_and_ends_without_reconnect() {
    let (mut h, s) = Harness::open(options());
    h.send(s, vec![text("a"), close(1000, "done"), text("b")]);
    assert_eq!(h.pop_all(), [app(text("a")), app(close(1000, "done"))]);
    assert!(!h.core.wants_transmit(), "nothing is written after a close");
    assert_eq!(h.timeout(), Some(5 * SEC), "the closing timeout");
    h.send(s, text("c"));
    assert_eq!(
        h.events(),
        [format!("Error {s} Closed unsent=[Text(1 bytes \"c\")]")]
    );
    // The server answers, then the transport ends.
    h.frame(close(1000, "done"));
    h.lose(None, Vec::new());
    assert_eq!(
        h.events(),
        [
            format!("Frame {s} Close(1000, \"done\")"),
            format!("Down Shutdown killed=[\"{s}\"] unsent=[Text(1 bytes \"b\")] reconnect=false"),
        ]
    );
    assert!(h.core.is_terminated());
    assert_eq!(h.core.take_released_bytes(), 1 + 6 + 1 + 1);
}

#[test]
fn the_closing_timeout_drops_the_connection() {
    let (mut h, s) = Harness::open(options());
    h.advance(SEC);
    h.send(s, Frame::close_normal());
    h.pop_all();
    h.advance(4 * SEC);
    h.core.handle_timeout(h.now);
    assert!(h.actions().is_empty(), "not yet");
    h.advance_to_timeout();
    assert_eq!(h.elapsed(), 6 * SEC);
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

/// Issue 21, finding 5: a peer that sends Close and keeps the TCP open
/// goes down at the closing timeout, with its close as the reason, even
/// without a keepalive; frames sent after its Close come back in the Down.
#[test]
fn a_peer_close_without_the_tcp_end_goes_down_at_the_closing_timeout() {
    let (mut h, s) = Harness::open(options().no_keepalive());
    h.advance(SEC);
    h.frame(close(1001, "bye"));
    h.events();
    assert_eq!(h.timeout(), Some(6 * SEC), "the closing timeout");
    h.send(s, text("late"));
    assert!(
        !h.core.wants_transmit(),
        "nothing is written after the peer's close"
    );
    h.advance_to_timeout();
    assert_eq!(h.elapsed(), 6 * SEC);
    assert_eq!(h.actions(), [Action::Disconnect]);
    h.lose(None, Vec::new());
    assert_eq!(
        h.events(),
        [
            format!(
                "Down ClosedByPeer(1001 \"bye\") killed=[\"{s}\"] unsent=[Text(4 bytes \"late\")] reconnect=true"
            ),
            "Reconnecting 2 100ms".to_owned(),
        ]
    );
}
