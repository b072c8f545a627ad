// Reader for tests/fixtures/drafter/*/expected.safetensors, written by tools/make_drafter_fixture.py: the
// context vectors, the beam-search step inputs and the PyTorch reference's log-prob rows of every step.
import { openSafetensors } from "../../loader/safetensors.ts";

/** One fixture drafter's reference trajectory. */
export interface Expected {
  /** [B * H] context vectors. */
  ctx: Float32Array;
  /** Per step, [B * W] tokens and parent beams fed to DraftRound.step. */
  tokens: Int32Array[];
  parents: Int32Array[];
  /** Per step, [B * W * V] log-prob rows. */
  rows: Float32Array[];
  batch: number;
  width: number;
}

/** Read `<dir>expected.safetensors`. */
export function readExpected(dir: string): Expected {
  const s = openSafetensors(dir + "expected.safetensors");
  const [S, N] = s.info("tokens").shape;
  const [B, W] = s.info("beams").shape;
  const V = s.info("rows").shape[2];
  const tok = s.readF32("tokens"), par = s.readF32("parents"), rows = s.readF32("rows");
  const out: Expected = { ctx: s.readF32("ctx"), tokens: [], parents: [], rows: [], batch: B, width: W };
  for (let i = 0; i < S; i++) {
    out.tokens.push(Int32Array.from(tok.subarray(i * N, (i + 1) * N)));
    out.parents.push(Int32Array.from(par.subarray(i * N, (i + 1) * N)));
    out.rows.push(rows.subarray(i * N * V, (i + 1) * N * V));
  }
  s.close();
  return out;
}
