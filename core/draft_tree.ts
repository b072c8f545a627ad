/**
 * Dynamic draft trees: the recurrent drafter grows a tree of the most likely continuations instead of W
 * beams of one length (the idea of EAGLE-2's dynamic trees, on ReDrafter's drafter). Per row and round:
 *
 *   step 1            the init token is expanded into its `children` most likely next tokens
 *   steps 2..depth    the `expand` nodes of the previous step with the highest path log-probability are
 *                     expanded the same way (the drafter runs them as `expand` beams, from their parents'
 *                     recurrent states)
 *   selection         the `nodes` created nodes with the highest path log-probability form the tree
 *
 * A path's log-probability never rises with depth, so the selection keeps every kept node's parent (ties go
 * to the node created first, which a parent always is). Where beam search spends its verified tokens on W
 * full-length paths, the tree spends them on the likeliest prefixes, which is what the target accepts.
 *
 * The tree comes back as ragged beams (one per leaf, END-padded to depth + 1 tokens), the layout
 * core/tree.ts packs, so the target, the verification rules and the KV commit are beam search's. Greedy and
 * exact sampling verify any tree losslessly; Apple's rule needs beam search's per-beam drafter rows.
 *
 * @module
 */

import { checkedStep } from "./beam_search.ts";
import { END } from "./tree.ts";
import type { DraftModel } from "./types.ts";

/** Options of dynamic draft trees (SpeculativeOptions.draftTree). */
export interface DraftTreeOptions {
  /** Drafted tokens kept per row and round (the init token not counted): 1..256. */
  nodes: number;
  /** Next tokens drafted per expanded node: 1..50 (the drafter's top-50 warp); default: beamWidth. */
  children?: number;
}

/** Most nodes a draft tree may keep per row and round. */
export const MAX_TREE_NODES = 256;
/** Most children per expanded node: the drafter's top-50 warp leaves 50 tokens with a probability. */
export const MAX_TREE_CHILDREN = 50;

/**
 * The children per node the CLIs use when not told: the beam width, at most MAX_TREE_CHILDREN (the library
 * defaults to the beam width and refuses one above the maximum, naming the option).
 */
export function defaultTreeChildren(beamWidth: number): number {
  return Math.min(beamWidth, MAX_TREE_CHILDREN);
}

/** A round's trees for B rows, as ragged beams. */
export interface DraftTreeResult {
  /** B, the number of batch rows. */
  batch: number;
  /** Beams per row: the most leaves any row has; a row with fewer repeats its first beam (packing merges it). */
  width: number;
  /** depth + 1: tokens per beam, init token included (shorter beams are END-padded). */
  length: number;
  /** [B * width * length] token ids, column 0 = init token; per row, beam 0 ends in its likeliest leaf. */
  beams: Int32Array;
  /** [B] nodes kept per row (at most `nodes`; fewer when the drafter proposed fewer). */
  kept: Int32Array;
}

/** Checks DraftTreeOptions, naming the field at fault. */
export function checkDraftTree(o: DraftTreeOptions, beamWidth: number): void {
  if (!Number.isInteger(o.nodes) || o.nodes < 1 || o.nodes > MAX_TREE_NODES) {
    throw new Error(`draftTree.nodes must be an integer in 1..${MAX_TREE_NODES}, got ${o.nodes}`);
  }
  const k = o.children ?? beamWidth;
  if (!Number.isInteger(k) || k < 1 || k > MAX_TREE_CHILDREN) {
    const from = o.children === undefined ? " (default: beamWidth)" : "";
    throw new Error(`draftTree.children${from} must be an integer in 1..${MAX_TREE_CHILDREN}, got ${k}`);
  }
}

/**
 * Grow one round's draft trees. ctx is [B * H] (context hidden per row), init [B] (each row's latest
 * token); `expand` nodes are expanded per step (the drafter's beam count), `depth` steps are drafted.
 */
export async function treeSearch(
  drafter: DraftModel,
  ctx: Float32Array,
  init: Int32Array,
  expand: number,
  depth: number,
  opts: DraftTreeOptions,
): Promise<DraftTreeResult> {
  checkDraftTree(opts, expand);
  if (!Number.isInteger(expand) || expand < 1) {
    throw new Error(`treeSearch: expand must be >= 1, got ${expand}`);
  }
  if (!Number.isInteger(depth) || depth < 1) throw new Error(`treeSearch: depth must be >= 1, got ${depth}`);
  const B = init.length, M = expand, D = depth, K = opts.children ?? expand;
  if (ctx.length !== B * drafter.config.hiddenSize) {
    throw new Error(
      `treeSearch: ctx has ${ctx.length} values, expected batch ${B} x drafter hiddenSize ${drafter.config.hiddenSize}`,
    );
  }
  const round = drafter.beginRound(ctx, B, M);
  // Per row, the created nodes in creation order: token, parent node (-1: the init token), path score,
  // and the drafter slot (beam) of the step that created them, which holds their parent's state.
  const cap = K + (D - 1) * M * K;
  const tok = new Int32Array(B * cap), par = new Int32Array(B * cap), slot = new Int32Array(B * cap);
  const score = new Float64Array(B * cap);
  const count = new Int32Array(B);
  // The frontier: per row, the nodes in drafter slots 0..live-1 (-1 = the init token).
  const frontier = new Int32Array(B * M).fill(-1);
  const live = new Int32Array(B).fill(1);
  const tokens = new Int32Array(B * M), parents = new Int32Array(B * M);
  for (let b = 0; b < B; b++) {
    for (let m = 0; m < M; m++) {
      tokens[b * M + m] = init[b]; // every slot starts as the init token: the drafter computes it once
      parents[b * M + m] = m;
    }
  }
  const sel = new Int32Array(Math.max(M, opts.nodes)); // selection scratch: node indices, best first
  for (let s = 0; s < D; s++) {
    const top = await checkedStep(round, tokens, parents, K, B, M);
    for (let b = 0; b < B; b++) {
      const o = b * cap, first = count[b];
      for (let m = 0; m < live[b]; m++) {
        const p = frontier[b * M + m];
        const base = p < 0 ? 0 : score[o + p];
        for (let j = 0; j < K; j++) {
          const i = count[b]++;
          tok[o + i] = top.ids[(b * M + m) * K + j];
          par[o + i] = p;
          slot[o + i] = m;
          score[o + i] = base + top.logProbs[(b * M + m) * K + j];
        }
      }
      if (s === D - 1) continue;
      // The next frontier: this step's M likeliest nodes; unused slots repeat slot 0 (computed once).
      const n = best(score, o + first, count[b] - first, M, sel);
      live[b] = n;
      for (let m = 0; m < M; m++) {
        const i = first + sel[m < n ? m : 0];
        frontier[b * M + m] = i;
        tokens[b * M + m] = tok[o + i];
        parents[b * M + m] = slot[o + i];
      }
    }
  }
  // Selection, then one beam per kept leaf (a kept node no kept node points to).
  const L = D + 1;
  const kept = new Int32Array(B);
  const rowBeams: Int32Array[] = [];
  let width = 1;
  for (let b = 0; b < B; b++) {
    const o = b * cap;
    const n = best(score, o, count[b], opts.nodes, sel);
    kept[b] = n;
    const isKept = new Uint8Array(count[b]), hasChild = new Uint8Array(count[b]);
    for (let j = 0; j < n; j++) isKept[sel[j]] = 1;
    for (let j = 0; j < n; j++) {
      const p = par[o + sel[j]];
      if (p >= 0) {
        if (!isKept[p]) throw new Error(`treeSearch: kept node ${sel[j]} of row ${b} lost its parent ${p}`);
        hasChild[p] = 1;
      }
    }
    const leaves: number[] = [];
    for (let j = 0; j < n; j++) if (!hasChild[sel[j]]) leaves.push(sel[j]); // best first
    const beams = new Int32Array(leaves.length * L).fill(END);
    leaves.forEach((leaf, w) => {
      let d = 0;
      for (let i = leaf; i >= 0; i = par[o + i]) d++;
      beams[w * L] = init[b];
      for (let i = leaf; i >= 0; i = par[o + i]) beams[w * L + d--] = tok[o + i];
    });
    rowBeams.push(beams);
    width = Math.max(width, leaves.length);
  }
  const beams = new Int32Array(B * width * L);
  for (let b = 0; b < B; b++) {
    const rb = rowBeams[b], w0 = rb.length / L;
    for (let w = 0; w < width; w++) {
      const src = (w < w0 ? w : 0) * L;
      beams.set(rb.subarray(src, src + L), (b * width + w) * L);
    }
  }
  return { batch: B, width, length: L, beams, kept };
}

/**
 * The up to `n` best of the `len` scores at score[from..]: their offsets from `from` into out[0..], score
 * descending, ties to the earlier one. Returns how many.
 */
function best(score: Float64Array, from: number, len: number, n: number, out: Int32Array): number {
  let m = 0;
  for (let i = 0; i < len; i++) {
    const v = score[from + i];
    if (m === n && !(v > score[from + out[n - 1]])) continue;
    let k = m < n ? m++ : n - 1;
    while (k > 0 && v > score[from + out[k - 1]]) {
      out[k] = out[k - 1];
      k--;
    }
    out[k] = i;
  }
  return m;
}
