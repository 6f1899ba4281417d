//! `NO_PROXY`: the targets reached without a proxy, read as curl and
//! reqwest read it (see [`Proxy::from_env`](crate::Proxy::from_env)).

use std::net::IpAddr;

/// A parsed `NO_PROXY` list.
#[derive(Debug, Default)]
pub(crate) struct NoProxy {
    /// `*`: every target.
    any: bool,
    /// Addresses and blocks: (network, prefix length).
    blocks: Vec<(IpAddr, u8)>,
    /// Domains, lower case, without a leading or trailing dot.
    domains: Vec<String>,
}

impl NoProxy {
    /// Parses a comma (or space) separated list. Entries that are neither
    /// a domain nor an address nor a block are ignored, as curl does.
    pub(crate) fn parse(list: &str) -> NoProxy {
        let mut no_proxy = NoProxy::default();
        for entry in list.split([',', ' ', '\t']).map(str::trim) {
            if entry.is_empty() {
                continue;
            }
            if entry == "*" {
                no_proxy.any = true;
                continue;
            }
            if let Some(block) = parse_block(entry) {
                no_proxy.blocks.push(block);
                continue;
            }
            let domain = strip_port(entry)
                .trim_start_matches("*.")
                .trim_start_matches('.')
                .trim_end_matches('.')
                .to_ascii_lowercase();
            if !domain.is_empty() {
                no_proxy.domains.push(domain);
            }
        }
        no_proxy
    }

    /// Whether `host` (a name or an address, as in the URL; IPv6 with or
    /// without brackets) is reached directly.
    pub(crate) fn matches(&self, host: &str) -> bool {
        if self.any {
            return true;
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = host.parse::<IpAddr>() {
            return self
                .blocks
                .iter()
                .any(|&(network, len)| in_block(ip, network, len));
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.domains.iter().any(|domain| {
            host == *domain
                || (host.len() > domain.len()
                    && host.ends_with(domain.as_str())
                    && host.as_bytes()[host.len() - domain.len() - 1] == b'.')
        })
    }
}

/// `10.0.0.1`, `::1`, `[::1]`, `10.0.0.0/8`, `fd00::/8`, `[::1]:80`...
fn parse_block(entry: &str) -> Option<(IpAddr, u8)> {
    let (address, len) = match entry.split_once('/') {
        Some((address, len)) => (address, Some(len.parse::<u8>().ok()?)),
        None => (entry, None),
    };
    let address = if let Some(rest) = address.strip_prefix('[') {
        // `[v6]` or `[v6]:port`.
        rest.split_once(']')?.0
    } else if address.matches(':').count() == 1 {
        // `v4:port`.
        address.split_once(':')?.0
    } else {
        address
    };
    let ip: IpAddr = address.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = len.unwrap_or(max);
    (len <= max).then_some((ip, len))
}

/// `host:port` → `host` (a domain entry; addresses are handled apart).
fn strip_port(entry: &str) -> &str {
    match entry.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => entry,
    }
}

fn in_block(ip: IpAddr, network: IpAddr, len: u8) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(network)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(network) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(network)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(network) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_no_proxy_table() {
        let list = "example.com, .corp.net,INTERNAL.org:8080 10.0.0.0/8,192.168.1.7,\
                    [::1],fd00::/8,*.wild.io,,bad/99,127.0.0.1:80";
        let no_proxy = NoProxy::parse(list);
        for (host, direct) in [
            ("example.com", true),
            ("EXAMPLE.com.", true),
            ("ws.example.com", true),
            ("a.b.example.com", true),
            ("badexample.com", false),
            ("example.com.evil", false),
            ("corp.net", true),
            ("x.corp.net", true),
            ("xcorp.net", false),
            ("internal.org", true),
            ("api.internal.org", true),
            ("wild.io", true),
            ("a.wild.io", true),
            ("10.1.2.3", true),
            ("11.1.2.3", false),
            ("192.168.1.7", true),
            ("192.168.1.8", false),
            ("::1", true),
            ("[::1]", true),
            ("::2", false),
            ("fd12:3456::1", true),
            ("fe80::1", false),
            ("127.0.0.1", true),
            ("127.0.0.2", false),
            ("localhost", false),
            ("other.org", false),
        ] {
            assert_eq!(no_proxy.matches(host), direct, "{host}");
        }
        assert!(NoProxy::parse("*").matches("anything"));
        assert!(NoProxy::parse("a.org, *").matches("10.0.0.1"));
        assert!(!NoProxy::parse("").matches("localhost"));
        assert!(NoProxy::parse("0.0.0.0/0").matches("8.8.8.8"));
        assert!(!NoProxy::parse("0.0.0.0/0").matches("::1"));
        // A name is not resolved to be matched against addresses.
        assert!(!NoProxy::parse("127.0.0.0/8").matches("localhost"));
        assert!(NoProxy::parse("localhost,127.0.0.1,::1").matches("localhost"));
    }
}
