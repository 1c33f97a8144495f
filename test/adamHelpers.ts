/** Shared by the tests of the Adam optimizer (test/vae) and of its fused kernel (test/backend). */
import assert from "node:assert/strict";
import { after, before } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { hasFusedKerasAdam, kerasAdamWasmLoop, setKerasAdamWasmSimd } from "../src/backend/fusedAdam";
import { initBackend } from "../src/backend/select";

/** A test file's hooks: the wasm backend before its tests, the SIMD loop and wasm restored after them. */
export function useWasmBackend(): void {
  before(async () => {
    await initBackend({ backend: "wasm", quiet: true });
  });
  after(async () => {
    setKerasAdamWasmSimd(true);
    await tf.setBackend("wasm");
  });
}

// The two backends with the fused kernel, both in this process: wasm via initBackend, cpu by switching.
// The wasm kernel has two loops: WebAssembly SIMD (float32, the default) and JavaScript (float64).
export const SETUPS = [
  { label: "wasm-simd", backend: "wasm", simd: true },
  { label: "wasm-js", backend: "wasm", simd: false },
  { label: "cpu", backend: "cpu", simd: false },
] as const;

/** A seeded generator written here (xorshift32), independent of the project's own. */
export function prng(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 4294967296;
  };
}

/** Float32 values uniform in [-scale, scale). */
export function uniform(next: () => number, length: number, scale: number): Float32Array {
  return Float32Array.from({ length }, () => (2 * next() - 1) * scale);
}

export const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** |actual - expected| <= 1e-6 * (|expected| + the array's largest |expected|), element by element. */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]));
  for (let i = 0; i < expected.length; i++) {
    const tolerance = 1e-6 * (Math.abs(expected[i]) + scale);
    if (!(Math.abs(actual[i] - expected[i]) <= tolerance))
      assert.fail(`${what}[${i}]: ${actual[i]} vs ${expected[i]} (tolerance ${tolerance})`);
  }
}

/** Runs `body` on wasm with the SIMD loop, on wasm with the JavaScript loop, and on cpu. */
export async function onEachBackend(body: (label: string) => void | Promise<void>): Promise<void> {
  try {
    for (const { label, backend, simd } of SETUPS) {
      assert.ok(await tf.setBackend(backend), `backend ${backend}`);
      assert.equal(tf.getBackend(), backend);
      assert.ok(hasFusedKerasAdam(), `the fused kernel is registered for ${backend}`);
      setKerasAdamWasmSimd(simd);
      if (backend === "wasm") assert.equal(kerasAdamWasmLoop(), simd ? "simd" : "javascript");
      await body(label);
    }
  } finally {
    setKerasAdamWasmSimd(true);
    await tf.setBackend("wasm");
  }
}
