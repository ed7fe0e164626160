//! The public side of the engine: [`Engine`], the handle every thread may
//! hold, and the command queue it fills. Nothing here touches a device: the
//! handles only queue work, flag cancels and safe mode, and wake the thread.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use serde::Serialize;

use super::worker::Worker;
use super::{BackendState, Command, Job, LiveChunk, LiveJob, Queue, Shared};
use crate::error::{Error, Result};
use crate::runtime::device::{Backend, DevicePreference};
use crate::runtime::events::{Event, Hub, JobId, lock};
use crate::runtime::fault::FaultInjection;
use crate::runtime::memory::DEFAULT_MAX_BATCH;
use crate::runtime::stats::SamplerControl;
use crate::runtime::{Diarizer, JobSpec, LiveSpec};

/// Default number of jobs that may wait in the queue.
pub const DEFAULT_QUEUE_CAPACITY: usize = 64;

/// Audio chunks a live session's feed holds before `try_push` refuses:
/// at the recorder's 20 ms chunks, about 10 s of audio (640 KB).
pub const LIVE_QUEUE_CHUNKS: usize = 512;

/// How the engine starts.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub models_dir: PathBuf,
    /// `Auto` is overridden by `DIARIST_DEVICE` when that is set.
    pub device: DevicePreference,
    /// Start in safe mode (the caller persists the user's choice).
    pub safe_mode: bool,
    /// Jobs that may wait; a submit beyond this is `Error::QueueFull`.
    pub queue_capacity: usize,
    /// Upper bound on windows per network call.
    pub max_batch: usize,
    /// Use [`Backend::SimulatedGpu`] as the GPU: the CPU, treated as a GPU
    /// for safe mode and fallback. For tests on machines without a GPU.
    pub simulate_gpu: bool,
    /// Fail jobs on GPU backends on purpose (see `fault`). For tests.
    pub fault: Option<FaultInjection>,
}

impl EngineConfig {
    pub fn new(models_dir: impl Into<PathBuf>) -> Self {
        Self {
            models_dir: models_dir.into(),
            device: DevicePreference::Auto,
            safe_mode: false,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            max_batch: DEFAULT_MAX_BATCH,
            simulate_gpu: false,
            fault: None,
        }
    }
}

/// A snapshot of the engine for the UI and tests.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EngineStatus {
    /// Where jobs run now.
    pub backend: Backend,
    /// Why: the backend choice at start, or the last switch.
    pub reason: String,
    pub safe_mode: bool,
    /// The GPU chosen at start, if any; safe mode off returns to it.
    pub gpu: Option<Backend>,
    pub running: Option<JobId>,
    /// Waiting jobs, next first.
    pub queued: Vec<JobId>,
    pub stats_sampler_running: bool,
    /// The engine thread has exited; commands now fail with `EngineStopped`.
    pub stopped: bool,
}

/// A handle to the engine. Cheap to clone and share between threads; the
/// engine shuts down when `shutdown` is called or the last handle drops.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    wake: Sender<Command>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// The audio side of a live session (see [`Engine::start_live`]). Dropping
/// it (or `finish`) ends the session once the engine has caught up.
pub struct LiveSession {
    job: JobId,
    feed: Sender<LiveChunk>,
}

impl LiveSession {
    pub fn job(&self) -> JobId {
        self.job
    }

    /// Hands over samples that start at sample `start` of the recording,
    /// waiting while the feed is full (for feeding files faster than real
    /// time). Fails once the session has ended.
    pub fn push(&self, start: u64, samples: Vec<f32>) -> Result<()> {
        self.feed
            .send(LiveChunk { start, samples })
            .map_err(|_| Error::EngineStopped)
    }

    /// Like `push` but never waits: returns false when the engine is behind
    /// (the chunk is then skipped by the live labels, never by the recording)
    /// or the session has ended.
    pub fn try_push(&self, start: u64, samples: Vec<f32>) -> bool {
        self.feed.try_send(LiveChunk { start, samples }).is_ok()
    }

    /// Ends the audio; the engine finishes the session with `Event::Done`.
    pub fn finish(self) {}
}

impl Engine {
    /// Starts the engine thread, chooses the backend and loads `D` on it.
    /// Fails only if the pipeline cannot be loaded even on the CPU.
    pub fn start<D: Diarizer + 'static>(config: EngineConfig) -> Result<Engine> {
        crate::runtime::pool::init_compute_pool();
        let preference = config.device.with_env_override()?;
        let capacity = config.queue_capacity.max(1);
        let shared = Arc::new(Shared {
            hub: Arc::new(Hub::default()),
            queue: Mutex::new(Queue::default()),
            capacity,
            next_id: AtomicU64::new(1),
            want_safe_mode: AtomicBool::new(config.safe_mode),
            stopping: AtomicBool::new(false),
            backend: Mutex::new(BackendState {
                backend: Backend::Cpu,
                reason: "starting".into(),
                safe_mode: config.safe_mode,
                gpu: None,
            }),
            gpu_memory: Arc::new(Mutex::new(None)),
            sampler: Arc::new(SamplerControl::default()),
        });
        // Wake-ups coalesce: one pending is as good as many.
        let (wake_tx, wake_rx) = crossbeam_channel::bounded(capacity.min(16));
        let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);

        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("diarist-engine".into())
            .spawn(move || {
                let worker = Worker::<D>::start(thread_shared, config, preference, wake_rx);
                match worker {
                    Ok(mut worker) => {
                        let _ = ready_tx.send(Ok(()));
                        worker.run();
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            })
            .map_err(|e| Error::Backend {
                backend: "engine".into(),
                reason: format!("cannot start the engine thread: {e}"),
            })?;

        let ready = ready_rx.recv().unwrap_or(Err(Error::EngineStopped));
        if let Err(e) = ready {
            let _ = thread.join();
            return Err(e);
        }
        Ok(Engine {
            inner: Arc::new(Inner {
                shared,
                wake: wake_tx,
                thread: Mutex::new(Some(thread)),
            }),
        })
    }

    /// Queues a job. Never blocks: a full queue is `Error::QueueFull`.
    pub fn submit(&self, spec: JobSpec) -> Result<JobId> {
        self.enqueue(Job::File(spec))
    }

    /// Queues a live session and returns its audio feed. It runs like any
    /// job, on the engine thread and in queue order, until the feed is
    /// closed: turns come as `Event::LiveTurn`, the end as `Event::Done`
    /// with the live diarization (speaker centroids in `embeddings`).
    /// `cancel` ends it without a result.
    pub fn start_live(&self, spec: LiveSpec) -> Result<LiveSession> {
        let (feed, audio) = crossbeam_channel::bounded(LIVE_QUEUE_CHUNKS);
        let job = self.enqueue(Job::Live(LiveJob { spec, audio }))?;
        Ok(LiveSession { job, feed })
    }

    fn enqueue(&self, job: Job) -> Result<JobId> {
        self.ensure_running()?;
        let shared = &self.inner.shared;
        let id = {
            let mut queue = lock(&shared.queue);
            if queue.waiting.len() >= shared.capacity {
                return Err(Error::QueueFull {
                    capacity: shared.capacity,
                });
            }
            // Taken under the queue lock, so ids follow queue order.
            let id = JobId(shared.next_id.fetch_add(1, Ordering::Relaxed));
            let path = match &job {
                Job::File(spec) => spec.path.clone(),
                Job::Live(live) => live.spec.path.clone(),
            };
            shared.hub.emit(Event::Queued {
                job: id,
                path,
                position: queue.waiting.len(),
            });
            queue.waiting.push_back((id, job));
            id
        };
        self.wake();
        Ok(id)
    }

    /// Cancels a job: a waiting one leaves the queue at once, the running
    /// one stops at its next batch. Returns false for unknown or finished jobs.
    pub fn cancel(&self, job: JobId) -> bool {
        let shared = &self.inner.shared;
        let mut queue = lock(&shared.queue);
        if let Some(pos) = queue.waiting.iter().position(|(id, _)| *id == job) {
            queue.waiting.remove(pos);
            shared.hub.emit(Event::Cancelled { job });
            return true;
        }
        if queue.running == Some(job) {
            queue.cancel_running = true;
            return true;
        }
        false
    }

    /// Asks for safe mode on (CPU) or off (back to the GPU chosen at start).
    /// Applied between jobs; `Event::BackendChanged` reports the switch.
    pub fn set_safe_mode(&self, on: bool) -> Result<()> {
        self.ensure_running()?;
        self.inner.shared.want_safe_mode.store(on, Ordering::SeqCst);
        self.wake();
        Ok(())
    }

    pub fn status(&self) -> EngineStatus {
        let shared = &self.inner.shared;
        let backend = lock(&shared.backend).clone();
        let (running, queued) = {
            let queue = lock(&shared.queue);
            (
                queue.running,
                queue.waiting.iter().map(|(id, _)| *id).collect(),
            )
        };
        EngineStatus {
            backend: backend.backend,
            reason: backend.reason,
            safe_mode: backend.safe_mode,
            gpu: backend.gpu,
            running,
            queued,
            stats_sampler_running: shared.sampler.is_running(),
            stopped: self.ensure_running().is_err(),
        }
    }

    /// Every event from now on, stats included; the stats sampler runs
    /// while at least one such receiver is alive.
    pub fn subscribe(&self) -> Receiver<Event> {
        let shared = &self.inner.shared;
        let rx = shared.hub.subscribe(true);
        shared
            .sampler
            .ensure_running(Arc::clone(&shared.hub), Arc::clone(&shared.gpu_memory));
        rx
    }

    /// Job and engine events only, without `Event::Stats` (the CLI's view).
    pub fn subscribe_jobs(&self) -> Receiver<Event> {
        self.inner.shared.hub.subscribe(false)
    }

    /// Cancels the running job at its next batch, cancels waiting jobs,
    /// joins the engine thread (which frees the device) and the sampler.
    /// Idempotent; also run when the last handle drops.
    pub fn shutdown(&self) {
        self.inner.shutdown();
    }

    fn wake(&self) {
        // Full: a wake-up is already pending. Disconnected: the thread has
        // exited, which the next command reports as `EngineStopped`.
        let _ = self.inner.wake.try_send(Command::Wake);
    }

    fn ensure_running(&self) -> Result<()> {
        let thread = lock(&self.inner.thread);
        match thread.as_ref() {
            Some(t) if !t.is_finished() && !self.inner.shared.stopping.load(Ordering::SeqCst) => {
                Ok(())
            }
            _ => Err(Error::EngineStopped),
        }
    }
}

impl Inner {
    fn shutdown(&self) {
        let thread = lock(&self.thread).take();
        self.shared.stopping.store(true, Ordering::SeqCst);
        lock(&self.shared.queue).cancel_running = true;
        let _ = self.wake.try_send(Command::Wake);
        if let Some(thread) = thread {
            let _ = thread.join();
        }
        self.shared.sampler.shut_down();
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shutdown();
    }
}
