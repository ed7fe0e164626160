//! The float32 CPU implementation of SincNet's forward pass. The generic
//! candle path materialises an im2col copy of the waveform (251 floats per
//! output frame), a transposed copy of the conv output and one full-size
//! tensor per element-wise op; here each convolution is gemm calls on
//! strided views of the input, and abs → max-pool → instance norm → leaky
//! ReLU is one pass per channel. Windows are spread over threads.

use candle_core::Result;

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

pub(crate) struct HostSincNet {
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

impl HostSincNet {
    /// (channels, frames) out for windows of `samples`; `None` when the
    /// window is shorter than the receptive field.
    pub fn output_shape(&self, samples: usize) -> Option<(usize, usize)> {
        let mut len = samples.checked_sub(self.taps)? / self.stride + 1;
        len /= self.pool;
        for conv in &self.convs {
            len = (len + 1).checked_sub(conv.kernel)? / self.pool;
        }
        (len > 0).then_some((self.convs[1].c_out, len))
    }

    /// wav (batch, samples) row-major → (batch, channels, frames).
    pub fn forward(&self, wav: &[f32], batch: usize, samples: usize) -> Result<Vec<f32>> {
        let Some((channels, frames)) = self.output_shape(samples) else {
            candle_core::bail!("sincnet: a window of {samples} samples is shorter than one frame")
        };
        let per_window = channels * frames;
        let mut out = vec![0f32; batch * per_window];
        let threads = candle_core::utils::get_num_threads().max(1);
        let inner = if batch >= threads {
            gemm::Parallelism::None
        } else {
            gemm::Parallelism::Rayon(threads)
        };
        let per_thread = batch.div_ceil(threads.min(batch).max(1)).max(1);
        std::thread::scope(|scope| {
            for (wavs, outs) in wav
                .chunks(per_thread * samples)
                .zip(out.chunks_mut(per_thread * per_window))
            {
                scope.spawn(move || {
                    for (x, y) in wavs
                        .chunks_exact(samples)
                        .zip(outs.chunks_exact_mut(per_window))
                    {
                        self.window(x, y, inner);
                    }
                });
            }
        });
        Ok(out)
    }

    /// `count` windows of `samples`, one every `step` samples of `signal`
    /// (torch's `signal.unfold(0, samples, step)`) → (count, channels,
    /// frames). Equal to `forward` on the cut-out windows, but when `step` is
    /// a multiple of the sinc stride, consecutive windows share their sinc
    /// convolution frames, so those are computed once for the whole span:
    /// instance norm is affine, conv(a·x + b) = a·conv(x) + b·Σfilter.
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
        let threads = candle_core::utils::get_num_threads().max(1);

        // Sinc conv of the whole span, columns split over the threads.
        let len0 = (samples - self.taps) / self.stride + 1;
        let span_frames = (span - self.taps) / self.stride + 1;
        let mut conv = vec![0f32; self.num_filters * span_frames];
        let per_thread = span_frames.div_ceil(threads);
        let conv_ptr = SendPtr(conv.as_mut_ptr());
        std::thread::scope(|scope| {
            for first in (0..span_frames).step_by(per_thread) {
                let cols = per_thread.min(span_frames - first);
                scope.spawn(move || {
                    let conv_ptr = conv_ptr;
                    // SAFETY: lhs is (num_filters, taps) contiguous; rhs
                    // element (k, t) is signal[stride·(first + t) + k] ≤
                    // signal[stride·(span_frames − 1) + taps − 1] < span;
                    // dst element (f, t) is conv[f·span_frames + first + t]:
                    // each thread writes its own columns [first, first + cols).
                    unsafe {
                        gemm::gemm(
                            self.num_filters,
                            cols,
                            self.taps,
                            conv_ptr.0.add(first),
                            1,
                            span_frames as isize,
                            false,
                            self.filters.as_ptr(),
                            1,
                            self.taps as isize,
                            signal.as_ptr().add(self.stride * first),
                            self.stride as isize,
                            1,
                            0.0,
                            1.0,
                            false,
                            false,
                            false,
                            gemm::Parallelism::None,
                        );
                    }
                });
            }
        });
        let filter_sums: Vec<f32> = self
            .filters
            .chunks_exact(self.taps)
            .map(|f| f.iter().sum())
            .collect();

        // Then each window on its own: wav_norm folded into the sinc frames,
        // abs → pool → norm → leaky, and the two learned convolutions.
        let per_window = channels * frames;
        let mut out = vec![0f32; count * per_window];
        let windows_per_thread = count.div_ceil(threads.min(count));
        let conv = &conv;
        let filter_sums = &filter_sums;
        std::thread::scope(|scope| {
            for (chunk, outs) in out.chunks_mut(windows_per_thread * per_window).enumerate() {
                scope.spawn(move || {
                    for (i, y) in outs.chunks_exact_mut(per_window).enumerate() {
                        let c = chunk * windows_per_thread + i;
                        let x = &signal[c * step..c * step + samples];
                        let (scale, shift) = normalisation(
                            x,
                            self.wav_norm.weight[0],
                            self.wav_norm.bias[0],
                            self.eps,
                        );
                        let first = c * step / self.stride;
                        let stage = pool_norm_leaky_affine(
                            conv,
                            span_frames,
                            first,
                            len0,
                            (scale, shift),
                            filter_sums,
                            self,
                        );
                        self.finish(stage, len0 / self.pool, y, gemm::Parallelism::None);
                    }
                });
            }
        });
        Ok(out)
    }

    /// The two learned convolutions after stage 0: stage (filters, len) → y.
    fn finish(&self, mut stage: Vec<f32>, mut len: usize, y: &mut [f32], par: gemm::Parallelism) {
        for (conv, norm) in self.convs.iter().zip(&self.norms[1..]) {
            let (conv_out, conv_len) = convolve(&stage, len, conv, par);
            stage = pool_norm_leaky(&conv_out, conv.c_out, conv_len, false, self, norm);
            len = conv_len / self.pool;
        }
        y.copy_from_slice(&stage);
    }

    /// One window: x (samples) → y (channels, frames).
    fn window(&self, x: &[f32], y: &mut [f32], par: gemm::Parallelism) {
        // wav_norm1d over the whole window.
        let mut xs = x.to_vec();
        normalise(
            &mut xs,
            self.wav_norm.weight[0],
            self.wav_norm.bias[0],
            self.eps,
        );

        // Sinc conv: y0[f, t] = Σ_k filters[f, k]·x[stride·t + k]. The
        // waveform read with row stride 1 and column stride `stride` *is*
        // the im2col matrix (taps, frames), so no copy is made.
        let len0 = (xs.len() - self.taps) / self.stride + 1;
        let mut y0 = vec![0f32; self.num_filters * len0];
        // SAFETY: lhs is (num_filters, taps) contiguous; rhs element (k, t)
        // is xs[k + stride·t] ≤ xs[taps − 1 + stride·(len0 − 1)] < xs.len();
        // dst is (num_filters, len0) contiguous.
        unsafe {
            gemm::gemm(
                self.num_filters,
                len0,
                self.taps,
                y0.as_mut_ptr(),
                1,
                len0 as isize,
                false,
                self.filters.as_ptr(),
                1,
                self.taps as isize,
                xs.as_ptr(),
                self.stride as isize,
                1,
                0.0,
                1.0,
                false,
                false,
                false,
                par,
            );
        }
        let stage = pool_norm_leaky(&y0, self.num_filters, len0, true, self, &self.norms[0]);
        self.finish(stage, len0 / self.pool, y, par);
    }
}

/// A raw pointer that may cross into scoped threads that write disjoint parts.
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
// SAFETY: only used to hand disjoint column ranges of one buffer to scoped
// threads, which all finish before the buffer is read.
unsafe impl Send for SendPtr {}

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

/// In place: (x − mean)/sqrt(biased var + eps)·w + b.
fn normalise(xs: &mut [f32], weight: f32, bias: f32, eps: f32) {
    let (scale, shift) = normalisation(xs, weight, bias, eps);
    for v in xs.iter_mut() {
        *v = *v * scale + shift;
    }
}

/// Stage 0 of one window from the span's sinc frames: the window's frames
/// are columns `[first, first + len)` of `conv` (filters, span_frames) of the
/// raw signal; the window's normalised input x·scale + shift makes them
/// conv·scale + shift·Σfilter. Then |·| → max-pool → instance norm → leaky
/// ReLU: (filters, len / pool).
fn pool_norm_leaky_affine(
    conv: &[f32],
    span_frames: usize,
    first: usize,
    len: usize,
    (scale, shift): (f32, f32),
    filter_sums: &[f32],
    net: &HostSincNet,
) -> Vec<f32> {
    let out_len = len / net.pool;
    let mut out = vec![0f32; net.num_filters * out_len];
    for (f, dst) in out.chunks_exact_mut(out_len).enumerate() {
        let start = f * span_frames + first;
        let row = &conv[start..start + out_len * net.pool];
        let offset = shift * filter_sums[f];
        for (d, window) in dst.iter_mut().zip(row.chunks_exact(net.pool)) {
            *d = window
                .iter()
                .fold(0f32, |m, &v| m.max((v * scale + offset).abs()));
        }
        let norm = &net.norms[0];
        normalise(dst, norm.weight[f], norm.bias[f], net.eps);
        for v in dst.iter_mut() {
            *v = if *v >= 0.0 { *v } else { *v * net.slope };
        }
    }
    out
}

/// x (channels, len) → max-pool (optionally of |x|) → instance norm →
/// leaky ReLU: (channels, len / pool).
fn pool_norm_leaky(
    x: &[f32],
    channels: usize,
    len: usize,
    abs: bool,
    net: &HostSincNet,
    norm: &HostNorm,
) -> Vec<f32> {
    let out_len = len / net.pool;
    let mut out = vec![0f32; channels * out_len];
    for c in 0..channels {
        let row = &x[c * len..c * len + out_len * net.pool];
        let dst = &mut out[c * out_len..(c + 1) * out_len];
        for (d, window) in dst.iter_mut().zip(row.chunks_exact(net.pool)) {
            *d = if abs {
                window.iter().fold(0f32, |m, v| m.max(v.abs()))
            } else {
                window.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v))
            };
        }
        normalise(dst, norm.weight[c], norm.bias[c], net.eps);
        for v in dst.iter_mut() {
            *v = if *v >= 0.0 { *v } else { *v * net.slope };
        }
    }
    out
}

/// Valid Conv1d with bias: x (c_in, len) → ((c_out, len − kernel + 1), that length),
/// as `kernel` gemm calls, each on a shifted view of x.
fn convolve(x: &[f32], len: usize, conv: &HostConv, par: gemm::Parallelism) -> (Vec<f32>, usize) {
    let out_len = len + 1 - conv.kernel;
    let mut y: Vec<f32> = conv
        .bias
        .iter()
        .flat_map(|&b| std::iter::repeat_n(b, out_len))
        .collect();
    for k in 0..conv.kernel {
        // SAFETY: lhs element (o, c) is weight[o·c_in·kernel + c·kernel + k],
        // inside the (c_out, c_in, kernel) weight; rhs element (c, t) is
        // x[c·len + t + k] with t + k < len; dst is (c_out, out_len) contiguous.
        unsafe {
            gemm::gemm(
                conv.c_out,
                out_len,
                conv.c_in,
                y.as_mut_ptr(),
                1,
                out_len as isize,
                true,
                conv.weight.as_ptr().add(k),
                conv.kernel as isize,
                (conv.c_in * conv.kernel) as isize,
                x.as_ptr().add(k),
                1,
                len as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                par,
            );
        }
    }
    (y, out_len)
}
