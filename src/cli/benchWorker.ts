/**
 * A helper process of `npm run bench -- --full-mnist`: trains one coefficient on the IDX files of a
 * folder (all 60,000 / 10,000 rows) as the sweep does (training, the test set after every epoch, then
 * the zMean, the manifold and the metrics), and prints one JSON line of timings.
 * Arguments: the IDX folder, the coefficient, the epochs. Not meant to be run by hand.
 */
import { initBackend } from "../backend/select";
import { runCoefficient } from "../experiment/sweep";
import { resolveConfig } from "../vae/config";
import { loadMnist } from "../vae/data";
import { buildModel, snapshotWeights } from "../vae/model";

async function main(): Promise<void> {
  const [idxDir, coefficient, epochs] = process.argv.slice(2);
  if (!idxDir || !coefficient || !epochs) throw new Error("usage: benchWorker.ts IDX_DIR COEFFICIENT EPOCHS");
  await initBackend({ quiet: true });
  const config = resolveConfig({ dataSource: "idx", trainSize: 60_000, testSize: 10_000, epochs: Number(epochs) });
  const data = loadMnist(config, { idxDir });
  const model = buildModel(config);
  const started = performance.now();
  const run = await runCoefficient(model, snapshotWeights(model), config, data, Number(coefficient));
  const runSeconds = (performance.now() - started) / 1000;
  console.log(
    JSON.stringify({
      klCoefficient: run.klCoefficient,
      epochSeconds: run.history.map((record) => record.seconds),
      runSeconds,
    }),
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
