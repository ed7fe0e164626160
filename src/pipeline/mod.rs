//! From audio to speaker turns, the pyannote speaker-diarization recipe:
//! sliding-window segmentation, one embedding per (window, local speaker),
//! constrained clustering, and reconstruction into overlapping turns.

pub mod binarize;
pub mod clustering;
pub mod embeddings;
mod feed;
pub mod frames;
pub mod infer;
pub mod online;
pub mod options;
pub mod params;
pub mod reconstruct;
pub mod streaming;
pub(crate) mod vector;

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use candle_core::Device;

pub use infer::{Batches, PartialSelection, SampleSource, SliceSource};
pub use options::{DiarizeOptions, ModelChoice, SpeakerCount};
pub use params::PipelineParams;

use crate::audio::{AudioStream, SAMPLE_RATE};
use crate::diarization::{Diarization, StageTimings, Turn};
use crate::error::{Error, Result};
use crate::models::embedding::SpeakerEncoder;
use crate::models::mel::MelFrontend;
use crate::models::segmentation::{Segmentation, SegmentationModel};
use crate::progress::{Progress, Stage};

/// The networks on one device, plus the recipe's parameters.
pub struct Pipeline {
    models_dir: PathBuf,
    /// Each segmentation checkpoint, in `SegmentationModel::ALL` order,
    /// loaded when a job first asks for it (the parameters' one at load).
    segmentations: [OnceLock<Segmentation>; SegmentationModel::ALL.len()],
    encoder: SpeakerEncoder,
    mel: MelFrontend,
    device: Device,
    params: PipelineParams,
}

impl Pipeline {
    /// Loads (and checksums) the default networks' weight files from
    /// `models_dir` onto `device`.
    pub fn load(models_dir: &Path, device: &Device) -> Result<Self> {
        let pipeline = Self {
            models_dir: models_dir.to_path_buf(),
            segmentations: Default::default(),
            encoder: SpeakerEncoder::load(models_dir, device)?,
            mel: MelFrontend::new(),
            device: device.clone(),
            params: PipelineParams::default(),
        };
        pipeline.segmentation(pipeline.params.models.segmentation)?;
        Ok(pipeline)
    }

    /// Runs with `params` (and the networks they name, loaded now) unless a
    /// job asks for other networks.
    pub fn with_params(mut self, params: PipelineParams) -> Result<Self> {
        self.segmentation(params.models.segmentation)?;
        self.params = params;
        Ok(self)
    }

    /// `model`, loaded on first use.
    fn segmentation(&self, model: SegmentationModel) -> Result<&Segmentation> {
        let index = SegmentationModel::ALL
            .iter()
            .position(|&m| m == model)
            .unwrap_or_default();
        let slot = &self.segmentations[index];
        if let Some(loaded) = slot.get() {
            return Ok(loaded);
        }
        let loaded = Segmentation::load(model, &self.models_dir, &self.device)?;
        Ok(slot.get_or_init(|| loaded))
    }

    /// The parameters a job that runs `models` uses: the pipeline's own when
    /// they are for those networks, else those networks' tuned ones.
    fn params_for(&self, models: ModelChoice) -> Cow<'_, PipelineParams> {
        if models == self.params.models {
            Cow::Borrowed(&self.params)
        } else {
            Cow::Owned(PipelineParams::tuned(models))
        }
    }

    pub fn params(&self) -> &PipelineParams {
        &self.params
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The parameters' networks, for code that drives them window by
    /// window (the live pipeline).
    pub fn networks(&self) -> Result<infer::Networks<'_>> {
        self.networks_for(self.params.models)
    }

    fn networks_for(&self, models: ModelChoice) -> Result<infer::Networks<'_>> {
        Ok(infer::Networks {
            segmentation: self.segmentation(models.segmentation)?,
            encoder: &self.encoder,
            mel: &self.mel,
            device: &self.device,
        })
    }

    /// "cpu", "cuda" or "metal".
    pub fn backend_name(&self) -> &'static str {
        match self.device {
            Device::Cpu => "cpu",
            Device::Cuda(_) => "cuda",
            Device::Metal(_) => "metal",
        }
    }

    /// Diarizes an audio file, decoding it as it goes.
    pub fn diarize_file(
        &self,
        path: &Path,
        options: &DiarizeOptions,
        batches: Batches,
        progress: &mut dyn Progress,
    ) -> Result<Diarization> {
        let started = Instant::now();
        if progress.update(Stage::Decode, 0, 1).is_break() {
            return Err(Error::Cancelled);
        }
        let mut stream = AudioStream::open(path)?;
        let uri = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "audio".into());
        let mut result = self.diarize_source(&uri, &mut stream, options, batches, progress)?;
        result.timings.total_s = started.elapsed().as_secs_f64();
        Ok(result)
    }

    /// Diarizes 16 kHz mono samples already in memory.
    pub fn diarize_samples(
        &self,
        uri: &str,
        samples: &[f32],
        options: &DiarizeOptions,
        batches: Batches,
        progress: &mut dyn Progress,
    ) -> Result<Diarization> {
        self.diarize_source(
            uri,
            &mut SliceSource::new(samples),
            options,
            batches,
            progress,
        )
    }

    /// The whole recipe over any sample source.
    pub fn diarize_source(
        &self,
        uri: &str,
        source: &mut dyn SampleSource,
        options: &DiarizeOptions,
        batches: Batches,
        progress: &mut dyn Progress,
    ) -> Result<Diarization> {
        let started = Instant::now();
        let params = self.params_for(options.models.unwrap_or(self.params.models));
        let params = params.as_ref();
        let window_s = params.models.segmentation.geometry().window_s();
        let step_s = options.step_s.unwrap_or(params.step_s);
        if !(0.1..=window_s).contains(&step_s) {
            return Err(Error::InvalidOption(format!(
                "step must be between 0.1 and {window_s} seconds (the window), got {step_s}"
            )));
        }
        let step = (step_s * SAMPLE_RATE as f64).round() as usize;
        let batches = Batches {
            windows: batches.windows.max(1),
            partials: batches.partials.max(1),
        };
        let nets = self.networks_for(params.models)?;
        let inferred = infer::infer(
            &nets,
            source,
            step,
            params.partial_grid,
            batches,
            infer::PartialSelection::UsedBy(params),
            progress,
        )?;
        let mut timings = StageTimings {
            decode_s: inferred.decode_s,
            features_s: inferred.features_s,
            segmentation_s: inferred.segmentation_s,
            embedding_s: inferred.embedding_s,
            ..StageTimings::default()
        };

        let stage_started = Instant::now();
        checkpoint(progress, Stage::Embedding)?;
        let binarized = embeddings::binarize_all(&inferred, params);
        let speakers = embeddings::local_speakers(&inferred, &binarized, params);
        timings.embedding_s += stage_started.elapsed().as_secs_f64();

        let stage_started = Instant::now();
        checkpoint(progress, Stage::Clustering)?;
        let clustering = clustering::cluster(&speakers, options.speakers, params);
        timings.clustering_s = stage_started.elapsed().as_secs_f64();

        let stage_started = Instant::now();
        checkpoint(progress, Stage::Reconstruction)?;
        let raw = reconstruct::reconstruct(&inferred, &binarized, &speakers, &clustering, params);
        let (turns, order) = label_by_first_appearance(raw);
        timings.reconstruction_s = stage_started.elapsed().as_secs_f64();
        timings.total_s = started.elapsed().as_secs_f64();

        let duration_s = inferred.num_samples as f64 / SAMPLE_RATE as f64;
        let mut result = Diarization::new(uri, duration_s, turns, self.backend_name(), timings);
        result.embeddings = speaker_embeddings(&speakers, &clustering, &order);
        Ok(result)
    }
}

fn checkpoint(progress: &mut dyn Progress, stage: Stage) -> Result<()> {
    match progress.update(stage, 0, 1) {
        std::ops::ControlFlow::Continue(()) => Ok(()),
        std::ops::ControlFlow::Break(()) => Err(Error::Cancelled),
    }
}

/// Each labelled speaker's mean raw embedding (clean ones when it has
/// any), L2-normalised; `order[i]` is the cluster of `SPEAKER_{i}`.
fn speaker_embeddings(
    speakers: &[embeddings::LocalSpeaker],
    clustering: &clustering::Clustering,
    order: &[usize],
) -> std::collections::BTreeMap<String, Vec<f32>> {
    let mut out = std::collections::BTreeMap::new();
    for (label, &cluster) in order.iter().enumerate() {
        let members = || {
            speakers
                .iter()
                .zip(&clustering.assignments)
                .filter(move |(_, a)| **a == Some(cluster))
                .filter_map(|(s, _)| s.embedding.as_deref().map(|e| (e, s.clean)))
        };
        let any_clean = members().any(|(_, clean)| clean);
        let mut sum = vec![0f32; infer::EMBEDDING_DIM];
        for (e, _) in members().filter(|(_, clean)| *clean || !any_clean) {
            sum.iter_mut().zip(e).for_each(|(s, x)| *s += x);
        }
        let norm = sum.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 && norm.is_finite() {
            sum.iter_mut().for_each(|x| *x /= norm);
            out.insert(format!("SPEAKER_{label:02}"), sum);
        }
    }
    out
}

/// `SPEAKER_00` is whoever speaks first, `SPEAKER_01` the next new voice...
/// Also returns the cluster behind each label, in label order.
fn label_by_first_appearance(mut raw: Vec<reconstruct::RawTurn>) -> (Vec<Turn>, Vec<usize>) {
    raw.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    let mut order: Vec<usize> = Vec::new();
    let turns = raw
        .into_iter()
        .map(|t| {
            let label = match order.iter().position(|&c| c == t.cluster) {
                Some(i) => i,
                None => {
                    order.push(t.cluster);
                    order.len() - 1
                }
            };
            Turn {
                start_s: t.start_s,
                end_s: t.end_s,
                speaker: format!("SPEAKER_{label:02}"),
            }
        })
        .collect();
    (turns, order)
}

/// Partials per GE2E call for each window per segmentation call: a partial
/// costs about a tenth of a window's memory, and bigger batches keep the
/// matrix products efficient.
const PARTIALS_PER_WINDOW_BATCH: usize = 4;

impl crate::runtime::Diarizer for Pipeline {
    fn load(models_dir: &Path, device: &Device) -> Result<Self> {
        Pipeline::load(models_dir, device)
    }

    fn diarize(
        &mut self,
        job: &crate::runtime::JobSpec,
        batch_size: usize,
        progress: &mut dyn Progress,
    ) -> Result<Diarization> {
        // The engine sizes `batch_size` for 2022.07's 5 s windows
        // (`runtime::memory`); a longer window costs proportionally more.
        let models = job.options.models.unwrap_or(self.params.models);
        let window = models.segmentation.geometry().window_samples;
        let reference = SegmentationModel::Pyannote2022.geometry().window_samples;
        let batches = Batches {
            windows: (batch_size * reference / window).max(1),
            partials: batch_size * PARTIALS_PER_WINDOW_BATCH,
        };
        self.diarize_file(&job.path, &job.options, batches, progress)
    }

    fn live_advance(
        &mut self,
        state: &mut streaming::LiveState,
    ) -> Result<Vec<streaming::LiveTurn>> {
        state.advance(&self.networks()?)
    }
}
