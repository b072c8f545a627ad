/**
 * The exact top-k of the LM head, found without the full float32 head ("screening").
 *
 * A greedy step (and a greedy verification) needs only the argmax of each logit row, yet the float32 head
 * is the model's largest matrix (V x H: 12.6 MB on the default pair, a fifth of a token's multiply-adds).
 * So an int8 copy of the head scores every token first, and a rigorous bound on its error says which
 * tokens could still be in the exact top-k. Only those rows are then computed with the float32 kernel,
 * whose per-output order never depends on the rows around it (kernels/matmul.wat), so their values are
 * bitwise those of the full head. The result (ids, values, ties to the lower id) is therefore exactly that
 * of the full head: screening changes the cost, never a token.
 *
 * Where the runtime has WebAssembly relaxed SIMD the scores use 7-bit activation codes (kernels/q7.ts:
 * 16 multiply-adds per instruction, so the screen beats the float32 head at every row count up to 8);
 * elsewhere int16 ones (kernels/q8.ts; then it serves 1-2 rows, or up to 8 on a head too large to stay
 * cached). The bound, for token row r and activation row x (x quantized to codes x̂ with scale s_x, w_r
 * to codes ŵ with scale s_r; δ = w_r - s_r ŵ, η = x - s_x x̂):
 *
 *   x · w_r - s_x s_r (x̂ · ŵ) = x · δ + η · (s_r ŵ)
 *   |x · δ| <= ||x||₂ ||δ||₂                          (Cauchy-Schwarz; ||δ||₂ measured at load)
 *   |η · (s_r ŵ)| <= min(max|η_i| s_r Σ|ŵ|, ||η||₂ s_r ||ŵ||₂)
 *
 * (int16 codes use the first form with max|η_i| <= s_x / 2; 7-bit codes measure η per call, and the
 * second form, about half the first on real hidden states, keeps the candidates to a few per row), plus
 * the float32 kernel's own rounding (at most (H + 16) u Σ|x_i w_i| <= (H + 16) u ||x||₂ ||w_r||₂, u =
 * 2^-24) and the rounding of the int8 result's two scalings (3u of its magnitude). With lower_r / upper_r
 * the approximate score minus / plus that bound: the k rows of largest approximate score give a value L
 * that at least k exact logits reach (the least of their lower bounds), and a row whose upper bound is
 * below L is beaten by k rows, so it cannot be in the top-k. Every other row is a candidate.
 *
 * @module
 */
import type { Kernels } from "../../kernels/mod.ts";
import { padFloats, padQ7, padQ8 } from "../../kernels/mod.ts";
import { type Q8Weight, quantizeQ8Into } from "../../kernels/q8.ts";
import { type Q7Weight, quantizeQ7Into } from "../../kernels/q7.ts";
import { pushTopK } from "../../kernels/topk.ts";
import type { Matrix } from "./weights.ts";

/** Candidate rows one logit row may recompute in float32; more, and that call uses the full head. */
export const MAX_CANDIDATES = 256;
/** Top-k sizes screening serves; larger k use the full head. */
export const MAX_SCREEN_K = 64;
/**
 * Logit rows per call the int16-activation screen serves on a head that fits in cache. There the float32
 * head is compute-bound from 2-3 rows on, and that int8 kernel's compute is not much cheaper (it takes
 * tokens in pairs, the float32 row-pair tiles up to 5 in one pass): tools/bench_head_screen.ts on the 16M
 * default model gave 1.01-1.07x at 1-2 rows and 0.99-1.02x at 3-4 (AMD EPYC, session 12).
 */
export const MAX_SCREEN_ROWS = 2;
/**
 * Logit rows per call the int16-activation screen serves on a head of at least LARGE_HEAD_BYTES of float32,
 * which streams from memory whatever the row count: on the random 100M Llama (32000 x 768, 98 MB) the
 * screen saved 1.4-1.8 ms of a 3-4 row call (4.7 -> 3.0 ms and 6.0 -> 4.2 ms for the head and its top-1).
 */
export const MAX_SCREEN_ROWS_LARGE = 8;
export const LARGE_HEAD_BYTES = 32 << 20;
/**
 * Logit rows per call the 7-bit screen (kernels/q7.ts, where the runtime has relaxed SIMD) serves, whatever
 * the head's size: its kernel does 16 multiply-adds per instruction, so it beats the float32 head at every
 * row count a verification asks for (tools/bench_head_screen.ts; docs/kernels.md).
 */
export const MAX_SCREEN_ROWS_Q7 = 8;

const U = 2 ** -24;

/** The int8 head and the per-row constants of the bound. */
export interface HeadScreen {
  /** The int8 head scored with 7-bit activations (Kernels.matmulQ7), where the kernels have it; else null. */
  readonly q7: Q7Weight | null;
  /** The int8 head scored with int16 activations (Kernels.matmulQ8), where there is no q7; else null. */
  readonly q: Q8Weight | null;
  /** [V] ||δ_r||₂ + (H + 16) u ||w_r||₂, rounded up. */
  readonly rowSlope: Float64Array;
  /** [V] s_r Σ|ŵ_r|, rounded up (times the activation error's largest element). */
  readonly rowCodeL1: Float64Array;
  /** [V] s_r ||ŵ_r||₂, rounded up (times the activation error's norm; the 7-bit screen only). */
  readonly rowCodeL2: Float64Array;
  /** The largest rowSlope, rowCodeL1 and rowCodeL2 (the prefilter's bound for every row at once). */
  readonly maxSlope: number;
  readonly maxCodeL1: number;
  readonly maxCodeL2: number;
  /** [MAX_CANDIDATES, H] float32 rows gathered from the head (kernel memory). */
  readonly gathered: Float32Array;
  /** Logit rows per call this screen serves (MAX_SCREEN_ROWS_Q7; else MAX_SCREEN_ROWS, or _LARGE for a large head). */
  readonly maxRows: number;
  /** Calls served, candidates recomputed, calls that fell back to the full head (for tools). */
  readonly stats: { rows: number; candidates: number; fallbacks: number };
}

/** Float32 elements of kernel memory a screen for a [V, H] head reserves (room for either int8 layout). */
export function headScreenFloats(V: number, H: number): number {
  return Math.max(padQ8(V, H), padQ7(V, H)) + padFloats(MAX_CANDIDATES * H);
}

/**
 * The screen of `head` ([V, H], packed or not, float32 or bf16; read through k.row), in memory from `k`
 * (reserve headScreenFloats(V, H)); null when a weight is not finite (then the full head is used). It
 * scores with 7-bit activations where `k.q7` (and `q7` is not false), else with int16 ones.
 */
export function buildHeadScreen(
  k: Kernels,
  head: Matrix,
  V: number,
  H: number,
  q7 = true,
): HeadScreen | null {
  // one row at a time, so that a large head is never held twice
  const row = new Float32Array(H);
  for (let r = 0; r < V; r++) {
    k.row(head, r, H, row, 0);
    for (let i = 0; i < H; i++) if (!Number.isFinite(row[i])) return null;
  }
  const useQ7 = q7 && k.q7;
  const w7 = useQ7 ? k.allocQ7(V, H) : null, w8 = useQ7 ? null : k.allocQ8(V, H);
  const stride = (w7 ?? w8)!.stride;
  const rowSlope = new Float64Array(V), rowCodeL1 = new Float64Array(V), rowCodeL2 = new Float64Array(V);
  const up = 1 + 1e-9; // float64 sums of float32 terms: far below this relative error
  for (let r = 0; r < V; r++) {
    k.row(head, r, H, row, 0);
    // both layouts quantize a row the same way (scale f32(max|w| / 127), codes round(w / scale))
    const codesOf = (w7 ?? w8)!.codes.subarray(r * stride, (r + 1) * stride);
    if (w7) {
      quantizeQ7Into(row, {
        rows: 1,
        cols: H,
        stride,
        codes: codesOf,
        meta: w7.meta.subarray(2 * r, 2 * r + 2),
      });
    } else {
      quantizeQ8Into(row, {
        rows: 1,
        cols: H,
        stride,
        codes: codesOf,
        scales: w8!.scales.subarray(r, r + 1),
      });
    }
    const s = w7 ? w7.meta[2 * r] : w8!.scales[r];
    let d2 = 0, w2 = 0, codes = 0, codes2 = 0;
    for (let i = 0; i < H; i++) {
      const w = row[i], c = codesOf[i];
      const d = w - s * c; // exact in float64 (a float32 product of a float32 and an int8, minus a float32)
      d2 += d * d;
      w2 += w * w;
      codes += Math.abs(c);
      codes2 += c * c;
    }
    rowSlope[r] = (Math.sqrt(d2) + 1.01 * (H + 16) * U * Math.sqrt(w2)) * up; // 1.01: γ_n = nu / (1 - nu)
    rowCodeL1[r] = s * codes * up;
    rowCodeL2[r] = s * Math.sqrt(codes2) * up;
  }
  let maxSlope = 0, maxCodeL1 = 0, maxCodeL2 = 0;
  for (let r = 0; r < V; r++) {
    maxSlope = Math.max(maxSlope, rowSlope[r]);
    maxCodeL1 = Math.max(maxCodeL1, rowCodeL1[r]);
    maxCodeL2 = Math.max(maxCodeL2, rowCodeL2[r]);
  }
  return {
    q7: w7,
    q: w8,
    rowSlope,
    rowCodeL1,
    rowCodeL2,
    maxSlope,
    maxCodeL1,
    maxCodeL2,
    gathered: k.alloc(MAX_CANDIDATES * H),
    maxRows: w7
      ? MAX_SCREEN_ROWS_Q7
      : V * H * 4 >= LARGE_HEAD_BYTES
      ? MAX_SCREEN_ROWS_LARGE
      : MAX_SCREEN_ROWS,
    stats: { rows: 0, candidates: 0, fallbacks: 0 },
  };
}

/**
 * The exact top-k of x · headᵀ for the m rows of x ([m, H]) into ids / vals ([m, k]), as topK() over the
 * full float32 logits would give them. `approx` is scratch of at least m * V floats. Returns false, having
 * written nothing, when screening cannot serve the call (k or m too large, a non-finite activation, too
 * many candidates): the caller then computes the full head.
 */
export function screenedTopK(
  kern: Kernels,
  screen: HeadScreen,
  head: Matrix,
  x: Float32Array,
  m: number,
  H: number,
  V: number,
  k: number,
  approx: Float32Array,
  ids: Int32Array,
  vals: Float32Array,
): boolean {
  if (k > MAX_SCREEN_K || m > screen.maxRows) return false;
  // per row: ||x||₂, and the activation codes' error: its largest element err[2j], its norm err[2j + 1]
  const norm = new Float64Array(m), err = new Float64Array(2 * m);
  for (let j = 0; j < m; j++) {
    let ss = 0, max = 0;
    for (let i = 0; i < H; i++) {
      const v = x[j * H + i];
      ss += v * v;
      const a = Math.abs(v);
      if (a > max) max = a;
    }
    if (!Number.isFinite(ss)) return false;
    norm[j] = Math.sqrt(ss) * (1 + 1e-12);
    // int16 codes (kernels/q8.ts quantizeRowsI16): each within half a step; the norm form is not used
    err[2 * j] = (max > 0 ? Math.fround(max / 32767) : 0) / 2;
    err[2 * j + 1] = Infinity;
  }
  // 7-bit codes: matmulQ7 measures the error of the codes it makes (overwriting the int16 values)
  if (screen.q7) kern.matmulQ7(approx, x, screen.q7, m, H, V, err);
  else kern.matmulQ8(approx, x, screen.q!, null, m, H, V);
  const { rowSlope, rowCodeL1, rowCodeL2, gathered } = screen;
  const bound = (j: number, r: number, a: number) =>
    norm[j] * rowSlope[r] + Math.min(err[2 * j] * rowCodeL1[r], err[2 * j + 1] * rowCodeL2[r]) * (1 + 1e-9) +
    3 * U * Math.abs(a) + 1e-37;
  const candidates = new Int32Array(MAX_CANDIDATES);
  const topIds = new Int32Array(k), topVals = new Float32Array(k);
  const exact = new Float32Array(MAX_CANDIDATES);
  const plan: Int32Array[] = [];
  let total = 0;
  for (let j = 0; j < m; j++) {
    const off = j * V;
    // L: the least lower bound among the k best approximate scores
    let filled = 0;
    for (let r = 0; r < V; r++) {
      const a = approx[off + r];
      if (filled === k && !(a > topVals[k - 1])) continue;
      filled = pushTopK(a, r, k, filled, topIds, topVals, 0);
    }
    let L = Infinity;
    for (let i = 0; i < k; i++) {
      const r = topIds[i], a = approx[off + r];
      L = Math.min(L, a - bound(j, r, a));
    }
    // candidates: a + bound >= L; every row's bound is at most c + 3u|a|, so most rows fail a cheap test
    const c = norm[j] * screen.maxSlope +
      Math.min(err[2 * j] * screen.maxCodeL1, err[2 * j + 1] * screen.maxCodeL2) * (1 + 1e-9) + 1e-37;
    let n = 0;
    for (let r = 0; r < V; r++) {
      const a = approx[off + r];
      if (a + c + 3 * U * Math.abs(a) < L) continue;
      if (a + bound(j, r, a) < L) continue;
      if (n === MAX_CANDIDATES) {
        screen.stats.fallbacks++;
        return false;
      }
      candidates[n++] = r;
    }
    plan.push(candidates.slice(0, n));
    total += n;
  }
  // every row is served: recompute the candidates in float32 and take their top-k
  for (let j = 0; j < m; j++) {
    const rows = plan[j], n = rows.length;
    for (let c = 0; c < n; c++) kern.row(head, rows[c], H, gathered, c * H);
    kern.matmul(exact, x.subarray(j * H, (j + 1) * H), gathered, null, 1, H, n);
    let filled = 0;
    for (let c = 0; c < n; c++) filled = pushTopK(exact[c], rows[c], k, filled, ids, vals, j * k);
  }
  screen.stats.rows += m;
  screen.stats.candidates += total;
  return true;
}
