/**
 * The KV cache on the WebGPU device (onnx-webgpu). The target session returns present.* as GPU buffers
 * (`preferredOutputLocation: "gpu-buffer"`); they stay pending until `commit`, which runs a small gather
 * graph on the device that writes the next cache in one pass for every layer:
 *
 *   next[b, h, t, :] = concat(past, present)[b, h, slots[b, t], :]      (GatherElements along the slot axis)
 *
 * with slots[b, t] = t for committed slots, P + i for the i-th kept pending token, and a stale in-range slot
 * (masked out by the session) elsewhere. Nothing but the slot map crosses between JS and the device; the
 * commit is queued (TargetSession.commit is synchronous) and the next forward waits for it.
 *
 * @module
 */
import type { ModelConfig } from "../../core/types.ts";
import { GraphBuilder } from "./graph.ts";
import { DataType, toBytes } from "./proto.ts";
import { openSession, type Ort, type OrtSession, type OrtTensor, type ProviderName } from "./runtime.ts";
import { KV_BUCKET, type KvCache } from "./session.ts";

/**
 * The gather graph: inputs past.L.{key,value} [B,kvH,P,D], new.L.{key,value} [B,kvH,S,D], slots
 * [B,1,P2,1] int64; outputs next.L.{key,value} [B,kvH,P2,D].
 */
export function buildKvGatherGraph(config: ModelConfig): GraphBuilder {
  const { numLayers, numKvHeads: kvH, headDim: D } = config;
  const g = new GraphBuilder(null);
  const kv = (name: string, len: string) =>
    g.input({ name, dataType: DataType.FLOAT, shape: ["batch", kvH, len, D] });
  const ins: [string, string][] = [];
  for (let l = 0; l < numLayers; l++) {
    for (const part of ["key", "value"]) {
      ins.push([kv(`past.${l}.${part}`, "past"), kv(`new.${l}.${part}`, "seq")]);
    }
  }
  const slots = g.input({ name: "slots", dataType: DataType.INT64, shape: ["batch", 1, "next", 1] });
  const idx = g.op("Expand", [slots, g.i64([1, kvH, 1, D])]); // [B,kvH,P2,D]
  let i = 0;
  for (let l = 0; l < numLayers; l++) {
    for (const part of ["key", "value"]) {
      const [past, fresh] = ins[i++];
      const all = g.op("Concat", [past, fresh], { axis: 2 });
      g.output(g.op("GatherElements", [all, idx], { axis: 2 }), {
        name: `next.${l}.${part}`,
        dataType: DataType.FLOAT,
        shape: ["batch", kvH, "next", D],
      });
    }
  }
  return g;
}

/** Open the gather graph's session on the provider (every output stays in a GPU buffer). */
export async function openKvGather(
  ort: Ort,
  config: ModelConfig,
  provider: ProviderName,
): Promise<OrtSession> {
  const bytes = toBytes(buildKvGatherGraph(config).encode("redrafter-kv-gather"));
  return await openSession(ort, bytes, { provider, extra: { preferredOutputLocation: "gpu-buffer" } });
}

/** Target-session output locations that keep present.* on the device. */
export function presentOnGpu(config: ModelConfig): Record<string, string> {
  const loc: Record<string, string> = {};
  for (let l = 0; l < config.numLayers; l++) {
    loc[`present.${l}.key`] = "gpu-buffer";
    loc[`present.${l}.value`] = "gpu-buffer";
  }
  return loc;
}

/** Free a tensor's GPU buffer. Tolerates a runtime already torn down (model disposed first). */
function release(t: OrtTensor): void {
  if (t.location !== "gpu-buffer") return;
  try {
    t.dispose();
  } catch { /* the runtime freed it with its session */ }
}

export class GpuKvCache implements KvCache {
  /** Per layer, key then value: [B, kvH, P, D] (CPU zeros until the first commit). */
  private past: OrtTensor[] = [];
  /** present.* of the last forward, same order, until commit. */
  private fresh: OrtTensor[] | null = null;
  private P = KV_BUCKET;
  private inFlight: Promise<void> = Promise.resolve();
  /** No device update in flight. */
  private settled = true;
  private failure: Error | null = null;

  constructor(
    private readonly ort: Ort,
    private readonly gather: OrtSession,
    private readonly cfg: ModelConfig,
    private readonly batch: number,
  ) {
    const { numLayers, numKvHeads: kvH, headDim: D } = cfg;
    const zeros = new Float32Array(batch * kvH * this.P * D);
    for (let i = 0; i < 2 * numLayers; i++) {
      this.past.push(new ort.Tensor("float32", zeros, [batch, kvH, this.P, D]));
    }
  }

  get slots(): number {
    return this.P;
  }

  location(): string {
    return this.past[0]?.location ?? "none";
  }

  async ready(): Promise<void> {
    await this.inFlight;
    if (this.failure) {
      throw new Error(`onnx-webgpu: KV cache update on the device failed: ${this.failure.message}`);
    }
  }

  feed(feeds: Record<string, unknown>): void {
    for (let l = 0; l < this.cfg.numLayers; l++) {
      feeds[`past_key_values.${l}.key`] = this.past[2 * l];
      feeds[`past_key_values.${l}.value`] = this.past[2 * l + 1];
    }
  }

  take(out: Record<string, OrtTensor>, _S: number, _counts: number[], _len: number[]): void {
    this.fresh = [];
    for (let l = 0; l < this.cfg.numLayers; l++) {
      this.fresh.push(out[`present.${l}.key`], out[`present.${l}.value`]);
    }
  }

  commit(plans: (Int32Array | null)[], len: number[]): void {
    const fresh = this.fresh;
    this.fresh = null;
    if (!fresh) return;
    let need = 0, kept = 0;
    for (let b = 0; b < this.batch; b++) {
      const n = plans[b]?.length ?? 0;
      kept += n;
      need = Math.max(need, len[b] + n);
    }
    if (kept === 0) {
      for (const t of fresh) release(t);
      return;
    }
    const P = this.P;
    const P2 = Math.max(P, Math.ceil(need / KV_BUCKET) * KV_BUCKET);
    const slots = new BigInt64Array(this.batch * P2);
    for (let b = 0; b < this.batch; b++) {
      const k = plans[b];
      for (let t = 0; t < P2; t++) {
        const j = t - len[b];
        slots[b * P2 + t] = BigInt(k && j >= 0 && j < k.length ? P + k[j] : t < P ? t : 0);
      }
    }
    const feeds: Record<string, OrtTensor> = {
      slots: new this.ort.Tensor("int64", slots, [this.batch, 1, P2, 1]),
    };
    let i = 0;
    for (let l = 0; l < this.cfg.numLayers; l++) {
      for (const part of ["key", "value"]) {
        feeds[`past.${l}.${part}`] = this.past[i];
        feeds[`new.${l}.${part}`] = fresh[i];
        i++;
      }
    }
    const old = this.past;
    const prev = this.inFlight;
    this.P = P2;
    this.settled = false;
    this.inFlight = (async () => {
      await prev;
      try {
        const out = await this.gather.run(feeds) as Record<string, OrtTensor>;
        const next: OrtTensor[] = [];
        for (let l = 0; l < this.cfg.numLayers; l++) next.push(out[`next.${l}.key`], out[`next.${l}.value`]);
        this.past = next;
      } catch (e) {
        this.failure = e as Error;
      } finally {
        for (const t of [...old, ...fresh]) release(t);
        this.settled = true;
      }
    })();
  }

  dispose(): void {
    const fresh = this.fresh;
    this.fresh = null;
    const free = () => {
      for (const t of [...this.past, ...(fresh ?? [])]) release(t);
      this.past = [];
    };
    if (this.settled) free();
    else void this.inFlight.then(free);
  }
}
