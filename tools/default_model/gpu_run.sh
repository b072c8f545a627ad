#!/usr/bin/env bash
# One GPU run: train the default target, self-distill, train its drafter; ship results as tar chunks in $OUT.
# Usage: bash gpu_run.sh DEVICE TARGET_MIN DRAFTER_MIN PRESET DSTEPS DCONTEXTS
# Run it from a folder laid out for a machine without npm or network (copy this script there):
#   default_model/   tools/default_model/*.py      redrafter_train/  train/redrafter_train
#   docs.jsonl       corpus.py's output            tokenizer/        train_tokenizer.py's output
# The shipped pair came from `bash gpu_run.sh cuda 2.0 1.3 medium 1500 6000` on one H200.
set -uo pipefail
cd "$(dirname "$0")"
DEV=${1:-cuda}; TMIN=${2:-2.3}; DMIN=${3:-1.5}; PRESET=${4:-medium}; DSTEPS=${5:-1500}; DCTX=${6:-6000}
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
W=/tmp/work; rm -rf $W; mkdir -p $W
(nvidia-smi -L || true) 2>&1 | tee $OUT/log.txt
python3 default_model/train_target.py --corpus docs.jsonl --tokenizer tokenizer --out $W/target \
  --device $DEV --max-minutes $TMIN --preset $PRESET 2>&1 | tee -a $OUT/log.txt
(cd $W && tar cf - target | split -b 15m - $OUT/target.tar.)
python3 - <<'PY'
import json
with open('/tmp/work/train.txt','w') as f:
    for line in open('docs.jsonl'):
        d=json.loads(line)
        if d['split']=='train': f.write(d['text'].strip()+'\n\n')
PY
python3 -m redrafter_train --target $W/target --data $W/train.txt --output $W/drafter \
  --distill-contexts $DCTX --distill-context 64 --distill-length 96 --distill-batch 1024 \
  --predict-n 5 --layers 1 --exit-dim 256 --batch 128 --lr 1e-3 --warmup-ratio 0.05 \
  --max-steps $DSTEPS --max-minutes $DMIN --log-every 100 --eval-fraction 0.02 --save-dtype bf16 2>&1 | tee -a $OUT/log.txt
cd $W && rm -rf drafter/checkpoint-* drafter/distill-*.pt && ls -la target drafter | tee -a $OUT/log.txt
tar cf $OUT/drafter.tar drafter
ls -la $OUT
