//! Audio input: any supported file to 16 kHz mono `f32`, streamed.
//!
//! [`AudioStream`] decodes one packet at a time (symphonia), averages the
//! channels ([`downmix_into`]) and resamples to [`SAMPLE_RATE`] with rubato
//! ([`Resampler`]), so memory stays bounded whatever the file length. Encoder
//! priming and padding are trimmed and the resampler delay is cancelled:
//! sample `k` of the output is the audio at `k / 16000` s of the file, which
//! is what every diarization timestamp is measured against.
//!
//! [`capture`] opens a microphone with cpal and hands its samples over a
//! lock-free ring; the same downmix and resampler then apply.
//!
//! Every failure is an [`Error::Decode`](crate::Error::Decode) (or
//! [`Error::Io`](crate::Error::Io) for unreadable paths) naming the file and
//! saying what is wrong in plain words.

pub mod capture;
mod decode;
mod downmix;
mod mp4_edit;
mod resample;

pub use decode::{AudioStream, decode_file, probe};
pub use downmix::downmix_into;
pub use resample::Resampler;

/// The rate every model in Diarist expects, in Hz.
pub const SAMPLE_RATE: u32 = 16_000;

/// Lowest input rate accepted, in Hz. Real recordings start at 8 kHz
/// (telephony); anything far below is a broken header, not audio.
pub const MIN_INPUT_RATE_HZ: u32 = 1_000;

/// Highest input rate accepted, in Hz: twice the highest rate (384 kHz) that
/// recording hardware offers.
pub const MAX_INPUT_RATE_HZ: u32 = 768_000;

/// What a file holds, read from its header.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioInfo {
    /// Native sample rate of the audio track, in Hz.
    pub sample_rate: u32,
    /// Number of channels, before the downmix.
    pub channels: usize,
    /// Short codec name, e.g. `"aac"`, `"mp3"`, `"pcm_s16le"`.
    pub codec: String,
    /// Playable duration in seconds (priming and padding excluded), when the header says.
    pub duration_s: Option<f64>,
}
