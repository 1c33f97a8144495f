/**
 * `npm run sweep -- [options]`: the tutorial's KL sweep from the command line, with a progress bar
 * per coefficient, a final table, and a JSON results file (schema in the README).
 */
import * as os from "node:os";
import * as path from "node:path";
import { describeBackend, initBackend } from "../backend/select";
import { isProfileName, loadConfig, PROFILE_ENV, type DataSource, type VaeConfig } from "../vae/config";
import { loadMnist, PROJECT_ROOT } from "../vae/data";
import { ProgressPrinter, SweepProgress, summaryTable } from "../notebook/progress";
import { DEFAULT_CACHE_DIR, runSweep, writeResults, type SweepOptions } from "../experiment/sweep";
import { parseBackendFlag, parseFlags, parseInteger, parseNumberList, parsePositive, runMain, UsageError } from "./args";

const USAGE = `usage: npm run sweep -- [options]

  --profile NAME        tutorial (40 epochs, the default) or quick (2 epochs, a subset); also ${PROFILE_ENV}
  --coefficients LIST   KL coefficients, comma-separated (default 0,0.02,0.1,0.5,1,2,10,20)
  --epochs N            epochs per coefficient
  --data SOURCE         auto | embedded | idx (the full MNIST in data/mnist, see npm run fetch-mnist)
  --train-size N        training rows      --test-size N   test rows
  --seed N              seed of every random choice (default 42)
  --learning-rate X     Adam's step size (default 0.001)
  --backend NAME        tensorflow | wasm | cpu (default: the first that loads; also VAE_BACKEND)
  --out DIR             folder of the results JSON (default data/results)
  --jobs N|auto         processes training coefficients at once (default auto: 2 on wasm or cpu
                        with two or more cores, each on one thread; 1 on tensorflow, which uses every core)
  --cache-dir DIR       cache folder (default data/cache)   --no-cache   train everything afresh
  --help                this text`;

export const SWEEP_FLAGS = {
  profile: { type: "string" },
  coefficients: { type: "string" },
  epochs: { type: "string" },
  data: { type: "string" },
  "train-size": { type: "string" },
  "test-size": { type: "string" },
  seed: { type: "string" },
  "learning-rate": { type: "string" },
  backend: { type: "string" },
  out: { type: "string" },
  "cache-dir": { type: "string" },
  "no-cache": { type: "boolean" },
  jobs: { type: "string" },
  help: { type: "boolean" },
} as const;

export function configFromFlags(values: ReturnType<typeof parseFlags<typeof SWEEP_FLAGS>>, env: NodeJS.ProcessEnv = process.env): VaeConfig {
  if (values.profile !== undefined && !isProfileName(values.profile)) {
    throw new UsageError(`--profile "${values.profile}" is not a profile; use tutorial or quick.`);
  }
  if (values.data !== undefined && !["auto", "embedded", "idx"].includes(values.data)) {
    throw new UsageError(`--data "${values.data}" is not a data source; use auto, embedded or idx.`);
  }
  const overrides: Partial<VaeConfig> = {
    ...(values.coefficients !== undefined && { klCoefficients: parseNumberList("coefficients", values.coefficients) }),
    ...(values.epochs !== undefined && { epochs: parseInteger("epochs", values.epochs) }),
    ...(values.data !== undefined && { dataSource: values.data as DataSource }),
    ...(values["train-size"] !== undefined && { trainSize: parseInteger("train-size", values["train-size"]) }),
    ...(values["test-size"] !== undefined && { testSize: parseInteger("test-size", values["test-size"]) }),
    ...(values.seed !== undefined && { seed: parseInteger("seed", values.seed, 0) }),
    ...(values["learning-rate"] !== undefined && { learningRate: parsePositive("learning-rate", values["learning-rate"]) }),
  };
  const profileEnv = values.profile !== undefined ? { ...env, [PROFILE_ENV]: values.profile } : env;
  return loadConfig(overrides, profileEnv);
}

type SweepFlagValues = ReturnType<typeof parseFlags<typeof SWEEP_FLAGS>>;

/**
 * What `npm run sweep`, `npm run figures` and `npm run report` share: the config, backend, data and
 * cache folder their flags name, then the sweep itself (trained, or loaded from the cache).
 */
export async function sweepFromFlags(
  values: SweepFlagValues,
  options: Omit<SweepOptions, "config" | "data" | "backend" | "cacheDir"> & { onSweepStart?: (sweep: { config: VaeConfig; jobs: number }) => void } = {},
) {
  const { onSweepStart, ...sweepOptions } = options;
  const config = configFromFlags(values);
  const backendName = parseBackendFlag(values.backend);
  const auto = values.jobs === undefined || values.jobs === "auto";
  const asked = auto ? undefined : (parseInteger("jobs", values.jobs) as number);
  if (asked !== undefined && asked > 1 && values["no-cache"]) throw new UsageError("--jobs needs the cache: the processes hand results over through it.");
  // Two processes of one thread each train a sweep faster on wasm than one process of two threads
  // (269 s against 352 s for the tutorial's sweep on 2 cores); the native backend uses every core itself.
  const cores = os.cpus().length;
  const autoJobs = auto && !values["no-cache"] && cores >= 2 ? 2 : 1;
  // With several processes, each trains on one core: no wasm threads unless VAE_WASM_THREADS says so.
  const wasmThreads = (asked ?? autoJobs) > 1 && !process.env.VAE_WASM_THREADS ? 1 : undefined;
  const backend = await initBackend({ backend: backendName, quiet: true, wasmThreads });
  const jobs = asked ?? (backend.name === "tensorflow" ? 1 : autoJobs);
  console.log(describeBackend(backend));
  const data = loadMnist(config);
  console.log(
    `Data: ${data.source}, ${data.trainSize} train / ${data.testSize} test digits; ${config.epochs} epochs x ${config.klCoefficients.length} coefficients; ` +
      `up to ${jobs} process${jobs === 1 ? "" : "es"} (--jobs).`,
  );
  onSweepStart?.({ config, jobs });
  const result = await runSweep({
    log: (line) => console.warn(line),
    ...sweepOptions,
    workers: jobs - 1,
    config,
    data,
    backend,
    cacheDir: values["no-cache"] ? false : path.resolve(values["cache-dir"] ?? DEFAULT_CACHE_DIR),
  });
  return { config, data, result };
}

async function main(): Promise<void> {
  const values = parseFlags(process.argv.slice(2), SWEEP_FLAGS);
  if (values.help) return console.log(USAGE);
  let progress: ProgressPrinter | undefined;
  const { result } = await sweepFromFlags(values, {
    onSweepStart: ({ config, jobs }) => (progress = new ProgressPrinter(new SweepProgress(config.klCoefficients, config.epochs, jobs))),
    onRunStart: (event) => progress?.runStart(event),
    onBatchEnd: (event) => progress?.batchEnd(event),
    onEpochEnd: (event) => progress?.epochEnd(event),
    onRunEnd: (run) => progress?.runEnd(run.klCoefficient),
  });
  console.log(`\n${summaryTable(result.runs)}\n`);
  const outDir = path.resolve(values.out ?? path.join(PROJECT_ROOT, "data", "results"));
  const file = writeResults(path.join(outDir, `sweep-${result.key}.json`), result);
  writeResults(path.join(outDir, "latest.json"), result);
  console.log(`Results: ${file} (also latest.json); wall time ${result.wallSeconds.toFixed(1)} s.`);
}

if (require.main === module) runMain(main, USAGE);
