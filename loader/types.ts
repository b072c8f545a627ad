/**
 * What loading a checkpoint directory yields. The implementation lives beside this file
 * (safetensors.ts, config.ts, checkpoint.ts); backends and the drafter consume only these types.
 *
 * @module
 */
import type { ModelConfig } from "../core/types.ts";

/** Storage dtypes we read; anything else is refused with the tensor's name and dtype. */
export type DType = "F32" | "F16" | "BF16";

/** A tensor's header entry: where it is and what it holds, without its data. */
export interface TensorInfo {
  /** Full tensor name, e.g. "model.layers.0.self_attn.q_proj.weight". */
  name: string;
  /** Storage dtype in the file (readF32 converts). */
  dtype: DType;
  /** Dimensions, outermost first, as stored (PyTorch Linear weights are [out, in]). */
  shape: number[];
  /** File holding the tensor (a shard for sharded checkpoints). */
  file: string;
}

/**
 * Tensors of one or more safetensors files, read on demand so that loading never holds two full copies
 * of the weights.
 */
export interface TensorStore {
  /** Every tensor name across all files. */
  names(): string[];
  /** Whether a tensor of that name exists (for optional weights such as biases). */
  has(name: string): boolean;
  /** Throws an error naming the tensor (and the file) when absent. */
  info(name: string): TensorInfo;
  /**
   * The tensor converted to float32 (a fresh array the caller owns, or `into`, filled in place, when given:
   * e.g. a view of WebAssembly memory, so the weights are never held twice). Checks the expected shape if
   * given, and that `into` has exactly the tensor's element count.
   */
  readF32(name: string, expectShape?: number[], into?: Float32Array): Float32Array;
  /**
   * The raw little-endian bytes as stored (a fresh array, or `into`, filled in place, when given: e.g. a view
   * of WebAssembly memory, so a tensor kept in its stored dtype is read with one copy and no garbage).
   * `into` must have exactly the tensor's byte length.
   */
  readRaw(name: string, into?: Uint8Array): Uint8Array;
  /** Close the underlying files; the store is unusable afterwards. */
  close(): void;
}

/** generation_config.json, the parts we use. */
export interface GenerationConfig {
  /** `eos_token_id` as a list (empty when absent). */
  eosTokenIds: number[];
  /** First `bos_token_id`, or null. */
  bosTokenId: number | null;
  /** First `pad_token_id`, or null. */
  padTokenId: number | null;
  /** `temperature`, when present. */
  temperature?: number;
  /** `top_k`, when present. */
  topK?: number;
  /** `top_p`, when present. */
  topP?: number;
  /** `do_sample`, when present (false means the model's authors intend greedy decoding). */
  doSample?: boolean;
}

/** A Hugging Face checkpoint directory, opened: configs parsed, tensors readable on demand. */
export interface Checkpoint {
  /** The directory it was loaded from. */
  dir: string;
  /** Normalized config.json (EOS ids merged with generation_config.json's). */
  config: ModelConfig;
  /** The raw parsed config.json, for fields we do not normalize. */
  rawConfig: Record<string, unknown>;
  /** generation_config.json, or null when the directory has none. */
  generation: GenerationConfig | null;
  /** The weights (model.safetensors, or the shards of model.safetensors.index.json). */
  tensors: TensorStore;
}
