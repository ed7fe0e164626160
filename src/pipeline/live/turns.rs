//! Live speaker turns: one open turn per speaker that grows while the
//! speaker goes on talking, handed out as [`LiveTurn`] updates that the app
//! replaces by id, and the clean-up of the turns when the session ends.

use serde::{Deserialize, Serialize};

use crate::diarization::Turn;

/// A speaker turn as the live view shows it: the turn with `id` grows
/// (`end_s` moves) while the speaker goes on; consumers replace by id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveTurn {
    pub id: u64,
    pub start_s: f64,
    pub end_s: f64,
    pub speaker: String,
    /// No more updates will come for this turn.
    pub closed: bool,
}

/// `SPEAKER_07` for speaker 7, like the offline labels.
pub fn label(speaker: usize) -> String {
    format!("SPEAKER_{speaker:02}")
}

pub(super) fn speaker_index(label: &str) -> Option<usize> {
    label.strip_prefix("SPEAKER_")?.parse().ok()
}

/// Joins turns of one speaker that touch or overlap (after merging speakers).
pub(super) fn merge_touching(mut turns: Vec<Turn>) -> Vec<Turn> {
    turns.sort_by(|a, b| {
        a.speaker
            .cmp(&b.speaker)
            .then(a.start_s.total_cmp(&b.start_s))
    });
    let mut out: Vec<Turn> = Vec::with_capacity(turns.len());
    for t in turns {
        match out.last_mut() {
            Some(last) if last.speaker == t.speaker && t.start_s <= last.end_s => {
                last.end_s = last.end_s.max(t.end_s);
            }
            _ => out.push(t),
        }
    }
    out
}

/// One open (still growing) turn per speaker.
pub(super) struct OpenTurns {
    bridge_s: f64,
    open: Vec<Option<LiveTurn>>,
    next_id: u64,
}

impl OpenTurns {
    pub(super) fn new(bridge_s: f64) -> Self {
        Self {
            bridge_s,
            open: Vec::new(),
            next_id: 1,
        }
    }

    /// Speech by `speaker` over `[from, to)`: grows its open turn when close
    /// enough, else closes it and opens a new one.
    pub(super) fn add(&mut self, speaker: usize, from: f64, to: f64, updates: &mut Vec<LiveTurn>) {
        if self.open.len() <= speaker {
            self.open.resize(speaker + 1, None);
        }
        match &mut self.open[speaker] {
            Some(turn) if from - turn.end_s <= self.bridge_s => {
                turn.end_s = turn.end_s.max(to);
                turn.start_s = turn.start_s.min(from);
                updates.push(turn.clone());
            }
            slot => {
                if let Some(mut old) = slot.take() {
                    old.closed = true;
                    updates.push(old);
                }
                let turn = LiveTurn {
                    id: self.next_id,
                    start_s: from,
                    end_s: to,
                    speaker: label(speaker),
                    closed: false,
                };
                self.next_id += 1;
                updates.push(turn.clone());
                *slot = Some(turn);
            }
        }
    }

    pub(super) fn close_all(&mut self, updates: &mut Vec<LiveTurn>) {
        for slot in &mut self.open {
            if let Some(mut turn) = slot.take() {
                turn.closed = true;
                updates.push(turn);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_turns_grow_bridge_and_close() {
        let mut t = OpenTurns::new(0.5);
        let mut u = Vec::new();
        t.add(0, 0.0, 1.0, &mut u);
        t.add(0, 1.3, 2.0, &mut u);
        assert_eq!(u.len(), 2);
        assert_eq!((u[1].id, u[1].start_s, u[1].end_s), (1, 0.0, 2.0));
        t.add(0, 3.0, 4.0, &mut u);
        // The old turn closes, a new one opens.
        assert!(u[2].closed && u[2].id == 1);
        assert_eq!((u[3].id, u[3].closed), (2, false));
        t.add(2, 3.5, 4.0, &mut u);
        assert_eq!(u[4].speaker, "SPEAKER_02");
        let mut closing = Vec::new();
        t.close_all(&mut closing);
        assert_eq!(closing.len(), 2);
        assert!(closing.iter().all(|c| c.closed));
    }

    #[test]
    fn merging_keeps_speakers_apart() {
        let turn = |s: f64, e: f64, who: &str| Turn {
            start_s: s,
            end_s: e,
            speaker: who.into(),
        };
        let merged = merge_touching(vec![
            turn(1.0, 2.0, "A"),
            turn(0.0, 1.0, "A"),
            turn(0.5, 3.0, "B"),
            turn(2.5, 3.0, "A"),
        ]);
        assert_eq!(merged.len(), 3);
        assert_eq!((merged[0].start_s, merged[0].end_s), (0.0, 2.0));
    }
}
