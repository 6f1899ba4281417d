// Types of WsTether (tether.js), hand-written. The shared types
// (WsTetherOptions, WsTetherError...) come from the generated wstether.d.ts.
import type { WsTetherData, WsTetherDownKind, WsTetherError, WsTetherOptions, WsTetherStats } from "./wstether.js";
export type {
  WsTetherData,
  WsTetherDownKind,
  WsTetherError,
  WsTetherErrorKind,
  WsTetherEvent,
  WsTetherFrameKind,
  WsTetherOptions,
  WsTetherStats,
} from "./wstether.js";

/** The subprotocols offered: one, several, or none. */
export type WsTetherProtocols = string | string[] | null | undefined;

/** What the url provider gives for one attempt. */
export interface WsTetherAttempt {
  /** A `ws://` or `wss://` URL; its path and query may change per attempt, its scheme, host and port may not. */
  url: string;
  /** The subprotocols for this attempt (default: the constructor's). */
  protocols?: string | string[] | null;
}

/**
 * Called before the first connection and again after every reconnect, so a fresh token can be
 * fetched per attempt. A provider that throws or rejects gives an `error` event of kind "Provider":
 * before the first answer (which names the server) the socket closes; later, the attempt fails and
 * the retry policy decides.
 */
export type WsTetherUrlProvider = () => string | WsTetherAttempt | Promise<string | WsTetherAttempt>;

/** The options of `new WsTether`: those of `WsTetherConnection.open` but `autoUpgrade` (always on). */
export type WsTetherSocketOptions = Omit<WsTetherOptions, "autoUpgrade">;

/** An `error` event: `error` is the WsTetherError (its `kind` says what went wrong). */
export interface WsTetherErrorEvent extends ErrorEvent {
  readonly error: WsTetherError;
}

/** A `reconnecting` event: the next attempt starts after `delayMs`. */
export interface WsTetherReconnectingEvent extends Event {
  readonly type: "reconnecting";
  /** Attempts since the connection was last up, this one included. */
  readonly attempt: number;
  readonly delayMs: number;
}

/** A `down` event: the Websocket went away. */
export interface WsTetherDownEvent extends Event {
  readonly type: "down";
  /** Why, for people. */
  readonly reason: string;
  readonly reasonKind: WsTetherDownKind;
  /** The close code and reason, when the server closed (reasonKind "closedByPeer"). */
  readonly code: number | undefined;
  readonly closeReason: string | undefined;
  /** The socket's error (reasonKind "error"). */
  readonly error: WsTetherError | undefined;
  /** Messages accepted but not written: they did not reach the server, and are not sent again by themselves. */
  readonly unsent: WsTetherData[];
  /** false: a `close` event follows, and the socket stays closed. */
  readonly willReconnect: boolean;
}

/** The events of a WsTether, by type. */
export interface WsTetherEventMap {
  /** A Websocket is open: after the first connection and after every reconnect. */
  open: Event;
  /** One message: `data` is a string, or a Blob / ArrayBuffer as `binaryType` says. */
  message: MessageEvent<string | Blob | ArrayBuffer>;
  /** Closed for good (once): `close()`, a close code that stops reconnecting, or the retry policy giving up. */
  close: CloseEvent;
  error: WsTetherErrorEvent;
  reconnecting: WsTetherReconnectingEvent;
  down: WsTetherDownEvent;
}

/** A message to send. */
export type WsTetherMessage = string | ArrayBuffer | ArrayBufferView | Blob;

/**
 * A WebSocket that reconnects: the WebSocket API (`readyState`, `bufferedAmount`, `binaryType`,
 * `send`, `close`, `open`/`message`/`close`/`error` events) plus `reconnecting` and `down` events.
 * Sends while reconnecting are held (bounded by `sendQueueBytes`) and written after the next open.
 *
 * Lifetime: like a WebSocket, an open (or reconnecting) socket stays alive however the page drops
 * its references, until it is closed; a closed socket is garbage-collected like any object.
 */
export class WsTether extends EventTarget {
  /**
   * Starts connecting at once and keeps trying from the start by the `retry` policy (unless
   * `options.firstConnection` says otherwise), as partysocket does. Throws a WsTetherError on a
   * malformed URL (kind "InvalidUrl", "UnsupportedScheme") or options ("InvalidOption", "Unsupported").
   */
  constructor(url: string | URL | WsTetherUrlProvider, protocols?: WsTetherProtocols, options?: WsTetherSocketOptions);

  /**
   * Resolves with the socket once open. The first connection gives up by `options.firstConnection`
   * (default `{ attempts: 1 }`, as `new WebSocket` does); then it rejects with the WsTetherError
   * the last `error` event carried, and the socket is closed.
   */
  static connect(url: string | URL | WsTetherUrlProvider, protocols?: WsTetherProtocols, options?: WsTetherSocketOptions): Promise<WsTether>;

  static readonly CONNECTING: 0;
  static readonly OPEN: 1;
  static readonly CLOSING: 2;
  static readonly CLOSED: 3;
  readonly CONNECTING: 0;
  readonly OPEN: 1;
  readonly CLOSING: 2;
  readonly CLOSED: 3;

  /** CONNECTING (0) while connecting or reconnecting, OPEN (1), CLOSING (2), CLOSED (3). */
  readonly readyState: 0 | 1 | 2 | 3;
  /** Payload bytes accepted by `send` and not yet written, those held while reconnecting included. */
  readonly bufferedAmount: number;
  /** How binary messages arrive: "blob" (default, as on a WebSocket) or "arraybuffer". */
  binaryType: "blob" | "arraybuffer";
  /** The subprotocol the server chose ("" for none). */
  readonly protocol: string;
  /** The URL of the current attempt ("" before a provider's first answer). */
  readonly url: string;
  /** Always "" (a browser shows no extensions to wasm code). */
  readonly extensions: string;

  onopen: ((this: WsTether, event: Event) => void) | null;
  onmessage: ((this: WsTether, event: MessageEvent<string | Blob | ArrayBuffer>) => void) | null;
  onclose: ((this: WsTether, event: CloseEvent) => void) | null;
  onerror: ((this: WsTether, event: WsTetherErrorEvent) => void) | null;

  /**
   * Sends a message (a string is text, the rest binary), in order; while reconnecting it is held.
   * Throws a WsTetherError: "QueueFull" when `sendQueueBytes` are waiting (use `sendAsync`),
   * "Closed" after `close()`, with the message in `unsent`.
   */
  send(data: WsTetherMessage): void;
  /** `send` that waits for room: resolves once the message is queued; rejects with "Closed". */
  sendAsync(data: WsTetherMessage): Promise<void>;
  /**
   * Closes (code 1000 unless given; a browser may send 1000 or 3000 to 4999, else a WsTetherError
   * "InvalidCloseCode" is thrown) and stops reconnecting. Calling it again does nothing.
   */
  close(code?: number, reason?: string): void;
  /** The connection's counters (`undefined` before a provider's first answer). */
  stats(): WsTetherStats | undefined;
  /** Sends a keepalive heartbeat now (with a `keepalive` option). */
  probe(): void;

  addEventListener<K extends keyof WsTetherEventMap>(
    type: K,
    listener: (this: WsTether, event: WsTetherEventMap[K]) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof WsTetherEventMap>(
    type: K,
    listener: (this: WsTether, event: WsTetherEventMap[K]) => void,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void;
}

/** Whether `value` is an error thrown (or carried) by wstether; narrows it to WsTetherError. */
export function isWsTetherError(value: unknown): value is WsTetherError;
