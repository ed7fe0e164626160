//! The float32 CPU implementation of SincNet's forward pass. The generic
//! candle path materialises an im2col copy of the waveform (251 floats per
//! output frame), a transposed copy of the conv output and one full-size
//! tensor per element-wise op. Here activations are time-major (frames ×
//! channels), so every convolution is one product of the weights with
//! overlapping rows of its input, which *are* the im2col matrix without a
//! copy (`packed::RowProduct`); abs → max-pool → instance norm → leaky ReLU
//! is one pass over rows. Windows are spread over threads.
//!
//! The waveform's instance norm is affine, so the sinc convolution runs on
//! the raw samples and the norm is applied to its output: conv(a·x + b) =
//! a·conv(x) + b·Σfilter. Overlapping windows of one signal then share one
//! sinc convolution of the whole span.

use candle_core::Result;

use crate::kernels::packed::RowProduct;

/// A learned Conv1d: weight (out, in, kernel) row-major, bias (out).
pub(crate) struct HostConv {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub c_out: usize,
    pub c_in: usize,
    pub kernel: usize,
}

/// Affine weight and bias of one instance norm.
pub(crate) struct HostNorm {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

/// What `HostSincNet::new` is built from.
pub(crate) struct HostSincNetWeights {
    pub wav_norm: HostNorm,
    /// (filters, taps) row-major
    pub filters: Vec<f32>,
    pub num_filters: usize,
    pub taps: usize,
    pub stride: usize,
    pub pool: usize,
    pub convs: [HostConv; 2],
    pub norms: [HostNorm; 3],
    pub eps: f32,
    pub slope: f32,
}

pub(crate) struct HostSincNet {
    wav_norm: HostNorm,
    taps: usize,
    stride: usize,
    pool: usize,
    norms: [HostNorm; 3],
    eps: f32,
    slope: f32,
    /// Σ_k filter[f, k], for the waveform norm's shift.
    filter_sums: Vec<f32>,
    /// Sinc filters as a product: taps deep, filters wide (no bias).
    sinc: RowProduct,
    /// The learned convolutions: kernel × (previous stage's stored width)
    /// deep, their output channels rounded up to 16 wide (zero weights).
    convs: [RowProduct; 2],
    kernels: [usize; 2],
    /// Channels that are real in each stage's output (the rest is padding).
    channels: [usize; 3],
}

/// `n` rounded up to the packed kernel's panel width.
fn padded(n: usize) -> usize {
    n.div_ceil(16) * 16
}

impl HostSincNet {
    pub fn new(w: HostSincNetWeights) -> Self {
        let filters = w.num_filters;
        let sinc_width = padded(filters);
        let mut sinc_w = vec![0f32; w.taps * sinc_width];
        for f in 0..filters {
            for k in 0..w.taps {
                sinc_w[k * sinc_width + f] = w.filters[f * w.taps + k];
            }
        }
        let filter_sums = w
            .filters
            .chunks_exact(w.taps)
            .map(|f| f.iter().sum())
            .collect();
        let sinc = RowProduct::new(sinc_w, vec![0.0; sinc_width], w.taps, sinc_width);
        // Input row t of a conv is frames t..t+kernel of the previous stage,
        // `in_width` floats each: index k·in_width + c.
        let conv_product = |conv: &HostConv, in_width: usize| {
            let out_width = padded(conv.c_out);
            let depth = conv.kernel * in_width;
            let mut m = vec![0f32; depth * out_width];
            for o in 0..conv.c_out {
                for c in 0..conv.c_in {
                    for k in 0..conv.kernel {
                        m[(k * in_width + c) * out_width + o] =
                            conv.weight[(o * conv.c_in + c) * conv.kernel + k];
                    }
                }
            }
            let mut bias = conv.bias.clone();
            bias.resize(out_width, 0.0);
            RowProduct::new(m, bias, depth, out_width)
        };
        let conv0 = conv_product(&w.convs[0], sinc_width);
        let conv1 = conv_product(&w.convs[1], conv0.gates);
        Self {
            wav_norm: w.wav_norm,
            taps: w.taps,
            stride: w.stride,
            pool: w.pool,
            norms: w.norms,
            eps: w.eps,
            slope: w.slope,
            filter_sums,
            sinc,
            kernels: [w.convs[0].kernel, w.convs[1].kernel],
            channels: [filters, w.convs[0].c_out, w.convs[1].c_out],
            convs: [conv0, conv1],
        }
    }

    /// (channels, frames) out for windows of `samples`; `None` when the
    /// window is shorter than the receptive field.
    pub fn output_shape(&self, samples: usize) -> Option<(usize, usize)> {
        let mut len = samples.checked_sub(self.taps)? / self.stride + 1;
        len /= self.pool;
        for kernel in self.kernels {
            len = (len + 1).checked_sub(kernel)? / self.pool;
        }
        (len > 0).then_some((self.channels[2], len))
    }

    /// wav (batch, samples) row-major → (batch, channels, frames).
    pub fn forward(&self, wav: &[f32], batch: usize, samples: usize) -> Result<Vec<f32>> {
        let Some((channels, frames)) = self.output_shape(samples) else {
            candle_core::bail!("sincnet: a window of {samples} samples is shorter than one frame")
        };
        let per_window = channels * frames;
        let mut out = vec![0f32; batch * per_window];
        let len0 = (samples - self.taps) / self.stride + 1;
        self.each_window(&mut out, per_window, |c, y| {
            let x = &wav[c * samples..(c + 1) * samples];
            let mut conv = vec![0f32; len0 * self.sinc.gates];
            self.sinc.apply(x, self.stride, len0, &mut conv);
            self.window(x, &conv, y);
        });
        Ok(out)
    }

    /// `count` windows of `samples`, one every `step` samples of `signal`
    /// (torch's `signal.unfold(0, samples, step)`) → (count, channels,
    /// frames). Equal to `forward` on the cut-out windows; when `step` is a
    /// multiple of the sinc stride, consecutive windows share their sinc
    /// frames, so those are computed once for the whole span.
    pub fn forward_windows(
        &self,
        signal: &[f32],
        step: usize,
        count: usize,
        samples: usize,
    ) -> Result<Vec<f32>> {
        let Some((channels, frames)) = self.output_shape(samples) else {
            candle_core::bail!("sincnet: a window of {samples} samples is shorter than one frame")
        };
        if count == 0 {
            return Ok(Vec::new());
        }
        let span = (count - 1) * step + samples;
        if signal.len() < span {
            candle_core::bail!(
                "sincnet: {count} windows of {samples} every {step} need {span} samples, got {}",
                signal.len()
            )
        }
        if step == 0 || !step.is_multiple_of(self.stride) || count == 1 {
            let windows: Vec<f32> = (0..count)
                .flat_map(|c| signal[c * step..c * step + samples].iter().copied())
                .collect();
            return self.forward(&windows, count, samples);
        }

        // Sinc frames of the whole span, rows split over the threads.
        let width = self.sinc.gates;
        let span_frames = (span - self.taps) / self.stride + 1;
        let mut conv = vec![0f32; span_frames * width];
        let threads = candle_core::utils::get_num_threads().max(1);
        let rows_per_thread = span_frames.div_ceil(threads);
        std::thread::scope(|scope| {
            for (i, dst) in conv.chunks_mut(rows_per_thread * width).enumerate() {
                let first = i * rows_per_thread;
                scope.spawn(move || {
                    let x = &signal[first * self.stride..span];
                    self.sinc.apply(x, self.stride, dst.len() / width, dst);
                });
            }
        });

        let len0 = (samples - self.taps) / self.stride + 1;
        let per_window = channels * frames;
        let mut out = vec![0f32; count * per_window];
        let conv = &conv;
        self.each_window(&mut out, per_window, |c, y| {
            let first = c * step / self.stride;
            let x = &signal[c * step..c * step + samples];
            self.window(x, &conv[first * width..(first + len0) * width], y);
        });
        Ok(out)
    }

    /// Runs `f(window, output)` for every window, windows split over threads.
    fn each_window(
        &self,
        out: &mut [f32],
        per_window: usize,
        f: impl Fn(usize, &mut [f32]) + Sync,
    ) {
        let count = out.len() / per_window;
        if count == 0 {
            return;
        }
        let threads = candle_core::utils::get_num_threads().max(1);
        let per_thread = count.div_ceil(threads.min(count));
        let f = &f;
        std::thread::scope(|scope| {
            for (chunk, outs) in out.chunks_mut(per_thread * per_window).enumerate() {
                scope.spawn(move || {
                    for (i, y) in outs.chunks_exact_mut(per_window).enumerate() {
                        f(chunk * per_thread + i, y);
                    }
                });
            }
        });
    }

    /// One window: its samples x and the sinc frames of the raw samples
    /// (frames × filters, time-major) → y (channels, frames).
    fn window(&self, x: &[f32], conv: &[f32], y: &mut [f32]) {
        let (scale, shift) =
            normalisation(x, self.wav_norm.weight[0], self.wav_norm.bias[0], self.eps);
        // The normalised waveform's sinc frames: conv·scale + shift·Σfilter.
        let offsets: Vec<f32> = self.filter_sums.iter().map(|s| shift * s).collect();
        let mut width = self.sinc.gates;
        let mut stage = self.pool_norm_leaky(conv, width, 0, Some((scale, &offsets)));
        for (i, (conv, &kernel)) in self.convs.iter().zip(&self.kernels).enumerate() {
            let rows = stage.len() / width + 1 - kernel;
            let mut out = vec![0f32; rows * conv.gates];
            conv.apply(&stage, width, rows, &mut out);
            width = conv.gates;
            stage = self.pool_norm_leaky(&out, width, i + 1, None);
        }
        // (frames, width) → (channels, frames)
        let frames = stage.len() / width;
        for (c, row) in y.chunks_exact_mut(frames).enumerate() {
            for (t, v) in row.iter_mut().enumerate() {
                *v = stage[t * width + c];
            }
        }
    }

    /// x (rows, width), time-major → max-pool over rows (of |x·scale +
    /// offset[c]| with `affine`) → instance norm `index` → leaky ReLU:
    /// (rows / pool, width), padding channels zero.
    fn pool_norm_leaky(
        &self,
        x: &[f32],
        width: usize,
        index: usize,
        affine: Option<(f32, &[f32])>,
    ) -> Vec<f32> {
        let channels = self.channels[index];
        let rows = x.len() / width / self.pool;
        let mut out = vec![0f32; rows * width];
        for (dst, window) in out
            .chunks_exact_mut(width)
            .zip(x.chunks_exact(width * self.pool))
        {
            let dst = &mut dst[..channels];
            match affine {
                Some((scale, offsets)) => {
                    dst.fill(0.0);
                    for src in window.chunks_exact(width) {
                        for ((d, &v), &o) in dst.iter_mut().zip(src).zip(offsets) {
                            *d = d.max((v * scale + o).abs());
                        }
                    }
                }
                None => {
                    dst.copy_from_slice(&window[..channels]);
                    for src in window.chunks_exact(width).skip(1) {
                        for (d, &v) in dst.iter_mut().zip(src) {
                            *d = d.max(v);
                        }
                    }
                }
            }
        }
        // Instance norm per channel over time: mean, then biased variance,
        // accumulated in float64 like `normalisation`.
        let n = rows as f64;
        let mut mean = vec![0f64; channels];
        for row in out.chunks_exact(width) {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut var = vec![0f64; channels];
        for row in out.chunks_exact(width) {
            for ((s, &v), m) in var.iter_mut().zip(row).zip(&mean) {
                *s += (v as f64 - m).powi(2);
            }
        }
        let norm = &self.norms[index];
        let (scales, shifts): (Vec<f32>, Vec<f32>) = (0..channels)
            .map(|c| {
                let inv = 1.0 / (var[c] / n + self.eps as f64).sqrt();
                let scale = norm.weight[c] as f64 * inv;
                (scale as f32, (norm.bias[c] as f64 - mean[c] * scale) as f32)
            })
            .unzip();
        for row in out.chunks_exact_mut(width) {
            for ((v, &a), &b) in row.iter_mut().zip(&scales).zip(&shifts) {
                let z = *v * a + b;
                *v = if z >= 0.0 { z } else { z * self.slope };
            }
        }
        out
    }
}

/// (scale, shift) such that x·scale + shift = (x − mean)/sqrt(biased var +
/// eps)·w + b.
fn normalisation(xs: &[f32], weight: f32, bias: f32, eps: f32) -> (f32, f32) {
    let n = xs.len() as f64;
    let mean = xs.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = xs.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    let scale = (weight as f64 / (var + eps as f64).sqrt()) as f32;
    let shift = (bias as f64 - mean * weight as f64 / (var + eps as f64).sqrt()) as f32;
    (scale, shift)
}
