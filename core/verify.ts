/**
 * Acceptance rules: which drafted tokens of one row's tree the target keeps, and the token it emits after
 * them. Index alignment (trap 10.2): the target's output at beam position k scores beam token k + 1; the
 * hidden state carried to the next round is the one at the last accepted token (beam index n).
 *
 * Rules are written over callbacks (draw, decide) so tests can enumerate every outcome with its exact
 * probability; the generation loop plugs in sampleToken / uniform.
 *
 * @module
 */

import { END, type PackedTree } from "./tree.ts";

/** The outcome of verifying one row's tree. */
export interface Acceptance {
  /** Beam chosen (lowest index among those containing the accepted path). */
  beam: number;
  /** n: accepted drafted tokens (0..L-1), excluding the init token. */
  accepted: number;
  /** The target's own token after the accepted path (emitted now, fed as next round's init token). */
  next: number;
  /** [n + 1] packed indices of the init token and the accepted drafts: the commit keep-list. */
  path: Int32Array;
}

/**
 * The reference's `_greedy_choose_from_candidates`: beams [W * L] from the drafter, pred [W * L] where
 * pred[w * L + k] is the target's argmax after beam token k. n[w] = leading run of beams[w][k + 1] ==
 * pred[w][k]; returns the longest run, ties to the lowest beam.
 */
export function greedyChoose(
  beams: ArrayLike<number>,
  pred: ArrayLike<number>,
  W: number,
  L: number,
): { accepted: number; beam: number } {
  let best = -1, bestBeam = 0;
  for (let w = 0; w < W; w++) {
    let n = 0;
    while (n < L - 1 && beams[w * L + n + 1] === pred[w * L + n]) n++;
    if (n > best) {
      best = n;
      bestBeam = w;
    }
  }
  return { accepted: best, beam: bestBeam };
}

/**
 * Walk the tree from the root, following the target's own choices (greedy: argmax; exact: the token drawn
 * with the AR sampler's uniform for that position). draw(node, depth) returns the target's token after
 * packed node `node` at depth `depth`. Works on packed trees and on chain layouts (several nodes with the
 * same path: the lowest beam's node is asked, as all of them carry the same chain).
 *
 * Greedy draw gives exactly greedyChoose's answer: the beams still alive at the end are those with the
 * longest matching run, and the lowest of them is reported.
 */
export function walkTree(tree: PackedTree, draw: (node: number, depth: number) => number): Acceptance {
  // Ragged trees (a lookup branch): a beam that ends at depth d stops there, accepted or not beyond.
  const W = tree.width, L = tree.length;
  const { unpacker, tokens } = tree;
  // alive = beams whose tokens 0..d equal the accepted path; kept as a bitmask over a small array.
  const alive = new Uint8Array(W).fill(1);
  let lead = 0; // lowest alive beam
  for (let d = 0;; d++) {
    const node = unpacker[lead * L + d];
    const tok = draw(node, d);
    if (d === L - 1) return finish(lead, d, tok);
    let newLead = -1;
    for (let w = lead; w < W; w++) {
      if (!alive[w]) continue;
      const child = unpacker[w * L + d + 1]; // END past a shorter beam's end
      if (child !== END && tokens[child] === tok) {
        if (newLead < 0) newLead = w;
      } else {
        alive[w] = 0;
      }
    }
    if (newLead < 0) return finish(lead, d, tok);
    lead = newLead;
  }
  function finish(beam: number, n: number, next: number): Acceptance {
    const path = new Int32Array(n + 1);
    for (let k = 0; k <= n; k++) path[k] = unpacker[beam * L + k];
    return { beam, accepted: n, next, path };
  }
}

/** Inputs of the reference ("apple") sampling rule for one row. */
export interface AppleInputs {
  /** The target's P at packed node p: softmax(top50_warp(logits) / T), float64 [V]. */
  probsAt(node: number): Float64Array;
  /** Drafter log Q row [V] that scored token k + 1 of beam w (untempered, after its top-50 warp). */
  logQ(w: number, k: number): Float32Array;
  /** The accept test for beam w, draft k: the reference draws a fresh uniform u and accepts iff u < ratio. */
  decide(ratio: number, w: number, k: number): boolean;
  /**
   * Draw the emitted token from unnormalized non-negative weights [V] (bonus row or residual); n = accepted
   * drafts, so the token lands at depth n + 1.
   */
  draw(weights: Float64Array, n: number): number;
}

/**
 * The reference's speculative-sampling acceptance (redrafter.md 4.2): per beam the leading run of P/Q ratio
 * tests, best beam = longest run (ties to the lowest), then the bonus row P if everything was accepted, else
 * the residual relu(P - Q) at the first rejection (guarded: an all-zero residual falls back to P). Not an
 * exact match of the target's distribution (see the README "Known Issues" in the reference).
 */
export function appleAccept(tree: PackedTree, io: AppleInputs): Acceptance {
  const W = tree.width, L = tree.length, C = L - 1;
  const { unpacker, tokens } = tree;
  if (unpacker.includes(END)) throw new Error("appleAccept: the Apple rule needs the drafter's beams only");
  let best = -1, bestBeam = 0;
  for (let w = 0; w < W; w++) {
    let n = 0;
    for (; n < C; n++) {
      const t = tokens[unpacker[w * L + n + 1]];
      const p = io.probsAt(unpacker[w * L + n])[t];
      const ratio = Math.exp(Math.log(p) - io.logQ(w, n)[t]);
      if (!io.decide(ratio, w, n)) break;
    }
    if (n > best) {
      best = n;
      bestBeam = w;
    }
  }
  const n = best, w = bestBeam;
  const P = io.probsAt(unpacker[w * L + n]);
  let weights: Float64Array;
  if (n === C) {
    weights = P;
  } else {
    const q = io.logQ(w, n);
    weights = new Float64Array(P.length);
    let any = false;
    for (let v = 0; v < P.length; v++) {
      const r = P[v] - Math.exp(q[v]);
      if (r > 0) {
        weights[v] = r;
        any = true;
      }
    }
    if (!any) weights = P; // P == Q on the support: the residual is empty (trap 10.9)
  }
  const next = io.draw(weights, n);
  const path = new Int32Array(n + 1);
  for (let k = 0; k <= n; k++) path[k] = unpacker[w * L + k];
  return { beam: w, accepted: n, next, path };
}
