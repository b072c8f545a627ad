"""Drafter training loss (reference train/loss.py) and the memory-lean form the trainer uses.

Step j (0-based) of the teacher-forced forward at position t predicts token t+j+2, so step j's logits
[:, :-(j+2)] pair with labels[:, j+2:]. The loss is the sum over steps, with equal weights, of the
cross-entropy averaged over non-ignored labels.

Soft targets (an extension, off by default): the target's own distribution over token t+j+2 is its LM head on
its hidden state at t+j+1, so the trainer can also fit the drafter to that whole distribution (knowledge
distillation, as DistillSpec does for draft models): each row's loss becomes
(1 - w) * CE(label) + w * T^2 * CE(softmax(teacher / T), student / T), whose gradient is that of the KL
divergence from the teacher's tempered distribution. The labels keep the greedy top-1 the drafter is verified
against; the soft part carries the rest of the distribution, which is what exact sampling accepts.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint as activation_checkpoint

from .model import IGNORE_INDEX


def drafter_loss(logits: torch.Tensor, labels: torch.Tensor, next_n: int, top_k: int):
    """The reference formula. logits [K, B, T, V], labels [B, T] -> (loss, {name: float})."""
    loss, log = 0.0, {}
    for i in range(next_n):
        logits_i = logits[i, :, : -(i + 2)].reshape(-1, logits.shape[-1])
        labels_i = labels[..., i + 2:].reshape(-1).to(logits_i.device)
        loss_i = F.cross_entropy(logits_i, labels_i, ignore_index=IGNORE_INDEX)
        loss = loss + loss_i
        keep = labels_i.ne(IGNORE_INDEX)
        for k in range(1, top_k + 1):
            hit = logits_i[keep].topk(k, dim=-1).indices.eq(labels_i[keep].unsqueeze(-1)).any(-1)
            log[f"redrafter{i}_top{k}"] = hit.float().mean().item()
        log[f"redrafter{i}_loss"] = loss_i.item()
    return loss, log


def _head_ce(head, x: torch.Tensor, y: torch.Tensor, top_k: int, teacher_head=None, teacher_x=None,
             soft_weight: float = 0.0, soft_temperature: float = 1.0):
    logits = head(x).float()
    ce = F.cross_entropy(logits, y, reduction="sum")
    if teacher_head is not None and soft_weight > 0:
        with torch.no_grad():
            p = (teacher_head(teacher_x).float() / soft_temperature).softmax(-1)
        soft = -(p * (logits / soft_temperature).log_softmax(-1)).sum() * soft_temperature ** 2
        ce = (1 - soft_weight) * ce + soft_weight * soft
    with torch.no_grad():
        top = logits.topk(min(top_k, logits.shape[-1]), dim=-1).indices
        # hits[k-1] = number of rows whose label is among the top k
        first = top.eq(y[:, None]).int().cumsum(-1).clamp(max=1).sum(0)
    return ce, first


def drafter_loss_sums(model, step_inputs: list[torch.Tensor], labels: torch.Tensor, top_k: int = 5,
                      chunk: int = 8192, checkpoint: bool = True, teacher_head=None,
                      teacher_hidden: torch.Tensor | None = None, soft_weight: float = 0.0,
                      soft_temperature: float = 1.0):
    """Per-step CE sums and top-k hit counts over the non-ignored labels only.

    step_inputs: K tensors [B, T, 2H] (Drafter.step_inputs); labels [B, T].
    With soft_weight > 0, teacher_head (the target's LM head, frozen) and teacher_hidden (the target's hidden
    states [B, T, H]), each row's CE is mixed with the soft-target term of the module docstring; the sums are
    then of that objective.
    Returns ce [K] (float32, differentiable), counts [K] (labels used per step), hits [K, top_k].
    Only rows with a label are pushed through the head, in chunks of `chunk` rows, each under activation
    checkpointing, so the [rows, V] logits never all live at once (V can be 150k).
    The reference loss for one batch is sum_j ce[j] / counts[j]; the trainer divides by the counts of the
    whole optimizer step, across micro-batches and ranks, instead.
    """
    K = len(step_inputs)
    device = labels.device
    soft = soft_weight > 0
    if soft and (teacher_head is None or teacher_hidden is None):
        raise ValueError("drafter_loss_sums: soft_weight > 0 needs teacher_head and teacher_hidden")
    ces, counts, hits = [], [], []
    for j, x in enumerate(step_inputs):
        y = labels[:, j + 2:]
        keep = y.ne(IGNORE_INDEX)
        xs = x[:, : -(j + 2)][keep]
        ys = y[keep]
        # The target's distribution over token t+j+2 comes from its hidden state at t+j+1.
        ts = teacher_hidden[:, j + 1: teacher_hidden.shape[1] - 1][keep] if soft else None
        extra = (teacher_head, None, soft_weight, soft_temperature)
        ce = torch.zeros((), device=device, dtype=torch.float32)
        hit = torch.zeros(top_k, device=device, dtype=torch.long)
        for s in range(0, ys.shape[0], chunk):
            xc, yc = xs[s:s + chunk], ys[s:s + chunk]
            if soft:
                extra = (teacher_head, ts[s:s + chunk], soft_weight, soft_temperature)
            if checkpoint and torch.is_grad_enabled():
                c, h = activation_checkpoint(_head_ce, model.head, xc, yc, top_k, *extra, use_reentrant=False)
            else:
                c, h = _head_ce(model.head, xc, yc, top_k, *extra)
            ce = ce + c
            hit[: h.shape[0]] += h
        ces.append(ce)
        counts.append(ys.shape[0])
        hits.append(hit)
    return torch.stack(ces), torch.tensor(counts, device=device, dtype=torch.float32), torch.stack(hits) if K else None
