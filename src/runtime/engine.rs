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

use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use candle_core::Device;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use serde::Serialize;

use super::device::{Backend, DevicePreference, choose_gpu};
use super::events::{ErrorInfo, Event, Fallback, Hub, JobId, lock};
use super::fault::{FaultInjection, diarize_with_faults};
use super::memory::{self, DEFAULT_MAX_BATCH};
use super::stats::{GpuSnapshot, SamplerControl, SystemProbe};
use super::{Diarizer, JobSpec, LiveSpec};
use crate::Diarization;
use crate::error::{Error, Result};
use crate::pipeline::PipelineParams;
use crate::pipeline::live::{LiveState, LiveTurn};
use crate::progress::{Progress, Stage};

/// How long the idle engine waits before refreshing the GPU snapshot.
const IDLE_TICK: Duration = Duration::from_millis(500);

/// The GPU snapshot is refreshed at most this often during a job.
const GPU_REFRESH_EVERY: Duration = Duration::from_millis(250);

/// Default number of jobs that may wait in the queue.
pub const DEFAULT_QUEUE_CAPACITY: usize = 64;

/// Audio chunks a live session's feed holds before `try_push` refuses:
/// at the recorder's 20 ms chunks, about 10 s of audio (640 KB).
pub const LIVE_QUEUE_CHUNKS: usize = 512;

/// Most audio a live session takes in before it computes again: 10 s.
const LIVE_CATCH_UP_SAMPLES: usize = 10 * crate::audio::SAMPLE_RATE as usize;

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

impl Engine {
    /// Starts the engine thread, chooses the backend and loads `D` on it.
    /// Fails only if the pipeline cannot be loaded even on the CPU.
    pub fn start<D: Diarizer + 'static>(config: EngineConfig) -> Result<Engine> {
        memory::limit_malloc_arenas();
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

/// The state that lives on the engine thread only.
struct Worker<D> {
    shared: Arc<Shared>,
    models_dir: PathBuf,
    max_batch: usize,
    /// The GPU chosen once at start; safe mode off returns to it.
    gpu: Option<Backend>,
    backend: Backend,
    device: Device,
    diarizer: Option<D>,
    safe_mode: bool,
    fault: Option<FaultInjection>,
    probe: Option<SystemProbe>,
    wake: Receiver<Command>,
}

impl<D: Diarizer> Worker<D> {
    fn start(
        shared: Arc<Shared>,
        config: EngineConfig,
        preference: DevicePreference,
        wake: Receiver<Command>,
    ) -> Result<Self> {
        let choice = choose_gpu(preference, config.simulate_gpu);
        let gpu = choice.gpu.as_ref().map(|(b, _)| *b);
        let mut worker = Worker {
            shared,
            models_dir: config.models_dir,
            max_batch: config.max_batch,
            gpu,
            backend: Backend::Cpu,
            device: Device::Cpu,
            diarizer: None,
            safe_mode: config.safe_mode,
            fault: config.fault,
            probe: SystemProbe::new(),
            wake,
        };
        match choice.gpu {
            Some((backend, device)) if !config.safe_mode => {
                worker.backend = backend;
                worker.device = device;
                match load_caught::<D>(&worker.models_dir, &worker.device) {
                    Ok(d) => {
                        worker.diarizer = Some(d);
                        worker.publish(choice.reason);
                    }
                    Err(e) => {
                        let reason = format!("loading on {backend} failed ({e}); safe mode on");
                        worker.fall_back_to_cpu(reason)?;
                    }
                }
            }
            Some(_) => {
                worker.diarizer = Some(load_caught::<D>(&worker.models_dir, &Device::Cpu)?);
                worker.publish(format!("safe mode on; GPU available: {}", choice.reason));
            }
            None => {
                worker.diarizer = Some(load_caught::<D>(&worker.models_dir, &Device::Cpu)?);
                worker.publish(choice.reason);
            }
        }
        Ok(worker)
    }

    fn run(&mut self) {
        while !self.shared.stopping.load(Ordering::SeqCst) {
            self.apply_safe_mode();
            let next = {
                let mut queue = lock(&self.shared.queue);
                // Checked under the lock `shutdown` takes to cancel the
                // running job, so a job cannot start after shutdown began.
                if self.shared.stopping.load(Ordering::SeqCst) {
                    break;
                }
                let next = queue.waiting.pop_front();
                if let Some((id, _)) = &next {
                    queue.running = Some(*id);
                    queue.cancel_running = false;
                }
                next
            };
            if let Some((id, job)) = next {
                match job {
                    Job::File(spec) => self.run_job(id, &spec),
                    Job::Live(live) => self.run_live(id, &live),
                }
                let mut queue = lock(&self.shared.queue);
                queue.running = None;
                queue.cancel_running = false;
                continue;
            }
            self.refresh_gpu_memory();
            match self.wake.recv_timeout(IDLE_TICK) {
                Ok(Command::Wake) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        let abandoned: Vec<JobId> = lock(&self.shared.queue)
            .waiting
            .drain(..)
            .map(|(id, _)| id)
            .collect();
        for job in abandoned {
            self.shared.hub.emit(Event::Cancelled { job });
        }
        // Free the pipeline before the device it lives on.
        self.diarizer = None;
        self.device = Device::Cpu;
        *lock(&self.shared.gpu_memory) = None;
    }

    fn run_job(&mut self, job: JobId, spec: &JobSpec) {
        let started = Instant::now();
        let batch_size = self.batch_size();
        self.shared.hub.emit(Event::Started {
            job,
            backend: self.backend,
            batch_size,
        });
        let mut fallback = None;
        let mut outcome = self.attempt(job, spec, batch_size);
        if let Err(e) = &outcome
            && self.backend.is_gpu()
            && falls_back(e)
        {
            let (announced, reloaded) = self.fall_back_after(job, e);
            fallback = Some(announced);
            outcome = reloaded.and_then(|()| {
                let batch_size = self.batch_size();
                self.attempt(job, spec, batch_size)
            });
        }
        let event = match outcome {
            Ok(result) => Event::Done {
                job,
                result: Box::new(result),
                backend: self.backend,
                fallback,
                wall_s: started.elapsed().as_secs_f64(),
            },
            Err(Error::Cancelled) => Event::Cancelled { job },
            Err(e) => Event::Failed {
                job,
                error: ErrorInfo::from(&e),
            },
        };
        self.shared.hub.emit(event);
        self.refresh_gpu_memory();
    }

    /// One run of the job on the current backend, panics caught.
    fn attempt(&mut self, job: JobId, spec: &JobSpec, batch_size: usize) -> Result<Diarization> {
        if self.diarizer.is_none() {
            self.diarizer = Some(load_caught::<D>(&self.models_dir, &self.device)?);
        }
        let Worker {
            shared,
            device,
            diarizer,
            fault,
            backend,
            ..
        } = self;
        let Some(diarizer) = diarizer.as_mut() else {
            return Err(Error::EngineStopped);
        };
        let mut progress = JobProgress {
            shared,
            job,
            device,
            track_gpu: backend.is_gpu(),
            last_gpu_refresh: Instant::now(),
        };
        let backend = *backend;
        let result = catch_unwind(AssertUnwindSafe(|| {
            diarize_with_faults(
                diarizer,
                spec,
                batch_size,
                &mut progress,
                fault.as_mut(),
                backend,
            )
        }));
        result.unwrap_or_else(|payload| {
            // A panic may have left the pipeline half-updated: reload it.
            self.diarizer = None;
            Err(Error::Panic(panic_message(payload.as_ref())))
        })
    }

    /// A live session: audio in, turn events out, until the feed closes.
    fn run_live(&mut self, job: JobId, live: &LiveJob) {
        let started = Instant::now();
        self.shared.hub.emit(Event::Started {
            job,
            backend: self.backend,
            batch_size: 1,
        });
        let mut state = match LiveState::new(live.spec.params.clone(), PipelineParams::default()) {
            Ok(state) => state,
            Err(e) => {
                let error = ErrorInfo::from(&e);
                self.shared.hub.emit(Event::Failed { job, error });
                return;
            }
        };
        // The latest version of every turn, for the result. A few dozen
        // bytes per turn: an 8-hour meeting holds a few thousand.
        let mut turns: std::collections::BTreeMap<u64, LiveTurn> = Default::default();
        let mut fallback = None;
        loop {
            if lock(&self.shared.queue).cancel_running {
                self.shared.hub.emit(Event::Cancelled { job });
                return;
            }
            match live.audio.recv_timeout(IDLE_TICK) {
                Ok(chunk) => {
                    let mut taken = chunk.samples.len();
                    state.push(chunk.start, &chunk.samples);
                    // Catch up on what is already waiting before computing,
                    // up to a bound: a producer faster than the engine (a
                    // file fed faster than real time) must then wait at the
                    // bounded feed. Draining while it refills would pile the
                    // whole stream into the state and compute it at once
                    // (an 8-hour feed peaked at 83 GB before this bound).
                    while taken < LIVE_CATCH_UP_SAMPLES
                        && let Ok(chunk) = live.audio.try_recv()
                    {
                        taken += chunk.samples.len();
                        state.push(chunk.start, &chunk.samples);
                    }
                }
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            }
            let updates = match self.live_step(job, &mut state, &mut fallback) {
                Ok(updates) => updates,
                Err(e) => {
                    let error = ErrorInfo::from(&e);
                    self.shared.hub.emit(Event::Failed { job, error });
                    return;
                }
            };
            for turn in updates {
                turns.insert(turn.id, turn.clone());
                self.shared.hub.emit(Event::LiveTurn { job, turn });
            }
            self.refresh_gpu_memory();
        }
        let all: Vec<LiveTurn> = turns.into_values().collect();
        let uri = live
            .spec
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "live".into());
        let finished = state.finish(&all, &uri, self.backend.as_str());
        for turn in finished.closed {
            self.shared.hub.emit(Event::LiveTurn { job, turn });
        }
        self.shared.hub.emit(Event::Done {
            job,
            result: Box::new(finished.diarization),
            backend: self.backend,
            fallback,
            wall_s: started.elapsed().as_secs_f64(),
        });
    }

    /// Announces that `job` failed on the GPU with `error` and reloads the
    /// pipeline on the CPU; the caller re-runs the work when that loaded.
    fn fall_back_after(&mut self, job: JobId, error: &Error) -> (Fallback, Result<()>) {
        let from = self.backend;
        // candle appends a backtrace to some errors: users get its first
        // line, the part that says what went wrong.
        let message = error.to_string();
        let reason = message
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        self.shared.hub.emit(Event::Fallback {
            job,
            from,
            reason: reason.clone(),
        });
        let reloaded = self.fall_back_to_cpu(format!("{from} failed: {reason}"));
        (Fallback { from, reason }, reloaded)
    }

    /// One live computation; on a GPU failure, falls back to the CPU and
    /// re-runs it there (the state's cursors only move on success).
    fn live_step(
        &mut self,
        job: JobId,
        state: &mut LiveState,
        fallback: &mut Option<Fallback>,
    ) -> Result<Vec<LiveTurn>> {
        let outcome = self.live_attempt(state);
        match outcome {
            Err(e) if self.backend.is_gpu() && falls_back(&e) => {
                let (announced, reloaded) = self.fall_back_after(job, &e);
                reloaded?;
                *fallback = Some(announced);
                self.live_attempt(state)
            }
            other => other,
        }
    }

    fn live_attempt(&mut self, state: &mut LiveState) -> Result<Vec<LiveTurn>> {
        if self.diarizer.is_none() {
            self.diarizer = Some(load_caught::<D>(&self.models_dir, &self.device)?);
        }
        let backend = self.backend;
        if let Some(fault) = self
            .fault
            .as_mut()
            .filter(|f| f.times > 0 && backend.is_gpu())
        {
            fault.times -= 1;
            if fault.kind == super::fault::FaultKind::Panic {
                self.diarizer = None;
                return Err(Error::Panic("injected fault: panic in a live step".into()));
            }
            return Err(Error::Backend {
                backend: backend.as_str().into(),
                reason: super::fault::INJECTED_REASON.into(),
            });
        }
        let Some(diarizer) = self.diarizer.as_mut() else {
            return Err(Error::EngineStopped);
        };
        let result = catch_unwind(AssertUnwindSafe(|| diarizer.live_advance(state)));
        result.unwrap_or_else(|payload| {
            self.diarizer = None;
            Err(Error::Panic(panic_message(payload.as_ref())))
        })
    }

    /// Drops the GPU pipeline, loads on the CPU and stays in safe mode
    /// until the user turns it off.
    fn fall_back_to_cpu(&mut self, reason: String) -> Result<()> {
        self.safe_mode = true;
        self.shared.want_safe_mode.store(true, Ordering::SeqCst);
        self.switch_to(Backend::Cpu, reason)
    }

    fn apply_safe_mode(&mut self) {
        let want = self.shared.want_safe_mode.load(Ordering::SeqCst);
        if want == self.safe_mode {
            return;
        }
        self.safe_mode = want;
        let already_there = match (want, self.gpu) {
            (true, _) | (false, None) => self.backend == Backend::Cpu,
            (false, Some(gpu)) => self.backend == gpu,
        };
        if already_there && self.diarizer.is_some() {
            // Nothing to free or reload (e.g. safe mode on a CPU-only machine).
            let reason = if want {
                "safe mode on"
            } else {
                "safe mode off"
            };
            self.publish(reason.into());
            return;
        }
        let outcome = match (want, self.gpu) {
            (true, _) => self.switch_to(Backend::Cpu, "safe mode on".into()),
            (false, Some(gpu)) => self.switch_to(gpu, "safe mode off".into()),
            (false, None) => {
                let reason = lock(&self.shared.backend).reason.clone();
                self.switch_to(Backend::Cpu, format!("safe mode off; no GPU ({reason})"))
            }
        };
        // A failed reload leaves no pipeline; the next job retries the load
        // and reports the error as that job's failure.
        if let Err(e) = outcome {
            self.publish(format!("could not load the pipeline: {e}"));
        }
    }

    /// Frees the current pipeline and device, then loads on `target`. A GPU
    /// that cannot be opened or loaded on leaves the engine on the CPU in
    /// safe mode.
    fn switch_to(&mut self, target: Backend, reason: String) -> Result<()> {
        self.diarizer = None;
        self.device = Device::Cpu;
        *lock(&self.shared.gpu_memory) = None;

        let loaded = target.open().and_then(|device| {
            let d = load_caught::<D>(&self.models_dir, &device)?;
            Ok((device, d))
        });
        match loaded {
            Ok((device, d)) => {
                self.backend = target;
                self.device = device;
                self.diarizer = Some(d);
                self.publish(reason);
                Ok(())
            }
            Err(e) if target.is_gpu() => {
                self.safe_mode = true;
                self.shared.want_safe_mode.store(true, Ordering::SeqCst);
                let reason =
                    format!("{reason}, but loading on {target} failed ({e}); safe mode on");
                self.switch_to(Backend::Cpu, reason)
            }
            Err(e) => {
                self.backend = Backend::Cpu;
                self.publish(format!("{reason}; loading on the CPU failed: {e}"));
                Err(e)
            }
        }
    }

    /// Records the backend for `status` and tells subscribers.
    fn publish(&mut self, reason: String) {
        *lock(&self.shared.backend) = BackendState {
            backend: self.backend,
            reason: reason.clone(),
            safe_mode: self.safe_mode,
            gpu: self.gpu,
        };
        self.shared.hub.emit(Event::BackendChanged {
            backend: self.backend,
            reason,
            safe_mode: self.safe_mode,
        });
        self.refresh_gpu_memory();
    }

    fn batch_size(&mut self) -> usize {
        let free = memory::free_bytes(&self.device, self.probe.as_mut());
        let (cap, bytes_per_window) = if self.device.is_cpu() {
            (
                self.max_batch.min(memory::CPU_MAX_BATCH),
                memory::CPU_BYTES_PER_WINDOW,
            )
        } else {
            (self.max_batch, memory::GPU_BYTES_PER_WINDOW)
        };
        memory::batch_size(free, bytes_per_window, cap)
    }

    fn refresh_gpu_memory(&self) {
        *lock(&self.shared.gpu_memory) = memory::gpu_memory(&self.device);
    }
}

/// The `Progress` the engine hands to the pipeline: forwards progress as
/// events, turns `cancel` into `Break`, refreshes the GPU snapshot.
struct JobProgress<'a> {
    shared: &'a Shared,
    job: JobId,
    device: &'a Device,
    track_gpu: bool,
    last_gpu_refresh: Instant,
}

impl Progress for JobProgress<'_> {
    fn update(&mut self, stage: Stage, done: usize, total: usize) -> ControlFlow<()> {
        self.shared.hub.emit(Event::Progress {
            job: self.job,
            stage,
            done,
            total,
        });
        if self.track_gpu && self.last_gpu_refresh.elapsed() >= GPU_REFRESH_EVERY {
            *lock(&self.shared.gpu_memory) = memory::gpu_memory(self.device);
            self.last_gpu_refresh = Instant::now();
        }
        if lock(&self.shared.queue).cancel_running {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

/// Whether a failed GPU job should be re-run on the CPU: everything but
/// bad input (which would fail there too) and the user's own cancel.
fn falls_back(e: &Error) -> bool {
    !matches!(
        e,
        Error::Cancelled
            | Error::Decode { .. }
            | Error::Io { .. }
            | Error::InvalidOption(_)
            | Error::Parse { .. }
    )
}

fn load_caught<D: Diarizer>(models_dir: &Path, device: &Device) -> Result<D> {
    catch_unwind(AssertUnwindSafe(|| D::load(models_dir, device)))
        .unwrap_or_else(|payload| Err(Error::Panic(panic_message(payload.as_ref()))))
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_errors_and_cancel_do_not_fall_back() {
        assert!(!falls_back(&Error::Cancelled));
        assert!(!falls_back(&Error::decode("a.wav", "bad")));
        assert!(!falls_back(&Error::InvalidOption("x".into())));
        assert!(!falls_back(&Error::io(
            "a.wav",
            std::io::Error::other("gone")
        )));
        assert!(falls_back(&Error::Panic("boom".into())));
        assert!(falls_back(&Error::Backend {
            backend: "cuda".into(),
            reason: "out of memory".into()
        }));
        assert!(falls_back(&Error::Candle(candle_core::Error::Msg(
            "oom".into()
        ))));
    }

    #[test]
    fn panic_messages_are_kept() {
        let caught = catch_unwind(|| panic!("kernel {} missing", 3)).unwrap_err();
        assert_eq!(panic_message(caught.as_ref()), "kernel 3 missing");
        let caught = catch_unwind(|| panic!("plain")).unwrap_err();
        assert_eq!(panic_message(caught.as_ref()), "plain");
    }
}
