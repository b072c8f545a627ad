// Shared checks for backends held to the transformers fixtures (tests/fixtures/models/*/expected.json).
import assert from "node:assert/strict";
import type { RowInput, TargetModel } from "../../core/types.ts";

/** New tokens `tokens` as a causal chain at positions start, start + 1, ... */
export function chain(tokens: number[], start: number): RowInput {
  return { tokens: Int32Array.from(tokens), positions: Int32Array.from(tokens, (_, i) => start + i) };
}

/**
 * The prompt's logits match transformers within 1e-4 (relative to the largest |logit|, at least 1); then a
 * 3-token tree after the prompt with the branch 0 -> 2 committed gives the same next-step logits as running
 * that branch as a plain chain in a fresh session. Returns the relative error of the prompt logits.
 */
export async function checkPromptAndTreeCommit(
  m: TargetModel,
  exp: { prompt: number[]; logits: number[][] },
): Promise<number> {
  const s = m.createSession(1, 64);
  const out = await s.forward({ rows: [chain(exp.prompt, 0)], logits: { kind: "full" } });
  const ref = exp.logits.flat();
  let d = 0, mx = 1;
  for (let i = 0; i < ref.length; i++) {
    d = Math.max(d, Math.abs(out.logits![0][i] - ref[i]));
    mx = Math.max(mx, Math.abs(ref[i]));
  }
  assert.ok(d / mx < 1e-4, `relative error ${d / mx}`);
  s.commit([null]);
  const L = exp.prompt.length;
  await s.forward({
    rows: [{
      tokens: Int32Array.of(5, 6, 7),
      positions: Int32Array.of(L, L + 1, L + 1),
      parents: Int32Array.of(-1, 0, 0),
    }],
    logits: { kind: "none" },
  });
  s.commit([Int32Array.of(0, 2)]);
  const next = await s.forward({ rows: [chain([9], L + 2)], logits: { kind: "full" } });
  const c = m.createSession(1, 64);
  const whole = await c.forward({
    rows: [{ ...chain([...exp.prompt, 5, 7, 9], 0), logitIndices: Int32Array.of(L + 2) }],
    logits: { kind: "full" },
  });
  for (let v = 0; v < m.config.vocabSize; v++) {
    assert.ok(Math.abs(next.logits![0][v] - whole.logits![0][v]) < 1e-4, `token ${v}`);
  }
  s.dispose();
  c.dispose();
  return d / mx;
}

/** Argmax at every position of `seq` fed as one chain (teacher forcing). */
export async function argmaxes(m: TargetModel, seq: number[]): Promise<number[]> {
  const s = m.createSession(1, seq.length);
  const out = await s.forward({ rows: [chain(seq, 0)], logits: { kind: "topk", k: 1 } });
  s.dispose();
  return Array.from(out.topIds![0]);
}
