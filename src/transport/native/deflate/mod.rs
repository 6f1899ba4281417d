//! permessage-deflate (RFC 7692) beneath tokio-tungstenite.
//!
//! tungstenite has no extension support: it refuses any frame with a
//! reserved bit set. [`Deflate`] sits between the connection's stream
//! ([`Coalesce`](super::coalesce::Coalesce), which counts the bytes on the
//! wire) and tungstenite, and does the extension's work on the bytes:
//!
//! - **The handshake** passes through it. It reads the server's 101 as it
//!   passes, learns what was agreed ([`negotiate`]) and hands over exactly
//!   the response's bytes; whatever follows the response (a frame sent in
//!   the same segment as the 101) is already read as frames. tungstenite
//!   therefore never holds a byte that the layer has not seen through.
//! - **Inbound**, messages with RSV1 are inflated into plain frames
//!   (RSV1 cleared, lengths rewritten, split into frames of at most
//!   [`MAX_PLAIN_FRAME`] bytes); every other frame, control frames between
//!   fragments included, passes through untouched, so tungstenite still does UTF-8
//!   checks, fragments, control frames and the close handshake, and
//!   refuses RSV1 where RFC 7692 does not allow it (control and
//!   continuation frames) with its own protocol error. A message is never
//!   inflated past `max_message_size` (a decompression bomb stops there).
//! - **Outbound**, tungstenite's masked frames are parsed; a whole data
//!   message (tungstenite never fragments what it sends) at or above the
//!   threshold is unmasked, compressed, re-masked with the same key and
//!   sent with RSV1; everything else is sent byte for byte.
//!
//! The write side reports every byte it takes from tungstenite as written:
//! they are kept (as wire bytes) until a flush sends them, and a write is
//! refused (`Pending`) while [`HIGH_WATER`] wire bytes wait for a socket
//! that does not take them, so back-pressure reaches tungstenite.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::frames::{apply_mask, opcode, Header, MAX_HEADER, RSV1};
use super::handshake;
use bytes::{Buf, BufMut, BytesMut};
use flate2::{Decompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use zlib_rs::DeflateFlush;

use crate::compression::Compression;

mod negotiate;

pub(crate) use negotiate::{negotiate, offer, Agreed, Negotiated};

/// The largest plain frame an inflated message is split into.
pub(crate) const MAX_PLAIN_FRAME: usize = 64 << 10;
/// Wire bytes kept before a write waits for the socket.
pub(crate) const HIGH_WATER: usize = 256 << 10;
/// The longest 101 response read through (tungstenite's own limit is lower).
const MAX_HEAD: usize = 64 << 10;
/// What RFC 7692 §7.2.2 appends to a message's payload before inflating.
const TRAILER: [u8; 4] = [0x00, 0x00, 0xff, 0xff];
/// The deflater's memory level: a block holds up to `2^(MEM_LEVEL + 6)`
/// symbols, and zlib-rs zero-fills its `3 ×` that symbol buffer at the
/// start of every block, which a sync-flushed message always is. At zlib's
/// default (8) that is 48 KiB per message (0.2 µs, but most of a tiny
/// message's instructions by callgrind, which counts it byte by byte);
/// at 4 it is 3 KiB, a message up to 1 KiB is still one block, and larger
/// ones compress within 1.5 % of the bytes and about 3 % of the time
/// (BENCHMARKS.md, "Tiny messages"). The deflater is ≈105 KiB smaller.
const MEM_LEVEL: i32 = 4;

/// Why the inbound side failed the connection; carried inside the
/// `io::Error` that tungstenite hands back, and read by the native
/// transport (`socket_error`) into its [`ErrorKind`](crate::ErrorKind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DeflateError {
    /// The compressed payload is not a valid DEFLATE stream (1007).
    Corrupt(String),
    /// Inflated, the message exceeds `max_message_size` (1009).
    TooBig { limit: usize },
    /// A compressed frame over `max_frame_size` (1009), refused before its
    /// payload is read.
    FrameTooBig { size: u64, limit: usize },
}

impl fmt::Display for DeflateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeflateError::Corrupt(why) => write!(f, "corrupt permessage-deflate data: {why}"),
            DeflateError::TooBig { limit } => write!(
                f,
                "a compressed message inflates past max_message_size ({limit} bytes)"
            ),
            DeflateError::FrameTooBig { size, limit } => write!(
                f,
                "a compressed frame of {size} bytes exceeds max_frame_size ({limit} bytes)"
            ),
        }
    }
}

impl std::error::Error for DeflateError {}

impl DeflateError {
    /// The error inside `error`, if the layer made it.
    pub(crate) fn find(error: &io::Error) -> Option<&DeflateError> {
        error.get_ref()?.downcast_ref::<DeflateError>()
    }

    fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, self)
    }
}

/// The limits the inbound side enforces while inflating.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) max_frame: usize,
    pub(crate) max_message: usize,
}

#[derive(Debug)]
enum Phase {
    /// Before the end of the 101: bytes pass through and are kept.
    Handshake { head: Vec<u8> },
    /// Frames, inflated and compressed as agreed.
    Frames(Box<Agreed>),
    /// Nothing agreed (or the answer was refused): every byte passes.
    Passthrough,
}

/// Where the inbound parser is.
#[derive(Debug)]
enum Inbound {
    /// Before a frame header.
    Header,
    /// Copying `left` payload bytes as they are.
    Pass { left: u64 },
    /// Inflating `left` payload bytes of a compressed message's frame,
    /// then (`fin`) the `trailer` bytes of [`TRAILER`] not yet consumed.
    Inflate {
        left: u64,
        trailer: usize,
        fin: bool,
    },
    /// Dropping `left` payload bytes (of a message after an error).
    Skip { left: u64 },
}

/// The compressed message being inflated.
#[derive(Debug)]
struct Message {
    opcode: u8,
    /// No plain frame of it was handed on yet (the first carries the opcode).
    first: bool,
    /// Bytes inflated so far.
    size: usize,
    /// The DEFLATE stream ended (BFINAL): the rest of the message is ignored.
    ended: bool,
}

/// The permessage-deflate layer; see the module's documentation.
pub(crate) struct Deflate<S> {
    inner: S,
    config: Compression,
    limits: Limits,
    negotiated: Negotiated,
    phase: Phase,
    // --- inbound
    /// Bytes read from below, not yet parsed.
    inb: BytesMut,
    /// Plain bytes for tungstenite.
    out: BytesMut,
    state: Inbound,
    /// A plain (uncompressed) data message is between fragments.
    plain_message: bool,
    message: Option<Message>,
    /// The inflated bytes of the current plain frame, up to [`MAX_PLAIN_FRAME`].
    plain: Vec<u8>,
    inflater: Option<Decompress>,
    /// After an inbound error: data frames are dropped, control frames
    /// (the peer's close) still pass.
    poisoned: bool,
    /// An error to report once `out` is handed over.
    failed: Option<io::Error>,
    eof: bool,
    // --- outbound
    /// tungstenite's bytes, up to the end of the last whole frame.
    raw: BytesMut,
    /// Bytes for the wire.
    wire: BytesMut,
    deflater: Option<zlib_rs::Deflate>,
}

impl<S> Deflate<S> {
    /// A layer that offers `config`; what the 101 agreed is put in
    /// `negotiated` as it passes.
    pub(crate) fn new(
        inner: S,
        config: Compression,
        limits: Limits,
        negotiated: Negotiated,
    ) -> Deflate<S> {
        Deflate {
            inner,
            config,
            limits,
            negotiated,
            phase: Phase::Handshake { head: Vec::new() },
            inb: BytesMut::new(),
            out: BytesMut::new(),
            state: Inbound::Header,
            plain_message: false,
            message: None,
            plain: Vec::new(),
            inflater: None,
            poisoned: false,
            failed: None,
            eof: false,
            raw: BytesMut::new(),
            wire: BytesMut::new(),
            deflater: None,
        }
    }

    /// A layer already past the handshake, with what was agreed: over
    /// HTTP/2 (the answer came in HEADERS, not in the byte stream) and in
    /// tests.
    pub(crate) fn agreed(inner: S, config: Compression, limits: Limits, agreed: Agreed) -> Self {
        let mut layer = Deflate::new(inner, config, limits, Negotiated::default());
        layer.phase = Phase::Frames(Box::new(agreed));
        layer
    }

    fn agreement(&self) -> Option<&Agreed> {
        match &self.phase {
            Phase::Frames(agreed) => Some(agreed),
            _ => None,
        }
    }

    /// Moves what can be decided of `inb` to `out`; `true` if anything
    /// moved.
    fn process_inbound(&mut self) -> io::Result<bool> {
        if let Phase::Handshake { head } = &mut self.phase {
            let before = head.len();
            head.extend_from_slice(&self.inb);
            // The head ends where the one response-head parser says; a head
            // it refuses passes whole, and tungstenite reports it.
            let parsed = handshake::response_head(head);
            if parsed.is_err() {
                self.out.extend_from_slice(&self.inb);
                self.inb.clear();
                self.settle(Ok(None));
                return Ok(!self.out.is_empty());
            }
            match parsed.ok().flatten() {
                Some(parsed) => {
                    let end = parsed.len;
                    let taken = end - before;
                    self.out.extend_from_slice(&self.inb[..taken]);
                    self.inb.advance(taken);
                    head.truncate(end);
                    let head = std::mem::take(head);
                    self.end_handshake(&head);
                }
                None => {
                    self.out.extend_from_slice(&self.inb);
                    self.inb.clear();
                    if head.len() > MAX_HEAD {
                        self.settle(Err("the upgrade response is too long".into()));
                    }
                    return Ok(!self.out.is_empty());
                }
            }
        }
        if matches!(self.phase, Phase::Passthrough) {
            let moved = !self.inb.is_empty();
            self.out.extend_from_slice(&self.inb);
            self.inb.clear();
            return Ok(moved);
        }
        let mut moved = false;
        while self.out.len() < MAX_PLAIN_FRAME {
            match self.step() {
                Ok(true) => moved = true,
                Ok(false) => break,
                // What came before the error (the 101, whole frames) is
                // handed over first.
                Err(error) if !self.out.is_empty() => {
                    self.failed = Some(error);
                    return Ok(true);
                }
                Err(error) => return Err(error),
            }
        }
        Ok(moved)
    }

    fn end_handshake(&mut self, head: &[u8]) {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        let answer = match response.parse(head) {
            Ok(httparse::Status::Complete(_)) if response.code == Some(101) => {
                let values = response
                    .headers
                    .iter()
                    .filter(|h| h.name.eq_ignore_ascii_case("sec-websocket-extensions"))
                    .map(|h| std::str::from_utf8(h.value).unwrap_or("\u{fffd}"));
                negotiate(&self.config, values)
            }
            // Not an upgrade: tungstenite reports it.
            _ => Ok(None),
        };
        self.settle(answer);
    }

    fn settle(&mut self, answer: Result<Option<Agreed>, String>) {
        self.phase = match &answer {
            Ok(Some(agreed)) => Phase::Frames(Box::new(agreed.clone())),
            _ => Phase::Passthrough,
        };
        *self.negotiated.lock().unwrap_or_else(|e| e.into_inner()) = Some(answer);
    }

    /// One step of the inbound parser; `false` when it needs more input.
    fn step(&mut self) -> io::Result<bool> {
        match self.state {
            Inbound::Header => {
                let Some((header, header_len)) = Header::read(&self.inb) else {
                    return Ok(false);
                };
                if header.payload >> 63 != 0 {
                    // A length RFC 6455 forbids: tungstenite refuses it.
                    return self.pass_rest();
                }
                let len = header.payload;
                let data = matches!(header.opcode, opcode::TEXT | opcode::BINARY);
                let compressed_start = header.rsv == RSV1
                    && header.mask.is_none()
                    && data
                    && !self.plain_message
                    && self.message.is_none();
                let continues_compressed = header.opcode == opcode::CONTINUATION
                    && header.rsv == 0
                    && header.mask.is_none()
                    && self.message.is_some();
                let control = header.is_control();
                if self.poisoned && !control {
                    self.inb.advance(header_len);
                    self.state = Inbound::Skip { left: len };
                    return Ok(true);
                }
                if compressed_start || continues_compressed {
                    self.inb.advance(header_len);
                    if len > self.limits.max_frame as u64 {
                        return Err(self.fail(
                            DeflateError::FrameTooBig {
                                size: len,
                                limit: self.limits.max_frame,
                            },
                            len,
                        ));
                    }
                    if compressed_start {
                        self.message = Some(Message {
                            opcode: header.opcode,
                            first: true,
                            size: 0,
                            ended: false,
                        });
                    }
                    self.state = Inbound::Inflate {
                        left: len,
                        trailer: if header.fin { TRAILER.len() } else { 0 },
                        fin: header.fin,
                    };
                    return Ok(true);
                }
                // Anything else goes to tungstenite as it is, RSV1 where
                // RFC 7692 does not allow it included (a protocol error).
                if !control && header.rsv & RSV1 == 0 {
                    match header.opcode {
                        opcode::TEXT | opcode::BINARY => self.plain_message = !header.fin,
                        opcode::CONTINUATION if header.fin => self.plain_message = false,
                        _ => {}
                    }
                }
                self.out.extend_from_slice(&self.inb[..header_len]);
                self.inb.advance(header_len);
                self.state = Inbound::Pass { left: len };
                Ok(true)
            }
            Inbound::Pass { left } => Ok(self.forward(left, true)),
            Inbound::Skip { left } => Ok(self.forward(left, false)),
            Inbound::Inflate { left, trailer, fin } => self.inflate(left, trailer, fin),
        }
    }

    /// Moves up to `left` more bytes of the current frame past the parser:
    /// to tungstenite (`pass`), or nowhere (the frames of a message that
    /// already failed). `false` when it needs more input.
    fn forward(&mut self, left: u64, pass: bool) -> bool {
        if left == 0 {
            self.state = Inbound::Header;
            return true;
        }
        if self.inb.is_empty() {
            return false;
        }
        let n = left.min(self.inb.len() as u64) as usize;
        if pass {
            self.out.extend_from_slice(&self.inb[..n]);
        }
        self.inb.advance(n);
        let left = left - n as u64;
        self.state = if pass {
            Inbound::Pass { left }
        } else {
            Inbound::Skip { left }
        };
        true
    }

    /// Hands the rest of the input to tungstenite untouched.
    fn pass_rest(&mut self) -> io::Result<bool> {
        self.out.extend_from_slice(&self.inb);
        self.inb.clear();
        self.phase = Phase::Passthrough;
        Ok(false)
    }

    /// Fails the message: the `left` bytes of its frame and its other
    /// frames are dropped from now on.
    fn fail(&mut self, error: DeflateError, left: u64) -> io::Error {
        self.poisoned = true;
        self.state = Inbound::Skip { left };
        self.message = None;
        self.plain = Vec::new();
        self.inflater = None;
        error.into_io()
    }

    fn inflate(&mut self, left: u64, trailer: usize, fin: bool) -> io::Result<bool> {
        // The input of this step: the frame's payload bytes, then (after
        // the message's last frame) the trailer, then nothing (draining).
        let available = (left.min(self.inb.len() as u64)) as usize;
        if left > 0 && available == 0 {
            return Ok(false);
        }
        let max_message = self.limits.max_message;
        let plain_cap = MAX_PLAIN_FRAME.min(self.limits.max_frame).max(1);
        let message = self.message.as_mut().expect("inflating a message");
        let input: &[u8] = if left > 0 {
            &self.inb[..available]
        } else {
            &TRAILER[TRAILER.len() - trailer..]
        };
        let (consumed, produced, room) = if message.ended {
            // After BFINAL: the rest of the message is ignored.
            (input.len(), 0, 1)
        } else {
            let inflater = self.inflater.get_or_insert_with(|| Decompress::new(false));
            if self.plain.capacity() < plain_cap {
                self.plain.reserve_exact(plain_cap - self.plain.len());
            }
            // Never inflate past the limit: room for one byte over it.
            let room = (plain_cap - self.plain.len()).min(max_message - message.size + 1);
            let len = self.plain.len();
            let (before_in, before_out) = (inflater.total_in(), inflater.total_out());
            // Into the plain frame's spare capacity, never zero-filled first (a
            // tiny frame would pay for 64 KiB of it).
            let status = if self.plain.capacity() - len > room {
                // Near the message limit: only `room` bytes may come out.
                let mut small = Vec::with_capacity(room);
                let status = inflater.decompress_vec(input, &mut small, FlushDecompress::Sync);
                self.plain.extend_from_slice(&small);
                status
            } else {
                inflater.decompress_vec(input, &mut self.plain, FlushDecompress::Sync)
            };
            let consumed = (inflater.total_in() - before_in) as usize;
            let produced = (inflater.total_out() - before_out) as usize;
            debug_assert_eq!(self.plain.len(), len + produced);
            message.size += produced;
            let failed = match status {
                Ok(_) if message.size > max_message => {
                    Some(DeflateError::TooBig { limit: max_message })
                }
                Ok(Status::StreamEnd) => {
                    message.ended = true;
                    None
                }
                Ok(_) => None,
                Err(e) => Some(DeflateError::Corrupt(e.to_string())),
            };
            if let Some(error) = failed {
                let rest = if left > 0 {
                    self.inb.advance(consumed);
                    left - consumed as u64
                } else {
                    0
                };
                return Err(self.fail(error, rest));
            }
            (consumed, produced, room)
        };
        let (left, trailer) = if left > 0 {
            self.inb.advance(consumed);
            (left - consumed as u64, trailer)
        } else {
            (left, trailer - consumed)
        };
        self.state = Inbound::Inflate { left, trailer, fin };
        if self.plain.len() == plain_cap {
            self.emit(false);
            return Ok(true);
        }
        if left > 0 || trailer > 0 || produced == room {
            // More input, or more output may be pending.
            return Ok(true);
        }
        // Every byte of the frame is in and all its output is out.
        self.state = Inbound::Header;
        if !fin {
            // The first frame goes on even when empty, so that tungstenite
            // knows a message is open (and refuses a data frame inside it).
            if !self.plain.is_empty() || self.message.as_ref().is_some_and(|m| m.first) {
                self.emit(false);
            }
            return Ok(true);
        }
        self.emit(true);
        let ended = self.message.take().is_some_and(|m| m.ended);
        if self
            .agreement()
            .is_some_and(|agreed| agreed.server_no_context_takeover)
        {
            // Nothing to keep: the memory goes back until the next message.
            self.inflater = None;
        } else if ended {
            if let Some(inflater) = &mut self.inflater {
                inflater.reset(false);
            }
        }
        Ok(true)
    }

    /// Hands the inflated bytes on as one plain frame.
    fn emit(&mut self, fin: bool) {
        let message = self.message.as_mut().expect("inflating a message");
        let header = Header {
            fin,
            rsv: 0,
            opcode: if message.first {
                message.opcode
            } else {
                opcode::CONTINUATION
            },
            mask: None,
            payload: self.plain.len() as u64,
        };
        message.first = false;
        self.out.reserve(MAX_HEADER + self.plain.len());
        header.write(&mut self.out);
        self.out.extend_from_slice(&self.plain);
        self.plain.clear();
    }
}

impl<S> Deflate<S> {
    /// Turns the whole frames of `raw` into wire bytes.
    fn process_outbound(&mut self) {
        let Some(agreed) = self.agreement() else {
            self.wire.extend_from_slice(&self.raw);
            self.raw.clear();
            return;
        };
        let window = agreed.client_max_window_bits;
        let reset = agreed.client_no_context_takeover;
        loop {
            let Some((header, header_len)) = Header::read(&self.raw) else {
                return;
            };
            // Not a frame tungstenite would write (too long for memory):
            // sent as it is.
            let Some(total) = header
                .frame_len(header_len)
                .and_then(|total| usize::try_from(total).ok())
            else {
                self.wire.extend_from_slice(&self.raw);
                self.raw.clear();
                return;
            };
            if self.raw.len() < total {
                return;
            }
            let payload = &self.raw[header_len..total];
            let compress = header.fin
                && header.rsv & RSV1 == 0
                && matches!(header.opcode, opcode::TEXT | opcode::BINARY)
                && payload.len() >= self.config.threshold
                // zlib cannot compress with a 256-byte window: such a
                // message is sent uncompressed (RFC 7692 allows it).
                && window >= 9;
            if !compress {
                self.wire.extend_from_slice(&self.raw[..total]);
                self.raw.advance(total);
                continue;
            }
            // Unmasked in place, compressed straight into `wire` after
            // room for the longest header: no allocation a message.
            if let Some(mask) = header.mask {
                apply_mask(&mut self.raw[header_len..total], mask);
            }
            let level = self.config.level;
            let deflater = self
                .deflater
                .get_or_insert_with(|| new_deflater(level, window));
            let at = self.wire.len();
            self.wire.put_bytes(0, MAX_HEADER);
            deflate_sync(deflater, &self.raw[header_len..total], &mut self.wire);
            if reset {
                // No context to keep: the deflater's memory (about 265 KiB
                // at window bits 15) goes back until the next message.
                self.deflater = None;
            }
            let compressed = self.wire.len() - at - MAX_HEADER;
            // Without context takeover nothing is lost by sending the
            // smaller of the two.
            if reset && compressed >= total - header_len {
                self.wire.truncate(at);
                if let Some(mask) = header.mask {
                    apply_mask(&mut self.raw[header_len..total], mask);
                }
                self.wire.extend_from_slice(&self.raw[..total]);
                self.raw.advance(total);
                continue;
            }
            self.raw.advance(total);
            if let Some(mask) = header.mask {
                apply_mask(&mut self.wire[at + MAX_HEADER..], mask);
            }
            let header = Header {
                rsv: header.rsv | RSV1,
                payload: compressed as u64,
                ..header
            };
            // The header goes right before the payload, which moves down
            // over the room not used.
            let mut head = [0u8; MAX_HEADER];
            let mut room = &mut head[..];
            header.write(&mut room);
            let head_len = MAX_HEADER - room.len();
            self.wire.copy_within(at + MAX_HEADER.., at + head_len);
            self.wire[at..at + head_len].copy_from_slice(&head[..head_len]);
            self.wire.truncate(at + head_len + compressed);
        }
    }
}

/// A raw deflater (no zlib header) at `level` with a `2^window_bits`
/// window and [`MEM_LEVEL`]: zlib-rs itself, since flate2 cannot set the
/// memory level.
fn new_deflater(level: u32, window_bits: u8) -> zlib_rs::Deflate {
    zlib_rs::Deflate::new_with_config(zlib_rs::DeflateConfig {
        level: level as i32,
        method: zlib_rs::Method::Deflated,
        // Negative: raw deflate.
        window_bits: -i32::from(window_bits),
        mem_level: MEM_LEVEL,
        strategy: zlib_rs::Strategy::Default,
    })
}

/// `payload` compressed with a sync flush, appended to `out`, its final
/// `00 00 ff ff` removed (RFC 7692 §7.2.1).
fn deflate_sync(deflater: &mut zlib_rs::Deflate, payload: &[u8], out: &mut BytesMut) {
    let start = out.len();
    out.reserve(payload.len() / 2 + 64);
    let mut consumed = 0;
    loop {
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity().max(1024));
        }
        let (before_in, before_out) = (deflater.total_in(), deflater.total_out());
        deflater
            .compress_uninit(
                &payload[consumed..],
                out.spare_capacity_mut(),
                DeflateFlush::SyncFlush,
            )
            .expect("deflate with a sync flush cannot fail");
        let produced = (deflater.total_out() - before_out) as usize;
        // SAFETY: zlib-rs wrote `produced` bytes into the spare capacity.
        unsafe { out.set_len(out.len() + produced) };
        consumed += (deflater.total_in() - before_in) as usize;
        if consumed == payload.len() && out.len() < out.capacity() {
            break;
        }
    }
    if out[start..].ends_with(&TRAILER) {
        out.truncate(out.len() - TRAILER.len());
    } else if out.len() == start {
        // zlib emits nothing for a flush right after a flush (an empty
        // message with context takeover): the empty stored block's header
        // alone, which the receiver completes with the trailer.
        out.put_u8(0x00);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Deflate<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.out.is_empty() {
                let n = buf.remaining().min(this.out.len());
                buf.put_slice(&this.out[..n]);
                this.out.advance(n);
                if this.out.is_empty() && this.out.capacity() > 2 * MAX_PLAIN_FRAME {
                    this.out = BytesMut::new();
                }
                return Poll::Ready(Ok(()));
            }
            if let Some(error) = this.failed.take() {
                return Poll::Ready(Err(error));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            // Parse what is already here before reading more.
            if this.process_inbound()? {
                continue;
            }
            if this.inb.capacity() - this.inb.len() < 4096 {
                this.inb.reserve(16 << 10);
            }
            let mut read = ReadBuf::uninit(this.inb.spare_capacity_mut());
            match Pin::new(&mut this.inner).poll_read(cx, &mut read) {
                Poll::Pending => {
                    // Idle: give the memory back (`out` is empty here).
                    if this.inb.is_empty() {
                        this.inb = BytesMut::new();
                    }
                    if this.plain.is_empty() {
                        this.plain = Vec::new();
                    }
                    this.out = BytesMut::new();
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {
                    let n = read.filled().len();
                    if n == 0 {
                        // A frame cut short is dropped: tungstenite sees
                        // the end of the stream either way.
                        this.eof = true;
                        this.inb = BytesMut::new();
                        continue;
                    }
                    // SAFETY: `n` bytes of the spare capacity were filled.
                    unsafe { this.inb.set_len(this.inb.len() + n) };
                    this.process_inbound()?;
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> Deflate<S> {
    /// Writes wire bytes until none are left or the socket is not ready.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.wire.is_empty() {
            match Pin::new(&mut self.inner).poll_write(cx, &self.wire) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => self.wire.advance(n),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        if self.wire.capacity() > HIGH_WATER {
            self.wire = BytesMut::new();
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Deflate<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.wire.is_empty() && this.raw.is_empty() && this.agreement().is_none() {
            // The request, or nothing agreed: straight through.
            return Pin::new(&mut this.inner).poll_write(cx, data);
        }
        if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        if this.wire.len() >= HIGH_WATER {
            // The socket is not taking bytes (poll_drain registered the
            // waker): tungstenite keeps the rest.
            return Poll::Pending;
        }
        this.raw.extend_from_slice(data);
        this.process_outbound();
        // Start sending at once; what the socket does not take now waits
        // for the next write or the flush.
        if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // `raw` holds no partial frame here: tungstenite writes whole
        // frames before it flushes.
        std::task::ready!(this.poll_drain(cx))?;
        if this.raw.is_empty() {
            // Everything is written: nothing kept between bursts. (An
            // emptied `raw` may report no capacity and still hold its
            // allocation: replaced whatever it reports.)
            this.raw = BytesMut::new();
            this.wire = BytesMut::new();
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
