//! The speaker encoder a job runs, with the frame features it reads: GE2E
//! on 40 power-mel bands, or CAM++ on 80 Kaldi log-mel bands. Both front
//! ends frame the signal alike (400 samples every 160, 10 ms), so windows,
//! partials and the grid they sit on are the same for either; only the
//! width of a frame and of an embedding differ.

use candle_core::{D, Device, Tensor};

use crate::error::Result;
use crate::models::campplus::CamPlus;
use crate::models::embedding::{EmbeddingModel, SpeakerEncoder};
use crate::models::fbank::KaldiFbank;
use crate::models::mel::MelFrontend;

/// A loaded speaker encoder and its front end.
pub enum Encoder {
    Ge2e {
        net: SpeakerEncoder,
        mel: MelFrontend,
    },
    CamPlus {
        // Boxed: its many layers would make every `Encoder` that large.
        net: Box<CamPlus>,
        fbank: KaldiFbank,
    },
}

impl Encoder {
    /// Loads (and checksums) `model`'s weights from `models_dir`.
    pub fn load(
        model: EmbeddingModel,
        models_dir: &std::path::Path,
        device: &Device,
    ) -> Result<Self> {
        Ok(match model {
            EmbeddingModel::Ge2e => Self::Ge2e {
                net: SpeakerEncoder::load(models_dir, device)?,
                mel: MelFrontend::new(),
            },
            EmbeddingModel::CamPlus => Self::CamPlus {
                net: Box::new(CamPlus::load(models_dir, device)?),
                fbank: KaldiFbank::default(),
            },
        })
    }

    pub fn model(&self) -> EmbeddingModel {
        match self {
            Self::Ge2e { .. } => EmbeddingModel::Ge2e,
            Self::CamPlus { .. } => EmbeddingModel::CamPlus,
        }
    }

    /// Values in one frame of features.
    pub fn frame_width(&self) -> usize {
        self.model().frame_width()
    }

    /// Values in one embedding.
    pub fn embedding_dim(&self) -> usize {
        self.model().embedding_dim()
    }

    /// Appends (row-major, `frame_width` each) the features of every whole
    /// frame of `padded`: frame `i` reads `padded[160·i .. 160·i + 400]`.
    /// Returns how many frames it appended.
    pub fn frames_from_padded(&self, padded: &[f32], out: &mut Vec<f32>) -> usize {
        match self {
            Self::Ge2e { mel, .. } => {
                let mut frames = Vec::new();
                mel.frames_from_padded(padded, &mut frames);
                out.extend(frames.iter().flatten());
                frames.len()
            }
            Self::CamPlus { fbank, .. } => {
                let frames = fbank.compute(padded);
                out.extend_from_slice(&frames);
                frames.len() / fbank.config().num_mel_bins
            }
        }
    }

    /// Embeds the partials laid end to end in `frames` (each `frames_per`
    /// frames of `frame_width`): (partials, embedding_dim) on `device`, each
    /// row of unit length so that pooling and cosine distances treat both
    /// encoders alike.
    pub fn encode(&self, frames: &[f32], frames_per: usize, device: &Device) -> Result<Tensor> {
        let width = self.frame_width();
        let n = frames.len() / (frames_per * width);
        let x = Tensor::from_slice(frames, (n, frames_per, width), device)?;
        Ok(match self {
            Self::Ge2e { net, .. } => net.forward(&x)?,
            Self::CamPlus { net, .. } => {
                // CAM++ was trained on features whose mean over the
                // utterance is removed; a partial is the utterance here.
                let centred = x.broadcast_sub(&x.mean_keepdim(1)?)?;
                let e = net.forward(&centred)?;
                let norm = e
                    .sqr()?
                    .sum_keepdim(D::Minus1)?
                    .sqrt()?
                    .clamp(1e-12, f64::MAX)?;
                e.broadcast_div(&norm)?
            }
        })
    }
}
