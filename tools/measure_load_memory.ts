/**
 * Peak memory of loading a float32 checkpoint into the CPU backend, relative to the weights file size.
 *
 *   deno run -A tools/measure_load_memory.ts                 # writes a random ~190 MiB Llama to a temp dir
 *   deno run -A tools/measure_load_memory.ts --dir <ckpt>    # measures an existing checkpoint directory
 *
 * The checkpoint is written tensor by tensor (never whole in memory), then a fresh child process loads it
 * with createCpuModel, runs one short forward call, and reports VmHWM (peak RSS) from /proc/self/status.
 * Target: peak RSS under 1.3x the safetensors size.
 *
 * @module
 */
import { toolArgs } from "./tool_args.ts";
import { join } from "node:path";
import { loadCheckpoint } from "../loader/checkpoint.ts";
import { createCpuModel } from "../backends/cpu/mod.ts";

function procStatusKiB(field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(Deno.readTextFileSync("/proc/self/status"));
  return m ? Number(m[1]) : NaN;
}

/** Config fields of writeRandomLlama that a caller may override. */
export interface RandomLlamaShape {
  vocab_size?: number;
  hidden_size?: number;
  intermediate_size?: number;
  num_attention_heads?: number;
  num_key_value_heads?: number;
}

/** A random-weight Llama written straight to disk (header first, then one tensor at a time). */
export function writeRandomLlama(dir: string, layers = 6, shape: RandomLlamaShape = {}): void {
  const cfg = {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    vocab_size: 8000,
    hidden_size: 768,
    intermediate_size: 2048,
    num_hidden_layers: layers,
    num_attention_heads: 12,
    num_key_value_heads: 4,
    max_position_embeddings: 2048,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: false,
    bos_token_id: 1,
    eos_token_id: 2,
    ...shape,
  };
  Deno.writeTextFileSync(join(dir, "config.json"), JSON.stringify(cfg, null, 2));
  const H = cfg.hidden_size, I = cfg.intermediate_size, V = cfg.vocab_size;
  const hd = H / cfg.num_attention_heads, kv = cfg.num_key_value_heads * hd;
  const tensors: [string, number[]][] = [["model.embed_tokens.weight", [V, H]]];
  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`;
    tensors.push(
      [p + "input_layernorm.weight", [H]],
      [p + "self_attn.q_proj.weight", [H, H]],
      [p + "self_attn.k_proj.weight", [kv, H]],
      [p + "self_attn.v_proj.weight", [kv, H]],
      [p + "self_attn.o_proj.weight", [H, H]],
      [p + "post_attention_layernorm.weight", [H]],
      [p + "mlp.gate_proj.weight", [I, H]],
      [p + "mlp.up_proj.weight", [I, H]],
      [p + "mlp.down_proj.weight", [H, I]],
    );
  }
  tensors.push(["model.norm.weight", [H]], ["lm_head.weight", [V, H]]);
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, shape] of tensors) {
    const bytes = shape.reduce((a, b) => a * b, 1) * 4;
    header[name] = { dtype: "F32", shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const file = Deno.openSync(join(dir, "model.safetensors"), { write: true, create: true, truncate: true });
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(json.length), true);
  file.writeSync(len);
  file.writeSync(new TextEncoder().encode(json));
  let seed = 12345;
  for (const [name, shape] of tensors) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    const isNorm = name.endsWith("norm.weight");
    for (let i = 0; i < data.length; i++) {
      seed ^= seed << 13, seed ^= seed >>> 17, seed ^= seed << 5; // xorshift32
      data[i] = isNorm ? 1 : ((seed >>> 0) / 2 ** 32 - 0.5) * 0.1;
    }
    let bytes = new Uint8Array(data.buffer);
    while (bytes.length) bytes = bytes.subarray(file.writeSync(bytes));
  }
  file.close();
}

async function child(dir: string): Promise<void> {
  const base = procStatusKiB("VmRSS");
  const ckpt = await loadCheckpoint(dir);
  const t0 = performance.now();
  const model = createCpuModel(ckpt);
  const loadMs = performance.now() - t0;
  ckpt.tensors.close();
  const afterLoad = procStatusKiB("VmHWM");
  const s = model.createSession(1, 64);
  await s.forward({
    rows: [{ tokens: Int32Array.of(1, 2, 3, 4), positions: Int32Array.of(0, 1, 2, 3) }],
    logits: { kind: "full" },
  });
  console.log(
    JSON.stringify({
      baseKiB: base,
      afterLoadHwmKiB: afterLoad,
      finalHwmKiB: procStatusKiB("VmHWM"),
      loadMs,
    }),
  );
}

async function main(): Promise<void> {
  const { values } = toolArgs(import.meta.url, {
    options: { dir: { type: "string" }, child: { type: "string" } },
  });
  if (values.child) return await child(values.child);
  let dir = values.dir;
  const temp = !dir;
  if (!dir) {
    dir = Deno.makeTempDirSync({ prefix: "redrafter-mem-" });
    writeRandomLlama(dir);
  }
  try {
    let fileBytes = 0;
    for (const e of Deno.readDirSync(dir)) {
      if (e.name.endsWith(".safetensors")) fileBytes += Deno.statSync(join(dir, e.name)).size;
    }
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL(import.meta.url).pathname, "--child", dir],
      stderr: "inherit",
    }).output();
    if (!out.success) throw new Error("measure child failed");
    const r = JSON.parse(new TextDecoder().decode(out.stdout));
    const mb = (kib: number) => (kib / 1024).toFixed(1);
    const file = fileBytes / 2 ** 20;
    console.log(`weights file:           ${file.toFixed(1)} MiB (${dir})`);
    console.log(`deno baseline RSS:      ${mb(r.baseKiB)} MiB`);
    console.log(
      `peak RSS after load:    ${mb(r.afterLoadHwmKiB)} MiB = ${
        (r.afterLoadHwmKiB / 1024 / file).toFixed(3)
      }x file`,
    );
    console.log(
      `peak RSS after forward: ${mb(r.finalHwmKiB)} MiB = ${(r.finalHwmKiB / 1024 / file).toFixed(3)}x file`,
    );
    const over = (r.afterLoadHwmKiB - r.baseKiB) / 1024;
    console.log(`load above baseline:    ${over.toFixed(1)} MiB = ${(over / file).toFixed(3)}x file`);
    console.log(`load time:              ${r.loadMs.toFixed(0)} ms`);
  } finally {
    if (temp) Deno.removeSync(dir, { recursive: true });
  }
}

if (import.meta.main) await main();
