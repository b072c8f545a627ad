#!/usr/bin/env bash
# GPU checks for the ONNX backend, printed as it goes:
#   1. the GPU and a WebGPU adapter (Deno's navigator.gpu over Vulkan),
#   2. onnx-webgpu parity tests (transformers fixtures, tree + commit),
#   3. onnx-cuda: find libonnxruntime_providers_cuda.so (+ CUDA 12 / cuDNN 9 libraries), then its parity tests,
#   4. decode tok/s on the random ~107M Llama: the CPU reference, onnx-node, onnx-cuda, onnx-webgpu (standard and
#      GroupQueryAttention graphs),
#   5. if Python onnxruntime-gpu is present: our cached graphs on its CUDA EP vs its CPU EP,
#   6. the default pair, where its target is present: deno task bench per provider (onnx-webgpu with its
#      default cpu drafter and with the drafter on the GPU too),
#   7. WebGPU fixed costs (tools/webgpu_overhead.ts: a raw read-back, ORT's cost per run and per op) and the
#      random ~107M Llama's WebGPU step, standard vs GroupQueryAttention graph, interleaved rounds,
#   8. the default pair on onnx-webgpu: standard vs GQA step (interleaved), then deno task bench with
#      repeats over wider trees,
#   9. the default pair on onnx-webgpu: dynamic draft trees (--tree-nodes) against beams.
# Usage, from the repo root: [GPU_CHECK_STEPS="1 2 3 4 5 6"] tools/gpu_check.sh
# Offline machines: run tools/gpu_pack.sh here first and carry .devcarry/ (deno + node_modules inside; 50 MB).
# With a 64 MiB limit on what travels, that does not fit beside the committed default target (32 MB). Two
# calls then: the first with models/default/target/model.safetensors moved out of the tree, carrying .devcarry
# and .gl (the .deb files of libvulkan1 libglvnd0 libegl1 libgl1 libglx0 libgles2 libopengl0, fetched as
# /work/.library/device/README.md says), GPU_CHECK_STEPS="1 2 3 4 5"; the second at once on the warm
# machine, the target back in place and nothing carried (the unpacked .devcarry/ and node_modules/ stay there while it is warm),
# GPU_CHECK_STEPS=6. Step 6 falls back to .devkeep/target (left by gpu_drafter_sweep.sh).
set -u
cd "$(dirname "$0")/.."
# NVIDIA's Vulkan ICD (libGLX_nvidia.so.0) needs glvnd's libGLdispatch.so.0, which the CUDA image lacks
# (session 18: with libvulkan1 alone Deno found no adapter; with glvnd too it found the H200).
if ls .gl/*.deb >/dev/null 2>&1 && ! { ldconfig -p | grep -q libvulkan.so.1 && ldconfig -p | grep -q libGLdispatch.so.0; }; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
[ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] &&
  export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
if [ -f .devcarry/gpu.tar.xz ] && [ ! -x .devcarry/deno ]; then
  xz -dc .devcarry/gpu.tar.xz | tar -C .devcarry -xf - && tar -C .devcarry -xf .devcarry/deno.tar &&
    tar -xf .devcarry/nm.tar && rm -f .devcarry/deno.tar .devcarry/nm.tar
fi
if [ -x .devcarry/deno ]; then
  DENO=$PWD/.devcarry/deno
  export DENO_DIR=$PWD/.devcarry/denodir
  CACHED=--cached-only
else
  DENO=$(command -v deno || true)
  CACHED=
fi
[ -n "$DENO" ] || { echo "gpu_check: deno not found (install it or run tools/gpu_pack.sh where it is)"; exit 1; }
export NVIDIA_TF32_OVERRIDE=0 # fp32 MatMuls stay fp32 on Ampere+ (parity within 1e-4)
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
T=${GPU_CHECK_TIMEOUT:-150}
STEPS=" ${GPU_CHECK_STEPS:-1 2 3 4 5 6} "
step() { [[ $STEPS == *" $1 "* ]]; }

if step 1; then
echo "== 1. GPU"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -3
ls /usr/share/vulkan/icd.d/ /etc/vulkan/icd.d/ 2>/dev/null | tr '\n' ' '
echo
timeout 60 "$DENO" eval --unstable-webgpu '
  const a = await navigator.gpu?.requestAdapter({ powerPreference: "high-performance" });
  console.log("webgpu adapter:", a ? JSON.stringify({ vendor: a.info.vendor, device: a.info.description,
    fallback: a.info.isFallbackAdapter, f16: a.features.has("shader-f16") }) : "none");' 2>&1 | grep -v XDG
fi

if step 2; then
echo "== 2. onnx-webgpu tests"
timeout "$T" "$DENO" test -A --unstable-webgpu $CACHED tests/onnx_extra_test.ts tests/onnx_readback_test.ts \
  --filter webgpu 2>&1 |
  grep -E "^onnx|ok \||FAILED|error|Error" | head -20
fi

if step 3; then
echo "== 3. onnx-cuda"
BIN=$(ls -d node_modules/.deno/onnxruntime-node@*/node_modules/onnxruntime-node/bin/napi-v6/linux/x64 2>/dev/null | head -1)
if [ ! -f "$BIN/libonnxruntime_providers_cuda.so" ]; then
  # Borrow them from a Python onnxruntime-gpu install when one exists (the version must match 1.30).
  CAPI=$(python3 -c 'import onnxruntime, os; print(os.path.dirname(onnxruntime.__file__) + "/capi")' 2>/dev/null)
  PYV=$(python3 -c 'import onnxruntime; print(onnxruntime.__version__)' 2>/dev/null)
  echo "python onnxruntime: ${PYV:-none} ${CAPI:-}"
  for d in "$CAPI" /usr/lib/x86_64-linux-gnu /usr/local/lib /opt; do
    [ -n "$d" ] || continue
    f=$(find "$d" -maxdepth 4 -name libonnxruntime_providers_cuda.so 2>/dev/null | head -1)
    if [ -n "$f" ]; then
      echo "found $f; copying it and libonnxruntime_providers_shared.so into $BIN"
      cp "$f" "$(dirname "$f")/libonnxruntime_providers_shared.so" "$BIN/" 2>&1
      break
    fi
  done
fi
# CUDA 12 / cuDNN 9 from pip nvidia-* wheels or a CUDA toolkit, if present.
for d in $(python3 -c 'import nvidia, os; p = list(nvidia.__path__)[0]; print(" ".join(os.path.join(p, x, "lib") for x in os.listdir(p)))' 2>/dev/null) /usr/local/cuda/lib64; do
  [ -d "$d" ] && LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"
done
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}
ls "$BIN" 2>&1 | tr '\n' ' '
echo
timeout "$T" "$DENO" test -A $CACHED tests/onnx_cuda_test.ts 2>&1 |
  grep -E "^onnx|relative error|ok \||FAILED|error|Error" | head -20
fi

if step 4; then
echo "== 4. decode speed, random ~107M Llama (prompt 32, 64 tokens)"
for p in ${GPU_CHECK_BENCH:-cpu onnx-node onnx-cuda onnx-webgpu onnx-webgpu:gqa}; do
  timeout "$T" "$DENO" run -A --unstable-webgpu $CACHED tools/bench_onnx.ts --providers $p --tokens 64 --rounds 1 2>&1 |
    grep -E "tok/s|rror" | head -3
done
fi

if step 5; then
echo "== 5. python onnxruntime CUDA EP on our graphs"
timeout "$T" python3 - <<'EOF' 2>&1 | tail -12
import glob, time
import numpy as np
try:
    import onnxruntime as ort
except ImportError:
    print("no python onnxruntime"); raise SystemExit
print("onnxruntime", ort.__version__, ort.get_available_providers())
if "CUDAExecutionProvider" not in ort.get_available_providers():
    raise SystemExit
for path in sorted(glob.glob(".cache/onnx/*/model.onnx")):
    s_gpu = ort.InferenceSession(path, providers=["CUDAExecutionProvider"])
    s_cpu = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    ins = {i.name: i for i in s_cpu.get_inputs()}
    kv = ins["past_key_values.0.key"].shape  # [B, kvH, P, D]
    B, S, P = 1, 1, 64
    rng = np.random.default_rng(0)
    feeds = {"input_ids": np.array([[5]], np.int64), "position_ids": np.array([[P]], np.int64),
             "attention_mask": np.zeros((B, 1, S, P + S), np.float32),
             "logits_index": np.array([0], np.int64), "top_k": np.array([1], np.int64)}
    for n in ins:
        if n.startswith("past_key_values"):
            feeds[n] = rng.standard_normal((B, kv[1], P, kv[3])).astype(np.float32)
    a = s_gpu.run(["logits"], feeds)[0]; b = s_cpu.run(["logits"], feeds)[0]
    err = float(np.abs(a - b).max() / max(1.0, np.abs(b).max()))
    t = time.perf_counter(); n = 50
    for _ in range(n): s_gpu.run(["top_ids"], feeds)
    print(f"{path}: cuda vs cpu relative error {err:.2e}; cuda step {1000 * (time.perf_counter() - t) / n:.2f} ms")
EOF
fi
# 6. The default pair: ReDrafter vs autoregression per provider. A WebGPU step waits on its GPU -> CPU
#    read-back (about 80 ms on an H200 in session 5, before one read-back per step), so it gets fewer tokens.
TGT=models/default/target
[ -f $TGT/model.safetensors ] || TGT=.devkeep/target
if step 6 && [ -f $TGT/model.safetensors ]; then
  D=${GPU_CHECK_DRAFTER:-models/default/drafter}
  echo "== 6. default pair ($TGT, drafter $D): deno task bench, greedy"
  bench() { # label, flags
    local label=$1; shift
    echo "-- $label"
    timeout "$T" "$DENO" run -A --unstable-webgpu $CACHED cli/bench.ts --model $TGT --drafter "$D" --modes greedy \
      --out /tmp/bench-$label "$@" 2>&1 | grep -vE "^bench |^wrote|^$" | head -16
    [ -n "${OUT:-}" ] && cp /tmp/bench-$label/bench.json "$OUT/bench-$label.json" 2>/dev/null
  }
  # One WebGPU step of the default target, standard attention graph vs GroupQueryAttention (fewer ops).
  for p in onnx-webgpu onnx-webgpu:gqa; do
    timeout "$T" "$DENO" run -A --unstable-webgpu $CACHED tools/bench_onnx.ts --dir $TGT --providers $p --tokens 64 \
      2>&1 | grep -E "tok/s|rror" | head -3
  done
  small=(--num-prompts 2 --max-new-tokens 32 --beam-widths 1,2,4 --beam-lengths 2,3,4)
  # Lookup first (--lookup-mode first): rounds that find lookup drafts skip the drafter and its read-backs.
  bench webgpu-cpu-drafter --backend onnx-webgpu "${small[@]}" --lookup 0,4 --lookup-mode first
  bench webgpu-gpu-drafter --backend onnx-webgpu --drafter-backend onnx-webgpu "${small[@]}"
  bench onnx-node --backend onnx-node --num-prompts 8 --beam-widths 1,2 --beam-lengths 2,3,4 --lookup 0,2,4 \
    --lookup-mode first
  bench cpu --backend cpu --num-prompts 8 --beam-widths 1,2 --beam-lengths 2,3 --lookup 0,1 --lookup-mode first
fi
if step 7; then
  echo "== 7. WebGPU fixed costs"
  D7=models/default/target
  [ -f $D7/model.safetensors ] || D7=
  timeout "$T" "$DENO" run -A --unstable-webgpu $CACHED tools/webgpu_overhead.ts ${D7:+--dir $D7} 2>&1 | grep -v XDG
  timeout "$T" "$DENO" run -A --unstable-webgpu $CACHED tools/bench_onnx.ts --providers onnx-webgpu,onnx-webgpu:gqa \
    --tokens 64 --rounds 3 2>&1 | grep -E "tok/s|rror" | head -4
fi
if step 8 && [ -f $TGT/model.safetensors ]; then
  echo "== 8. default pair on onnx-webgpu"
  timeout "$T" "$DENO" run -A --unstable-webgpu $CACHED tools/bench_onnx.ts --dir $TGT \
    --providers onnx-webgpu,onnx-webgpu:gqa --tokens 64 --rounds 5 2>&1 | grep -E "tok/s|rror" | head -4
  timeout "$((2 * T))" "$DENO" run -A --unstable-webgpu $CACHED cli/bench.ts --model $TGT \
    --drafter models/default/drafter --modes greedy --out /tmp/bench-webgpu-wide --backend onnx-webgpu \
    --num-prompts 4 --max-new-tokens 48 --beam-widths 2,4,8 --beam-lengths 2,3 --lookup 0,4 --lookup-mode first \
    --repeats 2 2>&1 | grep -vE "^bench |^wrote|^$" | head -24
  [ -n "${OUT:-}" ] && cp /tmp/bench-webgpu-wide/bench.json "$OUT/bench-webgpu-wide.json" 2>/dev/null
fi
# 9. Dynamic draft trees against beams where a verified token costs next to nothing (tools/default_model/
#    tree_sim.py predicts about 3x for a 16-node tree against 2.3-2.6x for 4 x 3 / 4 x 4 beams).
if step 9 && [ -f $TGT/model.safetensors ]; then
  echo "== 9. default pair on onnx-webgpu: dynamic draft trees against beams"
  timeout "$((2 * T))" "$DENO" run -A --unstable-webgpu $CACHED cli/bench.ts --model $TGT \
    --drafter models/default/drafter --modes greedy --out /tmp/bench-webgpu-trees --backend onnx-webgpu \
    --num-prompts 4 --max-new-tokens 48 --beam-widths 4 --beam-lengths 3,5,7 --tree-nodes 0,16 \
    --repeats 2 2>&1 | grep -vE "^bench |^wrote|^$" | head -20
  [ -n "${OUT:-}" ] && cp /tmp/bench-webgpu-trees/bench.json "$OUT/bench-webgpu-trees.json" 2>/dev/null
fi
echo "== done"
