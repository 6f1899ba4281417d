//! The core's tests: keepalive.

use super::*;

#[test]
fn the_keepalive_probes_after_a_quiet_interval_and_measures_rtt() {
    let (mut h, s) = Harness::open(keepalive_options());
    assert_eq!(h.timeout(), Some(10 * SEC));
    h.advance(5 * SEC);
    h.frame(text("traffic"));
    h.events();
    assert_eq!(h.timeout(), Some(15 * SEC), "traffic postpones the probe");
    h.advance_to_timeout();
    let out = h.pop_all();
    let [Outgoing {
        frame: WireFrame::Ping(payload),
        internal: true,
        ..
    }] = &out[..]
    else {
        panic!("expected one ping probe, got {out:?}");
    };
    assert_eq!(h.timeout(), Some(18 * SEC), "the pong deadline");
    h.advance(20 * MS);
    h.frame(Frame::Pong(payload.clone()));
    assert!(h.events().is_empty(), "pongs are silenced");
    assert_eq!(h.core.rtt(), Some(20 * MS));
    assert_eq!(h.timeout(), Some(25 * SEC + 20 * MS));
    let _ = s;
}

/// A burst's queue capacity is kept between batches (no churn in a
/// pipelined flow) and freed at the first probe after it, a quiet interval;
/// the driver is then told to trim the event queue once.
#[test]
fn the_first_probe_after_a_burst_frees_the_queues_capacity() {
    let (mut h, _) = Harness::open(keepalive_options());
    assert!(h.core.take_trim(), "once the upgrade is done");
    for i in 0..1_000 {
        h.frame(text(&format!("{i}")));
    }
    assert_eq!(h.events().len(), 1_000);
    assert!(
        h.core.events_mut().capacity() >= 1_000,
        "kept between batches"
    );
    assert!(!h.core.take_trim());
    h.advance_to_timeout();
    assert!(h.pop_all()[0].internal, "the probe");
    assert_eq!(h.core.events_mut().capacity(), 0, "freed at the probe");
    assert!(h.core.take_trim(), "the driver trims the event queue");
    assert!(!h.core.take_trim(), "once");
}

#[test]
fn a_silent_peer_is_dead_and_the_connection_reconnects() {
    let (mut h, s) = Harness::open(keepalive_options());
    h.advance_to_timeout();
    assert!(h.pop_all()[0].internal);
    h.advance_to_timeout();
    assert_eq!(h.elapsed(), 13 * SEC);
    assert_eq!(h.actions(), [Action::Disconnect]);
    h.lose(None, Vec::new());
    assert_eq!(
        h.events(),
        [
            format!("Down PeerDead killed=[\"{s}\"] unsent=[] reconnect=true"),
            "Reconnecting 2 100ms".to_owned(),
        ]
    );
}

#[test]
fn the_probe_command_probes_at_once() {
    let (mut h, _) = Harness::open(keepalive_options());
    h.advance(SEC);
    h.command(Command::Probe);
    let out = h.pop_all();
    assert!(matches!(
        &out[..],
        [Outgoing {
            frame: WireFrame::Ping(_),
            internal: true,
            ..
        }]
    ));
    assert_eq!(h.timeout(), Some(4 * SEC));
    h.command(Command::Probe);
    assert!(h.pop_all().is_empty(), "one probe at a time");
}

#[test]
fn the_probe_command_without_keepalive_does_nothing() {
    let (mut h, _) = Harness::open(options());
    h.command(Command::Probe);
    assert!(!h.core.wants_transmit());
    let mut h = Harness::new(keepalive_options());
    h.command(Command::Probe);
    assert!(!h.core.wants_transmit());
}

#[test]
fn a_heartbeat_reply_is_hidden_and_measured() {
    let options = options().keepalive(
        Keepalive::every(10 * SEC)
            .timeout(3 * SEC)
            .heartbeat(crate::Heartbeat::echo(text("hb"))),
    );
    let (mut h, s) = Harness::open(options);
    h.advance_to_timeout();
    assert_eq!(
        h.pop_all(),
        [Outgoing {
            seq: 0,
            frame: text("hb").into(),
            internal: true
        }]
    );
    h.advance(SEC);
    h.frame(text("hb"));
    h.frame(text("other"));
    assert_eq!(h.events(), [format!("Frame {s} Text(5 bytes \"other\")")]);
    assert_eq!(h.core.rtt(), Some(SEC));
}
