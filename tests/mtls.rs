//! Your own rustls `ClientConfig` (`Options::tls_config`) against the
//! testkit over TLS, and mutual TLS: a server that requires a client
//! certificate accepts the right one, and refuses none or another issuer's
//! with a typed `ErrorKind::Tls` (an event, and `connect`'s error).
#![cfg(all(native, any(feature = "ring", feature = "aws-lc-rs")))]

mod common;
mod tls_support;

use common::{next, options, until};
use tls_support::{ca, client_config, mtls_server, server_for};
use wstether::{connect, Connection, ErrorKind, Event, Frame, Options, Retry};

/// Upgrades and echoes one frame: the connection works end to end.
async fn echoes(url: &str, options: Options) {
    let (conn, mut events) = Connection::open(url, options).unwrap();
    let stream = conn.ws_upgrade("/mtls").unwrap();
    until(&mut events, common::is_upgraded).await;
    conn.ws_send(stream, Frame::text("hello")).unwrap();
    assert!(
        matches!(next(&mut events).await, Event::Frame { frame, .. } if frame == Frame::text("hello"))
    );
}

/// The error of the first event that carries one: `Error` (a failed
/// dial), or `UpgradeFailed` (with TLS 1.3 a server refuses a client
/// certificate only after the handshake, so the refusal arrives while the
/// upgrade is read).
async fn first_error(events: &mut wstether::Events) -> wstether::Error {
    let failed = |e: &Event| matches!(e, Event::Error { .. } | Event::UpgradeFailed { .. });
    match until(events, failed).await.0 {
        Event::Error { error, .. } | Event::UpgradeFailed { error, .. } => error,
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn mtls_accepted_with_a_client_certificate_from_the_trusted_issuer() {
    let (server_ca, client_ca) = (ca("server CA"), ca("client CA"));
    let server = mtls_server(&server_ca, &client_ca).await;
    let client = client_ca.client("alice");
    let config = client_config(&server_ca, Some(&client));
    echoes(&server.url(""), options().tls_config(config)).await;
    assert_eq!(server.requests()[0].path, "/mtls");
}

#[tokio::test]
async fn mtls_refused_without_a_client_certificate_is_a_tls_error() {
    let (server_ca, client_ca) = (ca("server CA"), ca("client CA"));
    let server = mtls_server(&server_ca, &client_ca).await;
    let config = client_config(&server_ca, None);
    let (conn, mut events) =
        Connection::open(&server.url(""), options().tls_config(config.clone())).unwrap();
    conn.ws_upgrade("/").unwrap();
    let error = first_error(&mut events).await;
    assert_eq!(error.kind(), ErrorKind::Tls, "{error}");
    // "… received fatal alert: CertificateRequired"
    assert!(error.to_string().contains("CertificateRequired"), "{error}");
    assert!(server.requests().is_empty(), "nothing got past TLS");
    drop(conn);

    let options = options().retry(Retry::never()).tls_config(config);
    let error = connect(&server.url("/"), options).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Tls, "{error}");
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn mtls_refused_with_a_client_certificate_from_another_issuer() {
    let (server_ca, client_ca, stranger) = (ca("server CA"), ca("client CA"), ca("other CA"));
    let server = mtls_server(&server_ca, &client_ca).await;
    let client = stranger.client("mallory");
    let config = client_config(&server_ca, Some(&client));
    let options = options().retry(Retry::never()).tls_config(config);
    let error = connect(&server.url("/"), options).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Tls, "{error}");
    // "… received fatal alert: UnknownCA" (the server names the reason)
    assert!(error.to_string().contains("alert"), "{error}");
    assert!(server.requests().is_empty());
}

/// The convenience for wstether's own configuration: the server's root
/// added, the client certificate given as DER.
#[tokio::test]
async fn mtls_accepted_with_tls_client_certificate_der() {
    let (server_ca, client_ca) = (ca("server CA"), ca("client CA"));
    let server = mtls_server(&server_ca, &client_ca).await;
    let client = client_ca.client("alice");
    let options = options()
        .add_root_certificate_der(server_ca.der.clone())
        .tls_client_certificate_der(vec![client.der.clone()], client.key_der.clone());
    // Debug never shows the key.
    let shown = format!("{options:?}");
    assert!(shown.contains("key hidden"), "{shown}");
    echoes(&server.url(""), options).await;
}

#[tokio::test]
async fn mtls_client_certificate_that_is_not_one_is_refused_at_open() {
    let (client_ca, other_ca) = (ca("client CA"), ca("other CA"));
    let (client, other) = (client_ca.client("alice"), other_ca.client("bob"));
    for (chain, key, why) in [
        (vec![client.der.clone()], vec![1, 2, 3], "not a key"),
        // A key that does not match the certificate.
        (
            vec![client.der.clone()],
            other.key_der.clone(),
            "another's key",
        ),
    ] {
        let options = options().tls_client_certificate_der(chain, key);
        let error = Connection::open("wss://localhost:1/", options).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidOption, "{why}: {error}");
        assert!(
            error.to_string().contains("tls_client_certificate_der"),
            "{error}"
        );
    }
}

/// The user's configuration is used as given: it trusts only the test CA,
/// which no other option names, and that is enough.
#[tokio::test]
async fn tls_config_with_a_custom_root_is_trusted() {
    let ca = ca("custom root");
    let server = server_for(&ca, &["localhost"]).await;
    echoes(
        &server.url(""),
        options().tls_config(client_config(&ca, None)),
    )
    .await;
}

/// ... and nothing else: the default roots are not added to it.
#[tokio::test]
async fn tls_config_trusting_another_root_refuses_the_server() {
    let (ca_of_server, other) = (ca("server CA"), ca("other"));
    let server = server_for(&ca_of_server, &["localhost"]).await;
    let options = options().tls_config(client_config(&other, None));
    let (conn, mut events) = Connection::open(&server.url(""), options).unwrap();
    conn.ws_upgrade("/").unwrap();
    let error = first_error(&mut events).await;
    assert_eq!(error.kind(), ErrorKind::Tls, "{error}");
    assert!(error.to_string().contains("UnknownIssuer"), "{error}");
}

#[tokio::test]
async fn tls_config_combined_with_the_root_options_is_refused() {
    let ca = ca("custom root");
    let config = client_config(&ca, None);
    for (options, named) in [
        (
            options()
                .tls_config(config.clone())
                .add_root_certificate_der(ca.der.clone()),
            "add_root_certificate_der",
        ),
        (
            options().tls_config(config.clone()).tls_native_roots(true),
            "tls_native_roots",
        ),
        (
            options()
                .tls_config(config.clone())
                .tls_client_certificate_der(vec![ca.der.clone()], vec![1]),
            "tls_client_certificate_der",
        ),
    ] {
        let error = Connection::open("wss://localhost:1/", options).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidOption, "{error}");
        assert!(error.to_string().contains(named), "{error}");
    }
}

/// wstether's own configuration names its provider explicitly: with both
/// crypto features compiled in and no process-level default installed
/// (rustls' implicit choice would panic here), `wss://` connects.
#[tokio::test]
async fn tls_config_default_needs_no_process_level_crypto_provider() {
    // Nothing in this test binary installs one.
    assert!(wstether::rustls::crypto::CryptoProvider::get_default().is_none());
    let ca = ca("wstether test CA");
    let server = server_for(&ca, &["localhost"]).await;
    echoes(
        &server.url(""),
        options().add_root_certificate_der(ca.der.clone()),
    )
    .await;
}
