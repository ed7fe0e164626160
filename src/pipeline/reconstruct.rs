//! From clustered windows back to one timeline: each global speaker's
//! activity is summed over the overlapping windows, the number of speakers
//! talking in each frame is estimated from the local binarised activities,
//! and that many of the most active speakers are kept, so overlapped speech
//! gives overlapping turns (pyannote `SpeakerDiarization.reconstruct` +
//! `to_diarization`).

use super::clustering::Clustering;
use super::embeddings::{Binarized, LocalSpeaker};
use super::frames::{LOCAL_SPEAKERS, frame_middle_s, total_frames, window_first_frame};
use super::infer::Inferred;
use super::params::PipelineParams;

/// One speaker's stretch of speech, before labelling.
#[derive(Debug, Clone, PartialEq)]
pub struct RawTurn {
    pub start_s: f64,
    pub end_s: f64,
    pub cluster: usize,
}

pub fn reconstruct(
    inferred: &Inferred,
    binarized: &Binarized,
    speakers: &[LocalSpeaker],
    clustering: &Clustering,
    params: &PipelineParams,
) -> Vec<RawTurn> {
    let k = clustering.num_clusters;
    let geo = &inferred.geometry;
    let frames = total_frames(geo, inferred.num_samples);
    if k == 0 || frames == 0 {
        return Vec::new();
    }
    let mut activity = vec![0f32; frames * k];
    let mut count_sum = vec![0f32; frames];
    let mut windows_seen = vec![0u16; frames];

    // Local → global map per window; speakers are grouped by window.
    let mut local_to_global = vec![[None; LOCAL_SPEAKERS]; binarized.len()];
    for (s, g) in speakers.iter().zip(&clustering.assignments) {
        local_to_global[s.window][s.local] = *g;
    }
    for (c, active) in binarized.iter().enumerate() {
        let scores = inferred.window(c);
        let first = window_first_frame(geo, c * inferred.step);
        let map = &local_to_global[c];
        for i in 0..geo.frames_per_window {
            let f = first + i;
            if f >= frames {
                break;
            }
            count_sum[f] += active[i].iter().filter(|&&a| a).count() as f32;
            windows_seen[f] += 1;
            // Several local speakers of one window may share a global one
            // (more locals than clusters): that speaker takes their max.
            let mut best = [0f32; LOCAL_SPEAKERS];
            let mut globals = [usize::MAX; LOCAL_SPEAKERS];
            let mut used = 0;
            for (local, g) in map.iter().enumerate() {
                let Some(g) = *g else { continue };
                let score = scores[i * LOCAL_SPEAKERS + local];
                match globals[..used].iter().position(|&x| x == g) {
                    Some(j) => best[j] = best[j].max(score),
                    None => {
                        globals[used] = g;
                        best[used] = score;
                        used += 1;
                    }
                }
            }
            for j in 0..used {
                activity[f * k + globals[j]] += best[j];
            }
        }
    }

    // Keep the `count` most active speakers of each frame.
    let mut on = vec![false; frames * k];
    let mut order: Vec<usize> = Vec::with_capacity(k);
    for f in 0..frames {
        if windows_seen[f] == 0 {
            continue;
        }
        let count = ((count_sum[f] / f32::from(windows_seen[f])).round() as usize).min(k);
        if count == 0 {
            continue;
        }
        let row = &activity[f * k..(f + 1) * k];
        order.clear();
        order.extend(0..k);
        order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
        for &g in order.iter().take(count) {
            if row[g] > 0.0 {
                on[f * k + g] = true;
            }
        }
    }

    let duration_s = inferred.num_samples as f64 / geo.sample_rate as f64;
    let half_step = geo.frame_step_samples as f64 / geo.sample_rate as f64 / 2.0;
    let mut turns = Vec::new();
    for g in 0..k {
        let mut runs: Vec<(f64, f64)> = Vec::new();
        let mut f = 0;
        while f < frames {
            if !on[f * k + g] {
                f += 1;
                continue;
            }
            let first = f;
            while f < frames && on[f * k + g] {
                f += 1;
            }
            let start = (frame_middle_s(geo, first) - half_step).max(0.0);
            let end = (frame_middle_s(geo, f - 1) + half_step).min(duration_s);
            match runs.last_mut() {
                Some(last) if start - last.1 < params.min_duration_off => last.1 = end,
                _ => runs.push((start, end)),
            }
        }
        turns.extend(
            runs.into_iter()
                .filter(|(s, e)| e - s >= params.min_duration_on && e > s)
                .map(|(start_s, end_s)| RawTurn {
                    start_s,
                    end_s,
                    cluster: g,
                }),
        );
    }
    turns
}
