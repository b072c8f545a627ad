/**
 * Counter-based randomness and the one token sampler every generation loop uses.
 *
 * Reproducibility contract: the token at absolute position p of batch row r is drawn with
 * `sampleToken(logits, params, uniform(seed, r, p))`, where `logits` are the target's logits after the
 * token at p - 1. Autoregressive sampling and the exact speculative mode both follow it, so they emit the
 * same tokens for the same seed whatever the draft tree was.
 *
 * @module
 */

/** Target-side sampling parameters. temperature <= 0 means greedy (argmax). */
export interface SamplerParams {
  /** Divides the logits; <= 0 selects argmax. */
  temperature: number;
  /** Keep only the k most probable tokens (0 = no limit). */
  topK: number;
  /** Keep the smallest most-probable prefix whose mass reaches topP (1 = no limit). */
  topP: number;
}

/** Greedy decoding: argmax of the logits, no top-k or top-p filtering. */
export const GREEDY: SamplerParams = { temperature: 0, topK: 0, topP: 1 };

// ---------------------------------------------------------------------------------------------------
// uniform(seed, row, position, stream)

/** murmur3's 32-bit finalizer: a bijection on uint32 with full avalanche. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Absorb one 32-bit word into the running hash (murmur3-style block step, then finalize). */
function absorb(h: number, x: number): number {
  let k = Math.imul(x | 0, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  return h;
}

/**
 * A uniform number in [0, 1) that is a pure function of four integers. The seed may be any integer in
 * [0, 2^53) (its low and high 32-bit words are both absorbed); row, position and stream are taken modulo
 * 2^32. Two 32-bit murmur3-style hashes of (seed, row, position, stream) with different initial values
 * give 53 random bits (26 + 27), the same construction as a float64 from two uint32 words.
 */
export function uniform(seed: number, row: number, position: number, stream = 0): number {
  const seedLo = seed >>> 0;
  const seedHi = Math.floor(seed / 4294967296) >>> 0;
  let a = 0x243f6a88, b = 0x85a308d3; // pi digits: two independent streams
  a = absorb(a, seedLo), b = absorb(b, seedLo);
  a = absorb(a, seedHi), b = absorb(b, seedHi);
  a = absorb(a, row), b = absorb(b, row);
  a = absorb(a, position), b = absorb(b, position);
  a = absorb(a, stream), b = absorb(b, stream);
  const hiBits = fmix32(a ^ 20) >>> 6; // 26 bits
  const loBits = fmix32(b ^ 20) >>> 5; // 27 bits
  return (hiBits * 134217728 + loBits) / 9007199254740992;
}

// ---------------------------------------------------------------------------------------------------
// The sampler

/** Index of the largest value; ties go to the lowest index. NaN never wins. */
export function argmax(x: ArrayLike<number>, offset: number = 0, length?: number): number {
  const n = length ?? x.length - offset;
  let best = 0;
  let bestV = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = x[offset + i];
    if (v > bestV) {
      bestV = v;
      best = i;
    }
  }
  return best;
}

/** Validate sampler parameters, naming the field at fault. */
export function checkSamplerParams(p: SamplerParams, where = "sampling"): void {
  if (!Number.isFinite(p.temperature) || p.temperature < 0) {
    throw new Error(`${where}.temperature must be a finite number >= 0, got ${p.temperature}`);
  }
  if (!Number.isInteger(p.topK) || p.topK < 0) {
    throw new Error(`${where}.topK must be an integer >= 0 (0 = off), got ${p.topK}`);
  }
  if (!(p.topP > 0 && p.topP <= 1)) throw new Error(`${where}.topP must be in (0, 1], got ${p.topP}`);
}

// Scratch buffers reused across calls (the sampler runs once per emitted token).
let orderBuf = new Int32Array(0);
let weightBuf = new Float64Array(0);

function scratch(n: number): void {
  if (orderBuf.length < n) {
    orderBuf = new Int32Array(n);
    weightBuf = new Float64Array(n);
  }
}

/**
 * The candidate list the sampler walks: writes token ids into orderBuf[0..m) and unnormalized weights
 * exp((logit - max) / T) into weightBuf[0..m), returns m.
 *
 * Order (documented, fixed): when topK and topP are both off, ids ascending (no sort is needed and the
 * inverse CDF over any fixed order is exact). Otherwise logits descending with ties to the lower id; top-k
 * keeps the first k of that order (exactly k, ties at the boundary go to the lower ids); top-p then keeps
 * the shortest prefix whose renormalized mass is >= topP (at least one token).
 */
function candidates(logits: Float32Array, p: SamplerParams): number {
  const V = logits.length;
  scratch(V);
  const order = orderBuf, w = weightBuf;
  const invT = 1 / p.temperature;
  const k = p.topK > 0 && p.topK < V ? p.topK : V;
  let m: number;
  if (k === V && p.topP >= 1) {
    const mx = logits[argmax(logits)];
    for (let i = 0; i < V; i++) {
      order[i] = i;
      w[i] = Math.exp((logits[i] - mx) * invT);
    }
    return V;
  }
  if (k <= 64) {
    // Insertion into a short sorted list: O(V k) worst case, O(V) typical.
    m = 0;
    for (let i = 0; i < V; i++) {
      const v = logits[i];
      if (m === k && !(v > logits[order[k - 1]])) continue;
      let j = m < k ? m++ : k - 1;
      while (j > 0 && v > logits[order[j - 1]]) {
        order[j] = order[j - 1];
        j--;
      }
      order[j] = i;
    }
  } else {
    for (let i = 0; i < V; i++) order[i] = i;
    const sub = order.subarray(0, V);
    sub.sort((a, b) => (logits[b] - logits[a]) || (a - b));
    m = k;
  }
  const mx = logits[order[0]];
  let total = 0;
  for (let i = 0; i < m; i++) {
    const e = Math.exp((logits[order[i]] - mx) * invT);
    w[i] = e;
    total += e;
  }
  if (p.topP < 1) {
    const need = p.topP * total;
    let cum = 0;
    let cut = m;
    for (let i = 0; i < m; i++) {
      cum += w[i];
      if (cum >= need) {
        cut = i + 1;
        break;
      }
    }
    m = cut;
  }
  return m;
}

/**
 * Draw one token from logits [V] with uniform u in [0, 1): argmax when temperature <= 0 (ties to the
 * lowest id), otherwise the inverse CDF over the candidate order described at `candidates`: the first
 * candidate whose cumulative weight exceeds u * total.
 */
export function sampleToken(logits: Float32Array, params: SamplerParams, u: number): number {
  if (params.temperature <= 0 || params.topK === 1) return argmax(logits);
  const m = candidates(logits, params);
  const order = orderBuf, w = weightBuf;
  let total = 0;
  for (let i = 0; i < m; i++) total += w[i];
  if (!(total > 0) || !Number.isFinite(total)) return argmax(logits); // all -inf or NaN rows
  const target = u * total;
  let cum = 0;
  for (let i = 0; i < m; i++) {
    cum += w[i];
    if (target < cum) return order[i];
  }
  return order[m - 1]; // u * total rounded up to total
}

/**
 * The probability vector [V] that sampleToken draws from (float64; zeros outside the kept set). Greedy
 * gives a one-hot at the argmax. Used by tests and by rules that need P itself.
 */
export function samplingProbs(logits: Float32Array, params: SamplerParams, out?: Float64Array): Float64Array {
  const V = logits.length;
  const probs = out ?? new Float64Array(V);
  probs.fill(0);
  if (params.temperature <= 0 || params.topK === 1) {
    probs[argmax(logits)] = 1;
    return probs;
  }
  const m = candidates(logits, params);
  let total = 0;
  for (let i = 0; i < m; i++) total += weightBuf[i];
  if (!(total > 0) || !Number.isFinite(total)) {
    probs[argmax(logits)] = 1;
    return probs;
  }
  for (let i = 0; i < m; i++) probs[orderBuf[i]] = weightBuf[i] / total;
  return probs;
}

// ---------------------------------------------------------------------------------------------------
// Apple's reference warp and a plain categorical draw (used by the "apple" acceptance rule)

/** Apple's LOG_0: the value the reference writes over logits outside the top-k. */
export const LOG_0: number = -50000;

/**
 * Apple's top-k warp as the reference applies it to LLM logits (and to drafter logits): every value
 * strictly smaller than the k-th largest becomes LOG_0 (ties at the threshold survive). Returns a new array.
 */
export function topKWarp(logits: Float32Array, k = 50): Float32Array {
  const V = logits.length;
  const out = new Float32Array(logits);
  if (k >= V) return out;
  const sorted = Float32Array.from(logits).sort();
  const threshold = sorted[V - k];
  for (let i = 0; i < V; i++) if (out[i] < threshold) out[i] = LOG_0;
  return out;
}

/**
 * The reference's sampling distribution for the LLM: softmax(top50_warp(logits) / T), float64 [V]. T <= 0
 * gives a one-hot at the argmax.
 */
export function appleProbs(logits: Float32Array, temperature: number, warpK = 50): Float64Array {
  const V = logits.length;
  const probs = new Float64Array(V);
  if (temperature <= 0) {
    probs[argmax(logits)] = 1;
    return probs;
  }
  const warped = topKWarp(logits, warpK);
  const mx = warped[argmax(warped)];
  let total = 0;
  for (let i = 0; i < V; i++) {
    const e = Math.exp((warped[i] - mx) / temperature);
    probs[i] = e;
    total += e;
  }
  for (let i = 0; i < V; i++) probs[i] /= total;
  return probs;
}

/**
 * Inverse-CDF draw in id order from unnormalized non-negative weights [V]. Returns -1 when the weights sum
 * to zero (callers guard, e.g. an all-zero residual).
 */
export function drawCategorical(weights: ArrayLike<number>, u: number): number {
  let total = 0;
  for (let i = 0; i < weights.length; i++) total += weights[i];
  if (!(total > 0)) return -1;
  const target = u * total;
  let cum = 0;
  let last = -1;
  for (let i = 0; i < weights.length; i++) {
    if (weights[i] <= 0) continue;
    cum += weights[i];
    last = i;
    if (target < cum) return i;
  }
  return last;
}
