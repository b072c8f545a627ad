/**
 * Worker threads for the WASM matmul: a matmul's output rows are split between the calling thread and
 * `threads - 1` workers that run the same kernel over the same shared WebAssembly memory. Every output
 * element is still computed by one kernel call in its fixed order, so results are bitwise those of one
 * thread, whichever thread computes which rows.
 *
 * Hand-off, per worker, through a small Int32Array over a SharedArrayBuffer:
 *   the caller writes the job's arguments, bumps SEQ, sets STATE = POSTED and notifies;
 *   the worker (spinning briefly after its last job, then sleeping on SEQ) claims the job with a
 *   compare-exchange POSTED -> TAKEN, reads SEQ, runs the job and stores DONE = that SEQ;
 *   the caller, once its own rows are done, tries the same compare-exchange: if the worker has not claimed
 *   the job yet (still starting, or descheduled), the caller runs those rows itself instead of waiting;
 *   park() (end of a forward pass or drafter step) sends spinning workers to sleep at once, so that the
 *   target's and the drafter's workers do not poll while the other model computes.
 * Workers are unref'd: a process that never disposes its kernels still exits.
 *
 * @module
 */

/** What start() needs of a worker, node's or the web's. */
interface MatmulWorker {
  postMessage(message: unknown): void;
  terminate(): unknown;
}

/**
 * How this runtime starts a worker: node:worker_threads (Deno, Node; unref'd, so a process that never
 * disposes its kernels still exits), else the web Worker (browsers), else none (then every matmul runs on
 * the calling thread). Resolved once, at module load, without a static import of a node: module.
 */
let makeWorker: ((url: URL, onError: () => void) => MatmulWorker) | null | undefined;
/** Deno, Node and Bun have node:worker_threads; a browser would only log a failed fetch of it. */
const hasNodeWorkers = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined" ||
  typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === "string";
const workerKind = (hasNodeWorkers ? import("node:worker_threads") : Promise.reject(new Error("browser")))
  .then(
    (m) => {
      makeWorker = (url, onError) => {
        const w = new m.Worker(url);
        w.unref();
        w.on("error", onError); // e.g. the module cannot load: without a listener it would end the process
        return w;
      };
    },
    () => {
      type WebWorker = MatmulWorker & { onerror: ((e: Event) => void) | null };
      const Web = (globalThis as { Worker?: new (url: URL, o: { type: "module" }) => WebWorker }).Worker;
      makeWorker = Web
        ? (url, onError) => {
          const w = new Web(url, { type: "module" });
          w.onerror = (e) => {
            e.preventDefault();
            onError();
          };
          return w;
        }
        : null;
    },
  );

/**
 * The worker module beside this one: matmul_worker.ts from source, matmul_worker.js next to a bundle
 * (tools/build_web.ts writes it there).
 */
const WORKER_URL = new URL(
  import.meta.url.endsWith(".ts") ? "./matmul_worker.ts" : "./matmul_worker.js",
  import.meta.url,
);

/**
 * Whether this thread may block in Atomics.wait: a browser's main thread may not (it throws), so the caller
 * spins there instead.
 */
let canWait = true;

/** How long the caller waits for a claimed job before it gives up on the workers and computes it. */
const CLAIMED_JOB_TIMEOUT_MS = 10_000;

/** Resolves once the worker kind is known (matmuls before that run on one thread). */
export function workersReady(): Promise<void> {
  return workerKind;
}

/** Control block slots. */
export const SEQ = 0, STATE = 1, DONE = 2, KIND = 3, ARGS = 4; // ARGS..ARGS+7: x, w, b, y, T, n, m, ys
/** Set by park(): the worker stops spinning and sleeps until the next job. */
export const PARK = 12;
/** The seq of a job whose kernel call threw in the worker. */
export const FAILED = 13;
export const CTRL_INTS = 16;
/** STATE values (0 before the first job). */
export const POSTED = 1, TAKEN = 2;
/** SEQ value that stops a worker. */
export const STOP = -1;
/**
 * KIND values: the kernel to run (float32 rows, bf16 rows, int8 rows, float32 row pairs, bf16 row pairs;
 * attention heads: kernels/attention.wat's attend_job, on the attention arena's memory).
 */
export const KIND_F32 = 0, KIND_BF16 = 1, KIND_Q8 = 2, KIND_P2 = 3, KIND_BF16P2 = 4, KIND_ATTEND = 5;
/** KIND value of kernels/q7.wat's matmul_q7 (a module of its own: relaxed SIMD), where the runtime has it. */
export const KIND_Q7 = 6;

/** (x, w, b, y, T, n, m, ys) byte offsets and sizes, as kernels/matmul.wat takes them. */
export type Kernel = (
  x: number,
  w: number,
  b: number,
  y: number,
  T: number,
  n: number,
  m: number,
  ys: number,
) => void;

/** kernel(...) on the 8 arguments a control block holds (the worker's job, or the caller taking it back). */
export function runPosted(kernel: Kernel, c: Int32Array): void {
  kernel(c[ARGS], c[ARGS + 1], c[ARGS + 2], c[ARGS + 3], c[ARGS + 4], c[ARGS + 5], c[ARGS + 6], c[ARGS + 7]);
}

/** Multiply-adds below which a call is not worth splitting (a hand-off costs a few microseconds). */
const MIN_SPLIT_MACS = 1 << 16;

export class MatmulThreads {
  private readonly ctrl: Int32Array[] = [];
  private readonly workers: MatmulWorker[] = [];
  /** No workers can be started here (or starting them failed): every call runs on the caller's thread. */
  private disabled = false;
  /** Calls split over threads so far. */
  splitCalls = 0;
  /** Jobs a worker ran (claimed before the caller could take them back) and finished without failing. */
  workerJobs = 0;
  private seq = 0;

  /** The shared-memory attention kernels and their arena, for the workers to instantiate (setAttention). */
  private attention?: { module: WebAssembly.Module; memory: WebAssembly.Memory };

  /**
   * `threads - 1` workers over `memory`, each instantiating `module` (the shared-memory matmul); they start
   * with the first call big enough to split, so small models never pay for them.
   */
  constructor(
    readonly threads: number,
    private readonly module: WebAssembly.Module,
    private readonly memory: WebAssembly.Memory,
    /** The shared-memory matmul_q7 module (kernels/q7.wat), for KIND_Q7 jobs; null where relaxed SIMD is missing. */
    private readonly q7Module: WebAssembly.Module | null = null,
  ) {}

  /**
   * Have the workers also instantiate the shared-memory attention `module` over `memory` (kernels/attention.ts'
   * arena), for KIND_ATTEND jobs. Only before they start: false once they run (or cannot).
   */
  setAttention(module: WebAssembly.Module, memory: WebAssembly.Memory): boolean {
    if (this.workers.length > 0 || this.disabled) return false;
    this.attention = { module, memory };
    return true;
  }

  /** Start the workers; false when they cannot run (yet, or here). */
  private start(): boolean {
    if (makeWorker === undefined) return false; // still resolving: this call runs on one thread
    if (makeWorker === null) {
      this.disabled = true;
      return false;
    }
    try {
      for (let i = 1; i < this.threads; i++) {
        const ctrl = new Int32Array(new SharedArrayBuffer(CTRL_INTS * 4));
        const w = makeWorker(WORKER_URL, () => {
          this.disabled = true; // a worker failed: from the next call on, one thread
        });
        w.postMessage({
          module: this.module,
          memory: this.memory,
          q7Module: this.q7Module ?? undefined,
          attentionModule: this.attention?.module,
          attentionMemory: this.attention?.memory,
          ctrl: ctrl.buffer,
        });
        this.ctrl.push(ctrl);
        this.workers.push(w);
      }
      return true;
    } catch {
      this.dispose(); // e.g. a host without workers (Deno Deploy): one thread from now on
      this.disabled = true;
      return false;
    }
  }

  /**
   * kernels[kind](x, w, b, y, T, n, m, ys) with its m output rows split over up to `threads` threads, in
   * ranges of a multiple of 4 rows (the kernels' register block); `wRow` is the bytes per weight row, `bRow`
   * the bytes per bias element (b = 0 means no bias). The same arguments as the kernel, so a call that is
   * not worth splitting is just the kernel.
   */
  run(
    kernels: Kernel[],
    kind: number,
    x: number,
    w: number,
    b: number,
    y: number,
    T: number,
    n: number,
    m: number,
    ys: number,
    wRow: number,
    bRow = 4,
  ): void {
    const parts = Math.min(this.threads, m >> 2);
    if (parts < 2 || T * n * m < MIN_SPLIT_MACS || !this.ready()) {
      kernels[kind](x, w, b, y, T, n, m, ys);
      return;
    }
    const per = ((Math.ceil(m / parts) + 3) >> 2) << 2;
    const jobs: number[][] = [];
    for (let o0 = 0; o0 < m; o0 += per) {
      jobs.push([x, w + o0 * wRow, b === 0 ? 0 : b + o0 * bRow, y + o0 * 4, T, n, Math.min(per, m - o0), ys]);
    }
    this.runParts(kernels, kind, jobs);
  }

  /** Whether a call may be split now: workers running, or started by this call. */
  ready(): boolean {
    return !this.disabled && (this.workers.length > 0 || this.start());
  }

  /**
   * kernels[kind](...jobs[i]) for every i, at once: jobs[0] on the calling thread, the others (at most
   * threads - 1) on the workers. Each job must write its own outputs, so that the order they run in
   * changes nothing; a job a worker has not claimed when the caller is done is run by the caller.
   */
  runParts(kernels: Kernel[], kind: number, jobs: number[][]): void {
    const kernel = kernels[kind];
    if (jobs.length > this.threads) {
      throw new Error(`threads: ${jobs.length} jobs for ${this.threads} threads`);
    }
    if (jobs.length < 2 || !this.ready()) {
      for (const j of jobs) kernel(j[0], j[1], j[2], j[3], j[4], j[5], j[6], j[7]);
      return;
    }
    const seq = ++this.seq;
    this.splitCalls++;
    const posted: number[] = [];
    for (let p = 1; p < jobs.length; p++) {
      const c = this.ctrl[p - 1], j = jobs[p];
      c[KIND] = kind;
      for (let a = 0; a < 8; a++) c[ARGS + a] = j[a];
      // SEQ before STATE: a worker that claims the job (STATE) then reads SEQ sees this job's number.
      Atomics.store(c, SEQ, seq);
      Atomics.store(c, STATE, POSTED);
      Atomics.notify(c, SEQ);
      posted.push(p - 1);
    }
    const j0 = jobs[0];
    kernel(j0[0], j0[1], j0[2], j0[3], j0[4], j0[5], j0[6], j0[7]);
    const own = (c: Int32Array) => runPosted(kernel, c);
    for (const i of posted) {
      const c = this.ctrl[i];
      if (Atomics.compareExchange(c, STATE, POSTED, TAKEN) === POSTED) {
        own(c); // not claimed yet: do it here rather than wait for a worker that is not running
        continue;
      }
      let spins = 0, failed = false;
      const t0 = performance.now();
      while (Atomics.load(c, DONE) !== seq) {
        if (++spins <= 4096) continue;
        if (canWait) {
          try {
            Atomics.wait(c, DONE, Atomics.load(c, DONE), 1);
          } catch {
            canWait = false; // a browser's main thread: keep spinning
          }
        }
        if (performance.now() - t0 > CLAIMED_JOB_TIMEOUT_MS) {
          // The worker died holding the job: compute it here (same bits) and stop using workers.
          this.disabled = true;
          own(c);
          failed = true;
          break;
        }
      }
      if (!failed && Atomics.load(c, FAILED) === seq) {
        this.disabled = true;
        own(c);
        failed = true;
      }
      if (!failed) this.workerJobs++;
    }
  }

  /**
   * Tell spinning workers to sleep now instead of polling for a while: the caller is done with this
   * kernel for a bit (a forward pass or a drafter step ended), and another model's threads may need the
   * cores. The next job wakes them (a futex wake, microseconds).
   */
  park(): void {
    for (const c of this.ctrl) Atomics.store(c, PARK, 1);
  }

  /** Stop the workers; later calls run on the calling thread. */
  dispose(): void {
    this.disabled = true;
    for (const c of this.ctrl) {
      Atomics.store(c, SEQ, STOP);
      Atomics.notify(c, SEQ);
    }
    for (const w of this.workers) void w.terminate();
    this.workers.length = 0;
    this.ctrl.length = 0;
  }
}
