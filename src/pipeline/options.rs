//! What a caller may choose about one diarization job.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::models::embedding::EmbeddingModel;
use crate::models::segmentation::SegmentationModel;

/// The networks a job runs, written `SEG+ENC`: "2022+ge2e" (the default),
/// "3.0+ge2e", "2022+campplus" or "3.0+campplus".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ModelChoice {
    pub segmentation: SegmentationModel,
    pub embedding: EmbeddingModel,
}

impl std::str::FromStr for ModelChoice {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let (seg, enc) = s.split_once('+').ok_or_else(|| {
            Error::InvalidOption(format!(
                "models are written SEG+ENC (e.g. 3.0+ge2e), got {s:?}"
            ))
        })?;
        Ok(Self {
            segmentation: seg.trim().parse()?,
            embedding: enc.trim().parse()?,
        })
    }
}

impl std::fmt::Display for ModelChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}+{}", self.segmentation.name(), self.embedding.name())
    }
}

impl TryFrom<String> for ModelChoice {
    type Error = Error;

    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<ModelChoice> for String {
    fn from(m: ModelChoice) -> Self {
        m.to_string()
    }
}

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
    /// Step between consecutive segmentation windows, in seconds; `None`
    /// takes the tuned default.
    pub step_s: Option<f64>,
    /// The networks to run; `None` takes the pipeline's.
    #[serde(default)]
    pub models: Option<ModelChoice>,
}

impl Default for DiarizeOptions {
    fn default() -> Self {
        Self {
            speakers: SpeakerCount::Auto,
            step_s: None,
            models: None,
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

    #[test]
    fn model_choice_round_trips() {
        let choice: ModelChoice = "3.0+ge2e".parse().unwrap();
        assert_eq!(choice.segmentation, SegmentationModel::Pyannote3);
        assert_eq!(choice.to_string(), "3.0+ge2e");
        assert_eq!(ModelChoice::default().to_string(), "2022+ge2e");
        assert_eq!(
            "2022.07+ge2e".parse::<ModelChoice>().unwrap(),
            ModelChoice::default()
        );
        assert_eq!(
            "3.0+campplus".parse::<ModelChoice>().unwrap().embedding,
            crate::models::embedding::EmbeddingModel::CamPlus
        );
        for bad in ["3.0", "3.0+", "4+ge2e", "2022+xvector"] {
            assert!(bad.parse::<ModelChoice>().is_err(), "{bad}");
        }
        let json = serde_json::to_string(&choice).unwrap();
        assert_eq!(json, "\"3.0+ge2e\"");
        assert_eq!(serde_json::from_str::<ModelChoice>(&json).unwrap(), choice);
        // Options saved before the field existed still load.
        let old: DiarizeOptions =
            serde_json::from_str(r#"{"speakers":{"mode":"auto"},"step_s":null}"#).unwrap();
        assert_eq!(old.models, None);
    }
}
