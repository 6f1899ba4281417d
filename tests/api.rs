//! Properties of the public types that users rely on natively.
#![cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]

use wstether::{Connection, Error, Event, Events, Frame, Options, StreamRef};

fn send_sync<T: Send + Sync>() {}
fn send<T: Send>() {}

#[test]
fn native_handles_cross_threads() {
    send_sync::<Connection>();
    send::<Events>();
    send_sync::<Event>();
    send_sync::<Error>();
    send_sync::<Frame>();
    send_sync::<Options>();
    send_sync::<StreamRef>();
}

#[test]
fn errors_are_std_errors() {
    fn is_error<E: std::error::Error + Send + Sync + 'static>() {}
    is_error::<Error>();
}
