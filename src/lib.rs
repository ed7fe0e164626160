//! Diarist's engine: "who spoke when", on device.
//!
//! `audio` turns files into 16 kHz mono samples, `models` holds the two
//! pretrained networks (tensors in, tensors out) and `kernels` the
//! hand-written compute their layers call, `pipeline` turns their
//! outputs into speaker turns, `export` writes those turns in every format
//! and `eval` scores them against a reference. `runtime` is the engine
//! thread that owns the device and runs jobs from a queue.

pub mod audio;
pub mod bench;
pub mod diarization;
pub mod error;
pub mod eval;
pub mod export;
pub mod kernels;
pub mod models;
pub mod pipeline;
pub mod progress;
pub mod record;
pub mod runtime;

pub use diarization::{Diarization, SpeakerStats, StageTimings, Turn};
pub use error::{Error, Result};
pub use pipeline::{DiarizeOptions, Diarizer, JobSpec, ModelChoice, SpeakerCount};
pub use progress::{Progress, Stage};
pub use runtime::{Backend, DevicePreference, Engine, EngineConfig, EngineStatus, Event, JobId};
