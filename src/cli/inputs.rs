//! Expanding the command line's files and folders into audio files.

use std::path::{Path, PathBuf};

/// Extensions `diarist` looks for inside folders. Files named explicitly are
/// always tried, whatever their extension: the decoder gives the verdict.
const AUDIO_EXTENSIONS: &[&str] = &[
    "wav", "wave", "flac", "mp3", "m4a", "mp4", "aac", "ogg", "oga", "mkv", "webm", "aif", "aiff",
    "caf", "opus",
];

pub fn is_audio(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| AUDIO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Files as given, folders replaced by their audio files (sorted, not
/// recursive). Paths that do not exist are kept so that the engine reports
/// them with the same message as any other unreadable file.
pub fn expand(inputs: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(input)
                .map_err(|e| anyhow::anyhow!("{}: {e}", input.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && is_audio(p))
                .collect();
            found.sort();
            if found.is_empty() {
                eprintln!("warning: {} holds no audio files", input.display());
            }
            files.extend(found);
        } else {
            files.push(input.clone());
        }
    }
    Ok(files)
}
