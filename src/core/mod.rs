//! The sans-IO core: the connection's state machine, its reconnect policy
//! and its keepalive. Pure: time is passed in, I/O comes out as
//! [`Action`]s and frames to write, and what the application should hear
//! comes out as [`Event`]s. No tokio, no web-sys, no wall clock; tested
//! with a fake clock.
//!
//! It speaks through a few verbs (quinn-proto's shape): in,
//! [`Core::handle_command`], [`Core::handle_transport`] and
//! [`Core::handle_timeout`]; out, [`Core::poll_action`],
//! [`Core::poll_transmit`], [`Core::poll_timeout`], the events
//! ([`Core::events_mut`]) and [`Core::take_progress`]. The driver reports
//! each thing once, as it happens; the order the core needs is the core's.
//!
//! The core owns delivery: every outgoing frame is numbered
//! ([`delivery::Delivery`]); the driver only reports "written through N"
//! and "the transport is gone", and the core decides which frames were
//! written and which come back unsent, and every deadline (connect,
//! upgrade, closing, failing, keepalive, a peer that stops reading).
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

mod boundary;
mod delivery;
mod down;
mod flow;
mod keepalive;
mod observe;
mod reconnect;
mod send;
#[cfg(test)]
mod tests;
mod upgrade;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, StatusCode};

pub(crate) use boundary::{
    Action, Command, Progress, Received, StreamIds, TransportEvent, UpgradeCheck,
    FAIL_CLOSE_TIMEOUT, NOT_OPEN_NOT_HELD,
};
use delivery::Delivery;
pub(crate) use delivery::{Outgoing, Seq, WireFrame, Written};
use flow::Flow;
use keepalive::{KeepaliveAction, KeepaliveState};
use observe::Observe;
use reconnect::{Next, Reconnect};

use crate::error::{Error, ErrorKind};
use crate::event::{DownReason, Event, StreamRef};
use crate::frame::{CloseCode, CloseFrame, Frame, Frames};
use crate::observer::{FrameInfo, Opcode};
use crate::options::{AutoUpgrade, Keepalive, Options};
use crate::request::{Upgrade, ValidUpgrade};
use crate::time::Instant;

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
    /// The peer broke the protocol: our close frame with the matching code
    /// is on its way out, then the connection goes down with `error`.
    Failing {
        stream: StreamRef,
        error: Error,
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
    reconnect: Reconnect,
    keepalive_config: Option<Keepalive>,
    keepalive: Option<KeepaliveState>,
    auto_upgrade: AutoUpgrade,
    check_upgrade: UpgradeCheck,
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
    delivery: Delivery,
    close_received: Option<CloseFrame>,
    /// A close frame was queued (the application's or a shutdown's), or
    /// every handle is gone: nothing more is sent and the connection never
    /// reconnects, whatever happens to the close frame.
    close_queued: bool,
    pending_loss: Option<Loss>,
    /// The highest stream killed so far: sends on it or older are stale.
    killed_up_to: Option<StreamRef>,
    rtt: Option<Duration>,
    /// The smoothed RTT (RFC 6298: 7/8 of the old plus 1/8 of each sample).
    srtt: Option<Duration>,
    /// Since when the transport has had unwritten bytes and written none
    /// (a peer that does not read): past the keepalive's deadline it is dead.
    write_stalled_since: Option<Instant>,
    events: VecDeque<Event>,
    actions: VecDeque<Action>,
    /// A quiet moment (the upgrade done, a probe after a burst): the
    /// driver trims the queues ([`Core::take_trim`]).
    trim: bool,
    // ---- observability (appended: counts, durations, the observer) ----
    observe: Observe,
    /// The connection's number (the `3` of `#3.2`).
    connection: u64,
    /// When the core was made (for `terminate`'s lifetime).
    born: Instant,
    /// When the dial in progress started (taken when its end is reported).
    dial_started: Option<Instant>,
    /// The upgrade in flight and when it went out.
    upgrade_started: Option<(StreamRef, Instant)>,
    /// Since when a Websocket has been open, and the total of past ones.
    open_since: Option<Instant>,
    time_connected: Duration,
    /// How many times the connection came up (`Event::Up`).
    ups: u64,
    received: Received,
    /// Frames sent to the current Websocket wait for the next one while
    /// down (`Options::hold_while_down`).
    hold_while_down: bool,
    // ---- the first connection (appended) ----
    /// The status of the refusal that is taking the connection down.
    refused_status: Option<StatusCode>,
    /// The upgrade in flight waits for the provider's request
    /// ([`Action::Provide`]); it is not sent yet.
    providing: bool,
    /// The current Websocket's credit of received messages (Gun's `flow`).
    flow: Flow,
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
            reconnect: Reconnect::new(
                &options.retry,
                matches!(options.auto_upgrade, AutoUpgrade::Provider(_)),
                seed,
                now,
            ),
            keepalive_config: options.keepalive.clone(),
            keepalive: None,
            auto_upgrade: options.auto_upgrade.clone(),
            check_upgrade: |_| Ok(()),
            silence_pings: options.silence_pings,
            upgrade_timeout: options.upgrade_timeout,
            closing_timeout: options.closing_timeout,
            stream_ids,
            attempt: 0,
            up_since: None,
            last_upgrade: None,
            pending_upgrade: None,
            delivery: Delivery::default(),
            close_received: None,
            close_queued: false,
            pending_loss: None,
            killed_up_to: None,
            rtt: None,
            srtt: None,
            write_stalled_since: None,
            events: VecDeque::new(),
            actions: VecDeque::new(),
            trim: false,
            observe: Observe::new(options.observer.clone()),
            connection: 0,
            born: now,
            dial_started: None,
            upgrade_started: None,
            open_since: None,
            time_connected: Duration::ZERO,
            ups: 0,
            received: Received::default(),
            hold_while_down: options.hold_while_down,
            refused_status: None,
            providing: false,
            flow: Flow::default(),
        };
        core.connection = core.stream_ids.connection();
        core.dial(now);
        core
    }

    /// Checks the upgrades the core makes itself (`auto_upgrade_with`'s
    /// provider) as `ws_upgrade` checks the application's.
    pub(crate) fn with_upgrade_check(mut self, check: UpgradeCheck) -> Core {
        self.check_upgrade = check;
        self
    }

    // ---- inputs: the verbs ------------------------------------------------

    /// A request from the application.
    pub(crate) fn handle_command(&mut self, command: Command, now: Instant) {
        match command {
            Command::Upgrade {
                stream,
                request,
                original,
            } => self.on_upgrade_request(stream, *request, *original, now),
            Command::Send { stream, frames } => self.on_send(stream, frames, now),
            Command::SendCurrent { frames } => self.on_send_current(frames, now),
            Command::UpdateFlow { stream, messages } => self.on_update_flow(stream, messages),
            Command::Shutdown => self.on_shutdown(now),
            Command::Abandon => self.on_abandoned(now),
            Command::Probe => {
                if let (Phase::Open { .. }, Some(keepalive)) = (&self.phase, &mut self.keepalive) {
                    if let Some(probe) = keepalive.probe_now(now) {
                        self.delivery.queue_urgent(probe);
                    }
                }
            }
        }
    }

    /// Something the transport did.
    // Always inlined: each call site names one variant, so the match folds
    // away and a read frame costs no move of the whole event (measured:
    // out of line, ~34 instructions more per echoed 32 B message).
    #[inline(always)]
    pub(crate) fn handle_transport(&mut self, event: TransportEvent, now: Instant) {
        match event {
            TransportEvent::Dialed { tls_handshake } => {
                if let Some(duration) = tls_handshake {
                    self.on_tls_handshake(duration);
                }
                self.on_dialed(now);
            }
            TransportEvent::DialFailed(error) => self.on_dial_failed(error, now),
            TransportEvent::Upgraded {
                protocol,
                headers,
                version,
            } => self.on_upgraded(protocol, headers, version, now),
            TransportEvent::UpgradeFailed {
                status,
                headers,
                error,
                unix_now,
            } => self.on_upgrade_failed(status, headers, error, now, unix_now),
            TransportEvent::Provided(provided) => self.on_provided(provided, now),
            TransportEvent::Frame(frame) => self.on_frame(frame, now),
            TransportEvent::Flushed(seq) => self.on_flushed(seq, now),
            TransportEvent::WriteBlocked {
                written,
                progressed,
            } => {
                self.on_written(written);
                self.on_write_blocked(progressed, now);
            }
            TransportEvent::ReadingPaused(paused) => self.on_reading_paused(paused, now),
            TransportEvent::SocketFailed { written, error } => {
                self.on_written(written);
                self.on_socket_failed(error, now);
            }
            TransportEvent::Lost { written } => {
                self.on_written(written);
                self.on_transport_lost(now);
            }
        }
    }

    /// Time passed: whatever deadline is due ([`Core::poll_timeout`]) fires.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_some_and(|at| now >= at) {
            self.on_timeout(now);
        }
    }

    // ---- what the transport did (behind handle_transport) -----------------

    /// The dial that is about to be reported up did a TLS handshake that
    /// took `duration` (natively, for `wss`).
    fn on_tls_handshake(&mut self, duration: Duration) {
        if !matches!(self.phase, Phase::Dialing { .. }) {
            return;
        }
        tracing::debug!(
            attempt = self.attempt,
            duration = ?duration,
            "wstether: TLS handshake"
        );
        let (connection, attempt) = (self.connection, self.attempt);
        self.observe
            .call(|o| o.tls_handshake(connection, attempt, duration));
    }

    fn on_dial_failed(&mut self, error: Error, now: Instant) {
        if matches!(self.phase, Phase::Dialing { .. }) {
            self.dial_failed(error, now);
        }
    }

    fn on_frame(&mut self, frame: Frame, now: Instant) {
        let (Phase::Open { stream } | Phase::Closing { stream, .. }) = &self.phase else {
            return;
        };
        let stream = *stream;
        let info = FrameInfo {
            opcode: Opcode::of(&frame),
            len: frame.len(),
            internal: false,
        };
        self.received.frames += 1;
        if info.opcode.is_message() {
            self.received.messages += 1;
            self.received.bytes += info.len as u64;
        }
        if self.watched() {
            tracing::trace!(%stream, opcode = ?info.opcode, len = info.len, "wstether: frame received");
            self.observe.call(|o| o.frame_received(stream, info));
        }
        let hidden_reply = match &mut self.keepalive {
            Some(keepalive) => keepalive.on_frame(&frame, now),
            None => false,
        };
        if let Some(sample) = self
            .keepalive
            .as_mut()
            .and_then(KeepaliveState::take_sample)
        {
            self.rtt = Some(sample);
            // RFC 6298 §2: SRTT <- 7/8 SRTT + 1/8 R', the first sample as is.
            self.srtt = Some(match self.srtt {
                Some(srtt) => srtt * 7 / 8 + sample / 8,
                None => sample,
            });
            tracing::trace!(
                rtt = ?sample,
                "wstether: round trip measured"
            );
        }
        match &frame {
            Frame::Ping(_) | Frame::Pong(_) if self.silence_pings => return,
            Frame::Close(close) => {
                self.close_received = Some(close.clone().unwrap_or(CloseFrame {
                    code: CloseCode::NO_STATUS,
                    reason: String::new(),
                }));
                // The peer may keep the TCP open after its close: the
                // closing timeout bounds how long we wait for its end.
                if let Phase::Open { stream } = self.phase {
                    self.phase = Phase::Closing {
                        stream,
                        deadline: later(now, self.closing_timeout),
                    };
                }
            }
            _ if hidden_reply => return,
            _ => {}
        }
        self.flow.spend();
        self.events.push_back(Event::Frame { stream, frame });
    }

    /// The transport wrote every frame through `seq` (`None`: nothing
    /// known written yet). Call after each write or flush.
    fn on_written(&mut self, seq: Option<Seq>) {
        let Some(seq) = seq else {
            return;
        };
        if !self.watched() {
            // Nobody looks at single frames: the ledger alone.
            self.delivery.written_through(seq, |_| {});
            return;
        }
        let stream = self.current_stream();
        let observe = &mut self.observe;
        self.delivery.written_through(seq, |out| {
            let info = FrameInfo {
                opcode: out.frame.opcode(),
                len: out.frame.len(),
                internal: out.internal,
            };
            tracing::trace!(
                stream = stream.map(tracing::field::display),
                opcode = ?info.opcode,
                len = info.len,
                internal = info.internal,
                "wstether: frame sent"
            );
            if let Some(stream) = stream {
                observe.call(|o| o.frame_sent(stream, info));
            }
        });
    }

    /// Whether anyone looks at single frames: an observer, or a `tracing`
    /// subscriber at TRACE level (one load, not a callsite check per frame).
    #[inline]
    fn watched(&self) -> bool {
        self.observe.is_set() || tracing::level_enabled!(tracing::Level::TRACE)
    }

    /// The Websocket the transport carries (or is upgrading to), if any.
    fn current_stream(&self) -> Option<StreamRef> {
        match &self.phase {
            Phase::Upgrading { stream, .. }
            | Phase::Open { stream }
            | Phase::Closing { stream, .. }
            | Phase::Failing { stream, .. } => Some(*stream),
            _ => None,
        }
    }

    /// Everything handed over so far has left the transport's buffer.
    fn on_flushed(&mut self, seq: Option<Seq>, _now: Instant) {
        self.on_written(seq);
        self.write_stalled_since = None;
        if let Phase::Failing { error, .. } = &self.phase {
            if self.pending_loss.is_none() {
                let error = error.clone();
                self.disconnect(Loss::Down(DownReason::Error(error)));
            }
        }
    }

    /// The transport has bytes it could not write. `progressed`: it wrote
    /// some since the last call. A peer that reads nothing for the
    /// keepalive's interval + timeout is declared dead (without it, a peer
    /// that floods pings and never reads would grow our pongs forever).
    fn on_write_blocked(&mut self, progressed: bool, now: Instant) {
        if progressed || self.write_stalled_since.is_none() {
            self.write_stalled_since = Some(now);
        }
    }

    /// Reading is paused (the application is not reading its events) or
    /// resumed. While paused, the keepalive cannot hear the peer, so it
    /// does not judge it: a slow application does not kill a healthy peer.
    fn on_reading_paused(&mut self, paused: bool, now: Instant) {
        if let Some(keepalive) = &mut self.keepalive {
            keepalive.set_paused(paused, now);
        }
    }

    /// The open socket failed (`Some`) or ended (`None`). A protocol error
    /// of the peer's is reported to it first, with a close frame.
    fn on_socket_failed(&mut self, error: Option<Error>, now: Instant) {
        if self.pending_loss.is_some() {
            return;
        }
        if let Phase::Failing { error, .. } = &self.phase {
            // The close frame cannot go out either: report the peer's error.
            let error = error.clone();
            return self.disconnect(Loss::Down(DownReason::Error(error)));
        }
        // After the peer's close frame, an error is the end of that close
        // (say, a frame the transport refused to send after it), not the
        // peer breaking the protocol: the connection closed by the peer.
        if let (Some(error), Phase::Open { stream } | Phase::Closing { stream, .. }, None) =
            (&error, &self.phase, &self.close_received)
        {
            if let Some(code) = fail_close_code(error.kind()) {
                self.phase = Phase::Failing {
                    stream: *stream,
                    error: error.clone(),
                    deadline: later(now, FAIL_CLOSE_TIMEOUT),
                };
                self.actions.push_back(Action::FailClose { code });
                return;
            }
        }
        let reason = self.down_reason(error);
        self.disconnect(Loss::Down(reason));
    }

    /// The transport is gone: the driver dropped it after
    /// [`Action::Disconnect`]. Frames in flight that [`Core::on_written`]
    /// did not cover come back unsent.
    fn on_transport_lost(&mut self, now: Instant) {
        match (self.pending_loss.take(), &self.phase) {
            (Some(Loss::DialFailed(error)), Phase::Dialing { .. }) => self.dial_failed(error, now),
            (None, Phase::Dialing { .. }) => {
                self.dial_failed(Error::new(ErrorKind::Connect, "dial aborted"), now);
            }
            (_, Phase::Backoff { .. } | Phase::Terminated) => {}
            (loss, _) => {
                let reason = match loss {
                    Some(Loss::Down(reason)) => reason,
                    _ => self.down_reason(None),
                };
                self.go_down(reason, now);
            }
        }
    }

    fn on_timeout(&mut self, now: Instant) {
        if self.pending_loss.is_some() {
            return;
        }
        match &self.phase {
            Phase::Backoff { until } if now >= *until => self.dial(now),
            Phase::Dialing { deadline } if now >= *deadline => {
                let error = self.reconnect.timeout_error("connect timed out", now);
                self.disconnect(Loss::DialFailed(error));
            }
            Phase::Upgrading {
                stream, deadline, ..
            } if now >= *deadline => {
                let stream = *stream;
                let what = if self.providing {
                    "the upgrade provider did not answer in time (Options::upgrade_timeout)"
                } else {
                    "the server did not answer the upgrade in time"
                };
                let error = self.reconnect.timeout_error(what, now);
                self.providing = false;
                self.upgrade_answered(None, None, Some(&error), now);
                self.upgrade_failed_event(stream, None, HeaderMap::new(), error.clone());
                self.kill(stream);
                self.disconnect(Loss::Down(DownReason::Error(error)));
            }
            Phase::Open { .. } | Phase::Closing { .. }
                if self.write_deadline().is_some_and(|at| now >= at) =>
            {
                self.disconnect(Loss::Down(DownReason::PeerDead));
            }
            Phase::Open { .. } => {
                let action = self.keepalive.as_mut().and_then(|k| k.on_timeout(now));
                match action {
                    Some(KeepaliveAction::Probe(frame)) => {
                        self.delivery.queue_urgent(frame);
                        // Quiet for an interval: a good time to free what a
                        // burst left in the queues (not at every drain).
                        self.trim_queues();
                    }
                    Some(KeepaliveAction::PeerDead) => {
                        self.disconnect(Loss::Down(DownReason::PeerDead))
                    }
                    None => {}
                }
            }
            Phase::Closing { deadline, .. } if now >= *deadline => {
                // Ours (Shutdown), or the peer's close frame.
                self.disconnect(Loss::Down(self.down_reason(None)));
            }
            Phase::Failing {
                deadline, error, ..
            } if now >= *deadline => {
                let error = error.clone();
                self.disconnect(Loss::Down(DownReason::Error(error)));
            }
            _ => {}
        }
    }

    /// Frees the capacity a burst left in the core's queues and asks the
    /// driver to trim the event queue ([`Core::take_trim`]).
    fn trim_queues(&mut self) {
        self.free_idle_queues();
        self.trim = true;
    }

    /// Frees the capacity of the core's queues that are empty (an idle
    /// connection holds none). The driver calls it when it waits after a
    /// trim was asked for ([`Core::take_trim`]): by then the events the
    /// request came with (the upgrade's) have been handed over.
    pub(crate) fn free_idle_queues(&mut self) {
        if self.events.is_empty() {
            self.events = VecDeque::new();
        }
        if self.actions.is_empty() {
            self.actions = VecDeque::new();
        }
    }

    /// What changed for the handles since the last call (see
    /// [`Progress`]); the events are taken with [`Core::events_mut`].
    pub(crate) fn take_progress(&mut self) -> Progress {
        let (time_connected, open_since) = self.time_connected();
        Progress {
            released_bytes: self.take_released_bytes(),
            released_frames: self.take_released_frames(),
            killed_up_to: self.killed_up_to(),
            peer_closed: self.peer_closed(),
            rtt: self.rtt(),
            written: self.take_written(),
            received: self.take_received(),
            srtt: self.srtt(),
            reconnects: self.reconnects(),
            time_connected,
            open_since,
            state: self.socket_state(),
        }
    }

    /// Whether the queues should be trimmed now (once per request): at the
    /// first keepalive probe after a burst, and once the upgrade is done
    /// (what connecting left in them is not needed while idle).
    pub(crate) fn take_trim(&mut self) -> bool {
        std::mem::take(&mut self.trim)
    }

    // ---- outputs ------------------------------------------------------

    /// Whether the driver has something to carry out.
    pub(crate) fn has_actions(&self) -> bool {
        !self.actions.is_empty()
    }

    pub(crate) fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    #[cfg(test)]
    pub(crate) fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The events not yet polled, for the driver to take them all at once
    /// (it leaves the deque empty; its buffer may be swapped for another).
    pub(crate) fn events_mut(&mut self) -> &mut VecDeque<Event> {
        &mut self.events
    }

    /// When [`Core::handle_timeout`] next has something to do.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        if self.pending_loss.is_some() {
            return None;
        }
        let phase_deadline = match &self.phase {
            Phase::Dialing { deadline }
            | Phase::Upgrading { deadline, .. }
            | Phase::Closing { deadline, .. }
            | Phase::Failing { deadline, .. } => Some(*deadline),
            Phase::Backoff { until } => Some(*until),
            Phase::Open { .. } => self
                .keepalive
                .as_ref()
                .and_then(KeepaliveState::next_deadline),
            Phase::Connected | Phase::Terminated => None,
        };
        match (phase_deadline, self.write_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// When a transport that writes nothing is declared dead.
    fn write_deadline(&self) -> Option<Instant> {
        if !matches!(self.phase, Phase::Open { .. } | Phase::Closing { .. }) {
            return None;
        }
        let since = self.write_stalled_since?;
        let keepalive = self.keepalive_config.as_ref()?;
        Some(later(
            since,
            keepalive.interval.saturating_add(keepalive.timeout),
        ))
    }

    /// Whether the socket should be read (not while failing or dropping it).
    pub(crate) fn is_reading(&self) -> bool {
        matches!(self.phase, Phase::Open { .. } | Phase::Closing { .. })
            && self.pending_loss.is_none()
    }

    /// Whether frames are waiting for the transport.
    pub(crate) fn wants_transmit(&self) -> bool {
        // Nothing is sent after the peer's close frame (RFC 6455 §5.5.1):
        // what is queued comes back in the `Down`.
        matches!(self.phase, Phase::Open { .. })
            && self.pending_loss.is_none()
            && self.close_received.is_none()
            && self.delivery.has_queued()
    }

    /// The next frame for the transport; it counts as in flight until a
    /// report of "written through" ([`TransportEvent::Flushed`] and the
    /// like) covers its `seq`. A close frame moves the
    /// connection to closing: nothing is written after it.
    pub(crate) fn poll_transmit(&mut self, now: Instant) -> Option<&Outgoing> {
        if !self.wants_transmit() {
            return None;
        }
        let out = self.delivery.hand_over()?;
        if let (true, Phase::Open { stream }) = (out.frame.is_close(), &self.phase) {
            self.close_queued = true;
            self.phase = Phase::Closing {
                stream: *stream,
                deadline: later(now, self.closing_timeout),
            };
        }
        Some(out)
    }

    /// Payload bytes of application frames that left the core's queue
    /// since the last call (room in the handles' send queue).
    fn take_released_bytes(&mut self) -> usize {
        self.delivery.take_released()
    }

    /// How many application frames left the send queue since the last
    /// call (each was charged a fixed overhead there besides its payload).
    fn take_released_frames(&mut self) -> usize {
        self.delivery.take_released_frames()
    }

    /// Application frames confirmed written since the last call.
    fn take_written(&mut self) -> Written {
        self.delivery.take_written()
    }

    /// Frames read since the last call.
    fn take_received(&mut self) -> Received {
        std::mem::take(&mut self.received)
    }

    /// The smoothed round-trip time (RFC 6298) of the answered probes.
    fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    /// How many times the connection came back up after the first time.
    fn reconnects(&self) -> u64 {
        self.ups.saturating_sub(1)
    }

    /// The total time Websockets were open before the current one, and
    /// since when the current one is open.
    fn time_connected(&self) -> (Duration, Option<Instant>) {
        (self.time_connected, self.open_since)
    }

    /// The dial attempt in progress or last made (1-based).
    pub(crate) fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Where the current Websocket is, as a [`Socket`](crate::Socket) tells it.
    fn socket_state(&self) -> crate::event::SocketState {
        use crate::event::SocketState;
        match &self.phase {
            Phase::Terminated => SocketState::Closed,
            _ if self.close_queued => SocketState::Closing,
            Phase::Open { .. } if self.pending_loss.is_none() => SocketState::Open,
            Phase::Closing { .. } => SocketState::Closing,
            _ if self.reconnect.opened_once() => SocketState::Reconnecting,
            _ => SocketState::Connecting,
        }
    }

    pub(crate) fn is_terminated(&self) -> bool {
        matches!(self.phase, Phase::Terminated)
    }

    /// The highest stream killed by a `Down` so far.
    fn killed_up_to(&self) -> Option<StreamRef> {
        self.killed_up_to
    }

    /// The Websocket whose peer sent its close frame, while it closes:
    /// nothing more is sent on it (RFC 6455 §5.5.1).
    fn peer_closed(&self) -> Option<StreamRef> {
        match (&self.phase, &self.close_received) {
            (Phase::Closing { stream, .. }, Some(_)) => Some(*stream),
            _ => None,
        }
    }

    /// The round-trip time of the last answered keepalive probe.
    fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// The application frames the core still holds, for a driver that
    /// cannot go on (it panicked, or its runtime is shutting down). Plain
    /// draining, so it is safe to call from a `Drop` during unwinding.
    pub(crate) fn salvage(&mut self) -> Vec<Frame> {
        self.phase = Phase::Terminated;
        self.delivery.take_unsent()
    }

    // ---- transitions ------------------------------------------------------

    fn dial(&mut self, now: Instant) {
        self.attempt = self.attempt.saturating_add(1);
        self.phase = Phase::Dialing {
            deadline: self
                .reconnect
                .first_bound(later(now, self.reconnect.retry().connect_timeout)),
        };
        self.dial_started = Some(now);
        let (connection, attempt) = (self.connection, self.attempt);
        self.observe.call(|o| o.connect_start(connection, attempt));
        self.actions.push_back(Action::Dial);
    }

    /// How long the dial that just ended took (its end is reported once).
    fn dial_duration(&mut self, now: Instant) -> Duration {
        self.dial_started
            .take()
            .map_or(Duration::ZERO, |since| now.saturating_duration_since(since))
    }
}

/// The close code that tells the peer why we fail the connection, for the
/// errors that are the peer's fault (RFC 6455 §7.4.1); `None` when the
/// socket itself failed and nothing can be sent.
fn fail_close_code(kind: ErrorKind) -> Option<u16> {
    match kind {
        ErrorKind::MessageTooBig => Some(1009),
        ErrorKind::InvalidUtf8 | ErrorKind::InvalidCompressedData => Some(1007),
        ErrorKind::Protocol => Some(1002),
        _ => None,
    }
}

/// `now + delay`, saturating far in the future instead of overflowing.
fn later(now: Instant, delay: Duration) -> Instant {
    now.checked_add(delay)
        .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365))
}
