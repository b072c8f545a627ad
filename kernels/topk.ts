/**
 * Top-k selection by insertion, shared by the CPU backend (logit reductions) and the CPU drafter (beam
 * search): descending values, ties to the lower id because candidates arrive in ascending id and an equal
 * value never displaces an earlier one.
 *
 * @module
 */

/**
 * Offer (v, id) to a descending top-k list of `filled` entries at ids/vals[at..]; returns the new count.
 */
export function pushTopK(
  v: number,
  id: number,
  k: number,
  filled: number,
  ids: Int32Array,
  vals: Float32Array,
  at: number,
): number {
  if (filled === k) {
    if (!(v > vals[at + k - 1])) return filled;
    filled--;
  }
  let j = filled++;
  while (j > 0 && vals[at + j - 1] < v) {
    vals[at + j] = vals[at + j - 1];
    ids[at + j] = ids[at + j - 1];
    j--;
  }
  vals[at + j] = v;
  ids[at + j] = id;
  return filled;
}

/** The k largest values of row[off .. off + len) (ids relative to off), descending, into ids/vals at `at`. */
export function topK(
  row: Float32Array,
  off: number,
  len: number,
  k: number,
  ids: Int32Array,
  vals: Float32Array,
  at: number,
): void {
  let filled = 0;
  for (let i = 0; i < len; i++) {
    const v = row[off + i];
    if (filled === k && !(v > vals[at + k - 1])) continue; // the common case stays in this loop
    filled = pushTopK(v, i, k, filled, ids, vals, at);
  }
}
