//! The driver: one task per connection that feeds the core with commands,
//! transport results and time, and carries out what the core decides. The
//! same code runs on both targets; only the [`Transport`] differs.
//!
//! Writes are batched: every frame that is queued when the driver runs is
//! handed to the socket, then one flush writes them all. A lone frame is
//! flushed at once, so batching never adds latency.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::core::{Action, Command, Core};
use crate::error::Error;
use crate::mailbox::{EventQueue, Progress, Shared};
use crate::options::Options;
use crate::rt::{BoxFuture, Timer};
use crate::time::Instant;
use crate::transport::{Socket, Target, Transport, UpgradeFailure, Upgraded};

/// Frames read per turn before the driver lets other tasks run.
const READ_BUDGET: usize = 512;
/// Turns of the loop per poll before yielding.
const LOOP_BUDGET: usize = 64;

enum Link<T: Transport> {
    None,
    Dialing(BoxFuture<Result<T::Dialed, Error>>),
    Dialed(T::Dialed),
    Upgrading(BoxFuture<Result<Upgraded<T::Socket>, UpgradeFailure>>),
    Open {
        socket: T::Socket,
        /// Something was handed over since the last flush.
        unflushed: bool,
        /// Application frames among it (probes are not counted).
        unflushed_frames: u64,
    },
}

pub(crate) struct Driver<T: Transport> {
    core: Core,
    shared: Arc<Shared>,
    events: Arc<EventQueue>,
    target: Target,
    options: Options,
    link: Link<T>,
    timer: Timer,
    commands: VecDeque<Command>,
    /// Counts since the last report.
    frames_written: u64,
    frames_received: u64,
    /// What was last reported, so unchanged progress costs no lock.
    last_progress: Progress,
}

impl<T: Transport> Driver<T> {
    pub(crate) fn new(
        core: Core,
        shared: Arc<Shared>,
        events: Arc<EventQueue>,
        target: Target,
        options: Options,
    ) -> Driver<T> {
        Driver {
            core,
            shared,
            events,
            target,
            options,
            link: Link::None,
            timer: Timer::new(),
            commands: VecDeque::new(),
            frames_written: 0,
            frames_received: 0,
            last_progress: Progress::default(),
        }
    }

    /// One turn: returns whether anything happened.
    fn turn(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progressed = false;
        let now = Instant::now();

        for command in self.commands.drain(..) {
            self.core.on_command(command, now);
            progressed = true;
        }
        if self.core.poll_timeout().is_some_and(|at| now >= at) {
            self.core.on_timeout(now);
            progressed = true;
        }
        while let Some(action) = self.core.poll_action() {
            self.execute(action, now);
            progressed = true;
        }
        progressed |= self.poll_link(cx, now);
        progressed
    }

    fn execute(&mut self, action: Action, now: Instant) {
        match action {
            Action::Dial => {
                self.link = Link::Dialing(T::dial(&self.target, &self.options));
            }
            Action::Upgrade(request) => match std::mem::replace(&mut self.link, Link::None) {
                Link::Dialed(dialed) => {
                    let future = T::upgrade(dialed, &self.target, request, &self.options);
                    self.link = Link::Upgrading(future);
                }
                other => {
                    // The core only upgrades a dialed link; anything else is a bug
                    // worth a loud message, not a panic.
                    tracing::error!("wstether: upgrade requested without a dialed connection");
                    self.link = other;
                }
            },
            Action::Disconnect => {
                let unsent = self.drop_socket();
                self.core.on_transport_lost(None, unsent, now);
            }
        }
    }

    fn poll_link(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        match &mut self.link {
            Link::None | Link::Dialed(_) => false,
            Link::Dialing(future) => match future.as_mut().poll(cx) {
                Poll::Pending => false,
                Poll::Ready(Ok(dialed)) => {
                    self.link = Link::Dialed(dialed);
                    self.core.on_dialed(now);
                    true
                }
                Poll::Ready(Err(error)) => {
                    self.link = Link::None;
                    self.core.on_dial_failed(error, now);
                    true
                }
            },
            Link::Upgrading(future) => match future.as_mut().poll(cx) {
                Poll::Pending => false,
                Poll::Ready(Ok(upgraded)) => {
                    self.link = Link::Open {
                        socket: upgraded.socket,
                        unflushed: false,
                        unflushed_frames: 0,
                    };
                    self.core
                        .on_upgraded(upgraded.protocol, upgraded.headers, now);
                    true
                }
                Poll::Ready(Err(failure)) => {
                    self.link = Link::None;
                    self.core.on_upgrade_failed(
                        failure.status,
                        failure.headers,
                        failure.error,
                        now,
                    );
                    true
                }
            },
            Link::Open { .. } => self.poll_socket(cx, now),
        }
    }

    fn poll_socket(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        let Link::Open {
            socket,
            unflushed,
            unflushed_frames,
        } = &mut self.link
        else {
            return false;
        };
        let mut progressed = false;
        let mut failure: Option<Option<Error>> = None;

        // Write: hand over everything queued, then flush once.
        while self.core.has_outgoing() {
            match socket.poll_ready(cx) {
                Poll::Ready(Ok(())) => {
                    let Some(out) = self.core.pop_outgoing(now) else {
                        break;
                    };
                    *unflushed_frames += u64::from(!out.probe);
                    if let Err(error) = socket.start_send(out) {
                        failure = Some(Some(error));
                        break;
                    }
                    *unflushed = true;
                    progressed = true;
                }
                Poll::Ready(Err(error)) => {
                    failure = Some(Some(error));
                    break;
                }
                Poll::Pending => break,
            }
        }
        if failure.is_none() && *unflushed {
            match socket.poll_flush(cx) {
                Poll::Ready(Ok(())) => {
                    *unflushed = false;
                    self.frames_written += std::mem::take(unflushed_frames);
                }
                Poll::Ready(Err(error)) => failure = Some(Some(error)),
                Poll::Pending => {}
            }
        }

        // Read, while the application keeps up with the events.
        if failure.is_none() {
            let room = self.events.room(cx).min(READ_BUDGET);
            for _ in 0..room {
                match socket.poll_recv(cx) {
                    Poll::Ready(Some(Ok(frame))) => {
                        self.frames_received += 1;
                        self.core.on_frame(frame, now);
                        progressed = true;
                    }
                    Poll::Ready(Some(Err(error))) => {
                        failure = Some(Some(error));
                        break;
                    }
                    Poll::Ready(None) => {
                        failure = Some(None);
                        break;
                    }
                    Poll::Pending => break,
                }
            }
        }

        if let Some(error) = failure {
            let unsent = self.drop_socket();
            self.core.on_transport_lost(error, unsent, now);
            progressed = true;
        }
        progressed
    }

    /// Drops the link; returns the frames handed to the socket but not
    /// confirmed written. Every other application frame handed over since
    /// the last flush left in a flush the socket made on its own (for
    /// example with the close frame that reports a protocol error): those
    /// count as written, so each frame is either written or returned.
    fn drop_socket(&mut self) -> Vec<crate::core::Outgoing> {
        match std::mem::replace(&mut self.link, Link::None) {
            Link::Open {
                mut socket,
                unflushed_frames,
                ..
            } => {
                let unsent = socket.take_unsent();
                let returned = unsent.iter().filter(|out| !out.probe).count() as u64;
                self.frames_written += unflushed_frames.saturating_sub(returned);
                unsent
            }
            _ => Vec::new(),
        }
    }

    /// Tells the handles what changed (room in the queue, killed streams,
    /// the RTT, counters) and hands the events over. Each lock is taken
    /// only when there is something to say: this runs after every turn.
    fn report(&mut self) {
        let progress = Progress {
            released_bytes: self.core.take_released_bytes(),
            killed_up_to: self.core.killed_up_to(),
            rtt: self.core.rtt(),
            frames_written: std::mem::take(&mut self.frames_written),
            frames_received: std::mem::take(&mut self.frames_received),
        };
        if progress != self.last_progress {
            self.shared.update(progress);
            self.last_progress = Progress {
                released_bytes: 0,
                frames_written: 0,
                frames_received: 0,
                ..progress
            };
        }
        if self.core.has_events() {
            let core = &mut self.core;
            self.events
                .push_all(std::iter::from_fn(|| core.poll_event()));
        }
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
            let mut commands = std::mem::take(&mut this.commands);
            if !this.shared.take_commands(&mut commands, cx) {
                // Every handle is gone: close brutally, as Gun's `close/1`.
                this.shared.terminate();
                this.events.close();
                return Poll::Ready(());
            }
            this.commands = commands;
            let progressed = this.turn(cx);
            this.report();
            if this.core.is_terminated() {
                this.shared.terminate();
                this.events.close();
                return Poll::Ready(());
            }
            if !progressed {
                match this.timer.poll_at(this.core.poll_timeout(), cx) {
                    Poll::Ready(()) => continue,
                    Poll::Pending => return Poll::Pending,
                }
            }
        }
        // Plenty done: let other tasks run, then carry on.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
