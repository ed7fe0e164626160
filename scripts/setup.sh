#!/usr/bin/env bash
# Installs the system packages Diarist needs on Debian/Ubuntu, skipping what is
# already there. `setup.sh engine` is enough for the CLI; `setup.sh all` adds
# what the desktop app and its end-to-end tests need.
set -euo pipefail

# The engine records from the microphone through cpal (ALSA headers), and its
# tests use a virtual PulseAudio microphone.
want=(build-essential pkg-config libasound2-dev pulseaudio pulseaudio-utils libasound2-plugins)
if [[ "${1:-engine}" == all ]]; then
  want+=(libwebkit2gtk-4.1-dev libgtk-3-dev libayatana-appindicator3-dev librsvg2-dev
         libssl-dev webkit2gtk-driver xvfb xauth dbus-x11 alsa-utils clang)
fi

missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  echo "Installing: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
