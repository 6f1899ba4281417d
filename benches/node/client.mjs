// Node's `ws` client for the native benchmark: prints the elapsed
// milliseconds of the measured part only (not Node's start-up).
// usage: node client.mjs URL sequential|pipelined COUNT SIZE text|binary
import WebSocket from 'ws';

const [url, pattern, countArg, sizeArg, kind] = process.argv.slice(2);
const count = Number(countArg);
const size = Number(sizeArg);

function payload(i) {
  const head = Buffer.from(`${i} `);
  const data = Buffer.alloc(Math.max(size, head.length), 'x');
  head.copy(data);
  return kind === 'text' ? data.toString() : data;
}

const messages = Array.from({ length: count }, (_, i) => payload(i));
const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 0 });
ws.binaryType = 'nodebuffer';
ws.on('error', (e) => { console.error(e); process.exit(1); });
ws.on('open', () => {
  let received = 0;
  const started = process.hrtime.bigint();
  const done = () => {
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    console.log(ms.toFixed(3));
    ws.close(1000);
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
