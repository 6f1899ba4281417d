//! `--deflate-memlevel`: what the deflater's memory level costs and saves,
//! on zlib-rs directly, as the deflate layer uses it (raw deflate, window
//! bits 15, a sync flush a message, context takeover).
//!
//! ```text
//! cargo bench --bench native -- --deflate-memlevel                  # the table
//! cargo bench --bench native -- --deflate-memlevel CORPUS MEM COUNT # one run, for callgrind
//! ```
//!
//! The table: compressed size (% of the messages' bytes) and µs per message
//! (best of 3 runs of at least 4 MiB) at level 6, by memory level, for four corpora. Instructions
//! per message: `valgrind --tool=callgrind` on the one-run form at two
//! counts, (Ir at 6,000 − Ir at 1,000) / 5,000, as for `--deflate-tiny`.

use std::time::Instant;

use zlib_rs::{Deflate, DeflateConfig, DeflateFlush, Method, Strategy};

const CORPORA: [&str; 4] = ["json32", "json1k", "words16k", "json64k"];
const MEM_LEVELS: [i32; 6] = [1, 3, 4, 5, 6, 8];

/// JSON-like text (the `--deflate` scenario's kind), `size` bytes.
fn json(i: usize, size: usize) -> Vec<u8> {
    let mut s = String::from("[");
    let mut k = i * 10;
    while s.len() < size {
        s.push_str(&format!(
            r#"{{"id":{k},"user":"user-{k}","active":{},"score":{},"tags":["alpha","beta"]}},"#,
            k % 3 == 0,
            k * 37 % 1000
        ));
        k += 1;
    }
    s.truncate(size);
    s.into_bytes()
}

/// Words drawn at random from a small vocabulary, with numbers: text that
/// compresses to ~25 %, with many literals (more symbols a block than JSON).
fn words(i: usize, size: usize) -> Vec<u8> {
    const WORDS: [&str; 24] = [
        "the",
        "socket",
        "reconnects",
        "after",
        "a",
        "backoff",
        "of",
        "seconds",
        "while",
        "frames",
        "queue",
        "in",
        "order",
        "and",
        "nothing",
        "is",
        "lost",
        "when",
        "server",
        "restarts",
        "client",
        "keeps",
        "sending",
        "pings",
    ];
    let mut x = (i as u64 + 1).wrapping_mul(6_364_136_223_846_793_005);
    let mut s = String::new();
    while s.len() < size {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        s.push_str(WORDS[((x >> 33) % 24) as usize]);
        s.push(if (x >> 20) % 11 == 0 { '.' } else { ' ' });
        if (x >> 40) % 7 == 0 {
            s.push_str(&format!("{} ", (x >> 45) % 100_000));
        }
    }
    s.truncate(size);
    s.into_bytes()
}

fn corpus(name: &str) -> Vec<Vec<u8>> {
    (0..200)
        .map(|i| match name {
            "json32" => json(i, 32),
            "json1k" => json(i, 1024),
            "words16k" => words(i, 16 << 10),
            "json64k" => json(i, 64 << 10),
            other => panic!("no corpus {other}: one of {CORPORA:?}"),
        })
        .collect()
}

/// Compresses `count` messages (the corpus in turn); the compressed bytes.
fn run(messages: &[Vec<u8>], mem_level: i32, count: usize) -> usize {
    let mut deflater = Deflate::new_with_config(DeflateConfig {
        level: 6,
        method: Method::Deflated,
        window_bits: -15,
        mem_level,
        strategy: Strategy::Default,
    });
    let mut out = vec![0u8; 128 << 10];
    let mut total = 0;
    for message in messages.iter().cycle().take(count) {
        let (before_in, before_out) = (deflater.total_in(), deflater.total_out());
        deflater
            .compress(message, &mut out, DeflateFlush::SyncFlush)
            .unwrap();
        // `out` has room for all of it: one call takes the whole message.
        assert_eq!((deflater.total_in() - before_in) as usize, message.len());
        // Less the trailer the layer cuts (RFC 7692 §7.2.1).
        total += (deflater.total_out() - before_out) as usize - 4;
    }
    total
}

pub fn main(args: &[String]) {
    if let [corpus_name, mem, count] = args {
        let messages = corpus(corpus_name);
        let bytes = run(&messages, mem.parse().unwrap(), count.parse().unwrap());
        println!("{corpus_name} mem level {mem}: {count} messages, {bytes} B compressed");
        return;
    }
    println!("| corpus | memory level | compressed | µs per message |");
    println!("|---|---:|---:|---:|");
    for name in CORPORA {
        let messages = corpus(name);
        let average = messages.iter().map(Vec::len).sum::<usize>() / messages.len();
        // At least 4 MiB a run, so that tiny messages are timed too.
        let count = ((4 << 20) / average).max(messages.len());
        let plain: usize = messages.iter().cycle().take(count).map(Vec::len).sum();
        for mem_level in MEM_LEVELS {
            let mut best = f64::MAX;
            let mut bytes = 0;
            for _ in 0..3 {
                let started = Instant::now();
                bytes = run(&messages, mem_level, count);
                best = best.min(started.elapsed().as_secs_f64());
            }
            println!(
                "| {name} | {mem_level} | {:.2} % | {:.2} |",
                bytes as f64 * 100.0 / plain as f64,
                best * 1e6 / count as f64
            );
        }
    }
}
