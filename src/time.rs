//! `Instant` for both targets: tokio's natively (one clock for the core and
//! the timers, so a paused tokio clock drives the whole connection in
//! tests), `web-time`'s in the browser (where `std::time::Instant::now`
//! panics).

cfg_if::cfg_if! {
    if #[cfg(browser)] {
        pub(crate) use web_time::Instant;
    } else {
        pub(crate) use tokio::time::Instant;
    }
}
