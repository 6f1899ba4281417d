// README-npm.md's code blocks marked `<!-- tested: NAME -->`, run as
// written in the demo page by socket.mjs, with three substitutions: the
// package name "wstether" becomes this page's ../pkg/index.js, the example
// server (wss://example.com/chat) the demo's testkit echo server, and
// console.log a recorder. Each test then checks what the block promises.
import { testkitUrl } from "../config.js";

const WAIT_MS = 15_000;
const echo = new URL("/chat", testkitUrl).href;
let logged = [];
let wake = () => {};
globalThis.__readmeLog = (...values) => {
  logged.push(values.map(String).join(" "));
  wake();
};

/** Waits until the recorder has logged `line`. */
function logs(line) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`never logged ${JSON.stringify(line)}; logged ${JSON.stringify(logged)}`)), WAIT_MS);
    const look = () => {
      if (!logged.includes(line)) return;
      clearTimeout(timer);
      resolve();
    };
    wake = look;
    look();
  });
}

/** Imports `code` as a module (exporting its `ws`), after the substitutions. */
async function load(code) {
  logged = [];
  const source =
    code
      .replace(/from "wstether"/g, `from ${JSON.stringify(new URL("../pkg/index.js", import.meta.url).href)}`)
      .replace(/wss:\/\/example\.com\/chat/g, echo)
      .replace(/console\.log\(/g, "globalThis.__readmeLog(") + "\nexport { ws };\n";
  const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
  try {
    return await import(url);
  } finally {
    URL.revokeObjectURL(url);
  }
}

function closed(ws) {
  return new Promise((resolve) => {
    ws.addEventListener("close", resolve);
    ws.close();
  });
}

export const tests = {
  async quick_start(code) {
    const { ws } = await load(code);
    await logs("hello");
    await closed(ws);
    await logs("closed 1000");
  },

  async connect_send_receive(code) {
    const { ws } = await load(code);
    await logs("hello");
    await closed(ws);
  },

  async fresh_credentials(code) {
    let n = 0;
    globalThis.getToken = async () => `t${++n}`;
    const { ws } = await load(code);
    ws.send("first");
    await logs("first");
    if (!ws.url.endsWith("?token=t1")) throw new Error(`first url ${ws.url}`);
    const reopened = new Promise((resolve) => ws.addEventListener("open", resolve, { once: true }));
    await fetch(new URL("/_control/close?code=4000", testkitUrl.replace(/^ws/, "http")));
    await reopened;
    if (!ws.url.endsWith("?token=t2")) throw new Error(`the reconnect's url ${ws.url}`);
    await closed(ws);
  },
};

/** Runs the block `name` of README-npm.md; resolves to "ok" or the failure. */
export async function run(name, code) {
  try {
    if (!tests[name]) throw new Error(`README-npm.md marks a block "${name}", which no test here runs`);
    await tests[name](code);
    return "ok";
  } catch (error) {
    return `${error?.name}: ${error?.message ?? error}`;
  }
}
