//! Where every outgoing frame is: queued in the core, handed to the
//! transport (in flight), written, or given back unsent. Each frame gets a
//! sequence number when it is handed to the transport (an urgent probe
//! may overtake frames queued before it, so the numbers follow the wire's
//! order, not the queue's); the driver only reports "written through N"
//! and "the transport is gone", and this ledger decides the rest, so that
//! a frame is written or returned exactly once.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::frame::{CloseFrame, Frame};
use crate::utf8_bytes::Utf8Bytes;

/// The sequence number of an outgoing frame, in the order frames are
/// handed to the transport.
pub(crate) type Seq = u64;

/// A frame as the core holds it: the text is kept as shared bytes, so the
/// copy handed to the transport costs a reference count, not a copy of
/// the payload.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum WireFrame {
    /// Valid UTF-8 (it came from a [`Utf8Bytes`]).
    Text(Bytes),
    Binary(Bytes),
    Ping(Bytes),
    Pong(Bytes),
    Close(Option<CloseFrame>),
}

impl WireFrame {
    /// The payload length in bytes, as [`Frame::len`] counts it.
    pub(crate) fn len(&self) -> usize {
        match self {
            WireFrame::Text(data)
            | WireFrame::Binary(data)
            | WireFrame::Ping(data)
            | WireFrame::Pong(data) => data.len(),
            WireFrame::Close(None) => 0,
            WireFrame::Close(Some(close)) => 2 + close.reason.len(),
        }
    }

    pub(crate) fn opcode(&self) -> crate::observer::Opcode {
        use crate::observer::Opcode;
        match self {
            WireFrame::Text(_) => Opcode::Text,
            WireFrame::Binary(_) => Opcode::Binary,
            WireFrame::Ping(_) => Opcode::Ping,
            WireFrame::Pong(_) => Opcode::Pong,
            WireFrame::Close(_) => Opcode::Close,
        }
    }

    pub(crate) fn is_close(&self) -> bool {
        matches!(self, WireFrame::Close(_))
    }

    /// Back to the application's type (for frames returned unsent).
    pub(crate) fn into_frame(self) -> Frame {
        match self {
            // SAFETY: a `WireFrame::Text` is made from a `Utf8Bytes`.
            WireFrame::Text(data) => Frame::Text(unsafe { Utf8Bytes::from_bytes_unchecked(data) }),
            WireFrame::Binary(data) => Frame::Binary(data),
            WireFrame::Ping(data) => Frame::Ping(data),
            WireFrame::Pong(data) => Frame::Pong(data),
            WireFrame::Close(close) => Frame::Close(close),
        }
    }
}

impl From<Frame> for WireFrame {
    fn from(frame: Frame) -> WireFrame {
        match frame {
            Frame::Text(text) => WireFrame::Text(Bytes::from(text)),
            Frame::Binary(data) => WireFrame::Binary(data),
            Frame::Ping(data) => WireFrame::Ping(data),
            Frame::Pong(data) => WireFrame::Pong(data),
            Frame::Close(close) => WireFrame::Close(close),
        }
    }
}

/// A frame on its way to the transport. `internal` frames are the core's
/// own (keepalive probes, the close frame of a shutdown): they are neither
/// counted as written nor ever returned to the application.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Outgoing {
    pub(crate) seq: Seq,
    pub(crate) frame: WireFrame,
    pub(crate) internal: bool,
}

/// Application frames confirmed written: all of them, the messages (text
/// and binary) among them, and the messages' payload bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Written {
    pub(crate) frames: u64,
    pub(crate) messages: u64,
    pub(crate) bytes: u64,
}

/// A frame waiting for the transport (numbered when handed over, so that
/// numbers follow the order on the wire even when a probe jumps the queue).
#[derive(Debug)]
struct Queued {
    frame: WireFrame,
    internal: bool,
}

/// The `seq` of a waiting frame addressed to "the current Websocket" (a
/// [`Socket`](crate::Socket)'s): such a frame is held across a reconnect
/// instead of coming back in the `Down`. A waiting frame's `seq` means
/// nothing else until it is handed over and numbered, so it carries the mark.
const HELD: Seq = Seq::MAX;

/// The ledger of outgoing frames.
///
/// The frames in flight and those queued behind them share one deque: the
/// first `handed` are in flight (numbered, in order), the rest wait. A
/// frame handed over is numbered where it lies, not moved.
#[derive(Debug, Default)]
pub(crate) struct Delivery {
    /// Internal frames that go before anything queued (keepalive probes).
    urgent: VecDeque<Queued>,
    /// Frames handed to the transport and not yet known to be written
    /// (the first `handed`), then the frames waiting for it, in order.
    /// A waiting frame's `seq` means nothing until it is handed over.
    frames: VecDeque<Outgoing>,
    /// How many of `frames` are in flight.
    handed: usize,
    next_seq: Seq,
    /// Application frames (and, of them, messages and message payload
    /// bytes) known written since the last [`Delivery::take_written`].
    written: Written,
    /// Payload bytes of application frames that left the queue since the
    /// last [`Delivery::take_released`] (room in the handles' send queue).
    released: usize,
    /// How many application frames those were (each is charged a fixed
    /// overhead in the send queue: `mailbox::charge`).
    released_frames: usize,
}

impl Delivery {
    fn push(&mut self, frame: Frame, internal: bool) {
        self.frames.push_back(Outgoing {
            seq: 0,
            frame: frame.into(),
            internal,
        });
    }

    /// Queues an application frame.
    pub(crate) fn queue(&mut self, frame: Frame) {
        self.push(frame, false);
    }

    /// Queues an application frame addressed to the current Websocket:
    /// [`Delivery::take_unsent_but_held`] keeps it while it waits.
    pub(crate) fn queue_held(&mut self, frame: Frame) {
        self.frames.push_back(Outgoing {
            seq: HELD,
            frame: frame.into(),
            internal: false,
        });
    }

    /// Queues the core's own frame after everything queued (a shutdown's close).
    pub(crate) fn queue_internal(&mut self, frame: Frame) {
        self.push(frame, true);
    }

    /// Queues the core's own frame before everything queued (a probe).
    pub(crate) fn queue_urgent(&mut self, frame: Frame) {
        self.urgent.push_back(Queued {
            frame: frame.into(),
            internal: true,
        });
    }

    /// Frames refused before they were queued: their room is free again.
    pub(crate) fn release_refused(&mut self, frames: &[Frame]) {
        self.released += frames.iter().map(Frame::len).sum::<usize>();
        self.released_frames += frames.len();
    }

    /// Whether anything waits for the transport.
    pub(crate) fn has_queued(&self) -> bool {
        !self.urgent.is_empty() || self.handed < self.frames.len()
    }

    /// The next frame for the transport; it stays in flight until
    /// [`Delivery::written_through`] covers it. Lent, not cloned: the
    /// transport takes the one reference count it needs.
    pub(crate) fn hand_over(&mut self) -> Option<&Outgoing> {
        if let Some(Queued { frame, internal }) = self.urgent.pop_front() {
            // Rare (probes): it goes between the frames in flight and the
            // queued ones.
            self.frames.insert(
                self.handed,
                Outgoing {
                    seq: 0,
                    frame,
                    internal,
                },
            );
        } else if self.handed == self.frames.len() {
            return None;
        }
        self.next_seq += 1;
        let out = self.frames.get_mut(self.handed)?;
        self.handed += 1;
        out.seq = self.next_seq;
        if !out.internal {
            self.released += out.frame.len();
            self.released_frames += 1;
        }
        Some(out)
    }

    /// The transport wrote every frame up to and including `seq`; each is
    /// shown to `observe` once the ledger has counted it (so an observer
    /// that fails cannot make a frame counted twice or returned).
    pub(crate) fn written_through(&mut self, seq: Seq, mut observe: impl FnMut(&Outgoing)) {
        let done = self
            .frames
            .iter()
            .take(self.handed)
            .take_while(|out| out.seq <= seq)
            .count();
        for out in self.frames.iter().take(done) {
            if !out.internal {
                self.written.frames += 1;
                if matches!(out.frame, WireFrame::Text(_) | WireFrame::Binary(_)) {
                    self.written.messages += 1;
                    self.written.bytes += out.frame.len() as u64;
                }
            }
        }
        self.handed -= done;
        // Drained even if `observe` unwinds: the range is gone either way.
        for out in self.frames.drain(..done) {
            observe(&out);
        }
    }

    /// Every application frame not known written, in order (in flight,
    /// then queued); internal frames are dropped. The ledger is empty after.
    pub(crate) fn take_unsent(&mut self) -> Vec<Frame> {
        self.urgent.clear();
        self.released += payload(self.frames.iter().skip(self.handed));
        self.released_frames += count(self.frames.iter().skip(self.handed));
        self.handed = 0;
        self.frames
            .drain(..)
            .filter(|out| !out.internal)
            .map(|out| out.frame.into_frame())
            .collect()
    }

    /// Like [`Delivery::take_unsent`], but the frames addressed to the
    /// current Websocket that are still waiting stay, in order, for the
    /// next one: only those in flight (maybe written, maybe not: never
    /// resent) and those addressed to a stream come back.
    pub(crate) fn take_unsent_but_held(&mut self) -> Vec<Frame> {
        self.urgent.clear();
        let in_flight: Vec<Outgoing> = self.frames.drain(..self.handed).collect();
        self.handed = 0;
        let mut unsent: Vec<Frame> = in_flight
            .into_iter()
            .filter(|out| !out.internal)
            .map(|out| out.frame.into_frame())
            .collect();
        unsent.extend(self.take_queued());
        unsent
    }

    /// The application frames still queued (none handed over yet) and
    /// addressed to a stream, in order; internal frames are dropped, and
    /// frames held for the current Websocket stay.
    pub(crate) fn take_queued(&mut self) -> Vec<Frame> {
        let waiting: Vec<Outgoing> = self.frames.drain(self.handed..).collect();
        let mut taken = Vec::new();
        for out in waiting {
            if out.seq == HELD && !out.internal {
                self.frames.push_back(out);
            } else if !out.internal {
                self.released += out.frame.len();
                self.released_frames += 1;
                taken.push(out.frame.into_frame());
            }
        }
        taken
    }

    /// Payload bytes of the held frames waiting for the next Websocket.
    #[cfg(test)]
    pub(crate) fn held_bytes(&self) -> usize {
        payload(
            self.frames
                .iter()
                .skip(self.handed)
                .filter(|o| o.seq == HELD),
        )
    }

    /// The application frames confirmed written since the last call.
    pub(crate) fn take_written(&mut self) -> Written {
        std::mem::take(&mut self.written)
    }

    /// Payload bytes of application frames that left the queue since the last call.
    pub(crate) fn take_released(&mut self) -> usize {
        std::mem::take(&mut self.released)
    }

    /// How many application frames left the queue since the last call.
    pub(crate) fn take_released_frames(&mut self) -> usize {
        std::mem::take(&mut self.released_frames)
    }

    /// The sequence number written through when all but the last `unsent`
    /// frames in flight were written (for tests that play the transport).
    #[cfg(test)]
    pub(crate) fn all_but_last(&self, unsent: usize) -> Option<Seq> {
        let written = self.handed.checked_sub(unsent)?;
        written.checked_sub(1).map(|i| self.frames[i].seq)
    }
}

fn count<'a>(frames: impl Iterator<Item = &'a Outgoing>) -> usize {
    frames.filter(|out| !out.internal).count()
}

fn payload<'a>(frames: impl Iterator<Item = &'a Outgoing>) -> usize {
    frames
        .filter(|out| !out.internal)
        .map(|out| out.frame.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_written_or_returned_exactly_once() {
        let mut d = Delivery::default();
        d.queue(Frame::text("a"));
        d.queue(Frame::text("b"));
        d.queue_urgent(Frame::Ping(Bytes::new()));
        d.queue(Frame::text("c"));
        let probe = d.hand_over().unwrap().clone();
        assert!(probe.internal, "probes go first");
        let a = d.hand_over().unwrap().clone();
        let b = d.hand_over().unwrap().clone();
        assert_eq!(d.take_released(), 2);
        let mut seen = Vec::new();
        d.written_through(a.seq, |out| seen.push(out.internal));
        assert_eq!(seen, [true, false], "the observer sees the probe too");
        let written = d.take_written();
        assert_eq!(
            (written.frames, written.messages, written.bytes),
            (1, 1, 1),
            "the probe is not counted"
        );
        let _ = b;
        assert_eq!(d.take_unsent(), [Frame::text("b"), Frame::text("c")]);
        assert_eq!(d.take_released(), 1, "c left the queue unsent");
        assert!(!d.has_queued());
        assert_eq!(d.take_unsent(), []);
    }

    #[test]
    fn text_survives_the_round_trip_without_a_copy() {
        let text = String::from("héllo");
        let ptr = text.as_ptr();
        let wire = WireFrame::from(Frame::text(text));
        let WireFrame::Text(bytes) = &wire else {
            panic!("text");
        };
        assert_eq!(bytes.as_ptr(), ptr);
        let Frame::Text(back) = wire.into_frame() else {
            panic!("text");
        };
        assert_eq!((back.as_str(), back.as_ptr()), ("héllo", ptr));
    }

    #[test]
    fn held_frames_stay_for_the_next_websocket_and_the_rest_comes_back() {
        let mut d = Delivery::default();
        d.queue_held(Frame::text("in flight"));
        d.hand_over();
        d.queue(Frame::text("to a stream"));
        d.queue_held(Frame::text("held 1"));
        d.queue_internal(Frame::close_normal());
        d.queue_held(Frame::text("held 2"));
        assert_eq!(d.take_released(), 9);
        assert_eq!(
            d.take_unsent_but_held(),
            [Frame::text("in flight"), Frame::text("to a stream")],
            "what was handed over is never resent"
        );
        assert_eq!(
            d.take_released(),
            11,
            "only the stream's frame left the queue"
        );
        assert_eq!(d.held_bytes(), 12);
        assert_eq!(
            d.hand_over().unwrap().frame,
            WireFrame::Text("held 1".into())
        );
        assert_eq!(d.hand_over().unwrap().seq, 3, "numbered when handed over");
        assert_eq!(
            d.take_unsent(),
            [Frame::text("held 1"), Frame::text("held 2")],
            "a final end returns held frames too"
        );
    }

    #[test]
    fn internal_frames_never_come_back() {
        let mut d = Delivery::default();
        d.queue(Frame::text("x"));
        d.queue_internal(Frame::close_normal());
        d.hand_over();
        d.hand_over();
        assert_eq!(d.take_unsent(), [Frame::text("x")]);
    }
}
