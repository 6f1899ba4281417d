//! The runtime pieces each target provides: spawning the driver, one timer,
//! and a seed for jitter.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::time::Instant;

cfg_if::cfg_if! {
    if #[cfg(browser)] {
        /// A boxed future the driver can hold (not `Send` in the browser).
        pub(crate) type BoxFuture<T> = futures::future::LocalBoxFuture<'static, T>;

        /// `Send` natively, nothing in the browser (one thread, `!Send` JS handles).
        pub(crate) trait MaybeSend {}
        impl<T> MaybeSend for T {}

        /// Runs the driver on the browser's event loop.
        pub(crate) fn spawn(future: impl Future<Output = ()> + MaybeSend + 'static) {
            wasm_bindgen_futures::spawn_local(future);
        }

        /// A seed for the backoff jitter.
        pub(crate) fn seed() -> u64 {
            (js_sys::Math::random() * u64::MAX as f64) as u64
        }

        /// One re-armable timer.
        pub(crate) struct Timer {
            deadline: Option<Instant>,
            sleep: Option<gloo_timers::future::TimeoutFuture>,
        }

        impl Timer {
            pub(crate) fn new() -> Timer {
                Timer { deadline: None, sleep: None }
            }

            /// Arms the timer for `deadline` (or disarms it), then polls it.
            pub(crate) fn poll_at(&mut self, deadline: Option<Instant>, cx: &mut Context<'_>) -> Poll<()> {
                if deadline != self.deadline {
                    self.deadline = deadline;
                    self.sleep = deadline.map(|at| {
                        let ms = at.saturating_duration_since(Instant::now()).as_millis();
                        // Round up so the timer never fires before the deadline.
                        gloo_timers::future::TimeoutFuture::new(ms.min(u32::MAX as u128) as u32 + 1)
                    });
                }
                match &mut self.sleep {
                    Some(sleep) => {
                        let ready = Pin::new(sleep).poll(cx);
                        if ready.is_ready() {
                            self.deadline = None;
                            self.sleep = None;
                        }
                        ready
                    }
                    None => Poll::Pending,
                }
            }
        }
    } else {
        /// A boxed future the driver can hold.
        pub(crate) type BoxFuture<T> = futures::future::BoxFuture<'static, T>;

        /// `Send` natively, nothing in the browser (one thread, `!Send` JS handles).
        pub(crate) trait MaybeSend: Send {}
        impl<T: Send> MaybeSend for T {}

        /// Runs the driver on the current tokio runtime.
        ///
        /// # Panics
        ///
        /// Outside a tokio runtime, like `tokio::spawn`.
        pub(crate) fn spawn(future: impl Future<Output = ()> + MaybeSend + 'static) {
            tokio::spawn(future);
        }

        /// A seed for the backoff jitter: the clock's nanoseconds mixed with
        /// a per-process counter, so clients started together still differ.
        pub(crate) fn seed() -> u64 {
            use std::sync::atomic::{AtomicU64, Ordering};
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            nanos ^ COUNTER.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed) ^ u64::from(std::process::id())
        }

        /// One re-armable timer.
        pub(crate) struct Timer {
            deadline: Option<Instant>,
            sleep: Pin<Box<tokio::time::Sleep>>,
        }

        impl Timer {
            pub(crate) fn new() -> Timer {
                Timer {
                    deadline: None,
                    sleep: Box::pin(tokio::time::sleep_until(tokio::time::Instant::now())),
                }
            }

            /// Arms the timer for `deadline` (or disarms it), then polls it.
            pub(crate) fn poll_at(&mut self, deadline: Option<Instant>, cx: &mut Context<'_>) -> Poll<()> {
                let Some(at) = deadline else {
                    if self.deadline.take().is_some() {
                        // Disarm: push the old deadline out of reach, so it
                        // does not wake the driver for nothing.
                        let far = tokio::time::Instant::now() + std::time::Duration::from_secs(86_400 * 365);
                        self.sleep.as_mut().reset(far);
                    }
                    return Poll::Pending;
                };
                if self.deadline != Some(at) {
                    self.deadline = Some(at);
                    self.sleep.as_mut().reset(at);
                }
                let ready = self.sleep.as_mut().poll(cx);
                if ready.is_ready() {
                    self.deadline = None;
                }
                ready
            }
        }
    }
}
