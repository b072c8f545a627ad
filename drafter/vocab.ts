/**
 * A draft vocabulary: the drafter's LM head restricted to the N most frequent tokens (the idea of FR-Spec,
 * arXiv 2502.14856, and of EAGLE-3's draft vocabulary). The head is the drafter's largest matrix (V x E:
 * 79% of the default drafter's multiply-adds, and far more with a 128k vocabulary), so keeping N of V rows
 * makes each drafter step that much cheaper. Tokens outside the subset are never drafted; the target
 * verifies every draft as before, so greedy and exact-sampling outputs do not change, only acceptance can.
 *
 * The ranking comes from `draft_vocab.json` next to the drafter checkpoint: `{"ranked_ids": [...]}`, token
 * ids most frequent first (tools/draft_vocab.ts counts them over a corpus with the target's tokenizer), and
 * optionally `"default_size": N`, the size the CLIs use unless `--draft-vocab` says otherwise.
 *
 * @module
 */
import { LOG_0 } from "../core/sampling.ts";
import type { DrafterWeights } from "./cpu.ts";

/** The ranking file's name inside a drafter directory. */
export const DRAFT_VOCAB_FILE = "draft_vocab.json";

/** Smallest draft vocabulary: the top-50 warp (drafter/cpu.ts WARP_TOP_K) needs 50 candidates. */
export const MIN_DRAFT_VOCAB = 50;

/**
 * Token ids of a ranking file's `ranked_ids` (most frequent first), checked against a vocabulary of V:
 * integers in [0, V), each at most once. Errors name the file and the field.
 */
export function parseDraftVocabRanking(text: string, V: number, path: string): Int32Array {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
  }
  const ranked = (json as { ranked_ids?: unknown })?.ranked_ids;
  if (!Array.isArray(ranked) || ranked.length === 0) {
    throw new Error(`${path}: 'ranked_ids' must be a non-empty array of token ids, most frequent first`);
  }
  const seen = new Uint8Array(V);
  const out = new Int32Array(ranked.length);
  for (let i = 0; i < ranked.length; i++) {
    const t = ranked[i];
    if (!Number.isInteger(t) || t < 0 || t >= V) {
      throw new Error(`${path}: ranked_ids[${i}] = ${JSON.stringify(t)} is not a token id in 0..${V - 1}`);
    }
    if (seen[t]) throw new Error(`${path}: ranked_ids[${i}] = ${t} appears twice`);
    seen[t] = 1;
    out[i] = t;
  }
  return out;
}

/**
 * A ranking file's `default_size` (the draft vocabulary the CLIs use when not told), or null when it has
 * none. Checked against the vocabulary of V, naming the file.
 */
export function parseDraftVocabDefault(text: string, V: number, path: string): number | null {
  const n = (JSON.parse(text) as { default_size?: unknown }).default_size;
  if (n === undefined) return null;
  if (!Number.isInteger(n) || (n as number) < MIN_DRAFT_VOCAB || (n as number) > V) {
    throw new Error(
      `${path}: 'default_size' must be an integer in ${MIN_DRAFT_VOCAB}..${V}, got ${JSON.stringify(n)}`,
    );
  }
  return n as number;
}

/** The first n ids of a ranking, ascending (the order the head's rows keep). */
export function pickDraftVocab(ranked: Int32Array, n: number, where: string): Int32Array {
  if (!Number.isInteger(n) || n < MIN_DRAFT_VOCAB) {
    throw new Error(`${where} must be an integer >= ${MIN_DRAFT_VOCAB}, got ${n}`);
  }
  if (n > ranked.length) {
    throw new Error(`${where} is ${n}, but the ranking holds only ${ranked.length} token ids`);
  }
  return ranked.slice(0, n).sort();
}

/** A draft vocabulary request: a size, or "default" (the ranking file's default_size, else all). */
export type DraftVocabOption = number | "default";

/**
 * The draft vocabulary (ascending token ids) that `want` asks of a drafter whose ranking file at `path`
 * holds `ranking` (null: no such file), or null for the whole vocabulary of V. A size needs the file;
 * "default" takes its default_size and falls back to all. Errors name the file, field or `where`.
 */
export function resolveDraftVocab(
  want: DraftVocabOption | undefined,
  ranking: string | null,
  V: number,
  path: string,
  where: string,
  /** The error for a size without a ranking file (default: how to make one at `path`). */
  notFound: () => Error = () =>
    new Error(
      `${path}: not found. A draft vocabulary needs a token ranking next to the drafter; make one with ` +
        `deno run -A tools/draft_vocab.ts --tokenizer TARGET_DIR --out ${path} CORPUS_FILES...`,
    ),
): Int32Array | null {
  if (want === undefined) return null;
  if (want !== "default" && (!Number.isInteger(want) || want > V)) {
    throw new Error(`${where} must be an integer <= the vocabulary size ${V}, got ${want}`);
  }
  if (ranking === null) {
    if (want === "default" || want === V) return null;
    throw notFound();
  }
  const ranked = parseDraftVocabRanking(ranking, V, path);
  const n = want === "default" ? parseDraftVocabDefault(ranking, V, path) : want;
  return n === null || n >= V ? null : pickDraftVocab(ranked, n, where);
}

/**
 * The weights with the head cut to the rows of `vocab` (ascending token ids, no repeats): every drafter
 * backend then computes Vd = vocab.length logits per beam and maps the winners back to token ids.
 */
export function restrictDraftVocab(w: DrafterWeights, vocab: Int32Array): DrafterWeights {
  const { vocabSize: V, exitDim: E } = w.config;
  if (w.draftVocab) throw new Error("restrictDraftVocab: the head is already restricted");
  if (vocab.length < MIN_DRAFT_VOCAB || vocab.length > V) {
    throw new Error(`draft vocabulary of ${vocab.length} tokens: must hold ${MIN_DRAFT_VOCAB}..${V}`);
  }
  for (let i = 0; i < vocab.length; i++) {
    if (!(vocab[i] >= 0 && vocab[i] < V) || (i > 0 && vocab[i] <= vocab[i - 1])) {
      throw new Error(`draft vocabulary: ids must ascend within 0..${V - 1}; entry ${i} is ${vocab[i]}`);
    }
  }
  const head = new Float32Array(vocab.length * E);
  for (let i = 0; i < vocab.length; i++) {
    head.set(w.headWeight.subarray(vocab[i] * E, (vocab[i] + 1) * E), i * E);
  }
  const bf16 = new Set(w.bf16 ?? []);
  if (bf16.delete(w.headWeight)) bf16.add(head); // its rows are still exactly bf16
  return { ...w, headWeight: head, draftVocab: vocab.slice(), bf16 };
}

/**
 * A full [V] log-prob row from one over the draft vocabulary: tokens outside it get the value the warp gives
 * the tokens it removes (LOG_0 - lse, i.e. probability 0), so the row still sums to 1.
 */
export function expandLogProbRow(sub: Float32Array, vocab: Int32Array, V: number): Float32Array {
  // sub = z - lse with max(z) = 0, so lse = -max(sub), and removed tokens hold LOG_0 - lse.
  let max = -Infinity;
  for (let i = 0; i < sub.length; i++) if (sub[i] > max) max = sub[i];
  const out = new Float32Array(V).fill(Math.fround(LOG_0 + max));
  for (let i = 0; i < vocab.length; i++) out[vocab[i]] = sub[i];
  return out;
}
