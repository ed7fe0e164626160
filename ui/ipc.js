// The only bridge to Rust: every call into the shell and every event from it
// goes through this module, so the rest of the UI never sees window.__TAURI__.

const tauri = window.__TAURI__;
const { invoke, Channel, convertFileSrc } = tauri.core;
const { listen } = tauri.event;

export const appState = () => invoke("app_state");

/** Opens the native Open dialog; the picked files arrive as "inputs-added". */
export const openInputs = (folders) => invoke("open_inputs", { folders });

/** Takes in the bundled sample, as a drop of that file would. */
export const trySample = () => invoke("try_sample");

/**
 * Queues a file the shell granted. `onEvent` receives this job's engine
 * events: { event: "progress" | "done" | ..., data: {...} }.
 */
export function queueFile(path, speakers, onEvent) {
  const channel = new Channel();
  channel.onmessage = onEvent;
  return invoke("queue_file", { path, speakers, onEvent: channel });
}

export const cancelJob = (job) => invoke("cancel_job", { job });
export const getResult = (job) => invoke("get_result", { job });
export const renameSpeaker = (job, label, name) =>
  invoke("rename_speaker", { job, label, name });
export const mergeSpeakers = (job, from, into) =>
  invoke("merge_speakers", { job, from, into });

/** Asks where to save and writes the file; resolves to its path, or null. */
export const exportResult = (job, format) => invoke("export_result", { job, format });

export const setSafeMode = (on) => invoke("set_safe_mode", { on });
export const saveDefaults = (speakers, format) =>
  invoke("save_defaults", { speakers, format });
export const watchStats = (on) => invoke("watch_stats", { on });

/** Queues the recordings repaired at start; they arrive as "inputs-added". */
export const openRecovered = () => invoke("open_recovered");

/** Starts / stops recording; what follows arrives as recording events. */
export const startRecording = () => invoke("start_recording");
export const stopRecording = () => invoke("stop_recording");
export const renameLiveSpeaker = (liveJob, label, name) =>
  invoke("rename_live_speaker", { liveJob, label, name });
export const listMicrophones = () => invoke("list_microphones");
export const setMicrophone = (id) => invoke("set_microphone", { id });

/** The end-to-end test's stand-in for a drop; refused outside test runs. */
export const e2eDrop = (paths) => invoke("e2e_drop", { paths });

/** A URL the <audio> element may load: the asset protocol, for granted files only. */
export const audioUrl = (path) => convertFileSrc(path);

/**
 * The same file as a blob: URL. WebKitGTK hands custom-scheme media URLs
 * straight to GStreamer, which cannot read them (WebKit bug 146351), while
 * fetch() goes through the scheme handler; so on Linux the bytes are fetched
 * and played from memory, up to `maxBytes`.
 */
export async function audioBlobUrl(path, maxBytes) {
  const response = await fetch(convertFileSrc(path));
  if (!response.ok) throw new Error(`the recording could not be read (${response.status})`);
  const length = Number(response.headers.get("content-length"));
  if (length > maxBytes) {
    response.body?.cancel();
    throw new Error("the recording is too large to play in this window");
  }
  return URL.createObjectURL(await response.blob());
}

const on = (name) => (handler) => listen(name, (e) => handler(e.payload));
export const onInputsAdded = on("inputs-added");
export const onBackendChanged = on("backend-changed");
export const onSafeModeChanged = on("safe-mode-changed");
export const onFallback = on("fallback");
export const onStats = on("stats");
export const onAppError = on("app-error");
export const onRecordingStarted = on("recording-started");
export const onRecordingStatus = on("recording-status");
export const onLiveTurn = on("live-turn");
export const onRecordingStopped = on("recording-stopped");

/** Drag feedback for the drop zone; the drop itself is handled in Rust. */
export function onDragState(handler) {
  listen("tauri://drag-enter", () => handler(true));
  listen("tauri://drag-leave", () => handler(false));
  listen("tauri://drag-drop", () => handler(false));
}
