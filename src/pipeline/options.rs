//! What a caller may choose about one diarization job.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How many speakers to look for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum SpeakerCount {
    /// Let clustering decide.
    #[default]
    Auto,
    Exact {
        n: usize,
    },
    /// Either bound may be open.
    Range {
        min: Option<usize>,
        max: Option<usize>,
    },
}

impl SpeakerCount {
    /// Builds the count from the CLI's `--num-speakers` / `--min-speakers` /
    /// `--max-speakers`, rejecting contradictions.
    pub fn from_flags(
        exact: Option<usize>,
        min: Option<usize>,
        max: Option<usize>,
    ) -> Result<Self> {
        match (exact, min, max) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(Error::InvalidOption(
                "give either an exact number of speakers or a min/max range, not both".into(),
            )),
            (Some(0), _, _) => Err(Error::InvalidOption(
                "the number of speakers must be at least 1".into(),
            )),
            (Some(n), None, None) => Ok(Self::Exact { n }),
            (None, None, None) => Ok(Self::Auto),
            (None, min, max) => {
                if let (Some(lo), Some(hi)) = (min, max)
                    && lo > hi
                {
                    return Err(Error::InvalidOption(format!(
                        "min speakers ({lo}) is larger than max speakers ({hi})"
                    )));
                }
                if max == Some(0) {
                    return Err(Error::InvalidOption(
                        "max speakers must be at least 1".into(),
                    ));
                }
                Ok(Self::Range { min, max })
            }
        }
    }

    /// Inclusive bounds, with `None` for open ends.
    pub fn bounds(self) -> (Option<usize>, Option<usize>) {
        match self {
            Self::Auto => (None, None),
            Self::Exact { n } => (Some(n), Some(n)),
            Self::Range { min, max } => (min, max),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiarizeOptions {
    pub speakers: SpeakerCount,
    /// Step between consecutive 5 s segmentation windows, in seconds; `None`
    /// takes the tuned default.
    pub step_s: Option<f64>,
}

impl Default for DiarizeOptions {
    fn default() -> Self {
        Self {
            speakers: SpeakerCount::Auto,
            step_s: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speaker_flags() {
        assert_eq!(
            SpeakerCount::from_flags(None, None, None).unwrap(),
            SpeakerCount::Auto
        );
        assert_eq!(
            SpeakerCount::from_flags(Some(3), None, None).unwrap(),
            SpeakerCount::Exact { n: 3 }
        );
        assert_eq!(
            SpeakerCount::from_flags(None, Some(2), None)
                .unwrap()
                .bounds(),
            (Some(2), None)
        );
        assert!(SpeakerCount::from_flags(Some(2), Some(1), None).is_err());
        assert!(SpeakerCount::from_flags(None, Some(4), Some(2)).is_err());
        assert!(SpeakerCount::from_flags(Some(0), None, None).is_err());
    }
}
