//! The policy table against the README and against the checks that use it.

use std::time::Duration;

use super::*;
use crate::frame::Frame;
use crate::options::{Keepalive, Retry};

const SEC: Duration = Duration::from_secs(1);

fn retry(retry: Retry) -> Options {
    Options::default().retry(retry)
}

/// The rows of README.md's "Native and browser" table, as written.
fn readme_rows() -> Vec<[String; 3]> {
    let readme = include_str!("../../README.md");
    let section = readme
        .split("\n## Native and browser\n")
        .nth(1)
        .expect("README.md has a \"Native and browser\" section");
    let section = section.split("\n## ").next().unwrap_or(section);
    section
        .lines()
        .filter(|line| line.starts_with('|'))
        // The header and the separator.
        .skip(2)
        .map(|line| {
            let cells: Vec<String> = line
                .trim_matches('|')
                .split(" | ")
                .map(|cell| cell.trim().to_string())
                .collect();
            assert_eq!(cells.len(), 3, "a row of three cells: {line}");
            [cells[0].clone(), cells[1].clone(), cells[2].clone()]
        })
        .collect()
}

#[test]
fn the_readme_table_is_the_policy_table() {
    let table: Vec<[String; 3]> = TABLE
        .iter()
        .map(|d| [d.feature, d.native, d.browser].map(String::from))
        .collect();
    assert_eq!(readme_rows(), table);
}

/// Options that set exactly one thing a browser refuses.
fn one_refused_option_each() -> Vec<(Difference, Options)> {
    let base = || Options::default().no_keepalive();
    vec![
        (ROOT_CERTIFICATES, base().add_root_certificate_der(vec![1])),
        (READ_BUFFER_SIZE, base().read_buffer_size(4096)),
        (
            CONNECT_TIMEOUT,
            base().retry(Retry::default().connect_timeout(Duration::from_secs(1))),
        ),
        (PROXY, base().no_proxy()),
        (
            PROXY,
            base().proxy(Proxy::http("http://user:pw@proxy:3128").unwrap()),
        ),
        (TLS_NATIVE_ROOTS, base().tls_native_roots(true)),
        (SHOW_PINGS, base().silence_pings(false)),
        (HTTP2, base().http2(crate::Http2::Require)),
        (
            PING_KEEPALIVE,
            Options::default().keepalive(Keepalive::every(Duration::from_secs(1))),
        ),
    ]
}

#[test]
fn each_refused_option_gives_its_reason_from_the_table() {
    for (difference, options) in one_refused_option_each() {
        let err = browser_unsupported(&options).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{}", difference.feature);
        assert!(
            err.to_string()
                .ends_with(&format!(": {}", difference.reason())),
            "{}: {err}",
            difference.feature
        );
    }
}

#[test]
fn what_a_browser_does_itself_is_accepted() {
    let message =
        Keepalive::every(Duration::from_secs(1)).heartbeat(Heartbeat::echo(Frame::text("ping")));
    for options in [
        Options::default().no_keepalive(),
        Options::default()
            .no_keepalive()
            .http2(crate::Http2::Prefer),
        Options::default().no_keepalive().http2(crate::Http2::Off),
        Options::default().keepalive(message),
        Options::default()
            .no_keepalive()
            .proxy(Proxy::from_env())
            .retry(Retry::default().connect_timeout(DEFAULT_CONNECT_TIMEOUT)),
    ] {
        browser_unsupported(&options).unwrap();
    }
}

/// Every refusal has a reason, and every difference says what a browser
/// does, so that no row of the table is an empty promise.
#[test]
fn every_difference_says_what_the_browser_does() {
    for difference in TABLE {
        let text = match difference.policy {
            Policy::Refused(reason) => reason,
            Policy::Emulated(how) => how,
            Policy::Hidden(what) => what,
        };
        assert!(!text.is_empty(), "{}", difference.feature);
        assert!(!difference.native.is_empty() && !difference.browser.is_empty());
    }
}

#[test]
fn the_browser_refuses_what_it_cannot_honour() {
    let ping = Keepalive::every(SEC).timeout(SEC);
    let message = ping.clone().heartbeat(Heartbeat::echo(Frame::text("hb")));
    let refused = [
        (
            "root certificate",
            Options::default().add_root_certificate_der(vec![1, 2, 3]),
            "root certificates",
        ),
        (
            "read_buffer_size",
            Options::default().read_buffer_size(1 << 16),
            "read_buffer_size",
        ),
        (
            "connect_timeout",
            retry(Retry::default().connect_timeout(SEC)),
            "connect_timeout",
        ),
        (
            "silence_pings",
            Options::default().silence_pings(false),
            "silence_pings",
        ),
        (
            "ping keepalive",
            Options::default().keepalive(ping),
            "ping frames",
        ),
    ];
    for (name, options, why) in refused {
        let err = browser_unsupported(&options).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{name}");
        assert!(err.to_string().contains(why), "{name}: {err}");
    }
    let accepted = [
        Options::default().no_keepalive(),
        Options::default().keepalive(message),
        retry(Retry::never()).no_keepalive().silence_pings(true),
        retry(Retry::default().connect_timeout(DEFAULT_CONNECT_TIMEOUT)).no_keepalive(),
    ];
    for options in accepted {
        browser_unsupported(&options).unwrap();
    }
}

/// The browser decides about compression: the option is accepted there.
#[test]
fn compression_is_accepted_in_a_browser_and_checked_everywhere() {
    let on = Options::default()
        .no_keepalive()
        .compression(crate::Compression::deflate().level(9));
    browser_unsupported(&on).unwrap();
    on.validate().unwrap();
    for (bad, why) in [
        (crate::Compression::deflate().level(10), "level"),
        (
            crate::Compression::deflate().client_max_window_bits(8),
            "client_max_window_bits",
        ),
        (
            crate::Compression::deflate().server_max_window_bits(Some(16)),
            "server_max_window_bits",
        ),
    ] {
        let err = Options::default().compression(bad).validate().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidOption);
        assert!(err.to_string().contains(why), "{err}");
    }
}

/// The browser transport calls this check at `open`: a connector and a
/// TLS configuration are refused there, never ignored.
#[cfg(native)]
#[test]
fn connector_tls_config_and_client_certificate_are_refused_in_a_browser() {
    let connector = Options::default().connector(|_target: crate::ConnectTarget| async {
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
