#!/usr/bin/env python3
"""Prompts for the default drafter's self-distillation, cut from the corpus's TRAIN documents the same way
make_prompts.py cuts the held-out prompt set (one or two whole sentences, 60-280 characters), so the drafter
learns the target's continuations of prompt-shaped contexts (a BOS and a sentence or two), which is what
`deno task generate` and `deno task bench` feed it. Held-out documents are never read.

Output: a conversation .jsonl ({"messages": [user prompt, empty assistant turn]}) that
`python -m redrafter_train --distill-contexts N` turns into chat-template prompts for the target to continue.
"""

import argparse
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_prompts import candidates  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=".cache/default_model/corpus/docs.jsonl")
    ap.add_argument("--out", default=".cache/default_model/distill_prompts.jsonl")
    ap.add_argument("--num", type=int, default=40000, help="at most this many prompts (sha256 order)")
    args = ap.parse_args()

    pool = []
    with open(args.corpus, encoding="utf-8") as f:
        for doc in map(json.loads, f):
            if doc["split"] != "train":
                continue
            for c in candidates(doc["text"]):
                pool.append((hashlib.sha256(c.encode()).hexdigest(), c))
    pool.sort()
    chosen = [c for _, c in pool[: args.num]]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        for c in chosen:
            f.write(json.dumps({"messages": [{"role": "user", "content": c}, {"role": "assistant", "content": ""}]},
                               ensure_ascii=False) + "\n")
    print(f"[distill prompts] {len(chosen)} of {len(pool)} train-split candidates -> {args.out}")


if __name__ == "__main__":
    main()
