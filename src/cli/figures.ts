/**
 * `npm run figures -- [sweep options] [--out DIR] [--scale N]`: the sweep's figures as PNG files (the
 * normal samples, for each c the encoder scatter and the decoder manifold, then the comparison charts
 * of the analysis notebook), drawn by plotly.js in headless Chromium. Takes the options of
 * `npm run sweep`, so it reuses that sweep's cache.
 */
import { writeFileAtomic } from "../experiment/cache";
import * as path from "node:path";
import { PROJECT_ROOT } from "../vae/data";
import { analysisFigures } from "../notebook/report";
import { latentScatterFigure, manifoldFigure, normalSamplesFigure, type Figure } from "../plots/plot";
import { standardNormalSamples } from "../vae/random";
import { FigureRenderer } from "../plots/render";
import { parseFlags, parseInteger, runMain } from "./args";
import { SWEEP_FLAGS, sweepFromFlags } from "./sweep";

const USAGE = `usage: npm run figures -- [options]

  --out DIR     where the PNG files go (default build/figures)
  --scale N     pixel density (default 1)
  and every option of npm run sweep (--profile, --coefficients, --epochs, --data, --seed, --backend, ...)`;

async function main(): Promise<void> {
  const values = parseFlags(process.argv.slice(2), { ...SWEEP_FLAGS, scale: { type: "string" } } as const);
  if (values.help) return console.log(USAGE);
  const scale = parseInteger("scale", values.scale) ?? 1;
  const outDir = path.resolve(values.out ?? path.join(PROJECT_ROOT, "build", "figures"));
  const { config, data, result } = await sweepFromFlags(values, {
    outputs: [{ dir: outDir, role: "the figures folder (--out)", elsewhere: "or name another folder with --out DIR" }],
  });
  const figures: [string, Figure][] = [
    ["normal-samples", normalSamplesFigure(standardNormalSamples(5000, config.seed))],
  ];
  for (const run of result.runs) {
    figures.push([`encoder-c${run.klCoefficient}`, latentScatterFigure(run.zMean, result.yTest, run.klCoefficient)]);
    figures.push([
      `decoder-c${run.klCoefficient}`,
      manifoldFigure(run.manifold, result.gridX, result.gridY, run.klCoefficient),
    ]);
  }
  for (const { name, figure } of analysisFigures(result, data.xTest)) {
    if (name !== "metrics-table" && name !== "encoder-slider") figures.push([name, figure]);
  }
  const renderer = await FigureRenderer.start();
  try {
    for (const [name, figure] of figures) {
      const file = path.join(outDir, `${name}.png`);
      writeFileAtomic(file, await renderer.png(figure, scale), "or name another folder with --out DIR");
      console.log(file);
    }
  } finally {
    await renderer.close();
  }
}

if (require.main === module) runMain(main, USAGE);
