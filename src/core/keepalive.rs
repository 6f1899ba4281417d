//! The keepalive as a small state machine: when to probe, when the peer is
//! dead, and the round-trip time of answered probes.

use std::time::Duration;

use bytes::Bytes;

use crate::frame::Frame;
use crate::options::{Heartbeat, Keepalive};
use crate::time::Instant;

/// What the keepalive wants done at a given time.
#[derive(Debug, PartialEq)]
pub(crate) enum KeepaliveAction {
    /// Send this probe.
    Probe(Frame),
    /// Nothing heard within the deadline: the peer is dead.
    PeerDead,
}

#[derive(Debug)]
pub(crate) struct KeepaliveState {
    config: Keepalive,
    /// The last time anything was heard from the peer.
    last_heard: Instant,
    /// The probe in flight: its sequence number and when it went out.
    probe: Option<(u64, Instant)>,
    sequence: u64,
    rtt: Option<Duration>,
    /// `rtt` was measured since the last [`KeepaliveState::take_sample`].
    fresh_sample: bool,
    /// Reading is paused by back-pressure: the peer cannot be heard, so
    /// it is not judged.
    paused: bool,
}

impl KeepaliveState {
    pub(crate) fn new(config: Keepalive, now: Instant) -> KeepaliveState {
        KeepaliveState {
            config,
            last_heard: now,
            probe: None,
            sequence: 0,
            rtt: None,
            fresh_sample: false,
            paused: false,
        }
    }

    /// Pauses or resumes judging the peer. On resume the peer gets a whole
    /// interval again: whatever it sent meanwhile waits unread.
    pub(crate) fn set_paused(&mut self, paused: bool, now: Instant) {
        if self.paused && !paused {
            self.last_heard = now;
        }
        self.paused = paused;
    }

    /// Something arrived from the peer. Returns whether it is a reply to a
    /// heartbeat message that should be hidden from the application.
    pub(crate) fn on_frame(&mut self, frame: &Frame, now: Instant) -> bool {
        self.last_heard = now;
        let (is_reply, hide) = match (&self.config.heartbeat, frame) {
            (Heartbeat::Ping, Frame::Pong(payload)) => {
                let is_ours = self
                    .probe
                    .is_some_and(|(seq, _)| *payload == probe_payload(seq));
                (is_ours, false)
            }
            (Heartbeat::Ping, _) => (false, false),
            (
                Heartbeat::Message {
                    is_reply,
                    hide_replies,
                    ..
                },
                _,
            ) => {
                let matched = is_reply(frame);
                (matched && self.probe.is_some(), matched && *hide_replies)
            }
        };
        if is_reply {
            if let Some((_, sent)) = self.probe.take() {
                self.rtt = Some(now.saturating_duration_since(sent));
                self.fresh_sample = true;
            }
        }
        hide
    }

    /// Probe now, whatever the timers say (the page became visible, the
    /// browser came back online).
    pub(crate) fn probe_now(&mut self, now: Instant) -> Option<Frame> {
        if self.probe.is_some() {
            return None;
        }
        Some(self.start_probe(now))
    }

    /// The next time [`KeepaliveState::on_timeout`] has something to do
    /// (none while paused).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        if self.paused {
            return None;
        }
        let (from, delay) = match self.probe {
            Some((_, sent)) if self.last_heard <= sent => (sent, self.config.timeout),
            // Heard from since the probe (or no probe): probe after a quiet interval.
            _ => (self.last_heard, self.config.interval),
        };
        Some(from.checked_add(delay).unwrap_or(from))
    }

    pub(crate) fn on_timeout(&mut self, now: Instant) -> Option<KeepaliveAction> {
        if self.paused {
            return None;
        }
        if let Some((_, sent)) = self.probe {
            if self.last_heard <= sent {
                return (now.saturating_duration_since(sent) >= self.config.timeout)
                    .then_some(KeepaliveAction::PeerDead);
            }
        }
        if now.saturating_duration_since(self.last_heard) >= self.config.interval {
            return Some(KeepaliveAction::Probe(self.start_probe(now)));
        }
        None
    }

    #[cfg(test)]
    pub(crate) fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// The round trip measured since the last call, if any (one per
    /// answered probe, for the smoothed RTT).
    pub(crate) fn take_sample(&mut self) -> Option<Duration> {
        std::mem::take(&mut self.fresh_sample)
            .then_some(self.rtt)
            .flatten()
    }

    fn start_probe(&mut self, now: Instant) -> Frame {
        self.sequence += 1;
        self.probe = Some((self.sequence, now));
        match &self.config.heartbeat {
            Heartbeat::Ping => Frame::Ping(probe_payload(self.sequence)),
            Heartbeat::Message { frame, .. } => frame.clone(),
        }
    }
}

fn probe_payload(sequence: u64) -> Bytes {
    Bytes::copy_from_slice(&sequence.to_be_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn keepalive() -> Keepalive {
        Keepalive::every(10 * SECOND).timeout(3 * SECOND)
    }

    #[test]
    fn probes_after_a_quiet_interval_and_measures_rtt() {
        let t0 = Instant::now();
        let mut ka = KeepaliveState::new(keepalive(), t0);
        assert_eq!(ka.next_deadline(), Some(t0 + 10 * SECOND));
        assert_eq!(ka.on_timeout(t0 + 9 * SECOND), None);
        let Some(KeepaliveAction::Probe(Frame::Ping(payload))) = ka.on_timeout(t0 + 10 * SECOND)
        else {
            panic!("expected a ping probe");
        };
        assert_eq!(ka.next_deadline(), Some(t0 + 13 * SECOND));
        let hidden = ka.on_frame(
            &Frame::Pong(payload),
            t0 + 10 * SECOND + Duration::from_millis(20),
        );
        assert!(!hidden);
        assert_eq!(ka.rtt(), Some(Duration::from_millis(20)));
        assert_eq!(
            ka.next_deadline(),
            Some(t0 + 20 * SECOND + Duration::from_millis(20))
        );
    }

    #[test]
    fn silence_past_the_deadline_is_a_dead_peer() {
        let t0 = Instant::now();
        let mut ka = KeepaliveState::new(keepalive(), t0);
        assert!(matches!(
            ka.on_timeout(t0 + 10 * SECOND),
            Some(KeepaliveAction::Probe(_))
        ));
        assert_eq!(ka.on_timeout(t0 + 12 * SECOND), None);
        assert_eq!(
            ka.on_timeout(t0 + 13 * SECOND),
            Some(KeepaliveAction::PeerDead)
        );
    }

    #[test]
    fn any_traffic_is_proof_of_life() {
        let t0 = Instant::now();
        let mut ka = KeepaliveState::new(keepalive(), t0);
        ka.on_timeout(t0 + 10 * SECOND);
        ka.on_frame(&Frame::text("data"), t0 + 11 * SECOND);
        assert_eq!(ka.on_timeout(t0 + 13 * SECOND), None);
        assert_eq!(ka.rtt(), None, "data is life, not a measured round trip");
        assert_eq!(ka.next_deadline(), Some(t0 + 21 * SECOND));
    }

    #[test]
    fn traffic_postpones_probes() {
        let t0 = Instant::now();
        let mut ka = KeepaliveState::new(keepalive(), t0);
        ka.on_frame(&Frame::text("a"), t0 + 5 * SECOND);
        assert_eq!(ka.on_timeout(t0 + 10 * SECOND), None);
        assert!(matches!(
            ka.on_timeout(t0 + 15 * SECOND),
            Some(KeepaliveAction::Probe(_))
        ));
    }

    #[test]
    fn a_stale_pong_does_not_count_as_rtt() {
        let t0 = Instant::now();
        let mut ka = KeepaliveState::new(keepalive(), t0);
        ka.on_timeout(t0 + 10 * SECOND);
        ka.on_frame(&Frame::Pong(probe_payload(99)), t0 + 11 * SECOND);
        assert_eq!(ka.rtt(), None);
    }

    #[test]
    fn heartbeat_replies_are_recognised_and_hidden() {
        let t0 = Instant::now();
        let config = keepalive().heartbeat(Heartbeat::echo(Frame::text("hb")));
        let mut ka = KeepaliveState::new(config, t0);
        assert_eq!(
            ka.on_timeout(t0 + 10 * SECOND),
            Some(KeepaliveAction::Probe(Frame::text("hb")))
        );
        assert!(!ka.on_frame(&Frame::text("other"), t0 + 10 * SECOND));
        assert!(ka.on_frame(&Frame::text("hb"), t0 + 11 * SECOND));
        assert_eq!(ka.rtt(), Some(SECOND));
    }

    #[test]
    fn probe_now_sends_one_probe_at_a_time() {
        let t0 = Instant::now();
        let mut ka = KeepaliveState::new(keepalive(), t0);
        assert!(ka.probe_now(t0).is_some());
        assert!(ka.probe_now(t0).is_none());
        assert_eq!(
            ka.on_timeout(t0 + 3 * SECOND),
            Some(KeepaliveAction::PeerDead)
        );
    }

    #[test]
    fn a_paused_keepalive_does_not_judge_and_resumes_with_a_fresh_interval() {
        let t0 = Instant::now();
        let mut ka = KeepaliveState::new(keepalive(), t0);
        assert!(matches!(
            ka.on_timeout(t0 + 10 * SECOND),
            Some(KeepaliveAction::Probe(_))
        ));
        ka.set_paused(true, t0 + 11 * SECOND);
        assert_eq!(ka.next_deadline(), None);
        assert_eq!(
            ka.on_timeout(t0 + 60 * SECOND),
            None,
            "not dead while paused"
        );
        ka.set_paused(false, t0 + 60 * SECOND);
        assert_eq!(ka.next_deadline(), Some(t0 + 70 * SECOND));
        assert_eq!(ka.on_timeout(t0 + 63 * SECOND), None);
    }
}
