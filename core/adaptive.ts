/**
 * Adaptive drafting: choose, round by round, between a drafting round (drafter + tree verification) and a
 * plain one (the target on the last token alone, as autoregression does) by what each has cost per new token.
 *
 * Drafting pays only where the target accepts enough drafts to cover a round's extra cost. Where it does not
 * (sampling from a broad target, text the drafter cannot follow), ReDrafter would be slower than plain
 * decoding; this falls back to plain rounds there. Both kinds of round produce exactly the autoregressive
 * tokens (greedy, or exact sampling with its per-position uniforms), so the choice moves speed only.
 *
 * The policy: start drafting; after WARMUP drafting rounds, try PROBE plain ones; from then on run the kind
 * whose moving average of ms per token is lower, and after REPROBE rounds of one kind measure the other
 * again for PROBE rounds (acceptance changes with the text). A probe that leaves the favourite as it was
 * doubles the wait before the next one (up to MAX_REPROBE rounds); one that changes it resets the wait.
 * A chooser can serve several calls (SpeculativeOptions.adaptive), so that a chat or a server keeps what
 * it learned. Pure: the caller measures and reports.
 *
 * @module
 */

/** A round that drafts (drafter + tree verification), or a plain one (the target on the last token alone). */
export type RoundKind = "draft" | "plain";

/** Drafting rounds before the first plain probe. */
export const WARMUP = 4;
/** Rounds of the other kind per probe. */
export const PROBE = 2;
/** Rounds of one kind before the other is probed again (doubling while probes change nothing). */
export const REPROBE = 32;
/** The longest wait between probes. */
export const MAX_REPROBE = 512;
/** Weight of the newest round in the moving averages. */
export const EMA_WEIGHT = 0.3;

/**
 * Chooses each round's kind from the measured cost per token of the rounds before (the policy above).
 * `next()` names the next round's kind; `record()` reports how long it took and how many tokens it made.
 */
export class RoundChooser {
  /** Moving average of ms per new token, per kind (NaN until measured). */
  private cost: Record<RoundKind, number> = { draft: NaN, plain: NaN };
  /** Rounds run of each kind. */
  private runs: Record<RoundKind, number> = { draft: 0, plain: 0 };
  /** Rounds left in the current probe, and its kind. */
  private probeLeft = 0;
  private probeKind: RoundKind = "plain";
  /** Rounds of the current favourite since the other kind was last measured. */
  private sinceProbe = 0;
  /** Rounds to wait before the next probe. */
  private wait = REPROBE;
  /** The favourite when the current probe began. */
  private before: RoundKind = "draft";

  /** The kind of the next round. */
  next(): RoundKind {
    if (this.probeLeft > 0) return this.probeKind;
    if (this.runs.draft < WARMUP) return "draft";
    const best = this.favourite();
    const other: RoundKind = best === "draft" ? "plain" : "draft";
    if (Number.isNaN(this.cost[other]) || this.sinceProbe >= this.wait) {
      this.probeKind = other;
      this.probeLeft = PROBE;
      this.sinceProbe = 0;
      this.before = best;
      return other;
    }
    return best;
  }

  /** Report a finished round: its kind, its wall time (ms) and the new tokens it produced (all rows). */
  record(kind: RoundKind, ms: number, tokens: number): void {
    if (tokens <= 0 || !(ms >= 0)) return; // a round whose rows had all ended says nothing
    const perToken = ms / tokens;
    const c = this.cost[kind];
    this.cost[kind] = Number.isNaN(c) ? perToken : c + EMA_WEIGHT * (perToken - c);
    this.runs[kind]++;
    if (this.probeLeft > 0 && kind === this.probeKind) {
      if (--this.probeLeft === 0) {
        this.wait = this.favourite() === this.before ? Math.min(2 * this.wait, MAX_REPROBE) : REPROBE;
      }
    } else this.sinceProbe++;
  }

  /** The kind with the lower measured cost per token (drafting while plain rounds are unmeasured). */
  favourite(): RoundKind {
    return this.cost.plain < this.cost.draft ? "plain" : "draft";
  }

  /** Rounds run of a kind so far. */
  count(kind: RoundKind): number {
    return this.runs[kind];
  }
}
