/**
 * Showing figures and live progress in a tslab notebook. Introduced in `notebooks/01-normal-samples.ipynb`.
 *
 * Each figure is one output whose MIME bundle holds:
 * - `text/html`: a div with the static PNG inside plus a script that swaps in the interactive plotly
 *   chart when plotly.js is on the page. JupyterLab, Jupyter Notebook and nbconvert's HTML all prefer
 *   this; where scripts do not run (untrusted or sanitised notebooks) the PNG stays;
 * - `image/png`: the same PNG, for viewers without HTML;
 * - `text/plain`: the title.
 * plotly.js comes from the `plotly.js-dist` package, inlined once per notebook by `loadPlotly()`.
 * The PNG is drawn by plotly.js in headless Chromium (`src/plots/render.ts`); without Chromium the output
 * keeps the interactive chart and says the static image is missing.
 */
import { randomBytes } from "node:crypto";
import { plotlyScriptTag, plotlyVersion, type Figure } from "../plots/plot";
import { SweepProgress, type RunStartEvent } from "./progress";
import { initBackend } from "../backend/select";
import { autoSweepJobs } from "../experiment/workers";
import { FigureRenderer } from "../plots/render";
import type { VaeConfig } from "../vae/config";
import { runSweep, type SweepOptions, type SweepResult } from "../experiment/sweep";
import type { EpochEndEvent, EpochRecord } from "../vae/train";
import { escapeHtml } from "./html";

export interface MimeBundle {
  readonly [mimeType: string]: string;
}

type WriteDisplayData = (message: { data: MimeBundle; metadata: object; transient: { display_id?: string } }, update: boolean) => void;

/** The kernel's output channel; a clear error outside a tslab kernel. */
function writer(): WriteDisplayData {
  let jupyter: { lastWriteDisplayData: WriteDisplayData | null };
  try {
    // Loaded lazily: this module must import outside a kernel (tests, scripts).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    jupyter = require("tslab/dist/jupyter");
  } catch {
    throw new Error("Displaying needs the tslab kernel: run this in a notebook (npm run lab) or use src/plots/render.ts for files.");
  }
  if (!jupyter.lastWriteDisplayData) throw new Error("Displaying needs a running tslab kernel cell; none is executing.");
  return jupyter.lastWriteDisplayData;
}

/** Emits one output with a whole MIME bundle; with `displayId`, later calls can replace it in place. */
export function displayBundle(data: MimeBundle, options: { displayId?: string; update?: boolean } = {}): void {
  writer()({ data, metadata: {}, transient: options.displayId ? { display_id: options.displayId } : {} }, Boolean(options.update));
}

/** Puts plotly.js on the page once per notebook (call in the first cell). */
export function loadPlotly(): void {
  displayBundle({
    "text/html": plotlyScriptTag(),
    "text/plain": `plotly.js ${plotlyVersion()} loaded from the plotly.js-dist package`,
  });
}


function figureTitle(figure: Figure): string {
  const t = figure.layout.title as { text?: string } | string | undefined;
  return typeof t === "string" ? t : t?.text ?? "figure";
}

/** The HTML of one figure: static PNG first, replaced by the interactive chart where scripts run. */
export function figureHtml(figure: Figure, png?: Uint8Array): string {
  const id = `vae-figure-${randomBytes(6).toString("hex")}`;
  const width = (figure.layout.width as number | undefined) ?? 700;
  const height = (figure.layout.height as number | undefined) ?? 500;
  const fallback = png
    ? `<img alt="${escapeHtml(figureTitle(figure))}" src="data:image/png;base64,${Buffer.from(png).toString("base64")}" width="${width}" height="${height}">`
    : `<p>${escapeHtml(figureTitle(figure))} (interactive chart; no static image)</p>`;
  const spec = JSON.stringify({ data: figure.data, layout: figure.layout, frames: figure.frames ?? [] }).replace(/<\//g, "<\\/");
  return [
    `<div id="${id}" class="vae-figure" style="width:${width}px;min-height:${height}px">${fallback}</div>`,
    `<script type="text/javascript">(function () {`,
    `  var spec = ${spec};`,
    `  function draw() { var el = document.getElementById("${id}"); if (!el) return;`,
    `    if (!window.Plotly) { return setTimeout(draw, 100); }`,
    `    el.innerHTML = ""; window.Plotly.newPlot(el, spec.data, spec.layout, {responsive: false, displaylogo: false})`,
    `      .then(function () { if (spec.frames.length) window.Plotly.addFrames(el, spec.frames); }); }`,
    `  draw();`,
    `})();</script>`,
  ].join("\n");
}

let renderer: Promise<FigureRenderer> | undefined;

/** A shared Chromium for the notebook's static images; closed by `closeFigures()` or at exit. */
async function sharedRenderer(): Promise<FigureRenderer | undefined> {
  if (process.env.VAE_STATIC_IMAGES === "0" || !FigureRenderer.available()) return undefined;
  if (!renderer) {
    renderer = FigureRenderer.start();
    process.once("beforeExit", () => void closeFigures());
  }
  return renderer;
}

/** Shows a figure as one output (interactive chart + static PNG fallback). */
export async function showFigure(figure: Figure): Promise<void> {
  const png = await (await sharedRenderer())?.png(figure);
  const bundle: Record<string, string> = { "text/html": figureHtml(figure, png), "text/plain": figureTitle(figure) };
  if (png) bundle["image/png"] = Buffer.from(png).toString("base64");
  displayBundle(bundle);
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
    `<polyline fill="none" stroke="${colour}" stroke-width="2" stroke-dasharray="${dash}" points="${values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ")}"/>`;
  return `<svg width="${width}" height="${height}" style="border:1px solid #ddd">${line(series[0], "#1f77b4", "")}${line(series[1], "#ff7f0e", "4 3")}</svg>`;
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
    if (options.epochs !== undefined) this.progress = new SweepProgress(coefficients, options.epochs, options.jobs ?? 1);
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
    const rows = this.lines()
      .map((line) => `<tr><td style="font-family:monospace;white-space:pre">${escapeHtml(line)}</td></tr>`)
      .join("");
    const overall = this.progress ? `<div><b>${escapeHtml(this.progress.overall())}</b></div>` : "";
    const history = current !== undefined ? this.histories.get(current) ?? [] : [];
    const curve = history.length > 0 ? `<div>c = ${current}: total loss per epoch (train solid, test dashed)<br>${lossSparkline(history)}</div>` : "";
    return `<div class="vae-progress"><progress max="${this.coefficients.length}" value="${done}"></progress>${overall}<table>${rows}</table>${curve}</div>`;
  }

  private text(): string {
    return [...this.lines(), ...(this.progress ? [this.progress.overall()] : [])].join("\n");
  }

  private render(current?: number): void {
    displayBundle({ "text/html": this.html(current), "text/plain": this.text() }, { displayId: this.displayId, update: this.shown });
    this.shown = true;
  }
}

/**
 * `runSweep` with a `LiveProgress` display: what `notebooks/03-kl-sweep.ipynb` calls. Trains as many
 * coefficients at once as `npm run sweep` does by default (helper processes, `autoSweepJobs`), unless
 * `options.workers` says otherwise; every running coefficient has its line.
 */
export async function runSweepLive(config: VaeConfig, options: Omit<SweepOptions, "config"> = {}): Promise<SweepResult> {
  const backend = options.backend ?? (await initBackend({ quiet: true }));
  const workers = options.workers ?? (options.cacheDir === false ? 0 : autoSweepJobs(backend.name) - 1);
  const progress = new LiveProgress(config.klCoefficients, { epochs: config.epochs, jobs: workers + 1 });
  return runSweep({
    ...options,
    backend,
    workers,
    config,
    onRunStart: (event) => {
      progress.runStart(event);
      options.onRunStart?.(event);
    },
    onEpochEnd: (event) => {
      progress.epochEnd(event);
      options.onEpochEnd?.(event);
    },
    onRunEnd: (run, index) => {
      progress.runEnd(run.klCoefficient);
      options.onRunEnd?.(run, index);
    },
  });
}
