//! `wstether-testkit`: runs the wstether scriptable WebSocket test server.
//!
//! ```text
//! wstether-testkit [--port P] [--host 127.0.0.1] [--token T]
//!                  [--http2 on|off|no-connect-protocol|max-streams=N]
//! ```
//!
//! `--http2` (default `off`) is [`wstether_testkit::TestServer::start_http2`]'s mode: HTTP/2
//! with prior knowledge beside HTTP/1.1 on the same port, the CONNECT
//! protocol enabled (`on`, `max-streams=N`) or not.
//!
//! With `--token T`, `/_control/stats` includes `"token":"T"`, so that a
//! script can check that the server answering on the port is the one it
//! started (and not one left over from an earlier run).
//!
//! Prints one line, `LISTENING ws://HOST:PORT`, to stdout once listening, then
//! serves until SIGINT/SIGTERM or until its stdin is closed (so it never
//! outlives a parent that dies). Only loopback hosts are accepted.

// The raw predicate (this crate has no build script): the server needs
// tokio's sockets, so a browser wasm32 build (`--all-targets`) gets an
// empty main.
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
mod cli;

#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
fn main() -> std::process::ExitCode {
    cli::main()
}

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
fn main() {}
