/**
 * `npm run sweep -- [options]`: the tutorial's KL sweep from the command line, with a progress bar
 * per coefficient, a final table, and a JSON results file (schema in docs/cache-and-results.md).
 */
import { option, type Environment } from "../system/options";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describeBackend, initBackend } from "../backend/select";
import { ConfigError, isProfileName, loadConfig, PROFILE_ENV, type DataSource, type VaeConfig } from "../vae/config";
import { DEFAULT_IDX_DIR, loadMnist, PROJECT_ROOT } from "../vae/data";
import { missingIdxFiles } from "../vae/idx";
import { ProgressPrinter, SweepProgress, summaryTable } from "../notebook/progress";
import { releaseHeldLocks } from "../experiment/lock";
import {
  DEFAULT_CACHE_DIR,
  entryName,
  resultsFileName,
  runSweep,
  sweepKey,
  trainingSeeds,
  writeResults,
  type SweepOptions,
} from "../experiment/sweep";
import { seedSpreads, spreadTable } from "../experiment/statistics";
import { checkConclusionsAcrossSeeds, seedConclusionsReport } from "../experiment/conclusions";
import { stopAllWorkers } from "../experiment/workers";
import { checkOutputFolder, type FolderRole } from "../system/storage";
import {
  checkEnvironment,
  parseBackendFlag,
  parseFlags,
  parseInteger,
  parseNumberList,
  parsePositive,
  runMain,
  UsageError,
} from "./args";

const USAGE = `usage: npm run sweep -- [options]

  --profile NAME        tutorial (40 epochs, the default) or quick (2 epochs, a subset); also ${PROFILE_ENV}
  --coefficients LIST   KL coefficients, comma-separated (default 0,0.02,0.1,0.5,1,2,10,20)
  --epochs N            epochs per coefficient
  --data SOURCE         auto | embedded | idx (the full MNIST in data/mnist, see npm run fetch-mnist)
  --train-size N        training rows      --test-size N   test rows
  --seed N              seed of every random choice (default 42)
  --seeds LIST          training seeds, comma-separated, A-B for a range (e.g. 42-46: the tutorial's
                        seed and four more): each seed draws its own initial weights, shuffles and
                        noise; the train/test split stays that of --seed, so all are measured on the
                        same test digits. Prints mean, sample standard deviation, min and max per c
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
  seeds: { type: "string" },
  "learning-rate": { type: "string" },
  backend: { type: "string" },
  out: { type: "string" },
  "cache-dir": { type: "string" },
  "no-cache": { type: "boolean" },
  jobs: { type: "string" },
  help: { type: "boolean" },
} as const;

/** Config field names as the flags that set them, for messages about a command line. */
const FLAG_OF_FIELD: readonly [RegExp, string][] = [
  [/\bklCoefficients\b/g, "--coefficients"],
  [/\btrainSize\b/g, "--train-size"],
  [/\btestSize\b/g, "--test-size"],
  [/\blearningRate\b/g, "--learning-rate"],
  [/\bepochs must\b/g, "--epochs must"],
  [/\bseed must\b/g, "--seed must"],
  [/\(dataSource "idx"\)/g, "(--data idx)"],
  [/\bdataSource\b/g, "--data"],
];

/** A config error worded with the flags the user typed instead of the config's field names. */
function inFlagTerms<T>(work: () => T): T {
  try {
    return work();
  } catch (error) {
    if (!(error instanceof ConfigError) || error.message.includes(PROFILE_ENV)) throw error;
    throw new ConfigError(
      FLAG_OF_FIELD.reduce((message, [field, flag]) => message.replace(field, flag), error.message),
    );
  }
}

export function configFromFlags(
  values: ReturnType<typeof parseFlags<typeof SWEEP_FLAGS>>,
  env?: Environment,
): VaeConfig {
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
    ...(values.seeds !== undefined && { seeds: parseSeedList(values.seeds) }),
    ...(values["learning-rate"] !== undefined && {
      learningRate: parsePositive("learning-rate", values["learning-rate"]),
    }),
  };
  const profileEnv = values.profile !== undefined ? { ...env, [PROFILE_ENV]: values.profile } : env;
  return inFlagTerms(() => loadConfig(overrides, profileEnv));
}

/**
 * A `--seeds` value: whole numbers separated by commas, `A-B` for every seed from A to B. A repeated
 * seed is an error rather than a silently shorter list.
 */
export function parseSeedList(value: string): number[] {
  const parts = value
    .split(",")
    .map((part) => part.trim())
    .filter((part) => part !== "");
  if (parts.length === 0)
    throw new UsageError(`--seeds needs at least one seed, e.g. --seeds 42,43,44 or --seeds 42-46; got "${value}".`);
  const seeds: number[] = [];
  for (const part of parts) {
    const range = /^(\d+)\s*-\s*(\d+)$/.exec(part);
    const [low, high] = range ? [Number(range[1]), Number(range[2])] : [Number(part), Number(part)];
    if (!/^\d+$/.test(part) && !range)
      throw new UsageError(`--seeds: "${part}" is not a whole number >= 0 or a range A-B.`);
    if (high > 0xffffffff) throw new UsageError(`--seeds: "${part}" goes past 4294967295, the largest seed.`);
    if (high < low) throw new UsageError(`--seeds: the range "${part}" runs backwards; write ${high}-${low}.`);
    if (high - low >= 1000)
      throw new UsageError(
        `--seeds: the range "${part}" holds ${high - low + 1} seeds; a sweep of more than 1000 seeds is surely a typo.`,
      );
    for (let seed = low; seed <= high; seed++) {
      if (seeds.includes(seed)) throw new UsageError(`--seeds: seed ${seed} is listed twice in "${value}".`);
      seeds.push(seed);
    }
  }
  return seeds;
}

type SweepFlagValues = ReturnType<typeof parseFlags<typeof SWEEP_FLAGS>>;

/** An output folder of a command, checked before anything trains (see `checkOutputFolder`). */
export interface OutputFolder extends FolderRole {
  readonly dir: string;
}

/** What a sweep of the command line is doing, for the line printed when a signal stops it. */
export interface SweepState {
  config?: VaeConfig;
  /** The cache folder of this sweep's entries; undefined with --no-cache or before it is known. */
  cacheFolder?: string;
  /** With several training seeds, each seed's cache folder (`cacheFolder` is the first's). */
  seedFolders?: { readonly seed: number; readonly folder: string }[];
  /** Coefficients started (trained here or by a worker), with the last epoch finished. */
  readonly started: Map<number, number>;
}

/** How many processes train at once: `--jobs`, or auto; capped at the cores, saying so. */
function jobsFromFlags(values: SweepFlagValues, cores: number): { asked?: number; autoJobs: number } {
  const auto = values.jobs === undefined || values.jobs === "auto";
  let asked = auto ? undefined : (parseInteger("jobs", values.jobs) as number);
  if (asked !== undefined && asked > 1 && values["no-cache"])
    throw new UsageError("--jobs needs the cache: the processes hand results over through it.");
  if (asked !== undefined && asked > cores) {
    console.log(
      `--jobs ${asked}: this machine has ${cores} core${cores === 1 ? "" : "s"}, ` +
        `so ${cores} process${cores === 1 ? "" : "es"} at most.`,
    );
    asked = cores;
  }
  // Two processes of one thread each train a sweep faster on wasm than one process of two threads
  // (docs/performance.md); the native backend uses every core itself.
  return { asked, autoJobs: auto && !values["no-cache"] && cores >= 2 ? 2 : 1 };
}

/** What `auto` data resolved to, and why, when it fell back from an incomplete set of IDX files. */
function dataNote(config: VaeConfig, source: string): string {
  if (config.dataSource !== "auto" || source !== "embedded") return "";
  const missing = missingIdxFiles(DEFAULT_IDX_DIR);
  if (missing.length === 4)
    return ` (--data auto: no IDX files in ${DEFAULT_IDX_DIR}; \`npm run fetch-mnist\` gets the full MNIST)`;
  return (
    ` (--data auto: the IDX set is incomplete, ${missing.map((file) => `${file}(.gz)`).join(", ")} ` +
    `${missing.length === 1 ? "is" : "are"} missing; \`npm run fetch-mnist\` completes it)`
  );
}

/**
 * What `npm run sweep`, `npm run figures` and `npm run report` share: the config, backend, data and
 * cache folder their flags name, then the sweep itself (trained, or loaded from the cache). Every
 * output folder (`outputs`) is made and checked with a write before the backend starts, the cache
 * folder by `runSweep` before it trains anything.
 */
export async function sweepFromFlags(
  values: SweepFlagValues,
  options: Omit<SweepOptions, "config" | "data" | "backend" | "cacheDir"> & {
    onSweepStart?: (sweep: { config: VaeConfig; jobs: number }) => void;
    outputs?: readonly OutputFolder[];
    state?: SweepState;
  } = {},
) {
  const { onSweepStart, outputs = [], state, ...sweepOptions } = options;
  checkEnvironment();
  const config = configFromFlags(values);
  if (state) state.config = config;
  const backendName = parseBackendFlag(values.backend);
  const cores = os.cpus().length;
  const { asked, autoJobs } = jobsFromFlags(values, cores);
  const cacheDir = values["no-cache"] ? false : path.resolve(values["cache-dir"] ?? DEFAULT_CACHE_DIR);
  for (const { dir, ...role } of outputs) await checkOutputFolder(dir, role);
  // With several processes, each trains on one core: no wasm threads unless VAE_WASM_THREADS says so.
  const wasmThreads = (asked ?? autoJobs) > 1 && option("wasmThreads") === undefined ? 1 : undefined;
  const backend = await initBackend({ backend: backendName, quiet: true, wasmThreads });
  const jobs = asked ?? (backend.name === "tensorflow" ? 1 : autoJobs);
  console.log(describeBackend(backend));
  const data = inFlagTerms(() => loadMnist(config));
  console.log(
    `Data: ${data.source}${dataNote(config, data.source)}, ${data.trainSize} train / ${data.testSize} test digits; ` +
      `${config.epochs} epochs x ${config.klCoefficients.length} coefficients` +
      (config.seeds.length > 0
        ? ` x ${config.seeds.length} seeds (${config.seeds.join(", ")}; split with seed ${config.seed})`
        : "") +
      "; " +
      `up to ${jobs} process${jobs === 1 ? "" : "es"} (--jobs).`,
  );
  if (state && cacheDir) {
    const seeds = trainingSeeds(config);
    state.cacheFolder = path.join(cacheDir, sweepKey(config, data, backend, seeds[0]));
    if (seeds.length > 1)
      state.seedFolders = seeds.map((seed) => ({
        seed,
        folder: path.join(cacheDir, sweepKey(config, data, backend, seed)),
      }));
  }
  onSweepStart?.({ config, jobs });
  const track = (klCoefficient: number, epoch: number) =>
    state?.started.set(klCoefficient, Math.max(epoch, state.started.get(klCoefficient) ?? 0));
  const result = await runSweep({
    log: (line) => console.warn(line),
    ...sweepOptions,
    onRunStart: (event) => {
      if (!event.cached) track(event.klCoefficient, 0);
      sweepOptions.onRunStart?.(event);
    },
    onEpochEnd: (event) => {
      track(event.klCoefficient, event.record.epoch);
      sweepOptions.onEpochEnd?.(event);
    },
    workers: jobs - 1,
    config,
    data,
    backend,
    cacheDir,
  });
  return { config, data, result };
}

/**
 * The one line a signal prints: what is kept (the coefficients whose entries are in the cache; the
 * next run resumes from them) and what is dropped (coefficients in training, and with --no-cache
 * everything, since the results file is written only at the end).
 */
export function interruptedLine(signal: string, state: SweepState): string {
  const { config, cacheFolder, started } = state;
  if (!config) return `Interrupted (${signal}) before the sweep started; nothing was trained.`;
  if (state.seedFolders) {
    // Several seeds: what each seed has cached; the runs in training are dropped.
    const perSeed = state.seedFolders.map(({ seed, folder }) => ({
      seed,
      kept: config.klCoefficients.filter((c) => fs.existsSync(path.join(folder, `${entryName(c)}.json`))),
    }));
    const total = perSeed.reduce((sum, s) => sum + s.kept.length, 0);
    const kept = perSeed.filter((s) => s.kept.length > 0).map((s) => `seed ${s.seed}: c = ${s.kept.join(", ")}`);
    return (
      `Interrupted (${signal}): ${total} of ${perSeed.length * config.klCoefficients.length} ` +
      "(seed, c) runs are cached" +
      `${kept.length > 0 ? ` (${kept.join("; ")})` : ""} and the next run resumes from them; ` +
      "the runs in training are dropped."
    );
  }
  const kept = cacheFolder
    ? config.klCoefficients.filter((c) => fs.existsSync(path.join(cacheFolder, `${entryName(c)}.json`)))
    : [];
  const dropped = config.klCoefficients.filter((c) => started.has(c) && !kept.includes(c));
  const untouched = config.klCoefficients.filter((c) => !started.has(c) && !kept.includes(c));
  const list = (cs: number[]) => `c = ${cs.join(", ")}`;
  const keptPart =
    kept.length > 0
      ? `${list(kept)} ${kept.length === 1 ? "is" : "are"} cached in ${cacheFolder} ` +
        `and the next run resumes from ${kept.length === 1 ? "it" : "them"}`
      : cacheFolder
        ? "nothing was cached yet"
        : "nothing is kept (--no-cache)";
  const droppedPart =
    dropped.length > 0
      ? `; dropped: ${dropped
          .map((c) => `c = ${c} (${started.get(c) ? `after epoch ${started.get(c)} of ${config.epochs}` : "starting"})`)
          .join(", ")}`
      : "";
  const untouchedPart = untouched.length > 0 ? `; not started: ${list(untouched)}` : "";
  return `Interrupted (${signal}): ${keptPart}${droppedPart}${untouchedPart}.`;
}

/**
 * Ctrl-C (SIGINT) or SIGTERM: prints `interruptedLine`, stops the worker processes (each releases its
 * locks), releases this process's locks and exits with 128 + the signal's number (130, 143). Entries
 * are written synchronously, so the handler runs between whole steps: nothing half-written is left.
 */
export function exitOnSignals(state: SweepState): void {
  for (const [signal, code] of [
    ["SIGINT", 130],
    ["SIGTERM", 143],
  ] as const) {
    process.once(signal, () => {
      process.stderr.write(`\n${interruptedLine(signal, state)}\n`);
      stopAllWorkers();
      releaseHeldLocks();
      process.exit(code);
    });
  }
}

/** A stream that starts every line with "seed S ", so that the lines of several seeds' runs tell apart. */
function seedStream(seed: number): NodeJS.WriteStream {
  return {
    isTTY: false,
    write: (text: string) => process.stderr.write(text.replace(/^(?=.)/gm, `seed ${seed} `)),
  } as unknown as NodeJS.WriteStream;
}

async function main(): Promise<void> {
  const state: SweepState = { started: new Map() };
  exitOnSignals(state);
  const values = parseFlags(process.argv.slice(2), SWEEP_FLAGS);
  if (values.help) return console.log(USAGE);
  let sweep: { config: VaeConfig; jobs: number } | undefined;
  // One progress display per training seed; with several seeds, line by line with the seed in front.
  const printers = new Map<number, ProgressPrinter>();
  const printer = (seed: number) => {
    let printer = printers.get(seed);
    if (!printer && sweep) {
      const several = sweep.config.seeds.length > 1;
      printer = new ProgressPrinter(
        new SweepProgress(sweep.config.klCoefficients, sweep.config.epochs, sweep.jobs),
        several ? seedStream(seed) : process.stderr,
        several ? false : undefined,
      );
      printers.set(seed, printer);
    }
    return printer;
  };
  const outDir = path.resolve(values.out ?? path.join(PROJECT_ROOT, "data", "results"));
  const { result } = await sweepFromFlags(values, {
    outputs: [
      { dir: outDir, role: "the results folder (--out)", elsewhere: "or name another results folder with --out DIR" },
    ],
    state,
    onSweepStart: (started) => (sweep = started),
    onRunStart: (event) => printer(event.seed)?.runStart(event),
    onBatchEnd: (event) => printer(event.seed)?.batchEnd(event),
    onEpochEnd: (event) => printer(event.seed)?.epochEnd(event),
    onRunEnd: (run) => printer(run.seed)?.runEnd(run.klCoefficient),
  });
  if (result.seeds.length > 1) {
    console.log(
      `\nOver ${result.seeds.length} training seeds (${result.seeds.map((s) => s.seed).join(", ")}), ` +
        `test set of seed ${result.config.seed}: mean ± sample standard deviation (n - 1), [min, max]\n`,
    );
    console.log(`${spreadTable(seedSpreads(result))}\n`);
    console.log(`${seedConclusionsReport(checkConclusionsAcrossSeeds(result))}\n`);
  } else console.log(`\n${summaryTable(result.runs)}\n`);
  const file = writeResults(path.join(outDir, resultsFileName(result)), result);
  writeResults(path.join(outDir, "latest.json"), result);
  console.log(`Results: ${file} (also latest.json); wall time ${result.wallSeconds.toFixed(1)} s.`);
}

if (require.main === module) runMain(main, USAGE);
