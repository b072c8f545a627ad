/**
 * A naive, loop-free-of-sessions autoregressive reference over a ToyTarget: the chain hash is advanced by
 * hand and the target's logits read directly. It checks the real loops' positions and uniform keys.
 */
import { argmax, type SamplerParams, sampleToken, uniform } from "../../core/sampling.ts";
import { chainHash, EMPTY_HASH, type ToyTarget } from "./toy_target.ts";

export function referenceAR(
  target: ToyTarget,
  prompt: number[],
  row: number,
  maxNew: number,
  eos: number[],
  sampling?: { params: SamplerParams; seed: number },
): number[] {
  let h = EMPTY_HASH;
  for (const t of prompt) h = chainHash(h, t);
  const out: number[] = [];
  for (let pos = prompt.length;; pos++) {
    const logits = target.logitsOf(h);
    const tok = sampling
      ? sampleToken(logits, sampling.params, uniform(sampling.seed, row, pos))
      : argmax(logits);
    out.push(tok);
    if (eos.includes(tok) || out.length >= maxNew) return out;
    h = chainHash(h, tok);
  }
}
