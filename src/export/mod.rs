//! Writes a [`Diarization`] in every format users asked for (RTTM, JSON, CSV,
//! SRT, WebVTT, Audacity labels) and reads RTTM back for scoring.
//!
//! Writers are pure `Diarization -> String` functions; display names are
//! applied here, never stored in the result. Files are written atomically so
//! a crash or a full disk never leaves a half-written export over a good one.

mod audacity;
mod csv;
mod format;
mod json;
mod names;
mod rttm;
mod subtitles;
mod time;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

pub use format::Format;
pub use names::SpeakerNames;
pub use rttm::{parse_rttm, read_rttm};

use crate::diarization::Diarization;
use crate::error::{Error, Result};

/// The text of `d` in `format`, with `names` applied to speaker labels.
pub fn render(d: &Diarization, format: Format, names: &SpeakerNames) -> String {
    match format {
        Format::Rttm => rttm::render(d, names),
        Format::Json => json::render(d, names),
        Format::Csv => csv::render(d, names),
        Format::Srt => subtitles::render_srt(d, names),
        Format::Vtt => subtitles::render_vtt(d, names),
        Format::Audacity => audacity::render(d, names),
    }
}

/// Writes `d` to `path` atomically: the text goes to a temporary file in the
/// same directory, which is synced and then renamed over `path`. On failure
/// the previous content of `path`, if any, is untouched.
pub fn write(d: &Diarization, format: Format, path: &Path, names: &SpeakerNames) -> Result<()> {
    write_atomic(path, render(d, format, names).as_bytes())
}

/// Writes one `<out_dir>/<uri>.<ext>` per format (creating `out_dir` if
/// needed) and returns the paths written, in the order of `formats`.
pub fn write_all(
    d: &Diarization,
    formats: &[Format],
    out_dir: &Path,
    names: &SpeakerNames,
) -> Result<Vec<PathBuf>> {
    let stem = file_stem(&d.uri)?;
    fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let mut written: Vec<PathBuf> = Vec::new();
    for &format in formats {
        let path = out_dir.join(format!("{stem}.{}", format.extension()));
        if written.contains(&path) {
            continue;
        }
        write(d, format, &path, names)?;
        written.push(path);
    }
    Ok(written)
}

/// The uri names the output files, so it must not climb out of `out_dir`.
fn file_stem(uri: &str) -> Result<&str> {
    let bad = uri.is_empty() || uri == "." || uri == ".." || uri.contains(['/', '\\', '\0']);
    if bad {
        return Err(Error::InvalidOption(format!(
            "recording uri {uri:?} cannot be used as a file name"
        )));
    }
    Ok(uri)
}

/// Replaces `path` with `bytes` or leaves it as it was: the bytes go to a
/// uniquely named temporary file beside it, which is synced and renamed
/// over `path`. Shared by exports and the app's settings.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let io = |e| Error::io(path, e);
    let mut builder = tempfile::Builder::new();
    builder.prefix(".diarist-").suffix(".tmp");
    // Temporary files are private (0600) by default; an export should get
    // the usual permissions, still subject to the umask.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder.tempfile_in(dir).map_err(io)?;
    tmp.write_all(bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    // Dropping the failed temporary file inside the error deletes it.
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_must_be_a_plain_file_name() {
        for bad in ["", ".", "..", "a/b", "..\\x"] {
            assert!(file_stem(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            file_stem("meeting 2024-05-01").unwrap(),
            "meeting 2024-05-01"
        );
    }
}
