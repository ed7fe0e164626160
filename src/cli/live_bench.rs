//! `diarist bench --live FILE`: the live path measured, figures printed
//! (never asserted).
//!
//! In real time (the default) the file is fed through an engine's live
//! session in 20 ms chunks on a wall-clock schedule, as the recorder feeds
//! it, and the bench reports label latency (how long after a moment of
//! speech was heard its label appeared; 95th percentile target ≤ 2 s) and
//! the process's CPU time over the wall time (target ≤ 50 % of one core).
//! With `--live-hours H` the file is looped up to H hours of audio and fed
//! as fast as the engine takes it, printing RSS after every hour of audio:
//! flat memory over a long meeting.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use crossbeam_channel::RecvTimeoutError;
use diarist::audio::SAMPLE_RATE;
use diarist::pipeline::Pipeline;
use diarist::runtime::{Engine, EngineConfig, Event, LiveSpec, process_rss_bytes};

use super::EngineArgs;

/// Chunk the feeder pushes, as the recorder's writer does every 20 ms.
const CHUNK: usize = SAMPLE_RATE as usize / 50;

/// What a live bench reports.
struct Figures {
    audio_s: f64,
    wall_s: f64,
    cpu_s: Option<f64>,
    latencies: Vec<f64>,
    speakers: usize,
    turns: usize,
}

pub fn run(file: &Path, hours: Option<f64>, engine_args: &EngineArgs) -> anyhow::Result<()> {
    let samples = diarist::audio::decode_file(file)?;
    if samples.is_empty() {
        bail!("{}: no audio", file.display());
    }
    let mut config = EngineConfig::new(engine_args.models_dir());
    config.device = engine_args.device;
    let engine = Engine::start::<Pipeline>(config)?;
    let backend = engine.status().backend;
    println!(
        "live bench: {} ({:.1} s), backend {}, RSS at start {}",
        file.display(),
        samples.len() as f64 / f64::from(SAMPLE_RATE),
        backend.as_str(),
        mib(process_rss_bytes())
    );
    let figures = match hours {
        None => real_time(&engine, file, samples)?,
        Some(h) => looped(&engine, file, samples, h)?,
    };
    engine.shutdown();
    report(&figures);
    Ok(())
}

fn real_time(engine: &Engine, file: &Path, samples: Vec<f32>) -> anyhow::Result<Figures> {
    let events = engine.subscribe_jobs();
    let session = engine.start_live(LiveSpec::new(file))?;
    let job = session.job();
    let started = Instant::now();
    let cpu_start = cpu_seconds();
    let feeder = std::thread::spawn(move || {
        for (i, chunk) in samples.chunks(CHUNK).enumerate() {
            // Audio of chunk i exists once its last sample has been "heard".
            let due = Duration::from_secs_f64(((i * CHUNK + chunk.len()) as f64) / 16_000.0);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
            if session.push((i * CHUNK) as u64, chunk.to_vec()).is_err() {
                break;
            }
        }
        // Dropping the session ends the audio.
    });
    // For each turn, how far its labelled audio reached, to time only the
    // newly labelled part of each update.
    let mut reached: std::collections::HashMap<u64, f64> = Default::default();
    let mut latencies = Vec::new();
    let result = loop {
        let event = events.recv().context("the engine stopped")?;
        if event.job() != Some(job) {
            continue;
        }
        match event {
            Event::LiveTurn { turn, .. } => {
                let now = started.elapsed().as_secs_f64();
                let from = reached.get(&turn.id).copied().unwrap_or(turn.start_s);
                // Every 100 ms of newly labelled speech: heard at t, labelled now.
                let mut t = from;
                while t < turn.end_s {
                    latencies.push(now - t);
                    t += 0.1;
                }
                reached.insert(turn.id, turn.end_s.max(from));
            }
            Event::Done { result, .. } => break result,
            Event::Failed { error, .. } => bail!("live session failed: {}", error.message),
            Event::Cancelled { .. } => bail!("live session cancelled"),
            _ => {}
        }
    };
    let _ = feeder.join();
    let wall_s = started.elapsed().as_secs_f64();
    Ok(Figures {
        audio_s: result.duration_s,
        wall_s,
        cpu_s: cpu_start.and_then(|c0| cpu_seconds().map(|c1| c1 - c0)),
        latencies,
        speakers: result.num_speakers(),
        turns: result.turns.len(),
    })
}

fn looped(engine: &Engine, file: &Path, samples: Vec<f32>, hours: f64) -> anyhow::Result<Figures> {
    let events = engine.subscribe_jobs();
    let session = engine.start_live(LiveSpec::new(file))?;
    let job = session.job();
    let total = (hours * 3600.0 * f64::from(SAMPLE_RATE)) as u64;
    let started = Instant::now();
    let cpu_start = cpu_seconds();
    let done = Arc::new(AtomicBool::new(false));
    let feeder_done = Arc::clone(&done);
    let feeder = std::thread::spawn(move || {
        let mut at = 0u64;
        let mut next_report = 3600 * u64::from(SAMPLE_RATE);
        'outer: while at < total {
            for chunk in samples.chunks(16 * CHUNK) {
                let n = (chunk.len() as u64).min(total - at) as usize;
                if session.push(at, chunk[..n].to_vec()).is_err() {
                    break 'outer;
                }
                at += n as u64;
                if at >= next_report {
                    println!(
                        "  {:>5.1} h of audio fed after {:>7.1} s: RSS {}",
                        at as f64 / 3600.0 / 16_000.0,
                        started.elapsed().as_secs_f64(),
                        mib(process_rss_bytes())
                    );
                    next_report += 3600 * u64::from(SAMPLE_RATE);
                }
                if at >= total {
                    break 'outer;
                }
            }
        }
        feeder_done.store(true, Ordering::SeqCst);
    });
    let mut turns = 0usize;
    let result = loop {
        let event = match events.recv_timeout(Duration::from_secs(5)) {
            Ok(event) => event,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => bail!("the engine stopped"),
        };
        if event.job() != Some(job) {
            continue;
        }
        match event {
            Event::LiveTurn { turn, .. } if turn.closed => turns += 1,
            Event::Done { result, .. } => break result,
            Event::Failed { error, .. } => bail!("live session failed: {}", error.message),
            _ => {}
        }
    };
    let _ = feeder.join();
    println!(
        "  end: RSS {} (peak {})",
        mib(process_rss_bytes()),
        mib(diarist::runtime::peak_rss_bytes())
    );
    Ok(Figures {
        audio_s: result.duration_s,
        wall_s: started.elapsed().as_secs_f64(),
        cpu_s: cpu_start.and_then(|c0| cpu_seconds().map(|c1| c1 - c0)),
        latencies: Vec::new(),
        speakers: result.num_speakers(),
        turns,
    })
}

fn report(f: &Figures) {
    println!(
        "audio {:.1} s in {:.1} s wall ({:.2}× real time); {} speakers, {} turns",
        f.audio_s,
        f.wall_s,
        f.audio_s / f.wall_s.max(1e-9),
        f.speakers,
        f.turns
    );
    if let Some(cpu) = f.cpu_s {
        println!(
            "CPU: {:.1} s of CPU time = {:.0} % of one core over the wall time ({:.0} % per second of audio)",
            cpu,
            100.0 * cpu / f.wall_s.max(1e-9),
            100.0 * cpu / f.audio_s.max(1e-9)
        );
    }
    if !f.latencies.is_empty() {
        let mut l = f.latencies.clone();
        l.sort_by(f64::total_cmp);
        let q = |p: f64| l[((l.len() - 1) as f64 * p).round() as usize];
        println!(
            "label latency after speech: p50 {:.2} s, p95 {:.2} s, max {:.2} s ({} samples of 100 ms)",
            q(0.5),
            q(0.95),
            q(1.0),
            l.len()
        );
    }
}

/// CPU time (user + system) of this process so far, in seconds.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // USER_HZ is 100 on every Linux this runs on.
    Some((utime + stime) / 100.0)
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("n/a".into(), |b| {
        format!("{:.1} MiB", b as f64 / 1024.0 / 1024.0)
    })
}
