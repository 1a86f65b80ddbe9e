#!/usr/bin/env bash
# Every GPU figure of issue 19 and the CUDA tests, in one device call of at most 8 minutes on one
# H100/H200, with one summary table. CI never runs it: a GPU machine is lent only to some sessions.
#
# Prepare here (no device time):   bash scripts/device_wheels.sh      # .whl/, the packages the image lacks
# Run through the device tool:     command "bash perf/gpu_check.sh", carry [".whl"], timeout_s 540
# Output: $OUT/summary.txt (the table and each step's tail) and $OUT/<step>.log; without $OUT, ./gpu_check_out.
#
# Each step has its own time cap, so one slow or broken step leaves the others' figures; the caps add
# up to 450 s, and the steps run one at a time so that no timing shares the GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_check_out}
mkdir -p "$OUT"
summary="$OUT/summary.txt"
: > "$summary"

if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || echo "wheel install failed: the steps that import the project will say what is missing" >> "$summary"
  export PYTHONPATH="/tmp/site:$PWD"
else
  export PYTHONPATH="$PWD"
fi

rows=()
step() {  # step NAME CAP_SECONDS COMMAND...: run it, keep its log, its exit code and its time
  local name=$1 cap=$2 start rc
  shift 2
  start=$(date +%s)
  timeout "$cap" "$@" > "$OUT/$name.log" 2>&1
  rc=$?
  rows+=("$(printf '%-24s rc=%-4s %4ss (cap %ss)' "$name" "$rc" "$(( $(date +%s) - start ))" "$cap")")
  { echo "== $name: $*"; tail -n 30 "$OUT/$name.log"; echo; } >> "$summary"
}

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1
  python3 -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda)'
  nproc; } > "$OUT/machine.txt" 2>&1

# Grokking trainers: model-steps/s and the fraction of the bound (MLP target >= 50% of the memory
# bound at 1,024 runs; transformer >= 70% of the FP32 matmul bound at 256 runs), compiled step.
step mlp_throughput 110 python3 perf/grokking_throughput.py --device cuda --compile --no-eager --runs 1024 --steps 200
step transformer_throughput 90 python3 perf/grokking_throughput.py --model transformer --device cuda --compile --no-eager \
  --runs 256 --steps 100
# rare-behavior F3 truth: sequences/s of the enumerator, 1 and 2 blocks, projected to 2^32 (target <= 2 min).
step rare_truth 60 python3 perf/rare_truth_speed.py --devices cuda --layers 1 2
# SAE baselines: seconds per planted-features instance, CPU against CUDA (target CUDA >= 5x faster).
step sae_cpu_vs_cuda 90 python3 perf/sae_device_speed.py --baselines topk-sae --instances 2
# The CUDA tests (they skip on a machine without CUDA), and the compiled-transformer check the
# grokking issue saw fail on this machine's CPU.
step cuda_tests 100 python3 -m pytest -q -p no:cacheprovider -p no:xdist -rs \
  tests/benchmark/tasks/grokking_onset/test_trainer.py tests/benchmark/tasks/grokking_onset/test_transformer.py \
  tests/benchmark/tasks/grokking_onset/test_gpu_scale.py tests/benchmark/tasks/rare_behavior/test_enumerate.py

{ echo "== machine"; cat "$OUT/machine.txt"; echo "== steps"; printf '%s\n' "${rows[@]}"; echo; cat "$summary"; } > "$OUT/report.txt"
mv "$OUT/report.txt" "$summary"
cat "$summary"
