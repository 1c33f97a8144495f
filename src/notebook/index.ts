/**
 * `src/notebook`: the notebook side: what a cell and the terminal show, and notebooks run without a person.
 * - `setup`: every notebook's first cell; `display`, `progress`, `tslabDisplay`: figures and live progress.
 * - `explorer`: the latent explorer as an output; `report`, `html`: the offline HTML report, escaping.
 * - `seeds`: the sweep over training seeds (notebook 04); `kernel`, `runner`: the headless runner (internal).
 * - `jupyterServer`: starting JupyterLab 4, Notebook 7 or the classic Notebook 6 (`npm run lab`, tests).
 * May import: system, vae, backend, experiment, plots.
 */
export * from "./display";
export * from "./explorer";
export * from "./html";
export * from "./progress";
export * from "./report";
export * from "./seeds";
export * from "./setup";
