//! Finding and repairing recordings that were never finished.
//!
//! A recording is unfinished when its marker (`<name>.wav.recording`) is
//! still there, or when the sizes in its header do not match the file
//! (a crash between two commits, or a file copied mid-recording). Repair
//! keeps every whole sample on disk: it drops a torn last sample, writes
//! the RIFF and `data` sizes from the file length, and removes the marker.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::wav::{MARKER_SUFFIX, marker_path};
use crate::error::{Error, Result};

/// A recording that `recover` repaired.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recovered {
    pub path: PathBuf,
    /// Seconds of audio the repaired file holds.
    pub duration_s: f64,
    /// Bytes of audio the old header did not account for.
    pub bytes_recovered: u64,
}

/// What `recover` found in a folder.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryReport {
    pub recovered: Vec<Recovered>,
    /// Unfinished recordings that could not be repaired, with the reason.
    pub failed: Vec<(PathBuf, String)>,
}

/// Repairs every unfinished recording in `dir` (not recursive). A missing
/// folder holds nothing to recover.
pub fn recover(dir: &Path) -> Result<RecoveryReport> {
    let planned = plan(dir)?;
    let mut report = RecoveryReport {
        recovered: Vec::new(),
        failed: planned.failed,
    };
    for r in planned.recovered {
        match repair(&r.path) {
            Ok(r) => report.recovered.push(r),
            Err(e) => report.failed.push((r.path, e.to_string())),
        }
    }
    Ok(report)
}

/// What [`recover`] would do in `dir`, touching nothing: `recovered` lists
/// the repairs it would make (with what they would give back), `failed`
/// what it would refuse and why.
///
/// Only recordings are repaired: a file carrying the recording marker, or
/// one laid out as the recorder writes it (`data` the last chunk). A WAV
/// whose `data` is followed by other chunks (LIST, id3, bext...) is someone
/// else's file, and rewriting its sizes from the length would turn those
/// chunks into noise.
pub fn plan(dir: &Path) -> Result<RecoveryReport> {
    let mut report = RecoveryReport::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(report),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut candidates: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ext.eq_ignore_ascii_case("wav") {
            candidates.push(path);
        } else if ext == MARKER_SUFFIX {
            // A marker whose recording is gone: nothing to keep.
            let wav = path.with_extension("");
            if !wav.exists() {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    candidates.sort();
    for path in candidates {
        let marked = marker_path(&path).exists();
        match assess(&path, marked) {
            Ok(Some(r)) => report.recovered.push(r),
            Ok(None) => {}
            // Not a WAV we understand: only our own recordings are reported.
            Err(e) if marked => report.failed.push((path, e.to_string())),
            Err(_) => {}
        }
    }
    Ok(report)
}

/// The repair `path` needs, `None` when it needs none or is not ours.
fn assess(path: &Path, marked: bool) -> Result<Option<Recovered>> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let layout = read_layout(&mut file, path)?;
    let (data, riff) = sizes(&layout, len);
    let agrees = u64::from(layout.declared_data) == data && u64::from(layout.declared_riff) == riff;
    if agrees && !marked {
        return Ok(None);
    }
    if !marked && chunk_follows_data(&mut file, &layout, len) {
        return Ok(None);
    }
    // Only a torn last sample frame may be cut; more (a recording past the
    // 4 GiB a WAV header can describe) would lose audio.
    let cut = len - (layout.data_start + data);
    if cut >= u64::from(layout.block_align) {
        return Err(Error::recording(
            path,
            format!(
                "repairing would cut {cut} bytes of audio: past the 4 GiB a WAV header can describe"
            ),
        ));
    }
    Ok(Some(Recovered {
        path: path.to_path_buf(),
        duration_s: data as f64 / f64::from(layout.byte_rate),
        bytes_recovered: data.saturating_sub(u64::from(layout.declared_data)),
    }))
}

/// Whether a chunk header (a printable four-letter id) sits where the
/// declared `data` ends: the sign of a file with chunks after its audio.
fn chunk_follows_data(file: &mut File, layout: &Layout, len: u64) -> bool {
    let declared = u64::from(layout.declared_data);
    let end = layout.data_start + declared + declared % 2;
    if end + 8 > len {
        return false;
    }
    let mut header = [0u8; 8];
    let read = file
        .seek(SeekFrom::Start(end))
        .and_then(|_| file.read_exact(&mut header));
    read.is_ok()
        && header[..4]
            .iter()
            .all(|b| b.is_ascii_graphic() || *b == b' ')
}

/// Where the audio of a WAV file lies.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Layout {
    /// Byte offset of the `data` chunk's size field.
    data_size_at: u64,
    /// Byte offset of the first sample.
    data_start: u64,
    /// What the header claims.
    declared_data: u32,
    declared_riff: u32,
    block_align: u16,
    byte_rate: u32,
}

fn read_layout(file: &mut File, path: &Path) -> Result<Layout> {
    let bad = |reason: &str| Error::recording(path, reason.to_string());
    let mut riff = [0u8; 12];
    file.read_exact(&mut riff)
        .map_err(|_| bad("too short to hold a WAV header"))?;
    if &riff[0..4] != b"RIFF" || &riff[8..12] != b"WAVE" {
        return Err(bad("not a RIFF/WAVE file"));
    }
    let declared_riff = u32::from_le_bytes([riff[4], riff[5], riff[6], riff[7]]);
    let mut pos = 12u64;
    let mut fmt: Option<(u16, u32)> = None;
    loop {
        let mut header = [0u8; 8];
        file.read_exact(&mut header)
            .map_err(|_| bad("no data chunk in the header"))?;
        let size = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if &header[0..4] == b"data" {
            let (block_align, byte_rate) = fmt.ok_or_else(|| bad("data before the fmt chunk"))?;
            return Ok(Layout {
                data_size_at: pos + 4,
                data_start: pos + 8,
                declared_data: size,
                declared_riff,
                block_align: block_align.max(1),
                byte_rate: byte_rate.max(1),
            });
        }
        if &header[0..4] == b"fmt " {
            let mut body = [0u8; 16];
            file.read_exact(&mut body)
                .map_err(|_| bad("truncated fmt chunk"))?;
            let byte_rate = u32::from_le_bytes([body[8], body[9], body[10], body[11]]);
            let block_align = u16::from_le_bytes([body[12], body[13]]);
            fmt = Some((block_align, byte_rate));
        }
        // Chunks are padded to an even size.
        pos += 8 + u64::from(size) + u64::from(size % 2);
        file.seek(SeekFrom::Start(pos))
            .map_err(|e| Error::io(path, e))?;
    }
}

/// (data bytes, RIFF size) that a file of `len` bytes should declare.
fn sizes(layout: &Layout, len: u64) -> (u64, u64) {
    let available = len.saturating_sub(layout.data_start);
    let data = available - available % u64::from(layout.block_align);
    // RIFF sizes are 32-bit: past 4 GiB the file is capped there.
    let data = data.min(u64::from(u32::MAX) - layout.data_start);
    (data, layout.data_start + data - 8)
}

/// Repairs one recording in place and removes its marker.
pub fn repair(path: &Path) -> Result<Recovered> {
    let mut file = File::options()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let layout = read_layout(&mut file, path)?;
    let (data, riff) = sizes(&layout, len);
    if len - (layout.data_start + data) >= u64::from(layout.block_align) {
        return Err(Error::recording(
            path,
            "repairing would cut audio: past the 4 GiB a WAV header can describe".to_string(),
        ));
    }
    let io = |e| Error::io(path, e);
    file.set_len(layout.data_start + data).map_err(io)?;
    file.seek(SeekFrom::Start(4)).map_err(io)?;
    file.write_all(&(riff as u32).to_le_bytes()).map_err(io)?;
    file.seek(SeekFrom::Start(layout.data_size_at))
        .map_err(io)?;
    file.write_all(&(data as u32).to_le_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    let marker = marker_path(path);
    if marker.exists() {
        std::fs::remove_file(&marker).map_err(|e| Error::io(&marker, e))?;
    }
    Ok(Recovered {
        path: path.to_path_buf(),
        duration_s: data as f64 / f64::from(layout.byte_rate),
        bytes_recovered: data.saturating_sub(u64::from(layout.declared_data)),
    })
}

#[cfg(test)]
mod tests {
    use super::super::wav::CrashSafeWav;
    use super::*;

    /// A recording "killed" after `committed` samples were committed and
    /// `extra` more reached the disk without a header update.
    fn crashed(dir: &Path, name: &str, committed: usize, extra: usize) -> PathBuf {
        let path = dir.join(name);
        let mut wav = CrashSafeWav::create(&path).unwrap();
        wav.append(&vec![0.25; committed]).unwrap();
        wav.commit().unwrap();
        wav.append(&vec![0.25; extra]).unwrap();
        // Vanish without finishing, as a killed process does.
        std::mem::forget(wav);
        path
    }

    #[test]
    fn finished_recordings_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mut wav = CrashSafeWav::create(&dir.path().join("done.wav")).unwrap();
        wav.append(&[0.1; 800]).unwrap();
        wav.finish().unwrap();
        let report = recover(dir.path()).unwrap();
        assert!(report.recovered.is_empty() && report.failed.is_empty());
    }

    #[test]
    fn header_is_fixed_from_the_file_length_and_a_torn_sample_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        let mut wav = CrashSafeWav::create(&path).unwrap();
        wav.append(&[0.5; 16_000]).unwrap();
        wav.commit().unwrap();
        std::mem::forget(wav);
        // Two more seconds plus half a sample reached the disk after the commit.
        let mut file = File::options().append(true).open(&path).unwrap();
        file.write_all(&vec![1u8; 2 * 32_000 + 1]).unwrap();
        drop(file);
        assert!(hound::WavReader::open(&path).unwrap().len() == 16_000);

        let report = recover(dir.path()).unwrap();
        assert_eq!(report.recovered.len(), 1, "{report:?}");
        let r = &report.recovered[0];
        assert!((r.duration_s - 3.0).abs() < 1e-9, "{r:?}");
        assert_eq!(r.bytes_recovered, 64_000);
        assert_eq!(hound::WavReader::open(&path).unwrap().len(), 48_000);
        assert!(!marker_path(&path).exists());
        // Idempotent.
        assert!(recover(dir.path()).unwrap().recovered.is_empty());
    }

    #[test]
    fn marker_alone_flags_an_unfinished_recording() {
        let dir = tempfile::tempdir().unwrap();
        let path = crashed(dir.path(), "b.wav", 3_200, 0);
        let report = recover(dir.path()).unwrap();
        assert_eq!(report.recovered.len(), 1);
        assert!((report.recovered[0].duration_s - 0.2).abs() < 1e-9);
        assert!(!marker_path(&path).exists());
    }

    #[test]
    fn truncated_header_is_reported_not_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.wav");
        std::fs::write(&path, b"RIFF\0\0").unwrap();
        std::fs::write(marker_path(&path), b"").unwrap();
        // A foreign broken WAV without a marker is not ours to touch.
        std::fs::write(dir.path().join("other.wav"), b"junk").unwrap();
        let report = recover(dir.path()).unwrap();
        assert!(report.recovered.is_empty());
        assert_eq!(report.failed.len(), 1);
        assert_eq!(report.failed[0].0, path);
        assert!(path.exists());
    }

    #[test]
    fn chunks_after_the_audio_are_never_turned_into_audio() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tagged.wav");
        let mut wav = CrashSafeWav::create(&path).unwrap();
        wav.append(&[0.1; 1600]).unwrap();
        wav.finish().unwrap();
        // A tagger appends a LIST chunk without updating the RIFF size.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(b"LIST\x0c\0\0\0INFOISFT\0\0\0\0");
        std::fs::write(&path, &bytes).unwrap();
        assert!(plan(dir.path()).unwrap().recovered.is_empty());
        assert!(recover(dir.path()).unwrap().recovered.is_empty());
        assert_eq!(std::fs::read(&path).unwrap(), bytes);

        // The same file with our marker is ours: it is repaired.
        std::fs::write(marker_path(&path), b"").unwrap();
        assert_eq!(plan(dir.path()).unwrap().recovered.len(), 1);
    }

    #[test]
    fn plan_lists_the_repair_and_touches_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = crashed(dir.path(), "p.wav", 4_800, 0);
        let before = std::fs::read(&path).unwrap();
        let planned = plan(dir.path()).unwrap();
        assert_eq!(planned.recovered.len(), 1, "{planned:?}");
        assert!((planned.recovered[0].duration_s - 0.3).abs() < 1e-9);
        assert_eq!(std::fs::read(&path).unwrap(), before);
        assert!(marker_path(&path).exists());
        // What was planned is what recovering does.
        assert_eq!(recover(dir.path()).unwrap().recovered, planned.recovered);
    }

    #[test]
    fn a_repair_that_would_cut_audio_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = crashed(dir.path(), "long.wav", 1_600, 0);
        // Sparse: the file claims 4 GiB + 1 KiB without using the disk.
        let file = File::options().write(true).open(&path).unwrap();
        file.set_len(u64::from(u32::MAX) + 1024).unwrap();
        drop(file);
        let report = recover(dir.path()).unwrap();
        assert!(report.recovered.is_empty());
        assert_eq!(report.failed.len(), 1, "{report:?}");
        assert!(report.failed[0].1.contains("4 GiB"), "{report:?}");
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            u64::from(u32::MAX) + 1024
        );
    }

    #[test]
    fn missing_folder_holds_nothing() {
        let report = recover(Path::new("/nonexistent/diarist/recordings")).unwrap();
        assert_eq!(report, RecoveryReport::default());
    }
}
