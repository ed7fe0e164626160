//! Parameter sweep on a folder of WAV + RTTM pairs (the dev set): runs the
//! networks once per file, then re-runs only the cheap stages (binarisation,
//! embedding pooling, clustering, reconstruction) for each setting and
//! prints the duration-weighted DER with its components.
//!
//! cargo run --release --example tune -- ../shared/dev-set [step_s] [grid]
//! (`MODELS=3.0+ge2e` picks the networks; their tuned parameters are the base)

#[path = "common/dev_set.rs"]
mod dev_set;

use std::path::PathBuf;

use diarist::audio::SAMPLE_RATE;
use diarist::pipeline::{PipelineParams, SpeakerCount, clustering, embeddings, reconstruct};
use diarist::{ModelChoice, Turn, eval};

/// The networks the `MODELS` variable names (SEG+ENC), else the default.
fn models_from_env() -> anyhow::Result<ModelChoice> {
    Ok(match std::env::var("MODELS") {
        Ok(s) => s.parse()?,
        Err(_) => ModelChoice::default(),
    })
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "../shared/dev-set".into()));
    let models = models_from_env()?;
    let defaults = PipelineParams::tuned(models);
    let step_s: f64 = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(defaults.step_s);
    let grid: usize = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(defaults.partial_grid);
    let step = (step_s * SAMPLE_RATE as f64).round() as usize;
    let files = dev_set::load(&dir, models, step, grid)?;
    for dev_set::DevFile { uri, inferred, .. } in &files {
        // How many partials the pipeline's encoder would run (it skips the
        // ones the default parameters never read).
        let layout = embeddings::PartialGrid {
            step: inferred.step,
            partial_grid: inferred.partial_grid,
            num_partials: inferred.num_partials(),
        };
        let mut used = vec![false; inferred.num_partials()];
        let mut scratch = Vec::new();
        for c in 0..inferred.num_windows() {
            scratch.clear();
            embeddings::partials_used(c, inferred.window(c), layout, &defaults, &mut scratch);
            for &p in &scratch {
                used[p] = true;
            }
        }
        eprintln!(
            "{uri}: {} windows, {} partials ({} used with the default parameters)",
            inferred.num_windows(),
            inferred.num_partials(),
            used.iter().filter(|&&u| u).count()
        );
    }

    let base = PipelineParams {
        step_s,
        partial_grid: grid,
        ..defaults
    };
    let settings = dev_set::sweep(base, |q, name, v| {
        match name {
            "onset" => q.onset = v as f32,
            "offset" => q.offset = v as f32,
            "clean" => q.min_clean_fraction = v as f32,
            "other" => q.max_other_fraction = v as f32,
            "threshold" => q.cluster_threshold = v,
            "centre" => q.centring = v as f32,
            "gather" => q.gather_threshold = v,
            "share" => q.min_cluster_share = v,
            "minsize" => q.min_cluster_size = v as usize,
            "off" => q.min_duration_off = v,
            "on" => q.min_duration_on = v,
            _ => anyhow::bail!("unknown parameter {name}"),
        }
        Ok(())
    })?;
    let oracle = std::env::var("ORACLE").is_ok();
    for p in &settings {
        let mut total = eval::ErrorBreakdown::default();
        let mut per_file = Vec::new();
        for dev_set::DevFile {
            uri,
            reference,
            inferred,
            speakers: n_ref,
        } in &files
        {
            let binarized = embeddings::binarize_all(inferred, p);
            let speakers = embeddings::local_speakers(inferred, &binarized, p);
            let count = if oracle {
                SpeakerCount::Exact { n: *n_ref }
            } else {
                SpeakerCount::Auto
            };
            let c = clustering::cluster(&speakers, count, p);
            let raw = reconstruct::reconstruct(inferred, &binarized, &speakers, &c, p);
            let hyp: Vec<Turn> = raw
                .iter()
                .map(|t| Turn {
                    start_s: t.start_s,
                    end_s: t.end_s,
                    speaker: format!("S{}", t.cluster),
                })
                .collect();
            let duration = inferred.num_samples as f64 / SAMPLE_RATE as f64;
            let e = eval::diarization_error(reference, &hyp, Some((0.0, duration)), 0.0, false);
            per_file.push(format!("{uri}:{:.1}/{}", 100.0 * e.der(), c.num_clusters));
            total += e;
        }
        println!(
            "onset {:.2} offset {:.2} clean {:.2} other {:.2} centre {:.2} thr {:.2} gather {:.2} minsize {} share {:.3} off {:.2} on {:.2} | DER {:5.2} miss {:5.2} fa {:5.2} conf {:5.2} | {}",
            p.onset,
            p.offset,
            p.min_clean_fraction,
            p.max_other_fraction,
            p.centring,
            p.cluster_threshold,
            p.gather_threshold,
            p.min_cluster_size,
            p.min_cluster_share,
            p.min_duration_off,
            p.min_duration_on,
            100.0 * total.der(),
            100.0 * total.missed_s / total.reference_s,
            100.0 * total.false_alarm_s / total.reference_s,
            100.0 * total.confusion_s / total.reference_s,
            per_file.join(" ")
        );
    }
    Ok(())
}
