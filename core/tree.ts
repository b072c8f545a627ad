/**
 * Dynamic tree attention bookkeeping (redrafter.md section 3): prefix dedup of the W beams of a row, packing
 * the distinct tokens in beam-major order, the unpacker that maps every (beam, depth) back to its packed
 * token, depths (RoPE offsets), the parents array that RowInput.parents wants, and dense masks for
 * backends that need them. Unlike the reference, batches are padded explicitly (no cross-row garbage).
 *
 * @module
 */

/**
 * Marks the positions after a shorter beam's end in a ragged [W * L] beams array (a lookup branch is longer
 * or shorter than the drafter's beams): every beam has its init token, then tokens, then END to length L.
 */
export const END: number = -1;

/** One row's draft tree, packed. n = number of packed tokens (n <= 1 + W * (L - 1)). */
export interface PackedTree {
  /** W, beams the tree was built from. */
  width: number;
  /** L, tokens per beam including the init token (the longest beam's, when beams are ragged). */
  length: number;
  /** [n] token ids in packed order. */
  tokens: Int32Array;
  /** [n] depth of each packed token (0 for the init token); RoPE position = committed length + depth. */
  depth: Int32Array;
  /** [n] packed index of each token's parent, -1 for the root (RowInput.parents semantics). */
  parents: Int32Array;
  /** [n] flattened beam index (beam * L + depth) of each packed token's first occurrence. */
  flatIndex: Int32Array;
  /** [W * L] packed index of every beam position (END past a shorter beam's end); unpacker[0] == 0. */
  unpacker: Int32Array;
}

/** Throws unless every beam starts with a token and has no token after an END. */
function checkRagged(beams: Int32Array, W: number, L: number, what: string): void {
  for (let w = 0; w < W; w++) {
    if (beams[w * L] < 0) throw new Error(`${what}: beam ${w} has no init token`);
    for (let k = 1; k < L; k++) {
      if (beams[w * L + k] < 0 && beams[w * L + k] !== END) {
        throw new Error(`${what}: beam ${w} token ${k} = ${beams[w * L + k]} is neither a token nor END`);
      }
      if (beams[w * L + k] >= 0 && beams[w * L + k - 1] === END) {
        throw new Error(`${what}: beam ${w} has a token after its END at ${k - 1}`);
      }
    }
  }
}

/**
 * Prefix dedup (reference `_dedup_prefix`): prefixTree[i * L + k] = the smallest beam j whose tokens
 * 0..k equal beam i's. beams is [W * L] for one row.
 */
export function dedupPrefix(beams: Int32Array, W: number, L: number): Int32Array {
  const owner = new Int32Array(W * L);
  for (let i = 0; i < W; i++) {
    for (let k = 0; k < L; k++) {
      const tok = beams[i * L + k];
      if (tok === END) {
        owner[i * L + k] = END; // past a shorter beam's end
        continue;
      }
      // Beams share the prefix 0..k iff they share 0..k-1 (same owner at k-1) and agree at k.
      let j = 0;
      for (; j < i; j++) {
        if (beams[j * L + k] === tok && (k === 0 || owner[j * L + k - 1] === owner[i * L + k - 1])) break;
      }
      owner[i * L + k] = j;
    }
  }
  return owner;
}

/** Pack one row's beams [W * L] (ragged ones END-padded) into a prefix tree. */
export function packBeams(beams: Int32Array, W: number, L: number): PackedTree {
  if (beams.length !== W * L) {
    throw new Error(`packBeams: beams has ${beams.length} ids, expected ${W} x ${L}`);
  }
  checkRagged(beams, W, L, "packBeams");
  const owner = dedupPrefix(beams, W, L);
  const unpacker = new Int32Array(W * L);
  let n = 0;
  for (let f = 0; f < W * L; f++) if (owner[f] === Math.floor(f / L)) n++;
  const tokens = new Int32Array(n), depth = new Int32Array(n);
  const parents = new Int32Array(n), flatIndex = new Int32Array(n);
  let p = 0;
  for (let i = 0; i < W; i++) {
    for (let k = 0; k < L; k++) {
      const f = i * L + k;
      const o = owner[f];
      if (o === END) {
        unpacker[f] = END;
      } else if (o === i) {
        tokens[p] = beams[f];
        depth[p] = k;
        parents[p] = k === 0 ? -1 : unpacker[f - 1];
        flatIndex[p] = f;
        unpacker[f] = p++;
      } else {
        unpacker[f] = unpacker[o * L + k]; // the owner is an earlier beam, already packed
      }
    }
  }
  return { width: W, length: L, tokens, depth, parents, flatIndex, unpacker };
}

/**
 * No prefix sharing: every beam is its own chain of L tokens (the init token repeated W times, each copy a
 * root with parent -1). Used to measure what packing saves.
 */
export function chainBeams(beams: Int32Array, W: number, L: number): PackedTree {
  if (beams.length !== W * L) {
    throw new Error(`chainBeams: beams has ${beams.length} ids, expected ${W} x ${L}`);
  }
  checkRagged(beams, W, L, "chainBeams");
  let n = 0;
  for (let f = 0; f < W * L; f++) if (beams[f] !== END) n++;
  const tokens = new Int32Array(n), depth = new Int32Array(n), parents = new Int32Array(n);
  const flatIndex = new Int32Array(n), unpacker = new Int32Array(W * L);
  for (let f = 0, p = 0; f < W * L; f++) {
    if (beams[f] === END) {
      unpacker[f] = END;
      continue;
    }
    const k = f % L;
    tokens[p] = beams[f];
    depth[p] = k;
    parents[p] = k === 0 ? -1 : p - 1;
    flatIndex[p] = f;
    unpacker[f] = p++;
  }
  return { width: W, length: L, tokens, depth, parents, flatIndex, unpacker };
}

/** Gather per-beam values from packed ones: out[w * L + k] = packed[unpacker[w * L + k]]. */
export function unpack<T extends Int32Array | Float32Array | Float64Array>(
  packed: T,
  unpacker: Int32Array,
): T {
  const out = new (packed.constructor as { new (n: number): T })(unpacker.length);
  for (let i = 0; i < unpacker.length; i++) out[i] = packed[unpacker[i]];
  return out;
}

/** A batch of packed rows made rectangular with explicit padding. N = max packed length. */
export interface PackedBatch {
  /** B, the number of rows. */
  batch: number;
  /** Max packed length over rows. */
  size: number;
  /** [B] real packed tokens per row. */
  counts: Int32Array;
  /** [B * N] token ids; padding slots hold padToken. */
  tokens: Int32Array;
  /** [B * N] flattened beam index of each token; -1 on padding. */
  indices: Int32Array;
  /** [B * N] depth; 0 on padding. */
  depth: Int32Array;
  /** [B * N] parent packed index; -1 on roots and padding. */
  parents: Int32Array;
  /** [B * W * L] unpacker per row. */
  unpacker: Int32Array;
}

/** Pack beams [B * W * L] for B rows and pad each row to the longest with padToken. */
export function packBatch(beams: Int32Array, B: number, W: number, L: number, padToken = 0): PackedBatch {
  if (beams.length !== B * W * L) {
    throw new Error(`packBatch: beams has ${beams.length} ids, expected ${B} x ${W} x ${L}`);
  }
  const trees: PackedTree[] = [];
  let N = 0;
  for (let b = 0; b < B; b++) {
    const t = packBeams(beams.subarray(b * W * L, (b + 1) * W * L), W, L);
    trees.push(t);
    N = Math.max(N, t.tokens.length);
  }
  const tokens = new Int32Array(B * N).fill(padToken);
  const indices = new Int32Array(B * N).fill(-1);
  const depth = new Int32Array(B * N);
  const parents = new Int32Array(B * N).fill(-1);
  const unpacker = new Int32Array(B * W * L);
  const counts = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    const t = trees[b];
    counts[b] = t.tokens.length;
    tokens.set(t.tokens, b * N);
    indices.set(t.flatIndex, b * N);
    depth.set(t.depth, b * N);
    parents.set(t.parents, b * N);
    unpacker.set(t.unpacker, b * W * L);
  }
  return { batch: B, size: N, counts, tokens, indices, depth, parents, unpacker };
}

/**
 * Ancestor-or-self mask [n * n] (1 = may attend) from a parents array (parents[i] < i). Row i has ones at
 * i and at every ancestor of i.
 */
export function ancestorMask(parents: Int32Array): Uint8Array {
  const n = parents.length;
  const mask = new Uint8Array(n * n);
  for (let i = 0; i < n; i++) {
    const p = parents[i];
    if (p >= i || p < -1) throw new Error(`ancestorMask: parents[${i}] = ${p} must be in [-1, ${i - 1}]`);
    if (p >= 0) mask.set(mask.subarray(p * n, p * n + n), i * n);
    mask[i * n + i] = 1;
  }
  return mask;
}

/**
 * The full attention mask of one row's verify call [n * (prefix + n)]: every query sees all `prefix`
 * committed positions, then its ancestors and itself among the new tokens. Padding rows (count < n) see
 * only themselves so no softmax row is empty.
 */
export function treeAttentionMask(prefix: number, parents: Int32Array, count = parents.length): Uint8Array {
  const n = parents.length;
  const anc = ancestorMask(parents);
  const cols = prefix + n;
  const mask = new Uint8Array(n * cols);
  for (let i = 0; i < n; i++) {
    if (i >= count) {
      mask[i * cols + prefix + i] = 1;
      continue;
    }
    mask.fill(1, i * cols, i * cols + prefix);
    for (let j = 0; j <= i; j++) mask[i * cols + prefix + j] = anc[i * n + j];
  }
  return mask;
}
