/**
 * Prompt lookup drafts (core/lookup.ts) and the ragged trees they make: which tokens a context proposes,
 * how a longer lookup branch packs next to the drafter's beams (END padding, prefix sharing) and is walked,
 * and that ReDrafter with lookup stays token-identical to autoregression in greedy and exact sampling, at
 * batch 1 and 3, tree and chain layouts, next to the drafter's beams or (mode "first") instead of them; on the
 * default pair it raises tau, and lookup-first rounds skip the drafter.
 */
import assert from "node:assert/strict";
import { checkLookupOptions, lookupBeams, lookupDraft } from "../core/lookup.ts";
import { chainBeams, END, packBeams } from "../core/tree.ts";
import { walkTree } from "../core/verify.ts";
import { generate } from "../core/generate.ts";
import { speculativeGenerate } from "../core/speculative.ts";
import type { SpeculativeOptions } from "../core/options.ts";
import type { DraftModel, TargetModel } from "../core/types.ts";
import { ToyDrafter, ToyTarget } from "./support/toy_target.ts";
import { DEFAULT_ROOT, defaultDrafter, defaultTarget } from "./support/default_pair.ts";
import { loadTokenizer } from "../loader/tokenizer.ts";

const ids = (a: ArrayLike<number>) => Array.from(a);

Deno.test("lookupDraft: what followed the latest earlier match of the longest suffix n-gram", () => {
  const o = { maxDrafts: 4 };
  // Suffix 3-gram (7, 8, 9) occurred at 1..3, followed by 4, 5: the drafts run up to the context's end.
  assert.deepEqual(ids(lookupDraft([6, 7, 8, 9, 4, 5, 7, 8, 9], o)), [4, 5, 7, 8]);
  // The latest occurrence wins: (1, 2) at 0..1 then 3, at 4..5 then 9.
  assert.deepEqual(ids(lookupDraft([1, 2, 3, 0, 1, 2, 9, 5, 1, 2], o)), [9, 5, 1, 2]);
  // The 3-gram is tried before the 2-gram: (x, 1, 2) matches only at 3..5.
  assert.deepEqual(ids(lookupDraft([5, 1, 2, 7, 1, 2, 8, 7, 1, 2], o)), [8, 7, 1, 2]);
  // maxDrafts caps the copy; a run of one token proposes more of it.
  assert.deepEqual(ids(lookupDraft([3, 3, 3, 3], { maxDrafts: 2 })), [3]);
  assert.deepEqual(ids(lookupDraft([1, 2, 3, 4, 1, 2], { maxDrafts: 1 })), [3]);
  // No earlier occurrence, a context too short, or only a 1-gram match (below minNgram 2): nothing.
  assert.deepEqual(ids(lookupDraft([1, 2, 3, 4], o)), []);
  assert.deepEqual(ids(lookupDraft([1], o)), []);
  assert.deepEqual(ids(lookupDraft([4, 5, 6, 4], o)), []);
  assert.deepEqual(ids(lookupDraft([4, 5, 6, 4], { ...o, minNgram: 1 })), [5, 6, 4]);
});

Deno.test("lookupDraft, length match: floor(n / 2) drafts for an n-token suffix match, at most maxDrafts", () => {
  const m = { maxDrafts: 8, length: "match" as const };
  // A 10-token passage repeated: the suffix matches 10 tokens back (the whole passage), so 5 drafts.
  const passage = [11, 12, 13, 14, 15, 16, 17, 18, 19, 20];
  assert.deepEqual(ids(lookupDraft([1, ...passage, 30, 31, 32, 33, 34, 35, ...passage], m)), [
    30,
    31,
    32,
    33,
    34,
  ]);
  // maxDrafts caps it.
  assert.deepEqual(
    ids(lookupDraft([1, ...passage, 30, 31, 32, 33, 34, 35, ...passage], { ...m, maxDrafts: 3 })),
    [
      30,
      31,
      32,
    ],
  );
  // A 3-token match (the shortest that counts with length match) proposes 1; a 2-token match nothing.
  assert.deepEqual(ids(lookupDraft([7, 8, 9, 4, 5, 6, 7, 8, 9], m)), [4]);
  assert.deepEqual(ids(lookupDraft([8, 9, 4, 5, 6, 7, 8, 9], m)), []);
  // The longest match wins over a later shorter one: (2, 7, 8, 9) at 0..3 against (7, 8, 9) at 5..7.
  assert.deepEqual(ids(lookupDraft([2, 7, 8, 9, 5, 7, 8, 9, 6, 2, 7, 8, 9], m)), [5, 7]);
  // A 16-token cap on the match: 8 drafts at most from the match length, fewer where the context ends.
  const loop = Array.from({ length: 40 }, (_, i) => 50 + (i % 5));
  assert.deepEqual(ids(lookupDraft(loop, { ...m, maxDrafts: 64 })), [50, 51, 52, 53, 54]);
  assert.deepEqual(ids(lookupDraft([...passage, ...passage, ...passage], { ...m, maxDrafts: 64 })), [
    ...passage.slice(0, 8),
  ]);
});

/** lookupDraft as first written: for n from maxN down to minN, the latest earlier match of the n-gram. */
function lookupDraftByNgram(
  context: number[],
  maxDrafts: number,
  maxN: number,
  minN: number,
  byMatch: boolean,
) {
  const end = context.length - 1;
  for (let n = Math.min(maxN, end); n >= minN; n--) {
    for (let j = end - 1; j >= n - 1; j--) {
      let k = 0;
      while (k < n && context[j - k] === context[end - k]) k++;
      if (k === n) {
        const want = byMatch ? Math.max(1, Math.min(maxDrafts, n >> 1)) : maxDrafts;
        return context.slice(j + 1, j + 1 + Math.min(want, end - j));
      }
    }
  }
  return [];
}

Deno.test("lookupDraft: the one-pass scan equals an n-gram by n-gram search on random contexts", () => {
  let seed = 7;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  let found = 0;
  for (let trial = 0; trial < 3000; trial++) {
    const vocab = 2 + rand(6), len = 1 + rand(60);
    // Random text, sometimes with a copied stretch so that long matches occur.
    const ctx = Array.from({ length: len }, () => rand(vocab));
    if (len > 20 && rand(2)) {
      const from = rand(len - 10), span = 3 + rand(8);
      ctx.push(...ctx.slice(from, from + span));
    }
    const minN = 1 + rand(4), maxN = minN + rand(16 - minN + 1), maxDrafts = 1 + rand(10);
    const byMatch = rand(2) === 1;
    const got = ids(lookupDraft(ctx, {
      maxDrafts,
      maxNgram: maxN,
      minNgram: minN,
      length: byMatch ? "match" : "fixed",
    }));
    const want = lookupDraftByNgram(ctx, maxDrafts, maxN, minN, byMatch);
    assert.deepEqual(got, want, `context ${ctx} maxDrafts ${maxDrafts} n ${minN}..${maxN} match ${byMatch}`);
    if (want.length) found++;
  }
  assert.ok(found > 1000, `${found} of 3000 contexts found drafts`);
});

Deno.test("checkLookupOptions: bad fields are named", () => {
  assert.throws(() => checkLookupOptions({ maxDrafts: 0 }), /lookup.maxDrafts must be an integer in 1..64/);
  assert.throws(() => checkLookupOptions({ maxDrafts: 2.5 }), /lookup.maxDrafts/);
  assert.throws(
    () => checkLookupOptions({ maxDrafts: 3, minNgram: 3, maxNgram: 2 }),
    /1 <= minNgram <= maxNgram <= 16, got 3..2/,
  );
  assert.throws(
    () => checkLookupOptions({ maxDrafts: 2, mode: "instead" as "first" }),
    /lookup.mode must be one of branch, first, got 'instead'/,
  );
  assert.throws(
    () => checkLookupOptions({ maxDrafts: 2, length: "long" as "match" }),
    /lookup.length must be one of fixed, match, got 'long'/,
  );
  // length match raises the defaults to n-grams of 3..16, so a minNgram above 3 alone is valid there.
  checkLookupOptions({ maxDrafts: 2, length: "match", minNgram: 8 });
  assert.throws(() => checkLookupOptions({ maxDrafts: 2, minNgram: 8 }), /got 8..3/);
});

Deno.test("ragged beams: a longer lookup branch shares the drafter beam's prefix and is END-padded", () => {
  // W=2, L=4: the drafter beam [5, 7] (L_d = 2, END-padded), the lookup branch [5, 7, 8, 9].
  const beams = Int32Array.of(5, 7, END, END, 5, 7, 8, 9);
  const t = packBeams(beams, 2, 4);
  assert.deepEqual(ids(t.tokens), [5, 7, 8, 9]);
  assert.deepEqual(ids(t.parents), [-1, 0, 1, 2]);
  assert.deepEqual(ids(t.depth), [0, 1, 2, 3]);
  assert.deepEqual(ids(t.unpacker), [0, 1, END, END, 0, 1, 2, 3]);
  const c = chainBeams(beams, 2, 4);
  assert.deepEqual(ids(c.tokens), [5, 7, 5, 7, 8, 9]);
  assert.deepEqual(ids(c.parents), [-1, 0, -1, 2, 3, 4]);
  assert.deepEqual(ids(c.unpacker), [0, 1, END, END, 2, 3, 4, 5]);
  // A lookup branch that disagrees at depth 1 is its own subtree.
  const split = packBeams(Int32Array.of(5, 7, END, 5, 6, 2), 2, 3);
  assert.deepEqual(ids(split.tokens), [5, 7, 6, 2]);
  assert.deepEqual(ids(split.parents), [-1, 0, 0, 2]);
  assert.throws(() => packBeams(Int32Array.of(5, END, 7, 5, 6, 2), 2, 3), /beam 0 has a token after its END/);
  assert.throws(() => packBeams(Int32Array.of(END, 1, 5, 6), 2, 2), /beam 0 has no init token/);
  assert.throws(() => chainBeams(Int32Array.of(5, -3), 1, 2), /neither a token nor END/);
});

Deno.test("lookupBeams: the drafter's beams, plus or instead of the END-padded lookup branch", () => {
  const drafted = Int32Array.of(5, 7, 5, 6); // W=2, L=2
  let b = lookupBeams(drafted, 2, 2, 5, null);
  assert.deepEqual([ids(b.beams), b.width, b.length], [[5, 7, 5, 6], 2, 2]);
  b = lookupBeams(drafted, 2, 2, 5, Int32Array.of(7, 8, 9));
  assert.deepEqual([ids(b.beams), b.width, b.length], [[5, 7, END, END, 5, 6, END, END, 5, 7, 8, 9], 3, 4]);
  b = lookupBeams(null, 2, 2, 5, Int32Array.of(7, 8));
  assert.deepEqual([ids(b.beams), b.width, b.length], [[5, 7, 8], 1, 3]);
  assert.throws(() => lookupBeams(null, 2, 2, 5, null), /no drafter beams and no lookup drafts/);
});

Deno.test("walkTree on a ragged tree: the lookup branch carries the path past the drafter beam's end", () => {
  const tree = packBeams(Int32Array.of(5, 7, END, END, 5, 7, 8, 9), 2, 4);
  const target = (after: number[]) => (node: number) => after[node];
  // The target agrees with every lookup token, then says 4.
  let a = walkTree(tree, target([7, 8, 9, 4]));
  assert.deepEqual([a.beam, a.accepted, a.next, ids(a.path)], [1, 3, 4, [0, 1, 2, 3]]);
  // It agrees with 7 only: both beams hold the path, the lowest is reported, the next token is its own.
  a = walkTree(tree, target([7, 3, 9, 4]));
  assert.deepEqual([a.beam, a.accepted, a.next, ids(a.path)], [0, 1, 3, [0, 1]]);
  // Nothing accepted.
  a = walkTree(tree, target([2, 8, 9, 4]));
  assert.deepEqual([a.beam, a.accepted, a.next, ids(a.path)], [0, 0, 2, [0]]);
});

const prompts = [[2, 3, 4], [5, 0], [2, 0, 1, 2, 3, 4, 5]];

Deno.test("lookup drafts: token-identical to AR, greedy and exact sampling, batch 1 and 3, tree and chain", async () => {
  // An 8-token vocabulary repeats bigrams often, so lookup branches appear in most rounds.
  const t = new ToyTarget({ vocab: 8, eos: [], scale: 2 }); // no EOS: every row runs 40 tokens
  for (const sampling of [undefined, { mode: "exact" as const, temperature: 1, seed: 4 }]) {
    const ar = await generate(t, prompts, { maxNewTokens: 40, sampling });
    for (const [W, L, K] of [[1, 2, 3], [2, 3, 1], [3, 2, 6]]) {
      for (const tree of [true, false]) {
        for (const mode of ["branch", "first"] as const) {
          const opts: SpeculativeOptions = {
            maxNewTokens: 40,
            beamWidth: W,
            beamLength: L,
            tree,
            sampling,
            // Drafts scaled to the match on some shapes (minNgram 2, so that the 8-token vocabulary's
            // short matches count).
            lookup: K === 6 ? { maxDrafts: K, mode, length: "match", minNgram: 2 } : { maxDrafts: K, mode },
          };
          const d = () => new ToyDrafter(t, { kind: "random", salt: 3, scale: 4 });
          const res = await speculativeGenerate(t, d(), prompts, opts);
          const what = `${sampling?.mode ?? "greedy"} W=${W} L=${L} K=${K} tree=${tree} ${mode}`;
          assert.deepEqual(res.ids, ar.ids, what);
          assert.deepEqual(res.finish, ar.finish, what);
          if (mode === "branch") {
            // The lookup branches were verified: more tokens went through the target than without them.
            const before = t.tokensIn;
            await speculativeGenerate(t, d(), prompts, { ...opts, lookup: undefined });
            const plain = t.tokensIn - before;
            const again = t.tokensIn;
            await speculativeGenerate(t, d(), prompts, opts);
            assert.ok(
              t.tokensIn - again > plain,
              `${what}: ${t.tokensIn - again} tokens verified vs ${plain}`,
            );
          }
          for (const [r, p] of prompts.entries()) {
            // Alone, against AR on that row alone (sampling streams are keyed by batch row).
            const one = await generate(t, [p], { maxNewTokens: 40, sampling });
            const drafter = d();
            const alone = await speculativeGenerate(t, drafter, [p], opts);
            assert.deepEqual(alone.ids, one.ids, `${what} row ${r}`);
            if (mode === "first") {
              // Rounds that found lookup drafts ran no drafter: fewer drafter rounds than rounds.
              assert.ok(
                drafter.rounds < alone.metrics.steps,
                `${what} row ${r}: ${drafter.rounds} drafter rounds in ${alone.metrics.steps} rounds`,
              );
            }
          }
        }
      }
    }
  }
});

Deno.test("lookup drafts: rows that stop on EOS mid-round end as in AR, in both modes", async () => {
  // Vocabulary 12 with EOS 3: these prompts end by EOS after 11 and 2 tokens and run 30 tokens (greedy).
  const t = new ToyTarget({ vocab: 12, eos: [3], scale: 2 });
  for (const sampling of [undefined, { mode: "exact" as const, temperature: 1, seed: 9 }]) {
    const what = sampling?.mode ?? "greedy";
    const ar = await generate(t, prompts, { maxNewTokens: 30, sampling });
    assert.ok(ar.finish.includes("eos"), `${what}: some row stops on EOS: ${ar.finish}`);
    for (const mode of ["branch", "first"] as const) {
      const d = new ToyDrafter(t, { kind: "random", salt: 5, scale: 4 });
      const res = await speculativeGenerate(t, d, prompts, {
        maxNewTokens: 30,
        beamWidth: 2,
        beamLength: 3,
        sampling,
        lookup: { maxDrafts: 4, mode, minNgram: 1 },
      });
      assert.deepEqual(res.ids, ar.ids, `${what} ${mode}`);
      assert.deepEqual(res.finish, ar.finish, `${what} ${mode}`);
      if (mode === "first") {
        assert.ok(
          d.rounds < res.metrics.steps,
          `${what}: ${d.rounds} drafter rounds in ${res.metrics.steps}`,
        );
      }
    }
  }
});

Deno.test("lookup drafts: refused with the Apple rule and with bad options", async () => {
  const t = new ToyTarget({ vocab: 6, eos: [1] });
  const d = new ToyDrafter(t, { kind: "random", salt: 3, scale: 4 });
  const base = { maxNewTokens: 4, beamWidth: 1, beamLength: 2 };
  await assert.rejects(
    () =>
      speculativeGenerate(t, d, [[2, 3]], {
        ...base,
        sampling: { mode: "apple", temperature: 1, seed: 0 },
        lookup: { maxDrafts: 2 },
      }),
    /lookup drafts need greedy or exact sampling/,
  );
  await assert.rejects(
    () => speculativeGenerate(t, d, [[2, 3]], { ...base, lookup: { maxDrafts: 100 } }),
    /lookup.maxDrafts must be an integer in 1..64, got 100/,
  );
});

Deno.test("lookup drafts on the default pair: tau rises, lookup first skips the drafter, outputs stay identical", async () => {
  const target = await defaultTarget();
  const drafter = await defaultDrafter(target);
  // A held-out prompt (models/default/prompts.jsonl line 1) in the default tokenizer's ids is not needed:
  // any prompt works, since greedy decoding of this small model falls into loops that lookup drafts follow.
  const prompt = [[1, 464, 1001, 12, 300, 52, 9]];
  const opts = { maxNewTokens: 96, beamWidth: 1, beamLength: 2, eosIds: [] as number[] };
  const ar = await generate(target, prompt, opts);
  const plain = await speculativeGenerate(target, drafter, prompt, opts);
  const withLookup = await speculativeGenerate(target, drafter, prompt, {
    ...opts,
    lookup: { maxDrafts: 4 },
  });
  assert.deepEqual(plain.ids, ar.ids);
  assert.deepEqual(withLookup.ids, ar.ids);
  assert.ok(
    withLookup.metrics.tau > plain.metrics.tau + 0.2,
    `tau ${withLookup.metrics.tau} with lookup vs ${plain.metrics.tau}`,
  );
  // Lookup first: rounds that found drafts skip the drafter; the output is still autoregression's.
  let drafterRounds = 0;
  const counted: DraftModel = {
    config: drafter.config,
    beginRound(ctx, batch, width) {
      drafterRounds++;
      return drafter.beginRound(ctx, batch, width);
    },
    dispose() {},
  };
  const first = await speculativeGenerate(target, counted, prompt, {
    ...opts,
    lookup: { maxDrafts: 2, mode: "first" },
  });
  assert.deepEqual(first.ids, ar.ids);
  assert.ok(
    drafterRounds < first.metrics.steps * 0.9,
    `${drafterRounds} drafter rounds in ${first.metrics.steps} rounds`,
  );
  // Drafts scaled to the match: the same text, and fewer verified tokens per new token than a fixed 4.
  const verified = { n: 0 };
  const counting: TargetModel = {
    config: target.config,
    backend: target.backend,
    embeddingTable: () => target.embeddingTable(),
    createSession(batch, capacity) {
      const s = target.createSession(batch, capacity);
      return {
        batch: s.batch,
        capacity: s.capacity,
        lengths: () => s.lengths(),
        forward(req) {
          for (const row of req.rows) verified.n += row.tokens.length;
          return s.forward(req);
        },
        commit: (keep) => s.commit(keep),
        truncate: (row, length) => s.truncate(row, length),
        dispose: () => s.dispose(),
      };
    },
    dispose() {},
  };
  // Over the first 4 held-out prompts, 160 tokens each: the rejected lookup drafts are what match saves.
  const tok = await loadTokenizer(DEFAULT_ROOT + "target");
  const held = Deno.readTextFileSync(DEFAULT_ROOT + "prompts.jsonl").trim().split("\n").slice(0, 4)
    .map((l) => Array.from(tok.encode(JSON.parse(l).prompt)));
  const perToken: Record<string, number> = {};
  for (const length of ["fixed", "match"] as const) {
    verified.n = 0;
    let newTokens = 0;
    for (const p of held) {
      const want = await generate(target, [p], { maxNewTokens: 160 });
      const r = await speculativeGenerate(counting, drafter, [p], {
        maxNewTokens: 160,
        beamWidth: 1,
        beamLength: 3,
        lookup: { maxDrafts: 4, mode: "first", length },
      });
      assert.deepEqual(r.ids, want.ids, length);
      newTokens += r.metrics.newTokens;
    }
    perToken[length] = verified.n / newTokens;
  }
  assert.ok(
    perToken.match < perToken.fixed * 0.95,
    `verified tokens per new token: ${JSON.stringify(perToken)}`,
  );
  drafter.dispose();
  target.dispose();
});
