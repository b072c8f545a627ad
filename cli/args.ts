/**
 * Command-line flags: a thin wrapper over node:util parseArgs that turns every mistake (unknown flag,
 * missing value, bad number, out-of-range value) into a one-line `UsageError`; `runMain` prints it as
 * `error: ...` and exits with code 2. Other errors print `error: <message>` and exit with code 1.
 *
 * Intended use in a CLI:
 *
 * ```ts
 * import { checkRange, intFlag, parseFlags, runMain } from "./args.ts";
 * await runMain((argv) => {
 *   const { values } = parseFlags(argv, {
 *     model: { type: "string" },
 *     "beam-width": { type: "string" },
 *     "beam-length": { type: "string" },
 *     help: { type: "boolean" },
 *   });
 *   const beamWidth = intFlag(values, "beam-width", 8, { min: 1, max: 64 });
 *   const beamLength = intFlag(values, "beam-length", 5, { min: 2 });
 *   checkRange("beam-length", beamLength, 2, drafter.config.maxBeamLength); // names --beam-length
 *   ...
 * });
 * ```
 *
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util";

/** A mistake in how the command was called: reported as `error: <message>`, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

type Options = NonNullable<ParseArgsConfig["options"]>;
type Parsed<O extends Options, P extends boolean> = ReturnType<
  typeof parseArgs<{ args: string[]; options: O; allowPositionals: P; strict: true }>
>;

/** Flag values as parseArgs returns them. */
export type FlagValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

/**
 * parseArgs in strict mode, with its errors rewritten as one-line UsageErrors. Declare numeric flags as
 * `type: "string"` and read them with intFlag / numberFlag so that bad numbers name the flag.
 */
export function parseFlags<const O extends Options, const P extends boolean = false>(
  argv: string[],
  options: O,
  allowPositionals?: P,
): Parsed<O, P> {
  try {
    return parseArgs({
      args: argv,
      options,
      allowPositionals: allowPositionals ?? false,
      strict: true,
    }) as Parsed<
      O,
      P
    >;
  } catch (e) {
    throw new UsageError(describeParseError(e, options));
  }
}

function describeParseError(e: unknown, options: Options): string {
  const code = (e as { code?: string }).code;
  const message = e instanceof Error ? e.message : String(e);
  const quoted = /'([^']*)'/.exec(message)?.[1] ?? "";
  const known = Object.keys(options).sort().map((k) => `--${k}`).join(", ");
  switch (code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return `unknown flag ${quoted} (known flags: ${known})`;
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
      return `unexpected argument '${quoted}' (this command takes only flags)`;
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE": {
      // quoted is e.g. "-m, --model <value>" or "--model"; keep just the long form.
      const flag = /--[\w-]+/.exec(quoted)?.[0] ?? quoted;
      if (message.includes("argument missing")) return `${flag} needs a value`;
      if (message.includes("ambiguous")) {
        return `${flag} needs a value (got another flag; write ${flag}=VALUE for a value that starts with '-')`;
      }
      if (message.includes("does not take an argument")) return `${flag} takes no value`;
      return `${flag}: ${message.split("\n")[0]}`;
    }
    default:
      return message.split("\n")[0];
  }
}

/** Bounds for a numeric flag, inclusive. */
export interface Range {
  min?: number;
  max?: number;
}

function flagString(values: FlagValues, name: string): string | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  if (typeof v !== "string") throw new UsageError(`--${name} needs a value`);
  return v;
}

/** An integer flag, or `fallback` when absent. Rejects "abc", "1.5", "1e99" and out-of-range values. */
export function intFlag(values: FlagValues, name: string, fallback: number, range: Range = {}): number {
  const s = flagString(values, name);
  if (s === undefined) return fallback;
  return checkRange(name, parseIntStrict(name, s), range.min, range.max);
}

/** A finite number flag, or `fallback` when absent. */
export function numberFlag(values: FlagValues, name: string, fallback: number, range: Range = {}): number {
  const s = flagString(values, name);
  if (s === undefined) return fallback;
  return checkRange(name, parseNumberStrict(name, s), range.min, range.max);
}

/** A comma-separated list of integers (e.g. `--beam-widths 1,2,4,8`), or `fallback` when absent. */
export function intListFlag(
  values: FlagValues,
  name: string,
  fallback: number[],
  range: Range = {},
): number[] {
  const s = flagString(values, name);
  if (s === undefined) return fallback;
  const parts = s.split(",").map((p) => p.trim());
  if (parts.some((p) => p === "")) {
    throw new UsageError(`--${name} must be a comma-separated list of integers, got '${s}'`);
  }
  return parts.map((p) => checkRange(name, parseIntStrict(name, p), range.min, range.max));
}

/** One of a fixed set of strings, or `fallback` when absent. */
export function choiceFlag<const C extends string>(
  values: FlagValues,
  name: string,
  choices: readonly C[],
  fallback: C,
): C {
  const s = flagString(values, name);
  if (s === undefined) return fallback;
  if (!(choices as readonly string[]).includes(s)) {
    throw new UsageError(`--${name} must be one of ${choices.join(", ")}; got '${s}'`);
  }
  return s as C;
}

/** A flag that must be given. */
export function requiredFlag(values: FlagValues, name: string): string {
  const s = flagString(values, name);
  if (s === undefined || s === "") throw new UsageError(`--${name} is required`);
  return s;
}

/** Throws a UsageError naming `--flag` unless min <= value <= max (either bound may be omitted). */
export function checkRange(flag: string, value: number, min?: number, max?: number): number {
  const tooLow = min !== undefined && value < min;
  const tooHigh = max !== undefined && value > max;
  if (tooLow || tooHigh) {
    const want = min !== undefined && max !== undefined
      ? `between ${min} and ${max}`
      : min !== undefined
      ? `at least ${min}`
      : `at most ${max}`;
    throw new UsageError(`--${flag} must be ${want}, got ${value}`);
  }
  return value;
}

function parseIntStrict(name: string, s: string): number {
  if (!/^[+-]?\d+$/.test(s.trim())) throw new UsageError(`--${name} must be an integer, got '${s}'`);
  const n = Number(s);
  if (!Number.isSafeInteger(n)) throw new UsageError(`--${name} is too large: '${s}'`);
  return n;
}

function parseNumberStrict(name: string, s: string): number {
  const n = s.trim() === "" ? NaN : Number(s);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got '${s}'`);
  return n;
}

/** Where runMain writes its one-line errors; tests replace it. */
export interface ErrorSink {
  error(line: string): void;
  exit(code: number): void;
}

const processSink: ErrorSink = {
  error: (line) => console.error(line),
  exit: (code) => Deno.exit(code),
};

/**
 * Runs a CLI's main function: UsageError -> `error: msg` and exit 2; any other error -> `error: msg` and
 * exit 1 (set REDRAFTER_DEBUG=1 for the stack); a returned number is the exit code.
 */
export async function runMain(
  main: (argv: string[]) => Promise<number | void> | number | void,
  argv: string[] = Deno.args,
  sink: ErrorSink = processSink,
): Promise<void> {
  let code = 0;
  try {
    code = (await main(argv)) ?? 0;
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    sink.error(`error: ${e instanceof UsageError ? message.split("\n")[0] : message}`);
    if (e instanceof Error && e.stack && debugEnabled()) sink.error(e.stack);
    code = e instanceof UsageError ? 2 : 1;
  }
  if (code !== 0) sink.exit(code);
}

function debugEnabled(): boolean {
  try {
    return Deno.env.get("REDRAFTER_DEBUG") === "1";
  } catch {
    return false; // no --allow-env
  }
}
