//! The core's tests: no silent loss.

use super::*;

#[test]
fn unsent_frames_come_back_in_order_and_bytes_are_released_once() {
    let (mut h, s) = Harness::open(options());
    h.send(s, vec![text("a"), text("bb"), text("ccc"), text("dddd")]);
    assert_eq!(h.core.take_released_bytes(), 0, "queued, not released");
    let written: Vec<Outgoing> = (0..3)
        .map(|_| h.core.poll_transmit(h.now).cloned().unwrap())
        .collect();
    assert_eq!(h.core.take_released_bytes(), 6);
    // "a" reached the socket; "bb" and "ccc" were handed over but not written.
    h.lose(Some(io_error()), written[1..].to_vec());
    let events = h.raw_events();
    let Event::Down { unsent, .. } = &events[0] else {
        panic!("expected Down, got {events:?}");
    };
    assert_eq!(unsent, &[text("bb"), text("ccc"), text("dddd")]);
    assert_eq!(
        h.core.take_released_bytes(),
        4,
        "only the frames still queued"
    );
    assert_eq!(h.core.take_released_bytes(), 0);
}

#[test]
fn keepalive_probes_never_come_back_as_unsent() {
    let (mut h, s) = Harness::open(keepalive_options());
    h.send(s, text("x"));
    h.advance_to_timeout();
    assert_eq!(h.elapsed(), 10 * SEC);
    let out = h.pop_all();
    assert_eq!(out.len(), 2);
    assert!(out[0].internal && matches!(out[0].frame, WireFrame::Ping(_)));
    assert_eq!(out[1], app(text("x")));
    h.lose(Some(io_error()), out);
    assert_eq!(
        h.events(),
        [
            format!("Down Error(Io) killed=[\"{s}\"] unsent=[Text(1 bytes \"x\")] reconnect=true"),
            "Reconnecting 2 100ms".to_owned(),
        ]
    );
    assert_eq!(h.core.take_released_bytes(), 1, "probes are not counted");
}

#[test]
fn frames_sent_on_a_killed_stream_come_back_as_stale() {
    let (mut h, s) = Harness::open(options());
    h.lose(Some(io_error()), Vec::new());
    h.events();
    assert_eq!(h.core.killed_up_to(), Some(s));
    h.send(s, vec![text("late"), Frame::binary(vec![0])]);
    let events = h.raw_events();
    let [Event::Error { stream, error }] = &events[..] else {
        panic!("expected one error, got {events:?}");
    };
    assert_eq!(*stream, Some(s));
    assert_eq!(error.kind(), ErrorKind::StaleStream);
    assert_eq!(error.unsent(), [text("late"), Frame::binary(vec![0])]);
    assert_eq!(h.core.take_released_bytes(), 5);
    // Also after the reconnect, until a new upgrade.
    h.advance_to_timeout();
    h.dial_ok();
    h.events();
    h.send(s, text("x"));
    assert_eq!(
        h.events(),
        [format!(
            "Error {s} StaleStream unsent=[Text(1 bytes \"x\")]"
        )]
    );
}

#[test]
fn sends_and_upgrades_after_termination_are_closed() {
    let (mut h, s) = Harness::open(options().retry(Retry::never()));
    h.lose(Some(io_error()), Vec::new());
    assert_eq!(
        h.events(),
        [format!(
            "Down Error(Io) killed=[\"{s}\"] unsent=[] reconnect=false"
        )]
    );
    assert!(h.core.is_terminated());
    h.send(s, text("x"));
    let t = h.upgrade(Upgrade::new("/ws"));
    assert_eq!(
        h.events(),
        [
            format!("Error {s} Closed unsent=[Text(1 bytes \"x\")]"),
            format!("UpgradeFailed {t} None Closed unsent=[]"),
        ]
    );
    h.frame(text("ghost"));
    h.core.handle_timeout(h.now + 100 * SEC);
    assert!(h.events().is_empty());
    assert!(h.actions().is_empty());
}
