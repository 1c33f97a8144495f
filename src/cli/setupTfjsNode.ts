/**
 * `npm run setup-tfjs-node`: builds `@tensorflow/tfjs-node`'s native binding against the TensorFlow C
 * library of pip's `tensorflow-cpu` wheel (see `src/system/tfjsNodeBuild.ts`), then loads it in a fresh
 * process and checks a product. Nothing is downloaded beyond the npm and pip indexes.
 */
import * as path from "node:path";
import { PROJECT_ROOT } from "../vae/data";
import { defaultPythonEnvDir } from "../system/pythonEnv";
import { checkTfjsNode, setupTfjsNode } from "../system/tfjsNodeBuild";
import { parseFlags, runMain } from "./args";

const USAGE = `usage: npm run setup-tfjs-node -- [options]

  --python-dir DIR   the Python environment that holds tensorflow-cpu (default build/python; made
                     and filled from pip's configured index when missing)
  --force            rebuild even when the binding on disk was built from the same inputs
  --help             this text`;

async function main(): Promise<void> {
  const values = parseFlags(process.argv.slice(2), {
    "python-dir": { type: "string" },
    force: { type: "boolean" },
    help: { type: "boolean" },
  } as const);
  if (values.help) return console.log(USAGE);
  const pythonDir = path.resolve(values["python-dir"] ?? defaultPythonEnvDir(PROJECT_ROOT));
  const result = setupTfjsNode({
    projectRoot: PROJECT_ROOT,
    pythonDir,
    force: values.force,
    log: (line) => console.log(line),
  });
  if (result.built) console.log(`Built ${result.binding} in ${result.seconds.toFixed(0)} s`);
  const check = checkTfjsNode(PROJECT_ROOT);
  console.log(
    `require("@tensorflow/tfjs-node") works: backend "${check.backend}", TensorFlow ${check.tensorflowVersion}; ` +
      "[[1, 2], [3, 4]] x [[5, 6], [7, 8]] = [[19, 22], [43, 50]]",
  );
}

if (require.main === module) runMain(main, USAGE);
