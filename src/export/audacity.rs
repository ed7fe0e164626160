//! Audacity label track: `start<TAB>end<TAB>label`, seconds with six decimals.

use super::SpeakerNames;
use super::subtitles::one_line;
use crate::diarization::Diarization;

pub(crate) fn render(d: &Diarization, names: &SpeakerNames) -> String {
    let mut out = String::new();
    for turn in &d.turns {
        // A tab or newline in the label would split the row.
        out.push_str(&format!(
            "{:.6}\t{:.6}\t{}\n",
            turn.start_s.max(0.0),
            turn.end_s.max(turn.start_s).max(0.0),
            one_line(names.display(&turn.speaker)),
        ));
    }
    out
}
