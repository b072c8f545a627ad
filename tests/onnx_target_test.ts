/**
 * ONNX backend on the CPU providers (onnxruntime-node, onnxruntime-web WASM): Hugging Face parity on every
 * fixture architecture, greedy continuation, tree calls, commit of a tree path, and a batch of 3 uneven rows.
 */
import assert from "node:assert/strict";
import { loadCheckpoint } from "../loader/checkpoint.ts";
import { createOnnxModel, type ProviderName, resolveAttention } from "../backends/onnx/mod.ts";
import type { Checkpoint } from "../loader/types.ts";
import type { RowInput, TargetModel, TargetSession } from "../core/types.ts";

const FIXTURES = new URL("./fixtures/models/", import.meta.url).pathname;
const CACHE = `${Deno.makeTempDirSync({ prefix: "onnx-test-cache-" })}`;
const ARCHS = ["llama", "qwen2", "mistral"];
const PROVIDERS: ProviderName[] = ["onnx-node", "onnx-wasm"];

interface Expected {
  prompt: number[];
  logits: number[][];
  hidden: number[][];
  greedy: number[];
}

/** max |a - b| over max(1, max |b|): the relative error the tests bound. */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0, m = 1;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / m;
}

function chain(tokens: number[], start: number): RowInput {
  return { tokens: Int32Array.from(tokens), positions: Int32Array.from(tokens, (_, i) => start + i) };
}

/** Full logits of the last token after feeding `tokens` as one chain into a fresh session. */
async function pathLogits(model: TargetModel, tokens: number[]): Promise<Float32Array> {
  const s = model.createSession(1, 64);
  const out = await s.forward({
    rows: [{ ...chain(tokens, 0), logitIndices: Int32Array.of(tokens.length - 1) }],
    logits: { kind: "full" },
  });
  s.dispose();
  return out.logits![0];
}

async function prefill(s: TargetSession, rows: number[][]): Promise<void> {
  const lens = s.lengths();
  await s.forward({ rows: rows.map((t, b) => chain(t, lens[b])), logits: { kind: "none" } });
  s.commit(rows.map(() => null));
}

const models = new Map<string, TargetModel>();
const ckpts = new Map<string, Checkpoint>();
async function model(
  arch: string,
  provider: ProviderName,
  attention: "auto" | "gqa" = "auto",
): Promise<TargetModel> {
  const key = `${arch}/${provider}/${attention}`;
  let m = models.get(key);
  if (!m) {
    let ck = ckpts.get(arch);
    if (!ck) {
      ck = await loadCheckpoint(`${FIXTURES}${arch}`);
      ckpts.set(arch, ck);
    }
    m = await createOnnxModel(ck, { provider, cacheDir: CACHE, threads: 1, attention });
    models.set(key, m);
  }
  return m;
}

for (const provider of PROVIDERS) {
  for (const arch of ARCHS) {
    Deno.test(`${provider} ${arch}: prompt logits and hidden states match transformers within 1e-4`, async () => {
      const m = await model(arch, provider);
      const exp: Expected = JSON.parse(Deno.readTextFileSync(`${FIXTURES}${arch}/expected.json`));
      const s = m.createSession(1, 64);
      const out = await s.forward({ rows: [chain(exp.prompt, 0)], logits: { kind: "full" } });
      assert.ok(relErr(out.logits![0], exp.logits.flat()) < 1e-4);
      assert.ok(relErr(out.hidden[0], exp.hidden.flat()) < 1e-4);
      s.dispose();
    });

    Deno.test(`${provider} ${arch}: greedy continuation (topk k=1, commit each step) matches transformers`, async () => {
      const m = await model(arch, provider);
      const exp: Expected = JSON.parse(Deno.readTextFileSync(`${FIXTURES}${arch}/expected.json`));
      const s = m.createSession(1, exp.prompt.length + exp.greedy.length);
      let row = chain(exp.prompt, 0);
      const got: number[] = [];
      while (got.length < exp.greedy.length) {
        const n = row.tokens.length;
        const out = await s.forward({
          rows: [{ ...row, logitIndices: Int32Array.of(n - 1) }],
          logits: { kind: "topk", k: 1 },
        });
        s.commit([null]);
        const next = out.topIds![0][0];
        got.push(next);
        row = chain([next], s.lengths()[0]);
      }
      assert.deepEqual(got, exp.greedy);
      s.dispose();
    });

    Deno.test(`${provider} ${arch}: tree call, then commit of a path, equal chain forwards`, async () => {
      const m = await model(arch, provider);
      const V = m.config.vocabSize;
      const prompt = [1, 17, 42, 99, 5, 63, 120, 8].map((t) => t % V);
      const s = m.createSession(1, 32);
      await prefill(s, [prompt]);
      // Tree:   0(7) -> 1(9) -> 3(4)
      //              -> 2(11) -> 4(30) -> 5(2)
      //         6(50) (a second root)
      const tokens = [7, 9, 11, 4, 30, 2, 50];
      const parents = Int32Array.of(-1, 0, 0, 1, 2, 4, -1);
      const depth = [0, 1, 1, 2, 2, 3, 0];
      const L = prompt.length;
      const out = await s.forward({
        rows: [{
          tokens: Int32Array.from(tokens),
          positions: Int32Array.from(depth, (d) => L + d),
          parents,
        }],
        logits: { kind: "full" },
      });
      const pathOf = (i: number): number[] => (i === -1 ? [] : [...pathOf(parents[i]), tokens[i]]);
      for (let i = 0; i < tokens.length; i++) {
        const ref = await pathLogits(m, [...prompt, ...pathOf(i)]);
        assert.ok(relErr(out.logits![0].subarray(i * V, (i + 1) * V), ref) < 1e-4, `tree node ${i}`);
      }
      // Keep the path 0 -> 2 -> 4 and continue with one token: same as the chain prompt + [7, 11, 30, 13].
      s.commit([Int32Array.of(0, 2, 4)]);
      assert.deepEqual(s.lengths(), [L + 3]);
      const next = await s.forward({ rows: [chain([13], L + 3)], logits: { kind: "full" } });
      const ref = await pathLogits(m, [...prompt, 7, 11, 30, 13]);
      assert.ok(relErr(next.logits![0], ref) < 1e-4);
      s.commit([null]);
      // truncate back to the prompt and take another branch.
      s.truncate(0, L);
      const again = await s.forward({ rows: [chain([9, 4], L)], logits: { kind: "full" } });
      assert.ok(relErr(again.logits![0].subarray(V), await pathLogits(m, [...prompt, 9, 4])) < 1e-4);
      s.commit([Int32Array.of()]); // drop both
      assert.deepEqual(s.lengths(), [L]);
      s.dispose();
    });

    Deno.test(`${provider} ${arch}: a batch of 3 uneven rows equals each row alone`, async () => {
      const m = await model(arch, provider);
      const V = m.config.vocabSize, H = m.config.hiddenSize;
      const prompts = [[3, 5, 7, 9, 11, 13, 15, 17, 19, 21], [4, 6], [1, 2, 3, 4, 5]];
      const s = m.createSession(3, 40);
      await prefill(s, prompts);
      // Row 0 continues a chain of 3; row 1 takes no part; row 2 sends a 2-branch tree.
      const rows: RowInput[] = [
        { ...chain([40, 41, 42], 10), logitIndices: Int32Array.of(0, 2) },
        chain([], 2),
        {
          tokens: Int32Array.of(60, 61, 62),
          positions: Int32Array.of(5, 6, 6),
          parents: Int32Array.of(-1, 0, 0),
        },
      ];
      const out = await s.forward({ rows, logits: { kind: "full" } });
      assert.equal(out.hidden[1].length, 0);
      assert.equal(out.logits![1].length, 0);
      assert.equal(out.hidden[0].length, 3 * H);
      assert.ok(relErr(out.logits![0].subarray(0, V), await pathLogits(m, [...prompts[0], 40])) < 1e-4);
      assert.ok(relErr(out.logits![0].subarray(V), await pathLogits(m, [...prompts[0], 40, 41, 42])) < 1e-4);
      assert.ok(
        relErr(out.logits![2].subarray(V, 2 * V), await pathLogits(m, [...prompts[2], 60, 61])) < 1e-4,
      );
      assert.ok(relErr(out.logits![2].subarray(2 * V), await pathLogits(m, [...prompts[2], 60, 62])) < 1e-4);
      s.commit([Int32Array.of(0, 1), null, Int32Array.of(0, 2)]);
      assert.deepEqual(s.lengths(), [12, 2, 7]);
      // Next step: all three rows, top-k this time; compare with full logits of each path alone.
      const out2 = await s.forward({
        rows: [chain([8], 12), chain([9], 2), chain([10], 7)],
        logits: { kind: "topk", k: 5 },
      });
      const paths = [[...prompts[0], 40, 41, 8], [...prompts[1], 9], [...prompts[2], 60, 62, 10]];
      for (let b = 0; b < 3; b++) {
        const ref = await pathLogits(m, paths[b]);
        const order = Array.from(ref.keys()).sort((x, y) => ref[y] - ref[x] || x - y).slice(0, 5);
        assert.deepEqual(Array.from(out2.topIds![b]), order, `row ${b} top ids`);
        for (let j = 0; j < 5; j++) assert.ok(Math.abs(out2.topValues![b][j] - ref[order[j]]) < 1e-4);
      }
      s.dispose();
    });
  }
}

Deno.test("onnx-node: bad calls fail with clear errors", async () => {
  const m = await model("llama", "onnx-node");
  const s = m.createSession(1, 8);
  await assert.rejects(() => s.forward({ rows: [], logits: { kind: "none" } }), /1 rows|0 rows/);
  await assert.rejects(
    () =>
      s.forward({ rows: [{ ...chain([1, 2], 0), parents: Int32Array.of(-1, 1) }], logits: { kind: "none" } }),
    /parents\[1\]/,
  );
  await assert.rejects(
    () => s.forward({ rows: [chain([1, 2, 3, 4, 5, 6, 7, 8, 9], 0)], logits: { kind: "none" } }),
    /capacity/,
  );
  await assert.rejects(
    () => s.forward({ rows: [chain([100000], 0)], logits: { kind: "none" } }),
    /vocabulary/,
  );
  await s.forward({
    rows: [{
      tokens: Int32Array.of(1, 2, 3),
      positions: Int32Array.of(0, 1, 1),
      parents: Int32Array.of(-1, 0, 0),
    }],
    logits: { kind: "none" },
  });
  await assert.rejects(() => s.forward({ rows: [chain([1], 0)], logits: { kind: "none" } }), /pending/);
  assert.throws(() => s.commit([Int32Array.of(1, 2)]), /not a tree path/);
  assert.throws(() => s.commit([Int32Array.of(1, 0)]), /without its parent|ascending/);
  assert.throws(() => s.commit([Int32Array.of(3)]), /pending/);
  s.commit([Int32Array.of(0, 2)]);
  assert.deepEqual(s.lengths(), [2]);
  assert.throws(() => s.truncate(0, 3), /length 3/);
  s.dispose();
});

for (const arch of ARCHS) {
  Deno.test(`onnx-node ${arch}: a batched tree call equals the CPU reference backend`, async () => {
    const { createCpuModel } = await import("../backends/cpu/mod.ts");
    const m = await model(arch, "onnx-node");
    const cpu = createCpuModel(ckpts.get(arch)!);
    const req = {
      rows: [
        { tokens: Int32Array.of(3, 9, 27, 81, 5), positions: Int32Array.of(0, 1, 2, 3, 4) },
        {
          tokens: Int32Array.of(7, 8, 9, 10),
          positions: Int32Array.of(0, 1, 1, 2),
          parents: Int32Array.of(-1, 0, 0, 2),
        },
      ],
      logits: { kind: "full" } as const,
    };
    const a = m.createSession(2, 16), b = cpu.createSession(2, 16);
    const oa = await a.forward(req), ob = await b.forward(req);
    for (let r = 0; r < 2; r++) {
      assert.ok(relErr(oa.logits![r], ob.logits![r]) < 1e-4, `row ${r} logits`);
      assert.ok(relErr(oa.hidden[r], ob.hidden[r]) < 1e-4, `row ${r} hidden`);
    }
    const keep = [Int32Array.of(0, 1, 2), Int32Array.of(0, 2, 3)];
    a.commit(keep);
    b.commit(keep);
    assert.deepEqual(a.lengths(), b.lengths());
    const next = { rows: [chain([11], 3), chain([12], 3)], logits: { kind: "topk", k: 4 } as const };
    const na = await a.forward(next), nb = await b.forward(next);
    for (let r = 0; r < 2; r++) {
      assert.deepEqual(Array.from(na.topIds![r]), Array.from(nb.topIds![r]));
      assert.ok(relErr(na.topValues![r], nb.topValues![r]) < 1e-4);
    }
    a.dispose();
    b.dispose();
    cpu.dispose();
  });
}

for (const [arch, provider] of ARCHS.flatMap((a) => PROVIDERS.map((p) => [a, p] as const))) {
  Deno.test(`${provider} ${arch}: attention "gqa" runs GroupQueryAttention at batch 1 and equals the CPU reference`, async () => {
    const { createCpuModel } = await import("../backends/cpu/mod.ts");
    const m = await model(arch, provider, "gqa");
    const cpu = createCpuModel(ckpts.get(arch)!);
    const a = m.createSession(1, 64), b = cpu.createSession(1, 64);
    // A prompt longer than the mistral fixture's window (6), then a tree with a branch, a commit, a step.
    const prompt = chain([3, 9, 27, 81, 5, 17, 33, 2, 44], 0);
    const tree = {
      rows: [{
        tokens: Int32Array.of(7, 8, 9, 10),
        positions: Int32Array.of(9, 10, 10, 11),
        parents: Int32Array.of(-1, 0, 0, 2),
      }],
      logits: { kind: "full" } as const,
    };
    for (const s of [a, b]) {
      await s.forward({ rows: [prompt], logits: { kind: "none" } });
      s.commit([null]);
    }
    const oa = await a.forward(tree), ob = await b.forward(tree);
    assert.ok(relErr(oa.logits![0], ob.logits![0]) < 1e-4, "tree logits");
    assert.ok(relErr(oa.hidden[0], ob.hidden[0]) < 1e-4, "tree hidden");
    a.commit([Int32Array.of(0, 2, 3)]);
    b.commit([Int32Array.of(0, 2, 3)]);
    const next = { rows: [chain([11], 12)], logits: { kind: "full" } as const };
    const na = await a.forward(next), nb = await b.forward(next);
    assert.ok(relErr(na.logits![0], nb.logits![0]) < 1e-4, "after commit");
    a.dispose();
    b.dispose();
    cpu.dispose();
    // The graph that served batch 1 is the GQA one (on onnx-node "auto" opens the standard one).
    const graphs = [...Deno.readDirSync(CACHE)].map((e) =>
      Deno.readFileSync(`${CACHE}/${e.name}/model.onnx`)
    );
    const has = (bytes: Uint8Array) =>
      new TextDecoder("latin1").decode(bytes).includes("GroupQueryAttention");
    assert.ok(graphs.some(has), "no cached graph uses GroupQueryAttention");
  });
}

Deno.test("onnx-node: a batched session after the checkpoint was closed names what it needs", async () => {
  const ck = await loadCheckpoint(`${FIXTURES}llama`);
  const m = await createOnnxModel(ck, {
    provider: "onnx-node",
    cacheDir: Deno.makeTempDirSync(),
    threads: 1,
    attention: "gqa",
  });
  ck.tensors.close(); // batch 1 runs the GQA graph; the standard one for batch 2 can no longer be built
  const s = m.createSession(2, 8);
  await assert.rejects(
    s.forward({ rows: [chain([1], 0), chain([2], 0)], logits: { kind: "none" } }),
    /a batch of 2 needs the standard attention graph, .*keep the checkpoint open until then, or load the model with attention: "standard"/,
  );
  s.dispose();
  m.dispose();
});

Deno.test({
  name: "onnx: dispose models",
  sanitizeResources: false,
  fn() {
    for (const m of models.values()) m.dispose();
    for (const c of ckpts.values()) c.tensors.close();
    Deno.removeSync(CACHE, { recursive: true });
  },
});

Deno.test("onnx: attention auto is GQA on onnx-webgpu only, and gqa needs fused ops", () => {
  assert.equal(resolveAttention(undefined, true, "onnx-webgpu"), "gqa");
  assert.equal(resolveAttention("auto", true, "onnx-webgpu"), "gqa");
  assert.equal(resolveAttention("auto", false, "onnx-webgpu"), "standard");
  assert.equal(resolveAttention("standard", true, "onnx-webgpu"), "standard");
  for (const p of ["onnx-node", "onnx-wasm", "onnx-cuda"] as const) {
    assert.equal(resolveAttention(undefined, true, p), "standard", p);
    assert.equal(resolveAttention("gqa", true, p), "gqa", p);
  }
  assert.throws(() => resolveAttention("gqa", false, "onnx-node"), /attention "gqa" needs fused/);
});
