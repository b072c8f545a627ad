/**
 * A KV-cache session of the CPU backend. Per layer, K (after RoPE) and V are [kvHeads, B * capacity, hd],
 * head-major, so attention reads a kv head's keys and values as one run (with the heads interleaved per
 * slot it read them in strided pieces: 23% slower at 900 keys once the matmuls had evicted the caches). Slot
 * b * capacity + j is row b's token j: row b's committed tokens sit in slots [0, len[b]) and a forward call's new tokens in pending slots
 * [len[b], len[b] + n). The RoPE position of every slot is kept too (sliding windows compare positions).
 *
 * A forward call flattens the new tokens of all rows into one [N, H] activation block so that every linear
 * layer is one blocked matmul over all N tokens; attention then runs per token over its row's committed
 * slots, its ancestors among the new tokens, and itself.
 *
 * @module
 */
import type { ForwardOutput, ForwardRequest, ModelConfig, TargetSession } from "../../core/types.ts";
import { rmsnorm, rope, ropeTable } from "./kernels.ts";
import { topK } from "../../kernels/topk.ts";
import { screenedTopK } from "./head_screen.ts";
import { matmulAny, type Weights } from "./weights.ts";
import { type Kernels, padFloats } from "../../kernels/mod.ts";
import { type AttentionKernels, createAttentionKernels } from "../../kernels/attention.ts";

/** Scratch buffers, grown on demand and reused across calls. */
class Scratch {
  tokens = 0; // capacity in tokens of the [N, *] buffers
  x = new Float32Array(0); // [N, H] residual stream
  xb = new Float32Array(0); // [N, H] normed input of a block
  q = new Float32Array(0); // [N, heads*hd]
  k = new Float32Array(0); // [N, kvHeads*hd]
  v = new Float32Array(0); // [N, kvHeads*hd]
  att = new Float32Array(0); // [N, heads*hd] attention output
  proj = new Float32Array(0); // [N, H] o_proj / down_proj output
  qkv = new Float32Array(0); // [N, heads*hd + 2*kvHeads*hd] the stacked projection's output
  gateUp = new Float32Array(0); // [N, 2I] the stacked gate/up projection's output
  gate = new Float32Array(0); // [N, I]
  up = new Float32Array(0); // [N, I]
  tokRow = new Int32Array(0); // [N] batch row of each flattened token
  tokIdx = new Int32Array(0); // [N] index of the token among its row's new tokens
  tokPos = new Int32Array(0); // [N] RoPE position
  cos = new Float32Array(0); // [N, headDim/2] RoPE angles of each token (ropeTable)
  sin = new Float32Array(0);
  logitRows = new Float32Array(0); // [M, H] normed hidden of requested tokens
  logits = new Float32Array(0); // [M, V] (top-k mode)
  logitTokens = 0;

  ensure(n: number, c: ModelConfig): void {
    if (n <= this.tokens) return;
    const N = Math.max(n, this.tokens * 2);
    const qDim = c.numHeads * c.headDim, kvDim = c.numKvHeads * c.headDim;
    this.x = new Float32Array(N * c.hiddenSize);
    this.xb = new Float32Array(N * c.hiddenSize);
    this.q = new Float32Array(N * qDim);
    this.k = new Float32Array(N * kvDim);
    this.v = new Float32Array(N * kvDim);
    this.att = new Float32Array(N * qDim);
    this.proj = new Float32Array(N * c.hiddenSize);
    this.qkv = new Float32Array(N * (qDim + 2 * kvDim));
    this.gateUp = new Float32Array(N * 2 * c.intermediateSize);
    this.gate = new Float32Array(N * c.intermediateSize);
    this.up = new Float32Array(N * c.intermediateSize);
    this.tokRow = new Int32Array(N);
    this.tokIdx = new Int32Array(N);
    this.tokPos = new Int32Array(N);
    this.cos = new Float32Array(N * (c.headDim / 2));
    this.sin = new Float32Array(N * (c.headDim / 2));
    this.tokens = N;
  }

  ensureLogits(m: number, c: ModelConfig, needLogits: boolean): void {
    if (m <= this.logitTokens && (!needLogits || this.logits.length >= m * c.vocabSize)) return;
    const M = Math.max(m, this.logitTokens * 2);
    this.logitRows = new Float32Array(M * c.hiddenSize);
    if (needLogits) this.logits = new Float32Array(M * c.vocabSize);
    this.logitTokens = M;
  }
}

export interface SessionParams {
  config: ModelConfig;
  weights: Weights;
  /** The matmul kernels holding `weights` (every matrix was allocated by them). */
  kernels: Kernels;
  invFreq: Float32Array;
  batch: number;
  capacity: number;
  /** Where forwardSync adds its stages' milliseconds (CpuModelOptions.profile), or undefined. */
  profile?: ForwardProfile;
}

/**
 * Milliseconds spent per stage of the forward passes, summed over calls (createCpuModel's `profile`
 * option): embed (embeddings, RoPE tables), norm (RMSNorms and residual adds), qkv, o, gate_up, down (the
 * projections' matmuls), rope_kv (RoPE and the cache writes), attention (slot lists and the attention
 * kernels), swiglu (splitting gate/up and the activation), head (final norm, LM head, top-k, outputs), and
 * `calls`, the number of forward passes.
 */
export type ForwardProfile = Record<string, number>;

/** Sessions dropped without dispose() still give their attention arena block back, once collected. */
const arenaBlocks = new FinalizationRegistry<() => void>((release) => release());

/** A stopwatch over the stages of one forward pass: lap(stage) adds the time since the previous lap. */
function stageTimer(profile: ForwardProfile): (stage: string) => void {
  profile.calls = (profile.calls ?? 0) + 1;
  let last = performance.now();
  return (stage) => {
    const now = performance.now();
    profile[stage] = (profile[stage] ?? 0) + now - last;
    last = now;
  };
}

export class CpuSession implements TargetSession {
  readonly batch: number;
  readonly capacity: number;
  #c: ModelConfig;
  #w: Weights | null;
  #invFreq: Float32Array;
  #k: Kernels;
  #kCache: Float32Array[]; // per layer [kvHeads, B * capacity, hd] (head-major: a head's keys in one run)
  #vCache: Float32Array[];
  #slotPos: Int32Array; // [B, capacity] RoPE position of each slot
  #len: Int32Array; // [B] committed length
  #pending: Int32Array; // [B] pending tokens after the committed ones
  #pendingParents: Int32Array; // [B, capacity] parents of pending tokens (indices among them)
  #s = new Scratch();
  // per-token attention scratch (sized by capacity)
  #att: AttentionKernels; // owns the KV caches and the per-token scratch below
  #ctx: Int32Array; // [capacity] cache slots (b * capacity + j) a token attends to
  #scores: Float32Array; // [2 * capacity] q·k of two heads, then their softmax
  #qTok: Float32Array; // [heads*hd] one token's queries
  #attTok: Float32Array; // [heads*hd] one token's attention output
  #isAncestor: Uint8Array;
  #profile: ForwardProfile | undefined;
  /** Gives the attention arrays back to the kernels' arena (shared attention only). */
  #release: (() => void) | null = null;

  constructor(p: SessionParams) {
    const c = p.config;
    if (!Number.isInteger(p.batch) || p.batch < 1) throw new Error(`cpu: batch must be >= 1, got ${p.batch}`);
    if (!Number.isInteger(p.capacity) || p.capacity < 1) {
      throw new Error(`cpu: capacity must be >= 1, got ${p.capacity}`);
    }
    this.batch = p.batch;
    this.capacity = p.capacity;
    this.#c = c;
    this.#w = p.weights;
    this.#invFreq = p.invFreq;
    this.#k = p.kernels;
    this.#profile = p.profile;
    const kvDim = c.numKvHeads * c.headDim, qDim = c.numHeads * c.headDim;
    const cacheFloats = p.batch * p.capacity * kvDim;
    const floats = 2 * c.numLayers * padFloats(cacheFloats) + padFloats(2 * p.capacity) + 2 * padFloats(qDim);
    // With matmul threads, the caches go in the kernels' shared arena and attention splits its heads over
    // the threads too (a long context makes attention a large part of a step, and it was one thread's).
    const shared = p.kernels.attention(floats, padFloats(p.capacity), 2 * p.capacity);
    const att = shared ?? createAttentionKernels(
      floats,
      padFloats(p.capacity),
      p.kernels.kind === "js" ? "js" : "auto", // "auto" falls back to the (bit-identical) JS twin past 4 GiB
    );
    if (shared) {
      this.#release = () => shared.dispose();
      arenaBlocks.register(this, this.#release, this);
    }
    this.#att = att;
    this.#kCache = [];
    this.#vCache = [];
    for (let l = 0; l < c.numLayers; l++) {
      this.#kCache.push(att.alloc(cacheFloats));
      this.#vCache.push(att.alloc(cacheFloats));
    }
    this.#ctx = att.allocI32(p.capacity);
    this.#scores = att.alloc(2 * p.capacity);
    this.#qTok = att.alloc(qDim);
    this.#attTok = att.alloc(qDim);
    this.#slotPos = new Int32Array(p.batch * p.capacity);
    this.#len = new Int32Array(p.batch);
    this.#pending = new Int32Array(p.batch);
    this.#pendingParents = new Int32Array(p.batch * p.capacity);
    this.#isAncestor = new Uint8Array(p.capacity);
  }

  lengths(): number[] {
    return Array.from(this.#len);
  }

  #weights(): Weights {
    if (!this.#w) throw new Error("cpu: session used after dispose()");
    return this.#w;
  }

  /** Check a request and return the total number of new tokens. */
  #validate(req: ForwardRequest): number {
    const c = this.#c;
    if (req.rows.length !== this.batch) {
      throw new Error(`cpu: forward got ${req.rows.length} rows, the session has batch ${this.batch}`);
    }
    if (
      req.logits.kind === "topk" &&
      !(Number.isInteger(req.logits.k) && req.logits.k >= 1 && req.logits.k <= c.vocabSize)
    ) {
      throw new Error(`cpu: top-k k must be an integer in [1, ${c.vocabSize}], got ${req.logits.k}`);
    }
    let total = 0;
    for (let b = 0; b < this.batch; b++) {
      if (this.#pending[b] > 0) {
        throw new Error(
          `cpu: row ${b} has ${this.#pending[b]} pending tokens; call commit() before forward()`,
        );
      }
      const r = req.rows[b];
      const n = r.tokens.length;
      if (r.positions.length !== n) {
        throw new Error(`cpu: row ${b} has ${n} tokens but ${r.positions.length} positions`);
      }
      if (r.parents && r.parents.length !== n) {
        throw new Error(`cpu: row ${b} has ${n} tokens but ${r.parents.length} parents`);
      }
      if (this.#len[b] + n > this.capacity) {
        throw new Error(
          `cpu: row ${b}: ${
            this.#len[b]
          } committed tokens plus ${n} new tokens exceeds the session capacity ` +
            `of ${this.capacity} (prompt or generation too long for the context)`,
        );
      }
      for (let i = 0; i < n; i++) {
        const tok = r.tokens[i];
        if (!(tok >= 0 && tok < c.vocabSize)) {
          throw new Error(
            `cpu: row ${b} token ${i} has id ${tok}, outside the vocabulary [0, ${c.vocabSize})`,
          );
        }
        if (r.positions[i] < 0) {
          throw new Error(`cpu: row ${b} token ${i} has negative position ${r.positions[i]}`);
        }
        if (r.parents) {
          const p = r.parents[i];
          if (!(p >= -1 && p < i)) {
            throw new Error(
              `cpu: row ${b} token ${i} has parent ${p}; parents must satisfy -1 <= parent < index`,
            );
          }
        }
      }
      if (r.logitIndices) {
        for (const j of r.logitIndices) {
          if (!(j >= 0 && j < n)) {
            throw new Error(`cpu: row ${b} logit index ${j} is outside its ${n} new tokens`);
          }
        }
      }
      total += n;
    }
    return total;
  }

  forward(req: ForwardRequest): Promise<ForwardOutput> {
    try {
      return Promise.resolve(this.forwardSync(req));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** The synchronous body of forward(). */
  forwardSync(req: ForwardRequest): ForwardOutput {
    const w = this.#weights();
    const c = this.#c;
    const N = this.#validate(req);
    const H = c.hiddenSize, I = c.intermediateSize, V = c.vocabSize, hd = c.headDim;
    const qDim = c.numHeads * hd, kvDim = c.numKvHeads * hd, qkvDim = qDim + 2 * kvDim;
    const cap = this.capacity;
    const s = this.#s;
    s.ensure(N, c);
    // Stage laps only when profiling (a few performance.now() calls per layer otherwise not made).
    const lap = this.#profile ? stageTimer(this.#profile) : undefined;

    // Flatten the rows' new tokens; embed them; record their slots' positions and parents.
    let t = 0;
    for (let b = 0; b < this.batch; b++) {
      const r = req.rows[b];
      for (let i = 0; i < r.tokens.length; i++, t++) {
        s.tokRow[t] = b;
        s.tokIdx[t] = i;
        s.tokPos[t] = r.positions[i];
        this.#k.row(w.embed, r.tokens[i], H, s.x, t * H);
        const slot = b * cap + this.#len[b] + i;
        this.#slotPos[slot] = r.positions[i];
        this.#pendingParents[slot] = r.parents ? r.parents[i] : i - 1;
        ropeTable(r.positions[i], this.#invFreq, s.cos, s.sin, t * (c.headDim / 2));
      }
    }

    const scale = 1 / Math.sqrt(hd);
    lap?.("embed");
    for (let l = 0; l < c.numLayers; l++) {
      const L = w.layers[l];
      const kc = this.#kCache[l], vc = this.#vCache[l];
      // attention block
      rmsnorm(s.xb, s.x, L.inputNorm, N, H, c.rmsNormEps);
      lap?.("norm");
      matmulAny(this.#k, s.qkv, s.xb, L.wqkv, L.bqkv, N, H, qkvDim);
      lap?.("qkv");
      for (let t = 0; t < N; t++) {
        const from = t * qkvDim;
        s.q.set(s.qkv.subarray(from, from + qDim), t * qDim);
        s.k.set(s.qkv.subarray(from + qDim, from + qDim + kvDim), t * kvDim);
        s.v.set(s.qkv.subarray(from + qDim + kvDim, from + qkvDim), t * kvDim);
      }
      for (let t = 0; t < N; t++) {
        rope(s.q, t * qDim, c.numHeads, hd, s.cos, s.sin, t * (hd / 2));
        rope(s.k, t * kvDim, c.numKvHeads, hd, s.cos, s.sin, t * (hd / 2));
        const slot = s.tokRow[t] * cap + this.#len[s.tokRow[t]] + s.tokIdx[t];
        for (let h = 0; h < c.numKvHeads; h++) {
          const from = t * kvDim + h * hd, to = (h * this.batch * cap + slot) * hd;
          for (let d = 0; d < hd; d++) {
            kc[to + d] = s.k[from + d];
            vc[to + d] = s.v[from + d];
          }
        }
      }
      lap?.("rope_kv");
      for (let t = 0; t < N; t++) {
        const nCtx = this.#contextSlots(s.tokRow[t], s.tokIdx[t], s.tokPos[t], c.slidingWindow);
        this.#attendToken(kc, vc, s.q, s.att, t * qDim, nCtx, scale);
      }
      lap?.("attention");
      matmulAny(this.#k, s.proj, s.att, L.wo, L.bo, N, qDim, H);
      lap?.("o");
      for (let i = 0; i < N * H; i++) s.x[i] += s.proj[i];
      // feed-forward block
      rmsnorm(s.xb, s.x, L.postNorm, N, H, c.rmsNormEps);
      lap?.("norm");
      matmulAny(this.#k, s.gateUp, s.xb, L.wGateUp, L.bGateUp, N, H, 2 * I);
      lap?.("gate_up");
      for (let t = 0; t < N; t++) {
        s.gate.set(s.gateUp.subarray(2 * t * I, (2 * t + 1) * I), t * I);
        s.up.set(s.gateUp.subarray((2 * t + 1) * I, (2 * t + 2) * I), t * I);
      }
      this.#k.swiglu(s.gate, s.gate, s.up, N * I);
      lap?.("swiglu");
      matmulAny(this.#k, s.proj, s.gate, L.wDown, L.bDown, N, I, H);
      lap?.("down");
      for (let i = 0; i < N * H; i++) s.x[i] += s.proj[i];
      lap?.("norm");
    }
    rmsnorm(s.x, s.x, w.finalNorm, N, H, c.rmsNormEps);

    // Outputs: hidden for every new token; logits for the requested ones only.
    const out: ForwardOutput = { hidden: [] };
    const mode = req.logits;
    if (mode.kind === "full") out.logits = [];
    if (mode.kind === "topk") {
      out.topIds = [];
      out.topValues = [];
    }
    let rowStart = 0;
    for (let b = 0; b < this.batch; b++) {
      const r = req.rows[b];
      const n = r.tokens.length;
      out.hidden.push(s.x.slice(rowStart * H, (rowStart + n) * H));
      if (mode.kind !== "none") {
        const idx = r.logitIndices;
        const m = idx ? idx.length : n;
        s.ensureLogits(m, c, mode.kind === "topk");
        for (let j = 0; j < m; j++) {
          const src = rowStart + (idx ? idx[j] : j);
          for (let d = 0; d < H; d++) s.logitRows[j * H + d] = s.x[src * H + d];
        }
        if (mode.kind === "full") {
          const logits = new Float32Array(m * V);
          matmulAny(this.#k, logits, s.logitRows, w.lmHead, null, m, H, V);
          out.logits!.push(logits);
        } else {
          const ids = new Int32Array(m * mode.k), vals = new Float32Array(m * mode.k);
          const screened = w.headScreen !== null &&
            screenedTopK(this.#k, w.headScreen, w.lmHead, s.logitRows, m, H, V, mode.k, s.logits, ids, vals);
          if (!screened) {
            matmulAny(this.#k, s.logits, s.logitRows, w.lmHead, null, m, H, V);
            for (let j = 0; j < m; j++) topK(s.logits, j * V, V, mode.k, ids, vals, j * mode.k);
          }
          out.topIds!.push(ids);
          out.topValues!.push(vals);
        }
      }
      this.#pending[b] = n;
      rowStart += n;
    }
    this.#k.park(); // a drafter's threads may get the cores next
    lap?.("head");
    return out;
  }

  /**
   * Fill #ctx with the cache slots (b * capacity + j) new token i of row b attends to: committed slots, its ancestors among the new
   * tokens, itself; minus keys at positions <= pos - window. Returns the count.
   */
  #contextSlots(b: number, i: number, pos: number, window: number | null): number {
    const len = this.#len[b];
    const rowBase = b * this.capacity;
    const minPos = window === null ? -Infinity : pos - window; // keys need position > minPos
    let n = 0;
    for (let j = 0; j < len; j++) if (this.#slotPos[rowBase + j] > minPos) this.#ctx[n++] = rowBase + j;
    const anc = this.#isAncestor;
    for (let a = i; a >= 0; a = this.#pendingParents[rowBase + len + a]) anc[a] = 1;
    for (let a = 0; a <= i; a++) {
      if (anc[a]) {
        anc[a] = 0;
        if (this.#slotPos[rowBase + len + a] > minPos) this.#ctx[n++] = rowBase + len + a;
      }
    }
    return n;
  }

  /**
   * Attention of one new token, every head, over the #ctx[0 .. nCtx) slots: scores q·k (float32, fixed
   * order), softmax of scores * scale (float32, kernels/attention.wat), then the probability-weighted sum
   * of values (float32, in slot order). q and out are [.., heads*hd] at qBase.
   */
  #attendToken(
    kc: Float32Array,
    vc: Float32Array,
    q: Float32Array,
    out: Float32Array,
    qBase: number,
    nCtx: number,
    scale: number,
  ): void {
    const c = this.#c, a = this.#att;
    const hd = c.headDim, heads = c.numHeads, groups = heads / c.numKvHeads;
    const qTok = this.#qTok, attTok = this.#attTok;
    qTok.set(q.subarray(qBase, qBase + heads * hd));
    // head-major caches: a kv head's slots are hd floats apart, the heads batch * capacity slots apart
    const headStride = this.batch * this.capacity * hd;
    a.attend(qTok, kc, vc, this.#ctx, nCtx, hd, headStride, hd, heads, groups, scale, this.#scores, attTok);
    out.set(attTok, qBase);
  }

  commit(keep: (Int32Array | null)[]): void {
    this.#weights();
    if (keep.length !== this.batch) {
      throw new Error(`cpu: commit got ${keep.length} rows, the session has batch ${this.batch}`);
    }
    // Validate every row before changing any, so a bad call leaves the session untouched.
    for (let b = 0; b < this.batch; b++) {
      const k = keep[b], n = this.#pending[b];
      const count = k ? k.length : n;
      const base = b * this.capacity + this.#len[b];
      for (let j = 0; j < count; j++) {
        const idx = k ? k[j] : j;
        if (!(idx >= 0 && idx < n)) {
          throw new Error(`cpu: commit row ${b}: index ${idx} is not one of its ${n} pending tokens`);
        }
        // The kept tokens must form a chain from the committed tokens, so their cached keys (computed while
        // attending to their ancestors only) equal those of plain sequential decoding.
        const parent = this.#pendingParents[base + idx];
        const want = j === 0 ? -1 : (k ? k[j - 1] : j - 1);
        if (parent !== want) {
          throw new Error(
            `cpu: commit row ${b}: kept token ${idx} has parent ${parent}, expected ${want} ` +
              "(kept tokens must form a path starting at the committed tokens)",
          );
        }
      }
    }
    const hd = this.#c.headDim, kvHeads = this.#c.numKvHeads, slots = this.batch * this.capacity;
    for (let b = 0; b < this.batch; b++) {
      const k = keep[b];
      const base = b * this.capacity + this.#len[b];
      if (k) {
        // Compact in ascending order: destination base+j <= source base+k[j], and every later source lies
        // beyond every earlier destination, so in-place copying never overwrites a slot still to be read.
        for (let j = 0; j < k.length; j++) {
          const src = base + k[j], dst = base + j;
          if (src === dst) continue;
          for (let l = 0; l < this.#c.numLayers; l++) {
            for (let h = 0; h < kvHeads; h++) {
              const to = (h * slots + dst) * hd, from = (h * slots + src) * hd;
              this.#kCache[l].copyWithin(to, from, from + hd);
              this.#vCache[l].copyWithin(to, from, from + hd);
            }
          }
          this.#slotPos[dst] = this.#slotPos[src];
        }
        this.#len[b] += k.length;
      } else {
        this.#len[b] += this.#pending[b];
      }
      this.#pending[b] = 0;
    }
  }

  truncate(row: number, length: number): void {
    this.#weights();
    if (!(Number.isInteger(row) && row >= 0 && row < this.batch)) {
      throw new Error(`cpu: truncate row ${row} is outside the batch of ${this.batch}`);
    }
    if (this.#pending[row] > 0) throw new Error(`cpu: truncate row ${row} while it has pending tokens`);
    if (!(Number.isInteger(length) && length >= 0 && length <= this.#len[row])) {
      throw new Error(`cpu: truncate row ${row} to ${length}; it has ${this.#len[row]} committed tokens`);
    }
    this.#len[row] = length;
  }

  dispose(): void {
    this.#w = null;
    this.#kCache = [];
    this.#vCache = [];
    if (this.#release) {
      arenaBlocks.unregister(this);
      this.#release();
      this.#release = null;
    }
  }
}
