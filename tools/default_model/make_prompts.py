#!/usr/bin/env python3
"""Cut the held-out prompt set (models/default/prompts.jsonl) from the corpus's held-out documents.

Recipe (deterministic, no randomness beyond sha256):
  1. Take paragraphs of held-out documents only (never seen by the tokenizer or the model).
  2. A candidate is a run of one or two whole sentences inside a paragraph (two preferred), 60-280
     characters, starting with a capital letter or a quote, with no all-caps words (e.g. "CHAPTER").
  3. Per source, order candidates by sha256 of their text and take them in that order, at most
     PER_DOC from any one document, until the source's quota is met (quotas sum to 100).
Output lines: {"prompt": "...", "source": "moby-dick" | "sotu" | "brown"}.
"""

import argparse
import hashlib
import json
import re

QUOTAS = {"moby-dick": 34, "sotu": 33, "brown": 33}
PER_DOC = 3
MIN_CHARS, MAX_CHARS = 60, 280
SENTENCE_END = re.compile(r'(?<=[.!?])["\u201d\u2019\']?\s+(?=["\u201c\u2018]?[A-Z])')


def candidates(text: str) -> list[str]:
    """Every run of one or two whole sentences inside a paragraph that makes a usable prompt."""
    out = []
    for para in text.split("\n\n"):
        para = " ".join(para.split())
        # Sentence starts: the paragraph start and every boundary SENTENCE_END finds.
        starts = [0] + [m.end() for m in SENTENCE_END.finditer(para)]
        bounds = starts + [len(para)]
        for i in range(len(starts)):
            for n in (2, 1):  # prefer two sentences when they fit
                if i + n >= len(bounds):
                    continue
                cut = para[bounds[i]: bounds[i + n]].strip()
                if (MIN_CHARS <= len(cut) <= MAX_CHARS and cut[-1] in '.!?"\u201d\''
                        and re.match(r'["\u201c]?[A-Z]', cut) and not re.search(r"\b[A-Z]{4,}\b", cut)):
                    out.append(cut)
                    break
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=".cache/default_model/corpus/docs.jsonl")
    ap.add_argument("--out", default="models/default/prompts.jsonl")
    args = ap.parse_args()

    pool: dict[str, list[tuple[str, str, str]]] = {s: [] for s in QUOTAS}  # source -> (hash, doc_id, text)
    with open(args.corpus, encoding="utf-8") as f:
        for doc in map(json.loads, f):
            if doc["split"] != "heldout":
                continue
            for c in candidates(doc["text"]):
                pool[doc["source"]].append((hashlib.sha256(c.encode()).hexdigest(), doc["doc_id"], c))

    prompts = []
    for source, quota in QUOTAS.items():
        per_doc: dict[str, int] = {}
        taken = 0
        for _, doc_id, text in sorted(pool[source]):
            if taken == quota:
                break
            if per_doc.get(doc_id, 0) < PER_DOC:
                per_doc[doc_id] = per_doc.get(doc_id, 0) + 1
                prompts.append({"prompt": text, "source": source})
                taken += 1
        if taken < quota:
            raise SystemExit(f"make_prompts.py: only {taken} prompts for {source}, quota {quota}")
    with open(args.out, "w", encoding="utf-8") as f:
        for p in prompts:
            f.write(json.dumps(p, ensure_ascii=False) + "\n")
    print(f"[prompts] {len(prompts)} prompts from held-out documents -> {args.out}")


if __name__ == "__main__":
    main()
