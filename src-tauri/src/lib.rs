//! Diarist's desktop app: a thin Tauri shell over the engine. It owns no
//! diarization logic; it takes files in, hands them to the engine's
//! [`Engine`](diarist::runtime::Engine), streams job events to the window,
//! keeps the user's edits, exports, and shows the backend and resources.
//!
//! `shell` holds the state and shared actions, `commands` the window's
//! commands, `tray` the menu-bar icon, `grants` the files the user gave,
//! `jobs` the submitted jobs, `edit` rename and merge, `recording` the
//! microphone, `settings` what persists, `stats` the status bar, `locate` the
//! bundled files, `e2e` the end-to-end test's hooks.

mod commands;
mod e2e;
mod edit;
mod error;
mod grants;
mod jobs;
mod locate;
mod recording;
mod settings;
mod shell;
mod stats;
mod tray;

use diarist::pipeline::Pipeline;
use diarist::runtime::{Engine, EngineConfig};
use tauri::{App, AppHandle, DragDropEvent, Manager, RunEvent, Runtime, Window, WindowEvent};
use tauri_plugin_global_shortcut::{GlobalShortcutExt, ShortcutState};

pub use error::CommandError;

use crate::recording::Recordings;
use crate::settings::SettingsStore;
use crate::shell::Shell;

/// Starts the app; returns when the user quits.
pub fn run() {
    let builder = with_commands(tauri::Builder::default())
        // First, so that a second launch exits before anything else starts.
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            shell::show_window(app)
        }))
        .plugin(tauri_plugin_dialog::init());
    #[cfg(feature = "notification")]
    let builder = builder.plugin(tauri_plugin_notification::init());
    let app = builder
        .setup(setup)
        .on_window_event(on_window_event)
        .build(tauri::generate_context!());
    match app {
        Ok(app) => app.run(on_run_event),
        Err(e) => {
            eprintln!("diarist-app: cannot start: {e}");
            std::process::exit(1);
        }
    }
}

/// Registers every command the window may call (capabilities then decide
/// which ones it actually can).
pub fn with_commands<R: Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    builder.invoke_handler(tauri::generate_handler![
        commands::app_state,
        commands::open_inputs,
        commands::try_sample,
        commands::queue_file,
        commands::cancel_job,
        commands::get_result,
        commands::rename_speaker,
        commands::merge_speakers,
        commands::export_result,
        commands::set_safe_mode,
        commands::save_defaults,
        commands::watch_stats,
        commands::open_recovered,
        commands::start_recording,
        commands::stop_recording,
        commands::rename_live_speaker,
        commands::list_microphones,
        commands::set_microphone,
        commands::e2e_drop,
    ])
}

fn setup(app: &mut App) -> Result<(), Box<dyn std::error::Error>> {
    // A menu-bar app: no Dock icon, the tray icon is the way in.
    #[cfg(target_os = "macos")]
    app.set_activation_policy(tauri::ActivationPolicy::Accessory);

    let settings = SettingsStore::load(
        app.path()
            .app_config_dir()
            .ok()
            .map(|d| d.join(settings::FILE_NAME)),
    );
    let models = locate::models_dir().ok_or(
        "the model weights (models/segmentation-2022.07.safetensors) were not found next to the app",
    )?;
    let safe_mode = settings.get().safe_mode;
    let mut config = EngineConfig::new(models);
    config.safe_mode = safe_mode;
    let engine = Engine::start::<Pipeline>(config)?;
    let recordings = Recordings::new(
        app.path()
            .app_data_dir()
            .ok()
            .map(|d| recording::folder(&d)),
        Recordings::microphone_input(),
    );
    let e2e_dir = e2e::dir_from_env();
    let test_run = e2e_dir.is_some();
    manage_shell(
        app.handle(),
        Shell::new(engine, settings, recordings, e2e_dir),
    )?;
    if test_run {
        app.add_capability(e2e::capability())?;
    }
    tray::create(app.handle(), safe_mode)?;
    register_record_shortcut(app.handle());
    // The window opens visible, so the status bar starts live.
    shell::watch_stats(app.handle(), true);
    Ok(())
}

/// Ctrl/Cmd+Shift+R starts and stops a recording from any app. A desktop
/// that refuses global shortcuts (Wayland without a portal, another app
/// holding the keys) costs only the shortcut: the button and the tray
/// still work.
fn register_record_shortcut<R: Runtime>(app: &AppHandle<R>) {
    let plugin = tauri_plugin_global_shortcut::Builder::new()
        .with_handler(|app, _shortcut, event| {
            if event.state() == ShortcutState::Pressed {
                recording::toggle(app);
            }
        })
        .build();
    let registered = app
        .plugin(plugin)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            app.global_shortcut()
                .register(recording::SHORTCUT)
                .map_err(|e| e.to_string())
        });
    if let Err(e) = &registered {
        eprintln!(
            "diarist-app: the {} shortcut is unavailable: {e}",
            recording::SHORTCUT
        );
    }
    app.state::<Shell>()
        .recordings
        .set_shortcut_registered(registered.is_ok());
}

/// Puts the shell in Tauri's state and forwards the engine's job events to
/// it from a thread of their own; that thread ends when the engine stops.
pub fn manage_shell<R: Runtime>(app: &AppHandle<R>, shell: Shell) -> std::io::Result<()> {
    let events = shell.engine.subscribe_jobs();
    app.manage(shell);
    let app = app.clone();
    std::thread::Builder::new()
        .name("diarist-app-events".into())
        .spawn(move || {
            for event in events {
                shell::on_engine_event(&app, event);
            }
        })?;
    Ok(())
}

fn on_window_event<R: Runtime>(window: &Window<R>, event: &WindowEvent) {
    match event {
        WindowEvent::DragDrop(DragDropEvent::Drop { paths, .. }) => {
            shell::accept_inputs(window.app_handle(), paths, "drop");
        }
        // On macOS closing the window keeps the menu-bar app running.
        #[cfg(target_os = "macos")]
        WindowEvent::CloseRequested { api, .. } => {
            api.prevent_close();
            shell::hide_window(window.app_handle());
        }
        _ => {}
    }
}

fn on_run_event<R: Runtime>(app: &AppHandle<R>, event: RunEvent) {
    if let RunEvent::Exit = event
        && let Some(shell) = app.try_state::<Shell>()
    {
        // Quitting mid-recording keeps the recording: its file is finished.
        if let Err(e) = recording::stop(app) {
            eprintln!("diarist-app: {e}");
        }
        // Joins the engine thread, which frees the device.
        shell.engine.shutdown();
    }
}
