//! The core's tests: Gun's `flow`, a credit of received messages.

use super::*;

/// A core with a Websocket open on `upgrade`.
fn open_with(options: Options, upgrade: Upgrade) -> (Harness, StreamRef) {
    let mut h = Harness::up(options);
    let stream = h.upgrade(upgrade);
    assert!(matches!(h.actions()[..], [Action::Upgrade(_)]));
    h.upgrade_ok(None);
    h.events();
    (h, stream)
}

fn grant(h: &mut Harness, stream: Option<StreamRef>, messages: u64) {
    h.command(Command::UpdateFlow { stream, messages });
}

#[test]
fn without_a_flow_reading_never_waits_for_credit() {
    let (mut h, _) = Harness::open(options());
    assert_eq!(h.core.read_credit(), usize::MAX);
    for _ in 0..1_000 {
        h.frame(text("x"));
    }
    assert_eq!(h.events().len(), 1_000);
    assert_eq!(h.core.read_credit(), usize::MAX);
}

#[test]
fn each_delivered_message_spends_one_and_grants_add_up() {
    let (mut h, s) = open_with(options(), Upgrade::new("/ws").flow(2));
    assert_eq!(h.core.read_credit(), 2);
    h.frame(text("a"));
    assert_eq!(h.core.read_credit(), 1);
    h.frame(text("b"));
    assert_eq!(h.core.read_credit(), 0, "spent: the driver stops reading");
    grant(&mut h, Some(s), 3);
    grant(&mut h, None, 1);
    assert_eq!(h.core.read_credit(), 4);
    h.frame(Frame::binary(vec![1]));
    assert_eq!(h.core.read_credit(), 3);
    assert_eq!(h.events().len(), 3, "every frame read is delivered");
}

#[test]
fn frames_not_delivered_cost_nothing_delivered_control_frames_cost_one() {
    // silence_pings (the default): pings and pongs are not delivered.
    let (mut h, _) = open_with(options(), Upgrade::new("/ws").flow(1));
    h.frame(Frame::Ping("p".into()));
    h.frame(Frame::Pong("q".into()));
    assert!(h.events().is_empty());
    assert_eq!(h.core.read_credit(), 1);
    // Delivered, they count like messages (as in Gun).
    let (mut h, _) = open_with(options().silence_pings(false), Upgrade::new("/ws").flow(2));
    h.frame(Frame::Ping("p".into()));
    h.frame(Frame::Pong("q".into()));
    assert_eq!(h.events().len(), 2);
    assert_eq!(h.core.read_credit(), 0);
}

#[test]
fn flow_zero_opens_paused() {
    let (h, _) = open_with(options(), Upgrade::new("/ws").flow(0));
    assert_eq!(h.core.read_credit(), 0);
}

#[test]
fn a_grant_for_another_stream_does_nothing() {
    let (mut h, s) = open_with(options(), Upgrade::new("/ws").flow(0));
    grant(&mut h, Some(StreamRef(s.0 + 7)), 5);
    grant(&mut h, Some(StreamRef(s.0 - 1)), 5);
    assert_eq!(h.core.read_credit(), 0);
    assert!(h.events().is_empty() && h.actions().is_empty());
}

#[test]
fn credit_is_huge_but_never_wraps() {
    let (mut h, s) = open_with(options(), Upgrade::new("/ws").flow(u32::MAX));
    for _ in 0..4 {
        grant(&mut h, Some(s), u64::MAX);
    }
    h.frame(text("x"));
    // u64::MAX (saturated, not wrapped) less the one message.
    assert_eq!(h.core.flow, Flow::new(None).with_credit(u64::MAX - 1));
}

#[test]
fn a_grant_before_the_upgrade_is_sent_is_kept() {
    let mut h = Harness::new(options());
    assert_eq!(h.actions(), [Action::Dial]);
    let s = h.upgrade(Upgrade::new("/ws").flow(1)); // pending until Up
    grant(&mut h, Some(s), 4);
    h.dial_ok();
    assert!(matches!(h.actions()[..], [Action::Upgrade(_)]));
    h.upgrade_ok(None);
    assert_eq!(h.core.read_credit(), 5);
}

#[test]
fn the_reupgraded_websocket_starts_again_with_the_upgrades_credit() {
    let (mut h, s1) = open_with(options().auto_upgrade(true), Upgrade::new("/ws").flow(1));
    h.frame(text("a"));
    assert_eq!(h.core.read_credit(), 0);
    h.lose(Some(io_error()), Vec::new());
    h.events();
    grant(&mut h, Some(s1), 9); // the old stream: nothing
    h.advance_to_timeout();
    assert_eq!(h.actions(), [Action::Dial]);
    h.dial_ok();
    assert!(matches!(h.actions()[..], [Action::Upgrade(_)]));
    h.upgrade_ok(None);
    assert_eq!(h.core.read_credit(), 1, "the upgrade's credit, afresh");
}

#[test]
fn once_the_applications_close_is_out_the_websocket_is_read_to_its_end() {
    let (mut h, s) = open_with(options(), Upgrade::new("/ws").flow(0));
    h.send(s, Frame::close_normal());
    assert_eq!(h.pop_all().len(), 1);
    assert_eq!(
        h.core.read_credit(),
        usize::MAX,
        "the server's close frame must be read, whatever the credit"
    );
    h.frame(text("late"));
    h.frame(close(1000, "bye"));
    let events = h.events();
    assert!(
        events[0].starts_with(&format!("Frame {s} Text")),
        "{events:?}"
    );
}
