//! A WAV file that is valid on disk while it grows.
//!
//! hound writes the samples; every [`commit`](CrashSafeWav::commit) rewrites
//! the RIFF and `data` sizes in the header (hound's `flush`) and fsyncs the
//! file, so a crash, a `kill -9` or a power cut loses at most what was
//! appended since the last commit. A marker file next to the recording
//! (`<name>.wav.recording`) exists from creation until [`finish`]
//! (CrashSafeWav::finish): a recording whose marker is still there at the
//! next start was never finished, and `recover` repairs it.

use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::audio::SAMPLE_RATE;
use crate::error::{Error, Result};

/// Suffix of the marker that flags an unfinished recording.
pub const MARKER_SUFFIX: &str = "recording";

/// Recordings are 16 kHz mono 16-bit PCM: what the models read, and about
/// 115 MB per hour.
pub fn spec() -> hound::WavSpec {
    hound::WavSpec {
        channels: 1,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    }
}

/// The marker path of a recording: `a/b.wav` → `a/b.wav.recording`.
pub fn marker_path(wav: &Path) -> PathBuf {
    let mut name = wav.as_os_str().to_owned();
    name.push(".");
    name.push(MARKER_SUFFIX);
    PathBuf::from(name)
}

/// A buffered file whose `flush` also reaches the disk (fsync of the data).
struct DurableFile(BufWriter<File>);

impl Write for DurableFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()?;
        self.0.get_ref().sync_data()
    }
}

impl Seek for DurableFile {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.0.seek(pos)
    }
}

/// A growing 16 kHz mono recording.
pub struct CrashSafeWav {
    path: PathBuf,
    writer: Option<hound::WavWriter<DurableFile>>,
    samples: u64,
}

impl CrashSafeWav {
    /// Creates `path` (and its folder) and the marker. Refuses to overwrite
    /// an existing file: recordings are never clobbered.
    pub fn create(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let file = File::options()
            .write(true)
            .read(true)
            .create_new(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        std::fs::write(marker_path(path), b"diarist recording in progress\n")
            .map_err(|e| Error::io(marker_path(path), e))?;
        let writer = hound::WavWriter::new(DurableFile(BufWriter::new(file)), spec())
            .map_err(|e| Error::recording(path, e.to_string()))?;
        let mut wav = Self {
            path: path.to_path_buf(),
            writer: Some(writer),
            samples: 0,
        };
        wav.commit()?;
        Ok(wav)
    }

    /// A writer that holds nothing: what is left after `finish`.
    pub(crate) fn closed() -> Self {
        Self {
            path: PathBuf::new(),
            writer: None,
            samples: 0,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Samples appended so far (16 kHz).
    pub fn samples(&self) -> u64 {
        self.samples
    }

    pub fn duration_s(&self) -> f64 {
        self.samples as f64 / f64::from(SAMPLE_RATE)
    }

    /// Appends `[-1, 1]` samples (clipped) as 16-bit PCM. Buffered: call
    /// `commit` to put them on disk.
    pub fn append(&mut self, samples: &[f32]) -> Result<()> {
        let writer = self.writer_mut()?;
        let mut pcm = writer.get_i16_writer(samples.len() as u32);
        for &s in samples {
            pcm.write_sample(to_i16(s));
        }
        pcm.flush()
            .map_err(|e| Error::recording(&self.path, e.to_string()))?;
        self.samples += samples.len() as u64;
        Ok(())
    }

    /// Makes the file valid on disk: header sizes rewritten, data fsynced.
    pub fn commit(&mut self) -> Result<()> {
        let path = self.path.clone();
        self.writer_mut()?
            .flush()
            .map_err(|e| Error::recording(&path, e.to_string()))
    }

    /// Commits a last time and removes the marker: the recording is done.
    pub fn finish(mut self) -> Result<PathBuf> {
        self.commit()?;
        if let Some(writer) = self.writer.take() {
            writer
                .finalize()
                .map_err(|e| Error::recording(&self.path, e.to_string()))?;
        }
        let marker = marker_path(&self.path);
        match std::fs::remove_file(&marker) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(marker, e)),
        }
        Ok(std::mem::take(&mut self.path))
    }

    fn writer_mut(&mut self) -> Result<&mut hound::WavWriter<DurableFile>> {
        let path = &self.path;
        self.writer
            .as_mut()
            .ok_or_else(|| Error::recording(path, "the recording is already finished"))
    }
}

fn to_i16(s: f32) -> i16 {
    let s = if s.is_finite() {
        s.clamp(-1.0, 1.0)
    } else {
        0.0
    };
    (s * 32_767.0).round() as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_samples_are_readable_before_finish() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/a.wav");
        let mut wav = CrashSafeWav::create(&path).unwrap();
        assert!(marker_path(&path).exists());
        wav.append(&[0.5; 16_000]).unwrap();
        wav.commit().unwrap();
        // Read while the writer is alive: as after a crash.
        let reader = hound::WavReader::open(&path).unwrap();
        assert_eq!(reader.len(), 16_000);
        assert_eq!(reader.spec(), spec());
        wav.append(&[-2.0, f32::NAN]).unwrap();
        let done = wav.finish().unwrap();
        assert!(!marker_path(&done).exists());
        let samples: Vec<i16> = hound::WavReader::open(&done)
            .unwrap()
            .into_samples()
            .map(|s| s.unwrap())
            .collect();
        assert_eq!(samples.len(), 16_002);
        assert_eq!(samples[0], 16_384);
        assert_eq!(&samples[16_000..], &[-32_767, 0]);
    }

    #[test]
    fn never_overwrites_a_recording() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        std::fs::write(&path, b"keep me").unwrap();
        assert!(CrashSafeWav::create(&path).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
    }
}
