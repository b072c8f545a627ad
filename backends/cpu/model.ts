/**
 * The pure-TypeScript CPU reference backend: a float32 Llama / Mistral / Qwen2 forward pass with tree
 * attention over a per-row KV cache. It is the correctness oracle the other backends are held to, so it
 * follows transformers' arithmetic (RMSNorm, rotate_half RoPE with llama3/linear scaling, GQA, SwiGLU,
 * sliding window) rather than chasing speed.
 *
 * @module
 */
import type { TargetModel, TargetSession } from "../../core/types.ts";
import type { Checkpoint } from "../../loader/types.ts";
import { ropeInvFreq } from "./kernels.ts";
import { CpuSession } from "./session.ts";
import { loadWeights, type Weights } from "./weights.ts";

export interface CpuModelOptions {
  /** Tokens per tile of the blocked matmul (default 8). */
  tokenBlock?: number;
}

/** Load the checkpoint's weights as float32 (tensor by tensor) and return a TargetModel. */
export function createCpuModel(ckpt: Checkpoint, opts: CpuModelOptions = {}): TargetModel {
  const config = ckpt.config;
  let weights: Weights | null = loadWeights(ckpt);
  const invFreq = ropeInvFreq(config);
  const tokenBlock = opts.tokenBlock ?? 8;
  const live = (): Weights => {
    if (!weights) throw new Error("cpu: model used after dispose()");
    return weights;
  };
  return {
    config,
    backend: "cpu",
    createSession(
      batch: number,
      capacity: number,
    ): TargetSession & { forwardSync: CpuSession["forwardSync"] } {
      return new CpuSession({ config, weights: live(), invFreq, batch, capacity, tokenBlock });
    },
    embeddingTable: () => live().embed,
    dispose() {
      weights = null;
    },
  };
}
