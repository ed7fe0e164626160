//! From audio to speaker turns: sliding-window segmentation, embeddings per
//! (window, local speaker), constrained clustering and reconstruction.

pub mod options;

pub use options::{DiarizeOptions, SpeakerCount};
