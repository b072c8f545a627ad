/**
 * Top-k logits through the int8 head screen (backends/cpu/head_screen.ts) are exactly those of the full
 * float32 head: the same ids in the same order and the same value bits, ties to the lower id, on the
 * fixture models and on adversarial heads where the int8 scores alone pick the wrong token.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadCheckpoint } from "../loader/checkpoint.ts";
import {
  buildHeadScreen,
  LARGE_HEAD_BYTES,
  MAX_CANDIDATES,
  MAX_SCREEN_K,
  MAX_SCREEN_ROWS,
  MAX_SCREEN_ROWS_LARGE,
  MAX_SCREEN_ROWS_Q7,
  screenedTopK,
} from "../backends/cpu/head_screen.ts";
import {
  createKernels,
  type Kernels,
  padFloats,
  wasmRelaxedSimdSupported,
  wasmSimdSupported,
} from "../kernels/mod.ts";
import { topK } from "../kernels/topk.ts";
import { randomFloats } from "./support/random.ts";
import { headScreenFloats } from "../backends/cpu/head_screen.ts";
import { loadWeights } from "../backends/cpu/weights.ts";
import { CpuSession } from "../backends/cpu/session.ts";
import { ropeInvFreq } from "../backends/rope.ts";

const MODELS = new URL("./fixtures/models/", import.meta.url).pathname;
const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
const KERNELS = ["wasm", "js"] as const;
const range = (start: number, n: number) => Int32Array.from({ length: n }, (_, i) => start + i);

for (const kernels of KERNELS) {
  for (const name of ["llama", "qwen2", "mistral", "llama_bf16", "tiny_chat"]) {
    Deno.test({
      name:
        `cpu head screen (${kernels}): top-k of 1-, 2- and 4-token calls equals the full head's (${name})`,
      ignore: kernels === "wasm" && !wasmSimdSupported(),
      fn: async () => {
        const ckpt = await loadCheckpoint(join(MODELS, name));
        const c = ckpt.config, V = c.vocabSize;
        const [on, off] = [true, false].map((screen) => loadWeights(ckpt, kernels, 8, 2, "auto", screen));
        ckpt.tensors.close();
        const session = (w: typeof on) =>
          new CpuSession({ ...w, config: c, invFreq: ropeInvFreq(c), batch: 1, capacity: 64 });
        const ks = [1, 3, Math.min(MAX_SCREEN_K, V), Math.min(MAX_SCREEN_K + 1, V)];
        let servable = 0;
        for (const k of ks) {
          const a = session(on), b = session(off);
          for (let pos = 0, call = 0; pos + 4 <= 40; pos += [1, 2, 4][call++ % 3]) {
            const n = [1, 2, 4][call % 3]; // calls of 1, 2 and 4 tokens, with a logit row per token
            const req = {
              rows: [{
                tokens: Int32Array.from({ length: n }, (_, i) => ((pos + i) * 37 + 11) % V),
                positions: Int32Array.from({ length: n }, (_, i) => pos + i),
              }],
              logits: { kind: "topk" as const, k },
            };
            // 4-token calls go through the screen only where it serves 4 rows (the 7-bit screen)
            if (k <= MAX_SCREEN_K && n <= on.weights.headScreen!.maxRows) servable += n;
            const oa = await a.forward(req), ob = await b.forward(req);
            a.commit([null]);
            b.commit([null]);
            assert.deepEqual(Array.from(oa.topIds![0]), Array.from(ob.topIds![0]), `ids, k=${k} pos ${pos}`);
            assert.deepEqual(bits(oa.topValues![0]), bits(ob.topValues![0]), `values, k=${k} pos ${pos}`);
          }
        }
        const st = on.weights.headScreen!.stats;
        assert.ok(st.rows >= servable * 0.9, `the screen served ${st.rows} of ${servable} rows`);
        on.kernels.dispose();
        off.kernels.dispose();
      },
    });
  }
}

Deno.test("cpu head screen: greedy forwards go through the screen, and screenHead: false turns it off", async () => {
  const ckpt = await loadCheckpoint(join(MODELS, "llama"));
  const c = ckpt.config;
  for (const screenHead of [true, false]) {
    const { weights, kernels } = loadWeights(ckpt, "auto", 8, 1, "auto", screenHead);
    assert.equal(weights.headScreen !== null, screenHead);
    const s = new CpuSession({
      config: c,
      weights,
      kernels,
      invFreq: ropeInvFreq(c),
      batch: 1,
      capacity: 16,
    });
    await s.forward({
      rows: [{ tokens: Int32Array.of(3, 4), positions: Int32Array.of(0, 1) }],
      logits: { kind: "topk", k: 1 },
    });
    s.commit([null]);
    // more logit rows than the screen serves (MAX_SCREEN_ROWS_Q7, or MAX_SCREEN_ROWS) go through the full head
    const over = (weights.headScreen?.maxRows ?? MAX_SCREEN_ROWS) + 1;
    await s.forward({
      rows: [{ tokens: range(5, over), positions: range(2, over) }],
      logits: { kind: "topk", k: 1 },
    });
    if (screenHead) {
      const st = weights.headScreen!.stats;
      assert.equal(st.rows, 2, "the two rows of the first call were screened, none of the second");
      assert.ok(st.candidates >= 2 && st.candidates < 2 * c.vocabSize / 4, `${st.candidates} candidates`);
    }
    kernels.dispose();
  }
  ckpt.tensors.close();
});

/**
 * A [V, H] head built to defeat int8 scores: groups of rows that tie exactly, rows one float32 ulp apart,
 * rows that differ only below the int8 step, rows of very different scales, and a zero row.
 */
function adversarialHead(V: number, H: number, seed: number): Float32Array {
  const w = randomFloats(V * H, seed).map((v) => v * 0.1);
  const copy = (to: number, from: number) => w.copyWithin(to * H, from * H, (from + 1) * H);
  for (let g = 0; g + 8 <= V; g += 16) {
    copy(g + 1, g); // exact tie with the row before
    copy(g + 2, g);
    w[(g + 2) * H + 3] = nextUp(w[(g + 2) * H + 3]); // one ulp above in one weight
    copy(g + 3, g); // below the int8 step: half a step in many weights, with alternating sign
    const step = maxAbs(w, g, H) / 127;
    for (let i = 0; i < H; i++) w[(g + 3) * H + i] += (i % 2 ? 0.45 : -0.45) * step;
    for (let i = 0; i < H; i++) w[(g + 4) * H + i] *= 40; // a large-scale row
    for (let i = 0; i < H; i++) w[(g + 5) * H + i] *= 1e-3; // a small-scale row
  }
  w.fill(0, 7 * H, 8 * H); // a zero row
  return w;
}

function maxAbs(w: Float32Array, row: number, H: number): number {
  let m = 0;
  for (let i = 0; i < H; i++) m = Math.max(m, Math.abs(w[row * H + i]));
  return m;
}

function nextUp(x: number): number {
  const f = new Float32Array([x]), u = new Uint32Array(f.buffer);
  u[0] += x >= 0 ? 1 : -1;
  return f[0];
}

/** Activation rows that sit on the head's near-ties: a row of the head plus noise, some with outliers. */
function activations(head: Float32Array, V: number, H: number, n: number, seed: number): Float32Array {
  const stream = randomFloats(n * (H + 2), seed);
  let at = 0;
  const r = () => (stream[at++] + 1) / 2; // [0, 1)
  const x = new Float32Array(n * H);
  for (let j = 0; j < n; j++) {
    const row = 16 * Math.floor(r() * (V / 16));
    for (let i = 0; i < H; i++) x[j * H + i] = head[row * H + i] * 10 + (r() - 0.5) * 0.3;
    if (j % 3 === 1) x[j * H + Math.floor(r() * H)] = 25; // an outlier coarsens the int16 step of x
  }
  return x;
}

function kernelsFor(kind: "wasm" | "js", V: number, H: number, threads: number, heads = 1): Kernels {
  return createKernels({
    weightFloats: heads * padFloats(V * H) + headScreenFloats(V, H),
    maxIn: H,
    maxOut: V,
    kernels: kind,
    threads,
    label: "test head",
  });
}

for (const kernels of KERNELS) {
  for (const acts of ["7-bit", "int16"] as const) {
    Deno.test({
      name:
        `cpu head screen (${kernels}, ${acts} activations): exact on adversarial heads where the int8 argmax is wrong`,
      ignore: kernels === "wasm" &&
        (!wasmSimdSupported() || (acts === "7-bit" && !wasmRelaxedSimdSupported())),
      fn: () => {
        const V = 512, H = 64, n = 40;
        let int8Wrong = 0, served = 0, calls = 0;
        for (const seed of [1, 2, 3]) {
          const k = kernelsFor(kernels, V, H, 2);
          const head = k.alloc(V * H);
          head.set(adversarialHead(V, H, seed));
          k.pack(head, V, H);
          const screen = buildHeadScreen(k, head, V, H, acts === "7-bit")!;
          assert.equal(screen.q7 !== null, acts === "7-bit");
          const x = activations(k.unpacked(head, V, H), V, H, n, seed + 100);
          const full = new Float32Array(n * V), approx = new Float32Array(n * V);
          k.matmul(full, x, head, null, n, H, V);
          if (screen.q7) k.matmulQ7(approx, x, screen.q7, n, H, V);
          else k.matmulQ8(approx, x, screen.q!, null, n, H, V);
          for (const topk of [1, 2, 5]) {
            const want = { ids: new Int32Array(n * topk), vals: new Float32Array(n * topk) };
            const int8 = { ids: new Int32Array(n * topk), vals: new Float32Array(n * topk) };
            for (let j = 0; j < n; j++) {
              topK(full, j * V, V, topk, want.ids, want.vals, j * topk);
              topK(approx, j * V, V, topk, int8.ids, int8.vals, j * topk);
            }
            // one row at a time, so that a row screening cannot serve does not hide the others
            for (let j = 0; j < n; j++) {
              const ids = new Int32Array(topk), vals = new Float32Array(topk);
              const scratch = new Float32Array(V);
              calls++;
              const row = x.subarray(j * H, (j + 1) * H);
              if (!screenedTopK(k, screen, head, row, 1, H, V, topk, scratch, ids, vals)) continue;
              served++;
              const at = j * topk;
              assert.deepEqual(
                Array.from(ids),
                Array.from(want.ids.subarray(at, at + topk)),
                `seed ${seed} row ${j}`,
              );
              assert.deepEqual(bits(vals), bits(want.vals.subarray(at, at + topk)), `seed ${seed} row ${j}`);
              if (int8.ids.subarray(at, at + topk).join() !== ids.join()) int8Wrong++;
            }
          }
          k.dispose();
        }
        assert.ok(int8Wrong >= 10, `the int8 scores alone must get some rows wrong here (got ${int8Wrong})`);
        assert.ok(served >= calls * 0.9, `screening served ${served} of ${calls} calls`);
      },
    });
  }
}

Deno.test("cpu head screen: calls it cannot serve return false and write nothing", () => {
  const V = 2 * MAX_CANDIDATES, H = 16;
  const k = kernelsFor("js", V, H, 1, 2);
  const head = k.alloc(V * H);
  head.set(adversarialHead(V, H, 7));
  const screen = buildHeadScreen(k, head, V, H)!;
  const ids = new Int32Array(MAX_SCREEN_K + 1).fill(-7), vals = new Float32Array(MAX_SCREEN_K + 1);
  const scratch = new Float32Array(V);
  const x = new Float32Array(H).fill(0.5);
  assert.equal(
    screenedTopK(k, screen, head, x, 1, H, V, MAX_SCREEN_K + 1, scratch, ids, vals),
    false,
    "k too large",
  );
  // every logit 0: every row ties, more candidates than MAX_CANDIDATES
  assert.equal(screenedTopK(k, screen, head, new Float32Array(H), 1, H, V, 1, scratch, ids, vals), false);
  x[3] = NaN;
  assert.equal(screenedTopK(k, screen, head, x, 1, H, V, 1, scratch, ids, vals), false, "NaN activation");
  assert.ok(ids.every((v) => v === -7), "nothing written");
  const inf = k.alloc(V * H);
  inf.set(head);
  inf[5] = Infinity;
  assert.equal(buildHeadScreen(k, inf, V, H), null, "a non-finite weight: no screen");
});

Deno.test({
  name: "cpu head screen: a head too large to stay cached is screened for up to 8 rows per call",
  ignore: !wasmSimdSupported(),
}, () => {
  const H = 1024, V = LARGE_HEAD_BYTES / 4 / H; // exactly the threshold
  const k = kernelsFor("wasm", V, H, 2);
  const head = k.alloc(V * H);
  head.set(randomFloats(V * H, 11).map((v) => v * 0.05));
  k.pack(head, V, H);
  const screen = buildHeadScreen(k, head, V, H, false)!;
  assert.equal(screen.maxRows, MAX_SCREEN_ROWS_LARGE);
  const m = MAX_SCREEN_ROWS_LARGE, topk = 2;
  const x = activations(k.unpacked(head, V, H), V, H, m, 12);
  const ids = new Int32Array(m * topk), vals = new Float32Array(m * topk), scratch = new Float32Array(m * V);
  assert.ok(screenedTopK(k, screen, head, x, m, H, V, topk, scratch, ids, vals), "served");
  const full = new Float32Array(m * V),
    want = new Int32Array(m * topk),
    wantVals = new Float32Array(m * topk);
  k.matmul(full, x, head, null, m, H, V);
  for (let j = 0; j < m; j++) topK(full, j * V, V, topk, want, wantVals, j * topk);
  assert.deepEqual(Array.from(ids), Array.from(want));
  assert.deepEqual(bits(vals), bits(wantVals));
  assert.equal(
    screenedTopK(
      k,
      screen,
      head,
      new Float32Array(9 * H).fill(0.1),
      9,
      H,
      V,
      1,
      new Float32Array(9 * V),
      ids,
      vals,
    ),
    false,
    "9 rows",
  );
  // a smaller head keeps to MAX_SCREEN_ROWS
  const k2 = kernelsFor("js", 512, 64, 1);
  const small = k2.alloc(512 * 64);
  small.set(adversarialHead(512, 64, 3));
  assert.equal(buildHeadScreen(k2, small, 512, 64, false)!.maxRows, MAX_SCREEN_ROWS);
  // the 7-bit screen (the JS kernels have its twin) serves up to MAX_SCREEN_ROWS_Q7 rows on any head
  assert.equal(buildHeadScreen(k2, small, 512, 64)!.maxRows, MAX_SCREEN_ROWS_Q7);
  k.dispose();
});
