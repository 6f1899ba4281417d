//! The npm package `wstether` (README-npm.md): wstether's JavaScript facade
//! (feature `js`), linked as a cdylib alone. A crate that is also an rlib,
//! as the root crate is, gets no LTO from cargo: this one does.
pub use wstether::*;
