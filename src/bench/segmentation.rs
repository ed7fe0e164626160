//! Windows per second of the segmentation network alone (no audio decoding,
//! no aggregation), the figure PyTorch's 7.7 ms/window baseline measures.

use std::time::Instant;

use candle_core::{Device, Result, Tensor};

use crate::audio::SAMPLE_RATE;
use crate::models::segmentation::{Segmentation, WINDOW_SAMPLES};
use crate::pipeline::PipelineParams;

/// Deterministic speech-like samples: a few harmonics under noise, in
/// [-1, 1]. The network's cost does not depend on the values, but NaN-free,
/// realistic magnitudes keep the measurement honest.
fn synthetic_samples(len: usize) -> Vec<f32> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    (0..len)
        .map(|i| {
            let t = (i % WINDOW_SAMPLES) as f32 / 16_000.0;
            let phase = 2.0 * std::f32::consts::PI * t;
            0.3 * (phase * 140.0).sin() + 0.1 * (phase * 280.0).sin() + 0.05 * noise()
        })
        .collect()
}

/// `batch` cut-out windows, (batch, 1, 80000).
fn synthetic_windows(batch: usize, device: &Device) -> Result<Tensor> {
    let samples = synthetic_samples(batch * WINDOW_SAMPLES);
    Tensor::from_vec(samples, (batch, 1, WINDOW_SAMPLES), device)
}

/// Windows per second, and the share of the wall time the host spent
/// issuing the forward pass (the rest it waited for the device; on the CPU
/// the host does all the work, so this is 1).
#[derive(Debug, Clone, Copy)]
pub struct SegmentationThroughput {
    pub windows_per_s: f64,
    pub host_share: f64,
}

/// Runs `model.forward` on batches of `batch` windows for at least
/// `min_secs` (after one untimed warm-up batch).
pub fn segmentation_throughput(
    model: &Segmentation,
    device: &Device,
    batch: usize,
    min_secs: f64,
) -> Result<SegmentationThroughput> {
    let xs = synthetic_windows(batch.max(1), device)?;
    model.forward(&xs)?;
    device.synchronize()?;
    let start = Instant::now();
    let mut windows = 0usize;
    let mut issuing = 0.0;
    loop {
        let issued = Instant::now();
        model.forward(&xs)?;
        issuing += issued.elapsed().as_secs_f64();
        device.synchronize()?;
        windows += batch.max(1);
        let elapsed = start.elapsed().as_secs_f64();
        if elapsed >= min_secs {
            return Ok(SegmentationThroughput {
                windows_per_s: windows as f64 / elapsed,
                host_share: issuing / elapsed,
            });
        }
    }
}

/// Seconds per batch of `batch` windows in each stage of the device-agnostic
/// forward pass (the device synchronised after each), averaged over `runs`
/// batches after a warm-up, in pass order. The windows are cut from one
/// signal at the pipeline's default step, as the pipeline runs them.
pub fn segmentation_stage_times(
    model: &Segmentation,
    device: &Device,
    batch: usize,
    runs: usize,
) -> Result<Vec<(&'static str, f64)>> {
    let step = (PipelineParams::default().step_s * SAMPLE_RATE as f64).round() as usize;
    let len = (batch.max(1) - 1) * step + WINDOW_SAMPLES;
    let signal = Tensor::from_vec(synthetic_samples(len), len, device)?;
    let mut totals: Vec<(&'static str, f64)> = Vec::new();
    for run in 0..=runs.max(1) {
        device.synchronize()?;
        let mut last = Instant::now();
        let mut stage = 0;
        model.forward_windows_marked(&signal, step, &mut |name| {
            device.synchronize()?;
            let now = Instant::now();
            if run > 0 {
                if stage == totals.len() {
                    totals.push((name, 0.0));
                }
                totals[stage].1 += (now - last).as_secs_f64();
            }
            stage += 1;
            last = now;
            Ok(())
        })?;
    }
    let runs = runs.max(1) as f64;
    Ok(totals.into_iter().map(|(n, t)| (n, t / runs)).collect())
}
