//! Large socket reads for a reader that asks for small ones.
//!
//! tungstenite reads into whatever room its frame buffer has left, often a
//! kilobyte or two, so a busy connection made one `recv` per kilobyte.
//! [`Coalesce`] reads up to [`CHUNK`] bytes per syscall and hands them out
//! in the small pieces asked for. Its buffer exists only while data is
//! waiting: an idle connection holds none (thousands of idle connections
//! stay small).
//!
//! It also counts the bytes written through it: how the core tells a slow
//! peer (writes progress) from one that reads nothing.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most one syscall reads.
pub(crate) const CHUNK: usize = 64 << 10;

pub(crate) struct Coalesce<S> {
    inner: S,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    written: Arc<AtomicU64>,
}

impl<S> Coalesce<S> {
    pub(crate) fn new(inner: S, written: Arc<AtomicU64>) -> Coalesce<S> {
        Coalesce {
            inner,
            buf: Vec::new(),
            start: 0,
            end: 0,
            written,
        }
    }

    fn count(&self, polled: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        if let Poll::Ready(Ok(n)) = &polled {
            self.written.fetch_add(*n as u64, Ordering::Relaxed);
        }
        polled
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Coalesce<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.start == this.end {
            // A large read goes straight through, without a copy.
            if out.remaining() >= CHUNK {
                return Pin::new(&mut this.inner).poll_read(cx, out);
            }
            this.buf.clear();
            this.buf.reserve(CHUNK);
            let mut chunk = ReadBuf::uninit(&mut this.buf.spare_capacity_mut()[..CHUNK]);
            match Pin::new(&mut this.inner).poll_read(cx, &mut chunk) {
                Poll::Ready(Ok(())) => {
                    let filled = chunk.filled().len();
                    // SAFETY: `ReadBuf` guarantees its first `filled` bytes
                    // were initialised (written by the read). Not zeroing the
                    // buffer first matters: it is allocated per burst.
                    unsafe { this.buf.set_len(filled) };
                    this.start = 0;
                    this.end = filled;
                    if filled == 0 {
                        return Poll::Ready(Ok(())); // end of stream
                    }
                }
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => {
                    // Nothing to read: idle, so give the memory back.
                    this.buf = Vec::new();
                    return Poll::Pending;
                }
            }
        }
        let n = out.remaining().min(this.end - this.start);
        out.put_slice(&this.buf[this.start..this.start + n]);
        this.start += n;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Coalesce<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, data);
        this.count(polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.count(polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Counts the reads that reach the inner stream.
    struct Counting<S> {
        inner: S,
        reads: usize,
    }

    impl<S: AsyncRead + Unpin> AsyncRead for Counting<S> {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            out: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            let polled = Pin::new(&mut this.inner).poll_read(cx, out);
            if polled.is_ready() {
                this.reads += 1;
            }
            polled
        }
    }

    #[tokio::test]
    async fn small_reads_become_one_large_read_and_keep_the_bytes() {
        let (mut tx, rx) = tokio::io::duplex(1 << 20);
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        tx.write_all(&data).await.unwrap();
        drop(tx);
        let mut reader = Coalesce::new(
            Counting {
                inner: rx,
                reads: 0,
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
            reader.inner.reads <= 4,
            "{} reads reached the socket",
            reader.inner.reads
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
}
