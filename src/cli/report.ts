/**
 * `npm run report -- [sweep options] [--out FILE]`: one self-contained HTML report of a sweep (default
 * build/report/report.html). Takes the options of `npm run sweep` and reuses its cache.
 */
import * as path from "node:path";
import { initBackend, parseBackendName } from "../backend";
import { writeFileAtomic } from "../cache";
import { loadMnist, PROJECT_ROOT } from "../data";
import { reportHtml } from "../report";
import { runSweep } from "../sweep";
import { parseFlags, runMain, UsageError } from "./args";
import { configFromFlags, SWEEP_FLAGS } from "./sweep";

const USAGE = `usage: npm run report -- [options]

  --out FILE    the HTML file to write (default build/report/report.html)
  and every option of npm run sweep (--profile, --coefficients, --epochs, --data, --seed, --backend, ...)`;

async function main(): Promise<void> {
  const values = parseFlags(process.argv.slice(2), SWEEP_FLAGS);
  if (values.help) return console.log(USAGE);
  const config = configFromFlags(values);
  let backendName;
  try {
    backendName = parseBackendName(values.backend);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const backend = await initBackend({ backend: backendName });
  const data = loadMnist(config);
  const cacheDir = values["no-cache"] ? false : values["cache-dir"] ? path.resolve(values["cache-dir"]) : undefined;
  const result = await runSweep({ config, data, backend, cacheDir, log: console.warn, onRunStart: (e) => console.log(`c = ${e.klCoefficient}: ${e.cached ? "from the cache" : "training"}`) });
  const file = path.resolve(values.out ?? path.join(PROJECT_ROOT, "build", "report", "report.html"));
  writeFileAtomic(file, reportHtml(result, data.xTest));
  console.log(`Report: ${file}`);
}

if (require.main === module) runMain(main, USAGE);
