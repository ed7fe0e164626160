//! What the engine thread runs: the [`Diarizer`] contract and the job it is
//! given. The pipeline defines the contract and implements it; the runtime
//! only drives it (loads it on a device, runs jobs, drops it to free the
//! device), so nothing here knows about threads or backends.

use std::path::{Path, PathBuf};

use candle_core::Device;
use serde::{Deserialize, Serialize};

use super::live::{LiveState, LiveTurn};
use super::{Batches, DiarizeOptions, Pipeline};
use crate::diarization::Diarization;
use crate::error::{Error, Result};
use crate::models::segmentation::SegmentationModel;
use crate::progress::Progress;

/// What the engine thread loads on a device and runs jobs with. The real
/// implementation is the [`Pipeline`]; tests use small stand-ins.
///
/// An implementation is created, used and dropped on the engine thread
/// only, so it need not be `Send`. Dropping it must free everything it
/// holds on the device: that is how safe mode and fallback release the GPU.
pub trait Diarizer: Sized {
    fn load(models_dir: &Path, device: &Device) -> Result<Self>;

    /// Runs one job. `batch_size`: windows per network call, chosen by the
    /// engine from free memory. `progress.update` must be called between
    /// batches; when it returns `Break`, return `Error::Cancelled`. Nothing
    /// allocated for the job may outlive the call except the result.
    fn diarize(
        &mut self,
        job: &JobSpec,
        batch_size: usize,
        progress: &mut dyn Progress,
    ) -> Result<Diarization>;

    /// Live sessions: runs the networks on whatever audio `state` holds and
    /// returns the turns that appeared or grew. Called on the engine thread
    /// between audio arrivals; `state` lives outside the diarizer, so after
    /// a GPU failure the same call is re-run on a CPU reload. Diarizers
    /// without a live mode keep the default, which refuses.
    fn live_advance(&mut self, state: &mut LiveState) -> Result<Vec<LiveTurn>> {
        let _ = state;
        Err(Error::InvalidOption("this engine has no live mode".into()))
    }
}

/// One file to diarize and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    pub path: PathBuf,
    pub options: DiarizeOptions,
}

impl JobSpec {
    /// A job with the default options.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            options: DiarizeOptions::default(),
        }
    }
}

/// Partials per GE2E call for each window per segmentation call: a partial
/// costs about a tenth of a window's memory, and bigger batches keep the
/// matrix products efficient.
const PARTIALS_PER_WINDOW_BATCH: usize = 4;

impl Diarizer for Pipeline {
    fn load(models_dir: &Path, device: &Device) -> Result<Self> {
        Pipeline::load(models_dir, device)
    }

    fn diarize(
        &mut self,
        job: &JobSpec,
        batch_size: usize,
        progress: &mut dyn Progress,
    ) -> Result<Diarization> {
        // The engine sizes `batch_size` for 2022.07's 5 s windows
        // (`runtime::memory`); a longer window costs proportionally more.
        let models = job.options.models.unwrap_or(self.params().models);
        let window = models.segmentation.geometry().window_samples;
        let reference = SegmentationModel::Pyannote2022.geometry().window_samples;
        let batches = Batches {
            windows: (batch_size * reference / window).max(1),
            partials: batch_size * PARTIALS_PER_WINDOW_BATCH,
        };
        self.diarize_file(&job.path, &job.options, batches, progress)
    }

    fn live_advance(&mut self, state: &mut LiveState) -> Result<Vec<LiveTurn>> {
        state.advance(&self.networks()?)
    }
}
