//! The `diarist` command line end to end: batches whose files share a name,
//! and one file's failure staying that file's.

use std::path::Path;
use std::process::Command;

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

fn diarist(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_diarist"))
        .args(["diarize", "--quiet", "--device", "cpu"])
        .args(args)
        .output()
        .expect("diarist runs")
}

#[test]
fn inputs_sharing_a_stem_get_one_export_each() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("talk.wav");
    let mp3 = dir.path().join("talk.mp3");
    std::fs::copy(fixture("samples/sample.wav"), &wav).unwrap();
    std::fs::copy(
        fixture("tests/fixtures/audio/sine440_44100_stereo.mp3"),
        &mp3,
    )
    .unwrap();
    let out = dir.path().join("out");
    let run = diarist(&[
        wav.as_os_str(),
        mp3.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.contains("talk.wav.*"), "{stderr}");
    let speech = std::fs::read_to_string(out.join("talk.wav.rttm")).unwrap();
    let tone = std::fs::read_to_string(out.join("talk.mp3.rttm")).unwrap();
    assert!(speech.lines().count() > 2, "the sample has turns: {speech}");
    assert!(
        speech
            .lines()
            .all(|l| l.split(' ').nth(1) == Some("talk.wav")),
        "each RTTM names its own file: {speech}"
    );
    assert_eq!(tone, "", "a pure tone has no speaker");
    assert!(!out.join("talk.rttm").exists());
}

#[test]
fn an_unwritable_export_fails_that_file_and_the_batch_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    // A folder where `first.rttm` should go: that export cannot be written.
    std::fs::create_dir(out.join("first.rttm")).unwrap();
    let first = dir.path().join("first.wav");
    let second = dir.path().join("second.wav");
    std::fs::copy(fixture("samples/sample.wav"), &first).unwrap();
    std::fs::copy(fixture("samples/sample.wav"), &second).unwrap();
    let run = diarist(&[
        first.as_os_str(),
        second.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(stderr.contains("first.wav"), "{stderr}");
    assert!(stderr.contains("1 of 2 files failed"), "{stderr}");
    let second_rttm = std::fs::read_to_string(out.join("second.rttm")).unwrap();
    assert!(second_rttm.lines().count() > 2);
}
