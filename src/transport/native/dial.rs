//! The dial layer: the byte stream under TLS. A connector's stream
//! ([`Options::connector`](crate::Options::connector)), a tunnel through a
//! proxy, or TCP to the target, with the name resolved and its addresses
//! tried by Happy Eyeballs (RFC 8305).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls;

use super::super::Target;
use super::proxy;
use crate::connector::{ConnectTarget, Connector, Io};
use crate::error::{Error, ErrorKind};
use crate::proxy::Server;

/// RFC 8305 §5's "Connection Attempt Delay": the next address is tried
/// this long after the previous attempt started, unless it failed sooner.
const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// How the stream to the target is made, read from the options at dial.
#[derive(Clone)]
pub(crate) enum Route {
    Connector(Connector),
    Proxy(Server),
    Direct,
}

/// Opens the stream to `target` by `route`. `tls` gives the configuration
/// for an `https://` proxy. Every failure is typed: `Connect` for the
/// connector and TCP, `Proxy` for the proxy (tunnel).
pub(crate) async fn open(
    target: &Target,
    route: Route,
    tls: impl FnOnce() -> Result<Arc<rustls::ClientConfig>, Error>,
) -> Result<Box<dyn Io>, Error> {
    let address = || format!("{}:{}", bracket_ipv6(&target.host), target.port);
    match route {
        Route::Connector(connector) => {
            let to = ConnectTarget::new(&target.host, target.port, target.secure);
            connector.connect(to).await.map_err(|e| {
                Error::new(ErrorKind::Connect, format!("connector for {}", address()))
                    .with_source(e)
            })
        }
        Route::Proxy(server) => Ok(Box::new(
            proxy::open(&server, &target.host, target.port, tls).await?,
        )),
        Route::Direct => match tcp(&target.host, target.port).await {
            Ok(tcp) => Ok(Box::new(tcp)),
            Err(e) => Err(Error::new(ErrorKind::Connect, address()).with_source(e)),
        },
    }
}

/// TCP to `host:port`: the name resolved, then its addresses raced by
/// [`happy_eyeballs`]. No delay on small writes (wstether batches itself).
pub(crate) async fn tcp(host: &str, port: u16) -> io::Result<TcpStream> {
    let addresses = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port)).await?.collect(),
    };
    happy_eyeballs(interleave(addresses), ATTEMPT_DELAY).await
}

/// RFC 8305 §4: the addresses alternate between the two families, starting
/// with the family of the resolver's first answer, each family in the
/// resolver's order.
pub(crate) fn interleave(addresses: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let Some(first) = addresses.first() else {
        return addresses;
    };
    let first_is_v6 = first.is_ipv6();
    let (first_family, other): (Vec<_>, Vec<_>) = addresses
        .into_iter()
        .partition(|a| a.is_ipv6() == first_is_v6);
    let mut out = Vec::with_capacity(first_family.len() + other.len());
    let (mut a, mut b) = (first_family.into_iter(), other.into_iter());
    loop {
        match (a.next(), b.next()) {
            (None, None) => return out,
            (x, y) => out.extend(x.into_iter().chain(y)),
        }
    }
}

/// Connects to the first of `addresses` that answers: an attempt starts
/// `delay` after the previous one started, or at once when the previous
/// one failed; the first to connect wins and the others are dropped
/// (closing their sockets). Fails with the last error once every attempt
/// has failed. Unbounded in time: the caller's connect timeout bounds it.
pub(crate) async fn happy_eyeballs(
    addresses: Vec<SocketAddr>,
    delay: Duration,
) -> io::Result<TcpStream> {
    let mut waiting = addresses.into_iter();
    let mut attempts = FuturesUnordered::new();
    let mut last_error = None;
    let attempt = |address: SocketAddr| async move {
        let tcp = TcpStream::connect(address).await?;
        tcp.set_nodelay(true)?;
        Ok::<_, io::Error>(tcp)
    };
    loop {
        if attempts.is_empty() {
            match waiting.next() {
                Some(address) => attempts.push(attempt(address)),
                None => {
                    return Err(last_error.unwrap_or_else(|| {
                        io::Error::new(io::ErrorKind::NotFound, "the name has no address")
                    }))
                }
            }
        }
        // Rearmed at every start: the delay counts from the latest one.
        let next_start = tokio::time::sleep(delay);
        tokio::select! {
            Some(result) = attempts.next() => match result {
                Ok(tcp) => return Ok(tcp),
                Err(e) => {
                    last_error = Some(e);
                    if let Some(address) = waiting.next() {
                        attempts.push(attempt(address));
                    }
                }
            },
            () = next_start, if waiting.len() > 0 => {
                if let Some(address) = waiting.next() {
                    attempts.push(attempt(address));
                }
            }
        }
    }
}

pub(super) fn bracket_ipv6(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use tokio::net::{TcpListener, TcpSocket};

    fn v4(last: u8) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::new(192, 0, 2, last), 1))
    }
    fn v6(last: u16) -> SocketAddr {
        SocketAddr::from((Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last), 1))
    }

    #[test]
    fn dial_interleaves_families_starting_with_the_resolvers_first() {
        assert_eq!(
            interleave(vec![v6(1), v6(2), v6(3), v4(1), v4(2)]),
            vec![v6(1), v4(1), v6(2), v4(2), v6(3)]
        );
        assert_eq!(
            interleave(vec![v4(1), v4(2), v6(1)]),
            vec![v4(1), v6(1), v4(2)]
        );
        assert_eq!(interleave(vec![v4(2), v4(1)]), vec![v4(2), v4(1)]);
        assert_eq!(interleave(vec![]), vec![]);
    }

    /// A loopback address whose SYNs are dropped: a listener whose accept
    /// queue is full (backlog 0, one connection never accepted), as a
    /// black-holed address behaves. The returned handles keep it so.
    async fn black_hole() -> (SocketAddr, TcpListener, TcpStream) {
        let socket = TcpSocket::new_v4().unwrap();
        socket
            .bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .unwrap();
        let address = socket.local_addr().unwrap();
        let listener = socket.listen(0).unwrap();
        let filler = TcpStream::connect(address).await.unwrap();
        (address, listener, filler)
    }

    /// A port with nothing listening: connecting is refused at once.
    async fn refused() -> SocketAddr {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        listener.local_addr().unwrap()
    }

    #[tokio::test]
    async fn dial_skips_a_black_holed_first_address_after_the_attempt_delay() {
        let (hole, _keep, _filler) = black_hole().await;
        let server = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let good = server.local_addr().unwrap();
        // The black hole would hold a sequential connect for minutes (the
        // SYN retries); the race starts the second address after 250 ms.
        let tcp = tokio::time::timeout(
            Duration::from_secs(10),
            happy_eyeballs(vec![hole, good], ATTEMPT_DELAY),
        )
        .await
        .expect("not held by the black hole")
        .unwrap();
        assert_eq!(tcp.peer_addr().unwrap(), good);
        assert!(tcp.nodelay().unwrap());
    }

    #[tokio::test]
    async fn dial_starts_the_next_attempt_at_once_when_one_fails() {
        let server = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let good = server.local_addr().unwrap();
        // A delay no test would wait for: only the failure can start the
        // second attempt.
        let forever = Duration::from_secs(24 * 3600);
        let tcp = tokio::time::timeout(
            Duration::from_secs(10),
            happy_eyeballs(vec![refused().await, good], forever),
        )
        .await
        .expect("the refusal starts the next attempt")
        .unwrap();
        assert_eq!(tcp.peer_addr().unwrap(), good);
    }

    #[tokio::test]
    async fn dial_fails_with_the_last_error_when_every_address_fails() {
        let error = happy_eyeballs(vec![refused().await, refused().await], ATTEMPT_DELAY)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
        let error = happy_eyeballs(vec![], ATTEMPT_DELAY).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn dial_resolves_a_name_and_connects() {
        let server = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let port = server.local_addr().unwrap().port();
        let tcp = tcp("localhost", port).await.unwrap();
        assert_eq!(tcp.peer_addr().unwrap().port(), port);
    }
}
