/**
 * For the thread tests: make a kernels call whose result a worker thread computed part of. The caller of a
 * split call runs the parts no worker has claimed by the time its own part is done, and workers take a
 * while to start (longer under `deno test`), so a test that calls once may compare results the caller
 * computed alone.
 *
 * @module
 */
import type { Kernels } from "../../kernels/mod.ts";

/** Run `call` until a worker thread ran part of one run of it (at most 20 s); the last run is that one. */
export async function withWorkers(k: Kernels, call: () => void): Promise<void> {
  const t0 = performance.now();
  for (;;) {
    const before = k.workerJobs;
    call();
    if (k.workerJobs > before) return;
    if (performance.now() - t0 > 20_000) throw new Error("no worker thread ran a part of the call in 20 s");
    await new Promise((r) => setTimeout(r, 1));
  }
}
