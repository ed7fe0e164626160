#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks, builds Diarist and starts it.
#
#   ./scripts/run.sh          the desktop app (the bundled sample is one click
#                             away: "Try the sample"); with no display, falls
#                             back to the CLI below
#   ./scripts/run.sh cli      the headless CLI on the bundled sample: prints its
#                             speaker timeline (RTTM) and a summary line
#   ./scripts/run.sh cli FILE...   the CLI on your own recordings
set -euo pipefail
cd "$(dirname "$0")/.."

mode=app
if [[ "${1:-}" == cli ]]; then
  mode=cli
  shift
elif [[ -z "${DISPLAY:-}" && -z "${WAYLAND_DISPLAY:-}" && "$(uname)" != Darwin ]]; then
  echo "run.sh: no display here, so running the headless CLI instead of the app" >&2
  mode=cli
fi

if [[ $mode == app ]]; then
  ./scripts/setup.sh all
  # custom-protocol: the window's pages are served from the binary.
  cargo build --release -p diarist-app --features custom-protocol
  exec ./target/release/diarist-app
fi

./scripts/setup.sh engine
cargo build --release --bin diarist
if (($# == 0)); then
  set -- samples/sample.wav
fi
exec ./target/release/diarist diarize "$@"
