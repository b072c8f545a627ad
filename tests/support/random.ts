/** Deterministic test data: n floats in [-1, 1) from a xorshift32 stream seeded with `seed`. */
export function randomFloats(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13, s ^= s >>> 17, s ^= s << 5;
    a[i] = ((s >>> 0) / 2 ** 32 - 0.5) * 2;
  }
  return a;
}
