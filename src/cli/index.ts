/**
 * `src/cli`: the command lines, one file per npm script (`sweep.ts` is `npm run sweep`, and so on); each
 * parses its flags (`args.ts`), calls the library and exits with 0, 1 (the work failed) or 2 (a usage error).
 * `sweepWorker.ts` and `benchWorker.ts` are the helper processes of `npm run sweep` and
 * `npm run bench -- --full-mnist`.
 * May import: system, vae, backend, experiment, plots, notebook.
 */
export {};
