/**
 * Prompt lookup drafts: the tokens that followed the latest earlier occurrence of the context's last n
 * tokens (n from `maxNgram` down to `minNgram`). They cost no drafter step, and the target still verifies
 * every one: greedy and exact-sampling outputs stay token-identical to autoregression. They pay where text
 * repeats (quoting the prompt, code edits, and the loops of a small model's greedy decoding).
 *
 * Two ways to use them (LookupOptions.mode): "branch" adds them to the drafter's beams as one more branch
 * of the verification tree; "first" verifies them alone in a round where they are found, and runs the
 * drafter only for rows where none are, which saves the drafter's steps in those rounds.
 *
 * @module
 */
import { END } from "./tree.ts";

/** How lookup drafts join a round (see the module comment). */
export type LookupMode = "branch" | "first";

/** Every LookupMode, for flag checks. */
export const LOOKUP_MODES: readonly LookupMode[] = ["branch", "first"];

/** Options of lookup drafting (SpeculativeOptions.lookup). */
export interface LookupOptions {
  /** Most tokens proposed per round (>= 1). */
  maxDrafts: number;
  /** "branch" (default): next to the drafter's beams; "first": instead of them when found. */
  mode?: LookupMode;
  /** Longest suffix n-gram matched first (default 3). */
  maxNgram?: number;
  /** Shortest suffix n-gram tried (default 2). */
  minNgram?: number;
}

/**
 * Up to `maxDrafts` tokens continuing `context` (whose last token is the round's init token), copied from
 * after the latest earlier occurrence of its longest matching suffix n-gram; empty when none matches.
 */
export function lookupDraft(context: ArrayLike<number>, opts: LookupOptions): Int32Array {
  const maxN = opts.maxNgram ?? 3, minN = opts.minNgram ?? 2;
  const end = context.length - 1; // index of the init token
  for (let n = Math.min(maxN, end); n >= minN; n--) {
    // Latest j < end with context[j - n + 1 .. j] == context[end - n + 1 .. end].
    for (let j = end - 1; j >= n - 1; j--) {
      let k = 0;
      while (k < n && context[j - k] === context[end - k]) k++;
      if (k === n) {
        const count = Math.min(opts.maxDrafts, end - j);
        const out = new Int32Array(count);
        for (let i = 0; i < count; i++) out[i] = context[j + 1 + i];
        return out;
      }
    }
  }
  return new Int32Array(0);
}

/** Checks LookupOptions, naming the field at fault. */
export function checkLookupOptions(o: LookupOptions): void {
  if (!Number.isInteger(o.maxDrafts) || o.maxDrafts < 1 || o.maxDrafts > 64) {
    throw new Error(`lookup.maxDrafts must be an integer in 1..64, got ${o.maxDrafts}`);
  }
  if (o.mode !== undefined && !LOOKUP_MODES.includes(o.mode)) {
    throw new Error(`lookup.mode must be one of ${LOOKUP_MODES.join(", ")}, got '${o.mode}'`);
  }
  const maxN = o.maxNgram ?? 3, minN = o.minNgram ?? 2;
  if (!Number.isInteger(minN) || minN < 1 || !Number.isInteger(maxN) || maxN < minN || maxN > 16) {
    throw new Error(`lookup n-grams must satisfy 1 <= minNgram <= maxNgram <= 16, got ${minN}..${maxN}`);
  }
}

/**
 * The beams a row verifies in a round: the drafter's W beams of length L (`drafted`; null when lookup went
 * first and no drafter ran) and, when lookup found drafts, one more beam [init, ...found], shorter beams
 * END-padded to the longest. Without a drafter beam the lookup beam is the only one.
 */
export function lookupBeams(
  drafted: Int32Array | null,
  W: number,
  L: number,
  init: number,
  found: Int32Array | null,
): { beams: Int32Array; width: number; length: number } {
  if (!drafted) {
    if (!found) throw new Error("lookupBeams: no drafter beams and no lookup drafts");
    const beams = new Int32Array(1 + found.length);
    beams[0] = init;
    beams.set(found, 1);
    return { beams, width: 1, length: beams.length };
  }
  if (!found) return { beams: drafted, width: W, length: L };
  const length = Math.max(L, 1 + found.length), width = W + 1;
  const beams = new Int32Array(width * length).fill(END);
  for (let w = 0; w < W; w++) beams.set(drafted.subarray(w * L, (w + 1) * L), w * length);
  beams[W * length] = init;
  beams.set(found, W * length + 1);
  return { beams, width, length };
}
