/**
 * Pure builders of plotly.js figure specs ({data, layout}: plain JSON, no DOM, no kernel), used by the
 * notebooks (`src/notebook/display.ts` shows them), `npm run figures` (PNG files) and the HTML report.
 * Introduced in `notebooks/01-normal-samples.ipynb` and `notebooks/03-kl-sweep.ipynb`.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { writeFileAtomic } from "../experiment/cache";
import { PROJECT_ROOT } from "../vae/data";
import type { EpochRecord } from "../vae/train";
import { encodeGreyPng, pngDataUri, tileDigits } from "./png";

/** The subset of plotly's figure type that this project produces. */
export interface Figure {
  readonly data: Record<string, unknown>[];
  readonly layout: Record<string, unknown>;
  /** Extra data for animated figures (plotly frames). */
  readonly frames?: Record<string, unknown>[];
}

/** Matplotlib's default colour map, so the scatter colours read as in the tutorial. */
export const VIRIDIS = "Viridis";
const FONT = { family: "DejaVu Sans, Arial, sans-serif" };

function title(text: string, size = 20) {
  return { text, font: { size }, x: 0.5, xanchor: "center" };
}

/** A number as the tutorial's f-string prints it: 0, 0.02, 20 (no trailing zeros). */
export function formatCoefficient(c: number): string {
  return String(c);
}

/** Splits row-major [rows, 2] points into x and y arrays (plain numbers, for JSON). */
function columns(points: Float32Array): { x: number[]; y: number[] } {
  const x: number[] = [];
  const y: number[] = [];
  for (let i = 0; i + 1 < points.length; i += 2) {
    x.push(round(points[i]));
    y.push(round(points[i + 1]));
  }
  return { x, y };
}

/** Four significant decimals keep notebooks small without visible change. */
function round(value: number): number {
  return Math.round(value * 1e4) / 1e4;
}

/** The tutorial's first figure: samples of N(0, I) in 2D, "what the encoder output should look like". */
export function normalSamplesFigure(samples: Float32Array): Figure {
  const { x, y } = columns(samples);
  return {
    data: [
      {
        type: "scatter",
        mode: "markers",
        x,
        y,
        marker: { size: 4, color: "#1f77b4", opacity: 0.6 },
        name: "z ~ N(0, I)",
      },
    ],
    layout: {
      title: title(`Samples from a 2D standard multivariate normal distribution (n = ${x.length})`),
      xaxis: { title: { text: "z[0]" }, zeroline: true },
      yaxis: { title: { text: "z[1]" }, zeroline: true, scaleanchor: "x" },
      width: 720,
      height: 620,
      font: FONT,
    },
  };
}

/**
 * The tutorial's `plt.scatter(z_mean[:, 0], z_mean[:, 1], c=y_test); plt.colorbar()`: the encoder's
 * zMean of every test digit, coloured by its label, with a colour bar.
 */
export function latentScatterFigure(zMean: Float32Array, labels: ArrayLike<number>, klCoefficient: number): Figure {
  const { x, y } = columns(zMean);
  return {
    data: [
      {
        type: "scatter",
        mode: "markers",
        x,
        y,
        text: Array.from(labels, (label) => `digit ${label}`),
        hovertemplate: "%{text}<br>z = (%{x}, %{y})<extra></extra>",
        marker: {
          size: 4,
          color: Array.from(labels),
          colorscale: VIRIDIS,
          cmin: 0,
          cmax: 9,
          showscale: true,
          colorbar: { title: { text: "digit" }, tickvals: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] },
        },
      },
    ],
    layout: {
      title: title(`Encoder output for KL coefficient = ${formatCoefficient(klCoefficient)}`),
      xaxis: { title: { text: "z[0]" } },
      yaxis: { title: { text: "z[1]" } },
      width: 720,
      height: 620,
      font: FONT,
    },
  };
}

/** Tick positions at the centre of each digit and their labels rounded like `np.round(grid, 1)`. */
export function gridTicks(grid: readonly number[], digitSize = 28): { tickvals: number[]; ticktext: string[] } {
  return {
    tickvals: grid.map((_, i) => digitSize / 2 + i * digitSize),
    ticktext: grid.map((value) => (Math.round(value * 10) / 10 + 0).toFixed(1)),
  };
}

/**
 * The tutorial's decoded manifold: n x n digits tiled into one greyscale image (z[1] = +extent on the
 * top row), drawn as an image trace from an embedded PNG with ticks at the grid coordinates.
 */
export function manifoldFigure(
  manifold: Float32Array,
  gridX: readonly number[],
  gridY: readonly number[],
  klCoefficient: number,
  digitSize = 28,
): Figure {
  const n = gridX.length;
  const { width, height, pixels } = tileDigits(manifold, n, n, digitSize);
  return {
    data: [
      {
        type: "image",
        source: pngDataUri(encodeGreyPng(width, height, pixels, 4)),
        x0: 0,
        y0: 0,
        dx: 1,
        dy: 1,
        hoverinfo: "skip",
      },
    ],
    layout: {
      title: title(`Decoder output for KL coefficient = ${formatCoefficient(klCoefficient)}`),
      xaxis: {
        title: { text: "z[0]" },
        ...gridTicks(gridX, digitSize),
        tickangle: -90,
        showgrid: false,
        range: [0, width],
      },
      yaxis: {
        title: { text: "z[1]" },
        ...gridTicks(gridY, digitSize),
        showgrid: false,
        range: [height, 0],
        scaleanchor: "x",
      },
      width: 760,
      height: 760,
      font: FONT,
    },
  };
}

/** Loss curves of one training run: train and test totals per epoch, and the two terms. */
export function lossCurvesFigure(history: readonly EpochRecord[], klCoefficient: number): Figure {
  const epochs = history.map((record) => record.epoch);
  const line = (name: string, values: number[], dash: string, yaxis = "y") => ({
    type: "scatter",
    mode: "lines+markers",
    name,
    x: epochs,
    y: values.map(round),
    line: { dash },
    yaxis,
  });
  return {
    data: [
      line(
        "train total",
        history.map((r) => r.train.total),
        "solid",
      ),
      line(
        "test total",
        history.map((r) => r.test.total),
        "dot",
      ),
      line(
        "train reconstruction",
        history.map((r) => r.train.reconstruction),
        "solid",
      ),
      line(
        "test reconstruction",
        history.map((r) => r.test.reconstruction),
        "dot",
      ),
      line(
        "train KL",
        history.map((r) => r.train.kl),
        "solid",
        "y2",
      ),
      line(
        "test KL",
        history.map((r) => r.test.kl),
        "dot",
        "y2",
      ),
    ],
    layout: {
      title: title(`Loss per epoch for KL coefficient = ${formatCoefficient(klCoefficient)}`, 16),
      xaxis: { title: { text: "epoch" } },
      yaxis: { title: { text: "reconstruction, total (nats)" } },
      yaxis2: { title: { text: "KL (nats)" }, overlaying: "y", side: "right" },
      legend: { orientation: "h", y: -0.2 },
      width: 720,
      height: 420,
      font: FONT,
    },
  };
}

/**
 * The full plotly.js bundle of the `plotly.js-dist` package, for the headless Chromium that draws static
 * images (`src/plots/render.ts`), where weight does not matter and every trace type (tables too) must
 * draw. The package ships it unminified (10 MB), so it is minified once with esbuild (4.8 MB, its
 * license notice kept) and kept in `data/cache`; should that fail, the full file is used.
 */
export function plotlySource(cacheDir = path.join(PROJECT_ROOT, "data", "cache")): string {
  const cached = path.join(cacheDir, `plotly-${plotlyVersion()}.min.js`);
  if (fs.existsSync(cached)) return fs.readFileSync(cached, "utf8");
  const source = fs.readFileSync(require.resolve("plotly.js-dist/plotly.js"), "utf8");
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { transformSync } = require("esbuild") as typeof import("esbuild");
    // The copyright and MIT notice is a plain /** */ comment, which minifiers drop: keep it by hand.
    const notice = source.startsWith("/*") ? `${source.slice(0, source.indexOf("*/") + 2)}\n` : "";
    const minified = notice + transformSync(source, { minify: true, legalComments: "inline" }).code;
    writeFileAtomic(cached, minified);
    return minified;
  } catch {
    return source;
  }
}

/**
 * The trace types of plotly.js's cartesian bundle (`plotly.js-cartesian-dist-min`, 1.5 MB minified
 * against 4.8 MB for the full one), which pages load: every chart of the notebooks and the report is
 * built from these. A table is shown as an HTML table instead (`src/notebook/display.ts`).
 */
export const PAGE_TRACE_TYPES = Object.freeze([
  "bar",
  "box",
  "contour",
  "heatmap",
  "histogram",
  "histogram2d",
  "histogram2dcontour",
  "image",
  "pie",
  "scatter",
  "scatterternary",
  "violin",
]);

/** The file of the cartesian bundle that pages load (served by Jupyter, inlined in HTML files). */
export function pagePlotlyFile(): string {
  return require.resolve("plotly.js-cartesian-dist-min/plotly-cartesian.min.js");
}

/** The cartesian plotly.js bundle that pages load, already minified by its package. */
export function pagePlotlySource(): string {
  return fs.readFileSync(pagePlotlyFile(), "utf8");
}

/** A `<script>` element holding the cartesian plotly.js bundle, safe to put in any HTML page. */
export function plotlyScriptTag(): string {
  return `<script type="text/javascript">${pagePlotlySource().replace(/<\/script/gi, "<\\/script")}</script>`;
}

/** True when every trace of the figure is of a type the pages' bundle draws. */
export function drawnByPagePlotly(figure: Figure): boolean {
  return figure.data.every((trace) => PAGE_TRACE_TYPES.includes(String(trace.type ?? "scatter")));
}

export function plotlyVersion(): string {
  return (JSON.parse(fs.readFileSync(require.resolve("plotly.js-dist/package.json"), "utf8")) as { version: string })
    .version;
}
