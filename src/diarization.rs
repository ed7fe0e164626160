//! The result of diarizing one recording: what every exporter, the CLI and
//! the app consume.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One stretch of speech by one speaker. Turns of different speakers may
/// overlap in time (overlapped speech).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    pub start_s: f64,
    pub end_s: f64,
    /// Stable label such as `SPEAKER_00`; display names are applied at export.
    pub speaker: String,
}

impl Turn {
    pub fn duration_s(&self) -> f64 {
        self.end_s - self.start_s
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeakerStats {
    pub speaker: String,
    pub talk_time_s: f64,
    /// Fraction of all talk time (sums to 1 over speakers when anyone spoke).
    pub share: f64,
    pub turns: usize,
}

/// Wall-clock seconds spent in each stage of the pipeline.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageTimings {
    pub decode_s: f64,
    /// Mel frames for the speaker encoder. With decoding, this runs beside
    /// the networks on a GPU, so the stages may add up to more than the total.
    #[serde(default)]
    pub features_s: f64,
    pub segmentation_s: f64,
    pub embedding_s: f64,
    pub clustering_s: f64,
    pub reconstruction_s: f64,
    pub total_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diarization {
    /// Recording identifier (file stem), used as the RTTM `uri`.
    pub uri: String,
    pub duration_s: f64,
    /// Sorted by start time, then speaker.
    pub turns: Vec<Turn>,
    /// Sorted by label.
    pub speakers: Vec<SpeakerStats>,
    /// "cpu", "cuda" or "metal".
    pub backend: String,
    pub timings: StageTimings,
    /// Each speaker's mean GE2E embedding (L2-normalised), when the pipeline
    /// computed them: what carries live speakers (and their names) over to
    /// the final pass. Never exported.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub embeddings: BTreeMap<String, Vec<f32>>,
}

impl Diarization {
    /// Builds a result from raw turns: sorts them and derives the statistics.
    pub fn new(
        uri: impl Into<String>,
        duration_s: f64,
        mut turns: Vec<Turn>,
        backend: impl Into<String>,
        timings: StageTimings,
    ) -> Self {
        turns.sort_by(|a, b| {
            a.start_s
                .total_cmp(&b.start_s)
                .then_with(|| a.speaker.cmp(&b.speaker))
        });
        let speakers = speaker_stats(&turns);
        Self {
            uri: uri.into(),
            duration_s,
            turns,
            speakers,
            backend: backend.into(),
            timings,
            embeddings: BTreeMap::new(),
        }
    }

    pub fn num_speakers(&self) -> usize {
        self.speakers.len()
    }

    /// Processing time over audio duration: below 1 is faster than real time.
    pub fn real_time_factor(&self) -> f64 {
        if self.duration_s > 0.0 {
            self.timings.total_s / self.duration_s
        } else {
            0.0
        }
    }
}

pub fn speaker_stats(turns: &[Turn]) -> Vec<SpeakerStats> {
    let mut stats: Vec<SpeakerStats> = Vec::new();
    for turn in turns {
        match stats.iter_mut().find(|s| s.speaker == turn.speaker) {
            Some(s) => {
                s.talk_time_s += turn.duration_s();
                s.turns += 1;
            }
            None => stats.push(SpeakerStats {
                speaker: turn.speaker.clone(),
                talk_time_s: turn.duration_s(),
                share: 0.0,
                turns: 1,
            }),
        }
    }
    let total: f64 = stats.iter().map(|s| s.talk_time_s).sum();
    for s in &mut stats {
        s.share = if total > 0.0 {
            s.talk_time_s / total
        } else {
            0.0
        };
    }
    stats.sort_by(|a, b| a.speaker.cmp(&b.speaker));
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(start_s: f64, end_s: f64, speaker: &str) -> Turn {
        Turn {
            start_s,
            end_s,
            speaker: speaker.into(),
        }
    }

    #[test]
    fn stats_sum_talk_time_and_share() {
        let d = Diarization::new(
            "x",
            10.0,
            vec![
                turn(5.0, 6.0, "SPEAKER_01"),
                turn(0.0, 3.0, "SPEAKER_00"),
                turn(4.0, 5.0, "SPEAKER_00"),
            ],
            "cpu",
            StageTimings::default(),
        );
        assert_eq!(d.turns[0].start_s, 0.0);
        assert_eq!(d.num_speakers(), 2);
        assert_eq!(d.speakers[0].turns, 2);
        assert!((d.speakers[0].talk_time_s - 4.0).abs() < 1e-12);
        assert!((d.speakers[0].share - 0.8).abs() < 1e-12);
        assert!((d.speakers[1].share - 0.2).abs() < 1e-12);
    }
}
