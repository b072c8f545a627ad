/**
 * Compute kernels shared by the CPU backend and the CPU drafter (pure compute, no I/O): a float32
 * y = x · Wᵀ (+ b) over a block of tokens, as WebAssembly SIMD128 (kernels/matmul.wat) with a scalar-JS
 * twin (kernels/matmul_js.ts) that gives bit-identical results.
 *
 * Weights must live where the kernel reads them: allocate every weight array with `alloc` and fill it in
 * place. With WASM that is a view of the instance's linear memory, reserved whole up front so it never
 * grows (growing would detach every view already handed out). Activations may be any Float32Array; they
 * are copied through a fixed scratch area in chunks of at most 64 tokens.
 *
 * @module
 */
import { decodeBase64 } from "./base64.ts";
import { dotBf16, dotF32, matmulBf16Js, matmulJs, siluMulJs } from "./matmul_js.ts";
import { MATMUL_SHARED_WASM, MATMUL_WASM, Q7_SHARED_WASM, Q7_WASM } from "./wasm_modules.ts";
import {
  arenaAttention,
  type AttentionArena,
  type AttentionKernels,
  createAttentionArena,
} from "./attention.ts";
import {
  type Kernel,
  KIND_BF16,
  KIND_BF16P2,
  KIND_F32,
  KIND_P2,
  KIND_Q7,
  KIND_Q8,
  MatmulThreads,
  workersReady,
} from "./threads.ts";
import { finishQ8, matmulQ8Js, q8Stride, type Q8Weight, quantizeQ8Into, quantizeRowsI16 } from "./q8.ts";
import { matmulQ7Js, Q7_MAX_COLS, q7Stride, type Q7Weight, quantizeRowsU7 } from "./q7.ts";

export { workersReady };
export { type Q8Weight, quantizeQ8Into };
export { type Q7Weight, quantizeQ7Into, quantizeRowsU7 } from "./q7.ts";

export { dotBf16, dotF32, matmulBf16Js, matmulJs };

/** "auto": WASM SIMD when this runtime has it, else JS. "wasm": WASM SIMD or an error. "js": scalar JS. */
export type KernelChoice = "auto" | "wasm" | "js";

/** Sizes createKernels reserves memory for, and which kernels to use. */
export interface KernelsOptions {
  /**
   * Total float32 elements the caller will alloc(), allocBf16() and allocQ8() (sum of padFloats() of each
   * float32 array, padBf16() of each bf16 array and padQ8() of each int8 matrix).
   */
  weightFloats: number;
  /** Largest inDim any matmul call will use. */
  maxIn: number;
  /** Largest outDim any matmul call will use (wider calls are fine: they run in column chunks). */
  maxOut: number;
  /** Which kernels to use (default "auto"). */
  kernels?: KernelChoice;
  /** Token block of the JS fallback's loop (cache blocking only; results do not depend on it). */
  tokenBlock?: number;
  /** What the weights belong to, for error messages (e.g. a checkpoint directory). */
  label?: string;
  /**
   * Threads that share each WASM matmul (split by output rows; results are bitwise the single-thread
   * ones). Default 1. The JS kernels always run on one thread.
   */
  threads?: number;
}

/** A float32 matmul plus the allocator for the weight memory it reads; made by createKernels(). */
export interface Kernels {
  /** Which implementation "auto" (or the caller) picked; both give bit-identical results. */
  readonly kind: "wasm-simd" | "js";
  /** Threads each matmul runs on. */
  readonly threads: number;
  /** Calls (matmuls, attention) split over worker threads so far (0 with one thread, or before workers run). */
  readonly threadedCalls: number;
  /**
   * Parts of split calls (matmul rows, attention heads) that a worker thread ran so far; the caller runs a
   * part itself when no worker has claimed it by the time its own part is done.
   */
  readonly workerJobs: number;
  /** Stop the worker threads (if any). The kernels keep working, on one thread. */
  dispose(): void;
  /** Send the worker threads (if any) to sleep until the next matmul: call when a burst of calls ends. */
  park(): void;
  /**
   * Attention kernels (as createAttentionKernels(floats, ints)) whose attend splits its query heads over
   * these kernels' threads, each with a score scratch of `scoreFloats`; their arrays live in a shared
   * arena the worker threads read. Null with one thread, the JS kernels, or no shared memory: then use
   * createAttentionKernels. dispose() gives the arrays' memory back to the arena.
   */
  attention(
    floats: number,
    ints: number,
    scoreFloats: number,
  ): (AttentionKernels & { dispose(): void; readonly splits: number }) | null;
  /** A zeroed float32 array the kernels can read as a weight or bias. */
  alloc(length: number): Float32Array;
  /** A zeroed array of bf16 bits (the top halves of float32s) the kernels can read as a matmulBf16 weight. */
  allocBf16(length: number): Uint16Array;
  /**
   * out[t * outDim + o] = x[t * inDim ..] · w[o * inDim ..] (+ bias[o]) for t < n, o < outDim, summed in
   * the fixed order of kernels/matmul.wat (so a token's result never depends on n or its place in the
   * block). `w` and `bias` must come from alloc(); `out` must not overlap `x`.
   */
  matmul(
    out: Float32Array,
    x: Float32Array,
    w: Float32Array,
    bias: Float32Array | null,
    n: number,
    inDim: number,
    outDim: number,
  ): void;
  /**
   * Lay `w` ([rows, cols] row-major, from alloc() or allocBf16()) out in place for the fastest matmul:
   * pairs of rows interleaved in 4-weight chunks, so that a pair is read as one memory stream
   * (kernels/matmul.wat, matmul_p2 / matmul_bf16p2). matmul / matmulBf16 on a packed w give bitwise the
   * same results, but only whole: with outDim = rows and inDim = cols. Read its rows with row(), or a
   * plain copy with unpacked(). Returns false, leaving w as it is, where there is no such layout (the JS
   * kernels).
   */
  pack(w: Float32Array | Uint16Array, rows: number, cols: number): boolean;
  /**
   * SwiGLU's activation, out[i] = silu(gate[i]) * up[i] for i < len, in float32 steps with a float32 e^x
   * (Cephes' expf, within 2 ulp), bitwise the same on both kernel kinds. `out` may alias `gate` or `up`.
   */
  swiglu(out: Float32Array, gate: Float32Array, up: Float32Array, len: number): void;
  /** Copy row r of w ([rows, cols], packed or not; bf16 widened exactly) into out at outOff. */
  row(w: Float32Array | Uint16Array, r: number, cols: number, out: Float32Array, outOff: number): void;
  /** w ([rows, cols]) itself if it is not packed, else a plain row-major copy (an ordinary array). */
  unpacked(w: Float32Array, rows: number, cols: number): Float32Array;
  /**
   * matmul with `w` [outDim * inDim] held as bf16 bits (from allocBf16()): each weight widens exactly to
   * float32, so the result is bitwise matmul's on the widened weights, reading half the weight bytes.
   */
  matmulBf16(
    out: Float32Array,
    x: Float32Array,
    w: Uint16Array,
    bias: Float32Array | null,
    n: number,
    inDim: number,
    outDim: number,
  ): void;
  /** A zeroed int8 matrix [rows, cols] the kernels can read as a matmulQ8 weight (fill: quantizeQ8Into). */
  allocQ8(rows: number, cols: number): Q8Weight;
  /**
   * out ≈ x · wᵀ (+ bias) with `w` int8 (kernels/q8.ts: each x row is quantized to int16, the dot
   * products are exact integers). Approximate, for drafters only; bitwise the same on both kernel kinds
   * and any thread count.
   */
  matmulQ8(
    out: Float32Array,
    x: Float32Array,
    w: Q8Weight,
    bias: Float32Array | null,
    n: number,
    inDim: number,
    outDim: number,
  ): void;
  /**
   * Whether matmulQ7 runs here: WebAssembly relaxed SIMD (kernels/q7.wat), or the JS kernels' exact twin.
   * Without it, use matmulQ8.
   */
  readonly q7: boolean;
  /** A zeroed int8 matrix [rows, cols] the kernels can read as a matmulQ7 weight (fill: quantizeQ7Into). */
  allocQ7(rows: number, cols: number): Q7Weight;
  /**
   * out ≈ x · wᵀ with `w` int8 and each x row quantized to 7 bits (kernels/q7.ts): exact integer dot
   * products, so bitwise the same on both kernel kinds and any thread count. Approximate, for the LM head
   * screen and the q7 drafter; `err` ([2n], optional) receives each row's quantization error as
   * quantizeRowsU7 measures it; `bias` ([outDim], optional) is added in float32 as matmulQ8 adds it.
   * Throws where `q7` is false.
   */
  matmulQ7(
    out: Float32Array,
    x: Float32Array,
    w: Q7Weight,
    n: number,
    inDim: number,
    outDim: number,
    err?: Float64Array,
    bias?: Float32Array | null,
  ): void;
}

/** The default matmul thread count of the CPU backend and drafter: the machine's cores, at most 8. */
export function defaultThreads(): number {
  const n = (globalThis.navigator as { hardwareConcurrency?: number } | undefined)?.hardwareConcurrency ?? 1;
  return Math.max(1, Math.min(8, n));
}

/** alloc(length) uses this many floats of the reservation (arrays start 16-byte aligned). */
export function padFloats(length: number): number {
  return (length + 3) & ~3;
}

/** allocBf16(length) uses this many floats of the reservation (arrays start 16-byte aligned). */
export function padBf16(length: number): number {
  return padFloats(Math.ceil(length / 2));
}

/** allocQ8(rows, cols) uses this many floats of the reservation (codes, then scales). */
export function padQ8(rows: number, cols: number): number {
  return padFloats(Math.ceil((rows * q8Stride(cols)) / 4)) + padFloats(rows);
}

/** Floats allocQ7(rows, cols) takes from the weight memory (codes, then the (scale, row sum) pairs). */
export function padQ7(rows: number, cols: number): number {
  return padFloats(Math.ceil((rows * q7Stride(cols)) / 4)) + padFloats(2 * rows);
}

function checkQ7(w: Q7Weight, inDim: number, outDim: number, n: number, err?: Float64Array): void {
  if (err && err.length < 2 * n) {
    throw new Error(`kernels: matmulQ7's err has ${err.length} elements, need ${2 * n}`);
  }
  if (w.cols !== inDim || w.rows < outDim) {
    throw new Error(`kernels: 7-bit int8 weight is [${w.rows}, ${w.cols}], need [${outDim}, ${inDim}]`);
  }
  if (inDim > Q7_MAX_COLS) {
    throw new Error(`kernels: matmulQ7 takes at most ${Q7_MAX_COLS} inputs, got ${inDim}`);
  }
}

function checkQ8(w: Q8Weight, inDim: number, outDim: number): void {
  if (w.cols !== inDim || w.rows < outDim) {
    throw new Error(`kernels: int8 weight is [${w.rows}, ${w.cols}], need [${outDim}, ${inDim}]`);
  }
}

let simd: boolean | null = null;
let compiled: WebAssembly.Module | null = null;
let compiledShared: WebAssembly.Module | null | undefined;

/** The shared-memory matmul module, or null when this runtime lacks WASM threads. */
function sharedModule(): WebAssembly.Module | null {
  if (compiledShared === undefined) {
    try {
      compiledShared = typeof SharedArrayBuffer === "function"
        ? new WebAssembly.Module(decodeBase64(MATMUL_SHARED_WASM) as Uint8Array<ArrayBuffer>)
        : null;
    } catch {
      compiledShared = null;
    }
  }
  return compiledShared;
}

let q7Compiled: WebAssembly.Module | null | undefined;
let q7CompiledShared: WebAssembly.Module | null | undefined;

/**
 * The matmul_q7 module (shared: over a shared memory), or null where this runtime lacks relaxed SIMD (or,
 * for the shared one, WASM threads).
 */
function q7Module(shared: boolean): WebAssembly.Module | null {
  const compile = (b64: string) => {
    try {
      return new WebAssembly.Module(decodeBase64(b64) as Uint8Array<ArrayBuffer>);
    } catch {
      return null;
    }
  };
  if (shared) {
    return q7CompiledShared === undefined ? (q7CompiledShared = compile(Q7_SHARED_WASM)) : q7CompiledShared;
  }
  return q7Compiled === undefined ? (q7Compiled = compile(Q7_WASM)) : q7Compiled;
}

/** Whether this runtime has WebAssembly relaxed SIMD, which the 7-bit int8 kernel (matmulQ7) needs. */
export function wasmRelaxedSimdSupported(): boolean {
  return q7Module(false) !== null;
}

/** Whether this runtime compiles the WASM SIMD kernels. */
export function wasmSimdSupported(): boolean {
  if (simd === null) {
    try {
      compiled = new WebAssembly.Module(decodeBase64(MATMUL_WASM) as Uint8Array<ArrayBuffer>);
      simd = true;
    } catch {
      simd = false;
    }
  }
  return simd;
}

/** Create the kernels, reserving room for `weightFloats` of weights plus the activation scratch. */
export function createKernels(opts: KernelsOptions): Kernels {
  const choice = opts.kernels ?? "auto";
  if (choice !== "auto" && choice !== "wasm" && choice !== "js") {
    throw new Error(`kernels: unknown kernel choice '${choice}' (expected auto, wasm or js)`);
  }
  const threads = opts.threads ?? 1;
  if (!Number.isInteger(threads) || threads < 1 || threads > 256) {
    throw new Error(`kernels: threads ${threads} must be an integer in [1, 256]`);
  }
  if (choice === "js" || (choice === "auto" && !wasmSimdSupported())) return jsKernels(opts);
  if (!wasmSimdSupported()) {
    throw new Error("kernels: WebAssembly SIMD is not available in this runtime; use kernels 'js'");
  }
  return wasmKernels(opts);
}

function jsKernels(opts: KernelsOptions): Kernels {
  const tokenBlock = opts.tokenBlock ?? 8;
  return {
    kind: "js",
    threads: 1,
    threadedCalls: 0,
    workerJobs: 0,
    dispose() {},
    park() {},
    attention: () => null,
    alloc: (length) => new Float32Array(length),
    pack: () => false,
    swiglu: siluMulJs,
    row: (w, r, cols, out, outOff) => copyRow(w, r * cols, cols, out, outOff),
    unpacked: (w) => w,
    matmul(out, x, w, bias, n, inDim, outDim) {
      checkShapes(out, x, w, bias, n, inDim, outDim);
      matmulJs(out, x, w, bias, n, inDim, outDim, tokenBlock);
    },
    allocBf16: (length) => new Uint16Array(length),
    matmulBf16(out, x, w, bias, n, inDim, outDim) {
      checkShapes(out, x, w, bias, n, inDim, outDim);
      matmulBf16Js(out, x, w, bias, n, inDim, outDim, tokenBlock);
    },
    allocQ8(rows, cols) {
      const stride = q8Stride(cols);
      return { rows, cols, stride, codes: new Int8Array(rows * stride), scales: new Float32Array(rows) };
    },
    matmulQ8(out, x, w, bias, n, inDim, outDim) {
      checkQ8(w, inDim, outDim);
      checkShapes(out, x, w.codes, bias, n, inDim, outDim);
      const xq = new Int16Array(n * w.stride), sx = new Float32Array(n), y = new Float32Array(n * outDim);
      quantizeRowsI16(x, 0, n, inDim, w.stride, xq, sx);
      matmulQ8Js(y, xq, w, n, outDim, outDim);
      finishQ8(out, 0, y, sx, bias, n, outDim, outDim, outDim);
    },
    q7: true,
    allocQ7(rows, cols) {
      const stride = q7Stride(cols);
      return { rows, cols, stride, codes: new Int8Array(rows * stride), meta: new Float32Array(2 * rows) };
    },
    matmulQ7(out, x, w, n, inDim, outDim, err, bias) {
      checkQ7(w, inDim, outDim, n, err);
      checkShapes(out, x, w.codes, bias ?? null, n, inDim, outDim);
      const xu = new Uint8Array(n * w.stride), sx = new Float32Array(n), y = new Float32Array(n * outDim);
      quantizeRowsU7(x, 0, n, inDim, w.stride, xu, sx, err);
      matmulQ7Js(y, xu, w, n, outDim, outDim);
      finishQ8(out, 0, y, sx, bias ?? null, n, outDim, outDim, outDim);
    },
  };
}

/** Int8 matrices of at least this many bytes are streamed two tokens per kernel call (see matmulQ8). */
const Q8_STREAM_BYTES = 8 << 20;
/** Tokens per kernel call: the x / y scratch holds this many rows. */
const CHUNK_TOKENS = 64;
/** Output columns per kernel call at most (the y scratch is CHUNK_TOKENS x this). */
const CHUNK_OUT = 4096;
const PAGE = 65536;
const MAX_PAGES = 65536; // wasm32: 4 GiB

function wasmKernels(opts: KernelsOptions): Kernels {
  // a multiple of 4, so that column chunks start at a row pair of packed weights (and a thread's 4-row block)
  const outChunk = Math.max(4, Math.min(opts.maxOut, CHUNK_OUT) & ~3);
  // (int16 rows of matmulQ8 fit too: 2 * q8Stride(maxIn) bytes <= 4 * max(maxIn, 8))
  const xFloats = padFloats(CHUNK_TOKENS * Math.max(opts.maxIn, 8));
  const yFloats = padFloats(CHUNK_TOKENS * outChunk);
  // layout (bytes): [0, 16) unused so that address 0 can mean "no bias" | weights | x scratch | y scratch
  const weightBytes = opts.weightFloats * 4;
  const totalBytes = 16 + weightBytes + (xFloats + yFloats) * 4;
  const pages = Math.ceil(totalBytes / PAGE);
  if (pages > MAX_PAGES) {
    const gib = (b: number) => (b / 2 ** 30).toFixed(2);
    throw new Error(
      `kernels: ${opts.label ?? "the model"} needs ${gib(weightBytes)} GiB of float32 weights ` +
        `(${opts.weightFloats} floats) plus ${
          gib(totalBytes - weightBytes)
        } GiB of scratch, but WebAssembly ` +
        `memory (wasm32) holds at most 4 GiB; load it with kernels 'js' (plain arrays) instead`,
    );
  }
  const shared = (opts.threads ?? 1) > 1 ? sharedModule() : null;
  let memory: WebAssembly.Memory;
  try {
    memory = new WebAssembly.Memory({ initial: pages, maximum: MAX_PAGES, shared: shared !== null });
  } catch (e) {
    throw new Error(
      `kernels: cannot reserve ${(pages * PAGE / 2 ** 20).toFixed(0)} MiB of WebAssembly memory for ` +
        `${opts.label ?? "the model"}: ${(e as Error).message}`,
    );
  }
  const inst = new WebAssembly.Instance(shared ?? compiled!, { env: { memory } });
  const kernels: Kernel[] = [
    inst.exports.matmul as Kernel,
    inst.exports.matmul_bf16 as Kernel,
    inst.exports.matmul_q8 as Kernel,
    inst.exports.matmul_p2 as Kernel,
    inst.exports.matmul_bf16p2 as Kernel,
  ];
  // matmul_q7 (relaxed SIMD) in its own module over the same memory, where the runtime has it
  const q7mod = q7Module(shared !== null);
  if (q7mod) {
    kernels[KIND_Q7] = new WebAssembly.Instance(q7mod, { env: { memory } }).exports.matmul_q7 as Kernel;
  }
  const siluMul = inst.exports.silu_mul as (g: number, y: number, n: number) => void;
  // Packed weights (pack()) and their shapes: matmul takes them whole only.
  const packed = new WeakMap<Float32Array | Uint16Array, { rows: number; cols: number }>();
  let pool = shared ? new MatmulThreads(opts.threads!, shared, memory, q7mod) : null;
  // With threads, the sessions' attention arrays live in a shared arena, so that the workers run heads too;
  // made by the first attention() call (a drafter's kernels never make one), before the workers start.
  let arena: AttentionArena | null | undefined;
  let splitCalls = 0, workerJobs = 0; // of disposed pools
  const buf = memory.buffer;
  const heap = new Float32Array(buf);
  let next = 16; // bytes
  const weightEnd = 16 + weightBytes;
  const xPtr = weightEnd, yPtr = xPtr + xFloats * 4;
  const sx = new Float32Array(CHUNK_TOKENS);
  const swigluChunk = Math.min(xFloats, yFloats) & ~3; // elements per silu_mul call
  const where = (a: Float32Array | Uint16Array | Int8Array, what: string): number => {
    if (a.buffer !== buf) throw new Error(`kernels: ${what} was not allocated by this Kernels' alloc()`);
    return a.byteOffset;
  };
  return {
    kind: "wasm-simd",
    get threads() {
      return pool ? pool.threads : 1;
    },
    get threadedCalls() {
      return splitCalls + (pool ? pool.splitCalls : 0);
    },
    get workerJobs() {
      return workerJobs + (pool ? pool.workerJobs : 0);
    },
    dispose() {
      if (pool) {
        splitCalls += pool.splitCalls;
        workerJobs += pool.workerJobs;
      }
      pool?.dispose();
      pool = null;
    },
    park() {
      pool?.park();
    },
    attention(floats, ints, scoreFloats) {
      if (!pool) return null;
      if (arena === undefined) {
        arena = createAttentionArena();
        if (arena && !pool.setAttention(arena.module, arena.memory)) arena = null;
      }
      return arena ? arenaAttention(arena, pool, floats, ints, scoreFloats) : null;
    },
    alloc(length) {
      return new Float32Array(buf, reserve(padFloats(length) * 4, `alloc(${length})`), length);
    },
    allocBf16(length) {
      return new Uint16Array(buf, reserve(padBf16(length) * 4, `allocBf16(${length})`), length);
    },
    swiglu(out, gate, up, len) {
      if (gate.length < len || up.length < len || out.length < len) {
        throw new Error(`kernels: swiglu needs ${len} elements in gate, up and out`);
      }
      const g0 = xPtr >> 2, y0 = yPtr >> 2;
      for (let i = 0; i < len; i += swigluChunk) {
        const n = Math.min(swigluChunk, len - i);
        heap.set(gate.subarray(i, i + n), g0);
        heap.set(up.subarray(i, i + n), y0);
        siluMul(xPtr, yPtr, (n + 3) & ~3); // the padding lanes compute on stale scratch, never copied out
        out.set(heap.subarray(y0, y0 + n), i);
      }
    },
    pack(w, rows, cols) {
      where(w, "the weight");
      if (w.length < rows * cols) {
        throw new Error(`kernels: pack: weight has ${w.length} elements, need [${rows}, ${cols}]`);
      }
      if (packed.has(w)) throw new Error("kernels: pack: this weight is packed already");
      const n4 = cols & ~3, tail = cols - n4;
      const pair = w instanceof Float32Array ? new Float32Array(2 * cols) : new Uint16Array(2 * cols);
      for (let r = 0; r + 1 < rows; r += 2) {
        const base = r * cols;
        for (let k = 0; k < n4; k += 4) {
          for (let i = 0; i < 4; i++) {
            pair[2 * k + i] = w[base + k + i];
            pair[2 * k + 4 + i] = w[base + cols + k + i];
          }
        }
        for (let i = 0; i < tail; i++) {
          pair[2 * n4 + i] = w[base + n4 + i];
          pair[2 * n4 + tail + i] = w[base + cols + n4 + i];
        }
        w.set(pair, base);
      }
      packed.set(w, { rows, cols });
      return true;
    },
    row: rowOf,
    unpacked(w, rows, cols) {
      if (!packed.has(w)) return w;
      const plain = new Float32Array(rows * cols);
      for (let r = 0; r < rows; r++) rowOf(w, r, cols, plain, r * cols);
      return plain;
    },
    matmul(out, x, w, bias, n, inDim, outDim) {
      run(isPacked(w, inDim, outDim) ? KIND_P2 : KIND_F32, 4, out, x, w, bias, n, inDim, outDim);
    },
    matmulBf16(out, x, w, bias, n, inDim, outDim) {
      run(isPacked(w, inDim, outDim) ? KIND_BF16P2 : KIND_BF16, 2, out, x, w, bias, n, inDim, outDim);
    },
    allocQ8(rows, cols) {
      const stride = q8Stride(cols);
      const codes = new Int8Array(
        buf,
        reserve(padFloats(Math.ceil((rows * stride) / 4)) * 4, "allocQ8"),
        rows * stride,
      );
      const scales = new Float32Array(buf, reserve(padFloats(rows) * 4, "allocQ8"), rows);
      return { rows, cols, stride, codes, scales };
    },
    matmulQ8(out, x, w, bias, n, inDim, outDim) {
      checkQ8(w, inDim, outDim);
      checkShapes(out, x, w.codes, bias, n, inDim, outDim);
      if (inDim > opts.maxIn) throw new Error(`kernels: inDim ${inDim} exceeds maxIn ${opts.maxIn}`);
      const S = w.stride;
      const wPtr = where(w.codes, "the int8 weight"), sPtr = where(w.scales, "the int8 scales");
      const xq = new Int16Array(buf, xPtr, CHUNK_TOKENS * S);
      // From 4 tokens on, a matrix too big to stay cached goes to the kernel two tokens at a time: each
      // call streams the codes once, where the kernel's own order (4 rows kept in L1 for every token pair)
      // left the prefetcher behind (32000 x 768: 4 tokens 5.6 -> 4.0 ms). Integer sums: the same bits.
      const perPass = n >= 4 && w.rows * S >= Q8_STREAM_BYTES ? 2 : CHUNK_TOKENS;
      for (let t0 = 0; t0 < n; t0 += CHUNK_TOKENS) {
        const T = Math.min(CHUNK_TOKENS, n - t0);
        quantizeRowsI16(x, t0 * inDim, T, inDim, S, xq, sx);
        for (let o0 = 0; o0 < outDim; o0 += outChunk) {
          const m = Math.min(outChunk, outDim - o0);
          const wAt = wPtr + o0 * S, sAt = sPtr + o0 * 4;
          for (let t = 0; t < T; t += perPass) {
            const tn = Math.min(perPass, T - t), xAt = xPtr + t * S * 2, yAt = yPtr + t * m * 4;
            if (pool) pool.run(kernels, KIND_Q8, xAt, wAt, sAt, yAt, tn, S, m, m, S);
            else kernels[KIND_Q8](xAt, wAt, sAt, yAt, tn, S, m, m);
          }
          finishQ8(
            out,
            t0 * outDim + o0,
            heap.subarray(yPtr >> 2),
            sx,
            bias?.subarray(o0) ?? null,
            T,
            m,
            m,
            outDim,
          );
        }
      }
    },
    q7: q7mod !== null,
    allocQ7(rows, cols) {
      const stride = q7Stride(cols);
      const codes = new Int8Array(
        buf,
        reserve(padFloats(Math.ceil((rows * stride) / 4)) * 4, "allocQ7"),
        rows * stride,
      );
      const meta = new Float32Array(buf, reserve(padFloats(2 * rows) * 4, "allocQ7"), 2 * rows);
      return { rows, cols, stride, codes, meta };
    },
    matmulQ7(out, x, w, n, inDim, outDim, err, bias) {
      if (!q7mod) {
        throw new Error(
          "kernels: matmulQ7 needs WebAssembly relaxed SIMD, which this runtime lacks (use matmulQ8)",
        );
      }
      checkQ7(w, inDim, outDim, n, err);
      checkShapes(out, x, w.codes, bias ?? null, n, inDim, outDim);
      if (inDim > opts.maxIn) throw new Error(`kernels: inDim ${inDim} exceeds maxIn ${opts.maxIn}`);
      const S = w.stride;
      const wPtr = where(w.codes, "the int8 weight"), mPtr = where(w.meta, "the int8 scales");
      const xu = new Uint8Array(buf, xPtr, CHUNK_TOKENS * S);
      for (let t0 = 0; t0 < n; t0 += CHUNK_TOKENS) {
        const T = Math.min(CHUNK_TOKENS, n - t0);
        quantizeRowsU7(x, t0 * inDim, T, inDim, S, xu, sx, err?.subarray(2 * t0));
        for (let o0 = 0; o0 < outDim; o0 += outChunk) {
          const m = Math.min(outChunk, outDim - o0);
          const wAt = wPtr + o0 * S, mAt = mPtr + o0 * 8;
          if (pool) pool.run(kernels, KIND_Q7, xPtr, wAt, mAt, yPtr, T, S, m, m, S, 8);
          else kernels[KIND_Q7](xPtr, wAt, mAt, yPtr, T, S, m, m);
          finishQ8(
            out,
            t0 * outDim + o0,
            heap.subarray(yPtr >> 2),
            sx,
            bias?.subarray(o0) ?? null,
            T,
            m,
            m,
            outDim,
          );
        }
      }
    },
  };

  /** Whether w is packed; a packed w must be used whole ([outDim, inDim]). */
  function isPacked(w: Float32Array | Uint16Array, inDim: number, outDim: number): boolean {
    const p = packed.get(w);
    if (p && (p.rows !== outDim || p.cols !== inDim)) {
      throw new Error(
        `kernels: a packed weight [${p.rows}, ${p.cols}] must be used whole, not as [${outDim}, ${inDim}]`,
      );
    }
    return p !== undefined;
  }

  /** Row r of w ([rows, cols], packed or not; bf16 widened) into out at outOff. */
  function rowOf(
    w: Float32Array | Uint16Array,
    r: number,
    cols: number,
    out: Float32Array,
    outOff: number,
  ): void {
    const p = packed.get(w);
    if (!p || (p.rows % 2 === 1 && r === p.rows - 1)) return copyRow(w, r * cols, cols, out, outOff);
    const n4 = cols & ~3, tail = cols - n4, base = (r & ~1) * cols, c = r & 1;
    // element by element, with no view per chunk: this runs for every embedded token
    const from = (k: number) =>
      k < n4 ? base + 2 * (k & ~3) + 4 * c + (k & 3) : base + 2 * n4 + c * tail + k - n4;
    if (w instanceof Float32Array) {
      for (let k = 0; k < cols; k++) out[outOff + k] = w[from(k)];
    } else {
      const bits = new Uint32Array(out.buffer, out.byteOffset + 4 * outOff, cols);
      for (let k = 0; k < cols; k++) bits[k] = w[from(k)] << 16; // bf16 widened exactly
    }
  }

  /** The byte offset of `bytes` more of the weight reservation. */
  function reserve(bytes: number, what: string): number {
    if (next + bytes > weightEnd) {
      throw new Error(
        `kernels: ${what} exceeds the reserved ${opts.weightFloats} weight floats of ` +
          `${opts.label ?? "the model"} (count each array as padFloats(length), bf16 as padBf16(length))`,
      );
    }
    const at = next;
    next += bytes;
    return at;
  }

  /** One matmul through the scratch, in chunks of tokens and columns; wSize: bytes per weight. */
  function run(
    kind: number,
    wSize: number,
    out: Float32Array,
    x: Float32Array,
    w: Float32Array | Uint16Array,
    bias: Float32Array | null,
    n: number,
    inDim: number,
    outDim: number,
  ): void {
    checkShapes(out, x, w, bias, n, inDim, outDim);
    if (inDim > opts.maxIn) throw new Error(`kernels: inDim ${inDim} exceeds maxIn ${opts.maxIn}`);
    const wPtr = where(w, "the weight");
    const bPtr = bias ? where(bias, "the bias") : 0;
    for (let t0 = 0; t0 < n; t0 += CHUNK_TOKENS) {
      const T = Math.min(CHUNK_TOKENS, n - t0);
      heap.set(x.subarray(t0 * inDim, (t0 + T) * inDim), xPtr >> 2);
      for (let o0 = 0; o0 < outDim; o0 += outChunk) {
        const m = Math.min(outChunk, outDim - o0);
        const wAt = wPtr + o0 * inDim * wSize, bAt = bias ? bPtr + o0 * 4 : 0;
        if (pool) pool.run(kernels, kind, xPtr, wAt, bAt, yPtr, T, inDim, m, m, inDim * wSize);
        else kernels[kind](xPtr, wAt, bAt, yPtr, T, inDim, m, m);
        const y0 = yPtr >> 2;
        if (m === outDim) {
          out.set(heap.subarray(y0, y0 + T * m), t0 * outDim);
        } else {
          for (let t = 0; t < T; t++) {
            out.set(heap.subarray(y0 + t * m, y0 + (t + 1) * m), (t0 + t) * outDim + o0);
          }
        }
      }
    }
  }
}

/** out[outOff ..+n] = w[at ..+n], bf16 bits widened exactly to float32. */
function copyRow(
  w: Float32Array | Uint16Array,
  at: number,
  n: number,
  out: Float32Array,
  outOff: number,
): void {
  if (w instanceof Float32Array) {
    out.set(w.subarray(at, at + n), outOff);
    return;
  }
  const bits = new Uint32Array(out.buffer, out.byteOffset + 4 * outOff, n);
  for (let i = 0; i < n; i++) bits[i] = w[at + i] << 16;
}

function checkShapes(
  out: Float32Array,
  x: Float32Array,
  w: Float32Array | Uint16Array | Int8Array,
  bias: Float32Array | null,
  n: number,
  inDim: number,
  outDim: number,
): void {
  if (w.length < outDim * inDim) {
    throw new Error(`kernels: weight has ${w.length} elements, need [${outDim}, ${inDim}]`);
  }
  if (x.length < n * inDim) throw new Error(`kernels: x has ${x.length} elements, need [${n}, ${inDim}]`);
  if (out.length < n * outDim) {
    throw new Error(`kernels: out has ${out.length} elements, need [${n}, ${outDim}]`);
  }
  if (bias && bias.length < outDim) {
    throw new Error(`kernels: bias has ${bias.length} elements, need ${outDim}`);
  }
}
