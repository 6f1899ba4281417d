//! Your own connector ([`Options::connector`]): the stream under TLS and
//! the WebSocket handshake, opened by the application for each attempt.

use std::fmt;
use std::future::Future;
use std::io;

use crate::options::Options;

/// Where a connector is asked to connect: the host, port and scheme of the
/// URL given to `open` (or `connect`), for one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectTarget {
    host: String,
    port: u16,
    secure: bool,
}

impl ConnectTarget {
    #[cfg_attr(all(target_arch = "wasm32", target_os = "unknown"), allow(dead_code))]
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
    if #[cfg(all(target_arch = "wasm32", target_os = "unknown"))] {
        /// A connector kept by [`Options`]; a browser refuses it at `open`.
        #[derive(Clone)]
        pub(crate) struct Connector;

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
    } else {
        use std::sync::Arc;

        use tokio::io::{AsyncRead, AsyncWrite};

        use crate::rt::BoxFuture;

        /// A byte stream under the WebSocket: TCP, TLS, a tunnel or what a
        /// connector returned.
        pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
        impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

        type Connect = dyn Fn(ConnectTarget) -> BoxFuture<io::Result<Box<dyn Io>>> + Send + Sync;

        /// A connector kept by [`Options`], its stream type erased.
        #[derive(Clone)]
        pub(crate) struct Connector(Arc<Connect>);

        impl Connector {
            pub(crate) fn connect(&self, target: ConnectTarget) -> BoxFuture<io::Result<Box<dyn Io>>> {
                (self.0)(target)
            }
        }

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
                S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
            {
                let erased = move |target: ConnectTarget| -> BoxFuture<io::Result<Box<dyn Io>>> {
                    let opening = connector(target);
                    Box::pin(async move { Ok(Box::new(opening.await?) as Box<dyn Io>) })
                };
                self.connector = Some(Connector(Arc::new(erased)));
                self
            }
        }
    }
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Connector")
    }
}

#[cfg(all(test, not(all(target_arch = "wasm32", target_os = "unknown"))))]
mod tests {
    use crate::error::ErrorKind;
    use crate::options::{browser_unsupported, Options};
    use crate::ConnectTarget;

    /// The browser transport calls this check at `open`: a connector and a
    /// TLS configuration are refused there, never ignored.
    #[test]
    fn connector_tls_config_and_client_certificate_are_refused_in_a_browser() {
        let connector = Options::default().connector(|_target: ConnectTarget| async {
            Err::<tokio::net::TcpStream, _>(std::io::Error::other("unused"))
        });
        let error = browser_unsupported(&connector).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unsupported);
        assert!(error.to_string().contains("connector"), "{error}");

        let certificate = Options::default().tls_client_certificate_der(vec![vec![1]], vec![2]);
        let error = browser_unsupported(&certificate).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unsupported);
        assert!(error.to_string().contains("client certificate"), "{error}");

        // Without a crypto feature no configuration can be built.
        let Ok(provider) = crate::tls::crypto_provider() else {
            return;
        };
        let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(tokio_rustls::rustls::RootCertStore::empty())
            .with_no_client_auth();
        let error = browser_unsupported(&Options::default().tls_config(config)).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unsupported);
        assert!(error.to_string().contains("tls_config"), "{error}");
    }

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
