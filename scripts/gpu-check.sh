#!/usr/bin/env bash
# Runs on the GPU machine (see docs/GPU.md): CUDA parity with the CPU, the
# dev-set DER on both backends, whole-pipeline speed on 60 minutes, GPU
# memory over 50 jobs, and a real out-of-memory fallback. Expects what
# scripts/gpu-pack.sh leaves in .gpu/ (the CUDA build, the libraries it needs
# that the GPU machine lacks, the dev set); writes its report to $OUT (or
# ./gpu-out).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
BIN=.gpu/diarist; DEV=.gpu/dev-set
[[ -x $BIN ]] || { xz -dkf .gpu/diarist.xz && chmod +x $BIN; }
[[ -d $DEV ]] || tar -C .gpu -xJf .gpu/devset.tar.xz
CU=$(find /opt -path '*nvidia/cu13/lib' -type d 2>/dev/null | head -1)
export LD_LIBRARY_PATH=$PWD/.gpu/lib:$CU:/usr/local/cuda/lib64:/usr/local/nvidia/lib64:${LD_LIBRARY_PATH:-}
if ldd $BIN | grep "not found"; then
  echo "gpu-check: $BIN is missing the libraries above" | tee "$OUT/gpu-check.txt"
  exit 1
fi
export DIARIST_MODELS=$PWD/models
PY=$(ls /opt/torch/.venv/bin/python 2>/dev/null || echo python3)

step() { echo; echo "== $*"; }
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  step "parity: networks on CUDA vs CPU"
  $BIN bench --parity --device cuda
  step "real out-of-memory: another process fills the card"
  SIG=$(mktemp -d)
  timeout 180 $PY - "$SIG" <<'PY' &
import os, sys, time
import torch
sig = sys.argv[1]
while not os.path.exists(f"{sig}/engine-ready"):
    time.sleep(0.05)
ballast, chunk = [], 1 << 30
while chunk >= 1 << 20:
    try:
        ballast.append(torch.empty(chunk, dtype=torch.uint8, device="cuda"))
    except RuntimeError:
        chunk //= 2
free, total = torch.cuda.mem_get_info()
print(f"ballast: {sum(b.numel() for b in ballast) / 2**30:.1f} GiB held, {free / 2**20:.0f} MiB left free", flush=True)
open(f"{sig}/ballast-ready", "w").close()
while not os.path.exists(f"{sig}/release"):
    time.sleep(0.05)
ballast.clear(); torch.cuda.empty_cache()
print("ballast released", flush=True)
open(f"{sig}/released", "w").close()
PY
  $BIN bench --oom-check "$SIG" --device cuda
  wait
  step "dev set on CUDA and on CPU"
  for d in cuda cpu; do
    time $BIN diarize $DEV --device $d --out $OUT/hyp-$d --quiet
    $BIN score $DEV $OUT/hyp-$d
  done
  step "speed: 60-minute recording on CUDA, three runs"
  $BIN bench --minutes 60 --dev-set $DEV --device cuda
  for run in 2 3; do $BIN bench --minutes 60 --dev-set $DEV --device cuda | sed -n 3,5p; done
  step "networks alone on CUDA: host share and where a batch of 256 spends its time"
  $BIN bench --networks --device cuda --seconds 1
  step "memory: 50 consecutive jobs on CUDA"
  $BIN bench --minutes 2 --dev-set $DEV --device cuda --jobs 50
  step "speed: 10-minute recording on this machine's CPU"
  $BIN bench --minutes 10 --dev-set $DEV --device cpu
  if command -v taskset >/dev/null; then
    step "speed: the same on 2 cores of this machine (taskset -c 0,1): $(lscpu | sed -n 's/^Model name: *//p')"
    taskset -c 0,1 $BIN bench --minutes 10 --dev-set $DEV --device cpu
    taskset -c 0,1 $BIN bench --networks
  fi
} 2>&1 | tee "$OUT/gpu-check.txt"
