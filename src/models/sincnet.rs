//! SincNet, the learnable front end of PyanNet: waveform → 60 features per
//! frame (one frame every 270 samples).
//!
//! Port of pyannote/pyannote-audio 4.0.7 `models/blocks/sincnet.py` `SincNet`
//! and asteroid-filterbanks 0.4.0 `ParamSincFB` (MIT). The sinc filterbank only
//! depends on the weights, so it is computed once at load (in float64, then
//! stored in the dtype each path computes in) instead of on every forward
//! as PyTorch does.

use candle_core::{D, DType, Device, Module, Result, Tensor};
use candle_nn::{Conv1d, Conv1dConfig, VarBuilder};

use crate::models::sincnet_cpu::{HostConv, HostNorm, HostSincNet, HostSincNetWeights};

/// Hyper-parameters of the SincNet front end.
#[derive(Debug, Clone, PartialEq)]
pub struct SincNetConfig {
    pub sample_rate: usize,
    /// Number of sinc filters; the first half are cosine (even) filters, the
    /// second half sine (odd) filters.
    pub num_filters: usize,
    /// Taps of each sinc filter (odd).
    pub filter_taps: usize,
    pub stride: usize,
    pub min_low_hz: f64,
    pub min_band_hz: f64,
    /// Channels of the two learned convolutions that follow.
    pub conv_channels: usize,
    pub conv_kernel: usize,
    pub pool: usize,
    /// Take the fused float32 path (`sincnet_cpu`) when the weights are on
    /// the CPU; off, the CPU runs the device-agnostic code GPUs run.
    pub cpu_fast_path: bool,
}

impl Default for SincNetConfig {
    fn default() -> Self {
        Self {
            sample_rate: 16_000,
            num_filters: 80,
            filter_taps: 251,
            stride: 10,
            min_low_hz: 50.0,
            min_band_hz: 50.0,
            conv_channels: 60,
            conv_kernel: 5,
            pool: 3,
            cpu_fast_path: true,
        }
    }
}

const NORM_EPS: f64 = 1e-5;
const LEAKY_SLOPE: f64 = 0.01;

/// `InstanceNorm1d(affine=True)`: per (sample, channel) statistics over time,
/// biased variance, no running statistics.
pub(crate) struct InstanceNorm {
    /// (1, channels, 1)
    weight: Tensor,
    /// (1, channels, 1)
    bias: Tensor,
}

impl InstanceNorm {
    fn new(channels: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            weight: vb.get(channels, "weight")?.reshape((1, channels, 1))?,
            bias: vb.get(channels, "bias")?.reshape((1, channels, 1))?,
        })
    }

    fn to_dtype(&self, dtype: DType) -> Result<Self> {
        Ok(Self {
            weight: self.weight.to_dtype(dtype)?,
            bias: self.bias.to_dtype(dtype)?,
        })
    }
}

/// The dtype the device-agnostic path computes in: float64 wherever the
/// device has it (all but Metal). The front end normalises each band by its
/// own spread; in a quiet band that spread is small, and float32 rounding
/// of the convolutions becomes errors of up to 1e-3 at the network's output
/// (3 windows of the bundled sample). In float64 the front end leaves the
/// output within 4e-5 of a float64 evaluation of the whole network, while
/// the float32 LSTM after it costs nothing measurable.
fn precise_dtype(device: &Device) -> DType {
    if device.is_metal() {
        DType::F32
    } else {
        DType::F64
    }
}

fn conv_to_dtype(conv: &Conv1d, dtype: DType) -> Result<Conv1d> {
    let bias = conv.bias().map(|b| b.to_dtype(dtype)).transpose()?;
    Ok(Conv1d::new(
        conv.weight().to_dtype(dtype)?,
        bias,
        *conv.config(),
    ))
}

impl Module for InstanceNorm {
    /// xs: (batch, channels, time) → same shape
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let mean = xs.mean_keepdim(D::Minus1)?; // (batch, channels, 1)
        let centered = xs.broadcast_sub(&mean)?;
        let var = centered.sqr()?.mean_keepdim(D::Minus1)?; // (batch, channels, 1)
        // Folding the affine weight into the per-channel scale saves a full
        // pass over the (long) time axis.
        let scale = (var + NORM_EPS)?
            .sqrt()?
            .recip()?
            .broadcast_mul(&self.weight)?;
        centered.broadcast_mul(&scale)?.broadcast_add(&self.bias)
    }
}

/// `MaxPool1d(k, k)` over the last axis (trailing samples that do not fill a
/// window are dropped, as PyTorch does). xs: (batch, channels, time).
///
/// An element-wise maximum over the k strided views, not a reduction over a
/// last axis of k: GPU reductions launch one thread block per output, which
/// for 50 million outputs of 3 values each is most of SincNet's time.
fn max_pool(xs: &Tensor, k: usize) -> Result<Tensor> {
    let (batch, channels, time) = xs.dims3()?;
    let out = time / k;
    let grouped = xs
        .narrow(2, 0, out * k)?
        .contiguous()?
        .reshape((batch, channels, out, k))?;
    let mut max = grouped.narrow(3, 0, 1)?;
    for i in 1..k {
        max = max.maximum(&grouped.narrow(3, i, 1)?)?;
    }
    max.squeeze(3) // (batch, channels, out)
}

/// asteroid `ParamSincFB` filters from the checkpoint's `low_hz_` (F/2, 1),
/// `band_hz_` (F/2, 1), `n_` (1, taps/2) and `window_` (taps/2) tensors.
/// Returns (F, 1, taps), row-major: cosine filters first, then sine filters.
pub fn sinc_filterbank(cfg: &SincNetConfig, vb: &VarBuilder) -> Result<Vec<f32>> {
    let half_filters = cfg.num_filters / 2;
    let half_taps = cfg.filter_taps / 2;
    let read = |name: &str, shape: &[usize]| -> Result<Vec<f64>> {
        vb.get(shape, name)?
            .to_dtype(DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()
    };
    let low_hz = read("low_hz_", &[half_filters, 1])?;
    let band_hz = read("band_hz_", &[half_filters, 1])?;
    let n = read("n_", &[1, half_taps])?;
    let window = read("window_", &[half_taps])?;

    let nyquist = cfg.sample_rate as f64 / 2.0;
    let mut filters = vec![0f32; cfg.num_filters * cfg.filter_taps];
    for f in 0..half_filters {
        let low = cfg.min_low_hz + low_hz[f].abs();
        let high = (low + cfg.min_band_hz + band_hz[f].abs()).clamp(cfg.min_low_hz, nyquist);
        let band = high - low;
        let cos_row = &mut filters[f * cfg.filter_taps..(f + 1) * cfg.filter_taps];
        for j in 0..half_taps {
            let left = ((n[j] * high).sin() - (n[j] * low).sin()) / (n[j] / 2.0) * window[j];
            cos_row[j] = (left / (2.0 * band)) as f32;
            cos_row[cfg.filter_taps - 1 - j] = cos_row[j];
        }
        // The centre tap is 2·band / (2·band).
        cos_row[half_taps] = 1.0;
        let sin_start = (half_filters + f) * cfg.filter_taps;
        let sin_row = &mut filters[sin_start..sin_start + cfg.filter_taps];
        for j in 0..half_taps {
            let left = ((n[j] * low).cos() - (n[j] * high).cos()) / (n[j] / 2.0) * window[j];
            sin_row[j] = (left / (2.0 * band)) as f32;
            sin_row[cfg.filter_taps - 1 - j] = -sin_row[j];
        }
        sin_row[half_taps] = 0.0;
    }
    Ok(filters)
}

pub struct SincNet {
    /// What the device-agnostic path computes in (`precise_dtype`); the
    /// tensors below are stored in it.
    dtype: DType,
    wav_norm: InstanceNorm,
    /// (filters, 1, taps)
    filters: Tensor,
    /// (1, filters, 1): each filter's taps summed, what a constant offset of
    /// the waveform adds to its sinc frames.
    filter_sums: Tensor,
    stride: usize,
    pool: usize,
    convs: [Conv1d; 2],
    norms: [InstanceNorm; 3],
    /// Present when the weights live on the CPU.
    host: Option<HostSincNet>,
}

fn host_vec(t: &Tensor) -> Result<Vec<f32>> {
    t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()
}

impl InstanceNorm {
    fn to_host(&self) -> Result<HostNorm> {
        Ok(HostNorm {
            weight: host_vec(&self.weight)?,
            bias: host_vec(&self.bias)?,
        })
    }
}

fn host_conv(conv: &Conv1d) -> Result<HostConv> {
    let (c_out, c_in, kernel) = conv.weight().dims3()?;
    let bias = match conv.bias() {
        Some(bias) => host_vec(bias)?,
        None => vec![0.0; c_out],
    };
    Ok(HostConv {
        weight: host_vec(conv.weight())?,
        bias,
        c_out,
        c_in,
        kernel,
    })
}

impl SincNet {
    /// `vb` points at the checkpoint's `sincnet` prefix.
    pub fn new(cfg: &SincNetConfig, vb: VarBuilder) -> Result<Self> {
        let filters = sinc_filterbank(cfg, &vb.pp("conv1d.0.filterbank"))?;
        let filters =
            Tensor::from_vec(filters, (cfg.num_filters, 1, cfg.filter_taps), vb.device())?;
        let conv = |c_in: usize, index: usize| {
            candle_nn::conv1d(
                c_in,
                cfg.conv_channels,
                cfg.conv_kernel,
                Conv1dConfig::default(),
                vb.pp(format!("conv1d.{index}")),
            )
        };
        let norm = |channels: usize, index: usize| {
            InstanceNorm::new(channels, vb.pp(format!("norm1d.{index}")))
        };
        let wav_norm = InstanceNorm::new(1, vb.pp("wav_norm1d"))?;
        let convs = [conv(cfg.num_filters, 1)?, conv(cfg.conv_channels, 2)?];
        let norms = [
            norm(cfg.num_filters, 0)?,
            norm(cfg.conv_channels, 1)?,
            norm(cfg.conv_channels, 2)?,
        ];
        let host = if vb.device().is_cpu() && cfg.cpu_fast_path {
            Some(HostSincNet::new(HostSincNetWeights {
                wav_norm: wav_norm.to_host()?,
                filters: host_vec(&filters)?,
                num_filters: cfg.num_filters,
                taps: cfg.filter_taps,
                stride: cfg.stride,
                pool: cfg.pool,
                convs: [host_conv(&convs[0])?, host_conv(&convs[1])?],
                norms: [
                    norms[0].to_host()?,
                    norms[1].to_host()?,
                    norms[2].to_host()?,
                ],
                eps: NORM_EPS as f32,
                slope: LEAKY_SLOPE as f32,
            }))
        } else {
            None
        };
        let dtype = precise_dtype(vb.device());
        let filters = filters.to_dtype(dtype)?;
        Ok(Self {
            dtype,
            wav_norm: wav_norm.to_dtype(dtype)?,
            filter_sums: filters.sum_keepdim(2)?.reshape((1, cfg.num_filters, 1))?,
            filters,
            stride: cfg.stride,
            pool: cfg.pool,
            convs: [
                conv_to_dtype(&convs[0], dtype)?,
                conv_to_dtype(&convs[1], dtype)?,
            ],
            norms: [
                norms[0].to_dtype(dtype)?,
                norms[1].to_dtype(dtype)?,
                norms[2].to_dtype(dtype)?,
            ],
            host,
        })
    }

    /// The computed sinc filterbank, (filters, 1, taps), float32.
    pub fn filters(&self) -> Result<Tensor> {
        self.filters.to_dtype(DType::F32)
    }

    /// What the device-agnostic building blocks below compute in (float64
    /// except on Metal; see `precise_dtype`).
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Every window of `samples` samples, one every `step`, of one signal
    /// (torch's `signal.unfold(0, samples, step)`): signal (len,) → (count,
    /// 60, frames) with count = (len − samples) / step + 1, in signal's
    /// dtype. The same function as `forward` on the cut-out windows, but when
    /// `step` is a multiple of the sinc stride the overlapping parts' sinc
    /// convolution is computed once: with 5 s windows every second, a fifth
    /// of the work and memory of convolving the cut-out windows.
    pub fn forward_windows(&self, signal: &Tensor, samples: usize, step: usize) -> Result<Tensor> {
        let count = window_count(signal, samples, step)?;
        if let Some(host) = self.host_for(signal) {
            let xs = host.forward_windows(&signal.to_vec1::<f32>()?, step, count, samples)?;
            let (channels, frames) = host.output_shape(samples).unwrap_or((0, 0));
            return Tensor::from_vec(xs, (count, channels, frames), signal.device());
        }
        if !step.is_multiple_of(self.stride) {
            return self.forward(&unfold(signal, samples, step, count)?);
        }
        let norms = self.window_norms(signal, samples, step)?;
        let mut xs = self.sinc_conv_windows(signal, &norms, samples, step)?; // (count, 80, sinc frames)
        for stage in 0..STAGES {
            xs = self.stage(stage, &xs)?;
        }
        xs.to_dtype(signal.dtype()) // (count, 60, frames)
    }

    /// The fused CPU path, when it applies to `xs`.
    fn host_for(&self, xs: &Tensor) -> Option<&HostSincNet> {
        self.host
            .as_ref()
            .filter(|_| xs.device().is_cpu() && xs.dtype() == DType::F32)
    }

    // The device-agnostic building blocks. `forward` and `forward_windows`
    // chain them off the CPU fast path; they are public so that parity
    // tests can check every stage and the benchmark can time each one.

    /// The waveform's instance norm: wav (batch, 1, samples) → the same, in
    /// `dtype()`.
    pub fn normalize(&self, wav: &Tensor) -> Result<Tensor> {
        self.wav_norm.forward(&wav.to_dtype(self.dtype)?)
    }

    /// The sinc filterbank: normalised wav (batch, 1, samples) in `dtype()` →
    /// (batch, 80, sinc frames), before `abs`.
    pub fn sinc_conv(&self, wav_norm: &Tensor) -> Result<Tensor> {
        let params = Conv1dConfig {
            stride: self.stride,
            ..Default::default()
        };
        wav_norm.conv1d(
            &self.filters,
            params.padding,
            params.stride,
            params.dilation,
            params.groups,
        ) // (batch, filters, sinc frames)
    }

    /// The waveform norm of every window of `samples`, one every `step`, of
    /// signal (len,): as it is affine, window c's normalised samples are
    /// gain[c]·x + offset[c].
    pub fn window_norms(
        &self,
        signal: &Tensor,
        samples: usize,
        step: usize,
    ) -> Result<WindowNorms> {
        let count = window_count(signal, samples, step)?;
        let span = (count - 1) * step + samples;
        let signal = signal.narrow(0, 0, span)?.to_dtype(self.dtype)?;
        let windows = signal.unfold(0, samples, step)?.contiguous()?; // (count, samples)
        let mean = windows.mean_keepdim(1)?; // (count, 1)
        let var = windows.broadcast_sub(&mean)?.sqr()?.mean_keepdim(1)?;
        drop(windows);
        let gain = (var + NORM_EPS)?
            .sqrt()?
            .recip()?
            .broadcast_mul(&self.wav_norm.weight.reshape((1, 1))?)?;
        let offset = self
            .wav_norm
            .bias
            .reshape((1, 1))?
            .broadcast_sub(&gain.mul(&mean)?)?;
        Ok(WindowNorms {
            gain: gain.unsqueeze(2)?,     // (count, 1, 1)
            offset: offset.unsqueeze(2)?, // (count, 1, 1)
        })
    }

    /// The sinc frames of every window of `samples`, one every `step` (a
    /// multiple of the sinc stride), of signal (len,), cut from one
    /// convolution of the whole span: conv(gain·x + offset) =
    /// gain·conv(x) + offset·Σtaps. → (count, 80, sinc frames) in `dtype()`.
    pub fn sinc_conv_windows(
        &self,
        signal: &Tensor,
        norms: &WindowNorms,
        samples: usize,
        step: usize,
    ) -> Result<Tensor> {
        let count = window_count(signal, samples, step)?;
        if !step.is_multiple_of(self.stride) || norms.gain.dim(0)? != count {
            candle_core::bail!(
                "sincnet: windows every {step} samples share no sinc frames (stride {}), or the \
                 norms are not theirs",
                self.stride
            )
        }
        let span = (count - 1) * step + samples;
        let signal = signal.narrow(0, 0, span)?.to_dtype(self.dtype)?;
        let conv = self.sinc_conv(&signal.reshape((1, 1, span))?)?; // (1, 80, span frames)
        let taps = self.filters.dim(2)?;
        let frames = (samples - taps) / self.stride + 1;
        let per_window = conv
            .squeeze(0)?
            .unfold(1, frames, step / self.stride)? // (80, count, frames)
            .transpose(0, 1)?; // (count, 80, frames)
        per_window
            .broadcast_mul(&norms.gain)?
            .broadcast_add(&norms.offset.broadcast_mul(&self.filter_sums)?)
    }

    /// Stage `i` of `STAGES` after the sinc convolution, in `dtype()`:
    /// 0: abs → pool → norm → leaky ReLU, (batch, 80, sinc frames) → (batch,
    /// 80, /3); 1 and 2: conv → pool → norm → leaky ReLU, → (batch, 60, …).
    pub fn stage(&self, i: usize, xs: &Tensor) -> Result<Tensor> {
        let xs = match i {
            0 => xs.abs()?,
            1 | 2 => self.convs[i - 1].forward(xs)?,
            _ => candle_core::bail!("sincnet: no stage {i}"),
        };
        let xs = max_pool(&xs, self.pool)?;
        candle_nn::ops::leaky_relu(&self.norms[i].forward(&xs)?, LEAKY_SLOPE)
    }
}

/// Stages after the sinc convolution (`SincNet::stage`).
pub const STAGES: usize = 3;

/// Per-window affine waveform norms (`SincNet::window_norms`).
pub struct WindowNorms {
    /// (count, 1, 1)
    gain: Tensor,
    /// (count, 1, 1)
    offset: Tensor,
}

/// How many windows of `samples`, one every `step`, signal (len,) holds.
fn window_count(signal: &Tensor, samples: usize, step: usize) -> Result<usize> {
    let len = signal.dim(0)?;
    if len < samples || step == 0 {
        candle_core::bail!("sincnet: {len} samples hold no window of {samples}")
    }
    Ok((len - samples) / step + 1)
}

/// signal (len,) → (count, 1, samples): window c is signal[c·step..][..samples].
pub(crate) fn unfold(signal: &Tensor, samples: usize, step: usize, count: usize) -> Result<Tensor> {
    let windows: Vec<Tensor> = (0..count)
        .map(|c| signal.narrow(0, c * step, samples))
        .collect::<Result<_>>()?;
    Tensor::stack(&windows, 0)?.unsqueeze(1)
}

impl Module for SincNet {
    /// wav: (batch, 1, samples) → (batch, 60, frames) in wav's dtype.
    fn forward(&self, wav: &Tensor) -> Result<Tensor> {
        if let Some(host) = self.host_for(wav) {
            let (batch, channels, samples) = wav.dims3()?;
            if channels != 1 {
                candle_core::bail!("sincnet: expected mono input, got shape {:?}", wav.shape())
            }
            let xs = host.forward(&wav.flatten_all()?.to_vec1::<f32>()?, batch, samples)?;
            let (channels, frames) = host.output_shape(samples).unwrap_or((0, 0));
            return Tensor::from_vec(xs, (batch, channels, frames), wav.device());
        }
        let mut xs = self.sinc_conv(&self.normalize(wav)?)?; // (batch, 80, sinc frames)
        for stage in 0..STAGES {
            xs = self.stage(stage, &xs)?;
        }
        xs.to_dtype(wav.dtype()) // (batch, 60, frames)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn max_pool_drops_the_tail() {
        let xs = Tensor::new(&[[[1f32, 5., 2., -1., -3., -2., 9.]]], &Device::Cpu).unwrap();
        let pooled = max_pool(&xs, 3).unwrap();
        assert_eq!(pooled.to_vec3::<f32>().unwrap(), vec![vec![vec![5., -1.]]]);
    }

    #[test]
    fn instance_norm_uses_biased_variance() {
        let vb = VarBuilder::zeros(DType::F32, &Device::Cpu);
        let mut norm = InstanceNorm::new(1, vb).unwrap();
        norm.weight = Tensor::new(&[[[2f32]]], &Device::Cpu).unwrap();
        norm.bias = Tensor::new(&[[[0.5f32]]], &Device::Cpu).unwrap();
        let xs = Tensor::new(&[[[1f32, 3.]]], &Device::Cpu).unwrap();
        // mean 2, biased variance 1
        let want = [
            -1.0 / (1.0 + NORM_EPS).sqrt(),
            1.0 / (1.0 + NORM_EPS).sqrt(),
        ];
        let got = norm.forward(&xs).unwrap().flatten_all().unwrap();
        for (g, w) in got.to_vec1::<f32>().unwrap().iter().zip(want) {
            assert!((*g as f64 - (2.0 * w + 0.5)).abs() < 1e-6, "{g} vs {w}");
        }
    }
}
