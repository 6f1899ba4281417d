#!/usr/bin/env python3
"""Turns the benchmark results (target/bench-results/*.json) into SVG charts
under benches/charts/ and the tables of BENCHMARKS.md (between the
<!-- results:NAME --> markers). Run by .ci/bench after the benchmarks;
standard library only."""

import json
import os
import re
import sys
from html import escape

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "bench-results")
CHARTS = os.path.join(ROOT, "benches", "charts")
COLORS = {"wstether": "#2a7ae2", "tokio-tungstenite": "#8a8a8a", "fastwebsockets": "#e2a32a",
          "node-ws": "#4caf50", "raw JS WebSocket": "#e25a2a"}


def load(name):
    path = os.path.join(RESULTS, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def bar_chart(path, title, groups, series, value, unit, log=False):
    """groups: list of x labels; series: list of names; value(group, name) -> float or None."""
    width, height, left, bottom, top = 760, 340, 70, 60, 40
    plot_w, plot_h = width - left - 20, height - top - bottom
    values = [value(g, s) for g in groups for s in series]
    vmax = max([v for v in values if v] + [1.0])
    bar_w = plot_w / len(groups) / (len(series) + 1)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14">{escape(title)}</text>']
    for i in range(5):
        y = top + plot_h - plot_h * i / 4
        out.append(f'<line x1="{left}" x2="{width - 20}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{vmax * i / 4:.2f}</text>')
    out.append(f'<text x="14" y="{top + plot_h / 2}" transform="rotate(-90 14 {top + plot_h / 2})" text-anchor="middle">{escape(unit)}</text>')
    for gi, group in enumerate(groups):
        gx = left + gi * plot_w / len(groups) + bar_w / 2
        for si, name in enumerate(series):
            v = value(group, name)
            if not v:
                continue
            h = plot_h * v / vmax
            x = gx + si * bar_w
            out.append(f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w * 0.9:.1f}" height="{h:.1f}" fill="{COLORS.get(name, "#555")}"><title>{escape(name)}: {v:.3g}</title></rect>')
        out.append(f'<text x="{gx + bar_w * len(series) / 2:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{escape(group)}</text>')
    for si, name in enumerate(series):
        x = left + si * 150
        out.append(f'<rect x="{x}" y="{height - 22}" width="10" height="10" fill="{COLORS.get(name, "#555")}"/>')
        out.append(f'<text x="{x + 14}" y="{height - 13}">{escape(name)}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def histogram_chart(path, title, series):
    """series: {name: [count per 100 ms bucket]}"""
    width, height, left, bottom, top = 760, 300, 60, 50, 40
    plot_w, plot_h = width - left - 20, height - top - bottom
    n = max(len(b) for b in series.values())
    vmax = max(max(b) for b in series.values() if b) or 1
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14">{escape(title)}</text>']
    colors = ["#2a7ae2", "#e25a2a"]
    for si, (name, buckets) in enumerate(series.items()):
        points = " ".join(f"{left + plot_w * i / max(n - 1, 1):.1f},{top + plot_h - plot_h * v / vmax:.1f}" for i, v in enumerate(buckets))
        out.append(f'<polyline points="{points}" fill="none" stroke="{colors[si % 2]}" stroke-width="2"/>')
        out.append(f'<rect x="{left + si * 200}" y="{height - 20}" width="10" height="10" fill="{colors[si % 2]}"/>')
        out.append(f'<text x="{left + si * 200 + 14}" y="{height - 11}">{escape(name)}</text>')
    out.append(f'<text x="{left - 6}" y="{top + 4}" text-anchor="end">{vmax}</text>')
    out.append(f'<text x="{left - 6}" y="{top + plot_h + 4}" text-anchor="end">0</text>')
    out.append(f'<text x="{width - 20}" y="{top + plot_h + 16}" text-anchor="end">{n * 100} ms</text>')
    out.append(f'<text x="{left}" y="{top + plot_h + 16}">reconnects per 100 ms after the restart</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def native_section(rows):
    scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
    clients = list(dict.fromkeys(r["client"] for r in rows))
    get = {(r["scenario"], r["client"]): r for r in rows}
    lines = ["| scenario | " + " | ".join(clients) + " |", "|---|" + "---:|" * len(clients)]
    for s in scenarios:
        cells = []
        for c in clients:
            r = get.get((s, c))
            cells.append("—" if not r else f"{r['msgs_per_s']:,.0f} msg/s<br>{r['mb_per_s']:,.1f} MB/s<br>**{r['vs_tungstenite']:.2f}×**")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    # Per run: clients take turns (A B C D A B C D ...), so run i of every
    # client saw the same machine; the ratio is the fastest peer's time in
    # that run ÷ wstether's. Median, IQR and min–max over the runs.
    best = []
    for s in scenarios:
        ours = get.get((s, "wstether"))
        # wstether's own variants (recv_many) are not peers.
        peers = [get[(s, c)] for c in clients if not c.startswith("wstether") and (s, c) in get]
        if not ours or not peers:
            continue
        top = max(peers, key=lambda r: r["msgs_per_s"])
        runs = min([len(ours["samples_ms"])] + [len(r["samples_ms"]) for r in peers])
        ratios = sorted(min(r["samples_ms"][i] for r in peers) / ours["samples_ms"][i] for i in range(runs))
        q = lambda f: ratios[min(int(f * (len(ratios) - 1) + 0.5), len(ratios) - 1)]
        best.append(f"| {s} | {top['client']} | **{ours['msgs_per_s'] / top['msgs_per_s']:.2f}×** | "
                    f"{q(0.5):.2f}× ({q(0.25):.2f}–{q(0.75):.2f}; {ratios[0]:.2f}–{ratios[-1]:.2f}) |")
    lines += ["", "wstether against the best peer of each scenario (medians of the runs; then, run by run, the fastest "
              "peer's time in that run ÷ wstether's: median (IQR; min–max)):", "",
              "| scenario | best peer (median) | wstether ÷ best peer | per run: median (IQR; min–max) |",
              "|---|---|---:|---:|"] + best
    bar_chart(os.path.join(CHARTS, "native.svg"), "Native: throughput relative to tokio-tungstenite (higher is better)",
              scenarios, clients, lambda s, c: get.get((s, c), {}).get("vs_tungstenite"), "× tokio-tungstenite")
    return "\n".join(lines) + "\n\n![native](benches/charts/native.svg)\n"


def allocs_section(rows):
    """Allocations per message, from the counting allocator of benches/native.rs."""
    rows = [r for r in rows if r.get("allocs_per_msg")]
    if not rows:
        return "No allocation counts in this run.\n"
    scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
    clients = list(dict.fromkeys(r["client"] for r in rows))
    get = {(r["scenario"], r["client"]): r for r in rows}

    def fmt(v):
        return f"{v:,.2f}" if v < 100 else f"{v:,.0f}"

    lines = ["| scenario | " + " | ".join(clients) + " |", "|---|" + "---:|" * len(clients)]
    for s in scenarios:
        cells = []
        for c in clients:
            r = get.get((s, c))
            if not r:
                cells.append("—")
                continue
            a, b = r["allocs_per_msg"], r["alloc_bytes_per_msg"]
            cells.append(f"**{fmt(a['median'])}** ({fmt(a['min'])}–{fmt(a['max'])})<br>{b['median']:,.0f} B")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    runs = max(r["runs"] for r in rows)
    return ("\n".join(lines) + f"\n\nAllocations per message (median of {runs} runs, (min–max)), and the bytes they asked "
            "for per message (median), in each client's measured window of the run above (Node's client, another "
            "process, is not counted).\n")


def browser_section(rows):
    def rng(sp, fmt):
        return f"{fmt.format(sp['min'])}–{fmt.format(sp['max'])}"

    floor = all("floor_cpu_us_per_msg" in r for r in rows)
    lines = ["Per scenario, over the page loads: the median, then (IQR) and min–max. Speed is the median of "
             "raw JS time ÷ wstether time per load (higher is better for wstether); CPU is the renderer's CPU time "
             "during the run, per message, and the ratio wstether ÷ raw JS per load (lower is better)."
             + (" The floor is the same client written in Rust on bare web-sys (no driver, no tasks, no queues), "
                "run in the same page loads: floor ÷ raw JS is what any wasm client pays for the JS ↔ wasm "
                "boundary, wstether ÷ floor what wstether's own machinery adds (both per load)." if floor else ""), "",
             "| scenario | loads | wstether msg/s | raw JS msg/s | speed: wstether ÷ raw JS | wstether CPU µs/msg | raw JS CPU µs/msg | CPU: wstether ÷ raw JS |"
             + (" floor CPU µs/msg | CPU: floor ÷ raw JS | CPU: wstether ÷ floor |" if floor else ""),
             "|---|---:|---:|---:|---:|---:|---:|---:|" + ("---:|---:|---:|" if floor else "")]
    for r in rows:
        if "wstether_cpu_us_per_msg" not in r:  # results from before CPU was measured
            lines.append(f"| {r['scenario']} | {r['loads']} | {r['wstether_msgs_per_s']:,.0f} | {r['raw_js_msgs_per_s']:,.0f} | "
                         f"**{r['ratio_median']:.2f}×** ({r['ratio_min']:.2f}–{r['ratio_max']:.2f}) | — | — | — |")
            continue
        extra = ""
        if floor:
            fc = r["floor_cpu_us_per_msg_spread"]
            extra = (f" {fc['median']:.1f}<br>({rng(fc, '{:.1f}')}) | "
                     f"**{r['floor_cpu_ratio_median']:.2f}×**<br>IQR {r['floor_cpu_ratio_q1']:.2f}–{r['floor_cpu_ratio_q3']:.2f}<br>"
                     f"({r['floor_cpu_ratio_min']:.2f}–{r['floor_cpu_ratio_max']:.2f}) | "
                     f"**{r['wstether_floor_cpu_ratio_median']:.3f}×**<br>IQR {r['wstether_floor_cpu_ratio_q1']:.3f}–"
                     f"{r['wstether_floor_cpu_ratio_q3']:.3f}<br>({r['wstether_floor_cpu_ratio_min']:.2f}–"
                     f"{r['wstether_floor_cpu_ratio_max']:.2f}) |")
        w, j = r["wstether_msgs_per_s_spread"], r["raw_js_msgs_per_s_spread"]
        wc, jc = r["wstether_cpu_us_per_msg_spread"], r["raw_js_cpu_us_per_msg_spread"]
        lines.append(
            f"| {r['scenario']} | {r['loads']} | {w['median']:,.0f}<br>({rng(w, '{:,.0f}')}) | {j['median']:,.0f}<br>({rng(j, '{:,.0f}')}) | "
            f"**{r['ratio_median']:.2f}×**<br>IQR {r['ratio_q1']:.2f}–{r['ratio_q3']:.2f}<br>({r['ratio_min']:.2f}–{r['ratio_max']:.2f}) | "
            f"{wc['median']:.1f}<br>({rng(wc, '{:.1f}')}) | {jc['median']:.1f}<br>({rng(jc, '{:.1f}')}) | "
            f"**{r['cpu_ratio_median']:.2f}×**<br>IQR {r['cpu_ratio_q1']:.2f}–{r['cpu_ratio_q3']:.2f}<br>({r['cpu_ratio_min']:.2f}–{r['cpu_ratio_max']:.2f}) |"
            + extra)
    scen = [r["scenario"] for r in rows]
    get = {r["scenario"]: r for r in rows}
    bar_chart(os.path.join(CHARTS, "browser.svg"), "Browser (headless Chromium): messages per second (higher is better)",
              scen, ["wstether", "raw JS WebSocket"],
              lambda s, c: get[s]["wstether_msgs_per_s"] / 1000 if c == "wstether" else get[s]["raw_js_msgs_per_s"] / 1000,
              "thousand msg/s")
    out = "\n".join(lines) + "\n\n![browser](benches/charts/browser.svg)\n"
    if all("wstether_cpu_us_per_msg" in r for r in rows):
        bar_chart(os.path.join(CHARTS, "browser-cpu.svg"), "Browser (headless Chromium): renderer CPU µs per message (lower is better)",
                  scen, ["wstether", "raw JS WebSocket"] + (["floor (bare web-sys)"] if floor else []),
                  lambda s, c: {"wstether": get[s]["wstether_cpu_us_per_msg"], "raw JS WebSocket": get[s]["raw_js_cpu_us_per_msg"],
                                "floor (bare web-sys)": get[s].get("floor_cpu_us_per_msg")}[c],
                  "µs per message")
        out += "\n![browser CPU](benches/charts/browser-cpu.svg)\n"
    return out


def scale_section(data):
    lines = ["| idle connections | client RSS per connection | idle CPU (% of one core) |", "|---:|---:|---:|"]
    for r in data.get("idle", []):
        lines.append(f"| {r['n']:,} | {r['rss_kib_per_conn']:.1f} KiB | {r['idle_cpu_percent']:.2f} % |")
    storm = data.get("storm", {})
    series = {}
    for key, label in (("jitter", "with jitter (default)"), ("no_jitter", "jitter 0")):
        if key in storm:
            s = storm[key]
            series[label] = s["buckets_100ms"]
            lines.append("")
            lines.append(f"Reconnect storm, {label}: {s['n']:,} connections all upgraded again after {s['all_back_ms']:,.0f} ms; "
                         f"busiest 100 ms: {max(s['buckets_100ms']) if s['buckets_100ms'] else 0} reconnects.")
    if series:
        histogram_chart(os.path.join(CHARTS, "storm.svg"), "Reconnect storm after a server restart", series)
        lines.append("\n![storm](benches/charts/storm.svg)")
    return "\n".join(lines) + "\n"


def spread(values, fmt="{:,.0f}"):
    """'median (min–max)' of a list of run values."""
    ordered = sorted(values)
    return f"{fmt.format(ordered[len(ordered) // 2])} ({fmt.format(ordered[0])}–{fmt.format(ordered[-1])})"


def latency_section(rows):
    load = rows[0].get("load", 0.5) * 100 if rows else 50
    lines = [f"| client | peak msg/s | sent at ({load:.0f} %) | p50 µs | p99 µs | p99.9 µs |", "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['client']} | {r['peak_msgs_per_s']:,.0f} | {r['rate_msgs_per_s']:,.0f} msg/s | "
                     f"**{spread(r['p50_samples'])}** | **{spread(r['p99_samples'])}** | **{spread(r['p999_samples'])}** |")
    if rows:
        r = rows[0]
        lines += ["", f"1 KiB binary messages; median (min–max) of {r['runs']} runs of {r['measure_s']:g} s "
                  f"after {r['warmup_s']:g} s of warm-up; peak: median of the runs' pipelined rates."]
    return "\n".join(lines) + "\n"


def many_section(rows):
    base = next((r for r in rows if r["client"] == "tokio-tungstenite"), None)
    lines = ["| client | msg/s (all connections) | client CPU µs/msg | ÷ tokio-tungstenite | echo server CPU µs/msg |",
             "|---|---:|---:|---:|---:|"]
    for r in rows:
        ratio = f"{r['cpu_us_per_msg'] / base['cpu_us_per_msg']:.2f}×" if base else "—"
        lines.append(f"| {r['client']} | {spread(r['msgs_per_s_samples'])} | **{spread(r['cpu_us_per_msg_samples'], '{:.2f}')}** | "
                     f"{ratio} | {spread(r['server_cpu_us_per_msg_samples'], '{:.2f}')} |")
    if rows:
        r = rows[0]
        lines += ["", f"{r['connections']:,} connections, {r['window']} messages of {r['size']:,} B in flight on each, "
                  f"{r['client_workers']} client worker threads; median (min–max) of {r['runs']} runs of {r['measure_s']:g} s. "
                  "CPU per message: user + system time over the measured window ÷ echoes received."]
    return "\n".join(lines) + "\n"


def after_burst_section(data):
    """after-burst.json (benches/scale.rs `--after-burst`): memory per connection, idle, during and 5 s after a burst."""
    rows = data.get("after_burst", [])
    if not rows:
        return "No after-burst results.\n"
    r0 = rows[0]
    lines = [f"{r0['n']:,} connections, each sent {r0['burst_bytes'] / 2**20:.0f} MiB by the server; "
             "KiB per connection: RSS (heap in use, glibc `mallinfo2`).",
             "",
             "| message size | idle | peak during the burst | 5 s after | 5 s after + `malloc_trim(0)` | burst time |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        size = r["message_bytes"]
        label = f"{size >> 20} MiB" if size >= 2**20 else f"{size >> 10} KiB"
        cell = lambda k: f"{r[k + '_rss_kib_per_conn']:,.1f} ({r[k + '_heap_kib_per_conn']:,.1f})"
        lines.append(f"| {label} | {cell('idle')} | {cell('peak')} | {cell('after')} | {cell('trimmed')} | "
                     f"{r['burst_ms']:,} ms |")
    return "\n".join(lines) + "\n"


def replace_section(text, name, body):
    pattern = re.compile(rf"(<!-- results:{name} -->\n).*?(<!-- /results:{name} -->)", re.S)
    if not pattern.search(text):
        print(f"BENCHMARKS.md has no results:{name} markers", file=sys.stderr)
        return text
    return pattern.sub(lambda m: m.group(1) + body + m.group(2), text)


def main():
    os.makedirs(CHARTS, exist_ok=True)
    path = os.path.join(ROOT, "BENCHMARKS.md")
    with open(path) as f:
        text = f.read()
    # `report.py NAME...` updates only the sections named.
    only = set(sys.argv[1:])
    for name, loader, section in (("native", "native.json", native_section), ("allocs", "native.json", allocs_section),
                                  ("browser", "browser.json", browser_section),
                                  ("scale", "scale.json", scale_section),
                                  ("latency", "latency.json", latency_section), ("many", "many.json", many_section),
                                  ("after-burst", "after-burst.json", after_burst_section)):
        if only and name not in only:
            continue
        data = load(loader)
        if data is None:
            print(f"no {loader}: the {name} section is left as it is")
            continue
        text = replace_section(text, name, section(data))
        print(f"{name}: updated")
    with open(path, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
