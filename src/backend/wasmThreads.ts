/**
 * Multithreaded wasm in Node. tfjs-backend-wasm's threaded SIMD build is off on Node (tfjs issue #3830):
 * `WASM_HAS_MULTITHREAD_SUPPORT` is hard-coded false and the thread workers load from `blob:` URLs that Node
 * workers cannot open. `withWasmThreads` sets the flag and writes the two worker scripts to a temporary folder
 * (both undone afterwards). The project uses the shared memory: `wasmGemm.ts` splits large products across
 * the main thread and `threads - 1` workers. XNNPACK's own pool stays at one thread, since its spinning
 * threads slow the product workers (docs/performance.md). Results are bit-identical with any thread count
 * (each output element is summed by one thread, in the same order).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { option, OPTIONS, type Environment } from "../system/options";
import { withTimeLimit } from "../system/timeLimit";
import { type EmscriptenModuleLike, isShared, memoryOf } from "./wasmCode";

export const WASM_THREADS_ENV = OPTIONS.wasmThreads.name;

/**
 * The thread count to ask for: `VAE_WASM_THREADS` if set (1 turns threads off), else the number of
 * cores, at most 4 (the model's products gain little beyond that).
 */
export function wasmThreadCount(env?: Environment): number {
  return option("wasmThreads", env) ?? Math.max(1, Math.min(4, os.cpus().length));
}

/** What the threaded build's bundle-level code refers to, declared for the worker's global scope. */
const BUNDLE_PRELUDE =
  "var require$$0=require('fs'),require$$1=require('path')," +
  "require$$3=require('perf_hooks'),require$$4=require('os'),commonjsGlobal=globalThis;\n";
const MAIN_SCRIPT_START = "var WasmBackendModuleThreadedSimd";

interface EmscriptenWorker {
  unref(): void;
  terminate(): unknown;
}
interface ThreadedModule {
  PThread?: { runningWorkers: EmscriptenWorker[]; unusedWorkers: EmscriptenWorker[] };
}

/**
 * Runs `start` (which must call `tf.setBackend("wasm")`) with the threaded wasm build enabled. Returns
 * `threads` when the backend started on shared memory (the products can then use that many threads),
 * else 1. Throws what `start` throws, or a timeout error after `timeoutMs`.
 */
export async function withWasmThreads(
  threads: number,
  start: () => Promise<boolean>,
  timeoutMs = 30_000,
): Promise<{ ok: boolean; threads: number }> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const wasm = require("@tensorflow/tfjs-backend-wasm") as typeof import("@tensorflow/tfjs-backend-wasm");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vae-wasm-threads-"));
  const mainScript = path.join(dir, "main.js");
  const workerScript = path.join(dir, "worker.js");
  const texts = new WeakMap<object, string>();
  const StockBlob = globalThis.Blob;
  const stockCreateObjectURL = URL.createObjectURL;

  // The bundle builds both scripts as Blobs; remember their text so that they can be written as files.
  class RecordingBlob extends StockBlob {
    constructor(...args: ConstructorParameters<typeof Blob>) {
      super(...args);
      const text = (args[0] ?? []).map(String).join("");
      texts.set(this, text);
      if (text.startsWith(MAIN_SCRIPT_START)) fs.writeFileSync(mainScript, BUNDLE_PRELUDE + text);
    }
  }
  globalThis.Blob = RecordingBlob as typeof Blob;
  URL.createObjectURL = (blob: Blob) => {
    const text = texts.get(blob);
    if (text === undefined || text.startsWith(MAIN_SCRIPT_START)) return stockCreateObjectURL(blob);
    // The worker script: make its own createObjectURL (used to load the main script) return the file.
    const marker = '"use strict";';
    if (!text.startsWith(marker)) throw new Error("the threaded wasm worker script has an unexpected form");
    fs.writeFileSync(
      workerScript,
      `${marker}URL.createObjectURL=()=>${JSON.stringify(mainScript)};` +
        `URL.revokeObjectURL=()=>{};${text.slice(marker.length)}`,
    );
    return workerScript;
  };
  tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", true);
  wasm.setThreadsCount(1); // XNNPACK's pool: see the module comment
  try {
    // The build waits for its worker threads to load before it starts; should one never load, give up
    // (the caller then starts the single-threaded build) instead of waiting forever.
    const ok = await withTimeLimit(start(), timeoutMs, () => {
      throw new Error(`it did not start within ${timeoutMs / 1000} s`);
    });
    if (!ok) return { ok, threads: 1 };
    const module = (tf.backend() as unknown as { wasm: ThreadedModule }).wasm;
    // Threads the pool started wait for work for the life of the process; unreferenced, they do not
    // keep Node from exiting. The emscripten pool preloads 8 workers, idle with a pool of one.
    module.PThread?.runningWorkers.forEach((worker) => worker.unref());
    module.PThread?.unusedWorkers.splice(0).forEach((worker) => worker.terminate());
    const memory = memoryOf((tf.backend() as unknown as { wasm: EmscriptenModuleLike }).wasm);
    return { ok, threads: memory && isShared(memory) ? threads : 1 };
  } finally {
    globalThis.Blob = StockBlob;
    URL.createObjectURL = stockCreateObjectURL;
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
