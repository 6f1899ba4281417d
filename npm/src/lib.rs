//! The npm package `wstether` (README-npm.md): wstether's JavaScript facade
//! (feature `js`), linked as a cdylib alone. A crate that is also an rlib,
//! as the root crate is, gets no LTO from cargo: this one does.
pub use wstether::*;

/// The package's allocator: talc instead of Rust's default dlmalloc, ~6.7 KB
/// smaller (~2.5 KB gzip; BENCHMARKS.md, "Bundle size"; talc's own
/// benchmarks find it faster too). An allocator is the final artifact's
/// choice: this crate is the package's, so it chooses here; Rust apps on
/// wstether keep theirs.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static TALC: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();
