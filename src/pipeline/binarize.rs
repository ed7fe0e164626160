//! One window's local speaker activities → on/off flags per frame.
//!
//! Sigmoid activities (segmentation 2022.07) go through hysteresis
//! thresholding (pyannote `Binarize` without the duration rules, per
//! window); powerset activities (3.0) were decoded hard to 0 or 1 and are
//! taken as they are, as pyannote 3.x does.

use super::frames::LOCAL_SPEAKERS;
use super::params::PipelineParams;
use crate::models::segmentation::Head;

/// One window's flags: `[frame][local speaker]`.
pub type Active = Vec<[bool; LOCAL_SPEAKERS]>;

/// (frames, 3) activities of one window, row-major, as the networks
/// `params.models` names produced them → (frames, 3) flags.
pub fn binarize(scores: &[f32], params: &PipelineParams) -> Active {
    match params.models.segmentation.head() {
        Head::Multilabel => hysteresis(scores, params.onset, params.offset),
        Head::Powerset { .. } => scores
            .chunks_exact(LOCAL_SPEAKERS)
            .map(|row| std::array::from_fn(|k| row[k] > 0.5))
            .collect(),
    }
}

/// Turns (frames, 3) activities into (frames, 3) on/off flags: a speaker
/// switches on above `onset` and off again below `offset`.
pub fn hysteresis(scores: &[f32], onset: f32, offset: f32) -> Active {
    let frames = scores.len() / LOCAL_SPEAKERS;
    let mut active = vec![[false; LOCAL_SPEAKERS]; frames];
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
    use crate::models::segmentation::SegmentationModel;
    use crate::pipeline::options::ModelChoice;

    #[test]
    fn hysteresis_keeps_state_between_thresholds() {
        let mut scores = vec![0.0f32; 293 * LOCAL_SPEAKERS];
        for (i, s) in [0.3, 0.6, 0.45, 0.45, 0.35, 0.45].iter().enumerate() {
            scores[i * LOCAL_SPEAKERS] = *s;
        }
        let active = hysteresis(&scores, 0.5, 0.4);
        assert_eq!(active.len(), 293);
        let first: Vec<bool> = active.iter().take(6).map(|r| r[0]).collect();
        assert_eq!(first, [false, true, true, true, false, false]);
        assert!(active.iter().all(|r| !r[1] && !r[2]));
    }

    #[test]
    fn powerset_activities_are_taken_as_they_are() {
        let params = PipelineParams::tuned(ModelChoice {
            segmentation: SegmentationModel::Pyannote3,
            ..ModelChoice::default()
        });
        // A lone frame on, which hysteresis at any onset above 1 would drop,
        // and two speakers at once.
        let scores = [0., 0., 0., 1., 0., 0., 0., 0., 0., 1., 0., 1.];
        let active = binarize(&scores, &params);
        assert_eq!(
            active,
            vec![
                [false, false, false],
                [true, false, false],
                [false, false, false],
                [true, false, true],
            ]
        );
        let sigmoid = PipelineParams::default();
        let soft = [0.55f32, 0., 0., 0.7, 0., 0.];
        assert_eq!(
            binarize(&soft, &sigmoid),
            vec![[false, false, false], [true, false, false]]
        );
    }
}
