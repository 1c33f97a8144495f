import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { findChromium, launchChromium } from "../../src/plots/browser";
import { PROJECT_ROOT } from "../../src/vae/data";
import { runCli, TINY } from "../helpers";

test("npm run report writes one offline HTML file whose charts all draw in headless Chromium", async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vae-report-"));
  const file = path.join(dir, "report.html");
  const coefficients = [0, 1, 10];
  const run = runCli("report.ts", [
    ...TINY,
    "--coefficients",
    coefficients.join(","),
    "--cache-dir",
    dir,
    "--out",
    file,
  ]);
  assert.equal(run.status, 0, run.stderr);
  const html = fs.readFileSync(file, "utf8");
  assert.doesNotMatch(html, /<script[^>]+src=["']https?:/i, "no script is fetched from the network");
  assert.match(html, /Plotly/);
  if (!findChromium()) return t.skip("Chromium is not installed (Debian: apt-get install chromium)");
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1300, height: 1200 } });
    const errors: string[] = [];
    page.on("pageerror", (error) => errors.push(String(error)));
    // Block every request that is not the file itself: the report must not need the network.
    await page.route("**/*", (route) =>
      route.request().url().startsWith("file:") || route.request().url().startsWith("data:")
        ? route.continue()
        : route.abort(),
    );
    await page.goto(`file://${file}`);
    await page.waitForFunction(() => document.querySelectorAll(".vae-figure .main-svg").length >= 7, null, {
      timeout: 60_000,
    });
    const drawn = await page.evaluate(() => ({
      charts: document.querySelectorAll(".vae-figure.js-plotly-plot").length,
      scatterPoints: document.querySelectorAll(".vae-figure .scatterlayer .point").length,
      images: document.querySelectorAll(".vae-figure .imagelayer image").length,
      sliderSteps: document.querySelectorAll(".vae-figure .slider-container .slider-tick-rect").length,
      tableRows: document.querySelectorAll("table tr").length,
    }));
    assert.deepEqual(errors, []);
    assert.equal(
      drawn.charts,
      7,
      "rate-distortion, loss curves, two small-multiple grids, slider, reconstructions, prior samples",
    );
    // Points: 3 on the rate-distortion curve, 128 per panel of the scatter grid, 128 in the slider chart.
    assert.ok(drawn.scatterPoints >= 3 + 3 * 128 + 128, `scatter points drawn: ${drawn.scatterPoints}`);
    assert.equal(drawn.images, 3 + 2, "three manifolds, then the reconstructions and the prior samples");
    assert.equal(drawn.sliderSteps, coefficients.length);
    // Moving the slider to the last coefficient morphs the scatter into that coefficient's encoder output.
    await page.locator(".slider-container").scrollIntoViewIfNeeded();
    const label = await page.locator(".slider-container .slider-label", { hasText: /^10$/ }).boundingBox();
    const rail = await page.locator(".slider-container .slider-rail-touch-rect").boundingBox();
    assert.ok(label && rail);
    await page.mouse.click(label.x + label.width / 2, rail.y + rail.height / 2);
    await page.waitForFunction(
      () =>
        Array.from(document.querySelectorAll(".gtitle")).some(
          (el) => el.textContent === "Encoder output for KL coefficient = 10",
        ),
      null,
      { timeout: 10_000 },
    );
    const shots = path.join(PROJECT_ROOT, "build", "screenshots");
    fs.mkdirSync(shots, { recursive: true });
    await page.screenshot({ path: path.join(shots, "report.png"), fullPage: true });
    // The latent explorer starts in the report too, one button per coefficient (tested in depth in test/plots/explorerPage.test.ts).
    await page.waitForFunction(
      () => Boolean((document.querySelector(".vae-explorer") as unknown as { vaeExplorer?: unknown }).vaeExplorer),
      null,
      { timeout: 30_000 },
    );
    assert.deepEqual(
      await page.locator(".vae-explorer button").allTextContents(),
      coefficients.map((c) => `c = ${c}`),
    );
    await page.locator(".vae-explorer").scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(shots, "report-explorer.png") });
  } finally {
    await browser.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("npm run report --seeds adds the spread over the seeds and the conclusions counted per seed", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vae-report-seeds-"));
  const file = path.join(dir, "report.html");
  const run = runCli("report.ts", [
    ...TINY,
    "--coefficients",
    "0,10",
    "--seeds",
    "42,43",
    "--cache-dir",
    dir,
    "--out",
    file,
  ]);
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /seed 43, c = 10: training/);
  const html = fs.readFileSync(file, "utf8");
  assert.match(html, /<h2>Over 2 training seeds<\/h2>/);
  // One row per coefficient, each metric as mean ± sd [min, max].
  assert.equal((html.match(/<tr><td>(0|10)<\/td><td>[\d.]+ ± [\d.]+ \[[\d.]+, [\d.]+\]<\/td>/g) ?? []).length, 2);
  assert.equal((html.match(/Holds for \d of 2 seeds/g) ?? []).length, 4);
  assert.match(html, /Rate-distortion over 2 seeds: mean ± sample sd/);
  fs.rmSync(dir, { recursive: true, force: true });
});
