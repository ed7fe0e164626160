#!/usr/bin/env bash
# Runs here, before a GPU-machine call (see docs/GPU.md): builds the CUDA
# binary and packs what scripts/gpu-check.sh needs into .gpu/ (ignored by
# git), small enough for the device tool's 64 MiB carry. Usage:
#   scripts/gpu-pack.sh DEV_SET_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
DEV=${1:?usage: scripts/gpu-pack.sh DEV_SET_DIR}
R=${CU13_PREFIX:-$HOME/.local/cu13}/nvidia/cu13
[[ -x $R/bin/nvcc ]] || { echo "no CUDA toolkit at $R (run ../shared/tools/cuda-toolchain.sh)" >&2; exit 1; }
TARGET=${CARGO_TARGET_DIR:-target-cuda}
PATH=$R/bin:$PATH CUDA_HOME=$R CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90} \
  LIBRARY_PATH=$R/lib:$R/lib/stubs \
  cargo build --release --features cuda --target-dir "$TARGET" --bin diarist
mkdir -p .gpu/lib
strip -o .gpu/diarist "$TARGET/release/diarist"
xz -T0 -6 -f .gpu/diarist # → .gpu/diarist.xz
# The GPU machine has the CUDA libraries but not ALSA (cpal links it), and
# may have an older C++ runtime: take this machine's.
for lib in libasound.so.2 libstdc++.so.6 libgcc_s.so.1; do
  cp -L "$(ldconfig -p | awk -v l="$lib" '$1 == l && /x86-64/ { print $NF; exit }')" .gpu/lib/
done
tar -C "$(dirname "$DEV")" -cf - "$(basename "$DEV")" --transform "s,^$(basename "$DEV"),dev-set," \
  | xz -T0 -9 > .gpu/devset.tar.xz
du -sh .gpu
