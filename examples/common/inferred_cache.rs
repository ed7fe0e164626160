//! The networks' output for one file, cached in the temp folder: parameter
//! sweeps re-run only the cheap stages, so the networks run once per file,
//! step and partial grid.

use std::path::Path;

use diarist::audio;
use diarist::pipeline::{Batches, SliceSource, infer};

/// `wav`'s inference at `step` samples and `grid` mel frames, from the
/// cache when an earlier sweep left it there.
pub fn inferred(
    nets: &infer::Networks<'_>,
    wav: &Path,
    step: usize,
    grid: usize,
) -> anyhow::Result<infer::Inferred> {
    let uri = wav.file_stem().unwrap_or_default().to_string_lossy();
    let cache = std::env::temp_dir().join(format!("diarist-tune-{uri}-{step}-{grid}.bin"));
    if let Some(cached) = load(&cache, step, grid) {
        return Ok(cached);
    }
    let samples = audio::decode_file(wav)?;
    let inferred = infer::infer(
        nets,
        &mut SliceSource::new(&samples),
        step,
        grid,
        Batches {
            windows: 16,
            partials: 64,
        },
        infer::PartialSelection::All,
        &mut (),
    )?;
    save(&cache, &inferred)?;
    Ok(inferred)
}

fn save(path: &Path, i: &infer::Inferred) -> anyhow::Result<()> {
    let mut bytes = Vec::new();
    for n in [i.num_samples, i.activity.len(), i.partials.len()] {
        bytes.extend((n as u64).to_le_bytes());
    }
    for v in i.activity.iter().chain(&i.partials) {
        bytes.extend(v.to_le_bytes());
    }
    std::fs::write(path, bytes)?;
    Ok(())
}

fn load(path: &Path, step: usize, grid: usize) -> Option<infer::Inferred> {
    let bytes = std::fs::read(path).ok()?;
    let word = |k: usize| -> Option<usize> {
        let raw = bytes.get(8 * k..8 * k + 8)?.try_into().ok()?;
        Some(u64::from_le_bytes(raw) as usize)
    };
    let (num_samples, na, np) = (word(0)?, word(1)?, word(2)?);
    let floats: Vec<f32> = bytes
        .get(24..)?
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    (floats.len() == na + np).then(|| infer::Inferred {
        num_samples,
        step,
        activity: floats[..na].to_vec(),
        partial_grid: grid,
        partials: floats[na..].to_vec(),
        ..Default::default()
    })
}
