// Browser benchmark driver: wstether's wasm build against the raw JS
// WebSocket, in the same page, in headless Chromium driven over the Chrome
// DevTools Protocol (no Playwright: its network instrumentation slows
// WebSocket traffic; no WebDriver: nothing between us and the page).
//
// Per page load: a fresh Chromium (own user-data-dir, debugging port 0)
// opens the page (benches/browser/page + wasm-bindgen --target web output in
// pkg/), served here on loopback; for each scenario, in an order drawn per
// load, each client runs once, and the renderer's CPU time
// (SystemInfo.getProcessInfo, `cpuTime` of the one renderer process) is
// read just before and after. One `BENCH {json}` line per scenario and load.
//
// Three clients: wstether, the raw JS WebSocket and the floor (the same
// scenario in Rust on bare web-sys, benches/browser/src/lib.rs), so that
// wstether ÷ floor and floor ÷ raw JS are per load.
//
//   node browser-bench.mjs --url ws://127.0.0.1:PORT/ --page DIR --loads N [--smoke]
//                          [--profile DIR]   # CPU profiles of wstether's runs
//                          [--count]         # exact calls per message (one load, a tenth of the counts)
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, readdirSync, readFileSync, rmSync, existsSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, extname, normalize } from 'node:path';
import { pathToFileURL } from 'node:url';
import WebSocket from 'ws';

// Full counts; smoke runs a hundredth (at least 2). `.ci/bench-browser`
// checks that what every load received is exactly this.
export const CLIENTS = ['wstether', 'raw_js', 'floor'];

export const SCENARIOS = [
  { name: 'rtt-32B-text', pipelined: false, size: 32, text: true, count: 5_000 },
  { name: 'pipe-1KiB-binary', pipelined: true, size: 1024, text: false, count: 30_000 },
  { name: 'pipe-64KiB-binary', pipelined: true, size: 64 << 10, text: false, count: 2_000 },
];

/** Parses the command line; only a literal `--smoke` asks for smoke counts. */
export function parseArgs(argv) {
  const args = { smoke: false, count: false, loads: 1, url: null, page: null, profile: null, chromium: '/usr/bin/chromium' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--smoke') args.smoke = true;
    else if (a === '--count') args.count = true;
    else if (a === '--loads') args.loads = Number(value());
    else if (a === '--url') args.url = value();
    else if (a === '--page') args.page = value();
    else if (a === '--profile') args.profile = value();
    else if (a === '--chromium') args.chromium = value();
    else throw new Error(`unknown argument ${JSON.stringify(a)}`);
  }
  if (!Number.isInteger(args.loads) || args.loads < 1) throw new Error('--loads must be a positive integer');
  return args;
}

/** The scenarios a run uses: full counts, a hundredth for smoke, a tenth for --count. */
export function scenarios(smoke, count = false) {
  const div = smoke ? 100 : count ? 10 : 1;
  return SCENARIOS.map((s) => ({ ...s, count: Math.max(Math.floor(s.count / div), 2) }));
}

/** Shuffles the clients (the order of the runs in one load and scenario). */
export function shuffled(clients, random = Math.random) {
  const order = [...clients];
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' };

function serve(dir) {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname)).replace(/^\/+/, '');
    const file = join(dir, path || 'index.html');
    if (path.includes('..') || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
    res.end(readFileSync(file));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** A minimal CDP client over the browser's WebSocket (flattened sessions). */
class Cdp {
  constructor(ws) {
    this.ws = ws;
    this.next = 1;
    this.pending = new Map();
    ws.on('message', (data) => {
      const msg = JSON.parse(data);
      const p = msg.id && this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.error) p.reject(new Error(`${p.method}: ${msg.error.message}`));
      else p.resolve(msg.result);
    });
    ws.on('close', () => {
      for (const p of this.pending.values()) p.reject(new Error('CDP connection closed'));
      this.pending.clear();
    });
  }
  static connect(url) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 1 << 30 });
      ws.once('open', () => resolve(new Cdp(ws)));
      ws.once('error', reject);
    });
  }
  send(method, params = {}, sessionId) {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, method });
      this.ws.send(JSON.stringify({ id, method, params, sessionId }));
    });
  }
  close() {
    this.ws.close();
  }
}

async function waitForFile(path, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (existsSync(path)) {
      const text = readFileSync(path, 'utf8');
      if (text.includes('\n')) return text;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${path} did not appear`);
}

async function launch(chromium, pageUrl) {
  const userDataDir = mkdtempSync(join(tmpdir(), 'wstether-bench-browser-'));
  const child = spawn(chromium, [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-dev-shm-usage', '--disable-extensions',
    '--remote-debugging-port=0', `--user-data-dir=${userDataDir}`, pageUrl,
  ], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  // Chromium runs in its own process group: stopping it stops all of its
  // processes, which may still be writing to the profile for a moment.
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        child.kill('SIGTERM');
      }
    }
    await exited;
    for (let attempt = 1; ; attempt++) {
      try {
        rmSync(userDataDir, { recursive: true, force: true });
        return;
      } catch (e) {
        if (attempt >= 50) {
          console.error(`could not remove ${userDataDir}: ${e.message}`);
          return;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  try {
    const [port, path] = (await waitForFile(join(userDataDir, 'DevToolsActivePort'), 30_000)).trim().split('\n');
    const cdp = await Cdp.connect(`ws://127.0.0.1:${port}${path}`);
    return { cdp, stop, stderr: () => stderr };
  } catch (e) {
    await stop();
    throw new Error(`${e.message}\nchromium stderr:\n${stderr}`);
  }
}

/** CPU seconds of every renderer process, by pid (SystemInfo.getProcessInfo). */
async function rendererCpu(cdp) {
  const { processInfo } = await cdp.send('SystemInfo.getProcessInfo');
  return new Map(processInfo.filter((p) => p.type === 'renderer').map((p) => [p.id, p.cpuTime]));
}

/** The summed scheduler run time of a process's threads, in ms (ns precision). */
function schedMs(pid) {
  let ns = 0;
  let tids = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return 0;
  }
  for (const tid of tids) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return ns / 1e6;
}

/**
 * The page's renderer: Chromium keeps other renderers (the first one is
 * still busy for a while after the page moved out of it), so the page
 * spins for 300 ms and the renderer that ran by far the most is ours, once
 * the same one wins twice in a row.
 */
async function findRenderer(cdp, session) {
  let grown = [];
  let last = null;
  for (let attempt = 0; attempt < 10; attempt++) {
    const pids = [...(await rendererCpu(cdp)).keys()];
    const before = pids.map(schedMs);
    await evaluate(cdp, session, '{ const end = performance.now() + 300; while (performance.now() < end); true }');
    grown = pids.map((pid, i) => [pid, schedMs(pid) - before[i]]).sort((a, b) => b[1] - a[1]);
    const clear = grown.length && grown[0][1] >= 50 && !(grown[1] && grown[1][1] > grown[0][1] / 4);
    const winner = clear ? grown[0][0] : null;
    if (winner !== null && winner === last) return winner;
    last = winner;
  }
  throw new Error(`cannot tell the page's renderer (ms run while the page spun, by pid): ${JSON.stringify(grown)}`);
}

/**
 * The renderer's CPU time in ms: getProcessInfo's `cpuTime` (10 ms ticks)
 * and the sum of its threads' scheduler run time (/proc/PID/task/{*}/schedstat,
 * nanoseconds), the finer of the two, used for the figures.
 */
async function rendererCpuMs(cdp, pid) {
  const cpu = (await rendererCpu(cdp)).get(pid);
  if (cpu === undefined) throw new Error(`renderer ${pid} is gone`);
  return { cdpMs: cpu * 1e3, schedMs: schedMs(pid) };
}

async function evaluate(cdp, session, expression) {
  const r = await cdp.send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true }, session);
  if (r.exceptionDetails) {
    const d = r.exceptionDetails;
    throw new Error(`page: ${d.exception?.description ?? d.text}`);
  }
  return r.result.value;
}

/** Self time per function (µs and share) from a CDP CPU profile. */
export function summarise(profile, top = 25) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const deltas = profile.timeDeltas;
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = deltas[i + 1] ?? 0;
    const f = byId.get(id).callFrame;
    const key = `${f.functionName || '(anonymous)'} ${f.url ? f.url.split('/').pop() : ''}`.trim();
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  });
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, us]) => ({ name, self_ms: +(us / 1e3).toFixed(1), share: +(us / total).toFixed(3) }));
}

async function pageLoad(args, pageUrl, list, load) {
  const { cdp, stop, stderr } = await launch(args.chromium, pageUrl);
  try {
    let target = null;
    for (let i = 0; i < 500 && !target; i++) {
      const { targetInfos } = await cdp.send('Target.getTargets');
      target = targetInfos.find((t) => t.type === 'page' && t.url.startsWith(pageUrl));
      if (!target) await new Promise((r) => setTimeout(r, 20));
    }
    if (!target) throw new Error('the bench page did not open');
    const { sessionId } = await cdp.send('Target.attachToTarget', { targetId: target.targetId, flatten: true });
    // The page may still be loading (a navigation destroys the context the
    // first evaluation ran in): ask again until the module is ready.
    for (let attempt = 1; ; attempt++) {
      try {
        await evaluate(cdp, sessionId, `new Promise((resolve, reject) => {
          const wait = () => window.bench ? window.bench.ready.then(() => resolve(true), reject) : setTimeout(wait, 10);
          wait();
        })`);
        break;
      } catch (e) {
        if (attempt >= 50 || !/context/i.test(e.message)) throw e;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const pid = await findRenderer(cdp, sessionId);
    if (args.profile) {
      await cdp.send('Profiler.enable', {}, sessionId);
      await cdp.send('Profiler.setSamplingInterval', { interval: 100 }, sessionId);
    }
    // Warm-up, not measured: each client runs each scenario at a tenth of
    // its count, so that both are measured in their steady state (V8 has
    // tiered the hot wasm and JS code up; the first run otherwise pays for
    // compiling, on the renderer's threads).
    for (const s of list) {
      for (const client of CLIENTS) {
        const c = JSON.stringify(client);
        const warm = { ...s, count: Math.max(Math.floor(s.count / 10), 2) };
        await evaluate(cdp, sessionId, `window.bench.prepare(${c}, ${JSON.stringify(args.url)}, ${JSON.stringify(warm)})`);
        const { received } = await evaluate(cdp, sessionId, `window.bench.go(${c})`);
        await evaluate(cdp, sessionId, `window.bench.finish(${c})`);
        if (received !== warm.count) throw new Error(`warm-up ${s.name} ${client}: received ${received} of ${warm.count}`);
      }
    }
    const rows = [];
    for (const s of list) {
      const order = shuffled(CLIENTS);
      const row = { load, scenario: s.name, count: s.count, size: s.size, order };
      for (const client of order) {
        const profiling = args.profile && (client === 'wstether' || s.name !== 'pipe-64KiB-binary');
        const c = JSON.stringify(client);
        await evaluate(cdp, sessionId, `window.bench.prepare(${c}, ${JSON.stringify(args.url)}, ${JSON.stringify(s)})`);
        if (profiling) await cdp.send('Profiler.start', {}, sessionId);
        if (args.count) await evaluate(cdp, sessionId, 'window.bench.counts.reset()');
        const before = await rendererCpuMs(cdp, pid);
        const { ms, received } = await evaluate(cdp, sessionId, `window.bench.go(${c})`);
        const after = await rendererCpuMs(cdp, pid);
        if (args.count) row[`${client}_calls`] = await evaluate(cdp, sessionId, 'window.bench.counts.take()');
        await evaluate(cdp, sessionId, `window.bench.finish(${c})`);
        if (profiling) {
          const { profile } = await cdp.send('Profiler.stop', {}, sessionId);
          mkdirSync(args.profile, { recursive: true });
          const base = join(args.profile, `${s.name}-${client}-load${load}`);
          writeFileSync(`${base}.cpuprofile`, JSON.stringify(profile));
          writeFileSync(`${base}.top.json`, JSON.stringify(summarise(profile), null, 1));
        }
        row[`${client}_ms`] = +ms.toFixed(3);
        row[`${client}_received`] = received;
        // The page's renderer runs for a good part of every run (13-80 %
        // of its time here, the least on a loaded machine); another
        // renderer, measured by mistake, ran for 0.1 % of it.
        if (after.schedMs - before.schedMs < ms * 0.02) {
          throw new Error(`${client} ${s.name}: only ${(after.schedMs - before.schedMs).toFixed(1)} ms of CPU in ${ms.toFixed(0)} ms: not the page's renderer?`);
        }
        row[`${client}_cpu_ms`] = +(after.schedMs - before.schedMs).toFixed(3);
        row[`${client}_cpu_ms_cdp`] = +(after.cdpMs - before.cdpMs).toFixed(1);
      }
      rows.push(row);
    }
    return rows;
  } catch (e) {
    throw new Error(`${e.stack}\nchromium stderr:\n${stderr()}`);
  } finally {
    cdp.close();
    await stop();
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (!args.url || !args.page) throw new Error('--url and --page are required');
  const server = await serve(args.page);
  const pageUrl = `http://127.0.0.1:${server.address().port}/index.html${args.count ? '?count' : ''}`;
  const list = scenarios(args.smoke, args.count);
  try {
    for (let load = 1; load <= args.loads; load++) {
      const started = Date.now();
      const rows = await pageLoad(args, pageUrl, list, load);
      for (const row of rows) console.log(`BENCH ${JSON.stringify(row)}`);
      console.error(`page load ${load}/${args.loads}: ${((Date.now() - started) / 1e3).toFixed(1)} s`);
    }
  } finally {
    server.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e) => {
    console.error(e.stack ?? e);
    process.exit(1);
  });
}
