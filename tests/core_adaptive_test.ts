/**
 * Adaptive drafting (core/adaptive.ts, SpeculativeOptions.adaptive): the round chooser's policy on given
 * costs, and whole runs on toy models whose clock counts what each round did, so that drafting pays or not
 * by construction. Every run must stay token-identical to autoregression.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  EMA_WEIGHT,
  MAX_REPROBE,
  PROBE,
  REPROBE,
  RoundChooser,
  type RoundKind,
  WARMUP,
} from "../core/adaptive.ts";
import { generate } from "../core/generate.ts";
import { speculativeGenerate } from "../core/speculative.ts";
import type { SamplingOptions, SpeculativeOptions } from "../core/options.ts";
import { ToyDrafter, ToyTarget } from "./support/toy_target.ts";

/** Drive a chooser for n rounds where a round of each kind costs cost[kind] ms per token; the kinds run. */
function drive(chooser: RoundChooser, n: number, cost: Record<RoundKind, number>): RoundKind[] {
  const kinds: RoundKind[] = [];
  for (let i = 0; i < n; i++) {
    const k = chooser.next();
    kinds.push(k);
    chooser.record(k, 2 * cost[k], 2);
  }
  return kinds;
}

Deno.test("round chooser: drafts first, probes plain rounds, keeps the cheaper kind, backs off its probes", () => {
  // Drafting is cheaper: WARMUP drafts, PROBE plain probes; the first probe already shows plain rounds
  // dearer, so the wait before the next one doubles from REPROBE each time, up to MAX_REPROBE.
  const c = new RoundChooser();
  const expected: RoundKind[] = [...Array(WARMUP).fill("draft"), ...Array(PROBE).fill("plain")];
  let wait = 2 * REPROBE;
  while (expected.length < 3000) {
    expected.push(...Array(wait).fill("draft"), ...Array(PROBE).fill("plain"));
    wait = Math.min(2 * wait, MAX_REPROBE);
  }
  assert.deepEqual(drive(c, expected.length, { draft: 1, plain: 3 }), expected);
  assert.equal(c.favourite(), "draft");
  assert.equal(c.count("plain"), expected.filter((k) => k === "plain").length);

  // Plain rounds are cheaper: after the first probe it runs plain, probing drafts REPROBE rounds later.
  const p = new RoundChooser();
  const pk = drive(p, WARMUP + PROBE + REPROBE + PROBE + 4, { draft: 3, plain: 1 });
  assert.deepEqual(pk.slice(0, WARMUP + PROBE), [
    ...Array(WARMUP).fill("draft"),
    ...Array(PROBE).fill("plain"),
  ]);
  const after = pk.slice(WARMUP + PROBE);
  assert.deepEqual(after.slice(0, REPROBE), Array(REPROBE).fill("plain"));
  assert.deepEqual(after.slice(REPROBE, REPROBE + PROBE), Array(PROBE).fill("draft"));
  assert.equal(p.favourite(), "plain");
});

Deno.test("round chooser: follows a change of costs through its moving averages", () => {
  const c = new RoundChooser();
  drive(c, 40, { draft: 1, plain: 2 });
  assert.equal(c.favourite(), "draft");
  // Drafts stop paying (the text changed): within two probes the favourite is plain.
  drive(c, 2 * (REPROBE + PROBE), { draft: 4, plain: 2 });
  assert.equal(c.favourite(), "plain");
  // EMA_WEIGHT is what moves it: one dear round alone does not flip a long-cheap favourite.
  const d = new RoundChooser();
  drive(d, 40, { draft: 1, plain: 2 });
  d.record("draft", 2 * (1 + 0.9 / EMA_WEIGHT), 2); // the average rises by 0.9: still below 2
  assert.equal(d.favourite(), "draft");
  // A round with no tokens (every row had ended) changes nothing.
  d.record("draft", 1e9, 0);
  assert.equal(d.favourite(), "draft");
});

const prompts = [[2, 3, 4], [5, 0], [2, 0, 1, 2, 3, 4, 5]];

/**
 * A clock in "target cost" units from the toy's counters: each target call costs `call`, each token it
 * reads `token`, each drafter round `draft`.
 */
function costClock(t: ToyTarget, d: ToyDrafter, cost: { call: number; token: number; draft: number }) {
  return () => t.forwardCalls * cost.call + t.tokensIn * cost.token + d.rounds * cost.draft;
}

Deno.test("adaptive drafting: where drafts do not pay it runs mostly plain rounds; same tokens as AR", async () => {
  const t = new ToyTarget({ vocab: 24, eos: [], scale: 2 });
  for (const sampling of [undefined, { mode: "exact", temperature: 1, seed: 7 } as SamplingOptions]) {
    const ar = await generate(t, prompts, { maxNewTokens: 60, sampling });
    for (
      const [lookup, tree] of [[undefined, true], [{ maxDrafts: 3, mode: "first" as const }, false]] as const
    ) {
      const what = `${sampling?.mode ?? "greedy"} lookup ${lookup?.mode ?? "off"} tree ${tree}`;
      // A random drafter is rarely right, and its rounds are dear.
      const d = new ToyDrafter(t, { kind: "random", salt: 11, scale: 4 });
      const opts: SpeculativeOptions = {
        maxNewTokens: 60,
        beamWidth: 2,
        beamLength: 4,
        sampling,
        lookup,
        tree,
        adaptive: true,
        now: costClock(t, d, { call: 10, token: 1, draft: 20 }),
      };
      const res = await speculativeGenerate(t, d, prompts, opts);
      assert.deepEqual(res.ids, ar.ids, what);
      assert.deepEqual(res.finish, ar.finish, what);
      const m = res.metrics;
      assert.ok(m.plainSteps > 0.6 * m.steps, `${what}: ${m.plainSteps} plain of ${m.steps} rounds`);
      assert.ok(d.rounds < 0.4 * m.steps, `${what}: ${d.rounds} drafter rounds of ${m.steps}`);
      // Without adaptive drafting every round drafts (or looks up).
      const d2 = new ToyDrafter(t, { kind: "random", salt: 11, scale: 4 });
      const fixed = await speculativeGenerate(t, d2, prompts, { ...opts, adaptive: false });
      assert.equal(fixed.metrics.plainSteps, 0, what);
      assert.deepEqual(fixed.ids, ar.ids, what);
    }
  }
});

Deno.test("adaptive drafting: where drafts pay it keeps drafting, but for its probes", async () => {
  const t = new ToyTarget({ vocab: 24, eos: [], scale: 2 });
  const ar = await generate(t, prompts, { maxNewTokens: 120 });
  // The oracle drafter proposes the target's own greedy tokens: 4 tokens per round for one call's cost.
  const d = new ToyDrafter(t, { kind: "oracle" });
  const res = await speculativeGenerate(t, d, prompts, {
    maxNewTokens: 120,
    beamWidth: 1,
    beamLength: 4,
    adaptive: true,
    now: costClock(t, d, { call: 10, token: 1, draft: 2 }),
  });
  assert.deepEqual(res.ids, ar.ids);
  const m = res.metrics;
  assert.ok(m.plainSteps >= PROBE, `the plain rounds were probed: ${m.plainSteps}`);
  assert.ok(
    m.plainSteps <= PROBE * Math.ceil(m.steps / REPROBE),
    `${m.plainSteps} plain of ${m.steps} rounds`,
  );
  assert.ok(m.tau > 3, `tau ${m.tau}`);
});

Deno.test("adaptive drafting: a chooser passed in keeps what it learned for the next call", async () => {
  const t = new ToyTarget({ vocab: 24, eos: [], scale: 2 });
  const d = new ToyDrafter(t, { kind: "random", salt: 11, scale: 4 });
  const chooser = new RoundChooser();
  const opts: SpeculativeOptions = {
    maxNewTokens: 40,
    beamWidth: 2,
    beamLength: 4,
    adaptive: chooser,
    now: costClock(t, d, { call: 10, token: 1, draft: 20 }),
  };
  const ar = await generate(t, [prompts[0]], { maxNewTokens: 40 });
  const first = await speculativeGenerate(t, d, [prompts[0]], opts);
  assert.equal(chooser.favourite(), "plain");
  const before = d.rounds;
  const second = await speculativeGenerate(t, d, [prompts[0]], opts);
  assert.deepEqual(first.ids, ar.ids);
  assert.deepEqual(second.ids, ar.ids);
  // No warm-up the second time: it starts plain, and drafts only in probes.
  assert.ok(d.rounds - before <= PROBE, `${d.rounds - before} drafter rounds in the second call`);
  assert.equal(second.metrics.plainSteps, second.metrics.steps - (d.rounds - before));
});

Deno.test("adaptive drafting: refused with the Apple rule", async () => {
  const t = new ToyTarget({ vocab: 24 });
  const d = new ToyDrafter(t, { kind: "random" });
  await assert.rejects(
    () =>
      speculativeGenerate(t, d, prompts, {
        maxNewTokens: 4,
        beamWidth: 1,
        beamLength: 2,
        adaptive: true,
        sampling: { mode: "apple", temperature: 1 },
      }),
    /adaptive drafting needs greedy or exact sampling/,
  );
});
