/**
 * Metrics over many generation calls (batches, turns) merged into one summary, and the tables generate and
 * bench print. Tokens/s of a summary is all new tokens over the summed wall time of the calls.
 *
 * @module
 */
import type { RunMetrics } from "../core/metrics.ts";
import { type Cell, renderTable } from "./term.ts";

/** Metrics of several calls merged: RunMetrics without the per-call fields, plus the counts of calls/prompts. */
export interface Summary extends Omit<RunMetrics, "batch" | "beamLength" | "prompts"> {
  /** generate / speculativeGenerate calls merged. */
  calls: number;
  /** Prompts over all calls. */
  prompts: number;
  /**
   * New tokens per second of decoding alone: the prompts' prefill (the same forward with or without a
   * drafter) left out of the time.
   */
  decodeTokensPerSecond: number;
}

/** Merges the metrics of several calls made with the same beam length. */
export function summarize(runs: RunMetrics[]): Summary {
  const L = runs.length ? runs[0].beamLength : 1;
  const hist = new Array(Math.max(L, 1)).fill(0);
  let sumN = 0, rounds = 0, steps = 0, plainSteps = 0, draft = 0, verify = 0, accept = 0;
  const s = { prompts: 0, newTokens: 0, promptTokens: 0, promptMs: 0, totalMs: 0 };
  for (const m of runs) {
    s.prompts += m.prompts.length;
    s.newTokens += m.newTokens;
    s.promptTokens += m.promptTokens;
    s.promptMs += m.promptMs;
    s.totalMs += m.totalMs;
    steps += m.steps;
    plainSteps += m.plainSteps ?? 0;
    draft += m.meanDraftMs * m.steps;
    verify += m.meanVerifyMs * m.steps;
    accept += m.meanAcceptMs * m.steps;
    for (const p of m.prompts) {
      for (const n of p.acceptedLengths) {
        if (n < hist.length) hist[n]++;
        sumN += n;
        rounds++;
      }
    }
  }
  const byPosition: number[] = [];
  let atLeast = rounds;
  for (let k = 1; k < hist.length; k++) {
    atLeast -= hist[k - 1];
    byPosition.push(rounds ? atLeast / rounds : 0);
  }
  return {
    calls: runs.length,
    ...s,
    steps,
    plainSteps,
    tau: rounds ? sumN / rounds + 1 : 1,
    acceptanceByPosition: byPosition,
    histogram: hist,
    referenceAcceptancePct: rounds ? (100 * sumN / rounds) / L : 0,
    meanDraftMs: steps ? draft / steps : 0,
    meanVerifyMs: steps ? verify / steps : 0,
    meanAcceptMs: steps ? accept / steps : 0,
    tokensPerSecond: s.totalMs > 0 ? s.newTokens / (s.totalMs / 1000) : 0,
    decodeTokensPerSecond: s.totalMs > s.promptMs ? s.newTokens / ((s.totalMs - s.promptMs) / 1000) : 0,
  };
}

/** The overall table: one column per run kind (e.g. redrafter, autoregressive). */
export function summaryTable(columns: { name: string; summary: Summary; speculative: boolean }[]): string {
  const rows: Cell[][] = [];
  // Formatted per row: counts as integers, rates and times with 3 decimals, in one right-aligned column.
  const row = (label: string, f: (s: Summary, spec: boolean) => number | null) =>
    rows.push([label, ...columns.map((c) => fmt(f(c.summary, c.speculative)))]);
  row("prompts", (s) => s.prompts);
  row("new tokens", (s) => s.newTokens);
  row("target calls (steps)", (s) => s.steps);
  if (columns.some((c) => c.summary.plainSteps > 0)) {
    row("plain steps (adaptive)", (s, spec) => spec ? s.plainSteps : null);
  }
  row("tau (tokens per step)", (s, spec) => spec ? s.tau : 1);
  const C = Math.max(0, ...columns.map((c) => c.summary.acceptanceByPosition.length));
  for (let k = 0; k < C; k++) {
    row(`acceptance at draft ${k + 1}`, (s, spec) => spec ? s.acceptanceByPosition[k] ?? null : null);
  }
  row("reference acceptance %", (s, spec) => spec ? s.referenceAcceptancePct : null);
  row("tokens/s", (s) => s.tokensPerSecond);
  row("prompt time (s)", (s) => s.promptMs / 1000);
  row("draft ms/step", (s, spec) => spec ? s.meanDraftMs : null);
  row("verify ms/step", (s) => s.meanVerifyMs);
  row("accept ms/step", (s) => s.meanAcceptMs);
  row("total time (s)", (s) => s.totalMs / 1000);
  const align = ["left" as const, ...columns.map(() => "right" as const)];
  return renderTable(["metric", ...columns.map((c) => c.name)], rows, { align });
}

/** An integer as is, a fraction with `digits` decimals, null as "-". */
export function fmt(v: number | null | undefined, digits = 3): string {
  if (v === null || v === undefined || Number.isNaN(v)) return "-";
  return Number.isInteger(v) ? String(v) : v.toFixed(digits);
}
