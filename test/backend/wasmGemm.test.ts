import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { type BackendInfo, initBackend } from "../../src/backend/select";
import type { WasmBackendLike } from "../../src/backend/wasmCode";
import { MIN_MULTIPLY_ADDS } from "../../src/backend/wasmGemmCode";
import {
  lastWasmGemmParts,
  lastWasmGemmSplit,
  setWasmGemmBalance,
  setWasmGemmThreads,
  startWasmGemmThreads,
  stopWasmGemmThreads,
} from "../../src/backend/wasmThreadPool";
import {
  setWasmGemmFma,
  wasmGemmAsync,
  wasmFmaWanted,
  wasmGemmCalls,
  withoutWasmGemm,
} from "../../src/backend/wasmGemm";
import { relaxedMadd } from "../../src/backend/wasmCode";

let info: BackendInfo;
before(async () => {
  info = await initBackend({ backend: "wasm", quiet: true });
});
after(() => stopWasmGemmThreads());

interface Case {
  label: string;
  a: [number, number];
  b: [number, number];
  transposeA?: boolean;
  transposeB?: boolean;
  bias?: boolean;
  relu?: boolean;
}

/** The model's products (forward, and the backward pass's three kinds), and the remaining combinations. */
const CASES: Case[] = [
  { label: "x W1 (encoder)", a: [128, 784], b: [784, 512] },
  { label: "h W4 + bias (decoder, fused)", a: [128, 512], b: [512, 784], bias: true },
  { label: "relu(x W + bias) (fused)", a: [64, 96], b: [96, 40], bias: true, relu: true },
  { label: "dy W4^T (input gradient)", a: [128, 784], b: [512, 784], transposeB: true },
  { label: "h^T dy (weight gradient)", a: [128, 512], b: [128, 784], transposeA: true },
  { label: "a^T b^T", a: [100, 48], b: [64, 100], transposeA: true, transposeB: true },
  { label: "depth 35", a: [64, 35], b: [35, 64] },
  { label: "depth 66", a: [64, 66], b: [66, 64], bias: true },
  // The latent layers' thin products: narrow outputs are computed transposed, 2 rows are a partial tile.
  { label: "h Wm + bias (latent layer: 2 columns, computed transposed)", a: [128, 512], b: [512, 2], bias: true },
  { label: "h^T dz (latent weight gradient: 2 columns)", a: [128, 512], b: [128, 2], transposeA: true },
  { label: "z^T dh (decoder weight gradient: 2 rows, a partial tile)", a: [128, 2], b: [128, 512], transposeA: true },
  { label: "dh W3^T (2 columns of a b^T)", a: [128, 512], b: [2, 512], transposeB: true },
  { label: "130 rows: 32 tiles of 4, then a tile of 2", a: [130, 64], b: [64, 512] },
  {
    label: "relu(x W + bias) with 6 columns: a tile of 4 and a tile of 2, transposed",
    a: [128, 96],
    b: [96, 6],
    bias: true,
    relu: true,
  },
];

const values = (shape: number[], seed: number) => tf.randomUniform(shape, -1, 1, "float32", seed);

function run(c: Case, a: tf.Tensor2D, b: tf.Tensor2D, bias?: tf.Tensor1D): tf.Tensor2D {
  if (!c.bias && !c.relu) return tf.matMul(a, b, c.transposeA, c.transposeB);
  return tf.fused.matMul({
    a,
    b,
    transposeA: c.transposeA,
    transposeB: c.transposeB,
    bias,
    activation: c.relu ? "relu" : "linear",
  }) as tf.Tensor2D;
}

/**
 * The product in float64 by hand, with a bound on float32's error for each element: a sum of k
 * products rounded in sequence is off by at most about (k + 1) 2^-24 times the sum of the terms'
 * magnitudes.
 */
function reference(
  c: Case,
  a: Float32Array,
  b: Float32Array,
  bias?: Float32Array,
): { value: Float64Array; bound: Float64Array; m: number; n: number } {
  const [ar, ac] = c.a;
  const [br, bc] = c.b;
  const m = c.transposeA ? ac : ar;
  const k = c.transposeA ? ar : ac;
  const n = c.transposeB ? br : bc;
  const at = (i: number, kk: number) => (c.transposeA ? a[kk * ac + i] : a[i * ac + kk]);
  const bt = (kk: number, j: number) => (c.transposeB ? b[j * bc + kk] : b[kk * bc + j]);
  const value = new Float64Array(m * n);
  const bound = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = bias ? bias[j] : 0;
      let magnitude = Math.abs(sum);
      for (let kk = 0; kk < k; kk++) {
        const term = at(i, kk) * bt(kk, j);
        sum += term;
        magnitude += Math.abs(term);
      }
      value[i * n + j] = c.relu ? Math.max(sum, 0) : sum;
      bound[i * n + j] = (k + 2) * 2 ** -24 * magnitude + 1e-30;
    }
  }
  return { value, bound, m, n };
}

/** The largest distance of `got` from the float64 value, in units of float32's error bound. */
function worstError(got: ArrayLike<number>, want: { value: Float64Array; bound: Float64Array }): number {
  let worst = 0;
  for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want.value[i]) / want.bound[i]);
  return worst;
}

/** Runs `fn` with the products' fused multiply-adds on or off, restoring the setting after. */
function withFma<T>(enabled: boolean, fn: () => T): T {
  const previous = setWasmGemmFma(enabled);
  try {
    return fn();
  } finally {
    setWasmGemmFma(previous);
  }
}

const fused = relaxedMadd() === "fused";

for (const [index, c] of CASES.entries()) {
  test(`${c.label}: within float32's error bound of a float64 evaluation on both paths; separate multiplies and adds bit-equal to the stock kernels`, (t) => {
    const a = values(c.a, 10 + index) as tf.Tensor2D;
    const b = values(c.b, 20 + index) as tf.Tensor2D;
    const n = c.transposeB ? c.b[0] : c.b[1];
    const bias = c.bias ? (values([n], 30 + index) as tf.Tensor1D) : undefined;
    const want = reference(
      c,
      a.dataSync() as Float32Array,
      b.dataSync() as Float32Array,
      bias?.dataSync() as Float32Array | undefined,
    );
    const before = wasmGemmCalls();
    const separate = withFma(false, () => run(c, a, b, bias));
    assert.equal(wasmGemmCalls(), before + 1, "the generated loop did not compute this product");
    assert.deepEqual(separate.shape, [want.m, want.n]);
    const worst = worstError(separate.dataSync(), want);
    assert.ok(worst <= 1, `an element is ${worst.toFixed(2)} times float32's error bound away from the float64 value`);
    const stock = withoutWasmGemm(() => run(c, a, b, bias));
    assert.equal(wasmGemmCalls(), before + 1, "withoutWasmGemm still used the generated loop");
    assert.deepEqual(separate.dataSync(), stock.dataSync(), "differs from the stock kernels");
    tf.dispose([separate, stock]);
    if (fused) {
      const withFused = withFma(true, () => run(c, a, b, bias));
      assert.equal(wasmGemmCalls(), before + 2, "the generated loop did not compute the fused product");
      const worstFused = worstError(withFused.dataSync(), want);
      assert.ok(
        worstFused <= 1,
        `with fused multiply-adds an element is ${worstFused.toFixed(2)} times float32's error bound away from the float64 value`,
      );
      t.diagnostic(`worst error in error bounds: ${worst.toFixed(3)} separate, ${worstFused.toFixed(3)} fused`);
      withFused.dispose();
    } else {
      t.diagnostic(`fused multiply-adds not checked: relaxed SIMD is ${relaxedMadd()} here`);
    }
    tf.dispose([a, b, ...(bias ? [bias] : [])]);
  });
}

test("relaxed SIMD's multiply-add is told apart by (1 + 2^-23)^2 - (1 + 2^-22), and VAE_WASM_FMA chooses the path", (t) => {
  // Rounded once, the difference is 2^-46 (the square is 1 + 2^-22 + 2^-46); rounded twice, 0.
  const x = Math.fround(1 + 2 ** -23);
  assert.equal(x * x - (1 + 2 ** -22), 2 ** -46);
  assert.equal(Math.fround(x * x) - Math.fround(1 + 2 ** -22), 0);
  assert.ok(["fused", "separate", "unavailable"].includes(relaxedMadd()));
  assert.equal(wasmFmaWanted({ VAE_WASM_FMA: "0" }), false);
  assert.equal(wasmFmaWanted({ VAE_WASM_FMA: "1" }), fused);
  assert.equal(wasmFmaWanted({}), fused);
  assert.throws(() => wasmFmaWanted({ VAE_WASM_FMA: "yes" }), /VAE_WASM_FMA must be 0 .* or 1 .*got "yes"/);
  assert.equal(info.fma, fused && process.env.VAE_WASM_FMA !== "0", "the backend reports the path it chose");
  if (!fused) return t.skip(`relaxed SIMD is ${relaxedMadd()} here`);
  // A 784-long sum is rounded 784 times fewer with fused multiply-adds: some of the 65,536 elements differ.
  const a = values([128, 784], 3) as tf.Tensor2D;
  const b = values([784, 512], 4) as tf.Tensor2D;
  const separate = withFma(false, () => tf.matMul(a, b));
  const withFused = withFma(true, () => tf.matMul(a, b));
  const s = separate.dataSync();
  const f = withFused.dataSync();
  const differing = s.filter((value, i) => value !== f[i]).length;
  t.diagnostic(`${differing} of ${s.length} elements differ in the last bits`);
  assert.ok(differing > 0, "the fused path computed the same bits: it did not fuse");
  assert.deepEqual(withFma(true, () => tf.matMul(a, b)).dataSync(), f, "the fused path is repeatable");
  tf.dispose([a, b, separate, withFused]);
});

test("shapes the loops do not cover (neither side of the output a multiple of 8, small, batched) go to the stock kernels", () => {
  const cases: [number[], number[]][] = [
    [
      [130, 64],
      [64, 36],
    ], // 130 rows and 36 columns
    [
      [8, 8],
      [8, 8],
    ], // too small to be worth it
    [
      [2, 128, 64],
      [2, 64, 512],
    ], // a batch of two
  ];
  for (const [aShape, bShape] of cases) {
    const a = values(aShape, 1);
    const b = values(bShape, 2);
    const before = wasmGemmCalls();
    const out = tf.matMul(a as tf.Tensor3D, b as tf.Tensor3D);
    assert.equal(wasmGemmCalls(), before, `[${aShape}] x [${bShape}] went to the generated loop`);
    // Checked by hand on one element: the last one.
    const ad = a.dataSync();
    const bd = b.dataSync();
    const [k, n] = bShape.slice(-2);
    const rows = aShape[aShape.length - 2];
    const batch = aShape.length === 3 ? aShape[0] - 1 : 0;
    let want = 0;
    for (let kk = 0; kk < k; kk++) want += ad[(batch * rows + rows - 1) * k + kk] * bd[(batch * k + kk) * n + n - 1];
    const got = out.dataSync();
    assert.ok(
      Math.abs(got[got.length - 1] - want) < 1e-4,
      `[${aShape}] x [${bShape}]: ${got[got.length - 1]} vs ${want}`,
    );
    tf.dispose([a, b, out]);
  }
  assert.ok(8 * 8 * 8 < MIN_MULTIPLY_ADDS);
});

test("the result does not depend on the number of threads, to the bit (rows split unevenly)", async (t) => {
  if (info.threads < 2) return t.skip(`one thread here (${info.reason}); nothing to split`);
  const a = values([132, 300], 5) as tf.Tensor2D; // 33 tiles of 4 rows: split 11/11/11 or 16/17
  const b = values([300, 72], 6) as tf.Tensor2D;
  const backend = tf.backend() as unknown as WasmBackendLike;
  const results: Float32Array[] = [];
  for (const threads of [1, 2, 3]) {
    setWasmGemmThreads(threads);
    assert.ok(await startWasmGemmThreads(backend), `${threads} threads started`);
    const out = tf.matMul(a, b);
    assert.equal(lastWasmGemmParts(backend), threads, "the product was split across every thread");
    results.push(out.dataSync().slice() as Float32Array);
    out.dispose();
  }
  setWasmGemmThreads(info.threads);
  assert.deepEqual(results[1], results[0]);
  assert.deepEqual(results[2], results[0]);
  tf.dispose([a, b]);
});

test("rows are split by the threads' measured speeds, in whole tiles, with the bits of an even split", async (t) => {
  if (info.threads < 2) return t.skip(`one thread here (${info.reason}); nothing to split`);
  const backend = tf.backend() as unknown as WasmBackendLike;
  assert.ok(await startWasmGemmThreads(backend));
  const a = values([130, 512], 13) as tf.Tensor2D; // 32 tiles of 4 rows and a tile of 2
  const b = values([512, 256], 14) as tf.Tensor2D;
  const previous = setWasmGemmBalance(false);
  const even = tf.matMul(a, b);
  const evenSplit = lastWasmGemmSplit(backend);
  setWasmGemmBalance(true);
  const splits = new Set<string>();
  for (let call = 0; call < 30; call++) {
    const out = tf.matMul(a, b);
    const split = lastWasmGemmSplit(backend);
    splits.add(split.join("/"));
    assert.equal(
      split.reduce((x, y) => x + y, 0),
      130,
      "every row is computed once",
    );
    // A thread measured as far slower may get no rows at all (130/0 on a loaded machine); the rule is for the parts that run.
    const running = split.filter((rows) => rows > 0);
    assert.ok(
      running.slice(0, -1).every((rows) => rows % 4 === 0),
      `only the last part ends in a partial tile: ${split}`,
    );
    assert.deepEqual(
      out.dataSync(),
      even.dataSync(),
      `call ${call}, split ${split}: the bits differ from an even split`,
    );
    out.dispose();
  }
  setWasmGemmBalance(previous);
  t.diagnostic(`even split ${evenSplit.join("/")}; measured splits seen: ${[...splits].join(", ")}`);
  tf.dispose([a, b, even]);
});

test("memory stays flat: no tensors or heap buffers left over, including the transposed copies", () => {
  const a = values([128, 784], 7) as tf.Tensor2D;
  const b = values([512, 784], 8) as tf.Tensor2D;
  const step = () => tf.tidy(() => tf.matMul(a, b, false, true).sum().dataSync());
  step();
  const backend = tf.engine().backend as unknown as { numDataIds(): number };
  const tensors = tf.memory().numTensors;
  const buffers = backend.numDataIds();
  for (let i = 0; i < 20; i++) step();
  assert.equal(tf.memory().numTensors, tensors);
  assert.equal(backend.numDataIds(), buffers);
  tf.dispose([a, b]);
});

test("a product never waits for a thread that is still starting: it runs on the main thread, with the same bits", async (t) => {
  if (info.threads < 2) return t.skip(`one thread here (${info.reason})`);
  const backend = tf.backend() as unknown as WasmBackendLike;
  const a = values([128, 784], 11) as tf.Tensor2D;
  const b = values([784, 512], 12) as tf.Tensor2D;
  assert.ok(await startWasmGemmThreads(backend));
  const threaded = tf.matMul(a, b);
  assert.equal(lastWasmGemmParts(backend), info.threads);
  // Stopped helpers are replaced at the next product; that product does not wait for them to load.
  stopWasmGemmThreads();
  const started = performance.now();
  const alone = tf.matMul(a, b);
  const ms = performance.now() - started;
  assert.equal(lastWasmGemmParts(backend), 1, "the helpers just started were not ready, so the main thread did it all");
  assert.deepEqual(alone.dataSync(), threaded.dataSync());
  assert.ok(await startWasmGemmThreads(backend), "the new helpers come up");
  const again = tf.matMul(a, b);
  assert.equal(lastWasmGemmParts(backend), info.threads);
  assert.deepEqual(again.dataSync(), threaded.dataSync());
  tf.dispose([a, b, threaded, alone, again]);
  t.diagnostic(`product while the helpers started: ${ms.toFixed(1)} ms`);
});

test("a product started on a helper (wasmGemmAsync) equals the product computed at once, while the main thread computes another", async (t) => {
  if (info.threads < 2) return t.skip(`one thread here (${info.reason})`);
  const backend = tf.backend() as unknown as WasmBackendLike;
  assert.ok(await startWasmGemmThreads(backend));
  // 2,048 rows: h^T dy is 822 million multiply-adds, tens of milliseconds for the helper, so it is still
  // busy when the main thread's product starts right after.
  const h = values([2048, 512], 21) as tf.Tensor2D;
  const dy = values([2048, 784], 22) as tf.Tensor2D;
  const w = values([512, 784], 23) as tf.Tensor2D;
  const want = tf.matMul(h, dy, true, false);
  const other = tf.matMul(dy, w, false, true);
  const numDataIds = () => (tf.engine().backend as unknown as { numDataIds(): number }).numDataIds();
  const buffers = numDataIds();
  // A helper that has finished is free again and rightly takes part in the next product; on a loaded
  // machine this thread may be descheduled until it has. So up to five tries, at least one of which must
  // find the helper busy and leave it out; every try's products are checked.
  const parts: number[] = [];
  for (let attempt = 0; attempt < 5 && !parts.includes(1); attempt++) {
    const started = wasmGemmAsync(backend, { a: h, b: dy, transposeA: true, transposeB: false, relu: false });
    assert.ok(started, "the generated loop covers h^T dy");
    const meanwhile = tf.matMul(dy, w, false, true);
    parts.push(lastWasmGemmParts(backend));
    started.wait();
    const out = tf.engine().makeTensorFromTensorInfo(started.out) as tf.Tensor2D;
    assert.deepEqual(out.dataSync(), want.dataSync());
    assert.deepEqual(meanwhile.dataSync(), other.dataSync());
    tf.dispose([out, meanwhile]);
    assert.equal(numDataIds(), buffers, "the product's temporary buffers are freed by wait()");
  }
  t.diagnostic(`parts of the main thread's product, per try: ${parts.join(", ")}`);
  assert.ok(parts.includes(1), `the busy helper was left out of the other product (parts per try: ${parts})`);
  // With the helper free, the same product is shared again.
  const shared = tf.matMul(dy, w, false, true);
  assert.equal(lastWasmGemmParts(backend), info.threads, "the free helper takes part again");
  tf.dispose(shared);
  tf.dispose([h, dy, w, want, other]);
});
