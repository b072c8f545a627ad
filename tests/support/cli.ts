/**
 * Runs the project's CLIs as subprocesses (deno run -q -A <script>), with a private empty Hub cache so no
 * test depends on what the machine has downloaded.
 */
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const TINY = `${ROOT}tests/fixtures/models/tiny_chat`;
export const TINY_DRAFTER = `${ROOT}tests/fixtures/models/tiny_chat_drafter`;
export const LLAMA = `${ROOT}tests/fixtures/models/llama`;
export const PROMPTS = `${ROOT}tests/fixtures/prompts`;

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

const EMPTY_CACHE = Deno.makeTempDirSync({ prefix: "redrafter-hub-" });

export function cliEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { HF_HUB_CACHE: EMPTY_CACHE, HF_HUB_OFFLINE: "1", NO_COLOR: "", ...extra };
}

/** Runs `deno run -q -A <script> ...args` from the repo root, feeding `stdin` when given. */
export async function runCli(
  script: string,
  args: string[],
  opts: { stdin?: string; env?: Record<string, string> } = {},
): Promise<CliResult> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", "-q", "-A", `${ROOT}${script}`, ...args],
    cwd: ROOT,
    env: cliEnv(opts.env),
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  });
  const child = cmd.spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

export const generate = (args: string[], opts?: { stdin?: string; env?: Record<string, string> }) =>
  runCli("cli/generate.ts", args, opts);

/** True when `script` (util-linux) can give a child a pseudo-terminal. */
export function hasScript(): boolean {
  try {
    return new Deno.Command("script", { args: ["--version"], stdout: "null", stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
}
