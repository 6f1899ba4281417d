//! The runtime pieces each target provides: spawning the driver, one timer,
//! a seed for jitter, and the bounds on what a connection keeps and runs
//! ([`MaybeSendSync`], [`MaybeSend`]: `Send` natively, nothing in a browser).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::time::Instant;

/// The bound on the closures a connection keeps ([`Options::auto_upgrade_with`](crate::Options::auto_upgrade_with)'s
/// provider, [`Heartbeat::message`](crate::Heartbeat::message)'s matcher): `Send + Sync` natively, so
/// that a [`Connection`](crate::Connection) is `Send + Sync` and its task
/// can run on any thread; nothing in a browser, where everything runs on
/// the page's one thread and closures may hold JavaScript values (which
/// are not `Send`).
///
/// Implemented for every type that meets the bound; there is nothing to
/// implement.
#[doc = ""]
#[cfg_attr(browser, doc = "On this target (a browser): no bound.")]
#[cfg_attr(native, doc = "On this target (native): `Send + Sync`.")]
pub trait MaybeSendSync: sealed::SendSyncIfNative {}

impl<T: ?Sized + sealed::SendSyncIfNative> MaybeSendSync for T {}

mod sealed {
    /// The target's half of [`MaybeSendSync`](super::MaybeSendSync).
    #[cfg(native)]
    pub trait SendSyncIfNative: Send + Sync {}
    #[cfg(native)]
    impl<T: ?Sized + Send + Sync> SendSyncIfNative for T {}

    /// The target's half of [`MaybeSendSync`](super::MaybeSendSync).
    #[cfg(browser)]
    pub trait SendSyncIfNative {}
    #[cfg(browser)]
    impl<T: ?Sized> SendSyncIfNative for T {}

    /// The target's half of [`MaybeSend`](super::MaybeSend).
    #[cfg(native)]
    pub trait SendIfNative: Send {}
    #[cfg(native)]
    impl<T: ?Sized + Send> SendIfNative for T {}

    /// The target's half of [`MaybeSend`](super::MaybeSend).
    #[cfg(browser)]
    pub trait SendIfNative {}
    #[cfg(browser)]
    impl<T: ?Sized> SendIfNative for T {}
}

/// The bound on the futures a connection runs (an upgrade provider's):
/// `Send` natively, so that the connection's task can run on any thread;
/// nothing in a browser, where a future may hold JavaScript values.
///
/// Implemented for every type that meets the bound; there is nothing to
/// implement.
#[doc = ""]
#[cfg_attr(browser, doc = "On this target (a browser): no bound.")]
#[cfg_attr(native, doc = "On this target (native): `Send`.")]
pub trait MaybeSend: sealed::SendIfNative {}

impl<T: ?Sized + sealed::SendIfNative> MaybeSend for T {}

#[cfg(browser)]
mod task;
#[cfg(browser)]
pub(crate) use task::wake_from_event;

cfg_if::cfg_if! {
    if #[cfg(browser)] {
        /// A boxed future the driver can hold (not `Send` in the browser).
        pub(crate) type BoxFuture<T> = futures::future::LocalBoxFuture<'static, T>;

        /// Runs the driver on the browser's event loop, on the task of
        /// [`task`], which the socket's callbacks poll in place.
        pub(crate) fn spawn(future: impl Future<Output = ()> + MaybeSend + 'static) {
            task::spawn(future);
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
