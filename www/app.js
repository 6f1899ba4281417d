// The wstether web demo: the wasm build driven through its JavaScript facade
// (`WsTetherConnection`, Gun's split model, from the npm package in ./pkg).
// Plain ES module.
import init, { WsTetherConnection } from "./pkg/index.js";

const $ = (id) => document.getElementById(id);

/** The keepalive: a "♥" heartbeat the echo server sends back, every second of silence. */
const KEEPALIVE = { intervalMs: 1000, timeoutMs: 3000, heartbeat: "♥" };
/** Slow enough backoff to watch the countdown. */
const RETRY = { initialDelayMs: 1000, maxDelayMs: 8000 };

let tether = null; // the WsTetherConnection, while connected
let stream = null; // the current stream id (a new one after each upgrade)

/** A stream as people read it: "#3.2", the second upgrade on the third connection. */
const name = (id) => WsTetherConnection.streamName(id);
let upgradePath = "/";
let autoUpgrade = true; // as chosen when connecting
let upgradePending = false; // an upgrade is on its way (ours, or the automatic one)
// The connection went down and will come back: the next "up" is a reconnect.
// (Not `event.attempt > 1`: attempt counts dial attempts since open, so it is
// also above 1 when the first attempts failed and nothing was ever up.)
let wasDown = false;
let countdown = null; // { attempt, at } while a reconnect is scheduled
const started = performance.now();

// --- the default server: ?ws=URL, else the one the demo command started (config.js) ---

async function defaultUrl() {
  const param = new URLSearchParams(location.search).get("ws");
  if (param) return param;
  try {
    const { testkitUrl } = await import("./config.js");
    const url = new URL(testkitUrl);
    url.pathname = "/chat";
    return url.href;
  } catch {
    return "ws://127.0.0.1:8080/chat";
  }
}

// --- the log ---

const LABELS = {
  up: "Up",
  upgraded: "Upgraded",
  upgradeFailed: "Upgrade failed",
  frame: "Frame",
  error: "Error",
  down: "Down",
  reconnecting: "Reconnecting",
  sent: "Sent",
  local: "Page",
};

function log(type, detail) {
  const item = document.createElement("li");
  item.dataset.type = type;
  const time = document.createElement("time");
  time.textContent = `${((performance.now() - started) / 1000).toFixed(3)} s`;
  const tag = document.createElement("span");
  tag.className = "tag";
  tag.textContent = LABELS[type] ?? type;
  const text = document.createElement("span");
  text.className = "detail";
  text.textContent = detail;
  item.append(time, tag, text);
  const list = $("log");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.append(item);
  if (atBottom) list.scrollTop = list.scrollHeight;
}

const show = (data) =>
  typeof data === "string" ? JSON.stringify(data) : `${data.length} bytes [${Array.from(data.slice(0, 16)).join(", ")}${data.length > 16 ? ", …" : ""}]`;

// --- the state shown ---

function setState(state, label = state) {
  const badge = $("state");
  badge.dataset.state = state;
  badge.textContent = label;
  const connected = tether !== null;
  $("connect").disabled = connected;
  $("disconnect").disabled = !connected;
  $("drop").disabled = !connected;
  $("send").disabled = !connected || state !== "open";
  $("upgrade").disabled = !connected || state !== "up" || upgradePending;
  $("url").disabled = connected;
  $("protocol").disabled = connected;
  $("auto-upgrade").disabled = connected;
}

function tick() {
  if (countdown) {
    const left = Math.max(0, countdown.at - performance.now());
    $("countdown").textContent = `attempt ${countdown.attempt} in ${(left / 1000).toFixed(1)} s`;
  } else {
    $("countdown").textContent = "—";
  }
  if (tether) {
    const rtt = tether.rtt();
    $("rtt").textContent = rtt === undefined ? "waiting for a heartbeat…" : `${rtt.toFixed(1)} ms`;
    const { framesWritten, framesReceived } = tether.stats();
    $("frames").textContent = `${framesWritten} / ${framesReceived}`;
  }
}

// --- events ---

function onEvent(event) {
  switch (event.type) {
    case "up":
      countdown = null;
      $("attempt").textContent = String(event.attempt);
      log("up", `attempt ${event.attempt}${wasDown ? " (reconnected)" : ""}`);
      // After a reconnect, auto-upgrade re-runs the last upgrade by itself.
      upgradePending ||= wasDown && autoUpgrade;
      wasDown = false;
      setState("up", upgradePending ? "up, upgrading…" : "up, not upgraded");
      break;
    case "upgraded":
      stream = event.stream;
      upgradePending = false;
      $("stream").textContent = name(stream);
      log("upgraded", `stream ${name(event.stream)}, protocol ${event.protocol ?? "none"}`);
      setState("open");
      break;
    case "upgradeFailed":
      log("upgradeFailed", `stream ${name(event.stream)}: ${event.error.message}`);
      upgradePending = false;
      setState("up", "upgrade failed");
      break;
    case "frame":
      if (event.kind === "close") {
        log("frame", `close ${event.code}${event.reason ? ` ${show(event.reason)}` : ""} on ${name(event.stream)}`);
      } else {
        log("frame", `${event.kind} ${show(event.data)} on ${name(event.stream)}`);
      }
      break;
    case "error":
      log("error", event.error.message);
      break;
    case "down": {
      const unsent = event.unsentCount ? `, ${event.unsentCount} frame(s) unsent` : "";
      const next = event.willReconnect ? "will reconnect" : "no reconnect";
      log("down", `${event.reason}${unsent}; ${next}`);
      stream = null;
      upgradePending = false;
      wasDown = event.willReconnect;
      $("stream").textContent = "—";
      if (event.willReconnect) {
        setState("down");
      } else {
        finish();
      }
      break;
    }
    case "reconnecting":
      countdown = { attempt: event.attempt, at: performance.now() + event.delayMs };
      log("reconnecting", `attempt ${event.attempt} in ${Math.round(event.delayMs)} ms`);
      setState("reconnecting");
      break;
    default:
      log(event.type, JSON.stringify(event));
  }
  tick();
}

/** The connection has ended for good. */
function finish() {
  if (tether) tether.free();
  tether = null;
  countdown = null;
  $("rtt").textContent = "—";
  setState("closed");
}

// --- actions ---

function connect() {
  let url;
  try {
    url = new URL($("url").value.trim());
  } catch {
    log("error", `not a URL: ${$("url").value}`);
    return;
  }
  upgradePath = url.pathname + url.search;
  const base = `${url.protocol}//${url.host}`;
  autoUpgrade = $("auto-upgrade").checked;
  wasDown = false;
  try {
    tether = WsTetherConnection.open(base, {
      retry: RETRY,
      keepalive: KEEPALIVE,
      autoUpgrade,
    });
  } catch (error) {
    log("error", error.message);
    return;
  }
  tether.onEvent(onEvent);
  log("local", `open ${base}`);
  setState("connecting");
  upgrade();
}

function upgrade() {
  const protocol = $("protocol").value.trim();
  try {
    const id = tether.upgrade(upgradePath, protocol || null);
    upgradePending = true;
    setState($("state").dataset.state, $("state").textContent);
    log("local", `upgrade ${upgradePath}${protocol ? ` (subprotocol ${protocol})` : ""} as stream ${name(id)}`);
  } catch (error) {
    log("error", error.message);
  }
}

function send(event) {
  event.preventDefault();
  const text = $("message").value;
  try {
    tether.send(stream, text);
    log("sent", `text ${show(text)} on ${name(stream)}`);
  } catch (error) {
    log("error", error.message);
  }
}

async function drop() {
  const url = new URL($("url").value);
  url.protocol = url.protocol === "wss:" ? "https:" : "http:";
  url.pathname = "/_control/drop";
  url.search = "";
  log("local", `asking the server to drop every connection (${url.href})`);
  try {
    const response = await fetch(url);
    if (!response.ok) log("error", `${url.href}: HTTP ${response.status}`);
  } catch (error) {
    log("error", `${url.href}: ${error.message}`);
  }
}

function disconnect() {
  log("local", "shutdown");
  tether.shutdown();
}

// --- start ---

await init();
$("url").value = await defaultUrl();
$("connect").addEventListener("click", connect);
$("upgrade").addEventListener("click", upgrade);
$("disconnect").addEventListener("click", disconnect);
$("drop").addEventListener("click", drop);
$("send-form").addEventListener("submit", send);
$("clear").addEventListener("click", () => $("log").replaceChildren());
setInterval(tick, 100);
setState("idle");
document.body.dataset.ready = "true";
