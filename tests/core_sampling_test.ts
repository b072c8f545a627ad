import assert from "node:assert/strict";
import {
  appleProbs,
  argmax,
  drawCategorical,
  LOG_0,
  type SamplerParams,
  sampleToken,
  samplingProbs,
  topKWarp,
  uniform,
} from "../core/sampling.ts";
import { resolveSampling } from "../core/options.ts";

Deno.test("uniform: pure, in [0,1), sensitive to every argument", () => {
  const seen = new Set<number>();
  for (let seed = 0; seed < 4; seed++) {
    for (let row = 0; row < 4; row++) {
      for (let pos = 0; pos < 50; pos++) {
        for (let stream = 0; stream < 3; stream++) {
          const u = uniform(seed, row, pos, stream);
          assert.ok(u >= 0 && u < 1);
          assert.equal(u, uniform(seed, row, pos, stream));
          seen.add(u);
        }
      }
    }
  }
  assert.equal(seen.size, 4 * 4 * 50 * 3);
  // High words of the seed matter too.
  assert.notEqual(uniform(2 ** 40, 0, 0), uniform(0, 0, 0));
  assert.equal(uniform(7, 1, 2), uniform(7, 1, 2, 0));
});

Deno.test("uniform: equidistributed (chi-square over 64 bins, 2e5 draws)", () => {
  const bins = new Float64Array(64);
  const N = 200000;
  let i = 0;
  for (let row = 0; row < 20; row++) {
    for (let pos = 0; pos < 10000; pos++, i++) bins[Math.floor(uniform(123, row, pos) * 64)]++;
  }
  const e = N / 64;
  let chi = 0;
  for (const b of bins) chi += (b - e) ** 2 / e;
  // df = 63: the 0.9999 quantile is about 115.
  assert.ok(chi < 115, `chi-square ${chi}`);
});

Deno.test("argmax: ties go to the lowest index", () => {
  assert.equal(argmax(Float32Array.of(1, 3, 3, 2)), 1);
  assert.equal(argmax(Float32Array.of(-Infinity, -Infinity)), 0);
  assert.equal(sampleToken(Float32Array.of(0, 5, 5), { temperature: 0, topK: 0, topP: 1 }, 0.99), 1);
});

function randomLogits(V: number, seed: number): Float32Array {
  const l = new Float32Array(V);
  for (let v = 0; v < V; v++) l[v] = 4 * (uniform(seed, 99, v) - 0.5);
  return l;
}

/** Frequencies of sampleToken over a fine deterministic grid of u: equals the probability mass per token. */
function gridFrequencies(logits: Float32Array, p: SamplerParams, N: number): Float64Array {
  const f = new Float64Array(logits.length);
  for (let i = 0; i < N; i++) f[sampleToken(logits, p, (i + 0.5) / N)] += 1 / N;
  return f;
}

Deno.test("sampleToken draws from samplingProbs (temperature, top-k, top-p)", () => {
  const cases: SamplerParams[] = [
    { temperature: 1, topK: 0, topP: 1 },
    { temperature: 0.5, topK: 0, topP: 1 },
    { temperature: 1.7, topK: 5, topP: 1 },
    { temperature: 1, topK: 0, topP: 0.6 },
    { temperature: 0.8, topK: 7, topP: 0.9 },
    { temperature: 1, topK: 100, topP: 1 }, // k > 64: the sorting path
  ];
  for (const [ci, p] of cases.entries()) {
    const V = p.topK === 100 ? 150 : 12;
    const logits = randomLogits(V, ci);
    const probs = samplingProbs(logits, p);
    let sum = 0;
    for (const q of probs) sum += q;
    assert.ok(Math.abs(sum - 1) < 1e-12);
    const N = 20000;
    const f = gridFrequencies(logits, p, N);
    for (let v = 0; v < V; v++) assert.ok(Math.abs(f[v] - probs[v]) <= 1.01 / N, `case ${ci} token ${v}`);
    if (p.topK > 0) assert.ok(probs.filter((q) => q > 0).length <= p.topK);
    // Against a direct formula for temperature + top-k.
    if (p.topP === 1) {
      const order = Array.from({ length: V }, (_, v) => v).sort((a, b) => logits[b] - logits[a] || a - b);
      const kept = p.topK > 0 ? order.slice(0, p.topK) : order;
      const z = kept.reduce((s, v) => s + Math.exp(logits[v] / p.temperature), 0);
      for (const v of kept) assert.ok(Math.abs(probs[v] - Math.exp(logits[v] / p.temperature) / z) < 1e-12);
    }
  }
});

Deno.test("top-p keeps the shortest most-probable prefix reaching p; top-k ties go to lower ids", () => {
  const logits = Float32Array.from([Math.log(0.1), Math.log(0.5), Math.log(0.3), Math.log(0.1)]);
  const p = samplingProbs(logits, { temperature: 1, topK: 0, topP: 0.75 });
  assert.ok(Math.abs(p[1] - 0.5 / 0.8) < 1e-6 && Math.abs(p[2] - 0.3 / 0.8) < 1e-6); // float32 logits
  assert.equal(p[0] + p[3], 0);
  const ties = samplingProbs(Float32Array.of(1, 2, 1, 1), { temperature: 1, topK: 2, topP: 1 });
  assert.ok(ties[0] > 0 && ties[1] > 0 && ties[2] === 0 && ties[3] === 0);
});

Deno.test("topKWarp keeps ties at the threshold; appleProbs and drawCategorical", () => {
  const w = topKWarp(Float32Array.of(5, 1, 3, 3, 0), 2);
  assert.deepEqual(Array.from(w), [5, LOG_0, 3, 3, LOG_0]);
  const p = appleProbs(Float32Array.of(0, Math.log(3)), 1);
  assert.ok(Math.abs(p[1] - 0.75) < 1e-7);
  assert.equal(drawCategorical([0, 0], 0.5), -1);
  assert.equal(drawCategorical([1, 0, 3], 0.2), 0);
  assert.equal(drawCategorical([1, 0, 3], 0.3), 2);
});

Deno.test("bad sampling options name the field", () => {
  assert.throws(() => resolveSampling({ temperature: -1 }), /sampling\.temperature/);
  assert.throws(() => resolveSampling({ topK: 1.5 }), /sampling\.topK/);
  assert.throws(() => resolveSampling({ topP: 0 }), /sampling\.topP/);
  assert.throws(() => resolveSampling({ seed: -3 }), /sampling\.seed/);
  // deno-lint-ignore no-explicit-any
  assert.throws(() => resolveSampling({ mode: "nucleus" as any }), /sampling\.mode/);
  assert.throws(() => resolveSampling({ mode: "apple", topK: 5 }), /apple/);
  assert.equal(resolveSampling({ temperature: 0 }).mode, "greedy");
  assert.equal(resolveSampling({}).mode, "exact");
  assert.equal(resolveSampling(undefined).mode, "greedy");
});
