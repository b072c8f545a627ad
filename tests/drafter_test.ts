/**
 * The TS drafter against the PyTorch re-implementation of Apple's drafter (tools/make_drafter_fixture.py):
 * per-step log-prob rows of the reference beam search, per-beam top-k order, checkpoint validation.
 */
import assert from "node:assert/strict";
import { readExpected } from "./support/drafter_fixture.ts";
import { fileURLToPath } from "node:url";
import type { ModelConfig } from "../core/types.ts";
import { encodeSafetensors, openSafetensors } from "../loader/safetensors.ts";
import {
  cpuDrafter,
  type DrafterTarget,
  loadDrafter,
  parseDrafterConfig,
  readDrafterConfig,
  readDrafterWeights,
} from "../drafter/mod.ts";
import { beamSearch } from "../core/beam_search.ts";
import { topKRow, warpLogSoftmax, warpScratch, warpTopK } from "../drafter/cpu.ts";

const FIX = fileURLToPath(new URL("./fixtures/drafter/", import.meta.url));

/** The tiny target's sizes and embedding table, read straight from its checkpoint. */
function fixtureTarget(overrides: Partial<ModelConfig> = {}): DrafterTarget {
  const raw = JSON.parse(Deno.readTextFileSync(FIX + "target/config.json"));
  const store = openSafetensors(FIX + "target/model.safetensors");
  const table = store.readF32("model.embed_tokens.weight", [raw.vocab_size, raw.hidden_size]);
  store.close();
  const config = {
    architecture: "llama",
    vocabSize: raw.vocab_size,
    hiddenSize: raw.hidden_size,
    ...overrides,
  } as ModelConfig; // only the sizes matter to the drafter
  return { config, embeddingTable: () => table };
}

/** Descending, ties to the lower id. */
function stableTopK(row: Float32Array, k: number): number[] {
  return [...row.keys()].sort((a, b) => row[b] - row[a] || a - b).slice(0, k);
}

function close(a: number, b: number): boolean {
  // Warped entries sit near -50000, where float32 spacing is ~0.004: compare those relatively.
  return Math.abs(a - b) <= 1e-4 + 1e-7 * Math.abs(b);
}

for (const name of ["drafter", "drafter_proj"]) {
  Deno.test(`${name}: per-step log-prob rows and top-k match the PyTorch reference`, async () => {
    const dir = FIX + name + "/";
    const target = fixtureTarget();
    const V = target.config.vocabSize;
    const exp = readExpected(dir);
    const drafter = await loadDrafter(dir, target);
    const round = drafter.beginRound(exp.ctx, exp.batch, exp.width);
    for (let s = 0; s < exp.tokens.length; s++) {
      const k = 8;
      const top = await round.step(exp.tokens[s], exp.parents[s], k);
      for (let n = 0; n < exp.batch * exp.width; n++) {
        const b = Math.floor(n / exp.width), w = n % exp.width;
        const got = round.logProbRow(s, b, w);
        const want = exp.rows[s].subarray(n * V, (n + 1) * V);
        for (let v = 0; v < V; v++) {
          assert.ok(close(got[v], want[v]), `step ${s} beam ${n} token ${v}: ${got[v]} vs ${want[v]}`);
        }
        const wantIds = stableTopK(want, k);
        assert.deepEqual([...top.ids.subarray(n * k, (n + 1) * k)], wantIds, `step ${s} beam ${n} top-${k}`);
        for (let i = 0; i < k; i++) assert.equal(top.logProbs[n * k + i], got[wantIds[i]]);
        // Exactly the top-50 (with threshold ties) survive the warp: the rest sit at -50000 - lse.
        const survivors = [...got].filter((x) => x > -1000).length;
        assert.ok(survivors >= 50, `step ${s} beam ${n}: ${survivors} survivors`);
      }
    }
    drafter.dispose();
  });
}

Deno.test("drafter: top-k past the warp survivors orders the tied -50000 rows by ascending id", async () => {
  const dir = FIX + "drafter/";
  const target = fixtureTarget();
  const exp = readExpected(dir);
  const drafter = await loadDrafter(dir, target);
  const round = drafter.beginRound(exp.ctx, exp.batch, exp.width);
  const k = 70;
  const top = await round.step(exp.tokens[0], exp.parents[0], k);
  const row = round.logProbRow(0, 0, 0);
  assert.deepEqual([...top.ids.subarray(0, k)], stableTopK(row, k));
  const tail = [...top.ids.subarray(0, k)].filter((id) => row[id] < -1000);
  assert.ok(tail.length > 0);
  assert.deepEqual(tail, [...tail].sort((a, b) => a - b));
});

Deno.test("drafter: a drafter that does not fit the target is refused with both sizes", async () => {
  const dir = FIX + "drafter/";
  await assert.rejects(
    () => loadDrafter(dir, fixtureTarget({ hiddenSize: 32 })),
    (e: Error) => /hidden_size 16/.test(e.message) && /hidden_size 32/.test(e.message),
  );
  await assert.rejects(
    () => loadDrafter(dir, fixtureTarget({ vocabSize: 32000 })),
    (e: Error) => /vocab_size 104/.test(e.message) && /vocab_size 32000/.test(e.message),
  );
});

Deno.test("drafter: bad tensor shapes and missing tensors name the tensor", async () => {
  const tmp = Deno.makeTempDirSync();
  try {
    const cfg = {
      model_type: "recurrent_drafting_drafter",
      hidden_size: 16,
      vocab_size: 104,
      exit_dim: 32,
      num_draft_layers: 0,
      rnn: false,
      emb_norm: true, // MLX key: tolerated
      num_lookback_tokens: -1,
    };
    Deno.writeTextFileSync(`${tmp}/config.json`, JSON.stringify(cfg));
    const head = (rows: number) => ({
      name: "lm_head.0.weight",
      shape: [rows, 32],
      data: new Float32Array(rows * 32),
    });
    Deno.writeFileSync(`${tmp}/model.safetensors`, encodeSafetensors([head(100)]));
    await assert.rejects(
      () => loadDrafter(tmp, fixtureTarget()),
      /lm_head\.0\.weight.*\[100,32\].*\[104,32\]/,
    );
    Deno.writeFileSync(`${tmp}/model.safetensors`, encodeSafetensors([]));
    await assert.rejects(() => loadDrafter(tmp, fixtureTarget()), /missing tensor 'lm_head\.0\.weight'/);
    // The right shape loads, with the MLX emb_norm key and tensor present and ignored.
    Deno.writeFileSync(
      `${tmp}/model.safetensors`,
      encodeSafetensors([head(104), { name: "emb_norm.weight", shape: [16], data: new Float32Array(16) }]),
    );
    const d = await loadDrafter(tmp, fixtureTarget());
    assert.deepEqual(d.config, {
      hiddenSize: 16,
      vocabSize: 104,
      exitDim: 32,
      numDraftLayers: 0,
      rnn: false,
    });
    // With an all-zero head every logit ties: the warp keeps all, top-k is ids 0..k-1 at -log(V).
    const top = await d.beginRound(new Float32Array(16), 1, 1).step(
      new Int32Array([5]),
      new Int32Array([0]),
      3,
    );
    assert.deepEqual([...top.ids], [0, 1, 2]);
    assert.ok(Math.abs(top.logProbs[0] + Math.log(104)) < 1e-6);
  } finally {
    Deno.removeSync(tmp, { recursive: true });
  }
});

Deno.test("drafter config: wrong model_type and bad fields are refused naming the field", () => {
  assert.throws(
    () => parseDrafterConfig({ model_type: "llama" }, "x/config.json"),
    /x\/config\.json.*model_type.*llama/,
  );
  const ok = {
    model_type: "recurrent_drafting_drafter",
    hidden_size: 8,
    vocab_size: 10,
    num_draft_layers: 1,
  };
  assert.throws(
    () => parseDrafterConfig({ ...ok, hidden_size: "8" }, "c.json"),
    /c\.json: field 'hidden_size'/,
  );
  assert.throws(
    () => parseDrafterConfig({ ...ok, vocab_size: undefined }, "c.json"),
    /missing field 'vocab_size'/,
  );
  assert.throws(() => parseDrafterConfig({ ...ok, rnn: 1 }, "c.json"), /field 'rnn'/);
  // exit_dim absent or -1 (class default) means 2H; rnn absent means false, as in the reference class.
  assert.deepEqual(parseDrafterConfig(ok), {
    hiddenSize: 8,
    vocabSize: 10,
    exitDim: 16,
    numDraftLayers: 1,
    rnn: false,
  });
});

Deno.test("drafter step: bad tokens, parents and sizes are refused", async () => {
  const d = await loadDrafter(FIX + "drafter/", fixtureTarget());
  assert.throws(() => d.beginRound(new Float32Array(15), 1, 2), /ctx has 15 values, expected B\*H = 1\*16/);
  const r = d.beginRound(new Float32Array(32), 2, 1);
  await assert.rejects(
    () => r.step(new Int32Array([1, 104]), new Int32Array([0, 0]), 2),
    /tokens\[1\] = 104/,
  );
  await assert.rejects(() => r.step(new Int32Array([1, 2]), new Int32Array([0, 1]), 2), /parents\[1\] = 1/);
  await assert.rejects(() => r.step(new Int32Array([1]), new Int32Array([0]), 2), /expected B\*W = 2/);
  assert.throws(() => r.logProbRow(0, 0, 0), /step 0 not computed/);
});

Deno.test("drafter + core beamSearch reproduce the PyTorch reference beams", async () => {
  for (const name of ["drafter", "drafter_proj"]) {
    const dir = FIX + name + "/";
    const exp = readExpected(dir);
    const s = openSafetensors(dir + "expected.safetensors");
    const [B, W, L] = s.info("beams").shape;
    const want = Int32Array.from(s.readF32("beams"));
    s.close();
    const drafter = await loadDrafter(dir, fixtureTarget());
    const init = Int32Array.from({ length: B }, (_, b) => exp.tokens[0][b * W]);
    const got = await beamSearch(drafter, exp.ctx, init, W, L);
    assert.deepEqual([...got.beams], [...want], name);
  }
});

Deno.test("drafter warpTopK: bit for bit warpLogSoftmax + topKRow, with ties and k past the survivors", () => {
  let seed = 12345;
  const rnd = () => (seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32;
  for (const [V, warpK, k] of [[300, 50, 8], [300, 50, 1], [300, 50, 70], [40, 50, 5], [1000, 50, 50]]) {
    for (let trial = 0; trial < 5; trial++) {
      // Coarse values (many exact ties, including at the warp threshold) or fine ones.
      const coarse = trial % 2 === 0;
      const row = Float32Array.from(
        { length: V },
        () => coarse ? Math.floor(rnd() * 12) / 4 : rnd() * 20 - 10,
      );
      const want = row.slice();
      warpLogSoftmax(want, warpK, new Float32Array(warpK));
      const wantIds = new Int32Array(k), wantVals = new Float32Array(k);
      topKRow(want, k, wantIds, wantVals, 0);
      const ids = new Int32Array(k + 2), vals = new Float32Array(k + 2);
      warpTopK(row, 0, V, warpK, k, ids, vals, 2, warpScratch(V, warpK));
      const tag = `V ${V} k ${k} trial ${trial}`;
      assert.deepEqual([...ids.subarray(2)], [...wantIds], tag);
      assert.deepEqual(
        [...new Uint32Array(vals.buffer, 8, k)],
        [...new Uint32Array(wantVals.buffer)],
        tag,
      );
    }
  }
});

Deno.test("drafter: BF16-stored matrices run as bf16 in kernel memory, bitwise equal to float32 (default drafter)", async () => {
  const dir = fileURLToPath(new URL("../models/default/drafter/", import.meta.url));
  const config = readDrafterConfig(dir + "config.json");
  const store = openSafetensors(dir + "model.safetensors");
  const weights = readDrafterWeights(store, config);
  store.close();
  // every matrix of this checkpoint is stored BF16 (biases are read too, but stay float32)
  const matrices = [
    weights.inputProjWeight!,
    ...weights.resWeights,
    weights.headWeight,
    weights.rnnU!,
    weights.rnnW!,
  ];
  assert.equal(weights.bf16?.size, matrices.length);
  for (const m of matrices) assert.ok(weights.bf16.has(m));
  const { hiddenSize: H, vocabSize: V } = config;
  const emb = new Float32Array(V * H);
  for (let i = 0; i < emb.length; i++) emb[i] = Math.sin(i * 0.013) * 0.05;
  const ctx = new Float32Array(2 * H).map((_, i) => Math.cos(i * 0.37) * 2);
  const u32 = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);
  for (const kernels of ["wasm", "js"] as const) {
    const asBf16 = cpuDrafter(weights, emb, { kernels }).beginRound(ctx, 2, 3);
    const asF32 = cpuDrafter({ ...weights, bf16: undefined }, emb, { kernels }).beginRound(ctx, 2, 3);
    let tokens = new Int32Array(6).fill(7), parents = new Int32Array(6);
    for (let s = 0; s < 3; s++) {
      const a = await asBf16.step(tokens, parents, 3), b = await asF32.step(tokens, parents, 3);
      assert.deepEqual(a.ids, b.ids, `${kernels} step ${s}`);
      assert.deepEqual(u32(a.logProbs), u32(b.logProbs), `${kernels} step ${s}`);
      assert.deepEqual(
        u32(asBf16.logProbRow(s, 1, 2)),
        u32(asF32.logProbRow(s, 1, 2)),
        `${kernels} step ${s}`,
      );
      tokens = a.ids.filter((_, i) => i % 3 === 0);
      parents = new Int32Array(6).map((_, n) => (n + s) % 3);
    }
  }
});
