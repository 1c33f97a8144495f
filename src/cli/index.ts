/**
 * `src/cli`: the command lines, one file per npm script; each parses its flags (`args.ts`), calls the
 * library and exits with 0, 1 (the work failed) or 2 (a usage error).
 *
 * - `sweep.ts` (`npm run sweep`) and `sweepWorker.ts` (its helper processes); `benchWorker.ts` (the
 *   helper processes of `npm run bench -- --full-mnist`).
 * - `lab.ts` (`npm run lab`: JupyterLab, else the classic Notebook).
 * - `notebooks.ts` (`npm run notebooks`), `figures.ts` (`npm run figures`), `report.ts`
 *   (`npm run report`), `bench.ts` (`npm run bench`), `fetchMnist.ts` (`npm run fetch-mnist`).
 *
 * May import: system, vae, backend, experiment, plots, notebook.
 */
export {};
