//! What the parameter sweeps (`tune`, `live_tune`) share: a folder of WAV +
//! RTTM pairs with each file's network output, cached in the temp folder so
//! that sweeps re-run only the cheap stages (the networks run once per file,
//! step, partial grid and networks), and the settings a `SWEEP` variable
//! asks for.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use diarist::ModelChoice;
use diarist::Turn;
use diarist::audio;
use diarist::export::read_rttm;
use diarist::models::{segmentation::Segmentation, weights};
use diarist::pipeline::{Batches, SliceSource, encoder::Encoder, infer};

/// One recording of the folder with its reference and network output.
pub struct DevFile {
    pub uri: String,
    pub reference: Vec<Turn>,
    pub inferred: infer::Inferred,
    /// Speakers in the reference.
    pub speakers: usize,
}

/// Every `*.wav` in `dir` (sorted) with the RTTM beside it, inferred by
/// `choice`'s networks at `step` samples and `grid` mel frames on the CPU.
pub fn load(
    dir: &Path,
    choice: ModelChoice,
    step: usize,
    grid: usize,
) -> anyhow::Result<Vec<DevFile>> {
    let device = candle_core::Device::Cpu;
    let models = weights::default_models_dir();
    let seg = Segmentation::load(choice.segmentation, &models, &device)?;
    let enc = Encoder::load(choice.embedding, &models, &device)?;
    let nets = infer::Networks {
        segmentation: &seg,
        encoder: &enc,
        device: &device,
    };
    let mut wavs: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wav"))
        .collect();
    wavs.sort();
    let mut files = Vec::with_capacity(wavs.len());
    for wav in wavs {
        let uri = wav
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let reference = read_rttm(&wav.with_extension("rttm"))?
            .remove(&uri)
            .unwrap_or_default();
        let speakers = reference
            .iter()
            .map(|t| t.speaker.as_str())
            .collect::<BTreeSet<_>>()
            .len();
        files.push(DevFile {
            inferred: inferred(&nets, choice, &wav, step, grid)?,
            uri,
            reference,
            speakers,
        });
    }
    Ok(files)
}

/// `base` and its variations from `SWEEP="name=v1,v2;other=v3"`: every
/// combination of the listed values, applied by `set(params, name, value)`.
pub fn sweep<P: Clone>(
    base: P,
    set: impl Fn(&mut P, &str, f64) -> anyhow::Result<()>,
) -> anyhow::Result<Vec<P>> {
    let mut settings = vec![base];
    let spec = std::env::var("SWEEP").unwrap_or_default();
    for part in spec.split(';').filter(|s| !s.is_empty()) {
        let (name, values) = part
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("SWEEP takes name=v1,v2, got {part:?}"))?;
        let current = std::mem::take(&mut settings);
        for p in current {
            for v in values.split(',') {
                let mut q = p.clone();
                set(&mut q, name, v.parse()?)?;
                settings.push(q);
            }
        }
    }
    Ok(settings)
}

/// `wav`'s inference at `step` samples and `grid` mel frames, from the
/// cache when an earlier sweep left it there.
fn inferred(
    nets: &infer::Networks<'_>,
    choice: ModelChoice,
    wav: &Path,
    step: usize,
    grid: usize,
) -> anyhow::Result<infer::Inferred> {
    let uri = wav.file_stem().unwrap_or_default().to_string_lossy();
    let geometry = nets.segmentation.geometry();
    let cache = std::env::temp_dir().join(format!(
        "diarist-tune-{uri}-{}-{}-{}-{step}-{grid}.bin",
        choice.segmentation.name(),
        choice.embedding.name(),
        geometry.window_samples
    ));
    let dim = choice.embedding.embedding_dim();
    if let Some(cached) = read_cache(&cache, geometry, step, grid, dim) {
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
    write_cache(&cache, &inferred)?;
    Ok(inferred)
}

fn write_cache(path: &Path, i: &infer::Inferred) -> anyhow::Result<()> {
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

fn read_cache(
    path: &Path,
    geometry: diarist::models::segmentation::Geometry,
    step: usize,
    grid: usize,
    embedding_dim: usize,
) -> Option<infer::Inferred> {
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
        geometry,
        step,
        activity: floats[..na].to_vec(),
        partial_grid: grid,
        partials: floats[na..].to_vec(),
        embedding_dim,
        ..Default::default()
    })
}
