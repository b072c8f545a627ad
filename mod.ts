/**
 * ReDrafter for TypeScript: Recurrent Drafter speculative decoding (Apple, arXiv 2403.09919) on Deno and in
 * browsers, with a pure-TS CPU reference backend, ONNX Runtime and WebGPU backends.
 *
 * @module
 */
export type * from "./core/types.ts";
export type * from "./loader/types.ts";
export { loadCheckpoint, loadCheckpointSync } from "./loader/checkpoint.ts";
export { ConfigError, parseGenerationConfig, parseModelConfig } from "./loader/config.ts";
export {
  fetchBytes,
  type FetchOptions,
  fetchText,
  fileUrl,
  loadCheckpointFromUrl,
  loadDrafterFromUrl,
  loadTokenizerFromUrl,
  readDrafterFromUrl,
} from "./loader/remote.ts";
export { type CpuModelOptions, createCpuModel } from "./backends/cpu/mod.ts";
export * from "./loader/tokenizer.ts";
export * from "./loader/chat_template.ts";
export * from "./loader/stream_decoder.ts";
export * from "./core/mod.ts";
export * from "./drafter/mod.ts";
export {
  createKernels,
  type KernelChoice,
  type Kernels,
  type KernelsOptions,
  padFloats,
  padQ8,
  type Q8Weight,
  quantizeQ8Into,
  wasmSimdSupported,
} from "./kernels/mod.ts";
export {
  createOnnxModel,
  cudaLibraryProblem,
  type OnnxModelOptions,
  type ProviderName,
  WEIGHT_FORMATS,
  type WeightFormat,
} from "./backends/onnx/mod.ts";
