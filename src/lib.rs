//! # wstether
//!
//! A WebSocket client with the Websocket model of
//! [Gun](https://ninenines.eu/docs/en/gun/2.1/guide/websocket/), the Erlang
//! HTTP client, and one API on two targets: native apps on tokio and
//! browser apps on `wasm32-unknown-unknown`.
//!
//! Two levels:
//!
//! - [`Socket`] is one handle for "the current Websocket": it upgrades
//!   again after every reconnect, holds sends while down, and has
//!   `send`/`recv`/`state`/`close` ([`SocketState`], [`SocketEvent`]), a
//!   `Stream` and a `Sink`, and a cloneable [`SocketSender`]; `connect`
//!   waits for the first Websocket, `open` does not. Start here.
//! - Below it, Gun's split, documented in the rest of this page:
//!   a [`Connection`] and a [`StreamRef`] per upgrade, events for everything.
//!
//! - [`Connection::open`] opens a connection and returns a cloneable handle
//!   and an [`Events`] stream; the connection reconnects by itself, with
//!   backoff ([`Retry`]).
//! - [`Connection::ws_upgrade`] upgrades a path to a Websocket, with
//!   optional headers and subprotocols ([`Upgrade`]); success or failure
//!   arrives as [`Event::Upgraded`] or [`Event::UpgradeFailed`].
//! - [`Connection::ws_send`] sends one frame or many, in order; a close
//!   frame closes cleanly and stops reconnecting.
//! - Every frame from the server is one [`Event::Frame`]; errors and
//!   connection changes are events too ([`Event::Error`], [`Event::Up`],
//!   [`Event::Down`]).
//! - A [`Keepalive`] pings (or, in a browser, sends a heartbeat) and
//!   declares a silent peer dead. Natively it is on by default (a ping
//!   after 20 s of silence, dead 10 s later); in a browser it is off by
//!   default, since a heartbeat message needs the server's answer.
//! - After a reconnect the Websocket is **not** upgraded again unless you
//!   ask ([`Options::auto_upgrade`]), as with Gun: ask again on each
//!   [`Event::Down`] that will reconnect; an upgrade asked while the
//!   connection is down waits for the next [`Event::Up`].
//! - No frame is lost silently: frames that were not written come back,
//!   in [`Event::Down`] or in the [`Error`].
//!
//! ```no_run
//! use futures::StreamExt;
//! use wstether::{Connection, Event, Frame, Options, Upgrade};
//!
//! # async fn run() -> Result<(), wstether::Error> {
//! let (conn, mut events) = Connection::open("ws://127.0.0.1:8080", Options::default())?;
//! let upgrade = Upgrade::new("/websocket").protocol("mychat");
//! let mut stream = conn.ws_upgrade_with(upgrade.clone())?;
//! while let Some(event) = events.next().await {
//!     match event {
//!         Event::Upgraded { protocol, .. } => {
//!             println!("upgraded, protocol {protocol:?}");
//!             // One text frame, one binary frame, and close: no reconnect after it.
//!             let frames = [Frame::text("Hello!"), Frame::binary(vec![1, 2, 3]), Frame::close_normal()];
//!             // A connection that dropped meanwhile gives the frames back.
//!             if let Err(error) = conn.ws_send(stream, frames) {
//!                 println!("not sent: {error}");
//!             }
//!         }
//!         Event::UpgradeFailed { error, .. } => return Err(error),
//!         Event::Frame { frame, .. } => println!("got {frame:?}"),
//!         Event::Down { reason, unsent, will_reconnect, .. } => {
//!             println!("down: {reason}; {} unsent", unsent.len());
//!             // A reconnect does not upgrade again (as with Gun): ask now;
//!             // the upgrade waits for the next Up.
//!             if will_reconnect {
//!                 stream = conn.ws_upgrade_with(upgrade.clone())?;
//!             }
//!         }
//!         _ => {}
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! `tests/readme_example.rs` runs this loop against a real server: one
//! upgrade per connection, also when the server restarts mid-session.
//!
//! Natively wstether runs on tokio only (its transport is tokio's, and each
//! connection is one tokio task); [`Connection::open`] outside a tokio
//! runtime is an [`Error`], not a panic. In a browser it runs on the page's
//! event loop.
//!
//! ## The life of a frame
//!
//! How a frame crosses the modules in each direction, and who owns it at
//! each step, is drawn in `docs/ARCHITECTURE.md` in the repository, with
//! the layers and where to change what: on both targets a frame goes
//! through the same handles, mailbox, driver and core; only the transport
//! differs, and a frame accepted by `ws_send` is written or comes back,
//! exactly once.
//!
//! Logging: wstether logs through [`tracing`] and never formats URL
//! userinfo, query strings or header values outside a short safe list.
//! tokio-tungstenite's own `log` output at `trace` level for the
//! `tungstenite` target prints the whole upgrade request (path, query and
//! every header, `authorization` included) and frame contents: keep that
//! target below `trace` where requests carry secrets.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]
#![forbid(unsafe_op_in_unsafe_fn)]
// Every normal dependency is used (clippy -D warnings in .ci/test-all fails otherwise);
// off in test builds, where the dev-dependencies would be reported.
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod browser_policy;
mod compression;
mod connection;
mod connector;
mod core;
mod driver;
mod error;
mod event;
mod frame;
mod frame_rules;
#[cfg(all(feature = "js", browser))]
mod js;
mod mailbox;
mod observer;
mod options;
#[cfg(browser)]
mod page;
#[cfg(native)]
mod payload_arena;
mod proxy;
mod redact;
mod request;
mod rt;
mod socket;
mod stats;
mod time;
mod tls;
mod transport;
mod url;
mod utf8_bytes;

pub use compression::Compression;
pub use connection::{connect, Connection, Events};
pub use connector::ConnectTarget;
pub use error::{Error, ErrorKind};
pub use event::{DownReason, Event, StreamRef};
pub use frame::{
    CloseCode, CloseFrame, Frame, Frames, MAX_CLOSE_REASON_BYTES, MAX_CONTROL_PAYLOAD_BYTES,
};
/// The `http` crate, whose types (`HeaderMap`, `StatusCode`, `HeaderValue`...)
/// wstether's API takes and returns: use it without adding the crate yourself.
pub use http;
pub use observer::{FrameInfo, Observer, Opcode};
pub use options::{
    FirstConnection, Heartbeat, Http2, Keepalive, Options, ProviderError, ReplyMatcher, Retry,
    RetryDecision, MAX_MESSAGE_SIZE_CEILING,
};
pub use proxy::Proxy;
pub use request::Upgrade;
pub use rt::{MaybeSend, MaybeSendSync};
pub use socket::{Socket, SocketEvent, SocketSender, SocketState};
pub use stats::Stats;
pub use tls::TlsConfig;
pub use utf8_bytes::Utf8Bytes;

/// The rustls that wstether uses (natively), to build a
/// [`TlsConfig`] of the same version: `wstether::rustls::ClientConfig`.
#[cfg(native)]
#[cfg_attr(docsrs, doc(cfg(not(target_arch = "wasm32"))))]
pub use tokio_rustls::rustls;

// The README's examples compile as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
#[cfg(doctest)]
#[doc = include_str!("../docs/refused-upgrades.md")]
struct RefusedUpgradesDoctests;
#[cfg(doctest)]
#[doc = include_str!("../docs/proxies.md")]
struct ProxiesDoctests;
#[cfg(doctest)]
#[doc = include_str!("../docs/tls.md")]
struct TlsDoctests;
