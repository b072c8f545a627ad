import assert from "node:assert/strict";
import { createStreamDecoder, type Detokenizer } from "../loader/stream_decoder.ts";
import { loadTokenizer, type Tokenizer } from "../loader/tokenizer.ts";
import { expected, TOKENIZERS } from "./tokenizer_fixtures.ts";

const cache = new Map<string, Promise<Tokenizer>>();
const load = (name: string) => {
  if (!cache.has(name)) cache.set(name, loadTokenizer(TOKENIZERS[name]));
  return cache.get(name)!;
};

const FFFD = "\uFFFD";

/** Deterministic PRNG (mulberry32) for chunk sizes. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Streams ids in chunks of the given sizes; returns every chunk, the flush last. */
function stream(tok: Detokenizer, ids: number[], sizes: () => number, skipSpecialTokens = false): string[] {
  const dec = createStreamDecoder(tok, { skipSpecialTokens });
  const chunks: string[] = [];
  for (let i = 0; i < ids.length;) {
    const n = Math.max(1, sizes());
    chunks.push(dec.push(ids.slice(i, i + n)));
    i += n;
  }
  chunks.push(dec.flush());
  return chunks;
}

// The fixture texts, plus all of them joined (a longer stream that crosses every kind of boundary).
function texts(name: string): string[] {
  const all = expected(name).encode.map((c) => c.text);
  return [...all, all.join(" ")];
}

for (const name of Object.keys(TOKENIZERS)) {
  Deno.test(`${name}: streamed chunks concatenate to the full decode and never hold a split character`, async () => {
    const tok = await load(name);
    const random = rng(7);
    for (const text of texts(name)) {
      const ids = tok.encode(text);
      for (const skip of [false, true]) {
        const full = tok.decode(ids, { skipSpecialTokens: skip });
        for (const sizes of [() => 1, () => 1 + Math.floor(random() * 4)]) {
          const chunks = stream(tok, ids, sizes, skip);
          assert.equal(chunks.join(""), full, `${JSON.stringify(text)} skip=${skip}`);
          if (!full.includes(FFFD)) {
            for (const c of chunks) {
              assert.ok(!c.includes(FFFD), `chunk ${JSON.stringify(c)} of ${JSON.stringify(text)}`);
            }
          }
        }
      }
    }
  });
}

Deno.test("llama3: emoji and CJK really are split across tokens (the test above can fail)", async () => {
  const tok = await load("llama3");
  for (
    const text of [
      "I love 🦙 llamas 👩‍👩‍👧‍👦 and 🇫🇷 flags!",
      "日本語のテキストと中文文本，还有한국어. 饕餮 龘 𠮷野家 쀍",
    ]
  ) {
    const ids = tok.encode(text);
    const lone = ids.map((id) => tok.decode([id]));
    assert.ok(lone.some((t) => t.includes(FFFD)), `some token of ${text} holds part of a character`);
    assert.notEqual(lone.join(""), text);
  }
});

for (const name of ["sp", "metaspace"]) {
  Deno.test(`${name}: per-token decoding would drop SentencePiece spaces; the stream keeps them`, async () => {
    const tok = await load(name);
    const ids = tok.encode("Hello world, how are you?", { addSpecialTokens: false });
    const naive = ids.map((id) => tok.decode([id])).join("");
    assert.ok(!naive.includes(" "), `naive per-token decode lost the spaces: ${JSON.stringify(naive)}`);
    const chunks = stream(tok, ids, () => 1);
    assert.equal(chunks.join(""), tok.decode(ids));
    assert.ok(chunks.join("").includes(" world"));
    // Byte-fallback pieces of 🦙 (4 byte tokens) are held until the last one arrives.
    const llama = tok.encode("a🦙", { addSpecialTokens: false });
    const dec = createStreamDecoder(tok);
    const out = llama.map((id) => dec.push([id]));
    assert.deepEqual(out.slice(-4), ["", "", "", "🦙"]);
  });
}

Deno.test("flush returns a held unfinished character as U+FFFD and resets the decoder", async () => {
  const tok = await load("llama3");
  const ids = tok.encode("ok 🦙");
  const cut = ids.slice(0, -1); // drop the token that completes the emoji
  assert.ok(tok.decode(cut).endsWith(FFFD));
  const dec = createStreamDecoder(tok);
  let text = "";
  for (const id of cut) text += dec.push([id]);
  assert.ok(!text.includes(FFFD));
  const rest = dec.flush();
  assert.ok(rest.endsWith(FFFD));
  assert.equal(text + rest, tok.decode(cut));
  assert.deepEqual(dec.tokens, []);
  // After the flush it starts over: a new stream is decoded on its own.
  assert.equal(dec.push(tok.encode("Hello")) + dec.flush(), "Hello");
  assert.equal(dec.flush(), "");
});

Deno.test("a pure fake byte tokenizer: the decoder needs only decode()", () => {
  // ids are bytes; decode is UTF-8 with replacement, like byte-level BPE.
  const fake: Detokenizer = { decode: (ids) => new TextDecoder().decode(Uint8Array.from(ids as number[])) };
  const bytes = [...new TextEncoder().encode("añ日🦙!")];
  const dec = createStreamDecoder(fake);
  const out = bytes.map((b) => dec.push([b]));
  out.push(dec.flush());
  assert.deepEqual(out.filter((s) => s !== ""), ["a", "ñ", "日", "🦙", "!"]);
  assert.equal(out.join(""), "añ日🦙!");
});
