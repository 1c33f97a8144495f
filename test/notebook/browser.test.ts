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
import { after, beforeEach, describe, test } from "node:test";
import type { Browser, Page } from "playwright-core";
import { findChromium, launchChromium } from "../../src/plots/browser";
import { QUICK_CONFIG } from "../../src/vae/config";
import { loadMnist, PROJECT_ROOT } from "../../src/vae/data";
import {
  findFrontEnd,
  FRONT_END_INSTALL,
  FRONT_END_NAMES,
  startJupyterServer,
  type FrontEnd,
  type InstalledFrontEnd,
  type RunningServer,
} from "../../src/notebook/jupyterServer";
import { ANALYSIS_CHART_TITLES } from "../helpers";

const KERNEL_DISPLAY_NAME = "TypeScript (VAE notebooks, tslab)";
const SHOTS = path.join(PROJECT_ROOT, "build", "screenshots", "browser");
const coefficients = QUICK_CONFIG.klCoefficients;

/** The figures each notebook draws, by title, in order (independent of the code: the tutorial's captions). */
const EXPECTED_CHARTS: Record<string, string[]> = {
  "01-normal-samples": ["Samples from a 2D standard multivariate normal distribution (n = 5000)"],
  "02-model": ["Loss per epoch for KL coefficient = 1", "Encoder output for KL coefficient = 1"],
  "03-kl-sweep": coefficients.flatMap((c) => [
    `Encoder output for KL coefficient = ${c}`,
    `Decoder output for KL coefficient = ${c}`,
  ]),
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
  /** Resolves once a code cell of the notebook is queued or running (after Run All or a restart). */
  waitStarted(page: Page): Promise<void>;
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
    await page.waitForFunction(
      () =>
        (
          window as unknown as {
            Jupyter?: { notebook?: { kernel?: { is_connected?: () => boolean; info_reply?: object } } };
          }
        ).Jupyter?.notebook?.kernel?.is_connected?.() === true,
      null,
      { timeout: 120_000 },
    );
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
  async waitStarted(page) {
    await page.waitForFunction(
      () =>
        Array.from(document.querySelectorAll(".code_cell .input_prompt"), (el) => el.textContent ?? "").some((p) =>
          p.includes("*"),
        ),
      null,
      { timeout: 180_000, polling: 20 },
    );
  },
  async waitIdle(page, timeoutMs, allRan = true) {
    await page.waitForFunction(
      (allRan) => {
        const prompts = Array.from(document.querySelectorAll(".code_cell .input_prompt"), (el) => el.textContent ?? "");
        const idle = document.querySelector("#kernel_indicator_icon")?.classList.contains("kernel_idle_icon");
        return (
          idle &&
          prompts.length > 0 &&
          !prompts.some((p) => p.includes("*")) &&
          (!allRan || prompts.every((p) => /\[\d+\]/.test(p)))
        );
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
      for (const cell of (
        window as unknown as { Jupyter: { notebook: { get_cells(): Cell[] } } }
      ).Jupyter.notebook.get_cells())
        cell.output_area?.unscroll_area();
    });
  },
};

/** What the test reads of JupyterLab's and Notebook 7's application object (exposed by a server flag). */
interface LabApp {
  commands: { execute(id: string): Promise<unknown> };
  shell: {
    currentWidget: {
      node: HTMLElement;
      sessionContext: { kernelDisplayName: string; session?: { kernel?: { status: string } } };
      content: { widgets: { model: { type: string; executionCount: number | null; executionState?: string } }[] };
    } | null;
  };
}

/**
 * JupyterLab 4 and Notebook 7 (built from JupyterLab's components), driven through the command registry
 * (the menus' own commands). Every check reads the notebook under test only: JupyterLab opens it in a
 * fresh workspace (`?reset`, no tabs restored from earlier notebooks) and the counts read the current
 * panel; the idle condition reads the notebook's model (each code cell's execution state and count), not
 * the prompts on the page, which a windowed notebook does not attach while off-screen.
 */
function labDriver(kind: "lab" | "notebook7"): FrontEndPage {
  return {
    outputSelector: ".jp-OutputArea-output",
    errorSelector:
      '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"], .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]',
    async open(page, server, file) {
      const url =
        kind === "lab"
          ? `${server.url}lab/tree/${file}?reset&token=${server.token}`
          : `${server.url}notebooks/${file}?token=${server.token}`;
      await page.goto(url);
      await page.waitForFunction(
        (file) => {
          const widget = (window as unknown as { jupyterapp?: LabApp }).jupyterapp?.shell.currentWidget as {
            context?: { path: string };
          } & LabApp["shell"]["currentWidget"];
          return widget?.context?.path === file && widget.sessionContext.session?.kernel?.status === "idle";
        },
        file,
        { timeout: 120_000 },
      );
    },
    async kernelName(page) {
      return page.evaluate(
        () =>
          (window as unknown as { jupyterapp: LabApp }).jupyterapp.shell.currentWidget?.sessionContext
            .kernelDisplayName ?? "",
      );
    },
    async runAll(page) {
      await page.evaluate(
        () => void (window as unknown as { jupyterapp: LabApp }).jupyterapp.commands.execute("notebook:run-all-cells"),
      );
    },
    async interrupt(page) {
      await page.evaluate(
        () =>
          void (window as unknown as { jupyterapp: LabApp }).jupyterapp.commands.execute("notebook:interrupt-kernel"),
      );
    },
    async restartRunAll(page) {
      await page.evaluate(
        () =>
          void (window as unknown as { jupyterapp: LabApp }).jupyterapp.commands.execute("notebook:restart-run-all"),
      );
      await page.click(".jp-Dialog-button.jp-mod-accept");
    },
    async waitStarted(page) {
      await page.waitForFunction(
        () =>
          (window as unknown as { jupyterapp: LabApp }).jupyterapp.shell.currentWidget?.content.widgets.some(
            (cell) => cell.model.type === "code" && cell.model.executionState === "running",
          ),
        null,
        { timeout: 180_000, polling: 20 },
      );
    },
    async waitIdle(page, timeoutMs, allRan = true) {
      await page.waitForFunction(
        (allRan) => {
          const widget = (window as unknown as { jupyterapp: LabApp }).jupyterapp.shell.currentWidget;
          if (!widget || widget.sessionContext.session?.kernel?.status !== "idle") return false;
          const code = widget.content.widgets.filter((cell) => cell.model.type === "code");
          return (
            code.length > 0 &&
            code.every((cell) => cell.model.executionState !== "running") &&
            (!allRan || code.every((cell) => cell.model.executionCount !== null))
          );
        },
        allRan,
        { timeout: timeoutMs, polling: 250 },
      );
    },
    async save(page, file) {
      const before = fs.statSync(file).mtimeMs;
      await page.evaluate(() =>
        (window as unknown as { jupyterapp: LabApp }).jupyterapp.commands.execute("docmanager:save"),
      );
      await waitFor(() => fs.statSync(file).mtimeMs !== before, 30_000, `${file} saved`);
    },
    async showWholeOutputs(page) {
      // Notebook 7 puts long outputs in a scroll box, as the classic Notebook does; clicking beside one
      // (or Cell > Toggle Scrolling) shows it whole. JupyterLab shows them whole already.
      await page.evaluate(() => {
        type Cell = {
          model: { type: string; setMetadata(key: string, value: unknown): void };
          outputsScrolled?: boolean;
        };
        const widget = (
          window as unknown as { jupyterapp: { shell: { currentWidget: { content: { widgets: Cell[] } } | null } } }
        ).jupyterapp.shell.currentWidget;
        for (const cell of widget?.content.widgets ?? []) {
          if (cell.model.type !== "code") continue;
          // The cell's "scrolled" metadata is what a click records; Notebook 7 leaves such a cell as the user set it.
          cell.model.setMetadata("scrolled", false);
          cell.outputsScrolled = false;
        }
      });
    },
  };
}

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
  /** Charts drawn by plotly's JupyterLab renderer from `application/vnd.plotly.v1+json`, by title. */
  mimeCharts: string[];
  staticImages: number;
  notes: number;
  errors: string[];
  text: string;
  /** The MIME types JupyterLab and Notebook 7 chose to render (none listed by the classic Notebook). */
  mimeTypes: string[];
}

/**
 * The notebook under test's part of the page: the current JupyterLab or Notebook 7 panel, or the classic
 * Notebook's document. Installed in every page the test opens, as `window.vaeRoot()`.
 */
function installRoot(): void {
  (window as unknown as { vaeRoot(): ParentNode }).vaeRoot = () =>
    (window as unknown as { jupyterapp?: { shell: { currentWidget: { node: HTMLElement } | null } } }).jupyterapp?.shell
      .currentWidget?.node ?? document;
}

/** Charts drawn from the figures' HTML: the `.vae-figure` div that plotly.js drew into. */
const HTML_CHART = ".vae-figure.js-plotly-plot";
/** Charts drawn by plotly's JupyterLab renderer from the figures' `application/vnd.plotly.v1+json` (the output itself is the chart). */
const MIME_CHART = ".jp-RenderedPlotly.js-plotly-plot";

async function shown(page: Page, ui: FrontEndPage): Promise<Shown> {
  return page.evaluate(
    ({ outputSelector, errorSelector, HTML_CHART, MIME_CHART }) => {
      const root = (window as unknown as { vaeRoot(): ParentNode }).vaeRoot();
      const titles = (selector: string) =>
        Array.from(root.querySelectorAll(selector), (el) => el.querySelector(".gtitle")?.textContent ?? "(no title)");
      return {
        charts: titles(HTML_CHART),
        mimeCharts: titles(MIME_CHART),
        staticImages: root.querySelectorAll(".vae-figure > img").length,
        notes: root.querySelectorAll(".vae-note").length,
        errors: Array.from(root.querySelectorAll(errorSelector), (el) => el.textContent ?? ""),
        // textContent, not innerText: JupyterLab skips rendering off-screen cells (content-visibility), and innerText of those is empty.
        text: Array.from(root.querySelectorAll(outputSelector), (el) => el.textContent ?? "").join("\n"),
        // plotly's renderer marks its outputs with a class rather than the MIME type.
        mimeTypes: [
          ...new Set([
            ...Array.from(root.querySelectorAll("[data-mime-type]"), (el) => el.getAttribute("data-mime-type") ?? ""),
            ...(root.querySelector(MIME_CHART) ? ["application/vnd.plotly.v1+json"] : []),
          ]),
        ].sort(),
      };
    },
    { outputSelector: ui.outputSelector, errorSelector: ui.errorSelector, HTML_CHART, MIME_CHART },
  );
}

/**
 * Samples the page every 50 ms while a notebook runs: the most progress displays seen at once, how many
 * different states they went through (one output updated in place: at most one, many states), and every
 * progress line seen cut off (wider than its box, or reaching past the output area's right edge).
 */
async function watchProgress(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as {
      progressSeen: { most: number; states: string[]; cut: string[] };
      vaeRoot(): ParentNode;
      vaeWatch?: number;
    };
    w.progressSeen = { most: 0, states: [], cut: [] };
    if (w.vaeWatch !== undefined) clearInterval(w.vaeWatch);
    w.vaeWatch = window.setInterval(() => {
      const shownNow = w.vaeRoot().querySelectorAll(".vae-progress");
      w.progressSeen.most = Math.max(w.progressSeen.most, shownNow.length);
      const state = shownNow.length > 0 ? (shownNow[0].textContent ?? "") : "";
      if (state && state !== w.progressSeen.states[w.progressSeen.states.length - 1]) w.progressSeen.states.push(state);
      for (const line of Array.from(w.vaeRoot().querySelectorAll(".vae-progress-line")) as HTMLElement[]) {
        const area = line.closest(".output_subarea, .jp-OutputArea-output") ?? line.parentElement;
        const right = area ? area.getBoundingClientRect().right : Infinity;
        const box = line.getBoundingClientRect();
        if (box.width > 0 && (line.scrollWidth > line.clientWidth || box.right > right + 0.5)) {
          const what = `${JSON.stringify(line.textContent)}: scrollWidth ${line.scrollWidth} > clientWidth ${line.clientWidth} or right ${box.right.toFixed(0)} > ${right.toFixed(0)}`;
          if (!w.progressSeen.cut.includes(what)) w.progressSeen.cut.push(what);
        }
      }
    }, 50);
  });
}

async function progressSeen(page: Page): Promise<{ most: number; states: string[]; cut: string[] }> {
  return page.evaluate(
    () => (window as unknown as { progressSeen: { most: number; states: string[]; cut: string[] } }).progressSeen,
  );
}

/**
 * The live progress's lines as drawn now, each checked whole: not wider than its box, inside the output
 * area, and reading as a whole state line (name, then waiting / loaded / done / the epoch).
 */
async function progressLines(page: Page): Promise<{ text: string; whole: boolean }[]> {
  // Measured on screen: a browser lays out off-screen cells only when they come into view.
  await page.evaluate(() =>
    (window as unknown as { vaeRoot(): ParentNode })
      .vaeRoot()
      .querySelector(".vae-progress")
      ?.scrollIntoView({ block: "center" }),
  );
  await page.waitForTimeout(200);
  return page.evaluate(() =>
    Array.from(
      (window as unknown as { vaeRoot(): ParentNode })
        .vaeRoot()
        .querySelectorAll(".vae-progress-line") as NodeListOf<HTMLElement>,
      (line) => {
        const area = line.closest(".output_subarea, .jp-OutputArea-output") ?? line.parentElement;
        const box = line.getBoundingClientRect();
        return {
          text: line.textContent ?? "",
          whole:
            box.width > 0 &&
            line.scrollWidth <= line.clientWidth &&
            box.right <= (area?.getBoundingClientRect().right ?? Infinity) + 0.5,
        };
      },
    ),
  );
}

/** A whole progress line: every state `SweepProgress.line` writes, to its last word. */
const WHOLE_PROGRESS_LINE =
  /^c = [\d.]+(: waiting|: loaded from the cache|: done in \d+(m\d\d)?s( test rec [\d.]+ kl [\d.]+ total [\d.]+)?|( \(process \d+\))? \[[#.]+\] epoch \d+\/\d+( batch \d+\/\d+)?( starting| batch rec .*total [\d.]+| train rec .*ETA \S+))$/;

/** A screenshot of the whole notebook: the page grown to the notebook's height (capped), then taken. */
async function screenshot(page: Page, name: string, ui: FrontEndPage): Promise<void> {
  fs.mkdirSync(SHOTS, { recursive: true });
  await ui.showWholeOutputs(page);
  // The notebook's own scroller (JupyterLab's windowed panel, or the classic page) holds its whole height.
  const scrollers = "#notebook-container, .jp-Notebook, .jp-WindowedPanel-outer";
  const height = await page.evaluate(
    (scrollers) =>
      Math.min(
        20_000,
        Math.max(...Array.from(document.querySelectorAll(scrollers), (el) => el.scrollHeight), 900) + 200,
      ),
    scrollers,
  );
  const viewport = page.viewportSize() ?? { width: 1300, height: 1000 };
  await page.setViewportSize({ width: viewport.width, height });
  await page.evaluate(
    (scrollers) => document.querySelectorAll(scrollers).forEach((el) => el.scrollTo(0, 0)),
    scrollers,
  );
  await page.waitForTimeout(300);
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
  await page.setViewportSize(viewport);
}

/**
 * Hovers the most isolated point of the scatter titled `title` with the mouse and returns the tooltip's
 * text and that point's index in the test set.
 */
async function hoverIsolatedPoint(
  page: Page,
  title: string,
  selector = HTML_CHART,
): Promise<{ index: number; tooltip: string }> {
  const chart = page.locator(selector, { has: page.locator(".gtitle", { hasText: title }) }).first();
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
  const keys = fs.existsSync(cacheDir)
    ? fs.readdirSync(cacheDir).filter((name) => fs.statSync(path.join(cacheDir, name)).isDirectory())
    : [];
  const entries: number[] = [];
  const claimed = new Set<string>();
  const files: string[] = [];
  for (const key of keys) {
    const dir = path.join(cacheDir, key);
    for (const file of fs.readdirSync(dir)) {
      files.push(path.join(key, file));
      const match = /^c=([\d.]+)\.json$/.exec(file);
      if (!match) continue;
      const entry = JSON.parse(fs.readFileSync(path.join(dir, file), "utf8")) as {
        blobs: Record<string, { file: string; length: number; sha256: string }>;
      };
      const whole = Object.values(entry.blobs).every((blob) => {
        const bytes = fs.existsSync(path.join(dir, blob.file))
          ? fs.readFileSync(path.join(dir, blob.file))
          : Buffer.alloc(0);
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

const FRONT_ENDS: { frontEnd: FrontEnd; ui: FrontEndPage }[] = [
  { frontEnd: "classic", ui: classicNotebook },
  { frontEnd: "lab", ui: labDriver("lab") },
  { frontEnd: "notebook7", ui: labDriver("notebook7") },
];

/** The conventional `CI` variable (set by CI services and by `.ci/run`): there a missing front end fails instead of being skipped. */
const IN_CI = Boolean(process.env.CI) && process.env.CI !== "false" && process.env.CI !== "0";

/** Why the suite cannot run here (nothing to drive), or undefined when it can. */
function missing(installed: InstalledFrontEnd | undefined, what: string, install: string): string | undefined {
  if (!findChromium()) return "Chromium is not installed (Debian: apt-get install chromium)";
  if (!installed) return `${what} is not installed here (${install}); nothing to drive`;
  return undefined;
}

/**
 * A suite that needs something this machine lacks: skipped with the reason on a user's machine, and in
 * CI one failing test with that reason (CI installs every front end, so a missing one is a defect).
 */
function unavailable(name: string, reason: string): void {
  if (IN_CI) {
    describe(name, () => {
      test("can run (CI installs every front end)", () =>
        assert.fail(`${reason}; CI (the CI variable is set) runs every front end`));
    });
  } else describe(name, { skip: reason }, () => undefined);
}

/**
 * Errors JupyterLab and Notebook 7 raise in their own code whatever the notebook holds: the debugger asks
 * each kernel for a debugging session and rejects when it has none (tslab has no debugger support), and
 * Notebook 7.6's shortcuts plugin reads the settings schema of a plugin it does not have (thrown on
 * opening any notebook). Matched by message and by the front end's bundle at the top of the stack; every
 * other error counts.
 */
function frontEndsOwnError(error: Error): boolean {
  const top = (error.stack ?? "").split("\n").find((line) => /^\s+at /.test(line)) ?? "";
  const known = ["No active debugger session", "Cannot read properties of undefined (reading 'schema')"];
  return (
    known.includes(error.message) && (error.message === known[0] || /\/static\/notebook\/notebook_core\./.test(top))
  );
}

/** A new page with the panel scoping the test reads (`installRoot`), page errors collected, and leave-page dialogs accepted. */
async function newPage(browser: Browser, pageErrors: string[]): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1300, height: 1000 } });
  // tsx names the functions it compiles with a helper (`__name`) that page functions carry along.
  await page.addInitScript("globalThis.__name = (fn) => fn;");
  await page.addInitScript(installRoot);
  page.on("pageerror", (error) => {
    if (!frontEndsOwnError(error)) pageErrors.push(String(error));
  });
  // Leaving a page with unsaved changes asks for confirmation; the test leaves on purpose.
  page.on("dialog", (dialog) => void dialog.accept());
  return page;
}

/** Copies of the notebooks, so that saving (and Jupyter's autosave) never writes outputs into notebooks/; returns a notebook's path relative to the root. */
function copyNotebooks(work: string): (name: string) => string {
  fs.rmSync(work, { recursive: true, force: true });
  fs.mkdirSync(path.join(work, "notebooks"), { recursive: true });
  const copy = (name: string) => path.relative(PROJECT_ROOT, path.join(work, "notebooks", `${name}.ipynb`));
  for (const name of Object.keys(EXPECTED_CHARTS))
    fs.copyFileSync(path.join(PROJECT_ROOT, "notebooks", `${name}.ipynb`), path.join(PROJECT_ROOT, copy(name)));
  return copy;
}

/** Any edit outside Jupyter drops a saved notebook's signature: it opens untrusted. */
function editOutsideJupyter(file: string): void {
  const notebook = JSON.parse(fs.readFileSync(file, "utf8")) as { metadata: Record<string, unknown> };
  notebook.metadata.edited = "outside Jupyter";
  fs.writeFileSync(file, JSON.stringify(notebook));
}

/** Shuts the server's kernels down through its API, so that kernels do not pile up. */
async function shutDownKernels(server: RunningServer): Promise<void> {
  const sessions = (await (await fetch(`${server.url}api/sessions?token=${server.token}`)).json()) as { id: string }[];
  for (const session of sessions)
    await fetch(`${server.url}api/sessions/${session.id}?token=${server.token}`, { method: "DELETE" });
}

const seconds = (since: number) => ((performance.now() - since) / 1000).toFixed(1);

for (const { frontEnd, ui } of FRONT_ENDS) {
  const label = FRONT_END_NAMES[frontEnd];
  const installed = findFrontEnd(frontEnd);
  const name = `the notebooks in ${label}${installed ? ` (${installed.version})` : ""}, in headless Chromium`;
  const reason = missing(installed, label, FRONT_END_INSTALL[frontEnd]);
  if (reason || !installed) {
    unavailable(name, reason ?? "");
    continue;
  }

  describe(name, () => {
    const work = path.join(PROJECT_ROOT, "build", "browser-test", frontEnd);
    const cacheDir = path.join(work, "cache");
    let copy: (name: string) => string;
    let server: RunningServer;
    let browser: Browser;
    let page: Page;
    const pageErrors: string[] = [];
    const log = (line: string) => console.error(`[${frontEnd}] ${line}`);

    // Set up before the first test that runs (not in `before`, which runs even when every test of the suite is
    // filtered out by --test-name-pattern, and would wipe the folder of a run of that suite elsewhere).
    beforeEach(async () => {
      if (server) return;
      copy = copyNotebooks(work);
      server = await startJupyterServer(installed, { VAE_PROFILE: "quick", VAE_CACHE_DIR: cacheDir });
      browser = await launchChromium();
      page = await newPage(browser, pageErrors);
      log(`${installed.executable} ${installed.version}`);
    });

    after(async () => {
      await browser?.close();
      await server?.stop();
    });

    /** Opens a notebook, checks its kernel, runs it all from the menu and waits for the kernel to be idle. */
    async function runNotebook(name: string, timeoutMs = 300_000): Promise<Shown> {
      const started = performance.now();
      await ui.open(page, server, copy(name));
      const opened = performance.now();
      assert.equal(await ui.kernelName(page), KERNEL_DISPLAY_NAME, `${name}: the project's kernel runs`);
      await watchProgress(page);
      await ui.runAll(page);
      await ui.waitStarted(page);
      await ui.waitIdle(page, timeoutMs);
      const result = await shown(page, ui);
      log(
        `${name}: opened with its kernel in ${((opened - started) / 1000).toFixed(1)} s, Run All took ${seconds(opened)} s; ${result.charts.length} charts drawn; rendered MIME types ${result.mimeTypes.join(", ") || "(classic: not listed)"}`,
      );
      return result;
    }

    test("the server lists the project's kernel", async () => {
      const specs = (await (await fetch(`${server.url}api/kernelspecs?token=${server.token}`)).json()) as {
        kernelspecs: Record<string, { spec: { display_name: string } }>;
      };
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
          assert.ok(
            progress.states.length >= 2,
            `02: updated in place epoch after epoch (${progress.states.length} states seen)`,
          );
        }
        await screenshot(page, `${frontEnd}-${name}`, ui);
        await ui.save(page, path.join(PROJECT_ROOT, copy(name)));
        await shutDownKernels(server);
      }
      assert.deepEqual(pageErrors, []);
    });

    test("03: Interrupt during the sweep stops it within seconds with a short message; only finished coefficients are cached", async () => {
      await ui.open(page, server, copy("03-kl-sweep"));
      await watchProgress(page);
      const started = performance.now();
      await ui.runAll(page);
      // Wait until the first coefficient is done ("done in", or its last epoch), then press Interrupt while the next ones train (seven
      // quick coefficients take a few seconds even on an idle machine: time for the click to land).
      await page.waitForFunction(
        (first) => {
          const progress = (window as unknown as { vaeRoot(): ParentNode })
            .vaeRoot()
            .querySelector(".vae-progress") as HTMLElement | null;
          return (
            progress !== null && new RegExp(`c = ${first}:?\\s+(epoch 2/2|done in)`).test(progress.textContent ?? "")
          );
        },
        coefficients[0],
        { timeout: 360_000, polling: 50 },
      );
      // The progress as drawn mid-sweep: every line whole (waiting, training and done lines alike).
      const midway = await progressLines(page);
      const pressed = performance.now();
      await ui.interrupt(page);
      await ui.waitIdle(page, 60_000, false);
      const stoppedSeconds = (performance.now() - pressed) / 1000;
      assert.equal(midway.length, coefficients.length, "one progress line per coefficient");
      for (const line of midway) {
        assert.ok(line.whole, `progress line drawn whole: ${JSON.stringify(line.text)}`);
        assert.match(line.text, WHOLE_PROGRESS_LINE);
      }
      const text = (await shown(page, ui)).errors.join("\n");
      const message =
        // The click lands while a coefficient trains, or (on a slow machine) between two coefficients.
        /Interrupted: (?:KL coefficient ([\d.]+) at epoch \d+ was not cached|before KL coefficient ([\d.]+) started); c = ([\d., ]+) (?:is|are) cached and the next run resumes from them\./.exec(
          text,
        );
      log(
        `interrupt: pressed ${((pressed - started) / 1000).toFixed(1)} s after Run All, stopped ${stoppedSeconds.toFixed(1)} s after the click; output: ${JSON.stringify(text.trim())}`,
      );
      assert.ok(message, `a short interrupt message; got ${JSON.stringify(text)}`);
      assert.ok(stoppedSeconds < 10, `stopped within seconds (${stoppedSeconds.toFixed(1)} s)`);
      assert.doesNotMatch(text, /executor\.js|tslab|\n\s+at /, "no stack of kernel internals");
      const dropped = Number(message[1] ?? message[2]);
      const kept = message[3].split(", ").map(Number);
      assert.deepEqual(kept, coefficients.slice(0, kept.length), "the coefficients before the dropped one are kept");
      assert.equal(dropped, coefficients[kept.length]);
      const cache = cacheState(cacheDir);
      log(`interrupt: cache holds c = ${cache.entries.join(", ")}; other files: ${cache.others.join(", ") || "none"}`);
      assert.deepEqual(
        cache.entries,
        [...kept].sort((a, b) => a - b),
        "the cache holds exactly the finished coefficients",
      );
      assert.deepEqual(cache.others, [], "no partial file or lock left");
      await screenshot(page, `${frontEnd}-03-kl-sweep-interrupted`, ui);

      // Run All again in the same kernel: the kept coefficients load, the rest train.
      await watchProgress(page);
      const resumedAt = performance.now();
      await ui.runAll(page);
      await ui.waitStarted(page);
      await ui.waitIdle(page, 360_000);
      const resumed = await shown(page, ui);
      log(`03: Run All after the interrupt took ${seconds(resumedAt)} s; ${resumed.charts.length} charts drawn`);
      assert.deepEqual(resumed.errors, []);
      assert.deepEqual(resumed.charts, EXPECTED_CHARTS["03-kl-sweep"]);
      assert.equal(resumed.staticImages, 0);
      for (const c of kept) assert.match(resumed.text, new RegExp(`c = ${c}:?\\s+loaded from the cache`));
      for (const c of coefficients.slice(kept.length))
        assert.match(resumed.text, new RegExp(`c = ${c}:?\\s+(epoch 2/2|done in)`));
      const progress = await progressSeen(page);
      assert.equal(progress.most, 1, "the live progress is one output");
      assert.ok(
        progress.states.length >= 4,
        `updated in place as training went on (${progress.states.length} states seen)`,
      );
      assert.deepEqual(progress.cut, [], "no progress line was drawn cut off while the sweep ran");
      for (const line of await progressLines(page)) {
        assert.ok(line.whole, `final progress line drawn whole: ${JSON.stringify(line.text)}`);
        assert.match(line.text, WHOLE_PROGRESS_LINE);
      }
      assert.deepEqual(
        cacheState(cacheDir).entries,
        [...coefficients].sort((a, b) => a - b),
      );
      await screenshot(page, `${frontEnd}-03-kl-sweep`, ui);
    });

    test("03: a scatter point's tooltip names the digit of that test image", async () => {
      const labels = loadMnist(QUICK_CONFIG).yTest;
      await ui.showWholeOutputs(page);
      const { index, tooltip } = await hoverIsolatedPoint(
        page,
        `Encoder output for KL coefficient = ${coefficients[0]}`,
      );
      assert.match(
        tooltip,
        new RegExp(`^digit ${labels[index]}z = `),
        `point ${index} is test digit ${labels[index]}; tooltip ${JSON.stringify(tooltip)}`,
      );
      await page.screenshot({ path: path.join(SHOTS, `${frontEnd}-03-tooltip.png`) });
    });

    test("03: Restart & Run All loads every coefficient from the cache", async () => {
      await watchProgress(page);
      const started = performance.now();
      await ui.restartRunAll(page);
      await ui.waitStarted(page);
      await ui.waitIdle(page, 360_000);
      const again = await shown(page, ui);
      log(`03: Restart & Run All took ${seconds(started)} s; ${again.charts.length} charts drawn`);
      assert.deepEqual(again.errors, []);
      assert.deepEqual(again.charts, EXPECTED_CHARTS["03-kl-sweep"]);
      for (const c of coefficients) assert.match(again.text, new RegExp(`c = ${c}:?\\s+loaded from the cache`));
      await ui.save(page, path.join(PROJECT_ROOT, copy("03-kl-sweep")));
      await shutDownKernels(server);
    });

    test("04: Run All draws the comparison charts and the metrics table", async () => {
      const result = await runNotebook("04-analysis");
      assert.deepEqual(result.errors, []);
      assert.deepEqual(result.charts, EXPECTED_CHARTS["04-analysis"]);
      assert.equal(result.staticImages, 0);
      assert.match(result.text, /Test-set metrics per KL coefficient/);
      assert.equal(
        await page.locator(".vae-figure-table tbody tr").count(),
        coefficients.length,
        "one table row per coefficient",
      );
      await screenshot(page, `${frontEnd}-04-analysis`, ui);
      await ui.save(page, path.join(PROJECT_ROOT, copy("04-analysis")));
      await shutDownKernels(server);
      assert.deepEqual(pageErrors, []);
    });

    test("a saved notebook opened untrusted shows the static images, not scripts", async () => {
      const file = path.join(PROJECT_ROOT, copy("01-normal-samples"));
      editOutsideJupyter(file);
      await ui.open(page, server, copy("01-normal-samples"));
      await page.waitForSelector(".vae-figure img", { timeout: 30_000 });
      const view = await page.evaluate(() => {
        const root = (window as unknown as { vaeRoot(): ParentNode }).vaeRoot();
        return {
          images: Array.from(root.querySelectorAll(".vae-figure img"), (img) => ({
            type: (img as HTMLImageElement).src.slice(0, 16),
            width: (img as HTMLImageElement).naturalWidth,
          })),
          charts: root.querySelectorAll(".js-plotly-plot").length,
        };
      });
      log(`untrusted 01: ${JSON.stringify(view)}`);
      assert.deepEqual(view, { images: [{ type: "data:image/webp;", width: 720 }], charts: 0 });
      await page.locator(".vae-figure img").scrollIntoViewIfNeeded();
      await page.screenshot({ path: path.join(SHOTS, `${frontEnd}-01-untrusted.png`) });
      await shutDownKernels(server);
    });
  });
}

/**
 * JupyterLab with plotly's own renderer (the `plotly` Python package in the same environment, as
 * `npm run python-env -- --dir build/python-plotly jupyter plotly` makes it): it draws the figures from
 * their `application/vnd.plotly.v1+json` data, which it trusts as safe, so an untrusted notebook shows
 * interactive charts too.
 */
{
  const dir = path.join(PROJECT_ROOT, "build", "python-plotly");
  const found = findFrontEnd("lab", { pythonEnvDir: dir, env: { PATH: "" } });
  const withPlotly =
    found && fs.existsSync(path.join(dir, "share", "jupyter", "labextensions", "jupyterlab-plotly"))
      ? found
      : undefined;
  const name = "notebook 03 in JupyterLab with plotly's renderer, opened untrusted, in headless Chromium";
  const reason = missing(
    withPlotly,
    "JupyterLab with plotly's renderer in build/python-plotly",
    "npm run python-env -- --dir build/python-plotly jupyter plotly",
  );
  if (reason || !withPlotly) unavailable(name, reason ?? "");
  else {
    describe(name, () => {
      const work = path.join(PROJECT_ROOT, "build", "browser-test", "lab-plotly");
      let copy: (name: string) => string;
      let server: RunningServer;
      let browser: Browser;
      let page: Page;
      const pageErrors: string[] = [];
      const ui = labDriver("lab");

      beforeEach(async () => {
        if (server) return;
        copy = copyNotebooks(work);
        server = await startJupyterServer(withPlotly, {
          VAE_PROFILE: "quick",
          VAE_CACHE_DIR: path.join(work, "cache"),
        });
        browser = await launchChromium();
        page = await newPage(browser, pageErrors);
      });

      after(async () => {
        await browser?.close();
        await server?.stop();
      });

      test("plotly's renderer draws every chart of 03, trusted after Run All and untrusted when reopened, with tooltips", async () => {
        const started = performance.now();
        await ui.open(page, server, copy("03-kl-sweep"));
        await ui.runAll(page);
        await ui.waitStarted(page);
        await ui.waitIdle(page, 360_000);
        const trusted = await shown(page, ui);
        console.error(
          `[lab + plotly] 03: Run All took ${seconds(started)} s; rendered MIME types ${trusted.mimeTypes.join(", ")}; ${trusted.mimeCharts.length} charts by plotly's renderer, ${trusted.charts.length} from the HTML`,
        );
        assert.deepEqual(trusted.errors, []);
        // The richest renderer JupyterLab has wins: plotly's, not the HTML (whose script then never runs).
        assert.deepEqual(trusted.mimeCharts, EXPECTED_CHARTS["03-kl-sweep"]);
        assert.deepEqual(trusted.charts, []);
        const labels = loadMnist(QUICK_CONFIG).yTest;
        const { index, tooltip } = await hoverIsolatedPoint(
          page,
          `Encoder output for KL coefficient = ${coefficients[0]}`,
          MIME_CHART,
        );
        assert.match(
          tooltip,
          new RegExp(`^digit ${labels[index]}z = `),
          `point ${index} is test digit ${labels[index]}; tooltip ${JSON.stringify(tooltip)}`,
        );
        await page.screenshot({ path: path.join(SHOTS, "lab-plotly-03-tooltip.png") });
        await ui.save(page, path.join(PROJECT_ROOT, copy("03-kl-sweep")));
        await shutDownKernels(server);

        editOutsideJupyter(path.join(PROJECT_ROOT, copy("03-kl-sweep")));
        await ui.open(page, server, copy("03-kl-sweep"));
        // On saving, plotly's renderer adds its own PNG snapshot of each chart to the output ("image/png"); reopened,
        // it shows that snapshot and draws the interactive chart once the output is shown. Either way the figure is
        // plotly's renderer's, from the plotly JSON, untrusted, and none of the HTML's static images is used.
        await page.waitForFunction(
          (count) => {
            const root = (window as unknown as { vaeRoot(): ParentNode }).vaeRoot();
            const outputs = Array.from(root.querySelectorAll(".jp-RenderedPlotly"));
            const drawn = outputs.filter(
              (el) => el.classList.contains("js-plotly-plot") || el.querySelector("img.plot-img"),
            );
            return drawn.length >= count;
          },
          EXPECTED_CHARTS["03-kl-sweep"].length,
          { timeout: 180_000, polling: 500 },
        );
        const untrusted = await shown(page, ui);
        const byPlotly = await page.evaluate(() => {
          const root = (window as unknown as { vaeRoot(): ParentNode }).vaeRoot();
          const outputs = Array.from(root.querySelectorAll(".jp-RenderedPlotly"));
          return {
            interactive: outputs.filter((el) => el.classList.contains("js-plotly-plot")).length,
            snapshots: outputs.filter(
              (el) =>
                !el.classList.contains("js-plotly-plot") &&
                el.querySelector("img.plot-img[src^='data:image/png;base64,']"),
            ).length,
          };
        });
        const trust = await page.evaluate(() =>
          (
            window as unknown as {
              jupyterapp: {
                shell: { currentWidget: { content: { widgets: { model: { type: string; trusted: boolean } }[] } } };
              };
            }
          ).jupyterapp.shell.currentWidget.content.widgets
            .filter((c) => c.model.type === "code")
            .map((c) => c.model.trusted),
        );
        console.error(
          `[lab + plotly] 03 reopened untrusted (cells trusted: ${[...new Set(trust)].join(", ")}): plotly's renderer drew ${byPlotly.interactive} interactive charts and ${byPlotly.snapshots} of its snapshots; ${untrusted.staticImages} of the HTML's static images`,
        );
        assert.ok(
          trust.every((t) => !t),
          "the reopened notebook is untrusted",
        );
        assert.equal(byPlotly.interactive + byPlotly.snapshots, EXPECTED_CHARTS["03-kl-sweep"].length);
        assert.equal(untrusted.staticImages, 0, "plotly's renderer, not the HTML, draws every figure");
        assert.deepEqual(untrusted.errors, []);
        await screenshot(page, "lab-plotly-03-untrusted", ui);
        await shutDownKernels(server);
        assert.deepEqual(pageErrors, []);
      });
    });
  }
}
