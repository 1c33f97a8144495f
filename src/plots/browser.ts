/**
 * Headless Chromium for static figures and browser tests, driven by playwright-core. Uses the system
 * Chromium (Debian's `chromium`, or `CHROMIUM_PATH`); nothing is downloaded.
 */
import { option, OPTIONS, type Environment } from "../system/options";
import * as fs from "node:fs";
import type { Browser } from "playwright-core";

export const CHROMIUM_ENV = OPTIONS.chromiumPath.name;
const CANDIDATES = [
  "/usr/bin/chromium",
  "/usr/bin/chromium-browser",
  "/usr/bin/google-chrome",
  "/usr/bin/google-chrome-stable",
];

/**
 * Extra flags (playwright adds --headless): no background connections on a machine without a network,
 * and shared memory in /tmp rather than /dev/shm, which containers often keep small.
 */
export const CHROMIUM_ARGS = Object.freeze([
  "--no-sandbox",
  "--disable-gpu",
  "--disable-dev-shm-usage",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
]);

/** The Chromium executable, or undefined with none installed. */
export function findChromium(env?: Environment): string | undefined {
  const forced = option("chromiumPath", env);
  if (forced) return fs.existsSync(forced) ? forced : undefined;
  return CANDIDATES.find((candidate) => fs.existsSync(candidate));
}

/** Launches headless Chromium; the error says how to install it when it is missing. */
export async function launchChromium(): Promise<Browser> {
  const executablePath = findChromium();
  if (!executablePath) {
    throw new Error(
      `No Chromium found (looked for ${CANDIDATES.join(", ")}). ` +
        `Install it (Debian: apt-get install chromium) or set ${CHROMIUM_ENV}.`,
    );
  }
  const { chromium } = await import("playwright-core");
  // playwright would otherwise answer SIGINT by closing the browser and exiting the process: in a
  // notebook kernel, that is Jupyter's Interrupt, which must stop a cell, not kill the kernel.
  return chromium.launch({ executablePath, args: [...CHROMIUM_ARGS], handleSIGINT: false });
}
