/**
 * Matrix products for the wasm backend that read the operands where they lie.
 *
 * The stock `BatchMatMul` hands the right operand to XNNPACK as the weights of a fully-connected
 * operator, which first re-packs it (reading it column by column) and caches the packed copy on the
 * tensor. That pays off for inference, where the weights never change; in training every product has a
 * new right operand (the weights change at every step, the gradients are new), so every product pays
 * for the packing: 128 x 784 x 512 takes 1.1 ms with the packed weights cached and 2.5 ms with new ones
 * on two threads here. The transposed products of the backward pass also need a transposed copy first.
 *
 * Here a product is one WebAssembly SIMD loop, generated for its shape and strides: a 4 x 8 tile of the
 * output is kept in eight vector registers while k runs over the shared dimension, each step
 * broadcasting four elements of the left operand and loading eight consecutive elements of a row of the
 * right one. Any strides work for the left operand, so a transposed left operand costs nothing; a
 * transposed right operand is handled by computing the transposed product (b a^T = (a b^T)^T) and
 * storing it transposed. Each output element is summed in k order from 0 (or from the bias, for fused
 * products) with separate multiplies and adds, exactly as XNNPACK's WebAssembly kernels sum it, so the
 * results are the same to the bit.
 *
 * The right operand is first copied into strips of consecutive columns (`packModule`; the transposed
 * copy of a b^T is packed the same way), so that a loop reads its strip as one contiguous run instead
 * of eight floats out of every row: rows a power of two apart fall into a few sets of the L1 cache.
 *
 * A left operand that is mostly zeros (the encoder's input: about 81% of MNIST's pixels are blank; a
 * ReLU output in the backward pass) goes to a sparse loop that reads lists of its nonzeros
 * (`rowLists.ts`) and skips the zero terms. A zero term adds +-0 in the dense loop, so the sums are the
 * same to the bit. The encoder's forward product and its weight gradient take about a third of their
 * dense time on 128 digits. (Where b holds an infinity, 0 x infinity is NaN in the dense loop and
 * skipped in the sparse one; the loss is NaN long before a weight is infinite.)
 *
 * With the threaded build, the rows are split across the main thread and `threads - 1` Node workers
 * that instantiate the same loops on the same shared memory and are woken with `Atomics`; each output
 * element is still computed by one thread, so the thread count changes no bit.
 *
 * `installWasmGemm()` registers it for `BatchMatMul` and `_FusedMatMul` (bias, linear or ReLU) on the
 * wasm backend, for float32 products without batch dimensions of at least `MIN_MULTIPLY_ADDS`
 * multiply-adds where one side of the output is a multiple of 8 (rows left over after the last whole
 * tile of 4 get a tile of their own; a narrow output, such as the latent layers' 2 columns, is computed
 * transposed); everything else goes to the kernel registered before.
 */
import { MessageChannel, type MessagePort, Worker } from "node:worker_threads";
import * as tf from "@tensorflow/tfjs";
import {
  I32,
  V128,
  type MemoryLike,
  type WasmBackendLike,
  heapBuffer,
  instantiate,
  isShared,
  memoryModule,
  memoryOf,
  op,
  relaxedMadd,
} from "./wasmCode";
import { countModule, fillModule } from "./rowLists";

/** Rows and columns of the register tile. */
export const TILE_ROWS = 4;
export const TILE_COLUMNS = 8;
/** Products with fewer multiply-adds go to the stock kernel (not worth waking threads for). */
export const MIN_MULTIPLY_ADDS = 1 << 16;
/**
 * Products with fewer multiply-adds stay on the main thread: waking a helper costs more than it saves
 * there (the backward pass's 128 x 2 x 512 products), above all when other processes share the cores.
 */
export const MIN_THREADED_MULTIPLY_ADDS = 1 << 20;

/**
 * One generated loop: out(i, j) = [bias(j) +] sum_k a(i, k) b(k, j) [then max(., 0)] for rows i of a
 * call and columns j < columns. Strides are in bytes; b's rows hold consecutive columns.
 */
export interface GemmSpec {
  readonly columns: number;
  readonly depth: number;
  /** Byte distance of a(i + 1, k) from a(i, k), and of a(i, k + 1). */
  readonly aRowStride: number;
  readonly aDepthStride: number;
  /**
   * Byte distance of b(k + 1, j) from b(k, j). For a packed b (`packModule`), the strip width in bytes:
   * the strip holding column j then starts at b + j_bytes * depth, where j_bytes = 4 j.
   */
  readonly bDepthStride: number;
  /** b is packed in strips of consecutive columns, each strip's rows one after another (`packModule`). */
  readonly packed?: boolean;
  /** Byte distances of out(i + 1, j) and out(i, j + 1) from out(i, j); 4 for the latter is a row-major store. */
  readonly outRowStride: number;
  readonly outColumnStride: number;
  readonly bias: boolean;
  /** The bias is along the rows (out(i, j) starts at bias(i)): a product computed transposed. */
  readonly rowBias?: boolean;
  /**
   * Rows after the last whole tile of a call (0 to TILE_ROWS - 1): a call's rows are whole tiles and
   * then exactly this many (the runner gives the last part of a split the partial tile).
   */
  readonly tailRows?: number;
  readonly relu: boolean;
  /**
   * Each step as one fused multiply-add (relaxed SIMD's f32x4.relaxed_madd, rounded once) instead of a
   * multiply and an add (rounded twice, as XNNPACK does). Only where `relaxedMadd()` is `fused`.
   */
  readonly fma: boolean;
  /**
   * The left operand comes as row lists of its nonzero elements (`sparseRows`): a is then the address
   * of the row pointers (aRowStride 8), and the loop is `sparseGemmModule`'s.
   */
  readonly sparse?: boolean;
}

/** `gemm(a, b, out, bias, rows)`: byte offsets on the heap; rows a multiple of `TILE_ROWS`. */
export type GemmLoop = (a: number, b: number, out: number, bias: number, rows: number) => void;

/** The WebAssembly module of one loop (exported as `gemm`). */
export function gemmModule(spec: GemmSpec, shared: boolean): Uint8Array {
  const { columns, depth, aRowStride, aDepthStride, bDepthStride, outRowStride, outColumnStride } = spec;
  const tailRows = spec.tailRows ?? 0;
  if (columns % TILE_COLUMNS !== 0 || columns <= 0 || depth <= 0) throw new RangeError(`gemmModule: columns ${columns} (a multiple of ${TILE_COLUMNS}) and depth ${depth} must be positive.`);
  if (!Number.isInteger(tailRows) || tailRows < 0 || tailRows >= TILE_ROWS) throw new RangeError(`gemmModule: tailRows ${tailRows} must be 0 to ${TILE_ROWS - 1}.`);
  // Parameters, then locals.
  const [a, b, out, bias, rows] = [0, 1, 2, 3, 4];
  const [j, i, ap, bp, apEnd, op0] = [5, 6, 7, 8, 9, 10];
  const acc = (r: number, h: number) => 11 + 2 * r + h;
  const [b0, b1, av] = [11 + 2 * TILE_ROWS, 12 + 2 * TILE_ROWS, 13 + 2 * TILE_ROWS];
  const { get, set } = op;

  /** The code of one tile of `tileRows` rows starting at row i, columns j .. j + 7. */
  const tile = (tileRows: number): number[] => {
    // The accumulators start at 0, or at the bias of the tile's columns, or of its rows.
    const init: number[] = [];
    for (let r = 0; r < tileRows; r++) {
      for (let h = 0; h < 2; h++) {
        const start = spec.rowBias
          ? [...get(bias), ...get(i), ...op.i32Const(4), ...op.i32Mul, ...op.i32Add, ...op.v128Load32Splat(4 * r)]
          : spec.bias
            ? [...get(bias), ...get(j), ...op.i32Add, ...op.v128Load(16 * h)]
            : op.v128Zero;
        init.push(...start, ...set(acc(r, h)));
      }
    }
    // One step of k: two vectors of b's row, then per row of the tile a broadcast element of a.
    const step: number[] = [...get(bp), ...op.v128Load(0), ...set(b0), ...get(bp), ...op.v128Load(16), ...set(b1)];
    for (let r = 0; r < tileRows; r++) {
      step.push(...get(ap), ...op.v128Load32Splat(r * aRowStride), ...set(av));
      for (let h = 0; h < 2; h++) {
        const product = [...get(av), ...get(h === 0 ? b0 : b1)];
        step.push(...(spec.fma ? [...product, ...get(acc(r, h)), ...op.f32x4RelaxedMadd] : [...get(acc(r, h)), ...product, ...op.f32x4Mul, ...op.f32x4Add]), ...set(acc(r, h)));
      }
    }
    step.push(...get(bp), ...op.i32Const(bDepthStride), ...op.i32Add, ...set(bp));
    step.push(...get(ap), ...op.i32Const(aDepthStride), ...op.i32Add, ...op.tee(ap), ...get(apEnd), ...op.i32Ne, ...op.brIf(0));
    // The tile's results: vectors along a row, or single lanes when the output is stored transposed.
    const store: number[] = [];
    for (let r = 0; r < tileRows; r++) {
      for (let h = 0; h < 2; h++) {
        if (spec.relu) store.push(...get(acc(r, h)), ...op.v128Zero, ...op.f32x4Max, ...set(acc(r, h)));
        if (outColumnStride === 4) {
          store.push(...get(op0), ...get(acc(r, h)), ...op.v128Store(r * outRowStride + 16 * h));
        } else {
          for (let lane = 0; lane < 4; lane++) {
            store.push(...get(op0), ...get(acc(r, h)), ...op.f32x4ExtractLane(lane), ...op.f32Store(r * outRowStride + (4 * h + lane) * outColumnStride));
          }
        }
      }
    }
    return [
      // ap = a + i * aRowStride; bp = b + j (or the strip's start when b is packed); apEnd = ap + depth * aDepthStride
      ...get(a), ...get(i), ...op.i32Const(aRowStride), ...op.i32Mul, ...op.i32Add, ...set(ap),
      ...get(b), ...get(j), ...(spec.packed ? [...op.i32Const(depth), ...op.i32Mul] : []), ...op.i32Add, ...set(bp),
      ...get(ap), ...op.i32Const(depth * aDepthStride), ...op.i32Add, ...set(apEnd),
      ...init,
      ...op.loop, ...step, ...op.end,
      // op0 = out + i * outRowStride + (j / 4) * outColumnStride
      ...get(out), ...get(i), ...op.i32Const(outRowStride), ...op.i32Mul, ...op.i32Add,
      ...get(j), ...op.i32Const(outColumnStride / 4), ...op.i32Mul, ...op.i32Add, ...set(op0),
      ...store,
    ];
  };
  // Columns outermost (a 8-column strip of b stays in the L1 cache), then rows, in whole tiles while
  // at least TILE_ROWS rows are left, then the last `tailRows` rows (the caller passes rows that end so).
  const body = [
    ...op.i32Const(0), ...set(j),
    ...op.loop,
    ...op.i32Const(0), ...set(i),
    ...op.block,
    ...op.loop,
    ...get(rows), ...get(i), ...op.i32Sub, ...op.i32Const(TILE_ROWS), ...op.i32LtU, ...op.brIf(1),
    ...tile(TILE_ROWS),
    ...get(i), ...op.i32Const(TILE_ROWS), ...op.i32Add, ...set(i),
    ...op.br(0),
    ...op.end,
    ...op.end,
    ...(tailRows ? [...op.block, ...get(i), ...get(rows), ...op.i32Eq, ...op.brIf(0), ...tile(tailRows), ...op.end] : []),
    // j is a byte offset into b's row: 8 floats per strip.
    ...get(j), ...op.i32Const(4 * TILE_COLUMNS), ...op.i32Add, ...op.tee(j), ...op.i32Const(4 * columns), ...op.i32LtU, ...op.brIf(0),
    ...op.end,
  ];
  return memoryModule({ name: "gemm", params: [I32, I32, I32, I32, I32], locals: [[6, I32], [2 * TILE_ROWS + 3, V128]], body }, shared);
}

// ---------------------------------------------------------------------------------------------------
// Sparse left operands: the encoder's input (MNIST digits are about 81% blank pixels) and ReLU outputs.

/**
 * Left operands with at most this share of nonzero elements go to the sparse loop, when the strip of b
 * it reads for each nonzero stays in the L1 cache (`SPARSE_L1_STRIP_BYTES`; the weight gradients'
 * b = dy, 128 rows); otherwise up to `MAX_SPARSE_DENSITY_L2`. Measured on 128 x 512 ReLU outputs (two
 * threads): h^T dy took 1.28 ms sparse against 1.59 dense at 70% nonzero, 1.44 against 1.63 at 80%;
 * h W4 (a 512-row strip of 57 KB) 1.43 against 1.47 at 45% and 1.89 against 1.49 at 60%.
 */
export const MAX_SPARSE_DENSITY = 0.75;
export const MAX_SPARSE_DENSITY_L2 = 0.45;
const SPARSE_L1_STRIP_BYTES = 32 * 1024;

/** The density up to which the sparse loop is taken, for strips of b of `depth` rows of `stripBytes`. */
export function maxSparseDensity(depth: number, stripBytes: number): number {
  return depth * stripBytes <= SPARSE_L1_STRIP_BYTES ? MAX_SPARSE_DENSITY : MAX_SPARSE_DENSITY_L2;
}
/** The widest strip of output columns a sparse loop keeps in registers, in vectors of four. */
const MAX_SPARSE_VECTORS = 8;
/** Strips narrower than this (in vectors) leave too few independent sums to hide the multiply-add latency. */
const MIN_SPARSE_VECTORS = 4;

/** Vectors per strip of the sparse loop for `columns` output columns (0: no strip width fits). */
export function sparseStripVectors(columns: number): number {
  for (let vectors = MAX_SPARSE_VECTORS; vectors >= MIN_SPARSE_VECTORS; vectors--) {
    if (columns % (4 * vectors) === 0) return vectors;
  }
  return 0;
}

/**
 * The sparse loop: out(i, j) = [bias(j) +] sum over the nonzero a(i, k), in k order, of a(i, k) b(k, j)
 * [then max(., 0)]. Row i of a is a list from the address stored at a + 8 i to the one stored at
 * a + 8 i + 4: 8-byte entries holding k * bDepthStride (i32) and a(i, k) (f32) (`rowLists.ts`). Skipping a zero
 * term leaves every sum bit-identical to the dense loop's, which adds 0 * b(k, j) = +-0 there (up to
 * the sign of a zero result, which max(., 0), the next nonzero term or a bias erases). The output is
 * computed in strips of `sparseStripVectors(columns)` vectors, row by row.
 */
export function sparseGemmModule(spec: GemmSpec, shared: boolean): Uint8Array {
  const { columns, outRowStride, outColumnStride } = spec;
  const vectors = sparseStripVectors(columns);
  if (!vectors || outColumnStride !== 4 || spec.aRowStride !== 8 || (spec.packed && spec.bDepthStride !== 16 * vectors)) throw new RangeError(`sparseGemmModule: ${columns} columns stored with stride ${outColumnStride} are not covered.`);
  const [a, b, out, bias, rows] = [0, 1, 2, 3, 4];
  const [j, i, rp, p, pEnd, bp, o, strip] = [5, 6, 7, 8, 9, 10, 11, 12];
  const acc = (h: number) => 13 + h;
  const av = 13 + vectors;
  const { get, set } = op;
  const init: number[] = [];
  for (let h = 0; h < vectors; h++) {
    init.push(...(spec.bias ? [...get(bias), ...get(j), ...op.i32Add, ...op.v128Load(16 * h)] : op.v128Zero), ...set(acc(h)));
  }
  const step: number[] = [...get(p), ...op.v128Load32Splat(4), ...set(av), ...get(strip), ...get(p), ...op.i32Load(0), ...op.i32Add, ...set(bp)];
  for (let h = 0; h < vectors; h++) {
    const product = [...get(av), ...get(bp), ...op.v128Load(16 * h)];
    step.push(...(spec.fma ? [...product, ...get(acc(h)), ...op.f32x4RelaxedMadd] : [...get(acc(h)), ...product, ...op.f32x4Mul, ...op.f32x4Add]), ...set(acc(h)));
  }
  step.push(...get(p), ...op.i32Const(8), ...op.i32Add, ...op.tee(p), ...get(pEnd), ...op.i32Ne, ...op.brIf(0));
  const store: number[] = [...get(out), ...get(i), ...op.i32Const(outRowStride), ...op.i32Mul, ...op.i32Add, ...get(j), ...op.i32Add, ...set(o)];
  for (let h = 0; h < vectors; h++) {
    if (spec.relu) store.push(...get(acc(h)), ...op.v128Zero, ...op.f32x4Max, ...set(acc(h)));
    store.push(...get(o), ...get(acc(h)), ...op.v128Store(16 * h));
  }
  const row = [
    ...init,
    ...get(rp), ...op.i32Load(0), ...set(p),
    ...get(rp), ...op.i32Load(4), ...set(pEnd),
    ...op.block,
    ...get(p), ...get(pEnd), ...op.i32Eq, ...op.brIf(0),
    ...op.loop, ...step, ...op.end,
    ...op.end,
    ...store,
    ...get(rp), ...op.i32Const(8), ...op.i32Add, ...set(rp),
  ];
  const body = [
    ...op.i32Const(0), ...set(j),
    ...op.loop,
    ...op.i32Const(0), ...set(i),
    ...get(a), ...set(rp),
    // The strip's columns of b: at b + j, or where the strip starts when b is packed.
    ...get(b), ...get(j), ...(spec.packed ? [...op.i32Const(spec.depth), ...op.i32Mul] : []), ...op.i32Add, ...set(strip),
    ...op.block,
    ...get(rows), ...op.i32Eqz, ...op.brIf(0),
    ...op.loop,
    ...row,
    ...get(i), ...op.i32Const(1), ...op.i32Add, ...op.tee(i), ...get(rows), ...op.i32LtU, ...op.brIf(0),
    ...op.end,
    ...op.end,
    ...get(j), ...op.i32Const(16 * vectors), ...op.i32Add, ...op.tee(j), ...op.i32Const(4 * columns), ...op.i32LtU, ...op.brIf(0),
    ...op.end,
  ];
  return memoryModule({ name: "gemm", params: [I32, I32, I32, I32, I32], locals: [[8, I32], [vectors + 1, V128]], body }, shared);
}

/**
 * The row lists of the sparse loop (`rowLists.ts`) for the m x k left operand stored at `a` (row-major
 * [m, k], or [k, m] when `transposeA`), in a new heap buffer, entries holding k * stride. Undefined
 * (nothing allocated) when more than `maxDensity` of a is nonzero, or the loops do not apply.
 */
function sparseRows(backend: WasmBackendLike, runner: GemmRunner, a: tf.TensorInfo, m: number, k: number, transposeA: boolean, stride: number, maxDensity: number): tf.TensorInfo | undefined {
  if ((transposeA ? m : k) % 4 !== 0) return undefined;
  const count = runner.helperLoop(`count ${m} ${k} ${transposeA}`, (shared) => countModule(m, k, transposeA, shared));
  const fill = runner.helperLoop(`fill ${m} ${k} ${transposeA} ${stride}`, (shared) => fillModule(m, k, transposeA, stride, shared));
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
// Packing the right operand.

/**
 * `run(src, dst)`: copies a depth x columns matrix with rows `rowStride` bytes apart into strips of
 * `stripBytes / 4` consecutive columns, each strip's depth rows one after another, strip after strip.
 * A loop then reads its strip of b as one contiguous run. Read in place, a strip of a matrix whose rows
 * are a power of two apart (784 x 512 weights: 2,048 bytes) falls into a few sets of the L1 cache and
 * is evicted at every pass: the encoder's product ran at 12.6 GMAC/s in place against 21.6 packed
 * (one thread); packing costs about 0.13 ms. Rows are read in order, whole.
 */
export function packModule(columns: number, depth: number, rowStride: number, stripBytes: number, shared: boolean): Uint8Array {
  if (stripBytes % 16 !== 0 || (4 * columns) % stripBytes !== 0) throw new RangeError(`packModule: strips of ${stripBytes} bytes do not divide ${columns} columns.`);
  // Rows are copied in blocks of `block` (they stay in the L1 cache while every strip takes its part),
  // so that the writes go to one strip at a time.
  const block = [8, 4, 2, 1].find((rows) => depth % rows === 0) as number;
  const [src, dst] = [0, 1];
  const [sp, dp, spEnd, k] = [2, 3, 4, 5];
  const { get, set } = op;
  const copy: number[] = [];
  for (let r = 0; r < block; r++) {
    for (let h = 0; h < stripBytes / 16; h++) copy.push(...get(dp), ...get(sp), ...op.v128Load(r * rowStride + 16 * h), ...op.v128Store(r * stripBytes + 16 * h));
  }
  const body = [
    ...op.i32Const(0), ...set(k),
    ...op.loop,
    // Rows k .. k + block - 1: from src + k * rowStride, to dst + k * stripBytes in every strip.
    ...get(src), ...get(k), ...op.i32Const(rowStride), ...op.i32Mul, ...op.i32Add, ...op.tee(sp),
    ...op.i32Const(4 * columns), ...op.i32Add, ...set(spEnd),
    ...get(dst), ...get(k), ...op.i32Const(stripBytes), ...op.i32Mul, ...op.i32Add, ...set(dp),
    ...op.loop,
    ...copy,
    ...get(dp), ...op.i32Const(depth * stripBytes), ...op.i32Add, ...set(dp),
    ...get(sp), ...op.i32Const(stripBytes), ...op.i32Add, ...op.tee(sp), ...get(spEnd), ...op.i32Ne, ...op.brIf(0),
    ...op.end,
    ...get(k), ...op.i32Const(block), ...op.i32Add, ...op.tee(k), ...op.i32Const(depth), ...op.i32LtU, ...op.brIf(0),
    ...op.end,
  ];
  return memoryModule({ name: "run", params: [I32, I32], locals: [[4, I32]], body }, shared);
}

/**
 * `run(src, dst)`: the transpose of a row-major columns x depth matrix, packed as `packModule` packs
 * (strips of `TILE_COLUMNS` columns): dst(k, j) = src(j, k). The backward pass's a b^T reads its a this
 * way. One element at a time, each strip's rows of src read in step.
 */
export function transposePackModule(columns: number, depth: number, shared: boolean): Uint8Array {
  if (columns % TILE_COLUMNS !== 0) throw new RangeError(`transposePackModule: ${columns} columns are not a multiple of ${TILE_COLUMNS}.`);
  const [src, dst] = [0, 1];
  const [sp, dp, spEnd, dpEnd] = [2, 3, 4, 5];
  const { get, set } = op;
  const copy: number[] = [];
  for (let c = 0; c < TILE_COLUMNS; c++) copy.push(...get(dp), ...get(sp), ...op.f32Load(4 * depth * c), ...op.f32Store(4 * c));
  const body = [
    ...get(dst), ...set(dp),
    ...get(dst), ...op.i32Const(4 * columns * depth), ...op.i32Add, ...set(dpEnd),
    ...get(src), ...set(sp),
    ...op.loop,
    // One strip: rows j .. j + TILE_COLUMNS - 1 of src, element k of each per step.
    ...get(sp), ...op.i32Const(4 * depth), ...op.i32Add, ...set(spEnd),
    ...op.loop,
    ...copy,
    ...get(dp), ...op.i32Const(4 * TILE_COLUMNS), ...op.i32Add, ...set(dp),
    ...get(sp), ...op.i32Const(4), ...op.i32Add, ...op.tee(sp), ...get(spEnd), ...op.i32Ne, ...op.brIf(0),
    ...op.end,
    // sp is now at the end of the strip's first row: skip its other rows.
    ...get(sp), ...op.i32Const(4 * depth * (TILE_COLUMNS - 1)), ...op.i32Add, ...set(sp),
    ...get(dp), ...get(dpEnd), ...op.i32Ne, ...op.brIf(0),
    ...op.end,
  ];
  return memoryModule({ name: "run", params: [I32, I32], locals: [[4, I32]], body }, shared);
}

/**
 * `run(src, dst)`: dst = the transpose of the row-major rows x columns matrix src (columns x rows, row
 * by row). A transposed left operand whose rows are a power of two apart is copied so, before a dense
 * product: read in place, the k steps of a tile jump 2,048 bytes and thrash the L1 cache as a right
 * operand's strips do (h^T dy ran at 13 GMAC/s on one thread).
 */
export function transposeModule(rows: number, columns: number, shared: boolean): Uint8Array {
  if (rows % 4 !== 0) throw new RangeError(`transposeModule: ${rows} rows are not a multiple of 4.`);
  const [src, dst] = [0, 1];
  const [sp, dp, dpEnd, column] = [2, 3, 4, 5];
  const { get, set } = op;
  // Four elements of a column per step: src rows r .. r + 3 (constant offsets), dst consecutive.
  const step: number[] = [];
  for (let r = 0; r < 4; r++) step.push(...get(dp), ...get(sp), ...op.f32Load(4 * columns * r), ...op.f32Store(4 * r));
  const body = [
    ...op.i32Const(0), ...set(column),
    ...get(dst), ...set(dp),
    ...op.loop,
    ...get(src), ...get(column), ...op.i32Const(4), ...op.i32Mul, ...op.i32Add, ...set(sp),
    ...get(dp), ...op.i32Const(4 * rows), ...op.i32Add, ...set(dpEnd),
    ...op.loop,
    ...step,
    ...get(sp), ...op.i32Const(16 * columns), ...op.i32Add, ...set(sp),
    ...get(dp), ...op.i32Const(16), ...op.i32Add, ...op.tee(dp), ...get(dpEnd), ...op.i32Ne, ...op.brIf(0),
    ...op.end,
    ...get(column), ...op.i32Const(1), ...op.i32Add, ...op.tee(column), ...op.i32Const(columns), ...op.i32LtU, ...op.brIf(0),
    ...op.end,
  ];
  return memoryModule({ name: "run", params: [I32, I32], locals: [[4, I32]], body }, shared);
}

// ---------------------------------------------------------------------------------------------------
// Threads: Node workers running the same loops on the same shared memory.

/**
 * The worker: says it is ready, then waits on its control block, compiles the loops it is sent and runs
 * one call per wake-up. Whatever goes wrong is reported in the control block (slot 8 for one call, slot 9
 * for the thread itself), so that the main thread never waits for a helper that is gone.
 */
const WORKER_SOURCE = `
const { workerData, receiveMessageOnPort } = require("node:worker_threads");
const { memory, control, clock, port, spinMs: SPIN_MS } = workerData;
const ctl = new Int32Array(control);
const finished = new Float64Array(clock);
const loops = [];
let last = 0;
Atomics.store(ctl, 9, 1);
try {
  for (;;) {
    // Poll for the next call a while before sleeping: products come every millisecond or so while a
    // model trains, and waking a thread asleep in Atomics.wait held up the main thread's
    // Atomics.notify by about 0.4 ms here. Slot 11 says whether it sleeps (and needs waking).
    // (The clock is read every 1,024 polls: each reading allocates, and a poll that allocates sets off
    // a garbage collection of the thread every few steps.)
    const until = performance.now() + SPIN_MS;
    for (let polls = 1; Atomics.load(ctl, 0) === last; polls++) if ((polls & 1023) === 0 && performance.now() > until) break;
    if (Atomics.load(ctl, 0) === last) {
      Atomics.store(ctl, 11, 1);
      Atomics.wait(ctl, 0, last);
      Atomics.store(ctl, 11, 0);
    }
    const seq = Atomics.load(ctl, 0);
    if (seq === last) continue;
    last = seq;
    if (seq === -1) break;
    try {
      for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
        loops[m.message.id] = new WebAssembly.Instance(new WebAssembly.Module(m.message.bytes), { env: { memory } }).exports.gemm;
      }
      finished[0] = performance.timeOrigin + performance.now();
      loops[ctl[2]](ctl[3], ctl[4], ctl[5], ctl[6], ctl[7]);
      finished[1] = performance.timeOrigin + performance.now();
      ctl[8] = 0;
    } catch (error) {
      ctl[8] = 1;
    }
    Atomics.store(ctl, 1, seq);
    Atomics.notify(ctl, 1);
  }
} finally {
  Atomics.store(ctl, 9, 2);
  Atomics.notify(ctl, 1);
}
`;

/**
 * Control block slots: 0 call number (-1 stops), 1 finished call, 2 loop id, 3-7 arguments, 8 the call
 * failed, 9 the helper's state (0 starting, 1 ready, 2 gone), 11 the helper sleeps in Atomics.wait.
 */
const CONTROL_INTS = 16;
/** How long a helper polls for the next call before it sleeps (milliseconds). */
const HELPER_SPIN_MS = 5;

/**
 * Hands the call just written to the helper's control block: stores its number, and wakes the helper
 * only if it sleeps (a helper that polls sees the number). The helper marks itself asleep before it
 * waits, and Atomics.wait returns at once if the number changed in between, so no call is missed.
 */
function wake(helper: Helper): void {
  Atomics.store(helper.control, 0, helper.calls);
  if (Atomics.load(helper.control, 11) === 1) Atomics.notify(helper.control, 0);
}

/** Polls of a helper's result before the main thread sleeps until it comes. */
const SPIN_LIMIT = 100_000;
/** A helper that has not answered by then is taken for dead (a product takes milliseconds). */
const HELPER_TIMEOUT_MS = 60_000;
const READY = 1;
const GONE = 2;

interface Helper {
  /** A call started by `runOnHelper` and not yet collected: its number and arguments. */
  pending?: { call: number; args: number[] };
  worker: Worker;
  port: MessagePort;
  control: Int32Array;
  /** When the helper started and finished its last call (performance.timeOrigin + performance.now(), ms). */
  finished: Float64Array;
  /** Loop ids already sent to this worker. */
  sent: Set<number>;
  calls: number;
}

/** The loops compiled for one memory, and the helper threads working on it. */
class GemmRunner {
  private readonly loops: GemmLoop[] = [];
  private readonly bytes: Uint8Array[] = [];
  private readonly ids = new Map<string, number>();
  private helpers: Helper[] | undefined;

  constructor(private readonly memory: MemoryLike) {}

  private abandoned = false;

  /** Threads to split over: only a shared memory can be worked on by several. */
  private get threads(): number {
    return isShared(this.memory) && !this.abandoned ? gemmThreads : 1;
  }

  /** Stops the helpers for good in this process; with `why`, says so once (results do not change). */
  private abandonThreads(why?: string): void {
    this.stop();
    this.abandoned = true;
    if (why) process.emitWarning(`${why}; the matrix products go on in one thread (same results, slower). Set VAE_WASM_THREADS=1 to start without threads.`);
  }

  private readonly mainLoops = new Map<string, ((p0: number, p1: number) => void) | null>();

  /**
   * A two-argument loop on this memory that runs on the main thread (packing, row lists), compiled on
   * first use; null where it cannot be. Its module exports it as `run`.
   */
  helperLoop(key: string, build: (shared: boolean) => Uint8Array): ((p0: number, p1: number) => void) | null {
    let loop = this.mainLoops.get(key);
    if (loop === undefined) {
      loop = instantiate<(p0: number, p1: number) => void>(build(isShared(this.memory)), this.memory, "run");
      this.mainLoops.set(key, loop);
    }
    return loop;
  }

  /** The id of a loop of the products' signature (a product, or `runSplitLoop`'s), compiled on first use. */
  customLoopId(key: string, build: (shared: boolean) => Uint8Array): number | undefined {
    let id = this.ids.get(key);
    if (id === undefined) {
      const bytes = build(isShared(this.memory));
      const loop = instantiate<GemmLoop>(bytes, this.memory, "gemm");
      if (!loop) return undefined;
      id = this.loops.length;
      this.loops.push(loop);
      this.bytes.push(bytes);
      this.ids.set(key, id);
    }
    return id;
  }

  /** The id of the loop for `spec`, compiling it on first use; undefined where it cannot be compiled. */
  loopId(spec: GemmSpec): number | undefined {
    return this.customLoopId(JSON.stringify(spec), (shared) => (spec.sparse ? sparseGemmModule : gemmModule)(spec, shared));
  }

  /**
   * Runs loop `id` over `rows` rows, split into tile-aligned parts across the main thread and the helpers
   * that are ready. A helper still starting up (Node workers take tens of milliseconds) or gone is not
   * waited for: the main thread takes its share, so a product never depends on a thread starting.
   */
  run(id: number, spec: GemmSpec, a: number, b: number, out: number, bias: number, rows: number, multiplyAdds = rows * spec.columns * spec.depth): void {
    const tiles = Math.ceil(rows / TILE_ROWS);
    const wanted = multiplyAdds < MIN_THREADED_MULTIPLY_ADDS ? 1 : Math.min(this.threads, tiles);
    // Helpers busy with a call of `runOnHelper` are left out (or collected first, if done).
    const helpers = wanted > 1 ? this.startHelpers().filter((h) => Atomics.load(h.control, 9) === READY && (!h.pending || this.collectIfDone(h))).slice(0, wanted - 1) : [];
    const parts = helpers.length + 1;
    this.lastParts = parts;
    // Part p gets tiles [start(p), start(p + 1)); the main thread takes part 0. The parts' sizes follow
    // the threads' measured speeds on this loop (`split`).
    const shareKey = `${id}/${parts}`;
    const fractions = (balance && this.split(shareKey, rows)) || new Array<number>(parts).fill(1 / parts);
    const bounds = [0];
    for (let p = 0, sum = 0; p < parts; p++) {
      sum += fractions[p];
      bounds.push(p === parts - 1 ? rows : Math.min(rows, Math.round(sum * tiles) * TILE_ROWS));
    }
    const start = (p: number) => bounds[p];
    this.lastSplit = bounds.slice(1).map((end, p) => end - bounds[p]);
    const started = performance.timeOrigin + performance.now();
    const shares = helpers.map((helper, h) => {
      const first = start(h + 1);
      if (!helper.sent.has(id)) {
        helper.port.postMessage({ id, bytes: this.bytes[id] });
        helper.sent.add(id);
      }
      const args = [id, a + first * spec.aRowStride, b, out + first * spec.outRowStride, bias, start(h + 2) - first];
      helper.control.set(args, 2);
      helper.calls = helper.calls === 0x7fffffff ? 1 : helper.calls + 1;
      wake(helper);
      return args;
    });
    this.loops[id](a, b, out, bias, start(1));
    const mainFinished = performance.timeOrigin + performance.now();
    let lost: string | undefined;
    for (const [h, helper] of helpers.entries()) {
      const failure = this.awaitHelper(helper);
      if (failure) {
        // The call failed, or the thread ended; either way it writes nothing more: compute its share here.
        const [, partA, partB, partOut, partBias, partRows] = shares[h];
        this.loops[id](partA, partB, partOut, partBias, partRows);
        lost = failure;
      }
    }
    if (lost) return this.abandonThreads(lost);
    if (parts > 1) {
      const times = helpers.map((helper) => ({ start: helper.finished[0] - started, end: helper.finished[1] - started }));
      this.measure(shareKey, bounds, [{ start: 0, end: mainFinished - started }, ...times]);
    }
  }

  /**
   * Each loop's threads as measured (key: loop id / parts): rows per millisecond of each part while it
   * runs, and how long after the call each started (a helper asleep in Atomics.wait wakes a good part
   * of a millisecond after the main thread; a busy core runs it slower). Averaged over calls.
   */
  private readonly speeds = new Map<string, { rates: number[]; delays: number[] }>();

  /**
   * The split of `rows` rows that makes every thread finish together, as fractions: with rate r_p and
   * start delay d_p, part p finishes at d_p + rows_p / r_p; the common finish T solves
   * sum_p (T - d_p) r_p = rows. Undefined before the loop's first measured call.
   */
  private split(key: string, rows: number): number[] | undefined {
    const speed = this.speeds.get(key);
    if (!speed) return undefined;
    const { rates, delays } = speed;
    const total = rates.reduce((x, y) => x + y, 0);
    const finish = (rows + rates.reduce((sum, rate, p) => sum + rate * delays[p], 0)) / total;
    // No part below a twentieth of the rows, so that every thread keeps being measured.
    const parts = rates.map((rate, p) => Math.max(rows / 20, (finish - delays[p]) * rate));
    const sum = parts.reduce((x, y) => x + y, 0);
    return parts.map((part) => part / sum);
  }

  private measure(key: string, bounds: number[], times: { start: number; end: number }[]): void {
    const rates = times.map(({ start, end }, p) => (bounds[p + 1] - bounds[p]) / Math.max(end - start, 1e-3));
    const delays = times.map(({ start }) => Math.max(0, start));
    if (rates.some((rate) => !(rate > 0) || !Number.isFinite(rate)) || delays.some((delay) => !Number.isFinite(delay))) return;
    const previous = this.speeds.get(key);
    const smooth = (old: number[] | undefined, now: number[]) => (old ? old.map((value, p) => 0.7 * value + 0.3 * now[p]) : now);
    this.speeds.set(key, { rates: smooth(previous?.rates, rates), delays: smooth(previous?.delays, delays) });
  }

  /**
   * Starts loop `id` over all `rows` rows on one free helper and returns a function that waits for it
   * (and computes its rows here if the helper failed or ended). With no free helper, computes the rows
   * here at once and returns a function with nothing to do.
   */
  runOnHelper(id: number, a: number, b: number, out: number, bias: number, rows: number): () => void {
    const helper = this.threads > 1 ? this.startHelpers().find((h) => Atomics.load(h.control, 9) === READY && (!h.pending || this.collectIfDone(h))) : undefined;
    if (!helper) {
      this.loops[id](a, b, out, bias, rows);
      return () => {};
    }
    if (!helper.sent.has(id)) {
      helper.port.postMessage({ id, bytes: this.bytes[id] });
      helper.sent.add(id);
    }
    const args = [id, a, b, out, bias, rows];
    helper.control.set(args, 2);
    helper.calls = helper.calls === 0x7fffffff ? 1 : helper.calls + 1;
    helper.pending = { call: helper.calls, args };
    wake(helper);
    return () => {
      if (helper.pending?.call === helper.calls) this.collect(helper);
    };
  }

  /** Whether a helper is ready and not busy with a call of `runOnHelper`. */
  hasFreeHelper(): boolean {
    return this.threads > 1 && (this.helpers ?? []).some((h) => Atomics.load(h.control, 9) === READY && (!h.pending || this.collectIfDone(h)));
  }

  /** Collects a helper's pending call if it is done; true then (the helper is free again). */
  private collectIfDone(helper: Helper): boolean {
    if (Atomics.load(helper.control, 1) !== helper.calls && Atomics.load(helper.control, 9) !== GONE) return false;
    this.collect(helper);
    return true;
  }

  /** Waits for a helper's pending call; computes it here if the helper failed or ended. */
  private collect(helper: Helper): void {
    const pending = helper.pending;
    if (!pending) return;
    helper.pending = undefined;
    const lost = this.awaitHelper(helper);
    if (lost) {
      const [id, ...args] = pending.args;
      this.loops[id](args[0], args[1], args[2], args[3], args[4]);
      this.abandonThreads(lost);
    }
  }

  /**
   * Waits for the helper's current call: polls first (it is about done when the main thread's share
   * is), then sleeps. Returns why it failed, if it did; throws if it does not answer at all.
   */
  private awaitHelper(helper: Helper): string | undefined {
    let spins = 0;
    const waitedSince = Date.now();
    let done = Atomics.load(helper.control, 1);
    while (done !== helper.calls && Atomics.load(helper.control, 9) !== GONE) {
      if (++spins > SPIN_LIMIT) {
        Atomics.wait(helper.control, 1, done, 1000);
        if (Date.now() - waitedSince > HELPER_TIMEOUT_MS) {
          // It may still write into the output, so its share cannot be taken over: give up.
          this.stop();
          throw new Error(`A matrix-product thread gave no result within ${HELPER_TIMEOUT_MS / 1000} s; set VAE_WASM_THREADS=1 to run without threads.`);
        }
      }
      done = Atomics.load(helper.control, 1);
    }
    if (done !== helper.calls) return "a matrix-product thread ended unexpectedly";
    if (helper.control[8] !== 0) return "a matrix-product thread failed";
    return undefined;
  }

  /**
   * Starts the helpers and waits, without blocking the event loop, until each says it is ready. False
   * (and no threads from then on) when one ended or `timeoutMs` passed first.
   */
  async startThreads(timeoutMs: number): Promise<boolean> {
    if (this.threads < 2) return this.threads === gemmThreads;
    const helpers = this.startHelpers();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const states = helpers.map((h) => Atomics.load(h.control, 9));
      if (states.every((state) => state === READY)) return true;
      if (states.includes(GONE) || Date.now() > deadline) {
        this.abandonThreads(); // the caller reports it
        return false;
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  /** Parts the last product was split into (1: the main thread alone). */
  lastParts = 1;
  /** Rows of each part of the last product, the main thread's first. */
  lastSplit: number[] = [];

  private startHelpers(): Helper[] {
    this.helpers ??= [];
    while (this.helpers.length < this.threads - 1) {
      const control = new Int32Array(new SharedArrayBuffer(4 * CONTROL_INTS));
      const finished = new Float64Array(new SharedArrayBuffer(16));
      const { port1, port2 } = new MessageChannel();
      const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { memory: this.memory, control: control.buffer, clock: finished.buffer, port: port2, spinMs: HELPER_SPIN_MS }, transferList: [port2] });
      worker.unref(); // a waiting helper must not keep the process alive
      port1.unref();
      this.helpers.push({ worker, port: port1, control, finished, sent: new Set<number>(), calls: 0 });
    }
    return this.helpers;
  }

  /** Stops the helper threads (they are started again when needed). */
  stop(): void {
    for (const helper of this.helpers ?? []) {
      // A pending call is finished first (here, if the helper cannot); its waiter then has nothing left to do.
      if (helper.pending) {
        const [id, ...args] = helper.pending.args;
        helper.pending = undefined;
        if (this.awaitHelper(helper)) this.loops[id](args[0], args[1], args[2], args[3], args[4]);
      }
      Atomics.store(helper.control, 0, -1);
      Atomics.notify(helper.control, 0);
      helper.port.close();
    }
    this.helpers = undefined;
  }
}

const runners = new Map<MemoryLike, GemmRunner>();
let balance = true;

/**
 * Switches the split of a product's rows by the threads' measured speeds (on by default) or evenly.
 * Returns the previous setting. Which thread computes which rows changes no bit.
 */
export function setWasmGemmBalance(enabled: boolean): boolean {
  const previous = balance;
  balance = enabled;
  return previous;
}
let gemmThreads = 1;
let gemmFma = false;

/** `VAE_WASM_FMA=0` keeps the products' separate multiplies and adds where fused ones are available. */
export const WASM_FMA_ENV = "VAE_WASM_FMA";

/**
 * Whether the products should use fused multiply-adds: where relaxed SIMD fuses them (`relaxedMadd()`),
 * unless `VAE_WASM_FMA=0`. Throws on any other value than 0 or 1, naming the variable.
 */
export function wasmFmaWanted(env: NodeJS.ProcessEnv = process.env): boolean {
  const value = env[WASM_FMA_ENV]?.trim();
  if (value === undefined || value === "" || value === "1") return relaxedMadd() === "fused";
  if (value === "0") return false;
  throw new Error(`${WASM_FMA_ENV} must be 0 (separate multiplies and adds) or 1 (fused multiply-adds where available); got "${env[WASM_FMA_ENV]}".`);
}

/**
 * Switches the products between fused multiply-adds (one rounding per step: faster, and different in
 * the last bits) and separate multiplies and adds (bit-equal to XNNPACK's kernels). Returns the previous
 * setting. Throws when fused multiply-adds are asked for where `relaxedMadd()` is not `fused`.
 */
export function setWasmGemmFma(enabled: boolean): boolean {
  if (enabled && relaxedMadd() !== "fused") throw new Error(`Fused multiply-adds are not available here (WebAssembly relaxed SIMD: ${relaxedMadd()}).`);
  const previous = gemmFma;
  gemmFma = enabled;
  return previous;
}

/** Whether the products now use fused multiply-adds. */
export function wasmGemmFma(): boolean {
  return gemmFma;
}

/**
 * The number of threads products are split across (1 by default; the backend sets it to the threaded
 * build's count). Only a shared memory can be worked on by several threads.
 */
export function setWasmGemmThreads(threads: number): void {
  if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`setWasmGemmThreads: threads must be a whole number >= 1; got ${threads}.`);
  gemmThreads = threads;
}

function runnerFor(backend: WasmBackendLike): GemmRunner | undefined {
  const memory = memoryOf(backend.wasm);
  if (!memory) return undefined;
  let runner = runners.get(memory);
  if (!runner) {
    runner = new GemmRunner(memory);
    runners.set(memory, runner);
  }
  return runner;
}

/**
 * Starts the matrix-product threads of the backend's memory and resolves once they are ready to take
 * work: true then, false when they did not start within `timeoutMs` (the products then stay on the
 * main thread, with the same results). Products never wait for threads that are still starting.
 */
export async function startWasmGemmThreads(backend: WasmBackendLike, timeoutMs = 20_000): Promise<boolean> {
  const runner = runnerFor(backend);
  return runner ? runner.startThreads(timeoutMs) : gemmThreads === 1;
}

/** Into how many parts (threads) the last product on the backend's memory was split. */
export function lastWasmGemmParts(backend: WasmBackendLike): number {
  return runnerFor(backend)?.lastParts ?? 1;
}

/** What `runSplitLoop` tells the runner: parts advance only `out`, by 4 bytes per element. */
const ELEMENT_LOOP: GemmSpec = { columns: 1, depth: 1, aRowStride: 0, aDepthStride: 0, bDepthStride: 0, outRowStride: 4, outColumnStride: 4, bias: false, relu: false, fma: false };

/**
 * Runs a loop over `count` items (elements, or rows of `bytesPerItem` bytes) split across the products'
 * threads, like a product's rows: the module (built by `build`, exporting `gemm`) is called as
 * gemm(block, 0, offset, 0, items) for each part, offset being the byte offset of the part's first item
 * (parts start at multiples of 4 items). False (nothing run) where there is no runner or the module
 * does not compile.
 */
export function runSplitLoop(backend: WasmBackendLike, key: string, build: (shared: boolean) => Uint8Array, block: number, count: number, bytesPerItem = 4, work = count * 16): boolean {
  const runner = runnerFor(backend);
  const id = runner?.customLoopId(key, build);
  if (!runner || id === undefined) return false;
  // `work` in multiply-adds' worth: by default about a short product's row per element (threads from 2^16 elements on).
  runner.run(id, bytesPerItem === 4 ? ELEMENT_LOOP : { ...ELEMENT_LOOP, outRowStride: bytesPerItem }, block, 0, 0, 0, count, work);
  return true;
}

/**
 * Starts a loop of `runSplitLoop`'s kind over all `count` items on one free helper thread and returns
 * a function that waits for it; undefined (nothing started) where no helper is free or the module does
 * not compile.
 */
export function runOnHelperLoop(backend: WasmBackendLike, key: string, build: (shared: boolean) => Uint8Array, block: number, count: number): (() => void) | undefined {
  const runner = runnerFor(backend);
  const id = runner?.customLoopId(key, build);
  if (!runner || id === undefined || !runner.hasFreeHelper()) return undefined;
  return runner.runOnHelper(id, block, 0, 0, 0, count);
}

/** The number of threads products are split across. */
export function wasmGemmThreadCount(): number {
  return gemmThreads;
}

/** The rows of each part of the last product on the backend's memory, the main thread's first. */
export function lastWasmGemmSplit(backend: WasmBackendLike): number[] {
  return runnerFor(backend)?.lastSplit.slice() ?? [];
}

/** Stops the helper threads (they start again on the next product that uses them). */
export function stopWasmGemmThreads(): void {
  for (const runner of runners.values()) runner.stop();
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
export function wasmGemmAsync(backend: WasmBackendLike, p: Product): { out: tf.TensorInfo; wait: () => void } | undefined {
  return gemm(backend, p, true);
}

function gemm(backend: WasmBackendLike, p: Product, async: boolean): { out: tf.TensorInfo; wait: () => void } | undefined {
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
  const launch = (id: number, spec: GemmSpec, a: number, b: number, out: number, bias: number, rows: number, multiplyAdds?: number) => {
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
      if (p.bias && (p.bias.dtype !== "float32" || tf.util.sizeFromShape(p.bias.shape) !== n || p.bias.shape[p.bias.shape.length - 1] !== n || p.bias.shape.length > 2)) return undefined;
      if (n % TILE_COLUMNS !== 0) {
        // A narrow product (the latent layers': n = 2) is computed transposed, out^T = b^T a^T: the loop's
        // rows are the n columns of out (b^T read from b in place), its columns the m rows of out (a^T,
        // which is a itself when a is transposed, else a transposed copy), stored transposed. The bias
        // is then along the loop's rows.
        if (m % TILE_COLUMNS !== 0) return undefined;
        const stripBytes = 4 * TILE_COLUMNS;
        const packed = p.transposeA
          ? conflictingRows(4 * m) ? packedCopy(backend, runner, p.a, k, m, 4 * m, stripBytes) : undefined
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
      const vectors = sparseGemm && !async ? sparseStripVectors(n) : 0;
      const lists = vectors ? sparseRows(backend, runner, p.a, m, k, p.transposeA, conflictingRows(4 * n) ? 16 * vectors : 4 * n, maxSparseDensity(k, 16 * vectors)) : undefined;
      // A transposed left operand whose stored rows thrash the cache: a transposed copy, read row by row.
      const aCopy = !lists && p.transposeA && conflictingRows(4 * m) && k % 4 === 0 ? transposedCopy(backend, runner, p.a, k, m) : undefined;
      if (aCopy) scratch.push(aCopy);
      const aTransposed = p.transposeA && !aCopy;
      const stripBytes = lists ? 16 * vectors : 4 * TILE_COLUMNS;
      const packed = conflictingRows(4 * n) ? packedCopy(backend, runner, p.b, k, n, 4 * n, stripBytes) : undefined;
      if (lists) scratch.push(lists);
      if (packed) scratch.push(packed);
      if (lists && !packed && conflictingRows(4 * n)) return undefined; // the lists hold offsets into a packed b (not reached: packing compiles where the loops do)
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
      launch(id, spec, offset(lists ?? aCopy ?? p.a), offset(packed ?? p.b), offset(out), p.bias ? offset(p.bias) : 0, m, multiplyAdds);
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
 * number of lines) are read in place, which saves the copy (about 0.15 ms for 512 x 784).
 */
function conflictingRows(rowStride: number): boolean {
  return rowStride % 512 === 0;
}

/** `src` (depth x columns, rows `rowStride` bytes apart) packed into strips (`packModule`), on the heap. */
function packedCopy(backend: WasmBackendLike, runner: GemmRunner, src: tf.TensorInfo, depth: number, columns: number, rowStride: number, stripBytes: number): tf.TensorInfo | undefined {
  const loop = runner.helperLoop(`pack ${columns} ${depth} ${rowStride} ${stripBytes}`, (shared) => packModule(columns, depth, rowStride, stripBytes, shared));
  if (!loop) return undefined;
  const out = backend.makeOutput([depth * columns], "float32");
  loop(backend.dataIdMap.get(src.dataId).memoryOffset, backend.dataIdMap.get(out.dataId).memoryOffset);
  return out;
}

/** The transpose of `src` (rows x columns, row-major) as a new columns x rows matrix on the heap. */
function transposedCopy(backend: WasmBackendLike, runner: GemmRunner, src: tf.TensorInfo, rows: number, columns: number): tf.TensorInfo | undefined {
  const loop = runner.helperLoop(`plain transpose ${rows} ${columns}`, (shared) => transposeModule(rows, columns, shared));
  if (!loop) return undefined;
  const out = backend.makeOutput([columns, rows], "float32");
  loop(backend.dataIdMap.get(src.dataId).memoryOffset, backend.dataIdMap.get(out.dataId).memoryOffset);
  return out;
}

/** The transpose of `src` (rows x columns, row-major) packed into strips (`transposePackModule`), on the heap. */
function transposePackedCopy(backend: WasmBackendLike, runner: GemmRunner, src: tf.TensorInfo, rows: number, columns: number): tf.TensorInfo | undefined {
  const loop = runner.helperLoop(`transpose ${rows} ${columns}`, (shared) => transposePackModule(rows, columns, shared));
  if (!loop) return undefined;
  const out = backend.makeOutput([rows * columns], "float32");
  loop(backend.dataIdMap.get(src.dataId).memoryOffset, backend.dataIdMap.get(out.dataId).memoryOffset);
  return out;
}

let installed: { batchMatMul: tf.KernelConfig; fusedMatMul: tf.KernelConfig; mine: tf.KernelConfig[] } | undefined;
let calls = 0;
let sparseCalls = 0;
let sparseGemm = process.env.VAE_WASM_SPARSE !== "0";

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
  const previous = sparseGemm;
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
 * nothing when `VAE_WASM_MATMUL_FIX=0` (the stock kernels, for comparison) or when it already ran.
 */
export function installWasmGemm(): void {
  if (installed || process.env.VAE_WASM_MATMUL_FIX === "0") return;
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
    wasmGemm(args.backend as unknown as WasmBackendLike, product(args.inputs, args.attrs as unknown as Attrs)) ?? batchMatMul.kernelFunc(args);
  const fusedMatMulFunc: tf.KernelFunc = (args) => {
    const attrs = args.attrs as unknown as Attrs;
    const activation = attrs.activation ?? "linear";
    const supported = (activation === "linear" || activation === "relu") && args.inputs.preluActivationWeights == null;
    const bias = (args.inputs.bias as tf.TensorInfo | null | undefined) ?? undefined;
    const out = supported ? wasmGemm(args.backend as unknown as WasmBackendLike, product(args.inputs, attrs, bias)) : undefined;
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
