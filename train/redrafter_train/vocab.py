"""draft_vocab.json: the target's tokens ranked by how often the drafter is trained to predict them.

The TypeScript drafter can cut its LM head to the N most frequent tokens (drafter/vocab.ts, `--draft-vocab`);
this file is the ranking it reads. The trainer counts its own labels (the target's continuations under
self-distillation, assistant turns otherwise), which is the distribution the drafter drafts from.
"""
import json
import os

import torch

from .model import IGNORE_INDEX

DRAFT_VOCAB_FILE = "draft_vocab.json"
MIN_DRAFT_VOCAB = 50  # the top-50 warp needs 50 candidates (drafter/vocab.ts MIN_DRAFT_VOCAB)


def rank_tokens(labels: torch.Tensor, vocab: int) -> tuple[list[int], torch.Tensor]:
    """Token ids most counted first (ties and unseen ids in id order), and the counts."""
    seen = labels[labels != IGNORE_INDEX].flatten()
    counts = torch.bincount(seen, minlength=vocab)[:vocab]
    # Stable sort by descending count keeps ties in ascending id.
    order = torch.sort(-counts, stable=True).indices
    return order.tolist(), counts


def default_size(counts: torch.Tensor, coverage: float, step: int = 256) -> int | None:
    """The smallest multiple of `step` (at least MIN_DRAFT_VOCAB) whose most frequent tokens cover `coverage`
    of the counted labels, or None when that is more than half the vocabulary (not worth a cut) or nothing
    was counted."""
    total = int(counts.sum())
    vocab = counts.numel()
    if total == 0 or coverage <= 0:
        return None
    cum = torch.cumsum(torch.sort(counts, descending=True).values, 0)
    need = int(torch.searchsorted(cum, torch.tensor(coverage * total, dtype=cum.dtype)).item()) + 1
    n = max(MIN_DRAFT_VOCAB, -(-need // step) * step)
    return n if n <= vocab // 2 else None


def write_draft_vocab(labels: torch.Tensor, vocab: int, out_dir: str, coverage: float) -> dict:
    """Write <out_dir>/draft_vocab.json; returns what was written (without the ranking)."""
    ranked, counts = rank_tokens(labels, vocab)
    size = default_size(counts, coverage)
    info = {"labels_counted": int(counts.sum()), "distinct_tokens_seen": int((counts > 0).sum()),
            "coverage_target": coverage}
    out = ({"default_size": size} if size is not None else {}) | {"ranked_ids": ranked} | info
    with open(os.path.join(out_dir, DRAFT_VOCAB_FILE), "w") as f:
        json.dump(out, f)
        f.write("\n")
    return {"default_size": size, **info}
