//! What a [`Socket`](crate::Socket) tells its owner: its state and its
//! events, made from the connection's [`Event`]s.

use std::collections::VecDeque;
use std::time::Duration;

use crate::error::{Error, ErrorKind};
pub use crate::event::SocketState;
use crate::event::{DownReason, Event};
use crate::frame::{CloseCode, CloseFrame, Frame};

/// Everything a [`Socket`](crate::Socket) has to say, from
/// [`Socket::recv_event`](crate::Socket::recv_event). The same on both
/// targets.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SocketEvent {
    /// A Websocket is open (the first one, or again after a reconnect).
    Open {
        /// The subprotocol the server chose, if any.
        protocol: Option<String>,
    },
    /// A frame from the server (never a close frame: that ends in
    /// [`SocketEvent::Down`] or [`SocketEvent::Closed`]).
    Frame(Frame),
    /// A new connection attempt is scheduled.
    Reconnecting {
        /// The attempt's number, counted since the socket was opened.
        attempt: u32,
        /// How long until it is made.
        delay: Duration,
    },
    /// The Websocket was lost. `unsent` holds the frames that had been
    /// handed to it and were not confirmed written (they may or may not
    /// have reached the server; they are never resent). Frames still
    /// queued stay held for the next Websocket unless
    /// [`Options::hold_while_down`](crate::Options::hold_while_down) is off.
    Down {
        /// Why.
        reason: DownReason,
        /// The frames given back, in the order they were sent.
        unsent: Vec<Frame>,
        /// Whether a new Websocket is on its way (otherwise
        /// [`SocketEvent::Closed`] follows).
        will_reconnect: bool,
    },
    /// Something went wrong that does not close the socket by itself (a
    /// failed reconnect attempt, a refused upgrade). Frames it concerns
    /// are in [`Error::unsent`].
    Error(Error),
    /// Closed for good; the last event.
    Closed {
        /// The close code the server sent, if it sent one.
        code: Option<CloseCode>,
        /// The server's close reason, or why the socket ended.
        reason: String,
        /// Whether the close handshake completed (a close frame came from
        /// the server).
        clean: bool,
    },
}

/// Turns the connection's events into the socket's.
#[derive(Debug, Default)]
pub(crate) struct Translator {
    pending: VecDeque<SocketEvent>,
    /// The subprotocol of the last Websocket opened.
    pub(crate) protocol: Option<String>,
    /// The HTTP version of the last Websocket opened.
    pub(crate) http_version: Option<http::Version>,
    /// The server's close frame on the current Websocket.
    peer_close: Option<CloseFrame>,
    /// How the socket ended, once the final `Down` or error is seen.
    end: Option<(Option<CloseCode>, String, bool)>,
    /// The last error seen, the reason of an end without a final `Down`.
    last_error: Option<String>,
    /// `Closed` was handed out (with its code and reason): nothing follows.
    pub(crate) closed: Option<(Option<CloseCode>, String)>,
}

impl Translator {
    /// For a socket whose first Websocket chose `protocol`.
    pub(crate) fn new(protocol: Option<String>, http_version: Option<http::Version>) -> Translator {
        Translator {
            protocol,
            http_version,
            ..Translator::default()
        }
    }

    /// The next translated event, if one waits.
    pub(crate) fn pop(&mut self) -> Option<SocketEvent> {
        let event = self.pending.pop_front();
        if let Some(SocketEvent::Closed { code, reason, .. }) = &event {
            self.closed = Some((*code, reason.clone()));
        }
        event
    }

    /// The error of every `recv` once `Closed` was handed out.
    pub(crate) fn closed_error(&self) -> Option<Error> {
        let (code, reason) = self.closed.as_ref()?;
        Some(closed_error(*code, reason))
    }

    pub(crate) fn push(&mut self, event: Event) {
        let http_version = event.http_version();
        let translated = match event {
            Event::Up { .. } => None,
            Event::Upgraded { protocol, .. } => {
                self.http_version = http_version;
                self.protocol.clone_from(&protocol);
                self.peer_close = None;
                Some(SocketEvent::Open { protocol })
            }
            Event::UpgradeFailed { error, .. } | Event::Error { error, .. } => {
                // The reason shown if it is the last word (retries spent).
                self.last_error = Some(error.to_string());
                Some(SocketEvent::Error(error))
            }
            Event::Frame {
                frame: Frame::Close(close),
                ..
            } => {
                self.peer_close = Some(close.unwrap_or(CloseFrame {
                    code: CloseCode::NO_STATUS,
                    reason: String::new(),
                }));
                None
            }
            Event::Frame { frame, .. } => Some(SocketEvent::Frame(frame)),
            Event::Reconnecting { attempt, delay } => {
                Some(SocketEvent::Reconnecting { attempt, delay })
            }
            Event::Down {
                reason,
                unsent,
                will_reconnect,
                ..
            } => {
                if !will_reconnect {
                    self.end = Some(self.ending(&reason));
                }
                self.peer_close = None;
                Some(SocketEvent::Down {
                    reason,
                    unsent,
                    will_reconnect,
                })
            }
        };
        self.pending.extend(translated);
    }

    /// The events ended: the last one is `Closed`.
    pub(crate) fn push_end(&mut self) {
        let (code, reason, clean) = self.end.take().unwrap_or_else(|| {
            let reason = self.last_error.take();
            (
                None,
                reason.unwrap_or_else(|| "the connection ended".to_owned()),
                false,
            )
        });
        self.pending.push_back(SocketEvent::Closed {
            code,
            reason,
            clean,
        });
    }

    fn ending(&self, reason: &DownReason) -> (Option<CloseCode>, String, bool) {
        let peer = match reason {
            DownReason::ClosedByPeer(close) => Some(close),
            _ => self.peer_close.as_ref(),
        };
        match peer {
            Some(close) => (Some(close.code), close.reason.clone(), true),
            None => (None, reason.to_string(), false),
        }
    }
}

/// The error [`Socket::recv`](crate::Socket::recv) gives once closed.
fn closed_error(code: Option<CloseCode>, reason: &str) -> Error {
    let message = match code {
        Some(code) => format!("the socket is closed ({code} {reason:?})"),
        None => format!("the socket is closed ({reason})"),
    };
    Error::new(ErrorKind::Closed, message)
}
