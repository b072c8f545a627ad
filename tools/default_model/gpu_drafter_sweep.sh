#!/usr/bin/env bash
# One GPU call: self-distill the default target once at scale, then train drafter variants side by side on
# the same rows and measure each one's held-out acceptance. Results come back as one tar per variant in $OUT.
#
# Usage, from the repo root: [VARIANTS="a b c d e"] bash tools/default_model/gpu_drafter_sweep.sh TRAIN [CONTEXTS] [MINUTES]
#   TRAIN      corpus.py's docs.jsonl (its "train" documents are used), or that split as plain text (the
#              documents joined by blank lines), or such a text as .xz
#   CONTEXTS   distillation contexts, half cut from TRAIN and half sampled by the target (default 120000)
#   MINUTES    training budget of each variant; the cosine schedule ends there (default 3.5)
# Variants run side by side on the one GPU (each gets a share of it; VARIANTS picks some), all K=5 unless
# named, batch 256 rows of 64 context + 96 continuation tokens:
#   a   the stage-1/2 architecture (1 ResBlock, exit_dim 256), from scratch
#   b   2 ResBlocks, exit_dim 384 (about 1.4x the drafter's per-step compute)
#   c   the stage-1/2 architecture trained on K=3 steps only (the depths W=1 L<=4 beams use)
#   d   the shipped drafter fine-tuned on the new rows
#   e   the shipped drafter deepened to GROW_LAYERS ResBlocks (default 3; --grow-layers: the new ones start
#       as the identity, so it starts exactly at the shipped drafter's acceptance) and fine-tuned; each
#       block adds 256 x 256 multiply-adds per step (stage 3 came from growing stage 2's 1 block to 3)
#   f   the shipped drafter fine-tuned with soft targets (--soft-weight ${SOFT_WEIGHT:-0.5}): the target's whole
#       distribution next to its greedy labels (compare with d; on the CPU it raised drafter_acceptance.py's
#       sum of min(p, q) and lowered greedy acceptance, see train/README.md)
# SEED (default 0) seeds the distillation and training: another seed gives fresh rows (stage 3 saw seed 0's
# 120000 contexts about 4 times). ACC_PROMPTS=0 skips the acceptance step (drafter_acceptance.py runs on a
# CPU too). Next, with the GPU to one variant: SEED=1 ACC_PROMPTS=0 VARIANTS=d ... docs.jsonl 240000 8
set -uo pipefail
cd "$(dirname "$0")/../.."
SRC=$1; CTX=${2:-120000}; MIN=${3:-3.5}
OUT=${OUT:-/tmp/sweep-out}; W=/tmp/sweep; mkdir -p "$OUT" "$W"
rm -rf $W/a $W/b $W/c $W/d $W/e $W/f  # earlier variants; the distilled rows ($W/rows.pt) are reused when settings match
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/train
T0=$(date +%s)
stamp() { echo "[$(($(date +%s) - T0))s] $*"; }
nvidia-smi -L 2>&1 | head -2
VARIANTS=${VARIANTS:-a b c d}
if [[ $SRC == *.xz ]]; then
  xz -dc "$SRC" > $W/train.txt
elif [[ $SRC == *.jsonl ]]; then
  python3 -c 'import json, sys
with open(sys.argv[2], "w") as f:
    for line in open(sys.argv[1]):
        d = json.loads(line)
        if d["split"] == "train": f.write(d["text"].strip() + "\n\n")' "$SRC" $W/train.txt
else
  cp "$SRC" $W/train.txt
fi
TGT=models/default/target
common=(--target $TGT --data $W/train.txt --distill-contexts "$CTX" --distill-prompts both --distill-context 64
  --distill-length 96 --distill-batch 4096 --distill-cache $W/rows.pt --save-dtype bf16 --log-every 200
  --seed "${SEED:-0}")

stamp "distilling $CTX contexts"
python3 -m redrafter_train "${common[@]}" --output $W/distill --layers 1 --exit-dim 256 --max-steps 1 \
  --batch 8 --eval-fraction 0 > $OUT/distill.log 2>&1 || { tail -30 $OUT/distill.log; exit 1; }
grep -E "distill" $OUT/distill.log | tail -4
stamp "training variants $VARIANTS for $MIN minutes each"
train() { # name, extra args
  local name=$1; shift
  python3 -m redrafter_train "${common[@]}" --output $W/$name --batch 256 --max-steps 100000 --warmup-steps 100 \
    --max-minutes "$MIN" --time-schedule --min-lr-ratio 0.05 --eval-fraction 0.01 "$@" > $OUT/$name.log 2>&1
}
for v in $VARIANTS; do
  case $v in
    a) train a --layers 1 --exit-dim 256 --lr 2e-3 & ;;
    b) train b --layers 2 --exit-dim 384 --lr 2e-3 & ;;
    c) train c --layers 1 --exit-dim 256 --predict-n 3 --lr 2e-3 & ;;
    d) train d --init models/default/drafter --lr 6e-4 & ;;
    e) train e --init models/default/drafter --grow-layers "${GROW_LAYERS:-3}" --lr 6e-4 & ;;
    f) train f --init models/default/drafter --lr 6e-4 --soft-weight "${SOFT_WEIGHT:-0.5}" & ;;
    *) echo "unknown variant $v (a, b, c, d, e or f)"; exit 2 ;;
  esac
done
wait
stamp "trained"
for v in $VARIANTS; do
  echo "== $v"; grep -E "^step|^drafter:|^  step [1-3]|^eval|error|Error" $OUT/$v.log | tail -7
done
for v in a b c d e f; do
  [ -f $W/$v/model.safetensors ] && tar -C $W -cf $OUT/drafter-$v.tar $v/config.json $v/model.safetensors $v/metrics.json
done
# Keep the target and the drafters on this machine for a follow-up call (ignored paths survive while warm).
mkdir -p .devkeep && cp -r $TGT .devkeep/ && for v in a b c d e f; do cp -r $W/$v .devkeep/drafter-$v 2>/dev/null; done
[ "${ACC_PROMPTS:-100}" = 0 ] && { stamp "done"; ls -la $OUT; exit 0; }
stamp "held-out acceptance (${ACC_PROMPTS:-100} prompts)"
list=models/default/drafter
for v in a b c d e; do [ -f $W/$v/model.safetensors ] && list=$list,$W/$v; done
python3 tools/default_model/drafter_acceptance.py --drafter $list --prompts "${ACC_PROMPTS:-100}" 2>&1 |
  grep -v "Loading weights" | tee $OUT/acceptance.txt
stamp "done"
ls -la $OUT
