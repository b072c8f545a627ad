/**
 * The inner products of attention for one query head over a list of cache slots (q·k scores, and the
 * probability-weighted sum of values) and the softmax between them, as WebAssembly SIMD128 (kernels/attention.wat) with a scalar-JS
 * twin (kernels/attention_js.ts) that gives bit-identical results. Each result is summed in one fixed
 * order, so a token's attention never depends on how many tokens share its call.
 *
 * Like kernels/mod.ts' weights, the arrays the kernels read and write (KV caches, query, slot list,
 * probabilities, output) must come from `alloc` / `allocI32`: with WASM they are views of the instance's
 * memory, reserved whole up front so that it never grows.
 *
 * With matmul threads (kernels/mod.ts Kernels.attention), a session's arrays come instead from a block of
 * the model's attention arena, a shared memory that the matmul worker threads also run these kernels
 * over, and `attend` splits its query heads between the threads (whole kv-head groups per thread: each
 * head's bits are those of one thread).
 *
 * @module
 */
import { decodeBase64 } from "./base64.ts";
import { attendJs, checkAttendScratch, mixJs, scoresJs, softmaxJs } from "./attention_js.ts";
import { type KernelChoice, padFloats, wasmSimdSupported } from "./mod.ts";
import { ATTENTION_SHARED_WASM, ATTENTION_WASM } from "./wasm_modules.ts";
import { type Kernel, KIND_ATTEND } from "./threads.ts";

export { attendJs, mixJs, scoresJs, softmaxJs };

/** The attention kernels of one CPU session, over the arrays it allocates from them (see the module doc). */
export interface AttentionKernels {
  /** Which implementation runs (both give the same bits). */
  readonly kind: "wasm-simd" | "js";
  /** A zeroed float32 array the kernels can read and write. */
  alloc(length: number): Float32Array;
  /** A zeroed int32 array (slot lists). */
  allocI32(length: number): Int32Array;
  /**
   * out[j] = q[qOff ..+hd) · k[kOff + ctx[j] * row ..+hd) for j < n (kernels/attention.wat's order).
   * Offsets in elements; qOff and kOff must be multiples of 4 (16-byte alignment is not required, but
   * keeps the WASM loads fast).
   */
  scores(
    out: Float32Array,
    q: Float32Array,
    qOff: number,
    k: Float32Array,
    kOff: number,
    ctx: Int32Array,
    n: number,
    row: number,
    hd: number,
  ): void;
  /** out[outOff + d] = sum over j < n, in order, of p[j] * v[vOff + ctx[j] * row + d], for d < hd. */
  mix(
    out: Float32Array,
    outOff: number,
    p: Float32Array,
    v: Float32Array,
    vOff: number,
    ctx: Int32Array,
    n: number,
    row: number,
    hd: number,
  ): void;
  /**
   * p[j] = softmax(s * scale)[j] for j < n, in float32 steps (kernels/attention.wat's order; e^x within 2
   * ulp). p may be s.
   */
  softmax(p: Float32Array, s: Float32Array, n: number, scale: number): void;
  /**
   * One token's attention over the slots ctx[0 .. n), every query head h < heads: out[h * hd ..] = mix of
   * softmax(scores(q[h * hd ..]) * scale) over kv head floor(h / group), whose slot s starts at element
   * floor(h / group) * headStride + s * row of the caches (slot-major caches: headStride = hd, row = kv
   * heads * hd; head-major: headStride = slots * hd, row = hd); sc: 2n floats of scratch (two query heads
   * of a kv head go together). Bitwise scores, softmax and mix per head, in one call.
   */
  attend(
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    ctx: Int32Array,
    n: number,
    row: number,
    headStride: number,
    hd: number,
    heads: number,
    group: number,
    scale: number,
    sc: Float32Array,
    out: Float32Array,
  ): void;
}

const PAGE = 65536;
const MAX_PAGES = 65536;
let compiled: WebAssembly.Module | null = null;

/**
 * Attention kernels with room for `floats` float32 and `ints` int32 elements (count each array as
 * padFloats(length)). "auto" picks WASM SIMD when available and the reservation fits wasm32 (4 GiB),
 * else the JS twin, which gives the same bits.
 */
export function createAttentionKernels(
  floats: number,
  ints: number,
  choice: KernelChoice = "auto",
): AttentionKernels {
  const bytes = 16 + (floats + ints) * 4;
  const pages = Math.ceil(bytes / PAGE);
  if (choice === "js" || (choice === "auto" && (!wasmSimdSupported() || pages > MAX_PAGES))) {
    return {
      kind: "js",
      alloc: (n) => new Float32Array(n),
      allocI32: (n) => new Int32Array(n),
      scores: scoresJs,
      mix: mixJs,
      softmax: softmaxJs,
      attend: attendJs,
    };
  }
  if (!wasmSimdSupported()) {
    throw new Error("kernels: WebAssembly SIMD is not available in this runtime; use kernels 'js'");
  }
  if (pages > MAX_PAGES) {
    throw new Error(
      `kernels: the attention caches need ${(bytes / 2 ** 30).toFixed(2)} GiB, more than WebAssembly ` +
        `memory (wasm32) holds (4 GiB); use kernels 'js' or a smaller batch / context`,
    );
  }
  compiled ??= new WebAssembly.Module(decodeBase64(ATTENTION_WASM) as Uint8Array<ArrayBuffer>);
  const memory = new WebAssembly.Memory({ initial: pages, maximum: MAX_PAGES });
  const ex = new WebAssembly.Instance(compiled, { env: { memory } }).exports;
  const block = blockOf(memory.buffer, 16, bytes, floats + ints);
  return { kind: "wasm-simd", alloc: block.alloc, allocI32: block.allocI32, ...wasmOps(ex, block.where) };
}

/**
 * Arrays handed out one after the other from bytes [start, end) of `buf`, and `where`, the byte offset of
 * one of them (an error for any other array).
 */
function blockOf(buf: ArrayBufferLike, start: number, end: number, elements: number) {
  let next = start;
  const take = (n: number): number => {
    const b = padFloats(n) * 4;
    if (next + b > end) {
      throw new Error(`kernels: attention alloc(${n}) exceeds the reserved ${elements} elements`);
    }
    const at = next;
    next += b;
    return at;
  };
  return {
    take,
    alloc: (n: number) => new Float32Array(buf, take(n), n),
    allocI32: (n: number) => new Int32Array(buf, take(n), n),
    where(a: Float32Array | Int32Array, what: string): number {
      if (a.buffer !== buf || a.byteOffset < start || a.byteOffset >= end) {
        throw new Error(`kernels: ${what} was not allocated by these attention kernels`);
      }
      return a.byteOffset;
    },
  };
}

/** scores, mix, softmax and attend of an attention instance's exports, on arrays `where` locates. */
function wasmOps(
  ex: WebAssembly.Exports,
  where: (a: Float32Array | Int32Array, what: string) => number,
): Pick<AttentionKernels, "scores" | "mix" | "softmax" | "attend"> {
  type Fn = (a: number, b: number, c: number, n: number, row: number, hd: number, out: number) => void;
  const scores = ex.scores as Fn, mix = ex.mix as Fn;
  const softmax = ex.softmax as (s: number, n: number, scale: number, p: number) => void;
  const attend = ex.attend as (...args: number[]) => void;
  return {
    scores(out, q, qOff, k, kOff, ctx, n, row, hd) {
      scores(
        where(q, "q") + qOff * 4,
        where(k, "the key cache") + kOff * 4,
        where(ctx, "the slot list"),
        n,
        row * 4,
        hd,
        where(out, "the scores"),
      );
    },
    mix(out, outOff, p, v, vOff, ctx, n, row, hd) {
      mix(
        where(p, "p"),
        where(v, "the value cache") + vOff * 4,
        where(ctx, "the slot list"),
        n,
        row * 4,
        hd,
        where(out, "the output") + outOff * 4,
      );
    },
    softmax(p, sc, n, scale) {
      softmax(where(sc, "the scores"), n, scale, where(p, "the probabilities"));
    },
    attend(q, k, v, ctx, n, row, headStride, hd, heads, group, scale, sc, out) {
      checkAttendScratch(sc, n);
      attend(
        where(q, "q"),
        where(k, "the key cache"),
        where(v, "the value cache"),
        where(ctx, "the slot list"),
        n,
        row * 4,
        headStride * 4,
        hd,
        heads,
        group,
        scale,
        where(sc, "the scores"),
        where(out, "the output"),
      );
    },
  };
}

/**
 * A shared WebAssembly memory for the attention arrays of one model's sessions, which grows as sessions
 * need it and takes back the blocks of disposed ones; the matmul worker threads instantiate
 * `module` over it (kernels/threads.ts).
 */
export interface AttentionArena {
  readonly module: WebAssembly.Module;
  readonly memory: WebAssembly.Memory;
  /** The calling thread's instance of `module` over `memory`. */
  readonly exports: WebAssembly.Exports;
  /** The byte offset of a free block of `bytes` (a multiple of 16), or null when the memory cannot grow. */
  take(bytes: number): number | null;
  /** Give back a block from take(). */
  release(at: number, bytes: number): void;
  /** Bytes in blocks taken and not given back. */
  readonly used: number;
  /** Bytes up to the end of the last block in use (used, plus the free blocks below it). */
  readonly reserved: number;
}

let compiledShared: WebAssembly.Module | null | undefined;

/** A new, empty arena, or null where shared WebAssembly memory is not available. */
export function createAttentionArena(): AttentionArena | null {
  if (compiledShared === undefined) {
    try {
      compiledShared = typeof SharedArrayBuffer === "function" && wasmSimdSupported()
        ? new WebAssembly.Module(decodeBase64(ATTENTION_SHARED_WASM) as Uint8Array<ArrayBuffer>)
        : null;
    } catch {
      compiledShared = null;
    }
  }
  if (!compiledShared) return null;
  let memory: WebAssembly.Memory;
  try {
    memory = new WebAssembly.Memory({ initial: 1, maximum: MAX_PAGES, shared: true });
  } catch {
    return null;
  }
  // Free blocks by address, never adjacent (release merges neighbours); the end of the last block in use.
  const free: { at: number; bytes: number }[] = [];
  let top = 16; // address 0 is never handed out
  return {
    module: compiledShared,
    memory,
    exports: new WebAssembly.Instance(compiledShared, { env: { memory } }).exports,
    take(bytes) {
      // first fit among the freed blocks (sessions of one model mostly ask for the same sizes)
      const i = free.findIndex((f) => f.bytes >= bytes);
      if (i >= 0) {
        const f = free[i], at = f.at;
        if (f.bytes === bytes) free.splice(i, 1);
        else {
          f.at += bytes;
          f.bytes -= bytes;
        }
        return at;
      }
      const need = Math.ceil((top + bytes) / PAGE) - memory.buffer.byteLength / PAGE;
      if (need > 0) {
        try {
          memory.grow(need);
        } catch {
          return null;
        }
      }
      const at = top;
      top += bytes;
      return at;
    },
    release(at, bytes) {
      // keep the list sorted and merged, and give the tail back to `top`, so that sessions of changing
      // sizes (a server's requests) reuse the memory instead of growing it
      let i = 0;
      while (i < free.length && free[i].at < at) i++;
      free.splice(i, 0, { at, bytes });
      if (i + 1 < free.length && free[i].at + free[i].bytes === free[i + 1].at) {
        free[i].bytes += free[i + 1].bytes;
        free.splice(i + 1, 1);
      }
      if (i > 0 && free[i - 1].at + free[i - 1].bytes === free[i].at) {
        free[i - 1].bytes += free[i].bytes;
        free.splice(i, 1);
        i--;
      }
      const last = free[free.length - 1];
      if (last.at + last.bytes === top) {
        top = last.at;
        free.pop();
      }
    },
    get used() {
      return top - 16 - free.reduce((sum, f) => sum + f.bytes, 0);
    },
    get reserved() {
      return top - 16;
    },
  };
}

/** Multiply-adds of one token's attention below which its heads are not split between threads. */
const MIN_ATTEND_SPLIT = 1 << 15;

/** What arenaAttention needs of kernels/threads.ts' MatmulThreads. */
export interface AttentionThreads {
  readonly threads: number;
  runParts(kernels: Kernel[], kind: number, jobs: number[][]): void;
}

/**
 * Attention kernels over a block of `arena` with room for `floats` float32 and `ints` int32 elements (as
 * createAttentionKernels), whose attend splits the query heads between `pool`'s threads, each with its own
 * score scratch of `scoreFloats` (the largest `sc` the caller will pass). Null when the arena cannot grow.
 * dispose() gives the block back (the arrays must not be used after it).
 */
export function arenaAttention(
  arena: AttentionArena,
  pool: AttentionThreads,
  floats: number,
  ints: number,
  scoreFloats: number,
): (AttentionKernels & { dispose(): void; readonly splits: number }) | null {
  const extra = pool.threads - 1;
  const descBytes = 64;
  const bytes = 16 * Math.ceil(((floats + ints + extra * padFloats(scoreFloats)) * 4 + descBytes) / 16);
  const base = arena.take(bytes);
  if (base === null) return null;
  // taken after any growth, so it covers the block; every array handed out views it
  const buf = arena.memory.buffer;
  const ex = arena.exports;
  const jobKernels: Kernel[] = [];
  jobKernels[KIND_ATTEND] = ex.attend_job as Kernel;
  const descAt = base;
  const desc = new Int32Array(buf, descAt, 11), descScale = new Float32Array(buf, descAt + 40, 1);
  const block = blockOf(buf, base + descBytes, base + bytes, floats + ints), where = block.where;
  const scratch: number[] = [];
  for (let i = 0; i < extra; i++) scratch.push(block.take(scoreFloats));
  let released = false, splits = 0;
  const ops = wasmOps(ex, where);
  return {
    kind: "wasm-simd",
    get splits() {
      return splits;
    },
    alloc: block.alloc,
    allocI32: block.allocI32,
    ...ops,
    attend(q, k, v, ctx, n, row, headStride, hd, heads, group, scale, sc, out) {
      const groups = Math.floor(heads / group);
      const parts = heads % group === 0 && 2 * n * heads * hd >= MIN_ATTEND_SPLIT && sc.length <= scoreFloats
        ? Math.min(pool.threads, groups)
        : 1;
      if (parts < 2) {
        ops.attend(q, k, v, ctx, n, row, headStride, hd, heads, group, scale, sc, out);
        return;
      }
      checkAttendScratch(sc, n);
      const qAt = where(q, "q"), kAt = where(k, "the key cache"), vAt = where(v, "the value cache");
      const ctxAt = where(ctx, "the slot list"),
        scAt = where(sc, "the scores"),
        outAt = where(out, "the output");
      desc[0] = qAt;
      desc[1] = kAt;
      desc[2] = vAt;
      desc[3] = ctxAt;
      desc[4] = n;
      desc[5] = row * 4;
      desc[6] = headStride * 4;
      desc[7] = hd;
      desc[8] = group;
      desc[9] = outAt;
      descScale[0] = scale;
      // whole kv-head groups per part, as even as they divide: part p takes groups [p G / P, (p + 1) G / P)
      const jobs: number[][] = [];
      for (let p = 0; p < parts; p++) {
        const g0 = Math.floor((p * groups) / parts), g1 = Math.floor(((p + 1) * groups) / parts);
        jobs.push([descAt, g0 * group, g1 * group, p === 0 ? scAt : scratch[p - 1], 0, 0, 0, 0]);
      }
      splits++;
      pool.runParts(jobKernels, KIND_ATTEND, jobs);
    },
    dispose() {
      if (released) return;
      released = true;
      arena.release(base, bytes);
    },
  };
}
