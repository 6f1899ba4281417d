//! The JavaScript/TypeScript facade (feature `js`, browser wasm only),
//! turned into the npm package `wstether` by `wasm-pack build npm` and the
//! hand-written entry in `npm/js/` (see README-npm.md):
//!
//! - `WsTether` (npm/js/tether.js): a reconnecting WebSocket, an
//!   `EventTarget` over [`tether::WsTetherCore`], a thin adapter
//!   ([`socket::Tether`]) over the Rust [`Socket`](crate::Socket);
//! - `connection::WsTetherConnection` (feature `js-connection`, the npm
//!   crate's `connection`; not in the default package): Gun's split model
//!   itself, the low level (a connection, a stream id per upgrade, every
//!   event).
//!
//! Values: options are a plain object ([`options`]), frames are strings
//! (text) or `Uint8Array`s (binary), events are plain objects and errors
//! are `Error`s named `WsTetherError` whose `kind` is the
//! [`ErrorKind`](crate::ErrorKind) ([`events`]).

use wasm_bindgen::prelude::*;

#[cfg(feature = "js-connection")]
mod connection;
mod events;
mod options;
mod socket;
mod tether;

#[wasm_bindgen]
extern "C" {
    /// A `WsTetherOptions` object.
    #[wasm_bindgen(typescript_type = "WsTetherOptions")]
    pub type JsOptions;
    /// One subprotocol or a list of them.
    #[wasm_bindgen(typescript_type = "string | string[]")]
    pub type JsProtocols;
}

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** A message's payload: a string for a text frame, bytes for a binary one. */
export type WsTetherData = string | Uint8Array;

/** The options of `new WsTether` and `WsTetherConnection.open`; every field is optional. */
export interface WsTetherOptions {
  /**
   * When the first connection gives up (then the socket closes, the last `error` event carrying
   * why): after `attempts` attempts (at least 1), after `deadlineMs`, or, with "reconnectPolicy",
   * when the `retry` policy does. Default: "reconnectPolicy" for `new WsTether` (it keeps trying,
   * as partysocket does), `{ attempts: 1 }` for `WsTether.connect` and `WsTetherConnection.open`.
   */
  firstConnection?: { attempts: number } | { deadlineMs: number } | "reconnectPolicy";
  /** The reconnect policy (exponential backoff with jitter); `false`: never reconnect. */
  retry?: false | {
    /** The first delay, in ms (default 100; from 1 to 2073600000, i.e. 24 days). */
    initialDelayMs?: number;
    /** The largest delay, in ms (default 30000; at most 2073600000, i.e. 24 days). */
    maxDelayMs?: number;
    /** Consecutive retries before giving up; `null` (default): forever. */
    maxRetries?: number | null;
    /** The random share taken off each delay, 0 to 1 (default 0.5). */
    jitter?: number;
    /** The growth factor per retry, at least 1 (default 2). */
    multiplier?: number;
    /** How long a connection must stay up before the retry count starts again, in ms (default 10000). */
    resetAfterMs?: number;
    /** Close codes from the server after which there is no reconnect (default [1003, 1007, 1008, 1010]). */
    stopOnCloseCodes?: number[];
    /**
     * Native only: a browser has no connection below the WebSocket. Any value but the default
     * (10000) throws a WsTetherError of kind "Unsupported"; `upgradeTimeoutMs` bounds the whole
     * opening instead.
     */
    connectTimeoutMs?: number;
  };
  /**
   * Keeps the connection alive and notices a dead peer: after `intervalMs` of silence a
   * heartbeat message goes out; with nothing heard within `timeoutMs`, the peer is dead
   * (`down` with reasonKind "peerDead", then a reconnect). Default: none. Both durations
   * are longer than 0 and at most 2073600000 ms (24 days).
   */
  keepalive?: null | {
    intervalMs: number;
    timeoutMs: number;
    /** The heartbeat message (default the text "♥"). */
    heartbeat?: WsTetherData;
    /** The server's reply, which measures `rtt()` and is hidden from the events (default: the heartbeat itself, echoed). */
    heartbeatReply?: WsTetherData;
  };
  /**
   * `WsTetherConnection` only: re-run the last upgrade after each reconnect (default false, as
   * in Gun). `WsTether` always upgrades again and refuses this key.
   */
  autoUpgrade?: boolean;
  /** How long the whole opening (connect, TLS, upgrade) may take, in ms (default 10000). */
  upgradeTimeoutMs?: number;
  /** How long to wait for the server's close frame after ours, in ms (default 5000). */
  closingTimeoutMs?: number;
  /**
   * The largest message accepted from the server, in bytes (default 64 MiB; `null`: 1 GiB). A
   * larger one ends the connection (closed with 1000 "message too big": scripts may not send 1009).
   */
  maxMessageSize?: number | null;
  /** Payload bytes that may wait to be sent (default 8 MiB); also the most one `send` may carry. */
  sendQueueBytes?: number;
  /** Events that may wait unread (default 1024). */
  eventQueueLen?: number;
  /**
   * Payload bytes of unread messages that may wait (default 16 MiB). A browser cannot pause
   * reading, so exceeding it ends the connection (`down` with an error of kind "QueueFull").
   */
  eventQueueBytes?: number;
  /**
   * Native only: `false` throws a WsTetherError of kind "Unsupported" (a browser answers pings
   * itself and never shows them); `true` is the default.
   */
  silencePings?: boolean;
  /** Native only: any value throws a WsTetherError of kind "Unsupported" (a browser reads for itself). */
  readBufferSize?: number;
  /**
   * Native only: any certificate throws a WsTetherError of kind "Unsupported" (a browser trusts its
   * own store).
   */
  rootCertificates?: (Uint8Array | ArrayBuffer)[];
}

/** Counters over a connection's life (`stats()`), across reconnects. */
export interface WsTetherStats {
  /** Application frames sent (heartbeats not included). */
  framesWritten: number;
  /** Frames received (heartbeat replies included). */
  framesReceived: number;
  /** Messages (text and binary) among `framesWritten`. */
  messagesWritten: number;
  /** Messages (text and binary) among `framesReceived`. */
  messagesReceived: number;
  /** Payload bytes of `messagesWritten` (UTF-8 bytes for text). */
  bytesWritten: number;
  /** Payload bytes of `messagesReceived` (UTF-8 bytes for text). */
  bytesReceived: number;
  /** How many times the connection came up again after the first time. */
  reconnects: number;
  /** The round-trip time of the last answered heartbeat, in ms (`undefined` before one). */
  lastRttMs: number | undefined;
  /** The smoothed round-trip time (RFC 6298 SRTT) of the heartbeats, in ms (`undefined` before one). */
  smoothedRttMs: number | undefined;
  /** How long the WebSockets of this connection were open in total, in ms (the current one included). */
  timeConnectedMs: number;
}

/** What went wrong: the Rust crate's `ErrorKind`, one literal per kind. */
export type WsTetherErrorKind =
  | "InvalidUrl"
  | "UnsupportedScheme"
  | "InvalidHeader"
  | "InvalidPath"
  | "InvalidCloseCode"
  | "InvalidFrame"
  | "InvalidOption"
  | "Unsupported"
  | "QueueFull"
  | "StaleStream"
  | "Disconnected"
  | "Closed"
  | "Connect"
  | "Tls"
  | "Timeout"
  | "Upgrade"
  | "Protocol"
  | "InvalidUtf8"
  | "InvalidCompressedData"
  | "MessageTooBig"
  | "Io"
  | "RetriesExhausted"
  | "Proxy"
  | "UpgradeRefused"
  | "Provider"
  | "NoRuntime"
  | "Http2Unavailable"
  | "StreamReset";

/** An error thrown (or carried by an event) by wstether: an `Error` named "WsTetherError". */
export interface WsTetherError extends Error {
  name: "WsTetherError";
  /** What went wrong, e.g. "StaleStream", "QueueFull", "InvalidCloseCode" (also at the start of `message`). */
  kind: WsTetherErrorKind;
  /** The frames that were not sent because of this error. */
  unsent: WsTetherData[];
}

/** Why the connection went down. */
export type WsTetherDownKind = "closedByPeer" | "shutdown" | "peerDead" | "upgradeRejected" | "error";

/** A received frame's kind (a browser never shows ping or pong frames). */
export type WsTetherFrameKind = "text" | "binary" | "close";

/**
 * What happened on a `WsTetherConnection`: one fact per event, one frame per `frame` event.
 * `WsTetherConnection` is in the package only when it is built with the npm crate's feature
 * `connection` (`wasm-pack build npm ... -- --features connection`); the default package has
 * `WsTether` only.
 */
export type WsTetherEvent =
  | { type: "up"; attempt: number }
  | { type: "upgraded"; stream: number; protocol: string | null; headers: Record<string, string> }
  | { type: "upgradeFailed"; stream: number; status: number | null; headers: Record<string, string>; error: WsTetherError }
  | { type: "frame"; stream: number; kind: WsTetherFrameKind; data: WsTetherData; code?: number; reason?: string }
  | { type: "error"; stream: number | null; error: WsTetherError }
  | {
      type: "down";
      /** Why, for people. */
      reason: string;
      reasonKind: WsTetherDownKind;
      /** The close code and reason, when the server closed (reasonKind "closedByPeer"). */
      code?: number;
      closeReason?: string;
      /** The socket's error (reasonKind "error"). */
      error?: WsTetherError;
      killedStreams: number[];
      /** Frames queued but not written: they did not reach the server. */
      unsent: WsTetherData[];
      unsentCount: number;
      /** false: this is the last event. */
      willReconnect: boolean;
    }
  | { type: "reconnecting"; attempt: number; delayMs: number };
"#;
