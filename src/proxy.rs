//! Proxies: the public [`Proxy`] setting, and which proxy (if any) a dial
//! goes through. The environment is read at every dial, so a connection
//! follows a changed `HTTPS_PROXY` on its next reconnect, and the choice is
//! made per target host (`NO_PROXY`).
//!
//! The handshakes themselves (HTTP CONNECT, SOCKS5) are in
//! `transport/native/proxy.rs`; `NO_PROXY` is read in `proxy/no_proxy.rs`.
// In a browser only the public type and its checks are used.
#![cfg_attr(browser, allow(dead_code))]

use std::fmt;

use crate::error::{Error, ErrorKind};
use crate::redact;

#[cfg(native)]
mod no_proxy;
// `url::Url` natively, the browser's `URL` in the browser.
use crate::url;

/// The proxy a connection goes through, given to
/// [`Options::proxy`](crate::Options::proxy). The default is
/// [`Proxy::from_env`]; [`Options::no_proxy`](crate::Options::no_proxy)
/// connects directly.
///
/// ```
/// use wstether::{Options, Proxy};
/// let options = Options::default().proxy(Proxy::http("http://user:secret@proxy.corp:3128")?);
/// # Ok::<(), wstether::Error>(())
/// ```
///
/// Credentials come from the proxy URL's userinfo (percent-decoded) and are
/// never shown: `Debug` gives the scheme, host and port only, and no error
/// or log names them.
///
/// **Browser:** a browser uses the system's proxy settings (or its own)
/// and lets no script choose; [`Connection::open`](crate::Connection::open)
/// refuses any setting other than the default [`Proxy::from_env`] with
/// [`ErrorKind::Unsupported`], and `from_env` means the browser's own
/// settings there (a browser has no environment variables).
#[derive(Clone)]
pub struct Proxy {
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    Env,
    Server(Server),
}

/// How a proxy is spoken to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Scheme {
    /// HTTP CONNECT over TCP.
    Http,
    /// HTTP CONNECT over TLS to the proxy.
    Https,
    /// SOCKS5; the target's name is resolved here.
    Socks5,
    /// SOCKS5; the target's name is resolved by the proxy.
    Socks5h,
}

impl Scheme {
    fn name(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::Socks5 => "socks5",
            Scheme::Socks5h => "socks5h",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
            Scheme::Socks5 | Scheme::Socks5h => 1080,
        }
    }
}

/// A proxy server: where it is, how to speak to it, and its credentials.
#[derive(Clone)]
pub(crate) struct Server {
    pub(crate) scheme: Scheme,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) credentials: Option<Credentials>,
}

/// A user name and password. Never formatted: no `Debug`, no `Display`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct Credentials {
    pub(crate) user: String,
    pub(crate) password: String,
}

impl Credentials {
    /// `Basic base64(user:password)`, for `Proxy-Authorization`.
    #[cfg(native)]
    pub(crate) fn basic(&self) -> String {
        basic_auth(&self.user, &self.password)
    }
}

/// `Basic base64(user:password)`.
#[cfg(native)]
pub(crate) fn basic_auth(user: &str, password: &str) -> String {
    let pair = format!("{user}:{password}");
    format!("Basic {}", data_encoding::BASE64.encode(pair.as_bytes()))
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}:{}",
            self.scheme.name(),
            bracket_ipv6(&self.host),
            self.port
        )
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Env => f.write_str("Proxy::from_env()"),
            Kind::Server(server) => write!(f, "Proxy({server:?})"),
        }
    }
}

impl Proxy {
    /// The proxy named by the environment, read when each connection (and
    /// each reconnect) is dialed, for its target host; the default.
    ///
    /// - `wss://` targets: `https_proxy`, then `HTTPS_PROXY`;
    /// - `ws://` targets: `http_proxy`, then `HTTP_PROXY` (the upper-case
    ///   one is ignored when `REQUEST_METHOD` is set, i.e. under CGI, where
    ///   it may come from a request header: "httpoxy", as curl and reqwest
    ///   do);
    /// - then `all_proxy`, then `ALL_PROXY`, for both.
    ///
    /// Empty values count as unset. A value is a proxy URL: `http://`,
    /// `https://`, `socks5://` or `socks5h://`, with optional
    /// `user:password@` (percent-encoded); without a scheme it is
    /// `http://` (as curl does). A value that is not such a URL fails the
    /// dial with [`ErrorKind::Proxy`] (never silently connecting
    /// directly).
    ///
    /// `no_proxy`, then `NO_PROXY`, lists the targets reached directly,
    /// separated by commas (or spaces), as curl and reqwest read it:
    /// - `*` alone: every target;
    /// - a domain, with or without a leading dot (`example.com`,
    ///   `.example.com`): that name and every name under it
    ///   (`ws.example.com`), not `badexample.com`; case-insensitive;
    /// - an IP address (`10.1.2.3`, `::1`, `[::1]`) or a CIDR block
    ///   (`10.0.0.0/8`, `fd00::/8`): targets given by that address (a name
    ///   is not resolved to be matched);
    /// - a port after an entry (`example.com:8443`) is ignored.
    ///
    /// Loopback targets (`localhost`, `127.0.0.1`) are **not** exempt
    /// unless `NO_PROXY` names them, as with curl and reqwest (Go's
    /// `ProxyFromEnvironment` exempts them): with `HTTP_PROXY` set and no
    /// `NO_PROXY`, a `ws://127.0.0.1` target goes through the proxy.
    ///
    /// **Browser:** nothing is read (there is no environment); the
    /// browser's own proxy settings apply.
    pub fn from_env() -> Proxy {
        Proxy { kind: Kind::Env }
    }

    /// An HTTP proxy, spoken to with `CONNECT host:port` over TCP:
    /// `http://[user:password@]host[:port]` (port 80 by default; a URL
    /// without a scheme is taken as `http://`). With a user name, the
    /// CONNECT carries `Proxy-Authorization: Basic …`.
    ///
    /// Fails with [`ErrorKind::InvalidUrl`] on a URL that is not such a
    /// proxy URL (the error shows it without its userinfo).
    pub fn http(url: &str) -> Result<Proxy, Error> {
        Proxy::server(url, &[Scheme::Http])
    }

    /// An HTTP proxy reached over TLS (its certificate checked against the
    /// same roots as a `wss://` target's), then spoken to with `CONNECT`:
    /// `https://[user:password@]host[:port]` (port 443 by default). A
    /// `wss://` target then runs TLS inside that TLS.
    pub fn https(url: &str) -> Result<Proxy, Error> {
        Proxy::server(url, &[Scheme::Https])
    }

    /// A SOCKS5 proxy (RFC 1928), without authentication or with a user
    /// name and password (RFC 1929) from the URL's userinfo:
    /// `socks5://[user:password@]host[:port]` resolves the target's name
    /// here and sends the proxy an address; `socks5h://` sends the name, for
    /// the proxy to resolve (needed when only the proxy can resolve it).
    /// Port 1080 by default.
    pub fn socks5(url: &str) -> Result<Proxy, Error> {
        Proxy::server(url, &[Scheme::Socks5, Scheme::Socks5h])
    }

    /// Whether this is [`Proxy::from_env`].
    pub(crate) fn is_from_env(&self) -> bool {
        matches!(self.kind, Kind::Env)
    }

    fn server(url: &str, allowed: &[Scheme]) -> Result<Proxy, Error> {
        let server = Server::parse(url, allowed[0])?;
        if !allowed.contains(&server.scheme) {
            return Err(Error::new(
                ErrorKind::InvalidUrl,
                format!(
                    "{:?}: a {} proxy URL starts with {}://",
                    redact::url(url),
                    allowed[0].name(),
                    allowed[0].name()
                ),
            ));
        }
        Ok(Proxy {
            kind: Kind::Server(server),
        })
    }
}

impl Server {
    /// Parses a proxy URL; `default` is the scheme of a URL without one.
    fn parse(raw: &str, default: Scheme) -> Result<Server, Error> {
        let shown = redact::url(raw);
        let invalid = |why: &str| Error::new(ErrorKind::InvalidUrl, format!("{shown:?}: {why}"));
        let raw = raw.trim();
        let with_scheme;
        let raw = if raw.contains("://") {
            raw
        } else {
            with_scheme = format!("{}://{raw}", default.name());
            &with_scheme
        };
        let url = url::Url::parse(raw).map_err(|e| {
            Error::new(
                ErrorKind::InvalidUrl,
                format!("{shown:?} is not a proxy URL"),
            )
            .with_source(e)
        })?;
        let scheme = match url.scheme() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            "socks5" => Scheme::Socks5,
            "socks5h" => Scheme::Socks5h,
            _ => {
                return Err(invalid(
                    "the proxy scheme is http, https, socks5 or socks5h",
                ))
            }
        };
        let host = match url.host() {
            Some(url::Host::Domain(domain)) if !domain.is_empty() => domain.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            _ => return Err(invalid("the proxy URL has no host")),
        };
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err(invalid(
                "a proxy URL is scheme://[user:password@]host[:port], without a path",
            ));
        }
        let credentials = if url.username().is_empty() && url.password().is_none() {
            None
        } else {
            Some(credentials(url.username(), url.password()))
        };
        Ok(Server {
            scheme,
            port: url.port().unwrap_or(scheme.default_port()),
            host,
            credentials,
        })
    }
}

/// The credentials of a URL's userinfo (percent-encoded there).
pub(crate) fn credentials(user: &str, password: Option<&str>) -> Credentials {
    Credentials {
        user: percent_decode(user),
        password: percent_decode(password.unwrap_or("")),
    }
}

/// Decodes `%XX` escapes (the userinfo of a URL); invalid escapes stay as
/// they are, and invalid UTF-8 is replaced.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(byte) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn bracket_ipv6(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// Where a dial goes: which proxy, if any, for `host` (a `wss://` target
/// when `secure`), under the `proxy` option (`None`: no proxy).
#[cfg(native)]
pub(crate) fn route(
    proxy: Option<&Proxy>,
    secure: bool,
    host: &str,
) -> Result<Option<Server>, Error> {
    match proxy.map(|proxy| &proxy.kind) {
        None => Ok(None),
        Some(Kind::Server(server)) => Ok(Some(server.clone())),
        Some(Kind::Env) => route_from_env(&|name| std::env::var(name).ok(), secure, host),
    }
}

/// [`route`] for [`Proxy::from_env`], with the environment as `var`.
#[cfg(native)]
fn route_from_env(
    var: &dyn Fn(&str) -> Option<String>,
    secure: bool,
    host: &str,
) -> Result<Option<Server>, Error> {
    let set = |name: &str| var(name).filter(|value| !value.trim().is_empty());
    let cgi = set("REQUEST_METHOD").is_some();
    let mut names: Vec<&str> = if secure {
        vec!["https_proxy", "HTTPS_PROXY"]
    } else if cgi {
        vec!["http_proxy"]
    } else {
        vec!["http_proxy", "HTTP_PROXY"]
    };
    names.extend(["all_proxy", "ALL_PROXY"]);
    let Some((name, value)) = names
        .into_iter()
        .find_map(|name| set(name).map(|value| (name, value)))
    else {
        return Ok(None);
    };
    let no_proxy = set("no_proxy")
        .or_else(|| set("NO_PROXY"))
        .unwrap_or_default();
    if no_proxy::NoProxy::parse(&no_proxy).matches(host) {
        return Ok(None);
    }
    Server::parse(&value, Scheme::Http).map(Some).map_err(|e| {
        Error::new(
            ErrorKind::Proxy,
            format!("the environment variable {name} is not a proxy URL"),
        )
        .with_source(e)
    })
}

#[cfg(test)]
mod tests;
