//! [`PayloadArena`]: small payloads copied one after another into shared
//! chunks, so that a payload that must have two owners (the ledger and
//! tungstenite on the way out, tungstenite's buffer and the application on
//! the way in) costs a copy into a chunk allocated once per many frames
//! rather than an allocation of its own.

use bytes::{Bytes, BytesMut};

/// Copies small payloads into shared chunks. A chunk is sized by what the
/// burst it serves has copied so far (twice that, from [`MIN`](Self::MIN)
/// up to [`SIZE`](Self::SIZE)): payloads arriving one at a time each get a
/// chunk of their own size, never a large one that a single payload would
/// keep alive (issue 21, finding 6).
#[derive(Default)]
pub(crate) struct PayloadArena {
    /// The current chunk; what was split off lives on in the payloads.
    buf: BytesMut,
    /// Bytes copied since the burst began ([`PayloadArena::end_burst`]).
    burst: usize,
}

impl PayloadArena {
    /// The largest chunk.
    pub(crate) const SIZE: usize = 16 << 10;
    /// The smallest chunk allocated.
    pub(crate) const MIN: usize = 64;
    /// Larger received payloads are left as they are.
    pub(crate) const MAX_COPY: usize = 4 << 10;
    /// Larger payloads to send are left as they are: past it, copying the
    /// payload costs more than the shared header it saves (pipe-1KiB-binary
    /// was 10 % slower copied, pipe-32B-text 4 % faster; BENCHMARKS.md).
    pub(crate) const MAX_SEND_COPY: usize = 512;

    /// A copy of `data` in the current chunk (a new one when it has no room).
    pub(crate) fn copy(&mut self, data: &[u8]) -> Bytes {
        if self.buf.capacity() - self.buf.len() < data.len() {
            let size = (2 * self.burst).clamp(Self::MIN, Self::SIZE);
            self.buf = BytesMut::with_capacity(size.max(data.len()));
        }
        self.burst += data.len();
        self.buf.extend_from_slice(data);
        self.buf.split().freeze()
    }

    /// A copy of `data` when a burst is under way; `None` for the burst's
    /// first payload (which is only counted): a lone payload, as in a
    /// request and its answer, would cost a chunk of its own, more than
    /// it saves.
    pub(crate) fn copy_in_burst(&mut self, data: &[u8]) -> Option<Bytes> {
        if self.burst == 0 {
            self.burst = data.len().max(1);
            return None;
        }
        Some(self.copy(data))
    }

    /// A copy of `data`: in the current chunk when a burst is under way,
    /// in an allocation of its own size for the burst's first payload (a
    /// lone payload costs one allocation, as a `String` would, not a chunk
    /// and its shared header).
    pub(crate) fn copy_or_own(&mut self, data: &[u8]) -> Bytes {
        match self.copy_in_burst(data) {
            Some(copy) => copy,
            None => Bytes::copy_from_slice(data),
        }
    }

    /// A quiet moment: the chunk goes and the next burst starts small.
    pub(crate) fn end_burst(&mut self) {
        *self = PayloadArena::default();
    }

    /// Bytes copied since the burst began.
    #[cfg(test)]
    pub(crate) fn burst(&self) -> usize {
        self.burst
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_of_a_burst_share_a_chunk_that_grows_with_the_burst() {
        let mut arena = PayloadArena::default();
        let first = arena.copy(&[1; 32]);
        let second = arena.copy(&[2; 32]);
        assert_eq!(second.as_ptr() as usize - first.as_ptr() as usize, 32);
        // The first chunk (64 bytes) is full: the next is twice the burst.
        let third = arena.copy(&[3; 32]);
        assert_ne!(third.as_ptr() as usize - second.as_ptr() as usize, 32);
        assert_eq!(
            (&first[..], &second[..], &third[..]),
            (&[1; 32][..], &[2; 32][..], &[3; 32][..])
        );
        assert_eq!(arena.burst(), 96);
    }

    #[test]
    fn the_first_payload_of_a_burst_is_only_counted() {
        let mut arena = PayloadArena::default();
        assert_eq!(arena.copy_in_burst(&[1; 40]), None);
        let second = arena.copy_in_burst(&[2; 40]).expect("a burst");
        assert_eq!(&second[..], &[2; 40][..]);
        arena.end_burst();
        assert_eq!(arena.copy_in_burst(&[3; 40]), None);
    }

    #[test]
    fn a_payload_alone_gets_a_chunk_of_its_own_size() {
        let mut arena = PayloadArena::default();
        let one = arena.copy(&[7; 200]);
        assert_eq!(&one[..], &[7; 200][..]);
        arena.end_burst();
        assert_eq!(arena.burst(), 0);
        assert_eq!(arena.buf.capacity(), 0, "nothing held between bursts");
    }
}
