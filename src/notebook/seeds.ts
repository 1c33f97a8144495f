/**
 * The sweep over several training seeds in a notebook (`notebooks/04-analysis.ipynb`): read from the
 * cache that `npm run sweep -- --seeds ...` fills, never trained in the kernel (five seeds of the
 * tutorial take many minutes); when the cache lacks them, one line with the command to run.
 */
import type { BackendInfo } from "../backend/select";
import { checkConclusionsAcrossSeeds, seedConclusionsReport } from "../experiment/conclusions";
import { seedSpreads, spreadTable } from "../experiment/statistics";
import { cachedSweep, seedRange, seedsFlag, type SweepResult } from "../experiment/sweep";
import { rateDistortionSeedsFigure } from "../plots/plotAnalysis";
import { profileFromEnv, resolveConfig, type VaeConfig } from "../vae/config";
import type { MnistData } from "../vae/data";
import { option } from "../system/options";
import { showFigure } from "./display";

export interface SeedSweepOptions {
  /** How many seeds, from `config.seed` on (default 5: 42 to 46 for the tutorial). */
  readonly count?: number;
  readonly data?: MnistData;
  readonly backend?: BackendInfo;
  /** Defaults to `VAE_CACHE_DIR`, else `data/cache`. */
  readonly cacheDir?: string;
}

/** The command that trains the seeds `config` names, with the profile when it is not the tutorial's. */
export function seedSweepCommand(config: Pick<VaeConfig, "seeds">, profile = profileFromEnv()): string {
  return `npm run sweep -- --seeds ${seedsFlag(config.seeds)}${profile === "tutorial" ? "" : ` --profile ${profile}`}`;
}

/**
 * Prints, per c, each metric's mean ± sample standard deviation [min, max] over the seeds and the
 * conclusions counted per seed, and draws the rate-distortion plot with error bars; the seeds come from
 * the cache only. Returns the sweep, or undefined (after printing the command to run) when not cached.
 */
export async function showSeedSweep(
  config: VaeConfig,
  options: SeedSweepOptions = {},
): Promise<SweepResult | undefined> {
  const seeded = resolveConfig({ ...config, seeds: seedRange(config.seed, options.count ?? 5) });
  const cacheDir = options.cacheDir ?? option("cacheDir");
  const { result, missing } = await cachedSweep({
    config: seeded,
    data: options.data,
    backend: options.backend,
    cacheDir,
  });
  if (!result) {
    const seeds = [...new Set(missing.map((m) => m.seed))];
    console.log(
      `Seeds ${seedsFlag(seeded.seeds)} are not all in the cache ` +
        `(${missing.length} of ${seeded.seeds.length * seeded.klCoefficients.length} runs missing, ` +
        `seeds ${seeds.join(", ")}). ` +
        `Train them from the project folder with: ${seedSweepCommand(seeded)}  (then run this cell again)`,
    );
    return undefined;
  }
  console.log(
    `Over ${result.seeds.length} training seeds (${seedsFlag(seeded.seeds)}), ` +
      `all measured on the test digits of seed ${seeded.seed}: mean ± sample standard deviation (n - 1) [min, max]\n`,
  );
  console.log(spreadTable(seedSpreads(result)));
  console.log(`\n${seedConclusionsReport(checkConclusionsAcrossSeeds(result))}`);
  await showFigure(rateDistortionSeedsFigure(result));
  return result;
}
