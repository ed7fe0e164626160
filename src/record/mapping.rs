//! Stop means final: the live speakers, and the names the user gave them
//! while recording, carried over to the speakers of the offline pass.
//!
//! Each (live, final) pair is scored by how much of the live speaker's
//! talk time the final speaker covers plus how similar their mean
//! embeddings are; Kuhn–Munkres picks the best one-to-one matching. A live
//! speaker left over (the live pass found more voices) maps to its best
//! final speaker; a name goes to the final speaker of the matched pair, or
//! of the named live speaker with the most overlap when several compete.

use std::collections::BTreeMap;

use pathfinding::kuhn_munkres::kuhn_munkres;
use pathfinding::matrix::Matrix;
use serde::Serialize;

use crate::diarization::{Diarization, Turn};
use crate::export::SpeakerNames;
use crate::pipeline::vector::dot;

/// Weight of embedding similarity against the overlap fraction.
const EMBEDDING_WEIGHT: f64 = 0.5;

/// How live labels became final ones.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpeakerMapping {
    /// Live label → final label.
    pub live_to_final: BTreeMap<String, String>,
    /// Names for the final labels, from the names of the live ones.
    pub names: SpeakerNames,
}

/// Maps the live speakers onto the final ones; `live_names` are the names
/// given to live labels.
pub fn map_live_to_final(
    live: &Diarization,
    final_: &Diarization,
    live_names: &SpeakerNames,
) -> SpeakerMapping {
    let live_labels: Vec<&str> = live.speakers.iter().map(|s| s.speaker.as_str()).collect();
    let final_labels: Vec<&str> = final_.speakers.iter().map(|s| s.speaker.as_str()).collect();
    let mut mapping = SpeakerMapping::default();
    if live_labels.is_empty() || final_labels.is_empty() {
        return mapping;
    }
    let score: Vec<Vec<f64>> = live_labels
        .iter()
        .map(|l| {
            let talk: f64 = talk_time(&live.turns, l);
            final_labels
                .iter()
                .map(|f| {
                    let overlap = overlap_s(&live.turns, l, &final_.turns, f);
                    let fraction = if talk > 0.0 { overlap / talk } else { 0.0 };
                    let similarity = match (live.embeddings.get(*l), final_.embeddings.get(*f)) {
                        (Some(a), Some(b)) => f64::from(dot(a, b)),
                        _ => 0.0,
                    };
                    fraction + EMBEDDING_WEIGHT * similarity
                })
                .collect()
        })
        .collect();
    // kuhn_munkres wants no more rows than columns.
    let (rows, cols) = (live_labels.len(), final_labels.len());
    let matched: Vec<(usize, usize)> = if rows <= cols {
        let w = Matrix::from_fn(rows, cols, |(r, c)| weight(score[r][c]));
        let (_, assignment) = kuhn_munkres(&w);
        assignment.into_iter().enumerate().collect()
    } else {
        let w = Matrix::from_fn(cols, rows, |(c, r)| weight(score[r][c]));
        let (_, assignment) = kuhn_munkres(&w);
        assignment
            .into_iter()
            .enumerate()
            .map(|(c, r)| (r, c))
            .collect()
    };
    let mut final_of: Vec<usize> = (0..rows)
        .map(|r| {
            (0..cols)
                .max_by(|&a, &b| score[r][a].total_cmp(&score[r][b]))
                .unwrap_or(0)
        })
        .collect();
    for &(r, c) in &matched {
        final_of[r] = c;
    }
    for (r, &c) in final_of.iter().enumerate() {
        mapping
            .live_to_final
            .insert(live_labels[r].to_string(), final_labels[c].to_string());
    }
    // Names: the matched live speaker's first, else the named live speaker
    // that covers the most of that final speaker.
    for (c, final_label) in final_labels.iter().enumerate() {
        let named = |r: usize| {
            let name = live_names.display(live_labels[r]);
            (name != live_labels[r]).then_some(name)
        };
        let from_match = matched
            .iter()
            .find(|&&(_, mc)| mc == c)
            .and_then(|&(r, _)| named(r));
        let name = from_match.or_else(|| {
            (0..rows)
                .filter(|&r| final_of[r] == c && named(r).is_some())
                .max_by(|&a, &b| score[a][c].total_cmp(&score[b][c]))
                .and_then(named)
        });
        if let Some(name) = name {
            mapping.names.insert(*final_label, name);
        }
    }
    mapping
}

fn weight(score: f64) -> i64 {
    (score * 1e6).round() as i64
}

fn talk_time(turns: &[Turn], speaker: &str) -> f64 {
    turns
        .iter()
        .filter(|t| t.speaker == speaker)
        .map(Turn::duration_s)
        .sum()
}

/// Seconds during which `a` speaks in `ta` and `b` in `tb`.
fn overlap_s(ta: &[Turn], a: &str, tb: &[Turn], b: &str) -> f64 {
    let xs: Vec<&Turn> = ta.iter().filter(|t| t.speaker == a).collect();
    let ys: Vec<&Turn> = tb.iter().filter(|t| t.speaker == b).collect();
    let mut total = 0.0;
    for x in &xs {
        for y in &ys {
            total += (x.end_s.min(y.end_s) - x.start_s.max(y.start_s)).max(0.0);
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diarization::StageTimings;

    fn d(turns: &[(f64, f64, &str)]) -> Diarization {
        Diarization::new(
            "x",
            60.0,
            turns
                .iter()
                .map(|&(s, e, who)| Turn {
                    start_s: s,
                    end_s: e,
                    speaker: who.into(),
                })
                .collect(),
            "cpu",
            StageTimings::default(),
        )
    }

    #[test]
    fn names_follow_the_overlapping_final_speaker() {
        // Live heard Alice first; the final pass labelled her second.
        let live = d(&[(0.0, 10.0, "SPEAKER_00"), (10.0, 20.0, "SPEAKER_01")]);
        let fin = d(&[(0.5, 9.5, "SPEAKER_01"), (10.2, 20.0, "SPEAKER_00")]);
        let names: SpeakerNames = [("SPEAKER_00", "Alice"), ("SPEAKER_01", "Bob")]
            .into_iter()
            .collect();
        let m = map_live_to_final(&live, &fin, &names);
        assert_eq!(m.live_to_final["SPEAKER_00"], "SPEAKER_01");
        assert_eq!(m.names.display("SPEAKER_01"), "Alice");
        assert_eq!(m.names.display("SPEAKER_00"), "Bob");
    }

    #[test]
    fn extra_live_speakers_fold_into_their_best_final_speaker() {
        let live = d(&[
            (0.0, 10.0, "SPEAKER_00"),
            (10.0, 11.0, "SPEAKER_02"),
            (11.0, 20.0, "SPEAKER_01"),
        ]);
        let fin = d(&[(0.0, 10.5, "SPEAKER_00"), (10.5, 20.0, "SPEAKER_01")]);
        let names: SpeakerNames = [("SPEAKER_02", "Carol")].into_iter().collect();
        let m = map_live_to_final(&live, &fin, &names);
        assert_eq!(m.live_to_final.len(), 3);
        assert_eq!(m.live_to_final["SPEAKER_01"], "SPEAKER_01");
        // Carol's live speaker was not matched one-to-one but still names someone.
        let carol_final = &m.live_to_final["SPEAKER_02"];
        assert_eq!(m.names.display(carol_final), "Carol");
    }

    #[test]
    fn embeddings_break_ties_when_time_cannot() {
        let mut live = d(&[(0.0, 5.0, "SPEAKER_00"), (0.0, 5.0, "SPEAKER_01")]);
        let mut fin = d(&[(0.0, 5.0, "SPEAKER_00"), (0.0, 5.0, "SPEAKER_01")]);
        live.embeddings.insert("SPEAKER_00".into(), vec![1.0, 0.0]);
        live.embeddings.insert("SPEAKER_01".into(), vec![0.0, 1.0]);
        fin.embeddings.insert("SPEAKER_00".into(), vec![0.0, 1.0]);
        fin.embeddings.insert("SPEAKER_01".into(), vec![1.0, 0.0]);
        let m = map_live_to_final(&live, &fin, &SpeakerNames::new());
        assert_eq!(m.live_to_final["SPEAKER_00"], "SPEAKER_01");
    }
}
