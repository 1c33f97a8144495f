/**
 * The tutorial's experiment: for each KL coefficient c, restore the saved initial weights, train,
 * and keep the history, the test metrics, the test set's zMean and the decoded manifold.
 * Introduced in `notebooks/03-kl-sweep.ipynb`; over several training seeds in `notebooks/04-analysis.ipynb`.
 *
 * Each (seed, coefficient) is cached on disk as soon as it finishes (see `cache.ts`), keyed by everything
 * that changes it, so a re-run loads instantly and an interrupted sweep resumes where it stopped.
 */
import * as path from "node:path";
import { initBackend, type BackendInfo } from "../backend/select";
import { crashPoint } from "../system/crashPoint";
import { checkOutputFolder } from "../system/storage";
import {
  CACHE_ELSEWHERE,
  CACHE_VERSION,
  CacheCorruptError,
  EntryStore,
  hashKey,
  StorageError,
  writeFileAtomic,
} from "./cache";
import { tryLock } from "./lock";
import { startSweepWorkers, type WorkerProgress } from "./workers";
import { setWasmGemmThreads } from "../backend/wasmThreadPool";
import { coefficientMetrics, type CoefficientMetrics } from "./metrics";
import { checkConclusionsAcrossSeeds } from "./conclusions";
import { seedSpreads } from "./statistics";
import { resolveConfig, type VaeConfig } from "../vae/config";
import { loadMnist, PROJECT_ROOT, type MnistData } from "../vae/data";
import type { LossTerms } from "../vae/loss";
import { buildModel, setWeights, snapshotWeights, type Vae, type WeightArray } from "../vae/model";
import { decodeManifold, encodeMeans, manifoldGrid } from "../vae/latent";
import { train, type BatchEndEvent, type EpochEndEvent, type EpochRecord } from "../vae/train";

/** A training event of a sweep, with the training seed of its run. */
export type SeedEpochEndEvent = EpochEndEvent & { readonly seed: number };
export type SeedBatchEndEvent = BatchEndEvent & { readonly seed: number };

export const RESULTS_SCHEMA = "vae-kl-sweep/1";
export const DEFAULT_CACHE_DIR = path.join(PROJECT_ROOT, "data", "cache");

export interface CoefficientRun {
  readonly klCoefficient: number;
  /** The training seed: initial weights, shuffles and sampling noise (see `trainingSeeds`). */
  readonly seed: number;
  readonly history: readonly EpochRecord[];
  /** The test-set terms after the last epoch. */
  readonly test: LossTerms;
  /** The encoder's zMean of every test row, row-major [testSize, 2]; labels are `SweepResult.yTest`. */
  readonly zMean: Float32Array;
  /** The decoded manifold, row-major [manifoldSize^2, 784], rows ordered as `manifoldGrid`. */
  readonly manifold: Float32Array;
  /** Every trained weight, concatenated in `vae.getWeights()` order (see `weightsFromFlat`). */
  readonly weights: Float32Array;
  /** Rate, distortion and how close the aggregate zMean is to N(0, I) (see `src/experiment/metrics.ts`). */
  readonly metrics: CoefficientMetrics;
  /** Seconds spent training (as first computed, also when loaded from the cache). */
  readonly trainSeconds: number;
  readonly fromCache: boolean;
}

export interface SweepResult {
  readonly schema: typeof RESULTS_SCHEMA;
  readonly key: string;
  readonly config: VaeConfig;
  readonly backend: BackendInfo;
  readonly data: {
    readonly source: string;
    readonly trainSize: number;
    readonly testSize: number;
    readonly fingerprint: string;
  };
  readonly yTest: Uint8Array;
  readonly gridX: readonly number[];
  readonly gridY: readonly number[];
  /** The runs of the first training seed (`seeds[0]`), one per coefficient; `key` is its cache key. */
  readonly runs: readonly CoefficientRun[];
  /** Every training seed's runs, in the order of `trainingSeeds(config)`; one entry without `config.seeds`. */
  readonly seeds: readonly SeedRuns[];
  readonly wallSeconds: number;
}

/** One training seed's runs of a sweep, one per coefficient, and their cache key. */
export interface SeedRuns {
  readonly seed: number;
  readonly key: string;
  readonly runs: readonly CoefficientRun[];
}

export interface SweepOptions {
  readonly config: VaeConfig;
  /** Defaults to `loadMnist(config)`. */
  readonly data?: MnistData;
  /** Defaults to `initBackend()`. */
  readonly backend?: BackendInfo;
  /** Defaults to `data/cache`; `false` turns the cache off. */
  readonly cacheDir?: string | false;
  /** `worker` is the helper process (1-based) that trains the coefficient; absent for this process. */
  /** `index` and `count` number the coefficients of the run's training `seed`. */
  readonly onRunStart?: (event: {
    klCoefficient: number;
    index: number;
    count: number;
    cached: boolean;
    worker?: number;
    seed: number;
  }) => void;
  readonly onRunEnd?: (run: CoefficientRun, index: number) => void;
  readonly onEpochEnd?: (event: SeedEpochEndEvent) => void;
  readonly onBatchEnd?: (event: SeedBatchEndEvent) => void;
  readonly log?: (line: string) => void;
  /**
   * Extra processes that train other coefficients of the same sweep at the same time (see
   * `src/experiment/workers.ts`); 1 uses the second core of a 2-core machine. Needs the cache. Default 0.
   */
  readonly workers?: number;
}

interface RunMeta {
  readonly klCoefficient: number;
  readonly metrics?: CoefficientMetrics;
  readonly history: EpochRecord[];
  readonly test: LossTerms;
  readonly trainSeconds: number;
}

/** The training seeds of a sweep: `config.seeds`, or `config.seed` alone when that list is empty. */
export function trainingSeeds(config: Pick<VaeConfig, "seed" | "seeds">): number[] {
  return config.seeds.length > 0 ? [...config.seeds] : [config.seed];
}

/**
 * The config a training seed's runs use: its seed draws the initial weights, the shuffles and the
 * sampling noise. The data (split with `config.seed`) and the metrics' reference sample stay the
 * config's, so that every seed is measured on the same test digits.
 */
export function seedConfig(config: VaeConfig, seed: number): VaeConfig {
  return Object.freeze({ ...config, seed, seeds: Object.freeze([]) });
}

/**
 * The cache key: everything that changes a coefficient's result, except the coefficient itself (and
 * the list of seeds: each training seed has a key of its own). Fused multiply-adds (wasm, `VAE_WASM_FMA`)
 * change the last bits, so they get keys of their own; separate multiplies and adds keep the keys they
 * had before fused ones existed (their results are the same). A training seed other than `config.seed`
 * adds the config's seed, which still splits the data and draws the metrics' reference sample; the
 * config's own seed keeps the key it had before several seeds existed.
 */
export function sweepKey(
  config: VaeConfig,
  data: Pick<MnistData, "fingerprint">,
  backend: Pick<BackendInfo, "name" | "fma" | "fusedGradients">,
  seed: number = config.seed,
): string {
  const { klCoefficients: _coefficients, seeds: _seeds, ...rest } = config;
  const arithmetic = backend.fma ? { arithmetic: "fma" } : {};
  // On wasm the fused gradients are the default; tfjs's own differentiation (VAE_FUSED_GRADIENTS=0) differs in
  // the last bits.
  const gradients = backend.fusedGradients === false ? { gradients: "tfjs" } : {};
  const split = seed === config.seed ? {} : { splitSeed: config.seed };
  return hashKey({
    cacheVersion: CACHE_VERSION,
    config: { ...rest, seed },
    data: data.fingerprint,
    backend: backend.name,
    ...arithmetic,
    ...gradients,
    ...split,
  });
}

export function entryName(klCoefficient: number): string {
  return `c=${klCoefficient}`;
}

/** Splits a flat weight vector back into arrays shaped like the model's weights. */
export function weightsFromFlat(model: Vae, flat: Float32Array): WeightArray[] {
  let offset = 0;
  const arrays = model.vae.weights.map((weight) => {
    const size = (weight.shape as number[]).reduce((a, b) => a * b, 1);
    const values = flat.slice(offset, offset + size);
    offset += size;
    return { name: weight.originalName, shape: weight.shape as number[], values };
  });
  if (offset !== flat.length) throw new Error(`Flat weights hold ${flat.length} values but the model needs ${offset}.`);
  return arrays;
}

function flatten(weights: readonly WeightArray[]): Float32Array {
  const flat = new Float32Array(weights.reduce((sum, w) => sum + w.values.length, 0));
  let offset = 0;
  for (const w of weights) {
    flat.set(w.values, offset);
    offset += w.values.length;
  }
  return flat;
}

/** A model holding a run's trained weights, for reconstructions or samples after the sweep. */
export function modelFromRun(config: VaeConfig, run: CoefficientRun): Vae {
  const model = buildModel(config);
  setWeights(model, weightsFromFlat(model, run.weights));
  return model;
}

/**
 * Trains one coefficient from the initial weights and computes what the figures need. `config.seed` is
 * the training seed; `measureSeed` (default the same) draws the metrics' N(0, I) reference sample.
 */
export async function runCoefficient(
  model: Vae,
  initial: readonly WeightArray[],
  config: VaeConfig,
  data: MnistData,
  klCoefficient: number,
  callbacks: { onEpochEnd?: (event: EpochEndEvent) => void; onBatchEnd?: (event: BatchEndEvent) => void } = {},
  measureSeed: number = config.seed,
): Promise<CoefficientRun> {
  setWeights(model, initial);
  const started = performance.now();
  const history = await train(model, {
    config,
    klCoefficient,
    xTrain: data.xTrain,
    xTest: data.xTest,
    onEpochEnd: callbacks.onEpochEnd,
    onBatchEnd: callbacks.onBatchEnd,
  });
  const trainSeconds = (performance.now() - started) / 1000;
  const test = history[history.length - 1].test;
  const zMean = encodeMeans(model, data.xTest, config.originalDim);
  const manifold = decodeManifold(model, config.manifoldSize, config.manifoldExtent);
  return {
    klCoefficient,
    seed: config.seed,
    history,
    test,
    zMean,
    manifold,
    metrics: coefficientMetrics({ klCoefficient, test, zMean, manifold }, measureSeed),
    weights: flatten(snapshotWeights(model)),
    trainSeconds,
    fromCache: false,
  };
}

/**
 * Runs (or loads) every coefficient of `config.klCoefficients`, in order, for every training seed of
 * `trainingSeeds(config)`. Each (seed, coefficient) is one cache entry: seeds trained before load at
 * once, and helper processes (`workers`) share all the pairs left to train.
 */
export async function runSweep(options: SweepOptions): Promise<SweepResult> {
  const started = performance.now();
  // Library callers get the same validation as the command line and the notebooks.
  const config = resolveConfig(options.config);
  const log = options.log ?? (() => undefined);
  const backend = options.backend ?? (await initBackend());
  const data = options.data ?? loadMnist(config);
  const seeds = trainingSeeds(config);
  const keys = seeds.map((seed) => sweepKey(config, data, backend, seed));
  const cacheRoot = options.cacheDir === false ? undefined : (options.cacheDir ?? DEFAULT_CACHE_DIR);
  const stores = keys.map((key) => (cacheRoot === undefined ? undefined : new EntryStore(path.join(cacheRoot, key))));
  const coefficients = config.klCoefficients;
  const count = coefficients.length;
  // Seed by seed, each seed's coefficients in order: task t is seed t / count, coefficient t % count.
  const tasks = seeds.flatMap((_, s) => coefficients.map((_c, index) => ({ s, index })));

  const workerCount = options.workers ?? 0;
  if (!Number.isInteger(workerCount) || workerCount < 0)
    throw new RangeError(`workers must be a whole number >= 0; got ${String(workerCount)}.`);
  if (workerCount > 0 && cacheRoot === undefined)
    throw new RangeError(
      "workers need the cache (they hand results over through it); do not combine them with cacheDir: false.",
    );
  // Worker processes only when something is left to train: starting one costs about a second.
  const untrained = tasks.filter(({ s, index }) => !stores[s]?.has(entryName(coefficients[index]))).length;
  // Each cache folder is made and checked with a write before anything trains, within a time limit (a
  // folder under /proc, a file in its place, a hung mount): a cache that only serves complete entries
  // may be read-only.
  for (const [s, store] of stores.entries()) {
    if (store && coefficients.some((c) => !store.has(entryName(c))))
      await checkOutputFolder(store.dir, {
        role: seeds.length > 1 ? `the cache folder of seed ${seeds[s]}` : "the cache folder",
        elsewhere: CACHE_ELSEWHERE,
      });
  }
  // The workers' progress is passed on to this sweep's callbacks, so that displays show every coefficient.
  const onProgress = (worker: number, progress: WorkerProgress) => {
    if (progress.type === "runStart") {
      const { klCoefficient, index, count, cached, seed } = progress;
      if (!cached) options.onRunStart?.({ klCoefficient, index, count, cached, worker, seed });
    } else if (progress.type === "epochEnd") options.onEpochEnd?.(progress.event);
    else options.onBatchEnd?.(progress.event);
  };
  const workers =
    workerCount > 0 && cacheRoot !== undefined && untrained > 1
      ? startSweepWorkers({
          config,
          cacheDir: cacheRoot,
          backend: backend.name,
          count: Math.min(workerCount, untrained - 1),
          onProgress,
        })
      : undefined;
  // While helper processes fill the other cores, this process's products run on one thread (the
  // thread count changes no bit); the notebook's kernel, for one, started with a thread per core.
  const restoreThreads =
    workers && backend.name === "wasm" && backend.threads > 1
      ? (setWasmGemmThreads(1), () => setWasmGemmThreads(backend.threads))
      : undefined;
  // A worker that fails leaves its coefficient to this process (its lock becomes stale), so the sweep
  // still completes; the failure is reported at the end.
  const workerFailure = workers?.done.then(
    () => undefined,
    (error: Error) => error,
  );

  // The tutorial's `vae.save_weights('vae_init.h5')`: one snapshot per training seed, restored before every run.
  const models = new Map<number, { model: Vae; initial: WeightArray[] }>();
  const trainHere = async (seed: number, klCoefficient: number): Promise<CoefficientRun> => {
    const runConfig = seed === config.seed ? config : seedConfig(config, seed);
    let built = models.get(seed);
    if (!built) {
      const model = buildModel(runConfig);
      built = { model, initial: snapshotWeights(model) };
      models.set(seed, built);
    }
    return runCoefficient(
      built.model,
      built.initial,
      runConfig,
      data,
      klCoefficient,
      {
        onEpochEnd: options.onEpochEnd && ((event) => options.onEpochEnd?.({ ...event, seed })),
        onBatchEnd: options.onBatchEnd && ((event) => options.onBatchEnd?.({ ...event, seed })),
      },
      config.seed,
    );
  };
  const runs = new Map<number, CoefficientRun>();
  // Each coefficient is done under its lock: read from the cache if there, else trained and written.
  // A coefficient locked by another process (a worker, or a second run of the same sweep) is skipped
  // and retried until that process has cached it, or has died and left a stale lock to take over.
  const attempt = async (task: number): Promise<boolean> => {
    const { s, index } = tasks[task];
    const seed = seeds[s];
    const store = stores[s];
    const klCoefficient = coefficients[index];
    const finished = [...runs.entries()].filter(([t]) => tasks[t].s === s).map(([, run]) => run.klCoefficient);
    const release = store ? lockEntry(store, klCoefficient, finished) : () => undefined;
    if (!release) return false;
    try {
      const cached = store
        ? readCachedRun(store, { config, testSize: data.testSize, klCoefficient, seed }, log)
        : undefined;
      // Under the lock no live process writes this entry: whatever part of it is on disk was left by
      // a killed run (blobs without their JSON, temporary files) and goes before training.
      if (store && !cached) store.remove(entryName(klCoefficient));
      options.onRunStart?.({ klCoefficient, index, count, cached: cached !== undefined, seed });
      const run = cached ?? (await trainHere(seed, klCoefficient));
      if (store && !cached) writeRun(store, run, finished);
      crashPoint("entry-written");
      runs.set(task, run);
      options.onRunEnd?.(run, index);
    } finally {
      release();
    }
    crashPoint("coefficient-done");
    return true;
  };
  try {
    let pending = tasks.map((_, task) => task);
    while (pending.length > 0) {
      const skipped: number[] = [];
      for (const task of pending) if (!(await attempt(task))) skipped.push(task);
      if (skipped.length > 0 && skipped.length === pending.length)
        await new Promise((resolve) => setTimeout(resolve, 500));
      // Our own workers' coefficients are on the displays already; another run's are not.
      else if (skipped.length > 0 && !workers)
        log(
          `${skipped.map((t) => pairName(seeds, tasks[t].s, coefficients[tasks[t].index])).join(", ")}: ` +
            "being trained by another process; coming back to it.",
        );
      pending = skipped;
    }
  } finally {
    for (const { model } of models.values()) model.vae.dispose();
    workers?.stop();
    restoreThreads?.();
  }
  const failure = await workerFailure;
  if (failure) log(`${failure.message} Its coefficients were trained here instead.`);
  const { gridX, gridY } = manifoldGrid(config.manifoldSize, config.manifoldExtent);
  const seedRuns = seeds.map((seed, s) => ({
    seed,
    key: keys[s],
    runs: coefficients.map((_, index) => runs.get(s * count + index) as CoefficientRun),
  }));
  return {
    schema: RESULTS_SCHEMA,
    key: keys[0],
    config,
    backend,
    data: { source: data.source, trainSize: data.trainSize, testSize: data.testSize, fingerprint: data.fingerprint },
    yTest: data.yTest,
    gridX,
    gridY,
    runs: seedRuns[0].runs,
    seeds: seedRuns,
    wallSeconds: (performance.now() - started) / 1000,
  };
}

/** `count` consecutive seeds from `first`: `seedRange(42, 5)` is 42, 43, 44, 45, 46. */
export function seedRange(first: number, count: number): number[] {
  if (!Number.isInteger(first) || first < 0 || !Number.isInteger(count) || count < 1)
    throw new RangeError(`seedRange needs a whole first seed >= 0 and count >= 1; got ${first}, ${count}.`);
  return Array.from({ length: count }, (_, i) => first + i);
}

/** Seeds as `npm run sweep -- --seeds` takes them: "42-46" when consecutive, else "1,5,9". */
export function seedsFlag(seeds: readonly number[]): string {
  const consecutive = seeds.length > 2 && seeds.every((seed, i) => seed === seeds[0] + i);
  return consecutive ? `${seeds[0]}-${seeds[seeds.length - 1]}` : seeds.join(",");
}

/** A sweep read from the cache alone: the result when every (seed, c) is there, else what is missing. */
export interface CachedSweep {
  readonly result?: SweepResult;
  readonly missing: readonly { readonly seed: number; readonly klCoefficient: number }[];
}

/**
 * The sweep of `config` (over `trainingSeeds(config)`) when the cache holds every (seed, c), trained
 * by `npm run sweep -- --seeds ...` or an earlier call; nothing is trained. Otherwise the missing pairs.
 */
export async function cachedSweep(
  options: Pick<SweepOptions, "config" | "data" | "backend" | "cacheDir" | "log">,
): Promise<CachedSweep> {
  const config = resolveConfig(options.config);
  const backend = options.backend ?? (await initBackend());
  const data = options.data ?? loadMnist(config);
  const cacheRoot = options.cacheDir === false ? undefined : (options.cacheDir ?? DEFAULT_CACHE_DIR);
  const missing = trainingSeeds(config).flatMap((seed) => {
    const store =
      cacheRoot === undefined ? undefined : new EntryStore(path.join(cacheRoot, sweepKey(config, data, backend, seed)));
    return config.klCoefficients
      .filter((c) => !store?.has(entryName(c)))
      .map((klCoefficient) => ({ seed, klCoefficient }));
  });
  if (missing.length > 0) return { missing };
  return { result: await runSweep({ ...options, config, backend, data }), missing };
}

/** "c = 0.5", or "seed 43, c = 0.5" in a sweep over several seeds. */
function pairName(seeds: readonly number[], s: number, klCoefficient: number): string {
  return seeds.length > 1 ? `seed ${seeds[s]}, c = ${klCoefficient}` : `c = ${klCoefficient}`;
}

/** What finished coefficients become when the cache cannot be written: still there, named in the error. */
function keptNote(store: EntryStore, finished: readonly number[]): string {
  return finished.length > 0
    ? ` Coefficients finished so far are kept in ${store.dir}: c = ${finished.join(", ")}.`
    : "";
}

/**
 * Takes a coefficient's lock (undefined while another process holds it). A cache folder that cannot be
 * written still serves complete entries, which need no lock to read; for a coefficient it would have to
 * train, the `StorageError` is raised before any training, naming the folder and what to do.
 */
function lockEntry(store: EntryStore, klCoefficient: number, finished: readonly number[]): (() => void) | undefined {
  try {
    return tryLock(store.lockPath(entryName(klCoefficient)));
  } catch (error) {
    if (!(error instanceof StorageError)) throw error;
    if (store.has(entryName(klCoefficient))) return () => undefined;
    throw new StorageError(
      `${error.message} c = ${klCoefficient} was not trained: its result could not be cached.` +
        keptNote(store, finished),
      error.file,
      error.code,
    );
  }
}

function writeRun(store: EntryStore, run: CoefficientRun, finished: readonly number[]): void {
  const meta: RunMeta = {
    klCoefficient: run.klCoefficient,
    history: [...run.history],
    test: run.test,
    metrics: run.metrics,
    trainSeconds: run.trainSeconds,
  };
  try {
    store.write(entryName(run.klCoefficient), meta, { zMean: run.zMean, manifold: run.manifold, weights: run.weights });
  } catch (error) {
    if (!(error instanceof StorageError)) throw error;
    throw new StorageError(
      `${error.message} c = ${run.klCoefficient} was trained but not cached.${keptNote(store, finished)}`,
      error.file,
      error.code,
    );
  }
}

/**
 * Values of every weight of the VAE, biases included: the two hidden layers, the two latent heads, the output
 * layer.
 */
function weightCount({ originalDim, intermediateDim, latentDim }: VaeConfig): number {
  return (
    (originalDim + 1) * intermediateDim +
    2 * (intermediateDim + 1) * latentDim +
    (latentDim + 1) * intermediateDim +
    (intermediateDim + 1) * originalDim
  );
}

/**
 * A coefficient's cached run, or undefined when it is not cached. A damaged entry, or one whose arrays
 * do not have the sizes this config and `testSize` test rows give them, is reported through `log`,
 * deleted, and treated as not cached: it is never served. `seed` (default `config.seed`) is the run's
 * training seed; the store must be that seed's (see `sweepKey`).
 */
export function readCachedRun(
  store: EntryStore,
  {
    config,
    testSize,
    klCoefficient,
    seed = config.seed,
  }: { config: VaeConfig; testSize: number; klCoefficient: number; seed?: number },
  log: (line: string) => void,
): CoefficientRun | undefined {
  const name = entryName(klCoefficient);
  try {
    const entry = store.read<RunMeta>(name);
    if (!entry) return undefined;
    const { meta, blobs } = entry;
    if (
      meta?.klCoefficient !== klCoefficient ||
      !Array.isArray(meta.history) ||
      !blobs.zMean ||
      !blobs.manifold ||
      !blobs.weights
    ) {
      throw new CacheCorruptError(`${path.join(store.dir, name)}.json: fields missing or for another coefficient.`);
    }
    const { zMean, manifold, weights } = blobs;
    const sizes = {
      zMean: testSize * config.latentDim,
      manifold: config.manifoldSize ** 2 * config.originalDim,
      weights: weightCount(config),
    };
    for (const [blobName, size] of Object.entries(sizes)) {
      if (blobs[blobName].length !== size)
        throw new CacheCorruptError(
          `${path.join(store.dir, name)}.${blobName}.f32: ${blobs[blobName].length} values, this config needs ${size}.`,
        );
    }
    const metrics =
      meta.metrics ?? coefficientMetrics({ klCoefficient, test: meta.test, zMean, manifold }, config.seed);
    return { ...meta, seed, metrics, zMean, manifold, weights, fromCache: true };
  } catch (error) {
    if (!(error instanceof CacheCorruptError)) throw error;
    log(`Cache entry for c = ${klCoefficient} is damaged and will be recomputed: ${error.message}`);
    store.remove(name);
    return undefined;
  }
}

/** The machine-readable results file: everything but the large arrays (schema in docs/cache-and-results.md). */
export function resultsSummary(result: SweepResult) {
  return {
    schema: result.schema,
    createdAt: new Date().toISOString(),
    key: result.key,
    backend: result.backend,
    seed: result.config.seed,
    config: result.config,
    data: result.data,
    wallSeconds: result.wallSeconds,
    coefficients: result.runs.map(runSummary),
    /** Every training seed's runs (the first one's are `coefficients`). */
    seeds: result.seeds.map(({ seed, key, runs }) => ({ seed, key, coefficients: runs.map(runSummary) })),
    /** Per coefficient, each metric's mean, sample standard deviation (n - 1), min and max over the seeds. */
    statistics: seedSpreads(result),
    /** The tutorial's conclusions, checked seed by seed. */
    conclusions: checkConclusionsAcrossSeeds(result).map(({ claim, holdsIn, seeds, perSeed }) => ({
      claim,
      holdsIn,
      seeds,
      perSeed: perSeed.map(({ seed, holds }) => ({ seed, holds })),
    })),
  };
}

function runSummary(run: CoefficientRun) {
  return {
    klCoefficient: run.klCoefficient,
    seed: run.seed,
    fromCache: run.fromCache,
    trainSeconds: run.trainSeconds,
    test: run.test,
    metrics: run.metrics,
    history: run.history,
  };
}

/** The results file's name: `sweep-<key>.json`, with the seeds after the key in a sweep over several. */
export function resultsFileName(result: Pick<SweepResult, "key" | "seeds">): string {
  if (result.seeds.length <= 1) return `sweep-${result.key}.json`;
  const seeds = result.seeds.map((s) => s.seed);
  const named = seeds.join("_");
  return `sweep-${result.key}-seeds-${named.length <= 60 ? named : `${seeds.length}-${hashKey(seeds)}`}.json`;
}

/**
 * Writes the results file atomically (a reader sees the old file or the new one, never a part); see `results.ts`
 * to read it.
 */
export function writeResults(file: string, result: SweepResult): string {
  writeFileAtomic(
    file,
    `${JSON.stringify(resultsSummary(result), null, 2)}\n`,
    "or choose another results folder (--out DIR)",
  );
  return file;
}
