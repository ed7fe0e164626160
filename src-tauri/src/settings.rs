//! What the app remembers between launches, as one JSON file in the app's
//! config directory. A missing or unreadable file means the defaults: losing
//! preferences must never stop the app from starting.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use diarist::SpeakerCount;
use diarist::export::Format;
use serde::{Deserialize, Serialize};

use crate::error::CommandError;

pub const FILE_NAME: &str = "settings.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Settings {
    /// Run on the CPU even where a GPU is available.
    pub safe_mode: bool,
    /// What new jobs look for unless the user re-runs with another count.
    pub default_speakers: SpeakerCount,
    /// A `Format` name, as `Format::from_str` reads it.
    pub default_export_format: String,
    /// Where the last export went; the next save dialog opens there.
    pub last_export_dir: Option<PathBuf>,
    /// The microphone to record from (an `InputDevice::id`); `None` = the
    /// system's default input.
    pub input_device: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            safe_mode: false,
            default_speakers: SpeakerCount::Auto,
            default_export_format: Format::Rttm.name().into(),
            last_export_dir: None,
            input_device: None,
        }
    }
}

impl Settings {
    /// Drops values a hand-edited or older file may hold that the app can no
    /// longer honour.
    fn sanitised(mut self) -> Self {
        if self.default_export_format.parse::<Format>().is_err() {
            self.default_export_format = Format::Rttm.name().into();
        }
        if !count_is_valid(self.default_speakers) {
            self.default_speakers = SpeakerCount::Auto;
        }
        self
    }
}

/// Whether `count` would be accepted from the CLI's flags too.
pub fn count_is_valid(count: SpeakerCount) -> bool {
    match count {
        SpeakerCount::Auto => true,
        SpeakerCount::Exact { n } => SpeakerCount::from_flags(Some(n), None, None).is_ok(),
        SpeakerCount::Range { min, max } => SpeakerCount::from_flags(None, min, max).is_ok(),
    }
}

/// The settings in memory plus the file they persist to.
pub struct SettingsStore {
    /// `None` when the platform gave no config directory: settings then live
    /// for this session only.
    path: Option<PathBuf>,
    current: Mutex<Settings>,
}

impl SettingsStore {
    pub fn load(path: Option<PathBuf>) -> Self {
        let current = path.as_deref().map(read).unwrap_or_default();
        Self {
            path,
            current: Mutex::new(current),
        }
    }

    pub fn get(&self) -> Settings {
        lock(&self.current).clone()
    }

    /// Applies `change` and writes the result; the in-memory value changes
    /// even when the write fails, so the session still follows the user.
    /// The lock is held through the write: two updates at once reach the
    /// file in the order they reached memory, so the file never ends on the
    /// older of two values.
    pub fn update(&self, change: impl FnOnce(&mut Settings)) -> Result<Settings, CommandError> {
        let mut current = lock(&self.current);
        change(&mut current);
        let settings = current.clone();
        if let Some(path) = &self.path {
            write(path, &settings)?;
        }
        Ok(settings)
    }
}

fn read(path: &Path) -> Settings {
    match fs::read(path) {
        Ok(bytes) => match serde_json::from_slice::<Settings>(&bytes) {
            Ok(s) => s.sanitised(),
            Err(e) => {
                eprintln!("diarist-app: ignoring unreadable {}: {e}", path.display());
                Settings::default()
            }
        },
        Err(_) => Settings::default(),
    }
}

/// Writes through a synced temporary file of its own and a rename, so a
/// crash mid-write keeps the previous settings.
fn write(path: &Path, settings: &Settings) -> Result<(), CommandError> {
    let fail = |e: &dyn std::fmt::Display| {
        CommandError::new(
            "settings",
            format!("cannot save settings to {}: {e}", path.display()),
        )
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| fail(&e))?;
    }
    let json = serde_json::to_vec_pretty(settings)
        .map_err(|e| CommandError::new("settings", e.to_string()))?;
    diarist::export::write_atomic(path, &json).map_err(|e| fail(&e))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join(FILE_NAME);
        let store = SettingsStore::load(Some(path.clone()));
        assert_eq!(store.get(), Settings::default());
        store
            .update(|s| {
                s.safe_mode = true;
                s.default_speakers = SpeakerCount::Range {
                    min: Some(2),
                    max: Some(4),
                };
                s.default_export_format = "srt".into();
                s.last_export_dir = Some(dir.path().to_path_buf());
            })
            .unwrap();

        let again = SettingsStore::load(Some(path)).get();
        assert!(again.safe_mode);
        assert_eq!(
            again.default_speakers,
            SpeakerCount::Range {
                min: Some(2),
                max: Some(4)
            }
        );
        assert_eq!(again.default_export_format, "srt");
        assert_eq!(again.last_export_dir.as_deref(), Some(dir.path()));
    }

    #[test]
    fn a_broken_file_means_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        fs::write(&path, b"{ not json").unwrap();
        assert_eq!(
            SettingsStore::load(Some(path.clone())).get(),
            Settings::default()
        );

        // Known fields with impossible values are reset one by one.
        fs::write(
            &path,
            br#"{"safeMode":true,"defaultExportFormat":"docx","defaultSpeakers":{"mode":"exact","n":0}}"#,
        )
        .unwrap();
        let s = SettingsStore::load(Some(path)).get();
        assert!(s.safe_mode);
        assert_eq!(s.default_export_format, "rttm");
        assert_eq!(s.default_speakers, SpeakerCount::Auto);
    }

    #[test]
    fn concurrent_updates_leave_the_last_value_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let store = std::sync::Arc::new(SettingsStore::load(Some(path.clone())));
        let writers: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for _ in 0..25 {
                        store
                            .update(|s| s.default_export_format = ["rttm", "srt"][i % 2].into())
                            .unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        // What is on disk is what is in memory, and no temporary is left.
        assert_eq!(SettingsStore::load(Some(path)).get(), store.get());
        let left: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "{left:?}");
    }

    #[test]
    fn without_a_config_dir_settings_live_in_memory() {
        let store = SettingsStore::load(None);
        store.update(|s| s.safe_mode = true).unwrap();
        assert!(store.get().safe_mode);
    }
}
