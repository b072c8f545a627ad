/**
 * ONNX Runtime backend: builds an ONNX graph from a safetensors checkpoint (no Python), caches it on disk,
 * and runs it on onnxruntime-node (CPU or CUDA) or onnxruntime-web (WASM or WebGPU).
 *
 * @module
 */
import type { ModelConfig, TargetModel, TargetSession } from "../../core/types.ts";
import type { Checkpoint } from "../../loader/types.ts";
import {
  type BuildOptions,
  buildTargetGraph,
  GRAPH_VERSION,
  packedReadback,
  type WeightFormat,
} from "./build_target.ts";
import type { GraphBuilder } from "./graph.ts";
import {
  cudaLibraryProblem,
  loadOrt,
  type ModelSource,
  openSession,
  type OrtSession,
  type ProviderName,
  PROVIDERS,
} from "./runtime.ts";
import { OnnxTargetSession } from "./session.ts";
import { GpuKvCache, openKvGather, presentOnGpu } from "./gpu_kv.ts";
import { type Encoded, toBytes } from "./proto.ts";
import { bytesPerWeight, checkWeightFormat } from "./formats.ts";

export { cudaLibraryProblem, PROVIDERS };
export { quantization, WEIGHT_FORMATS } from "./formats.ts";
export { createOnnxDrafter, type OnnxDrafterOptions } from "./drafter.ts";
export type { ProviderName, WeightFormat };

/** Options for createOnnxModel(): the execution provider and how the graph is built and cached. */
export interface OnnxModelOptions {
  /** Execution provider to run the graph on (see ProviderName). */
  provider: ProviderName;
  /** Intra-op threads. Default: onnxruntime-node's choice (all cores); 1 for WASM. */
  threads?: number;
  /**
   * Where built graphs are cached. Default `.cache/onnx` under the working directory; where there is no file
   * system (a browser) or with null, graphs are built in memory for each model and never written.
   */
  cacheDir?: string | null;
  /** onnxruntime-web's `.wasm` folder (see RuntimeOptions.wasmPaths). */
  wasmPaths?: string;
  /**
   * Weight storage in the graph. Default "fp32". "fp16" halves the file; compute stays float32. "q4" / "q8"
   * (blocks of 32), "q4g128" / "q8g128" (blocks of 128), "q4g128h4" (q4g128 with a 4-bit LM head):
   * projections and LM head block-quantized for
   * MatMulNBits (faster and smaller, not bit-exact: see build_target.ts quantization()).
   */
  weights?: WeightFormat;
  /** Use ORT contrib ops (fused RMSNorm, RotaryEmbedding). Default true. */
  fused?: boolean;
  /** Force weights into an external data file (default: only above ~1.5 GB, the protobuf limit). */
  externalData?: boolean;
  /**
   * Attention subgraph of batch-1 sessions: "standard" (plain ops), "gqa" (com.microsoft
   * GroupQueryAttention), or "auto" (default): gqa on onnx-webgpu, standard elsewhere.
   * - onnx-webgpu: onnxruntime-web pays about 70 us per op it dispatches under Deno (H200, session 9,
   *   tools/webgpu_overhead.ts), so a step costs what its op count costs: the GQA graph has 210 nodes against
   *   322 on the default target, and ran its step 1.20x faster (19.6 against 16.3 tok/s, 5 interleaved
   *   rounds; 1.24x on the random ~107M Llama).
   * - onnx-node: GQA is never faster and 9-10% slower at 300-600 tokens of context (default model, one
   *   process, the two graphs interleaved). onnx-wasm: its GQA kernel is slow past one new token (a
   *   2-token step 30.5 ms against 8.5 ms at 600 tokens).
   * Sessions of batch > 1 always use the standard graph (ORT's CPU GQA refuses several rows of several new
   * tokens over a past); a "gqa" model builds it on first use.
   */
  attention?: "auto" | "gqa" | "standard";
}

/** The attention kind batch-1 sessions get (see OnnxModelOptions.attention). */
export function resolveAttention(
  attention: OnnxModelOptions["attention"],
  fused: boolean,
  provider: ProviderName,
): "gqa" | "standard" {
  const want = attention ?? "auto";
  if (want === "gqa" && !fused) {
    throw new Error(`onnx: attention "gqa" needs fused contrib ops (fused: true)`);
  }
  if (want !== "auto") return want;
  return provider === "onnx-webgpu" && fused ? "gqa" : "standard";
}

/** Graphs whose weights exceed this go to an external data file (protobuf's hard limit is 2 GB). */
const EXTERNAL_THRESHOLD = 1.5e9;
const EXTERNAL_NAME = "model.onnx.data";

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Write an encoded message to a file chunk by chunk (never one giant buffer). */
function writeEncoded(path: string, chunks: Uint8Array[]): void {
  const tmp = `${path}.tmp${Deno.pid}`;
  const f = Deno.openSync(tmp, { write: true, create: true, truncate: true });
  try {
    for (const c of chunks) {
      let done = 0;
      while (done < c.length) done += f.writeSync(c.subarray(done));
    }
  } finally {
    f.close();
  }
  Deno.renameSync(tmp, path);
}

/** Cache key: graph version, build options, normalized config, every tensor's name/dtype/shape, file sizes. */
async function cacheKey(ckpt: Checkpoint, opts: BuildOptions): Promise<string> {
  const t = ckpt.tensors;
  const files = new Set<string>();
  const infos = t.names().sort().map((n) => {
    const i = t.info(n);
    files.add(i.file);
    return [n, i.dtype, i.shape];
  });
  const sizes = [...files].sort().map((f) => {
    try {
      return [f, Deno.statSync(f).size];
    } catch {
      return [f, -1];
    }
  });
  return await sha256Hex(JSON.stringify({ v: GRAPH_VERSION, opts, config: ckpt.config, infos, sizes }));
}

function totalWeightBytes(ckpt: Checkpoint, weights: WeightFormat): number {
  let n = 0;
  for (const name of ckpt.tensors.names()) {
    n += ckpt.tensors.info(name).shape.reduce((a, b) => a * b, 1) * bytesPerWeight(weights);
  }
  return n;
}

function existsSync(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Whether graphs go to a disk cache: a cacheDir that is not null, on a runtime with a file system. */
function diskCache(cacheDir: string | null | undefined): boolean {
  return cacheDir !== null && typeof Deno !== "undefined" && typeof Deno.statSync === "function";
}

/** An error of writing where writing is not allowed: no --allow-write, a read-only file system. */
function unwritable(e: unknown): boolean {
  const errors = Deno.errors as Record<string, unknown>;
  for (const name of ["PermissionDenied", "NotCapable", "NotSupported"]) {
    const cls = errors[name] as (new () => Error) | undefined;
    if (cls && e instanceof cls) return true;
  }
  return (e as { code?: string })?.code === "EROFS";
}

/** The builder's options from a caller's (their defaults filled in), for disk-cached and in-memory graphs. */
function buildOptions(
  opts: { fused?: boolean; attention?: "gqa" | "standard"; packed?: boolean },
  weights: WeightFormat,
  externalFile: string | null,
): BuildOptions {
  return {
    weights,
    fused: opts.fused ?? true,
    attention: opts.attention ?? "standard",
    externalFile,
    packed: opts.packed ?? false,
  };
}

/**
 * The target graph for a checkpoint: from the disk cache (ensureTargetGraph), or built in memory when
 * `cacheDir` is null or there is no file system.
 */
export async function targetGraph(
  ckpt: Checkpoint,
  opts: Omit<Parameters<typeof ensureTargetGraph>[1], "cacheDir"> & { cacheDir?: string | null },
): Promise<ModelSource | Uint8Array> {
  if (diskCache(opts.cacheDir)) {
    try {
      return await ensureTargetGraph(ckpt, { ...opts, cacheDir: opts.cacheDir ?? undefined });
    } catch (e) {
      // A cache that cannot be written (a read-only file system, as on Deno Deploy) is no reason to fail:
      // the graph is built in memory below. Any other error is the caller's.
      if (!unwritable(e)) throw e;
    }
  }
  const weights = checkWeightFormat(opts.weights ?? "fp32", "weights");
  if (opts.externalData || totalWeightBytes(ckpt, weights) > EXTERNAL_THRESHOLD) {
    const gb = EXTERNAL_THRESHOLD / 1e9;
    throw new Error(
      `onnx: ${ckpt.dir}: a graph of more than ${gb} GB of ${weights} weights needs external data, which ` +
        `only a disk cache (cacheDir) holds; choose a smaller weight format (q4, q8)`,
    );
  }
  const g = buildTargetGraph(ckpt.config, ckpt.tensors, buildOptions(opts, weights, null));
  return toBytes(g.encode(`redrafter-${ckpt.config.architecture}`));
}

/** Build (or find in the cache) the target graph for a checkpoint; returns where it lies on disk. */
export async function ensureTargetGraph(
  ckpt: Checkpoint,
  opts: {
    cacheDir?: string;
    weights?: WeightFormat;
    fused?: boolean;
    externalData?: boolean;
    attention?: "gqa" | "standard";
    /** See BuildOptions.packed. */
    packed?: boolean;
  },
): Promise<ModelSource> {
  const weights = checkWeightFormat(opts.weights ?? "fp32", "weights");
  const external = opts.externalData ?? totalWeightBytes(ckpt, weights) > EXTERNAL_THRESHOLD;
  const build = buildOptions(opts, weights, external ? EXTERNAL_NAME : null);
  const dir = `${opts.cacheDir ?? `${Deno.cwd()}/.cache/onnx`}/${await cacheKey(ckpt, build)}`;
  const path = `${dir}/model.onnx`;
  const src: ModelSource = {
    path,
    external: external ? { name: EXTERNAL_NAME, path: `${dir}/${EXTERNAL_NAME}` } : null,
  };
  if (existsSync(path) && (!external || existsSync(src.external!.path))) return src;
  Deno.mkdirSync(dir, { recursive: true });
  const g: GraphBuilder = buildTargetGraph(ckpt.config, ckpt.tensors, build);
  if (external) writeEncoded(src.external!.path, g.externalChunks);
  const model: Encoded = g.encode(`redrafter-${ckpt.config.architecture}`);
  writeEncoded(path, model.chunks);
  return src;
}

/** Load a checkpoint onto an ONNX Runtime execution provider. */
export async function createOnnxModel(ckpt: Checkpoint, opts: OnnxModelOptions): Promise<TargetModel> {
  if (!PROVIDERS.includes(opts.provider)) {
    throw new Error(`unknown ONNX provider "${opts.provider}"; use one of ${PROVIDERS.join(", ")}`);
  }
  const ort = await loadOrt(opts);
  const attention = resolveAttention(opts.attention, opts.fused ?? true, opts.provider);
  const config: ModelConfig = ckpt.config;
  // WebGPU: the KV cache stays on the device (present.* come back as GPU buffers; gpu_kv.ts commits them).
  const gpu = opts.provider === "onnx-webgpu";
  const packed = packedReadback(opts.provider, config.vocabSize);
  const open = async (kind: "gqa" | "standard") =>
    await openSession(ort, await targetGraph(ckpt, { ...opts, attention: kind, packed }), {
      ...opts,
      extra: gpu ? { preferredOutputLocation: presentOnGpu(config) } : undefined,
    });
  const session = await open(attention);
  // Batch > 1 needs the standard graph; with GQA for batch 1 it is opened the first time it is asked for.
  let batched: Promise<OrtSession> | null = attention === "standard" ? Promise.resolve(session) : null;
  const gather = gpu ? await openKvGather(ort, config, opts.provider) : null;
  let embedding: Float32Array | null = null;
  const sessions = new Set<TargetSession>();
  return {
    config,
    backend: opts.provider,
    createSession(batch: number, capacity: number): TargetSession {
      const kv = gather ? new GpuKvCache(ort, gather, config, batch) : undefined;
      const useGqa = attention === "gqa" && batch === 1;
      const s = new OnnxTargetSession(
        ort,
        useGqa ? session : (batched ??= open("standard").catch((e) => {
          batched = null; // let a later session try again
          throw new Error(
            `onnx: a batch of ${batch} needs the standard attention graph, which could not be built or ` +
              `opened (${
                (e as Error).message.split("\n")[0]
              }); keep the checkpoint open until then, or load ` +
              `the model with attention: "standard"`,
          );
        })),
        config,
        batch,
        capacity,
        kv,
        useGqa,
        packed,
      );
      sessions.add(s);
      return s;
    },
    embeddingTable(): Float32Array {
      embedding ??= ckpt.tensors.readF32("model.embed_tokens.weight", [config.vocabSize, config.hiddenSize]);
      return embedding;
    },
    dispose(): void {
      for (const s of sessions) s.dispose();
      sessions.clear();
      void session.release();
      if (batched) {
        void batched.then(async (b) => {
          if (b !== session) await b.release();
        }).catch(() => {});
      }
      if (gather) void gather.release();
    },
  };
}
