// A second outside HTTP/2 peer for tests/http2_node.rs: Node's own
// `http2` server with `enableConnectProtocol` (RFC 8441), cleartext with
// prior knowledge, on the port given as the first argument (0: any).
// Each extended CONNECT for `websocket` is answered 200 and its stream
// handed, as a raw byte stream, to Node `ws` (benches/node's pinned copy)
// as the server side of a Websocket, which echoes every message. A query
// `?close=CODE` makes the server close with CODE after the first echo.
// Prints its port; exits when stdin ends.
import http2 from "node:http2";
import { createRequire } from "node:module";
const require = createRequire(new URL("../../benches/node/package.json", import.meta.url));
const { WebSocket } = require("ws");

const server = http2.createServer({ settings: { enableConnectProtocol: true } });
server.on("stream", (stream, headers) => {
  if (headers[":method"] !== "CONNECT" || headers[":protocol"] !== "websocket") {
    stream.respond({ ":status": 400 });
    stream.end();
    return;
  }
  stream.respond({ ":status": 200 });
  // `ws` sets Nagle on TCP sockets; an HTTP/2 stream has none.
  stream.setNoDelay = () => {};
  const ws = new WebSocket(null, undefined, {});
  ws.setSocket(stream, Buffer.alloc(0), { maxPayload: 0 });
  const close = new URL(headers[":path"], "http://x").searchParams.get("close");
  ws.on("message", (data, isBinary) => {
    ws.send(data, { binary: isBinary });
    if (close) ws.close(Number(close), "bye from node");
  });
  ws.on("error", () => {});
});
server.on("sessionError", () => {});
server.listen(Number(process.argv[2] || 0), "127.0.0.1", () => console.log(server.address().port));
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
