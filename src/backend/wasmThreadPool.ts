/**
 * The wasm engine's thread pool: Node workers that instantiate the same generated loops on the same
 * shared memory and are woken with `Atomics`. A product's rows, or an element-wise loop's items, are split
 * across the main thread and the helpers; each output element is still computed by one thread, so the
 * thread count changes no bit. Also runs a whole product or loop on one free helper while the main thread
 * goes on (`runOnHelper`).
 */
import { MessageChannel, type MessagePort, Worker } from "node:worker_threads";
import { type MemoryLike, type WasmBackendLike, instantiate, isShared, memoryOf } from "./wasmCode";
import {
  type GemmLoop,
  type GemmSpec,
  gemmModule,
  MIN_THREADED_MULTIPLY_ADDS,
  sparseGemmModule,
  TILE_ROWS,
} from "./wasmGemmCode";

/**
 * The worker: says it is ready, then waits on its control block, compiles the loops it is sent and runs
 * one call per wake-up. Whatever goes wrong is reported in the control block (slot 8 for one call, slot 9
 * for the thread itself), so that the main thread never waits for a helper that is gone.
 */
const WORKER_SOURCE = `
const { workerData, receiveMessageOnPort } = require("node:worker_threads");
const { memory, control, clock, port, spinMs: SPIN_MS } = workerData;
const ctl = new Int32Array(control);
const finished = new Float64Array(clock);
const loops = [];
let last = 0;
Atomics.store(ctl, 9, 1);
try {
  for (;;) {
    // Poll for the next call a while before sleeping: products come every millisecond or so while a
    // model trains, and waking a thread asleep in Atomics.wait holds up the main thread's
    // Atomics.notify (docs/performance.md). Slot 11 says whether it sleeps (and needs waking).
    // (The clock is read every 1,024 polls: each reading allocates, and a poll that allocates sets off
    // a garbage collection of the thread every few steps.)
    const until = performance.now() + SPIN_MS;
    for (let polls = 1; Atomics.load(ctl, 0) === last; polls++) if ((polls & 1023) === 0 && performance.now() > until) break;
    if (Atomics.load(ctl, 0) === last) {
      Atomics.store(ctl, 11, 1);
      Atomics.wait(ctl, 0, last);
      Atomics.store(ctl, 11, 0);
    }
    const seq = Atomics.load(ctl, 0);
    if (seq === last) continue;
    last = seq;
    if (seq === -1) break;
    try {
      for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
        loops[m.message.id] = new WebAssembly.Instance(new WebAssembly.Module(m.message.bytes), { env: { memory } }).exports.gemm;
      }
      finished[0] = performance.timeOrigin + performance.now();
      loops[ctl[2]](ctl[3], ctl[4], ctl[5], ctl[6], ctl[7]);
      finished[1] = performance.timeOrigin + performance.now();
      ctl[8] = 0;
    } catch (error) {
      ctl[8] = 1;
    }
    Atomics.store(ctl, 1, seq);
    Atomics.notify(ctl, 1);
  }
} finally {
  Atomics.store(ctl, 9, 2);
  Atomics.notify(ctl, 1);
}
`;

/**
 * Control block slots: 0 call number (-1 stops), 1 finished call, 2 loop id, 3-7 arguments, 8 the call
 * failed, 9 the helper's state (0 starting, 1 ready, 2 gone), 11 the helper sleeps in Atomics.wait.
 */
const CONTROL_INTS = 16;
/** How long a helper polls for the next call before it sleeps (milliseconds). */
const HELPER_SPIN_MS = 5;

/**
 * Hands the call just written to the helper's control block: stores its number, and wakes the helper
 * only if it sleeps (a helper that polls sees the number). The helper marks itself asleep before it
 * waits, and Atomics.wait returns at once if the number changed in between, so no call is missed.
 */
function wake(helper: Helper): void {
  Atomics.store(helper.control, 0, helper.calls);
  if (Atomics.load(helper.control, 11) === 1) Atomics.notify(helper.control, 0);
}

/** Polls of a helper's result before the main thread sleeps until it comes. */
const SPIN_LIMIT = 100_000;
/** A helper that has not answered by then is taken for dead (a product takes milliseconds). */
const HELPER_TIMEOUT_MS = 60_000;
const READY = 1;
const GONE = 2;

interface Helper {
  /** A call started by `runOnHelper` and not yet collected: its number and arguments. */
  pending?: { call: number; args: number[] };
  worker: Worker;
  port: MessagePort;
  control: Int32Array;
  /** When the helper started and finished its last call (performance.timeOrigin + performance.now(), ms). */
  finished: Float64Array;
  /** Loop ids already sent to this worker. */
  sent: Set<number>;
  calls: number;
}

/** The loops compiled for one memory, and the helper threads working on it. */
export class GemmRunner {
  private readonly loops: GemmLoop[] = [];
  private readonly bytes: Uint8Array[] = [];
  private readonly ids = new Map<string, number>();
  private helpers: Helper[] | undefined;

  constructor(private readonly memory: MemoryLike) {}

  private abandoned = false;

  /** Threads to split over: only a shared memory can be worked on by several. */
  private get threads(): number {
    return isShared(this.memory) && !this.abandoned ? gemmThreads : 1;
  }

  /** Stops the helpers for good in this process; with `why`, says so once (results do not change). */
  private abandonThreads(why?: string): void {
    this.stop();
    this.abandoned = true;
    if (why)
      process.emitWarning(
        `${why}; the matrix products go on in one thread (same results, slower). ` +
          "Set VAE_WASM_THREADS=1 to start without threads.",
      );
  }

  private readonly mainLoops = new Map<string, ((p0: number, p1: number) => void) | null>();

  /**
   * A two-argument loop on this memory that runs on the main thread (packing, row lists), compiled on
   * first use; null where it cannot be. Its module exports it as `run`.
   */
  helperLoop(key: string, build: (shared: boolean) => Uint8Array): ((p0: number, p1: number) => void) | null {
    let loop = this.mainLoops.get(key);
    if (loop === undefined) {
      loop = instantiate<(p0: number, p1: number) => void>(build(isShared(this.memory)), this.memory, "run");
      this.mainLoops.set(key, loop);
    }
    return loop;
  }

  /** The id of a loop of the products' signature (a product, or `runSplitLoop`'s), compiled on first use. */
  customLoopId(key: string, build: (shared: boolean) => Uint8Array): number | undefined {
    let id = this.ids.get(key);
    if (id === undefined) {
      const bytes = build(isShared(this.memory));
      const loop = instantiate<GemmLoop>(bytes, this.memory, "gemm");
      if (!loop) return undefined;
      id = this.loops.length;
      this.loops.push(loop);
      this.bytes.push(bytes);
      this.ids.set(key, id);
    }
    return id;
  }

  /** The id of the loop for `spec`, compiling it on first use; undefined where it cannot be compiled. */
  loopId(spec: GemmSpec): number | undefined {
    return this.customLoopId(JSON.stringify(spec), (shared) =>
      (spec.sparse ? sparseGemmModule : gemmModule)(spec, shared),
    );
  }

  /**
   * Runs loop `id` over `rows` rows, split into tile-aligned parts across the main thread and the helpers
   * that are ready. A helper still starting up (Node workers take tens of milliseconds) or gone is not
   * waited for: the main thread takes its share, so a product never depends on a thread starting.
   */
  run(
    id: number,
    spec: GemmSpec,
    a: number,
    b: number,
    out: number,
    bias: number,
    rows: number,
    multiplyAdds = rows * spec.columns * spec.depth,
  ): void {
    const tiles = Math.ceil(rows / TILE_ROWS);
    const wanted = multiplyAdds < MIN_THREADED_MULTIPLY_ADDS ? 1 : Math.min(this.threads, tiles);
    // Helpers busy with a call of `runOnHelper` are left out (or collected first, if done).
    const helpers =
      wanted > 1
        ? this.startHelpers()
            .filter((h) => Atomics.load(h.control, 9) === READY && (!h.pending || this.collectIfDone(h)))
            .slice(0, wanted - 1)
        : [];
    const parts = helpers.length + 1;
    this.lastParts = parts;
    // Part p gets tiles [start(p), start(p + 1)); the main thread takes part 0. The parts' sizes follow
    // the threads' measured speeds on this loop (`split`).
    const shareKey = `${id}/${parts}`;
    const fractions = (balance && this.split(shareKey, rows)) || new Array<number>(parts).fill(1 / parts);
    const bounds = [0];
    for (let p = 0, sum = 0; p < parts; p++) {
      sum += fractions[p];
      bounds.push(p === parts - 1 ? rows : Math.min(rows, Math.round(sum * tiles) * TILE_ROWS));
    }
    const start = (p: number) => bounds[p];
    this.lastSplit = bounds.slice(1).map((end, p) => end - bounds[p]);
    const started = performance.timeOrigin + performance.now();
    const shares = helpers.map((helper, h) => {
      const first = start(h + 1);
      if (!helper.sent.has(id)) {
        helper.port.postMessage({ id, bytes: this.bytes[id] });
        helper.sent.add(id);
      }
      const args = [id, a + first * spec.aRowStride, b, out + first * spec.outRowStride, bias, start(h + 2) - first];
      helper.control.set(args, 2);
      helper.calls = helper.calls === 0x7fffffff ? 1 : helper.calls + 1;
      wake(helper);
      return args;
    });
    this.loops[id](a, b, out, bias, start(1));
    const mainFinished = performance.timeOrigin + performance.now();
    let lost: string | undefined;
    for (const [h, helper] of helpers.entries()) {
      const failure = this.awaitHelper(helper);
      if (failure) {
        // The call failed, or the thread ended; either way it writes nothing more: compute its share here.
        const [, partA, partB, partOut, partBias, partRows] = shares[h];
        this.loops[id](partA, partB, partOut, partBias, partRows);
        lost = failure;
      }
    }
    if (lost) return this.abandonThreads(lost);
    if (parts > 1) {
      const times = helpers.map((helper) => ({
        start: helper.finished[0] - started,
        end: helper.finished[1] - started,
      }));
      this.measure(shareKey, bounds, [{ start: 0, end: mainFinished - started }, ...times]);
    }
  }

  /**
   * Each loop's threads as measured (key: loop id / parts): rows per millisecond of each part while it
   * runs, and how long after the call each started (a helper asleep in Atomics.wait wakes a good part
   * of a millisecond after the main thread; a busy core runs it slower). Averaged over calls.
   */
  private readonly speeds = new Map<string, { rates: number[]; delays: number[] }>();

  /**
   * The split of `rows` rows that makes every thread finish together, as fractions: with rate r_p and
   * start delay d_p, part p finishes at d_p + rows_p / r_p; the common finish T solves
   * sum_p (T - d_p) r_p = rows. Undefined before the loop's first measured call.
   */
  private split(key: string, rows: number): number[] | undefined {
    const speed = this.speeds.get(key);
    if (!speed) return undefined;
    const { rates, delays } = speed;
    const total = rates.reduce((x, y) => x + y, 0);
    const finish = (rows + rates.reduce((sum, rate, p) => sum + rate * delays[p], 0)) / total;
    // No part below a twentieth of the rows, so that every thread keeps being measured.
    const parts = rates.map((rate, p) => Math.max(rows / 20, (finish - delays[p]) * rate));
    const sum = parts.reduce((x, y) => x + y, 0);
    return parts.map((part) => part / sum);
  }

  private measure(key: string, bounds: number[], times: { start: number; end: number }[]): void {
    const rates = times.map(({ start, end }, p) => (bounds[p + 1] - bounds[p]) / Math.max(end - start, 1e-3));
    const delays = times.map(({ start }) => Math.max(0, start));
    if (rates.some((rate) => !(rate > 0) || !Number.isFinite(rate)) || delays.some((delay) => !Number.isFinite(delay)))
      return;
    const previous = this.speeds.get(key);
    const smooth = (old: number[] | undefined, now: number[]) =>
      old ? old.map((value, p) => 0.7 * value + 0.3 * now[p]) : now;
    this.speeds.set(key, { rates: smooth(previous?.rates, rates), delays: smooth(previous?.delays, delays) });
  }

  /**
   * Starts loop `id` over all `rows` rows on one free helper and returns a function that waits for it
   * (and computes its rows here if the helper failed or ended). With no free helper, computes the rows
   * here at once and returns a function with nothing to do.
   */
  runOnHelper(id: number, a: number, b: number, out: number, bias: number, rows: number): () => void {
    const helper =
      this.threads > 1
        ? this.startHelpers().find((h) => Atomics.load(h.control, 9) === READY && (!h.pending || this.collectIfDone(h)))
        : undefined;
    if (!helper) {
      this.loops[id](a, b, out, bias, rows);
      return () => {};
    }
    if (!helper.sent.has(id)) {
      helper.port.postMessage({ id, bytes: this.bytes[id] });
      helper.sent.add(id);
    }
    const args = [id, a, b, out, bias, rows];
    helper.control.set(args, 2);
    helper.calls = helper.calls === 0x7fffffff ? 1 : helper.calls + 1;
    helper.pending = { call: helper.calls, args };
    wake(helper);
    return () => {
      if (helper.pending?.call === helper.calls) this.collect(helper);
    };
  }

  /** Whether a helper is ready and not busy with a call of `runOnHelper`. */
  hasFreeHelper(): boolean {
    return (
      this.threads > 1 &&
      (this.helpers ?? []).some((h) => Atomics.load(h.control, 9) === READY && (!h.pending || this.collectIfDone(h)))
    );
  }

  /** Collects a helper's pending call if it is done; true then (the helper is free again). */
  private collectIfDone(helper: Helper): boolean {
    if (Atomics.load(helper.control, 1) !== helper.calls && Atomics.load(helper.control, 9) !== GONE) return false;
    this.collect(helper);
    return true;
  }

  /** Waits for a helper's pending call; computes it here if the helper failed or ended. */
  private collect(helper: Helper): void {
    const pending = helper.pending;
    if (!pending) return;
    helper.pending = undefined;
    const lost = this.awaitHelper(helper);
    if (lost) {
      const [id, ...args] = pending.args;
      this.loops[id](args[0], args[1], args[2], args[3], args[4]);
      this.abandonThreads(lost);
    }
  }

  /**
   * Waits for the helper's current call: polls first (it is about done when the main thread's share
   * is), then sleeps. Returns why it failed, if it did; throws if it does not answer at all.
   */
  private awaitHelper(helper: Helper): string | undefined {
    let spins = 0;
    const waitedSince = Date.now();
    let done = Atomics.load(helper.control, 1);
    while (done !== helper.calls && Atomics.load(helper.control, 9) !== GONE) {
      if (++spins > SPIN_LIMIT) {
        Atomics.wait(helper.control, 1, done, 1000);
        if (Date.now() - waitedSince > HELPER_TIMEOUT_MS) {
          // It may still write into the output, so its share cannot be taken over: give up.
          this.stop();
          throw new Error(
            `A matrix-product thread gave no result within ${HELPER_TIMEOUT_MS / 1000} s; ` +
              "set VAE_WASM_THREADS=1 to run without threads.",
          );
        }
      }
      done = Atomics.load(helper.control, 1);
    }
    if (done !== helper.calls) return "a matrix-product thread ended unexpectedly";
    if (helper.control[8] !== 0) return "a matrix-product thread failed";
    return undefined;
  }

  /**
   * Starts the helpers and waits, without blocking the event loop, until each says it is ready. False
   * (and no threads from then on) when one ended or `timeoutMs` passed first.
   */
  async startThreads(timeoutMs: number): Promise<boolean> {
    if (this.threads < 2) return this.threads === gemmThreads;
    const helpers = this.startHelpers();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const states = helpers.map((h) => Atomics.load(h.control, 9));
      if (states.every((state) => state === READY)) return true;
      if (states.includes(GONE) || Date.now() > deadline) {
        this.abandonThreads(); // the caller reports it
        return false;
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  /** Parts the last product was split into (1: the main thread alone). */
  lastParts = 1;
  /** Rows of each part of the last product, the main thread's first. */
  lastSplit: number[] = [];

  private startHelpers(): Helper[] {
    this.helpers ??= [];
    while (this.helpers.length < this.threads - 1) {
      const control = new Int32Array(new SharedArrayBuffer(4 * CONTROL_INTS));
      const finished = new Float64Array(new SharedArrayBuffer(16));
      const { port1, port2 } = new MessageChannel();
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: {
          memory: this.memory,
          control: control.buffer,
          clock: finished.buffer,
          port: port2,
          spinMs: HELPER_SPIN_MS,
        },
        transferList: [port2],
      });
      worker.unref(); // a waiting helper must not keep the process alive
      port1.unref();
      this.helpers.push({ worker, port: port1, control, finished, sent: new Set<number>(), calls: 0 });
    }
    return this.helpers;
  }

  /** Stops the helper threads (they are started again when needed). */
  stop(): void {
    for (const helper of this.helpers ?? []) {
      // A pending call is finished first (here, if the helper cannot); its waiter then has nothing left to do.
      if (helper.pending) {
        const [id, ...args] = helper.pending.args;
        helper.pending = undefined;
        if (this.awaitHelper(helper)) this.loops[id](args[0], args[1], args[2], args[3], args[4]);
      }
      Atomics.store(helper.control, 0, -1);
      Atomics.notify(helper.control, 0);
      helper.port.close();
    }
    this.helpers = undefined;
  }
}

const runners = new Map<MemoryLike, GemmRunner>();
let balance = true;

/**
 * Switches the split of a product's rows by the threads' measured speeds (on by default) or evenly.
 * Returns the previous setting. Which thread computes which rows changes no bit.
 */
export function setWasmGemmBalance(enabled: boolean): boolean {
  const previous = balance;
  balance = enabled;
  return previous;
}
let gemmThreads = 1;

/**
 * The number of threads products are split across (1 by default; the backend sets it to the threaded
 * build's count). Only a shared memory can be worked on by several threads.
 */
export function setWasmGemmThreads(threads: number): void {
  if (!Number.isInteger(threads) || threads < 1)
    throw new RangeError(`setWasmGemmThreads: threads must be a whole number >= 1; got ${threads}.`);
  gemmThreads = threads;
}

export function runnerFor(backend: WasmBackendLike): GemmRunner | undefined {
  const memory = memoryOf(backend.wasm);
  if (!memory) return undefined;
  let runner = runners.get(memory);
  if (!runner) {
    runner = new GemmRunner(memory);
    runners.set(memory, runner);
  }
  return runner;
}

/**
 * Starts the matrix-product threads of the backend's memory and resolves once they are ready to take
 * work: true then, false when they did not start within `timeoutMs` (the products then stay on the
 * main thread, with the same results). Products never wait for threads that are still starting.
 */
export async function startWasmGemmThreads(backend: WasmBackendLike, timeoutMs = 20_000): Promise<boolean> {
  const runner = runnerFor(backend);
  return runner ? runner.startThreads(timeoutMs) : gemmThreads === 1;
}

/** Into how many parts (threads) the last product on the backend's memory was split. */
export function lastWasmGemmParts(backend: WasmBackendLike): number {
  return runnerFor(backend)?.lastParts ?? 1;
}

/** What `runSplitLoop` tells the runner: parts advance only `out`, by 4 bytes per element. */
const ELEMENT_LOOP: GemmSpec = {
  columns: 1,
  depth: 1,
  aRowStride: 0,
  aDepthStride: 0,
  bDepthStride: 0,
  outRowStride: 4,
  outColumnStride: 4,
  bias: false,
  relu: false,
  fma: false,
};

/**
 * Runs a loop over `count` items (elements, or rows of `bytesPerItem` bytes) split across the products'
 * threads, like a product's rows: the module (built by `build`, exporting `gemm`) is called as
 * gemm(block, 0, offset, 0, items) for each part, offset being the byte offset of the part's first item
 * (parts start at multiples of 4 items). False (nothing run) where there is no runner or the module
 * does not compile.
 */
export function runSplitLoop(
  backend: WasmBackendLike,
  key: string,
  build: (shared: boolean) => Uint8Array,
  block: number,
  count: number,
  bytesPerItem = 4,
  work = count * 16,
): boolean {
  const runner = runnerFor(backend);
  const id = runner?.customLoopId(key, build);
  if (!runner || id === undefined) return false;
  // `work` in multiply-adds' worth: by default about a short product's row per element (threads from 2^16 elements on).
  runner.run(
    id,
    bytesPerItem === 4 ? ELEMENT_LOOP : { ...ELEMENT_LOOP, outRowStride: bytesPerItem },
    block,
    0,
    0,
    0,
    count,
    work,
  );
  return true;
}

/**
 * Starts a loop of `runSplitLoop`'s kind over all `count` items on one free helper thread and returns
 * a function that waits for it; undefined (nothing started) where no helper is free or the module does
 * not compile.
 */
export function runOnHelperLoop(
  backend: WasmBackendLike,
  key: string,
  build: (shared: boolean) => Uint8Array,
  block: number,
  count: number,
): (() => void) | undefined {
  const runner = runnerFor(backend);
  const id = runner?.customLoopId(key, build);
  if (!runner || id === undefined || !runner.hasFreeHelper()) return undefined;
  return runner.runOnHelper(id, block, 0, 0, 0, count);
}

/** The number of threads products are split across. */
export function wasmGemmThreadCount(): number {
  return gemmThreads;
}

/** The rows of each part of the last product on the backend's memory, the main thread's first. */
export function lastWasmGemmSplit(backend: WasmBackendLike): number[] {
  return runnerFor(backend)?.lastSplit.slice() ?? [];
}

/** Stops the helper threads (they start again on the next product that uses them). */
export function stopWasmGemmThreads(): void {
  for (const runner of runners.values()) runner.stop();
}
