//! Your own connector ([`Options::connector`](crate::Options::connector)): the stream under TLS and
//! the WebSocket handshake, opened by the application for each attempt.

use std::fmt;
#[cfg(native)]
use std::future::Future;
#[cfg(native)]
use std::io;

/// Where a connector is asked to connect: the host, port and scheme of the
/// URL given to `open` (or `connect`), for one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectTarget {
    host: String,
    port: u16,
    secure: bool,
}

impl ConnectTarget {
    #[cfg_attr(browser, allow(dead_code))]
    pub(crate) fn new(host: &str, port: u16, secure: bool) -> ConnectTarget {
        ConnectTarget {
            host: host.to_owned(),
            port,
            secure,
        }
    }

    /// The URL's host: a name, or an IP address (an IPv6 one without
    /// brackets). TLS checks the server's certificate against it.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The URL's port (80 for `ws://`, 443 for `wss://` when it has none).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `"ws"` or `"wss"`.
    pub fn scheme(&self) -> &'static str {
        if self.secure {
            "wss"
        } else {
            "ws"
        }
    }

    /// Whether TLS runs over the stream the connector returns (`wss://`).
    pub fn is_secure(&self) -> bool {
        self.secure
    }
}

cfg_if::cfg_if! {
    if #[cfg(browser)] {
        /// A connector kept by [`Options`](crate::Options); a browser refuses it at `open`.
        #[derive(Clone)]
        pub(crate) struct Connector;

    } else {
        use std::sync::Arc;

        use tokio::io::{AsyncRead, AsyncWrite};

        use crate::rt::BoxFuture;

        /// A byte stream under the WebSocket: TCP, TLS, a tunnel or what a
        /// connector returned.
        pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
        impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

        type Connect = dyn Fn(ConnectTarget) -> BoxFuture<io::Result<Box<dyn Io>>> + Send + Sync;

        /// A connector kept by [`Options`](crate::Options), its stream type erased.
        #[derive(Clone)]
        pub(crate) struct Connector(Arc<Connect>);

        impl Connector {
            /// Keeps `connector`, its stream type erased.
            pub(crate) fn new<F, Fut, S>(connector: F) -> Connector
            where
                F: Fn(ConnectTarget) -> Fut + Send + Sync + 'static,
                Fut: Future<Output = io::Result<S>> + Send + 'static,
                S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
            {
                let erased = move |target: ConnectTarget| -> BoxFuture<io::Result<Box<dyn Io>>> {
                    let opening = connector(target);
                    Box::pin(async move { Ok(Box::new(opening.await?) as Box<dyn Io>) })
                };
                Connector(Arc::new(erased))
            }

            /// The connector's identity: clones share it (for sharing
            /// HTTP/2 connections between connections with the same one).
            pub(crate) fn address(&self) -> usize {
                Arc::as_ptr(&self.0) as *const () as usize
            }

            pub(crate) fn connect(&self, target: ConnectTarget) -> BoxFuture<io::Result<Box<dyn Io>>> {
                (self.0)(target)
            }
        }

    }
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Connector")
    }
}

#[cfg(all(test, native))]
mod tests {
    use crate::ConnectTarget;

    #[test]
    fn connect_target_shows_host_port_and_scheme() {
        let target = ConnectTarget::new("::1", 443, true);
        assert_eq!(
            (target.host(), target.port(), target.scheme()),
            ("::1", 443, "wss")
        );
        assert!(target.is_secure());
        assert_eq!(ConnectTarget::new("a", 80, false).scheme(), "ws");
    }
}
