/**
 * What loading a checkpoint directory yields. The implementation lives beside this file
 * (safetensors.ts, config.ts, checkpoint.ts); backends and the drafter consume only these types.
 *
 * @module
 */
import type { ModelConfig } from "../core/types.ts";

/** Storage dtypes we read; anything else is refused with the tensor's name and dtype. */
export type DType = "F32" | "F16" | "BF16";

export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
  /** File holding the tensor (a shard for sharded checkpoints). */
  file: string;
}

/**
 * Tensors of one or more safetensors files, read on demand so that loading never holds two full copies
 * of the weights.
 */
export interface TensorStore {
  names(): string[];
  has(name: string): boolean;
  /** Throws an error naming the tensor (and the file) when absent. */
  info(name: string): TensorInfo;
  /**
   * The tensor converted to float32 (a fresh array the caller owns, or `into`, filled in place, when given:
   * e.g. a view of WebAssembly memory, so the weights are never held twice). Checks the expected shape if
   * given, and that `into` has exactly the tensor's element count.
   */
  readF32(name: string, expectShape?: number[], into?: Float32Array): Float32Array;
  /** The raw little-endian bytes as stored. */
  readRaw(name: string): Uint8Array;
  close(): void;
}

/** generation_config.json, the parts we use. */
export interface GenerationConfig {
  eosTokenIds: number[];
  bosTokenId: number | null;
  padTokenId: number | null;
  temperature?: number;
  topK?: number;
  topP?: number;
  doSample?: boolean;
}

export interface Checkpoint {
  dir: string;
  config: ModelConfig;
  /** The raw parsed config.json, for fields we do not normalize. */
  rawConfig: Record<string, unknown>;
  generation: GenerationConfig | null;
  tensors: TensorStore;
}
