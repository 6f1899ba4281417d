// Browser tests of WsTether (the npm package's reconnecting WebSocket),
// loaded by www/e2e/socket.mjs into the demo page and run one by one in
// headless Chromium against the demo's testkit server. Most port
// partysocket's own tests (packages/partysocket/src/tests/reconnecting.test.ts)
// and its README's usage examples; the names say which.
//
// Every wait is for an event, bounded by WAIT_MS; no test sleeps.
import init, { WsTether, WsTetherConnection, isWsTetherError } from "../pkg/index.js";
import { testkitUrl } from "../config.js";

const WAIT_MS = 15_000;
const ECHO = new URL("/", testkitUrl).href;
/** Fast reconnects for the tests. */
const FAST = { retry: { initialDelayMs: 10, maxDelayMs: 50 } };

await init();

class Failure extends Error {}

function check(condition, message) {
  if (!condition) throw new Failure(message);
}

function eq(actual, expected, what) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  check(a === e, `${what}: got ${a}, expected ${e}`);
}

/** Resolves with the next `type` event of `target` for which `accept` holds; fails after WAIT_MS. */
function next(target, type, accept = () => true) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      target.removeEventListener(type, listener);
      reject(new Failure(`no ${type} event within ${WAIT_MS} ms`));
    }, WAIT_MS);
    const listener = (event) => {
      if (!accept(event)) return;
      clearTimeout(timer);
      target.removeEventListener(type, listener);
      resolve(event);
    };
    target.addEventListener(type, listener);
  });
}

/** The testkit's HTTP control API (`/_control/...`). */
async function control(path) {
  const response = await fetch(new URL(path, testkitUrl.replace(/^ws/, "http")));
  check(response.ok, `${path} answered ${response.status}`);
  return response.text();
}

const url = (query = "") => ECHO + query;

/** Resolves with the next `count` messages' data. */
function messages(ws, count) {
  return new Promise((resolve, reject) => {
    const received = [];
    const timer = setTimeout(() => reject(new Failure(`${received.length} of ${count} messages within ${WAIT_MS} ms`)), WAIT_MS);
    const listener = (event) => {
      received.push(event.data);
      if (received.length < count) return;
      clearTimeout(timer);
      ws.removeEventListener("message", listener);
      resolve(received);
    };
    ws.addEventListener("message", listener);
  });
}

/** Forces garbage collections (Chromium with --js-flags=--expose-gc). */
async function collect() {
  check(typeof globalThis.gc === "function", "chromium must run with --js-flags=--expose-gc");
  for (let i = 0; i < 3; i++) {
    globalThis.gc();
    await new Promise((resolve) => setTimeout(resolve, 0)); // a task: finalizers run between tasks
  }
}

async function bytes(data) {
  const buffer = data instanceof Blob ? await data.arrayBuffer() : data;
  return [...new Uint8Array(buffer)];
}

export const tests = {
  // The issue's "done when": only new, addEventListener('message'),
  // readyState, bufferedAmount, send and close().
  async websocket_shaped_surface_sends_held_messages_and_receives_them() {
    const ws = new WsTether(url());
    const received = [];
    let echoed;
    const both = new Promise((resolve) => (echoed = resolve));
    ws.addEventListener("message", (event) => {
      received.push(event.data);
      if (received.length === 2) echoed();
    });
    eq(ws.readyState, WebSocket.CONNECTING, "readyState at first");
    ws.send("one");
    ws.send("two");
    eq(ws.bufferedAmount, 6, "bufferedAmount of two held messages");
    await both;
    eq(received, ["one", "two"], "echoed in order");
    eq(ws.readyState, WebSocket.OPEN, "readyState once echoed");
    eq(ws.bufferedAmount, 0, "bufferedAmount once echoed");
    ws.close();
    eq(ws.readyState, WebSocket.CLOSING, "readyState after close()");
  },

  // partysocket README, "Simple usage".
  async readme_simple_usage_sends_on_open() {
    const ws = new WsTether(url());
    ws.addEventListener("open", () => {
      ws.send("hello!");
    });
    const message = await next(ws, "message");
    eq(message.data, "hello!", "echo");
    ws.close();
  },

  // partysocket README, "Update URL" (round robin url provider): each
  // attempt asks the provider again. Each URL makes the server close at once
  // with its own reason, so the down events show which URL each attempt used.
  async readme_round_robin_url_provider_is_asked_per_attempt() {
    const urls = ["a", "b", "c"].map((name) => url(`?close=4000&reason=${name}`));
    let urlIndex = 0;
    const urlProvider = () => urls[urlIndex++ % urls.length];
    const ws = new WsTether(urlProvider, null, FAST);
    const reasons = [];
    await new Promise((resolve) =>
      ws.addEventListener("down", (event) => {
        reasons.push(event.closeReason);
        if (reasons.length === 4) resolve();
      }),
    );
    ws.close();
    eq(reasons, ["a", "b", "c", "a"], "close reasons of the first four attempts");
  },

  // partysocket README, "async url provider": a fresh token per attempt.
  // The server answers the subprotocol the query names, so ws.protocol shows
  // which token the server saw.
  async readme_async_url_provider_gives_a_fresh_token_per_attempt() {
    let tokens = 0;
    const getSessionToken = async () => `tok${++tokens}`;
    const ws = new WsTether(async () => {
      const token = await getSessionToken();
      return { url: url(`?protocol=${token}`), protocols: [token] };
    }, null, FAST);
    await next(ws, "open");
    eq(ws.protocol, "tok1", "first attempt's token");
    await control("/_control/close?code=4000");
    await next(ws, "open");
    eq(ws.protocol, "tok2", "the reconnect's token");
    check(ws.url.endsWith("?protocol=tok2"), `url is the attempt's: ${ws.url}`);
    ws.close();
  },

  // partysocket test "websocket protocol".
  async subprotocol_is_offered_and_chosen() {
    const ws = new WsTether(url(), "foobar");
    await next(ws, "open");
    eq(ws.url, url(), "url");
    eq(ws.protocol, "foobar", "protocol");
    ws.close();
    await next(ws, "close");
  },

  // partysocket tests "undefined websocket protocol", "null websocket protocol".
  async no_subprotocol_gives_an_empty_protocol() {
    for (const protocols of [undefined, null, []]) {
      const ws = new WsTether(url(), protocols);
      await next(ws, "open");
      eq(ws.protocol, "", `protocol with ${JSON.stringify(protocols)}`);
      ws.close();
      await next(ws, "close");
    }
  },

  // partysocket test "connection status constants".
  async ready_state_constants_are_the_websocket_ones() {
    const ws = new WsTether(url());
    eq([WsTether.CONNECTING, WsTether.OPEN, WsTether.CLOSING, WsTether.CLOSED], [0, 1, 2, 3], "static");
    eq([ws.CONNECTING, ws.OPEN, ws.CLOSING, ws.CLOSED], [0, 1, 2, 3], "instance");
    ws.close();
  },

  // partysocket test "getters when not ready".
  async getters_before_open() {
    const ws = new WsTether(url());
    eq(
      [ws.readyState, ws.bufferedAmount, ws.protocol, ws.extensions, ws.binaryType],
      [0, 0, "", "", "blob"],
      "readyState, bufferedAmount, protocol, extensions, binaryType",
    );
    ws.close();
  },

  // partysocket test "connect, send, receive, close".
  async connect_send_receive_close() {
    const ws = new WsTether(url(), "foobar", FAST);
    eq(ws.readyState, ws.CONNECTING, "readyState at first");
    await next(ws, "open");
    eq([ws.protocol, ws.readyState], ["foobar", ws.OPEN], "protocol and readyState at open");
    ws.send("hello");
    const message = await next(ws, "message");
    eq(message.data, "hello", "echo");
    ws.close(1000, "some reason");
    eq(ws.readyState, ws.CLOSING, "readyState after close()");
    const close = await next(ws, "close");
    eq([ws.readyState, close.code, close.reason, close.wasClean], [ws.CLOSED, 1000, "some reason", true], "closed");
    eq(ws.url, url(), "url");
  },

  // partysocket test "binaryType", and sends of every kind keep their order.
  async binary_messages_follow_binary_type_and_sends_keep_order() {
    const ws = new WsTether(url());
    eq(ws.binaryType, "blob", "default binaryType");
    const first = messages(ws, 4);
    ws.send(new Uint8Array([1, 2, 3]));
    ws.send(new Blob([new Uint8Array([4, 5])])); // read asynchronously...
    ws.send("after the blob"); // ...yet this still goes after it
    ws.send(new Uint16Array([0x0706, 0x0908]).subarray(1)); // a view: its bytes only
    const received = await first;
    ws.binaryType = "arraybuffer";
    const last = next(ws, "message");
    ws.send(new Uint8Array([10]).buffer);
    received.push((await last).data);
    check(received[0] instanceof Blob, "binary arrives as a Blob by default");
    eq(await bytes(received[0]), [1, 2, 3], "first message");
    eq(await bytes(received[1]), [4, 5], "the Blob's bytes");
    eq(received[2], "after the blob", "text after the Blob");
    eq(await bytes(received[3]), [8, 9], "the view's bytes");
    check(received[4] instanceof ArrayBuffer, "binaryType arraybuffer gives an ArrayBuffer");
    eq(await bytes(received[4]), [10], "last message");
    let refused = "";
    try {
      ws.binaryType = "text";
    } catch (error) {
      refused = error.name;
    }
    eq([refused, ws.binaryType], ["SyntaxError", "arraybuffer"], "a bad binaryType is refused");
    ws.close();
  },

  // partysocket test "calling to close multiple times".
  async close_twice_fires_one_close_event() {
    const ws = new WsTether(url());
    let closes = 0;
    ws.addEventListener("close", () => closes++);
    await next(ws, "open");
    ws.close();
    ws.close();
    ws.close();
    await next(ws, "close");
    // The close event is the last one: the socket's pump has ended.
    eq([closes, ws.readyState], [1, ws.CLOSED], "close events, readyState");
  },

  // partysocket test "connect and close before establishing connection".
  async close_before_open_fires_no_open_and_one_close() {
    const ws = new WsTether(url(), null, FAST);
    let opens = 0;
    ws.addEventListener("open", () => opens++);
    ws.close();
    const close = await next(ws, "close");
    eq([opens, ws.readyState, close.code], [0, ws.CLOSED, 1000], "opens, readyState, code");
  },

  // partysocket test "closing from the other side should reconnect".
  async server_close_reconnects_until_the_client_closes() {
    const ws = new WsTether(url(), null, FAST);
    let opens = 0;
    const third = new Promise((resolve) =>
      ws.addEventListener("open", () => {
        opens++;
        if (opens < 3) control("/_control/close?code=4000");
        else resolve();
      }),
    );
    await third;
    ws.close();
    await next(ws, "close");
    eq(opens, 3, "opens");
  },

  // partysocket test "closing from the other side should allow to keep
  // closed", with the server's close code: one of retry.stopOnCloseCodes
  // (1008 by default) ends the socket.
  async server_close_with_a_stop_code_keeps_it_closed() {
    const ws = new WsTether(url("?close=1008&reason=policy"), null, FAST);
    let opens = 0;
    ws.addEventListener("open", () => opens++);
    const [down, close] = await Promise.all([next(ws, "down"), next(ws, "close")]);
    eq([down.code, down.willReconnect], [1008, false], "down");
    eq([opens, close.code, close.reason, close.wasClean], [1, 1008, "policy", true], "close");
  },

  // partysocket tests "max retries: N".
  async max_retries_then_close() {
    const ws = new WsTether(url("?reject=503"), null, { retry: { initialDelayMs: 10, maxDelayMs: 20, maxRetries: 2 } });
    let reconnecting = 0;
    let errors = 0;
    ws.addEventListener("reconnecting", () => reconnecting++);
    ws.addEventListener("error", () => errors++);
    const close = await next(ws, "close");
    eq([reconnecting, close.wasClean, ws.readyState], [2, false, ws.CLOSED], "reconnects, wasClean, readyState");
    check(errors >= 3, `an error per attempt (${errors})`);
  },

  // partysocket test "enqueue messages before websocket initialization with expected order".
  async sends_while_connecting_are_held_in_order() {
    const ws = new WsTether(url());
    const echoes = messages(ws, 3);
    const sent = ["message1", "message2", "message3"];
    sent.forEach((m) => ws.send(m));
    eq(ws.bufferedAmount, 24, "bufferedAmount");
    eq(await echoes, sent, "echoed in order");
    ws.close();
  },

  // partysocket test "respect maximum enqueued messages": the bound is
  // sendQueueBytes, and a send past it throws instead of dropping silently.
  async held_sends_are_bounded_by_send_queue_bytes() {
    // Two 1000-byte messages fit in 2500 bytes, a third does not (also
    // when each queued message is charged a small fixed overhead).
    const message = "m".repeat(1000);
    const ws = new WsTether(url(), null, { sendQueueBytes: 2500 });
    ws.send(message);
    ws.send(message);
    let thrown = null;
    try {
      ws.send(message);
    } catch (error) {
      thrown = error;
    }
    check(isWsTetherError(thrown), `a WsTetherError: ${thrown}`);
    eq([thrown.kind, thrown.unsent[0] === message, ws.bufferedAmount], ["QueueFull", true, 2000], "kind, unsent, bufferedAmount");
    ws.close();
  },

  // partysocket's send while closed (reconnecting): held, written after the next open.
  async sends_while_reconnecting_are_held_and_written_after_the_next_open() {
    const ws = new WsTether(url(), null, FAST);
    await next(ws, "open");
    const down = next(ws, "down");
    await control("/_control/restart?down_ms=200");
    await down;
    eq(ws.readyState, ws.CONNECTING, "readyState while reconnecting");
    const echoes = messages(ws, 2);
    ws.send("held 1");
    ws.send("held 2");
    eq(ws.bufferedAmount, 12, "bufferedAmount while down");
    eq(await echoes, ["held 1", "held 2"], "written after the reconnect");
    ws.close();
  },

  // No silent loss: what was held when the socket gives up comes back.
  async held_messages_come_back_in_the_last_down_when_retries_are_spent() {
    const ws = new WsTether(url("?reject=503"), null, { retry: { initialDelayMs: 10, maxRetries: 1 } });
    ws.send("never sent");
    const lastDown = next(ws, "down", (event) => !event.willReconnect);
    const [down, close] = await Promise.all([lastDown, next(ws, "close")]);
    eq([down.unsent, close.wasClean, ws.bufferedAmount], [["never sent"], false, 0], "unsent, wasClean, bufferedAmount");
  },

  async stats_count_messages_and_probe_is_accepted() {
    const ws = new WsTether(url(), null, { keepalive: { intervalMs: 60_000, timeoutMs: 5_000, heartbeat: "♥" } });
    ws.send("counted");
    await next(ws, "message");
    ws.probe();
    const stats = ws.stats();
    eq([stats.messagesReceived, stats.bytesReceived, stats.reconnects], [1, 7, 0], "messagesReceived, bytesReceived, reconnects");
    ws.close();
  },

  async send_after_close_throws_closed_with_the_message() {
    const ws = new WsTether(url());
    ws.close();
    let thrown = null;
    try {
      ws.send("late");
    } catch (error) {
      thrown = error;
    }
    check(isWsTetherError(thrown), `a WsTetherError: ${thrown}`);
    eq([thrown.kind, thrown.unsent], ["Closed", ["late"]], "kind, unsent");
    const rejected = await ws.sendAsync("late too").then(() => "resolved", (error) => error.kind);
    eq(rejected, "Closed", "sendAsync after close");
  },

  async send_async_waits_for_room() {
    const ws = new WsTether(url(), null, { sendQueueBytes: 16 });
    const echoes = messages(ws, 3);
    const order = [];
    ws.addEventListener("open", () => order.push("open"));
    await ws.sendAsync("0123456789");
    eq(ws.bufferedAmount, 10, "bufferedAmount of the held message");
    // 16 bytes: these two wait for room (no QueueFull), until the held one is written.
    const rest = ["abcdefghij", "ABCDEFGHIJ"].map((m) => ws.sendAsync(m).then(() => order.push(`queued ${m}`)));
    await Promise.all(rest);
    eq(order, ["open", "queued abcdefghij", "queued ABCDEFGHIJ"], "order");
    eq(await echoes, ["0123456789", "abcdefghij", "ABCDEFGHIJ"], "all echoed in order");
    ws.close();
  },

  // partysocket test "level0 event listeners are kept after reconnect".
  async level0_handlers_are_called_across_a_reconnect() {
    const ws = new WsTether(url(), null, FAST);
    const seen = [];
    ws.onopen = () => seen.push("open");
    ws.onmessage = (event) => seen.push(event.data);
    ws.onclose = (event) => seen.push(`close ${event.code}`);
    await next(ws, "open");
    await control("/_control/close?code=4000");
    await next(ws, "open");
    ws.send("hi");
    await next(ws, "message");
    ws.close(4001);
    await next(ws, "close");
    eq(seen, ["open", "open", "hi", "close 4001"], "handler calls");
  },

  // partysocket test "level2 event listeners using object with handleEvent".
  async listener_objects_and_removed_listeners() {
    const ws = new WsTether(url());
    let failed = 0;
    const fail = () => failed++;
    ws.addEventListener("open", fail);
    ws.removeEventListener("open", fail);
    const opened = new Promise((resolve) => ws.addEventListener("open", { handleEvent: resolve }));
    await opened;
    eq(failed, 0, "removed listener calls");
    ws.close();
  },

  async connect_resolves_once_open() {
    const ws = await WsTether.connect(url(), "chat");
    eq([ws.readyState, ws.protocol], [WsTether.OPEN, "chat"], "readyState, protocol");
    ws.close();
  },

  async connect_rejects_with_the_first_error_and_closes() {
    const error = await WsTether.connect(url("?reject=403")).then(
      () => null,
      (error) => error,
    );
    check(isWsTetherError(error), `a WsTetherError: ${error}`);
    eq(error.kind, "Upgrade", "kind");
  },

  // The first-connection policy: `new WsTether` keeps trying from the
  // start (partysocket's behaviour); `WsTether.connect` gives up after
  // one attempt by default, or by `firstConnection`.
  async new_socket_keeps_trying_the_first_connection() {
    const ws = new WsTether(url("?reject=403"), null, FAST);
    const attempts = [];
    ws.addEventListener("reconnecting", (event) => attempts.push(event.attempt));
    await next(ws, "reconnecting", (event) => event.attempt >= 3);
    eq(ws.readyState, ws.CONNECTING, "readyState while it keeps trying");
    const closed = next(ws, "close");
    ws.close();
    await closed;
    check(attempts.length >= 2, `attempts ${attempts}`);
  },

  async new_socket_with_an_attempt_budget_closes_after_it() {
    const ws = new WsTether(url("?reject=403"), null, { ...FAST, firstConnection: { attempts: 2 } });
    const attempts = [];
    const errors = [];
    ws.addEventListener("reconnecting", (event) => attempts.push(event.attempt));
    ws.addEventListener("error", (event) => errors.push(event.error.kind));
    const close = await next(ws, "close");
    eq([attempts.length, close.wasClean, ws.readyState], [1, false, ws.CLOSED], "one retry, then closed");
    eq(errors[errors.length - 1], "Upgrade", "the last error says why");
  },

  async connect_rejects_after_its_attempt_budget_with_the_last_error() {
    const before = JSON.parse(await control("/_control/stats")).requests;
    const error = await WsTether.connect(url("?reject=403"), null, {
      ...FAST,
      firstConnection: { attempts: 3 },
    }).then(
      () => null,
      (error) => error,
    );
    check(isWsTetherError(error), `a WsTetherError: ${error}`);
    eq(error.kind, "Upgrade", "kind");
    const after = JSON.parse(await control("/_control/stats")).requests;
    eq(after - before, 3, "upgrade requests the server saw");
  },

  // Before a provider's first answer there is no server to open: sends
  // wait (bounded by sendQueueBytes), sendAsync waits for room, in order.
  async sends_before_the_providers_first_answer_wait_in_order() {
    let answer;
    const first = new Promise((resolve) => (answer = resolve));
    let calls = 0;
    const ws = new WsTether(() => (++calls === 1 ? first : url()), null, { ...FAST, sendQueueBytes: 4 });
    ws.send("abcd");
    eq([ws.bufferedAmount, ws.readyState, ws.url], [4, ws.CONNECTING, ""], "before the first answer");
    let full = "";
    try {
      ws.send("x");
    } catch (error) {
      full = error.kind;
    }
    eq(full, "QueueFull", "send without room");
    const later = ws.sendAsync("efgh");
    const got = messages(ws, 2);
    answer(url());
    await later;
    eq(await got, ["abcd", "efgh"], "in order");
    const closed = next(ws, "close");
    ws.close();
    await closed;
  },

  async first_connection_budget_is_checked() {
    const kindOf = (options) => {
      try {
        new WsTether(url(), null, options).close();
        return "no error";
      } catch (error) {
        return error.kind;
      }
    };
    eq(
      [
        kindOf({ firstConnection: { attempts: 0 } }),
        kindOf({ firstConnection: { tries: 1 } }),
        kindOf({ firstConnection: "forever" }),
        kindOf({ firstConnection: { deadlineMs: 1000 } }),
        kindOf({ firstConnection: "reconnectPolicy" }),
      ],
      ["InvalidOption", "InvalidOption", "InvalidOption", "no error", "no error"],
      "kinds",
    );
  },

  async constructor_throws_on_a_bad_url_or_option() {
    const kindOf = (make) => {
      try {
        make();
        return "no error";
      } catch (error) {
        return isWsTetherError(error) ? error.kind : error.name;
      }
    };
    eq(
      [
        kindOf(() => new WsTether("http://127.0.0.1:1/")),
        kindOf(() => new WsTether("not a url")),
        kindOf(() => new WsTether(url(), null, { autoUpgrade: true })),
        kindOf(() => new WsTether(url(), null, { retyr: {} })),
        kindOf(() => new WsTether(url(), 42)),
      ],
      ["UnsupportedScheme", "InvalidUrl", "InvalidOption", "InvalidOption", "TypeError"],
      "kinds",
    );
  },

  async provider_that_rejects_gives_an_error_then_close() {
    const ws = new WsTether(async () => {
      throw new Error("no token today");
    });
    // Both listeners first: the events may come in one go.
    const [error, close] = await Promise.all([next(ws, "error"), next(ws, "close")]);
    eq(error.error.kind, "Provider", "kind");
    check(error.error.message.includes("no token today"), error.error.message);
    eq([close.wasClean, ws.readyState], [false, ws.CLOSED], "close");
  },

  async provider_that_changes_the_host_is_refused() {
    let calls = 0;
    const other = testkitUrl.replace("127.0.0.1", "localhost");
    const ws = new WsTether(() => (++calls === 1 ? url() : other), null, FAST);
    await next(ws, "open");
    const refused = Promise.all([next(ws, "error"), next(ws, "close")]);
    await control("/_control/close?code=4000");
    const [error] = await refused;
    eq(error.error.kind, "InvalidUrl", "kind");
  },

  async close_with_a_code_the_browser_refuses_throws() {
    const ws = new WsTether(url());
    await next(ws, "open");
    let kind = "";
    try {
      ws.close(1001);
    } catch (error) {
      kind = error.kind;
    }
    eq([kind, ws.readyState], ["InvalidCloseCode", ws.OPEN], "kind, readyState");
    ws.close();
  },

  // Lifetime: no close on garbage collection while open. The page keeps no
  // reference (only a WeakRef); the socket must survive forced collections,
  // reconnect, and keep receiving; once closed and unreferenced it is
  // collected.
  async open_socket_survives_gc_and_closed_socket_is_collected() {
    let collected = false;
    const registry = new FinalizationRegistry(() => {
      collected = true;
    });
    // The first socket opened with no reference kept by the page.
    const log = { opens: 0, messages: [] };
    let onOpen;
    const opened = () => new Promise((resolve) => (onOpen = resolve));
    let firstOpen = opened();
    const weak = (() => {
      const ws = new WsTether(url("?send=1&size=8"), null, FAST);
      ws.addEventListener("open", () => {
        log.opens++;
        onOpen();
      });
      ws.addEventListener("message", (event) => log.messages.push(event.data));
      registry.register(ws, "socket");
      return new WeakRef(ws);
    })();
    await firstOpen;
    await collect();
    check(!collected && weak.deref() !== undefined, "collected while open");
    // It reconnects and receives with no reference held by the page.
    const secondOpen = opened();
    await control("/_control/close?code=4000");
    await secondOpen;
    await collect();
    check(!collected && weak.deref() !== undefined, "collected while reconnected");
    eq(log.opens, 2, "opens");
    // In a function of its own, so that no suspended frame keeps a reference.
    await (async () => {
      const ws = weak.deref();
      const echoed = next(ws, "message", (event) => event.data === "after gc");
      ws.send("after gc");
      await echoed;
      const closed = next(ws, "close");
      ws.close();
      await closed;
    })();
    // Closed and unreferenced: collected (bounded number of tries).
    for (let i = 0; i < 50 && !collected; i++) await collect();
    check(collected, "a closed, unreferenced socket was not collected");
  },

  // The low level's lifetime: with an onEvent callback, a connection the
  // page no longer references stays open (and re-upgrades) until it ends.
  async connection_with_on_event_stays_open_without_references() {
    const seen = [];
    let signal;
    const upgraded = () => new Promise((resolve) => (signal = resolve));
    let first = upgraded();
    let ended;
    const end = new Promise((resolve) => (ended = resolve));
    (() => {
      const connection = WsTetherConnection.open(new URL(testkitUrl).origin.replace(/^http/, "ws"), {
        autoUpgrade: true,
        retry: { initialDelayMs: 10, maxDelayMs: 50 },
      });
      connection.onEvent((event) => {
        seen.push(event.type);
        if (event.type === "upgraded") signal();
        if (event.type === "down" && !event.willReconnect) ended(event.code);
      });
      connection.upgrade("/", null);
    })();
    await first;
    await collect();
    const second = upgraded();
    await control("/_control/close?code=4000");
    await second;
    await collect();
    await control("/_control/close?code=1008"); // a code that stops reconnecting
    eq(await end, 1008, "the final down's code");
    eq(seen.filter((type) => type === "upgraded").length, 2, "upgrades");
  },
};

/** Runs one test; resolves to "ok" or to the failure's message. */
export async function run(name) {
  try {
    await tests[name]();
    return "ok";
  } catch (error) {
    return `${error instanceof Failure ? "" : `${error?.name}: `}${error?.message ?? error}\n${error?.stack ?? ""}`;
  }
}
