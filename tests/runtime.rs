//! Behaviour of the engine thread: queue, cancel, safe mode, fallback,
//! shutdown, stats and memory, with a stand-in `Diarizer` that does real
//! candle matmuls on the device it was loaded on.
//!
//! GPU paths run on `Backend::SimulatedGpu` (the CPU, treated as a GPU) with
//! injected faults, so all of this runs on CPU-only CI.

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use candle_core::{DType, Device, Tensor};
use crossbeam_channel::Receiver;
use diarist::runtime::{FaultInjection, FaultKind, process_rss_bytes};
use diarist::{
    Backend, DevicePreference, Diarization, Diarizer, Engine, EngineConfig, Error, Event, JobId,
    JobSpec, Progress, Stage, StageTimings, Turn,
};

/// Most tests share the process happily; the RSS test needs it to itself.
static SERIAL: RwLock<()> = RwLock::new(());

/// Names of the threads `diarize` ran on, across all tests.
static DIARIZE_THREADS: Mutex<Vec<String>> = Mutex::new(Vec::new());

const WIDTH: usize = 256;

/// Does `b<N>` batches of matmuls (default 4), sleeping `ms<N>` after each;
/// a file stem containing `decodeerr` fails like an undecodable file.
struct MatmulDiarizer {
    weight: Tensor,
}

impl Diarizer for MatmulDiarizer {
    fn load(_models_dir: &Path, device: &Device) -> diarist::Result<Self> {
        let weight = (Tensor::ones((WIDTH, WIDTH), DType::F32, device)? * 0.01)?;
        Ok(Self { weight })
    }

    fn diarize(
        &mut self,
        job: &JobSpec,
        batch_size: usize,
        progress: &mut dyn Progress,
    ) -> diarist::Result<Diarization> {
        let name = std::thread::current().name().unwrap_or("").to_string();
        DIARIZE_THREADS.lock().unwrap().push(name);

        let stem = job.path.file_stem().unwrap().to_string_lossy().to_string();
        if stem.contains("decodeerr") {
            return Err(Error::Decode {
                path: job.path.clone(),
                reason: "not audio".into(),
            });
        }
        let batches = token(&stem, "b").unwrap_or(4);
        let sleep_ms = token(&stem, "ms").unwrap_or(0);
        for i in 0..batches {
            let xs = Tensor::ones(
                (batch_size.min(64), WIDTH),
                DType::F32,
                self.weight.device(),
            )?;
            let ys = xs.matmul(&self.weight)?; // (batch, WIDTH)
            let total = ys.sum_all()?.to_scalar::<f32>()?;
            assert!(total > 0.0);
            std::thread::sleep(Duration::from_millis(sleep_ms as u64));
            if let ControlFlow::Break(()) = progress.update(Stage::Segmentation, i + 1, batches) {
                return Err(Error::Cancelled);
            }
        }
        let backend = if self.weight.device().is_cpu() {
            "cpu"
        } else {
            "gpu"
        };
        let turns = vec![Turn {
            start_s: 0.0,
            end_s: 1.0,
            speaker: "SPEAKER_00".into(),
        }];
        Ok(Diarization::new(
            stem,
            batches as f64,
            turns,
            backend,
            StageTimings::default(),
        ))
    }
}

/// `b12` in `job_b12_ms5` is 12.
fn token(stem: &str, prefix: &str) -> Option<usize> {
    stem.split('_')
        .filter_map(|t| t.strip_prefix(prefix))
        .find_map(|n| n.parse().ok())
}

fn config() -> EngineConfig {
    let mut cfg = EngineConfig::new("models");
    cfg.device = DevicePreference::Cpu;
    cfg
}

fn simulated_gpu(fault: Option<FaultInjection>) -> EngineConfig {
    let mut cfg = config();
    cfg.simulate_gpu = true;
    cfg.fault = fault;
    cfg
}

fn start(cfg: EngineConfig) -> Engine {
    Engine::start::<MatmulDiarizer>(cfg).unwrap()
}

/// Receives events until `last` matches one (included), ignoring stats.
fn events_until(rx: &Receiver<Event>, last: impl Fn(&Event) -> bool) -> Vec<Event> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = rx
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("{e}; events so far: {seen:#?}"));
        if matches!(event, Event::Stats(_)) {
            continue;
        }
        let stop = last(&event);
        seen.push(event);
        if stop {
            return seen;
        }
    }
}

fn is_terminal(e: &Event) -> bool {
    matches!(
        e,
        Event::Done { .. } | Event::Failed { .. } | Event::Cancelled { .. }
    )
}

/// Receives until every job in `jobs` has ended.
fn until_all_end(rx: &Receiver<Event>, jobs: &[JobId]) -> Vec<Event> {
    let mut all = Vec::new();
    let mut left: Vec<JobId> = jobs.to_vec();
    while !left.is_empty() {
        let batch = events_until(rx, |e| {
            is_terminal(e) && e.job().is_some_and(|j| left.contains(&j))
        });
        let ended = batch.last().and_then(Event::job).unwrap();
        left.retain(|j| *j != ended);
        all.extend(batch);
    }
    all
}

fn count(events: &[Event], job: JobId, pred: impl Fn(&Event) -> bool) -> usize {
    events
        .iter()
        .filter(|e| e.job() == Some(job) && pred(e))
        .count()
}

fn done_backend(events: &[Event], job: JobId) -> Backend {
    events
        .iter()
        .find_map(|e| match e {
            Event::Done {
                job: j, backend, ..
            } if *j == job => Some(*backend),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no Done for {job}: {events:#?}"))
}

fn started_backend(events: &[Event], job: JobId) -> Backend {
    events
        .iter()
        .find_map(|e| match e {
            Event::Started {
                job: j, backend, ..
            } if *j == job => Some(*backend),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no Started for {job}"))
}

fn read_lock() -> std::sync::RwLockReadGuard<'static, ()> {
    SERIAL.read().unwrap_or_else(|p| p.into_inner())
}

#[test]
fn jobs_run_in_submission_order_on_the_engine_thread() {
    let _serial = read_lock();
    let engine = start(config());
    let rx = engine.subscribe_jobs();
    let ids: Vec<JobId> = (0..4)
        .map(|i| {
            engine
                .submit(JobSpec::new(format!("job{i}_b3.wav")))
                .unwrap()
        })
        .collect();
    assert_eq!(ids, vec![JobId(1), JobId(2), JobId(3), JobId(4)]);

    let events = until_all_end(&rx, &ids);
    let started: Vec<JobId> = events
        .iter()
        .filter(|e| matches!(e, Event::Started { .. }))
        .filter_map(Event::job)
        .collect();
    let done: Vec<JobId> = events
        .iter()
        .filter(|e| matches!(e, Event::Done { .. }))
        .filter_map(Event::job)
        .collect();
    assert_eq!(started, ids);
    assert_eq!(done, ids);
    for &id in &ids {
        assert_eq!(
            count(&events, id, |e| matches!(e, Event::Progress { .. })),
            3
        );
        assert_eq!(done_backend(&events, id), Backend::Cpu);
    }
    match events
        .iter()
        .find(|e| matches!(e, Event::Done { .. }))
        .unwrap()
    {
        Event::Done {
            result,
            fallback,
            wall_s,
            ..
        } => {
            assert_eq!(result.uri, "job0_b3");
            assert_eq!(result.backend, "cpu");
            assert!(fallback.is_none());
            assert!(*wall_s > 0.0);
        }
        _ => unreachable!(),
    }
    let threads = DIARIZE_THREADS.lock().unwrap().clone();
    assert!(threads.iter().all(|n| n == "diarist-engine"), "{threads:?}");
    let status = engine.status();
    assert_eq!(status.backend, Backend::Cpu);
    assert_eq!(status.reason, "CPU requested");
    assert!(status.running.is_none() && status.queued.is_empty());
}

#[test]
fn a_full_queue_is_an_error_not_a_block() {
    let _serial = read_lock();
    let mut cfg = config();
    cfg.queue_capacity = 2;
    let engine = start(cfg);
    let rx = engine.subscribe_jobs();
    let busy = engine.submit(JobSpec::new("busy_b400_ms5.wav")).unwrap();
    events_until(
        &rx,
        |e| matches!(e, Event::Started { job, .. } if *job == busy),
    );

    engine.submit(JobSpec::new("a.wav")).unwrap();
    engine.submit(JobSpec::new("b.wav")).unwrap();
    let t0 = Instant::now();
    let err = engine.submit(JobSpec::new("c.wav")).unwrap_err();
    assert!(t0.elapsed() < Duration::from_millis(100));
    assert!(matches!(err, Error::QueueFull { capacity: 2 }), "{err}");
    assert!(err.to_string().contains("queue is full"), "{err}");
    assert_eq!(engine.status().queued.len(), 2);
}

#[test]
fn cancelling_a_waiting_job_removes_it_at_once() {
    let _serial = read_lock();
    let engine = start(config());
    let rx = engine.subscribe_jobs();
    let busy = engine.submit(JobSpec::new("busy_b40_ms10.wav")).unwrap();
    let waiting = engine.submit(JobSpec::new("waiting.wav")).unwrap();
    let after = engine.submit(JobSpec::new("after.wav")).unwrap();

    assert!(engine.cancel(waiting));
    assert!(!engine.status().queued.contains(&waiting));
    assert!(!engine.cancel(waiting), "a cancelled job is gone");

    let events = until_all_end(&rx, &[busy, waiting, after]);
    assert_eq!(
        count(&events, waiting, |e| matches!(e, Event::Cancelled { .. })),
        1
    );
    assert_eq!(
        count(&events, waiting, |e| matches!(e, Event::Started { .. })),
        0
    );
    assert_eq!(done_backend(&events, busy), Backend::Cpu);
    assert_eq!(done_backend(&events, after), Backend::Cpu);
}

#[test]
fn cancelling_the_running_job_stops_it_within_one_batch() {
    let _serial = read_lock();
    let engine = start(config());
    let rx = engine.subscribe_jobs();
    let job = engine.submit(JobSpec::new("long_b2000_ms5.wav")).unwrap();
    let next = engine.submit(JobSpec::new("next.wav")).unwrap();
    events_until(
        &rx,
        |e| matches!(e, Event::Progress { job: j, done: 3, .. } if *j == job),
    );

    let t0 = Instant::now();
    assert!(engine.cancel(job));
    let tail = events_until(&rx, |e| is_terminal(e) && e.job() == Some(job));
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    assert!(
        matches!(tail.last(), Some(Event::Cancelled { .. })),
        "{tail:#?}"
    );
    // The batch in flight reports once more, then the job stops.
    let progress_after = count(&tail, job, |e| matches!(e, Event::Progress { .. }));
    assert!(
        progress_after <= 1,
        "{progress_after} batches ran after cancel"
    );

    let rest = until_all_end(&rx, &[next]);
    assert_eq!(done_backend(&rest, next), Backend::Cpu);
    assert!(!engine.cancel(job));
}

#[test]
fn safe_mode_reloads_between_jobs_without_losing_any() {
    let _serial = read_lock();
    let engine = start(simulated_gpu(None));
    assert_eq!(engine.status().backend, Backend::SimulatedGpu);
    let rx = engine.subscribe_jobs();
    let ids: Vec<JobId> = (0..6)
        .map(|i| {
            engine
                .submit(JobSpec::new(format!("j{i}_b3_ms5.wav")))
                .unwrap()
        })
        .collect();
    engine.set_safe_mode(true).unwrap();
    let mut events = events_until(
        &rx,
        |e| matches!(e, Event::Done { job, .. } if *job == ids[2]),
    );
    engine.set_safe_mode(false).unwrap();
    events.extend(until_all_end(&rx, &ids[3..]));
    assert_eq!(engine.status().backend, Backend::SimulatedGpu);
    assert!(!engine.status().safe_mode);

    // Every job ran exactly once and finished.
    for &id in &ids {
        assert_eq!(
            count(&events, id, |e| matches!(e, Event::Started { .. })),
            1
        );
        assert_eq!(count(&events, id, |e| matches!(e, Event::Done { .. })), 1);
        assert_eq!(count(&events, id, |e| matches!(e, Event::Failed { .. })), 0);
    }
    // Both switches happened between jobs, never inside one, in order.
    let mut running: Option<JobId> = None;
    let mut switches = Vec::new();
    for e in &events {
        match e {
            Event::Started { job, .. } => running = Some(*job),
            Event::Done { .. } => running = None,
            Event::BackendChanged {
                backend, safe_mode, ..
            } => {
                assert!(running.is_none(), "backend changed inside {running:?}");
                switches.push((*backend, *safe_mode));
            }
            _ => {}
        }
    }
    let expected = vec![(Backend::Cpu, true), (Backend::SimulatedGpu, false)];
    assert_eq!(switches, expected, "{events:#?}");
    assert_eq!(done_backend(&events, ids[5]), Backend::SimulatedGpu);
}

#[test]
fn safe_mode_events_come_in_order() {
    let _serial = read_lock();
    let engine = start(simulated_gpu(None));
    let rx = engine.subscribe_jobs();
    engine.set_safe_mode(true).unwrap();
    let a = engine.submit(JobSpec::new("a.wav")).unwrap();
    let first = until_all_end(&rx, &[a]);
    assert!(matches!(
        &first[..],
        [Event::Queued { .. }, ..] | [Event::BackendChanged { .. }, ..]
    ));
    let changed: Vec<(Backend, bool)> = first
        .iter()
        .filter_map(|e| match e {
            Event::BackendChanged {
                backend, safe_mode, ..
            } => Some((*backend, *safe_mode)),
            _ => None,
        })
        .collect();
    assert_eq!(changed, vec![(Backend::Cpu, true)]);
    assert_eq!(done_backend(&first, a), Backend::Cpu);

    engine.set_safe_mode(false).unwrap();
    let back = events_until(&rx, |e| matches!(e, Event::BackendChanged { .. }));
    assert!(matches!(
        back.last(),
        Some(Event::BackendChanged {
            backend: Backend::SimulatedGpu,
            safe_mode: false,
            ..
        })
    ));
    let b = engine.submit(JobSpec::new("b.wav")).unwrap();
    assert_eq!(
        done_backend(&until_all_end(&rx, &[b]), b),
        Backend::SimulatedGpu
    );
}

#[test]
fn safe_mode_on_a_cpu_only_engine_is_reported_without_reload() {
    let _serial = read_lock();
    let engine = start(config());
    assert_eq!(engine.status().gpu, None);
    let rx = engine.subscribe_jobs();
    engine.set_safe_mode(true).unwrap();
    let on = events_until(&rx, |e| matches!(e, Event::BackendChanged { .. }));
    assert!(matches!(
        on.last(),
        Some(Event::BackendChanged {
            backend: Backend::Cpu,
            safe_mode: true,
            ..
        })
    ));
    engine.set_safe_mode(false).unwrap();
    let off = events_until(&rx, |e| matches!(e, Event::BackendChanged { .. }));
    assert!(matches!(
        off.last(),
        Some(Event::BackendChanged {
            backend: Backend::Cpu,
            safe_mode: false,
            ..
        })
    ));
    let job = engine.submit(JobSpec::new("a.wav")).unwrap();
    assert_eq!(done_backend(&until_all_end(&rx, &[job]), job), Backend::Cpu);
}

fn fallback_finishes_on_cpu_and_stays_in_safe_mode(kind: FaultKind, reason_has: &str) {
    let fault = FaultInjection {
        on_batch: 2,
        kind,
        times: 1,
    };
    let engine = start(simulated_gpu(Some(fault)));
    let rx = engine.subscribe_jobs();
    let job = engine.submit(JobSpec::new("faulty_b4.wav")).unwrap();
    let events = until_all_end(&rx, &[job]);

    assert_eq!(started_backend(&events, job), Backend::SimulatedGpu);
    let fallback_at = events
        .iter()
        .position(|e| matches!(e, Event::Fallback { .. }))
        .unwrap_or_else(|| panic!("no Fallback event: {events:#?}"));
    match &events[fallback_at] {
        Event::Fallback {
            job: j,
            from,
            reason,
        } => {
            assert_eq!((*j, *from), (job, Backend::SimulatedGpu));
            assert!(reason.contains(reason_has), "{reason}");
        }
        _ => unreachable!(),
    }
    assert!(matches!(
        events[fallback_at + 1],
        Event::BackendChanged {
            backend: Backend::Cpu,
            safe_mode: true,
            ..
        }
    ));
    match events.last().unwrap() {
        Event::Done {
            job: j,
            backend,
            fallback,
            result,
            ..
        } => {
            assert_eq!((*j, *backend), (job, Backend::Cpu));
            assert_eq!(result.backend, "cpu");
            let fallback = fallback.as_ref().unwrap();
            assert_eq!(fallback.from, Backend::SimulatedGpu);
            assert!(fallback.reason.contains(reason_has));
        }
        other => panic!("expected Done, got {other:?}"),
    }
    // The re-run started from batch 1: all 4 batches ran on the CPU.
    let cpu_progress = events[fallback_at..]
        .iter()
        .filter(|e| matches!(e, Event::Progress { .. }))
        .count();
    assert_eq!(cpu_progress, 4);
    assert_eq!(
        count(&events, job, |e| matches!(e, Event::Started { .. })),
        1
    );

    let status = engine.status();
    assert!(status.safe_mode);
    assert_eq!(status.backend, Backend::Cpu);

    let next = engine.submit(JobSpec::new("next.wav")).unwrap();
    let events = until_all_end(&rx, &[next]);
    assert_eq!(started_backend(&events, next), Backend::Cpu);
    assert_eq!(done_backend(&events, next), Backend::Cpu);

    engine.set_safe_mode(false).unwrap();
    let back = engine.submit(JobSpec::new("back.wav")).unwrap();
    let events = until_all_end(&rx, &[back]);
    assert_eq!(started_backend(&events, back), Backend::SimulatedGpu);
    match events.last().unwrap() {
        Event::Done {
            backend, fallback, ..
        } => {
            assert_eq!(*backend, Backend::SimulatedGpu);
            assert!(fallback.is_none());
        }
        other => panic!("expected Done, got {other:?}"),
    }
}

#[test]
fn injected_gpu_error_falls_back_to_cpu() {
    let _serial = read_lock();
    fallback_finishes_on_cpu_and_stays_in_safe_mode(FaultKind::Error, "injected fault");
}

#[test]
fn injected_gpu_panic_falls_back_to_cpu() {
    let _serial = read_lock();
    fallback_finishes_on_cpu_and_stays_in_safe_mode(FaultKind::Panic, "panicked");
}

#[test]
fn input_errors_and_cancel_do_not_fall_back() {
    let _serial = read_lock();
    let engine = start(simulated_gpu(None));
    let rx = engine.subscribe_jobs();
    let bad = engine.submit(JobSpec::new("x_decodeerr.wav")).unwrap();
    let events = until_all_end(&rx, &[bad]);
    match events.last().unwrap() {
        Event::Failed { job, error } => {
            assert_eq!(*job, bad);
            assert_eq!(error.code, "decode");
            assert_eq!(error.message, "x_decodeerr.wav: not audio");
        }
        other => panic!("expected Failed, got {other:?}"),
    }

    let long = engine.submit(JobSpec::new("long_b2000_ms5.wav")).unwrap();
    events_until(
        &rx,
        |e| matches!(e, Event::Progress { job, .. } if *job == long),
    );
    engine.cancel(long);
    let mut all = events;
    all.extend(until_all_end(&rx, &[long]));
    assert!(matches!(all.last(), Some(Event::Cancelled { .. })));

    assert!(
        !all.iter()
            .any(|e| matches!(e, Event::Fallback { .. } | Event::BackendChanged { .. }))
    );
    let status = engine.status();
    assert_eq!(status.backend, Backend::SimulatedGpu);
    assert!(!status.safe_mode);
}

#[test]
fn shutdown_cancels_jobs_and_joins_the_thread() {
    let _serial = read_lock();
    let engine = start(config());
    let other_handle = engine.clone();
    let rx = engine.subscribe_jobs();
    let running = engine.submit(JobSpec::new("long_b2000_ms5.wav")).unwrap();
    let waiting = engine.submit(JobSpec::new("w.wav")).unwrap();
    events_until(
        &rx,
        |e| matches!(e, Event::Progress { job, .. } if *job == running),
    );

    let t0 = Instant::now();
    engine.shutdown();
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    let events = until_all_end(&rx, &[running, waiting]);
    assert_eq!(
        count(&events, running, |e| matches!(e, Event::Cancelled { .. })),
        1
    );
    assert_eq!(
        count(&events, waiting, |e| matches!(e, Event::Cancelled { .. })),
        1
    );

    assert!(other_handle.status().stopped);
    let err = other_handle.submit(JobSpec::new("late.wav")).unwrap_err();
    assert!(matches!(err, Error::EngineStopped), "{err}");
    assert!(other_handle.set_safe_mode(true).is_err());
    other_handle.shutdown(); // idempotent
}

#[test]
fn dropping_the_last_handle_shuts_down() {
    let _serial = read_lock();
    let engine = start(config());
    let rx = engine.subscribe_jobs();
    let clone = engine.clone();
    drop(engine);
    // A clone keeps it alive.
    let job = clone.submit(JobSpec::new("a.wav")).unwrap();
    until_all_end(&rx, &[job]);
    drop(clone);
    // Joined: the engine's senders are gone, so the channel disconnects.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(_) => continue,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            Err(e) => panic!("engine still alive: {e}"),
        }
    }
}

#[test]
fn stats_sampler_runs_only_while_subscribed() {
    let _serial = read_lock();
    let engine = start(config());
    let _jobs = engine.subscribe_jobs();
    assert!(!engine.status().stats_sampler_running);

    let rx = engine.subscribe();
    assert!(engine.status().stats_sampler_running);
    let stats = loop {
        match rx.recv_timeout(Duration::from_secs(5)).unwrap() {
            Event::Stats(s) => break s,
            _ => continue,
        }
    };
    assert!(stats.process_rss_bytes > 1 << 20, "{stats:?}");
    assert!(stats.ram_total_bytes >= stats.ram_used_bytes && stats.ram_total_bytes > 0);
    assert!(stats.gpu.is_none(), "the CPU has no GPU memory");
    let json = serde_json::to_value(Event::Stats(stats)).unwrap();
    assert_eq!(json["event"], "stats");
    assert!(json["data"]["processRssBytes"].as_u64().unwrap() > 0);

    drop(rx);
    let deadline = Instant::now() + Duration::from_secs(5);
    while engine.status().stats_sampler_running {
        assert!(
            Instant::now() < deadline,
            "sampler still running without subscribers"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let again = engine.subscribe();
    assert!(
        engine.status().stats_sampler_running,
        "restarts for a new subscriber"
    );
    assert!(matches!(
        again.recv_timeout(Duration::from_secs(5)).unwrap(),
        Event::Stats(_)
    ));
}

/// ARCHITECTURE point 4: after every job, process memory is back where it
/// was after the first one.
#[test]
fn process_rss_stays_flat_over_50_jobs() {
    let _serial = SERIAL.write().unwrap_or_else(|p| p.into_inner());
    let mut cfg = config();
    cfg.max_batch = 64;
    let engine = start(cfg);
    let rx = engine.subscribe_jobs();
    let mut rss = Vec::new();
    for i in 0..50 {
        let job = engine.submit(JobSpec::new(format!("m{i}_b8.wav"))).unwrap();
        let events = until_all_end(&rx, &[job]);
        assert_eq!(done_backend(&events, job), Backend::Cpu);
        drop(events);
        rss.push(process_rss_bytes().unwrap());
    }
    let first = rss[0] as f64;
    let worst = rss
        .iter()
        .map(|&r| (r as f64 - first).abs() / first)
        .fold(0.0, f64::max);
    eprintln!(
        "RSS after job 1: {:.1} MiB, worst drift over 50 jobs: {:.2} %",
        first / (1 << 20) as f64,
        worst * 100.0
    );
    assert!(worst <= 0.02, "RSS drifted {:.2} %: {rss:?}", worst * 100.0);
}

#[test]
fn job_log_records_a_finished_job() {
    let _serial = read_lock();
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("jobs.jsonl");
    let engine = start(config());
    let rx = engine.subscribe_jobs();
    let job = engine.submit(JobSpec::new("logged_b2.wav")).unwrap();
    let events = until_all_end(&rx, &[job]);
    let mut log = diarist::runtime::JobLog::open(&log_path).unwrap();
    for e in &events {
        if let Event::Done {
            result,
            backend,
            fallback,
            wall_s,
            ..
        } = e
        {
            let record = diarist::runtime::JobRecord::new(
                "logged_b2.wav",
                result,
                *backend,
                fallback.as_ref(),
                *wall_s,
            );
            log.append(&record).unwrap();
        }
    }
    let text = std::fs::read_to_string(&log_path).unwrap();
    let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(line["file"], "logged_b2.wav");
    assert_eq!(line["audio_duration_s"], 2.0);
    assert_eq!(line["backend"], "cpu");
    assert!(line["fallback"].is_null());
    assert!(line["real_time_factor"].as_f64().unwrap() > 0.0);
}
