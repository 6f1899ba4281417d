//! The core's tests: frames from the server.

use super::*;

#[test]
fn each_frame_is_exactly_one_event() {
    let (mut h, s) = Harness::open(options());
    h.frame(text("a"));
    h.frame(Frame::binary(vec![1, 2]));
    h.frame(text("b"));
    assert_eq!(
        h.events(),
        [
            format!("Frame {s} Text(1 bytes \"a\")"),
            format!("Frame {s} Binary(2 bytes \"\\u{{1}}\\u{{2}}\")"),
            format!("Frame {s} Text(1 bytes \"b\")"),
        ]
    );
    assert!(h.actions().is_empty());
}

#[test]
fn pings_and_pongs_are_hidden_with_silence_pings() {
    let (mut h, _) = Harness::open(options());
    h.frame(Frame::Ping("p".into()));
    h.frame(Frame::Pong("q".into()));
    assert!(h.events().is_empty());
}

#[test]
fn pings_and_pongs_are_shown_without_silence_pings() {
    let (mut h, s) = Harness::open(options().silence_pings(false));
    h.frame(Frame::Ping("p".into()));
    h.frame(Frame::Pong("q".into()));
    assert_eq!(
        h.events(),
        [
            format!("Frame {s} Ping(\"p\")"),
            format!("Frame {s} Pong(\"q\")")
        ]
    );
}

#[test]
fn no_frame_is_delivered_before_the_upgrade() {
    let mut h = Harness::up(options());
    h.events();
    h.frame(text("early"));
    let _ = h.upgrade(Upgrade::new("/ws"));
    h.frame(text("early"));
    assert!(h.events().is_empty());
}

#[test]
fn a_close_from_the_peer_is_delivered_then_down_closed_by_peer() {
    let (mut h, s) = Harness::open(options());
    h.frame(close(1001, "bye"));
    assert_eq!(h.events(), [format!("Frame {s} Close(1001, \"bye\")")]);
    h.lose(None, Vec::new());
    assert_eq!(
        h.events(),
        [
            format!("Down ClosedByPeer(1001 \"bye\") killed=[\"{s}\"] unsent=[] reconnect=true"),
            "Reconnecting 2 100ms".to_owned(),
        ]
    );
    assert_eq!(h.core.killed_up_to(), Some(s));
}

#[test]
fn a_close_without_status_is_1005() {
    let (mut h, s) = Harness::open(options());
    h.frame(Frame::Close(None));
    h.lose(None, Vec::new());
    assert_eq!(
        h.events(),
        [
            format!("Frame {s} Close"),
            format!("Down ClosedByPeer(1005 \"\") killed=[\"{s}\"] unsent=[] reconnect=true"),
            "Reconnecting 2 100ms".to_owned(),
        ]
    );
}

#[test]
fn a_stop_close_code_ends_the_connection() {
    let (mut h, s) = Harness::open(options());
    h.frame(close(1008, "policy"));
    h.lose(None, Vec::new());
    assert_eq!(
        h.events(),
        [
            format!("Frame {s} Close(1008, \"policy\")"),
            format!(
                "Down ClosedByPeer(1008 \"policy\") killed=[\"{s}\"] unsent=[] reconnect=false"
            ),
        ]
    );
    assert!(h.core.is_terminated());
    assert_eq!(h.timeout(), None);
    assert!(h.actions().is_empty());
}

#[test]
fn a_loss_without_close_frame_is_an_error_down() {
    let (mut h, s) = Harness::open(options());
    h.lose(None, Vec::new());
    assert_eq!(
        h.events(),
        [
            format!("Down Error(Io) killed=[\"{s}\"] unsent=[] reconnect=true"),
            "Reconnecting 2 100ms".to_owned(),
        ]
    );
}
