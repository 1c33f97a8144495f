/**
 * Showing figures and live progress in a tslab notebook. Introduced in `notebooks/01-normal-samples.ipynb`.
 *
 * Each figure is one output whose MIME bundle (`figureBundle`) holds a static image plus a script that swaps
 * in the interactive chart (`text/html`), the figure for plotly's own renderers (`application/vnd.plotly.v1+json`)
 * and the title, so that every front end shows the richest it can (docs/notebooks.md). The script loads
 * plotly.js once per page from the Jupyter server (`plotlyLoaderScript`), so an executed notebook weighs its
 * figures only. The bundle goes out through tslab's internal sender (`tslabDisplay.ts`).
 */
import { option, OPTIONS } from "../system/options";
import { randomBytes } from "node:crypto";
import { inspect } from "node:util";
import { drawnByPagePlotly, plotlyVersion, type Figure } from "../plots/plot";
import { SweepProgress, type RunStartEvent } from "./progress";
import { initBackend } from "../backend/select";
import { FigureRenderer } from "../plots/render";
import type { VaeConfig } from "../vae/config";
import { runSweep, type SweepOptions, type SweepResult } from "../experiment/sweep";
import type { EpochEndEvent, EpochRecord } from "../vae/train";
import { escapeHtml } from "./html";
import { sendDisplayData, type MimeBundle } from "./tslabDisplay";

export type { MimeBundle } from "./tslabDisplay";

/** Emits one output with a whole MIME bundle; with `displayId`, later calls can replace it in place. */
export function displayBundle(data: MimeBundle, options: { displayId?: string; update?: boolean } = {}): void {
  sendDisplayData(data, options);
}

/**
 * Where a Jupyter page finds the project's plotly.js (the cartesian bundle), relative to the server's
 * base URL, in the order tried: classic Notebook serves `nbextensions/` from `JUPYTER_PATH`, where
 * `jupyter/nbextensions/vae-plotly/plotly.min.js` links to the package's file; any Jupyter server started
 * at the project root (`npm run lab` does) serves the package itself under `files/`.
 */
export const PLOTLY_SERVER_PATHS = Object.freeze([
  "nbextensions/vae-plotly/plotly.min.js",
  "files/node_modules/plotly.js-cartesian-dist-min/plotly-cartesian.min.js",
]);

/**
 * A script defining `vaePlotly(done)`: calls `done(true)` once `window.Plotly` exists, loading it first
 * (once per page, however many figures ask) from the Jupyter server's base URL (classic Notebook: the
 * body's `data-base-url`; JupyterLab: its page config), or `done(false)` when no server path answers.
 */
export function plotlyLoaderScript(): string {
  return `function vaePlotly(done) {
  var w = window;
  if (w.Plotly) return done(true);
  var state = w.vaePlotlyLoad || (w.vaePlotlyLoad = { waiting: [], started: false, failed: false });
  if (state.failed) return done(false);
  state.waiting.push(done);
  if (state.started) return;
  state.started = true;
  var base = document.body && document.body.getAttribute("data-base-url");
  var config = document.getElementById("jupyter-config-data");
  if (!base && config) { try { base = JSON.parse(config.textContent).baseUrl; } catch (e) { base = null; } }
  var paths = ${JSON.stringify(PLOTLY_SERVER_PATHS)};
  var urls = base ? paths.map(function (p) { return base.replace(/\\/?$/, "/") + p; }) : [];
  function finish(ok) { state.failed = !ok; var list = state.waiting; state.waiting = []; list.forEach(function (f) { f(ok); }); }
  (function next(i) {
    if (w.Plotly) return finish(true);
    if (i >= urls.length) return finish(false);
    var script = document.createElement("script");
    script.src = urls[i];
    script.onload = function () { next(i + 1); };
    script.onerror = function () { next(i + 1); };
    document.head.appendChild(script);
  })(0);
}`;
}

/** Said under a static image when no plotly.js could be loaded. */
const NO_PLOTLY_NOTE =
  "Static image: this Jupyter server does not serve the project's plotly.js; " +
  "start it with npm run lab (or JUPYTER_PATH=./jupyter) for interactive charts.";

/**
 * Puts plotly.js on the page early (call in the first cell) and says where it came from; every figure
 * also loads it on its own, so a cell re-run alone still draws.
 */
export function loadPlotly(): void {
  const id = `vae-plotly-${randomBytes(6).toString("hex")}`;
  const html = [
    `<div id="${id}" class="vae-plotly-status">plotly.js ${plotlyVersion()} (cartesian bundle): ` +
      "interactive charts need scripts (a trusted notebook); static images are shown otherwise.</div>",
    `<script type="text/javascript">(function () {`,
    plotlyLoaderScript(),
    `  vaePlotly(function (ok) { var el = document.getElementById("${id}"); if (el) el.textContent = ok`,
    `    ? "plotly.js " + window.Plotly.version + " loaded: charts are interactive."`,
    `    : ${JSON.stringify(NO_PLOTLY_NOTE)}; });`,
    `})();</script>`,
  ].join("\n");
  displayBundle({
    "text/html": html,
    "text/plain": `plotly.js ${plotlyVersion()} (cartesian bundle, loaded by the page from the Jupyter server)`,
  });
}

function figureTitle(figure: Figure): string {
  const t = figure.layout.title as { text?: string } | string | undefined;
  return typeof t === "string" ? t : (t?.text ?? "figure");
}

/** A static image of a figure: its bytes and MIME type. */
export interface StaticImage {
  readonly bytes: Uint8Array;
  readonly mimeType: "image/png" | "image/webp";
}

/**
 * A table figure (plotly `table` traces, which the pages' cartesian bundle does not draw) as an HTML
 * table: header values and one column of cell values per header.
 */
export function tableFigureHtml(figure: Figure): string {
  const parts = figure.data.map((trace) => {
    const header = ((trace.header as { values?: unknown[] } | undefined)?.values ?? []).map(String);
    const columns = ((trace.cells as { values?: unknown[][] } | undefined)?.values ?? []).map((column) =>
      column.map(String),
    );
    const rows = Math.max(0, ...columns.map((column) => column.length));
    const body = Array.from(
      { length: rows },
      (_, r) =>
        `<tr>${columns.map((column) => `<td style="text-align:right">${escapeHtml(column[r] ?? "")}</td>`).join("")}` +
        "</tr>",
    );
    return (
      `<table class="vae-table"><thead><tr>${header.map((h) => `<th>${escapeHtml(h)}</th>`).join("")}</tr></thead>` +
      `<tbody>${body.join("")}</tbody></table>`
    );
  });
  return `<div class="vae-figure-table"><p><b>${escapeHtml(figureTitle(figure))}</b></p>${parts.join("")}</div>`;
}

/**
 * The HTML of one figure: static image first, replaced by the interactive chart where scripts run and
 * plotly.js is on the page or served by Jupyter (`plotlyLoaderScript`).
 */
export function figureHtml(figure: Figure, image?: StaticImage): string {
  if (figure.data.length > 0 && figure.data.every((trace) => trace.type === "table")) return tableFigureHtml(figure);
  if (!drawnByPagePlotly(figure))
    throw new Error(
      `${figureTitle(figure)}: a trace type the pages' plotly.js bundle does not draw ` +
        `(${figure.data.map((t) => String(t.type)).join(", ")}).`,
    );
  const id = `vae-figure-${randomBytes(6).toString("hex")}`;
  const width = (figure.layout.width as number | undefined) ?? 700;
  const height = (figure.layout.height as number | undefined) ?? 500;
  const fallback = image
    ? `<img alt="${escapeHtml(figureTitle(figure))}" ` +
      `src="data:${image.mimeType};base64,${Buffer.from(image.bytes).toString("base64")}" ` +
      `width="${width}" height="${height}">`
    : `<p>${escapeHtml(figureTitle(figure))} (interactive chart; no static image)</p>`;
  const spec = JSON.stringify({ data: figure.data, layout: figure.layout, frames: figure.frames ?? [] }).replace(
    /<\//g,
    "<\\/",
  );
  return [
    `<div id="${id}" class="vae-figure" style="width:${width}px;min-height:${height}px">${fallback}</div>`,
    `<script type="text/javascript">(function () {`,
    `  var spec = ${spec};`,
    plotlyLoaderScript(),
    // JupyterLab may run the script just before the output is attached: look for the div a few times.
    `  function draw(ok, tries) { var el = document.getElementById("${id}");`,
    `    if (!el) { if (tries < 50) setTimeout(function () { draw(ok, tries + 1); }, 100); return; }`,
    `    if (!ok) { el.insertAdjacentHTML("beforeend", ` +
      `${JSON.stringify(`<p class="vae-note">${NO_PLOTLY_NOTE}</p>`)}); return; }`,
    `    el.innerHTML = ""; window.Plotly.newPlot(el, spec.data, spec.layout, {responsive: false, displaylogo: false})`,
    `      .then(function () { if (spec.frames.length) window.Plotly.addFrames(el, spec.frames); }); }`,
    `  vaePlotly(function (ok) { draw(ok, 0); });`,
    `})();</script>`,
  ].join("\n");
}

let renderer: Promise<FigureRenderer> | undefined;
/** Whether the exit hook is in place: once per process, not once per browser (a kernel runs notebooks many times). */
let closesAtExit = false;

/** A shared Chromium for the notebook's static images; closed by `closeFigures()` or at exit. */
async function sharedRenderer(): Promise<FigureRenderer | undefined> {
  if (!option("staticImages") || !FigureRenderer.available()) return undefined;
  if (!renderer) {
    renderer = FigureRenderer.start();
    if (!closesAtExit) process.on("beforeExit", () => void closeFigures());
    closesAtExit = true;
  }
  return renderer;
}

/** plotly's MIME type: front ends with a plotly renderer draw it natively, offline, trusted or not. */
export const PLOTLY_MIME_TYPE = "application/vnd.plotly.v1+json";

/**
 * The MIME bundle of one figure: the HTML (static image, swapped for the interactive chart where scripts
 * run), plotly's own JSON (`{data, layout, config}`, plus `frames` when the figure has any) for front
 * ends with a plotly renderer, and the title as text. Each front end shows the richest type it draws.
 */
export function figureBundle(figure: Figure, image?: StaticImage): MimeBundle {
  const plotly = {
    data: figure.data,
    layout: figure.layout,
    config: { displaylogo: false },
    ...(figure.frames?.length ? { frames: figure.frames } : {}),
  };
  return { "text/html": figureHtml(figure, image), [PLOTLY_MIME_TYPE]: plotly, "text/plain": figureTitle(figure) };
}

/** Shows a figure as one output (`figureBundle`: interactive chart with a static WebP fallback, plotly JSON, title). */
export async function showFigure(figure: Figure): Promise<void> {
  const isTable = figure.data.length > 0 && figure.data.every((trace) => trace.type === "table");
  const bytes = isTable ? undefined : await (await sharedRenderer())?.image(figure, "webp");
  const image: StaticImage | undefined = bytes ? { bytes, mimeType: "image/webp" } : undefined;
  displayBundle(figureBundle(figure, image));
}

/** Closes the static-image browser (the last cell of a notebook may call it; exit does too). */
export async function closeFigures(): Promise<void> {
  const pending = renderer;
  renderer = undefined;
  if (pending) await (await pending).close();
}

/** An inline SVG polyline of the total loss per epoch: a loss curve without plotly or scripts. */
export function lossSparkline(history: readonly EpochRecord[], width = 360, height = 90): string {
  if (history.length === 0) return "";
  const series = [history.map((r) => r.train.total), history.map((r) => r.test.total)];
  const all = series.flat();
  const low = Math.min(...all);
  const high = Math.max(...all);
  const x = (i: number) => (history.length === 1 ? width / 2 : (i / (history.length - 1)) * (width - 10) + 5);
  const y = (v: number) => (high === low ? height / 2 : height - 5 - ((v - low) / (high - low)) * (height - 10));
  const line = (values: number[], colour: string, dash: string) =>
    `<polyline fill="none" stroke="${colour}" stroke-width="2" stroke-dasharray="${dash}" ` +
    `points="${values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ")}"/>`;
  return (
    `<svg width="${width}" height="${height}" style="border:1px solid #ddd">` +
    `${line(series[0], "#1f77b4", "")}${line(series[1], "#ff7f0e", "4 3")}</svg>`
  );
}

/**
 * Live training progress in one output updated in place: a line per coefficient (waiting, training in
 * which process, at which epoch, with its train and test terms and ETA, done), the sweep's ETA, and the
 * loss curve of the coefficient that last finished an epoch. Headless runs keep the final state.
 */
export class LiveProgress {
  private readonly displayId = `vae-progress-${randomBytes(6).toString("hex")}`;
  private readonly histories = new Map<number, EpochRecord[]>();
  private progress: SweepProgress | undefined;
  private shown = false;

  /** `epochs` and `jobs` (coefficients trained at once) make the sweep's ETA; epochs default to the first event's. */
  constructor(
    private readonly coefficients: readonly number[],
    private readonly options: { epochs?: number; jobs?: number } = {},
  ) {
    if (options.epochs !== undefined)
      this.progress = new SweepProgress(coefficients, options.epochs, options.jobs ?? 1);
  }

  private state(epochs: number): SweepProgress {
    this.progress ??= new SweepProgress(this.coefficients, epochs, this.options.jobs ?? 1);
    return this.progress;
  }

  runStart(event: RunStartEvent): void {
    this.progress?.runStart(event);
    this.render();
  }

  epochEnd(event: EpochEndEvent): void {
    const history = this.histories.get(event.klCoefficient) ?? [];
    history.push(event.record);
    this.histories.set(event.klCoefficient, history);
    this.state(event.epochs).epochEnd(event);
    this.render(event.klCoefficient);
  }

  runEnd(klCoefficient: number): void {
    this.progress?.runEnd(klCoefficient);
    this.render();
  }

  private lines(): string[] {
    return this.coefficients.map((c) => this.progress?.line(c) ?? `c = ${c}: waiting`);
  }

  private html(current?: number): string {
    const done = this.coefficients.filter((c) => this.progress?.finished(c)).length;
    // One block per line, left-aligned and wrapped at the output's width: a table cell took the classic
    // Notebook's output table style (right-aligned, fixed layout sized by the first row) and cut long lines.
    const rows = this.lines()
      .map(
        (line) =>
          '<div class="vae-progress-line" ' +
          'style="font-family:monospace;white-space:pre-wrap;overflow-wrap:anywhere;text-align:left;margin:0">' +
          `${escapeHtml(line)}</div>`,
      )
      .join("");
    const overall = this.progress ? `<div><b>${escapeHtml(this.progress.overall())}</b></div>` : "";
    const history = current !== undefined ? (this.histories.get(current) ?? []) : [];
    const curve =
      history.length > 0
        ? `<div>c = ${current}: total loss per epoch (train solid, test dashed)<br>${lossSparkline(history)}</div>`
        : "";
    return (
      `<div class="vae-progress"><progress max="${this.coefficients.length}" value="${done}"></progress>${overall}` +
      `<div class="vae-progress-lines">${rows}</div>${curve}</div>`
    );
  }

  private text(): string {
    return [...this.lines(), ...(this.progress ? [this.progress.overall()] : [])].join("\n");
  }

  private render(current?: number): void {
    displayBundle(
      { "text/html": this.html(current), "text/plain": this.text() },
      { displayId: this.displayId, update: this.shown },
    );
    this.shown = true;
  }
}

/** Where notebooks cache the sweep when set (a test's own folder, say); else `data/cache`. */
export const CACHE_DIR_ENV = OPTIONS.cacheDir.name;

/**
 * The short message a notebook shows when Interrupt stops its sweep: which coefficient was dropped and
 * which are kept (each coefficient is cached only once it has finished, so the next run resumes there).
 */
export class SweepInterruptedError extends Error {
  override name = "Interrupted";
  /**
   * `klCoefficient`: the one training when Interrupt came (with its `epoch`), or about to start (no
   * epoch); `finished`: the coefficients done and cached.
   */
  constructor(klCoefficient: number, epoch: number | undefined, finished: readonly number[]) {
    const dropped =
      epoch === undefined
        ? `before KL coefficient ${klCoefficient} started`
        : `KL coefficient ${klCoefficient} at epoch ${epoch} was not cached`;
    const kept =
      finished.length > 0
        ? `c = ${finished.join(", ")} ${finished.length === 1 ? "is" : "are"} cached and the next run resumes from them`
        : "nothing was cached yet";
    super(`${dropped}; ${kept}.`);
    // tslab prints a failed cell's error with console.error: one line, not a stack of kernel internals.
    this.stack = `${this.name}: ${this.message}`;
  }

  /** How console.error shows it (node would put a stack-less error in brackets). */
  [inspect.custom](): string {
    return this.stack as string;
  }
}

/**
 * Runs `body` with Jupyter's Interrupt (SIGINT to the kernel) turned into a request that `body` polls
 * through `stopRequested()` between batches. tslab's own SIGINT handler would end the cell at once with
 * a stack of its internals while training went on in the background; it is set aside meanwhile and
 * called on a second Interrupt, for code that does not poll.
 */
export async function withCooperativeInterrupt<T>(body: (stopRequested: () => boolean) => Promise<T>): Promise<T> {
  // tslab runs a cell's synchronous part under vm's breakOnSigint, which takes every SIGINT listener off
  // and puts them back when that part ends: look at the listeners only once it has.
  await new Promise((resolve) => setImmediate(resolve));
  const previous = process.listeners("SIGINT");
  let requested = false;
  const onInterrupt = () => {
    if (!requested) {
      requested = true;
      return;
    }
    for (const listener of previous) (listener as () => void)();
  };
  process.removeAllListeners("SIGINT");
  process.on("SIGINT", onInterrupt);
  try {
    return await body(() => requested);
  } finally {
    process.removeListener("SIGINT", onInterrupt);
    for (const listener of previous) process.on("SIGINT", listener as () => void);
  }
}

/**
 * `runSweep` with a `LiveProgress` display: what `notebooks/03-kl-sweep.ipynb` calls. Trains in the
 * kernel's own process, so that Interrupt stops it after the current batch with a `SweepInterruptedError`
 * naming exactly what is cached; `{ workers: autoSweepJobs(backend.name) - 1 }` trains as many
 * coefficients at once as `npm run sweep` (helper processes), every running coefficient with its line.
 */
export async function runSweepLive(
  config: VaeConfig,
  options: Omit<SweepOptions, "config"> = {},
): Promise<SweepResult> {
  const backend = options.backend ?? (await initBackend({ quiet: true }));
  const cacheDir = options.cacheDir ?? option("cacheDir");
  const workers = options.workers ?? 0;
  const progress = new LiveProgress(config.klCoefficients, { epochs: config.epochs, jobs: workers + 1 });
  const finished: number[] = [];
  // The coefficient this process trains: Interrupt stops only its own batches (the helpers' progress
  // arrives through the same callbacks, from outside the training loop).
  let training: number | undefined;
  return withCooperativeInterrupt((stopRequested) =>
    runSweep({
      ...options,
      backend,
      workers,
      cacheDir,
      config,
      onRunStart: (event) => {
        if (event.worker === undefined) {
          if (stopRequested()) throw new SweepInterruptedError(event.klCoefficient, undefined, finished);
          training = event.klCoefficient;
        }
        progress.runStart(event);
        options.onRunStart?.(event);
      },
      onBatchEnd: (event) => {
        if (event.klCoefficient === training && stopRequested())
          throw new SweepInterruptedError(event.klCoefficient, event.epoch, finished);
        options.onBatchEnd?.(event);
      },
      onEpochEnd: (event) => {
        progress.epochEnd(event);
        options.onEpochEnd?.(event);
      },
      onRunEnd: (run, index) => {
        finished.push(run.klCoefficient);
        progress.runEnd(run.klCoefficient);
        options.onRunEnd?.(run, index);
      },
    }),
  );
}
