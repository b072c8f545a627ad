import assert from "node:assert/strict";
import { join } from "node:path";
import { loadTokenizer, type Tokenizer, TokenizerNotFoundError } from "../loader/tokenizer.ts";
import { expected, FIXTURES, TOKENIZERS } from "./tokenizer_fixtures.ts";

const cache = new Map<string, Promise<Tokenizer>>();
const load = (name: string) => {
  if (!cache.has(name)) cache.set(name, loadTokenizer(TOKENIZERS[name]));
  return cache.get(name)!;
};

for (const name of Object.keys(TOKENIZERS)) {
  Deno.test(`${name}: encode matches Python tokenizers, with and without special tokens`, async () => {
    const tok = await load(name);
    for (const c of expected(name).encode) {
      assert.deepEqual(tok.encode(c.text), c.ids, `encode ${JSON.stringify(c.text)}`);
      assert.deepEqual(
        tok.encode(c.text, { addSpecialTokens: false }),
        c.ids_no_special,
        `encode ${JSON.stringify(c.text)}`,
      );
    }
  });

  Deno.test(`${name}: decode matches Python tokenizers, with and without skipping special tokens`, async () => {
    const tok = await load(name);
    for (const c of expected(name).encode) {
      assert.equal(tok.decode(c.ids), c.decode, `decode of ${JSON.stringify(c.text)}`);
      assert.equal(tok.decode(Int32Array.from(c.ids), { skipSpecialTokens: true }), c.decode_skip_special);
    }
    assert.equal(tok.decode([]), "");
  });

  Deno.test(`${name}: vocabulary size and special tokens match transformers`, async () => {
    const tok = await load(name);
    const e = expected(name);
    assert.equal(tok.vocabSize, e.vocab_size);
    assert.deepEqual(tok.bosToken, { content: e.bos_token, id: e.bos_token_id });
    assert.deepEqual(tok.eosToken, { content: e.eos_token, id: e.eos_token_id });
    assert.equal(tok.padToken, null);
    for (const s of tok.specialTokens) assert.equal(tok.tokenToId(s.content), s.id);
    assert.ok(tok.specialTokens.some((s) => s.id === e.eos_token_id));
  });

  Deno.test(`${name}: decode refuses ids outside the vocabulary`, async () => {
    const tok = await load(name);
    assert.throws(() => tok.decode([1, tok.vocabSize]), RangeError);
    assert.throws(() => tok.decode([-1]), /outside \[0, \d+\)/);
    assert.throws(() => tok.decode([1.5]), RangeError);
  });
}

Deno.test("llama3: the vocabulary strings of byte-level BPE and the special ids", async () => {
  const tok = await load("llama3");
  assert.equal(tok.idToToken(9906), "Hello");
  assert.equal(tok.tokenToId("<|eot_id|>"), 128009);
  assert.equal(tok.specialTokens.length, 256);
  assert.equal(tok.unkToken, null);
});

Deno.test("sp: Llama-2 layout, byte fallback pieces and <unk>", async () => {
  const tok = await load("sp");
  assert.deepEqual(tok.unkToken, { content: "<unk>", id: 0 });
  assert.equal(tok.idToToken(3 + 0x0a), "<0x0A>");
  // Text outside the trained alphabet falls back to bytes, never to <unk>.
  const ids = tok.encode("日", { addSpecialTokens: false });
  assert.deepEqual(ids.map((id) => tok.idToToken(id)).slice(-3), ["<0xE6>", "<0x97>", "<0xA5>"]);
});

async function withDir(files: Record<string, string>, fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "tok_test_" });
  try {
    for (const [name, text] of Object.entries(files)) await Deno.writeTextFile(join(dir, name), text);
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const spJson = () => Deno.readTextFileSync(FIXTURES + "sp/tokenizer.json");
const spConfig = () => JSON.parse(Deno.readTextFileSync(FIXTURES + "sp/tokenizer_config.json"));

Deno.test("a directory without tokenizer.json gives a TokenizerNotFoundError naming the file", async () => {
  await withDir({ "config.json": "{}" }, async (dir) => {
    const err = await loadTokenizer(dir).then(() => null, (e) => e);
    assert.ok(err instanceof TokenizerNotFoundError);
    assert.equal(err.dir, dir);
    assert.match(err.message, new RegExp(`${join(dir, "tokenizer.json")}: not found`));
  });
});

Deno.test("malformed files give errors naming the file", async () => {
  await withDir({ "tokenizer.json": "{ not json" }, async (dir) => {
    await assert.rejects(loadTokenizer(dir), new RegExp(`${join(dir, "tokenizer.json")}: malformed JSON`));
  });
  await withDir({ "tokenizer.json": "[1, 2]" }, async (dir) => {
    await assert.rejects(loadTokenizer(dir), /tokenizer\.json: expected a JSON object/);
  });
  await withDir({ "tokenizer.json": '{"version": "1.0"}' }, async (dir) => {
    await assert.rejects(loadTokenizer(dir), /tokenizer\.json: missing "model" with a "vocab"/);
  });
  await withDir({ "tokenizer.json": spJson(), "tokenizer_config.json": '{"bos_token": ' }, async (dir) => {
    await assert.rejects(
      loadTokenizer(dir),
      new RegExp(`${join(dir, "tokenizer_config.json")}: malformed JSON`),
    );
  });
  const badModel = JSON.parse(spJson());
  badModel.model.type = "NoSuchModel";
  await withDir({ "tokenizer.json": JSON.stringify(badModel) }, async (dir) => {
    await assert.rejects(
      loadTokenizer(dir),
      /tokenizer\.json: unsupported or malformed tokenizer: model type "NoSuchModel"/,
    );
  });
  const badNormalizer = JSON.parse(spJson());
  badNormalizer.normalizer = { type: "NoSuchNormalizer" };
  await withDir({ "tokenizer.json": JSON.stringify(badNormalizer) }, async (dir) => {
    await assert.rejects(
      loadTokenizer(dir),
      /tokenizer\.json: unsupported or malformed tokenizer: .*NoSuchNormalizer/,
    );
  });
});

Deno.test("special tokens named in tokenizer_config.json must exist in the vocabulary", async () => {
  const config = { ...spConfig(), pad_token: "<pad>" };
  await withDir(
    { "tokenizer.json": spJson(), "tokenizer_config.json": JSON.stringify(config) },
    async (dir) => {
      await assert.rejects(
        loadTokenizer(dir),
        /tokenizer_config\.json: pad_token "<pad>" is not in the vocabulary/,
      );
    },
  );
  const badShape = { ...spConfig(), eos_token: 2 };
  await withDir(
    { "tokenizer.json": spJson(), "tokenizer_config.json": JSON.stringify(badShape) },
    async (dir) => {
      await assert.rejects(loadTokenizer(dir), /tokenizer_config\.json: eos_token must be a string/);
    },
  );
});

Deno.test("tokenizer.json alone loads: no named special tokens, no chat template", async () => {
  await withDir({ "tokenizer.json": spJson() }, async (dir) => {
    const tok = await loadTokenizer(dir);
    assert.equal(tok.bosToken, null);
    assert.equal(tok.chatTemplate, null);
    assert.deepEqual(tok.encode("Hello world"), expected("sp").encode[0].ids);
    assert.throws(() => tok.applyChatTemplate([{ role: "user", content: "hi" }]), /no chat template/);
  });
});
