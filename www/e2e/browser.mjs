// Debian's Chromium, headless, driven by playwright-core (no browser is
// downloaded): shared by e2e.mjs and socket.mjs.
import { execFileSync } from "node:child_process";
import { chromium } from "playwright-core";

function findChromium() {
  for (const name of ["chromium", "chromium-browser"]) {
    try {
      return execFileSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" }).trim();
    } catch {
      // try the next name
    }
  }
  throw new Error("no chromium on PATH: install Debian's chromium (.ci/setup does)");
}

/** Launches headless Chromium with the project's flags plus `extraArgs`. */
export function launch(extraArgs = []) {
  return chromium.launch({
    executablePath: findChromium(),
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      ...extraArgs,
    ],
  });
}
