//! Redaction: how URLs, paths and header values are shown in errors,
//! `Debug` output and logs, so that credentials never are.
//!
//! A URL's userinfo (`user:password@`) and its query (`?token=...`) become
//! `…`; a header value is shown only when its name is on a short safe list.
//! Anything that cannot be parsed is cut before the first character that
//! could start a secret, never echoed whole.

use std::fmt;

// `url::Url` natively, the browser's `URL` in the browser.
use crate::url;

/// What stands in for a hidden part.
const HIDDEN: &str = "…";

/// What stands in for a hidden header value.
pub(crate) const REDACTED: &str = "<redacted>";

/// The longest redacted URL or path shown; longer ones are cut (an error
/// message is for people, and a megabyte of URL helps no one).
const MAX_SHOWN_CHARS: usize = 200;

/// Headers whose values carry no credentials and help debugging. Every
/// other header value (`authorization`, `cookie`, `x-api-key`, anything
/// custom) is hidden.
const SAFE_HEADERS: &[&str] = &[
    "date",
    "server",
    "upgrade",
    "connection",
    "content-length",
    "retry-after",
    "user-agent",
    "origin",
    "accept",
    "accept-encoding",
    "accept-language",
    "content-type",
    "cache-control",
    "pragma",
];

/// A URL, or a path with its query, fit to show: `ws://…@host:port/path?…`.
///
/// The userinfo and the query become `…`, and so does a fragment. The
/// userinfo is found the robust way first ([`userinfo`]), since a password
/// may hold an unencoded `?`, `#` or `@` that a URL parser would read as the
/// start of the query, the fragment or the host. Input that is not a URL (a
/// bare path, garbage) is cut at the first `?` or `#`, and everything up to
/// its last `@` is hidden, so a secret is never echoed even when the input
/// could not be understood.
pub(crate) fn url(raw: &str) -> String {
    shorten(match userinfo(raw) {
        Userinfo::None => without_userinfo(raw),
        Userinfo::Ambiguous { prefix } => format!("{prefix}{HIDDEN}"),
        Userinfo::Ends { prefix, rest } => {
            let shown = without_userinfo(&format!("{prefix}{rest}"));
            match shown.strip_prefix(prefix) {
                Some(tail) => format!("{prefix}{HIDDEN}@{tail}"),
                None => format!("{HIDDEN}@{shown}"),
            }
        }
    })
}

/// Where a URL's userinfo ends, read without a URL parser.
enum Userinfo<'a> {
    /// No `@` in the authority: no userinfo.
    None,
    /// The authority holds an `@` and a `?` or `#`: which is the password's
    /// and which the query's cannot be told; nothing after `prefix` is shown.
    Ambiguous { prefix: &'a str },
    /// The userinfo ends at an `@`; `rest` follows it.
    Ends { prefix: &'a str, rest: &'a str },
}

/// The authority runs from after `scheme://` (or `//`; the whole input when
/// it has neither, as in a proxy URL without a scheme) to the first `/`;
/// the userinfo ends at its last `@`.
fn userinfo(raw: &str) -> Userinfo<'_> {
    let start = raw.find("//").map_or(0, |at| at + 2);
    let (prefix, rest) = raw.split_at(start);
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    match authority.rfind('@') {
        None => Userinfo::None,
        Some(_) if authority.contains(['?', '#']) => Userinfo::Ambiguous { prefix },
        Some(at) => Userinfo::Ends {
            prefix,
            rest: &rest[at + 1..],
        },
    }
}

/// [`url`] for input whose authority holds no `@`.
fn without_userinfo(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(parsed) if !parsed.cannot_be_a_base() => parsed_url(&parsed),
        // `scheme:anything` (no `//`): nothing after the scheme is known to
        // be harmless.
        Ok(parsed) => format!("{}:{HIDDEN}", parsed.scheme()),
        Err(_) => unparsed(raw),
    }
}

fn parsed_url(parsed: &url::Url) -> String {
    let mut shown = format!("{}://", parsed.scheme());
    if !parsed.username().is_empty() || parsed.password().is_some() {
        shown.push_str(HIDDEN);
        shown.push('@');
    }
    shown.push_str(parsed.host_str().unwrap_or(""));
    if let Some(port) = parsed.port() {
        shown.push_str(&format!(":{port}"));
    }
    shown.push_str(parsed.path());
    if parsed.query().is_some() {
        shown.push('?');
        shown.push_str(HIDDEN);
    }
    if parsed.fragment().is_some() {
        shown.push('#');
        shown.push_str(HIDDEN);
    }
    shown
}

/// Cuts what cannot be parsed: the query and fragment go, and so does
/// whatever comes before an `@` (it may be `user:password`), keeping a
/// leading `scheme://` for context.
fn unparsed(raw: &str) -> String {
    let (before_query, rest) = match raw.find(['?', '#']) {
        Some(at) => (&raw[..at], &raw[at..at + 1]),
        None => (raw, ""),
    };
    let mut shown = String::new();
    match before_query.rfind('@') {
        Some(at) => {
            if let Some(scheme_end) = before_query[..at].find("://") {
                shown.push_str(&before_query[..scheme_end + 3]);
            }
            shown.push_str(HIDDEN);
            shown.push_str(&before_query[at..]);
        }
        None => shown.push_str(before_query),
    }
    if !rest.is_empty() {
        shown.push_str(rest);
        shown.push_str(HIDDEN);
    }
    shown
}

fn shorten(shown: String) -> String {
    match shown.char_indices().nth(MAX_SHOWN_CHARS) {
        Some((at, _)) => format!("{}{HIDDEN}", &shown[..at]),
        None => shown,
    }
}

/// Every `sec-websocket-*` header is safe too (protocol, extensions,
/// version, accept, key: none carries a credential).
const SAFE_PREFIX: &str = "sec-websocket-";

/// Whether the value of header `name` may be shown (case-insensitive).
pub(crate) fn is_safe_header(name: &str) -> bool {
    let safe_prefix = name
        .get(..SAFE_PREFIX.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(SAFE_PREFIX));
    safe_prefix
        || SAFE_HEADERS
            .iter()
            .any(|safe| safe.eq_ignore_ascii_case(name))
}

/// The value of header `name` fit to show: itself for a safe-listed
/// header, [`REDACTED`] for any other.
pub(crate) fn header_value<'a>(name: &str, value: &'a str) -> &'a str {
    if is_safe_header(name) {
        value
    } else {
        REDACTED
    }
}

/// A header name that failed validation, fit to show: the part before the
/// first character that is not allowed in a name, then `…`. (A caller who
/// wrote `"authorization: Bearer x"` as a name must not see the token.)
pub(crate) fn bad_token(raw: &str) -> String {
    let is_tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    match raw.find(|c: char| !is_tchar(c)) {
        Some(at) => shorten(format!("{}{HIDDEN}", &raw[..at])),
        None => shorten(raw.to_owned()),
    }
}

/// One header fit to show: the name cut at its first invalid character
/// ([`bad_token`]), the value per [`header_value`]. Subprotocols are shown
/// one by one, each cut like a name: a malformed list must not echo
/// whatever follows its first bad character.
pub(crate) fn header(name: &str, value: &str) -> (String, String) {
    let shown = if name.eq_ignore_ascii_case("sec-websocket-protocol") {
        value
            .split(',')
            .map(|protocol| bad_token(protocol.trim()))
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        header_value(name, value).to_owned()
    };
    (bad_token(name), shown)
}

/// Shows headers as a list of `(name, value)`, each through [`header`].
pub(crate) struct Headers(Vec<(String, String)>);

impl Headers {
    /// From `(name, value)` text pairs.
    pub(crate) fn new<'a>(headers: impl IntoIterator<Item = (&'a str, &'a str)>) -> Headers {
        Headers(
            headers
                .into_iter()
                .map(|(name, value)| header(name, value))
                .collect(),
        )
    }

    /// From validated (or received) headers; a value that is not text is
    /// shown as such, never as bytes.
    pub(crate) fn from_http<'a>(
        headers: impl IntoIterator<Item = (&'a http::HeaderName, &'a http::HeaderValue)>,
    ) -> Headers {
        Headers::new(
            headers
                .into_iter()
                .map(|(name, value)| (name.as_str(), value.to_str().unwrap_or("<not UTF-8>"))),
        )
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.0).finish()
    }
}

/// An HTTP status for an error message: `404 Not Found` natively; in a
/// browser, which never learns one (it hides the status of a refused
/// upgrade, and has no proxy to refuse a tunnel), only the code, keeping
/// `http`'s table of reason phrases (~2.5 KB) out of the bundle.
pub(crate) fn status(status: http::StatusCode) -> impl fmt::Display {
    #[cfg(native)]
    return status;
    #[cfg(browser)]
    return status.as_u16();
}

/// A float for an error message, written without `core::fmt`'s float
/// formatting (~10 KB of a browser bundle, for messages about bad options):
/// `NaN`, `inf`, `-inf`, or up to 6 decimals, in scientific notation (`1e300`,
/// `1.5e-9`) outside 1e-3 to 1e12. The digits of huge or tiny values may be
/// off in the last places; enough to see what was given.
pub(crate) struct Float(pub(crate) f64);

impl fmt::Display for Float {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let x = self.0;
        if x.is_nan() {
            return f.write_str("NaN");
        }
        if x.is_sign_negative() {
            f.write_str("-")?;
        }
        let mut a = x.abs();
        if a.is_infinite() {
            return f.write_str("inf");
        }
        let mut exp = 0i32;
        if a >= 1e12 {
            while a >= 10.0 {
                a /= 10.0;
                exp += 1;
            }
        }
        if a != 0.0 && a < 1e-3 {
            while a < 1.0 {
                a *= 10.0;
                exp -= 1;
            }
        }
        // Below 1e18 here: a u64 holds it.
        let micros = (a * 1e6 + 0.5) as u64;
        write!(f, "{}", micros / 1_000_000)?;
        let mut frac = micros % 1_000_000;
        if frac != 0 {
            let mut digits = 6;
            while frac % 10 == 0 {
                frac /= 10;
                digits -= 1;
            }
            write!(f, ".{frac:0digits$}")?;
        }
        if exp != 0 {
            write!(f, "e{exp}")?;
        }
        Ok(())
    }
}

/// A duration for an error message, in its largest whole unit (`30s`,
/// `100ms`, `1500ms`, `250µs`, `7ns`), written without `Duration`'s
/// `Debug`, whose decimal formatting costs ~2 KB of a browser bundle. The
/// same as `{:?}` for whole units.
pub(crate) struct Dur(pub(crate) std::time::Duration);

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (secs, nanos) = (self.0.as_secs(), self.0.subsec_nanos());
        if nanos == 0 {
            return write!(f, "{secs}s");
        }
        if secs >= 1_000_000_000 {
            return write!(f, "{secs}.{nanos:09}s");
        }
        // Below 1e18: a u64 holds it.
        let total = secs * 1_000_000_000 + u64::from(nanos);
        for (per, unit) in [(1_000_000, "ms"), (1_000, "µs")] {
            if total % per == 0 {
                return write!(f, "{}{unit}", total / per);
            }
        }
        write!(f, "{total}ns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_shown_without_core_fmt_float() {
        let cases = [
            (f64::NAN, "NaN"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (0.0, "0"),
            (-0.0, "-0"),
            (0.5, "0.5"),
            (-0.1, "-0.1"),
            (1.5, "1.5"),
            (2.0, "2"),
            (0.000001, "1e-6"),
            (123.456789, "123.456789"),
            (1e300, "1e300"),
            (-1e-9, "-1e-9"),
        ];
        for (x, shown) in cases {
            assert_eq!(Float(x).to_string(), shown, "{x}");
        }
        assert_eq!(Float(f64::MAX).to_string(), "1.797693e308");
    }

    #[test]
    fn durations_are_shown_in_whole_units() {
        use std::time::Duration;
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_secs(30), "30s"),
            (Duration::from_millis(100), "100ms"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_micros(250), "250µs"),
            (Duration::from_nanos(1_000_000_007), "1000000007ns"),
            (Duration::new(2_000_000_000, 5), "2000000000.000000005s"),
            (Duration::MAX, "18446744073709551615.999999999s"),
        ];
        for (d, shown) in cases {
            assert_eq!(Dur(d).to_string(), shown, "{d:?}");
        }
    }

    #[test]
    fn userinfo_and_query_are_hidden_in_urls() {
        let cases = [
            (
                "ws://user:hunter2@127.0.0.1:1/x?token=SECRET",
                "ws://…@127.0.0.1:1/x?…",
            ),
            ("wss://example.com/chat", "wss://example.com/chat"),
            ("ws://:pw@h/", "ws://…@h/"),
            ("ws://h/#frag", "ws://h/#…"),
            ("ws://[::1]:9000/a?b", "ws://[::1]:9000/a?…"),
            ("foo:user:hunter2@x", "…@x"),
            ("foo:hunter2", "foo:…"),
            ("/p?token=SECRET", "/p?…"),
            ("//user:hunter2@host/x?y", "//…@host/x?…"),
            // An `@` and a `?` or `#` before the path: a password with a
            // `?`, or a query with an `@`? Either way, nothing is shown.
            ("ws://alice:hun?ter2@host/", "ws://…"),
            ("ws://alice:hunter2?@host/", "ws://…"),
            ("ws://alice:hun#ter2@host/x?q", "ws://…"),
            ("ws://al@ice:hun@ter2@host:1/", "ws://…@host:1/"),
            ("ws://host?token=ab@hunter2", "ws://…"),
            ("alice:hun?ter2@proxy:3128", "…"),
            ("alice:hunter2@proxy:3128", "…@proxy:…"),
            ("ws://host/p?e=a@b", "ws://host/p?…"),
            ("not a url ?token=SECRET", "not a url ?…"),
            (
                "ws://us er:hunter2@ho st/x?token=SECRET",
                "ws://…@ho st/x?…",
            ),
            ("ws://a@b@c/x", "ws://…@c/x"),
            ("", ""),
        ];
        for (raw, shown) in cases {
            assert_eq!(url(raw), shown, "{raw:?}");
        }
    }

    #[test]
    fn long_input_is_cut() {
        let raw = format!("/{}", "a".repeat(10_000));
        let shown = url(&raw);
        assert_eq!(shown.chars().count(), MAX_SHOWN_CHARS + 1);
        assert!(shown.ends_with(HIDDEN));
    }

    #[test]
    fn harmless_response_headers_stay_visible() {
        for name in [
            "date",
            "Server",
            "upgrade",
            "connection",
            "content-type",
            "content-length",
            "sec-websocket-accept",
            "Sec-WebSocket-Extensions",
            "retry-after",
        ] {
            assert_eq!(header_value(name, "v"), "v", "{name}");
        }
        assert_eq!(header_value("set-cookie", "SECRET"), REDACTED);
        assert_eq!(header_value("sec-websocket", "SECRET"), REDACTED);
    }

    #[test]
    fn only_safe_header_values_are_shown() {
        assert_eq!(header_value("Sec-WebSocket-Protocol", "chat"), "chat");
        assert_eq!(header_value("user-agent", "me"), "me");
        assert_eq!(header_value("Authorization", "Bearer SECRET"), REDACTED);
        assert_eq!(header_value("cookie", "a=SECRET"), REDACTED);
        assert_eq!(header_value("x-custom", "SECRET"), REDACTED);
    }

    #[test]
    fn bad_header_names_are_cut_at_the_first_bad_character() {
        assert_eq!(bad_token("authorization: Bearer SECRET"), "authorization…");
        assert_eq!(bad_token("x\r\ny"), "x…");
        assert_eq!(bad_token("fine"), "fine");
    }

    #[test]
    fn header_lists_hide_values() {
        let headers = Headers::new([
            ("authorization", "Bearer SECRET"),
            ("origin", "https://a"),
            ("authorization: Bearer SECRET", "v"),
            ("Sec-WebSocket-Protocol", "a, b SECRET"),
        ]);
        let shown = format!("{headers:?}");
        assert_eq!(
            shown,
            r#"[("authorization", "<redacted>"), ("origin", "https://a"), ("authorization…", "<redacted>"), ("Sec-WebSocket-Protocol", "a, b…")]"#
        );
    }
}
