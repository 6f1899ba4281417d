//! `Instant` for both targets: the standard one natively, `web-time`'s in
//! the browser (where `std::time::Instant::now` panics).

cfg_if::cfg_if! {
    if #[cfg(all(target_arch = "wasm32", target_os = "unknown"))] {
        pub(crate) use web_time::Instant;
    } else {
        pub(crate) use std::time::Instant;
    }
}
