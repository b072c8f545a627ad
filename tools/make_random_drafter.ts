/**
 * Writes an Apple-format recurrent drafter (config.json + model.safetensors, ml-recurrent-drafter tensor
 * names) with random weights, sized for a target checkpoint: for tests and benches before a trained drafter
 * exists. Its drafts are mostly rejected, but every code path (beam search, tree verify, commit) runs.
 *
 *   deno run -A tools/make_random_drafter.ts --target DIR --out DIR [--exit-dim E] [--layers N]
 *     [--no-rnn] [--seed S] [--std X] [--dtype F32|F16|BF16]
 *
 * @module
 */
import { join } from "node:path";
import { parseModelConfig, readJsonFile } from "../loader/config.ts";
import { type TensorToWrite, writeSafetensors } from "../loader/safetensors.ts";
import type { DType } from "../loader/types.ts";
import { intFlag, numberFlag, parseFlags, requiredFlag, runMain, UsageError } from "../cli/args.ts";

export interface RandomDrafterOptions {
  /** E; default 2 * hidden_size (no input_proj, as in the released recipe). */
  exitDim?: number;
  /** ResBlocks; default 2 (train.sh). */
  layers?: number;
  /** Default true (train.sh). */
  rnn?: boolean;
  seed?: number;
  /** Standard deviation of the weights; default 1 / sqrt(fan-in) per matrix. */
  std?: number;
  dtype?: DType;
}

/** mulberry32: a small seeded generator, so fixtures are reproducible. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Writes the drafter for the target checkpoint in targetDir into outDir (created). Returns outDir. */
export function makeRandomDrafter(
  targetDir: string,
  outDir: string,
  opts: RandomDrafterOptions = {},
): string {
  const target = parseModelConfig(
    readJsonFile(join(targetDir, "config.json")),
    join(targetDir, "config.json"),
  );
  const H = target.hiddenSize, V = target.vocabSize;
  const E = opts.exitDim ?? 2 * H;
  const layers = opts.layers ?? 2;
  const rnn = opts.rnn ?? true;
  const dtype = opts.dtype ?? "F32";
  if (!Number.isInteger(E) || E < 1) throw new Error(`exit_dim must be a positive integer, got ${E}`);
  if (!Number.isInteger(layers) || layers < 0) {
    throw new Error(`layers must be an integer >= 0, got ${layers}`);
  }
  const rand = rng(opts.seed ?? 0);
  // Box-Muller normal draws.
  const normal = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const tensors: TensorToWrite[] = [];
  const add = (name: string, shape: number[], fanIn: number, zero = false) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const std = opts.std ?? 1 / Math.sqrt(fanIn);
    const data = new Float32Array(n);
    if (!zero) { for (let i = 0; i < n; i++) data[i] = std * normal(); }
    tensors.push({ name, shape, dtype, data });
  };
  if (E !== 2 * H) {
    add("input_proj.weight", [E, 2 * H], 2 * H);
    add("input_proj.bias", [E], 2 * H, true);
  }
  for (let i = 0; i < layers; i++) {
    add(`lm_head.${i}.linear.weight`, [E, E], E);
    add(`lm_head.${i}.linear.bias`, [E], E, true);
  }
  add(`lm_head.${layers}.weight`, [V, E], E);
  if (rnn) {
    add("rnn_u.weight", [H, H], H);
    add("rnn_u.bias", [H], H, true);
    add("rnn_w.weight", [H, H], H);
  }
  Deno.mkdirSync(outDir, { recursive: true });
  const config = {
    model_type: "recurrent_drafting_drafter",
    hidden_size: H,
    vocab_size: V,
    exit_dim: E,
    num_draft_layers: layers,
    num_lookback_tokens: -1,
    rnn,
    torch_dtype: { F32: "float32", F16: "float16", BF16: "bfloat16" }[dtype],
  };
  Deno.writeTextFileSync(join(outDir, "config.json"), JSON.stringify(config, null, 2) + "\n");
  writeSafetensors(join(outDir, "model.safetensors"), tensors, { format: "pt" });
  return outDir;
}

if (import.meta.main) {
  await runMain((argv) => {
    const { values } = parseFlags(argv, {
      target: { type: "string" },
      out: { type: "string" },
      "exit-dim": { type: "string" },
      layers: { type: "string" },
      "no-rnn": { type: "boolean" },
      seed: { type: "string" },
      std: { type: "string" },
      dtype: { type: "string" },
      help: { type: "boolean", short: "h" },
    });
    if (values.help) {
      console.log(
        "usage: deno run -A tools/make_random_drafter.ts --target DIR --out DIR [--exit-dim E] [--layers N] " +
          "[--no-rnn] [--seed S] [--std X] [--dtype F32|F16|BF16]",
      );
      return;
    }
    const target = requiredFlag(values, "target");
    const out = requiredFlag(values, "out");
    const dtype = (values.dtype ?? "F32").toUpperCase();
    if (!["F32", "F16", "BF16"].includes(dtype)) {
      throw new UsageError(`--dtype must be one of F32, F16, BF16; got '${values.dtype}'`);
    }
    try {
      Deno.statSync(join(target, "config.json"));
    } catch {
      throw new UsageError(
        `--target ${target}: no config.json there (expected a target checkpoint directory)`,
      );
    }
    const dir = makeRandomDrafter(target, out, {
      exitDim: values["exit-dim"] === undefined ? undefined : intFlag(values, "exit-dim", 0, { min: 1 }),
      layers: intFlag(values, "layers", 2, { min: 0, max: 64 }),
      rnn: !values["no-rnn"],
      seed: intFlag(values, "seed", 0, { min: 0 }),
      std: values.std === undefined ? undefined : numberFlag(values, "std", 0, { min: 0 }),
      dtype: dtype as DType,
    });
    console.error(`wrote ${join(dir, "config.json")} and ${join(dir, "model.safetensors")}`);
  });
}
