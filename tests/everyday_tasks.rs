//! The four everyday tasks (`examples/everyday_*.rs`, docs/everyday-tasks.md):
//! each example's task runs against the testkit server, and the line-count
//! table of the doc is checked against the examples and the Python snippets.
#![cfg(native)]

#[path = "../examples/everyday_backpressure.rs"]
mod backpressure;
#[path = "../examples/everyday_connect.rs"]
mod connect;
#[path = "../examples/everyday_credentials.rs"]
mod credentials;
#[path = "../examples/everyday_shutdown.rs"]
mod shutdown;

use std::time::Duration;

use wstether::Frame;
use wstether_testkit::TestServer;

const PATIENCE: Duration = Duration::from_secs(10);

async fn guard<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, future)
        .await
        .expect("no hang")
}

#[tokio::test]
async fn everyday_connect_sends_and_receives() {
    let server = TestServer::start().await.unwrap();
    let reply = guard(connect::task(&server.url("/"))).await.unwrap();
    assert_eq!(reply, Frame::text("hello"));
}

#[tokio::test]
async fn everyday_credentials_reconnects_with_a_fresh_token_each_time() {
    let server = TestServer::start().await.unwrap();
    let url = server.url("");
    guard(async {
        tokio::select! {
            ended = credentials::task(&url, "/?send=1&close=1012") => {
                panic!("the socket ended: {ended:?}")
            }
            () = server.wait_for_requests(3) => {}
        }
    })
    .await;
    let tokens: Vec<String> = server
        .requests()
        .iter()
        .map(|r| r.header("authorization").expect("a token").to_owned())
        .collect();
    assert!(tokens.len() >= 3);
    assert!(tokens.iter().all(|t| t.starts_with("Bearer token-")));
    let distinct: std::collections::BTreeSet<_> = tokens.iter().collect();
    assert_eq!(distinct.len(), tokens.len(), "a fresh token per attempt");
}

#[tokio::test]
async fn everyday_shutdown_closes_with_a_handshake() {
    let server = TestServer::start().await.unwrap();
    guard(shutdown::task(
        &server.url("/?send=3"),
        std::future::ready(()),
    ))
    .await
    .unwrap();
    assert_eq!(server.client_close_codes(), [1001]);
    assert_eq!(server.accepted_connections(), 1, "no reconnect after it");
}

#[tokio::test]
async fn everyday_backpressure_writes_everything_before_the_close() {
    let server = TestServer::start().await.unwrap();
    guard(backpressure::task(&server.url("/"), 1_000))
        .await
        .unwrap();
    assert_eq!(server.frames_received(), 1_000);
    assert_eq!(server.client_close_codes(), [1000]);
}

// ---- the line counts --------------------------------------------------------

const DOC: &str = include_str!("../docs/everyday-tasks.md");

/// The lines of an example's task that count: between the markers, not
/// blank, not a comment, not a `use`.
fn rust_lines(example: &str) -> usize {
    let source = std::fs::read_to_string(format!("{}/{example}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{example}: {e}"));
    let body = source
        .split("// task:start")
        .nth(1)
        .and_then(|rest| rest.split("// task:end").next())
        .unwrap_or_else(|| panic!("{example} has no task markers"));
    body.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//") && !l.starts_with("use "))
        .count()
}

/// The lines of a Python snippet that count: its function's body, not
/// blank, not a comment, not an import.
fn python_lines(snippet: &str) -> usize {
    snippet
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with('#')
                && !l.starts_with("import ")
                && !l.starts_with("from ")
                && !l.starts_with("async def ")
                && !l.starts_with("def ")
        })
        .count()
}

/// The fenced blocks of `language` in the doc.
fn blocks(language: &str) -> Vec<&'static str> {
    let fence = format!("```{language}\n");
    DOC.split(fence.as_str())
        .skip(1)
        .map(|rest| rest.split("```").next().expect("a closed block"))
        .collect()
}

#[test]
fn everyday_tasks_table_matches_the_examples_and_the_python() {
    let rows: Vec<(&str, usize, usize, &str)> = DOC
        .lines()
        .filter(|l| l.contains("`examples/everyday_"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            let [task, rust, python, example] = cells[..] else {
                panic!("a row of four cells: {l}");
            };
            (
                task,
                rust.parse().expect("a Rust count"),
                python.parse().expect("a Python count"),
                example.trim_matches('`'),
            )
        })
        .collect();
    assert_eq!(rows.len(), 4, "four tasks in the table");
    let python = blocks("python");
    for (task, rust_count, python_count, example) in rows {
        assert_eq!(rust_lines(example), rust_count, "{task}: Rust lines");
        let snippet = python
            .iter()
            .find(|s| s.starts_with(&format!("# {example}\n")))
            .unwrap_or_else(|| panic!("{task}: no Python snippet headed `# {example}`"));
        assert_eq!(python_lines(snippet), python_count, "{task}: Python lines");
        assert!(
            rust_count <= python_count,
            "{task}: no more lines than Python (issue 19)"
        );
    }
}

#[test]
fn everyday_tasks_doc_shows_the_examples_code() {
    let examples: Vec<String> = ["connect", "credentials", "shutdown", "backpressure"]
        .iter()
        .map(|name| {
            let path = format!("{}/examples/everyday_{name}.rs", env!("CARGO_MANIFEST_DIR"));
            let source = std::fs::read_to_string(path).unwrap();
            source
                .lines()
                .filter(|l| !l.contains("// task:"))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect();
    let shown = blocks("rust");
    assert_eq!(shown.len(), 4);
    for block in shown {
        assert!(
            examples
                .iter()
                .any(|source| source.contains(block.trim_end())),
            "the doc's Rust is not an example's:\n{block}"
        );
    }
}

#[test]
fn everyday_tasks_readme_table_is_the_docs_table() {
    let readme = include_str!("../README.md");
    let rows = |text: &'static str| -> Vec<&'static str> {
        text.lines()
            .filter(|l| l.contains("`examples/everyday_"))
            .collect()
    };
    assert_eq!(rows(readme).len(), 4, "the README shows the four tasks");
    assert_eq!(
        rows(readme),
        rows(DOC),
        "README and docs/everyday-tasks.md agree"
    );
}
