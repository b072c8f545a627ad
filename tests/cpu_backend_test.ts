/**
 * The CPU reference backend against Hugging Face transformers (fixtures from tools/make_fixtures.py), and
 * the KV-cache contract: tree-masked calls, commit of a path, batching of ragged rows, capacity errors.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { loadCheckpoint } from "../loader/checkpoint.ts";
import { createCpuModel } from "../backends/cpu/mod.ts";
import { topK } from "../kernels/topk.ts";
import { ropeInvFreq } from "../backends/rope.ts";
import { parseModelConfig } from "../loader/config.ts";
import type { ForwardOutput, RowInput, TargetModel, TargetSession } from "../core/types.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;
const STORIES = new URL("../../shared/fixtures/stories260k", import.meta.url).pathname;

interface Expected {
  prompt: number[];
  logits: number[][];
  hidden: number[][];
  greedy: number[];
}

async function model(name: string): Promise<TargetModel> {
  const ckpt = await loadCheckpoint(join(FIXTURES, "models", name));
  const m = createCpuModel(ckpt);
  ckpt.tensors.close();
  return m;
}

function expected(name: string): Expected {
  return JSON.parse(Deno.readTextFileSync(join(FIXTURES, "models", name, "expected.json")));
}

const range = (start: number, n: number) => Int32Array.from({ length: n }, (_, i) => start + i);
const chain = (tokens: number[], start: number): RowInput => ({
  tokens: Int32Array.from(tokens),
  positions: range(start, tokens.length),
});

/** max |a - b| / max |b| over one row: robust to near-zero entries. */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0, m = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / m;
}

function assertClose(a: Float32Array, b: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  const e = relErr(a, b);
  assert.ok(e <= tol, `${what}: relative error ${e} > ${tol}`);
}

function argmax(a: Float32Array, off: number, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (a[off + i] > a[off + best]) best = i;
  return best;
}

/** Greedy decoding one token at a time after a prefill (top-1 via the topk mode). */
async function greedy(s: TargetSession, prompt: number[], steps: number, row = 0): Promise<number[]> {
  const rows = (r: RowInput) => Array.from({ length: s.batch }, (_, b) => b === row ? r : chain([], 0));
  const first = await s.forward({
    rows: rows({ ...chain(prompt, s.lengths()[row]), logitIndices: Int32Array.of(prompt.length - 1) }),
    logits: { kind: "topk", k: 1 },
  });
  s.commit(Array(s.batch).fill(null));
  const out = [first.topIds![row][0]];
  while (out.length < steps) {
    const o = await s.forward({
      rows: rows(chain([out[out.length - 1]], s.lengths()[row])),
      logits: { kind: "topk", k: 1 },
    });
    s.commit(Array(s.batch).fill(null));
    out.push(o.topIds![row][0]);
  }
  return out;
}

for (
  const [name, ref] of [
    ["llama", "llama"],
    ["qwen2", "qwen2"],
    ["mistral", "mistral"],
    ["llama_bf16", "llama_bf16"],
    ["llama_sharded", "llama"],
  ]
) {
  Deno.test(`cpu parity with transformers: ${name}`, async () => {
    const m = await model(name);
    const exp = expected(ref);
    const V = m.config.vocabSize, H = m.config.hiddenSize, n = exp.prompt.length;
    const s = m.createSession(1, 64);
    const out = await s.forward({ rows: [chain(exp.prompt, 0)], logits: { kind: "full" } });
    for (let i = 0; i < n; i++) {
      assertClose(
        out.logits![0].subarray(i * V, (i + 1) * V),
        exp.logits[i],
        1e-4,
        `${name} logits row ${i}`,
      );
      assertClose(out.hidden[0].subarray(i * H, (i + 1) * H), exp.hidden[i], 1e-4, `${name} hidden row ${i}`);
    }
    // greedy continuation: the prompt's last row, then one token per call
    s.commit([null]);
    const gen = [argmax(out.logits![0], (n - 1) * V, V)];
    while (gen.length < exp.greedy.length) {
      const o = await s.forward({
        rows: [chain([gen[gen.length - 1]], s.lengths()[0])],
        logits: { kind: "full" },
      });
      s.commit([null]);
      gen.push(argmax(o.logits![0], 0, V));
    }
    assert.deepEqual(gen, exp.greedy);
    s.dispose();
    m.dispose();
  });
}

Deno.test("cpu: mistral's sliding window matters (disabling it breaks parity)", async () => {
  const ckpt = await loadCheckpoint(join(FIXTURES, "models", "mistral"));
  assert.equal(ckpt.config.slidingWindow, 6);
  const m = createCpuModel({ ...ckpt, config: { ...ckpt.config, slidingWindow: null } });
  ckpt.tensors.close();
  const exp = expected("mistral");
  const V = m.config.vocabSize;
  const out = await m.createSession(1, 32).forward({
    rows: [chain(exp.prompt, 0)],
    logits: { kind: "full" },
  });
  const last = exp.prompt.length - 1;
  assert.ok(relErr(out.logits![0].subarray(last * V), exp.logits[last]) > 1e-2);
  // rows within the window are unaffected
  assertClose(out.logits![0].subarray(0, 6 * V), exp.logits.slice(0, 6).flat(), 1e-4, "first 6 rows");
});

Deno.test("cpu: RoPE inverse frequencies equal transformers' (default, linear, llama3)", () => {
  const cases = JSON.parse(Deno.readTextFileSync(join(FIXTURES, "rope_inv_freq.json")));
  assert.equal(cases.length, 3);
  for (const c of cases) {
    const inv = ropeInvFreq(parseModelConfig(c.config));
    assertClose(inv, c.inv_freq, 1e-6, JSON.stringify(c.config.rope_parameters));
  }
});

Deno.test("cpu: topK is descending with ties to the lower id", () => {
  const row = Float32Array.from([1, 5, 3, 5, -2, 3, 7]);
  const ids = new Int32Array(4), vals = new Float32Array(4);
  topK(row, 0, row.length, 4, ids, vals, 0);
  assert.deepEqual([...ids], [6, 1, 3, 2]);
  assert.deepEqual([...vals], [7, 5, 5, 3]);
  const one = new Int32Array(1), oneV = new Float32Array(1);
  topK(Float32Array.from([2, 2, 2]), 0, 3, 1, one, oneV, 0);
  assert.equal(one[0], 0);
});

Deno.test("cpu: topk mode and logitIndices agree with full logits", async () => {
  const m = await model("qwen2");
  const V = m.config.vocabSize;
  const prompt = expected("qwen2").prompt;
  const full = await m.createSession(1, 32).forward({ rows: [chain(prompt, 0)], logits: { kind: "full" } });
  const idx = Int32Array.of(11, 3, 7);
  const top = await m.createSession(1, 32).forward({
    rows: [{ ...chain(prompt, 0), logitIndices: idx }],
    logits: { kind: "topk", k: 5 },
  });
  const sub = await m.createSession(1, 32).forward({
    rows: [{ ...chain(prompt, 0), logitIndices: idx }],
    logits: { kind: "full" },
  });
  assert.equal(sub.logits![0].length, 3 * V);
  for (let j = 0; j < idx.length; j++) {
    const row = full.logits![0].subarray(idx[j] * V, (idx[j] + 1) * V);
    assert.deepEqual(sub.logits![0].subarray(j * V, (j + 1) * V), row);
    const order = [...row.keys()].sort((a, b) => row[b] - row[a] || a - b).slice(0, 5);
    assert.deepEqual([...top.topIds![0].subarray(j * 5, j * 5 + 5)], order);
    assert.deepEqual([...top.topValues![0].subarray(j * 5, j * 5 + 5)], order.map((i) => row[i]));
  }
  const none = await m.createSession(1, 32).forward({ rows: [chain(prompt, 0)], logits: { kind: "none" } });
  assert.equal(none.logits, undefined);
  assert.deepEqual(none.hidden[0], full.hidden[0]);
});

/**
 * A tree after the prompt: r -> a1 -> a2, r -> b1 -> b2 -> b3, a1 -> c1. Packed order keeps ancestors first.
 *   index:   0  1   2   3   4   5   6
 *   token:   r  a1  a2  b1  b2  c1  b3
 *   parent: -1  0   1   0   3   1   4
 */
const TREE = {
  tokens: [9, 40, 41, 50, 51, 60, 52],
  parents: [-1, 0, 1, 0, 3, 1, 4],
  depth: [0, 1, 2, 1, 2, 2, 3],
  branches: [[0, 1, 2], [0, 3, 4, 6], [0, 1, 5]],
};

for (const name of ["llama", "mistral"]) {
  Deno.test(`cpu: tree-masked call equals each branch run separately (${name})`, async () => {
    const m = await model(name);
    const V = m.config.vocabSize, H = m.config.hiddenSize;
    const prompt = expected(name).prompt; // 12 tokens: longer than mistral's window of 6
    const P = prompt.length;
    const s = m.createSession(1, 32);
    await s.forward({ rows: [chain(prompt, 0)], logits: { kind: "none" } });
    s.commit([null]);
    const tree = await s.forward({
      rows: [{
        tokens: Int32Array.from(TREE.tokens),
        positions: Int32Array.from(TREE.depth, (d) => P + d),
        parents: Int32Array.from(TREE.parents),
      }],
      logits: { kind: "full" },
    });
    s.commit([new Int32Array(0)]); // keep none
    assert.deepEqual(s.lengths(), [P]);
    for (const branch of TREE.branches) {
      const o = await s.forward({
        rows: [chain(branch.map((i) => TREE.tokens[i]), P)],
        logits: { kind: "full" },
      });
      s.commit([null]);
      s.truncate(0, P);
      branch.forEach((t, j) => {
        assertClose(
          tree.logits![0].subarray(t * V, (t + 1) * V),
          o.logits![0].subarray(j * V, (j + 1) * V),
          1e-5,
          `logits of tree token ${t}`,
        );
        assertClose(
          tree.hidden[0].subarray(t * H, (t + 1) * H),
          o.hidden[0].subarray(j * H, (j + 1) * H),
          1e-5,
          `hidden of tree token ${t}`,
        );
      });
    }
  });

  Deno.test(`cpu: commit of a tree path then continuing equals sequential decoding (${name})`, async () => {
    const m = await model(name);
    const V = m.config.vocabSize;
    const prompt = expected(name).prompt;
    const P = prompt.length;
    const tail = [77, 78, 79];
    for (const branch of TREE.branches) {
      const s = m.createSession(1, 40);
      await s.forward({ rows: [chain(prompt, 0)], logits: { kind: "none" } });
      s.commit([null]);
      await s.forward({
        rows: [{
          tokens: Int32Array.from(TREE.tokens),
          positions: Int32Array.from(TREE.depth, (d) => P + d),
          parents: Int32Array.from(TREE.parents),
        }],
        logits: { kind: "none" },
      });
      s.commit([Int32Array.from(branch)]);
      assert.deepEqual(s.lengths(), [P + branch.length]);
      const cont = await s.forward({ rows: [chain(tail, P + branch.length)], logits: { kind: "full" } });

      const seq = m.createSession(1, 40);
      const all = [...prompt, ...branch.map((i) => TREE.tokens[i]), ...tail];
      const ref = await seq.forward({ rows: [chain(all, 0)], logits: { kind: "full" } });
      const off = (all.length - tail.length) * V;
      assertClose(cont.logits![0], ref.logits![0].subarray(off), 1e-5, `branch ${branch}`);
    }
  });
}

Deno.test("cpu: a batch of 3 ragged rows equals 3 batch-1 runs", async () => {
  const m = await model("qwen2");
  const prompts = [[1, 5, 9], [1, 20, 21, 22, 23, 24, 25], expected("qwen2").prompt];
  // batched: prefill all rows at once, then 3 decode steps where row 1 sits out the second step
  const s = m.createSession(3, 32);
  const pre = await s.forward({ rows: prompts.map((p) => chain(p, 0)), logits: { kind: "full" } });
  s.commit([null, null, null]);
  assert.deepEqual(s.lengths(), [3, 7, 12]);
  const steps: (number | null)[][] = [[30, 31, 32], [33, null, 34], [35, 36, 37]];
  const batched: ForwardOutput[] = [];
  for (const step of steps) {
    const lens = s.lengths();
    batched.push(
      await s.forward({
        rows: step.map((t, b) => t === null ? chain([], lens[b]) : chain([t], lens[b])),
        logits: { kind: "full" },
      }),
    );
    s.commit([null, null, null]);
  }
  assert.deepEqual(s.lengths(), [6, 9, 15]);
  for (let b = 0; b < 3; b++) {
    const one = m.createSession(1, 32);
    const p = await one.forward({ rows: [chain(prompts[b], 0)], logits: { kind: "full" } });
    one.commit([null]);
    assert.deepEqual(pre.hidden[b], p.hidden[0]);
    assertClose(pre.logits![b], p.logits![0], 1e-6, `row ${b} prefill`);
    for (let k = 0; k < steps.length; k++) {
      const t = steps[k][b];
      if (t === null) {
        assert.equal(batched[k].logits![b].length, 0);
        continue;
      }
      const o = await one.forward({ rows: [chain([t], one.lengths()[0])], logits: { kind: "full" } });
      one.commit([null]);
      assertClose(batched[k].logits![b], o.logits![0], 1e-6, `row ${b} step ${k}`);
    }
  }
});

Deno.test("cpu: greedy decoding reproduces transformers on stories260K", {
  ignore: !existsSync(STORIES),
}, async () => {
  const ckpt = await loadCheckpoint(STORIES);
  const m = createCpuModel(ckpt);
  ckpt.tensors.close();
  const exp = JSON.parse(Deno.readTextFileSync(join(FIXTURES, "stories260k_greedy.json")));
  const s = m.createSession(1, 64);
  assert.deepEqual(await greedy(s, exp.prompt, exp.greedy.length), exp.greedy);
});

Deno.test("cpu: the embedding table a drafter gets is the checkpoint's, packed lm_head or not", async () => {
  for (const name of ["qwen2", "llama"]) { // tied (embedding = the packed lm_head), untied
    const ckpt = await loadCheckpoint(join(FIXTURES, "models", name));
    const c = ckpt.config;
    const want = ckpt.tensors.readF32("model.embed_tokens.weight", [c.vocabSize, c.hiddenSize]);
    const m = createCpuModel(ckpt);
    ckpt.tensors.close();
    assert.equal(c.tieWordEmbeddings, name === "qwen2");
    assert.deepEqual(Array.from(m.embeddingTable()), Array.from(want), name);
    assert.equal(m.embeddingTable(), m.embeddingTable(), "made once");
    m.dispose();
  }
});

Deno.test("cpu: bad calls are refused with clear messages", async () => {
  const m = await model("llama");
  const s = m.createSession(2, 8);
  const prompt = expected("llama").prompt; // 12 tokens
  await assert.rejects(
    s.forward({ rows: [chain(prompt, 0), chain([], 0)], logits: { kind: "none" } }),
    /row 0: 0 committed tokens plus 12 new tokens exceeds the session capacity of 8/,
  );
  await assert.rejects(
    s.forward({ rows: [chain([1], 0)], logits: { kind: "none" } }),
    /got 1 rows, the session has batch 2/,
  );
  await assert.rejects(
    s.forward({ rows: [chain([500], 0), chain([], 0)], logits: { kind: "none" } }),
    /id 500, outside the vocabulary/,
  );
  await assert.rejects(
    s.forward({
      rows: [{ ...chain([1, 2], 0), parents: Int32Array.of(-1, 1) }, chain([], 0)],
      logits: { kind: "none" },
    }),
    /token 1 has parent 1; parents must satisfy -1 <= parent < index/,
  );
  await assert.rejects(
    s.forward({
      rows: [{ ...chain([1, 2], 0), logitIndices: Int32Array.of(2) }, chain([], 0)],
      logits: { kind: "full" },
    }),
    /logit index 2 is outside its 2 new tokens/,
  );
  await assert.rejects(
    s.forward({ rows: [chain([1], 0), chain([], 0)], logits: { kind: "topk", k: 0 } }),
    /top-k k must be an integer in \[1, 128\]/,
  );
  // siblings cannot both be committed
  await s.forward({
    rows: [{
      tokens: Int32Array.of(1, 2, 3),
      positions: Int32Array.of(0, 1, 1),
      parents: Int32Array.of(-1, 0, 0),
    }, chain([], 0)],
    logits: { kind: "none" },
  });
  await assert.rejects(
    s.forward({ rows: [chain([1], 0), chain([], 0)], logits: { kind: "none" } }),
    /pending tokens; call commit\(\)/,
  );
  assert.throws(
    () => s.commit([Int32Array.of(0, 1, 2), null]),
    /kept token 2 has parent 0, expected 1 .*must form a path/,
  );
  assert.throws(() => s.commit([Int32Array.of(1), null]), /kept token 1 has parent 0, expected -1/);
  assert.throws(() => s.commit([Int32Array.of(0, 5), null]), /index 5 is not one of its 3 pending tokens/);
  assert.throws(() => s.commit([null, null]), /kept token 2 has parent 0, expected 1/); // keep-all of a tree
  assert.throws(() => s.truncate(0, 0), /while it has pending tokens/);
  s.commit([Int32Array.of(0, 2), null]);
  assert.deepEqual(s.lengths(), [2, 0]);
  assert.throws(() => s.truncate(0, 3), /truncate row 0 to 3; it has 2 committed tokens/);
  s.dispose();
  assert.throws(() => s.commit([null, null]), /after dispose/);
});
