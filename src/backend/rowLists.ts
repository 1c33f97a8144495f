/**
 * The row lists of a sparse left operand, built on the wasm heap by generated WebAssembly loops, for the
 * sparse matrix products of `wasmGemm.ts`: for each row i of the m x k operand a, its nonzeros a(i, k) in
 * k order, each an 8-byte entry of k * stride (an i32 byte offset into the right operand) and a(i, k) (f32).
 * Layout: a start and an end address per row (absolute byte addresses), then each row's entries and one
 * spare slot (see `fillModule`). Two passes over a in storage order (count each row's nonzeros, then write
 * the entries), four elements at a time and skipping four zeros at once, keep the building cheap beside the
 * product it speeds up (docs/performance.md).
 */
import { I32, V128, memoryModule, op } from "./wasmCode";

/** One loop: (a, p) => void, on the heap. */
export type RowListLoop = (a: number, p: number) => void;

const ZERO = op.v128Zero;

/**
 * `run(a, counts)`, the counting loop: counts[i] = the nonzeros of row i of a. Rows are the stored rows of a row-major
 * [m, k] matrix, or, when `transposed`, the stored columns of a row-major [k, m] one (then counts must
 * start at zero).
 */
export function countModule(m: number, k: number, transposed: boolean, shared: boolean): Uint8Array {
  const { get, set } = op;
  const [a, counts] = [0, 1];
  const [ap, cp, aEnd, total] = [2, 3, 4, 5];
  const sum = 6; // v128
  let body: number[];
  if (!transposed) {
    body = [
      ...get(a),
      ...set(ap),
      ...get(counts),
      ...set(cp),
      ...get(counts),
      ...op.i32Const(4 * m),
      ...op.i32Add,
      ...set(total),
      ...op.loop,
      ...ZERO,
      ...set(sum),
      ...get(ap),
      ...op.i32Const(4 * k),
      ...op.i32Add,
      ...set(aEnd),
      ...op.loop,
      // f32x4.ne is all ones (-1) in the lanes that are not zero: subtracting counts them.
      ...get(sum),
      ...get(ap),
      ...op.v128Load(0),
      ...ZERO,
      ...op.f32x4Ne,
      ...op.i32x4Sub,
      ...set(sum),
      ...get(ap),
      ...op.i32Const(16),
      ...op.i32Add,
      ...op.tee(ap),
      ...get(aEnd),
      ...op.i32Ne,
      ...op.brIf(0),
      ...op.end,
      ...get(cp),
      ...get(sum),
      ...op.i32x4ExtractLane(0),
      ...get(sum),
      ...op.i32x4ExtractLane(1),
      ...op.i32Add,
      ...get(sum),
      ...op.i32x4ExtractLane(2),
      ...op.i32Add,
      ...get(sum),
      ...op.i32x4ExtractLane(3),
      ...op.i32Add,
      ...op.i32Store(0),
      ...get(cp),
      ...op.i32Const(4),
      ...op.i32Add,
      ...op.tee(cp),
      ...get(total),
      ...op.i32Ne,
      ...op.brIf(0),
      ...op.end,
    ];
  } else {
    body = [
      ...get(a),
      ...set(ap),
      ...get(a),
      ...op.i32Const(4 * m * k),
      ...op.i32Add,
      ...set(total),
      ...op.loop,
      ...get(counts),
      ...set(cp),
      ...get(ap),
      ...op.i32Const(4 * m),
      ...op.i32Add,
      ...set(aEnd),
      ...op.loop,
      ...get(cp),
      ...get(cp),
      ...op.v128Load(0),
      ...get(ap),
      ...op.v128Load(0),
      ...ZERO,
      ...op.f32x4Ne,
      ...op.i32x4Sub,
      ...op.v128Store(0),
      ...get(cp),
      ...op.i32Const(16),
      ...op.i32Add,
      ...set(cp),
      ...get(ap),
      ...op.i32Const(16),
      ...op.i32Add,
      ...op.tee(ap),
      ...get(aEnd),
      ...op.i32Ne,
      ...op.brIf(0),
      ...op.end,
      ...get(ap),
      ...get(total),
      ...op.i32Ne,
      ...op.brIf(0),
      ...op.end,
    ];
  }
  return memoryModule(
    {
      name: "run",
      params: [I32, I32],
      locals: [
        [4, I32],
        [1, V128],
      ],
      body,
    },
    shared,
  );
}

/**
 * `run(a, cursors)`, the filling loop: writes the entries of every row, row i from its start address on.
 * For the stored rows of a row-major [m, k] a, cursors is the rows' (start, end) pointer pairs; when
 * `transposed` (row i is column i of a row-major [k, m] a), cursors[i] is a copy of row i's start that
 * is advanced. An entry is written for every element and kept (the cursor advanced by 8) only when the
 * element is not zero, so there is no branch per element: the zeros after a row's last nonzero are
 * written to the spare slot after it. Four zeros in a row are skipped at once.
 */
export function fillModule(m: number, k: number, transposed: boolean, stride: number, shared: boolean): Uint8Array {
  const { get, set } = op;
  const [a, cursors] = [0, 1];
  const [ap, aEnd, c, cp, koff, v, total] = [2, 3, 4, 5, 6, 7, 8];
  // v is an f32 local; the others i32.
  const entry = (element: number, offset: number[], cursor: number[]) => [
    ...get(ap),
    ...op.f32Load(4 * element),
    ...set(v),
    ...cursor,
    ...set(c),
    ...get(c),
    ...offset,
    ...op.i32Store(0),
    ...get(c),
    ...get(v),
    ...op.f32Store(4),
    // c += 8 when v != 0 (NaN included, as a dense product would carry it)
    ...get(c),
    ...get(v),
    ...op.f32Const(0),
    ...op.f32Ne,
    ...op.i32Const(3),
    ...op.i32Shl,
    ...op.i32Add,
  ];
  const skipIfZero = [
    ...get(ap),
    ...op.v128Load(0),
    ...ZERO,
    ...op.f32x4Ne,
    ...op.v128AnyTrue,
    ...op.i32Eqz,
    ...op.brIf(0),
  ];
  let body: number[];
  if (!transposed) {
    // Row by row; within a group of four, element e has offset koff + e * stride.
    const group: number[] = [];
    for (let e = 0; e < 4; e++) {
      group.push(...entry(e, [...get(koff), ...op.i32Const(e * stride), ...op.i32Add], [...get(cp)]), ...set(cp));
    }
    body = [
      ...get(a),
      ...set(ap),
      ...get(cursors),
      ...op.i32Const(8 * m),
      ...op.i32Add,
      ...set(total),
      ...op.loop, // rows: cursors walks the rows' (start, end) pointers
      ...get(cursors),
      ...op.i32Load(0),
      ...set(cp),
      ...op.i32Const(0),
      ...set(koff),
      ...get(ap),
      ...op.i32Const(4 * k),
      ...op.i32Add,
      ...set(aEnd),
      ...op.loop,
      ...op.block,
      ...skipIfZero,
      ...group,
      ...op.end,
      ...get(koff),
      ...op.i32Const(4 * stride),
      ...op.i32Add,
      ...set(koff),
      ...get(ap),
      ...op.i32Const(16),
      ...op.i32Add,
      ...op.tee(ap),
      ...get(aEnd),
      ...op.i32Ne,
      ...op.brIf(0),
      ...op.end,
      ...get(cursors),
      ...op.i32Const(8),
      ...op.i32Add,
      ...op.tee(cursors),
      ...get(total),
      ...op.i32Ne,
      ...op.brIf(0),
      ...op.end,
    ];
  } else {
    // Stored row by stored row (k of the product); element e of a group belongs to product row
    // (column) j + e, whose cursor is at cp + 4 e.
    const group: number[] = [];
    for (let e = 0; e < 4; e++) {
      group.push(...get(cp), ...entry(e, [...get(koff)], [...get(cp), ...op.i32Load(4 * e)]), ...op.i32Store(4 * e));
    }
    body = [
      ...get(a),
      ...set(ap),
      ...op.i32Const(0),
      ...set(koff),
      ...op.loop,
      ...get(cursors),
      ...set(cp),
      ...get(ap),
      ...op.i32Const(4 * m),
      ...op.i32Add,
      ...set(aEnd),
      ...op.loop,
      ...op.block,
      ...skipIfZero,
      ...group,
      ...op.end,
      ...get(cp),
      ...op.i32Const(16),
      ...op.i32Add,
      ...set(cp),
      ...get(ap),
      ...op.i32Const(16),
      ...op.i32Add,
      ...op.tee(ap),
      ...get(aEnd),
      ...op.i32Ne,
      ...op.brIf(0),
      ...op.end,
      ...get(koff),
      ...op.i32Const(stride),
      ...op.i32Add,
      ...op.tee(koff),
      ...op.i32Const(k * stride),
      ...op.i32Ne,
      ...op.brIf(0),
      ...op.end,
    ];
  }
  return memoryModule(
    {
      name: "run",
      params: [I32, I32],
      locals: [
        [5, I32],
        [1, 0x7d],
        [1, I32],
      ],
      body,
    },
    shared,
  );
}
