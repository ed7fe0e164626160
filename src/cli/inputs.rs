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

/// The name each file's results are written under with `--out`: its stem,
/// unless another input has the same stem (`talk.wav` and `talk.mp3`, or
/// `a/talk.wav` and `b/talk.wav`), in which case its whole file name, and
/// a number after that if even those meet. Without this the second file's
/// exports would silently replace the first's.
pub fn output_names(files: &[PathBuf]) -> Vec<String> {
    let stem = |p: &Path| {
        p.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "audio".into())
    };
    let full = |p: &Path| {
        p.file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "audio".into())
    };
    let stems: Vec<String> = files.iter().map(|f| stem(f)).collect();
    let mut taken = std::collections::HashSet::new();
    files
        .iter()
        .zip(&stems)
        .map(|(file, s)| {
            let shared = stems.iter().filter(|other| *other == s).count() > 1;
            let base = if shared { full(file) } else { s.clone() };
            let mut name = base.clone();
            let mut n = 2;
            while !taken.insert(name.clone()) {
                name = format!("{base} ({n})");
                n += 1;
            }
            name
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(paths: &[&str]) -> Vec<String> {
        output_names(&paths.iter().map(PathBuf::from).collect::<Vec<_>>())
    }

    #[test]
    fn distinct_stems_stay_as_they_are() {
        assert_eq!(names(&["a/one.wav", "b/two.mp3"]), ["one", "two"]);
    }

    #[test]
    fn one_stem_in_two_formats_keeps_both_extensions() {
        assert_eq!(
            names(&["talk.wav", "talk.mp3", "other.wav"]),
            ["talk.wav", "talk.mp3", "other"]
        );
    }

    #[test]
    fn one_file_name_in_two_folders_is_numbered() {
        assert_eq!(
            names(&["a/talk.wav", "b/talk.wav", "c/talk.wav"]),
            ["talk.wav", "talk.wav (2)", "talk.wav (3)"]
        );
    }

    #[test]
    fn a_numbered_name_never_meets_a_real_one() {
        // "x.wav (2)" is a real stem here: no two outputs may share a name.
        let got = names(&["a/x.wav", "b/x.wav", "x.wav (2).flac"]);
        assert_eq!(got, ["x.wav", "x.wav (2)", "x.wav (2) (2)"]);
    }
}
