/**
 * ReDrafter for TypeScript: Recurrent Drafter speculative decoding (Apple, arXiv 2403.09919) on Deno and in
 * browsers, with a pure-TS CPU reference backend, ONNX Runtime and WebGPU backends.
 *
 * Everything of web.ts (the part that needs no file system), plus the loaders that read checkpoint folders
 * from disk, the drafter loaders by folder, the CPU kernels, and the CUDA library check.
 *
 * @module
 */
export * from "./web.ts";
export { loadCheckpoint, loadCheckpointSync } from "./loader/checkpoint.ts";
export * from "./loader/tokenizer.ts";
export * from "./drafter/mod.ts";
export {
  createKernels,
  type KernelChoice,
  type Kernels,
  type KernelsOptions,
  padFloats,
  padQ7,
  padQ8,
  type Q7Weight,
  type Q8Weight,
  quantizeQ7Into,
  quantizeQ8Into,
  wasmRelaxedSimdSupported,
  wasmSimdSupported,
} from "./kernels/mod.ts";
export type { AttentionKernels } from "./kernels/attention.ts";
export { cudaLibraryProblem } from "./backends/onnx/mod.ts";
