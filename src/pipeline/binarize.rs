//! Hysteresis thresholding of one window's local speaker activities
//! (pyannote `Binarize` without the duration rules, per window).

use super::frames::{LOCAL_SPEAKERS, WINDOW_FRAMES};

/// Turns (293, 3) activities into (293, 3) on/off flags: a speaker switches
/// on above `onset` and off again below `offset`.
pub fn hysteresis(
    scores: &[f32],
    onset: f32,
    offset: f32,
) -> [[bool; LOCAL_SPEAKERS]; WINDOW_FRAMES] {
    let mut active = [[false; LOCAL_SPEAKERS]; WINDOW_FRAMES];
    for k in 0..LOCAL_SPEAKERS {
        let mut on = false;
        for (i, row) in active.iter_mut().enumerate() {
            let score = scores[i * LOCAL_SPEAKERS + k];
            on = if on { score >= offset } else { score > onset };
            row[k] = on;
        }
    }
    active
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hysteresis_keeps_state_between_thresholds() {
        let mut scores = vec![0.0f32; WINDOW_FRAMES * LOCAL_SPEAKERS];
        for (i, s) in [0.3, 0.6, 0.45, 0.45, 0.35, 0.45].iter().enumerate() {
            scores[i * LOCAL_SPEAKERS] = *s;
        }
        let active = hysteresis(&scores, 0.5, 0.4);
        let first: Vec<bool> = active.iter().take(6).map(|r| r[0]).collect();
        assert_eq!(first, [false, true, true, true, false, false]);
        assert!(active.iter().all(|r| !r[1] && !r[2]));
    }
}
