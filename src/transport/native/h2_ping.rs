//! The keepalive over HTTP/2: its probe is a PING of the connection (RFC
//! 9113 §6.7) rather than a Websocket ping frame on the stream, as hyper's
//! keepalive does. A PING is answered by the server's HTTP/2 layer, ahead
//! of the stream's DATA and outside its flow-control window, so it
//! measures the connection's round trip and finds a dead connection; a
//! server that stops reading the stream is found by the core's
//! write-stall deadline instead.
//!
//! The Websockets of a shared connection (`Options::share_http2`) share
//! its PING: h2 lets one wait for its answer at a time, so a probe made
//! while one is out waits for the next round (sent as soon as the one out
//! is answered), never for an answer to a PING sent before it. Each
//! probe's payload is kept and handed back as the pong its keepalive
//! waits for.

use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use h2::PingPong;

/// One Websocket's view of its connection's PING.
pub(crate) struct ConnectionPing {
    shared: Arc<Mutex<Rounds>>,
    /// The payload of this Websocket's probe and the round that answers it.
    waiting: Option<(Bytes, u64)>,
}

/// What rounds need of h2's `PingPong` (a fake in the tests).
trait Pinger: Send {
    /// Sends a PING; fails if the connection is gone (or one is out).
    fn send_ping(&mut self) -> Result<(), h2::Error>;
    /// The answer to the PING out.
    fn poll_pong(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), h2::Error>>;
}

impl Pinger for PingPong {
    fn send_ping(&mut self) -> Result<(), h2::Error> {
        PingPong::send_ping(self, h2::Ping::opaque())
    }

    fn poll_pong(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), h2::Error>> {
        PingPong::poll_pong(self, cx).map_ok(|_| ())
    }
}

/// The connection's PINGs, counted in rounds (one PING and its answer).
struct Rounds {
    pong: Box<dyn Pinger>,
    /// A PING waits for its answer.
    out: bool,
    /// Rounds answered so far.
    answered: u64,
    /// The last round a probe waits for.
    wanted: u64,
    /// The Websockets waiting for a round (h2 wakes only the last poller).
    wakers: Vec<Waker>,
    /// The connection failed a PING: no more are sent.
    failed: bool,
}

impl ConnectionPing {
    pub(crate) fn new(pong: PingPong) -> ConnectionPing {
        ConnectionPing::over(Box::new(pong))
    }

    fn over(pong: Box<dyn Pinger>) -> ConnectionPing {
        ConnectionPing {
            shared: Arc::new(Mutex::new(Rounds {
                pong,
                out: false,
                answered: 0,
                wanted: 0,
                wakers: Vec::new(),
                failed: false,
            })),
            waiting: None,
        }
    }

    /// The same connection's PING, for another Websocket.
    pub(crate) fn another(&self) -> ConnectionPing {
        ConnectionPing {
            shared: self.shared.clone(),
            waiting: None,
        }
    }

    fn rounds(&self) -> MutexGuard<'_, Rounds> {
        self.shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sends the probe `payload` as a PING (or joins the next round);
    /// `false` if it cannot be (this Websocket's last probe is still out,
    /// or the connection failed): send it as a ping frame instead.
    pub(crate) fn send(&mut self, payload: &Bytes) -> bool {
        if self.waiting.is_some() {
            return false;
        }
        let mut rounds = self.rounds();
        if rounds.failed {
            return false;
        }
        let round = if rounds.out {
            rounds.answered + 2
        } else if rounds.pong.send_ping().is_ok() {
            rounds.out = true;
            rounds.answered + 1
        } else {
            rounds.failed = true;
            return false;
        };
        rounds.wanted = rounds.wanted.max(round);
        drop(rounds);
        self.waiting = Some((payload.clone(), round));
        true
    }

    /// The probe's payload once its round is answered. A failed PING
    /// answers nothing: the connection's failure reaches the stream.
    pub(crate) fn poll_pong(&mut self, cx: &mut Context<'_>) -> Poll<Bytes> {
        let Some((_, round)) = &self.waiting else {
            return Poll::Pending;
        };
        let round = *round;
        let mut rounds = self.rounds();
        if rounds.out && !rounds.failed {
            match rounds.pong.poll_pong(cx) {
                Poll::Ready(Ok(_)) => {
                    rounds.out = false;
                    rounds.answered += 1;
                    if rounds.wanted > rounds.answered {
                        if rounds.pong.send_ping().is_ok() {
                            rounds.out = true;
                        } else {
                            rounds.failed = true;
                        }
                    }
                    rounds.wakers.drain(..).for_each(Waker::wake);
                }
                Poll::Ready(Err(e)) => {
                    tracing::debug!("wstether: the HTTP/2 PING failed: {e}");
                    rounds.failed = true;
                    rounds.wakers.drain(..).for_each(Waker::wake);
                }
                Poll::Pending => {}
            }
        }
        if rounds.answered >= round {
            drop(rounds);
            let (payload, _) = self.waiting.take().unwrap_or_default();
            return Poll::Ready(payload);
        }
        if rounds.failed {
            drop(rounds);
            self.waiting = None;
            return Poll::Pending;
        }
        if !rounds.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            rounds.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A connection whose PINGs are answered when the test says.
    struct FakePings {
        sent: Arc<AtomicUsize>,
        answered: Arc<AtomicUsize>,
        /// PINGs answered so far, as this pinger has seen them.
        seen: usize,
    }

    impl Pinger for FakePings {
        fn send_ping(&mut self) -> Result<(), h2::Error> {
            self.sent.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }

        fn poll_pong(&mut self, _: &mut Context<'_>) -> Poll<Result<(), h2::Error>> {
            if self.answered.load(Ordering::SeqCst) > self.seen {
                self.seen += 1;
                Poll::Ready(Ok(()))
            } else {
                Poll::Pending
            }
        }
    }

    fn poll(ping: &mut ConnectionPing) -> Poll<Bytes> {
        let waker = futures::task::noop_waker();
        ping.poll_pong(&mut Context::from_waker(&waker))
    }

    #[test]
    fn a_probe_made_while_a_ping_is_out_waits_for_the_next_round() {
        let (sent, answered) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut first = ConnectionPing::over(Box::new(FakePings {
            sent: sent.clone(),
            answered: answered.clone(),
            seen: 0,
        }));
        let mut second = first.another();
        assert!(first.send(&Bytes::from_static(b"first")));
        assert!(second.send(&Bytes::from_static(b"second")));
        assert_eq!(sent.load(Ordering::SeqCst), 1, "one PING out at a time");
        assert!(!first.send(&Bytes::from_static(b"again")), "one probe each");
        assert!(poll(&mut first).is_pending() && poll(&mut second).is_pending());

        answered.store(1, Ordering::SeqCst); // the answer to the PING out
        assert_eq!(poll(&mut first), Poll::Ready(Bytes::from_static(b"first")));
        assert!(
            poll(&mut second).is_pending(),
            "the PING answered was sent before the second probe: not its answer"
        );
        assert_eq!(
            sent.load(Ordering::SeqCst),
            2,
            "the next round went out at once"
        );

        answered.store(2, Ordering::SeqCst);
        assert_eq!(
            poll(&mut second),
            Poll::Ready(Bytes::from_static(b"second"))
        );
        assert_eq!(sent.load(Ordering::SeqCst), 2, "no round nobody waits for");
    }

    #[test]
    fn probes_made_together_share_one_round() {
        let (sent, answered) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut probes: Vec<ConnectionPing> = Vec::new();
        probes.push(ConnectionPing::over(Box::new(FakePings {
            sent: sent.clone(),
            answered: answered.clone(),
            seen: 0,
        })));
        for _ in 0..9 {
            let another = probes[0].another();
            probes.push(another);
        }
        assert!(probes[0].send(&Bytes::from_static(b"p")));
        // The other nine probe after the first PING went out: next round.
        for probe in probes.iter_mut().skip(1) {
            assert!(probe.send(&Bytes::from_static(b"p")));
        }
        answered.store(1, Ordering::SeqCst);
        assert!(poll(&mut probes[0]).is_ready());
        answered.store(2, Ordering::SeqCst);
        for probe in probes.iter_mut().skip(1) {
            assert!(poll(probe).is_ready());
        }
        assert_eq!(sent.load(Ordering::SeqCst), 2, "ten probes, two PINGs");
    }
}
