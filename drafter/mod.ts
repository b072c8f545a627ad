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
export {
  type DrafterTarget,
  draftVocabDefault,
  loadDrafter,
  type LoadDrafterOptions,
  readDrafterWeights,
  readDraftVocabFile,
} from "./load.ts";
export {
  DRAFT_VOCAB_FILE,
  MIN_DRAFT_VOCAB,
  parseDraftVocabDefault,
  parseDraftVocabRanking,
  pickDraftVocab,
  restrictDraftVocab,
} from "./vocab.ts";
