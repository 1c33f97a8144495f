/**
 * A helper process of `runSweep({ workers })`: runs the same sweep on the same cache folder, quietly.
 * Arguments: the config as JSON, the cache folder. Not meant to be run by hand.
 */
import { initBackend } from "../backend/select";
import { resolveConfig, type VaeConfig } from "../vae/config";
import { releaseLocksOnSignals } from "../experiment/lock";
import { runSweep } from "../experiment/sweep";
import type { WorkerProgress } from "../experiment/workers";

// The main process stops its helpers with SIGTERM once every coefficient is done (or it failed); an
// interrupt reaches them with SIGINT.
releaseLocksOnSignals();

async function main(): Promise<void> {
  const [configJson, cacheDir] = process.argv.slice(2);
  if (!configJson || !cacheDir) throw new Error("usage: sweepWorker.ts CONFIG_JSON CACHE_DIR");
  const config = resolveConfig(JSON.parse(configJson) as Partial<VaeConfig>);
  // Progress goes to the process that started this one, which shows it with its own. If that process is
  // gone, training goes on (its results still land in the cache) and the progress is dropped.
  const report = (progress: WorkerProgress) => {
    if (process.connected) process.send?.(progress, undefined, undefined, () => undefined);
  };
  let lastBatch = 0;
  await runSweep({
    config,
    cacheDir,
    backend: await initBackend({ quiet: true }),
    onRunStart: ({ klCoefficient, index, count, cached, seed }) =>
      report({ type: "runStart", klCoefficient, index, count, cached, seed }),
    onEpochEnd: (event) => report({ type: "epochEnd", event }),
    onBatchEnd: (event) => {
      // A few batch updates a second are enough for a progress bar.
      const now = performance.now();
      if (now - lastBatch < 250) return;
      lastBatch = now;
      report({ type: "batchEnd", event });
    },
  });
}

main()
  .catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  })
  // The IPC channel would keep the process alive.
  .finally(() => process.disconnect?.());
