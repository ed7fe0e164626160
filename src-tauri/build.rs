// Listing the app's commands makes each one need a permission, so the
// capability files decide exactly which commands the window may call.
const COMMANDS: &[&str] = &[
    "app_state",
    "open_inputs",
    "try_sample",
    "queue_file",
    "cancel_job",
    "get_result",
    "rename_speaker",
    "merge_speakers",
    "export_result",
    "set_safe_mode",
    "save_defaults",
    "watch_stats",
    "open_recovered",
    "start_recording",
    "stop_recording",
    "rename_live_speaker",
    "list_microphones",
    "set_microphone",
    "e2e_drop",
];

fn main() {
    let attributes = tauri_build::Attributes::new()
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(e) = tauri_build::try_build(attributes) {
        panic!("tauri-build failed: {e:#}");
    }
}
