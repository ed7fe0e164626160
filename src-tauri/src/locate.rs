//! Finds what ships next to the app: the model weights and the sample
//! recording. A dev build runs from `target/debug/`, a macOS bundle from
//! `Diarist.app/Contents/MacOS/`, so both the executable's ancestors (and a
//! bundle's `Resources/`) and the repository this crate was built from are
//! searched.

use std::path::{Path, PathBuf};

/// The bundled sample recording, relative to the repository root.
pub const SAMPLE: &str = "samples/sample.wav";
/// The model weights directory, relative to the repository root; the file
/// inside identifies it.
pub const MODELS_DIR: &str = "models";
const MODELS_MARKER: &str = "segmentation-2022.07.safetensors";

/// The repository this crate was compiled in; absent on a fresh machine.
fn build_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Where to look, best first: each ancestor of the executable's directory
/// and its `Resources/` (macOS bundles), then the build's repository.
pub fn search_roots(exe: Option<&Path>) -> Vec<PathBuf> {
    let mut roots = Vec::new();
    if let Some(dir) = exe.and_then(Path::parent) {
        for ancestor in dir.ancestors() {
            roots.push(ancestor.to_path_buf());
            roots.push(ancestor.join("Resources"));
        }
    }
    roots.push(build_root());
    roots
}

/// The first `root/relative` that exists, made absolute.
pub fn find(roots: &[PathBuf], relative: &str, marker: Option<&str>) -> Option<PathBuf> {
    roots
        .iter()
        .map(|root| root.join(relative))
        .find(|p| match marker {
            Some(m) => p.join(m).is_file(),
            None => p.is_file(),
        })
        .map(|p| p.canonicalize().unwrap_or(p))
}

fn roots_here() -> Vec<PathBuf> {
    search_roots(std::env::current_exe().ok().as_deref())
}

pub fn sample() -> Option<PathBuf> {
    find(&roots_here(), SAMPLE, None)
}

pub fn models_dir() -> Option<PathBuf> {
    find(&roots_here(), MODELS_DIR, Some(MODELS_MARKER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_files_above_the_executable_before_the_build_tree() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("target").join("debug").join("diarist-app");
        std::fs::create_dir_all(exe.parent().unwrap()).unwrap();
        std::fs::create_dir_all(dir.path().join("samples")).unwrap();
        std::fs::write(dir.path().join(SAMPLE), b"RIFF").unwrap();

        let roots = search_roots(Some(&exe));
        let found = find(&roots, SAMPLE, None).unwrap();
        assert_eq!(found, dir.path().join(SAMPLE).canonicalize().unwrap());
    }

    #[test]
    fn a_mac_bundle_finds_its_resources() {
        let dir = tempfile::tempdir().unwrap();
        let contents = dir.path().join("Diarist.app").join("Contents");
        let exe = contents.join("MacOS").join("Diarist");
        let models = contents.join("Resources").join(MODELS_DIR);
        std::fs::create_dir_all(&models).unwrap();
        std::fs::write(models.join(MODELS_MARKER), b"").unwrap();

        let found = find(&search_roots(Some(&exe)), MODELS_DIR, Some(MODELS_MARKER)).unwrap();
        assert_eq!(found, models.canonicalize().unwrap());
    }

    #[test]
    fn the_dev_build_finds_the_repository_copies() {
        // No executable directory at all: only the build tree is searched.
        assert!(find(&search_roots(None), SAMPLE, None).is_some());
        assert!(find(&search_roots(None), MODELS_DIR, Some(MODELS_MARKER)).is_some());
    }
}
