//! The TLS options of the builder; the types are in `src/tls.rs`.

use super::Options;
use crate::tls::{ClientCertificate, TlsConfig};

impl Options {
    /// Uses `config` as given for every TLS handshake: with the `wss://`
    /// server, and with an `https://` proxy (as reqwest does: one TLS policy
    /// for the client; a client certificate is only sent to a server that
    /// asks for one). Custom roots, certificate pinning (a custom verifier),
    /// ALPN and client certificates (mTLS) are all set there:
    ///
    /// ```
    /// # #[cfg(not(target_arch = "wasm32"))] {
    /// use std::sync::Arc;
    /// use wstether::{rustls, Options};
    /// let mut roots = rustls::RootCertStore::empty();
    /// roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    /// let provider = Arc::new(rustls::crypto::ring::default_provider());
    /// let config = rustls::ClientConfig::builder_with_provider(provider)
    ///     .with_safe_default_protocol_versions()
    ///     .unwrap()
    ///     .with_root_certificates(roots)
    ///     .with_no_client_auth(); // or .with_client_auth_cert(chain, key)
    /// let options = Options::default().tls_config(Arc::new(config));
    /// # let _ = options; }
    /// ```
    ///
    /// Without it (the default), wstether builds its own: the bundled
    /// webpki roots, plus [`tls_native_roots`](Options::tls_native_roots)
    /// and [`add_root_certificate_der`](Options::add_root_certificate_der),
    /// with the crypto provider of the crate's feature (`aws-lc-rs` if on,
    /// else `ring`, the default), never rustls' process-level default, so
    /// no other crate's choice can make it panic. Those two options are
    /// conveniences for the built-in configuration: combined with
    /// `tls_config` they are refused at `open` with
    /// [`ErrorKind::InvalidOption`](crate::ErrorKind::InvalidOption) (put
    /// the roots in your configuration instead).
    ///
    /// **Browser:** no [`TlsConfig`] can be made there (the browser does TLS
    /// itself); were one given, `open` would refuse it with
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported).
    pub fn tls_config(mut self, config: impl Into<TlsConfig>) -> Options {
        self.tls_config = Some(config.into());
        self
    }
}

impl Options {
    /// Presents a client certificate (mutual TLS) to a `wss://` server that
    /// asks for one: `cert_chain_der`, the client's certificate first (DER),
    /// and its private key `key_der` (PKCS#8, PKCS#1 or SEC1 DER). A
    /// convenience for wstether's own TLS configuration (the bundled roots,
    /// plus the root options), as
    /// [`add_root_certificate_der`](Options::add_root_certificate_der) is;
    /// with [`tls_config`](Options::tls_config) it is refused at `open` with
    /// [`ErrorKind::InvalidOption`](crate::ErrorKind::InvalidOption) (use
    /// rustls' `with_client_auth_cert` there). A key that does not parse,
    /// or does not match the certificate, fails `open` with
    /// [`ErrorKind::InvalidOption`](crate::ErrorKind::InvalidOption). The
    /// key is kept in memory with the options; `Debug` never shows it.
    ///
    /// **Browser:** a browser asks the user to pick a certificate from its
    /// own store; `open` refuses this option with
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported).
    pub fn tls_client_certificate_der(
        mut self,
        cert_chain_der: Vec<Vec<u8>>,
        key_der: Vec<u8>,
    ) -> Options {
        self.tls_client_certificate = Some(ClientCertificate {
            chain_der: cert_chain_der,
            key_der,
        });
        self
    }
}
