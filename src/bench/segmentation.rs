//! Windows per second of the segmentation network alone (no audio decoding,
//! no aggregation), the figure PyTorch's 7.7 ms/window baseline measures.

use std::time::Instant;

use candle_core::{Device, Module, Result, Tensor};

use crate::models::segmentation::{LEAKY_SLOPE, Segmentation};
use crate::models::sincnet::STAGES;

/// Deterministic speech-like samples: a few harmonics under noise, in
/// [-1, 1], repeating every `period` samples. The network's cost does not
/// depend on the values, but NaN-free, realistic magnitudes keep the
/// measurement honest.
fn synthetic_samples(len: usize, period: usize) -> Vec<f32> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    (0..len)
        .map(|i| {
            let t = (i % period) as f32 / 16_000.0;
            let phase = 2.0 * std::f32::consts::PI * t;
            0.3 * (phase * 140.0).sin() + 0.1 * (phase * 280.0).sin() + 0.05 * noise()
        })
        .collect()
}

/// `batch` cut-out windows of `window` samples, (batch, 1, window).
fn synthetic_windows(batch: usize, window: usize, device: &Device) -> Result<Tensor> {
    let samples = synthetic_samples(batch * window, window);
    Tensor::from_vec(samples, (batch, 1, window), device)
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
    let window = model.geometry().window_samples;
    let xs = synthetic_windows(batch.max(1), window, device)?;
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
/// signal every `step` samples (a multiple of the sinc stride), as the
/// pipeline runs them.
pub fn segmentation_stage_times(
    model: &Segmentation,
    device: &Device,
    batch: usize,
    step: usize,
    runs: usize,
) -> Result<Vec<(&'static str, f64)>> {
    let window = model.geometry().window_samples;
    let len = (batch.max(1) - 1) * step + window;
    let signal = Tensor::from_vec(synthetic_samples(len, window), len, device)?;
    let mut totals: Vec<(&'static str, f64)> = Vec::new();
    for run in 0..=runs.max(1) {
        device.synchronize()?;
        let mut stage = 0;
        let mut last = Instant::now();
        staged_forward_windows(model, &signal, step, &mut |name| {
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

/// `Segmentation::forward_windows` off the CPU fast paths, chained from the
/// model's building blocks, calling `after(stage name)` after each stage.
fn staged_forward_windows(
    model: &Segmentation,
    signal: &Tensor,
    step: usize,
    after: &mut dyn FnMut(&'static str) -> Result<()>,
) -> Result<Tensor> {
    const NAMES: [&str; STAGES] = [
        "sincnet: pool + norm 1",
        "sincnet: conv + pool + norm 2",
        "sincnet: conv + pool + norm 3",
    ];
    let window = model.geometry().window_samples;
    let sincnet = model.sincnet();
    let norms = sincnet.window_norms(signal, window, step)?;
    after("sincnet: waveform norm")?;
    let mut xs = sincnet.sinc_conv_windows(signal, &norms, window, step)?; // (count, 80, sinc frames)
    after("sincnet: sinc convolution")?;
    for (i, name) in NAMES.into_iter().enumerate() {
        xs = sincnet.stage(i, &xs)?;
        after(name)?;
    }
    let xs = xs.to_dtype(signal.dtype())?.transpose(1, 2)?.contiguous()?; // (count, frames, 60)
    let mut xs = model.lstm().forward_generic(&xs)?; // (count, frames, 256)
    after("lstm")?;
    for linear in model.linear() {
        xs = candle_nn::ops::leaky_relu(&linear.forward(&xs)?, LEAKY_SLOPE)?; // (count, frames, 128)
    }
    let scores = model.activation(&model.classifier().forward(&xs)?)?; // (count, frames, classes)
    after("linear head")?;
    Ok(scores)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::segmentation::SegmentationModel;

    /// The profiled stages are the pipeline's computation: chained, they
    /// give what `forward_windows` gives.
    #[test]
    fn stages_chain_to_forward_windows() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        for model in SegmentationModel::ALL {
            let seg = Segmentation::load(model, &dir, &Device::Cpu).unwrap();
            let (step, count) = (16_000, 3);
            let window = seg.geometry().window_samples;
            let len = (count - 1) * step + window;
            let signal =
                Tensor::from_vec(synthetic_samples(len, 12_345), len, &Device::Cpu).unwrap();
            let mut names = Vec::new();
            let staged = staged_forward_windows(&seg, &signal, step, &mut |name| {
                names.push(name);
                Ok(())
            })
            .unwrap();
            assert_eq!(names.len(), 7);
            let fast = seg.forward_windows(&signal, step).unwrap();
            let diff = (staged - fast)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            // The CPU path runs float32 where the staged one runs float64.
            assert!(diff < 1e-3, "{}: {diff}", model.name());
        }
    }
}
