/**
 * A matmul worker thread of kernels/threads.ts: instantiates the shared-memory matmul over the caller's
 * memory (and the shared-memory attention kernels over the attention arena, when there is one) and runs the
 * row ranges and attention head ranges it is handed, until told to stop.
 *
 * @module
 */
import {
  DONE,
  FAILED,
  type Kernel,
  KIND,
  KIND_ATTEND,
  KIND_Q7,
  PARK,
  POSTED,
  runPosted,
  SEQ,
  STATE,
  STOP,
  TAKEN,
} from "./threads.ts";

/** How long a worker keeps polling for the next job before it sleeps (the next matmul of a forward pass
 * follows within microseconds; between generation steps it sleeps). */
const SPIN_MS = 0.3;

interface Job {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  /** The shared-memory matmul_q7 module (kernels/q7.wat), where the runtime has relaxed SIMD. */
  q7Module?: WebAssembly.Module;
  /** The shared-memory attention kernels and the arena they run over (kernels/attention.ts), if any. */
  attentionModule?: WebAssembly.Module;
  attentionMemory?: WebAssembly.Memory;
  ctrl: SharedArrayBuffer;
}

/** The first message: from node:worker_threads' parent port, or a web worker's own onmessage. */
function onStart(handler: (d: Job) => void): void {
  import("node:worker_threads").then((m) => m.parentPort).catch(() => null).then((port) => {
    if (port) port.once("message", handler);
    else (globalThis as { onmessage?: (e: MessageEvent<Job>) => void }).onmessage = (e) => handler(e.data);
  });
}

onStart(
  (d: Job) => {
    const inst = new WebAssembly.Instance(d.module, { env: { memory: d.memory } });
    const kernels = [
      inst.exports.matmul as Kernel,
      inst.exports.matmul_bf16 as Kernel,
      inst.exports.matmul_q8 as Kernel,
      inst.exports.matmul_p2 as Kernel,
      inst.exports.matmul_bf16p2 as Kernel,
    ];
    if (d.q7Module) {
      const q7 = new WebAssembly.Instance(d.q7Module, { env: { memory: d.memory } });
      kernels[KIND_Q7] = q7.exports.matmul_q7 as Kernel;
    }
    if (d.attentionModule && d.attentionMemory) {
      const att = new WebAssembly.Instance(d.attentionModule, { env: { memory: d.attentionMemory } });
      kernels[KIND_ATTEND] = att.exports.attend_job as Kernel;
    }
    const c = new Int32Array(d.ctrl);
    let seen = 0;
    for (;;) {
      let seq = Atomics.load(c, SEQ);
      if (seq === seen) {
        const t0 = performance.now();
        let i = 0;
        while ((seq = Atomics.load(c, SEQ)) === seen) {
          if (Atomics.load(c, PARK) === 1 || ((++i & 255) === 0 && performance.now() - t0 > SPIN_MS)) {
            Atomics.store(c, PARK, 0);
            Atomics.wait(c, SEQ, seen);
          }
        }
      }
      if (seq === STOP) return;
      seen = seq;
      if (Atomics.compareExchange(c, STATE, POSTED, TAKEN) !== POSTED) continue; // not posted yet, or the caller ran it
      // Claimed: the caller cannot post another job before this one is done, so SEQ is this job's number.
      seen = Atomics.load(c, SEQ);
      try {
        runPosted(kernels[c[KIND]], c);
      } catch {
        Atomics.store(c, FAILED, seen); // the caller computes these rows itself (and reports any error)
      }
      Atomics.store(c, DONE, seen);
      Atomics.notify(c, DONE);
    }
  },
);
