/**
 * The latent explorer in a notebook (`notebooks/04-analysis.ipynb`): one output whose HTML is the
 * explorer of `src/plots/explorer.ts`, which needs no plotly.js and keeps a static grid where scripts
 * do not run.
 */
import type { SweepResult } from "../experiment/sweep";
import {
  buildExplorer,
  describeExplorer,
  explorerHtml,
  explorerSummary,
  type ExplorerOptions,
} from "../plots/explorer";
import { displayBundle } from "./display";

/**
 * Shows the explorer of every coefficient of a sweep and prints its size and its decoders' error
 * (`explorerSummary` gives the same figures as an object).
 */
export function showLatentExplorer(result: SweepResult, options: ExplorerOptions = {}): void {
  const explorer = buildExplorer(result, options);
  const html = explorerHtml(result, explorer);
  displayBundle({
    "text/html": html,
    "text/plain": `Latent explorer for KL coefficients ${result.runs.map((run) => run.klCoefficient).join(", ")}`,
  });
  const summary = explorerSummary(result, explorer, html);
  console.log(describeExplorer(summary));
}
