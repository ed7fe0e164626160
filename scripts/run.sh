#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks, builds Diarist and diarizes the
# bundled sample recording, printing its speaker timeline (RTTM) and a
# summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh engine
cargo build --release --bin diarist
exec ./target/release/diarist diarize samples/sample.wav "$@"
