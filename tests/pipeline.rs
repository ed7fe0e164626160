//! The whole pipeline on real audio with the real networks: accuracy on the
//! bundled sample, speaker-count options, edge cases, and export round trips.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Result;
use candle_core::Device;
use diarist::export::{self, Format, SpeakerNames};
use diarist::pipeline::{Batches, Pipeline};
use diarist::{Diarization, DiarizeOptions, ModelChoice, SpeakerCount, eval};

const BATCHES: Batches = Batches {
    windows: 8,
    partials: 32,
};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn pipeline() -> &'static Pipeline {
    static PIPELINE: OnceLock<Pipeline> = OnceLock::new();
    PIPELINE
        .get_or_init(|| Pipeline::load(&root().join("models"), &Device::Cpu).expect("models load"))
}

fn sample() -> PathBuf {
    root().join("samples/sample.wav")
}

fn diarize(path: &Path, speakers: SpeakerCount) -> Result<Diarization> {
    let options = DiarizeOptions {
        speakers,
        ..DiarizeOptions::default()
    };
    Ok(pipeline().diarize_file(path, &options, BATCHES, &mut ())?)
}

/// The networks `SEG+ENC` names.
fn models(choice: &str) -> ModelChoice {
    choice.parse().expect("model choice")
}

fn samples_of(path: &Path) -> Vec<f32> {
    diarist::audio::decode_file(path).expect("decode")
}

/// The sample's diarization error against its reference, no collar.
fn sample_der(result: &Diarization) -> Result<f64> {
    let reference = export::read_rttm(&root().join("samples/sample.rttm"))?;
    let errors = eval::diarization_error(
        &reference["sample"],
        &result.turns,
        Some((0.0, 30.0)),
        0.0,
        false,
    );
    Ok(errors.der())
}

/// The sample's two voices, found within the accuracy bar.
fn assert_sample_is_diarized(result: &Diarization) -> Result<()> {
    let der = sample_der(result)?;
    assert_eq!(result.num_speakers(), 2, "{:?}", result.speakers);
    assert!(der < 0.10, "DER {:.2} %", 100.0 * der);
    Ok(())
}

#[test]
fn sample_meets_the_accuracy_bar() -> Result<()> {
    let result = diarize(&sample(), SpeakerCount::Auto)?;
    assert_sample_is_diarized(&result)?;
    assert_eq!(result.uri, "sample");
    assert!((result.duration_s - 30.0).abs() < 1e-9);
    assert_eq!(result.backend, "cpu");
    let shares: f64 = result.speakers.iter().map(|s| s.share).sum();
    assert!((shares - 1.0).abs() < 1e-9);
    Ok(())
}

/// segmentation-3.0 (10 s windows, powerset) through the same pipeline,
/// loaded on demand by the job that asks for it.
#[test]
fn sample_with_segmentation_3_meets_the_accuracy_bar() -> Result<()> {
    let options = DiarizeOptions {
        models: Some(models("3.0+ge2e")),
        ..DiarizeOptions::default()
    };
    let result = pipeline().diarize_file(&sample(), &options, BATCHES, &mut ())?;
    assert_sample_is_diarized(&result)?;
    // A 10 s window allows steps up to 10 s; a 5 s one does not.
    let long_step = DiarizeOptions {
        step_s: Some(8.0),
        ..options.clone()
    };
    pipeline().diarize_file(&sample(), &long_step, BATCHES, &mut ())?;
    let default_model = DiarizeOptions {
        models: None,
        ..long_step
    };
    assert!(
        pipeline()
            .diarize_file(&sample(), &default_model, BATCHES, &mut ())
            .is_err()
    );
    Ok(())
}

/// The CAM++ speaker encoder through the same pipeline: the sample's two
/// voices, and its embeddings' width in the result.
#[test]
fn sample_with_campplus_meets_the_accuracy_bar() -> Result<()> {
    let options = DiarizeOptions {
        models: Some(models("3.0+campplus")),
        ..DiarizeOptions::default()
    };
    let result = pipeline().diarize_file(&sample(), &options, BATCHES, &mut ())?;
    assert_sample_is_diarized(&result)?;
    assert!(result.embeddings.values().all(|e| e.len() == 192));
    Ok(())
}

#[test]
fn exact_speaker_count_is_honoured() -> Result<()> {
    for n in [1, 3] {
        let result = diarize(&sample(), SpeakerCount::Exact { n })?;
        assert_eq!(result.num_speakers(), n);
    }
    Ok(())
}

#[test]
fn min_and_max_are_honoured() -> Result<()> {
    let at_least_three = diarize(
        &sample(),
        SpeakerCount::Range {
            min: Some(3),
            max: None,
        },
    )?;
    assert!(at_least_three.num_speakers() >= 3);
    let at_most_one = diarize(
        &sample(),
        SpeakerCount::Range {
            min: None,
            max: Some(1),
        },
    )?;
    assert_eq!(at_most_one.num_speakers(), 1);
    Ok(())
}

#[test]
fn silence_gives_no_turns() -> Result<()> {
    let silence = vec![0.0f32; 16_000 * 12];
    let result = pipeline().diarize_samples(
        "silence",
        &silence,
        &DiarizeOptions::default(),
        BATCHES,
        &mut (),
    )?;
    assert!(result.turns.is_empty(), "{:?}", result.turns);
    assert_eq!(result.num_speakers(), 0);
    Ok(())
}

#[test]
fn one_voice_gives_one_speaker() -> Result<()> {
    // 18.6–21.4 s and 10.5–14.5 s of the sample are speaker90 alone.
    let samples = samples_of(&sample());
    let mut one: Vec<f32> =
        samples[(10.6 * 16_000.0) as usize..(14.4 * 16_000.0) as usize].to_vec();
    one.extend_from_slice(&samples[(18.6 * 16_000.0) as usize..(21.4 * 16_000.0) as usize]);
    let result =
        pipeline().diarize_samples("one", &one, &DiarizeOptions::default(), BATCHES, &mut ())?;
    assert_eq!(result.num_speakers(), 1, "{:?}", result.speakers);
    Ok(())
}

#[test]
fn recording_shorter_than_a_window_works() -> Result<()> {
    let samples = samples_of(&sample());
    let short = &samples[(10.6 * 16_000.0) as usize..(13.6 * 16_000.0) as usize];
    let result =
        pipeline().diarize_samples("short", short, &DiarizeOptions::default(), BATCHES, &mut ())?;
    assert!((result.duration_s - 3.0).abs() < 1e-9);
    assert!(!result.turns.is_empty());
    assert!(
        result
            .turns
            .iter()
            .all(|t| t.start_s >= 0.0 && t.end_s <= 3.0 + 1e-9)
    );
    let tiny = &samples[..800];
    let result =
        pipeline().diarize_samples("tiny", tiny, &DiarizeOptions::default(), BATCHES, &mut ())?;
    assert!(result.duration_s > 0.0);
    Ok(())
}

#[test]
fn batch_size_does_not_change_the_result() -> Result<()> {
    let options = DiarizeOptions::default();
    let one = pipeline().diarize_file(
        &sample(),
        &options,
        Batches {
            windows: 1,
            partials: 1,
        },
        &mut (),
    )?;
    let many = pipeline().diarize_file(
        &sample(),
        &options,
        Batches {
            windows: 32,
            partials: 128,
        },
        &mut (),
    )?;
    assert_eq!(one.turns.len(), many.turns.len());
    for (a, b) in one.turns.iter().zip(&many.turns) {
        assert_eq!(a.speaker, b.speaker);
        assert!((a.start_s - b.start_s).abs() < 0.05 && (a.end_s - b.end_s).abs() < 0.05);
    }
    Ok(())
}

#[test]
fn every_export_round_trips() -> Result<()> {
    let result = diarize(&sample(), SpeakerCount::Auto)?;
    let dir = tempfile::tempdir()?;
    let names: SpeakerNames = [("SPEAKER_00", "Ada Lovelace")].into_iter().collect();
    let written = export::write_all(&result, &Format::ALL, dir.path(), &names)?;
    assert_eq!(written.len(), Format::ALL.len());

    let plain = export::write_all(
        &result,
        &[Format::Rttm],
        &dir.path().join("plain"),
        &SpeakerNames::new(),
    )?;
    let parsed = export::read_rttm(&plain[0])?;
    let turns = &parsed["sample"];
    assert_eq!(turns.len(), result.turns.len());
    for (a, b) in turns.iter().zip(&result.turns) {
        assert_eq!(a.speaker, b.speaker);
        assert!((a.start_s - b.start_s).abs() <= 0.0005 + 1e-9);
        assert!((a.end_s - b.end_s).abs() <= 0.001 + 1e-9);
    }
    let named = std::fs::read_to_string(dir.path().join("sample.rttm"))?;
    assert!(named.contains("Ada_Lovelace"), "{named}");
    let json: Diarization =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("sample.json"))?)?;
    assert!(json.turns.iter().any(|t| t.speaker == "Ada Lovelace"));
    for ext in ["csv", "srt", "vtt", "txt"] {
        let text = std::fs::read_to_string(dir.path().join(format!("sample.{ext}")))?;
        assert!(text.contains("Ada Lovelace"), "{ext}: {text}");
    }
    Ok(())
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("notes.wav");
    std::fs::write(&bogus, b"this is not audio at all, just text").unwrap();
    let err = diarize(&bogus, SpeakerCount::Auto).unwrap_err().to_string();
    assert!(err.contains("notes.wav"), "{err}");
    let err = diarize(&dir.path().join("missing.wav"), SpeakerCount::Auto)
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.wav"), "{err}");
    let options = DiarizeOptions {
        step_s: Some(0.0),
        ..DiarizeOptions::default()
    };
    let err = pipeline()
        .diarize_file(&sample(), &options, BATCHES, &mut ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("step"), "{err}");
}

#[test]
fn skipping_unused_partials_changes_nothing() -> Result<()> {
    for choice in ["2022+ge2e", "3.0+ge2e", "3.0+campplus"] {
        skipping_unused_partials_changes_nothing_with(models(choice))?;
    }
    Ok(())
}

fn skipping_unused_partials_changes_nothing_with(choice: ModelChoice) -> Result<()> {
    use diarist::models::segmentation::Segmentation;
    use diarist::pipeline::encoder::Encoder;
    use diarist::pipeline::{PartialSelection, PipelineParams, SliceSource, embeddings, infer};
    let device = Device::Cpu;
    let dir = root().join("models");
    let (segmentation, encoder) = (
        Segmentation::load(choice.segmentation, &dir, &device)?,
        Encoder::load(choice.embedding, &dir, &device)?,
    );
    let nets = infer::Networks {
        segmentation: &segmentation,
        encoder: &encoder,
        device: &device,
    };
    let params = PipelineParams::tuned(choice);
    let speech = samples_of(&sample());
    // Speech, 12 s of silence, speech again, and a recording shorter than a partial.
    let mut long = speech.clone();
    long.resize(long.len() + 12 * 16_000, 0.0);
    long.extend_from_slice(&speech[..200_000]);
    let short = speech[100_000..120_000].to_vec();
    // Small batches make partials wait for the windows that hold them.
    let batches = Batches {
        windows: 3,
        partials: 5,
    };
    for (samples, step, grid) in [
        (&long, 16_000, 40),
        (&long, 11_200, 77),
        (&short, 16_000, 40),
    ] {
        let run = |selection| {
            infer::infer(
                &nets,
                &mut SliceSource::new(samples),
                step,
                grid,
                batches,
                selection,
                &mut (),
            )
        };
        let all = run(PartialSelection::All)?;
        let used = run(PartialSelection::UsedBy(&params))?;
        assert_eq!(all.activity, used.activity);
        assert_eq!(all.num_partials(), used.num_partials());
        assert!(used.partials_embedded <= all.partials_embedded);
        if samples.len() > segmentation.geometry().window_samples {
            assert!(used.partials_embedded < all.partials_embedded);
        }
        let pooled = |inferred: &infer::Inferred| {
            let binarized = embeddings::binarize_all(inferred, &params);
            embeddings::local_speakers(inferred, &binarized, &params)
                .into_iter()
                .map(|s| (s.window, s.local, s.clean, s.embedding))
                .collect::<Vec<_>>()
        };
        let (a, b) = (pooled(&all), pooled(&used));
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!((x.0, x.1, x.2), (y.0, y.1, y.2), "step {step}, grid {grid}");
            // The encoder's batches differ, and gemm's blocking (so its float
            // rounding) depends on the batch size.
            let diff = match (&x.3, &y.3) {
                (Some(u), Some(v)) => u
                    .iter()
                    .zip(v)
                    .map(|(p, q)| (p - q).abs())
                    .fold(0f32, f32::max),
                (None, None) => 0.0,
                _ => f32::INFINITY,
            };
            assert!(
                diff < 1e-5,
                "step {step}, grid {grid}, window {} speaker {}: {diff:e}",
                x.0,
                x.1
            );
        }
        println!(
            "step {step} grid {grid}: {} of {} partials embedded",
            used.partials_embedded, all.partials_embedded
        );
    }
    Ok(())
}
