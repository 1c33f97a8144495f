/**
 * A helper process of `runSweep({ workers })`: runs the same sweep on the same cache folder, quietly.
 * Arguments: the config as JSON, the cache folder. Not meant to be run by hand.
 */
import { initBackend } from "../backend/select";
import { resolveConfig, type VaeConfig } from "../vae/config";
import { releaseLocksOnSigterm } from "../experiment/lock";
import { runSweep } from "../experiment/sweep";

// The main process stops its helpers with SIGTERM once every coefficient is done (or it failed).
releaseLocksOnSigterm();

async function main(): Promise<void> {
  const [configJson, cacheDir] = process.argv.slice(2);
  if (!configJson || !cacheDir) throw new Error("usage: sweepWorker.ts CONFIG_JSON CACHE_DIR");
  const config = resolveConfig(JSON.parse(configJson) as Partial<VaeConfig>);
  await runSweep({ config, cacheDir, backend: await initBackend({ quiet: true }) });
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
