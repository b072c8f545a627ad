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
 * @module
 */
import { decodeBase64 } from "./base64.ts";
import { attendJs, checkAttendScratch, mixJs, scoresJs, softmaxJs } from "./attention_js.ts";
import { type KernelChoice, padFloats, wasmSimdSupported } from "./mod.ts";
import { ATTENTION_WASM } from "./wasm_modules.ts";

export { attendJs, mixJs, scoresJs, softmaxJs };

export interface AttentionKernels {
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
  type Fn = (a: number, b: number, c: number, n: number, row: number, hd: number, out: number) => void;
  const scores = ex.scores as Fn, mix = ex.mix as Fn;
  const softmax = ex.softmax as (s: number, n: number, scale: number, p: number) => void;
  const attend = ex.attend as (...args: number[]) => void;
  const buf = memory.buffer;
  let next = 16;
  const take = (n: number): number => {
    const b = padFloats(n) * 4;
    if (next + b > bytes) {
      throw new Error(`kernels: attention alloc(${n}) exceeds the reserved ${floats + ints} elements`);
    }
    const at = next;
    next += b;
    return at;
  };
  const where = (a: Float32Array | Int32Array, what: string): number => {
    if (a.buffer !== buf) throw new Error(`kernels: ${what} was not allocated by these attention kernels`);
    return a.byteOffset;
  };
  return {
    kind: "wasm-simd",
    alloc: (n) => new Float32Array(buf, take(n), n),
    allocI32: (n) => new Int32Array(buf, take(n), n),
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
