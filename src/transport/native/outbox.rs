//! Data frames written beside tungstenite. The socket encodes and masks
//! text and binary frames itself ([`encode`]), and the stream under
//! tungstenite ([`Coalesce`](super::coalesce::Coalesce)) writes them
//! together with what tungstenite writes (control frames, its answers to
//! pings and Close), each frame whole and in the order it was written.
//!
//! Through tungstenite a frame to send had a second owner (its `Message`:
//! one more reference to count on the payload, taken and dropped) and went
//! through tungstenite's whole write path for every frame. Here a frame
//! costs its header, its mask and one copy of its payload into the batch.
//!
//! Whole frames, in order: tungstenite's writes are taken whole or not at
//! all ([`Outbox::accept`]), so none of its frames is ever split by one of
//! the socket's, and the socket hands its frames over
//! ([`Outbox::put`]) before every call into tungstenite that may write.

use std::sync::{Mutex, MutexGuard};

use super::frames::{extend_masked, Header};

/// A buffer this size or smaller is kept when it has been written out:
/// the socket's batch and the outbox's trade places at every flush, so a
/// busy connection allocates none per batch (64 KiB messages were 7 %
/// slower when every batch allocated its 128 KiB afresh, zero-filled by
/// the kernel). A larger one (a message past the write buffer) goes at
/// once; the kept ones go at the next quiet moment ([`Outbox::trim`]).
pub(crate) const KEEP: usize = 2 * super::WRITE_BUFFER;

/// Bytes waiting to be written, shared by the socket and the stream under
/// tungstenite, both polled by the connection's one driver task; the
/// socket takes the lock once per batch of frames, not per frame.
#[derive(Default)]
pub(crate) struct Outbox {
    pending: Mutex<Pending>,
}

#[derive(Default)]
pub(crate) struct Pending {
    bytes: Vec<u8>,
    /// How many of `bytes` are written already.
    at: usize,
    /// Writes go through the outbox (after the handshake).
    open: bool,
}

impl Outbox {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// From now on writes go through the outbox. Not before: tungstenite's
    /// handshake writes its request without a flush.
    pub(crate) fn open(&self) {
        self.lock().open = true;
    }

    /// A quiet moment: an empty buffer's memory goes (an idle connection
    /// holds none).
    pub(crate) fn trim(&self) {
        let mut pending = self.lock();
        if pending.waiting() == 0 {
            *pending = Pending {
                open: pending.open,
                ..Pending::default()
            };
        }
    }

    /// Moves the socket's encoded frames to the end of the outbox, leaving
    /// `frames` empty (with the outbox's old buffer when it was empty).
    pub(crate) fn put(&self, frames: &mut Vec<u8>) {
        if frames.is_empty() {
            return;
        }
        let mut pending = self.lock();
        if pending.waiting() == 0 {
            pending.bytes.clear();
            pending.at = 0;
            std::mem::swap(&mut pending.bytes, frames);
        } else {
            pending.accept(frames);
            emptied(frames);
        }
    }
}

/// Empties a written buffer, keeping its memory up to [`KEEP`].
fn emptied(buffer: &mut Vec<u8>) {
    buffer.clear();
    if buffer.capacity() > KEEP {
        *buffer = Vec::new();
    }
}

impl Pending {
    /// Whether writes go through the outbox.
    pub(crate) fn is_open(&self) -> bool {
        self.open
    }

    /// Bytes not written yet.
    pub(crate) fn waiting(&self) -> usize {
        self.bytes.len() - self.at
    }

    /// The bytes to write next.
    pub(crate) fn next(&self) -> &[u8] {
        &self.bytes[self.at..]
    }

    /// `n` more bytes were written; all of them: the buffer is emptied.
    pub(crate) fn advance(&mut self, n: usize) {
        self.at += n;
        if self.at == self.bytes.len() {
            self.at = 0;
            emptied(&mut self.bytes);
        }
    }

    /// Takes all of `data` (whole frames) after what waits.
    pub(crate) fn accept(&mut self, data: &[u8]) {
        self.compact();
        self.bytes.extend_from_slice(data);
    }

    /// Drops what was written, once it is at least half the buffer (so a
    /// slow peer does not make the buffer grow by what it has taken).
    fn compact(&mut self) {
        if self.at > 0 && self.at >= self.bytes.len() / 2 {
            self.bytes.drain(..self.at);
            self.at = 0;
        }
    }
}

/// Appends one whole, final, masked client frame (RFC 6455 §5.2, §5.3)
/// with a fresh random mask, as tungstenite does (`rand`'s thread RNG).
pub(crate) fn encode(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    let mask: [u8; 4] = rand::random();
    let header = Header {
        fin: true,
        rsv: 0,
        opcode,
        mask: Some(mask),
        payload: payload.len() as u64,
    };
    out.reserve(header.len() + payload.len());
    header.write(out);
    extend_masked(out, payload, mask);
}

#[cfg(test)]
mod tests {
    use super::super::frames::{apply_mask, opcode};
    use super::*;

    /// What a server reads: the header, then the unmasked payload.
    fn decode(wire: &[u8]) -> (Header, Vec<u8>, usize) {
        let (header, header_len) = Header::read(wire).expect("a whole header");
        let end = header_len + header.payload as usize;
        let mut payload = wire[header_len..end].to_vec();
        apply_mask(&mut payload, header.mask.expect("client frames are masked"));
        (header, payload, end)
    }

    #[test]
    fn frames_of_every_length_encoding_are_whole_and_masked() {
        for len in [0, 1, 125, 126, 65_535, 65_536, 200_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut wire = Vec::new();
            encode(&mut wire, opcode::BINARY, &payload);
            let (header, got, end) = decode(&wire);
            assert_eq!(end, wire.len(), "one frame, {len} bytes");
            assert!(header.fin && header.rsv == 0 && header.opcode == opcode::BINARY);
            assert_eq!(got, payload, "{len} bytes");
            if len >= 4 {
                assert_ne!(
                    &wire[wire.len() - len..],
                    &payload[..],
                    "masked on the wire"
                );
            }
        }
    }

    #[test]
    fn each_frame_gets_its_own_mask() {
        let mut wire = Vec::new();
        let masks: std::collections::HashSet<[u8; 4]> = (0..64)
            .map(|_| {
                wire.clear();
                encode(&mut wire, opcode::TEXT, b"hi");
                decode(&wire).0.mask.unwrap()
            })
            .collect();
        assert!(masks.len() > 60, "{} distinct masks in 64", masks.len());
    }

    #[test]
    fn put_and_accept_keep_the_order_and_written_bytes_go() {
        let outbox = Outbox::default();
        let mut frames = b"abc".to_vec();
        outbox.put(&mut frames);
        assert!(frames.is_empty());
        let mut pending = outbox.lock();
        pending.accept(b"TUNG");
        pending.advance(2);
        drop(pending);
        let mut frames = b"de".to_vec();
        outbox.put(&mut frames);
        let mut pending = outbox.lock();
        // Half the buffer written: compacted, nothing lost.
        assert_eq!(pending.next(), b"cTUNGde");
        pending.advance(7);
        assert_eq!(pending.waiting(), 0);
    }

    #[test]
    fn a_written_buffer_is_kept_up_to_keep_and_goes_at_a_trim() {
        let outbox = Outbox::default();
        outbox.open();
        let mut frames = vec![7u8; KEEP + 1];
        outbox.put(&mut frames);
        outbox.lock().advance(KEEP + 1);
        assert_eq!(outbox.lock().bytes.capacity(), 0, "past KEEP: given back");
        let mut frames = vec![7u8; 64 << 10];
        outbox.put(&mut frames);
        let mut pending = outbox.lock();
        pending.advance(64 << 10);
        assert!(
            pending.bytes.capacity() >= 64 << 10,
            "kept for the next batch"
        );
        drop(pending);
        outbox.trim();
        let pending = outbox.lock();
        assert_eq!(pending.bytes.capacity(), 0, "a trim gives it back");
        assert!(pending.is_open(), "and leaves the outbox open");
    }
}
