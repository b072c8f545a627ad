/**
 * The contracts every part of the project shares: the normalized model configuration, the target-model
 * interface that backends implement (built for tree verification), and the drafter-step interface that
 * beam search drives. Pure types, no I/O.
 *
 * Shape notation in comments: B = batch rows, n = new tokens of a row in one call, H = hidden size,
 * V = vocabulary size, W = beam width, L = beam length (includes the init token).
 *
 * @module
 */

/** RoPE frequency scaling as found in config.json `rope_scaling` / `rope_parameters`. */
export type RopeScaling =
  | { type: "linear"; factor: number }
  | {
    type: "llama3";
    factor: number;
    lowFreqFactor: number;
    highFreqFactor: number;
    originalMaxPositionEmbeddings: number;
  };

/** Architectures we run; anything else is refused by the config parser with its name. */
export type Architecture = "llama" | "mistral" | "qwen2";

/** A Hugging Face causal-LM config.json, normalized (transformers 4 and 5 spellings). */
export interface ModelConfig {
  /** From `architectures[0]` (LlamaForCausalLM -> "llama", ...). */
  architecture: Architecture;
  /** V: rows of the embedding table and of the LM head. */
  vocabSize: number;
  /** H: residual-stream width. */
  hiddenSize: number;
  /** MLP inner width (gate/up output, down input). */
  intermediateSize: number;
  /** Decoder layers (`num_hidden_layers`). */
  numLayers: number;
  /** Query heads. */
  numHeads: number;
  /** Key/value heads (GQA); equals numHeads when the config omits it. numHeads is a multiple of it. */
  numKvHeads: number;
  /** Per-head width: `head_dim`, else hiddenSize / numHeads. Always even (RoPE rotates pairs). */
  headDim: number;
  /** RMSNorm epsilon. Default 1e-6. */
  rmsNormEps: number;
  /** RoPE base frequency. Default 10000. */
  ropeTheta: number;
  /** null for plain RoPE (no scaling, or rope type "default"). */
  ropeScaling: RopeScaling | null;
  /** Longest context the model was trained for; also the default llama3 `originalMaxPositionEmbeddings`. */
  maxPositionEmbeddings: number;
  /** The LM head reuses the input embedding table (no separate `lm_head.weight`). Default false. */
  tieWordEmbeddings: boolean;
  /** q/k/v projections carry a bias (Qwen2, or Llama with `attention_bias`). */
  attentionBias: boolean;
  /** o_proj carries a bias (Llama `attention_bias`). */
  outputBias: boolean;
  /** gate/up/down carry a bias (Llama `mlp_bias`). */
  mlpBias: boolean;
  /** Mistral/Qwen2 sliding-window attention span in tokens, or null for full attention. */
  slidingWindow: number | null;
  /** First `bos_token_id` of config.json, or null. */
  bosTokenId: number | null;
  /** Every id that ends generation (config.json and generation_config.json merged). */
  eosTokenIds: number[];
  /** First `pad_token_id` of config.json, or null. */
  padTokenId: number | null;
}

/** What a forward call returns for the logits of its requested positions. */
export type LogitsMode =
  /** No logits (e.g. prefill of a prompt whose last logits are not needed). */
  | { kind: "none" }
  /** Full vocabulary rows, float32. */
  | { kind: "full" }
  /** Per position the k largest logits (descending; ties to the lower id), so vocab rows stay on device. */
  | { kind: "topk"; k: number };

/** New tokens for one batch row in one forward call. */
export interface RowInput {
  /** [n] token ids. A row with n = 0 does not take part in the call. */
  tokens: Int32Array;
  /** [n] RoPE positions (committed length + depth for tree tokens). */
  positions: Int32Array;
  /**
   * [n] tree structure: parents[i] is the index of token i's parent among this call's new tokens, or -1 if
   * its parent is the row's last committed token. Must satisfy parents[i] < i. Token i attends to the row's
   * committed cache, its ancestors among the new tokens, and itself. Omitted: a causal chain
   * (parents[i] = i - 1).
   */
  parents?: Int32Array;
  /** Indices (among the n new tokens) whose logits are wanted; omitted = all n. */
  logitIndices?: Int32Array;
}

/** One forward call over a session: new tokens for each row, and which logits to return. */
export interface ForwardRequest {
  /** One entry per batch row of the session (length B). */
  rows: RowInput[];
  /** Logits wanted for every row's requested positions (RowInput.logitIndices). */
  logits: LogitsMode;
}

/** What a forward call computed, per batch row. */
export interface ForwardOutput {
  /** Per row, [n * H]: final-norm hidden states of every new token (the drafter's context vectors). */
  hidden: Float32Array[];
  /** Per row, [m * V] for the m requested positions, when logits.kind is "full". */
  logits?: Float32Array[];
  /** Per row, [m * k] ids and values, descending, when logits.kind is "topk". */
  topIds?: Int32Array[];
  /** Per row, [m * k] logits matching topIds, when logits.kind is "topk". */
  topValues?: Float32Array[];
}

/**
 * A KV-cache session of B rows over one target model. Rows carry their own committed lengths; there is no
 * padding realignment. A forward call writes its new tokens as *pending* slots after each row's committed
 * length; `commit` then keeps a chosen subset of them, in order, and drops the rest. A forward call while
 * tokens are pending is an error.
 */
export interface TargetSession {
  /** B: rows in this session, fixed at creation. */
  readonly batch: number;
  /** Maximum committed + pending tokens per row. */
  readonly capacity: number;
  /** Committed length of each row. */
  lengths(): number[];
  /** Run the new tokens of every row through the model; they become pending until `commit`. */
  forward(req: ForwardRequest): Promise<ForwardOutput>;
  /**
   * Per row: indices (ascending) of the pending tokens to keep, or null to keep all of them. Kept tokens
   * must form a path in the tree (each one's parent kept before it, or -1), so their cached keys stay valid.
   */
  commit(keep: (Int32Array | null)[]): void;
  /** Roll a row back to a shorter committed length (chat history edits, errors). */
  truncate(row: number, length: number): void;
  /** Free the KV cache; the session is unusable afterwards. */
  dispose(): void;
}

/** A loaded target model on some backend. */
export interface TargetModel {
  /** The normalized config.json the weights were loaded with. */
  readonly config: ModelConfig;
  /** Backend name, e.g. "cpu", "onnx-wasm". */
  readonly backend: string;
  /** A fresh, empty KV cache of `batch` rows, each holding at most `capacity` tokens. */
  createSession(batch: number, capacity: number): TargetSession;
  /** [V * H] input embedding table in float32, row-major (the drafter borrows it). */
  embeddingTable(): Float32Array;
  /** Release the weights and backend resources; open sessions must not be used afterwards. */
  dispose(): void;
}

/** The recurrent drafter's configuration (Apple's config.json, normalized). */
export interface DrafterConfig {
  /** H: must equal the target's hiddenSize (the drafter reads its hidden states and embeddings). */
  hiddenSize: number;
  /** V: must equal the target's vocabSize. */
  vocabSize: number;
  /** E: width of the drafter's LM-head input ([h; s] is 2H, projected to E when they differ). Default 2H. */
  exitDim: number;
  /** ResBlocks (E -> E, SiLU, residual) before the final [V, E] projection; may be 0. */
  numDraftLayers: number;
  /** true: state s = SiLU(W e + U s + b); false: s = e + s (running sum, no weights). */
  rnn: boolean;
}

/** Per-beam top-k of one drafter step: [rows * beams * k], descending log-probs. */
export interface DraftTopK {
  /** [rows * beams * k] token ids, best first within each beam. */
  ids: Int32Array;
  /** [rows * beams * k] log-probabilities of `ids`. */
  logProbs: Float32Array;
}

/**
 * One round of drafting for B rows x W beams. The drafter holds the recurrent state of every beam and the
 * log-probability rows (Q, after the top-50 warp and log-softmax) of each step, so core's beam search asks
 * only for top-k lists and, in sampling mode, single rows.
 */
export interface DraftRound {
  /**
   * Advance every beam one step. tokens[b*W + w] is the last token of beam w of row b; parents[b*W + w] is
   * the beam (within row b) whose recurrent state it continues. Returns the per-beam top-k of the step's
   * log-probabilities.
   */
  step(tokens: Int32Array, parents: Int32Array, k: number): Promise<DraftTopK>;
  /** [V] log-probability row of beam w of row b at step `step` (0-based), as computed then. */
  logProbRow(step: number, row: number, beam: number): Float32Array;
}

/** A drafter ready to run next to a target. */
export interface DraftModel {
  /** The drafter's normalized config.json. */
  readonly config: DrafterConfig;
  /** Tokens it drafts from when its head is cut to a draft vocabulary (drafter/vocab.ts); absent: all V. */
  readonly draftVocab?: number;
  /** Start a round: ctx is [B * H] (the target's final-norm hidden at each row's last committed token). */
  beginRound(ctx: Float32Array, batch: number, width: number): DraftRound;
  /** Release the weights and backend resources. */
  dispose(): void;
}
