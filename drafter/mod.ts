/**
 * The recurrent drafter: Apple-format checkpoint loading and the CPU DraftModel.
 *
 * @module
 */
export { DRAFTER_MODEL_TYPE, parseDrafterConfig, readDrafterConfig } from "./config.ts";
export {
  cpuDrafter,
  type CpuDrafterOptions,
  type CpuDrafterWeights,
  type DrafterWeights,
  WARP_TOP_K,
} from "./cpu.ts";
export { type DrafterTarget, loadDrafter, type LoadDrafterOptions, readDrafterWeights } from "./load.ts";
export {
  DRAFT_VOCAB_FILE,
  type DraftVocabOption,
  MIN_DRAFT_VOCAB,
  parseDraftVocabDefault,
  parseDraftVocabRanking,
  pickDraftVocab,
  resolveDraftVocab,
  restrictDraftVocab,
} from "./vocab.ts";
