#!/usr/bin/env bash
# A virtual microphone for tests on machines with no sound card: a headless
# PulseAudio server with a null sink whose monitor is the default source.
# Whatever is played into the sink (`paplay -d "$DIARIST_VIRTUAL_SINK" f.wav`)
# is what cpal's default input (`alsa:default`, through libasound2-plugins)
# records, in real time. Recipe and timings: shared/STACK.md.
#
# Source it (`. scripts/virtual-mic.sh`): it exports PULSE_SERVER,
# XDG_RUNTIME_DIR, DIARIST_VIRTUAL_MIC=1 and DIARIST_VIRTUAL_SINK, and stops
# the server when the sourcing shell exits. It fails (non-zero) when the
# server cannot start, so a CI run never silently skips the mic tests.

virtual_mic_start() {
  command -v pulseaudio >/dev/null && command -v pactl >/dev/null && command -v paplay >/dev/null || {
    echo "virtual-mic: pulseaudio, pactl and paplay are needed (apt-get install pulseaudio pulseaudio-utils)" >&2
    return 1
  }
  local rt
  rt=$(mktemp -d)
  chmod 700 "$rt"
  export XDG_RUNTIME_DIR=$rt PULSE_SERVER=unix:$rt/native
  pulseaudio -n --daemonize=no --exit-idle-time=-1 --disallow-exit --log-target="file:$rt/pa.log" \
    -L "module-native-protocol-unix auth-anonymous=1 socket=$rt/native" \
    -L "module-null-sink sink_name=virt_out" 2>/dev/null &
  VIRTUAL_MIC_PIDS=$!
  local ok=""
  for _ in $(seq 200); do
    if pactl info >/dev/null 2>&1; then ok=1; break; fi
    sleep 0.05
  done
  [[ -n $ok ]] || { echo "virtual-mic: PulseAudio did not start (see $rt/pa.log)" >&2; return 1; }
  pactl set-default-source virt_out.monitor
  pactl set-default-sink virt_out
  # A steady reader keeps the null sink running: without it the first audio
  # comes up to 2 s late, at random.
  pacat --record --latency-msec=20 -d virt_out.monitor --raw >/dev/null 2>&1 &
  VIRTUAL_MIC_PIDS="$VIRTUAL_MIC_PIDS $!"
  sleep 0.05
  pactl suspend-sink virt_out 1
  pactl suspend-sink virt_out 0
  export DIARIST_VIRTUAL_MIC=1 DIARIST_VIRTUAL_SINK=virt_out VIRTUAL_MIC_RUNTIME=$rt
  trap 'virtual_mic_stop' EXIT
  echo "virtual-mic: PulseAudio on $PULSE_SERVER, default source virt_out.monitor" >&2
}

virtual_mic_stop() {
  # Only the processes this script started, by id.
  local pid
  for pid in ${VIRTUAL_MIC_PIDS:-}; do kill "$pid" 2>/dev/null || true; done
  [[ -n ${VIRTUAL_MIC_RUNTIME:-} ]] && rm -rf "$VIRTUAL_MIC_RUNTIME"
  VIRTUAL_MIC_PIDS=""
}

virtual_mic_start
