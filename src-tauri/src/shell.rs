//! The app's state and the actions shared by commands, the tray and window
//! events: taking in files, safe mode, the window's visibility, and turning
//! engine events into UI events, notifications and tray updates.

use std::path::{Path, PathBuf};

use diarist::runtime::{Backend, Engine, Event, JobId, StatsSnapshot};
use serde::Serialize;
use tauri::{AppHandle, Emitter, Manager, Runtime};
#[cfg(feature = "notification")]
use tauri_plugin_notification::{Notification, NotificationExt};

use crate::error::CommandError;
use crate::grants::{self, Grants};
use crate::jobs::Jobs;
use crate::recording::{self, Recordings};
use crate::settings::SettingsStore;
use crate::stats::{self, StatsSink, StatsWatch};
use crate::tray;

pub const MAIN_WINDOW: &str = "main";

/// Low-rate app events (per-job events go over each job's channel).
pub mod events {
    pub const INPUTS_ADDED: &str = "inputs-added";
    pub const BACKEND_CHANGED: &str = "backend-changed";
    pub const SAFE_MODE_CHANGED: &str = "safe-mode-changed";
    pub const FALLBACK: &str = "fallback";
    pub const STATS: &str = "stats";
    /// A failure with no command to return it to (the tray, a shortcut):
    /// a `CommandError` for the window to show.
    pub const ERROR: &str = "app-error";
}

/// Everything the commands share, managed by Tauri.
pub struct Shell {
    pub engine: Engine,
    pub grants: Grants,
    pub jobs: Jobs,
    pub settings: SettingsStore,
    pub stats: StatsWatch,
    pub recordings: Recordings,
    /// Set only in debug builds started by the end-to-end test (see `e2e`).
    pub e2e_dir: Option<PathBuf>,
}

impl Shell {
    pub fn new(
        engine: Engine,
        settings: SettingsStore,
        recordings: Recordings,
        e2e_dir: Option<PathBuf>,
    ) -> Self {
        Self {
            engine,
            grants: Grants::default(),
            jobs: Jobs::default(),
            settings,
            stats: StatsWatch::default(),
            recordings,
            e2e_dir,
        }
    }

    pub fn backend_view(&self) -> BackendView {
        let status = self.engine.status();
        BackendView::new(status.backend, status.reason, status.safe_mode)
    }
}

/// The engine's backend as the status bar shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendView {
    pub backend: Backend,
    /// "CPU", "Metal", "CUDA".
    pub label: &'static str,
    pub reason: String,
    pub safe_mode: bool,
}

impl BackendView {
    pub fn new(backend: Backend, reason: String, safe_mode: bool) -> Self {
        Self {
            backend,
            label: stats::backend_label(backend),
            reason,
            safe_mode,
        }
    }
}

/// One file ready to queue, as the window lists it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InputFile {
    pub path: PathBuf,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InputsAdded {
    /// "drop", "dialog", "sample" or "recovered".
    pub origin: &'static str,
    pub files: Vec<InputFile>,
    pub empty_folders: Vec<PathBuf>,
}

/// The one way files enter the app (drop, Open dialog, sample button): the
/// paths are expanded, granted to the file commands and the asset protocol,
/// and announced to the window, which queues them.
pub fn accept_inputs<R: Runtime>(
    app: &AppHandle<R>,
    paths: &[PathBuf],
    origin: &'static str,
) -> InputsAdded {
    let inputs = grants::expand(paths);
    let shell = app.state::<Shell>();
    let scope = app.asset_protocol_scope();
    let mut files = Vec::with_capacity(inputs.files.len());
    for path in inputs.files {
        shell.grants.grant(&path);
        // Only granted files can be played; a failure here only costs playback.
        if let Err(e) = scope.allow_file(&path) {
            eprintln!(
                "diarist-app: cannot allow playback of {}: {e}",
                path.display()
            );
        }
        files.push(InputFile {
            name: display_name(&path),
            path,
        });
    }
    let added = InputsAdded {
        origin,
        files,
        empty_folders: inputs.empty_folders,
    };
    let _ = app.emit_to(MAIN_WINDOW, events::INPUTS_ADDED, &added);
    added
}

pub fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Turns safe mode on or off from the window or the tray, and makes the
/// other one follow. The engine applies it between jobs and reports the
/// switch with `backend-changed`.
pub fn set_safe_mode<R: Runtime>(app: &AppHandle<R>, on: bool) -> Result<(), CommandError> {
    let shell = app.state::<Shell>();
    shell.engine.set_safe_mode(on)?;
    tray::show_safe_mode(app, on);
    let _ = app.emit_to(MAIN_WINDOW, events::SAFE_MODE_CHANGED, on);
    shell.settings.update(|s| s.safe_mode = on)?;
    Ok(())
}

/// Handles one event from the engine's job subscription.
pub fn on_engine_event<R: Runtime>(app: &AppHandle<R>, event: Event) {
    let shell = app.state::<Shell>();
    // A CPU re-run that finished says the device was at fault: the switch
    // stays flipped across restarts. One that fails as well says the job was
    // (a damaged file, say), and nothing is persisted.
    if let Event::Done {
        fallback: Some(_), ..
    } = &event
        && let Err(e) = shell.settings.update(|s| s.safe_mode = true)
    {
        eprintln!("diarist-app: {e}");
    }
    match &event {
        Event::BackendChanged {
            backend,
            reason,
            safe_mode,
        } => {
            tray::show_safe_mode(app, *safe_mode);
            let view = BackendView::new(*backend, reason.clone(), *safe_mode);
            let _ = app.emit_to(MAIN_WINDOW, events::BACKEND_CHANGED, &view);
        }
        Event::Fallback { job, from, reason } => on_fallback(app, *job, *from, reason),
        Event::Stats(_) => {}
        _ => {
            if !shell.jobs.route(&event) {
                recording::on_live_event(app, &event);
            }
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct FallbackView {
    job: JobId,
    from: &'static str,
    reason: String,
}

/// A system notification of a fallback, where the plugin is built in and
/// registered (the command tests' mock app has none: there is only the
/// banner).
#[cfg(feature = "notification")]
fn notify_fallback<R: Runtime>(app: &AppHandle<R>, from: &str, reason: &str) {
    if app.try_state::<Notification<R>>().is_none() {
        return;
    }
    let shown = app
        .notification()
        .builder()
        .title("Diarist switched to the CPU")
        .body(format!("{from} failed: {reason}. Safe mode is now on."))
        .show();
    if let Err(e) = shown {
        eprintln!("diarist-app: cannot show a notification: {e}");
    }
}

#[cfg(not(feature = "notification"))]
fn notify_fallback<R: Runtime>(_app: &AppHandle<R>, _from: &str, _reason: &str) {}

/// A GPU failure: the engine is re-running the job on the CPU and stays in
/// safe mode for this session. Tell the user even if the window is hidden;
/// the switch is saved once the re-run succeeds (`on_engine_event`).
fn on_fallback<R: Runtime>(app: &AppHandle<R>, job: JobId, from: Backend, reason: &str) {
    let from = stats::backend_label(from);
    notify_fallback(app, from, reason);
    let view = FallbackView {
        job,
        from,
        reason: reason.to_string(),
    };
    let _ = app.emit_to(MAIN_WINDOW, events::FALLBACK, &view);
    let _ = app.emit_to(MAIN_WINDOW, events::SAFE_MODE_CHANGED, true);
    tray::show_safe_mode(app, true);
}

/// Sends stats to the window's status bar and the tray tooltip.
struct WindowStats<R: Runtime> {
    app: AppHandle<R>,
}

impl<R: Runtime> StatsSink for WindowStats<R> {
    fn stats(&self, snapshot: &StatsSnapshot) {
        let _ = self.app.emit_to(MAIN_WINDOW, events::STATS, snapshot);
        let view = self.app.state::<Shell>().backend_view();
        tray::show_tooltip(
            &self.app,
            &stats::tooltip_line(view.backend, view.safe_mode, snapshot),
        );
    }
}

/// Stats run only while the window is visible.
pub fn watch_stats<R: Runtime>(app: &AppHandle<R>, on: bool) {
    let shell = app.state::<Shell>();
    shell
        .stats
        .set(&shell.engine, on, WindowStats { app: app.clone() });
}

pub fn show_window<R: Runtime>(app: &AppHandle<R>) {
    if let Some(window) = app.get_webview_window(MAIN_WINDOW) {
        let _ = window.show();
        let _ = window.unminimize();
        let _ = window.set_focus();
    }
    watch_stats(app, true);
}

pub fn hide_window<R: Runtime>(app: &AppHandle<R>) {
    if let Some(window) = app.get_webview_window(MAIN_WINDOW) {
        let _ = window.hide();
    }
    watch_stats(app, false);
}

pub fn toggle_window<R: Runtime>(app: &AppHandle<R>) {
    let visible = app
        .get_webview_window(MAIN_WINDOW)
        .and_then(|w| w.is_visible().ok())
        .unwrap_or(false);
    if visible {
        hide_window(app);
    } else {
        show_window(app);
    }
}
