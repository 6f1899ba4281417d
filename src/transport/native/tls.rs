//! The TLS layer: the client configuration (the user's
//! [`Options::tls_config`], or one built from the root options with the
//! feature's crypto provider) and the handshake over the dialed stream.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::h2::{ALPN_H2, ALPN_HTTP1};
use crate::connector::Io;
use crate::error::{Error, ErrorKind};
use crate::options::Options;
use crate::tls::ClientCertificate;

/// What the TLS configuration is made from, taken from the options at dial.
#[derive(Clone)]
pub(crate) struct Settings {
    /// [`Options::tls_config`]: used as given.
    user: Option<Arc<rustls::ClientConfig>>,
    extra_roots_der: Vec<Vec<u8>>,
    native_roots: bool,
    client_certificate: Option<ClientCertificate>,
}

/// The TLS settings as a key: equal only for the same roots, client
/// certificate and `tls_config` instance (kept, so that its address is not
/// reused while the key lives). For sharing HTTP/2 connections.
#[derive(PartialEq, Eq, Hash)]
pub(crate) struct SettingsKey {
    user: Option<usize>,
    _user_kept: Option<ByAddress>,
    extra_roots_der: Vec<Vec<u8>>,
    native_roots: bool,
    client_certificate: Option<ClientCertificate>,
}

/// A `tls_config` kept alive by a key that names it by address.
struct ByAddress(#[allow(dead_code)] Arc<rustls::ClientConfig>);

impl PartialEq for ByAddress {
    fn eq(&self, _: &ByAddress) -> bool {
        true // compared by `SettingsKey::user`
    }
}

impl Eq for ByAddress {}

impl std::hash::Hash for ByAddress {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

impl Settings {
    /// These settings as a key (see [`SettingsKey`]).
    pub(crate) fn key(&self) -> SettingsKey {
        SettingsKey {
            user: self.user.as_ref().map(|c| Arc::as_ptr(c) as usize),
            _user_kept: self.user.clone().map(ByAddress),
            extra_roots_der: self.extra_roots_der.clone(),
            native_roots: self.native_roots,
            client_certificate: self.client_certificate.clone(),
        }
    }

    pub(crate) fn from_options(options: &Options) -> Settings {
        Settings {
            user: options.tls_config.as_ref().map(|c| c.config.clone()),
            extra_roots_der: options.root_certificates.clone(),
            native_roots: options.tls_native_roots,
            client_certificate: options.tls_client_certificate.clone(),
        }
    }

    /// The configuration for a handshake that offers HTTP/2 and HTTP/1.1
    /// by ALPN: a copy of [`config`](Self::config)'s with the ALPN list
    /// set, never the user's changed; a configuration of the user's that
    /// sets its own ALPN protocols is used as given.
    pub(crate) fn config_offering_h2(&self) -> Result<Arc<rustls::ClientConfig>, Error> {
        let config = self.config()?;
        if !config.alpn_protocols.is_empty() {
            return Ok(config);
        }
        let mut copy = (*config).clone();
        copy.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_HTTP1.to_vec()];
        Ok(Arc::new(copy))
    }

    /// The configuration for an HTTP/1.1 handshake: [`config`](Self::config)'s,
    /// or, when the user's offers `h2` by ALPN, a copy without it (the
    /// Websocket will speak HTTP/1.1 on that connection).
    pub(crate) fn config_http1(&self) -> Result<Arc<rustls::ClientConfig>, Error> {
        let config = self.config()?;
        if !config
            .alpn_protocols
            .iter()
            .any(|p| p.as_slice() == ALPN_H2)
        {
            return Ok(config);
        }
        let mut copy = (*config).clone();
        copy.alpn_protocols.retain(|p| p.as_slice() != ALPN_H2);
        if copy.alpn_protocols.is_empty() {
            copy.alpn_protocols.push(ALPN_HTTP1.to_vec());
        }
        Ok(Arc::new(copy))
    }

    /// The configuration for a handshake: the user's, or the one built
    /// from the root options (the plain one built once per process).
    pub(crate) fn config(&self) -> Result<Arc<rustls::ClientConfig>, Error> {
        if let Some(user) = &self.user {
            return Ok(user.clone());
        }
        let tls_error =
            |e: rustls::Error| Error::new(ErrorKind::Tls, "TLS configuration").with_source(e);
        let client = self.client_certificate.as_ref();
        if self.extra_roots_der.is_empty() && !self.native_roots && client.is_none() {
            static PLAIN: OnceLock<Result<Arc<rustls::ClientConfig>, rustls::Error>> =
                OnceLock::new();
            return PLAIN
                .get_or_init(|| build(&[], false, None).map(Arc::new))
                .clone()
                .map_err(tls_error);
        }
        build(&self.extra_roots_der, self.native_roots, client)
            .map(Arc::new)
            .map_err(tls_error)
    }
}

/// Checks the TLS options at `open`: every root certificate parses, the
/// system store can be read, the client certificate loads, and these
/// conveniences are not combined with a configuration of the user's
/// (which holds its own).
pub(crate) fn check_options(options: &Options) -> Result<(), Error> {
    if options.tls_config.is_some() {
        let named = if !options.root_certificates.is_empty() {
            Some("add_root_certificate_der")
        } else if options.tls_native_roots {
            Some("tls_native_roots")
        } else if options.tls_client_certificate.is_some() {
            Some("tls_client_certificate_der")
        } else {
            None
        };
        if let Some(named) = named {
            return Err(Error::new(
                ErrorKind::InvalidOption,
                format!(
                    "{named} cannot be combined with tls_config: put the roots and the \
                     client certificate in the rustls ClientConfig given to tls_config"
                ),
            ));
        }
        return Ok(());
    }
    for der in &options.root_certificates {
        rustls::RootCertStore::empty()
            .add(CertificateDer::from(der.clone()))
            .map_err(|e| Error::new(ErrorKind::InvalidOption, "root certificate").with_source(e))?;
    }
    if options.tls_native_roots {
        native_roots().map_err(|why| {
            Error::new(ErrorKind::InvalidOption, format!("tls_native_roots: {why}"))
        })?;
    }
    if let Some(client) = &options.tls_client_certificate {
        // Builds it once: the key parses and matches the certificate.
        build(&[], false, Some(client)).map_err(|e| {
            Error::new(ErrorKind::InvalidOption, "tls_client_certificate_der").with_source(e)
        })?;
    }
    Ok(())
}

/// The TLS handshake with `host` over `io`, and how long it took.
pub(crate) async fn handshake(
    config: Arc<rustls::ClientConfig>,
    host: &str,
    address: &str,
    io: Box<dyn Io>,
) -> Result<(TlsStream<Box<dyn Io>>, Duration), Error> {
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| Error::new(ErrorKind::Tls, format!("server name {host:?}")).with_source(e))?;
    let started = Instant::now();
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, io)
        .await
        .map_err(|e| {
            Error::new(ErrorKind::Tls, format!("handshake with {address}")).with_source(e)
        })?;
    Ok((tls, started.elapsed()))
}

/// The TLS error inside an I/O error, if it is one: with TLS 1.3 a server
/// that refuses the client's certificate says so after the handshake, so
/// the refusal arrives as a read error during the upgrade.
pub(crate) fn tls_error_in(io: &std::io::Error) -> Option<&rustls::Error> {
    io.get_ref()?.downcast_ref::<rustls::Error>()
}

/// The operating system's certificate store, read once per process
/// ([`Options::tls_native_roots`]); the error says why it could not be.
fn native_roots() -> Result<&'static [CertificateDer<'static>], String> {
    static ROOTS: OnceLock<Result<Vec<CertificateDer<'static>>, String>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            if found.certs.is_empty() {
                let why: Vec<String> = found.errors.iter().map(|e| e.to_string()).collect();
                return Err(format!(
                    "no certificate found in the operating system's store ({})",
                    why.join("; ")
                ));
            }
            Ok(found.certs)
        })
        .as_deref()
        .map_err(Clone::clone)
}

/// wstether's own configuration: the webpki roots, the system's if asked,
/// the added ones, the client certificate if given, and the crypto
/// provider of the crate's feature.
fn build(
    extra_roots_der: &[Vec<u8>],
    native: bool,
    client: Option<&ClientCertificate>,
) -> Result<rustls::ClientConfig, rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if native {
        let certs = native_roots().map_err(rustls::Error::General)?;
        // Skips what rustls cannot parse (some stores hold odd certificates).
        roots.add_parsable_certificates(certs.iter().cloned());
    }
    for der in extra_roots_der {
        roots.add(CertificateDer::from(der.clone()))?;
    }
    let provider = crate::tls::crypto_provider().map_err(rustls::Error::General)?;
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let Some(client) = client else {
        return Ok(builder.with_no_client_auth());
    };
    let chain = client
        .chain_der
        .iter()
        .cloned()
        .map(CertificateDer::from)
        .collect();
    let key = PrivateKeyDer::try_from(client.key_der.clone())
        .map_err(|why| rustls::Error::General(format!("private key: {why}")))?;
    builder.with_client_auth_cert(chain, key)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a crypto feature and without a process default, `wss://`
    /// is a typed TLS error that says what to do, never a panic.
    #[cfg(not(any(feature = "ring", feature = "aws-lc-rs")))]
    #[test]
    fn tls_config_without_a_crypto_feature_is_a_typed_error() {
        let error = Settings::from_options(&Options::default())
            .config()
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Tls);
        assert!(format!("{error}").contains("aws-lc-rs"), "{error}");
    }

    /// The user's configuration is used as given: the same one, not a copy.
    #[test]
    fn tls_config_is_used_as_given() {
        let provider = crate::tls::crypto_provider();
        let Ok(provider) = provider else { return };
        let config = Arc::new(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        );
        let options = Options::default().tls_config(config.clone());
        let used = Settings::from_options(&options).config().unwrap();
        assert!(Arc::ptr_eq(&used, &config));
    }
}
