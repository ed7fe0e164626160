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
//! `events` fans events out, `memory` sizes batches, `pool` sizes the one
//! pool of compute threads, `stats` samples resources, `fault` injects
//! failures for tests, `joblog` writes `--log`.

pub mod device;
pub mod engine;
pub mod events;
pub mod fault;
pub mod joblog;
pub mod memory;
pub mod pool;
pub mod stats;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use device::{Backend, DEVICE_ENV, DevicePreference};
pub use engine::{Engine, EngineConfig, EngineStatus, LIVE_QUEUE_CHUNKS, LiveSession};
pub use events::{ErrorInfo, Event, Fallback, JobId, error_code};
pub use fault::{FaultInjection, FaultKind};
pub use joblog::{JobLog, JobRecord};
pub use memory::DEFAULT_MAX_BATCH;
pub use pool::init_compute_pool;
pub use stats::{GpuMemory, StatsSnapshot, peak_rss_bytes, process_rss_bytes};

/// The runtime drives what the pipeline defines: `Engine::start` loads a
/// [`Diarizer`], `Engine::submit` takes a [`JobSpec`].
pub use crate::pipeline::{Diarizer, JobSpec};

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
