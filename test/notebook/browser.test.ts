/**
 * The notebooks as a user meets them: a real Jupyter server (the classic Notebook, and JupyterLab where
 * it is installed) with the project's kernelspec, driven by headless Chromium through its own menus.
 * Run All, then what the page shows: the kernel's name, no error output, every figure drawn as an
 * interactive plotly chart (and a tooltip read under the mouse), live progress updated in place,
 * Interrupt during the sweep, resuming and reloading from the cache. Quick profile; screenshots in
 * build/screenshots/browser/.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import type { Browser, Page } from "playwright-core";
import { findChromium, launchChromium } from "../../src/plots/browser";
import { QUICK_CONFIG } from "../../src/vae/config";
import { loadMnist, PROJECT_ROOT } from "../../src/vae/data";
import { jupyterHas, startJupyterServer, type FrontEnd, type RunningServer } from "../../src/notebook/jupyterServer";
import { ANALYSIS_CHART_TITLES } from "../helpers";

const KERNEL_DISPLAY_NAME = "TypeScript (VAE notebooks, tslab)";
const SHOTS = path.join(PROJECT_ROOT, "build", "screenshots", "browser");
const coefficients = QUICK_CONFIG.klCoefficients;

/** The figures each notebook draws, by title, in order (independent of the code: the tutorial's captions). */
const EXPECTED_CHARTS: Record<string, string[]> = {
  "01-normal-samples": ["Samples from a 2D standard multivariate normal distribution (n = 5000)"],
  "02-model": ["Loss per epoch for KL coefficient = 1", "Encoder output for KL coefficient = 1"],
  "03-kl-sweep": coefficients.flatMap((c) => [`Encoder output for KL coefficient = ${c}`, `Decoder output for KL coefficient = ${c}`]),
  "04-analysis": ANALYSIS_CHART_TITLES,
};

/** What one front end's page offers the test: the same steps, its own menus and markup. */
interface FrontEndPage {
  readonly outputSelector: string;
  readonly errorSelector: string;
  open(page: Page, server: RunningServer, file: string): Promise<void>;
  kernelName(page: Page): Promise<string>;
  runAll(page: Page): Promise<void>;
  interrupt(page: Page): Promise<void>;
  restartRunAll(page: Page): Promise<void>;
  /** Resolves when the kernel is idle and no cell is queued or running; with `allRan`, once every code cell has run. */
  waitIdle(page: Page, timeoutMs: number, allRan?: boolean): Promise<void>;
  /** File > Save; resolves once the file on disk has changed. */
  save(page: Page, file: string): Promise<void>;
  /** Long outputs shown whole rather than in a scroll box (as clicking beside them does). */
  showWholeOutputs(page: Page): Promise<void>;
}

/** The classic Notebook 6: its menu items have ids (Cell > Run All is #run_all_cells). */
const classicNotebook: FrontEndPage = {
  outputSelector: ".output_subarea",
  errorSelector: ".output_error, .output_stderr",
  async open(page, server, file) {
    await page.goto(`${server.url}notebooks/${file}?token=${server.token}`);
    await page.waitForFunction(() => (window as unknown as { Jupyter?: { notebook?: { kernel?: { is_connected?: () => boolean; info_reply?: object } } } }).Jupyter?.notebook?.kernel?.is_connected?.() === true, null, { timeout: 120_000 });
    await page.waitForSelector("#kernel_indicator_icon.kernel_idle_icon", { timeout: 120_000 });
  },
  async kernelName(page) {
    return ((await page.textContent(".kernel_indicator_name")) ?? "").trim();
  },
  async runAll(page) {
    await page.click("#celllink");
    await page.click("#run_all_cells");
  },
  async interrupt(page) {
    await page.click("#kernellink");
    await page.click("#int_kernel");
  },
  async restartRunAll(page) {
    await page.click("#kernellink");
    await page.click("#restart_run_all");
    await page.click(".modal-footer button.btn-danger");
  },
  async waitIdle(page, timeoutMs, allRan = true) {
    await page.waitForFunction(
      (allRan) => {
        const prompts = Array.from(document.querySelectorAll(".code_cell .input_prompt"), (el) => el.textContent ?? "");
        const idle = document.querySelector("#kernel_indicator_icon")?.classList.contains("kernel_idle_icon");
        return idle && prompts.length > 0 && !prompts.some((p) => p.includes("*")) && (!allRan || prompts.every((p) => /\[\d+\]/.test(p)));
      },
      allRan,
      { timeout: timeoutMs, polling: 250 },
    );
  },
  async save(page, file) {
    const before = fs.statSync(file).mtimeMs;
    await page.click("#filelink");
    await page.click("#save_checkpoint");
    await waitFor(() => fs.statSync(file).mtimeMs !== before, 30_000, `${file} saved`);
  },
  async showWholeOutputs(page) {
    await page.evaluate(() => {
      type Cell = { output_area?: { unscroll_area(): void } };
      for (const cell of (window as unknown as { Jupyter: { notebook: { get_cells(): Cell[] } } }).Jupyter.notebook.get_cells()) cell.output_area?.unscroll_area();
    });
  },
};

interface LabApp {
  commands: { execute(id: string): Promise<unknown> };
  shell: { currentWidget: { sessionContext: { kernelDisplayName: string; session?: { kernel?: { status: string } } }; content: { widgets: { model: { type: string; executionCount: number | null } }[] } } | null };
}

/** JupyterLab 4, driven through its command registry (the menus' own commands), exposed by the server flag. */
const jupyterLab: FrontEndPage = {
  outputSelector: ".jp-OutputArea-output",
  errorSelector: '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"], .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]',
  async open(page, server, file) {
    await page.goto(`${server.url}lab/tree/${file}?token=${server.token}`);
    await page.waitForFunction(() => (window as unknown as { jupyterapp?: LabApp }).jupyterapp?.shell.currentWidget?.sessionContext.session?.kernel?.status === "idle", null, { timeout: 120_000 });
  },
  async kernelName(page) {
    return page.evaluate(() => (window as unknown as { jupyterapp: LabApp }).jupyterapp.shell.currentWidget?.sessionContext.kernelDisplayName ?? "");
  },
  async runAll(page) {
    await page.evaluate(() => void (window as unknown as { jupyterapp: LabApp }).jupyterapp.commands.execute("notebook:run-all-cells"));
  },
  async interrupt(page) {
    await page.evaluate(() => void (window as unknown as { jupyterapp: LabApp }).jupyterapp.commands.execute("notebook:interrupt-kernel"));
  },
  async restartRunAll(page) {
    await page.evaluate(() => void (window as unknown as { jupyterapp: LabApp }).jupyterapp.commands.execute("notebook:restart-run-all"));
    await page.click(".jp-Dialog-button.jp-mod-accept");
  },
  async waitIdle(page, timeoutMs, allRan = true) {
    await page.waitForFunction(
      (allRan) => {
        const widget = (window as unknown as { jupyterapp: LabApp }).jupyterapp.shell.currentWidget;
        if (!widget || widget.sessionContext.session?.kernel?.status !== "idle") return false;
        const prompts = Array.from(document.querySelectorAll(".jp-CodeCell .jp-InputPrompt"), (el) => el.textContent ?? "");
        return prompts.length > 0 && !prompts.some((p) => p.includes("*")) && (!allRan || prompts.every((p) => /\[\d+\]/.test(p)));
      },
      allRan,
      { timeout: timeoutMs, polling: 250 },
    );
  },
  async save(page, file) {
    const before = fs.statSync(file).mtimeMs;
    await page.evaluate(() => (window as unknown as { jupyterapp: LabApp }).jupyterapp.commands.execute("docmanager:save"));
    await waitFor(() => fs.statSync(file).mtimeMs !== before, 30_000, `${file} saved`);
  },
  async showWholeOutputs() {
    // JupyterLab lets long outputs grow with the notebook unless a user collapses them.
  },
};

/** Polls `condition` every 100 ms until it holds, failing after `timeoutMs` with `what`. */
async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error(`Timed out after ${timeoutMs / 1000} s waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** What the page shows after a run: chart titles drawn by plotly, static images left, errors, text. */
interface Shown {
  charts: string[];
  staticImages: number;
  notes: number;
  errors: string[];
  text: string;
}

async function shown(page: Page, ui: FrontEndPage): Promise<Shown> {
  return page.evaluate(
    ({ outputSelector, errorSelector }) => ({
      charts: Array.from(document.querySelectorAll(".vae-figure.js-plotly-plot"), (el) => el.querySelector(".gtitle")?.textContent ?? "(no title)"),
      staticImages: document.querySelectorAll(".vae-figure > img").length,
      notes: document.querySelectorAll(".vae-note").length,
      errors: Array.from(document.querySelectorAll(errorSelector), (el) => el.textContent ?? ""),
      text: Array.from(document.querySelectorAll(outputSelector), (el) => (el as HTMLElement).innerText).join("\n"),
    }),
    { outputSelector: ui.outputSelector, errorSelector: ui.errorSelector },
  );
}

/**
 * Samples the page every 50 ms while a notebook runs: the most progress displays seen at once and how
 * many different states they went through (one output updated in place: at most one, many states).
 */
async function watchProgress(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as { progressSeen: { most: number; states: string[] } };
    w.progressSeen = { most: 0, states: [] };
    setInterval(() => {
      const shownNow = document.querySelectorAll(".vae-progress");
      w.progressSeen.most = Math.max(w.progressSeen.most, shownNow.length);
      const state = shownNow.length > 0 ? (shownNow[0] as HTMLElement).innerText : "";
      if (state && state !== w.progressSeen.states[w.progressSeen.states.length - 1]) w.progressSeen.states.push(state);
    }, 50);
  });
}

async function progressSeen(page: Page): Promise<{ most: number; states: string[] }> {
  return page.evaluate(() => (window as unknown as { progressSeen: { most: number; states: string[] } }).progressSeen);
}

/** A screenshot of the whole notebook: the page grown to the notebook's height (capped), then taken. */
async function screenshot(page: Page, name: string, ui: FrontEndPage): Promise<void> {
  fs.mkdirSync(SHOTS, { recursive: true });
  await ui.showWholeOutputs(page);
  const height = await page.evaluate(() => Math.min(20_000, Math.max(...Array.from(document.querySelectorAll("#notebook-container, .jp-Notebook"), (el) => el.scrollHeight), 900) + 200));
  const viewport = page.viewportSize() ?? { width: 1300, height: 1000 };
  await page.setViewportSize({ width: viewport.width, height });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
  await page.setViewportSize(viewport);
}

/**
 * Hovers the most isolated point of the scatter titled `title` with the mouse and returns the tooltip's
 * text and that point's index in the test set.
 */
async function hoverIsolatedPoint(page: Page, title: string): Promise<{ index: number; tooltip: string }> {
  const chart = page.locator(".vae-figure.js-plotly-plot", { has: page.locator(".gtitle", { hasText: title }) }).first();
  // Centred, clear of the notebook's fixed header.
  await chart.evaluate((el) => el.scrollIntoView({ block: "center" }));
  await page.waitForTimeout(300);
  const target = await chart.evaluate((el) => {
    type Axis = { l2p(v: number): number; _offset: number };
    const gd = el as unknown as { data: { x: number[]; y: number[] }[]; _fullLayout: { xaxis: Axis; yaxis: Axis } };
    const { x, y } = gd.data[0];
    const { xaxis, yaxis } = gd._fullLayout;
    const px = x.map((v) => xaxis.l2p(v) + xaxis._offset);
    const py = y.map((v) => yaxis.l2p(v) + yaxis._offset);
    let best = 0;
    let bestGap = -1;
    for (let i = 0; i < px.length; i++) {
      let gap = Infinity;
      for (let j = 0; j < px.length; j++) if (j !== i) gap = Math.min(gap, Math.hypot(px[i] - px[j], py[i] - py[j]));
      if (gap > bestGap) [best, bestGap] = [i, gap];
    }
    const box = el.getBoundingClientRect();
    return { index: best, x: box.left + px[best], y: box.top + py[best] };
  });
  await page.mouse.move(target.x - 30, target.y - 30);
  await page.mouse.move(target.x, target.y, { steps: 5 });
  const tooltip = chart.locator(".hoverlayer .hovertext");
  await tooltip.first().waitFor({ timeout: 10_000 });
  return { index: target.index, tooltip: (await tooltip.first().textContent()) ?? "" };
}

/**
 * The cache of the quick sweep as found on disk: the coefficients whose entry is whole (its JSON, and
 * every blob it names with the length and SHA-256 it records, checked here with node:crypto), and every
 * other file (a blob of no entry, a temporary file, a lock), which a clean stop leaves none of.
 */
function cacheState(cacheDir: string): { entries: number[]; others: string[] } {
  const keys = fs.existsSync(cacheDir) ? fs.readdirSync(cacheDir).filter((name) => fs.statSync(path.join(cacheDir, name)).isDirectory()) : [];
  const entries: number[] = [];
  const claimed = new Set<string>();
  const files: string[] = [];
  for (const key of keys) {
    const dir = path.join(cacheDir, key);
    for (const file of fs.readdirSync(dir)) {
      files.push(path.join(key, file));
      const match = /^c=([\d.]+)\.json$/.exec(file);
      if (!match) continue;
      const entry = JSON.parse(fs.readFileSync(path.join(dir, file), "utf8")) as { blobs: Record<string, { file: string; length: number; sha256: string }> };
      const whole = Object.values(entry.blobs).every((blob) => {
        const bytes = fs.existsSync(path.join(dir, blob.file)) ? fs.readFileSync(path.join(dir, blob.file)) : Buffer.alloc(0);
        return bytes.length === 4 * blob.length && createHash("sha256").update(bytes).digest("hex") === blob.sha256;
      });
      if (!whole) continue;
      entries.push(Number(match[1]));
      claimed.add(path.join(key, file));
      for (const blob of Object.values(entry.blobs)) claimed.add(path.join(key, blob.file));
    }
  }
  return { entries: entries.sort((a, b) => a - b), others: files.filter((file) => !claimed.has(file)) };
}

const FRONT_ENDS: { frontEnd: FrontEnd; label: string; ui: FrontEndPage; install: string }[] = [
  { frontEnd: "notebook", label: "the classic Jupyter Notebook", ui: classicNotebook, install: "apt-get install jupyter-notebook" },
  { frontEnd: "lab", label: "JupyterLab", ui: jupyterLab, install: "pip install jupyterlab" },
];

for (const { frontEnd, label, ui, install } of FRONT_ENDS) {
  const skip = !findChromium()
    ? "Chromium is not installed (Debian: apt-get install chromium)"
    : !jupyterHas(frontEnd)
      ? `jupyter ${frontEnd} is not installed here (${install}); nothing to drive`
      : false;

  describe(`the notebooks in ${label}, in headless Chromium`, { skip }, () => {
    // Copies of the notebooks, so that saving (and Jupyter's autosave) never writes outputs into notebooks/.
    const work = path.join(PROJECT_ROOT, "build", "browser-test", frontEnd);
    const cacheDir = path.join(work, "cache");
    const copy = (name: string) => path.relative(PROJECT_ROOT, path.join(work, "notebooks", `${name}.ipynb`));
    let server: RunningServer;
    let browser: Browser;
    let page: Page;
    const pageErrors: string[] = [];

    before(async () => {
      fs.rmSync(work, { recursive: true, force: true });
      fs.mkdirSync(path.join(work, "notebooks"), { recursive: true });
      for (const name of Object.keys(EXPECTED_CHARTS)) fs.copyFileSync(path.join(PROJECT_ROOT, "notebooks", `${name}.ipynb`), path.join(PROJECT_ROOT, copy(name)));
      server = await startJupyterServer(frontEnd, { VAE_PROFILE: "quick", VAE_CACHE_DIR: cacheDir });
      browser = await launchChromium();
      page = await browser.newPage({ viewport: { width: 1300, height: 1000 } });
      page.on("pageerror", (error) => pageErrors.push(String(error)));
      // Leaving a page with unsaved changes asks for confirmation; the test leaves on purpose.
      page.on("dialog", (dialog) => void dialog.accept());
    });

    after(async () => {
      await browser?.close();
      await server?.stop();
    });

    /** Opens a notebook, checks its kernel, runs it all from the menu and waits for the kernel to be idle. */
    async function runNotebook(name: string, timeoutMs = 180_000): Promise<Shown> {
      const started = performance.now();
      await ui.open(page, server, copy(name));
      const opened = performance.now();
      assert.equal(await ui.kernelName(page), KERNEL_DISPLAY_NAME, `${name}: the project's kernel runs`);
      await watchProgress(page);
      await ui.runAll(page);
      await ui.waitIdle(page, timeoutMs);
      console.error(`${name}: opened with its kernel in ${((opened - started) / 1000).toFixed(1)} s, ran in ${((performance.now() - opened) / 1000).toFixed(1)} s`);
      return shown(page, ui);
    }

    /** Shuts the notebook's kernel down through the server's API, so that kernels do not pile up. */
    async function shutDownKernels(): Promise<void> {
      const sessions = (await (await fetch(`${server.url}api/sessions?token=${server.token}`)).json()) as { id: string }[];
      for (const session of sessions) await fetch(`${server.url}api/sessions/${session.id}?token=${server.token}`, { method: "DELETE" });
    }

    test("the server lists the project's kernel", async () => {
      const specs = (await (await fetch(`${server.url}api/kernelspecs?token=${server.token}`)).json()) as { kernelspecs: Record<string, { spec: { display_name: string } }> };
      assert.equal(specs.kernelspecs["vae-tslab"]?.spec.display_name, KERNEL_DISPLAY_NAME);
    });

    test("01 and 02: Run All draws every chart interactively, with no error output", async () => {
      for (const name of ["01-normal-samples", "02-model"]) {
        const result = await runNotebook(name);
        assert.deepEqual(result.errors, [], `${name}: no error output`);
        assert.deepEqual(result.charts, EXPECTED_CHARTS[name], `${name}: every chart drawn by plotly`);
        assert.equal(result.staticImages, 0, `${name}: every static image replaced by its chart`);
        assert.match(result.text, /plotly\.js 4\.\d+\.\d+ loaded: charts are interactive/);
        // Training in 02 reports each of its epochs in one output updated in place.
        if (name === "02-model") {
          const progress = await progressSeen(page);
          assert.equal(progress.most, 1, "02: one progress output");
          assert.ok(progress.states.length >= 2, `02: updated in place epoch after epoch (${progress.states.length} states seen)`);
        }
        await screenshot(page, `${frontEnd}-${name}`, ui);
        await ui.save(page, path.join(PROJECT_ROOT, copy(name)));
        await shutDownKernels();
      }
      assert.deepEqual(pageErrors, []);
    });

    test("03: Interrupt during the sweep stops it within seconds with a short message; only finished coefficients are cached", async () => {
      await ui.open(page, server, copy("03-kl-sweep"));
      await watchProgress(page);
      await ui.runAll(page);
      // Wait until the first coefficient is done ("done in", or its last epoch), then press Interrupt while the next ones train (seven
      // quick coefficients take a few seconds even on an idle machine: time for the click to land).
      await page.waitForFunction(
        (first) => {
          const progress = document.querySelector(".vae-progress") as HTMLElement | null;
          return progress !== null && new RegExp(`c = ${first}:?\\s+(epoch 2/2|done in)`).test(progress.innerText);
        },
        coefficients[0],
        { timeout: 180_000, polling: 50 },
      );
      const pressed = performance.now();
      await ui.interrupt(page);
      await ui.waitIdle(page, 60_000, false);
      const stoppedSeconds = (performance.now() - pressed) / 1000;
      const text = (await shown(page, ui)).errors.join("\n");
      const message = /Interrupted: KL coefficient ([\d.]+) at epoch (\d+) was not cached; c = ([\d., ]+) (?:is|are) cached and the next run resumes from them\./.exec(text);
      console.error(`interrupt: stopped ${stoppedSeconds.toFixed(1)} s after the click; output: ${JSON.stringify(text.trim())}`);
      assert.ok(message, `a short interrupt message; got ${JSON.stringify(text)}`);
      assert.ok(stoppedSeconds < 10, `stopped within seconds (${stoppedSeconds.toFixed(1)} s)`);
      assert.doesNotMatch(text, /executor\.js|tslab|\n\s+at /, "no stack of kernel internals");
      const dropped = Number(message[1]);
      const kept = message[3].split(", ").map(Number);
      assert.deepEqual(kept, coefficients.slice(0, kept.length), "the coefficients before the dropped one are kept");
      assert.equal(dropped, coefficients[kept.length]);
      const cache = cacheState(cacheDir);
      console.error(`interrupt: cache holds c = ${cache.entries.join(", ")}; other files: ${cache.others.join(", ") || "none"}`);
      assert.deepEqual(cache.entries, [...kept].sort((a, b) => a - b), "the cache holds exactly the finished coefficients");
      assert.deepEqual(cache.others, [], "no partial file or lock left");
      await screenshot(page, `${frontEnd}-03-kl-sweep-interrupted`, ui);

      // Run All again in the same kernel: the kept coefficients load, the rest train.
      await watchProgress(page);
      await ui.runAll(page);
      await ui.waitIdle(page, 240_000);
      const resumed = await shown(page, ui);
      assert.deepEqual(resumed.errors, []);
      assert.deepEqual(resumed.charts, EXPECTED_CHARTS["03-kl-sweep"]);
      assert.equal(resumed.staticImages, 0);
      for (const c of kept) assert.match(resumed.text, new RegExp(`c = ${c}:?\\s+loaded from the cache`));
      for (const c of coefficients.slice(kept.length)) assert.match(resumed.text, new RegExp(`c = ${c}:?\\s+(epoch 2/2|done in)`));
      const progress = await progressSeen(page);
      assert.equal(progress.most, 1, "the live progress is one output");
      assert.ok(progress.states.length >= 4, `updated in place as training went on (${progress.states.length} states seen)`);
      assert.deepEqual(cacheState(cacheDir).entries, [...coefficients].sort((a, b) => a - b));
      await screenshot(page, `${frontEnd}-03-kl-sweep`, ui);
    });

    test("03: a scatter point's tooltip names the digit of that test image", async () => {
      const labels = loadMnist(QUICK_CONFIG).yTest;
      await ui.showWholeOutputs(page);
      const { index, tooltip } = await hoverIsolatedPoint(page, `Encoder output for KL coefficient = ${coefficients[0]}`);
      assert.match(tooltip, new RegExp(`^digit ${labels[index]}z = `), `point ${index} is test digit ${labels[index]}; tooltip ${JSON.stringify(tooltip)}`);
      await page.screenshot({ path: path.join(SHOTS, `${frontEnd}-03-tooltip.png`) });
    });

    test("03: Restart & Run All loads every coefficient from the cache", async () => {
      await watchProgress(page);
      await ui.restartRunAll(page);
      await page.waitForFunction(() => document.querySelectorAll(".vae-figure").length === 0, null, { timeout: 60_000 }).catch(() => undefined);
      await ui.waitIdle(page, 240_000);
      const again = await shown(page, ui);
      assert.deepEqual(again.errors, []);
      assert.deepEqual(again.charts, EXPECTED_CHARTS["03-kl-sweep"]);
      for (const c of coefficients) assert.match(again.text, new RegExp(`c = ${c}:?\\s+loaded from the cache`));
      await ui.save(page, path.join(PROJECT_ROOT, copy("03-kl-sweep")));
      await shutDownKernels();
    });

    test("04: Run All draws the comparison charts and the metrics table", async () => {
      const result = await runNotebook("04-analysis");
      assert.deepEqual(result.errors, []);
      assert.deepEqual(result.charts, EXPECTED_CHARTS["04-analysis"]);
      assert.equal(result.staticImages, 0);
      assert.match(result.text, /Test-set metrics per KL coefficient/);
      assert.equal(await page.locator(".vae-figure-table tbody tr").count(), coefficients.length, "one table row per coefficient");
      await screenshot(page, `${frontEnd}-04-analysis`, ui);
      await ui.save(page, path.join(PROJECT_ROOT, copy("04-analysis")));
      await shutDownKernels();
      assert.deepEqual(pageErrors, []);
    });

    test("a saved notebook opened untrusted shows the static images, not scripts", async () => {
      // Any edit outside Jupyter drops the notebook's signature: it opens untrusted.
      const file = path.join(PROJECT_ROOT, copy("01-normal-samples"));
      const notebook = JSON.parse(fs.readFileSync(file, "utf8")) as { metadata: Record<string, unknown> };
      notebook.metadata.edited = "outside Jupyter";
      fs.writeFileSync(file, JSON.stringify(notebook));
      await ui.open(page, server, copy("01-normal-samples"));
      await page.waitForSelector(".vae-figure img", { timeout: 30_000 });
      const view = await page.evaluate(() => ({
        images: Array.from(document.querySelectorAll(".vae-figure img"), (img) => ({ type: (img as HTMLImageElement).src.slice(0, 16), width: (img as HTMLImageElement).naturalWidth })),
        charts: document.querySelectorAll(".js-plotly-plot").length,
      }));
      assert.deepEqual(view, { images: [{ type: "data:image/webp;", width: 720 }], charts: 0 });
      await page.locator(".vae-figure img").scrollIntoViewIfNeeded();
      await page.screenshot({ path: path.join(SHOTS, `${frontEnd}-01-untrusted.png`) });
      await shutDownKernels();
    });
  });
}
