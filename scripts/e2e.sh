#!/usr/bin/env bash
# Runs the desktop app's end-to-end test (src-tauri/tests/e2e.rs) in a real
# window: Xvfb for the display, a private D-Bus session (single instance and
# notifications talk D-Bus), a PulseAudio null sink so that playback really
# plays, and tauri-driver + WebKitWebDriver for WebDriver.
# Leaves docs/screenshot.png, the results view as the test saw it.
#
#   ./scripts/e2e.sh               just the app's end-to-end test
#   ./scripts/e2e.sh CMD ARGS...   any command in the same session (test.sh runs
#                                  the whole suite this way, in one build)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

command -v WebKitWebDriver >/dev/null || {
  echo "e2e: WebKitWebDriver is missing (apt-get install webkit2gtk-driver)" >&2
  exit 1
}
command -v xvfb-run >/dev/null || {
  echo "e2e: xvfb-run is missing (apt-get install xvfb xauth)" >&2
  exit 1
}
command -v tauri-driver >/dev/null || cargo install tauri-driver --version ^2 --locked

# A sound server with no sound card: a null sink that GStreamer plays into,
# whose monitor is the default microphone (the recording tests record from it).
. ./scripts/virtual-mic.sh

# `cargo test` builds and runs in one go: building first and testing after
# rebuilds the GTK/WebKit stack, because dev-dependencies change features.
test=(cargo test -p diarist-app --test e2e -- --ignored --nocapture)
(($#)) && test=("$@")
session=()
command -v dbus-run-session >/dev/null && session=(dbus-run-session --)
"${session[@]}" xvfb-run -a -s "-screen 0 1280x800x24" "${test[@]}"
