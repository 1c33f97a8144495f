/**
 * `src/backend`: which TensorFlow.js backend runs, and the small WebAssembly engine that makes the wasm
 * fallback fast. It plugs in behind tfjs (re-registered kernels, custom kernels), so the VAE code in
 * `src/vae` runs unchanged on every backend.
 *
 * - `select.ts`: `initBackend` (tfjs-node, else wasm, else cpu, saying why).
 * - `wasmKernelFixes.ts`: faster stock wasm kernels (transposed products, column sums, `Identity`).
 * - `wasmGemm.ts`: the matrix-product kernels; `wasmGemmCode.ts` generates their WebAssembly SIMD loops
 *   per shape (dense, sparse, packing); `wasmThreadPool.ts` runs them, and element-wise loops, on threads.
 * - `rowLists.ts`: the lists of nonzeros the sparse loop reads, built on the heap.
 * - `wasmThreads.ts`: the threaded wasm build started in Node.
 * - `wasmCode.ts`: the WebAssembly assembler the loops are written with, and the check of how relaxed
 *   SIMD's multiply-add rounds here (`relaxedMadd`).
 * - `fusedAdam.ts`: Keras's Adam (`src/vae/optimizer.ts`) as one kernel call per weight array.
 * - `fusedLoss.ts`: the reconstruction loss from logits (`src/vae/loss.ts`) and its gradient in one pass.
 * - `fusedGradients.ts`: one batch's loss terms and all ten weight gradients (or the whole step with
 *   Adam) in one kernel call; `fusedTrainStep.ts` puts it behind `trainStep`'s hook (`src/vae/train.ts`).
 *
 * May import: system, vae.
 */
export * from "./fusedAdam";
export * from "./select";
