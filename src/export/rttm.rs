//! RTTM, the NIST format every diarization scorer reads:
//! `SPEAKER <uri> 1 <start> <duration> <NA> <NA> <speaker> <NA> <NA>`.

use std::collections::BTreeMap;
use std::path::Path;

use super::SpeakerNames;
use super::time::{decimal_ms, span_ms};
use crate::diarization::{Diarization, Turn};
use crate::error::{Error, Result};

pub(crate) fn render(d: &Diarization, names: &SpeakerNames) -> String {
    let uri = field(&d.uri);
    let mut out = String::new();
    for turn in &d.turns {
        let (start, end) = span_ms(turn.start_s, turn.end_s);
        out.push_str(&format!(
            "SPEAKER {uri} 1 {} {} <NA> <NA> {} <NA> <NA>\n",
            decimal_ms(start),
            decimal_ms(end - start),
            field(names.display(&turn.speaker)),
        ));
    }
    out
}

/// RTTM fields are separated by whitespace, so any whitespace inside a name
/// would shift every later field.
fn field(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_whitespace() { '_' } else { c })
        .collect();
    if s.is_empty() { "<NA>".into() } else { s }
}

/// Reads the `SPEAKER` lines of an RTTM text, grouped by uri in file order.
/// Other line types (`SPKR-INFO`, ...), blank lines and `#`/`;;` comments are
/// skipped; a uri whose turns all have zero duration still gets an (empty)
/// entry, as in pyannote's loader. `path` only labels errors.
pub fn parse_rttm(text: &str, path: &Path) -> Result<BTreeMap<String, Vec<Turn>>> {
    let mut out: BTreeMap<String, Vec<Turn>> = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        let fail = |reason: String| Error::Parse {
            path: path.to_path_buf(),
            line: index + 1,
            reason,
        };
        let fields: Vec<&str> = line
            .trim_start_matches('\u{feff}')
            .split_whitespace()
            .collect();
        match fields.first() {
            None => continue,
            Some(f) if f.starts_with('#') || f.starts_with(";;") => continue,
            Some(&"SPEAKER") => {}
            Some(_) => continue,
        }
        if fields.len() < 8 {
            return Err(fail(format!(
                "expected at least 8 fields in a SPEAKER line, found {}",
                fields.len()
            )));
        }
        let number = |i: usize, what: &str| -> Result<f64> {
            match fields[i].parse::<f64>() {
                Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
                _ => Err(fail(format!(
                    "{what} {:?} is not a non-negative number of seconds",
                    fields[i]
                ))),
            }
        };
        let start_s = number(3, "start")?;
        let duration_s = number(4, "duration")?;
        let turns = out.entry(fields[1].to_string()).or_default();
        if duration_s > 0.0 {
            turns.push(Turn {
                start_s,
                end_s: start_s + duration_s,
                speaker: fields[7].to_string(),
            });
        }
    }
    Ok(out)
}

/// [`parse_rttm`] on a file.
pub fn read_rttm(path: &Path) -> Result<BTreeMap<String, Vec<Turn>>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_rttm(&text, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_comments_and_other_line_types() {
        let text = "\u{feff};; header\n\n# note\nSPKR-INFO a 1 <NA> <NA> <NA> unknown s1 <NA>\n\
                    SPEAKER a 1 0.5 1.25 <NA> <NA> s1 <NA> <NA>\n\
                    SPEAKER\tb  1 2 0 <NA> <NA> s2\n";
        let got = parse_rttm(text, Path::new("x.rttm")).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(
            got["a"],
            vec![Turn {
                start_s: 0.5,
                end_s: 1.75,
                speaker: "s1".into()
            }]
        );
        assert!(got["b"].is_empty());
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let cases = [
            ("SPEAKER a 1 0.5 1.0 <NA> <NA>\n", "at least 8 fields"),
            ("\nSPEAKER a 1 x 1.0 <NA> <NA> s <NA> <NA>\n", "start \"x\""),
            (
                "SPEAKER a 1 1 -1 <NA> <NA> s <NA> <NA>\n",
                "duration \"-1\"",
            ),
            (
                "SPEAKER a 1 1 NaN <NA> <NA> s <NA> <NA>\n",
                "duration \"NaN\"",
            ),
        ];
        for (text, reason) in cases {
            let err = parse_rttm(text, Path::new("dir/h.rttm")).unwrap_err();
            let line = text.lines().position(|l| !l.is_empty()).unwrap() + 1;
            let msg = err.to_string();
            assert!(msg.starts_with(&format!("dir/h.rttm:{line}: ")), "{msg}");
            assert!(msg.contains(reason), "{msg}");
        }
    }

    #[test]
    fn whitespace_in_names_becomes_underscores() {
        assert_eq!(field("Mary Ann\tSmith"), "Mary_Ann_Smith");
        assert_eq!(field(""), "<NA>");
    }
}
