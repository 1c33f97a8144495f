/**
 * A helper process of `npm run bench -- --anchors`: trains the tutorial's VAE on one backend (c = 1,
 * the bench's digits), one epoch per line "epoch" read from stdin, and answers each with a JSON line of
 * its seconds, as bench/pytorch_reference.py --serve does, so that the bench can time several systems'
 * epochs in turn. Arguments: the backend, the training rows. Not meant to be run by hand.
 */
import { createInterface } from "node:readline";
import { describeBackend, initBackend, parseBackendName } from "../backend/select";
import { benchConfig } from "../experiment/bench";
import { loadMnist } from "../vae/data";
import { buildModel, trainableVariables } from "../vae/model";
import { kerasAdam } from "../vae/optimizer";
import { trainEpoch } from "../vae/train";

async function main(): Promise<void> {
  const [backendName, rowsArg] = process.argv.slice(2);
  const rows = Number(rowsArg);
  if (!backendName || !Number.isInteger(rows) || rows < 1) throw new Error("usage: benchEpochServer.ts BACKEND ROWS");
  const backend = await initBackend({ backend: parseBackendName(backendName), quiet: true });
  const config = benchConfig(rows);
  const data = loadMnist(config);
  const model = buildModel(config);
  const optimizer = kerasAdam(config.learningRate);
  const variables = trainableVariables(model);
  const options = { config, klCoefficient: 1, xTrain: data.xTrain, xTest: data.xTest };
  console.log(JSON.stringify({ framework: describeBackend(backend), rows }));
  let epoch = 0;
  for await (const line of createInterface({ input: process.stdin })) {
    if (line.trim() !== "epoch") break;
    const started = performance.now();
    const cpu = process.cpuUsage();
    trainEpoch(model, optimizer, options, ++epoch, variables);
    const used = process.cpuUsage(cpu);
    console.log(
      JSON.stringify({ seconds: (performance.now() - started) / 1000, cpuSeconds: (used.user + used.system) / 1e6 }),
    );
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
