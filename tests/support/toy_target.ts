/**
 * Test-only toy models implementing core/types.ts exactly.
 *
 * ToyTarget: the KV "cache" of a row is its list of committed tokens (with the running chain hash after
 * each). A token's logits are a deterministic pseudo-random function of its whole ancestor chain (committed
 * tokens + tree ancestors), so a loop that mixes up parents, positions or commits gets different numbers.
 * It checks every contract rule it can: positions equal chain length, parents[i] < i, no forward while
 * tokens are pending, commits form a path, capacity.
 *
 * ToyDrafter: a DraftModel whose recurrent state is a chain hash. "random" drafts from logits unrelated to
 * the target; "oracle" drafts from the target's own logits at the beam's chain (sharpened), so greedy
 * beam 0 is the target's greedy continuation.
 */

import type {
  DrafterConfig,
  DraftModel,
  DraftRound,
  DraftTopK,
  ForwardOutput,
  ForwardRequest,
  ModelConfig,
  TargetModel,
  TargetSession,
} from "../../core/types.ts";

export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Hash of an empty chain. */
export const EMPTY_HASH = 0x9e3779b9;

/** Hash of chain + token, given the hash of chain. */
export function chainHash(prev: number, token: number): number {
  return fmix32((Math.imul(prev ^ 0x5bd1e995, 31) + token * 0x27d4eb2d + 0x165667b1) | 0);
}

/** Uniform [0, 1) from two integers. */
function hashUnit(a: number, b: number): number {
  return fmix32(fmix32(a ^ 0x7f4a7c15) ^ Math.imul(b + 1, 0x9e3779b1)) / 4294967296;
}

/** The toy target's logits [V] after a chain with hash h: scale * (2u - 1), float32. */
export function toyLogits(
  h: number,
  V: number,
  scale: number,
  salt = 0,
  out: Float32Array = new Float32Array(V),
): Float32Array {
  const key = fmix32(h ^ salt);
  for (let v = 0; v < V; v++) out[v] = scale * (2 * hashUnit(key, v) - 1);
  return out;
}

/** The chain hash a toy hidden vector encodes (hidden[0] = high 16 bits, hidden[1] = low 16 bits). */
export function hashFromHidden(h: Float32Array, offset = 0): number {
  return ((h[offset] * 65536) + h[offset + 1]) >>> 0;
}

export interface ToyTargetOptions {
  vocab?: number;
  hidden?: number;
  eos?: number[];
  /** Logit spread: larger is peakier. */
  scale?: number;
  /** Different salts give different models. */
  salt?: number;
}

export class ToyTarget implements TargetModel {
  readonly config: ModelConfig;
  readonly backend = "toy";
  readonly V: number;
  readonly H: number;
  readonly scale: number;
  readonly salt: number;
  /** Counters over the model's lifetime. */
  forwardCalls = 0;
  tokensIn = 0;
  sessions: ToySession[] = [];

  constructor(o: ToyTargetOptions = {}) {
    this.V = o.vocab ?? 24;
    this.H = o.hidden ?? 8;
    this.scale = o.scale ?? 3;
    this.salt = o.salt ?? 0;
    if (this.H < 2) throw new Error("toy hidden size must be >= 2 (it carries the chain hash)");
    this.config = {
      architecture: "llama",
      vocabSize: this.V,
      hiddenSize: this.H,
      intermediateSize: 4 * this.H,
      numLayers: 1,
      numHeads: 1,
      numKvHeads: 1,
      headDim: this.H,
      rmsNormEps: 1e-5,
      ropeTheta: 10000,
      ropeScaling: null,
      maxPositionEmbeddings: 1 << 20,
      tieWordEmbeddings: false,
      attentionBias: false,
      outputBias: false,
      mlpBias: false,
      slidingWindow: null,
      bosTokenId: null,
      eosTokenIds: o.eos ?? [1],
      padTokenId: null,
    };
  }

  logitsOf(h: number, out?: Float32Array): Float32Array {
    return toyLogits(h, this.V, this.scale, this.salt, out);
  }

  /** Hidden [H] of the token that ends a chain with hash h. */
  hiddenOf(h: number, out: Float32Array, offset: number): void {
    out[offset] = h >>> 16;
    out[offset + 1] = h & 0xffff;
    for (let i = 2; i < this.H; i++) out[offset + i] = 2 * hashUnit(h ^ 0x51ed270b, i) - 1;
  }

  createSession(batch: number, capacity: number): TargetSession {
    const s = new ToySession(this, batch, capacity);
    this.sessions.push(s);
    return s;
  }

  embeddingTable(): Float32Array {
    const t = new Float32Array(this.V * this.H);
    for (let i = 0; i < t.length; i++) t[i] = 2 * hashUnit(0xe3b, i) - 1;
    return t;
  }

  dispose(): void {}
}

interface Pending {
  tokens: Int32Array;
  parents: Int32Array;
  hashes: Uint32Array;
}

export class ToySession implements TargetSession {
  readonly batch: number;
  readonly capacity: number;
  /** Per row: committed tokens and the chain hash after each. */
  readonly tokens: number[][];
  readonly hashes: number[][];
  private pending: (Pending | null)[];
  disposed = false;
  /** Largest committed + pending length seen. */
  peak = 0;

  constructor(private readonly model: ToyTarget, batch: number, capacity: number) {
    if (!Number.isInteger(batch) || batch < 1) throw new Error(`toy session: batch ${batch}`);
    this.batch = batch;
    this.capacity = capacity;
    this.tokens = Array.from({ length: batch }, () => []);
    this.hashes = Array.from({ length: batch }, () => []);
    this.pending = new Array(batch).fill(null);
  }

  lengths(): number[] {
    return this.tokens.map((t) => t.length);
  }

  private lastHash(r: number): number {
    const h = this.hashes[r];
    return h.length ? h[h.length - 1] : EMPTY_HASH;
  }

  forward(req: ForwardRequest): Promise<ForwardOutput> {
    if (this.disposed) throw new Error("toy session: forward after dispose");
    if (this.pending.some((p) => p !== null)) {
      throw new Error("toy session: forward while tokens are pending");
    }
    if (req.rows.length !== this.batch) {
      throw new Error(`toy session: ${req.rows.length} rows for batch ${this.batch}`);
    }
    const m = this.model;
    const V = m.V, H = m.H;
    const out: ForwardOutput = { hidden: [] };
    if (req.logits.kind === "full") out.logits = [];
    if (req.logits.kind === "topk") {
      out.topIds = [];
      out.topValues = [];
    }
    m.forwardCalls++;
    const scratch = new Float32Array(V);
    req.rows.forEach((row, r) => {
      const n = row.tokens.length;
      if (row.positions.length !== n) throw new Error(`toy session: row ${r} positions length`);
      const parents = row.parents ?? iota(n, -1);
      if (parents.length !== n) throw new Error(`toy session: row ${r} parents length`);
      const base = this.tokens[r].length;
      if (base + n > this.capacity) {
        throw new Error(`toy session: row ${r} needs ${base + n} slots, capacity ${this.capacity}`);
      }
      this.peak = Math.max(this.peak, base + n);
      const hashes = new Uint32Array(n);
      const chainLen = new Int32Array(n);
      const hidden = new Float32Array(n * H);
      for (let i = 0; i < n; i++) {
        const p = parents[i];
        if (!(p >= -1 && p < i)) throw new Error(`toy session: row ${r} parents[${i}] = ${p}`);
        const tok = row.tokens[i];
        if (!(tok >= 0 && tok < V)) throw new Error(`toy session: row ${r} token ${tok} out of vocab`);
        const prevHash = p < 0 ? this.lastHash(r) : hashes[p];
        chainLen[i] = (p < 0 ? base : chainLen[p]) + 1;
        if (row.positions[i] !== chainLen[i] - 1) {
          throw new Error(
            `toy session: row ${r} token ${i} position ${row.positions[i]}, chain says ${chainLen[i] - 1}`,
          );
        }
        hashes[i] = chainHash(prevHash, tok);
        m.hiddenOf(hashes[i], hidden, i * H);
      }
      m.tokensIn += n;
      out.hidden.push(hidden);
      const idx = row.logitIndices ?? iota(n, 0);
      if (req.logits.kind === "full") {
        const l = new Float32Array(idx.length * V);
        idx.forEach((i, j) => m.logitsOf(hashes[i], l.subarray(j * V, (j + 1) * V)));
        out.logits!.push(l);
      } else if (req.logits.kind === "topk") {
        const k = req.logits.k;
        const ids = new Int32Array(idx.length * k), vals = new Float32Array(idx.length * k);
        idx.forEach((i, j) => {
          m.logitsOf(hashes[i], scratch);
          const order = Array.from({ length: V }, (_, v) => v).sort((a, b) =>
            scratch[b] - scratch[a] || a - b
          );
          for (let q = 0; q < k; q++) {
            ids[j * k + q] = order[q];
            vals[j * k + q] = scratch[order[q]];
          }
        });
        out.topIds!.push(ids);
        out.topValues!.push(vals);
      }
      this.pending[r] = n > 0 ? { tokens: row.tokens.slice(), parents: parents.slice(), hashes } : null;
    });
    return Promise.resolve(out);
  }

  commit(keep: (Int32Array | null)[]): void {
    if (keep.length !== this.batch) throw new Error(`toy session: commit with ${keep.length} rows`);
    keep.forEach((k, r) => {
      const p = this.pending[r];
      if (!p) {
        if (k && k.length > 0) throw new Error(`toy session: row ${r} keeps tokens but none are pending`);
        return;
      }
      const idx = k ?? iota(p.tokens.length, 0);
      let prev = -1;
      for (const i of idx) {
        if (!(i >= 0 && i < p.tokens.length)) throw new Error(`toy session: row ${r} keep index ${i}`);
        if (p.parents[i] !== prev) {
          throw new Error(
            `toy session: row ${r} kept token ${i} has parent ${p.parents[i]}, not ${prev}: not a path`,
          );
        }
        prev = i;
        this.tokens[r].push(p.tokens[i]);
        this.hashes[r].push(p.hashes[i]);
      }
      this.pending[r] = null;
    });
  }

  truncate(row: number, length: number): void {
    if (this.pending[row]) throw new Error("toy session: truncate while pending");
    if (length < 0 || length > this.tokens[row].length) throw new Error(`toy session: truncate to ${length}`);
    this.tokens[row].length = length;
    this.hashes[row].length = length;
  }

  dispose(): void {
    this.disposed = true;
  }
}

export interface ToyDrafterOptions {
  kind: "random" | "oracle";
  /** Oracle: Q = log_softmax(sharpness * target logits + noise * random). */
  sharpness?: number;
  noise?: number;
  /** Random drafter logit spread. */
  scale?: number;
  warpK?: number;
  salt?: number;
}

/** A DraftModel over a ToyTarget's vocabulary and hidden size. */
export class ToyDrafter implements DraftModel {
  readonly config: DrafterConfig;
  rounds = 0;
  steps = 0;

  constructor(readonly target: ToyTarget, readonly o: ToyDrafterOptions) {
    this.config = {
      hiddenSize: target.H,
      vocabSize: target.V,
      exitDim: 2 * target.H,
      numDraftLayers: 1,
      rnn: true,
    };
  }

  beginRound(ctx: Float32Array, batch: number, width: number): DraftRound {
    this.rounds++;
    const V = this.target.V, H = this.target.H;
    if (ctx.length !== batch * H) throw new Error(`toy drafter: ctx ${ctx.length} for batch ${batch}`);
    const warpK = this.o.warpK ?? 50;
    const sharp = this.o.sharpness ?? 10, noise = this.o.noise ?? 0, scale = this.o.scale ?? 3;
    const salt = this.o.salt ?? 0x1234;
    // state[b * W + w] = chain hash of the beam up to its last token (the target's chain for the oracle).
    let state = new Uint32Array(batch * width);
    const rows: Float32Array[] = [];
    const tl = new Float32Array(V), noiseRow = new Float32Array(V);
    const start = new Uint32Array(batch);
    for (let b = 0; b < batch; b++) start[b] = hashFromHidden(ctx, b * H);
    let first = true;
    // deno-lint-ignore no-this-alias
    const model = this;
    return {
      step(tokens: Int32Array, parents: Int32Array, k: number): Promise<DraftTopK> {
        model.steps++;
        const next = new Uint32Array(batch * width);
        const lp = new Float32Array(batch * width * V);
        const ids = new Int32Array(batch * width * k), vals = new Float32Array(batch * width * k);
        for (let b = 0; b < batch; b++) {
          for (let w = 0; w < width; w++) {
            const i = b * width + w;
            const prev = first ? start[b] : state[b * width + parents[i]];
            const h = chainHash(prev, tokens[i]);
            next[i] = h;
            const row = lp.subarray(i * V, (i + 1) * V);
            if (model.o.kind === "oracle") {
              model.target.logitsOf(h, tl);
              toyLogits(h, V, 1, salt, noiseRow);
              for (let v = 0; v < V; v++) row[v] = sharp * tl[v] + noise * noiseRow[v];
            } else {
              toyLogits(h, V, scale, salt, row);
            }
            warpLogSoftmax(row, warpK);
            topK(row, k, ids, vals, i * k);
          }
        }
        first = false;
        state = next;
        rows.push(lp);
        return Promise.resolve({ ids, logProbs: vals });
      },
      logProbRow(step: number, row: number, beam: number): Float32Array {
        const lp = rows[step];
        if (!lp) throw new Error(`toy drafter: no step ${step}`);
        const i = row * width + beam;
        return lp.subarray(i * V, (i + 1) * V);
      },
    };
  }

  dispose(): void {}
}

/** In place: subtract the max, Apple's top-k warp to -50000, log-softmax (float64 math, float32 store). */
export function warpLogSoftmax(row: Float32Array, k: number): void {
  const V = row.length;
  let mx = -Infinity;
  for (let v = 0; v < V; v++) mx = Math.max(mx, row[v]);
  for (let v = 0; v < V; v++) row[v] -= mx;
  if (k < V) {
    const threshold = Float32Array.from(row).sort()[V - k];
    for (let v = 0; v < V; v++) if (row[v] < threshold) row[v] = -50000;
  }
  let s = 0;
  for (let v = 0; v < V; v++) s += Math.exp(row[v]);
  const lse = Math.log(s);
  for (let v = 0; v < V; v++) row[v] -= lse;
}

/** [n] = start, start + 1, ... */
function iota(n: number, start: number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = start + i;
  return a;
}

/** The k largest of row (descending, ties to the lower id) into ids/vals at offset. */
function topK(row: Float32Array, k: number, ids: Int32Array, vals: Float32Array, offset: number): void {
  let m = 0;
  for (let v = 0; v < row.length; v++) {
    const x = row[v];
    if (m === k && !(x > vals[offset + k - 1])) continue;
    let j = m < k ? m++ : k - 1;
    while (j > 0 && x > vals[offset + j - 1]) {
      ids[offset + j] = ids[offset + j - 1];
      vals[offset + j] = vals[offset + j - 1];
      j--;
    }
    ids[offset + j] = v;
    vals[offset + j] = x;
  }
}
