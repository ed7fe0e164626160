//! The menu-bar icon: Open Diarist, Start/Stop recording, Safe mode (a
//! checkbox mirrored with the window's switch), Quit. While recording the
//! icon shows a record dot. A left click toggles the window on macOS, where
//! the app has no Dock icon; elsewhere the menu opens as usual.

use tauri::image::Image;
use tauri::menu::{CheckMenuItem, Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{MouseButton, MouseButtonState, TrayIcon, TrayIconBuilder, TrayIconEvent};
use tauri::{AppHandle, Manager, Runtime};

use crate::{recording, shell};

pub const TRAY_ID: &str = "diarist";
const OPEN: &str = "open";
const RECORD: &str = "record";
const SAFE_MODE: &str = "safe-mode";
const QUIT: &str = "quit";

const ICON: &[u8] = include_bytes!("../../icons/tray.png");
const RECORDING_ICON: &[u8] = include_bytes!("../../icons/tray-recording.png");

/// The items whose state follows the app: the safe-mode checkbox (mirrored
/// with the window's switch) and the record item's text.
pub struct TrayMenu<R: Runtime> {
    pub safe_mode: CheckMenuItem<R>,
    pub record: MenuItem<R>,
}

pub fn create<R: Runtime>(app: &AppHandle<R>, safe_mode: bool) -> tauri::Result<()> {
    let open = MenuItem::with_id(app, OPEN, "Open Diarist", true, None::<&str>)?;
    let record = MenuItem::with_id(
        app,
        RECORD,
        "Start recording",
        true,
        Some(recording::SHORTCUT),
    )?;
    let safe = CheckMenuItem::with_id(
        app,
        SAFE_MODE,
        "Safe mode (CPU only)",
        true,
        safe_mode,
        None::<&str>,
    )?;
    let quit = MenuItem::with_id(app, QUIT, "Quit Diarist", true, Some("CmdOrCtrl+Q"))?;
    let menu = Menu::with_items(
        app,
        &[
            &open,
            &record,
            &PredefinedMenuItem::separator(app)?,
            &safe,
            &PredefinedMenuItem::separator(app)?,
            &quit,
        ],
    )?;
    let icon = Image::from_bytes(ICON)?;
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(icon)
        .icon_as_template(true)
        .tooltip("Diarist")
        .menu(&menu)
        .show_menu_on_left_click(!cfg!(target_os = "macos"))
        .on_menu_event(|app, event| match event.id().as_ref() {
            OPEN => shell::show_window(app),
            RECORD => recording::toggle(app),
            SAFE_MODE => {
                // The checkbox ticked itself; make the engine and the
                // window follow it.
                let on = app
                    .try_state::<TrayMenu<R>>()
                    .and_then(|m| m.safe_mode.is_checked().ok())
                    .unwrap_or(false);
                if let Err(e) = shell::set_safe_mode(app, on) {
                    eprintln!("diarist-app: safe mode: {e}");
                }
            }
            QUIT => app.exit(0),
            _ => {}
        })
        .on_tray_icon_event(on_icon_event)
        .build(app)?;
    app.manage(TrayMenu {
        safe_mode: safe,
        record,
    });
    Ok(())
}

fn on_icon_event<R: Runtime>(tray: &TrayIcon<R>, event: TrayIconEvent) {
    if cfg!(target_os = "macos")
        && let TrayIconEvent::Click {
            button: MouseButton::Left,
            button_state: MouseButtonState::Up,
            ..
        } = event
    {
        shell::toggle_window(tray.app_handle());
    }
}

/// Ticks or clears the checkbox to match the engine.
pub fn show_safe_mode<R: Runtime>(app: &AppHandle<R>, on: bool) {
    if let Some(menu) = app.try_state::<TrayMenu<R>>() {
        let _ = menu.safe_mode.set_checked(on);
    }
}

/// The record item's text and the icon follow the recording.
pub fn show_recording<R: Runtime>(app: &AppHandle<R>, on: bool) {
    if let Some(menu) = app.try_state::<TrayMenu<R>>() {
        let text = if on {
            "Stop recording"
        } else {
            "Start recording"
        };
        let _ = menu.record.set_text(text);
    }
    if let Some(tray) = app.tray_by_id(TRAY_ID)
        && let Ok(icon) = Image::from_bytes(if on { RECORDING_ICON } else { ICON })
    {
        let _ = tray.set_icon(Some(icon));
        let _ = tray.set_icon_as_template(true);
    }
}

/// The status bar's line as the icon's tooltip (macOS and Windows; Linux
/// trays show none).
pub fn show_tooltip<R: Runtime>(app: &AppHandle<R>, line: &str) {
    if let Some(tray) = app.tray_by_id(TRAY_ID) {
        let _ = tray.set_tooltip(Some(line));
    }
}
