//! The GE2E encoder's front end: a power mel spectrogram, exactly as
//! Resemblyzer computes it with `librosa.feature.melspectrogram(y, sr=16000,
//! n_fft=400, hop_length=160, n_mels=40)` (librosa 0.10+ defaults).
//!
//! Per frame: 400 samples × periodic Hann window (float64), real FFT in
//! float64, rounded to complex64 like librosa's STFT matrix, power
//! `|X|²` in float32, then 40 Slaney-scale, Slaney-normalised triangular
//! filters (fmin 0, fmax 8000 Hz). No log: the network was trained on power.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

/// The encoder was trained on 16 kHz audio.
pub const SAMPLE_RATE_HZ: u32 = 16_000;
/// 25 ms analysis window (also the FFT size).
pub const WINDOW_SAMPLES: usize = 400;
/// 10 ms between frames.
pub const HOP_SAMPLES: usize = 160;
/// Mel bands per frame.
pub const N_MELS: usize = 40;
/// Bins of the one-sided spectrum.
pub const N_BINS: usize = WINDOW_SAMPLES / 2 + 1;
/// Zeros librosa's `center=True` adds on each side of the signal.
pub const CENTER_PAD_SAMPLES: usize = WINDOW_SAMPLES / 2;

/// Number of frames `frames_from_padded` produces for `padded_len` samples.
pub fn frame_count(padded_len: usize) -> usize {
    if padded_len < WINDOW_SAMPLES {
        0
    } else {
        (padded_len - WINDOW_SAMPLES) / HOP_SAMPLES + 1
    }
}

/// One triangular filter, stored over its non-zero bins only: a band touches
/// 3–20 of the 201 bins, so this is ~10× fewer multiply-adds than the dense
/// 40×201 product.
#[derive(Debug, Clone)]
struct MelBand {
    first_bin: usize,
    weights: Vec<f32>,
}

/// FFT plan, window and filterbank, built once and shared (it is `Send +
/// Sync`; each call allocates its own small scratch buffers).
pub struct MelFrontend {
    fft: Arc<dyn RealToComplex<f64>>,
    window: Vec<f64>,
    bands: Vec<MelBand>,
}

impl std::fmt::Debug for MelFrontend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MelFrontend")
            .field("window_samples", &WINDOW_SAMPLES)
            .field("hop_samples", &HOP_SAMPLES)
            .field("n_mels", &N_MELS)
            .finish()
    }
}

impl Default for MelFrontend {
    fn default() -> Self {
        Self::new()
    }
}

impl MelFrontend {
    pub fn new() -> Self {
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(WINDOW_SAMPLES);
        let bands = slaney_mel_basis()
            .iter()
            .map(|row| {
                let first_bin = row.iter().position(|&w| w != 0.0).unwrap_or(0);
                let end = row
                    .iter()
                    .rposition(|&w| w != 0.0)
                    .map_or(first_bin, |i| i + 1);
                MelBand {
                    first_bin,
                    weights: row[first_bin..end].to_vec(),
                }
            })
            .collect();
        Self {
            fft,
            window: periodic_hann(WINDOW_SAMPLES),
            bands,
        }
    }

    /// librosa's `center=True` mel spectrogram of a whole signal: the signal
    /// is zero-padded by 200 samples on each side, giving
    /// `1 + samples.len() / 160` frames.
    pub fn mel(&self, samples: &[f32]) -> Vec<[f32; N_MELS]> {
        let mut padded = vec![0.0f32; samples.len() + 2 * CENTER_PAD_SAMPLES];
        padded[CENTER_PAD_SAMPLES..CENTER_PAD_SAMPLES + samples.len()].copy_from_slice(samples);
        let mut out = Vec::with_capacity(frame_count(padded.len()));
        self.frames_from_padded(&padded, &mut out);
        out
    }

    /// Appends one frame per full window of `padded`: frame i reads
    /// `padded[160·i .. 160·i + 400]`. The caller owns the padding, so a long
    /// stream can be processed chunk by chunk (chunks overlapping by 240
    /// samples) with results identical to one call over the whole stream.
    pub fn frames_from_padded(&self, padded: &[f32], out: &mut Vec<[f32; N_MELS]>) {
        let n_frames = frame_count(padded.len());
        out.reserve(n_frames);
        let mut input = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut power = [0.0f32; N_BINS];
        for frame in padded.windows(WINDOW_SAMPLES).step_by(HOP_SAMPLES) {
            for ((x, &s), &w) in input.iter_mut().zip(frame).zip(&self.window) {
                *x = f64::from(s) * w;
            }
            // Only fails on buffers of the wrong length, and these come from the plan.
            self.fft
                .process_with_scratch(&mut input, &mut spectrum, &mut scratch)
                .expect("FFT buffers are sized by their own plan");
            for (p, c) in power.iter_mut().zip(&spectrum) {
                *p = power_f32(*c);
            }
            out.push(self.apply_filterbank(&power));
        }
    }

    fn apply_filterbank(&self, power: &[f32; N_BINS]) -> [f32; N_MELS] {
        let mut mel = [0.0f32; N_MELS];
        for (m, band) in mel.iter_mut().zip(&self.bands) {
            *m = band
                .weights
                .iter()
                .zip(&power[band.first_bin..])
                .map(|(w, p)| w * p)
                .sum();
        }
        mel
    }
}

/// `np.abs(complex64) ** 2` as librosa computes it: the float64 FFT output
/// is stored as complex64, its modulus taken with `hypotf`, then squared in
/// float32. glibc's `hypotf` is `sqrt(x² + y²)` evaluated in double and
/// rounded once, which is what this does (and it vectorises, unlike a libm
/// call per bin).
fn power_f32(c: Complex<f64>) -> f32 {
    let (re, im) = (f64::from(c.re as f32), f64::from(c.im as f32));
    let magnitude = (re * re + im * im).sqrt() as f32;
    magnitude * magnitude
}

/// `scipy.signal.get_window("hann", n, fftbins=True)`.
fn periodic_hann(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos())
        .collect()
}

/// Slaney's mel scale as in `librosa.hz_to_mel(htk=False)`: linear below
/// 1 kHz, logarithmic above.
mod slaney {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;

    fn min_log_mel() -> f64 {
        MIN_LOG_HZ / F_SP
    }

    fn log_step() -> f64 {
        6.4f64.ln() / 27.0
    }

    pub fn hz_to_mel(hz: f64) -> f64 {
        if hz >= MIN_LOG_HZ {
            min_log_mel() + (hz / MIN_LOG_HZ).ln() / log_step()
        } else {
            hz / F_SP
        }
    }

    pub fn mel_to_hz(mel: f64) -> f64 {
        if mel >= min_log_mel() {
            MIN_LOG_HZ * (log_step() * (mel - min_log_mel())).exp()
        } else {
            F_SP * mel
        }
    }
}

/// `librosa.filters.mel(sr=16000, n_fft=400, n_mels=40, fmin=0, fmax=8000,
/// htk=False, norm="slaney")`, reproducing librosa's float64 arithmetic and
/// its two float32 roundings (before and after the area normalisation).
pub fn slaney_mel_basis() -> Vec<[f32; N_BINS]> {
    let sr = f64::from(SAMPLE_RATE_HZ);
    // np.fft.rfftfreq(400, 1/sr)
    let bin_hz = 1.0 / (WINDOW_SAMPLES as f64 * (1.0 / sr));
    let fft_hz: Vec<f64> = (0..N_BINS).map(|k| k as f64 * bin_hz).collect();
    // np.linspace(hz_to_mel(0), hz_to_mel(sr/2), n_mels + 2), then back to Hz
    let (low, high) = (slaney::hz_to_mel(0.0), slaney::hz_to_mel(sr / 2.0));
    let n_points = N_MELS + 2;
    let step = (high - low) / (n_points - 1) as f64;
    let edges_hz: Vec<f64> = (0..n_points)
        .map(|i| {
            let mel = if i == n_points - 1 {
                high
            } else {
                i as f64 * step + low
            };
            slaney::mel_to_hz(mel)
        })
        .collect();
    (0..N_MELS)
        .map(|m| {
            let (left, centre, right) = (edges_hz[m], edges_hz[m + 1], edges_hz[m + 2]);
            let area_norm = 2.0 / (right - left);
            let mut row = [0.0f32; N_BINS];
            for (w, &f) in row.iter_mut().zip(&fft_hz) {
                let rising = -(left - f) / (centre - left);
                let falling = (right - f) / (right - centre);
                let triangle = rising.min(falling).max(0.0) as f32;
                *w = (f64::from(triangle) * area_norm) as f32;
            }
            row
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_counts_follow_librosa() {
        let mel = MelFrontend::new();
        for len in [0, 1, 159, 160, 161, 16_000, 64_000] {
            assert_eq!(mel.mel(&vec![0.0; len]).len(), 1 + len / 160, "len {len}");
        }
        assert_eq!(frame_count(399), 0);
        assert_eq!(frame_count(400), 1);
        assert_eq!(frame_count(559), 1);
        assert_eq!(frame_count(560), 2);
    }

    #[test]
    fn chunked_frames_equal_one_pass() {
        let mel = MelFrontend::new();
        let signal: Vec<f32> = (0..10_000)
            .map(|i| (i as f32 * 0.013).sin() * 0.3 + ((i * 7919) % 101) as f32 * 1e-3)
            .collect();
        let mut whole = Vec::new();
        mel.frames_from_padded(&signal, &mut whole);
        // Chunks of 30 frames: each starts at a hop multiple and carries the
        // 240-sample overlap the last window needs.
        let mut chunked = Vec::new();
        let mut start = 0;
        while start + WINDOW_SAMPLES <= signal.len() {
            let end = (start + 29 * HOP_SAMPLES + WINDOW_SAMPLES).min(signal.len());
            mel.frames_from_padded(&signal[start..end], &mut chunked);
            start += 30 * HOP_SAMPLES;
        }
        assert_eq!(whole.len(), frame_count(signal.len()));
        assert_eq!(whole, chunked);
    }

    #[test]
    fn a_pure_tone_lands_in_its_band() {
        // 1 kHz is mel 15 on Slaney's scale, between the centres of bands 12
        // (956 Hz) and 13 (1 031 Hz); librosa puts most energy in band 13.
        let mel = MelFrontend::new();
        let tone: Vec<f32> = (0..16_000)
            .map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16_000.0).sin())
            .collect();
        let frames = mel.mel(&tone);
        let middle = frames[50];
        let loudest = (0..N_MELS)
            .max_by(|&a, &b| middle[a].total_cmp(&middle[b]))
            .unwrap();
        assert_eq!(loudest, 13);
        assert!(middle[12] > 0.5 * middle[13] && middle[14] < 0.1 * middle[13]);
    }

    #[test]
    fn filters_have_unit_area() {
        // Slaney normalisation makes every triangle's area over Hz equal 1;
        // sampled at the 40 Hz bin spacing that holds to a few percent.
        let basis = slaney_mel_basis();
        assert_eq!(basis.len(), N_MELS);
        for row in &basis {
            let area: f32 = row.iter().sum::<f32>() * 40.0;
            assert!((area - 1.0).abs() < 0.05, "area {area}");
        }
    }
}
