//! Certificates made at test time (rcgen, ring) for the TLS tests: a test
//! CA, servers and clients it signs, and rustls client configurations
//! built with the rustls wstether re-exports.
#![allow(dead_code)]

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
use wstether::rustls;
use wstether_testkit::TestServer;

/// A test CA: its certificate (DER) and what signs certificates.
pub struct Ca {
    pub der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate (DER) and its private key (PKCS#8 DER).
pub struct Leaf {
    pub der: Vec<u8>,
    pub key_der: Vec<u8>,
}

pub fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Ca {
        der: cert.der().to_vec(),
        issuer: Issuer::new(params, key),
    }
}

impl Ca {
    /// A server certificate for `names`.
    pub fn server(&self, names: &[&str]) -> Leaf {
        self.leaf(names, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate (for mutual TLS).
    pub fn client(&self, name: &str) -> Leaf {
        self.leaf(&[name], ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn leaf(&self, names: &[&str], usage: ExtendedKeyUsagePurpose) -> Leaf {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        }
    }
}

/// A TLS test server whose certificate, signed by `ca`, names `names`.
pub async fn server_for(ca: &Ca, names: &[&str]) -> TestServer {
    let leaf = ca.server(names);
    TestServer::start_tls(vec![leaf.der], leaf.key_der)
        .await
        .unwrap()
}

/// A test server on `localhost` signed by `ca` that requires a client
/// certificate issued by `client_ca`.
pub async fn mtls_server(ca: &Ca, client_ca: &Ca) -> TestServer {
    let leaf = ca.server(&["localhost"]);
    TestServer::start_mtls(vec![leaf.der], leaf.key_der, vec![client_ca.der.clone()])
        .await
        .unwrap()
}

/// The provider of wstether's crypto feature (as a user would pick one).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    #[cfg(feature = "aws-lc-rs")]
    return Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    #[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
    return Arc::new(rustls::crypto::ring::default_provider());
    #[cfg(not(any(feature = "ring", feature = "aws-lc-rs")))]
    return rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .expect("a crypto feature, or a process default");
}

/// A rustls configuration of the user's trusting only `ca`, presenting
/// `client` if given.
pub fn client_config(ca: &Ca, client: Option<&Leaf>) -> Arc<rustls::ClientConfig> {
    let builder = builder_trusting(&ca.der);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some(leaf) => builder
            .with_client_auth_cert(
                vec![rustls::pki_types::CertificateDer::from(leaf.der.clone())],
                rustls::pki_types::PrivateKeyDer::try_from(leaf.key_der.clone()).unwrap(),
            )
            .unwrap(),
    };
    Arc::new(config)
}

/// A rustls configuration trusting only the certificate `ca_der`.
pub fn trusting(ca_der: &[u8]) -> Arc<rustls::ClientConfig> {
    Arc::new(builder_trusting(ca_der).with_no_client_auth())
}

fn builder_trusting(
    ca_der: &[u8],
) -> rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(ca_der.to_vec()))
        .unwrap();
    rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
}
