/**
 * Picks the TensorFlow.js backend: `wasm` (`@tensorflow/tfjs-backend-wasm` with this project's kernels),
 * else the native `tensorflow` backend of `@tensorflow/tfjs-node` when its binding is built (`npm run
 * setup-tfjs-node`), else the pure-JavaScript `cpu`. `VAE_BACKEND=tensorflow|wasm|cpu` forces one.
 * Introduced in every notebook's first cell.
 */
import * as tf from "@tensorflow/tfjs";
import {
  BACKEND_CHOICES,
  option,
  OPTIONS,
  parseBackendChoice,
  type BackendChoice,
  type Environment,
} from "../system/options";
import type { WasmBackendLike } from "./wasmCode";
import { installWasmGemm, setWasmGemmFma, wasmFmaWanted, wasmGemmFma } from "./wasmGemm";
import { setWasmGemmThreads, startWasmGemmThreads } from "./wasmThreadPool";
import { installWasmColumnSumFix, installWasmIdentityFix, installWasmMatMulFix } from "./wasmKernelFixes";
import { wasmThreadCount, withWasmThreads } from "./wasmThreads";
import { hasFusedGradients } from "./fusedTrainStep";
// Registers Keras's Adam as one fused kernel call per weight array on the wasm and cpu backends.
import "./fusedAdam";
import "./fusedLoss";
import "./fusedGradients";

export type BackendName = BackendChoice;
export const BACKEND_ENV = OPTIONS.backend.name;
export const BACKEND_NAMES: readonly BackendName[] = BACKEND_CHOICES;
/**
 * The order tried when none is forced. wasm comes first because it trains this model faster than
 * tfjs-node here: its training step is one fused kernel call, where tfjs-node runs about 325 taped ops
 * a step, each paying tfjs's and the binding's per-op cost (docs/backends.md).
 */
export const DEFAULT_ORDER: readonly BackendName[] = ["wasm", "tensorflow", "cpu"];
const FIRST_CHOICE_REASON = "the default: faster than tfjs-node for this model";

export interface BackendInfo {
  /** The backend now active in `tf`. */
  readonly name: BackendName;
  /** Why this one: forced by the environment, or which preferred backends could not load. */
  readonly reason: string;
  readonly tfjsVersion: string;
  /** Threads the wasm backend's matrix products use (1 elsewhere). */
  readonly threads: number;
  /**
   * Whether the wasm backend's matrix products use fused multiply-adds (`VAE_WASM_FMA`; results differ
   * in the last bits from separate multiplies and adds, so it is part of the cache key). Absent elsewhere
   * and in results written before it existed.
   */
  readonly fma?: boolean;
  /**
   * Whether training on wasm takes its gradients from the fused kernel (`src/backend/fusedGradients.ts`)
   * rather than tfjs's automatic differentiation (`VAE_FUSED_GRADIENTS=0`); part of the cache key.
   * Absent elsewhere.
   */
  readonly fusedGradients?: boolean;
}

/** Loads the native addon if it is installed; returns why not otherwise. */
function loadNative(): string | undefined {
  try {
    // Required lazily: the package is optional and its absence must not break importing this module.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require("@tensorflow/tfjs-node");
    return undefined;
  } catch (error) {
    const message = error instanceof Error ? error.message.split("\n")[0] : String(error);
    return `@tensorflow/tfjs-node is not usable (${message}; npm run setup-tfjs-node builds it)`;
  }
}

/** How long the threaded build and its product threads may take to start before the backend gives up on threads. */
const THREAD_START_TIMEOUT_MS = 30_000;

/** Threads the wasm backend started with, and why only one when the threaded build failed to start. */
let wasmThreads = { count: 1, note: "" };

async function tryBackend(
  name: BackendName,
  threads: number,
  env: Environment | undefined,
): Promise<string | undefined> {
  if (name === "tensorflow") {
    const failure = loadNative();
    if (failure) return failure;
  } else if (name === "wasm") {
    await import("@tensorflow/tfjs-backend-wasm");
    installWasmMatMulFix();
    installWasmColumnSumFix();
    installWasmIdentityFix();
    installWasmGemm();
    // The products' arithmetic is chosen before any product runs, so that a run never mixes the two.
    setWasmGemmFma(option("wasmFastKernels") && wasmFmaWanted(env));
    if (threads > 1 && !("wasm" in (tf.engine() as unknown as { registry: object }).registry)) {
      try {
        const started = await withWasmThreads(threads, () => tf.setBackend("wasm"), THREAD_START_TIMEOUT_MS);
        if (started.ok) {
          setWasmGemmThreads(started.threads);
          // The product threads are started now, not at the first product, so that training uses them
          // from its first step; if they do not come up, the products stay on the main thread.
          const ready =
            started.threads === 1 ||
            (await startWasmGemmThreads(tf.backend() as unknown as WasmBackendLike, THREAD_START_TIMEOUT_MS));
          if (!ready) setWasmGemmThreads(1);
          wasmThreads = ready
            ? { count: started.threads, note: "" }
            : { count: 1, note: `the matrix-product threads did not start within ${THREAD_START_TIMEOUT_MS / 1000} s` };
          return undefined;
        }
        wasmThreads = { count: 1, note: "the threaded build did not start" };
      } catch (error) {
        wasmThreads = {
          count: 1,
          note: `the threaded build did not start: ${error instanceof Error ? error.message : String(error)}`,
        };
      }
      tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", false);
    }
  }
  try {
    return (await tf.setBackend(name)) ? undefined : `tf.setBackend("${name}") returned false`;
  } catch (error) {
    return `tf.setBackend("${name}") failed: ${error instanceof Error ? error.message : String(error)}`;
  }
}

let active: BackendInfo | undefined;

/**
 * Selects and initialises the backend once per process (later calls return the same answer unless a
 * different backend is asked for). Throws with the reason when a forced backend cannot load.
 */
export async function initBackend(
  options: { backend?: BackendName; env?: Environment; quiet?: boolean; wasmThreads?: number } = {},
): Promise<BackendInfo> {
  const env = options.env;
  const forced = options.backend ?? option("backend", env);
  const threads = options.wasmThreads ?? wasmThreadCount(env);
  if (active && (!forced || forced === active.name)) return active;

  let info: BackendInfo;
  if (forced) {
    const failure = await tryBackend(forced, threads, env);
    if (failure) {
      throw new Error(
        `Backend "${forced}" was asked for but cannot be used: ${failure}. Unset ${BACKEND_ENV} or pick another.`,
      );
    }
    info = {
      name: forced,
      reason: options.backend ? "asked for by the caller" : `forced by ${BACKEND_ENV}`,
      tfjsVersion: tf.version.tfjs,
      threads: 1,
    };
  } else {
    const skipped: string[] = [];
    let chosen: BackendName | undefined;
    for (const name of DEFAULT_ORDER) {
      const failure = await tryBackend(name, threads, env);
      if (!failure) {
        chosen = name;
        break;
      }
      skipped.push(failure);
    }
    if (!chosen) throw new Error(`No TensorFlow.js backend could be initialised: ${skipped.join("; ")}.`);
    const reason = skipped.length === 0 ? FIRST_CHOICE_REASON : `fallback: ${skipped.join("; ")}`;
    info = { name: chosen, reason, tfjsVersion: tf.version.tfjs, threads: 1 };
  }
  if (info.name === "wasm") {
    info = {
      ...info,
      threads: wasmThreads.count,
      fma: wasmGemmFma(),
      fusedGradients: hasFusedGradients("wasm"),
      reason: wasmThreads.note ? `${info.reason}; ${wasmThreads.note}` : info.reason,
    };
  }
  active = Object.freeze(info);
  if (!options.quiet) console.log(describeBackend(active));
  return active;
}

export function describeBackend(info: BackendInfo): string {
  // Results written before threads were recorded have no count.
  const threads =
    info.name !== "wasm" || info.threads === undefined
      ? ""
      : `, ${info.threads} thread${info.threads === 1 ? "" : "s"}`;
  const fma = info.fma === undefined ? "" : info.fma ? ", fused multiply-adds" : ", separate multiplies and adds";
  const gradients = info.fusedGradients === false ? ", gradients by tfjs" : "";
  return `TensorFlow.js ${info.tfjsVersion} on backend "${info.name}" (${info.reason}${threads}${fma}${gradients})`;
}

/** Parses a backend name from a flag or environment variable; undefined when absent. */
export function parseBackendName(value: string | undefined): BackendName | undefined {
  return value === undefined || value.trim() === "" ? undefined : parseBackendChoice(value);
}
