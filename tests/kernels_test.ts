/**
 * kernels/: the WASM SIMD matmul and its scalar-JS twin. Bitwise: a (token, output) result never depends
 * on the block size T or the token's place in it, and WASM equals JS; numerically: both match a float64
 * reference. Odd sizes exercise the scalar tails and the 1x4 / 1x1 edge kernels.
 */
import assert from "node:assert/strict";
import {
  createKernels,
  dotBf16,
  dotF32,
  type Kernels,
  padBf16,
  padFloats,
  wasmSimdSupported,
  workersReady,
} from "../kernels/mod.ts";
import { randomFloats } from "./support/random.ts";
import { withWorkers } from "./support/workers.ts";

const rand = randomFloats;

/** Kernels holding one weight [outDim, inDim] and a bias, filled with random values. */
function setup(kind: "wasm" | "js", inDim: number, outDim: number) {
  const k = createKernels({
    weightFloats: padFloats(outDim * inDim) + padFloats(outDim),
    maxIn: inDim,
    maxOut: outDim,
    kernels: kind,
  });
  const w = k.alloc(outDim * inDim);
  w.set(rand(outDim * inDim, inDim * 31 + outDim));
  const b = k.alloc(outDim);
  b.set(rand(outDim, 7 + outDim));
  return { k, w, b };
}

function run(
  k: Kernels,
  w: Float32Array,
  b: Float32Array | null,
  x: Float32Array,
  n: number,
  i: number,
  o: number,
) {
  const out = new Float32Array(n * o);
  k.matmul(out, x, w, b, n, i, o);
  return out;
}

const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

const SHAPES: [number, number][] = [[1, 1], [3, 5], [4, 4], [5, 9], [13, 7], [64, 6], [67, 13], [130, 33]];
const kinds: ("wasm" | "js")[] = wasmSimdSupported() ? ["wasm", "js"] : ["js"];

Deno.test("kernels: WASM SIMD is available in this runtime", () => {
  assert.ok(wasmSimdSupported());
  assert.equal(createKernels({ weightFloats: 4, maxIn: 4, maxOut: 4 }).kind, "wasm-simd");
  assert.equal(createKernels({ weightFloats: 4, maxIn: 4, maxOut: 4, kernels: "js" }).kind, "js");
});

for (const kind of kinds) {
  Deno.test(`kernels (${kind}): a token's outputs are bitwise the same for T = 1, 7, 33 and any place`, () => {
    for (const [inDim, outDim] of SHAPES) {
      const { k, w, b } = setup(kind, inDim, outDim);
      const X = rand(33 * inDim, inDim + 3);
      for (const bias of [b, null]) {
        const all = run(k, w, bias, X, 33, inDim, outDim);
        // T = 7 blocks at several offsets, and T = 1 for every token
        for (const start of [0, 1, 26]) {
          const blk = run(k, w, bias, X.slice(start * inDim, (start + 7) * inDim), 7, inDim, outDim);
          assert.deepEqual(
            bits(blk),
            bits(all.slice(start * outDim, (start + 7) * outDim)),
            `${inDim}x${outDim} T=7@${start}`,
          );
        }
        for (let t = 0; t < 33; t++) {
          const one = run(k, w, bias, X.slice(t * inDim, (t + 1) * inDim), 1, inDim, outDim);
          assert.deepEqual(
            bits(one),
            bits(all.slice(t * outDim, (t + 1) * outDim)),
            `${inDim}x${outDim} T=1 token ${t}`,
          );
          // and equal to the scalar definition of the order
          for (let o = 0; o < outDim; o++) {
            const s = dotF32(X, t * inDim, w, o * inDim, inDim);
            assert.equal(one[o], bias ? Math.fround(s + bias[o]) : s);
          }
        }
      }
    }
  });

  Deno.test(`kernels (${kind}): close to a float64 reference`, () => {
    const inDim = 67, outDim = 13, n = 5;
    const { k, w, b } = setup(kind, inDim, outDim);
    const X = rand(n * inDim, 99);
    const out = run(k, w, b, X, n, inDim, outDim);
    for (let t = 0; t < n; t++) {
      for (let o = 0; o < outDim; o++) {
        let s = b[o];
        for (let i = 0; i < inDim; i++) s += X[t * inDim + i] * w[o * inDim + i];
        assert.ok(Math.abs(out[t * outDim + o] - s) < 1e-5, `t ${t} o ${o}: ${out[t * outDim + o]} vs ${s}`);
      }
    }
  });
}

Deno.test("kernels: WASM equals JS bitwise, including chunks of more than 64 tokens and 4096 columns", {
  ignore: !wasmSimdSupported(),
}, () => {
  for (const [inDim, outDim, n] of [[67, 13, 33], [5, 4099, 3], [8, 9, 130], [1, 1, 65]]) {
    const a = setup("wasm", inDim, outDim), j = setup("js", inDim, outDim);
    const X = rand(n * inDim, 5);
    assert.deepEqual(
      bits(run(a.k, a.w, a.b, X, n, inDim, outDim)),
      bits(run(j.k, j.w, j.b, X, n, inDim, outDim)),
    );
    assert.deepEqual(
      bits(run(a.k, a.w, null, X, n, inDim, outDim)),
      bits(run(j.k, j.w, null, X, n, inDim, outDim)),
    );
  }
});

Deno.test("kernels: WASM equals JS bitwise across the unrolled (16-float) and single-step inner loops", {
  ignore: !wasmSimdSupported(),
}, () => {
  // inDim covers: below one unrolled pass, exact passes, passes + 4-float steps, + a scalar tail.
  for (const inDim of [4, 12, 16, 20, 36, 48, 63, 64, 77, 384]) {
    const outDim = 7; // one group of 4 rows and 3 single rows
    const a = setup("wasm", inDim, outDim), j = setup("js", inDim, outDim);
    // T <= 8: each T has its own row tile ($r1 .. $r8); 9 and 12: the 4-row groups (quads, pairs, one)
    for (const T of [1, 2, 3, 4, 5, 6, 7, 8, 9, 12]) {
      const X = rand(T * inDim, 11 + T);
      const all = bits(run(a.k, a.w, a.b, X, T, inDim, outDim));
      assert.deepEqual(all, bits(run(j.k, j.w, j.b, X, T, inDim, outDim)), `inDim ${inDim} T ${T}`);
      // each token alone (the 1-token kernels) gives the same bits as inside the block
      for (let t = 0; t < T; t++) {
        const one = bits(run(a.k, a.w, a.b, X.slice(t * inDim, (t + 1) * inDim), 1, inDim, outDim));
        assert.deepEqual(one, all.slice(t * outDim, (t + 1) * outDim), `inDim ${inDim} T ${T} token ${t}`);
      }
    }
  }
});

Deno.test("kernels: bad use is refused with clear messages", () => {
  const { k, w } = setup("wasm", 4, 4);
  assert.throws(
    () => k.matmul(new Float32Array(4), new Float32Array(4), new Float32Array(16), null, 1, 4, 4),
    /not allocated by this Kernels/,
  );
  assert.throws(
    () => k.matmul(new Float32Array(3), new Float32Array(4), w, null, 1, 4, 4),
    /out has 3 elements/,
  );
  assert.throws(() => k.alloc(100), /exceeds the reserved/);
  assert.throws(
    () => createKernels({ weightFloats: 2 ** 30, maxIn: 4, maxOut: 4, label: "big" }),
    /big needs 4\.00 GiB.*at most 4 GiB/,
  );
  assert.throws(
    () => createKernels({ weightFloats: 4, maxIn: 4, maxOut: 4, kernels: "gpu" as "js" }),
    /unknown kernel choice 'gpu'/,
  );
});

/**
 * Kernels holding one random weight [outDim, inDim] twice, as bf16 bits and as those bits widened to
 * float32 (exact), plus a bias.
 */
function setupBf16(kind: "wasm" | "js", inDim: number, outDim: number) {
  const k = createKernels({
    weightFloats: padBf16(outDim * inDim) + padFloats(outDim * inDim) + padFloats(outDim),
    maxIn: inDim,
    maxOut: outDim,
    kernels: kind,
  });
  const src = rand(outDim * inDim, inDim * 17 + outDim);
  const h = k.allocBf16(outDim * inDim);
  const srcBits = bits(src);
  for (let i = 0; i < h.length; i++) h[i] = srcBits[i] >>> 16; // truncate to bf16
  const w = k.alloc(outDim * inDim);
  const wBits = bits(w);
  for (let i = 0; i < h.length; i++) wBits[i] = h[i] << 16;
  const b = k.alloc(outDim);
  b.set(rand(outDim, 3 + outDim));
  return { k, h, w, b };
}

function runBf16(
  k: Kernels,
  h: Uint16Array,
  b: Float32Array | null,
  x: Float32Array,
  n: number,
  i: number,
  o: number,
) {
  const out = new Float32Array(n * o);
  k.matmulBf16(out, x, h, b, n, i, o);
  return out;
}

for (const kind of kinds) {
  Deno.test(`kernels (${kind}): matmulBf16 is bitwise matmul on the widened weights, T = 1..9, odd sizes`, () => {
    // inDim: tails of 1..3, below / at / past one unrolled pass; outDim: groups of 4 plus single rows
    for (const [inDim, outDim] of [[1, 1], [3, 5], [5, 9], [13, 7], [16, 4], [63, 6], [67, 13], [130, 33]]) {
      const { k, h, w, b } = setupBf16(kind, inDim, outDim);
      for (let T = 1; T <= 9; T++) {
        const X = rand(T * inDim, inDim * 7 + T);
        for (const bias of [b, null]) {
          const got = runBf16(k, h, bias, X, T, inDim, outDim);
          assert.deepEqual(
            bits(got),
            bits(run(k, w, bias, X, T, inDim, outDim)),
            `${inDim}x${outDim} T=${T}`,
          );
          for (let t = 0; t < T; t++) {
            for (let o = 0; o < outDim; o++) {
              const s = dotBf16(X, t * inDim, h, o * inDim, inDim);
              assert.equal(s, dotF32(X, t * inDim, w, o * inDim, inDim));
              assert.equal(got[t * outDim + o], bias ? Math.fround(s + bias[o]) : s);
            }
          }
        }
      }
    }
  });
}

Deno.test(
  "kernels: matmulBf16 WASM equals JS bitwise, including chunks of more than 64 tokens and 4096 columns",
  {
    ignore: !wasmSimdSupported(),
  },
  () => {
    for (const [inDim, outDim, n] of [[67, 13, 33], [5, 4099, 3], [7, 4101, 66], [8, 9, 130], [384, 7, 4]]) {
      const a = setupBf16("wasm", inDim, outDim), j = setupBf16("js", inDim, outDim);
      assert.deepEqual(a.h, j.h);
      const X = rand(n * inDim, 21);
      for (const [ab, jb] of [[a.b, j.b], [null, null]]) {
        const got = bits(runBf16(a.k, a.h, ab, X, n, inDim, outDim));
        assert.deepEqual(got, bits(runBf16(j.k, j.h, jb, X, n, inDim, outDim)), `${inDim}x${outDim} n=${n}`);
        assert.deepEqual(got, bits(run(a.k, a.w, ab, X, n, inDim, outDim)), `${inDim}x${outDim} n=${n} f32`);
      }
    }
  },
);

Deno.test("kernels: bf16 bad use is refused with clear messages", () => {
  const { k, h } = setupBf16("wasm", 4, 4);
  assert.throws(
    () => k.matmulBf16(new Float32Array(4), new Float32Array(4), new Uint16Array(16), null, 1, 4, 4),
    /not allocated by this Kernels/,
  );
  assert.throws(
    () => k.matmulBf16(new Float32Array(4), new Float32Array(4), h, null, 1, 4, 5),
    /weight has 16 elements, need \[5, 4\]/,
  );
  assert.throws(() => k.allocBf16(2), /allocBf16\(2\) exceeds the reserved/);
});

Deno.test({
  name: "kernels: matmul and matmulBf16 over 2 and 3 threads are bitwise the single-thread results",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await workersReady(); // before that, calls run on one thread
    // Row counts that split unevenly, are not multiples of 4, or fall under the split threshold.
    for (
      const [T, n, m] of [[1, 384, 1024], [3, 384, 1030], [4, 1024, 384], [7, 384, 8192], [2, 100, 37], [
        64,
        256,
        300,
      ]]
    ) {
      const outs: Float32Array[] = [];
      for (const threads of [1, 2, 3]) {
        const k = createKernels({
          weightFloats: padFloats(n * m) + padFloats(m) + padBf16(n * m),
          maxIn: n,
          maxOut: m,
          kernels: "wasm",
          threads,
        });
        assert.equal(k.threads, threads);
        const w = k.alloc(n * m), b = k.alloc(m);
        w.set(rand(n * m, 7));
        b.set(rand(m, 9));
        const wb = k.allocBf16(n * m);
        const bits = new Uint32Array(w.buffer.slice(w.byteOffset, w.byteOffset + w.byteLength));
        for (let i = 0; i < wb.length; i++) wb[i] = bits[i] >>> 16;
        const x = rand(T * n, 11);
        const y = new Float32Array(T * m), yb = new Float32Array(T * m);
        if (threads > 1 && T * n * m >= 1 << 16) {
          // the compared results are ones a worker computed part of
          await withWorkers(k, () => k.matmul(y, x, w, b, T, n, m));
          await withWorkers(k, () => k.matmulBf16(yb, x, wb, null, T, n, m));
        } else {
          k.matmul(y, x, w, b, T, n, m);
          k.matmulBf16(yb, x, wb, null, T, n, m);
        }
        const o = new Float32Array(2 * T * m);
        o.set(y);
        o.set(yb, T * m);
        outs.push(o);
        k.dispose();
        assert.equal(k.threads, 1, "dispose stops the workers; the kernels go on, on one thread");
        k.matmul(y, x, w, b, T, n, m);
        assert.deepEqual(y, outs[0].subarray(0, T * m));
      }
      for (const o of outs.slice(1)) {
        assert.ok(o.every((v, i) => Object.is(v, outs[0][i])), `T=${T} n=${n} m=${m}`);
      }
    }
    assert.throws(
      () => createKernels({ weightFloats: 4, maxIn: 4, maxOut: 4, threads: 0 }),
      /threads 0 must be an integer in \[1, 256\]/,
    );
  },
});

for (const dtype of ["float32", "bf16"] as const) {
  Deno.test({
    name:
      `kernels: packed ${dtype} weights (row pairs) give bitwise the plain matmul, at any T, bias or threads`,
    ignore: !wasmSimdSupported(),
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      await workersReady();
      // odd row counts (a last row left unpaired), scalar tails (inDim % 4), unrolled and single-step loops,
      // enough rows to split over threads and columns (> 4096) to take two column chunks
      for (const [inDim, outDim] of [[4, 2], [7, 5], [16, 9], [63, 13], [64, 64], [77, 130], [96, 4099]]) {
        for (const threads of [1, 3]) {
          const n = inDim * outDim;
          const k = createKernels({
            weightFloats: 2 * padFloats(n) + padFloats(outDim),
            maxIn: inDim,
            maxOut: outDim,
            threads,
          });
          const src = rand(n, inDim + outDim), b = k.alloc(outDim);
          b.set(rand(outDim, 3));
          // The same weights twice: `plain` stays row-major, `w` gets packed.
          const [plain, w] = dtype === "float32"
            ? [k.alloc(n), k.alloc(n)]
            : [k.allocBf16(n), k.allocBf16(n)];
          if (plain instanceof Float32Array) plain.set(src);
          else plain.set(bits(src).map((v) => v >>> 16));
          w.set(plain);
          // plain's values as float32 (bf16 widened exactly)
          const wide = plain instanceof Float32Array
            ? plain
            : new Float32Array(Uint32Array.from(plain, (h) => h << 16).buffer);
          const mm = (
            m: Float32Array | Uint16Array,
            bias: Float32Array | null,
            X: Float32Array,
            T: number,
          ) => {
            const out = new Float32Array(T * outDim);
            if (m instanceof Float32Array) k.matmul(out, X, m, bias, T, inDim, outDim);
            else k.matmulBf16(out, X, m, bias, T, inDim, outDim);
            return out;
          };
          assert.equal(k.pack(w, outDim, inDim), true);
          // (with 4 columns a pair's one chunk per row is the plain layout already)
          if (inDim > 4) assert.notDeepEqual(Array.from(w), Array.from(plain), "the layout changed");
          const row = new Float32Array(inDim + 2);
          for (const r of [0, 1, outDim - 1]) {
            k.row(w, r, inDim, row, 2);
            assert.deepEqual(
              bits(row.subarray(2)),
              bits(wide.subarray(r * inDim, (r + 1) * inDim)),
              `row ${r}`,
            );
          }
          if (w instanceof Float32Array) assert.deepEqual(bits(k.unpacked(w, outDim, inDim)), bits(wide));
          if (threads > 1 && 70 * n >= 1 << 16 && outDim >= 8) {
            // workers started and spinning, so that they take parts of the calls below
            const X = rand(70 * inDim, 70);
            await withWorkers(k, () => mm(w, b, X, 70));
          }
          for (const T of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 70]) {
            const X = rand(T * inDim, T);
            for (const bias of [b, null]) {
              assert.deepEqual(
                bits(mm(w, bias, X, T)),
                bits(mm(plain, bias, X, T)),
                `${inDim}x${outDim} T ${T} threads ${threads} bias ${bias !== null}`,
              );
            }
          }
          assert.throws(() => k.pack(w, outDim, inDim), /packed already/);
          assert.throws(
            () =>
              w instanceof Float32Array
                ? k.matmul(new Float32Array(outDim), new Float32Array(inDim), w, null, 1, inDim, outDim - 1)
                : k.matmulBf16(
                  new Float32Array(outDim),
                  new Float32Array(inDim),
                  w,
                  null,
                  1,
                  inDim,
                  outDim - 1,
                ),
            /packed weight \[\d+, \d+\] must be used whole/,
          );
          k.dispose();
        }
      }
    },
  });
}

Deno.test("kernels: the JS kernels keep the plain layout", () => {
  const js = setup("js", 8, 4);
  assert.equal(js.k.pack(js.w, 4, 8), false, "the JS kernels keep the plain layout");
  assert.equal(js.k.unpacked(js.w, 4, 8), js.w);
});

Deno.test("kernels: SwiGLU's activation is bitwise the same in WASM and JS, within 2 ulp of float64", () => {
  const len = 4099; // several tails of 4, and (below) more than one scratch chunk with few columns
  const g = new Float32Array(len), u = new Float32Array(len);
  for (let i = 0; i < len; i++) {
    g[i] = Math.sin(i * 0.77) * (i % 11 === 0 ? 150 : 8); // includes clamped exponents (|g| > 87)
    u[i] = Math.cos(i * 0.31) * 3;
  }
  g[0] = 0;
  g[1] = -0;
  const outs = [];
  for (const kind of kinds) {
    const k = createKernels({ weightFloats: 4, maxIn: 8, maxOut: 8, kernels: kind }); // small scratch
    const out = new Float32Array(len);
    k.swiglu(out, g, u, len);
    const aliased = g.slice();
    k.swiglu(aliased, aliased, u, len);
    assert.deepEqual(bits(aliased), bits(out), `${kind}: out may alias gate`);
    outs.push(out);
  }
  if (outs.length === 2) assert.deepEqual(bits(outs[0]), bits(outs[1]), "WASM equals JS");
  for (let i = 0; i < len; i++) {
    const want = (g[i] / (1 + Math.exp(-g[i]))) * u[i];
    const err = Math.abs(outs[0][i] - want);
    assert.ok(err <= 2.5e-7 * Math.abs(want) + 1e-30, `silu(${g[i]}) * ${u[i]}: ${outs[0][i]} vs ${want}`);
  }
});
