//! [`Socket`] as a [`Stream`] of frames and a [`Sink`] of frames, so that
//! `futures::StreamExt::split` gives a reading half and a writing half.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::{Sink, Stream};

use super::Socket;
use crate::connection::check_frames;
use crate::error::{Error, ErrorKind};
use crate::frame::Frame;

/// The frames of [`Socket::recv`]: `Ok` for each frame, `Err` for frames
/// given back (not the end); it ends once the socket is closed.
impl Stream for Socket {
    type Item = Result<Frame, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.translator.closed.is_some() {
            return Poll::Ready(None);
        }
        match self.poll_recv(cx) {
            Poll::Ready(Err(error))
                if error.kind() == ErrorKind::Closed && self.translator.closed.is_some() =>
            {
                Poll::Ready(None)
            }
            Poll::Ready(item) => Poll::Ready(Some(item)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Sends as [`Socket::send`] does: `poll_ready` waits for room, a refused
/// frame comes back in the error. `poll_flush` means "queued" (the socket
/// writes on its own); `poll_close` closes with 1000 and waits for the
/// close handshake, as [`Socket::close`] (read the stream meanwhile: see
/// there).
impl Sink<Frame> for Socket {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        this.poll_push_slot(cx)
    }

    fn start_send(self: Pin<&mut Self>, frame: Frame) -> Result<(), Error> {
        let this = self.get_mut();
        let frames = check_frames(frame.into())?;
        if let Some(waiting) = this.sink_slot.take() {
            // `poll_ready` was not awaited: refuse the new frame rather
            // than drop either.
            this.sink_slot = Some(waiting);
            return Err(Error::new(
                ErrorKind::QueueFull,
                "start_send before poll_ready was Ready",
            )
            .with_unsent(frames.into_vec()));
        }
        this.sink_slot = Some(frames);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        this.poll_push_slot(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        match this.poll_push_slot(cx) {
            Poll::Ready(Ok(())) => {}
            // Closing or closed already: go on to wait for the end.
            Poll::Ready(Err(error)) if error.kind() == ErrorKind::Closed => {}
            other => return other,
        }
        if !this.sink_close_sent {
            this.sink_close_sent = true;
            let close = check_frames(Frame::close_normal().into())?;
            this.sender.connection().shared().push_close_current(close);
        }
        this.sender.poll_closed(cx).map(Ok)
    }
}

impl Socket {
    fn poll_push_slot(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut slot = self.sink_slot.take();
        let poll = self.sender.poll_push(&mut slot, &mut self.sink_yielded, cx);
        self.sink_slot = slot;
        poll
    }
}
