"""draft_vocab.json from the trainer: the ranking, the default size, and the file a finished run writes."""
import json
import os

import torch

from redrafter_train.cli import main
from redrafter_train.model import IGNORE_INDEX
from redrafter_train.vocab import default_size, rank_tokens, write_draft_vocab


def test_rank_tokens_counts_labels_only_and_breaks_ties_by_id():
    labels = torch.tensor([[5, 1, 3, IGNORE_INDEX], [1, 3, 5, 5], [IGNORE_INDEX, 0, 3, 1]])
    ranked, counts = rank_tokens(labels, 7)
    assert counts.tolist() == [1, 3, 0, 3, 0, 3, 0]
    assert ranked == [1, 3, 5, 0, 2, 4, 6]


def test_default_size_covers_the_share_in_steps_of_256_and_only_when_it_pays():
    counts = torch.zeros(4096, dtype=torch.long)
    counts[:300] = 10  # 3000 labels over 300 tokens
    counts[300:1000] = 1  # 700 more over 700 tokens
    # 95% of 3700 = 3515: all 300 frequent tokens plus 515 rare ones -> 815 -> 1024.
    assert default_size(counts, 0.95) == 1024
    assert default_size(counts, 0.5) == 256
    assert default_size(counts, 0) is None
    assert default_size(torch.zeros(4096, dtype=torch.long), 0.95) is None
    # A cut to more than half the vocabulary is not worth it.
    assert default_size(torch.ones(1000, dtype=torch.long), 0.95) is None


def test_write_draft_vocab(tmp_path):
    # Tokens 0..599 three times each (and token 7 once more), after 10 unlabelled positions.
    labels = torch.cat([torch.full((10,), IGNORE_INDEX), torch.arange(600).repeat(3), torch.tensor([7])])[None]
    info = write_draft_vocab(labels, 2000, str(tmp_path), 0.9)
    data = json.load(open(tmp_path / "draft_vocab.json"))
    assert sorted(data["ranked_ids"]) == list(range(2000))
    assert data["ranked_ids"][:3] == [7, 0, 1]
    # 90% of 1801 labels need 540 of the 600 tokens: the next multiple of 256 is 768.
    assert data["default_size"] == info["default_size"] == 768
    assert data["labels_counted"] == 1801


def test_a_training_run_writes_the_ranking(tiny_env, tmp_path):
    out = tmp_path / "d"
    args = ["--target", tiny_env["target"], "--data", tiny_env["text"], "--output", str(out), "--seq-len", "24",
            "--layers", "1", "--predict-n", "2", "--dtype", "fp32", "--max-steps", "1", "--batch", "2"]
    assert main(args) == 0
    data = json.load(open(os.path.join(out, "draft_vocab.json")))
    assert sorted(data["ranked_ids"]) == list(range(104))  # the tiny target's vocabulary
    assert "default_size" not in data  # 104 tokens: no cut pays
    assert data["labels_counted"] > 0
