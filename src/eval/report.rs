//! Scoring RTTM files or directories against each other, the way
//! `/work/shared/tools/score.py` (pyannote.metrics) does, and the table that
//! `diarist score` prints.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{ErrorBreakdown, JaccardSum, diarization_error, jaccard_components};
use crate::diarization::Turn;
use crate::error::{Error, Result};
use crate::export::read_rttm;

/// The scores of one recording.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileScore {
    pub uri: String,
    pub errors: ErrorBreakdown,
    /// Jaccard error rate as a fraction.
    pub jer: f64,
    /// No hypothesis had this uri: it was scored as empty (all speech missed).
    pub hypothesis_missing: bool,
}

/// Per-file scores in uri order and their duration-weighted total.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreReport {
    pub files: Vec<FileScore>,
    /// Seconds summed over files, so `total.der()` is the set-level DER.
    pub total: ErrorBreakdown,
    /// Set-level JER: per-speaker errors pooled over every reference speaker
    /// of every file, as pyannote accumulates it.
    pub total_jer: f64,
    /// Hypothesis uris with no reference; they were not scored.
    pub ignored_hypotheses: Vec<String>,
}

/// Scores the RTTM file or directory (every `*.rttm` in it, not recursive)
/// `hypothesis` against `reference`, recording by recording (matched by uri).
/// The scored region of a recording is `[0, duration]` of `<uri>.wav` in the
/// reference's directory when that file exists, else the extent of reference
/// and hypothesis speech. A reference uri with no hypothesis is scored as
/// empty and flagged in its [`FileScore`].
pub fn score_paths(
    reference: &Path,
    hypothesis: &Path,
    collar_s: f64,
    skip_overlap: bool,
) -> Result<ScoreReport> {
    let references = read_rttms(reference)?;
    let hypotheses = read_rttms(hypothesis)?;
    if references.is_empty() {
        return Err(Error::InvalidOption(format!(
            "{}: no SPEAKER lines in the reference RTTM",
            reference.display()
        )));
    }
    let wav_dir = if reference.is_dir() {
        reference
    } else {
        reference.parent().unwrap_or(Path::new("."))
    };
    let mut files = Vec::new();
    let mut total = ErrorBreakdown::default();
    let mut jaccard = JaccardSum::default();
    for (uri, ref_turns) in &references {
        let hyp_turns = hypotheses.get(uri);
        let hyp = hyp_turns.map(Vec::as_slice).unwrap_or_default();
        let uem = wav_duration(&wav_dir.join(format!("{uri}.wav")))?.map(|d| (0.0, d));
        let errors = diarization_error(ref_turns, hyp, uem, collar_s, skip_overlap);
        let jer = jaccard_components(ref_turns, hyp, uem, collar_s, skip_overlap);
        total += errors;
        jaccard.error += jer.error;
        jaccard.speakers += jer.speakers;
        files.push(FileScore {
            uri: uri.clone(),
            errors,
            jer: jer.rate(),
            hypothesis_missing: hyp_turns.is_none(),
        });
    }
    let ignored_hypotheses = hypotheses
        .keys()
        .filter(|uri| !references.contains_key(*uri))
        .cloned()
        .collect();
    Ok(ScoreReport {
        files,
        total,
        total_jer: jaccard.rate(),
        ignored_hypotheses,
    })
}

/// All recordings in an RTTM file, or in every `*.rttm` of a directory.
fn read_rttms(path: &Path) -> Result<BTreeMap<String, Vec<Turn>>> {
    if !path.is_dir() {
        return read_rttm(path);
    }
    let mut paths: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| Error::io(path, e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .is_some_and(|x| x.eq_ignore_ascii_case("rttm"))
        })
        .collect();
    paths.sort();
    let mut all: BTreeMap<String, Vec<Turn>> = BTreeMap::new();
    for p in paths {
        for (uri, turns) in read_rttm(&p)? {
            all.entry(uri).or_default().extend(turns);
        }
    }
    Ok(all)
}

/// Duration in seconds of the WAV at `path`, or `None` if there is none.
fn wav_duration(path: &Path) -> Result<Option<f64>> {
    if !path.is_file() {
        return Ok(None);
    }
    let reader = hound::WavReader::open(path)
        .map_err(|e| Error::decode(path, format!("cannot read WAV header: {e}")))?;
    let rate = reader.spec().sample_rate;
    Ok(Some(f64::from(reader.duration()) / f64::from(rate)))
}

impl fmt::Display for ScoreReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .files
            .iter()
            .map(|s| s.uri.chars().count())
            .max()
            .unwrap_or(0)
            .max(5);
        let header = format!(
            "{:<width$} {:>9} {:>7} {:>7} {:>7} {:>7} {:>7}",
            "uri", "ref_s", "DER%", "miss%", "FA%", "conf%", "JER%"
        );
        let rule = "-".repeat(header.len());
        writeln!(f, "{header}\n{rule}")?;
        for s in &self.files {
            let note = if s.hypothesis_missing {
                "  (no hypothesis: all missed)"
            } else {
                ""
            };
            writeln!(f, "{}{note}", row(&s.uri, &s.errors, s.jer, width))?;
        }
        writeln!(f, "{rule}")?;
        write!(f, "{}", row("TOTAL", &self.total, self.total_jer, width))?;
        for uri in &self.ignored_hypotheses {
            write!(
                f,
                "\nwarning: hypothesis uri {uri:?} has no reference; ignored"
            )?;
        }
        Ok(())
    }
}

fn row(uri: &str, e: &ErrorBreakdown, jer: f64, width: usize) -> String {
    let pct = |v: f64| {
        if e.reference_s > 0.0 {
            format!("{:.2}", 100.0 * v / e.reference_s)
        } else {
            "-".to_string()
        }
    };
    format!(
        "{uri:<width$} {:>9.2} {:>7.2} {:>7} {:>7} {:>7} {:>7.2}",
        e.reference_s,
        100.0 * e.der(),
        pct(e.missed_s),
        pct(e.false_alarm_s),
        pct(e.confusion_s),
        100.0 * jer,
    )
}
