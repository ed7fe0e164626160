//! Parameter sweep of the live (streaming) labels on a folder of WAV + RTTM
//! pairs (the dev set). The networks run once per file (offline windows at
//! a 1 s step are exactly the live windows from 5 s on; cached in the temp
//! folder, shared with examples/tune.rs); each setting then replays only
//! the live clustering and labelling, and prints the live DER and the
//! number of speakers found per file.
//!
//! SWEEP="join=0.6,0.65,0.7;support=2,4" cargo run --release --example live_tune -- ../shared/dev-set

#[path = "common/inferred_cache.rs"]
mod inferred_cache;

use std::path::PathBuf;

use diarist::audio::SAMPLE_RATE;
use diarist::eval;
use diarist::export::read_rttm;
use diarist::models::{
    embedding::SpeakerEncoder, mel::MelFrontend, segmentation::Segmentation, weights,
};
use diarist::pipeline::frames::{LOCAL_SPEAKERS, WINDOW_FRAMES, WINDOW_SAMPLES};
use diarist::pipeline::streaming::{LiveParams, LiveState, LiveTurn};
use diarist::pipeline::{PipelineParams, infer};

fn main() -> anyhow::Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "../shared/dev-set".into()),
    );
    let (step, grid) = (SAMPLE_RATE as usize, 40);
    let device = candle_core::Device::Cpu;
    let models = weights::default_models_dir();
    let seg = Segmentation::load(&models, &device)?;
    let enc = SpeakerEncoder::load(&models, &device)?;
    let mel = MelFrontend::new();
    let nets = infer::Networks {
        segmentation: &seg,
        encoder: &enc,
        mel: &mel,
        device: &device,
    };
    let mut wavs: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wav"))
        .collect();
    wavs.sort();
    let mut files = Vec::new();
    for wav in wavs {
        let uri = wav.file_stem().unwrap().to_string_lossy().into_owned();
        let reference = read_rttm(&wav.with_extension("rttm"))?
            .remove(&uri)
            .unwrap_or_default();
        let inferred = inferred_cache::inferred(&nets, &wav, step, grid)?;
        let n_ref = reference
            .iter()
            .map(|t| t.speaker.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        files.push((uri, reference, inferred, n_ref));
    }

    let mut settings = vec![LiveParams::default()];
    let sweep = std::env::var("SWEEP").unwrap_or_default();
    for spec in sweep.split(';').filter(|s| !s.is_empty()) {
        let (name, values) = spec.split_once('=').expect("name=v1,v2");
        let current = std::mem::take(&mut settings);
        for p in current {
            for v in values.split(',') {
                let v: f64 = v.parse()?;
                let mut q = p.clone();
                match name {
                    "join" => q.join_similarity = v as f32,
                    "support" => q.min_support = v as u32,
                    "bridge" => q.bridge_s = v,
                    "cont" => q.continuity = v as f32,
                    _ => anyhow::bail!("unknown parameter {name}"),
                }
                settings.push(q);
            }
        }
    }
    for p in &settings {
        let mut total = eval::ErrorBreakdown::default();
        let mut per_file = Vec::new();
        let mut right = 0;
        for (uri, reference, inferred, n_ref) in &files {
            let mut state = LiveState::new(p.clone(), PipelineParams::default())?;
            let mut turns: Vec<LiveTurn> = Vec::new();
            let n = WINDOW_FRAMES * LOCAL_SPEAKERS;
            for c in 0..inferred.num_windows() {
                let end = c * step + WINDOW_SAMPLES;
                if end > inferred.num_samples {
                    break;
                }
                let scores = &inferred.activity[c * n..(c + 1) * n];
                turns.extend(state.replay_window(end, scores, &inferred.partials));
            }
            let done = state.finish(&turns, uri, "cpu");
            let d = &done.diarization;
            if std::env::var("SHOW").is_ok() {
                for t in &d.turns {
                    eprintln!("hyp {:7.2} {:7.2} {}", t.start_s, t.end_s, t.speaker);
                }
                for t in reference {
                    eprintln!("ref {:7.2} {:7.2} {}", t.start_s, t.end_s, t.speaker);
                }
            }
            let e =
                eval::diarization_error(reference, &d.turns, Some((0.0, d.duration_s)), 0.0, false);
            right += usize::from(d.num_speakers() == *n_ref);
            per_file.push(format!(
                "{uri}:{:.1}/{}of{}",
                100.0 * e.der(),
                d.num_speakers(),
                n_ref
            ));
            total += e;
        }
        println!(
            "join {:.2} support {} cont {:.2} bridge {:.2} | DER {:5.2} miss {:5.2} fa {:5.2} conf {:5.2} | counts right {}/{} | {}",
            p.join_similarity,
            p.min_support,
            p.continuity,
            p.bridge_s,
            100.0 * total.der(),
            100.0 * total.missed_s / total.reference_s,
            100.0 * total.false_alarm_s / total.reference_s,
            100.0 * total.confusion_s / total.reference_s,
            right,
            files.len(),
            per_file.join(" ")
        );
    }
    Ok(())
}
