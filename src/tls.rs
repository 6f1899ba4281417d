//! Your own TLS configuration ([`Options::tls_config`](crate::Options::tls_config)) and the crypto
//! provider chosen by feature.

use std::fmt;
#[cfg(native)]
use std::sync::Arc;

#[cfg(native)]
use tokio_rustls::rustls;

/// A rustls client configuration for `wss://` (and `https://` proxies),
/// given to [`Options::tls_config`](crate::Options::tls_config).
///
/// Natively it is made from an `Arc<rustls::ClientConfig>` (or a
/// `rustls::ClientConfig`) with `From`: build it with the rustls that
/// wstether re-exports (`wstether::rustls`), so the versions always match.
///
/// In a browser there is none to make: the browser does TLS itself, with its
/// own certificate store, and rustls is not part of the browser build.
#[derive(Clone)]
pub struct TlsConfig {
    #[cfg(native)]
    pub(crate) config: Arc<rustls::ClientConfig>,
    #[cfg(browser)]
    _none: (),
}

#[cfg(native)]
impl From<Arc<rustls::ClientConfig>> for TlsConfig {
    fn from(config: Arc<rustls::ClientConfig>) -> TlsConfig {
        TlsConfig { config }
    }
}

#[cfg(native)]
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

/// A client certificate chain and its private key (DER), for
/// [`Options::tls_client_certificate_der`](crate::Options::tls_client_certificate_der). Its `Debug` shows neither.
#[derive(Clone, PartialEq, Eq, Hash)]
#[cfg_attr(browser, allow(dead_code))]
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

/// The crypto provider for the configurations wstether builds (the
/// client's default one): `aws-lc-rs` when that
/// feature is on (the one added wins over the default), else `ring`; with
/// neither, the process-level default if the application installed one.
/// Never rustls' implicit choice, which panics when both are compiled in.
#[cfg(native)]
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

#[cfg(all(test, native))]
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
