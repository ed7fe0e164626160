//! CSV: `start,end,duration,speaker`, one row per turn, seconds with three
//! decimals, fields quoted as RFC 4180 requires.

use super::SpeakerNames;
use super::time::{decimal_ms, span_ms};
use crate::diarization::Diarization;

pub(crate) fn render(d: &Diarization, names: &SpeakerNames) -> String {
    let mut out = String::from("start,end,duration,speaker\n");
    for turn in &d.turns {
        let (start, end) = span_ms(turn.start_s, turn.end_s);
        out.push_str(&format!(
            "{},{},{},{}\n",
            decimal_ms(start),
            decimal_ms(end),
            decimal_ms(end - start),
            quote(names.display(&turn.speaker)),
        ));
    }
    out
}

/// RFC 4180: a field holding a comma, quote or line break is wrapped in
/// quotes, with inner quotes doubled.
fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(quote("Alice"), "Alice");
        assert_eq!(quote("Smith, J."), "\"Smith, J.\"");
        assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quote("two\nlines"), "\"two\nlines\"");
    }
}
