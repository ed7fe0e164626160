//! `diarist bench`: speed and memory, printed as figures (never asserted).
//!
//! Without `--networks` it builds an N-minute multi-speaker recording from
//! the dev-set files (or the bundled sample), runs the whole pipeline through
//! the engine and reports the real-time factor, per-stage times and peak RSS;
//! `--jobs K` repeats the job and prints memory after each run.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use diarist::bench::embedding::embedding_throughput;
use diarist::bench::segmentation::{segmentation_stage_times, segmentation_throughput};
use diarist::models::embedding::SpeakerEncoder;
use diarist::models::mel::MelFrontend;
use diarist::models::segmentation::{Segmentation, SegmentationModel};
use diarist::pipeline::encoder::Encoder;
use diarist::pipeline::{Pipeline, PipelineParams};
use diarist::runtime::{
    Backend, Engine, Event, GpuMemory, JobSpec, device::choose_gpu, peak_rss_bytes,
    process_rss_bytes,
};
use diarist::{DiarizeOptions, ModelChoice};

use super::EngineArgs;

/// PyTorch 2.8 on this machine type (2 vCPU, REFERENCE.md "Speed").
const TORCH_MS_PER_WINDOW: f64 = 7.7;
const TORCH_MS_PER_EMBEDDING: f64 = 9.3;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Measure the two networks alone at batch sizes 1, 8 and 32.
    #[arg(long)]
    networks: bool,
    /// Length of the generated recording, in minutes.
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    /// Folder of WAV recordings to build it from (e.g. the dev set);
    /// default: the bundled sample.
    #[arg(long, value_name = "DIR")]
    dev_set: Option<PathBuf>,
    /// Run the job this many times, printing memory after each.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Compare the networks' outputs on the chosen GPU with the CPU's on the
    /// bundled sample (max absolute difference).
    #[arg(long)]
    parity: bool,
    /// Real out-of-memory check on a GPU, coordinated through files in DIR
    /// with a separate process that fills the card (scripts/gpu-check.sh).
    #[arg(long, value_name = "DIR")]
    oom_check: Option<PathBuf>,
    /// Feed this file through the live path in real time and
    /// report label latency and CPU use.
    #[arg(long, value_name = "FILE")]
    live: Option<PathBuf>,
    /// With --live: loop the file up to this many hours of audio, fed as
    /// fast as the engine takes it, and report memory every hour of audio.
    #[arg(long, value_name = "HOURS", requires = "live")]
    live_hours: Option<f64>,
    /// Seconds each network measurement lasts.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// The networks, as SEG+ENC (see `diarist diarize --help`).
    #[arg(long, value_name = "SEG+ENC", value_parser = super::parse_models, default_value_t)]
    models: ModelChoice,
    #[command(flatten)]
    engine: EngineArgs,
}

pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    if let Some(file) = &args.live {
        super::live_bench::run(file, args.live_hours, &args.engine)?;
    } else if args.parity {
        parity(&args)?;
    } else if let Some(dir) = &args.oom_check {
        oom_check(&args, dir)?;
    } else if args.networks {
        networks(&args)?;
    } else {
        pipeline(&args)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The device `--device` names, or the CPU, with the reason.
fn open_device(args: &BenchArgs) -> anyhow::Result<(Backend, candle_core::Device, String)> {
    let pref = args.engine.device.with_env_override()?;
    let choice = choose_gpu(pref, false);
    let (backend, device) = choice
        .gpu
        .unwrap_or((Backend::Cpu, candle_core::Device::Cpu));
    Ok((backend, device, choice.reason))
}

fn networks(args: &BenchArgs) -> anyhow::Result<()> {
    let (backend, device, reason) = open_device(args)?;
    println!(
        "networks on {backend} ({reason}; CPU kernel: {}), {} s per figure",
        diarist::kernels::cpu_kernel(),
        args.seconds
    );
    let dir = args.engine.models_dir();
    let segmentation = Segmentation::load(args.models.segmentation, &dir, &device)?;
    let encoder = SpeakerEncoder::load(&dir, &device)?;
    let mel = MelFrontend::new();
    let window_s = segmentation.geometry().window_s();
    println!();
    // A GPU is measured at the batch sizes the pipeline uses as well, with
    // the share of the time the host spent issuing work (the rest it waited).
    let (batches, host_column): (&[usize], bool) = if device.is_cpu() {
        (&[1, 8, 32], false)
    } else {
        (&[1, 8, 32, 256], true)
    };
    // The PyTorch baseline was measured on 2022.07's 5 s windows only.
    let torch_ms = (args.models.segmentation == SegmentationModel::Pyannote2022)
        .then_some(TORCH_MS_PER_WINDOW);
    println!(
        "segmentation {} ({window_s} s windows)   windows/s   ms/window   PyTorch ms/window   speed-up{}",
        args.models.segmentation.name(),
        if host_column { "   host issuing" } else { "" }
    );
    for &batch in batches {
        let t = segmentation_throughput(&segmentation, &device, batch, args.seconds)?;
        let ms = 1000.0 / t.windows_per_s;
        let (torch, speed_up) = match torch_ms {
            Some(torch) => (format!("{torch:.1}"), format!("{:.2}×", torch / ms)),
            None => ("n/a".into(), "n/a".into()),
        };
        print!(
            "  batch {batch:>3}                  {:>9.1}   {ms:>9.2}   {torch:>17}   {speed_up:>8}",
            t.windows_per_s,
        );
        if host_column {
            print!("   {:>11.0} %", 100.0 * t.host_share);
        }
        println!();
    }
    if host_column {
        let batch = 256;
        println!(
            "  where a batch of {batch} windows of one signal spends its time (device synchronised after each stage):"
        );
        let step_s = PipelineParams::tuned(args.models).step_s;
        let step = (step_s * diarist::audio::SAMPLE_RATE as f64).round() as usize;
        for (stage, seconds) in segmentation_stage_times(&segmentation, &device, batch, step, 3)? {
            println!("    {stage:<32} {:>8.2} ms", 1000.0 * seconds);
        }
    }
    println!();
    println!(
        "GE2E (5 s utterances, 5 partials)  emb/s   ms/emb   ms/partial (net)   PyTorch ms/emb   speed-up"
    );
    for &batch in batches {
        let b = embedding_throughput(&encoder, &mel, &device, batch, args.seconds)?;
        println!(
            "  batch {batch:>3}                  {:>9.1}  {:>7.2}   {:>7.2} ({:>5.2})   {TORCH_MS_PER_EMBEDDING:>14.1}   {:>7.2}×",
            b.embeddings_per_s,
            b.ms_per_embedding,
            b.ms_per_partial,
            b.ms_per_partial_model,
            TORCH_MS_PER_EMBEDDING / b.ms_per_embedding
        );
    }
    Ok(())
}

fn pipeline(args: &BenchArgs) -> anyhow::Result<()> {
    let sources = match &args.dev_set {
        Some(dir) => wavs_in(dir)?,
        None => vec![bundled_sample()],
    };
    let dir = tempfile::tempdir()?;
    let path = dir.path().join(format!("bench-{}min.wav", args.minutes));
    let seconds = build_recording(&sources, args.minutes, &path)?;
    println!(
        "recording: {:.1} min built from {} file(s), rss before the engine: {}",
        seconds / 60.0,
        sources.len(),
        mib(process_rss_bytes())
    );

    let engine = Engine::start::<Pipeline>(args.engine.config())?;
    let events = engine.subscribe();
    let status = engine.status();
    println!(
        "backend: {} ({}); CPU kernel: {}",
        status.backend,
        status.reason,
        diarist::kernels::cpu_kernel()
    );
    let mut gpu: Option<GpuMemory> = None;
    for run in 1..=args.jobs.max(1) {
        let started = Instant::now();
        engine.submit(bench_job(&path, args))?;
        let result = loop {
            match events.recv().context("the engine stopped")? {
                Event::Done {
                    result,
                    backend,
                    fallback,
                    ..
                } => break (result, backend, fallback),
                Event::Failed { error, .. } => anyhow::bail!("{}", error.message),
                Event::Stats(s) => gpu = s.gpu.or(gpu),
                _ => {}
            }
        };
        let wall = started.elapsed().as_secs_f64();
        let (d, backend, fallback) = result;
        // Let the engine go idle and refresh its GPU snapshot.
        let settle = Instant::now() + Duration::from_millis(1500);
        while let Ok(event) = events.recv_deadline(settle) {
            if let Event::Stats(s) = event {
                gpu = s.gpu.or(gpu);
            }
        }
        if run == 1 {
            let t = &d.timings;
            println!(
                "speakers {}, turns {}, audio {:.1} s, wall {:.2} s: {:.1}× real time (RTF {:.4}) on {backend}{}",
                d.num_speakers(),
                d.turns.len(),
                d.duration_s,
                wall,
                d.duration_s / wall,
                wall / d.duration_s,
                fallback
                    .map(|f| format!(" after fallback from {} ({})", f.from, f.reason))
                    .unwrap_or_default()
            );
            println!(
                "stages: decode {:.2} s, mel {:.2} s, segmentation {:.2} s, embedding {:.2} s, clustering {:.2} s, reconstruction {:.2} s",
                t.decode_s,
                t.features_s,
                t.segmentation_s,
                t.embedding_s,
                t.clustering_s,
                t.reconstruction_s
            );
        }
        println!(
            "job {run:>3}: wall {wall:>7.2} s   rss {:>9}   peak rss {:>9}   gpu {}",
            mib(process_rss_bytes()),
            mib(peak_rss_bytes()),
            gpu.map(|g| format!("{} / {}", mib(Some(g.used_bytes)), mib(Some(g.total_bytes))))
                .unwrap_or_else(|| "n/a".into())
        );
    }
    engine.shutdown();
    Ok(())
}

fn parity(args: &BenchArgs) -> anyhow::Result<()> {
    let (backend, device, reason) = open_device(args)?;
    println!("parity: {backend} ({reason}) against the CPU");
    let dir = args.engine.models_dir();
    let samples = diarist::audio::decode_file(&bundled_sample())?;
    let model = args.models.segmentation;
    let geo = model.geometry();
    // Every 0.5 s window of the sample, as pyannote cuts them; the networks
    // take them as one signal, the way the pipeline runs them.
    let step = diarist::audio::SAMPLE_RATE as usize / 2;
    let n = (samples.len() - geo.window_samples) / step + 1;
    // The chosen encoder's 1.6 s partials every 0.8 s, from its own frames.
    const PARTIAL: usize = 160;
    let mut outputs = Vec::new();
    let mut m = 0;
    for device in [candle_core::Device::Cpu, device] {
        let seg = Segmentation::load(model, &dir, &device)?;
        let enc = Encoder::load(args.models.embedding, &dir, &device)?;
        let width = enc.frame_width();
        let mut frames = Vec::new();
        let count = enc.frames_from_padded(&samples, &mut frames);
        let partials: Vec<f32> = (0..(count - PARTIAL) / 80 + 1)
            .flat_map(|p| {
                frames[p * 80 * width..(p * 80 + PARTIAL) * width]
                    .iter()
                    .copied()
            })
            .collect();
        m = partials.len() / (PARTIAL * width);
        let signal = candle_core::Tensor::from_slice(&samples, samples.len(), &device)?;
        let scores = seg
            .forward_windows(&signal, step)?
            .flatten_all()?
            .to_device(&candle_core::Device::Cpu)?
            .to_vec1::<f32>()?;
        let embeddings = enc
            .encode(&partials, PARTIAL, &device)?
            .flatten_all()?
            .to_device(&candle_core::Device::Cpu)?
            .to_vec1::<f32>()?;
        outputs.push((scores, embeddings));
    }
    let (cpu, other) = (&outputs[0], &outputs[1]);
    let classes = model.config().num_classes();
    println!(
        "segmentation {}: {n} windows, |cpu - {backend}| {}",
        model.name(),
        DiffStats::of(&cpu.0, &other.0, geo.frames_per_window * classes)
    );
    println!(
        "embedding {}: {m} partials, |cpu - {backend}| {}",
        args.models.embedding.name(),
        DiffStats::of(&cpu.1, &other.1, args.models.embedding.embedding_dim())
    );
    Ok(())
}

/// How far two runs of a network are apart: the largest difference (and
/// the item it is in), the 99th percentile, the mean, and how many values
/// differ by more than 1e-3.
struct DiffStats {
    max: f32,
    max_item: usize,
    p99: f32,
    mean: f32,
    over_1e3: usize,
    count: usize,
}

impl DiffStats {
    fn of(a: &[f32], b: &[f32], per_item: usize) -> Self {
        let mut diffs: Vec<f32> = a.iter().zip(b).map(|(x, y)| (x - y).abs()).collect();
        let (max_at, max) = diffs
            .iter()
            .copied()
            .enumerate()
            .fold(
                (0, 0f32),
                |best, (i, d)| if d > best.1 { (i, d) } else { best },
            );
        let count = diffs.len();
        let mean = diffs.iter().map(|&d| f64::from(d)).sum::<f64>() / count.max(1) as f64;
        let over_1e3 = diffs.iter().filter(|&&d| d > 1e-3).count();
        diffs.sort_by(f32::total_cmp);
        let p99 = diffs.get(count * 99 / 100).copied().unwrap_or(0.0);
        Self {
            max,
            max_item: max_at / per_item.max(1),
            p99,
            mean: mean as f32,
            over_1e3,
            count,
        }
    }
}

impl std::fmt::Display for DiffStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "max {:.2e} (item {}), p99 {:.2e}, mean {:.2e}, {} of {} values over 1e-3",
            self.max, self.max_item, self.p99, self.mean, self.over_1e3, self.count
        )
    }
}

/// Job 1 runs while another process fills the GPU and must fall back to the
/// CPU; once that process lets go, safe mode is turned off and job 2 must
/// run on the GPU again. Files in `dir` sequence the two processes.
fn oom_check(args: &BenchArgs, dir: &Path) -> anyhow::Result<()> {
    let wait_for = |name: &str| -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(300);
        while !dir.join(name).exists() {
            if Instant::now() > deadline {
                anyhow::bail!("timed out waiting for {}", dir.join(name).display());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    };
    let recording = tempfile::tempdir()?;
    let path = recording.path().join("oom.wav");
    build_recording(&[bundled_sample()], 5.0, &path)?;
    let engine = Engine::start::<Pipeline>(args.engine.config())?;
    let events = engine.subscribe_jobs();
    println!(
        "engine on {} ({})",
        engine.status().backend,
        engine.status().reason
    );
    std::fs::write(dir.join("engine-ready"), b"")?;
    wait_for("ballast-ready")?;
    let run_job = |label: &str| -> anyhow::Result<()> {
        engine.submit(bench_job(&path, args))?;
        loop {
            match events.recv()? {
                Event::Fallback { from, reason, .. } => {
                    println!("{label}: fallback event from {from}: {reason}")
                }
                Event::BackendChanged {
                    backend,
                    reason,
                    safe_mode,
                } => {
                    println!("{label}: backend now {backend} (safe mode {safe_mode}): {reason}")
                }
                Event::Done {
                    result,
                    backend,
                    fallback,
                    wall_s,
                    ..
                } => {
                    println!(
                        "{label}: done on {backend} in {wall_s:.2} s, {} speakers, fallback: {}",
                        result.num_speakers(),
                        fallback
                            .map(|f| format!("from {} ({})", f.from, f.reason))
                            .unwrap_or_else(|| "none".into())
                    );
                    return Ok(());
                }
                Event::Failed { error, .. } => anyhow::bail!("{label} failed: {}", error.message),
                _ => {}
            }
        }
    };
    run_job("job 1 (GPU full)")?;
    std::fs::write(dir.join("release"), b"")?;
    wait_for("released")?;
    engine.set_safe_mode(false)?;
    run_job("job 2 (GPU free, safe mode off)")?;
    println!("final backend: {}", engine.status().backend);
    engine.shutdown();
    Ok(())
}

fn bundled_sample() -> PathBuf {
    diarist::models::weights::default_models_dir().join("../samples/sample.wav")
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or_else(
        || "n/a".into(),
        |b| format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
    )
}

fn wavs_in(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut wavs: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("wav")))
        .collect();
    wavs.sort();
    if wavs.is_empty() {
        anyhow::bail!("{} holds no .wav files", dir.display());
    }
    Ok(wavs)
}

/// Concatenates the sources (in name order, repeated) into a 16 kHz mono
/// 16-bit WAV of `minutes`; deterministic for the same folder. Returns the
/// length in seconds.
fn build_recording(sources: &[PathBuf], minutes: f64, out: &Path) -> anyhow::Result<f64> {
    let target = (minutes * 60.0 * 16_000.0).round() as usize;
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(out, spec)?;
    let mut written = 0usize;
    'outer: loop {
        for source in sources {
            let samples = diarist::audio::decode_file(source)?;
            if samples.is_empty() {
                continue;
            }
            for s in samples {
                if written == target {
                    break 'outer;
                }
                writer.write_sample((s.clamp(-1.0, 1.0) * 32767.0) as i16)?;
                written += 1;
            }
        }
        if written == 0 {
            anyhow::bail!("the source recordings are empty");
        }
    }
    writer.finalize()?;
    Ok(written as f64 / 16_000.0)
}

/// The job each bench run submits: `path` with the chosen networks.
fn bench_job(path: &std::path::Path, args: &BenchArgs) -> JobSpec {
    JobSpec {
        path: path.to_path_buf(),
        options: DiarizeOptions {
            models: Some(args.models),
            ..DiarizeOptions::default()
        },
    }
}
