// An echo server with permessage-deflate: Node `ws` (benches/node's pinned
// copy), for tests/deflate_interop.rs. Prints its port, then echoes every
// message, compressed whatever its size (threshold 0). The text message
// "stats?" is answered with "<bytes read> <bytes written>" on the socket so
// far (the wire bytes, compressed).
import { createRequire } from "node:module";
const require = createRequire(new URL("../../benches/node/package.json", import.meta.url));
const { WebSocketServer } = require("ws");

const wss = new WebSocketServer({
  host: "127.0.0.1",
  port: 0,
  maxPayload: 0,
  perMessageDeflate: { threshold: 0 },
});
wss.on("listening", () => console.log(wss.address().port));
wss.on("connection", (ws, req) => {
  ws.on("message", (data, isBinary) => {
    if (!isBinary && data.toString() === "stats?") {
      ws.send(`${req.socket.bytesRead} ${req.socket.bytesWritten}`);
    } else {
      ws.send(data, { binary: isBinary });
    }
  });
});
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
