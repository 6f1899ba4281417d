// Node's `ws` client for the native benchmark: prints the elapsed
// milliseconds of the measured part only (not Node's start-up).
// usage: node client.mjs URL sequential|pipelined COUNT SIZE text|binary|json [deflate]
// `json`: JSON-like text of about SIZE bytes (the same as benches/native.rs's
// `json`). `deflate`: perMessageDeflate on (threshold 0, level 1, as
// wstether's bench sets it); then, after the measured part, the server is
// asked for its wire bytes ("stats?", tests/deflate_peers/server.mjs) and
// they are printed on a second line: "<bytes read> <bytes written>".
import WebSocket from 'ws';

const [url, pattern, countArg, sizeArg, kind, deflate] = process.argv.slice(2);
const count = Number(countArg);
const size = Number(sizeArg);

function json(i) {
  let s = '[';
  let k = i * 10;
  while (s.length < size) {
    s += `{"id":${k},"user":"user-${k}","active":${k % 3 === 0},"score":${(k * 37) % 1000},"tags":["alpha","beta"]},`;
    k += 1;
  }
  return s + '{}]';
}

function payload(i) {
  if (kind === 'json') return json(i);
  const head = Buffer.from(`${i} `);
  const data = Buffer.alloc(Math.max(size, head.length), 'x');
  head.copy(data);
  return kind === 'text' ? data.toString() : data;
}

const messages = Array.from({ length: count }, (_, i) => payload(i));
const perMessageDeflate = deflate === 'deflate'
  ? { threshold: 0, zlibDeflateOptions: { level: 1 } }
  : false;
const ws = new WebSocket(url, { perMessageDeflate, maxPayload: 0 });
ws.binaryType = 'nodebuffer';
ws.on('error', (e) => { console.error(e); process.exit(1); });
ws.on('open', () => {
  let received = 0;
  const started = process.hrtime.bigint();
  const done = () => {
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    console.log(ms.toFixed(3));
    if (deflate !== 'deflate') return ws.close(1000);
    ws.removeAllListeners('message');
    ws.on('message', (stats) => {
      console.log(stats.toString());
      ws.close(1000);
    });
    ws.send('stats?');
  };
  if (pattern === 'sequential') {
    ws.on('message', () => {
      received += 1;
      if (received === count) return done();
      ws.send(messages[received]);
    });
    ws.send(messages[0]);
  } else {
    ws.on('message', () => {
      received += 1;
      if (received === count) done();
    });
    for (const m of messages) ws.send(m);
  }
});
