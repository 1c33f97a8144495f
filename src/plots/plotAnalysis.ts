/**
 * Pure builders of the comparison charts: every coefficient at a glance.
 * Introduced in `notebooks/04-analysis.ipynb`; also drawn by `npm run report`.
 */
import type { DigitRows } from "../experiment/analysis";
import type { CoefficientMetrics, MeasuredSeeds } from "../experiment/metrics";
import { seedSpreads } from "../experiment/statistics";
import { gridTicks, type Figure, VIRIDIS } from "./plot";
import { encodeGreyPng, pngDataUri, tileDigits } from "./png";
import type { CoefficientRun, SweepResult } from "../experiment/sweep";

const FONT = { family: "DejaVu Sans, Arial, sans-serif" };
/** One colour per coefficient, from light to dark as c grows. */
const PALETTE = [
  "#fde725",
  "#b5de2b",
  "#6ece58",
  "#35b779",
  "#1f9e89",
  "#26828e",
  "#31688e",
  "#3e4989",
  "#482878",
  "#440154",
];

function colour(index: number, count: number): string {
  return PALETTE[Math.round((index / Math.max(1, count - 1)) * (PALETTE.length - 1))];
}

function title(text: string) {
  return { text, font: { size: 18 }, x: 0.5, xanchor: "center" };
}

function points(zMean: Float32Array): { x: number[]; y: number[] } {
  const x: number[] = [];
  const y: number[] = [];
  for (let i = 0; i < zMean.length; i += 2) {
    x.push(Math.round(zMean[i] * 1e4) / 1e4);
    y.push(Math.round(zMean[i + 1] * 1e4) / 1e4);
  }
  return { x, y };
}

/** The metrics table as a plotly table. */
export function metricsTableFigure(metrics: readonly CoefficientMetrics[]): Figure {
  const header = [
    "c",
    "distortion (nats)",
    "rate (nats)",
    "-ELBO",
    "KL of fitted Gaussian",
    "energy distance",
    "active units",
    "mean |zMean|",
    "manifold variety",
  ];
  const columns = [
    metrics.map((m) => String(m.klCoefficient)),
    metrics.map((m) => m.distortion.toFixed(2)),
    metrics.map((m) => m.rate.toFixed(2)),
    metrics.map((m) => m.negativeElbo.toFixed(2)),
    metrics.map((m) => m.aggregateGaussianKl.toFixed(3)),
    metrics.map((m) => m.aggregateEnergyDistance.toFixed(4)),
    metrics.map((m) => String(m.activeUnits)),
    metrics.map((m) => m.latentRadius.toFixed(2)),
    metrics.map((m) => m.manifoldVariety.toFixed(3)),
  ];
  return {
    data: [
      {
        type: "table",
        header: { values: header, fill: { color: "#e8eef7" }, align: "center" },
        cells: { values: columns, align: "right", height: 26 },
      },
    ],
    layout: {
      title: title("Test-set metrics per KL coefficient"),
      width: 1000,
      height: 120 + 28 * metrics.length,
      margin: { l: 10, r: 10, t: 50, b: 10 },
      font: FONT,
    },
  };
}

/** Rate against distortion, one labelled point per c: the trade-off the coefficient sets. */
export function rateDistortionFigure(metrics: readonly CoefficientMetrics[]): Figure {
  return {
    data: [
      {
        type: "scatter",
        mode: "lines+markers+text",
        x: metrics.map((m) => m.rate),
        y: metrics.map((m) => m.distortion),
        text: metrics.map((m) => `c = ${m.klCoefficient}`),
        textposition: "top right",
        marker: {
          size: 10,
          color: metrics.map((_, i) => colour(i, metrics.length)),
          line: { color: "#333", width: 1 },
        },
        line: { color: "#999", dash: "dot" },
        hovertemplate: "%{text}<br>rate %{x:.2f} nats<br>distortion %{y:.2f} nats<extra></extra>",
      },
    ],
    layout: {
      title: title("Rate-distortion: what each coefficient trades"),
      xaxis: { title: { text: "rate: test KL(q(z|x) || N(0, I)) (nats, log scale)" }, type: "log" },
      yaxis: { title: { text: "distortion: test reconstruction (nats)" } },
      width: 760,
      height: 520,
      font: FONT,
    },
  };
}

/**
 * Rate against distortion over several training seeds: per c, the mean with error bars of one sample
 * standard deviation in both directions, and each seed's own point faint behind it.
 */
export function rateDistortionSeedsFigure(result: MeasuredSeeds): Figure {
  const spreads = seedSpreads(result);
  const count = spreads.length;
  const seedPoints = result.seeds.flatMap((s) =>
    s.runs.map((run, i) => ({
      seed: s.seed,
      i,
      klCoefficient: run.klCoefficient,
      rate: run.metrics.rate,
      distortion: run.metrics.distortion,
    })),
  );
  const seeds = result.seeds.length;
  return {
    data: [
      {
        type: "scatter",
        mode: "markers",
        name: "each seed",
        x: seedPoints.map((p) => p.rate),
        y: seedPoints.map((p) => p.distortion),
        text: seedPoints.map((p) => `c = ${p.klCoefficient}, seed ${p.seed}`),
        marker: { size: 7, color: seedPoints.map((p) => colour(p.i, count)), opacity: 0.35 },
        hovertemplate: "%{text}<br>rate %{x:.2f} nats<br>distortion %{y:.2f} nats<extra></extra>",
      },
      {
        type: "scatter",
        mode: "lines+markers+text",
        name: `mean of ${seeds} seed${seeds === 1 ? "" : "s"} ± sd`,
        x: spreads.map((s) => s.rate.mean),
        y: spreads.map((s) => s.distortion.mean),
        text: spreads.map((s) => `c = ${s.klCoefficient}`),
        textposition: "top right",
        error_x: {
          type: "data",
          array: spreads.map((s) => s.rate.sd ?? 0),
          visible: true,
          color: "#555",
          thickness: 1.2,
        },
        error_y: {
          type: "data",
          array: spreads.map((s) => s.distortion.sd ?? 0),
          visible: true,
          color: "#555",
          thickness: 1.2,
        },
        customdata: spreads.map((s) => [s.rate.sd ?? NaN, s.distortion.sd ?? NaN]),
        marker: { size: 10, color: spreads.map((_, i) => colour(i, count)), line: { color: "#333", width: 1 } },
        line: { color: "#999", dash: "dot" },
        hovertemplate:
          "%{text}<br>rate %{x:.2f} ± %{customdata[0]:.2f} nats" +
          "<br>distortion %{y:.2f} ± %{customdata[1]:.2f} nats<extra></extra>",
      },
    ],
    layout: {
      title: title(`Rate-distortion over ${seeds} seed${seeds === 1 ? "" : "s"}: mean ± sample sd`),
      xaxis: { title: { text: "rate: test KL(q(z|x) || N(0, I)) (nats, log scale)" }, type: "log" },
      yaxis: { title: { text: "distortion: test reconstruction (nats)" } },
      legend: { x: 0.99, xanchor: "right", y: 0.99 },
      width: 760,
      height: 520,
      font: FONT,
    },
  };
}

/** Train (solid) and test (dotted) reconstruction and KL per epoch, every c on one chart. */
export function allLossCurvesFigure(runs: readonly CoefficientRun[]): Figure {
  const data = runs.flatMap((run, i) => {
    const epochs = run.history.map((r) => r.epoch);
    const trace = (split: "train" | "test", term: "reconstruction" | "kl", axis: string) => ({
      type: "scatter",
      mode: "lines+markers",
      marker: { size: 3 },
      name: `c = ${run.klCoefficient}`,
      hovertemplate: `c = ${run.klCoefficient}, ${split} ${term}: %{y:.2f}<extra></extra>`,
      legendgroup: `c${run.klCoefficient}`,
      showlegend: split === "train" && term === "reconstruction",
      x: epochs,
      y: run.history.map((r) => r[split][term]),
      line: { color: colour(i, runs.length), dash: split === "train" ? "solid" : "dot" },
      xaxis: axis === "1" ? "x" : "x2",
      yaxis: axis === "1" ? "y" : "y2",
    });
    return [
      trace("train", "reconstruction", "1"),
      trace("test", "reconstruction", "1"),
      trace("train", "kl", "2"),
      trace("test", "kl", "2"),
    ];
  });
  return {
    data,
    layout: {
      title: title("Loss curves of every coefficient (train solid, test dotted)"),
      grid: { rows: 1, columns: 2, pattern: "independent" },
      xaxis: { title: { text: "epoch" } },
      yaxis: { title: { text: "reconstruction (nats)" } },
      xaxis2: { title: { text: "epoch" } },
      yaxis2: { title: { text: "KL (nats, log scale)" }, type: "log" },
      width: 1100,
      height: 480,
      font: FONT,
    },
  };
}

function gridLayout(count: number, columns: number) {
  const rows = Math.ceil(count / columns);
  return { rows, columns, pattern: "independent", xgap: 0.08, ygap: 0.25 };
}

function axisName(kind: "x" | "y", i: number): string {
  return i === 0 ? kind : `${kind}${i + 1}`;
}

function subplotTitles(runs: readonly CoefficientRun[], columns: number) {
  const rows = Math.ceil(runs.length / columns);
  return runs.map((run, i) => ({
    text: `c = ${run.klCoefficient}`,
    showarrow: false,
    xref: "paper",
    yref: "paper",
    x: ((i % columns) + 0.5) / columns,
    y: 1 - Math.floor(i / columns) / rows + 0.01,
    xanchor: "center",
    yanchor: "bottom",
    font: { size: 14 },
  }));
}

/** Small multiples of every encoder scatter, coloured by digit with one shared colour bar. */
export function scatterGridFigure(result: Pick<SweepResult, "runs" | "yTest">, columns = 4): Figure {
  const labels = Array.from(result.yTest);
  const data = result.runs.map((run, i) => ({
    type: "scatter",
    mode: "markers",
    ...points(run.zMean),
    xaxis: axisName("x", i),
    yaxis: axisName("y", i),
    name: `c = ${run.klCoefficient}`,
    marker: {
      size: 2.5,
      color: labels,
      colorscale: VIRIDIS,
      cmin: 0,
      cmax: 9,
      showscale: i === 0,
      colorbar: { title: { text: "digit" } },
    },
    showlegend: false,
    hoverinfo: "skip",
  }));
  return {
    data,
    layout: {
      title: title("Encoder output (test zMean) for every KL coefficient"),
      grid: gridLayout(result.runs.length, columns),
      annotations: subplotTitles(result.runs, columns),
      width: 1200,
      height: 330 * Math.ceil(result.runs.length / columns) + 80,
      font: FONT,
    },
  };
}

/** Small multiples of every decoded manifold (z over [-3, 3]^2, z[1] = +3 on top). */
export function manifoldGridFigure(result: Pick<SweepResult, "runs" | "gridX">, columns = 4): Figure {
  const n = result.gridX.length;
  const data = result.runs.map((run, i) => {
    const { width, height, pixels } = tileDigits(run.manifold, n, n);
    return {
      type: "image",
      source: pngDataUri(encodeGreyPng(width, height, pixels, 4)),
      xaxis: axisName("x", i),
      yaxis: axisName("y", i),
      hoverinfo: "skip",
    };
  });
  const axes: Record<string, unknown> = {};
  result.runs.forEach((_, i) => {
    axes[i === 0 ? "xaxis" : `xaxis${i + 1}`] = { showticklabels: false, showgrid: false, zeroline: false };
    axes[i === 0 ? "yaxis" : `yaxis${i + 1}`] = {
      showticklabels: false,
      showgrid: false,
      zeroline: false,
      scaleanchor: axisName("x", i),
    };
  });
  return {
    data,
    layout: {
      title: title("Decoder output over [-3, 3]^2 for every KL coefficient"),
      grid: gridLayout(result.runs.length, columns),
      annotations: subplotTitles(result.runs, columns),
      ...axes,
      width: 1200,
      height: 320 * Math.ceil(result.runs.length / columns) + 80,
      font: FONT,
    },
  };
}

function extent(zMean: Float32Array): [number, number, number, number] {
  let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
  for (let i = 0; i < zMean.length; i += 2) {
    x0 = Math.min(x0, zMean[i]);
    x1 = Math.max(x1, zMean[i]);
    y0 = Math.min(y0, zMean[i + 1]);
    y1 = Math.max(y1, zMean[i + 1]);
  }
  const pad = (a: number, b: number) => [a - 0.05 * (b - a), b + 0.05 * (b - a)];
  return [...pad(x0, x1), ...pad(y0, y1)] as [number, number, number, number];
}

/** One scatter with a slider over c: moving it morphs the encoder output from one coefficient to the next. */
export function scatterSliderFigure(result: Pick<SweepResult, "runs" | "yTest">): Figure {
  const labels = Array.from(result.yTest);
  const marker = {
    size: 4,
    color: labels,
    colorscale: VIRIDIS,
    cmin: 0,
    cmax: 9,
    showscale: true,
    colorbar: { title: { text: "digit" } },
  };
  const frames = result.runs.map((run) => {
    const [x0, x1, y0, y1] = extent(run.zMean);
    return {
      name: `c = ${run.klCoefficient}`,
      data: [{ type: "scatter", mode: "markers", ...points(run.zMean), marker }],
      layout: {
        xaxis: { range: [x0, x1], title: { text: "z[0]" } },
        yaxis: { range: [y0, y1], title: { text: "z[1]" } },
        title: title(`Encoder output for KL coefficient = ${run.klCoefficient}`),
      },
    };
  });
  const first = frames[0];
  return {
    data: first.data,
    frames,
    layout: {
      ...first.layout,
      width: 760,
      height: 700,
      font: FONT,
      sliders: [
        {
          active: 0,
          currentvalue: { prefix: "KL coefficient: ", font: { size: 16 } },
          pad: { t: 50 },
          steps: frames.map((frame) => ({
            label: frame.name.replace("c = ", ""),
            method: "animate",
            args: [
              [frame.name],
              { mode: "immediate", frame: { duration: 300, redraw: true }, transition: { duration: 300 } },
            ],
          })),
        },
      ],
    },
  };
}

/** Rows of digits (originals, reconstructions or prior samples) as one image with a label per row. */
export function digitRowsFigure(rows: DigitRows, titleText: string): Figure {
  const count = rows.labels.length;
  const { width, height, pixels } = tileDigits(rows.digits, count, rows.columns);
  return {
    data: [{ type: "image", source: pngDataUri(encodeGreyPng(width, height, pixels, 4)), hoverinfo: "skip" }],
    layout: {
      title: title(titleText),
      xaxis: { showticklabels: false, showgrid: false, zeroline: false, range: [0, width] },
      yaxis: {
        tickvals: gridTicks(rows.labels.map(() => 0)).tickvals,
        ticktext: rows.labels,
        showgrid: false,
        zeroline: false,
        range: [height, 0],
        scaleanchor: "x",
      },
      width: 120 + rows.columns * 56,
      height: 100 + count * 56,
      margin: { l: 90, r: 20, t: 60, b: 20 },
      font: FONT,
    },
  };
}
