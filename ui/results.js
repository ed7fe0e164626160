// The results of one file: a timeline with a lane per speaker (overlapped
// speech shows as simultaneous bars over a hatched band), zoom and scroll,
// playback with a moving playhead, the speaker list with rename and merge,
// re-run with another speaker count, and export.

import * as ipc from "./ipc.js";
import { h, clock, percent, displayName, colourSlot, speedText } from "./util.js";
import { speakerCountInput } from "./speakers-input.js";

const $ = (id) => document.getElementById(id);
const ZOOMS = [1, 2, 4, 8, 16, 32, 64];
const TICK_STEPS_S = [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
const MIN_TICK_PX = 72;
// Above this, Linux (which must play from memory, see ipc.audioBlobUrl)
// gives up on playback rather than hold the whole file.
const MAX_BLOB_BYTES = 512 * 1024 * 1024;

/** Stretches of time where two or more speakers talk at once. */
export function overlapSpans(turns) {
  const edges = [];
  for (const t of turns) edges.push([t.start_s, 1], [t.end_s, -1]);
  // Ends before starts at the same instant: touching turns do not overlap.
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const spans = [];
  let active = 0;
  let from = 0;
  for (const [at, step] of edges) {
    const before = active;
    active += step;
    if (before < 2 && active >= 2) from = at;
    else if (before >= 2 && active < 2 && at > from) spans.push([from, at]);
  }
  return spans;
}

export class Results {
  constructor({ formats, defaultFormat, onRerun, onFormatChange, toast }) {
    this.job = null;
    this.zoom = 1;
    this.toast = toast;
    this.onRerun = onRerun;
    this.audio = $("audio");
    this.audioError = null;

    const select = $("export-format");
    for (const f of formats) select.append(h("option", { value: f.name }, `${f.label} (.${f.extension})`));
    select.value = defaultFormat;
    select.addEventListener("change", () => onFormatChange(select.value));
    $("export-btn").addEventListener("click", () => this.export());

    this.rerunCount = speakerCountInput({ mode: "exact", n: 2 });
    $("rerun-count").append(this.rerunCount.el);
    $("rerun-btn").addEventListener("click", () => {
      if (this.job) this.onRerun(this.job, this.rerunCount.value());
    });

    $("play-btn").addEventListener("click", () => this.togglePlay());
    $("zoom-in").addEventListener("click", () => this.setZoom(this.zoomStep(1)));
    $("zoom-out").addEventListener("click", () => this.setZoom(this.zoomStep(-1)));
    const scroller = $("tl-scroller");
    scroller.addEventListener("wheel", (e) => {
      if (!(e.ctrlKey || e.metaKey)) return;
      e.preventDefault();
      this.setZoom(this.zoomStep(e.deltaY < 0 ? 1 : -1), e.clientX);
    }, { passive: false });
    $("tl-track").addEventListener("click", (e) => {
      if (e.target.closest(".turn")) return;
      const rect = $("tl-track").getBoundingClientRect();
      this.seek(((e.clientX - rect.left) / rect.width) * this.duration());
    });
    new ResizeObserver(() => this.job && this.drawRuler()).observe(scroller);

    this.audio.addEventListener("play", () => this.animate());
    this.audio.addEventListener("pause", () => this.renderTransport());
    this.audio.addEventListener("ended", () => this.renderTransport());
    this.audio.addEventListener("error", () => this.audioFailed());
    this.audio.addEventListener("loadedmetadata", () => {
      if (this.position) this.audio.currentTime = this.position;
      if (this.wantPlay) this.play();
      this.renderTransport();
    });
  }

  duration() {
    return this.job?.result?.duration_s || 1;
  }

  show(job) {
    const sameFile = this.job && this.job.path === job.path;
    this.job = job;
    $("results-empty").hidden = true;
    $("results").hidden = false;
    if (!sameFile) {
      this.audio.pause();
      this.audioError = null;
      this.position = 0;
      this.wantPlay = false;
      this.triedBlob = false;
      if (this.blobUrl) URL.revokeObjectURL(this.blobUrl);
      this.blobUrl = null;
      this.audio.src = ipc.audioUrl(job.path);
      this.zoom = 1;
    }
    this.rerunCount.set(job.speakers?.mode === "auto"
      ? { mode: "exact", n: job.result.speakers.length || 2 } : job.speakers);
    this.render();
  }

  render() {
    const { result } = this.job;
    $("r-title").textContent = this.job.name;
    $("r-title").title = this.job.path;
    const n = result.speakers.length;
    const rtf = this.job.speed != null ? `${speedText(this.job.speed)}× real time` : null;
    const backend = { cpu: "CPU", cuda: "CUDA", metal: "Metal" }[this.job.backend] || this.job.backend;
    $("r-meta").textContent = [clock(result.duration_s), `${n} speaker${n === 1 ? "" : "s"}`,
      `${result.turns.length} turns`, backend, rtf].filter(Boolean).join(" · ");
    this.renderTimeline();
    this.renderSpeakers();
    this.renderTransport();
  }

  slotOf(label) {
    return colourSlot(this.job.result.speakers.findIndex((s) => s.speaker === label));
  }

  renderTimeline() {
    const { result, names } = this.job;
    const d = this.duration();
    const pct = (t) => `${((t / d) * 100).toFixed(4)}%`;
    const labels = $("tl-labels");
    const lanes = $("tl-lanes");
    labels.replaceChildren();
    lanes.replaceChildren();
    for (const s of result.speakers) {
      const slot = this.slotOf(s.speaker);
      labels.append(h("div.lane-label", { dataset: { slot }, title: s.speaker },
        h("span.swatch"), h("span.lane-name", {}, displayName(names, s.speaker))));
      const lane = h("div.lane", { dataset: { speaker: s.speaker, slot } });
      for (const t of result.turns.filter((t) => t.speaker === s.speaker)) {
        const bar = h("button.turn", {
          title: `${displayName(names, s.speaker)} · ${clock(t.start_s, true)}–${clock(t.end_s, true)}`,
          dataset: { speaker: t.speaker, start: t.start_s, end: t.end_s },
          onclick: () => this.playFrom(t.start_s),
        });
        bar.style.left = pct(t.start_s);
        bar.style.width = pct(t.end_s - t.start_s);
        lane.append(bar);
      }
      lanes.append(lane);
    }
    const bands = $("tl-overlaps");
    bands.replaceChildren();
    for (const [a, b] of overlapSpans(result.turns)) {
      const band = h("div.overlap", { title: `Overlapped speech ${clock(a, true)}–${clock(b, true)}` });
      band.style.left = pct(a);
      band.style.width = pct(b - a);
      bands.append(band);
    }
    this.applyZoom();
  }

  drawRuler() {
    const ruler = $("tl-ruler");
    ruler.replaceChildren();
    const d = this.duration();
    const width = $("tl-track").getBoundingClientRect().width || 1;
    const step = TICK_STEPS_S.find((s) => (s / d) * width >= MIN_TICK_PX) || 3600;
    for (let t = 0; t <= d + 1e-9; t += step) {
      const tick = h("span.tick", {}, clock(t, step < 1));
      tick.style.left = `${(t / d) * 100}%`;
      ruler.append(tick);
    }
  }

  zoomStep(dir) {
    const i = ZOOMS.indexOf(this.zoom);
    return ZOOMS[Math.min(ZOOMS.length - 1, Math.max(0, i + dir))];
  }

  /** Zooms around the cursor (or the playhead), keeping it in place. */
  setZoom(zoom, clientX = null) {
    const scroller = $("tl-scroller");
    const rect = scroller.getBoundingClientRect();
    const x = clientX !== null ? clientX - rect.left : rect.width / 2;
    const at = (scroller.scrollLeft + x) / (rect.width * this.zoom);
    this.zoom = zoom;
    this.applyZoom();
    scroller.scrollLeft = at * rect.width * zoom - x;
  }

  applyZoom() {
    $("tl-track").style.width = `${this.zoom * 100}%`;
    $("zoom-level").textContent = `${this.zoom}×`;
    $("zoom-out").disabled = this.zoom === ZOOMS[0];
    $("zoom-in").disabled = this.zoom === ZOOMS[ZOOMS.length - 1];
    this.drawRuler();
  }

  renderSpeakers() {
    const { result, names } = this.job;
    const body = $("speakers-body");
    body.replaceChildren();
    for (const s of result.speakers) {
      const others = result.speakers.filter((o) => o.speaker !== s.speaker);
      const merge = h("select.merge", { "aria-label": `Merge ${displayName(names, s.speaker)} into…`, disabled: !others.length },
        h("option", { value: "" }, "Merge into…"),
        others.map((o) => h("option", { value: o.speaker }, displayName(names, o.speaker))));
      merge.addEventListener("change", () => merge.value && this.merge(s.speaker, merge.value));
      const shareBar = h("span.share-bar", {}, h("span.share-fill"));
      shareBar.firstChild.style.width = percent(s.share);
      body.append(h("tr", { dataset: { speaker: s.speaker, slot: this.slotOf(s.speaker) } },
        h("td", {}, h("span.swatch")),
        h("td.name-cell", {}, this.nameButton(s.speaker)),
        h("td.num", {}, clock(s.talk_time_s)),
        h("td.share", {}, shareBar, h("span.num", {}, percent(s.share))),
        h("td.num", {}, s.turns),
        h("td", {}, merge)));
    }
  }

  /** The speaker's name; a click turns it into a text field (Enter saves, Escape cancels). */
  nameButton(label) {
    const button = h("button.name", { title: "Rename", onclick: () => {
      const input = h("input.rename", { type: "text", value: displayName(this.job.names, label), "aria-label": `New name for ${label}` });
      let done = false;
      const finish = async (save) => {
        if (done) return;
        done = true;
        if (save) await this.rename(label, input.value);
        input.replaceWith(this.nameButton(label));
      };
      input.addEventListener("keydown", (e) => {
        if (e.key === "Enter") finish(true);
        if (e.key === "Escape") finish(false);
        e.stopPropagation();
      });
      input.addEventListener("blur", () => finish(true));
      button.replaceWith(input);
      input.focus();
      input.select();
    } }, displayName(this.job.names, label));
    return button;
  }

  async rename(label, name) {
    const job = this.job;
    try {
      await ipc.renameSpeaker(job.id, label, name.trim());
      job.names = { ...job.names, [label]: name.trim() };
      if (this.job === job) {
        this.renderTimeline();
        this.renderSpeakers();
      }
    } catch (err) {
      this.toast(err.message || String(err), "error");
    }
  }

  async merge(from, into) {
    const job = this.job;
    const fromName = displayName(job.names, from);
    try {
      const view = await ipc.mergeSpeakers(job.id, from, into);
      job.result = view.result;
      job.names = view.names;
      if (this.job === job) this.render();
      this.toast(`Merged ${fromName} into ${displayName(view.names, into)}`);
    } catch (err) {
      this.toast(err.message || String(err), "error");
    }
  }

  async export() {
    if (!this.job) return;
    const format = $("export-format").value;
    try {
      const path = await ipc.exportResult(this.job.id, format);
      if (path) this.toast(`Exported to ${path}`, "ok");
    } catch (err) {
      this.toast(err.message || String(err), "error");
    }
  }

  // ── Playback ──

  playFrom(t) {
    this.seek(t);
    this.play();
  }

  seek(t) {
    const at = Math.max(0, Math.min(this.duration(), t));
    try {
      this.audio.currentTime = at;
    } catch {
      // Not loaded yet: the playhead still moves so the click is seen.
    }
    this.position = at;
    this.renderTransport();
  }

  play() {
    if (this.audio.readyState === 0) {
      // Still loading (or switching to the blob): play once it can.
      this.wantPlay = true;
      return;
    }
    this.wantPlay = false;
    this.audio.play().catch((err) => {
      this.audioError = err.message || "playback failed";
      this.renderTransport();
    });
  }

  /** The direct asset URL failed: retry from memory once, else say why. */
  async audioFailed() {
    const job = this.job;
    if (!job) return;
    const unsupported = this.audio.error?.code === MediaError.MEDIA_ERR_SRC_NOT_SUPPORTED;
    if (unsupported && !this.triedBlob) {
      this.triedBlob = true;
      try {
        const url = await ipc.audioBlobUrl(job.path, MAX_BLOB_BYTES);
        if (this.job?.path !== job.path) return URL.revokeObjectURL(url);
        this.blobUrl = url;
        this.audio.src = url;
        return;
      } catch (err) {
        this.audioError = err.message || String(err);
      }
    } else {
      this.audioError = "this recording cannot be played here";
    }
    this.wantPlay = false;
    this.renderTransport();
  }

  togglePlay() {
    if (!this.job) return;
    if (this.wantPlay) this.wantPlay = false;
    else if (this.audio.paused) this.play();
    else this.audio.pause();
    this.renderTransport();
  }

  animate() {
    const frame = () => {
      this.renderTransport();
      if (!this.audio.paused && !this.audio.ended) requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  }

  renderTransport() {
    if (!this.job) return;
    const t = this.audio.readyState > 0 ? this.audio.currentTime : this.position || 0;
    const d = this.duration();
    const playing = (!this.audio.paused && !this.audio.ended) || this.wantPlay;
    $("play-btn").textContent = playing ? "❚❚" : "▶";
    $("play-btn").setAttribute("aria-label", playing ? "Pause" : "Play");
    $("time").textContent = `${clock(t, true)} / ${clock(d, true)}`;
    $("playback-note").textContent = this.audioError ? `Playback unavailable: ${this.audioError}` : "";
    $("tl-playhead").style.left = `${(t / d) * 100}%`;
    if (playing && this.zoom > 1) this.follow(t / d);
  }

  /** Keeps the playhead in view while zoomed in. */
  follow(fraction) {
    const scroller = $("tl-scroller");
    const x = fraction * scroller.scrollWidth;
    if (x < scroller.scrollLeft || x > scroller.scrollLeft + scroller.clientWidth * 0.9) {
      scroller.scrollLeft = x - scroller.clientWidth * 0.1;
    }
  }
}
