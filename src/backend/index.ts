/**
 * `src/backend`: which TensorFlow.js backend runs, and the small WebAssembly engine that makes the wasm
 * fallback fast. It plugs in behind tfjs (re-registered kernels, custom kernels), so the VAE code in
 * `src/vae` runs unchanged on every backend.
 *
 * - `select.ts`: `initBackend` (tfjs-node, else wasm, else cpu, saying why) and the wasm kernel fixes
 *   (transposed products, column sums, `Identity` without a copy).
 * - `wasmGemm.ts`: matrix products as WebAssembly SIMD loops generated per shape, split across threads,
 *   with fused multiply-adds where relaxed SIMD fuses them (`VAE_WASM_FMA`), the right operand packed
 *   in strips, and a sparse loop for left operands that are mostly zeros (the digits, ReLU outputs).
 * - `rowLists.ts`: the lists of nonzeros the sparse loop reads, built on the heap.
 * - `wasmThreads.ts`: the threaded wasm build started in Node.
 * - `wasmCode.ts`: the WebAssembly assembler the products and the fused Adam are written with, and the
 *   check of how relaxed SIMD's multiply-add rounds here (`relaxedMadd`).
 * - `fusedAdam.ts`: Keras's Adam (`src/vae/optimizer.ts`) as one kernel call per weight array.
 * - `fusedLoss.ts`: the reconstruction loss from logits (`src/vae/loss.ts`) and its gradient in one pass.
 * - `fusedGradients.ts`: one batch's loss terms and the gradients of all ten weight arrays in one
 *   kernel call, the forward and backward passes written out (`trainStep` in `src/vae/train.ts`).
 *
 * May import: system, vae.
 */
export * from "./fusedAdam";
export * from "./select";
