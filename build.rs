//! The one place the target predicate is written: `browser` (wasm32 in a
//! browser, web-sys) and `native` (everything else, tokio), used as
//! `#[cfg(browser)]` / `#[cfg(native)]` throughout `src/`.
//!
//! Cargo.toml's `[target.'cfg(...)'.dependencies]` tables cannot see these
//! aliases (Cargo evaluates them before any build script runs), so they keep
//! the raw predicate.

fn main() {
    // cfg_aliases registers each alias for check-cfg (no `unexpected_cfgs`).
    cfg_aliases::cfg_aliases! {
        browser: { all(target_arch = "wasm32", target_os = "unknown") },
        native: { not(browser) },
    }
}
