/**
 * A Jupyter kernel lives for hours: a person runs the sweep and analysis notebooks again and again
 * in it. This runs notebooks 03 and 04 (quick profile) `RUNS` times in one tslab kernel, every code
 * cell in order as Run All does, and reads after each run, from inside the kernel, its resident memory
 * (VmRSS of /proc/self/status, after a full garbage collection) and TensorFlow.js's tensor count.
 * Neither may grow by more than 10% after the second run (the first runs load code, the backend, the
 * browser for static images, the data). The kernel starts with its spec's environment, as Jupyter
 * starts it: without the malloc setting there, its heap grew by the buffers it freed (docs/robustness.md).
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { KernelClient, kernelSpecEnv } from "../../src/notebook/kernel";
import { CellError, cellSource, executeNotebook, NOTEBOOK_DIR, readNotebook } from "../../src/notebook/runner";

const RUNS = Number(process.env.LONG_KERNEL_RUNS ?? 10);
/** For experiments: variables added to the kernel's environment, as JSON (say, another malloc setting). */
const EXTRA_ENV = JSON.parse(process.env.LONG_KERNEL_ENV ?? "{}") as Record<string, string>;
const NOTEBOOKS = ["03-kl-sweep.ipynb", "04-analysis.ipynb"];

/**
 * Run in the kernel after each run: a full collection first (V8's `gc`, reached through a flag set at
 * run time, in a fresh context), so that what is measured is memory still held, not garbage not yet
 * collected; the raw RSS before it is reported too.
 */
const PROBE = `
import * as probeFs from "fs";
import * as probeV8 from "v8";
import * as probeVm from "vm";
import * as probeTf from "@tensorflow/tfjs";
{
  const rssKiB = () => Number(/VmRSS:\\s+(\\d+) kB/.exec(probeFs.readFileSync("/proc/self/status", "utf8"))![1]);
  const before = rssKiB();
  probeV8.setFlagsFromString("--expose-gc");
  const gc = probeVm.runInNewContext("gc") as () => void;
  // Three collections with a turn of the event loop between them: memory outside the JS heap (array
  // buffers, the messages already sent) is released by finalizers that run after a collection.
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  // Resident memory by kind of mapping (smaps): malloc's heap, mappings of 1 GiB or more (WebAssembly
  // memories reserve that much address space), other anonymous memory, files.
  const kinds = { heap: 0, wasm: 0, anon: 0, file: 0 };
  let kind: keyof typeof kinds = "anon";
  for (const line of probeFs.readFileSync("/proc/self/smaps", "utf8").split("\\n")) {
    const range = /^([0-9a-f]+)-([0-9a-f]+) \\S+ \\S+ \\S+ (\\d+)\\s*(.*)$/.exec(line);
    if (range) {
      const size = (parseInt(range[2], 16) - parseInt(range[1], 16)) / 1024;
      kind = range[4] === "[heap]" ? "heap" : range[4].startsWith("/") ? "file" : size >= 2 ** 20 ? "wasm" : "anon";
    } else if (line.startsWith("Rss:")) kinds[kind] += Number(/(\\d+)/.exec(line)![1]);
  }
  const backend = probeTf.backend() as unknown as { wasm?: { HEAPU8: Uint8Array } };
  const usage = process.memoryUsage();
  console.log("PROBE " + JSON.stringify({ pid: process.pid, rssBeforeGcKiB: before, rssKiB: rssKiB(), heapUsed: usage.heapUsed, heapTotal: usage.heapTotal, external: usage.external, wasmHeapBytes: backend.wasm ? backend.wasm.HEAPU8.byteLength : 0, kinds, mmapThreshold: process.env.MALLOC_MMAP_THRESHOLD_ ?? null, threads: probeFs.readdirSync("/proc/self/task").length, tensors: probeTf.memory().numTensors, tensorBytes: probeTf.memory().numBytes, listeners: ["SIGINT", "SIGTERM", "beforeExit", "exit"].map((e) => process.listenerCount(e)) }));
}
`;

interface Probe {
  pid: number;
  rssBeforeGcKiB: number;
  rssKiB: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  wasmHeapBytes: number;
  kinds: { heap: number; wasm: number; anon: number; file: number };
  threads: number;
  mmapThreshold: string | null;
  tensors: number;
  tensorBytes: number;
  listeners: number[];
}

test(
  `notebooks 03 and 04 run ${RUNS} times in one kernel: its memory and tensor count stay flat`,
  { timeout: 40 * 60_000 },
  async (t) => {
    const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), "vae-long-kernel-"));
    const cells = NOTEBOOKS.flatMap((name) =>
      readNotebook(path.join(NOTEBOOK_DIR, name))
        .cells.filter((cell) => cell.cell_type === "code")
        .map((cell) => ({ name, code: cellSource(cell) })),
    );
    const kernel = await KernelClient.start({
      env: {
        VAE_PROFILE: "quick",
        VAE_CACHE_DIR: cacheDir,
        VAE_STATIC_IMAGES: "0",
        ...EXTRA_ENV,
      },
    });
    const probes: Probe[] = [];
    try {
      for (let run = 1; run <= RUNS; run++) {
        const started = performance.now();
        for (const { name, code } of cells) {
          const result = await kernel.execute(code, 600_000);
          assert.equal(result.status, "ok", `run ${run}, ${name}: ${result.stderr}`);
        }
        const result = await kernel.execute(PROBE, 60_000);
        const line = result.outputs
          .map((o) => (o.output_type === "stream" ? o.text : ""))
          .join("")
          .split("\n")
          .find((l) => l.startsWith("PROBE "));
        assert.ok(line, `the probe printed its line: ${result.stderr}`);
        const probe = JSON.parse(line.slice("PROBE ".length)) as Probe;
        probes.push(probe);
        t.diagnostic(
          `run ${run}: ${((performance.now() - started) / 1000).toFixed(1)} s, RSS ${(probe.rssKiB / 1024).toFixed(1)} MiB after GC (${(probe.rssBeforeGcKiB / 1024).toFixed(1)} before), ` +
            `JS heap ${(probe.heapUsed / 2 ** 20).toFixed(1)} MiB of ${(probe.heapTotal / 2 ** 20).toFixed(1)}, external ${(probe.external / 2 ** 20).toFixed(1)} MiB, ` +
            `wasm heap ${(probe.wasmHeapBytes / 2 ** 20).toFixed(1)} MiB; resident by mapping: malloc ${(probe.kinds.heap / 1024).toFixed(1)}, wasm ${(probe.kinds.wasm / 1024).toFixed(1)}, ` +
            `other anonymous ${(probe.kinds.anon / 1024).toFixed(1)}, files ${(probe.kinds.file / 1024).toFixed(1)} MiB; ` +
            `${probe.threads} threads, ${probe.tensors} tensors (${(probe.tensorBytes / 2 ** 20).toFixed(2)} MiB), listeners SIGINT/SIGTERM/beforeExit/exit ${probe.listeners.join("/")}`,
        );
      }
    } finally {
      await kernel.shutdown();
      fs.rmSync(cacheDir, { recursive: true, force: true });
    }
    assert.equal(new Set(probes.map((p) => p.pid)).size, 1, "one kernel process throughout");
    // The kernel runs with its spec's environment, as under Jupyter (the malloc setting that keeps it flat).
    assert.equal(probes[0].mmapThreshold, { ...kernelSpecEnv(), ...EXTRA_ENV }.MALLOC_MMAP_THRESHOLD_ ?? null);
    const [, second, ...later] = probes;
    for (const [i, probe] of later.entries()) {
      const run = i + 3;
      assert.ok(
        probe.rssKiB <= second.rssKiB * 1.1,
        `run ${run}: RSS ${probe.rssKiB} KiB is more than 10% above run 2's ${second.rssKiB} KiB`,
      );
      assert.ok(
        probe.tensors <= second.tensors * 1.1,
        `run ${run}: ${probe.tensors} tensors, more than 10% above run 2's ${second.tensors}`,
      );
      assert.deepEqual(probe.listeners, second.listeners, `run ${run}: process listeners pile up`);
    }
  },
);

test("VAE_CACHE_DIR under /proc in a notebook: the sweep's cell fails before training with the storage message, no stack", async () => {
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), "vae-proc-cache-"));
  const file = path.join(NOTEBOOK_DIR, "03-kl-sweep.ipynb");
  // Before the folder check, Node's recursive mkdir spun a core here until the cell's time limit.
  await assert.rejects(
    executeNotebook(file, {
      outDir,
      env: { VAE_PROFILE: "quick", VAE_CACHE_DIR: "/proc/vae-cache" },
      cellTimeoutSeconds: 300,
    }),
    (error: unknown) => {
      assert.ok(error instanceof CellError, String(error));
      const detail = error.message.split("--- error ---\n")[1];
      assert.match(
        detail,
        /^StorageError: Cannot use \/proc\/vae-cache\/[0-9a-f]{16} as the cache folder: this file system refuses new folders \(such as \/proc\) \(ENOENT at \/proc\/vae-cache\)\. .*Nothing was trained\.$/,
      );
      assert.doesNotMatch(detail, /\n\s+at /);
      return true;
    },
  );
  fs.rmSync(outDir, { recursive: true, force: true });
});
