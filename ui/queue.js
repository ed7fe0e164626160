// The queue: one row per file with its name, duration, progress and stage,
// a cancel button, the backend that ran it and, when done, the real-time
// factor. Each row follows its job over the job's own channel.

import * as ipc from "./ipc.js";
import { h, clock, speedText } from "./util.js";
import { describeCount } from "./speakers-input.js";

// Share of the whole job each stage takes, for one progress bar.
const STAGE_SPAN = {
  decode: [0, 0.05],
  segmentation: [0.05, 0.55],
  embedding: [0.55, 0.9],
  clustering: [0.9, 0.96],
  reconstruction: [0.96, 1],
};
const STAGE_TEXT = {
  decode: "Decoding",
  segmentation: "Finding speech",
  embedding: "Comparing voices",
  clustering: "Grouping speakers",
  reconstruction: "Building turns",
};
const BACKEND_TEXT = { cpu: "CPU", cuda: "CUDA", metal: "Metal", "simulated-gpu": "GPU (sim)" };

let nextKey = 1;

export class Queue {
  /** `onDone(job)` on success; `onSettled(job)` on any end (done, failed, cancelled). */
  constructor(list, empty, { onSelect, onDone, onSettled = () => {} }) {
    this.list = list;
    this.empty = empty;
    this.onSelect = onSelect;
    this.onDone = onDone;
    this.onSettled = onSettled;
    this.jobs = [];
  }

  /** Adds a row and queues the file; `rerunOf` links a re-run to its source. */
  add(file, speakers, rerunOf = null) {
    const job = {
      key: nextKey++,
      id: null,
      path: file.path,
      name: file.name,
      speakers,
      rerunOf,
      state: "queued",
      durationS: null,
      result: null,
      names: {},
    };
    job.row = this.renderRow(job);
    this.jobs.push(job);
    this.list.append(job.row.el);
    this.empty.hidden = true;
    // Events can arrive before the promise resolves; the row exists already.
    ipc
      .queueFile(file.path, speakers, (msg) => this.onEvent(job, msg))
      .then((queued) => {
        job.id = queued.job;
        job.durationS = queued.durationS;
        job.row.el.dataset.job = queued.job;
        this.update(job);
      })
      .catch((err) => this.fail(job, err.message || String(err)));
    return job;
  }

  renderRow(job) {
    const name = h("div.job-name", { title: job.path }, job.name);
    const tag = job.rerunOf || job.speakers?.mode !== "auto"
      ? h("span.tag", {}, describeCount(job.speakers)) : null;
    const meta = h("div.job-meta");
    const bar = h("div.bar", {}, h("div.bar-fill"));
    const error = h("div.job-error", { role: "status" });
    const backend = h("span.badge.backend", { hidden: true });
    const rtf = h("span.rtf", { hidden: true });
    const cancel = h("button.icon-btn.cancel", {
      title: "Cancel",
      "aria-label": `Cancel ${job.name}`,
      onclick: (e) => {
        e.stopPropagation();
        if (job.id !== null) ipc.cancelJob(job.id);
      },
    }, "✕");
    const el = h("li.job", {
      tabIndex: 0,
      dataset: { state: job.state, key: job.key },
      onclick: () => job.state === "done" && this.onSelect(job),
      onkeydown: (e) => {
        if (e.key === "Enter" && job.state === "done") this.onSelect(job);
      },
    },
      h("div.job-main", {}, h("div.job-title", {}, name, tag), meta, bar, error),
      h("div.job-side", {}, backend, rtf, cancel));
    return { el, meta, bar, error, backend, rtf, cancel };
  }

  onEvent(job, { event, data }) {
    switch (event) {
      case "queued":
        job.state = "queued";
        job.position = data.position;
        break;
      case "started":
        job.state = "running";
        job.backend = data.backend;
        job.stage = null;
        job.progress = 0;
        break;
      case "progress": {
        job.state = "running";
        job.stage = data.stage;
        const [a, b] = STAGE_SPAN[data.stage] || [0, 1];
        job.progress = a + (b - a) * (data.total ? data.done / data.total : 0);
        break;
      }
      case "done":
        job.state = "done";
        job.result = data.result;
        job.backend = data.backend;
        job.fallback = data.fallback;
        job.durationS = data.result.duration_s;
        // Speed as a multiple of real time, as the CLI and README give it.
        job.speed = data.wallS > 0 ? data.result.duration_s / data.wallS : null;
        break;
      case "failed":
        return this.fail(job, data.error.message);
      case "cancelled":
        job.state = "cancelled";
        break;
      default:
        return;
    }
    this.update(job);
    if (job.state === "done") {
      // A result may come with names already (a recording's final pass
      // inherits the names given to live voices): fetch them first.
      ipc.getResult(data.job)
        .then((view) => (job.names = view.names), () => {})
        .finally(() => {
          this.onDone(job);
          this.onSettled(job);
        });
    } else if (job.state === "cancelled") {
      this.onSettled(job);
    }
  }

  fail(job, message) {
    job.state = "failed";
    job.error = message;
    this.update(job);
    this.onSettled(job);
  }

  update(job) {
    const r = job.row;
    r.el.dataset.state = job.state;
    const duration = job.durationS != null ? clock(job.durationS) : null;
    let status;
    switch (job.state) {
      case "queued":
        status = job.position ? `Waiting (${job.position} ahead)` : "Waiting";
        break;
      case "running":
        status = job.stage ? `${STAGE_TEXT[job.stage] || job.stage}…` : "Loading…";
        break;
      case "done": {
        const n = job.result.speakers.length;
        status = `${n} speaker${n === 1 ? "" : "s"}`;
        break;
      }
      case "failed":
        status = "Could not diarize";
        break;
      case "cancelled":
        status = "Cancelled";
        break;
    }
    r.meta.textContent = [duration, status].filter(Boolean).join(" · ");
    const fill = job.state === "done" ? 1 : job.state === "running" ? job.progress || 0 : 0;
    r.bar.firstChild.style.width = `${(fill * 100).toFixed(1)}%`;
    r.bar.hidden = job.state !== "running" && job.state !== "queued";
    r.error.textContent = job.state === "failed" ? job.error : "";
    r.error.hidden = job.state !== "failed";
    r.backend.hidden = !job.backend;
    r.backend.textContent = BACKEND_TEXT[job.backend] || job.backend || "";
    if (job.fallback) r.backend.title = `Fell back from ${job.fallback.from}: ${job.fallback.reason}`;
    r.rtf.hidden = job.state !== "done" || job.speed == null;
    if (job.speed != null) {
      r.rtf.textContent = `${speedText(job.speed)}× real time`;
      r.rtf.title = `${speedText(job.speed)} seconds of audio per second of work`;
    }
    r.cancel.hidden = job.state !== "queued" && job.state !== "running";
  }

  select(job) {
    for (const j of this.jobs) j.row.el.classList.toggle("selected", j === job);
  }
}
