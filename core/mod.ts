/**
 * core: beam search, tree packing, acceptance rules, sampling, the autoregressive and ReDrafter loops, and
 * metrics. Pure TypeScript; imports nothing outside core/.
 *
 * @module
 */

export type * from "./types.ts";
export {
  appleProbs,
  argmax,
  checkSamplerParams,
  drawCategorical,
  GREEDY,
  LOG_0,
  type SamplerParams,
  sampleToken,
  samplingProbs,
  topKWarp,
  uniform,
} from "./sampling.ts";
export {
  beamAncestry,
  beamSearch,
  type BeamSearchResult,
  checkBeamShape,
  DEAD_BEAM_PRIOR,
} from "./beam_search.ts";
export {
  checkDraftTree,
  defaultTreeChildren,
  type DraftTreeOptions,
  type DraftTreeResult,
  MAX_TREE_CHILDREN,
  MAX_TREE_NODES,
  treeSearch,
} from "./draft_tree.ts";
export { RoundChooser, type RoundKind } from "./adaptive.ts";
export { type Drafting, type DraftingContext, recommendedDrafting } from "./drafting.ts";
export {
  checkLookupOptions,
  LOOKUP_LENGTHS,
  LOOKUP_MODES,
  lookupDraft,
  type LookupLength,
  type LookupMode,
  type LookupOptions,
} from "./lookup.ts";
export {
  ancestorMask,
  chainBeams,
  dedupPrefix,
  END,
  packBatch,
  packBeams,
  type PackedBatch,
  type PackedTree,
  treeAttentionMask,
  unpack,
} from "./tree.ts";
export { type Acceptance, appleAccept, type AppleInputs, greedyChoose, walkTree } from "./verify.ts";
export {
  type FinishReason,
  type GenerateOptions,
  type GenerateResult,
  resolveSampling,
  type SamplingMode,
  type SamplingOptions,
  type SamplingPlan,
  type SpeculativeOptions,
  type TokenEvent,
} from "./options.ts";
export { drain, generate, generateStream } from "./generate.ts";
export { speculativeGenerate, speculativeStream } from "./speculative.ts";
export { type Clock, defaultClock, MetricsRecorder, type PromptMetrics, type RunMetrics } from "./metrics.ts";
export { PromptCache } from "./prompt_cache.ts";
