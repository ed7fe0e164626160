//! The knobs of the live recipe, sent by the app with each live session.

use serde::{Deserialize, Serialize};

/// Knobs of the live recipe. `Default` is the tuned configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LiveParams {
    /// Seconds between windows: labels come at most this late, plus compute.
    pub step_s: f64,
    /// Cosine similarity (raw GE2E space) a local speaker needs to join an
    /// existing speaker; below it, a clean one opens a new speaker.
    pub join_similarity: f32,
    /// Most speakers one live session opens.
    pub max_speakers: usize,
    /// Speakers assigned in fewer windows are merged into the nearest other
    /// one when the session ends.
    pub min_support: u32,
    /// Added to the similarity of a local speaker to a speaker, times the
    /// fraction of its already-labelled frames labelled as that speaker:
    /// consecutive windows overlap by 4 s, so voices keep their labels.
    pub continuity: f32,
    /// Gaps shorter than this inside one speaker's turn are bridged (s).
    pub bridge_s: f64,
    /// A gap in the incoming audio up to this long is filled with silence;
    /// a longer one restarts the windows after it (s).
    pub max_fill_s: f64,
}

impl Default for LiveParams {
    fn default() -> Self {
        Self {
            step_s: 1.0,
            join_similarity: 0.70,
            max_speakers: 20,
            // 8 → 10: the sample re-recorded at shifts of 0-1.2 s keeps 2
            // voices in 11 of 13 takes instead of 8 (the rest find 3), the
            // dev set is unchanged; 12 starts to lose a real voice.
            min_support: 10,
            // Tried 0.3–1.0 on the dev set: it carries mistakes forward and
            // raised confusion; only label-less new speech uses continuity.
            continuity: 0.0,
            bridge_s: 0.5,
            max_fill_s: 2.0,
        }
    }
}
