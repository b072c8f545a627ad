/**
 * The CPU backend is bit-reproducible across call shapes (kernels/ sums each output in a fixed order):
 * a tree-shaped verification call's logits equal single-token decoding of each branch bit for bit, a
 * prefill equals token-by-token decoding, and the WASM SIMD and scalar-JS kernels agree exactly. This is
 * what makes greedy speculative decoding token-identical to autoregression by construction.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadCheckpoint } from "../loader/checkpoint.ts";
import { type CpuModelOptions, createCpuModel } from "../backends/cpu/mod.ts";
import type { ForwardRequest, TargetModel, TargetSession } from "../core/types.ts";
import { wasmSimdSupported, workersReady } from "../kernels/mod.ts";
import { loadWeights } from "../backends/cpu/weights.ts";
import { writeSafetensors } from "../loader/safetensors.ts";

const MODELS = new URL("./fixtures/models/", import.meta.url).pathname;

async function model(name: string, opts: CpuModelOptions = {}): Promise<TargetModel> {
  const ckpt = await loadCheckpoint(join(MODELS, name));
  const m = createCpuModel(ckpt, opts);
  ckpt.tensors.close();
  return m;
}

const prompt = (name: string): number[] =>
  JSON.parse(Deno.readTextFileSync(join(MODELS, name, "expected.json"))).prompt;
const range = (start: number, n: number) => Int32Array.from({ length: n }, (_, i) => start + i);
const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

/** Decode `tokens` one per call after the committed prefix; return each call's full logits. */
async function oneByOne(s: TargetSession, tokens: number[]): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const t of tokens) {
    const o = await s.forward({
      rows: [{ tokens: Int32Array.of(t), positions: Int32Array.of(s.lengths()[0]) }],
      logits: { kind: "full" },
    });
    s.commit([null]);
    out.push(o.logits![0]);
  }
  return out;
}

// r -> a1 -> a2, r -> b1 -> b2 -> b3, a1 -> c1 (ancestors first)
const TREE = {
  tokens: [9, 40, 41, 50, 51, 60, 52],
  parents: [-1, 0, 1, 0, 3, 1, 4],
  depth: [0, 1, 2, 1, 2, 2, 3],
  branches: [[0, 1, 2], [0, 3, 4, 6], [0, 1, 5]],
};

for (const kernels of ["wasm", "js"] as const) {
  for (const name of ["llama", "qwen2", "mistral"]) {
    Deno.test({
      name: `cpu bitwise (${kernels}): tree call logits equal single-token decoding of each branch (${name})`,
      ignore: kernels === "wasm" && !wasmSimdSupported(),
      fn: async () => {
        const m = await model(name, { kernels });
        const V = m.config.vocabSize;
        const p = prompt(name), P = p.length;
        const s = m.createSession(1, 40);
        await s.forward({
          rows: [{ tokens: Int32Array.from(p), positions: range(0, P) }],
          logits: { kind: "none" },
        });
        s.commit([null]);
        const tree = await s.forward({
          rows: [{
            tokens: Int32Array.from(TREE.tokens),
            positions: Int32Array.from(TREE.depth, (d) => P + d),
            parents: Int32Array.from(TREE.parents),
          }],
          logits: { kind: "full" },
        });
        s.commit([new Int32Array(0)]);
        for (const branch of TREE.branches) {
          const seq = await oneByOne(s, branch.map((i) => TREE.tokens[i]));
          s.truncate(0, P);
          branch.forEach((t, j) => {
            assert.deepEqual(
              bits(tree.logits![0].subarray(t * V, (t + 1) * V)),
              bits(seq[j]),
              `${name}: logits of tree token ${t} (branch ${branch})`,
            );
          });
        }
      },
    });
  }

  Deno.test({
    name: `cpu bitwise (${kernels}): a 12-token prefill equals 12 single-token calls`,
    ignore: kernels === "wasm" && !wasmSimdSupported(),
    fn: async () => {
      const m = await model("llama", { kernels });
      const V = m.config.vocabSize;
      const p = prompt("llama");
      const all = await m.createSession(1, 32).forward({
        rows: [{ tokens: Int32Array.from(p), positions: range(0, p.length) }],
        logits: { kind: "full" },
      });
      const seq = await oneByOne(m.createSession(1, 32), p);
      seq.forEach((row, i) => assert.deepEqual(bits(all.logits![0].subarray(i * V, (i + 1) * V)), bits(row)));
    },
  });
}

Deno.test({
  name: "cpu bitwise: WASM SIMD and scalar-JS kernels give identical logits and hidden states",
  ignore: !wasmSimdSupported(),
  fn: async () => {
    for (const name of ["llama", "qwen2", "llama_bf16"]) {
      const outs = [];
      for (const kernels of ["wasm", "js"] as const) {
        const m = await model(name, { kernels });
        const p = prompt(name === "llama_bf16" ? "llama" : name);
        outs.push(
          await m.createSession(1, 32).forward({
            rows: [{ tokens: Int32Array.from(p), positions: range(0, p.length) }],
            logits: { kind: "full" },
          }),
        );
      }
      assert.deepEqual(bits(outs[0].logits![0]), bits(outs[1].logits![0]), `${name} logits`);
      assert.deepEqual(bits(outs[0].hidden[0]), bits(outs[1].hidden[0]), `${name} hidden`);
    }
  },
});

/**
 * The default model at 1, 2 and 3 threads gives bitwise the same logits and hidden states for `req` (after
 * committing `prefix`, if any); closes the checkpoint.
 */
async function sameAtAnyThreads(
  ckpt: Awaited<ReturnType<typeof loadCheckpoint>>,
  prefix: Int32Array | null,
  req: ForwardRequest,
): Promise<void> {
  const P = prefix?.length ?? 0;
  const outs = [];
  for (const threads of [1, 2, 3]) {
    const m = createCpuModel(ckpt, { threads });
    const s = m.createSession(1, P + 16);
    if (prefix) {
      await s.forward({ rows: [{ tokens: prefix, positions: range(0, P) }], logits: { kind: "none" } });
      s.commit([null]);
    }
    outs.push(await s.forward(req));
    s.dispose();
    m.dispose();
  }
  ckpt.tensors.close();
  for (const o of outs.slice(1)) {
    assert.deepEqual(bits(o.logits![0]), bits(outs[0].logits![0]));
    assert.deepEqual(bits(o.hidden[0]), bits(outs[0].hidden[0]));
  }
}

Deno.test({
  name: "cpu default model: 1, 2 and 3 matmul threads give bitwise the same tree logits and hidden states",
  ignore: !wasmSimdSupported(),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await workersReady();
    const ckpt = await loadCheckpoint(new URL("../models/default/target", import.meta.url).pathname);
    const req = {
      rows: [{
        tokens: Int32Array.of(1, 450, 1330, 288, 264, 1120, 7, 8, 9),
        positions: Int32Array.of(0, 1, 2, 3, 4, 5, 6, 6, 7),
        parents: Int32Array.of(-1, 0, 1, 2, 3, 4, 5, 5, 7),
      }],
      logits: { kind: "full" } as const,
    };
    await sameAtAnyThreads(ckpt, null, req);
  },
});

Deno.test("cpu: bf16 matrices kept as bf16 give bitwise the float32-widened checkpoint's outputs", async () => {
  const bf16Dir = join(MODELS, "llama_bf16");
  const ckpt = await loadCheckpoint(bf16Dir);
  assert.ok(
    loadWeights(ckpt).weights.layers[0].wqkv instanceof Uint16Array,
    "auto keeps bf16 (WASM kernels)",
  );
  assert.ok(
    loadWeights(ckpt, "js").weights.layers[0].wqkv instanceof Float32Array,
    "auto widens for JS kernels",
  );
  const { weights } = loadWeights(ckpt, "auto", 8, 1, true);
  assert.ok(weights.layers[0].wqkv instanceof Uint16Array, "q/k/v_proj kept as bf16 bits");
  assert.ok(weights.embed instanceof Uint16Array && weights.lmHead instanceof Uint16Array);
  assert.ok(weights.layers[0].inputNorm instanceof Float32Array, "norm vectors are float32");
  // the same checkpoint with every tensor widened to float32 (exact), in a temp dir
  const dir = Deno.makeTempDirSync({ prefix: "redrafter-bf16-" });
  try {
    Deno.copyFileSync(join(bf16Dir, "config.json"), join(dir, "config.json"));
    const names = ckpt.tensors.names();
    writeSafetensors(
      join(dir, "model.safetensors"),
      names.map((name) => ({ name, shape: ckpt.tensors.info(name).shape, data: ckpt.tensors.readF32(name) })),
    );
    const outs = [];
    for (const d of [bf16Dir, dir]) {
      const c = await loadCheckpoint(d);
      const m = createCpuModel(c, { keepBf16: true }); // (the widened checkpoint has no bf16 to keep)
      c.tensors.close();
      const p = prompt("llama");
      outs.push(
        await m.createSession(1, 32).forward({
          rows: [{ tokens: Int32Array.from(p), positions: range(0, p.length) }],
          logits: { kind: "full" },
        }),
      );
      assert.deepEqual(
        Array.from(m.embeddingTable()),
        Array.from(ckpt.tensors.readF32("model.embed_tokens.weight")),
      );
    }
    assert.deepEqual(bits(outs[0].logits![0]), bits(outs[1].logits![0]), "logits");
    assert.deepEqual(bits(outs[0].hidden[0]), bits(outs[1].hidden[0]), "hidden");
  } finally {
    ckpt.tensors.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("cpu: the profile option times every stage of each forward and leaves the outputs bitwise alone", async () => {
  const p = prompt("llama");
  const req = {
    rows: [{ tokens: Int32Array.from(p), positions: range(0, p.length) }],
    logits: { kind: "full" } as const,
  };
  const profile: Record<string, number> = {};
  const plain = await model("llama");
  const timed = await model("llama", { profile });
  const a = await plain.createSession(1, 32).forward(req);
  const s = timed.createSession(1, 32);
  const t0 = performance.now();
  const b = await s.forward(req);
  s.commit([null]);
  await s.forward({
    rows: [{ tokens: Int32Array.of(p[0]), positions: Int32Array.of(p.length) }],
    logits: { kind: "topk", k: 1 },
  });
  const wall = performance.now() - t0;
  assert.deepEqual(bits(b.logits![0]), bits(a.logits![0]));
  assert.deepEqual(bits(b.hidden[0]), bits(a.hidden[0]));
  assert.equal(profile.calls, 2);
  const stages = ["embed", "norm", "qkv", "rope_kv", "attention", "o", "gate_up", "swiglu", "down", "head"];
  assert.deepEqual(Object.keys(profile).filter((k) => k !== "calls").sort(), [...stages].sort());
  const total = stages.reduce((sum, k) => sum + profile[k], 0);
  for (const k of stages) assert.ok(profile[k] >= 0, k);
  assert.ok(total > 0 && total <= wall, `stages ${total} ms within the calls' ${wall} ms`);
});

Deno.test({
  name:
    "cpu default model: after a long context, 1, 2 and 3 threads (attention heads split too) give bitwise the same tree logits",
  ignore: !wasmSimdSupported(),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await workersReady();
    const ckpt = await loadCheckpoint(new URL("../models/default/target", import.meta.url).pathname);
    const P = 300;
    const prompt = Int32Array.from({ length: P }, (_, i) => (i * 7919 + 3) % 8000);
    const tree = {
      rows: [{
        tokens: Int32Array.of(450, 1330, 288, 264, 1120),
        positions: Int32Array.of(P, P + 1, P + 2, P + 1, P + 2),
        parents: Int32Array.of(-1, 0, 1, 0, 3),
      }],
      logits: { kind: "full" } as const,
    };
    await sameAtAnyThreads(ckpt, prompt, tree);
  },
});
