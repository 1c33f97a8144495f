/**
 * Matrix products for the wasm backend that read the operands where they lie: `installWasmGemm()`
 * registers them for `BatchMatMul` and `_FusedMatMul` (bias, linear or ReLU) on the wasm backend, for
 * float32 products without batch dimensions of at least `MIN_MULTIPLY_ADDS` multiply-adds where one side
 * of the output is a multiple of 8; everything else goes to the kernel registered before. The stock
 * kernel re-packs a new right operand at every call, which training pays at every product. The loops are
 * generated in `wasmGemmCode.ts` and run on the threads of `wasmThreadPool.ts`; the results are the same
 * to the bit as XNNPACK's. How and why: docs/wasm-engine.md.
 */
import * as tf from "@tensorflow/tfjs";
import { option, OPTIONS, type Environment } from "../system/options";
import { type WasmBackendLike, heapBuffer, relaxedMadd } from "./wasmCode";
import {
  type GemmSpec,
  MIN_MULTIPLY_ADDS,
  TILE_COLUMNS,
  TILE_ROWS,
  maxSparseDensity,
  packModule,
  sparseStripVectors,
  transposeModule,
  transposePackModule,
} from "./wasmGemmCode";
import { countModule, fillModule } from "./rowLists";
import { GemmRunner, runnerFor } from "./wasmThreadPool";

let gemmFma = false;

/** `VAE_WASM_FMA=0` keeps the products' separate multiplies and adds where fused ones are available. */
export const WASM_FMA_ENV = OPTIONS.wasmFma.name;

/**
 * Whether the products should use fused multiply-adds: where relaxed SIMD fuses them (`relaxedMadd()`),
 * unless `VAE_WASM_FMA=0`. Throws on any other value than 0 or 1, naming the variable.
 */
export function wasmFmaWanted(env?: Environment): boolean {
  return option("wasmFma", env) && relaxedMadd() === "fused";
}

/**
 * Switches the products between fused multiply-adds (one rounding per step: faster, and different in
 * the last bits) and separate multiplies and adds (bit-equal to XNNPACK's kernels). Returns the previous
 * setting. Throws when fused multiply-adds are asked for where `relaxedMadd()` is not `fused`.
 */
export function setWasmGemmFma(enabled: boolean): boolean {
  if (enabled && relaxedMadd() !== "fused")
    throw new Error(`Fused multiply-adds are not available here (WebAssembly relaxed SIMD: ${relaxedMadd()}).`);
  const previous = gemmFma;
  gemmFma = enabled;
  return previous;
}

/** Whether the products now use fused multiply-adds. */
export function wasmGemmFma(): boolean {
  return gemmFma;
}

/**
 * The row lists of the sparse loop (`rowLists.ts`) for the m x k left operand stored at `a` (row-major
 * [m, k], or [k, m] when `transposeA`), in a new heap buffer, entries holding k * stride. Undefined
 * (nothing allocated) when more than `maxDensity` of a is nonzero, or the loops do not apply.
 */
function sparseRows(
  backend: WasmBackendLike,
  runner: GemmRunner,
  a: tf.TensorInfo,
  m: number,
  k: number,
  transposeA: boolean,
  stride: number,
  maxDensity: number,
): tf.TensorInfo | undefined {
  if ((transposeA ? m : k) % 4 !== 0) return undefined;
  const count = runner.helperLoop(`count ${m} ${k} ${transposeA}`, (shared) => countModule(m, k, transposeA, shared));
  const fill = runner.helperLoop(`fill ${m} ${k} ${transposeA} ${stride}`, (shared) =>
    fillModule(m, k, transposeA, stride, shared),
  );
  if (!count || !fill) return undefined;
  const offset = (x: tf.TensorInfo) => backend.dataIdMap.get(x.dataId).memoryOffset;
  // The counts per row, then the cursors of the transposed fill.
  const counts = backend.makeOutput([m], "float32");
  try {
    if (transposeA) new Int32Array(heapBuffer(backend.wasm), offset(counts), m).fill(0);
    count(offset(a), offset(counts));
    let rowCounts = new Int32Array(heapBuffer(backend.wasm), offset(counts), m);
    let nonzero = 0;
    for (let i = 0; i < m; i++) nonzero += rowCounts[i];
    if (nonzero > maxDensity * m * k) return undefined;
    // Row pointers (start, end) per row, then each row's entries and one more slot, which takes the
    // writes of the zeros after the row's last nonzero.
    const lists = backend.makeOutput([2 * m + 2 * (nonzero + m)], "float32");
    // Views only after allocating: growing the memory replaces its buffer.
    const buffer = heapBuffer(backend.wasm);
    rowCounts = new Int32Array(buffer, offset(counts), m);
    const pointers = new Int32Array(buffer, offset(lists), 2 * m);
    for (let i = 0, slot = offset(lists) + 8 * m; i < m; i++) {
      const count = rowCounts[i];
      pointers[2 * i] = slot;
      pointers[2 * i + 1] = slot + 8 * count;
      if (transposeA) rowCounts[i] = slot;
      slot += 8 * (count + 1);
    }
    fill(offset(a), transposeA ? offset(counts) : offset(lists));
    return lists;
  } finally {
    backend.disposeData(counts.dataId);
  }
}

// ---------------------------------------------------------------------------------------------------
// The kernels.

interface Product {
  a: tf.TensorInfo;
  b: tf.TensorInfo;
  transposeA: boolean;
  transposeB: boolean;
  bias?: tf.TensorInfo;
  relu: boolean;
}

/** The two trailing dimensions, if every leading one is 1 (no batch). */
function matrixShape(x: tf.TensorInfo): [number, number] | undefined {
  const { shape } = x;
  if (shape.length < 2 || shape.slice(0, -2).some((d) => d !== 1)) return undefined;
  return [shape[shape.length - 2], shape[shape.length - 1]];
}

/**
 * Computes the product with a generated loop; undefined (nothing allocated) when it does not apply, so
 * that the caller falls back to the previous kernel.
 */
export function wasmGemm(backend: WasmBackendLike, p: Product): tf.TensorInfo | undefined {
  return gemm(backend, p, false)?.out;
}

/**
 * Starts the product on a helper thread that is free and returns at once: `out` is written once
 * `wait()` has returned (call it exactly once; it frees the product's temporary buffers). Meanwhile
 * the main thread can compute something else, such as another product (which then runs without that
 * helper). Where no helper is free, the product is computed at once and `wait` has nothing to do.
 * Undefined (nothing allocated) where the generated loops do not apply, as `wasmGemm`.
 */
export function wasmGemmAsync(
  backend: WasmBackendLike,
  p: Product,
): { out: tf.TensorInfo; wait: () => void } | undefined {
  return gemm(backend, p, true);
}

function gemm(
  backend: WasmBackendLike,
  p: Product,
  async: boolean,
): { out: tf.TensorInfo; wait: () => void } | undefined {
  const aShape = matrixShape(p.a);
  const bShape = matrixShape(p.b);
  if (!aShape || !bShape || p.a.dtype !== "float32" || p.b.dtype !== "float32") return undefined;
  const m = p.transposeA ? aShape[1] : aShape[0];
  const k = p.transposeA ? aShape[0] : aShape[1];
  const n = p.transposeB ? bShape[0] : bShape[1];
  if (k !== (p.transposeB ? bShape[1] : bShape[0]) || m * n * k < MIN_MULTIPLY_ADDS) return undefined;
  const outShape = [...(p.a.shape.length >= p.b.shape.length ? p.a.shape : p.b.shape).slice(0, -2), m, n];
  const runner = runnerFor(backend);
  if (!runner) return undefined;
  const offset = (x: tf.TensorInfo) => backend.dataIdMap.get(x.dataId).memoryOffset;

  // Temporary heap buffers (packed operands, row lists), freed when the product is done.
  const scratch: tf.TensorInfo[] = [];
  let pending: (() => void) | undefined;
  const launch = (
    id: number,
    spec: GemmSpec,
    a: number,
    b: number,
    out: number,
    bias: number,
    rows: number,
    multiplyAdds?: number,
  ) => {
    if (async) pending = runner.runOnHelper(id, a, b, out, bias, rows);
    else runner.run(id, spec, a, b, out, bias, rows, multiplyAdds);
  };
  const done = (out: tf.TensorInfo) => {
    calls++;
    const wait = pending;
    if (!wait) return { out, wait: () => {} };
    // The buffers stay until the helper is done with them.
    const kept = scratch.splice(0);
    pending = undefined;
    return {
      out,
      wait: () => {
        try {
          wait();
        } finally {
          for (const buffer of kept) backend.disposeData(buffer.dataId);
        }
      },
    };
  };
  try {
    if (!p.transposeB) {
      // A bias along the columns only ([n] or [1, n]); other broadcasts go to the stock kernel.
      if (
        p.bias &&
        (p.bias.dtype !== "float32" ||
          tf.util.sizeFromShape(p.bias.shape) !== n ||
          p.bias.shape[p.bias.shape.length - 1] !== n ||
          p.bias.shape.length > 2)
      )
        return undefined;
      if (n % TILE_COLUMNS !== 0) {
        // A narrow product (the latent layers': n = 2) is computed transposed, out^T = b^T a^T: the loop's
        // rows are the n columns of out (b^T read from b in place), its columns the m rows of out (a^T,
        // which is a itself when a is transposed, else a transposed copy), stored transposed. The bias
        // is then along the loop's rows.
        if (m % TILE_COLUMNS !== 0) return undefined;
        const stripBytes = 4 * TILE_COLUMNS;
        const packed = p.transposeA
          ? conflictingRows(4 * m)
            ? packedCopy(backend, runner, p.a, k, m, 4 * m, stripBytes)
            : undefined
          : transposePackedCopy(backend, runner, p.a, m, k);
        if (packed) scratch.push(packed);
        if (!packed && !p.transposeA) return undefined;
        const spec: GemmSpec = {
          columns: m,
          depth: k,
          aRowStride: 4,
          aDepthStride: 4 * n,
          bDepthStride: packed ? stripBytes : 4 * m,
          outRowStride: 4,
          outColumnStride: 4 * n,
          bias: false,
          rowBias: p.bias !== undefined,
          tailRows: n % TILE_ROWS,
          relu: p.relu,
          fma: gemmFma,
          ...(packed ? { packed: true } : {}),
        };
        const id = runner.loopId(spec);
        if (id === undefined) return undefined;
        const out = backend.makeOutput(outShape, "float32");
        launch(id, spec, offset(p.b), offset(packed ?? p.a), offset(out), p.bias ? offset(p.bias) : 0, n);
        return done(out);
      }
      // out = a b: rows of out are rows of a; b's rows hold consecutive columns.
      // A product handed to a helper stays dense: building the lists would hold up the main thread,
      // which has a product of its own to compute meanwhile.
      const vectors = (sparseGemm ?? option("wasmSparse")) && !async ? sparseStripVectors(n) : 0;
      const lists = vectors
        ? sparseRows(
            backend,
            runner,
            p.a,
            m,
            k,
            p.transposeA,
            conflictingRows(4 * n) ? 16 * vectors : 4 * n,
            maxSparseDensity(k, 16 * vectors),
          )
        : undefined;
      // A transposed left operand whose stored rows thrash the cache: a transposed copy, read row by row.
      const aCopy =
        !lists && p.transposeA && conflictingRows(4 * m) && k % 4 === 0
          ? transposedCopy(backend, runner, p.a, k, m)
          : undefined;
      if (aCopy) scratch.push(aCopy);
      const aTransposed = p.transposeA && !aCopy;
      const stripBytes = lists ? 16 * vectors : 4 * TILE_COLUMNS;
      const packed = conflictingRows(4 * n) ? packedCopy(backend, runner, p.b, k, n, 4 * n, stripBytes) : undefined;
      if (lists) scratch.push(lists);
      if (packed) scratch.push(packed);
      // The lists hold offsets into a packed b (not reached: packing compiles where the loops do).
      if (lists && !packed && conflictingRows(4 * n)) return undefined;
      const spec: GemmSpec = {
        columns: n,
        depth: k,
        aRowStride: lists ? 8 : aTransposed ? 4 : 4 * k,
        aDepthStride: lists ? 0 : aTransposed ? 4 * m : 4,
        bDepthStride: packed ? stripBytes : 4 * n,
        outRowStride: 4 * n,
        outColumnStride: 4,
        bias: p.bias !== undefined,
        relu: p.relu,
        fma: gemmFma,
        ...(packed ? { packed: true } : {}),
        ...(lists ? { sparse: true } : { tailRows: m % TILE_ROWS }),
      };
      const id = runner.loopId(spec);
      if (id === undefined) return undefined;
      const out = backend.makeOutput(outShape, "float32");
      const multiplyAdds = lists ? (lists.shape[0] / 2 - 2 * m) * n : m * n * k;
      launch(
        id,
        spec,
        offset(lists ?? aCopy ?? p.a),
        offset(packed ?? p.b),
        offset(out),
        p.bias ? offset(p.bias) : 0,
        m,
        multiplyAdds,
      );
      if (lists) sparseCalls++;
      return done(out);
    }

    // out = a b^T = (b a^T)^T: rows of the loop are rows of b (columns of out), its columns rows of a,
    // read from a^T, packed: a itself is a^T when a is transposed, else it is transposed while packing.
    if (p.bias || p.relu || m % TILE_COLUMNS !== 0) return undefined;
    const stripBytes = 4 * TILE_COLUMNS;
    const packed = p.transposeA
      ? packedCopy(backend, runner, p.a, k, m, 4 * m, stripBytes)
      : transposePackedCopy(backend, runner, p.a, m, k);
    if (!packed) return undefined;
    scratch.push(packed);
    const spec: GemmSpec = {
      columns: m,
      depth: k,
      aRowStride: 4 * k,
      aDepthStride: 4,
      bDepthStride: stripBytes,
      outRowStride: 4,
      outColumnStride: 4 * n,
      bias: false,
      relu: false,
      fma: gemmFma,
      packed: true,
      tailRows: n % TILE_ROWS,
    };
    const id = runner.loopId(spec);
    if (id === undefined) return undefined;
    const out = backend.makeOutput(outShape, "float32");
    launch(id, spec, offset(p.b), offset(packed), offset(out), 0, n);
    return done(out);
  } finally {
    for (const buffer of scratch) backend.disposeData(buffer.dataId);
  }
}

/**
 * Whether rows `rowStride` bytes apart share few sets of the L1 cache (64 sets of 64-byte lines): a
 * multiple of 512 bytes maps every eighth row or more to the same set, and a strip read in place is
 * evicted before it is read again. Such operands are packed; others (784 floats: 3,136 bytes, an odd
 * number of lines) are read in place, which saves the copy (docs/performance.md).
 */
function conflictingRows(rowStride: number): boolean {
  return rowStride % 512 === 0;
}

/** `src` (depth x columns, rows `rowStride` bytes apart) packed into strips (`packModule`), on the heap. */
function packedCopy(
  backend: WasmBackendLike,
  runner: GemmRunner,
  src: tf.TensorInfo,
  depth: number,
  columns: number,
  rowStride: number,
  stripBytes: number,
): tf.TensorInfo | undefined {
  const loop = runner.helperLoop(`pack ${columns} ${depth} ${rowStride} ${stripBytes}`, (shared) =>
    packModule(columns, depth, rowStride, stripBytes, shared),
  );
  if (!loop) return undefined;
  const out = backend.makeOutput([depth * columns], "float32");
  loop(backend.dataIdMap.get(src.dataId).memoryOffset, backend.dataIdMap.get(out.dataId).memoryOffset);
  return out;
}

/** The transpose of `src` (rows x columns, row-major) as a new columns x rows matrix on the heap. */
function transposedCopy(
  backend: WasmBackendLike,
  runner: GemmRunner,
  src: tf.TensorInfo,
  rows: number,
  columns: number,
): tf.TensorInfo | undefined {
  const loop = runner.helperLoop(`plain transpose ${rows} ${columns}`, (shared) =>
    transposeModule(rows, columns, shared),
  );
  if (!loop) return undefined;
  const out = backend.makeOutput([columns, rows], "float32");
  loop(backend.dataIdMap.get(src.dataId).memoryOffset, backend.dataIdMap.get(out.dataId).memoryOffset);
  return out;
}

/** The transpose of `src` (rows x columns, row-major) packed into strips (`transposePackModule`), on the heap. */
function transposePackedCopy(
  backend: WasmBackendLike,
  runner: GemmRunner,
  src: tf.TensorInfo,
  rows: number,
  columns: number,
): tf.TensorInfo | undefined {
  const loop = runner.helperLoop(`transpose ${rows} ${columns}`, (shared) =>
    transposePackModule(rows, columns, shared),
  );
  if (!loop) return undefined;
  const out = backend.makeOutput([rows * columns], "float32");
  loop(backend.dataIdMap.get(src.dataId).memoryOffset, backend.dataIdMap.get(out.dataId).memoryOffset);
  return out;
}

let installed: { batchMatMul: tf.KernelConfig; fusedMatMul: tf.KernelConfig; mine: tf.KernelConfig[] } | undefined;
let calls = 0;
let sparseCalls = 0;
/** Set by `setWasmGemmSparse`; until then, the option. */
let sparseGemm: boolean | undefined;

/** How many of `wasmGemmCalls()` took the sparse loop. */
export function wasmGemmSparseCalls(): number {
  return sparseCalls;
}

/**
 * Switches the sparse loop for left operands with few nonzeros on or off (on by default;
 * `VAE_WASM_SPARSE=0` starts with it off). It changes no bit of any product, only the time. Returns
 * the previous setting.
 */
export function setWasmGemmSparse(enabled: boolean): boolean {
  const previous = sparseGemm ?? option("wasmSparse");
  sparseGemm = enabled;
  return previous;
}

/** How many products the generated loops have computed in this process (for tests and benchmarks). */
export function wasmGemmCalls(): number {
  return calls;
}

/**
 * Runs `fn` with the kernels that were registered before `installWasmGemm` (the stock XNNPACK products
 * with the transposed-product fix), to compare against. Synchronous functions only.
 */
export function withoutWasmGemm<T>(fn: () => T): T {
  if (!installed) return fn();
  const { batchMatMul, fusedMatMul, mine } = installed;
  const swap = (configs: tf.KernelConfig[]) => {
    for (const config of configs) {
      tf.unregisterKernel(config.kernelName, "wasm");
      tf.registerKernel(config);
    }
  };
  swap([batchMatMul, fusedMatMul]);
  try {
    return fn();
  } finally {
    swap(mine);
  }
}

/**
 * Registers the generated products for `BatchMatMul` and `_FusedMatMul` on the wasm backend, in front
 * of the kernels registered so far (which still take every product these loops do not cover). Does
 * nothing when `VAE_WASM_FAST_KERNELS=0` (the stock kernels, for comparison) or when it already ran.
 */
export function installWasmGemm(): void {
  if (installed || !option("wasmFastKernels")) return;
  const batchMatMul = tf.getKernel("BatchMatMul", "wasm");
  const fusedMatMul = tf.getKernel("_FusedMatMul", "wasm");
  if (!batchMatMul || !fusedMatMul) return;
  type Attrs = { transposeA: boolean; transposeB: boolean; activation?: string };
  const product = (inputs: tf.NamedTensorInfoMap, attrs: Attrs, bias?: tf.TensorInfo): Product => ({
    a: inputs.a as tf.TensorInfo,
    b: inputs.b as tf.TensorInfo,
    transposeA: attrs.transposeA,
    transposeB: attrs.transposeB,
    bias,
    relu: attrs.activation === "relu",
  });
  const batchMatMulFunc: tf.KernelFunc = (args) =>
    wasmGemm(args.backend as unknown as WasmBackendLike, product(args.inputs, args.attrs as unknown as Attrs)) ??
    batchMatMul.kernelFunc(args);
  const fusedMatMulFunc: tf.KernelFunc = (args) => {
    const attrs = args.attrs as unknown as Attrs;
    const activation = attrs.activation ?? "linear";
    const supported = (activation === "linear" || activation === "relu") && args.inputs.preluActivationWeights == null;
    const bias = (args.inputs.bias as tf.TensorInfo | null | undefined) ?? undefined;
    const out = supported
      ? wasmGemm(args.backend as unknown as WasmBackendLike, product(args.inputs, attrs, bias))
      : undefined;
    return out ?? fusedMatMul.kernelFunc(args);
  };
  const mine: tf.KernelConfig[] = [
    { ...batchMatMul, kernelFunc: batchMatMulFunc },
    { ...fusedMatMul, kernelFunc: fusedMatMulFunc },
  ];
  for (const config of mine) {
    tf.unregisterKernel(config.kernelName, "wasm");
    tf.registerKernel(config);
  }
  installed = { batchMatMul, fusedMatMul, mine };
}
