use super::*;

fn server(proxy: &Proxy) -> &Server {
    match &proxy.kind {
        Kind::Server(server) => server,
        Kind::Env => panic!("not a server"),
    }
}

#[test]
fn proxy_urls_are_parsed() {
    let p = Proxy::http("http://us%40er:p%3Ass@proxy.corp:3128").unwrap();
    let s = server(&p);
    assert_eq!(s.scheme, Scheme::Http);
    assert_eq!((s.host.as_str(), s.port), ("proxy.corp", 3128));
    let c = s.credentials.as_ref().unwrap();
    assert_eq!((c.user.as_str(), c.password.as_str()), ("us@er", "p:ss"));

    let s = server(&Proxy::http("proxy.corp").unwrap()).clone();
    assert_eq!((s.scheme, s.port), (Scheme::Http, 80));
    assert!(s.credentials.is_none());
    let s = server(&Proxy::https("https://[::1]").unwrap()).clone();
    assert_eq!(
        (s.scheme, s.host.as_str(), s.port),
        (Scheme::Https, "::1", 443)
    );
    let s = server(&Proxy::socks5("socks5h://u@10.0.0.1").unwrap()).clone();
    assert_eq!((s.scheme, s.port), (Scheme::Socks5h, 1080));
    assert_eq!(s.credentials.unwrap().password, "");
    let s = server(&Proxy::socks5("h:9050").unwrap()).clone();
    assert_eq!((s.scheme, s.port), (Scheme::Socks5, 9050));

    for (bad, make) in [
        (
            "socks5://h:1",
            Proxy::http as fn(&str) -> Result<Proxy, Error>,
        ),
        ("http://h:1", Proxy::socks5),
        ("http://h:1", Proxy::https),
        ("ftp://h", Proxy::http),
        ("http://", Proxy::http),
        ("http://h/path", Proxy::http),
        ("http://h:99999", Proxy::http),
    ] {
        assert_eq!(
            make(bad).unwrap_err().kind(),
            ErrorKind::InvalidUrl,
            "{bad}"
        );
    }
}

#[cfg(native)]
#[test]
fn credentials_are_never_shown() {
    let p = Proxy::http("http://alice:hunter2@proxy:3128").unwrap();
    let shown = format!("{p:?} {p:#?}");
    assert_eq!(shown, "Proxy(http://proxy:3128) Proxy(http://proxy:3128)");
    let options = crate::Options::default().proxy(p);
    assert!(!format!("{options:?}").contains("hunter2"));
    for bad in [
        "ftp://alice:hunter2@proxy",
        "http://alice:hunter2@proxy/x?token=hunter2",
        "http://alice:hunter2@:99",
    ] {
        let e = Proxy::http(bad).unwrap_err();
        let shown = format!("{e} {e:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("alice"),
            "{shown}"
        );
    }
    let env = |name: &str| (name == "https_proxy").then(|| "gopher://alice:hunter2@p".into());
    let e = route_from_env(&env, true, "h").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Proxy);
    let shown = format!("{e} {e:?}");
    assert!(shown.contains("https_proxy"), "{shown}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("alice"),
        "{shown}"
    );
}

#[test]
fn percent_decoding() {
    assert_eq!(percent_decode("a%20b%zz%4"), "a b%zz%4");
    assert_eq!(percent_decode("%C3%A9%"), "é%");
}

#[cfg(native)]
#[test]
fn basic_auth_is_base64_of_user_colon_password() {
    // RFC 7617's example.
    assert_eq!(
        basic_auth("Aladdin", "open sesame"),
        "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    );
}

/// The environment table: which variable wins, per target scheme.
#[cfg(native)]
#[test]
fn the_environment_is_read_like_curl_and_reqwest() {
    let env = |vars: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    };
    let shown = |vars, secure, host| {
        route_from_env(&env(vars), secure, host)
            .unwrap()
            .map(|s| format!("{s:?}"))
    };
    let none: Option<String> = None;
    let is = |s: &str| Some(s.to_owned());
    assert_eq!(shown(&[], true, "h"), none);
    let both = &[("HTTPS_PROXY", "http://s:1"), ("HTTP_PROXY", "http://p:2")];
    assert_eq!(shown(both, true, "h"), is("http://s:1"));
    assert_eq!(shown(both, false, "h"), is("http://p:2"));
    // Lower case first.
    let lower = &[("https_proxy", "http://l:1"), ("HTTPS_PROXY", "http://u:1")];
    assert_eq!(shown(lower, true, "h"), is("http://l:1"));
    // Empty is unset.
    let empty = &[("https_proxy", ""), ("HTTPS_PROXY", "http://u:1")];
    assert_eq!(shown(empty, true, "h"), is("http://u:1"));
    // ALL_PROXY is the fallback for both.
    let all = &[("ALL_PROXY", "socks5h://a:1"), ("http_proxy", "p:3")];
    assert_eq!(shown(all, true, "h"), is("socks5h://a:1"));
    assert_eq!(shown(all, false, "h"), is("http://p:3"));
    // httpoxy: HTTP_PROXY is not read under CGI.
    let cgi = &[("REQUEST_METHOD", "GET"), ("HTTP_PROXY", "http://evil:1")];
    assert_eq!(shown(cgi, false, "h"), none);
    // NO_PROXY, lower case first.
    let np = &[
        ("HTTPS_PROXY", "http://s:1"),
        ("no_proxy", "example.com, 10.0.0.0/8"),
        ("NO_PROXY", "*"),
    ];
    assert_eq!(shown(np, true, "ws.example.com"), none);
    assert_eq!(shown(np, true, "10.2.3.4"), none);
    assert_eq!(shown(np, true, "other.org"), is("http://s:1"));
    // Loopback is not exempt by itself.
    assert_eq!(shown(both, false, "127.0.0.1"), is("http://p:2"));
    assert_eq!(shown(both, false, "localhost"), is("http://p:2"));
}
