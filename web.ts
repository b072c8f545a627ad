/**
 * The browser entry of redrafter: everything of mod.ts that runs without a file system. Models, tokenizers
 * and drafters load over HTTP (loader/remote.ts), ONNX graphs are built in memory, and onnxruntime-web runs
 * them (onnx-wasm, onnx-webgpu). `deno task build:web` bundles this module into dist/web/redrafter.js, next
 * to onnxruntime-web's .wasm; examples/browser/ uses it.
 *
 * @module
 */
export type * from "./core/types.ts";
export type * from "./loader/types.ts";
export { ConfigError, parseGenerationConfig, parseModelConfig } from "./loader/config.ts";
export {
  type DraftVocabUrlOption,
  fetchBytes,
  type FetchOptions,
  fetchText,
  fileUrl,
  loadCheckpointFromUrl,
  loadDrafterFromUrl,
  loadTokenizerFromUrl,
  readDrafterFromUrl,
} from "./loader/remote.ts";
export { type CpuModelOptions, createCpuModel, type ForwardProfile } from "./backends/cpu/mod.ts";
export {
  type DecodeOptions,
  type EncodeOptions,
  type SpecialToken,
  type Tokenizer,
  tokenizerFromTexts,
  TokenizerNotFoundError,
  type TokenizerTexts,
} from "./loader/tokenizer.ts";
export * from "./loader/chat_template.ts";
export * from "./loader/stream_decoder.ts";
export * from "./core/mod.ts";
export { DRAFTER_MODEL_TYPE, parseDrafterConfig } from "./drafter/config.ts";
export {
  cpuDrafter,
  type CpuDrafterOptions,
  type CpuDrafterWeights,
  type DrafterWeights,
  WARP_TOP_K,
} from "./drafter/cpu.ts";
export { type DrafterTarget, readDrafterWeights } from "./drafter/load.ts";
export {
  DRAFT_VOCAB_FILE,
  MIN_DRAFT_VOCAB,
  parseDraftVocabDefault,
  parseDraftVocabRanking,
  pickDraftVocab,
  restrictDraftVocab,
} from "./drafter/vocab.ts";
export type { KernelChoice } from "./kernels/mod.ts";
export {
  createOnnxDrafter,
  createOnnxModel,
  type OnnxDrafterOptions,
  type OnnxModelOptions,
  type ProviderName,
  WEIGHT_FORMATS,
  type WeightFormat,
} from "./backends/onnx/mod.ts";
