import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { type BackendInfo, initBackend } from "../../src/backend/select";
import { countModule, fillModule } from "../../src/backend/rowLists";
import { relaxedMadd, type WasmBackendLike } from "../../src/backend/wasmCode";
import {
  MAX_SPARSE_DENSITY_L2,
  maxSparseDensity,
  packModule,
  sparseStripVectors,
  transposePackModule,
} from "../../src/backend/wasmGemmCode";
import {
  lastWasmGemmParts,
  setWasmGemmThreads,
  startWasmGemmThreads,
  stopWasmGemmThreads,
} from "../../src/backend/wasmThreadPool";
import { setWasmGemmFma, setWasmGemmSparse, wasmGemmCalls, wasmGemmSparseCalls } from "../../src/backend/wasmGemm";
import { readEmbeddedDigits } from "../../src/vae/data";
import { Random } from "../../src/vae/random";

let info: BackendInfo;
before(async () => {
  info = await initBackend({ backend: "wasm", quiet: true });
});
after(() => stopWasmGemmThreads());

const fused = relaxedMadd() === "fused";

/** Seeded values in [-1, 1) with about `density` of them nonzero (the rest exactly 0). */
function sparseValues(shape: number[], density: number, seed: number): Float32Array {
  const random = new Random(seed);
  const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < out.length; i++) out[i] = random.next() < density ? 2 * random.next() - 1 : 0;
  return out;
}

/** Runs `fn` with the sparse loop and fused multiply-adds set as given, restoring both after. */
function withSettings<T>(sparse: boolean, fma: boolean, fn: () => T): T {
  const previousSparse = setWasmGemmSparse(sparse);
  const previousFma = setWasmGemmFma(fma);
  try {
    return fn();
  } finally {
    setWasmGemmSparse(previousSparse);
    setWasmGemmFma(previousFma);
  }
}

interface Case {
  label: string;
  a: Float32Array;
  aShape: [number, number];
  bShape: [number, number];
  transposeA?: boolean;
  bias?: boolean;
  relu?: boolean;
}

const digits = readEmbeddedDigits().images;
const CASES: Case[] = [
  // The encoder's products on 128 real digits (about 19% of the pixels are not blank).
  { label: "x W1 on real digits", a: digits.slice(0, 128 * 784), aShape: [128, 784], bShape: [784, 512] },
  {
    label: "x^T dH on real digits (weight gradient)",
    a: digits.slice(128 * 784, 256 * 784),
    aShape: [128, 784],
    bShape: [128, 512],
    transposeA: true,
  },
  // A ReLU output as the decoder's: about 40% active.
  {
    label: "relu(h W4 + bias), h 40% nonzero",
    a: sparseValues([128, 512], 0.4, 3),
    aShape: [128, 512],
    bShape: [512, 784],
    bias: true,
    relu: true,
  },
  {
    label: "h^T dy, h 30% nonzero",
    a: sparseValues([128, 512], 0.3, 4),
    aShape: [128, 512],
    bShape: [128, 784],
    transposeA: true,
  },
  // Rows with no nonzero at all (they get the bias alone), and columns of 40 (strips of five vectors).
  {
    label: "empty rows, 40 columns, bias",
    a: sparseValues([64, 96], 0.02, 5),
    aShape: [64, 96],
    bShape: [96, 40],
    bias: true,
  },
];

function product(c: Case, a: tf.Tensor2D, b: tf.Tensor2D, bias?: tf.Tensor1D): tf.Tensor2D {
  if (!c.bias && !c.relu) return tf.matMul(a, b, c.transposeA, false);
  return tf.fused.matMul({
    a,
    b,
    transposeA: c.transposeA,
    bias,
    activation: c.relu ? "relu" : "linear",
  }) as tf.Tensor2D;
}

/** The float64 product by hand and float32's error bound per element (as in wasmGemm.test.ts). */
function reference(c: Case, b: Float32Array, bias?: Float32Array) {
  const [ar, ac] = c.aShape;
  const m = c.transposeA ? ac : ar;
  const k = c.transposeA ? ar : ac;
  const n = c.bShape[1];
  const value = new Float64Array(m * n);
  const bound = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = bias ? bias[j] : 0;
      let magnitude = Math.abs(sum);
      for (let kk = 0; kk < k; kk++) {
        const term = (c.transposeA ? c.a[kk * ac + i] : c.a[i * ac + kk]) * b[kk * n + j];
        sum += term;
        magnitude += Math.abs(term);
      }
      value[i * n + j] = c.relu ? Math.max(sum, 0) : sum;
      bound[i * n + j] = (k + 2) * 2 ** -24 * magnitude + 1e-30;
    }
  }
  return { value, bound };
}

for (const [index, c] of CASES.entries()) {
  test(`${c.label}: the sparse loop gives the dense loop's bits, within float32's error bound of float64`, (t) => {
    const a = tf.tensor2d(c.a, c.aShape);
    const b = tf.randomUniform(c.bShape, -1, 1, "float32", 40 + index) as tf.Tensor2D;
    const bias = c.bias ? (tf.randomUniform([c.bShape[1]], -1, 1, "float32", 50 + index) as tf.Tensor1D) : undefined;
    const nonzero = c.a.filter((v) => v !== 0).length / c.a.length;
    assert.ok(nonzero <= MAX_SPARSE_DENSITY_L2, `the case's operand is ${nonzero.toFixed(2)} nonzero`);
    const want = reference(c, b.dataSync() as Float32Array, bias?.dataSync() as Float32Array | undefined);
    for (const fma of fused ? [false, true] : [false]) {
      const calls = wasmGemmCalls();
      const sparseCalls = wasmGemmSparseCalls();
      const sparse = withSettings(true, fma, () => product(c, a, b, bias));
      assert.equal(wasmGemmSparseCalls(), sparseCalls + 1, "the sparse loop did not compute this product");
      const dense = withSettings(false, fma, () => product(c, a, b, bias));
      assert.equal(wasmGemmCalls(), calls + 2, "the dense product did not come from the generated loop");
      assert.equal(wasmGemmSparseCalls(), sparseCalls + 1, "the sparse loop ran while switched off");
      assert.deepEqual(
        sparse.dataSync(),
        dense.dataSync(),
        `${fma ? "fused" : "separate"} multiply-adds: the bits differ`,
      );
      const got = sparse.dataSync();
      let worst = 0;
      for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want.value[i]) / want.bound[i]);
      assert.ok(worst <= 1, `an element is ${worst.toFixed(2)} error bounds from the float64 value`);
      t.diagnostic(
        `${(100 * nonzero).toFixed(1)}% nonzero, ${fma ? "fused" : "separate"}: worst error ${worst.toFixed(3)} bounds`,
      );
      tf.dispose([sparse, dense]);
    }
    tf.dispose([a, b, ...(bias ? [bias] : [])]);
  });
}

test("the density limit: 75% where b's strip stays in the L1 cache, 45% otherwise; a NaN spreads as in the dense loop", () => {
  assert.equal(maxSparseDensity(128, 112), 0.75); // dy, 128 rows of a 28-column strip: 14 KB
  assert.equal(maxSparseDensity(512, 112), 0.45); // W4, 512 rows: 57 KB
  const b = tf.randomUniform([512, 784], -1, 1, "float32", 7) as tf.Tensor2D;
  const dy = tf.randomUniform([128, 784], -1, 1, "float32", 17) as tf.Tensor2D;
  const sixty = tf.tensor2d(sparseValues([128, 512], 0.6, 8), [128, 512]);
  const ninety = tf.tensor2d(sparseValues([128, 512], 0.9, 18), [128, 512]);
  const sparseCalls = wasmGemmSparseCalls();
  tf.matMul(sixty, b).dispose();
  assert.equal(wasmGemmSparseCalls(), sparseCalls, "h W4 at 60% nonzero took the sparse loop");
  tf.matMul(sixty, dy, true, false).dispose();
  assert.equal(wasmGemmSparseCalls(), sparseCalls + 1, "h^T dy at 60% nonzero did not take the sparse loop");
  tf.matMul(ninety, dy, true, false).dispose();
  assert.equal(wasmGemmSparseCalls(), sparseCalls + 1, "h^T dy at 90% nonzero took the sparse loop");
  tf.dispose([dy, sixty, ninety]);
  const values = sparseValues([128, 512], 0.1, 9);
  values[5 * 512 + 17] = NaN; // row 5
  const withNaN = tf.tensor2d(values, [128, 512]);
  const out = tf.matMul(withNaN, b);
  assert.equal(wasmGemmSparseCalls(), sparseCalls + 2);
  const got = out.dataSync();
  for (let i = 0; i < 128; i++) {
    const row = got.subarray(i * 784, (i + 1) * 784);
    assert.equal(row.some(Number.isNaN), i === 5, `row ${i}`);
    if (i === 5) assert.ok(row.every(Number.isNaN), "row 5 is NaN throughout, as 784 sums with a NaN term");
  }
  tf.dispose([b, withNaN, out]);
});

test("the sparse loop's result does not depend on the number of threads, to the bit", async (t) => {
  if (info.threads < 2) return t.skip(`one thread here (${info.reason}); nothing to split`);
  const backend = tf.backend() as unknown as WasmBackendLike;
  const a = tf.tensor2d(digits.slice(0, 132 * 784), [132, 784]); // 33 tiles of 4 rows
  const b = tf.randomUniform([784, 512], -1, 1, "float32", 10) as tf.Tensor2D;
  const results: Float32Array[] = [];
  for (const threads of [1, 2, 3]) {
    setWasmGemmThreads(threads);
    assert.ok(await startWasmGemmThreads(backend));
    const sparseCalls = wasmGemmSparseCalls();
    const out = tf.matMul(a, b);
    assert.equal(wasmGemmSparseCalls(), sparseCalls + 1);
    assert.equal(lastWasmGemmParts(backend), threads);
    results.push(out.dataSync().slice() as Float32Array);
    out.dispose();
  }
  setWasmGemmThreads(info.threads);
  assert.deepEqual(results[1], results[0]);
  assert.deepEqual(results[2], results[0]);
  tf.dispose([a, b]);
});

test("memory stays flat with the sparse loop: row lists and packed copies are freed", () => {
  const a = tf.tensor2d(digits.slice(0, 128 * 784), [128, 784]);
  const d = tf.randomUniform([128, 512], -1, 1, "float32", 11) as tf.Tensor2D;
  const w = tf.randomUniform([784, 512], -1, 1, "float32", 12) as tf.Tensor2D;
  const step = () => tf.tidy(() => tf.add(tf.matMul(a, w).sum(), tf.matMul(a, d, true, false).sum()).dataSync());
  step();
  const backend = tf.engine().backend as unknown as { numDataIds(): number };
  const tensors = tf.memory().numTensors;
  const buffers = backend.numDataIds();
  const sparseCalls = wasmGemmSparseCalls();
  for (let i = 0; i < 20; i++) step();
  assert.equal(wasmGemmSparseCalls(), sparseCalls + 40);
  assert.equal(tf.memory().numTensors, tensors);
  assert.equal(backend.numDataIds(), buffers);
  tf.dispose([a, d, w]);
});

test("strip widths: the widest of 8 down to 4 vectors that divides the columns", () => {
  assert.equal(sparseStripVectors(512), 8); // 32 columns
  assert.equal(sparseStripVectors(784), 7); // 28 columns: 784 = 28 x 28
  assert.equal(sparseStripVectors(40), 5);
  assert.equal(sparseStripVectors(24), 6);
  assert.equal(sparseStripVectors(12), 0); // 3 vectors at most: too few sums in flight
});

// The loops themselves, on a memory of their own, against lists and layouts written out by hand.

function loop(bytes: Uint8Array, memory: WebAssembly.Memory): (p0: number, p1: number) => void {
  return new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports.run as (
    p0: number,
    p1: number,
  ) => void;
}

test("row lists: counts and entries in k order for both storage orders; zeros (and -0) dropped, NaN kept", () => {
  const memory = new WebAssembly.Memory({ initial: 16 });
  const [m, k, stride] = [12, 20, 48];
  const A = 1024;
  const COUNTS = 8192;
  const LISTS = 16384;
  for (const transposed of [false, true]) {
    const values = sparseValues([m * k], 0.3, transposed ? 21 : 20);
    values.fill(0, 0, transposed ? 0 : k); // an empty row (stored row 0)
    values[7] = -0;
    values[9] = NaN;
    new Float32Array(memory.buffer, A, m * k).set(values);
    // By hand: element (i, kk) of the product's left operand.
    const at = (i: number, kk: number) => (transposed ? values[kk * m + i] : values[i * k + kk]);
    const want: [number, number][][] = [];
    for (let i = 0; i < m; i++) {
      want.push([]);
      for (let kk = 0; kk < k; kk++) if (at(i, kk) !== 0) want[i].push([kk * stride, at(i, kk)]);
    }
    new Int32Array(memory.buffer, COUNTS, m).fill(0);
    loop(countModule(m, k, transposed, false), memory)(A, COUNTS);
    assert.deepEqual(
      Array.from(new Int32Array(memory.buffer, COUNTS, m)),
      want.map((row) => row.length),
      "counts",
    );
    // Pointers as wasmGemm lays them out: (start, end) per row, a spare slot after each row.
    const pointers = new Int32Array(memory.buffer, LISTS, 2 * m);
    for (let i = 0, slot = LISTS + 8 * m; i < m; i++) {
      pointers[2 * i] = slot;
      pointers[2 * i + 1] = slot + 8 * want[i].length;
      if (transposed) new Int32Array(memory.buffer, COUNTS, m)[i] = slot;
      slot += 8 * (want[i].length + 1);
    }
    loop(fillModule(m, k, transposed, stride, false), memory)(A, transposed ? COUNTS : LISTS);
    const i32 = new Int32Array(memory.buffer);
    const f32 = new Float32Array(memory.buffer);
    for (let i = 0; i < m; i++) {
      const got: [number, number][] = [];
      for (let p = pointers[2 * i]; p < pointers[2 * i + 1]; p += 8) got.push([i32[p / 4], f32[p / 4 + 1]]);
      assert.deepEqual(got, want[i], `${transposed ? "transposed" : "row-major"} row ${i}`);
    }
  }
});

test("packing: strips of consecutive columns, rows one after another; the transposed packing likewise", () => {
  const memory = new WebAssembly.Memory({ initial: 16 });
  const [depth, columns] = [12, 16];
  const SRC = 1024;
  const DST = 65536;
  const f32 = new Float32Array(memory.buffer);
  // src(k, j) = 1000 k + j, rows 80 bytes apart (16 columns and 4 floats of padding).
  const rowStride = 80;
  for (let kk = 0; kk < depth; kk++)
    for (let j = 0; j < columns; j++) f32[(SRC + kk * rowStride) / 4 + j] = 1000 * kk + j;
  for (const stripBytes of [32, 64]) {
    loop(packModule(columns, depth, rowStride, stripBytes, false), memory)(SRC, DST);
    const width = stripBytes / 4;
    for (let j = 0; j < columns; j++) {
      for (let kk = 0; kk < depth; kk++) {
        const strip = Math.floor(j / width);
        assert.equal(
          f32[DST / 4 + strip * depth * width + kk * width + (j % width)],
          1000 * kk + j,
          `strip width ${width}, (${kk}, ${j})`,
        );
      }
    }
  }
  // The transpose of a row-major 16 x 12 matrix t(j, k) = 1000 k + j, packed in strips of 8 columns.
  for (let j = 0; j < columns; j++) for (let kk = 0; kk < depth; kk++) f32[SRC / 4 + j * depth + kk] = 1000 * kk + j;
  loop(transposePackModule(columns, depth, false), memory)(SRC, DST);
  for (let j = 0; j < columns; j++) {
    for (let kk = 0; kk < depth; kk++)
      assert.equal(
        f32[DST / 4 + Math.floor(j / 8) * depth * 8 + kk * 8 + (j % 8)],
        1000 * kk + j,
        `transposed (${kk}, ${j})`,
      );
  }
});
