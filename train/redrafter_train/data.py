"""Training sequences: fixed-length rows of token ids with labels (IGNORE_INDEX where no loss is taken).

Sources:
  * plain text (.txt, or anything that is not JSON): the whole file tokenized and cut into windows;
    every token is a label.
  * ShareGPT-style conversations (.json list / .jsonl): {"conversations": [{"from": "human"|"gpt"|"system",
    "value": ...}]} or {"messages": [{"role": ..., "content": ...}]}, rendered with the target tokenizer's
    chat template; only assistant turns (their text and the template's end-of-turn tokens) carry labels.
Rows are right-padded; with causal attention real tokens never see the padding, so no attention mask is
needed for the target forward.
"""
from __future__ import annotations

import json
import random

import torch

from .model import IGNORE_INDEX

ROLE = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "chatgpt": "assistant",
        "bard": "assistant", "bing": "assistant", "model": "assistant", "system": "system"}


def pad_id(tokenizer) -> int:
    for v in (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id):
        if v is not None:
            return int(v)
    return 0


def is_conversation_file(path: str) -> bool:
    return path.endswith(".json") or path.endswith(".jsonl")


def read_text(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def tokenize_text(text: str, tokenizer, piece_chars: int = 1 << 20) -> list[int]:
    """Tokenize a long text in paragraph-aligned pieces (tokenizers are slow on one huge string)."""
    ids: list[int] = []
    start = 0
    while start < len(text):
        end = min(len(text), start + piece_chars)
        if end < len(text):
            cut = text.rfind("\n", start, end)
            end = cut + 1 if cut > start else end
        ids.extend(tokenizer(text[start:end], add_special_tokens=False)["input_ids"])
        start = end
    return ids


def text_rows(path: str, tokenizer, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    ids = tokenize_text(read_text(path), tokenizer)
    n = len(ids) // seq_len
    if n == 0:
        raise ValueError(f"{path}: only {len(ids)} tokens, fewer than one row of --seq-len {seq_len}")
    rows = torch.tensor(ids[: n * seq_len], dtype=torch.long).view(n, seq_len)
    return rows, rows.clone()


def read_conversations(path: str) -> list[list[dict]]:
    """Normalized [{"role", "content"}] lists; a leading assistant turn is dropped (as the reference does)."""
    with open(path, encoding="utf-8") as f:
        if path.endswith(".jsonl"):
            records = [json.loads(line) for line in f if line.strip()]
        else:
            records = json.load(f)
    out = []
    for i, rec in enumerate(records):
        turns = rec.get("conversations", rec.get("messages")) if isinstance(rec, dict) else None
        if not isinstance(turns, list):
            raise ValueError(f"{path}: record {i} has neither 'conversations' nor 'messages' list")
        msgs = []
        for t in turns:
            role = ROLE.get(str(t.get("from", t.get("role", ""))).lower())
            content = t.get("value", t.get("content"))
            if role is None or not isinstance(content, str):
                raise ValueError(f"{path}: record {i} has a turn with unknown role or no text: {t!r}")
            msgs.append({"role": role, "content": content})
        while msgs and msgs[0]["role"] == "assistant":
            msgs.pop(0)
        if any(m["role"] == "assistant" for m in msgs):
            out.append(msgs)
    return out


def conversation_row(msgs: list[dict], tokenizer, seq_len: int) -> tuple[list[int], list[int]] | None:
    """Token ids and labels of one conversation (labels only on assistant turns); None if the template does
    not render turn by turn as prefixes of the whole (then the spans cannot be located safely)."""
    full = tokenizer.apply_chat_template(msgs, tokenize=False)
    spans = []
    for i, m in enumerate(msgs):
        if m["role"] != "assistant":
            continue
        before = tokenizer.apply_chat_template(msgs[:i], tokenize=False, add_generation_prompt=True)
        upto = tokenizer.apply_chat_template(msgs[: i + 1], tokenize=False)
        if not full.startswith(before) or not full.startswith(upto) or len(upto) <= len(before):
            return None
        spans.append((len(before), len(upto)))
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    ids = enc["input_ids"][:seq_len]
    labels = []
    for tok, (a, b) in zip(ids, enc["offset_mapping"][:seq_len]):
        inside = any(s <= a and b <= e and b > a for s, e in spans)
        labels.append(tok if inside else IGNORE_INDEX)
    return ids, labels


def pad_rows(rows: list[tuple[list[int], list[int]]], seq_len: int, pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.full((len(rows), seq_len), pad, dtype=torch.long)
    labels = torch.full((len(rows), seq_len), IGNORE_INDEX, dtype=torch.long)
    for r, (a, b) in enumerate(rows):
        ids[r, : len(a)] = torch.tensor(a, dtype=torch.long)
        labels[r, : len(b)] = torch.tensor(b, dtype=torch.long)
    return ids, labels


def conversation_rows(path: str, tokenizer, seq_len: int, log=print) -> tuple[torch.Tensor, torch.Tensor]:
    convs = read_conversations(path)
    rows, skipped = [], 0
    for msgs in convs:
        r = conversation_row(msgs, tokenizer, seq_len)
        if r is None or all(x == IGNORE_INDEX for x in r[1]):
            skipped += 1
            continue
        rows.append(r)
    if skipped:
        log(f"{path}: skipped {skipped} of {len(convs)} conversations (template spans or no assistant labels)")
    if not rows:
        raise ValueError(f"{path}: no usable conversations")
    return pad_rows(rows, seq_len, pad_id(tokenizer))


def load_rows(path: str, tokenizer, seq_len: int, log=print) -> tuple[torch.Tensor, torch.Tensor]:
    if is_conversation_file(path):
        return conversation_rows(path, tokenizer, seq_len, log)
    return text_rows(path, tokenizer, seq_len)


def distill_prompts(path: str, tokenizer, num: int, ctx_len: int, seed: int) -> list[list[int]]:
    """Contexts for self-distillation: windows of ctx_len tokens at random offsets of a text file, or, for
    conversation files, every prefix ending at an assistant turn (with the generation prompt), left-cut to
    ctx_len tokens. At most `num`, chosen with `seed`."""
    rng = random.Random(seed)
    if is_conversation_file(path):
        prompts = []
        for msgs in read_conversations(path):
            for i, m in enumerate(msgs):
                if m["role"] == "assistant":
                    text = tokenizer.apply_chat_template(msgs[:i], tokenize=False, add_generation_prompt=True)
                    prompts.append(tokenizer(text, add_special_tokens=False)["input_ids"][-ctx_len:])
        rng.shuffle(prompts)
        return prompts[:num]
    ids = tokenize_text(read_text(path), tokenizer)
    if len(ids) < ctx_len:
        raise ValueError(f"{path}: only {len(ids)} tokens, fewer than --distill-context {ctx_len}")
    # Begin each context the way the tokenizer begins a text (BOS for Llama-style tokenizers, nothing for
    # others), so the target sees in-distribution input.
    head = tokenizer("", add_special_tokens=True)["input_ids"]
    body = max(1, ctx_len - len(head))
    starts = [rng.randrange(0, len(ids) - body + 1) for _ in range(num)]
    return [head + ids[s: s + body] for s in starts]
