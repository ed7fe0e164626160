//! `diarist record`: the microphone to a crash-safe WAV, live speaker turns
//! on stdout while recording, and on Ctrl-C or at `--duration` the final
//! offline pass, whose speakers inherit the live ones' names.
//!
//! `diarist recover [DIR] [--apply]` lists, then repairs, recordings a crash left unfinished.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use diarist::Diarization;
use diarist::audio::capture::list_input_devices;
use diarist::export::{self, Format, SpeakerNames};
use diarist::pipeline::Pipeline;
use diarist::record::{self, Ended, Recorder, RecorderConfig};
use diarist::runtime::{
    DevicePreference, Engine, EngineConfig, Event, JobId, JobSpec, LiveSession, LiveSpec,
};

use super::parse_device;

/// Where recordings go when `--out` is not given.
const DEFAULT_DIR: &str = "recordings";

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// The WAV file to record to (must not exist); default:
    /// recordings/<date-time>.wav. Exports are written next to it.
    #[arg(long, short, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Stop by itself after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,
    /// Input device: an id from --list-devices (e.g. alsa:default) or part
    /// of its name; default: the system's default microphone.
    #[arg(long, value_name = "NAME")]
    device: Option<String>,
    /// Formats of the final result: rttm, json, csv, srt, vtt, audacity.
    #[arg(long, short, value_delimiter = ',', default_value = "rttm")]
    format: Vec<Format>,
    /// List the input devices and exit.
    #[arg(long)]
    list_devices: bool,
    /// Name a live speaker, e.g. --name SPEAKER_00=Alice (repeatable); the
    /// name follows that voice into the final result.
    #[arg(long = "name", value_name = "LABEL=NAME")]
    names: Vec<String>,
    /// No live labels: only record, then run the final pass.
    #[arg(long)]
    no_live: bool,
    /// Where to run the networks: auto, cpu, cuda or metal.
    #[arg(long, default_value = "auto", value_parser = parse_device)]
    backend: DevicePreference,
    /// Folder holding the model weights (default: the bundled models/).
    #[arg(long, value_name = "DIR")]
    models: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// Folder of recordings to check.
    #[arg(default_value = DEFAULT_DIR)]
    dir: PathBuf,
    /// Repair what was found; without it, only list what would be done.
    #[arg(long)]
    apply: bool,
}

pub fn recover(args: RecoverArgs) -> anyhow::Result<ExitCode> {
    let report = if args.apply {
        record::recover(&args.dir)?
    } else {
        record::plan_recovery(&args.dir)?
    };
    let verb = if args.apply {
        "recovered"
    } else {
        "would recover"
    };
    for r in &report.recovered {
        println!(
            "{verb} {} ({:.1} s of audio, {} bytes past the old header)",
            r.path.display(),
            r.duration_s,
            r.bytes_recovered
        );
    }
    if !args.apply && !report.recovered.is_empty() {
        eprintln!("run `diarist recover --apply` to repair these files");
    }
    for (path, reason) in &report.failed {
        eprintln!("cannot recover {}: {reason}", path.display());
    }
    if report.recovered.is_empty() && report.failed.is_empty() {
        eprintln!("nothing to recover in {}", args.dir.display());
    }
    Ok(if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub fn run(args: RecordArgs) -> anyhow::Result<ExitCode> {
    if args.list_devices {
        for d in list_input_devices()? {
            let mark = if d.is_default { " (default)" } else { "" };
            println!("{}\t{}{mark}", d.id, d.name);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let live_names = parse_names(&args.names)?;
    let path = match &args.out {
        Some(path) => path.clone(),
        None => record::new_recording_path(std::path::Path::new(DEFAULT_DIR)),
    };
    if path.exists() {
        bail!(
            "{} already exists; recordings are never overwritten",
            path.display()
        );
    }

    // Ctrl-C once: stop and finish. Twice: leave at once (the WAV on disk
    // is valid up to its last commit; `diarist recover` tidies it).
    let presses = Arc::new(AtomicUsize::new(0));
    let handler_presses = Arc::clone(&presses);
    ctrlc::set_handler(move || {
        if handler_presses.fetch_add(1, Ordering::SeqCst) >= 1 {
            std::process::exit(130);
        }
    })
    .context("cannot install the Ctrl-C handler")?;

    let mut config = EngineConfig::new(
        args.models
            .clone()
            .unwrap_or_else(diarist::models::weights::default_models_dir),
    );
    config.device = args.backend;
    let engine = Engine::start::<Pipeline>(config)?;
    let events = engine.subscribe_jobs();
    let live: Option<LiveSession> = if args.no_live {
        None
    } else {
        Some(engine.start_live(LiveSpec::new(&path))?)
    };
    let live_job = live.as_ref().map(LiveSession::job);
    let on_audio: Option<record::AudioSink> = live.map(|session| {
        Box::new(move |start: u64, samples: &[f32]| {
            // Behind: the live labels skip this chunk, the WAV does not.
            session.try_push(start, samples.to_vec());
        }) as record::AudioSink
    });

    let recorder = Recorder::start(RecorderConfig {
        path: path.clone(),
        input: record::microphone(args.device.clone()),
        max_duration_s: args.duration,
        on_audio,
    })?;
    eprintln!(
        "diarist: recording to {} from {} on {}; Ctrl-C to stop",
        path.display(),
        recorder.device(),
        engine.status().backend.as_str()
    );

    let mut live_result: Option<Diarization> = None;
    while presses.load(Ordering::SeqCst) == 0 && !recorder.is_finished() {
        drain_live(
            &events,
            live_job,
            Duration::from_millis(100),
            &mut live_result,
        );
    }
    let summary = recorder.stop()?;
    match &summary.ended {
        Ended::Stopped | Ended::Duration => {}
        Ended::DeviceLost(message) => eprintln!("diarist: input lost: {message}"),
        Ended::Failed(message) => eprintln!("diarist: recording failed: {message}"),
    }
    eprintln!(
        "diarist: recorded {:.1} s to {}",
        summary.duration_s,
        summary.path.display()
    );
    if summary.dropped_samples > 0 {
        eprintln!(
            "diarist: warning: {} samples were lost (the disk or CPU fell behind)",
            summary.dropped_samples
        );
    }
    // The recorder's end closed the live feed: wait for the live result.
    while live_job.is_some() && live_result.is_none() {
        if !drain_live(&events, live_job, Duration::from_secs(1), &mut live_result) {
            break;
        }
    }

    if summary.duration_s <= 0.0 {
        bail!("nothing was recorded");
    }
    eprintln!("diarist: final pass over the whole recording...");
    let job = engine.submit(JobSpec::new(&summary.path))?;
    let final_result = wait_done(&events, job)?;
    let mapping = match &live_result {
        Some(live) => record::map_live_to_final(live, &final_result, &live_names),
        None => Default::default(),
    };
    for (live_label, final_label) in &mapping.live_to_final {
        eprintln!(
            "diarist: live {live_label} → final {final_label}{}",
            match mapping.names.display(final_label) {
                name if name != final_label => format!(" ({name})"),
                _ => String::new(),
            }
        );
    }
    let out_dir = summary
        .path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let written = export::write_all(&final_result, &args.format, &out_dir, &mapping.names)?;
    for file in &written {
        eprintln!("diarist: wrote {}", file.display());
    }
    eprintln!(
        "diarist: {} speakers live, {} final, {} turns",
        live_result.as_ref().map_or(0, Diarization::num_speakers),
        final_result.num_speakers(),
        final_result.turns.len()
    );
    engine.shutdown();
    Ok(match summary.ended {
        Ended::Failed(_) => ExitCode::FAILURE,
        _ => ExitCode::SUCCESS,
    })
}

/// Prints the live turns that closed; keeps the live result when it comes.
/// Returns false when the engine is gone.
fn drain_live(
    events: &Receiver<Event>,
    live_job: Option<JobId>,
    wait: Duration,
    live_result: &mut Option<Diarization>,
) -> bool {
    let event = match events.recv_timeout(wait) {
        Ok(event) => event,
        Err(RecvTimeoutError::Timeout) => return true,
        Err(RecvTimeoutError::Disconnected) => return false,
    };
    if event.job() != live_job || live_job.is_none() {
        return true;
    }
    match event {
        Event::LiveTurn { turn, .. } if turn.closed => {
            println!(
                "{} – {}  {}",
                clock(turn.start_s),
                clock(turn.end_s),
                turn.speaker
            );
        }
        Event::Done { result, .. } => *live_result = Some(*result),
        Event::Failed { error, .. } => {
            eprintln!("diarist: live labels stopped: {}", error.message);
            return false;
        }
        Event::Cancelled { .. } => return false,
        _ => {}
    }
    true
}

fn wait_done(events: &Receiver<Event>, job: JobId) -> anyhow::Result<Diarization> {
    loop {
        let event = events.recv().context("the engine stopped unexpectedly")?;
        if event.job() != Some(job) {
            continue;
        }
        match event {
            Event::Done { result, .. } => return Ok(*result),
            Event::Failed { error, .. } => bail!("final pass failed: {}", error.message),
            Event::Cancelled { .. } => bail!("final pass cancelled"),
            Event::Fallback { from, reason, .. } => {
                eprintln!(
                    "diarist: {} failed ({reason}); re-running on the CPU",
                    from.as_str()
                )
            }
            _ => {}
        }
    }
}

/// `LABEL=NAME` pairs.
fn parse_names(pairs: &[String]) -> anyhow::Result<SpeakerNames> {
    let mut names = SpeakerNames::new();
    for pair in pairs {
        let Some((label, name)) = pair.split_once('=') else {
            bail!("--name takes LABEL=NAME, got {pair:?}");
        };
        names.insert(label.trim(), name.trim());
    }
    Ok(names)
}

/// `mm:ss.s`, or `h:mm:ss.s` past an hour.
fn clock(s: f64) -> String {
    let tenths = (s.max(0.0) * 10.0).round() as u64;
    let (h, m, sec) = (tenths / 36_000, tenths / 600 % 60, tenths % 600);
    if h > 0 {
        format!("{h}:{m:02}:{:02}.{}", sec / 10, sec % 10)
    } else {
        format!("{m:02}:{:02}.{}", sec / 10, sec % 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_and_names() {
        assert_eq!(clock(0.0), "00:00.0");
        assert_eq!(clock(75.25), "01:15.3");
        assert_eq!(clock(3_725.0), "1:02:05.0");
        let n = parse_names(&["SPEAKER_00=Alice".into()]).unwrap();
        assert_eq!(n.display("SPEAKER_00"), "Alice");
        assert!(parse_names(&["oops".into()]).is_err());
    }
}
