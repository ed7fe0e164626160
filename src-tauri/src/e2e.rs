//! Hooks for the end-to-end test (tests/e2e.rs), which drives the real app
//! through WebDriver but cannot reach native OS surfaces: it cannot drag a
//! file from a desktop, and cannot click in a GTK save dialog. Active only
//! in debug builds started with `DIARIST_E2E_DIR` naming a folder:
//! - the `e2e_drop` command takes paths into the app exactly as a drop does
//!   (`shell::accept_inputs`); only this run's extra capability allows it;
//! - save dialogs answer "<that folder>/<proposed file name>".
//!
//! Release builds ignore the variable, and no static capability grants
//! `e2e_drop`.

use std::path::{Path, PathBuf};

use tauri::ipc::CapabilityBuilder;

use crate::shell::MAIN_WINDOW;

pub const ENV: &str = "DIARIST_E2E_DIR";

/// The test's scratch folder, when this is a debug build it started.
pub fn dir_from_env() -> Option<PathBuf> {
    if !cfg!(debug_assertions) {
        return None;
    }
    std::env::var_os(ENV)
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
}

/// Where a save dialog "answers" during the test.
pub fn save_path(e2e_dir: Option<&Path>, file_name: &str) -> Option<PathBuf> {
    e2e_dir.map(|dir| dir.join(file_name))
}

/// The extra capability of a test run: the drop stand-in, nothing else.
pub fn capability() -> CapabilityBuilder {
    CapabilityBuilder::new("e2e-test")
        .window(MAIN_WINDOW)
        .permission("allow-e2e-drop")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_dialogs_are_only_bypassed_in_a_test_run() {
        assert_eq!(save_path(None, "a.rttm"), None);
        assert_eq!(
            save_path(Some(Path::new("/tmp/run")), "a.rttm"),
            Some(PathBuf::from("/tmp/run/a.rttm"))
        );
    }
}
