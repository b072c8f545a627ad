/**
 * kernels/attention: the WASM SIMD attention inner products equal their scalar-JS twin bit for bit (head
 * sizes that take every column block of mix, with and without a scalar tail; key counts that take the
 * 4-key and the single-key paths of scores; slot lists in any order), a key's score does not depend on the
 * other keys of the call, and both stay close to a float64 reference. With matmul threads, attend splits
 * its heads over them (the workers run their parts: a job a worker failed would send every later call back
 * to one thread) and gives the same bits, and the arena takes back a disposed session's block.
 */
import assert from "node:assert/strict";
import { type AttentionKernels, createAttentionArena, createAttentionKernels } from "../kernels/attention.ts";
import { createKernels, wasmSimdSupported, workersReady } from "../kernels/mod.ts";
import { withWorkers } from "./support/workers.ts";

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

function rand(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

/** A cache of `slots` rows of `row` floats, a query and a slot list, inside `a`'s memory. */
function setup(a: AttentionKernels, hd: number, slots: number, n: number, seed: number) {
  const row = 2 * hd + 4; // two kv heads and padding: the head offset and row stride both matter
  const r = rand(seed);
  const k = a.alloc(slots * row), v = a.alloc(slots * row), q = a.alloc(2 * hd);
  for (let i = 0; i < k.length; i++) k[i] = r() * 3;
  for (let i = 0; i < v.length; i++) v[i] = r() * 3;
  for (let i = 0; i < q.length; i++) q[i] = r() * 3;
  const ctx = a.allocI32(n);
  for (let j = 0; j < n; j++) ctx[j] = (j * 7 + 3) % slots; // out of order, with repeats
  const p = a.alloc(n);
  for (let j = 0; j < n; j++) p[j] = Math.abs(r());
  return { row, k, v, q, ctx, p, scores: a.alloc(n), out: a.alloc(2 * hd) };
}

function runBoth(a: AttentionKernels, hd: number, n: number, seed: number) {
  const s = setup(a, hd, 13, n, seed);
  a.scores(s.scores, s.q, hd, s.k, hd, s.ctx, n, s.row, hd); // second query head, second kv head
  a.mix(s.out, hd, s.p, s.v, hd, s.ctx, n, s.row, hd);
  return { ...s, scoreBits: bits(s.scores), outBits: bits(s.out.subarray(hd)) };
}

Deno.test({
  name: "kernels attention: WASM equals JS bitwise (head sizes 4, 6, 40, 48, 64, 66)",
  ignore: !wasmSimdSupported(),
  fn: () => {
    for (const hd of [4, 6, 40, 48, 64, 66]) {
      for (const n of [1, 3, 5, 7, 40]) { // keys go 4 at a time, then one by one
        const w = runBoth(createAttentionKernels(1 << 16, 1 << 10, "wasm"), hd, n, hd * 31 + n);
        const j = runBoth(createAttentionKernels(1 << 16, 1 << 10, "js"), hd, n, hd * 31 + n);
        assert.deepEqual(w.scoreBits, j.scoreBits, `scores hd ${hd} n ${n}`);
        assert.deepEqual(w.outBits, j.outBits, `mix hd ${hd} n ${n}`);
      }
    }
  },
});

for (const kind of wasmSimdSupported() ? ["wasm", "js"] as const : ["js"] as const) {
  Deno.test(`kernels attention (${kind}): a key's score does not depend on the call; close to float64`, () => {
    const a = createAttentionKernels(1 << 16, 1 << 10, kind);
    const hd = 48, n = 9;
    const s = setup(a, hd, 13, n, 7);
    a.scores(s.scores, s.q, 0, s.k, 0, s.ctx, n, s.row, hd);
    const one = a.alloc(1), ctx1 = a.allocI32(1);
    for (let j = 0; j < n; j++) {
      ctx1[0] = s.ctx[j];
      a.scores(one, s.q, 0, s.k, 0, ctx1, 1, s.row, hd);
      assert.equal(bits(one)[0], bits(s.scores)[j], `key ${j}`);
      let ref = 0;
      for (let d = 0; d < hd; d++) ref += s.q[d] * s.k[s.ctx[j] * s.row + d];
      assert.ok(Math.abs(s.scores[j] - ref) < 1e-4, `score ${j}: ${s.scores[j]} vs ${ref}`);
    }
    a.mix(s.out, 0, s.p, s.v, 0, s.ctx, n, s.row, hd);
    for (let d = 0; d < hd; d++) {
      let ref = 0;
      for (let j = 0; j < n; j++) ref += s.p[j] * s.v[s.ctx[j] * s.row + d];
      assert.ok(Math.abs(s.out[d] - ref) < 1e-4, `out ${d}: ${s.out[d]} vs ${ref}`);
    }
  });
}

Deno.test({
  name: "kernels attention: arrays from elsewhere are refused",
  ignore: !wasmSimdSupported(),
  fn: () => {
    const a = createAttentionKernels(1024, 16, "wasm");
    const s = setup(a, 8, 4, 2, 1);
    assert.throws(
      () => a.scores(s.scores, new Float32Array(8), 0, s.k, 0, s.ctx, 2, s.row, 8),
      /q was not allocated/,
    );
    assert.throws(() => a.alloc(1 << 20), /exceeds the reserved/);
  },
});

Deno.test({
  name: "kernels attention: softmax is bitwise the same in WASM and JS, and close to float64",
  ignore: !wasmSimdSupported(),
  fn: () => {
    for (const n of [1, 3, 4, 7, 64, 301]) { // lane groups of 4 and tails
      const got = [];
      for (const kind of ["wasm", "js"] as const) {
        const a = createAttentionKernels(1 << 12, 1 << 4, kind);
        const r = rand(n);
        const s = a.alloc(n), p = a.alloc(n);
        for (let j = 0; j < n; j++) s[j] = r() * 200; // spreads past e^-87, where exp clamps
        a.softmax(p, s, n, 0.14);
        got.push({ p, s });
      }
      assert.deepEqual(bits(got[0].p), bits(got[1].p), `n ${n}`);
      const { p, s } = got[0];
      // the scaled scores and their distance to the maximum rounded to float32 as in the kernels (and in
      // torch), e^x, its sum and the quotients in float64
      const v = Array.from(s, (x) => Math.fround(x * Math.fround(0.14))), max = Math.max(...v);
      const e = v.map((x) => Math.exp(Math.fround(x - max))), sum = e.reduce((a, b) => a + b, 0);
      for (let j = 0; j < n; j++) {
        assert.ok(Math.abs(p[j] - e[j] / sum) <= 1e-6 * (e[j] / sum) + 1e-36, `n ${n} j ${j}: ${p[j]}`);
      }
    }
  },
});

Deno.test({
  name: "kernels attention: attend (every head in one call, heads of a kv head in pairs, slot- or " +
    "head-major caches) is bitwise scores, softmax and mix per head",
  ignore: !wasmSimdSupported(),
  fn: () => {
    // [hd, heads, group, n]: 16-float column blocks and tails, pairs and a lone last head of a group (group
    // 3), no pairs (group 1), 4-key passes and single keys
    for (
      const [hd, heads, group, n] of [[12, 4, 2, 9], [48, 8, 2, 100], [66, 6, 3, 13], [64, 4, 1, 7], [
        6,
        4,
        4,
        5,
      ]]
    ) {
      const kvHeads = heads / group, slots = n + 2;
      // [row, headStride] in floats: kv heads interleaved per slot, or each kv head's slots in one run
      for (const [row, headStride] of [[kvHeads * hd, hd], [hd, slots * hd]]) {
        const got = [];
        for (const kind of ["wasm", "js"] as const) {
          const a = createAttentionKernels(1 << 16, 1 << 8, kind);
          const r = rand(hd + n);
          const k = a.alloc(slots * kvHeads * hd), v = a.alloc(slots * kvHeads * hd), q = a.alloc(heads * hd);
          for (const t of [k, v, q]) for (let i = 0; i < t.length; i++) t[i] = r() * 3;
          const ctx = a.allocI32(n);
          for (let j = 0; j < n; j++) ctx[j] = (j * 5 + 2) % slots;
          const sc = a.alloc(2 * n), out = a.alloc(heads * hd), want = a.alloc(heads * hd);
          const call = [q, k, v, ctx, n, row, headStride, hd, heads, group, 0.3] as const;
          a.attend(...call, sc, out);
          for (let h = 0; h < heads; h++) {
            const kv = Math.floor(h / group) * headStride;
            a.scores(sc, q, h * hd, k, kv, ctx, n, row, hd);
            a.softmax(sc, sc, n, 0.3);
            a.mix(want, h * hd, sc, v, kv, ctx, n, row, hd);
          }
          const what = `${kind} hd ${hd} heads ${heads} group ${group} n ${n} row ${row}`;
          assert.deepEqual(bits(out), bits(want), what);
          assert.throws(
            () => a.attend(...call, sc.subarray(0, 2 * n - 1), out),
            /attend needs \d+ floats of score scratch/,
          );
          got.push(bits(out));
        }
        assert.deepEqual(got[0], got[1], `WASM equals JS, hd ${hd} group ${group} row ${row}`);
      }
    }
  },
});

/** A matmul big enough to split still goes to the threads: a worker that failed a job sends them all back to one. */
function assertThreadsAlive(kern: ReturnType<typeof createKernels>, what: string): void {
  const before = kern.threadedCalls;
  bigMatmul(kern);
  assert.equal(kern.threadedCalls, before + 1, `${what}: the worker threads still run`);
}

const weightOf = new WeakMap<object, Float32Array>();
function bigMatmul(kern: ReturnType<typeof createKernels>): void {
  let w = weightOf.get(kern);
  if (!w) weightOf.set(kern, w = kern.alloc(256 * 64));
  kern.matmul(new Float32Array(8 * 256), new Float32Array(8 * 64), w, null, 8, 64, 256);
}

Deno.test({
  name:
    "kernels attention: with 2 and 3 threads attend splits its heads over them, bitwise the one-thread result",
  ignore: !wasmSimdSupported(),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await workersReady();
    // [hd, heads, group, n]: 4 kv heads of 2 (split 2 + 2, and 1 + 1 + 2 over 3 threads), 3 kv heads of 3
    // with a lone last head, 6 kv heads without pairs; n large enough to split
    for (const [hd, heads, group, n] of [[48, 8, 2, 300], [66, 9, 3, 129], [32, 6, 1, 401]]) {
      const kvHeads = heads / group, slots = n + 3, row = hd, headStride = slots * hd;
      const fill = (a: AttentionKernels) => {
        const r = rand(hd * n);
        const k = a.alloc(slots * kvHeads * hd), v = a.alloc(slots * kvHeads * hd), q = a.alloc(heads * hd);
        for (const t of [k, v, q]) for (let i = 0; i < t.length; i++) t[i] = r() * 3;
        const ctx = a.allocI32(n);
        for (let j = 0; j < n; j++) ctx[j] = (j * 5 + 2) % slots;
        return { k, v, q, ctx, sc: a.alloc(2 * slots), out: a.alloc(heads * hd) };
      };
      const one = createAttentionKernels(1 << 20, 1 << 10, "wasm");
      const w = fill(one);
      for (const threads of [2, 3]) {
        one.attend(w.q, w.k, w.v, w.ctx, n, row, headStride, hd, heads, group, 0.2, w.sc, w.out);
        const kern = createKernels({ weightFloats: 1 << 15, maxIn: 64, maxOut: 256, threads });
        const a = kern.attention(1 << 20, 1 << 10, 2 * slots);
        assert.ok(a, "shared attention kernels with threads");
        const g = fill(a);
        let calls = 0;
        await withWorkers(kern, () => {
          a.attend(g.q, g.k, g.v, g.ctx, n, row, headStride, hd, heads, group, 0.2, g.sc, g.out);
          calls++;
        });
        const what = `threads ${threads} hd ${hd} heads ${heads} group ${group} n ${n}`;
        assert.deepEqual(bits(g.out), bits(w.out), what);
        assert.equal(a.splits, calls, what);
        assertThreadsAlive(kern, what);
        // a short context is not worth a hand-off: one thread, same bits
        a.attend(g.q, g.k, g.v, g.ctx, 3, row, headStride, hd, heads, group, 0.2, g.sc, g.out);
        one.attend(w.q, w.k, w.v, w.ctx, 3, row, headStride, hd, heads, group, 0.2, w.sc, w.out);
        assert.deepEqual(bits(g.out), bits(w.out), `${what}, 3 keys`);
        assert.equal(a.splits, calls, `${what}, 3 keys`);
        assert.throws(
          () => a.attend(w.q, g.k, g.v, g.ctx, n, row, headStride, hd, heads, group, 0.2, g.sc, g.out),
          /q was not allocated by these attention kernels/,
        );
        // a disposed block is handed out again rather than the arena growing
        const at = g.k.byteOffset;
        a.dispose();
        const b = kern.attention(1 << 20, 1 << 10, 2 * slots)!;
        assert.equal(b.alloc(4).byteOffset <= at, true, "the freed block is reused");
        b.dispose();
        kern.dispose();
      }
      assert.equal(
        createKernels({ weightFloats: 16, maxIn: 8, maxOut: 8, threads: 1 }).attention(64, 16, 8),
        null,
      );
    }
  },
});

Deno.test({
  name:
    "kernels attention: the arena merges freed neighbours and gives its tail back, so changing sizes reuse memory",
  ignore: !wasmSimdSupported() || typeof SharedArrayBuffer !== "function",
  fn() {
    const arena = createAttentionArena()!;
    assert.ok(arena);
    const a = arena.take(1024)!, b = arena.take(2048)!, c = arena.take(512)!;
    assert.deepEqual([a, b - a, c - b], [16, 1024, 2048]);
    assert.equal(arena.used, 3584);
    arena.release(a, 1024);
    arena.release(b, 2048); // merges with a's block: 3072 free bytes at 16
    assert.equal(arena.take(3000), 16, "a block spanning both freed ones");
    arena.release(16, 3000);
    arena.release(c, 512); // the tail: everything is free again
    assert.deepEqual([arena.used, arena.reserved], [0, 0]);
    // sessions of changing sizes, released out of order: the reservation stays at the peak in use
    const r = rand(7);
    const live: [number, number][] = [];
    let peak = 0;
    for (let i = 0; i < 400; i++) {
      if (live.length > 3 || (live.length > 0 && r() < 0)) {
        const [at, bytes] = live.splice(Math.floor((r() + 0.5) * live.length), 1)[0];
        arena.release(at, bytes);
      }
      const bytes = 16 * Math.floor((r() + 0.5) * 4096 + 1);
      live.push([arena.take(bytes)!, bytes]);
      peak = Math.max(peak, arena.used);
    }
    assert.ok(arena.reserved <= 2 * peak, `reserved ${arena.reserved} against a peak of ${peak} in use`);
    for (const [at, bytes] of live) arena.release(at, bytes);
    assert.deepEqual([arena.used, arena.reserved], [0, 0]);
  },
});
