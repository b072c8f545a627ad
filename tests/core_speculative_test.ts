import assert from "node:assert/strict";
import { drain, generate } from "../core/generate.ts";
import { speculativeGenerate, speculativeStream } from "../core/speculative.ts";
import type { SpeculativeOptions, TokenEvent } from "../core/options.ts";
import { samplingProbs } from "../core/sampling.ts";
import { chainHash, EMPTY_HASH, ToyDrafter, ToyTarget } from "./support/toy_target.ts";
import { referenceAR } from "./support/reference_ar.ts";

const prompts = [[2, 3, 4], [5, 6], [7, 0, 1, 2, 3, 4, 5]];

Deno.test("oracle drafter: tau = beam_length on every step, output identical to AR (tree and chain layouts)", async () => {
  const t = new ToyTarget({ vocab: 24, eos: [1] });
  const ar = await generate(t, prompts, { maxNewTokens: 40 });
  for (const [W, L] of [[1, 2], [3, 4], [4, 6]]) {
    for (const tree of [true, false]) {
      const d = new ToyDrafter(t, { kind: "oracle", sharpness: 10 });
      const res = await speculativeGenerate(t, d, prompts, {
        maxNewTokens: 40,
        beamWidth: W,
        beamLength: L,
        tree,
      });
      assert.deepEqual(res.ids, ar.ids, `W=${W} L=${L} tree=${tree}`);
      assert.deepEqual(res.finish, ar.finish);
      for (const p of res.metrics.prompts) {
        assert.ok(p.steps > 0);
        for (const n of p.acceptedLengths) assert.equal(n, L - 1);
        assert.equal(p.tau, L);
      }
      assert.equal(res.metrics.tau, L);
      assert.equal(res.metrics.referenceAcceptancePct, (100 * (L - 1)) / L);
    }
  }
});

Deno.test("random drafters, greedy: identical to AR at batch 1 and batch 3, rows ending at different times", async () => {
  const t = new ToyTarget({ vocab: 14, eos: [1] });
  const ar = await generate(t, prompts, { maxNewTokens: 30 });
  assert.ok(
    new Set(ar.ids.map((x) => x.length)).size > 1 && ar.finish.includes("eos") &&
      ar.finish.includes("length"),
  );
  let acceptedSomething = false;
  for (const [W, L] of [[1, 2], [2, 3], [4, 4], [8, 5], [12, 3]]) {
    for (const salt of [1, 2]) {
      for (const tree of [true, false]) {
        const d = new ToyDrafter(t, { kind: "random", salt, scale: 4 });
        const opts: SpeculativeOptions = { maxNewTokens: 30, beamWidth: W, beamLength: L, tree };
        const res = await speculativeGenerate(t, d, prompts, opts);
        assert.deepEqual(res.ids, ar.ids, `W=${W} L=${L} salt=${salt} tree=${tree}`);
        assert.deepEqual(res.finish, ar.finish);
        if (res.metrics.tau > 1) acceptedSomething = true;
        for (const [r, p] of prompts.entries()) {
          const one = await speculativeGenerate(
            t,
            new ToyDrafter(t, { kind: "random", salt, scale: 4 }),
            [p],
            opts,
          );
          assert.deepEqual(one.ids[0], ar.ids[r]);
        }
      }
    }
  }
  assert.ok(acceptedSomething, "random drafters should get some drafts accepted on a 14-token vocabulary");
});

Deno.test("exact sampling: token-identical to AR sampling (seeds, temperatures, top-k, top-p)", async () => {
  const t = new ToyTarget({ vocab: 16, eos: [1], scale: 2 });
  let accepted = 0, steps = 0;
  for (const seed of [0, 5, 123456789]) {
    for (
      const [temperature, topK, topP] of [[1, 0, 1], [0.5, 0, 1], [1.8, 0, 1], [1, 4, 1], [1, 0, 0.8], [
        0.7,
        6,
        0.9,
      ]]
    ) {
      const sampling = { mode: "exact" as const, temperature, topK, topP, seed };
      const ar = await generate(t, prompts, { maxNewTokens: 24, sampling });
      const params = { temperature, topK, topP };
      assert.deepEqual(ar.ids, prompts.map((p, r) => referenceAR(t, p, r, 24, [1], { params, seed })));
      for (
        const [kind, W, L, tree] of [["oracle", 3, 4, true], ["random", 4, 3, true], [
          "oracle",
          2,
          5,
          false,
        ]] as const
      ) {
        const d = new ToyDrafter(t, { kind, sharpness: 1 / temperature, noise: 0.5, salt: seed });
        const res = await speculativeGenerate(t, d, prompts, {
          maxNewTokens: 24,
          beamWidth: W,
          beamLength: L,
          tree,
          sampling,
        });
        assert.deepEqual(res.ids, ar.ids, `seed ${seed} T ${temperature} k ${topK} p ${topP} ${kind}`);
        for (const p of res.metrics.prompts) {
          accepted += p.acceptedLengths.reduce((a, b) => a + b, 0);
          steps += p.steps;
        }
      }
    }
  }
  assert.ok(
    accepted / steps > 0.25,
    `drafts must be accepted for this test to mean something (${accepted}/${steps})`,
  );
});

Deno.test("streaming: events concatenate to ids; drafted flags mark accepted drafts; metrics are consistent", async () => {
  const t = new ToyTarget({ vocab: 16, eos: [1] });
  const d = new ToyDrafter(t, { kind: "oracle", sharpness: 1, noise: 2 });
  let clock = 0;
  const events: TokenEvent[] = [];
  const res = await drain(
    speculativeStream(t, d, prompts, {
      maxNewTokens: 30,
      beamWidth: 3,
      beamLength: 4,
      sampling: { seed: 9 },
      now: () => clock++,
    }),
    (e) => events.push(e),
  );
  const rows: number[][] = prompts.map(() => []);
  const draftedCount = prompts.map(() => 0);
  for (const e of events) {
    rows[e.row].push(...e.tokens);
    assert.equal(e.drafted.length, e.tokens.length);
    // a step's drafted tokens come first, then at most one target token
    const firstOwn = e.drafted.indexOf(false);
    assert.ok(firstOwn === -1 || firstOwn === e.drafted.length - 1);
    draftedCount[e.row] += e.drafted.filter((x) => x).length;
  }
  assert.deepEqual(rows, res.ids);
  const m = res.metrics;
  for (const [r, p] of m.prompts.entries()) {
    assert.equal(p.histogram.reduce((a, b) => a + b, 0), p.steps);
    const sumN = p.acceptedLengths.reduce((a, b) => a + b, 0);
    assert.ok(draftedCount[r] <= sumN); // truncation at EOS / max tokens can only drop some
    assert.ok(Math.abs(p.tau - (sumN / p.steps + 1)) < 1e-12);
    for (let k = 1; k < p.acceptanceByPosition.length; k++) {
      assert.ok(p.acceptanceByPosition[k] <= p.acceptanceByPosition[k - 1]);
    }
    assert.ok(p.elapsedMs > 0 && p.tokensPerSecond > 0);
  }
  assert.ok(m.tau > 1);
  assert.equal(m.steps, Math.max(...m.prompts.map((p) => p.steps)));
  assert.ok(m.meanDraftMs >= 1 && m.meanVerifyMs >= 1 && m.meanAcceptMs >= 1 && m.promptMs >= 1);
  assert.equal(m.newTokens, res.ids.flat().length);
});

Deno.test("no-tree mode verifies more tokens than the packed tree for the same output", async () => {
  const t1 = new ToyTarget({ vocab: 8, eos: [] }), t2 = new ToyTarget({ vocab: 8, eos: [] });
  const opts = { maxNewTokens: 20, beamWidth: 6, beamLength: 4 };
  const a = await speculativeGenerate(t1, new ToyDrafter(t1, { kind: "random" }), prompts, opts);
  const b = await speculativeGenerate(t2, new ToyDrafter(t2, { kind: "random" }), prompts, {
    ...opts,
    tree: false,
  });
  assert.deepEqual(a.ids, b.ids);
  assert.deepEqual(
    a.metrics.prompts.map((p) => p.acceptedLengths),
    b.metrics.prompts.map((p) => p.acceptedLengths),
  );
  assert.ok(t1.tokensIn < t2.tokensIn, `${t1.tokensIn} vs ${t2.tokensIn}`);
});

Deno.test("apple mode: runs, deterministic per seed, commits valid paths; equals greedy at T = 0", async () => {
  const t = new ToyTarget({ vocab: 16, eos: [1] });
  const d = () => new ToyDrafter(t, { kind: "oracle", sharpness: 1, noise: 1 });
  const opts = (seed: number, temperature = 1): SpeculativeOptions => ({
    maxNewTokens: 20,
    beamWidth: 3,
    beamLength: 4,
    sampling: { mode: "apple", temperature, seed },
  });
  const a = await speculativeGenerate(t, d(), prompts, opts(3));
  const b = await speculativeGenerate(t, d(), prompts, opts(3));
  assert.deepEqual(a.ids, b.ids);
  assert.ok(a.metrics.tau > 1);
  const c = await speculativeGenerate(t, d(), prompts, opts(4));
  assert.notDeepEqual(a.ids, c.ids);
  const g = await speculativeGenerate(t, d(), prompts, opts(3, 0));
  assert.deepEqual(g.ids, (await generate(t, prompts, { maxNewTokens: 20 })).ids);
});

/** Probability of each 3-token continuation of prompt [0] under the toy target at T = 1 (vocab 3). */
function exactSequenceProbs(t: ToyTarget): Float64Array {
  const params = { temperature: 1, topK: 0, topP: 1 };
  const probs = new Float64Array(27);
  const h0 = chainHash(EMPTY_HASH, 0);
  const p1 = samplingProbs(t.logitsOf(h0), params);
  for (let a = 0; a < 3; a++) {
    const ha = chainHash(h0, a);
    const p2 = samplingProbs(t.logitsOf(ha), params);
    for (let b = 0; b < 3; b++) {
      const p3 = samplingProbs(t.logitsOf(chainHash(ha, b)), params);
      for (let c = 0; c < 3; c++) probs[a * 9 + b * 3 + c] = p1[a] * p2[b] * p3[c];
    }
  }
  return probs;
}

async function chiSquare(mode: "exact" | "apple", calls: number): Promise<number> {
  const t = new ToyTarget({ vocab: 3, eos: [], scale: 1.5 });
  const d = new ToyDrafter(t, { kind: "oracle", sharpness: 0.6, noise: 1 });
  const B = 2000; // rows differ in their uniform streams: B * calls independent sequences
  const counts = new Float64Array(27);
  const batch = Array.from({ length: B }, () => [0]);
  for (let seed = 0; seed < calls; seed++) {
    const res = await speculativeGenerate(t, d, batch, {
      maxNewTokens: 3,
      beamWidth: 2,
      beamLength: 3,
      sampling: { mode, temperature: 1, seed },
    });
    for (const ids of res.ids) counts[ids[0] * 9 + ids[1] * 3 + ids[2]]++;
  }
  const probs = exactSequenceProbs(t);
  const N = B * calls;
  let chi = 0;
  for (let i = 0; i < 27; i++) chi += (counts[i] - N * probs[i]) ** 2 / (N * probs[i]);
  return chi;
}

Deno.test("chi-square: 1e5 whole-loop exact-mode samples follow the target's sequence distribution", async () => {
  const chi = await chiSquare("exact", 50); // 1e5 sequences
  console.log(`exact mode: chi-square ${chi.toFixed(2)} (df 26; 0.9999 quantile 61.66)`);
  assert.ok(chi < 61.66, `chi-square ${chi}`);
  const apple = await chiSquare("apple", 5);
  console.log(
    `apple mode, same setup, 1e4 sequences: chi-square ${apple.toFixed(2)} (reported, not asserted)`,
  );
});

Deno.test("speculative: bad input names the option", async () => {
  const t = new ToyTarget({ vocab: 16 });
  const d = new ToyDrafter(t, { kind: "random" });
  const base = { maxNewTokens: 5, beamWidth: 2, beamLength: 3 };
  await assert.rejects(() => speculativeGenerate(t, d, [[1]], { ...base, beamLength: 1 }), /beamLength/);
  await assert.rejects(() => speculativeGenerate(t, d, [[1]], { ...base, beamWidth: 17 }), /beamWidth/);
  const other = new ToyTarget({ vocab: 20 });
  await assert.rejects(
    () => speculativeGenerate(t, new ToyDrafter(other, { kind: "random" }), [[1]], base),
    /vocabSize/,
  );
  const wide = new ToyTarget({ vocab: 16, hidden: 6 });
  await assert.rejects(
    () => speculativeGenerate(t, new ToyDrafter(wide, { kind: "random" }), [[1]], base),
    /hiddenSize/,
  );
  await assert.rejects(() => speculativeGenerate(t, d, [[1, 16]], base), /prompts\[0\]\[1\]/);
});
