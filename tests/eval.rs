//! Behaviour of the DER/JER scorer: hand-computed cases, and agreement with
//! pyannote.metrics on perturbed dev-set hypotheses (fixtures made by
//! tests/fixtures/eval/make_fixtures.py).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use diarist::Turn;
use diarist::eval::{ErrorBreakdown, diarization_error, jaccard_error, score_paths};
use diarist::export::read_rttm;

fn t(start_s: f64, end_s: f64, speaker: &str) -> Turn {
    Turn {
        start_s,
        end_s,
        speaker: speaker.into(),
    }
}

fn close(got: f64, want: f64) -> bool {
    (got - want).abs() < 1e-9
}

#[track_caller]
fn assert_errors(e: ErrorBreakdown, reference: f64, missed: f64, false_alarm: f64, confusion: f64) {
    let want = [reference, missed, false_alarm, confusion];
    let got = [e.reference_s, e.missed_s, e.false_alarm_s, e.confusion_s];
    assert!(
        got.iter().zip(&want).all(|(g, w)| close(*g, *w)),
        "got {e:?}, want (reference, missed, false alarm, confusion) = {want:?}"
    );
}

fn der(r: &[Turn], h: &[Turn], uem: Option<(f64, f64)>, collar: f64, skip: bool) -> ErrorBreakdown {
    diarization_error(r, h, uem, collar, skip)
}

#[test]
fn perfect_and_relabelled_hypotheses_score_zero() {
    let reference = [t(0.0, 4.0, "a"), t(5.0, 8.0, "b"), t(8.0, 9.0, "a")];
    let renamed = [t(0.0, 4.0, "S1"), t(5.0, 8.0, "S0"), t(8.0, 9.0, "S1")];
    for hyp in [&reference[..], &renamed[..]] {
        let e = der(&reference, hyp, Some((0.0, 10.0)), 0.0, false);
        assert_errors(e, 8.0, 0.0, 0.0, 0.0);
        assert_eq!(e.der(), 0.0);
        assert_eq!(
            jaccard_error(&reference, hyp, Some((0.0, 10.0)), 0.0, false),
            0.0
        );
    }
}

#[test]
fn empty_hypothesis_is_all_missed() {
    let reference = [t(0.0, 4.0, "a"), t(5.0, 8.0, "b")];
    let e = der(&reference, &[], Some((0.0, 10.0)), 0.0, false);
    assert_errors(e, 7.0, 7.0, 0.0, 0.0);
    assert_eq!(e.der(), 1.0);
    assert_eq!(jaccard_error(&reference, &[], None, 0.0, false), 1.0);
}

#[test]
fn empty_reference_is_all_false_alarm() {
    let hypothesis = [t(1.0, 2.0, "x"), t(1.5, 3.0, "y")];
    let e = der(&[], &hypothesis, Some((0.0, 10.0)), 0.0, false);
    assert_errors(e, 0.0, 0.0, 2.5, 0.0);
    // pyannote's convention when there is nothing to find.
    assert_eq!(e.der(), 1.0);
    assert_eq!(der(&[], &[], None, 0.0, false).der(), 0.0);
    assert_eq!(jaccard_error(&[], &hypothesis, None, 0.0, false), 1.0);
}

#[test]
fn partial_confusion() {
    let reference = [t(0.0, 10.0, "a"), t(10.0, 20.0, "b")];
    let hypothesis = [t(0.0, 12.0, "x"), t(12.0, 20.0, "y")];
    let e = der(&reference, &hypothesis, None, 0.0, false);
    assert_errors(e, 20.0, 0.0, 0.0, 2.0);
    assert!(close(e.der(), 0.1));
    // a: 2 s extra over a 12 s union; b: 2 s missed over a 10 s union.
    let jer = jaccard_error(&reference, &hypothesis, None, 0.0, false);
    assert!(close(jer, (2.0 / 12.0 + 0.2) / 2.0), "{jer}");
}

#[test]
fn overlapped_speech_counts_once_per_speaker() {
    let reference = [t(0.0, 10.0, "a"), t(6.0, 15.0, "b")];
    let hypothesis = [t(0.0, 15.0, "x")];
    // x maps to a (10 s together vs 9 s with b): [6, 10) misses b,
    // [10, 15) gives b's speech to a.
    let e = der(&reference, &hypothesis, None, 0.0, false);
    assert_errors(e, 19.0, 4.0, 0.0, 5.0);
    let jer = jaccard_error(&reference, &hypothesis, None, 0.0, false);
    assert!(close(jer, (5.0 / 15.0 + 1.0) / 2.0), "{jer}");
}

#[test]
fn skip_overlap_removes_reference_overlap_before_mapping() {
    let reference = [t(0.0, 10.0, "a"), t(6.0, 15.0, "b")];
    let hypothesis = [t(0.0, 15.0, "x")];
    // Scored: [0, 6) and [10, 15); x still maps to a (6 s vs 5 s).
    let e = der(&reference, &hypothesis, None, 0.0, true);
    assert_errors(e, 11.0, 0.0, 0.0, 5.0);
}

#[test]
fn collar_is_total_width_around_reference_boundaries() {
    let reference = [t(0.0, 10.0, "a"), t(10.0, 20.0, "b")];
    let hypothesis = [t(0.0, 10.2, "x"), t(10.2, 20.0, "y")];
    let uem = Some((0.0, 20.0));
    assert_errors(
        der(&reference, &hypothesis, uem, 0.0, false),
        20.0,
        0.0,
        0.0,
        0.2,
    );
    // 0.25 s each side of 0, 10 and 20 is not scored: 10.2 falls inside.
    assert_errors(
        der(&reference, &hypothesis, uem, 0.5, false),
        19.0,
        0.0,
        0.0,
        0.0,
    );
    // A 0.3 s collar (0.15 s per side) leaves [10.15, 10.2) confused.
    assert_errors(
        der(&reference, &hypothesis, uem, 0.3, false),
        19.4,
        0.0,
        0.0,
        0.05,
    );
}

#[test]
fn uem_crops_both_sides() {
    let reference = [t(0.0, 10.0, "a")];
    let hypothesis = [t(2.0, 12.0, "x")];
    assert_errors(
        der(&reference, &hypothesis, Some((1.0, 11.0)), 0.0, false),
        9.0,
        1.0,
        1.0,
        0.0,
    );
    // Without a uem the extent of both, [0, 12], is scored.
    assert_errors(
        der(&reference, &hypothesis, None, 0.0, false),
        10.0,
        2.0,
        2.0,
        0.0,
    );
    // A speaker entirely outside the uem does not exist for JER either.
    let reference = [t(0.0, 10.0, "a"), t(20.0, 30.0, "b")];
    let jer = jaccard_error(&reference, &hypothesis, Some((1.0, 11.0)), 0.0, false);
    assert!(close(jer, 2.0 / 10.0), "{jer}");
}

#[test]
fn more_hypothesis_speakers_than_reference() {
    let reference = [t(0.0, 10.0, "a")];
    let hypothesis = [t(0.0, 6.0, "x"), t(6.0, 10.0, "y"), t(10.0, 11.0, "z")];
    let e = der(&reference, &hypothesis, None, 0.0, false);
    assert_errors(e, 10.0, 0.0, 1.0, 4.0);
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eval")
}

fn read_tsv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    lines
        .map(|l| {
            let cells = l.split('\t').map(String::from);
            header.iter().map(|h| h.to_string()).zip(cells).collect()
        })
        .collect()
}

/// One row of pyannote.tsv.
struct Expected {
    set: String,
    uem: String,
    collar: f64,
    skip_overlap: bool,
    uri: String,
    errors: ErrorBreakdown,
    jer: f64,
}

fn expected_rows() -> Vec<Expected> {
    let f = |row: &BTreeMap<String, String>, k: &str| row[k].parse::<f64>().unwrap();
    read_tsv(&fixtures().join("pyannote.tsv"))
        .iter()
        .map(|row| Expected {
            set: row["set"].clone(),
            uem: row["uem"].clone(),
            collar: f(row, "collar"),
            skip_overlap: row["skip_overlap"] == "1",
            uri: row["uri"].clone(),
            errors: ErrorBreakdown {
                reference_s: f(row, "ref_s"),
                missed_s: f(row, "missed_s"),
                false_alarm_s: f(row, "false_alarm_s"),
                confusion_s: f(row, "confusion_s"),
            },
            jer: f(row, "jer"),
        })
        .collect()
}

/// DER and JER within 0.01 percentage points, components within 1 µs.
#[track_caller]
fn assert_agrees(what: &str, got: ErrorBreakdown, got_jer: f64, want: &Expected) {
    let w = want.errors;
    let der_gap = 100.0 * (got.der() - w.der()).abs();
    let jer_gap = 100.0 * (got_jer - want.jer).abs();
    let seconds_gap = [
        got.reference_s - w.reference_s,
        got.missed_s - w.missed_s,
        got.false_alarm_s - w.false_alarm_s,
        got.confusion_s - w.confusion_s,
    ]
    .iter()
    .fold(0.0_f64, |m, d| m.max(d.abs()));
    assert!(
        der_gap < 0.01 && jer_gap < 0.01 && seconds_gap < 1e-6,
        "{what}: got {got:?} JER {got_jer}, pyannote {w:?} JER {}",
        want.jer
    );
}

#[test]
fn agrees_with_pyannote_metrics_on_the_dev_set() {
    let durations: BTreeMap<String, f64> = read_tsv(&fixtures().join("durations.tsv"))
        .into_iter()
        .map(|r| (r["uri"].clone(), r["duration_s"].parse().unwrap()))
        .collect();
    let reference = read_rttm_dir(&fixtures().join("ref"));
    let rows = expected_rows();
    let mut checked = 0;
    for want in rows.iter().filter(|r| r.uem == "wav" && r.uri != "TOTAL") {
        let hyp = read_rttm(&fixtures().join(format!("hyp_{}/hyp.rttm", want.set))).unwrap();
        let r = &reference[&want.uri];
        let h = hyp.get(&want.uri).map(Vec::as_slice).unwrap_or_default();
        let uem = Some((0.0, durations[&want.uri]));
        let (collar, skip) = (want.collar, want.skip_overlap);
        let errors = diarization_error(r, h, uem, collar, skip);
        let jer = jaccard_error(r, h, uem, collar, skip);
        let what = format!("{} {} collar {collar} skip {skip}", want.set, want.uri);
        assert_agrees(&what, errors, jer, want);
        checked += 1;
    }
    assert_eq!(checked, 4 * 4 * 9, "every set, config and file");
}

#[test]
fn score_paths_agrees_with_pyannote_on_directories() {
    let rows = expected_rows();
    for set in ["shift", "confuse", "dropadd", "mixed"] {
        let hyp_dir = fixtures().join(format!("hyp_{set}"));
        // No WAVs beside the fixture references: the uem is the extent.
        let report = score_paths(&fixtures().join("ref"), &hyp_dir, 0.0, false).unwrap();
        let want: Vec<&Expected> = rows
            .iter()
            .filter(|r| r.set == set && r.uem == "extent")
            .collect();
        assert_eq!(report.files.len() + 1, want.len());
        for (file, w) in report.files.iter().zip(&want) {
            assert_eq!(file.uri, w.uri);
            assert_agrees(&format!("{set} {}", w.uri), file.errors, file.jer, w);
            assert_eq!(
                file.hypothesis_missing,
                set == "dropadd" && w.uri == "dev_syn03"
            );
        }
        let total = want.last().unwrap();
        assert_eq!(total.uri, "TOTAL");
        assert_agrees(
            &format!("{set} TOTAL"),
            report.total,
            report.total_jer,
            total,
        );
        let ignored: &[&str] = if set == "dropadd" { &["ghost"] } else { &[] };
        assert_eq!(report.ignored_hypotheses, ignored);
    }
}

fn read_rttm_dir(dir: &Path) -> BTreeMap<String, Vec<Turn>> {
    let mut all = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        all.extend(read_rttm(&entry.unwrap().path()).unwrap());
    }
    all
}

fn write_wav(path: &Path, seconds: u32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for _ in 0..seconds * spec.sample_rate {
        w.write_sample(0_i16).unwrap();
    }
    w.finalize().unwrap();
}

#[test]
fn score_paths_uses_the_wav_beside_the_reference_as_uem() {
    let dir = tempfile::tempdir().unwrap();
    let (ref_path, hyp_path) = (dir.path().join("ref.rttm"), dir.path().join("hyp.rttm"));
    std::fs::write(
        &ref_path,
        "SPEAKER a 1 0.5 0.5 <NA> <NA> s1 <NA> <NA>\nSPEAKER b 1 0 1 <NA> <NA> s1 <NA> <NA>\n",
    )
    .unwrap();
    std::fs::write(&hyp_path, "SPEAKER a 1 1.5 1.5 <NA> <NA> x <NA> <NA>\n").unwrap();

    // Extent [0.5, 3.0]: 0.5 s missed, 1.5 s false alarm.
    let report = score_paths(&ref_path, &hyp_path, 0.0, false).unwrap();
    assert_errors(report.files[0].errors, 0.5, 0.5, 1.5, 0.0);
    assert!(report.files[1].hypothesis_missing);
    assert_errors(report.total, 1.5, 1.5, 1.5, 0.0);

    // a.wav lasts 2 s: the false alarm past its end is not scored.
    write_wav(&dir.path().join("a.wav"), 2);
    let report = score_paths(&ref_path, &hyp_path, 0.0, false).unwrap();
    assert_errors(report.files[0].errors, 0.5, 0.5, 0.5, 0.0);
    assert!(close(report.total.der(), 2.0 / 1.5));

    let table = report.to_string();
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0]
            .split_whitespace()
            .eq(["uri", "ref_s", "DER%", "miss%", "FA%", "conf%", "JER%"])
    );
    assert!(
        lines[2].starts_with("a ") && lines[2].contains("200.00"),
        "{table}"
    );
    assert!(
        lines[3].starts_with("b ") && lines[3].contains("no hypothesis"),
        "{table}"
    );
    assert!(
        lines[5].starts_with("TOTAL") && lines[5].contains("133.33"),
        "{table}"
    );
}

#[test]
fn score_paths_reports_bad_rttm_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.rttm");
    std::fs::write(
        &path,
        "SPEAKER a 1 0 1 <NA> <NA> s <NA> <NA>\nSPEAKER a 1 x\n",
    )
    .unwrap();
    let err = score_paths(&path, &path, 0.0, false)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with(&format!("{}:2: ", path.display())), "{err}");
}
