//! `--web`: the browser demo. Builds the wasm package (`wasm-pack build
//! npm --target web --profile wasm-release --out-name wstether --out-dir
//! ../www/pkg -- --features connection`, completed by `npm/add-entry`: the
//! npm package of README-npm.md with its opt-in `WsTetherConnection`), starts a testkit server, serves `www/` on loopback with
//! a tiny static file server, prints the page's URL and runs until Ctrl-C
//! (or SIGTERM).
//!
//! ```text
//! cargo run --example demo -- --web [--port P] [--ws-port P]
//!     [--port-file FILE] [--no-build]
//! ```
//!
//! The page finds the testkit server in `/config.js`, which is generated
//! (`export const testkitUrl = "ws://127.0.0.1:PORT";`).

use std::error::Error;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wstether_testkit::TestServer;

const USAGE: &str = "usage: cargo run --example demo -- --web \
[--port P] [--ws-port P] [--port-file FILE] [--no-build]

  --port P          serve the page on 127.0.0.1:P (default 0: a free port)
  --ws-port P       the testkit WebSocket server's port (default 0: a free port)
  --port-file FILE  once serving, write the page's URL to FILE (for scripts)
  --no-build        serve www/pkg as it is, without building the wasm package";

/// What `--web` was asked.
#[derive(Debug, Default)]
struct WebArgs {
    port: u16,
    ws_port: u16,
    port_file: Option<PathBuf>,
    no_build: bool,
}

fn parse(args: &[String]) -> Result<WebArgs, String> {
    let mut parsed = WebArgs::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name, Some(value.to_owned())),
            None => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next().cloned())
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        let port = |v: String| v.parse::<u16>().map_err(|_| format!("bad port {v:?}"));
        match name {
            "--web" => {}
            "--port" => parsed.port = port(value()?)?,
            "--ws-port" => parsed.ws_port = port(value()?)?,
            "--port-file" => parsed.port_file = Some(PathBuf::from(value()?)),
            "--no-build" => parsed.no_build = true,
            "--help" | "-h" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(parsed)
}

/// Builds, serves and waits for Ctrl-C.
pub async fn run(args: &[String]) -> Result<(), Box<dyn Error>> {
    let args = parse(args)?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let www = root.join("www");
    if !args.no_build {
        build(root, &www.join("pkg"))?;
    }
    if !www.join("pkg").join("index.js").is_file() {
        return Err(format!(
            "{} has no index.js: build it (drop --no-build)",
            www.join("pkg").display()
        )
        .into());
    }

    let server =
        TestServer::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, args.ws_port))).await?;
    let testkit_url = server.url("");
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, args.port))).await?;
    let page_url = format!("http://{}/", listener.local_addr()?);
    let site = Arc::new(Site {
        root: www.canonicalize()?,
        config: format!("export const testkitUrl = {testkit_url:?};\n"),
    });

    println!("testkit server on {testkit_url}");
    println!("serving {} on {page_url}", www.display());
    println!("WEB {page_url}");
    println!("open {page_url} in a browser; Ctrl-C stops");
    if let Some(file) = &args.port_file {
        // Written whole, then renamed: a reader never sees half a URL.
        let partial = file.with_extension("partial");
        std::fs::write(&partial, format!("{page_url}\n"))?;
        std::fs::rename(&partial, file)?;
    }

    tokio::select! {
        _ = accept_loop(listener, site) => {}
        _ = tokio::signal::ctrl_c() => println!("Ctrl-C: stopping"),
        _ = terminate() => println!("SIGTERM: stopping"),
    }
    server.stop().await;
    Ok(())
}

#[cfg(unix)]
async fn terminate() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn terminate() {
    std::future::pending().await
}

// --- the build ---

/// `wasm-pack build npm --target web --profile wasm-release --out-name
/// wstether -- --features connection` into `out_dir`: the npm package
/// (README-npm.md) with `WsTetherConnection`, as `.ci/npm-pack` builds
/// www/pkg, in the root's target directory (its
/// dependencies are shared with every other build). wasm-pack uses the
/// wasm-bindgen-cli on PATH.
fn build(root: &Path, out_dir: &Path) -> Result<(), Box<dyn Error>> {
    let pinned = pinned_wasm_bindgen(root)?;
    let install = format!(
        "run `.ci/setup` (or `cargo install wasm-bindgen-cli --version {pinned}` and \
         `cargo install --locked wasm-pack`) and try again"
    );
    match Command::new("wasm-bindgen").arg("--version").output() {
        Ok(out) => {
            let found = String::from_utf8_lossy(&out.stdout);
            let version = found.split_whitespace().nth(1).unwrap_or("?");
            if version != pinned {
                return Err(format!(
                    "wasm-bindgen {version} is installed but the crate pins {pinned}: {install}"
                )
                .into());
            }
        }
        Err(_) => return Err(format!("wasm-bindgen is not installed: {install}").into()),
    }
    if Command::new("wasm-pack").arg("--version").output().is_err() {
        return Err(format!("wasm-pack is not installed: {install}").into());
    }
    let args = [
        "build",
        "npm",
        "--target",
        "web",
        "--profile",
        "wasm-release",
        "--out-name",
        "wstether",
        "--out-dir",
    ];
    let out_dir = std::path::absolute(out_dir)?;
    println!(
        "building: wasm-pack {} {}",
        args.join(" "),
        out_dir.display()
    );
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let status = Command::new("wasm-pack")
        .args(args)
        .arg(&out_dir)
        // The page uses the low level, WsTetherConnection (opt-in).
        .args(["--", "--features", "connection"])
        .env("CARGO_TARGET_DIR", target_dir)
        .current_dir(root)
        .status()?;
    if !status.success() {
        return Err(format!(
            "wasm-pack build failed ({status}); is the target installed? \
             (`rustup target add wasm32-unknown-unknown`, or `.ci/setup`)"
        )
        .into());
    }
    // wasm-opt -Oz (binaryen 132 from npm, installed into tools/binaryen on
    // first use), as .ci/npm-pack runs it: the page loads what ships.
    let status = Command::new("bash")
        .arg(root.join(".ci/wasm-opt"))
        .arg(out_dir.join("wstether_bg.wasm"))
        .status()?;
    if !status.success() {
        return Err(format!(".ci/wasm-opt failed ({status}); are node and npm installed?").into());
    }
    // The package's hand-written entry (index.js, WsTether), as .ci/npm-pack adds it.
    let status = Command::new("bash")
        .arg(root.join("npm/add-entry"))
        .arg(&out_dir)
        .arg("web")
        .status()?;
    if !status.success() {
        return Err(format!("npm/add-entry failed ({status})").into());
    }
    Ok(())
}

/// The wasm-bindgen CLI version the repository pins (`.ci/wasm-bindgen-version`,
/// the version Cargo.lock holds too).
fn pinned_wasm_bindgen(root: &Path) -> Result<String, Box<dyn Error>> {
    let pinned = std::fs::read_to_string(root.join(".ci/wasm-bindgen-version"))?;
    let pinned = pinned.trim();
    if pinned.is_empty() {
        return Err(".ci/wasm-bindgen-version is empty".into());
    }
    Ok(pinned.to_owned())
}

// --- the static file server ---

/// What is served: files under `root`, and the generated `/config.js`.
struct Site {
    root: PathBuf,
    config: String,
}

async fn accept_loop(listener: TcpListener, site: Arc<Site>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let site = site.clone();
                tokio::spawn(async move {
                    // A client that stalls is dropped.
                    let _ =
                        tokio::time::timeout(Duration::from_secs(30), serve(stream, &site)).await;
                });
            }
            Err(error) => {
                eprintln!("accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// One request, one response, then the connection is closed.
async fn serve(mut stream: TcpStream, site: &Site) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > 16 * 1024 {
            return respond(
                &mut stream,
                431,
                "text/plain",
                b"request head too large",
                true,
            )
            .await;
        }
    }
    let head = String::from_utf8_lossy(&head);
    let mut parts = head.lines().next().unwrap_or("").split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let with_body = method != "HEAD";
    if method != "GET" && method != "HEAD" {
        return respond(&mut stream, 405, "text/plain", b"only GET and HEAD", true).await;
    }
    let path = target.split(['?', '#']).next().unwrap_or("");
    if path == "/config.js" {
        let body = site.config.as_bytes();
        return respond(
            &mut stream,
            200,
            "text/javascript; charset=utf-8",
            body,
            with_body,
        )
        .await;
    }
    match resolve(&site.root, path) {
        Some(file) => match tokio::fs::read(&file).await {
            Ok(body) => respond(&mut stream, 200, mime(&file), &body, with_body).await,
            Err(_) => respond(&mut stream, 404, "text/plain", b"not found", with_body).await,
        },
        None => respond(&mut stream, 404, "text/plain", b"not found", with_body).await,
    }
}

/// The file under `root` that `path` names, or `None`. Refuses anything
/// that could leave `root`: `..`, hidden names, backslashes, percent
/// escapes, NUL, and symlinks pointing out.
fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let relative = path.strip_prefix('/')?;
    if relative
        .chars()
        .any(|c| matches!(c, '\\' | '%' | '\0' | ':') || c.is_control())
    {
        return None;
    }
    let mut file = root.to_path_buf();
    for segment in relative.split('/').filter(|s| !s.is_empty()) {
        if segment.starts_with('.') {
            return None;
        }
        file.push(segment);
    }
    if path.ends_with('/') {
        file.push("index.html");
    }
    let file = file.canonicalize().ok()?;
    (file.starts_with(root) && file.is_file()).then_some(file)
}

fn mime(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "wasm" => "application/wasm",
        "json" | "map" => "application/json",
        "ts" | "txt" | "md" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        _ => "application/octet-stream",
    }
}

async fn respond(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &[u8],
    with_body: bool,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    if with_body {
        stream.write_all(body).await?;
    }
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_under_the_root() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("www")
            .canonicalize()
            .unwrap();
        assert!(resolve(&root, "/").is_some());
        assert!(resolve(&root, "/index.html").is_some());
        for bad in [
            "/../Cargo.toml",
            "/pkg/../../Cargo.toml",
            "/..%2fCargo.toml",
            "/.hidden",
            "/..\\Cargo.toml",
            "index.html",
            "/nope.html",
        ] {
            assert_eq!(resolve(&root, bad), None, "{bad}");
        }
    }
}
