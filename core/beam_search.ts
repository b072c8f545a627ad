/**
 * The drafter's beam search, exactly as Apple's reference runs it (redrafter.md section 2): beam 0 alone
 * is alive at the start (a -50000 prior on the others), then C = L - 1 times a global top-W over all W x V
 * (parent, token) extensions of the cumulative log-probability. Only per-beam top-W lists are needed for
 * that (no beam can contribute more than W winners), so the drafter's vocabulary rows stay where they are.
 *
 * @module
 */

import type { DraftModel, DraftRound, DraftTopK } from "./types.ts";

/** Apple's prior on the initially dead beams. */
export const DEAD_BEAM_PRIOR: number = -50000;

/** The W best beams of each batch row after L - 1 drafting steps, with what verification needs. */
export interface BeamSearchResult {
  /** B, the number of batch rows. */
  batch: number;
  /** W, beams kept per row. */
  width: number;
  /** L, including the init token. */
  length: number;
  /** [B * W * L] token ids, column 0 = the init token; beams sorted by score (beam 0 best). */
  beams: Int32Array;
  /** [B * W] final cumulative log-probabilities (the init token counts 0). */
  scores: Float64Array;
  /**
   * [C * B * W]: origin[(s * B + b) * W + j] is the beam slot of step s whose extension became beam j after
   * step s, i.e. the slot whose Q row (DraftRound.logProbRow(s, b, slot)) scored token s + 1 of beam j.
   */
  origin: Int32Array;
  /** The drafter round, kept for on-demand Q rows. */
  round: DraftRound;
}

/** Check beam shape against the vocabulary, with messages naming the option. */
export function checkBeamShape(width: number, length: number, vocab: number): void {
  if (!Number.isInteger(length) || length < 2) {
    throw new Error(
      `beamLength must be an integer >= 2 (it counts the init token plus at least one drafted token), got ${length}`,
    );
  }
  if (!Number.isInteger(width) || width < 1 || width > vocab) {
    throw new Error(`beamWidth must be an integer in [1, vocab size ${vocab}], got ${width}`);
  }
}

/**
 * One drafter step over B rows of W beams, its top-k checked to hold B x W x k entries (a DraftModel that
 * returns fewer would otherwise be read past its end).
 */
export async function checkedStep(
  round: DraftRound,
  tokens: Int32Array,
  parents: Int32Array,
  k: number,
  B: number,
  W: number,
): Promise<DraftTopK> {
  const top = await round.step(tokens, parents, k);
  if (top.ids.length !== B * W * k || top.logProbs.length !== B * W * k) {
    throw new Error(
      `DraftRound.step returned ${top.ids.length} ids / ${top.logProbs.length} log-probs, expected ` +
        `rows ${B} x beams ${W} x k ${k}`,
    );
  }
  return top;
}

/**
 * Run one round of beam search for B rows. ctx is [B * H] (context hidden per row), init is [B] (the
 * target's latest token per row).
 */
export async function beamSearch(
  drafter: DraftModel,
  ctx: Float32Array,
  init: Int32Array,
  width: number,
  length: number,
): Promise<BeamSearchResult> {
  const V = drafter.config.vocabSize;
  checkBeamShape(width, length, V);
  const B = init.length;
  const W = width, L = length, C = L - 1;
  if (ctx.length !== B * drafter.config.hiddenSize) {
    throw new Error(
      `beamSearch: ctx has ${ctx.length} values, expected batch ${B} x drafter hiddenSize ${drafter.config.hiddenSize}`,
    );
  }
  const round = drafter.beginRound(ctx, B, W);
  const beams = new Int32Array(B * W * L);
  const nextBeams = new Int32Array(B * W * L);
  const origin = new Int32Array(C * B * W);
  let score = new Float64Array(B * W);
  let nextScore = new Float64Array(B * W);
  const tokens = new Int32Array(B * W);
  const parents = new Int32Array(B * W);
  for (let b = 0; b < B; b++) {
    for (let w = 0; w < W; w++) {
      beams[(b * W + w) * L] = init[b];
      score[b * W + w] = w === 0 ? 0 : DEAD_BEAM_PRIOR;
      tokens[b * W + w] = init[b];
      parents[b * W + w] = w;
    }
  }
  // Per-row selection scratch: W best (score, flat index) pairs, kept sorted descending.
  const selScore = new Float64Array(W);
  const selFlat = new Float64Array(W);
  for (let s = 0; s < C; s++) {
    const top = await checkedStep(round, tokens, parents, W, B, W);
    for (let b = 0; b < B; b++) {
      let m = 0;
      for (let w = 0; w < W; w++) {
        const base = score[b * W + w];
        for (let j = 0; j < W; j++) {
          const o = (b * W + w) * W + j;
          const v = base + top.logProbs[o];
          const flat = w * V + top.ids[o];
          // Global order: score descending, ties to the lower flat index (parent * V + token).
          if (m === W && !(v > selScore[W - 1] || (v === selScore[W - 1] && flat < selFlat[W - 1]))) continue;
          let i = m < W ? m++ : W - 1;
          while (i > 0 && (v > selScore[i - 1] || (v === selScore[i - 1] && flat < selFlat[i - 1]))) {
            selScore[i] = selScore[i - 1];
            selFlat[i] = selFlat[i - 1];
            i--;
          }
          selScore[i] = v;
          selFlat[i] = flat;
        }
      }
      for (let j = 0; j < W; j++) {
        const parent = Math.floor(selFlat[j] / V);
        const tok = selFlat[j] - parent * V;
        const dst = (b * W + j) * L, src = (b * W + parent) * L;
        for (let k = 0; k <= s; k++) nextBeams[dst + k] = beams[src + k];
        nextBeams[dst + s + 1] = tok;
        nextScore[b * W + j] = selScore[j];
        origin[(s * B + b) * W + j] = parent;
        tokens[b * W + j] = tok;
        parents[b * W + j] = parent;
      }
    }
    beams.set(nextBeams);
    const t = score;
    score = nextScore;
    nextScore = t;
  }
  return { batch: B, width: W, length: L, beams, scores: score, origin, round };
}

/**
 * The drafter slot at step s that produced token s + 1 of final beam w of row b (follows origin back from
 * the last step). Returns a [C] array: slots[s] for s = 0..C-1.
 */
export function beamAncestry(r: BeamSearchResult, b: number, w: number): Int32Array {
  const C = r.length - 1, B = r.batch, W = r.width;
  const slots = new Int32Array(C);
  let j = w;
  for (let s = C - 1; s >= 0; s--) {
    const slot = r.origin[(s * B + b) * W + j];
    slots[s] = slot;
    j = slot;
  }
  return slots;
}
