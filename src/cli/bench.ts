/**
 * `npm run bench -- [--backend NAME] [--epochs N] [--rows N] [--out FILE] [--pytorch]`: times training
 * of the tutorial's VAE on the active backend and writes the figures as JSON (default
 * build/bench/bench.json). `--pytorch` also runs bench/pytorch_reference.py (needs python3 with torch)
 * on the same digits for a side-by-side figure.
 */
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { describeBackend, initBackend } from "../backend/select";
import { writeFileAtomic } from "../experiment/cache";
import { resolveConfig } from "../vae/config";
import { loadMnist, PROJECT_ROOT } from "../vae/data";
import { benchTraining, formatBench } from "../experiment/bench";
import { parseBackendFlag, parseFlags, parseInteger, runMain, UsageError } from "./args";

const USAGE = `usage: npm run bench -- [options]

  --backend NAME   tensorflow | wasm | cpu (default: the first that loads; also VAE_BACKEND)
  --epochs N       epochs to time (default 4; the first is a warm-up)
  --rows N         training rows from the embedded digits (default 8000)
  --out FILE       JSON output (default build/bench/bench.json)
  --pytorch        also time the same model in PyTorch (python3 bench/pytorch_reference.py)`;

async function main(): Promise<void> {
  const values = parseFlags(process.argv.slice(2), {
    backend: { type: "string" },
    epochs: { type: "string" },
    rows: { type: "string" },
    out: { type: "string" },
    pytorch: { type: "boolean" },
    help: { type: "boolean" },
  } as const);
  if (values.help) return console.log(USAGE);
  const backendName = parseBackendFlag(values.backend);
  const epochs = parseInteger("epochs", values.epochs) ?? 4;
  const rows = parseInteger("rows", values.rows) ?? 8000;
  const config = resolveConfig({ dataSource: "embedded", trainSize: rows, testSize: Math.min(1000, 10_000 - rows) || 1 });
  const backend = await initBackend({ backend: backendName, quiet: true });
  console.log(describeBackend(backend));
  const data = loadMnist(config);
  const result = await benchTraining(config, data, backend, epochs);
  console.log(formatBench(result));
  let pytorch: unknown;
  if (values.pytorch) {
    const script = [path.join(PROJECT_ROOT, "bench", "pytorch_reference.py"), "--epochs", String(epochs), "--rows", String(rows)];
    // The first Python that imports torch: $PYTHON, then python3 on the PATH, then Debian's.
    const candidates = [process.env.PYTHON, "python3", "/usr/bin/python3"].filter((p): p is string => Boolean(p));
    const python = candidates.find((candidate) => spawnSync(candidate, ["-c", "import torch"]).status === 0) ?? "python3";
    const run = spawnSync(python, script, { encoding: "utf8" });
    if (run.status !== 0) throw new UsageError(`The PyTorch reference did not run (is python3 with torch installed? Debian: apt-get install python3-torch): ${run.stderr.trim().split("\n").pop()}`);
    pytorch = JSON.parse(run.stdout.trim().split("\n").pop() as string);
    const figure = pytorch as { framework: string; secondsPer60kEpoch: number; samplesPerSecond: number };
    console.log(`${figure.framework}: ${figure.secondsPer60kEpoch.toFixed(1)} s per 60,000-row epoch, ${Math.round(figure.samplesPerSecond)} samples/s`);
    console.log(`ratio: this backend takes ${(result.secondsPer60kEpoch / figure.secondsPer60kEpoch).toFixed(2)}x PyTorch's time`);
  }
  const file = path.resolve(values.out ?? path.join(PROJECT_ROOT, "build", "bench", "bench.json"));
  writeFileAtomic(file, `${JSON.stringify({ createdAt: new Date().toISOString(), ...result, pytorch }, null, 2)}\n`);
  console.log(`Written ${file}`);
}

if (require.main === module) runMain(main, USAGE);
