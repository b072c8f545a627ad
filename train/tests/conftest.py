import os
import sys

import pytest

TRAIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if TRAIN_DIR not in sys.path:
    sys.path.insert(0, TRAIN_DIR)


@pytest.fixture(scope="session")
def tiny_env(tmp_path_factory):
    """A random tiny Llama target with a char-level tokenizer, and a small text file."""
    from redrafter_train.tiny import TEXT, make_tiny_target
    root = tmp_path_factory.mktemp("tiny")
    make_tiny_target(str(root / "target"))
    text = root / "text.txt"
    text.write_text(TEXT * 6)
    return {"root": root, "target": str(root / "target"), "text": str(text)}
