//! `diarist score`: DER and JER of hypothesis RTTM against reference RTTM.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// Reference RTTM file, or a folder of them (WAVs beside them set the
    /// scored region to the whole recording).
    reference: PathBuf,
    /// Hypothesis RTTM file, or a folder of them; matched by uri.
    hypothesis: PathBuf,
    /// Forgiveness collar: total width in seconds around each reference
    /// boundary (pyannote.metrics convention; md-eval's 0.25 s is 0.5 here).
    #[arg(long, default_value_t = 0.0)]
    collar: f64,
    /// Do not score regions where reference speakers overlap.
    #[arg(long)]
    skip_overlap: bool,
}

pub fn run(args: ScoreArgs) -> anyhow::Result<ExitCode> {
    let report = diarist::eval::score_paths(
        &args.reference,
        &args.hypothesis,
        args.collar,
        args.skip_overlap,
    )?;
    print!("{report}");
    Ok(ExitCode::SUCCESS)
}
