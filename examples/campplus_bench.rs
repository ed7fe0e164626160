//! CAM++ speed on the CPU: fbank and forward on 10 s of `samples/sample.wav`
//! at batch 1 and 8, the embedding throughput (seconds of audio per second),
//! and where the forward's time goes, stage by stage.
//!
//! `RAYON_NUM_THREADS=2 cargo run --release --example campplus_bench [reps] [wav]`
//! (the weights come from `default_models_dir()`, so `DIARIST_MODELS` applies).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use diarist::models::campplus::{CamPlus, SAMPLE_RATE_HZ, Stage};
use diarist::models::fbank::{KaldiFbank, N_MELS, subtract_time_mean};
use diarist::models::weights::default_models_dir;

const CLIP_S: usize = 10;

fn main() -> Result<()> {
    let reps: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(5)
        .max(1);
    let wav_path = std::env::args().nth(2).map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/sample.wav"),
        PathBuf::from,
    );
    let wav = read_wav(&wav_path)?;
    let clip_len = CLIP_S * SAMPLE_RATE_HZ as usize;
    anyhow::ensure!(
        wav.len() >= clip_len,
        "sample.wav is shorter than {CLIP_S} s"
    );
    let clip = &wav[..clip_len];
    let device = Device::Cpu;
    let model = CamPlus::load(&default_models_dir(), &device)?;
    println!("threads: {}", candle_core::utils::get_num_threads());

    let fbank = KaldiFbank::default();
    let started = Instant::now();
    let mut features = Vec::new();
    for _ in 0..reps {
        features = fbank.compute(clip);
        subtract_time_mean(&mut features, N_MELS);
    }
    let fbank_s = started.elapsed().as_secs_f64() / reps as f64;
    let frames = features.len() / N_MELS;
    println!(
        "fbank + CMN, {CLIP_S} s ({frames} frames): {:.2} ms ({:.0}x real time)",
        fbank_s * 1e3,
        CLIP_S as f64 / fbank_s
    );

    for batch in [1usize, 8] {
        let mut stacked = Vec::with_capacity(batch * features.len());
        for _ in 0..batch {
            stacked.extend_from_slice(&features);
        }
        let input = Tensor::from_vec(stacked, (batch, frames, N_MELS), &device)?;
        model.forward(&input)?; // warm-up
        // On a shared machine the fastest call is the steadiest figure.
        let mut calls = Vec::with_capacity(reps);
        for _ in 0..reps {
            let started = Instant::now();
            model.forward(&input)?;
            calls.push(started.elapsed().as_secs_f64());
        }
        calls.sort_by(f64::total_cmp);
        let (best, median) = (calls[0], calls[calls.len() / 2]);
        println!(
            "forward batch {batch}: best {:7.1} ms, median {:7.1} ms per call; \
             {:6.1} s of audio per second (best), {:6.1} (median)",
            best * 1e3,
            median * 1e3,
            (batch * CLIP_S) as f64 / best,
            (batch * CLIP_S) as f64 / median
        );
        profile(&model, &input, reps)?;
    }
    Ok(())
}

/// Mean time of every stage of `frame_features`, and of the pooling
/// (CPU: every op has finished when the next stage starts).
fn profile(model: &CamPlus, input: &Tensor, reps: usize) -> Result<()> {
    let mut totals: Vec<(String, Duration)> = Vec::new();
    for _ in 0..reps {
        let mut last = Instant::now();
        let mut i = 0;
        let features = model.frame_features_traced(input, |stage, _| {
            let now = Instant::now();
            let name = stage_name(stage);
            match totals.get_mut(i) {
                Some((_, total)) => *total += now - last,
                None => totals.push((name, now - last)),
            }
            i += 1;
            last = now;
            Ok(())
        })?;
        let (b, _, t) = features.dims3()?;
        let weights = Tensor::ones((b, t), features.dtype(), features.device())?;
        model.pool(&features, &weights)?;
        match totals.get_mut(i) {
            Some((_, total)) => *total += last.elapsed(),
            None => totals.push(("stats + dense".into(), last.elapsed())),
        }
    }
    let sum: Duration = totals.iter().map(|(_, d)| *d).sum();
    for (name, total) in &totals {
        println!(
            "    {name:<14} {:7.2} ms  {:5.1} %",
            total.as_secs_f64() * 1e3 / reps as f64,
            100.0 * total.as_secs_f64() / sum.as_secs_f64()
        );
    }
    Ok(())
}

fn stage_name(stage: Stage) -> String {
    match stage {
        Stage::Head => "FCM head".into(),
        Stage::Tdnn => "TDNN".into(),
        Stage::Block(i) => format!("block{i}"),
        Stage::Transit(i) => format!("transit{i}"),
        Stage::Output => "out BN+ReLU".into(),
    }
}

/// A 16 kHz mono PCM16 file as float32 in [-1, 1].
fn read_wav(path: &Path) -> Result<Vec<f32>> {
    let mut reader = hound::WavReader::open(path).with_context(|| path.display().to_string())?;
    let spec = reader.spec();
    anyhow::ensure!(
        spec.sample_rate == SAMPLE_RATE_HZ && spec.channels == 1,
        "{}: need 16 kHz mono",
        path.display()
    );
    reader
        .samples::<i16>()
        .map(|s| Ok(f32::from(s?) / 32768.0))
        .collect()
}
