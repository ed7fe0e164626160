//! Edits the user makes to a finished result: renaming is only a display
//! name (applied at export), merging relabels turns and recomputes the
//! statistics.

use diarist::export::SpeakerNames;
use diarist::{Diarization, Turn};

use crate::error::CommandError;

/// Relabels every turn of `from` as `into`, joins turns of `into` that now
/// overlap or touch (so one person's speech reads as one turn again), and
/// recomputes the speaker statistics.
pub fn merge_speakers(
    d: &Diarization,
    from: &str,
    into: &str,
) -> Result<Diarization, CommandError> {
    if from == into {
        return Err(CommandError::new(
            "invalid-option",
            "cannot merge a speaker into itself",
        ));
    }
    for label in [from, into] {
        if !d.speakers.iter().any(|s| s.speaker == label) {
            return Err(CommandError::new(
                "invalid-option",
                format!("no speaker {label} in this result"),
            ));
        }
    }
    let mut merged: Vec<Turn> = Vec::new();
    let mut into_turns: Vec<Turn> = Vec::new();
    for turn in &d.turns {
        if turn.speaker == from || turn.speaker == into {
            into_turns.push(Turn {
                speaker: into.to_string(),
                ..turn.clone()
            });
        } else {
            merged.push(turn.clone());
        }
    }
    into_turns.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    let mut joined: Vec<Turn> = Vec::new();
    for turn in into_turns {
        match joined.last_mut() {
            Some(last) if turn.start_s <= last.end_s => {
                last.end_s = last.end_s.max(turn.end_s);
            }
            _ => joined.push(turn),
        }
    }
    merged.extend(joined);
    Ok(Diarization::new(
        d.uri.clone(),
        d.duration_s,
        merged,
        d.backend.clone(),
        d.timings.clone(),
    ))
}

/// The names after a merge: `from`'s name goes away, and `into` inherits it
/// only if it had none of its own.
pub fn merge_names(names: &SpeakerNames, from: &str, into: &str) -> SpeakerNames {
    let from_name = names
        .iter()
        .find(|(l, _)| *l == from)
        .map(|(_, n)| n.to_string());
    let mut out: SpeakerNames = names
        .iter()
        .filter(|(l, _)| *l != from)
        .map(|(l, n)| (l.to_string(), n.to_string()))
        .collect();
    if let Some(name) = from_name
        && out.display(into) == into
    {
        out.insert(into, name);
    }
    out
}

#[cfg(test)]
mod tests {
    use diarist::StageTimings;

    use super::*;

    fn turn(start_s: f64, end_s: f64, speaker: &str) -> Turn {
        Turn {
            start_s,
            end_s,
            speaker: speaker.into(),
        }
    }

    fn result() -> Diarization {
        Diarization::new(
            "talk",
            20.0,
            vec![
                turn(0.0, 4.0, "SPEAKER_00"),
                turn(3.5, 6.0, "SPEAKER_01"),
                turn(6.0, 8.0, "SPEAKER_00"),
                turn(9.0, 12.0, "SPEAKER_02"),
                turn(12.5, 15.0, "SPEAKER_01"),
            ],
            "cpu",
            StageTimings::default(),
        )
    }

    #[test]
    fn merging_relabels_joins_and_recounts() {
        let d = merge_speakers(&result(), "SPEAKER_01", "SPEAKER_00").unwrap();
        assert_eq!(d.num_speakers(), 2);
        // 0–4, 3.5–6 and 6–8 become one turn; 12.5–15 stays apart.
        assert_eq!(
            d.turns,
            vec![
                turn(0.0, 8.0, "SPEAKER_00"),
                turn(9.0, 12.0, "SPEAKER_02"),
                turn(12.5, 15.0, "SPEAKER_00"),
            ]
        );
        let s0 = &d.speakers[0];
        assert_eq!((s0.speaker.as_str(), s0.turns), ("SPEAKER_00", 2));
        assert!((s0.talk_time_s - 10.5).abs() < 1e-9);
        assert!((d.speakers[1].share - 3.0 / 13.5).abs() < 1e-9);
    }

    #[test]
    fn merging_refuses_unknown_or_identical_speakers() {
        assert!(merge_speakers(&result(), "SPEAKER_00", "SPEAKER_00").is_err());
        assert!(merge_speakers(&result(), "SPEAKER_09", "SPEAKER_00").is_err());
    }

    #[test]
    fn names_follow_a_merge() {
        let names: SpeakerNames = [("SPEAKER_01", "Bea"), ("SPEAKER_02", "Cy")]
            .into_iter()
            .collect();
        let merged = merge_names(&names, "SPEAKER_01", "SPEAKER_00");
        assert_eq!(merged.display("SPEAKER_00"), "Bea");
        assert_eq!(merged.display("SPEAKER_01"), "SPEAKER_01");
        let kept = merge_names(&names, "SPEAKER_01", "SPEAKER_02");
        assert_eq!(kept.display("SPEAKER_02"), "Cy");
    }
}
