/**
 * TargetSession over an ONNX Runtime session whose graph comes from build_target.ts.
 *
 * The KV cache is a `KvCache`: `CpuKvCache` (below) keeps it in JS memory, one buffer per layer for keys and
 * one for values, laid out [B, kvH, P, D] so it can be handed to the graph as `past_key_values.L.*` without
 * copying. P is a bucket (multiple of KV_BUCKET) at least as large as every row's committed + pending
 * length; growing it re-lays the buffers out. Slots at or beyond a row's committed length hold stale or
 * pending data and are masked out. `GpuKvCache` (gpu_kv.ts) keeps it in WebGPU buffers instead.
 *
 * A forward call pads rows to the longest row's token count S (dummy tokens that attend only to themselves),
 * writes the new tokens' keys/values into each row's pending slots, and remembers the tree so that `commit`
 * can keep a path of them: kept slots are moved down, in order, to follow the committed ones.
 *
 * @module
 */
import type { ForwardOutput, ForwardRequest, ModelConfig, TargetSession } from "../../core/types.ts";
import { MASK_NEG } from "./build_target.ts";
import type { Ort, OrtSession, OrtTensor } from "./runtime.ts";

/** Past-length granularity: the cache buffers grow in steps of this many slots. */
export const KV_BUCKET = 32;

/**
 * Where the past keys/values live. The session owns lengths, tree bookkeeping and masks; the cache owns the
 * tensors. Physical slot t of row b holds its committed token t for t < length; a forward's new tokens are
 * pending until `commit` keeps a subset of them (in order) right after the committed ones.
 */
export interface KvCache {
  /** Past slots per row the next forward is fed (P of the attention mask). */
  readonly slots: number;
  /** Resolves when updates still in flight (device-side commits) are done. */
  ready(): Promise<void>;
  /** Add `past_key_values.L.key/value` [B, kvH, P, D] to the feeds. */
  feed(feeds: Record<string, unknown>): void;
  /** Take the forward's present.* [B, kvH, S, D]: counts[b] new tokens of row b, pending after len[b]. */
  take(out: Record<string, OrtTensor>, S: number, counts: number[], len: number[]): void;
  /** Where the past tensors live now ("cpu", "gpu-buffer"), for tests and diagnostics. */
  location(): string;
  /** Keep plans[b] (indices of pending tokens of row b, ascending; null: the row has none pending). */
  commit(plans: (Int32Array | null)[], len: number[]): void;
  dispose(): void;
}

/** The KV cache in JS memory (onnx-node, onnx-wasm, onnx-cuda). */
export class CpuKvCache implements KvCache {
  /** Per layer [B, kvH, P, D] keys / values. */
  private keys: Float32Array[] = [];
  private values: Float32Array[] = [];
  private P = 0;

  constructor(private readonly ort: Ort, private readonly cfg: ModelConfig, private readonly batch: number) {
    this.grow(0);
  }

  get slots(): number {
    return this.P;
  }

  location(): string {
    return "cpu";
  }

  ready(): Promise<void> {
    return Promise.resolve();
  }

  /** Make the buffers hold at least `need` slots per row (rounded up to the bucket). */
  private grow(need: number): void {
    const newP = Math.max(KV_BUCKET, Math.ceil(need / KV_BUCKET) * KV_BUCKET);
    if (newP <= this.P && this.keys.length > 0) return;
    const { numLayers, numKvHeads: kvH, headDim: D } = this.cfg;
    const oldP = this.P;
    for (let l = 0; l < numLayers; l++) {
      for (const list of [this.keys, this.values]) {
        const old = list[l];
        const buf = new Float32Array(this.batch * kvH * newP * D);
        if (old) {
          for (let bh = 0; bh < this.batch * kvH; bh++) {
            buf.set(old.subarray(bh * oldP * D, (bh + 1) * oldP * D), bh * newP * D);
          }
        }
        list[l] = buf;
      }
    }
    this.P = newP;
  }

  feed(feeds: Record<string, unknown>): void {
    const { numLayers, numKvHeads: kvH, headDim: D } = this.cfg;
    const T_ = this.ort.Tensor;
    for (let l = 0; l < numLayers; l++) {
      feeds[`past_key_values.${l}.key`] = new T_("float32", this.keys[l], [this.batch, kvH, this.P, D]);
      feeds[`past_key_values.${l}.value`] = new T_("float32", this.values[l], [this.batch, kvH, this.P, D]);
    }
  }

  take(out: Record<string, OrtTensor>, S: number, counts: number[], len: number[]): void {
    const { numLayers, numKvHeads: kvH, headDim: D } = this.cfg;
    let need = 0;
    for (let b = 0; b < this.batch; b++) need = Math.max(need, len[b] + counts[b]);
    this.grow(need);
    const P2 = this.P;
    for (let l = 0; l < numLayers; l++) {
      const nk = out[`present.${l}.key`].data as Float32Array; // [B,kvH,S,D]
      const nv = out[`present.${l}.value`].data as Float32Array;
      for (let b = 0; b < this.batch; b++) {
        const n = counts[b];
        if (n === 0) continue;
        for (let h = 0; h < kvH; h++) {
          const src = ((b * kvH + h) * S) * D;
          const dst = ((b * kvH + h) * P2 + len[b]) * D;
          this.keys[l].set(nk.subarray(src, src + n * D), dst);
          this.values[l].set(nv.subarray(src, src + n * D), dst);
        }
      }
    }
  }

  commit(plans: (Int32Array | null)[], len: number[]): void {
    const { numLayers, numKvHeads: kvH, headDim: D } = this.cfg;
    for (let b = 0; b < this.batch; b++) {
      const k = plans[b];
      if (!k) continue;
      for (let j = 0; j < k.length; j++) {
        const from = len[b] + k[j], to = len[b] + j;
        if (from === to) continue;
        for (let l = 0; l < numLayers; l++) {
          for (let h = 0; h < kvH; h++) {
            const base = (b * kvH + h) * this.P;
            this.keys[l].copyWithin((base + to) * D, (base + from) * D, (base + from + 1) * D);
            this.values[l].copyWithin((base + to) * D, (base + from) * D, (base + from + 1) * D);
          }
        }
      }
    }
  }

  dispose(): void {
    this.keys = [];
    this.values = [];
  }
}

interface Pending {
  count: number;
  parents: Int32Array;
}

export class OnnxTargetSession implements TargetSession {
  readonly batch: number;
  readonly capacity: number;
  private readonly cfg: ModelConfig;
  /** Committed length per row. */
  private len: number[];
  /** RoPE position of every slot, [B, capacity] (for the sliding-window mask). */
  private slotPos: Int32Array;
  private readonly kv: KvCache;
  private pending: (Pending | null)[];
  private disposed = false;
  /** Serializes forward calls (onnxruntime sessions are not re-entrant across our cache updates). */
  private busy = false;

  constructor(
    private readonly ort: Ort,
    private readonly session: OrtSession | Promise<OrtSession>,
    config: ModelConfig,
    batch: number,
    capacity: number,
    kv?: KvCache,
    /** The graph uses GroupQueryAttention (build_target.ts): batch 1, GQA's mask layout and inputs. */
    private readonly gqa = false,
    /**
     * Read back one packed output (packed_topk / packed_logits) instead of hidden_states + top_* / logits:
     * on WebGPU each output read back is its own GPU -> CPU map. Token ids come as float32 there, so the
     * vocabulary must stay within 2^24.
     */
    private readonly packed = false,
  ) {
    if (!Number.isInteger(batch) || batch < 1) throw new Error(`createSession: batch ${batch} must be >= 1`);
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new Error(`createSession: capacity ${capacity} must be >= 1`);
    }
    if (gqa && batch !== 1) {
      throw new Error(`createSession: a GroupQueryAttention graph serves batch 1, not ${batch}`);
    }
    this.cfg = config;
    if (packed && config.vocabSize > 2 ** 24) {
      throw new Error(
        `createSession: packed read-back needs a vocabulary within 2^24, not ${config.vocabSize}`,
      );
    }
    this.batch = batch;
    this.capacity = capacity;
    this.len = new Array(batch).fill(0);
    this.pending = new Array(batch).fill(null);
    this.slotPos = new Int32Array(batch * capacity);
    this.kv = kv ?? new CpuKvCache(ort, config, batch);
  }

  lengths(): number[] {
    return this.len.slice();
  }

  /** Where the KV cache lives ("cpu", or "gpu-buffer" on WebGPU once a commit has run). */
  kvLocation(): string {
    return this.kv.location();
  }

  private check(): void {
    if (this.disposed) throw new Error("session is disposed");
  }

  async forward(req: ForwardRequest): Promise<ForwardOutput> {
    this.check();
    if (this.busy) throw new Error("forward: another forward call on this session is still running");
    if (req.rows.length !== this.batch) {
      throw new Error(`forward: got ${req.rows.length} rows for a session of batch ${this.batch}`);
    }
    const B = this.batch;
    const parentsOf: Int32Array[] = [];
    let S = 0;
    for (let b = 0; b < B; b++) {
      if (this.pending[b]) {
        throw new Error(`forward: row ${b} has pending tokens; call commit() first`);
      }
      const r = req.rows[b];
      const n = r.tokens.length;
      if (r.positions.length !== n) {
        throw new Error(`forward: row ${b} has ${n} tokens but ${r.positions.length} positions`);
      }
      if (this.len[b] + n > this.capacity) {
        throw new Error(
          `forward: row ${b} would hold ${this.len[b] + n} tokens, over capacity ${this.capacity}`,
        );
      }
      const parents = r.parents ?? Int32Array.from({ length: n }, (_, i) => i - 1);
      if (parents.length !== n) {
        throw new Error(`forward: row ${b} has ${n} tokens but ${parents.length} parents`);
      }
      for (let i = 0; i < n; i++) {
        if (parents[i] < -1 || parents[i] >= i) {
          throw new Error(`forward: row ${b} parents[${i}] = ${parents[i]} must be in [-1, ${i - 1}]`);
        }
        const t = r.tokens[i];
        if (t < 0 || t >= this.cfg.vocabSize) {
          throw new Error(
            `forward: row ${b} token ${t} is outside the vocabulary (0..${this.cfg.vocabSize - 1})`,
          );
        }
      }
      if (r.logitIndices) {
        for (const i of r.logitIndices) {
          if (i < 0 || i >= n) {
            throw new Error(`forward: row ${b} logitIndices entry ${i} is not in [0, ${n})`);
          }
        }
      }
      parentsOf.push(parents);
      S = Math.max(S, n);
    }
    if (S === 0) {
      return { hidden: req.rows.map(() => new Float32Array(0)) };
    }
    const { numLayers, hiddenSize: H, vocabSize: V } = this.cfg;
    const window = this.cfg.slidingWindow;
    this.busy = true;
    try {
      await this.kv.ready();
    } finally {
      this.busy = false;
    }
    // Key slots the mask covers: every past slot then the new tokens, or (GQA) the committed ones then the
    // new tokens, which is where GQA reads them from.
    const P = this.gqa ? this.len[0] : this.kv.slots;
    const T = P + S;

    const ids = new BigInt64Array(B * S);
    const pos = new BigInt64Array(B * S);
    const mask = new Float32Array(B * S * T).fill(MASK_NEG);
    for (let b = 0; b < B; b++) {
      const r = req.rows[b];
      const n = r.tokens.length;
      const parents = parentsOf[b];
      const L = this.len[b];
      for (let i = 0; i < S; i++) {
        const m = (b * S + i) * T;
        if (i >= n) {
          // Padding: a dummy token that sees only itself, so its softmax stays finite.
          mask[m + P + i] = 0;
          continue;
        }
        ids[b * S + i] = BigInt(r.tokens[i]);
        const qp = r.positions[i];
        pos[b * S + i] = BigInt(qp);
        for (let t = 0; t < L; t++) {
          if (window === null || qp - this.slotPos[b * this.capacity + t] < window) mask[m + t] = 0;
        }
        for (let j = i; j !== -1; j = parents[j]) {
          if (window === null || qp - r.positions[j] < window) mask[m + P + j] = 0;
        }
      }
    }

    // Logit rows, flat over the padded batch.
    const wantLogits = req.logits.kind !== "none";
    const perRow: number[][] = [];
    const flat: bigint[] = [];
    for (let b = 0; b < B; b++) {
      const r = req.rows[b];
      const idx = !wantLogits || r.tokens.length === 0
        ? []
        : r.logitIndices
        ? Array.from(r.logitIndices)
        : Array.from({ length: r.tokens.length }, (_, i) => i);
      perRow.push(idx);
      for (const i of idx) flat.push(BigInt(b * S + i));
    }
    if (flat.length === 0) flat.push(0n); // the graph always computes at least one row
    const k = req.logits.kind === "topk" ? req.logits.k : 1;
    if (!Number.isInteger(k) || k < 1 || k > V) {
      throw new Error(`forward: topk k = ${k} must be in [1, ${V}]`);
    }

    const T_ = this.ort.Tensor;
    const feeds: Record<string, OrtTensor> = {
      input_ids: new T_("int64", ids, [B, S]),
      position_ids: new T_("int64", pos, [B, S]),
      attention_mask: new T_("float32", mask, [B, 1, S, T]),
      logits_index: new T_("int64", BigInt64Array.from(flat), [flat.length]),
      top_k: new T_("int64", BigInt64Array.from([BigInt(k)]), [1]),
    };
    if (this.gqa) {
      feeds.seqlens_k = new T_("int32", Int32Array.from([T - 1]), [1]);
      feeds.total_sequence_length = new T_("int32", Int32Array.from([T]), []);
    }
    this.kv.feed(feeds);
    const fetchNames: string[] = [];
    for (let l = 0; l < numLayers; l++) fetchNames.push(`present.${l}.key`, `present.${l}.value`);
    const kind = req.logits.kind;
    if (this.packed && kind !== "none") fetchNames.push(kind === "full" ? "packed_logits" : "packed_topk");
    else {
      fetchNames.push("hidden_states");
      if (kind === "full") fetchNames.push("logits");
      if (kind === "topk") fetchNames.push("top_values", "top_ids");
    }

    this.busy = true;
    let out: Record<string, OrtTensor>;
    try {
      out = await (await this.session).run(feeds, fetchNames) as Record<string, OrtTensor>;
    } finally {
      this.busy = false;
    }

    // Pending slots: new keys/values go right after each row's committed tokens.
    this.kv.take(out, S, req.rows.map((r) => r.tokens.length), this.len);
    for (let b = 0; b < B; b++) {
      const r = req.rows[b];
      const n = r.tokens.length;
      if (n === 0) continue;
      this.slotPos.set(r.positions, b * this.capacity + this.len[b]);
      this.pending[b] = { count: n, parents: parentsOf[b] };
    }

    // The packed outputs hold [B*S*H] hidden, then [N*V] logits or [N*k] values + [N*k] ids (build_target.ts).
    const packed = out.packed_topk ?? out.packed_logits;
    const hiddenAll = packed ? (packed.data as Float32Array) : out.hidden_states.data as Float32Array; // [B,S,H]
    const rest = packed ? hiddenAll.subarray(B * S * H) : null;
    const result: ForwardOutput = {
      hidden: req.rows.map((r, b) => hiddenAll.slice(b * S * H, (b * S + r.tokens.length) * H)),
    };
    if (kind === "full") {
      const logits = rest ?? out.logits.data as Float32Array; // [N,V]
      let at = 0;
      result.logits = perRow.map((idx) => {
        const rowLogits = logits.slice(at * V, (at + idx.length) * V);
        at += idx.length;
        return rowLogits;
      });
    } else if (kind === "topk") {
      const n = flat.length;
      const vals = rest ? rest.subarray(0, n * k) : out.top_values.data as Float32Array; // [N,k]
      const topIds = rest ? rest.subarray(n * k, 2 * n * k) : out.top_ids.data as BigInt64Array;
      let at = 0;
      result.topValues = [];
      result.topIds = [];
      for (const idx of perRow) {
        result.topValues.push(vals.slice(at * k, (at + idx.length) * k));
        result.topIds.push(Int32Array.from(topIds.subarray(at * k, (at + idx.length) * k), Number));
        at += idx.length;
      }
    }
    return result;
  }

  commit(keep: (Int32Array | null)[]): void {
    this.check();
    if (keep.length !== this.batch) {
      throw new Error(`commit: got ${keep.length} entries for a session of batch ${this.batch}`);
    }
    // Validate every row before touching any.
    const plans: (Int32Array | null)[] = [];
    for (let b = 0; b < this.batch; b++) {
      const p = this.pending[b];
      const k = keep[b];
      if (!p) {
        if (k && k.length > 0) throw new Error(`commit: row ${b} has no pending tokens to keep`);
        plans.push(null);
        continue;
      }
      if (k === null) {
        plans.push(Int32Array.from({ length: p.count }, (_, i) => i));
        continue;
      }
      const kept = new Set<number>();
      for (let j = 0; j < k.length; j++) {
        const i = k[j];
        if (!Number.isInteger(i) || i < 0 || i >= p.count) {
          throw new Error(`commit: row ${b} keep index ${i} is not among its ${p.count} pending tokens`);
        }
        if (j > 0 && i <= k[j - 1]) throw new Error(`commit: row ${b} keep indices must be ascending`);
        const parent = p.parents[i];
        if (parent !== -1 && !kept.has(parent)) {
          throw new Error(`commit: row ${b} keeps token ${i} without its parent ${parent} (not a tree path)`);
        }
        kept.add(i);
      }
      plans.push(k);
    }
    this.kv.commit(plans, this.len);
    for (let b = 0; b < this.batch; b++) {
      const k = plans[b];
      if (!this.pending[b]) continue;
      this.pending[b] = null;
      if (!k) continue;
      const L = this.len[b];
      for (let j = 0; j < k.length; j++) {
        this.slotPos[b * this.capacity + L + j] = this.slotPos[b * this.capacity + L + k[j]];
      }
      this.len[b] = L + k.length;
    }
  }

  truncate(row: number, length: number): void {
    this.check();
    if (!Number.isInteger(row) || row < 0 || row >= this.batch) {
      throw new Error(`truncate: row ${row} is not in [0, ${this.batch})`);
    }
    if (this.pending[row]) throw new Error(`truncate: row ${row} has pending tokens; call commit() first`);
    if (!Number.isInteger(length) || length < 0 || length > this.len[row]) {
      throw new Error(`truncate: length ${length} is not in [0, ${this.len[row]}] for row ${row}`);
    }
    this.len[row] = length;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.kv.dispose();
  }
}
