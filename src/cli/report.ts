/**
 * `npm run report -- [sweep options] [--out FILE]`: one self-contained HTML report of a sweep (default
 * build/report/report.html). Takes the options of `npm run sweep` and reuses its cache.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { writeFileAtomic } from "../experiment/cache";
import { PROJECT_ROOT } from "../vae/data";
import { reportHtml } from "../notebook/report";
import { parseFlags, runMain, UsageError } from "./args";
import { SWEEP_FLAGS, sweepFromFlags } from "./sweep";

const USAGE = `usage: npm run report -- [options]

  --out FILE    the HTML file to write (default build/report/report.html)
  and every option of npm run sweep (--profile, --coefficients, --epochs, --data, --seed, --seeds, --backend, ...);
  with --seeds, the report adds each metric's spread over the seeds and the conclusions counted per seed`;

async function main(): Promise<void> {
  const values = parseFlags(process.argv.slice(2), SWEEP_FLAGS);
  if (values.help) return console.log(USAGE);
  const file = path.resolve(values.out ?? path.join(PROJECT_ROOT, "build", "report", "report.html"));
  if (fs.existsSync(file) && fs.statSync(file).isDirectory())
    throw new UsageError(
      `--out ${file} is a folder; name the HTML file to write, e.g. --out ${path.join(file, "report.html")}.`,
    );
  const { data, result } = await sweepFromFlags(values, {
    outputs: [
      {
        dir: path.dirname(file),
        role: "the report's folder (--out)",
        elsewhere: "or name another file with --out FILE",
      },
    ],
    onRunStart: (event) =>
      console.log(
        `${values.seeds !== undefined ? `seed ${event.seed}, ` : ""}c = ${event.klCoefficient}: ` +
          (event.cached ? "from the cache" : "training"),
      ),
  });
  writeFileAtomic(file, reportHtml(result, data.xTest), "or name another file with --out FILE");
  console.log(`Report: ${file}`);
}

if (require.main === module) runMain(main, USAGE);
