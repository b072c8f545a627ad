#!/usr/bin/env bash
# Packs what tools/gpu_check.sh needs on a machine without network into .devcarry/gpu.tar.xz (git-ignored):
# the deno binary, deno.lock and a slimmed node_modules (linux-x64 onnxruntime-node, the onnxruntime-web
# WebGPU build). Run from the repo root after the ONNX tests have run once here (so node_modules exists).
set -euo pipefail
mkdir -p .devcarry
DENO_BIN=$(command -v deno)
tar -C "$(dirname "$DENO_BIN")" -cf .devcarry/deno.tar deno
tar -cf .devcarry/nm.tar \
  --exclude='*/bin/napi-v6/darwin' --exclude='*/bin/napi-v6/win32' --exclude='*/bin/napi-v6/linux/arm64' \
  --exclude='*.map' --exclude='*jsep.wasm' --exclude='*jspi.wasm' --exclude='*threaded.wasm' \
  --exclude='node_modules/@deno' --exclude='node_modules/deno' --exclude='*/tokenizer-llama3/dist' --exclude='*/tokenizer-llama3/models' --exclude='*/dist/ort.all*' --exclude='*/dist/ort.webgl*' --exclude='*/dist/ort.jspi*' \
  node_modules deno.lock
tar -cf - -C .devcarry deno.tar nm.tar | xz -T2 -6 > .devcarry/gpu.tar.xz
rm .devcarry/deno.tar .devcarry/nm.tar
ls -la .devcarry/gpu.tar.xz
