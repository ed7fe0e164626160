//! Where samples, segmentation frames and mel frames sit in time.
//!
//! A segmentation window of `Geometry::window_samples` gives
//! `frames_per_window` frames: frame `i` sees samples `[270·i, 270·i + 991)`
//! (REFERENCE.md, "Frames"). Its time stamp is the middle of that span, as
//! pyannote's `SlidingWindow` has it. The numbers come from the models; this
//! module only turns them into seconds and counts.

use crate::models::segmentation::{self, Geometry, SegmentationModel};
use crate::models::{embedding, mel};

pub use crate::models::segmentation::LOCAL_SPEAKERS;

/// Samples between consecutive segmentation frames (both checkpoints).
pub const FRAME_STEP: usize = segmentation::FRAME_STEP_SAMPLES;
/// Samples one segmentation frame sees (both checkpoints).
pub const FRAME_SPAN: usize = segmentation::RECEPTIVE_FIELD_SAMPLES;

/// The live pipeline's window, segmentation 2022.07's (the live path runs
/// that checkpoint only).
const LIVE: Geometry = SegmentationModel::Pyannote2022.geometry();
/// Samples in one live segmentation window.
pub const WINDOW_SAMPLES: usize = LIVE.window_samples;
/// Segmentation frames per live window.
pub const WINDOW_FRAMES: usize = LIVE.frames_per_window;

/// The geometry the live pipeline's constants describe.
pub fn live_geometry() -> Geometry {
    LIVE
}

/// Samples between consecutive mel frames (resemblyzer: 10 ms).
pub const MEL_HOP: usize = mel::HOP_SAMPLES;
/// Mel frames in one GE2E partial utterance (1.6 s).
pub const PARTIAL_FRAMES: usize = embedding::PARTIAL_FRAMES;

/// Seconds at the middle of segmentation frame `i` of the global grid.
pub fn frame_middle_s(geo: &Geometry, i: usize) -> f64 {
    let rate = geo.sample_rate as f64;
    (i * geo.frame_step_samples) as f64 / rate + geo.receptive_field_samples as f64 / 2.0 / rate
}

/// The global frame grid's index nearest to a window start (in samples),
/// as pyannote aligns chunks when it aggregates them.
pub fn window_first_frame(geo: &Geometry, start_sample: usize) -> usize {
    (start_sample as f64 / geo.frame_step_samples as f64).round() as usize
}

/// How many windows cover `num_samples` at `step` samples: full windows,
/// plus one zero-padded window when the last one does not end exactly at the
/// end of the audio (pyannote `Inference.slide`). Audio shorter than a window
/// gets one padded window; no audio gets none.
pub fn num_windows(geo: &Geometry, num_samples: usize, step: usize) -> usize {
    let window = geo.window_samples;
    if num_samples == 0 {
        return 0;
    }
    if num_samples <= window {
        return 1;
    }
    let full = (num_samples - window) / step + 1;
    if (num_samples - window).is_multiple_of(step) {
        full
    } else {
        full + 1
    }
}

/// Frames in the global grid for a recording of `num_samples`.
pub fn total_frames(geo: &Geometry, num_samples: usize) -> usize {
    let span = geo.receptive_field_samples;
    if num_samples < span {
        usize::from(num_samples > 0)
    } else {
        (num_samples - span) / geo.frame_step_samples + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_counts_match_pyannote() {
        let geo = SegmentationModel::Pyannote2022.geometry();
        // sample.wav: 30 s = 480 000 samples at 0.5 s steps → 51 windows.
        assert_eq!(num_windows(&geo, 480_000, 8_000), 51);
        assert_eq!(num_windows(&geo, 80_000, 8_000), 1);
        assert_eq!(num_windows(&geo, 80_001, 8_000), 2);
        assert_eq!(num_windows(&geo, 1_000, 8_000), 1);
        assert_eq!(num_windows(&geo, 0, 8_000), 0);
        // 10 s windows every second: 30 s → 21 windows.
        let geo = SegmentationModel::Pyannote3.geometry();
        assert_eq!(num_windows(&geo, 480_000, 16_000), 21);
        assert_eq!(num_windows(&geo, 100_000, 16_000), 1);
    }

    #[test]
    fn frame_times() {
        let geo = SegmentationModel::Pyannote2022.geometry();
        assert!((frame_middle_s(&geo, 0) - 0.030_968_75).abs() < 1e-12);
        assert!((frame_middle_s(&geo, 1) - 0.047_843_75).abs() < 1e-12);
        assert_eq!(window_first_frame(&geo, 8_000), 30);
        // A window's samples hold its frames.
        for model in SegmentationModel::ALL {
            let geo = model.geometry();
            assert_eq!(
                total_frames(&geo, geo.window_samples),
                geo.frames_per_window
            );
        }
        assert_eq!(WINDOW_FRAMES, 293);
    }
}
