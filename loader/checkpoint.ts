/**
 * A Hugging Face checkpoint directory: config.json, optional generation_config.json, and either
 * model.safetensors or model.safetensors.index.json with its shards. Tensors are opened lazily (headers
 * only); backends read them one at a time.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Checkpoint } from "./types.ts";
import {
  ConfigError,
  mergeGeneration,
  parseGenerationConfig,
  parseModelConfig,
  readJsonFile,
} from "./config.ts";
import { openSafetensors, openShardedSafetensors } from "./safetensors.ts";

/** Open a checkpoint directory: parse its configs and the safetensors headers (no weights read yet). */
export function loadCheckpointSync(dir: string): Checkpoint {
  let stat: Deno.FileInfo;
  try {
    stat = Deno.statSync(dir);
  } catch {
    throw new ConfigError(dir, "checkpoint directory not found");
  }
  if (!stat.isDirectory) throw new ConfigError(dir, "not a directory (expected a checkpoint directory)");
  const configPath = join(dir, "config.json");
  if (!existsSync(configPath)) throw new ConfigError(dir, "no config.json in checkpoint directory");
  const rawConfig = readJsonFile(configPath);
  let config = parseModelConfig(rawConfig, configPath);
  const genPath = join(dir, "generation_config.json");
  const generation = existsSync(genPath) ? parseGenerationConfig(readJsonFile(genPath), genPath) : null;
  config = mergeGeneration(config, generation);
  const single = join(dir, "model.safetensors");
  const index = join(dir, "model.safetensors.index.json");
  let tensors;
  if (existsSync(single)) tensors = openSafetensors(single);
  else if (existsSync(index)) tensors = openShardedSafetensors(index);
  else {
    throw new ConfigError(
      dir,
      "no model.safetensors or model.safetensors.index.json in checkpoint directory " +
        "(only safetensors checkpoints are supported)",
    );
  }
  return { dir, config, rawConfig, generation, tensors };
}

/** Async form of loadCheckpointSync (the reads are small; kept async for backends that stream). */
export function loadCheckpoint(dir: string): Promise<Checkpoint> {
  try {
    return Promise.resolve(loadCheckpointSync(dir));
  } catch (e) {
    return Promise.reject(e);
  }
}
