//! Command-line front end: argument parsing and one module per subcommand.

mod bench;
mod diarize;
mod inputs;
mod live_bench;
mod record;
mod score;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use diarist::runtime::DevicePreference;

#[derive(Debug, Parser)]
#[command(
    name = "diarist",
    version,
    about = "Who spoke when: on-device speaker diarization"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Diarize audio files (or every audio file in the given folders).
    Diarize(diarize::DiarizeArgs),
    /// Score hypothesis RTTM against reference RTTM (DER, JER).
    Score(score::ScoreArgs),
    /// Measure speed and memory of the networks or of the whole pipeline.
    Bench(bench::BenchArgs),
    /// Record from the microphone with live speaker labels, then diarize.
    Record(record::RecordArgs),
    /// Repair recordings that a crash left unfinished.
    Recover(record::RecoverArgs),
}

/// Options shared by the commands that run the networks.
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    /// Where to run the networks: auto, cpu, cuda or metal.
    #[arg(long, default_value = "auto", value_parser = parse_device)]
    device: DevicePreference,
    /// Folder holding the model weights (default: the bundled models/).
    #[arg(long, value_name = "DIR")]
    models_dir: Option<PathBuf>,
    /// Most segmentation windows per network call on a GPU (fewer when free
    /// memory is short; the CPU uses at most 16).
    #[arg(long, value_name = "N", default_value_t = diarist::runtime::DEFAULT_MAX_BATCH)]
    max_batch: usize,
}

fn parse_device(s: &str) -> Result<DevicePreference, String> {
    s.parse().map_err(|e: diarist::Error| e.to_string())
}

/// `--models SEG+ENC`: SEG is 2022 (pyannote/segmentation 2022.07) or 3.0
/// (pyannote/segmentation-3.0), ENC is ge2e or campplus.
fn parse_models(s: &str) -> Result<diarist::ModelChoice, String> {
    s.parse().map_err(|e: diarist::Error| e.to_string())
}

impl EngineArgs {
    /// The engine's configuration as these flags ask.
    fn config(&self) -> diarist::runtime::EngineConfig {
        let mut config = diarist::runtime::EngineConfig::new(self.models_dir());
        config.device = self.device;
        config.max_batch = self.max_batch.max(1);
        config
    }

    fn models_dir(&self) -> PathBuf {
        self.models_dir
            .clone()
            .unwrap_or_else(diarist::models::weights::default_models_dir)
    }
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // Before anything computes: `bench --networks` runs them without an engine.
    diarist::runtime::init_compute_pool();
    match cli.command {
        Command::Diarize(args) => diarize::run(args),
        Command::Score(args) => score::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Record(args) => record::run(args),
        Command::Recover(args) => record::recover(args),
    }
}
