/**
 * Load an Apple-format drafter checkpoint directory (config.json + model.safetensors, tensor names of
 * ml-recurrent-drafter) next to a target model, checking that the two agree on hidden size and vocabulary
 * and that every tensor has its expected shape.
 *
 * @module
 */
import { pathIn } from "../loader/paths.ts";
import type { DrafterConfig, DraftModel, ModelConfig } from "../core/types.ts";
import type { TensorStore } from "../loader/types.ts";
import { openSafetensors } from "../loader/safetensors.ts";
import { readDrafterConfig } from "./config.ts";
import { cpuDrafter, type CpuDrafterOptions, type DrafterWeights } from "./cpu.ts";
import { DRAFT_VOCAB_FILE, type DraftVocabOption, resolveDraftVocab, restrictDraftVocab } from "./vocab.ts";

/** What the drafter needs from its target: sizes to check against, and the input embedding table. */
export interface DrafterTarget {
  /** The target's config; hiddenSize and vocabSize must match the drafter's. */
  config: ModelConfig;
  /** [V * H] float32, row-major. */
  embeddingTable(): Float32Array;
}

/** Read the weights named in the reference format from an open store, validating every shape. */
export function readDrafterWeights(
  store: TensorStore,
  config: DrafterConfig,
): DrafterWeights {
  const { hiddenSize: H, vocabSize: V, exitDim: E, numDraftLayers: L } = config;
  const hasProj = E !== 2 * H;
  if (!hasProj && store.has("input_proj.weight")) {
    throw new Error(`drafter: tensor 'input_proj.weight' present although exit_dim = 2*hidden_size = ${E}`);
  }
  const resWeights: Float32Array[] = [], resBiases: Float32Array[] = [];
  if (store.has(`lm_head.${L + 1}.weight`) || store.has(`lm_head.${L}.linear.weight`)) {
    throw new Error(`drafter: checkpoint has more ResBlocks than num_draft_layers = ${L}`);
  }
  if (!config.rnn && store.has("rnn_u.weight")) {
    throw new Error("drafter: tensor 'rnn_u.weight' present although config 'rnn' is false");
  }
  const bf16 = new Set<Float32Array>(); // matrices stored as BF16 (cpuDrafter keeps them bf16)
  const matrix = (name: string, shape: number[]): Float32Array => {
    const a = store.readF32(name, shape);
    if (store.info(name).dtype === "BF16") bf16.add(a);
    return a;
  };
  for (let i = 0; i < L; i++) {
    resWeights.push(matrix(`lm_head.${i}.linear.weight`, [E, E]));
    resBiases.push(store.readF32(`lm_head.${i}.linear.bias`, [E]));
  }
  return {
    config,
    inputProjWeight: hasProj ? matrix("input_proj.weight", [E, 2 * H]) : null,
    inputProjBias: hasProj ? store.readF32("input_proj.bias", [E]) : null,
    resWeights,
    resBiases,
    headWeight: matrix(`lm_head.${L}.weight`, [V, E]),
    rnnU: config.rnn ? matrix("rnn_u.weight", [H, H]) : null,
    rnnUBias: config.rnn ? store.readF32("rnn_u.bias", [H]) : null,
    rnnW: config.rnn ? matrix("rnn_w.weight", [H, H]) : null,
    bf16,
  };
}

/** Refuse a drafter whose hidden size or vocabulary differs from the target's, with both sizes. */
export function checkDrafterFits(config: DrafterConfig, target: DrafterTarget, configPath: string): void {
  const t = target.config;
  if (config.hiddenSize !== t.hiddenSize || config.vocabSize !== t.vocabSize) {
    throw new Error(
      `${configPath}: drafter does not fit the target: drafter hidden_size ${config.hiddenSize}, ` +
        `vocab_size ${config.vocabSize}; target hidden_size ${t.hiddenSize}, vocab_size ${t.vocabSize}`,
    );
  }
}

/**
 * Read `<dir>/config.json` + `<dir>/model.safetensors` (Apple's format), refusing a drafter whose hidden size
 * or vocabulary does not match the target's, with both sizes in the message. With `draftVocab` (a size, or
 * "default": `default_size`), the head keeps the rows of that many most frequent tokens of
 * `<dir>/draft_vocab.json` (drafter/vocab.ts).
 */
export function readDrafterDir(
  dir: string,
  target: DrafterTarget,
  draftVocab?: DraftVocabOption,
): DrafterWeights {
  const configPath = pathIn(dir, "config.json");
  const config = readDrafterConfig(configPath);
  checkDrafterFits(config, target, configPath);
  const rankPath = pathIn(dir, DRAFT_VOCAB_FILE);
  const vocab = resolveDraftVocab(
    draftVocab,
    draftVocab === undefined ? null : readTextOrNull(rankPath),
    config.vocabSize,
    rankPath,
    "the draft vocabulary size (--draft-vocab, draftVocab)",
  );
  const store = openSafetensors(pathIn(dir, "model.safetensors"));
  try {
    const weights = readDrafterWeights(store, config);
    return vocab ? restrictDraftVocab(weights, vocab) : weights;
  } finally {
    store.close();
  }
}

/** A text file's contents, or null when it does not exist. */
function readTextOrNull(path: string): string | null {
  try {
    return Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** Options of loadDrafter(): cpuDrafter's, and a draft vocabulary (see readDrafterDir). */
export interface LoadDrafterOptions extends CpuDrafterOptions {
  /**
   * Keep the head rows of this many most frequent tokens (`<dir>/draft_vocab.json`), or "default" (its
   * default_size, else all). Default: all.
   */
  draftVocab?: DraftVocabOption;
}

/** Load `<dir>/config.json` + `<dir>/model.safetensors` as a CPU DraftModel over the target's embeddings. */
// deno-lint-ignore require-await
export async function loadDrafter(
  dir: string,
  target: DrafterTarget,
  opts: LoadDrafterOptions = {},
): Promise<DraftModel> {
  return cpuDrafter(readDrafterDir(dir, target, opts.draftVocab), target.embeddingTable(), opts);
}
