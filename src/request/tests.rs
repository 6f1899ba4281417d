use super::*;

#[test]
fn protocols_come_from_the_builder_and_the_header() {
    let valid = Upgrade::new("/ws")
        .protocol("a")
        .header("Sec-WebSocket-Protocol", "b, c")
        .header("x-token", "t")
        .validate()
        .unwrap();
    assert_eq!(valid.protocols, ["a", "b", "c"]);
    assert_eq!(valid.headers.len(), 1);
    assert_eq!(valid.path.as_str(), "/ws");
}

#[test]
fn the_browser_s_header_name_check_agrees_with_http() {
    let long = "a".repeat(0x10000);
    let names = [
        "x-token",
        "Sec-WebSocket-Protocol",
        "AUTHORIZATION",
        "!#$%&'*+-.^_`|~09azAZ",
        "",
        "a b",
        "a:b",
        "x\r\ny",
        "é",
        "a\0",
        "(x)",
        "a/b",
        &long[1..],
        &long,
    ];
    for name in names {
        let http = http::HeaderName::from_bytes(name.as_bytes()).ok();
        let by_hand = header_name_by_hand(name);
        assert_eq!(
            by_hand.as_deref(),
            http.as_ref().map(|n| n.as_str()),
            "{:?}",
            &name[..name.len().min(20)]
        );
    }
}

#[test]
fn header_injection_is_refused() {
    for value in ["a\r\nx-evil: 1", "a\nb", "a\0b"] {
        let err = Upgrade::new("/").header("x", value).validate().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidHeader, "{value:?}");
    }
    let err = Upgrade::new("/")
        .header("x\r\ny", "v")
        .validate()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidHeader);
}

#[test]
fn handshake_headers_are_refused() {
    for name in ["Host", "upgrade", "Sec-WebSocket-Key", "connection"] {
        let err = Upgrade::new("/").header(name, "x").validate().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidHeader, "{name}");
    }
}

#[test]
fn debug_hides_queries_and_header_values() {
    let upgrade = Upgrade::new("/p?token=SECRET")
        .header("Authorization", "Bearer SECRET")
        .header("origin", "https://app")
        .protocol("chat");
    let valid = upgrade.validate().unwrap();
    for shown in [
        format!("{upgrade:?}"),
        format!("{upgrade:#?}"),
        format!("{valid:?}"),
        format!("{valid:#?}"),
    ] {
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("/p?…"), "{shown}");
        assert!(shown.contains("https://app"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        assert!(shown.contains("chat"), "{shown}");
    }
}

#[test]
fn errors_do_not_echo_secrets() {
    let bad = [
        Upgrade::new("p?token=SECRET"),
        Upgrade::new("/p?token=SECRET#x"),
        Upgrade::new("ws://u:SECRET@h/p"),
        Upgrade::new("/").header("authorization: Bearer SECRET", "v"),
        Upgrade::new("/").header("authorization", "Bearer SECRET\r\n"),
        Upgrade::new("/").protocol("token SECRET"),
    ];
    for upgrade in bad {
        let err = upgrade.validate().unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
    }
}

#[test]
fn bad_paths_and_protocols_are_refused() {
    for path in ["ws", "", "/a b", "/a#frag"] {
        let err = Upgrade::new(path).validate().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidPath, "{path:?}");
    }
    let err = Upgrade::new("/").protocol("a b").validate().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidHeader);
}
