//! The socket layer, the top of the native stack: an open Websocket over
//! tokio-tungstenite, as the driver sees it ([`Socket`]). Text and binary
//! frames are encoded here and written beside tungstenite (its outbox,
//! [`Beside`]) when compression is off; control frames, and every frame
//! with compression, are handed to tungstenite without a copy. Received
//! data frames come from beside tungstenite when compression is off
//! ([`Beside::take_into`]), other small payloads are copied out of
//! tungstenite's buffer into an arena, and tungstenite's errors become
//! typed [`Error`]s.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{Sink, Stream};
use tokio_tungstenite::tungstenite::protocol::{
    frame::coding::CloseCode as WsCloseCode, CloseFrame as WsCloseFrame,
};
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes as WsText};
use tokio_tungstenite::WebSocketStream;

use super::coalesce::{Beside, KEPT};
use super::deflate::DeflateError;
use super::frames::opcode;
use super::h2::ConnectionPing;
use super::outbox;
use super::tls;
use super::WRITE_BUFFER;
use crate::connector::Io;
use crate::core::{Outgoing, Seq, WireFrame};
use crate::error::{Error, ErrorKind};
use crate::frame::{CloseCode, CloseFrame, Frame};
use crate::payload_arena::PayloadArena;
use crate::transport::Socket;
use crate::utf8_bytes::Utf8Bytes;

/// An open native Websocket. It keeps no copy of the frames handed over:
/// it only remembers the sequence number of the last one, which a
/// completed flush confirms written.
pub(crate) struct NativeSocket {
    ws: WebSocketStream<Box<dyn Io>>,
    /// The last frame handed over (encoded, or to tungstenite).
    last_started: Option<Seq>,
    /// The last frame a completed flush wrote.
    flushed_through: Option<Seq>,
    written: Arc<AtomicU64>,
    /// Data frames read and written beside tungstenite (see [`Coalesce`](super::coalesce::Coalesce)); `None`
    /// with compression, whose layer follows the frames.
    beside: Option<Arc<Beside>>,
    /// Data frames read beside tungstenite (or the error of one), not yet
    /// handed on.
    received: VecDeque<Result<Frame, Error>>,
    /// Data frames encoded since they last went to the outbox.
    encoded: Vec<u8>,
    /// Bytes put in the outbox since the last completed flush.
    unflushed: usize,
    /// A Close went out or came in: tungstenite refuses data frames from
    /// then on, so they go to it (and get its error) rather than beside it.
    closed: bool,
    /// Where small received payloads are copied ([`take_payload`]).
    arena: PayloadArena,
    /// Over HTTP/2: the keepalive's probes go as the connection's PINGs.
    connection_ping: Option<ConnectionPing>,
}

impl NativeSocket {
    pub(super) fn new(
        ws: WebSocketStream<Box<dyn Io>>,
        written: Arc<AtomicU64>,
        beside: Option<Arc<Beside>>,
    ) -> NativeSocket {
        NativeSocket {
            ws,
            last_started: None,
            flushed_through: None,
            written,
            received: VecDeque::new(),
            encoded: Vec::new(),
            unflushed: 0,
            closed: false,
            beside: beside.inspect(|beside| beside.outbox.open()),
            arena: PayloadArena::default(),
            connection_ping: None,
        }
    }

    /// Moves the encoded frames to the outbox: before every call into
    /// tungstenite, which may write (a read may answer a ping), so the
    /// frames go out in the order they were handed over.
    fn put_encoded(&mut self) {
        if let Some(beside) = &self.beside {
            self.unflushed += self.encoded.len();
            beside.outbox.put(&mut self.encoded);
        }
    }

    /// Encodes a data frame beside tungstenite; `false`: it goes to
    /// tungstenite (compression, or after a Close).
    fn encode(&mut self, frame: &WireFrame) -> bool {
        if self.beside.is_none() || self.closed {
            return false;
        }
        let (opcode, payload) = match frame {
            WireFrame::Text(bytes) => (opcode::TEXT, bytes),
            WireFrame::Binary(bytes) => (opcode::BINARY, bytes),
            _ => return false,
        };
        outbox::encode(&mut self.encoded, opcode, payload);
        true
    }

    /// Over HTTP/2: the keepalive's probes become PINGs of the connection.
    pub(super) fn with_connection_ping(mut self, ping: Option<ConnectionPing>) -> NativeSocket {
        self.connection_ping = ping;
        self
    }
}

/// Small received payloads are copied out of tungstenite's read buffer
/// into a [`PayloadArena`]: a frame the application holds would otherwise
/// keep tungstenite's buffer shared, and tungstenite reallocates (and
/// copies) a shared buffer at almost every frame. Dropped whenever the
/// socket has nothing to read, so an idle connection holds none.
fn take_payload(arena: &mut PayloadArena, message: Message) -> Message {
    match message {
        Message::Binary(data) if data.len() <= PayloadArena::MAX_COPY => {
            Message::Binary(arena.copy_or_own(&data))
        }
        Message::Text(text) if text.len() <= PayloadArena::MAX_COPY => {
            // SAFETY: a whole copy of text tungstenite checked as UTF-8.
            Message::Text(unsafe {
                WsText::from_bytes_unchecked(arena.copy_or_own(text.as_bytes()))
            })
        }
        other => other,
    }
}

impl Socket for NativeSocket {
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame, Error>>> {
        // Read beside tungstenite, before anything it reads next.
        if let Some(taken) = self.received.pop_front() {
            return Poll::Ready(Some(taken));
        }
        if let Some(ping) = &mut self.connection_ping {
            if let Poll::Ready(payload) = ping.poll_pong(cx) {
                // The PING's answer is the keepalive probe's pong.
                return Poll::Ready(Some(Ok(Frame::Pong(payload))));
            }
        }
        self.put_encoded();
        loop {
            return match Pin::new(&mut self.ws).poll_next(cx) {
                // tungstenite has read every byte before the frames read
                // beside it when it waits: they are next, in order. Nothing
                // to read for now: the arena goes (an idle connection holds
                // none).
                Poll::Pending => {
                    self.arena.end_burst();
                    let Some(beside) = &self.beside else {
                        return Poll::Pending;
                    };
                    if beside.take_into(&mut self.received) {
                        if let Some(taken) = self.received.pop_front() {
                            return Poll::Ready(Some(taken));
                        }
                    }
                    if self.received.capacity() > 0 {
                        // Idle: the queues' memory goes (see `KEPT`).
                        if self.received.capacity() > KEPT {
                            self.received = VecDeque::new();
                        }
                        beside.trim();
                    }
                    Poll::Pending
                }
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Ready(Some(Err(tungstenite::Error::ConnectionClosed))) => Poll::Ready(None),
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(socket_error(e)))),
                Poll::Ready(Some(Ok(message))) => {
                    self.closed |= matches!(message, Message::Close(_));
                    match from_message(take_payload(&mut self.arena, message)) {
                        Some(frame) => Poll::Ready(Some(Ok(frame))),
                        None => continue,
                    }
                }
            };
        }
    }

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        // As tungstenite's own write buffer: past its size, written out
        // before more is taken.
        if self.encoded.len() + self.unflushed >= WRITE_BUFFER {
            std::task::ready!(self.poll_flush(cx))?;
        }
        Pin::new(&mut self.ws).poll_ready(cx).map_err(socket_error)
    }

    fn start_send(&mut self, out: &Outgoing) -> Result<(), Error> {
        self.last_started = Some(out.seq);
        if self.encode(&out.frame) {
            return Ok(());
        }
        self.closed |= matches!(out.frame, WireFrame::Close(_));
        self.put_encoded();
        if let (true, WireFrame::Ping(payload), Some(ping)) =
            (out.internal, &out.frame, &mut self.connection_ping)
        {
            // Written once the frames before it are (the next flush).
            if ping.send(payload) {
                return Ok(());
            }
        }
        Pin::new(&mut self.ws)
            .start_send(to_message(&out.frame))
            .map_err(socket_error)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.put_encoded();
        let flushed = Pin::new(&mut self.ws).poll_flush(cx).map_err(socket_error);
        if let Poll::Ready(Ok(())) = flushed {
            // Every frame handed over is written.
            self.flushed_through = self.last_started;
            self.unflushed = 0;
        }
        flushed
    }

    fn written_through(&mut self) -> Option<Seq> {
        self.flushed_through
    }

    fn bytes_written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    fn trim(&mut self) {
        if self.encoded.is_empty() {
            self.encoded = Vec::new();
        }
        if let Some(beside) = &self.beside {
            beside.outbox.trim();
        }
    }

    fn start_fail_close(&mut self, code: u16) {
        self.closed = true;
        self.put_encoded();
        let close = Message::Close(Some(WsCloseFrame {
            code: WsCloseCode::from(code),
            reason: WsText::from_static(""),
        }));
        // Best effort: the core's deadline bounds how long it may take.
        let _ = Pin::new(&mut self.ws).start_send(close);
    }
}

/// A cheap copy for tungstenite: payloads are shared, not copied.
fn to_message(frame: &WireFrame) -> Message {
    match frame {
        WireFrame::Text(bytes) => {
            // SAFETY: a `WireFrame::Text` is made from a `Utf8Bytes`, so its
            // bytes are valid UTF-8.
            Message::Text(unsafe { WsText::from_bytes_unchecked(bytes.clone()) })
        }
        WireFrame::Binary(data) => Message::Binary(data.clone()),
        WireFrame::Ping(data) => Message::Ping(data.clone()),
        WireFrame::Pong(data) => Message::Pong(data.clone()),
        WireFrame::Close(close) => Message::Close(close.as_ref().map(|close| WsCloseFrame {
            code: WsCloseCode::from(close.code.as_u16()),
            reason: WsText::from(close.reason.clone()),
        })),
    }
}

fn from_message(message: Message) -> Option<Frame> {
    Some(match message {
        Message::Text(text) => {
            let bytes: Bytes = text.into();
            // SAFETY: tungstenite checked the text is UTF-8 (and the arena
            // copies it whole).
            Frame::Text(unsafe { Utf8Bytes::from_bytes_unchecked(bytes) })
        }
        Message::Binary(data) => Frame::Binary(data),
        Message::Ping(data) => Frame::Ping(data),
        Message::Pong(data) => Frame::Pong(data),
        Message::Close(close) => Frame::Close(close.map(|close| CloseFrame {
            code: CloseCode::from_wire(u16::from(close.code)),
            reason: close.reason.as_str().to_owned(),
        })),
        // Raw frames are only produced when writing them ourselves.
        Message::Frame(_) => return None,
    })
}

pub(super) fn socket_error(error: tungstenite::Error) -> Error {
    use tungstenite::error::ProtocolError;
    use tungstenite::Error as E;
    if let E::Protocol(ProtocolError::ResetWithoutClosingHandshake) = error {
        return Error::new(
            ErrorKind::Io,
            "the connection was reset without a close frame (1006)",
        );
    }
    if let E::Io(io) = &error {
        if let Some(reset) = super::h2::reset_in(io) {
            return Error::new(ErrorKind::StreamReset, reset.to_string());
        }
        if let Some(deflate) = DeflateError::find(io) {
            let kind = match deflate {
                DeflateError::Corrupt(_) => ErrorKind::InvalidCompressedData,
                DeflateError::TooBig { .. } | DeflateError::FrameTooBig { .. } => {
                    ErrorKind::MessageTooBig
                }
            };
            return Error::new(kind, deflate.to_string());
        }
    }
    let kind = match &error {
        E::Io(io) if tls::tls_error_in(io).is_some() => ErrorKind::Tls,
        E::Io(_) | E::ConnectionClosed | E::AlreadyClosed => ErrorKind::Io,
        E::Tls(_) => ErrorKind::Tls,
        E::Capacity(_) => ErrorKind::MessageTooBig,
        E::Utf8(_) => ErrorKind::InvalidUtf8,
        E::Protocol(_) | E::AttackAttempt => ErrorKind::Protocol,
        E::WriteBufferFull(_) => ErrorKind::QueueFull,
        _ => ErrorKind::Protocol,
    };
    Error::new(kind, "").with_source(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(len: usize) -> Message {
        Message::Text(WsText::from("é".repeat(len / 2)))
    }

    #[test]
    fn small_text_and_binary_payloads_share_one_arena_and_stay_intact() {
        let mut arena = PayloadArena::default();
        let mut frames = Vec::new();
        for i in 0..8 {
            let message = if i % 2 == 0 {
                text(32)
            } else {
                Message::Binary(Bytes::from(vec![i as u8; 32]))
            };
            frames.push(from_message(take_payload(&mut arena, message)).unwrap());
        }
        // The later payloads lie one after another in one allocation.
        let payload = |frame: &Frame| match frame {
            Frame::Text(text) => text.as_ptr() as usize,
            Frame::Binary(data) => data.as_ptr() as usize,
            other => panic!("{other:?}"),
        };
        assert_eq!(payload(&frames[7]) - payload(&frames[6]), 32);
        assert_eq!(frames[6], Frame::text("é".repeat(16)));
        assert_eq!(frames[7], Frame::binary(vec![7u8; 32]));
    }

    #[test]
    fn a_large_text_is_handed_over_as_tungstenite_read_it() {
        let mut arena = PayloadArena::default();
        let large = WsText::from("x".repeat(PayloadArena::MAX_COPY + 1));
        let pointer = large.as_ptr();
        let Some(Frame::Text(text)) = from_message(take_payload(&mut arena, Message::Text(large)))
        else {
            panic!("text");
        };
        assert_eq!(text.as_ptr(), pointer, "not copied");
        assert_eq!(arena.burst(), 0);
    }
}
