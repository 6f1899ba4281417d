//! Which handed-over frames may still sit in a browser WebSocket's send
//! buffer. Pure bookkeeping, kept apart from web-sys so that it is unit
//! tested on every target.
//!
//! A browser's `WebSocket.send` copies the payload into the browser's own
//! buffer and returns; the only sign of progress is `bufferedAmount`, the
//! number of payload bytes (UTF-8 text and binary data) not yet handed to
//! the network. Frames leave that buffer in order, so the frames that may
//! not have left are the **last** ones, as many as it takes for their
//! sizes to cover `bufferedAmount`. Everything before them has left: the
//! core hears "written through" the last of those.

use std::collections::VecDeque;

use crate::core::{Outgoing, Seq, WireFrame};

/// Frames handed to the browser: their numbers and sizes in
/// `bufferedAmount` terms (the core keeps the frames themselves).
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    frames: VecDeque<(Seq, u64)>,
    /// The sum of the sizes in `frames`.
    bytes: u64,
    /// The last frame known to have left the buffer.
    written_through: Option<Seq>,
}

impl InFlight {
    /// How many bytes `frame` adds to `bufferedAmount` (control frames: none).
    pub(crate) fn size_of(frame: &WireFrame) -> u64 {
        match frame {
            WireFrame::Text(data) | WireFrame::Binary(data) => data.len() as u64,
            WireFrame::Ping(_) | WireFrame::Pong(_) | WireFrame::Close(_) => 0,
        }
    }

    /// Records a frame handed to the browser.
    pub(crate) fn push(&mut self, out: &Outgoing) {
        let size = Self::size_of(&out.frame);
        self.bytes += size;
        self.frames.push_back((out.seq, size));
    }

    /// Forgets the frames that have left the buffer, given its current
    /// `buffered` byte count: keeps the shortest tail whose sizes sum to at
    /// least `buffered`.
    pub(crate) fn settle(&mut self, buffered: u64) {
        while let Some(&(seq, size)) = self.frames.front() {
            let rest = self.bytes - size;
            if rest < buffered {
                break;
            }
            self.bytes = rest;
            self.written_through = Some(seq);
            self.frames.pop_front();
        }
    }

    /// The last frame known to have left the buffer.
    pub(crate) fn written_through(&self) -> Option<Seq> {
        self.written_through
    }

    /// How many frames are recorded.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.frames.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Frame;

    fn out(seq: Seq, frame: Frame) -> Outgoing {
        Outgoing {
            seq,
            frame: frame.into(),
            internal: false,
        }
    }

    #[test]
    fn frames_covered_by_buffered_amount_stay_the_rest_are_written() {
        let mut in_flight = InFlight::default();
        for (seq, text) in [(1, "aaaa"), (2, "bb"), (3, "cccccc")] {
            in_flight.push(&out(seq, Frame::text(text)));
        }
        in_flight.settle(12);
        assert_eq!((in_flight.len(), in_flight.written_through()), (3, None));
        in_flight.settle(7);
        assert_eq!((in_flight.len(), in_flight.written_through()), (2, Some(1)));
        in_flight.settle(6);
        assert_eq!((in_flight.len(), in_flight.written_through()), (1, Some(2)));
        in_flight.settle(0);
        assert_eq!((in_flight.len(), in_flight.written_through()), (0, Some(3)));
    }

    #[test]
    fn a_close_frame_counts_nothing_and_leaves_with_what_precedes_it() {
        let mut in_flight = InFlight::default();
        in_flight.push(&out(1, Frame::text("abc")));
        in_flight.push(&out(2, Frame::close_normal()));
        in_flight.settle(3);
        assert_eq!(
            in_flight.written_through(),
            None,
            "abc may still be buffered"
        );
        in_flight.settle(0);
        assert_eq!(in_flight.written_through(), Some(2));
    }
}
