/**
 * The recurrent drafter on ONNX Runtime: one graph (build_drafter.ts) runs a whole beam-search step for all
 * B*W beams. The recurrent state never leaves ORT's tensors (fed back as the next step's `state`; on WebGPU
 * it stays in a GPU buffer); JS receives the per-beam top-k lists and each step's log-prob rows (kept for
 * `logProbRow`, which the Apple sampling rule reads synchronously).
 *
 * @module
 */
import type { DrafterConfig, DraftModel, DraftRound, DraftTopK } from "../../core/types.ts";
import { checkRoundArgs, checkStepArgs, type DrafterWeights } from "../../drafter/cpu.ts";
import { type DrafterTarget, readDrafterDir } from "../../drafter/load.ts";
import { type DraftVocabOption, expandLogProbRow } from "../../drafter/vocab.ts";
import { buildDrafterGraph } from "./build_drafter.ts";
import { checkWeightFormat, type WeightFormat } from "./formats.ts";
import { packedReadback } from "./build_target.ts";
import { toBytes } from "./proto.ts";
import { loadOrt, openSession, type OrtTensor, type ProviderName, PROVIDERS } from "./runtime.ts";

/** Options for createOnnxDrafter(): the execution provider, threads and weight format of the drafter graph. */
export interface OnnxDrafterOptions {
  /** Execution provider of the drafter graph (see ProviderName). */
  provider: ProviderName;
  /**
   * Intra-op threads (node) / WASM threads. Default 1 on onnx-node and onnx-cuda: a drafter step is a few
   * small matmuls, and a second thread pool would compete with the target's spinning workers for the cores
   * (measured on 2 cores: target on 2 threads + drafter on 1 ran ReDrafter 1.4-1.5x faster than both on 2
   * threads without spinning). The runtime's choice elsewhere (1 for WASM).
   */
  threads?: number;
  /**
   * Weight storage in the graph. Default "fp32"; "fp16" halves memory, compute stays float32; "q8" / "q4"
   * run every matrix as MatMulNBits (faster on onnx-node, about 12x slower on onnx-wasm). Any of them gives
   * the same generated tokens: the target verifies every draft.
   */
  weights?: WeightFormat;
  /** onnxruntime-web's `.wasm` folder (see RuntimeOptions.wasmPaths). */
  wasmPaths?: string;
  /**
   * Keep the head rows of this many most frequent tokens (`<dir>/draft_vocab.json`; drafter/vocab.ts), or
   * "default" (its default_size, else all), when `src` is a directory. Default: all.
   */
  draftVocab?: DraftVocabOption;
}

/**
 * A DraftModel whose steps run on an ONNX Runtime provider. `src` is an Apple-format checkpoint directory
 * or weights already in memory; the target lends its sizes and input embedding table.
 */
export async function createOnnxDrafter(
  src: string | DrafterWeights,
  target: DrafterTarget,
  opts: OnnxDrafterOptions,
): Promise<DraftModel> {
  if (!PROVIDERS.includes(opts.provider)) {
    throw new Error(`unknown ONNX provider "${opts.provider}"; use one of ${PROVIDERS.join(", ")}`);
  }
  const weights = typeof src === "string" ? readDrafterDir(src, target, opts.draftVocab) : src;
  const cfg: DrafterConfig = weights.config;
  if (cfg.hiddenSize !== target.config.hiddenSize || cfg.vocabSize !== target.config.vocabSize) {
    throw new Error(
      `drafter does not fit the target: drafter hidden_size ${cfg.hiddenSize}, vocab_size ${cfg.vocabSize}; ` +
        `target hidden_size ${target.config.hiddenSize}, vocab_size ${target.config.vocabSize}`,
    );
  }
  const H = cfg.hiddenSize, V = cfg.vocabSize;
  const vocab = weights.draftVocab ?? null; // log_probs columns are these token ids (all V when null)
  const Vd = vocab ? vocab.length : V;
  const ort = await loadOrt(opts);
  const gpu = opts.provider === "onnx-webgpu";
  const packed = packedReadback(opts.provider, V);
  const graph = buildDrafterGraph(weights, target.embeddingTable(), {
    weights: checkWeightFormat(opts.weights ?? "fp32", "drafter weights"),
    packed,
  });
  const bytes = toBytes(graph.encode("redrafter-drafter-step"));
  const native = opts.provider === "onnx-node" || opts.provider === "onnx-cuda";
  const session = await openSession(ort, bytes, {
    ...opts,
    threads: opts.threads ?? (native ? 1 : undefined),
    spin: false, // it alternates with the target (matters only when given several threads)
    // The recurrent state goes straight back in as the next step's input: keep it on the device.
    extra: gpu ? { preferredOutputLocation: { next_state: "gpu-buffer" } } : undefined,
  });
  const fetchNames = packed ? ["next_state", "packed"] : ["next_state", "log_probs", "top_values", "top_ids"];
  const T = ort.Tensor;
  const topKTensors = new Map<number, OrtTensor>();
  let disposed = false;
  let busy = false;
  /** The newest recurrent state; a GPU buffer is freed when the next round (or dispose) replaces it. */
  let live: OrtTensor | null = null;
  const release = (t: OrtTensor | null) => {
    if (t && t.location === "gpu-buffer") t.dispose();
  };

  function beginRound(ctx: Float32Array, batch: number, width: number): DraftRound {
    if (disposed) throw new Error("drafter: used after dispose()");
    checkRoundArgs(ctx, batch, width, H);
    const N = batch * width;
    const contextData = new Float32Array(N * H);
    for (let n = 0; n < N; n++) {
      const b = Math.floor(n / width);
      contextData.set(ctx.subarray(b * H, (b + 1) * H), n * H);
    }
    const context = new T("float32", contextData, [N, H]);
    let state: OrtTensor = new T("float32", new Float32Array(N * H), [N, H]); // zero initial state
    release(live);
    live = state;
    const rows: Float32Array[] = []; // per step: [N * Vd] log-prob rows

    async function step(tokens: Int32Array, parents: Int32Array, k: number): Promise<DraftTopK> {
      if (disposed) throw new Error("drafter: used after dispose()");
      if (busy) throw new Error("drafter.step: another step is still running");
      checkStepArgs(tokens, parents, k, N, Vd, vocab !== null); // k can reach the draft vocabulary, no further
      const tok = new BigInt64Array(N), par = new BigInt64Array(N);
      for (let n = 0; n < N; n++) {
        const t = tokens[n], p = parents[n];
        if (t < 0 || t >= V) {
          throw new Error(`drafter.step: tokens[${n}] = ${t} is outside the vocabulary 0..${V - 1}`);
        }
        if (p < 0 || p >= width) {
          throw new Error(`drafter.step: parents[${n}] = ${p} is outside 0..${width - 1}`);
        }
        tok[n] = BigInt(t);
        par[n] = BigInt(Math.floor(n / width) * width + p);
      }
      let kt = topKTensors.get(k);
      if (!kt) {
        kt = new T("int64", BigInt64Array.of(BigInt(k)), [1]);
        topKTensors.set(k, kt);
      }
      const feeds = {
        tokens: new T("int64", tok, [N]),
        parents: new T("int64", par, [N]),
        state,
        context,
        top_k: kt,
      };
      busy = true;
      let out: Record<string, OrtTensor>;
      try {
        out = await session.run(feeds, fetchNames) as Record<string, OrtTensor>;
      } finally {
        busy = false;
      }
      release(state);
      state = live = out.next_state;
      if (packed) {
        // [N*Vd] log-prob rows, then [N*k] top values and [N*k] top ids (build_drafter.ts).
        const all = out.packed.data as Float32Array;
        rows.push(all.subarray(0, N * Vd));
        const ids = Int32Array.from(all.subarray(N * Vd + N * k, N * Vd + 2 * N * k));
        return { ids, logProbs: all.slice(N * Vd, N * Vd + N * k) };
      }
      rows.push(out.log_probs.data as Float32Array);
      const ids = Int32Array.from(out.top_ids.data as BigInt64Array, Number);
      return { ids, logProbs: out.top_values.data as Float32Array };
    }

    function logProbRow(stepIndex: number, row: number, beam: number): Float32Array {
      if (!Number.isInteger(stepIndex) || stepIndex < 0 || stepIndex >= rows.length) {
        throw new Error(`drafter.logProbRow: step ${stepIndex} not computed (${rows.length} steps so far)`);
      }
      if (row < 0 || row >= batch || beam < 0 || beam >= width) {
        throw new Error(`drafter.logProbRow: row ${row} / beam ${beam} outside ${batch} x ${width}`);
      }
      const n = row * width + beam;
      const lp = rows[stepIndex].subarray(n * Vd, (n + 1) * Vd);
      return vocab ? expandLogProbRow(lp, vocab, V) : lp;
    }

    return { step, logProbRow };
  }

  return {
    config: cfg,
    draftVocab: vocab ? Vd : undefined,
    beginRound,
    dispose() {
      if (disposed) return;
      disposed = true;
      release(live);
      void session.release();
    },
  };
}
