//! Parameter sweep of the live labels on a folder of WAV + RTTM
//! pairs (the dev set). The networks run once per file (offline windows at
//! a 1 s step are exactly the live windows from 5 s on; cached in the temp
//! folder, shared with examples/tune.rs); each setting then replays only
//! the live clustering and labelling, and prints the live DER and the
//! number of speakers found per file.
//!
//! SWEEP="join=0.6,0.65,0.7;support=2,4" cargo run --release --example live_tune -- ../shared/dev-set

#[path = "common/dev_set.rs"]
mod dev_set;

use std::path::PathBuf;

use diarist::audio::SAMPLE_RATE;
use diarist::eval;
use diarist::pipeline::PipelineParams;
use diarist::pipeline::frames::{LOCAL_SPEAKERS, WINDOW_FRAMES, WINDOW_SAMPLES};
use diarist::pipeline::live::{LiveParams, LiveState, LiveTurn};

fn main() -> anyhow::Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "../shared/dev-set".into()),
    );
    let (step, grid) = (SAMPLE_RATE as usize, 40);
    // The live path runs the default networks.
    let files = dev_set::load(&dir, diarist::ModelChoice::default(), step, grid)?;
    let settings = dev_set::sweep(LiveParams::default(), |q, name, v| {
        match name {
            "join" => q.join_similarity = v as f32,
            "support" => q.min_support = v as u32,
            "bridge" => q.bridge_s = v,
            "cont" => q.continuity = v as f32,
            _ => anyhow::bail!("unknown parameter {name}"),
        }
        Ok(())
    })?;
    for p in &settings {
        let mut total = eval::ErrorBreakdown::default();
        let mut per_file = Vec::new();
        let mut right = 0;
        for dev_set::DevFile {
            uri,
            reference,
            inferred,
            speakers: n_ref,
        } in &files
        {
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
