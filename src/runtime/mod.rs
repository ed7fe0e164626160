//! The runtime: the only code that owns a thread or a device.
//!
//! One engine thread ("diarist-engine") holds the only candle `Device` and
//! the only loaded pipeline; the UI, the recorder and the CLI talk to it
//! through an [`Engine`] handle and receive [`Event`]s. Safe mode is a
//! reload on the CPU, a GPU failure falls back to the CPU and re-runs the
//! job, batch sizes follow free memory, and a sampler reports RAM, CPU and
//! GPU memory while someone listens (ARCHITECTURE.md, points 1–5).
//!
//! `device` chooses the backend, `engine` runs the thread and the queue,
//! `events` fans events out, `memory` sizes batches, `stats` samples
//! resources, `fault` injects failures for tests, `joblog` writes `--log`.

pub mod device;
pub mod engine;
pub mod events;
pub mod fault;
pub mod joblog;
pub mod memory;
pub mod stats;

use std::path::{Path, PathBuf};

use candle_core::Device;
use serde::{Deserialize, Serialize};

pub use device::{Backend, DEVICE_ENV, DevicePreference};
pub use engine::{Engine, EngineConfig, EngineStatus, LIVE_QUEUE_CHUNKS, LiveSession};
pub use events::{ErrorInfo, Event, Fallback, JobId, error_code};
pub use fault::{FaultInjection, FaultKind};
pub use joblog::{JobLog, JobRecord};
pub use memory::DEFAULT_MAX_BATCH;
pub use stats::{GpuMemory, StatsSnapshot, peak_rss_bytes, process_rss_bytes};

/// What the engine thread loads on a device and runs jobs with. The real
/// implementation is the pipeline; tests use small stand-ins.
///
/// An implementation is created, used and dropped on the engine thread
/// only, so it need not be `Send`. Dropping it must free everything it
/// holds on the device: that is how safe mode and fallback release the GPU.
pub trait Diarizer: Sized {
    fn load(models_dir: &Path, device: &Device) -> crate::Result<Self>;

    /// Runs one job. `batch_size`: windows per network call, chosen by the
    /// engine from free memory. `progress.update` must be called between
    /// batches; when it returns `Break`, return `Error::Cancelled`. Nothing
    /// allocated for the job may outlive the call except the result.
    fn diarize(
        &mut self,
        job: &JobSpec,
        batch_size: usize,
        progress: &mut dyn crate::Progress,
    ) -> crate::Result<crate::Diarization>;

    /// Live sessions: runs the networks on whatever audio `state` holds and
    /// returns the turns that appeared or grew. Called on the engine thread
    /// between audio arrivals; `state` lives outside the diarizer, so after
    /// a GPU failure the same call is re-run on a CPU reload. Diarizers
    /// without a live mode keep the default, which refuses.
    fn live_advance(
        &mut self,
        state: &mut crate::pipeline::live::LiveState,
    ) -> crate::Result<Vec<crate::pipeline::live::LiveTurn>> {
        let _ = state;
        Err(crate::Error::InvalidOption(
            "this engine has no live mode".into(),
        ))
    }
}

/// A live session: audio is pushed as it is recorded, turns come back as
/// `Event::LiveTurn`, and closing the feed ends it with `Event::Done`
/// holding the live diarization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveSpec {
    /// The recording the audio goes to (its stem is the result's `uri`).
    pub path: PathBuf,
    pub params: crate::pipeline::live::LiveParams,
}

impl LiveSpec {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            params: Default::default(),
        }
    }
}

/// One file to diarize and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    pub path: PathBuf,
    pub options: crate::DiarizeOptions,
}

impl JobSpec {
    /// A job with the default options.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            options: crate::DiarizeOptions::default(),
        }
    }
}
