// Recording a meeting: the record button and microphone picker in the
// toolbar, and while recording a panel with the elapsed time, an input level
// meter, a warning after 10 s of silence, a live timeline that grows as the
// engine labels voices, and the voices found so far, which can be named
// before the meeting ends. The tray and the global shortcut start and stop
// recordings too, so the panel follows the shell's events, not the button.

import * as ipc from "./ipc.js";
import { h, clock, displayName, colourSlot } from "./util.js";

const $ = (id) => document.getElementById(id);
const SILENCE_WARNING_S = 10;

export class Recording {
  /**
   * `onStopped(stopped)` gets the finished file, for the final pass;
   * `onVisible(shown)` tells the results pane to step aside.
   */
  constructor({ toast, onStopped, onVisible, inputDevice }) {
    this.toast = toast;
    this.onStopped = onStopped;
    this.onVisible = onVisible;
    this.active = null;
    this.busy = false;

    $("record-btn").addEventListener("click", () => this.toggle());
    $("rec-stop").addEventListener("click", () => this.stop());
    this.initMicrophones(inputDevice);

    ipc.onRecordingStarted((started) => this.started(started));
    ipc.onRecordingStatus((status) => this.status(status));
    ipc.onLiveTurn((turn) => this.liveTurn(turn));
    ipc.onRecordingStopped((stopped) => this.stopped(stopped));
  }

  get recording() {
    return this.active !== null;
  }

  toggle() {
    return this.recording ? this.stop() : this.start();
  }

  async start() {
    if (this.busy) return;
    this.busy = true;
    this.renderButton();
    try {
      // The panel opens on "recording-started", which a tray start sends too.
      await ipc.startRecording();
    } catch (err) {
      this.toast(`Cannot record: ${err.message || err}`, "error");
    } finally {
      this.busy = false;
      this.renderButton();
    }
  }

  async stop() {
    if (!this.recording || this.busy) return;
    this.busy = true;
    this.renderButton();
    try {
      await ipc.stopRecording();
    } catch (err) {
      this.toast(`The recording could not be finished: ${err.message || err}`, "error");
    } finally {
      this.busy = false;
      this.renderButton();
    }
  }

  /** The window was reloaded during a recording: show what is known. */
  resume() {
    this.started({ path: "", name: "Recording", device: "", liveJob: null });
  }

  started({ path, name, device, liveJob }) {
    this.active = { path, name, liveJob, elapsed: 0, turns: new Map(), speakers: [], names: {} };
    $("rec-name").textContent = name;
    $("rec-name").title = path;
    $("rec-device").textContent = device ? `From ${device}` : "";
    $("rec-live-note").hidden = liveJob !== null;
    $("rec-silence").hidden = true;
    $("rec-finishing").hidden = true;
    $("rec-stop").hidden = false;
    $("live-lanes").replaceChildren();
    $("live-labels").replaceChildren();
    $("live-speakers").replaceChildren();
    $("live-empty").hidden = false;
    this.renderElapsed();
    this.layoutTimeline();
    this.renderButton();
    $("recording").hidden = false;
    this.onVisible(true);
  }

  status({ elapsedS, level, silentS }) {
    if (!this.active) return;
    this.active.elapsed = elapsedS;
    this.renderElapsed();
    // Peak level on a rough loudness scale: speech fills about two thirds.
    $("rec-level").style.width = `${Math.min(100, Math.sqrt(level) * 100).toFixed(1)}%`;
    $("rec-silence").hidden = silentS < SILENCE_WARNING_S;
    this.layoutTimeline();
  }

  liveTurn(turn) {
    const active = this.active;
    if (!active || (active.liveJob !== null && turn.liveJob !== active.liveJob)) return;
    if (!active.speakers.includes(turn.speaker)) {
      active.speakers.push(turn.speaker);
      this.addSpeaker(turn.speaker);
    }
    let bar = active.turns.get(turn.id);
    if (!bar) {
      const slot = colourSlot(active.speakers.indexOf(turn.speaker));
      bar = h("div.turn.live-turn", { dataset: { speaker: turn.speaker, slot } });
      active.turns.set(turn.id, bar);
    }
    bar.dataset.start = turn.startS;
    bar.dataset.end = turn.endS;
    bar.classList.toggle("open", !turn.closed);
    // A turn can change voice as the engine learns: move it to its lane.
    if (bar.dataset.speaker !== turn.speaker) {
      bar.dataset.speaker = turn.speaker;
      bar.dataset.slot = colourSlot(active.speakers.indexOf(turn.speaker));
    }
    const lane = $("live-lanes").querySelector(`[data-speaker="${CSS.escape(turn.speaker)}"]`);
    if (lane && bar.parentElement !== lane) lane.append(bar);
    $("live-empty").hidden = true;
    this.placeTurn(bar);
    this.renderTalkTimes();
  }

  stopped(stopped) {
    if (stopped.ended.reason === "device-lost") {
      this.toast(`The microphone went away: ${stopped.ended.message}. What was recorded is kept.`, "error");
    } else if (stopped.ended.reason === "failed") {
      this.toast(`Recording stopped: ${stopped.ended.message}. What reached the disk is kept.`, "error");
    }
    if (stopped.droppedSamples > 0) {
      this.toast("The computer fell behind and a little audio was lost.", "error");
    }
    $("rec-stop").hidden = true;
    $("rec-silence").hidden = true;
    $("rec-finishing").hidden = false;
    const names = this.active?.names ?? {};
    this.active = null;
    this.renderButton();
    this.onStopped(stopped, names);
  }

  /** The final result is shown: the live panel steps aside. */
  close() {
    if (this.recording) return;
    $("recording").hidden = true;
    this.onVisible(false);
  }

  addSpeaker(label) {
    const active = this.active;
    const slot = colourSlot(active.speakers.indexOf(label));
    $("live-labels").append(h("div.lane-label", { dataset: { slot, speaker: label } },
      h("span.swatch"), h("span.lane-name", {}, label)));
    $("live-lanes").append(h("div.lane", { dataset: { speaker: label, slot } }));
    const input = h("input.live-name", {
      type: "text",
      placeholder: label,
      "aria-label": `Name for ${label}`,
      onchange: () => this.rename(label, input.value),
    });
    $("live-speakers").append(h("tr", { dataset: { speaker: label } },
      h("td", {}, h("span.swatch", { dataset: { slot } })),
      h("td", {}, input),
      h("td.num.talk", {}, "0:00")));
  }

  async rename(label, name) {
    const active = this.active;
    if (!active || active.liveJob === null) return;
    try {
      await ipc.renameLiveSpeaker(active.liveJob, label, name);
      active.names[label] = name.trim();
      const shown = displayName(active.names, label);
      const laneName = $("live-labels").querySelector(`[data-speaker="${CSS.escape(label)}"] .lane-name`);
      if (laneName) laneName.textContent = shown;
    } catch (err) {
      this.toast(err.message || String(err), "error");
    }
  }

  renderTalkTimes() {
    const talk = new Map();
    for (const bar of this.active.turns.values()) {
      const s = bar.dataset.speaker;
      talk.set(s, (talk.get(s) || 0) + (bar.dataset.end - bar.dataset.start));
    }
    for (const row of $("live-speakers").children) {
      row.querySelector(".talk").textContent = clock(talk.get(row.dataset.speaker) || 0);
    }
  }

  /**
   * The timeline spans the recording so far, so every bar moves as it
   * grows: bars are placed in seconds times one scale variable, and each
   * tick sets only that (an 8-hour meeting holds thousands of bars).
   */
  layoutTimeline() {
    const span = Math.max(this.active.elapsed, 1);
    $("live-lanes").style.setProperty("--percent-per-s", `${100 / span}%`);
  }

  placeTurn(bar) {
    const { start, end } = bar.dataset;
    bar.style.left = `calc(var(--percent-per-s) * ${start})`;
    bar.style.width = `calc(var(--percent-per-s) * ${end - start})`;
  }

  renderElapsed() {
    $("rec-elapsed").textContent = clock(this.active?.elapsed ?? 0);
  }

  renderButton() {
    const btn = $("record-btn");
    btn.classList.toggle("on", this.recording);
    btn.querySelector(".rec-label").textContent = this.recording ? "Stop" : "Record";
    btn.disabled = this.busy;
    btn.setAttribute("aria-pressed", String(this.recording));
    $("mic-select").disabled = this.recording;
  }

  async initMicrophones(chosen) {
    const select = $("mic-select");
    select.append(h("option", { value: "" }, "Default microphone"));
    select.value = "";
    select.addEventListener("change", async () => {
      try {
        await ipc.setMicrophone(select.value || null);
      } catch (err) {
        this.toast(err.message || String(err), "error");
      }
    });
    try {
      for (const device of await ipc.listMicrophones()) {
        const label = device.isDefault ? `${device.name} (default)` : device.name;
        select.append(h("option", { value: device.id, title: device.id }, label));
      }
    } catch (err) {
      select.title = `No microphones found: ${err.message || err}`;
    }
    if (chosen && [...select.options].some((o) => o.value === chosen)) select.value = chosen;
  }
}
