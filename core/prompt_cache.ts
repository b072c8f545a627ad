/**
 * A batch-1 target session kept across generation calls (chat turns), with the token ids its KV cache
 * holds. A call whose prompt starts with those ids (a chat's next turn re-renders the whole history) keeps
 * the longest common prefix and only feeds the rest, instead of re-reading the conversation each turn.
 *
 * The cache holds committed tokens only: the prompt, then every token fed to the target and kept. The last
 * token a call emitted was never fed, so it is not cached; the next prompt feeds it (or whatever the
 * template renders in its place) like any other uncached token.
 *
 * @module
 */
import type { TargetModel, TargetSession } from "./types.ts";

/** A kept batch-1 session and the ids in its KV cache; pass it as the `cache` option of a generation call. */
export class PromptCache {
  /** The kept session (batch 1), or null before the first call and after a failed one. */
  session: TargetSession | null = null;
  /** Token ids held by the session's KV cache, in order (its committed length). */
  ids: number[] = [];
  /** Prompt tokens the latest call found in the cache (not fed again). */
  reused = 0;

  /** Free the session. The cache can be used again (it starts empty). */
  dispose(): void {
    this.session?.dispose();
    this.session = null;
    this.ids = [];
    this.reused = 0;
  }
}

/**
 * The session for a call over `prompt` that needs `need` slots: the cached one, truncated to the longest
 * common prefix of its ids and the prompt (at most prompt.length - 1 tokens: the last prompt token is
 * always fed, for its logits), or a fresh one with room to grow when the cached one is too small or none
 * is cached. Returns the session and `start`, the number of prompt tokens already in it.
 */
export function openFromCache(
  target: TargetModel,
  cache: PromptCache,
  prompt: ArrayLike<number>,
  need: number,
): { session: TargetSession; start: number } {
  const s = cache.session;
  if (s && s.capacity >= need && s.lengths()[0] === cache.ids.length) {
    const max = Math.min(cache.ids.length, prompt.length - 1);
    let start = 0;
    while (start < max && cache.ids[start] === prompt[start]) start++;
    s.truncate(0, start);
    cache.ids.length = start;
    cache.reused = start;
    return { session: s, start };
  }
  cache.dispose();
  // Headroom so that a growing conversation does not need a new session (and a full re-read) every turn.
  const session = target.createSession(1, need + Math.max(256, need));
  cache.session = session;
  cache.ids = [];
  cache.reused = 0;
  return { session, start: 0 };
}
