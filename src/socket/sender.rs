//! [`SocketSender`]: the sending side of a [`Socket`](super::Socket),
//! cloneable, so that one task sends while another reads events.

use std::task::{Context, Poll};

use crate::connection::{check_frames, Connection};
use crate::error::{Error, ErrorKind};
use crate::frame::{CloseCode, Frame, Frames};
use crate::mailbox::Waiter;

use super::SocketState;

/// Sends on a [`Socket`](super::Socket) from anywhere: from
/// [`Socket::sender`](super::Socket::sender), cheap to clone, valid across
/// reconnects (it always sends to the current Websocket, holding frames
/// while there is none, as the socket does). The same on both targets.
/// The connection lives while the socket or any of its senders does.
///
/// ```no_run
/// use wstether::{Frame, Options, Socket};
///
/// # async fn run() -> Result<(), wstether::Error> {
/// let mut socket = Socket::open("ws://127.0.0.1:8080/chat", Options::default())?;
/// let sender = socket.sender();
/// // One task reads while another sends.
/// let reader = async move { while socket.recv_event().await.is_some() {} };
/// let writer = async move { sender.send(Frame::text("hello")).await };
/// let ((), sent) = futures::join!(reader, writer);
/// sent?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct SocketSender {
    connection: Connection,
    hold: bool,
}

impl SocketSender {
    pub(super) fn new(connection: Connection, hold: bool) -> SocketSender {
        SocketSender { connection, hold }
    }

    pub(super) fn connection(&self) -> &Connection {
        &self.connection
    }

    /// Sends one frame or several, in order, waiting for room in the send
    /// queue ([`Options::send_queue_bytes`](crate::Options::send_queue_bytes)).
    /// While the socket is down (or not open yet) the frames are held and
    /// written after the next upgrade (or, with
    /// [`Options::hold_while_down`](crate::Options::hold_while_down)`(false)`,
    /// refused with [`ErrorKind::Disconnected`]). Fails at once, the frames
    /// in the error, on an invalid frame, a call larger than the whole
    /// queue ([`ErrorKind::InvalidFrame`]) or a closing or closed socket
    /// ([`ErrorKind::Closed`]). A close frame closes the socket.
    ///
    /// Natively it also waits once, with room to spare, while 32 KiB of frames
    /// it (or another waiting sender) queued have not been taken by the
    /// connection's task yet: on an executor with one thread (tokio's
    /// `current_thread`) a loop of sends would otherwise queue the whole
    /// `send_queue_bytes` before the first write. Frames of 32 KiB or more
    /// do not count; `try_send` does not wait.
    ///
    /// Cancel safety: dropping the future before it completes queues none
    /// of the frames.
    pub async fn send(&self, frames: impl Into<Frames>) -> Result<(), Error> {
        let mut frames = Some(check_frames(frames.into())?);
        let mut yielded = false;
        futures::future::poll_fn(|cx| self.poll_push(&mut frames, &mut yielded, cx)).await
    }

    /// Queues `frames` from `slot` if there is room; `Pending` (with `cx`
    /// registered) while the queue is full, or once (`yielded`) while the
    /// driver has a batch to take.
    pub(super) fn poll_push(
        &self,
        slot: &mut Option<Frames>,
        yielded: &mut bool,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), Error>> {
        let Some(frames) = slot.take() else {
            return Poll::Ready(Ok(()));
        };
        let shared = self.connection.shared();
        let wait = Waiter { cx, yielded };
        match shared.try_push_current(frames, self.hold, Some(wait)) {
            Ok(Ok(())) => Poll::Ready(Ok(())),
            Ok(Err(back)) => {
                *slot = Some(back);
                Poll::Pending
            }
            Err(error) => Poll::Ready(Err(error)),
        }
    }

    /// Sends without waiting: the frames are queued (or held) at once, or
    /// refused at once with every frame in the error:
    /// [`ErrorKind::QueueFull`] when the send queue has no room, and
    /// otherwise as [`SocketSender::send`].
    pub fn try_send(&self, frames: impl Into<Frames>) -> Result<(), Error> {
        let frames = check_frames(frames.into())?;
        match self
            .connection
            .shared()
            .try_push_current(frames, self.hold, None)?
        {
            Ok(()) => Ok(()),
            Err(frames) => Err(Error::new(
                ErrorKind::QueueFull,
                "the send queue is full (see Options::send_queue_bytes)",
            )
            .with_unsent(frames.into_vec())),
        }
    }

    /// Closes gracefully with `code` and `reason`: what is queued (held
    /// frames included) is written first, then the close frame; resolves
    /// once the server answered it or
    /// [`Options::closing_timeout`](crate::Options::closing_timeout)
    /// passed (read the socket's events meanwhile: see
    /// [`Socket::close`](super::Socket::close)). The socket does not
    /// reconnect after it. Already closing or closed: waits for the end,
    /// `Ok`.
    ///
    /// Fails at once on a code that may not be sent
    /// ([`ErrorKind::InvalidCloseCode`]; in a browser only 1000 and
    /// 3000–4999 may be) or a reason over 123 bytes
    /// ([`ErrorKind::InvalidFrame`]).
    pub async fn close(&self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.start_close(code, reason)?;
        futures::future::poll_fn(|cx| self.poll_closed(cx)).await;
        Ok(())
    }

    /// Queues the close frame (the first part of `close`, which a caller
    /// that does not wait, like the JS facade, uses alone).
    pub(crate) fn start_close(&self, code: CloseCode, reason: &str) -> Result<(), Error> {
        let frame = check_frames(Frame::close(code.as_u16(), reason)?.into())?;
        self.connection.shared().push_close_current(frame);
        Ok(())
    }

    /// Ready once the socket is closed for good.
    pub(super) fn poll_closed(&self, cx: &mut Context<'_>) -> Poll<()> {
        let shared = self.connection.shared();
        loop {
            let (state, seen) = shared.state_and_changes();
            if state == SocketState::Closed {
                return Poll::Ready(());
            }
            if shared.poll_state_change(seen, cx).is_pending() {
                return Poll::Pending;
            }
        }
    }

    /// Where the socket is now.
    pub fn state(&self) -> SocketState {
        self.connection.shared().state_and_changes().0
    }

    /// Payload bytes accepted and not yet handed to the transport, frames
    /// held while down included (a browser's `bufferedAmount`).
    pub fn buffered_amount(&self) -> usize {
        self.connection.shared().queued_bytes()
    }
}
