/**
 * `src/notebook`: the notebook side. What a cell shows, what the terminal shows, and how notebooks run
 * without a person.
 *
 * - `setup.ts`: the first cell of every notebook (versions, backend, profile, plotly.js on the page).
 * - `display.ts`, `progress.ts`: figures and live progress in a notebook; progress in a terminal.
 * - `tslabDisplay.ts`: the one call into tslab's internals (a whole MIME bundle in one output).
 * - `explorer.ts`: the latent explorer as a notebook output.
 * - `report.ts`, `html.ts`: the offline HTML report; HTML escaping.
 * - `seeds.ts`: the sweep over several training seeds, from the cache, with its spread (notebook 04).
 * - `kernel.ts`, `runner.ts`: a small Jupyter client and the headless runner with its HTML export (used
 *   by `npm run notebooks` and the tests; not part of the notebooks' API).
 * - `jupyterServer.ts`: finding and starting JupyterLab 4, Notebook 7 or the classic Notebook 6 on the
 *   project (`npm run lab`, the browser test).
 *
 * May import: system, vae, backend, experiment, plots.
 */
export * from "./display";
export * from "./explorer";
export * from "./html";
export * from "./progress";
export * from "./report";
export * from "./seeds";
export * from "./setup";
