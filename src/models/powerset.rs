//! Powerset classes → per-speaker (multilabel) activities.
//!
//! pyannote segmentation-3.0 does not score each local speaker on its own:
//! it scores every *set* of at most `max_per_frame` of its `speakers` local
//! speakers, one class per set, and its output is a log-softmax over those
//! classes. The class order is pyannote's (`pyannote.audio.utils.powerset`,
//! learned from, not copied): sets by size, then lexicographically, so for 3
//! speakers and at most 2 per frame: {}, {0}, {1}, {2}, {0,1}, {0,2}, {1,2}.
//!
//! Decoding is "hard", as pyannote's diarization pipeline does it: each
//! frame takes its most likely class, whose members are active (1) and the
//! others silent (0).

use candle_core::{D, Device, Result, Tensor};

/// The class ↔ speaker-set correspondence, with its 0/1 mapping matrix on
/// the device the network runs on.
#[derive(Debug, Clone)]
pub struct Powerset {
    speakers: usize,
    /// Members of each class, in class order.
    sets: Vec<Vec<usize>>,
    /// (classes, speakers): 1 where the speaker belongs to the class.
    mapping: Tensor,
}

impl Powerset {
    /// Every set of at most `max_per_frame` of `speakers` speakers.
    pub fn new(speakers: usize, max_per_frame: usize, device: &Device) -> Result<Self> {
        let mut sets = Vec::new();
        for size in 0..=max_per_frame.min(speakers) {
            push_combinations(speakers, size, &mut Vec::new(), 0, &mut sets);
        }
        let mut matrix = vec![0f32; sets.len() * speakers];
        for (class, set) in sets.iter().enumerate() {
            for &k in set {
                matrix[class * speakers + k] = 1.0;
            }
        }
        let mapping = Tensor::from_vec(matrix, (sets.len(), speakers), device)?;
        Ok(Self {
            speakers,
            sets,
            mapping,
        })
    }

    pub fn num_classes(&self) -> usize {
        self.sets.len()
    }

    pub fn num_speakers(&self) -> usize {
        self.speakers
    }

    /// The local speakers active in `class`.
    pub fn members(&self, class: usize) -> &[usize] {
        &self.sets[class]
    }

    /// (classes, speakers) 0/1 matrix.
    pub fn mapping(&self) -> &Tensor {
        &self.mapping
    }

    /// Hard decoding: scores (batch, frames, classes), log-probabilities or
    /// any monotonic function of them → (batch, frames, speakers) of 0.0 and
    /// 1.0, the members of each frame's most likely class.
    pub fn to_multilabel(&self, scores: &Tensor) -> Result<Tensor> {
        let (batch, frames, classes) = scores.dims3()?;
        if classes != self.num_classes() {
            candle_core::bail!(
                "powerset: expected {} classes, got shape {:?}",
                self.num_classes(),
                scores.shape()
            )
        }
        let best = scores.argmax(D::Minus1)?.flatten_all()?; // (batch·frames,) u32
        // Row `best` of the mapping is that class's multilabel vector.
        self.mapping
            .index_select(&best, 0)? // (batch·frames, speakers)
            .reshape((batch, frames, self.speakers))
    }
}

/// Appends to `out` every `size`-subset of `start..n` extending `prefix`,
/// in lexicographic order (`itertools.combinations`).
fn push_combinations(
    n: usize,
    size: usize,
    prefix: &mut Vec<usize>,
    start: usize,
    out: &mut Vec<Vec<usize>>,
) {
    if prefix.len() == size {
        out.push(prefix.clone());
        return;
    }
    for k in start..n {
        prefix.push(k);
        push_combinations(n, size, prefix, k + 1, out);
        prefix.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_in_pyannotes_order() {
        let p = Powerset::new(3, 2, &Device::Cpu).unwrap();
        assert_eq!(p.num_classes(), 7);
        let sets: Vec<&[usize]> = (0..7).map(|c| p.members(c)).collect();
        let want: [&[usize]; 7] = [&[], &[0], &[1], &[2], &[0, 1], &[0, 2], &[1, 2]];
        assert_eq!(sets, want);
        assert_eq!(
            p.mapping().to_vec2::<f32>().unwrap(),
            vec![
                vec![0., 0., 0.],
                vec![1., 0., 0.],
                vec![0., 1., 0.],
                vec![0., 0., 1.],
                vec![1., 1., 0.],
                vec![1., 0., 1.],
                vec![0., 1., 1.],
            ]
        );
        // Sizes other than pyannote's released ones.
        assert_eq!(Powerset::new(4, 2, &Device::Cpu).unwrap().num_classes(), 11);
        assert_eq!(Powerset::new(2, 3, &Device::Cpu).unwrap().num_classes(), 4);
    }

    #[test]
    fn hard_decoding_keeps_the_most_likely_set() {
        let p = Powerset::new(3, 2, &Device::Cpu).unwrap();
        // Two windows of two frames; log-probabilities need not be normalised.
        let ln = |x: f32| x.ln();
        let frames = [
            [0.7, 0.1, 0.1, 0.05, 0.02, 0.02, 0.01], // silence
            [0.1, 0.1, 0.1, 0.1, 0.1, 0.45, 0.05],   // speakers 0 and 2
            [0.1, 0.2, 0.3, 0.35, 0.02, 0.02, 0.01], // speaker 2 alone
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],     // speakers 1 and 2
        ];
        let flat: Vec<f32> = frames.iter().flatten().map(|&x| ln(x)).collect();
        let scores = Tensor::from_vec(flat, (2, 2, 7), &Device::Cpu).unwrap();
        let got = p.to_multilabel(&scores).unwrap().to_vec3::<f32>().unwrap();
        assert_eq!(
            got,
            vec![
                vec![vec![0., 0., 0.], vec![1., 0., 1.]],
                vec![vec![0., 0., 1.], vec![0., 1., 1.]],
            ]
        );
        let wrong = Tensor::zeros((1, 2, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
        assert!(p.to_multilabel(&wrong).is_err());
    }
}
