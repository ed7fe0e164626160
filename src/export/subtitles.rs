//! Subtitle tracks that show who is talking: SubRip (`.srt`) and WebVTT.
//! Overlapping turns become overlapping cues, which players stack.

use super::SpeakerNames;
use super::time::{clock, span_ms};
use crate::diarization::Diarization;

pub(crate) fn render_srt(d: &Diarization, names: &SpeakerNames) -> String {
    let mut out = String::new();
    for (i, turn) in d.turns.iter().enumerate() {
        let (start, end) = span_ms(turn.start_s, turn.end_s);
        out.push_str(&format!(
            "{}\n{} --> {}\n{}\n\n",
            i + 1,
            clock(start, ','),
            clock(end, ','),
            one_line(names.display(&turn.speaker)),
        ));
    }
    out
}

pub(crate) fn render_vtt(d: &Diarization, names: &SpeakerNames) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for turn in &d.turns {
        let (start, end) = span_ms(turn.start_s, turn.end_s);
        let name = escape_vtt(&one_line(names.display(&turn.speaker)));
        out.push_str(&format!(
            "{} --> {}\n<v {name}>{name}\n\n",
            clock(start, '.'),
            clock(end, '.'),
        ));
    }
    out
}

/// A blank line ends a cue, so a name must stay on one line.
pub(crate) fn one_line(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// WebVTT cue text is markup: `<`, `>` and `&` must be character references
/// (this also keeps `-->` out of the text).
fn escape_vtt(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vtt_markup_is_escaped() {
        assert_eq!(escape_vtt("A&B <x> -->"), "A&amp;B &lt;x&gt; --&gt;");
        assert_eq!(one_line("a\nb\tc"), "a b c");
    }
}
