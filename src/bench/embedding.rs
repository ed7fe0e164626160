//! Speaker-embedding throughput: 5 s utterances (5 GE2E partials each) run
//! through `SpeakerEncoder::embed_utterances`, `batch` utterances per call,
//! like resemblyzer's `embed_utterance` but with the partials of several
//! utterances sharing one forward pass.

use std::fmt;
use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};

use crate::models::embedding::{SpeakerEncoder, partial_slices};
use crate::models::mel::{MelFrontend, N_MELS, SAMPLE_RATE_HZ};

/// Length of each benchmark utterance (gives 5 partials, as in the PyTorch baseline).
pub const UTTERANCE_SECONDS: usize = 5;

/// What one benchmark run measured. Times are best-effort wall clock
/// averages over repeated calls after one warm-up call.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingBench {
    /// Utterances per call.
    pub batch: usize,
    pub partials_per_utterance: usize,
    /// Timed calls of the whole path (mel + network).
    pub calls: usize,
    /// Utterance embeddings per second, mel included.
    pub embeddings_per_s: f64,
    pub ms_per_embedding: f64,
    /// Mel included.
    pub ms_per_partial: f64,
    /// Network only, on mels already on the device (results read back).
    pub ms_per_partial_model: f64,
    /// The mel front end alone, per 5 s utterance (CPU).
    pub mel_ms_per_utterance: f64,
}

impl fmt::Display for EmbeddingBench {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "batch {:>3} × {} s: {:>7.1} embeddings/s, {:>6.2} ms/embedding, {:>6.3} ms/partial \
             ({:.3} ms network only), mel {:.3} ms/utterance, {} calls",
            self.batch,
            UTTERANCE_SECONDS,
            self.embeddings_per_s,
            self.ms_per_embedding,
            self.ms_per_partial,
            self.ms_per_partial_model,
            self.mel_ms_per_utterance,
            self.calls
        )
    }
}

/// Times `batch` 5 s utterances per call for at least `min_secs` per
/// measured path (whole path, network only, mel only).
pub fn embedding_throughput(
    enc: &SpeakerEncoder,
    mel: &MelFrontend,
    device: &Device,
    batch: usize,
    min_secs: f64,
) -> crate::Result<EmbeddingBench> {
    if batch == 0 {
        return Err(crate::Error::InvalidOption(
            "benchmark batch must be at least 1".into(),
        ));
    }
    if !(min_secs.is_finite() && min_secs >= 0.0) {
        return Err(crate::Error::InvalidOption(format!(
            "benchmark duration must be a non-negative number of seconds, got {min_secs}"
        )));
    }
    let min_time = Duration::from_secs_f64(min_secs);
    let utterances: Vec<Vec<f32>> = (0..batch).map(|i| synthetic_utterance(i as u64)).collect();
    let refs: Vec<&[f32]> = utterances.iter().map(Vec::as_slice).collect();
    let n_samples = UTTERANCE_SECONDS * SAMPLE_RATE_HZ as usize;
    let slices = partial_slices(n_samples, enc.config().partial_frames);
    let partials = batch * slices.len();

    // Whole path.
    enc.embed_utterances(mel, &refs)?;
    let (calls, elapsed) = repeat_for(min_time, || enc.embed_utterances(mel, &refs).map(drop))?;
    let per_call_ms = elapsed.as_secs_f64() * 1e3 / calls as f64;

    // Network only: the same partial mels, already on the device.
    let mut flat: Vec<f32> = Vec::with_capacity(partials * enc.config().partial_frames * N_MELS);
    for samples in &refs {
        let frames = mel.mel(samples);
        for slice in &slices {
            flat.extend(frames[slice.clone()].iter().flatten());
        }
    }
    let mels = Tensor::from_vec(
        flat,
        (partials, enc.config().partial_frames, N_MELS),
        device,
    )?;
    let forward = || -> crate::Result<()> {
        enc.forward(&mels)?.to_vec2::<f32>()?; // reading back waits for a GPU
        Ok(())
    };
    forward()?;
    let (model_calls, model_elapsed) = repeat_for(min_time, forward)?;
    let model_ms = model_elapsed.as_secs_f64() * 1e3 / model_calls as f64;

    // Mel only.
    let (mel_calls, mel_elapsed) = repeat_for(min_time, || {
        for samples in &refs {
            std::hint::black_box(mel.mel(samples));
        }
        Ok(())
    })?;
    let mel_ms = mel_elapsed.as_secs_f64() * 1e3 / mel_calls as f64;

    Ok(EmbeddingBench {
        batch,
        partials_per_utterance: slices.len(),
        calls,
        embeddings_per_s: batch as f64 * 1e3 / per_call_ms,
        ms_per_embedding: per_call_ms / batch as f64,
        ms_per_partial: per_call_ms / partials as f64,
        ms_per_partial_model: model_ms / partials as f64,
        mel_ms_per_utterance: mel_ms / batch as f64,
    })
}

/// Runs `f` until `min_time` has passed (at least twice); returns the call
/// count and the time they took.
fn repeat_for(
    min_time: Duration,
    mut f: impl FnMut() -> crate::Result<()>,
) -> crate::Result<(usize, Duration)> {
    let start = Instant::now();
    let mut calls = 0;
    while calls < 2 || start.elapsed() < min_time {
        f()?;
        calls += 1;
    }
    Ok((calls, start.elapsed()))
}

/// A deterministic 5 s voice-like signal: a few harmonics of a gliding
/// pitch plus low-level noise. Content does not change the cost; it only
/// keeps the ReLU outputs and the mel values in a realistic range.
fn synthetic_utterance(seed: u64) -> Vec<f32> {
    let n = UTTERANCE_SECONDS * SAMPLE_RATE_HZ as usize;
    let sr = f64::from(SAMPLE_RATE_HZ);
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let mut phase = 0.0f64;
    (0..n)
        .map(|i| {
            let t = i as f64 / sr;
            let pitch = 110.0 + (30.0 * seed as f64) % 90.0 + 20.0 * (2.0 * t).sin();
            phase += 2.0 * std::f64::consts::PI * pitch / sr;
            let voiced: f64 = (1..=5).map(|h| (h as f64 * phase).sin() / h as f64).sum();
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let noise = ((state >> 40) as f64 / (1u64 << 24) as f64) - 0.5;
            (0.2 * voiced * (0.5 + 0.5 * (3.0 * t).sin().abs()) + 0.01 * noise) as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_utterances_are_distinct_and_bounded() {
        let a = synthetic_utterance(0);
        let b = synthetic_utterance(1);
        assert_eq!(a.len(), 80_000);
        assert_ne!(a, b);
        assert!(a.iter().all(|x| x.abs() < 1.0));
        assert_eq!(a, synthetic_utterance(0));
    }

    #[test]
    fn throughput_figures_are_consistent() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        let enc = SpeakerEncoder::load(&dir, &Device::Cpu).unwrap();
        let mel = MelFrontend::new();
        let bench = embedding_throughput(&enc, &mel, &Device::Cpu, 2, 0.0).unwrap();
        assert_eq!(bench.batch, 2);
        assert_eq!(bench.partials_per_utterance, 5);
        assert!(bench.calls >= 2);
        let per_embedding = 1e3 / bench.embeddings_per_s;
        assert!((per_embedding - bench.ms_per_embedding).abs() < 1e-9 * per_embedding);
        assert!((bench.ms_per_partial * 5.0 - bench.ms_per_embedding).abs() < 1e-9);
        assert!(bench.ms_per_partial_model > 0.0 && bench.mel_ms_per_utterance > 0.0);
        assert!(embedding_throughput(&enc, &mel, &Device::Cpu, 0, 0.0).is_err());
    }
}
