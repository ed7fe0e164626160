//! The files the user gave the app. Only paths that arrived by a drop, the
//! Open dialog or the "Try the sample" button may be diarized or played: the
//! page names files by path, and this list is how the shell refuses paths it
//! was never given.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::CommandError;

/// Extensions picked up from dropped folders. A file dropped on its own is
/// queued whatever its name, so that the engine can say what is wrong with it.
pub const AUDIO_EXTENSIONS: &[&str] = &[
    "wav", "wave", "mp3", "m4a", "m4b", "mp4", "aac", "flac", "ogg", "oga", "opus", "webm", "mkv",
    "mka", "aif", "aiff", "caf",
];

/// Folders deeper than this below a dropped folder are not searched.
const MAX_FOLDER_DEPTH: usize = 8;

#[derive(Default)]
pub struct Grants {
    paths: Mutex<BTreeSet<PathBuf>>,
}

impl Grants {
    pub fn grant(&self, path: &Path) {
        lock(&self.paths).insert(path.to_path_buf());
    }

    /// `path` itself if the user gave it, else a `not-granted` error.
    pub fn check(&self, path: &Path) -> Result<PathBuf, CommandError> {
        if lock(&self.paths).contains(path) {
            Ok(path.to_path_buf())
        } else {
            Err(CommandError::not_granted(path))
        }
    }
}

/// What a drop or a pick turns into: the files to queue, in a stable order,
/// and the folders that held no audio (so the UI can say so).
#[derive(Debug, Default, PartialEq)]
pub struct Inputs {
    pub files: Vec<PathBuf>,
    pub empty_folders: Vec<PathBuf>,
}

/// Expands dropped or picked paths: files stay as given, folders become the
/// audio files below them (sorted, hidden entries skipped).
pub fn expand(paths: &[PathBuf]) -> Inputs {
    let mut inputs = Inputs::default();
    for path in paths {
        if path.is_dir() {
            let before = inputs.files.len();
            collect_audio(path, 0, &mut inputs.files);
            inputs.files[before..].sort();
            if inputs.files.len() == before {
                inputs.empty_folders.push(path.clone());
            }
        } else {
            inputs.files.push(path.clone());
        }
    }
    // One file reached by two paths (`a/../a/x.wav`, a linked file) is
    // queued once.
    let mut seen = BTreeSet::new();
    inputs
        .files
        .retain(|p| seen.insert(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())));
    inputs
}

fn collect_audio(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    if depth > MAX_FOLDER_DEPTH {
        return;
    }
    // An unreadable folder contributes nothing; its siblings still count.
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if hidden {
            continue;
        }
        // A linked folder is not followed: a folder linked into itself
        // would otherwise repeat its files at every level.
        let linked_dir = entry.file_type().is_ok_and(|t| t.is_symlink()) && path.is_dir();
        if linked_dir {
            continue;
        }
        if path.is_dir() {
            collect_audio(&path, depth + 1, out);
        } else if is_audio_name(&path) {
            out.push(path);
        }
    }
}

pub fn is_audio_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| AUDIO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        .unwrap_or(false)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_folder_linked_into_itself_gives_each_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().join("calls");
        fs::create_dir(&top).unwrap();
        fs::write(top.join("a.wav"), b"RIFF").unwrap();
        std::os::unix::fs::symlink(&top, top.join("again")).unwrap();
        std::os::unix::fs::symlink(top.join("a.wav"), top.join("b.wav")).unwrap();
        let inputs = expand(&[top.clone(), top.join("./a.wav")]);
        assert_eq!(inputs.files, vec![top.join("a.wav")], "{inputs:?}");
    }

    #[test]
    fn folders_expand_to_their_audio_and_files_stay() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("show/day2")).unwrap();
        fs::create_dir_all(root.join("show/.cache")).unwrap();
        fs::create_dir_all(root.join("nothing")).unwrap();
        for f in [
            "show/b.WAV",
            "show/a.mp3",
            "show/notes.txt",
            "show/day2/c.m4a",
            "show/.cache/d.wav",
            "nothing/readme.md",
            "notes.txt",
        ] {
            fs::write(root.join(f), b"").unwrap();
        }

        let inputs = expand(&[
            root.join("show"),
            root.join("notes.txt"),
            root.join("nothing"),
            root.join("show/a.mp3"),
        ]);
        assert_eq!(
            inputs.files,
            vec![
                root.join("show/a.mp3"),
                root.join("show/b.WAV"),
                root.join("show/day2/c.m4a"),
                // A dropped file is queued whatever it is; duplicates once.
                root.join("notes.txt"),
            ]
        );
        assert_eq!(inputs.empty_folders, vec![root.join("nothing")]);
    }

    #[test]
    fn only_granted_paths_pass() {
        let grants = Grants::default();
        grants.grant(Path::new("/tmp/a.wav"));
        assert!(grants.check(Path::new("/tmp/a.wav")).is_ok());
        let refused = grants.check(Path::new("/etc/passwd")).unwrap_err();
        assert_eq!(refused.code, "not-granted");
    }
}
