//! The proxy layer of the native stream stack: TCP to the proxy (and TLS
//! to it for an `https://` proxy), then the handshake that opens a tunnel
//! to the target (HTTP CONNECT or SOCKS5). What comes out is a plain byte
//! stream to the target, [`Tunnel`], under the TLS (for `wss://`) and
//! coalescing layers. It is dialed again, handshake and all, on every
//! reconnect.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::StatusCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::{client::TlsStream, rustls};

use crate::error::{Error, ErrorKind};
use crate::proxy::{Credentials, Scheme, Server};

/// The stream to the target, below TLS to the target: TCP (direct,
/// through an HTTP CONNECT or through SOCKS5: the tunnel is the same TCP
/// connection), or TLS to an `https://` proxy carrying the tunnel.
pub(crate) enum Tunnel {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// The longest CONNECT answer read (status line and headers).
const MAX_RESPONSE: usize = 16 << 10;

/// Opens TCP to `server` and a tunnel through it to `host:port`.
/// Every failure is an [`ErrorKind::Proxy`] naming the proxy (never its
/// credentials).
pub(crate) async fn open(
    server: &Server,
    host: &str,
    port: u16,
    tls: impl FnOnce() -> Result<Arc<rustls::ClientConfig>, Error>,
) -> Result<Tunnel, Error> {
    let proxy = format!("{server:?}");
    let fail = |what: &str| Error::new(ErrorKind::Proxy, format!("{what} {proxy}"));
    let tcp = super::dial::tcp(&server.host, server.port)
        .await
        .map_err(|e| fail("cannot connect to the proxy").with_source(e))?;
    match server.scheme {
        Scheme::Http => {
            let mut tcp = tcp;
            connect(&mut tcp, host, port, server.credentials.as_ref(), &proxy).await?;
            Ok(Tunnel::Tcp(tcp))
        }
        Scheme::Https => {
            let name = rustls::pki_types::ServerName::try_from(server.host.clone())
                .map_err(|e| fail("the name of the proxy").with_source(e))?;
            let mut tls = tokio_rustls::TlsConnector::from(tls()?)
                .connect(name, tcp)
                .await
                .map_err(|e| fail("TLS handshake with the proxy").with_source(e))?;
            connect(&mut tls, host, port, server.credentials.as_ref(), &proxy).await?;
            Ok(Tunnel::Tls(Box::new(tls)))
        }
        Scheme::Socks5 | Scheme::Socks5h => {
            let tcp = socks5(tcp, server, host, port).await.map_err(|e| {
                use tokio_socks::Error as Socks;
                // Refused or missing credentials are a 407, as from an
                // HTTP proxy: one retry policy for both.
                let credentials = matches!(
                    e,
                    Socks::PasswordAuthFailure(_)
                        | Socks::AuthorizationRequired
                        | Socks::NoAcceptableAuthMethods
                );
                let error = fail("SOCKS5 handshake with the proxy").with_source(e);
                match credentials {
                    true => error.with_proxy_status(StatusCode::PROXY_AUTHENTICATION_REQUIRED),
                    false => error,
                }
            })?;
            Ok(Tunnel::Tcp(tcp))
        }
    }
}

/// SOCKS5 through the connected `tcp`: `socks5h` sends the name,
/// `socks5` resolves it here and sends the first address.
async fn socks5(
    tcp: TcpStream,
    server: &Server,
    host: &str,
    port: u16,
) -> Result<TcpStream, tokio_socks::Error> {
    use tokio_socks::{tcp::Socks5Stream, TargetAddr};
    let target: TargetAddr<'_> = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => TargetAddr::Ip((ip, port).into()),
        Err(_) if server.scheme == Scheme::Socks5h => TargetAddr::Domain(host.into(), port),
        Err(_) => {
            let mut addresses = tokio::net::lookup_host((host, port)).await?;
            let address = addresses.next().ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address"))
            })?;
            TargetAddr::Ip(address)
        }
    };
    let stream = match &server.credentials {
        None => Socks5Stream::connect_with_socket(tcp, target).await?,
        Some(c) => {
            Socks5Stream::connect_with_password_and_socket(tcp, target, &c.user, &c.password)
                .await?
        }
    };
    Ok(stream.into_inner())
}

/// `CONNECT host:port` over `io`, and its answer: 2xx opens the tunnel;
/// anything else is an [`ErrorKind::Proxy`] with the status.
async fn connect<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    host: &str,
    port: u16,
    credentials: Option<&Credentials>,
    proxy: &str,
) -> Result<(), Error> {
    let io_error = |e: io::Error| {
        Error::new(ErrorKind::Proxy, format!("CONNECT through {proxy}")).with_source(e)
    };
    io.write_all(&connect_request(host, port, credentials))
        .await
        .map_err(io_error)?;
    io.flush().await.map_err(io_error)?;
    let mut buffer = Vec::with_capacity(1024);
    loop {
        let mut chunk = [0u8; 1024];
        let n = io.read(&mut chunk).await.map_err(io_error)?;
        if n == 0 {
            return Err(Error::new(
                ErrorKind::Proxy,
                format!("{proxy} closed the connection before answering the CONNECT"),
            ));
        }
        buffer.extend_from_slice(&chunk[..n]);
        match parse_response(&buffer)? {
            None if buffer.len() > MAX_RESPONSE => {
                return Err(Error::new(
                    ErrorKind::Proxy,
                    format!("{proxy}'s answer to the CONNECT is over {MAX_RESPONSE} bytes"),
                ))
            }
            None => continue,
            Some((status, _)) if !status.is_success() => {
                return Err(Error::new(
                    ErrorKind::Proxy,
                    format!(
                        "{proxy} answered the CONNECT to {} with {status}",
                        authority(host, port)
                    ),
                )
                .with_proxy_status(status))
            }
            Some((_, len)) if len < buffer.len() => {
                // The client speaks first in both TLS and the WebSocket
                // upgrade: nothing may come from the target yet.
                return Err(Error::new(
                    ErrorKind::Proxy,
                    format!("{proxy} sent data after its answer to the CONNECT"),
                ));
            }
            Some(_) => return Ok(()),
        }
    }
}

fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The CONNECT request (RFC 9110 §9.3.6), with `Proxy-Authorization:
/// Basic` when there are credentials.
fn connect_request(host: &str, port: u16, credentials: Option<&Credentials>) -> Vec<u8> {
    let authority = authority(host, port);
    let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(credentials) = credentials {
        request.push_str("Proxy-Authorization: ");
        request.push_str(&credentials.basic());
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    request.into_bytes()
}

/// The status and length of a complete answer, `None` while incomplete:
/// the head ends where the one response-head parser says.
fn parse_response(buffer: &[u8]) -> Result<Option<(StatusCode, usize)>, Error> {
    let invalid = |e: &dyn std::fmt::Display| {
        Error::new(
            ErrorKind::Proxy,
            format!("the proxy's answer to the CONNECT is not HTTP: {e}"),
        )
    };
    match super::handshake::response_head(buffer) {
        Ok(None) => Ok(None),
        Ok(Some(head)) => {
            let status = StatusCode::from_u16(head.status).map_err(|e| invalid(&e))?;
            Ok(Some((status, head.len)))
        }
        Err(e) => Err(invalid(&e)),
    }
}

impl AsyncRead for Tunnel {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Tunnel::Tcp(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Tunnel::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Tunnel {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Tunnel::Tcp(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Tunnel::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Tunnel::Tcp(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            Tunnel::Tls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Tunnel::Tcp(tcp) => tcp.is_write_vectored(),
            Tunnel::Tls(tls) => tls.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Tunnel::Tcp(tcp) => Pin::new(tcp).poll_flush(cx),
            Tunnel::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Tunnel::Tcp(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Tunnel::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connect_request() {
        let plain = connect_request("example.com", 443, None);
        assert_eq!(
            plain,
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
        );
        let v6 = connect_request("::1", 8080, None);
        assert!(v6.starts_with(b"CONNECT [::1]:8080 HTTP/1.1\r\nHost: [::1]:8080\r\n"));
        let credentials = Credentials {
            user: "Aladdin".into(),
            password: "open sesame".into(),
        };
        let auth = String::from_utf8(connect_request("h", 80, Some(&credentials))).unwrap();
        assert_eq!(
            auth,
            "CONNECT h:80 HTTP/1.1\r\nHost: h:80\r\n\
             Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n"
        );
    }

    #[test]
    fn the_connect_answer() {
        let ok = b"HTTP/1.1 200 Connection established\r\nProxy-Agent: x\r\n\r\n";
        assert_eq!(
            parse_response(ok).unwrap(),
            Some((StatusCode::OK, ok.len()))
        );
        for cut in 0..ok.len() {
            assert_eq!(parse_response(&ok[..cut]).unwrap(), None, "{cut}");
        }
        let denied = b"HTTP/1.0 407 Proxy Authentication Required\r\n\r\nbody";
        assert_eq!(
            parse_response(denied).unwrap(),
            Some((StatusCode::PROXY_AUTHENTICATION_REQUIRED, denied.len() - 4))
        );
        let e = parse_response(b"SSH-2.0-OpenSSH\r\n\r\n").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Proxy);
    }

    /// Writes `answer` to the client in pieces of `piece` bytes.
    async fn answered(answer: &'static [u8], piece: usize) -> Result<(), Error> {
        let (mut client, mut proxy) = tokio::io::duplex(64);
        let peer = tokio::spawn(async move {
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") {
                proxy.read_exact(&mut byte).await.unwrap();
                request.push(byte[0]);
            }
            for chunk in answer.chunks(piece) {
                proxy.write_all(chunk).await.unwrap();
                proxy.flush().await.unwrap();
                tokio::task::yield_now().await;
            }
            // Dropped: what was written can still be read, then EOF.
            request
        });
        let result = connect(&mut client, "target", 9, None, "http://proxy:1").await;
        let request = peer.await.unwrap();
        assert!(request.starts_with(b"CONNECT target:9 HTTP/1.1\r\n"));
        result
    }

    #[tokio::test]
    async fn an_answer_split_across_reads() {
        let ok = b"HTTP/1.1 200 OK\r\nVia: 1.1 p\r\n\r\n";
        for piece in [1, 2, 5, 17, ok.len()] {
            answered(ok, piece).await.unwrap();
        }
        let e = answered(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n", 3)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Proxy);
        assert_eq!(
            e.proxy_status(),
            Some(StatusCode::PROXY_AUTHENTICATION_REQUIRED)
        );
        assert!(e.to_string().contains("407"), "{e}");
        let e = answered(b"HTTP/1.1 200 OK\r\n\r\nearly", 100)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("after its answer"), "{e}");
        let e = answered(b"HTTP/1.1 200", 100).await.unwrap_err();
        assert!(e.to_string().contains("closed"), "{e}");
    }

    /// A SOCKS5 proxy that answers the RFC 1929 sub-negotiation with a
    /// failure status: refused credentials, reported as 407 (as an HTTP
    /// proxy would), so that `Retry::proxy_decision` stops on them.
    #[tokio::test]
    async fn refused_socks5_credentials_are_a_407() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.unwrap();
            let mut greeting = [0u8; 2];
            tcp.read_exact(&mut greeting).await.unwrap();
            let mut methods = vec![0u8; greeting[1] as usize];
            tcp.read_exact(&mut methods).await.unwrap();
            assert!(methods.contains(&2), "username/password offered");
            tcp.write_all(&[5, 2]).await.unwrap();
            let mut auth = [0u8; 2];
            tcp.read_exact(&mut auth).await.unwrap();
            let mut rest = vec![0u8; auth[1] as usize + 1];
            tcp.read_exact(&mut rest).await.unwrap();
            let mut password = vec![0u8; rest[auth[1] as usize] as usize];
            tcp.read_exact(&mut password).await.unwrap();
            tcp.write_all(&[1, 1]).await.unwrap();
        });
        let server = Server {
            scheme: Scheme::Socks5h,
            host: "127.0.0.1".into(),
            port,
            credentials: Some(Credentials {
                user: "alice".into(),
                password: "wrong-hunter2".into(),
            }),
        };
        let no_tls = || -> Result<Arc<rustls::ClientConfig>, Error> { unreachable!() };
        let Err(error) = open(&server, "target", 9, no_tls).await else {
            panic!("refused")
        };
        proxy.await.unwrap();
        assert_eq!(error.kind(), ErrorKind::Proxy);
        assert_eq!(
            error.proxy_status(),
            Some(StatusCode::PROXY_AUTHENTICATION_REQUIRED)
        );
        let shown = format!("{error} {error:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("alice"),
            "{shown}"
        );
    }
}
