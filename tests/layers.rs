//! The crate's import graph: no circles, and no arrow from a lower layer
//! up to a higher one.
//!
//! Every path that names another module is read from the source of
//! `src/`: `crate::` paths anywhere (in `use` lines and inline, as in
//! `crate::rt::spawn(..)`), and `super::` paths that leave their top-level
//! module. Comments are left out (an intra-doc link is no dependency).
//! The nodes are the crate's top-level modules (`core`, `mailbox`,
//! `transport`...), each with everything below it. Test code (`tests.rs`
//! files, `tests/` module directories and `#[cfg(test)] mod tests`
//! blocks) is left out: a unit test
//! may drive its module through a higher layer, as the tests in `tests/`
//! do, and it is no part of the library's build.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The layers, lowest first. A module may use its own layer and those
/// below it, never one above. Every top-level module of `src/` is here.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "leaf types",
        &[
            "browser_policy",
            "compression",
            "connector",
            "error",
            "event",
            "frame",
            "frame_rules",
            "observer",
            "options",
            "payload_arena",
            "proxy",
            "redact",
            "request",
            "rt",
            "stats",
            "time",
            "tls",
            "url",
            "utf8_bytes",
        ],
    ),
    ("core", &["core"]),
    ("mailbox", &["mailbox"]),
    ("driver and transport", &["driver", "transport", "page"]),
    ("connection and socket", &["connection", "socket"]),
    ("js", &["js"]),
];

/// The crate root: `lib.rs` declares the modules and re-exports from all
/// of them, so it is the top, not a layer.
const ROOT: &str = "lib";

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// The module path of a file under `src/`: `src/core/mod.rs` is
/// `["core"]`, `src/transport/native/frames.rs` is
/// `["transport", "native", "frames"]`, `src/lib.rs` is `["lib"]`.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut segments: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if segments.len() > 1 && segments.last().is_some_and(|s| s == "mod") {
        segments.pop();
    }
    segments
}

/// The source without comments. Naive about `//` inside string literals:
/// it cuts the rest of such a line, which never holds a module path here.
fn without_comments(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        rest = rest[start..]
            .find("*/")
            .map_or("", |end| &rest[start + end + 2..]);
    }
    out.push_str(rest);
    out.lines()
        .map(|line| line.find("//").map_or(line, |at| &line[..at]))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The top-level names right after `prefix` at byte `at`: one name, or each
/// first name in a `{a, b::c, self}` group.
fn names_after(text: &str, at: usize) -> Vec<String> {
    let rest = &text[at..];
    if let Some(group) = rest.strip_prefix('{') {
        let mut depth = 0;
        let mut end = group.len();
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    end = i;
                    break;
                }
                '}' => depth -= 1,
                _ => {}
            }
        }
        let mut names = Vec::new();
        let mut depth = 0;
        let mut item = String::new();
        for c in group[..end].chars().chain([',']) {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    let name: String = item.trim().chars().take_while(|&c| is_ident(c)).collect();
                    if !name.is_empty() {
                        names.push(name);
                    }
                    item.clear();
                    continue;
                }
                _ => {}
            }
            if depth == 0 {
                item.push(c);
            }
        }
        names
    } else {
        let name: String = rest.chars().take_while(|&c| is_ident(c)).collect();
        if name.is_empty() {
            Vec::new()
        } else {
            vec![name]
        }
    }
}

/// The text without its `#[cfg(test)] mod tests { .. }` blocks. Naive
/// about braces in literals, which stay balanced in this crate's tests.
fn without_test_modules(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]") {
        let after = &rest[at + "#[cfg(test)]".len()..];
        let Some(body) = after.trim_start().strip_prefix("mod tests {") else {
            out.push_str(&rest[..at + "#[cfg(test)]".len()]);
            rest = after;
            continue;
        };
        out.push_str(&rest[..at]);
        let mut depth = 1;
        let mut end = body.len();
        for (i, c) in body.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &body[end..];
    }
    out.push_str(rest);
    out
}

/// The top-level modules a file's paths name, other than its own.
fn uses(module: &[String], source: &str) -> BTreeSet<String> {
    let text = without_test_modules(&without_comments(source));
    let own = &module[0];
    let mut used = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        let before = text[..at].chars().next_back();
        // `$crate::` and `wstether_crate::` are not this crate's paths.
        if before.is_some_and(|c| is_ident(c) || c == '$') {
            continue;
        }
        used.extend(names_after(&text, at + "crate::".len()));
    }
    // `super::` (repeated) from `module` climbs that many levels; a path
    // that reaches the crate root names a top-level module.
    let depth = if own == ROOT { 0 } else { module.len() };
    for (at, _) in text.match_indices("super::") {
        if text[..at].chars().next_back().is_some_and(is_ident) {
            continue;
        }
        let mut end = at;
        let mut ups = 0;
        while text[end..].starts_with("super::") {
            end += "super::".len();
            ups += 1;
        }
        if text[..at].ends_with("super::") {
            continue; // counted from the first `super::` of the run
        }
        // In an inline `mod tests` of a file, `super::` is the file's module:
        // counted as if written there, which can only under-count climbs.
        if ups >= depth {
            used.extend(names_after(&text, end));
        }
    }
    used.retain(|name| name != own && name != "self" && name != "super");
    used
}

/// The crate root's re-exports: `crate::Connection` is
/// `connection::Connection`, so a path through the root names the module
/// that defines the item (read from `pub use module::{..}` in lib.rs).
fn root_reexports(lib: &str) -> BTreeMap<String, String> {
    let text = without_comments(lib);
    let mut names = BTreeMap::new();
    for (at, _) in text.match_indices("pub use ") {
        let rest = &text[at + "pub use ".len()..];
        let statement = &rest[..rest.find(';').unwrap_or(rest.len())];
        let Some((module, items)) = statement.split_once("::") else {
            continue;
        };
        let items = items.trim_start_matches('{').trim_end_matches('}');
        for item in items.split(',') {
            let name = item.split(" as ").last().unwrap().trim();
            let name = name.rsplit("::").next().unwrap().trim();
            if !name.is_empty() {
                names.insert(name.to_string(), module.trim().to_string());
            }
        }
    }
    names
}

/// Top-level module → the top-level modules it uses.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let reexports = root_reexports(&fs::read_to_string(src.join("lib.rs")).unwrap());
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        // Test code is no part of the library's graph: a unit test may
        // drive its module through a higher layer, as tests/ do.
        let module = module_path(&src, &file);
        // A `tests.rs` file, or a `tests/` module split into files.
        if module.iter().any(|segment| segment == "tests") {
            continue;
        }
        let source = fs::read_to_string(&file).unwrap();
        let used = uses(&module, &source)
            .into_iter()
            .map(|name| reexports.get(&name).cloned().unwrap_or(name))
            .filter(|name| *name != module[0]);
        graph.entry(module[0].clone()).or_default().extend(used);
    }
    graph
}

/// A circle in the graph, if any: the modules along it.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<String>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, done, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, graph, &mut done, &mut Vec::new()) {
            return Some(cycle);
        }
    }
    None
}

#[test]
fn the_scan_reads_use_lines_groups_inline_paths_and_super() {
    let module = ["core".to_string(), "tests".to_string()];
    let source = "use crate::{frame::Frame, error::{Error, ErrorKind}};\n\
                  // crate::js in a comment is no dependency\n\
                  /// [`Options`](crate::options::Options)\n\
                  fn f() { crate::rt::spawn(async {}); super::super::mailbox::Shared::new(); }\n\
                  macro_rules! m { () => { $crate::time::now() } }\n\
                  #[cfg(test)]\nmod tests { use crate::js::X; fn f() { if true { crate::socket::f() } } }";
    let used: Vec<String> = uses(&module, source).into_iter().collect();
    assert_eq!(used, ["error", "frame", "mailbox", "rt"]);
}

#[test]
fn every_module_has_a_layer() {
    for (module, used) in graph() {
        for name in used.iter().chain([&module]) {
            assert!(
                name == ROOT || layer_of(name).is_some(),
                "{name} (used by {module}) has no layer in tests/layers.rs: \
                 a module to add to LAYERS, or a root path the scan does not resolve"
            );
        }
    }
}

#[test]
fn no_import_circles() {
    let graph = graph();
    if let Some(cycle) = find_cycle(&graph) {
        panic!("an import circle: {}", cycle.join(" -> "));
    }
}

#[test]
fn no_import_runs_up_a_layer() {
    let mut upward = Vec::new();
    for (module, used) in graph() {
        let Some(from) = layer_of(&module) else {
            continue;
        };
        for target in used {
            if let Some(to) = layer_of(&target) {
                if to > from {
                    upward.push(format!(
                        "{module} ({}) -> {target} ({})",
                        LAYERS[from].0, LAYERS[to].0
                    ));
                }
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that run up a layer:\n{}",
        upward.join("\n")
    );
}
