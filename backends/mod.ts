/**
 * Backend selection for the CLIs: `cpu` is the pure-TS reference; the `onnx-*` names load the ONNX Runtime
 * backend (backends/onnx/mod.ts) by a dynamic import, so the CPU path never pulls in onnxruntime and a build
 * without backends/onnx still runs.
 *
 * @module
 */
import type { DraftModel, TargetModel } from "../core/types.ts";
import type { Checkpoint } from "../loader/types.ts";
import { loadDrafter } from "../drafter/load.ts";
import type { CpuDrafterWeights } from "../drafter/cpu.ts";
import type { DraftVocabOption } from "../drafter/vocab.ts";
import { createCpuModel } from "./cpu/mod.ts";
import { WEIGHT_FORMATS, type WeightFormat } from "./onnx/formats.ts";

export const BACKENDS = ["cpu", "onnx-wasm", "onnx-webgpu", "onnx-node", "onnx-cuda"] as const;
export type BackendName = typeof BACKENDS[number];
/** Weight formats of the ONNX target graph (`--onnx-weights`). */
export const ONNX_WEIGHTS = WEIGHT_FORMATS;
/** One of ONNX_WEIGHTS. */
export type OnnxWeights = WeightFormat;
/** Weight formats of the cpu drafter (drafter/cpu.ts CpuDrafterWeights). */
export const CPU_DRAFTER_WEIGHTS = ["fp32", "q8", "q7"] as const;
/** A drafter weight format: an ONNX one, or the cpu drafter's "q7". */
export type DrafterWeightsOption = OnnxWeights | "q7";

export interface LoadTargetOptions {
  /** One of BACKENDS; default "cpu". */
  backend?: string;
  /** Threads: ONNX intra-op threads (default: theirs), or the CPU backend's matmul threads (default: cores). */
  threads?: number;
  /**
   * Weight format of the ONNX target graph: fp32 (default), fp16, or MatMulNBits q4 / q8 (blocks of 32) and
   * q4g128 / q8g128 (blocks of 128: fewer bytes, faster, a little less accurate), q4g128h4 (q4g128 with a
   * 4-bit LM head: faster again, less accurate).
   */
  onnxWeights?: OnnxWeights;
  /**
   * Drafter weights (loadDraftModel): fp32 (as loaded; the default) or q8 on every backend, q7 on the cpu
   * drafter (drafter/cpu.ts), fp16, q4 and the g128 formats on the onnx-* ones. A quantized drafter proposes
   * slightly different drafts; the target still verifies them, so outputs stay exact and only acceptance
   * (and speed) can change.
   */
  drafterWeights?: DrafterWeightsOption;
  /**
   * Drafter threads (loadDraftModel). Default: `threads` for the cpu drafter next to a cpu target, 1 next to
   * onnx-node and onnx-wasm (their intra-op threads spin on the other cores after each run), the machine's
   * cores next to onnx-webgpu; 1 intra-op thread for the onnx-node / onnx-cuda drafter, whose steps are
   * small and whose thread pool would otherwise compete with the target's (backends/onnx/drafter.ts).
   */
  drafterThreads?: number;
  /**
   * Where the drafter runs (loadDraftModel): "cpu" (the WASM drafter, kernels/) or the target's own backend.
   * Default defaultDrafterBackend(backend). Either gives the same generated text.
   */
  drafterBackend?: string;
  /**
   * Draft vocabulary (loadDraftModel): the drafter's head keeps the rows of this many most frequent tokens,
   * ranked by `<drafter dir>/draft_vocab.json` (drafter/vocab.ts), or "default": that file's default_size,
   * else all. Each drafter step gets that much cheaper. Default: the whole vocabulary. Outputs stay exact;
   * only acceptance can change.
   */
  draftVocab?: DraftVocabOption;
}

/**
 * Where the drafter runs when not told: on the CPU (the q8 WASM drafter, kernels/) next to every target
 * but onnx-cuda, whose drafter graph stays on the GPU.
 * - onnx-webgpu: every ORT WebGPU session run ends in a GPU -> CPU read-back, and Deno resolves each one
 *   about 11 ms later however little the GPU did (its mapAsync polls); on an H200 a step of the default
 *   pair took about 80 ms. A drafter step on the GPU paid that too, while the CPU drafter takes well under
 *   a millisecond, so ReDrafter on WebGPU only gains with the drafter on the CPU.
 * - onnx-node, onnx-wasm: a drafter step is a few small matmuls, and ONNX Runtime's per-run cost is much of
 *   it. With the default pair, in one process (tools/profile_default.ts, session 12), the CPU drafter on one
 *   thread cut the draft from 0.37-0.97 to 0.25-0.67 ms per round next to onnx-node (speedup 1.22-1.34x
 *   -> 1.29-1.38x) and from 0.73-1.17 to 0.26-0.45 ms next to onnx-wasm (1.00-1.17x -> 1.09-1.24x).
 */
export function defaultDrafterBackend(backend: string | undefined): BackendName {
  const b = checkBackend(backend ?? "cpu");
  return b === "onnx-cuda" ? b : "cpu";
}

/** A --drafter-backend the target's backend can pair with: "cpu", or that backend itself. */
export function checkDrafterBackend(drafterBackend: string, backend: string | undefined): BackendName {
  const b = checkBackend(backend ?? "cpu");
  if (drafterBackend !== "cpu" && drafterBackend !== b) {
    throw new BackendChoiceError(
      `--drafter-backend must be cpu or the target's --backend (${b}); got '${drafterBackend}'`,
    );
  }
  return drafterBackend as BackendName;
}

/**
 * A backend the caller asked for cannot be used: an unknown name, or one missing from this build. The CLIs
 * report it as a usage error (exit code 2); the message names --backend.
 */
export class BackendChoiceError extends Error {
  override name = "BackendChoiceError";
}

/** The backend name, or a BackendChoiceError naming --backend and the choices. */
export function checkBackend(name: string): BackendName {
  if (!(BACKENDS as readonly string[]).includes(name)) {
    throw new BackendChoiceError(`--backend must be one of ${BACKENDS.join(", ")}; got '${name}'`);
  }
  return name as BackendName;
}

interface OnnxModule {
  createOnnxModel(
    ckpt: Checkpoint,
    opts: { provider: string; threads?: number; weights?: LoadTargetOptions["onnxWeights"] },
  ): Promise<TargetModel>;
  createOnnxDrafter(
    dir: string,
    target: TargetModel,
    opts: {
      provider: string;
      threads?: number;
      weights?: OnnxWeights;
      draftVocab?: DraftVocabOption;
    },
  ): Promise<DraftModel>;
}

/** Load a checkpoint on the chosen backend. */
export async function loadTarget(ckpt: Checkpoint, opts: LoadTargetOptions = {}): Promise<TargetModel> {
  const backend = checkBackend(opts.backend ?? "cpu");
  if (backend === "cpu") return createCpuModel(ckpt, { threads: opts.threads });
  const onnx = await importOnnx(backend);
  if (opts.onnxWeights && !ONNX_WEIGHTS.includes(opts.onnxWeights)) {
    throw new BackendChoiceError(
      `--onnx-weights must be one of ${ONNX_WEIGHTS.join(", ")}; got '${opts.onnxWeights}'`,
    );
  }
  return await onnx.createOnnxModel(ckpt, {
    provider: backend,
    threads: opts.threads,
    weights: opts.onnxWeights,
  });
}

/**
 * A drafter weight format the backend can hold, or a BackendChoiceError naming --drafter-weights: one of
 * ONNX_WEIGHTS on the onnx-* drafters, one of CPU_DRAFTER_WEIGHTS on the cpu drafter.
 */
export function checkDrafterWeights(weights: string, backend: string): LoadTargetOptions["drafterWeights"] {
  const cpu = !backend.startsWith("onnx-");
  const known = [...ONNX_WEIGHTS, "q7"];
  if (!known.includes(weights)) {
    throw new BackendChoiceError(`--drafter-weights must be one of ${known.join(", ")}; got '${weights}'`);
  }
  if (cpu && !(CPU_DRAFTER_WEIGHTS as readonly string[]).includes(weights)) {
    throw new BackendChoiceError(
      `--drafter-weights ${weights} applies to the onnx-* backends; the cpu drafter takes ` +
        CPU_DRAFTER_WEIGHTS.join(", "),
    );
  }
  if (!cpu && weights === "q7") {
    throw new BackendChoiceError(
      `--drafter-weights q7 applies to the cpu drafter (--drafter-backend cpu); an ONNX drafter takes ` +
        ONNX_WEIGHTS.join(", "),
    );
  }
  return weights as LoadTargetOptions["drafterWeights"];
}

/**
 * Load a drafter (Apple's format) next to a target: the CPU drafter on `cpu`, or the drafter's beam-search
 * step as an ONNX graph on the target's execution provider (`drafterBackend`, see defaultDrafterBackend).
 */
export async function loadDraftModel(
  dir: string,
  target: TargetModel,
  opts: LoadTargetOptions = {},
): Promise<DraftModel> {
  const backend = checkBackend(opts.backend ?? "cpu");
  const on = opts.drafterBackend === undefined
    ? defaultDrafterBackend(backend)
    : checkDrafterBackend(opts.drafterBackend, backend);
  const weights = opts.drafterWeights;
  if (weights !== undefined) checkDrafterWeights(weights, on);
  if (on === "cpu") {
    // checkDrafterWeights let only CPU_DRAFTER_WEIGHTS through for cpu. `threads` counts ORT's threads
    // when the target is on ONNX Runtime, so it sets the cpu drafter's only next to a cpu target; next to
    // ORT's CPU providers, whose idle intra-op threads spin on the other cores, the drafter keeps to one
    // thread.
    const cpuWeights = weights as CpuDrafterWeights | undefined;
    const spinning = backend === "onnx-node" || backend === "onnx-wasm";
    return await loadDrafter(dir, target, {
      threads: opts.drafterThreads ?? (backend === "cpu" ? opts.threads : spinning ? 1 : undefined),
      weights: cpuWeights,
      draftVocab: opts.draftVocab,
    });
  }
  const onnx = await importOnnx(backend);
  return await onnx.createOnnxDrafter(dir, target, {
    provider: backend,
    threads: opts.drafterThreads ?? (backend === "onnx-wasm" ? opts.threads : undefined),
    weights: weights as OnnxWeights | undefined, // checkDrafterWeights refused q7 for an ONNX drafter
    draftVocab: opts.draftVocab,
  });
}

async function importOnnx(backend: BackendName): Promise<OnnxModule> {
  // A computed specifier: deno neither type-checks nor preloads it, so builds without backends/onnx work.
  const spec = new URL("./onnx/mod.ts", import.meta.url).href;
  let onnx: OnnxModule;
  try {
    onnx = await import(spec) as OnnxModule;
  } catch (e) {
    const msg = (e as Error).message ?? String(e);
    if (/Module not found|Cannot find module|No such file/i.test(msg)) {
      throw new BackendChoiceError(
        `--backend ${backend} is not available in this build (backends/onnx/mod.ts is missing); use cpu`,
      );
    }
    throw new Error(`--backend ${backend}: cannot load the ONNX backend: ${msg.split("\n")[0]}`);
  }
  return onnx;
}
