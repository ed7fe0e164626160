//! The engine thread and its handle.
//!
//! Mirrors Handy's transcription coordinator: one named thread owns the
//! device and the pipeline, every job runs inside `catch_unwind`, and a
//! failure on the GPU switches the engine to the CPU. Unlike Handy, the
//! failed job is not lost: it is re-run on the CPU from its start.
//!
//! The job queue is a bounded `VecDeque` shared with the handles rather than
//! the channel itself, so that `cancel` can take a waiting job out at once
//! and `status` can list the queue; the bounded channel only wakes the
//! thread. Safe mode changes are applied between jobs: a running job
//! finishes on the backend it started on.
//!
//! `handle` is the public API ([`Engine`]) and the queue the handles fill,
//! `worker` the engine thread (its loop, file jobs, live sessions, safe
//! mode), and `fallback` what happens when work fails: panics caught, and a
//! GPU failure answered by a CPU reload and a re-run, for file jobs and live
//! steps alike. This module holds what the handles and the thread share.

mod fallback;
mod handle;
mod worker;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};

use crossbeam_channel::Receiver;

pub use handle::{
    DEFAULT_QUEUE_CAPACITY, Engine, EngineConfig, EngineStatus, LIVE_QUEUE_CHUNKS, LiveSession,
};

use super::device::Backend;
use super::events::{Hub, JobId};
use super::stats::{GpuSnapshot, SamplerControl};
use super::{JobSpec, LiveSpec};

/// What the handles and the engine thread share. No device in here.
struct Shared {
    hub: Arc<Hub>,
    queue: Mutex<Queue>,
    capacity: usize,
    next_id: AtomicU64,
    want_safe_mode: AtomicBool,
    stopping: AtomicBool,
    backend: Mutex<BackendState>,
    gpu_memory: GpuSnapshot,
    sampler: Arc<SamplerControl>,
}

/// What a queued job runs.
enum Job {
    File(JobSpec),
    Live(LiveJob),
}

struct LiveJob {
    spec: LiveSpec,
    audio: Receiver<LiveChunk>,
}

/// 16 kHz mono samples starting at sample `start` of the recording.
struct LiveChunk {
    start: u64,
    samples: Vec<f32>,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<(JobId, Job)>,
    running: Option<JobId>,
    cancel_running: bool,
}

#[derive(Clone)]
struct BackendState {
    backend: Backend,
    reason: String,
    safe_mode: bool,
    gpu: Option<Backend>,
}

enum Command {
    /// Something changed: a job, safe mode or shutdown.
    Wake,
}
