/**
 * One self-contained, offline HTML file summarising a sweep (`npm run report`): config, backend, the
 * metrics table, the tutorial's conclusions checked, every comparison chart and the latent explorer, with
 * plotly.js inlined once (the cartesian bundle of `plotly.js-cartesian-dist-min`). Opens by double-click;
 * nothing is fetched.
 */
import { configRows, priorSampleRows, reconstructionRows } from "../experiment/analysis";
import { describeBackend } from "../backend/select";
import { checkConclusions, checkConclusionsAcrossSeeds } from "../experiment/conclusions";
import { formatSpread, seedSpreads, SPREAD_METRICS } from "../experiment/statistics";
import { figureHtml } from "./display";
import { explorerHtml } from "../plots/explorer";
import { sweepMetrics } from "../experiment/metrics";
import { plotlyScriptTag, plotlyVersion, type Figure } from "../plots/plot";
import {
  allLossCurvesFigure,
  digitRowsFigure,
  manifoldGridFigure,
  metricsTableFigure,
  rateDistortionFigure,
  rateDistortionSeedsFigure,
  scatterGridFigure,
  scatterSliderFigure,
} from "../plots/plotAnalysis";
import type { SweepResult } from "../experiment/sweep";
import { escapeHtml } from "./html";

export interface NamedFigure {
  readonly name: string;
  readonly caption: string;
  readonly figure: Figure;
}

/**
 * Every comparison chart of `notebooks/04-analysis.ipynb`, in its order; for a sweep over several
 * training seeds, the rate-distortion plot with their spread last. The other charts show the first seed.
 */
export function analysisFigures(result: SweepResult, xTest: Float32Array): NamedFigure[] {
  const metrics = sweepMetrics(result);
  const seeds: NamedFigure[] =
    result.seeds.length > 1
      ? [
          {
            name: "rate-distortion-seeds",
            caption:
              `Per c, the mean over ${result.seeds.length} training seeds with error bars of one sample standard ` +
              "deviation both ways; each seed's point faint behind it.",
            figure: rateDistortionSeedsFigure(result),
          },
        ]
      : [];
  return [
    {
      name: "metrics-table",
      caption: "The metrics of every coefficient on the test set.",
      figure: metricsTableFigure(metrics),
    },
    {
      name: "rate-distortion",
      caption: "Each point is one coefficient: a larger c buys a lower rate with a higher distortion.",
      figure: rateDistortionFigure(metrics),
    },
    {
      name: "loss-curves",
      caption: "Training (solid) and test (dotted) loss terms per epoch.",
      figure: allLossCurvesFigure(result.runs),
    },
    {
      name: "encoder-grid",
      caption: "The encoder's test-set zMean for every c, side by side (axes differ per panel).",
      figure: scatterGridFigure(result),
    },
    {
      name: "decoder-grid",
      caption: "The decoded 30 x 30 manifold over [-3, 3]^2 for every c.",
      figure: manifoldGridFigure(result),
    },
    {
      name: "encoder-slider",
      caption: "Move the slider to morph the encoder output from one coefficient to the next.",
      figure: scatterSliderFigure(result),
    },
    {
      name: "reconstructions",
      caption: "Test digits (top row) and their reconstructions decode(zMean(x)) for every c.",
      figure: digitRowsFigure(reconstructionRows(result, xTest), "Test digits and their reconstructions"),
    },
    {
      name: "prior-samples",
      caption: "Digits decoded from the same ten samples of N(0, I) for every c: what each VAE generates.",
      figure: digitRowsFigure(priorSampleRows(result), "Decoded samples of the prior N(0, I)"),
    },
    ...seeds,
  ];
}

/**
 * The report's section on a sweep over several training seeds: the spread per c and the conclusions
 * counted per seed.
 */
function seedsSection(result: SweepResult): string {
  if (result.seeds.length < 2) return "";
  const seeds = result.seeds.map((s) => s.seed);
  const conclusions = checkConclusionsAcrossSeeds(result);
  return `<h2>Over ${seeds.length} training seeds</h2>
<p>Seeds ${seeds.join(", ")}: each draws its own initial weights, shuffles and sampling noise; all are measured on the same test digits (the split of seed ${result.config.seed}). Each cell: mean ± sample standard deviation (n - 1) [min, max]. The other tables and charts show seed ${seeds[0]}.</p>
${table(
  ["c", ...SPREAD_METRICS.map((m) => m.label)],
  seedSpreads(result).map((s) => [
    String(s.klCoefficient),
    ...SPREAD_METRICS.map((m) => formatSpread(s[m.key], m.digits)),
  ]),
)}
<p>The tutorial's conclusions, checked on each seed alone:</p>
<ol>${conclusions
    .map(
      (c) =>
        `<li><b>${escapeHtml(c.claim)}</b><br>` +
        `<span class="${c.holdsIn === c.seeds ? "holds" : "fails"}">Holds for ${c.holdsIn} of ${c.seeds} seeds</span>${
          c.holdsIn < c.seeds
            ? ` (not for ${escapeHtml(
                c.perSeed
                  .filter((p) => !p.holds)
                  .map((p) => p.seed)
                  .join(", "),
              )})`
            : ""
        }</li>`,
    )
    .join("")}</ol>`;
}

function table(header: string[], rows: string[][]): string {
  const head = `<tr>${header.map((h) => `<th>${escapeHtml(h)}</th>`).join("")}</tr>`;
  const body = rows.map((row) => `<tr>${row.map((cell) => `<td>${escapeHtml(cell)}</td>`).join("")}</tr>`);
  return `<table>${head}${body.join("")}</table>`;
}

/** The report's HTML. */
export function reportHtml(result: SweepResult, xTest: Float32Array, createdAt = new Date()): string {
  const metrics = sweepMetrics(result);
  const conclusions = checkConclusions(result);
  const conclusionItems = conclusions.map(
    (c) =>
      `<li><b>${escapeHtml(c.claim)}</b><br><span class="${c.holds ? "holds" : "fails"}">` +
      `${c.holds ? "Holds" : "Does not hold"}</span>: ${escapeHtml(c.evidence)}</li>`,
  );
  const figures = analysisFigures(result, xTest).filter((f) => f.name !== "metrics-table");
  const sections = figures
    .map((f) => `<section><p class="caption">${escapeHtml(f.caption)}</p>${figureHtml(f.figure)}</section>`)
    .join("\n");
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>KL coefficient sweep report</title>
<style>
body { font-family: "DejaVu Sans", Arial, sans-serif; max-width: 1250px; margin: 2em auto; color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; } td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #e8eef7; } td:first-child { text-align: left; } .caption { color: #555; margin-top: 2em; }
.holds { color: #1a7f37; } .fails { color: #b42318; }
</style>
${plotlyScriptTag()}
</head><body>
<h1>How the KL coefficient shapes a VAE: sweep report</h1>
<p>${escapeHtml(describeBackend(result.backend))}; plotly.js ${plotlyVersion()}; data ${escapeHtml(result.data.source)} (${result.data.trainSize} train / ${result.data.testSize} test); cache key ${result.key}; written ${createdAt.toISOString()}.</p>
<h2>Configuration</h2>
${table(
  ["setting", "value"],
  configRows(result.config).map(([k, v]) => [k, v]),
)}
<h2>Metrics on the test set</h2>
<p>Distortion is the reconstruction term (784 x mean binary cross-entropy, nats per digit); rate is the KL term; their sum is the negative ELBO. The last columns compare the aggregate encoder output (zMean over the test set) with N(0, I).</p>
${table(
  [
    "c",
    "distortion",
    "rate",
    "-ELBO",
    "KL of fitted Gaussian",
    "energy distance",
    "active units",
    "mean |zMean|",
    "manifold variety",
    "train s",
  ],
  metrics.map((m, i) => [
    String(m.klCoefficient),
    m.distortion.toFixed(2),
    m.rate.toFixed(2),
    m.negativeElbo.toFixed(2),
    m.aggregateGaussianKl.toFixed(3),
    m.aggregateEnergyDistance.toFixed(4),
    String(m.activeUnits),
    m.latentRadius.toFixed(2),
    m.manifoldVariety.toFixed(3),
    result.runs[i].trainSeconds.toFixed(1),
  ]),
)}
<h2>The tutorial's conclusions, checked</h2>
<ol>${conclusionItems.join("")}</ol>
${seedsSection(result)}
<h2>Charts</h2>
${sections}
<h2>Latent explorer</h2>
<p class="caption">The digit each decoder draws for the latent point under the mouse, decoded in this page; the buttons switch the coefficient, two clicks decode the path between two points. Without scripts, a static grid of each decoder.</p>
${explorerHtml(result)}
</body></html>
`;
}
