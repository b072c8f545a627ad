import assert from "node:assert/strict";
import { beamAncestry, beamSearch, DEAD_BEAM_PRIOR } from "../core/beam_search.ts";
import { ToyDrafter, ToyTarget } from "./support/toy_target.ts";

/**
 * Brute-force check of every step: from the full Q rows the drafter stored, the global top-W over W x V of
 * (score + log Q), ties to the lower parent * V + token, must be what beamSearch kept.
 */
async function checkAgainstBruteForce(V: number, W: number, L: number, B: number, seed: number) {
  const target = new ToyTarget({ vocab: V, hidden: 4 });
  const drafter = new ToyDrafter(target, { kind: "random", salt: seed });
  const ctx = new Float32Array(B * 4);
  for (let i = 0; i < ctx.length; i++) ctx[i] = (i * 7919 + seed) % 65536;
  const init = Int32Array.from({ length: B }, (_, b) => (b + seed) % V);
  const r = await beamSearch(drafter, ctx, init, W, L);
  for (let b = 0; b < B; b++) {
    let score: number[] = Array.from({ length: W }, (_, w) => (w === 0 ? 0 : DEAD_BEAM_PRIOR));
    let prefix = Array.from({ length: W }, () => [init[b]]);
    for (let s = 0; s < L - 1; s++) {
      const cand: { v: number; flat: number }[] = [];
      for (let w = 0; w < W; w++) {
        const row = r.round.logProbRow(s, b, w);
        for (let t = 0; t < V; t++) cand.push({ v: score[w] + row[t], flat: w * V + t });
      }
      cand.sort((x, y) => y.v - x.v || x.flat - y.flat);
      const top = cand.slice(0, W);
      for (let j = 0; j < W; j++) {
        assert.equal(
          r.origin[(s * B + b) * W + j],
          Math.floor(top[j].flat / V),
          `step ${s} beam ${j} parent`,
        );
      }
      prefix = top.map((c) => [...prefix[Math.floor(c.flat / V)], c.flat % V]);
      score = top.map((c) => c.v);
    }
    for (let w = 0; w < W; w++) {
      assert.deepEqual(Array.from(r.beams.subarray((b * W + w) * L, (b * W + w + 1) * L)), prefix[w]);
      assert.equal(r.scores[b * W + w], score[w]);
    }
  }
  return r;
}

Deno.test("beam search equals a brute-force global top-W over W x V, every step", async () => {
  await checkAgainstBruteForce(24, 4, 5, 3, 1);
  await checkAgainstBruteForce(24, 1, 2, 1, 2);
  await checkAgainstBruteForce(24, 24, 3, 2, 3); // W = V
  await checkAgainstBruteForce(80, 60, 3, 1, 4); // W > 50: step 1 must use warped (-50000) tokens
});

Deno.test("beam search: init token in column 0, distinct beams, scores = sum of the Q rows on the ancestry", async () => {
  const target = new ToyTarget({ vocab: 30, hidden: 4 });
  const drafter = new ToyDrafter(target, { kind: "random" });
  const B = 2, W = 5, L = 4;
  const ctx = Float32Array.from({ length: B * 4 }, (_, i) => i * 1000);
  const init = Int32Array.of(7, 11);
  const r = await beamSearch(drafter, ctx, init, W, L);
  for (let b = 0; b < B; b++) {
    const seen = new Set<string>();
    for (let w = 0; w < W; w++) {
      const beam = Array.from(r.beams.subarray((b * W + w) * L, (b * W + w + 1) * L));
      assert.equal(beam[0], init[b]);
      assert.ok(!seen.has(beam.join()), "beams are distinct when W <= 50");
      seen.add(beam.join());
      if (w > 0) assert.ok(r.scores[b * W + w] <= r.scores[b * W + w - 1], "sorted by score");
      const slots = beamAncestry(r, b, w);
      let s = 0;
      for (let k = 0; k < L - 1; k++) s += r.round.logProbRow(k, b, slots[k])[beam[k + 1]];
      assert.equal(r.scores[b * W + w], s);
    }
  }
});

Deno.test("beam search: bad shapes name the option", async () => {
  const target = new ToyTarget({ vocab: 10, hidden: 4 });
  const drafter = new ToyDrafter(target, { kind: "random" });
  const ctx = new Float32Array(4), init = Int32Array.of(1);
  await assert.rejects(() => beamSearch(drafter, ctx, init, 2, 1), /beamLength must be an integer >= 2/);
  await assert.rejects(
    () => beamSearch(drafter, ctx, init, 0, 3),
    /beamWidth must be an integer in \[1, vocab size 10\]/,
  );
  await assert.rejects(() => beamSearch(drafter, ctx, init, 11, 3), /beamWidth/);
  await assert.rejects(() => beamSearch(drafter, new Float32Array(3), init, 2, 3), /ctx has 3 values/);
});
