// Browser tests of WsTether, the npm package's reconnecting WebSocket, in
// Debian's headless Chromium (with --js-flags=--expose-gc, for the lifetime
// test): loads the demo page, then runs each test of socket.tests.js in it,
// one by one, against the demo's testkit server. Also runs the code blocks
// of README-npm.md marked `<!-- tested: NAME -->` (see readme.tests.js).
//
//   node www/e2e/socket.mjs http://127.0.0.1:PORT/ [test-name-substring]
//
// The page must be served by `cargo run --example demo -- --web`
// (.ci/e2e does that). Prints one line per test and "N passed, N failed".
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { launch } from "./browser.mjs";

const readmePath = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "README-npm.md");
/** README-npm.md's blocks marked `<!-- tested: NAME -->`, by name. */
const readmeBlocks = Object.fromEntries(
  [...readFileSync(readmePath, "utf8").matchAll(/<!-- tested: (\w+) -->\s*```js\n([\s\S]*?)```/g)].map((m) => [m[1], m[2]]),
);

const pageUrl = process.argv[2];
const only = process.argv[3] ?? "";
if (!pageUrl) {
  console.error("usage: node www/e2e/socket.mjs http://127.0.0.1:PORT/ [test-name-substring]");
  process.exit(2);
}
/** A test that hangs past every in-page deadline fails here. */
const TEST_MS = 60_000;

const browser = await launch(["--js-flags=--expose-gc"]);
let passed = 0;
let failed = 0;
try {
  const page = await browser.newPage();
  const pageErrors = [];
  page.on("pageerror", (error) => pageErrors.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    // The browser's own report of a refused WebSocket is expected here.
    if (message.type() === "error" && !message.text().startsWith("WebSocket connection to "))
      pageErrors.push(`console error: ${message.text()}`);
  });
  await page.goto(pageUrl, { timeout: 15_000 });
  await page.waitForSelector("body[data-ready=true]", { timeout: 15_000 });
  const report = (name, outcome, t0) => {
    if (outcome === "ok") {
      passed++;
      console.log(`ok   ${name} (${Date.now() - t0} ms)`);
    } else {
      failed++;
      console.log(`FAIL ${name}: ${outcome}`);
    }
  };
  const runIn = async (suite, name, code) => {
    try {
      return await page.evaluate(
        ([suite, name, code, ms]) =>
          Promise.race([
            import(suite).then((m) => m.run(name, code)),
            new Promise((resolve) => setTimeout(() => resolve(`no result within ${ms} ms`), ms)),
          ]),
        [suite, name, code, TEST_MS],
      );
    } catch (error) {
      return `evaluate: ${error.message}`;
    }
  };
  const names = async (suite) => page.evaluate(async (suite) => Object.keys((await import(suite)).tests), suite);

  for (const name of (await names("./e2e/socket.tests.js")).filter((n) => n.includes(only))) {
    const t0 = Date.now();
    report(name, await runIn("./e2e/socket.tests.js", name), t0);
  }
  // Every README test has its block, and every marked block its test.
  const readmeTests = await names("./e2e/readme.tests.js");
  for (const name of [...new Set([...readmeTests, ...Object.keys(readmeBlocks)])].filter((n) => n.includes(only))) {
    const t0 = Date.now();
    const outcome = name in readmeBlocks ? await runIn("./e2e/readme.tests.js", name, readmeBlocks[name]) : "README-npm.md has no block marked for it";
    report(`README-npm.md ${name}`, outcome, t0);
  }
  // Listener errors are reported, not thrown: none may have happened.
  if (pageErrors.length) {
    failed++;
    console.log(`FAIL no page errors:\n  ${pageErrors.join("\n  ")}`);
  }
} finally {
  await browser.close();
}
console.log(`socket tests: ${passed} passed, ${failed} failed`);
if (failed || !passed) process.exit(1);
