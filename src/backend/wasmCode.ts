/**
 * A small WebAssembly assembler for the wasm backend's custom kernels (`fusedAdam.ts`,
 * `wasmGemm.ts`): opcodes, LEB128 numbers, and a module of one exported function that works on
 * the backend's own memory (imported as `env.memory`, shared in the threaded build), so that a kernel
 * reads and writes tensors where they lie on the heap.
 */

/** Unsigned LEB128. */
export function uleb(value: number): number[] {
  const out: number[] = [];
  do {
    let byte = value & 0x7f;
    value >>>= 7;
    if (value !== 0) byte |= 0x80;
    out.push(byte);
  } while (value !== 0);
  return out;
}

/** Signed LEB128 (i32 constants). */
export function sleb(value: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = value & 0x7f;
    value >>= 7;
    if ((value === 0 && (byte & 0x40) === 0) || (value === -1 && (byte & 0x40) !== 0)) return [...out, byte];
    out.push(byte | 0x80);
  }
}

export const I32 = 0x7f;
export const F32 = 0x7d;
export const V128 = 0x7b;

const f32Bytes = (x: number) => Array.from(new Uint8Array(new Float32Array([x]).buffer));
/** A memory operand: alignment hint 0 (any address), constant byte offset. */
const memarg = (offset: number) => [0x00, ...uleb(offset)];
const simd = (code: number) => [0xfd, ...uleb(code)];

/** The instructions used by the kernels (functions take the immediates). */
export const op = {
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  end: [0x0b],
  br: (depth: number) => [0x0c, ...uleb(depth)],
  brIf: (depth: number) => [0x0d, ...uleb(depth)],
  select: [0x1b],
  get: (local: number) => [0x20, ...uleb(local)],
  set: (local: number) => [0x21, ...uleb(local)],
  tee: (local: number) => [0x22, ...uleb(local)],
  i32Const: (x: number) => [0x41, ...sleb(x)],
  f32Const: (x: number) => [0x43, ...f32Bytes(x)],
  i32Load: (offset = 0) => [0x28, ...memarg(offset)],
  f32Load: (offset = 0) => [0x2a, ...memarg(offset)],
  i32Store: (offset = 0) => [0x36, ...memarg(offset)],
  f32Store: (offset = 0) => [0x38, ...memarg(offset)],
  i32Eqz: [0x45],
  i32Eq: [0x46],
  i32Ne: [0x47],
  i32LtU: [0x49],
  i32GeU: [0x4f],
  f32Ne: [0x5c],
  f32Lt: [0x5d],
  i32Add: [0x6a],
  i32Sub: [0x6b],
  i32DivU: [0x6e],
  i32Mul: [0x6c],
  i32And: [0x71],
  i32Shl: [0x74],
  f32Abs: [0x8b],
  f32Sqrt: [0x91],
  f32Add: [0x92],
  f32Sub: [0x93],
  f32Mul: [0x94],
  f32Div: [0x95],
  v128Load: (offset = 0) => [...simd(0x00), ...memarg(offset)],
  v128Load32Splat: (offset = 0) => [...simd(0x09), ...memarg(offset)],
  v128Store: (offset = 0) => [...simd(0x0b), ...memarg(offset)],
  v128Zero: [...simd(0x0c), ...new Array<number>(16).fill(0)],
  f32x4ExtractLane: (lane: number) => [...simd(0x1f), lane],
  i32x4ExtractLane: (lane: number) => [...simd(0x1b), lane],
  i32x4Splat: simd(0x11),
  i32x4Add: simd(0xae),
  i32x4Sub: simd(0xb1),
  i32x4Shl: simd(0xab),
  f32x4Ne: simd(0x42),
  f32x4Gt: simd(0x44),
  f32x4Ge: simd(0x46),
  v128And: simd(0x4e),
  v128Bitselect: simd(0x52),
  v128AnyTrue: simd(0x53),
  f32x4Neg: simd(0xe1),
  f32x4Min: simd(0xe8),
  f32x4Splat: simd(0x13),
  f32x4Lt: simd(0x43),
  v128AndNot: simd(0x4f),
  f32x4Abs: simd(0xe0),
  f32x4Sqrt: simd(0xe3),
  f32x4Add: simd(0xe4),
  f32x4Sub: simd(0xe5),
  f32x4Mul: simd(0xe6),
  f32x4Div: simd(0xe7),
  f32x4Max: simd(0xe9),
  /** Relaxed SIMD's f32x4.relaxed_madd (a * b + c): fused where the processor has FMA (see `relaxedMadd`). */
  f32x4RelaxedMadd: simd(0x105),
} as const;

const name = (text: string) => [...uleb(text.length), ...Array.from(text, (c) => c.charCodeAt(0))];
const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
const vector = (items: number[][]) => [...uleb(items.length), ...items.flat()];

export interface FunctionCode {
  /** The export name. */
  readonly name: string;
  /** Parameter types (locals 0..params.length-1); the function returns nothing. */
  readonly params: readonly number[];
  /** Further locals as [count, type] runs, numbered after the parameters. */
  readonly locals: readonly (readonly [number, number])[];
  /** The instructions, without the final `end`. */
  readonly body: readonly number[];
}

/**
 * A module importing `env.memory` (declared shared, with the largest 32-bit maximum, when `shared`) and
 * exporting one function.
 */
export function memoryModule(fn: FunctionCode, shared: boolean): Uint8Array {
  const limits = shared ? [0x03, 0x00, ...uleb(65536)] : [0x00, 0x00];
  const code = [...vector(fn.locals.map(([count, type]) => [...uleb(count), type])), ...fn.body, ...op.end];
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vector([[0x60, ...vector(fn.params.map((type) => [type])), 0x00]])),
    ...section(2, vector([[...name("env"), ...name("memory"), 0x02, ...limits]])),
    ...section(3, vector([[0x00]])),
    ...section(7, vector([[...name(fn.name), 0x00, 0x00]])),
    ...section(10, vector([[...uleb(code.length), ...code]])),
  ]);
}

/**
 * A module exporting `madd(a, b, c)`: lane 0 of f32x4.relaxed_madd on three splats, so that a caller can
 * tell whether relaxed SIMD validates and whether its multiply-add rounds once (fused) or twice.
 */
function maddProbeModule(): Uint8Array {
  const body = [
    ...op.get(0),
    ...op.f32x4Splat,
    ...op.get(1),
    ...op.f32x4Splat,
    ...op.get(2),
    ...op.f32x4Splat,
    ...op.f32x4RelaxedMadd,
    ...op.f32x4ExtractLane(0),
    ...op.end,
  ];
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vector([[0x60, ...vector([[F32], [F32], [F32]]), ...vector([[F32]])]])),
    ...section(3, vector([[0x00]])),
    ...section(7, vector([[...name("madd"), 0x00, 0x00]])),
    ...section(10, vector([[...uleb(body.length + 1), 0x00, ...body]])),
  ]);
}

/**
 * How f32x4.relaxed_madd computes here: `fused` (one rounding, the processor's FMA instruction),
 * `separate` (a multiply and an add, each rounded: the same as f32x4.mul then f32x4.add), or
 * `unavailable` (the engine has no relaxed SIMD). Node 20's V8 has relaxed SIMD behind a flag, which
 * is set here (it applies to modules compiled from then on, in every thread of the process); newer
 * Node has it on by default. Decided by computing (1 + 2^-23)^2 - (1 + 2^-22): exactly 2^-46, which a
 * fused multiply-add returns, while rounding the product first to 1 + 2^-22 leaves 0.
 */
export function relaxedMadd(): "fused" | "separate" | "unavailable" {
  if (relaxedMaddMode) return relaxedMaddMode;
  const api = (globalThis as unknown as { WebAssembly: WebAssemblyApi & { validate(bytes: Uint8Array): boolean } })
    .WebAssembly;
  const bytes = maddProbeModule();
  if (!api.validate(bytes)) {
    // Required lazily: importing this module must not touch the engine's flags.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    (require("node:v8") as typeof import("node:v8")).setFlagsFromString("--experimental-wasm-relaxed-simd");
  }
  if (!api.validate(bytes)) return (relaxedMaddMode = "unavailable");
  const madd = new api.Instance(new api.Module(bytes), {}).exports.madd as (a: number, b: number, c: number) => number;
  const x = 1 + 2 ** -23;
  relaxedMaddMode = madd(x, x, -(1 + 2 ** -22)) === 2 ** -46 ? "fused" : "separate";
  return relaxedMaddMode;
}
let relaxedMaddMode: "fused" | "separate" | "unavailable" | undefined;

/** The parts of the WebAssembly API used here (declared locally: tslab compiles without the DOM lib). */
export interface WebAssemblyApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}

export interface MemoryLike {
  buffer: ArrayBufferLike;
}

/** The Emscripten module of the wasm backend: its heap, and the memory object behind it. */
export interface EmscriptenModuleLike {
  HEAPU8: Uint8Array;
  /** Set by the threaded build. */
  wasmMemory?: MemoryLike;
  /** The instance's exports; the single-threaded build exports its memory there. */
  asm?: { memory?: MemoryLike };
}

/** What the kernels use of the wasm backend (`BackendWasm` in tfjs-backend-wasm). */
export interface WasmBackendLike {
  wasm: EmscriptenModuleLike;
  dataIdMap: { get(dataId: object): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: "float32"): { dataId: object; shape: number[]; dtype: "float32" };
  disposeData(dataId: object): boolean;
}

/** The backend's WebAssembly.Memory (undefined if this build does not expose it). */
export function memoryOf(module: EmscriptenModuleLike): MemoryLike | undefined {
  return module.wasmMemory ?? module.asm?.memory;
}

/**
 * The heap's current buffer. Ask only after allocating: growing the memory replaces the buffer, and in
 * the threaded build another thread may have grown it, so the memory object itself is asked.
 */
export function heapBuffer(module: EmscriptenModuleLike): ArrayBufferLike {
  return memoryOf(module)?.buffer ?? module.HEAPU8.buffer;
}

/** Whether the memory is shared between threads (the threaded build). */
export function isShared(memory: MemoryLike): boolean {
  return typeof SharedArrayBuffer !== "undefined" && memory.buffer instanceof SharedArrayBuffer;
}

/** Instantiates `bytes` on `memory` and returns its export `name`; null where it cannot (no SIMD). */
export function instantiate<F>(bytes: Uint8Array, memory: MemoryLike, exportName: string): F | null {
  try {
    const api = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;
    const instance = new api.Instance(new api.Module(bytes), { env: { memory } });
    return instance.exports[exportName] as F;
  } catch {
    return null;
  }
}
