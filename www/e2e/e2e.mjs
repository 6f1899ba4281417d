// End-to-end test of the wstether web demo in a real browser: Debian's
// Chromium, headless, driven by playwright-core (no browser is downloaded).
//
//   node www/e2e/e2e.mjs http://127.0.0.1:PORT/
//
// The page must be served by `cargo run --example demo -- --web`
// (.ci/e2e does that). Checks: connect and upgrade, a text frame comes back
// from the echo server, the keepalive RTT shows a number, and after a
// server-side drop the log shows Down, then Up and Upgraded again (auto-upgrade)
// and a frame sent on the new stream is echoed. Saves test-output/e2e.png.
// Every wait is bounded; any failed check exits non-zero with a message.
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { launch } from "./browser.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const outDir = join(root, "test-output");
const screenshot = join(outDir, "e2e.png");
const WAIT_MS = 15_000;

const pageUrl = process.argv[2];
if (!pageUrl) {
  console.error("usage: node www/e2e/e2e.mjs http://127.0.0.1:PORT/");
  process.exit(2);
}

let step = "start";
const check = async (name, action) => {
  step = name;
  const t0 = Date.now();
  await action();
  console.log(`ok   ${name} (${Date.now() - t0} ms)`);
};

/** Rejects if `promise` takes longer than WAIT_MS. */
function withTimeout(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took more than ${WAIT_MS} ms`)), WAIT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const logCount = (page, type) => page.locator(`#log li[data-type="${type}"]`).count();

/** Waits until the log holds more than `before` entries of `type` (optionally containing `text`). */
async function waitForLog(page, type, { before = 0, text } = {}) {
  const selector = `#log li[data-type="${type}"]`;
  await page.waitForFunction(
    ({ selector, before, text }) =>
      [...document.querySelectorAll(selector)].filter((li) => !text || li.textContent.includes(text)).length > before,
    { selector, before, text },
    { timeout: WAIT_MS },
  );
}

const browser = await launch();
const pageErrors = [];
let page;
let failed = false;
try {
  page = await browser.newPage({ viewport: { width: 1180, height: 1000 } });
  page.on("pageerror", (error) => pageErrors.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") pageErrors.push(`console error: ${message.text()}`);
  });

  await check(`load ${pageUrl}`, async () => {
    await page.goto(pageUrl, { timeout: WAIT_MS });
    await page.waitForSelector("body[data-ready=true]", { timeout: WAIT_MS });
    const url = await page.inputValue("#url");
    if (!/^ws:\/\/127\.0\.0\.1:\d+\/chat$/.test(url)) throw new Error(`the default server URL is ${JSON.stringify(url)}`);
  });

  await check("connect: Up, then Upgraded with the subprotocol", async () => {
    await page.click("#connect");
    await waitForLog(page, "up");
    await waitForLog(page, "upgraded", { text: "protocol mychat" });
    await page.waitForSelector('#state[data-state="open"]', { timeout: WAIT_MS });
  });

  let firstStream;
  await check("the stream reads as #connection.stream", async () => {
    firstStream = await page.textContent("#stream");
    if (!/^#\d+\.1$/.test(firstStream)) throw new Error(`the stream shows as ${JSON.stringify(firstStream)}`);
    await waitForLog(page, "upgraded", { text: `stream ${firstStream},` });
  });

  await check("send text: the echo comes back as a Frame", async () => {
    await page.fill("#message", "hello from e2e");
    await page.click("#send");
    await waitForLog(page, "frame", { text: '"hello from e2e"' });
  });

  await check("keepalive: the RTT shows a number of ms", async () => {
    await page.waitForFunction(() => /^\d+(\.\d+)? ms$/.test(document.getElementById("rtt").textContent), null, {
      timeout: WAIT_MS,
    });
  });

  await check("drop connection: Down, Reconnecting, Up and Upgraded again", async () => {
    const upgrades = await logCount(page, "upgraded");
    const downs = await logCount(page, "down");
    await page.click("#drop");
    await waitForLog(page, "down", { before: downs, text: "will reconnect" });
    await waitForLog(page, "reconnecting");
    await waitForLog(page, "up", { text: "(reconnected)" });
    await waitForLog(page, "upgraded", { before: upgrades });
    await page.waitForSelector('#state[data-state="open"]', { timeout: WAIT_MS });
    // Same connection, its next upgrade: #N.1 becomes #N.2.
    const again = await page.textContent("#stream");
    const expected = firstStream.replace(/\.1$/, ".2");
    if (again !== expected) throw new Error(`the new stream shows as ${JSON.stringify(again)}, expected ${expected}`);
  });

  await check("send on the new stream: echoed", async () => {
    await page.fill("#message", "back again");
    await page.click("#send");
    await waitForLog(page, "frame", { text: '"back again"' });
    // Let the keepalive measure the new connection too, for the screenshot.
    await page.waitForFunction(() => /^\d+(\.\d+)? ms$/.test(document.getElementById("rtt").textContent), null, {
      timeout: WAIT_MS,
    });
  });

  await check("low level (WsTetherConnection): async iterator, thrown errors, binary echo", async () => {
    const result = await withTimeout(page.evaluate(async (wsUrl) => {
      const { WsTetherConnection: WsTether } = await import("./pkg/index.js");
      const kindOf = (f) => {
        try {
          f();
          return "no error";
        } catch (error) {
          return `${error.name}/${error.kind}`;
        }
      };
      const bad = kindOf(() => WsTether.open(wsUrl, { retry: { jitter: 2 } }));
      const typo = kindOf(() => WsTether.open(wsUrl, { autoUpgrad: true }));
      // What a browser cannot honour is refused, never ignored.
      const unsupported = [
        { silencePings: false },
        { readBufferSize: 1 << 16 },
        { rootCertificates: [new Uint8Array([1, 2, 3])] },
        { retry: { connectTimeoutMs: 1000 } },
      ].map((options) => kindOf(() => WsTether.open(wsUrl, options)));
      const badSize = kindOf(() => WsTether.open(wsUrl, { sendQueueBytes: 0 }));
      // Extreme values are typed errors, never a panic (a panic would throw a RuntimeError).
      const extremes = [
        { retry: { maxDelayMs: 1e300 } },
        { retry: { initialDelayMs: 0 } },
        { retry: { initialDelayMs: -1 } },
        { upgradeTimeoutMs: NaN },
        { closingTimeoutMs: Infinity },
        { keepalive: { intervalMs: 1e300, timeoutMs: 1000, heartbeat: "hb" } },
      ].map((options) => kindOf(() => WsTether.open(wsUrl, options)));
      const tether = WsTether.open(wsUrl, { retry: false });
      const stream = tether.upgrade("/", null);
      const badClose = kindOf(() => tether.close(stream, 1001));
      const seen = [];
      for await (const event of tether.events()) {
        seen.push(event.type === "frame" ? `frame:${event.kind}` : event.type);
        if (event.type === "upgraded") tether.send(stream, [new Uint8Array([1, 2, 3]), "text"]);
        if (event.type === "frame" && event.data instanceof Uint8Array) seen.push(`bytes:${event.data.join(",")}`);
        if (event.type === "frame" && event.data === "text") tether.close(stream, 4000, "done");
        if (event.type === "down") seen.push(`${event.reasonKind}:${event.willReconnect}`);
      }
      // Two messages of 3 + 4 bytes each way, one connection, no heartbeat.
      const st = tether.stats();
      const stats = [
        `${st.messagesWritten}/${st.bytesWritten}`,
        `${st.messagesReceived}/${st.bytesReceived}`,
        st.reconnects,
        st.timeConnectedMs > 0,
        st.lastRttMs,
        st.smoothedRttMs,
      ].join(" ");
      const stale = kindOf(() => tether.send(stream, "late"));
      const named = /^#\d+\.1$/.test(WsTether.streamName(stream)) ? "#N.1" : WsTether.streamName(stream);
      const badName = kindOf(() => WsTether.streamName(1.5));
      tether.free();
      return { bad, typo, unsupported: unsupported.join(" "), badSize, extremes: extremes.join(" "), badClose, seen: seen.join(" "), stats, stale, named, badName };
    }, new URL(await page.inputValue("#url")).origin), "the in-page facade check");
    const expected = {
      bad: "WsTetherError/InvalidOption",
      typo: "WsTetherError/InvalidOption",
      unsupported: Array(4).fill("WsTetherError/Unsupported").join(" "),
      badSize: "WsTetherError/InvalidOption",
      extremes: Array(6).fill("WsTetherError/InvalidOption").join(" "),
      badClose: "WsTetherError/InvalidCloseCode",
      seen: "up upgraded frame:binary bytes:1,2,3 frame:text frame:close down shutdown:false",
      stats: "2/7 2/7 0 true  ",
      stale: "WsTetherError/Closed",
      named: "#N.1",
      badName: "TypeError/undefined",
    };
    if (JSON.stringify(result) !== JSON.stringify(expected)) {
      throw new Error(`got ${JSON.stringify(result)}, expected ${JSON.stringify(expected)}`);
    }
  });

  await check("no page errors", async () => {
    if (pageErrors.length) throw new Error(pageErrors.join("\n"));
  });
} catch (error) {
  failed = true;
  console.error(`FAIL ${step}: ${error.message}`);
  if (pageErrors.length) console.error(pageErrors.join("\n"));
  if (page) {
    const entries = await page.locator("#log li").allTextContents().catch(() => []);
    console.error(`event log:\n  ${entries.join("\n  ")}`);
  }
} finally {
  if (page) {
    mkdirSync(outDir, { recursive: true });
    await page.screenshot({ path: screenshot, fullPage: true }).catch((e) => console.error(`screenshot: ${e.message}`));
    console.log(`screenshot: ${screenshot}`);
  }
  await browser.close();
}
if (failed) process.exit(1);
console.log("e2e: all checks passed");
