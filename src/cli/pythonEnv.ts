/**
 * `npm run python-env -- GROUP...`: the project's Python virtual environment (default `build/python`)
 * with the named groups installed from the index pip is configured with: `jupyter` (JupyterLab 4 and
 * Notebook 7), `plotly` (JupyterLab's plotly renderer), `bench` (PyTorch, Keras on TensorFlow),
 * `tensorflow` (the C library tfjs-node is built against). Prints the environment's `bin` folder.
 */
import * as path from "node:path";
import { PROJECT_ROOT } from "../vae/data";
import { defaultPythonEnvDir, ensurePythonEnv, PYTHON_GROUPS, type PythonGroup } from "../system/pythonEnv";
import { parseArgs } from "node:util";
import { runMain, UsageError } from "./args";

const USAGE = `usage: npm run python-env -- [--dir DIR] GROUP...

  GROUP        one or more of: ${Object.keys(PYTHON_GROUPS).join(", ")}
  --dir DIR    where the environment lives (default build/python)
  --help       this text`;

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args: process.argv.slice(2),
      options: { dir: { type: "string" }, help: { type: "boolean" } },
      strict: true,
      allowPositionals: true,
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (parsed.values.help) return console.log(USAGE);
  const groups = parsed.positionals;
  if (groups.length === 0)
    throw new UsageError("name at least one group to install, e.g. npm run python-env -- jupyter.");
  for (const group of groups) {
    if (!(group in PYTHON_GROUPS))
      throw new UsageError(`unknown group "${group}"; the groups are ${Object.keys(PYTHON_GROUPS).join(", ")}.`);
  }
  const dir = path.resolve(parsed.values.dir ?? defaultPythonEnvDir(PROJECT_ROOT));
  const bin = ensurePythonEnv({ dir, groups: groups as PythonGroup[], log: (line) => console.error(line) });
  console.log(bin);
}

if (require.main === module) runMain(main, USAGE);
