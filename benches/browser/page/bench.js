// The page of the browser benchmark. It loads wstether's wasm build
// (wasm-bindgen --target web, served as pkg/: wstether's client and the
// floor, the same client on bare web-sys) and holds the raw JS client: the
// same scenario written plainly on the browser's WebSocket. The driver
// (benches/node/browser-bench.mjs) calls `window.bench` over CDP, reading
// the renderer's CPU time between `prepare` and `go` and after `go`, so
// that connecting, building the messages and closing are not measured.
import { counts } from './count.js';
import init, {
  wstether_prepare, wstether_go, wstether_finish, floor_prepare, floor_go, floor_finish,
} from './pkg/wstether_browser_bench.js';

// The raw client, in the same three steps as wstether's.
const raw = {
  prepared: null,
  prepare(url, pipelined, size, text, count) {
    const head = (i) => new TextEncoder().encode(`${i} `);
    const messages = [];
    for (let i = 0; i < count; i++) {
      const data = new Uint8Array(Math.max(size, head(i).length)).fill(120);
      data.set(head(i));
      messages.push(text ? new TextDecoder().decode(data) : data.buffer);
    }
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.binaryType = 'arraybuffer';
      ws.onerror = () => reject(new Error('raw websocket error'));
      ws.onopen = () => {
        raw.prepared = { ws, messages, pipelined };
        resolve();
      };
    });
  },
  // Resolves to [milliseconds, echoes received].
  go() {
    const { ws, messages, pipelined } = raw.prepared;
    const count = messages.length;
    // Each echo's data is taken, as an application does (and as wstether
    // hands it over): Chromium makes the string or ArrayBuffer only when
    // `data` is read.
    return new Promise((resolve, reject) => {
      let received = 0;
      let bytes = 0;
      const started = performance.now();
      const done = () => {
        const ms = performance.now() - started;
        const expected = messages.reduce((n, m) => n + (typeof m === 'string' ? m.length : m.byteLength), 0);
        if (bytes !== expected) reject(new Error(`raw client received ${bytes} bytes, expected ${expected}`));
        else resolve([ms, received]);
      };
      const take = (e) => {
        const d = e.data;
        bytes += typeof d === 'string' ? d.length : d.byteLength;
        received += 1;
      };
      if (pipelined) {
        ws.onmessage = (e) => { take(e); if (received === count) done(); };
        for (const m of messages) ws.send(m);
      } else {
        ws.onmessage = (e) => {
          take(e);
          if (received === count) return done();
          ws.send(messages[received]);
        };
        ws.send(messages[0]);
      }
    });
  },
  finish() {
    const { ws } = raw.prepared;
    raw.prepared = null;
    return new Promise((resolve) => {
      ws.onclose = () => resolve();
      ws.close(1000);
    });
  },
};

const clients = {
  wstether: { prepare: wstether_prepare, go: wstether_go, finish: wstether_finish },
  raw_js: raw,
  // The bare web-sys client (src/lib.rs, `floor`): what any wasm client pays.
  floor: { prepare: floor_prepare, go: floor_go, finish: floor_finish },
};

window.bench = {
  ready: init(),
  // Calls into the browser and into wasm during `go` (page loaded with ?count).
  counts,
  // client: "wstether", "raw_js" or "floor"; a scenario: {pipelined, size, text, count}.
  prepare: (client, url, s) => clients[client].prepare(url, s.pipelined, s.size, s.text, s.count),
  async go(client) {
    const [ms, received] = await clients[client].go();
    return { ms, received };
  },
  finish: (client) => clients[client].finish(),
};
