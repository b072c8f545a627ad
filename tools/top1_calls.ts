/**
 * Shared by tools/bench_head_screen.ts and tools/ab_cpu_checkouts.ts: prefill a prompt, then time top-1
 * calls of T tokens on several target sessions, interleaved round by round (the workplace is shared, so
 * only ratios within one run mean much), and check that they return the same ids.
 *
 * @module
 */
import type { TargetSession } from "../core/types.ts";

/** A flag's value as a positive integer, or an error naming the flag. */
export function positiveFlag(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${flag} must be a positive integer, got '${v}'`);
  return n;
}

/** Commit a P-token prompt (fixed pseudo-random ids below V) to a fresh session. */
export async function prefillPrompt(s: TargetSession, V: number, P: number): Promise<void> {
  const prompt = Int32Array.from({ length: P }, (_, i) => (i * 7919 + 3) % V);
  await s.forward({
    rows: [{ tokens: prompt, positions: Int32Array.from(prompt.keys()), logitIndices: Int32Array.of(P - 1) }],
    logits: { kind: "topk", k: 1 },
  });
  s.commit([null]);
}

/**
 * Median ms per call ([call size][session]) of `reps` top-1 calls of each size after the committed P-token
 * prompt (nothing kept), over `rounds` interleaved rounds after 2 warm-up ones; `mismatches` counts the
 * call sizes and rounds where the sessions' ids differed.
 */
export async function timeTop1Calls(
  sessions: TargetSession[],
  V: number,
  P: number,
  calls: number[],
  rounds: number,
  reps: number,
): Promise<{ medians: number[][]; mismatches: number }> {
  const times = calls.map(() => sessions.map(() => [] as number[]));
  let mismatches = 0;
  for (let round = 0; round < rounds + 2; round++) {
    for (const [ci, T] of calls.entries()) {
      const ids: string[] = [];
      for (const [si, s] of sessions.entries()) {
        const t0 = performance.now();
        for (let i = 0; i < reps; i++) {
          const o = await s.forward({
            rows: [{
              tokens: Int32Array.from({ length: T }, (_, j) => (j * 31 + 5 + i * 7 + round) % V),
              positions: Int32Array.from({ length: T }, (_, j) => P + j),
            }],
            logits: { kind: "topk", k: 1 },
          });
          s.commit([new Int32Array(0)]);
          if (i === 0) ids.push(o.topIds![0].join());
        }
        if (round >= 2) times[ci][si].push((performance.now() - t0) / reps);
      }
      if (ids.some((x) => x !== ids[0])) mismatches++;
    }
  }
  const median = (a: number[]) => a.slice().sort((x, y) => x - y)[a.length >> 1];
  return { medians: times.map((perSession) => perSession.map(median)), mismatches };
}
