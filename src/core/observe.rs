//! The connection's [`Observer`], called so that it cannot hurt the
//! connection: natively a panic in it is caught, logged once, and the
//! observer is dropped; no observer costs one branch per call.

use std::sync::Arc;

use crate::observer::Observer;

pub(crate) struct Observe(Option<Arc<dyn Observer>>);

impl Observe {
    pub(crate) fn new(observer: Option<Arc<dyn Observer>>) -> Observe {
        Observe(observer)
    }

    /// Whether there is an observer.
    #[inline]
    pub(crate) fn is_set(&self) -> bool {
        self.0.is_some()
    }

    /// Calls `f` with the observer, if there is one. The core's own
    /// bookkeeping for the step is done before each call.
    #[inline]
    pub(crate) fn call(&mut self, f: impl FnOnce(&dyn Observer)) {
        let Some(observer) = &self.0 else {
            return;
        };
        cfg_if::cfg_if! {
            if #[cfg(browser)] {
                // No unwinding on wasm32-unknown-unknown: a panic aborts.
                f(&**observer);
            } else {
                let call = std::panic::AssertUnwindSafe(|| f(&**observer));
                if std::panic::catch_unwind(call).is_err() {
                    tracing::error!(
                        "wstether: the observer panicked; it is not called again on this connection"
                    );
                    self.0 = None;
                }
            }
        }
    }
}

impl std::fmt::Debug for Observe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Observe(set)"
        } else {
            "Observe(none)"
        })
    }
}
