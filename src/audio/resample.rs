//! Streaming mono resampler: any input rate to [`SAMPLE_RATE`] (16 kHz).
//!
//! Wraps rubato's synchronous FFT resampler, which is both fast and of the
//! highest quality rubato offers. Rates whose ratio to 16 kHz has no small
//! common block (e.g. 44 101 Hz) would need a single FFT as long as one second
//! of input and half a second of delay, so those go through rubato's
//! asynchronous sinc resampler instead, which matches the FFT one in quality.
//!
//! The resampler's own delay is dropped from the front of the output and the
//! tail is flushed by [`Resampler::finish`], so output sample `k` is the input
//! at time `k / 16000` s and the total length is `round(n · 16000 / rate)`.
//! Diarization timestamps depend on both.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{
    Async, Fft, FixedAsync, FixedSync, Indexing, SincInterpolationParameters, WindowFunction,
};

use super::SAMPLE_RATE;
use crate::error::{Error, Result};

/// Target number of output frames per FFT block: a 32 ms block keeps the
/// delay at 16 ms while leaving a narrow transition band below 8 kHz.
const FFT_BLOCK_OUT_FRAMES: usize = 512;

/// Above this minimum output block (set by `16000 / gcd(rate, 16000)`), the FFT
/// resampler's blocks and delay grow impractically and the sinc one is used.
const MAX_FFT_MIN_BLOCK_OUT: usize = 2048;

/// Input frames per call for the asynchronous sinc resampler.
const SINC_CHUNK_FRAMES: usize = 1024;

/// Sinc filter length: rubato's recommended starting point for high quality.
const SINC_LEN: usize = 256;

/// Converts a mono stream from `from_hz` to 16 kHz, chunk by chunk.
///
/// Memory stays bounded by one resampler block whatever the stream length.
/// After [`finish`](Self::finish) the resampler is reset and can take a new stream.
pub struct Resampler {
    from_hz: u32,
    /// `None` when the input is already 16 kHz: samples pass through untouched.
    engine: Option<Engine>,
    frames_in: u64,
    frames_out: u64,
}

struct Engine {
    inner: Box<dyn rubato::Resampler<f32>>,
    /// Input not yet consumed: always shorter than one block after `process`.
    pending: Vec<f32>,
    /// One block of output, before the delay is dropped.
    scratch: Vec<f32>,
    /// Output frames still to drop to cancel the resampler's delay.
    delay_left: usize,
}

impl Resampler {
    /// Creates a resampler from `from_hz` to [`SAMPLE_RATE`].
    pub fn new(from_hz: u32) -> Result<Self> {
        if from_hz == 0 {
            return Err(Error::InvalidOption(
                "cannot resample from 0 Hz: the sample rate must be positive".into(),
            ));
        }
        let engine = if from_hz == SAMPLE_RATE {
            None
        } else {
            Some(Engine::new(from_hz)?)
        };
        Ok(Self {
            from_hz,
            engine,
            frames_in: 0,
            frames_out: 0,
        })
    }

    /// The input rate this resampler was built for.
    pub fn from_hz(&self) -> u32 {
        self.from_hz
    }

    /// Resamples `input` and appends every output sample that is ready to `out`.
    pub fn process(&mut self, input: &[f32], out: &mut Vec<f32>) -> Result<()> {
        self.frames_in += input.len() as u64;
        let Some(engine) = self.engine.as_mut() else {
            out.extend_from_slice(input);
            self.frames_out += input.len() as u64;
            return Ok(());
        };
        engine.pending.extend_from_slice(input);
        let mut consumed = 0;
        loop {
            let need = engine.inner.input_frames_next();
            if engine.pending.len() - consumed < need {
                break;
            }
            let (used, emitted) = engine.run_block(Block::Full(consumed), out, self.from_hz)?;
            consumed += used;
            self.frames_out += emitted as u64;
        }
        engine.pending.drain(..consumed);
        Ok(())
    }

    /// Flushes the samples still inside the resampler, so that the whole stream
    /// comes out as `round(n · 16000 / from_hz)` samples, then resets for a new stream.
    pub fn finish(&mut self, out: &mut Vec<f32>) -> Result<()> {
        let expected = expected_output_len(self.frames_in, self.from_hz);
        if let Some(engine) = self.engine.as_mut() {
            let start = out.len();
            if !engine.pending.is_empty() {
                let (_, emitted) = engine.run_block(Block::Partial, out, self.from_hz)?;
                self.frames_out += emitted as u64;
            }
            // Zeros push the last real samples through the filter; each block yields
            // output, but bound the loop in case a block ever yields none.
            let mut idle_blocks = 0;
            while self.frames_out < expected && idle_blocks < 4 {
                let (_, emitted) = engine.run_block(Block::Silence, out, self.from_hz)?;
                self.frames_out += emitted as u64;
                idle_blocks = if emitted == 0 { idle_blocks + 1 } else { 0 };
            }
            if self.frames_out > expected {
                let surplus = usize::try_from(self.frames_out - expected).unwrap_or(usize::MAX);
                out.truncate(out.len().saturating_sub(surplus).max(start));
            }
            engine.reset();
        }
        self.frames_in = 0;
        self.frames_out = 0;
        Ok(())
    }
}

/// `round(frames · 16000 / from_hz)`, in integers so that 4-hour streams stay exact.
fn expected_output_len(frames: u64, from_hz: u32) -> u64 {
    let num = u128::from(frames) * u128::from(SAMPLE_RATE) + u128::from(from_hz / 2);
    u64::try_from(num / u128::from(from_hz)).unwrap_or(u64::MAX)
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// What `Engine::run_block` feeds the resampler.
enum Block {
    /// A full block of `pending`, starting at this offset.
    Full(usize),
    /// All of `pending` (shorter than a block), padded with zeros.
    Partial,
    /// A block of zeros, to flush the tail.
    Silence,
}

impl Engine {
    fn new(from_hz: u32) -> Result<Self> {
        let (rate_in, rate_out) = (from_hz as usize, SAMPLE_RATE as usize);
        let min_block_out = rate_out / gcd(rate_in, rate_out);
        let inner: Box<dyn rubato::Resampler<f32>> = if min_block_out <= MAX_FFT_MIN_BLOCK_OUT {
            // A block of ~FFT_BLOCK_OUT_FRAMES output frames, in input frames.
            let chunk_in = (FFT_BLOCK_OUT_FRAMES * rate_in).div_ceil(rate_out);
            Box::new(
                Fft::<f32>::new_custom(
                    rate_in,
                    rate_out,
                    chunk_in,
                    1,
                    1,
                    WindowFunction::BlackmanHarris2,
                    FixedSync::Both,
                )
                .map_err(|e| construction_error(from_hz, e))?,
            )
        } else {
            let params =
                SincInterpolationParameters::new(SINC_LEN, WindowFunction::BlackmanHarris2);
            Box::new(
                Async::<f32>::new_sinc(
                    rate_out as f64 / rate_in as f64,
                    1.0,
                    &params,
                    SINC_CHUNK_FRAMES,
                    1,
                    FixedAsync::Input,
                )
                .map_err(|e| construction_error(from_hz, e))?,
            )
        };
        let scratch = vec![0.0; inner.output_frames_max()];
        let delay_left = inner.output_delay();
        Ok(Self {
            pending: Vec::with_capacity(inner.input_frames_max()),
            inner,
            scratch,
            delay_left,
        })
    }

    /// Runs one resampler block and appends its output, minus any delay still
    /// to drop, to `out`. Returns (input frames used, output frames appended).
    fn run_block(
        &mut self,
        block: Block,
        out: &mut Vec<f32>,
        from_hz: u32,
    ) -> Result<(usize, usize)> {
        let (input, indexing) = match block {
            Block::Full(offset) => (&self.pending[..], Indexing::new().input_offset(offset)),
            Block::Partial => (
                &self.pending[..],
                Indexing::new().partial_len(self.pending.len()),
            ),
            Block::Silence => (&[][..], Indexing::new().partial_len(0)),
        };
        let input =
            InterleavedSlice::new(input, 1, input.len()).map_err(|e| process_error(from_hz, e))?;
        let frames_out = self.scratch.len();
        let mut output = InterleavedSlice::new_mut(&mut self.scratch, 1, frames_out)
            .map_err(|e| process_error(from_hz, e))?;
        let (used, produced) = self
            .inner
            .process_into_buffer(&input, &mut output, Some(&indexing))
            .map_err(|e| process_error(from_hz, e))?;
        let skip = self.delay_left.min(produced);
        self.delay_left -= skip;
        out.extend_from_slice(&self.scratch[skip..produced]);
        Ok((used, produced - skip))
    }

    fn reset(&mut self) {
        self.inner.reset();
        self.pending.clear();
        self.delay_left = self.inner.output_delay();
    }
}

fn construction_error(from_hz: u32, e: impl std::fmt::Display) -> Error {
    Error::InvalidOption(format!(
        "cannot resample from {from_hz} Hz to {SAMPLE_RATE} Hz: {e}"
    ))
}

fn process_error(from_hz: u32, e: impl std::fmt::Display) -> Error {
    Error::InvalidOption(format!("resampling from {from_hz} Hz failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resample_in_pieces(from_hz: u32, input: &[f32], piece: usize) -> Vec<f32> {
        let mut r = Resampler::new(from_hz).unwrap();
        let mut out = Vec::new();
        for chunk in input.chunks(piece) {
            r.process(chunk, &mut out).unwrap();
        }
        r.finish(&mut out).unwrap();
        out
    }

    fn peak_index(xs: &[f32]) -> usize {
        xs.iter()
            .enumerate()
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .map(|(i, _)| i)
            .unwrap()
    }

    #[test]
    fn sixteen_khz_passes_through_bit_exact() {
        let input: Vec<f32> = (0..5000)
            .map(|i| ((i * 7919) % 1000) as f32 / 1e3 - 0.5)
            .collect();
        assert_eq!(resample_in_pieces(16_000, &input, 333), input);
    }

    #[test]
    fn output_length_is_rounded_ratio_for_every_common_rate() {
        for &rate in &[
            8_000, 11_025, 22_050, 44_100, 48_000, 96_000, 384_000, 44_101, 7_919,
        ] {
            for &n in &[0_usize, 1, 17, 1000, rate as usize * 2 + 3] {
                let input = vec![0.25_f32; n];
                let out = resample_in_pieces(rate, &input, 4096);
                let want = expected_output_len(n as u64, rate) as usize;
                assert_eq!(out.len(), want, "rate {rate} n {n}");
            }
        }
    }

    #[test]
    fn impulse_stays_at_its_time_for_fft_and_sinc_paths() {
        // 44 100 Hz takes the FFT path, 44 101 Hz the sinc path.
        for &rate in &[8_000_u32, 44_100, 48_000, 384_000, 44_101] {
            let n = rate as usize * 2;
            let at_s = 0.731;
            let mut input = vec![0.0_f32; n];
            input[(at_s * rate as f64).round() as usize] = 1.0;
            let out = resample_in_pieces(rate, &input, 1000);
            let want = (at_s * SAMPLE_RATE as f64).round() as i64;
            let got = peak_index(&out) as i64;
            assert!(
                (got - want).abs() <= 1,
                "rate {rate}: impulse at {got}, want {want}"
            );
        }
    }

    #[test]
    fn piece_size_does_not_change_the_output() {
        let input: Vec<f32> = (0..44_100).map(|i| (i as f32 * 0.01).sin()).collect();
        let a = resample_in_pieces(44_100, &input, 1);
        let b = resample_in_pieces(44_100, &input, 100_000);
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-5);
        }
    }

    #[test]
    fn finish_resets_for_a_second_stream() {
        let input: Vec<f32> = (0..22_050).map(|i| (i as f32 * 0.05).sin()).collect();
        let mut r = Resampler::new(22_050).unwrap();
        let mut first = Vec::new();
        r.process(&input, &mut first).unwrap();
        r.finish(&mut first).unwrap();
        let mut second = Vec::new();
        r.process(&input, &mut second).unwrap();
        r.finish(&mut second).unwrap();
        assert_eq!(first, second);
    }

    #[test]
    fn zero_hz_is_rejected_with_the_rate_in_the_message() {
        let err = Resampler::new(0).err().unwrap().to_string();
        assert!(err.contains("0 Hz"), "{err}");
    }
}
