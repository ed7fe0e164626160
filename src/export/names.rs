//! Display names for speaker labels, applied only at export so the engine's
//! labels stay stable while the user renames people.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Maps labels such as `SPEAKER_00` to names such as `Alice`. A label with no
/// entry (or a blank one) is shown as itself, so the empty map exports labels.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SpeakerNames(BTreeMap<String, String>);

impl SpeakerNames {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets (or replaces) the name shown for `label`.
    pub fn insert(&mut self, label: impl Into<String>, name: impl Into<String>) {
        self.0.insert(label.into(), name.into());
    }

    /// The name to show for `label`: its given name, else the label itself.
    pub fn display<'a>(&'a self, label: &'a str) -> &'a str {
        match self.0.get(label) {
            Some(name) if !name.trim().is_empty() => name,
            _ => label,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The explicit `(label, name)` entries, sorted by label.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(l, n)| (l.as_str(), n.as_str()))
    }
}

impl From<BTreeMap<String, String>> for SpeakerNames {
    fn from(map: BTreeMap<String, String>) -> Self {
        Self(map)
    }
}

impl<L: Into<String>, N: Into<String>> FromIterator<(L, N)> for SpeakerNames {
    fn from_iter<I: IntoIterator<Item = (L, N)>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .map(|(l, n)| (l.into(), n.into()))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unnamed_and_blank_labels_show_as_themselves() {
        let names: SpeakerNames = [("SPEAKER_00", "Alice"), ("SPEAKER_01", "  ")]
            .into_iter()
            .collect();
        assert_eq!(names.display("SPEAKER_00"), "Alice");
        assert_eq!(names.display("SPEAKER_01"), "SPEAKER_01");
        assert_eq!(names.display("SPEAKER_02"), "SPEAKER_02");
    }

    #[test]
    fn serializes_as_a_plain_map() {
        let names: SpeakerNames = [("SPEAKER_00", "Alice")].into_iter().collect();
        let json = serde_json::to_string(&names).unwrap();
        assert_eq!(json, r#"{"SPEAKER_00":"Alice"}"#);
        assert_eq!(serde_json::from_str::<SpeakerNames>(&json).unwrap(), names);
    }
}
