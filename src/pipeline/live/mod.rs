//! Live diarization: the offline recipe, one window at a time, as audio
//! arrives (while a meeting is recorded).
//!
//! Every `step` seconds the last 5 s of audio go through the segmentation
//! network (the first windows, before 5 s exist, are zero-padded at the end
//! as pyannote pads a short file). GE2E partials are computed once on the
//! same 0.4 s grid as offline, and each local speaker's embedding is pooled
//! from them by the offline code (`embeddings::window_speakers`). Local
//! speakers are matched to running centroids ([`clusters`]), and the newest
//! `step` seconds of the window become speaker turns ([`turns`]), which grow
//! as the same speaker goes on talking.
//!
//! [`state`] holds one session and drives the networks, [`params`] its
//! knobs. The engine thread runs a session through
//! [`Diarizer::live_advance`](crate::pipeline::Diarizer::live_advance).

pub mod clusters;
pub mod params;
pub mod state;
pub mod turns;

pub use clusters::LiveClusters;
pub use params::LiveParams;
pub use state::{FinishedLive, LiveState};
pub use turns::LiveTurn;
