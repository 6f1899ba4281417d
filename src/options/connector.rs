//! The connector option of the builder; the type is in `src/connector.rs`.

use std::future::Future;
use std::io;

use super::Options;
use crate::connector::{ConnectTarget, Connector};

#[cfg(browser)]
impl Options {
    /// Opens the stream under TLS and the WebSocket handshake
    /// yourself (natively: a Unix socket, a DNS override, an
    /// existing stream). **Browser:** the browser opens its
    /// WebSocket's connection itself; `open` refuses this option
    /// there with [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported).
    pub fn connector<F, Fut, S>(mut self, connector: F) -> Options
    where
        F: Fn(ConnectTarget) -> Fut + 'static,
        Fut: Future<Output = io::Result<S>> + 'static,
        S: 'static,
    {
        let _ = connector;
        self.connector = Some(Connector);
        self
    }
}

#[cfg(native)]
impl Options {
    /// Opens the stream under TLS and the WebSocket handshake
    /// yourself, for every attempt (the first connection and each
    /// reconnect): `connector` is called with the URL's
    /// [`ConnectTarget`] and returns any tokio stream, such as a
    /// `UnixStream`, a `TcpStream` to an address of your choosing (a
    /// DNS override), or an existing stream. For `wss://`, TLS then
    /// runs over it (checking the certificate against the URL's
    /// host), then the WebSocket handshake, exactly as over the TCP
    /// connection wstether would have made.
    ///
    /// The connector replaces the whole route below TLS: no DNS
    /// lookup, no Happy Eyeballs and no proxy. The environment's
    /// proxy variables are not read, and an explicit
    /// [`proxy`](Options::proxy) set beside a connector is refused
    /// at `open` with
    /// [`ErrorKind::InvalidOption`](crate::ErrorKind::InvalidOption).
    /// An error it returns is an [`ErrorKind::Connect`](crate::ErrorKind::Connect),
    /// retried like any other; [`Retry::connect_timeout`](crate::Retry::connect_timeout)
    /// bounds it.
    ///
    /// ```no_run
    /// # #[cfg(unix)] {
    /// use wstether::{ConnectTarget, Options};
    /// let options = Options::default().connector(|_target: ConnectTarget| {
    ///     tokio::net::UnixStream::connect("/run/app.sock")
    /// });
    /// # let _ = options; }
    /// ```
    ///
    /// **Browser:** the browser opens its WebSocket's connection
    /// itself; `open` refuses this option there with
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported).
    pub fn connector<F, Fut, S>(mut self, connector: F) -> Options
    where
        F: Fn(ConnectTarget) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = io::Result<S>> + Send + 'static,
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        self.connector = Some(Connector::new(connector));
        self
    }
}
