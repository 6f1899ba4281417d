// A TypeScript program on the generated types (../pkg/wstether.d.ts, from
// `wasm-pack build --target web`): `tsc --noEmit` checks it in CI
// (.ci/npm-pack). The event union narrows on `event.type`.
import init, { WsTether, type WsTetherEvent, type WsTetherError } from "../pkg/wstether.js";

function describe(event: WsTetherEvent): string {
  switch (event.type) {
    case "up":
      return `up (attempt ${event.attempt})`;
    case "upgraded":
      return `upgraded ${WsTether.streamName(event.stream)} (${event.protocol ?? "no protocol"})`;
    case "upgradeFailed":
      return `upgrade failed: ${event.status ?? "status hidden by the browser"}: ${event.error.message}`;
    case "frame":
      return typeof event.data === "string" ? `text ${event.data}` : `binary, ${event.data.byteLength} bytes`;
    case "error":
      return `error ${event.error.kind}`;
    case "down":
      return `down: ${event.reason} (${event.unsentCount} unsent; reconnect: ${event.willReconnect})`;
    case "reconnecting":
      return `reconnecting in ${event.delayMs} ms`;
  }
}

export async function main(url: string): Promise<void> {
  await init();
  const tether: WsTether = WsTether.open(url, {
    retry: { initialDelayMs: 500, maxDelayMs: 10_000 },
    autoUpgrade: true,
  });
  let stream: number = tether.upgrade("/echo", ["chat"]);
  for await (const event of tether.events()) {
    console.log(describe(event));
    if (event.type === "upgraded") {
      stream = event.stream;
      try {
        tether.send(stream, ["Hello!", new Uint8Array([1, 2, 3])]);
      } catch (e) {
        const error = e as WsTetherError;
        console.log(error.kind, error.unsent);
      }
    }
    if (event.type === "frame") tether.close(stream, 1000, "bye");
  }
  const stats: { framesWritten: number; framesReceived: number } = tether.stats();
  console.log(stats.framesWritten, stats.framesReceived);
}
