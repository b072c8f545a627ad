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
 * How many a match proposes (LookupOptions.length): "fixed" takes maxDrafts; "match" takes half the
 * matched n-gram's length (n up to 16), so a long loop gets long drafts and a chance 3-gram one. On the cpu
 * backend, where each verified token costs about a quarter of a step, that verifies 10% fewer tokens for
 * the same text and made lookup first 0-10% faster, never slower (docs/measurements.md, session 14).
 *
 * @module
 */
import { END } from "./tree.ts";

/** How lookup drafts join a round (see the module comment). */
export type LookupMode = "branch" | "first";

/** Every LookupMode, for flag checks. */
export const LOOKUP_MODES: readonly LookupMode[] = ["branch", "first"];

/** How many drafts a match proposes (LookupOptions.length). */
export type LookupLength = "fixed" | "match";

/** Every LookupLength, for flag checks. */
export const LOOKUP_LENGTHS: readonly LookupLength[] = ["fixed", "match"];

/** Options of lookup drafting (SpeculativeOptions.lookup). */
export interface LookupOptions {
  /** Most tokens proposed per round (>= 1). */
  maxDrafts: number;
  /** "branch" (default): next to the drafter's beams; "first": instead of them when found. */
  mode?: LookupMode;
  /**
   * "fixed" (default): every match proposes maxDrafts tokens. "match": a match of the context's last n
   * tokens proposes floor(n / 2) of them (at least 1, at most maxDrafts). A long match is a loop or a quoted
   * passage whose continuation the target tends to repeat; a short one is often chance, and every draft the
   * target rejects still costs a verified token.
   */
  length?: LookupLength;
  /** Longest suffix n-gram matched first (default 3; 16 with length "match"). */
  maxNgram?: number;
  /** Shortest suffix n-gram tried (default 2; 3 with length "match"). */
  minNgram?: number;
}

/**
 * Up to `maxDrafts` tokens continuing `context` (whose last token is the round's init token), copied from
 * after the latest earlier occurrence of its longest matching suffix n-gram (with length "match", floor(n /
 * 2) of them for an n-gram); empty when none matches.
 */
export function lookupDraft(context: ArrayLike<number>, opts: LookupOptions): Int32Array {
  const byMatch = opts.length === "match";
  const [minN, maxN] = ngramRange(opts);
  const end = context.length - 1; // index of the init token
  const cap = Math.min(maxN, end);
  // One pass from the latest position back: the match extent at j is how many tokens before and at j equal
  // the context's suffix (at most cap). The longest wins, the latest among equals: the latest occurrence
  // of the longest matching suffix n-gram.
  let best = -1, bestN = minN - 1;
  for (let j = end - 1; j >= 0 && bestN < cap; j--) {
    let n = 0;
    while (n < cap && n <= j && context[j - n] === context[end - n]) n++;
    if (n > bestN) {
      bestN = n;
      best = j;
    }
  }
  if (best < 0) return new Int32Array(0);
  const wanted = byMatch ? Math.max(1, Math.min(opts.maxDrafts, bestN >> 1)) : opts.maxDrafts;
  const count = Math.min(wanted, end - best);
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) out[i] = context[best + 1 + i];
  return out;
}

/** [minNgram, maxNgram] with their defaults: 2..3, or 3..16 with length "match". */
function ngramRange(o: LookupOptions): [number, number] {
  const byMatch = o.length === "match";
  return [o.minNgram ?? (byMatch ? 3 : 2), o.maxNgram ?? (byMatch ? 16 : 3)];
}

/** Checks LookupOptions, naming the field at fault. */
export function checkLookupOptions(o: LookupOptions): void {
  if (!Number.isInteger(o.maxDrafts) || o.maxDrafts < 1 || o.maxDrafts > 64) {
    throw new Error(`lookup.maxDrafts must be an integer in 1..64, got ${o.maxDrafts}`);
  }
  if (o.mode !== undefined && !LOOKUP_MODES.includes(o.mode)) {
    throw new Error(`lookup.mode must be one of ${LOOKUP_MODES.join(", ")}, got '${o.mode}'`);
  }
  if (o.length !== undefined && !LOOKUP_LENGTHS.includes(o.length)) {
    throw new Error(`lookup.length must be one of ${LOOKUP_LENGTHS.join(", ")}, got '${o.length}'`);
  }
  const [minN, maxN] = ngramRange(o);
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
