// `.ci/bench-browser --count`: with `?count` in the page's address, the
// calls a client makes across the JS ↔ wasm boundary and into the browser
// are counted (wrappers installed before the wasm module is instantiated,
// so every call made by wasm-bindgen's glue goes through them). Imported
// first by bench.js; a no-op without `?count`.
const on = new URLSearchParams(location.search).has('count');
const tally = {};
const bump = (name) => { tally[name] = (tally[name] ?? 0) + 1; };

export const counts = {
  reset() { for (const k of Object.keys(tally)) delete tally[k]; },
  take() { const t = { ...tally }; counts.reset(); return t; },
};

function wrapMethod(owner, name, label = name) {
  const f = owner[name];
  owner[name] = function (...args) { bump(label); return f.apply(this, args); };
}

function wrapGetter(proto, name, label = name) {
  const d = Object.getOwnPropertyDescriptor(proto, name);
  Object.defineProperty(proto, name, { ...d, get() { bump(label); return d.get.call(this); } });
}

// Every function the module exports (wasm-bindgen's glue calls them for
// each JS → wasm crossing: callbacks, closures, malloc for strings).
function countExports(instance) {
  const wrapped = {};
  for (const [name, value] of Object.entries(instance.exports)) {
    wrapped[name] = typeof value === 'function'
      ? (...args) => { bump('wasm export'); bump(`  export ${name}`); return value(...args); }
      : value;
  }
  Object.defineProperty(instance, 'exports', { value: wrapped });
  return instance;
}

// Every function the module imports (each wasm → JS crossing: a web-sys
// or js-sys call, a string or array handed back, an externref dropped).
function countImports(imports) {
  const out = {};
  for (const [module, fns] of Object.entries(imports ?? {})) {
    out[module] = {};
    for (const [name, value] of Object.entries(fns)) {
      out[module][name] = typeof value === 'function'
        ? (...args) => { bump('wasm import'); bump(`  import ${name.replace(/^__wbg_|_[0-9a-f]{16}$/g, '')}`); return value(...args); }
        : value;
    }
  }
  return out;
}

if (on) {
  wrapMethod(globalThis, 'queueMicrotask');
  wrapMethod(performance, 'now', 'performance.now');
  wrapMethod(WebSocket.prototype, 'send', 'WebSocket.send');
  wrapGetter(WebSocket.prototype, 'bufferedAmount');
  wrapGetter(WebSocket.prototype, 'readyState');
  wrapGetter(MessageEvent.prototype, 'data', 'MessageEvent.data');
  wrapMethod(globalThis, 'setTimeout');
  wrapMethod(globalThis, 'clearTimeout');
  const { instantiate, instantiateStreaming } = WebAssembly;
  const patch = (r) => (r instanceof WebAssembly.Instance ? countExports(r) : { ...r, instance: countExports(r.instance) });
  WebAssembly.instantiate = (m, imports) => instantiate(m, countImports(imports)).then(patch);
  WebAssembly.instantiateStreaming = (m, imports) => instantiateStreaming(m, countImports(imports)).then(patch);
}
