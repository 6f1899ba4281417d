//! Your own TLS configuration ([`Options::tls_config`]) and the crypto
//! provider chosen by feature.

use std::fmt;
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
use std::sync::Arc;

use crate::options::Options;

#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
use tokio_rustls::rustls;

/// A rustls client configuration for `wss://` (and `https://` proxies),
/// given to [`Options::tls_config`].
///
/// Natively it is made from an `Arc<rustls::ClientConfig>` (or a
/// `rustls::ClientConfig`) with `From`: build it with the rustls that
/// wstether re-exports (`wstether::rustls`), so the versions always match.
///
/// In a browser there is none to make: the browser does TLS itself, with its
/// own certificate store, and rustls is not part of the browser build.
#[derive(Clone)]
pub struct TlsConfig {
    #[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
    pub(crate) config: Arc<rustls::ClientConfig>,
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    _none: (),
}

#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
impl From<Arc<rustls::ClientConfig>> for TlsConfig {
    fn from(config: Arc<rustls::ClientConfig>) -> TlsConfig {
        TlsConfig { config }
    }
}

#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
impl From<rustls::ClientConfig> for TlsConfig {
    fn from(config: rustls::ClientConfig) -> TlsConfig {
        TlsConfig {
            config: Arc::new(config),
        }
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Its keys (a client certificate's) are never shown.
        f.debug_struct("TlsConfig").finish_non_exhaustive()
    }
}

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

/// A client certificate chain and its private key (DER), for
/// [`Options::tls_client_certificate_der`]. Its `Debug` shows neither.
#[derive(Clone)]
#[cfg_attr(all(target_arch = "wasm32", target_os = "unknown"), allow(dead_code))]
pub(crate) struct ClientCertificate {
    pub(crate) chain_der: Vec<Vec<u8>>,
    pub(crate) key_der: Vec<u8>,
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ClientCertificate({} certificates, key hidden)",
            self.chain_der.len()
        )
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

/// The crypto provider for the configurations wstether builds (the
/// client's default one and the testkit's server): `aws-lc-rs` when that
/// feature is on (the one added wins over the default), else `ring`; with
/// neither, the process-level default if the application installed one.
/// Never rustls' implicit choice, which panics when both are compiled in.
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
pub(crate) fn crypto_provider() -> Result<Arc<rustls::crypto::CryptoProvider>, String> {
    #[cfg(feature = "aws-lc-rs")]
    return Ok(Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    #[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
    return Ok(Arc::new(rustls::crypto::ring::default_provider()));
    #[cfg(not(any(feature = "ring", feature = "aws-lc-rs")))]
    return rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .ok_or_else(|| {
            "no rustls crypto provider: enable wstether's `ring` or `aws-lc-rs` feature, \
             install a process default (CryptoProvider::install_default), or give \
             Options::tls_config"
                .to_owned()
        });
}

#[cfg(all(test, not(all(target_arch = "wasm32", target_os = "unknown"))))]
mod tests {
    use super::*;

    /// Which provider the features choose, told by its key provider's name.
    #[test]
    fn tls_config_default_provider_follows_the_features() {
        let provider = match crypto_provider() {
            Ok(provider) => provider,
            // Neither feature (nothing in these tests installs a default).
            Err(why) if cfg!(not(any(feature = "ring", feature = "aws-lc-rs"))) => {
                assert!(why.contains("no rustls crypto provider"), "{why}");
                return;
            }
            Err(why) => panic!("{why}"),
        };
        let named = format!("{:?}", provider.key_provider);
        if cfg!(feature = "aws-lc-rs") {
            // Also when `ring` is on: the feature added wins over the default.
            assert!(named.contains("AwsLc"), "{named}");
        } else if cfg!(feature = "ring") {
            assert!(named.contains("Ring"), "{named}");
        }
    }
}
