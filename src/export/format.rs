//! The export formats and their names on the command line and on disk.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// One output format. Every format carries the same turns; they differ only in
/// which tool reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    /// NIST Rich Transcription Time Marked: what scorers and pyannote read.
    Rttm,
    /// The whole result with statistics and timings, for programs.
    Json,
    /// One row per turn, for spreadsheets.
    Csv,
    /// SubRip subtitles: the speaker's name shown while they talk.
    Srt,
    /// WebVTT subtitles with voice spans, for HTML5 players.
    Vtt,
    /// An Audacity label track (File > Import > Labels).
    Audacity,
}

impl Format {
    /// Every format, in the order `write_all` callers usually want them listed.
    pub const ALL: [Format; 6] = [
        Format::Rttm,
        Format::Json,
        Format::Csv,
        Format::Srt,
        Format::Vtt,
        Format::Audacity,
    ];

    /// File extension without the dot. Audacity imports labels from plain
    /// `.txt` files, so that is what it gets.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Rttm => "rttm",
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Srt => "srt",
            Format::Vtt => "vtt",
            Format::Audacity => "txt",
        }
    }

    /// The canonical name accepted by `FromStr` and printed by `Display`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Rttm => "rttm",
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Srt => "srt",
            Format::Vtt => "vtt",
            Format::Audacity => "audacity",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = Error;

    /// Case-insensitive; `webvtt` is accepted for `vtt`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        if wanted == "webvtt" {
            return Ok(Format::Vtt);
        }
        Format::ALL
            .into_iter()
            .find(|f| f.name() == wanted)
            .ok_or_else(|| {
                let known: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
                Error::InvalidOption(format!(
                    "unknown export format {s:?}; expected one of {}",
                    known.join(", ")
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_from_str() {
        for f in Format::ALL {
            assert_eq!(f.to_string().parse::<Format>().unwrap(), f);
        }
        assert_eq!("WebVTT".parse::<Format>().unwrap(), Format::Vtt);
        assert_eq!(" RTTM ".parse::<Format>().unwrap(), Format::Rttm);
    }

    #[test]
    fn unknown_format_lists_the_known_ones() {
        let err = "docx".parse::<Format>().unwrap_err().to_string();
        assert!(err.contains("\"docx\""), "{err}");
        assert!(err.contains("rttm, json, csv, srt, vtt, audacity"), "{err}");
    }
}
