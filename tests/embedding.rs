//! Parity of the GE2E front end and encoder with resemblyzer 0.1.4 + librosa
//! 0.11 + PyTorch 2.8 (float32, CPU).
//!
//! `fixtures/ge2e_sample.npz` holds, for four slices of `samples/sample.wav`
//! (int16 / 32768), resemblyzer's mel spectrogram, partial slices, partial
//! embeddings and utterance embeddings, plus librosa's mel basis and the 4×4
//! cosine matrix. It was written by the reference generator `gen_ref.py`
//! (see models/README.md for the versions).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use diarist::models::embedding::{SpeakerEncoder, partial_slices};
use diarist::models::mel::{MelFrontend, N_MELS, slaney_mel_basis};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct Fixture(HashMap<String, Tensor>);

impl Fixture {
    fn load() -> Result<Self> {
        let path = root().join("tests/fixtures/ge2e_sample.npz");
        let entries = Tensor::read_npz(&path).with_context(|| path.display().to_string())?;
        Ok(Self(entries.into_iter().collect()))
    }

    fn get(&self, key: &str) -> Result<&Tensor> {
        self.0
            .get(key)
            .with_context(|| format!("fixture has no {key}"))
    }

    fn f32_2d(&self, key: &str) -> Result<Vec<Vec<f32>>> {
        Ok(self.get(key)?.to_dtype(DType::F32)?.to_vec2()?)
    }

    fn u32_1d(&self, key: &str) -> Result<Vec<u32>> {
        Ok(self.get(key)?.flatten_all()?.to_vec1()?)
    }

    /// The slice of sample.wav, unpadded.
    fn samples(&self, wav: &[f32], k: usize) -> Result<Vec<f32>> {
        let range = self.u32_1d(&format!("slice{k}_samples"))?;
        Ok(wav[range[0] as usize..range[1] as usize].to_vec())
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

fn encoder() -> Result<SpeakerEncoder> {
    Ok(SpeakerEncoder::load(&root().join("models"), &Device::Cpu)?)
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn flat(rows: &[Vec<f32>]) -> Vec<f32> {
    rows.iter().flatten().copied().collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

const SLICES: usize = 4;

#[test]
fn mel_basis_matches_librosa() -> Result<()> {
    let fixture = Fixture::load()?;
    let want = fixture.f32_2d("mel_basis")?;
    let got: Vec<Vec<f32>> = slaney_mel_basis().iter().map(|r| r.to_vec()).collect();
    let err = max_abs_diff(&flat(&got), &flat(&want));
    println!("mel basis: max abs diff {err:e}");
    assert!(err <= 1e-7, "mel basis differs by {err}");
    Ok(())
}

#[test]
fn mel_matches_librosa() -> Result<()> {
    let fixture = Fixture::load()?;
    let wav = sample_wav()?;
    let mel = MelFrontend::new();
    for k in 0..SLICES {
        let mut samples = fixture.samples(&wav, k)?;
        let padded_len = fixture.u32_1d(&format!("slice{k}_wav_padded_len"))?[0] as usize;
        samples.resize(padded_len.max(samples.len()), 0.0);
        let got: Vec<f32> = mel.mel(&samples).iter().flatten().copied().collect();
        let want = flat(&fixture.f32_2d(&format!("slice{k}_mel"))?);
        let peak = want.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let rel = max_abs_diff(&got, &want) / peak;
        println!("slice {k}: mel max abs diff / max = {rel:e} (max {peak})");
        assert!(rel <= 2e-6, "slice {k}: mel differs by {rel} of its max");
    }
    Ok(())
}

#[test]
fn partial_slices_match_resemblyzer() -> Result<()> {
    let fixture = Fixture::load()?;
    for k in 0..SLICES {
        let range = fixture.u32_1d(&format!("slice{k}_samples"))?;
        let n_samples = (range[1] - range[0]) as usize;
        let want = fixture.u32_1d(&format!("slice{k}_mel_slices"))?;
        let got: Vec<u32> = partial_slices(n_samples, 160)
            .iter()
            .flat_map(|s| [s.start as u32, s.end as u32])
            .collect();
        assert_eq!(got, want, "slice {k}");
        let padded = fixture.u32_1d(&format!("slice{k}_wav_padded_len"))?[0] as usize;
        let last_end = got.last().copied().unwrap_or(0) as usize * 160;
        assert_eq!(padded, last_end.max(n_samples), "slice {k}");
    }
    Ok(())
}

/// The network alone, fed resemblyzer's own mels.
#[test]
fn partial_embeddings_match_pytorch() -> Result<()> {
    let fixture = Fixture::load()?;
    let enc = encoder()?;
    for k in 0..SLICES {
        let mel = fixture.get(&format!("slice{k}_mel"))?;
        let slices = fixture.u32_1d(&format!("slice{k}_mel_slices"))?;
        let partials = slices
            .chunks(2)
            .map(|s| mel.narrow(0, s[0] as usize, (s[1] - s[0]) as usize))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let batch = Tensor::stack(&partials, 0)?; // (partials, 160, 40)
        let got = enc.forward(&batch)?.to_vec2::<f32>()?;
        let want = fixture.f32_2d(&format!("slice{k}_partial_embeds"))?;
        let err = max_abs_diff(&flat(&got), &flat(&want));
        println!("slice {k}: partial embeddings max abs diff {err:e}");
        assert!(err <= 5e-6, "slice {k}: partial embeddings differ by {err}");
        for row in &got {
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-6, "norm {norm}");
        }
    }
    Ok(())
}

/// The whole path: raw samples → mel → partials → utterance embedding.
#[test]
fn utterance_embeddings_and_cosines_match_resemblyzer() -> Result<()> {
    let fixture = Fixture::load()?;
    let wav = sample_wav()?;
    let enc = encoder()?;
    let mel = MelFrontend::new();
    let utterances: Vec<Vec<f32>> = (0..SLICES)
        .map(|k| fixture.samples(&wav, k))
        .collect::<Result<_>>()?;
    let mut embeddings = Vec::new();
    for (k, samples) in utterances.iter().enumerate() {
        let got = enc.embed_utterance(&mel, samples)?;
        let want = fixture.get(&format!("slice{k}_embed"))?.to_vec1::<f32>()?;
        let err = max_abs_diff(&got, &want);
        println!("slice {k}: utterance embedding max abs diff {err:e}");
        assert!(err <= 5e-6, "slice {k}: embedding differs by {err}");
        embeddings.push(got);
    }

    // All four in one batch: the same embeddings up to summation order.
    let refs: Vec<&[f32]> = utterances.iter().map(Vec::as_slice).collect();
    let batched = enc.embed_utterances(&mel, &refs)?;
    let err = max_abs_diff(&flat(&batched), &flat(&embeddings));
    println!("batched vs one at a time: max abs diff {err:e}");
    assert!(err <= 1e-6, "batching changes embeddings by {err}");

    let want = fixture.f32_2d("cosine")?;
    let mut worst = 0.0f32;
    for i in 0..SLICES {
        for j in 0..SLICES {
            worst = worst.max((cosine(&embeddings[i], &embeddings[j]) - want[i][j]).abs());
        }
    }
    println!("cosine matrix: max abs diff {worst:e}");
    assert!(worst <= 5e-6, "cosines differ by {worst}");
    // The two speaker90 slices (1 and 3) are each other's nearest neighbour.
    let best_for_1 = (0..SLICES).filter(|&j| j != 1).max_by(|&a, &b| {
        cosine(&embeddings[1], &embeddings[a]).total_cmp(&cosine(&embeddings[1], &embeddings[b]))
    });
    assert_eq!(best_for_1, Some(3));
    Ok(())
}

#[test]
fn short_and_silent_utterances_give_finite_unit_or_zero_vectors() -> Result<()> {
    let enc = encoder()?;
    let mel = MelFrontend::new();
    for samples in [
        vec![],
        vec![0.0f32; 100],
        vec![0.0f32; 40_000],
        vec![0.1f32; 3],
    ] {
        let e = enc.embed_utterance(&mel, &samples)?;
        assert_eq!(e.len(), 256);
        assert!(e.iter().all(|x| x.is_finite()), "{} samples", samples.len());
        let norm = e.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!(norm == 0.0 || (norm - 1.0).abs() < 1e-5, "norm {norm}");
    }
    assert!(
        enc.forward(&Tensor::zeros((1, 0, N_MELS), DType::F32, &Device::Cpu)?)
            .is_err()
    );
    Ok(())
}

#[test]
fn missing_weights_are_reported_by_name() {
    let dir = Path::new("/nonexistent-diarist-models");
    let err = SpeakerEncoder::load(dir, &Device::Cpu)
        .err()
        .map(|e| e.to_string());
    let err = err.unwrap_or_default();
    assert!(err.contains("ge2e-resemblyzer.safetensors"), "{err}");
}
