// A TypeScript program on the npm package's types (../pkg/index.d.ts, from
// .ci/npm-pack): `tsc --noEmit` with `strict: true` checks it in CI. The
// `@ts-expect-error` lines are part of the check: tsc fails if any of them
// stops being an error, so they prove the types are strict.
import init, {
  WsTether,
  WsTetherConnection,
  isWsTetherError,
  type WsTetherError,
  type WsTetherErrorKind,
  type WsTetherEvent,
} from "../pkg/index.js";

// --- WsTether: a reconnecting WebSocket ---

export async function chat(url: string): Promise<void> {
  await init();
  const socket = new WsTether(url, "chat", { retry: { initialDelayMs: 500, maxDelayMs: 10_000 } });
  socket.binaryType = "arraybuffer";
  socket.addEventListener("open", () => socket.send("hello"));
  socket.addEventListener("message", (event) => {
    const data: string | Blob | ArrayBuffer = event.data;
    console.log(typeof data === "string" ? data : "binary");
  });
  socket.addEventListener("down", (event) => console.log(event.reasonKind, event.unsent.length, event.willReconnect));
  socket.addEventListener("reconnecting", (event) => console.log(`attempt ${event.attempt} in ${event.delayMs} ms`));
  socket.addEventListener("error", (event) => {
    const kind: WsTetherErrorKind = event.error.kind;
    if (kind === "QueueFull") console.log("slow down");
  });
  socket.addEventListener("close", (event) => console.log(event.code, event.reason, event.wasClean));
  const state: 0 | 1 | 2 | 3 = socket.readyState;
  if (state === WsTether.OPEN) socket.send(new Uint8Array([1, 2, 3]));
  await socket.sendAsync(new Blob(["a blob"]));
  console.log(socket.bufferedAmount, socket.protocol, socket.url);
  socket.close(1000, "bye");

  // @ts-expect-error binaryType is "blob" or "arraybuffer"
  socket.binaryType = "text";
  // @ts-expect-error send takes a string, ArrayBuffer, ArrayBufferView or Blob
  socket.send(42);
}

// Fresh credentials per attempt, from an async provider.
export async function withToken(fetchToken: () => Promise<string>): Promise<WsTether> {
  return WsTether.connect(async () => ({ url: `wss://example.com/feed?token=${await fetchToken()}`, protocols: ["v2"] }));
}

// The first connection's budget: `connect` makes one attempt unless told otherwise.
export function patientConnect(url: string): Promise<WsTether> {
  // @ts-expect-error a budget is { attempts }, { deadlineMs } or "reconnectPolicy"
  void WsTether.connect(url, null, { firstConnection: { tries: 3 } });
  return WsTether.connect(url, null, { firstConnection: { deadlineMs: 30_000 } });
}

// Errors: `kind` is a union of literals.
export function describeError(e: unknown): string {
  if (!isWsTetherError(e)) return String(e);
  const error: WsTetherError = e;
  switch (error.kind) {
    case "QueueFull":
    case "Closed":
      return `${error.kind}: ${error.unsent.length} message(s) not sent`;
    default:
      return error.message;
  }
}

export function isQueueFull(error: WsTetherError): boolean {
  // @ts-expect-error "QueueFul" is not an error kind: a typo fails to compile
  return error.kind === "QueueFul";
}

// --- WsTetherConnection: Gun's split model, the low level ---

function describe(event: WsTetherEvent): string {
  switch (event.type) {
    case "up":
      return `up (attempt ${event.attempt})`;
    case "upgraded":
      return `upgraded ${WsTetherConnection.streamName(event.stream)} (${event.protocol ?? "no protocol"})`;
    case "upgradeFailed":
      return `upgrade failed: ${event.status ?? "status hidden by the browser"}: ${event.error.kind}`;
    case "frame":
      // @ts-expect-error a browser never shows ping frames: "ping" is not a frame kind
      if (event.kind === "ping") return "ping";
      return typeof event.data === "string" ? `text ${event.data}` : `binary, ${event.data.byteLength} bytes`;
    case "error":
      return `error ${event.error.kind}`;
    case "down":
      return `down: ${event.reason} (${event.unsentCount} unsent; reconnect: ${event.willReconnect})`;
    case "reconnecting":
      return `reconnecting in ${event.delayMs} ms`;
  }
}

export async function lowLevel(url: string): Promise<void> {
  await init();
  const connection = WsTetherConnection.open(url, {
    retry: { initialDelayMs: 500, maxDelayMs: 10_000 },
    autoUpgrade: true,
  });
  let stream: number = connection.upgrade("/echo", ["chat"]);
  for await (const event of connection.events()) {
    console.log(describe(event));
    if (event.type === "upgraded") {
      stream = event.stream;
      try {
        connection.send(stream, ["Hello!", new Uint8Array([1, 2, 3])]);
      } catch (e) {
        console.log(describeError(e));
      }
    }
    if (event.type === "frame") connection.close(stream, 1000, "bye");
  }
  const stats: { framesWritten: number; framesReceived: number } = connection.stats();
  console.log(stats.framesWritten, stats.framesReceived);
}
