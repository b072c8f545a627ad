/**
 * config.json parsing (transformers 4 and 5 spellings), checkpoint loading (single, sharded, bf16), and
 * clear errors for every kind of bad checkpoint, built in a temp dir from a good fixture.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadCheckpoint } from "../loader/checkpoint.ts";
import { parseGenerationConfig, parseModelConfig } from "../loader/config.ts";
import { createCpuModel } from "../backends/cpu/mod.ts";
import { decodeToF32, openSafetensors, writeSafetensors } from "../loader/safetensors.ts";

const FIXTURES = new URL("./fixtures/models/", import.meta.url).pathname;
const LLAMA = join(FIXTURES, "llama");

const base = {
  architectures: ["LlamaForCausalLM"],
  vocab_size: 100,
  hidden_size: 64,
  intermediate_size: 128,
  num_hidden_layers: 2,
  num_attention_heads: 8,
  max_position_embeddings: 256,
};

Deno.test("config: llama defaults (head_dim, kv heads, theta, untied, no bias, no window)", () => {
  const c = parseModelConfig({ ...base, eos_token_id: 2, bos_token_id: 1 });
  assert.equal(c.architecture, "llama");
  assert.equal(c.headDim, 8);
  assert.equal(c.numKvHeads, 8);
  assert.equal(c.ropeTheta, 10000);
  assert.equal(c.ropeScaling, null);
  assert.equal(c.tieWordEmbeddings, false);
  assert.deepEqual([c.attentionBias, c.outputBias, c.mlpBias], [false, false, false]);
  assert.equal(c.slidingWindow, null);
  assert.deepEqual(c.eosTokenIds, [2]);
  assert.equal(c.bosTokenId, 1);
  assert.equal(c.padTokenId, null);
});

Deno.test("config: transformers 4 rope_scaling spellings (type / rope_type, default = none)", () => {
  const v4 = parseModelConfig({
    ...base,
    rope_theta: 500000,
    rope_scaling: {
      type: "llama3",
      factor: 8,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 8192,
    },
  });
  assert.equal(v4.ropeTheta, 500000);
  assert.deepEqual(v4.ropeScaling, {
    type: "llama3",
    factor: 8,
    lowFreqFactor: 1,
    highFreqFactor: 4,
    originalMaxPositionEmbeddings: 8192,
  });
  const lin = parseModelConfig({ ...base, rope_scaling: { rope_type: "linear", factor: 2 } });
  assert.deepEqual(lin.ropeScaling, { type: "linear", factor: 2 });
  assert.equal(parseModelConfig({ ...base, rope_scaling: { type: "default" } }).ropeScaling, null);
  assert.throws(
    () => parseModelConfig({ ...base, rope_scaling: { type: "yarn", factor: 2 } }, "x/config.json"),
    /x\/config\.json: unsupported rope type 'yarn'/,
  );
  assert.throws(
    () => parseModelConfig({ ...base, rope_scaling: { type: "linear" } }, "x/config.json"),
    /missing required field 'rope_scaling\.factor'/,
  );
});

Deno.test("config: transformers 5 rope_parameters", () => {
  const c = parseModelConfig({
    ...base,
    rope_parameters: { rope_type: "linear", rope_theta: 1e6, factor: 4 },
  });
  assert.equal(c.ropeTheta, 1e6);
  assert.deepEqual(c.ropeScaling, { type: "linear", factor: 4 });
  const d = parseModelConfig({ ...base, rope_parameters: { rope_type: "default", rope_theta: 5e5 } });
  assert.equal(d.ropeTheta, 5e5);
  assert.equal(d.ropeScaling, null);
});

Deno.test("config: tied embeddings, explicit head_dim, GQA, eos lists, llama biases", () => {
  const c = parseModelConfig({
    ...base,
    head_dim: 16,
    num_key_value_heads: 2,
    tie_word_embeddings: true,
    eos_token_id: [128001, 128008, 128009],
    attention_bias: true,
    mlp_bias: true,
  });
  assert.equal(c.headDim, 16);
  assert.equal(c.numKvHeads, 2);
  assert.equal(c.tieWordEmbeddings, true);
  assert.deepEqual(c.eosTokenIds, [128001, 128008, 128009]);
  assert.deepEqual([c.attentionBias, c.outputBias, c.mlpBias], [true, true, true]);
});

Deno.test("config: mistral sliding window, qwen2 biases and use_sliding_window", () => {
  const m = parseModelConfig({ ...base, architectures: ["MistralForCausalLM"], sliding_window: 4096 });
  assert.equal(m.architecture, "mistral");
  assert.equal(m.slidingWindow, 4096);
  assert.equal(
    parseModelConfig({ ...base, architectures: ["MistralForCausalLM"], sliding_window: null }).slidingWindow,
    null,
  );
  const qwen = { ...base, architectures: ["Qwen2ForCausalLM"], sliding_window: 32 };
  const q = parseModelConfig({ ...qwen, use_sliding_window: false });
  assert.equal(q.architecture, "qwen2");
  assert.deepEqual([q.attentionBias, q.outputBias, q.mlpBias], [true, false, false]);
  assert.equal(q.slidingWindow, null);
  assert.equal(
    parseModelConfig({ ...qwen, use_sliding_window: true, max_window_layers: 0 }).slidingWindow,
    32,
  );
  assert.equal(
    parseModelConfig({ ...qwen, use_sliding_window: true, max_window_layers: 2 }).slidingWindow,
    null,
  );
  assert.throws(
    () => parseModelConfig({ ...qwen, use_sliding_window: true, max_window_layers: 1 }, "q/config.json"),
    /q\/config\.json: mixed per-layer sliding windows/,
  );
});

Deno.test("config: unknown architecture and missing fields are named with the file", () => {
  assert.throws(
    () => parseModelConfig({ ...base, architectures: ["GPT2LMHeadModel"] }, "/m/config.json"),
    /\/m\/config\.json: unsupported architecture 'GPT2LMHeadModel'/,
  );
  for (const field of ["hidden_size", "vocab_size", "num_hidden_layers", "intermediate_size"]) {
    const raw: Record<string, unknown> = { ...base };
    delete raw[field];
    assert.throws(
      () => parseModelConfig(raw, "/m/config.json"),
      new RegExp(`/m/config\\.json: missing required field '${field}'`),
    );
  }
  assert.throws(
    () => parseModelConfig({ ...base, architectures: [] }),
    /missing required field 'architectures'/,
  );
  assert.throws(() => parseModelConfig({ ...base, hidden_size: "64" }), /'hidden_size' must be a number/);
});

Deno.test("generation_config: eos ids merged into the config's", async () => {
  const g = parseGenerationConfig({ eos_token_id: [2, 7], temperature: 0.6, top_p: 0.9, do_sample: true });
  assert.deepEqual(g.eosTokenIds, [2, 7]);
  assert.equal(g.temperature, 0.6);
  assert.equal(g.topP, 0.9);
  assert.equal(g.doSample, true);
  const ckpt = await loadCheckpoint(LLAMA); // config.json eos 2; generation_config.json eos [2, 7]
  assert.deepEqual(ckpt.config.eosTokenIds, [2, 7]);
  assert.deepEqual(ckpt.generation?.eosTokenIds, [2, 7]);
  ckpt.tensors.close();
});

Deno.test("checkpoint: sharded and bf16 fixtures load the same tensors", async () => {
  const single = await loadCheckpoint(LLAMA);
  const sharded = await loadCheckpoint(join(FIXTURES, "llama_sharded"));
  const bf16 = await loadCheckpoint(join(FIXTURES, "llama_bf16"));
  assert.deepEqual(sharded.tensors.names().sort(), single.tensors.names().sort());
  const files = new Set(sharded.tensors.names().map((n) => sharded.tensors.info(n).file));
  assert.ok(files.size >= 2, "sharded fixture spans several files");
  for (const name of single.tensors.names()) {
    const a = single.tensors.readF32(name);
    assert.deepEqual(sharded.tensors.readF32(name), a, name);
    assert.equal(bf16.tensors.info(name).dtype, "BF16");
    const b = bf16.tensors.readF32(name);
    for (let i = 0; i < a.length; i++) {
      assert.ok(Math.abs(a[i] - b[i]) <= Math.abs(a[i]) * 2 ** -8, `${name}[${i}]: bf16 rounding`);
    }
  }
  for (const c of [single, sharded, bf16]) c.tensors.close();
});

Deno.test("checkpoint: readRaw fills a given array in place (the stored bytes), or names the tensor", async () => {
  const bf16 = await loadCheckpoint(join(FIXTURES, "llama_bf16"));
  try {
    const name = "model.embed_tokens.weight";
    const fresh = bf16.tensors.readRaw(name);
    const into = new Uint8Array(fresh.length + 8).subarray(4, 4 + fresh.length);
    assert.equal(bf16.tensors.readRaw(name, into), into);
    assert.deepEqual(into, fresh);
    // the bytes are the bf16 bits readF32 widens
    const wide = new Uint32Array(bf16.tensors.readF32(name).buffer);
    const bits = new Uint16Array(fresh.buffer, fresh.byteOffset, fresh.length / 2);
    assert.deepEqual(Array.from(bits, (h) => h << 16 >>> 0), Array.from(wide));
    assert.throws(
      () => bf16.tensors.readRaw(name, new Uint8Array(fresh.length - 2)),
      /tensor 'model\.embed_tokens\.weight' has \d+ bytes; the destination array has \d+/,
    );
  } finally {
    bf16.tensors.close();
  }
});

Deno.test("safetensors: float16 / bf16 tensors of several decode chunks widen exactly as one whole", () => {
  const dir = Deno.makeTempDirSync({ prefix: "redrafter-chunks-" });
  try {
    const n = (1 << 20) + (1 << 19) + 77; // three chunks of 2^19 elements, the last one partial
    const data = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.013) * (1 + (i % 97)));
    const path = join(dir, "model.safetensors");
    writeSafetensors(path, [
      { name: "h", shape: [n], dtype: "F16", data },
      { name: "b", shape: [n], dtype: "BF16", data },
    ]);
    const t = openSafetensors(path);
    for (const [name, dtype] of [["h", "F16"], ["b", "BF16"]] as const) {
      const whole = new Float32Array(n);
      decodeToF32(t.readRaw(name), dtype, whole);
      const got = new Uint32Array(t.readF32(name).buffer), want = new Uint32Array(whole.buffer);
      let differ = 0;
      for (let i = 0; i < n; i++) if (got[i] !== want[i]) differ++;
      assert.equal(differ, 0, `${name}: ${differ} of ${n} values differ`);
    }
    t.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("checkpoint: missing directory, config or weights are clear errors", async () => {
  await assert.rejects(
    loadCheckpoint("/nonexistent/model"),
    /\/nonexistent\/model: checkpoint directory not found/,
  );
  const dir = Deno.makeTempDirSync();
  try {
    await assert.rejects(loadCheckpoint(dir), /no config\.json/);
    Deno.copyFileSync(join(LLAMA, "config.json"), join(dir, "config.json"));
    await assert.rejects(loadCheckpoint(dir), /no model\.safetensors or model\.safetensors\.index\.json/);
    Deno.writeTextFileSync(join(dir, "config.json"), "{ not json");
    await assert.rejects(loadCheckpoint(dir), /config\.json: malformed JSON/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

// ---- bad safetensors files, derived from the good llama fixture ----

type Header = Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;

function splitFile(bytes: Uint8Array): { header: Header; data: Uint8Array } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  return { header, data: bytes.subarray(8 + n) };
}

function joinFile(headerText: string, data: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

/** A temp checkpoint dir holding llama's configs and the given model.safetensors bytes. */
async function withBadFile(bytes: Uint8Array, fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.copyFileSync(join(LLAMA, "config.json"), join(dir, "config.json"));
    Deno.writeFileSync(join(dir, "model.safetensors"), bytes);
    await fn(dir);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

function editHeader(edit: (h: Header) => void): Uint8Array {
  const { header, data } = splitFile(Deno.readFileSync(join(LLAMA, "model.safetensors")));
  edit(header);
  return joinFile(JSON.stringify(header), data);
}

const GOOD = () => Deno.readFileSync(join(LLAMA, "model.safetensors"));
const T = "model.layers.0.mlp.up_proj.weight";

const badCases: [string, () => Uint8Array, RegExp][] = [
  ["truncated file", () => GOOD().subarray(0, GOOD().length - 100), /lie outside the \d+-byte data block/],
  ["truncated inside the header", () => GOOD().subarray(0, 40), /runs past the end of the 40-byte file/],
  ["tiny file", () => GOOD().subarray(0, 5), /5 bytes, too small for a header/],
  [
    "oversized header length",
    () => {
      const b = GOOD().slice();
      new DataView(b.buffer).setBigUint64(0, 1n << 40n, true);
      return b;
    },
    /header length \d+ exceeds the 100000000-byte limit/,
  ],
  ["malformed header JSON", () => joinFile('{"a": [1, 2', new Uint8Array(16)), /malformed header/],
  [
    "header not an object",
    () => joinFile("[1, 2]", new Uint8Array(16)),
    /malformed header: not a JSON object/,
  ],
  [
    "offsets out of range",
    () =>
      editHeader((h) => {
        h[T].data_offsets = [h[T].data_offsets[0], h[T].data_offsets[1] + 1_000_000];
      }),
    new RegExp(`'${T}' data_offsets .* lie outside`),
  ],
  [
    "shape/byte mismatch",
    () =>
      editHeader((h) => {
        h[T].shape = [64, 33];
      }),
    new RegExp(`'${T}' shape \\[64,33\\] x F32 needs 8448 bytes but data_offsets span 8192`),
  ],
  [
    "overlapping tensors",
    () =>
      editHeader((h) => {
        const o = h["model.norm.weight"].data_offsets;
        h["model.norm.weight"].data_offsets = [o[0] - 64, o[1] - 64];
      }),
    /overlap/,
  ],
  [
    "unknown dtype I64",
    () =>
      editHeader((h) => {
        h["model.norm.weight"].dtype = "I64";
        h["model.norm.weight"].shape = [16];
      }),
    /tensor 'model\.norm\.weight' has unsupported dtype I64/,
  ],
  [
    "unknown dtype F64",
    () =>
      editHeader((h) => {
        h["model.norm.weight"].dtype = "F64";
        h["model.norm.weight"].shape = [16];
      }),
    /unsupported dtype F64/,
  ],
  ["made-up dtype", () => editHeader((h) => void (h[T].dtype = "Q4")), /unknown dtype Q4/],
];

for (const [name, make, pattern] of badCases) {
  Deno.test(`bad safetensors: ${name}`, async () => {
    await withBadFile(make(), async (dir) => {
      await assert.rejects(loadCheckpoint(dir), (e: Error) => {
        assert.match(e.message, pattern);
        assert.match(e.message, /model\.safetensors/, "the error names the file");
        return true;
      });
    });
  });
}

Deno.test("bad checkpoint: missing tensor and wrong shape are named at model creation", async () => {
  const { header, data } = splitFile(GOOD());
  delete (header as Record<string, unknown>)[T];
  await withBadFile(joinFile(JSON.stringify(header), data), async (dir) => {
    const ckpt = await loadCheckpoint(dir);
    assert.throws(() => createCpuModel(ckpt), new RegExp(`model\\.safetensors: missing tensor '${T}'`));
    ckpt.tensors.close();
  });
  const swapped = editHeader((h) => void (h[T].shape = [32, 64]));
  await withBadFile(swapped, async (dir) => {
    const ckpt = await loadCheckpoint(dir);
    assert.throws(
      () => createCpuModel(ckpt),
      new RegExp(`'${T}' has shape \\[32,64\\], expected \\[64,32\\]`),
    );
    ckpt.tensors.close();
  });
});

Deno.test("bad checkpoint: sharded index naming a tensor its shard lacks", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const src = join(FIXTURES, "llama_sharded");
    for (const e of Deno.readDirSync(src)) Deno.copyFileSync(join(src, e.name), join(dir, e.name));
    const index = JSON.parse(Deno.readTextFileSync(join(dir, "model.safetensors.index.json")));
    const shards = [...new Set(Object.values(index.weight_map))] as string[];
    const wrong = shards.find((s) => s !== index.weight_map["model.norm.weight"])!;
    index.weight_map["model.norm.weight"] = wrong;
    Deno.writeTextFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify(index));
    await assert.rejects(
      loadCheckpoint(dir),
      new RegExp(`names tensor 'model\\.norm\\.weight' in ${wrong}, which lacks it`),
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
