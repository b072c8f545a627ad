// The embedded default pair on the CPU backend at 1 thread, with the q8 drafter the CLIs use, for tests.
import { fileURLToPath } from "node:url";
import { loadCheckpoint } from "../../loader/checkpoint.ts";
import { createCpuModel } from "../../backends/cpu/mod.ts";
import { loadDrafter, type LoadDrafterOptions } from "../../drafter/load.ts";
import type { DraftModel, TargetModel } from "../../core/types.ts";

/** models/default/, with a trailing slash. */
export const DEFAULT_ROOT = fileURLToPath(new URL("../../models/default/", import.meta.url));

/** The default target (weights copied into the kernels, so the checkpoint is closed). */
export async function defaultTarget(): Promise<TargetModel> {
  const ckpt = await loadCheckpoint(DEFAULT_ROOT + "target");
  const target = createCpuModel(ckpt, { threads: 1 });
  ckpt.tensors.close();
  return target;
}

/** The default drafter next to `target`, q8 at 1 thread unless `opts` say otherwise. */
export async function defaultDrafter(
  target: TargetModel,
  opts: LoadDrafterOptions = {},
): Promise<DraftModel> {
  return await loadDrafter(DEFAULT_ROOT + "drafter", target, { threads: 1, weights: "q8", ...opts });
}
