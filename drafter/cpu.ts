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
 * Every matmul runs over all B*W beams of a step at once on the WASM SIMD kernels (kernels/), so the
 * weights (the head dominates: V x E) stream from memory once per step rather than once per beam; beams
 * that share a token and a parent state are computed once. Weight matrices stored as BF16 stay bf16 in kernel
 * memory (half the bytes to stream; widened exactly to float32 inside the kernel, so the results are bitwise
 * those of the float32 weights). The top-50 warp, log-softmax and per-beam
 * top-k touch only the ~50 warp survivors of each row; full log-prob rows (sampling mode) are built on
 * demand from the raw logits.
 *
 * @module
 */
import type { DrafterConfig, DraftModel, DraftRound, DraftTopK } from "../core/types.ts";
import { LOG_0 } from "../core/sampling.ts";
import {
  createKernels,
  defaultThreads,
  type KernelChoice,
  padBf16,
  padFloats,
  padQ7,
  padQ8,
  type Q7Weight,
  type Q8Weight,
  quantizeQ7Into,
  quantizeQ8Into,
  wasmRelaxedSimdSupported,
  wasmSimdSupported,
} from "../kernels/mod.ts";
import { pushTopK, topK } from "../kernels/topk.ts";
import { expandLogProbRow } from "./vocab.ts";

/** The reference's top-k warp width for drafter logits. */
export const WARP_TOP_K = 50;

/** Drafter weights in float32, PyTorch Linear layout ([out, in], y = x·Wᵀ + b). */
export interface DrafterWeights {
  /** Sizes the arrays below follow (H = hiddenSize, V = vocabSize, E = exitDim). */
  config: DrafterConfig;
  /** input_proj.weight [E * 2H]; null when exitDim == 2 * hiddenSize (no projection). */
  inputProjWeight: Float32Array | null;
  /** input_proj.bias [E]; null exactly when inputProjWeight is. */
  inputProjBias: Float32Array | null;
  /** Per ResBlock i < numDraftLayers: lm_head.i.linear.weight [E * E]. */
  resWeights: Float32Array[];
  /** Per ResBlock i < numDraftLayers: lm_head.i.linear.bias [E]. */
  resBiases: Float32Array[];
  /** Final vocabulary head [V * E], no bias; [Vd * E] when draftVocab is set. */
  headWeight: Float32Array;
  /**
   * The token ids (ascending) of the head's rows when it is restricted to a draft vocabulary of Vd tokens
   * (drafter/vocab.ts restrictDraftVocab); absent: all V, in order.
   */
  draftVocab?: Int32Array;
  /** rnn_u.weight [H * H] (applied to the previous state); null when config.rnn is false. */
  rnnU: Float32Array | null;
  /** rnn_u.bias [H]; null when config.rnn is false. */
  rnnUBias: Float32Array | null;
  /** rnn_w.weight [H * H] (applied to the token embedding), no bias; null when config.rnn is false. */
  rnnW: Float32Array | null;
  /**
   * The weight matrices above (by identity) that were stored as BF16, so every value is exactly a bf16:
   * cpuDrafter keeps those as bf16 in kernel memory. Absent: all are kept as float32.
   */
  bf16?: ReadonlySet<Float32Array>;
}

/** A weight matrix in kernel memory: float32, bf16 bits (widened exactly by the kernel), or int8. */
type KernelWeight = Float32Array | Uint16Array | Q8Weight | Q7Weight;

/**
 * How the CPU drafter holds its weight matrices: "fp32" as loaded (float32, or bf16 where the checkpoint
 * stores bf16; computed exactly in float32); "q8": int8 per output row with int16 activations
 * (kernels/q8.ts), half of bf16's bytes and about half the work; or "q7": the same int8 codes against 7-bit
 * activations (kernels/q7.ts), whose relaxed-SIMD dot products do twice q8's multiply-adds per instruction
 * (its matmuls 2-3x faster on the default drafter; q8 where the runtime lacks relaxed SIMD). Drafts are
 * verified by the target, so either can change acceptance, never the generated tokens.
 */
export type CpuDrafterWeights = "fp32" | "q8" | "q7";

/** Whether every value of `a` is exactly a bf16 (the low 16 bits of its float32 are zero). */
function isBf16Exact(a: Float32Array): boolean {
  const u = new Uint32Array(a.buffer, a.byteOffset, a.length);
  for (let i = 0; i < u.length; i++) if (u[i] & 0xffff) return false;
  return true;
}

function silu(v: number): number {
  return v / (1 + Math.exp(-v));
}

/**
 * The k largest of row[off .. off + n), descending, into top[0 .. k) (repeats counted, like torch.topk), by
 * insertion: a value enters only if above the current last.
 */
function largestValues(row: Float32Array, off: number, n: number, k: number, top: Float32Array): void {
  let filled = 0;
  for (let i = 0; i < n; i++) {
    const v = row[off + i];
    if (filled === k) {
      if (!(v > top[k - 1])) continue;
      filled--;
    }
    let j = filled++;
    while (j > 0 && top[j - 1] < v) {
      top[j] = top[j - 1];
      j--;
    }
    top[j] = v;
  }
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
  largestValues(row, 0, n, kk, top);
  const threshold = top[kk - 1];
  let sum = 0;
  for (let i = 0; i < n; i++) {
    if (row[i] < threshold) row[i] = LOG_0;
    sum += Math.exp(row[i]);
  }
  const lse = Math.log(sum);
  for (let i = 0; i < n; i++) row[i] = row[i] - lse;
}

/** Validate DraftModel.beginRound's arguments (shared by every drafter implementation). */
export function checkRoundArgs(ctx: Float32Array, batch: number, width: number, H: number): void {
  if (!Number.isInteger(batch) || batch < 1 || !Number.isInteger(width) || width < 1) {
    throw new Error(`drafter.beginRound: batch and width must be positive integers, got ${batch}, ${width}`);
  }
  if (ctx.length !== batch * H) {
    throw new Error(`drafter.beginRound: ctx has ${ctx.length} values, expected B*H = ${batch}*${H}`);
  }
}

/** Validate DraftRound.step's arguments for N = B*W beams over a V-token vocabulary. */
export function checkStepArgs(
  tokens: Int32Array,
  parents: Int32Array,
  k: number,
  N: number,
  V: number,
  /** Whether V is a draft vocabulary (drafter/vocab.ts), for the message. */
  draftVocab = false,
): void {
  if (tokens.length !== N) {
    throw new Error(`drafter.step: tokens has ${tokens.length} entries, expected B*W = ${N}`);
  }
  if (parents.length !== N) {
    throw new Error(`drafter.step: parents has ${parents.length} entries, expected B*W = ${N}`);
  }
  if (!Number.isInteger(k) || k < 1 || k > V) {
    const why = draftVocab ? ` (the draft vocabulary holds ${V} tokens)` : "";
    throw new Error(`drafter.step: k must be in 1..${V}${why}, got ${k}`);
  }
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
  topK(row, 0, row.length, k, ids, vals, at);
}

/** Scratch for warpTopK: sized for a vocabulary of V and a warp of k. */
export interface WarpScratch {
  top: Float32Array; // [k] the k largest raw logits, descending
  ids: Int32Array; // [V] warp survivors in ascending id
  vals: Float32Array; // [V] their log-probs
}

export function warpScratch(V: number, k = WARP_TOP_K): WarpScratch {
  return { top: new Float32Array(k), ids: new Int32Array(V), vals: new Float32Array(V) };
}

/**
 * The top-k of warpLogSoftmax(row) (ties to the lower id) into ids/vals at `at`, bit for bit as
 * warpLogSoftmax then topKRow would give them, without writing the row: only the warp survivors (about 50
 * of V) get a log-prob. Two passes over V: a selection of the `warpK` largest raw logits (the first is the
 * max; subtracting the max is monotone in float32, so the warp threshold is the shifted warpK-th largest),
 * then the survivors in id order with the float64 sum of their exp (the warped entries add exp(-50000) = 0
 * to the reference's sum, which changes nothing).
 */
export function warpTopK(
  row: Float32Array,
  off: number,
  V: number,
  warpK: number,
  k: number,
  ids: Int32Array,
  vals: Float32Array,
  at: number,
  s: WarpScratch,
): void {
  const kk = Math.min(warpK, V);
  const top = s.top;
  largestValues(row, off, V, kk, top);
  const max = top[0];
  const threshold = Math.fround(top[kk - 1] - max);
  let n = 0, sum = 0;
  for (let i = 0; i < V; i++) {
    const v = Math.fround(row[off + i] - max);
    if (v >= threshold) {
      s.ids[n] = i;
      s.vals[n++] = v;
      sum += Math.exp(v);
    }
  }
  const lse = Math.log(sum);
  for (let j = 0; j < n; j++) s.vals[j] = s.vals[j] - lse; // float32 store, as the reference's row
  // Top-k among the survivors (in ascending id, so a later equal value never displaces an earlier one).
  const kin = Math.min(k, n);
  let f = 0;
  for (let j = 0; j < n; j++) f = pushTopK(s.vals[j], s.ids[j], kin, f, ids, vals, at);
  if (k > n) {
    // Past the survivors every value is LOG_0 - lse: the lowest ids not among the survivors, ascending.
    const dead = Math.fround(LOG_0 - lse);
    let p = kin, j = 0;
    for (let i = 0; p < k && i < V; i++) {
      if (j < n && s.ids[j] === i) {
        j++;
        continue;
      }
      ids[at + p] = i;
      vals[at + p++] = dead;
    }
  }
}

/** Options for cpuDrafter(). */
export interface CpuDrafterOptions {
  /** Matmul kernels (default "auto": WASM SIMD when available). Both give the same results. */
  kernels?: KernelChoice;
  /** Threads each matmul is split over (default defaultThreads(); same results for any count). */
  threads?: number;
  /** Weight matrices as loaded ("fp32", default) or int8 ("q8"); see CpuDrafterWeights. */
  weights?: CpuDrafterWeights;
}

/**
 * A CPU DraftModel over float32 weights (copied once into the matmul kernels' memory; the matrices listed in
 * `weights.bf16` as bf16) and the target's
 * [V * H] input embedding table (borrowed, not copied).
 */
export function cpuDrafter(
  weights: DrafterWeights,
  embedding: Float32Array,
  opts: CpuDrafterOptions = {},
): DraftModel {
  const cfg = weights.config;
  const H = cfg.hiddenSize, V = cfg.vocabSize, E = cfg.exitDim;
  if (embedding.length !== V * H) {
    throw new Error(`drafter: embedding table has ${embedding.length} values, expected V*H = ${V}*${H}`);
  }
  // Head rows: all V tokens, or a draft vocabulary of Vd (row i drafts token vocab[i]).
  const vocab = weights.draftVocab ?? null;
  const Vd = vocab ? vocab.length : V;
  if (weights.headWeight.length !== Vd * E) {
    throw new Error(`drafter: head has ${weights.headWeight.length} values, expected ${Vd}*${E}`);
  }
  // Every weight array moves into kernel memory (the WASM kernels read only from there); matrices stored
  // as BF16 go as bf16 (checked exact, else float32), biases always as float32.
  const asked = opts.weights ?? "fp32";
  if (asked !== "fp32" && asked !== "q8" && asked !== "q7") {
    throw new Error(`drafter: weights must be "fp32", "q8" or "q7", got '${asked}'`);
  }
  // q7 needs WebAssembly relaxed SIMD (or the JS kernels' exact twin); without it the WASM kernels run q8,
  // which holds the same int8 codes: drafts differ a little, the generated text not at all.
  const noQ7 = opts.kernels !== "js" && wasmSimdSupported() && !wasmRelaxedSimdSupported();
  const format = asked === "q7" && noQ7 ? "q8" : asked;
  // [matrix, rows, cols]
  const matrices: [Float32Array | null, number, number][] = [
    [weights.inputProjWeight, E, 2 * H],
    ...weights.resWeights.map((a): [Float32Array, number, number] => [a, E, E]),
    [weights.headWeight, Vd, E],
    [weights.rnnU, H, H],
    [weights.rnnW, H, H],
  ];
  const biases = [weights.inputProjBias, ...weights.resBiases, weights.rnnUBias];
  const asBf16 = (a: Float32Array) => weights.bf16?.has(a) === true && isBf16Exact(a);
  let floats = 0;
  for (const [a, rows, cols] of matrices) {
    if (!a) continue;
    floats += format === "q8"
      ? padQ8(rows, cols)
      : format === "q7"
      ? padQ7(rows, cols)
      : asBf16(a)
      ? padBf16(a.length)
      : padFloats(a.length);
  }
  for (const a of biases) if (a) floats += padFloats(a.length);
  const kern = createKernels({
    weightFloats: floats,
    maxIn: Math.max(2 * H, E),
    maxOut: Math.max(H, E, Vd),
    kernels: opts.kernels,
    threads: opts.threads ?? defaultThreads(),
    label: "the drafter",
  });
  const place = (a: Float32Array | null): Float32Array | null => {
    if (!a) return null;
    const b = kern.alloc(a.length);
    b.set(a);
    return b;
  };
  const placeMatrix = (a: Float32Array | null, rows: number, cols: number): KernelWeight | null => {
    if (a && format === "q7") {
      const q = kern.allocQ7(rows, cols);
      quantizeQ7Into(a, q);
      return q;
    }
    if (a && format === "q8") {
      const q = kern.allocQ8(rows, cols);
      quantizeQ8Into(a, q);
      return q;
    }
    if (!a || !asBf16(a)) return place(a);
    const h = kern.allocBf16(a.length);
    const u = new Uint32Array(a.buffer, a.byteOffset, a.length);
    for (let i = 0; i < u.length; i++) h[i] = u[i] >>> 16;
    return h;
  };
  const w = {
    inputProjWeight: placeMatrix(weights.inputProjWeight, E, 2 * H),
    inputProjBias: place(weights.inputProjBias),
    resWeights: weights.resWeights.map((a) => placeMatrix(a, E, E)!),
    resBiases: weights.resBiases.map((a) => place(a)!),
    headWeight: placeMatrix(weights.headWeight, Vd, E)!,
    rnnU: placeMatrix(weights.rnnU, H, H),
    rnnUBias: place(weights.rnnUBias),
    rnnW: placeMatrix(weights.rnnW, H, H),
  };
  // out[n, o] = x[n, :] · W[o, :] (+ bias[o]) with W float32 or bf16 (bitwise the same either way), or
  // int8 (approximate).
  const matmul = (
    out: Float32Array,
    x: Float32Array,
    W: KernelWeight,
    bias: Float32Array | null,
    n: number,
    inDim: number,
    outDim: number,
  ) => {
    if (W instanceof Uint16Array) kern.matmulBf16(out, x, W, bias, n, inDim, outDim);
    else if (W instanceof Float32Array) kern.matmul(out, x, W, bias, n, inDim, outDim);
    else if ("meta" in W) kern.matmulQ7(out, x, W, n, inDim, outDim, undefined, bias);
    else kern.matmulQ8(out, x, W, bias, n, inDim, outDim);
  };
  const warp = warpScratch(Vd);
  let disposed = false;

  function beginRound(ctx: Float32Array, batch: number, width: number): DraftRound {
    if (disposed) throw new Error("drafter: used after dispose()");
    checkRoundArgs(ctx, batch, width, H);
    const N = batch * width;
    const context = ctx.slice(); // the caller may reuse its buffer
    // Beams are computed once per distinct (row, token, parent state): uniq[n] is the computed slot of
    // beam n, slots 0..U-1 in first-seen order. At the first step every state is zero, so all the beams
    // of a row with the same token (Apple's start: W copies of the init token) share one slot.
    const uniq = new Int32Array(N);
    const rep = new Int32Array(N); // [U] the beam each slot was computed for
    let state = new Float32Array(N * H); // per beam, zero initial state
    let next = new Float32Array(N * H); // per beam, after the step
    const emb = new Float32Array(N * H); // per slot
    const prev = new Float32Array(N * H); // per slot: the parent's state
    const slotState = new Float32Array(N * H); // per slot
    const tmp = new Float32Array(N * H);
    const input = new Float32Array(N * 2 * H);
    const x = new Float32Array(N * E);
    const a = new Float32Array(N * E);
    const logits: { raw: Float32Array; uniq: Int32Array }[] = []; // per step: [U * V] raw, beam -> slot
    const cache = new Map<number, Float32Array>(); // logProbRow results
    let steps = 0;

    async function step(tokens: Int32Array, parents: Int32Array, k: number): Promise<DraftTopK> {
      if (disposed) throw new Error("drafter: used after dispose()");
      await Promise.resolve(); // keep the async contract honest without a real await point
      checkStepArgs(tokens, parents, k, N, Vd, vocab !== null); // k can reach the draft vocabulary, no further
      let U = 0;
      for (let n = 0; n < N; n++) {
        const t = tokens[n], p = parents[n];
        if (t < 0 || t >= V) {
          throw new Error(`drafter.step: tokens[${n}] = ${t} is outside the vocabulary 0..${V - 1}`);
        }
        if (p < 0 || p >= width) {
          throw new Error(`drafter.step: parents[${n}] = ${p} is outside 0..${width - 1}`);
        }
        const b = Math.floor(n / width);
        let u = -1;
        for (let m = b * width; m < n; m++) {
          if (tokens[m] === t && (steps === 0 || parents[m] === p)) {
            u = uniq[m];
            break;
          }
        }
        if (u < 0) {
          u = U++;
          rep[u] = n;
          emb.set(embedding.subarray(t * H, (t + 1) * H), u * H);
          const from = (b * width + p) * H;
          prev.set(state.subarray(from, from + H), u * H); // the parent's state
        }
        uniq[n] = u;
      }
      // Recurrent update. Reference order: silu(rnn_w(e) + rnn_u(s)), rnn_u carrying the bias.
      if (cfg.rnn) {
        // A round starts from zero states, and rnn_u(0) is its bias: the first step skips that matmul.
        if (steps === 0) { for (let u = 0; u < U; u++) slotState.set(w.rnnUBias!, u * H); }
        else matmul(slotState, prev, w.rnnU!, w.rnnUBias!, U, H, H);
        matmul(tmp, emb, w.rnnW!, null, U, H, H);
        for (let i = 0; i < U * H; i++) slotState[i] = silu(tmp[i] + slotState[i]);
      } else {
        for (let i = 0; i < U * H; i++) slotState[i] = emb[i] + prev[i];
      }
      for (let n = 0; n < N; n++) {
        const u = uniq[n];
        next.set(slotState.subarray(u * H, (u + 1) * H), n * H);
      }
      const t = state;
      state = next;
      next = t;
      for (let u = 0; u < U; u++) {
        const b = Math.floor(rep[u] / width);
        input.set(context.subarray(b * H, (b + 1) * H), u * 2 * H);
        input.set(slotState.subarray(u * H, (u + 1) * H), u * 2 * H + H);
      }
      if (w.inputProjWeight) {
        matmul(x, input, w.inputProjWeight, w.inputProjBias, U, 2 * H, E);
      } else x.set(input.subarray(0, U * E));
      for (let l = 0; l < w.resWeights.length; l++) {
        matmul(a, x, w.resWeights[l], w.resBiases[l], U, E, E);
        for (let i = 0; i < U * E; i++) x[i] = x[i] + silu(a[i]);
      }
      const raw = new Float32Array(U * Vd);
      matmul(raw, x, w.headWeight, null, U, E, Vd);
      kern.park(); // the target's threads get the cores next
      const ids = new Int32Array(N * k);
      const logProbs = new Float32Array(N * k);
      for (let n = 0; n < N; n++) {
        const u = uniq[n];
        if (rep[u] === n) {
          warpTopK(raw, u * Vd, Vd, WARP_TOP_K, k, ids, logProbs, n * k, warp);
          // Ascending vocab keeps "ties to the lower id" when head rows become token ids.
          if (vocab) { for (let i = n * k; i < (n + 1) * k; i++) ids[i] = vocab[ids[i]]; }
        } else {
          const m = rep[u];
          ids.copyWithin(n * k, m * k, (m + 1) * k);
          logProbs.copyWithin(n * k, m * k, (m + 1) * k);
        }
      }
      logits.push({ raw, uniq: uniq.slice() });
      steps++;
      return { ids, logProbs };
    }

    function logProbRow(stepIndex: number, row: number, beam: number): Float32Array {
      if (!Number.isInteger(stepIndex) || stepIndex < 0 || stepIndex >= logits.length) {
        throw new Error(
          `drafter.logProbRow: step ${stepIndex} not computed (${logits.length} steps so far)`,
        );
      }
      if (row < 0 || row >= batch || beam < 0 || beam >= width) {
        throw new Error(`drafter.logProbRow: row ${row} / beam ${beam} outside ${batch} x ${width}`);
      }
      const s = logits[stepIndex];
      const u = s.uniq[row * width + beam];
      const key = stepIndex * N + u;
      let lp = cache.get(key);
      if (!lp) {
        lp = s.raw.slice(u * Vd, (u + 1) * Vd);
        warpLogSoftmax(lp, WARP_TOP_K, warp.top);
        if (vocab) lp = expandLogProbRow(lp, vocab, V);
        cache.set(key, lp);
      }
      return lp;
    }

    return { step, logProbRow };
  }

  return {
    config: cfg,
    draftVocab: vocab ? Vd : undefined,
    beginRound,
    dispose() {
      disposed = true;
      kern.dispose();
    },
  };
}
