/**
 * The tutorial's experiment: for each KL coefficient c, restore the saved initial weights, train,
 * and keep the history, the test metrics, the test set's zMean and the decoded manifold.
 * Introduced in `notebooks/03-kl-sweep.ipynb`.
 *
 * Each coefficient is cached on disk as soon as it finishes (see `cache.ts`), keyed by everything
 * that changes it, so a re-run loads instantly and an interrupted sweep resumes where it stopped.
 */
import * as path from "node:path";
import { initBackend, type BackendInfo } from "../backend/select";
import { crashPoint } from "../system/crashPoint";
import { checkOutputFolder } from "../system/storage";
import { CACHE_ELSEWHERE, CACHE_VERSION, CacheCorruptError, EntryStore, hashKey, StorageError, writeFileAtomic } from "./cache";
import { tryLock } from "./lock";
import { startSweepWorkers, type WorkerProgress } from "./workers";
import { setWasmGemmThreads } from "../backend/wasmThreadPool";
import { coefficientMetrics, type CoefficientMetrics } from "./metrics";
import { resolveConfig, type VaeConfig } from "../vae/config";
import { loadMnist, PROJECT_ROOT, type MnistData } from "../vae/data";
import type { LossTerms } from "../vae/loss";
import { buildModel, setWeights, snapshotWeights, type Vae, type WeightArray } from "../vae/model";
import { decodeManifold, encodeMeans, manifoldGrid } from "../vae/latent";
import { train, type BatchEndEvent, type EpochEndEvent, type EpochRecord } from "../vae/train";

export const RESULTS_SCHEMA = "vae-kl-sweep/1";
export const DEFAULT_CACHE_DIR = path.join(PROJECT_ROOT, "data", "cache");

export interface CoefficientRun {
  readonly klCoefficient: number;
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
  readonly data: { readonly source: string; readonly trainSize: number; readonly testSize: number; readonly fingerprint: string };
  readonly yTest: Uint8Array;
  readonly gridX: readonly number[];
  readonly gridY: readonly number[];
  readonly runs: readonly CoefficientRun[];
  readonly wallSeconds: number;
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
  readonly onRunStart?: (event: { klCoefficient: number; index: number; count: number; cached: boolean; worker?: number }) => void;
  readonly onRunEnd?: (run: CoefficientRun, index: number) => void;
  readonly onEpochEnd?: (event: EpochEndEvent) => void;
  readonly onBatchEnd?: (event: BatchEndEvent) => void;
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

/**
 * The cache key: everything that changes a coefficient's result, except the coefficient itself. Fused
 * multiply-adds (wasm, `VAE_WASM_FMA`) change the last bits, so they get keys of their own; separate
 * multiplies and adds keep the keys they had before fused ones existed (their results are the same).
 */
export function sweepKey(config: VaeConfig, data: Pick<MnistData, "fingerprint">, backend: Pick<BackendInfo, "name" | "fma" | "fusedGradients">): string {
  const { klCoefficients: _coefficients, ...rest } = config;
  const arithmetic = backend.fma ? { arithmetic: "fma" } : {};
  // On wasm the fused gradients are the default; tfjs's own differentiation (VAE_FUSED_GRADIENTS=0) differs in the last bits.
  const gradients = backend.fusedGradients === false ? { gradients: "tfjs" } : {};
  return hashKey({ cacheVersion: CACHE_VERSION, config: rest, data: data.fingerprint, backend: backend.name, ...arithmetic, ...gradients });
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

/** Trains one coefficient from the initial weights and computes what the figures need. */
export async function runCoefficient(
  model: Vae,
  initial: readonly WeightArray[],
  config: VaeConfig,
  data: MnistData,
  klCoefficient: number,
  callbacks: Pick<SweepOptions, "onEpochEnd" | "onBatchEnd"> = {},
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
    history,
    test,
    zMean,
    manifold,
    metrics: coefficientMetrics({ klCoefficient, test, zMean, manifold }, config.seed),
    weights: flatten(snapshotWeights(model)),
    trainSeconds,
    fromCache: false,
  };
}

/** Runs (or loads) every coefficient of `config.klCoefficients`, in order. */
export async function runSweep(options: SweepOptions): Promise<SweepResult> {
  const started = performance.now();
  // Library callers get the same validation as the command line and the notebooks.
  const config = resolveConfig(options.config);
  const log = options.log ?? (() => undefined);
  const backend = options.backend ?? (await initBackend());
  const data = options.data ?? loadMnist(config);
  const key = sweepKey(config, data, backend);
  const store = options.cacheDir === false ? undefined : new EntryStore(path.join(options.cacheDir ?? DEFAULT_CACHE_DIR, key));

  const workerCount = options.workers ?? 0;
  if (!Number.isInteger(workerCount) || workerCount < 0) throw new RangeError(`workers must be a whole number >= 0; got ${String(workerCount)}.`);
  if (workerCount > 0 && !store) throw new RangeError("workers need the cache (they hand results over through it); do not combine them with cacheDir: false.");
  // Worker processes only when something is left to train: starting one costs about a second.
  const untrained = store ? config.klCoefficients.filter((c) => !store.has(entryName(c))).length : config.klCoefficients.length;
  // The cache folder is made and checked with a write before anything trains, within a time limit (a
  // folder under /proc, a file in its place, a hung mount): a cache that only serves complete entries
  // may be read-only.
  if (store && untrained > 0) await checkOutputFolder(store.dir, { role: "the cache folder", elsewhere: CACHE_ELSEWHERE });
  // The workers' progress is passed on to this sweep's callbacks, so that displays show every coefficient.
  const onProgress = (worker: number, progress: WorkerProgress) => {
    if (progress.type === "runStart") {
      const { klCoefficient, index, count, cached } = progress;
      if (!cached) options.onRunStart?.({ klCoefficient, index, count, cached, worker });
    } else if (progress.type === "epochEnd") options.onEpochEnd?.(progress.event);
    else options.onBatchEnd?.(progress.event);
  };
  const workers =
    workerCount > 0 && store && untrained > 1
      ? startSweepWorkers({ config, cacheDir: path.dirname(store.dir), backend: backend.name, count: Math.min(workerCount, untrained - 1), onProgress })
      : undefined;
  // While helper processes fill the other cores, this process's products run on one thread (the
  // thread count changes no bit); the notebook's kernel, for one, started with a thread per core.
  const restoreThreads = workers && backend.name === "wasm" && backend.threads > 1 ? (setWasmGemmThreads(1), () => setWasmGemmThreads(backend.threads)) : undefined;
  // A worker that fails leaves its coefficient to this process (its lock becomes stale), so the sweep
  // still completes; the failure is reported at the end.
  const workerFailure = workers?.done.then(() => undefined, (error: Error) => error);

  let model: Vae | undefined;
  let initial: WeightArray[] | undefined;
  const trainHere = async (klCoefficient: number): Promise<CoefficientRun> => {
    if (!model) {
      // The tutorial's `vae.save_weights('vae_init.h5')`: one snapshot, restored before every run.
      model = buildModel(config);
      initial = snapshotWeights(model);
    }
    return runCoefficient(model, initial as WeightArray[], config, data, klCoefficient, options);
  };
  const count = config.klCoefficients.length;
  const runs = new Map<number, CoefficientRun>();
  // Each coefficient is done under its lock: read from the cache if there, else trained and written.
  // A coefficient locked by another process (a worker, or a second run of the same sweep) is skipped
  // and retried until that process has cached it, or has died and left a stale lock to take over.
  const attempt = async (index: number): Promise<boolean> => {
    const klCoefficient = config.klCoefficients[index];
    const finished = [...runs.values()].map((run) => run.klCoefficient);
    const release = store ? lockEntry(store, klCoefficient, finished) : () => undefined;
    if (!release) return false;
    try {
      const cached = store ? readCachedRun(store, { config, testSize: data.testSize, klCoefficient }, log) : undefined;
      // Under the lock no live process writes this entry: whatever part of it is on disk was left by
      // a killed run (blobs without their JSON, temporary files) and goes before training.
      if (store && !cached) store.remove(entryName(klCoefficient));
      options.onRunStart?.({ klCoefficient, index, count, cached: cached !== undefined });
      const run = cached ?? (await trainHere(klCoefficient));
      if (store && !cached) writeRun(store, run, finished);
      crashPoint("entry-written");
      runs.set(index, run);
      options.onRunEnd?.(run, index);
    } finally {
      release();
    }
    crashPoint("coefficient-done");
    return true;
  };
  try {
    let pending = config.klCoefficients.map((_, index) => index);
    while (pending.length > 0) {
      const skipped: number[] = [];
      for (const index of pending) if (!(await attempt(index))) skipped.push(index);
      if (skipped.length > 0 && skipped.length === pending.length) await new Promise((resolve) => setTimeout(resolve, 500));
      // Our own workers' coefficients are on the displays already; another run's are not.
      else if (skipped.length > 0 && !workers) log(`c = ${skipped.map((i) => config.klCoefficients[i]).join(", ")}: being trained by another process; coming back to it.`);
      pending = skipped;
    }
  } finally {
    if (model) (model as Vae).vae.dispose();
    workers?.stop();
    restoreThreads?.();
  }
  const failure = await workerFailure;
  if (failure) log(`${failure.message} Its coefficients were trained here instead.`);
  const { gridX, gridY } = manifoldGrid(config.manifoldSize, config.manifoldExtent);
  return {
    schema: RESULTS_SCHEMA,
    key,
    config,
    backend,
    data: { source: data.source, trainSize: data.trainSize, testSize: data.testSize, fingerprint: data.fingerprint },
    yTest: data.yTest,
    gridX,
    gridY,
    runs: config.klCoefficients.map((_, index) => runs.get(index) as CoefficientRun),
    wallSeconds: (performance.now() - started) / 1000,
  };
}

/** What finished coefficients become when the cache cannot be written: still there, named in the error. */
function keptNote(store: EntryStore, finished: readonly number[]): string {
  return finished.length > 0 ? ` Coefficients finished so far are kept in ${store.dir}: c = ${finished.join(", ")}.` : "";
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
    throw new StorageError(`${error.message} c = ${klCoefficient} was not trained: its result could not be cached.${keptNote(store, finished)}`, error.file, error.code);
  }
}

function writeRun(store: EntryStore, run: CoefficientRun, finished: readonly number[]): void {
  const meta: RunMeta = { klCoefficient: run.klCoefficient, history: [...run.history], test: run.test, metrics: run.metrics, trainSeconds: run.trainSeconds };
  try {
    store.write(entryName(run.klCoefficient), meta, { zMean: run.zMean, manifold: run.manifold, weights: run.weights });
  } catch (error) {
    if (!(error instanceof StorageError)) throw error;
    throw new StorageError(`${error.message} c = ${run.klCoefficient} was trained but not cached.${keptNote(store, finished)}`, error.file, error.code);
  }
}

/** Values of every weight of the VAE, biases included: the two hidden layers, the two latent heads, the output layer. */
function weightCount({ originalDim, intermediateDim, latentDim }: VaeConfig): number {
  return (originalDim + 1) * intermediateDim + 2 * (intermediateDim + 1) * latentDim + (latentDim + 1) * intermediateDim + (intermediateDim + 1) * originalDim;
}

/**
 * A coefficient's cached run, or undefined when it is not cached. A damaged entry, or one whose arrays
 * do not have the sizes this config and `testSize` test rows give them, is reported through `log`,
 * deleted, and treated as not cached: it is never served.
 */
export function readCachedRun(
  store: EntryStore,
  { config, testSize, klCoefficient }: { config: VaeConfig; testSize: number; klCoefficient: number },
  log: (line: string) => void,
): CoefficientRun | undefined {
  const name = entryName(klCoefficient);
  try {
    const entry = store.read<RunMeta>(name);
    if (!entry) return undefined;
    const { meta, blobs } = entry;
    if (meta?.klCoefficient !== klCoefficient || !Array.isArray(meta.history) || !blobs.zMean || !blobs.manifold || !blobs.weights) {
      throw new CacheCorruptError(`${path.join(store.dir, name)}.json: fields missing or for another coefficient.`);
    }
    const { zMean, manifold, weights } = blobs;
    const sizes = { zMean: testSize * config.latentDim, manifold: config.manifoldSize ** 2 * config.originalDim, weights: weightCount(config) };
    for (const [blobName, size] of Object.entries(sizes)) {
      if (blobs[blobName].length !== size) throw new CacheCorruptError(`${path.join(store.dir, name)}.${blobName}.f32: ${blobs[blobName].length} values, this config needs ${size}.`);
    }
    const metrics = meta.metrics ?? coefficientMetrics({ klCoefficient, test: meta.test, zMean, manifold }, config.seed);
    return { ...meta, metrics, zMean, manifold, weights, fromCache: true };
  } catch (error) {
    if (!(error instanceof CacheCorruptError)) throw error;
    log(`Cache entry for c = ${klCoefficient} is damaged and will be recomputed: ${error.message}`);
    store.remove(name);
    return undefined;
  }
}

/** The machine-readable results file: everything but the large arrays (schema in the README). */
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
    coefficients: result.runs.map((run) => ({
      klCoefficient: run.klCoefficient,
      fromCache: run.fromCache,
      trainSeconds: run.trainSeconds,
      test: run.test,
      metrics: run.metrics,
      history: run.history,
    })),
  };
}

/** Writes the results file atomically (a reader sees the old file or the new one, never a part); see `results.ts` to read it. */
export function writeResults(file: string, result: SweepResult): string {
  writeFileAtomic(file, `${JSON.stringify(resultsSummary(result), null, 2)}\n`, "or choose another results folder (--out DIR)");
  return file;
}
