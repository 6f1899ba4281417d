//! The driver: one task per connection that feeds the core with commands,
//! transport results and time, and carries out what the core decides. The
//! same code runs on both targets; only the [`Transport`] differs.
//!
//! It decides nothing itself: it reports "written through N", "blocked",
//! "failed" and "gone" to the core, which owns every frame until it is
//! written or handed back, and every deadline.
//!
//! Writes are batched: every frame that is queued when the driver runs is
//! handed to the socket, then one flush writes them all. A lone frame is
//! flushed at once, so batching never adds latency.
//!
//! However the driver ends — the core terminates, every handle is dropped,
//! it panics, or its runtime shuts down — every frame it was given comes
//! back through the events, and the event stream ends.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::core::{Action, Command, Core, TransportEvent};
use crate::error::{Error, ErrorKind};
use crate::event::{DownReason, Event};
use crate::frame::Frame;
use crate::mailbox::{EventQueue, Progress, Shared};
use crate::options::{AutoUpgrade, Options, ProviderError};
use crate::request::Upgrade;
use crate::rt::{BoxFuture, Timer};
use crate::time::Instant;
use crate::transport::{Socket, Target, Transport, UpgradeFailure, Upgraded};

#[cfg(all(test, native))]
mod tests;

/// Frames read per turn before the driver lets other tasks run.
const READ_BUDGET: usize = 512;
/// Turns of the loop per poll before yielding.
const LOOP_BUDGET: usize = 64;

/// Where the transport is: the I/O handles only (the phase is the core's).
enum Stage<T: Transport> {
    Idle,
    Dialing(BoxFuture<Result<T::Dialed, Error>>),
    Dialed(T::Dialed),
    Upgrading(BoxFuture<Result<Upgraded<T::Socket>, UpgradeFailure>>),
    Open(OpenSocket<T::Socket>),
}

struct OpenSocket<S> {
    socket: S,
    /// Something was handed over (or a pong queued) since the last flush.
    unflushed: bool,
    /// `bytes_written` at the last blocked flush.
    bytes_written: u64,
}

pub(crate) struct Driver<T: Transport> {
    core: Core,
    shared: Arc<Shared>,
    events: Arc<EventQueue>,
    target: Target,
    options: Options,
    stage: Stage<T>,
    /// The upgrade provider's future ([`Action::Provide`]), run here so the
    /// core never waits; dropped with the transport.
    providing: Option<BoxFuture<Result<Upgrade, ProviderError>>>,
    timer: Timer,
    commands: VecDeque<Command>,
    /// What was last reported, so unchanged progress costs no lock.
    last_progress: Progress,
    reading_paused: bool,
    /// The core asked for a trim ([`Core::take_trim`]): the queues are
    /// freed when the driver next waits (an idle connection holds none).
    trim_when_idle: bool,
    abandoned: bool,
    /// The driver ended normally: its `Drop` has nothing to hand back.
    finished: bool,
    /// The span of the connection's current attempt (`wstether` with
    /// `conn`, `host`, `port` and `attempt`), entered on every poll:
    /// whatever the core traces is in it. A new one for every dial (a
    /// field recorded again would be shown twice by some subscribers).
    span: tracing::Span,
}

impl<T: Transport> Driver<T> {
    pub(crate) fn new(
        core: Core,
        shared: Arc<Shared>,
        events: Arc<EventQueue>,
        target: Target,
        options: Options,
        span: tracing::Span,
    ) -> Driver<T> {
        Driver {
            core,
            shared,
            events,
            target,
            options,
            stage: Stage::Idle,
            providing: None,
            timer: Timer::new(),
            commands: VecDeque::new(),
            last_progress: Progress::default(),
            reading_paused: false,
            trim_when_idle: false,
            abandoned: false,
            finished: false,
            span,
        }
    }

    /// The span of one connect attempt: `wstether` with `conn` (the `3` of
    /// a `StreamRef` `#3.2`), `host`, `port` and `attempt`. The host only:
    /// the URL's userinfo and query never get into it.
    pub(crate) fn span(connection: u64, target: &Target, attempt: u32) -> tracing::Span {
        tracing::info_span!(
            parent: None,
            "wstether",
            conn = connection,
            host = %target.host,
            port = target.port,
            attempt,
        )
    }

    /// One turn: returns whether another one may find more to do. What
    /// the commands, a timeout and the actions asked for is done within
    /// the turn (the socket is written and read after them), so they need
    /// no other turn by themselves; whatever is left waits on a waker (the
    /// socket's, the handles', the timer's) or is an action not yet
    /// carried out.
    fn turn(&mut self, cx: &mut Context<'_>) -> bool {
        let now = Instant::now();

        for command in self.commands.drain(..) {
            self.core.handle_command(command, now);
        }
        if self.abandoned {
            self.core.handle_command(Command::Abandon, now);
        }
        self.core.handle_timeout(now);
        while let Some(action) = self.core.poll_action() {
            self.execute(action, now);
        }
        let progressed = self.poll_stage(cx, now);
        progressed || self.core.has_actions()
    }

    fn execute(&mut self, action: Action, now: Instant) {
        match action {
            Action::Dial => {
                let attempt = self.core.attempt();
                if attempt > 1 {
                    let connection = self.shared.stream_ids.connection();
                    self.span = Self::span(connection, &self.target, attempt);
                }
                let _entered = self.span.enter();
                tracing::debug!("wstether: connecting");
                self.stage = Stage::Dialing(T::dial(&self.target, &self.options));
            }
            Action::Upgrade(request) => match std::mem::replace(&mut self.stage, Stage::Idle) {
                Stage::Dialed(dialed) => {
                    let future = T::upgrade(dialed, &self.target, request, &self.options);
                    self.stage = Stage::Upgrading(future);
                }
                other => {
                    // The core only upgrades a dialed link; anything else is a bug
                    // worth a loud message, not a panic.
                    tracing::error!("wstether: upgrade requested without a dialed connection");
                    self.stage = other;
                }
            },
            Action::Provide => {
                if let AutoUpgrade::Provider(provider) = &self.options.auto_upgrade {
                    self.providing = Some(provider());
                }
            }
            Action::Disconnect => {
                self.providing = None;
                let written = self.drop_socket();
                self.core
                    .handle_transport(TransportEvent::Lost { written }, now);
            }
            Action::FailClose { code } => {
                if let Stage::Open(open) = &mut self.stage {
                    open.socket.start_fail_close(code);
                    open.unflushed = true;
                }
            }
        }
    }

    fn poll_stage(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        if let Some(future) = &mut self.providing {
            if let Poll::Ready(provided) = future.as_mut().poll(cx) {
                self.providing = None;
                self.core
                    .handle_transport(TransportEvent::Provided(provided), Instant::now());
                return true;
            }
        }
        // A dial or upgrade that ends is reported at the time it ended, not
        // the turn's start (the turn may have started it: its duration
        // would read zero); this is the turn's last step, so time still
        // never goes back for the core.
        match &mut self.stage {
            Stage::Idle | Stage::Dialed(_) => false,
            Stage::Dialing(future) => match future.as_mut().poll(cx) {
                Poll::Pending => false,
                Poll::Ready(Ok(dialed)) => {
                    let tls_handshake = T::tls_handshake(&dialed);
                    self.stage = Stage::Dialed(dialed);
                    self.core
                        .handle_transport(TransportEvent::Dialed { tls_handshake }, Instant::now());
                    true
                }
                Poll::Ready(Err(error)) => {
                    self.stage = Stage::Idle;
                    self.core
                        .handle_transport(TransportEvent::DialFailed(error), Instant::now());
                    true
                }
            },
            Stage::Upgrading(future) => match future.as_mut().poll(cx) {
                Poll::Pending => false,
                Poll::Ready(Ok(upgraded)) => {
                    self.stage = Stage::Open(OpenSocket {
                        socket: upgraded.socket,
                        unflushed: false,
                        bytes_written: 0,
                    });
                    self.reading_paused = false;
                    self.core.handle_transport(
                        TransportEvent::Upgraded {
                            protocol: upgraded.protocol,
                            headers: upgraded.headers,
                            version: upgraded.version,
                        },
                        Instant::now(),
                    );
                    true
                }
                Poll::Ready(Err(failure)) => {
                    self.stage = Stage::Idle;
                    self.core.handle_transport(
                        TransportEvent::UpgradeFailed {
                            status: failure.status,
                            headers: failure.headers,
                            error: failure.error,
                            unix_now: unix_now(),
                        },
                        Instant::now(),
                    );
                    true
                }
            },
            Stage::Open(_) => self.poll_socket(cx, now),
        }
    }

    fn poll_socket(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        let Stage::Open(open) = &mut self.stage else {
            return false;
        };
        let mut progressed = false;
        let mut failure: Option<Option<Error>> = None;

        // Write: hand over everything queued, then flush once.
        while self.core.wants_transmit() {
            match open.socket.poll_ready(cx) {
                Poll::Ready(Ok(())) => {
                    let Some(out) = self.core.poll_transmit(now) else {
                        break;
                    };
                    open.unflushed = true;
                    if let Err(error) = open.socket.start_send(out) {
                        failure = Some(Some(error));
                        break;
                    }
                }
                Poll::Ready(Err(error)) => {
                    failure = Some(Some(error));
                    break;
                }
                Poll::Pending => break,
            }
        }
        if failure.is_none() && open.unflushed {
            match open.socket.poll_flush(cx) {
                Poll::Ready(Ok(())) => {
                    open.unflushed = false;
                    let written = open.socket.written_through();
                    self.core
                        .handle_transport(TransportEvent::Flushed(written), now);
                    // Another turn only if there is more to do: the core
                    // acts on it (a fail-close flushed: disconnect), or
                    // frames wait that the full buffer held back. What
                    // the flush freed is reported after this turn anyway.
                    progressed |= self.core.has_actions() || self.core.wants_transmit();
                }
                Poll::Ready(Err(error)) => failure = Some(Some(error)),
                Poll::Pending => {
                    let bytes = open.socket.bytes_written();
                    let moved = bytes != open.bytes_written;
                    open.bytes_written = bytes;
                    let written = open.socket.written_through();
                    self.core.handle_transport(
                        TransportEvent::WriteBlocked {
                            written,
                            progressed: moved,
                        },
                        now,
                    );
                }
            }
        }

        // Read, while the application keeps up with the events.
        if failure.is_none() && self.core.is_reading() {
            let room = self.events.room(cx);
            // Gun's `flow`: a spent credit pauses reading as a full event
            // queue does (an `update_flow` command wakes the driver).
            let credit = self.core.read_credit();
            let paused = room.is_empty() || credit == 0;
            if paused != self.reading_paused {
                self.reading_paused = paused;
                self.core
                    .handle_transport(TransportEvent::ReadingPaused(paused), now);
            }
            let mut bytes_left = room.bytes;
            let reads = if paused {
                0
            } else {
                room.events.min(READ_BUDGET).min(credit)
            };
            let mut read = false;
            let mut drained = false;
            for _ in 0..reads {
                match open.socket.poll_recv(cx) {
                    Poll::Ready(Some(Ok(frame))) => {
                        // tungstenite queued a pong: it must be flushed.
                        open.unflushed |= matches!(frame, Frame::Ping(_));
                        bytes_left = bytes_left.saturating_sub(frame.len());
                        self.core
                            .handle_transport(TransportEvent::Frame(frame), now);
                        read = true;
                        if bytes_left == 0 {
                            break;
                        }
                    }
                    Poll::Ready(Some(Err(error))) => {
                        failure = Some(Some(error));
                        break;
                    }
                    Poll::Ready(None) => {
                        failure = Some(None);
                        break;
                    }
                    Poll::Pending => {
                        drained = true;
                        break;
                    }
                }
            }
            // Frames read make another turn only if there may be more to
            // do: the socket was not read to the end (the budget or the
            // room ran out), a pong waits for its flush, or the core acts
            // on what it read. A socket read to `Pending` wakes the
            // driver when there is more, and the events are reported
            // after this turn anyway.
            progressed |= read
                && (!drained
                    || open.unflushed
                    || self.core.has_actions()
                    || self.core.wants_transmit());
        }

        if let Some(error) = failure {
            let written = open.socket.written_through();
            self.core
                .handle_transport(TransportEvent::SocketFailed { written, error }, now);
            progressed = true;
        }
        progressed
    }

    /// Drops the transport; returns what it wrote last, for the core.
    fn drop_socket(&mut self) -> Option<crate::core::Seq> {
        match std::mem::replace(&mut self.stage, Stage::Idle) {
            Stage::Open(mut open) => open.socket.written_through(),
            _ => None,
        }
    }

    /// Tells the handles what changed (room in the queue, killed streams,
    /// the RTT, counters) and hands the events over. Each lock is taken
    /// only when there is something to say: this runs after every turn.
    fn report(&mut self) {
        let progress = self.core.take_progress();
        if progress != self.last_progress {
            self.shared.update(progress);
            self.last_progress = Progress {
                released_bytes: 0,
                released_frames: 0,
                written: Default::default(),
                received: Default::default(),
                ..progress
            };
        }
        let events = self.core.events_mut();
        if !events.is_empty() {
            self.events.append(events);
        }
        if self.core.take_trim() {
            self.events.trim();
            self.trim_when_idle = true;
        }
    }

    /// The driver is about to wait: if a trim was asked for, the capacity
    /// of every empty queue it shares or keeps is freed (the event queue's
    /// was, or is by its reader once it catches up: `EventQueue::trim`).
    fn trim_if_asked(&mut self) {
        if std::mem::take(&mut self.trim_when_idle) {
            self.core.free_idle_queues();
            if let Stage::Open(open) = &mut self.stage {
                open.socket.trim();
            }
            if self.commands.is_empty() {
                self.commands = VecDeque::new();
            }
            self.shared.trim();
        }
    }

    /// The core has terminated: commands that arrived meanwhile are refused
    /// through it (their frames come back in `Event::Error`), then the
    /// event stream ends.
    fn finish(&mut self) {
        let now = Instant::now();
        for command in self.shared.terminate() {
            self.core.handle_command(command, now);
        }
        self.report();
        self.events.close();
        self.finished = true;
    }
}

impl<T: Transport> Drop for Driver<T> {
    /// The driver ends without finishing: it panicked, or its runtime shut
    /// down. No code of the core runs here (it may be what panicked): the
    /// frames are drained plainly and come back in a last `Down`.
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let span = self.span.clone();
        let _entered = span.enter();
        // Frames written since the last report are counted, or they would
        // be neither written nor returned.
        let progress = self.core.take_progress();
        self.shared.update(Progress {
            written: progress.written,
            received: progress.received,
            ..self.last_progress
        });
        let mut unsent = self.core.salvage();
        let late = self.shared.terminate();
        for command in self.commands.drain(..).chain(late) {
            if let Command::Send { frames, .. } | Command::SendCurrent { frames } = command {
                unsent.extend(frames);
            }
        }
        let error = Error::new(
            ErrorKind::Closed,
            "the connection's task stopped: it panicked or its runtime shut down",
        );
        self.events.push_all(std::iter::once(Event::Down {
            reason: DownReason::Error(error),
            killed_streams: Vec::new(),
            unsent,
            will_reconnect: false,
        }));
        self.events.close();
    }
}

impl<T: Transport> Future for Driver<T>
where
    T::Socket: Unpin,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // The driver holds only boxed futures and owned sockets: it is Unpin.
        let this = self.get_mut();
        for _ in 0..LOOP_BUDGET {
            // Per turn: a dial makes a new span for its attempt.
            let span = this.span.clone();
            let _entered = span.enter();
            let mut commands = std::mem::take(&mut this.commands);
            // Every handle gone: close at once, as Gun's `close/1`; the
            // commands already queued are still taken, so nothing is lost.
            this.abandoned |= this.shared.take_commands(&mut commands, cx);
            this.commands = commands;
            let progressed = this.turn(cx);
            this.report();
            if this.core.is_terminated() {
                this.finish();
                return Poll::Ready(());
            }
            if !progressed {
                match this.timer.poll_at(this.core.poll_timeout(), cx) {
                    Poll::Ready(()) => continue,
                    Poll::Pending => {
                        this.trim_if_asked();
                        return Poll::Pending;
                    }
                }
            }
        }
        // Plenty done: let other tasks run, then carry on.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// The wall clock, since the Unix epoch (for a `Retry-After` date); zero
/// if the clock is before 1970.
fn unix_now() -> std::time::Duration {
    cfg_if::cfg_if! {
        if #[cfg(browser)] {
            web_time::SystemTime::now()
                .duration_since(web_time::UNIX_EPOCH)
                .unwrap_or_default()
        } else {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
        }
    }
}
