// Starts the window: loads the app state, wires the toolbar, the queue, the
// results view and the status bar, and the keyboard shortcuts.

import * as ipc from "./ipc.js";
import * as status from "./status.js";
import { h, clock } from "./util.js";
import { Queue } from "./queue.js";
import { Results } from "./results.js";
import { Recording } from "./recording.js";
import { speakerCountInput } from "./speakers-input.js";

const $ = (id) => document.getElementById(id);

let toastTimer = null;
function toast(message, kind = "info") {
  const el = $("toast");
  el.textContent = message;
  el.dataset.kind = kind;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (el.hidden = true), kind === "error" ? 8000 : 5000);
}

async function main() {
  const state = await ipc.appState();
  let settings = state.settings;

  const persist = async () => {
    try {
      settings = await ipc.saveDefaults(defaultCount.value(), settings.defaultExportFormat);
    } catch (err) {
      toast(err.message || String(err), "error");
    }
  };
  const defaultCount = speakerCountInput(settings.defaultSpeakers, persist);
  $("default-count").append(defaultCount.el);

  const results = new Results({
    formats: state.formats,
    defaultFormat: settings.defaultExportFormat,
    toast,
    onRerun: (job, speakers) => {
      queue.add({ path: job.path, name: job.name }, speakers, job);
      toast(`Re-running ${job.name}`);
    },
    onFormatChange: (format) => {
      settings.defaultExportFormat = format;
      persist();
    },
  });

  let selected = null;
  const select = (job) => {
    selected = job;
    queue.select(job);
    results.show(job);
  };
  // The final pass of the recording that just stopped.
  let finalPass = null;
  const queue = new Queue($("queue"), $("queue-empty"), {
    onSelect: (job) => {
      recording.close();
      select(job);
    },
    // Show a result when nothing is shown yet, when it re-ran the one shown,
    // or when it is the recording just made.
    onDone: (job) => {
      if (job === finalPass) {
        recording.close();
        select(job);
      } else if (!selected || job.rerunOf === selected) {
        select(job);
      }
    },
    onSettled: (job) => {
      if (job !== finalPass) return;
      finalPass = null;
      if (job.state !== "done") {
        recording.close();
        toast(`The recording is saved, but it could not be diarized: ${job.error || job.state}`, "error");
      }
    },
  });

  const recording = new Recording({
    toast,
    inputDevice: settings.inputDevice,
    onVisible: (shown) => document.body.classList.toggle("recording-shown", shown),
    onStopped: (stopped) => {
      toast(`Saved ${stopped.name} (${clock(stopped.durationS)})`);
      finalPass = queue.add({ path: stopped.path, name: stopped.name }, defaultCount.value());
    },
  });
  if (state.recording) recording.resume();
  ipc.onAppError((err) => toast(err.message || String(err), "error"));

  if (state.recovered.length) {
    const n = state.recovered.length;
    const list = state.recovered
      .map((r) => `${r.path.split(/[\\/]/).pop()} (${clock(r.durationS)})`)
      .join(", ");
    $("recovered-text").textContent =
      `Diarist was closed while recording. ${n === 1 ? "This recording was" : `These ${n} recordings were`} repaired and kept: ${list}.`;
    $("recovered").hidden = false;
    const dismiss = () => ($("recovered").hidden = true);
    $("recovered-dismiss").addEventListener("click", dismiss);
    $("recovered-queue").addEventListener("click", () => {
      dismiss();
      ipc.openRecovered().catch((err) => toast(err.message || String(err), "error"));
    });
  }
  for (const [path, reason] of state.unrecoverable) {
    toast(`An unfinished recording could not be repaired: ${path}: ${reason}`, "error");
  }

  ipc.onInputsAdded(({ files, emptyFolders }) => {
    for (const file of files) queue.add(file, defaultCount.value());
    for (const folder of emptyFolders) toast(`No audio files in ${folder}`, "error");
  });
  ipc.onDragState((over) => document.body.classList.toggle("dragging", over));

  const open = (folders) => ipc.openInputs(folders).catch((err) => toast(err.message || String(err), "error"));
  $("open-btn").addEventListener("click", () => open(false));
  $("open-folder-btn").addEventListener("click", () => open(true));
  $("dropzone-open").addEventListener("click", () => open(false));
  const sample = () => ipc.trySample().catch((err) => toast(err.message || String(err), "error"));
  $("sample-btn").addEventListener("click", sample);
  $("dropzone-sample").addEventListener("click", sample);
  $("sample-btn").hidden = $("dropzone-sample").hidden = !state.sampleAvailable;

  status.init(state.backend, toast);

  document.addEventListener("keydown", (e) => {
    const mod = e.metaKey || e.ctrlKey;
    const typing = e.target.closest("input, select, textarea");
    if (mod && e.key.toLowerCase() === "o") {
      e.preventDefault();
      open(e.shiftKey);
    } else if (mod && e.shiftKey && e.key.toLowerCase() === "r" && !state.recordShortcutGlobal) {
      // Taken system-wide when the desktop allows; here otherwise.
      e.preventDefault();
      recording.toggle();
    } else if (mod && e.key.toLowerCase() === "e") {
      e.preventDefault();
      results.export();
    } else if (e.key === " " && !typing) {
      e.preventDefault();
      results.togglePlay();
    }
  });
  // A focused button (say, the turn just clicked) would take Space's keyup
  // as a click too; Space belongs to play/pause.
  document.addEventListener("keyup", (e) => {
    if (e.key === " " && !e.target.closest("input, select, textarea")) e.preventDefault();
  });

  if (state.e2e) {
    // The end-to-end test's hooks (debug builds started by the test only).
    window.diaristE2E = {
      drop: (paths) => ipc.e2eDrop(paths),
      result: (job) => ipc.getResult(job),
      selectedJob: () => selected?.id ?? null,
      recording: () => recording.recording,
    };
  }
  document.body.dataset.ready = "true";
}

main().catch((err) => {
  document.body.append(h("pre.fatal", {}, `Diarist could not start: ${err.message || err}`));
});
