//! Which handed-over frames may still sit in a browser WebSocket's send
//! buffer. Pure bookkeeping, kept apart from web-sys so that it is unit
//! tested on every target.
//!
//! A browser's `WebSocket.send` copies the payload into the browser's own
//! buffer and returns; the only sign of progress is `bufferedAmount`, the
//! number of payload bytes (UTF-8 text and binary data) not yet handed to
//! the network. Frames leave that buffer in order, so the frames that may
//! not have left are the **last** ones, as many as it takes for their
//! sizes to cover `bufferedAmount`. Everything before them has left and is
//! forgotten, as it would be once flushed natively.

use std::collections::VecDeque;

use crate::core::Outgoing;
use crate::frame::Frame;

/// Frames handed to the browser, with their sizes in `bufferedAmount` terms.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    frames: VecDeque<(Outgoing, u64)>,
    /// The sum of the sizes in `frames`.
    bytes: u64,
}

impl InFlight {
    /// How many bytes `frame` adds to `bufferedAmount` (a close frame: none).
    pub(crate) fn size_of(frame: &Frame) -> u64 {
        match frame {
            Frame::Text(text) => text.len() as u64,
            Frame::Binary(data) => data.len() as u64,
            Frame::Ping(_) | Frame::Pong(_) | Frame::Close(_) => 0,
        }
    }

    /// Records a frame handed to the browser.
    pub(crate) fn push(&mut self, out: Outgoing) {
        let size = Self::size_of(&out.frame);
        self.bytes += size;
        self.frames.push_back((out, size));
    }

    /// Forgets the frames that have left the buffer, given its current
    /// `buffered` byte count: keeps the shortest tail whose sizes sum to at
    /// least `buffered`.
    pub(crate) fn settle(&mut self, buffered: u64) {
        while let Some((_, size)) = self.frames.front() {
            let rest = self.bytes - size;
            if rest < buffered {
                break;
            }
            self.bytes = rest;
            self.frames.pop_front();
        }
    }

    /// The frames that may not have left the buffer, in order; the record
    /// is emptied.
    pub(crate) fn take(&mut self, buffered: u64) -> Vec<Outgoing> {
        self.settle(buffered);
        self.bytes = 0;
        self.frames.drain(..).map(|(out, _)| out).collect()
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

    fn out(text: &str) -> Outgoing {
        Outgoing {
            frame: Frame::text(text),
            probe: false,
        }
    }

    fn texts(frames: Vec<Outgoing>) -> Vec<String> {
        frames
            .into_iter()
            .map(|o| match o.frame {
                Frame::Text(t) => t,
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn an_empty_buffer_means_everything_left() {
        let mut in_flight = InFlight::default();
        in_flight.push(out("aaaa"));
        in_flight.push(out("bb"));
        assert!(in_flight.take(0).is_empty());
    }

    #[test]
    fn the_tail_covering_the_buffer_comes_back() {
        let mut in_flight = InFlight::default();
        for t in ["aaaa", "bbb", "cc", "d"] {
            in_flight.push(out(t));
        }
        // 3 bytes buffered: "cc" and "d" may not have left; "bbb" has.
        assert_eq!(texts(in_flight.take(3)), ["cc", "d"]);
    }

    #[test]
    fn a_partly_sent_frame_comes_back() {
        let mut in_flight = InFlight::default();
        for t in ["aaaa", "bbb", "cc"] {
            in_flight.push(out(t));
        }
        // 4 bytes buffered: part of "bbb" is still there.
        assert_eq!(texts(in_flight.take(4)), ["bbb", "cc"]);
    }

    #[test]
    fn settling_forgets_frames_as_the_buffer_drains() {
        let mut in_flight = InFlight::default();
        for t in ["aaaa", "bbb", "cc"] {
            in_flight.push(out(t));
        }
        in_flight.settle(9);
        assert_eq!(in_flight.len(), 3);
        in_flight.settle(5);
        assert_eq!(in_flight.len(), 2);
        in_flight.settle(0);
        assert_eq!(in_flight.len(), 0);
        in_flight.push(out("e"));
        assert_eq!(texts(in_flight.take(1)), ["e"]);
    }

    #[test]
    fn empty_frames_and_close_follow_the_frames_before_them() {
        let mut in_flight = InFlight::default();
        in_flight.push(out("aaaa"));
        in_flight.push(out(""));
        in_flight.push(Outgoing {
            frame: Frame::Close(None),
            probe: false,
        });
        assert_eq!(texts(in_flight.take(2)), ["aaaa", "", "Close"]);
        in_flight.push(out("aaaa"));
        in_flight.push(out(""));
        assert!(in_flight.take(0).is_empty());
    }

    #[test]
    fn a_buffer_larger_than_the_record_returns_everything() {
        let mut in_flight = InFlight::default();
        in_flight.push(out("ab"));
        assert_eq!(texts(in_flight.take(100)), ["ab"]);
    }
}
