/**
 * `npm run notebooks -- [--profile quick] [--out DIR] [NAME...]`: executes the notebooks headlessly
 * in the project's tslab kernel and writes executed copies and HTML exports (default build/notebooks).
 */
import * as path from "node:path";
import { checkOutputFolder } from "../system/storage";
import { isProfileName, PROFILE_ENV } from "../vae/config";
import {
  CELL_TIMEOUT_ENV,
  CellError,
  cellTimeoutFromEnv,
  DEFAULT_CELL_TIMEOUT_SECONDS,
  executeNotebook,
  listNotebooks,
  NOTEBOOK_BUILD_DIR,
  NOTEBOOK_DIR,
  parseCellTimeout,
} from "../notebook/runner";
import { UsageError, runMain } from "./args";
import { parseArgs } from "node:util";

const USAGE = `usage: npm run notebooks -- [options] [NAME...]

  --profile NAME   tutorial or quick (default: ${PROFILE_ENV}, else tutorial)
  --out DIR        where executed notebooks and HTML go (default build/notebooks)
  --cell-timeout S seconds one cell may run before the kernel is stopped and the run fails
                   (default: ${CELL_TIMEOUT_ENV}, else ${DEFAULT_CELL_TIMEOUT_SECONDS}; 0: no limit)
  NAME             notebooks to run, e.g. 03-kl-sweep (default: all, in order)
  --help           this text`;

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args: process.argv.slice(2),
      options: {
        profile: { type: "string" },
        out: { type: "string" },
        "cell-timeout": { type: "string" },
        help: { type: "boolean" },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) return console.log(USAGE);
  if (values.profile !== undefined && !isProfileName(values.profile))
    throw new UsageError(`--profile "${values.profile}" is not a profile; use tutorial or quick.`);
  const all = listNotebooks();
  const chosen =
    positionals.length === 0
      ? all
      : positionals.map((name) => {
          const file = all.find(
            (candidate) =>
              path.basename(candidate, ".ipynb") === name.replace(/\.ipynb$/, "").replace(/^notebooks\//, ""),
          );
          if (!file)
            throw new UsageError(
              `No notebook "${name}" in ${NOTEBOOK_DIR}; ` +
                `there are: ${all.map((f) => path.basename(f, ".ipynb")).join(", ")}.`,
            );
          return file;
        });
  let cellTimeoutSeconds: number;
  try {
    const raw = values["cell-timeout"];
    cellTimeoutSeconds = raw === undefined ? cellTimeoutFromEnv() : parseCellTimeout(raw, "--cell-timeout");
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const env = values.profile ? { [PROFILE_ENV]: values.profile } : {};
  const outDir = path.resolve(values.out ?? NOTEBOOK_BUILD_DIR);
  await checkOutputFolder(outDir, {
    role: "the executed notebooks' folder (--out)",
    elsewhere: "or name another folder with --out DIR",
  });
  for (const file of chosen) {
    try {
      const done = await executeNotebook(file, { outDir, env, cellTimeoutSeconds, log: (line) => console.log(line) });
      console.log(
        `${path.basename(file)}: executed in ${done.seconds.toFixed(1)} s -> ${done.ipynbPath}, ${done.htmlPath}`,
      );
    } catch (error) {
      if (error instanceof CellError) {
        console.error(error.message);
        process.exitCode = 1;
        return;
      }
      throw error;
    }
  }
}

if (require.main === module) runMain(main, USAGE);
