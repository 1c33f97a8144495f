import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { launchChromium, findChromium } from "../../src/plots/browser";
import { QUICK_CONFIG } from "../../src/vae/config";
import { PROJECT_ROOT } from "../../src/vae/data";
import type { Output } from "../../src/notebook/kernel";
import {
  CellError,
  executeNotebook,
  listNotebooks,
  NOTEBOOK_BUILD_DIR,
  type Notebook,
} from "../../src/notebook/runner";
import { ANALYSIS_CHART_TITLES } from "../helpers";

const env = { VAE_PROFILE: "quick" };
const executed = new Map<string, Notebook>();

function outputs(notebook: Notebook): Output[] {
  return notebook.cells.flatMap((cell) => cell.outputs ?? []);
}

/** The titles of the figures a notebook shows (each figure's text/plain is its title). */
function figureTitles(notebook: Notebook): string[] {
  return outputs(notebook)
    .filter((o): o is Extract<Output, { output_type: "display_data" }> => o.output_type === "display_data")
    .filter((o) => String(o.data["text/html"] ?? "").includes("Plotly.newPlot"))
    .map((o) => String(o.data["text/plain"]));
}

function text(notebook: Notebook): string {
  return outputs(notebook)
    .map((o) => (o.output_type === "stream" ? o.text : ""))
    .join("");
}

test("every notebook executes headlessly in the project's tslab kernel, with no error output", async () => {
  const files = listNotebooks();
  assert.deepEqual(
    files.map((f) => path.basename(f)),
    ["01-normal-samples.ipynb", "02-model.ipynb", "03-kl-sweep.ipynb", "04-analysis.ipynb"],
  );
  for (const file of files) {
    const done = await executeNotebook(file, { env, cellTimeoutSeconds: 600, log: (line) => console.error(line) });
    executed.set(path.basename(file, ".ipynb"), done.notebook);
    assert.ok(fs.existsSync(done.ipynbPath) && fs.existsSync(done.htmlPath));
    assert.equal(outputs(done.notebook).filter((o) => o.output_type === "error").length, 0);
    const codeCells = done.notebook.cells.filter((c) => c.cell_type === "code");
    assert.ok(
      codeCells.every((c) => typeof c.execution_count === "number"),
      "every code cell ran",
    );
    // The first cell prints the versions and the backend.
    assert.match(text(done.notebook), /tslab .*TensorFlow\.js 4\.22\.0.*plotly\.js/);
    assert.match(text(done.notebook), /on backend "(tensorflow|wasm|cpu)"/);
  }
});

test("the notebooks hold every expected figure, each with a static WebP fallback, and no copy of plotly.js", () => {
  const coefficients = QUICK_CONFIG.klCoefficients;
  assert.deepEqual(figureTitles(executed.get("01-normal-samples") as Notebook), [
    "Samples from a 2D standard multivariate normal distribution (n = 5000)",
  ]);
  assert.deepEqual(figureTitles(executed.get("02-model") as Notebook), [
    "Loss per epoch for KL coefficient = 1",
    "Encoder output for KL coefficient = 1",
  ]);
  const sweep = executed.get("03-kl-sweep") as Notebook;
  assert.deepEqual(
    figureTitles(sweep),
    coefficients.flatMap((c) => [
      `Encoder output for KL coefficient = ${c}`,
      `Decoder output for KL coefficient = ${c}`,
    ]),
  );
  if (findChromium()) {
    const figures = outputs(sweep).filter(
      (o) => o.output_type === "display_data" && String(o.data["text/html"]).includes("Plotly.newPlot"),
    );
    for (const figure of figures) {
      const html = String((figure as { data: Record<string, unknown> }).data["text/html"]);
      const image = Buffer.from((/src="data:image\/webp;base64,([^"]+)"/.exec(html) ?? ["", ""])[1], "base64");
      // A WebP file is a RIFF container of type WEBP (bytes 0-3 "RIFF", 8-11 "WEBP").
      assert.equal(image.subarray(0, 4).toString("latin1") + image.subarray(8, 12).toString("latin1"), "RIFFWEBP");
      assert.equal(
        (figure as { data: Record<string, unknown> }).data["image/png"],
        undefined,
        "the static image once, in the HTML",
      );
    }
  }
  for (const notebook of executed.values()) {
    assert.ok(
      !JSON.stringify(notebook).includes("Copyright 2012-2026, Plotly"),
      "plotly.js is loaded by the page, not stored in the notebook",
    );
  }
  // The metrics table is an HTML table (the pages' plotly.js bundle has no table trace), one row per c.
  const table = outputs(executed.get("04-analysis") as Notebook).find(
    (o) => o.output_type === "display_data" && o.data["text/plain"] === "Test-set metrics per KL coefficient",
  );
  assert.equal(
    (String((table as { data: Record<string, unknown> } | undefined)?.data["text/html"]).match(/<tr>/g) ?? []).length,
    1 + coefficients.length,
  );
  // The five seeds come from the cache only: without them, the notebook prints the command that trains them.
  const analysis04 = executed.get("04-analysis") as Notebook;
  const seedsMissing = text(analysis04).includes(
    "Train them from the project folder with: npm run sweep -- --seeds 42-46 --profile quick",
  );
  assert.ok(
    seedsMissing || /Over 5 training seeds \(42-46\)/.test(text(analysis04)),
    "the seeds' section prints their spread or the command",
  );
  assert.deepEqual(
    figureTitles(analysis04),
    seedsMissing ? ANALYSIS_CHART_TITLES : [...ANALYSIS_CHART_TITLES, "Rate-distortion over 5 seeds: mean ± sample sd"],
  );
  // The tutorial's conclusions are checked in the notebook, one verdict per claim.
  assert.equal((text(sweep).match(/(HOLDS|DOES NOT HOLD) here/g) ?? []).length, 4);
  // The live progress display ends in its final state: every coefficient reported.
  const progress = outputs(sweep).find(
    (o) => o.output_type === "display_data" && String(o.data["text/html"]).includes("vae-progress"),
  );
  assert.ok(progress, "a live progress output");
  for (const c of coefficients)
    assert.match(
      String((progress as { data: Record<string, unknown> }).data["text/plain"]),
      new RegExp(`c = ${c}: (epoch|done in|loaded)`),
    );
});

test("the sweep notebook's HTML export draws its 16 charts in headless Chromium", async (t) => {
  if (!findChromium()) return t.skip("Chromium is not installed (Debian: apt-get install chromium)");
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 1400 } });
    const errors: string[] = [];
    page.on("pageerror", (error) => errors.push(String(error)));
    await page.goto(`file://${path.join(NOTEBOOK_BUILD_DIR, "03-kl-sweep.html")}`);
    await page.waitForFunction(() => document.querySelectorAll(".vae-figure .main-svg").length >= 16, null, {
      timeout: 60_000,
    });
    const drawn = await page.evaluate(() => ({
      charts: document.querySelectorAll(".vae-figure.js-plotly-plot").length,
      points: document.querySelectorAll(".vae-figure .scatterlayer .point").length,
      colourBars: document.querySelectorAll(".vae-figure .colorbar").length,
      images: document.querySelectorAll(".vae-figure .imagelayer image").length,
      titles: Array.from(document.querySelectorAll(".vae-figure .gtitle"), (el) => el.textContent),
    }));
    assert.deepEqual(errors, []);
    assert.equal(drawn.charts, 16);
    assert.equal(drawn.points, 8 * QUICK_CONFIG.testSize, "one point per test digit in each scatter");
    assert.equal(drawn.colourBars, 8);
    assert.equal(drawn.images, 8);
    assert.equal(drawn.titles[1], "Decoder output for KL coefficient = 0");
    const shots = path.join(PROJECT_ROOT, "build", "screenshots");
    fs.mkdirSync(shots, { recursive: true });
    await page.screenshot({ path: path.join(shots, "03-kl-sweep-top.png") });
    await page.locator(".vae-figure").first().scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(shots, "03-kl-sweep-figures.png") });
  } finally {
    await browser.close();
  }
});

test("the analysis notebook's latent explorer starts in its HTML export and stays within its size budget", async (t) => {
  const analysis = executed.get("04-analysis") as Notebook;
  const explorer = outputs(analysis).find(
    (o) => o.output_type === "display_data" && String(o.data["text/html"]).includes("vae-explorer"),
  );
  assert.ok(explorer, "an explorer output");
  // The budget is 2 MB for eight coefficients (docs/explorer.md).
  assert.ok(String((explorer as { data: Record<string, unknown> }).data["text/html"]).length < 2_000_000);
  assert.match(text(analysis), /Latent explorer: [0-9.]+ MB in the page/);
  if (!findChromium()) return t.skip("Chromium is not installed (Debian: apt-get install chromium)");
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    const errors: string[] = [];
    page.on("pageerror", (error) => errors.push(String(error)));
    await page.goto(`file://${path.join(NOTEBOOK_BUILD_DIR, "04-analysis.html")}`);
    await page.waitForFunction(
      () => Boolean((document.querySelector(".vae-explorer") as unknown as { vaeExplorer?: unknown }).vaeExplorer),
      null,
      { timeout: 60_000 },
    );
    assert.equal(await page.locator(".vae-explorer button").count(), QUICK_CONFIG.klCoefficients.length);
    const scatter = page.locator(".vae-explorer-scatter");
    await scatter.scrollIntoViewIfNeeded();
    const box = await scatter.boundingBox();
    assert.ok(box);
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 3);
    const decoded = await page.evaluate(
      () =>
        (
          document.querySelector(".vae-explorer") as unknown as {
            vaeExplorer: { state: { last: { pixels: Float32Array } } };
          }
        ).vaeExplorer.state.last.pixels.length,
    );
    assert.equal(decoded, 784);
    assert.deepEqual(errors, []);
    await page.screenshot({ path: path.join(PROJECT_ROOT, "build", "screenshots", "04-analysis-explorer.png") });
  } finally {
    await browser.close();
  }
});

test("a failing cell stops the run with the notebook, the cell and tslab's error message", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vae-nb-"));
  const file = path.join(dir, "broken.ipynb");
  const cell = (source: string) => ({ cell_type: "code", source, metadata: {}, outputs: [], execution_count: null });
  fs.writeFileSync(
    file,
    JSON.stringify({
      nbformat: 4,
      nbformat_minor: 5,
      metadata: {},
      cells: [cell('console.log("first")'), cell("const label: string = 42;"), cell('console.log("never")')],
    }),
  );
  await assert.rejects(executeNotebook(file, { outDir: dir, env }), (error: unknown) => {
    assert.ok(error instanceof CellError);
    assert.match(error.message, /broken\.ipynb, cell 2 failed/);
    assert.match(error.message, /Type 'number' is not assignable to type 'string'/);
    return true;
  });
  const partial = JSON.parse(fs.readFileSync(path.join(dir, "broken.ipynb"), "utf8")) as Notebook;
  assert.equal(partial.cells[2].outputs?.length, 0, "the cell after the failure did not run");
  fs.rmSync(dir, { recursive: true, force: true });
});

test("a cell that runs past the time limit stops the kernel and the run, naming the cell and the limit", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vae-nb-"));
  const file = path.join(dir, "slow.ipynb");
  const cell = (source: string) => ({ cell_type: "code", source, metadata: {}, outputs: [], execution_count: null });
  fs.writeFileSync(
    file,
    JSON.stringify({
      nbformat: 4,
      nbformat_minor: 5,
      metadata: {},
      cells: [cell('console.log("first")'), cell("await new Promise((resolve) => setTimeout(resolve, 600_000));")],
    }),
  );
  const started = performance.now();
  await assert.rejects(executeNotebook(file, { outDir: dir, env, cellTimeoutSeconds: 3 }), (error: unknown) => {
    assert.ok(error instanceof CellError);
    assert.match(error.message, /slow\.ipynb, cell 2 failed/);
    assert.match(error.message, /still running after 3 s, so the kernel was stopped/);
    return true;
  });
  assert.ok(performance.now() - started < 60_000, "the run did not wait for the cell");
  fs.rmSync(dir, { recursive: true, force: true });
});

test("jupyter nbconvert --execute runs the notebooks with the same kernelspec", async (t) => {
  const probe = spawnSync("jupyter-nbconvert", ["--version"], { encoding: "utf8" });
  if (probe.status !== 0)
    return t.skip("jupyter nbconvert is not installed (Debian: apt-get install jupyter-nbconvert python3-nbclient)");
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "vae-nbconvert-"));
  for (const file of listNotebooks()) {
    const run = spawnSync(
      "jupyter-nbconvert",
      [
        "--to",
        "notebook",
        "--execute",
        "--ExecutePreprocessor.kernel_name=vae-tslab",
        "--ExecutePreprocessor.timeout=300",
        "--output-dir",
        out,
        file,
      ],
      {
        encoding: "utf8",
        env: { ...process.env, ...env, VAE_STATIC_IMAGES: "0", JUPYTER_PATH: path.join(PROJECT_ROOT, "jupyter") },
        timeout: 600_000,
      },
    );
    assert.equal(run.status, 0, `${path.basename(file)}: ${run.error ?? ""} ${run.stderr}`);
    const notebook = JSON.parse(fs.readFileSync(path.join(out, path.basename(file)), "utf8")) as Notebook;
    assert.ok(figureTitles(notebook).length > 0, `${path.basename(file)} shows figures under nbconvert`);
  }
  fs.rmSync(out, { recursive: true, force: true });
});
