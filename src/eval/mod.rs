//! Diarization error rate (DER) and Jaccard error rate (JER) with the
//! semantics of pyannote.metrics 4.x `DiarizationErrorRate` and
//! `JaccardErrorRate`: optimal one-to-one speaker mapping (Hungarian, on
//! co-occurrence time), `collar` as the *total* width forgiven around each
//! reference boundary, optional removal of reference overlap, and an
//! evaluation window (UEM) that defaults to the extent of both annotations.
//!
//! Mirrors pyannote.metrics 4.2.0 `diarization.py`, `identification.py` and
//! `utils.py` (`UEMSupportMixin.uemify`/`extrude`).

mod report;
mod timeline;

use std::ops::AddAssign;

use pathfinding::prelude::{Matrix, kuhn_munkres};
use serde::Serialize;

pub use report::{FileScore, ScoreReport, score_paths};
use timeline::{Span, crop, duration, intersection_duration, is_empty, subtract, support};

use crate::diarization::Turn;

/// Seconds of each kind of error. Overlapped speech counts once per speaker,
/// so `reference_s` can exceed the wall-clock time of speech.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ErrorBreakdown {
    /// Scored reference speaker time: the DER denominator.
    pub reference_s: f64,
    pub missed_s: f64,
    pub false_alarm_s: f64,
    pub confusion_s: f64,
}

impl ErrorBreakdown {
    pub fn error_s(&self) -> f64 {
        self.missed_s + self.false_alarm_s + self.confusion_s
    }

    /// DER as a fraction. With no reference speech pyannote reports 0 when
    /// there is no error either and 1 otherwise; so does this.
    pub fn der(&self) -> f64 {
        if self.reference_s > 0.0 {
            self.error_s() / self.reference_s
        } else if self.error_s() > 0.0 {
            1.0
        } else {
            0.0
        }
    }
}

impl AddAssign for ErrorBreakdown {
    fn add_assign(&mut self, other: Self) {
        self.reference_s += other.reference_s;
        self.missed_s += other.missed_s;
        self.false_alarm_s += other.false_alarm_s;
        self.confusion_s += other.confusion_s;
    }
}

/// DER components of `hypothesis` against `reference` over `uem` (start, end
/// in seconds; `None` = extent of both). `collar_s` is the total width
/// removed around every reference boundary (md-eval's 0.25 s is 0.5 here).
pub fn diarization_error(
    reference: &[Turn],
    hypothesis: &[Turn],
    uem: Option<(f64, f64)>,
    collar_s: f64,
    skip_overlap: bool,
) -> ErrorBreakdown {
    let scored = Scored::new(reference, hypothesis, uem, collar_s, skip_overlap);
    let hyp_to_ref = scored.mapping().hyp_to_ref;
    scored.identification_error(&hyp_to_ref)
}

/// JER as a fraction: the mean over scored reference speakers of
/// 1 − |ref ∩ hyp| / |ref ∪ hyp| for the mapped hypothesis speaker (1 when
/// unmapped). pyannote returns 1 when there is no reference speaker; so does
/// this.
pub fn jaccard_error(
    reference: &[Turn],
    hypothesis: &[Turn],
    uem: Option<(f64, f64)>,
    collar_s: f64,
    skip_overlap: bool,
) -> f64 {
    jaccard_components(reference, hypothesis, uem, collar_s, skip_overlap).rate()
}

/// Per-speaker JER summed, and the number of speakers; pooled over files
/// these give the set-level JER as pyannote accumulates it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct JaccardSum {
    pub error: f64,
    pub speakers: usize,
}

impl JaccardSum {
    pub fn rate(&self) -> f64 {
        if self.speakers > 0 {
            self.error / self.speakers as f64
        } else {
            1.0
        }
    }
}

pub(crate) fn jaccard_components(
    reference: &[Turn],
    hypothesis: &[Turn],
    uem: Option<(f64, f64)>,
    collar_s: f64,
    skip_overlap: bool,
) -> JaccardSum {
    let scored = Scored::new(reference, hypothesis, uem, collar_s, skip_overlap);
    let ref_to_hyp = scored.mapping().ref_to_hyp;
    let supports = |segs: &[Seg], n: usize| -> Vec<Vec<Span>> {
        let mut per_label = vec![Vec::new(); n];
        for s in segs {
            per_label[s.label].push((s.start, s.end));
        }
        per_label.into_iter().map(support).collect()
    };
    let refs = supports(&scored.reference, scored.ref_labels);
    let hyps = supports(&scored.hypothesis, scored.hyp_labels);
    let mut sum = JaccardSum::default();
    for (r, mapped) in refs.iter().zip(&ref_to_hyp) {
        sum.speakers += 1;
        sum.error += match mapped {
            None => 1.0,
            Some(h) => {
                let h = &hyps[*h];
                let both = intersection_duration(r, h);
                let union: Vec<Span> = r.iter().chain(h).copied().collect();
                let false_alarm = duration(h) - both;
                let missed = duration(r) - both;
                (false_alarm + missed) / duration(&support(union))
            }
        };
    }
    sum
}

/// One turn after cropping to the scored region, with its label as an index.
#[derive(Debug, Clone, Copy)]
struct Seg {
    start: f64,
    end: f64,
    label: usize,
}

/// Reference and hypothesis cropped to the scored region (uem minus collars
/// and, if asked, reference overlap), labels numbered in order of appearance.
struct Scored {
    reference: Vec<Seg>,
    hypothesis: Vec<Seg>,
    ref_labels: usize,
    hyp_labels: usize,
}

struct Mapping {
    hyp_to_ref: Vec<Option<usize>>,
    ref_to_hyp: Vec<Option<usize>>,
}

impl Scored {
    fn new(
        reference: &[Turn],
        hypothesis: &[Turn],
        uem: Option<(f64, f64)>,
        collar_s: f64,
        skip_overlap: bool,
    ) -> Self {
        let spans = |turns: &[Turn]| -> Vec<Span> {
            turns
                .iter()
                .map(|t| (t.start_s, t.end_s))
                .filter(|&s| !is_empty(s))
                .collect()
        };
        let ref_spans = spans(reference);
        let uem = uem.or_else(|| {
            let hyp_spans = spans(hypothesis);
            let all = ref_spans.iter().chain(&hyp_spans).copied();
            all.reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)))
        });
        let region = match uem {
            Some(uem) if !is_empty(uem) => subtract(uem, holes(&ref_spans, collar_s, skip_overlap)),
            _ => Vec::new(),
        };
        let (reference, ref_labels) = crop_turns(reference, &region);
        let (hypothesis, hyp_labels) = crop_turns(hypothesis, &region);
        Self {
            reference,
            hypothesis,
            ref_labels,
            hyp_labels,
        }
    }

    /// Optimal one-to-one mapping maximising co-occurrence time. As in
    /// pyannote's `HungarianMapper`, pairs that never co-occur stay unmapped.
    fn mapping(&self) -> Mapping {
        let (nr, nh) = (self.ref_labels, self.hyp_labels);
        let mut cooccurrence = vec![vec![0.0_f64; nh]; nr];
        for r in &self.reference {
            for h in &self.hypothesis {
                let overlap = r.end.min(h.end) - r.start.max(h.start);
                if overlap > 0.0 {
                    cooccurrence[r.label][h.label] += overlap;
                }
            }
        }
        let mut mapping = Mapping {
            hyp_to_ref: vec![None; nh],
            ref_to_hyp: vec![None; nr],
        };
        if nr == 0 || nh == 0 {
            return mapping;
        }
        // kuhn_munkres needs integers and no more rows than columns.
        let transposed = nr > nh;
        let (rows, cols) = if transposed { (nh, nr) } else { (nr, nh) };
        let weight = |row: usize, col: usize| {
            let (r, h) = if transposed { (col, row) } else { (row, col) };
            cooccurrence[r][h]
        };
        let mut micros = Matrix::new(rows, cols, 0_i64);
        for row in 0..rows {
            for col in 0..cols {
                micros[(row, col)] = (weight(row, col) * 1e6).round() as i64;
            }
        }
        let (_, assignment) = kuhn_munkres(&micros);
        for (row, col) in assignment.into_iter().enumerate() {
            if weight(row, col) > 0.0 {
                let (r, h) = if transposed { (col, row) } else { (row, col) };
                mapping.hyp_to_ref[h] = Some(r);
                mapping.ref_to_hyp[r] = Some(h);
            }
        }
        mapping
    }

    /// pyannote's `IdentificationErrorRate` on the mapped hypothesis: cut the
    /// time axis at every boundary and, in each piece with `nr` reference and
    /// `nh` hypothesis speakers of which `c` agree, count `max(0, nr − nh)`
    /// missed, `max(0, nh − nr)` false alarm and `min(nr, nh) − c` confused.
    fn identification_error(&self, hyp_to_ref: &[Option<usize>]) -> ErrorBreakdown {
        // (time, +1 start / -1 end, side, label); a mapped hypothesis label is
        // its reference label, an unmapped one gets a slot past them.
        let unmapped = self.ref_labels;
        let mut events: Vec<(f64, i32, bool, usize)> = Vec::new();
        for s in &self.reference {
            events.push((s.start, 1, true, s.label));
            events.push((s.end, -1, true, s.label));
        }
        for s in &self.hypothesis {
            let label = hyp_to_ref[s.label].unwrap_or(unmapped);
            events.push((s.start, 1, false, label));
            events.push((s.end, -1, false, label));
        }
        events.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut ref_active = vec![0_i64; self.ref_labels + 1];
        let mut hyp_active = vec![0_i64; self.ref_labels + 1];
        let mut errors = ErrorBreakdown::default();
        let mut i = 0;
        while i < events.len() {
            let now = events[i].0;
            while i < events.len() && events[i].0 == now {
                let (_, delta, is_ref, label) = events[i];
                let active = if is_ref {
                    &mut ref_active
                } else {
                    &mut hyp_active
                };
                active[label] += i64::from(delta);
                i += 1;
            }
            let Some(&(next, ..)) = events.get(i) else {
                break;
            };
            let length = next - now;
            let nr: i64 = ref_active.iter().sum();
            let nh: i64 = hyp_active.iter().sum();
            if nr == 0 && nh == 0 {
                continue;
            }
            let correct: i64 = (0..self.ref_labels)
                .map(|l| ref_active[l].min(hyp_active[l]))
                .sum();
            errors.reference_s += length * nr as f64;
            errors.missed_s += length * (nr - nh).max(0) as f64;
            errors.false_alarm_s += length * (nh - nr).max(0) as f64;
            errors.confusion_s += length * (nr.min(nh) - correct) as f64;
        }
        errors
    }
}

/// Regions removed from scoring: a collar centred on every reference
/// boundary, and every stretch where two reference turns overlap.
fn holes(reference: &[Span], collar_s: f64, skip_overlap: bool) -> Vec<Span> {
    let mut holes = Vec::new();
    if collar_s > 0.0 {
        for &(start, end) in reference {
            let half = 0.5 * collar_s;
            holes.push((start - half, start + half));
            holes.push((end - half, end + half));
        }
    }
    if skip_overlap {
        let mut sorted = reference.to_vec();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (i, a) in sorted.iter().enumerate() {
            for b in sorted[i + 1..].iter().take_while(|b| b.0 < a.1) {
                holes.push((b.0, a.1.min(b.1)));
            }
        }
    }
    holes
}

/// Crops every turn to `region` and numbers labels in order of appearance,
/// so a speaker entirely outside the scored region does not exist.
fn crop_turns(turns: &[Turn], region: &[Span]) -> (Vec<Seg>, usize) {
    let mut labels: Vec<&str> = Vec::new();
    let mut segs = Vec::new();
    for turn in turns {
        let mut pieces = crop((turn.start_s, turn.end_s), region).peekable();
        if pieces.peek().is_none() {
            continue;
        }
        let label = match labels.iter().position(|l| *l == turn.speaker) {
            Some(i) => i,
            None => {
                labels.push(&turn.speaker);
                labels.len() - 1
            }
        };
        segs.extend(pieces.map(|(start, end)| Seg { start, end, label }));
    }
    (segs, labels.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(start_s: f64, end_s: f64, speaker: &str) -> Turn {
        Turn {
            start_s,
            end_s,
            speaker: speaker.into(),
        }
    }

    #[test]
    fn mapping_handles_more_reference_than_hypothesis_speakers() {
        let reference = [t(0.0, 4.0, "a"), t(4.0, 6.0, "b"), t(6.0, 7.0, "c")];
        let hypothesis = [t(0.0, 7.0, "x")];
        let e = diarization_error(&reference, &hypothesis, None, 0.0, false);
        assert_eq!(e.reference_s, 7.0);
        assert_eq!(e.confusion_s, 3.0);
        assert_eq!(e.missed_s + e.false_alarm_s, 0.0);
    }

    #[test]
    fn holes_cover_collars_and_reference_overlap() {
        let spans = [(0.0, 4.0), (3.0, 6.0), (5.0, 5.5)];
        let mut got = holes(&spans, 0.0, true);
        got.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert_eq!(got, vec![(3.0, 4.0), (5.0, 5.5)]);
        assert_eq!(
            holes(&spans[..1], 1.0, false),
            vec![(-0.5, 0.5), (3.5, 4.5)]
        );
    }
}
