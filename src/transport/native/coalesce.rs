//! Large socket reads for a reader that asks for small ones, large
//! binary messages read beside that reader, and the writes of the socket
//! beside it ([`Outbox`]).
//!
//! tungstenite reads into whatever room its frame buffer has left, often a
//! kilobyte or two, so a busy connection made one `recv` per kilobyte.
//! [`Coalesce`] reads up to [`READ_SIZE`] bytes per syscall and hands them
//! out in the small pieces asked for. Its buffer exists only while data is
//! waiting: an idle connection holds none (thousands of idle connections
//! stay small).
//!
//! **Small data frames** ([`Beside`]): a whole, final, unmasked text or
//! binary frame already in the buffer, below [`TAKE_FROM`] and within the
//! limits, is not handed to tungstenite either: its payload is copied
//! into an arena (text checked as UTF-8 first) and the frame queued for
//! the socket, up to [`TAKE_BATCH`] frames per read; the read then waits
//! until the socket has taken them, so they come out in wire order.
//! tungstenite's own read of such a frame costs a shared-buffer split, a
//! waker registration and a message per frame (about 700 instructions per
//! 32-byte message, measured). A frame that breaks a rule, or text that is
//! not UTF-8, goes to tungstenite, which reports it as before.
//!
//! **Large messages** ([`Beside`]): tungstenite reads a frame through its
//! read buffer, at most `read_buffer_size` bytes per call, zero-filling
//! each piece first, and keeps a buffer as large as the largest frame it
//! has read for the rest of the connection (the frame's allocation is
//! reused). So an unfragmented, unmasked text or binary frame of at least
//! [`TAKE_FROM`] bytes (and within the limits) is not handed to
//! tungstenite either: its payload is read straight into a `Vec` of its
//! exact size, without zero-filling or an extra copy, and handed to the
//! socket beside tungstenite, in order (tungstenite has read every byte
//! before it). The read after a large frame is short, so that the next
//! one is not read into the buffer and copied from there. Text is checked
//! as UTF-8 once whole, and one that is not is handed over as an
//! `InvalidUtf8` error in its place, after which no frame is taken.
//! Everything else, the 101 response included, passes
//! through untouched, and tungstenite checks it as before. Off with
//! permessage-deflate, whose layer sits above this one and follows the
//! frames itself.
//!
//! It also counts the bytes written through it: how the core tells a slow
//! peer (writes progress) from one that reads nothing.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::frames::{opcode, Follow, Header, Violation};
use super::handshake::{Fed, HeadReader};
use super::outbox::Outbox;
use crate::error::{Error, ErrorKind};
use crate::frame::Frame;
use crate::payload_arena::PayloadArena;
use crate::utf8_bytes::Utf8Bytes;

/// The most one syscall reads.
pub(crate) const READ_SIZE: usize = 64 << 10;

/// The first read after the buffer was given back goes to the stack, this
/// much at most: a read that finds nothing (most of them, on a quiet or
/// request-response connection) then allocates nothing, and one that
/// finds a few bytes allocates only those. A full one means more may
/// wait: the large buffer is allocated for the reads that follow.
const FIRST_READ: usize = 4 << 10;

/// Data frames from this size on are read beside tungstenite, straight
/// into their own allocation; smaller ones only when whole in the buffer.
pub(crate) const TAKE_FROM: usize = 64 << 10;

/// The most read after a large frame was taken: large messages tend to
/// follow each other, and a full [`READ_SIZE`] read would bring most of
/// the next one into the buffer, to be copied from there into its own
/// allocation (64 KiB messages: that copy was 11 % of the client's time,
/// measured). Read short, the rest of such a frame goes straight into its
/// allocation ([`DIRECT_FROM`]).
const AFTER_LARGE_READ: usize = 4 << 10;

/// What is left of a large frame's payload from this much on is read
/// straight into its allocation; less goes through the buffer (one
/// read may then bring the frames after it too).
const DIRECT_FROM: usize = 16 << 10;

/// The most small frames taken per read: what waits for the socket stays
/// small when the application reads slowly.
pub(crate) const TAKE_BATCH: usize = 64;

/// The frames' queues (the batch, [`Beside`]'s, the socket's) keep this
/// much capacity when idle, the least a `VecDeque` allocates: 160 bytes
/// each, so that a request and its answer allocate no queue (one
/// allocation per message otherwise, measured), while a burst's 64 entries
/// go.
pub(crate) const KEPT: usize = 4;

/// What passes beside tungstenite, shared by [`Coalesce`] and the socket:
/// the data frames read ([`Beside::take_into`]), and the data frames the
/// socket writes itself ([`Outbox`]).
#[derive(Default)]
pub(crate) struct Beside {
    /// Frames wait in `received` (checked without the lock).
    ready: AtomicBool,
    received: Mutex<VecDeque<Result<Frame, Error>>>,
    /// Frames to write, the socket's and tungstenite's, in order.
    pub(crate) outbox: Outbox,
}

impl Beside {
    /// Moves the frames read beside tungstenite into `into`, in order;
    /// `false`: none waits.
    pub(crate) fn take_into(&self, into: &mut VecDeque<Result<Frame, Error>>) -> bool {
        if !self.ready.load(Ordering::Acquire) {
            return false;
        }
        move_all(&mut self.received(), into);
        self.ready.store(false, Ordering::Release);
        true
    }

    /// A quiet moment: the queue's memory goes, but for [`KEPT`] entries.
    pub(crate) fn trim(&self) {
        let mut received = self.received();
        if received.is_empty() && received.capacity() > KEPT {
            *received = VecDeque::new();
        }
    }

    fn hand_over(&self, batch: &mut VecDeque<Result<Frame, Error>>) {
        move_all(batch, &mut self.received());
        self.ready.store(true, Ordering::Release);
    }

    fn received(&self) -> std::sync::MutexGuard<'_, VecDeque<Result<Frame, Error>>> {
        self.received.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Moves every frame of `from` after those of `to`. When `to` is empty the
/// deques trade places: neither allocates again.
fn move_all<T>(from: &mut VecDeque<T>, to: &mut VecDeque<T>) {
    if to.is_empty() {
        std::mem::swap(from, to);
    } else {
        to.append(from);
    }
}

/// Where the bytes handed to tungstenite are, on the wire.
enum Track {
    /// In the HTTP response head, which ends where the one head parser
    /// says (a bare LF ends a line too).
    Head(HeadReader),
    /// At the start of a frame header.
    Header,
    /// Inside a frame passed to tungstenite: its bytes left (header rest
    /// and payload).
    Pass(u64),
    /// Reading a large frame's payload, of this length.
    Take {
        payload: Vec<u8>,
        len: usize,
        text: bool,
    },
    /// Frames wait in [`Beside`] for the socket: no byte passes until it
    /// has taken them.
    Held,
    /// The frames are no longer followed: a head or a frame tungstenite
    /// refuses (it reports the error), so every byte passes.
    Off,
}

/// Follows the frames, to take data frames beside tungstenite.
struct Frames {
    track: Track,
    /// The RFC's rules across frames (fragments, Close).
    follow: Follow,
    /// The largest frame taken: the frame and message limits.
    limit: usize,
    beside: Arc<Beside>,
    /// Frames taken in this read, handed over at its end.
    batch: VecDeque<Result<Frame, Error>>,
    /// A frame taken was not valid (text that is not UTF-8): nothing more
    /// is taken.
    failed: bool,
    /// Where their payloads are copied.
    arena: PayloadArena,
}

/// Whether a frame is a small one to take, from [`Frames::small`].
enum Small {
    No,
    /// Yes, once its payload is whole in the buffer.
    Partial,
    Whole {
        text: bool,
    },
}

/// A large frame's payload, read whole: its message, or the error for
/// text that is not UTF-8 (what tungstenite would have reported).
fn whole(payload: Vec<u8>, text: bool) -> Result<Frame, Error> {
    if !text {
        return Ok(Frame::Binary(Bytes::from(payload)));
    }
    match String::from_utf8(payload) {
        Ok(text) => Ok(Frame::Text(text.into())),
        Err(error) => Err(Error::new(
            ErrorKind::InvalidUtf8,
            format!(
                "a text message of {} bytes is not UTF-8 (byte {})",
                error.as_bytes().len(),
                error.utf8_error().valid_up_to()
            ),
        )),
    }
}

/// What to do with the bytes waiting, from [`Frames::scan`].
enum Scan {
    /// Hand this many to tungstenite.
    Pass(usize),
    /// A frame header is not whole yet: read more.
    More,
    /// Take the frame whose header is this long.
    Take(usize),
    /// Take this small frame, whole in the buffer ([`Frames::small`]).
    Small {
        header: usize,
        payload: usize,
        text: bool,
    },
    /// Frames were taken: hand them over before anything else.
    Stop,
}

impl Frames {
    /// Whether `header` starts a data frame that may be read beside
    /// tungstenite: final, no extension bits, within the limits;
    /// `Some(text)`.
    fn data_frame(&self, header: &Header) -> Option<bool> {
        let text = match header.opcode {
            opcode::TEXT => true,
            opcode::BINARY => false,
            _ => return None,
        };
        let whole = header.fin && header.rsv == 0 && header.payload <= self.limit as u64;
        whole.then_some(text)
    }

    /// Whether the frame `header` starts, at the start of `data`, is a
    /// small one to take (see the module's doc). Checked before `follow`
    /// moves past it: a frame left to tungstenite may be scanned again.
    #[inline]
    fn small(&self, header: &Header, header_len: usize, data: &[u8]) -> Small {
        let Some(text) = self.data_frame(header) else {
            return Small::No;
        };
        // What `follow` would refuse, checked without moving it.
        let fits = header.mask.is_none()
            && !self.follow.fragmented
            && !self.follow.closed
            && header.payload < TAKE_FROM as u64;
        if !fits {
            return Small::No;
        }
        let end = header_len + header.payload as usize;
        if end > data.len() {
            return Small::Partial;
        }
        if text && std::str::from_utf8(&data[header_len..end]).is_err() {
            return Small::No; // tungstenite reports it
        }
        Small::Whole { text }
    }

    /// Copies the small frame at the start of `data` into the batch;
    /// `true` when the batch is full.
    fn take_small(&mut self, data: &[u8], text: bool) -> bool {
        let bytes = if data.len() <= PayloadArena::MAX_COPY {
            self.arena.copy_or_own(data)
        } else {
            Bytes::copy_from_slice(data)
        };
        self.batch.push_back(Ok(if text {
            // SAFETY: `small` checked these bytes as UTF-8.
            Frame::Text(unsafe { Utf8Bytes::from_bytes_unchecked(bytes) })
        } else {
            Frame::Binary(bytes)
        }));
        self.batch.len() >= TAKE_BATCH
    }

    /// Hands the batch to the socket; no byte passes until it has taken it.
    fn hand_over(&mut self) {
        self.beside.hand_over(&mut self.batch);
        self.track = Track::Held;
    }

    /// How many of `data` (the next bytes on the wire) tungstenite may have,
    /// at most `max`; advances the tracking over them.
    fn scan(&mut self, data: &[u8], max: usize) -> Scan {
        let max = max.min(data.len());
        let mut at = 0;
        while at < max {
            match &mut self.track {
                Track::Head(head) => {
                    return match head.feed(&data[at..max]) {
                        Fed::More => Scan::Pass(max),
                        Fed::Ends(n) => {
                            self.track = Track::Header;
                            // Nothing past the head in this piece: the
                            // handshake ends exactly there.
                            Scan::Pass(at + n)
                        }
                        Fed::Invalid => {
                            self.track = Track::Off;
                            Scan::Pass(max)
                        }
                    };
                }
                Track::Header => {
                    let Some((header, header_len)) = Header::read(&data[at..]) else {
                        return match at {
                            0 if !self.batch.is_empty() => Scan::Stop,
                            0 => Scan::More,
                            _ => Scan::Pass(at),
                        };
                    };
                    match self.small(&header, header_len, &data[at..]) {
                        Small::No => {}
                        // Taken at the next read, once tungstenite has the
                        // frames before it.
                        _ if at > 0 => return Scan::Pass(at),
                        Small::Whole { text } => {
                            let _ = self.follow.next(&header); // `small` checked it
                            return Scan::Small {
                                header: header_len,
                                payload: header.payload as usize,
                                text,
                            };
                        }
                        // Taken once whole; what was taken goes first.
                        Small::Partial if self.batch.is_empty() => return Scan::More,
                        Small::Partial => return Scan::Stop,
                    }
                    if !self.batch.is_empty() {
                        return Scan::Stop;
                    }
                    let take = match self.follow.next(&header) {
                        Ok(()) => self
                            .data_frame(&header)
                            .filter(|_| header.payload >= TAKE_FROM as u64),
                        // tungstenite ignores what follows a Close, and so
                        // does this: passed, not taken.
                        Err(Violation::AfterClose) => None,
                        // tungstenite refuses the frame and ends there.
                        Err(_) => {
                            self.track = Track::Off;
                            return Scan::Pass(max);
                        }
                    };
                    if let Some(text) = take {
                        if at > 0 {
                            // Read again at the next call: `follow` moved
                            // past it already, which is the same for a
                            // final data frame seen twice.
                            return Scan::Pass(at);
                        }
                        let len = header.payload as usize;
                        self.track = Track::Take {
                            payload: Vec::with_capacity(len),
                            len,
                            text,
                        };
                        return Scan::Take(header_len);
                    }
                    let Some(whole) = header.frame_len(header_len) else {
                        self.track = Track::Off;
                        return Scan::Pass(max);
                    };
                    let room = (max - at) as u64;
                    if whole <= room {
                        at += whole as usize; // at the next header
                    } else {
                        self.track = Track::Pass(whole - room);
                        at = max;
                    }
                }
                Track::Pass(left) => {
                    let n = (*left).min((max - at) as u64);
                    *left -= n;
                    at += n as usize;
                    if *left == 0 {
                        self.track = Track::Header;
                    }
                }
                Track::Off => return Scan::Pass(max),
                Track::Take { .. } | Track::Held => return Scan::Pass(at),
            }
        }
        Scan::Pass(at)
    }
}

pub(crate) struct Coalesce<S> {
    inner: S,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    written: Arc<AtomicU64>,
    /// `None`: every byte passes (permessage-deflate follows the frames).
    frames: Option<Frames>,
    /// Its outbox takes the writes once open (see [`Outbox`]); kept apart
    /// from `frames`, which may stop following the frames.
    beside: Option<Arc<Beside>>,
    /// A large frame was just taken: the next read is short
    /// ([`AFTER_LARGE_READ`]).
    after_large: bool,
}

impl<S> Coalesce<S> {
    pub(crate) fn new(inner: S, written: Arc<AtomicU64>) -> Coalesce<S> {
        Coalesce {
            inner,
            buf: Vec::new(),
            start: 0,
            end: 0,
            written,
            frames: None,
            beside: None,
            after_large: false,
        }
    }

    /// Also takes data frames (see the module's doc) of at most `limit`
    /// bytes, leaving them in `beside`. Its writes go through
    /// `beside`'s outbox once the socket opens it.
    pub(crate) fn taking_large(mut self, limit: usize, beside: Arc<Beside>) -> Coalesce<S> {
        self.beside = Some(beside.clone());
        self.frames = Some(Frames {
            track: Track::Head(HeadReader::default()),
            follow: Follow::default(),
            limit,
            beside,
            batch: VecDeque::new(),
            failed: false,
            arena: PayloadArena::default(),
        });
        self
    }

    /// For a byte stream that starts with frames (an HTTP/2 stream: the
    /// upgrade's answer came in HEADERS), not with a response head.
    pub(crate) fn past_handshake(mut self) -> Coalesce<S> {
        if let Some(frames) = self.frames.as_mut() {
            frames.track = Track::Header;
        }
        self
    }

    fn count(&self, polled: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        if let Poll::Ready(Ok(n)) = &polled {
            self.written.fetch_add(*n as u64, Ordering::Relaxed);
        }
        polled
    }
}

impl<S: AsyncRead + Unpin> Coalesce<S> {
    /// Reads more into the buffer, after the bytes waiting there. `Ok(0)`:
    /// the end of the stream.
    fn fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let short = std::mem::take(&mut self.after_large);
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.end -= self.start;
            self.start = 0;
        }
        self.buf.truncate(self.end);
        if self.buf.capacity() < READ_SIZE {
            let mut first = [std::mem::MaybeUninit::<u8>::uninit(); FIRST_READ];
            let mut room = ReadBuf::uninit(&mut first);
            return match Pin::new(&mut self.inner).poll_read(cx, &mut room) {
                Poll::Ready(Ok(())) => {
                    let filled = room.filled();
                    if filled.len() == FIRST_READ {
                        self.buf.reserve(READ_SIZE);
                    }
                    self.buf.extend_from_slice(filled);
                    self.end += filled.len();
                    Poll::Ready(Ok(filled.len()))
                }
                Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
                Poll::Pending => {
                    // Idle: keep only what waits (part of a frame header).
                    if self.buf.capacity() > self.end {
                        self.buf = self.buf[..self.end].to_vec();
                    }
                    self.idle();
                    Poll::Pending
                }
            };
        }
        self.buf.reserve(READ_SIZE);
        let size = if short { AFTER_LARGE_READ } else { READ_SIZE };
        let mut room = ReadBuf::uninit(&mut self.buf.spare_capacity_mut()[..size]);
        match Pin::new(&mut self.inner).poll_read(cx, &mut room) {
            Poll::Ready(Ok(())) => {
                let filled = room.filled().len();
                // SAFETY: `ReadBuf` guarantees its first `filled` bytes were
                // initialised (written by the read). Not zeroing the buffer
                // first matters: it is allocated per burst.
                unsafe { self.buf.set_len(self.end + filled) };
                self.end += filled;
                Poll::Ready(Ok(filled))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => {
                // Nothing to read: idle, so give the memory back (keeping a
                // part of a frame header, if any).
                self.buf = self.buf[self.start..self.end].to_vec();
                self.end -= self.start;
                self.start = 0;
                self.idle();
                Poll::Pending
            }
        }
    }

    /// Nothing to read: the small frames' arena goes, and the batch's
    /// capacity but for [`KEPT`] entries (it is empty: handed over before
    /// any read).
    fn idle(&mut self) {
        if let Some(frames) = &mut self.frames {
            frames.arena.end_burst();
            if frames.batch.capacity() > KEPT {
                frames.batch = VecDeque::new();
            }
        }
    }

    /// Reads the payload of a large frame being taken; `Pending` once it is
    /// whole and left for the socket, or while the socket has no more.
    /// `Ready(Ok)` with the frame not whole: the end of the stream.
    fn poll_take(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let Some(frames) = self.frames.as_mut() else {
                return Poll::Ready(Ok(()));
            };
            match &mut frames.track {
                Track::Take { payload, len, text } => {
                    let want = *len - payload.len();
                    if want == 0 {
                        self.after_large = true;
                        let taken = whole(std::mem::take(payload), *text);
                        frames.failed = taken.is_err();
                        frames.batch.push_back(taken);
                        frames.hand_over();
                        continue;
                    }
                    if self.start < self.end {
                        let n = want.min(self.end - self.start);
                        payload.extend_from_slice(&self.buf[self.start..self.start + n]);
                        self.start += n;
                        continue;
                    }
                    if want >= DIRECT_FROM {
                        // Straight into the message: no copy.
                        let mut rest = ReadBuf::uninit(&mut payload.spare_capacity_mut()[..want]);
                        match Pin::new(&mut self.inner).poll_read(cx, &mut rest) {
                            Poll::Ready(Ok(())) => {
                                let filled = rest.filled().len();
                                if filled == 0 {
                                    // The end of the stream inside a frame.
                                    return Poll::Ready(Ok(()));
                                }
                                let len = payload.len() + filled;
                                // SAFETY: the read initialised `filled`
                                // bytes after the payload's end.
                                unsafe { payload.set_len(len) };
                                continue;
                            }
                            Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                            Poll::Pending => {
                                self.buf = Vec::new();
                                self.start = 0;
                                self.end = 0;
                                return Poll::Pending;
                            }
                        }
                    }
                }
                Track::Held => {
                    if frames.beside.ready.load(Ordering::Acquire) {
                        // The socket takes them after tungstenite's
                        // `Pending` (`NativeSocket::poll_recv`).
                        return Poll::Pending;
                    }
                    // After an error the frames are no longer followed:
                    // the connection is failing.
                    frames.track = if frames.failed {
                        Track::Off
                    } else {
                        Track::Header
                    };
                    return Poll::Ready(Ok(()));
                }
                _ => return Poll::Ready(Ok(())),
            }
            // The rest of the payload is small: through the buffer.
            match self.fill(cx) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Coalesce<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.frames.is_some() {
                match this.poll_take(cx) {
                    Poll::Ready(Ok(())) => {}
                    other => return other,
                }
                if let Some(Track::Take { payload, len, .. }) =
                    this.frames.as_ref().map(|f| &f.track)
                {
                    if payload.len() < *len {
                        return Poll::Ready(Ok(())); // the end of the stream
                    }
                }
            }
            if this.start == this.end {
                if let Some(frames) = this.frames.as_mut().filter(|f| !f.batch.is_empty()) {
                    frames.hand_over();
                    return Poll::Pending;
                }
                // A large read goes straight through, without a copy
                // (unless frames are followed).
                if out.remaining() >= READ_SIZE && this.frames.is_none() {
                    return Pin::new(&mut this.inner).poll_read(cx, out);
                }
                match this.fill(cx) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Ok(())), // end of stream
                    Poll::Ready(Ok(_)) => {}
                    Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                    Poll::Pending => return Poll::Pending,
                }
            }
            let waiting = &this.buf[this.start..this.end];
            let n = match &mut this.frames {
                None => out.remaining().min(waiting.len()),
                Some(frames) => match frames.scan(waiting, out.remaining()) {
                    Scan::Pass(n) => n,
                    Scan::Take(header) => {
                        this.start += header;
                        continue;
                    }
                    Scan::Small {
                        header,
                        payload,
                        text,
                    } => {
                        let at = this.start + header;
                        this.start = at + payload;
                        if frames.take_small(&this.buf[at..at + payload], text) {
                            frames.hand_over();
                            return Poll::Pending;
                        }
                        continue;
                    }
                    Scan::Stop => {
                        frames.hand_over();
                        return Poll::Pending;
                    }
                    Scan::More => {
                        match this.fill(cx) {
                            Poll::Ready(Ok(0)) => {
                                // The end of the stream inside a header:
                                // tungstenite gets what there is.
                                let n = out.remaining().min(this.end - this.start);
                                out.put_slice(&this.buf[this.start..this.start + n]);
                                this.start += n;
                                this.frames = None;
                                return Poll::Ready(Ok(()));
                            }
                            Poll::Ready(Ok(_)) => continue,
                            Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                            Poll::Pending => return Poll::Pending,
                        }
                    }
                },
            };
            out.put_slice(&this.buf[this.start..this.start + n]);
            this.start += n;
            return Poll::Ready(Ok(()));
        }
    }
}

impl<S: AsyncWrite + Unpin> Coalesce<S> {
    /// Writes what waits in the outbox; `Ready(Ok)` once all of it is.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(beside) = &self.beside else {
            return Poll::Ready(Ok(()));
        };
        let mut pending = beside.outbox.lock();
        while pending.waiting() > 0 {
            let polled = Pin::new(&mut self.inner).poll_write(cx, pending.next());
            match self.count(polled) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => pending.advance(n),
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Through the outbox, once open: `data` is taken whole (tungstenite
    /// writes whole frames), unless more than [`OUTBOX_BOUND`] waits and
    /// the socket takes none of it. `None`: not open, write through.
    fn poll_write_outbox<T: std::ops::Deref<Target = [u8]>>(
        &mut self,
        cx: &mut Context<'_>,
        data: &[T],
    ) -> Option<Poll<io::Result<usize>>> {
        let over = {
            let pending = self.beside.as_ref()?.outbox.lock();
            if !pending.is_open() {
                return None;
            }
            pending.waiting() >= OUTBOX_BOUND
        };
        if over {
            if let Poll::Ready(Err(error)) = self.drain(cx) {
                return Some(Poll::Ready(Err(error)));
            }
        }
        let mut pending = self.beside.as_ref()?.outbox.lock();
        if pending.waiting() >= OUTBOX_BOUND {
            // `drain` left the inner stream's waker.
            return Some(Poll::Pending);
        }
        let mut n = 0;
        for piece in data {
            pending.accept(piece);
            n += piece.len();
        }
        Some(Poll::Ready(Ok(n)))
    }
}

/// What may wait in the outbox before tungstenite's writes wait for it to
/// drain: tungstenite's own write buffer's size (its frames are control
/// frames and its answers, which it bounds itself).
const OUTBOX_BOUND: usize = super::WRITE_BUFFER;

impl<S: AsyncWrite + Unpin> AsyncWrite for Coalesce<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(polled) = this.poll_write_outbox(cx, &[data]) {
            return polled;
        }
        let polled = Pin::new(&mut this.inner).poll_write(cx, data);
        this.count(polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(polled) = this.poll_write_outbox(cx, bufs) {
            return polled;
        }
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.count(polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn small_reads_become_one_large_read_and_keep_the_bytes() {
        let (mut tx, rx) = tokio::io::duplex(1 << 20);
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        tx.write_all(&data).await.unwrap();
        drop(tx);
        let mut reader = Coalesce::new(
            Recording {
                inner: rx,
                reads: Vec::new(),
            },
            Arc::default(),
        );
        let mut got = Vec::new();
        let mut small = [0u8; 1000];
        loop {
            let n = reader.read(&mut small).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&small[..n]);
        }
        assert_eq!(got, data);
        assert!(
            reader.inner.reads.len() <= 4,
            "{} reads reached the socket",
            reader.inner.reads.len()
        );
    }

    #[tokio::test]
    async fn an_idle_reader_holds_no_buffer() {
        let (mut tx, rx) = tokio::io::duplex(1 << 16);
        let mut reader = Coalesce::new(rx, Arc::default());
        tx.write_all(b"hello").await.unwrap();
        let mut small = [0u8; 16];
        assert_eq!(reader.read(&mut small).await.unwrap(), 5);
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut out = ReadBuf::new(&mut small);
        assert!(Pin::new(&mut reader)
            .poll_read(&mut cx, &mut out)
            .is_pending());
        assert_eq!(reader.buf.capacity(), 0);
    }

    /// A read that finds a few bytes, after the buffer was given back,
    /// allocates only those (a round trip's echo no longer costs a 64 KiB
    /// buffer); a read that fills the first read's room moves on to the
    /// large buffer, and nothing is lost on the way.
    /// Records the room and the bytes of every read that reaches the
    /// inner stream.
    struct Recording<S> {
        inner: S,
        reads: Vec<(usize, usize)>,
    }

    impl<S: AsyncRead + Unpin> AsyncRead for Recording<S> {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            out: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            let (room, before) = (out.remaining(), out.filled().len());
            let polled = Pin::new(&mut this.inner).poll_read(cx, out);
            if polled.is_ready() {
                this.reads.push((room, out.filled().len() - before));
            }
            polled
        }
    }

    /// Large frames back to back: after the first, each is read straight
    /// into its own allocation but for a short read's worth, not copied
    /// from a full read into the buffer.
    #[tokio::test]
    async fn large_frames_after_a_large_frame_are_read_straight_into_their_allocation() {
        let big: Vec<u8> = (0..TAKE_FROM as u32).map(|i| (i % 249) as u8).collect();
        let head = b"HTTP/1.1 101 Switching Protocols\r\n\r\n".to_vec();
        let mut wire = head.clone();
        for _ in 0..4 {
            wire.extend(frame(true, 2, &big));
        }
        let (mut tx, rx) = tokio::io::duplex(8 << 20);
        tx.write_all(&wire).await.unwrap();
        drop(tx);
        let beside = Arc::new(Beside::default());
        let recording = Recording {
            inner: rx,
            reads: Vec::new(),
        };
        let mut reader =
            Coalesce::new(recording, Arc::default()).taking_large(1 << 20, beside.clone());
        let (got, taken) = read_all(&mut reader, &beside).await;
        assert_eq!(got, head);
        assert_eq!(taken.len(), 4);
        assert!(taken
            .iter()
            .all(|(_, f)| matches!(f, Ok(Frame::Binary(data)) if data[..] == big[..])));
        let buffered = |from: usize| -> usize {
            let reads = &reader.inner.reads;
            // The reads into the buffer have its room; the others are the
            // payloads' own.
            reads[from..]
                .iter()
                .filter(|(room, _)| [READ_SIZE, FIRST_READ, AFTER_LARGE_READ].contains(room))
                .map(|(_, n)| n)
                .sum()
        };
        let first_done = reader
            .inner
            .reads
            .iter()
            .scan(0, |sum, (_, n)| {
                *sum += n;
                Some(*sum)
            })
            .position(|sum| sum >= head.len() + (wire.len() - head.len()) / 4)
            .expect("the first frame was read");
        assert!(
            buffered(first_done + 1) <= 3 * AFTER_LARGE_READ,
            "{} bytes of the later frames went through the buffer: {:?}",
            buffered(first_done + 1),
            reader.inner.reads
        );
    }

    #[tokio::test]
    async fn a_short_read_allocates_what_it_found_and_a_long_one_the_large_buffer() {
        let (mut tx, rx) = tokio::io::duplex(1 << 20);
        let mut reader = Coalesce::new(rx, Arc::default());
        tx.write_all(b"hello").await.unwrap();
        let n = futures::future::poll_fn(|cx| reader.fill(cx))
            .await
            .unwrap();
        assert_eq!((n, &reader.buf[..]), (5, &b"hello"[..]));
        assert!(reader.buf.capacity() < 64, "{}", reader.buf.capacity());
        let data: Vec<u8> = (0..3 * FIRST_READ as u32)
            .map(|i| (i % 251) as u8)
            .collect();
        tx.write_all(&data).await.unwrap();
        let mut all = Vec::new();
        while reader.end < 5 + data.len() {
            futures::future::poll_fn(|cx| reader.fill(cx))
                .await
                .unwrap();
        }
        all.extend_from_slice(&reader.buf[5..reader.end]);
        assert_eq!(all, data);
        assert!(reader.buf.capacity() >= READ_SIZE, "the large buffer");
    }

    /// A read into the large buffer while bytes still wait in it (a frame
    /// header cut by the last read) goes after them.
    #[tokio::test]
    async fn a_fill_with_bytes_waiting_in_the_large_buffer_reads_after_them() {
        let (mut tx, rx) = tokio::io::duplex(1 << 20);
        let mut reader = Coalesce::new(rx, Arc::default());
        reader.buf = Vec::with_capacity(READ_SIZE);
        reader.buf.extend_from_slice(b"ab");
        reader.end = 2;
        tx.write_all(&vec![7u8; READ_SIZE]).await.unwrap();
        let n = futures::future::poll_fn(|cx| reader.fill(cx))
            .await
            .unwrap();
        assert!(n > 0);
        assert_eq!(&reader.buf[..2], b"ab");
        assert_eq!(reader.end, 2 + n);
        assert!(reader.buf[2..reader.end].iter().all(|&b| b == 7));
    }

    /// A server frame (unmasked): FIN and opcode, then the payload.
    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![u8::from(fin) << 7 | opcode];
        match payload.len() {
            n if n < 126 => out.push(n as u8),
            n if n < 65536 => {
                out.push(126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(payload);
        out
    }

    /// Reads everything as tungstenite would, 4 KiB at a time, taking the
    /// frames read beside it whenever the reader says "wait" (as
    /// `NativeSocket` does); returns the bytes read and the frames taken
    /// (or their errors), each with the number of bytes read before it.
    async fn read_all<S: AsyncRead + Unpin>(
        reader: &mut Coalesce<S>,
        beside: &Beside,
    ) -> (Vec<u8>, Vec<(usize, Result<Frame, Error>)>) {
        let mut got = Vec::new();
        let mut taken = Vec::new();
        let mut piece = vec![0u8; 4096];
        loop {
            let step = futures::future::poll_fn(|cx| {
                let mut out = ReadBuf::new(&mut piece);
                match Pin::new(&mut *reader).poll_read(cx, &mut out) {
                    Poll::Ready(Ok(())) => Poll::Ready(Ok(Ok(out.filled().len()))),
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    Poll::Pending => {
                        let mut frames = VecDeque::new();
                        match beside.take_into(&mut frames) {
                            true => Poll::Ready(Ok(Err(frames))),
                            false => Poll::Pending,
                        }
                    }
                }
            })
            .await
            .unwrap();
            match step {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&piece[..n]),
                Err(frames) => taken.extend(frames.into_iter().map(|f| (got.len(), f))),
            }
        }
        (got, taken)
    }

    /// The wire again: the frames taken encoded back where they were.
    fn rebuilt(got: &[u8], taken: &[(usize, Result<Frame, Error>)]) -> Vec<u8> {
        let mut wire = Vec::new();
        let mut at = 0;
        for (before, taken) in taken {
            wire.extend_from_slice(&got[at..*before]);
            at = *before;
            wire.extend(match taken {
                Ok(Frame::Text(text)) => frame(true, 1, text.as_bytes()),
                Ok(Frame::Binary(data)) => frame(true, 2, data),
                other => panic!("{other:?} taken"),
            });
        }
        wire.extend_from_slice(&got[at..]);
        wire
    }

    #[tokio::test]
    async fn data_frames_are_taken_in_order_and_the_rest_passes() {
        let head = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n".to_vec();
        let big: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
        let below = vec![3; TAKE_FROM - 1];
        let large_text = "texte à lire ".repeat(TAKE_FROM / 10);
        let mut wire = head.clone();
        for f in [
            frame(true, 2, &big),
            frame(true, 1, b"hello"),
            frame(true, 9, b"ping"),
            // Fragmented: never taken, even a large fragment.
            frame(false, 2, &vec![1; 70_000]),
            frame(true, 9, b""),
            frame(true, 0, &vec![2; 70_000]),
            // Below the threshold (taken once whole), and above the limit.
            frame(true, 2, &below),
            frame(true, 2, &vec![4; 150_001]),
            // Not UTF-8: tungstenite reports it.
            frame(true, 1, b"\xff\xfe"),
            frame(true, 2, &big[..TAKE_FROM]),
            frame(true, 1, large_text.as_bytes()),
            frame(true, 1, "é".as_bytes()),
            frame(true, 8, &[0x03, 0xe8]),
            // After the Close: passed, as tungstenite ignores it.
            frame(true, 1, b"late"),
        ] {
            wire.extend(f);
        }
        let sent = wire.clone();
        let (mut tx, rx) = tokio::io::duplex(1 << 16);
        let writer = tokio::spawn(async move {
            // In odd pieces, so that headers straddle reads.
            for piece in sent.chunks(4093) {
                tx.write_all(piece).await.unwrap();
            }
        });
        let beside = Arc::new(Beside::default());
        let mut reader = Coalesce::new(rx, Arc::default()).taking_large(150_000, beside.clone());
        let (got, taken) = read_all(&mut reader, &beside).await;
        writer.await.unwrap();
        assert!(rebuilt(&got, &taken) == wire, "bytes lost or out of order");
        let taken: Vec<Frame> = taken.into_iter().map(|(_, f)| f.unwrap()).collect();
        let expected = [
            Frame::binary(big.clone()),
            Frame::text("hello"),
            Frame::binary(below),
            Frame::binary(big[..TAKE_FROM].to_vec()),
            Frame::text(large_text),
            Frame::text("é"),
        ];
        assert!(taken == expected, "{} frames taken", taken.len());
    }

    /// Tiny frames come in batches of at most [`TAKE_BATCH`], and a read
    /// that finds nothing leaves no batch, arena or queue behind.
    #[tokio::test]
    async fn small_frames_are_taken_in_bounded_batches_and_idle_leaves_nothing() {
        let mut wire = b"HTTP/1.1 101 OK\r\n\r\n".to_vec();
        let count = 3 * TAKE_BATCH + 5;
        for i in 0..count {
            wire.extend(frame(true, 2, &(i as u32).to_be_bytes()));
        }
        let (mut tx, rx) = tokio::io::duplex(1 << 16);
        tx.write_all(&wire).await.unwrap();
        let beside = Arc::new(Beside::default());
        let mut reader = Coalesce::new(rx, Arc::default()).taking_large(1 << 20, beside.clone());
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut piece = [0u8; 4096];
        let mut batches = Vec::new();
        let mut taken = Vec::new();
        loop {
            let mut out = ReadBuf::new(&mut piece);
            match Pin::new(&mut reader).poll_read(&mut cx, &mut out) {
                Poll::Ready(Ok(())) => assert_eq!(out.filled(), b"HTTP/1.1 101 OK\r\n\r\n"),
                Poll::Ready(Err(e)) => panic!("{e}"),
                Poll::Pending => {
                    let mut frames = VecDeque::new();
                    if !beside.take_into(&mut frames) {
                        break;
                    }
                    batches.push(frames.len());
                    taken.extend(frames.into_iter().map(Result::unwrap));
                }
            }
        }
        assert_eq!(batches, [TAKE_BATCH, TAKE_BATCH, TAKE_BATCH, 5]);
        let expected: Vec<Frame> = (0..count as u32)
            .map(|i| Frame::binary(i.to_be_bytes().to_vec()))
            .collect();
        assert!(taken == expected);
        let frames = reader.frames.as_ref().unwrap();
        assert!(frames.batch.capacity() <= KEPT, "no batch held");
        assert_eq!(frames.arena.burst(), 0, "no arena held");
        beside.trim();
        assert!(beside.received.lock().unwrap().capacity() <= KEPT);
    }

    #[tokio::test]
    async fn the_end_of_the_stream_inside_a_taken_frame_reaches_the_reader() {
        let mut wire = b"HTTP/1.1 101 OK\r\n\r\n".to_vec();
        let whole = frame(true, 2, &vec![7; 100_000]);
        wire.extend_from_slice(&whole[..50_000]);
        let (mut tx, rx) = tokio::io::duplex(1 << 17);
        tx.write_all(&wire).await.unwrap();
        drop(tx);
        let beside = Arc::new(Beside::default());
        let mut reader = Coalesce::new(rx, Arc::default()).taking_large(1 << 20, beside.clone());
        let (got, taken) = read_all(&mut reader, &beside).await;
        assert_eq!(got, b"HTTP/1.1 101 OK\r\n\r\n");
        assert!(taken.is_empty());
    }

    /// A large text frame is read whole beside tungstenite too; one that
    /// is not UTF-8 comes out as a typed error in its place, and nothing
    /// after it is taken (the connection is failing).
    #[tokio::test]
    async fn a_large_text_that_is_not_utf8_is_an_error_in_order() {
        let head = b"HTTP/1.1 101 OK\r\n\r\n".to_vec();
        let mut bad = "a".repeat(TAKE_FROM + 10).into_bytes();
        bad[TAKE_FROM] = 0xff;
        let after = frame(true, 1, b"after");
        let wire = [
            head.clone(),
            frame(true, 1, b"before"),
            frame(true, 1, &bad),
            after.clone(),
        ]
        .concat();
        let (mut tx, rx) = tokio::io::duplex(1 << 16);
        let writer = tokio::spawn(async move {
            for piece in wire.chunks(4093) {
                tx.write_all(piece).await.unwrap();
            }
        });
        let beside = Arc::new(Beside::default());
        let mut reader = Coalesce::new(rx, Arc::default()).taking_large(1 << 20, beside.clone());
        let (got, taken) = read_all(&mut reader, &beside).await;
        writer.await.unwrap();
        assert_eq!(got, [head, after].concat(), "what follows passes");
        assert!(matches!(&taken[0].1, Ok(f) if *f == Frame::text("before")));
        let Err(error) = &taken[1].1 else {
            panic!("an error expected")
        };
        assert_eq!(error.kind(), ErrorKind::InvalidUtf8);
        assert_eq!(taken.len(), 2);
    }

    // ---- the outbox: the socket's frames and tungstenite's writes ----

    fn encoded(payload: &[u8]) -> Vec<u8> {
        let mut wire = Vec::new();
        super::super::outbox::encode(&mut wire, opcode::BINARY, payload);
        wire
    }

    /// The peer takes 16 bytes at a time: the socket's frames and what
    /// tungstenite writes in between reach it whole and in order.
    #[tokio::test]
    async fn frames_beside_tungstenite_and_its_writes_arrive_whole_and_in_order() {
        let (client, mut server) = tokio::io::duplex(16);
        let beside = Arc::new(Beside::default());
        let written = Arc::new(AtomicU64::new(0));
        let mut writer = Coalesce::new(client, written.clone())
            .taking_large(1 << 20, beside.clone())
            .past_handshake();
        let reader = tokio::spawn(async move {
            let mut all = Vec::new();
            server.read_to_end(&mut all).await.unwrap();
            all
        });
        writer.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        beside.outbox.open();
        let (a, c) = (encoded(&[1; 300]), encoded(&[3; 70_000]));
        let control = encoded(b"tungstenite's frame");
        beside.outbox.put(&mut a.clone());
        // Taken whole at once, though the peer has read nothing yet.
        let n = writer.write(&control).await.unwrap();
        assert_eq!(n, control.len());
        beside.outbox.put(&mut c.clone());
        writer.flush().await.unwrap();
        writer.shutdown().await.unwrap();
        drop(writer);
        let expected = [&b"GET / HTTP/1.1\r\n\r\n"[..], &a, &control, &c].concat();
        let got = reader.await.unwrap();
        assert!(
            got == expected,
            "{} bytes, {} expected",
            got.len(),
            expected.len()
        );
        assert_eq!(written.load(Ordering::Relaxed), expected.len() as u64);
    }

    /// A peer that reads nothing: tungstenite's writes wait once the
    /// outbox holds its bound, rather than growing it.
    #[tokio::test]
    async fn writes_wait_when_the_outbox_is_full_and_the_peer_reads_nothing() {
        use futures::FutureExt;
        let (client, _server) = tokio::io::duplex(1024);
        let beside = Arc::new(Beside::default());
        let mut writer = Coalesce::new(client, Arc::default())
            .taking_large(1 << 20, beside.clone())
            .past_handshake();
        beside.outbox.open();
        // More than the bound, even after the peer's 1 KiB of room.
        let frame = encoded(&vec![0; OUTBOX_BOUND + 4096]);
        beside.outbox.put(&mut frame.clone());
        assert!(writer.write(b"pong").now_or_never().is_none(), "waits");
        let waiting = beside.outbox.lock().waiting();
        assert_eq!(waiting, frame.len() - 1024, "nothing added, 1 KiB written");
        assert!(
            writer.flush().now_or_never().is_none(),
            "the flush waits too"
        );
    }
}
