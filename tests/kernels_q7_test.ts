/**
 * kernels/q7.ts and q7.wat's matmul_q7 (the LM head screen's int8 x 7-bit matmul): bitwise the same on the
 * WASM kernel (relaxed SIMD), its scalar twin and any thread count, for sizes that cross the 64-token and
 * 4096-column scratch chunks and the 4-row / 2-token tiles; within the rigorous bound head_screen.ts uses;
 * exact on extreme codes (where a 16-bit pair sum could saturate if the operands left their ranges).
 */
import assert from "node:assert/strict";
import {
  createKernels,
  padFloats,
  padQ7,
  quantizeQ7Into,
  quantizeRowsU7,
  wasmRelaxedSimdSupported,
  wasmSimdSupported,
  workersReady,
} from "../kernels/mod.ts";
import { q7Stride } from "../kernels/q7.ts";
import { randomFloats } from "./support/random.ts";
import { withWorkers } from "./support/workers.ts";

const rand = randomFloats;
const hasQ7 = wasmSimdSupported() && wasmRelaxedSimdSupported();

/** out = matmulQ7(x, quantized w) on the given kernels; with threads, a result workers computed part of. */
async function runQ7(
  kind: "wasm" | "js",
  threads: number,
  w: Float32Array,
  x: Float32Array,
  T: number,
  n: number,
  m: number,
  err?: Float64Array,
  bias?: Float32Array,
): Promise<Float32Array> {
  const k = createKernels({
    weightFloats: padQ7(m, n) + padFloats(m),
    maxIn: n,
    maxOut: m,
    kernels: kind,
    threads,
  });
  assert.ok(k.q7, `${kind} kernels run matmulQ7`);
  const q = k.allocQ7(m, n);
  quantizeQ7Into(w, q);
  const out = new Float32Array(T * m);
  const b = bias ? k.alloc(m) : undefined;
  b?.set(bias!);
  // kernels/threads.ts splits calls of at least 2^16 multiply-adds over at least 8 rows
  if (threads > 1 && T * q.stride * m >= 1 << 16 && m >= 8) {
    await withWorkers(k, () => k.matmulQ7(out, x, q, T, n, m, err, b));
  } else k.matmulQ7(out, x, q, T, n, m, err, b);
  k.dispose();
  return out;
}

const bits = (a: Float32Array) => [...new Uint32Array(a.buffer, a.byteOffset, a.length)];

// [T, n, m]: n not a multiple of 16 (row padding), T > 64 (token chunks), m > 4096 (column chunks),
// m % 4 != 0 (1x1 rows) and odd T (1x4 tiles after 2x4).
const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [1, 16, 4],
  [3, 20, 9],
  [2, 1100, 13],
  [5, 384, 8192 + 6],
  [70, 40, 7],
  [4, 768, 256],
];

Deno.test({
  name: "kernels q7: WASM (1 and 2 threads) equals the JS twin bitwise, within the screen's error bound",
  ignore: !hasQ7,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  await workersReady();
  for (const [T, n, m] of SHAPES) {
    const w = rand(m * n, n * 5 + m), x = rand(T * n, T + 2 * n);
    const jsErr = new Float64Array(2 * T), wasmErr = new Float64Array(2 * T);
    const js = await runQ7("js", 1, w, x, T, n, m, jsErr);
    for (const threads of [1, 2]) {
      const wasm = await runQ7("wasm", threads, w, x, T, n, m, wasmErr);
      const got = bits(wasm), want = bits(js), at = got.findIndex((v, i) => v !== want[i]);
      assert.equal(
        at,
        -1,
        `T=${T} n=${n} m=${m} threads=${threads}: element ${at} is ${got[at]}, not ${want[at]}`,
      );
    }
    // |err| <= ||x|| ||δ_w|| + s_w Σ|ŵ| max|e_x| (+ float rounding), as backends/cpu/head_screen.ts bounds it
    const S = q7Stride(n),
      xu = new Uint8Array(T * S),
      sx = new Float32Array(T),
      err = new Float64Array(2 * T);
    quantizeRowsU7(x, 0, T, n, S, xu, sx, err);
    // matmulQ7's err output is that of the codes it made (across its 64-token chunks)
    assert.deepEqual([...jsErr], [...err], `T=${T} n=${n}: JS err`);
    assert.deepEqual([...wasmErr], [...err], `T=${T} n=${n}: WASM err`);
    for (let t = 0; t < T; t++) {
      let x2 = 0;
      for (let k = 0; k < n; k++) x2 += x[t * n + k] ** 2;
      for (let o = 0; o < m; o++) {
        let exact = 0, wMax = 0;
        for (let k = 0; k < n; k++) {
          exact += x[t * n + k] * w[o * n + k];
          wMax = Math.max(wMax, Math.abs(w[o * n + k]));
        }
        const s = Math.fround(wMax / 127);
        let d2 = 0, codeAbs = 0;
        for (let k = 0; k < n; k++) {
          const c = Math.max(-127, Math.min(127, Math.round(w[o * n + k] / s)));
          d2 += (w[o * n + k] - s * c) ** 2;
          codeAbs += Math.abs(c);
        }
        const bound = Math.sqrt(x2 * d2) + s * codeAbs * err[2 * t] + 1e-5 * (Math.abs(exact) + 1);
        const e = Math.abs(js[t * m + o] - exact);
        assert.ok(e <= bound, `T=${T} n=${n} m=${m} [${t},${o}]: error ${e} > bound ${bound}`);
      }
    }
  }
});

Deno.test({
  name: "kernels q7: extreme codes (±127 weights, ±63 activations) give the exact integer dot product",
  ignore: !hasQ7,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  // Every weight ±1 (codes ±127, scale 1/127), every activation ±1 (codes ±63, scale 1/63): the dot product
  // is n' = Σ sign products, so y = f32(127 · 63 · n' · (1/127)) · (1/63) after the scales: compare with the
  // JS twin bitwise and with n' itself within the scales' float32 rounding.
  const n = 4096, m = 8, T = 3;
  const w = new Float32Array(m * n), x = new Float32Array(T * n);
  for (let i = 0; i < w.length; i++) w[i] = (i * 7919) % 3 === 0 ? -1 : 1;
  for (let i = 0; i < x.length; i++) x[i] = t3(i);
  for (let o = 0; o < m; o++) w[o * n + o] = o % 2 ? 1 : -1; // vary the rows
  const js = await runQ7("js", 1, w, x, T, n, m), wasm = await runQ7("wasm", 1, w, x, T, n, m);
  assert.deepEqual(bits(wasm), bits(js));
  for (let t = 0; t < T; t++) {
    for (let o = 0; o < m; o++) {
      let exact = 0;
      for (let k = 0; k < n; k++) exact += w[o * n + k] * x[t * n + k];
      assert.ok(Math.abs(js[t * m + o] - exact) <= 1e-6 * n, `[${t},${o}]: ${js[t * m + o]} vs ${exact}`);
    }
  }
  function t3(i: number): number {
    return (i * 104729) % 5 < 2 ? -1 : 1;
  }
});

Deno.test({
  name: "kernels q7: a bias (the q7 drafter's) is added in float32 after the scale, on every kernel kind",
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  await workersReady();
  // m > 4096: the WASM kernel finishes the columns in chunks, each with its slice of the bias
  for (const [T, n, m] of [[3, 20, 9], [2, 256, 4096 + 6]] as const) {
    const w = rand(m * n, n + m), x = rand(T * n, T + n), bias = rand(m, 7 * m);
    const runs: [string, number][] = [
      ["js", 1],
      ...(hasQ7 ? [["wasm", 1], ["wasm", 2]] as [string, number][] : []),
    ];
    for (const [kind, threads] of runs) {
      const plain = await runQ7(kind as "js" | "wasm", threads, w, x, T, n, m);
      const biased = await runQ7(kind as "js" | "wasm", threads, w, x, T, n, m, undefined, bias);
      const want = plain.map((v, i) => Math.fround(v + bias[i % m]));
      assert.deepEqual(bits(biased), bits(want), `${kind} x${threads} T=${T} n=${n} m=${m}`);
    }
  }
});

Deno.test("kernels q7: codes and padding, the error the screen bounds with, and refused shapes", () => {
  const n = 13, m = 3;
  const w = rand(m * n, 3);
  w[5] = 4; // row 0's max
  const k = createKernels({ weightFloats: padQ7(m, n), maxIn: 16, maxOut: m, kernels: "js" });
  const q = k.allocQ7(m, n);
  quantizeQ7Into(w, q);
  assert.equal(q.stride, 16);
  assert.equal(q.codes[5], 127);
  assert.equal(q.meta[0], Math.fround(4 / 127));
  for (let o = 0; o < m; o++) {
    let sum = 0;
    for (let c = 0; c < n; c++) sum += q.codes[o * 16 + c];
    assert.equal(q.meta[2 * o + 1], sum, `row ${o}'s code sum`);
    for (let c = n; c < 16; c++) assert.equal(q.codes[o * 16 + c], 0);
  }
  const x = Float32Array.of(-2, 1, 0.5), xu = new Uint8Array(16), sx = new Float32Array(1);
  const err = new Float64Array(2);
  quantizeRowsU7(x, 0, 1, 3, 16, xu, sx, err);
  assert.equal(sx[0], Math.fround(2 / 63));
  const q1 = Math.round(1 / sx[0]), q2 = Math.round(0.5 / sx[0]); // 31 and 16 (f32(2/63) is above 2/63)
  assert.deepEqual([...xu.subarray(0, 4)], [1, 64 + q1, 64 + q2, 0]); // the max maps to -63
  const e1 = Math.abs(1 - sx[0] * q1), e2 = Math.abs(0.5 - sx[0] * q2);
  assert.ok(err[0] >= Math.max(e1, e2) && err[0] <= Math.max(e1, e2) * (1 + 1e-9));
  assert.ok(err[1] >= Math.hypot(e1, e2) && err[1] <= Math.hypot(e1, e2) * (1 + 1e-9));
  quantizeRowsU7(Float32Array.of(1, NaN, 0), 0, 1, 3, 16, xu, sx, err);
  assert.equal(err[0], Infinity, "a non-finite activation has an infinite error");
  assert.throws(() => quantizeQ7Into(Float32Array.of(1, Infinity, 0), k.allocQ7(1, 3)), /non-finite weight/);
  assert.throws(
    () => k.matmulQ7(new Float32Array(16), new Float32Array(16), q, 1, 16, 3),
    /7-bit int8 weight is \[3, 13\], need \[3, 16\]/,
  );
});
