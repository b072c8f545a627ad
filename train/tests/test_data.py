import json

from redrafter_train.data import conversation_rows, read_conversations, text_rows
from redrafter_train.model import IGNORE_INDEX
from redrafter_train.tiny import tiny_tokenizer


def _labelled_text(tok, ids, labels):
    return "".join(tok.decode([i]) for i, y in zip(ids, labels) if y != IGNORE_INDEX)


def test_sharegpt_labels_only_assistant_turns(tmp_path):
    tok = tiny_tokenizer()
    path = tmp_path / "conv.json"
    path.write_text(json.dumps([{"conversations": [
        {"from": "gpt", "value": "dropped leading reply"},
        {"from": "human", "value": "hi there"},
        {"from": "gpt", "value": "hello!"},
        {"from": "human", "value": "and?"},
        {"from": "gpt", "value": "bye."}]}]))
    ids, labels = conversation_rows(str(path), tok, 64)
    row_ids = ids[0].tolist()
    row_labels = labels[0].tolist()
    # Labelled tokens are exactly the assistant texts with their end-of-turn token.
    assert _labelled_text(tok, row_ids, row_labels) == "hello!<|end|>bye.<|end|>"
    full = tok.decode([i for i in row_ids if i != tok.pad_token_id])
    assert full.startswith("<s><|user|>hi there<|end|><|assistant|>hello!")
    assert "dropped" not in full
    # Labels equal ids where kept; padding is ignored.
    assert all(y in (IGNORE_INDEX, i) for i, y in zip(row_ids, row_labels))
    n_real = sum(1 for i in row_ids if i != tok.pad_token_id)
    assert all(y == IGNORE_INDEX for y in row_labels[n_real:])


def test_sharegpt_truncation_and_messages_format(tmp_path):
    tok = tiny_tokenizer()
    path = tmp_path / "conv.jsonl"
    path.write_text(json.dumps({"messages": [{"role": "system", "content": "be brief"},
                                             {"role": "user", "content": "q"},
                                             {"role": "assistant", "content": "a long answer"}]}) + "\n")
    assert read_conversations(str(path))[0][0]["role"] == "system"
    ids, labels = conversation_rows(str(path), tok, 20)
    assert ids.shape == (1, 20)
    text = _labelled_text(tok, ids[0].tolist(), labels[0].tolist())
    assert "a long answer".startswith(text) and len(text) > 0  # cut at 20 tokens, inside the answer


def test_text_rows_are_windows(tmp_path):
    tok = tiny_tokenizer()
    p = tmp_path / "t.txt"
    p.write_text("abcdefghij" * 5)
    ids, labels = text_rows(str(p), tok, 16)
    assert ids.shape == (3, 16) and (ids == labels).all()
    assert tok.decode(ids[1].tolist()) == ("abcdefghij" * 5)[16:32]
