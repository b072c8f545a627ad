/**
 * The pure-TypeScript CPU reference backend: a float32 Llama / Mistral / Qwen2 forward pass with tree
 * attention over a per-row KV cache. It is the correctness oracle the other backends are held to, so it
 * follows transformers' arithmetic (RMSNorm, rotate_half RoPE with llama3/linear scaling, GQA, SwiGLU,
 * sliding window); its speed comes from kernels/ (WASM SIMD, memory layouts chosen for streaming), never
 * from changing a result with the number of tokens in a call.
 *
 * @module
 */
import type { TargetModel, TargetSession } from "../../core/types.ts";
import type { Checkpoint } from "../../loader/types.ts";
import { ropeInvFreq } from "../rope.ts";
import { CpuSession, type ForwardProfile } from "./session.ts";
import { loadWeights, plainMatrix, type Weights } from "./weights.ts";
import { defaultThreads, type KernelChoice } from "../../kernels/mod.ts";

/** Options for createCpuModel(); all optional. */
export interface CpuModelOptions {
  /** Tokens per tile of the JS fallback matmul (default 8; the WASM kernel blocks on its own). */
  tokenBlock?: number;
  /**
   * Matmul kernels: "auto" (default) uses WebAssembly SIMD when available, else scalar JS; "wasm" requires
   * it; "js" forces the scalar fallback. Both give bit-identical results.
   */
  kernels?: KernelChoice;
  /**
   * Threads each matmul is split over (WASM kernels; bitwise the same results for any count). Default
   * defaultThreads(): the machine's cores, at most 8.
   */
  threads?: number;
  /**
   * bf16 matrices kept as bf16 in memory (half the bytes, and faster at one token), or widened to float32:
   * "auto" (default) keeps them with the WASM kernels (see backends/cpu/weights.ts KeepBf16). The results
   * are bitwise the same either way.
   */
  keepBf16?: "auto" | boolean;
  /**
   * Top-k logits (greedy decoding and verification) screened by an int8 copy of the LM head, with only the
   * tokens that could be in the top-k recomputed in float32 (backends/cpu/head_screen.ts): bitwise the
   * full head's result, at a fraction of its cost. Default true; false computes the full head (and saves
   * the int8 copy's V x H bytes).
   */
  screenHead?: boolean;
  /**
   * Where every session's forward passes add the milliseconds of their stages (qkv, attention, head, ...;
   * see ForwardProfile), for tools/profile_forward.ts. Default none: no timing in the forward pass.
   */
  profile?: ForwardProfile;
}

/** Load the checkpoint's weights as float32 (tensor by tensor) and return a TargetModel. */
export function createCpuModel(ckpt: Checkpoint, opts: CpuModelOptions = {}): TargetModel {
  const config = ckpt.config;
  const loaded = loadWeights(
    ckpt,
    opts.kernels ?? "auto",
    opts.tokenBlock ?? 8,
    opts.threads ?? defaultThreads(),
    opts.keepBf16 ?? "auto",
    opts.screenHead ?? true,
  );
  let weights: Weights | null = loaded.weights;
  const kernels = loaded.kernels;
  let embedding: Float32Array | undefined;
  const invFreq = ropeInvFreq(config);
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
      return new CpuSession({
        config,
        weights: live(),
        kernels,
        invFreq,
        batch,
        capacity,
        profile: opts.profile,
      });
    },
    // A plain float32 copy when the table is bf16 or the packed, tied lm_head (made once, for a drafter).
    embeddingTable: () =>
      embedding ??= plainMatrix(kernels, live().embed, config.vocabSize, config.hiddenSize),
    dispose() {
      weights = null;
      embedding = undefined;
      kernels.dispose();
    },
  };
}
