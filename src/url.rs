//! URL parsing: the `url` crate natively, the browser's own `URL` in the
//! browser.
//!
//! The wasm dependency graph is a budget: `url` brings `idna` and the ICU
//! crates with their data (about 150 KB of the bundle, 55 KB gzipped),
//! while every browser parses URLs — with the same WHATWG rules — for free.
//! Both sides offer the same small API (the part of `url::Url` wstether
//! uses), so the code that reads URLs (targets, proxies, redaction) is one.

cfg_if::cfg_if! {
    if #[cfg(browser)] {
        pub(crate) use self::browser::{Host, Url};
    } else {
        pub(crate) use url::{Host, Url};

        /// `host[:port]` of a URL (no userinfo; no default port).
        pub(crate) fn authority(url: &Url) -> &str {
            &url[url::Position::BeforeHost..url::Position::AfterPort]
        }
    }
}

#[cfg(browser)]
pub(crate) use self::browser::authority;

#[cfg(browser)]
mod browser {
    use std::fmt;

    /// A host, as `url::Host` has it, but with the addresses kept as the
    /// browser's canonical text (an IPv6 address without its brackets):
    /// wstether only shows them, and `Ipv6Addr`'s parser and `Display`
    /// would cost ~5 KB of the bundle.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) enum Host<S = String> {
        Domain(S),
        Ipv4(S),
        Ipv6(S),
    }

    /// The browser refused a URL (`new URL(..)` threw a `TypeError`).
    #[derive(Debug, Clone, Copy)]
    pub(crate) struct ParseError;

    impl fmt::Display for ParseError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("the browser's URL parser refused it")
        }
    }

    impl std::error::Error for ParseError {}

    /// A URL parsed by the browser's `URL`, read once into Rust strings.
    #[derive(Debug, Clone)]
    pub(crate) struct Url {
        href: String,
        scheme: String,
        username: String,
        password: Option<String>,
        hostname: String,
        /// `hostname[:port]`, as the `host` property has it.
        authority: String,
        port: Option<u16>,
        path: String,
        query: Option<String>,
        fragment: Option<String>,
    }

    /// `host[:port]` of a URL (no userinfo; no default port).
    pub(crate) fn authority(url: &Url) -> &str {
        &url.authority
    }

    impl Url {
        pub(crate) fn parse(input: &str) -> Result<Url, ParseError> {
            let parsed = web_sys::Url::new(input).map_err(|_| ParseError)?;
            let href = parsed.href();
            let protocol = parsed.protocol();
            let scheme = protocol.strip_suffix(':').unwrap_or(&protocol).to_owned();
            // `search` and `hash` are "" both for "none" and for an empty
            // one ("?", "#"); the serialised URL tells them apart (a `#`
            // or a `?` before it can only be a delimiter there).
            let (before_hash, hash) = match href.find('#') {
                Some(at) => (&href[..at], Some(href[at + 1..].to_owned())),
                None => (href.as_str(), None),
            };
            let query = before_hash
                .find('?')
                .map(|at| before_hash[at + 1..].to_owned());
            let password = parsed.password();
            Ok(Url {
                scheme,
                username: parsed.username(),
                password: (!password.is_empty()).then_some(password),
                hostname: parsed.hostname(),
                authority: parsed.host(),
                port: parsed.port().parse().ok(),
                path: parsed.pathname(),
                query,
                fragment: hash,
                href,
            })
        }

        pub(crate) fn as_str(&self) -> &str {
            &self.href
        }

        pub(crate) fn scheme(&self) -> &str {
            &self.scheme
        }

        pub(crate) fn cannot_be_a_base(&self) -> bool {
            !self.href[self.scheme.len() + 1..].starts_with('/')
        }

        pub(crate) fn username(&self) -> &str {
            &self.username
        }

        pub(crate) fn password(&self) -> Option<&str> {
            self.password.as_deref()
        }

        pub(crate) fn host_str(&self) -> Option<&str> {
            (!self.hostname.is_empty()).then_some(self.hostname.as_str())
        }

        pub(crate) fn host(&self) -> Option<Host<&str>> {
            let host = self.host_str()?;
            if let Some(ip) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
                return Some(Host::Ipv6(ip));
            }
            // A special URL's host that ends in a number is an IPv4
            // address, which the browser wrote in canonical form
            // (`1.2.3.4`); a host that is not one made `new URL` throw.
            let last = host.rsplit('.').next().unwrap_or(host);
            Some(
                if !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) {
                    Host::Ipv4(host)
                } else {
                    Host::Domain(host)
                },
            )
        }

        pub(crate) fn port(&self) -> Option<u16> {
            self.port
        }

        pub(crate) fn port_or_known_default(&self) -> Option<u16> {
            self.port.or(match self.scheme.as_str() {
                "ws" | "http" => Some(80),
                "wss" | "https" => Some(443),
                "ftp" => Some(21),
                _ => None,
            })
        }

        pub(crate) fn path(&self) -> &str {
            &self.path
        }

        pub(crate) fn query(&self) -> Option<&str> {
            self.query.as_deref()
        }

        pub(crate) fn fragment(&self) -> Option<&str> {
            self.fragment.as_deref()
        }
    }
}
