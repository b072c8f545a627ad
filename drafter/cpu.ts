/**
 * The recurrent drafter on the CPU, exactly as Apple's reference computes it (modeling_drafter.py):
 *
 *   s'     = SiLU(rnn_w·e + rnn_u·s + b_u)      (rnn)   or   s' = e + s   (no rnn); s = 0 at round start
 *   x      = [h ; s']                            context first, 2H wide
 *   x      = input_proj·x + b                    only when exit_dim != 2H
 *   x      = x + SiLU(A_i·x + b_i)               num_draft_layers ResBlocks
 *   logits = lm_head·x                           [V], no bias
 *   q      = log_softmax(top50(logits - max))    values strictly below the 50th largest -> -50000
 *
 * Every matmul runs over all B*W beams of a step at once, four beams per pass over a weight row, so the
 * weights (the head dominates: V x E) stream from memory once per step rather than once per beam.
 *
 * @module
 */
import type { DrafterConfig, DraftModel, DraftRound, DraftTopK } from "../core/types.ts";
import { LOG_0 } from "../core/sampling.ts";

/** The reference's top-k warp width for drafter logits. */
export const WARP_TOP_K = 50;

/** Drafter weights in float32, PyTorch Linear layout ([out, in], y = x·Wᵀ + b). */
export interface DrafterWeights {
  config: DrafterConfig;
  /** [E * 2H] and [E], only when exitDim != 2 * hiddenSize. */
  inputProjWeight: Float32Array | null;
  inputProjBias: Float32Array | null;
  /** Per ResBlock: [E * E] and [E]. */
  resWeights: Float32Array[];
  resBiases: Float32Array[];
  /** [V * E]. */
  headWeight: Float32Array;
  /** rnn only: rnn_u [H * H] with bias [H]; rnn_w [H * H] without bias. */
  rnnU: Float32Array | null;
  rnnUBias: Float32Array | null;
  rnnW: Float32Array | null;
}

/**
 * y[n*out + o] = bias[o] + sum_i x[n*inDim + i] * w[o*inDim + i] for n < rows. Four beams share each pass
 * over a weight row (weights read once per four beams, x rows stay in cache for small inDim).
 */
export function matmulRows(
  x: Float32Array,
  rows: number,
  inDim: number,
  w: Float32Array,
  bias: Float32Array | null,
  outDim: number,
  y: Float32Array,
): void {
  for (let o = 0; o < outDim; o++) {
    const wo = o * inDim;
    const b = bias ? bias[o] : 0;
    let n = 0;
    for (; n + 4 <= rows; n += 4) {
      const x0 = n * inDim, x1 = x0 + inDim, x2 = x1 + inDim, x3 = x2 + inDim;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let i = 0; i < inDim; i++) {
        const wv = w[wo + i];
        s0 += x[x0 + i] * wv;
        s1 += x[x1 + i] * wv;
        s2 += x[x2 + i] * wv;
        s3 += x[x3 + i] * wv;
      }
      y[n * outDim + o] = s0 + b;
      y[(n + 1) * outDim + o] = s1 + b;
      y[(n + 2) * outDim + o] = s2 + b;
      y[(n + 3) * outDim + o] = s3 + b;
    }
    for (; n < rows; n++) {
      const xn = n * inDim;
      let s = 0;
      for (let i = 0; i < inDim; i++) s += x[xn + i] * w[wo + i];
      y[n * outDim + o] = s + b;
    }
  }
}

function silu(v: number): number {
  return v / (1 + Math.exp(-v));
}

/**
 * In place over one row of logits: subtract the row max, replace every value strictly below the k-th
 * largest (counting repeats, like torch.topk) by LOG_0, then log_softmax. `top` is scratch of length >= k.
 */
export function warpLogSoftmax(row: Float32Array, k: number, top: Float32Array): void {
  const n = row.length;
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (row[i] > max) max = row[i];
  for (let i = 0; i < n; i++) row[i] = row[i] - max; // float32 rounding, as the reference does it
  const kk = Math.min(k, n);
  // The kk largest values, descending, by insertion (a value enters only if above the current last).
  let filled = 0;
  for (let i = 0; i < n; i++) {
    const v = row[i];
    if (filled === kk) {
      if (!(v > top[kk - 1])) continue;
      filled--;
    }
    let j = filled++;
    while (j > 0 && top[j - 1] < v) {
      top[j] = top[j - 1];
      j--;
    }
    top[j] = v;
  }
  const threshold = top[kk - 1];
  let sum = 0;
  for (let i = 0; i < n; i++) {
    if (row[i] < threshold) row[i] = LOG_0;
    sum += Math.exp(row[i]);
  }
  const lse = Math.log(sum);
  for (let i = 0; i < n; i++) row[i] = row[i] - lse;
}

/**
 * Top-k of one row into ids/vals at `at`: descending, ties to the lower id (a later, equal value never
 * displaces an earlier one).
 */
export function topKRow(
  row: Float32Array,
  k: number,
  ids: Int32Array,
  vals: Float32Array,
  at: number,
): void {
  let filled = 0;
  for (let i = 0; i < row.length; i++) {
    const v = row[i];
    if (filled === k) {
      if (!(v > vals[at + k - 1])) continue;
      filled--;
    }
    let j = filled++;
    while (j > 0 && vals[at + j - 1] < v) {
      vals[at + j] = vals[at + j - 1];
      ids[at + j] = ids[at + j - 1];
      j--;
    }
    vals[at + j] = v;
    ids[at + j] = i;
  }
}

/**
 * A CPU DraftModel over float32 weights and the target's [V * H] input embedding table (borrowed, not
 * copied).
 */
export function cpuDrafter(weights: DrafterWeights, embedding: Float32Array): DraftModel {
  const cfg = weights.config;
  const H = cfg.hiddenSize, V = cfg.vocabSize, E = cfg.exitDim;
  if (embedding.length !== V * H) {
    throw new Error(`drafter: embedding table has ${embedding.length} values, expected V*H = ${V}*${H}`);
  }
  let disposed = false;

  function beginRound(ctx: Float32Array, batch: number, width: number): DraftRound {
    if (disposed) throw new Error("drafter: used after dispose()");
    if (!Number.isInteger(batch) || batch < 1 || !Number.isInteger(width) || width < 1) {
      throw new Error(
        `drafter.beginRound: batch and width must be positive integers, got ${batch}, ${width}`,
      );
    }
    if (ctx.length !== batch * H) {
      throw new Error(`drafter.beginRound: ctx has ${ctx.length} values, expected B*H = ${batch}*${H}`);
    }
    const N = batch * width;
    const context = ctx.slice(); // the caller may reuse its buffer
    const state = new Float32Array(N * H); // zero initial state
    const next = new Float32Array(N * H);
    const emb = new Float32Array(N * H);
    const tmp = new Float32Array(N * H);
    const input = new Float32Array(N * 2 * H);
    const x = new Float32Array(N * E);
    const a = new Float32Array(N * E);
    const top = new Float32Array(WARP_TOP_K);
    const rows: Float32Array[] = []; // per step: [N * V] log-prob rows

    async function step(tokens: Int32Array, parents: Int32Array, k: number): Promise<DraftTopK> {
      if (disposed) throw new Error("drafter: used after dispose()");
      await Promise.resolve(); // keep the async contract honest without a real await point
      if (tokens.length !== N) {
        throw new Error(`drafter.step: tokens has ${tokens.length} entries, expected B*W = ${N}`);
      }
      if (parents.length !== N) {
        throw new Error(`drafter.step: parents has ${parents.length} entries, expected B*W = ${N}`);
      }
      if (!Number.isInteger(k) || k < 1 || k > V) {
        throw new Error(`drafter.step: k must be in 1..${V}, got ${k}`);
      }
      for (let n = 0; n < N; n++) {
        const t = tokens[n], p = parents[n];
        if (t < 0 || t >= V) {
          throw new Error(`drafter.step: tokens[${n}] = ${t} is outside the vocabulary 0..${V - 1}`);
        }
        if (p < 0 || p >= width) {
          throw new Error(`drafter.step: parents[${n}] = ${p} is outside 0..${width - 1}`);
        }
        emb.set(embedding.subarray(t * H, (t + 1) * H), n * H);
        const from = (Math.floor(n / width) * width + p) * H;
        next.set(state.subarray(from, from + H), n * H); // the parent's state
      }
      // Recurrent update, written into `state` (old states were gathered into `next` above).
      if (cfg.rnn) {
        matmulRows(next, N, H, weights.rnnU!, weights.rnnUBias!, H, state);
        matmulRows(emb, N, H, weights.rnnW!, null, H, tmp);
        // Reference order: silu(rnn_w(e) + rnn_u(s)), rnn_u carrying the bias.
        for (let i = 0; i < N * H; i++) state[i] = silu(tmp[i] + state[i]);
      } else {
        for (let i = 0; i < N * H; i++) state[i] = emb[i] + next[i];
      }
      // `state` now holds this step's states; `next` is scratch until the next gather.
      for (let n = 0; n < N; n++) {
        const b = Math.floor(n / width);
        input.set(context.subarray(b * H, (b + 1) * H), n * 2 * H);
        input.set(state.subarray(n * H, (n + 1) * H), n * 2 * H + H);
      }
      if (weights.inputProjWeight) {
        matmulRows(input, N, 2 * H, weights.inputProjWeight, weights.inputProjBias, E, x);
      } else x.set(input);
      for (let l = 0; l < weights.resWeights.length; l++) {
        matmulRows(x, N, E, weights.resWeights[l], weights.resBiases[l], E, a);
        for (let i = 0; i < N * E; i++) x[i] = x[i] + silu(a[i]);
      }
      const lp = new Float32Array(N * V);
      matmulRows(x, N, E, weights.headWeight, null, V, lp);
      const ids = new Int32Array(N * k);
      const logProbs = new Float32Array(N * k);
      for (let n = 0; n < N; n++) {
        const row = lp.subarray(n * V, (n + 1) * V);
        warpLogSoftmax(row, WARP_TOP_K, top);
        topKRow(row, k, ids, logProbs, n * k);
      }
      rows.push(lp);
      return { ids, logProbs };
    }

    function logProbRow(stepIndex: number, row: number, beam: number): Float32Array {
      if (!Number.isInteger(stepIndex) || stepIndex < 0 || stepIndex >= rows.length) {
        throw new Error(`drafter.logProbRow: step ${stepIndex} not computed (${rows.length} steps so far)`);
      }
      if (row < 0 || row >= batch || beam < 0 || beam >= width) {
        throw new Error(`drafter.logProbRow: row ${row} / beam ${beam} outside ${batch} x ${width}`);
      }
      const n = row * width + beam;
      return rows[stepIndex].subarray(n * V, (n + 1) * V);
    }

    return { step, logProbRow };
  }

  return {
    config: cfg,
    beginRound,
    dispose() {
      disposed = true;
    },
  };
}
