//! wstether: skeleton (being written).
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(all(
    feature = "testkit",
    not(all(target_arch = "wasm32", target_os = "unknown"))
))]
pub mod testkit;
