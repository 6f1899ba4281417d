//! The command line: arguments, the listener, and when to stop.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use wstether_testkit::{Http2, TestServer};

const USAGE: &str = "usage: wstether-testkit [--port P] [--host 127.0.0.1] [--token T] \
                     [--http2 on|off|no-connect-protocol|max-streams=N]";

/// What the command line asks for.
#[derive(Debug)]
struct Args {
    addr: SocketAddr,
    token: Option<String>,
    http2: Http2,
}

/// Parses `--port P` / `--host H` / `--token T` / `--http2 MODE` (also
/// `--port=P`, ...).
fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut host = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut port: u16 = 0;
    let mut token = None;
    let mut http2 = Http2::Off;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        match name.as_str() {
            "--port" | "-p" => {
                let v = value()?;
                port = v.parse().map_err(|_| format!("bad port: {v:?}"))?;
            }
            "--host" => {
                let v = value()?;
                host = if v == "localhost" {
                    IpAddr::V4(Ipv4Addr::LOCALHOST)
                } else {
                    v.trim_matches(|c| c == '[' || c == ']')
                        .parse()
                        .map_err(|_| format!("bad host: {v:?} (expected an IP address)"))?
                };
                if !host.is_loopback() {
                    return Err(format!(
                        "refusing to listen on non-loopback host {host}: \
                         the test server is for local tests only (use 127.0.0.1 or ::1)"
                    ));
                }
            }
            "--token" => {
                let v = value()?;
                if v.is_empty()
                    || !v
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    return Err(format!(
                        "bad token: {v:?} (letters, digits, '-' and '_' only)"
                    ));
                }
                token = Some(v);
            }
            "--http2" => http2 = parse_http2(&value()?)?,
            "--help" | "-h" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument: {other:?}\n{USAGE}")),
        }
    }
    Ok(Args {
        addr: SocketAddr::new(host, port),
        token,
        http2,
    })
}

/// `--http2`'s value: `on` (HTTP/2 with prior knowledge and the CONNECT
/// protocol, beside HTTP/1.1), `off`, `no-connect-protocol` or
/// `max-streams=N` (as `on`, at most N concurrent streams).
fn parse_http2(value: &str) -> Result<Http2, String> {
    match value {
        "on" => Ok(Http2::On),
        "off" => Ok(Http2::Off),
        "no-connect-protocol" => Ok(Http2::WithoutConnectProtocol),
        _ => value
            .strip_prefix("max-streams=")
            .and_then(|n| n.parse().ok())
            .map(Http2::MaxStreams)
            .ok_or_else(|| format!("bad --http2 value: {value:?}\n{USAGE}")),
    }
}

#[cfg(unix)]
async fn terminate() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn terminate() {
    std::future::pending().await
}

/// Resolves when stdin reaches EOF (or fails).
///
/// Read on a plain thread rather than `tokio::io::stdin`, whose blocking read
/// would keep the runtime (and so the process) alive at exit.
async fn stdin_closed() {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("stdin-watch".into())
        .spawn(move || {
            let mut buf = [0u8; 1024];
            let mut stdin = std::io::stdin().lock();
            while let Ok(n) = std::io::Read::read(&mut stdin, &mut buf) {
                if n == 0 {
                    break;
                }
            }
            let _ = tx.send(());
        });
    match spawned {
        Ok(_) => {
            let _ = rx.await;
        }
        Err(_) => std::future::pending().await,
    }
}

/// Runs the server until SIGINT/SIGTERM or until stdin closes.
#[tokio::main]
pub async fn main() -> ExitCode {
    let Args { addr, token, http2 } = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("wstether-testkit: {msg}");
            return ExitCode::from(2);
        }
    };
    let server = match TestServer::start_http2_on(addr, http2).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("wstether-testkit: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(token) = token {
        server.set_token(token);
    }
    {
        let mut out = std::io::stdout().lock();
        if writeln!(out, "LISTENING ws://{}", server.addr()).is_err() || out.flush().is_err() {
            return ExitCode::FAILURE;
        }
    }
    let why = tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = terminate() => "SIGTERM",
        _ = stdin_closed() => "stdin closed",
    };
    eprintln!("wstether-testkit: {why}, stopping");
    server.stop().await;
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args, String> {
        parse_args(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn token_is_parsed_and_checked() {
        let parsed = args(&["--port", "0", "--token", "bt-12ab_C"]).unwrap();
        assert_eq!(parsed.token.as_deref(), Some("bt-12ab_C"));
        assert_eq!(args(&["--token=x"]).unwrap().token.as_deref(), Some("x"));
        assert_eq!(args(&[]).unwrap().token, None);
        assert!(args(&["--token", "a\"b"]).is_err());
        assert!(args(&["--token", ""]).is_err());
        assert!(args(&["--token"]).is_err());
    }

    #[test]
    fn http2_mode_is_parsed() {
        assert_eq!(args(&[]).unwrap().http2, Http2::Off);
        assert_eq!(args(&["--http2", "on"]).unwrap().http2, Http2::On);
        assert_eq!(
            args(&["--http2=max-streams=8"]).unwrap().http2,
            Http2::MaxStreams(8)
        );
        assert_eq!(
            args(&["--http2", "no-connect-protocol"]).unwrap().http2,
            Http2::WithoutConnectProtocol
        );
        assert!(args(&["--http2", "yes"]).is_err());
        assert!(args(&["--http2"]).is_err());
    }
}
