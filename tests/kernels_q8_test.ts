/**
 * kernels/q8.ts and matmul.wat's matmul_q8 (the drafter's int8 matrices): bitwise the same on the WASM
 * kernel, its scalar twin and any thread count, for sizes that cross the 512-input integer chunk, the 64-token
 * and 4096-column scratch chunks and the 4-row / 2-token tiles; and close to the float64 product.
 */
import assert from "node:assert/strict";
import {
  createKernels,
  padFloats,
  padQ8,
  quantizeQ8Into,
  wasmSimdSupported,
  workersReady,
} from "../kernels/mod.ts";
import { randomFloats } from "./support/random.ts";
import { q8Stride, quantizeRowsI16 } from "../kernels/q8.ts";
import { withWorkers } from "./support/workers.ts";

const rand = randomFloats;

/**
 * out = matmulQ8(x, quantized w) + b on the given kernels, with weights and bias in kernel memory; with
 * threads, a result the workers computed part of where the call splits.
 */
async function runQ8(
  kind: "wasm" | "js",
  threads: number,
  w: Float32Array,
  b: Float32Array | null,
  x: Float32Array,
  T: number,
  n: number,
  m: number,
): Promise<Float32Array> {
  const k = createKernels({
    weightFloats: padQ8(m, n) + padFloats(m),
    maxIn: n,
    maxOut: m,
    kernels: kind,
    threads,
  });
  const q = k.allocQ8(m, n);
  quantizeQ8Into(w, q);
  let bias: Float32Array | null = null;
  if (b) {
    bias = k.alloc(m);
    bias.set(b);
  }
  const out = new Float32Array(T * m);
  // kernels/threads.ts splits calls of at least 2^16 multiply-adds over at least 8 rows
  if (threads > 1 && T * q.stride * m >= 1 << 16 && m >= 8) {
    await withWorkers(k, () => k.matmulQ8(out, x, q, bias, T, n, m));
  } else k.matmulQ8(out, x, q, bias, T, n, m);
  k.dispose();
  return out;
}

const bits = (a: Float32Array) => [...new Uint32Array(a.buffer, a.byteOffset, a.length)];

// [T, n, m]: odd n (row padding), n > 512 and > 1024 (several integer chunks), T > 64 (token chunks),
// m > 4096 (column chunks), m % 4 != 0 (1x1 rows) and odd T (1x4 tiles after 2x4); 8 MiB of codes with
// 4+ tokens (streamed two tokens per kernel call).
const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [1, 8, 4],
  [3, 20, 9],
  [2, 1100, 13],
  [5, 256, 8192 + 6],
  [70, 40, 7],
  [4, 768, 256],
  [5, 1024, 8200],
];

Deno.test({
  name: "kernels q8: WASM (1 and 2 threads) equals the JS twin bitwise, and all are close to float64",
  ignore: !wasmSimdSupported(),
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  await workersReady();
  for (const [T, n, m] of SHAPES) {
    const w = rand(m * n, n * 7 + m), x = rand(T * n, T + n), b = rand(m, m + 3);
    const js = await runQ8("js", 1, w, b, x, T, n, m);
    for (const threads of [1, 2]) {
      const wasm = await runQ8("wasm", threads, w, b, x, T, n, m);
      // the first differing element, not a deepEqual diff (which takes minutes to print for 41000 values)
      const got = bits(wasm), want = bits(js), at = got.findIndex((v, i) => v !== want[i]);
      assert.equal(
        at,
        -1,
        `T=${T} n=${n} m=${m} threads=${threads}: element ${at} is ${got[at]}, not ${want[at]}`,
      );
    }
    // Error bound: per-row int8 weights (step max|w|/127) and int16 activations (step max|x|/32767), each
    // rounded to half a step: |err| <= sum_k |x_k| * wStep/2 + |w_k| * xStep/2 (+ float rounding).
    for (let t = 0; t < T; t++) {
      let xMax = 0;
      for (let k = 0; k < n; k++) xMax = Math.max(xMax, Math.abs(x[t * n + k]));
      for (let o = 0; o < m; o++) {
        let exact = b[o], wMax = 0, xAbs = 0, wAbs = 0;
        for (let k = 0; k < n; k++) {
          exact += x[t * n + k] * w[o * n + k];
          wMax = Math.max(wMax, Math.abs(w[o * n + k]));
          xAbs += Math.abs(x[t * n + k]);
          wAbs += Math.abs(w[o * n + k]);
        }
        const bound = xAbs * (wMax / 127) / 2 + wAbs * (xMax / 32767) / 2 + 1e-5 * (Math.abs(exact) + 1);
        const err = Math.abs(js[t * m + o] - exact);
        assert.ok(err <= bound, `T=${T} n=${n} m=${m} [${t},${o}]: error ${err} > bound ${bound}`);
      }
    }
  }
});

Deno.test("kernels q8: without bias, zero rows and zero activations give exact zeros", async () => {
  const n = 24, m = 5, T = 2;
  const w = rand(m * n, 11);
  w.fill(0, 2 * n, 3 * n); // row 2 all zero
  const x = rand(T * n, 5);
  x.fill(0, n, 2 * n); // token 1 all zero
  for (const kind of wasmSimdSupported() ? ["wasm", "js"] as const : ["js"] as const) {
    const out = await runQ8(kind, 1, w, null, x, T, n, m);
    assert.equal(out[2], 0, `${kind}: zero weight row`);
    for (let o = 0; o < m; o++) assert.equal(out[m + o], 0, `${kind}: zero token, row ${o}`);
    assert.ok(out[0] !== 0);
  }
});

Deno.test("kernels q8: codes stay in [-127, 127] / [-32767, 32767], padding is zero, the max maps to the extreme", () => {
  const n = 13, m = 3;
  const w = rand(m * n, 3);
  w[5] = 4; // row 0's max
  const k = createKernels({ weightFloats: padQ8(m, n), maxIn: n, maxOut: m, kernels: "js" });
  const q = k.allocQ8(m, n);
  quantizeQ8Into(w, q);
  assert.equal(q.stride, q8Stride(n));
  assert.equal(q.stride, 16);
  assert.equal(q.codes[5], 127);
  assert.equal(q.scales[0], Math.fround(4 / 127));
  for (let o = 0; o < m; o++) {
    for (let c = n; c < q.stride; c++) assert.equal(q.codes[o * q.stride + c], 0);
  }
  const x = Float32Array.of(-2, 1, 0.5), xq = new Int16Array(8), sx = new Float32Array(1);
  quantizeRowsI16(x, 0, 1, 3, 8, xq, sx);
  assert.deepEqual([...xq], [-32767, 16384, 8192, 0, 0, 0, 0, 0]);
  assert.throws(() => quantizeQ8Into(Float32Array.of(1, Infinity, 0), k.allocQ8(1, 3)), /non-finite weight/);
  assert.throws(() => quantizeQ8Into(new Float32Array(5), q), /5 values, expected 3 x 13/);
});

Deno.test("kernels q8: a weight of the wrong shape is refused with both shapes", () => {
  const k = createKernels({ weightFloats: padQ8(4, 8), maxIn: 16, maxOut: 8, kernels: "js" });
  const q = k.allocQ8(4, 8);
  assert.throws(
    () => k.matmulQ8(new Float32Array(16), new Float32Array(16), q, null, 1, 16, 4),
    /int8 weight is \[4, 8\], need \[4, 16\]/,
  );
});
