//! The core's tests: the current Websocket (Socket): held sends.

use super::*;

impl Harness {
    fn send_current(&mut self, frames: impl Into<Frames>) {
        self.command(Command::SendCurrent {
            frames: frames.into(),
        });
    }

    /// Reconnects after a loss: backoff, dial, the automatic upgrade.
    fn reconnect(&mut self) {
        self.advance_to_timeout();
        assert_eq!(self.actions(), [Action::Dial]);
        self.dial_ok();
        assert!(matches!(self.actions()[..], [Action::Upgrade(_)]));
        self.upgrade_ok(None);
    }
}

fn socket_options() -> Options {
    options().auto_upgrade(true)
}

#[test]
fn socket_sends_while_down_are_held_and_written_in_order_after_the_next_upgrade() {
    let (mut h, s) = Harness::open(socket_options());
    h.send_current(text("a"));
    let handed = h.pop_all();
    assert_eq!(handed, [app(text("a"))]);
    h.send_current(text("b"));
    // "a" was handed to the transport that died (maybe written): it comes
    // back; "b" waited in the queue: it is held.
    h.lose(Some(io_error()), handed);
    assert_eq!(
        h.events(),
        [
            format!("Down Error(Io) killed=[\"{s}\"] unsent=[Text(1 bytes \"a\")] reconnect=true"),
            "Reconnecting 2 100ms".to_owned(),
        ]
    );
    assert_eq!(h.core.take_released_bytes(), 1, "only \"a\" left the queue");
    assert_eq!(
        h.core.socket_state(),
        crate::event::SocketState::Reconnecting
    );
    h.send_current(vec![text("c"), text("d")]);
    assert!(h.events().is_empty(), "held, not refused");
    assert!(!h.core.wants_transmit(), "nothing is written while down");
    h.reconnect();
    assert_eq!(h.core.socket_state(), crate::event::SocketState::Open);
    assert_eq!(
        h.pop_all(),
        [app(text("b")), app(text("c")), app(text("d"))],
        "held frames go out after the upgrade, in order"
    );
}

#[test]
fn socket_sends_while_upgrading_wait_for_the_upgrade() {
    let (mut h, _) = Harness::open(socket_options());
    h.lose(Some(io_error()), Vec::new());
    h.events();
    h.advance_to_timeout();
    h.actions();
    h.dial_ok();
    h.send_current(text("x"));
    assert!(!h.core.wants_transmit());
    h.upgrade_ok(None);
    assert_eq!(h.pop_all(), [app(text("x"))]);
}

#[test]
fn socket_held_frames_survive_a_failed_upgrade_and_a_second_loss() {
    let (mut h, _) = Harness::open(socket_options());
    h.lose(Some(io_error()), Vec::new());
    h.events();
    h.send_current(text("held"));
    h.advance_to_timeout();
    h.actions();
    h.dial_ok();
    h.actions();
    h.upgrade_rejected(503);
    let events = h.events();
    assert!(
        events
            .iter()
            .any(|e| e.contains("Down UpgradeRejected") && e.contains("unsent=[]")),
        "{events:?}"
    );
    h.reconnect();
    assert_eq!(h.pop_all(), [app(text("held"))]);
}

#[test]
fn socket_without_hold_refuses_sends_while_down_with_the_frames() {
    let (mut h, _) = Harness::open(socket_options().hold_while_down(false));
    h.send_current(text("queued"));
    h.lose(Some(io_error()), Vec::new());
    let events = h.events();
    assert!(
        events[0].contains("unsent=[Text(6 bytes \"queued\")]"),
        "without hold, queued frames come back in the Down: {events:?}"
    );
    h.send_current(text("late"));
    assert_eq!(
        h.events(),
        ["Error - Disconnected unsent=[Text(4 bytes \"late\")]"]
    );
    assert_eq!(h.core.take_released_bytes(), 10);
}

#[test]
fn socket_held_frames_come_back_when_retries_are_spent() {
    let (mut h, _) =
        Harness::open(socket_options().retry(Retry::default().jitter(0.0).max_retries(1)));
    h.lose(Some(io_error()), Vec::new());
    h.events();
    h.send_current(text("held"));
    h.advance_to_timeout();
    h.actions();
    h.dial_failed();
    assert_eq!(
        h.events(),
        [
            "Error - Connect unsent=[]",
            "Error - RetriesExhausted unsent=[Text(4 bytes \"held\")]",
        ]
    );
    assert!(h.core.is_terminated());
    assert_eq!(h.core.socket_state(), crate::event::SocketState::Closed);
}

#[test]
fn socket_held_frames_come_back_when_every_handle_is_dropped() {
    let (mut h, _) = Harness::open(socket_options());
    h.lose(Some(io_error()), Vec::new());
    h.events();
    h.advance_to_timeout();
    h.actions();
    h.dial_ok();
    h.actions();
    h.send_current(text("held"));
    h.core.handle_command(Command::Abandon, h.now);
    assert_eq!(h.actions(), [Action::Disconnect]);
    h.core
        .handle_transport(TransportEvent::Lost { written: None }, h.now);
    let events = h.events();
    assert!(
        events.iter().any(
            |e| e.starts_with("Down Shutdown") && e.contains("unsent=[Text(4 bytes \"held\")]")
        ),
        "{events:?}"
    );
    assert!(h.core.is_terminated());
}

#[test]
fn socket_close_while_down_ends_at_once_and_returns_what_is_held() {
    let (mut h, _) = Harness::open(socket_options());
    h.lose(Some(io_error()), Vec::new());
    h.events();
    h.send_current(text("held"));
    h.send_current(close(1000, "bye"));
    let events = h.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(
        events[0].starts_with("Error - Closed unsent=[Text(4 bytes \"held\")"),
        "{events:?}"
    );
    assert!(h.core.is_terminated());
}

#[test]
fn socket_close_while_open_writes_what_is_queued_then_the_close() {
    let (mut h, _) = Harness::open(socket_options());
    h.send_current(text("last"));
    h.send_current(close(4000, "done"));
    assert_eq!(h.core.socket_state(), crate::event::SocketState::Closing);
    assert_eq!(h.pop_all(), [app(text("last")), app(close(4000, "done"))]);
    h.send_current(text("after"));
    assert_eq!(
        h.events(),
        ["Error - Closed unsent=[Text(5 bytes \"after\")]"]
    );
}

#[test]
fn socket_state_is_connecting_until_the_first_open() {
    let mut h = Harness::new(socket_options());
    assert_eq!(h.core.socket_state(), crate::event::SocketState::Connecting);
    h.actions();
    h.dial_failed();
    assert_eq!(h.core.socket_state(), crate::event::SocketState::Connecting);
}
