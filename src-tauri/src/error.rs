//! The error every command returns: a stable `code` for the UI's logic and a
//! `message` for people, as in Tauri's updater plugin and vibe's
//! `CommandError`. Engine errors keep the engine's own wording.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct CommandError {
    pub code: &'static str,
    pub message: String,
}

impl CommandError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// A path the user never dropped or picked: the page asked for a file it
    /// was not given.
    pub fn not_granted(path: &std::path::Path) -> Self {
        Self::new(
            "not-granted",
            format!(
                "{} was not dropped or picked in this session",
                path.display()
            ),
        )
    }

    pub fn unknown_job(job: u64) -> Self {
        Self::new("unknown-job", format!("no finished result for job {job}"))
    }
}

impl From<diarist::Error> for CommandError {
    fn from(e: diarist::Error) -> Self {
        Self::new(diarist::runtime::error_code(&e), e.to_string())
    }
}

impl From<tauri::Error> for CommandError {
    fn from(e: tauri::Error) -> Self {
        Self::new("shell", e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_keep_their_code_and_wording() {
        let e = CommandError::from(diarist::Error::InvalidOption("two is not three".into()));
        assert_eq!(e.code, "invalid-option");
        assert_eq!(e.message, "invalid option: two is not three");
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["code"], "invalid-option");
    }
}
