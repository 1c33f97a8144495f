/**
 * Training coefficients on several cores: extra processes run the same sweep on the same cache
 * folder. The per-coefficient locks (`src/experiment/lock.ts`) make each process take coefficients nobody else is
 * training, and every result lands in the shared cache, so the process that asked for the sweep reads
 * the workers' coefficients from it. Each process has its own TensorFlow.js backend; on wasm, which
 * trains on one core, two processes use both cores of a 2-core machine.
 */
import { OPTIONS } from "../system/options";
import { spawn, type ChildProcess } from "node:child_process";
import * as os from "node:os";
import * as path from "node:path";
import type { BackendName } from "../backend/select";
import type { BatchEndEvent, EpochEndEvent } from "../vae/train";
import type { VaeConfig } from "../vae/config";
import { PROJECT_ROOT } from "../vae/data";
import { WASM_THREADS_ENV } from "../backend/wasmThreads";
import { procStat } from "../system/proc";

export const WORKER_SCRIPT = path.join(PROJECT_ROOT, "src", "cli", "sweepWorker.ts");

export interface WorkerOptions {
  readonly config: VaeConfig;
  readonly cacheDir: string;
  readonly backend: BackendName;
  readonly count: number;
  /** Each worker's progress (its number, 1-based, and the event), for the sweep's displays. */
  readonly onProgress?: (worker: number, progress: WorkerProgress) => void;
}

/** What a worker reports while it trains (sent over the IPC channel by `src/cli/sweepWorker.ts`). */
export type WorkerProgress =
  | {
      readonly type: "runStart";
      readonly klCoefficient: number;
      readonly index: number;
      readonly count: number;
      readonly cached: boolean;
      readonly seed: number;
    }
  | { readonly type: "batchEnd"; readonly event: BatchEndEvent & { readonly seed: number } }
  | { readonly type: "epochEnd"; readonly event: EpochEndEvent & { readonly seed: number } };

export interface Workers {
  /** Resolves when every worker has exited; rejects with the first failure's stderr. */
  readonly done: Promise<void>;
  readonly stop: () => void;
}

/**
 * Coefficients a sweep trains at once by default (`npm run sweep`'s `--jobs auto`, notebook 03): two
 * processes of one thread each on wasm or cpu with two or more cores, which train the sweep faster than
 * one process of two threads; one on tensorflow, whose kernels use every core themselves.
 */
export function autoSweepJobs(backend: BackendName, cores = os.cpus().length): number {
  return backend !== "tensorflow" && cores >= 2 ? 2 : 1;
}

/** Every worker this process started that has not exited, so that a signal can stop them all (`stopAllWorkers`). */
const live = new Set<ChildProcess>();

/** True while the process `pid` runs (a zombie, exited but not yet reaped, counts as gone). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const state = procStat(pid)?.state;
  return state !== "Z" && state !== "X";
}

/**
 * Sends SIGTERM to every live worker and waits, blocking, until each has exited (it releases its locks
 * first) or `timeoutMs` has passed. Blocking on purpose: a signal handler calls it just before the
 * process exits, and nothing else (no training step) must run meanwhile.
 */
export function stopAllWorkers(timeoutMs = 10_000): void {
  const pids = [...live]
    .filter((child) => child.exitCode === null && child.signalCode === null)
    .map((child) => child.pid as number);
  for (const child of live) child.kill("SIGTERM");
  live.clear();
  const deadline = Date.now() + timeoutMs;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  while (pids.some(running) && Date.now() < deadline) Atomics.wait(pause, 0, 0, 20);
}

export function startSweepWorkers({ config, cacheDir, backend, count, onProgress }: WorkerOptions): Workers {
  const children: ChildProcess[] = [];
  const exits: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const child = spawn(process.execPath, ["--import", "tsx", WORKER_SCRIPT, JSON.stringify(config), cacheDir], {
      cwd: PROJECT_ROOT,
      // One wasm thread per process: the processes themselves fill the cores.
      env: { [WASM_THREADS_ENV]: "1", ...process.env, [OPTIONS.backend.name]: backend },
      // The fourth stream is the IPC channel that carries the worker's progress.
      stdio: ["ignore", "ignore", "pipe", "ipc"],
    });
    child.on("message", (message) => onProgress?.(i + 1, message as WorkerProgress));
    let stderr = "";
    child.stderr?.on("data", (chunk) => (stderr += chunk));
    children.push(child);
    live.add(child);
    child.on("exit", () => live.delete(child));
    exits.push(
      new Promise((resolve, reject) =>
        child.on("exit", (code, signal) =>
          code === 0 || signal === "SIGTERM" || signal === "SIGINT"
            ? resolve()
            : reject(new Error(`Sweep worker ${i + 1} failed (code ${code}): ${stderr.trim()}`)),
        ),
      ),
    );
  }
  return {
    done: Promise.all(exits).then(() => undefined),
    stop: () => children.forEach((child) => child.exitCode === null && child.kill("SIGTERM")),
  };
}
