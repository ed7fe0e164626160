//! The segmentation network: pyannote/segmentation 2022.07 (PyanNet).
//!
//! 5 s of 16 kHz audio in, 293 frames × 3 speaker activities (sigmoid) out.
//! Port of pyannote/pyannote-audio 4.0.7 `models/segmentation/PyanNet.py`:
//! SincNet → 4 × BiLSTM(128) → 2 × (Linear(128) + LeakyReLU) → Linear(3) →
//! sigmoid. The three outputs are permutation-invariant local speakers.

use std::path::Path;

use candle_core::{Device, Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder};

use crate::models::lstm::{Lstm, LstmConfig};
use crate::models::sincnet::{SincNet, SincNetConfig};
use crate::models::weights;

/// Sample rate the network was trained on.
pub const SAMPLE_RATE: usize = 16_000;
/// Samples in one window (5 s).
pub const WINDOW_SAMPLES: usize = 80_000;
/// Output frames for one window: `num_frames(WINDOW_SAMPLES)`.
pub const FRAMES_PER_WINDOW: usize = num_frames(WINDOW_SAMPLES);
/// Samples between the starts of two consecutive output frames (16.875 ms).
pub const FRAME_STEP_SAMPLES: usize = 270;
/// Samples that one output frame sees (61.9375 ms): frame i covers
/// `[FRAME_STEP_SAMPLES·i, FRAME_STEP_SAMPLES·i + RECEPTIVE_FIELD_SAMPLES)`.
pub const RECEPTIVE_FIELD_SAMPLES: usize = 991;
/// Local speakers per window.
pub const NUM_CLASSES: usize = 3;

/// (kernel, stride) of every layer that shortens the time axis, in order:
/// sinc conv, pool, conv, pool, conv, pool.
const TIME_REDUCTIONS: [(usize, usize); 6] = [(251, 10), (3, 3), (5, 1), (3, 3), (5, 1), (3, 3)];

/// Output frames for `num_samples` input samples (0 when the input is shorter
/// than the receptive field).
pub const fn num_frames(num_samples: usize) -> usize {
    let mut n = num_samples;
    let mut i = 0;
    while i < TIME_REDUCTIONS.len() {
        let (kernel, stride) = TIME_REDUCTIONS[i];
        if n < kernel {
            return 0;
        }
        n = 1 + (n - kernel) / stride;
        i += 1;
    }
    n
}

const LEAKY_SLOPE: f64 = 0.01;

/// Hyper-parameters of PyanNet; `Default` is the 2022.07 checkpoint's.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentationConfig {
    pub sample_rate: usize,
    pub window_samples: usize,
    pub sincnet: SincNetConfig,
    pub lstm_hidden: usize,
    pub lstm_layers: usize,
    pub lstm_bidirectional: bool,
    pub linear_hidden: usize,
    pub linear_layers: usize,
    pub num_classes: usize,
}

impl Default for SegmentationConfig {
    fn default() -> Self {
        Self {
            sample_rate: SAMPLE_RATE,
            window_samples: WINDOW_SAMPLES,
            sincnet: SincNetConfig::default(),
            lstm_hidden: 128,
            lstm_layers: 4,
            lstm_bidirectional: true,
            linear_hidden: 128,
            linear_layers: 2,
            num_classes: NUM_CLASSES,
        }
    }
}

/// Every layer's output for one forward pass, for parity checks.
pub struct SegmentationTrace {
    /// (batch, 1, samples)
    pub wav_norm: Tensor,
    /// (batch, 80, 7975), before `abs`
    pub sinc_conv: Tensor,
    /// (batch, 80, 2658)
    pub stage0: Tensor,
    /// (batch, 60, 884)
    pub stage1: Tensor,
    /// (batch, 60, 293)
    pub stage2: Tensor,
    /// (batch, 293, 256)
    pub lstm: Tensor,
    /// (batch, 293, 128) each, after LeakyReLU
    pub linear: Vec<Tensor>,
    /// (batch, 293, 3), before the sigmoid
    pub logits: Tensor,
    /// (batch, 293, 3)
    pub output: Tensor,
}

pub struct Segmentation {
    sincnet: SincNet,
    lstm: Lstm,
    linear: Vec<Linear>,
    classifier: Linear,
}

impl Segmentation {
    /// `vb` points at the root of the checkpoint (keys `sincnet.*`, `lstm.*`,
    /// `linear.{i}.*`, `classifier.*`).
    pub fn new(cfg: &SegmentationConfig, vb: VarBuilder) -> Result<Self> {
        let sincnet = SincNet::new(&cfg.sincnet, vb.pp("sincnet"))?;
        let lstm_cfg = LstmConfig {
            input_size: cfg.sincnet.conv_channels,
            hidden_size: cfg.lstm_hidden,
            num_layers: cfg.lstm_layers,
            bidirectional: cfg.lstm_bidirectional,
        };
        let lstm = Lstm::new(&lstm_cfg, vb.pp("lstm"))?;
        let directions = if cfg.lstm_bidirectional { 2 } else { 1 };
        let mut linear = Vec::with_capacity(cfg.linear_layers);
        let mut width = directions * cfg.lstm_hidden;
        for i in 0..cfg.linear_layers {
            linear.push(candle_nn::linear(
                width,
                cfg.linear_hidden,
                vb.pp(format!("linear.{i}")),
            )?);
            width = cfg.linear_hidden;
        }
        let classifier = candle_nn::linear(width, cfg.num_classes, vb.pp("classifier"))?;
        Ok(Self {
            sincnet,
            lstm,
            linear,
            classifier,
        })
    }

    /// Loads the shipped checkpoint from `models_dir` (checksum verified).
    pub fn load(models_dir: &Path, device: &Device) -> crate::Result<Self> {
        let vb = weights::load(models_dir, &weights::SEGMENTATION, device)?;
        Self::new(&SegmentationConfig::default(), vb).map_err(|e| {
            crate::Error::model(
                models_dir.join(weights::SEGMENTATION.file_name),
                format!("unexpected tensors: {e}"),
            )
        })
    }

    /// The SincNet front end.
    pub fn sincnet(&self) -> &SincNet {
        &self.sincnet
    }

    /// The sinc filterbank computed at load, (80, 1, 251), float32.
    pub fn sinc_filters(&self) -> Result<Tensor> {
        self.sincnet.filters()
    }

    /// (batch, frames, 256) → (batch, frames, 128) after every Linear + LeakyReLU.
    fn head(&self, xs: &Tensor) -> Result<Tensor> {
        let mut xs = xs.clone();
        for linear in &self.linear {
            xs = candle_nn::ops::leaky_relu(&linear.forward(&xs)?, LEAKY_SLOPE)?;
        }
        Ok(xs)
    }

    /// wav: (batch, 1, samples) f32 in [-1, 1] → (batch, frames, 3) speaker
    /// activities in [0, 1]; 80000 samples give 293 frames.
    pub fn forward(&self, wav: &Tensor) -> Result<Tensor> {
        let xs = self.sincnet.forward(wav)?; // (batch, 60, frames)
        let xs = self.lstm.forward(&xs.transpose(1, 2)?.contiguous()?)?; // (batch, frames, 256)
        let xs = self.head(&xs)?; // (batch, frames, 128)
        candle_nn::ops::sigmoid(&self.classifier.forward(&xs)?) // (batch, frames, 3)
    }

    /// Every 5 s window, one every `step` samples, of one signal (torch's
    /// `signal.unfold(0, 80000, step)`): signal (len,) → (count, 293, 3), the
    /// same as `forward` on the cut-out windows. Overlapping windows share
    /// their sinc convolution.
    pub fn forward_windows(&self, signal: &Tensor, step: usize) -> Result<Tensor> {
        let xs = self.sincnet.forward_windows(signal, WINDOW_SAMPLES, step)?; // (count, 60, frames)
        let xs = self.lstm.forward(&xs.transpose(1, 2)?.contiguous()?)?; // (count, frames, 256)
        let xs = self.head(&xs)?; // (count, frames, 128)
        candle_nn::ops::sigmoid(&self.classifier.forward(&xs)?) // (count, frames, 3)
    }

    /// The device-agnostic `forward`, calling `mark` after each stage with
    /// its name.
    pub fn forward_marked(
        &self,
        wav: &Tensor,
        mark: &mut dyn FnMut(&'static str) -> Result<()>,
    ) -> Result<Tensor> {
        let xs = self.sincnet.forward_marked(wav, mark)?; // (batch, 60, frames)
        self.after_sincnet_marked(&xs, mark)
    }

    /// The device-agnostic `forward_windows`, calling `mark` after each
    /// stage with its name (the networks benchmark times the stages on a GPU
    /// this way).
    pub fn forward_windows_marked(
        &self,
        signal: &Tensor,
        step: usize,
        mark: &mut dyn FnMut(&'static str) -> Result<()>,
    ) -> Result<Tensor> {
        let xs = self
            .sincnet
            .forward_windows_marked(signal, WINDOW_SAMPLES, step, mark)?; // (count, 60, frames)
        self.after_sincnet_marked(&xs, mark)
    }

    /// SincNet features (batch, 60, frames) → (batch, frames, 3), device-agnostic.
    fn after_sincnet_marked(
        &self,
        xs: &Tensor,
        mark: &mut dyn FnMut(&'static str) -> Result<()>,
    ) -> Result<Tensor> {
        let xs = self
            .lstm
            .forward_generic(&xs.transpose(1, 2)?.contiguous()?)?; // (batch, frames, 256)
        mark("lstm")?;
        let xs = self.head(&xs)?; // (batch, frames, 128)
        let xs = candle_nn::ops::sigmoid(&self.classifier.forward(&xs)?)?; // (batch, frames, 3)
        mark("linear head")?;
        Ok(xs)
    }

    /// `forward` through the device-agnostic implementation only (the one
    /// GPUs run), even on the CPU, where `forward` takes fused fast paths.
    pub fn forward_generic(&self, wav: &Tensor) -> Result<Tensor> {
        self.forward_marked(wav, &mut |_| Ok(()))
    }

    /// Like `forward`, keeping every layer's output (device-agnostic path).
    pub fn forward_trace(&self, wav: &Tensor) -> Result<SegmentationTrace> {
        let sinc = self.sincnet.forward_trace(wav)?;
        let lstm = self
            .lstm
            .forward_generic(&sinc.stage2.transpose(1, 2)?.contiguous()?)?; // (batch, frames, 256)
        let mut linear = Vec::with_capacity(self.linear.len());
        let mut xs = lstm.clone();
        for layer in &self.linear {
            xs = candle_nn::ops::leaky_relu(&layer.forward(&xs)?, LEAKY_SLOPE)?;
            linear.push(xs.clone());
        }
        let logits = self.classifier.forward(&xs)?; // (batch, frames, 3)
        let output = candle_nn::ops::sigmoid(&logits)?;
        Ok(SegmentationTrace {
            wav_norm: sinc.wav_norm,
            sinc_conv: sinc.sinc_conv,
            stage0: sinc.stage0,
            stage1: sinc.stage1,
            stage2: sinc.stage2,
            lstm,
            linear,
            logits,
            output,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_arithmetic_matches_pyannote() {
        assert_eq!(FRAMES_PER_WINDOW, 293);
        // pyannote's introspection: 1261 samples is the shortest input with 2 frames…
        assert_eq!(num_frames(1261), 2);
        assert_eq!(num_frames(1260), 1);
        // …and every 270 more samples add a frame.
        assert_eq!(num_frames(1261 + 270), 3);
        assert_eq!(num_frames(RECEPTIVE_FIELD_SAMPLES), 1);
        assert_eq!(num_frames(RECEPTIVE_FIELD_SAMPLES - 1), 0);
        assert_eq!(num_frames(0), 0);
        assert_eq!(
            RECEPTIVE_FIELD_SAMPLES + (FRAMES_PER_WINDOW - 1) * FRAME_STEP_SAMPLES,
            79_831
        );
    }
}
