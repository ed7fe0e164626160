//! Global speakers from local ones: average-linkage clustering of the clean
//! embeddings (kodama), then a constrained assignment of every local speaker
//! to a centroid (Kuhn–Munkres), so that two local speakers of one window
//! never become the same global speaker.

use kodama::{Method, linkage};
use pathfinding::kuhn_munkres::kuhn_munkres;
use pathfinding::matrix::Matrix;
use rayon::prelude::*;

use super::embeddings::LocalSpeaker;
use super::params::PipelineParams;
use super::vector::{dot, normalize};
use crate::pipeline::SpeakerCount;

#[derive(Debug, Clone, PartialEq)]
pub struct Clustering {
    /// Global speaker of each local speaker (same order as the input);
    /// `None` when it has no embedding.
    pub assignments: Vec<Option<usize>>,
    pub num_clusters: usize,
}

pub fn cluster(
    speakers: &[LocalSpeaker],
    count: SpeakerCount,
    params: &PipelineParams,
) -> Clustering {
    let with_embedding: Vec<usize> = (0..speakers.len())
        .filter(|&i| speakers[i].embedding.is_some())
        .collect();
    let clean: Vec<usize> = with_embedding
        .iter()
        .copied()
        .filter(|&i| speakers[i].clean)
        .collect();
    let training = if clean.is_empty() {
        with_embedding
    } else {
        clean
    };
    if training.is_empty() {
        return Clustering {
            assignments: vec![None; speakers.len()],
            num_clusters: 0,
        };
    }
    let training = evenly_spaced(&training, params.max_cluster_inputs);
    // Centring on the recording's mean embedding removes what every voice
    // in it shares (channel, room, noise), which GE2E otherwise folds into
    // every embedding, and spreads the voices apart.
    let mut mean = mean_embedding(
        training
            .iter()
            .filter_map(|&i| speakers[i].embedding.as_deref()),
    );
    mean.iter_mut().for_each(|m| *m *= params.centring);
    let centred: Vec<Option<Vec<f32>>> = speakers
        .iter()
        .map(|s| s.embedding.as_deref().map(|e| centre(e, &mean)))
        .collect();
    let vectors: Vec<&[f32]> = training
        .iter()
        .filter_map(|&i| centred[i].as_deref())
        .collect();
    let centroids = centroids(&vectors, count, params);
    let assignments = assign(speakers, &centred, &centroids);
    Clustering {
        assignments,
        num_clusters: centroids.len(),
    }
}

/// At most `max` items, spread evenly over the whole recording so that a
/// speaker heard only at the end is still represented.
fn evenly_spaced(items: &[usize], max: usize) -> Vec<usize> {
    if items.len() <= max {
        return items.to_vec();
    }
    (0..max).map(|j| items[j * items.len() / max]).collect()
}

/// Cluster centroids (L2-normalised) of the training embeddings.
fn centroids(vectors: &[&[f32]], count: SpeakerCount, params: &PipelineParams) -> Vec<Vec<f32>> {
    let n = vectors.len();
    if n == 1 {
        return vec![vectors[0].to_vec()];
    }
    let mut condensed = cosine_distances(vectors);
    let dendrogram = linkage(&mut condensed, n, Method::Average);
    let steps = dendrogram.steps();
    let (min, max) = count.bounds();
    let clamp = |k: usize| k.max(min.unwrap_or(1)).min(max.unwrap_or(n)).clamp(1, n);

    let min_size = ((params.min_cluster_share * n as f64).ceil() as usize)
        .max(params.min_cluster_size)
        .min(n);
    let labels = gather(
        steps,
        n,
        params.cluster_threshold,
        params.gather_threshold,
        min_size,
    );
    let sizes = cluster_sizes(&labels);
    let large: Vec<usize> = (0..sizes.len()).filter(|&c| sizes[c] >= min_size).collect();
    let wanted = clamp(large.len().max(1));

    let (labels, keep) = if wanted == large.len() {
        (labels, large)
    } else {
        // The requested count overrides the threshold: cut the tree there.
        let labels = cut(steps, n, wanted);
        let keep = (0..wanted).collect();
        (labels, keep)
    };
    keep.iter()
        .map(|&c| {
            let mut sum = vec![0f32; vectors[0].len()];
            for (v, _) in vectors.iter().zip(&labels).filter(|(_, l)| **l == c) {
                for (s, x) in sum.iter_mut().zip(v.iter()) {
                    *s += x;
                }
            }
            normalize(&mut sum);
            sum
        })
        .collect()
}

/// Labels for each observation: the clusters of the merges under
/// `threshold`, then of the merges up to `gather_threshold` that do not join
/// two clusters the threshold made with `min_size` observations or more.
///
/// A voice can fall apart at the threshold into pieces that are each too
/// small to count, most of all in a short recording with few embeddings
/// (centring on the mean embedding of a two-voice recording stretches
/// distances within a voice too); those pieces would then be folded into
/// the nearest voice that counts, and the voice would vanish. Merging on
/// lets the pieces find each other, or the voice they belong to, while the
/// voices the threshold found stay apart at any distance. A cluster
/// gathered from pieces counts only if it meets no other voice before
/// `gather_threshold`: pieces of a voice that counts, which happened to
/// gather among themselves first, join it rather than stand beside it.
fn gather(
    steps: &[kodama::Step<f64>],
    n: usize,
    threshold: f64,
    gather_threshold: f64,
    min_size: usize,
) -> Vec<usize> {
    // Every node of the tree (observations, then merges): its size; whether
    // it is a cluster that counts as the threshold made it (`native`); and
    // whether it was made at all (a merge left undone, or anything built on
    // one, is only a name for clusters kept apart).
    let mut sizes = vec![1usize; n];
    let mut native = vec![min_size <= 1; n];
    let mut made = vec![true; n];
    let mut parent: Vec<usize> = (0..n + steps.len()).collect();
    for (i, step) in steps.iter().enumerate() {
        let (a, b) = (step.cluster1, step.cluster2);
        let size = sizes[a] + sizes[b];
        let under_threshold = step.dissimilarity <= threshold;
        let joins = under_threshold
            || (step.dissimilarity <= gather_threshold
                && made[a]
                && made[b]
                && !(native[a] && native[b]));
        if joins {
            parent[a] = n + i;
            parent[b] = n + i;
        }
        sizes.push(size);
        native.push(if under_threshold {
            size >= min_size
        } else {
            joins && (native[a] || native[b])
        });
        made.push(joins);
    }
    labels_of_roots(&mut parent, n)
}

/// Labels `0..k` for each observation after the first `n - k` merges.
fn cut(steps: &[kodama::Step<f64>], n: usize, k: usize) -> Vec<usize> {
    let mut parent: Vec<usize> = (0..2 * n).collect();
    for (i, step) in steps.iter().take(n - k).enumerate() {
        let merged = n + i;
        parent[step.cluster1] = merged;
        parent[step.cluster2] = merged;
    }
    labels_of_roots(&mut parent, n)
}

/// Labels `0..k`, in order of first appearance, of the roots of the `n`
/// observations in the forest `parent`.
fn labels_of_roots(parent: &mut [usize], n: usize) -> Vec<usize> {
    fn root(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    let mut roots: Vec<usize> = Vec::new();
    (0..n)
        .map(|i| {
            let r = root(parent, i);
            match roots.iter().position(|&x| x == r) {
                Some(label) => label,
                None => {
                    roots.push(r);
                    roots.len() - 1
                }
            }
        })
        .collect()
}

fn cluster_sizes(labels: &[usize]) -> Vec<usize> {
    let mut sizes = vec![0; labels.iter().max().map_or(0, |m| m + 1)];
    for &l in labels {
        sizes[l] += 1;
    }
    sizes
}

/// Assigns every local speaker with an embedding to a centroid; within one
/// window, distinct local speakers get distinct centroids whenever there are
/// enough of them.
fn assign(
    speakers: &[LocalSpeaker],
    embeddings: &[Option<Vec<f32>>],
    centroids: &[Vec<f32>],
) -> Vec<Option<usize>> {
    let mut assignments = vec![None; speakers.len()];
    let mut start = 0;
    while start < speakers.len() {
        let window = speakers[start].window;
        let end = (start..speakers.len())
            .find(|&i| speakers[i].window != window)
            .unwrap_or(speakers.len());
        let members: Vec<(usize, &[f32])> = (start..end)
            .filter_map(|i| embeddings[i].as_deref().map(|e| (i, e)))
            .collect();
        let similarity = |e: &[f32], c: usize| -> i64 {
            (f64::from(dot(e, &centroids[c])) * 1e6).round() as i64
        };
        if members.len() <= centroids.len() && members.len() > 1 {
            let weights = Matrix::from_fn(members.len(), centroids.len(), |(r, c)| {
                similarity(members[r].1, c)
            });
            let (_, columns) = kuhn_munkres(&weights);
            for ((i, _), c) in members.iter().zip(columns) {
                assignments[*i] = Some(c);
            }
        } else {
            for (i, e) in &members {
                assignments[*i] = (0..centroids.len()).max_by_key(|&c| similarity(e, c));
            }
        }
        start = end;
    }
    assignments
}

fn mean_embedding<'a>(vectors: impl Iterator<Item = &'a [f32]>) -> Vec<f32> {
    let mut sum: Vec<f32> = Vec::new();
    let mut n = 0usize;
    for v in vectors {
        if sum.is_empty() {
            sum = vec![0.0; v.len()];
        }
        sum.iter_mut().zip(v).for_each(|(s, x)| *s += x);
        n += 1;
    }
    sum.iter_mut().for_each(|s| *s /= n.max(1) as f32);
    sum
}

/// `e - mean`, L2-normalised; `e` itself when the two coincide (a single
/// voice), so that nothing degenerates to zero.
fn centre(e: &[f32], mean: &[f32]) -> Vec<f32> {
    let mut v: Vec<f32> = e.iter().zip(mean).map(|(x, m)| x - m).collect();
    if dot(&v, &v) <= 1e-6 {
        v = e.to_vec();
    }
    normalize(&mut v);
    v
}

/// The condensed (row-major upper triangle) cosine distances of unit
/// vectors. Rows go to the compute pool; row i holds n − 1 − i pairs, and
/// rayon's work stealing evens out the unequal rows.
fn cosine_distances(vectors: &[&[f32]]) -> Vec<f64> {
    let n = vectors.len();
    (0..n)
        .into_par_iter()
        .flat_map_iter(|i| (i + 1..n).map(move |j| 1.0 - f64::from(dot(vectors[i], vectors[j]))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn speaker(window: usize, local: usize, embedding: &[f32]) -> LocalSpeaker {
        let mut e = embedding.to_vec();
        normalize(&mut e);
        LocalSpeaker {
            window,
            local,
            embedding: Some(e),
            clean: true,
            active_frames: 100,
        }
    }

    fn two_voices() -> Vec<LocalSpeaker> {
        let a = [1.0, 0.1, 0.0];
        let b = [0.0, 0.1, 1.0];
        (0..10)
            .flat_map(|w| [speaker(w, 0, &a), speaker(w, 1, &b)])
            .collect()
    }

    fn step(
        cluster1: usize,
        cluster2: usize,
        dissimilarity: f64,
        size: usize,
    ) -> kodama::Step<f64> {
        kodama::Step {
            cluster1,
            cluster2,
            dissimilarity,
            size,
        }
    }

    #[test]
    fn voices_the_threshold_found_never_merge_while_gathering() {
        // Two pairs under the threshold (0.5), each big enough to count (2).
        let steps = [
            step(0, 1, 0.1, 2),
            step(2, 3, 0.2, 2),
            step(6, 7, 0.9, 4),
            step(4, 8, 0.95, 5),
            step(5, 9, 0.99, 6),
        ];
        // The single observations 4 and 5 would only join the undone merge.
        assert_eq!(gather(&steps, 6, 0.5, 1.0, 2), [0, 0, 1, 1, 2, 3]);
    }

    #[test]
    fn gathered_pieces_join_the_voice_they_meet_or_else_count() {
        // 0-2 count at the threshold (min size 3); 3-5 gather past it.
        let steps = [
            step(0, 1, 0.1, 2),
            step(6, 2, 0.2, 3),
            step(3, 4, 0.6, 2),
            step(8, 5, 0.7, 3),
            step(7, 9, 0.9, 6),
        ];
        assert_eq!(gather(&steps, 6, 0.5, 1.0, 3), [0; 6]);
        assert_eq!(gather(&steps, 6, 0.5, 0.8, 3), [0, 0, 0, 1, 1, 1]);
        // Gathering off: the threshold's clusters.
        assert_eq!(gather(&steps, 6, 0.5, 0.5, 3), [0, 0, 0, 1, 2, 3]);
    }

    #[test]
    fn a_voice_split_into_small_pieces_is_gathered_not_lost() {
        // Voice B falls into two groups of 6 that stay apart at the
        // threshold (cosine distance 0.98 once centred) and are each under
        // the minimum cluster size of 8; together they are a voice.
        let a = [1.0, 0.0, 0.0, 0.0];
        let b = |w: usize| {
            if w < 6 {
                [0.0, 1.0, 0.8, 0.0]
            } else {
                [0.0, 1.0, -0.8, 0.0]
            }
        };
        let speakers: Vec<LocalSpeaker> = (0..12)
            .flat_map(|w| [speaker(w, 0, &a), speaker(w, 1, &b(w))])
            .collect();
        let c = cluster(&speakers, SpeakerCount::Auto, &PipelineParams::default());
        assert_eq!(c.num_clusters, 2);
        for pair in c.assignments.chunks(2) {
            assert_ne!(pair[0], pair[1]);
        }
        // Without gathering, voice B is lost in A.
        let no_gathering = PipelineParams {
            gather_threshold: PipelineParams::default().cluster_threshold,
            ..PipelineParams::default()
        };
        assert_eq!(
            cluster(&speakers, SpeakerCount::Auto, &no_gathering).num_clusters,
            1
        );
    }

    #[test]
    fn parallel_distances_match_the_plain_double_loop() {
        let vectors: Vec<Vec<f32>> = (0..600)
            .map(|i| {
                let mut v: Vec<f32> = (0..37)
                    .map(|d| ((i * 7 + d * 13) % 23) as f32 - 11.0)
                    .collect();
                normalize(&mut v);
                v
            })
            .collect();
        let refs: Vec<&[f32]> = vectors.iter().map(Vec::as_slice).collect();
        let mut plain = Vec::new();
        for i in 0..refs.len() {
            for j in i + 1..refs.len() {
                let d: f32 = refs[i].iter().zip(refs[j]).map(|(x, y)| x * y).sum();
                plain.push(1.0 - f64::from(d));
            }
        }
        let fast = cosine_distances(&refs);
        assert_eq!(fast.len(), plain.len());
        let worst = fast
            .iter()
            .zip(&plain)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-5, "largest difference {worst}");
    }

    #[test]
    fn finds_two_voices_and_keeps_window_speakers_apart() {
        let c = cluster(
            &two_voices(),
            SpeakerCount::Auto,
            &PipelineParams::default(),
        );
        assert_eq!(c.num_clusters, 2);
        for pair in c.assignments.chunks(2) {
            assert_ne!(pair[0], pair[1]);
        }
    }

    #[test]
    fn honours_exact_and_range_counts() {
        let speakers = two_voices();
        let params = PipelineParams::default();
        assert_eq!(
            cluster(&speakers, SpeakerCount::Exact { n: 1 }, &params).num_clusters,
            1
        );
        assert_eq!(
            cluster(&speakers, SpeakerCount::Exact { n: 3 }, &params).num_clusters,
            3
        );
        let range = SpeakerCount::Range {
            min: Some(3),
            max: Some(4),
        };
        assert_eq!(cluster(&speakers, range, &params).num_clusters, 3);
        let range = SpeakerCount::Range {
            min: None,
            max: Some(1),
        };
        assert_eq!(cluster(&speakers, range, &params).num_clusters, 1);
    }

    #[test]
    fn cut_gives_k_labels() {
        let mut condensed = vec![0.1, 0.9, 0.95, 0.92, 0.97, 0.2];
        let d = linkage(&mut condensed, 4, Method::Average);
        assert_eq!(cut(d.steps(), 4, 2), vec![0, 0, 1, 1]);
        assert_eq!(cut(d.steps(), 4, 4), vec![0, 1, 2, 3]);
        assert_eq!(cut(d.steps(), 4, 1), vec![0, 0, 0, 0]);
    }
}
