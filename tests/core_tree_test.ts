import assert from "node:assert/strict";
import {
  ancestorMask,
  chainBeams,
  dedupPrefix,
  packBatch,
  packBeams,
  treeAttentionMask,
  unpack,
} from "../core/tree.ts";
import { uniform } from "../core/sampling.ts";

// Golden vectors: redrafter.md section 8 (the reference's tree_attention_test.py).
const B = 2, W = 3, L = 4;
const beams = Int32Array.from([
  ...[91, 92, 93, 95, 91, 92, 94, 96, 91, 92, 93, 97],
  ...[93, 94, 95, 92, 93, 95, 96, 93, 93, 94, 97, 96],
]);

Deno.test("golden: prefix tree", () => {
  assert.deepEqual(Array.from(dedupPrefix(beams.subarray(0, 12), W, L)), [
    0,
    0,
    0,
    0,
    0,
    0,
    1,
    1,
    0,
    0,
    0,
    2,
  ]);
  assert.deepEqual(Array.from(dedupPrefix(beams.subarray(12), W, L)), [0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 2, 2]);
});

Deno.test("golden: packed tokens, indices, unpacker, depths (explicit padding)", () => {
  const p = packBatch(beams, B, W, L, -7);
  assert.equal(p.size, 9);
  assert.deepEqual(Array.from(p.counts), [7, 9]);
  assert.deepEqual(Array.from(p.tokens.subarray(0, 9)), [91, 92, 93, 95, 94, 96, 97, -7, -7]);
  assert.deepEqual(Array.from(p.tokens.subarray(9)), [93, 94, 95, 92, 95, 96, 93, 97, 96]);
  assert.deepEqual(Array.from(p.indices.subarray(0, 9)), [0, 1, 2, 3, 6, 7, 11, -1, -1]);
  assert.deepEqual(Array.from(p.indices.subarray(9)), [0, 1, 2, 3, 5, 6, 7, 10, 11]);
  assert.deepEqual(Array.from(p.unpacker.subarray(0, 12)), [0, 1, 2, 3, 0, 1, 4, 5, 0, 1, 2, 6]);
  assert.deepEqual(Array.from(p.unpacker.subarray(12)), [0, 1, 2, 3, 0, 4, 5, 6, 0, 1, 7, 8]);
  // Reference position_offsets, real slots only (the reference's padding slots hold another row's garbage).
  assert.deepEqual(Array.from(p.depth.subarray(0, 7)), [0, 1, 2, 3, 2, 3, 3]);
  assert.deepEqual(Array.from(p.depth.subarray(9)), [0, 1, 2, 3, 1, 2, 3, 2, 3]);
  assert.deepEqual(Array.from(p.depth.subarray(7, 9)), [0, 0]);
  assert.deepEqual(Array.from(p.parents.subarray(0, 9)), [-1, 0, 1, 2, 1, 4, 2, -1, -1]);
  assert.deepEqual(Array.from(p.parents.subarray(9)), [-1, 0, 1, 2, 0, 4, 5, 1, 7]);
});

function maskRows(mask: Uint8Array, n: number, cols: number, from: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    let s = "";
    for (let j = from; j < cols; j++) s += mask[i * cols + j] ? "1" : ".";
    out.push(s);
  }
  return out;
}

Deno.test("golden: packed-block attention masks", () => {
  const p = packBatch(beams, B, W, L);
  const row0 = ancestorMask(p.parents.subarray(0, 9));
  // Reference rows p7/p8 of row 0 are garbage from row 1 (11......., 1........ after its window); ours are
  // self-only padding, so only the 7 real rows are compared.
  assert.deepEqual(maskRows(row0, 7, 9, 0), [
    "1........",
    "11.......",
    "111......",
    "1111.....",
    "11..1....",
    "11..11...",
    "111...1..",
  ]);
  assert.deepEqual(maskRows(ancestorMask(p.parents.subarray(9)), 9, 9, 0), [
    "1........",
    "11.......",
    "111......",
    "1111.....",
    "1...1....",
    "1...11...",
    "1...111..",
    "11.....1.",
    "11.....11",
  ]);
  // With 3 committed positions and padding slots 7, 8 seeing only themselves.
  const full = treeAttentionMask(3, p.parents.subarray(0, 9), 7);
  const rows = maskRows(full, 9, 12, 0);
  assert.equal(rows[4], "11111..1....");
  assert.equal(rows[7], "..........1.");
  assert.equal(rows[8], "...........1");
});

Deno.test("kv_cache_test example: unpack gathers beam-major", () => {
  // packed [11, 22, 33, 44] with beams [11 22 33] [11 22 44] -> [11 22 33 11 22 44]
  const t = packBeams(Int32Array.of(11, 22, 33, 11, 22, 44), 2, 3);
  assert.deepEqual(Array.from(t.tokens), [11, 22, 33, 44]);
  assert.deepEqual(Array.from(unpack(t.tokens, t.unpacker)), [11, 22, 33, 11, 22, 44]);
  const f = unpack(Float32Array.of(1.5, 2.5, 3.5, 4.5), t.unpacker);
  assert.ok(f instanceof Float32Array);
  assert.deepEqual(Array.from(f), [1.5, 2.5, 3.5, 1.5, 2.5, 4.5]);
});

Deno.test("property: random beams pack into a valid prefix tree", () => {
  for (let trial = 0; trial < 300; trial++) {
    const w = 1 + (trial % 7), l = 2 + (trial % 5), vocab = 2 + (trial % 4);
    const bm = new Int32Array(w * l);
    for (let i = 0; i < w; i++) {
      bm[i * l] = 5; // shared init token
      for (let k = 1; k < l; k++) bm[i * l + k] = Math.floor(uniform(trial, i, k) * vocab);
    }
    const t = packBeams(bm, w, l);
    const n = t.tokens.length;
    assert.ok(n >= l && n <= 1 + w * (l - 1));
    // packed[unpacker] == beams, unpacker[:, 0] == 0
    assert.deepEqual(Array.from(unpack(t.tokens, t.unpacker)), Array.from(bm));
    for (let i = 0; i < w; i++) assert.equal(t.unpacker[i * l], 0);
    // every token precedes its descendants; depth = parent depth + 1; each beam is a parent chain
    for (let p = 0; p < n; p++) {
      assert.ok(t.parents[p] < p);
      assert.equal(t.depth[p], t.parents[p] < 0 ? 0 : t.depth[t.parents[p]] + 1);
    }
    for (let i = 0; i < w; i++) {
      for (let k = 1; k < l; k++) assert.equal(t.parents[t.unpacker[i * l + k]], t.unpacker[i * l + k - 1]);
    }
    // no token packed twice: distinct (parent, token) pairs
    const seen = new Set<string>();
    for (let p = 0; p < n; p++) {
      const key = `${t.parents[p]}:${t.tokens[p]}`;
      assert.ok(!seen.has(key), `duplicate node ${key}`);
      seen.add(key);
    }
    // the chain layout holds the same beams with no sharing
    const c = chainBeams(bm, w, l);
    assert.equal(c.tokens.length, w * l);
    assert.deepEqual(Array.from(unpack(c.tokens, c.unpacker)), Array.from(bm));
  }
});

Deno.test("bad shapes are refused with the sizes", () => {
  assert.throws(() => packBeams(Int32Array.of(1, 2, 3), 2, 2), /packBeams: beams has 3 ids, expected 2 x 2/);
  assert.throws(() => packBatch(Int32Array.of(1, 2, 3), 1, 2, 2), /packBatch/);
  assert.throws(() => ancestorMask(Int32Array.of(-1, 1)), /parents\[1\] = 1/);
});
