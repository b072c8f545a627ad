/**
 * Execution providers: loads onnxruntime-node or onnxruntime-web and opens an inference session on the
 * chosen provider. Both packages share onnxruntime-common's API, so the rest of the backend sees one
 * `Ort` type.
 *
 * @module
 */
import type * as OrtCommon from "onnxruntime-node";

export type Ort = typeof OrtCommon;
export type OrtSession = OrtCommon.InferenceSession;
export type OrtTensor = OrtCommon.Tensor;

/**
 * Where the ONNX graph runs: "onnx-wasm" (onnxruntime-web, CPU via WASM), "onnx-webgpu" (onnxruntime-web,
 * WebGPU), "onnx-node" (onnxruntime-node, native CPU), "onnx-cuda" (onnxruntime-node, CUDA EP with CPU
 * fallback; needs the CUDA 12 / cuDNN 9 provider libraries, see cudaLibraryProblem).
 */
export type ProviderName = "onnx-wasm" | "onnx-webgpu" | "onnx-node" | "onnx-cuda";
export const PROVIDERS: ProviderName[] = ["onnx-wasm", "onnx-webgpu", "onnx-node", "onnx-cuda"];

export interface RuntimeOptions {
  provider: ProviderName;
  /** Intra-op threads (node: intraOpNumThreads; wasm: ort.env.wasm.numThreads). Default: the runtime's. */
  threads?: number;
  /**
   * onnxruntime-node: let idle intra-op workers spin for the next op (ORT's default; true here too). The
   * target keeps it: between ops of one forward pass a sleeping worker costs a wake-up each time (measured
   * on 2 cores: autoregression 1.4x faster spinning). Sessions that alternate with the target and run on
   * several threads turn it off, or their workers and the target's would poll against each other.
   */
  spin?: boolean;
  /**
   * onnxruntime-web: the URL of the folder holding its `.wasm` files (ort.env.wasm.wasmPaths). Default: the
   * package's own dist folder under Deno; in a browser bundle, the folder of the bundle itself (where
   * tools/build_web.ts copies them). Taken from the first web session opened.
   */
  wasmPaths?: string;
}

/** A model to open: a path on disk (with its external data file beside it) or bytes in memory. */
export interface ModelSource {
  path: string;
  /** External data file name (relative to the model) and its path, when weights are external. */
  external: { name: string; path: string } | null;
}

let webOrt: Ort | null = null;

/** The folder of onnxruntime-web's dist files as this runtime resolves the package, or null (a bundle). */
function webDistDir(): string | null {
  try {
    return new URL("./", import.meta.resolve("onnxruntime-web/webgpu")).href;
  } catch {
    return null; // a browser without an import map: the bundle's ORT finds its .wasm next to itself
  }
}

async function loadWeb(threads: number | undefined, wasmPaths: string | undefined): Promise<Ort> {
  if (webOrt) return webOrt;
  // The WebGPU-capable build also runs the WASM EP. Its .wasm/.mjs helpers are found next to the package.
  const ort = (await import("onnxruntime-web/webgpu")) as unknown as Ort;
  const env = ort.env as unknown as { wasm: Record<string, unknown> };
  const distDir = wasmPaths ?? webDistDir();
  if (distDir !== null) env.wasm.wasmPaths = distDir;
  env.wasm.simd = true;
  env.wasm.numThreads = threads ?? 1;
  (ort.env as unknown as { logLevel: string }).logLevel = "error";
  webOrt = ort;
  return ort;
}

async function loadNode(): Promise<Ort> {
  try {
    return (await import("onnxruntime-node")) as unknown as Ort;
  } catch (e) {
    throw new Error(
      `onnx-node: could not load onnxruntime-node (${(e as Error).message}). ` +
        `Deno needs --allow-ffi (or -A) for its native addon.`,
    );
  }
}

/** Where onnxruntime-node keeps its native libraries (for the CUDA check). */
function nodeBinDir(): string | null {
  try {
    const pkg = new URL(import.meta.resolve("onnxruntime-node"));
    // .../onnxruntime-node/dist/index.js -> .../onnxruntime-node/bin/napi-v6/linux/x64/
    const root = new URL("../", pkg);
    for (const napi of ["napi-v6", "napi-v3"]) {
      const dir = new URL(
        `bin/${napi}/${Deno.build.os}/${Deno.build.arch === "x86_64" ? "x64" : "arm64"}/`,
        root,
      );
      try {
        Deno.statSync(dir);
        return dir.pathname;
      } catch { /* try next */ }
    }
  } catch { /* not resolvable */ }
  return null;
}

/**
 * Why the CUDA EP cannot load, or null when its provider libraries are in place. (CUDA 12 / cuDNN 9
 * themselves are only found when the session is created.)
 */
export function cudaLibraryProblem(): string | null {
  const dir = nodeBinDir();
  const has = (f: string) => {
    try {
      Deno.statSync(`${dir}/${f}`);
      return true;
    } catch {
      return false;
    }
  };
  if (dir && has("libonnxruntime_providers_cuda.so") && has("libonnxruntime_providers_shared.so")) {
    return null;
  }
  return `onnx-cuda: libonnxruntime_providers_cuda.so / libonnxruntime_providers_shared.so not found in ` +
    `${dir ?? "onnxruntime-node's bin directory"}. onnxruntime-node downloads them in its npm install ` +
    `script, which Deno skips. Install them: run \`deno approve-scripts\` (or \`npm install ` +
    `onnxruntime-node\` with network access) on a Linux x64 machine, or copy both .so files from the ` +
    `onnxruntime-gpu 1.30 release (NuGet Microsoft.ML.OnnxRuntime.Gpu.Linux, or pip onnxruntime-gpu==1.30.0: ` +
    `onnxruntime/capi/) into that directory. They need CUDA 12 (libcudart.so.12, libcublas.so.12, ` +
    `libcublasLt.so.12, libcufft.so.11) and cuDNN 9 (libcudnn.so.9) on the loader path (LD_LIBRARY_PATH), ` +
    `e.g. from pip nvidia-cuda-runtime-cu12, nvidia-cublas-cu12, nvidia-cufft-cu12, nvidia-cudnn-cu12.`;
}

function checkCuda(): void {
  const problem = cudaLibraryProblem();
  if (problem) throw new Error(problem);
}

export async function loadOrt(opts: RuntimeOptions): Promise<Ort> {
  switch (opts.provider) {
    case "onnx-node":
      return await loadNode();
    case "onnx-cuda":
      checkCuda();
      return await loadNode();
    case "onnx-wasm":
      return await loadWeb(opts.threads, opts.wasmPaths);
    case "onnx-webgpu": {
      const gpu = (navigator as unknown as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
      if (!gpu) {
        throw new Error("onnx-webgpu: navigator.gpu is missing (Deno: run with --unstable-webgpu)");
      }
      const adapter = await gpu.requestAdapter();
      if (!adapter) {
        throw new Error(
          "onnx-webgpu: no WebGPU adapter found (on Linux without a GPU: apt-get install -y mesa-vulkan-drivers " +
            "for the lavapipe CPU adapter; in Chromium without a GPU: --enable-unsafe-webgpu " +
            "--use-webgpu-adapter=swiftshader)",
        );
      }
      return await loadWeb(opts.threads, opts.wasmPaths);
    }
    default:
      throw new Error(
        `unknown ONNX provider ${(opts as { provider: string }).provider}; use one of ${PROVIDERS}`,
      );
  }
}

/**
 * Open a session for the model on the provider: a file on disk, or a graph already in memory (small graphs
 * built at load time, with inline weights).
 */
export async function openSession(
  ort: Ort,
  src: ModelSource | Uint8Array,
  opts: RuntimeOptions & { extra?: Record<string, unknown> },
): Promise<OrtSession> {
  // logSeverityLevel 3: errors only (ORT warns that shape ops stay on the CPU, which is expected).
  const common: Record<string, unknown> = {
    graphOptimizationLevel: "all",
    logSeverityLevel: 3,
    ...opts.extra,
  };
  if (opts.provider === "onnx-node" || opts.provider === "onnx-cuda") {
    if (opts.threads) common.intraOpNumThreads = opts.threads;
    if (opts.spin === false && opts.threads !== 1) {
      common.extra = { session: { intra_op: { allow_spinning: "0" } } };
    }
    common.executionProviders = opts.provider === "onnx-cuda" ? ["cuda", "cpu"] : ["cpu"];
    try {
      return src instanceof Uint8Array
        ? await ort.InferenceSession.create(src, common)
        : await ort.InferenceSession.create(src.path, common);
    } catch (e) {
      if (opts.provider === "onnx-cuda") {
        throw new Error(
          `onnx-cuda: could not create a CUDA session (${(e as Error).message}). Check that CUDA 12 ` +
            `(libcudart.so.12, libcublas*.so.12) and cuDNN 9 (libcudnn.so.9) are on LD_LIBRARY_PATH.`,
        );
      }
      throw e;
    }
  }
  // onnxruntime-web takes bytes; external weights go in as externalData entries.
  const bytes = src instanceof Uint8Array ? src : Deno.readFileSync(src.path);
  common.executionProviders = opts.provider === "onnx-webgpu" ? ["webgpu"] : ["wasm"];
  if (!(src instanceof Uint8Array) && src.external) {
    common.externalData = [{ path: src.external.name, data: Deno.readFileSync(src.external.path) }];
  }
  return serialized(await ort.InferenceSession.create(bytes, common));
}

/** Tail of the queue of onnxruntime-web runs. */
let webQueue: Promise<unknown> = Promise.resolve();

/**
 * onnxruntime-web runs every session in one WASM instance that cannot run two sessions at once (concurrent
 * runs corrupt its heap). A queued WebGPU KV commit and a drafter step can overlap, so web sessions' runs
 * go through one queue.
 */
function serialized(session: OrtSession): OrtSession {
  const run = session.run.bind(session) as (...args: unknown[]) => Promise<unknown>;
  (session as unknown as { run: typeof run }).run = (...args: unknown[]) => {
    const p = webQueue.then(() => run(...args));
    webQueue = p.catch(() => {});
    return p;
  };
  return session;
}
