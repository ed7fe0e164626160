//! Where samples, segmentation frames and mel frames sit in time.
//!
//! The segmentation network turns 80 000 samples (5 s) into 293 frames: frame
//! `i` sees samples `[270·i, 270·i + 991)` (REFERENCE.md, "Frames"). Its time
//! stamp is the middle of that span, as pyannote's `SlidingWindow` has it.

use crate::audio::SAMPLE_RATE;

/// Samples in one segmentation window.
pub const WINDOW_SAMPLES: usize = 80_000;
/// Segmentation frames per window.
pub const WINDOW_FRAMES: usize = 293;
/// Local speakers the segmentation network tracks per window.
pub const LOCAL_SPEAKERS: usize = 3;
/// Samples between consecutive segmentation frames.
pub const FRAME_STEP: usize = 270;
/// Samples one segmentation frame sees.
pub const FRAME_SPAN: usize = 991;

/// Samples between consecutive mel frames (resemblyzer: 10 ms).
pub const MEL_HOP: usize = 160;
/// Mel frames in one GE2E partial utterance (1.6 s).
pub const PARTIAL_FRAMES: usize = 160;

/// Seconds at the middle of segmentation frame `i` of the global grid.
pub fn frame_middle_s(i: usize) -> f64 {
    (i * FRAME_STEP) as f64 / SAMPLE_RATE as f64 + FRAME_SPAN as f64 / 2.0 / SAMPLE_RATE as f64
}

/// The global frame grid's index nearest to a window start (in samples),
/// as pyannote aligns chunks when it aggregates them.
pub fn window_first_frame(start_sample: usize) -> usize {
    (start_sample as f64 / FRAME_STEP as f64).round() as usize
}

/// How many 5 s windows cover `num_samples` at `step` samples: full windows,
/// plus one zero-padded window when the last one does not end exactly at the
/// end of the audio (pyannote `Inference.slide`). Audio shorter than a window
/// gets one padded window; no audio gets none.
pub fn num_windows(num_samples: usize, step: usize) -> usize {
    if num_samples == 0 {
        return 0;
    }
    if num_samples <= WINDOW_SAMPLES {
        return 1;
    }
    let full = (num_samples - WINDOW_SAMPLES) / step + 1;
    if (num_samples - WINDOW_SAMPLES).is_multiple_of(step) {
        full
    } else {
        full + 1
    }
}

/// Frames in the global grid for a recording of `num_samples`.
pub fn total_frames(num_samples: usize) -> usize {
    if num_samples < FRAME_SPAN {
        usize::from(num_samples > 0)
    } else {
        (num_samples - FRAME_SPAN) / FRAME_STEP + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_counts_match_pyannote() {
        // sample.wav: 30 s = 480 000 samples at 0.5 s steps → 51 windows.
        assert_eq!(num_windows(480_000, 8_000), 51);
        assert_eq!(num_windows(80_000, 8_000), 1);
        assert_eq!(num_windows(80_001, 8_000), 2);
        assert_eq!(num_windows(1_000, 8_000), 1);
        assert_eq!(num_windows(0, 8_000), 0);
    }

    #[test]
    fn frame_times() {
        assert!((frame_middle_s(0) - 0.030_968_75).abs() < 1e-12);
        assert!((frame_middle_s(1) - 0.047_843_75).abs() < 1e-12);
        assert_eq!(window_first_frame(8_000), 30);
        // 80 000 samples hold the 293 frames of one window.
        assert_eq!(total_frames(WINDOW_SAMPLES), WINDOW_FRAMES);
    }
}
