//! The job log behind the CLI's `--log FILE`: one JSON object per finished
//! job, appended and flushed at once so a crash loses at most the line
//! being written.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::device::Backend;
use super::events::Fallback;
use crate::Diarization;
use crate::error::{Error, Result};

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub file: PathBuf,
    pub audio_duration_s: f64,
    pub wall_s: f64,
    /// Wall time over audio duration: below 1 is faster than real time.
    pub real_time_factor: f64,
    pub backend: String,
    /// `None` unless the job failed on a GPU and was re-run on the CPU.
    pub fallback: Option<FallbackRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FallbackRecord {
    pub from: String,
    pub reason: String,
}

impl JobRecord {
    /// The record of a finished job, as reported by `Event::Done`.
    pub fn new(
        file: impl Into<PathBuf>,
        result: &Diarization,
        backend: Backend,
        fallback: Option<&Fallback>,
        wall_s: f64,
    ) -> Self {
        let real_time_factor = if result.duration_s > 0.0 {
            wall_s / result.duration_s
        } else {
            0.0
        };
        Self {
            file: file.into(),
            audio_duration_s: result.duration_s,
            wall_s,
            real_time_factor,
            backend: backend.as_str().to_string(),
            fallback: fallback.map(|f| FallbackRecord {
                from: f.from.as_str().to_string(),
                reason: f.reason.clone(),
            }),
        }
    }
}

/// An append-only JSON-lines file.
pub struct JobLog {
    path: PathBuf,
    file: File,
}

impl JobLog {
    /// Opens `path` for appending, creating it if needed; earlier lines stay.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        Ok(Self { path, file })
    }

    pub fn append(&mut self, record: &JobRecord) -> Result<()> {
        let mut line = serde_json::to_vec(record)
            .map_err(|e| Error::io(&self.path, std::io::Error::other(e)))?;
        line.push(b'\n');
        // One write per line: with O_APPEND, lines from several writers
        // never interleave.
        self.file
            .write_all(&line)
            .and_then(|()| self.file.flush())
            .map_err(|e| Error::io(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StageTimings;

    #[test]
    fn appends_one_json_line_per_job() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.jsonl");
        let d = Diarization::new("a", 20.0, vec![], "cpu", StageTimings::default());
        let fallback = Fallback {
            from: Backend::Cuda,
            reason: "out of memory".into(),
        };
        JobLog::open(&path)
            .unwrap()
            .append(&JobRecord::new("a.wav", &d, Backend::Cpu, None, 2.0))
            .unwrap();
        // Reopening appends rather than truncating.
        JobLog::open(&path)
            .unwrap()
            .append(&JobRecord::new(
                "b.wav",
                &d,
                Backend::Cpu,
                Some(&fallback),
                4.0,
            ))
            .unwrap();

        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<JobRecord> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].file, PathBuf::from("a.wav"));
        assert!((lines[0].real_time_factor - 0.1).abs() < 1e-12);
        assert_eq!(lines[0].fallback, None);
        assert_eq!(lines[1].backend, "cpu");
        assert_eq!(lines[1].fallback.as_ref().unwrap().from, "cuda");
    }
}
