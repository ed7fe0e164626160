// The status bar (backend, GPU memory, app and system RAM, CPU %), the
// safe-mode switch that mirrors the tray checkbox, and the fallback banner.

import * as ipc from "./ipc.js";
import { bytes } from "./util.js";

const $ = (id) => document.getElementById(id);

let backend = null;
let reloading = false;

function renderBackend() {
  const pill = $("st-backend");
  const text = pill.querySelector(".txt");
  if (reloading) {
    text.textContent = reloading;
    pill.dataset.kind = "busy";
    return;
  }
  if (!backend) return;
  text.textContent = backend.safeMode ? `${backend.label} · safe mode` : backend.label;
  pill.dataset.kind = backend.safeMode ? "safe" : backend.backend === "cpu" ? "cpu" : "gpu";
  pill.title = backend.reason;
  $("safe-mode").checked = backend.safeMode;
}

export function showBackend(view) {
  backend = view;
  reloading = false;
  renderBackend();
}

export function showStats(s) {
  $("st-gpu").textContent = s.gpu ? `GPU ${bytes(s.gpu.usedBytes)} / ${bytes(s.gpu.totalBytes)}` : "GPU n/a";
  $("st-app").textContent = `App ${bytes(s.processRssBytes)}`;
  $("st-ram").textContent = `RAM ${bytes(s.ramUsedBytes)} / ${bytes(s.ramTotalBytes)}`;
  $("st-cpu").textContent = `CPU ${Math.round(s.processCpuPercent)}%`;
}

/** The switch moved here or in the tray: show the reload until the engine reports. */
function expectReload(on) {
  $("safe-mode").checked = on;
  if (backend && backend.safeMode === on) return;
  reloading = on ? "Reloading on CPU…" : "Reloading on GPU…";
  renderBackend();
}

export function showBanner(text) {
  const banner = $("banner");
  banner.querySelector(".banner-text").textContent = text;
  banner.hidden = false;
}

export function init(initialBackend, toast) {
  showBackend(initialBackend);
  $("safe-mode").addEventListener("change", async (e) => {
    const on = e.target.checked;
    expectReload(on);
    try {
      await ipc.setSafeMode(on);
    } catch (err) {
      reloading = false;
      renderBackend();
      toast(err.message || String(err), "error");
    }
  });
  $("banner").querySelector(".banner-close").addEventListener("click", () => {
    $("banner").hidden = true;
  });
  ipc.onBackendChanged(showBackend);
  ipc.onSafeModeChanged(expectReload);
  ipc.onStats(showStats);
  ipc.onFallback((f) => {
    showBanner(`${f.from} failed, so Diarist switched to the CPU and safe mode: ${f.reason}`);
  });
  // Stats are sampled only while someone looks.
  const watch = () => ipc.watchStats(!document.hidden);
  document.addEventListener("visibilitychange", watch);
  watch();
}
