//! Exporters against golden files, RTTM round trip, and atomic writing.
//!
//! Regenerate the golden files after an intended format change with
//! `DIARIST_UPDATE_GOLDEN=1 cargo test --test export`, then review the diff.

use std::path::{Path, PathBuf};

use diarist::export::{Format, SpeakerNames, parse_rttm, read_rttm, render, write, write_all};
use diarist::{Diarization, StageTimings, Turn};

fn t(start_s: f64, end_s: f64, speaker: &str) -> Turn {
    Turn {
        start_s,
        end_s,
        speaker: speaker.into(),
    }
}

/// Overlapping turns, a start that rounds up into the next hour, a time on
/// an exact half millisecond, and four speakers of which one is unnamed.
fn meeting() -> Diarization {
    Diarization::new(
        "meeting",
        3605.0,
        vec![
            t(0.0, 2.5, "SPEAKER_00"),
            t(1.75, 4.0, "SPEAKER_01"),
            t(61.0625, 62.0, "SPEAKER_00"),
            t(61.5, 63.25, "SPEAKER_03"),
            t(3599.9996, 3602.1234, "SPEAKER_02"),
        ],
        "cpu",
        StageTimings {
            decode_s: 0.5,
            features_s: 0.75,
            segmentation_s: 10.25,
            embedding_s: 20.0,
            clustering_s: 0.125,
            reconstruction_s: 0.0625,
            total_s: 31.0,
        },
    )
}

fn names() -> SpeakerNames {
    [
        ("SPEAKER_00", "Alice"),
        ("SPEAKER_01", "Bob \"the Builder\", Jr."),
        ("SPEAKER_03", "Zoë <&> Ng"),
        ("SPEAKER_09", "Not in this recording"),
    ]
    .into_iter()
    .collect()
}

fn golden_path(format: Format) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/export")
        .join(format!("meeting.{}", format.extension()))
}

#[test]
fn every_format_matches_its_golden_file() {
    let d = meeting();
    for format in Format::ALL {
        let got = render(&d, format, &names());
        let path = golden_path(format);
        if std::env::var_os("DIARIST_UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, &got).unwrap();
        }
        let want = std::fs::read_to_string(&path).unwrap();
        assert_eq!(got, want, "{format} differs from {}", path.display());
    }
}

#[test]
fn rttm_round_trips_to_the_written_precision() {
    let d = meeting();
    for names in [SpeakerNames::new(), names()] {
        let text = render(&d, Format::Rttm, &names);
        let parsed = parse_rttm(&text, Path::new("meeting.rttm")).unwrap();
        assert_eq!(parsed.keys().collect::<Vec<_>>(), ["meeting"]);
        let turns = &parsed["meeting"];
        assert_eq!(turns.len(), d.turns.len());
        for (got, want) in turns.iter().zip(&d.turns) {
            assert!(
                (got.start_s - want.start_s).abs() <= 0.0005 + 1e-9,
                "{got:?} {want:?}"
            );
            assert!(
                (got.end_s - want.end_s).abs() <= 0.0005 + 1e-9,
                "{got:?} {want:?}"
            );
            let shown = names.display(&want.speaker).replace(' ', "_");
            assert_eq!(got.speaker, shown);
        }
    }
}

#[test]
fn json_reads_back_as_a_diarization_with_names_applied() {
    let d = meeting();
    let text = render(&d, Format::Json, &names());
    let back: Diarization = serde_json::from_str(&text).unwrap();
    assert_eq!(back.uri, d.uri);
    assert_eq!(back.timings, d.timings);
    assert_eq!(back.turns[1].speaker, "Bob \"the Builder\", Jr.");
    assert_eq!(back.turns[1].start_s, 1.75);
    assert_eq!(back.speakers[2].speaker, "SPEAKER_02");
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let map = value["speaker_names"].as_object().unwrap();
    assert_eq!(map.len(), 4, "only labels present in the result");
    assert_eq!(map["SPEAKER_03"], "Zoë <&> Ng");
    assert_eq!(map["SPEAKER_02"], "SPEAKER_02");
}

#[test]
fn without_names_every_format_shows_labels() {
    let d = meeting();
    for format in Format::ALL {
        let text = render(&d, format, &SpeakerNames::new());
        assert!(text.contains("SPEAKER_01"), "{format}");
        assert!(!text.contains("Alice"), "{format}");
    }
}

#[test]
fn write_all_writes_one_file_per_format() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("new/sub");
    let d = meeting();
    let formats = [Format::Vtt, Format::Rttm, Format::Vtt, Format::Audacity];
    let paths = write_all(&d, &formats, &out, &names()).unwrap();
    assert_eq!(
        paths,
        [
            out.join("meeting.vtt"),
            out.join("meeting.rttm"),
            out.join("meeting.txt")
        ]
    );
    for (path, format) in paths
        .iter()
        .zip([Format::Vtt, Format::Rttm, Format::Audacity])
    {
        assert_eq!(
            std::fs::read_to_string(path).unwrap(),
            render(&d, format, &names())
        );
    }
    let rttm = read_rttm(&paths[1]).unwrap();
    assert_eq!(rttm["meeting"].len(), 5);
    let mut entries: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    entries.sort();
    assert_eq!(
        entries,
        ["meeting.rttm", "meeting.txt", "meeting.vtt"],
        "no temporary files left"
    );
}

#[test]
fn write_replaces_an_existing_file_with_ordinary_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meeting.csv");
    std::fs::write(&path, "old").unwrap();
    write(&meeting(), Format::Csv, &path, &names()).unwrap();
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .starts_with("start,end,duration,speaker\n")
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode(&path),
            mode(&plain),
            "not the 0600 of a temporary file"
        );
    }
}

#[test]
fn write_into_a_missing_or_non_directory_parent_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "keep").unwrap();
    for path in [file.join("out.rttm"), dir.path().join("missing/out.rttm")] {
        let err = write(&meeting(), Format::Rttm, &path, &names()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with(&path.display().to_string()), "{msg}");
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep");
}

#[test]
fn failed_rename_keeps_the_target_and_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    // A non-empty directory where the file should go: the temporary file is
    // written, then the final rename fails.
    let target = dir.path().join("meeting.srt");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("inside"), "keep").unwrap();
    let err = write(&meeting(), Format::Srt, &target, &names()).unwrap_err();
    assert!(
        err.to_string().starts_with(&target.display().to_string()),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(target.join("inside")).unwrap(),
        "keep"
    );
    let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(entries.len(), 1, "temporary file removed");
}

#[cfg(unix)]
#[test]
fn unwritable_directory_leaves_the_existing_file_alone() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meeting.json");
    std::fs::write(&path, "previous export").unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
    // Root ignores directory permissions; then there is nothing to observe.
    let enforced = std::fs::write(dir.path().join("probe"), "").is_err();
    let result = write(&meeting(), Format::Json, &path, &names());
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    if !enforced {
        eprintln!("directory permissions not enforced (running as root?); skipped");
        return;
    }
    let msg = result.unwrap_err().to_string();
    assert!(msg.starts_with(&path.display().to_string()), "{msg}");
    assert!(msg.to_lowercase().contains("permission denied"), "{msg}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "previous export");
}
