/**
 * Terminal output for the CLIs: a progress bar on stderr, colours that switch themselves off, and an aligned
 * table for metrics.
 *
 * - The progress bar redraws one line (at most ~10 times a second) when stderr is a terminal; otherwise it
 *   writes a plain line each 10% (or, with no known total, each 30 s) and one when finished, so logs stay short.
 * - Colours are on only when the stream is a terminal, NO_COLOR is unset or empty, and --no-color was not given.
 *
 * Intended use:
 *
 * ```ts
 * import { colors, progressBar, renderTable, stderrSink } from "./term.ts";
 * const c = colors({ noColor: values["no-color"] });
 * const bar = progressBar({ label: "prompts", total: prompts.length });
 * for (...) { ...; bar.tick(); }
 * bar.finish();
 * console.log(renderTable(["metric", "value"], [["tokens/s", 41.2], ["speedup", "2.31x"]]));
 * console.error(c.red("error: ..."));
 * // Hub downloads: resolveModel(spec, { progress: (label, total) => progressBar({ label, total, unit: "bytes" }) })
 * ```
 *
 * @module
 */

/** Where terminal output goes: a writer plus whether it is a TTY and how wide. */
export interface Sink {
  write(text: string): void;
  isTTY: boolean;
  columns: number;
}

/** stderr as a Sink (columns from the terminal when it is one). */
export function stderrSink(): Sink {
  const encoder = new TextEncoder();
  const isTTY = Deno.stderr.isTerminal();
  let columns = 80;
  if (isTTY) {
    try {
      columns = Deno.consoleSize().columns;
    } catch { /* not a console after all */ }
  }
  return { write: (text) => void Deno.stderr.writeSync(encoder.encode(text)), isTTY, columns };
}

// ---------------------------------------------------------------------------------------------------------
// Colours

export interface Colors {
  enabled: boolean;
  bold(s: string): string;
  dim(s: string): string;
  red(s: string): string;
  green(s: string): string;
  yellow(s: string): string;
  cyan(s: string): string;
}

function envNoColor(): boolean {
  try {
    const v = Deno.env.get("NO_COLOR");
    return v !== undefined && v !== ""; // https://no-color.org: present and not empty
  } catch {
    return false; // no --allow-env: keep colour decisions to the TTY check
  }
}

/** Whether to colour: off for --no-color, NO_COLOR, or a stream that is not a terminal. */
export function colorEnabled(opts: { noColor?: boolean; isTTY?: boolean } = {}): boolean {
  if (opts.noColor) return false;
  if (envNoColor()) return false;
  return opts.isTTY ?? Deno.stderr.isTerminal();
}

/** Colour helpers; identity functions when colour is off. Pass `enabled` to decide yourself. */
export function colors(opts: { noColor?: boolean; isTTY?: boolean; enabled?: boolean } = {}): Colors {
  const enabled = opts.enabled ?? colorEnabled(opts);
  const wrap = (open: number, close: number) => (s: string) =>
    enabled ? `\x1b[${open}m${s}\x1b[${close}m` : s;
  return {
    enabled,
    bold: wrap(1, 22),
    dim: wrap(2, 22),
    red: wrap(31, 39),
    green: wrap(32, 39),
    yellow: wrap(33, 39),
    cyan: wrap(36, 39),
  };
}

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;

/** The string without ANSI escape sequences (colours, clear-line). */
export function stripAnsi(s: string): string {
  return s.replace(ANSI, "");
}

/** Printed width of a string: ANSI escape sequences take no columns. */
export function visibleLength(s: string): number {
  return [...stripAnsi(s)].length;
}

// ---------------------------------------------------------------------------------------------------------
// Formatting

/** 1536 -> "1.5 KiB". */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${n.toFixed(n >= 100 ? 0 : 1)} ${units[i]}`;
}

/** Seconds -> "45s", "3m05s", "1h02m". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

// ---------------------------------------------------------------------------------------------------------
// Progress bar

export interface ProgressOptions {
  label: string;
  /** Total units, or null when unknown (e.g. a download without Content-Length). */
  total: number | null;
  /** "bytes" formats amounts and rates as KiB/MiB; "items" as plain counts. */
  unit?: "bytes" | "items";
  /** Amount already done at the start (a resumed download); not counted in the rate. */
  initial?: number;
  sink?: Sink;
  /** Milliseconds clock; tests pass a fake one. */
  now?: () => number;
}

export interface Progress {
  /** Sets the amount done so far. */
  update(done: number): void;
  /** Adds n (default 1) to the amount done. */
  tick(n?: number): void;
  /** Draws the final state and ends the line. */
  finish(): void;
}

/** A progress bar on stderr (see the module doc for TTY vs plain output). */
export function progressBar(opts: ProgressOptions): Progress {
  const sink = opts.sink ?? stderrSink();
  const now = opts.now ?? (() => performance.now());
  const unit = opts.unit ?? "items";
  const total = opts.total !== null && opts.total > 0 ? opts.total : null;
  const initial = opts.initial ?? 0;
  const start = now();
  let done = initial;
  let lastDraw = -Infinity;
  let lastPlainStep = total !== null ? Math.floor((10 * initial) / total) : 0;
  let lastPlainTime = start;
  let finished = false;
  const amount = (n: number) => unit === "bytes" ? formatBytes(n) : String(n);

  function stats(): string {
    const elapsed = (now() - start) / 1000;
    const rate = elapsed > 0 ? (done - initial) / elapsed : 0;
    const rateText = unit === "bytes" ? `${formatBytes(rate)}/s` : `${rate.toFixed(rate >= 10 ? 0 : 1)}/s`;
    if (total === null) return `${amount(done)} ${rateText}`;
    const eta = rate > 0 ? formatDuration((total - done) / rate) : "?";
    return `${amount(done)}/${amount(total)} ${rateText} eta ${finished ? "0s" : eta}`;
  }

  function percent(): string {
    return total === null ? "" : `${Math.floor((100 * Math.min(done, total)) / total)}%`;
  }

  function drawTTY(): void {
    const right = ` ${percent().padStart(4)} ${stats()}`;
    const label = opts.label.length > 30 ? "…" + opts.label.slice(-29) : opts.label;
    const width = Math.max(10, Math.min(40, sink.columns - label.length - right.length - 4));
    let bar = "";
    if (total !== null) {
      const filled = Math.round((width * Math.min(done, total)) / total);
      bar = ` [${"#".repeat(filled)}${"-".repeat(width - filled)}]`;
    }
    // \r + clear-to-end-of-line so that a shorter line leaves no leftovers.
    sink.write(`\r\x1b[2K${label}${bar}${right}`);
  }

  function drawPlain(): void {
    sink.write(`${opts.label}: ${total === null ? "" : percent() + " "}${stats()}\n`);
  }

  function maybeDraw(): void {
    const t = now();
    if (sink.isTTY) {
      if (t - lastDraw >= 100) {
        lastDraw = t;
        drawTTY();
      }
    } else if (total !== null) {
      const step = Math.floor((10 * Math.min(done, total)) / total);
      if (step > lastPlainStep && step < 10) {
        lastPlainStep = step;
        drawPlain();
      }
    } else if (t - lastPlainTime >= 30_000) {
      lastPlainTime = t;
      drawPlain();
    }
  }

  if (sink.isTTY) maybeDraw();
  return {
    update(n: number) {
      if (finished) return;
      done = n;
      maybeDraw();
    },
    tick(n = 1) {
      if (finished) return;
      done += n;
      maybeDraw();
    },
    finish() {
      if (finished) return;
      finished = true;
      if (sink.isTTY) {
        drawTTY();
        sink.write("\n");
      } else {
        drawPlain();
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Tables

export type Cell = string | number | null | undefined;

export interface TableOptions {
  /** Per column; default: right for columns whose cells are all numbers, left otherwise. */
  align?: ("left" | "right")[];
  /** Decimals for numbers in a column holding any fraction (default 3); integer-only columns print as is. */
  digits?: number;
}

function formatCell(c: Cell, digits: number | null): string {
  if (c === null || c === undefined) return "-";
  if (typeof c === "number") {
    if (Number.isNaN(c)) return "nan";
    return digits === null ? String(c) : c.toFixed(digits);
  }
  return c;
}

/**
 * Renders rows under a header with aligned columns, two spaces apart, and a dashed rule:
 *
 * ```
 * metric         value
 * -------------  -----
 * tokens/s       41.20
 * ```
 */
export function renderTable(headers: string[], rows: Cell[][], opts: TableOptions = {}): string {
  const digits = opts.digits ?? 3;
  for (const [i, row] of rows.entries()) {
    if (row.length !== headers.length) {
      throw new Error(`renderTable: row ${i} has ${row.length} cells, header has ${headers.length}`);
    }
  }
  // A column with any fractional number shows all its numbers with `digits` decimals, so points line up.
  const fractional = headers.map((_, j) =>
    rows.some((r) => typeof r[j] === "number" && !Number.isInteger(r[j]))
  );
  const text = rows.map((r) => r.map((c, j) => formatCell(c, fractional[j] ? digits : null)));
  const align = headers.map((_, j) =>
    opts.align?.[j] ??
      (rows.length > 0 && rows.every((r) => typeof r[j] === "number" || r[j] === null || r[j] === undefined)
        ? "right"
        : "left")
  );
  const widths = headers.map((h, j) => Math.max(visibleLength(h), ...text.map((r) => visibleLength(r[j]))));
  const pad = (s: string, j: number) => {
    const fill = " ".repeat(widths[j] - visibleLength(s));
    return align[j] === "right" ? fill + s : s + fill;
  };
  const line = (cells: string[]) => cells.map(pad).join("  ").trimEnd();
  return [line(headers), widths.map((w) => "-".repeat(w)).join("  "), ...text.map(line)].join("\n");
}
