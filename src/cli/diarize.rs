//! `diarist diarize`: every file goes through one engine, in order.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use diarist::export::{self, Format, SpeakerNames};
use diarist::pipeline::Pipeline;
use diarist::runtime::{Engine, Event, JobId, JobLog, JobRecord, JobSpec};
use diarist::{DiarizeOptions, SpeakerCount};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::EngineArgs;
use super::inputs;

#[derive(Debug, Args)]
pub struct DiarizeArgs {
    /// Audio files, or folders of audio files.
    #[arg(required = true, value_name = "FILES|DIRS")]
    inputs: Vec<PathBuf>,
    /// Write results into this folder as <name>.<format>; without it, RTTM
    /// goes to standard output.
    #[arg(long, short, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Formats to write with --out: rttm, json, csv, srt, vtt, audacity.
    #[arg(long, short, value_delimiter = ',', default_value = "rttm")]
    format: Vec<Format>,
    /// Exact number of speakers.
    #[arg(long, short = 'n', conflicts_with_all = ["min_speakers", "max_speakers"])]
    num_speakers: Option<usize>,
    /// At least this many speakers.
    #[arg(long)]
    min_speakers: Option<usize>,
    /// At most this many speakers.
    #[arg(long)]
    max_speakers: Option<usize>,
    /// Seconds between consecutive analysis windows (smaller: slower,
    /// sometimes more precise).
    #[arg(long, value_name = "SECONDS")]
    step: Option<f64>,
    /// The networks, as SEG+ENC: SEG is 2022 (pyannote/segmentation
    /// 2022.07, 5 s windows) or 3.0 (pyannote/segmentation-3.0, 10 s
    /// windows); ENC is ge2e (Resemblyzer GE2E) or campplus (3D-Speaker
    /// CAM++: far better on real meetings, several times slower).
    /// Default: 2022+ge2e.
    #[arg(long, value_name = "SEG+ENC", value_parser = super::parse_models)]
    models: Option<diarist::ModelChoice>,
    /// Append one JSON line per job (file, duration, wall time, real-time
    /// factor, backend, fallback) to this file.
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    /// No progress bars.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    engine: EngineArgs,
}

pub fn run(args: DiarizeArgs) -> anyhow::Result<ExitCode> {
    let options = DiarizeOptions {
        speakers: SpeakerCount::from_flags(
            args.num_speakers,
            args.min_speakers,
            args.max_speakers,
        )?,
        step_s: args.step,
        models: args.models,
    };
    let files = inputs::expand(&args.inputs)?;
    if files.is_empty() {
        anyhow::bail!("no audio files to diarize");
    }
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    }
    let mut log = args.log.as_deref().map(JobLog::open).transpose()?;

    let mut config = args.engine.config();
    config.queue_capacity = files.len().max(1);
    let engine = Engine::start::<Pipeline>(config)?;
    let events = engine.subscribe_jobs();
    let status = engine.status();
    if !args.quiet {
        eprintln!(
            "diarist: running on {} ({})",
            status.backend.as_str(),
            status.reason
        );
    }

    let bars = MultiProgress::new();
    if args.quiet {
        bars.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let names = inputs::output_names(&files);
    if args.out.is_some() {
        for (file, name) in files.iter().zip(&names) {
            let stem = file.file_stem().map(|s| s.to_string_lossy());
            if stem.as_deref() != Some(name.as_str()) {
                eprintln!(
                    "note: another input shares the name of {}: its results are written as {name}.*",
                    file.display()
                );
            }
        }
    }
    let mut jobs: HashMap<JobId, (PathBuf, String, ProgressBar)> = HashMap::new();
    for (file, name) in files.iter().zip(names) {
        let spec = JobSpec {
            path: file.clone(),
            options: options.clone(),
        };
        let id = engine.submit(spec)?;
        let bar = bars.add(ProgressBar::new(1));
        bar.set_style(bar_style());
        bar.set_prefix(display_name(file));
        bar.set_message("queued");
        jobs.insert(id, (file.clone(), name, bar));
    }

    let mut failed = 0usize;
    let mut remaining = jobs.len();
    let stdout = std::io::stdout();
    while remaining > 0 {
        let event = events.recv().context("the engine stopped unexpectedly")?;
        let Some((file, name, bar)) = event.job().and_then(|id| jobs.get(&id)) else {
            if let Event::BackendChanged {
                backend, reason, ..
            } = &event
            {
                bars.suspend(|| eprintln!("diarist: now on {} ({reason})", backend.as_str()));
            }
            continue;
        };
        match event {
            Event::Started { .. } => bar.set_message("starting"),
            Event::Progress {
                stage, done, total, ..
            } => {
                bar.set_length(total.max(1) as u64);
                bar.set_position(done as u64);
                bar.set_message(stage.as_str());
            }
            Event::Fallback { from, reason, .. } => bars.suspend(|| {
                eprintln!(
                    "{}: {} failed ({reason}); re-running on the CPU",
                    file.display(),
                    from.as_str()
                )
            }),
            Event::Done {
                mut result,
                backend,
                fallback,
                wall_s,
                ..
            } => {
                remaining -= 1;
                bar.finish_and_clear();
                let speaker_names = SpeakerNames::new();
                let written: anyhow::Result<()> = match &args.out {
                    Some(out) => {
                        result.uri = name.clone();
                        export::write_all(&result, &args.format, out, &speaker_names)
                            .map(drop)
                            .map_err(Into::into)
                    }
                    None => {
                        let text = export::render(&result, Format::Rttm, &speaker_names);
                        stdout
                            .lock()
                            .write_all(text.as_bytes())
                            .context("cannot write to standard output")
                    }
                };
                // One file's failed export is that file's failure: the
                // others in the batch still run and are written.
                if let Err(e) = written {
                    failed += 1;
                    bars.suspend(|| eprintln!("error: {}: {e}", file.display()));
                    continue;
                }
                let rtf = if result.duration_s > 0.0 {
                    wall_s / result.duration_s
                } else {
                    0.0
                };
                bars.suspend(|| {
                    eprintln!(
                        "{}: {} speakers, {} turns, {:.1} s of audio in {:.2} s ({:.0}× real time, {})",
                        file.display(),
                        result.num_speakers(),
                        result.turns.len(),
                        result.duration_s,
                        wall_s,
                        if rtf > 0.0 { 1.0 / rtf } else { 0.0 },
                        backend.as_str(),
                    )
                });
                if let Some(log) = &mut log {
                    let record = JobRecord::new(file, &result, backend, fallback.as_ref(), wall_s);
                    if let Err(e) = log.append(&record) {
                        bars.suspend(|| {
                            eprintln!("warning: {}: job log not written: {e}", file.display())
                        });
                    }
                }
            }
            Event::Failed { error, .. } => {
                remaining -= 1;
                failed += 1;
                bar.finish_and_clear();
                bars.suspend(|| eprintln!("error: {}", error.message));
            }
            Event::Cancelled { .. } => {
                remaining -= 1;
                failed += 1;
                bar.finish_and_clear();
            }
            _ => {}
        }
    }
    engine.shutdown();
    if failed > 0 {
        eprintln!("{failed} of {} files failed", files.len());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:>20.bold} [{bar:30.cyan/blue}] {pos}/{len} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

fn display_name(path: &std::path::Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    if name.chars().count() > 20 {
        let tail: String = name
            .chars()
            .rev()
            .take(19)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("…{tail}")
    } else {
        name
    }
}
