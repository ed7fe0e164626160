//! Progress reporting that can also stop the work, in the spirit of
//! pyannote's `hook(step, completed, total)` plus ripgrep's `Sink`: the
//! pipeline calls `update` between batches, and `Break` cancels the job.

use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};

/// The stages of one diarization job, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Decode,
    Segmentation,
    Embedding,
    Clustering,
    Reconstruction,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Decode => "decoding",
            Stage::Segmentation => "segmentation",
            Stage::Embedding => "embedding",
            Stage::Clustering => "clustering",
            Stage::Reconstruction => "reconstruction",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

pub trait Progress {
    /// Reports `done` of `total` units of `stage`. Returning `Break` makes the
    /// pipeline stop at the next batch boundary with `Error::Cancelled`.
    fn update(&mut self, stage: Stage, done: usize, total: usize) -> ControlFlow<()>;
}

/// Progress that nobody watches.
impl Progress for () {
    fn update(&mut self, _: Stage, _: usize, _: usize) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
}

impl<F: FnMut(Stage, usize, usize) -> ControlFlow<()>> Progress for F {
    fn update(&mut self, stage: Stage, done: usize, total: usize) -> ControlFlow<()> {
        self(stage, done, total)
    }
}
