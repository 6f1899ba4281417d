// WsTether: a WebSocket that reconnects, for the npm package `wstether`.
// Hand-written (wasm-bindgen cannot export a class that extends EventTarget);
// it wraps WsTetherCore, the wasm side (src/js/tether.rs), and turns its
// events into DOM events. Types: tether.d.ts.
import { WsTetherCore } from "./wstether.js";

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;

/** A `reconnecting` event: the next attempt starts after `delayMs`. */
class ReconnectingEvent extends Event {
  constructor(attempt, delayMs) {
    super("reconnecting");
    this.attempt = attempt;
    this.delayMs = delayMs;
  }
}

/** A `down` event: the Websocket went away (`willReconnect`), with what it did not send. */
class DownEvent extends Event {
  constructor(fields) {
    super("down");
    this.reason = fields.reason;
    this.reasonKind = fields.reasonKind;
    this.code = fields.code;
    this.closeReason = fields.closeReason;
    this.error = fields.error;
    this.unsent = fields.unsent;
    this.willReconnect = fields.willReconnect;
  }
}

/** Bytes of a message to send, or null for a Blob (read asynchronously). */
function bytesOf(data) {
  if (typeof data === "string" || data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (typeof Blob !== "undefined" && data instanceof Blob) return null;
  throw new TypeError("wstether: send takes a string, an ArrayBuffer, an ArrayBufferView or a Blob");
}

export class WsTether extends EventTarget {
  static CONNECTING = CONNECTING;
  static OPEN = OPEN;
  static CLOSING = CLOSING;
  static CLOSED = CLOSED;
  CONNECTING = CONNECTING;
  OPEN = OPEN;
  CLOSING = CLOSING;
  CLOSED = CLOSED;

  /** Level-0 handlers, as on a WebSocket. */
  onopen = null;
  onmessage = null;
  onclose = null;
  onerror = null;

  #core;
  #binaryType = "blob";
  /** Sends waiting behind a Blob being read, in order, and their bytes. */
  #chain = null;
  #chainBytes = 0;

  constructor(url, protocols, options) {
    super();
    const target = typeof url === "function" ? url : String(url);
    this.#core = new WsTetherCore(target, protocols, options, (event) => this.#deliver(event));
  }

  /**
   * Resolves with the socket once open. The first connection gives up by `options.firstConnection`
   * (default: one attempt, as `new WebSocket` does); then it rejects with the error the `error`
   * events carried last, and the socket is closed.
   */
  static connect(url, protocols, options) {
    const budget = { firstConnection: { attempts: 1 }, ...(options ?? {}) };
    return new Promise((resolve, reject) => {
      const socket = new WsTether(url, protocols, budget);
      let last = null;
      const settle = (outcome) => {
        socket.removeEventListener("open", onOpen);
        socket.removeEventListener("error", onError);
        socket.removeEventListener("close", onClose);
        outcome();
      };
      const onOpen = () => settle(() => resolve(socket));
      const onError = (event) => (last = event.error);
      const onClose = (event) =>
        settle(() => reject(last ?? new Error(`wstether: closed before open (${event.code} ${event.reason})`)));
      socket.addEventListener("open", onOpen);
      socket.addEventListener("error", onError);
      socket.addEventListener("close", onClose);
    });
  }

  get readyState() {
    return this.#core.readyState;
  }

  get bufferedAmount() {
    return this.#core.bufferedAmount + this.#chainBytes;
  }

  get binaryType() {
    return this.#binaryType;
  }

  set binaryType(value) {
    if (value !== "blob" && value !== "arraybuffer") {
      throw new SyntaxError(`wstether: binaryType is "blob" or "arraybuffer", not ${JSON.stringify(value)}`);
    }
    this.#binaryType = value;
  }

  get protocol() {
    return this.#core.protocol;
  }

  get url() {
    return this.#core.url;
  }

  get extensions() {
    return "";
  }

  send(data) {
    const bytes = bytesOf(data);
    if (bytes !== null && this.#chain === null) {
      this.#core.send(bytes);
      return;
    }
    this.#later(data, (ready) => this.#core.send(ready)).catch((error) => this.#fail(error));
  }

  sendAsync(data) {
    const bytes = bytesOf(data);
    if (bytes !== null && this.#chain === null) return this.#core.sendAsync(bytes);
    return this.#later(data, (ready) => this.#core.sendAsync(ready));
  }

  close(code, reason) {
    this.#core.close(code, reason);
  }

  /** The connection's counters (see WsTetherStats). */
  stats() {
    return this.#core.stats();
  }

  /** Sends a keepalive heartbeat now (with a `keepalive` option). */
  probe() {
    this.#core.probe();
  }

  /** Queues `data` behind the Blobs being read, so that messages keep their order. */
  #later(data, send) {
    const size = typeof data === "string" ? new TextEncoder().encode(data).length : (data.size ?? data.byteLength);
    this.#chainBytes += size;
    const previous = this.#chain ?? Promise.resolve();
    const step = previous
      .catch(() => undefined)
      .then(async () => {
        const bytes = bytesOf(data) ?? new Uint8Array(await data.arrayBuffer());
        this.#chainBytes -= size;
        return send(bytes);
      });
    this.#chain = step;
    const clear = () => {
      if (this.#chain === step) this.#chain = null;
    };
    step.then(clear, clear);
    return step;
  }

  #fail(error) {
    this.#dispatch("error", new ErrorEvent("error", { error, message: error.message }));
  }

  #dispatch(type, event) {
    const handler = this[`on${type}`];
    if (typeof handler === "function") {
      try {
        handler.call(this, event);
      } catch (error) {
        reportError(error);
      }
    }
    this.dispatchEvent(event);
  }

  #deliver(event) {
    switch (event.type) {
      case "open":
        this.#dispatch("open", new Event("open"));
        break;
      case "message": {
        let data = event.data;
        if (typeof data !== "string") data = this.#binaryType === "blob" ? new Blob([data]) : data.buffer;
        this.#dispatch("message", new MessageEvent("message", { data }));
        break;
      }
      case "error":
        this.#dispatch("error", new ErrorEvent("error", { error: event.error, message: event.error.message }));
        break;
      case "reconnecting":
        this.dispatchEvent(new ReconnectingEvent(event.attempt, event.delayMs));
        break;
      case "down":
        this.dispatchEvent(new DownEvent(event));
        break;
      case "close":
        this.#dispatch(
          "close",
          new CloseEvent("close", { code: event.code, reason: event.reason, wasClean: event.wasClean }),
        );
        break;
    }
  }
}

/** Whether `value` is an error thrown (or carried) by wstether. */
export function isWsTetherError(value) {
  return value instanceof Error && value.name === "WsTetherError";
}
