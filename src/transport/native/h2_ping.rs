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

/// The connection's PINGs, counted in rounds (one PING and its answer).
struct Rounds {
    pong: PingPong,
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
        } else if rounds.pong.send_ping(h2::Ping::opaque()).is_ok() {
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
                        if rounds.pong.send_ping(h2::Ping::opaque()).is_ok() {
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
