//! The sans-IO core: the connection's state machine, its backoff and its
//! keepalive. Pure: time is passed in, I/O comes out as [`Action`]s and
//! frames to write, and what the application should hear comes out as
//! [`Event`]s. No tokio, no web-sys, no wall clock; tested with a fake clock.
//!
//! Life of a connection:
//!
//! ```text
//!            Dial                 dialed                upgrade ok
//! Dialing ─────────▶ (transport) ─────────▶ Connected ───▶ Upgrading ───▶ Open
//!    ▲   dial failed                            │  upgrade failed │          │ close sent
//!    │◀──────────── Backoff ◀──── Down ◀────────┴─────────────────┴──────────┤
//!    │  (retry policy)                                                      ▼
//!    └── Terminated ◀── (no retry: shutdown, close frame, policy) ◀──── Closing
//! ```

mod backoff;
mod keepalive;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, StatusCode};

pub(crate) use backoff::Backoff;
use keepalive::{KeepaliveAction, KeepaliveState};

use crate::error::{Error, ErrorKind};
use crate::event::{DownReason, Event, StreamRef};
use crate::frame::{CloseCode, CloseFrame, Frame, Frames};
use crate::options::{AutoUpgrade, Keepalive, Options};
use crate::request::{Upgrade, ValidUpgrade};
use crate::time::Instant;

/// What the driver must do for the core.
#[derive(Debug, PartialEq)]
pub(crate) enum Action {
    /// Open a transport (natively TCP, then TLS for `wss`).
    Dial,
    /// Upgrade the open transport to a Websocket.
    Upgrade(ValidUpgrade),
    /// Drop the transport (or the attempt in progress) now, then call
    /// [`Core::on_transport_lost`].
    Disconnect,
}

/// A frame on its way to the transport; probes are the core's own (the
/// keepalive's, and the close frame of a shutdown) and never come back to
/// the application as unsent.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Outgoing {
    pub(crate) frame: Frame,
    pub(crate) probe: bool,
}

/// A request from the application, in the order it was made.
#[derive(Debug)]
pub(crate) enum Command {
    Upgrade {
        stream: StreamRef,
        request: ValidUpgrade,
        original: Upgrade,
    },
    Send {
        stream: StreamRef,
        frames: Frames,
    },
    Shutdown,
    /// Probe the peer now (a page became visible, the browser came online).
    Probe,
}

/// Hands out stream references. Each connection numbers its streams in
/// the high bits of a process-wide connection number, so a `StreamRef` of
/// one connection never names a Websocket of another (Gun's references are
/// unique too), while numbers still grow within a connection.
#[derive(Debug, Default)]
pub(crate) struct StreamIds(AtomicU64);

impl StreamIds {
    pub(crate) fn for_new_connection() -> StreamIds {
        static CONNECTIONS: AtomicU64 = AtomicU64::new(1);
        StreamIds(AtomicU64::new(
            CONNECTIONS.fetch_add(1, Ordering::Relaxed) << 32,
        ))
    }

    pub(crate) fn next(&self) -> StreamRef {
        StreamRef(self.0.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

#[derive(Debug)]
enum Phase {
    Dialing {
        deadline: Instant,
    },
    Backoff {
        until: Instant,
    },
    Connected,
    Upgrading {
        stream: StreamRef,
        offered: Vec<String>,
        deadline: Instant,
    },
    Open {
        stream: StreamRef,
    },
    Closing {
        stream: StreamRef,
        deadline: Instant,
    },
    Terminated,
}

/// Why the transport is being dropped, decided before the driver reports it gone.
#[derive(Debug)]
enum Loss {
    Down(DownReason),
    DialFailed(Error),
}

/// The connection state machine.
pub(crate) struct Core {
    phase: Phase,
    backoff: Backoff,
    keepalive_config: Option<Keepalive>,
    keepalive: Option<KeepaliveState>,
    auto_upgrade: AutoUpgrade,
    silence_pings: bool,
    upgrade_timeout: Duration,
    closing_timeout: Duration,
    stream_ids: Arc<StreamIds>,
    /// The dial attempt in progress or next (1-based).
    attempt: u32,
    /// When the current transport came up.
    up_since: Option<Instant>,
    /// The last upgrade the application asked for (for `auto_upgrade(true)`).
    last_upgrade: Option<Upgrade>,
    /// An upgrade asked for while no transport was up: runs on `Up`.
    pending_upgrade: Option<(StreamRef, ValidUpgrade)>,
    outbox: VecDeque<Frame>,
    /// The last frame of `outbox` is the shutdown's own close frame, not
    /// the application's: it is neither counted nor returned as unsent.
    own_close_queued: bool,
    probes: VecDeque<Frame>,
    close_received: Option<CloseFrame>,
    /// The application sent a close frame or shut down: never reconnect.
    user_closed: bool,
    pending_loss: Option<Loss>,
    /// The highest stream killed so far: sends on it or older are stale.
    killed_up_to: Option<StreamRef>,
    rtt: Option<Duration>,
    /// Payload bytes of application frames that left the core's queue.
    released_bytes: usize,
    events: VecDeque<Event>,
    actions: VecDeque<Action>,
}

impl Core {
    /// A core that starts dialing at once.
    pub(crate) fn new(
        options: &Options,
        stream_ids: Arc<StreamIds>,
        seed: u64,
        now: Instant,
    ) -> Core {
        let mut core = Core {
            phase: Phase::Backoff { until: now },
            backoff: Backoff::new(options.retry.clone(), seed),
            keepalive_config: options.keepalive.clone(),
            keepalive: None,
            auto_upgrade: options.auto_upgrade.clone(),
            silence_pings: options.silence_pings,
            upgrade_timeout: options.upgrade_timeout,
            closing_timeout: options.closing_timeout,
            stream_ids,
            attempt: 0,
            up_since: None,
            last_upgrade: None,
            pending_upgrade: None,
            outbox: VecDeque::new(),
            own_close_queued: false,
            probes: VecDeque::new(),
            close_received: None,
            user_closed: false,
            pending_loss: None,
            killed_up_to: None,
            rtt: None,
            released_bytes: 0,
            events: VecDeque::new(),
            actions: VecDeque::new(),
        };
        core.dial(now);
        core
    }

    // ---- inputs from the application ------------------------------------

    pub(crate) fn on_command(&mut self, command: Command, now: Instant) {
        match command {
            Command::Upgrade {
                stream,
                request,
                original,
            } => self.on_upgrade_request(stream, request, original, now),
            Command::Send { stream, frames } => self.on_send(stream, frames),
            Command::Shutdown => self.on_shutdown(now),
            Command::Probe => {
                if let (Phase::Open { .. }, Some(keepalive)) = (&self.phase, &mut self.keepalive) {
                    if let Some(probe) = keepalive.probe_now(now) {
                        self.probes.push_back(probe);
                    }
                }
            }
        }
    }

    fn on_upgrade_request(
        &mut self,
        stream: StreamRef,
        request: ValidUpgrade,
        original: Upgrade,
        now: Instant,
    ) {
        self.last_upgrade = Some(original);
        match &self.phase {
            // A transport being dropped cannot be upgraded: wait for the next one.
            Phase::Connected if self.pending_loss.is_none() => {
                self.begin_upgrade(stream, request, now)
            }
            Phase::Connected | Phase::Dialing { .. } | Phase::Backoff { .. } => {
                if let Some((old, _)) = self.pending_upgrade.replace((stream, request)) {
                    // The frames queued so far were sent on the old stream:
                    // they must not go out on the new one.
                    let unsent: Vec<Frame> = self.outbox.drain(..).collect();
                    self.released_bytes += payload_bytes(&unsent);
                    let error = Error::new(
                        ErrorKind::Upgrade,
                        format!("superseded by upgrade {stream}"),
                    )
                    .with_unsent(unsent);
                    self.upgrade_failed_event(old, None, HeaderMap::new(), error);
                }
            }
            Phase::Upgrading {
                stream: current, ..
            }
            | Phase::Open { stream: current }
            | Phase::Closing {
                stream: current, ..
            } => {
                let error = Error::new(
                    ErrorKind::Upgrade,
                    format!(
                        "the connection already carries Websocket {current}; one per connection"
                    ),
                );
                self.upgrade_failed_event(stream, None, HeaderMap::new(), error);
            }
            Phase::Terminated => {
                let error = Error::new(ErrorKind::Closed, "the connection has terminated");
                self.upgrade_failed_event(stream, None, HeaderMap::new(), error);
            }
        }
    }

    fn on_send(&mut self, stream: StreamRef, frames: Frames) {
        let accepting = match &self.phase {
            Phase::Upgrading {
                stream: current, ..
            }
            | Phase::Open { stream: current } => *current == stream && !self.user_closed,
            Phase::Dialing { .. } | Phase::Backoff { .. } => self
                .pending_upgrade
                .as_ref()
                .is_some_and(|(s, _)| *s == stream),
            Phase::Connected | Phase::Closing { .. } | Phase::Terminated => false,
        };
        if accepting {
            self.outbox.extend(frames);
            return;
        }
        let frames = frames.into_vec();
        self.released_bytes += payload_bytes(&frames);
        let error = if matches!(self.phase, Phase::Terminated) || self.user_closed {
            Error::new(ErrorKind::Closed, "the connection is closing or closed")
        } else {
            Error::new(
                ErrorKind::StaleStream,
                format!("{stream} is not the connection's current Websocket"),
            )
        };
        self.events.push_back(Event::Error {
            stream: Some(stream),
            error: error.with_unsent(frames),
        });
    }

    fn on_shutdown(&mut self, now: Instant) {
        if self.user_closed {
            return;
        }
        self.user_closed = true;
        match &self.phase {
            Phase::Open { .. } => {
                // Graceful: what is queued goes out first, then the close frame.
                self.outbox.push_back(Frame::close_normal());
                self.own_close_queued = true;
            }
            Phase::Connected | Phase::Upgrading { .. } => {
                self.disconnect(Loss::Down(DownReason::Shutdown));
            }
            Phase::Dialing { .. } | Phase::Backoff { .. } => {
                if matches!(self.phase, Phase::Dialing { .. }) {
                    self.actions.push_back(Action::Disconnect);
                }
                self.terminate_unconnected(Error::new(ErrorKind::Closed, "shut down"), now);
            }
            Phase::Closing { .. } | Phase::Terminated => {}
        }
    }

    // ---- inputs from the transport ----------------------------------------

    pub(crate) fn on_dialed(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::Dialing { .. }) {
            return;
        }
        self.phase = Phase::Connected;
        self.up_since = Some(now);
        self.close_received = None;
        self.events.push_back(Event::Up {
            attempt: self.attempt,
        });
        if let Some((stream, request)) = self.pending_upgrade.take() {
            self.begin_upgrade(stream, request, now);
            return;
        }
        let request = match &self.auto_upgrade {
            AutoUpgrade::Off => return,
            AutoUpgrade::RepeatLast => match &self.last_upgrade {
                Some(last) => last.clone(),
                None => return,
            },
            AutoUpgrade::Provider(provider) => provider(),
        };
        let stream = self.stream_ids.next();
        match request.validate() {
            Ok(valid) => self.begin_upgrade(stream, valid, now),
            Err(error) => self.upgrade_failed_event(stream, None, HeaderMap::new(), error),
        }
    }

    pub(crate) fn on_dial_failed(&mut self, error: Error, now: Instant) {
        if matches!(self.phase, Phase::Dialing { .. }) {
            self.dial_failed(error, now);
        }
    }

    pub(crate) fn on_upgraded(
        &mut self,
        protocol: Option<String>,
        headers: HeaderMap,
        now: Instant,
    ) {
        let Phase::Upgrading {
            stream, offered, ..
        } = &self.phase
        else {
            return;
        };
        let stream = *stream;
        if let Some(chosen) = &protocol {
            if !offered.contains(chosen) {
                let error = Error::new(
                    ErrorKind::Upgrade,
                    format!("the server chose subprotocol {chosen:?}, which was not offered"),
                );
                self.upgrade_failed_event(stream, None, headers, error.clone());
                self.kill(stream);
                self.disconnect(Loss::Down(DownReason::Error(error)));
                return;
            }
        }
        self.phase = Phase::Open { stream };
        self.keepalive = self
            .keepalive_config
            .clone()
            .map(|config| KeepaliveState::new(config, now));
        self.events.push_back(Event::Upgraded {
            stream,
            protocol,
            headers,
        });
    }

    /// The upgrade failed; natively the transport is gone with it.
    pub(crate) fn on_upgrade_failed(
        &mut self,
        status: Option<StatusCode>,
        headers: HeaderMap,
        error: Error,
        now: Instant,
    ) {
        let Phase::Upgrading { stream, .. } = &self.phase else {
            return;
        };
        let stream = *stream;
        self.upgrade_failed_event(stream, status, headers, error.clone());
        self.kill(stream);
        let reason = match status {
            Some(_) => DownReason::UpgradeRejected,
            None => DownReason::Error(error),
        };
        self.go_down(reason, Vec::new(), now);
    }

    pub(crate) fn on_frame(&mut self, frame: Frame, now: Instant) {
        let (Phase::Open { stream } | Phase::Closing { stream, .. }) = &self.phase else {
            return;
        };
        let stream = *stream;
        let hidden_reply = match &mut self.keepalive {
            Some(keepalive) => keepalive.on_frame(&frame, now),
            None => false,
        };
        if let Some(keepalive) = &self.keepalive {
            self.rtt = keepalive.rtt().or(self.rtt);
        }
        match &frame {
            Frame::Ping(_) | Frame::Pong(_) if self.silence_pings => return,
            Frame::Close(close) => {
                self.close_received = Some(close.clone().unwrap_or(CloseFrame {
                    code: CloseCode::NO_STATUS,
                    reason: String::new(),
                }));
            }
            _ if hidden_reply => return,
            _ => {}
        }
        self.events.push_back(Event::Frame { stream, frame });
    }

    /// The transport is gone (it failed, the peer closed, or the driver
    /// dropped it after [`Action::Disconnect`]). `unsent` are frames handed
    /// to it but not confirmed written.
    pub(crate) fn on_transport_lost(
        &mut self,
        error: Option<Error>,
        unsent: Vec<Outgoing>,
        now: Instant,
    ) {
        let unsent: Vec<Frame> = unsent
            .into_iter()
            .filter(|out| !out.probe)
            .map(|out| out.frame)
            .collect();
        match (self.pending_loss.take(), &self.phase) {
            (Some(Loss::DialFailed(error)), Phase::Dialing { .. }) => self.dial_failed(error, now),
            (None, Phase::Dialing { .. }) => {
                let error = error.unwrap_or_else(|| Error::new(ErrorKind::Connect, "dial aborted"));
                self.dial_failed(error, now);
            }
            (_, Phase::Backoff { .. } | Phase::Terminated) => {
                debug_assert!(
                    unsent.is_empty(),
                    "a lost transport had frames outside a connection"
                );
            }
            (loss, _) => {
                let reason = match loss {
                    Some(Loss::Down(reason)) => reason,
                    _ => self.down_reason(error),
                };
                self.go_down(reason, unsent, now);
            }
        }
    }

    pub(crate) fn on_timeout(&mut self, now: Instant) {
        match &self.phase {
            Phase::Backoff { until } if now >= *until => self.dial(now),
            Phase::Dialing { deadline } if now >= *deadline => {
                let error = Error::new(ErrorKind::Timeout, "connect timed out");
                self.disconnect(Loss::DialFailed(error));
            }
            Phase::Upgrading {
                stream, deadline, ..
            } if now >= *deadline => {
                let stream = *stream;
                let error = Error::new(
                    ErrorKind::Timeout,
                    "the server did not answer the upgrade in time",
                );
                self.upgrade_failed_event(stream, None, HeaderMap::new(), error.clone());
                self.kill(stream);
                self.disconnect(Loss::Down(DownReason::Error(error)));
            }
            Phase::Open { .. } => {
                let action = self.keepalive.as_mut().and_then(|k| k.on_timeout(now));
                match action {
                    Some(KeepaliveAction::Probe(frame)) => self.probes.push_back(frame),
                    Some(KeepaliveAction::PeerDead) => {
                        self.disconnect(Loss::Down(DownReason::PeerDead))
                    }
                    None => {}
                }
            }
            Phase::Closing { deadline, .. } if now >= *deadline => {
                self.disconnect(Loss::Down(DownReason::Shutdown));
            }
            _ => {}
        }
    }

    // ---- outputs ------------------------------------------------------

    pub(crate) fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    pub(crate) fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    pub(crate) fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// When [`Core::on_timeout`] next has something to do.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        if self.pending_loss.is_some() {
            return None;
        }
        match &self.phase {
            Phase::Dialing { deadline }
            | Phase::Upgrading { deadline, .. }
            | Phase::Closing { deadline, .. } => Some(*deadline),
            Phase::Backoff { until } => Some(*until),
            Phase::Open { .. } => self.keepalive.as_ref().map(KeepaliveState::next_deadline),
            Phase::Connected | Phase::Terminated => None,
        }
    }

    /// Whether frames are waiting for the transport.
    pub(crate) fn has_outgoing(&self) -> bool {
        matches!(self.phase, Phase::Open { .. })
            && self.pending_loss.is_none()
            && (!self.probes.is_empty() || !self.outbox.is_empty())
    }

    /// The next frame for the transport. A close frame moves the connection
    /// to closing: nothing is written after it.
    pub(crate) fn pop_outgoing(&mut self, now: Instant) -> Option<Outgoing> {
        if !self.has_outgoing() {
            return None;
        }
        if let Some(frame) = self.probes.pop_front() {
            return Some(Outgoing { frame, probe: true });
        }
        let frame = self.outbox.pop_front()?;
        // Nothing is queued after the shutdown's close frame: it is the last.
        let own = self.own_close_queued && self.outbox.is_empty();
        if own {
            self.own_close_queued = false;
        } else {
            self.released_bytes += frame.len();
        }
        if let (Frame::Close(_), Phase::Open { stream }) = (&frame, &self.phase) {
            self.user_closed = true;
            self.phase = Phase::Closing {
                stream: *stream,
                deadline: now + self.closing_timeout,
            };
        }
        Some(Outgoing { frame, probe: own })
    }

    /// Payload bytes of application frames that left the queue since the last call.
    pub(crate) fn take_released_bytes(&mut self) -> usize {
        std::mem::take(&mut self.released_bytes)
    }

    pub(crate) fn is_terminated(&self) -> bool {
        matches!(self.phase, Phase::Terminated)
    }

    /// The highest stream killed by a `Down` so far.
    pub(crate) fn killed_up_to(&self) -> Option<StreamRef> {
        self.killed_up_to
    }

    /// The round-trip time of the last answered keepalive probe.
    pub(crate) fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    // ---- transitions ------------------------------------------------------

    fn dial(&mut self, now: Instant) {
        self.attempt += 1;
        self.phase = Phase::Dialing {
            deadline: now + self.backoff.retry().connect_timeout,
        };
        self.actions.push_back(Action::Dial);
    }

    fn begin_upgrade(&mut self, stream: StreamRef, request: ValidUpgrade, now: Instant) {
        self.phase = Phase::Upgrading {
            stream,
            offered: request.protocols.clone(),
            deadline: now + self.upgrade_timeout,
        };
        self.actions.push_back(Action::Upgrade(request));
    }

    /// The current upgrade failed: the stream is dead, the connection stays
    /// (until the transport, which the failure used up, is reported lost).
    fn kill(&mut self, stream: StreamRef) {
        self.killed_up_to = self.killed_up_to.max(Some(stream));
        // A connection whose upgrade failed was not a stable one: its time
        // up must not reset the backoff.
        self.up_since = None;
        self.phase = Phase::Connected;
    }

    fn disconnect(&mut self, loss: Loss) {
        self.pending_loss = Some(loss);
        self.actions.push_back(Action::Disconnect);
    }

    fn down_reason(&self, error: Option<Error>) -> DownReason {
        if self.user_closed {
            return DownReason::Shutdown;
        }
        if let Some(close) = &self.close_received {
            return DownReason::ClosedByPeer(close.clone());
        }
        DownReason::Error(error.unwrap_or_else(|| {
            Error::new(
                ErrorKind::Io,
                "the connection closed without a close frame (1006)",
            )
        }))
    }

    fn dial_failed(&mut self, error: Error, now: Instant) {
        self.events.push_back(Event::Error {
            stream: None,
            error,
        });
        if self.user_closed {
            return self.terminate_unconnected(Error::new(ErrorKind::Closed, "shut down"), now);
        }
        match self.backoff.next_delay() {
            Some(delay) => self.schedule_retry(delay, now),
            None => {
                let error = Error::new(
                    ErrorKind::RetriesExhausted,
                    format!("gave up after {} connect attempts", self.attempt),
                );
                self.terminate_unconnected(error, now);
            }
        }
    }

    fn schedule_retry(&mut self, delay: Duration, now: Instant) {
        self.phase = Phase::Backoff { until: now + delay };
        self.events.push_back(Event::Reconnecting {
            attempt: self.attempt + 1,
            delay,
        });
    }

    /// Ends a connection that is not up: the waiting upgrade, if any, fails
    /// and its queued frames come back.
    fn terminate_unconnected(&mut self, error: Error, _now: Instant) {
        self.phase = Phase::Terminated;
        if let Some((stream, _)) = self.pending_upgrade.take() {
            let unsent: Vec<Frame> = self.outbox.drain(..).collect();
            self.released_bytes += payload_bytes(&unsent);
            self.upgrade_failed_event(stream, None, HeaderMap::new(), error.with_unsent(unsent));
        } else {
            self.events.push_back(Event::Error {
                stream: None,
                error,
            });
        }
    }

    fn go_down(&mut self, reason: DownReason, mut unsent: Vec<Frame>, now: Instant) {
        let killed = match &self.phase {
            Phase::Upgrading { stream, .. }
            | Phase::Open { stream }
            | Phase::Closing { stream, .. } => {
                vec![*stream]
            }
            _ => Vec::new(),
        };
        self.killed_up_to = self.killed_up_to.max(killed.last().copied());
        if std::mem::take(&mut self.own_close_queued) {
            self.outbox.pop_back();
        }
        let queued: Vec<Frame> = self.outbox.drain(..).collect();
        self.released_bytes += payload_bytes(&queued);
        unsent.extend(queued);
        self.probes.clear();
        self.keepalive = None;
        self.pending_loss = None;
        let uptime = self
            .up_since
            .take()
            .map_or(Duration::ZERO, |since| now.saturating_duration_since(since));
        if uptime >= self.backoff.retry().reset_after {
            // The delays start again; attempt numbers keep counting, so
            // `Up { attempt > 1 }` always means "this is a reconnect".
            self.backoff.reset();
        }
        let stop_code = match &reason {
            DownReason::ClosedByPeer(close) => self
                .backoff
                .retry()
                .stop_on_close_codes
                .contains(&close.code.as_u16()),
            _ => false,
        };
        let delay = if self.user_closed || stop_code {
            None
        } else {
            self.backoff.next_delay()
        };
        self.events.push_back(Event::Down {
            reason,
            killed_streams: killed,
            unsent,
            will_reconnect: delay.is_some(),
        });
        match delay {
            Some(delay) => self.schedule_retry(delay, now),
            None => {
                self.phase = Phase::Terminated;
                if let Some((stream, _)) = self.pending_upgrade.take() {
                    let error =
                        Error::new(ErrorKind::Closed, "the connection ended before the upgrade");
                    self.upgrade_failed_event(stream, None, HeaderMap::new(), error);
                }
            }
        }
    }

    fn upgrade_failed_event(
        &mut self,
        stream: StreamRef,
        status: Option<StatusCode>,
        headers: HeaderMap,
        error: Error,
    ) {
        self.events.push_back(Event::UpgradeFailed {
            stream,
            status,
            headers,
            error,
        });
    }
}

fn payload_bytes(frames: &[Frame]) -> usize {
    frames.iter().map(Frame::len).sum()
}
