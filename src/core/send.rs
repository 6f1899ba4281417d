//! The application's requests: frames for a stream or for the current
//! Websocket, a shutdown, every handle gone.

use super::*;

impl Core {
    pub(super) fn on_send(&mut self, stream: StreamRef, frames: Frames, now: Instant) {
        let accepting = !self.close_queued
            && match &self.phase {
                Phase::Upgrading {
                    stream: current, ..
                }
                | Phase::Open { stream: current } => *current == stream,
                // After the peer's close: queued, never written, and given
                // back in the `Down` (as before the close moved the phase).
                Phase::Closing {
                    stream: current, ..
                } if self.close_received.is_some() => *current == stream,
                Phase::Dialing { .. } | Phase::Backoff { .. } => self
                    .pending_upgrade
                    .as_ref()
                    .is_some_and(|(s, _)| *s == stream),
                Phase::Connected
                | Phase::Closing { .. }
                | Phase::Failing { .. }
                | Phase::Terminated => false,
            };
        if !accepting {
            let error = if matches!(self.phase, Phase::Terminated) || self.close_queued {
                Error::new(ErrorKind::Closed, "the connection is closing or closed")
            } else {
                Error::new(
                    ErrorKind::StaleStream,
                    format!("{stream} is not the connection's current Websocket"),
                )
            };
            return self.refuse_send(Some(stream), error, frames);
        }
        if self.queue_frames(frames, false) {
            // The close frame is accepted: from now on the connection never
            // reconnects, whether the close frame gets out or not.
            self.close_queued = true;
            if let Phase::Backoff { .. } = self.phase {
                // Nothing would carry the frames: end now, giving them back.
                self.terminate_unconnected(Error::new(ErrorKind::Closed, "closed"), now);
            }
        }
    }

    /// Frames for whatever Websocket is current: queued while one is open
    /// or upgrading; while down, held for the next one (or refused, without
    /// `hold_while_down`); refused once closing or closed.
    pub(super) fn on_send_current(&mut self, frames: Frames, now: Instant) {
        let refusal = if self.close_queued || matches!(self.phase, Phase::Terminated) {
            Some(Error::new(
                ErrorKind::Closed,
                "the connection is closing or closed",
            ))
        } else if !self.hold_while_down
            && !matches!(self.phase, Phase::Open { .. } | Phase::Upgrading { .. })
            // A close is never refused for want of a Websocket: it ends the
            // connection instead (below).
            && !frames.iter().any(|f| matches!(f, Frame::Close(_)))
        {
            Some(Error::new(ErrorKind::Disconnected, NOT_OPEN_NOT_HELD))
        } else {
            None
        };
        if let Some(error) = refusal {
            return self.refuse_send(None, error, frames);
        }
        if self.queue_frames(frames, true) {
            self.close_queued = true;
            if !matches!(self.phase, Phase::Open { .. } | Phase::Upgrading { .. }) {
                // No Websocket to carry the close frame: end now, giving
                // back what is held.
                if matches!(self.phase, Phase::Dialing { .. }) {
                    self.actions.push_back(Action::Disconnect);
                }
                if matches!(self.phase, Phase::Dialing { .. } | Phase::Backoff { .. }) {
                    self.terminate_unconnected(Error::new(ErrorKind::Closed, "closed"), now);
                } else if self.pending_loss.is_none() {
                    self.disconnect(Loss::Down(DownReason::Shutdown));
                }
            }
        }
    }

    /// Gives refused frames back in an `Event::Error`; their room is free.
    pub(super) fn refuse_send(&mut self, stream: Option<StreamRef>, error: Error, frames: Frames) {
        let frames = frames.into_vec();
        self.delivery.release_refused(&frames);
        self.events.push_back(Event::Error {
            stream,
            error: error.with_unsent(frames),
        });
    }

    /// Queues application frames (`held`: for the current Websocket);
    /// returns whether one of them is a close frame.
    pub(super) fn queue_frames(&mut self, frames: Frames, held: bool) -> bool {
        let mut closes = false;
        frames.for_each(|frame| {
            closes |= matches!(frame, Frame::Close(_));
            if held {
                self.delivery.queue_held(frame);
            } else {
                self.delivery.queue(frame);
            }
        });
        closes
    }

    pub(super) fn on_shutdown(&mut self, now: Instant) {
        if self.close_queued {
            return;
        }
        self.close_queued = true;
        match &self.phase {
            Phase::Open { .. } => {
                // Graceful: what is queued goes out first, then the close frame.
                self.delivery.queue_internal(Frame::close_normal());
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
            // The peer closed and was answered: nothing is left to wait
            // for but its TCP end, which `shutdown` does not wait for.
            Phase::Closing { .. }
                if self.close_received.is_some() && self.pending_loss.is_none() =>
            {
                self.disconnect(Loss::Down(DownReason::Shutdown));
            }
            Phase::Closing { .. } | Phase::Failing { .. } | Phase::Terminated => {}
        }
    }

    /// Every handle is gone (Gun's `close/1`): the connection ends now,
    /// without a close handshake. Frames not yet written come back in the
    /// final `Down` (or in the error of a waiting upgrade), for whoever
    /// still reads the events.
    pub(super) fn on_abandoned(&mut self, now: Instant) {
        self.close_queued = true;
        match &self.phase {
            Phase::Terminated => {}
            Phase::Dialing { .. } | Phase::Backoff { .. } => {
                if matches!(self.phase, Phase::Dialing { .. }) {
                    self.actions.push_back(Action::Disconnect);
                }
                let error = Error::new(ErrorKind::Closed, "every Connection handle was dropped");
                self.terminate_unconnected(error, now);
            }
            _ if self.pending_loss.is_some() => {}
            _ => self.disconnect(Loss::Down(DownReason::Shutdown)),
        }
    }
}
