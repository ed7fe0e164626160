//! The segmentation network, PyanNet, in its two released checkpoints.
//!
//! Port of pyannote/pyannote-audio 4.0.7 `models/segmentation/PyanNet.py`:
//! SincNet → 4 × BiLSTM(128) → 2 × (Linear(128) + LeakyReLU) → classifier.
//! - pyannote/segmentation 2022.07: 5 s windows (293 frames), classifier
//!   Linear(3) → sigmoid, one activity per local speaker.
//! - pyannote/segmentation-3.0: 10 s windows (589 frames), classifier
//!   Linear(7) → log-softmax over the powerset classes (`powerset`): at most
//!   3 local speakers a window, 2 a frame.
//!
//! Local speakers are permutation-invariant: speaker 0 of one window has
//! nothing to do with speaker 0 of the next.

use std::path::Path;

use candle_core::{D, Device, Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder};

use crate::models::lstm::{Lstm, LstmConfig};
use crate::models::powerset::Powerset;
use crate::models::sincnet::{SincNet, SincNetConfig};
use crate::models::weights;

/// Sample rate both checkpoints were trained on.
pub const SAMPLE_RATE: usize = 16_000;
/// Samples between the starts of two consecutive output frames (16.875 ms).
pub const FRAME_STEP_SAMPLES: usize = 270;
/// Samples that one output frame sees (61.9375 ms): frame i covers
/// `[FRAME_STEP_SAMPLES·i, FRAME_STEP_SAMPLES·i + RECEPTIVE_FIELD_SAMPLES)`.
pub const RECEPTIVE_FIELD_SAMPLES: usize = 991;
/// Local speakers per window, in both checkpoints (the pipeline's per-frame
/// arrays are this wide).
pub const LOCAL_SPEAKERS: usize = 3;
/// Slope of the LeakyReLU after each hidden linear layer.
pub const LEAKY_SLOPE: f64 = 0.01;

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

/// Where a window's output frames sit, the one description of time the
/// pipeline reads from a segmentation model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub sample_rate: usize,
    /// Samples in one window.
    pub window_samples: usize,
    /// Output frames for one window: `num_frames(window_samples)`.
    pub frames_per_window: usize,
    pub frame_step_samples: usize,
    pub receptive_field_samples: usize,
    /// Local speakers per window.
    pub speakers: usize,
}

impl Geometry {
    /// PyanNet's frames for windows of `window_samples`.
    pub const fn of_window(window_samples: usize) -> Self {
        Self {
            sample_rate: SAMPLE_RATE,
            window_samples,
            frames_per_window: num_frames(window_samples),
            frame_step_samples: FRAME_STEP_SAMPLES,
            receptive_field_samples: RECEPTIVE_FIELD_SAMPLES,
            speakers: LOCAL_SPEAKERS,
        }
    }

    /// Seconds in one window.
    pub fn window_s(&self) -> f64 {
        self.window_samples as f64 / self.sample_rate as f64
    }
}

impl Default for Geometry {
    /// The default checkpoint's.
    fn default() -> Self {
        SegmentationModel::default().geometry()
    }
}

/// What the classifier's outputs mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// One sigmoid activity per local speaker (2022.07).
    Multilabel,
    /// A log-softmax over every set of at most `max_per_frame` local
    /// speakers (3.0; see `powerset`).
    Powerset { max_per_frame: usize },
}

/// The shipped segmentation checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SegmentationModel {
    /// pyannote/segmentation 2022.07: 5 s windows, 3 sigmoid outputs.
    #[default]
    Pyannote2022,
    /// pyannote/segmentation-3.0: 10 s windows, 7 powerset classes.
    Pyannote3,
}

impl SegmentationModel {
    pub const ALL: [Self; 2] = [Self::Pyannote2022, Self::Pyannote3];

    /// Its name on the command line and in logs: "2022" or "3.0".
    pub fn name(self) -> &'static str {
        match self {
            Self::Pyannote2022 => "2022",
            Self::Pyannote3 => "3.0",
        }
    }

    /// The window it was trained on.
    pub const fn geometry(self) -> Geometry {
        match self {
            Self::Pyannote2022 => Geometry::of_window(80_000),
            Self::Pyannote3 => Geometry::of_window(160_000),
        }
    }

    pub const fn head(self) -> Head {
        match self {
            Self::Pyannote2022 => Head::Multilabel,
            Self::Pyannote3 => Head::Powerset { max_per_frame: 2 },
        }
    }

    pub fn config(self) -> SegmentationConfig {
        SegmentationConfig {
            window_samples: self.geometry().window_samples,
            head: self.head(),
            ..SegmentationConfig::default()
        }
    }

    /// Its weight file in `models/`.
    pub fn weights(self) -> weights::ModelFile {
        match self {
            Self::Pyannote2022 => weights::SEGMENTATION,
            Self::Pyannote3 => weights::SEGMENTATION_3,
        }
    }
}

impl std::str::FromStr for SegmentationModel {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "2022" | "2022.07" | "seg2022" => Ok(Self::Pyannote2022),
            "3" | "3.0" | "30" | "seg30" => Ok(Self::Pyannote3),
            _ => Err(crate::Error::InvalidOption(format!(
                "unknown segmentation model {s:?} (expected 2022 or 3.0)"
            ))),
        }
    }
}

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
    pub head: Head,
    /// Take the fused float32 LSTM when the weights are on the CPU (SincNet
    /// has its own switch in `sincnet`); off, the CPU runs the
    /// device-agnostic code GPUs run, which is how tests check one against
    /// the other.
    pub cpu_fast_path: bool,
}

impl Default for SegmentationConfig {
    fn default() -> Self {
        Self {
            sample_rate: SAMPLE_RATE,
            window_samples: SegmentationModel::Pyannote2022.geometry().window_samples,
            sincnet: SincNetConfig::default(),
            lstm_hidden: 128,
            lstm_layers: 4,
            lstm_bidirectional: true,
            linear_hidden: 128,
            linear_layers: 2,
            head: Head::Multilabel,
            cpu_fast_path: true,
        }
    }
}

impl SegmentationConfig {
    pub fn geometry(&self) -> Geometry {
        Geometry::of_window(self.window_samples)
    }

    /// Outputs of the classifier.
    pub fn num_classes(&self) -> usize {
        match self.head {
            Head::Multilabel => LOCAL_SPEAKERS,
            Head::Powerset { max_per_frame } => (0..=max_per_frame.min(LOCAL_SPEAKERS))
                .map(|k| binomial(LOCAL_SPEAKERS, k))
                .sum(),
        }
    }

    /// The same network with every CPU fast path off.
    pub fn device_agnostic(mut self) -> Self {
        self.cpu_fast_path = false;
        self.sincnet.cpu_fast_path = false;
        self
    }
}

const fn binomial(n: usize, k: usize) -> usize {
    let mut r = 1;
    let mut i = 0;
    while i < k {
        r = r * (n - i) / (i + 1);
        i += 1;
    }
    r
}

/// PyanNet: SincNet → BiLSTM → hidden linear layers → classifier, with the
/// head's activation.
pub struct Segmentation {
    cfg: SegmentationConfig,
    sincnet: SincNet,
    lstm: Lstm,
    linear: Vec<Linear>,
    classifier: Linear,
    /// Present for a powerset head.
    powerset: Option<Powerset>,
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
        let classifier = candle_nn::linear(width, cfg.num_classes(), vb.pp("classifier"))?;
        let powerset = match cfg.head {
            Head::Multilabel => None,
            Head::Powerset { max_per_frame } => {
                Some(Powerset::new(LOCAL_SPEAKERS, max_per_frame, vb.device())?)
            }
        };
        Ok(Self {
            cfg: cfg.clone(),
            sincnet,
            lstm,
            linear,
            classifier,
            powerset,
        })
    }

    /// Loads `model`'s shipped checkpoint from `models_dir` (checksum
    /// verified).
    pub fn load(
        model: SegmentationModel,
        models_dir: &Path,
        device: &Device,
    ) -> crate::Result<Self> {
        Self::load_with(&model.config(), model.weights(), models_dir, device)
    }

    /// Loads a checkpoint `file` from `models_dir` as `cfg` describes it.
    pub fn load_with(
        cfg: &SegmentationConfig,
        file: weights::ModelFile,
        models_dir: &Path,
        device: &Device,
    ) -> crate::Result<Self> {
        let vb = weights::load(models_dir, &file, device)?;
        Self::new(cfg, vb).map_err(|e| {
            crate::Error::model(
                models_dir.join(file.file_name),
                format!("unexpected tensors: {e}"),
            )
        })
    }

    pub fn config(&self) -> &SegmentationConfig {
        &self.cfg
    }

    pub fn geometry(&self) -> Geometry {
        self.cfg.geometry()
    }

    /// The SincNet front end.
    pub fn sincnet(&self) -> &SincNet {
        &self.sincnet
    }

    /// The BiLSTM over SincNet's features.
    pub fn lstm(&self) -> &Lstm {
        &self.lstm
    }

    /// The hidden linear layers, each followed by LeakyReLU(`LEAKY_SLOPE`).
    pub fn linear(&self) -> &[Linear] {
        &self.linear
    }

    /// The last layer, whose outputs `activation` turns into scores.
    pub fn classifier(&self) -> &Linear {
        &self.classifier
    }

    /// The powerset classes of a powerset head.
    pub fn powerset(&self) -> Option<&Powerset> {
        self.powerset.as_ref()
    }

    /// Classifier outputs → scores: sigmoid (multilabel) or log-softmax over
    /// the classes (powerset), as the checkpoint was trained.
    pub fn activation(&self, logits: &Tensor) -> Result<Tensor> {
        match self.cfg.head {
            Head::Multilabel => candle_nn::ops::sigmoid(logits),
            Head::Powerset { .. } => candle_nn::ops::log_softmax(logits, D::Minus1),
        }
    }

    /// Scores (batch, frames, classes) of `forward` → (batch, frames, 3)
    /// local speaker activities in [0, 1]: sigmoid outputs as they are,
    /// powerset classes decoded hard (each frame's most likely set of
    /// speakers, 0 or 1 each) as pyannote's diarization pipeline does.
    pub fn speaker_activities(&self, scores: &Tensor) -> Result<Tensor> {
        match &self.powerset {
            None => Ok(scores.clone()),
            Some(powerset) => powerset.to_multilabel(scores),
        }
    }

    /// SincNet features (batch, 60, frames) → scores (batch, frames, classes).
    fn after_sincnet(&self, features: &Tensor) -> Result<Tensor> {
        let xs = features.transpose(1, 2)?.contiguous()?; // (batch, frames, 60)
        let mut xs = if self.cfg.cpu_fast_path {
            self.lstm.forward(&xs)?
        } else {
            self.lstm.forward_generic(&xs)?
        }; // (batch, frames, 256)
        for linear in &self.linear {
            xs = candle_nn::ops::leaky_relu(&linear.forward(&xs)?, LEAKY_SLOPE)?; // (batch, frames, 128)
        }
        self.activation(&self.classifier.forward(&xs)?) // (batch, frames, classes)
    }

    /// Every window of the model's length, one every `step` samples, of one
    /// signal (torch's `signal.unfold(0, window, step)`): signal (len,) →
    /// scores (count, frames, classes), the same as `forward` on the cut-out
    /// windows. Overlapping windows share their sinc convolution.
    pub fn forward_windows(&self, signal: &Tensor, step: usize) -> Result<Tensor> {
        let xs = self
            .sincnet
            .forward_windows(signal, self.cfg.window_samples, step)?; // (count, 60, frames)
        self.after_sincnet(&xs)
    }
}

impl Module for Segmentation {
    /// wav: (batch, 1, samples) f32 in [-1, 1] → scores (batch, frames,
    /// classes): 80000 samples give 293 frames, 160000 give 589.
    fn forward(&self, wav: &Tensor) -> Result<Tensor> {
        let xs = self.sincnet.forward(wav)?; // (batch, 60, frames)
        self.after_sincnet(&xs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_arithmetic_matches_pyannote() {
        assert_eq!(
            SegmentationModel::Pyannote2022.geometry().frames_per_window,
            293
        );
        assert_eq!(
            SegmentationModel::Pyannote3.geometry().frames_per_window,
            589
        );
        // pyannote's introspection: 1261 samples is the shortest input with 2 frames…
        assert_eq!(num_frames(1261), 2);
        assert_eq!(num_frames(1260), 1);
        // …and every 270 more samples add a frame.
        assert_eq!(num_frames(1261 + 270), 3);
        assert_eq!(num_frames(RECEPTIVE_FIELD_SAMPLES), 1);
        assert_eq!(num_frames(RECEPTIVE_FIELD_SAMPLES - 1), 0);
        assert_eq!(num_frames(0), 0);
        let frames = SegmentationModel::Pyannote2022.geometry().frames_per_window;
        assert_eq!(
            RECEPTIVE_FIELD_SAMPLES + (frames - 1) * FRAME_STEP_SAMPLES,
            79_831
        );
    }

    #[test]
    fn class_counts() {
        assert_eq!(SegmentationModel::Pyannote2022.config().num_classes(), 3);
        assert_eq!(SegmentationModel::Pyannote3.config().num_classes(), 7);
        for model in SegmentationModel::ALL {
            assert_eq!(model.name().parse::<SegmentationModel>().unwrap(), model);
        }
        assert!("2021".parse::<SegmentationModel>().is_err());
    }
}
