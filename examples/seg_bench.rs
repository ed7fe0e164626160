//! Segmentation throughput on the CPU at batch 1, 8 and 32.
//!
//! `RAYON_NUM_THREADS=2 cargo run --release --example seg_bench [min_secs] [2022|3.0]`

use candle_core::Device;
use diarist::bench::segmentation::segmentation_throughput;
use diarist::models::segmentation::{Segmentation, SegmentationModel};
use diarist::models::weights::default_models_dir;

fn main() -> anyhow::Result<()> {
    let min_secs: f64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(5.0);
    let which: SegmentationModel = match std::env::args().nth(2) {
        Some(name) => name.parse()?,
        None => SegmentationModel::default(),
    };
    let device = Device::Cpu;
    let model = Segmentation::load(which, &default_models_dir(), &device)?;
    // Windows every 0.5 s: one window per 0.5 s of audio.
    let step_s = 8_000.0 / 16_000.0;
    for batch in [1, 8, 32] {
        let per_s = segmentation_throughput(&model, &device, batch, min_secs)?.windows_per_s;
        println!(
            "batch {batch:>2}: {per_s:8.1} windows/s, {:6.2} ms/window, {:6.1}x real time (0.5 s step)",
            1000.0 / per_s,
            per_s * step_s
        );
    }
    Ok(())
}
