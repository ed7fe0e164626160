//! Resemblyzer's GE2E speaker encoder (d-vectors).
//!
//! Port of resemblyzer 0.1.4 `voice_encoder.py` (`VoiceEncoder.forward`,
//! `compute_partial_slices`, `embed_utterance`). A 1.6 s partial utterance
//! (160 mel frames) goes through LSTM(40→256, 3 layers); the last layer's
//! final hidden state → Linear(256→256) → ReLU → unit length. An utterance
//! embedding is the mean of its overlapping partials, renormalised.
//! `similarity_weight`/`similarity_bias` in the checkpoint belong to the
//! training loss and are not read.

use std::ops::Range;
use std::path::Path;

use candle_core::{D, DType, Device, Module, Tensor};
use candle_nn::{Linear, VarBuilder};

use crate::models::lstm::{Lstm, LstmConfig};
use crate::models::mel::{self, HOP_SAMPLES, MelFrontend, N_MELS};
use crate::models::weights;

/// `embed_utterance`'s default partial rate: one partial every 1/1.3 s.
pub const PARTIALS_PER_SECOND: f64 = 1.3;
/// A trailing partial is kept only if the audio fills this much of it.
pub const MIN_COVERAGE: f64 = 0.75;

/// Dimension of a GE2E embedding.
pub const EMBEDDING_DIM: usize = 256;
/// Mel frames in one partial utterance (1.6 s).
pub const PARTIAL_FRAMES: usize = 160;

/// The speaker encoders a pipeline can embed local speakers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EmbeddingModel {
    /// Resemblyzer's GE2E d-vectors (this module).
    #[default]
    Ge2e,
    /// 3D-Speaker's CAM++ (`models::campplus`).
    CamPlus,
}

impl EmbeddingModel {
    pub const ALL: [Self; 2] = [Self::Ge2e, Self::CamPlus];

    /// Its name on the command line: "ge2e".
    pub fn name(self) -> &'static str {
        match self {
            Self::Ge2e => "ge2e",
            Self::CamPlus => "campplus",
        }
    }

    /// Values in one embedding.
    pub fn embedding_dim(self) -> usize {
        match self {
            Self::Ge2e => EMBEDDING_DIM,
            Self::CamPlus => super::campplus::EMBEDDING_DIM,
        }
    }

    /// Values in one frame of the features it reads (10 ms frames for both).
    pub fn frame_width(self) -> usize {
        match self {
            Self::Ge2e => N_MELS,
            Self::CamPlus => super::fbank::N_MELS,
        }
    }
}

impl std::str::FromStr for EmbeddingModel {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "ge2e" => Ok(Self::Ge2e),
            "campplus" => Ok(Self::CamPlus),
            _ => Err(crate::Error::InvalidOption(format!(
                "unknown speaker encoder {s:?} (expected ge2e or campplus)"
            ))),
        }
    }
}

/// Resemblyzer's `hparams.py` model constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpeakerEncoderConfig {
    pub mel_channels: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub embedding_size: usize,
    /// Mel frames per partial utterance (1.6 s).
    pub partial_frames: usize,
}

impl Default for SpeakerEncoderConfig {
    fn default() -> Self {
        Self {
            mel_channels: N_MELS,
            hidden_size: 256,
            num_layers: 3,
            embedding_size: EMBEDDING_DIM,
            partial_frames: PARTIAL_FRAMES,
        }
    }
}

pub struct SpeakerEncoder {
    cfg: SpeakerEncoderConfig,
    lstm: Lstm,
    linear: Linear,
}

impl SpeakerEncoder {
    pub fn new(cfg: &SpeakerEncoderConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        let lstm_cfg = LstmConfig {
            input_size: cfg.mel_channels,
            hidden_size: cfg.hidden_size,
            num_layers: cfg.num_layers,
            bidirectional: false,
        };
        Ok(Self {
            cfg: *cfg,
            lstm: Lstm::new(&lstm_cfg, vb.pp("lstm"))?,
            linear: candle_nn::linear(cfg.hidden_size, cfg.embedding_size, vb.pp("linear"))?,
        })
    }

    /// Loads and verifies `models_dir/ge2e-resemblyzer.safetensors`.
    pub fn load(models_dir: &Path, device: &Device) -> crate::Result<Self> {
        let vb = weights::load(models_dir, &weights::EMBEDDING, device)?;
        Ok(Self::new(&SpeakerEncoderConfig::default(), vb)?)
    }

    pub fn config(&self) -> &SpeakerEncoderConfig {
        &self.cfg
    }

    pub fn device(&self) -> &Device {
        self.linear.weight().device()
    }

    /// mels: (batch, frames, 40) → (batch, 256) unit-length partial embeddings.
    pub fn forward(&self, mels: &Tensor) -> candle_core::Result<Tensor> {
        let frames = mels.dim(1)?;
        if frames == 0 {
            candle_core::bail!("speaker encoder needs at least one mel frame");
        }
        let hidden = self.lstm.forward(mels)?; // (batch, frames, hidden)
        // Contiguous: CUDA and Metal matmuls reject strided operands.
        let last = hidden.narrow(1, frames - 1, 1)?.squeeze(1)?.contiguous()?; // (batch, hidden)
        let raw = self.linear.forward(&last)?.relu()?; // (batch, embedding)
        l2_normalize_rows(&raw)
    }

    /// One utterance's embedding, as `VoiceEncoder.embed_utterance(wav)` with
    /// its defaults (rate 1.3, min_coverage 0.75). `samples`: 16 kHz mono.
    pub fn embed_utterance(&self, mel: &MelFrontend, samples: &[f32]) -> crate::Result<Vec<f32>> {
        let mut embeddings = self.embed_utterances(mel, &[samples])?;
        Ok(embeddings.swap_remove(0))
    }

    /// Several utterances at once: all their partials go through the network
    /// as one batch, which is what makes the LSTM's matmuls worth it.
    pub fn embed_utterances(
        &self,
        mel: &MelFrontend,
        utterances: &[&[f32]],
    ) -> crate::Result<Vec<Vec<f32>>> {
        let mut counts = Vec::with_capacity(utterances.len());
        let mut mels: Vec<f32> = Vec::new();
        for samples in utterances {
            let slices = partial_slices(samples.len(), self.cfg.partial_frames);
            counts.push(slices.len());
            let frames = utterance_mel(mel, samples, &slices);
            for slice in slices {
                mels.extend(frames[slice].iter().flatten());
            }
        }
        let n_partials: usize = counts.iter().sum();
        if n_partials == 0 {
            return Ok(Vec::new());
        }
        let mels = Tensor::from_vec(
            mels,
            (n_partials, self.cfg.partial_frames, N_MELS),
            self.device(),
        )?; // (partials, 160, 40)
        let partials = self
            .forward(&mels)?
            .to_dtype(DType::F32)?
            .to_vec2::<f32>()?;
        let mut rows = partials.iter();
        Ok(counts
            .iter()
            .map(|&n| mean_of_unit_vectors(rows.by_ref().take(n)))
            .collect())
    }
}

/// `VoiceEncoder.compute_partial_slices(n_samples, 1.3, 0.75)`'s mel-frame
/// ranges. Partial i covers samples `[160·start, 160·end)`, which may run past
/// the utterance: the caller zero-pads it. Never empty.
pub fn partial_slices(n_samples: usize, partial_frames: usize) -> Vec<Range<usize>> {
    let sample_rate = f64::from(mel::SAMPLE_RATE_HZ);
    // int(np.ceil((n_samples + 1) / 160)), int(np.round(16000 / 1.3 / 160)) = 77
    let n_frames = (n_samples + 1).div_ceil(HOP_SAMPLES);
    let frame_step =
        ((sample_rate / PARTIALS_PER_SECOND) / HOP_SAMPLES as f64).round_ties_even() as usize;
    let steps = (n_frames + frame_step + 1)
        .saturating_sub(partial_frames)
        .max(1);
    let mut slices: Vec<Range<usize>> = (0..steps)
        .step_by(frame_step)
        .map(|start| start..start + partial_frames)
        .collect();
    if let [.., last] = slices.as_slice() {
        let start = (last.start * HOP_SAMPLES) as f64;
        let coverage = (n_samples as f64 - start) / (partial_frames * HOP_SAMPLES) as f64;
        if coverage < MIN_COVERAGE && slices.len() > 1 {
            slices.pop();
        }
    }
    slices
}

/// The mel frames the slices read, computed as resemblyzer does on the
/// utterance zero-padded to the last slice's end (when that is past the end).
fn utterance_mel(
    mel: &MelFrontend,
    samples: &[f32],
    slices: &[Range<usize>],
) -> Vec<[f32; N_MELS]> {
    let frames_needed = slices.last().map_or(0, |s| s.end);
    let wav_len = (frames_needed * HOP_SAMPLES).max(samples.len());
    // centre padding + the wav padded to `wav_len`, cut after the last frame read
    let padded_len = ((frames_needed.max(1) - 1) * HOP_SAMPLES + mel::WINDOW_SAMPLES)
        .min(wav_len + 2 * mel::CENTER_PAD_SAMPLES);
    let mut padded = vec![0.0f32; padded_len];
    let copied = samples.len().min(padded_len - mel::CENTER_PAD_SAMPLES);
    padded[mel::CENTER_PAD_SAMPLES..mel::CENTER_PAD_SAMPLES + copied]
        .copy_from_slice(&samples[..copied]);
    let mut frames = Vec::with_capacity(frames_needed);
    mel.frames_from_padded(&padded, &mut frames);
    frames
}

/// Rows divided by their L2 norm (no epsilon, like resemblyzer); an all-zero
/// row (every ReLU output off) stays zero instead of becoming NaN.
fn l2_normalize_rows(xs: &Tensor) -> candle_core::Result<Tensor> {
    let norm = xs.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?; // (batch, 1)
    let is_zero = norm.eq(0.0)?.to_dtype(norm.dtype())?;
    xs.broadcast_div(&(norm + is_zero)?)
}

/// `raw = mean(partials); raw / ‖raw‖`, in float32 like numpy.
fn mean_of_unit_vectors<'a>(rows: impl Iterator<Item = &'a Vec<f32>>) -> Vec<f32> {
    let mut sum: Vec<f32> = Vec::new();
    let mut n = 0usize;
    for row in rows {
        if sum.is_empty() {
            sum = vec![0.0; row.len()];
        }
        for (s, x) in sum.iter_mut().zip(row) {
            *s += x;
        }
        n += 1;
    }
    let mean: Vec<f32> = sum.iter().map(|s| s / n.max(1) as f32).collect();
    let norm = mean.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm == 0.0 {
        return mean;
    }
    mean.iter().map(|x| x / norm).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn starts(n_samples: usize) -> Vec<usize> {
        partial_slices(n_samples, 160)
            .iter()
            .map(|s| s.start)
            .collect()
    }

    #[test]
    fn partial_slices_match_resemblyzer() {
        // Values from resemblyzer's compute_partial_slices (see the fixture's
        // slice table in tests/embedding.rs).
        assert_eq!(starts(80_000), vec![0, 77, 154, 231, 308]); // 5 s: 5 partials, no padding
        assert_eq!(starts(64_000), vec![0, 77, 154, 231]);
        assert_eq!(starts(96_000), vec![0, 77, 154, 231, 308, 385, 462]);
        assert_eq!(starts(44_800), vec![0, 77, 154]);
        // Shorter than one partial: still exactly one, padded.
        assert_eq!(starts(0), vec![0]);
        assert_eq!(starts(1_000), vec![0]);
        assert_eq!(starts(25_600), vec![0]);
        for slice in partial_slices(44_800, 160) {
            assert_eq!(slice.len(), 160);
        }
    }

    #[test]
    fn trailing_partial_needs_three_quarters() {
        // With 2 partials' worth of frames the second starts at frame 77
        // (sample 12 320) and needs 0.75 · 25 600 = 19 200 samples after it.
        let min_len = 12_320 + 19_200;
        assert_eq!(starts(min_len), vec![0, 77]);
        assert_eq!(starts(min_len - 1), vec![0]);
    }

    #[test]
    fn utterance_mel_pads_like_resemblyzer() {
        let mel = MelFrontend::new();
        let samples: Vec<f32> = (0..44_800).map(|i| (i as f32 * 0.01).sin()).collect();
        let slices = partial_slices(samples.len(), 160);
        let frames = utterance_mel(&mel, &samples, &slices);
        // resemblyzer: pad to 160·(154+160) = 50 240 samples, then mel of all of it.
        let mut padded = samples.clone();
        padded.resize(50_240, 0.0);
        let full = mel.mel(&padded);
        assert_eq!(full.len(), 315);
        assert_eq!(frames.len(), 314);
        assert_eq!(frames[..], full[..314]);
    }

    #[test]
    fn zero_rows_normalise_to_zero() {
        let xs = Tensor::new(&[[3.0f32, 4.0], [0.0, 0.0]], &Device::Cpu).unwrap();
        let ys = l2_normalize_rows(&xs).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(ys, vec![vec![0.6, 0.8], vec![0.0, 0.0]]);
        let mean = mean_of_unit_vectors([vec![0.0f32, 0.0]].iter());
        assert_eq!(mean, vec![0.0, 0.0]);
    }
}
