// Starts the window: loads the app state, wires the toolbar, the queue, the
// results view and the status bar, and the keyboard shortcuts.

import * as ipc from "./ipc.js";
import * as status from "./status.js";
import { h } from "./util.js";
import { Queue } from "./queue.js";
import { Results } from "./results.js";
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
  const queue = new Queue($("queue"), $("queue-empty"), {
    onSelect: select,
    // Show a result when nothing is shown yet, or when it re-ran the one shown.
    onDone: (job) => {
      if (!selected || job.rerunOf === selected) select(job);
    },
  });

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
    };
  }
  document.body.dataset.ready = "true";
}

main().catch((err) => {
  document.body.append(h("pre.fatal", {}, `Diarist could not start: ${err.message || err}`));
});
