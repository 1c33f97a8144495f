/**
 * The WebAssembly loops of the wasm engine's matrix products, generated for each shape and stride: the
 * dense product (a 4 x 8 output tile in vector registers, k running over the shared dimension), the
 * sparse product that reads lists of a left operand's nonzeros, and the copies that pack or transpose
 * the right operand. Each output element is summed in k order exactly as XNNPACK sums it, so the products
 * are the same to the bit. `wasmGemm.ts` runs them; how they work and what they gain: docs/wasm-engine.md.
 */
import { I32, V128, memoryModule, op } from "./wasmCode";

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

/**
 * The dense loop's parameters (a, b, out, bias, rows), then its locals: j and i (the tile's column byte
 * offset and row), ap and bp (the reading positions in a and b), apEnd, op0 (the tile's first output),
 * the accumulators (`tileAcc`), two vectors of b's row and a broadcast element of a.
 */
const [A, B, OUT, BIAS, ROWS] = [0, 1, 2, 3, 4];
const [J, I, AP, BP, AP_END, OP0] = [5, 6, 7, 8, 9, 10];
const [B0, B1, AV] = [11 + 2 * TILE_ROWS, 12 + 2 * TILE_ROWS, 13 + 2 * TILE_ROWS];
/** The accumulator of row r of the tile, columns 4 h .. 4 h + 3. */
const tileAcc = (r: number, h: number) => 11 + 2 * r + h;

function checkGemmSpec(spec: GemmSpec): void {
  const { columns, depth } = spec;
  const tailRows = spec.tailRows ?? 0;
  if (columns % TILE_COLUMNS !== 0 || columns <= 0 || depth <= 0)
    throw new RangeError(
      `gemmModule: columns ${columns} (a multiple of ${TILE_COLUMNS}) and depth ${depth} must be positive.`,
    );
  if (!Number.isInteger(tailRows) || tailRows < 0 || tailRows >= TILE_ROWS)
    throw new RangeError(`gemmModule: tailRows ${tailRows} must be 0 to ${TILE_ROWS - 1}.`);
}

/** The accumulators start at 0, or at the bias of the tile's columns, or of its rows. */
function tileInit(spec: GemmSpec, tileRows: number): number[] {
  const { get, set } = op;
  const init: number[] = [];
  for (let r = 0; r < tileRows; r++) {
    for (let h = 0; h < 2; h++) {
      const start = spec.rowBias
        ? [...get(BIAS), ...get(I), ...op.i32Const(4), ...op.i32Mul, ...op.i32Add, ...op.v128Load32Splat(4 * r)]
        : spec.bias
          ? [...get(BIAS), ...get(J), ...op.i32Add, ...op.v128Load(16 * h)]
          : op.v128Zero;
      init.push(...start, ...set(tileAcc(r, h)));
    }
  }
  return init;
}

/** One step of k: two vectors of b's row, then per row of the tile a broadcast element of a. */
function tileStep(spec: GemmSpec, tileRows: number): number[] {
  const { get, set } = op;
  const step: number[] = [...get(BP), ...op.v128Load(0), ...set(B0), ...get(BP), ...op.v128Load(16), ...set(B1)];
  for (let r = 0; r < tileRows; r++) {
    step.push(...get(AP), ...op.v128Load32Splat(r * spec.aRowStride), ...set(AV));
    for (let h = 0; h < 2; h++) {
      const product = [...get(AV), ...get(h === 0 ? B0 : B1)];
      step.push(
        ...(spec.fma
          ? [...product, ...get(tileAcc(r, h)), ...op.f32x4RelaxedMadd]
          : [...get(tileAcc(r, h)), ...product, ...op.f32x4Mul, ...op.f32x4Add]),
        ...set(tileAcc(r, h)),
      );
    }
  }
  step.push(...get(BP), ...op.i32Const(spec.bDepthStride), ...op.i32Add, ...set(BP));
  step.push(
    ...get(AP),
    ...op.i32Const(spec.aDepthStride),
    ...op.i32Add,
    ...op.tee(AP),
    ...get(AP_END),
    ...op.i32Ne,
    ...op.brIf(0),
  );
  return step;
}

/** The tile's results: vectors along a row, or single lanes when the output is stored transposed. */
function tileStore(spec: GemmSpec, tileRows: number): number[] {
  const { outRowStride, outColumnStride } = spec;
  const { get, set } = op;
  const store: number[] = [];
  for (let r = 0; r < tileRows; r++) {
    for (let h = 0; h < 2; h++) {
      if (spec.relu) store.push(...get(tileAcc(r, h)), ...op.v128Zero, ...op.f32x4Max, ...set(tileAcc(r, h)));
      if (outColumnStride === 4) {
        store.push(...get(OP0), ...get(tileAcc(r, h)), ...op.v128Store(r * outRowStride + 16 * h));
      } else {
        for (let lane = 0; lane < 4; lane++) {
          store.push(
            ...get(OP0),
            ...get(tileAcc(r, h)),
            ...op.f32x4ExtractLane(lane),
            ...op.f32Store(r * outRowStride + (4 * h + lane) * outColumnStride),
          );
        }
      }
    }
  }
  return store;
}

/** The code of one tile of `tileRows` rows starting at row i, columns j .. j + 7. */
function tile(spec: GemmSpec, tileRows: number): number[] {
  const { depth, aRowStride, aDepthStride, outRowStride, outColumnStride } = spec;
  const { get, set } = op;
  return [
    // ap = a + i * aRowStride; bp = b + j (or the strip's start when b is packed); apEnd = ap + depth * aDepthStride
    ...get(A),
    ...get(I),
    ...op.i32Const(aRowStride),
    ...op.i32Mul,
    ...op.i32Add,
    ...set(AP),
    ...get(B),
    ...get(J),
    ...(spec.packed ? [...op.i32Const(depth), ...op.i32Mul] : []),
    ...op.i32Add,
    ...set(BP),
    ...get(AP),
    ...op.i32Const(depth * aDepthStride),
    ...op.i32Add,
    ...set(AP_END),
    ...tileInit(spec, tileRows),
    ...op.loop,
    ...tileStep(spec, tileRows),
    ...op.end,
    // op0 = out + i * outRowStride + (j / 4) * outColumnStride
    ...get(OUT),
    ...get(I),
    ...op.i32Const(outRowStride),
    ...op.i32Mul,
    ...op.i32Add,
    ...get(J),
    ...op.i32Const(outColumnStride / 4),
    ...op.i32Mul,
    ...op.i32Add,
    ...set(OP0),
    ...tileStore(spec, tileRows),
  ];
}

/** The WebAssembly module of one loop (exported as `gemm`). */
export function gemmModule(spec: GemmSpec, shared: boolean): Uint8Array {
  checkGemmSpec(spec);
  const tailRows = spec.tailRows ?? 0;
  const { get, set } = op;
  // Columns outermost (a 8-column strip of b stays in the L1 cache), then rows, in whole tiles while
  // at least TILE_ROWS rows are left, then the last `tailRows` rows (the caller passes rows that end so).
  const body = [
    ...op.i32Const(0),
    ...set(J),
    ...op.loop,
    ...op.i32Const(0),
    ...set(I),
    ...op.block,
    ...op.loop,
    ...get(ROWS),
    ...get(I),
    ...op.i32Sub,
    ...op.i32Const(TILE_ROWS),
    ...op.i32LtU,
    ...op.brIf(1),
    ...tile(spec, TILE_ROWS),
    ...get(I),
    ...op.i32Const(TILE_ROWS),
    ...op.i32Add,
    ...set(I),
    ...op.br(0),
    ...op.end,
    ...op.end,
    ...(tailRows
      ? [...op.block, ...get(I), ...get(ROWS), ...op.i32Eq, ...op.brIf(0), ...tile(spec, tailRows), ...op.end]
      : []),
    // j is a byte offset into b's row: 8 floats per strip.
    ...get(J),
    ...op.i32Const(4 * TILE_COLUMNS),
    ...op.i32Add,
    ...op.tee(J),
    ...op.i32Const(4 * spec.columns),
    ...op.i32LtU,
    ...op.brIf(0),
    ...op.end,
  ];
  return memoryModule(
    {
      name: "gemm",
      params: [I32, I32, I32, I32, I32],
      locals: [
        [6, I32],
        [2 * TILE_ROWS + 3, V128],
      ],
      body,
    },
    shared,
  );
}

// ---------------------------------------------------------------------------------------------------
// Sparse left operands: the encoder's input (MNIST digits are about 81% blank pixels) and ReLU outputs.

/**
 * Left operands with at most this share of nonzero elements go to the sparse loop, when the strip of b
 * it reads for each nonzero stays in the L1 cache (`SPARSE_L1_STRIP_BYTES`; the weight gradients'
 * b = dy, 128 rows); otherwise up to `MAX_SPARSE_DENSITY_L2`; both limits come from timing the
 * two loops on ReLU outputs (docs/performance.md).
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
  if (!vectors || outColumnStride !== 4 || spec.aRowStride !== 8 || (spec.packed && spec.bDepthStride !== 16 * vectors))
    throw new RangeError(`sparseGemmModule: ${columns} columns stored with stride ${outColumnStride} are not covered.`);
  const [a, b, out, bias, rows] = [0, 1, 2, 3, 4];
  const [j, i, rp, p, pEnd, bp, o, strip] = [5, 6, 7, 8, 9, 10, 11, 12];
  const acc = (h: number) => 13 + h;
  const av = 13 + vectors;
  const { get, set } = op;
  const init: number[] = [];
  for (let h = 0; h < vectors; h++) {
    init.push(
      ...(spec.bias ? [...get(bias), ...get(j), ...op.i32Add, ...op.v128Load(16 * h)] : op.v128Zero),
      ...set(acc(h)),
    );
  }
  const step: number[] = [
    ...get(p),
    ...op.v128Load32Splat(4),
    ...set(av),
    ...get(strip),
    ...get(p),
    ...op.i32Load(0),
    ...op.i32Add,
    ...set(bp),
  ];
  for (let h = 0; h < vectors; h++) {
    const product = [...get(av), ...get(bp), ...op.v128Load(16 * h)];
    step.push(
      ...(spec.fma
        ? [...product, ...get(acc(h)), ...op.f32x4RelaxedMadd]
        : [...get(acc(h)), ...product, ...op.f32x4Mul, ...op.f32x4Add]),
      ...set(acc(h)),
    );
  }
  step.push(...get(p), ...op.i32Const(8), ...op.i32Add, ...op.tee(p), ...get(pEnd), ...op.i32Ne, ...op.brIf(0));
  const store: number[] = [
    ...get(out),
    ...get(i),
    ...op.i32Const(outRowStride),
    ...op.i32Mul,
    ...op.i32Add,
    ...get(j),
    ...op.i32Add,
    ...set(o),
  ];
  for (let h = 0; h < vectors; h++) {
    if (spec.relu) store.push(...get(acc(h)), ...op.v128Zero, ...op.f32x4Max, ...set(acc(h)));
    store.push(...get(o), ...get(acc(h)), ...op.v128Store(16 * h));
  }
  const row = [
    ...init,
    ...get(rp),
    ...op.i32Load(0),
    ...set(p),
    ...get(rp),
    ...op.i32Load(4),
    ...set(pEnd),
    ...op.block,
    ...get(p),
    ...get(pEnd),
    ...op.i32Eq,
    ...op.brIf(0),
    ...op.loop,
    ...step,
    ...op.end,
    ...op.end,
    ...store,
    ...get(rp),
    ...op.i32Const(8),
    ...op.i32Add,
    ...set(rp),
  ];
  const body = [
    ...op.i32Const(0),
    ...set(j),
    ...op.loop,
    ...op.i32Const(0),
    ...set(i),
    ...get(a),
    ...set(rp),
    // The strip's columns of b: at b + j, or where the strip starts when b is packed.
    ...get(b),
    ...get(j),
    ...(spec.packed ? [...op.i32Const(spec.depth), ...op.i32Mul] : []),
    ...op.i32Add,
    ...set(strip),
    ...op.block,
    ...get(rows),
    ...op.i32Eqz,
    ...op.brIf(0),
    ...op.loop,
    ...row,
    ...get(i),
    ...op.i32Const(1),
    ...op.i32Add,
    ...op.tee(i),
    ...get(rows),
    ...op.i32LtU,
    ...op.brIf(0),
    ...op.end,
    ...op.end,
    ...get(j),
    ...op.i32Const(16 * vectors),
    ...op.i32Add,
    ...op.tee(j),
    ...op.i32Const(4 * columns),
    ...op.i32LtU,
    ...op.brIf(0),
    ...op.end,
  ];
  return memoryModule(
    {
      name: "gemm",
      params: [I32, I32, I32, I32, I32],
      locals: [
        [8, I32],
        [vectors + 1, V128],
      ],
      body,
    },
    shared,
  );
}

// ---------------------------------------------------------------------------------------------------
// Packing the right operand.

/**
 * `run(src, dst)`: copies a depth x columns matrix with rows `rowStride` bytes apart into strips of
 * `stripBytes / 4` consecutive columns, each strip's depth rows one after another, strip after strip.
 * A loop then reads its strip of b as one contiguous run. Read in place, a strip of a matrix whose rows
 * are a power of two apart (784 x 512 weights: 2,048 bytes) falls into a few sets of the L1 cache and
 * is evicted at every pass; packed, the encoder's product runs much faster, for a small copy
 * (docs/performance.md). Rows are read in order, whole.
 */
export function packModule(
  columns: number,
  depth: number,
  rowStride: number,
  stripBytes: number,
  shared: boolean,
): Uint8Array {
  if (stripBytes % 16 !== 0 || (4 * columns) % stripBytes !== 0)
    throw new RangeError(`packModule: strips of ${stripBytes} bytes do not divide ${columns} columns.`);
  // Rows are copied in blocks of `block` (they stay in the L1 cache while every strip takes its part),
  // so that the writes go to one strip at a time.
  const block = [8, 4, 2, 1].find((rows) => depth % rows === 0) as number;
  const [src, dst] = [0, 1];
  const [sp, dp, spEnd, k] = [2, 3, 4, 5];
  const { get, set } = op;
  const copy: number[] = [];
  for (let r = 0; r < block; r++) {
    for (let h = 0; h < stripBytes / 16; h++)
      copy.push(
        ...get(dp),
        ...get(sp),
        ...op.v128Load(r * rowStride + 16 * h),
        ...op.v128Store(r * stripBytes + 16 * h),
      );
  }
  const body = [
    ...op.i32Const(0),
    ...set(k),
    ...op.loop,
    // Rows k .. k + block - 1: from src + k * rowStride, to dst + k * stripBytes in every strip.
    ...get(src),
    ...get(k),
    ...op.i32Const(rowStride),
    ...op.i32Mul,
    ...op.i32Add,
    ...op.tee(sp),
    ...op.i32Const(4 * columns),
    ...op.i32Add,
    ...set(spEnd),
    ...get(dst),
    ...get(k),
    ...op.i32Const(stripBytes),
    ...op.i32Mul,
    ...op.i32Add,
    ...set(dp),
    ...op.loop,
    ...copy,
    ...get(dp),
    ...op.i32Const(depth * stripBytes),
    ...op.i32Add,
    ...set(dp),
    ...get(sp),
    ...op.i32Const(stripBytes),
    ...op.i32Add,
    ...op.tee(sp),
    ...get(spEnd),
    ...op.i32Ne,
    ...op.brIf(0),
    ...op.end,
    ...get(k),
    ...op.i32Const(block),
    ...op.i32Add,
    ...op.tee(k),
    ...op.i32Const(depth),
    ...op.i32LtU,
    ...op.brIf(0),
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
  if (columns % TILE_COLUMNS !== 0)
    throw new RangeError(`transposePackModule: ${columns} columns are not a multiple of ${TILE_COLUMNS}.`);
  const [src, dst] = [0, 1];
  const [sp, dp, spEnd, dpEnd] = [2, 3, 4, 5];
  const { get, set } = op;
  const copy: number[] = [];
  for (let c = 0; c < TILE_COLUMNS; c++)
    copy.push(...get(dp), ...get(sp), ...op.f32Load(4 * depth * c), ...op.f32Store(4 * c));
  const body = [
    ...get(dst),
    ...set(dp),
    ...get(dst),
    ...op.i32Const(4 * columns * depth),
    ...op.i32Add,
    ...set(dpEnd),
    ...get(src),
    ...set(sp),
    ...op.loop,
    // One strip: rows j .. j + TILE_COLUMNS - 1 of src, element k of each per step.
    ...get(sp),
    ...op.i32Const(4 * depth),
    ...op.i32Add,
    ...set(spEnd),
    ...op.loop,
    ...copy,
    ...get(dp),
    ...op.i32Const(4 * TILE_COLUMNS),
    ...op.i32Add,
    ...set(dp),
    ...get(sp),
    ...op.i32Const(4),
    ...op.i32Add,
    ...op.tee(sp),
    ...get(spEnd),
    ...op.i32Ne,
    ...op.brIf(0),
    ...op.end,
    // sp is now at the end of the strip's first row: skip its other rows.
    ...get(sp),
    ...op.i32Const(4 * depth * (TILE_COLUMNS - 1)),
    ...op.i32Add,
    ...set(sp),
    ...get(dp),
    ...get(dpEnd),
    ...op.i32Ne,
    ...op.brIf(0),
    ...op.end,
  ];
  return memoryModule({ name: "run", params: [I32, I32], locals: [[4, I32]], body }, shared);
}

/**
 * `run(src, dst)`: dst = the transpose of the row-major rows x columns matrix src (columns x rows, row
 * by row). A transposed left operand whose rows are a power of two apart is copied so, before a dense
 * product: read in place, the k steps of a tile jump 2,048 bytes and thrash the L1 cache as a right
 * operand's strips do (docs/performance.md).
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
    ...op.i32Const(0),
    ...set(column),
    ...get(dst),
    ...set(dp),
    ...op.loop,
    ...get(src),
    ...get(column),
    ...op.i32Const(4),
    ...op.i32Mul,
    ...op.i32Add,
    ...set(sp),
    ...get(dp),
    ...op.i32Const(4 * rows),
    ...op.i32Add,
    ...set(dpEnd),
    ...op.loop,
    ...step,
    ...get(sp),
    ...op.i32Const(16 * columns),
    ...op.i32Add,
    ...set(sp),
    ...get(dp),
    ...op.i32Const(16),
    ...op.i32Add,
    ...op.tee(dp),
    ...get(dpEnd),
    ...op.i32Ne,
    ...op.brIf(0),
    ...op.end,
    ...get(column),
    ...op.i32Const(1),
    ...op.i32Add,
    ...op.tee(column),
    ...op.i32Const(columns),
    ...op.i32LtU,
    ...op.brIf(0),
    ...op.end,
  ];
  return memoryModule({ name: "run", params: [I32, I32], locals: [[4, I32]], body }, shared);
}
