/**
 * Run statistics: tokens per step (tau = accepted drafts + 1), acceptance by draft position, the histogram
 * of accepted lengths, mean draft / verify / accept time per step, prompt time and tokens/s, and the
 * reference's "acceptance %" (100 * mean accepted / beam_length, note the L denominator). The caller
 * injects the clock so core stays free of I/O.
 *
 * @module
 */

/** A monotonic clock in milliseconds. */
export type Clock = () => number;

/** performance.now(): the clock used when the caller injects none. */
export const defaultClock: Clock = (): number => performance.now();

/** Statistics of one prompt (batch row) of a run. C = beam length - 1, the drafts per round. */
export interface PromptMetrics {
  /** Length of the prompt in tokens. */
  promptTokens: number;
  /** Tokens generated for this prompt (EOS included). */
  newTokens: number;
  /** Verify rounds (target forward calls after the prefill) this prompt took part in. */
  steps: number;
  /** [steps] accepted drafts n per round (0 for autoregressive steps). */
  acceptedLengths: number[];
  /** Mean of n + 1 over this prompt's rounds (1 for autoregressive). */
  tau: number;
  /** [C] fraction of rounds whose draft at position k + 1 was accepted (n >= k + 1). */
  acceptanceByPosition: number[];
  /** [C + 1] number of rounds that accepted exactly n drafts. */
  histogram: number[];
  /** 100 * mean(n) / beam_length, as the reference prints it. */
  referenceAcceptancePct: number;
  /** From the start of the run to this prompt's last token, ms. */
  elapsedMs: number;
  /** newTokens / elapsedMs, in tokens per second (0 when no time elapsed). */
  tokensPerSecond: number;
}

/** Statistics of one generation run over all its prompts. C = beamLength - 1. */
export interface RunMetrics {
  /** Number of prompts (batch rows). */
  batch: number;
  /** L (including the init token); 1 for autoregressive runs. */
  beamLength: number;
  /** Loop iterations after the prefill. */
  steps: number;
  /** Of those, the plain rounds (no drafts: SpeculativeOptions.adaptive chose the target alone). */
  plainSteps: number;
  /** Prompt tokens summed over all prompts. */
  promptTokens: number;
  /** New tokens summed over all prompts. */
  newTokens: number;
  /** Mean over (prompt, round) pairs of n + 1. */
  tau: number;
  /** [C] over all (prompt, round) pairs: fraction whose draft at position k + 1 was accepted. */
  acceptanceByPosition: number[];
  /** [C + 1] over all (prompt, round) pairs: how many accepted exactly n drafts. */
  histogram: number[];
  /** 100 * mean(n) / beamLength over all (prompt, round) pairs, as the reference prints it. */
  referenceAcceptancePct: number;
  /** Prefill time, ms. */
  promptMs: number;
  /** Mean drafting (beam search) time per loop iteration, ms; 0 for autoregressive runs. */
  meanDraftMs: number;
  /** Mean target forward time per loop iteration, ms. */
  meanVerifyMs: number;
  /** Mean acceptance / commit time per loop iteration, ms. */
  meanAcceptMs: number;
  /** Wall time from the recorder's creation to summarize(), ms. */
  totalMs: number;
  /** All prompts' new tokens over the whole run's wall time. */
  tokensPerSecond: number;
  /** Per prompt, in input order. */
  prompts: PromptMetrics[];
}

/** Collects timings and acceptance counts during one generation run. */
export class MetricsRecorder {
  /** The injected clock (ms). */
  readonly now: Clock;
  private readonly start: number;
  private promptMs = 0;
  private draftMs = 0;
  private verifyMs = 0;
  private acceptMs = 0;
  private steps = 0;
  private plainSteps = 0;
  private readonly accepted: number[][];
  private readonly finishedAt: number[];
  private readonly promptTokens: number[];

  /**
   * Starts the run clock.
   * @param promptLengths [B] tokens per prompt
   * @param beamLength L including the init token; 1 for autoregressive runs
   * @param now clock in ms; default performance.now
   */
  constructor(
    promptLengths: number[],
    /** L including the init token; 1 for autoregressive runs. */
    readonly beamLength: number,
    now: Clock = defaultClock,
  ) {
    this.now = now;
    this.start = now();
    this.promptTokens = promptLengths.slice();
    this.accepted = promptLengths.map(() => []);
    this.finishedAt = promptLengths.map(() => NaN);
  }

  /** Add prefill time, ms. */
  prompt(ms: number): void {
    this.promptMs += ms;
  }

  /** One loop iteration's phase times. */
  step(draftMs: number, verifyMs: number, acceptMs: number): void {
    this.steps++;
    this.draftMs += draftMs;
    this.verifyMs += verifyMs;
    this.acceptMs += acceptMs;
  }

  /** The last step() was a plain round (no drafts). */
  plainStep(): void {
    this.plainSteps++;
  }

  /** Row took part in a round and n drafts were accepted (0 for autoregressive). */
  rowStep(row: number, n: number): void {
    this.accepted[row].push(n);
  }

  /** Row finished now: stamps its elapsed time for tokens/s (only the first call counts). */
  rowDone(row: number): void {
    if (Number.isNaN(this.finishedAt[row])) this.finishedAt[row] = this.now();
  }

  /** Final statistics; newTokens is [B], tokens generated per row. Rows not marked done end now. */
  summarize(newTokens: number[]): RunMetrics {
    const end = this.now();
    const L = this.beamLength;
    const C = Math.max(L - 1, 0);
    const prompts: PromptMetrics[] = [];
    const allHist = new Array(C + 1).fill(0);
    let sumN = 0, count = 0;
    for (let r = 0; r < this.accepted.length; r++) {
      const acc = this.accepted[r];
      const hist = new Array(C + 1).fill(0);
      let s = 0;
      for (const n of acc) {
        hist[n]++;
        allHist[n]++;
        s += n;
      }
      sumN += s;
      count += acc.length;
      const finished = Number.isNaN(this.finishedAt[r]) ? end : this.finishedAt[r];
      const elapsedMs = finished - this.start;
      prompts.push({
        promptTokens: this.promptTokens[r],
        newTokens: newTokens[r],
        steps: acc.length,
        acceptedLengths: acc.slice(),
        tau: acc.length ? s / acc.length + 1 : 1,
        acceptanceByPosition: byPosition(hist),
        histogram: hist,
        referenceAcceptancePct: acc.length ? (100 * s / acc.length) / L : 0,
        elapsedMs,
        tokensPerSecond: elapsedMs > 0 ? newTokens[r] / (elapsedMs / 1000) : 0,
      });
    }
    const totalMs = end - this.start;
    const total = newTokens.reduce((a, b) => a + b, 0);
    const steps = this.steps;
    return {
      batch: this.accepted.length,
      beamLength: L,
      steps,
      plainSteps: this.plainSteps,
      promptTokens: this.promptTokens.reduce((a, b) => a + b, 0),
      newTokens: total,
      tau: count ? sumN / count + 1 : 1,
      acceptanceByPosition: byPosition(allHist),
      histogram: allHist,
      referenceAcceptancePct: count ? (100 * sumN / count) / L : 0,
      promptMs: this.promptMs,
      meanDraftMs: steps ? this.draftMs / steps : 0,
      meanVerifyMs: steps ? this.verifyMs / steps : 0,
      meanAcceptMs: steps ? this.acceptMs / steps : 0,
      totalMs,
      tokensPerSecond: totalMs > 0 ? total / (totalMs / 1000) : 0,
      prompts,
    };
  }
}

/** From a histogram of n over 0..C: the fraction of rounds with n >= k, for k = 1..C. */
function byPosition(hist: number[]): number[] {
  const C = hist.length - 1;
  let total = 0;
  for (const h of hist) total += h;
  const out: number[] = [];
  let atLeast = total;
  for (let k = 1; k <= C; k++) {
    atLeast -= hist[k - 1];
    out.push(total ? atLeast / total : 0);
  }
  return out;
}
