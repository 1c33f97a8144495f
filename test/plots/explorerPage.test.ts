/**
 * The latent explorer in headless Chromium: the mouse over the scatter decodes the latent point under
 * it in the page, and the page's pixels equal the kernel side's for the same z, where the kernel side
 * runs the page's (dequantised) decoder weights through the tfjs model, `decode` of src/vae/model.ts.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import type { Page } from "playwright-core";
import { initBackend } from "../../src/backend/select";
import { runSweep, weightsFromFlat, type SweepResult } from "../../src/experiment/sweep";
import { findChromium, launchChromium } from "../../src/plots/browser";
import { buildExplorer, explorerHtml, flatWithDecoder, type Explorer } from "../../src/plots/explorer";
import { loadConfig } from "../../src/vae/config";
import { loadMnist, PROJECT_ROOT } from "../../src/vae/data";
import { buildModel, decode, setWeights } from "../../src/vae/model";
import { readValues } from "../../src/vae/latent";

const SCREENSHOTS = path.join(PROJECT_ROOT, "build", "screenshots");

interface PageState {
  klCoefficient: number;
  z: number[];
  pixels: number[];
}

/** The kernel side: the tfjs decoder holding the page's weights of coefficient `index`, at latent points `z`. */
function kernelDecode(result: SweepResult, explorer: Explorer, index: number, z: number[][]): Float32Array[] {
  const model = buildModel(result.config);
  try {
    setWeights(
      model,
      weightsFromFlat(model, flatWithDecoder(result.runs[index].weights, explorer.decoders[index].page, result.config)),
    );
    const values = readValues(() => decode(model, tf.tensor2d(z.flat(), [z.length, 2])));
    return z.map((_, i) => values.slice(i * 784, (i + 1) * 784));
  } finally {
    model.vae.dispose();
  }
}

function maxDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let largest = 0;
  for (let i = 0; i < a.length; i++) largest = Math.max(largest, Math.abs(a[i] - b[i]));
  return largest;
}

/** Moves the mouse to the pixel of latent point z; returns the z and pixels the page decoded there. */
async function hover(page: Page, z: number[]): Promise<PageState> {
  const position = await page.evaluate((target) => {
    const handle = (
      document.querySelector(".vae-explorer") as unknown as {
        vaeExplorer: { positionOf(z: number[]): number[]; scatter: HTMLCanvasElement };
      }
    ).vaeExplorer;
    const box = handle.scatter.getBoundingClientRect();
    const [x, y] = handle.positionOf(target);
    return [box.left + x, box.top + y];
  }, z);
  await page.mouse.move(position[0], position[1]);
  return page.evaluate(() => {
    const last = (
      document.querySelector(".vae-explorer") as unknown as {
        vaeExplorer: { state: { last: { klCoefficient: number; z: number[]; pixels: Float32Array } } };
      }
    ).vaeExplorer.state.last;
    return { klCoefficient: last.klCoefficient, z: Array.from(last.z), pixels: Array.from(last.pixels) };
  });
}

test("the explorer decodes under the mouse in Chromium exactly as the kernel's decoder, per coefficient, and along a path", async (t) => {
  if (!findChromium()) return t.skip("Chromium is not installed (Debian: apt-get install chromium)");
  await initBackend({ quiet: true });
  // The quick profile's cache entries, shared with the notebook tests (the key leaves out the list of c).
  const config = loadConfig({ klCoefficients: [0, 1, 10] }, { VAE_PROFILE: "quick" });
  const result = await runSweep({ config, data: loadMnist(config) });
  const explorer = buildExplorer(result, { initialCoefficient: 1 });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vae-explorer-"));
  const file = path.join(dir, "explorer.html");
  fs.writeFileSync(
    file,
    `<!doctype html><html><head><meta charset="utf-8"></head><body>${explorerHtml(result, explorer)}</body></html>`,
  );
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 900, height: 800 } });
    const errors: string[] = [];
    page.on("pageerror", (error) => errors.push(String(error)));
    await page.route("**/*", (route) => (route.request().url().startsWith("file:") ? route.continue() : route.abort()));
    await page.goto(`file://${file}`);
    await page.waitForFunction(
      () => Boolean((document.querySelector(".vae-explorer") as unknown as { vaeExplorer?: unknown }).vaeExplorer),
      null,
      { timeout: 30_000 },
    );
    assert.equal(
      await page.locator(".vae-explorer-fallback").isVisible(),
      false,
      "the static grid gives way to the explorer",
    );

    // c = 1 first (initialCoefficient). Each z as the page saw it is within a pixel of the one asked for.
    const window = explorer.decoders[1].window;
    const pixelWidth = (window[1] - window[0]) / 384;
    const targets = [
      [0.5, -0.7],
      [-1.2, 1.1],
      [2.1, 0.3],
    ];
    const atC1: PageState[] = [];
    for (const z of targets) atC1.push(await hover(page, z));
    for (const [i, state] of atC1.entries()) {
      assert.equal(state.klCoefficient, 1, JSON.stringify([state.z, targets[i], pixelWidth, window]));
      assert.ok(maxDifference(state.z, targets[i]) <= pixelWidth, `page z ${state.z} for ${targets[i]}`);
    }
    const kernelC1 = kernelDecode(
      result,
      explorer,
      1,
      atC1.map((s) => s.z),
    );
    atC1.forEach((state, i) =>
      assert.ok(
        maxDifference(state.pixels, kernelC1[i]) <= 1e-5,
        `c = 1, z = ${state.z}: ${maxDifference(state.pixels, kernelC1[i])}`,
      ),
    );
    // Different points decode to different digits.
    assert.ok(
      maxDifference(atC1[0].pixels, atC1[1].pixels) > 0.05,
      `points differ by ${maxDifference(atC1[0].pixels, atC1[1].pixels)}`,
    );
    await page.screenshot({ path: path.join(SCREENSHOTS, "explorer.png") });

    // Switching to c = 10 switches the decoder: the same z decodes to other pixels, again the kernel's.
    await page.getByRole("button", { name: "c = 10", exact: true }).click();
    const atC10 = await hover(page, targets[0]);
    assert.equal(atC10.klCoefficient, 10);
    const [kernelC10] = kernelDecode(result, explorer, 2, [atC10.z]);
    assert.ok(maxDifference(atC10.pixels, kernelC10) <= 1e-5, `c = 10: ${maxDifference(atC10.pixels, kernelC10)}`);
    const [c1AtSameZ] = kernelDecode(result, explorer, 1, [atC10.z]);
    assert.ok(maxDifference(atC10.pixels, c1AtSameZ) > 0.05, "c = 10 draws another digit than c = 1 at the same z");

    // Two clicks decode the path between them: 10 digits, the first at the first click, the last at the second.
    const from = await hover(page, [-1.5, -1]);
    await page.mouse.down();
    await page.mouse.up();
    const to = await hover(page, [1.5, 1.2]);
    await page.mouse.down();
    await page.mouse.up();
    const path10 = await page.evaluate(() => {
      const state = (
        document.querySelector(".vae-explorer") as unknown as {
          vaeExplorer: {
            state: { path: { klCoefficient: number; from: number[]; to: number[]; digits: Float32Array[] } };
          };
        }
      ).vaeExplorer.state.path;
      return {
        klCoefficient: state.klCoefficient,
        from: Array.from(state.from),
        to: Array.from(state.to),
        digits: state.digits.map((d) => Array.from(d)),
      };
    });
    assert.equal(path10.klCoefficient, 10);
    assert.deepEqual(path10.from, from.z);
    assert.deepEqual(path10.to, to.z);
    assert.equal(path10.digits.length, 10);
    const line = Array.from({ length: 10 }, (_, s) => [
      from.z[0] + (s / 9) * (to.z[0] - from.z[0]),
      from.z[1] + (s / 9) * (to.z[1] - from.z[1]),
    ]);
    const kernelPath = kernelDecode(result, explorer, 2, line);
    path10.digits.forEach((digit, s) =>
      assert.ok(maxDifference(digit, kernelPath[s]) <= 1e-5, `path step ${s}: ${maxDifference(digit, kernelPath[s])}`),
    );
    assert.ok(
      maxDifference(path10.digits[0], from.pixels) <= 1e-6 && maxDifference(path10.digits[9], to.pixels) <= 1e-6,
      "the path ends where the clicks were",
    );
    await page.screenshot({ path: path.join(SCREENSHOTS, "explorer-path.png") });
    assert.deepEqual(errors, []);
    const largest = Math.max(
      ...atC1.map((state, i) => maxDifference(state.pixels, kernelC1[i])),
      maxDifference(atC10.pixels, kernelC10),
      ...path10.digits.map((digit, s) => maxDifference(digit, kernelPath[s])),
    );
    t.diagnostic(`largest difference between the page's pixels and the tfjs decoder's: ${largest.toExponential(2)}`);

    // Without scripts, the static grid stays: one image per coefficient.
    const context = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 900, height: 800 } });
    const staticPage = await context.newPage();
    await staticPage.goto(`file://${file}`);
    assert.equal(await staticPage.locator(".vae-explorer-fallback img").count(), 3);
    assert.equal(await staticPage.locator(".vae-explorer-fallback").isVisible(), true);
    await staticPage.screenshot({ path: path.join(SCREENSHOTS, "explorer-static.png") });
  } finally {
    await browser.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
