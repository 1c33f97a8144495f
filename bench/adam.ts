/**
 * Micro-benchmark of one optimizer step on the wasm backend for weight arrays shaped like the VAE's
 * (784x512, 512, 512x2 twice, 2 twice, 2x512, 512, 512x784, 784): `tf.train.adam` (fourteen
 * element-wise tfjs ops per array) against `kerasAdam` (one fused kernel per array), with the kernel's
 * WebAssembly SIMD loop (the default) and with its JavaScript loop (the fallback without SIMD).
 * Run with `npx tsx bench/adam.ts` (VAE_WASM_THREADS=1 for the single-threaded build).
 */
import * as tf from "@tensorflow/tfjs";
import { kerasAdam } from "../src/vae/optimizer";
import { kerasAdamWasmLoop, setKerasAdamWasmSimd } from "../src/backend/fusedAdam";
import { describeBackend, initBackend } from "../src/backend/select";

const SHAPES = [[784, 512], [512], [512, 2], [512, 2], [2], [2], [2, 512], [512], [512, 784], [784]];
const STEPS = 200;
const WARMUP = 20;

/** Milliseconds per `applyGradients` for a fresh optimizer, after `WARMUP` untimed steps. */
function time(label: string, make: () => tf.Optimizer): number {
  const variables = SHAPES.map((shape, i) =>
    tf.variable(tf.randomNormal(shape, 0, 0.05, "float32", i), true, `bench-${label}/${i}`),
  );
  const gradients = Object.fromEntries(
    variables.map((v, i) => [v.name, tf.randomNormal(v.shape, 0, 1e-2, "float32", 100 + i)]),
  );
  const optimizer = make();
  for (let i = 0; i < WARMUP; i++) optimizer.applyGradients(gradients);
  variables[0].dataSync();
  const tensors = tf.memory().numTensors;
  const start = performance.now();
  for (let i = 0; i < STEPS; i++) optimizer.applyGradients(gradients);
  variables.forEach((v) => v.dataSync()); // wasm kernels are synchronous; this only makes sure
  const ms = (performance.now() - start) / STEPS;
  if (tf.memory().numTensors !== tensors)
    throw new Error(`${label} leaked ${tf.memory().numTensors - tensors} tensors over ${STEPS} steps`);
  optimizer.dispose();
  tf.dispose([...variables, ...Object.values(gradients)]);
  return ms;
}

async function main(): Promise<void> {
  const info = await initBackend({ backend: "wasm", quiet: true });
  console.log(describeBackend(info));
  const elements = SHAPES.reduce((sum, shape) => sum + shape.reduce((a, b) => a * b, 1), 0);
  console.log(
    `${SHAPES.length} weight arrays, ${elements.toLocaleString("en")} elements; ${STEPS} steps after ${WARMUP} warm-up steps`,
  );
  const tfjs = "tf.train.adam(1e-3)";
  const simd = "kerasAdam(1e-3)";
  const js = "kerasAdam(1e-3), JS loop";
  // Twice each, alternating, so that none benefits from running later.
  const results: Record<string, number[]> = { [tfjs]: [], [simd]: [], [js]: [] };
  for (let round = 0; round < 2; round++) {
    results[tfjs].push(time(`tfjs${round}`, () => tf.train.adam(1e-3)));
    setKerasAdamWasmSimd(true);
    if (kerasAdamWasmLoop() !== "simd")
      console.log("(WebAssembly SIMD is not available here: kerasAdam runs its JavaScript loop)");
    results[simd].push(time(`simd${round}`, () => kerasAdam(1e-3)));
    setKerasAdamWasmSimd(false);
    results[js].push(time(`js${round}`, () => kerasAdam(1e-3)));
    setKerasAdamWasmSimd(true);
  }
  const best = (label: string) => Math.min(...results[label]);
  for (const [label, runs] of Object.entries(results)) {
    const speedUp = label === tfjs ? "" : `, ${(best(tfjs) / best(label)).toFixed(1)}x tf.train.adam's speed`;
    console.log(
      `${label.padEnd(26)} ${best(label).toFixed(3)} ms per step (runs: ${runs.map((ms) => ms.toFixed(3)).join(", ")})${speedUp}`,
    );
  }
  process.exit(0);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
