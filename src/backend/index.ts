/**
 * `src/backend`: which TensorFlow.js backend runs (`select.ts`), and the WebAssembly engine that makes
 * the wasm backend fast, registered behind tfjs's kernels and `src/vae/fastPath.ts`, so `src/vae` runs
 * unchanged everywhere. Kernel fixes: `wasmKernelFixes.ts`; products: `wasmGemm.ts` (kernels),
 * `wasmGemmCode.ts` (their code), `rowLists.ts` (sparse rows), `wasmThreadPool.ts` and `wasmThreads.ts`
 * (threads); `wasmCode.ts` (the assembler); fused kernels: `fusedAdam.ts`, `fusedLoss.ts`,
 * `fusedGradients.ts`, and `fusedTrainStep.ts`, which registers the whole step. More: docs/wasm-engine.md.
 * May import: system, vae.
 */
export * from "./fusedAdam";
export * from "./select";
