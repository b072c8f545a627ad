/**
 * Flag parsing for the measurement tools in tools/: node:util parseArgs in strict mode over Deno.args, with
 * `--help` printing the tool's own header comment (its usage) and a bad flag reported in one line that
 * names it (cli/args.ts' wording), exit code 2, instead of a stack trace.
 *
 * @module
 */
import type { parseArgs, ParseArgsConfig } from "node:util";
import { parseFlags, UsageError } from "../cli/args.ts";

type Parsed<T extends ParseArgsConfig> = ReturnType<typeof parseArgs<T & { strict: true }>>;

/** The leading `/** ... *\/` comment of a module's source, without its `*` margins and `@module` tag. */
export function headerComment(source: string): string {
  const m = /^\s*\/\*\*([\s\S]*?)\*\//.exec(source);
  if (!m) return "";
  return m[1].split("\n").map((l) => l.replace(/^\s*\* ?/, "")).filter((l) => !l.startsWith("@module"))
    .join("\n").trim();
}

/**
 * parseArgs(config) over Deno.args for the tool at `moduleUrl` (pass import.meta.url). `--help` or `-h`
 * prints the tool's header comment and exits 0; a flag it does not declare, or one missing its value,
 * prints `error: ...` naming the flag and exits 2.
 */
export function toolArgs<const T extends ParseArgsConfig>(moduleUrl: string, config: T): Parsed<T> {
  const args = [...(config.args ?? Deno.args)];
  if (args.includes("--help") || args.includes("-h")) {
    let usage = "";
    try {
      usage = headerComment(Deno.readTextFileSync(new URL(moduleUrl)));
    } catch { /* not readable (no --allow-read): name the file instead */ }
    console.log(usage || `see the header comment of ${moduleUrl}`);
    Deno.exit(0);
  }
  return toolFlag(() =>
    parseFlags(args, config.options ?? {}, config.allowPositionals ?? false) as unknown as Parsed<T>
  );
}

/**
 * read() with a UsageError (cli/args.ts' intFlag, choiceFlag, ...) reported as `error: ...` and exit code 2,
 * as toolArgs reports a bad flag.
 */
export function toolFlag<V>(read: () => V): V {
  try {
    return read();
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`error: ${e.message} (--help for usage)`);
    Deno.exit(2);
  }
}
