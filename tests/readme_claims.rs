//! The README's and the crate docs' claims that no doctest checks: the
//! defaults they state against `Options::default()`, the re-upgrade rule
//! against a real server, the figures quoted from BENCHMARKS.md against its
//! own (regenerated) tables, and every relative link in README.md, docs/
//! and BENCHMARKS.md.
//!
//! Claims checked elsewhere: the code blocks (doctests: README.md,
//! docs/refused-upgrades.md, docs/proxies.md, docs/tls.md); the crate docs'
//! example (`tests/readme_example.rs`); a close frame ends the connection
//! without a reconnect (`tests/send_receive.rs`); a silent peer is declared
//! dead (`tests/keepalive.rs`); `Connection::open` outside a tokio runtime
//! is an error (`tests/bad_input.rs`); what a browser refuses
//! (`options::tests::the_browser_refuses_what_it_cannot_honour`,
//! `wasm-pack-tests`). The browser's keepalive default is none: a ping
//! keepalive is refused in a browser, and the browser tests open with
//! `Options::default()`.
#![cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]

mod common;

use std::path::{Path, PathBuf};

use wstether::Options;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `text` with every run of whitespace as one space, so that prose matches
/// whatever its line breaks.
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The crate docs (the `//!` lines of src/lib.rs) as text.
fn crate_docs() -> String {
    read("src/lib.rs")
        .lines()
        .filter_map(|line| line.strip_prefix("//!"))
        .map(|line| line.strip_prefix(' ').unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `Options::default()`'s `Debug`, compact.
fn defaults() -> String {
    format!("{:?}", Options::default())
}

/// `Retry::default()`'s backoff, as `Debug` shows it.
const RETRY_BACKOFF: &[&str] = &[
    "max_retries: None",
    "initial_delay: 100ms",
    "max_delay: 30s",
    "multiplier: 2.0",
    "jitter: 0.5",
    "reset_after: 10s",
];

/// Each row of the README's options table, with what `Options::default()`
/// shows for it. A row changed in the README, or a default changed in the
/// code, fails here.
const OPTIONS_TABLE: &[(&str, &[&str])] = &[
    (
        "| `retry` | forever once connected; 100 ms doubling to 30 s, jitter 0.5, reset after 10 s up | the same |",
        RETRY_BACKOFF,
    ),
    (
        "| `retry` first connection | one attempt | one attempt (`new WsTether` in JS: the reconnect policy) |",
        &["first_connection: Attempts(1)"],
    ),
    (
        "| `retry` connect timeout | 10 s | not settable (`upgrade_timeout` bounds the opening) |",
        &["connect_timeout: 10s"],
    ),
    (
        "| `keepalive` | a ping after 20 s of silence, dead 10 s later | none (a heartbeat message needs your server's answer) |",
        &["keepalive: Some(Keepalive { interval: 20s, timeout: 10s, heartbeat: Ping })"],
    ),
    ("| `auto_upgrade` | off | off |", &["auto_upgrade: \"off\""]),
    (
        "| `silence_pings` | on | on (off is refused) |",
        &["silence_pings: true"],
    ),
    (
        "| `max_message_size` | 64 MiB | 64 MiB |",
        &["max_message_size: Some(67108864)"],
    ),
    (
        "| `max_frame_size` | 64 MiB | no effect (the browser shows messages) |",
        &["max_frame_size: Some(67108864)"],
    ),
    (
        "| `send_queue_bytes` | 8 MiB | 8 MiB |",
        &["send_queue_bytes: 8388608"],
    ),
    (
        "| `event_queue_len` | 1024 | 1024 |",
        &["event_queue_len: 1024"],
    ),
    (
        "| `event_queue_bytes` | 16 MiB (reading stops) | 16 MiB (past it the connection ends) |",
        &["event_queue_bytes: 16777216"],
    ),
    (
        "| `upgrade_timeout` | 10 s | 10 s |",
        &["upgrade_timeout: 10s"],
    ),
    (
        "| `closing_timeout` | 5 s | 5 s |",
        &["closing_timeout: 5s"],
    ),
    (
        "| `proxy` | `Proxy::from_env()` | the browser's (others refused) |",
        &["proxy: Some(Proxy::from_env())"],
    ),
    (
        "| `tls_native_roots` | off (webpki roots) | refused (the browser's store) |",
        &["tls_native_roots: false", "root_certificates: 0"],
    ),
    (
        "| `compression` | off | the browser decides |",
        &["compression: Compression { enabled: false"],
    ),
    ("| `observer` | none | none |", &["observer: None"]),
    (
        "| `http2` | HTTP/2 (RFC 8441) over TLS when the server offers it, else HTTP/1.1; HTTP/1.1 over `ws://` | the browser decides (`Require` refused) |",
        &["http2: PreferOverTls"],
    ),
    (
        "| `share_http2` | off (one TCP connection per `Connection`) | no effect (the browser shares) |",
        &["share_http2: false"],
    ),
];

/// Defaults stated in the README's and the crate docs' prose.
const PROSE: &[(&str, &str, &[&str])] = &[
    (
        "README.md",
        "`upgrade_timeout` (10 s)",
        &["upgrade_timeout: 10s"],
    ),
    (
        "README.md",
        "The send queue holds `send_queue_bytes` of memory (8 MiB: each frame costs its payload plus 128 bytes,",
        &["send_queue_bytes: 8388608"],
    ),
    (
        "README.md",
        "(`event_queue_len` 1024 events, `event_queue_bytes` 16 MiB)",
        &["event_queue_len: 1024", "event_queue_bytes: 16777216"],
    ),
    (
        "README.md",
        "Pings are answered and hidden",
        &["silence_pings: true"],
    ),
    (
        "README.md",
        "The backoff is `Retry`: 100 ms doubling up to 30 s, half of it jittered, starting over \
         after 10 s up,",
        RETRY_BACKOFF,
    ),
    (
        "README.md",
        "and no reconnect after the close codes 1003, 1007, 1008 and 1010.",
        &["stop_on_close_codes: [1003, 1007, 1008, 1010]"],
    ),
    (
        "README.md",
        "`closing_timeout` (5 s)",
        &["closing_timeout: 5s"],
    ),
    (
        "src/lib.rs",
        "Natively it is on by default (a ping after 20 s of silence, dead 10 s later)",
        &["keepalive: Some(Keepalive { interval: 20s, timeout: 10s, heartbeat: Ping })"],
    ),
];

#[test]
fn readme_options_table_is_what_options_default_holds() {
    let readme = read("README.md");
    let header = "| option | native default | browser default |";
    let rows: Vec<&str> = readme
        .lines()
        .skip_while(|line| *line != header)
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .collect();
    assert!(!rows.is_empty(), "README.md has no options table");
    let defaults = defaults();
    for row in &rows {
        let Some((_, shown)) = OPTIONS_TABLE.iter().find(|(r, _)| r == row) else {
            panic!("README.md's options table row is not checked here (or changed): {row}");
        };
        for field in *shown {
            assert!(
                defaults.contains(field),
                "{row}\nwants {field}\nin {defaults}"
            );
        }
    }
    assert_eq!(
        rows.len(),
        OPTIONS_TABLE.len(),
        "rows left out of README.md"
    );
}

#[test]
fn readme_and_crate_docs_defaults_in_prose_are_what_options_default_holds() {
    let defaults = defaults();
    let readme = flat(&read("README.md"));
    let docs = flat(&crate_docs());
    for (file, claim, shown) in PROSE {
        let text = if *file == "README.md" { &readme } else { &docs };
        assert!(
            text.contains(&flat(claim)),
            "{file} no longer says: {claim}"
        );
        for field in *shown {
            assert!(
                defaults.contains(field),
                "{claim}\nwants {field}\nin {defaults}"
            );
        }
    }
}

/// README "Reconnect and re-upgrade", the crate docs, `Options::auto_upgrade`
/// and the demo all say: ask again on `Down`, and the upgrade waits for the
/// next `Up`. Here it is asked while the server is down.
#[cfg(native)]
#[tokio::test]
async fn readme_an_upgrade_asked_while_down_waits_for_the_next_up() {
    use common::{next, options, until};
    use wstether::{Connection, Event};
    use wstether_testkit::TestServer;

    let server = TestServer::start().await.unwrap();
    let (conn, mut events) = Connection::open(&server.url(""), options()).unwrap();
    let first = conn.ws_upgrade("/").unwrap();
    let (upgraded, _) = until(&mut events, |e| matches!(e, Event::Upgraded { .. })).await;
    assert!(matches!(upgraded, Event::Upgraded { stream, .. } if stream == first));

    server.stop().await;
    let (down, _) = until(&mut events, |e| matches!(e, Event::Down { .. })).await;
    assert!(
        matches!(
            down,
            Event::Down {
                will_reconnect: true,
                ..
            }
        ),
        "{down:?}"
    );
    let second = conn.ws_upgrade("/").unwrap();

    // At least one failed attempt while the server is away: the upgrade waits.
    let (_, before) = until(&mut events, |e| matches!(e, Event::Reconnecting { .. })).await;
    let (_, more) = until(&mut events, |e| matches!(e, Event::Reconnecting { .. })).await;
    server.restart().await.unwrap();
    let (up, rest) = until(&mut events, |e| matches!(e, Event::Up { .. })).await;
    for event in before.iter().chain(&more).chain(&rest) {
        assert!(
            !matches!(event, Event::Upgraded { .. } | Event::UpgradeFailed { .. }),
            "the upgrade did not wait for Up: {event:?}"
        );
    }
    assert!(matches!(up, Event::Up { .. }));
    let answer = next(&mut events).await;
    assert!(
        matches!(answer, Event::Upgraded { stream, .. } if stream == second),
        "{answer:?}"
    );
    conn.shutdown();
}

#[test]
fn readme_is_a_guide_of_at_most_450_lines() {
    let lines = read("README.md").lines().count();
    assert!(lines <= 450, "README.md has {lines} lines");
}

#[test]
fn readme_installs_the_npm_package_by_the_name_npm_pack_gives_it() {
    // npm/add-entry names the package (the crate is `wstether-npm`), and
    // .ci/npm-pack fails on any other name.
    assert!(read("npm/add-entry").contains(r#"pkg.name = "wstether";"#));
    assert!(read(".ci/npm-pack").contains(r#"if (pkg.name !== "wstether")"#));
    assert!(read("README.md").contains("\nnpm install wstether\n"));
    assert!(read("README.md").contains("\ncargo add wstether\n"));
}

/// The README's JS quick start is README-npm.md's `quick_start` block,
/// which .ci/e2e runs in Chromium as written (www/e2e/readme.tests.js).
#[test]
fn readme_js_quick_start_is_the_block_the_browser_test_runs() {
    let block = |text: &str, marker: &str| -> String {
        let after = text.split(marker).nth(1).expect("the marker");
        let code = after.split("```js\n").nth(1).expect("a js block after it");
        code.split("```")
            .next()
            .expect("a closed block")
            .to_string()
    };
    let npm = block(&read("README-npm.md"), "<!-- tested: quick_start -->");
    let readme = block(&read("README.md"), "## Quick start: JavaScript");
    assert_eq!(readme, npm);
}

/// The npm package names no placeholder repository either (issue 20).
#[test]
fn readme_npm_manifest_names_no_placeholder_repository() {
    assert!(!read("npm/Cargo.toml")
        .lines()
        .any(|line| line.starts_with("repository")));
}

/// The repository field stays out until the project has a public home
/// (issue 20): never a placeholder.
#[test]
fn readme_root_manifest_names_no_placeholder_repository() {
    let manifest = read("Cargo.toml");
    assert!(
        !manifest.lines().any(|line| line.starts_with("repository")),
        "a repository in Cargo.toml: is it the project's real home? Then drop this test."
    );
}

/// A table row of BENCHMARKS.md starting with `label`, its cells.
fn row<'a>(text: &'a str, label: &str) -> Vec<&'a str> {
    let line = text
        .lines()
        .find(|line| line.starts_with(&format!("| {label} |")))
        .unwrap_or_else(|| panic!("BENCHMARKS.md has no row {label}"));
    line.trim_matches('|').split('|').map(str::trim).collect()
}

fn number(cell: &str) -> f64 {
    cell.replace(',', "")
        .trim_end_matches(" KiB")
        .parse()
        .unwrap_or_else(|_| panic!("not a number: {cell}"))
}

/// The compression ratios quoted in BENCHMARKS.md's prose and in
/// docs/compression.md are those of BENCHMARKS.md's own table.
#[test]
fn readme_benchmarks_deflate_ratios_are_its_table() {
    let bench = read("BENCHMARKS.md");
    let off = row(&bench, "wstether, compression off");
    let level1 = row(&bench, "wstether, deflate level 1");
    let level6 = row(&bench, "wstether, deflate level 6 (default)");
    let ratio = |a: &str, b: &str| format!("{:.1}", number(a) / number(b));
    let (sent1, sent6, received) = (
        ratio(off[2], level1[2]),
        ratio(off[2], level6[2]),
        ratio(off[3], level6[3]),
    );
    assert_eq!(received, ratio(off[3], level1[3]));
    let claim = format!(
        "{sent1}× (level 1) to {sent6}× (level 6) fewer bytes sent and {received}× fewer received"
    );
    assert!(
        flat(&bench).contains(&claim),
        "BENCHMARKS.md should say: {claim}"
    );
    let docs_claim = format!(
        "{sent1}× (level 1) to {sent6}× (level 6, the default) fewer bytes sent and {received}× \
         fewer received"
    );
    assert!(
        flat(&read("docs/compression.md")).contains(&docs_claim),
        "docs/compression.md should say: {docs_claim}"
    );
}

/// The tiny-message ratios of BENCHMARKS.md ("Tiny messages") are those of
/// its table's instruction counts, and the targets row quotes them; the
/// memory per connection with context takeover in docs/compression.md is
/// the Compression memory table's.
#[test]
fn readme_benchmarks_tiny_deflate_ratios_are_its_table() {
    let bench = read("BENCHMARKS.md");
    let ratio = |a: &str, b: &str| format!("{:.2}×", number(a) / number(b));
    let mut quoted = Vec::new();
    for label in [
        "1 B text | memory level 4",
        "32 B text | memory level 8 (before)",
        "32 B text | memory level 4",
    ] {
        let cells = row(&bench, label);
        assert_eq!(
            cells[4].trim_matches('*'),
            ratio(cells[3], cells[2]),
            "{label}"
        );
        if !cells[5].is_empty() {
            assert_eq!(cells[6], ratio(cells[5], cells[2]), "{label}");
        }
        quoted.push(cells);
    }
    let (one, before, now) = (&quoted[0], &quoted[1], &quoted[2]);
    let claim = format!(
        "1 B: {}× (under the 32-byte threshold",
        ratio(one[3], one[2]).trim_end_matches('×')
    );
    let claim32 = format!(
        "32 B: {} ({} before the memory level 4 deflater; level 1: {})",
        ratio(now[3], now[2]),
        ratio(before[3], before[2]),
        ratio(now[5], now[2])
    );
    let targets = bench
        .lines()
        .find(|line| line.starts_with("| tiny frames with deflate on"))
        .expect("the targets row for tiny frames");
    for claim in [claim.as_str(), claim32.as_str()] {
        assert!(
            targets.contains(claim),
            "the targets row should say: {claim}"
        );
    }
    // The table keeps two decimals; the prose one.
    let rounded = format!("{:.1}×", number(now[3]) / number(now[2]));
    assert!(
        flat(&bench).contains(&format!("32-byte compressed messages are {rounded} the")),
        "BENCHMARKS.md should say: 32-byte compressed messages are {rounded} the"
    );
    let used = row(&bench, "on, after one message each way (context takeover)")[1];
    let claim = format!("connection costs {used} with context takeover");
    assert!(
        flat(&read("docs/compression.md")).contains(&claim),
        "docs/compression.md should say: {claim}"
    );
}

/// The idle memory per connection quoted in BENCHMARKS.md's prose is the
/// 10k row of its scale table (which `.ci/bench` regenerates).
#[test]
fn readme_benchmarks_idle_memory_is_its_scale_table() {
    let bench = read("BENCHMARKS.md");
    let idle = row(&bench, "10,000")[1].to_owned();
    for claim in [
        format!("{idle} of client RSS per idle connection at 10k"),
        format!(
            "| ≤ 8 KiB client RSS per idle keepalive connection at 10k | {idle} (the scale table)"
        ),
    ] {
        assert!(bench.contains(&claim), "BENCHMARKS.md should say: {claim}");
    }
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces
/// as hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The lines of `markdown` outside its code blocks.
fn prose_lines(markdown: &str) -> Vec<&str> {
    let mut in_code = false;
    markdown
        .lines()
        .filter(|line| {
            let fence = line.starts_with("```");
            in_code ^= fence;
            !in_code && !fence
        })
        .collect()
}

fn anchors(markdown: &str) -> Vec<String> {
    prose_lines(markdown)
        .into_iter()
        .filter(|line| line.starts_with('#'))
        .map(|line| slug(line.trim_start_matches('#')))
        .collect()
}

/// The targets of `[text](target)` links outside code blocks.
fn links(markdown: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in prose_lines(markdown) {
        let mut rest = line;
        while let Some(start) = rest.find("](") {
            let after = &rest[start + 2..];
            let Some(end) = after.find(')') else { break };
            found.push(after[..end].to_owned());
            rest = &after[end..];
        }
    }
    found
}

#[test]
fn readme_and_docs_relative_links_resolve() {
    let mut files = vec![root().join("README.md"), root().join("BENCHMARKS.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    let mut checked = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for link in links(&text) {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = link.split_once('#').unwrap_or((&link, ""));
            let target: &Path = if path.is_empty() {
                file
            } else {
                &file.parent().unwrap().join(path)
            };
            assert!(target.exists(), "{}: {link} does not exist", file.display());
            let is_markdown = target.extension().is_some_and(|ext| ext == "md");
            if !anchor.is_empty() && is_markdown {
                let headings = anchors(&std::fs::read_to_string(target).unwrap());
                assert!(
                    headings.iter().any(|h| h == anchor),
                    "{}: {link}: no heading #{anchor} in {headings:?}",
                    file.display()
                );
            }
            checked += 1;
        }
    }
    assert!(
        checked > 20,
        "only {checked} links found: is the parser broken?"
    );
}

/// The lines of a JS block that count: not blank, not an import.
fn js_lines(block: &str) -> usize {
    block
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("import "))
        .count()
}

/// README-npm.md's partysocket table, and the README's sentence quoting
/// it, are the line counts of the blocks CI runs and of partysocket's.
#[test]
fn readme_partysocket_line_counts_are_the_blocks() {
    let npm = read("README-npm.md");
    let marked = |name: &str| -> String {
        let after = npm
            .split(&format!("<!-- tested: {name} -->"))
            .nth(1)
            .unwrap();
        let code = after.split("```js\n").nth(1).unwrap();
        code.split("```").next().unwrap().to_string()
    };
    let theirs: Vec<String> = npm
        .split("partysocket's, for comparison")
        .nth(1)
        .unwrap()
        .split("```js\n")
        .skip(1)
        .take(2)
        .map(|rest| rest.split("```").next().unwrap().to_string())
        .collect();
    let ours = [
        js_lines(&marked("connect_send_receive")),
        js_lines(&marked("fresh_credentials")),
    ];
    let theirs = [js_lines(&theirs[0]), js_lines(&theirs[1])];
    let npm_row = |label: &str| -> (usize, usize) {
        let cells = row(&npm, label);
        (number(cells[1]) as usize, number(cells[2]) as usize)
    };
    assert_eq!(npm_row("connect, send, receive"), (theirs[0], ours[0]));
    assert_eq!(
        npm_row("reconnect with fresh credentials per attempt"),
        (theirs[1], ours[1])
    );
    let readme = flat(&read("README.md"));
    assert!(readme.contains(&format!(
        "connect, send, receive: {} vs {}",
        theirs[0], ours[0]
    )));
    assert!(readme.contains(&format!(
        "reconnect with fresh credentials per attempt: {} vs {}",
        theirs[1], ours[1]
    )));
}
