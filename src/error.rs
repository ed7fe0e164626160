//! The engine's one error type. Every message names the file and the problem,
//! because it ends up verbatim in a terminal or on a row of the app's queue.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The file could be opened but holds no audio we can decode.
    #[error("{path}: {reason}")]
    Decode { path: PathBuf, reason: String },

    /// A model file is missing, altered, or does not hold the expected tensors.
    #[error("model file {path}: {reason}")]
    Model { path: PathBuf, reason: String },

    /// Caller-supplied options that cannot be honoured.
    #[error("invalid option: {0}")]
    InvalidOption(String),

    /// A malformed RTTM (or other text) input.
    #[error("{path}:{line}: {reason}")]
    Parse {
        path: PathBuf,
        line: usize,
        reason: String,
    },

    #[error("cancelled")]
    Cancelled,

    /// The engine's job queue holds as many jobs as it was configured for.
    #[error("the job queue is full ({capacity} jobs waiting); submit again when one finishes")]
    QueueFull { capacity: usize },

    /// The engine was shut down (or its thread died) before the command arrived.
    #[error("the diarization engine has stopped")]
    EngineStopped,

    /// A failure of the compute backend itself (out of memory, a missing
    /// kernel, a driver error, an injected fault), as opposed to bad input.
    #[error("{backend} backend: {reason}")]
    Backend { backend: String, reason: String },

    /// The decoder panicked on this file's bytes: the file's fault, not
    /// the device's, so it never sends a job (or the app) to the CPU.
    #[error("the decoder failed on this file ({0}); it may be damaged")]
    DecoderPanic(String),

    /// A job panicked; the engine caught it and kept running.
    #[error("the job panicked: {0}")]
    Panic(String),

    /// The microphone (or other input device) cannot be found, opened or
    /// read, or it disappeared mid-recording.
    #[error("audio input: {0}")]
    AudioInput(String),

    /// A recording file that cannot be written or repaired.
    #[error("recording {path}: {reason}")]
    Recording { path: PathBuf, reason: String },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn decode(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::Decode {
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn recording(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::Recording {
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn model(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::Model {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// The message a caught panic carried.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}
