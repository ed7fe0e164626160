//! JSON: the whole [`Diarization`] with display names applied, plus the
//! label → name map so a program can still tell the labels apart.

use std::collections::BTreeMap;

use serde::Serialize;

use super::SpeakerNames;
use crate::diarization::Diarization;

#[derive(Serialize)]
struct Export<'a> {
    #[serde(flatten)]
    diarization: Diarization,
    /// Every label in the result, mapped to the name shown for it.
    speaker_names: BTreeMap<&'a str, &'a str>,
}

pub(crate) fn render(d: &Diarization, names: &SpeakerNames) -> String {
    let mut named = d.clone();
    for turn in &mut named.turns {
        turn.speaker = names.display(&turn.speaker).to_string();
    }
    for stats in &mut named.speakers {
        stats.speaker = names.display(&stats.speaker).to_string();
    }
    let labels = d.speakers.iter().map(|s| s.speaker.as_str());
    let labels = labels.chain(d.turns.iter().map(|t| t.speaker.as_str()));
    let speaker_names = labels.map(|l| (l, names.display(l))).collect();
    let export = Export {
        diarization: named,
        speaker_names,
    };
    // Strings, numbers and string-keyed maps cannot fail to serialize
    // (serde_json writes non-finite floats as null).
    let mut text = serde_json::to_string_pretty(&export).expect("plain data always serializes");
    text.push('\n');
    text
}
