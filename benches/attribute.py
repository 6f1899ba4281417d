#!/usr/bin/env python3
"""Where a client's instructions per message go, by what they pay for.

Runs the native bench binary under callgrind for two message counts and
takes the difference, so start-up and connecting cancel out; each
function's own (self) instructions are put in one category by its name,
and the categories are printed per message, for wstether and for the
hand-batched tokio-tungstenite client, as the Markdown table of
BENCHMARKS.md's "What the guarantees cost".

    cargo bench --bench native --no-run        # prints the binary's path
    python3 benches/attribute.py BINARY [SCENARIO] [LOW HIGH]

SCENARIO is pipe-32B-text unless given; LOW and HIGH are 2000 and 22000.
Instruction counts do not depend on the machine's load.
"""

import collections
import os
import re
import subprocess
import sys
import tempfile

# (category, name patterns): the first category whose pattern is found in
# a function's name takes its instructions. Order matters.
CATEGORIES = [
    ("the bench's own payload building (all clients alike)",
     [r"^native::payload", r"format_inner", r"core::fmt::", r"fmt::Display", r"fmt::Write",
      r"converts::from_utf8", r"SpecFromIter", r"pad_integral", r"Map<I,F>.*fold"]),
    ("send queue: any task or thread may send, with back-pressure (handle → driver)",
     [r"wstether::mailbox::Shared", r"wstether::mailbox::send_queue", r"Connection::send",
      r"Connection::ws_send", r"Connection::mailbox", r"check_frames", r"validate_outgoing",
      r"Frames::for_each", r"wstether::frame::", r"drop_in_place<wstether::frame"]),
    ("delivery ledger: frames kept until written, unsent ones handed back",
     [r"wstether::core::delivery", r"Core::handle_command", r"Core::poll_transmit",
      r"Core::on_flushed", r"Core::on_written"]),
    ("core on receive: limits, flow credit, keepalive and close bookkeeping",
     [r"Core::on_frame", r"wstether::core::"]),
    ("event queue: bounded, one event per frame, back-pressure on reads",
     [r"wstether::connection::Events", r"wstether::mailbox::events", r"drop_in_place<wstether::event",
      r"wstether::event::"]),
    ("driver task: one turn per batch (both targets' loop)",
     [r"wstether::driver::", r"PollFn<F>", r"MaybeDone"]),
    ("payload arena: small payloads copied into shared chunks, out and in",
     [r"wstether::payload_arena"]),
    ("socket layer: the one frame reader and writer (data frames read and written beside tungstenite)",
     [r"wstether::transport::", r"wstether::utf8_bytes"]),
    ("tungstenite and tokio-tungstenite: frame coding (all clients)",
     [r"tungstenite::", r"tokio_tungstenite::", r"futures_util::stream::stream::split",
      r"bilock", r"Next<St>"]),
    ("bytes: shared payloads",
     [r"^bytes::"]),
    ("masking keys (rand's thread RNG, all clients; partly inlined into wstether's writer)",
     [r"^rand::", r"chacha20"]),
    ("allocator", [r"malloc", r"^free$", r"_int_free", r"realloc", r"unlink_chunk", r"__rust_alloc",
                   r"__rust_dealloc", r"__rust_realloc", r"tcache", r"sysmalloc"]),
    ("memcpy and memset", [r"memcpy", r"memmove", r"memset"]),
    ("tokio: scheduler, timers, I/O readiness", [r"^tokio::", r"mio::", r"AtomicWaker", r"waker"]),
]
OTHER = "the rest (syscalls' wrappers, std)"


def run(binary, scenario, client, count, out):
    subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary,
         "--only", scenario, "--client", client, "--runs", "1", "--count", str(count)],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def self_costs(path):
    text = subprocess.run(["callgrind_annotate", "--threshold=100", "--inclusive=no", path],
                          capture_output=True, text=True, check=True).stdout
    costs = collections.Counter()
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\([^)]*\)\s+(.*?)\s*(\[.*\])?$", line)
        if m and ":" in m.group(2) and "PROGRAM TOTALS" not in line:
            costs[m.group(2).split(":", 1)[1]] += int(m.group(1).replace(",", ""))
    return costs


def category(name):
    for label, patterns in CATEGORIES:
        if any(re.search(p, name) for p in patterns):
            return label
    return OTHER


def per_message(binary, scenario, client, low, high, work):
    costs = []
    for count in (low, high):
        out = os.path.join(work, f"{client}-{count}.out")
        run(binary, scenario, client, count, out)
        costs.append(self_costs(out))
    by = collections.Counter()
    for name, ir in costs[1].items():
        by[category(name)] += (ir - costs[0].get(name, 0)) / (high - low)
    return by


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    binary = sys.argv[1]
    scenario = sys.argv[2] if len(sys.argv) > 2 else "pipe-32B-text"
    low, high = (int(sys.argv[3]), int(sys.argv[4])) if len(sys.argv) > 4 else (2000, 22000)
    clients = ["wstether", "tokio-tungstenite-batched"]
    with tempfile.TemporaryDirectory() as work:
        results = {c: per_message(binary, scenario, c, low, high, work) for c in clients}
    labels = [label for label, _ in CATEGORIES] + [OTHER]
    print(f"| {scenario}: instructions per message | wstether | tokio-tungstenite, hand-batched | difference |")
    print("|---|---:|---:|---:|")
    for label in labels:
        w, t = results[clients[0]][label], results[clients[1]][label]
        if abs(w) < 0.5 and abs(t) < 0.5:
            continue
        print(f"| {label} | {w:,.0f} | {t:,.0f} | {w - t:+,.0f} |")
    tw, tt = (sum(results[c].values()) for c in clients)
    print(f"| **total** | **{tw:,.0f}** | **{tt:,.0f}** | **{tw - tt:+,.0f}** |")


if __name__ == "__main__":
    main()
