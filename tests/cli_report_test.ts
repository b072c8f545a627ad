/** cli/report.ts: merging the metrics of several calls, and the overall table. */
import assert from "node:assert/strict";
import { MetricsRecorder } from "../core/metrics.ts";
import { fmt, summarize, summaryTable } from "../cli/report.ts";
import { lookupDescription } from "../cli/run.ts";

function fakeRun(accepted: number[][], stepMs: number, L = 4) {
  let t = 0;
  const rec = new MetricsRecorder(accepted.map(() => 10), L, () => t);
  rec.prompt(5);
  const steps = Math.max(...accepted.map((a) => a.length));
  for (let s = 0; s < steps; s++) {
    accepted.forEach((a, r) => {
      if (s < a.length) rec.rowStep(r, a[s]);
    });
    rec.step(1, stepMs - 2, 1);
    t += stepMs;
  }
  return rec.summarize(accepted.map((a) => a.reduce((x, n) => x + n + 1, 0) + 1));
}

Deno.test("summarize: tau, acceptance and histogram over every (prompt, round) of every call", () => {
  const a = fakeRun([[3, 0], [1, 1]], 10);
  const b = fakeRun([[2, 2, 2]], 20);
  const s = summarize([a, b]);
  const all = [3, 0, 1, 1, 2, 2, 2];
  assert.equal(s.prompts, 3);
  assert.equal(s.calls, 2);
  assert.equal(s.steps, a.steps + b.steps);
  assert.equal(s.tau, all.reduce((x, n) => x + n, 0) / all.length + 1);
  assert.deepEqual(s.histogram, [1, 2, 3, 1]);
  assert.deepEqual(s.acceptanceByPosition, [6 / 7, 4 / 7, 1 / 7]);
  assert.equal(s.newTokens, a.newTokens + b.newTokens);
  assert.equal(s.totalMs, a.totalMs + b.totalMs);
  assert.equal(s.tokensPerSecond, s.newTokens / (s.totalMs / 1000));
  // Step times weighted by steps: 2 steps of 10 ms and 3 of 20 ms.
  assert.equal(s.meanVerifyMs, (2 * 8 + 3 * 18) / 5);
  assert.equal(s.promptMs, 10);
  // decoding alone: the prefill's 10 ms out of the time
  assert.equal(s.decodeTokensPerSecond, s.newTokens / ((s.totalMs - 10) / 1000));
  assert.ok(s.decodeTokensPerSecond > s.tokensPerSecond);
  assert.equal(s.referenceAcceptancePct, (100 * (11 / 7)) / 4);
});

Deno.test("summarize: no calls gives a neutral summary", () => {
  const s = summarize([]);
  assert.equal(s.tau, 1);
  assert.equal(s.tokensPerSecond, 0);
  assert.equal(s.decodeTokensPerSecond, 0);
  assert.deepEqual(s.acceptanceByPosition, []);
});

Deno.test("summaryTable: a column per run kind, draft rows only for ReDrafter", () => {
  const rd = summarize([fakeRun([[3, 1]], 10)]);
  const ar = summarize([fakeRun([[0, 0, 0, 0]], 5, 1)]);
  const text = summaryTable([
    { name: "autoregressive", summary: ar, speculative: false },
    { name: "redrafter", summary: rd, speculative: true },
  ]);
  const row = (label: string) => text.split("\n").find((l) => l.startsWith(label))!.split(/\s{2,}/);
  assert.deepEqual(row("tau (tokens per step)"), ["tau (tokens per step)", "1", "3"]);
  assert.deepEqual(row("acceptance at draft 3"), ["acceptance at draft 3", "-", "0.500"]);
  assert.deepEqual(row("draft ms/step"), ["draft ms/step", "-", "1"]);
  assert.equal(fmt(2.5, 1), "2.5");
  assert.equal(fmt(null), "-");
});

Deno.test("lookupDescription: the lookup settings as eval and serve print them", () => {
  assert.equal(lookupDescription({ lookup: 0 }), "");
  assert.equal(lookupDescription({}), "");
  assert.equal(lookupDescription({ lookup: 4 }), ", up to 4 lookup drafts (branch)");
  assert.equal(
    lookupDescription({ lookup: 4, lookupMode: "first", lookupLength: "match" }),
    ", up to 4 lookup drafts (first, scaled to the match)",
  );
});
