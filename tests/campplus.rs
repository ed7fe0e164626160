//! Parity of the Kaldi fbank front end and the CAM++ encoder with
//! torchaudio 2.11.1 + PyTorch 2.15.0 (float32, CPU).
//!
//! `fixtures/fbank_sample.npz` holds torchaudio's fbank of two clips of
//! `samples/sample.wav` (int16 / 32768), its Povey window and mel banks;
//! `fixtures/campplus_sample.npz` the embeddings of four clips (3D-Speaker's
//! model: no ReLU after the last BatchNorm) from their mean-normalised fbank;
//! `fixtures/campplus_sample_clip0.npz` the intermediates of clip 0. They were
//! written by `scripts/reference/make_fixtures_v2.py` (versions and clip
//! choice in `fixtures/README-v2.md`).

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use diarist::models::campplus::{CamPlus, EMBEDDING_DIM, Stage, feature_frames, weighted_stats};
use diarist::models::fbank::{
    KaldiFbank, KaldiFbankConfig, N_MELS, kaldi_mel_banks, subtract_time_mean,
};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct Fixture(HashMap<String, Tensor>);

impl Fixture {
    fn load(name: &str) -> Result<Self> {
        let path = root().join("tests/fixtures").join(name);
        let entries = Tensor::read_npz(&path).with_context(|| path.display().to_string())?;
        Ok(Self(entries.into_iter().collect()))
    }

    fn get(&self, key: &str) -> Result<&Tensor> {
        self.0
            .get(key)
            .with_context(|| format!("fixture has no {key}"))
    }

    fn flat(&self, key: &str) -> Result<Vec<f32>> {
        Ok(self
            .get(key)?
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1()?)
    }

    fn range(&self, key: &str) -> Result<(usize, usize)> {
        let r: Vec<u32> = self.get(key)?.flatten_all()?.to_vec1()?;
        Ok((r[0] as usize, r[1] as usize))
    }
}

/// sample.wav as float32 = int16 / 32768, the reference's input.
fn sample_wav() -> Result<Vec<f32>> {
    let mut reader = hound::WavReader::open(root().join("samples/sample.wav"))?;
    let spec = reader.spec();
    anyhow::ensure!(spec.sample_rate == 16_000 && spec.channels == 1);
    reader
        .samples::<i16>()
        .map(|s| Ok(f32::from(s?) / 32768.0))
        .collect()
}

fn model() -> Result<CamPlus> {
    Ok(CamPlus::load(&root().join("models"), &Device::Cpu)?)
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

fn flat(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.flatten_all()?.to_vec1()?)
}

/// `(frames, 80)` fixture features as a `(1, frames, 80)` input.
fn input(fixture: &Fixture, key: &str) -> Result<Tensor> {
    Ok(fixture.get(key)?.to_dtype(DType::F32)?.unsqueeze(0)?)
}

/// Log energies agree to 1e-4 except on a few bins barely above the floor:
/// torchaudio runs its FFT in float32, whose rounding (relative to the whole
/// frame) is ~1e-4 of the power of a bin some 90 dB below the frame's loudest
/// (log energy about −15 in a speech frame). The fixture's own float64
/// reimplementation differs from torchaudio by 2.9e-4 there; this port, whose
/// float32 pre-processing matches torchaudio's, by 2.2e-4.
const FBANK_TOL: f32 = 1e-4;
/// Log energy below which a bin counts as one of those quiet ones.
const QUIET_BIN: f32 = -14.0;
/// Bound on every bin, quiet ones included.
const FBANK_MAX: f32 = 3e-4;
/// Network outputs agree to 1e-4 absolute (values up to ~10).
const NET_TOL: f32 = 1e-4;

#[test]
fn window_and_mel_banks_match_torchaudio() -> Result<()> {
    let fixture = Fixture::load("fbank_sample.npz")?;
    let banks: Vec<f32> = kaldi_mel_banks(&KaldiFbankConfig::default()).concat();
    let err = max_abs_diff(&banks, &fixture.flat("mel_banks")?);
    println!("mel banks: max abs diff {err:e}");
    // torch's vectorised float32 log is off by an ulp on a few FFT bins' mel
    // values, which moves the two triangles through that bin by ~1e-5.
    assert!(err <= 2e-5, "mel banks differ by {err}");

    let window = KaldiFbank::default().window().to_vec();
    let err = max_abs_diff(&window, &fixture.flat("povey_window")?);
    println!("Povey window: max abs diff {err:e}");
    // One float32 ulp: torch's cos and pow are vectorised approximations.
    assert!(err <= 1.2e-7, "window differs by {err}");
    Ok(())
}

#[test]
fn fbank_matches_torchaudio() -> Result<()> {
    let fixture = Fixture::load("fbank_sample.npz")?;
    let wav = sample_wav()?;
    let fbank = KaldiFbank::default();
    for k in 0..2 {
        let (start, end) = fixture.range(&format!("clip{k}_range"))?;
        let samples = &wav[start..end];
        assert_eq!(
            samples,
            fixture.flat(&format!("clip{k}_samples"))?.as_slice()
        );

        let mut got = fbank.compute(samples);
        let want = fixture.flat(&format!("clip{k}_fbank"))?;
        assert_eq!(
            got.len() / N_MELS,
            fbank.config().frame_count(samples.len())
        );
        let floor = f32::EPSILON.ln();
        let floored = want.iter().filter(|&&x| x == floor).count();
        let err = max_abs_diff(&got, &want);
        let (mut err_above, mut over_tol) = (0.0f32, 0usize);
        for (a, b) in got.iter().zip(&want) {
            let d = (a - b).abs();
            if *b >= QUIET_BIN {
                err_above = err_above.max(d);
            }
            over_tol += usize::from(d > FBANK_TOL);
        }
        println!(
            "clip {k}: {} frames ({floored} values on the floor): fbank max abs diff {err:e}, \
             {err_above:e} on bins ≥ {QUIET_BIN}; {over_tol} of {} values over {FBANK_TOL:e}",
            got.len() / N_MELS,
            got.len()
        );
        assert!(err <= FBANK_MAX, "clip {k}: fbank differs by {err}");
        assert!(
            err_above <= FBANK_TOL,
            "clip {k}: fbank differs by {err_above} above {QUIET_BIN}"
        );
        assert!(
            over_tol * 1000 <= got.len(),
            "clip {k}: {over_tol} values over {FBANK_TOL}"
        );

        subtract_time_mean(&mut got, N_MELS);
        let want = fixture.flat(&format!("clip{k}_fbank_meannorm"))?;
        let err = max_abs_diff(&got, &want);
        println!("clip {k}: mean-normalised fbank max abs diff {err:e}");
        assert!(
            err <= FBANK_MAX,
            "clip {k}: mean-normalised fbank differs by {err}"
        );
    }
    Ok(())
}

/// Clip 0 stage by stage, from the reference's own fbank.
#[test]
fn intermediates_match_pytorch() -> Result<()> {
    let fixture = Fixture::load("campplus_sample_clip0.npz")?;
    let model = model()?;
    let xs = input(&fixture, "fbank_meannorm")?;
    let mut checked = Vec::new();
    let features = model.frame_features_traced(&xs, |stage, t| {
        let key = match stage {
            Stage::Head => "head",
            Stage::Tdnn => "tdnn",
            Stage::Block(1) => "block1",
            Stage::Transit(1) => "transit1",
            Stage::Output => "out_nonlinear",
            _ => return Ok(()),
        };
        let want = fixture.get(key).map_err(candle_core::Error::wrap)?;
        assert_eq!(t.dims(), want.dims(), "{key}");
        let err = max_abs_diff(
            &flat(t).map_err(candle_core::Error::wrap)?,
            &want.flatten_all()?.to_vec1()?,
        );
        checked.push((key, err));
        Ok(())
    })?;
    for (key, err) in &checked {
        println!("clip 0 {key:>13}: max abs diff {err:e}");
    }
    assert_eq!(checked.len(), 5);
    for (key, err) in &checked {
        assert!(*err <= NET_TOL, "{key} differs by {err}");
    }

    let (b, _, t) = features.dims3()?;
    let stats = weighted_stats(&features, &Tensor::ones((b, t), DType::F32, &Device::Cpu)?)?;
    let err = max_abs_diff(&flat(&stats)?, &fixture.flat("stats")?);
    println!("clip 0         stats: max abs diff {err:e}");
    assert!(err <= NET_TOL, "stats differ by {err}");

    let embedding = model.forward(&xs)?;
    let err = max_abs_diff(&flat(&embedding)?, &fixture.flat("embedding")?);
    println!("clip 0     embedding: max abs diff {err:e}");
    assert!(err <= NET_TOL, "embedding differs by {err}");
    Ok(())
}

/// The four clips from the reference's fbank: embeddings and cosines.
#[test]
fn embeddings_match_pytorch() -> Result<()> {
    let fixture = Fixture::load("campplus_sample.npz")?;
    let model = model()?;
    let want = fixture.get("embeddings")?.to_vec2::<f32>()?;
    let mut got = Vec::new();
    let (mut worst_abs, mut worst_cos) = (0.0f32, 1.0f32);
    for (k, want) in want.iter().enumerate() {
        let xs = input(&fixture, &format!("clip{k}_fbank_meannorm"))?;
        let emb = flat(&model.forward(&xs)?)?;
        assert_eq!(emb.len(), EMBEDDING_DIM);
        let err = max_abs_diff(&emb, want);
        let cos = cosine(&emb, want);
        println!(
            "clip {k} ({} frames): embedding max abs diff {err:e}, cosine to reference {cos:.9}",
            xs.dim(1)?
        );
        worst_abs = worst_abs.max(err);
        worst_cos = worst_cos.min(cos);
        got.push(emb);
    }
    println!("embeddings: max abs diff {worst_abs:e}, min cosine {worst_cos:.9}");
    assert!(worst_abs <= NET_TOL, "embeddings differ by {worst_abs}");
    assert!(worst_cos >= 1.0 - 1e-6, "cosine to reference {worst_cos}");

    let cos_want = fixture.get("cosine")?.to_vec2::<f32>()?;
    let mut worst = 0.0f32;
    for i in 0..4 {
        for j in 0..4 {
            worst = worst.max((cosine(&got[i], &got[j]) - cos_want[i][j]).abs());
        }
    }
    println!("cosine matrix: max abs diff {worst:e}");
    assert!(worst <= 1e-5, "cosines differ by {worst}");
    // Clips 0 and 2 are one speaker, 1 and 3 the other.
    assert!(cosine(&got[0], &got[2]) > cosine(&got[0], &got[1]));
    assert!(cosine(&got[1], &got[3]) > cosine(&got[1], &got[2]));
    Ok(())
}

/// Raw samples → our fbank → our network, against the reference embeddings.
#[test]
fn samples_to_embeddings_match_pytorch() -> Result<()> {
    let fixture = Fixture::load("campplus_sample.npz")?;
    let model = model()?;
    let wav = sample_wav()?;
    let fbank = KaldiFbank::default();
    let ranges = fixture.get("clip_ranges")?.to_vec2::<u32>()?;
    let want = fixture.get("embeddings")?.to_vec2::<f32>()?;
    for (k, range) in ranges.iter().enumerate() {
        let mut features = fbank.compute(&wav[range[0] as usize..range[1] as usize]);
        subtract_time_mean(&mut features, N_MELS);
        let frames = features.len() / N_MELS;
        let xs = Tensor::from_vec(features, (1, frames, N_MELS), &Device::Cpu)?;
        let emb = flat(&model.forward(&xs)?)?;
        let err = max_abs_diff(&emb, &want[k]);
        let cos = cosine(&emb, &want[k]);
        println!("clip {k} from samples: embedding max abs diff {err:e}, cosine {cos:.9}");
        assert!(cos >= 1.0 - 1e-6, "clip {k}: cosine to reference {cos}");
    }
    Ok(())
}

/// `forward` is `pool(frame_features, ones)`; a batch equals its items; a
/// 0/1 mask pools exactly the frames it keeps.
#[test]
fn pooling_and_batching_agree() -> Result<()> {
    let fixture = Fixture::load("campplus_sample.npz")?;
    let model = model()?;
    let a = input(&fixture, "clip0_fbank_meannorm")?;
    let b = input(&fixture, "clip1_fbank_meannorm")?;
    let batch = Tensor::cat(&[&a, &b], 0)?; // both 298 frames

    let features = model.frame_features(&batch)?;
    assert_eq!(features.dims(), &[2, 512, feature_frames(298)]);
    let ones = Tensor::ones((2, 149), DType::F32, &Device::Cpu)?;
    let pooled = flat(&model.pool(&features, &ones)?)?;
    let forward = flat(&model.forward(&batch)?)?;
    assert_eq!(pooled, forward);

    let single = [flat(&model.forward(&a)?)?, flat(&model.forward(&b)?)?].concat();
    let err = max_abs_diff(&forward, &single);
    println!("batch of 2 vs one at a time: max abs diff {err:e}");
    assert!(err <= 1e-5, "batching changes embeddings by {err}");

    // Keep feature frames 20..120 of item 0 (scaled weights: no effect).
    let mut mask = vec![0.0f32; 149];
    mask[20..120].fill(0.5);
    let mask = Tensor::from_vec(mask, (1, 149), &Device::Cpu)?;
    let f0 = features.narrow(0, 0, 1)?;
    let masked = flat(&model.pool(&f0, &mask)?)?;
    let kept = f0.narrow(2, 20, 100)?;
    let direct = flat(&model.pool(&kept, &Tensor::ones((1, 100), DType::F32, &Device::Cpu)?)?)?;
    let err = max_abs_diff(&masked, &direct);
    println!("masked pooling vs pooling the kept frames: max abs diff {err:e}");
    assert!(err <= 1e-5, "masked pooling differs by {err}");
    Ok(())
}

/// Inputs shorter than one CAM segment, down to a single frame (one feature
/// frame: the std falls back to 3D-Speaker's 1e-2), stay finite.
#[test]
fn short_inputs_embed() -> Result<()> {
    let fixture = Fixture::load("campplus_sample.npz")?;
    let model = model()?;
    let clip = input(&fixture, "clip0_fbank_meannorm")?;
    for frames in [1, 2, 3, 50, 197] {
        let xs = clip.narrow(1, 100, frames)?;
        let features = model.frame_features(&xs)?;
        assert_eq!(features.dim(2)?, feature_frames(frames));
        let emb = flat(&model.forward(&xs)?)?;
        assert_eq!(emb.len(), EMBEDDING_DIM);
        assert!(emb.iter().all(|x| x.is_finite()), "{frames} frames");
    }
    let empty = clip.narrow(1, 0, 0)?;
    assert!(model.forward(&empty).is_err());
    Ok(())
}
