//! The engine thread: the only owner of the device and the loaded
//! [`Diarizer`]. It takes jobs from the queue in order, runs file jobs and
//! live sessions, applies safe mode between them, and sizes batches from
//! free memory. What happens when work fails is in `fallback`.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use candle_core::Device;
use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::fallback::load_caught;
use super::handle::EngineConfig;
use super::{BackendState, Command, Job, LiveJob, Shared};
use crate::error::Result;
use crate::pipeline::PipelineParams;
use crate::pipeline::live::{LiveState, LiveTurn};
use crate::progress::{Progress, Stage};
use crate::runtime::device::{Backend, DevicePreference, choose_gpu};
use crate::runtime::events::{ErrorInfo, Event, JobId, lock};
use crate::runtime::fault::{FaultInjection, diarize_with_faults, live_advance_with_faults};
use crate::runtime::memory;
use crate::runtime::stats::SystemProbe;
use crate::runtime::{Diarizer, JobSpec};

/// How long the idle engine waits before refreshing the GPU snapshot.
const IDLE_TICK: Duration = Duration::from_millis(500);

/// The GPU snapshot is refreshed at most this often during a job.
const GPU_REFRESH_EVERY: Duration = Duration::from_millis(250);

/// Most audio a live session takes in before it computes again: 10 s.
const LIVE_CATCH_UP_SAMPLES: usize = 10 * crate::audio::SAMPLE_RATE as usize;

/// The state that lives on the engine thread only.
pub(super) struct Worker<D> {
    pub(super) shared: Arc<Shared>,
    pub(super) models_dir: PathBuf,
    max_batch: usize,
    /// The GPU chosen once at start; safe mode off returns to it.
    gpu: Option<Backend>,
    pub(super) backend: Backend,
    pub(super) device: Device,
    pub(super) diarizer: Option<D>,
    pub(super) safe_mode: bool,
    pub(super) fault: Option<FaultInjection>,
    probe: Option<SystemProbe>,
    wake: Receiver<Command>,
}

impl<D: Diarizer> Worker<D> {
    pub(super) fn start(
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

    pub(super) fn run(&mut self) {
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
        // The first run uses the batch size announced above; a re-run on
        // the CPU sizes its batches for the CPU.
        let mut first_batch = Some(batch_size);
        let outcome = self.with_fallback(job, &mut fallback, |worker| {
            let batch_size = first_batch.take().unwrap_or_else(|| worker.batch_size());
            worker.attempt(|diarizer, run| {
                let mut progress = JobProgress {
                    shared: run.shared,
                    job,
                    device: run.device,
                    track_gpu: run.backend.is_gpu(),
                    last_gpu_refresh: Instant::now(),
                };
                diarize_with_faults(
                    diarizer,
                    spec,
                    batch_size,
                    &mut progress,
                    run.fault,
                    run.backend,
                )
            })
        });
        let event = match outcome {
            Ok(result) => Event::Done {
                job,
                result: Box::new(result),
                backend: self.backend,
                fallback,
                wall_s: started.elapsed().as_secs_f64(),
            },
            Err(crate::Error::Cancelled) => Event::Cancelled { job },
            Err(e) => Event::Failed {
                job,
                error: ErrorInfo::from(&e),
            },
        };
        self.shared.hub.emit(event);
        self.refresh_gpu_memory();
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
        let mut turns: BTreeMap<u64, LiveTurn> = Default::default();
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
            // The state's cursors only move on success, so a step that
            // failed on the GPU is re-run from the same audio on the CPU.
            let step = self.with_fallback(job, &mut fallback, |worker| {
                worker.attempt(|diarizer, run| {
                    live_advance_with_faults(diarizer, &mut state, run.fault, run.backend)
                })
            });
            let updates = match step {
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
    pub(super) fn switch_to(&mut self, target: Backend, reason: String) -> Result<()> {
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
            Err(e) if target.is_gpu() => self.fall_back_to_cpu(format!(
                "{reason}, but loading on {target} failed ({e}); safe mode on"
            )),
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
