//! One speaker embedding per (window, active local speaker), pooled from the
//! shared grid of GE2E partials.
//!
//! pyannote embeds each local speaker's masked waveform, which at a 90 %
//! window overlap embeds every second of speech about ten times. Here each
//! 1.6 s partial is embedded once (pass one) and a local speaker's embedding
//! is the mean of the partials inside its window where it speaks alone; when
//! none qualifies, every partial it speaks in counts, and the embedding is
//! marked unclean so it is assigned but never shapes the clusters.

use super::binarize::{Active, binarize};
use super::frames::{LOCAL_SPEAKERS, MEL_HOP, PARTIAL_FRAMES};
use super::infer::Inferred;
use super::params::PipelineParams;
use crate::models::segmentation::Geometry;

/// A local speaker of one window, with what clustering needs to know.
#[derive(Debug, Clone)]
pub struct LocalSpeaker {
    pub window: usize,
    pub local: usize,
    /// L2-normalised; `None` when no partial overlaps its speech at all.
    pub embedding: Option<Vec<f32>>,
    /// Built only from partials where this speaker talks alone.
    pub clean: bool,
    /// Frames of the window in which this speaker is active.
    pub active_frames: usize,
}

/// Binarised activities of every window, kept for reconstruction.
pub type Binarized = Vec<Active>;

pub fn binarize_all(inferred: &Inferred, params: &PipelineParams) -> Binarized {
    (0..inferred.num_windows())
        .map(|c| binarize(inferred.window(c), params))
        .collect()
}

pub fn local_speakers(
    inferred: &Inferred,
    binarized: &Binarized,
    params: &PipelineParams,
) -> Vec<LocalSpeaker> {
    let partial_step = inferred.partial_grid * MEL_HOP; // samples
    let lookup = |p: usize| (p < inferred.num_partials()).then(|| inferred.partial(p));
    let mut speakers = Vec::new();
    for (c, active) in binarized.iter().enumerate() {
        speakers.extend(window_speakers(
            c,
            c * inferred.step,
            active,
            partial_step,
            &lookup,
            params,
        ));
    }
    speakers
}

/// The local speakers of one window (`window` is its index, `window_start`
/// its first sample, `active` its binarised frames, from the segmentation
/// `params.models` names) from the partials on the grid of `partial_step`
/// samples; `partial(p)` is `None` for a partial not computed (yet).
/// Shared by the offline pipeline and the live one.
pub fn window_speakers<'a>(
    window: usize,
    window_start: usize,
    active: &[[bool; LOCAL_SPEAKERS]],
    partial_step: usize,
    partial: &dyn Fn(usize) -> Option<&'a [f32]>,
    params: &PipelineParams,
) -> Vec<LocalSpeaker> {
    let counts: [usize; LOCAL_SPEAKERS] =
        std::array::from_fn(|k| active.iter().filter(|row| row[k]).count());
    // Sized by the first partial read: every embedding has the encoder's width.
    let mut clean_sum: [Vec<f32>; LOCAL_SPEAKERS] = Default::default();
    let mut any_sum: [Vec<f32>; LOCAL_SPEAKERS] = Default::default();
    let mut clean_weight = [0f32; LOCAL_SPEAKERS];
    let mut any_weight = [0f32; LOCAL_SPEAKERS];
    let geo = params.models.segmentation.geometry();
    for w in partial_weights(&geo, window_start, active, partial_step, usize::MAX, params) {
        let Some(embedding) = partial(w.partial) else {
            continue;
        };
        for k in 0..LOCAL_SPEAKERS {
            if w.clean[k] > 0.0 {
                add_scaled(&mut clean_sum[k], embedding, w.clean[k]);
                clean_weight[k] += w.clean[k];
            }
            if w.any[k] > 0.0 {
                add_scaled(&mut any_sum[k], embedding, w.any[k]);
                any_weight[k] += w.any[k];
            }
        }
    }
    let mut speakers = Vec::new();
    for k in 0..LOCAL_SPEAKERS {
        if counts[k] == 0 {
            continue;
        }
        let (sum, clean) = if clean_weight[k] > 0.0 {
            (&clean_sum[k], true)
        } else {
            (&any_sum[k], false)
        };
        speakers.push(LocalSpeaker {
            window,
            local: k,
            embedding: normalized(sum),
            clean,
            active_frames: counts[k],
        });
    }
    speakers
}

/// Where windows and partials sit: window `c` starts at sample `c·step`,
/// partial `p` at mel frame `p·partial_grid`; partials `num_partials` and
/// later do not exist.
#[derive(Debug, Clone, Copy)]
pub struct PartialGrid {
    pub step: usize,
    pub partial_grid: usize,
    pub num_partials: usize,
}

impl PartialGrid {
    /// No window after this one holds partial `p`.
    pub fn last_window_holding(&self, p: usize) -> usize {
        p * self.partial_grid * MEL_HOP / self.step
    }
}

/// How much one partial counts for each local speaker of one window.
#[derive(Debug, Clone, Copy)]
struct PartialWeight {
    partial: usize,
    /// Fraction of the partial in which the speaker talks alone, when that
    /// makes it a clean partial for the speaker; else 0.
    clean: [f32; LOCAL_SPEAKERS],
    /// Fraction of the partial in which the speaker talks at all.
    any: [f32; LOCAL_SPEAKERS],
}

/// The partials (on a grid of `partial_step` samples, fewer than
/// `num_partials`) lying inside the window of `geo` that starts at sample
/// `window_start`, with their weights for each of its local speakers
/// (`active`: the window's binarised activities).
fn partial_weights<'a>(
    geo: &'a Geometry,
    window_start: usize,
    active: &'a [[bool; LOCAL_SPEAKERS]],
    partial_step: usize,
    num_partials: usize,
    params: &'a PipelineParams,
) -> impl Iterator<Item = PartialWeight> + 'a {
    let partial_len = PARTIAL_FRAMES * MEL_HOP;
    let first = window_start.div_ceil(partial_step);
    let last = (window_start + geo.window_samples)
        .checked_sub(partial_len)
        .map_or(0, |end| end / partial_step + 1)
        .min(num_partials);
    (first..last.max(first)).filter_map(move |p| {
        let span_start = p * partial_step;
        let frames = frames_within(
            geo,
            active.len(),
            window_start,
            span_start,
            span_start + partial_len,
        );
        if frames.is_empty() {
            return None;
        }
        let n = frames.len() as f32;
        let mut alone = [0usize; LOCAL_SPEAKERS];
        let mut with_others = [0usize; LOCAL_SPEAKERS];
        let mut talking = [0usize; LOCAL_SPEAKERS];
        for row in &active[frames] {
            let speaking = row.iter().filter(|&&a| a).count();
            for k in 0..LOCAL_SPEAKERS {
                if row[k] {
                    talking[k] += 1;
                    if speaking == 1 {
                        alone[k] += 1;
                    }
                } else if speaking > 0 {
                    with_others[k] += 1;
                }
            }
        }
        let mut weight = PartialWeight {
            partial: p,
            clean: [0.0; LOCAL_SPEAKERS],
            any: [0.0; LOCAL_SPEAKERS],
        };
        for k in 0..LOCAL_SPEAKERS {
            let alone_fraction = alone[k] as f32 / n;
            let others_fraction = with_others[k] as f32 / n;
            if alone_fraction >= params.min_clean_fraction
                && others_fraction <= params.max_other_fraction
            {
                weight.clean[k] = alone_fraction;
            }
            weight.any[k] = talking[k] as f32 / n;
        }
        Some(weight)
    })
}

/// The partials whose embeddings `local_speakers` reads for window `c`
/// (`scores`: its (frames, 3) activities): a speaker's clean partials, or when
/// it has none, every partial it talks in. No other partial changes the
/// result, so the speaker encoder can skip them (silence, overlap, turn
/// edges of speakers that have clean partials elsewhere in the window).
pub fn partials_used(
    c: usize,
    scores: &[f32],
    grid: PartialGrid,
    params: &PipelineParams,
    used: &mut Vec<usize>,
) {
    let active = binarize(scores, params);
    let partial_step = grid.partial_grid * MEL_HOP; // samples
    let geo = params.models.segmentation.geometry();
    let weights: Vec<PartialWeight> = partial_weights(
        &geo,
        c * grid.step,
        &active,
        partial_step,
        grid.num_partials,
        params,
    )
    .collect();
    for k in 0..LOCAL_SPEAKERS {
        let has_clean = weights.iter().any(|w| w.clean[k] > 0.0);
        used.extend(weights.iter().filter_map(|w| {
            let uses = if has_clean {
                w.clean[k] > 0.0
            } else {
                w.any[k] > 0.0
            };
            uses.then_some(w.partial)
        }));
    }
}

/// Frames (of the `frames` of a window of `geo` starting at sample
/// `window_start`) whose middle lies in `[from, to)` (absolute samples).
fn frames_within(
    geo: &Geometry,
    frames: usize,
    window_start: usize,
    from: usize,
    to: usize,
) -> std::ops::Range<usize> {
    let middle =
        |i: usize| window_start + i * geo.frame_step_samples + geo.receptive_field_samples / 2;
    let first = (0..frames).find(|&i| middle(i) >= from).unwrap_or(frames);
    let last = (first..frames).find(|&i| middle(i) >= to).unwrap_or(frames);
    first..last
}

fn add_scaled(sum: &mut Vec<f32>, x: &[f32], w: f32) {
    if sum.is_empty() {
        sum.resize(x.len(), 0.0);
    }
    for (s, v) in sum.iter_mut().zip(x) {
        *s += w * v;
    }
}

fn normalized(x: &[f32]) -> Option<Vec<f32>> {
    let norm = x.iter().map(|v| v * v).sum::<f32>().sqrt();
    (norm > 0.0 && norm.is_finite()).then(|| x.iter().map(|v| v / norm).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::models::segmentation::SegmentationModel;

    #[test]
    fn frames_within_a_partial() {
        let geo = SegmentationModel::Pyannote2022.geometry();
        let frames = geo.frames_per_window;
        // A partial starting with the window covers the first 1.6 s = 25 600
        // samples: frame middles 495 + 270·i < 25 600 → i ≤ 92.
        let r = frames_within(&geo, frames, 0, 0, 25_600);
        assert_eq!(r, 0..93);
        assert!(frames_within(&geo, frames, 0, 90_000, 100_000).is_empty());
        // A 10 s window holds 90 000-100 000 (frames 332-368).
        let geo = SegmentationModel::Pyannote3.geometry();
        let r = frames_within(&geo, geo.frames_per_window, 0, 90_000, 100_000);
        assert_eq!(r, 332..369);
    }
}
